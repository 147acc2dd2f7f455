/*
 * maillog.c - the email log writer.
 *
 * The loop copies each call into an item on a FIFO it owns. At most one batch (up to
 * MAILLOG_BATCH_MAX items, whatever is queued) is in flight on the 1-thread "db" pool: the writer
 * applies it in one transaction with statements prepared once; its completion on the loop runs the
 * barriers it carried and submits the next batch. So batches grow by themselves while a commit
 * (an fsync of the WAL) is in progress, and the loop never waits for SQLite.
 *
 * Failures: an item the database refuses (a constraint: an event for a message it never saw) is
 * skipped with a warning. A batch that fails otherwise is rolled back and tried once more; then its
 * events are dropped with log_error and counted: the spool stays the source of truth. A barrier
 * reports -1 when any batch completing after it was queued failed, i.e. when something queued
 * before it may be missing.
 *
 * Message status = the worst unfinished status of its recipients, held > deferred > queued; when
 * every recipient is final, the worst final one, bounced > expired > deleted > suppressed > sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "maillog.h"
#include "db_sqlite.h"
#include "../util/buf.h"
#include "../util/id.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define MAILLOG_BATCH_MAX 512
#define MAILLOG_RETRY_PAUSE_MS 100

enum ml_kind { ML_RECEIVED, ML_ATTEMPT, ML_STATUS, ML_RESENT, ML_BARRIER, ML_BODY_KEPT, ML_PRUNE };

/* String slots of each kind (indexes into item->s). */
enum { MLR_FROM, MLR_SUBJECT, MLR_SOURCE, MLR_LISTENER, MLR_USER, MLR_CLIENT, MLR_HELO,
	MLR_ENVID, MLR_RCPT0 };
enum { MLA_RCPT, MLA_UPSTREAM, MLA_HOST, MLA_ADDR, MLA_TLS, MLA_ENHANCED, MLA_TEXT, MLA_RESULT,
	MLA_COUNT };
enum { MLS_RCPT, MLS_DETAIL, MLS_COUNT };

/* One queued call. Strings and recipient states live in the same allocation. */
struct ml_item {
	struct ml_item *next;
	enum ml_kind kind;
	enum maillog_event ev;
	uint64_t id;
	uint64_t time_ms;
	uint64_t num; /* received: size; attempt: duration_ms; resent: the original id */
	int code;
	bool flag; /* attempt: maybe_delivered */
	size_t n_rcpts;              /* received */
	unsigned char *rcpt_states;  /* received: enum spool_rcpt_state per recipient */
	void (*done_cb)(void *arg, int rc); /* barrier */
	void *arg;
	uint64_t fail_mark; /* barrier: ml->failed_batches when queued */
	struct ml_prune *prune; /* prune: the writer's result */
	size_t n_s;
	const char **s;
};

/* A retention batch: cutoff and limit in, deleted IDs out (written by the writer thread). */
struct ml_prune {
	uint64_t cutoff_ms;
	size_t limit;
	uint64_t *ids;
	size_t n;
	maillog_prune_fn done_cb;
	void *arg;
};

struct ml_batch {
	struct maillog *ml;
	struct ml_item *head;
	size_t n_items;
	size_t n_events; /* items that write (not barriers) */
	int rc;
};

/* Statements of the writer connection, prepared once. */
enum ml_stmt {
	ML_ST_BEGIN,
	ML_ST_COMMIT,
	ML_ST_ROLLBACK,
	ML_ST_INS_MSG,
	ML_ST_INS_RCPT,
	ML_ST_INS_FTS,
	ML_ST_INS_EVENT,
	ML_ST_RCPT_STATUS_ONE,
	ML_ST_RCPT_STATUS_ALL,
	ML_ST_RCPT_ATTEMPT_ONE,
	ML_ST_RCPT_ATTEMPT_ALL,
	ML_ST_SEL_RCPT_STATUS,
	ML_ST_UPD_MSG_STATUS,
	ML_ST_SET_RESENT,
	ML_ST_SET_BODY_KEPT,
	ML_ST_SEL_PRUNE,
	ML_ST_DEL_MSG,
	ML_ST_COUNT,
};

/*
 * Which recipients a status event may change. DESIGN.md 14: final is final, except that a later
 * verdict about a delivered recipient (a DSN or complaint coming back) may still say bounced or
 * suppressed.
 */
enum ml_scope {
	ML_SCOPE_NONE,       /* event only */
	ML_SCOPE_ANY,        /* every matching recipient */
	ML_SCOPE_UNFINISHED, /* queued, deferred, held */
	ML_SCOPE_ACTIVE,     /* queued, deferred */
	ML_SCOPE_HELD,       /* held */
};

struct ml_status_rule {
	const char *name;   /* event type in the events table */
	const char *status; /* new recipient status */
	enum ml_scope scope;
};

