/* test_pflog.c - the Postfix-compatible line, field by field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "relay/pflog.h"

static void
test_sent_line(void **state)
{
	struct buf b = BUF_INIT;
	struct pflog_entry e = {
		.qid = "0193F2A1C4000007", .to = "a@example.net", .relay_host = "smtp.example",
		.relay_addr = "198.51.100.7", .port = 587, .received_ms = 1000,
		.attempt_start_ms = 1020, .connected_ms = 1920, .end_ms = 2900, .dsn = "2.0.0",
		.status = "sent", .reply = "250 2.0.0 OK",
	};

	(void)state;
	pflog_format(&b, &e);
	assert_string_equal(b.ptr, "0193F2A1C4000007: to=<a@example.net>, "
	    "relay=smtp.example[198.51.100.7]:587, delay=1.9, delays=0/0.02/0.9/0.98, dsn=2.0.0, "
	    "status=sent (250 2.0.0 OK)");
	buf_fini(&b);
}

static void
test_no_relay_and_control_bytes(void **state)
{
	struct buf b = BUF_INIT;
	struct pflog_entry e = {
		.qid = "0193F2A1C4000008", .to = "b@example.net", .orig_to = "B@example.net",
		.received_ms = 5000, .end_ms = 5000, .dsn = "4.4.1", .status = "deferred",
		.reply = "connect refused\r\nINJECTED",
	};

	(void)state;
	pflog_format(&b, &e);
	assert_string_equal(b.ptr, "0193F2A1C4000008: to=<b@example.net>, orig_to=<B@example.net>, "
	    "relay=none, delay=0, delays=0/0/0/0, dsn=4.4.1, status=deferred "
	    "(connect refused  INJECTED)");
	buf_fini(&b);
}

int main(void);

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sent_line),
		cmocka_unit_test(test_no_relay_and_control_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
