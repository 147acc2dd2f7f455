/* test_spool_format.c - envelope encoding, strict decoding, golden encodings. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spool/spool_format.h"
#include "util/buf.h"
#include "util/crc32c.h"
#include "util/xalloc.h"
#include "util/poison.h"

/* Helpers */

static bool
str_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void
assert_env_equal(const struct spool_env *a, const struct spool_env *b)
{
	size_t i;

	assert_true(a->id == b->id);
	assert_true(a->received_ms == b->received_ms);
	assert_true(str_same(a->from, b->from));
	assert_int_equal(a->ret, b->ret);
	assert_true(str_same(a->envid, b->envid));
	assert_int_equal(a->body, b->body);
	assert_int_equal(a->smtputf8, b->smtputf8);
	assert_true(str_same(a->source, b->source));
	assert_true(str_same(a->listener, b->listener));
	assert_true(str_same(a->auth_user, b->auth_user));
	assert_true(str_same(a->client, b->client));
	assert_true(str_same(a->helo, b->helo));
	assert_true(a->size == b->size);
	assert_int_equal(a->attempts, b->attempts);
	assert_true(a->next_attempt_ms == b->next_attempt_ms);
	assert_int_equal(a->n_rcpts, b->n_rcpts);
	for (i = 0; i < a->n_rcpts; i++) {
		assert_true(str_same(a->rcpts[i].addr, b->rcpts[i].addr));
		assert_int_equal(a->rcpts[i].state, b->rcpts[i].state);
		assert_int_equal(a->rcpts[i].notify, b->rcpts[i].notify);
		assert_true(str_same(a->rcpts[i].orcpt, b->rcpts[i].orcpt));
	}
}

/* An envelope using every field, with values that would forge records if not encoded. */
static void
env_full(struct spool_env *e)
{
	memset(e, 0, sizeof(*e));
	e->id = 0x0193F2A1C4000007ULL;
	e->received_ms = 1732468369123ULL;
	e->from = xstrdup("app+tag=x@example.com");
	e->ret = SMTP_RET_HDRS;
	e->envid = xstrdup("abc def\r\nrcpt 9 state=sent to=x");
	e->body = SMTP_BODY_8BITMIME;
	e->smtputf8 = true;
	e->source = xstrdup("smtp");
	e->listener = xstrdup("127.0.0.1:2525");
	e->auth_user = xstrdup("app user");
	e->client = xstrdup("::1");
	e->helo = xstrdup("app.example\nEND 00000000");
	e->size = 4211;
	e->attempts = 3;
	e->next_attempt_ms = 1732468999000ULL;
	spool_env_add_rcpt(e, "a@example.net", SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY,
	    "rfc822;a@example.net");
	spool_env_add_rcpt(e, "j\xc3\xbcrgen@b\xc3\xbc\x63her.example", SMTP_NOTIFY_NEVER, NULL);
	spool_env_add_rcpt(e, "\"odd =+ \\\" name\"@example.org", 0, "rfc822;x+2By=@z");
	e->rcpts[1].state = SPOOL_RCPT_SENT;
	e->rcpts[2].state = SPOOL_RCPT_SUPPRESSED;
}

/* The smallest valid envelope: null sender, one recipient, nothing optional. */
static void
env_min(struct spool_env *e)
{
	memset(e, 0, sizeof(*e));
	e->id = 1;
	e->from = xstrdup("");
	spool_env_add_rcpt(e, "postmaster@example.net", 0, NULL);
}

static enum spool_format_result
decode_str(const char *s, struct spool_env *out, const char **why)
{
	return spool_format_decode(s, strlen(s), out, why);
}

/* Append "END <crc>" for everything in b, as the encoder does. */
static void
seal(struct buf *b)
{
	uint32_t crc = crc32c(0, b->ptr, b->len);

	buf_printf(b, "END %08" PRIx32 "\n", crc);
}

