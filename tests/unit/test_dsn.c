/*
 * test_dsn.c - delivery status notifications: golden files, wire-format rules, NOTIFY rule.
 *
 * Golden cases: the original message is tests/data/dsn/<input>.in (LF line ends in git, turned
 * into CRLF here, as the spool keeps it); the expected DSN is tests/data/dsn/<case>.ref, byte for
 * byte. HK_GOLDEN_UPDATE=1 rewrites the .ref files.
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

#include "proto/dsn.h"
#include "util/poison.h"

#define T_ARRIVAL 1736848798 /* Tue, 14 Jan 2025 09:59:58 +0000 */
#define T_ATTEMPT 1736848800
#define T_NOW 1737280800     /* Sun, 19 Jan 2025 10:00:00 +0000 */

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

/* The .in file with LF line ends turned into CRLF. */
static void
test_load_msg(const char *name, struct buf *msg)
{
	struct buf raw = BUF_INIT, path = BUF_INIT;
	size_t i;

	buf_printf(&path, "%s/dsn/%s.in", getenv("HK_DATA_DIR"), name);
	test_read_file(path.ptr, &raw);
	for (i = 0; i < raw.len; i++) {
		if (raw.ptr[i] == '\n')
			buf_putc(msg, '\r');
		buf_putc(msg, raw.ptr[i]);
	}
	buf_fini(&raw);
	buf_fini(&path);
}

/* RFC 5322 2.1.1 and RFC 5321 2.3.8: CRLF only, no line over 998 octets, no NUL. */
static void
test_check_wire(const struct buf *b)
{
	size_t i, line = 0;

	assert_true(b->len >= 2);
	assert_memory_equal(b->ptr + b->len - 2, "\r\n", 2);
	for (i = 0; i < b->len; i++) {
		assert_int_not_equal(b->ptr[i], '\0');
		if (b->ptr[i] == '\r') {
			assert_true(i + 1 < b->len && b->ptr[i + 1] == '\n');
			assert_true(i - line <= 998);
			i++;
			line = i + 1;
		} else {
			assert_int_not_equal(b->ptr[i], '\n');
		}
	}
}

static void
test_golden(const char *name, const struct dsn_report *rep, unsigned want_flags)
{
	struct buf out = BUF_INIT, ref = BUF_INIT, path = BUF_INIT;
	const char *why = NULL;
	unsigned flags = 99;
	FILE *f;

	if (dsn_build(rep, &out, &flags, &why) != DSN_OK)
		fail_msg("%s: %s", name, why);
	assert_int_equal(flags, want_flags);
	test_check_wire(&out);
	buf_printf(&path, "%s/dsn/%s.ref", getenv("HK_DATA_DIR"), name);
	if (getenv("HK_GOLDEN_UPDATE") != NULL) {
		f = fopen(path.ptr, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(out.ptr, 1, out.len, f), out.len);
		assert_int_equal(fclose(f), 0);
	}
	test_read_file(path.ptr, &ref);
	if (ref.len != out.len || memcmp(ref.ptr, out.ptr, out.len) != 0)
		fail_msg("%s differs from %s:\n%s", name, path.ptr, out.ptr);
	buf_fini(&out);
	buf_fini(&ref);
	buf_fini(&path);
}

static void
test_reply(struct smtp_reply *r, int code, int c, int s, int d, const char *text)
{
	memset(r, 0, sizeof(*r));
	r->code = code;
	r->enh_class = c;
	r->enh_subject = s;
	r->enh_detail = d;
	r->text_len = strlen(text);
	assert_true(r->text_len <= SMTP_REPLY_MAX_TEXT);
	memcpy(r->text, text, r->text_len + 1);
	r->nlines = 1;
}

static void
test_report_init(struct dsn_report *rep, const struct buf *msg)
{
	memset(rep, 0, sizeof(*rep));
	rep->type = DSN_TYPE_FAILURE;
	rep->reporting_mta = "relay1.example.com";
	rep->queue_id = "0193F2A1C4000007";
	rep->sender = "app@example.com";
	rep->arrival = T_ARRIVAL;
	rep->now = T_NOW;
	if (msg != NULL) {
		rep->msg = msg->ptr;
		rep->msg_len = msg->len;
	}
}

