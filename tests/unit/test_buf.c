/* test_buf.c - the growable byte buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/buf.h"
#include "util/poison.h"

static void
test_buf_empty(void **state)
{
	struct buf b = BUF_INIT;
	char *s;

	(void)state;
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	buf_reset(&b);
	buf_truncate(&b, 0);
	buf_consume(&b, 0);
	assert_null(b.ptr);
	/* An empty buffer still hands out a C string. */
	s = buf_steal(&b);
	assert_string_equal(s, "");
	free(s);
	buf_fini(&b);
	buf_fini(&b);
}

static void
test_buf_append_keeps_nul_and_binary(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	buf_append(&b, "ab\0cd", 5);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.ptr, "ab\0cd", 6);
	assert_true(b.cap > b.len);
	buf_append_str(&b, "ef");
	buf_putc(&b, 'g');
	buf_putc(&b, '\0');
	assert_int_equal(b.len, 9);
	assert_memory_equal(b.ptr, "ab\0cdefg\0", 10);
	buf_append(&b, "zz", 0);
	assert_int_equal(b.len, 9);
	buf_fini(&b);
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void
test_buf_append_empty_allocates_string(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	buf_append(&b, NULL, 0);
	assert_non_null(b.ptr);
	assert_string_equal(b.ptr, "");
	buf_fini(&b);
}

static void
test_buf_grows_large(void **state)
{
	struct buf b = BUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < 100000; i++)
		buf_putc(&b, (char)('a' + i % 26));
	assert_int_equal(b.len, 100000);
	assert_true(b.cap > 100000);
	for (i = 0; i < 100000; i++)
		assert_int_equal(b.ptr[i], (char)('a' + i % 26));
	assert_int_equal(b.ptr[b.len], '\0');
	buf_fini(&b);
}

static void
test_buf_reserve(void **state)
{
	struct buf b = BUF_INIT;
	char *p;

	(void)state;
	buf_reserve(&b, 1000);
	assert_true(b.cap >= 1001);
	/* A buffer that only reserved is still an empty C string. */
	assert_string_equal(b.ptr, "");
	p = b.ptr;
	buf_append(&b, "x", 1);
	buf_reserve(&b, 999);
	assert_ptr_equal(b.ptr, p);
	buf_fini(&b);
}

static void
test_buf_reset_keeps_capacity(void **state)
{
	struct buf b = BUF_INIT;
	size_t cap;

	(void)state;
	buf_append_str(&b, "hello world");
	cap = b.cap;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap);
	assert_string_equal(b.ptr, "");
	buf_append_str(&b, "x");
	assert_string_equal(b.ptr, "x");
	buf_fini(&b);
}

static void
test_buf_printf(void **state)
{
	struct buf b = BUF_INIT;
	char big[5000];

	(void)state;
	buf_printf(&b, "%s=%d", "n", 42);
	buf_printf(&b, " %05u", 7u);
	assert_string_equal(b.ptr, "n=42 00007");
	assert_int_equal(b.len, 10);
	/* Output longer than the spare room takes the second pass. */
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_printf(&b, "[%s]", big);
	assert_int_equal(b.len, 10 + 2 + sizeof(big) - 1);
	assert_int_equal(b.ptr[10], '[');
	assert_int_equal(b.ptr[b.len - 1], ']');
	assert_int_equal(b.ptr[b.len], '\0');
	buf_printf(&b, "%s", "");
	assert_int_equal(b.len, 10 + 2 + sizeof(big) - 1);
	buf_fini(&b);
}

static void
test_buf_printf_exact_boundary(void **state)
{
	struct buf b = BUF_INIT;
	size_t room, i;

	(void)state;
	/* Fill so that the formatted text needs exactly the remaining room, then one more. */
	for (i = 0; i < 3; i++) {
		char s[200];

		buf_reserve(&b, 64);
		room = b.cap - b.len - 1;
		memset(s, 'r', sizeof(s));
		s[room + i < sizeof(s) ? room + i : sizeof(s) - 1] = '\0';
		buf_printf(&b, "%s", s);
		assert_int_equal(b.ptr[b.len], '\0');
		assert_int_equal(strlen(b.ptr), b.len);
	}
	buf_fini(&b);
}

static void
test_buf_consume(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	buf_append_str(&b, "EHLO x\r\nQUIT\r\n");
	buf_consume(&b, 8);
	assert_string_equal(b.ptr, "QUIT\r\n");
	assert_int_equal(b.len, 6);
	buf_consume(&b, 6);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.ptr, "");
	buf_fini(&b);
}

static void
test_buf_truncate(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	buf_append_str(&b, "abcdef");
	buf_truncate(&b, 3);
	assert_string_equal(b.ptr, "abc");
	assert_int_equal(b.len, 3);
	buf_truncate(&b, 3);
	assert_string_equal(b.ptr, "abc");
	buf_fini(&b);
}

static void
test_buf_move(void **state)
{
	struct buf a = BUF_INIT, b = BUF_INIT;

	(void)state;
	buf_append_str(&a, "source");
	buf_append_str(&b, "old destination memory is freed");
	buf_move(&b, &a);
	assert_string_equal(b.ptr, "source");
	assert_int_equal(b.len, 6);
	assert_null(a.ptr);
	assert_int_equal(a.len, 0);
	assert_int_equal(a.cap, 0);
	buf_move(&b, &b);
	assert_string_equal(b.ptr, "source");
	buf_fini(&b);
}

static void
test_buf_steal(void **state)
{
	struct buf b = BUF_INIT;
	char *s;

	(void)state;
	buf_append_str(&b, "mine");
	s = buf_steal(&b);
	assert_string_equal(s, "mine");
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	buf_append_str(&b, "reusable");
	assert_string_equal(b.ptr, "reusable");
	free(s);
	buf_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_empty),
		cmocka_unit_test(test_buf_append_keeps_nul_and_binary),
		cmocka_unit_test(test_buf_append_empty_allocates_string),
		cmocka_unit_test(test_buf_grows_large),
		cmocka_unit_test(test_buf_reserve),
		cmocka_unit_test(test_buf_reset_keeps_capacity),
		cmocka_unit_test(test_buf_printf),
		cmocka_unit_test(test_buf_printf_exact_boundary),
		cmocka_unit_test(test_buf_consume),
		cmocka_unit_test(test_buf_truncate),
		cmocka_unit_test(test_buf_move),
		cmocka_unit_test(test_buf_steal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
