/* header.c - RFC 5322 header section helpers. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"
#include "../util/base64.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

/* End of the line starting at p[i] (index after its LF, or len). */
static size_t
header_line_end(const char *p, size_t len, size_t i)
{
	const char *lf = memchr(p + i, '\n', len - i);

	return lf != NULL ? (size_t)(lf - p) + 1 : len;
}

/* True when p[s..e) is an empty line: "\r\n", "\n" (lenient) or nothing. */
static bool
header_line_is_empty(const char *p, size_t s, size_t e)
{
	size_t n = e - s;

	return n == 0 || (n == 1 && p[s] == '\n') || (n == 2 && p[s] == '\r' && p[s + 1] == '\n');
}

size_t
header_section_len(const char *body, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t e = header_line_end(body, len, i);

		if (header_line_is_empty(body, i, e))
			return e;
		i = e;
	}
	return len;
}

/*
 * Find the first field named name in the header section; *vs and *ve get the bounds of its raw
 * value (after the colon, up to the end of its last continuation line).
 */
static bool
header_find(const char *body, size_t len, const char *name, size_t *vs, size_t *ve)
{
	size_t hlen = header_section_len(body, len), nlen = strlen(name), i = 0;

	while (i < hlen) {
		size_t e = header_line_end(body, hlen, i), c = i + nlen;

		if (header_line_is_empty(body, i, e))
			break;
		if (c <= e && body[i] != ' ' && body[i] != '\t' &&
		    str_has_prefix_ci(body + i, e - i, name)) {
			/* RFC 5322 4.5.3 obsolete syntax allows WSP before the colon. */
			while (c < e && (body[c] == ' ' || body[c] == '\t'))
				c++;
			if (c < e && body[c] == ':') {
				*vs = c + 1;
				/* RFC 5322 2.2.3: continuation lines start with WSP. */
				while (e < hlen && (body[e] == ' ' || body[e] == '\t'))
					e = header_line_end(body, hlen, e);
				*ve = e;
				return true;
			}
		}
		i = e;
	}
	return false;
}

bool
header_has_field(const char *body, size_t len, const char *name)
{
	size_t vs, ve;

	return header_find(body, len, name, &vs, &ve);
}

bool
header_get_field(const char *body, size_t len, const char *name, struct buf *out)
{
	size_t vs, ve, i, start;

	buf_reset(out);
	if (!header_find(body, len, name, &vs, &ve))
		return false;
	/* Unfold: drop each CR and LF, keep the WSP that follows (RFC 5322 2.2.3). */
	start = vs;
	for (i = vs; i < ve; i++) {
		if (body[i] == '\r' || body[i] == '\n') {
			buf_append(out, body + start, i - start);
			start = i + 1;
		}
	}
	buf_append(out, body + start, ve - start);
	start = 0;
	while (start < out->len && (out->ptr[start] == ' ' || out->ptr[start] == '\t'))
		start++;
	buf_consume(out, start);
	while (out->len > 0 && (out->ptr[out->len - 1] == ' ' || out->ptr[out->len - 1] == '\t'))
		buf_truncate(out, out->len - 1);
	return true;
}

/* Floor division: the epoch may be negative and C division truncates toward zero. */
static int64_t
header_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/*
 * Days since 1970-01-01 to a proleptic Gregorian date, counting in 400-year eras of 146097
 * days starting on 0000-03-01 (so the leap day is the last day of the year).
 */