/* Decode header + records + a correct END line; the result and reason. */
static enum spool_format_result
decode_sealed(const char *records, const char **why)
{
	struct buf b = BUF_INIT;
	struct spool_env env;
	enum spool_format_result r;

	buf_append_str(&b, records);
	seal(&b);
	r = spool_format_decode(b.ptr, b.len, &env, why);
	if (r == SPOOL_FORMAT_OK)
		spool_env_fini(&env);
	else
		assert_null(env.rcpts);
	buf_fini(&b);
	return r;
}

#define HDR "hikyaku-envelope 1\n"
#define MIN_RECS "id 0000000000000001\nfrom \nrcpt 0 state=queued to=a@b\n"

/* Round trips */

static void
roundtrip(const struct spool_env *e)
{
	struct buf b = BUF_INIT, b2 = BUF_INIT;
	struct spool_env d;
	const char *why = "unset";

	spool_format_encode(e, &b);
	assert_int_equal(spool_format_decode(b.ptr, b.len, &d, &why), SPOOL_FORMAT_OK);
	assert_null(why);
	assert_env_equal(e, &d);
	/* Encoding is canonical: the same envelope gives the same bytes. */
	spool_format_encode(&d, &b2);
	assert_int_equal(b.len, b2.len);
	assert_memory_equal(b.ptr, b2.ptr, b.len);
	spool_env_fini(&d);
	buf_fini(&b);
	buf_fini(&b2);
}

static void
test_roundtrip_full(void **state)
{
	struct spool_env e;

	(void)state;
	env_full(&e);
	roundtrip(&e);
	spool_env_fini(&e);
}

/* A body after the END line, even one full of lines that look like records or END lines. */
static void
test_env_len_with_embedded_body(void **state)
{
	static const char body[] = "END 00000000\nrcpt 9 state=queued to=x@y\nEND\n\nno newline";
	struct buf b = BUF_INIT;
	struct spool_env e, d;
	size_t env_len;

	(void)state;
	env_full(&e);
	spool_format_encode(&e, &b);
	env_len = b.len;
	assert_int_equal(spool_format_env_len(b.ptr, b.len), env_len);
	buf_append_str(&b, body);
	assert_int_equal(spool_format_env_len(b.ptr, b.len), env_len);
	assert_int_equal(spool_format_decode(b.ptr, env_len, &d, NULL), SPOOL_FORMAT_OK);
	assert_env_equal(&e, &d);
	/* The whole file is not an envelope: END is not its last line. */
	spool_env_fini(&d);
	assert_int_not_equal(spool_format_decode(b.ptr, b.len, &d, NULL), SPOOL_FORMAT_OK);
	/* No END line at all, or one cut before its LF: not found. */
	assert_int_equal(spool_format_env_len(b.ptr, env_len - 1), 0);
	assert_int_equal(spool_format_env_len("hikyaku-envelope 1\nid 1\n", 24), 0);
	assert_int_equal(spool_format_env_len("", 0), 0);
	spool_env_fini(&e);
	buf_fini(&b);
}

static void
test_roundtrip_min(void **state)
{
	struct spool_env e;

	(void)state;
	env_min(&e);
	roundtrip(&e);
	spool_env_fini(&e);
}

static void
test_roundtrip_empty_values_differ_from_absent(void **state)
{
	struct spool_env e;
	struct buf b = BUF_INIT;
	struct spool_env d;

	(void)state;
	env_min(&e);
	e.envid = xstrdup("");
	e.source = xstrdup("");
	e.helo = xstrdup("");
	e.rcpts[0].orcpt = xstrdup("");
	e.rcpts[0].addr[0] = '\0';
	roundtrip(&e);
	spool_format_encode(&e, &b);
	assert_int_equal(spool_format_decode(b.ptr, b.len, &d, NULL), SPOOL_FORMAT_OK);
	assert_string_equal(d.envid, "");
	assert_null(d.listener);
	assert_string_equal(d.helo, "");
	assert_null(d.client);
	spool_env_fini(&d);
	spool_env_fini(&e);
	buf_fini(&b);
}

