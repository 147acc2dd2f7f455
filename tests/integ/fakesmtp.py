"""Scriptable fake SMTP servers on loopback for the delivery tests.

A FakeSMTP listens on 127.0.0.x, speaks enough ESMTP for a relay's client (EHLO/HELO, PIPELINING,
SIZE, 8BITMIME, DSN, SMTPUTF8, ENHANCEDSTATUSCODES, optional STARTTLS, AUTH PLAIN/LOGIN, optional
CHUNKING/BDAT) and can be told, at any time, to misbehave at one step:

    fake.greeting = (421, "4.3.2 busy")          # reply at connect, then close when not 2xx
    fake.replies["EHLO"] = (550, "5.7.1 no")      # any verb: EHLO HELO MAIL DATA RSET ...
    fake.rcpt_replies["bad@x"] = (550, "5.1.1 no such user")
    fake.dot_reply = (451, "4.3.0 try later")     # or a list, consumed one reply per message
    fake.auth = ("user", "password")              # AUTH required; wrong credentials -> 535
    fake.auth_reply = (535, "5.7.8 no")           # every AUTH refused
    fake.starttls = True                          # offer STARTTLS (needs cert files)
    fake.implicit_tls = True                      # TLS handshake first, then the greeting
    fake.hang_after_dot = True                    # no answer after the final dot (until the
                                                  # flag is cleared: then close, no reply)
    fake.drop_after = "DATA"                      # close the connection after DATA's 354 ...
                                                  # ... or "DOT": after the body, before a reply
    fake.down() / fake.up()                       # stop listening (connection refused) / again

Everything received is recorded: connections (count), commands (every line, per connection), and
messages (envelope + unstuffed body) for each transaction the fake answered 2xx after the dot.
Waits (wait_messages, wait_connections, wait_for) have deadlines; nothing sleeps blindly.

One accept thread and one thread per connection; stop() closes everything and joins the threads.
Only loopback addresses are accepted.
"""

import base64
import re
import socket
import ssl
import threading
import time

import ports

IO_TIMEOUT = 30.0


class Message:
    """One transaction a fake accepted after the final dot."""

    def __init__(self, server, conn_no, mail_from, mail_params, rcpts, rcpt_params, data, tls,
                 auth_user, helo):
        self.server = server
        self.conn_no = conn_no
        self.mail_from = mail_from      # "" for <>
        self.mail_params = mail_params  # "SIZE=123 BODY=8BITMIME"
        self.rcpts = rcpts              # accepted recipients, in order
        self.rcpt_params = rcpt_params  # per accepted recipient, the parameter text
        self.data = data                # unstuffed, CRLF lines, without the final ".\r\n"
        self.tls = tls
        self.auth_user = auth_user
        self.helo = helo
        self.time = time.monotonic()

    def header(self, name):
        """The first header field `name` (unfolded) or None."""
        head = self.data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        value = None
        for line in head.split("\r\n"):
            if value is not None:
                if line[:1] in (" ", "\t"):
                    value += " " + line.strip()
                    continue
                return value
            if line.lower().startswith(name.lower() + ":"):
                value = line.split(":", 1)[1].strip()
        return value

    def header_names(self):
        head = self.data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        return [ln.split(":", 1)[0].lower() for ln in head.split("\r\n")
                if ln and ln[:1] not in (" ", "\t")]

    def __repr__(self):
        return "Message(%s conn=%d from=<%s> to=%r %d bytes)" % (
            self.server, self.conn_no, self.mail_from, self.rcpts, len(self.data))


class _Closed(Exception):
    pass


