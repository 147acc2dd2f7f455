/*
 * test_cli.c - the pure parts of the admin commands: option parsing, time filters, query
 * strings, text tables, and the HTTP response parser (Content-Length, chunked, to EOF).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cli/cli_fmt.h"
#include "cli/cli_http.h"
#include "util/poison.h"

/* ---- options ---- */

static void
test_opts_values_flags_and_positionals(void **state)
{
	const char *status = NULL, *since = NULL, *json = NULL, *pos[3], *bad, *why;
	const struct cli_opt opts[] = {
		{ .name = "--status", .takes_value = true, .value = &status },
		{ .name = "--since", .takes_value = true, .value = &since },
		{ .name = "--json", .value = &json },
	};
	char *argv[] = { "log", "A", "--status", "sent", "--since=2h", "--json", "--", "--B",
		NULL };
	size_t n;

	(void)state;
	assert_int_equal(cli_opts_parse(opts, 3, 8, argv, pos, 3, &n, &bad, &why), 0);
	assert_string_equal(status, "sent");
	assert_string_equal(since, "2h");
	assert_non_null(json);
	assert_int_equal(n, 2);
	assert_string_equal(pos[0], "A");
	assert_string_equal(pos[1], "--B");
}

static void
test_opts_errors(void **state)
{
	const char *v = NULL, *f = NULL, *pos[1], *bad, *why;
	const struct cli_opt opts[] = {
		{ .name = "--limit", .takes_value = true, .value = &v },
		{ .name = "--json", .value = &f },
	};
	char *unknown[] = { "log", "--limt", "3" };
	char *missing[] = { "log", "--limit" };
	char *flagval[] = { "log", "--json=1" };
	char *many[] = { "show", "A", "B" };
	char *prefix[] = { "log", "--lim", "3" };
	size_t n;

	(void)state;
	assert_int_equal(cli_opts_parse(opts, 2, 3, unknown, pos, 1, &n, &bad, &why), -1);
	assert_string_equal(bad, "--limt");
	assert_string_equal(why, "unknown option");
	assert_int_equal(cli_opts_parse(opts, 2, 2, missing, pos, 1, &n, &bad, &why), -1);
	assert_string_equal(why, "option needs a value");
	assert_int_equal(cli_opts_parse(opts, 2, 2, flagval, pos, 1, &n, &bad, &why), -1);
	assert_int_equal(cli_opts_parse(opts, 2, 3, many, pos, 1, &n, &bad, &why), -1);
	assert_string_equal(bad, "B");
	/* No abbreviations: a prefix of an option is not that option. */
	assert_int_equal(cli_opts_parse(opts, 2, 3, prefix, pos, 1, &n, &bad, &why), -1);
}

/* ---- time ---- */

static void
test_time_relative_and_rfc3339(void **state)
{
	const uint64_t now = 1714564800000ull; /* 2024-05-01T12:00:00Z */
	uint64_t ms;

	(void)state;
	assert_int_equal(cli_time_parse("2h", now, &ms), 0);
	assert_true(ms == now - 2 * 3600 * 1000);
	assert_int_equal(cli_time_parse("3d", now, &ms), 0);
	assert_true(ms == now - 3 * 86400 * 1000ull);
	assert_int_equal(cli_time_parse("90s", now, &ms), 0);
	assert_true(ms == now - 90000);
	assert_int_equal(cli_time_parse("2024-05-01T12:00:00Z", now, &ms), 0);
	assert_true(ms == now);
	assert_int_equal(cli_time_parse("2024-05-01T12:00:00.25Z", now, &ms), 0);
	assert_true(ms == now + 250);
	assert_int_equal(cli_time_parse("2024-05-01T14:30:00+02:30", now, &ms), 0);
	assert_true(ms == now);
	assert_int_equal(cli_time_parse("2024-05-01T09:00:00-03:00", now, &ms), 0);
	assert_true(ms == now);
	/* Bad ones. */
	assert_int_equal(cli_time_parse("yesterday", now, &ms), -1);
	assert_int_equal(cli_time_parse("", now, &ms), -1);
	assert_int_equal(cli_time_parse("12", now, &ms), -1);       /* no unit */
	assert_int_equal(cli_time_parse("-2h", now, &ms), -1);
	assert_int_equal(cli_time_parse("2024-13-01", now, &ms), -1);
	assert_int_equal(cli_time_parse("2024-05-01T25:00:00Z", now, &ms), -1);
	assert_int_equal(cli_time_parse("2024-05-01T12:00:00", now, &ms), -1); /* no zone */
	assert_int_equal(cli_time_parse("2024-05-01T12:00:00.Z", now, &ms), -1);
	assert_int_equal(cli_time_parse("2024-05-01T12:00:00+0200", now, &ms), -1);
	assert_int_equal(cli_time_parse("99999d", now, &ms), -1);  /* before the epoch */
}

