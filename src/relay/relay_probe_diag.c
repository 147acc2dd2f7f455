/*
 * relay_probe_diag.c - advice for a failed connection test step (relay_probe_diagnose). Pure:
 * the failure in, cause and fix out. Probe-specific rows come first because the probe knows
 * what the delivery path does not: which step failed, the configured port and TLS mode. Replies
 * that no probe row names go to the reply explainer (proto/explain.c), so the same words are
 * used here, in `hikyaku explain`, in the API and in alerts.
 */
#include <stdio.h>
#include <string.h>

#include "relay_probe.h"
#include "../proto/explain.h"
#include "../util/poison.h"

static const char *const relay_probe_step_names[RELAY_PROBE_STEP_COUNT] = {
	[RELAY_PROBE_DNS] = "dns",
	[RELAY_PROBE_CONNECT] = "connect",
	[RELAY_PROBE_TLS] = "tls",
	[RELAY_PROBE_GREETING] = "greeting",
	[RELAY_PROBE_EHLO] = "ehlo",
	[RELAY_PROBE_STARTTLS] = "starttls",
	[RELAY_PROBE_AUTH] = "auth",
	[RELAY_PROBE_MAIL] = "mail",
	[RELAY_PROBE_RCPT] = "rcpt",
	[RELAY_PROBE_RSET] = "rset",
	[RELAY_PROBE_DATA] = "data",
	[RELAY_PROBE_QUIT] = "quit",
};

const char *
relay_probe_step_name(enum relay_probe_step_kind k)
{
	return (unsigned)k < RELAY_PROBE_STEP_COUNT ? relay_probe_step_names[k] : "unknown";
}

const char *
relay_probe_tls_name(enum conf_tls t)
{
	switch (t) {
	case CONF_TLS_NONE:
		return "none";
	case CONF_TLS_STARTTLS:
		return "starttls";
	case CONF_TLS_IMPLICIT:
		return "implicit";
	}
	return "unknown";
}

bool
relay_probe_addr_is_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;
	bool at = false;

	if (s == NULL || *s == '\0')
		return false;
	for (; *p; p++, n++) {
		/* Bytes that would end the command or the address, or break the header line. */
		if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>' || *p == '"' || *p == '\\')
			return false;
		if (*p == '@')
			at = true;
	}
	return at && n <= 254 && s[0] != '@' && s[n - 1] != '@';
}

static void
relay_probe_set(struct relay_probe_advice *out, const char *id, const char *culprit)
{
	out->id = id;
	out->culprit = culprit;
}