static void
test_roundtrip_every_byte(void **state)
{
	struct spool_env e;
	char all[255];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(all); i++)
		all[i] = (char)(i + 1);
	env_min(&e);
	free(e.from);
	e.from = xstrndup(all, sizeof(all));
	e.auth_user = xstrndup(all, sizeof(all));
	/* A source line always has a value: attributes without a source come back with "". */
	e.source = xstrdup("sendmail");
	spool_env_add_rcpt(&e, e.from, SMTP_NOTIFY_SUCCESS, e.from);
	roundtrip(&e);
	spool_env_fini(&e);
}

static void
test_roundtrip_every_state_and_enum(void **state)
{
	struct spool_env e;
	size_t i;

	(void)state;
	for (i = 0; i < SPOOL_RCPT_STATE_COUNT; i++) {
		env_min(&e);
		e.rcpts[0].state = (enum spool_rcpt_state)i;
		e.ret = (enum smtp_ret)(i % 3);
		e.body = (enum smtp_body_type)(i % 4);
		e.rcpts[0].notify = i % 2 ? SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE |
		    SMTP_NOTIFY_DELAY : SMTP_NOTIFY_DELAY;
		e.id = UINT64_MAX - i;
		e.received_ms = UINT64_MAX;
		e.size = UINT64_MAX;
		e.attempts = UINT32_MAX;
		roundtrip(&e);
		spool_env_fini(&e);
	}
}

static void
test_encoded_values_cannot_forge_records(void **state)
{
	struct spool_env e;
	struct buf b = BUF_INIT;
	size_t i, lines = 0;

	(void)state;
	env_full(&e);
	spool_format_encode(&e, &b);
	for (i = 0; i < b.len; i++) {
		unsigned char c = (unsigned char)b.ptr[i];

		assert_true(c == '\n' || (c >= ' ' && c <= '~'));
		lines += c == '\n';
	}
	/* header id received from source size attempts 3*rcpt END */
	assert_int_equal(lines, 11);
	assert_non_null(strstr(b.ptr, "\nfrom app+2Btag+3Dx@example.com ret=HDRS envid=abc+20def"));
	spool_env_fini(&e);
	buf_fini(&b);
}

/* Golden encodings: tests/data/envelope/<case>.ref; HK_GOLDEN_UPDATE=1 rewrites them. */

static void
golden_full(struct spool_env *e)
{
	env_full(e);
}

static void
golden_min(struct spool_env *e)
{
	env_min(e);
}

static void
golden_bounce_null_sender(struct spool_env *e)
{
	env_min(e);
	e->id = 0x0193F2A1C4000101ULL;
	e->received_ms = 1732468400000ULL;
	e->body = SMTP_BODY_7BIT;
	e->source = xstrdup("api");
	e->size = 12;
	e->next_attempt_ms = 1732468400000ULL;
	e->rcpts[0].state = SPOOL_RCPT_DEFERRED;
	e->rcpts[0].notify = SMTP_NOTIFY_NEVER;
}

/* An administrator's hold: unfinished recipients held, a delivered one left as it was. */
static void
golden_held(struct spool_env *e)
{
	env_full(e);
	e->rcpts[0].state = SPOOL_RCPT_HELD;
	e->rcpts[1].state = SPOOL_RCPT_SENT;
	e->rcpts[2].state = SPOOL_RCPT_HELD;
}

static const struct {
	const char *name;
	void (*build)(struct spool_env *e);
} golden_cases[] = {
	{ "full", golden_full },
	{ "min", golden_min },
	{ "bounce_null_sender", golden_bounce_null_sender },
	{ "held", golden_held },
};

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	*len = b.len;
	return buf_steal(&b);
}

