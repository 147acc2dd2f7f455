/*
 * maillog_query.h - read-only queries over the email log for the API and the CLI (DESIGN.md 8).
 *
 * The writer (maillog.c) owns the database; this module opens its own read-only connections
 * (WAL: readers never block the writer and see only committed rows). Queries run on a small
 * worker pool ("dbread"); each running query holds one connection, handed to it by the loop and
 * handed back on completion, so a connection is used by one thread at a time and no lock is
 * needed outside src/jobs/. Results come back on the loop through a done callback.
 *
 * Results are generic tables: the column names are the JSON field names the API uses (the SQL
 * aliases choose them), and each cell is NULL, an integer or text. So the API turns any result
 * into JSON with one function, and adding a field is a change to one SELECT.
 *
 * Ownership: a struct maillog_result passed to a done callback belongs to the callback, which
 * frees it with maillog_result_free(). Filters are copied at submission.
 * Thread: loop thread, except the pure helpers (maillog_query_fts_quote, maillog_status_is_known).
 * Failure: a query that fails (database busy past the timeout, I/O error, corrupt file) completes
 * with rc -1 and err filled; the caller answers 503.
 */
#ifndef HK_MAILLOG_QUERY_H
#define HK_MAILLOG_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../jobs/jobs.h"
#include "../util/buf.h"
#include "../util/err.h"

#define MAILLOG_QUERY_LIMIT_MAX 500
#define MAILLOG_QUERY_LIMIT_DEFAULT 50

struct maillog_query;

/* Filters of GET /api/v1/messages and `hikyaku log`. NULL / 0 means "no filter". */
struct maillog_filter {
	char *status;      /* one of the statuses (maillog_status_is_known) */
	char *from;        /* sender address, case-insensitive exact match ("" = null sender) */
	char *to;          /* a recipient address, case-insensitive exact match */
	char *upstream;    /* any attempt through this upstream ("mx" for direct delivery) */
	char *q;           /* full-text words over subject, sender, recipients (all must match) */
	uint64_t since_ms; /* received at or after (ms since the epoch) */
	uint64_t until_ms; /* received before */
	uint64_t before_id; /* cursor: only IDs below this one */
	unsigned limit;    /* 1..MAILLOG_QUERY_LIMIT_MAX; 0 = the default */
};

enum maillog_cell_type { MAILLOG_CELL_NULL = 0, MAILLOG_CELL_INT, MAILLOG_CELL_TEXT };

struct maillog_cell {
	enum maillog_cell_type type;
	int64_t i;
	char *s; /* TEXT: owned, NUL-terminated */
};

/* One result table: n_rows rows of n_cols cells, row-major. */
struct maillog_rows {
	size_t n_cols, n_rows;
	char **cols;
	struct maillog_cell *cells;
};

enum maillog_set {
	MAILLOG_SET_MESSAGES = 0, /* search, queue entries, detail: the message row(s) */
	MAILLOG_SET_RECIPIENTS,   /* rows carry "message_id" (the message's hex ID) */
	MAILLOG_SET_EVENTS,       /* detail only: every event, oldest first */
	MAILLOG_SET_COUNTS,       /* queue: (status, count) */
	MAILLOG_SET_COUNT,
};

struct maillog_result {
	int rc;             /* 0, or -1 with err */
	struct hk_err err;
	struct maillog_rows sets[MAILLOG_SET_COUNT];
	uint64_t next_cursor; /* search: the ID to pass as before_id for the next page, 0 at the end */
};

typedef void (*maillog_query_done_fn)(void *arg, struct maillog_result *res);

/*
 * Prepare read-only access to <state_dir>/hikyaku.db with nthreads workers (and as many
 * connections, opened lazily on the workers). The writer must have created the schema first
 * (maillog_open). Never fails at open: a database problem shows in each query's result.
 */
struct maillog_query *maillog_query_new(const char *state_dir, struct jobs *hub, unsigned nthreads);
/*
 * Finish every query in flight (their done callbacks run, from here, before it returns: it waits
 * on hub's completions, which may run other pools' done_fns too), then close. NULL is a no-op.
 */
void maillog_query_free(struct maillog_query *mq);

/* Search: messages newest first, with their recipients. f is copied. */
void maillog_query_search(struct maillog_query *mq, const struct maillog_filter *f,
    maillog_query_done_fn done_cb, void *arg);
/* One message: the message (no row when unknown), recipients, and every event. */
void maillog_query_message(struct maillog_query *mq, uint64_t id, maillog_query_done_fn done_cb,
    void *arg);
/* Queue: counts per unfinished status, and the oldest `limit` unfinished messages. */
void maillog_query_queue(struct maillog_query *mq, unsigned limit, maillog_query_done_fn done_cb,
    void *arg);
/* Queries in flight or waiting for a connection. */
size_t maillog_query_pending(const struct maillog_query *mq);

void maillog_result_free(struct maillog_result *res);
void maillog_filter_fini(struct maillog_filter *f);
/* Index of column name in rows, or -1. */
int maillog_rows_col(const struct maillog_rows *rows, const char *name);
/* The cell at (row, col); col from maillog_rows_col. */
const struct maillog_cell *maillog_rows_cell(const struct maillog_rows *rows, size_t row,
    size_t col);

/*
 * Turn free text into an FTS5 query that cannot be a syntax error: each whitespace-separated
 * word becomes a quoted string ("" doubles a quote), all must match. Appends to out; returns the
 * number of words (0: nothing to search).
 */
size_t maillog_query_fts_quote(const char *text, struct buf *out);
/* True for the status words of DESIGN.md 14 and "deleted". */
bool maillog_status_is_known(const char *s);

/*
 * The smallest queue ID whose time (id.h) is ms (Unix ms): IDs at or after ms are >= it.
 * Searches bound IDs with it; pure.
 */
uint64_t maillog_query_id_floor(uint64_t ms);

#endif
