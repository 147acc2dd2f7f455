"""Relay policy per listener (DESIGN.md 13, 14): networks, authenticated, both; open-relay tricks."""

import base64

import pytest

from conftest import PASSWORD, USER, Raw, message, queued_id

DENIED = (554, "5.7.1")


def auth(c):
    r = c.cmd("AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode()).decode())
    assert r.code == 235, r


def rcpt(c, addr="b@example.net"):
    c.ehlo()
    assert c.cmd("MAIL FROM:<a@example.com>").code == 250
    return c.cmd("RCPT TO:<%s>" % addr)


def assert_denied(r):
    assert (r.code, r.enhanced) == DENIED, r
    assert "Relay access denied" in r.lines[0], r


@pytest.fixture
def outside(daemon_factory):
    """127.0.0.1 is not in networks: relay by IP is refused everywhere."""
    return daemon_factory(networks=["10.0.0.0/8"], listeners=[
        {"name": "networks"},
        {"name": "authenticated", "auth": "optional", "relay": "authenticated",
         "allow_insecure_auth": True},
        {"name": "both", "auth": "optional", "relay": ["networks", "authenticated"],
         "allow_insecure_auth": True},
    ])


def test_networks_allowed_ip_relays(daemon):
    with Raw(daemon.port()) as c:
        r = rcpt(c)
        assert r.code == 250, r
        assert c.cmd("DATA").code == 354
        c.send(message() + b".\r\n")
        queued_id(c.reply())


def test_networks_other_ip_denied(outside):
    with Raw(outside.port("networks")) as c:
        assert_denied(rcpt(c))
        assert c.cmd("DATA").code in (503, 554)
    assert outside.count() == 0


def test_authenticated_listener_needs_auth(outside):
    with Raw(outside.port("authenticated")) as c:
        assert_denied(rcpt(c))
        assert c.cmd("RSET").code == 250
        auth(c)
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        r = c.cmd("RCPT TO:<b@example.net>")
        assert r.code == 250, r


def test_authenticated_listener_denies_even_trusted_ip_without_auth(multi):
    """relay: authenticated ignores networks, even though 127.0.0.1 is in them."""
    with Raw(multi.port("insecure")) as c:
        assert_denied(rcpt(c))


def test_networks_or_authenticated(outside):
    with Raw(outside.port("both")) as c:
        assert_denied(rcpt(c))
        assert c.cmd("RSET").code == 250
        auth(c)
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        assert c.cmd("RCPT TO:<b@example.net>").code == 250


@pytest.mark.parametrize("addr", [
    "user%other.example@example.net",
    "other.example!user@example.net",
    "@relay.example:user@example.net",
    "@a.example,@b.example:user@example.net",
], ids=["percent", "bang", "source-route", "source-route-2"])
def test_open_relay_tricks_denied(daemon, addr):
    with Raw(daemon.port()) as c:
        assert_denied(rcpt(c, addr))
        assert c.cmd("DATA").code in (503, 554)
    assert daemon.count() == 0