static void
test_dsn_golden_bounced(void **state)
{
	struct buf msg = BUF_INIT;
	struct smtp_reply r;
	struct dsn_report rep;
	struct dsn_rcpt rc = {
		.address = "nobody@example.net", .status = "5.1.1",
		.remote_mta = "mx1.example.net", .reply = &r,
		.explain = explain_find("user-unknown"), .last_attempt = T_ATTEMPT,
	};

	(void)state;
	test_load_msg("plain", &msg);
	test_reply(&r, 550, 5, 1, 1, "<nobody@example.net>: Recipient address rejected: User "
	    "unknown in local recipient table");
	test_report_init(&rep, &msg);
	rep.rcpts = &rc;
	rep.nrcpts = 1;
	test_golden("bounced", &rep, 0);
	buf_fini(&msg);
}

static void
test_dsn_golden_expired(void **state)
{
	struct buf msg = BUF_INIT;
	struct smtp_reply r;
	struct dsn_report rep;
	struct dsn_rcpt rc[2] = {
		{ .address = "a@example.net", .status = "4.4.7", .expired = true,
		  .local_diagnostic = "connect to mx.example.net[192.0.2.25]:25: Connection "
				      "timed out",
		  .explain = explain_find("local-timeout"), .last_attempt = T_NOW - 600 },
		{ .address = "b@example.org", .status = "4.7.1", .expired = true,
		  .remote_mta = "mx.example.org", .reply = &r,
		  .explain = explain_find("greylisted-text"), .last_attempt = T_NOW - 300 },
	};

	(void)state;
	test_load_msg("plain", &msg);
	test_reply(&r, 451, 4, 7, 1, "Please try again later\nThis server greylists unknown "
	    "senders");
	test_report_init(&rep, &msg);
	rep.ret = DSN_RET_HDRS;
	rep.rcpts = rc;
	rep.nrcpts = 2;
	test_golden("expired", &rep, 0);
	buf_fini(&msg);
}

static void
test_dsn_golden_envid_orcpt_full(void **state)
{
	struct buf msg = BUF_INIT;
	struct smtp_reply r;
	struct dsn_report rep;
	struct dsn_rcpt rc = {
		.address = "b+sub@example.net", .orcpt = "rfc822;B+2Bsub@Example.NET",
		.status = "5.2.2", .remote_mta = "mx.example.net", .reply = &r,
		.explain = explain_find("mailbox-full"), .last_attempt = T_ATTEMPT,
	};

	(void)state;
	test_load_msg("plain", &msg);
	test_reply(&r, 552, 5, 2, 2, "Mailbox full");
	test_report_init(&rep, &msg);
	rep.envid = "QQ314159+2Binvoice+3D1";
	rep.ret = DSN_RET_FULL;
	rep.rcpts = &rc;
	rep.nrcpts = 1;
	test_golden("envid_orcpt_full", &rep, 0);
	buf_fini(&msg);
}

static void
test_dsn_golden_full_too_big_falls_back(void **state)
{
	struct buf msg = BUF_INIT;
	struct smtp_reply r;
	struct dsn_report rep;
	struct dsn_rcpt rc = {
		.address = "nobody@example.net", .status = "5.7.1", .remote_mta = "mx1.example.net",
		.reply = &r, .explain = explain_find("relay-denied"), .last_attempt = T_ATTEMPT,
	};

	(void)state;
	test_load_msg("plain", &msg);
	test_reply(&r, 554, 5, 7, 1, "<nobody@example.net>: Relay access denied");
	test_report_init(&rep, &msg);
	rep.ret = DSN_RET_FULL;
	rep.max_full = 100;
	rep.rcpts = &rc;
	rep.nrcpts = 1;
	test_golden("full_too_big", &rep, 0);
	buf_fini(&msg);
}

