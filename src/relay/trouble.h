/*
 * trouble.h - what a delivery attempt's failure means (DESIGN.md 7 "Outcomes"), in the manner of
 * Postfix's smtp_trouble: every failure has a level (the whole session, the message, or one
 * recipient), a kind (temporary, permanent, quota) and a verdict.
 *
 * Verdicts: NEXT   try the next eligible upstream now (with mx: true, the next MX host);
 *           SPILL  pause this upstream until its quota window resets, then NEXT;
 *           DEFER  back to the retry schedule;
 *           BOUNCE final failure (a DSN per NOTIFY);
 *           SENT   the reply was 2xx/3xx: no trouble.
 *
 * Rules, first match wins (the table in DESIGN.md 7, in this order):
 *   1. lost after the final dot (timeout, disconnect at TROUBLE_STAGE_DOT) -> DEFER,
 *      maybe_delivered: the upstream may have taken it, so no other upstream now;
 *   2. null MX -> BOUNCE; NXDOMAIN with mx: true (the recipient's domain) -> BOUNCE;
 *   3. any other local failure (DNS, connect, TLS, certificate, timeout, disconnect, malformed
 *      reply), STARTTLS required but missing -> NEXT;
 *   4. a reply matching a quota row of the explainer -> SPILL (with mx: true there is no quota
 *      window to wait for: DEFER for 4xx; a 5xx goes on to rules 9-11 and is final);
 *   5. greeting not 2xx -> NEXT, even a 5xx: the host is refused, not the message (Postfix's
 *      smtp_skip_5xx_greeting);
 *   6. STARTTLS refused when required (any failure reply at TROUBLE_STAGE_STARTTLS) -> NEXT,
 *      never plaintext;
 *   7. AUTH refused: 530, 534, 535 or 538 at any stage, 454 or any other failure at
 *      TROUBLE_STAGE_AUTH -> NEXT; 530/534/535/538/454 open the breaker at once;
 *   8. 421 at any stage -> NEXT (the server is closing the session);
 *   9. RCPT 5xx x.1.x or x.2.x -> BOUNCE that recipient only;
 *  10. 5xx 5.3.4 -> NEXT when a larger upstream exists, else BOUNCE;
 *      5xx 5.6.x -> BOUNCE;
 *  11. other 5xx -> NEXT, BOUNCE on the last eligible upstream; with mx: true BOUNCE;
 *  12. other 4xx -> NEXT.
 * Every NEXT turns into DEFER on the last eligible upstream (nowhere left to go now), except
 * rule 11's, which turns into BOUNCE.
 * Levels: local failures and rules 5-8 are session-level (rules 1-2: message); other replies
 * speak about the recipient at RCPT, the message at MAIL, DATA, BDAT and DOT, else the session.
 * counts_toward_breaker is set for every session-level failure that is not a quota;
 * opens_breaker_now for AUTH rejections with 530, 534, 535, 538 or 454.
 *
 * STARTTLS replies and TROUBLE_LOCAL_STARTTLS_MISSING are passed only when TLS is required;
 * with opportunistic TLS the caller goes on in plaintext and never asks.
 * TROUBLE_STAGE_DOT is the wait for the reply to the end of data (final dot or BDAT LAST).
 *
 * Pure. Thread: any. Results point to static explainer rows or into in->explain_extra.
 */
#ifndef HK_TROUBLE_H
#define HK_TROUBLE_H

#include <stdbool.h>

#include "../proto/explain.h"
#include "../proto/smtp_reply.h"
#include "../util/common.h"

enum trouble_stage {
	TROUBLE_STAGE_DNS = 0,
	TROUBLE_STAGE_CONNECT,
	TROUBLE_STAGE_TLS,      /* implicit TLS handshake, or the handshake after STARTTLS */
	TROUBLE_STAGE_GREETING,
	TROUBLE_STAGE_EHLO,     /* EHLO or the HELO fallback */
	TROUBLE_STAGE_STARTTLS,
	TROUBLE_STAGE_AUTH,
	TROUBLE_STAGE_MAIL,
	TROUBLE_STAGE_RCPT,
	TROUBLE_STAGE_DATA,     /* the reply to the DATA command itself */
	TROUBLE_STAGE_BDAT,     /* a reply to a BDAT chunk that is not the last */
	TROUBLE_STAGE_DOT,      /* the reply to the end of data */
};

/* A failure without a reply. */
enum trouble_local {
	TROUBLE_LOCAL_NONE = 0, /* there is a reply */
	TROUBLE_LOCAL_TIMEOUT,
	TROUBLE_LOCAL_DISCONNECT,
	TROUBLE_LOCAL_REFUSED,  /* connection refused, host or network unreachable */
	TROUBLE_LOCAL_TLS_FAILED,
	TROUBLE_LOCAL_CERT_INVALID,
	TROUBLE_LOCAL_STARTTLS_MISSING_REQUIRED,
	TROUBLE_LOCAL_DNS_NXDOMAIN,
	TROUBLE_LOCAL_DNS_TEMP,
	TROUBLE_LOCAL_NULL_MX,
	TROUBLE_LOCAL_BAD_REPLY, /* malformed reply (DESIGN.md 13: a temporary failure) */
};

enum trouble_level {
	TROUBLE_LEVEL_SESSION = 0, /* the connection: every message and recipient on it */
	TROUBLE_LEVEL_MESSAGE,     /* this transaction: all its recipients */
	TROUBLE_LEVEL_RECIPIENT,   /* one recipient */
};

enum trouble_kind {
	TROUBLE_KIND_NONE = 0, /* SENT */
	TROUBLE_KIND_TEMPORARY,
	TROUBLE_KIND_PERMANENT,
	TROUBLE_KIND_QUOTA,
};

enum trouble_verdict {
	TROUBLE_SENT = 0,
	TROUBLE_NEXT,
	TROUBLE_SPILL,
	TROUBLE_DEFER,
	TROUBLE_BOUNCE,
};

struct trouble_input {
	enum trouble_stage stage;
	enum trouble_local local;        /* TROUBLE_LOCAL_NONE: reply is set */
	const struct smtp_reply *reply;  /* borrowed for the call; NULL for a local failure */
	bool is_last_eligible_upstream;  /* no other upstream (or MX host) left for this message */
	bool mx_mode;                    /* route with mx: true */
	bool has_larger_max_size_upstream; /* an eligible upstream takes bigger messages */
	/* Rows from the configuration's explain: file, looked up before the built-in ones. */
	const struct explain_entry *explain_extra; /* borrowed for the call; NULL when none */
	size_t n_explain_extra;
};

struct trouble_result {
	enum trouble_level level;
	enum trouble_kind kind;
	enum trouble_verdict verdict;
	bool counts_toward_breaker;
	bool opens_breaker_now;  /* AUTH rejected: open the circuit without waiting for 3 */
	bool maybe_delivered;    /* log "may have been delivered" */
	const struct explain_entry *explain; /* never NULL for a failure; NULL for SENT */
	const char *why;         /* static one-phrase reason for logs ("rcpt_hard_bounce") */
};

/* Classify one failure (or success) of an attempt. in and out must not be NULL. */
void trouble_classify(const struct trouble_input *in, struct trouble_result *out);

/* Names for logs and JSON: "next", "spill", ...; "session", ...; "temporary", .... */
const char *trouble_verdict_name(enum trouble_verdict v);
const char *trouble_level_name(enum trouble_level l);
const char *trouble_kind_name(enum trouble_kind k);
const char *trouble_stage_name(enum trouble_stage s);

#endif
