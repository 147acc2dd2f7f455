"""DANE for direct MX delivery (RFC 7672) with dns.dnssec: true, against a DNSSEC-signed zone
served on loopback (dnssecfake.py) and fake MX servers offering STARTTLS.

- validated TLSA records that match the server's key: delivered over TLS;
- validated TLSA records that do not match: never delivered (no fall back to plaintext or to an
  unauthenticated session), the recipient is deferred with a DANE reason;
- TLSA records but no STARTTLS offered: deferred, nothing sent in clear;
- a validated "no TLSA" (NXDOMAIN proof): opportunistic STARTTLS as usual.
"""

import hashlib
import subprocess

import pytest

from conftest import delivery_daemon, env_states, submit, wait_finished, wait_until, MailLog
from dnssecfake import SignedZone
from fakesmtp import free_port_on

SENDER = "app@sender.example"
MX = "127.0.0.2"


def spki_sha256(cert):
    """Hex SHA-256 of the certificate's SubjectPublicKeyInfo (TLSA selector 1, matching type 1)."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"], check=True,
                         capture_output=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         check=True, capture_output=True, timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


@pytest.fixture
def dane_env(tmp_path, daemon_factory, fake_smtp, tls_files):
    """(zone, port, mx, make_daemon): the zone is not started yet, so each test adds its records;
    make() signs and serves it, then starts the daemon with DNSSEC on and the zone's DS as the
    trust anchor."""
    port = free_port_on([MX])
    mx = fake_smtp("mx", host=MX, port=port, start=False)
    mx.starttls = True
    zone = SignedZone(tmp_path, "example.")
    zone.add("sender.example. IN MX 10 mx.sender.example.")
    zone.add("mx.sender.example. IN A 127.0.0.9")  # DSNs (none expected) go nowhere

    def make():
        zone.start()
        mx.start()
        return delivery_daemon(daemon_factory, [], route="mx", delivery={"mx_port": port},
                               extra={"dns": {"forward": [zone.forward], "timeout": "2s",
                                              "dnssec": True, "trust_anchor": zone.anchor}})
    yield zone, port, mx, make
    zone.stop()


def domain(zone, name, port, tlsa=None):
    zone.add("%s. IN MX 10 mx.%s." % (name, name))
    zone.add("mx.%s. IN A %s" % (name, MX))
    if tlsa is not None:
        zone.add("_%d._tcp.mx.%s. IN TLSA %s" % (port, name, tlsa))


def test_dane_matching_tlsa_delivers_over_tls(dane_env, tls_files):
    zone, port, mx, make = dane_env
    domain(zone, "dane.example", port, "3 1 1 " + spki_sha256(tls_files[0]))
    d = make()
    qid = submit(d, ["rcpt@dane.example"], mail_from=SENDER)
    msgs = mx.wait_messages(1, deadline=15.0)
    wait_finished(d, qid)
    assert msgs[0].tls, "delivered without TLS although DANE requires it"
    assert zone.asked("_%d._tcp.mx.dane.example" % port, "TLSA"), "TLSA was never looked up"
    sent = MailLog(d).events(qid, "sent")
    assert sent, "no sent event in the email log"


def test_dane_mismatch_never_delivers(dane_env):
    zone, port, mx, make = dane_env
    domain(zone, "bad.example", port, "3 1 1 " + "00" * 32)
    d = make()
    qid = submit(d, ["rcpt@bad.example"], mail_from=SENDER)
    wait_until(lambda: (env_states(d, qid) or {}).get("rcpt@bad.example") == "deferred", 15.0,
               "the recipient deferred")
    assert mx.messages == [], "a message was delivered to a host whose certificate fails DANE"
    assert not any("MAIL FROM" in line.upper() for _, line in mx.commands), \
        "MAIL was sent over a session DANE did not authenticate"
    log = d.log()
    assert "DANE: TLSA records do not match" in log, \
        "the failure does not say the certificate failed DANE:\n" + log[-3000:]


def test_dane_requires_starttls(dane_env, tls_files):
    zone, port, mx, make = dane_env
    mx.starttls = False
    domain(zone, "clear.example", port, "3 1 1 " + spki_sha256(tls_files[0]))
    d = make()
    qid = submit(d, ["rcpt@clear.example"], mail_from=SENDER)
    wait_until(lambda: (env_states(d, qid) or {}).get("rcpt@clear.example") == "deferred", 15.0,
               "the recipient deferred")
    assert mx.messages == [], "sent in clear although the domain publishes TLSA records"
    assert "STARTTLS required but not offered" in d.log(), d.log_tail(30)


def test_dnssec_without_tlsa_stays_opportunistic(dane_env):
    zone, port, mx, make = dane_env
    domain(zone, "plain.example", port)
    d = make()
    qid = submit(d, ["rcpt@plain.example"], mail_from=SENDER)
    msgs = mx.wait_messages(1, deadline=15.0)
    wait_finished(d, qid)
    assert msgs[0].tls, "STARTTLS was offered but not used"
    assert zone.asked("_%d._tcp.mx.plain.example" % port, "TLSA")