class _Conn:
    """One client connection: a buffered line reader over a plain or TLS socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reply(self, code, text):
        lines = text.split("\n") if text else [""]
        out = []
        for i, ln in enumerate(lines):
            sep = " " if i == len(lines) - 1 else "-"
            out.append("%03d%s%s\r\n" % (code, sep, ln))
        self.send("".join(out))

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed()
        self.buf += chunk

    def line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                ln, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return ln
            if len(self.buf) > 1 << 20:
                raise _Closed()
            self._fill()

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class FakeSMTP:
    """A scriptable SMTP server in threads; see the module comment."""

    def __init__(self, name="fake", host="127.0.0.1", port=0, tls_files=None):
        assert host.startswith("127."), "fake servers listen on loopback only"
        self.name = name
        self.host = host
        self.port = port
        self.tls_files = tls_files
        self.cond = threading.Condition()
        self._lsock = None
        self._accept_thread = None
        self._threads = []
        self._socks = set()
        self._stopping = False
        self._release = threading.Event()
        self.reset_behaviour()
        self.reset_records()

    # -- behaviour -------------------------------------------------------------------------------
    def reset_behaviour(self):
        """Back to a plain, accepting server."""
        self.greeting = (220, "%s ESMTP fake" % self.name)
        self.replies = {}          # verb -> (code, text): replaces the normal reply
        self.rcpt_replies = {}     # lower-case address -> (code, text)
        self.rcpt_default = None   # (code, text) for every other recipient, None: 250
        self.dot_reply = None      # (code, text) or a list of them (one per message), None: 250
        self.auth = None           # (user, password): AUTH required before MAIL
        self.auth_reply = None     # (code, text): every AUTH answered so
        self.starttls = False      # offer STARTTLS
        self.implicit_tls = False  # TLS from the first byte (port 465 style), then the greeting
        self.hang_after_dot = False
        self.hang_after_greeting = False
        self.drop_after = None     # "DATA" (after 354) or "DOT" (after the body, no reply)
        self.size = 0              # SIZE n advertised (0: SIZE without a limit)
        self.pipelining = True
        self.chunking = False
        self.dsn = True
        self.smtputf8 = True
        self.esmtp = True

    def reset_records(self):
        with self.cond:
            self.connections = 0
            self.commands = []     # (conn_no, line) for every command line received
            self.messages = []     # Message, for every transaction answered 2xx after the dot
            self.transactions = 0  # final dots received (answered or not)
            self.auth_attempts = 0
            self.cond.notify_all()

    # -- life ------------------------------------------------------------------------------------
    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(128)
        self.port = s.getsockname()[1]
        self._lsock = s
        self._stopping = False
        self._release.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, args=(s,),
                                               name="fake-%s-accept" % self.name, daemon=True)
        self._accept_thread.start()
        return self

    def down(self):
        """Stop listening and close every open connection: new connections are refused."""
        self._stopping = True
        self._release.set()
        s, self._lsock = self._lsock, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        with self.cond:
            socks = list(self._socks)
        for c in socks:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass
        if self._accept_thread is not None:
            self._accept_thread.join(5)
            self._accept_thread = None
        for t in self._threads:
            t.join(5)
        self._threads = [t for t in self._threads if t.is_alive()]

    def up(self):
        """Listen again on the same address and port."""
        if self._lsock is None:
            self.start()
        return self

    stop = down

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def __repr__(self):
        return "FakeSMTP(%s %s)" % (self.name, self.address)

    # -- waiting ---------------------------------------------------------------------------------
    def wait_for(self, pred, deadline, what):
        end = time.monotonic() + deadline
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: timed out after %.1fs waiting for %s (connections=%d,"
                                         " messages=%d, last commands=%r)"
                                         % (self.name, deadline, what, self.connections,
                                            len(self.messages), self.commands[-8:]))
                self.cond.wait(min(left, 0.1))

    def wait_messages(self, n, deadline=10.0):
        """Wait until at least n messages were accepted; returns the list."""
        self.wait_for(lambda: len(self.messages) >= n, deadline, "%d message(s)" % n)
        return list(self.messages)

    def wait_connections(self, n, deadline=10.0):
        return self.wait_for(lambda: self.connections >= n and self.connections, deadline,
                             "%d connection(s)" % n)

    def wait_command(self, pattern, deadline=10.0):
        rx = re.compile(pattern, re.I)
        return self.wait_for(lambda: next((c for _, c in self.commands if rx.search(c)), None),
                             deadline, "a command matching /%s/" % pattern)

    def wait_transactions(self, n, deadline=10.0):
        return self.wait_for(lambda: self.transactions >= n, deadline,
                             "%d final dot(s)" % n)

    def verbs(self):
        with self.cond:
            return [c.split(" ", 1)[0].split(":", 1)[0].upper() for _, c in self.commands]

    def rcpts_received(self):
        """Every accepted recipient of every accepted message, in order."""
        with self.cond:
            return [r for m in self.messages for r in m.rcpts]

    # -- serving ---------------------------------------------------------------------------------
    def _accept_loop(self, lsock):
        while not self._stopping:
            try:
                c, peer = lsock.accept()
            except OSError:
                return
            if self._stopping:
                c.close()
                return
            c.settimeout(IO_TIMEOUT)
            with self.cond:
                self.connections += 1
                no = self.connections
                self._socks.add(c)
                self.cond.notify_all()
            t = threading.Thread(target=self._serve, args=(c, no),
                                 name="fake-%s-%d" % (self.name, no), daemon=True)
            self._threads.append(t)
            t.start()

    def _record(self, no, line):
        with self.cond:
            self.commands.append((no, line))
            self.cond.notify_all()

    def _serve(self, sock, no):
        conn = _Conn(sock)
        try:
            self._session(conn, no)
        except (_Closed, OSError, ssl.SSLError, ValueError):
            pass
        finally:
            with self.cond:
                self._socks.discard(sock)
                self._socks.discard(conn.sock)
                self.cond.notify_all()
            try:
                conn.sock.close()
            except OSError:
                pass

    def _ehlo_lines(self, helo_name, tls, authed):
        lines = ["%s greets %s" % (self.name, helo_name)]
        if self.pipelining:
            lines.append("PIPELINING")
        lines.append("SIZE %d" % self.size if self.size else "SIZE")
        lines.append("8BITMIME")
        lines.append("ENHANCEDSTATUSCODES")
        if self.smtputf8:
            lines.append("SMTPUTF8")
        if self.dsn:
            lines.append("DSN")
        if self.chunking:
            lines.append("CHUNKING")
        if self.starttls and not tls:
            lines.append("STARTTLS")
        if self.auth is not None or self.auth_reply is not None:
            lines.append("AUTH PLAIN LOGIN")
        return "\n".join(lines)

    def _check_auth(self, user, password):
        with self.cond:
            self.auth_attempts += 1
        if self.auth_reply is not None:
            return self.auth_reply
        if self.auth is not None and (user, password) == tuple(self.auth):
            return (235, "2.7.0 Authentication successful")
        return (535, "5.7.8 Authentication credentials invalid")

    def _next_dot_reply(self):
        with self.cond:
            r = self.dot_reply
            if isinstance(r, list):
                if not r:
                    return (250, "2.0.0 Ok: queued")
                return r.pop(0)
        return r if r is not None else (250, "2.0.0 Ok: queued")

    def _session(self, conn, no):
        if self.hang_after_greeting:
            end = time.monotonic() + IO_TIMEOUT
            while self.hang_after_greeting and not self._stopping and time.monotonic() < end:
                self._release.wait(0.05)
            return
        tls_first = False
        if self.implicit_tls and self.tls_files:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls_files[0], self.tls_files[1])
            conn.sock = ctx.wrap_socket(conn.sock, server_side=True)
            with self.cond:
                self._socks.add(conn.sock)
            tls_first = True
        code, text = self.greeting
        conn.reply(code, text)
        if code // 100 != 2:
            # Stay for QUIT or the client's close, as real servers mostly do (RFC 5321 3.1).
            try:
                while True:
                    ln = conn.line().decode("utf-8", "replace").rstrip("\r\n")
                    self._record(no, ln)
                    if ln.upper().startswith("QUIT"):
                        conn.reply(221, "2.0.0 Bye")
                        return
                    conn.reply(503, "5.5.1 Bad sequence of commands")
            except _Closed:
                return
        tls = tls_first
        helo = None
        authed = None
        mail_from = None
        mail_params = ""
        rcpts = []
        rcpt_params = []
        bdat = b""
        while True:
            raw = conn.line()
            ln = raw.decode("utf-8", "replace").rstrip("\r\n")
            self._record(no, ln)
            verb = ln.split(" ", 1)[0].upper()
            arg = ln[len(verb):].strip()
            override = self.replies.get(verb)
            if override is not None and verb not in ("QUIT",):
                conn.reply(*override)
                if override[0] == 421:
                    return
                if verb == "MAIL":
                    mail_from = None
                continue
            if verb in ("EHLO", "HELO"):
                if verb == "EHLO" and not self.esmtp:
                    conn.reply(502, "5.5.2 Command not implemented")
                    continue
                helo = arg
                mail_from, rcpts, rcpt_params, bdat = None, [], [], b""
                if verb == "EHLO":
                    conn.reply(250, self._ehlo_lines(arg, tls, authed))
                else:
                    conn.reply(250, "%s" % self.name)
            elif verb == "STARTTLS":
                if not self.starttls or tls or not self.tls_files:
                    conn.reply(502, "5.5.1 STARTTLS not available")
                    continue
                if conn.buf:
                    # Bytes pipelined after STARTTLS: a conforming client never sends them.
                    conn.buf = b""
                conn.reply(220, "2.0.0 Ready to start TLS")
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(self.tls_files[0], self.tls_files[1])
                raw_sock = conn.sock
                conn.sock = ctx.wrap_socket(raw_sock, server_side=True)
                with self.cond:
                    self._socks.add(conn.sock)
                tls = True
                helo, authed = None, None
                mail_from, rcpts, rcpt_params = None, [], []
            elif verb == "AUTH":
                parts = arg.split()
                mech = parts[0].upper() if parts else ""
                if authed is not None:
                    conn.reply(503, "5.5.1 Already authenticated")
                    continue
                if mech == "PLAIN":
                    if len(parts) > 1:
                        blob = parts[1]
                    else:
                        conn.reply(334, "")
                        blob = conn.line().decode().strip()
                        self._record(no, "<auth data>")
                    try:
                        _, user, password = base64.b64decode(blob).decode().split("\0", 2)
                    except (ValueError, UnicodeDecodeError):
                        conn.reply(501, "5.5.2 Cannot decode")
                        continue
                elif mech == "LOGIN":
                    try:
                        if len(parts) > 1:
                            user = base64.b64decode(parts[1]).decode()
                        else:
                            conn.reply(334, "VXNlcm5hbWU6")
                            user = base64.b64decode(conn.line().strip()).decode()
                            self._record(no, "<auth data>")
                        conn.reply(334, "UGFzc3dvcmQ6")
                        password = base64.b64decode(conn.line().strip()).decode()
                        self._record(no, "<auth data>")
                    except (ValueError, UnicodeDecodeError):
                        conn.reply(501, "5.5.2 Cannot decode")
                        continue
                else:
                    conn.reply(504, "5.5.4 Unrecognized authentication type")
                    continue
                code, text = self._check_auth(user, password)
                conn.reply(code, text)
                if code == 235:
                    authed = user
            elif verb == "MAIL":
                m = re.match(r"(?i)^FROM:\s*<([^>]*)>\s*(.*)$", arg)
                if not m:
                    conn.reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
                    continue
                if self.auth is not None and authed is None:
                    conn.reply(530, "5.7.0 Authentication required")
                    continue
                mail_from, mail_params = m.group(1), m.group(2)
                rcpts, rcpt_params, bdat = [], [], b""
                conn.reply(250, "2.1.0 Ok")
            elif verb == "RCPT":
                m = re.match(r"(?i)^TO:\s*<([^>]*)>\s*(.*)$", arg)
                if mail_from is None:
                    conn.reply(503, "5.5.1 Need MAIL first")
                    continue
                if not m:
                    conn.reply(501, "5.5.4 Syntax: RCPT TO:<address>")
                    continue
                addr = m.group(1)
                r = self.rcpt_replies.get(addr.lower(), self.rcpt_default)
                if r is not None and r[0] // 100 != 2:
                    conn.reply(*r)
                    continue
                rcpts.append(addr)
                rcpt_params.append(m.group(2))
                conn.reply(250, "2.1.5 Ok")
            elif verb == "DATA":
                if mail_from is None or not rcpts:
                    conn.reply(554 if mail_from is not None else 503,
                               "5.5.1 No valid recipients" if mail_from is not None
                               else "5.5.1 Need MAIL first")
                    continue
                conn.reply(354, "End data with <CR><LF>.<CR><LF>")
                if self.drop_after == "DATA":
                    return
                lines = []
                while True:
                    ln2 = conn.line()
                    if ln2 == b".\r\n":
                        break
                    if ln2.startswith(b"."):
                        ln2 = ln2[1:]
                    lines.append(ln2)
                data = b"".join(lines)
                if not self._finish(conn, no, mail_from, mail_params, rcpts, rcpt_params, data,
                                    tls, authed, helo):
                    return
                mail_from, rcpts, rcpt_params = None, [], []
            elif verb == "BDAT":
                p = arg.split()
                try:
                    size = int(p[0])
                except (IndexError, ValueError):
                    conn.reply(501, "5.5.4 Syntax: BDAT size [LAST]")
                    continue
                chunk = conn.exact(size)
                bdat += chunk
                last = len(p) > 1 and p[1].upper() == "LAST"
                if mail_from is None or not rcpts:
                    conn.reply(503, "5.5.1 No valid recipients")
                    bdat = b""
                    continue
                if not last:
                    conn.reply(250, "2.0.0 %d octets received" % size)
                    continue
                if self.drop_after == "DATA":
                    return
                if not self._finish(conn, no, mail_from, mail_params, rcpts, rcpt_params, bdat,
                                    tls, authed, helo):
                    return
                mail_from, rcpts, rcpt_params, bdat = None, [], [], b""
            elif verb == "RSET":
                mail_from, rcpts, rcpt_params, bdat = None, [], [], b""
                conn.reply(250, "2.0.0 Ok")
            elif verb == "NOOP":
                conn.reply(250, "2.0.0 Ok")
            elif verb == "QUIT":
                conn.reply(221, "2.0.0 Bye")
                return
            else:
                conn.reply(502, "5.5.2 Command not recognized")

    def _finish(self, conn, no, mail_from, mail_params, rcpts, rcpt_params, data, tls, authed,
                helo):
        """After the final dot: record and reply. False when the connection must end."""
        with self.cond:
            self.transactions += 1
            self.cond.notify_all()
        if self.drop_after == "DOT":
            return False
        if self.hang_after_dot:
            end = time.monotonic() + IO_TIMEOUT
            while self.hang_after_dot and not self._stopping and time.monotonic() < end:
                self._release.wait(0.05)
            return False
        code, text = self._next_dot_reply()
        if code // 100 == 2:
            with self.cond:
                self.messages.append(Message(self.name, no, mail_from, mail_params, list(rcpts),
                                             list(rcpt_params), data, tls, authed, helo))
                self.cond.notify_all()
        conn.reply(code, text)
        return code != 421


def fake_on_free_port(name, host="127.0.0.1", tls_files=None):
    """A started FakeSMTP on a free port of host."""
    return FakeSMTP(name, host=host, port=0, tls_files=tls_files).start()


def free_port_on(hosts):
    """A TCP port free on every one of the given loopback addresses (for MX hosts sharing
    delivery.mx_port)."""
    return ports.free_port(hosts=hosts)
