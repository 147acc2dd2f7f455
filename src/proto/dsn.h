/*
 * dsn.h - build delivery status notifications (RFC 3464) and decide when to send one
 * (RFC 3461 NOTIFY, DESIGN.md 7 "Retry and DSN").
 *
 * A DSN is multipart/report; report-type=delivery-status with three parts: a human-readable
 * text (with the explainer's plain words when given), the message/delivery-status fields, and
 * the returned content per RET (headers as text/rfc822-headers, or the whole message as
 * message/rfc822 when it fits in max_full, else its headers). Delay notices return headers only.
 *
 * Output: CRLF line endings only, no line longer than 998 octets (RFC 5322 2.1.1); peer text
 * (reply texts, addresses) is cleaned of control bytes and folded, so it cannot add fields or
 * parts. The boundary is derived from the queue id and checked against the returned content.
 * The returned message is copied as stored: canonical CRLF, not dot-stuffed; the sender
 * dot-stuffs on the wire. When any part carries 8-bit bytes, DSN_OUT_8BIT is reported and the
 * DSN must go out with BODY=8BITMIME.
 *
 * Pure: dates are passed in (Unix seconds, printed in UTC), nothing is read or sent.
 * Ownership: inputs are borrowed for the call; output is appended to the caller's buffer.
 * Thread: any.
 */
#ifndef HK_DSN_H
#define HK_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"
#include "../util/common.h"
#include "explain.h"
#include "smtp_reply.h"

/* RFC 3461 4.1 NOTIFY bits; 0 means the client gave no NOTIFY. */
#define DSN_NOTIFY_SUCCESS 0x1u
#define DSN_NOTIFY_FAILURE 0x2u
#define DSN_NOTIFY_DELAY 0x4u
#define DSN_NOTIFY_NEVER 0x8u

/* dsn_build() output flags. */
#define DSN_OUT_8BIT 0x1u /* an 8-bit byte is in the returned content: send with BODY=8BITMIME */

/* Default bound for RET=FULL content. */
#define DSN_MAX_FULL_DEFAULT ((size_t)10 * 1024 * 1024)

enum dsn_ret {
	DSN_RET_NONE = 0, /* no RET given: headers only */
	DSN_RET_HDRS,
	DSN_RET_FULL,
};

enum dsn_type {
	DSN_TYPE_FAILURE = 0, /* bounced or expired recipients: Action: failed */
	DSN_TYPE_DELAY,       /* still being retried: Action: delayed */
};

/* A recipient's state, for dsn_should_send(). */
enum dsn_state {
	DSN_STATE_SENT = 0,
	DSN_STATE_BOUNCED,
	DSN_STATE_EXPIRED,
	DSN_STATE_DELAYED,
	DSN_STATE_SUPPRESSED,
};

struct dsn_rcpt {
	const char *address;  /* final recipient (the RCPT TO address), required */
	const char *orcpt;    /* ORCPT as received, "rfc822;" plus xtext, or NULL */
	const char *status;   /* "5.1.1"; failed: class 4 or 5 (4.4.7 for expired); delayed: 4 */
	bool expired;         /* failed because retry.max_age passed */
	const char *remote_mta;         /* host that gave the reply, or NULL */
	const struct smtp_reply *reply; /* the last reply (Diagnostic-Code: smtp), or NULL */
	const char *local_diagnostic;   /* without a reply: our words, or NULL */
	const struct explain_entry *explain; /* plain words for people, or NULL */
	int64_t last_attempt;     /* Unix seconds; 0: never attempted */
	int64_t will_retry_until; /* delay notices: when we give up; 0: omit */
};

struct dsn_report {
	enum dsn_type type;
	const char *reporting_mta; /* our host name: Reporting-MTA, From:, Message-ID */
	const char *queue_id;      /* 16 hex digits of the original message */
	const char *sender;        /* envelope sender of the original: the DSN goes to it */
	const char *envid;         /* ENVID as received (xtext), or NULL */
	enum dsn_ret ret;
	int64_t arrival;           /* when we accepted the original (Unix seconds) */
	int64_t now;               /* Date: of the DSN */
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;             /* at least 1 */
	const char *msg;           /* the original message (CRLF), or NULL when not kept */
	size_t msg_len;
	size_t max_full;           /* RET=FULL bound in bytes; 0: DSN_MAX_FULL_DEFAULT */
};

enum dsn_result {
	DSN_OK = 0,
	DSN_BAD_INPUT, /* a required field missing or malformed; *why says which */
};

/*
 * Append the DSN for rep (headers and body, CRLF) to out. *out_flags (when not NULL) gets
 * DSN_OUT_* bits. On DSN_BAD_INPUT out is left as it was and *why (when not NULL) explains.
 */
enum dsn_result dsn_build(const struct dsn_report *rep, struct buf *out, unsigned *out_flags,
    const char **why);

/*
 * Should a recipient in this state produce a DSN to sender? Never to the null sender ("" or
 * "<>") or with NOTIFY=NEVER; without NOTIFY only failures (bounced, expired: RFC 3461 4.1);
 * delays only with DELAY, deliveries only with SUCCESS. Suppressed recipients get none: they
 * were refused at ingress already.
 */
bool dsn_should_send(unsigned notify, enum dsn_state state, const char *sender);

/* RFC 5322 3.3 date-time of t in UTC ("Tue, 14 Jan 2025 10:00:00 +0000") appended to out. */
void dsn_format_date(struct buf *out, int64_t t);

#endif