/* Local failures and replies that only the probe can judge. true when a row applied. */
static bool
relay_probe_specific(const struct relay_probe_failure *f, struct relay_probe_advice *out)
{
	const char *t = f->text ? f->text : "";
	size_t tl = strlen(t);

	switch (f->local) {
	case RELAY_PROBE_LOCAL_TLS_PLAINTEXT:
		relay_probe_set(out, "wrong-port-for-implicit-tls", "sender_config");
		snprintf(out->cause, sizeof(out->cause), "The TLS handshake was answered with a "
		    "plain-text SMTP greeting: port %u speaks STARTTLS (or plain SMTP), not implicit "
		    "TLS.", f->port);
		snprintf(out->fix, sizeof(out->fix), "Set tls: starttls for this port (usually 587 "
		    "or 25), or keep tls: implicit and use the provider's implicit-TLS port (usually "
		    "465).");
		return true;
	case RELAY_PROBE_LOCAL_CERT_EXPIRED:
		relay_probe_set(out, "certificate-expired", "tls");
		snprintf(out->cause, sizeof(out->cause), "The server's certificate has expired "
		    "(%s).", t);
		snprintf(out->fix, sizeof(out->fix), "The provider must renew it; tell them. Until "
		    "then delivery through this upstream fails; verify: false would send the password "
		    "over an unauthenticated connection (not recommended).");
		return true;
	case RELAY_PROBE_LOCAL_CERT_SELF_SIGNED:
		relay_probe_set(out, "certificate-self-signed", "tls");
		snprintf(out->cause, sizeof(out->cause), "The server's certificate is self-signed "
		    "(or signed by a private CA), so it cannot be verified against the system's "
		    "trusted CAs (%s).", t);
		snprintf(out->fix, sizeof(out->fix), "If you trust this server, save its certificate "
		    "(or its CA's) to a file and set ca_file: to that file; verify: false turns the "
		    "check off (not recommended).");
		return true;
	case RELAY_PROBE_LOCAL_CERT_UNTRUSTED:
		relay_probe_set(out, "certificate-untrusted", "tls");
		snprintf(out->cause, sizeof(out->cause), "The server's certificate does not lead to "
		    "a trusted CA (%s).", t);
		snprintf(out->fix, sizeof(out->fix), "Install the ca-certificates package, or set "
		    "ca_file: to the bundle of the CA that signed it (for a private CA, its "
		    "certificate); check that the server sends its intermediate certificates.");
		return true;
	case RELAY_PROBE_LOCAL_CERT_MISMATCH:
		relay_probe_set(out, "certificate-host-mismatch", "sender_config");
		snprintf(out->cause, sizeof(out->cause), "The certificate is valid but not for the "
		    "name connected to (%s).", t);
		snprintf(out->fix, sizeof(out->fix), "Set host: to a name the certificate covers "
		    "(see its subject), usually the provider's documented SMTP host name rather than "
		    "an IP address or an alias.");
		return true;
	case RELAY_PROBE_LOCAL_CA_FILE:
		relay_probe_set(out, "ca-file-unusable", "sender_config");
		snprintf(out->cause, sizeof(out->cause), "The trusted CAs cannot be loaded: %s.", t);
		snprintf(out->fix, sizeof(out->fix), "Check ca_file: (a readable PEM file) or remove "
		    "it to use the system's CA store.");
		return true;
	case RELAY_PROBE_LOCAL_STARTTLS_MISSING:
		relay_probe_set(out, "starttls-not-offered", "tls");
		snprintf(out->cause, sizeof(out->cause), "The server on port %u does not offer "
		    "STARTTLS, and tls: starttls requires it (mail and password are never sent in "
		    "clear).", f->port);
		snprintf(out->fix, sizeof(out->fix), "Use the provider's submission port 587 with "
		    "tls: starttls, or port 465 with tls: implicit; tls: none only on a trusted "
		    "network.");
		return true;
	case RELAY_PROBE_LOCAL_AUTH_NEEDS_TLS:
		relay_probe_set(out, "auth-needs-starttls", "sender_config");
		snprintf(out->cause, sizeof(out->cause), "The server offers AUTH only after "
		    "STARTTLS, and tls: none never starts TLS.");
		snprintf(out->fix, sizeof(out->fix), "Set tls: starttls for this upstream.");
		return true;
	case RELAY_PROBE_LOCAL_AUTH_MISSING:
		relay_probe_set(out, "auth-not-offered", "sender_config");
		snprintf(out->cause, sizeof(out->cause), "A username is configured but the server "
		    "offers no AUTH PLAIN or LOGIN on port %u.", f->port);
		snprintf(out->fix, sizeof(out->fix), "Use the provider's submission port (587 with "
		    "tls: starttls or 465 with tls: implicit); if the server relays for this IP "
		    "without a login, remove username and password_file.");
		return true;
	case RELAY_PROBE_LOCAL_NO_PASSWORD:
		relay_probe_set(out, "password-file-unreadable", "sender_config");
		snprintf(out->cause, sizeof(out->cause), "The password cannot be read: %s.", t);
		snprintf(out->fix, sizeof(out->fix), "Check password_file: it must exist and be "
		    "readable by the user running hikyaku (root:hikyaku 0640); run the test as that "
		    "user or as root.");
		return true;
	case RELAY_PROBE_LOCAL_TIMEOUT:
		if (f->step == RELAY_PROBE_CONNECT && f->port == 25) {
			relay_probe_set(out, "port-25-blocked", "network");
			snprintf(out->cause, sizeof(out->cause), "Connecting to port 25 timed out. "
			    "Many hosting and cloud providers block outgoing port 25.");
			snprintf(out->fix, sizeof(out->fix), "Use the provider's submission port: port: "
			    "587 with tls: starttls, or port: 465 with tls: implicit (or ask the hosting "
			    "provider to unblock port 25).");
			return true;
		}
		if (f->step == RELAY_PROBE_CONNECT) {
			relay_probe_set(out, "connect-timeout", "network");
			snprintf(out->cause, sizeof(out->cause), "Connecting to port %u timed out: a "
			    "firewall drops the packets, or the host is down.", f->port);
			snprintf(out->fix, sizeof(out->fix), "Check host and port and any firewall in "
			    "between (ours or the hosting provider's); try the other submission port "
			    "(587 or 465).");
			return true;
		}
		if (f->step == RELAY_PROBE_GREETING && f->tls != CONF_TLS_IMPLICIT) {
			relay_probe_set(out, "wrong-port-for-starttls", "sender_config");
			snprintf(out->cause, sizeof(out->cause), "The server on port %u sent no greeting "
			    "in time. %s", f->port, f->port == 465 ? "Port 465 expects TLS from the "
			    "first byte and waits silently for it." : "A port that expects TLS from the "
			    "first byte (implicit TLS) waits silently like this.");
			snprintf(out->fix, sizeof(out->fix), "If this port uses implicit TLS (usually "
			    "465), set tls: implicit; for STARTTLS use port 587 with tls: starttls.");
			return true;
		}
		if (f->step == RELAY_PROBE_TLS) {
			relay_probe_set(out, "tls-handshake-timeout", "tls");
			snprintf(out->cause, sizeof(out->cause), "The TLS handshake on port %u did not "
			    "finish in time.", f->port);
			snprintf(out->fix, sizeof(out->fix), "Check that port %u uses implicit TLS; for "
			    "STARTTLS set tls: starttls (usually port 587).", f->port);
			return true;
		}
		return false;
	case RELAY_PROBE_LOCAL_DISCONNECT:
		if (f->step == RELAY_PROBE_GREETING && f->tls != CONF_TLS_IMPLICIT) {
			relay_probe_set(out, "closed-before-greeting", "sender_config");
			snprintf(out->cause, sizeof(out->cause), "The server on port %u closed the "
			    "connection without a greeting: it may expect TLS first, or refuse this "
			    "IP address.", f->port);
			snprintf(out->fix, sizeof(out->fix), "If this port uses implicit TLS (usually "
			    "465), set tls: implicit; otherwise check that our IP address is allowed.");
			return true;
		}
		return false;
	case RELAY_PROBE_LOCAL_BAD_REPLY:
		if (f->step == RELAY_PROBE_GREETING) {
			relay_probe_set(out, "not-smtp", "sender_config");
			snprintf(out->cause, sizeof(out->cause), "What port %u sent is not an SMTP "
			    "greeting: another service listens there.", f->port);
			snprintf(out->fix, sizeof(out->fix), "Check the port: SMTP submission is 587 "
			    "(tls: starttls) or 465 (tls: implicit).");
			return true;
		}
		return false;
	case RELAY_PROBE_LOCAL_REFUSED:
		relay_probe_set(out, "connection-refused", "network");
		snprintf(out->cause, sizeof(out->cause), "Nothing accepts connections on port %u of "
		    "the host (connection refused).", f->port);
		snprintf(out->fix, sizeof(out->fix), "Check host: and port: (submission is usually "
		    "587 with tls: starttls or 465 with tls: implicit); the server may be down, or a "
		    "firewall rejects the port.");
		return true;
	default:
		break;
	}
	if (f->local != RELAY_PROBE_LOCAL_NONE)
		return false;
	/* Replies. */
	if (f->step == RELAY_PROBE_AUTH && (explain_glob_is_match("application-specific password",
	    t, tl, false) || (f->code == 534 && f->enh_class == 5 && f->enh_subject == 7 &&
	    f->enh_detail == 9))) {
		relay_probe_set(out, "app-password-required", "auth");
		snprintf(out->cause, sizeof(out->cause), "The account needs an app password: it has "
		    "2-step verification (or the provider refuses the account's normal password for "
		    "SMTP).");
		snprintf(out->fix, sizeof(out->fix), "Create an app password in the provider's "
		    "account security settings (for Gmail: Google Account, Security, App passwords) "
		    "and put it in password_file.");
		return true;
	}
	if (f->step == RELAY_PROBE_AUTH && f->code == 535) {
		relay_probe_set(out, "wrong-password", "auth");
		snprintf(out->cause, sizeof(out->cause), "The server rejected the username or "
		    "password.");
		snprintf(out->fix, sizeof(out->fix), "Check username: and the password in "
		    "password_file (one line, no extra spaces). Some providers want an app password "
		    "or an API key instead of the account password.");
		return true;
	}
	return false;
}