static const struct ml_status_rule ml_rules[MAILLOG_EVENT_COUNT] = {
	[MAILLOG_RECEIVED] = { .name = "received", .scope = ML_SCOPE_NONE },
	[MAILLOG_ATTEMPT] = { .name = "attempt", .scope = ML_SCOPE_NONE },
	[MAILLOG_SENT] = { .name = "sent", .status = "sent", .scope = ML_SCOPE_ANY },
	[MAILLOG_DEFERRED] = { .name = "deferred", .status = "deferred",
			       .scope = ML_SCOPE_ACTIVE },
	[MAILLOG_BOUNCED] = { .name = "bounced", .status = "bounced", .scope = ML_SCOPE_ANY },
	[MAILLOG_EXPIRED] = { .name = "expired", .status = "expired",
			      .scope = ML_SCOPE_UNFINISHED },
	[MAILLOG_RESENT] = { .name = "resent", .scope = ML_SCOPE_NONE },
	[MAILLOG_SUPPRESSED] = { .name = "suppressed", .status = "suppressed",
				 .scope = ML_SCOPE_ANY },
	[MAILLOG_COMPLAINT] = { .name = "complaint", .scope = ML_SCOPE_NONE },
	[MAILLOG_HELD] = { .name = "held", .status = "held", .scope = ML_SCOPE_ACTIVE },
	[MAILLOG_RELEASED] = { .name = "released", .status = "queued", .scope = ML_SCOPE_HELD },
	[MAILLOG_DELETED] = { .name = "deleted", .status = "deleted",
			      .scope = ML_SCOPE_UNFINISHED },
};

/* Status ranks: unfinished ones above every final one, worse is higher. */
struct ml_rank {
	const char *status;
	int rank;
};

static const struct ml_rank ml_ranks[] = {
	{ "held", 103 }, { "deferred", 102 }, { "queued", 101 },
	{ "bounced", 5 }, { "expired", 4 }, { "deleted", 3 }, { "suppressed", 2 }, { "sent", 1 },
};

static const char *const ml_sql[ML_ST_COUNT] = {
	[ML_ST_BEGIN] = "BEGIN IMMEDIATE",
	[ML_ST_COMMIT] = "COMMIT",
	[ML_ST_ROLLBACK] = "ROLLBACK",
	[ML_ST_INS_MSG] =
		"INSERT INTO messages(id, received_ms, mail_from, subject, size, source, listener,"
		" auth_user, client, helo, envid, n_rcpts, status, updated_ms)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?2)"
		" ON CONFLICT(id) DO NOTHING",
	[ML_ST_INS_RCPT] =
		"INSERT INTO recipients(message_id, idx, address, status, updated_ms)"
		" VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
	[ML_ST_INS_FTS] =
		"INSERT INTO messages_fts(rowid, subject, mail_from, rcpt_to) VALUES (?1, ?2, ?3, ?4)",
	[ML_ST_INS_EVENT] =
		"INSERT INTO events(message_id, time_ms, type, rcpt, n_rcpts, upstream, remote_host,"
		" remote_addr, tls, code, enhanced, text, duration_ms, result, maybe_delivered)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
	/* ?4: scope (enum ml_scope), so one statement serves every rule. */
	[ML_ST_RCPT_STATUS_ONE] =
		"UPDATE recipients SET status = ?1, updated_ms = ?2"
		" WHERE message_id = ?3 AND address = ?5 AND (?4 = 1"
		" OR (?4 = 2 AND status IN ('queued', 'deferred', 'held'))"
		" OR (?4 = 3 AND status IN ('queued', 'deferred'))"
		" OR (?4 = 4 AND status = 'held'))",
	[ML_ST_RCPT_STATUS_ALL] =
		"UPDATE recipients SET status = ?1, updated_ms = ?2"
		" WHERE message_id = ?3 AND (?4 = 1"
		" OR (?4 = 2 AND status IN ('queued', 'deferred', 'held'))"
		" OR (?4 = 3 AND status IN ('queued', 'deferred'))"
		" OR (?4 = 4 AND status = 'held'))",
	[ML_ST_RCPT_ATTEMPT_ONE] =
		"UPDATE recipients SET attempts = attempts + 1, last_code = ?3, last_enhanced = ?4,"
		" last_text = ?5, upstream = ?6, remote_host = ?7,"
		" maybe_delivered = maybe_delivered OR ?8, updated_ms = ?2"
		" WHERE message_id = ?1 AND address = ?9",
	[ML_ST_RCPT_ATTEMPT_ALL] =
		"UPDATE recipients SET attempts = attempts + 1, last_code = ?3, last_enhanced = ?4,"
		" last_text = ?5, upstream = ?6, remote_host = ?7,"
		" maybe_delivered = maybe_delivered OR ?8, updated_ms = ?2"
		" WHERE message_id = ?1 AND status IN ('queued', 'deferred')",
	[ML_ST_SEL_RCPT_STATUS] = "SELECT status FROM recipients WHERE message_id = ?1",
	[ML_ST_UPD_MSG_STATUS] =
		"UPDATE messages SET status = ?2, updated_ms = ?3 WHERE id = ?1 AND status IS NOT ?2",
	[ML_ST_SET_RESENT] = "UPDATE messages SET resent_from = ?2 WHERE id = ?1",
	[ML_ST_SET_BODY_KEPT] = "UPDATE messages SET body_kept = 1 WHERE id = ?1",
	/*
	 * Finished before the cutoff: every recipient final and nothing logged since. The range
	 * over messages_received bounds the work to messages received before the cutoff.
	 */
	[ML_ST_SEL_PRUNE] =
		"SELECT m.id FROM messages m INDEXED BY messages_received"
		" WHERE m.received_ms < ?1 AND m.updated_ms < ?1"
		" AND m.status IN ('sent', 'bounced', 'expired', 'deleted', 'suppressed')"
		" AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id"
		"  AND r.status NOT IN ('sent', 'bounced', 'expired', 'deleted', 'suppressed'))"
		" AND NOT EXISTS (SELECT 1 FROM events e WHERE e.message_id = m.id"
		"  AND e.time_ms >= ?1)"
		" ORDER BY m.id LIMIT ?2",
	/* Recipients and events go by ON DELETE CASCADE, the search row by a trigger. */
	[ML_ST_DEL_MSG] = "DELETE FROM messages WHERE id = ?1",
};

