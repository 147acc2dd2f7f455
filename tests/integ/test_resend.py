"""Kept bodies, resend and retention (DESIGN.md 8; docs/log.md): POST /api/v1/messages/{id}/resend,
POST /api/v1/resend with GET /api/v1/resend/{job}, log.keep_bodies and log.retention.
"""

import json
import os
import re
import sqlite3
import time

from conftest import (Raw, delivery_daemon, message, queued_id, received_qid, submit,
                      upstream_conf, wait_finished, wait_until)
from test_api import assert_error, request

GOOD = "good@dest.example"
BAD = "bad@dest.example"
DAY_MS = 86400 * 1000


def post(d, path, body=None):
    data = None if body is None else json.dumps(body)
    h = {"Content-Type": "application/json"} if data is not None else {}
    return request(d, path, method="POST", control=True, headers=h, body=data)


def get(d, path):
    return request(d, path, control=True)


def db(d):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.state, "hikyaku.db"), uri=True,
                          timeout=5)
    return con


def q1(d, sql, *args):
    con = db(d)
    try:
        row = con.execute(sql, args).fetchone()
        return row[0] if row else None
    finally:
        con.close()


def status_of(d, qid):
    return q1(d, "SELECT status FROM messages WHERE id = ?", int(qid, 16) - (1 << 64)
              if int(qid, 16) >= 1 << 63 else int(qid, 16))


def iid(qid):
    v = int(qid, 16)
    return v - (1 << 64) if v >= 1 << 63 else v


def wait_status(d, qid, status, deadline=15.0):
    wait_until(lambda: status_of(d, qid) == status, deadline,
               "%s in status %s (now %s)" % (qid, status, status_of(d, qid)))


def body_path(d, qid):
    """<state>/bodies/YYYY-MM-DD/<ID>: the UTC day of the ID's time (44 bits of ms since 2020)."""
    ms = (int(qid, 16) >> 20) + 1577836800000
    day = time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))
    return os.path.join(d.state, "bodies", day, qid)


def with_msgid(subject, msgid):
    return message(subject=subject, headers=["Message-ID: <%s>" % msgid])


def msgid_of(m):
    v = m.header("Message-ID")
    return v.strip() if v else None


# ---------------------------------------------------------------------------------------------
# One message

def test_resend_one_delivers_once_with_a_new_id(daemon_factory, fake_smtp):
    f = fake_smtp("primary")
    f.rcpt_default = (550, "5.1.1 User unknown")
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", f)])
    qid = submit(d, [GOOD], data=with_msgid("resend me", "one@test.example"),
                 mail_from="")  # null sender: no DSN traffic in this test
    wait_finished(d, qid)
    wait_status(d, qid, "bounced")
    # Kept as the message finished (DESIGN.md 4, step 6); the log notes it just after.
    assert os.path.exists(body_path(d, qid)), "body not kept"
    wait_until(lambda: q1(d, "SELECT body_kept FROM messages WHERE id = ?", iid(qid)) == 1,
               5.0, "body_kept in the log")
    assert not f.messages

    f.reset_behaviour()
    r = post(d, "/api/v1/messages/%s/resend" % qid)
    assert r.status == 202, r
    new = r.json["id"]
    assert re.fullmatch(r"[0-9A-F]{16}", new) and new != qid, r.json
    f.wait_messages(1)
    wait_finished(d, new)
    wait_status(d, new, "sent")
    assert len(f.messages) == 1, f.messages
    m = f.messages[0]
    assert received_qid(m) == new
    assert msgid_of(m) == "<one@test.example>"
    assert [r.lower() for r in m.rcpts] == [GOOD]
    # The original body follows the new Received: line unchanged.
    assert b"(resent from %s)" % qid.encode() in m.data
    assert b"Subject: resend me" in m.data
    # Linked both ways in the log.
    detail = get(d, "/api/v1/messages/%s" % new).json
    assert detail["resent_from"] == qid, detail
    kinds = [e["type"] for e in get(d, "/api/v1/messages/%s" % qid).json["events"]]
    assert "resent" in kinds, kinds
    # The copy's body is kept too (it can be resent in turn).
    wait_until(lambda: os.path.exists(body_path(d, new)), 5.0, "body of the copy kept")