static void
test_dsn_golden_delayed(void **state)
{
	struct buf msg = BUF_INIT;
	struct smtp_reply r;
	struct dsn_report rep;
	struct dsn_rcpt rc = {
		.address = "slow@example.net", .status = "4.2.2", .remote_mta = "mx.example.net",
		.reply = &r, .explain = explain_find("mailbox-full"), .last_attempt = T_ATTEMPT,
		.will_retry_until = T_ARRIVAL + 5 * 86400,
	};

	(void)state;
	test_load_msg("plain", &msg);
	test_reply(&r, 452, 4, 2, 2, "The email account that you tried to reach is over quota.");
	test_report_init(&rep, &msg);
	rep.type = DSN_TYPE_DELAY;
	/* Delay notices return headers only, whatever RET says. */
	rep.ret = DSN_RET_FULL;
	rep.rcpts = &rc;
	rep.nrcpts = 1;
	test_golden("delayed", &rep, 0);
	buf_fini(&msg);
}

static void
test_dsn_golden_full_8bit(void **state)
{
	struct buf msg = BUF_INIT;
	struct smtp_reply r;
	struct dsn_report rep;
	struct dsn_rcpt rc = {
		.address = "m\xc3\xbcller@example.net", .status = "5.1.1",
		.remote_mta = "mx.example.net", .reply = &r, .last_attempt = T_ATTEMPT,
	};

	(void)state;
	test_load_msg("utf8", &msg);
	test_reply(&r, 550, 5, 1, 1, "Adresse unbekannt: m\xc3\xbcller");
	test_report_init(&rep, &msg);
	rep.ret = DSN_RET_FULL;
	rep.rcpts = &rc;
	rep.nrcpts = 1;
	test_golden("full_8bit", &rep, DSN_OUT_8BIT);
	buf_fini(&msg);
}

static void
test_dsn_golden_no_body(void **state)
{
	struct dsn_report rep;
	struct dsn_rcpt rc = {
		.address = "x@nullmx.example", .status = "5.1.10",
		.local_diagnostic = "nullmx.example publishes a null MX (RFC 7505)",
		.explain = explain_find("local-null-mx"),
	};

	(void)state;
	test_report_init(&rep, NULL);
	rep.ret = DSN_RET_FULL;
	rep.rcpts = &rc;
	rep.nrcpts = 1;
	test_golden("no_body", &rep, 0);
}

/* Hostile reply text: a huge word, fake boundaries and fields cannot break the format. */
static void
test_dsn_hostile_reply(void **state)
{
	struct buf out = BUF_INIT, text = BUF_INIT, msg = BUF_INIT, bnd = BUF_INIT;
	struct smtp_reply r;
	struct dsn_report rep;
	struct dsn_rcpt rc = {
		.address = "v@example.net", .status = "5.7.1", .remote_mta = "mx.example.net",
		.reply = &r,
	};
	const char *p;
	size_t i, nb = 0;

	(void)state;
	buf_append_str(&text, "--=_0193F2A1C4000007.1737280800/relay1.example.com\n"
			     "Content-Type: text/html\n\r\tX-Evil: 1 ");
	for (i = 0; i < 3000; i++)
		buf_putc(&text, (char)('a' + i % 26));
	test_reply(&r, 550, 5, 7, 1, text.ptr);
	/* The first boundary candidate also appears in the message. */
	buf_append_str(&msg, "Subject: x\r\n\r\n--=_0193F2A1C4000007.1737280800/relay1.example.com"
			    ".1\r\n");
	test_report_init(&rep, &msg);
	rep.ret = DSN_RET_FULL;
	rep.rcpts = &rc;
	rep.nrcpts = 1;
	assert_int_equal(dsn_build(&rep, &out, NULL, NULL), DSN_OK);
	test_check_wire(&out);
	assert_null(strstr(out.ptr, "\r\nX-Evil"));
	assert_null(strstr(out.ptr, "\r\nContent-Type: text/html"));
	p = strstr(out.ptr, "boundary=\"");
	assert_non_null(p);
	p += 10;
	buf_append(&bnd, "\r\n--", 4);
	buf_append(&bnd, p, (size_t)(strchr(p, '"') - p));
	assert_string_equal(bnd.ptr + 4, "=_0193F2A1C4000007.1737280800/relay1.example.com.2");
	/* Exactly three delimiters plus the closing one. */
	for (p = out.ptr; (p = strstr(p, bnd.ptr)) != NULL; p += bnd.len)
		nb++;
	assert_int_equal(nb, 4);
	buf_fini(&out);
	buf_fini(&text);
	buf_fini(&msg);
	buf_fini(&bnd);
}

