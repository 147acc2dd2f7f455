/*
 * test_smtpd_session.c - the pure parts of the SMTP engine: the command table's state and flag
 * rules (DESIGN.md 6, RFC 2920 3.1, RFC 3030, RFC 3207) and the AUTH failure throttle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtpd/smtpd_int.h"
#include "util/clock.h"
#include "util/poison.h"

static bool
allowed(enum smtp_verb v, enum smtpd_state st)
{
	const struct smtpd_cmd *c = smtpd_cmd_find(v);

	assert_non_null(c);
	return (c->states & SMTPD_IN(st)) != 0;
}

static bool
has_flag(enum smtp_verb v, unsigned flag)
{
	const struct smtpd_cmd *c = smtpd_cmd_find(v);

	assert_non_null(c);
	return (c->flags & flag) != 0;
}

static void
test_every_verb_has_a_row_named_after_it(void **state)
{
	int v;

	(void)state;
	assert_null(smtpd_cmd_find(SMTP_VERB_UNKNOWN));
	assert_null(smtpd_cmd_find(SMTP_VERB_COUNT));
	for (v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++) {
		const struct smtpd_cmd *c = smtpd_cmd_find((enum smtp_verb)v);

		assert_non_null(c);
		assert_string_equal(c->verb, smtp_verb_name((enum smtp_verb)v));
		assert_non_null(c->proceed);
	}
}

static void
test_transaction_order(void **state)
{
	(void)state;
	assert_false(allowed(SMTP_VERB_MAIL, SMTPD_STATE_GREETED));
	assert_true(allowed(SMTP_VERB_MAIL, SMTPD_STATE_HELO));
	assert_false(allowed(SMTP_VERB_MAIL, SMTPD_STATE_MAIL));
	assert_false(allowed(SMTP_VERB_RCPT, SMTPD_STATE_HELO));
	assert_true(allowed(SMTP_VERB_RCPT, SMTPD_STATE_MAIL));
	assert_true(allowed(SMTP_VERB_RCPT, SMTPD_STATE_RCPT));
	assert_false(allowed(SMTP_VERB_DATA, SMTPD_STATE_MAIL));
	assert_true(allowed(SMTP_VERB_DATA, SMTPD_STATE_RCPT));
	assert_true(allowed(SMTP_VERB_BDAT, SMTPD_STATE_RCPT));
	assert_true(allowed(SMTP_VERB_BDAT, SMTPD_STATE_CHUNKING));
	/* RFC 3030: DATA and BDAT do not mix in one transaction. */
	assert_false(allowed(SMTP_VERB_DATA, SMTPD_STATE_CHUNKING));
	assert_false(allowed(SMTP_VERB_RCPT, SMTPD_STATE_CHUNKING));
	assert_true(allowed(SMTP_VERB_RSET, SMTPD_STATE_CHUNKING));
	assert_true(allowed(SMTP_VERB_QUIT, SMTPD_STATE_CHUNKING));
	/* STARTTLS and AUTH never inside a transaction. */
	assert_false(allowed(SMTP_VERB_STARTTLS, SMTPD_STATE_MAIL));
	assert_false(allowed(SMTP_VERB_AUTH, SMTPD_STATE_MAIL));
	assert_false(allowed(SMTP_VERB_AUTH, SMTPD_STATE_GREETED));
}

static void
test_no_command_runs_while_busy(void **state)
{
	static const enum smtpd_state busy[] = { SMTPD_STATE_CONNECTED, SMTPD_STATE_TLS,
		SMTPD_STATE_DATA, SMTPD_STATE_BDAT, SMTPD_STATE_AUTH, SMTPD_STATE_AUTH_CHECK,
		SMTPD_STATE_COMMIT, SMTPD_STATE_CLOSING };
	size_t i;
	int v;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(busy); i++) {
		for (v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++)
			assert_false(allowed((enum smtp_verb)v, busy[i]));
	}
}

