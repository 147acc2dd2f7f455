"""The reply explainer everywhere a reply is shown (DESIGN.md 10, docs/explain.md): `hikyaku
explain`, the configuration's `explain:` file (strict, FILE:LINE:COL, overrides built-in rows),
the "explanation" of each attempt in the API's message detail, and `hikyaku show`."""

import json
import os
import subprocess

from conftest import delivery_daemon, hikyaku_bin, submit, upstream_conf, wait_until
from test_api import request

GOOD = "good@dest.example"
BAD = "nobody@dest.example"

GMAIL_DMARC = ("550-5.7.26 Unauthenticated email from example.com is not accepted due to"
               " domain's\n"
               "550-5.7.26 DMARC policy. Please contact the administrator of example.com"
               " domain.\n"
               "550 5.7.26  https://support.google.com/mail/answer/2451690 - gsmtp")

OVERRIDE = """\
# Our own words for an unknown user, and a row of our own.
entries:
  - id: our-unknown-user
    code: 5xx
    enhanced: "5.1.1"
    culprit: recipient
    cause: "The address is not known at the receiving side (our wording)."
    fix: "Ask the customer for a new address in the CRM."
    flags: [suppress]
  - id: acme-hourly-quota
    code: 451
    pattern: "acme hourly quota"
    culprit: provider_limit
    cause: "The Acme relay's hourly quota is used up."
    fix: "Lower per_hour for the acme upstream."
    flags: [retry_helps, other_upstream_helps, quota]
"""


def run(*args, config="/nonexistent/hikyaku.yaml", stdin=None):
    r = subprocess.run([hikyaku_bin(), "-c", config] + list(args), capture_output=True,
                       timeout=20, input=stdin)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def explain_json(reply, config="/nonexistent/hikyaku.yaml"):
    rc, out, err = run("explain", "--json", reply, config=config)
    assert rc == 0, (rc, out, err)
    return json.loads(out)


# ---- hikyaku explain ------------------------------------------------------------------------

def test_explain_multiline_gmail_dmarc():
    rc, out, err = run("explain", GMAIL_DMARC)
    assert rc == 0, (out, err)
    assert "entry:    gmail-dmarc (built-in)" in out, out
    assert "culprit:  sender_config" in out, out
    assert "DKIM" in out and "DMARC" in out, out
    assert "retry helps:          no" in out, out
    assert "other upstream helps: no" in out, out


def test_explain_json_fields():
    j = explain_json("550 5.4.5 Daily user sending limit exceeded. For more information on"
                     " Gmail sending limits go to https://support.google.com/a/answer/166852")
    assert j["reply"] == {"code": 550, "enhanced": "5.4.5",
                          "text": j["reply"]["text"]}, j
    x = j["explanation"]
    assert x["id"] == "gmail-daily-quota", x
    assert x["culprit"] == "provider_limit"
    assert x["quota"] is True and x["retry_helps"] is True and x["other_upstream_helps"] is True
    assert x["suppress"] is False and x["source"] == "built-in"
    assert x["cause"] and x["fix"]


def test_explain_without_enhanced_code_and_as_several_arguments():
    rc, out, err = run("explain", "--json", "550", "No", "such", "user", "here")
    assert rc == 0, (out, err)
    j = json.loads(out)
    assert j["reply"]["enhanced"] is None and j["reply"]["text"] == "No such user here", j
    assert j["explanation"]["id"] == "no-such-user-text"
    assert j["explanation"]["suppress"] is True


def test_explain_from_stdin_with_pasting_noise():
    text = b"\n   452-4.2.2 The email account that you tried to reach is over quota.\r\n" \
           b"   452 4.2.2 Please direct the recipient to https://support.google.com/\r\n\n"
    rc, out, err = run("explain", "-", stdin=text)
    assert rc == 0, (out, err)
    assert "entry:    mailbox-full (built-in)" in out, out
    assert "retry helps:          yes" in out, out


