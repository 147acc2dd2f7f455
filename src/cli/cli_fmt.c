/*
 * cli_fmt.c - option parsing, time filters, query strings and text tables of the admin commands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_fmt.h"
#include "../util/num.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

/* ---- options ---- */

static const struct cli_opt *
cli_opt_find(const struct cli_opt *opts, size_t n_opts, const char *arg, size_t len)
{
	size_t i;

	for (i = 0; i < n_opts; i++) {
		if (strlen(opts[i].name) == len && memcmp(opts[i].name, arg, len) == 0)
			return &opts[i];
	}
	return NULL;
}

int
cli_opts_parse(const struct cli_opt *opts, size_t n_opts, int argc, char **argv,
    const char **pos, size_t max_pos, size_t *n_pos, const char **bad, const char **why)
{
	bool only_pos = false;
	int i;

	*n_pos = 0;
	*bad = NULL;
	*why = NULL;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq;
		const struct cli_opt *o;

		if (!only_pos && strcmp(a, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (only_pos || a[0] != '-' || a[1] == '\0') {
			if (*n_pos >= max_pos) {
				*bad = a;
				*why = "too many arguments";
				return -1;
			}
			pos[(*n_pos)++] = a;
			continue;
		}
		eq = strchr(a, '=');
		o = cli_opt_find(opts, n_opts, a, eq ? (size_t)(eq - a) : strlen(a));
		if (o == NULL) {
			*bad = a;
			*why = "unknown option";
			return -1;
		}
		if (!o->takes_value) {
			if (eq != NULL) {
				*bad = a;
				*why = "this option takes no value";
				return -1;
			}
			*o->value = "1";
		} else if (eq != NULL) {
			*o->value = eq + 1;
		} else if (i + 1 < argc) {
			*o->value = argv[++i];
		} else {
			*bad = a;
			*why = "option needs a value";
			return -1;
		}
	}
	return 0;
}

/* ---- time ---- */

/* n digits at s as a number; -1 if any is not a digit. */
static int
cli_digits(const char *s, size_t n, int *out)
{
	uint64_t v;

	if (num_parse_u64(s, n, 9999, &v) == -1)
		return -1;
	*out = (int)v;
	return 0;
}

static bool
cli_date_parse(const char *s, struct tm *tm)
{
	memset(tm, 0, sizeof(*tm));
	if (s[4] != '-' || s[7] != '-' || cli_digits(s, 4, &tm->tm_year) == -1 ||
	    cli_digits(s + 5, 2, &tm->tm_mon) == -1 || cli_digits(s + 8, 2, &tm->tm_mday) == -1)
		return false;
	if (tm->tm_year < 1970 || tm->tm_mon < 1 || tm->tm_mon > 12 || tm->tm_mday < 1 ||
	    tm->tm_mday > 31)
		return false;
	tm->tm_year -= 1900;
	tm->tm_mon -= 1;
	return true;
}

/* "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)". */
static int
cli_rfc3339_parse(const char *s, uint64_t *out_ms)
{
	size_t n = strlen(s), i = 19;
	struct tm tm;
	int frac_ms = 0, scale = 100, off_min = 0, oh, om;
	time_t t;

	if (n < 20 || !cli_date_parse(s, &tm) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    s[13] != ':' || s[16] != ':' || cli_digits(s + 11, 2, &tm.tm_hour) == -1 ||
	    cli_digits(s + 14, 2, &tm.tm_min) == -1 || cli_digits(s + 17, 2, &tm.tm_sec) == -1 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	if (s[i] == '.') {
		for (i++; s[i] >= '0' && s[i] <= '9'; i++) {
			frac_ms += (s[i] - '0') * scale;
			scale /= 10;
		}
		if (s[i - 1] == '.')
			return -1;
	}
	if ((s[i] == 'Z' || s[i] == 'z') && s[i + 1] == '\0') {
		off_min = 0;
	} else if ((s[i] == '+' || s[i] == '-') && n - i == 6 && s[i + 3] == ':' &&
	    cli_digits(s + i + 1, 2, &oh) == 0 && cli_digits(s + i + 4, 2, &om) == 0 &&
	    oh < 24 && om < 60) {
		off_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
	} else {
		return -1;
	}
	t = timegm(&tm);
	if (t == (time_t)-1 || (int64_t)t - (int64_t)off_min * 60 < 0)
		return -1;
	*out_ms = (uint64_t)((int64_t)t - (int64_t)off_min * 60) * 1000 + (uint64_t)frac_ms;
	return 0;
}

int
cli_time_parse(const char *s, uint64_t now_ms, uint64_t *out_ms)
{
	size_t n = strlen(s);
	uint64_t d;
	struct tm tm;
	time_t t;

	if (n == 10 && cli_date_parse(s, &tm)) {
		tm.tm_isdst = -1;
		t = mktime(&tm);
		if (t == (time_t)-1 || t < 0)
			return -1;
		*out_ms = (uint64_t)t * 1000;
		return 0;
	}
	if (n > 10 && s[4] == '-')
		return cli_rfc3339_parse(s, out_ms);
	/* A duration needs its unit: a bare number would be ambiguous ("ago" or a timestamp). */
	if (n < 2 || s[n - 1] < 'a' || s[n - 1] > 'z' || num_parse_duration_ms(s, &d) == -1 ||
	    d > now_ms)
		return -1;
	*out_ms = now_ms - d;
	return 0;
}

void
cli_time_rfc3339(uint64_t ms, char out[CLI_TIME_LEN + 1])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, CLI_TIME_LEN + 1, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
	    (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
	    (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
	    (unsigned)tm.tm_sec % 100u, (unsigned)(ms % 1000));
}

void
cli_time_local(uint64_t ms, char out[CLI_TIME_LEN + 1])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms == 0 || localtime_r(&t, &tm) == NULL) {
		snprintf(out, CLI_TIME_LEN + 1, "-");
		return;
	}
	strftime(out, CLI_TIME_LEN + 1, "%Y-%m-%d %H:%M:%S", &tm);
}

