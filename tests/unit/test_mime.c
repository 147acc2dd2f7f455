/*
 * test_mime.c - API message builder: golden files, wire rules, and every message parsed back.
 *
 * Golden cases: tests/data/mime/<case>.in is a "key: value" list (format below); the expected
 * output is tests/data/mime/<case>.ref, byte for byte: "envelope: a, b" CRLF CRLF and the
 * message, or "error: <code> <http>", "field: ...", "message: ..." lines. HK_GOLDEN_UPDATE=1
 * rewrites the .ref files.
 *
 * .in keys (values take \r \n \t \\ \xHH escapes; "addr | name" gives a display name):
 *   from, to, cc, bcc, reply_to    one mailbox each; to/cc/bcc repeat
 *   subject                        the subject
 *   header                         "Name | value"; repeats
 *   text, html                     one body line each (a "\n" is added); repeat
 *   attach                         "filename | content-type or - | content"; repeats
 *   date, message_id, seed         defaults: a fixed date, <case@test.example>, bytes 00..0f
 *
 * Every built message is parsed back: CRLF only, lines within 998, header lines ASCII, no Bcc,
 * each multipart's boundary found only on its delimiter lines, every body part decoded and
 * compared with its input (text, html, attachments, RFC 2231 file names, RFC 2047 subject).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/mime.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/poison.h"

int main(void);

#define T_MAX 16

struct tcase {
	struct mime_msg m;
	struct mime_addr to[T_MAX], cc[T_MAX], bcc[T_MAX], reply_to;
	struct mime_header hdr[T_MAX];
	struct mime_attachment att[T_MAX];
	struct buf text, html;
	bool has_text, has_html;
	unsigned char seed[16];
	char *strings[8 * T_MAX];
	size_t nstrings;
};

/* ---- small helpers ---- */

static void
test_read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	char chunk[4096];
	size_t n;

	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	fclose(f);
}

static int
test_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void
test_unescape(struct buf *out, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] != '\\' || i + 1 == n) {
			buf_putc(out, s[i]);
			continue;
		}
		i++;
		switch (s[i]) {
		case 'r': buf_putc(out, '\r'); break;
		case 'n': buf_putc(out, '\n'); break;
		case 't': buf_putc(out, '\t'); break;
		case 'x':
			assert_true(i + 2 < n);
			buf_putc(out, (char)(test_hexval(s[i + 1]) * 16 + test_hexval(s[i + 2])));
			i += 2;
			break;
		default: buf_putc(out, s[i]); break;
		}
	}
}

static char *
test_keep(struct tcase *t, const char *s, size_t n)
{
	struct buf b = BUF_INIT;
	char *p;

	test_unescape(&b, s, n);
	p = buf_steal(&b);
	assert_true(t->nstrings < HK_ARRAY_LEN(t->strings));
	t->strings[t->nstrings++] = p;
	return p;
}

/* Split v at the first " | " into up to max pieces. */
static size_t
test_split(const char *v, size_t n, const char **piece, size_t *len, size_t max)
{
	size_t k = 0;
	const char *end = v + n, *bar;

	while (k + 1 < max && (bar = memmem(v, (size_t)(end - v), " | ", 3)) != NULL) {
		piece[k] = v;
		len[k++] = (size_t)(bar - v);
		v = bar + 3;
	}
	piece[k] = v;
	len[k++] = (size_t)(end - v);
	return k;
}

static void
test_addr(struct tcase *t, struct mime_addr *a, const char *v, size_t n)
{
	const char *p[2];
	size_t l[2], k = test_split(v, n, p, l, 2);

	a->address = test_keep(t, p[0], l[0]);
	a->name = k > 1 ? test_keep(t, p[1], l[1]) : NULL;
}

static void
test_case_init(struct tcase *t)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < sizeof(t->seed); i++)
		t->seed[i] = (unsigned char)i;
	t->m.seed = t->seed;
	t->m.seed_len = sizeof(t->seed);
	t->m.date = "Tue, 14 Jan 2025 09:59:58 +0000";
	t->m.message_id = "<case@test.example>";
	t->m.to = t->to;
	t->m.cc = t->cc;
	t->m.bcc = t->bcc;
	t->m.headers = t->hdr;
	t->m.attachments = t->att;
}

static void
test_case_fini(struct tcase *t)
{
	size_t i;

	for (i = 0; i < t->nstrings; i++)
		free(t->strings[i]);
	buf_fini(&t->text);
	buf_fini(&t->html);
}