struct maillog {
	/* Loop-owned. */
	struct jobs *hub;
	struct jobs_pool *pool;
	struct ml_item *q_head, *q_tail;
	size_t q_len;       /* items queued, not yet submitted */
	size_t q_events;    /* of which write something */
	size_t inflight;    /* events in the batch being written */
	bool busy;          /* a batch is in flight */
	uint64_t failed_batches;
	uint64_t dropped;   /* events lost to failed batches */
	char *path;
	sqlite3 *rdb;       /* read connection, opened on first use */
	/* Writer-owned while a batch is in flight (the jobs queue hands it over). */
	sqlite3 *wdb;
	sqlite3_stmt *st[ML_ST_COUNT];
	struct buf scratch;
};

const char *
maillog_event_name(enum maillog_event ev)
{
	return (unsigned)ev < MAILLOG_EVENT_COUNT ? ml_rules[ev].name : "unknown";
}

/* ---- items (loop) ---- */

static struct ml_item *
ml_item_new(enum ml_kind kind, size_t n_s, const char *const *s, size_t n_states)
{
	size_t head = sizeof(struct ml_item) + n_s * sizeof(char *);
	size_t size = head + n_states, i;
	struct ml_item *it;
	char *p;

	for (i = 0; i < n_s; i++)
		size += s[i] ? strlen(s[i]) + 1 : 0;
	it = xcalloc(1, size);
	it->kind = kind;
	it->n_s = n_s;
	it->s = (const char **)(it + 1);
	it->rcpt_states = (unsigned char *)it + head;
	p = (char *)it + head + n_states;
	for (i = 0; i < n_s; i++) {
		size_t n;

		if (s[i] == NULL)
			continue;
		n = strlen(s[i]) + 1;
		memcpy(p, s[i], n);
		it->s[i] = p;
		p += n;
	}
	return it;
}

static void ml_submit(struct maillog *ml);

static void
ml_enqueue(struct maillog *ml, struct ml_item *it)
{
	it->next = NULL;
	if (ml->q_tail)
		ml->q_tail->next = it;
	else
		ml->q_head = it;
	ml->q_tail = it;
	ml->q_len++;
	if (it->kind != ML_BARRIER)
		ml->q_events++;
	if (!ml->busy)
		ml_submit(ml);
}

/* ---- writer thread ---- */

static void
ml_bind_text(sqlite3_stmt *st, int col, const char *s)
{
	if (s)
		sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, col);
}