/* ---- query strings ---- */

void
cli_query_add(struct buf *q, const char *key, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	buf_putc(q, q->len == 0 ? '?' : '&');
	buf_append_str(q, key);
	buf_putc(q, '=');
	for (p = (const unsigned char *)value; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			buf_putc(q, (char)*p);
		} else {
			buf_putc(q, '%');
			buf_putc(q, hex[*p >> 4]);
			buf_putc(q, hex[*p & 15]);
		}
	}
}

/* ---- tables ---- */

void
cli_table_init(struct cli_table *t, size_t n_cols)
{
	memset(t, 0, sizeof(*t));
	t->n_cols = n_cols;
}

void
cli_table_fini(struct cli_table *t)
{
	size_t i;

	for (i = 0; i < t->n_rows * t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

void
cli_table_add(struct cli_table *t, const char *const *cells)
{
	size_t c;

	if (t->n_rows == t->cap_rows) {
		t->cap_rows = t->cap_rows ? 2 * t->cap_rows : 16;
		t->cells = xreallocarray(t->cells, t->cap_rows * t->n_cols, sizeof(*t->cells));
	}
	for (c = 0; c < t->n_cols; c++) {
		char *v = xstrdup(cells[c] ? cells[c] : ""), *p;

		/* A reply text must not move the cursor or forge lines on the terminal. */
		for (p = v; *p; p++) {
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		}
		t->cells[t->n_rows * t->n_cols + c] = v;
	}
	t->n_rows++;
}

/* Characters of s (UTF-8 continuation bytes do not count). */
static size_t
cli_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

/* Append s cut to max characters (with "..." when cut; 0: no limit); returns its width. */
static size_t
cli_cell(struct buf *out, const char *s, size_t max)
{
	size_t w = 0;
	const char *p;

	if (max == 0 || cli_width(s) <= max) {
		buf_append_str(out, s);
		return cli_width(s);
	}
	for (p = s; *p; p++) {
		if (((unsigned char)*p & 0xC0) != 0x80) {
			if (w == max - 3)
				break;
			w++;
		}
		buf_putc(out, *p);
	}
	buf_append_str(out, "...");
	return max;
}

void
cli_table_print(const struct cli_table *t, size_t max_width, struct buf *out)
{
	size_t *width = xcalloc(t->n_cols ? t->n_cols : 1, sizeof(*width));
	size_t r, c;

	if (max_width != 0 && max_width < 4)
		max_width = 4;
	for (r = 0; r < t->n_rows; r++) {
		for (c = 0; c < t->n_cols; c++) {
			size_t w = cli_width(t->cells[r * t->n_cols + c]);

			if (max_width && w > max_width)
				w = max_width;
			if (w > width[c])
				width[c] = w;
		}
	}
	for (r = 0; r < t->n_rows; r++) {
		size_t pad = 0;

		for (c = 0; c < t->n_cols; c++) {
			const char *cell = t->cells[r * t->n_cols + c];
			size_t w;

			for (; pad > 0; pad--)
				buf_putc(out, ' ');
			w = cli_cell(out, cell, max_width);
			if (c + 1 < t->n_cols)
				pad = width[c] - w + 2;
		}
		/* No trailing blanks: an empty last cell leaves none. */
		while (out->len > 0 && out->ptr[out->len - 1] == ' ')
			buf_truncate(out, out->len - 1);
		buf_putc(out, '\n');
	}
	free(width);
}
