"""SMTP commands (RFC 5321, 1869, 3030, 3461, 6531) against the real daemon (DESIGN.md 6, 14)."""

import smtplib

import pytest

from conftest import QUEUED_RE, Raw, message, queued_id, send_raw_transaction, split_body

ALWAYS = ["PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "DSN"]


def keywords(reply):
    """EHLO keywords (upper case) -> parameter text, from a Raw EHLO reply."""
    kw = {}
    for line in reply.lines[1:]:
        word, _, rest = line.partition(" ")
        kw[word.upper()] = rest
    return kw


def test_greeting_is_220_with_domain(daemon):
    with Raw(daemon.port()) as c:
        assert c.greeting.code == 220
        assert c.greeting.lines[0].split(" ")[0], "greeting names no domain"


def test_ehlo_keywords_plain_listener(daemon):
    with Raw(daemon.port()) as c:
        r = c.ehlo()
        assert len(r.lines) >= 2, "EHLO reply has no keywords: %r" % r
        kw = keywords(r)
        for k in ALWAYS:
            assert k in kw, "%s not advertised: %r" % (k, r.lines)
        assert kw.get("SIZE") == str(1 << 20), "SIZE should be max_message_size (1M): %r" % r
        assert "STARTTLS" not in kw, "STARTTLS advertised on a tls: none listener"
        assert "AUTH" not in kw, "AUTH advertised on an auth: none plain listener"


def test_ehlo_starttls_listener_before_and_after_tls(multi):
    s = smtplib.SMTP("127.0.0.1", multi.port("starttls"), timeout=10)
    try:
        s.ehlo("client.example")
        assert s.has_extn("starttls")
        assert not s.has_extn("auth"), "AUTH offered before TLS without allow_insecure_auth"
        for k in ALWAYS:
            assert s.has_extn(k.lower()), k
        from conftest import client_tls_context
        code, _ = s.starttls(context=client_tls_context())
        assert code == 220
        s.ehlo("client.example")
        assert not s.has_extn("starttls"), "STARTTLS offered again inside TLS"
        mechs = s.esmtp_features.get("auth", "").upper().split()
        assert "PLAIN" in mechs and "LOGIN" in mechs, s.esmtp_features
    finally:
        s.close()


def test_ehlo_insecure_auth_listener_offers_auth_in_clear(multi):
    with Raw(multi.port("insecure")) as c:
        kw = keywords(c.ehlo())
        assert "STARTTLS" not in kw
        mechs = kw.get("AUTH", "").upper().split()
        assert "PLAIN" in mechs and "LOGIN" in mechs, kw


def test_helo_then_transaction(daemon):
    with Raw(daemon.port()) as c:
        r = c.cmd("HELO client.example")
        assert r.code == 250, r
        assert len(r.lines) == 1, "HELO reply must be one line: %r" % r
        qid = queued_id(send_raw_transaction(c, "a@example.com", ["b@example.net"], message(),
                                             ehlo=False))
    env = daemon.read_env(qid)
    assert env.source_params.get("helo") == "client.example"


def test_mail_rcpt_data_queues_with_envelope(daemon):
    s = smtplib.SMTP("127.0.0.1", daemon.port(), timeout=10)
    try:
        s.ehlo("client.example")
        assert s.mail("sender@example.com")[0] == 250
        assert s.rcpt("one@example.net")[0] == 250
        assert s.rcpt("two@example.org")[0] == 250
        reply = s.data(message("envelope"))
        qid = queued_id(reply)
    finally:
        s.quit()
    assert daemon.queue_ids() == [qid]
    assert daemon.body_ids() == [qid]
    env = daemon.read_env(qid)
    assert env.id == qid
    assert env.from_ == "sender@example.com"
    assert env.rcpt_addrs == ["one@example.net", "two@example.org"]
    assert [r["index"] for r in env.rcpts] == [0, 1]
    # The sink route is a closed port: the relay may already have tried once and deferred.
    assert all(r.get("state") in ("queued", "deferred") for r in env.rcpts), env.rcpts
    assert env.source == "smtp"
    assert env.source_params.get("client") == "127.0.0.1"
    assert env.size == len(daemon.read_msg(qid))


def test_dsn_parameters_recorded(daemon):
    with Raw(daemon.port()) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<sender@example.com> RET=HDRS ENVID=QQ314159 BODY=8BITMIME")
        assert r.code == 250, r
        r = c.cmd("RCPT TO:<one@example.net> NOTIFY=SUCCESS,FAILURE "
                  "ORCPT=rfc822;one@example.net")
        assert r.code == 250, r
        r = c.cmd("RCPT TO:<two@example.net> NOTIFY=NEVER")
        assert r.code == 250, r
        r = c.cmd("RCPT TO:<three@example.net>")
        assert r.code == 250, r
        assert c.cmd("DATA").code == 354
        c.send(message() + b".\r\n")
        qid = queued_id(c.reply())
    env = daemon.read_env(qid)
    assert env.from_params.get("ret") == "HDRS"
    assert env.from_params.get("envid") == "QQ314159"
    assert env.from_params.get("body") == "8BITMIME"
    one, two, three = env.rcpts
    assert set(one.get("notify", "").split(",")) == {"SUCCESS", "FAILURE"}
    assert one.get("orcpt") == "rfc822;one@example.net"
    assert two.get("notify") == "NEVER"
    assert "orcpt" not in two
    assert "notify" not in three and "orcpt" not in three


def test_body_stored_crlf_unstuffed_with_received(daemon):
    data = (b"From: <a@example.com>\r\nSubject: dots\r\n\r\n"
            b".leading dot\r\n..two dots\r\nplain line\r\n.\tdot tab\r\nlast\r\n")
    with Raw(daemon.port()) as c:
        qid = queued_id(send_raw_transaction(c, "a@example.com", ["b@example.net"], data))
    msg = daemon.read_msg(qid)
    assert msg.startswith(b"Received: "), msg[:200]
    # The client's message follows the prepended trace header(s) unchanged.
    assert msg.endswith(data), msg[-200:]
    assert b"\r\n..leading" not in msg and b"\r\n...two" not in msg, "body is dot-stuffed"
    assert msg.count(b"\n") == msg.count(b"\r\n"), "bare LF in stored body"
    assert msg.count(b"\r") == msg.count(b"\r\n"), "bare CR in stored body"
    head, _ = split_body(msg)
    received = head.split(b"\r\nFrom:")[0]
    assert b"127.0.0.1" in received, "Received header does not name the client: %r" % received


def test_rset_clears_transaction(daemon):
    with Raw(daemon.port()) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        assert c.cmd("RCPT TO:<b@example.net>").code == 250
        r = c.cmd("RSET")
        assert r.code == 250 and r.enhanced == "2.0.0", r
        r = c.cmd("RCPT TO:<b@example.net>")
        assert r.code == 503 and r.enhanced == "5.5.1", r
        r = c.cmd("DATA")
        assert r.code == 503, r
    assert daemon.count() == 0


def test_noop_and_quit(daemon):
    with Raw(daemon.port()) as c:
        r = c.cmd("NOOP")
        assert r.code == 250 and r.enhanced == "2.0.0", r
        r = c.cmd("NOOP with an argument")
        assert r.code == 250, r
        r = c.cmd("QUIT")
        assert r.code == 221 and r.enhanced == "2.0.0", r
        assert c.closed(), "connection stays open after QUIT"


def test_vrfy_252_help_214(daemon):
    with Raw(daemon.port()) as c:
        c.ehlo()
        r = c.cmd("VRFY postmaster")
        assert r.code == 252, r
        r = c.cmd("HELP")
        assert r.code == 214, r


def test_unknown_verb_500(daemon):
    with Raw(daemon.port()) as c:
        r = c.cmd("FROBNICATE now")
        assert r.code == 500 and r.enhanced == "5.5.2", r
        assert c.cmd("NOOP").code == 250


@pytest.mark.parametrize("steps", [
    ["MAIL FROM:<a@example.com>"],                      # before EHLO
    ["EHLO c.example", "RCPT TO:<b@example.net>"],      # RCPT before MAIL
    ["EHLO c.example", "DATA"],                         # DATA before MAIL
    ["EHLO c.example", "MAIL FROM:<a@example.com>", "DATA"],  # DATA before RCPT
    ["EHLO c.example", "MAIL FROM:<a@example.com>", "MAIL FROM:<a@example.com>"],  # nested MAIL
], ids=["mail-before-ehlo", "rcpt-before-mail", "data-before-mail", "data-before-rcpt",
        "mail-twice"])
def test_bad_sequence_503(daemon, steps):
    with Raw(daemon.port()) as c:
        for s in steps[:-1]:
            assert c.cmd(s).code == 250
        r = c.cmd(steps[-1])
        assert r.code == 503 and r.enhanced == "5.5.1", r


@pytest.mark.parametrize("line", [
    "MAIL FROM:a@example.com",         # no angle brackets
    "MAIL FROM:<a@@example.com>",
    "MAIL TO:<a@example.com>",
    "EHLO",                            # EHLO needs a domain
])
def test_syntax_error_501(daemon, line):
    with Raw(daemon.port()) as c:
        if not line.startswith("EHLO"):
            c.ehlo()
        r = c.cmd(line)
        assert r.code == 501 and r.enhanced == "5.5.4", r


def test_unknown_mail_parameter_555(daemon):
    with Raw(daemon.port()) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.com> FROBNICATE=yes")
        assert r.code == 555, r
        assert r.enhanced and r.enhanced.startswith("5.5."), r
        r = c.cmd("RCPT TO:<b@example.net> FROBNICATE=yes")
        assert r.code in (503, 555), r


def test_bdat_chunks(daemon):
    part1 = b"From: <a@example.com>\r\nSubject: chunks\r\n\r\nfirst part\r\n"
    part2 = b".\r\n..not stuffed\r\n\r\n.\r\n"   # dots mean nothing inside BDAT
    part3 = b"tail\r\n"
    with Raw(daemon.port()) as c:
        kw = c.ehlo().lines
        assert any(l.upper() == "CHUNKING" for l in kw)
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        assert c.cmd("RCPT TO:<b@example.net>").code == 250
        c.send(b"BDAT %d\r\n" % len(part1) + part1)
        r = c.reply()
        assert r.code == 250, r
        c.send(b"BDAT %d\r\n" % len(part2) + part2)
        r = c.reply()
        assert r.code == 250, r
        c.send(b"BDAT %d\r\n" % len(part3) + part3)
        assert c.reply().code == 250
        r = c.cmd("BDAT 0 LAST")
        qid = queued_id(r)
        assert c.cmd("NOOP").code == 250
    msg = daemon.read_msg(qid)
    assert msg.startswith(b"Received: ")
    assert msg.endswith(part1 + part2 + part3), msg[-120:]


def test_bdat_single_last_chunk(daemon):
    data = message("bdat-last")
    with Raw(daemon.port()) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        assert c.cmd("RCPT TO:<b@example.net>").code == 250
        c.send(b"BDAT %d LAST\r\n" % len(data) + data)
        qid = queued_id(c.reply())
    assert daemon.read_msg(qid).endswith(data)


def test_data_after_bdat_is_503(daemon):
    with Raw(daemon.port()) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        assert c.cmd("RCPT TO:<b@example.net>").code == 250
        chunk = b"Subject: x\r\n\r\n"
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
        assert c.reply().code == 250
        r = c.cmd("DATA")
        assert r.code == 503, r
        assert c.cmd("NOOP").code == 250
    assert daemon.count() == 0


def test_bdat_without_transaction_consumes_chunk(daemon):
    """The chunk after a refused BDAT is data, never commands (RFC 3030 4.2)."""
    inner = b"NOOP\r\n"
    with Raw(daemon.port()) as c:
        c.ehlo()
        c.send(b"BDAT %d\r\n" % len(inner) + inner + b"HELP\r\n")
        r = c.reply()
        assert r.code == 503, r
        r = c.reply()
        assert r.code == 214, "the BDAT chunk was run as a command: %r" % r


def test_null_sender(daemon):
    with Raw(daemon.port()) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<>").code == 250
        assert c.cmd("RCPT TO:<b@example.net>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(message() + b".\r\n")
        qid = queued_id(c.reply())
    assert daemon.read_env(qid).from_ == ""


def test_smtputf8_address_needs_smtputf8(daemon):
    utf8_rcpt = "ユーザー@example.net"
    with Raw(daemon.port()) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        r = c.cmd("RCPT TO:<%s>" % utf8_rcpt)
        assert 500 <= r.code < 600, "UTF-8 address accepted without SMTPUTF8: %r" % r
        assert c.cmd("RSET").code == 250
        r = c.cmd("MAIL FROM:<sender@example.com> SMTPUTF8")
        assert r.code == 250, r
        r = c.cmd("RCPT TO:<%s>" % utf8_rcpt)
        assert r.code == 250, r
        assert c.cmd("DATA").code == 354
        c.send(message() + b".\r\n")
        qid = queued_id(c.reply())
    env = daemon.read_env(qid)
    assert env.rcpt_addrs == [utf8_rcpt]
    assert env.from_params.get("smtputf8") is True, env.from_params


def test_smtputf8_sender_refused_without_smtputf8(daemon):
    with Raw(daemon.port()) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<送信者@example.com>")
        assert 500 <= r.code < 600, r
    assert daemon.count() == 0


def test_queued_reply_text_exact(daemon):
    with Raw(daemon.port()) as c:
        r = send_raw_transaction(c, "a@example.com", ["b@example.net"], message())
    assert r.code == 250
    assert QUEUED_RE.match(r.lines[0]), r


def test_sigterm_says_421_to_idle_sessions_and_exits_0(daemon):
    import signal
    with Raw(daemon.port()) as c:
        c.ehlo()
        daemon.signal(signal.SIGTERM)
        r = c.reply()
        assert r.code == 421 and r.enhanced == "4.3.2", r
        assert c.closed()
    assert daemon.wait_exit() == 0


@pytest.mark.parametrize("line,code", [
    ("MAIL FROM:<a@example.com> ENVID=bad+ZZ", 501),
    ("MAIL FROM:<a@example.com> RET=MAYBE", 501),
    ("MAIL FROM:<a@example.com> BODY=9BIT", 501),
    ("MAIL FROM:<a@example.com> SIZE=1 SIZE=2", 501),
], ids=["envid-bad-xtext", "ret-bad", "body-bad", "size-twice"])
def test_bad_mail_parameters(daemon, line, code):
    with Raw(daemon.port()) as c:
        c.ehlo()
        r = c.cmd(line)
        assert r.code in (code, 555), r
        assert c.cmd("RCPT TO:<b@example.net>").code == 503


@pytest.mark.parametrize("params", ["NOTIFY=NEVER,SUCCESS", "NOTIFY=SOMETIMES",
                                    "ORCPT=rfc822;a+ZZb@example.net", "ORCPT=noaddrtype"])
def test_bad_rcpt_parameters(daemon, params):
    with Raw(daemon.port()) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        r = c.cmd("RCPT TO:<b@example.net> " + params)
        assert r.code in (501, 555), r


def test_crlf_in_orcpt_xtext_cannot_forge_records(daemon):
    """ORCPT may carry +0D+0A as xtext; the envelope must stay one record per recipient."""
    with Raw(daemon.port()) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.com> ENVID=x+0D+0Arcpt+201+20to=evil@evil.example"
                     ).code in (250, 501)
        r = c.cmd("RCPT TO:<b@example.net> ORCPT=rfc822;b+0D+0Arcpt+201+20state=queued"
                  "+20to=evil@evil.example")
        if r.code == 250:
            if c.cmd("DATA").code == 354:
                c.send(message() + b".\r\n")
                r = c.reply()
    for qid in daemon.queue_ids():
        env = daemon.read_env(qid)   # checks the CRC and the record grammar
        assert env.rcpt_addrs == ["b@example.net"], env.raw
        assert b"evil@evil.example\n" not in env.raw


def test_starttls_on_plain_listener_refused(daemon):
    with Raw(daemon.port()) as c:
        c.ehlo()
        r = c.cmd("STARTTLS")
        assert 500 <= r.code < 600, r
        assert c.cmd("NOOP").code == 250


def test_envelope_records_listener_and_time(daemon):
    import time
    t0 = int(time.time() * 1000)
    with Raw(daemon.port()) as c:
        qid = queued_id(send_raw_transaction(c, "a@example.com", ["b@example.net"], message()))
    env = daemon.read_env(qid)
    assert env.source_params.get("listener") == daemon.listener("plain")["address"]
    assert t0 - 5000 <= env.received <= t0 + 60000, env.received
