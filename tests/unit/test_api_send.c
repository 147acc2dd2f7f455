/* Unit tests of api_send_parse.c: "Name <addr>", JSON -> mime_msg, raw message checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_send_parse.h"
#include "util/poison.h"

static const struct api_send_limits lim = { .max_message_size = 1000, .max_recipients = 3 };

static void
check_addr(const char *in, const char *want_name, const char *want_addr)
{
	char *name = NULL, *addr = NULL;
	const char *why = NULL;

	assert_int_equal(api_addr_parse(in, strlen(in), &name, &addr, &why), API_ADDR_OK);
	if (want_name == NULL)
		assert_null(name);
	else
		assert_string_equal(name, want_name);
	assert_string_equal(addr, want_addr);
	free(name);
	free(addr);
}

static void
check_addr_bad(const char *in, enum api_addr_result want)
{
	char *name = NULL, *addr = NULL;
	const char *why = NULL;

	assert_int_equal(api_addr_parse(in, strlen(in), &name, &addr, &why), want);
	assert_non_null(why);
	assert_null(name);
	assert_null(addr);
}

static void
test_addr_forms(void **state)
{
	(void)state;
	check_addr("a@b.example", NULL, "a@b.example");
	check_addr("  a@b.example ", NULL, "a@b.example");
	check_addr("<a@b.example>", NULL, "a@b.example");
	check_addr("Zoë Example <z@b.example>", "Zoë Example", "z@b.example");
	check_addr("\"Smith, John\" <j@b.example>", "Smith, John", "j@b.example");
	check_addr("\"say \\\"hi\\\"\" <j@b.example>", "say \"hi\"", "j@b.example");
	check_addr("\"a <b>\" <c@d.example>", "a <b>", "c@d.example");
	check_addr("\"\\\"quoted\\\"\"@b.example", NULL, "\"\\\"quoted\\\"\"@b.example");
}

static void
test_addr_refused(void **state)
{
	(void)state;
	check_addr_bad("", API_ADDR_EMPTY);
	check_addr_bad("   ", API_ADDR_EMPTY);
	check_addr_bad("Name <>", API_ADDR_EMPTY);
	check_addr_bad("Name <a@b.example", API_ADDR_BAD);
	check_addr_bad("Name a@b.example>", API_ADDR_BAD);
	check_addr_bad("Name <a@b.example> x", API_ADDR_BAD);
	check_addr_bad("<<a@b.example>>", API_ADDR_BAD);
	check_addr_bad("Na\"me <a@b.example>", API_ADDR_BAD);
	check_addr_bad("\"unterminated\\\" <a@b.example>", API_ADDR_BAD);
}

/* Found by fuzzing: a NUL made the split address an empty C string. */
static void
test_addr_nul(void **state)
{
	char *name = NULL, *addr = NULL;
	const char *why = NULL;

	(void)state;
	assert_int_equal(api_addr_parse("\0a@b.example", 12, &name, &addr, &why), API_ADDR_BAD);
	assert_int_equal(api_addr_parse("N <a@b\0c>", 10, &name, &addr, &why), API_ADDR_BAD);
	assert_null(addr);
}

static int
parse(const char *json, struct api_send_req *r, struct api_send_error *e)
{
	memset(e, 0, sizeof(*e));
	return api_send_parse(json, strlen(json), &lim, r, e);
}

static void
test_json_full(void **state)
{
	struct api_send_req r;
	struct api_send_error e;
	static const char in[] =
		"{\"from\":{\"address\":\"app@x.example\",\"name\":\"App\"},"
		"\"to\":[\"Zoe <z@y.example>\",{\"address\":\"w@y.example\"}],"
		"\"cc\":\"c@y.example\",\"bcc\":[],\"reply_to\":[\"r@x.example\"],"
		"\"subject\":\"Hi\",\"text\":\"t\\nx\",\"html\":null,"
		"\"headers\":{\"X-A\":\"1\",\"X-B\":\"2\"},"
		"\"attachments\":[{\"filename\":\"a.txt\",\"content_base64\":\"aGVs\\nbG8=\"}]}";

	(void)state;
	assert_int_equal(parse(in, &r, &e), 0);
	assert_string_equal(r.msg.from.address, "app@x.example");
	assert_string_equal(r.msg.from.name, "App");
	assert_int_equal(r.msg.to_count, 2);
	assert_string_equal(r.msg.to[0].name, "Zoe");
	assert_string_equal(r.msg.to[0].address, "z@y.example");
	assert_null(r.msg.to[1].name);
	assert_int_equal(r.msg.cc_count, 1);
	assert_string_equal(r.msg.cc[0].address, "c@y.example");
	assert_int_equal(r.msg.bcc_count, 0);
	assert_non_null(r.msg.reply_to);
	assert_string_equal(r.msg.reply_to->address, "r@x.example");
	assert_string_equal(r.msg.subject, "Hi");
	assert_int_equal(r.msg.text_len, 3);
	assert_null(r.msg.html);
	assert_int_equal(r.msg.header_count, 2);
	assert_string_equal(r.msg.headers[0].name, "X-A");
	assert_string_equal(r.msg.headers[1].value, "2");
	assert_int_equal(r.msg.attachment_count, 1);
	assert_int_equal(r.msg.attachments[0].content_len, 5);
	assert_memory_equal(r.msg.attachments[0].content, "hello", 5);
	assert_null(r.msg.attachments[0].content_type);
	api_send_req_fini(&r);
}

