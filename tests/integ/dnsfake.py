"""An authoritative DNS server on loopback for the direct-MX delivery tests (python3-dnslib).

    dns = FakeDNS().start()                   # UDP and TCP on one free 127.0.0.1 port
    dns.mx("dest.example", [(10, "mx1.dest.example"), (20, "mx2.dest.example")])
    dns.a("mx1.dest.example", "127.0.0.2")
    dns.null_mx("nomail.example")             # RFC 7505: "MX 0 ."
    ... hikyaku with dns: { forward: ["127.0.0.1@%d" % dns.port] } ...
    dns.queries                               # [(qname, qtype), ...] received
    dns.stop()

It answers every name with the AA bit (and RA, since the resolver uses it as a forwarder): the
records it holds, NOERROR with no answer (NODATA, with an SOA) for a known name without records of
the asked type, NXDOMAIN for an unknown name. Names are case-insensitive; trailing dots optional.
Only loopback. Use names under ".example" (libunbound blocks ".test" and ".invalid" by default).
"""

import socket
import threading

from dnslib import AAAA, MX, PTR, QTYPE, RCODE, RR, SOA, TXT, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer


def _norm(name):
    name = str(name).lower()
    return name if name.endswith(".") else name + "."


class _Resolver(BaseResolver):
    def __init__(self, owner):
        self.owner = owner

    def resolve(self, request, handler):
        reply = request.reply()
        reply.header.aa = 1
        reply.header.ra = 1
        q = request.q
        qname = _norm(q.qname)
        qtype = QTYPE[q.qtype]
        with self.owner.lock:
            self.owner.queries.append((qname.rstrip("."), qtype))
            if self.owner.fail_all:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            recs = self.owner.records.get(qname)
            if recs is None:
                reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(self.owner.soa_rr(qname))
                return reply
            found = [rr for (t, rr) in recs if t == qtype or (qtype == "ANY")]
            for rr in found:
                reply.add_answer(rr)
            if not found:
                reply.add_auth(self.owner.soa_rr(qname))
        return reply


class _QuietLogger(DNSLogger):
    def __init__(self):
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)


def _free_udp_tcp_port(host):
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind((host, 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise AssertionError("no port free for both UDP and TCP on %s" % host)


class FakeDNS:
    """Authoritative answers for whatever names the test sets; UDP and TCP."""

    def __init__(self, host="127.0.0.1", ttl=5):
        assert host.startswith("127."), "the fake DNS listens on loopback only"
        self.host = host
        self.ttl = ttl
        self.port = None
        self.lock = threading.Lock()
        self.records = {}   # "name." -> [(type, RR)]
        self.queries = []
        self.fail_all = False
        self._servers = []

    # -- data ------------------------------------------------------------------------------------
    def _add(self, name, qtype, rdata):
        n = _norm(name)
        rr = RR(n, getattr(QTYPE, qtype), rdata=rdata, ttl=self.ttl)
        with self.lock:
            self.records.setdefault(n, []).append((qtype, rr))
        return self

    def name(self, name):
        """Make the name exist (NODATA for every type until records are added)."""
        with self.lock:
            self.records.setdefault(_norm(name), [])
        return self

    def mx(self, domain, hosts):
        """hosts: [(preference, "host.name"), ...]."""
        self.name(domain)
        for pref, host in hosts:
            self._add(domain, "MX", MX(_norm(host), pref))
        return self

    def null_mx(self, domain):
        """RFC 7505: a single "MX 0 ." record."""
        return self._add(domain, "MX", MX(".", 0))

    def a(self, name, *addrs):
        self.name(name)
        for ip in addrs:
            self._add(name, "A", A(ip))
        return self

    def aaaa(self, name, *addrs):
        self.name(name)
        for ip in addrs:
            self._add(name, "AAAA", AAAA(ip))
        return self

    def txt(self, name, *texts):
        """One TXT record per text; a text over 255 bytes is split into character-strings,
        and a tuple/list gives the strings of one record as they are."""
        self.name(name)
        for t in texts:
            if isinstance(t, (list, tuple)):
                parts = [p.encode() if isinstance(p, str) else p for p in t]
            else:
                b = t.encode() if isinstance(t, str) else t
                parts = [b[i:i + 255] for i in range(0, len(b), 255)] or [b""]
            self._add(name, "TXT", TXT(parts))
        return self

    def ptr(self, ip, host):
        """A PTR record for the address ip (IPv4 or IPv6) pointing at host."""
        import ipaddress
        return self._add(ipaddress.ip_address(ip).reverse_pointer, "PTR", PTR(_norm(host)))

    def remove(self, name, qtype=None):
        """Drop the records of name (of one type, or all of them: the name then is unknown)."""
        n = _norm(name)
        with self.lock:
            if qtype is None:
                self.records.pop(n, None)
            elif n in self.records:
                self.records[n] = [x for x in self.records[n] if x[0] != qtype]
        return self

    def clear(self):
        with self.lock:
            self.records.clear()
            self.queries.clear()

    def soa_rr(self, qname):
        zone = qname.split(".", 1)[1] if qname.count(".") > 1 else qname
        return RR(zone or ".", QTYPE.SOA, ttl=self.ttl,
                  rdata=SOA("ns." + (zone or "."), "hostmaster." + (zone or "."),
                            (1, 3600, 600, 86400, self.ttl)))

    def asked(self, qname, qtype=None):
        q = qname.lower().rstrip(".")
        with self.lock:
            return [x for x in self.queries if x[0] == q and (qtype is None or x[1] == qtype)]

    # -- life ------------------------------------------------------------------------------------
    @property
    def forward(self):
        """The value for hikyaku's dns.forward list."""
        return "%s@%d" % (self.host, self.port)

    def start(self):
        self.port = _free_udp_tcp_port(self.host)
        resolver = _Resolver(self)
        for tcp in (False, True):
            srv = DNSServer(resolver, address=self.host, port=self.port, tcp=tcp,
                            logger=_QuietLogger())
            srv.start_thread()
            self._servers.append(srv)
        return self

    def stop(self):
        for srv in self._servers:
            try:
                srv.server.shutdown()
                srv.server.server_close()
            except OSError:
                pass
            if srv.thread is not None:
                srv.thread.join(5)
        self._servers = []
