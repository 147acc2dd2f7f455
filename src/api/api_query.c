/* api_query.c - pure parsing of the API's query strings, times, cursors and IDs. */
#include <stdlib.h>
#include <string.h>

#include "api_query.h"
#include "../util/num.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define API_QUEUE_LIMIT_DEFAULT 100

static int
api_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
api_id_is_valid(const char *s, size_t n)
{
	size_t i;

	if (n != 16)
		return false;
	for (i = 0; i < n; i++) {
		if (api_hexval(s[i]) < 0)
			return false;
	}
	return true;
}

enum api_query_result
api_query_decode(const char *s, size_t n, struct buf *out)
{
	size_t i;

	buf_reset(out);
	buf_reserve(out, n);
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi, lo;

			if (n - i < 3)
				return API_QUERY_BAD;
			hi = api_hexval(s[i + 1]);
			lo = api_hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return API_QUERY_BAD;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0')
			return API_QUERY_BAD;
		buf_putc(out, c);
	}
	return API_QUERY_OK;
}

enum api_query_result
api_query_each(const char *qs, api_query_pair_fn fn, void *arg, const char **why)
{
	struct buf key = BUF_INIT, val = BUF_INIT;
	enum api_query_result r = API_QUERY_OK;
	const char *p = qs;
	size_t len;

	*why = NULL;
	if (qs == NULL)
		return API_QUERY_OK;
	len = strlen(qs);
	if (len > API_QUERY_MAX) {
		*why = "query string too long";
		return API_QUERY_BAD;
	}
	while (*p) {
		const char *amp = strchr(p, '&');
		const char *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		const char *kend = eq ? eq : end;

		if (end == p) {
			p = end + 1; /* "a=1&&b=2": empty parts are ignored */
			continue;
		}
		if (api_query_decode(p, (size_t)(kend - p), &key) != API_QUERY_OK ||
		    (eq && api_query_decode(eq + 1, (size_t)(end - eq - 1), &val) != API_QUERY_OK)) {
			*why = "bad percent escape in the query string";
			r = API_QUERY_BAD;
			break;
		}
		if (!eq)
			buf_reset(&val);
		if (val.len > API_QUERY_VALUE_MAX) {
			*why = "query parameter value too long";
			r = API_QUERY_BAD;
			break;
		}
		if (!fn(arg, key.ptr ? key.ptr : "", val.ptr ? val.ptr : "", why)) {
			r = API_QUERY_BAD;
			break;
		}
		if (!amp)
			break;
		p = amp + 1;
	}
	buf_fini(&key);
	buf_fini(&val);
	return r;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil algorithm). */
static int64_t
api_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* Exactly n digits at s into *out. */
static bool
api_digits(const char *s, size_t n, unsigned *out)
{
	uint64_t v;

	if (strlen(s) < n || num_parse_u64(s, n, 999999, &v) == -1)
		return false;
	*out = (unsigned)v;
	return true;
}

static bool
api_leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* RFC 3339 date-time or a bare full-date. */
static enum api_query_result
api_query_rfc3339(const char *s, uint64_t *out_ms)
{
	static const unsigned mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, ms = 0;
	int64_t t;
	int sign = 0;
	const char *p;

	if (!api_digits(s, 4, &y) || s[4] != '-' || !api_digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !api_digits(s + 8, 2, &d))
		return API_QUERY_BAD;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && api_leap(y)))
		return API_QUERY_BAD;
	p = s + 10;
	if (*p != '\0') {
		if (*p != 'T' && *p != 't' && *p != ' ')
			return API_QUERY_BAD;
		if (!api_digits(p + 1, 2, &h) || p[3] != ':' || !api_digits(p + 4, 2, &mi) ||
		    p[6] != ':' || !api_digits(p + 7, 2, &sec))
			return API_QUERY_BAD;
		/* RFC 3339 5.6 allows a leap second 60; it is read as the next second's start. */
		if (h > 23 || mi > 59 || sec > 60)
			return API_QUERY_BAD;
		p += 9;
		if (*p == '.') {
			unsigned scale = 100;

			p++;
			if (*p < '0' || *p > '9')
				return API_QUERY_BAD;
			for (; *p >= '0' && *p <= '9'; p++) {
				ms += (unsigned)(*p - '0') * scale;
				scale /= 10;
			}
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			sign = *p == '+' ? 1 : -1;
			if (!api_digits(p + 1, 2, &oh) || p[3] != ':' || !api_digits(p + 4, 2, &om) ||
			    oh > 23 || om > 59)
				return API_QUERY_BAD;
			p += 6;
		} else {
			return API_QUERY_BAD;
		}
		if (*p != '\0')
			return API_QUERY_BAD;
	}
	t = api_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (int64_t)(oh * 3600 + om * 60);
	if (t < 0)
		return API_QUERY_BAD;
	*out_ms = (uint64_t)t * 1000 + ms;
	return API_QUERY_OK;
}

enum api_query_result
api_query_time(const char *s, uint64_t now_ms, uint64_t *out_ms)
{
	size_t n = strlen(s);
	uint64_t v;

	if (n == 0)
		return API_QUERY_BAD;
	/* Unix seconds; up to year 9999. */
	if (num_parse_u64(s, n, 253402300799ull, &v) == 0) {
		*out_ms = v * 1000;
		return API_QUERY_OK;
	}
	if (n >= 10 && s[4] == '-')
		return api_query_rfc3339(s, out_ms);
	if (s[n - 1] >= 'a' && s[n - 1] <= 'z' && num_parse_duration_ms(s, &v) == 0) {
		*out_ms = v >= now_ms ? 0 : now_ms - v;
		return API_QUERY_OK;
	}
	return API_QUERY_BAD;
}

