/*
 * spool_format.c - envelope encoding and strict decoding (see spool_format.h).
 *
 * Decoding treats its input as hostile (a damaged disk, a tampered file, the fuzzer): every
 * length is checked, every value goes through xtext, and any surprise is SPOOL_FORMAT_BAD with a
 * static reason rather than a guess.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "spool_format.h"
#include "../util/crc32c.h"
#include "../util/id.h"
#include "../util/num.h"
#include "../util/xalloc.h"
#include "../util/xtext.h"
#include "../util/poison.h"

#define SPOOL_MAGIC "hikyaku-envelope "
#define SPOOL_MAGIC_LEN (sizeof(SPOOL_MAGIC) - 1)
#define SPOOL_END_LEN 12 /* "END " + 8 hex digits */
#define SPOOL_TOK_MAX 8  /* keyword, value and at most 6 attributes */

static const char *const spool_rcpt_state_names[SPOOL_RCPT_STATE_COUNT] = {
	[SPOOL_RCPT_QUEUED] = "queued",
	[SPOOL_RCPT_DEFERRED] = "deferred",
	[SPOOL_RCPT_SENT] = "sent",
	[SPOOL_RCPT_BOUNCED] = "bounced",
	[SPOOL_RCPT_EXPIRED] = "expired",
	[SPOOL_RCPT_HELD] = "held",
	[SPOOL_RCPT_SUPPRESSED] = "suppressed",
};

/* Index = enum value; NULL = not written (UNSPEC). */
static const char *const spool_ret_names[] = {
	[SMTP_RET_UNSPEC] = NULL, [SMTP_RET_FULL] = "FULL", [SMTP_RET_HDRS] = "HDRS",
};
static const char *const spool_body_names[] = {
	[SMTP_BODY_UNSPEC] = NULL, [SMTP_BODY_7BIT] = "7BIT", [SMTP_BODY_8BITMIME] = "8BITMIME",
	[SMTP_BODY_BINARYMIME] = "BINARYMIME",
};

/* RFC 3461 4.1 keywords, in the order they are written. */
static const struct {
	unsigned bit;
	const char *name;
} spool_notify_names[] = {
	{ SMTP_NOTIFY_NEVER, "NEVER" },
	{ SMTP_NOTIFY_SUCCESS, "SUCCESS" },
	{ SMTP_NOTIFY_FAILURE, "FAILURE" },
	{ SMTP_NOTIFY_DELAY, "DELAY" },
};

const char *
spool_rcpt_state_name(enum spool_rcpt_state s)
{
	return (unsigned)s < SPOOL_RCPT_STATE_COUNT ? spool_rcpt_state_names[s] : "unknown";
}

int
spool_rcpt_state_parse(const char *s, size_t n, enum spool_rcpt_state *out)
{
	size_t i;

	for (i = 0; i < SPOOL_RCPT_STATE_COUNT; i++) {
		if (strlen(spool_rcpt_state_names[i]) == n &&
		    memcmp(spool_rcpt_state_names[i], s, n) == 0) {
			*out = (enum spool_rcpt_state)i;
			return 0;
		}
	}
	return -1;
}

void
spool_env_fini(struct spool_env *env)
{
	size_t i;

	if (env == NULL)
		return;
	free(env->from);
	free(env->envid);
	free(env->source);
	free(env->listener);
	free(env->auth_user);
	free(env->client);
	free(env->helo);
	free(env->route);
	free(env->subject);
	free(env->from_domain);
	for (i = 0; i < env->n_rcpts; i++) {
		free(env->rcpts[i].addr);
		free(env->rcpts[i].orcpt);
	}
	free(env->rcpts);
	memset(env, 0, sizeof(*env));
}

/* Append r (taking its strings) to env's recipients. */
static void
spool_env_push_rcpt(struct spool_env *env, const struct spool_rcpt *r)
{
	env->rcpts = xreallocarray(env->rcpts, env->n_rcpts + 1, sizeof(*env->rcpts));
	env->rcpts[env->n_rcpts++] = *r;
}

