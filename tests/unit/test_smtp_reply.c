/*
 * test_smtp_reply.c - SMTP reply parser: golden files plus direct checks.
 *
 * Golden format (tests/data/smtp_reply/<case>.in): one reply line per line (without CRLF), fed
 * in order; '#' starts a comment line; empty lines are skipped. "<empty>" feeds an empty line,
 * "---" starts a new reply. Escapes: \\ \r \n \t \0 \xHH, and \*N:c for N copies of c. After
 * DONE or BAD the reply is printed and a new one starts. HK_GOLDEN_UPDATE=1 rewrites .ref files.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/smtp_reply.h"
#include "util/buf.h"
#include "util/num.h"
#include "util/poison.h"

int main(void);

/* Decode the golden escapes of s[0..n) into out. */
static void
golden_unescape(struct buf *out, const char *s, size_t n)
{
	size_t i;

	buf_reset(out);
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c != '\\' || i + 1 == n) {
			buf_putc(out, c);
			continue;
		}
		c = s[++i];
		switch (c) {
		case 'r': buf_putc(out, '\r'); break;
		case 'n': buf_putc(out, '\n'); break;
		case 't': buf_putc(out, '\t'); break;
		case '0': buf_putc(out, '\0'); break;
		case 'x': {
			uint64_t v;

			assert_true(i + 2 < n);
			assert_int_equal(num_parse_hex64(s + i + 1, 2, &v), 0);
			buf_putc(out, (char)v);
			i += 2;
			break;
		}
		case '*': {
			size_t s0 = ++i, k;
			uint64_t cnt;

			while (i < n && s[i] != ':')
				i++;
			assert_true(i + 1 < n);
			assert_int_equal(num_parse_u64(s + s0, i - s0, 100000, &cnt), 0);
			i++;
			for (k = 0; k < cnt; k++)
				buf_putc(out, s[i]);
			break;
		}
		default:
			buf_putc(out, c);
			break;
		}
	}
}

/* Append s[0..n) quoted, with control, 8-bit, '"' and '\' bytes escaped. */
static void
golden_quote(struct buf *out, const char *s, size_t n)
{
	size_t i;

	buf_putc(out, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			buf_printf(out, "\\%c", c);
		else if (c < 32 || c >= 127)
			buf_printf(out, "\\x%02x", c);
		else
			buf_putc(out, (char)c);
	}
	buf_putc(out, '"');
}

/* Feed one golden line and describe the result. */
static void
golden_run_line(struct buf *out, struct smtp_reply *r, struct buf *line, const char *s, size_t n)
{
	static const char *const names[] = { "MORE", "DONE", "BAD" };
	enum smtp_reply_result res;
	const char *why = NULL;

	if (n == 3 && memcmp(s, "---", 3) == 0) {
		smtp_reply_init(r);
		return;
	}
	if (n == 7 && memcmp(s, "<empty>", 7) == 0)
		buf_reset(line);
	else
		golden_unescape(line, s, n);
	res = smtp_reply_feed(r, line->ptr != NULL ? line->ptr : "", line->len, &why);
	buf_append_str(out, names[res]);
	if (res == SMTP_REPLY_BAD)
		buf_printf(out, " (%s)", why != NULL ? why : "NO REASON");
	if (res == SMTP_REPLY_DONE) {
		buf_printf(out, " code=%d", r->code);
		if (r->enh_class != 0)
			buf_printf(out, " enh=%d.%d.%d", r->enh_class, r->enh_subject, r->enh_detail);
		buf_printf(out, " lines=%u text=", r->nlines);
		golden_quote(out, r->text, r->text_len);
	}
	buf_putc(out, '\n');
	if (res != SMTP_REPLY_MORE)
		smtp_reply_init(r);
}

static char *
golden_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&b, tmp, n);
	fclose(f);
	*len = b.len;
	return buf_steal(&b);
}

/* Run one .in file; compare with (or rewrite) its .ref. Returns false on a mismatch. */
static bool
golden_run_file(const char *dir, const char *name)
{
	char path[4096];
	char *in, *ref;
	size_t in_len, ref_len, i = 0;
	struct buf out = BUF_INIT, line = BUF_INIT;
	bool ok = true;
	struct smtp_reply r;

	assert_true(strlen(dir) + strlen(name) + 8 < sizeof(path));
	memcpy(path, dir, strlen(dir) + 1);
	memcpy(path + strlen(dir), "/", 2);
	memcpy(path + strlen(path), name, strlen(name) + 1);
	in = golden_read(path, &in_len);
	assert_non_null(in);
	smtp_reply_init(&r);
	while (i < in_len) {
		const char *lf = memchr(in + i, '\n', in_len - i);
		size_t e = lf != NULL ? (size_t)(lf - in) : in_len;
		const char *s = in + i;
		size_t n = e - i;

		i = e + 1;
		if (n == 0 || s[0] == '#')
			continue;
		buf_append_str(&out, "> ");
		buf_append(&out, s, n);
		buf_putc(&out, '\n');
		golden_run_line(&out, &r, &line, s, n);
	}
	path[strlen(path) - 3] = '\0';
	memcpy(path + strlen(path), ".ref", 5);
	if (getenv("HK_GOLDEN_UPDATE") != NULL) {
		FILE *f = fopen(path, "wb");

		assert_non_null(f);
		assert_int_equal(fwrite(out.ptr, 1, out.len, f), out.len);
		assert_int_equal(fclose(f), 0);
	} else {
		ref = golden_read(path, &ref_len);
		if (ref == NULL) {
			print_error("%s: missing (run with HK_GOLDEN_UPDATE=1)\n", path);
			ok = false;
		} else if (ref_len != out.len || memcmp(ref, out.ptr, ref_len) != 0) {
			size_t k = 0, lineno = 1;

			while (k < ref_len && k < out.len && ref[k] == out.ptr[k])
				lineno += ref[k++] == '\n';
			print_error("%s: differs at line %zu; got:\n%s\n", path, lineno, out.ptr);
			ok = false;
		}
		free(ref);
	}
	free(in);
	buf_fini(&out);
	buf_fini(&line);
	return ok;
}

