/*
 * spool_format.h - the envelope: versioned text, one record a line, every value xtext-encoded,
 * last line "END <crc32c hex>" over all bytes before that line.
 *
 *   hikyaku-envelope 1
 *   id 0193F2A1C4000007
 *   received 1732468369123
 *   from app@example.com ret=HDRS envid=abc body=8BITMIME smtputf8
 *   source smtp listener=127.0.0.1:2525 user=app client=127.0.0.1 helo=app.example
 *   route backup-first                     (optional)
 *   size 4211
 *   attempts 0 next=1732468369123
 *   rcpt 0 state=queued to=a@example.net notify=FAILURE,DELAY orcpt=rfc822;a@example.net
 *   END 5a1c09e2
 *
 * A file may carry bytes after the END line: the message body, embedded at commit (one file, one
 * fsync; spool_commit.c), as maildrop files do. spool_format_env_len() finds where the envelope
 * ends: the first line that starts with "END " ends it, since no record line can (records have
 * fixed names, values are xtext).
 *
 * Values (after "from", after "to=", ...) are xtext, so an empty sender is written "from " with an
 * empty value, and no value can contain a space, CR, LF or control byte.
 * Pure (no I/O). Thread: any.
 */
#ifndef HK_SPOOL_FORMAT_H
#define HK_SPOOL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/smtp_cmd.h"
#include "../util/buf.h"

#define SPOOL_FORMAT_VERSION 1
#define SPOOL_ENV_MAX (16u << 20) /* an envelope file larger than this is corrupt */

enum spool_rcpt_state {
	SPOOL_RCPT_QUEUED = 0,
	SPOOL_RCPT_DEFERRED,
	SPOOL_RCPT_SENT,
	SPOOL_RCPT_BOUNCED,
	SPOOL_RCPT_EXPIRED,
	SPOOL_RCPT_HELD,
	SPOOL_RCPT_SUPPRESSED,
	SPOOL_RCPT_STATE_COUNT,
};

struct spool_rcpt {
	char *addr;
	enum spool_rcpt_state state;
	unsigned notify; /* SMTP_NOTIFY_* */
	char *orcpt;     /* NULL when absent; "type;xtext" as received */
};

struct spool_env {
	uint64_t id;
	uint64_t received_ms;
	char *from; /* "" for the null sender */
	enum smtp_ret ret;
	char *envid; /* NULL when absent; decoded (not xtext) */
	enum smtp_body_type body;
	bool smtputf8;
	char *source;   /* "smtp", "api", "sendmail" */
	char *listener; /* NULL when not from a listener */
	char *auth_user; /* NULL when not authenticated */
	char *client;   /* client IP text, NULL when local */
	char *helo;     /* NULL when absent */
	/*
	 * Optional record "route NAME": the configured route the submitter chose (the API's
	 * "route" field), used instead of route matching while it names a route. NULL: none.
	 * Envelopes written before this record existed decode with NULL.
	 */
	char *route;
	uint64_t size;  /* body bytes */
	unsigned attempts;
	uint64_t next_attempt_ms;
	struct spool_rcpt *rcpts;
	size_t n_rcpts;
	/*
	 * The decoded Subject: at reception, for the email log's search. Never written to the
	 * envelope (the body holds it); NULL after a decode.
	 */
	char *subject;
	/* The From: header's domain at reception (header_from_domain), transient like subject. */
	char *from_domain;
};

enum spool_format_result {
	SPOOL_FORMAT_OK = 0,
	SPOOL_FORMAT_BAD,      /* malformed record or value */
	SPOOL_FORMAT_TRUNCATED, /* no END line */
	SPOOL_FORMAT_CHECKSUM, /* END present, CRC mismatch */
	SPOOL_FORMAT_VERSION_UNKNOWN,
};

const char *spool_rcpt_state_name(enum spool_rcpt_state s);
/* -1 when unknown. */
int spool_rcpt_state_parse(const char *s, size_t n, enum spool_rcpt_state *out);

/* Append the encoded envelope to out. */
void spool_format_encode(const struct spool_env *env, struct buf *out);
/*
 * Decode p[0..len) into out (which the caller zeroes first; on failure it is left empty with
 * nothing to free). Strict: unknown records, duplicate singletons, bad xtext, rcpt indexes out of
 * order, missing id/from/rcpt -> SPOOL_FORMAT_BAD with *why.
 */
enum spool_format_result spool_format_decode(const char *p, size_t len, struct spool_env *out,
    const char **why);
/*
 * Length of the envelope at the start of p[0..len): up to and including the LF of the first line
 * that starts with "END " (what follows is an embedded body). 0 when there is no such complete
 * line (spool_format_decode of the whole says why).
 */
size_t spool_format_env_len(const char *p, size_t len);
/* Free what env owns and zero it. */
void spool_env_fini(struct spool_env *env);
/* Add a recipient (copies addr and orcpt). */
void spool_env_add_rcpt(struct spool_env *env, const char *addr, unsigned notify,
    const char *orcpt);

#endif