void
spool_env_add_rcpt(struct spool_env *env, const char *addr, unsigned notify, const char *orcpt)
{
	struct spool_rcpt r = {
		.addr = xstrdup(addr),
		.state = SPOOL_RCPT_QUEUED,
		.notify = notify,
		.orcpt = orcpt ? xstrdup(orcpt) : NULL,
	};

	spool_env_push_rcpt(env, &r);
}

/* Encoding */

static void
spool_put_value(struct buf *out, const char *s)
{
	if (s != NULL)
		xtext_encode(out, s, strlen(s));
}

/* " key=<xtext>" when s is set: NULL and "" stay distinct. */
static void
spool_put_attr(struct buf *out, const char *key, const char *s)
{
	if (s == NULL)
		return;
	buf_putc(out, ' ');
	buf_append_str(out, key);
	buf_putc(out, '=');
	spool_put_value(out, s);
}

static void
spool_put_notify(struct buf *out, unsigned notify)
{
	const char *sep = " notify=";
	size_t i;

	for (i = 0; i < HK_ARRAY_LEN(spool_notify_names); i++) {
		if (notify & spool_notify_names[i].bit) {
			buf_append_str(out, sep);
			buf_append_str(out, spool_notify_names[i].name);
			sep = ",";
		}
	}
}

void
spool_format_encode(const struct spool_env *env, struct buf *out)
{
	char hex[ID_HEX_LEN + 1];
	size_t start = out->len, i;
	uint32_t crc;

	buf_reserve(out, 256 + env->n_rcpts * 64);
	buf_printf(out, SPOOL_MAGIC "%d\n", SPOOL_FORMAT_VERSION);
	id_format(env->id, hex);
	buf_printf(out, "id %s\nreceived %" PRIu64 "\nfrom ", hex, env->received_ms);
	spool_put_value(out, env->from);
	if ((unsigned)env->ret < HK_ARRAY_LEN(spool_ret_names) && spool_ret_names[env->ret]) {
		buf_append_str(out, " ret=");
		buf_append_str(out, spool_ret_names[env->ret]);
	}
	spool_put_attr(out, "envid", env->envid);
	if ((unsigned)env->body < HK_ARRAY_LEN(spool_body_names) && spool_body_names[env->body]) {
		buf_append_str(out, " body=");
		buf_append_str(out, spool_body_names[env->body]);
	}
	if (env->smtputf8)
		buf_append_str(out, " smtputf8");
	buf_putc(out, '\n');
	if (env->source || env->listener || env->auth_user || env->client || env->helo) {
		buf_append_str(out, "source ");
		spool_put_value(out, env->source);
		spool_put_attr(out, "listener", env->listener);
		spool_put_attr(out, "user", env->auth_user);
		spool_put_attr(out, "client", env->client);
		spool_put_attr(out, "helo", env->helo);
		buf_putc(out, '\n');
	}
	if (env->route != NULL) {
		buf_append_str(out, "route ");
		spool_put_value(out, env->route);
		buf_putc(out, '\n');
	}
	buf_printf(out, "size %" PRIu64 "\nattempts %u next=%" PRIu64 "\n", env->size,
	    env->attempts, env->next_attempt_ms);
	for (i = 0; i < env->n_rcpts; i++) {
		const struct spool_rcpt *r = &env->rcpts[i];

		buf_printf(out, "rcpt %zu state=%s to=", i, spool_rcpt_state_name(r->state));
		spool_put_value(out, r->addr ? r->addr : "");
		spool_put_notify(out, r->notify);
		spool_put_attr(out, "orcpt", r->orcpt);
		buf_putc(out, '\n');
	}
	crc = crc32c(0, out->ptr + start, out->len - start);
	buf_printf(out, "END %08" PRIx32 "\n", crc);
}

/* Decoding */

struct spool_tok {
	const char *p;
	size_t n;
};

struct spool_dec {
	struct buf scratch; /* xtext decoding */
	const char *why;
};

enum {
	SPOOL_REC_ID = 1u << 0,
	SPOOL_REC_RECEIVED = 1u << 1,
	SPOOL_REC_FROM = 1u << 2,
	SPOOL_REC_SOURCE = 1u << 3,
	SPOOL_REC_SIZE = 1u << 4,
	SPOOL_REC_ATTEMPTS = 1u << 5,
	SPOOL_REC_ROUTE = 1u << 6,
};

