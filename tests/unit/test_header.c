/* test_header.c - header section helpers and RFC 5322 dates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/header.h"
#include "util/buf.h"
#include "util/poison.h"

int main(void);

static const char msg[] =
	"Received: from a\r\n"
	"\tby b; Tue, 1 Jan 2030 00:00:00 +0000\r\n"
	"From: A <a@example.com>\r\n"
	"Subject: hello\r\n"
	"  folded   world  \r\n"
	"message-id  : <1@example.com>\r\n"
	"X-Empty:\r\n"
	"Date: later\r\n"
	"Date: second\r\n"
	"\r\n"
	"Message-ID: <not-a-header@example.com>\r\n"
	"To: nobody\r\n";

static void
test_header_section_len(void **state)
{
	const char *end = strstr(msg, "\r\n\r\n");

	(void)state;
	assert_int_equal(header_section_len(msg, sizeof(msg) - 1), (size_t)(end - msg) + 4);
	assert_int_equal(header_section_len("\r\nbody\r\n", 8), 2);
	assert_int_equal(header_section_len("A: b\r\n", 6), 6);
	assert_int_equal(header_section_len("", 0), 0);
	assert_int_equal(header_section_len("A: b\n\nbody", 10), 6);
	assert_int_equal(header_section_len("A: b\r\nB: c", 10), 10);
}

static void
test_header_has_field(void **state)
{
	size_t n = sizeof(msg) - 1;

	(void)state;
	assert_true(header_has_field(msg, n, "From"));
	assert_true(header_has_field(msg, n, "from"));
	assert_true(header_has_field(msg, n, "Message-ID"));
	assert_true(header_has_field(msg, n, "X-Empty"));
	assert_false(header_has_field(msg, n, "To"));     /* only in the body */
	assert_false(header_has_field(msg, n, "Fro"));    /* prefix is not a match */
	assert_false(header_has_field(msg, n, "by b; Tue, 1 Jan 2030 00")); /* continuation */
	assert_false(header_has_field(msg, n, "Sender"));
	assert_false(header_has_field("", 0, "From"));
	assert_true(header_has_field("From: x", 7, "From"));
}

static void
test_header_get_field(void **state)
{
	size_t n = sizeof(msg) - 1;
	struct buf v = BUF_INIT;

	(void)state;
	assert_true(header_get_field(msg, n, "Subject", &v));
	assert_string_equal(v.ptr, "hello  folded   world");
	assert_true(header_get_field(msg, n, "MESSAGE-ID", &v));
	assert_string_equal(v.ptr, "<1@example.com>");
	assert_true(header_get_field(msg, n, "Received", &v));
	assert_string_equal(v.ptr, "from a\tby b; Tue, 1 Jan 2030 00:00:00 +0000");
	assert_true(header_get_field(msg, n, "Date", &v));
	assert_string_equal(v.ptr, "later");
	assert_true(header_get_field(msg, n, "X-Empty", &v));
	assert_int_equal(v.len, 0);
	assert_false(header_get_field(msg, n, "To", &v));
	assert_int_equal(v.len, 0);
	/* A value running to the end of a body without an empty line. */
	assert_true(header_get_field("A: b\r\n c", 9, "A", &v));
	assert_string_equal(v.ptr, "b c");
	buf_fini(&v);
}

struct date_case {
	int64_t t;
	int tz;
	const char *want;
};

static const struct date_case date_cases[] = {
	{ 0, 0, "Thu, 1 Jan 1970 00:00:00 +0000" },
	{ 1795540369, 0, "Tue, 24 Nov 2026 17:12:49 +0000" },
	{ 951782400, 0, "Tue, 29 Feb 2000 00:00:00 +0000" },     /* leap day of a 400-year */
	{ 4107542399, 0, "Sun, 28 Feb 2100 23:59:59 +0000" },    /* 2100 is no leap year */
	{ 4107542400, 0, "Mon, 1 Mar 2100 00:00:00 +0000" },
	{ 1709164800, 0, "Thu, 29 Feb 2024 00:00:00 +0000" },
	{ 1735689599, 0, "Tue, 31 Dec 2024 23:59:59 +0000" },
	{ 1735689599, 60, "Wed, 1 Jan 2025 00:59:59 +0100" },
	{ 0, -300, "Wed, 31 Dec 1969 19:00:00 -0500" },
	{ 1700000000, 330, "Wed, 15 Nov 2023 03:43:20 +0530" },
	{ 1700000000, -570, "Tue, 14 Nov 2023 12:43:20 -0930" },
	{ -1, 0, "Wed, 31 Dec 1969 23:59:59 +0000" },
	{ -2208988800, 0, "Mon, 1 Jan 1900 00:00:00 +0000" },
	{ 253402300799, 0, "Fri, 31 Dec 9999 23:59:59 +0000" },
};

static void
test_header_format_date(void **state)
{
	struct buf b = BUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(date_cases) / sizeof(date_cases[0]); i++) {
		buf_reset(&b);
		buf_append_str(&b, "Date: ");
		header_format_date(&b, date_cases[i].t, date_cases[i].tz);
		assert_string_equal(b.ptr + 6, date_cases[i].want);
	}
	buf_fini(&b);
}