static void
test_case_load(struct tcase *t, const char *name)
{
	struct buf raw = BUF_INIT, path = BUF_INIT;
	size_t pos = 0;

	test_case_init(t);
	buf_printf(&path, "%s/mime/%s.in", getenv("HK_DATA_DIR"), name);
	test_read_file(path.ptr, &raw);
	while (pos < raw.len) {
		char *nl = memchr(raw.ptr + pos, '\n', raw.len - pos);
		size_t end = nl != NULL ? (size_t)(nl - raw.ptr) : raw.len, klen, vlen;
		const char *line = raw.ptr + pos, *colon, *v;
		const char *p[3];
		size_t l[3];

		pos = end + 1;
		if (end == (size_t)(line - raw.ptr) || line[0] == '#')
			continue;
		colon = memchr(line, ':', end - (size_t)(line - raw.ptr));
		if (colon == NULL)
			fail_msg("%s: no key in line", path.ptr);
		klen = (size_t)(colon - line);
		v = colon + 1;
		if (*v == ' ')
			v++;
		vlen = (size_t)(raw.ptr + end - v);
		if (str_eq_ci(line, klen, "from")) {
			test_addr(t, &t->m.from, v, vlen);
		} else if (str_eq_ci(line, klen, "to")) {
			test_addr(t, &t->to[t->m.to_count++], v, vlen);
		} else if (str_eq_ci(line, klen, "cc")) {
			test_addr(t, &t->cc[t->m.cc_count++], v, vlen);
		} else if (str_eq_ci(line, klen, "bcc")) {
			test_addr(t, &t->bcc[t->m.bcc_count++], v, vlen);
		} else if (str_eq_ci(line, klen, "reply_to")) {
			test_addr(t, &t->reply_to, v, vlen);
			t->m.reply_to = &t->reply_to;
		} else if (str_eq_ci(line, klen, "subject")) {
			t->m.subject = test_keep(t, v, vlen);
		} else if (str_eq_ci(line, klen, "header")) {
			test_split(v, vlen, p, l, 2);
			t->hdr[t->m.header_count].name = test_keep(t, p[0], l[0]);
			t->hdr[t->m.header_count++].value = test_keep(t, p[1], l[1]);
		} else if (str_eq_ci(line, klen, "text")) {
			test_unescape(&t->text, v, vlen);
			buf_putc(&t->text, '\n');
			t->has_text = true;
		} else if (str_eq_ci(line, klen, "html")) {
			test_unescape(&t->html, v, vlen);
			buf_putc(&t->html, '\n');
			t->has_html = true;
		} else if (str_eq_ci(line, klen, "attach")) {
			struct mime_attachment *a = &t->att[t->m.attachment_count++];
			struct buf c = BUF_INIT;

			assert_int_equal(test_split(v, vlen, p, l, 3), 3);
			a->filename = test_keep(t, p[0], l[0]);
			if (l[1] != 1 || p[1][0] != '-')
				a->content_type = test_keep(t, p[1], l[1]);
			test_unescape(&c, p[2], l[2]);
			a->content_len = c.len;
			a->content = buf_steal(&c);
			t->strings[t->nstrings++] = (char *)a->content;
		} else if (str_eq_ci(line, klen, "date")) {
			t->m.date = test_keep(t, v, vlen);
		} else if (str_eq_ci(line, klen, "message_id")) {
			t->m.message_id = test_keep(t, v, vlen);
		} else {
			fail_msg("%s: unknown key %.*s", path.ptr, (int)klen, line);
		}
	}
	if (t->has_text) {
		t->m.text = t->text.ptr;
		t->m.text_len = t->text.len;
	}
	if (t->has_html) {
		t->m.html = t->html.ptr;
		t->m.html_len = t->html.len;
	}
	buf_fini(&raw);
	buf_fini(&path);
}

/* ---- parsing the output back ---- */

/* RFC 5322 2.1.1 and RFC 5321 2.3.8: CRLF only, no line over 998 octets, no NUL. */
static void
test_check_wire(const char *p, size_t n)
{
	size_t i, line = 0;

	assert_true(n >= 2);
	assert_memory_equal(p + n - 2, "\r\n", 2);
	for (i = 0; i < n; i++) {
		assert_int_not_equal(p[i], '\0');
		if (p[i] == '\r') {
			assert_true(i + 1 < n && p[i + 1] == '\n');
			assert_true(i - line <= 998);
			i++;
			line = i + 1;
		} else {
			assert_int_not_equal(p[i], '\n');
		}
	}
}

/* Unfolded value of the field name in the header block h[0..n) (one leading space dropped). */
static bool
test_get_field(const char *h, size_t n, const char *name, struct buf *out)
{
	size_t i = 0, nl = strlen(name), e;

	buf_reset(out);
	while (i < n) {
		const char *crlf = memmem(h + i, n - i, "\r\n", 2);

		e = crlf != NULL ? (size_t)(crlf - h) : n;
		if (e - i > nl && h[i + nl] == ':' && str_has_prefix_ci(h + i, e - i, name)) {
			size_t v = i + nl + 1;

			if (v < e && h[v] == ' ')
				v++;
			buf_append(out, h + v, e - v);
			for (i = e + 2; i < n && (h[i] == ' ' || h[i] == '\t'); i = e + 2) {
				crlf = memmem(h + i, n - i, "\r\n", 2);
				e = crlf != NULL ? (size_t)(crlf - h) : n;
				buf_append(out, h + i, e - i);
			}
			return true;
		}
		i = e + 2;
	}
	return false;
}

/* The quoted or token value of parameter attr ("boundary", "filename") in v. */
static bool
test_get_param(const char *v, const char *attr, struct buf *out)
{
	struct buf pat = BUF_INIT;
	const char *p;
	bool found = false;

	buf_reset(out);
	buf_printf(&pat, "; %s=", attr);
	p = strstr(v, pat.ptr);
	if (p == NULL) {
		buf_reset(&pat);
		buf_printf(&pat, ";\t%s=", attr);
		p = strstr(v, pat.ptr);
	}
	if (p != NULL) {
		p += pat.len;
		found = true;
		if (*p == '"') {
			for (p++; *p != '"' && *p != '\0'; p++)
				buf_putc(out, *p);
		} else {
			for (; *p != ';' && *p != '\0'; p++)
				buf_putc(out, *p);
		}
	}
	buf_fini(&pat);
	return found;
}