static void
header_civil(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t z = days + 719468, era = header_floor_div(z, 146097);
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

void
header_format_date(struct buf *out, int64_t t, int tz_minutes)
{
	static const char *const wday[7] = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" };
	static const char *const mon[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
		"Aug", "Sep", "Oct", "Nov", "Dec" };
	int64_t local, days, secs, y;
	unsigned m, d, off;

	/* RFC 5322 3.3: zone = ("+" / "-") 4DIGIT, hours 00-99 in theory, real ones under 24. */
	HK_ASSERT(tz_minutes > -24 * 60 && tz_minutes < 24 * 60);
	HK_ASSERT(t > INT64_MIN / 2 && t < INT64_MAX / 2);
	local = t + (int64_t)tz_minutes * 60;
	days = header_floor_div(local, 86400);
	secs = local - days * 86400;
	header_civil(days, &y, &m, &d);
	off = (unsigned)(tz_minutes < 0 ? -tz_minutes : tz_minutes);
	buf_printf(out, "%s, %u %s %04" PRId64 " %02u:%02u:%02u %c%02u%02u",
	    wday[(unsigned)(days - header_floor_div(days, 7) * 7)], d, mon[m - 1], y,
	    (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60), (unsigned)(secs % 60),
	    tz_minutes < 0 ? '-' : '+', off / 60, off % 60);
}

/* ---- RFC 2047 encoded words ---- */

enum hdw_charset { HDW_UTF8, HDW_LATIN1, HDW_OTHER };

static enum hdw_charset
hdw_charset(const char *p, size_t n)
{
	const char *star = memchr(p, '*', n); /* RFC 2231 language suffix: "utf-8*ja" */

	if (star != NULL)
		n = (size_t)(star - p);
	if (str_eq_ci(p, n, "utf-8") || str_eq_ci(p, n, "us-ascii"))
		return HDW_UTF8;
	if (str_eq_ci(p, n, "iso-8859-1") || str_eq_ci(p, n, "latin1"))
		return HDW_LATIN1;
	return HDW_OTHER;
}

static int
hdw_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Q encoding (RFC 2047 4.2) of p[0..n) into raw; -1 when malformed. */
static int
hdw_q(const char *p, size_t n, struct buf *raw)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '_') {
			buf_append(raw, " ", 1);
		} else if (p[i] == '=') {
			int hi, lo;
			char c;

			if (i + 2 >= n)
				return -1;
			hi = hdw_hex(p[i + 1]);
			lo = hdw_hex(p[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			buf_append(raw, &c, 1);
			i += 2;
		} else {
			buf_append(raw, &p[i], 1);
		}
	}
	return 0;
}

/*
 * Is in[i..) an encoded word "=?charset?E?text?="? Sets the parts and the word's end; the text
 * holds no '?' or white space (RFC 2047 2).
 */
static bool
hdw_parse(const char *in, size_t len, size_t i, size_t *cs, size_t *cs_len, char *enc,
    size_t *txt, size_t *txt_len, size_t *end)
{
	size_t j = i + 2, k;

	if (i + 2 > len || in[i] != '=' || in[i + 1] != '?')
		return false;
	*cs = j;
	while (j < len && in[j] != '?' && in[j] != ' ' && in[j] != '\t')
		j++;
	if (j >= len || in[j] != '?' || j == *cs)
		return false;
	*cs_len = j - *cs;
	if (j + 3 > len || in[j + 2] != '?')
		return false;
	*enc = in[j + 1];
	if (*enc != 'B' && *enc != 'b' && *enc != 'Q' && *enc != 'q')
		return false;
	k = j + 3;
	*txt = k;
	while (k < len && in[k] != '?' && in[k] != ' ' && in[k] != '\t')
		k++;
	if (k + 1 >= len || in[k] != '?' || in[k + 1] != '=')
		return false;
	*txt_len = k - *txt;
	*end = k + 2;
	return true;
}

/* Append raw (in charset cs) to out as UTF-8; false when it is not valid in that charset. */
static bool
hdw_to_utf8(const struct buf *raw, enum hdw_charset cs, struct buf *out)
{
	size_t i;

	if (cs == HDW_UTF8) {
		if (!str_utf8_is_valid(raw->ptr, raw->len))
			return false;
		buf_append(out, raw->ptr, raw->len);
		return true;
	}
	for (i = 0; i < raw->len; i++) {
		unsigned char c = (unsigned char)raw->ptr[i];
		char two[2];

		if (c < 0x80) {
			buf_append(out, (const char *)&c, 1);
			continue;
		}
		two[0] = (char)(0xC0 | c >> 6);
		two[1] = (char)(0x80 | (c & 0x3F));
		buf_append(out, two, 2);
	}
	return true;
}

