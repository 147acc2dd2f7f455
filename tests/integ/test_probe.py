"""The connection test: `hikyaku test UPSTREAM` and POST /api/v1/upstreams/{name}/test against
fake upstreams failing at each step (docs/diagnostics.md "Connection test")."""

import json
import os
import re
import socket
import subprocess

import pytest

from conftest import delivery_daemon, free_port, hikyaku_bin, upstream_conf

PASSWORD = "s3cret-pass"


def run_test(d, name, *args, json_out=True, timeout=60):
    cmd = [hikyaku_bin(), "-c", d.config_path, "test", name] + list(args)
    if json_out:
        cmd.append("--json")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    rep = None
    if json_out and p.stdout.strip():
        rep = json.loads(p.stdout)
    return p, rep


def steps(rep):
    return [s["step"] for s in rep["steps"]]


def pw_file(d):
    path = os.path.join(d.dir, "up.pass")
    with open(path, "w") as f:
        f.write(PASSWORD + "\n")
    return path


def configured(daemon_factory, *ups):
    return delivery_daemon(daemon_factory, list(ups), start=False)


def with_auth(d, name, fake, tls_files, user="relay@example.com", trust=True):
    """AUTH needs TLS (the configuration refuses a username with tls: none): STARTTLS with the
    fake's certificate trusted."""
    fake.starttls = True
    for u in d.config["upstreams"]:
        if u["name"] == name:
            u["username"] = user
            u["password_file"] = pw_file(d)
            if trust:
                u.setdefault("ca_file", tls_files[0])
            if u.get("tls", "none") == "none":
                u["tls"] = "starttls"
                u["verify"] = True
    d.write_config()


def assert_failed(p, rep, step, diag_id=None):
    assert p.returncode == 69, (p.returncode, p.stderr, rep)
    assert rep["ok"] is False
    assert rep["failed_step"] == step, rep
    assert rep["steps"][-1]["step"] == step and rep["steps"][-1]["ok"] is False
    assert all(s["ok"] for s in rep["steps"][:-1]), rep["steps"]
    assert rep["diagnosis"]["cause"] and rep["diagnosis"]["fix"], rep["diagnosis"]
    if diag_id is not None:
        assert rep["diagnosis"]["id"] == diag_id, rep["diagnosis"]
    assert PASSWORD not in json.dumps(rep)


# ---- success ------------------------------------------------------------------------------------

def test_success_with_to_sends_traceable_message(daemon_factory, fake_smtp, tls_files):
    fake = fake_smtp("up")
    fake.auth = ("relay@example.com", PASSWORD)
    d = configured(daemon_factory, upstream_conf("primary", fake))
    with_auth(d, "primary", fake, tls_files)
    p, rep = run_test(d, "primary", "--to", "rcpt@example.net")
    assert p.returncode == 0, (p.stderr, rep)
    assert rep["ok"] is True and rep["failed_step"] is None and rep["diagnosis"] is None
    assert steps(rep) == ["dns", "connect", "greeting", "ehlo", "starttls", "ehlo", "auth",
                          "mail", "rcpt", "data", "quit"]
    assert rep["auth"] == {"mechanism": "PLAIN", "username": "relay@example.com"}
    assert "PIPELINING" in rep["extensions"]
    assert all(isinstance(s["duration_ms"], int) for s in rep["steps"])
    assert rep["rcpt_to"] == "rcpt@example.net" and rep["mail_from"] == "relay@example.com"
    assert re.fullmatch(r"[0-9A-F]{16}", rep["id"])
    msgs = fake.wait_messages(1)
    m = msgs[0]
    assert m.rcpts == ["rcpt@example.net"] and m.auth_user == "relay@example.com"
    subject = m.header("Subject")
    assert subject == rep["message"]["subject"]
    assert subject.startswith("hikyaku connection test %s " % rep["id"])
    assert m.header("Message-ID") == rep["message"]["message_id"]
    assert rep["id"] in m.header("Message-ID")
    assert "QUIT" in fake.verbs()