/* Step a statement without result rows and reset it; returns the step's result code. */
static int
ml_step(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

static int
ml_rank(const char *status)
{
	size_t i;

	for (i = 0; i < HK_ARRAY_LEN(ml_ranks); i++)
		if (strcmp(ml_ranks[i].status, status) == 0)
			return ml_ranks[i].rank;
	return 0;
}

static const char *
ml_worst(const char *a, const char *b)
{
	return a == NULL || ml_rank(b) > ml_rank(a) ? b : a;
}

/* Recompute a message's status from its recipients. */
static int
ml_update_message(struct maillog *ml, uint64_t id, uint64_t time_ms)
{
	sqlite3_stmt *st = ml->st[ML_ST_SEL_RCPT_STATUS];
	char worst[16] = "";
	int rc, best = -1;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);
		int r = s ? ml_rank(s) : -1;

		/* Copied: the row's text is gone after the next step. */
		if (r > best) {
			best = r;
			snprintf(worst, sizeof(worst), "%s", s);
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return rc;
	if (best < 0)
		return SQLITE_DONE;
	st = ml->st[ML_ST_UPD_MSG_STATUS];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	sqlite3_bind_text(st, 2, worst, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time_ms);
	return ml_step(st);
}

static int
ml_insert_event(struct maillog *ml, uint64_t id, uint64_t time_ms, const char *type,
    const char *rcpt, int n_rcpts, const char *text)
{
	sqlite3_stmt *st = ml->st[ML_ST_INS_EVENT];

	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time_ms);
	sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
	ml_bind_text(st, 4, rcpt);
	sqlite3_bind_int(st, 5, n_rcpts);
	ml_bind_text(st, 12, text);
	sqlite3_bind_int(st, 15, 0);
	return ml_step(st);
}

static int
ml_write_received(struct maillog *ml, const struct ml_item *it)
{
	sqlite3_stmt *st = ml->st[ML_ST_INS_MSG];
	const char *worst = NULL;
	size_t i;
	int rc;

	for (i = 0; i < it->n_rcpts; i++)
		worst = ml_worst(worst, spool_rcpt_state_name(it->rcpt_states[i]));
	sqlite3_bind_int64(st, 1, (sqlite3_int64)it->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)it->time_ms);
	ml_bind_text(st, 3, it->s[MLR_FROM]);
	ml_bind_text(st, 4, it->s[MLR_SUBJECT]);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)it->num);
	ml_bind_text(st, 6, it->s[MLR_SOURCE]);
	ml_bind_text(st, 7, it->s[MLR_LISTENER]);
	ml_bind_text(st, 8, it->s[MLR_USER]);
	ml_bind_text(st, 9, it->s[MLR_CLIENT]);
	ml_bind_text(st, 10, it->s[MLR_HELO]);
	ml_bind_text(st, 11, it->s[MLR_ENVID]);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)it->n_rcpts);
	sqlite3_bind_text(st, 13, worst ? worst : "queued", -1, SQLITE_STATIC);
	if ((rc = ml_step(st)) != SQLITE_DONE)
		return rc;
	/* Already logged (re-entered from the spool at start): keep the first record. */
	if (sqlite3_changes(ml->wdb) == 0)
		return SQLITE_DONE;

	buf_reset(&ml->scratch);
	st = ml->st[ML_ST_INS_RCPT];
	for (i = 0; i < it->n_rcpts; i++) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)it->id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
		ml_bind_text(st, 3, it->s[MLR_RCPT0 + i]);
		sqlite3_bind_text(st, 4, spool_rcpt_state_name(it->rcpt_states[i]), -1,
		    SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)it->time_ms);
		if ((rc = ml_step(st)) != SQLITE_DONE)
			return rc;
		if (i > 0)
			buf_putc(&ml->scratch, ' ');
		buf_append_str(&ml->scratch, it->s[MLR_RCPT0 + i]);
	}
	st = ml->st[ML_ST_INS_FTS];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)it->id);
	ml_bind_text(st, 2, it->s[MLR_SUBJECT]);
	ml_bind_text(st, 3, it->s[MLR_FROM]);
	sqlite3_bind_text(st, 4, ml->scratch.ptr ? ml->scratch.ptr : "", -1, SQLITE_STATIC);
	if ((rc = ml_step(st)) != SQLITE_DONE)
		return rc;
	return ml_insert_event(ml, it->id, it->time_ms, "received", NULL, (int)it->n_rcpts,
	    it->s[MLR_SOURCE]);
}

static int
ml_write_attempt(struct maillog *ml, const struct ml_item *it)
{
	bool one = it->s[MLA_RCPT] != NULL;
	sqlite3_stmt *st = ml->st[one ? ML_ST_RCPT_ATTEMPT_ONE : ML_ST_RCPT_ATTEMPT_ALL];
	int rc, n;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)it->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)it->time_ms);
	sqlite3_bind_int(st, 3, it->code);
	ml_bind_text(st, 4, it->s[MLA_ENHANCED]);
	ml_bind_text(st, 5, it->s[MLA_TEXT]);
	ml_bind_text(st, 6, it->s[MLA_UPSTREAM]);
	ml_bind_text(st, 7, it->s[MLA_HOST]);
	sqlite3_bind_int(st, 8, it->flag);
	if (one)
		ml_bind_text(st, 9, it->s[MLA_RCPT]);
	if ((rc = ml_step(st)) != SQLITE_DONE)
		return rc;
	n = sqlite3_changes(ml->wdb);

	st = ml->st[ML_ST_INS_EVENT];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)it->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)it->time_ms);
	sqlite3_bind_text(st, 3, "attempt", -1, SQLITE_STATIC);
	ml_bind_text(st, 4, it->s[MLA_RCPT]);
	/* One recipient named: it counts once toward quotas even if listed twice. */
	sqlite3_bind_int(st, 5, one && n > 1 ? 1 : n);
	ml_bind_text(st, 6, it->s[MLA_UPSTREAM]);
	ml_bind_text(st, 7, it->s[MLA_HOST]);
	ml_bind_text(st, 8, it->s[MLA_ADDR]);
	ml_bind_text(st, 9, it->s[MLA_TLS]);
	sqlite3_bind_int(st, 10, it->code);
	ml_bind_text(st, 11, it->s[MLA_ENHANCED]);
	ml_bind_text(st, 12, it->s[MLA_TEXT]);
	sqlite3_bind_int64(st, 13, (sqlite3_int64)it->num);
	ml_bind_text(st, 14, it->s[MLA_RESULT]);
	sqlite3_bind_int(st, 15, it->flag);
	return ml_step(st);
}

