"""hikyaku check-dns and the DNS checks (docs/diagnostics.md "DNS checks"), against an
authoritative fake DNS server on loopback (dnsfake.py). dns.forward always points at the fake,
so no query leaves the machine; every name lives under .example.
"""

import json
import os
import subprocess
import time

import pytest

from conftest import Daemon, hikyaku_bin, submit, to_yaml, free_port
from dnsfake import FakeDNS

# A 2048-bit RSA public key (SubjectPublicKeyInfo, base64), generated for these tests.
def _rsa_pub(bits):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    import base64
    return base64.b64encode(der).decode()


GOOD_IP = "198.18.0.25"
BAD_IP = "198.18.0.66"
BL = "bl.lists.example"


def zones(dns, key2048, key512):
    # good.example: everything right.
    dns.txt("good.example", "v=spf1 ip4:198.18.0.0/24 include:_spf.provider.example -all",
            "google-site-verification=abc")
    dns.txt("_spf.provider.example", "v=spf1 ip4:203.0.113.0/24 ~all")
    dns.txt("sel._domainkey.good.example", ("v=DKIM1; k=rsa; p=" + key2048[:200],
                                            key2048[200:]))
    dns.txt("_dmarc.good.example", "v=DMARC1; p=reject; rua=mailto:dmarc@good.example")
    dns.mx("good.example", [(10, "mx.good.example")])
    dns.a("mx.good.example", "198.18.0.10")
    dns.txt("_mta-sts.good.example", "v=STSv1; id=20240101")
    dns.txt("_smtp._tls.good.example", "v=TLSRPTv1; rua=mailto:tls@good.example")
    dns.ptr(GOOD_IP, "out.good.example")
    dns.a("out.good.example", GOOD_IP)
    # broken.example: two SPF records, weak key, p=none without rua, MX host without address.
    dns.txt("broken.example", "v=spf1 a -all", "v=spf1 mx ?all")
    dns.txt("sel._domainkey.broken.example", "v=DKIM1; k=rsa; p=" + key512)
    dns.txt("_dmarc.broken.example", "v=DMARC1; p=none; pct=50")
    dns.mx("broken.example", [(10, "nowhere.broken.example")])
    dns.ptr(BAD_IP, "dyn.isp.example")
    dns.a("dyn.isp.example", "198.18.0.99")
    # toomany.example: 12 lookups (4 + 5 + 2 + 1) through includes, and +all.
    dns.txt("toomany.example", "v=spf1 include:i1.example include:i2.example a mx +all")
    dns.txt("i1.example", "v=spf1 a mx ptr exists:x.example include:i3.example -all")
    dns.txt("i2.example", "v=spf1 a mx -all")
    dns.txt("i3.example", "v=spf1 a -all")
    dns.mx("toomany.example", [(10, "mx.good.example")])
    # the blocklist lists BAD_IP with a reason.
    rev = ".".join(reversed(BAD_IP.split("."))) + "." + BL
    dns.a(rev, "127.0.0.2")
    dns.txt(rev, "Listed for spam, see https://lists.example/lookup")
    dns.name(BL)


@pytest.fixture
def fake_dns():
    dns = FakeDNS(ttl=1).start()
    zones(dns, _rsa_pub(2048), _rsa_pub(512))
    yield dns
    dns.stop()


def write_conf(tmp_path, dns, extra=None):
    conf = {
        "node": "integ", "spool": str(tmp_path / "spool"), "state": str(tmp_path / "state"),
        "listen": [{"address": "127.0.0.1:%d" % free_port()}],
        "upstreams": [{"name": "prov", "host": "smtp.provider.example", "port": 587,
                       "username": "relay@other.example"}],
        "routes": [{"name": "default", "upstreams": ["prov"]}],
        "dns": {"forward": [dns.forward], "timeout": "2s"},
        "checks": {"blocklists": [BL], "interval": 0},
    }
    if extra:
        conf.update(extra)
    pw = tmp_path / "upstream.pass"
    pw.write_text("secret\n")
    for u in conf["upstreams"]:
        if "username" in u:
            u["password_file"] = str(pw)
    path = tmp_path / "hikyaku.yaml"
    path.write_text(to_yaml(conf) + "\n")
    return str(path)