/* The parsed message goes through mime_build: bcc only in the envelope. */
static void
test_json_builds(void **state)
{
	struct api_send_req r;
	struct api_send_error e;
	struct mime_out out;
	static const char in[] = "{\"from\":\"a@x.example\",\"to\":[\"b@y.example\"],"
				 "\"bcc\":[\"Hidden <h@y.example>\"],\"text\":\"hello\"}";

	(void)state;
	assert_int_equal(parse(in, &r, &e), 0);
	r.msg.date = "Mon, 1 Jan 2024 00:00:00 +0000";
	r.msg.message_id = "<0000000000000001@x.example>";
	mime_out_init(&out);
	assert_int_equal(mime_build(&r.msg, &out), MIME_OK);
	assert_int_equal(out.rcpt_count, 2);
	assert_string_equal(out.rcpts[1], "h@y.example");
	assert_null(strstr(out.data.ptr, "h@y.example"));
	assert_non_null(strstr(out.data.ptr, "To: b@y.example\r\n"));
	mime_out_fini(&out);
	api_send_req_fini(&r);
}

static void
check_refused(const char *json, int status, const char *code)
{
	struct api_send_req r;
	struct api_send_error e;

	assert_int_equal(parse(json, &r, &e), -1);
	assert_int_equal(e.status, status);
	assert_string_equal(e.code, code);
	assert_true(e.message[0] != '\0');
	assert_null(r.root);
}

static void
test_json_refused(void **state)
{
	(void)state;
	check_refused("{", 400, "bad_json");
	check_refused("[]", 400, "bad_json");
	check_refused("{\"from\":\"a@x.example\",\"from\":\"b@x.example\"}", 400, "bad_json");
	check_refused("{\"from\":\"a@x.example\",\"too\":[]}", 400, "bad_request");
	check_refused("{\"to\":[\"b@y.example\"]}", 422, "missing_field");
	check_refused("{\"from\":5}", 400, "bad_request");
	check_refused("{\"from\":{\"name\":\"x\"}}", 422, "missing_field");
	check_refused("{\"from\":{\"address\":\"a@x\",\"nam\":\"x\"}}", 400, "bad_request");
	check_refused("{\"from\":\"a@x\",\"to\":[\"x <y\"]}", 422, "bad_address");
	check_refused("{\"from\":\"a@x\",\"to\":[\"1@y\",\"2@y\",\"3@y\",\"4@y\"]}", 422,
	    "too_many_recipients");
	check_refused("{\"from\":\"a@x\",\"subject\":1}", 400, "bad_request");
	check_refused("{\"from\":\"a@x\",\"headers\":[]}", 400, "bad_request");
	check_refused("{\"from\":\"a@x\",\"headers\":{\"X\":1}}", 400, "bad_request");
	check_refused("{\"from\":\"a@x\",\"attachments\":[{\"filename\":\"a\"}]}", 422,
	    "missing_field");
	check_refused("{\"from\":\"a@x\",\"attachments\":[{\"content_base64\":\"a\"}]}", 400,
	    "bad_base64");
	check_refused("{\"from\":\"a@x\",\"reply_to\":[\"a@x\",\"b@x\"]}", 422, "bad_address");
}

/* The optional "route" field: a string naming a route (the daemon checks that it exists). */
static void
test_json_route(void **state)
{
	struct api_send_req r;
	struct api_send_error e;

	(void)state;
	assert_int_equal(parse("{\"from\":\"a@x.example\",\"to\":[\"b@y.example\"]}", &r, &e), 0);
	assert_null(r.route);
	api_send_req_fini(&r);
	assert_int_equal(parse("{\"from\":\"a@x.example\",\"to\":[\"b@y.example\"],"
	    "\"route\":\"backup-first\"}", &r, &e), 0);
	assert_string_equal(r.route, "backup-first");
	api_send_req_fini(&r);
	check_refused("{\"from\":\"a@x\",\"route\":5}", 400, "bad_request");
	check_refused("{\"from\":\"a@x\",\"route\":\"\"}", 422, "unknown_route");
}

static void
test_json_attachment_too_big(void **state)
{
	char *json = malloc(4096);
	size_t n;

	(void)state;
	n = (size_t)snprintf(json, 4096, "{\"from\":\"a@x\",\"attachments\":[{\"filename\":\"a\","
	    "\"content_base64\":\"");
	memset(json + n, 'A', 1400);
	n += 1400;
	memcpy(json + n, "\"}]}", 5);
	check_refused(json, 413, "too_large");
	free(json);
}

