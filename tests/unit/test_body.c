/*
 * test_body.c - DATA scanner and BDAT chunk checker. Every case runs unsplit, at every split
 * point, at every pair of split points (small inputs) and one byte at a time: the result must
 * not depend on how the network cut the stream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/body.h"
#include "util/buf.h"
#include "util/poison.h"

int main(void);

#define LF BODY_FLAG_BARE_LF
#define CR BODY_FLAG_BARE_CR
#define NOT_DONE ((size_t)-1)

struct body_case {
	const char *in;
	size_t in_len;    /* 0: strlen(in) */
	const char *out;  /* canonical body */
	size_t out_len;   /* 0: strlen(out) */
	unsigned flags;
	size_t consumed;  /* NOT_DONE when the data does not end; 0: in_len */
};

static const struct body_case body_cases[] = {
	/* Plain bodies and the terminator. */
	{ ".\r\n", 0, "", 0, 0, 0 },
	{ "a\r\n.\r\n", 0, "a\r\n", 0, 0, 0 },
	{ "Subject: x\r\n\r\nhello\r\n.\r\n", 0, "Subject: x\r\n\r\nhello\r\n", 0, 0, 0 },
	{ "a\r\n.\r\nMAIL FROM:<x@y>\r\n", 0, "a\r\n", 0, 0, 6 },
	{ "a\r\n", 0, "a\r\n", 0, 0, NOT_DONE },
	{ "a", 0, "a", 0, 0, NOT_DONE },
	{ "", 0, "", 0, 0, NOT_DONE },
	{ "\r\n.\r\n", 0, "\r\n", 0, 0, 0 },
	{ "\r\n\r\n.\r\n", 0, "\r\n\r\n", 0, 0, 0 },
	/* RFC 5321 4.5.2 dot-unstuffing. */
	{ "..\r\n.\r\n", 0, ".\r\n", 0, 0, 0 },
	{ "...\r\n.\r\n", 0, "..\r\n", 0, 0, 0 },
	{ "..x\r\n.\r\n", 0, ".x\r\n", 0, 0, 0 },
	{ ".x\r\n.\r\n", 0, "x\r\n", 0, 0, 0 },
	{ "a.\r\n.b\r\n..\r\n.\r\n", 0, "a.\r\nb\r\n.\r\n", 0, 0, 0 },
	{ "a\r\n. \r\n.\r\n", 0, "a\r\n \r\n", 0, 0, 0 },
	{ "x\r\n.\r\n.\r\n", 0, "x\r\n", 0, 0, 6 },
	/* Smuggling: none of these ends the data, all are flagged. */
	{ "a\n.\nb\r\n.\r\n", 0, "a\r\n.\r\nb\r\n", 0, LF, 0 },
	{ "a\r.\rb\r\n.\r\n", 0, "a\r\n.\r\nb\r\n", 0, CR, 0 },
	{ "a\r\n.\nb\r\n.\r\n", 0, "a\r\n.\r\nb\r\n", 0, LF, 0 },
	{ "a\n.\r\nb\r\n.\r\n", 0, "a\r\n.\r\nb\r\n", 0, LF, 0 },
	{ "a\r.\r\nb\r\n.\r\n", 0, "a\r\n.\r\nb\r\n", 0, CR, 0 },
	{ "a\r\n.\rb\r\n.\r\n", 0, "a\r\n\r\nb\r\n", 0, CR, 0 },
	{ "a\r\n.\r\r\n.\r\n", 0, "a\r\n\r\n\r\n", 0, CR, 0 },
	{ "a\n.\n", 0, "a\r\n.\r\n", 0, LF, NOT_DONE },
	{ "a\r.\r", 0, "a\r\n.", 0, CR, NOT_DONE },
	{ "a\r\n.\n", 0, "a\r\n.\r\n", 0, LF, NOT_DONE },
	{ "a\n.\r\n", 0, "a\r\n.\r\n", 0, LF, NOT_DONE },
	{ "a\r\n.\r", 0, "a\r\n", 0, 0, NOT_DONE },
	{ "\n.\r\n", 0, "\r\n.\r\n", 0, LF, NOT_DONE },
	{ "\n.\r\nMAIL FROM:<e@vil>\r\n.\r\n", 0, "\r\n.\r\nMAIL FROM:<e@vil>\r\n", 0, LF, 0 },
	{ "a\r\r\n.\r\n", 0, "a\r\n\r\n", 0, CR, 0 },
	{ "a\n\r\n.\r\n", 0, "a\r\n\r\n", 0, LF, 0 },
	{ "\r\r\n.\r\n", 0, "\r\n\r\n", 0, CR, 0 },
	{ "\n..\r\n.\r\n", 0, "\r\n..\r\n", 0, LF, 0 },
	{ "a\rb\nc\r\n.\r\n", 0, "a\r\nb\r\nc\r\n", 0, CR | LF, 0 },
	/* Byte classes. */
	{ "caf\xc3\xa9\r\n.\r\n", 0, "caf\xc3\xa9\r\n", 0, BODY_FLAG_8BIT, 0 },
	{ "a\0b\r\n.\r\n", 8, "a\0b\r\n", 5, BODY_FLAG_NUL, 0 },
	{ "0123456789abcdef\0\x80\r\n.\r\n", 23, "0123456789abcdef\0\x80\r\n", 20,
	  BODY_FLAG_NUL | BODY_FLAG_8BIT, 0 },
};

