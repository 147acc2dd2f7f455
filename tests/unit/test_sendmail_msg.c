/*
 * test_sendmail_msg.c - the message of the sendmail command: golden files and direct checks.
 *
 * Golden cases: tests/data/sendmail_msg/<case>.in is the standard input, byte for byte (LF line
 * ends mostly, as PHP writes them); <case>.ref holds "result N", one "rcpt ADDR" line per
 * recipient found, "added ..." and then, after a "--" line, the resulting body byte for byte.
 * HK_GOLDEN_UPDATE=1 rewrites the .ref files.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/sendmail_msg.h"
#include "util/poison.h"

#define T_NOW 1736848798 /* Tue, 14 Jan 2025 09:59:58 +0000 */

struct golden {
	const char *name;
	bool t, i;
	const char *from_name;
	enum sendmail_msg_result want;
};

static const struct golden goldens[] = {
	{ .name = "plain_lf", .t = true },
	{ .name = "bcc_removed", .t = true },
	{ .name = "group_comments", .t = true },
	{ .name = "dot_ends", .t = true },
	{ .name = "dot_data", .t = true, .i = true },
	{ .name = "from_name_ascii", .t = true, .from_name = "John Q. Public" },
	{ .name = "from_name_utf8", .t = true,
	  .from_name = "\xe5\xb1\xb1\xe7\x94\xb0 \xe5\xa4\xaa\xe9\x83\x8e \xe5\xb1\xb1\xe7\x94\xb0 "
	      "\xe5\xa4\xaa\xe9\x83\x8e \xe5\xb1\xb1\xe7\x94\xb0 \xe5\xa4\xaa\xe9\x83\x8e" },
	{ .name = "has_from", .t = true, .from_name = "Ignored Name" },
	{ .name = "crlf_input", .t = true },
	{ .name = "mbox_from", .t = true },
	{ .name = "no_headers", .t = false },
	{ .name = "header_no_blank", .t = true },
	{ .name = "no_final_newline", .t = true },
	{ .name = "bad_addr", .t = true, .want = SENDMAIL_MSG_BAD_ADDR },
	{ .name = "bad_unterminated", .t = true, .want = SENDMAIL_MSG_BAD_ADDR },
	{ .name = "bare_cr", .t = true, .want = SENDMAIL_MSG_BAD_DATA },
	{ .name = "nul_byte", .t = true, .want = SENDMAIL_MSG_BAD_DATA },
	{ .name = "empty", .t = false },
	{ .name = "php_mail", .t = true, .i = true },
};

static void
test_read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	char chunk[4096];
	size_t n;

	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	fclose(f);
}

static void
test_opts(struct sendmail_msg_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->from_addr = "www-data@host.example";
	o->now = T_NOW;
	o->message_id = "<67864a1e.1a2b3c4d@host.example>";
}

static void
test_one_golden(const struct golden *g)
{
	struct buf in = BUF_INIT, out = BUF_INIT, ref = BUF_INIT, path = BUF_INIT;
	struct sendmail_msg_opts o;
	struct sendmail_msg m;
	enum sendmail_msg_result res;
	const char *why = NULL;
	size_t k;
	FILE *f;

	buf_printf(&path, "%s/sendmail_msg/%s.in", getenv("HK_DATA_DIR"), g->name);
	test_read_file(path.ptr, &in);
	test_opts(&o);
	o.extract_rcpts = g->t;
	o.dot_is_data = g->i;
	o.from_name = g->from_name;
	sendmail_msg_init(&m);
	res = sendmail_msg_parse(in.ptr ? in.ptr : "", in.len, &o, &m, &why);
	if (res != g->want)
		fail_msg("%s: result %d, want %d (%s)", g->name, res, g->want, why ? why : "");
	buf_printf(&out, "result %d\n", res);
	if (res != SENDMAIL_MSG_OK) {
		assert_non_null(why);
		buf_printf(&out, "why %s\n", why);
		if (m.bad.len)
			buf_printf(&out, "bad %s\n", m.bad.ptr);
	} else {
		for (k = 0; k < m.n_rcpts; k++)
			buf_printf(&out, "rcpt %s\n", m.rcpts[k]);
		buf_printf(&out, "added%s%s%s\n--\n", m.added_from ? " from" : "",
		    m.added_date ? " date" : "", m.added_msgid ? " msgid" : "");
		buf_append(&out, m.body.ptr, m.body.len);
	}
	buf_reset(&path);
	buf_printf(&path, "%s/sendmail_msg/%s.ref", getenv("HK_DATA_DIR"), g->name);
	if (getenv("HK_GOLDEN_UPDATE") != NULL) {
		f = fopen(path.ptr, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(out.ptr, 1, out.len, f), out.len);
		assert_int_equal(fclose(f), 0);
	}
	test_read_file(path.ptr, &ref);
	if (ref.len != out.len || memcmp(ref.ptr, out.ptr, out.len) != 0)
		fail_msg("%s differs from %s:\n%s", g->name, path.ptr, out.ptr);
	sendmail_msg_fini(&m);
	buf_fini(&in);
	buf_fini(&out);
	buf_fini(&ref);
	buf_fini(&path);
}

static void
test_goldens(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++)
		test_one_golden(&goldens[i]);
}