static void
test_pct_decode(struct buf *out, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n + 1) {
			buf_putc(out, (char)(test_hexval(s[i + 1]) * 16 + test_hexval(s[i + 2])));
			i += 2;
		} else {
			buf_putc(out, s[i]);
		}
	}
}

/* RFC 2231 filename*= or filename*0*=, filename*1*=...; false when absent. */
static bool
test_filename_star(const char *v, struct buf *out)
{
	struct buf val = BUF_INIT, pat = BUF_INIT;
	unsigned seg;
	bool found = false;

	buf_reset(out);
	if (test_get_param(v, "filename*", &val)) {
		found = true;
	} else {
		for (seg = 0;; seg++) {
			struct buf one = BUF_INIT;

			buf_reset(&pat);
			buf_printf(&pat, "filename*%u*", seg);
			if (!test_get_param(v, pat.ptr, &one)) {
				buf_fini(&one);
				break;
			}
			buf_append(&val, one.ptr, one.len);
			buf_fini(&one);
			found = true;
		}
	}
	if (found) {
		assert_true(val.len >= 7);
		assert_memory_equal(val.ptr, "UTF-8''", 7);
		test_pct_decode(out, val.ptr + 7, val.len - 7);
	}
	buf_fini(&val);
	buf_fini(&pat);
	return found;
}

/* RFC 2047 decoding of a field value that is either plain or made only of encoded words. */
static void
test_ew_decode(const char *v, struct buf *out)
{
	const char *p = v;

	buf_reset(out);
	if (strncmp(v, "=?UTF-8?", 8) != 0) {
		buf_append_str(out, v);
		return;
	}
	while (*p != '\0') {
		const char *end;
		char enc;

		while (*p == ' ')
			p++;
		assert_memory_equal(p, "=?UTF-8?", 8);
		enc = p[8];
		assert_true(enc == 'B' || enc == 'Q');
		assert_int_equal(p[9], '?');
		end = strstr(p + 10, "?=");
		assert_non_null(end);
		/* RFC 2047 2: at most 75 characters per encoded word. */
		assert_true(end + 2 - p <= 75);
		if (enc == 'B') {
			struct buf one = BUF_INIT;

			assert_int_equal(base64_decode(&one, p + 10, (size_t)(end - p - 10)), 0);
			buf_append(out, one.ptr, one.len);
			buf_fini(&one);
		} else {
			const char *q;

			for (q = p + 10; q < end; q++) {
				if (*q == '_') {
					buf_putc(out, ' ');
				} else if (*q == '=') {
					buf_putc(out, (char)(test_hexval(q[1]) * 16 +
					    test_hexval(q[2])));
					q += 2;
				} else {
					buf_putc(out, *q);
				}
			}
		}
		p = end + 2;
	}
}

/* Line ends of s made CRLF, a last line ended, trailing line ends then dropped for comparing. */
static void
test_canon_text(struct buf *out, const char *s, size_t n)
{
	size_t i;

	buf_reset(out);
	for (i = 0; i < n; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
			buf_append(out, "\r\n", 2);
		} else {
			buf_putc(out, s[i]);
		}
	}
	while (out->len >= 2 && memcmp(out->ptr + out->len - 2, "\r\n", 2) == 0)
		buf_truncate(out, out->len - 2);
}

static void
test_qp_decode(struct buf *out, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] != '=') {
			buf_putc(out, s[i]);
		} else if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
			i += 2;
		} else {
			assert_true(i + 2 < n);
			assert_true(test_hexval(s[i + 1]) >= 0 && test_hexval(s[i + 2]) >= 0);
			buf_putc(out, (char)(test_hexval(s[i + 1]) * 16 + test_hexval(s[i + 2])));
			i += 2;
		}
	}
}

static void
test_max_line(const char *s, size_t n, size_t max)
{
	size_t i, line = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r') {
			assert_true(i - line <= max);
			line = i + 2;
		}
	}
	assert_true(n - line <= max);
}

struct walk {
	const struct tcase *t;
	size_t text_seen, html_seen, att_seen;
};

static void test_check_entity(struct walk *w, const char *h, size_t hn, const char *b, size_t bn);

static void
test_check_multipart(struct walk *w, const char *boundary, const char *b, size_t bn)
{
	struct buf delim = BUF_INIT;
	size_t i = 0, part = 0, nparts = 0;
	bool closed = false;

	buf_printf(&delim, "--%s", boundary);
	while (i < bn) {
		const char *crlf = memmem(b + i, bn - i, "\r\n", 2);
		size_t e = crlf != NULL ? (size_t)(crlf - b) : bn;
		bool open = e - i == delim.len && memcmp(b + i, delim.ptr, delim.len) == 0;
		bool close = e - i == delim.len + 2 && memcmp(b + i, delim.ptr, delim.len) == 0 &&
		    memcmp(b + e - 2, "--", 2) == 0;

		assert_false(closed);
		if (!open && !close) {
			/* RFC 2046 5.1.1: the boundary occurs nowhere but on delimiter lines. */
			assert_null(memmem(b + i, e - i, boundary, strlen(boundary)));
		} else {
			if (nparts > 0) {
				/* The CRLF before a delimiter belongs to the delimiter. */
				const char *p = b + part;
				size_t pn = i - 2 - part;
				const char *sep = memmem(p, pn, "\r\n\r\n", 4);

				if (pn >= 2 && memcmp(p, "\r\n", 2) == 0)
					test_check_entity(w, p, 0, p + 2, pn - 2);
				else {
					assert_non_null(sep);
					test_check_entity(w, p, (size_t)(sep - p) + 2, sep + 4,
					    pn - (size_t)(sep - p) - 4);
				}
			}
			closed = close;
			nparts++;
			part = e + 2;
		}
		i = e + 2;
	}
	assert_true(closed);
	assert_true(nparts >= 2);
	buf_fini(&delim);
}

