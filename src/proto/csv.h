/*
 * csv.h - RFC 4180 comma-separated values: a record reader and a table with a header row (the
 * recipient lists of `hikyaku announce`).
 *
 * Records end at LF or CRLF (or the end of the input); a field is either plain (no '"', CR or
 * LF) or quoted ("..." with "" for a quote, CR and LF allowed inside). Rejected, one record at a
 * time so the reader can go on with the next: a quote inside a plain field, text after a closing
 * quote, a bare CR outside quotes, a NUL byte, malformed UTF-8, more than CSV_FIELDS_MAX fields.
 * An unterminated quote rejects the rest of the input. Lines holding nothing are skipped.
 * Line numbers are 1-based and count every LF, also those inside quoted fields, so they match
 * what an editor shows.
 * Ownership: a record and a table own their copies; free them with their _fini().
 * Pure: no I/O. Thread: any.
 */
#ifndef HK_CSV_H
#define HK_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/buf.h"
#include "../util/common.h"

#define CSV_FIELDS_MAX 256
#define CSV_WHY_MAX 160

struct csv_record {
	struct buf data; /* the fields, each NUL-terminated, back to back */
	size_t *off;     /* off[i]: start of field i in data */
	size_t n;        /* fields */
	size_t cap;
	size_t line;     /* line where the record starts */
};

enum csv_result {
	CSV_RECORD = 0, /* *r holds a record */
	CSV_END,        /* no more input */
	CSV_BAD,        /* a malformed record, skipped: r->line and *why say where and why */
};

void csv_record_init(struct csv_record *r);
void csv_record_fini(struct csv_record *r);
/* Field i (NUL-terminated, may hold LF inside); i < r->n. */
const char *csv_field(const struct csv_record *r, size_t i);

/*
 * Read the next record of p[0..n) from *pos; *line is the line at *pos (start with 1). Both
 * move past the record, also past a bad one. *why is a static reason on CSV_BAD.
 */
enum csv_result csv_next(const char *p, size_t n, size_t *pos, size_t *line,
    struct csv_record *r, const char **why);

/* A row that was refused: where and why. */
struct csv_bad {
	size_t line;
	char why[CSV_WHY_MAX];
};

struct csv_table {
	struct csv_record header;
	struct csv_record *rows;
	size_t n_rows;
	struct csv_bad *bad; /* in line order */
	size_t n_bad;
};

void csv_table_init(struct csv_table *t);
void csv_table_fini(struct csv_table *t);

/*
 * Parse a document whose first record names the columns (a UTF-8 byte order mark before it is
 * dropped). Rows that are malformed or whose field count differs from the header's go to
 * t->bad; the others to t->rows. -1 with *why when there is no usable header (none, malformed,
 * an empty or repeated column name); t is then empty.
 */
HK_MUST_CHECK int csv_table_parse(const char *p, size_t n, struct csv_table *t, const char **why);
/* Index of the column called name (exact match), or SIZE_MAX. */
size_t csv_table_column(const struct csv_table *t, const char *name);
/* Record a refused row (used by callers with checks of their own); kept in line order. */
HK_PRINTF(3, 4) void csv_table_add_bad(struct csv_table *t, size_t line, const char *fmt, ...);

/* True when p[0..n) is well-formed UTF-8 (no overlongs, surrogates or values over U+10FFFF). */
bool csv_is_utf8(const char *p, size_t n);

#endif