def check_dns(conf, *args, json_out=True):
    cmd = [hikyaku_bin(), "-c", conf, "check-dns"] + list(args) + (["--json"] if json_out else [])
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    out = r.stdout.decode()
    return r.returncode, (json.loads(out) if json_out and out.strip() else out), r.stderr.decode()


def by_key(report):
    return {f["key"]: f for f in report["findings"]}


def test_good_domain_all_ok(tmp_path, fake_dns):
    conf = write_conf(tmp_path, fake_dns)
    rc, rep, err = check_dns(conf, "good.example", "--selector", "sel", "--ip", GOOD_IP)
    assert rc == 0, (rep, err)
    f = by_key(rep)
    assert rep["domain"] == "good.example" and rep["ips"] == [GOOD_IP]
    for key in ("spf.present", "spf.lookups", "spf.all", "spf.ip." + GOOD_IP, "dkim.present",
                "dmarc.present", "dmarc.policy", "dmarc.rua", "mx.present", "mx.resolve",
                "ptr." + GOOD_IP, "mta_sts.present", "tls_rpt.present",
                "blocklist.%s.%s" % (BL, GOOD_IP)):
        assert f[key]["status"] == "ok", (key, f[key])
    assert "2048 bits" in f["dkim.present"]["text"]
    # The upstream authenticates as other.example: a warning that DMARC may not align.
    assert f["alignment.prov"]["status"] == "warning"
    assert "other.example" in f["alignment.prov"]["text"] and f["alignment.prov"]["fix"]
    assert rep["status"] == "warning"


def test_broken_domain_errors(tmp_path, fake_dns):
    conf = write_conf(tmp_path, fake_dns)
    rc, rep, err = check_dns(conf, "broken.example", "--selector", "sel", "--ip", BAD_IP)
    assert rc == 65, (rep, err)
    f = by_key(rep)
    assert f["spf.single"]["status"] == "error"
    assert "more than one" in f["spf.single"]["text"] and f["spf.single"]["fix"]
    assert f["dkim.key_size"]["status"] == "error" and "512 bits" in f["dkim.key_size"]["text"]
    assert f["dmarc.policy"]["status"] == "warning"
    assert f["dmarc.pct"]["status"] == "warning"
    assert f["dmarc.rua"]["status"] == "warning"
    assert f["mx.resolve"]["status"] == "error"
    assert f["ptr." + BAD_IP]["status"] == "warning"
    assert "does not resolve back" in f["ptr." + BAD_IP]["text"]
    assert f["mta_sts.present"]["status"] == "warning"
    assert f["tls_rpt.present"]["status"] == "warning"
    bl = f["blocklist.%s.%s" % (BL, BAD_IP)]
    assert bl["status"] == "error"
    assert "127.0.0.2" in bl["text"] and "Listed for spam" in bl["text"]
    assert rep["status"] == "error" and rep["counts"]["error"] >= 4


def test_lookup_limit_and_plus_all(tmp_path, fake_dns):
    conf = write_conf(tmp_path, fake_dns)
    rc, rep, err = check_dns(conf, "toomany.example")
    assert rc == 65, (rep, err)
    f = by_key(rep)
    assert f["spf.lookups"]["status"] == "error"
    assert "needs 12 DNS lookups" in f["spf.lookups"]["text"]
    assert f["spf.all"]["status"] == "warning" and "+all" in f["spf.all"]["text"]
    assert f["dkim.selector"]["status"] == "warning"


