"""Sending through the HTTP API (DESIGN.md 11 and 14, docs/api.md): POST /api/v1/messages builds
MIME from JSON fields, POST /api/v1/messages/raw takes a ready message; both answer 202 only after
the spool commit, and the message reaches the upstream. Error statuses and Idempotency-Key.
"""

import base64
import email
import email.policy
import json
import shutil
import subprocess

import pytest

from conftest import delivery_daemon, received_qid, upstream_conf, wait_until
from test_api import TOKEN, assert_error, request, token_daemon


def post(d, path, obj=None, body=None, token=TOKEN, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    if body is None:
        body = json.dumps(obj).encode()
    return request(d, path, method="POST", token=token, headers=h, body=body)


def api_daemon(daemon_factory, tmp_path, fake):
    path = tmp_path / "api.token"
    path.write_text(TOKEN + "\n")
    return delivery_daemon(daemon_factory, [upstream_conf("up", fake)],
                           extra={"api": {"token_file": str(path)}})


def by_qid(fake, qid, deadline=10.0):
    def find():
        for m in fake.messages:
            if received_qid(m) == qid:
                return m
        return None
    return fake.wait_for(find, deadline, "message %s" % qid)


def parse(m):
    return email.message_from_bytes(m.data, policy=email.policy.default)


def test_send_text_html_attachments_utf8(daemon_factory, fake_smtp, tmp_path):
    f = fake_smtp("up")
    d = api_daemon(daemon_factory, tmp_path, f)
    pdf = bytes(range(256)) * 10
    r = post(d, "/api/v1/messages", {
        "from": {"address": "app@example.com", "name": "Ünïcode Äpp"},
        "to": ["Zoë Example <zoe@dest.example>", "plain@dest.example"],
        "cc": [{"address": "cc@dest.example"}],
        "bcc": ["hidden@dest.example"],
        "reply_to": "\"Support, Team\" <help@example.com>",
        "subject": "Grüße – 日本語 subject",
        "text": "Hello Zoë\nline two\n",
        "html": "<p>Hello <b>Zoë</b></p>",
        "headers": {"X-Campaign": "spring", "List-Unsubscribe": "<mailto:u@example.com>"},
        "attachments": [{"filename": "rapport é.pdf", "content_type": "application/pdf",
                         "content_base64": base64.b64encode(pdf).decode()}],
    })
    assert r.status == 202, r
    qid = r.json["id"]
    assert len(qid) == 16
    assert r.json["recipients"] == [
        {"address": a, "status": "queued"} for a in
        ("zoe@dest.example", "plain@dest.example", "cc@dest.example", "hidden@dest.example")]
    m = by_qid(f, qid)
    assert m.mail_from == "app@example.com"
    assert sorted(x.lower() for x in m.rcpts) == sorted(
        ["zoe@dest.example", "plain@dest.example", "cc@dest.example", "hidden@dest.example"])
    head = m.data.split(b"\r\n\r\n", 1)[0]
    assert b"hidden@" not in head and b"Bcc" not in head
    assert head.startswith(b"Received: from api ([127.0.0.1])\r\n\tby ")
    assert b"with HTTP id " + qid.encode() in head
    assert all(b < 0x80 for b in m.data)
    msg = parse(m)
    assert msg["Message-ID"].startswith("<%s@" % qid)
    assert msg["Date"]
    assert str(msg["Subject"]) == "Grüße – 日本語 subject"
    assert msg["From"].addresses[0].display_name == "Ünïcode Äpp"
    assert msg["To"].addresses[0].display_name == "Zoë Example"
    assert msg["Reply-To"].addresses[0].display_name == "Support, Team"
    assert msg["X-Campaign"] == "spring"
    assert msg.get_content_type() == "multipart/mixed"
    parts = list(msg.iter_parts())
    assert parts[0].get_content_type() == "multipart/alternative"
    alt = list(parts[0].iter_parts())
    assert [p.get_content_type() for p in alt] == ["text/plain", "text/html"]
    # The CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1).
    assert alt[0].get_content().replace("\r\n", "\n") == "Hello Zoë\nline two\n"
    assert "<b>Zoë</b>" in alt[1].get_content()
    att = parts[1]
    # RFC 2231 name next to the ASCII fallback (Python's parser reads only the fallback).
    assert att.get_filename() == "rapport _.pdf"
    assert b"filename*=UTF-8''rapport%20%C3%A9.pdf" in m.data
    assert att.get_content_type() == "application/pdf"
    assert att.get_content() == pdf


def test_send_text_only_over_control_socket(daemon_factory, fake_smtp, tmp_path):
    f = fake_smtp("up")
    d = api_daemon(daemon_factory, tmp_path, f)
    r = request(d, "/api/v1/messages", method="POST", control=True,
                body=json.dumps({"from": "a@example.com", "to": "b@dest.example",
                                 "subject": "plain", "text": "just text"}).encode())
    assert r.status == 202, r
    m = by_qid(f, r.json["id"])
    assert m.data.startswith(b"Received: from control socket (local)\r\n")
    msg = parse(m)
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().rstrip("\r\n") == "just text"


def test_raw_send(daemon_factory, fake_smtp, tmp_path):
    f = fake_smtp("up")
    d = api_daemon(daemon_factory, tmp_path, f)
    data = b"From: a@example.com\nTo: x@dest.example\nSubject: raw\n\nbody line\n.\nend\n"
    r = post(d, "/api/v1/messages/raw", {"mail_from": "bounce@example.com",
                                         "rcpt_to": ["x@dest.example", "y@dest.example"],
                                         "data_base64": base64.b64encode(data).decode()})
    assert r.status == 202, r
    qid = r.json["id"]
    assert [x["address"] for x in r.json["recipients"]] == ["x@dest.example", "y@dest.example"]
    m = by_qid(f, qid)
    assert m.mail_from == "bounce@example.com"
    assert sorted(m.rcpts) == ["x@dest.example", "y@dest.example"]
    assert m.data.startswith(b"Received: from api ([127.0.0.1])")
    assert m.data.endswith(data.replace(b"\n", b"\r\n"))


def test_errors(daemon_factory, tmp_path):
    d = token_daemon(daemon_factory, tmp_path)
    ok = {"from": "a@example.com", "to": ["b@dest.example"], "text": "x"}
    assert_error(post(d, "/api/v1/messages", ok, token=None), 401, "unauthorized")
    assert_error(post(d, "/api/v1/messages/raw", ok, token=None), 401, "unauthorized")
    assert_error(post(d, "/api/v1/messages", body=b"{not json"), 400, "bad_json")
    assert_error(post(d, "/api/v1/messages", body=b"[1,2]"), 400, "bad_json")
    assert_error(post(d, "/api/v1/messages", dict(ok, tos=["x@y.example"])), 400, "bad_request")
    assert_error(post(d, "/api/v1/messages", dict(ok, to=["not an address"])), 422,
                 "bad_address")
    assert_error(post(d, "/api/v1/messages", dict(ok, to=["Name <b@dest.example"])), 422,
                 "bad_address")
    assert_error(post(d, "/api/v1/messages", {"to": ["b@dest.example"]}), 422, "missing_field")
    assert_error(post(d, "/api/v1/messages", dict(ok, subject="a\r\nBcc: x@y.example")), 400,
                 "control_character")
    assert_error(post(d, "/api/v1/messages", dict(ok, headers={"Bad Name": "x"})), 400)
    assert_error(post(d, "/api/v1/messages", dict(ok, to=["r%d@dest.example" % i
                                                           for i in range(51)])),
                 422, "too_many_recipients")
    big = base64.b64encode(b"x" * (1024 * 1024 + 10)).decode()
    assert_error(post(d, "/api/v1/messages", dict(ok, attachments=[
        {"filename": "big.bin", "content_base64": big}])), 413, "too_large")
    assert_error(post(d, "/api/v1/messages", dict(ok, attachments=[
        {"filename": "b.bin", "content_base64": "!!!"}])), 400, "bad_base64")
    raw = {"mail_from": "a@example.com", "rcpt_to": ["b@dest.example"]}
    msg = b"Subject: x\r\n\r\nbody\r\n"
    assert_error(post(d, "/api/v1/messages/raw",
                      dict(raw, data_base64=base64.b64encode(b"Subject: x\r\n\rbody\r\n")
                           .decode())), 400, "bad_message")
    assert_error(post(d, "/api/v1/messages/raw",
                      dict(raw, data_base64=base64.b64encode(b"no separator").decode())), 422,
                 "bad_message")
    assert_error(post(d, "/api/v1/messages/raw",
                      dict(raw, data_base64=base64.b64encode(msg + b"y" * (1024 * 1024))
                           .decode())), 413, "too_large")
    assert_error(post(d, "/api/v1/messages/raw",
                      dict(raw, rcpt_to=["bad@@x"], data_base64=base64.b64encode(msg).decode())),
                 422, "bad_address")
    assert_error(post(d, "/api/v1/messages/raw", dict(raw)), 422, "missing_field")
    # GET on the raw endpoint is not a route of its own; a bad Idempotency-Key is refused.
    assert_error(post(d, "/api/v1/messages", ok, headers={"Idempotency-Key": "has space"}), 400,
                 "bad_idempotency_key")
    assert d.count() == 0


def test_idempotency_key(daemon_factory, fake_smtp, tmp_path):
    f = fake_smtp("up")
    d = api_daemon(daemon_factory, tmp_path, f)
    body = {"from": "a@example.com", "to": ["b@dest.example"], "subject": "once", "text": "x"}
    h = {"Idempotency-Key": "order-42"}
    r1 = post(d, "/api/v1/messages", body, headers=h)
    assert r1.status == 202, r1
    r2 = post(d, "/api/v1/messages", body, headers=h)
    assert r2.status == 202, r2
    assert r2.json == r1.json
    assert r2.headers.get("idempotent-replayed") == "true"
    assert_error(post(d, "/api/v1/messages", dict(body, subject="twice"), headers=h), 409,
                 "idempotency_conflict")
    # The same key on the raw endpoint is a different request.
    raw = {"mail_from": "a@example.com", "rcpt_to": ["b@dest.example"],
           "data_base64": base64.b64encode(b"Subject: r\r\n\r\nx\r\n").decode()}
    assert_error(post(d, "/api/v1/messages/raw", raw, headers=h), 409, "idempotency_conflict")
    # Another key sends another message.
    r3 = post(d, "/api/v1/messages", body, headers={"Idempotency-Key": "order-43"})
    assert r3.status == 202 and r3.json["id"] != r1.json["id"], r3
    f.wait_messages(2)
    ids = sorted(received_qid(m) for m in f.messages)
    assert ids == sorted([r1.json["id"], r3.json["id"]])
    # The key survives a restart (it is in the email log database).
    d.stop()
    d.start()
    r4 = post(d, "/api/v1/messages", body, headers=h)
    assert r4.status == 202 and r4.json == r1.json, r4


def test_received_counted_and_logged(daemon_factory, fake_smtp, tmp_path):
    f = fake_smtp("up")
    d = api_daemon(daemon_factory, tmp_path, f)
    r = post(d, "/api/v1/messages", {"from": "a@example.com", "to": ["b@dest.example"],
                                     "subject": "counted"})
    assert r.status == 202, r
    qid = r.json["id"]
    by_qid(f, qid)

    def logged():
        g = request(d, "/api/v1/messages/" + qid, token=TOKEN)
        return g.json if g.status == 200 and g.json.get("source") == "api" else None
    wait_until(logged, 10.0, "email log row for %s" % qid)
    metrics = request(d, "/metrics").body.decode()
    assert 'source="api"} 1' in metrics, metrics


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_client(daemon_factory, fake_smtp, tmp_path):
    f = fake_smtp("up")
    d = api_daemon(daemon_factory, tmp_path, f)
    body = json.dumps({"from": "App <app@example.com>", "to": ["c@dest.example"],
                       "subject": "from curl", "text": "hi"})
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-H", "Authorization: Bearer " + TOKEN,
         "-H", "Content-Type: application/json", "-H", "Idempotency-Key: curl-1",
         "--data-binary", body, "-w", "\n%{http_code}",
         "http://127.0.0.1:%d/api/v1/messages" % d.ports["api"]],
        capture_output=True, check=True, timeout=20).stdout.decode()
    text, code = out.rsplit("\n", 1)
    assert code == "202", out
    qid = json.loads(text)["id"]
    m = by_qid(f, qid)
    assert parse(m)["Subject"] == "from curl"