static void
test_dsn_envid_not_plain_stays_xtext(void **state)
{
	struct buf out = BUF_INIT;
	struct dsn_report rep;
	struct dsn_rcpt rc = {
		.address = "v@example.net", .orcpt = "rfc822;v+0D+0AX-Evil:+201@example.net",
		.status = "5.0.0", .local_diagnostic = "test",
	};

	(void)state;
	test_report_init(&rep, NULL);
	rep.envid = "a+0D+0AX-Evil:+201";
	rep.rcpts = &rc;
	rep.nrcpts = 1;
	assert_int_equal(dsn_build(&rep, &out, NULL, NULL), DSN_OK);
	test_check_wire(&out);
	assert_non_null(strstr(out.ptr, "\r\nOriginal-Envelope-Id: a+0D+0AX-Evil:+201\r\n"));
	assert_non_null(strstr(out.ptr,
	    "\r\nOriginal-Recipient: rfc822;v+0D+0AX-Evil:+201@example.net\r\n"));
	assert_null(strstr(out.ptr, "\r\nX-Evil"));
	buf_fini(&out);
}

static void
test_dsn_bad_input(void **state)
{
	struct buf out = BUF_INIT;
	struct dsn_report rep;
	struct dsn_rcpt rc = { .address = "v@example.net", .status = "5.1.1" };
	const char *why = NULL;

	(void)state;
	test_report_init(&rep, NULL);
	rep.rcpts = &rc;
	rep.nrcpts = 1;
	rep.sender = "";
	assert_int_equal(dsn_build(&rep, &out, NULL, &why), DSN_BAD_INPUT);
	assert_non_null(why);
	rep.sender = "<>";
	assert_int_equal(dsn_build(&rep, &out, NULL, NULL), DSN_BAD_INPUT);
	rep.sender = "a@b\r\nBcc: x@y";
	assert_int_equal(dsn_build(&rep, &out, NULL, NULL), DSN_BAD_INPUT);
	rep.sender = "app@example.com";
	rep.queue_id = "xyz";
	assert_int_equal(dsn_build(&rep, &out, NULL, NULL), DSN_BAD_INPUT);
	rep.queue_id = "0193F2A1C4000007";
	rep.reporting_mta = "bad host>";
	assert_int_equal(dsn_build(&rep, &out, NULL, NULL), DSN_BAD_INPUT);
	rep.reporting_mta = "relay1.example.com";
	rc.status = "2.0.0";
	assert_int_equal(dsn_build(&rep, &out, NULL, NULL), DSN_BAD_INPUT);
	rc.status = "5.1";
	assert_int_equal(dsn_build(&rep, &out, NULL, NULL), DSN_BAD_INPUT);
	rc.status = "5.1.1";
	rep.type = DSN_TYPE_DELAY;
	assert_int_equal(dsn_build(&rep, &out, NULL, &why), DSN_BAD_INPUT);
	assert_string_equal(why, "delayed status must be 4.x.x");
	rep.nrcpts = 0;
	assert_int_equal(dsn_build(&rep, &out, NULL, NULL), DSN_BAD_INPUT);
	assert_int_equal(out.len, 0);
	rep.type = DSN_TYPE_FAILURE;
	rep.nrcpts = 1;
	assert_int_equal(dsn_build(&rep, &out, NULL, NULL), DSN_OK);
	buf_fini(&out);
}

