"""The sendmail command: options, exit codes, the maildrop file it writes, PHP's mail().

The command writes into the spool's maildrop/ and exits 0 only once the file and the directory
are fsync'ed; the daemon picks it up (tests/unit/test_maildrop.c covers the pickup itself).
"""

import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import REPO, Envelope, hikyaku_bin, to_yaml, wait_until

NAME_RE = re.compile(r"^[0-9A-F]{16}\.[0-9A-F]{16}$")


@pytest.fixture
def sm(tmp_path):
    """A configuration and a spool with maildrop/ (as the daemon leaves it), no daemon."""
    spool = tmp_path / "spool"
    for sub in ("tmp", "queue", "corrupt", "maildrop"):
        (spool / sub).mkdir(parents=True)
    os.chmod(spool / "maildrop", 0o1733)
    conf = {
        "node": "integ",
        "hostname": "host.example",
        "spool": str(spool),
        "state": str(tmp_path / "state"),
        "listen": [{"address": "127.0.0.1:1", "tls": "none"}],
        "limits": {"max_message_size": "64K", "max_recipients": 5},
        "upstreams": [{"name": "sink", "host": "127.0.0.1", "port": 1, "tls": "none"}],
        "routes": [{"name": "default", "upstreams": ["sink"]}],
    }
    path = tmp_path / "hikyaku.yaml"
    path.write_text(to_yaml(conf) + "\n")

    class SM:
        dir = tmp_path
        config = str(path)
        maildrop = spool / "maildrop"

        def run(self, args, data=b"", argv0=None, env=None, umask=None):
            cmd = [hikyaku_bin(), "sendmail", "-c", self.config] + list(args)
            if argv0 is not None:
                cmd = [argv0, "-c", self.config] + list(args)
            e = dict(os.environ)
            e.pop("HIKYAKU_CONFIG", None)
            e.update(env or {})
            pre = (lambda: os.umask(umask)) if umask is not None else None
            return subprocess.run(cmd, input=data, capture_output=True, timeout=20, env=e,
                                  preexec_fn=pre)

        def drops(self):
            return sorted(p for p in os.listdir(self.maildrop))

        def only_drop(self):
            names = self.drops()
            assert len(names) == 1, names
            assert NAME_RE.match(names[0]), names
            raw = (self.maildrop / names[0]).read_bytes()
            end = raw.index(b"\nEND ") + 1
            end = raw.index(b"\n", end) + 1
            env = Envelope(raw[:end])
            body = raw[end:]
            assert env.size == len(body)
            return names[0], env, body

    return SM()


def headers(body):
    head = body.split(b"\r\n\r\n", 1)[0].decode()
    return head.split("\r\n")


def test_t_removes_bcc_and_collects_recipients(sm):
    msg = (b"To: Alice <alice@example.net>, bob@example.net\n"
           b"Cc: (team) carol@example.org\n"
           b"Bcc: dave@example.org,\n  erin@example.org\n"
           b"Subject: hello\n\nline\n")
    r = sm.run(["-t", "-i"], msg)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b""
    _, env, body = sm.only_drop()
    assert env.rcpt_addrs == ["alice@example.net", "bob@example.net", "carol@example.org",
                              "dave@example.org", "erin@example.org"]
    assert env.source == "sendmail"
    assert b"dave@" not in body and b"erin@" not in body
    assert not any(h.lower().startswith("bcc:") for h in headers(body))
    # LF became CRLF everywhere; nothing bare is left.
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert b"\r" not in body.replace(b"\r\n", b"")
    assert body.endswith(b"\r\n\r\nline\r\n")
    h = headers(body)
    assert "From: root@host.example" in h or any(x.startswith("From: ") and "@host.example"
                                                 in x for x in h)
    assert any(x.startswith("Date: ") for x in h)
    assert any(re.match(r"^Message-ID: <[^<>@]+@host\.example>$", x) for x in h)


def test_f_and_F_set_sender_and_from(sm):
    r = sm.run(["-f", "bounces@example.com", "-F", "Jérôme Ops", "to@example.net"],
               b"Subject: x\n\nbody\n")
    assert r.returncode == 0, r.stderr
    _, env, body = sm.only_drop()
    assert env.from_ == "bounces@example.com"
    assert env.rcpt_addrs == ["to@example.net"]
    assert "From: =?UTF-8?B?SsOpcsO0bWUgT3Bz?= <bounces@example.com>" in headers(body)


def test_F_only_when_from_is_missing(sm):
    r = sm.run(["-F", "Ignored", "-f", "<>", "to@example.net"],
               b"From: Real <real@example.com>\nSubject: x\n\nbody\n")
    assert r.returncode == 0, r.stderr
    _, env, body = sm.only_drop()
    assert env.from_ == ""
    h = headers(body)
    assert "From: Real <real@example.com>" in h
    assert not any("Ignored" in x for x in h)


