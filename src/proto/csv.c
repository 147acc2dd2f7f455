/*
 * csv.c - RFC 4180 record reader and header-row table (see csv.h).
 *
 * The input is a file a person wrote or exported from a spreadsheet: every malformation is a
 * reason tied to a line number, never a guess, and one bad record never hides the ones after it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "../util/xalloc.h"
#include "../util/str.h"
#include "../util/poison.h"

void
csv_record_init(struct csv_record *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->data);
}

void
csv_record_fini(struct csv_record *r)
{
	if (r == NULL)
		return;
	buf_fini(&r->data);
	free(r->off);
	memset(r, 0, sizeof(*r));
}

const char *
csv_field(const struct csv_record *r, size_t i)
{
	HK_ASSERT(i < r->n);
	return r->data.ptr + r->off[i];
}

bool
csv_is_utf8(const char *p, size_t n)
{
	return str_utf8_is_valid(p, n);
}

/* Start a new field; false when the record already has CSV_FIELDS_MAX. */
static bool
csv_field_start(struct csv_record *r)
{
	if (r->n == CSV_FIELDS_MAX)
		return false;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->off = xreallocarray(r->off, r->cap, sizeof(*r->off));
	}
	r->off[r->n++] = r->data.len;
	return true;
}

static void
csv_field_end(struct csv_record *r)
{
	buf_putc(&r->data, '\0');
}

/* Skip past the end of the current line after a malformed record. */
static enum csv_result
csv_bad(const char *p, size_t n, size_t *pos, size_t *line, const char *reason,
    const char **why)
{
	const char *nl = *pos < n ? memchr(p + *pos, '\n', n - *pos) : NULL;

	*why = reason;
	if (nl == NULL) {
		*pos = n;
	} else {
		*pos = (size_t)(nl - p) + 1;
		(*line)++;
	}
	return CSV_BAD;
}

/* A quoted field from just after its opening quote; 1 at a record's end, 0 at a comma. */
static int
csv_quoted(const char *p, size_t n, size_t *pos, size_t *line, struct csv_record *r,
    const char **why)
{
	for (;;) {
		char c;

		if (*pos >= n) {
			*why = "unterminated quoted field (a '\"' is missing)";
			return -1;
		}
		c = p[*pos];
		if (c == '"') {
			if (*pos + 1 < n && p[*pos + 1] == '"') {
				buf_putc(&r->data, '"');
				*pos += 2;
				continue;
			}
			(*pos)++;
			break;
		}
		if (c == '\0') {
			*why = "NUL byte";
			return -2;
		}
		if (c == '\n')
			(*line)++;
		buf_putc(&r->data, c);
		(*pos)++;
	}
	csv_field_end(r);
	if (*pos >= n)
		return 1;
	if (p[*pos] == ',') {
		(*pos)++;
		return 0;
	}
	if (p[*pos] == '\n' || (p[*pos] == '\r' && *pos + 1 < n && p[*pos + 1] == '\n')) {
		*pos += p[*pos] == '\r' ? 2 : 1;
		(*line)++;
		return 1;
	}
	*why = "text after a closing quote (write a quote inside a quoted field as \"\")";
	return -2;
}

/* A plain field; 1 at a record's end, 0 at a comma. */
static int
csv_plain(const char *p, size_t n, size_t *pos, size_t *line, struct csv_record *r,
    const char **why)
{
	size_t start = *pos;
	int rc = 1;

	while (*pos < n) {
		char c = p[*pos];

		if (c == ',') {
			rc = 0;
			break;
		}
		if (c == '\n' || (c == '\r' && *pos + 1 < n && p[*pos + 1] == '\n'))
			break;
		if (c == '\r') {
			*why = "CR without LF";
			return -2;
		}
		if (c == '"') {
			*why = "quote inside an unquoted field (quote the whole field: \"a \"\"b\"\"\")";
			return -2;
		}
		if (c == '\0') {
			*why = "NUL byte";
			return -2;
		}
		(*pos)++;
	}
	buf_append(&r->data, p + start, *pos - start);
	csv_field_end(r);
	if (*pos >= n)
		return 1;
	if (p[*pos] == ',') {
		(*pos)++;
		return rc;
	}
	*pos += p[*pos] == '\r' ? 2 : 1;
	(*line)++;
	return 1;
}

