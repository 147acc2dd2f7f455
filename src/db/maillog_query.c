/*
 * maillog_query.c - read-only queries over the email log on a worker pool.
 *
 * The loop keeps the connections (one slot per worker) and a FIFO of queries waiting for one. A
 * query takes a free slot, runs on the "dbread" pool (opening the slot's connection the first
 * time), and gives the slot back in its completion, which then starts the next waiting query.
 * Filters become bound parameters, never SQL text; free text goes through FTS5 as quoted words.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "maillog_query.h"
#include "db_sqlite.h"
#include "../util/id.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

enum mq_kind { MQ_SEARCH, MQ_MESSAGE, MQ_QUEUE };

struct mq_job {
	struct mq_job *next;
	struct maillog_query *mq;
	enum mq_kind kind;
	struct maillog_filter f; /* search */
	uint64_t id;             /* message */
	unsigned limit;          /* queue */
	size_t slot;
	sqlite3 *db; /* the slot's connection while the job holds it */
	struct maillog_result *res;
	maillog_query_done_fn done_cb;
	void *arg;
};

struct maillog_query {
	char *path;
	struct jobs *hub;
	struct jobs_pool *pool;
	sqlite3 **dbs;
	bool *busy;
	size_t n_slots;
	struct mq_job *wait_head, *wait_tail;
	size_t inflight, waiting;
};

static const char *const mq_statuses[] = {
	"queued", "deferred", "held", "sent", "bounced", "expired", "suppressed", "deleted",
};

bool
maillog_status_is_known(const char *s)
{
	size_t i;

	for (i = 0; s != NULL && i < HK_ARRAY_LEN(mq_statuses); i++) {
		if (strcmp(s, mq_statuses[i]) == 0)
			return true;
	}
	return false;
}

size_t
maillog_query_fts_quote(const char *text, struct buf *out)
{
	size_t words = 0;
	const char *p = text;

	while (*p) {
		const char *w;

		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		w = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			p++;
		if (words++)
			buf_putc(out, ' ');
		buf_putc(out, '"');
		for (; w < p; w++) {
			/* FTS5 strings: a double quote inside is written twice. */
			if (*w == '"')
				buf_putc(out, '"');
			buf_putc(out, *w);
		}
		buf_putc(out, '"');
	}
	return words;
}

void
maillog_filter_fini(struct maillog_filter *f)
{
	free(f->status);
	free(f->from);
	free(f->to);
	free(f->upstream);
	free(f->q);
	memset(f, 0, sizeof(*f));
}

static char *
mq_dup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void
mq_rows_fini(struct maillog_rows *rows)
{
	size_t i;

	for (i = 0; i < rows->n_cols * rows->n_rows; i++)
		free(rows->cells[i].s);
	for (i = 0; i < rows->n_cols; i++)
		free(rows->cols[i]);
	free(rows->cells);
	free(rows->cols);
	memset(rows, 0, sizeof(*rows));
}

void
maillog_result_free(struct maillog_result *res)
{
	size_t i;

	if (res == NULL)
		return;
	for (i = 0; i < MAILLOG_SET_COUNT; i++)
		mq_rows_fini(&res->sets[i]);
	free(res);
}

int
maillog_rows_col(const struct maillog_rows *rows, const char *name)
{
	size_t i;

	for (i = 0; i < rows->n_cols; i++) {
		if (strcmp(rows->cols[i], name) == 0)
			return (int)i;
	}
	return -1;
}

const struct maillog_cell *
maillog_rows_cell(const struct maillog_rows *rows, size_t row, size_t col)
{
	HK_ASSERT(row < rows->n_rows && col < rows->n_cols);
	return &rows->cells[row * rows->n_cols + col];
}

/* ---- worker side ---- */