static int
ml_write_status(struct maillog *ml, const struct ml_item *it)
{
	const struct ml_status_rule *rule = &ml_rules[it->ev];
	const char *rcpt = it->s[MLS_RCPT];
	int rc, n = 0;

	if (rule->scope != ML_SCOPE_NONE) {
		sqlite3_stmt *st = ml->st[rcpt ? ML_ST_RCPT_STATUS_ONE : ML_ST_RCPT_STATUS_ALL];

		sqlite3_bind_text(st, 1, rule->status, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)it->time_ms);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)it->id);
		sqlite3_bind_int(st, 4, (int)rule->scope);
		if (rcpt)
			sqlite3_bind_text(st, 5, rcpt, -1, SQLITE_STATIC);
		if ((rc = ml_step(st)) != SQLITE_DONE)
			return rc;
		n = sqlite3_changes(ml->wdb);
	}
	if ((rc = ml_insert_event(ml, it->id, it->time_ms, rule->name, rcpt, n,
	    it->s[MLS_DETAIL])) != SQLITE_DONE)
		return rc;
	if (n == 0)
		return SQLITE_DONE;
	return ml_update_message(ml, it->id, it->time_ms);
}

static int
ml_write_resent(struct maillog *ml, const struct ml_item *it)
{
	sqlite3_stmt *st = ml->st[ML_ST_SET_RESENT];
	char new_hex[ID_HEX_LEN + 1], old_hex[ID_HEX_LEN + 1];
	int rc;

	id_format(it->id, new_hex);
	id_format(it->num, old_hex);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)it->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)it->num);
	if ((rc = ml_step(st)) != SQLITE_DONE)
		return rc;
	if ((rc = ml_insert_event(ml, it->num, it->time_ms, "resent", NULL, 0,
	    new_hex)) != SQLITE_DONE)
		return rc;
	return ml_insert_event(ml, it->id, it->time_ms, "resent", NULL, 0, old_hex);
}

static int
ml_write_body_kept(struct maillog *ml, const struct ml_item *it)
{
	sqlite3_stmt *st = ml->st[ML_ST_SET_BODY_KEPT];

	sqlite3_bind_int64(st, 1, (sqlite3_int64)it->id);
	return ml_step(st);
}

static int
ml_write_prune(struct maillog *ml, const struct ml_item *it)
{
	struct ml_prune *pr = it->prune;
	sqlite3_stmt *st = ml->st[ML_ST_SEL_PRUNE];
	size_t i;
	int rc = SQLITE_DONE;

	/* A retried batch starts over. */
	pr->n = 0;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)pr->cutoff_ms);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)pr->limit);
	while (pr->n < pr->limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
		pr->ids[pr->n++] = (uint64_t)sqlite3_column_int64(st, 0);
	if (pr->n == pr->limit)
		rc = SQLITE_DONE;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		pr->n = 0;
		return rc;
	}
	st = ml->st[ML_ST_DEL_MSG];
	for (i = 0; i < pr->n; i++) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)pr->ids[i]);
		if ((rc = ml_step(st)) != SQLITE_DONE) {
			pr->n = 0;
			return rc;
		}
	}
	return SQLITE_DONE;
}

static int
ml_write_item(struct maillog *ml, const struct ml_item *it)
{
	switch (it->kind) {
	case ML_RECEIVED:
		return ml_write_received(ml, it);
	case ML_ATTEMPT:
		return ml_write_attempt(ml, it);
	case ML_STATUS:
		return ml_write_status(ml, it);
	case ML_RESENT:
		return ml_write_resent(ml, it);
	case ML_BODY_KEPT:
		return ml_write_body_kept(ml, it);
	case ML_PRUNE:
		return ml_write_prune(ml, it);
	case ML_BARRIER:
		return SQLITE_DONE;
	}
	hk_panic("maillog item kind %d", (int)it->kind);
}

