/* test_util.c - str, err, log, crc32c, clock, xalloc. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/clock.h"
#include "util/crc32c.h"
#include "util/err.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/poison.h"

/* str */

static void
test_str_copy_fits_and_refuses(void **state)
{
	char dst[6];

	(void)state;
	assert_int_equal(str_copy(dst, sizeof(dst), "hello"), 0);
	assert_string_equal(dst, "hello");
	assert_int_equal(str_copy(dst, sizeof(dst), "hello!"), -1);
	assert_string_equal(dst, "");
	assert_int_equal(str_copy(dst, sizeof(dst), ""), 0);
	assert_string_equal(dst, "");
	assert_int_equal(str_copy(dst, 0, "x"), -1);
}

static void
test_str_copyn_takes_n_bytes(void **state)
{
	char dst[4];

	(void)state;
	assert_int_equal(str_copyn(dst, sizeof(dst), "abcdef", 3), 0);
	assert_string_equal(dst, "abc");
	assert_int_equal(str_copyn(dst, sizeof(dst), "abcdef", 4), -1);
	assert_string_equal(dst, "");
	assert_int_equal(str_copyn(dst, sizeof(dst), "abcdef", 0), 0);
	assert_string_equal(dst, "");
}

static void
test_str_eq_ci(void **state)
{
	(void)state;
	assert_true(str_eq_ci("MAIL", 4, "mail"));
	assert_true(str_eq_ci("MaIlX", 4, "mAiL"));
	assert_false(str_eq_ci("MAIL", 4, "mai"));
	assert_false(str_eq_ci("MAI", 3, "mail"));
	assert_false(str_eq_ci("RCPT", 4, "mail"));
	assert_true(str_eq_ci("", 0, ""));
	/* Only ASCII letters fold: '@' (0x40) and '`' (0x60) differ by 0x20 but are not letters. */
	assert_false(str_eq_ci("@", 1, "`"));
	assert_false(str_eq_ci("[", 1, "{"));
}

static void
test_str_has_prefix_ci(void **state)
{
	(void)state;
	assert_true(str_has_prefix_ci("FROM:<a@b>", 10, "from:"));
	assert_true(str_has_prefix_ci("x", 1, ""));
	assert_false(str_has_prefix_ci("FRO", 3, "from:"));
	/* The prefix must lie inside p[0..n), even when more bytes follow in memory. */
	assert_false(str_has_prefix_ci("FROM:", 4, "from:"));
	assert_false(str_has_prefix_ci("TO:", 3, "from:"));
}

static void
test_str_lower(void **state)
{
	char s[] = "MiXeD-Case_123@EXAMPLE.org\xc3\x89";

	(void)state;
	str_lower(s);
	assert_string_equal(s, "mixed-case_123@example.org\xc3\x89");
}

static void
test_str_eq_consttime(void **state)
{
	(void)state;
	assert_true(str_eq_consttime("secret", 6, "secret", 6));
	assert_false(str_eq_consttime("secret", 6, "secreT", 6));
	assert_false(str_eq_consttime("secret", 6, "secret!", 7));
	assert_false(str_eq_consttime("secret", 6, "secre", 5));
	assert_true(str_eq_consttime("", 0, "", 0));
	assert_true(str_eq_consttime("a\0b", 3, "a\0b", 3));
	assert_false(str_eq_consttime("a\0b", 3, "a\0c", 3));
}

/* err */

static void
test_err_set_fills_code_and_text(void **state)
{
	struct hk_err err;

	(void)state;
	memset(&err, 0x55, sizeof(err));
	assert_int_equal(hk_err_set(&err, HK_E_CONFIG, "bad key %s at %d", "foo", 12), -1);
	assert_int_equal(err.code, HK_E_CONFIG);
	assert_int_equal(err.sys_errno, 0);
	assert_string_equal(err.text, "bad key foo at 12");
	assert_int_equal(hk_err_set(NULL, HK_E_IO, "ignored"), -1);
}