static void
test_dsn_bare_lf_body_not_returned_full(void **state)
{
	static const char bad[] = "Subject: x\r\n\r\nline\nbare\r\n";
	struct buf out = BUF_INIT;
	struct dsn_report rep;
	struct dsn_rcpt rc = { .address = "v@example.net", .status = "5.1.1" };

	(void)state;
	test_report_init(&rep, NULL);
	rep.msg = bad;
	rep.msg_len = sizeof(bad) - 1;
	rep.ret = DSN_RET_FULL;
	rep.rcpts = &rc;
	rep.nrcpts = 1;
	assert_int_equal(dsn_build(&rep, &out, NULL, NULL), DSN_OK);
	test_check_wire(&out);
	assert_null(strstr(out.ptr, "message/rfc822"));
	assert_non_null(strstr(out.ptr, "text/rfc822-headers\r\n\r\nSubject: x\r\n"));
	buf_fini(&out);
}

static void
test_dsn_date(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	dsn_format_date(&b, 0);
	assert_string_equal(b.ptr, "Thu, 1 Jan 1970 00:00:00 +0000");
	buf_reset(&b);
	dsn_format_date(&b, T_ARRIVAL);
	assert_string_equal(b.ptr, "Tue, 14 Jan 2025 09:59:58 +0000");
	buf_reset(&b);
	dsn_format_date(&b, 951782400); /* leap day */
	assert_string_equal(b.ptr, "Tue, 29 Feb 2000 00:00:00 +0000");
	buf_reset(&b);
	dsn_format_date(&b, -1);
	assert_string_equal(b.ptr, "Wed, 31 Dec 1969 23:59:59 +0000");
	buf_fini(&b);
}

static void
test_dsn_should_send(void **state)
{
	const char *s = "app@example.com";

	(void)state;
	/* No NOTIFY: failures only (RFC 3461 4.1). */
	assert_true(dsn_should_send(0, DSN_STATE_BOUNCED, s));
	assert_true(dsn_should_send(0, DSN_STATE_EXPIRED, s));
	assert_false(dsn_should_send(0, DSN_STATE_DELAYED, s));
	assert_false(dsn_should_send(0, DSN_STATE_SENT, s));
	/* NEVER wins over everything. */
	assert_false(dsn_should_send(DSN_NOTIFY_NEVER, DSN_STATE_BOUNCED, s));
	assert_false(dsn_should_send(DSN_NOTIFY_NEVER | DSN_NOTIFY_FAILURE, DSN_STATE_BOUNCED, s));
	assert_true(dsn_should_send(DSN_NOTIFY_FAILURE, DSN_STATE_EXPIRED, s));
	assert_false(dsn_should_send(DSN_NOTIFY_SUCCESS, DSN_STATE_BOUNCED, s));
	assert_false(dsn_should_send(DSN_NOTIFY_DELAY, DSN_STATE_BOUNCED, s));
	assert_true(dsn_should_send(DSN_NOTIFY_DELAY, DSN_STATE_DELAYED, s));
	assert_false(dsn_should_send(DSN_NOTIFY_FAILURE, DSN_STATE_DELAYED, s));
	assert_true(dsn_should_send(DSN_NOTIFY_SUCCESS, DSN_STATE_SENT, s));
	assert_false(dsn_should_send(DSN_NOTIFY_FAILURE, DSN_STATE_SUPPRESSED, s));
	/* Never to the null sender. */
	assert_false(dsn_should_send(DSN_NOTIFY_FAILURE, DSN_STATE_BOUNCED, ""));
	assert_false(dsn_should_send(0, DSN_STATE_BOUNCED, "<>"));
	assert_false(dsn_should_send(DSN_NOTIFY_FAILURE, DSN_STATE_BOUNCED, NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dsn_golden_bounced),
		cmocka_unit_test(test_dsn_golden_expired),
		cmocka_unit_test(test_dsn_golden_envid_orcpt_full),
		cmocka_unit_test(test_dsn_golden_full_too_big_falls_back),
		cmocka_unit_test(test_dsn_golden_delayed),
		cmocka_unit_test(test_dsn_golden_full_8bit),
		cmocka_unit_test(test_dsn_golden_no_body),
		cmocka_unit_test(test_dsn_hostile_reply),
		cmocka_unit_test(test_dsn_envid_not_plain_stays_xtext),
		cmocka_unit_test(test_dsn_bad_input),
		cmocka_unit_test(test_dsn_bare_lf_body_not_returned_full),
		cmocka_unit_test(test_dsn_date),
		cmocka_unit_test(test_dsn_should_send),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
