/* test_csv.c - RFC 4180 records, header tables, bad rows with their line numbers, UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/csv.h"
#include "util/poison.h"

static void
test_plain_and_quoted_fields(void **state)
{
	static const char in[] = "a,b c,,\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\nnext\n";
	struct csv_record r;
	size_t pos = 0, line = 1;
	const char *why;

	(void)state;
	csv_record_init(&r);
	assert_int_equal(csv_next(in, sizeof(in) - 1, &pos, &line, &r, &why), CSV_RECORD);
	assert_int_equal(r.n, 6);
	assert_int_equal(r.line, 1);
	assert_string_equal(csv_field(&r, 0), "a");
	assert_string_equal(csv_field(&r, 1), "b c");
	assert_string_equal(csv_field(&r, 2), "");
	assert_string_equal(csv_field(&r, 3), "x,y");
	assert_string_equal(csv_field(&r, 4), "say \"hi\"");
	assert_string_equal(csv_field(&r, 5), "two\nlines");
	assert_int_equal(csv_next(in, sizeof(in) - 1, &pos, &line, &r, &why), CSV_RECORD);
	assert_int_equal(r.line, 3);
	assert_int_equal(r.n, 1);
	assert_string_equal(csv_field(&r, 0), "next");
	assert_int_equal(csv_next(in, sizeof(in) - 1, &pos, &line, &r, &why), CSV_END);
	csv_record_fini(&r);
}

static void
test_trailing_comma_and_no_final_newline(void **state)
{
	static const char in[] = "a,\n\n\nb";
	struct csv_record r;
	size_t pos = 0, line = 1;
	const char *why;

	(void)state;
	csv_record_init(&r);
	assert_int_equal(csv_next(in, sizeof(in) - 1, &pos, &line, &r, &why), CSV_RECORD);
	assert_int_equal(r.n, 2);
	assert_string_equal(csv_field(&r, 1), "");
	assert_int_equal(csv_next(in, sizeof(in) - 1, &pos, &line, &r, &why), CSV_RECORD);
	assert_int_equal(r.line, 4);
	assert_string_equal(csv_field(&r, 0), "b");
	assert_int_equal(csv_next(in, sizeof(in) - 1, &pos, &line, &r, &why), CSV_END);
	csv_record_fini(&r);
}

static void
test_bad_records_are_skipped_with_their_line(void **state)
{
	static const struct {
		const char *in;
		const char *why;
	} cases[] = {
		{ "a\"b,c\nok\n", "quote inside an unquoted field" },
		{ "\"a\"b,c\nok\n", "text after a closing quote" },
		{ "a\rb\nok\n", "CR without LF" },
		{ "\xff\xfe,x\nok\n", "malformed UTF-8" },
		{ "\xc0\xaf\nok\n", "malformed UTF-8" },
		{ "\xed\xa0\x80\nok\n", "malformed UTF-8" },
	};
	struct csv_record r;
	size_t i;

	(void)state;
	csv_record_init(&r);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t pos = 0, line = 1, n = strlen(cases[i].in);
		const char *why = NULL;

		assert_int_equal(csv_next(cases[i].in, n, &pos, &line, &r, &why), CSV_BAD);
		assert_non_null(strstr(why, cases[i].why));
		assert_int_equal(r.line, 1);
		assert_int_equal(csv_next(cases[i].in, n, &pos, &line, &r, &why), CSV_RECORD);
		assert_int_equal(r.line, 2);
		assert_string_equal(csv_field(&r, 0), "ok");
	}
	csv_record_fini(&r);
}

static void
test_nul_and_unterminated_quote(void **state)
{
	static const char nul[] = "a\0b\nok\n";
	static const char open[] = "ok\n\"never\nclosed\n";
	struct csv_record r;
	size_t pos = 0, line = 1;
	const char *why;

	(void)state;
	csv_record_init(&r);
	assert_int_equal(csv_next(nul, sizeof(nul) - 1, &pos, &line, &r, &why), CSV_BAD);
	assert_string_equal(why, "NUL byte");
	assert_int_equal(csv_next(nul, sizeof(nul) - 1, &pos, &line, &r, &why), CSV_RECORD);
	pos = 0;
	line = 1;
	assert_int_equal(csv_next(open, sizeof(open) - 1, &pos, &line, &r, &why), CSV_RECORD);
	assert_int_equal(csv_next(open, sizeof(open) - 1, &pos, &line, &r, &why), CSV_BAD);
	assert_int_equal(r.line, 2);
	assert_non_null(strstr(why, "unterminated"));
	assert_int_equal(csv_next(open, sizeof(open) - 1, &pos, &line, &r, &why), CSV_END);
	csv_record_fini(&r);
}

static void
test_too_many_fields(void **state)
{
	char in[2 * (CSV_FIELDS_MAX + 1) + 8];
	struct csv_record r;
	size_t pos = 0, line = 1, i, n = 0;
	const char *why;

	(void)state;
	for (i = 0; i <= CSV_FIELDS_MAX; i++) {
		in[n++] = 'x';
		in[n++] = i == CSV_FIELDS_MAX ? '\n' : ',';
	}
	csv_record_init(&r);
	assert_int_equal(csv_next(in, n, &pos, &line, &r, &why), CSV_BAD);
	assert_int_equal(pos, n);
	assert_int_equal(line, 2);
	csv_record_fini(&r);
}

static void
test_table(void **state)
{
	static const char in[] = "\xef\xbb\xbf" "address, name ,service\n"
				 "a@x.example,Ann,mail\n"
				 "b@x.example,Bob\n"
				 "\"c@x.example\",\"Chi, Jr.\",\"web\"\n"
				 "d@x.example,\"Dee\"x,mail\n"
				 "e@x.example,\xe5\xb1\xb1\xe7\x94\xb0,mail\n";
	struct csv_table t;
	const char *why = NULL;

	(void)state;
	assert_int_equal(csv_table_parse(in, sizeof(in) - 1, &t, &why), 0);
	assert_int_equal(csv_table_column(&t, "address"), 0);
	assert_int_equal(csv_table_column(&t, "name"), 1);
	assert_int_equal(csv_table_column(&t, "service"), 2);
	assert_int_equal(csv_table_column(&t, "company"), SIZE_MAX);
	assert_int_equal(t.n_rows, 3);
	assert_string_equal(csv_field(&t.rows[1], 1), "Chi, Jr.");
	assert_int_equal(t.rows[2].line, 6);
	assert_string_equal(csv_field(&t.rows[2], 1), "\xe5\xb1\xb1\xe7\x94\xb0");
	assert_int_equal(t.n_bad, 2);
	assert_int_equal(t.bad[0].line, 3);
	assert_string_equal(t.bad[0].why, "2 fields, the header has 3");
	assert_int_equal(t.bad[1].line, 5);
	csv_table_add_bad(&t, 4, "later %s", "check");
	assert_int_equal(t.n_bad, 3);
	assert_int_equal(t.bad[1].line, 4);
	assert_string_equal(t.bad[1].why, "later check");
	assert_int_equal(t.bad[2].line, 5);
	csv_table_fini(&t);
}

static void
test_table_bad_header(void **state)
{
	struct csv_table t;
	const char *why = NULL;

	(void)state;
	assert_int_equal(csv_table_parse("", 0, &t, &why), -1);
	assert_non_null(strstr(why, "no header row"));
	assert_int_equal(csv_table_parse("\n\n", 2, &t, &why), -1);
	assert_int_equal(csv_table_parse("address,,name\n", 14, &t, &why), -1);
	assert_non_null(strstr(why, "empty column name"));
	assert_int_equal(csv_table_parse("address,name,address\n", 21, &t, &why), -1);
	assert_non_null(strstr(why, "twice"));
	assert_int_equal(csv_table_parse("addr\"ess\n", 9, &t, &why), -1);
	assert_non_null(strstr(why, "quote"));
	assert_int_equal(t.n_rows, 0);
	csv_table_fini(&t);
}

static void
test_utf8(void **state)
{
	(void)state;
	assert_true(csv_is_utf8("", 0));
	assert_true(csv_is_utf8("abc", 3));
	assert_true(csv_is_utf8("\xe3\x81\x82", 3));
	assert_true(csv_is_utf8("\xf0\x9f\x93\xa7", 4));
	assert_false(csv_is_utf8("\xe3\x81", 2));
	assert_false(csv_is_utf8("\xe0\x80\x80", 3));
	assert_false(csv_is_utf8("\xf4\x90\x80\x80", 4));
	assert_false(csv_is_utf8("\x80", 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_and_quoted_fields),
		cmocka_unit_test(test_trailing_comma_and_no_final_newline),
		cmocka_unit_test(test_bad_records_are_skipped_with_their_line),
		cmocka_unit_test(test_nul_and_unterminated_quote),
		cmocka_unit_test(test_too_many_fields),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_table_bad_header),
		cmocka_unit_test(test_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
