"""Direct MX delivery (route `mx: true`, DESIGN.md 7 "Direct MX"): MX lookup through a fake
authoritative DNS server (dns.forward), MX hosts as fake SMTP servers on 127.0.0.2-4 sharing
delivery.mx_port, preference order, A fallback, null MX (RFC 7505) -> bounce with a DSN.

All names live under ".example"; the daemon's resolver forwards only to the fake, so nothing leaves
loopback. Each test also checks that the fake DNS was actually asked.
"""

import pytest

from conftest import (assert_dsn, assert_once, delivery_daemon, dsns, received_qid, submit,
                      wait_dsn, wait_finished, MailLog)
from fakesmtp import free_port_on

SENDER = "app@sender.example"
MX_HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


@pytest.fixture
def mx_env(daemon_factory, fake_smtp, fake_dns):
    """(make_daemon, port, fakes): fakes maps 127.0.0.x -> FakeSMTP, not started; the sender's
    domain has its own MX at 127.0.0.4 so DSNs can be delivered."""
    port = free_port_on(MX_HOSTS)
    fakes = {h: fake_smtp("mx-" + h, host=h, port=port, start=False) for h in MX_HOSTS}
    fake_dns.mx("sender.example", [(10, "mx.sender.example")])
    fake_dns.a("mx.sender.example", "127.0.0.4")

    def make(**kw):
        return delivery_daemon(daemon_factory, [], route="mx",
                               delivery={"mx_port": port},
                               extra={"dns": {"forward": [fake_dns.forward], "timeout": "2s"}},
                               **kw)
    return make, port, fakes


def test_mx_delivery_by_preference(mx_env, fake_dns):
    make, port, fakes = mx_env
    fake_dns.mx("dest.example", [(20, "mx2.dest.example"), (10, "mx1.dest.example")])
    fake_dns.a("mx1.dest.example", "127.0.0.2")
    fake_dns.a("mx2.dest.example", "127.0.0.3")
    mx1, mx2 = fakes["127.0.0.2"].start(), fakes["127.0.0.3"].start()
    d = make()
    expected = {}
    for i in range(3):
        expected[submit(d, ["u%d@dest.example" % i], mail_from=SENDER)] = ["u%d@dest.example" % i]
    mx1.wait_messages(3)
    for q in expected:
        wait_finished(d, q)
    assert mx2.connections == 0, "the lower-preference MX was used although the best one works"
    assert fake_dns.asked("dest.example", "MX"), "the fake DNS was never asked for the MX"
    for m in mx1.messages:
        assert m.mail_from == SENDER
    assert_once([mx1, mx2], expected)


def test_mx_best_host_down_uses_next(mx_env, fake_dns):
    make, port, fakes = mx_env
    fake_dns.mx("dest.example", [(10, "mx1.dest.example"), (20, "mx2.dest.example"),
                                 (30, "mx3.dest.example")])
    fake_dns.a("mx1.dest.example", "127.0.0.2")  # nothing listens there: refused
    fake_dns.a("mx2.dest.example", "127.0.0.3")
    fake_dns.a("mx3.dest.example", "127.0.0.5")
    mx2 = fakes["127.0.0.3"].start()
    d = make()
    qid = submit(d, ["rcpt@dest.example"], mail_from=SENDER)
    msgs = mx2.wait_messages(1, deadline=15.0)
    wait_finished(d, qid)
    assert received_qid(msgs[0]) == qid
    assert fake_dns.asked("mx1.dest.example"), "the preferred MX host was not even looked up"
    assert_once([mx2], {qid: ["rcpt@dest.example"]})


def test_mx_implicit_a_fallback(mx_env, fake_dns):
    make, port, fakes = mx_env
    fake_dns.a("plain.example", "127.0.0.2")  # no MX: the domain itself (RFC 5321 5.1)
    mx = fakes["127.0.0.2"].start()
    d = make()
    qid = submit(d, ["rcpt@plain.example"], mail_from=SENDER)
    mx.wait_messages(1)
    wait_finished(d, qid)
    assert_once([mx], {qid: ["rcpt@plain.example"]})


def test_null_mx_bounces_with_dsn(mx_env, fake_dns):
    make, port, fakes = mx_env
    fake_dns.null_mx("nomail.example")
    for f in fakes.values():
        f.start()
    d = make()
    qid = submit(d, ["rcpt@nomail.example"], mail_from=SENDER)
    dsn = wait_dsn(list(fakes.values()), SENDER)
    assert dsn[0].server == "mx-127.0.0.4", "DSN not delivered to the sender's MX"
    assert_dsn(dsn[0], "rcpt@nomail.example", status_prefix="5.")
    wait_finished(d, qid)
    assert fake_dns.asked("nomail.example", "MX")
    MailLog(d).wait_status(qid, "rcpt@nomail.example", "bounced")
    assert_once(list(fakes.values()), {qid: []})
    assert len(dsns(list(fakes.values()))) == 1
    for h in ("127.0.0.2", "127.0.0.3"):
        assert fakes[h].connections == 0


def test_mx_5xx_is_final(mx_env, fake_dns):
    """With mx: true any 5xx is final: no other MX host is tried."""
    make, port, fakes = mx_env
    fake_dns.mx("dest.example", [(10, "mx1.dest.example"), (20, "mx2.dest.example")])
    fake_dns.a("mx1.dest.example", "127.0.0.2")
    fake_dns.a("mx2.dest.example", "127.0.0.3")
    mx1, mx2 = fakes["127.0.0.2"].start(), fakes["127.0.0.3"].start()
    fakes["127.0.0.4"].start()
    mx1.rcpt_replies["gone@dest.example"] = (550, "5.7.1 Policy rejection")
    d = make()
    qid = submit(d, ["gone@dest.example"], mail_from=SENDER)
    dsn = wait_dsn(list(fakes.values()), SENDER)
    assert_dsn(dsn[0], "gone@dest.example", status_prefix="5.7.1")
    wait_finished(d, qid)
    assert mx2.connections == 0, "a 5xx from an MX host was retried on the next MX"