static void
test_golden_encodings(void **state)
{
	const char *dir = getenv("HK_DATA_DIR");
	const char *update = getenv("HK_GOLDEN_UPDATE");
	size_t i;

	(void)state;
	assert_non_null(dir);
	for (i = 0; i < HK_ARRAY_LEN(golden_cases); i++) {
		struct spool_env e, d;
		struct buf out = BUF_INIT;
		char path[4096];
		size_t len = 0;
		char *ref;

		golden_cases[i].build(&e);
		spool_format_encode(&e, &out);
		snprintf(path, sizeof(path), "%s/envelope/%s.ref", dir, golden_cases[i].name);
		if (update != NULL && strcmp(update, "1") == 0) {
			FILE *f = fopen(path, "wb");

			assert_non_null(f);
			assert_int_equal(fwrite(out.ptr, 1, out.len, f), out.len);
			assert_int_equal(fclose(f), 0);
		}
		ref = read_file(path, &len);
		if (ref == NULL)
			fail_msg("missing golden file %s", path);
		if (len != out.len || memcmp(ref, out.ptr, len) != 0)
			fail_msg("%s differs from the encoding:\n%s", path, out.ptr);
		/* The golden file itself decodes back to the same envelope. */
		assert_int_equal(spool_format_decode(ref, len, &d, NULL), SPOOL_FORMAT_OK);
		assert_env_equal(&e, &d);
		spool_env_fini(&d);
		free(ref);
		buf_fini(&out);
		spool_env_fini(&e);
	}
}

/* Decoding errors */

static void
test_decode_truncated(void **state)
{
	struct spool_env e, d;
	struct buf b = BUF_INIT;
	const char *why;
	size_t cut;

	(void)state;
	env_full(&e);
	spool_format_encode(&e, &b);
	/* Any prefix is refused, and never OK. */
	for (cut = 0; cut < b.len; cut++) {
		enum spool_format_result r = spool_format_decode(b.ptr, cut, &d, &why);

		assert_int_not_equal(r, SPOOL_FORMAT_OK);
		assert_non_null(why);
		assert_null(d.rcpts);
		assert_null(d.from);
	}
	/* Cut at a line boundary: no END line. */
	assert_int_equal(spool_format_decode(b.ptr, (size_t)(strstr(b.ptr, "END ") - b.ptr), &d,
	    &why), SPOOL_FORMAT_TRUNCATED);
	assert_string_equal(why, "no END line");
	/* Cut inside the END line. */
	assert_int_equal(spool_format_decode(b.ptr, b.len - 3, &d, &why),
	    SPOOL_FORMAT_TRUNCATED);
	assert_int_equal(spool_format_decode(b.ptr, 0, &d, &why), SPOOL_FORMAT_TRUNCATED);
	assert_int_equal(spool_format_decode(b.ptr, 5, &d, &why), SPOOL_FORMAT_TRUNCATED);
	spool_env_fini(&e);
	buf_fini(&b);
}

static void
test_decode_flipped_byte_is_checksum_error(void **state)
{
	struct spool_env e, d;
	struct buf b = BUF_INIT;
	size_t i, header_len = strlen(HDR), end_at;

	(void)state;
	env_full(&e);
	spool_format_encode(&e, &b);
	end_at = (size_t)(strstr(b.ptr, "\nEND ") - b.ptr) + 1;
	for (i = header_len; i + 1 < end_at; i++) {
		const char *why = NULL;

		b.ptr[i] ^= 0x01;
		assert_int_equal(spool_format_decode(b.ptr, b.len, &d, &why), SPOOL_FORMAT_CHECKSUM);
		assert_string_equal(why, "checksum mismatch");
		b.ptr[i] ^= 0x01;
	}
	/* A flipped checksum digit. */
	b.ptr[b.len - 2] = b.ptr[b.len - 2] == '0' ? '1' : '0';
	assert_int_equal(spool_format_decode(b.ptr, b.len, &d, NULL), SPOOL_FORMAT_CHECKSUM);
	spool_env_fini(&e);
	buf_fini(&b);
}

static void
test_decode_wrong_version(void **state)
{
	struct buf b = BUF_INIT;
	struct spool_env d;
	const char *why;

	(void)state;
	buf_append_str(&b, "hikyaku-envelope 2\n" MIN_RECS);
	seal(&b);
	assert_int_equal(spool_format_decode(b.ptr, b.len, &d, &why),
	    SPOOL_FORMAT_VERSION_UNKNOWN);
	assert_non_null(why);
	buf_reset(&b);
	buf_append_str(&b, "hikyaku-envelope 10\n" MIN_RECS);
	seal(&b);
	assert_int_equal(spool_format_decode(b.ptr, b.len, &d, &why),
	    SPOOL_FORMAT_VERSION_UNKNOWN);
	buf_reset(&b);
	buf_append_str(&b, "hikyaku-envelope x\n" MIN_RECS);
	seal(&b);
	assert_int_equal(spool_format_decode(b.ptr, b.len, &d, &why), SPOOL_FORMAT_BAD);
	assert_int_equal(decode_str("From: someone\r\n\r\nhello\r\n", &d, &why),
	    SPOOL_FORMAT_BAD);
	assert_string_equal(why, "not an envelope");
	buf_fini(&b);
}

