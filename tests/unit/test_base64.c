/* test_base64.c - RFC 4648 base64, strict decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/base64.h"
#include "util/poison.h"

/* RFC 4648 section 10. */
static const struct {
	const char *plain, *enc;
} rfc_vectors[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

static void
test_base64_rfc4648_encode(void **state)
{
	struct buf b = BUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rfc_vectors) / sizeof(rfc_vectors[0]); i++) {
		buf_reset(&b);
		base64_encode(&b, rfc_vectors[i].plain, strlen(rfc_vectors[i].plain));
		assert_int_equal(b.len, strlen(rfc_vectors[i].enc));
		assert_memory_equal(b.len ? b.ptr : "", rfc_vectors[i].enc, b.len);
	}
	buf_fini(&b);
}

static void
test_base64_rfc4648_decode(void **state)
{
	struct buf b = BUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rfc_vectors) / sizeof(rfc_vectors[0]); i++) {
		buf_reset(&b);
		assert_int_equal(base64_decode(&b, rfc_vectors[i].enc, strlen(rfc_vectors[i].enc)),
		    0);
		assert_int_equal(b.len, strlen(rfc_vectors[i].plain));
		assert_memory_equal(b.len ? b.ptr : "", rfc_vectors[i].plain, b.len);
	}
	buf_fini(&b);
}

static void
test_base64_alphabet_and_binary(void **state)
{
	static const unsigned char bin[] = { 0xfb, 0xff, 0xbf, 0x00, 0x10, 0x83 };
	struct buf b = BUF_INIT, d = BUF_INIT;

	(void)state;
	/* '+' and '/' of the standard alphabet, never the URL-safe '-' and '_'. */
	base64_encode(&b, bin, sizeof(bin));
	assert_string_equal(b.ptr, "+/+/ABCD");
	assert_int_equal(base64_decode(&d, b.ptr, b.len), 0);
	assert_int_equal(d.len, sizeof(bin));
	assert_memory_equal(d.ptr, bin, sizeof(bin));
	buf_reset(&d);
	assert_int_equal(base64_decode(&d, "-_-_ABCD", 8), -1);
	buf_fini(&b);
	buf_fini(&d);
}

static void
test_base64_round_trip_lengths(void **state)
{
	unsigned char in[300];
	struct buf b = BUF_INIT, d = BUF_INIT;
	size_t n, i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 11);
	for (n = 0; n <= sizeof(in); n++) {
		buf_reset(&b);
		buf_reset(&d);
		base64_encode(&b, in, n);
		assert_int_equal(b.len, (n + 2) / 3 * 4);
		assert_int_equal(base64_decode(&d, b.ptr ? b.ptr : "", b.len), 0);
		assert_int_equal(d.len, n);
		if (n)
			assert_memory_equal(d.ptr, in, n);
	}
	buf_fini(&b);
	buf_fini(&d);
}

static void
test_base64_appends(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	buf_append_str(&b, "AUTH PLAIN ");
	base64_encode(&b, "\0user\0pass", 10);
	assert_string_equal(b.ptr, "AUTH PLAIN AHVzZXIAcGFzcw==");
	buf_reset(&b);
	buf_append_str(&b, ">");
	assert_int_equal(base64_decode(&b, "Zm9v", 4), 0);
	assert_string_equal(b.ptr, ">foo");
	buf_fini(&b);
}

static void
test_base64_strict_rejects(void **state)
{
	static const char *const bad[] = {
		"Zg", "Zg=", "Zm8", "Zm9vY", "Z", "=", "==", "===", "====", "Zg==Zg==", "Zm8=Zm9v",
		"Z===", "Zm9v\n", "Zm 9v", " Zm9v", "Zm9v ", "Zm9v\r\nZm9v", "Zm9-", "Zm9_",
		"Zm9v*AAA", "Zg=a", "Z=g=", "=Zg=",
		/* Non-zero unused bits: not the canonical encoding of any input. */
		"Zh==", "Zm9=", "AB==", "AAB=",
	};
	struct buf b = BUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		if (base64_decode(&b, bad[i], strlen(bad[i])) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(base64_decode(&b, "Zm\0v", 4), -1);
	buf_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_rfc4648_encode),
		cmocka_unit_test(test_base64_rfc4648_decode),
		cmocka_unit_test(test_base64_alphabet_and_binary),
		cmocka_unit_test(test_base64_round_trip_lengths),
		cmocka_unit_test(test_base64_appends),
		cmocka_unit_test(test_base64_strict_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
