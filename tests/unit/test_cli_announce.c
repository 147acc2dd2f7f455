/* test_cli_announce.c - announce helpers: --rate, Idempotency-Key, request body, CSV output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli_announce.h"
#include "proto/csv.h"
#include "util/poison.h"

static void
test_rate(void **state)
{
	uint64_t us = 0;

	(void)state;
	assert_int_equal(cli_announce_rate_parse("10/s", &us), 0);
	assert_int_equal(us, 100000);
	assert_int_equal(cli_announce_rate_parse("1/s", &us), 0);
	assert_int_equal(us, 1000000);
	assert_int_equal(cli_announce_rate_parse("30/m", &us), 0);
	assert_int_equal(us, 2000000);
	assert_int_equal(cli_announce_rate_parse("3600/h", &us), 0);
	assert_int_equal(us, 1000000);
	assert_int_equal(cli_announce_rate_parse("1000000/s", &us), 0);
	assert_int_equal(us, 1);
	assert_int_equal(cli_announce_rate_parse("0/s", &us), -1);
	assert_int_equal(cli_announce_rate_parse("1000001/s", &us), -1);
	assert_int_equal(cli_announce_rate_parse("10", &us), -1);
	assert_int_equal(cli_announce_rate_parse("10/x", &us), -1);
	assert_int_equal(cli_announce_rate_parse("10/d", &us), 0);
	assert_true(us == 8640000000ULL);
	assert_int_equal(cli_announce_rate_parse("-1/s", &us), -1);
	assert_int_equal(cli_announce_rate_parse("", &us), -1);
}

/* Parse a small CSV table: the key helpers take records. */
static void
table(const char *csv, struct csv_table *t)
{
	const char *why = NULL;

	assert_int_equal(csv_table_parse(csv, strlen(csv), t, &why), 0);
}

static void
test_key(void **state)
{
	static const char tmpl[] = "Subject: x\n\n{{name}}\n";
	struct csv_table a, b, c;
	char k1[CLI_ANNOUNCE_KEY_LEN + 1], k2[CLI_ANNOUNCE_KEY_LEN + 1];
	char k3[CLI_ANNOUNCE_KEY_LEN + 1];

	(void)state;
	table("address,name\na@x.example,Ann\nb@x.example,Bob\n", &a);
	table("name,address\nBob,b@x.example\nAnn,a@x.example\n", &b);
	table("address,name\na@x.example,Anne\n", &c);
	cli_announce_key(tmpl, sizeof(tmpl) - 1, &a.header, &a.rows[0], "a@x.example", k1);
	assert_int_equal(strlen(k1), CLI_ANNOUNCE_KEY_LEN);
	assert_memory_equal(k1, "announce-", 9);
	/* The same row in another file, columns swapped: the same key. */
	cli_announce_key(tmpl, sizeof(tmpl) - 1, &b.header, &b.rows[1], "a@x.example", k2);
	assert_string_equal(k1, k2);
	/* Another row, another name, another template: other keys. */
	cli_announce_key(tmpl, sizeof(tmpl) - 1, &a.header, &a.rows[1], "b@x.example", k2);
	assert_string_not_equal(k1, k2);
	cli_announce_key(tmpl, sizeof(tmpl) - 1, &c.header, &c.rows[0], "a@x.example", k3);
	assert_string_not_equal(k1, k3);
	cli_announce_key(tmpl, sizeof(tmpl) - 2, &a.header, &a.rows[0], "a@x.example", k3);
	assert_string_not_equal(k1, k3);
	csv_table_fini(&a);
	csv_table_fini(&b);
	csv_table_fini(&c);
}

static void
test_json(void **state)
{
	char *s;

	(void)state;
	s = cli_announce_json("Ops <ops@x.example>", "a@y.example", "\xe5\xb1\xb1\xe7\x94\xb0",
	    "Sub \"q\"", "line1\nline2\n", NULL);
	assert_string_equal(s, "{\"from\":\"Ops <ops@x.example>\",\"to\":[{\"address\":"
	    "\"a@y.example\",\"name\":\"\\u5C71\\u7530\"}],\"subject\":\"Sub \\\"q\\\"\","
	    "\"text\":\"line1\\nline2\\n\"}");
	free(s);
	s = cli_announce_json("o@x.example", "a@y.example", "A", "S", "T", "backup-first");
	assert_non_null(strstr(s, ",\"route\":\"backup-first\"}"));
	free(s);
}

static void
test_addr(void **state)
{
	(void)state;
	assert_true(cli_announce_addr_is_ok("a@x.example"));
	assert_true(cli_announce_addr_is_ok("first.last+tag@sub.x.example"));
	assert_false(cli_announce_addr_is_ok(""));
	assert_false(cli_announce_addr_is_ok("no-at"));
	assert_false(cli_announce_addr_is_ok("@x.example"));
	assert_false(cli_announce_addr_is_ok("a@"));
	assert_false(cli_announce_addr_is_ok("a b@x.example"));
	assert_false(cli_announce_addr_is_ok("Ann <a@x.example>"));
	assert_false(cli_announce_addr_is_ok("a@x.example,b@x.example"));
	assert_false(cli_announce_addr_is_ok("a@x.example\n"));
}

/* What the rest file holds reads back as the same rows. */
static void
test_csv_encode_round_trip(void **state)
{
	struct csv_table t, back;
	struct buf out = BUF_INIT;
	const char *why = NULL;
	size_t i, j;

	(void)state;
	table("address,name,note\na@x.example,\"Lee, Ann\",\"say \"\"hi\"\"\"\n"
	      "b@x.example,,\"two\nlines\"\nc@x.example, lead,plain\n", &t);
	cli_announce_csv_encode(&t.header, &out);
	for (i = 0; i < t.n_rows; i++)
		cli_announce_csv_encode(&t.rows[i], &out);
	assert_non_null(strstr(out.ptr, "\"Lee, Ann\""));
	assert_int_equal(csv_table_parse(out.ptr, out.len, &back, &why), 0);
	assert_int_equal(back.n_rows, t.n_rows);
	assert_int_equal(back.n_bad, 0);
	for (i = 0; i < t.n_rows; i++) {
		for (j = 0; j < t.header.n; j++)
			assert_string_equal(csv_field(&back.rows[i], j), csv_field(&t.rows[i], j));
	}
	csv_table_fini(&t);
	csv_table_fini(&back);
	buf_fini(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_csv_encode_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