/* Step st to the end, appending every row to rows (columns taken from the statement). */
static int
mq_collect(sqlite3 *db, sqlite3_stmt *st, struct maillog_rows *rows, struct hk_err *err)
{
	size_t cap = 0, c;
	int rc;

	if (rows->cols == NULL) {
		rows->n_cols = (size_t)sqlite3_column_count(st);
		rows->cols = xcalloc(rows->n_cols ? rows->n_cols : 1, sizeof(*rows->cols));
		for (c = 0; c < rows->n_cols; c++)
			rows->cols[c] = xstrdup(sqlite3_column_name(st, (int)c));
	}
	cap = rows->n_rows;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct maillog_cell *row;

		if (rows->n_rows == cap) {
			cap = cap ? cap * 2 : 16;
			rows->cells = xreallocarray(rows->cells, cap * rows->n_cols + 1,
			    sizeof(*rows->cells));
		}
		row = &rows->cells[rows->n_rows * rows->n_cols];
		for (c = 0; c < rows->n_cols; c++) {
			memset(&row[c], 0, sizeof(row[c]));
			switch (sqlite3_column_type(st, (int)c)) {
			case SQLITE_NULL:
				break;
			case SQLITE_INTEGER:
			case SQLITE_FLOAT:
				row[c].type = MAILLOG_CELL_INT;
				row[c].i = sqlite3_column_int64(st, (int)c);
				break;
			default:
				row[c].type = MAILLOG_CELL_TEXT;
				row[c].s = xstrdup((const char *)sqlite3_column_text(st, (int)c));
				break;
			}
		}
		rows->n_rows++;
	}
	if (rc != SQLITE_DONE)
		return db_sqlite_fail(err, db, rc, "query");
	return 0;
}

/* Prepare sql, bind the int64 values ints[0..n) to ?1.., collect into rows. */
static int
mq_run_ints(sqlite3 *db, const char *sql, const int64_t *ints, size_t n, struct maillog_rows *rows,
    struct hk_err *err)
{
	sqlite3_stmt *st;
	size_t i;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_sqlite_fail(err, db, rc, "prepare");
	for (i = 0; i < n; i++)
		sqlite3_bind_int64(st, (int)i + 1, ints[i]);
	rc = mq_collect(db, st, rows, err);
	sqlite3_finalize(st);
	return rc;
}

#define MQ_MSG_COLS \
	"printf('%016X', m.id) AS id, m.received_ms, m.status, m.mail_from AS \"from\"," \
	" m.subject, m.size, m.source, m.n_rcpts, m.updated_ms"

#define MQ_RCPT_COLS \
	"printf('%016X', message_id) AS message_id, address, status, attempts, upstream," \
	" last_code AS code, last_enhanced AS enhanced, last_text AS text, maybe_delivered," \
	" updated_ms"

/* Recipients of the messages in set (column "id", hex), in message order, then index. */
static int
mq_recipients_of(sqlite3 *db, struct maillog_result *res, struct hk_err *err)
{
	const struct maillog_rows *msgs = &res->sets[MAILLOG_SET_MESSAGES];
	struct buf sql = BUF_INIT;
	int64_t *ids;
	int col = maillog_rows_col(msgs, "id");
	size_t i;
	int rc;

	if (msgs->n_rows == 0 || col < 0)
		return 0;
	ids = xcalloc(msgs->n_rows, sizeof(*ids));
	buf_append_str(&sql, "SELECT " MQ_RCPT_COLS " FROM recipients WHERE message_id IN (");
	for (i = 0; i < msgs->n_rows; i++) {
		const struct maillog_cell *c = maillog_rows_cell(msgs, i, (size_t)col);
		uint64_t id = 0;

		if (c->type == MAILLOG_CELL_TEXT && id_parse(c->s, strlen(c->s), &id) == 0)
			ids[i] = (int64_t)id;
		buf_printf(&sql, "%s?%zu", i ? ", " : "", i + 1);
	}
	buf_append_str(&sql, ") ORDER BY message_id, idx");
	rc = mq_run_ints(db, sql.ptr, ids, msgs->n_rows, &res->sets[MAILLOG_SET_RECIPIENTS], err);
	buf_fini(&sql);
	free(ids);
	return rc;
}

/* How far an ID's time may be below received_ms (API mail: ID and time are taken apart). */
#define MQ_ID_SLACK_BEFORE_MS 60000ull
/* How far above: a clock stepped back by up to this much still finds every message. */
#define MQ_ID_SLACK_AFTER_MS 3600000ull

uint64_t
maillog_query_id_floor(uint64_t ms)
{
	uint64_t rel = ms > ID_EPOCH_MS ? ms - ID_EPOCH_MS : 0;

	/* 44 bits of milliseconds above 20 bits of node and sequence (id.h); clamp past 2577. */
	if (rel >= (1ull << 43))
		return (uint64_t)INT64_MAX;
	return rel << 20;
}

