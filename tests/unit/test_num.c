/* test_num.c - strict parsing of numbers, durations, sizes and rates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/num.h"
#include "util/poison.h"

/* Parse a NUL-terminated s with num_parse_u64; out keeps 777 on failure. */
static int
parse(const char *s, uint64_t max, uint64_t *out)
{
	*out = 777;
	return num_parse_u64(s, strlen(s), max, out);
}

static void
test_num_u64_accepts_digits(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse("0", UINT64_MAX, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse("42", UINT64_MAX, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(parse("000123", UINT64_MAX, &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(parse("18446744073709551615", UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
}

static void
test_num_u64_rejects(void **state)
{
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "1\n", "0x10", "1e3", "1.0", "١", "12a", "a12",
		"18446744073709551616", "99999999999999999999", "184467440737095516150",
	};
	uint64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], UINT64_MAX, &v), -1);
		/* Nothing is written on failure. */
		assert_int_equal(v, 777);
	}
	assert_int_equal(num_parse_u64(NULL, 0, 10, &v), -1);
}

static void
test_num_u64_max(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse("100", 100, &v), 0);
	assert_int_equal(v, 100);
	assert_int_equal(parse("101", 100, &v), -1);
	assert_int_equal(v, 777);
	assert_int_equal(parse("0", 0, &v), 0);
	assert_int_equal(parse("1", 0, &v), -1);
	assert_int_equal(parse("1125899906842624", HK_SIZE_MAX, &v), 0);
	assert_int_equal(parse("1125899906842625", HK_SIZE_MAX, &v), -1);
}

static void
test_num_u64_length_bounds_input(void **state)
{
	uint64_t v;

	(void)state;
	/* Only s[0..n) counts: the bytes after it are not looked at. */
	assert_int_equal(num_parse_u64("123xyz", 3, UINT64_MAX, &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(num_parse_u64("12\0" "3", 4, UINT64_MAX, &v), -1);
	assert_int_equal(num_parse_u64z("5120", 10000, &v), 0);
	assert_int_equal(v, 5120);
	assert_int_equal(num_parse_u64z("", 10000, &v), -1);
}

static void
test_num_hex64(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(num_parse_hex64("5a1c09e2", 8, &v), 0);
	assert_int_equal(v, 0x5a1c09e2u);
	assert_int_equal(num_parse_hex64("ffffffffffffffff", 16, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(num_parse_hex64("0", 1, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(num_parse_hex64("", 0, &v), -1);
	assert_int_equal(num_parse_hex64("10000000000000000", 17, &v), -1);
	assert_int_equal(num_parse_hex64("0x1f", 4, &v), -1);
	assert_int_equal(num_parse_hex64("1g", 2, &v), -1);
	assert_int_equal(num_parse_hex64("-1", 2, &v), -1);
	assert_int_equal(num_parse_hex64(" 1", 2, &v), -1);
}

static void
test_num_add_size(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(num_add_size(1, 2, &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(num_add_size(UINT64_MAX - 1, 1, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(num_add_size(UINT64_MAX, 1, &v), -1);
	assert_int_equal(num_add_size(UINT64_MAX / 2 + 1, UINT64_MAX / 2 + 1, &v), -1);
}

static void
test_num_duration(void **state)
{
	static const struct {
		const char *in;
		uint64_t ms;
	} ok[] = {
		{ "30s", 30000 }, { "5m", 300000 }, { "2h", 7200000 }, { "5d", 432000000 },
		{ "250ms", 250 }, { "1w", 604800000 }, { "0s", 0 }, { "0", 0 }, { "7", 7000 },
		{ "1000ms", 1000 },
	};
	static const char *const bad[] = {
		"", "s", "ms", "5x", "5 s", " 5s", "5s ", "-5s", "+5s", "1.5h", "5S", "5M", "5sec",
		"5mss", "5s5", "0x5s", "18446744073709551616ms", "18446744073709551615s",
		"213503982334602d",
	};
	uint64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 1;
		assert_int_equal(num_parse_duration_ms(ok[i].in, &v), 0);
		assert_true(v == ok[i].ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(num_parse_duration_ms(bad[i], &v), -1);
	/* The largest that fits. */
	assert_int_equal(num_parse_duration_ms("18446744073709551615ms", &v), 0);
	assert_true(v == UINT64_MAX);
}

static void
test_num_size(void **state)
{
	static const struct {
		const char *in;
		uint64_t bytes;
	} ok[] = {
		{ "4096", 4096 }, { "512K", 524288 }, { "25M", 26214400 }, { "1G", 1073741824 },
		{ "0", 0 }, { "0K", 0 }, { "1048576G", HK_SIZE_MAX },
	};
	static const char *const bad[] = {
		"", "K", "25X", "25 M", "-1", "+1", "1.5M", "25MiB", "1T", " 1", "1048577G",
		"1125899906842625", "18446744073709551616", "18014398509481984K",
	};
	uint64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 1;
		assert_int_equal(num_parse_size(ok[i].in, &v), 0);
		assert_true(v == ok[i].bytes);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(num_parse_size(bad[i], &v), -1);
}

static void
test_num_rate(void **state)
{
	static const struct {
		const char *in;
		uint64_t count, period;
	} ok[] = {
		{ "10/s", 10, 1000 }, { "600/m", 600, 60000 }, { "100/h", 100, 3600000 },
		{ "4294967295/s", 4294967295u, 1000 },
	};
	static const char *const bad[] = {
		"", "10", "10/", "/s", "0/s", "-1/s", "+1/s", "10/x", "10/S", "10 /s", "10/ s",
		"10/s ", "10/ss", "10/s/s", "1.5/s", "4294967296/s", "18446744073709551616/s",
	};
	uint64_t c, p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(num_parse_rate(ok[i].in, &c, &p), 0);
		assert_true(c == ok[i].count);
		assert_true(p == ok[i].period);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(num_parse_rate(bad[i], &c, &p), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_num_u64_accepts_digits),
		cmocka_unit_test(test_num_u64_rejects),
		cmocka_unit_test(test_num_u64_max),
		cmocka_unit_test(test_num_u64_length_bounds_input),
		cmocka_unit_test(test_num_hex64),
		cmocka_unit_test(test_num_add_size),
		cmocka_unit_test(test_num_duration),
		cmocka_unit_test(test_num_size),
		cmocka_unit_test(test_num_rate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