enum csv_result
csv_next(const char *p, size_t n, size_t *pos, size_t *line, struct csv_record *r,
    const char **why)
{
	size_t i;
	int rc;

	buf_reset(&r->data);
	r->n = 0;
	*why = NULL;
	/* Lines holding nothing (often a trailing one) are not records. */
	while (*pos < n && (p[*pos] == '\n' ||
	    (p[*pos] == '\r' && *pos + 1 < n && p[*pos + 1] == '\n'))) {
		*pos += p[*pos] == '\r' ? 2 : 1;
		(*line)++;
	}
	if (*pos >= n)
		return CSV_END;
	r->line = *line;
	do {
		if (!csv_field_start(r))
			return csv_bad(p, n, pos, line, "more than 256 fields", why);
		if (*pos < n && p[*pos] == '"') {
			(*pos)++;
			rc = csv_quoted(p, n, pos, line, r, why);
			if (rc == -1) {
				*pos = n;
				return CSV_BAD;
			}
		} else {
			rc = csv_plain(p, n, pos, line, r, why);
		}
		if (rc == -2)
			return csv_bad(p, n, pos, line, *why, why);
	} while (rc == 0);
	for (i = 0; i < r->n; i++) {
		const char *f = csv_field(r, i);

		if (!csv_is_utf8(f, strlen(f))) {
			*why = "malformed UTF-8 (save the file as UTF-8)";
			return CSV_BAD;
		}
	}
	return CSV_RECORD;
}

void
csv_table_init(struct csv_table *t)
{
	memset(t, 0, sizeof(*t));
	csv_record_init(&t->header);
}

void
csv_table_fini(struct csv_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	csv_record_fini(&t->header);
	for (i = 0; i < t->n_rows; i++)
		csv_record_fini(&t->rows[i]);
	free(t->rows);
	free(t->bad);
	memset(t, 0, sizeof(*t));
}

void
csv_table_add_bad(struct csv_table *t, size_t line, const char *fmt, ...)
{
	struct csv_bad *b;
	va_list ap;
	size_t i;

	t->bad = xreallocarray(t->bad, t->n_bad + 1, sizeof(*t->bad));
	for (i = t->n_bad; i > 0 && t->bad[i - 1].line > line; i--)
		t->bad[i] = t->bad[i - 1];
	b = &t->bad[i];
	t->n_bad++;
	b->line = line;
	va_start(ap, fmt);
	vsnprintf(b->why, sizeof(b->why), fmt, ap);
	va_end(ap);
}

size_t
csv_table_column(const struct csv_table *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->header.n; i++) {
		if (strcmp(csv_field(&t->header, i), name) == 0)
			return i;
	}
	return SIZE_MAX;
}

/* Header names without surrounding spaces: "address, name" is what people type. */
static void
csv_trim_header(struct csv_record *h)
{
	struct buf out = BUF_INIT;
	size_t i;

	for (i = 0; i < h->n; i++) {
		const char *f = csv_field(h, i);
		size_t len = strlen(f);

		while (len > 0 && (f[len - 1] == ' ' || f[len - 1] == '\t'))
			len--;
		while (len > 0 && (*f == ' ' || *f == '\t')) {
			f++;
			len--;
		}
		h->off[i] = out.len;
		buf_append(&out, f, len);
		buf_putc(&out, '\0');
	}
	buf_move(&h->data, &out);
	buf_fini(&out);
}

static int
csv_check_header(const struct csv_record *h, const char **why)
{
	size_t i, j;

	for (i = 0; i < h->n; i++) {
		if (csv_field(h, i)[0] == '\0') {
			*why = "the header row has an empty column name";
			return -1;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(csv_field(h, i), csv_field(h, j)) == 0) {
				*why = "the header row names a column twice";
				return -1;
			}
		}
	}
	return 0;
}

int
csv_table_parse(const char *p, size_t n, struct csv_table *t, const char **why)
{
	struct csv_record r;
	size_t pos = 0, line = 1;
	enum csv_result res;
	const char *rwhy;

	csv_table_init(t);
	if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	res = csv_next(p, n, &pos, &line, &t->header, &rwhy);
	if (res == CSV_END) {
		*why = "no header row (the first line names the columns: address,name,...)";
		goto fail;
	}
	if (res == CSV_BAD) {
		*why = rwhy;
		goto fail;
	}
	csv_trim_header(&t->header);
	if (csv_check_header(&t->header, why) == -1)
		goto fail;
	csv_record_init(&r);
	while ((res = csv_next(p, n, &pos, &line, &r, &rwhy)) != CSV_END) {
		if (res == CSV_BAD) {
			csv_table_add_bad(t, r.line, "%s", rwhy);
			continue;
		}
		if (r.n != t->header.n) {
			csv_table_add_bad(t, r.line, "%zu field%s, the header has %zu", r.n,
			    r.n == 1 ? "" : "s", t->header.n);
			continue;
		}
		t->rows = xreallocarray(t->rows, t->n_rows + 1, sizeof(*t->rows));
		t->rows[t->n_rows++] = r;
		csv_record_init(&r);
	}
	csv_record_fini(&r);
	return 0;
fail:
	csv_table_fini(t);
	csv_table_init(t);
	return -1;
}