static void
test_decode_minimal_sealed_is_ok(void **state)
{
	(void)state;
	/* The error tests below differ from this by one thing each. */
	assert_int_equal(decode_sealed(HDR MIN_RECS, NULL), SPOOL_FORMAT_OK);
}

static void
test_decode_bad_records(void **state)
{
	static const struct {
		const char *recs;
		const char *why;
	} cases[] = {
		{ HDR MIN_RECS "hops 3\n", "unknown record" },
		{ HDR "\n" MIN_RECS, "unknown record" },
		{ HDR MIN_RECS "size 1\nsize 2\n", "duplicate record" },
		{ HDR MIN_RECS "id 0000000000000002\n", "duplicate record" },
		{ HDR "id 000000000000000a\nfrom \nrcpt 0 state=queued to=a\n", "bad id record" },
		{ HDR "id 1\nfrom \nrcpt 0 state=queued to=a\n", "bad id record" },
		{ HDR "from \nrcpt 0 state=queued to=a\n", "missing id, from or rcpt" },
		{ HDR "id 0000000000000001\nrcpt 0 state=queued to=a\n", "missing id, from or rcpt" },
		{ HDR "id 0000000000000001\nfrom \n", "missing id, from or rcpt" },
		{ HDR "id 0000000000000001\nfrom a+ZZ\nrcpt 0 state=queued to=a\n",
		  "bad xtext value" },
		{ HDR "id 0000000000000001\nfrom a+4\nrcpt 0 state=queued to=a\n",
		  "bad xtext value" },
		{ HDR "id 0000000000000001\nfrom a=b\nrcpt 0 state=queued to=a\n",
		  "bad xtext value" },
		{ HDR "id 0000000000000001\nfrom a\r\nrcpt 0 state=queued to=a\n",
		  "bad xtext value" },
		{ HDR "id 0000000000000001\nfrom a+00b\nrcpt 0 state=queued to=a\n",
		  "NUL byte in value" },
		{ HDR "id 0000000000000001\nfrom  ret=FULL ret=HDRS\nrcpt 0 state=queued to=a\n",
		  "bad or repeated ret" },
		{ HDR "id 0000000000000001\nfrom  ret=SOME\nrcpt 0 state=queued to=a\n",
		  "bad or repeated ret" },
		{ HDR "id 0000000000000001\nfrom  body=9BIT\nrcpt 0 state=queued to=a\n",
		  "bad or repeated body" },
		{ HDR "id 0000000000000001\nfrom  envid=a envid=b\nrcpt 0 state=queued to=a\n",
		  "duplicate attribute" },
		{ HDR "id 0000000000000001\nfrom  smtputf8 smtputf8\nrcpt 0 state=queued to=a\n",
		  "duplicate attribute" },
		{ HDR "id 0000000000000001\nfrom  x=1\nrcpt 0 state=queued to=a\n",
		  "unknown from attribute" },
		{ HDR "id 0000000000000001\nfrom\nrcpt 0 state=queued to=a\n", "bad from record" },
		{ HDR MIN_RECS "source smtp port=25\n", "unknown source attribute" },
		{ HDR MIN_RECS "source smtp helo=a helo=b\n", "duplicate attribute" },
		{ HDR MIN_RECS "received -1\n", "bad number" },
		{ HDR MIN_RECS "received 18446744073709551616\n", "bad number" },
		{ HDR MIN_RECS "size 1 2\n", "bad size record" },
		{ HDR MIN_RECS "attempts 1\n", "bad attempts record" },
		{ HDR MIN_RECS "attempts 4294967296 next=0\n", "bad number" },
		{ HDR MIN_RECS "rcpt 2 state=queued to=b\n", "rcpt index out of order" },
		{ HDR MIN_RECS "rcpt 0 state=queued to=b\n", "rcpt index out of order" },
		{ HDR MIN_RECS "rcpt 1 to=b\n", "rcpt without state or to" },
		{ HDR MIN_RECS "rcpt 1 state=queued\n", "rcpt without state or to" },
		{ HDR MIN_RECS "rcpt 1 state=gone to=b\n", "bad or repeated rcpt state" },
		{ HDR MIN_RECS "rcpt 1 state=queued to=b to=c\n", "duplicate attribute" },
		{ HDR MIN_RECS "rcpt 1 state=queued to=b notify=NEVER,DELAY\n",
		  "NEVER combined with other notify keywords" },
		{ HDR MIN_RECS "rcpt 1 state=queued to=b notify=DELAY,DELAY\n",
		  "repeated notify keyword" },
		{ HDR MIN_RECS "rcpt 1 state=queued to=b notify=\n", "unknown notify keyword" },
		{ HDR MIN_RECS "rcpt 1 state=queued to=b notify=failure\n",
		  "unknown notify keyword" },
		{ HDR MIN_RECS "rcpt 1 state=queued to=b dsn=x\n", "unknown rcpt attribute" },
		{ HDR MIN_RECS "rcpt 1 state=queued to=b a=1 b=2 c=3 d=4 e=5\n", "too many fields" },
		{ HDR MIN_RECS "rcpt x state=queued to=b\n", "bad rcpt index" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(cases); i++) {
		const char *why = NULL;
		enum spool_format_result r = decode_sealed(cases[i].recs, &why);

		if (r != SPOOL_FORMAT_BAD || why == NULL || strcmp(why, cases[i].why) != 0)
			fail_msg("case %zu: result %d why \"%s\", want \"%s\"", i, r,
			    why ? why : "(null)", cases[i].why);
	}
}

static void
test_decode_malformed_end(void **state)
{
	struct spool_env d;
	const char *why;

	(void)state;
	assert_int_equal(decode_str(HDR MIN_RECS "END 5A1C09E2\n", &d, &why), SPOOL_FORMAT_BAD);
	assert_string_equal(why, "malformed END line");
	assert_int_equal(decode_str(HDR MIN_RECS "END  5a1c09e2\n", &d, &why), SPOOL_FORMAT_BAD);
	assert_int_equal(decode_str(HDR MIN_RECS "END\n", &d, &why), SPOOL_FORMAT_BAD);
	assert_int_equal(decode_str(HDR MIN_RECS "END 5a1c09e2", &d, &why),
	    SPOOL_FORMAT_TRUNCATED);
	assert_int_equal(decode_str(HDR, &d, &why), SPOOL_FORMAT_TRUNCATED);
	assert_int_equal(decode_str(HDR "END 00000000\n", &d, &why), SPOOL_FORMAT_CHECKSUM);
}

static void
test_decode_too_large(void **state)
{
	struct spool_env d;
	const char *why;
	char *big = xmalloc(SPOOL_ENV_MAX + 1);

	(void)state;
	memset(big, 'a', SPOOL_ENV_MAX + 1);
	assert_int_equal(spool_format_decode(big, SPOOL_ENV_MAX + 1, &d, &why), SPOOL_FORMAT_BAD);
	assert_string_equal(why, "envelope too large");
	free(big);
}

static void
test_rcpt_state_names(void **state)
{
	enum spool_rcpt_state s;
	size_t i;

	(void)state;
	for (i = 0; i < SPOOL_RCPT_STATE_COUNT; i++) {
		const char *n = spool_rcpt_state_name((enum spool_rcpt_state)i);

		assert_int_equal(spool_rcpt_state_parse(n, strlen(n), &s), 0);
		assert_int_equal(s, (enum spool_rcpt_state)i);
	}
	assert_string_equal(spool_rcpt_state_name(SPOOL_RCPT_DEFERRED), "deferred");
	assert_int_equal(spool_rcpt_state_parse("queue", 5, &s), -1);
	assert_int_equal(spool_rcpt_state_parse("queuedx", 7, &s), -1);
	assert_string_equal(spool_rcpt_state_name(SPOOL_RCPT_STATE_COUNT), "unknown");
}

static void
test_add_rcpt_copies(void **state)
{
	struct spool_env e = { 0 };
	char addr[] = "a@example.net", orcpt[] = "rfc822;a@example.net";

	(void)state;
	spool_env_add_rcpt(&e, addr, SMTP_NOTIFY_DELAY, orcpt);
	spool_env_add_rcpt(&e, "b@example.net", 0, NULL);
	addr[0] = 'z';
	orcpt[0] = 'z';
	assert_int_equal(e.n_rcpts, 2);
	assert_string_equal(e.rcpts[0].addr, "a@example.net");
	assert_string_equal(e.rcpts[0].orcpt, "rfc822;a@example.net");
	assert_int_equal(e.rcpts[0].state, SPOOL_RCPT_QUEUED);
	assert_int_equal(e.rcpts[0].notify, SMTP_NOTIFY_DELAY);
	assert_null(e.rcpts[1].orcpt);
	spool_env_fini(&e);
	assert_null(e.rcpts);
	assert_int_equal(e.n_rcpts, 0);
	spool_env_fini(NULL);
}

/* The optional route record: written only when set, old envelopes (without it) still decode. */
static void
test_route_record_both_ways(void **state)
{
	struct spool_env e, d;
	struct buf b = BUF_INIT;
	const char *why = NULL;

	(void)state;
	env_min(&e);
	e.route = xstrdup("backup first");
	spool_format_encode(&e, &b);
	assert_non_null(strstr(b.ptr, "\nroute backup+20first\n"));
	assert_int_equal(spool_format_decode(b.ptr, b.len, &d, &why), SPOOL_FORMAT_OK);
	assert_string_equal(d.route, "backup first");
	spool_env_fini(&d);
	free(e.route);
	e.route = NULL;
	buf_reset(&b);
	spool_format_encode(&e, &b);
	assert_null(strstr(b.ptr, "route"));
	assert_int_equal(spool_format_decode(b.ptr, b.len, &d, &why), SPOOL_FORMAT_OK);
	assert_null(d.route);
	spool_env_fini(&d);
	spool_env_fini(&e);
	buf_fini(&b);
	/* An envelope as written before the record existed. */
	assert_int_equal(decode_sealed(HDR MIN_RECS, NULL), SPOOL_FORMAT_OK);
	assert_int_equal(decode_sealed(HDR MIN_RECS "route a\nroute b\n", &why),
	    SPOOL_FORMAT_BAD);
	assert_string_equal(why, "duplicate record");
	assert_int_equal(decode_sealed(HDR MIN_RECS "route\n", &why), SPOOL_FORMAT_BAD);
	assert_string_equal(why, "bad route record");
	assert_int_equal(decode_sealed(HDR MIN_RECS "route a b\n", &why), SPOOL_FORMAT_BAD);
	assert_string_equal(why, "bad route record");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_full),
		cmocka_unit_test(test_roundtrip_min),
		cmocka_unit_test(test_env_len_with_embedded_body),
		cmocka_unit_test(test_roundtrip_empty_values_differ_from_absent),
		cmocka_unit_test(test_roundtrip_every_byte),
		cmocka_unit_test(test_roundtrip_every_state_and_enum),
		cmocka_unit_test(test_encoded_values_cannot_forge_records),
		cmocka_unit_test(test_golden_encodings),
		cmocka_unit_test(test_decode_truncated),
		cmocka_unit_test(test_decode_flipped_byte_is_checksum_error),
		cmocka_unit_test(test_decode_wrong_version),
		cmocka_unit_test(test_decode_minimal_sealed_is_ok),
		cmocka_unit_test(test_decode_bad_records),
		cmocka_unit_test(test_decode_malformed_end),
		cmocka_unit_test(test_decode_too_large),
		cmocka_unit_test(test_rcpt_state_names),
		cmocka_unit_test(test_add_rcpt_copies),
		cmocka_unit_test(test_route_record_both_ways),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