static void
test_check_entity(struct walk *w, const char *h, size_t hn, const char *b, size_t bn)
{
	const struct tcase *t = w->t;
	struct buf ct = BUF_INIT, cte = BUF_INIT, cd = BUF_INIT, v = BUF_INIT, dec = BUF_INIT;
	struct buf want = BUF_INIT;

	/* Header lines: ASCII only. */
	for (size_t i = 0; i < hn; i++)
		assert_true((unsigned char)h[i] < 0x80);
	if (!test_get_field(h, hn, "Content-Type", &ct))
		buf_append_str(&ct, "text/plain");
	test_get_field(h, hn, "Content-Transfer-Encoding", &cte);
	if (strncmp(ct.ptr, "multipart/", 10) == 0) {
		assert_true(test_get_param(ct.ptr, "boundary", &v));
		assert_true(v.len > 0 && v.len <= 70);
		test_check_multipart(w, v.ptr, b, bn);
		goto done;
	}
	if (strcmp(cte.ptr, "base64") == 0) {
		struct buf clean = BUF_INIT;
		const struct mime_attachment *a;

		test_max_line(b, bn, 76);
		for (size_t i = 0; i < bn; i++)
			if (b[i] != '\r' && b[i] != '\n')
				buf_putc(&clean, b[i]);
		assert_int_equal(base64_decode(&dec, clean.ptr, clean.len), 0);
		buf_fini(&clean);
		assert_true(w->att_seen < t->m.attachment_count);
		a = &t->att[w->att_seen++];
		assert_int_equal(dec.len, a->content_len);
		assert_memory_equal(dec.ptr, a->content, a->content_len);
		assert_true(test_get_field(h, hn, "Content-Disposition", &cd));
		assert_true(test_get_param(cd.ptr, "filename", &v));
		assert_true(v.len > 0 && v.len <= 60);
		if (test_filename_star(cd.ptr, &dec))
			assert_string_equal(dec.ptr, a->filename);
		else
			assert_string_equal(v.ptr, a->filename);
		goto done;
	}
	if (strcmp(cte.ptr, "quoted-printable") == 0) {
		test_max_line(b, bn, 76);
		test_qp_decode(&dec, b, bn);
	} else {
		assert_string_equal(cte.ptr, "7bit");
		for (size_t i = 0; i < bn; i++)
			assert_true((unsigned char)b[i] < 0x80);
		test_max_line(b, bn, 78);
		buf_append(&dec, b, bn);
	}
	test_canon_text(&v, dec.ptr, dec.len);
	if (strncmp(ct.ptr, "text/html", 9) == 0) {
		w->html_seen++;
		test_canon_text(&want, t->m.html, t->m.html_len);
	} else {
		assert_true(strncmp(ct.ptr, "text/plain", 10) == 0);
		w->text_seen++;
		test_canon_text(&want, t->m.text != NULL ? t->m.text : "",
		    t->m.text != NULL ? t->m.text_len : 0);
	}
	assert_int_equal(v.len, want.len);
	assert_memory_equal(v.ptr, want.ptr, want.len);
done:
	buf_fini(&ct);
	buf_fini(&cte);
	buf_fini(&cd);
	buf_fini(&v);
	buf_fini(&dec);
	buf_fini(&want);
}

/* Parse the built message back and compare it with the input fields. */
static void
test_check_message(const struct tcase *t, const struct mime_out *o)
{
	const char *p = o->data.ptr, *sep;
	size_t n = o->data.len, hn, i, j;
	struct walk w = { .t = t };
	struct buf v = BUF_INIT, dec = BUF_INIT;

	test_check_wire(p, n);
	sep = memmem(p, n, "\r\n\r\n", 4);
	assert_non_null(sep);
	hn = (size_t)(sep - p) + 2;
	assert_false(test_get_field(p, hn, "Bcc", &v));
	assert_true(test_get_field(p, hn, "MIME-Version", &v));
	assert_string_equal(v.ptr, "1.0");
	if (t->m.subject != NULL) {
		assert_true(test_get_field(p, hn, "Subject", &v));
		test_ew_decode(v.ptr, &dec);
		assert_string_equal(dec.ptr, t->m.subject);
	}
	/* A Bcc address that is not also in To or Cc appears nowhere in the message. */
	for (i = 0; i < t->m.bcc_count; i++) {
		bool shown = false;

		for (j = 0; j < t->m.to_count; j++)
			shown |= strcmp(t->to[j].address, t->bcc[i].address) == 0;
		for (j = 0; j < t->m.cc_count; j++)
			shown |= strcmp(t->cc[j].address, t->bcc[i].address) == 0;
		if (!shown)
			assert_null(memmem(p, n, t->bcc[i].address, strlen(t->bcc[i].address)));
	}
	test_check_entity(&w, p, hn, sep + 4, n - hn - 2);
	assert_int_equal(w.att_seen, t->m.attachment_count);
	assert_int_equal(w.html_seen, t->m.html != NULL ? 1 : 0);
	assert_int_equal(w.text_seen,
	    t->m.text != NULL || (t->m.html == NULL && t->m.attachment_count == 0) ? 1 : 0);
	buf_fini(&v);
	buf_fini(&dec);
}