def test_resend_only_failed_recipients(daemon_factory, fake_smtp):
    f = fake_smtp("primary")
    f.rcpt_replies[BAD] = (550, "5.1.1 User unknown")
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", f)])
    qid = submit(d, [GOOD, BAD], mail_from="")
    f.wait_messages(1)
    wait_finished(d, qid)
    wait_status(d, qid, "bounced")
    f.reset_behaviour()
    f.reset_records()
    r = post(d, "/api/v1/messages/%s/resend" % qid, {"only_failed": True})
    assert r.status == 202, r
    new = r.json["id"]
    f.wait_messages(1)
    wait_finished(d, new)
    assert [x.lower() for x in f.messages[0].rcpts] == [BAD]
    assert received_qid(f.messages[0]) == new
    assert_error(post(d, "/api/v1/messages/%s/resend" % new, {"only_failed": True}), 409,
                 "nothing_to_resend")
    assert_error(post(d, "/api/v1/messages/%s/resend" % qid, {"only_failed": "yes"}), 400)
    assert_error(post(d, "/api/v1/messages/%s/resend" % qid, [1]), 400)


def test_resend_without_kept_body_is_409(daemon_factory, fake_smtp):
    f = fake_smtp("primary")
    f.rcpt_default = (550, "5.1.1 User unknown")
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", f)],
                        extra={"log": {"keep_bodies": False}})
    qid = submit(d, [GOOD], mail_from="")
    wait_finished(d, qid)
    wait_status(d, qid, "bounced")
    assert not os.path.exists(body_path(d, qid))
    f.reset_behaviour()
    r = post(d, "/api/v1/messages/%s/resend" % qid)
    assert_error(r, 409, "no_body")
    assert "keep_bodies" in r.json["error"]["message"]
    assert not f.messages


def test_resend_unknown_and_bad_ids(daemon):
    assert_error(post(daemon, "/api/v1/messages/0123456789ABCDEF/resend"), 404, "not_found")
    assert_error(post(daemon, "/api/v1/messages/XYZ/resend"), 400, "bad_id")
    assert_error(post(daemon, "/api/v1/messages/0123456789ABCDEF/other"), 404)
    assert_error(get(daemon, "/api/v1/resend/0123456789ABCDEF"), 404)
    assert_error(post(daemon, "/api/v1/resend", {}), 400)
    assert_error(post(daemon, "/api/v1/resend", {"ids": ["nope"]}), 400)
    assert_error(post(daemon, "/api/v1/resend", {"ids": [], "filter": {}}), 400)
    assert_error(post(daemon, "/api/v1/resend", {"filter": {"status": "nonsense"}}), 400)
    assert_error(post(daemon, "/api/v1/resend", {"filter": {"limit": "5"}}), 400)


def test_resend_needs_the_token_over_tcp(daemon):
    r = request(daemon, "/api/v1/messages/0123456789ABCDEF/resend", method="POST")
    assert r.status == 401, r


# ---------------------------------------------------------------------------------------------
# Bulk

def wait_job(d, job, deadline):
    def done():
        j = get(d, "/api/v1/resend/" + job).json
        return j if j["finished"] else None
    return wait_until(done, deadline, "resend job %s finished" % job, interval=0.2)


