/*
 * relay_probe.h - the connection test of one upstream (DESIGN.md 10, `hikyaku test`, POST
 * /api/v1/upstreams/{name}/test): DNS, TCP connect, greeting, EHLO, STARTTLS or implicit TLS with
 * the certificate's details, AUTH, MAIL FROM and RCPT TO (or MAIL then RSET), and with a
 * recipient a real test message up to its final reply, then QUIT. Every step is timed; the first
 * failing one ends the test and is explained in plain words with the fix (relay_probe_diagnose:
 * probe-specific advice first, such as a wrong port for the TLS mode, then the reply explainer).
 *
 * Unlike smtpc, which fails closed and hides the steps, the probe keeps going as far as it
 * safely can to report: the handshake always completes without verification so the certificate
 * can be shown, and the chain and host name are checked afterwards; with verify: true a bad
 * certificate still fails the step before AUTH, so no password is ever sent over a connection
 * that delivery would refuse. The password is never logged or reported.
 *
 * Ownership: params are copied (the password wiped at the end). The report passed to done_cb is
 * borrowed for the call. The probe frees itself after done_cb returns; relay_probe_cancel()
 * stops it earlier without calling done_cb.
 * Thread: loop thread only. done_cb never runs from inside relay_probe_start().
 */
#ifndef HK_RELAY_PROBE_H
#define HK_RELAY_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "../conf/conf.h"
#include "../dns/dns.h"

struct relay_probe;

enum relay_probe_step_kind {
	RELAY_PROBE_DNS = 0,
	RELAY_PROBE_CONNECT,
	RELAY_PROBE_TLS,       /* implicit TLS handshake, before the greeting */
	RELAY_PROBE_GREETING,
	RELAY_PROBE_EHLO,
	RELAY_PROBE_STARTTLS,  /* command and handshake */
	RELAY_PROBE_AUTH,
	RELAY_PROBE_MAIL,
	RELAY_PROBE_RCPT,
	RELAY_PROBE_RSET,
	RELAY_PROBE_DATA,      /* DATA, the message, the final reply */
	RELAY_PROBE_QUIT,
	RELAY_PROBE_STEP_COUNT,
};

/* A failure that is not an SMTP reply (or a reply the probe itself judges wrong). */
enum relay_probe_local {
	RELAY_PROBE_LOCAL_NONE = 0,      /* the reply says it */
	RELAY_PROBE_LOCAL_DNS_NXDOMAIN,  /* the host name does not exist (or has no address) */
	RELAY_PROBE_LOCAL_DNS_TEMP,      /* resolver trouble */
	RELAY_PROBE_LOCAL_REFUSED,       /* connection refused */
	RELAY_PROBE_LOCAL_UNREACHABLE,   /* no route, network down */
	RELAY_PROBE_LOCAL_TIMEOUT,       /* the step's timeout ran out */
	RELAY_PROBE_LOCAL_DISCONNECT,    /* peer closed */
	RELAY_PROBE_LOCAL_BAD_REPLY,     /* malformed reply */
	RELAY_PROBE_LOCAL_TLS_PLAINTEXT, /* TLS handshake answered in plain text (an SMTP greeting) */
	RELAY_PROBE_LOCAL_TLS_FAILED,    /* other handshake failure */
	RELAY_PROBE_LOCAL_CERT_EXPIRED,
	RELAY_PROBE_LOCAL_CERT_SELF_SIGNED,
	RELAY_PROBE_LOCAL_CERT_UNTRUSTED, /* chain does not lead to a trusted CA */
	RELAY_PROBE_LOCAL_CERT_MISMATCH,  /* chain fine, host name not in the certificate */
	RELAY_PROBE_LOCAL_CERT_OTHER,
	RELAY_PROBE_LOCAL_CA_FILE,       /* the client TLS context (ca_file) cannot be loaded */
	RELAY_PROBE_LOCAL_STARTTLS_MISSING, /* tls: starttls, not offered */
	RELAY_PROBE_LOCAL_AUTH_NEEDS_TLS,   /* AUTH not offered in clear, STARTTLS offered */
	RELAY_PROBE_LOCAL_AUTH_MISSING,     /* username set, no AUTH PLAIN/LOGIN offered */
	RELAY_PROBE_LOCAL_NO_PASSWORD,      /* username set, password_file unreadable */
	RELAY_PROBE_LOCAL_COUNT,
};