/* Fallback words for a reply the explainer only knows by its class. */
static void
relay_probe_generic(const struct relay_probe_failure *f, struct relay_probe_advice *out)
{
	const char *what = "", *fix = NULL;

	switch (f->step) {
	case RELAY_PROBE_GREETING:
		what = "refused the connection in its greeting";
		fix = "The reply says why: often our IP address is not allowed or is on a "
		    "blocklist. Check the provider's allowed IPs, or try again later for a 4xx.";
		break;
	case RELAY_PROBE_EHLO:
		what = "refused EHLO";
		fix = "Check helo: (the EHLO name: some servers want a fully qualified name that "
		    "resolves) and that this port speaks ESMTP.";
		break;
	case RELAY_PROBE_STARTTLS:
		what = "refused STARTTLS";
		fix = "Try again later (4xx) or use implicit TLS (port 465, tls: implicit).";
		break;
	case RELAY_PROBE_AUTH:
		what = "refused AUTH";
		fix = "Check username, password_file and that the account may use SMTP.";
		break;
	case RELAY_PROBE_MAIL:
		what = "refused the sender";
		fix = "Test with --from set to an address the account may send as (many providers "
		    "accept only their own verified senders).";
		break;
	case RELAY_PROBE_RCPT:
		what = "refused the recipient";
		fix = "Check the --to address; the upstream may also refuse to relay for this "
		    "account.";
		break;
	case RELAY_PROBE_DATA:
		what = "refused the test message";
		fix = "The reply says why; the test message is plain text, so a refusal usually "
		    "concerns the sender or the account.";
		break;
	default:
		what = "refused the command";
		break;
	}
	snprintf(out->cause, sizeof(out->cause), "The server %s (%d).", what, f->code);
	if (fix)
		snprintf(out->fix, sizeof(out->fix), "%s", fix);
}