static const char *
ml_item_type(const struct ml_item *it)
{
	switch (it->kind) {
	case ML_RECEIVED: return "received";
	case ML_ATTEMPT: return "attempt";
	case ML_STATUS: return maillog_event_name(it->ev);
	case ML_RESENT: return "resent";
	case ML_BODY_KEPT: return "body_kept";
	case ML_PRUNE: return "prune";
	case ML_BARRIER: return "barrier";
	}
	return "unknown";
}

/* One try at the whole batch in one transaction. */
static int
ml_write_batch(struct maillog *ml, struct ml_batch *b, struct hk_err *err)
{
	const struct ml_item *it;
	int rc;

	if ((rc = ml_step(ml->st[ML_ST_BEGIN])) != SQLITE_DONE)
		return db_sqlite_fail(err, ml->wdb, rc, "begin");
	for (it = b->head; it; it = it->next) {
		char hex[ID_HEX_LEN + 1];

		rc = ml_write_item(ml, it);
		if (rc == SQLITE_DONE)
			continue;
		id_format(it->id, hex);
		/* The statement alone failed; the transaction goes on without this item. */
		if ((rc & 0xff) == SQLITE_CONSTRAINT) {
			log_warn("maillog", "event_refused", "qid=%s type=%s err=%s", hex,
			    ml_item_type(it), log_q(sqlite3_errmsg(ml->wdb)));
			continue;
		}
		db_sqlite_fail(err, ml->wdb, rc, "write qid=%s", hex);
		goto fail;
	}
	if ((rc = ml_step(ml->st[ML_ST_COMMIT])) != SQLITE_DONE) {
		db_sqlite_fail(err, ml->wdb, rc, "commit");
		goto fail;
	}
	return 0;
fail:
	if (!sqlite3_get_autocommit(ml->wdb))
		ml_step(ml->st[ML_ST_ROLLBACK]);
	return -1;
}

static void
ml_batch_work(void *arg)
{
	struct ml_batch *b = arg;
	struct maillog *ml = b->ml;
	struct timespec pause = { 0, MAILLOG_RETRY_PAUSE_MS * 1000000L };
	struct hk_err err = { 0 };

	b->rc = 0;
	if (b->n_events == 0)
		return;
	if (ml_write_batch(ml, b, &err) == 0)
		return;
	log_warn("maillog", "batch_failed", "sess=db events=%zu err=%s action=%s", b->n_events,
	    log_q(err.text), log_q("retrying once"));
	nanosleep(&pause, NULL);
	if (ml_write_batch(ml, b, &err) == 0)
		return;
	log_error("maillog", "batch_dropped", "sess=db events=%zu err=%s errno=%d action=%s",
	    b->n_events, log_q(err.text), err.sys_errno,
	    log_q("events lost from the email log; the spool still has the mail"));
	b->rc = -1;
}

/* ---- completion (loop) ---- */

static void
ml_batch_done(void *arg)
{
	struct ml_batch *b = arg;
	struct maillog *ml = b->ml;
	struct ml_item *it, *next;

	HK_ASSERT_LOOP();
	if (b->rc == -1) {
		ml->failed_batches++;
		ml->dropped += b->n_events;
	}
	ml->busy = false;
	ml->inflight = 0;
	for (it = b->head; it; it = next) {
		next = it->next;
		if (it->kind == ML_BARRIER)
			it->done_cb(it->arg, ml->failed_batches != it->fail_mark ? -1 : 0);
		if (it->kind == ML_PRUNE) {
			struct ml_prune *pr = it->prune;

			if (b->rc == -1)
				pr->n = 0;
			pr->done_cb(pr->arg, b->rc, pr->ids, pr->n);
			free(pr->ids);
			free(pr);
		}
		free(it);
	}
	free(b);
	if (!ml->busy && ml->q_head != NULL)
		ml_submit(ml);
}

static void
ml_submit(struct maillog *ml)
{
	struct ml_batch *b = xcalloc(1, sizeof(*b));
	struct ml_item *it = ml->q_head, *last = NULL;

	HK_ASSERT(!ml->busy && it != NULL);
	b->ml = ml;
	b->head = it;
	while (it && b->n_items < MAILLOG_BATCH_MAX) {
		b->n_items++;
		if (it->kind != ML_BARRIER)
			b->n_events++;
		last = it;
		it = it->next;
	}
	last->next = NULL;
	ml->q_head = it;
	if (it == NULL)
		ml->q_tail = NULL;
	ml->q_len -= b->n_items;
	ml->q_events -= b->n_events;
	ml->inflight = b->n_events;
	ml->busy = true;
	jobs_pool_submit(ml->pool, ml_batch_work, ml_batch_done, b);
}

/* ---- public ---- */

