"""STARTTLS (RFC 3207), implicit TLS, AUTH PLAIN/LOGIN (RFC 4954) (DESIGN.md 6, 13, 14)."""

import base64
import smtplib
import subprocess

from conftest import (PASSWORD, USER, Raw, client_tls_context, message, queued_id,
                      send_raw_transaction, split_body)


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def plain_ir(user, password):
    return b64("\0%s\0%s" % (user, password))


def starttls(c):
    r = c.cmd("STARTTLS")
    assert r.code == 220, r
    assert c.buf == b"", "bytes after the STARTTLS reply: %r" % c.buf
    c.wrap_tls()


def test_starttls_with_smtplib(multi):
    s = smtplib.SMTP("127.0.0.1", multi.port("starttls"), timeout=10)
    try:
        s.ehlo("client.example")
        code, _ = s.starttls(context=client_tls_context())
        assert code == 220
        s.ehlo("client.example")
        s.mail("a@example.com")
        s.rcpt("b@example.net")
        qid = queued_id(s.data(message("over tls")))
    finally:
        s.quit()
    assert multi.read_env(qid).rcpt_addrs == ["b@example.net"]


def run_swaks(args, timeout=30):
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--helo", "client.example",
                        "--from", "a@example.com", "--to", "b@example.net",
                        "--timeout", "10"] + args,
                       capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def test_starttls_with_swaks(multi):
    rc, out = run_swaks(["--port", str(multi.port("starttls")), "--tls"])
    assert rc == 0, out
    assert "queued as" in out, out
    assert multi.count() == 1


def test_swaks_auth_plain_on_submission(multi):
    rc, out = run_swaks(["--port", str(multi.port("submission")), "--tls", "-a", "PLAIN",
                         "--auth-user", USER, "--auth-password", PASSWORD])
    assert rc == 0, out
    assert "235" in out and "queued as" in out, out
    (qid,) = multi.queue_ids()
    assert multi.read_env(qid).source_params.get("user") == USER


def test_implicit_tls_listener(multi):
    with Raw(multi.port("implicit"), tls=True) as c:
        assert c.greeting.code == 220
        r = c.ehlo()
        words = [l.split(" ")[0].upper() for l in r.lines[1:]]
        assert "STARTTLS" not in words
        assert "AUTH" in words, "AUTH not offered on implicit TLS: %r" % r
        qid = queued_id(send_raw_transaction(c, "a@example.com", ["b@example.net"], message(),
                                             ehlo=False))
    assert multi.count() == 1 and multi.queue_ids() == [qid]


def test_starttls_discards_input_buffered_before_handshake(multi):
    with Raw(multi.port("starttls")) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nNOOP\r\n")   # the NOOP is an injection attempt
        r = c.reply()
        assert r.code == 220, r
        assert c.buf == b"", "plaintext reply after the STARTTLS reply: %r" % c.buf
        c.wrap_tls()
        r = c.cmd("HELP")
        assert r.code == 214, "the injected NOOP was answered inside TLS: %r" % r
        r = c.cmd("NOOP")
        assert r.code == 250


def test_starttls_twice_refused(multi):
    with Raw(multi.port("starttls")) as c:
        c.ehlo()
        starttls(c)
        c.ehlo()
        r = c.cmd("STARTTLS")
        assert 500 <= r.code < 600, r


def auth_plain(c, user, password):
    return c.cmd("AUTH PLAIN " + plain_ir(user, password))


def auth_login(c, user, password):
    r = c.cmd("AUTH LOGIN")
    assert r.code == 334, r
    assert base64.b64decode(r.lines[0]).lower().startswith(b"username"), r
    r = c.cmd(b64(user))
    assert r.code == 334, r
    assert base64.b64decode(r.lines[0]).lower().startswith(b"password"), r
    return c.cmd(b64(password))


def tls_session(multi, name="starttls"):
    c = Raw(multi.port(name))
    c.ehlo()
    starttls(c)
    c.ehlo()
    return c


def test_auth_plain_ok(multi):
    with tls_session(multi) as c:
        r = auth_plain(c, USER, PASSWORD)
        assert r.code == 235 and r.enhanced == "2.7.0", r
        r = c.cmd("AUTH PLAIN " + plain_ir(USER, PASSWORD))
        assert r.code == 503, "second AUTH in one session: %r" % r


def test_auth_plain_without_initial_response(multi):
    with tls_session(multi) as c:
        r = c.cmd("AUTH PLAIN")
        assert r.code == 334, r
        r = c.cmd(plain_ir(USER, PASSWORD))
        assert r.code == 235, r


def test_auth_login_ok(multi):
    with tls_session(multi) as c:
        r = auth_login(c, USER, PASSWORD)
        assert r.code == 235 and r.enhanced == "2.7.0", r