def test_dot_line(sm):
    r = sm.run(["to@example.net"], b"Subject: x\n\nbefore\n.\nafter\n")
    assert r.returncode == 0, r.stderr
    name, _, body = sm.only_drop()
    assert body.endswith(b"\r\n\r\nbefore\r\n")
    os.unlink(sm.maildrop / name)
    for flag in ("-i", "-oi"):
        r = sm.run([flag, "to@example.net"], b"Subject: x\n\nbefore\n.\nafter\n")
        assert r.returncode == 0, r.stderr
        name, _, body = sm.only_drop()
        assert body.endswith(b"\r\n\r\nbefore\r\n.\r\nafter\r\n")
        os.unlink(sm.maildrop / name)


def test_invoked_as_sendmail(sm, tmp_path):
    link = tmp_path / "sendmail"
    os.symlink(hikyaku_bin(), link)
    r = sm.run(["-t"], b"To: x@example.net\n\nhi\n", argv0=str(link))
    assert r.returncode == 0, r.stderr
    _, env, _ = sm.only_drop()
    assert env.rcpt_addrs == ["x@example.net"]


@pytest.mark.parametrize("args,data,code", [
    (["-Z"], b"", 64),                              # unknown option
    (["-f"], b"", 64),                              # option without its value
    ([], b"Subject: x\n\nhi\n", 64),               # no recipients and no -t
    (["-N", "bogus", "a@example.net"], b"x\n", 64),
    (["not an address"], b"x\n", 65),
    (["-t"], b"To: John Doe john@example.com\n\nx\n", 65),
    (["-t"], b"Subject: no recipients\n\nx\n", 65),
    (["a@example.net"], b"bare\rcr\n", 65),
    (["a@example.net"], b"x" * (70 * 1024), 65),  # over limits.max_message_size
    (["a@b.example", "c@b.example", "d@b.example", "e@b.example", "f@b.example",
      "g@b.example"], b"x\n", 65),                 # over limits.max_recipients
], ids=["unknown-option", "missing-value", "no-rcpt", "bad-N", "bad-rcpt", "bad-header-rcpt",
        "no-header-rcpt", "bare-cr", "too-big", "too-many-rcpts"])
def test_exit_codes(sm, args, data, code):
    r = sm.run(args, data)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert r.stderr.startswith(b"sendmail: ") or b"usage" in r.stderr
    assert sm.drops() == []