def test_explain_known_replies():
    cases = {
        "550 5.1.1 <x@example.net>: Recipient address rejected: User unknown in local"
        " recipient table": "user-unknown-text",
        "552 5.3.4 Your message exceeded the size limit": "message-too-big",
        "451 4.7.1 Please try again later": "greylisted-text",
        "554 5.7.1 <x@example.net>: Relay access denied": "relay-denied",
        "530 5.7.0 Must issue a STARTTLS command first": "starttls-required",
        "535 5.7.8 Error: authentication failed: authentication failure": "auth-failed",
        "534 5.7.9 Authentication mechanism is too weak": "auth-mechanism-weak",
        "454 4.7.0 Temporary authentication failure": "auth-temp-failure",
        "421 4.7.28 Our system has detected an unusual rate of unsolicited mail":
            "gmail-rate-limited",
        "452 4.5.3 Error: too many recipients": "microsoft-too-many-recipients",
        "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.":
            "microsoft-ip-blocked",
        "554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using"
        " zen.spamhaus.org": "spamhaus-listed",
        "451 4.4.316 Connection refused [Message=Socket error code 10061]": "connect-refused",
        "454 4.7.5 Server certificate not verified": "cert-not-verified",
    }
    for reply, want in cases.items():
        assert explain_json(reply)["explanation"]["id"] == want, reply


def test_explain_exit_codes():
    rc, out, err = run("explain", "this is not a reply")
    assert rc == 65, (rc, out, err)
    assert "not an SMTP reply" in err, err
    rc, out, err = run("explain", "550-5.1.1 first\n550 5.1.1 last\n550 5.1.1 again")
    assert rc == 65, (rc, out, err)
    rc, out, err = run("explain", "250 2.0.0 Ok: queued")
    assert rc == 1, (rc, out, err)
    assert "nothing to explain" in out, out
    rc, out, err = run("explain", "--json", "250 2.0.0 Ok")
    assert rc == 1 and json.loads(out)["explanation"] is None, out
    rc, out, err = run("explain")
    assert rc == 64, (rc, out, err)


# ---- the explain: file ------------------------------------------------------------------------

def bounce_daemon(daemon_factory, fake_smtp, tmp_path, explain_text=OVERRIDE):
    path = tmp_path / "explain.yaml"
    path.write_text(explain_text)
    up = fake_smtp("primary")
    up.rcpt_replies[BAD] = (550, "5.1.1 <%s>: Recipient address rejected: mailbox gone" % BAD)
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", up)],
                        extra={"explain": str(path)})
    return d, up, path


def test_explain_file_overrides_builtin_in_cli(daemon_factory, fake_smtp, tmp_path):
    d, _, path = bounce_daemon(daemon_factory, fake_smtp, tmp_path)
    j = explain_json("550 5.1.1 Mailbox does not exist", config=d.config_path)
    assert j["explanation"]["id"] == "our-unknown-user", j
    assert j["explanation"]["source"] == str(path)
    assert "CRM" in j["explanation"]["fix"]
    j = explain_json("451 Acme hourly quota reached", config=d.config_path)
    assert j["explanation"]["id"] == "acme-hourly-quota" and j["explanation"]["quota"], j
    # Rows the file does not touch are still the built-in ones.
    assert explain_json(GMAIL_DMARC, config=d.config_path)["explanation"]["id"] == "gmail-dmarc"
    # The same reply without the configuration: the built-in row.
    assert explain_json("550 5.1.1 Mailbox does not exist")["explanation"]["id"] == \
        "user-unknown"


def _attempts_of(d, qid, rcpt):
    def get():
        r = request(d, "/api/v1/messages/" + qid.lower(), control=True)
        if r.status != 200:
            return None
        m = r.json
        att = [a for a in m["attempts"] if a.get("rcpt") in (rcpt, None, "")]
        done = [r for r in m["recipients"] if r["address"] == rcpt and r["status"] != "queued"]
        return m if att and done else None
    return wait_until(get, 10.0, "attempts of %s for %s" % (qid, rcpt))


