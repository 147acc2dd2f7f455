"""SMTP smuggling: only CRLF.CRLF ends DATA; bare CR/LF spoils the message (DESIGN.md 6, 13)."""

import pytest

from conftest import Raw, message, queued_id

SMUGGLED = (b"MAIL FROM:<smuggler@evil.example>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n"
            b"Subject: SMUGGLED-TOKEN\r\n\r\nsmuggled body\r\n")

VARIANTS = {
    "lf-dot-lf": b"\n.\n",
    "cr-dot-cr": b"\r.\r",
    "crlf-dot-lf": b"\r\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "crlf-dot-cr": b"\r\n.\r",
    "cr-dot-crlf": b"\r.\r\n",
}


def rejected(r):
    return (r.code, r.enhanced) in ((554, "5.6.11"), (550, "5.6.0"))


def assert_nothing_smuggled(d):
    for qid in d.queue_ids():
        assert b"SMUGGLED-TOKEN" not in d.read_msg(qid), "smuggled message %s queued" % qid
        assert d.read_env(qid).from_ != "smuggler@evil.example"


@pytest.mark.parametrize("sep", list(VARIANTS.values()), ids=list(VARIANTS))
def test_fake_end_of_data_is_not_end(daemon, sep):
    with Raw(daemon.port()) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        assert c.cmd("RCPT TO:<b@example.net>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: carrier\r\n\r\nbody" + sep + SMUGGLED + b".\r\n")
        r = c.reply()
        assert rejected(r), "expected 554 5.6.11 or 550 5.6.0 after the real end: %r" % r
        # Exactly one reply for the whole thing: the next reply belongs to our NOOP.
        r = c.cmd("NOOP")
        assert r.code == 250, "smuggled commands were answered: %r" % r
        # The session is still usable, and only a proper message gets queued.
        r = c.cmd("MAIL FROM:<legit@example.com>")
        assert r.code == 250, r
        assert c.cmd("RCPT TO:<b@example.net>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(message("LEGIT-TOKEN") + b".\r\n")
        qid = queued_id(c.reply())
    assert daemon.queue_ids() == [qid]
    assert b"LEGIT-TOKEN" in daemon.read_msg(qid)
    assert_nothing_smuggled(daemon)


@pytest.mark.parametrize("bad", [b"bare\nlf inside\r\n", b"bare\rcr inside\r\n",
                                 b"ends in bare lf\n", b"trailing cr\r\r\n"],
                         ids=["bare-lf", "bare-cr", "line-ends-lf", "cr-before-crlf"])
def test_bare_cr_or_lf_rejects_message(daemon, bad):
    with Raw(daemon.port()) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        assert c.cmd("RCPT TO:<b@example.net>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: bare\r\n\r\n" + bad + b"more\r\n.\r\n")
        r = c.reply()
        assert rejected(r), r
        assert c.cmd("NOOP").code == 250
    assert daemon.count() == 0


def test_smuggling_in_one_write_with_pipelining(daemon):
    """The whole attack in one write, as a pipelining client would send it."""
    with Raw(daemon.port()) as c:
        c.send(b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n"
               b"DATA\r\nSubject: carrier\r\n\r\nx\n.\r\n" + SMUGGLED + b".\r\nQUIT\r\n")
        ehlo, mail, rcpt, data, end, quit_ = c.replies(6)
        assert [ehlo.code, mail.code, rcpt.code, data.code] == [250, 250, 250, 354]
        assert rejected(end), end
        assert quit_.code == 221, quit_
    assert daemon.count() == 0
    assert daemon.body_ids() == []


def test_smuggling_via_bdat_then_data_is_plain_data(daemon):
    """Inside BDAT, CRLF.CRLF is only bytes; nothing in the chunk is a command."""
    chunk = b"Subject: chunk\r\n\r\nx\r\n.\r\n" + SMUGGLED + b".\r\n"
    with Raw(daemon.port()) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        assert c.cmd("RCPT TO:<b@example.net>").code == 250
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        qid = queued_id(c.reply())
        assert c.cmd("NOOP").code == 250
    assert daemon.queue_ids() == [qid]
    assert daemon.read_env(qid).from_ == "a@example.com"