static void
test_flags(void **state)
{
	(void)state;
	/* RFC 2920 3.1 (and RFC 3207, 4954): these end a group. */
	assert_true(has_flag(SMTP_VERB_EHLO, SMTPD_CMD_LAST_IN_GROUP));
	assert_true(has_flag(SMTP_VERB_HELO, SMTPD_CMD_LAST_IN_GROUP));
	assert_true(has_flag(SMTP_VERB_DATA, SMTPD_CMD_LAST_IN_GROUP));
	assert_true(has_flag(SMTP_VERB_QUIT, SMTPD_CMD_LAST_IN_GROUP));
	assert_true(has_flag(SMTP_VERB_NOOP, SMTPD_CMD_LAST_IN_GROUP));
	assert_true(has_flag(SMTP_VERB_STARTTLS, SMTPD_CMD_LAST_IN_GROUP));
	assert_true(has_flag(SMTP_VERB_AUTH, SMTPD_CMD_LAST_IN_GROUP));
	assert_false(has_flag(SMTP_VERB_MAIL, SMTPD_CMD_LAST_IN_GROUP));
	assert_false(has_flag(SMTP_VERB_RCPT, SMTPD_CMD_LAST_IN_GROUP));
	assert_false(has_flag(SMTP_VERB_RSET, SMTPD_CMD_LAST_IN_GROUP));
	/* Before TLS on a listener that needs it, only session commands. */
	assert_true(has_flag(SMTP_VERB_STARTTLS, SMTPD_CMD_PRE_TLS));
	assert_true(has_flag(SMTP_VERB_EHLO, SMTPD_CMD_PRE_TLS));
	assert_true(has_flag(SMTP_VERB_QUIT, SMTPD_CMD_PRE_TLS));
	assert_false(has_flag(SMTP_VERB_MAIL, SMTPD_CMD_PRE_TLS));
	assert_false(has_flag(SMTP_VERB_RCPT, SMTPD_CMD_PRE_TLS));
	assert_false(has_flag(SMTP_VERB_DATA, SMTPD_CMD_PRE_TLS));
	assert_false(has_flag(SMTP_VERB_BDAT, SMTPD_CMD_PRE_TLS));
	assert_false(has_flag(SMTP_VERB_VRFY, SMTPD_CMD_PRE_TLS));
	/* auth: required gates the transaction. */
	assert_true(has_flag(SMTP_VERB_MAIL, SMTPD_CMD_NEEDS_AUTH));
	assert_false(has_flag(SMTP_VERB_EHLO, SMTPD_CMD_NEEDS_AUTH));
	assert_false(has_flag(SMTP_VERB_AUTH, SMTPD_CMD_NEEDS_AUTH));
}

static void
test_throttle_counts_per_key_per_minute(void **state)
{
	struct smtpd sd;
	unsigned i;

	(void)state;
	memset(&sd, 0, sizeof(sd));
	assert_int_equal(smtpd_auth_init(&sd, NULL), 0);
	clock_set_fake(1700000000000ULL);
	for (i = 0; i < 3; i++) {
		assert_false(smtpd_throttle_is_over(&sd, "i:192.0.2.1", 3));
		smtpd_throttle_fail(&sd, "i:192.0.2.1");
	}
	assert_true(smtpd_throttle_is_over(&sd, "i:192.0.2.1", 3));
	assert_false(smtpd_throttle_is_over(&sd, "i:192.0.2.2", 3));
	assert_false(smtpd_throttle_is_over(&sd, "u:192.0.2.1", 3));
	/* 0 means no limit. */
	assert_false(smtpd_throttle_is_over(&sd, "i:192.0.2.1", 0));
	clock_advance_fake(59999);
	assert_true(smtpd_throttle_is_over(&sd, "i:192.0.2.1", 3));
	clock_advance_fake(1);
	assert_false(smtpd_throttle_is_over(&sd, "i:192.0.2.1", 3));
	smtpd_throttle_fail(&sd, "i:192.0.2.1");
	assert_false(smtpd_throttle_is_over(&sd, "i:192.0.2.1", 3));
	clock_set_fake(0);
	smtpd_auth_fini(&sd);
}

static void
test_throttle_table_full_reuses_oldest(void **state)
{
	struct smtpd sd;
	char key[32];
	unsigned i;

	(void)state;
	memset(&sd, 0, sizeof(sd));
	assert_int_equal(smtpd_auth_init(&sd, NULL), 0);
	clock_set_fake(1700000000000ULL);
	smtpd_throttle_fail(&sd, "u:first");
	clock_advance_fake(10);
	for (i = 0; i < SMTPD_THROTTLE_SLOTS; i++) {
		snprintf(key, sizeof(key), "i:10.0.%u.%u", i / 256, i % 256);
		smtpd_throttle_fail(&sd, key);
	}
	/* The oldest entry made room; the newest are still counted. */
	assert_false(smtpd_throttle_is_over(&sd, "u:first", 1));
	assert_true(smtpd_throttle_is_over(&sd, key, 1));
	clock_set_fake(0);
	smtpd_auth_fini(&sd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_verb_has_a_row_named_after_it),
		cmocka_unit_test(test_transaction_order),
		cmocka_unit_test(test_no_command_runs_while_busy),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_throttle_counts_per_key_per_minute),
		cmocka_unit_test(test_throttle_table_full_reuses_oldest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