def test_bulk_resend_by_ids(daemon_factory, fake_smtp):
    f = fake_smtp("primary")
    f.rcpt_default = (550, "5.1.1 User unknown")
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", f)])
    qids = [submit(d, [GOOD], mail_from="") for _ in range(3)]
    for q in qids:
        wait_finished(d, q)
    f.reset_behaviour()
    r = post(d, "/api/v1/resend", {"ids": qids + [qids[0], "0123456789ABCDEF"]})
    assert r.status == 202, r
    assert r.json["count"] == 4, r.json  # the duplicate counts once
    j = wait_job(d, r.json["job"], 20.0)
    assert (j["total"], j["done"], j["failed"], j["pending"]) == (4, 3, 1, 0), j
    assert (j["state"], j["count"]) == ("done", 4), j
    assert j["errors"] == [{"id": "0123456789ABCDEF", "error": "not_found"}], j
    f.wait_messages(3)
    got = sorted(received_qid(m) for m in f.messages)
    assert len(set(got)) == 3 and not set(got) & set(qids), got


def send_bulk(d, n, mail_from):
    """n messages over one SMTP connection with NOTIFY=NEVER (no DSN traffic); their IDs."""
    ids = []
    with Raw(d.port()) as c:
        c.ehlo()
        for i in range(n):
            assert c.cmd("MAIL FROM:<%s>" % mail_from).code == 250
            assert c.cmd("RCPT TO:<%s> NOTIFY=NEVER" % GOOD).code == 250
            assert c.cmd("DATA").code == 354
            c.send(with_msgid("bulk %d" % i, "bulk-%d@test.example" % i) + b".\r\n")
            ids.append(queued_id(c.reply()))
        c.cmd("QUIT")
    return ids


def test_bulk_resend_of_1000_failed_by_filter(daemon_factory, fake_smtp):
    n = 1000
    sender = "bulk@example.com"
    f = fake_smtp("primary")
    f.rcpt_default = (550, "5.1.1 User unknown")
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", f, limits={"connections": 8})],
                        delivery={"connection_reuse": "30s"})
    ids = send_bulk(d, n, sender)
    # Another sender's bounce, which the filter must leave alone.
    other = submit(d, [GOOD], mail_from="other@example.com")
    # (The other sender's bounce notice bounces too, and is kept like any message: not counted.)
    wait_until(lambda: q1(d, "SELECT count(*) FROM messages WHERE status = 'bounced'"
                          " AND body_kept = 1 AND mail_from != ''") == n + 1, 120.0,
               "every message bounced", interval=0.5)
    assert not f.messages
    f.reset_behaviour()

    r = post(d, "/api/v1/resend", {"filter": {"status": "bounced", "from": sender}})
    assert r.status == 202, r
    assert r.json["count"] == n, r.json
    j = wait_job(d, r.json["job"], 120.0)
    assert (j["total"], j["done"], j["failed"]) == (n, n, 0), j

    wait_until(lambda: q1(d, "SELECT count(*) FROM messages WHERE status = 'sent'") == n,
               180.0, "every copy sent", interval=0.5)
    assert not [x for x in os.listdir(d.qdir()) if x.endswith(".env")]
    msgs = [m for m in f.messages if m.mail_from == sender]
    assert len(msgs) == n, len(msgs)
    want = {"<bulk-%d@test.example>" % i for i in range(n)}
    got = [msgid_of(m) for m in msgs]
    assert sorted(got) == sorted(want), "each original exactly once"
    new_ids = [received_qid(m) for m in msgs]
    assert len(set(new_ids)) == n and not set(new_ids) & set(ids)
    assert all(m.mail_from != "other@example.com" for m in f.messages)
    assert status_of(d, other) == "bounced"
    # Every copy is linked to its original.
    assert q1(d, "SELECT count(*) FROM messages WHERE resent_from IS NOT NULL") == n


# ---------------------------------------------------------------------------------------------
# Retention

def backdate(d, days):
    """Move every time in the log `days` into the past (the daemon is stopped)."""
    ms = days * DAY_MS
    con = sqlite3.connect(os.path.join(d.state, "hikyaku.db"), timeout=5)
    try:
        con.execute("UPDATE messages SET received_ms = received_ms - ?, updated_ms = updated_ms - ?",
                    (ms, ms))
        con.execute("UPDATE recipients SET updated_ms = updated_ms - ?", (ms,))
        con.execute("UPDATE events SET time_ms = time_ms - ?", (ms,))
        con.commit()
    finally:
        con.close()


