"""Alert channels (docs/alerts.md "Channels"), each exercised with `hikyaku alert test CHANNEL`
against loopback fakes: the Slack Block Kit payload, the Teams Adaptive Card, Twilio's form
fields and basic auth (one request per number), the Standard Webhooks signature checked here
with hmac, a 429 with Retry-After retried once, a lasting failure counted in
hikyaku_alerts_failed_total, and the email channel delivering through a fake upstream.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import subprocess
import time
import urllib.parse

import pytest

from conftest import delivery_daemon, hikyaku_bin, upstream_conf, wait_until
from fakehttp import FakeHTTP

WEBHOOK_KEY = b"0123456789abcdef0123456789abcdef"


@pytest.fixture
def fake_http():
    made = []

    def make():
        f = FakeHTTP().start()
        made.append(f)
        return f

    yield make
    for f in made:
        f.stop()


def secret(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text + "\n")
    return str(p)


def alert_daemon(daemon_factory, channels, upstreams=None):
    """A running daemon with these alerts.channels (and a fake upstream for email)."""
    extra = {"alerts": {"channels": channels}}
    if upstreams:
        return delivery_daemon(daemon_factory, upstreams, extra=extra)
    return daemon_factory(extra=extra)


def alert_test(d, channel, *more):
    r = subprocess.run([hikyaku_bin(), "-c", d.config_path, "alert", "test", channel] +
                       list(more), capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def metrics(d):
    c = http.client.HTTPConnection("127.0.0.1", d.ports["api"], timeout=10.0)
    try:
        c.request("GET", "/metrics")
        return c.getresponse().read().decode()
    finally:
        c.close()


def metric(text, line_prefix):
    for line in text.splitlines():
        if line.startswith(line_prefix + " "):
            return int(line.split()[-1])
    return None


def http_channel(name, type_, url, **kw):
    ch = {"name": name, "type": type_, "url": url, "timeout": "2s", "retries": 2,
          "backoff": "100ms"}
    ch.update(kw)
    return ch


def test_slack_block_kit(daemon_factory, fake_http, tmp_path):
    f = fake_http()
    url_file = secret(tmp_path, "slack.url", f.url + "/services/T0/B0/XYZ")
    d = alert_daemon(daemon_factory, [{"name": "chat", "type": "slack", "url_file": url_file}])
    rc, out, err = alert_test(d, "chat")
    assert rc == 0, (out, err)
    assert "accepted" in out
    req = f.wait_requests(1)[0]
    assert req.path == "/services/T0/B0/XYZ"
    assert req.headers["content-type"] == "application/json"
    body = json.loads(req.body)
    blocks = body["blocks"]
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["type"] == "plain_text"
    assert blocks[0]["text"]["text"].startswith("Test: Test notice from hikyaku")
    fields = [b for b in blocks if b["type"] == "section" and "fields" in b][0]["fields"]
    labels = [x["text"].split("\n")[0] for x in fields]
    assert "*Since*" in labels and "*Affected messages*" in labels
    assert "Test notice" in body["text"]


def test_teams_adaptive_card(daemon_factory, fake_http):
    f = fake_http()
    d = alert_daemon(daemon_factory, [http_channel("team", "teams", f.url + "/workflows/x")])
    rc, out, err = alert_test(d, "team")
    assert rc == 0, (out, err)
    body = json.loads(f.wait_requests(1)[0].body)
    assert body["type"] == "message"
    att = body["attachments"][0]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["type"] == "TextBlock"
    assert "Test notice" in card["body"][0]["text"]
    facts = [b for b in card["body"] if b["type"] == "FactSet"][0]["facts"]
    assert "Affected messages" in [x["title"] for x in facts]


def test_twilio_form_and_basic_auth(daemon_factory, fake_http, tmp_path):
    f = fake_http()
    f.default = (201, {"Content-Type": "application/json"}, b'{"sid":"SM1"}')
    d = alert_daemon(daemon_factory, [{
        "name": "sms", "type": "twilio", "base_url": f.url,
        "account_sid_file": secret(tmp_path, "sid", "AC0123"),
        "auth_token_file": secret(tmp_path, "token", "s3cret"),
        "from": "+15550001111", "to": ["+15550002222", "+15550003333"]}])
    rc, out, err = alert_test(d, "sms")
    assert rc == 0, (out, err)
    reqs = f.wait_requests(2)
    assert len(reqs) == 2
    want_auth = "Basic " + base64.b64encode(b"AC0123:s3cret").decode()
    tos = set()
    for r in reqs:
        assert r.path == "/2010-04-01/Accounts/AC0123/Messages.json"
        assert r.headers["authorization"] == want_auth
        assert r.headers["content-type"] == "application/x-www-form-urlencoded"
        form = urllib.parse.parse_qs(r.body.decode(), strict_parsing=True)
        assert form["From"] == ["+15550001111"]
        assert "Test notice" in form["Body"][0]
        assert len(form["Body"][0]) <= 1600
        tos.add(form["To"][0])
    assert tos == {"+15550002222", "+15550003333"}
    # The token never reaches the log.
    assert "s3cret" not in d.log()


def test_webhook_standard_signature(daemon_factory, fake_http, tmp_path):
    f = fake_http()
    sec = secret(tmp_path, "whsec", "whsec_" + base64.b64encode(WEBHOOK_KEY).decode())
    d = alert_daemon(daemon_factory, [http_channel("hook", "webhook", f.url + "/hook",
                                                   secret_file=sec)])
    before = int(time.time())
    rc, out, err = alert_test(d, "hook")
    assert rc == 0, (out, err)
    r = f.wait_requests(1)[0]
    msg_id, ts, sig = (r.headers["webhook-id"], r.headers["webhook-timestamp"],
                       r.headers["webhook-signature"])
    assert msg_id.startswith("msg_")
    assert abs(int(ts) - before) < 30
    expect = base64.b64encode(hmac.new(WEBHOOK_KEY, msg_id.encode() + b"." + ts.encode() +
                                       b"." + r.body, hashlib.sha256).digest()).decode()
    assert sig == "v1," + expect
    body = json.loads(r.body)
    assert body["type"] == "alert.test"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", body["timestamp"])
    assert body["data"]["kind"] == "test"
    assert "Test notice" in body["data"]["title"]


def test_429_retry_after_is_honoured(daemon_factory, fake_http):
    f = fake_http()
    f.script = [(429, {"Retry-After": "1"}, b"rate limited")]
    d = alert_daemon(daemon_factory, [http_channel("chat", "slack", f.url + "/s")])
    rc, out, err = alert_test(d, "chat")
    assert rc == 0, (out, err)
    reqs = f.wait_requests(2)
    assert len(reqs) == 2
    # Retry-After: 1 wins over the 100 ms backoff.
    assert reqs[1].time - reqs[0].time >= 0.9
    d.wait_for_log(r"event=channel_failed .*channel=chat .*status=429 attempt=1 ")
    m = metrics(d)
    assert metric(m, 'hikyaku_alerts_sent_total{channel="chat",result="ok"}') == 1
    assert metric(m, 'hikyaku_alerts_failed_total{channel="chat"}') == 0
    assert metric(m, 'hikyaku_alert_retries_total{channel="chat"}') == 1


def test_lasting_failure_is_counted_and_logged(daemon_factory, fake_http):
    f = fake_http()
    f.default = (500, {}, b"internal error")
    d = alert_daemon(daemon_factory, [http_channel("chat", "slack", f.url + "/s", retries=2)])
    rc, out, err = alert_test(d, "chat")
    assert rc == 69, (out, err)
    assert "HTTP 500" in err
    assert len(f.wait_requests(3)) == 3
    d.wait_for_log(r"level=error .*event=alert_not_delivered .*channel=chat .*title=")
    m = metrics(d)
    assert metric(m, 'hikyaku_alerts_failed_total{channel="chat"}') == 1
    assert metric(m, 'hikyaku_alerts_sent_total{channel="chat",result="failed"}') == 1


def test_client_error_is_not_retried(daemon_factory, fake_http):
    f = fake_http()
    f.default = (404, {}, b"no_service")
    d = alert_daemon(daemon_factory, [http_channel("chat", "slack", f.url + "/s")])
    rc, out, err = alert_test(d, "chat")
    assert rc == 69, (out, err)
    assert "no_service" in err
    time.sleep(0.3)
    assert len(f.requests) == 1


def test_timeout_fails_the_channel(daemon_factory, fake_http):
    f = fake_http()
    f.default = (None, {}, b"")
    f.hang_seconds = 5
    d = alert_daemon(daemon_factory, [http_channel("chat", "slack", f.url + "/s",
                                                   timeout="300ms", retries=0)])
    rc, out, err = alert_test(d, "chat")
    assert rc == 69, (out, err)
    assert "timeout" in err.lower()


def test_unknown_channel_lists_the_known_ones(daemon_factory, fake_http):
    f = fake_http()
    d = alert_daemon(daemon_factory, [http_channel("chat", "slack", f.url + "/s"),
                                      http_channel("team", "teams", f.url + "/t")])
    rc, out, err = alert_test(d, "nope")
    assert rc == 64, (out, err)
    assert "chat" in err and "team" in err
    assert f.requests == []


def test_email_channel_delivers_through_the_spool(daemon_factory, fake_smtp):
    up = fake_smtp("up")
    d = alert_daemon(daemon_factory, [{"name": "ops", "type": "email",
                                       "from": "alerts@relay.example",
                                       "to": ["ops@dest.example", "oncall@dest.example"]}],
                     upstreams=[upstream_conf("up", up)])
    rc, out, err = alert_test(d, "ops")
    assert rc == 0, (out, err)
    wait_until(lambda: len(up.messages) >= 1, 10.0, "the alert email at the upstream")
    msg = up.messages[0]
    assert msg.mail_from == "alerts@relay.example"
    assert sorted(r.lower() for r in msg.rcpts) == ["oncall@dest.example", "ops@dest.example"]
    subject = msg.header("Subject")
    assert subject is not None and "Test notice" in subject
    assert b"if you can read this, the channel works" in msg.data


def test_unreadable_secret_is_a_config_error(daemon_factory, tmp_path):
    d = daemon_factory(start=False, extra={"alerts": {"channels": [
        {"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/x",
         "secret_file": str(tmp_path / "missing")}]}})
    r = subprocess.run([hikyaku_bin(), "-c", d.config_path, "serve", "--check"],
                       capture_output=True, timeout=30)
    assert r.returncode == 78
    assert re.search(r"hikyaku\.yaml:\d+:\d+: .*secret_file.*missing", r.stderr.decode())
