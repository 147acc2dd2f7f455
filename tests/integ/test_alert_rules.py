"""Alert rules (docs/alerts.md "Rules") on the real daemon: an upstream going down with failover
and recovery, a storm of bounces giving one alert and one digest, and escalation, all with
alerts.time_scale so rule durations pass in seconds.

What the engine decided is observed through GET /api/v1/alerts (over the control socket) and
its log lines (mod=alert event=alert_open|alert_digest|alert_escalation|alert_recovery).
"""

import base64
import http.client
import json
import re
import socket
import time

import pytest

from conftest import delivery_daemon, submit, upstream_conf, wait_until
from fakehttp import FakeHTTP

SENDER = "sender@example.com"
SCALE = 60  # 1m in a rule lasts 1s


class _Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10.0)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def alerts(d):
    c = _Unix(d.control_socket)
    try:
        c.request("GET", "/api/v1/alerts")
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body)
        return json.loads(body)
    finally:
        c.close()


def alert_lines(d, event, rule=None):
    out = []
    for line in d.log().splitlines():
        if "mod=alert" not in line or ("event=%s " % event) not in line + " ":
            continue
        if rule is not None and ("rule=%s " % rule) not in line + " ":
            continue
        out.append(line)
    return out


def alerts_conf(rules, channels=None):
    a = {"time_scale": SCALE, "rules": rules}
    if channels:
        a["channels"] = channels
    return {"alerts": a}


@pytest.fixture
def hook(tmp_path):
    """make(name) -> (FakeHTTP, webhook channel entry named name); all stopped at teardown."""
    made = []

    def make(name):
        f = FakeHTTP().start()
        made.append(f)
        sec = tmp_path / ("%s.whsec" % name)
        sec.write_text("whsec_" + base64.b64encode(b"k" * 32).decode() + "\n")
        return f, {"name": name, "type": "webhook", "url": f.url + "/hook/" + name,
                   "secret_file": str(sec), "retries": 0}
    yield make
    for f in made:
        f.stop()


def kinds(fake):
    """The notice types (alert.open ...) the fake webhook received, in order."""
    return [json.loads(r.body)["type"] for r in fake.requests]


def test_upstream_down_failover_and_recovery(daemon_factory, fake_smtp):
    p, b = fake_smtp("primary"), fake_smtp("backup")
    p.down()
    rules = [
        {"name": "down", "when": "upstream_down", "cooldown": "1m"},
        {"name": "failover", "when": "failover", "cooldown": "1m", "window": "1m"},
    ]
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", p), upstream_conf("backup", b)],
                        extra=alerts_conf(rules))
    # Three session failures in a row open the primary's breaker; each message fails over.
    for i in range(3):
        submit(d, ["r%d@dest.example" % i], mail_from=SENDER)
        b.wait_messages(i + 1)
    d.wait_for_log(r"mod=alert event=alert_open .*rule=down .*group=\"primary\"", deadline=10)
    d.wait_for_log(r"mod=alert event=alert_open .*rule=failover .*group=\"primary\"", deadline=10)
    doc = alerts(d)
    opened = {a["id"]: a for a in doc["alerts"] if a["status"] == "open"}
    assert "down:primary" in opened, doc
    assert "Upstream primary is down" in opened["down:primary"]["title"]
    assert opened["down:primary"]["fix"], opened["down:primary"]
    assert len(alert_lines(d, "alert_open", "down")) == 1

    # The primary comes back: after the breaker's wait a message probes it and closes it.
    p.up()

    def probe_reached_primary():
        # Until the breaker's wait (1s) passes, mail still goes to the backup.
        before = len(b.messages)
        submit(d, ["back@dest.example"], mail_from=SENDER)
        wait_until(lambda: len(p.messages) > 0 or len(b.messages) > before, 10, "a delivery")
        return len(p.messages) > 0
    wait_until(probe_reached_primary, 15, "a message through the primary again", interval=0.2)
    d.wait_for_log(r"mod=alert event=alert_recovery .*rule=down .*group=\"primary\"", deadline=10)
    assert len(alert_lines(d, "alert_open", "down")) == 1
    assert len(alert_lines(d, "alert_recovery", "down")) == 1
    doc = alerts(d)
    rec = [a for a in doc["alerts"] if a["id"] == "down:primary"]
    assert rec and rec[0]["status"] == "resolved" and rec[0]["resolved"], doc