static int
ml_prepare_all(struct maillog *ml, struct hk_err *err)
{
	size_t i;

	for (i = 0; i < ML_ST_COUNT; i++)
		if (db_sqlite_prepare(ml->wdb, ml_sql[i], &ml->st[i], err) == -1)
			return -1;
	return 0;
}

static void
ml_finalize_all(struct maillog *ml)
{
	size_t i;

	for (i = 0; i < ML_ST_COUNT; i++) {
		sqlite3_finalize(ml->st[i]);
		ml->st[i] = NULL;
	}
}

struct maillog *
maillog_open(const char *state_dir, struct jobs *hub, struct hk_err *err)
{
	struct maillog *ml;
	struct stat sb;
	int fd;

	HK_ASSERT_LOOP();
	if (stat(state_dir, &sb) == -1) {
		hk_err_sys(err, errno, "state directory %s", state_dir);
		return NULL;
	}
	if (!S_ISDIR(sb.st_mode)) {
		hk_err_sys(err, ENOTDIR, "state directory %s", state_dir);
		return NULL;
	}
	/* SQLite needs to create -wal and -shm files next to the database. */
	if (access(state_dir, W_OK | X_OK) == -1) {
		hk_err_sys(err, errno, "state directory %s is not writable", state_dir);
		return NULL;
	}
	ml = xcalloc(1, sizeof(*ml));
	ml->hub = hub;
	ml->path = xasprintf("%s/%s", state_dir, DB_SQLITE_FILE);
	/*
	 * Addresses and subjects are private: create the file 0640 before SQLite would make it
	 * 0644; its -wal and -shm files take the same mode. An empty file is an empty database.
	 */
	fd = open(ml->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd == -1) {
		hk_err_sys(err, errno, "open %s", ml->path);
		goto fail;
	}
	close(fd);
	ml->wdb = db_sqlite_open(ml->path, false, err);
	if (ml->wdb == NULL)
		goto fail;
	if (ml_prepare_all(ml, err) == -1)
		goto fail;
	ml->pool = jobs_pool_new(hub, "db", 1);
	log_info("maillog", "opened", "sess=main path=%s version=%d", log_q(ml->path),
	    db_sqlite_latest_version());
	return ml;
fail:
	ml_finalize_all(ml);
	db_sqlite_close(ml->wdb);
	free(ml->path);
	free(ml);
	return NULL;
}

void
maillog_close(struct maillog *ml)
{
	if (ml == NULL)
		return;
	HK_ASSERT_LOOP();
	/* Flush: completions of other pools may run here too; this is shutdown. */
	while (ml->busy || ml->q_head != NULL) {
		if (!ml->busy)
			ml_submit(ml);
		jobs_wait_completions(ml->hub);
	}
	jobs_pool_free(ml->pool);
	if (ml->dropped > 0)
		log_error("maillog", "closed_with_losses", "sess=main dropped=%llu batches=%llu",
		    (unsigned long long)ml->dropped, (unsigned long long)ml->failed_batches);
	ml_finalize_all(ml);
	/* Lets the planner keep statistics current for the search indexes. */
	if (db_sqlite_exec(ml->wdb, "PRAGMA optimize", NULL) == -1)
		log_warn("maillog", "optimize_failed", "sess=main");
	db_sqlite_close(ml->wdb);
	db_sqlite_close(ml->rdb);
	buf_fini(&ml->scratch);
	free(ml->path);
	free(ml);
}

void
maillog_received(struct maillog *ml, const struct spool_env *env, const char *subject)
{
	const char **s;
	struct ml_item *it;
	size_t i, n = MLR_RCPT0 + env->n_rcpts;

	HK_ASSERT_LOOP();
	s = xcalloc(n, sizeof(*s));
	s[MLR_FROM] = env->from ? env->from : "";
	s[MLR_SUBJECT] = subject ? subject : "";
	s[MLR_SOURCE] = env->source ? env->source : "";
	s[MLR_LISTENER] = env->listener;
	s[MLR_USER] = env->auth_user;
	s[MLR_CLIENT] = env->client;
	s[MLR_HELO] = env->helo;
	s[MLR_ENVID] = env->envid;
	for (i = 0; i < env->n_rcpts; i++)
		s[MLR_RCPT0 + i] = env->rcpts[i].addr ? env->rcpts[i].addr : "";
	it = ml_item_new(ML_RECEIVED, n, s, env->n_rcpts);
	free(s);
	it->id = env->id;
	it->time_ms = env->received_ms;
	it->num = env->size;
	it->n_rcpts = env->n_rcpts;
	for (i = 0; i < env->n_rcpts; i++)
		it->rcpt_states[i] = (unsigned char)env->rcpts[i].state;
	ml_enqueue(ml, it);
}