void
header_decode_words(const char *in, size_t len, size_t max, struct buf *out)
{
	struct buf raw = BUF_INIT;
	size_t i = 0, pending_ws = 0;
	bool last_was_word = false;

	buf_reset(out);
	while (i < len) {
		size_t cs, cs_len, txt, txt_len, end;
		char enc;

		if (in[i] == ' ' || in[i] == '\t' || in[i] == '\r' || in[i] == '\n') {
			pending_ws++;
			i++;
			continue;
		}
		if (hdw_parse(in, len, i, &cs, &cs_len, &enc, &txt, &txt_len, &end)) {
			enum hdw_charset c = hdw_charset(in + cs, cs_len);
			int rc;

			buf_reset(&raw);
			if (enc == 'B' || enc == 'b')
				rc = base64_decode(&raw, in + txt, txt_len);
			else
				rc = hdw_q(in + txt, txt_len, &raw);
			if (c != HDW_OTHER && rc == 0) {
				size_t before = out->len;

				/* White space between two encoded words is not part of the text. */
				if (pending_ws && !last_was_word)
					buf_append(out, " ", 1);
				if (!hdw_to_utf8(&raw, c, out)) {
					out->len = before;
					goto literal;
				}
				pending_ws = 0;
				last_was_word = true;
				i = end;
				continue;
			}
		}
literal:
		if (pending_ws)
			buf_append(out, " ", 1);
		pending_ws = 0;
		last_was_word = false;
		/* One literal token: up to the next white space. */
		while (i < len && in[i] != ' ' && in[i] != '\t' && in[i] != '\r' && in[i] != '\n') {
			char c = in[i];

			if ((unsigned char)c < 0x20 || c == 0x7f)
				c = ' ';
			buf_append(out, &c, 1);
			i++;
		}
	}
	buf_fini(&raw);
	/* Control bytes from decoded words become spaces too. */
	for (i = 0; i < out->len; i++) {
		unsigned char c = (unsigned char)out->ptr[i];

		if (c < 0x20 || c == 0x7f)
			out->ptr[i] = ' ';
	}
	if (out->len > max) {
		size_t cut = max;

		while (cut > 0 && ((unsigned char)out->ptr[cut] & 0xC0) == 0x80)
			cut--;
		out->len = cut;
	}
	if (out->ptr)
		out->ptr[out->len] = '\0';
}

/* Copy v without comments "(...)" (nested) and quoted strings, so '@' and '<' in them are not
 * taken for the address. */
static void
header_strip_comments(const char *v, size_t n, struct buf *out)
{
	size_t i;
	int depth = 0;
	bool quoted = false;

	for (i = 0; i < n; i++) {
		char c = v[i];

		if (c == '\\' && (quoted || depth > 0) && i + 1 < n) {
			i++;
			continue;
		}
		if (quoted) {
			quoted = c != '"';
			continue;
		}
		if (c == '(') {
			depth++;
			continue;
		}
		if (depth > 0) {
			depth -= c == ')';
			continue;
		}
		if (c == '"') {
			quoted = true;
			continue;
		}
		buf_append(out, &c, 1);
	}
}

char *
header_from_domain(const char *body, size_t len)
{
	struct buf v = BUF_INIT, s = BUF_INIT;
	const char *p, *end, *at, *start;
	char *out = NULL;
	size_t i;

	if (!header_get_field(body, len, "From", &v) || v.len == 0)
		goto done;
	header_strip_comments(v.ptr, v.len, &s);
	if (s.len == 0)
		goto done;
	p = s.ptr;
	end = s.ptr + s.len;
	/* "Name <a@b>": the address in brackets; else the first word with an '@'. */
	if ((start = memchr(p, '<', s.len)) != NULL) {
		const char *close = memchr(start, '>', (size_t)(end - start));

		p = start + 1;
		end = close != NULL ? close : end;
	} else {
		if ((at = memchr(p, '@', s.len)) == NULL)
			goto done;
		while (at > p && at[-1] != ' ' && at[-1] != '\t' && at[-1] != ',' && at[-1] != ':')
			at--;
		p = at;
		for (start = p; start < end && *start != ' ' && *start != '\t' && *start != ',' &&
		    *start != ';'; start++)
			;
		end = start;
	}
	at = NULL;
	for (start = p; start < end; start++) {
		if (*start == '@')
			at = start;
	}
	if (at == NULL || at + 1 >= end)
		goto done;
	out = xmalloc((size_t)(end - at));
	for (i = 0, p = at + 1; p < end; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			break;
		out[i++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[i] = '\0';
	if (i == 0) {
		free(out);
		out = NULL;
	}
done:
	buf_fini(&v);
	buf_fini(&s);
	return out;
}

char *
header_subject(const char *body, size_t len)
{
	struct buf v = BUF_INIT, d = BUF_INIT;
	char *out = NULL;

	if (header_get_field(body, len, "Subject", &v)) {
		header_decode_words(v.ptr ? v.ptr : "", v.len, 998, &d);
		out = xstrdup(d.ptr ? d.ptr : "");
	}
	buf_fini(&v);
	buf_fini(&d);
	return out;
}
