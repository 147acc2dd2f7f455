#!/usr/bin/python3
"""A tiny authoritative DNS server on loopback for tests/unit/test_dns.c (python3-dnslib).

Usage: dns_fake.py PORT ZONEFILE        (PORT 0: the kernel picks a free port)

It listens on 127.0.0.1 (UDP only), prints "PORT <n>" on stdout once ready, and answers until
SIGTERM. ZONEFILE holds records in master-file syntax with absolute names, read by dnslib, plus
two directives of its own:

    $SERVFAIL name     every query for name gets SERVFAIL
    $DROP name         queries for name get no answer at all

Every answer has AA and RA set (the resolver under test uses it as a forwarder). A name with
records, or with records below it, exists: without records of the asked type the answer is
NOERROR with an SOA (NODATA). Any other name gets NXDOMAIN with an SOA.
"""

import signal
import socket
import sys

from dnslib import QTYPE, RCODE, RR, SOA, DNSRecord


def norm(name):
    name = str(name).lower()
    return name if name.endswith(".") else name + "."


def load(path):
    records, servfail, drop, lines = {}, set(), set(), []
    with open(path, encoding="ascii") as f:
        for line in f:
            words = line.split()
            if words[:1] == ["$SERVFAIL"]:
                servfail.add(norm(words[1]))
            elif words[:1] == ["$DROP"]:
                drop.add(norm(words[1]))
            else:
                lines.append(line)
    for rr in RR.fromZone("".join(lines)):
        records.setdefault(norm(rr.rname), []).append(rr)
    exists = set()
    for name in records:
        labels = name.rstrip(".").split(".")
        for i in range(len(labels)):
            exists.add(".".join(labels[i:]) + ".")
    return records, exists, servfail, drop


def answer(query, records, exists, servfail):
    reply = query.reply()
    reply.header.aa = 1
    reply.header.ra = 1
    qname = norm(query.q.qname)
    soa = RR("example.", QTYPE.SOA, ttl=60,
             rdata=SOA("ns.example.", "hostmaster.example.", (1, 3600, 600, 86400, 60)))
    if qname in servfail:
        reply.header.rcode = RCODE.SERVFAIL
        return reply
    if qname not in exists:
        reply.header.rcode = RCODE.NXDOMAIN
        reply.add_auth(soa)
        return reply
    found = [rr for rr in records.get(qname, []) if rr.rtype == query.q.qtype]
    for rr in found:
        reply.add_answer(rr)
    if not found:
        reply.add_auth(soa)
    return reply


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    records, exists, servfail, drop = load(path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("PORT %d" % sock.getsockname()[1], flush=True)
    while True:
        data, peer = sock.recvfrom(4096)
        try:
            query = DNSRecord.parse(data)
        except Exception:  # a test server ignores what it cannot parse
            continue
        if norm(query.q.qname) in drop:
            continue
        sock.sendto(answer(query, records, exists, servfail).pack(), peer)


if __name__ == "__main__":
    main()