void
api_cursor_format(uint64_t id, char out[API_CURSOR_LEN + 1])
{
	static const char hex[] = "0123456789ABCDEF";
	int i;

	out[0] = '1';
	out[1] = '.';
	for (i = 0; i < 16; i++)
		out[2 + i] = hex[(id >> (60 - 4 * i)) & 0xf];
	out[API_CURSOR_LEN] = '\0';
}

enum api_query_result
api_cursor_parse(const char *s, uint64_t *out_id)
{
	if (strlen(s) != API_CURSOR_LEN || s[0] != '1' || s[1] != '.' ||
	    !api_id_is_valid(s + 2, 16) || num_parse_hex64(s + 2, 16, out_id) == -1 || *out_id == 0)
		return API_QUERY_BAD;
	return API_QUERY_OK;
}

struct api_search_ctx {
	struct maillog_filter *f;
	uint64_t now_ms;
	unsigned seen; /* bit per parameter, so a repeat is refused */
};

enum { AQ_STATUS, AQ_FROM, AQ_TO, AQ_SINCE, AQ_UNTIL, AQ_UPSTREAM, AQ_Q, AQ_LIMIT, AQ_CURSOR };

static const char *const api_search_keys[] = {
	[AQ_STATUS] = "status", [AQ_FROM] = "from", [AQ_TO] = "to", [AQ_SINCE] = "since",
	[AQ_UNTIL] = "until", [AQ_UPSTREAM] = "upstream", [AQ_Q] = "q", [AQ_LIMIT] = "limit",
	[AQ_CURSOR] = "cursor",
};

static bool
api_search_pair(void *arg, const char *key, const char *value, const char **why)
{
	struct api_search_ctx *c = arg;
	struct maillog_filter *f = c->f;
	uint64_t v;
	size_t k;

	for (k = 0; k < HK_ARRAY_LEN(api_search_keys); k++) {
		if (strcmp(key, api_search_keys[k]) == 0)
			break;
	}
	if (k == HK_ARRAY_LEN(api_search_keys)) {
		*why = "unknown query parameter";
		return false;
	}
	if (c->seen & (1u << k)) {
		*why = "query parameter given twice";
		return false;
	}
	c->seen |= 1u << k;
	/* An empty sender is the null sender (bounces); every other filter needs a value. */
	if (*value == '\0' && k != AQ_FROM) {
		*why = "empty query parameter";
		return false;
	}
	switch (k) {
	case AQ_STATUS:
		if (!maillog_status_is_known(value)) {
			*why = "unknown status";
			return false;
		}
		f->status = xstrdup(value);
		return true;
	case AQ_FROM:
		f->from = xstrdup(value);
		return true;
	case AQ_TO:
		f->to = xstrdup(value);
		return true;
	case AQ_UPSTREAM:
		f->upstream = xstrdup(value);
		return true;
	case AQ_Q:
		f->q = xstrdup(value);
		return true;
	case AQ_SINCE:
	case AQ_UNTIL:
		if (api_query_time(value, c->now_ms, &v) != API_QUERY_OK) {
			*why = k == AQ_SINCE ? "bad since: RFC 3339 time, Unix seconds or a duration"
					     : "bad until: RFC 3339 time, Unix seconds or a duration";
			return false;
		}
		/* 0 means "no filter" below: the epoch itself is the same as no bound. */
		if (k == AQ_SINCE)
			f->since_ms = v;
		else
			f->until_ms = v ? v : 1;
		return true;
	case AQ_LIMIT:
		if (num_parse_u64z(value, MAILLOG_QUERY_LIMIT_MAX, &v) == -1 || v == 0) {
			*why = "bad limit: 1 to 500";
			return false;
		}
		f->limit = (unsigned)v;
		return true;
	case AQ_CURSOR:
		if (api_cursor_parse(value, &v) != API_QUERY_OK) {
			*why = "bad cursor";
			return false;
		}
		f->before_id = v;
		return true;
	default:
		hk_panic("search key %zu", k);
	}
}

enum api_query_result
api_query_search(const char *qs, uint64_t now_ms, struct maillog_filter *f, const char **why)
{
	struct api_search_ctx c = { .f = f, .now_ms = now_ms };

	memset(f, 0, sizeof(*f));
	if (api_query_each(qs, api_search_pair, &c, why) != API_QUERY_OK)
		return API_QUERY_BAD;
	if (f->since_ms && f->until_ms && f->until_ms <= f->since_ms) {
		*why = "until must be after since";
		return API_QUERY_BAD;
	}
	return API_QUERY_OK;
}

static bool
api_queue_pair(void *arg, const char *key, const char *value, const char **why)
{
	unsigned *limit = arg;
	uint64_t v;

	if (strcmp(key, "limit") != 0) {
		*why = "unknown query parameter";
		return false;
	}
	if (num_parse_u64z(value, MAILLOG_QUERY_LIMIT_MAX, &v) == -1) {
		*why = "bad limit: 0 to 500";
		return false;
	}
	*limit = (unsigned)v;
	return true;
}

enum api_query_result
api_query_queue(const char *qs, unsigned *limit, const char **why)
{
	*limit = API_QUEUE_LIMIT_DEFAULT;
	return api_query_each(qs, api_queue_pair, limit, why);
}