static int
mq_search(sqlite3 *db, const struct maillog_filter *f, struct maillog_result *res,
    struct hk_err *err)
{
	struct buf sql = BUF_INIT, fts = BUF_INIT;
	struct maillog_rows *msgs = &res->sets[MAILLOG_SET_MESSAGES];
	unsigned limit = f->limit ? f->limit : MAILLOG_QUERY_LIMIT_DEFAULT;
	sqlite3_stmt *st = NULL;
	int n = 0, rc;

	if (limit > MAILLOG_QUERY_LIMIT_MAX)
		limit = MAILLOG_QUERY_LIMIT_MAX;
	buf_append_str(&sql, "SELECT " MQ_MSG_COLS " FROM messages m WHERE 1");
	/* Each clause's parameter number follows the order of the binds below. */
	if (f->status)
		buf_printf(&sql, " AND m.status = ?%d", ++n);
	if (f->from)
		buf_printf(&sql, " AND m.mail_from = ?%d", ++n);
	if (f->to)
		buf_printf(&sql, " AND m.id IN (SELECT message_id FROM recipients"
		    " WHERE address = ?%d)", ++n);
	if (f->upstream)
		buf_printf(&sql, " AND m.id IN (SELECT message_id FROM events"
		    " WHERE type = 'attempt' AND upstream = ?%d)", ++n);
	if (f->q && maillog_query_fts_quote(f->q, &fts) > 0)
		buf_printf(&sql, " AND m.id IN (SELECT rowid FROM messages_fts"
		    " WHERE messages_fts MATCH ?%d)", ++n);
	/*
	 * A time range also bounds the ID (IDs are time-ordered, id.h), so the (status, id) and
	 * primary key orders scan only the range, newest first, instead of every newer row. The
	 * received_ms test stays exact; the ID bounds are widened (MQ_ID_SLACK_*) because an ID's
	 * time may differ from received_ms: it is taken a few ms apart for API mail, and is ahead
	 * of the clock after the clock stepped back (IDs never go backwards).
	 */
	if (f->since_ms) {
		buf_printf(&sql, " AND m.received_ms >= ?%d AND m.id >= ?%d", n + 1, n + 2);
		n += 2;
	}
	if (f->until_ms) {
		buf_printf(&sql, " AND m.received_ms < ?%d AND m.id < ?%d", n + 1, n + 2);
		n += 2;
	}
	if (f->before_id)
		buf_printf(&sql, " AND m.id < ?%d", ++n);
	/* One more than asked: its presence says there is a next page. */
	buf_printf(&sql, " ORDER BY m.id DESC LIMIT %u", limit + 1);

	rc = sqlite3_prepare_v2(db, sql.ptr, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		db_sqlite_fail(err, db, rc, "prepare search");
		goto fail;
	}
	n = 0;
	if (f->status)
		sqlite3_bind_text(st, ++n, f->status, -1, SQLITE_STATIC);
	if (f->from)
		sqlite3_bind_text(st, ++n, f->from, -1, SQLITE_STATIC);
	if (f->to)
		sqlite3_bind_text(st, ++n, f->to, -1, SQLITE_STATIC);
	if (f->upstream)
		sqlite3_bind_text(st, ++n, f->upstream, -1, SQLITE_STATIC);
	if (fts.len)
		sqlite3_bind_text(st, ++n, fts.ptr, -1, SQLITE_STATIC);
	if (f->since_ms) {
		sqlite3_bind_int64(st, ++n, (sqlite3_int64)f->since_ms);
		sqlite3_bind_int64(st, ++n, (sqlite3_int64)maillog_query_id_floor(
		    f->since_ms > MQ_ID_SLACK_BEFORE_MS ? f->since_ms - MQ_ID_SLACK_BEFORE_MS : 0));
	}
	if (f->until_ms) {
		sqlite3_bind_int64(st, ++n, (sqlite3_int64)f->until_ms);
		sqlite3_bind_int64(st, ++n, (sqlite3_int64)maillog_query_id_floor(
		    f->until_ms + MQ_ID_SLACK_AFTER_MS));
	}
	if (f->before_id)
		sqlite3_bind_int64(st, ++n, (sqlite3_int64)f->before_id);
	if (mq_collect(db, st, msgs, err) == -1)
		goto fail;
	if (msgs->n_rows > limit) {
		const struct maillog_cell *c;
		uint64_t last = 0;
		size_t k;

		/* Drop the extra row; the next page starts below the last one shown. */
		for (k = 0; k < msgs->n_cols; k++)
			free(msgs->cells[limit * msgs->n_cols + k].s);
		msgs->n_rows = limit;
		c = maillog_rows_cell(msgs, limit - 1, 0);
		if (c->type == MAILLOG_CELL_TEXT && id_parse(c->s, strlen(c->s), &last) == 0)
			res->next_cursor = last;
	}
	sqlite3_finalize(st);
	st = NULL;
	rc = mq_recipients_of(db, res, err);
	buf_fini(&sql);
	buf_fini(&fts);
	return rc;
fail:
	sqlite3_finalize(st);
	buf_fini(&sql);
	buf_fini(&fts);
	return -1;
}

