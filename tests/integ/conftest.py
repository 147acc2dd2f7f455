"""Fixtures for the integration suite: run the real hikyaku binary on free loopback ports with a
temporary spool, talk to it with real clients, and inspect what it wrote.

Only loopback traffic. Every wait has a deadline; nothing sleeps blindly. Processes started here
are stopped by their PID (SIGTERM, then SIGKILL after a deadline).
"""

import ctypes
import ctypes.util
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import warnings

import pytest

import ports

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
READY_DEADLINE = 10.0
STOP_DEADLINE = 10.0
IO_TIMEOUT = 10.0

USER = "app"
PASSWORD = "s3cret-Pass"

QUEUED_RE = re.compile(r"^2\.0\.0 Ok: queued as ([0-9A-F]{16})$")
ID_RE = re.compile(r"^[0-9A-F]{16}$")


def hikyaku_bin():
    path = os.environ.get("HIKYAKU_BIN", "build/hikyaku")
    if not os.path.isabs(path):
        path = os.path.join(REPO, path)
    return path


# ---------------------------------------------------------------------------------------------
# Small helpers

def free_port():
    """A loopback TCP port for a server started later (ports.py: outside the ephemeral range)."""
    return ports.free_port()


def wait_until(pred, deadline, what, interval=0.02):
    """Poll pred() until it returns a true value or the deadline (seconds from now) passes."""
    end = time.monotonic() + deadline
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (deadline, what))
        time.sleep(interval)


def make_hash(password):
    """A crypt(3) hash: `hikyaku passwd` when it works, else yescrypt via libcrypt, else SHA-512."""
    try:
        r = subprocess.run([hikyaku_bin(), "passwd"], input=(password + "\n").encode(),
                           capture_output=True, timeout=10)
        out = r.stdout.decode(errors="replace").strip()
        if r.returncode == 0 and out.startswith("$"):
            return out.splitlines()[-1].strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated but present in Python 3.11
    salt = None
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("crypt"))
        lib.crypt_gensalt.restype = ctypes.c_char_p
        lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p,
                                      ctypes.c_int]
        s = lib.crypt_gensalt(b"$y$", 0, None, 0)
        if s:
            salt = s.decode()
    except (OSError, AttributeError):
        salt = None
    if salt:
        h = crypt.crypt(password, salt)
        if h and h.startswith("$y$"):
            return h
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))


# ---------------------------------------------------------------------------------------------
# YAML writer (block style, so diagnostics positions are predictable)

_PLAIN = re.compile(r"^[A-Za-z0-9/.][A-Za-z0-9_./@:+-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _YAML_WORDS and not s.endswith(":"):
        return s
    return json.dumps(s)


def to_yaml(obj, indent=0):
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict):
                if not v:
                    out.append("%s%s: {}" % (pad, k))
                else:
                    out.append("%s%s:" % (pad, k))
                    out.append(to_yaml(v, indent + 2))
            elif isinstance(v, list):
                if not v:
                    out.append("%s%s: []" % (pad, k))
                elif all(not isinstance(x, (dict, list)) for x in v):
                    out.append("%s%s: [%s]" % (pad, k, ", ".join(yaml_scalar(x) for x in v)))
                else:
                    out.append("%s%s:" % (pad, k))
                    out.append(to_yaml(v, indent + 2))
            else:
                out.append("%s%s: %s" % (pad, k, yaml_scalar(v)))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict):
                sub = to_yaml(item, indent + 2).splitlines()
                out.append("%s- %s" % (pad, sub[0].lstrip()))
                out.extend(sub[1:])
            elif isinstance(item, list):
                out.append("%s- [%s]" % (pad, ", ".join(yaml_scalar(x) for x in item)))
            else:
                out.append("%s- %s" % (pad, yaml_scalar(item)))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Envelope parsing (format: src/spool/spool_format.h)

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def xtext_decode(s):
    out = bytearray()
    i = 0
    b = s.encode("ascii")
    while i < len(b):
        if b[i] == ord("+"):
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return out.decode("utf-8", errors="surrogateescape")


