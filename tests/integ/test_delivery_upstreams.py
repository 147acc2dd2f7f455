"""Delivery through ordered upstreams (DESIGN.md 7): the primary, failover to the backup for each
kind of failure, circuit breaker, quotas, recipient verdicts, retries, expiry and DSNs.

Every test counts at the fake servers that each accepted recipient arrived exactly once over all
upstreams (no loss, no duplicate). Timings are short (conftest.FAST_DELIVERY) and every wait has a
deadline.
"""

import signal
import subprocess
import time

import pytest

from conftest import (assert_dsn, assert_once, delivery_daemon, dsns, env_states, hikyaku_bin,
                      message,
                      received_qid,
                      submit, upstream_conf, wait_dsn, wait_env_state,
                      wait_finished, wait_until, MailLog)

GOOD = "good@dest.example"
BAD = "bad@dest.example"
SENDER = "sender@example.com"


def pair(fake_smtp):
    return fake_smtp("primary"), fake_smtp("backup")


def two_upstreams(daemon_factory, p, b, pconf=None, bconf=None, **kw):
    ups = [upstream_conf("primary", p, **(pconf or {})), upstream_conf("backup", b,
                                                                       **(bconf or {}))]
    return delivery_daemon(daemon_factory, ups, **kw)


def only_at(fake, others, qid, rcpts, deadline=10.0):
    """Wait until fake accepted qid, then check no other fake has it."""
    fake.wait_for(lambda: any(received_qid(m) == qid for m in fake.messages), deadline,
                  "message %s" % qid)
    for o in others:
        assert not [m for m in o.messages if received_qid(m) == qid], \
            "%s also reached %s" % (qid, o.name)
    m = [m for m in fake.messages if received_qid(m) == qid][0]
    assert sorted(r.lower() for r in m.rcpts) == sorted(r.lower() for r in rcpts)
    return m


# ---------------------------------------------------------------------------------------------
# The happy path

def test_delivery_through_primary(daemon_factory, fake_smtp):
    p, b = pair(fake_smtp)
    d = two_upstreams(daemon_factory, p, b)
    body = ("first line\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\n"
            "after a lone dot\r\nlast line\r\n")
    data = message(subject="through the primary", body=body)
    rcpts = ["one@dest.example", "two@dest.example"]
    qid = submit(d, rcpts, data)
    msgs = p.wait_messages(1)
    wait_finished(d, qid)
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m.mail_from == SENDER
    assert sorted(m.rcpts) == sorted(rcpts)
    assert m.header_names()[0] == "received", "first header is not Received: %r" % (
        m.header_names(),)
    assert received_qid(m) == qid, "Received: header does not carry the queue ID"
    assert m.data.endswith(data), "body changed in transit:\n%r\n---\n%r" % (m.data[-300:], data)
    assert b.connections == 0, "the backup was contacted although the primary works"
    assert p.verbs().count("MAIL") == 1
    assert_once([p, b], {qid: rcpts})
    assert d.queue_ids() == [] and d.body_ids() == [], "spool not emptied after delivery"


def test_tls_to_primary_with_verified_certificate(daemon_factory, fake_smtp, tls_files):
    p, b = pair(fake_smtp)
    p.starttls = True
    d = two_upstreams(daemon_factory, p, b,
                      pconf={"tls": "starttls", "verify": True, "ca_file": tls_files[0]})
    qid = submit(d, [GOOD])
    m = only_at(p, [b], qid, [GOOD])
    assert m.tls, "message went over plaintext although tls: starttls"
    wait_finished(d, qid)
    assert_once([p, b], {qid: [GOOD]})


def test_auth_to_primary(daemon_factory, fake_smtp, tmp_path):
    p, b = pair(fake_smtp)
    p.starttls = True
    p.auth = ("relay@example.com", "right-password")
    pw = tmp_path / "primary.pass"
    pw.write_text("right-password\n")
    d = two_upstreams(daemon_factory, p, b,
                      pconf={"tls": "starttls", "verify": False, "username": "relay@example.com",
                             "password_file": str(pw)})
    qid = submit(d, [GOOD])
    m = only_at(p, [b], qid, [GOOD])
    assert m.auth_user == "relay@example.com" and m.tls
    wait_finished(d, qid)


# ---------------------------------------------------------------------------------------------
# Each failure of the primary sends the message to the backup

def _refused(p):
    p.stop()


