/*
 * explain.h - the reply explainer: an upstream's SMTP reply (code, enhanced code, provider text)
 * mapped to a cause in plain words, a culprit, a fix and behaviour flags (DESIGN.md 10).
 *
 * The table is data: one row per known reply, each with designated initialisers, so a loader can
 * later fill the same rows from etc/explain.yaml (which holds the same content). The same match
 * drives delivery (trouble.c turns EXPLAIN_QUOTA into SPILL), so what we explain and what we do
 * always agree.
 *
 * Matching: a row matches when every field it sets matches the reply:
 *   code      0 = any, 4 or 5 = any reply of that class, 200..599 = that exact code;
 *   enhanced  NULL = any, else a glob over "class.subject.detail" ("5.7.2?", "?.2.2"); a row with
 *             an enhanced pattern never matches a reply that has no enhanced code;
 *   pattern   NULL = any, else a case-insensitive glob found anywhere in the reply text
 *             ('*' any run, '?' one byte, ' ' one run of blanks or line breaks).
 * The most specific matching row wins: a text pattern counts most, then an exact enhanced code,
 * an exact code, an enhanced glob, a class; among equals the earlier row wins, so specific text
 * rows are listed before generic ones. Rows with .local set describe failures that are not
 * replies (timeouts, refused connections, DNS); they are reached only through explain_find().
 *
 * Ownership: the compiled-in entries are static and live for the whole process; rows passed
 * as "extra" belong to the caller (the configuration snapshot) and so do results pointing
 * into them.
 * Pure. Thread: any. Nothing here fails: lookups return a row or NULL.
 */
#ifndef HK_EXPLAIN_H
#define HK_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/common.h"

struct smtp_reply;

/* Who has to act. Names are the ones used in JSON, logs and etc/explain.yaml. */
enum explain_culprit {
	EXPLAIN_CULPRIT_UNKNOWN = 0,
	EXPLAIN_CULPRIT_RECIPIENT,      /* the address or its mailbox */
	EXPLAIN_CULPRIT_SENDER_CONFIG,  /* our side: DNS records, settings, envelope */
	EXPLAIN_CULPRIT_PROVIDER_LIMIT, /* a quota or rate limit of the upstream */
	EXPLAIN_CULPRIT_REPUTATION,     /* sending IP or domain distrusted, blocklisted */
	EXPLAIN_CULPRIT_CONTENT,        /* the message itself: size, spam, virus, format */
	EXPLAIN_CULPRIT_NETWORK,        /* DNS, TCP, timeouts, the peer going away */
	EXPLAIN_CULPRIT_TLS,            /* handshake, certificate, STARTTLS */
	EXPLAIN_CULPRIT_AUTH,           /* credentials or mechanism at an upstream */
};

#define EXPLAIN_CULPRIT_COUNT (EXPLAIN_CULPRIT_AUTH + 1)

/* Flags of an entry. */
#define EXPLAIN_RETRY_HELPS 0x1u          /* the same upstream may accept it later */
#define EXPLAIN_OTHER_UPSTREAM_HELPS 0x2u /* another upstream (or MX host) may accept it now */
#define EXPLAIN_QUOTA 0x4u                /* a sending quota or rate limit: SPILL the upstream */
#define EXPLAIN_SUPPRESS 0x8u             /* hard bounce of the address: add it to suppression */

struct explain_entry {
	const char *id;       /* stable, lower-case, dash-separated ("gmail-daily-quota") */
	int code;             /* 0, 4, 5 or an exact code (see the top of this file) */
	const char *enhanced; /* glob over "c.s.d", or NULL */
	const char *pattern;  /* glob found in the text, or NULL */
	bool local;           /* not a reply: only explain_find() returns it */
	const char *cause;    /* what happened, in plain words */
	enum explain_culprit culprit;
	const char *fix;      /* what to do about it */
	unsigned flags;       /* EXPLAIN_* */
};

/*
 * The best row for a reply: code (200..599), enhanced code (cls 0 when absent) and the reply
 * text (lines joined by "\n", as struct smtp_reply keeps it; text may be NULL when len is 0).
 * Returns NULL only for codes below 400 that no row names; every 4xx and 5xx gets at least the
 * generic row of its class. Code 0 (a local failure's text) is matched only by rows that name
 * no code.
 */
const struct explain_entry *explain_lookup(int code, int cls, int subj, int det, const char *text,
    size_t len);
/*
 * explain_lookup() over extra[0..n_extra) followed by the compiled-in table: the extra rows
 * (from the file named by the configuration's explain: key) come first, so among equally
 * specific matches they win; they override or extend the built-in rows. extra may be NULL when
 * n_extra is 0. The result points into extra or into the static table; it lives as long as
 * extra does.
 */
const struct explain_entry *explain_lookup_in(const struct explain_entry *extra, size_t n_extra,
    int code, int cls, int subj, int det, const char *text, size_t len);
/* explain_lookup() on a parsed reply. */
const struct explain_entry *explain_reply(const struct smtp_reply *r);
/* explain_lookup_in() on a parsed reply. */
const struct explain_entry *explain_reply_in(const struct explain_entry *extra, size_t n_extra,
    const struct smtp_reply *r);
/* The row with this id (reply or local), or NULL. */
const struct explain_entry *explain_find(const char *id);
/* The same, looking in extra[0..n_extra) first. */
const struct explain_entry *explain_find_in(const struct explain_entry *extra, size_t n_extra,
    const char *id);
/* The compiled-in table, for listings and checks; *n gets its length. */
const struct explain_entry *explain_table(size_t *n);

/*
 * "recipient", "sender_config", ... ("unknown" for out-of-range values). Inline, with the flag
 * names below, so that loaders outside this layer (src/conf) share the one vocabulary without
 * linking against proto.
 */
static inline const char *
explain_culprit_name(enum explain_culprit c)
{
	static const char *const names[EXPLAIN_CULPRIT_COUNT] = {
		[EXPLAIN_CULPRIT_UNKNOWN] = "unknown",
		[EXPLAIN_CULPRIT_RECIPIENT] = "recipient",
		[EXPLAIN_CULPRIT_SENDER_CONFIG] = "sender_config",
		[EXPLAIN_CULPRIT_PROVIDER_LIMIT] = "provider_limit",
		[EXPLAIN_CULPRIT_REPUTATION] = "reputation",
		[EXPLAIN_CULPRIT_CONTENT] = "content",
		[EXPLAIN_CULPRIT_NETWORK] = "network",
		[EXPLAIN_CULPRIT_TLS] = "tls",
		[EXPLAIN_CULPRIT_AUTH] = "auth",
	};

	return (unsigned)c < EXPLAIN_CULPRIT_COUNT ? names[c] : "unknown";
}

#define EXPLAIN_FLAG_COUNT 4
/* Name of flag bit i (0..EXPLAIN_FLAG_COUNT-1): "retry_helps", ...; NULL past the end. */
static inline const char *
explain_flag_name(unsigned i)
{
	static const char *const names[EXPLAIN_FLAG_COUNT] = {
		"retry_helps", "other_upstream_helps", "quota", "suppress",
	};

	return i < EXPLAIN_FLAG_COUNT ? names[i] : NULL;
}

/*
 * Case-insensitive glob of pattern against text[0..len), anywhere in the text when anchored is
 * false, the whole text when true. ' ' in the pattern matches one run of blanks, tabs or line
 * breaks in the text. Linear in len times the pattern length; no recursion.
 */
bool explain_glob_is_match(const char *pattern, const char *text, size_t len, bool anchored);

#endif