static void
test_smtp_reply_golden(void **state)
{
	const char *data = getenv("HK_DATA_DIR");
	char dir[1024];
	struct dirent **names;
	int n, i, files = 0;
	bool ok = true;

	(void)state;
	assert_non_null(data);
	snprintf(dir, sizeof(dir), "%s/smtp_reply", data);
	n = scandir(dir, &names, NULL, alphasort);
	assert_true(n > 0);
	for (i = 0; i < n; i++) {
		size_t l = strlen(names[i]->d_name);

		if (l > 3 && strcmp(names[i]->d_name + l - 3, ".in") == 0) {
			files++;
			if (!golden_run_file(dir, names[i]->d_name))
				ok = false;
		}
		free(names[i]);
	}
	free(names);
	assert_true(files >= 3);
	assert_true(ok);
}

/* Direct checks of bounds and of the enhanced-code parser. */
static void
test_smtp_reply_enhanced(void **state)
{
	int c = -1, s = -1, d = -1;

	(void)state;
	assert_int_equal(smtp_reply_parse_enhanced("5.1.1 User unknown", 18, &c, &s, &d), 5);
	assert_int_equal(c, 5);
	assert_int_equal(s, 1);
	assert_int_equal(d, 1);
	assert_int_equal(smtp_reply_parse_enhanced("4.7.28", 6, &c, &s, &d), 6);
	assert_int_equal(d, 28);
	assert_int_equal(smtp_reply_parse_enhanced("2.999.999 x", 11, &c, &s, &d), 9);
	assert_int_equal(smtp_reply_parse_enhanced("2.1000.0", 8, &c, &s, &d), 0);
	assert_int_equal(smtp_reply_parse_enhanced("3.1.1", 5, &c, &s, &d), 0);
	assert_int_equal(smtp_reply_parse_enhanced("5.1", 3, &c, &s, &d), 0);
	assert_int_equal(smtp_reply_parse_enhanced("5.1.", 4, &c, &s, &d), 0);
	assert_int_equal(smtp_reply_parse_enhanced("5..1", 4, &c, &s, &d), 0);
	assert_int_equal(smtp_reply_parse_enhanced("5.1.1.", 6, &c, &s, &d), 0);
	assert_int_equal(smtp_reply_parse_enhanced("5.1.1x", 6, &c, &s, &d), 0);
	/* The length bounds the read: "5.1.1" inside a longer buffer. */
	assert_int_equal(smtp_reply_parse_enhanced("5.1.12", 5, &c, &s, &d), 5);
	assert_int_equal(d, 1);
}

static void
test_smtp_reply_bounds(void **state)
{
	struct smtp_reply r;
	char line[SMTP_REPLY_MAX_TEXT + 16];
	const char *why;
	unsigned i;

	(void)state;
	/* SMTP_REPLY_MAX_LINES lines are fine; one more is refused. */
	smtp_reply_init(&r);
	for (i = 0; i + 1 < SMTP_REPLY_MAX_LINES; i++)
		assert_int_equal(smtp_reply_feed(&r, "250-x", 5, &why), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(&r, "250 x", 5, &why), SMTP_REPLY_DONE);
	assert_int_equal(r.nlines, SMTP_REPLY_MAX_LINES);
	smtp_reply_init(&r);
	for (i = 0; i < SMTP_REPLY_MAX_LINES; i++)
		assert_int_equal(smtp_reply_feed(&r, "250-", 4, &why), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(&r, "250 x", 5, &why), SMTP_REPLY_BAD);

	/* Exactly SMTP_REPLY_MAX_TEXT bytes of text fit. */
	smtp_reply_init(&r);
	memcpy(line, "550 ", 4);
	memset(line + 4, 'x', SMTP_REPLY_MAX_TEXT);
	assert_int_equal(smtp_reply_feed(&r, line, 4 + SMTP_REPLY_MAX_TEXT, &why),
	    SMTP_REPLY_DONE);
	assert_int_equal(r.text_len, SMTP_REPLY_MAX_TEXT);
	assert_int_equal(strlen(r.text), SMTP_REPLY_MAX_TEXT);
	smtp_reply_init(&r);
	memset(line + 4, 'x', SMTP_REPLY_MAX_TEXT + 1);
	assert_int_equal(smtp_reply_feed(&r, line, 5 + SMTP_REPLY_MAX_TEXT, &why), SMTP_REPLY_BAD);
	assert_true(r.text_len <= SMTP_REPLY_MAX_TEXT);

	/* Two lines: the joining newline counts. */
	smtp_reply_init(&r);
	memcpy(line, "550-", 4);
	memset(line + 4, 'x', SMTP_REPLY_MAX_TEXT - 1);
	assert_int_equal(smtp_reply_feed(&r, line, 3 + SMTP_REPLY_MAX_TEXT, &why), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(&r, "550 y", 5, &why), SMTP_REPLY_BAD);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smtp_reply_golden),
		cmocka_unit_test(test_smtp_reply_enhanced),
		cmocka_unit_test(test_smtp_reply_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