def _greet421(p):
    p.greeting = (421, "4.3.2 Service not available, closing channel")


def _greet554(p):
    p.greeting = (554, "5.3.2 No SMTP service here")


def _ehlo421(p):
    p.replies["EHLO"] = (421, "4.7.0 Try again later, closing connection")
    p.replies["HELO"] = (421, "4.7.0 Try again later, closing connection")


def _mail451(p):
    p.replies["MAIL"] = (451, "4.3.0 Temporary local problem")


def _drop_after_data(p):
    p.drop_after = "DATA"


def _hang_greeting(p):
    p.hang_after_greeting = True


FAILURES = {
    "connection-refused": _refused,
    "greeting-421": _greet421,
    "greeting-554": _greet554,
    "ehlo-421": _ehlo421,
    "mail-451": _mail451,
    "lost-before-dot": _drop_after_data,
    "greeting-timeout": _hang_greeting,
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_failover_to_backup(daemon_factory, fake_smtp, failure):
    p, b = pair(fake_smtp)
    FAILURES[failure](p)
    d = two_upstreams(daemon_factory, p, b, delivery={"command_timeout": "1s"})
    qid = submit(d, [GOOD])
    only_at(b, [p], qid, [GOOD], deadline=15.0)
    wait_finished(d, qid)
    if failure != "connection-refused":
        assert p.connections >= 1, "the primary was never tried"
    assert "MAIL" not in p.verbs() or failure in ("mail-451", "lost-before-dot")
    assert_once([p, b], {qid: [GOOD]})


def test_tls_verification_failure_goes_to_backup_never_plaintext(daemon_factory, fake_smtp,
                                                                 tmp_path):
    p, b = pair(fake_smtp)
    p.starttls = True  # self-signed certificate, not in the system trust store
    p.auth = ("relay@example.com", "pw")
    pw = tmp_path / "primary.pass"
    pw.write_text("pw\n")
    d = two_upstreams(daemon_factory, p, b,
                      pconf={"tls": "starttls", "verify": True, "username": "relay@example.com",
                             "password_file": str(pw)})
    qid = submit(d, [GOOD])
    only_at(b, [p], qid, [GOOD])
    wait_finished(d, qid)
    assert p.connections >= 1, "the primary was never tried"
    verbs = p.verbs()
    assert "STARTTLS" in verbs, verbs
    for v in ("MAIL", "RCPT", "DATA", "AUTH", "<AUTH"):
        assert v not in verbs, "%s sent to the primary after a failed certificate check: %r" % (
            v, verbs)
    assert p.auth_attempts == 0
    assert_once([p, b], {qid: [GOOD]})


def test_starttls_required_but_not_offered_goes_to_backup(daemon_factory, fake_smtp):
    p, b = pair(fake_smtp)
    p.starttls = False
    d = two_upstreams(daemon_factory, p, b, pconf={"tls": "starttls", "verify": False})
    qid = submit(d, [GOOD])
    only_at(b, [p], qid, [GOOD])
    wait_finished(d, qid)
    assert p.connections >= 1
    assert "MAIL" not in p.verbs(), "plaintext MAIL to an upstream that requires TLS"
    assert_once([p, b], {qid: [GOOD]})


# ---------------------------------------------------------------------------------------------
# Circuit breaker

def test_auth_failure_opens_breaker_at_once(daemon_factory, fake_smtp, tmp_path):
    p, b = pair(fake_smtp)
    p.starttls = True
    p.auth = ("relay@example.com", "right-password")
    pw = tmp_path / "primary.pass"
    pw.write_text("wrong-password\n")
    d = two_upstreams(daemon_factory, p, b,
                      pconf={"tls": "starttls", "verify": False, "username": "relay@example.com",
                             "password_file": str(pw)},
                      delivery={"breaker_open": "60s"})
    q1 = submit(d, [GOOD], subject="first")
    only_at(b, [p], q1, [GOOD])
    assert p.auth_attempts == 1, "AUTH attempts at the primary: %d" % p.auth_attempts
    conns = p.connections
    q2 = submit(d, [GOOD], subject="second")
    q3 = submit(d, [GOOD], subject="third")
    only_at(b, [p], q2, [GOOD])
    only_at(b, [p], q3, [GOOD])
    assert p.connections == conns, "the primary was contacted again with its breaker open"
    assert p.auth_attempts == 1
    for q in (q1, q2, q3):
        wait_finished(d, q)
    assert_once([p, b], {q1: [GOOD], q2: [GOOD], q3: [GOOD]})


def test_traffic_returns_to_primary_after_recovery(daemon_factory, fake_smtp):
    """Primary refuses connections: mail goes to the backup and the breaker opens (3 session
    failures). Once the primary is back and the breaker's open time (1 s here) has passed, a probe
    message goes to the primary and the ones after it as well."""
    p, b = pair(fake_smtp)
    p.stop()
    d = two_upstreams(daemon_factory, p, b, delivery={"breaker_open": "1s"})
    expected = {}
    for i in range(4):
        q = submit(d, [GOOD], subject="while down %d" % i)
        expected[q] = [GOOD]
        only_at(b, [p], q, [GOOD])
    p.up()
    # Message flow: one message at a time until one lands at the primary.
    first_primary = None
    for i in range(40):
        q = submit(d, [GOOD], subject="after recovery %d" % i)
        expected[q] = [GOOD]
        wait_until(lambda: any(received_qid(m) == q for f in (p, b) for m in f.messages), 10.0,
                   "delivery of %s" % q)
        if any(received_qid(m) == q for m in p.messages):
            first_primary = i
            break
        time.sleep(0.25)  # paced flow: the breaker's 1 s open time passes within a few messages
    assert first_primary is not None, "no message returned to the primary after it recovered"
    q = submit(d, [GOOD], subject="after the probe")
    expected[q] = [GOOD]
    only_at(p, [b], q, [GOOD])
    for q in expected:
        wait_finished(d, q)
    assert_once([p, b], expected)


# ---------------------------------------------------------------------------------------------
# Quotas

def test_per_day_quota_spills_to_backup(daemon_factory, fake_smtp):
    p, b = pair(fake_smtp)
    d = two_upstreams(daemon_factory, p, b, pconf={"limits": {"per_day": 3}})
    expected = {}
    for i in range(4):
        q = submit(d, [GOOD], subject="quota %d" % i)
        expected[q] = [GOOD]
        if i < 3:
            only_at(p, [b], q, [GOOD])
        else:
            only_at(b, [p], q, [GOOD])
    for q in expected:
        wait_finished(d, q)
    assert len(p.messages) == 3 and len(b.messages) == 1
    assert_once([p, b], expected)


def test_provider_quota_reply_spills_and_pauses_primary(daemon_factory, fake_smtp):
    p, b = pair(fake_smtp)
    p.dot_reply = (550, "5.4.5 Daily user sending quota exceeded.")
    d = two_upstreams(daemon_factory, p, b)
    q1 = submit(d, [GOOD], subject="hits the quota")
    only_at(b, [p], q1, [GOOD])
    assert p.transactions == 1
    conns = p.connections
    q2 = submit(d, [GOOD], subject="after the quota")
    only_at(b, [p], q2, [GOOD])
    assert p.connections == conns, "the quota-paused primary was contacted again"
    for q in (q1, q2):
        wait_finished(d, q)
    assert_once([p, b], {q1: [GOOD], q2: [GOOD]})
    # Not a bounce: no DSN for a quota refusal.
    assert dsns([p, b]) == []


# ---------------------------------------------------------------------------------------------
# Recipient verdicts, DSNs, retries, expiry

def test_permanent_recipient_failure_bounces_one_sends_other(daemon_factory, fake_smtp):
    p, b = pair(fake_smtp)
    p.rcpt_replies[BAD] = (550, "5.1.1 <%s>: Recipient address rejected: User unknown" % BAD)
    d = two_upstreams(daemon_factory, p, b)
    qid = submit(d, [GOOD, BAD])
    only_at(p, [b], qid, [GOOD])
    dsn = wait_dsn([p, b], SENDER)
    assert len(dsn) == 1, dsn
    assert_dsn(dsn[0], BAD, status_prefix="5.1.1")
    assert dsn[0].server == "primary", "DSN did not take the normal route (primary)"
    wait_finished(d, qid)
    assert not [c for _, c in b.commands if BAD in c], "bounced recipient retried on the backup"
    log = MailLog(d)
    log.wait_status(qid, BAD, "bounced")
    log.wait_status(qid, GOOD, "sent")
    assert_once([p, b], {qid: [GOOD]})
    assert len(dsns([p, b])) == 1, "more than one DSN"


def test_expiry_after_max_age_with_dsn(daemon_factory, fake_smtp):
    p, b = pair(fake_smtp)
    for f in (p, b):
        f.rcpt_replies[BAD] = (451, "4.2.1 Mailbox temporarily unavailable")
    d = two_upstreams(daemon_factory, p, b, retry={"schedule": ["1s"], "max_age": "3s"})
    qid = submit(d, [BAD])
    wait_env_state(d, qid, BAD, "deferred", deadline=8.0)
    dsn = wait_dsn([p, b], SENDER, deadline=20.0)
    assert len(dsn) == 1
    assert_dsn(dsn[0], BAD, status_prefix="4.", action="failed")
    wait_finished(d, qid, deadline=10.0)
    MailLog(d).wait_status(qid, BAD, "expired")
    assert p.verbs().count("RCPT") >= 2, "fewer than two attempts before expiry"
    assert_once([p, b], {qid: []})


def test_policy_5xx_on_last_upstream_bounces(daemon_factory, fake_smtp):
    p, b = pair(fake_smtp)
    for f in (p, b):
        f.rcpt_replies[BAD] = (554, "5.7.1 <%s>: Relay access denied" % BAD)
    d = two_upstreams(daemon_factory, p, b)
    qid = submit(d, [BAD])
    dsn = wait_dsn([p, b], SENDER)
    assert_dsn(dsn[0], BAD, status_prefix="5.7.1")
    wait_finished(d, qid)
    assert any(BAD in c for _, c in p.commands), "the primary never saw the recipient"
    assert any(BAD in c for _, c in b.commands), "not tried on the backup before bouncing"
    MailLog(d).wait_status(qid, BAD, "bounced")
    assert_once([p, b], {qid: []})
    assert len(dsns([p, b])) == 1


def test_timeout_after_dot_defers_then_delivers(daemon_factory, fake_smtp):
    p, b = pair(fake_smtp)
    p.hang_after_dot = True
    d = two_upstreams(daemon_factory, p, b, delivery={"dot_timeout": "1s"},
                      retry={"schedule": ["1s"], "max_age": "1h"})
    qid = submit(d, [GOOD])
    p.wait_transactions(1)
    d.wait_for_log(r"(?i)may have been delivered", deadline=10.0)
    p.hang_after_dot = False
    only_at(p, [b], qid, [GOOD], deadline=15.0)
    wait_finished(d, qid)
    assert b.connections == 0, "a possibly delivered message must be retried, not failed over"
    assert p.transactions == 2
    assert_once([p, b], {qid: [GOOD]})


def test_restart_with_deferred_queue(daemon_factory, fake_smtp):
    p = fake_smtp("primary")
    p.stop()
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", p)],
                        retry={"schedule": ["2s"], "max_age": "1h"})
    qid = submit(d, [GOOD])
    wait_env_state(d, qid, GOOD, "deferred", deadline=10.0)
    assert d.stop() == 0
    p.up()
    d.start()
    only_at(p, [], qid, [GOOD], deadline=15.0)
    wait_finished(d, qid)
    assert_once([p], {qid: [GOOD]})