/* Output is CRLF only: no bare CR or LF anywhere, whatever the input line ends were. */
static void
test_crlf_only(void **state)
{
	static const char in[] = "To: a@example.net\nX: y\r\n\nl1\nl2\r\nl3";
	struct sendmail_msg_opts o;
	struct sendmail_msg m;
	size_t i;

	(void)state;
	test_opts(&o);
	sendmail_msg_init(&m);
	assert_int_equal(sendmail_msg_parse(in, sizeof(in) - 1, &o, &m, NULL), SENDMAIL_MSG_OK);
	for (i = 0; i < m.body.len; i++) {
		if (m.body.ptr[i] == '\r')
			assert_true(i + 1 < m.body.len && m.body.ptr[i + 1] == '\n');
		if (m.body.ptr[i] == '\n')
			assert_true(i > 0 && m.body.ptr[i - 1] == '\r');
	}
	assert_non_null(strstr(m.body.ptr, "\r\nl1\r\nl2\r\nl3\r\n"));
	sendmail_msg_fini(&m);
}

static void
test_bcc_gone_even_without_t(void **state)
{
	static const char in[] = "To: a@example.net\nBcc: secret@example.org\n continued@x.org\n\nb\n";
	struct sendmail_msg_opts o;
	struct sendmail_msg m;

	(void)state;
	test_opts(&o);
	sendmail_msg_init(&m);
	assert_int_equal(sendmail_msg_parse(in, sizeof(in) - 1, &o, &m, NULL), SENDMAIL_MSG_OK);
	assert_int_equal(m.n_rcpts, 0);
	assert_null(strstr(m.body.ptr, "secret"));
	assert_null(strstr(m.body.ptr, "continued"));
	assert_non_null(strstr(m.body.ptr, "To: a@example.net\r\n"));
	sendmail_msg_fini(&m);
}

static void
test_limits(void **state)
{
	static const char in[] = "To: a@example.net, b@example.net, c@example.net\n\nbody\n";
	struct sendmail_msg_opts o;
	struct sendmail_msg m;
	const char *why = NULL;

	(void)state;
	test_opts(&o);
	o.extract_rcpts = true;
	o.max_rcpts = 2;
	sendmail_msg_init(&m);
	assert_int_equal(sendmail_msg_parse(in, sizeof(in) - 1, &o, &m, &why),
	    SENDMAIL_MSG_TOO_MANY_RCPTS);
	assert_non_null(why);
	sendmail_msg_fini(&m);

	test_opts(&o);
	o.max_size = 100; /* the input fits, the added fields do not */
	sendmail_msg_init(&m);
	assert_int_equal(sendmail_msg_parse(in, sizeof(in) - 1, &o, &m, &why), SENDMAIL_MSG_TOO_BIG);
	sendmail_msg_fini(&m);
	o.max_size = 1000;
	sendmail_msg_init(&m);
	assert_int_equal(sendmail_msg_parse(in, sizeof(in) - 1, &o, &m, &why), SENDMAIL_MSG_OK);
	sendmail_msg_fini(&m);
}

/* -F cannot inject a header field: control bytes are refused, not passed on. */
static void
test_from_name_injection(void **state)
{
	static const char in[] = "To: a@example.net\n\nb\n";
	struct sendmail_msg_opts o;
	struct sendmail_msg m;

	(void)state;
	test_opts(&o);
	o.from_name = "Evil\r\nBcc: victim@example.org";
	sendmail_msg_init(&m);
	assert_int_equal(sendmail_msg_parse(in, sizeof(in) - 1, &o, &m, NULL),
	    SENDMAIL_MSG_BAD_NAME);
	sendmail_msg_fini(&m);
	o.from_name = "bad \xff utf8";
	sendmail_msg_init(&m);
	assert_int_equal(sendmail_msg_parse(in, sizeof(in) - 1, &o, &m, NULL),
	    SENDMAIL_MSG_BAD_NAME);
	sendmail_msg_fini(&m);
}

static void
test_phrase(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(sendmail_msg_phrase(&b, "John Doe", 8), 0);
	assert_string_equal(b.ptr, "John Doe");
	buf_reset(&b);
	assert_int_equal(sendmail_msg_phrase(&b, "Doe, \"J\" \\", 10), 0);
	assert_string_equal(b.ptr, "\"Doe, \\\"J\\\" \\\\\"");
	buf_reset(&b);
	assert_int_equal(sendmail_msg_phrase(&b, "J\xc3\xa9r\xc3\xb4me", 8), 0);
	assert_string_equal(b.ptr, "=?UTF-8?B?SsOpcsO0bWU=?=");
	buf_reset(&b);
	/* 30 two-byte characters: 60 bytes, cut at 44 (a character boundary), never inside one. */
	{
		char name[61];
		const char *sp;
		size_t k;

		for (k = 0; k < 60; k += 2) {
			name[k] = '\xc3';
			name[k + 1] = '\xa9';
		}
		name[60] = '\0';
		assert_int_equal(sendmail_msg_phrase(&b, name, 60), 0);
		sp = strstr(b.ptr, "?=\r\n =?UTF-8?B?");
		assert_non_null(sp);
		assert_true((size_t)(sp + 2 - b.ptr) <= 75);
		assert_null(strstr(sp + 4, "\r\n"));
	}
	buf_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_goldens),
		cmocka_unit_test(test_crlf_only),
		cmocka_unit_test(test_bcc_gone_even_without_t),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_from_name_injection),
		cmocka_unit_test(test_phrase),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
