/* test_xtext.c - RFC 3461 xtext. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/xtext.h"
#include "util/poison.h"

static void
check_encode(const char *in, size_t n, const char *want)
{
	struct buf b = BUF_INIT;

	xtext_encode(&b, in, n);
	assert_string_equal(b.ptr, want);
	assert_int_equal(b.len, strlen(want));
	assert_true(xtext_is_valid(b.ptr, b.len));
	buf_fini(&b);
}

static void
test_xtext_encode(void **state)
{
	(void)state;
	check_encode("user@example.com", 16, "user@example.com");
	check_encode("a+b=c", 5, "a+2Bb+3Dc");
	check_encode("a b", 3, "a+20b");
	check_encode("\r\n", 2, "+0D+0A");
	check_encode("x\0y", 3, "x+00y");
	check_encode("\x7f\x80\xff", 3, "+7F+80+FF");
	check_encode("!~", 2, "!~");
	check_encode("caf\xc3\xa9", 5, "caf+C3+A9");
}

static void
test_xtext_encode_appends(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	buf_append_str(&b, "to=");
	xtext_encode(&b, "a b", 3);
	xtext_encode(&b, "", 0);
	assert_string_equal(b.ptr, "to=a+20b");
	buf_fini(&b);
}

static void
test_xtext_round_trip_all_bytes(void **state)
{
	struct buf enc = BUF_INIT, dec = BUF_INIT;
	char all[256];
	size_t i;

	(void)state;
	for (i = 0; i < 256; i++)
		all[i] = (char)i;
	xtext_encode(&enc, all, sizeof(all));
	/* No byte that could end or split an envelope record survives encoding. */
	for (i = 0; i < enc.len; i++) {
		unsigned char c = (unsigned char)enc.ptr[i];

		assert_true(c > ' ' && c < 0x7f && c != '=');
	}
	assert_int_equal(xtext_decode(&dec, enc.ptr, enc.len), 0);
	assert_int_equal(dec.len, sizeof(all));
	assert_memory_equal(dec.ptr, all, sizeof(all));
	buf_fini(&enc);
	buf_fini(&dec);
}

static void
test_xtext_decode(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(xtext_decode(&b, "a+2Bb+3Dc", 9), 0);
	assert_string_equal(b.ptr, "a+b=c");
	buf_reset(&b);
	assert_int_equal(xtext_decode(&b, "+41+42", 6), 0);
	assert_string_equal(b.ptr, "AB");
	buf_reset(&b);
	assert_int_equal(xtext_decode(&b, "", 0), 0);
	assert_int_equal(b.len, 0);
	/* Plain characters may also arrive hex-encoded. */
	assert_int_equal(xtext_decode(&b, "+61", 3), 0);
	assert_string_equal(b.ptr, "a");
	buf_fini(&b);
}

static void
test_xtext_decode_rejects(void **state)
{
	static const char *const bad[] = {
		"+", "+4", "a+", "a+4", "+zz", "+4g", "+g4", "+2b", "+a0", "+ff", "a b", "a=b",
		"a\rb", "a\nb", "\t", "+-1", "++41", "+ 41", "\x7f", "\x80", "caf\xc3\xa9",
	};
	struct buf b = BUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		assert_int_equal(xtext_decode(&b, bad[i], strlen(bad[i])), -1);
		assert_false(xtext_is_valid(bad[i], strlen(bad[i])));
	}
	assert_int_equal(xtext_decode(&b, "a\0b", 3), -1);
	assert_false(xtext_is_valid("a\0b", 3));
	buf_fini(&b);
}

static void
test_xtext_length_bounds_input(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	/* "+41" cut after two bytes is malformed even though the third byte is in memory. */
	assert_int_equal(xtext_decode(&b, "+41", 2), -1);
	assert_false(xtext_is_valid("+41", 2));
	assert_true(xtext_is_valid("+41", 3));
	assert_true(xtext_is_valid("abc", 2));
	assert_true(xtext_is_valid("", 0));
	buf_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xtext_encode),
		cmocka_unit_test(test_xtext_encode_appends),
		cmocka_unit_test(test_xtext_round_trip_all_bytes),
		cmocka_unit_test(test_xtext_decode),
		cmocka_unit_test(test_xtext_decode_rejects),
		cmocka_unit_test(test_xtext_length_bounds_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
