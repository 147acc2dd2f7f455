/* header.c - RFC 5322 header section helpers. */
#include <inttypes.h>
#include <string.h>

#include "header.h"
#include "../util/str.h"
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