static void
test_time_date_is_local_midnight(void **state)
{
	uint64_t ms;
	char out[CLI_TIME_LEN + 1];

	(void)state;
	setenv("TZ", "Asia/Tokyo", 1);
	tzset();
	assert_int_equal(cli_time_parse("2024-05-01", 0, &ms), 0);
	assert_true(ms == 1714564800000ull - 21 * 3600 * 1000ull); /* 2024-04-30T15:00:00Z */
	cli_time_local(1714564800000ull, out);
	assert_string_equal(out, "2024-05-01 21:00:00");
	cli_time_local(0, out);
	assert_string_equal(out, "-");
	setenv("TZ", "UTC", 1);
	tzset();
	cli_time_rfc3339(1714564800123ull, out);
	assert_string_equal(out, "2024-05-01T12:00:00.123Z");
}

/* ---- query strings ---- */

static void
test_query_encoding(void **state)
{
	struct buf q = BUF_INIT;

	(void)state;
	cli_query_add(&q, "to", "a+b@x.example");
	cli_query_add(&q, "q", "two words&=");
	assert_string_equal(q.ptr, "?to=a%2Bb%40x.example&q=two%20words%26%3D");
	buf_fini(&q);
}

/* ---- tables ---- */

static void
test_table_alignment(void **state)
{
	struct cli_table t;
	struct buf out = BUF_INIT;
	const char *h[] = { "ID", "STATUS", "TO" };
	const char *r1[] = { "0123", "deferred", "a@x" };
	const char *r2[] = { "4", "sent", NULL };
	const char *r3[] = { "5", "h\xc3\xa9ld", "b\r\n@x" };

	(void)state;
	cli_table_init(&t, 3);
	cli_table_add(&t, h);
	cli_table_add(&t, r1);
	cli_table_add(&t, r2);
	cli_table_add(&t, r3);
	cli_table_print(&t, 0, &out);
	assert_string_equal(out.ptr,
	    "ID    STATUS    TO\n"
	    "0123  deferred  a@x\n"
	    "4     sent\n"
	    "5     h\xc3\xa9ld      b??@x\n");
	cli_table_fini(&t);
	buf_fini(&out);
}

static void
test_table_cuts_long_cells(void **state)
{
	struct cli_table t;
	struct buf out = BUF_INIT;
	const char *h[] = { "A", "B" };
	const char *r[] = { "abcdefghij", "x" };

	(void)state;
	cli_table_init(&t, 2);
	cli_table_add(&t, h);
	cli_table_add(&t, r);
	cli_table_print(&t, 6, &out);
	assert_string_equal(out.ptr, "A       B\nabc...  x\n");
	cli_table_fini(&t);
	buf_fini(&out);
}

/* ---- HTTP responses ---- */

static enum cli_http_parse_result
parse(const char *s, bool eof, struct cli_http_resp *r, const char **why)
{
	return cli_http_parse(s, strlen(s), eof, r, why);
}