static void
test_err_sys_maps_errno(void **state)
{
	struct hk_err err;
	char want[HK_ERR_TEXT_MAX + 64];

	(void)state;
	assert_int_equal(hk_err_sys(&err, ENOSPC, "write %s", "tmp/x.msg"), -1);
	assert_int_equal(err.code, HK_E_NOSPACE);
	assert_int_equal(err.sys_errno, ENOSPC);
	snprintf(want, sizeof(want), "write tmp/x.msg: %s", strerror(ENOSPC));
	assert_string_equal(err.text, want);

	assert_int_equal(hk_err_sys(&err, EDQUOT, "x"), -1);
	assert_int_equal(err.code, HK_E_NOSPACE);
	assert_int_equal(hk_err_sys(&err, EIO, "fsync"), -1);
	assert_int_equal(err.code, HK_E_IO);
	assert_int_equal(err.sys_errno, EIO);
	assert_int_equal(hk_err_sys(&err, EACCES, "open"), -1);
	assert_int_equal(err.code, HK_E_IO);
	assert_int_equal(hk_err_sys(NULL, EIO, "ignored"), -1);
}

static void
test_err_text_is_bounded(void **state)
{
	struct hk_err err;
	char big[1000];

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	hk_err_set(&err, HK_E_DATA, "%s", big);
	assert_int_equal(strlen(err.text), HK_ERR_TEXT_MAX - 1);
	hk_err_sys(&err, EIO, "%s", big);
	assert_int_equal(strlen(err.text), HK_ERR_TEXT_MAX - 1);
	assert_int_equal(err.code, HK_E_IO);
}

static void
test_err_code_names(void **state)
{
	(void)state;
	assert_string_equal(hk_err_code_name(HK_E_OK), "ok");
	assert_string_equal(hk_err_code_name(HK_E_IO), "io");
	assert_string_equal(hk_err_code_name(HK_E_NOSPACE), "nospace");
	assert_string_equal(hk_err_code_name(HK_E_TEMP), "temp");
	assert_string_equal(hk_err_code_name((enum hk_err_code)999), "unknown");
}

/* log */