def test_api_detail_explains_a_bounce_with_the_file_row(daemon_factory, fake_smtp, tmp_path):
    d, up, _ = bounce_daemon(daemon_factory, fake_smtp, tmp_path)
    qid = submit(d, [GOOD, BAD])
    up.wait_messages(1)
    m = _attempts_of(d, qid, BAD)
    bad = [a for a in m["attempts"] if a.get("rcpt") == BAD]
    assert bad, m["attempts"]
    a = bad[-1]
    assert a["code"] == 550 and a["enhanced"] == "5.1.1", a
    x = a["explanation"]
    assert x == {"id": "our-unknown-user",
                 "cause": "The address is not known at the receiving side (our wording).",
                 "culprit": "recipient", "fix": "Ask the customer for a new address in the CRM.",
                 "retry_helps": False, "other_upstream_helps": False}, x
    good = [a for a in m["attempts"] if a.get("rcpt") == GOOD]
    assert good and all("explanation" not in a for a in good if a["code"] == 250), good

    # hikyaku show prints why: and fix: under the failed attempt, not under the sent one.
    r = subprocess.run([hikyaku_bin(), "-c", d.config_path, "show", qid], capture_output=True,
                       timeout=20)
    out = r.stdout.decode()
    assert r.returncode == 0, (out, r.stderr)
    assert "    why: The address is not known at the receiving side (our wording)." in out, out
    assert "    fix: Ask the customer for a new address in the CRM." in out, out
    assert out.count("    why: ") == 1, out


def test_api_detail_explains_with_builtin_rows(daemon_factory, fake_smtp):
    up = fake_smtp("primary")
    up.rcpt_replies[BAD] = (550, "5.1.1 The email account that you tried to reach does not"
                                 " exist.")
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", up)])
    qid = submit(d, [BAD])
    m = _attempts_of(d, qid, BAD)
    a = [a for a in m["attempts"] if a.get("rcpt") == BAD][-1]
    assert a["explanation"]["id"] == "gmail-no-such-user", a
    assert a["explanation"]["culprit"] == "recipient"


def test_broken_explain_file_is_rejected_by_check(tmp_path, daemon_factory, fake_smtp):
    d, _, path = bounce_daemon(daemon_factory, fake_smtp, tmp_path)
    d.stop()
    path.write_text(OVERRIDE.replace("culprit: provider_limit", "culprit: acme")
                    .replace("code: 5xx", "code: 6xx"))
    r = subprocess.run([hikyaku_bin(), "serve", "--check", "-c", d.config_path],
                       capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 78, out
    assert "%s:4:11: entries[0].code: \"6xx\" is not a failure reply code" % path in out, out
    assert "%s:13:14: entries[1].culprit: \"acme\" is not a culprit" % path in out, out
    # A missing file is reported at the key in the configuration.
    os.unlink(str(path))
    r = subprocess.run([hikyaku_bin(), "serve", "--check", "-c", d.config_path],
                       capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 78, out
    assert d.config_path + ":" in out and "explain: cannot read" in out, out
    # explain falls back to the built-in table, with a warning.
    rc, o, e = run("explain", "550 5.1.1 Mailbox does not exist", config=d.config_path)
    assert rc == 0 and "user-unknown (built-in)" in o, (o, e)
    assert "warning" in e, e


def test_sighup_reloads_the_explain_file(daemon_factory, fake_smtp, tmp_path):
    import signal
    d, up, path = bounce_daemon(daemon_factory, fake_smtp, tmp_path)
    path.write_text(OVERRIDE.replace("flags: [suppress]\n", "flags: [suppress]\n  - id: bad\n"))
    since = d.log_size()
    d.signal(signal.SIGHUP)
    d.wait_for_log(r"reload_failed", since=since)
    want = str(path) + ":10:5: entries[1]: missing required key"
    assert want in d.log(), d.log_tail()
    assert d.running()
    path.write_text(OVERRIDE.replace("(our wording)", "(reloaded wording)"))
    since = d.log_size()
    d.signal(signal.SIGHUP)
    d.wait_for_log(r"reload_done", since=since)
    # The new rows reach the API's explanations.
    qid = submit(d, [BAD])
    m = _attempts_of(d, qid, BAD)
    a = [a for a in m["attempts"] if a.get("rcpt") == BAD][-1]
    assert a["explanation"]["cause"] == \
        "The address is not known at the receiving side (reloaded wording).", a