def _params(tokens):
    d = {}
    for t in tokens:
        if "=" in t:
            k, v = t.split("=", 1)
            d[k] = xtext_decode(v)
        elif t:
            d[t] = True
    return d


def split_envelope(raw):
    """(envelope bytes up to and including the first "END " line, bytes after it)."""
    off = 0
    while off < len(raw):
        nl = raw.find(b"\n", off)
        if nl < 0:
            break
        if raw.startswith(b"END ", off):
            return raw[:nl + 1], raw[nl + 1:]
        off = nl + 1
    return raw, b""


class Envelope:
    """A parsed envelope. Attributes: id, received, from_, from_params, source, source_params,
    size, attempts, rcpts (list of dicts with 'to', 'state', 'notify', 'orcpt'), raw."""

    def __init__(self, raw):
        # A commit writes the body after the END line (one file): the envelope ends there.
        raw, self.embedded_body = split_envelope(raw)
        self.raw = raw
        text = raw.decode("ascii")
        assert text.endswith("\n"), "envelope does not end in a newline"
        lines = text.split("\n")[:-1]
        assert lines[0] == "hikyaku-envelope 1", "bad envelope header %r" % lines[0]
        assert lines[-1].startswith("END "), "envelope has no END line"
        end_off = len(raw) - len(lines[-1]) - 1
        want = int(lines[-1][4:], 16)
        got = crc32c(raw[:end_off])
        assert want == got, "envelope CRC mismatch: END %08x, computed %08x" % (want, got)
        self.id = None
        self.received = None
        self.from_ = None
        self.from_params = {}
        self.source = None
        self.source_params = {}
        self.size = None
        self.attempts = None
        self.rcpts = []
        self.other = {}
        for line in lines[1:-1]:
            rec, _, rest = line.partition(" ")
            if rec == "id":
                self.id = rest
            elif rec == "received":
                self.received = int(rest)
            elif rec == "from":
                toks = rest.split(" ")
                self.from_ = xtext_decode(toks[0])
                self.from_params = _params(toks[1:])
            elif rec == "source":
                toks = rest.split(" ")
                self.source = toks[0]
                self.source_params = _params(toks[1:])
            elif rec == "size":
                self.size = int(rest)
            elif rec == "attempts":
                self.attempts = rest
            elif rec == "rcpt":
                toks = rest.split(" ")
                r = _params(toks[1:])
                r["index"] = int(toks[0])
                self.rcpts.append(r)
            else:
                self.other[rec] = rest

    @property
    def rcpt_addrs(self):
        return [r.get("to") for r in self.rcpts]


# ---------------------------------------------------------------------------------------------
# Raw SMTP client for protocol edge cases

class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines  # text after "NNN-" / "NNN "

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def enhanced(self):
        m = re.match(r"^(\d\.\d{1,3}\.\d{1,3})\b", self.lines[0]) if self.lines else None
        return m.group(1) if m else None

    def __repr__(self):
        return "Reply(%d, %r)" % (self.code, self.lines)


class ConnectionClosed(Exception):
    pass


class Raw:
    """A line-oriented SMTP client on a plain or TLS socket."""

    def __init__(self, port, host="127.0.0.1", tls=False, timeout=IO_TIMEOUT, greet=True):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        if tls:
            self.wrap_tls()
        self.greeting = self.reply() if greet else None

    def wrap_tls(self):
        ctx = client_tls_context()
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed("server closed the connection (buffer %r)" % self.buf[:200])
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", errors="replace")

    def reply(self):
        lines = []
        while True:
            ln = self.line()
            m = re.match(r"^(\d{3})([ -])(.*)$", ln)
            assert m, "malformed reply line %r" % ln
            lines.append(m.group(3))
            if m.group(2) == " ":
                return Reply(int(m.group(1)), lines)

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def ehlo(self, name="client.example"):
        r = self.cmd("EHLO " + name)
        assert r.code == 250, r
        return r

    def closed(self, deadline=5.0):
        """True when the server closes the connection (EOF or reset) within the deadline."""
        self.sock.settimeout(deadline)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def client_tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def message(subject="test", body="hello\r\n", headers=None):
    """A CRLF message with From/To/Subject (and any extra headers)."""
    h = ["From: <sender@example.com>", "To: <rcpt@example.net>", "Subject: " + subject]
    h += headers or []
    return ("\r\n".join(h) + "\r\n\r\n" + body).encode()