def test_bounce_storm_one_alert_one_digest(daemon_factory, fake_smtp, hook):
    ops, ops_ch = hook("ops")
    p = fake_smtp("primary")
    n = 40
    storm = [["u%d-%d@gmail.example" % (k, i) for i in range(n // 2)] for k in range(2)]
    # Only the storm's addresses are refused: the DSNs to the sender go through.
    p.rcpt_replies = {a: (550, "5.1.1 The email account that you tried to reach does not exist")
                      for batch in storm for a in batch}
    rules = [{"name": "perm", "when": "permanent_failure", "window": "1m", "cooldown": "3m",
              "channels": ["ops"]}]
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", p)],
                        extra=alerts_conf(rules, [ops_ch]))
    for batch in storm:
        submit(d, batch, mail_from=SENDER)
    d.wait_for_log(r"mod=alert event=alert_open .*rule=perm", deadline=10)
    digest = d.wait_for_log(r"mod=alert event=alert_digest .*rule=perm .*count=(\d+)",
                            deadline=15)
    assert int(digest.group(1)) == n - 1, d.log_tail()
    d.wait_for_log(r"mod=alert event=alert_recovery .*rule=perm", deadline=15)
    assert len(alert_lines(d, "alert_open", "perm")) == 1
    assert len(alert_lines(d, "alert_digest", "perm")) == 1
    assert len(alert_lines(d, "alert_recovery", "perm")) == 1
    rec = [a for a in alerts(d)["alerts"] if a["rule"] == "perm"]
    assert len(rec) == 1 and rec[0]["affected"] == n, rec
    assert rec[0]["reply"].startswith("550 5.1.1"), rec
    assert rec[0]["cause"], rec  # the explainer knows "does not exist"
    assert "%d more" % (n - 1) in rec[0]["title"], rec
    # The channel got exactly the three notices. Sends run concurrently, so the digest and the
    # recovery, made moments apart, may arrive in either order: their timestamps say which came
    # first.
    ops.wait_requests(3)
    time.sleep(0.5)
    assert sorted(kinds(ops)) == ["alert.digest", "alert.open", "alert.recovery"], kinds(ops)
    got = {k: json.loads(r.body) for k, r in zip(kinds(ops), ops.requests)}
    assert kinds(ops)[0] == "alert.open", kinds(ops)
    assert (got["alert.open"]["timestamp"] <= got["alert.digest"]["timestamp"]
            <= got["alert.recovery"]["timestamp"]), got
    opened = got["alert.open"]["data"]
    assert opened["reply"].startswith("550 5.1.1") and opened["cause"], opened
    digest = got["alert.digest"]["data"]
    assert "%d more" % (n - 1) in digest["title"] and "Examples:" in digest["text"], digest


def test_escalation_sent_once_not_before(daemon_factory, fake_smtp, hook):
    ops, ops_ch = hook("ops")
    pager, pager_ch = hook("pager")
    p, b = fake_smtp("primary"), fake_smtp("backup")
    p.down()
    rules = [{"name": "down", "when": "upstream_down", "cooldown": "10m", "channels": ["ops"],
              "escalate": {"after": "3m", "channels": ["pager"]}}]
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", p), upstream_conf("backup", b)],
                        extra=alerts_conf(rules, [ops_ch, pager_ch]))
    for i in range(3):
        submit(d, ["r%d@dest.example" % i], mail_from=SENDER)
        b.wait_messages(i + 1)
    d.wait_for_log(r"mod=alert event=alert_open .*rule=down", deadline=10)
    opened = time.monotonic()
    ops.wait_requests(1)
    assert pager.requests == [], "the escalation channel heard of it before the delay"
    pager.wait_requests(1, deadline=10)
    took = time.monotonic() - opened
    assert took >= 2.5, "escalated after %.1fs, before its 3s delay" % took
    assert kinds(pager) == ["alert.escalation"], kinds(pager)
    assert "Upstream primary is down" in json.loads(pager.requests[0].body)["data"]["title"]
    d.wait_for_log(r"mod=alert event=alert_escalation .*rule=down .*channels=1", deadline=5)
    time.sleep(1.0)
    assert len(alert_lines(d, "alert_escalation")) == 1
    assert kinds(ops) == ["alert.open"], kinds(ops)
    esc = [a for a in alerts(d)["alerts"] if a["id"] == "down:primary"]
    assert esc and esc[0]["escalated"] is True, esc


def test_config_errors_name_the_rule(daemon_factory):
    rules = [{"name": "x", "when": "bounce_rate", "threshold": "120%", "channels": ["nope"]}]
    d = daemon_factory(extra=alerts_conf(rules), start=False)
    import subprocess
    from conftest import hikyaku_bin
    r = subprocess.run([hikyaku_bin(), "serve", "--check", "-c", d.config_path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 78, r
    assert re.search(r"hikyaku\.yaml:\d+:\d+: alerts\.rules\[0\]\.threshold: 120 is out of range",
                     r.stderr + r.stdout), r
    assert re.search(r"alerts\.rules\[0\]\.channels\[0\]: \"nope\" is not a channel name",
                     r.stderr + r.stdout), r


def test_queue_age_and_size_gauges(daemon_factory):
    """queue_age and queue_size see mail the relay keeps for a dead upstream."""
    rules = [{"name": "age", "when": "queue_age", "threshold": "2s", "cooldown": "10m"},
             {"name": "size", "when": "queue_size", "threshold": 2, "cooldown": "10m"}]
    d = delivery_daemon(daemon_factory, [upstream_conf("dead", None)],
                        retry={"schedule": ["1h"], "max_age": "5d"},
                        extra=alerts_conf(rules))
    for i in range(3):
        submit(d, ["r%d@dest.example" % i], mail_from=SENDER)
    d.wait_for_log(r"mod=alert event=alert_open .*rule=size", deadline=10)
    assert not alert_lines(d, "alert_open", "age"), "queue_age opened before its threshold"
    d.wait_for_log(r"mod=alert event=alert_open .*rule=age", deadline=10)
    rec = [a for a in alerts(d)["alerts"] if a["rule"] == "age"]
    assert rec and rec[0]["status"] == "open", rec
    assert "oldest queued message" in rec[0]["title"], rec


def test_email_alert_arrives_when_the_primary_is_down(daemon_factory, fake_smtp):
    """The upstream that is down is the alert's subject: the alert email still arrives, through
    the backup (the primary's open breaker sends it down the route at once)."""
    p, b = fake_smtp("primary"), fake_smtp("backup")
    p.down()
    ops = {"name": "ops", "type": "email", "from": "alerts@relay.example",
           "to": ["ops@dest.example"]}
    rules = [{"name": "down", "when": "upstream_down", "cooldown": "10m", "channels": ["ops"]}]
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", p), upstream_conf("backup", b)],
                        extra=alerts_conf(rules, [ops]))
    for i in range(3):
        submit(d, ["r%d@dest.example" % i], mail_from=SENDER)
        b.wait_messages(i + 1)
    d.wait_for_log(r"mod=alert event=alert_open .*rule=down", deadline=10)

    def alert_mail():
        return [m for m in b.messages if m.mail_from == "alerts@relay.example"]
    wait_until(lambda: alert_mail(), 15, "the alert email at the backup")
    m = alert_mail()[0]
    assert [r.lower() for r in m.rcpts] == ["ops@dest.example"]
    assert "Upstream primary is down" in (m.header("Subject") or ""), m.header("Subject")
    assert not [x for x in p.messages if x.mail_from == "alerts@relay.example"]
