"""Smoke test of the SMTP ingress engine through the real binary (`hikyaku serve`).

Self-contained on purpose (no shared fixtures): one daemon on a free loopback port with a
temporary spool, driven with smtplib and a raw socket. The wider suite lives in the other
tests/integ/test_smtp_*.py files.
"""

import os
import signal
import smtplib
import socket
import subprocess
import time

import pytest

import ports
from conftest import split_envelope

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEADLINE = 10.0


def hikyaku_bin():
    path = os.environ.get("HIKYAKU_BIN", "build/hikyaku")
    return path if os.path.isabs(path) else os.path.join(REPO, path)


def free_port():
    return ports.free_port()


def wait_for(pred, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


@pytest.fixture
def daemon(tmp_path, request):
    extra_limits = getattr(request, "param", "")
    binary = hikyaku_bin()
    if not os.access(binary, os.X_OK):
        pytest.skip("no binary at %s" % binary)
    port = free_port()
    conf = tmp_path / "hikyaku.yaml"
    conf.write_text(
        "node: smoke\n"
        "hostname: mx.smoke.example\n"
        "spool: %s\n"
        "state: %s\n"
        "listen:\n"
        "  - address: 127.0.0.1:%d\n"
        "    relay: networks\n"
        "limits: { max_message_size: 64K, max_recipients: 3%s }\n"
        "upstreams:\n"
        "  - { name: primary, host: smtp.example.net, port: 587 }\n"
        "routes:\n"
        "  - { name: default, upstreams: [primary] }\n"
        % (tmp_path / "spool", tmp_path / "state", port, extra_limits))
    (tmp_path / "state").mkdir()
    log = open(tmp_path / "daemon.log", "wb")
    proc = subprocess.Popen([binary, "serve", "-c", str(conf)], stdout=log,
                            stderr=subprocess.STDOUT, cwd=str(tmp_path))

    def accepting():
        if proc.poll() is not None:
            raise AssertionError("daemon exited with %d: %s" % (
                proc.returncode, (tmp_path / "daemon.log").read_text(errors="replace")))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_for(accepting, "the SMTP listener")
    yield {"port": port, "spool": tmp_path / "spool", "log": tmp_path / "daemon.log",
           "proc": proc}
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            return None, lines
        line = line.decode().rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] == " ":
            return int(line[:3]), lines


def test_message_is_queued_with_received_header(daemon):
    with smtplib.SMTP("127.0.0.1", daemon["port"], timeout=DEADLINE) as c:
        code, text = c.ehlo("client.example")
        assert code == 250
        ext = text.decode().upper().splitlines()[1:]
        assert ext == ["PIPELINING", "SIZE 65536", "8BITMIME", "SMTPUTF8",
                       "ENHANCEDSTATUSCODES", "CHUNKING", "DSN"]
        c.mail("app@example.com")
        c.rcpt("one@example.net")
        # smtplib doubles the leading dot on the wire; the spool holds it unstuffed.
        code, text = c.data(b"Subject: smoke\r\n\r\nhello\r\n.leading dot\r\n")
        assert code == 250
        text = text.decode()
        assert text.startswith("2.0.0 Ok: queued as ")
        qid = text.rsplit(" ", 1)[1]
    assert len(qid) == 16
    # One file: the commit writes the body after the envelope.
    env_raw, body = split_envelope((daemon["spool"] / "queue" / (qid + ".env")).read_bytes())
    env = env_raw.decode("ascii")
    assert body.startswith(b"Received: from client.example ([127.0.0.1])\r\n")
    head = body.split(b"\r\n\r\n", 1)[0]
    assert b" with ESMTP id " + qid.encode() in head
    assert b"for <one@example.net>;" in head
    assert body.endswith(b"\r\n\r\nhello\r\n.leading dot\r\n")
    assert "to=one@example.net" in env
    assert "source smtp" in env
    log = daemon["log"].read_text(errors="replace")
    assert "event=queued qid=" + qid in log


