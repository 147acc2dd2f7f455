/*
 * cli_fmt.h - pure helpers of the admin commands: option parsing, time filters, query strings and
 * aligned text tables.
 *
 * No I/O except the time zone database (local times, as people read them). Ownership: a table
 * copies its cells; cli_table_fini() frees them. Thread: any.
 */
#ifndef HK_CLI_FMT_H
#define HK_CLI_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"

/* ---- options ---- */

/* One "--name VALUE" (or "--name=VALUE") option, or a flag "--name" (value NULL). */
struct cli_opt {
	const char *name;    /* "--status" */
	bool takes_value;
	const char **value;  /* where the value goes (last one wins); for flags "1" */
};

/*
 * Parse argv[1..argc) against opts: options anywhere, "--" ends them; the other arguments go to
 * pos[] in order (at most max_pos; more is an error). 0 on success; -1 with *bad (the argument at
 * fault) and *why (static) on an unknown option, a missing value or too many arguments.
 */
int cli_opts_parse(const struct cli_opt *opts, size_t n_opts, int argc, char **argv,
    const char **pos, size_t max_pos, size_t *n_pos, const char **bad, const char **why);

/* ---- time ---- */

/*
 * A time filter as milliseconds since the epoch: RFC 3339 ("2024-05-01T12:00:00Z", an offset,
 * a fraction), a date "YYYY-MM-DD" (local midnight), or a duration back from now_ms ("90s",
 * "15m", "2h", "3d"). -1 when it is none of those.
 */
int cli_time_parse(const char *s, uint64_t now_ms, uint64_t *out_ms);
#define CLI_TIME_LEN 24
/* "2024-05-01T12:00:00.123Z" (UTC, for the API). */
void cli_time_rfc3339(uint64_t ms, char out[CLI_TIME_LEN + 1]);
/* "2024-05-01 14:00:00" in local time (for people); "-" for 0. */
void cli_time_local(uint64_t ms, char out[CLI_TIME_LEN + 1]);

/* ---- query strings ---- */

/* Append "&key=value" (or "?key=value" when q is empty), form-encoded. */
void cli_query_add(struct buf *q, const char *key, const char *value);

/* ---- tables ---- */

struct cli_table {
	size_t n_cols;
	char **cells;   /* n_rows * n_cols, row-major; the first row is the header */
	size_t n_rows, cap_rows;
};

void cli_table_init(struct cli_table *t, size_t n_cols);
void cli_table_fini(struct cli_table *t);
/* Append a row of n_cols cells (NULL: empty). Control bytes are shown as '?'. */
void cli_table_add(struct cli_table *t, const char *const *cells);
/*
 * Print the table into out: columns separated by two spaces and padded to their widest cell (in
 * characters: UTF-8 continuation bytes do not count), the last column unpadded, cells longer
 * than max_width characters (0: no limit) cut with "...". Lines end in "\n".
 */
void cli_table_print(const struct cli_table *t, size_t max_width, struct buf *out);

#endif