static int
spool_dec_fail(struct spool_dec *d, const char *why)
{
	d->why = why;
	return -1;
}

static bool
spool_tok_is(const struct spool_tok *t, const char *s)
{
	return strlen(s) == t->n && memcmp(t->p, s, t->n) == 0;
}

/* Split an attribute token "key=value"; false when it has no '='. */
static bool
spool_tok_split(const struct spool_tok *t, struct spool_tok *key, struct spool_tok *val)
{
	const char *eq = memchr(t->p, '=', t->n);

	if (eq == NULL)
		return false;
	key->p = t->p;
	key->n = (size_t)(eq - t->p);
	val->p = eq + 1;
	val->n = t->n - key->n - 1;
	return true;
}

/* Decode an xtext value into a new string; *out must be NULL (else: duplicate attribute). */
static int
spool_dec_str(struct spool_dec *d, const struct spool_tok *t, char **out)
{
	if (*out != NULL)
		return spool_dec_fail(d, "duplicate attribute");
	buf_reset(&d->scratch);
	if (xtext_decode(&d->scratch, t->p, t->n) == -1)
		return spool_dec_fail(d, "bad xtext value");
	/* Values are C strings: a NUL would silently cut them short. */
	if (d->scratch.len > 0 && memchr(d->scratch.ptr, '\0', d->scratch.len) != NULL)
		return spool_dec_fail(d, "NUL byte in value");
	*out = xstrndup(d->scratch.len ? d->scratch.ptr : "", d->scratch.len);
	return 0;
}

static int
spool_dec_u64(struct spool_dec *d, const struct spool_tok *t, uint64_t max, uint64_t *out)
{
	if (num_parse_u64(t->p, t->n, max, out) == -1)
		return spool_dec_fail(d, "bad number");
	return 0;
}

/* Index of t in names[0..n) (NULL entries never match); -1 when absent. */
static int
spool_dec_enum(const struct spool_tok *t, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (names[i] != NULL && spool_tok_is(t, names[i]))
			return (int)i;
	}
	return -1;
}

static int
spool_dec_notify(struct spool_dec *d, const struct spool_tok *t, unsigned *out)
{
	const char *p = t->p, *end = t->p + t->n;
	unsigned bits = 0;

	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		struct spool_tok w = { p, (size_t)((comma ? comma : end) - p) };
		size_t i;

		for (i = 0; i < HK_ARRAY_LEN(spool_notify_names); i++) {
			if (spool_tok_is(&w, spool_notify_names[i].name))
				break;
		}
		if (i == HK_ARRAY_LEN(spool_notify_names))
			return spool_dec_fail(d, "unknown notify keyword");
		if (bits & spool_notify_names[i].bit)
			return spool_dec_fail(d, "repeated notify keyword");
		bits |= spool_notify_names[i].bit;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	/* RFC 3461 4.1: NEVER stands alone. */
	if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
		return spool_dec_fail(d, "NEVER combined with other notify keywords");
	*out = bits;
	return 0;
}