/* ---- golden runner ---- */

static const char *const golden_cases[] = {
	"plain_ascii", "japanese", "long_subject", "text_html", "attachment_japanese",
	"crlf_injection", "bad_utf8", "bcc_hidden", "forbidden_header", "attachments_only",
	"quoted_names", "qp_body", "long_filename", "long_subject_ja",
};

static void
test_golden_one(const char *name)
{
	struct tcase t;
	struct mime_out o;
	struct buf got = BUF_INIT, ref = BUF_INIT, path = BUF_INIT;
	enum mime_error e;
	size_t i;
	FILE *f;

	test_case_load(&t, name);
	mime_out_init(&o);
	e = mime_build(&t.m, &o);
	if (e == MIME_OK) {
		test_check_message(&t, &o);
		buf_append_str(&got, "envelope:");
		for (i = 0; i < o.rcpt_count; i++)
			buf_printf(&got, "%s %s", i > 0 ? "," : "", o.rcpts[i]);
		buf_append(&got, "\r\n\r\n", 4);
		buf_append(&got, o.data.ptr, o.data.len);
	} else {
		assert_int_equal(o.data.len, 0);
		assert_int_equal(o.rcpt_count, 0);
		buf_printf(&got, "error: %s %d\r\nfield: %s\r\nmessage: %s\r\n", mime_error_code(e),
		    mime_error_http_status(e), o.field, o.message);
	}
	buf_printf(&path, "%s/mime/%s.ref", getenv("HK_DATA_DIR"), name);
	if (getenv("HK_GOLDEN_UPDATE") != NULL) {
		f = fopen(path.ptr, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(got.ptr, 1, got.len, f), got.len);
		assert_int_equal(fclose(f), 0);
	}
	test_read_file(path.ptr, &ref);
	if (ref.len != got.len || memcmp(ref.ptr, got.ptr, got.len) != 0)
		fail_msg("%s differs from %s:\n%s", name, path.ptr, got.ptr);
	mime_out_fini(&o);
	test_case_fini(&t);
	buf_fini(&got);
	buf_fini(&ref);
	buf_fini(&path);
}

static void
test_mime_golden(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(golden_cases); i++)
		test_golden_one(golden_cases[i]);
}

/* ---- direct tests ---- */

static void
test_base(struct tcase *t)
{
	test_case_init(t);
	t->m.from.address = "app@example.com";
	t->to[0].address = "user@example.org";
	t->m.to_count = 1;
	t->m.subject = "Hello";
	t->m.text = "Hi.\n";
	t->m.text_len = 4;
}

static enum mime_error
test_build_checked(struct tcase *t, struct mime_out *o)
{
	enum mime_error e = mime_build(&t->m, o);

	if (e == MIME_OK)
		test_check_message(t, o);
	return e;
}

struct err_row {
	const char *what;
	void (*apply)(struct tcase *t);
	enum mime_error want;
	const char *field;
};