def split_body(msg):
    """(header block bytes, body bytes) of a stored message."""
    i = msg.find(b"\r\n\r\n")
    assert i >= 0, "stored message has no header/body separator"
    return msg[:i + 2], msg[i + 4:]


def header_names(msg):
    head, _ = split_body(msg)
    names = []
    for line in head.split(b"\r\n"):
        if line and line[:1] not in (b" ", b"\t"):
            names.append(line.split(b":", 1)[0].decode().lower())
    return names


# ---------------------------------------------------------------------------------------------
# The daemon

class Daemon:
    """One hikyaku process (restartable) on a config written under a temporary directory."""

    def __init__(self, workdir, listeners, tls_files=None, limits=None, networks=None,
                 users=None, extra=None, env=None, route="sink"):
        self.dir = str(workdir)
        self.spool = os.path.join(self.dir, "spool")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state, exist_ok=True)
        self.config_path = os.path.join(self.dir, "hikyaku.yaml")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.env = dict(env or {})
        self.proc = None
        self.starts = 0
        self.ports = {}
        self.listeners = []
        for spec in listeners:
            spec = dict(spec)
            name = spec.pop("name")
            port = spec.pop("port", None) or free_port()
            self.ports[name] = port
            lst = {"address": "127.0.0.1:%d" % port, "tls": spec.pop("tls", "none"),
                   "auth": spec.pop("auth", "none"), "relay": spec.pop("relay", "networks")}
            lst.update(spec)
            self.listeners.append((name, lst))
        self.config = {
            "node": "integ",
            "spool": self.spool,
            "state": self.state,
            "listen": [lst for _, lst in self.listeners],
        }
        if any(lst["tls"] != "none" for _, lst in self.listeners):
            assert tls_files, "a TLS listener needs the tls_files fixture"
            self.config["tls"] = {"cert": tls_files[0], "key": tls_files[1]}
        self.config["networks"] = networks if networks is not None else ["127.0.0.0/8",
                                                                          "::1/128"]
        if users is None:
            users = [{"name": USER, "password_hash": password_hash()}]
        if users:
            self.config["users"] = users
        lim = {"max_message_size": "1M", "max_recipients": 50, "max_line": 1000}
        lim.update(limits or {})
        self.config["limits"] = lim
        if route == "sink":
            # Deliveries (once the relay runs) go to a closed loopback port: they defer and the
            # messages stay in queue/, and no test ever talks to the outside world.
            self.config["upstreams"] = [{"name": "sink", "host": "127.0.0.1",
                                         "port": free_port(), "tls": "none",
                                         "verify": False}]
            self.config["routes"] = [{"name": "default", "upstreams": ["sink"]}]
        else:
            self.config["upstreams"] = []
            self.config["routes"] = [{"name": "default", "mx": True}]
        self.config["retry"] = {"schedule": ["1h"], "max_age": "5d"}
        # The HTTP API on a free port (the default 8025 would clash between daemons); extra's
        # "api" keys are merged into this block.
        self.ports["api"] = free_port()
        self.control_socket = os.path.join(self.state, "control.sock")
        self.config["api"] = {"listen": "127.0.0.1:%d" % self.ports["api"],
                              "control_socket": self.control_socket}
        extra = dict(extra or {})
        self.config["api"].update(extra.pop("api", {}))
        self.config.update(extra)
        self.write_config()

    # -- config --------------------------------------------------------------------------------
    def write_config(self, text=None):
        if text is None:
            text = to_yaml(self.config) + "\n"
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)
        return text

    def port(self, name=None):
        if name is None:
            return self.ports[self.listeners[0][0]]
        return self.ports[name]

    def listener(self, name):
        for n, lst in self.listeners:
            if n == name:
                return lst
        raise KeyError(name)

    # -- process -------------------------------------------------------------------------------
    def start(self, env=None, wait=True):
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        e = dict(os.environ)
        e.update(self.env)
        if env is not None:
            e.update(env)
        self.log_offset = os.path.getsize(self.stderr_path) if os.path.exists(
            self.stderr_path) else 0
        err = open(self.stderr_path, "ab")
        out = open(self.stdout_path, "ab")
        try:
            self.proc = subprocess.Popen([hikyaku_bin(), "serve", "-c", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=e, cwd=self.dir)
        finally:
            err.close()
            out.close()
        self.starts += 1
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, deadline=READY_DEADLINE):
        """Poll the first listener until it sends a 220 greeting."""
        name, lst = self.listeners[0]
        port = self.ports[name]
        implicit = lst["tls"] == "implicit"
        end = time.monotonic() + deadline
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("hikyaku exited with %s before it was ready; stderr:\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            try:
                c = Raw(port, tls=implicit, timeout=2.0)
                try:
                    code = c.greeting.code
                    if code == 220:
                        c.send("QUIT\r\n")
                        try:
                            c.reply()
                            c.closed(2.0)
                        except (ConnectionClosed, OSError):
                            pass
                        return
                    last = c.greeting
                finally:
                    c.close()
            except (OSError, ConnectionClosed, AssertionError) as ex:
                last = ex
            time.sleep(0.02)
        raise AssertionError("hikyaku not ready within %.0fs (last: %r); stderr:\n%s"
                             % (deadline, last, self.log_tail()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL by PID and reap."""
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=STOP_DEADLINE)

    def signal(self, sig):
        assert self.running(), "daemon not running"
        os.kill(self.proc.pid, sig)

    def stop(self):
        """SIGTERM, then SIGKILL after a deadline. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_DEADLINE)
        return self.proc.returncode

    def wait_exit(self, deadline=STOP_DEADLINE):
        try:
            return self.proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            raise AssertionError("hikyaku did not exit within %.0fs" % deadline)

    # -- log -----------------------------------------------------------------------------------
    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def wait_for_log(self, pattern, deadline=5.0, since=0):
        """Wait for a stderr line matching the regex; returns the match."""
        rx = re.compile(pattern)

        def find():
            text = self.log()[since:]
            for line in text.splitlines():
                m = rx.search(line)
                if m:
                    return m
            return None
        try:
            return wait_until(find, deadline, "log line /%s/" % pattern)
        except AssertionError:
            raise AssertionError("no log line matching /%s/ within %.1fs; stderr tail:\n%s"
                                 % (pattern, deadline, self.log_tail()))

    def log_size(self):
        return len(self.log())

    # -- spool ---------------------------------------------------------------------------------
    def qdir(self, sub="queue"):
        return os.path.join(self.spool, sub)

    def files(self, sub="queue"):
        try:
            return sorted(os.listdir(self.qdir(sub)))
        except FileNotFoundError:
            return []

    def queue_ids(self):
        """IDs with a committed envelope (queue/<ID>.env)."""
        return sorted(f[:-4] for f in self.files() if f.endswith(".env"))

    def body_ids(self):
        """IDs with a body: queue/<ID>.msg, or bytes after the envelope in queue/<ID>.env."""
        ids = {f[:-4] for f in self.files() if f.endswith(".msg")}
        for qid in self.queue_ids():
            try:
                with open(os.path.join(self.qdir(), qid + ".env"), "rb") as f:
                    if split_envelope(f.read())[1]:
                        ids.add(qid)
            except FileNotFoundError:
                pass
        return sorted(ids)

    def count(self):
        return len(self.queue_ids())

    def read_env(self, qid):
        with open(os.path.join(self.qdir(), qid + ".env"), "rb") as f:
            return Envelope(f.read())

    def read_msg(self, qid):
        """The body: queue/<ID>.msg once an update moved it there, else the bytes after the
        envelope in queue/<ID>.env (where the commit writes it)."""
        try:
            with open(os.path.join(self.qdir(), qid + ".msg"), "rb") as f:
                return f.read()
        except FileNotFoundError:
            with open(os.path.join(self.qdir(), qid + ".env"), "rb") as f:
                return split_envelope(f.read())[1]

    def wait_count(self, n, deadline=5.0):
        return wait_until(lambda: self.count() == n, deadline, "%d message(s) in queue/" % n)

    def assert_sanitizers_quiet(self):
        text = self.log()
        for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert marker not in text, "sanitizer report in stderr:\n%s" % self.log_tail(80)


_HASH_CACHE = {}


def password_hash():
    if PASSWORD not in _HASH_CACHE:
        _HASH_CACHE[PASSWORD] = make_hash(PASSWORD)
    return _HASH_CACHE[PASSWORD]


# ---------------------------------------------------------------------------------------------
# Fixtures

@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """A self-signed certificate and key made with the openssl CLI."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "tls.crt"), str(d / "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key


@pytest.fixture
def daemon_factory(tmp_path, tls_files):
    """make(listeners=[...], ...) -> a started Daemon; all are stopped at teardown."""
    made = []

    def make(listeners=None, start=True, **kw):
        if listeners is None:
            listeners = [{"name": "plain"}]
        sub = tmp_path / ("d%d" % len(made))
        sub.mkdir()
        d = Daemon(sub, listeners, tls_files=tls_files, **kw)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    for d in made:
        d.stop()
    for d in made:
        d.assert_sanitizers_quiet()


@pytest.fixture
def daemon(daemon_factory):
    """A daemon with a plain listener (tls none, auth none, relay networks)."""
    return daemon_factory()


STD_LISTENERS = [
    {"name": "plain"},
    {"name": "starttls", "tls": "starttls", "auth": "optional",
     "relay": ["networks", "authenticated"]},
    {"name": "implicit", "tls": "implicit", "auth": "optional",
     "relay": ["networks", "authenticated"]},
    {"name": "submission", "tls": "starttls", "auth": "required", "relay": "authenticated"},
    {"name": "insecure", "auth": "optional", "relay": "authenticated",
     "allow_insecure_auth": True},
]


@pytest.fixture
def multi(daemon_factory):
    """A daemon with plain, starttls, implicit, submission and insecure-auth listeners."""
    return daemon_factory(listeners=STD_LISTENERS)


def send_raw_transaction(c, mail_from, rcpts, data, ehlo=True):
    """Run EHLO/MAIL/RCPT/DATA on a Raw client; data is the unstuffed message. Returns the final
    reply."""
    if ehlo:
        c.ehlo()
    r = c.cmd("MAIL FROM:<%s>" % mail_from)
    assert r.code == 250, r
    for a in rcpts:
        r = c.cmd("RCPT TO:<%s>" % a)
        assert r.code == 250, r
    r = c.cmd("DATA")
    assert r.code == 354, r
    stuffed = re.sub(rb"(?m)^\.", b"..", data)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    c.send(stuffed + b".\r\n")
    return c.reply()


def queued_id(reply):
    """The ID from a "250 2.0.0 Ok: queued as <ID>" reply (Reply or smtplib (code, bytes))."""
    if isinstance(reply, tuple):
        code, text = reply
        text = text.decode() if isinstance(text, bytes) else text
    else:
        code, text = reply.code, reply.lines[0]
    assert code == 250, (code, text)
    m = QUEUED_RE.match(text)
    assert m, "not a 'queued as' reply: %r" % text
    return m.group(1)


# ---------------------------------------------------------------------------------------------
# Delivery: fake upstreams, fake DNS, a daemon wired to them, and the email log (read-only)

RECEIVED_ID_RE = re.compile(rb"\bid ([0-9A-F]{16})\b")
# maillog_event order (src/db/maillog.h), for logs that store the event as a number.
MAILLOG_EVENTS = ["received", "attempt", "sent", "deferred", "bounced", "expired", "resent",
                  "suppressed", "complaint", "held", "released", "deleted"]

# Short timings so failures show in seconds (delivery section: docs/configuration.md).
FAST_DELIVERY = {"connect_timeout": "2s", "command_timeout": "3s", "dot_timeout": "3s",
                 "breaker_open": "1s", "connection_reuse": "0s"}


@pytest.fixture
def fake_smtp(tls_files):
    """make(name, host="127.0.0.1", port=0, start=True) -> a FakeSMTP; all stopped at teardown.
    Also callable as make.many(n) -> [fake0, fake1, ...] on free ports."""
    from fakesmtp import FakeSMTP
    made = []

    def make(name="fake", host="127.0.0.1", port=0, start=True):
        f = FakeSMTP(name, host=host, port=port, tls_files=tls_files)
        made.append(f)
        if start:
            f.start()
        return f

    def many(n, prefix="up"):
        return [make("%s%d" % (prefix, i)) for i in range(n)]

    make.many = many
    yield make
    for f in made:
        f.stop()


@pytest.fixture
def fake_dns():
    """A started FakeDNS (UDP+TCP on a free loopback port), stopped at teardown."""
    from dnsfake import FakeDNS
    d = FakeDNS().start()
    yield d
    d.stop()


def upstream_conf(name, fake=None, port=None, **kw):
    """An upstreams: entry for a fake (or a bare port, e.g. a closed one)."""
    u = {"name": name, "host": "127.0.0.1",
         "port": fake.port if fake is not None else (port or free_port()),
         "tls": "none", "verify": False}
    u.update(kw)
    return u


def delivery_daemon(daemon_factory, upstreams, route=None, retry=None, delivery=None,
                    extra=None, start=True, **kw):
    """A daemon whose one route goes through `upstreams` (list of upstreams: entries) in order, or
    direct to MX when route == "mx". Fast timings unless `delivery` overrides them."""
    cfg = {}
    if route == "mx":
        cfg["upstreams"] = upstreams or []
        cfg["routes"] = [{"name": "default", "mx": True}]
    else:
        cfg["upstreams"] = upstreams
        cfg["routes"] = [{"name": "default",
                          "upstreams": route or [u["name"] for u in upstreams]}]
    cfg["retry"] = retry or {"schedule": ["1s"], "max_age": "1h"}
    dl = dict(FAST_DELIVERY)
    dl.update(delivery or {})
    cfg["delivery"] = dl
    cfg.update(extra or {})
    return daemon_factory(extra=cfg, start=start, **kw)


def submit(d, rcpts, data=None, mail_from="sender@example.com", subject="delivery test"):
    """One message through the daemon's first listener; returns its queue ID."""
    if data is None:
        data = message(subject=subject)
    with Raw(d.port()) as c:
        r = send_raw_transaction(c, mail_from, rcpts, data)
        qid = queued_id(r)
        try:
            c.cmd("QUIT")
        except (ConnectionClosed, OSError):
            pass
    return qid


def received_qid(msg):
    """The hikyaku queue ID from the Received: header hikyaku prepended (a fakesmtp.Message or
    bytes), or None."""
    data = msg if isinstance(msg, (bytes, bytearray)) else msg.data
    head = data.split(b"\r\n\r\n", 1)[0]
    m = RECEIVED_ID_RE.search(head)
    return m.group(1).decode() if m else None


def deliveries(fakes, mail_from=None):
    """{(qid, rcpt): count} over every message every fake accepted (DSNs excluded unless
    mail_from="" is asked)."""
    out = {}
    for f in fakes:
        with f.cond:
            msgs = list(f.messages)
        for m in msgs:
            if mail_from is None and m.mail_from == "":
                continue
            if mail_from is not None and m.mail_from != mail_from:
                continue
            q = received_qid(m)
            for r in m.rcpts:
                out[(q, r.lower())] = out.get((q, r.lower()), 0) + 1
    return out


def assert_once(fakes, expected):
    """Every (qid, rcpt) of expected arrived exactly once over all fakes, and nothing else (no
    duplicate, no stray recipient). expected: {qid: [rcpt, ...]}."""
    got = deliveries(fakes)
    want = {(q, r.lower()): 1 for q, rs in expected.items() for r in rs}
    dup = {k: v for k, v in got.items() if v > 1}
    assert not dup, "delivered more than once: %r" % dup
    missing = sorted(set(want) - set(got))
    assert not missing, "never delivered: %r (got %r)" % (missing, sorted(got))
    stray = sorted(k for k in set(got) - set(want) if k[0] in expected or k[0] is None)
    assert not stray, "delivered but not expected: %r" % stray


def dsns(fakes, to=None):
    """Messages with MAIL FROM:<> over the fakes (optionally only those to `to`)."""
    out = []
    for f in fakes:
        with f.cond:
            out += [m for m in f.messages if m.mail_from == ""
                    and (to is None or to.lower() in [r.lower() for r in m.rcpts])]
    return out


def wait_dsn(fakes, to, deadline=10.0):
    return wait_until(lambda: dsns(fakes, to), deadline, "a DSN (MAIL FROM:<>) to %s" % to)


def assert_dsn(msg, failed_rcpt, status_prefix=None, action="failed", qid=None):
    """An RFC 3464 report: multipart/report; report-type=delivery-status, naming the failed
    recipient with Action and Status; never to <>."""
    assert msg.mail_from == "", "DSN not sent with MAIL FROM:<> (%r)" % msg.mail_from
    ct = (msg.header("Content-Type") or "").lower()
    assert "multipart/report" in ct and "delivery-status" in ct, "not a DSN: Content-Type %r" % ct
    text = msg.data.decode("utf-8", "replace")
    assert re.search(r"(?im)^content-type:\s*message/delivery-status", text), \
        "no message/delivery-status part"
    assert re.search(r"(?im)^final-recipient:\s*rfc822;\s*<?%s>?\s*$" % re.escape(failed_rcpt),
                     text), "no Final-Recipient for %s in DSN:\n%s" % (failed_rcpt, text[:3000])
    assert re.search(r"(?im)^action:\s*%s\b" % action, text), "no Action: %s in DSN" % action
    if status_prefix:
        assert re.search(r"(?im)^status:\s*%s" % re.escape(status_prefix), text), \
            "no Status: %s in DSN" % status_prefix
    if qid is not None:
        assert qid in text, "DSN does not mention the queue ID %s" % qid


def env_states(d, qid):
    """{rcpt: state} from queue/<ID>.env, or None when the envelope is gone (finished)."""
    try:
        env = d.read_env(qid)
    except FileNotFoundError:
        return None
    return {r.get("to"): r.get("state") for r in env.rcpts}


def wait_finished(d, qid, deadline=10.0):
    """Wait until queue/<ID>.env is gone (all recipients final and logged)."""
    path = os.path.join(d.qdir(), qid + ".env")
    wait_until(lambda: not os.path.exists(path), deadline, "message %s finished" % qid)


def wait_env_state(d, qid, rcpt, state, deadline=10.0):
    def check():
        s = env_states(d, qid)
        return s is not None and s.get(rcpt) == state
    wait_until(check, deadline, "%s of %s in state %s" % (rcpt, qid, state))


class MailLog:
    """Read-only view of <state>/hikyaku.db. Column names are looked up, not assumed, so the
    helpers survive schema details: a row belongs to a message when one of its values is the
    queue ID (hex text or the 64-bit integer), or its message key equals the messages row's."""

    KIND_COLS = ("type", "event", "kind", "name", "what", "status")

    def __init__(self, d):
        self.path = os.path.join(d.state, "hikyaku.db")

    def _con(self):
        import sqlite3
        assert os.path.exists(self.path), "no email log at %s" % self.path
        con = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=5)
        con.row_factory = sqlite3.Row
        return con

    def tables(self):
        con = self._con()
        try:
            return [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table','view')")]
        finally:
            con.close()

    def rows(self, table):
        import sqlite3
        con = self._con()
        try:
            return [dict(r) for r in con.execute("SELECT rowid AS _rowid, * FROM %s" % table)]
        except sqlite3.OperationalError as ex:
            if "rowid" in str(ex):
                return [dict(r) for r in con.execute("SELECT * FROM %s" % table)]
            raise
        finally:
            con.close()

    @staticmethod
    def _is_qid(v, qid):
        if isinstance(v, str):
            return v.upper() == qid
        if isinstance(v, int) and not isinstance(v, bool):
            return (v & 0xFFFFFFFFFFFFFFFF) == int(qid, 16)
        return False

    def _message_keys(self, qid):
        keys = set()
        try:
            for r in self.rows("messages"):
                if any(self._is_qid(v, qid) for v in r.values()):
                    for k in ("_rowid", "id", "message_id", "msg_id"):
                        if k in r and r[k] is not None:
                            keys.add(r[k])
        except Exception:  # noqa: BLE001 - schema not there yet
            pass
        return keys

    def for_message(self, table, qid):
        keys = self._message_keys(qid)
        out = []
        for r in self.rows(table):
            if any(self._is_qid(v, qid) for k, v in r.items() if k != "_rowid"):
                out.append(r)
            elif any(r.get(k) in keys for k in ("message_id", "msg_id", "message", "msg")
                     if r.get(k) is not None):
                out.append(r)
        return out

    @classmethod
    def kind(cls, row):
        for k in cls.KIND_COLS:
            if k in row and row[k] is not None:
                v = row[k]
                if isinstance(v, int) and 0 <= v < len(MAILLOG_EVENTS):
                    return MAILLOG_EVENTS[v]
                return str(v).lower()
        return None

    def events(self, qid, kind=None):
        evs = self.for_message("events", qid)
        if kind is not None:
            evs = [e for e in evs if self.kind(e) == kind]
        return evs

    def rcpt_status(self, qid):
        """{rcpt: status} from the recipients table."""
        out = {}
        for r in self.for_message("recipients", qid):
            addr = next((r[k] for k in ("rcpt", "address", "recipient", "to_addr", "addr", "to")
                         if k in r and isinstance(r[k], str)), None)
            st = next((r[k] for k in ("status", "state") if k in r), None)
            if isinstance(st, int) and 0 <= st < len(MAILLOG_EVENTS):
                st = MAILLOG_EVENTS[st]
            out[addr] = st
        return out

    def wait_status(self, qid, rcpt, status, deadline=10.0):
        def check():
            try:
                return self.rcpt_status(qid).get(rcpt) == status
            except Exception:  # noqa: BLE001 - the database may not exist yet
                return False
        try:
            wait_until(check, deadline, "%s of %s with status %s in the email log"
                       % (rcpt, qid, status))
        except AssertionError:
            try:
                now = self.rcpt_status(qid)
            except Exception as ex:  # noqa: BLE001
                now = ex
            raise AssertionError("%s of %s never reached status %s in the email log (now: %r)"
                                 % (rcpt, qid, status, now))


def field(row, *names):
    """The first of the named columns present in a row (None if none is)."""
    for n in names:
        if n in row:
            return row[n]
    return None
