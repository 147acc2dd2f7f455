"""The HTTP API (DESIGN.md 11 and 14, docs/api.md): token auth on TCP, the control socket without
a token, JSON errors with real statuses, log search, message detail with attempts, queue,
upstreams, metrics and healthz, all against the real daemon on loopback.
"""

import http.client
import json
import os
import re
import socket
import stat

from conftest import delivery_daemon, submit, upstream_conf, wait_until

TOKEN = "t0ken-for-tests-0123456789"
GOOD = "good@dest.example"


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the control socket."""

    def __init__(self, path, timeout=10.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Resp(%d, %r)" % (self.status, self.body[:300])


def request(d, path, method="GET", token=None, control=False, headers=None, body=None):
    """One request to daemon d, over TCP (with an optional bearer token) or the control socket."""
    if control:
        c = UnixHTTPConnection(d.control_socket)
    else:
        c = http.client.HTTPConnection("127.0.0.1", d.ports["api"], timeout=10.0)
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return Resp(r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read())
    finally:
        c.close()


def ctl(d, path):
    """GET over the control socket; asserts 200 and returns the JSON."""
    r = request(d, path, control=True)
    assert r.status == 200, r
    return r.json


def assert_error(r, status, code=None):
    assert r.status == status, r
    assert r.headers.get("content-type") == "application/json", r.headers
    e = r.json["error"]
    assert isinstance(e["message"], str) and e["message"], e
    if code is not None:
        assert e["code"] == code, e


def token_daemon(daemon_factory, tmp_path, **kw):
    path = tmp_path / "api.token"
    path.write_text(TOKEN + "\n")
    extra = dict(kw.pop("extra", {}) or {})
    extra["api"] = {"token_file": str(path)}
    return daemon_factory(extra=extra, **kw)


def wait_search(d, query, n, deadline=10.0):
    """Search until at least n messages match (the log is written in batches after the 250)."""
    def check():
        got = ctl(d, "/api/v1/messages" + query)["messages"]
        return got if len(got) >= n else None
    return wait_until(check, deadline, "%d messages for %s" % (n, query))


# ---------------------------------------------------------------------------------------------
# Auth and errors

def test_healthz_and_metrics_need_no_token(daemon):
    r = request(daemon, "/healthz")
    assert r.status == 200 and r.json == {"status": "ok"}, r
    r = request(daemon, "/metrics")
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    assert b"\nhikyaku_up 1\n" in r.body


def test_without_token_file_tcp_answers_401(daemon):
    for path in ("/api/v1/queue", "/api/v1/messages", "/api/v1/upstreams", "/nowhere"):
        r = request(daemon, path)
        assert_error(r, 401, "unauthorized")
        assert r.headers.get("www-authenticate", "").startswith("Bearer"), r.headers
        # Even a token is refused when none is configured.
        assert_error(request(daemon, path, token="anything"), 401)


def test_control_socket_needs_no_token(daemon):
    st = os.stat(daemon.control_socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    q = ctl(daemon, "/api/v1/queue")
    assert q["counts"] == {"queued": 0, "deferred": 0, "held": 0}, q


def test_token_auth(daemon_factory, tmp_path):
    d = token_daemon(daemon_factory, tmp_path)
    assert_error(request(d, "/api/v1/queue"), 401, "unauthorized")
    assert_error(request(d, "/api/v1/queue", token="wrong"), 401, "unauthorized")
    assert_error(request(d, "/api/v1/queue", token=TOKEN + "x"), 401)
    assert_error(request(d, "/api/v1/queue", headers={"Authorization": "Basic " + TOKEN}), 401)
    r = request(d, "/api/v1/queue", token=TOKEN)
    assert r.status == 200, r
    assert "counts" in r.json
    r = request(d, "/api/v1/queue", headers={"Authorization": "bearer " + TOKEN})
    assert r.status == 200, r
    # Unknown paths: 401 without the token (nothing is revealed), 404 with it.
    assert_error(request(d, "/api/v1/nothing"), 401)
    assert_error(request(d, "/api/v1/nothing", token=TOKEN), 404, "not_found")


def test_missing_token_file_stops_start(daemon_factory, tmp_path):
    d = daemon_factory(start=False, extra={"api": {"token_file": str(tmp_path / "absent")}})
    d.start(wait=False)
    # The configuration check already refuses an unreadable file (sysexits EX_CONFIG).
    assert d.wait_exit() == 78
    assert "token_file" in d.log()


def test_bad_ids_methods_and_queries(daemon):
    assert_error(request(daemon, "/api/v1/messages/xyz", control=True), 400, "bad_id")
    assert_error(request(daemon, "/api/v1/messages/0123456789ABCDEG", control=True), 400,
                 "bad_id")
    assert_error(request(daemon, "/api/v1/messages/0123456789ABCDEF0", control=True), 400)
    assert_error(request(daemon, "/api/v1/messages/", control=True), 400)
    assert_error(request(daemon, "/api/v1/messages/0123456789abcdef", control=True), 404,
                 "not_found")
    r = request(daemon, "/api/v1/queue", method="DELETE", control=True)
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in r.headers.get("allow", ""), r.headers
    for q in ("limit=0", "limit=501", "status=lost", "cursor=zz", "since=yesterday", "bogus=1",
              "status=sent&status=sent"):
        assert_error(request(daemon, "/api/v1/messages?" + q, control=True), 400, "bad_request")
    assert_error(request(daemon, "/api/v1/queue?limit=x", control=True), 400)


def test_body_size_limit(daemon):
    """A declared body over the limit is refused before it is read."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10.0)
    s.connect(daemon.control_socket)
    try:
        s.sendall(b"POST /api/v1/messages HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 2097152\r\n\r\n{")
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 413 "), data