def test_bad_sequence_and_relay_policy(daemon):
    with smtplib.SMTP("127.0.0.1", daemon["port"], timeout=DEADLINE) as c:
        c.ehlo("client.example")
        assert c.docmd("RCPT", "TO:<a@example.net>")[0] == 503
        assert c.docmd("MAIL", "FROM:<a@example.com> SIZE=9999999")[0] == 552
        assert c.docmd("MAIL", "FROM:<a@example.com>")[0] == 250
        code, text = c.docmd("RCPT", "TO:<a%b@example.net>")
        assert (code, text[:5]) == (554, b"5.7.1")
        code, text = c.docmd("AUTH", "PLAIN")
        assert code == 503


def test_pipelined_commands_and_bare_lf_in_data(daemon):
    s = socket.create_connection(("127.0.0.1", daemon["port"]), timeout=DEADLINE)
    f = s.makefile("rb")
    try:
        assert read_reply(f)[0] == 220
        s.sendall(b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
                  b"RCPT TO:<b@example.net>\r\nDATA\r\n")
        assert [read_reply(f)[0] for _ in range(4)] == [250, 250, 250, 354]
        # A bare LF "end of data" must not end the data: only CRLF.CRLF does.
        s.sendall(b"Subject: x\r\n\r\nhi\n.\nRSET\r\n.\r\nNOOP\r\n")
        code, lines = read_reply(f)
        assert code == 554 and lines[0].startswith("554 5.6.11"), lines
        assert read_reply(f)[0] == 250
    finally:
        f.close()
        s.close()
    assert not list((daemon["spool"] / "queue").glob("*.env"))


def test_talking_before_greeting_is_refused(daemon):
    """A client that writes at once: caught by the greeting pause (554 first) or, if its bytes
    came late, by their receive time (220, then 554). Its command is never run."""
    s = socket.create_connection(("127.0.0.1", daemon["port"]), timeout=DEADLINE)
    f = s.makefile("rb")
    try:
        s.sendall(b"EHLO early.example\r\n")
        code, lines = read_reply(f)
        if code == 220:
            code, lines = read_reply(f)
        assert code == 554 and lines[0].startswith("554 5.5.0"), lines
        assert read_reply(f)[0] is None
    finally:
        f.close()
        s.close()


@pytest.mark.parametrize("daemon", [", greet_pause: 0s"], indirect=True)
def test_without_pause_late_bytes_are_told_by_receive_time(daemon):
    """No pause: 220 goes out at once, and bytes sent before it still get 554 (when the kernel
    received them before the greeting was queued; a client faster than the greeting is
    indistinguishable from a polite one, so only the outcome 'never run' is certain)."""
    s = socket.create_connection(("127.0.0.1", daemon["port"]), timeout=DEADLINE)
    f = s.makefile("rb")
    try:
        s.sendall(b"EHLO early.example\r\n")
        code, lines = read_reply(f)
        assert code == 220, lines
        code, lines = read_reply(f)
        assert code in (250, 554), lines
    finally:
        f.close()
        s.close()


def test_polite_client_is_never_taken_for_an_early_talker(daemon):
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", daemon["port"]), timeout=DEADLINE)
        f = s.makefile("rb")
        try:
            assert read_reply(f)[0] == 220
            s.sendall(b"EHLO polite.example\r\n")
            assert read_reply(f)[0] == 250
        finally:
            f.close()
            s.close()


@pytest.mark.parametrize("daemon", [", greet_pause: 2s"], indirect=True)
def test_talking_during_greet_pause_gets_554_first(daemon):
    s = socket.create_connection(("127.0.0.1", daemon["port"]), timeout=DEADLINE)
    f = s.makefile("rb")
    try:
        s.sendall(b"EHLO early.example\r\n")
        code, lines = read_reply(f)
        assert code == 554 and lines[0].startswith("554 5.5.0"), lines
        assert read_reply(f)[0] is None
    finally:
        f.close()
        s.close()
