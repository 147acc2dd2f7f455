"""hikyaku announce (docs/announce.md): outage and recovery notices from a template to every row of
a CSV file, through the daemon's control socket, with --preview, --route, bad rows, missing
variables and reruns that send nothing twice.
"""

import csv
import email
import email.policy
import json
import os
import subprocess

from conftest import delivery_daemon, hikyaku_bin, upstream_conf, wait_until
from test_api import assert_error, request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATES = os.path.join(ROOT, "etc", "templates")
FROM = "Ops <ops@example.com>"
OUTAGE_VARS = ["--var", "service=Mail", "--var", "since=09:00 UTC", "--var",
               "expected=12:00 UTC", "--var", "backup_address=backup@example.org",
               "--var", "company=Example Corp"]


def announce(d, *args, env=None):
    """Run `hikyaku -c CONFIG announce args...`; (exit code, stdout, stderr)."""
    e = dict(os.environ, HIKYAKU_TEMPLATES=TEMPLATES)
    e.update(env or {})
    r = subprocess.run([hikyaku_bin(), "-c", d.config_path, "announce"] + list(args),
                       capture_output=True, timeout=60, stdin=subprocess.DEVNULL, env=e)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def write_csv(path, rows, header=("address", "name")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow(r)
    return str(path)


def recipients(n):
    names = ["山田 太郎", "Lee, Ann", 'Bob "B" Smith', "Zoë"]
    return [("user%02d@dest.example" % i, "%s %d" % (names[i % len(names)], i))
            for i in range(n)]


def parsed(m):
    return email.message_from_bytes(bytes(m.data), policy=email.policy.default)


def logged_count(d):
    r = request(d, "/api/v1/messages?limit=100", control=True)
    assert r.status == 200, r
    return len(r.json["messages"])


def two_route_daemon(daemon_factory, fake_smtp):
    primary, backup = fake_smtp("primary"), fake_smtp("backup")
    ups = [upstream_conf("primary", primary), upstream_conf("backup", backup)]
    routes = [{"name": "default", "upstreams": ["primary", "backup"]},
              {"name": "backup-first", "upstreams": ["backup", "primary"]}]
    d = delivery_daemon(daemon_factory, ups, extra={"routes": routes})
    return d, primary, backup


def test_preview_english_and_japanese(daemon_factory, fake_smtp, tmp_path):
    d, primary, backup = two_route_daemon(daemon_factory, fake_smtp)
    to = write_csv(tmp_path / "r.csv", recipients(3))
    rc, out, err = announce(d, "--template", "outage", "--to", to, "--from", FROM,
                            "--preview", *OUTAGE_VARS)
    assert rc == 0, err
    assert "To: 山田 太郎 0 <user00@dest.example>" in out
    assert "Subject: [Example Corp] Mail is currently unavailable" in out
    assert "Dear 山田 太郎 0," in out and "backup@example.org" in out
    assert "3 messages would be sent" in out and "nothing was sent" in out

    rc, out, err = announce(d, "--template", "outage", "--lang", "ja", "--to", to, "--from",
                            FROM, "--preview", "--json", *OUTAGE_VARS)
    assert rc == 0, err
    j = json.loads(out)
    assert j["preview"] is True and j["count"] == 3
    assert j["template"].endswith("outage.ja.txt")
    m = j["message"]
    assert m["subject"] == "【Example Corp】Mailの障害発生のお知らせ"
    assert m["text"].startswith("山田 太郎 0 様\n")
    assert "12:00 UTC頃を見込んでおります" in m["text"]
    assert m["to"] == {"address": "user00@dest.example", "name": "山田 太郎 0"}

    rc, out, err = announce(d, "--template", "recovery", "--lang", "ja", "--to", to,
                            "--preview", "--var", "service=Mail", "--var", "since=9時",
                            "--var", "restored=12時", "--var", "company=Example")
    assert rc == 0, err
    assert "復旧いたしました" in out
    assert logged_count(d) == 0
    assert primary.messages == [] and backup.messages == []


def test_send_to_twenty_once_each_then_rerun_sends_nothing(daemon_factory, fake_smtp,
                                                            tmp_path):
    d, primary, backup = two_route_daemon(daemon_factory, fake_smtp)
    rows = recipients(20)
    to = write_csv(tmp_path / "r.csv", rows)
    rc, out, err = announce(d, "--template", "outage", "--lang", "ja", "--to", to, "--from",
                            FROM, "--rate", "200/s", *OUTAGE_VARS)
    assert rc == 0, (out, err)
    assert "[20/20]" in out and "done: 20 queued" in out
    # The default route may spill to its second upstream under load: count both.
    wait_until(lambda: len(primary.messages) + len(backup.messages) >= 20, 30.0,
               "20 messages at the fake upstreams")
    got = list(primary.messages) + list(backup.messages)
    by_rcpt = {}
    for m in got:
        for r in m.rcpts:
            by_rcpt.setdefault(r, []).append(m)
    assert sorted(by_rcpt) == sorted(a for a, _ in rows)
    for addr, name in rows:
        assert len(by_rcpt[addr]) == 1, addr
        msg = parsed(by_rcpt[addr][0])
        assert msg["subject"] == "【Example Corp】Mailの障害発生のお知らせ"
        assert msg["to"].addresses[0].display_name == name
        assert msg["to"].addresses[0].addr_spec == addr
        body = msg.get_content().replace("\r\n", "\n")
        assert body.startswith(name + " 様\n"), body[:80]
        assert "backup@example.org" in body

    rc, out, err = announce(d, "--template", "outage", "--lang", "ja", "--to", to, "--from",
                            FROM, "--rate", "200/s", "--json", *OUTAGE_VARS)
    assert rc == 0, (out, err)
    j = json.loads(out)
    assert j["queued"] == 0 and j["sent_earlier"] == 20 and j["total"] == 20
    assert all(m["status"] == "sent_earlier" for m in j["messages"])
    assert logged_count(d) == 20
    q = request(d, "/api/v1/queue", control=True).json
    assert q["counts"]["queued"] + q["counts"]["deferred"] == 0, q
    assert len(primary.messages) + len(backup.messages) == 20

    # A changed variable is still the same notice to the same people: not sent again.
    rc, out, err = announce(d, "--template", "outage", "--lang", "ja", "--to", to, "--from",
                            FROM, *(OUTAGE_VARS + ["--var", "expected=15:00 UTC"]))
    assert rc == 0, (out, err)
    assert "already sent within 24 h with other text" in out
    assert logged_count(d) == 20


def test_route_picks_the_second_upstream(daemon_factory, fake_smtp, tmp_path):
    d, primary, backup = two_route_daemon(daemon_factory, fake_smtp)
    to = write_csv(tmp_path / "r.csv", recipients(3))
    rc, out, err = announce(d, "--template", "recovery", "--to", to, "--from", FROM,
                            "--route", "backup-first", "--var", "service=Mail", "--var",
                            "since=09:00", "--var", "restored=12:00", "--var", "company=X")
    assert rc == 0, (out, err)
    got = backup.wait_messages(3, deadline=20.0)
    assert sorted(r for m in got for r in m.rcpts) == ["user%02d@dest.example" % i
                                                       for i in range(3)]
    assert parsed(got[0])["subject"] == "[X] Mail has been restored"
    assert primary.messages == []

    rc, out, err = announce(d, "--template", "recovery", "--to", to, "--route", "nope",
                            "--preview", "--var", "service=Mail", "--var", "since=1",
                            "--var", "restored=2", "--var", "company=X")
    assert rc == 65 and "--route nope: no such route" in err and "backup-first" in err


def test_api_route_field(daemon_factory, fake_smtp):
    d, primary, backup = two_route_daemon(daemon_factory, fake_smtp)
    body = {"from": "a@example.com", "to": ["r@dest.example"], "subject": "s", "text": "t"}
    r = request(d, "/api/v1/messages", method="POST", control=True,
                headers={"Content-Type": "application/json"},
                body=json.dumps(dict(body, route="nope")))
    assert_error(r, 422, "unknown_route")
    r = request(d, "/api/v1/messages", method="POST", control=True,
                headers={"Content-Type": "application/json"},
                body=json.dumps(dict(body, route="backup-first")))
    assert r.status == 202, r
    backup.wait_messages(1, deadline=20.0)
    assert primary.messages == []


def test_missing_variable_and_bad_rows_send_nothing(daemon_factory, fake_smtp, tmp_path):
    d, primary, backup = two_route_daemon(daemon_factory, fake_smtp)
    to = write_csv(tmp_path / "r.csv", recipients(4))
    vars_without_expected = []
    for v in OUTAGE_VARS[1::2]:
        if not v.startswith("expected="):
            vars_without_expected += ["--var", v]
    rc, out, err = announce(d, "--template", "outage", "--to", to, "--from", FROM,
                            *vars_without_expected)
    assert rc == 65, (out, err)
    assert "uses {{expected}}, which has no value" in err
    assert "--var expected=VALUE" in err
    assert "the template uses: company, service, name, since, expected, backup_address" in err
    assert "nothing was sent" in err

    bad = tmp_path / "bad.csv"
    bad.write_text("address,name\n"
                   "ok1@dest.example,One\n"
                   "ok2@dest.example,\"Two\"x\n"
                   "not-an-address,Three\n"
                   "ok4@dest.example\n"
                   "ok1@dest.example,Again\n"
                   "ok5@dest.example,Five\n", encoding="utf-8")
    rc, out, err = announce(d, "--template", "outage", "--to", str(bad), "--from", FROM,
                            *OUTAGE_VARS)
    assert rc == 65, (out, err)
    assert "bad.csv:3: text after a closing quote" in err
    assert "bad.csv:4: address \"not-an-address\" is not local@domain" in err
    assert "bad.csv:5: 1 field, the header has 2" in err
    assert "bad.csv:6: ok1@dest.example is already on line 2" in err
    assert "4 bad rows" in err and "nothing was sent" in err and "--skip-bad" in err
    assert logged_count(d) == 0

    rc, out, err = announce(d, "--template", "outage", "--to", str(bad), "--from", FROM,
                            "--skip-bad", *OUTAGE_VARS)
    assert rc == 0, (out, err)
    assert "done: 2 queued" in out and "4 bad rows skipped" in out
    wait_until(lambda: len(primary.messages) + len(backup.messages) >= 2, 20.0,
               "2 messages at the fake upstreams")
    got = list(primary.messages) + list(backup.messages)
    assert sorted(r for m in got for r in m.rcpts) == ["ok1@dest.example", "ok5@dest.example"]


def test_stop_writes_the_rest_and_says_how_to_resume(daemon_factory, fake_smtp, tmp_path):
    d, primary, backup = two_route_daemon(daemon_factory, fake_smtp)
    to = write_csv(tmp_path / "list.csv", recipients(5))
    d.stop()
    rc, out, err = announce(d, "--template", "outage", "--to", to, "--from", FROM,
                            *OUTAGE_VARS)
    assert rc == 69, (out, err)
    assert "stopped at" in err and "list.csv:2" in err
    assert "0 of 5 messages were submitted" in err
    rest = tmp_path / "list.rest.csv"
    assert "resume with:" in err and "--to '%s'" % rest in err
    with open(rest, newline="", encoding="utf-8") as f:
        assert [tuple(r) for r in csv.reader(f)] == [("address", "name")] + recipients(5)
