"""Limits: line length, recipients, size, errors, timeouts, connections (DESIGN.md 6, 13)."""

import time

import pytest

from conftest import ConnectionClosed, Raw, message, queued_id, wait_until


def start_tx(c, rcpts=1):
    c.ehlo()
    assert c.cmd("MAIL FROM:<a@example.com>").code == 250
    for i in range(rcpts):
        assert c.cmd("RCPT TO:<r%d@example.net>" % i).code == 250


def test_command_line_too_long(daemon):
    with Raw(daemon.port()) as c:
        c.ehlo()
        # The tail of the long line must be discarded, not run as a second command.
        c.send(b"NOOP " + b"x" * 3000 + b"RSET\r\nHELP\r\n")
        r = c.reply()
        assert r.code == 500 and r.enhanced == "5.5.2", r
        r = c.reply()
        assert r.code == 214, "the rest of the long line was taken as a command: %r" % r


def test_data_line_too_long(daemon):
    with Raw(daemon.port()) as c:
        start_tx(c)
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: long\r\n\r\n" + b"y" * 3000 + b"\r\nend\r\n.\r\n")
        r = c.reply()
        assert r.code == 500 and r.enhanced == "5.5.2", r
        assert c.cmd("NOOP").code == 250
    assert daemon.count() == 0


def test_line_at_the_limit_is_fine(daemon):
    with Raw(daemon.port()) as c:
        start_tx(c)
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: long\r\n\r\n" + b"y" * 998 + b"\r\n.\r\n")
        queued_id(c.reply())


def test_too_many_recipients(daemon_factory):
    d = daemon_factory(limits={"max_recipients": 3})
    with Raw(d.port()) as c:
        start_tx(c, rcpts=3)
        r = c.cmd("RCPT TO:<four@example.net>")
        assert r.code == 452 and r.enhanced == "4.5.3", r
        assert c.cmd("DATA").code == 354
        c.send(message() + b".\r\n")
        qid = queued_id(c.reply())
    assert d.read_env(qid).rcpt_addrs == ["r0@example.net", "r1@example.net", "r2@example.net"]


def test_declared_size_too_big(daemon_factory):
    d = daemon_factory(limits={"max_message_size": "10K"})
    with Raw(d.port()) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.com> SIZE=20000")
        assert r.code == 552 and r.enhanced == "5.3.4", r
        r = c.cmd("MAIL FROM:<a@example.com> SIZE=5000")
        assert r.code == 250, r


def test_actual_size_too_big(daemon_factory):
    d = daemon_factory(limits={"max_message_size": "10K"})
    with Raw(d.port()) as c:
        start_tx(c)
        assert c.cmd("DATA").code == 354
        c.send(message("big", ("z" * 70 + "\r\n") * 300) + b".\r\n")
        r = c.reply()
        assert r.code == 552 and r.enhanced == "5.3.4", r
        assert c.cmd("NOOP").code == 250
    assert d.count() == 0


def test_bdat_too_big(daemon_factory):
    d = daemon_factory(limits={"max_message_size": "10K"})
    with Raw(d.port()) as c:
        start_tx(c)
        chunk = b"x" * 6000
        c.send(b"BDAT 6000\r\n" + chunk)
        assert c.reply().code == 250
        c.send(b"BDAT 6000 LAST\r\n" + chunk)
        r = c.reply()
        assert r.code == 552 and r.enhanced == "5.3.4", r
        assert c.cmd("NOOP").code == 250
    assert d.count() == 0


@pytest.mark.parametrize("value", ["99999999999999999999999999", "18446744073709551616",
                                   "-1", "1e9"])
def test_size_overflow_not_accepted(daemon, value):
    with Raw(daemon.port()) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.com> SIZE=%s" % value)
        assert r.code in (501, 552), r
        r = c.cmd("RCPT TO:<b@example.net>")
        assert r.code == 503, "MAIL with SIZE=%s was taken: %r" % (value, r)


def test_bdat_size_overflow(daemon):
    with Raw(daemon.port()) as c:
        start_tx(c)
        r = c.cmd("BDAT 99999999999999999999999")
        assert r.code in (501, 552), r


def test_too_many_errors_421(daemon_factory):
    d = daemon_factory(limits={"max_errors": 3})
    with Raw(d.port()) as c:
        got = []
        for i in range(6):
            try:
                got.append(c.cmd("BOGUS%d" % i))
            except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
                break
            if got[-1].code == 421:
                break
        assert got and got[-1].code == 421 and got[-1].enhanced == "4.7.0", got
        assert len(got) <= 4, "more than max_errors errors before 421: %r" % got
        assert c.closed(), "connection not closed after 421"


def test_command_timeout_421(daemon_factory):
    d = daemon_factory(limits={"command_timeout": "2s"})
    with Raw(d.port()) as c:
        c.ehlo()
        t0 = time.monotonic()
        c.settimeout(8)
        r = c.reply()   # nothing sent: the server must give up by itself
        waited = time.monotonic() - t0
        assert r.code == 421 and r.enhanced == "4.4.2", r
        assert 1.0 <= waited <= 6.0, "timeout after %.1fs, configured 2s" % waited
        assert c.closed()


def test_max_connections_per_ip(daemon_factory):
    d = daemon_factory(limits={"max_connections_per_ip": 2})
    a, b = Raw(d.port()), Raw(d.port())
    try:
        assert a.greeting.code == 220 and b.greeting.code == 220
        with Raw(d.port()) as c:
            assert c.greeting.code == 421, "third connection from one IP: %r" % c.greeting
            assert c.closed()
        a.cmd("QUIT")
        a.close()

        def accepted():
            x = Raw(d.port())
            try:
                return x.greeting.code == 220
            finally:
                x.close()
        wait_until(accepted, 5.0, "a slot to free up after one connection closed", 0.05)
    finally:
        a.close()
        b.close()


def test_data_timeout_421_nothing_queued(daemon_factory):
    d = daemon_factory(limits={"data_timeout": "2s"})
    with Raw(d.port()) as c:
        start_tx(c)
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: stalled\r\n\r\npartial line")
        c.settimeout(8)
        r = c.reply()
        assert r.code == 421 and r.enhanced == "4.4.2", r
        assert c.closed()
    assert d.count() == 0 and d.body_ids() == []


@pytest.mark.parametrize("how", ["data", "bdat"])
def test_client_vanishes_mid_message(daemon, how):
    c = Raw(daemon.port())
    start_tx(c)
    if how == "data":
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: gone\r\n\r\nhalf")
    else:
        c.send(b"BDAT 5000 LAST\r\nSubject: gone\r\n\r\nhalf")
    c.close()
    # The daemon goes on serving and keeps nothing of the half message.
    with Raw(daemon.port()) as c2:
        assert c2.cmd("NOOP").code == 250
    wait_until(lambda: daemon.files("tmp") == [], 5.0, "tmp/ to be empty")
    assert daemon.count() == 0 and daemon.body_ids() == []


def test_max_connections_total(daemon_factory):
    d = daemon_factory(limits={"max_connections": 2})
    a, b = Raw(d.port()), Raw(d.port())
    try:
        with Raw(d.port()) as c:
            assert c.greeting.code == 421, c.greeting
    finally:
        a.close()
        b.close()


def test_nul_in_command_refused(daemon):
    with Raw(daemon.port()) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a\0b@example.com>")
        assert r.code in (500, 501), r
        assert c.cmd("RCPT TO:<b@example.net>").code == 503