/* Every day for 1970..2100 against a day counter kept by hand. */
static void
test_header_format_date_sweep(void **state)
{
	static const char *const wd[7] = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" };
	static const unsigned mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	static const char *const mon[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
		"Aug", "Sep", "Oct", "Nov", "Dec" };
	struct buf b = BUF_INIT;
	int64_t day = 0;
	unsigned y, m, d;

	(void)state;
	for (y = 1970; y <= 2100; y++) {
		bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

		for (m = 0; m < 12; m++) {
			unsigned dim = mdays[m] + (m == 1 && leap ? 1 : 0);

			for (d = 1; d <= dim; d++, day++) {
				char want[64];

				snprintf(want, sizeof(want), "%s, %u %s %u 12:00:00 +0000", wd[day % 7], d,
				    mon[m], y);
				buf_reset(&b);
				header_format_date(&b, day * 86400 + 43200, 0);
				assert_string_equal(b.ptr, want);
			}
		}
	}
	buf_fini(&b);
}

static void
check_decode(const char *in, const char *want)
{
	struct buf out = BUF_INIT;

	header_decode_words(in, strlen(in), 998, &out);
	if (strcmp(out.ptr ? out.ptr : "", want) != 0)
		fail_msg("decode(%s) = \"%s\", want \"%s\"", in, out.ptr ? out.ptr : "", want);
	buf_fini(&out);
}

static void
test_header_decode_words(void **state)
{
	struct buf out = BUF_INIT;

	(void)state;
	check_decode("plain subject", "plain subject");
	/* "こんにちは" in B, split over two words: the space between them goes (RFC 2047 6.2). */
	check_decode("=?UTF-8?B?44GT44KT44Gr?= =?UTF-8?B?44Gh44Gv?=",
	    "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf");
	check_decode("Re: =?utf-8?q?caf=C3=A9_au_lait?= today", "Re: caf\xc3\xa9 au lait today");
	check_decode("=?ISO-8859-1?Q?Andr=E9?= Pirard", "Andr\xc3\xa9 Pirard");
	check_decode("=?us-ascii*en?q?hello?=", "hello");
	/* Folded lines unfold to one space. */
	check_decode("a long\r\n subject", "a long subject");
	/* Another charset, a bad encoding, bad UTF-8 or a broken word stay as written. */
	check_decode("=?ISO-2022-JP?B?GyRCJEgbKEI=?=", "=?ISO-2022-JP?B?GyRCJEgbKEI=?=");
	check_decode("=?utf-8?x?abc?=", "=?utf-8?x?abc?=");
	check_decode("=?utf-8?B?/w==?=", "=?utf-8?B?/w==?=");
	check_decode("=?utf-8?Q?a=4?=", "=?utf-8?Q?a=4?=");
	check_decode("=?utf-8?B?YWJj", "=?utf-8?B?YWJj");
	/* Control bytes, decoded or literal, become spaces. */
	check_decode("=?utf-8?Q?a=0Db?=", "a b");
	check_decode("x\x01y", "x y");
	/* The limit cuts on a character boundary. */
	header_decode_words("=?UTF-8?B?44GT44KT?=", 20, 4, &out);
	assert_int_equal(out.len, 3);
	assert_memory_equal(out.ptr, "\xe3\x81\x93", 3);
	buf_fini(&out);
}

static void
from_is(const char *text, const char *want)
{
	char *d = header_from_domain(text, strlen(text));

	if (want == NULL) {
		assert_null(d);
	} else {
		assert_non_null(d);
		assert_string_equal(d, want);
	}
	free(d);
}

static void
test_header_from_domain(void **state)
{
	(void)state;
	from_is("From: app@Example.COM\r\n\r\nbody\r\n", "example.com");
	from_is("Subject: x\r\nFrom: \"Shop, Inc. <a@wrong.example>\" <orders@shop.example>\r\n\r\n",
	    "shop.example");
	from_is("From: Orders <orders@shop.example> (via x@comment.example)\r\n\r\n",
	    "shop.example");
	from_is("From: (x@comment.example) plain@mail.example\r\n\r\n", "mail.example");
	from_is("From:\r\n =?UTF-8?B?5bqX?= <info@folded.example>\r\n\r\n", "folded.example");
	from_is("From: a@first.example, b@second.example\r\n\r\n", "first.example");
	from_is("To: a@b.example\r\n\r\n", NULL);
	from_is("From: nobody\r\n\r\n", NULL);
	from_is("From: <broken@>\r\n\r\n", NULL);
	from_is("From: \"unclosed <x@y.example>\r\n\r\n", NULL);
	from_is("\r\nFrom: a@body.example\r\n", NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_section_len),
		cmocka_unit_test(test_header_has_field),
		cmocka_unit_test(test_header_get_field),
		cmocka_unit_test(test_header_decode_words),
		cmocka_unit_test(test_header_from_domain),
		cmocka_unit_test(test_header_format_date),
		cmocka_unit_test(test_header_format_date_sweep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
