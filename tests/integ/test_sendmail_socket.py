"""The sendmail socket (sendmail.socket): submission through the running daemon, -bs, and the
fall back to maildrop/ when the daemon is down.

The socket defaults to sendmail.sock beside api.control_socket, here <state>/sendmail.sock.
"""

import os
import re
import select
import socket
import stat
import subprocess
import time

import pytest

from conftest import (QUEUED_RE, ConnectionClosed, delivery_daemon, hikyaku_bin, received_qid,
                      submit, to_yaml, upstream_conf, wait_env_state, wait_finished,
                      wait_until)

IO_DEADLINE = 10.0


def sock_path(d):
    return os.path.join(d.state, "sendmail.sock")


def run_sendmail(config, args, data=b"", timeout=20):
    e = dict(os.environ)
    e.pop("HIKYAKU_CONFIG", None)
    return subprocess.run([hikyaku_bin(), "sendmail", "-c", config] + list(args), input=data,
                          capture_output=True, timeout=timeout, env=e)


def maildrop(d):
    return sorted(os.listdir(os.path.join(d.spool, "maildrop")))


def other_config(d, tmp_path, **changes):
    """The daemon's configuration with changes, for a sendmail command that differs from it."""
    conf = dict(d.config)
    conf.update(changes)
    path = tmp_path / ("other%d.yaml" % len(os.listdir(tmp_path)))
    path.write_text(to_yaml(conf) + "\n")
    return str(path)