def test_bad_config_is_78(sm, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: [\n")
    r = subprocess.run([hikyaku_bin(), "sendmail", "-c", str(bad), "a@example.net"],
                       input=b"x\n", capture_output=True, timeout=20)
    assert r.returncode == 78
    r = subprocess.run([hikyaku_bin(), "sendmail", "-c", str(tmp_path / "missing.yaml"),
                        "a@example.net"], input=b"x\n", capture_output=True, timeout=20)
    assert r.returncode == 78


def test_no_maildrop_is_73(sm):
    shutil.rmtree(sm.maildrop)
    r = sm.run(["a@example.net"], b"x\n")
    assert r.returncode == 73
    assert b"hikyaku serve" in r.stderr


def test_config_from_environment(sm):
    e = dict(os.environ)
    e["HIKYAKU_CONFIG"] = sm.config
    r = subprocess.run([hikyaku_bin(), "sendmail", "a@example.net"], input=b"x\n",
                       capture_output=True, timeout=20, env=e)
    assert r.returncode == 0, r.stderr
    assert len(sm.drops()) == 1


def test_file_mode_and_durability(sm, tmp_path):
    """The file is readable by the daemon's user, and exit 0 comes after fsync of the file
    and of maildrop/ (seen with strace when it is installed)."""
    r = sm.run(["a@example.net"], b"x\n", umask=0o077)
    assert r.returncode == 0
    name = sm.drops()[0]
    assert stat.S_IMODE(os.stat(sm.maildrop / name).st_mode) == 0o644
    os.unlink(sm.maildrop / name)
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace not installed")
    log = tmp_path / "strace.log"
    cmd = [strace, "-f", "-o", str(log), "-e", "trace=openat,fsync,fdatasync,rename,renameat,"
           "renameat2,write,exit_group", hikyaku_bin(), "sendmail", "-c", sm.config,
           "a@example.net"]
    r = subprocess.run(cmd, input=b"x\n", capture_output=True, timeout=30)
    if r.returncode != 0 and b"PTRACE" in r.stderr.upper():
        pytest.skip("ptrace not permitted here")
    assert r.returncode == 0, r.stderr
    calls = log.read_text().splitlines()
    fd_of = {}
    order = []
    for line in calls:
        m = re.search(r'openat\(AT_FDCWD, "([^"]*maildrop)", .*\) = (\d+)', line)
        if m:
            fd_of["dir"] = m.group(2)
        m = re.search(r'openat\((\d+), "(\.[0-9A-F.]+)", .*\) = (\d+)', line)
        if m:
            fd_of["file"] = m.group(3)
        m = re.search(r"fsync\((\d+)\)", line)
        if m:
            order.append(("fsync", m.group(1)))
        if "rename" in line and "maildrop" not in line and '"."' not in line:
            order.append(("rename", None))
    assert "dir" in fd_of and "file" in fd_of, calls
    assert order.index(("fsync", fd_of["file"])) < order.index(("rename", None)) < \
        order.index(("fsync", fd_of["dir"])), order


def test_bp_lists_the_queue(sm, tmp_path):
    r = sm.run(["-bp"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == b"Mail queue is empty"
    # A queued message as the daemon writes it: envelope only is enough for the listing.
    env = (b"hikyaku-envelope 1\nid 0193F2A1C4000007\nreceived 1736848798000\n"
           b"from app@example.com\nsize 4211\nattempts 0 next=0\n"
           b"rcpt 0 state=deferred to=a@example.net\nrcpt 1 state=queued to=b@example.net\n")
    from conftest import crc32c
    env += b"END %08x\n" % crc32c(env)
    (sm.dir / "spool" / "queue" / "0193F2A1C4000007.env").write_bytes(env)
    r = sm.run(["-bp"])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "0193F2A1C4000007" in out and "4211" in out and "app@example.com" in out
    assert "a@example.net (deferred)" in out and "b@example.net (queued)" in out
    assert "-- 5 Kbytes in 1 Request." in out


def test_q_with_an_interval_is_accepted(sm):
    for args in (["-q1h"], ["-q30m"]):
        r = sm.run(args)
        assert r.returncode == 0
        assert b"by itself" in r.stdout


def test_q_without_the_daemon_says_so(sm):
    r = sm.run(["-q"])
    assert r.returncode == 69, (r.stdout, r.stderr)
    assert b"not running" in r.stderr


def test_php_mail_drops_a_file(sm, tmp_path):
    php = shutil.which("php")
    if php is None:
        pytest.skip("php-cli not installed (scripts/deps.sh installs it)")
    script = ("$ok = mail('user@example.com', 'PHP test', \"Hello from PHP\\nsecond line\", "
              "\"From: webmaster@example.com\\r\\nBcc: hidden@example.org\"); "
              "exit($ok ? 0 : 1);")
    path = "%s sendmail -t -i -c %s" % (hikyaku_bin(), sm.config)
    r = subprocess.run([php, "-n", "-d", "sendmail_path=" + path, "-r", script],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr)
    _, env, body = sm.only_drop()
    assert env.rcpt_addrs == ["user@example.com", "hidden@example.org"]
    h = headers(body)
    assert "To: user@example.com" in h
    assert "Subject: PHP test" in h
    assert "From: webmaster@example.com" in h
    assert not any(x.lower().startswith("bcc:") for x in h)
    assert body.endswith(b"\r\n\r\nHello from PHP\r\nsecond line\r\n")


@pytest.mark.skipif("maildrop_new" not in open(os.path.join(REPO, "src/cli/serve.c")).read(),
                    reason="serve does not start the maildrop pickup yet")
def test_daemon_picks_up_at_start(daemon_factory):
    d = daemon_factory(start=True)
    d.stop()
    r = subprocess.run([hikyaku_bin(), "sendmail", "-c", d.config_path, "-t"],
                       input=b"To: a@example.net\nBcc: b@example.org\n\nhi\n",
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert len(os.listdir(os.path.join(d.spool, "maildrop"))) == 1
    d.start()
    wait_until(lambda: len(d.queue_ids()) == 1, 10, "the dropped message in queue/")
    wait_until(lambda: os.listdir(os.path.join(d.spool, "maildrop")) == [], 10,
               "maildrop/ emptied")
    qid = d.queue_ids()[0]
    env = d.read_env(qid)
    assert env.source == "sendmail"
    assert env.rcpt_addrs == ["a@example.net", "b@example.org"]
    # While running: inotify notices a new file. The command would use the daemon's socket, so
    # it gets a configuration naming a socket nobody serves.
    other = os.path.join(d.dir, "nosocket.yaml")
    with open(other, "w") as f:
        f.write(to_yaml(dict(d.config, sendmail={"socket": os.path.join(d.dir, "none.sock")}))
                + "\n")
    r = subprocess.run([hikyaku_bin(), "sendmail", "-c", other, "c@example.net"],
                       input=b"Subject: x\n\nhi\n", capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: len(d.queue_ids()) == 2, 10, "the second message in queue/")