static int
spool_dec_id(struct spool_dec *d, const struct spool_tok *t, size_t nt, struct spool_env *env)
{
	size_t i;

	if (nt != 2 || t[1].n != ID_HEX_LEN)
		return spool_dec_fail(d, "bad id record");
	/* The canonical form only (upper case), as file names use it. */
	for (i = 0; i < ID_HEX_LEN; i++) {
		char c = t[1].p[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return spool_dec_fail(d, "bad id record");
	}
	if (id_parse(t[1].p, t[1].n, &env->id) == -1)
		return spool_dec_fail(d, "bad id record");
	return 0;
}

static int
spool_dec_received(struct spool_dec *d, const struct spool_tok *t, size_t nt,
    struct spool_env *env)
{
	if (nt != 2)
		return spool_dec_fail(d, "bad received record");
	return spool_dec_u64(d, &t[1], UINT64_MAX, &env->received_ms);
}

static int
spool_dec_size(struct spool_dec *d, const struct spool_tok *t, size_t nt, struct spool_env *env)
{
	if (nt != 2)
		return spool_dec_fail(d, "bad size record");
	return spool_dec_u64(d, &t[1], UINT64_MAX, &env->size);
}

static int
spool_dec_attempts(struct spool_dec *d, const struct spool_tok *t, size_t nt,
    struct spool_env *env)
{
	struct spool_tok key, val;
	uint64_t v;

	if (nt != 3 || !spool_tok_split(&t[2], &key, &val) || !spool_tok_is(&key, "next"))
		return spool_dec_fail(d, "bad attempts record");
	if (spool_dec_u64(d, &t[1], UINT_MAX, &v) == -1)
		return -1;
	env->attempts = (unsigned)v;
	return spool_dec_u64(d, &val, UINT64_MAX, &env->next_attempt_ms);
}

static int
spool_dec_from(struct spool_dec *d, const struct spool_tok *t, size_t nt, struct spool_env *env)
{
	bool seen_ret = false, seen_body = false;
	size_t i;

	if (nt < 2)
		return spool_dec_fail(d, "bad from record");
	if (spool_dec_str(d, &t[1], &env->from) == -1)
		return -1;
	for (i = 2; i < nt; i++) {
		struct spool_tok key, val;
		int v;

		if (spool_tok_is(&t[i], "smtputf8")) {
			if (env->smtputf8)
				return spool_dec_fail(d, "duplicate attribute");
			env->smtputf8 = true;
			continue;
		}
		if (!spool_tok_split(&t[i], &key, &val))
			return spool_dec_fail(d, "unknown from attribute");
		if (spool_tok_is(&key, "envid")) {
			if (spool_dec_str(d, &val, &env->envid) == -1)
				return -1;
		} else if (spool_tok_is(&key, "ret")) {
			v = spool_dec_enum(&val, spool_ret_names, HK_ARRAY_LEN(spool_ret_names));
			if (v < 0 || seen_ret)
				return spool_dec_fail(d, "bad or repeated ret");
			env->ret = (enum smtp_ret)v;
			seen_ret = true;
		} else if (spool_tok_is(&key, "body")) {
			v = spool_dec_enum(&val, spool_body_names, HK_ARRAY_LEN(spool_body_names));
			if (v < 0 || seen_body)
				return spool_dec_fail(d, "bad or repeated body");
			env->body = (enum smtp_body_type)v;
			seen_body = true;
		} else {
			return spool_dec_fail(d, "unknown from attribute");
		}
	}
	return 0;
}

static int
spool_dec_source(struct spool_dec *d, const struct spool_tok *t, size_t nt,
    struct spool_env *env)
{
	static const struct {
		const char *key;
		size_t off;
	} attrs[] = {
		{ "listener", offsetof(struct spool_env, listener) },
		{ "user", offsetof(struct spool_env, auth_user) },
		{ "client", offsetof(struct spool_env, client) },
		{ "helo", offsetof(struct spool_env, helo) },
	};
	size_t i, j;

	if (nt < 2)
		return spool_dec_fail(d, "bad source record");
	if (spool_dec_str(d, &t[1], &env->source) == -1)
		return -1;
	for (i = 2; i < nt; i++) {
		struct spool_tok key, val;

		if (!spool_tok_split(&t[i], &key, &val))
			return spool_dec_fail(d, "unknown source attribute");
		for (j = 0; j < HK_ARRAY_LEN(attrs); j++) {
			if (spool_tok_is(&key, attrs[j].key))
				break;
		}
		if (j == HK_ARRAY_LEN(attrs))
			return spool_dec_fail(d, "unknown source attribute");
		if (spool_dec_str(d, &val, (char **)((char *)env + attrs[j].off)) == -1)
			return -1;
	}
	return 0;
}

static int
spool_dec_route(struct spool_dec *d, const struct spool_tok *t, size_t nt, struct spool_env *env)
{
	if (nt != 2 || t[1].n == 0)
		return spool_dec_fail(d, "bad route record");
	return spool_dec_str(d, &t[1], &env->route);
}

static int
spool_dec_rcpt_attrs(struct spool_dec *d, const struct spool_tok *t, size_t nt,
    struct spool_rcpt *r)
{
	bool seen_state = false, seen_notify = false;
	size_t i;

	for (i = 2; i < nt; i++) {
		struct spool_tok key, val;

		if (!spool_tok_split(&t[i], &key, &val))
			return spool_dec_fail(d, "unknown rcpt attribute");
		if (spool_tok_is(&key, "to")) {
			if (spool_dec_str(d, &val, &r->addr) == -1)
				return -1;
		} else if (spool_tok_is(&key, "orcpt")) {
			if (spool_dec_str(d, &val, &r->orcpt) == -1)
				return -1;
		} else if (spool_tok_is(&key, "state")) {
			if (seen_state || spool_rcpt_state_parse(val.p, val.n, &r->state) == -1)
				return spool_dec_fail(d, "bad or repeated rcpt state");
			seen_state = true;
		} else if (spool_tok_is(&key, "notify")) {
			if (seen_notify)
				return spool_dec_fail(d, "duplicate attribute");
			if (spool_dec_notify(d, &val, &r->notify) == -1)
				return -1;
			seen_notify = true;
		} else {
			return spool_dec_fail(d, "unknown rcpt attribute");
		}
	}
	if (!seen_state || r->addr == NULL)
		return spool_dec_fail(d, "rcpt without state or to");
	return 0;
}

static int
spool_dec_rcpt(struct spool_dec *d, const struct spool_tok *t, size_t nt, struct spool_env *env)
{
	struct spool_rcpt r = { 0 };
	uint64_t idx;

	if (nt < 2 || spool_dec_u64(d, &t[1], SIZE_MAX, &idx) == -1)
		return spool_dec_fail(d, "bad rcpt index");
	if (idx != env->n_rcpts)
		return spool_dec_fail(d, "rcpt index out of order");
	if (spool_dec_rcpt_attrs(d, t, nt, &r) == -1) {
		free(r.addr);
		free(r.orcpt);
		return -1;
	}
	spool_env_push_rcpt(env, &r);
	return 0;
}

typedef int (*spool_dec_fn)(struct spool_dec *d, const struct spool_tok *t, size_t nt,
    struct spool_env *env);

static const struct {
	const char *name;
	unsigned once; /* SPOOL_REC_* bit; 0 = may repeat */
	spool_dec_fn fn;
} spool_records[] = {
	{ "id", SPOOL_REC_ID, spool_dec_id },
	{ "received", SPOOL_REC_RECEIVED, spool_dec_received },
	{ "from", SPOOL_REC_FROM, spool_dec_from },
	{ "source", SPOOL_REC_SOURCE, spool_dec_source },
	{ "size", SPOOL_REC_SIZE, spool_dec_size },
	{ "route", SPOOL_REC_ROUTE, spool_dec_route },
	{ "attempts", SPOOL_REC_ATTEMPTS, spool_dec_attempts },
	{ "rcpt", 0, spool_dec_rcpt },
};

/* Decode one record line p[0..n) (without its LF). */
static int
spool_dec_line(struct spool_dec *d, const char *p, size_t n, unsigned *seen,
    struct spool_env *env)
{
	struct spool_tok t[SPOOL_TOK_MAX];
	const char *end = p + n;
	size_t nt = 0, i;

	for (;;) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));

		if (nt == SPOOL_TOK_MAX)
			return spool_dec_fail(d, "too many fields");
		t[nt].p = p;
		t[nt].n = (size_t)((sp ? sp : end) - p);
		nt++;
		if (sp == NULL)
			break;
		p = sp + 1;
	}
	for (i = 0; i < HK_ARRAY_LEN(spool_records); i++) {
		if (spool_tok_is(&t[0], spool_records[i].name))
			break;
	}
	if (i == HK_ARRAY_LEN(spool_records))
		return spool_dec_fail(d, "unknown record");
	if (*seen & spool_records[i].once)
		return spool_dec_fail(d, "duplicate record");
	*seen |= spool_records[i].once;
	return spool_records[i].fn(d, t, nt, env);
}