def test_success_without_to_resets_and_sends_nothing(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    d = configured(daemon_factory, upstream_conf("primary", fake))
    p, rep = run_test(d, "primary", "--from", "me@example.org")
    assert p.returncode == 0, (p.stderr, rep)
    assert steps(rep) == ["dns", "connect", "greeting", "ehlo", "mail", "rset", "quit"]
    assert rep["message"] is None and rep["auth"] is None
    fake.wait_command(r"^RSET")
    assert fake.transactions == 0 and not fake.messages
    assert any(c == "MAIL FROM:<me@example.org>" for _, c in fake.commands)


def test_text_output_lists_steps(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    d = configured(daemon_factory, upstream_conf("primary", fake))
    p, _ = run_test(d, "primary", json_out=False)
    assert p.returncode == 0, p.stderr
    for step in ("dns", "connect", "greeting", "ehlo", "mail", "rset"):
        assert re.search(r"(?m)^\s+ok\s+%s\s" % step, p.stdout), p.stdout
    assert "All steps passed" in p.stdout
    assert "not running" in p.stderr


# ---- failures, one per step ---------------------------------------------------------------------

def test_connection_refused(daemon_factory):
    d = configured(daemon_factory, upstream_conf("primary", port=free_port()))
    p, rep = run_test(d, "primary")
    assert_failed(p, rep, "connect", "connection-refused")
    assert rep["address"] == "127.0.0.1"


def test_dns_failure(daemon_factory, fake_dns):
    d = configured(daemon_factory, upstream_conf("primary", port=587, host="nowhere.invalid"))
    d.config["dns"] = {"forward": [fake_dns.forward]}
    d.write_config()
    p, rep = run_test(d, "primary")
    assert p.returncode == 69, (p.stderr, rep)
    assert rep["failed_step"] == "dns", rep
    assert rep["diagnosis"]["explain_id"] in ("local-dns-nxdomain", "local-dns-temp")


def test_greeting_554(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    fake.greeting = (554, "5.7.1 no SMTP service for you")
    d = configured(daemon_factory, upstream_conf("primary", fake))
    p, rep = run_test(d, "primary")
    assert_failed(p, rep, "greeting")
    assert rep["steps"][-1]["reply"]["code"] == 554
    assert "no SMTP service" in rep["steps"][-1]["reply"]["text"]


def test_ehlo_refused(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    fake.replies["EHLO"] = (550, "5.7.1 go away")
    d = configured(daemon_factory, upstream_conf("primary", fake))
    p, rep = run_test(d, "primary")
    assert_failed(p, rep, "ehlo")
    assert rep["steps"][-1]["reply"]["enhanced"] == "5.7.1"


def test_starttls_not_offered(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    d = configured(daemon_factory, upstream_conf("primary", fake, tls="starttls", verify=True))
    p, rep = run_test(d, "primary")
    assert_failed(p, rep, "starttls", "starttls-not-offered")
    assert "STARTTLS" not in [c.split()[0] for _, c in fake.commands]


def test_starttls_self_signed_certificate(daemon_factory, fake_smtp, tls_files):
    fake = fake_smtp("up")
    fake.starttls = True
    fake.auth = ("relay@example.com", PASSWORD)
    d = configured(daemon_factory, upstream_conf("primary", fake, tls="starttls", verify=True))
    with_auth(d, "primary", fake, tls_files, trust=False)
    p, rep = run_test(d, "primary")
    assert_failed(p, rep, "starttls", "certificate-self-signed")
    cert = rep["certificate"]
    assert "CN=localhost" in cert["subject"] and cert["verified"] is False
    assert cert["chain_ok"] is False and cert["host_match"] is True
    assert 0 <= cert["days_left"] <= 2
    assert fake.auth_attempts == 0, "no password after a bad certificate"
    assert "ca_file" in rep["diagnosis"]["fix"]


def test_starttls_verified_with_ca_file(daemon_factory, fake_smtp, tls_files):
    fake = fake_smtp("up")
    fake.starttls = True
    d = configured(daemon_factory, upstream_conf("primary", fake, tls="starttls", verify=True,
                                                 ca_file=tls_files[0]))
    p, rep = run_test(d, "primary", "--to", "a@example.net")
    assert p.returncode == 0, (p.stderr, rep)
    assert steps(rep)[:6] == ["dns", "connect", "greeting", "ehlo", "starttls", "ehlo"]
    assert rep["certificate"]["verified"] is True and rep["certificate"]["protocol"]
    assert fake.wait_messages(1)[0].tls is True


def test_certificate_wrong_host(daemon_factory, fake_smtp, tls_files):
    fake = fake_smtp("up", host="127.0.0.2")
    fake.starttls = True
    d = configured(daemon_factory, upstream_conf("primary", fake, host="127.0.0.2",
                                                 tls="starttls", verify=True,
                                                 ca_file=tls_files[0]))
    p, rep = run_test(d, "primary")
    assert_failed(p, rep, "starttls", "certificate-host-mismatch")
    assert rep["certificate"]["chain_ok"] is True and rep["certificate"]["host_match"] is False


def test_verify_false_reports_but_passes(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    fake.starttls = True
    d = configured(daemon_factory, upstream_conf("primary", fake, tls="starttls", verify=False))
    p, rep = run_test(d, "primary")
    assert p.returncode == 0, (p.stderr, rep)
    assert rep["certificate"]["verified"] is False and rep["certificate"]["error"]


def test_implicit_tls_against_plaintext_port(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    d = configured(daemon_factory, upstream_conf("primary", fake, tls="implicit", verify=False))
    p, rep = run_test(d, "primary")
    assert_failed(p, rep, "tls", "wrong-port-for-implicit-tls")
    assert "tls: starttls" in rep["diagnosis"]["fix"]


def test_starttls_against_implicit_tls_port(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    fake.implicit_tls = True
    d = configured(daemon_factory, upstream_conf("primary", fake, tls="starttls", verify=False))
    p, rep = run_test(d, "primary", "--timeout", "1s")
    assert_failed(p, rep, "greeting", "wrong-port-for-starttls")
    assert "tls: implicit" in rep["diagnosis"]["fix"]


def test_implicit_tls_success(daemon_factory, fake_smtp, tls_files):
    fake = fake_smtp("up")
    fake.implicit_tls = True
    d = configured(daemon_factory, upstream_conf("primary", fake, tls="implicit", verify=True,
                                                 ca_file=tls_files[0]))
    p, rep = run_test(d, "primary")
    assert p.returncode == 0, (p.stderr, rep)
    assert steps(rep)[:4] == ["dns", "connect", "tls", "greeting"]


@pytest.mark.parametrize("reply,diag", [
    ((535, "5.7.8 Authentication credentials invalid"), "wrong-password"),
    ((534, "5.7.9 Application-specific password required. Learn more at https://x"),
     "app-password-required"),
])
def test_auth_refused(daemon_factory, fake_smtp, tls_files, reply, diag):
    fake = fake_smtp("up")
    fake.auth_reply = reply
    d = configured(daemon_factory, upstream_conf("primary", fake))
    with_auth(d, "primary", fake, tls_files)
    p, rep = run_test(d, "primary")
    assert_failed(p, rep, "auth", diag)
    assert rep["steps"][-1]["reply"]["code"] == reply[0]


def test_unreadable_password_file(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    fake.auth = ("u@example.com", PASSWORD)
    fake.starttls = True
    d = configured(daemon_factory, upstream_conf("primary", fake, username="u@example.com",
                                                 password_file="/nonexistent/pass",
                                                 tls="starttls", verify=False))
    p, rep = run_test(d, "primary")
    assert_failed(p, rep, "auth", "password-file-unreadable")


def test_rcpt_refused(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    fake.rcpt_replies["nobody@example.net"] = (550, "5.1.1 no such user")
    d = configured(daemon_factory, upstream_conf("primary", fake))
    p, rep = run_test(d, "primary", "--to", "nobody@example.net")
    assert_failed(p, rep, "rcpt")
    assert rep["diagnosis"]["explain_id"] == rep["diagnosis"]["id"]
    assert rep["diagnosis"]["culprit"] == "recipient"


def test_data_refused(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    fake.dot_reply = (554, "5.7.1 message refused")
    d = configured(daemon_factory, upstream_conf("primary", fake))
    p, rep = run_test(d, "primary", "--to", "a@example.net")
    assert_failed(p, rep, "data")
    assert fake.transactions == 1 and not fake.messages


# ---- usage and exit codes ------------------------------------------------------------------------

def test_unknown_upstream_and_usage(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    d = configured(daemon_factory, upstream_conf("primary", fake))
    p, _ = run_test(d, "nosuch", json_out=False)
    assert p.returncode == 67 and "primary" in p.stderr
    p, _ = run_test(d, "primary", "--to", "bad address", json_out=False)
    assert p.returncode == 64
    p, _ = run_test(d, "primary", "--bogus", "x", json_out=False)
    assert p.returncode == 64
    p = subprocess.run([hikyaku_bin(), "-c", d.config_path, "test"], capture_output=True,
                       timeout=30)
    assert p.returncode == 64


# ---- through the daemon ---------------------------------------------------------------------------

def unix_http(path, method, target, body=None, timeout=60):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    data = json.dumps(body).encode() if body is not None else b""
    s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
               "application/json\r\nContent-Length: %d\r\n\r\n" % (method, target, len(data))
               ).encode() + data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    head, _, payload = out.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, json.loads(payload) if payload else None


def test_api_endpoint_and_cli_through_daemon(daemon_factory, fake_smtp):
    fake = fake_smtp("up")
    d = delivery_daemon(daemon_factory, [upstream_conf("primary", fake)])
    st, rep = unix_http(d.control_socket, "POST", "/api/v1/upstreams/primary/test",
                        {"to": "rcpt@example.net", "from": "me@example.org"})
    assert st == 200, rep
    assert rep["ok"] is True and rep["upstream"] == "primary"
    assert steps(rep)[-3:] == ["rcpt", "data", "quit"]
    m = fake.wait_messages(1)[0]
    assert m.header("Subject") == rep["message"]["subject"]
    assert m.mail_from == "me@example.org"
    # No body at all: MAIL then RSET.
    st, rep = unix_http(d.control_socket, "POST", "/api/v1/upstreams/primary/test")
    assert st == 200 and steps(rep)[-2:] == ["rset", "quit"]
    st, rep = unix_http(d.control_socket, "POST", "/api/v1/upstreams/nosuch/test", {})
    assert st == 404 and rep["error"]["code"] == "unknown_upstream"
    st, rep = unix_http(d.control_socket, "POST", "/api/v1/upstreams/primary/test",
                        {"to": "a b@example.net"})
    assert st == 400
    st, rep = unix_http(d.control_socket, "POST", "/api/v1/upstreams/primary/test",
                        {"color": "red"})
    assert st == 400
    # The CLI uses the daemon when it runs: the daemon logs the probe, no fallback note.
    fake.greeting = (554, "5.7.1 not you")
    p, rep = run_test(d, "primary")
    assert_failed(p, rep, "greeting")
    assert "not running" not in p.stderr
    d.wait_for_log(r"mod=probe event=step_failed .*step=greeting")