static void
test_http_content_length(void **state)
{
	struct cli_http_resp r;
	const char *why;
	const char *full = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: 11\r\n\r\n{\"a\":\"bc\"}\n";

	(void)state;
	cli_http_resp_init(&r);
	assert_int_equal(parse(full, false, &r, &why), CLI_HTTP_OK);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type, "application/json");
	assert_int_equal(r.body.len, 11);
	assert_memory_equal(r.body.ptr, "{\"a\":\"bc\"}\n", 11);
	/* Every prefix is incomplete, and bad at EOF. */
	for (size_t i = 0; i < strlen(full); i++) {
		assert_int_equal(cli_http_parse(full, i, false, &r, &why), CLI_HTTP_INCOMPLETE);
		assert_int_equal(cli_http_parse(full, i, true, &r, &why), CLI_HTTP_BAD);
	}
	assert_int_equal(parse("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n"
	    "Content-Length: 3\r\n\r\n{}", false, &r, &why), CLI_HTTP_BAD);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, &r, &why),
	    CLI_HTTP_BAD);
	cli_http_resp_fini(&r);
}

static void
test_http_chunked(void **state)
{
	struct cli_http_resp r;
	const char *why;
	const char *full = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "4\r\n{\"a\"\r\nA;ext=1\r\n:[1,2,3]}\n\r\n0\r\nX-Trailer: y\r\n\r\n";

	(void)state;
	cli_http_resp_init(&r);
	assert_int_equal(parse(full, false, &r, &why), CLI_HTTP_OK);
	assert_int_equal(r.body.len, 14);
	assert_memory_equal(r.body.ptr, "{\"a\":[1,2,3]}\n", 14);
	for (size_t i = 0; i < strlen(full); i++)
		assert_int_equal(cli_http_parse(full, i, false, &r, &why), CLI_HTTP_INCOMPLETE);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	    false, &r, &why), CLI_HTTP_BAD);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
	    false, &r, &why), CLI_HTTP_BAD);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, &r,
	    &why), CLI_HTTP_BAD);
	/* A chunk size that would overflow. */
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "FFFFFFFFFFFFFFF\r\n", false, &r, &why), CLI_HTTP_BAD);
	cli_http_resp_fini(&r);
}

static void
test_http_until_eof_and_no_body(void **state)
{
	struct cli_http_resp r;
	const char *why;

	(void)state;
	cli_http_resp_init(&r);
	assert_int_equal(parse("HTTP/1.0 200 OK\r\n\r\nhello", false, &r, &why),
	    CLI_HTTP_INCOMPLETE);
	assert_int_equal(parse("HTTP/1.0 200 OK\r\n\r\nhello", true, &r, &why), CLI_HTTP_OK);
	assert_int_equal(r.body.len, 5);
	assert_int_equal(parse("HTTP/1.1 204 No Content\r\n\r\n", false, &r, &why), CLI_HTTP_OK);
	assert_int_equal(r.body.len, 0);
	assert_int_equal(parse("HTTP/1.1 200\nContent-Length: 1\n\nx", false, &r, &why),
	    CLI_HTTP_OK); /* bare LF and no reason phrase */
	assert_int_equal(parse("HTTP/2 200 OK\r\n\r\n", true, &r, &why), CLI_HTTP_BAD);
	assert_int_equal(parse("HTTP/1.1 099 x\r\n\r\n", true, &r, &why), CLI_HTTP_BAD);
	assert_int_equal(parse("HTTP/1.1 20x OK\r\n\r\n", true, &r, &why), CLI_HTTP_BAD);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", true, &r, &why),
	    CLI_HTTP_BAD);
	assert_non_null(why);
	cli_http_resp_fini(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts_values_flags_and_positionals),
		cmocka_unit_test(test_opts_errors),
		cmocka_unit_test(test_time_relative_and_rfc3339),
		cmocka_unit_test(test_time_date_is_local_midnight),
		cmocka_unit_test(test_query_encoding),
		cmocka_unit_test(test_table_alignment),
		cmocka_unit_test(test_table_cuts_long_cells),
		cmocka_unit_test(test_http_content_length),
		cmocka_unit_test(test_http_chunked),
		cmocka_unit_test(test_http_until_eof_and_no_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