static int
mq_message(sqlite3 *db, uint64_t id, struct maillog_result *res, struct hk_err *err)
{
	static const char msg_sql[] =
		"SELECT " MQ_MSG_COLS ", m.listener, m.auth_user, m.client, m.helo, m.envid,"
		" CASE WHEN m.resent_from IS NULL THEN NULL"
		" ELSE printf('%016X', m.resent_from) END AS resent_from, m.body_kept"
		" FROM messages m WHERE m.id = ?1";
	static const char rcpt_sql[] =
		"SELECT idx AS \"index\", address, status, attempts, upstream, remote_host,"
		" last_code AS code, last_enhanced AS enhanced, last_text AS text, maybe_delivered,"
		" updated_ms FROM recipients WHERE message_id = ?1 ORDER BY idx";
	static const char ev_sql[] =
		"SELECT time_ms, type, rcpt, n_rcpts, upstream, remote_host, remote_addr, tls, code,"
		" enhanced, text, duration_ms, result, maybe_delivered"
		" FROM events WHERE message_id = ?1 ORDER BY id";
	int64_t v = (int64_t)id;

	if (mq_run_ints(db, msg_sql, &v, 1, &res->sets[MAILLOG_SET_MESSAGES], err) == -1)
		return -1;
	if (res->sets[MAILLOG_SET_MESSAGES].n_rows == 0)
		return 0;
	if (mq_run_ints(db, rcpt_sql, &v, 1, &res->sets[MAILLOG_SET_RECIPIENTS], err) == -1)
		return -1;
	return mq_run_ints(db, ev_sql, &v, 1, &res->sets[MAILLOG_SET_EVENTS], err);
}

static int
mq_queue(sqlite3 *db, unsigned limit, struct maillog_result *res, struct hk_err *err)
{
	/* messages_status (status, id) serves both: unfinished rows only, oldest first. */
	static const char count_sql[] =
		"SELECT status, count(*) AS count FROM messages"
		" WHERE status IN ('queued', 'deferred', 'held') GROUP BY status";
	static const char list_sql[] =
		"SELECT " MQ_MSG_COLS " FROM messages m"
		" WHERE m.status IN ('queued', 'deferred', 'held') ORDER BY m.id LIMIT ?1";
	int64_t v = limit;

	if (mq_run_ints(db, count_sql, NULL, 0, &res->sets[MAILLOG_SET_COUNTS], err) == -1)
		return -1;
	if (limit == 0)
		return 0;
	if (mq_run_ints(db, list_sql, &v, 1, &res->sets[MAILLOG_SET_MESSAGES], err) == -1)
		return -1;
	return mq_recipients_of(db, res, err);
}

static void
mq_work(void *arg)
{
	struct mq_job *j = arg;
	struct maillog_result *res = j->res;
	int rc = -1;

	if (j->db == NULL) {
		j->db = db_sqlite_open(j->mq->path, true, &res->err);
		if (j->db == NULL) {
			res->rc = -1;
			return;
		}
	}
	switch (j->kind) {
	case MQ_SEARCH:
		rc = mq_search(j->db, &j->f, res, &res->err);
		break;
	case MQ_MESSAGE:
		rc = mq_message(j->db, j->id, res, &res->err);
		break;
	case MQ_QUEUE:
		rc = mq_queue(j->db, j->limit, res, &res->err);
		break;
	}
	res->rc = rc;
	if (rc == -1) {
		size_t i;

		for (i = 0; i < MAILLOG_SET_COUNT; i++)
			mq_rows_fini(&res->sets[i]);
		res->next_cursor = 0;
	}
}

/* ---- loop side ---- */

static void mq_done(void *arg);

/* Start j on free slot i. */
static void
mq_start(struct maillog_query *mq, struct mq_job *j, size_t i)
{
	mq->busy[i] = true;
	j->slot = i;
	j->db = mq->dbs[i];
	mq->dbs[i] = NULL;
	mq->inflight++;
	jobs_pool_submit(mq->pool, mq_work, mq_done, j);
}