def test_missing_records_and_text_output(tmp_path, fake_dns):
    fake_dns.name("bare.example")
    conf = write_conf(tmp_path, fake_dns)
    rc, out, err = check_dns(conf, "bare.example", json_out=False)
    assert rc == 65, (out, err)
    assert "DNS checks for bare.example" in out
    assert "ERROR    spf        bare.example publishes no SPF record" in out
    assert "fix: Publish one TXT record at bare.example" in out
    assert "publishes no DMARC record" in out
    rc, out, err = check_dns(conf, "nonexistent.example", json_out=False)
    assert rc == 65 and "does not exist in DNS" in out


def test_provider_include_missing(tmp_path, fake_dns):
    conf = write_conf(tmp_path, fake_dns, {
        "upstreams": [{"name": "gw", "host": "smtp.gmail.com", "port": 587,
                       "username": "relay@good.example"}],
        "routes": [{"name": "default", "upstreams": ["gw"]}]})
    rc, rep, err = check_dns(conf, "good.example", "--selector", "sel")
    f = by_key(rep)
    assert f["spf.provider.gw"]["status"] == "error"
    assert "include:_spf.google.com" in f["spf.provider.gw"]["fix"]
    assert f["alignment.gw"]["status"] == "ok"
    fake_dns.remove("good.example", "TXT")
    fake_dns.txt("good.example", "v=spf1 include:_spf.google.com -all")
    fake_dns.txt("_spf.google.com", "v=spf1 ip4:203.0.113.0/24 ~all")
    time.sleep(1.5)  # the answers' TTL is 1 s
    rc, rep, err = check_dns(conf, "good.example", "--selector", "sel")
    assert by_key(rep)["spf.provider.gw"]["status"] == "ok", rep


def test_usage_errors(tmp_path, fake_dns):
    conf = write_conf(tmp_path, fake_dns)
    assert check_dns(conf, json_out=False)[0] == 64
    assert check_dns(conf, "good.example", "--ip", "not-an-ip", json_out=False)[0] == 64


# ---- the daemon: the API endpoint, scheduled re-checks, From alignment ------------------------

from test_api import request  # noqa: E402


def daemon_with_checks(daemon_factory, tmp_path, dns, checks, alerts=None):
    pw = tmp_path / "up.pass"
    pw.write_text("secret\n")
    extra = {
        "upstreams": [{"name": "prov", "host": "127.0.0.1", "port": free_port(), "tls": "starttls",
                       "verify": False, "username": "relay@other.example",
                       "password_file": str(pw)}],
        "routes": [{"name": "default", "upstreams": ["prov"]}],
        "dns": {"forward": [dns.forward], "timeout": "2s"},
        "checks": checks,
    }
    if alerts is not None:
        extra["alerts"] = alerts
    return daemon_factory(extra=extra)


def test_api_endpoint(daemon_factory, tmp_path, fake_dns):
    d = daemon_with_checks(daemon_factory, tmp_path, fake_dns, {"blocklists": [BL],
                                                                "interval": 0})
    r = request(d, "/api/v1/checks/dns?domain=broken.example&selector=sel&ip=" + BAD_IP,
                control=True)
    assert r.status == 200, r.body
    rep = json.loads(r.body)
    f = by_key(rep)
    assert rep["domain"] == "broken.example" and rep["status"] == "error"
    assert f["spf.single"]["status"] == "error"
    assert f["blocklist.%s.%s" % (BL, BAD_IP)]["status"] == "error"
    r = request(d, "/api/v1/checks/dns?domain=good.example&selector=sel&ip=" + GOOD_IP,
                control=True)
    assert r.status == 200 and by_key(json.loads(r.body))["spf.ip." + GOOD_IP]["status"] == "ok"
    for q in ("", "?domain=", "?domain=bad%20name.example", "?domain=good.example&ip=x",
              "?domain=good.example&other=1"):
        r = request(d, "/api/v1/checks/dns" + q, control=True)
        assert r.status == 400, (q, r.body)
        assert json.loads(r.body)["error"]["code"] == "bad_request"
    # The TCP API without a token: 401 as everywhere.
    assert request(d, "/api/v1/checks/dns?domain=good.example").status == 401