static int
raw(const char *data, struct buf *out, struct api_send_error *e)
{
	buf_reset(out);
	memset(e, 0, sizeof(*e));
	return api_raw_normalise(data, strlen(data), 1000, out, e);
}

static void
test_raw_normalise(void **state)
{
	struct buf out = BUF_INIT;
	struct api_send_error e;
	char longline[1100];

	(void)state;
	assert_int_equal(raw("Subject: x\n\nbody", &out, &e), 0);
	assert_string_equal(out.ptr, "Subject: x\r\n\r\nbody\r\n");
	assert_int_equal(raw("Subject: x\r\n folded\r\n\r\n", &out, &e), 0);
	assert_string_equal(out.ptr, "Subject: x\r\n folded\r\n\r\n");
	assert_int_equal(raw("Subject: x\r\n\rbody\r\n", &out, &e), -1);
	assert_int_equal(e.status, 400);
	assert_int_equal(raw("Subject: x\r\n\r\nbo\rdy\r\n", &out, &e), -1);
	assert_int_equal(e.status, 400);
	assert_int_equal(raw("Subject: x\r\nno separator", &out, &e), -1);
	assert_int_equal(e.status, 422);
	assert_int_equal(raw("Subject: x", &out, &e), -1);
	assert_int_equal(raw("not a header\r\n\r\nbody", &out, &e), -1);
	assert_int_equal(e.status, 422);
	assert_int_equal(raw(" folded first\r\n\r\n", &out, &e), -1);
	assert_int_equal(raw("\r\nbody only\r\n", &out, &e), -1);
	assert_int_equal(e.status, 422);
	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	memcpy(longline, "X: ", 3);
	assert_int_equal(raw(longline, &out, &e), -1);
	assert_string_equal(e.code, "line_too_long");
	memset(longline, 'y', 990);
	memcpy(longline, "X: y\r\n\r\n", 8);
	longline[990] = '\0';
	assert_int_equal(raw(longline, &out, &e), 0);
	assert_int_equal(api_raw_normalise("S: x\n\n\0", 7, 0, &out, &e), -1);
	assert_int_equal(e.status, 400);
	buf_fini(&out);
}

static void
test_raw_size(void **state)
{
	struct buf out = BUF_INIT;
	struct api_send_error e;
	char *m = malloc(1200);
	size_t i;

	(void)state;
	memcpy(m, "S: x\n\n", 6);
	/* LF -> CRLF makes it grow past the limit: counted after normalising. */
	for (i = 6; i < 990; i++)
		m[i] = (i % 2) ? '\n' : 'a';
	m[990] = '\0';
	assert_int_equal(raw(m, &out, &e), -1);
	assert_int_equal(e.status, 413);
	free(m);
	buf_fini(&out);
}

static void
test_raw_json(void **state)
{
	struct api_raw_req r;
	struct api_send_error e = { 0 };
	static const char ok[] = "{\"mail_from\":\"\",\"rcpt_to\":[\"a@x.example\",\"j\xc3\xb6@x.example\"],"
				 "\"data_base64\":\"UzogeAoKaOk=\"}";
	static const char bad_rcpt[] = "{\"mail_from\":\"a@x\",\"rcpt_to\":[\"a@@x\"],"
				       "\"data_base64\":\"UzogeAoKaA==\"}";
	static const char no_rcpt[] = "{\"mail_from\":\"a@x\",\"rcpt_to\":[],"
				      "\"data_base64\":\"UzogeAoKaA==\"}";

	(void)state;
	assert_int_equal(api_raw_parse(ok, strlen(ok), &lim, &r, &e), 0);
	assert_string_equal(r.mail_from, "");
	assert_int_equal(r.n_rcpts, 2);
	assert_true(r.smtputf8);
	assert_true(r.eight_bit);
	assert_int_equal(r.data.len, 12);
	assert_memory_equal(r.data.ptr, "S: x\r\n\r\nh\xe9\r\n", 12);
	api_raw_req_fini(&r);
	assert_int_equal(api_raw_parse(bad_rcpt, strlen(bad_rcpt), &lim, &r, &e), -1);
	assert_int_equal(e.status, 422);
	assert_string_equal(e.code, "bad_address");
	assert_int_equal(api_raw_parse(no_rcpt, strlen(no_rcpt), &lim, &r, &e), -1);
	assert_string_equal(e.code, "missing_field");
	assert_int_equal(api_raw_parse("{}", 2, &lim, &r, &e), -1);
	assert_int_equal(e.status, 422);
	assert_int_equal(api_raw_parse("{\"x\":1}", 7, &lim, &r, &e), -1);
	assert_int_equal(e.status, 400);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_forms),
		cmocka_unit_test(test_addr_refused),
		cmocka_unit_test(test_addr_nul),
		cmocka_unit_test(test_json_full),
		cmocka_unit_test(test_json_builds),
		cmocka_unit_test(test_json_refused),
		cmocka_unit_test(test_json_route),
		cmocka_unit_test(test_json_attachment_too_big),
		cmocka_unit_test(test_raw_normalise),
		cmocka_unit_test(test_raw_size),
		cmocka_unit_test(test_raw_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