def test_auth_with_smtplib_login(multi):
    s = smtplib.SMTP("127.0.0.1", multi.port("submission"), timeout=10)
    try:
        s.ehlo("client.example")
        s.starttls(context=client_tls_context())
        s.ehlo("client.example")
        s.user, s.password = USER, PASSWORD
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235
        s.mail("a@example.com")
        s.rcpt("b@example.net")
        queued_id(s.data(message("smtplib login")))
    finally:
        s.quit()


def test_bad_password_and_unknown_user_get_same_535(multi):
    with tls_session(multi) as c:
        bad = auth_plain(c, USER, PASSWORD + "x")
        unknown = auth_plain(c, "nobody", PASSWORD)
        login_bad = auth_login(c, USER, "wrong")
    assert bad.code == 535 and bad.enhanced == "5.7.8", bad
    assert (unknown.code, unknown.lines) == (bad.code, bad.lines), (bad, unknown)
    assert login_bad.code == 535 and login_bad.enhanced == "5.7.8", login_bad


def test_malformed_auth(multi):
    with tls_session(multi) as c:
        r = c.cmd("AUTH PLAIN !!!notbase64!!!")
        assert r.code == 501, r
        r = c.cmd("AUTH LOGIN")
        assert r.code == 334
        r = c.cmd("*")
        assert r.code == 501, "AUTH cancel should be 501: %r" % r
        r = c.cmd("AUTH CRAM-MD5")
        assert r.code == 504, r
        # Fresh state: a good attempt still works.
        assert auth_plain(c, USER, PASSWORD).code == 235


def test_auth_without_tls_refused(multi):
    with Raw(multi.port("starttls")) as c:
        r = c.ehlo()
        assert not any(l.upper().startswith("AUTH") for l in r.lines[1:]), r
        r = auth_plain(c, USER, PASSWORD)
        assert r.code == 538 and r.enhanced == "5.7.11", r


def test_auth_in_clear_when_allowed(multi):
    with Raw(multi.port("insecure")) as c:
        c.ehlo()
        r = auth_plain(c, USER, PASSWORD)
        assert r.code == 235, r


def test_auth_required_listener(multi):
    with Raw(multi.port("submission")) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.com>")
        assert r.code == 530 and r.enhanced == "5.7.0", r
        starttls(c)
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.com>")
        assert r.code == 530 and r.enhanced == "5.7.0", r
        assert auth_plain(c, USER, PASSWORD).code == 235
        r = c.cmd("MAIL FROM:<a@example.com>")
        assert r.code == 250, r


def test_submission_adds_message_id_and_date(multi):
    data = b"From: <a@example.com>\r\nTo: <b@example.net>\r\nSubject: bare\r\n\r\nhi\r\n"
    with tls_session(multi, "submission") as c:
        assert auth_plain(c, USER, PASSWORD).code == 235
        qid = queued_id(send_raw_transaction(c, "a@example.com", ["b@example.net"], data,
                                             ehlo=False))
    head, body = split_body(multi.read_msg(qid))
    names = [l.split(b":")[0].lower() for l in head.split(b"\r\n") if l and l[:1] not in b" \t"]
    assert names.count(b"message-id") == 1, head
    assert names.count(b"date") == 1, head
    assert body == b"hi\r\n"


def test_submission_keeps_existing_message_id_and_date(multi):
    data = (b"From: <a@example.com>\r\nTo: <b@example.net>\r\nSubject: has\r\n"
            b"Message-ID: <keep.1@example.com>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            b"\r\nhi\r\n")
    with tls_session(multi, "submission") as c:
        assert auth_plain(c, USER, PASSWORD).code == 235
        qid = queued_id(send_raw_transaction(c, "a@example.com", ["b@example.net"], data,
                                             ehlo=False))
    msg = multi.read_msg(qid)
    assert msg.endswith(data), msg
    head, _ = split_body(msg)
    assert head.lower().count(b"\r\nmessage-id:") + head.lower().startswith(b"message-id:") == 1


def test_auth_failures_are_throttled(daemon_factory):
    from conftest import STD_LISTENERS, ConnectionClosed
    d = daemon_factory(listeners=STD_LISTENERS, limits={"auth_failures_per_min": 2})
    with Raw(d.port("insecure")) as c:
        c.ehlo()
        codes = [auth_plain(c, USER, "wrong%d" % i).code for i in range(2)]
        assert codes == [535, 535], codes
        # Over the limit: refused before any check, even with the right password
        # (454 4.7.0, or 421 4.7.0 and close once the IP is far over).
        r = auth_plain(c, USER, PASSWORD)
        assert (r.code, r.enhanced) in ((454, "4.7.0"), (421, "4.7.0")), r
    # Also from a new connection (per IP and per user, not per session).
    with Raw(d.port("insecure")) as c:
        c.ehlo()
        try:
            r = auth_plain(c, USER, PASSWORD)
            assert (r.code, r.enhanced) in ((454, "4.7.0"), (421, "4.7.0")), r
        except (ConnectionClosed, ConnectionResetError):
            pass
