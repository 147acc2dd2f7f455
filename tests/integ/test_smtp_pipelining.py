"""PIPELINING (RFC 2920) and talking before the greeting (DESIGN.md 6)."""

import socket

from conftest import ConnectionClosed, Raw, message, queued_id


def test_pipelined_group_then_data(daemon):
    """RFC-conformant pipelining: one write up to DATA, then the body and QUIT."""
    with Raw(daemon.port()) as c:
        c.send(b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
               b"RCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n")
        ehlo, mail, r1, r2, data = c.replies(5)
        assert ehlo.code == 250 and "PIPELINING" in [l.upper() for l in ehlo.lines[1:]]
        assert (mail.code, r1.code, r2.code, data.code) == (250, 250, 250, 354), \
            (mail, r1, r2, data)
        c.send(message("pipelined") + b".\r\nQUIT\r\n")
        qid = queued_id(c.reply())
        assert c.reply().code == 221
    assert daemon.read_env(qid).rcpt_addrs == ["b@example.net", "c@example.net"]


def test_whole_transaction_in_one_write(daemon):
    body = message("one-write", "line\r\n.dot\r\n")
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    with Raw(daemon.port()) as c:
        c.send(b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n"
               b"DATA\r\n" + stuffed + b".\r\nNOOP\r\nQUIT\r\n")
        ehlo, mail, rcpt, data, done, noop, quit_ = c.replies(7)
        assert [x.code for x in (ehlo, mail, rcpt, data)] == [250, 250, 250, 354]
        qid = queued_id(done)
        assert noop.code == 250 and quit_.code == 221
    assert daemon.read_msg(qid).endswith(body)


def test_two_transactions_and_errors_in_one_write(daemon):
    """A failing command inside a group gets its own reply in order; the rest carry on."""
    with Raw(daemon.port()) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<bad address>\r\n"
               b"RCPT TO:<good@example.net>\r\nDATA\r\n")
        mail, bad, good, data = c.replies(4)
        assert mail.code == 250 and bad.code == 501 and good.code == 250 and data.code == 354, \
            (mail, bad, good, data)
        c.send(message("first") + b".\r\nRSET\r\nMAIL FROM:<x@example.com>\r\n"
               b"RCPT TO:<y@example.net>\r\nDATA\r\n")
        first, rset, mail2, rcpt2, data2 = c.replies(5)
        id1 = queued_id(first)
        assert (rset.code, mail2.code, rcpt2.code, data2.code) == (250, 250, 250, 354)
        c.send(message("second") + b".\r\n")
        id2 = queued_id(c.reply())
    assert id1 != id2
    assert daemon.read_env(id1).rcpt_addrs == ["good@example.net"]
    assert daemon.read_env(id2).from_ == "x@example.com"


def test_talking_before_greeting_is_refused(daemon):
    s = socket.create_connection(("127.0.0.1", daemon.port()), timeout=3)
    c = Raw.__new__(Raw)
    c.sock, c.buf = s, b""
    try:
        s.sendall(b"EHLO early.example\r\nMAIL FROM:<a@example.com>\r\n")
        replies = []
        try:
            while len(replies) < 4:
                replies.append(c.reply())
        except (ConnectionClosed, ConnectionResetError, socket.timeout):
            pass
        codes = [r.code for r in replies]
        assert 554 in codes, "pre-greeting talk not refused: %r" % replies
        assert 250 not in codes, "commands sent before the greeting were run: %r" % replies
    finally:
        c.close()
    assert daemon.count() == 0
