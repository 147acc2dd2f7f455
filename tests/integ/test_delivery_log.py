"""What delivery leaves behind: email-log events per attempt (DESIGN.md 8: time, upstream, remote
host, TLS, reply code, enhanced code, text, duration), recipient statuses, and Postfix-compatible
lines (log.postfix, DESIGN.md 9).
"""

import os
import re

from conftest import (assert_once, delivery_daemon, field, submit, upstream_conf, wait_finished,
                      wait_until, MailLog)

GOOD = "good@dest.example"


def _attempts(log, qid):
    return log.events(qid, "attempt")


def test_email_log_has_an_attempt_event_per_attempt(daemon_factory, fake_smtp):
    p, b = fake_smtp("primary"), fake_smtp("backup")
    p.greeting = (421, "4.3.2 Service not available, closing channel")
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", p), upstream_conf("backup", b)])
    qid = submit(d, [GOOD])
    b.wait_messages(1)
    wait_finished(d, qid)
    log = MailLog(d)
    log.wait_status(qid, GOOD, "sent")
    evs = wait_until(lambda: len(_attempts(log, qid)) >= 2 and _attempts(log, qid), 5.0,
                     "two attempt events for %s" % qid)
    by_up = {}
    for e in evs:
        by_up.setdefault(field(e, "upstream", "upstream_name"), []).append(e)
    assert set(by_up) >= {"primary", "backup"}, "attempt events: %r" % evs
    assert len(by_up["primary"]) == 1 and len(by_up["backup"]) == 1, evs
    ep, eb = by_up["primary"][0], by_up["backup"][0]
    assert field(ep, "code", "reply_code") == 421, ep
    assert field(ep, "enhanced", "enhanced_code", "enh") == "4.3.2", ep
    assert "Service not available" in (field(ep, "text", "reply_text", "detail") or ""), ep
    assert field(eb, "code", "reply_code") == 250, eb
    assert field(eb, "enhanced", "enhanced_code", "enh") == "2.0.0", eb
    assert "Ok" in (field(eb, "text", "reply_text", "detail") or ""), eb
    kinds = [log.kind(e) for e in log.events(qid)]
    assert "received" in kinds and "sent" in kinds, kinds
    assert_once([p, b], {qid: [GOOD]})


def test_email_log_records_local_failure_text(daemon_factory, fake_smtp):
    p, b = fake_smtp("primary"), fake_smtp("backup")
    p.stop()
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", p), upstream_conf("backup", b)])
    qid = submit(d, [GOOD])
    b.wait_messages(1)
    wait_finished(d, qid)
    log = MailLog(d)
    evs = wait_until(lambda: len(_attempts(log, qid)) >= 2 and _attempts(log, qid), 5.0,
                     "two attempt events")
    ep = [e for e in evs if field(e, "upstream", "upstream_name") == "primary"]
    assert ep, evs
    assert field(ep[0], "code", "reply_code") in (0, None)
    assert re.search(r"(?i)refused", field(ep[0], "text", "reply_text", "detail") or ""), ep[0]


PFLOG_SENT = (r"^(?:\S+\s+)*hikyaku/smtp\[\d+\]: (?P<qid>[0-9A-F]{16}): to=<(?P<to>[^>]+)>, "
              r"(?:orig_to=<[^>]*>, )?relay=(?P<relay>\S+)\[(?P<ip>[0-9.]+)\]:(?P<port>\d+), delay=[0-9.]+, "
              r"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=(?P<dsn>\d\.\d+\.\d+), "
              r"status=(?P<status>\w+) \((?P<reply>.*)\)$")


def test_postfix_style_lines_to_file(daemon_factory, fake_smtp, tmp_path):
    p, b = fake_smtp("primary"), fake_smtp("backup")
    b.rcpt_replies["bad@dest.example"] = (550, "5.1.1 User unknown")
    p.rcpt_replies["bad@dest.example"] = (550, "5.1.1 User unknown")
    path = str(tmp_path / "postfix.log")
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", p), upstream_conf("backup", b)],
                        extra={"log": {"postfix": {"target": path, "tag": "hikyaku"}}})
    qid = submit(d, [GOOD, "bad@dest.example"])
    p.wait_messages(1)
    wait_finished(d, qid)

    def lines():
        if not os.path.exists(path):
            return []
        with open(path, errors="replace") as f:
            return [m for m in (re.match(PFLOG_SENT, ln.rstrip("\n")) for ln in f)
                    if m and m.group("qid") == qid]
    got = wait_until(lambda: len(lines()) >= 2 and lines(), 5.0, "two Postfix-style lines in %s"
                     % path)
    sent = [m for m in got if m.group("status") == "sent"]
    bounced = [m for m in got if m.group("status") == "bounced"]
    assert len(sent) == 1 and len(bounced) == 1, [m.group(0) for m in got]
    s = sent[0]
    assert s.group("qid") == qid and s.group("to") == GOOD
    assert s.group("ip") == "127.0.0.1" and int(s.group("port")) == p.port
    assert s.group("dsn") == "2.0.0" and s.group("reply").startswith("250")
    bo = bounced[0]
    assert bo.group("to") == "bad@dest.example" and bo.group("dsn") == "5.1.1"
    assert "550" in bo.group("reply")