/* Check the first line; returns the offset just after it, or 0 with *res set. */
static size_t
spool_dec_header(const char *p, size_t len, enum spool_format_result *res, const char **why)
{
	const char *nl, *v;
	size_t vn, i;

	if (memcmp(p, SPOOL_MAGIC, len < SPOOL_MAGIC_LEN ? len : SPOOL_MAGIC_LEN) != 0) {
		*res = SPOOL_FORMAT_BAD;
		*why = "not an envelope";
		return 0;
	}
	nl = len > SPOOL_MAGIC_LEN ? memchr(p, '\n', len) : NULL;
	if (nl == NULL) {
		*res = SPOOL_FORMAT_TRUNCATED;
		*why = "no END line";
		return 0;
	}
	v = p + SPOOL_MAGIC_LEN;
	vn = (size_t)(nl - v);
	for (i = 0; i < vn; i++) {
		if (v[i] < '0' || v[i] > '9')
			break;
	}
	if (vn == 0 || i != vn) {
		*res = SPOOL_FORMAT_BAD;
		*why = "bad version line";
		return 0;
	}
	if (vn != 1 || v[0] != '0' + SPOOL_FORMAT_VERSION) {
		*res = SPOOL_FORMAT_VERSION_UNKNOWN;
		*why = "unknown envelope version";
		return 0;
	}
	return (size_t)(nl - p) + 1;
}