# ---------------------------------------------------------------------------------------------
# Splitting and size

def test_recipients_per_message_splits_transactions(daemon_factory, fake_smtp):
    p, b = pair(fake_smtp)
    d = two_upstreams(daemon_factory, p, b, pconf={"limits": {"recipients_per_message": 2}})
    rcpts = ["r%d@dest.example" % i for i in range(5)]
    qid = submit(d, rcpts)
    p.wait_for(lambda: len(p.rcpts_received()) >= 5, 10.0, "5 recipients")
    wait_finished(d, qid)
    mine = [m for m in p.messages if received_qid(m) == qid]
    assert sorted(len(m.rcpts) for m in mine) == [1, 2, 2], [m.rcpts for m in mine]
    assert p.verbs().count("MAIL") == 3
    assert b.connections == 0
    assert_once([p, b], {qid: rcpts})


def test_max_size_skips_to_backup(daemon_factory, fake_smtp):
    p, b = pair(fake_smtp)
    d = two_upstreams(daemon_factory, p, b, pconf={"limits": {"max_size": "1K"}})
    small = submit(d, [GOOD], message(subject="small", body="tiny\r\n"))
    only_at(p, [b], small, [GOOD])
    big_body = "".join("line %04d %s\r\n" % (i, "x" * 60) for i in range(80))  # ~5.5 KB
    big = submit(d, [GOOD], message(subject="big", body=big_body))
    only_at(b, [p], big, [GOOD])
    for q in (small, big):
        wait_finished(d, q)
    assert p.transactions == 1, "the oversized message was offered to the small primary"
    assert_once([p, b], {small: [GOOD], big: [GOOD]})