void
relay_probe_diagnose(const struct relay_probe_failure *f, struct relay_probe_advice *out)
{
	static const char *const local_ids[RELAY_PROBE_LOCAL_COUNT] = {
		[RELAY_PROBE_LOCAL_DNS_NXDOMAIN] = "local-dns-nxdomain",
		[RELAY_PROBE_LOCAL_DNS_TEMP] = "local-dns-temp",
		[RELAY_PROBE_LOCAL_REFUSED] = "local-refused",
		[RELAY_PROBE_LOCAL_UNREACHABLE] = "local-refused",
		[RELAY_PROBE_LOCAL_TIMEOUT] = "local-timeout",
		[RELAY_PROBE_LOCAL_DISCONNECT] = "local-disconnect",
		[RELAY_PROBE_LOCAL_BAD_REPLY] = "local-bad-reply",
		[RELAY_PROBE_LOCAL_TLS_PLAINTEXT] = "local-tls-failed",
		[RELAY_PROBE_LOCAL_TLS_FAILED] = "local-tls-failed",
		[RELAY_PROBE_LOCAL_CERT_EXPIRED] = "local-cert-invalid",
		[RELAY_PROBE_LOCAL_CERT_SELF_SIGNED] = "local-cert-invalid",
		[RELAY_PROBE_LOCAL_CERT_UNTRUSTED] = "local-cert-invalid",
		[RELAY_PROBE_LOCAL_CERT_MISMATCH] = "local-cert-invalid",
		[RELAY_PROBE_LOCAL_CERT_OTHER] = "local-cert-invalid",
		[RELAY_PROBE_LOCAL_STARTTLS_MISSING] = "local-starttls-missing",
	};
	const struct explain_entry *e = NULL;
	const char *t = f->text ? f->text : "";

	memset(out, 0, sizeof(*out));
	if (f->local != RELAY_PROBE_LOCAL_NONE) {
		if ((unsigned)f->local < RELAY_PROBE_LOCAL_COUNT && local_ids[f->local] != NULL)
			e = explain_find(local_ids[f->local]);
	} else {
		e = explain_lookup(f->code, f->enh_class, f->enh_subject, f->enh_detail, t,
		    strlen(t));
	}
	out->explain_id = e ? e->id : NULL;
	if (relay_probe_specific(f, out))
		return;
	if (e != NULL) {
		out->id = e->id;
		out->culprit = explain_culprit_name(e->culprit);
		snprintf(out->cause, sizeof(out->cause), "%s", e->cause);
		snprintf(out->fix, sizeof(out->fix), "%s", e->fix ? e->fix : "");
		/* The class-wide rows say little; the step says more. */
		if (f->local == RELAY_PROBE_LOCAL_NONE && (strcmp(e->id, "permanent-failure") == 0 ||
		    strcmp(e->id, "temporary-failure") == 0))
			relay_probe_generic(f, out);
		return;
	}
	out->id = "unknown";
	out->culprit = "unknown";
	if (f->local == RELAY_PROBE_LOCAL_NONE)
		relay_probe_generic(f, out);
	else
		snprintf(out->cause, sizeof(out->cause), "The %s step failed: %s.",
		    relay_probe_step_name(f->step), t);
}