void
maillog_attempt(struct maillog *ml, const struct maillog_attempt *a)
{
	const char *s[MLA_COUNT] = {
		[MLA_RCPT] = a->rcpt,
		[MLA_UPSTREAM] = a->upstream,
		[MLA_HOST] = a->remote_host,
		[MLA_ADDR] = a->remote_addr,
		[MLA_TLS] = a->tls,
		[MLA_ENHANCED] = a->enhanced,
		[MLA_TEXT] = a->text,
		[MLA_RESULT] = a->result,
	};
	struct ml_item *it;

	HK_ASSERT_LOOP();
	it = ml_item_new(ML_ATTEMPT, MLA_COUNT, s, 0);
	it->id = a->id;
	it->time_ms = a->time_ms;
	it->code = a->code;
	it->num = a->duration_ms;
	it->flag = a->maybe_delivered;
	ml_enqueue(ml, it);
}

void
maillog_status(struct maillog *ml, uint64_t id, const char *rcpt, enum maillog_event ev,
    uint64_t time_ms, const char *detail)
{
	const char *s[MLS_COUNT] = { [MLS_RCPT] = rcpt, [MLS_DETAIL] = detail };
	struct ml_item *it;

	HK_ASSERT_LOOP();
	HK_ASSERT((unsigned)ev < MAILLOG_EVENT_COUNT);
	it = ml_item_new(ML_STATUS, MLS_COUNT, s, 0);
	it->ev = ev;
	it->id = id;
	it->time_ms = time_ms;
	ml_enqueue(ml, it);
}

void
maillog_resent(struct maillog *ml, uint64_t new_id, uint64_t old_id, uint64_t time_ms)
{
	struct ml_item *it;

	HK_ASSERT_LOOP();
	it = ml_item_new(ML_RESENT, 0, NULL, 0);
	it->id = new_id;
	it->num = old_id;
	it->time_ms = time_ms;
	ml_enqueue(ml, it);
}

void
maillog_body_kept(struct maillog *ml, uint64_t id)
{
	struct ml_item *it;

	HK_ASSERT_LOOP();
	it = ml_item_new(ML_BODY_KEPT, 0, NULL, 0);
	it->id = id;
	ml_enqueue(ml, it);
}

void
maillog_prune(struct maillog *ml, uint64_t cutoff_ms, size_t limit, maillog_prune_fn done_cb,
    void *arg)
{
	struct ml_prune *pr = xcalloc(1, sizeof(*pr));
	struct ml_item *it;

	HK_ASSERT_LOOP();
	HK_ASSERT(limit > 0);
	pr->cutoff_ms = cutoff_ms;
	pr->limit = limit;
	pr->ids = xcalloc(limit, sizeof(*pr->ids));
	pr->done_cb = done_cb;
	pr->arg = arg;
	it = ml_item_new(ML_PRUNE, 0, NULL, 0);
	it->prune = pr;
	ml_enqueue(ml, it);
}

void
maillog_barrier(struct maillog *ml, void (*done_cb)(void *arg, int rc), void *arg)
{
	struct ml_item *it;

	HK_ASSERT_LOOP();
	it = ml_item_new(ML_BARRIER, 0, NULL, 0);
	it->done_cb = done_cb;
	it->arg = arg;
	it->fail_mark = ml->failed_batches;
	ml_enqueue(ml, it);
}

int
maillog_upstream_counts(struct maillog *ml, uint64_t since_ms, maillog_count_fn cb, void *arg,
    struct hk_err *err)
{
	static const char sql[] =
		/* The partial index holds accepted attempts only; a range over the last day. */
		"SELECT upstream, time_ms / 60000 AS minute, sum(n_rcpts)"
		" FROM events INDEXED BY events_sent"
		" WHERE type = 'attempt' AND result = 'sent' AND time_ms >= ?1"
		" GROUP BY upstream, minute ORDER BY minute, upstream";
	sqlite3_stmt *st;
	int rc;

	HK_ASSERT_LOOP();
	if (ml->rdb == NULL) {
		ml->rdb = db_sqlite_open(ml->path, true, err);
		if (ml->rdb == NULL)
			return -1;
	}
	rc = sqlite3_prepare_v2(ml->rdb, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_sqlite_fail(err, ml->rdb, rc, "upstream counts");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)since_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *up = (const char *)sqlite3_column_text(st, 0);
		sqlite3_int64 minute = sqlite3_column_int64(st, 1);
		sqlite3_int64 count = sqlite3_column_int64(st, 2);

		if (up == NULL || minute < 0 || count <= 0)
			continue;
		cb(arg, up, (uint64_t)minute * 60000u, (uint64_t)count);
	}
	if (rc != SQLITE_DONE) {
		db_sqlite_fail(err, ml->rdb, rc, "upstream counts");
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

size_t
maillog_pending(const struct maillog *ml)
{
	return ml->q_events + ml->inflight;
}

uint64_t
maillog_dropped(const struct maillog *ml)
{
	return ml->dropped;
}