def test_many_messages_many_failures_no_loss_no_duplicate(daemon_factory, fake_smtp):
    """A mixed flow: the primary alternates between refusing at the dot with 451 and accepting;
    every message ends at exactly one upstream."""
    p, b = pair(fake_smtp)
    p.dot_reply = [(451, "4.3.0 Try again"), (250, "2.0.0 Ok")] * 10
    d = two_upstreams(daemon_factory, p, b)
    expected = {}
    for i in range(12):
        expected[submit(d, [GOOD, "other@dest.example"], subject="mixed %d" % i)] = [
            GOOD, "other@dest.example"]
    wait_until(lambda: len(p.messages) + len(b.messages) >= 12, 20.0, "12 deliveries")
    for q in expected:
        wait_finished(d, q)
    assert_once([p, b], expected)
    assert d.queue_ids() == []


def test_messages_wait_for_the_probe_without_polling(daemon_factory, fake_smtp):
    """While a half-open probe hangs at the only upstream, the other messages wait for the probe's
    end instead of being re-run every second: each logs 'no_upstream_now' about once during the
    hang, not once a second. When the probe ends they are tried again."""
    f = fake_smtp("slow")
    f.stop()
    d = delivery_daemon(daemon_factory, [upstream_conf("slow", f)],
                        retry={"schedule": ["1h"], "max_age": "1h"},
                        delivery={"breaker_open": "1s", "command_timeout": "4s"})
    for i in range(3):  # three refused connections open the breaker
        q = submit(d, [GOOD], subject="opens the breaker %d" % i)
        wait_until(lambda: (env_states(d, q) or {}).get(GOOD) == "deferred", 10.0,
                   "first attempts deferred")
    f.hang_after_greeting = True
    f.up()
    waiting = [submit(d, [GOOD], subject="waits %d" % i) for i in range(5)]
    f.wait_connections(1, deadline=10.0)  # the probe: connected, greeted, then silence
    since = d.log_size()
    time.sleep(2.5)  # inside the 4 s command timeout of the hanging probe
    log = d.log()[since:]
    for q in waiting:
        n = log.count("event=no_upstream_now qid=%s" % q)
        assert n <= 1, "%s was re-run %d times while the probe hung:\n%s" % (q, n, log[-2000:])
    assert f.connections == 1, "more than one probe went to a half-open upstream"
    # A waiter can still be flushed (it is in the relay's list, not the scheduler's).
    r = subprocess.run([hikyaku_bin(), "-c", d.config_path, "flush", waiting[-1]],
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r
    # The probe times out: the waiters are tried again (and wait for the next half-open time).
    f.hang_after_greeting = False
    def tried_again():
        log = d.log()[since:]
        got = [received_qid(m) for m in f.messages]
        return sum(1 for q in waiting if ("event=no_upstream_now qid=%s" % q) in log or q in got)
    # Every message but the probe (deferred by its timeout, next try in an hour).
    wait_until(lambda: tried_again() >= len(waiting) - 1, 20.0,
               "the waiting messages tried again after the probe")


# ---------------------------------------------------------------------------------------------
# Reload

def test_reload_new_port_closes_reused_connections(daemon_factory, fake_smtp):
    """An upstream whose port changes on SIGHUP: the next message goes to the new server, not
    over a connection to the old one kept idle for reuse."""
    old, new = fake_smtp("old"), fake_smtp("new")
    d = delivery_daemon(daemon_factory, [upstream_conf("provider", old)],
                        delivery={"connection_reuse": "60s"})
    qid1 = submit(d, [GOOD])
    only_at(old, [new], qid1, [GOOD])
    wait_finished(d, qid1)
    assert old.verbs().count("QUIT") == 0, "the first connection was not kept for reuse"
    d.config["upstreams"] = [upstream_conf("provider", new)]
    d.write_config()
    since = d.log_size()
    d.signal(signal.SIGHUP)
    d.wait_for_log(r"event=reload_done", since=since)
    qid2 = submit(d, [GOOD])
    only_at(new, [old], qid2, [GOOD])
    wait_finished(d, qid2)
    assert_once([old, new], {qid1: [GOOD], qid2: [GOOD]})