def test_retention_removes_old_finished_rows_and_bodies_only(daemon_factory, fake_smtp):
    f = fake_smtp("primary")
    f.rcpt_replies["later@dest.example"] = (451, "4.2.0 try later")
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", f)],
                        retry={"schedule": ["1h"], "max_age": "5d"},
                        extra={"log": {"retention": "1d", "keep_bodies": True}})
    sent = submit(d, [GOOD], mail_from="")
    queued = submit(d, ["later@dest.example"], mail_from="")
    wait_finished(d, sent)
    wait_status(d, sent, "sent")
    wait_status(d, queued, "deferred")
    # Bodies are kept as messages finish; a deferred one's body is still the spool's.
    assert os.path.exists(body_path(d, sent)) and not os.path.exists(body_path(d, queued))
    # A fresh pass (at start) keeps everything: nothing is a day old.
    d.stop()
    d.start()
    assert q1(d, "SELECT count(*) FROM messages") == 2

    d.stop()
    backdate(d, 2)
    since = d.log_size()
    d.start()
    d.wait_for_log(r"event=pruned .*messages=1 bodies=1", deadline=10.0, since=since)
    assert status_of(d, sent) is None
    assert q1(d, "SELECT count(*) FROM events WHERE message_id = ?", iid(sent)) == 0
    assert q1(d, "SELECT count(*) FROM recipients WHERE message_id = ?", iid(sent)) == 0
    assert not os.path.exists(body_path(d, sent))
    # The deferred message keeps its rows and its place in the queue.
    assert status_of(d, queued) == "deferred"
    assert os.path.exists(os.path.join(d.qdir(), queued + ".env"))
    # And it can be resent, from its body in the spool.
    r = post(d, "/api/v1/messages/%s/resend" % queued)
    assert r.status == 202, r
    assert_error(post(d, "/api/v1/messages/%s/resend" % sent), 404)


# ---------------------------------------------------------------------------------------------
# The CLI on top (docs/cli.md)

def test_cli_resend_one_and_by_filter(daemon_factory, fake_smtp):
    import subprocess
    from conftest import hikyaku_bin
    f = fake_smtp("primary")
    f.rcpt_default = (550, "5.1.1 User unknown")
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", f)])
    qids = [submit(d, [GOOD], mail_from="") for _ in range(2)]
    for q in qids:
        wait_finished(d, q)
        wait_status(d, q, "bounced")
    f.reset_behaviour()

    def cli(*args):
        return subprocess.run([hikyaku_bin(), "-c", d.config_path] + list(args),
                              capture_output=True, text=True, timeout=60)

    r = cli("resend", qids[0])
    assert r.returncode == 0, r
    m = re.search(r"%s resent as ([0-9A-F]{16})" % qids[0], r.stdout)
    assert m, r.stdout
    f.wait_messages(1)
    assert received_qid(f.messages[0]) == m.group(1)

    r = cli("resend", "--status", "bounced")
    assert r.returncode == 0, r
    assert "resent 2 of 2 messages" in r.stdout, r.stdout
    f.wait_messages(3)


def test_bulk_resend_jobs_are_limited_with_429(daemon):
    """At most 4 bulk jobs run at once; the fifth is told to come back (429, Retry-After)."""
    ids = ["%016X" % (0x0123456789A00000 + i) for i in range(8000)]  # none exists: 404 each
    got = [post(daemon, "/api/v1/resend", {"ids": ids}) for _ in range(5)]
    assert [r.status for r in got[:4]] == [202] * 4, [r.status for r in got]
    assert_error(got[4], 429, "too_many_jobs")
    assert got[4].headers.get("retry-after") == "10", got[4].headers
    for r in got[:4]:
        wait_job(daemon, r.json["job"], 60.0)
    assert post(daemon, "/api/v1/resend", {"ids": ids[:10]}).status == 202