static void
run_feeds(const struct body_case *c, const size_t *cuts, size_t ncuts, struct buf *out,
    struct body_scan *sc, size_t *consumed)
{
	size_t len = c->in_len != 0 ? c->in_len : strlen(c->in), pos = 0, k;

	body_scan_init(sc, 0, 0);
	*consumed = NOT_DONE;
	for (k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : len, used = 0;
		enum body_scan_result r;

		if (end < pos)
			continue;
		r = body_scan_feed(sc, c->in + pos, end - pos, out, &used);
		if (r == BODY_SCAN_DONE) {
			assert_true(body_scan_is_done(sc));
			*consumed = pos + used;
			return;
		}
		assert_int_equal(used, end - pos);
		assert_false(body_scan_is_done(sc));
		pos = end;
	}
}

static void
check_case(size_t idx, const size_t *cuts, size_t ncuts)
{
	const struct body_case *c = &body_cases[idx];
	size_t in_len = c->in_len != 0 ? c->in_len : strlen(c->in);
	size_t out_len = c->out_len != 0 ? c->out_len : strlen(c->out);
	size_t want = c->consumed == 0 ? in_len : c->consumed, consumed;
	struct buf out = BUF_INIT;
	struct body_scan sc;

	run_feeds(c, cuts, ncuts, &out, &sc, &consumed);
	if (consumed != want || out.len != out_len || memcmp(out.ptr != NULL ? out.ptr : "",
	    c->out, out_len) != 0 || sc.flags != c->flags || sc.size != out_len) {
		print_error("case %zu cuts %zu [%zu %zu]: consumed %zu/%zu flags %#x/%#x len %zu/%zu\n",
		    idx, ncuts, ncuts > 0 ? cuts[0] : 0, ncuts > 1 ? cuts[1] : 0, consumed, want,
		    sc.flags, c->flags, out.len, out_len);
		fail();
	}
	buf_fini(&out);
}

static void
test_body_cases_every_split(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
		size_t len = body_cases[i].in_len != 0 ? body_cases[i].in_len :
		    strlen(body_cases[i].in);
		size_t a, b, cuts[64];

		check_case(i, NULL, 0);
		for (a = 0; a <= len; a++) {
			check_case(i, &a, 1);
			for (b = a; b <= len; b++) {
				size_t two[2] = { a, b };

				check_case(i, two, 2);
			}
		}
		if (len < sizeof(cuts) / sizeof(cuts[0])) {
			for (a = 0; a < len; a++)
				cuts[a] = a + 1;
			check_case(i, cuts, len);
		}
	}
}