def test_scheduled_recheck_logs_worse(daemon_factory, tmp_path, fake_dns):
    d = daemon_with_checks(daemon_factory, tmp_path, fake_dns, {
        "interval": "1s", "domains": ["good.example"], "selector": "sel", "ips": [GOOD_IP],
        "blocklists": [BL]}, alerts={"rules": [{"name": "dns", "when": "dns_check"}]})
    d.wait_for_log(r'mod=diag event=check_done .*domain="good\.example" .*errors=0', deadline=15)
    assert "check_worse" not in d.log()
    rev = ".".join(reversed(GOOD_IP.split("."))) + "." + BL
    fake_dns.a(rev, "127.0.0.2")
    fake_dns.remove("good.example", "TXT")
    d.wait_for_log(r'mod=diag event=check_worse .*domain="good\.example" check=blocklist '
                   r".*status=error was=ok", deadline=15)
    d.wait_for_log(r'mod=diag event=check_worse .*domain="good\.example" check=spf '
                   r'key="spf\.present" status=error was=ok', deadline=15)
    line = [x for x in d.log().splitlines() if "check=blocklist" in x][0]
    assert line.startswith("level=warn ")
    # The dns_check alert rule: one alert for the domain, however many findings got worse.
    d.wait_for_log(r'mod=alert event=alert_open .*rule=dns .*group="good\.example"', deadline=10)
    time.sleep(2.5)
    opens = [x for x in d.log().splitlines()
             if "mod=alert" in x and "event=alert_open" in x and "rule=dns" in x]
    assert len(opens) == 1, opens


def test_from_unaligned_warning(daemon_factory, tmp_path, fake_dns):
    d = daemon_with_checks(daemon_factory, tmp_path, fake_dns, {"interval": 0})
    msg = {"from": "app@good.example", "to": ["someone@dest.example"], "subject": "hi",
           "text": "hello"}
    r = request(d, "/api/v1/messages", method="POST", control=True,
                headers={"Content-Type": "application/json"}, body=json.dumps(msg))
    assert r.status == 202, r.body
    body = json.loads(r.body)
    assert len(body["warnings"]) == 1
    assert "good.example does not align with other.example" in body["warnings"][0]
    d.wait_for_log(r'mod=api event=from_unaligned qid=%s from_domain="good\.example"' % body["id"])
    # An address of the account's organizational domain aligns: no warning.
    msg["from"] = "app@mail.other.example"
    r = request(d, "/api/v1/messages", method="POST", control=True,
                headers={"Content-Type": "application/json"}, body=json.dumps(msg))
    assert r.status == 202 and "warnings" not in json.loads(r.body)


def test_from_unaligned_warning_for_smtp_mail(daemon_factory, tmp_path, fake_dns):
    """SMTP mail: the From: header's domain (not the envelope sender) is what DMARC aligns."""
    d = daemon_with_checks(daemon_factory, tmp_path, fake_dns, {"interval": 0})
    data = ("From: \"Good, Inc.\" <app@good.example>\r\nTo: someone@dest.example\r\n"
            "Subject: hi\r\n\r\nhello\r\n")
    qid = submit(d, ["someone@dest.example"], data.encode(), mail_from="bounces@other.example")
    d.wait_for_log(r'mod=smtpd event=from_unaligned qid=%s from_domain="good\.example" '
                   r'why=".*good\.example does not align with other\.example' % qid)
    aligned = data.replace("app@good.example", "app@mail.other.example")
    qid2 = submit(d, ["someone@dest.example"], aligned.encode(), mail_from="app@good.example")
    d.wait_for_log(r"event=queued qid=%s" % qid2)
    time.sleep(0.3)
    assert "from_unaligned qid=%s" % qid2 not in d.log()