/* Find and check the END line; returns its offset, or 0 with *res set. */
static size_t
spool_dec_end(const char *p, size_t len, size_t body_start, enum spool_format_result *res,
    const char **why)
{
	const char *prev;
	size_t start, i;
	uint64_t crc;

	*res = SPOOL_FORMAT_TRUNCATED;
	*why = "no END line";
	if (p[len - 1] != '\n')
		return 0;
	prev = memrchr(p, '\n', len - 1);
	start = prev ? (size_t)(prev - p) + 1 : 0;
	if (start < body_start)
		return 0;
	if (len - 1 - start < 3 || memcmp(p + start, "END", 3) != 0)
		return 0;
	*res = SPOOL_FORMAT_BAD;
	*why = "malformed END line";
	if (len - 1 - start != SPOOL_END_LEN || p[start + 3] != ' ')
		return 0;
	for (i = start + 4; i < len - 1; i++) {
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	}
	if (num_parse_hex64(p + start + 4, 8, &crc) == -1)
		return 0;
	if (crc32c(0, p, start) != (uint32_t)crc) {
		*res = SPOOL_FORMAT_CHECKSUM;
		*why = "checksum mismatch";
		return 0;
	}
	*res = SPOOL_FORMAT_OK;
	*why = NULL;
	return start;
}

size_t
spool_format_env_len(const char *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		const char *nl = memchr(p + off, '\n', len - off);

		if (nl == NULL)
			return 0;
		if ((size_t)(nl - p) - off >= 4 && memcmp(p + off, "END ", 4) == 0)
			return (size_t)(nl - p) + 1;
		off = (size_t)(nl - p) + 1;
	}
	return 0;
}

enum spool_format_result
spool_format_decode(const char *p, size_t len, struct spool_env *out, const char **why)
{
	struct spool_dec d = { .scratch = BUF_INIT, .why = NULL };
	enum spool_format_result res = SPOOL_FORMAT_BAD;
	const char *dummy;
	size_t off, end;
	unsigned seen = 0;

	if (why == NULL)
		why = &dummy;
	memset(out, 0, sizeof(*out));
	if (len == 0) {
		*why = "empty envelope";
		return SPOOL_FORMAT_TRUNCATED;
	}
	if (len > SPOOL_ENV_MAX) {
		*why = "envelope too large";
		return SPOOL_FORMAT_BAD;
	}
	off = spool_dec_header(p, len, &res, why);
	if (off == 0)
		return res;
	end = spool_dec_end(p, len, off, &res, why);
	if (res != SPOOL_FORMAT_OK)
		return res;
	while (off < end) {
		const char *nl = memchr(p + off, '\n', end - off);

		/* end is just after an LF, so every record line has one. */
		HK_ASSERT(nl != NULL);
		if (spool_dec_line(&d, p + off, (size_t)(nl - p) - off, &seen, out) == -1)
			goto fail;
		off = (size_t)(nl - p) + 1;
	}
	if (!(seen & SPOOL_REC_ID) || !(seen & SPOOL_REC_FROM) || out->n_rcpts == 0) {
		d.why = "missing id, from or rcpt";
		goto fail;
	}
	buf_fini(&d.scratch);
	*why = NULL;
	return SPOOL_FORMAT_OK;
fail:
	buf_fini(&d.scratch);
	spool_env_fini(out);
	*why = d.why;
	return SPOOL_FORMAT_BAD;
}