static void
test_log_q_plain_and_quotes(void **state)
{
	(void)state;
	assert_string_equal(log_q("hello world"), "\"hello world\"");
	assert_string_equal(log_q(""), "\"\"");
	assert_string_equal(log_q(NULL), "\"\"");
	assert_string_equal(log_q("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
}

static void
test_log_q_escapes_control_bytes(void **state)
{
	(void)state;
	/* A peer cannot end the line or start a forged one. */
	assert_string_equal(log_q("a\r\nlevel=error mod=x"), "\"a\\r\\nlevel=error mod=x\"");
	assert_string_equal(log_q("\t"), "\"\\t\"");
	assert_string_equal(log_q("\x01\x1b[31m\x7f"), "\"\\x01\\x1b[31m\\x7f\"");
	assert_string_equal(log_q("\x1f"), "\"\\x1f\"");
	assert_string_equal(log_qn("a\0b", 3), "\"a\\x00b\"");
	/* Bytes above 0x7f (UTF-8) pass through. */
	assert_string_equal(log_q("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
}

static void
test_log_q_truncates_long_input(void **state)
{
	char in[600], want[520];
	const char *q;

	(void)state;
	memset(in, 'x', sizeof(in));
	q = log_qn(in, 512);
	assert_int_equal(strlen(q), 514);
	assert_int_equal(q[513], '"');

	q = log_qn(in, 513);
	want[0] = '"';
	memset(want + 1, 'x', 512);
	memcpy(want + 513, "...\"", 5);
	assert_string_equal(q, want);

	/* The worst case, every byte escaped, still fits. */
	memset(in, '\x01', sizeof(in));
	q = log_qn(in, sizeof(in));
	assert_int_equal(strlen(q), 1 + 512 * 4 + 3 + 1);
	assert_memory_equal(q + strlen(q) - 8, "\\x01...\"", 8);
}

static void
test_log_q_rotating_buffers(void **state)
{
	const char *q[8];
	char want[16];
	int i;

	(void)state;
	/* Eight results stay valid at once, enough for one log line with several values. */
	for (i = 0; i < 8; i++) {
		char in[8];

		snprintf(in, sizeof(in), "v%d", i);
		q[i] = log_q(in);
	}
	for (i = 0; i < 8; i++) {
		snprintf(want, sizeof(want), "\"v%d\"", i);
		assert_string_equal(q[i], want);
	}
}

/* Read what the log wrote into the pipe. */
static void
read_pipe(int fd, char *out, size_t size)
{
	ssize_t n = read(fd, out, size - 1);

	out[n > 0 ? n : 0] = '\0';
}

static void
test_log_write_line_and_levels(void **state)
{
	int p[2];
	char got[4096];
	enum log_level lv;

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	log_set_fd(p[1]);
	log_set_level(LOG_LEVEL_INFO);

	log_info("spool", "queued", "qid=%s size=%d", "0193F2A1C4000007", 4211);
	read_pipe(p[0], got, sizeof(got));
	assert_string_equal(got, "level=info mod=spool event=queued qid=0193F2A1C4000007 size=4211\n");

	log_debug("spool", "hidden", "qid=x");
	read_pipe(p[0], got, sizeof(got));
	assert_string_equal(got, "");

	log_set_level(LOG_LEVEL_ERROR);
	log_warn("smtpd", "hidden", "sess=1");
	read_pipe(p[0], got, sizeof(got));
	assert_string_equal(got, "");
	log_error("smtpd", "shown", "sess=1 err=%s", log_q("a\nb"));
	read_pipe(p[0], got, sizeof(got));
	assert_string_equal(got, "level=error mod=smtpd event=shown sess=1 err=\"a\\nb\"\n");

	log_set_trace(0);
	log_trace(TRACE_SMTPD, "smtpd", "line", "sess=1");
	read_pipe(p[0], got, sizeof(got));
	assert_string_equal(got, "");
	log_set_trace(TRACE_SMTPD);
	log_trace(TRACE_SMTPD, "smtpd", "line", "sess=1");
	log_trace(TRACE_SMTPC, "smtpc", "line", "sess=2");
	read_pipe(p[0], got, sizeof(got));
	assert_string_equal(got, "level=trace mod=smtpd event=line sess=1\n");
	log_set_trace(0);

	assert_int_equal(log_level_parse("warn", &lv), 0);
	assert_int_equal(lv, LOG_LEVEL_WARN);
	assert_int_equal(log_level_parse("debug", &lv), 0);
	assert_int_equal(lv, LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_parse("WARN", &lv), -1);
	assert_int_equal(log_level_parse("", &lv), -1);

	log_set_level(LOG_LEVEL_INFO);
	assert_int_equal(log_get_level(), LOG_LEVEL_INFO);
	log_set_fd(2);
	close(p[0]);
	close(p[1]);
}

static void
test_log_write_long_line_is_whole(void **state)
{
	int p[2];
	static char big[3000], got[8192];
	size_t n;

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	log_set_fd(p[1]);
	memset(big, 'y', sizeof(big) - 1);
	log_info("m", "e", "v=%s end=1", big);
	read_pipe(p[0], got, sizeof(got));
	n = strlen(got);
	assert_int_equal(n, strlen("level=info mod=m event=e v= end=1\n") + sizeof(big) - 1);
	assert_memory_equal(got, "level=info mod=m event=e v=yyy", 30);
	assert_string_equal(got + n - 7, " end=1\n");
	log_set_fd(2);
	close(p[0]);
	close(p[1]);
}

/* crc32c */

static void
test_crc32c_known_vectors(void **state)
{
	unsigned char zeros[32], ones[32], inc[32], dec[32];
	int i;

	(void)state;
	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(crc32c(0, "", 0), 0);
	assert_int_equal(crc32c(0, "a", 1), 0xc1d04330u);
	/* RFC 3720 B.4 test vectors. */
	for (i = 0; i < 32; i++) {
		zeros[i] = 0;
		ones[i] = 0xff;
		inc[i] = (unsigned char)i;
		dec[i] = (unsigned char)(31 - i);
	}
	assert_int_equal(crc32c(0, zeros, 32), 0x8a9136aau);
	assert_int_equal(crc32c(0, ones, 32), 0x62a8ab43u);
	assert_int_equal(crc32c(0, inc, 32), 0x46dd794eu);
	assert_int_equal(crc32c(0, dec, 32), 0x113fdb5cu);
}

static void
test_crc32c_incremental(void **state)
{
	static const char s[] = "hikyaku-envelope 1\nid 0193F2A1C4000007\n";
	uint32_t whole = crc32c(0, s, sizeof(s) - 1), part;
	size_t cut;

	(void)state;
	for (cut = 0; cut < sizeof(s); cut++) {
		part = crc32c(0, s, cut);
		part = crc32c(part, s + cut, sizeof(s) - 1 - cut);
		assert_int_equal(part, whole);
	}
}

#define CRC_THREADS 8

static void *
crc_thread(void *arg)
{
	uint32_t *out = arg;

	*out = crc32c(0, "123456789", 9);
	return NULL;
}

static void
test_crc32c_threads_agree(void **state)
{
	pthread_t t[CRC_THREADS];
	uint32_t got[CRC_THREADS];
	int i;

	(void)state;
	for (i = 0; i < CRC_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, crc_thread, &got[i]), 0);
	for (i = 0; i < CRC_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(got[i], 0xe3069283u);
	}
}

/* clock */

static void
test_clock_fake(void **state)
{
	uint64_t real;

	(void)state;
	clock_set_fake(1700000000000ULL);
	assert_int_equal(clock_now_ms(), 1700000000000ULL);
	assert_int_equal(clock_mono_ms(), 1700000000000ULL);
	clock_advance_fake(1500);
	assert_int_equal(clock_now_ms(), 1700000001500ULL);
	clock_set_fake(0);
	real = clock_now_ms();
	/* Back on the real clock: after 2020 and moving forward. */
	assert_true(real > 1577836800000ULL);
	assert_true(clock_mono_ms() <= clock_mono_ms());
}

/* xalloc */

static void
test_xalloc(void **state)
{
	char *s;
	int *v;

	(void)state;
	s = xstrdup("abc");
	assert_string_equal(s, "abc");
	free(s);
	s = xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
	s = xasprintf("%s-%d", "x", 42);
	assert_string_equal(s, "x-42");
	free(s);
	v = xcalloc(4, sizeof(*v));
	assert_int_equal(v[0] | v[1] | v[2] | v[3], 0);
	v = xreallocarray(v, 8, sizeof(*v));
	v[7] = 7;
	assert_int_equal(v[7], 7);
	free(v);
	free(xmalloc(0));
	s = xmemdup("a\0b", 3);
	assert_memory_equal(s, "a\0b", 3);
	free(s);
}

static size_t
u8len(const char *s, size_t n)
{
	return str_utf8_char_len((const unsigned char *)s, n);
}

static void
test_str_utf8(void **state)
{
	(void)state;
	assert_int_equal(u8len("a", 1), 1);
	assert_int_equal(u8len("", 0), 0);
	assert_int_equal(u8len("\xc3\xa9", 2), 2);
	assert_int_equal(u8len("\xe3\x81\x82", 3), 3);
	assert_int_equal(u8len("\xf0\x9f\x93\xa7", 4), 4);
	assert_int_equal(u8len("\xf4\x8f\xbf\xbf", 4), 4);  /* U+10FFFF */
	assert_int_equal(u8len("\xe3\x81", 2), 0);          /* cut short */
	assert_int_equal(u8len("\xc0\xaf", 2), 0);          /* overlong */
	assert_int_equal(u8len("\xe0\x80\xaf", 3), 0);      /* overlong */
	assert_int_equal(u8len("\xf0\x80\x80\xaf", 4), 0);  /* overlong */
	assert_int_equal(u8len("\xed\xa0\x80", 3), 0);      /* surrogate */
	assert_int_equal(u8len("\xf4\x90\x80\x80", 4), 0);  /* past U+10FFFF */
	assert_int_equal(u8len("\x80", 1), 0);
	assert_int_equal(u8len("\xe3\x41\x82", 3), 0);
	assert_true(str_utf8_is_valid("", 0));
	assert_true(str_utf8_is_valid("caf\xc3\xa9 \xe3\x81\x82", 9));
	assert_false(str_utf8_is_valid("caf\xc3", 4));
	assert_false(str_utf8_is_valid("ok\xff", 3));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_str_copy_fits_and_refuses),
		cmocka_unit_test(test_str_copyn_takes_n_bytes),
		cmocka_unit_test(test_str_eq_ci),
		cmocka_unit_test(test_str_has_prefix_ci),
		cmocka_unit_test(test_str_lower),
		cmocka_unit_test(test_str_eq_consttime),
		cmocka_unit_test(test_err_set_fills_code_and_text),
		cmocka_unit_test(test_err_sys_maps_errno),
		cmocka_unit_test(test_err_text_is_bounded),
		cmocka_unit_test(test_err_code_names),
		cmocka_unit_test(test_log_q_plain_and_quotes),
		cmocka_unit_test(test_log_q_escapes_control_bytes),
		cmocka_unit_test(test_log_q_truncates_long_input),
		cmocka_unit_test(test_log_q_rotating_buffers),
		cmocka_unit_test(test_log_write_line_and_levels),
		cmocka_unit_test(test_log_write_long_line_is_whole),
		cmocka_unit_test(test_crc32c_known_vectors),
		cmocka_unit_test(test_crc32c_incremental),
		cmocka_unit_test(test_crc32c_threads_agree),
		cmocka_unit_test(test_clock_fake),
		cmocka_unit_test(test_xalloc),
		cmocka_unit_test(test_str_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