static void ap_cr_subject(struct tcase *t) { t->m.subject = "Hi\rBcc: x@evil.example"; }
static void ap_lf_header(struct tcase *t)
{
	t->hdr[0] = (struct mime_header){ "X-Tag", "a\nBcc: x@evil.example" };
	t->m.header_count = 1;
}
static void ap_crlf_name(struct tcase *t) { t->to[0].name = "Eve\r\nBcc: x@evil.example"; }
static void ap_lf_hname(struct tcase *t)
{
	t->hdr[0] = (struct mime_header){ "X-A\nBcc", "v" };
	t->m.header_count = 1;
}
static void ap_space_hname(struct tcase *t)
{
	t->hdr[0] = (struct mime_header){ "X Tag", "v" };
	t->m.header_count = 1;
}
static void ap_colon_hname(struct tcase *t)
{
	t->hdr[0] = (struct mime_header){ "X:Tag", "v" };
	t->m.header_count = 1;
}
static void ap_utf8_hname(struct tcase *t)
{
	t->hdr[0] = (struct mime_header){ "X-\xC3\xA9", "v" };
	t->m.header_count = 1;
}
static void ap_content_type(struct tcase *t)
{
	t->hdr[0] = (struct mime_header){ "content-TYPE", "text/html" };
	t->m.header_count = 1;
}
static void ap_message_id(struct tcase *t)
{
	t->hdr[0] = (struct mime_header){ "Message-Id", "<x@y>" };
	t->m.header_count = 1;
}
static void ap_bcc_header(struct tcase *t)
{
	t->hdr[0] = (struct mime_header){ "BCC", "x@evil.example" };
	t->m.header_count = 1;
}
static void ap_reply_to_twice(struct tcase *t)
{
	t->reply_to.address = "r@example.com";
	t->m.reply_to = &t->reply_to;
	t->hdr[0] = (struct mime_header){ "Reply-To", "other@example.com" };
	t->m.header_count = 1;
}
static void ap_bad_utf8_subject(struct tcase *t) { t->m.subject = "caf\xC3\x28"; }
static void ap_overlong(struct tcase *t) { t->m.subject = "\xC0\xAF"; }
static void ap_surrogate(struct tcase *t) { t->m.subject = "\xED\xA0\x80"; }
static void ap_truncated(struct tcase *t) { t->to[0].name = "\xE6\x97"; }
static void ap_bad_text(struct tcase *t)
{
	t->m.text = "ok\n\xFF\n";
	t->m.text_len = 5;
}
static void ap_bad_html(struct tcase *t)
{
	t->m.html = "<p>\xE6\x97</p>";
	t->m.html_len = 9;
}
static void ap_bad_filename(struct tcase *t)
{
	t->att[0] = (struct mime_attachment){ "a\xFF.txt", "text/plain", "x", 1 };
	t->m.attachment_count = 1;
}
static void ap_crlf_filename(struct tcase *t)
{
	t->att[0] = (struct mime_attachment){ "a.txt\r\nX: y", "text/plain", "x", 1 };
	t->m.attachment_count = 1;
}
static void ap_no_filename(struct tcase *t)
{
	t->att[0] = (struct mime_attachment){ "", "text/plain", "x", 1 };
	t->m.attachment_count = 1;
}
static void ap_ct_no_slash(struct tcase *t)
{
	t->att[0] = (struct mime_attachment){ "a.txt", "text", "x", 1 };
	t->m.attachment_count = 1;
}
static void ap_ct_multipart(struct tcase *t)
{
	t->att[0] = (struct mime_attachment){ "a.eml", "message/rfc822", "x", 1 };
	t->m.attachment_count = 1;
}
static void ap_ct_bad_param(struct tcase *t)
{
	t->att[0] = (struct mime_attachment){ "a.txt", "text/plain; charset", "x", 1 };
	t->m.attachment_count = 1;
}
static void ap_ct_crlf(struct tcase *t)
{
	t->att[0] = (struct mime_attachment){ "a.txt", "text/plain\r\nX: y", "x", 1 };
	t->m.attachment_count = 1;
}
static void ap_bad_to(struct tcase *t) { t->to[0].address = "user@@example.org"; }
static void ap_bad_cc(struct tcase *t)
{
	t->cc[0].address = "<user@example.org>";
	t->m.cc_count = 1;
}
static void ap_utf8_addr(struct tcase *t) { t->to[0].address = "\xE3\x81\x82@example.org"; }
static void ap_no_from(struct tcase *t) { t->m.from.address = NULL; }
static void ap_no_rcpt(struct tcase *t) { t->m.to_count = 0; }
static void ap_long_word(struct tcase *t)
{
	static char v[1200];

	memset(v, 'a', sizeof(v) - 1);
	t->hdr[0] = (struct mime_header){ "X-Long", v };
	t->m.header_count = 1;
}
static void ap_bad_msgid(struct tcase *t) { t->m.message_id = "<no at sign>"; }
static void ap_date_lf(struct tcase *t) { t->m.date = "Tue,\n 14 Jan 2025"; }

static const struct err_row err_rows[] = {
	{ "CR in subject", ap_cr_subject, MIME_E_CONTROL, "subject" },
	{ "LF in header value", ap_lf_header, MIME_E_CONTROL, "headers[X-Tag]" },
	{ "CRLF in display name", ap_crlf_name, MIME_E_CONTROL, "to[0].name" },
	{ "LF in header name", ap_lf_hname, MIME_E_CONTROL, "headers[X-A?Bcc]" },
	{ "space in header name", ap_space_hname, MIME_E_HEADER_NAME, "headers[X?Tag]" },
	{ "colon in header name", ap_colon_hname, MIME_E_HEADER_NAME, "headers[X:Tag]" },
	{ "UTF-8 header name", ap_utf8_hname, MIME_E_HEADER_NAME, "headers[X-??]" },
	{ "Content-Type override", ap_content_type, MIME_E_FORBIDDEN, "headers[content-TYPE]" },
	{ "Message-ID override", ap_message_id, MIME_E_FORBIDDEN, "headers[Message-Id]" },
	{ "Bcc header", ap_bcc_header, MIME_E_FORBIDDEN, "headers[BCC]" },
	{ "Reply-To twice", ap_reply_to_twice, MIME_E_FORBIDDEN, "headers[Reply-To]" },
	{ "bad UTF-8 subject", ap_bad_utf8_subject, MIME_E_UTF8, "subject" },
	{ "overlong UTF-8", ap_overlong, MIME_E_UTF8, "subject" },
	{ "UTF-8 surrogate", ap_surrogate, MIME_E_UTF8, "subject" },
	{ "truncated UTF-8 name", ap_truncated, MIME_E_UTF8, "to[0].name" },
	{ "bad UTF-8 text", ap_bad_text, MIME_E_UTF8, "text" },
	{ "bad UTF-8 html", ap_bad_html, MIME_E_UTF8, "html" },
	{ "bad UTF-8 filename", ap_bad_filename, MIME_E_UTF8, "attachments[0].filename" },
	{ "CRLF in filename", ap_crlf_filename, MIME_E_CONTROL, "attachments[0].filename" },
	{ "empty filename", ap_no_filename, MIME_E_MISSING, "attachments[0].filename" },
	{ "type without subtype", ap_ct_no_slash, MIME_E_CONTENT_TYPE,
	  "attachments[0].content_type" },
	{ "message/rfc822 attachment", ap_ct_multipart, MIME_E_CONTENT_TYPE,
	  "attachments[0].content_type" },
	{ "parameter without value", ap_ct_bad_param, MIME_E_CONTENT_TYPE,
	  "attachments[0].content_type" },
	{ "CRLF in content type", ap_ct_crlf, MIME_E_CONTROL, "attachments[0].content_type" },
	{ "bad to address", ap_bad_to, MIME_E_ADDRESS, "to[0]" },
	{ "angle brackets in cc", ap_bad_cc, MIME_E_ADDRESS, "cc[0]" },
	{ "UTF-8 address", ap_utf8_addr, MIME_E_ADDRESS, "to[0]" },
	{ "no from", ap_no_from, MIME_E_MISSING, "from" },
	{ "no recipient", ap_no_rcpt, MIME_E_MISSING, "to" },
	{ "unfoldable header", ap_long_word, MIME_E_TOO_LONG, "headers[X-Long]" },
	{ "bad Message-ID", ap_bad_msgid, MIME_E_CONTROL, "message_id" },
	{ "LF in date", ap_date_lf, MIME_E_CONTROL, "date" },
};

