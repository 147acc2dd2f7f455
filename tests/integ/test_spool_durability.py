"""Durability (DESIGN.md 1, 5): disk faults temp-fail the client and leave nothing behind; a
SIGKILL at any moment never loses a message that got 250, and never leaves a half message."""

import os
import random
import re
import threading
import time

import pytest

from conftest import ConnectionClosed, Raw, message, queued_id, split_envelope, wait_until

TOKEN_RE = re.compile(rb"Subject: tok-([0-9a-z-]+)\r\n")


def try_send(port, data, timeout=10):
    """One transaction; returns the final Reply, or None when the connection died."""
    try:
        with Raw(port, timeout=timeout) as c:
            c.ehlo()
            r = c.cmd("MAIL FROM:<a@example.com>")
            if r.code != 250:
                return r
            r = c.cmd("RCPT TO:<b@example.net>")
            if r.code != 250:
                return r
            r = c.cmd("DATA")
            if r.code != 354:
                return r
            c.send(data + b".\r\n")
            return c.reply()
    except (ConnectionClosed, OSError):
        return None


@pytest.mark.parametrize("spec,code,enh", [
    ("fsync:0:ENOSPC", 452, "4.3.1"),
    ("fsync:0:EIO", 451, "4.3.0"),
    ("write:0:ENOSPC", 452, "4.3.1"),
    ("write:0:EDQUOT", 452, "4.3.1"),
    ("open:0:ENOSPC", 452, "4.3.1"),
    ("link:0:EIO", 451, "4.3.0"),
])
def test_disk_fault_temp_fails_and_leaves_nothing(daemon_factory, spec, code, enh):
    d = daemon_factory(env={"HIKYAKU_FSOPS_FAIL": spec})
    for attempt in range(2):
        with Raw(d.port()) as c:
            c.ehlo()
            assert c.cmd("MAIL FROM:<a@example.com>").code == 250
            assert c.cmd("RCPT TO:<b@example.net>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(message("fault %d" % attempt) + b".\r\n")
            r = c.reply()
            assert (r.code, r.enhanced) == (code, enh), "%s: %r" % (spec, r)
            # The session goes on after a failed commit.
            assert c.cmd("NOOP").code == 250
        assert d.files("queue") == [], "left in queue/ after a failed commit: %r" % d.files()
        assert d.files("tmp") == [], "left in tmp/ after a failed commit: %r" % d.files("tmp")
    assert d.running()
    with Raw(d.port()) as c:
        assert c.greeting.code == 220
        assert c.cmd("NOOP").code == 250


def test_one_fsync_failure_then_recovers(daemon_factory):
    d = daemon_factory(env={"HIKYAKU_FSOPS_FAIL": "fsync:1:EIO"})
    with Raw(d.port()) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        assert c.cmd("RCPT TO:<b@example.net>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(message("first") + b".\r\n")
        r = c.reply()
        assert (r.code, r.enhanced) == (451, "4.3.0"), r
        assert c.cmd("MAIL FROM:<a@example.com>").code == 250
        assert c.cmd("RCPT TO:<b@example.net>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(message("second") + b".\r\n")
        qid = queued_id(c.reply())
    assert d.queue_ids() == [qid]
    assert b"Subject: second" in d.read_msg(qid)


def assert_spool_consistent(d):
    """After a restart: tmp/ empty, every envelope has its body and vice versa, all parse."""
    wait_until(lambda: d.files("tmp") == [], 5.0, "tmp/ to be emptied at start-up")
    env_ids, body_ids = set(d.queue_ids()), set(d.body_ids())
    assert env_ids - body_ids == set(), "envelopes without body: %r" % (env_ids - body_ids)
    assert body_ids - env_ids == set(), "bodies without envelope: %r" % (body_ids - env_ids)
    other = [f for f in d.files("queue") if not re.match(r"^[0-9A-F]{16}\.(env|msg)$", f)]
    assert other == [], "unexpected files in queue/: %r" % other
    for qid in env_ids:
        env = d.read_env(qid)
        assert env.id == qid
        assert env.size == len(d.read_msg(qid)), "size record does not match body of %s" % qid


@pytest.mark.parametrize("point", ["spool.before_env_link", "spool.after_env_rename",
                                   "spool.before_dirsync"])
def test_crash_point_during_first_commit(daemon_factory, point):
    d = daemon_factory(env={"HIKYAKU_CRASH_POINT": point})
    data = message("tok-crash")
    r = try_send(d.port(), data)
    assert r is None or r.code != 250, "the client got %r although the daemon died" % r
    rc = d.wait_exit()
    assert rc == -9, "daemon should die by SIGKILL at %s, exit status %r" % (point, rc)
    d.env = {}
    d.start()
    assert_spool_consistent(d)
    ids = d.queue_ids()
    if point == "spool.before_env_link":
        assert ids == [], "a message whose envelope was never linked was queued: %r" % ids
        assert d.files("corrupt") == []
    for qid in ids:
        msg = d.read_msg(qid)
        assert msg.endswith(data), "a half message in queue/: %r" % msg[-100:]
    # And it serves again.
    assert queued_id(try_send(d.port(), message("after restart")))


class Load:
    """Client threads that submit messages with unique tokens until told to stop."""

    def __init__(self, port, threads, per_thread):
        self.port = port
        self.acked = {}          # token -> queue ID from the 250 reply
        self.lost = set()        # end of data sent, no reply (killed)
        self.refused = {}        # token -> a non-250 final reply
        self.data = {}           # token -> message bytes
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(i, per_thread), daemon=True)
                        for i in range(threads)]

    def acked_count(self):
        with self.lock:
            return len(self.acked)

    def run(self, n, count):
        try:
            i = 0
            while i < count and not self.stop.is_set():
                token = "%02d-%04d-%s" % (n, i, os.urandom(4).hex())
                body = "line %s\r\n.dot line\r\n" % token + ("x" * (n * 37 % 900)) + "\r\n"
                data = message("tok-" + token, body,
                               ["Message-ID: <%s@integ.example>" % token])
                with self.lock:
                    self.data[token] = data
                r = self.one(data)
                with self.lock:
                    if r is None:
                        self.lost.add(token)
                    elif r.code == 250:
                        self.acked[token] = queued_id(r)
                    else:
                        self.refused[token] = r
                i += 1
        except Exception as ex:   # surfaced by the test
            self.errors.append(repr(ex))

    def one(self, data):
        # Connect with retries while the daemon restarts; fail only after a long deadline.
        end = time.monotonic() + 20
        while True:
            try:
                c = Raw(self.port, timeout=10)
                break
            except (OSError, ConnectionClosed, AssertionError):
                if time.monotonic() > end or self.stop.is_set():
                    raise
                time.sleep(0.02)
        try:
            if c.greeting.code != 220:
                return c.greeting
            for line, want in (("EHLO load.example", 250), ("MAIL FROM:<a@example.com>", 250),
                               ("RCPT TO:<b@example.net>", 250), ("DATA", 354)):
                try:
                    r = c.cmd(line)
                except (OSError, ConnectionClosed):
                    return "retry"
                if r.code != want:
                    return r
            try:
                c.send(data.replace(b"\r\n.", b"\r\n..") + b".\r\n")
            except OSError:
                return None
            try:
                return c.reply()
            except (OSError, ConnectionClosed):
                return None
        finally:
            c.close()


def test_sigkill_under_load_loses_nothing(daemon_factory):
    d = daemon_factory(limits={"max_connections_per_ip": 1000})
    rnd = random.Random(int.from_bytes(os.urandom(4), "little"))
    load = Load(d.port(), threads=16, per_thread=25)
    # "retry" (killed before DATA) is handled by simply counting it as not sent.
    orig_one = load.one

    def one(data):
        while True:
            r = orig_one(data)
            if r != "retry":
                return r
    load.one = one
    for t in load.threads:
        t.start()
    kills = rnd.randint(3, 5)
    for k in range(kills):
        target = load.acked_count() + rnd.randint(10, 40)
        try:
            wait_until(lambda: load.acked_count() >= target or
                       not any(t.is_alive() for t in load.threads), 30.0,
                       "%d acknowledged messages before kill %d" % (target, k + 1), 0.005)
        except AssertionError:
            break
        if not any(t.is_alive() for t in load.threads):
            break
        d.kill()
        d.start()
    for t in load.threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in load.threads), "client threads hung"
    assert load.errors == [], load.errors
    assert d.starts >= 2, "never killed: the load finished too fast"
    d.kill()
    d.start()
    assert_spool_consistent(d)

    seen = {}
    for qid in d.queue_ids():
        msg = d.read_msg(qid)
        m = TOKEN_RE.search(msg)
        assert m, "message %s carries no token" % qid
        token = m.group(1).decode()
        assert token not in seen, "token %s queued twice (%s, %s)" % (token, seen[token], qid)
        seen[token] = qid
        assert token in load.data, "unknown message %s" % qid
        assert msg.endswith(load.data[token]), "message %s is not whole" % qid
        assert msg.startswith(b"Received: ")
    missing = sorted(t for t in load.acked if t not in seen)
    assert missing == [], "%d acknowledged messages lost: %r" % (len(missing), missing[:10])
    for t, qid in load.acked.items():
        assert seen[t] == qid, "token %s acknowledged as %s but stored as %s" % (t, qid, seen[t])
    refused_present = [t for t in load.refused if t in seen]
    assert refused_present == [], "refused messages were queued: %r" % refused_present
    extra = set(seen) - set(load.acked)
    assert extra <= load.lost, "queued messages that were neither acked nor lost"
    print("acked=%d lost=%d (of which queued %d) refused=%d kills=%d" % (
        len(load.acked), len(load.lost), len(extra), len(load.refused), d.starts - 2))


