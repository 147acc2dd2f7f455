"""A DNSSEC-signed authoritative DNS server on loopback for the DANE tests (RFC 7672).

    z = SignedZone(tmpdir, "example.")            # one zone, signed with ldns-signzone (NSEC)
    z.add("dane.example. 300 IN MX 10 mx.dane.example.")
    z.add("mx.dane.example. 300 IN A 127.0.0.2")
    z.add("_2525._tcp.mx.dane.example. 300 IN TLSA 3 1 1 <hex>")
    z.start()                                     # signs, then serves UDP and TCP on 127.0.0.1
    ... hikyaku with dns: { forward: [z.forward], dnssec: true, trust_anchor: z.anchor } ...
    z.stop()

Answers carry their RRSIGs; NODATA and NXDOMAIN answers carry the SOA and the NSEC records that
prove them (RFC 4035 3.1.3), so a validating resolver whose trust anchor is the zone's DS (the
file z.anchor) finds every answer "secure". Zone data is parsed with python3-dnspython; keys and
signatures come from ldnsutils (ldns-keygen, ldns-signzone). Only loopback.
"""

import os
import socket
import struct
import subprocess
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone


class SignedZone:
    def __init__(self, workdir, origin):
        self.dir = str(workdir)
        self.origin = dns.name.from_text(origin)
        self.lines = ["$ORIGIN %s" % origin, "$TTL 300",
                      "@ IN SOA ns.%s hostmaster.%s 1 3600 600 86400 300" % (origin, origin),
                      "@ IN NS ns.%s" % origin, "ns IN A 127.0.0.1"]
        self.zone = None
        self.port = None
        self.anchor = os.path.join(self.dir, "anchor.ds")
        self.queries = []
        self._socks = []
        self._threads = []
        self._stop = threading.Event()

    @property
    def forward(self):
        return "127.0.0.1@%d" % self.port

    def add(self, line):
        self.lines.append(line)

    # -- signing ---------------------------------------------------------------------------
    def _sign(self):
        zf = os.path.join(self.dir, "zone")
        with open(zf, "w") as f:
            f.write("\n".join(self.lines) + "\n")
        origin = self.origin.to_text()
        key = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", origin],
                             cwd=self.dir, check=True, capture_output=True, text=True,
                             timeout=60).stdout.strip()
        subprocess.run(["ldns-signzone", "-o", origin, zf, key], cwd=self.dir, check=True,
                       capture_output=True, timeout=60)
        with open(os.path.join(self.dir, key + ".ds")) as f, open(self.anchor, "w") as out:
            out.write(f.read())
        self.zone = dns.zone.from_file(zf + ".signed", origin=self.origin, relativize=False,
                                       check_origin=False)

    # -- answering -------------------------------------------------------------------------
    def _rrsets(self, name, rdtype):
        """[rrset, its RRSIG rrset] for name/rdtype, or [] when absent."""
        node = self.zone.get_node(name)
        if node is None:
            return []
        rds = node.get_rdataset(dns.rdataclass.IN, rdtype)
        if rds is None:
            return []
        out = [dns.rrset.from_rdata_list(name, rds.ttl, list(rds))]
        sig = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rdtype)
        if sig is not None:
            out.append(dns.rrset.from_rdata_list(name, sig.ttl, list(sig)))
        return out

    def _nsec_covering(self, name):
        """The NSEC RRset (with RRSIG) whose owner is the last name <= name (canonical order)."""
        best = None
        for owner, node in self.zone.nodes.items():
            if node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC) is None:
                continue
            if owner <= name and (best is None or owner > best):
                best = owner
        return self._rrsets(best, dns.rdatatype.NSEC) if best is not None else []

    def _exists(self, name):
        """True when name owns records or is an empty non-terminal."""
        return any(n == name or n.is_subdomain(name) for n in self.zone.nodes)

    def answer(self, wire):
        q = dns.message.from_wire(wire)
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA | dns.flags.RA
        r.use_edns(0, dns.flags.DO, 4096)
        qname, qtype = q.question[0].name, q.question[0].rdtype
        self.queries.append((qname.to_text(omit_final_dot=True).lower(),
                             dns.rdatatype.to_text(qtype)))
        if not qname.is_subdomain(self.origin):
            r.set_rcode(dns.rcode.REFUSED)
            return r
        soa = self._rrsets(self.origin, dns.rdatatype.SOA)
        found = self._rrsets(qname, qtype)
        if found:
            r.answer.extend(found)
        elif self._exists(qname):
            # NODATA: the name's own NSEC (or, for an empty non-terminal, the covering one).
            r.authority.extend(soa)
            own = self._rrsets(qname, dns.rdatatype.NSEC)
            r.authority.extend(own or self._nsec_covering(qname))
        else:
            r.set_rcode(dns.rcode.NXDOMAIN)
            r.authority.extend(soa)
            ce = qname.parent()
            while not self._exists(ce):
                ce = ce.parent()
            seen = set()
            for n in (qname, dns.name.Name((b"*",) + ce.labels)):
                for rr in self._nsec_covering(n):
                    key = (rr.name, rr.rdtype, rr.covers)
                    if key not in seen:
                        seen.add(key)
                        r.authority.append(rr)
        return r

    # -- serving ---------------------------------------------------------------------------
    def start(self):
        self._sign()
        # The same port for UDP and TCP: a free UDP port may be taken for TCP, so try again.
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            self.port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                udp.close()
                tcp.close()
        else:
            raise AssertionError("no port free for both UDP and TCP on 127.0.0.1")
        tcp.listen(16)
        for s in (udp, tcp):
            s.settimeout(0.2)
        self._socks = [udp, tcp]
        for fn in (self._udp_loop, self._tcp_loop):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _udp_loop(self):
        s = self._socks[0]
        while not self._stop.is_set():
            try:
                data, peer = s.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                q = dns.message.from_wire(data)
                size = max(512, q.payload if q.edns >= 0 else 512)
                out = self.answer(data).to_wire(max_size=size)
            except dns.exception.TooBig:
                r = dns.message.make_response(dns.message.from_wire(data))
                r.flags |= dns.flags.TC
                out = r.to_wire()
            except Exception:  # a malformed query: no answer, like a real server under load
                continue
            s.sendto(out, peer)

    def _tcp_loop(self):
        s = self._socks[1]
        while not self._stop.is_set():
            try:
                c, _ = s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with c:
                c.settimeout(2.0)
                try:
                    while True:
                        hdr = c.recv(2)
                        if len(hdr) < 2:
                            break
                        n = struct.unpack("!H", hdr)[0]
                        data = b""
                        while len(data) < n:
                            chunk = c.recv(n - len(data))
                            if not chunk:
                                break
                            data += chunk
                        out = self.answer(data).to_wire()
                        c.sendall(struct.pack("!H", len(out)) + out)
                except (OSError, Exception):
                    pass

    def asked(self, name, qtype=None):
        name = name.rstrip(".").lower()
        return any(n == name and (qtype is None or t == qtype) for n, t in self.queries)

    def stop(self):
        self._stop.set()
        for s in self._socks:
            s.close()
        for t in self._threads:
            t.join(timeout=2)