# ---------------------------------------------------------------------------------------------
# Log search and message detail

def test_search_after_smtp(daemon):
    a = submit(daemon, ["one@dest.example"], mail_from="alice@src.example")
    b = submit(daemon, ["two@dest.example", "three@dest.example"], mail_from="bob@src.example")
    got = wait_search(daemon, "", 2)
    assert [m["id"] for m in got[:2]] == [b, a], got  # newest first
    m = got[0]
    assert m["from"] == "bob@src.example"
    assert sorted(r["address"] for r in m["recipients"]) == ["three@dest.example",
                                                           "two@dest.example"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", m["received"]), m

    assert [m["id"] for m in ctl(daemon, "/api/v1/messages?to=ONE%40dest.example")["messages"]] \
        == [a]
    assert [m["id"] for m in ctl(daemon, "/api/v1/messages?from=bob%40src.example")["messages"]] \
        == [b]
    assert [m["id"] for m in ctl(daemon, "/api/v1/messages?q=alice")["messages"]] == [a]
    assert ctl(daemon, "/api/v1/messages?q=nobody+alice")["messages"] == []
    assert ctl(daemon, "/api/v1/messages?status=sent")["messages"] == []
    assert ctl(daemon, "/api/v1/messages?since=1h")["messages"] != []
    assert ctl(daemon, "/api/v1/messages?until=2020-01-01")["messages"] == []

    page1 = ctl(daemon, "/api/v1/messages?limit=1")
    assert [m["id"] for m in page1["messages"]] == [b]
    assert page1["next_cursor"], page1
    page2 = ctl(daemon, "/api/v1/messages?limit=1&cursor=" + page1["next_cursor"])
    assert [m["id"] for m in page2["messages"]] == [a]
    assert page2["next_cursor"] is None, page2  # the last page


def test_message_detail_with_attempts(daemon_factory, fake_smtp):
    p, b = fake_smtp("primary"), fake_smtp("backup")
    p.greeting = (421, "4.3.2 Service not available, closing channel")
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", p), upstream_conf("backup", b)])
    qid = submit(d, [GOOD])
    b.wait_messages(1)

    def sent():
        r = request(d, "/api/v1/messages/" + qid.lower(), control=True)
        if r.status != 200:
            return None
        m = r.json
        return m if m["status"] == "sent" and len(m["attempts"]) >= 2 else None
    m = wait_until(sent, 10.0, "message %s sent with two attempts" % qid)
    assert m["id"] == qid
    assert m["from"] == "sender@example.com" and m["source"] == "smtp"
    assert [(r["address"], r["status"]) for r in m["recipients"]] == [(GOOD, "sent")]
    by_up = {a["upstream"]: a for a in m["attempts"]}
    assert set(by_up) == {"primary", "backup"}, m["attempts"]
    first, last = by_up["primary"], by_up["backup"]
    assert first["code"] == 421 and first["enhanced"] == "4.3.2", first
    assert "Service not available" in first["text"]
    assert last["code"] == 250 and last["enhanced"] == "2.0.0", last
    assert last["remote_host"] and last["result"] == "sent", last
    assert last["maybe_delivered"] is False
    assert "tls" in last and "time" in last and "duration_ms" in last, last
    assert [e["type"] for e in m["events"]][0] == "received", m["events"]
    assert "sent" in [e["type"] for e in m["events"]]


# ---------------------------------------------------------------------------------------------
# Queue, upstreams, metrics

def test_queue_lists_deferred_mail(daemon):
    qid = submit(daemon, ["later@dest.example"])

    # The spool records "deferred" a moment before the relay hands the message back to the
    # scheduler, so wait for both views to agree.
    def deferred():
        q = ctl(daemon, "/api/v1/queue")
        ok = q["counts"]["deferred"] >= 1 and q["scheduler"]["waiting"] >= 1
        return q if ok else None
    q = wait_until(deferred, 10.0, "a deferred message waiting in the scheduler")
    assert q["total"] == sum(q["counts"].values())
    assert [m["id"] for m in q["messages"]] == [qid], q
    assert q["messages"][0]["recipients"][0]["status"] == "deferred"
    assert q["scheduler"]["waiting"] >= 1, q
    assert "next_attempt" in q["scheduler"], q
    q0 = ctl(daemon, "/api/v1/queue?limit=0")
    assert q0["messages"] == [] and q0["counts"]["deferred"] >= 1, q0


def test_upstreams_show_health_and_counts(daemon_factory, fake_smtp):
    f = fake_smtp("good")
    d = delivery_daemon(daemon_factory, [
        upstream_conf("good", f, limits={"per_day": 500, "per_hour": 100}),
        upstream_conf("dead", port=1)])
    ups = ctl(d, "/api/v1/upstreams")["upstreams"]
    assert [u["name"] for u in ups] == ["good", "dead"]
    assert ups[0]["health"] == "up" and ups[0]["breaker"] == "closed", ups[0]
    assert ups[0]["per_day"] == 500 and ups[0]["per_hour"] == 100
    assert ups[1]["per_day"] is None  # unlimited
    submit(d, [GOOD])
    f.wait_messages(1)

    def counted():
        u = ctl(d, "/api/v1/upstreams")["upstreams"][0]
        return u if u["sent_day"] >= 1 else None
    u = wait_until(counted, 10.0, "one recipient counted for good")
    assert u["sent_hour"] >= 1 and u["last_ok"] is not None, u
    assert u["connections"] == 4 and u["connections_in_use"] >= 0, u
    assert u["last_error"] is None


def test_upstream_last_error_after_failure(daemon_factory):
    d = delivery_daemon(daemon_factory, [upstream_conf("dead", port=1)])
    submit(d, [GOOD])

    def failed():
        u = ctl(d, "/api/v1/upstreams")["upstreams"][0]
        return u if u["last_error"] else None
    u = wait_until(failed, 10.0, "a last error for dead")
    assert u["health"] in ("degraded", "down"), u
    assert u["last_error"]["text"] and u["last_error"]["time"], u


METRIC_LINE = re.compile(r'^(hikyaku_[a-z_]+)(\{[a-z_]+="(?:[^"\\]|\\.)*"'
                         r'(?:,[a-z_]+="(?:[^"\\]|\\.)*")*\})? (\d+)$')


def test_metrics_format(daemon):
    submit(daemon, ["m@dest.example"])

    def parsed():
        r = request(daemon, "/metrics")
        assert r.status == 200, r
        typed, samples = {}, {}
        for line in r.body.decode().splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                typed[name] = kind
                continue
            if line.startswith("# HELP ") or not line:
                continue
            m = METRIC_LINE.match(line)
            assert m, "bad metrics line %r" % line
            assert m.group(1) in typed, "no TYPE before %r" % line
            samples[m.group(1) + (m.group(2) or "")] = int(m.group(3))
        return (typed, samples) if samples.get(
            'hikyaku_queue_messages{state="deferred"}', 0) >= 1 else None
    typed, samples = wait_until(parsed, 10.0, "a deferred message in the metrics")
    assert samples['hikyaku_messages_received_total{source="smtp"}'] == 1
    assert typed["hikyaku_messages_received_total"] == "counter"
    assert samples['hikyaku_upstream_up{upstream="sink"}'] in (0, 1)
    assert all(n.endswith("_total") for n, k in typed.items() if k == "counter"), typed


def metric_samples(d):
    r = request(d, "/metrics")
    assert r.status == 200, r
    out = {}
    for line in r.body.decode().splitlines():
        m = METRIC_LINE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = int(m.group(3))
    return out


def test_metrics_count_deliveries(daemon_factory, fake_smtp):
    """One message through a dead primary and a good backup: a 'next' attempt, a 'sent' attempt,
    one recipient sent, one message finished."""
    f = fake_smtp("good")
    d = delivery_daemon(daemon_factory, [upstream_conf("dead", port=1),
                                         upstream_conf("good", f)])
    submit(d, [GOOD])
    f.wait_messages(1)
    s = wait_until(lambda: (lambda x: x if x.get("hikyaku_messages_finished_total") else None)(
        metric_samples(d)), 10.0, "the message counted as finished")
    assert s['hikyaku_delivery_attempts_total{result="sent"}'] == 1, s
    assert s['hikyaku_delivery_attempts_total{result="next"}'] == 1, s
    assert s['hikyaku_delivery_attempts_total{result="bounced"}'] == 0, s
    assert s['hikyaku_recipients_total{status="sent"}'] == 1, s
    assert s["hikyaku_messages_finished_total"] == 1, s


def test_search_finds_decoded_subjects(daemon):
    """Subjects are logged decoded (RFC 2047), so full-text search finds their words."""
    from conftest import message
    a = submit(daemon, ["one@dest.example"],
               data=message(subject="=?utf-8?q?Invoice_caf=C3=A9_November?="))
    b = submit(daemon, ["two@dest.example"], data=message(subject="plain weekly report"))
    wait_search(daemon, "", 2)
    assert [m["id"] for m in ctl(daemon, "/api/v1/messages?q=invoice")["messages"]] == [a]
    assert [m["id"] for m in ctl(daemon, "/api/v1/messages?q=caf%C3%A9")["messages"]] == [a]
    assert [m["id"] for m in ctl(daemon, "/api/v1/messages?q=weekly")["messages"]] == [b]
    detail = ctl(daemon, "/api/v1/messages/" + a)
    assert "Invoice caf\u00e9 November" in json.dumps(detail, ensure_ascii=False), detail


def test_log_rebuilt_from_the_spool_at_start(daemon):
    """The spool is the truth: with the email log deleted, queued mail is back in it after a
    restart (DESIGN.md 8)."""
    qid = submit(daemon, ["later@dest.example"])
    wait_search(daemon, "", 1)
    daemon.stop()
    for suffix in ("", "-wal", "-shm"):
        p = os.path.join(daemon.state, "hikyaku.db" + suffix)
        if os.path.exists(p):
            os.unlink(p)
    daemon.start()
    got = wait_search(daemon, "", 1)
    assert [m["id"] for m in got] == [qid], got
    assert got[0]["recipients"][0]["address"] == "later@dest.example", got