static void
test_mime_errors(void **state)
{
	struct tcase t;
	struct mime_out o;
	size_t i;

	(void)state;
	mime_out_init(&o);
	/* The base message builds, so each row's failure comes from its one change. */
	test_base(&t);
	assert_int_equal(test_build_checked(&t, &o), MIME_OK);
	for (i = 0; i < HK_ARRAY_LEN(err_rows); i++) {
		enum mime_error e;

		test_base(&t);
		err_rows[i].apply(&t);
		e = mime_build(&t.m, &o);
		if (e != err_rows[i].want || strcmp(o.field, err_rows[i].field) != 0)
			fail_msg("%s: got %s field '%s' (%s)", err_rows[i].what, mime_error_code(e),
			    o.field, o.message);
		assert_int_equal(o.data.len, 0);
		assert_int_equal(o.rcpt_count, 0);
		/* The message names the field first. */
		assert_int_equal(strncmp(o.message, o.field, strlen(o.field)), 0);
	}
	mime_out_fini(&o);
}

static void
test_mime_http_status(void **state)
{
	(void)state;
	assert_int_equal(mime_error_http_status(MIME_E_CONTROL), 400);
	assert_int_equal(mime_error_http_status(MIME_E_UTF8), 400);
	assert_int_equal(mime_error_http_status(MIME_E_HEADER_NAME), 400);
	assert_int_equal(mime_error_http_status(MIME_E_FORBIDDEN), 422);
	assert_int_equal(mime_error_http_status(MIME_E_ADDRESS), 422);
	assert_int_equal(mime_error_http_status(MIME_E_MISSING), 422);
	assert_string_equal(mime_error_code(MIME_E_FORBIDDEN), "header_not_allowed");
}

/* Every encoded word holds whole characters: each decodes to valid UTF-8 on its own. */
static void
test_mime_encoded_words_whole_chars(void **state)
{
	struct tcase t;
	struct mime_out o;
	struct buf subj = BUF_INIT, v = BUF_INIT, one = BUF_INIT;
	const char *p, *end;
	size_t i, words = 0;

	(void)state;
	/* Mixed widths so that word ends fall at every offset: 1, 2, 3 and 4-byte characters. */
	for (i = 0; i < 60; i++)
		buf_append_str(&subj, "a\xC3\xA9\xE6\x97\xA5\xF0\x9F\x93\xA7");
	test_base(&t);
	t.m.subject = subj.ptr;
	mime_out_init(&o);
	assert_int_equal(test_build_checked(&t, &o), MIME_OK);
	assert_true(test_get_field(o.data.ptr, o.data.len, "Subject", &v));
	for (p = v.ptr; (p = strstr(p, "=?UTF-8?")) != NULL; p = end + 2) {
		end = strstr(p + 10, "?=");
		assert_non_null(end);
		buf_reset(&one);
		assert_int_equal(p[8], 'B');
		assert_int_equal(base64_decode(&one, p + 10, (size_t)(end - p - 10)), 0);
		/* A lone continuation byte or a cut sequence would show at either end. */
		assert_true(((unsigned char)one.ptr[0] & 0xC0) != 0x80);
		assert_true((unsigned char)one.ptr[one.len - 1] < 0x80 ||
		    ((unsigned char)one.ptr[one.len - 1] & 0xC0) == 0x80);
		words++;
	}
	assert_true(words > 10);
	/* Folded to 78 columns: every header line of the field. */
	p = strstr(o.data.ptr, "Subject:");
	end = strstr(p, "\r\nDate:");
	test_max_line(p, (size_t)(end - p), 78);
	mime_out_fini(&o);
	buf_fini(&subj);
	buf_fini(&v);
	buf_fini(&one);
}

/* Empty subject and header values: no white space at the end of the line. */
static void
test_mime_empty_values(void **state)
{
	struct tcase t;
	struct mime_out o;

	(void)state;
	test_base(&t);
	t.m.subject = "";
	t.hdr[0] = (struct mime_header){ "X-Empty", "" };
	t.m.header_count = 1;
	mime_out_init(&o);
	assert_int_equal(test_build_checked(&t, &o), MIME_OK);
	assert_non_null(strstr(o.data.ptr, "\r\nSubject:\r\n"));
	assert_non_null(strstr(o.data.ptr, "\r\nX-Empty:\r\n"));
	mime_out_fini(&o);
}

