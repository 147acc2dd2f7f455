"""A loopback HTTP server for alert channel tests: records every request (method, path,
headers, body) and answers from a script.

    f = FakeHTTP().start()
    f.script = [(429, {"Retry-After": "1"}, b"slow down")]   # first reply(s), then
    f.default = (200, {}, b"ok")                             # every later one
    ...
    f.wait_requests(2)
    f.stop()

Only 127.0.0.1; one thread per connection; HTTP/1.1 with Content-Length bodies.
"""

import http.server
import socketserver
import threading
import time


class Request:
    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers  # {lower-case name: value}
        self.body = body
        self.time = time.monotonic()

    def __repr__(self):
        return "<Request %s %s %d bytes>" % (self.method, self.path, len(self.body))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        fake = self.server.fake
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        req = Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        with fake.cond:
            fake.requests.append(req)
            reply = fake.script.pop(0) if fake.script else fake.default
            fake.cond.notify_all()
        status, headers, rbody = reply
        if status is None:
            # Hang: never answer (the client's timeout must fire).
            time.sleep(fake.hang_seconds)
            return
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rbody)))
        self.end_headers()
        self.wfile.write(rbody)

    do_GET = do_POST


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeHTTP:
    def __init__(self, host="127.0.0.1", port=0):
        self.srv = _Server((host, port), _Handler)
        self.srv.fake = self
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.cond = threading.Condition()
        self.requests = []
        self.script = []
        self.default = (200, {"Content-Type": "text/plain"}, b"ok")
        self.hang_seconds = 30
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()

    def wait_requests(self, n, deadline=15.0):
        end = time.monotonic() + deadline
        with self.cond:
            while len(self.requests) < n:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("fake HTTP: %d requests, wanted %d" %
                                         (len(self.requests), n))
                self.cond.wait(left)
            return list(self.requests)
