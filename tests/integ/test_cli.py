"""The admin commands (docs/cli.md): status, log, show, resend, queue, flush, hold, release and
delete, run as the real binary against a running daemon's control socket, with mail going
through a fake upstream so the email log has data. Exit codes follow sysexits.h.
"""

import json
import os
import re
import subprocess
import time

from conftest import (MailLog, delivery_daemon, env_states, hikyaku_bin, submit,
                      upstream_conf, wait_finished, wait_until)

GOOD = "good@dest.example"


def cli(d, *args, config=None):
    """Run `hikyaku -c CONFIG args...`; returns (exit code, stdout, stderr)."""
    r = subprocess.run([hikyaku_bin(), "-c", config or d.config_path] + list(args),
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def cli_ok(d, *args):
    rc, out, err = cli(d, *args)
    assert rc == 0, (args, rc, out, err)
    return out


def cli_json(d, *args):
    return json.loads(cli_ok(d, *(list(args) + ["--json"])))


def header_columns(out):
    """The words of the first table header line (upper-case words separated by 2+ spaces)."""
    for line in out.splitlines():
        if re.match(r"^[A-Z][A-Z/ ]+$", line.strip()) and "  " in line:
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError("no table header in:\n" + out)


def relay(daemon_factory, fake, schedule="1h", **kw):
    return delivery_daemon(daemon_factory, [upstream_conf("up", fake)],
                           retry={"schedule": [schedule], "max_age": "1d"}, **kw)


def wait_log_status(d, qid, status, deadline=10.0):
    def check():
        rc, out, _ = cli(d, "show", qid, "--json")
        return rc == 0 and json.loads(out)["status"] == status
    wait_until(check, deadline, "%s with status %s in `hikyaku show`" % (qid, status))


def wait_deferred(d, qid, rcpt=GOOD):
    wait_until(lambda: (env_states(d, qid) or {}).get(rcpt) == "deferred", 10.0,
               "%s deferred in the envelope" % qid)


# ---------------------------------------------------------------------------------------------

def test_daemon_not_running_is_69(daemon_factory):
    d = daemon_factory(start=False)
    for args in (["status"], ["log"], ["queue"], ["show", "0123456789ABCDEF"],
                 ["hold", "0123456789ABCDEF"], ["flush"]):
        rc, out, err = cli(d, *args)
        assert rc == 69, (args, rc, out, err)
        assert "hikyaku is not running (no control socket at %s)" % d.control_socket in err, err
        assert "systemctl start hikyaku" in err and "hikyaku serve" in err, err


def test_usage_and_config_errors(daemon, tmp_path):
    assert cli(daemon, "log", "--bogus")[0] == 64
    assert cli(daemon, "log", "--limit")[0] == 64
    assert cli(daemon, "log", "--since", "yesterday")[0] == 64
    assert cli(daemon, "log", "--status", "lost")[0] == 64
    assert cli(daemon, "show")[0] == 64
    assert cli(daemon, "hold")[0] == 64
    assert cli(daemon, "resend")[0] == 64  # neither IDs nor a filter
    rc, _, err = cli(daemon, "show", "xyz")
    assert rc == 65 and "16 hex digits" in err, err
    # A well-formed ID that is not queued: the server's 404, as bad data.
    rc, _, err = cli(daemon, "hold", "0123456789ABCDEF")
    assert rc == 65 and "HTTP 404" in err, err
    rc, _, err = cli(daemon, "show", "0123456789ABCDEF")
    assert rc == 65 and "HTTP 404" in err, err
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: [\n")
    rc, _, err = cli(daemon, "status", config=str(bad))
    assert rc == 78, err
    rc, _, err = cli(daemon, "status", config=str(tmp_path / "absent.yaml"))
    assert rc == 78, err


def test_status_log_show_queue(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    d = relay(daemon_factory, fake)
    a = submit(d, [GOOD], mail_from="alice@src.example", subject="first one")
    b = submit(d, [GOOD, "other@dest.example"], mail_from="bob@src.example",
               subject="second one")
    wait_log_status(d, a, "sent")
    wait_log_status(d, b, "sent")

    st = cli_json(d, "status")
    assert st["daemon"] == "running"
    assert st["queue"]["counts"] == {"queued": 0, "deferred": 0, "held": 0}, st
    assert [u["name"] for u in st["upstreams"]] == ["up"], st
    out = cli_ok(d, "status")
    assert "hikyaku is running" in out and "0 queued, 0 deferred, 0 held" in out, out
    assert header_columns(out) == ["UPSTREAM", "HEALTH", "BREAKER", "SENT/HOUR", "SENT/DAY",
                                   "CONNECTIONS", "LAST ERROR"], out
    assert re.search(r"(?m)^up\s+up\s+closed\s+3/-", out), out

    got = cli_json(d, "log")["messages"]
    assert [m["id"] for m in got] == [b, a], got  # newest first
    assert [m["id"] for m in cli_json(d, "log", "--from", "alice@src.example")["messages"]] \
        == [a]
    assert [m["id"] for m in cli_json(d, "log", "--to", "other@dest.example")["messages"]] \
        == [b]
    assert [m["id"] for m in cli_json(d, "log", "--search", "bob")["messages"]] == [b]
    assert [m["id"] for m in cli_json(d, "log", "--limit", "1")["messages"]] == [b]
    assert len(cli_json(d, "log", "--since", "1h", "--status", "sent")["messages"]) == 2
    assert cli_json(d, "log", "--until", "2000-01-01")["messages"] == []
    assert cli_json(d, "log", "--since", "2000-01-01T00:00:00Z",
                    "--upstream", "up")["messages"][0]["id"] == b

    out = cli_ok(d, "log")
    assert header_columns(out) == ["ID", "RECEIVED", "STATUS", "FROM", "TO", "SUBJECT"], out
    line = next(ln for ln in out.splitlines() if ln.startswith(b))
    assert re.match(r"^%s  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  sent\s+bob@src\.example\s+"
                    r"\S+@dest\.example \(\+1\)" % b, line), line

    m = cli_json(d, "show", a)
    assert m["id"] == a and m["status"] == "sent" and m["attempts"], m
    out = cli_ok(d, "show", a)
    assert "status:    sent" in out and "from:      alice@src.example" in out, out
    assert "RECIPIENT" in out and "LAST REPLY" in out and "250" in out, out
    assert re.search(r"(?m)^\S.*\s+%s\s+up\s+.*\s+sent\s+250 " % re.escape(GOOD), out), out

    q = cli_json(d, "queue")
    assert q["total"] == 0 and q["messages"] == [], q
    assert cli_ok(d, "queue").startswith("0 queued, 0 deferred, 0 held")


def test_hold_keeps_message_until_release(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    fake.dot_reply = [(451, "4.3.0 try later")]
    d = relay(daemon_factory, fake, schedule="2s")
    qid = submit(d, [GOOD])
    wait_deferred(d, qid)
    assert cli_ok(d, "hold", qid).strip() == "%s held" % qid
    assert env_states(d, qid) == {GOOD: "held"}
    wait_log_status(d, qid, "held")
    q = cli_json(d, "queue")
    assert q["counts"]["held"] == 1 and q["messages"][0]["id"] == qid, q
    assert re.search(r"(?m)^%s\s.*\sheld\s" % qid, cli_ok(d, "queue")), cli_ok(d, "queue")
    # Hold again: nothing to change, still fine; flush of a held message: refused.
    assert cli(d, "hold", qid)[0] == 0
    rc, _, err = cli(d, "flush", qid)
    assert rc == 65 and "release" in err, err
    # Past the 2 s retry time and after a flush of everything: still not delivered.
    cli_ok(d, "flush")
    time.sleep(3.0)
    assert fake.messages == [], "a held message was delivered"
    assert env_states(d, qid) == {GOOD: "held"}
    # A restart keeps it held.
    d.stop()
    d.start()
    time.sleep(1.0)
    assert fake.messages == [] and env_states(d, qid) == {GOOD: "held"}

    assert cli_ok(d, "release", qid).strip() == "%s released" % qid
    fake.wait_messages(1)
    wait_finished(d, qid)
    wait_log_status(d, qid, "sent")
    kinds = [MailLog.kind(e) for e in MailLog(d).events(qid)]
    assert "held" in kinds and "released" in kinds, kinds
    rc, _, err = cli(d, "release", qid)
    assert rc == 65 and "HTTP 404" in err, err


def test_delete_removes_with_deleted_event(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    fake.dot_reply = (451, "4.3.0 try later")
    d = relay(daemon_factory, fake)
    qid = submit(d, [GOOD, "second@dest.example"])
    wait_deferred(d, qid)
    assert cli_ok(d, "delete", qid).strip() == "%s deleted" % qid
    assert env_states(d, qid) is None
    assert not os.path.exists(os.path.join(d.qdir(), qid + ".msg"))
    wait_log_status(d, qid, "deleted")
    evs = MailLog(d).events(qid, "deleted")
    assert sorted(e["rcpt"] for e in evs) == [GOOD, "second@dest.example"], evs
    out = cli_ok(d, "show", qid)
    assert re.search(r"(?m)\sdeleted\s+%s\s" % re.escape(GOOD), out), out
    rc, _, err = cli(d, "delete", qid)
    assert rc == 65 and "HTTP 404" in err, err
    assert cli_json(d, "queue")["total"] == 0


def test_flush_retries_a_deferred_message_now(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    fake.dot_reply = [(451, "4.3.0 try later")]
    d = relay(daemon_factory, fake, schedule="1h")
    qid = submit(d, [GOOD])
    wait_deferred(d, qid)
    out = cli_ok(d, "queue")
    assert header_columns(out) == ["ID", "RECEIVED", "STATUS", "FROM", "TO", "ATTEMPTS",
                                   "LAST REPLY"], out
    assert re.search(r"(?m)^%s\s.*\sdeferred\s.*\s1\s+451 4\.3\.0 try later$" % qid, out), out
    assert cli_ok(d, "flush", qid).strip() == "%s due now" % qid
    fake.wait_messages(1)
    wait_finished(d, qid)

    # flush without an ID: every waiting message.
    fake.dot_reply = [(451, "4.3.0 try later")]
    q2 = submit(d, [GOOD])
    wait_deferred(d, q2)
    r = cli_json(d, "flush")
    assert r["flushed"] == 1, r
    fake.wait_messages(2)
    wait_finished(d, q2)


def test_queue_control_api_errors(daemon):
    """The endpoints behind the commands: methods, ids, statuses."""
    from test_api import assert_error, request
    assert_error(request(daemon, "/api/v1/queue/xyz/hold", method="POST", control=True), 400,
                 "bad_id")
    assert_error(request(daemon, "/api/v1/queue/0123456789ABCDEF/bogus", method="POST",
                         control=True), 404)
    assert_error(request(daemon, "/api/v1/queue/0123456789ABCDEF/hold", method="POST",
                         control=True), 404, "not_found")
    r = request(daemon, "/api/v1/queue/0123456789ABCDEF", method="POST", control=True)
    assert_error(r, 405)
    r = request(daemon, "/api/v1/queue/flush", method="GET", control=True)
    assert_error(r, 405)
    assert "POST" in r.headers.get("allow", ""), r.headers
    r = request(daemon, "/api/v1/queue/flush", method="POST", control=True)
    assert r.status == 200 and r.json["action"] == "flush", r
    # The TCP API needs the token for these too.
    assert_error(request(daemon, "/api/v1/queue/flush", method="POST"), 401)


def test_resend_one_and_by_filter(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    d = relay(daemon_factory, fake, extra={"log": {"keep_bodies": True}})
    a = submit(d, [GOOD], mail_from="alice@src.example")
    b = submit(d, ["bulk@dest.example"], mail_from="bob@src.example")
    wait_log_status(d, a, "sent")
    wait_log_status(d, b, "sent")
    out = cli_ok(d, "resend", a)
    m = re.match(r"^%s resent as ([0-9A-F]{16})$" % a, out.strip())
    assert m, out
    new = m.group(1)
    assert new != a
    wait_log_status(d, new, "sent")
    assert cli_json(d, "show", new)["resent_from"] == a
    # By filter: a background job, followed until done (no terminal: no bar, a summary line).
    out = cli_ok(d, "resend", "--from", "bob@src.example", "--since", "1h")
    assert re.search(r"^resent 1 of 1 messages$", out.strip()), out
    fake.wait_messages(4)
    rc, _, err = cli(d, "resend", a, "--to", GOOD)
    assert rc == 64, err