/* One failure, the input of relay_probe_diagnose(). */
struct relay_probe_failure {
	enum relay_probe_step_kind step;
	enum relay_probe_local local;
	int code;                        /* SMTP reply code, 0 for local failures */
	int enh_class, enh_subject, enh_detail;
	const char *text;                /* reply text or local detail; may be NULL */
	unsigned port;
	enum conf_tls tls;
	bool verify;
};

/* Advice for a failure: cause and fix in plain words. */
struct relay_probe_advice {
	const char *id;          /* "wrong-port-implicit", or the explainer's id; static */
	const char *explain_id;  /* the explainer row consulted, or NULL; static */
	const char *culprit;     /* explain_culprit_name() vocabulary; static */
	char cause[512];
	char fix[512];
};

/*
 * The advice for f. Pure: probe-specific rows (TLS mode vs port, port 25 blocked, certificate
 * problems, wrong password, app password needed, AUTH only after STARTTLS ...) first, then the
 * reply explainer (explain_reply / explain_find for local failures).
 */
void relay_probe_diagnose(const struct relay_probe_failure *f, struct relay_probe_advice *out);

struct relay_probe_cert {
	bool present;
	char subject[256], issuer[256];
	char not_after[32];     /* "2025-01-31T12:00:00Z" */
	long days_left;         /* negative once expired */
	bool host_match;
	bool chain_ok;
	bool verified;          /* chain_ok && host_match */
	char verify_error[128]; /* why not, "" when verified */
	char protocol[24], cipher[64];
};

struct relay_probe_step {
	enum relay_probe_step_kind kind;
	bool ok;
	uint64_t duration_ms;
	char detail[256];       /* what was seen: "127.0.0.1, ::1", "after TLS", "PLAIN as user" */
	int code;               /* last reply's code, 0 when none */
	int enh_class, enh_subject, enh_detail;
	char reply[512];        /* last reply's text (lines joined by "\n") */
};

#define RELAY_PROBE_MAX_STEPS 16

struct relay_probe_report {
	char upstream[128], host[256];
	unsigned port;
	enum conf_tls tls;
	bool verify;
	char id[17];            /* the test's id (subject, Message-ID) */
	char address[64];       /* the address connected to */
	size_t n_steps;
	struct relay_probe_step steps[RELAY_PROBE_MAX_STEPS];
	char extensions[1024];  /* the last EHLO's keywords, one per line */
	struct relay_probe_cert cert;
	char auth_mechanism[16];/* "" when no AUTH */
	char username[128];
	char mail_from[256], rcpt_to[256]; /* rcpt_to "" without a recipient */
	char subject[128], message_id[256]; /* with a recipient */
	bool ok;                /* every step passed */
	bool failed;            /* a step failed: failed_step, advice */
	size_t failed_step;     /* index into steps */
	struct relay_probe_advice advice;
};

typedef void (*relay_probe_done_fn)(void *arg, const struct relay_probe_report *r);

struct relay_probe_params {
	struct event_base *base;
	struct dns *dns;                 /* borrowed; must outlive the probe */
	const struct conf_upstream *up;  /* copied */
	const char *helo;                /* EHLO name when up->helo is NULL */
	const char *password;            /* NULL: AUTH fails as "no password" when username set */
	const char *password_error;      /* why password is NULL (reported), or NULL */
	const char *mail_from;           /* NULL: the username when it is an address, else
	                                  * postmaster@<helo> */
	const char *rcpt_to;             /* NULL: MAIL then RSET, no message */
	uint64_t id;                     /* test id, printed in hex */
	uint64_t now_ms;                 /* wall clock for the Date: and subject */
	uint64_t connect_timeout_ms, command_timeout_ms; /* 0: 10 s, 30 s */
};

/* Start; done_cb runs exactly once later unless cancelled. */
struct relay_probe *relay_probe_start(const struct relay_probe_params *p,
    relay_probe_done_fn done_cb, void *arg);
/* Stop now; no callback. NULL is a no-op. */
void relay_probe_cancel(struct relay_probe *p);

/* "dns", "connect", "tls", "greeting", "ehlo", "starttls", "auth", "mail", "rcpt", ... */
const char *relay_probe_step_name(enum relay_probe_step_kind k);
const char *relay_probe_tls_name(enum conf_tls t);
/* True when s is a plain address fit for MAIL FROM / RCPT TO (no spaces, controls, <>). */
bool relay_probe_addr_is_valid(const char *s);

#endif