/* Text that holds the first boundary choice makes the builder pick another. */
static void
test_mime_boundary_collision(void **state)
{
	struct tcase t;
	struct mime_out o;
	struct buf text = BUF_INIT, v = BUF_INIT;

	(void)state;
	test_base(&t);
	buf_append_str(&text, "--=_hka_000102030405060708090A0B0C0D0E0F\n"
	    "--=_hkm_000102030405060708090A0B0C0D0E0F--\n");
	t.m.text = text.ptr;
	t.m.text_len = text.len;
	t.m.html = "<p>x</p>";
	t.m.html_len = 8;
	t.att[0] = (struct mime_attachment){ "a.bin", NULL, "\x00\x01", 2 };
	t.m.attachment_count = 1;
	mime_out_init(&o);
	assert_int_equal(test_build_checked(&t, &o), MIME_OK);
	assert_true(test_get_field(o.data.ptr, o.data.len, "Content-Type", &v));
	assert_non_null(strstr(v.ptr, "boundary=\"=_hkm_000102030405060708090A0B0C0D0E0F.1\""));
	assert_non_null(strstr(o.data.ptr, "--=_hka_000102030405060708090A0B0C0D0E0F.1\r\n"));
	mime_out_fini(&o);
	buf_fini(&text);
	buf_fini(&v);
}

/* A long unbroken ASCII subject cannot fold at spaces: encoded words keep lines short. */
static void
test_mime_long_word_subject(void **state)
{
	struct tcase t;
	struct mime_out o;
	char subj[1500];

	(void)state;
	memset(subj, 'x', sizeof(subj) - 1);
	subj[sizeof(subj) - 1] = '\0';
	test_base(&t);
	t.m.subject = subj;
	mime_out_init(&o);
	assert_int_equal(test_build_checked(&t, &o), MIME_OK);
	assert_non_null(strstr(o.data.ptr, "Subject: =?UTF-8?Q?xxx"));
	mime_out_fini(&o);
}

static void
test_mime_envelope_dedup(void **state)
{
	struct tcase t;
	struct mime_out o;

	(void)state;
	test_base(&t);
	t.to[1].address = "other@example.org";
	t.m.to_count = 2;
	t.cc[0].address = "user@EXAMPLE.org";
	t.m.cc_count = 1;
	t.bcc[0].address = "hidden@example.net";
	t.bcc[1].address = "User@example.org"; /* local parts differ in case: kept */
	t.m.bcc_count = 2;
	mime_out_init(&o);
	assert_int_equal(test_build_checked(&t, &o), MIME_OK);
	assert_int_equal(o.rcpt_count, 4);
	assert_string_equal(o.rcpts[0], "user@example.org");
	assert_string_equal(o.rcpts[1], "other@example.org");
	assert_string_equal(o.rcpts[2], "hidden@example.net");
	assert_string_equal(o.rcpts[3], "User@example.org");
	/* Reusing the output frees what it held. */
	assert_int_equal(test_build_checked(&t, &o), MIME_OK);
	assert_int_equal(o.rcpt_count, 4);
	mime_out_fini(&o);
}

/* Bodies: empty, no final newline, CR and CRLF line ends, NUL, trailing space, "From ". */
static void
test_mime_body_edges(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		const char *cte;
	} rows[] = {
		{ "", 0, "7bit" },
		{ "no newline", 10, "7bit" },
		{ "a\rb\r\nc\n", 7, "7bit" },
		{ "nul\0byte\n", 9, "quoted-printable" },
		{ "trailing space \nx", 17, "quoted-printable" },
		{ "From here\n", 10, "quoted-printable" },
		{ "a=b\n", 4, "7bit" },
		{ "caf\xC3\xA9\n", 6, "quoted-printable" },
	};
	struct tcase t;
	struct mime_out o;
	struct buf v = BUF_INIT;
	size_t i;

	(void)state;
	mime_out_init(&o);
	for (i = 0; i < HK_ARRAY_LEN(rows); i++) {
		test_base(&t);
		t.m.text = rows[i].s;
		t.m.text_len = rows[i].n;
		assert_int_equal(test_build_checked(&t, &o), MIME_OK);
		assert_true(test_get_field(o.data.ptr, o.data.len, "Content-Transfer-Encoding",
		    &v));
		if (strcmp(v.ptr, rows[i].cte) != 0)
			fail_msg("row %zu: %s, want %s", i, v.ptr, rows[i].cte);
	}
	/* Neither text nor html: an empty text/plain. */
	test_base(&t);
	t.m.text = NULL;
	assert_int_equal(test_build_checked(&t, &o), MIME_OK);
	assert_true(test_get_field(o.data.ptr, o.data.len, "Content-Type", &v));
	assert_string_equal(v.ptr, "text/plain; charset=utf-8");
	/* "From " at a line start is encoded for mbox readers. */
	test_base(&t);
	t.m.text = "x\nFrom me\n";
	t.m.text_len = 10;
	assert_int_equal(test_build_checked(&t, &o), MIME_OK);
	assert_non_null(strstr(o.data.ptr, "\r\n=46rom me\r\n"));
	mime_out_fini(&o);
	buf_fini(&v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mime_golden),
		cmocka_unit_test(test_mime_errors),
		cmocka_unit_test(test_mime_http_status),
		cmocka_unit_test(test_mime_encoded_words_whole_chars),
		cmocka_unit_test(test_mime_boundary_collision),
		cmocka_unit_test(test_mime_long_word_subject),
		cmocka_unit_test(test_mime_envelope_dedup),
		cmocka_unit_test(test_mime_body_edges),
		cmocka_unit_test(test_mime_empty_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
