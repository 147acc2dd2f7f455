/*
 * test_smtp_cmd.c - SMTP command parser: golden files plus direct checks.
 *
 * Golden format (tests/data/smtp_cmd/<case>.in): one command line per line; '#' starts a
 * comment line; empty lines are skipped. Escapes: \\ \r \n \t \0 \xHH, and \*N:c for N copies
 * of c. A "!utf8 " prefix makes RCPT run with SMTPUTF8 declared. Each line is parsed with
 * smtp_cmd_parse() and then with the argument parser of its verb; <case>.ref holds the result.
 * HK_GOLDEN_UPDATE=1 rewrites the .ref files.
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

#include "proto/smtp_cmd.h"
#include "util/buf.h"
#include "util/num.h"
#include "util/poison.h"

int main(void);

#define BDAT_MAX 100000000u

static const char *const cmd_results[] = { "OK", "UNKNOWN", "SYNTAX", "PARAM_UNKNOWN",
	"TOO_LONG" };
static const char *const body_names[] = { "UNSPEC", "7BIT", "8BITMIME", "BINARYMIME" };
static const char *const ret_names[] = { "UNSPEC", "FULL", "HDRS" };

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

static void
golden_result(struct buf *out, const char *what, enum smtp_cmd_result r, const char *why)
{
	buf_printf(out, "%s: %s", what, cmd_results[r]);
	if (r != SMTP_CMD_OK)
		buf_printf(out, " (%s)\n", why != NULL ? why : "NO REASON");
}

/* Run one command line and describe every result. */
static void
golden_run_line(struct buf *out, const char *line, size_t len, bool utf8)
{
	struct smtp_cmd cmd;
	const char *why = NULL;
	enum smtp_cmd_result r;

	r = smtp_cmd_parse(line, len, &cmd, &why);
	golden_result(out, "cmd", r, why);
	if (r != SMTP_CMD_OK)
		return;
	buf_printf(out, " verb=%s arg=", smtp_verb_name(cmd.verb));
	if (cmd.arg == NULL)
		buf_append_str(out, "-");
	else
		golden_quote(out, cmd.arg, cmd.arg_len);
	buf_putc(out, '\n');
	why = NULL;
	switch (cmd.verb) {
	case SMTP_VERB_MAIL: {
		struct smtp_mail_args m;

		r = smtp_cmd_parse_mail(cmd.arg, cmd.arg_len, &m, &why);
		golden_result(out, "mail", r, why);
		if (r != SMTP_CMD_OK)
			return;
		buf_append_str(out, " addr=");
		golden_quote(out, m.addr, strlen(m.addr));
		if (m.has_size)
			buf_printf(out, " size=%llu", (unsigned long long)m.size);
		buf_printf(out, " body=%s utf8=%d ret=%s route=%d envid=", body_names[m.body],
		    m.smtputf8, ret_names[m.ret], m.had_route);
		golden_quote(out, m.envid, strlen(m.envid));
		buf_append_str(out, " auth=");
		golden_quote(out, m.auth, strlen(m.auth));
		buf_putc(out, '\n');
		break;
	}
	case SMTP_VERB_RCPT: {
		struct smtp_rcpt_args rc;

		r = smtp_cmd_parse_rcpt(cmd.arg, cmd.arg_len, utf8, &rc, &why);
		golden_result(out, utf8 ? "rcpt(utf8)" : "rcpt", r, why);
		if (r != SMTP_CMD_OK)
			return;
		buf_append_str(out, " addr=");
		golden_quote(out, rc.addr, strlen(rc.addr));
		buf_printf(out, " notify=%s%s%s%s route=%d orcpt=",
		    rc.notify & SMTP_NOTIFY_NEVER ? "N" : "", rc.notify & SMTP_NOTIFY_SUCCESS ? "S" : "",
		    rc.notify & SMTP_NOTIFY_FAILURE ? "F" : "", rc.notify & SMTP_NOTIFY_DELAY ? "D" : "",
		    rc.had_route);
		golden_quote(out, rc.orcpt, strlen(rc.orcpt));
		buf_putc(out, '\n');
		break;
	}
	case SMTP_VERB_BDAT: {
		uint64_t size;
		bool last;

		r = smtp_cmd_parse_bdat(cmd.arg, cmd.arg_len, BDAT_MAX, &size, &last, &why);
		golden_result(out, "bdat", r, why);
		if (r == SMTP_CMD_OK)
			buf_printf(out, " size=%llu last=%d\n", (unsigned long long)size, last);
		break;
	}
	case SMTP_VERB_AUTH: {
		char mech[21];
		const char *ir;
		size_t ir_len;

		r = smtp_cmd_parse_auth(cmd.arg, cmd.arg_len, mech, &ir, &ir_len, &why);
		golden_result(out, "auth", r, why);
		if (r != SMTP_CMD_OK)
			return;
		buf_printf(out, " mech=%s ir=", mech);
		if (ir == NULL)
			buf_append_str(out, "-");
		else
			golden_quote(out, ir, ir_len);
		buf_putc(out, '\n');
		break;
	}
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO: {
		char dom[SMTP_DOMAIN_MAX + 1];

		r = smtp_cmd_parse_helo(cmd.arg, cmd.arg_len, cmd.verb == SMTP_VERB_EHLO, dom, &why);
		golden_result(out, "helo", r, why);
		if (r != SMTP_CMD_OK)
			return;
		buf_append_str(out, " domain=");
		golden_quote(out, dom, strlen(dom));
		buf_putc(out, '\n');
		break;
	}
	default:
		break;
	}
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

	assert_true(strlen(dir) + strlen(name) + 8 < sizeof(path));
	memcpy(path, dir, strlen(dir) + 1);
	memcpy(path + strlen(dir), "/", 2);
	memcpy(path + strlen(path), name, strlen(name) + 1);
	in = golden_read(path, &in_len);
	assert_non_null(in);
	while (i < in_len) {
		const char *lf = memchr(in + i, '\n', in_len - i);
		size_t e = lf != NULL ? (size_t)(lf - in) : in_len;
		const char *s = in + i;
		size_t n = e - i;
		bool utf8 = false;

		i = e + 1;
		if (n == 0 || s[0] == '#')
			continue;
		buf_append_str(&out, "> ");
		buf_append(&out, s, n);
		buf_putc(&out, '\n');
		if (n >= 6 && memcmp(s, "!utf8 ", 6) == 0) {
			utf8 = true;
			s += 6;
			n -= 6;
		}
		golden_unescape(&line, s, n);
		golden_run_line(&out, line.ptr, line.len, utf8);
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
test_smtp_cmd_golden(void **state)
{
	const char *data = getenv("HK_DATA_DIR");
	char dir[1024];
	struct dirent **names;
	int n, i, files = 0;
	bool ok = true;

	(void)state;
	assert_non_null(data);
	snprintf(dir, sizeof(dir), "%s/smtp_cmd", data);
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
	assert_true(files >= 5);
	assert_true(ok);
}

/* Direct checks of properties the golden files only show indirectly. */
static void
test_smtp_cmd_verbs(void **state)
{
	struct smtp_cmd c;
	const char *why;
	int v;

	(void)state;
	for (v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++) {
		const char *name = smtp_verb_name((enum smtp_verb)v);
		char line[64];
		int n;

		n = snprintf(line, sizeof(line), "%s", name);
		if (smtp_cmd_parse(line, (size_t)n, &c, &why) == SMTP_CMD_OK)
			assert_int_equal(c.verb, v);
		n = snprintf(line, sizeof(line), "%s x", name);
		if (smtp_cmd_parse(line, (size_t)n, &c, &why) == SMTP_CMD_OK)
			assert_int_equal(c.verb, v);
	}
	assert_string_equal(smtp_verb_name(SMTP_VERB_COUNT), "UNKNOWN");
	assert_int_equal(smtp_cmd_parse("DATA", 4, &c, &why), SMTP_CMD_OK);
	assert_null(c.arg);
	assert_int_equal(smtp_cmd_parse("data\0", 5, &c, &why), SMTP_CMD_SYNTAX);
}

static void
test_smtp_cmd_size_bounds(void **state)
{
	struct smtp_mail_args m;
	const char *why;
	char line[128];
	int n;

	(void)state;
	n = snprintf(line, sizeof(line), "FROM:<a@b.example> SIZE=%llu",
	    (unsigned long long)HK_SIZE_MAX);
	assert_int_equal(smtp_cmd_parse_mail(line, (size_t)n, &m, &why), SMTP_CMD_OK);
	assert_true(m.has_size);
	assert_true(m.size == HK_SIZE_MAX);
	n = snprintf(line, sizeof(line), "FROM:<a@b.example> SIZE=%llu",
	    (unsigned long long)HK_SIZE_MAX + 1);
	assert_int_equal(smtp_cmd_parse_mail(line, (size_t)n, &m, &why), SMTP_CMD_TOO_LONG);
	n = snprintf(line, sizeof(line), "FROM:<a@b.example> SIZE=18446744073709551616");
	assert_int_equal(smtp_cmd_parse_mail(line, (size_t)n, &m, &why), SMTP_CMD_TOO_LONG);
}

static void
test_smtp_cmd_bdat_bounds(void **state)
{
	uint64_t size;
	bool last;
	const char *why;

	(void)state;
	assert_int_equal(smtp_cmd_parse_bdat("10", 2, 10, &size, &last, &why), SMTP_CMD_OK);
	assert_true(size == 10);
	assert_false(last);
	assert_int_equal(smtp_cmd_parse_bdat("11", 2, 10, &size, &last, &why), SMTP_CMD_TOO_LONG);
	assert_true(size == 0);
	assert_int_equal(smtp_cmd_parse_bdat("0 last", 6, 10, &size, &last, &why), SMTP_CMD_OK);
	assert_true(last);
}

static void
test_smtp_cmd_outputs_are_bounded(void **state)
{
	struct smtp_rcpt_args r;
	const char *why;
	char line[2048];
	int n;

	(void)state;
	/* An ORCPT of exactly SMTP_ORCPT_MAX fits, one more does not. */
	n = snprintf(line, sizeof(line), "TO:<a@b.example> ORCPT=rfc822;");
	memset(line + n, 'x', SMTP_ORCPT_MAX - 7);
	assert_int_equal(smtp_cmd_parse_rcpt(line, (size_t)n + SMTP_ORCPT_MAX - 7, false, &r, &why),
	    SMTP_CMD_OK);
	assert_int_equal(strlen(r.orcpt), SMTP_ORCPT_MAX);
	line[n + SMTP_ORCPT_MAX - 7] = 'x';
	assert_int_equal(smtp_cmd_parse_rcpt(line, (size_t)n + SMTP_ORCPT_MAX - 6, false, &r, &why),
	    SMTP_CMD_TOO_LONG);
}

/* why is optional everywhere. */
static void
test_smtp_cmd_why_optional(void **state)
{
	struct smtp_cmd c;
	struct smtp_mail_args m;
	struct smtp_rcpt_args r;
	char mech[21], dom[SMTP_DOMAIN_MAX + 1];
	const char *ir;
	size_t ir_len;
	uint64_t size;
	bool last;

	(void)state;
	assert_int_equal(smtp_cmd_parse("X\r", 2, &c, NULL), SMTP_CMD_SYNTAX);
	assert_int_equal(smtp_cmd_parse("XYZZY", 5, &c, NULL), SMTP_CMD_UNKNOWN);
	assert_int_equal(smtp_cmd_parse_mail("FROM:<a@b>x", 11, &m, NULL), SMTP_CMD_SYNTAX);
	assert_int_equal(smtp_cmd_parse_mail("FROM:<a@b> -X", 13, &m, NULL), SMTP_CMD_SYNTAX);
	assert_int_equal(smtp_cmd_parse_mail("FROM:<a@b> X=", 13, &m, NULL), SMTP_CMD_SYNTAX);
	assert_int_equal(smtp_cmd_parse_mail("FROM:<a b@c>", 12, &m, NULL), SMTP_CMD_SYNTAX);
	assert_int_equal(smtp_cmd_parse_rcpt("TO:<a@b> =1", 11, false, &r, NULL), SMTP_CMD_SYNTAX);
	assert_int_equal(smtp_cmd_parse_bdat("x", 1, 10, &size, &last, NULL), SMTP_CMD_SYNTAX);
	assert_int_equal(smtp_cmd_parse_auth("P@", 2, mech, &ir, &ir_len, NULL), SMTP_CMD_SYNTAX);
	assert_int_equal(smtp_cmd_parse_helo("-x", 2, true, dom, NULL), SMTP_CMD_SYNTAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smtp_cmd_golden),
		cmocka_unit_test(test_smtp_cmd_verbs),
		cmocka_unit_test(test_smtp_cmd_size_bounds),
		cmocka_unit_test(test_smtp_cmd_bdat_bounds),
		cmocka_unit_test(test_smtp_cmd_outputs_are_bounded),
		cmocka_unit_test(test_smtp_cmd_why_optional),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