class Unix:
    """A raw client of the sendmail socket (the same reply reader as conftest.Raw)."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(IO_DEADLINE)
        self.s.connect(path)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise ConnectionClosed(self.buf)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode())
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), lines

    def closed(self):
        try:
            while True:
                if not self.s.recv(65536):
                    return True
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.s.close()


class BsSession:
    """hikyaku sendmail -bs driven over its standard input and output."""

    def __init__(self, config):
        e = dict(os.environ)
        e.pop("HIKYAKU_CONFIG", None)
        self.p = subprocess.Popen([hikyaku_bin(), "sendmail", "-c", config, "-bs"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=e)
        self.buf = b""

    def reply(self):
        fd = self.p.stdout.fileno()
        lines = []
        end = time.monotonic() + IO_DEADLINE
        while True:
            while b"\r\n" not in self.buf:
                left = end - time.monotonic()
                assert left > 0, "no reply from sendmail -bs: %r" % self.buf
                r, _, _ = select.select([fd], [], [], left)
                if r:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        raise ConnectionClosed(self.buf)
                    self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode())
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), lines

    def cmd(self, line):
        self.p.stdin.write(line.encode() + b"\r\n")
        self.p.stdin.flush()
        return self.reply()

    def finish(self):
        self.p.stdin.close()
        rc = self.p.wait(timeout=IO_DEADLINE)
        self.p.stdout.close()
        self.p.stderr.close()
        return rc


def test_socket_is_served_with_mode_0666(daemon):
    st = os.stat(sock_path(daemon))
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o666
    daemon.stop()
    # Removed at exit, so a stopped daemon is told from a running one by its absence.
    assert not os.path.exists(sock_path(daemon))


def test_sendmail_goes_through_the_socket(daemon):
    msg = (b"To: Alice <alice@example.net>\nBcc: hidden@example.org\nSubject: via socket\n\n"
           b".leading dot\n.\nafter the dot\n")
    r = run_sendmail(daemon.config_path, ["-t", "-i", "-f", "bounces@example.com", "-F",
                                          "The App"], msg)
    assert r.returncode == 0, r.stderr
    # Queued before the command exits: nothing waits in maildrop/ for a pickup.
    assert maildrop(daemon) == []
    ids = daemon.queue_ids()
    assert len(ids) == 1
    env = daemon.read_env(ids[0])
    assert env.source == "sendmail"
    assert env.from_ == "bounces@example.com"
    assert env.rcpt_addrs == ["alice@example.net", "hidden@example.org"]
    body = daemon.read_msg(ids[0])
    head, text = body.split(b"\r\n\r\n", 1)
    assert head.startswith(b"Received: from local (uid %d)\r\n" % os.getuid())
    assert b"by " in head and b"with ESMTP id " + ids[0].encode() in head
    assert b"\r\nBcc:" not in head
    assert b'From: "The App" <bounces@example.com>' in head or \
        b"From: The App <bounces@example.com>" in head
    # -i: the dots are text; the socket's dot-stuffing is undone by the daemon.
    assert text == b".leading dot\r\n.\r\nafter the dot\r\n"
    daemon.wait_for_log(r"mod=smtpd event=connect .*listener=sendmail uid=%d" % os.getuid())


def test_same_message_on_both_paths(daemon, tmp_path):
    """-t/-i/-f/-F give the same envelope and text through the socket and through maildrop/."""
    msg = b"To: a@example.net\nCc: b@example.org\nSubject: same\n\nline\n..two dots\n"
    args = ["-t", "-i", "-f", "s@example.com", "-F", "Name", "-N", "failure,delay", "-R",
            "hdrs", "-V", "env-1"]
    r = run_sendmail(daemon.config_path, args, msg)
    assert r.returncode == 0, r.stderr
    qid = daemon.queue_ids()[0]
    via_socket = daemon.read_env(qid)
    sock_body = daemon.read_msg(qid)
    daemon.stop()
    r = run_sendmail(daemon.config_path, args, msg)
    assert r.returncode == 0, r.stderr
    assert len(maildrop(daemon)) == 1
    daemon.start()
    wait_until(lambda: len(daemon.queue_ids()) == 2, 10, "the dropped message in queue/")
    qid2 = [q for q in daemon.queue_ids() if q != qid][0]
    via_drop = daemon.read_env(qid2)
    drop_body = daemon.read_msg(qid2)
    for e in (via_socket, via_drop):
        assert e.source == "sendmail"
        assert e.rcpt_addrs == ["a@example.net", "b@example.org"]
        assert e.from_ == "s@example.com"
        assert e.from_params.get("ret") == "HDRS" and e.from_params.get("envid") == "env-1"
        assert [r.get("notify") for r in e.rcpts] == ["FAILURE,DELAY"] * 2

    def strip(body):
        # Received:, Date: and Message-ID: differ between two runs; the rest is identical.
        head, text = body.split(b"\r\n\r\n", 1)
        keep = [h for h in re.split(rb"\r\n(?![ \t])", head)
                if not h.startswith((b"Received:", b"Date:", b"Message-ID:"))]
        return keep, text

    assert strip(sock_body) == strip(drop_body)
    assert b"(uid %d)" % os.getuid() in sock_body.split(b"\r\n\r\n")[0]


def test_daemon_down_uses_maildrop(daemon):
    daemon.stop()
    r = run_sendmail(daemon.config_path, ["a@example.net"], b"Subject: x\n\nhi\n")
    assert r.returncode == 0, r.stderr
    assert len(maildrop(daemon)) == 1


def test_stale_socket_after_kill_uses_maildrop(daemon):
    daemon.kill()
    # SIGKILL leaves the socket file: connecting is refused, the maildrop takes the message.
    assert os.path.exists(sock_path(daemon))
    r = run_sendmail(daemon.config_path, ["a@example.net"], b"Subject: x\n\nhi\n")
    assert r.returncode == 0, r.stderr
    assert len(maildrop(daemon)) == 1
    # The next start replaces the stale file and picks the message up.
    daemon.start()
    wait_until(lambda: len(daemon.queue_ids()) == 1 and maildrop(daemon) == [], 10,
               "the dropped message queued")
    assert stat.S_IMODE(os.stat(sock_path(daemon)).st_mode) == 0o666


def test_daemon_refusal_is_reported(daemon, tmp_path):
    """Limits the command does not know (a config that differs from the daemon's): the daemon's
    5xx/4xx is printed and becomes the exit code; nothing is queued or dropped."""
    cfg = other_config(daemon, tmp_path, limits={"max_message_size": "4M",
                                                 "max_recipients": 500})
    r = run_sendmail(cfg, ["a@example.net"], b"Subject: big\n\n" + (b"y" * 998 + b"\n") * 1500)
    assert r.returncode == 65, (r.returncode, r.stderr)
    assert b"552" in r.stderr
    rcpts = ["r%d@example.net" % i for i in range(60)]  # the daemon takes 50
    r = run_sendmail(cfg, rcpts, b"Subject: many\n\nhi\n")
    assert r.returncode == 75, (r.returncode, r.stderr)
    assert b"452 4.5.3" in r.stderr
    assert daemon.queue_ids() == []
    assert maildrop(daemon) == []


def test_bs_session_is_delivered(daemon_factory, fake_smtp):
    f = fake_smtp()
    d = delivery_daemon(daemon_factory, [upstream_conf("up", f)])
    s = BsSession(d.config_path)
    code, lines = s.reply()
    assert code == 220, lines
    code, lines = s.cmd("EHLO app.example")
    assert code == 250
    assert "STARTTLS" not in lines and not any(ln.startswith("250-AUTH") for ln in lines)
    assert s.cmd("MAIL FROM:<app@example.com>")[0] == 250
    assert s.cmd("RCPT TO:<user@example.net>")[0] == 250
    assert s.cmd("DATA")[0] == 354
    code, lines = s.cmd("Subject: from -bs\r\n\r\n..dot\r\nbody\r\n.")
    assert code == 250, lines
    m = QUEUED_RE.match(lines[0][4:])
    assert m, lines
    qid = m.group(1)
    assert s.cmd("QUIT")[0] == 221
    assert s.finish() == 0
    msgs = f.wait_messages(1)
    assert received_qid(msgs[0]) == qid
    assert msgs[0].rcpts == ["user@example.net"]
    assert b"(uid %d)" % os.getuid() in msgs[0].data
    assert b"\r\n.dot\r\nbody\r\n" in msgs[0].data


def test_bs_whole_session_written_at_once(daemon):
    """A client that writes everything before reading (a shell pipe) is not an early talker:
    the relay waits for the greeting before it forwards anything."""
    script = (b"EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
              b"Subject: piped\r\n\r\nhi\r\n.\r\nQUIT\r\n")
    e = dict(os.environ)
    e.pop("HIKYAKU_CONFIG", None)
    r = subprocess.run([hikyaku_bin(), "sendmail", "-c", daemon.config_path, "-bs"],
                       input=script, capture_output=True, timeout=20, env=e)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.startswith("220 ")
    assert re.search(r"^250 2\.0\.0 Ok: queued as [0-9A-F]{16}\r$", out, re.M), out
    assert out.endswith("221 2.0.0 Bye\r\n")
    assert len(daemon.queue_ids()) == 1


def test_bs_without_daemon_is_421_and_75(daemon):
    daemon.stop()
    e = dict(os.environ)
    e.pop("HIKYAKU_CONFIG", None)
    r = subprocess.run([hikyaku_bin(), "sendmail", "-c", daemon.config_path, "-bs"],
                       input=b"EHLO x\r\n", capture_output=True, timeout=20, env=e)
    assert r.returncode == 75
    assert r.stdout == b"421 4.3.0 hikyaku is not running\r\n"
    assert maildrop(daemon) == []


def test_socket_talker_before_greeting(daemon):
    c = Unix(sock_path(daemon))
    try:
        c.send(b"EHLO early\r\n")
        code, lines = c.reply()
        assert code == 554 and lines[0].startswith("554 5.5.0"), lines
        assert c.closed()
    finally:
        c.close()


def test_socket_huge_line(daemon):
    c = Unix(sock_path(daemon))
    try:
        assert c.reply()[0] == 220
        c.send(b"EHLO " + b"a" * 5000 + b"\r\n")
        code, lines = c.reply()
        assert code == 500 and lines[0].startswith("500 5.5.2"), lines
        c.send(b"NOOP\r\n")
        assert c.reply()[0] == 250
    finally:
        c.close()


def test_q_retries_deferred_mail_now(daemon_factory, fake_smtp):
    """sendmail -q, as the original: every queued message is attempted now, not at its retry
    time (an hour away here)."""
    up = fake_smtp("provider")
    up.greeting = (421, "4.3.2 busy")
    d = delivery_daemon(daemon_factory, [upstream_conf("provider", up)],
                        retry={"schedule": ["1h"], "max_age": "5d"})
    qid = submit(d, ["user@dest.example"])
    wait_env_state(d, qid, "user@dest.example", "deferred")
    up.greeting = (220, "provider ESMTP fake")
    r = run_sendmail(d.config_path, ["-q"])
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert b"due now" in r.stdout
    wait_finished(d, qid)
    assert [received_qid(m) for m in up.messages] == [qid]