def test_queued_message_survives_restart(daemon):
    qid = queued_id(try_send(daemon.port(), message("survivor")))
    assert daemon.stop() == 0
    daemon.start()
    daemon.wait_for_log(r"event=spool_recovered .*queued=1\b")
    assert daemon.queue_ids() == [qid]
    assert b"Subject: survivor" in daemon.read_msg(qid)
    assert queued_id(try_send(daemon.port(), message("next"))) > qid, "IDs went backwards"


def test_recovery_sorts_out_leftovers(daemon):
    qid = queued_id(try_send(daemon.port(), message("good")))
    assert daemon.stop() == 0
    q, tmp = daemon.qdir("queue"), daemon.qdir("tmp")
    # The envelope part only (the commit writes the body after it).
    env = split_envelope(open(os.path.join(q, qid + ".env"), "rb").read())[0]
    lonely_env = "0000000000000A01"
    orphan_body = "0000000000000A02"
    bad_crc = "0000000000000A03"
    with open(os.path.join(q, lonely_env + ".env"), "wb") as f:
        f.write(env.replace(qid.encode(), lonely_env.encode()))
    with open(os.path.join(q, orphan_body + ".msg"), "wb") as f:
        f.write(b"Subject: orphan\r\n\r\nx\r\n")
    with open(os.path.join(q, bad_crc + ".env"), "wb") as f:
        f.write(env.replace(qid.encode(), bad_crc.encode())[:-3] + b"00\n")
    with open(os.path.join(q, bad_crc + ".msg"), "wb") as f:
        f.write(b"Subject: bad crc\r\n\r\nx\r\n")
    with open(os.path.join(tmp, "0000000000000A04.msg"), "wb") as f:
        f.write(b"half")
    daemon.start()
    assert daemon.files("tmp") == []
    assert orphan_body + ".msg" not in daemon.files("queue"), "orphan body kept"
    assert lonely_env + ".env" not in daemon.files("queue"), "envelope without body kept"
    assert any(f.startswith(lonely_env) for f in daemon.files("corrupt")), daemon.files("corrupt")
    assert qid in daemon.queue_ids()
    # A bad checksum is found when the envelope is verified (at start or when due): never a
    # crash, never deleted.
    assert daemon.running()
    left = [f for f in daemon.files("queue") + daemon.files("corrupt") if f.startswith(bad_crc)]
    assert left, "an envelope with a bad checksum vanished"