static void
mq_done(void *arg)
{
	struct mq_job *j = arg;
	struct maillog_query *mq = j->mq;
	struct maillog_result *res = j->res;

	HK_ASSERT_LOOP();
	mq->dbs[j->slot] = j->db;
	mq->busy[j->slot] = false;
	mq->inflight--;
	if (res->rc == -1)
		log_warn("db", "query_failed", "sess=api err=%s", log_q(res->err.text));
	if (mq->wait_head != NULL) {
		struct mq_job *next = mq->wait_head;

		mq->wait_head = next->next;
		if (mq->wait_head == NULL)
			mq->wait_tail = NULL;
		mq->waiting--;
		mq_start(mq, next, j->slot);
	}
	j->done_cb(j->arg, res);
	maillog_filter_fini(&j->f);
	free(j);
}

static void
mq_submit(struct maillog_query *mq, struct mq_job *j)
{
	size_t i;

	HK_ASSERT_LOOP();
	j->mq = mq;
	j->res = xcalloc(1, sizeof(*j->res));
	for (i = 0; i < mq->n_slots; i++) {
		if (!mq->busy[i]) {
			mq_start(mq, j, i);
			return;
		}
	}
	if (mq->wait_tail)
		mq->wait_tail->next = j;
	else
		mq->wait_head = j;
	mq->wait_tail = j;
	mq->waiting++;
}

struct maillog_query *
maillog_query_new(const char *state_dir, struct jobs *hub, unsigned nthreads)
{
	struct maillog_query *mq = xcalloc(1, sizeof(*mq));
	size_t n = strlen(state_dir);

	if (nthreads == 0)
		nthreads = 1;
	mq->path = xasprintf("%s%s%s", state_dir, n && state_dir[n - 1] == '/' ? "" : "/",
	    DB_SQLITE_FILE);
	mq->hub = hub;
	mq->n_slots = nthreads;
	mq->dbs = xcalloc(nthreads, sizeof(*mq->dbs));
	mq->busy = xcalloc(nthreads, sizeof(*mq->busy));
	mq->pool = jobs_pool_new(hub, "dbread", nthreads);
	return mq;
}

void
maillog_query_free(struct maillog_query *mq)
{
	size_t i;

	if (mq == NULL)
		return;
	while (mq->inflight > 0)
		jobs_wait_completions(mq->hub);
	HK_ASSERT(mq->wait_head == NULL);
	jobs_pool_free(mq->pool);
	for (i = 0; i < mq->n_slots; i++)
		db_sqlite_close(mq->dbs[i]);
	free(mq->dbs);
	free(mq->busy);
	free(mq->path);
	free(mq);
}

void
maillog_query_search(struct maillog_query *mq, const struct maillog_filter *f,
    maillog_query_done_fn done_cb, void *arg)
{
	struct mq_job *j = xcalloc(1, sizeof(*j));

	j->kind = MQ_SEARCH;
	j->f = *f;
	j->f.status = mq_dup(f->status);
	j->f.from = mq_dup(f->from);
	j->f.to = mq_dup(f->to);
	j->f.upstream = mq_dup(f->upstream);
	j->f.q = mq_dup(f->q);
	j->done_cb = done_cb;
	j->arg = arg;
	mq_submit(mq, j);
}

void
maillog_query_message(struct maillog_query *mq, uint64_t id, maillog_query_done_fn done_cb,
    void *arg)
{
	struct mq_job *j = xcalloc(1, sizeof(*j));

	j->kind = MQ_MESSAGE;
	j->id = id;
	j->done_cb = done_cb;
	j->arg = arg;
	mq_submit(mq, j);
}

void
maillog_query_queue(struct maillog_query *mq, unsigned limit, maillog_query_done_fn done_cb,
    void *arg)
{
	struct mq_job *j = xcalloc(1, sizeof(*j));

	j->kind = MQ_QUEUE;
	j->limit = limit > MAILLOG_QUERY_LIMIT_MAX ? MAILLOG_QUERY_LIMIT_MAX : limit;
	j->done_cb = done_cb;
	j->arg = arg;
	mq_submit(mq, j);
}

size_t
maillog_query_pending(const struct maillog_query *mq)
{
	return mq->inflight + mq->waiting;
}