static void
test_bare_lf_dot_is_not_end_of_data(void **state)
{
	static const char in[] = "hi\n.\nMAIL FROM:<x@example.org>\r\n";
	struct body_scan sc;
	struct buf out = BUF_INIT;
	size_t used;

	(void)state;
	body_scan_init(&sc, 0, 0);
	assert_int_equal(body_scan_feed(&sc, in, sizeof(in) - 1, &out, &used), BODY_SCAN_MORE);
	assert_int_equal(used, sizeof(in) - 1);
	assert_false(body_scan_is_done(&sc));
	assert_true(sc.flags & BODY_FLAG_BARE_LF);
	assert_int_equal(out.len, sizeof(in) + 1);
	assert_memory_equal(out.ptr, "hi\r\n.\r\nMAIL FROM:<x@example.org>\r\n", out.len);
	assert_int_equal(body_scan_feed(&sc, ".\r\n", 3, &out, &used), BODY_SCAN_DONE);
	assert_int_equal(used, 3);
	buf_fini(&out);
}

static void
test_body_max_size(void **state)
{
	struct body_scan sc;
	struct buf out = BUF_INIT;
	size_t used;

	(void)state;
	/* Exactly at the limit: kept. */
	body_scan_init(&sc, 5, 0);
	assert_int_equal(body_scan_feed(&sc, "abc\r\n.\r\n", 8, &out, &used), BODY_SCAN_DONE);
	assert_false(sc.flags & BODY_FLAG_TOO_BIG);
	assert_int_equal(out.len, 5);
	buf_reset(&out);

	/* Over it: flagged, nothing more appended, still counted, the end still found. */
	body_scan_init(&sc, 5, 0);
	assert_int_equal(body_scan_feed(&sc, "abc\r\n", 5, &out, &used), BODY_SCAN_MORE);
	assert_int_equal(body_scan_feed(&sc, "defgh\r\nij", 9, &out, &used), BODY_SCAN_MORE);
	assert_true(sc.flags & BODY_FLAG_TOO_BIG);
	assert_int_equal(out.len, 5);
	assert_int_equal(body_scan_feed(&sc, "\r\n.\r\nrest", 9, &out, &used), BODY_SCAN_DONE);
	assert_int_equal(used, 5);
	assert_int_equal(out.len, 5);
	assert_true(sc.size == 16);
	buf_fini(&out);
}

static void
test_body_long_line(void **state)
{
	struct body_scan sc;
	struct buf out = BUF_INIT;
	char line[1100];
	size_t used;

	(void)state;
	memset(line, 'x', sizeof(line));
	/* 998 octets plus CRLF is the RFC 5321 4.5.3.1.6 limit: fine. */
	body_scan_init(&sc, 0, 998);
	assert_int_equal(body_scan_feed(&sc, line, 998, &out, &used), BODY_SCAN_MORE);
	assert_int_equal(body_scan_feed(&sc, "\r\n.\r\n", 5, &out, &used), BODY_SCAN_DONE);
	assert_false(sc.flags & BODY_FLAG_LONG_LINE);

	/* 999 split over two feeds: flagged. */
	body_scan_init(&sc, 0, 998);
	assert_int_equal(body_scan_feed(&sc, line, 500, &out, &used), BODY_SCAN_MORE);
	assert_int_equal(body_scan_feed(&sc, line, 499, &out, &used), BODY_SCAN_MORE);
	assert_int_equal(body_scan_feed(&sc, "\r\n.\r\n", 5, &out, &used), BODY_SCAN_DONE);
	assert_true(sc.flags & BODY_FLAG_LONG_LINE);

	/* Many short lines add up to nothing. */
	body_scan_init(&sc, 0, 10);
	assert_int_equal(body_scan_feed(&sc, "123456789\r\n123456789\r\n.\r\n", 25, &out, &used),
	    BODY_SCAN_DONE);
	assert_false(sc.flags & BODY_FLAG_LONG_LINE);
	buf_fini(&out);
}

/* A large clean body: output equals input minus terminator, whatever the feed size. */
static void
test_body_large(void **state)
{
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct body_scan sc;
	size_t feed, i, used;

	(void)state;
	for (i = 0; i < 5000; i++)
		buf_printf(&in, "line %zu %s\r\n", i, i % 7 == 0 ? "\xe2\x82\xac" : "text");
	for (feed = 1; feed < 9000; feed = feed * 3 + 1) {
		size_t pos = 0;
		enum body_scan_result r = BODY_SCAN_MORE;

		buf_reset(&out);
		body_scan_init(&sc, 0, 998);
		while (pos < in.len) {
			size_t n = in.len - pos < feed ? in.len - pos : feed;

			r = body_scan_feed(&sc, in.ptr + pos, n, &out, &used);
			assert_int_equal(r, BODY_SCAN_MORE);
			pos += n;
		}
		assert_int_equal(body_scan_feed(&sc, ".\r\n", 3, &out, &used), BODY_SCAN_DONE);
		assert_int_equal(out.len, in.len);
		assert_memory_equal(out.ptr, in.ptr, in.len);
		assert_int_equal(sc.flags, BODY_FLAG_8BIT);
	}
	buf_fini(&in);
	buf_fini(&out);
}

struct chunk_case {
	const char *in;
	const char *out;
	unsigned flags;
};

static const struct chunk_case chunk_cases[] = {
	{ "", "", 0 },
	{ "a\r\n", "a\r\n", 0 },
	{ ".\r\n..\r\n", ".\r\n..\r\n", 0 },        /* raw: no unstuffing, no terminator */
	{ "a\r\n.\r\nb\r\n", "a\r\n.\r\nb\r\n", 0 },
	{ "a\nb\r\n", "a\r\nb\r\n", LF },
	{ "a\rb\r\n", "a\r\nb\r\n", CR },
	{ "a\r\r\n", "a\r\n\r\n", CR },
	{ "abc", "abc", LF },                       /* no final CRLF */
	{ "abc\r", "abc", CR },                     /* final CR without LF */
	{ "abc\r\n\r", "abc\r\n", CR },
	{ "\xff\r\n", "\xff\r\n", BODY_FLAG_8BIT },
};

static void
chunk_run(const struct chunk_case *c, size_t a, size_t b)
{
	size_t len = strlen(c->in);
	struct body_scan sc;
	struct buf out = BUF_INIT;

	body_scan_init(&sc, 0, 0);
	body_chunk_feed(&sc, c->in, a, &out);
	body_chunk_feed(&sc, c->in + a, b - a, &out);
	body_chunk_feed(&sc, c->in + b, len - b, &out);
	body_chunk_finish(&sc);
	assert_true(body_scan_is_done(&sc));
	if (out.len != strlen(c->out) || memcmp(out.ptr != NULL ? out.ptr : "", c->out, out.len) ||
	    sc.flags != c->flags) {
		print_error("chunk \"%s\" at %zu,%zu: flags %#x/%#x len %zu\n", c->in, a, b,
		    sc.flags, c->flags, out.len);
		fail();
	}
	buf_fini(&out);
}

static void
test_body_chunks_every_split(void **state)
{
	size_t i, a, b;

	(void)state;
	for (i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
		size_t len = strlen(chunk_cases[i].in);

		for (a = 0; a <= len; a++) {
			for (b = a; b <= len; b++)
				chunk_run(&chunk_cases[i], a, b);
		}
	}
}

static void
test_body_chunk_limits(void **state)
{
	struct body_scan sc;
	struct buf out = BUF_INIT;

	(void)state;
	body_scan_init(&sc, 4, 3);
	body_chunk_feed(&sc, "abcd\r\n", 6, &out);
	body_chunk_finish(&sc);
	assert_true(sc.flags & BODY_FLAG_TOO_BIG);
	assert_true(sc.flags & BODY_FLAG_LONG_LINE);
	assert_int_equal(out.len, 0);
	assert_true(sc.size == 6);
	buf_fini(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_cases_every_split),
		cmocka_unit_test(test_bare_lf_dot_is_not_end_of_data),
		cmocka_unit_test(test_body_max_size),
		cmocka_unit_test(test_body_long_line),
		cmocka_unit_test(test_body_large),
		cmocka_unit_test(test_body_chunks_every_split),
		cmocka_unit_test(test_body_chunk_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
