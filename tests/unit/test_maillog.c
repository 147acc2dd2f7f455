/* test_maillog.c - the email log: schema, statuses, barriers, quota counts, failures, search. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "db/db_sqlite.h"
#include "db/maillog.h"
#include "db/maillog_query.h"
#include "util/id.h"
#include "jobs/jobs.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/poison.h"

#define T0 1732468369123ULL
#define ID1 0x0193F2A1C4000007ULL
#define ID2 0x0193F2A1C4000008ULL

struct fx {
	char dir[64];
	char db[128];
	struct jobs *hub;
	struct maillog *ml;
};

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	struct hk_err err = { 0 };
	int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	/* Failure tests log errors on purpose; keep the test output readable. */
	if (null_fd >= 0 && getenv("HK_TEST_LOG") == NULL)
		log_set_fd(null_fd);
	snprintf(f->dir, sizeof(f->dir), "/tmp/hk-maillog-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/hikyaku.db", f->dir);
	f->hub = jobs_new();
	f->ml = maillog_open(f->dir, f->hub, &err);
	if (f->ml == NULL)
		fail_msg("open: %s", err.text);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	maillog_close(f->ml);
	jobs_free(f->hub);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* ---- direct SQLite reads ---- */

static int64_t
q_int(struct fx *f, const char *fmt, ...)
{
	char sql[512];
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* First column of the first row as text ("" for none); the result is the caller's to free. */
static char *
q_text(struct fx *f, const char *fmt, ...)
{
	char sql[512];
	sqlite3 *db;
	sqlite3_stmt *st;
	char *v = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		v = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v ? v : xstrdup("");
}

static void
assert_sql_text(struct fx *f, const char *want, const char *fmt, ...)
{
	char sql[512];
	char *got;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	got = q_text(f, "%s", sql);
	if (strcmp(got, want) != 0) {
		fail_msg("%s: got '%s', want '%s'", sql, got, want);
	}
	free(got);
}

static void
exec_sql(struct fx *f, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* ---- helpers ---- */

struct done {
	int calls;
	int rc;
	int order; /* value of *seq when called */
	int *seq;
};

static void
barrier_cb(void *arg, int rc)
{
	struct done *d = arg;

	d->calls++;
	d->rc = rc;
	if (d->seq)
		d->order = (*d->seq)++;
}

static int
flush(struct fx *f)
{
	struct done d = { 0 };

	maillog_barrier(f->ml, barrier_cb, &d);
	assert_int_equal(d.calls, 0); /* never from inside maillog_barrier() */
	while (d.calls == 0)
		jobs_wait_completions(f->hub);
	assert_int_equal(d.calls, 1);
	return d.rc;
}

static void
received(struct fx *f, uint64_t id, const char *subject, size_t n_rcpts)
{
	struct spool_env e;
	size_t i;

	memset(&e, 0, sizeof(e));
	e.id = id;
	e.received_ms = T0;
	e.from = xstrdup("App@Example.com");
	e.source = xstrdup("smtp");
	e.client = xstrdup("127.0.0.1");
	e.listener = xstrdup("127.0.0.1:2525");
	e.size = 4211;
	for (i = 0; i < n_rcpts; i++) {
		char addr[64];

		snprintf(addr, sizeof(addr), "%c@example.net", (char)('a' + i));
		spool_env_add_rcpt(&e, addr, 0, NULL);
	}
	maillog_received(f->ml, &e, subject);
	spool_env_fini(&e);
}

static void
attempt(struct fx *f, uint64_t id, const char *rcpt, const char *upstream, uint64_t t, int code,
    const char *result)
{
	struct maillog_attempt a = {
		.id = id,
		.time_ms = t,
		.rcpt = rcpt,
		.upstream = upstream,
		.remote_host = "smtp.provider.example",
		.remote_addr = "198.51.100.7",
		.tls = "TLSv1.3:TLS_AES_256_GCM_SHA384",
		.code = code,
		.enhanced = code >= 500 ? "5.1.1" : code >= 400 ? "4.2.0" : "2.0.0",
		.text = code >= 400 ? "try later" : "OK queued",
		.duration_ms = 42,
		.result = result,
	};

	maillog_attempt(f->ml, &a);
}

/* ---- tests ---- */

static void
test_migrations_fresh_and_reopen(void **state)
{
	struct fx *f = *state;
	struct hk_err err = { 0 };
	struct stat sb;
	char *mode;

	assert_int_equal(flush(f), 0);
	assert_int_equal(q_int(f, "SELECT max(version) FROM schema_version"),
	    db_sqlite_latest_version());
	assert_int_equal(q_int(f, "SELECT count(*) FROM schema_version"),
	    db_sqlite_latest_version());
	assert_int_equal(q_int(f, "SELECT count(*) FROM sqlite_master WHERE name IN "
	    "('messages', 'recipients', 'events', 'messages_fts')"), 4);
	assert_int_equal(stat(f->db, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);
	mode = q_text(f, "PRAGMA journal_mode");
	assert_string_equal(mode, "wal");
	free(mode);

	/* Re-open: nothing re-applied, data kept. */
	received(f, ID1, "hello", 1);
	maillog_close(f->ml);
	f->ml = maillog_open(f->dir, f->hub, &err);
	assert_non_null(f->ml);
	assert_int_equal(q_int(f, "SELECT count(*) FROM schema_version"),
	    db_sqlite_latest_version());
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 1);

	/* A database from a newer program is refused, not touched. */
	maillog_close(f->ml);
	f->ml = NULL;
	exec_sql(f, "INSERT INTO schema_version VALUES (999, 'future', 0)");
	assert_null(maillog_open(f->dir, f->hub, &err));
	assert_int_equal(err.code, HK_E_DATA);
	assert_non_null(strstr(err.text, "newer"));
	assert_non_null(strstr(err.text, f->db));
}

static void
test_status_sequence(void **state)
{
	struct fx *f = *state;

	received(f, ID1, "Order 1", 2);
	assert_int_equal(flush(f), 0);
	assert_sql_text(f, "queued", "SELECT status FROM messages WHERE id = %lld", (long long)ID1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM recipients WHERE message_id = %lld "
	    "AND status = 'queued'", (long long)ID1), 2);
	assert_sql_text(f, "App@Example.com", "SELECT mail_from FROM messages");
	assert_int_equal(q_int(f, "SELECT size FROM messages"), 4211);

	/* a delivered, b deferred: the message is deferred (worst unfinished). */
	attempt(f, ID1, "a@example.net", "primary", T0 + 1000, 250, "sent");
	maillog_status(f->ml, ID1, "a@example.net", MAILLOG_SENT, T0 + 1000, "250 OK");
	attempt(f, ID1, "b@example.net", "primary", T0 + 1000, 451, "deferred");
	maillog_status(f->ml, ID1, "b@example.net", MAILLOG_DEFERRED, T0 + 1000, "451 try later");
	assert_int_equal(flush(f), 0);
	assert_sql_text(f, "deferred", "SELECT status FROM messages");
	assert_sql_text(f, "sent", "SELECT status FROM recipients WHERE address = 'a@example.net'");
	assert_int_equal(q_int(f, "SELECT attempts FROM recipients WHERE idx = 0"), 1);
	assert_int_equal(q_int(f, "SELECT last_code FROM recipients WHERE idx = 0"), 250);
	assert_sql_text(f, "primary", "SELECT upstream FROM recipients WHERE idx = 0");
	assert_sql_text(f, "4.2.0", "SELECT last_enhanced FROM recipients WHERE idx = 1");
	assert_sql_text(f, "try later", "SELECT last_text FROM recipients WHERE idx = 1");
	/* Addresses compare case-insensitively, as the `to` filter will. */
	assert_int_equal(q_int(f, "SELECT count(*) FROM recipients WHERE address = 'B@EXAMPLE.NET'"),
	    1);

	/* Held applies to the unfinished recipient only; the message shows held. */
	maillog_status(f->ml, ID1, NULL, MAILLOG_HELD, T0 + 2000, "admin");
	assert_int_equal(flush(f), 0);
	assert_sql_text(f, "held", "SELECT status FROM messages");
	assert_sql_text(f, "sent", "SELECT status FROM recipients WHERE idx = 0");
	maillog_status(f->ml, ID1, NULL, MAILLOG_RELEASED, T0 + 3000, NULL);
	assert_int_equal(flush(f), 0);
	assert_sql_text(f, "queued", "SELECT status FROM messages");

	/* A deferral never reopens a final recipient. */
	maillog_status(f->ml, ID1, "a@example.net", MAILLOG_DEFERRED, T0 + 3500, "late");
	/* Second attempt on b bounces it: all final, bounced is worse than sent. */
	attempt(f, ID1, "b@example.net", "backup", T0 + 4000, 550, "bounced");
	maillog_status(f->ml, ID1, "b@example.net", MAILLOG_BOUNCED, T0 + 4000, "550 no such user");
	assert_int_equal(flush(f), 0);
	assert_sql_text(f, "bounced", "SELECT status FROM messages");
	assert_sql_text(f, "sent", "SELECT status FROM recipients WHERE idx = 0");
	assert_int_equal(q_int(f, "SELECT attempts FROM recipients WHERE idx = 1"), 2);
	assert_sql_text(f, "backup", "SELECT upstream FROM recipients WHERE idx = 1");
	assert_int_equal(q_int(f, "SELECT updated_ms FROM messages"), (int64_t)(T0 + 4000));

	/* Every call is an event, in order. */
	assert_int_equal(q_int(f, "SELECT count(*) FROM events WHERE message_id = %lld",
	    (long long)ID1), 10);
	assert_sql_text(f, "received", "SELECT type FROM events ORDER BY id LIMIT 1");
	assert_sql_text(f, "bounced", "SELECT type FROM events ORDER BY id DESC LIMIT 1");
	assert_sql_text(f, "550 no such user", "SELECT text FROM events ORDER BY id DESC LIMIT 1");
	assert_sql_text(f, "198.51.100.7",
	    "SELECT remote_addr FROM events WHERE type = 'attempt' LIMIT 1");
}

static void
test_status_final_orders(void **state)
{
	struct fx *f = *state;

	/* expired beats suppressed and sent; suppressed beats sent. */
	received(f, ID1, "x", 3);
	maillog_status(f->ml, ID1, "a@example.net", MAILLOG_SENT, T0 + 1, NULL);
	maillog_status(f->ml, ID1, "b@example.net", MAILLOG_SUPPRESSED, T0 + 1, NULL);
	assert_int_equal(flush(f), 0);
	assert_sql_text(f, "queued", "SELECT status FROM messages");
	maillog_status(f->ml, ID1, NULL, MAILLOG_EXPIRED, T0 + 2, "max_age");
	assert_int_equal(flush(f), 0);
	assert_sql_text(f, "expired", "SELECT status FROM messages");
	assert_sql_text(f, "suppressed", "SELECT status FROM recipients WHERE idx = 1");

	/* Delete touches unfinished recipients only; all sent/suppressed stays. */
	received(f, ID2, "y", 2);
	maillog_status(f->ml, ID2, "a@example.net", MAILLOG_SENT, T0 + 1, NULL);
	maillog_status(f->ml, ID2, "b@example.net", MAILLOG_SUPPRESSED, T0 + 1, NULL);
	maillog_status(f->ml, ID2, NULL, MAILLOG_DELETED, T0 + 2, "admin");
	assert_int_equal(flush(f), 0);
	assert_sql_text(f, "suppressed", "SELECT status FROM messages WHERE id = %lld",
	    (long long)ID2);
	assert_int_equal(q_int(f, "SELECT n_rcpts FROM events WHERE type = 'deleted'"), 0);
}

static void
test_status_unfinished_orders(void **state)
{
	struct fx *f = *state;

	/* held > deferred > queued, whatever the final ones say. */
	received(f, ID1, "x", 4);
	maillog_status(f->ml, ID1, "d@example.net", MAILLOG_BOUNCED, T0 + 1, NULL);
	maillog_status(f->ml, ID1, "b@example.net", MAILLOG_DEFERRED, T0 + 1, NULL);
	assert_int_equal(flush(f), 0);
	assert_sql_text(f, "deferred", "SELECT status FROM messages");
	maillog_status(f->ml, ID1, "c@example.net", MAILLOG_HELD, T0 + 2, NULL);
	assert_int_equal(flush(f), 0);
	assert_sql_text(f, "held", "SELECT status FROM messages");
	maillog_status(f->ml, ID1, "c@example.net", MAILLOG_RELEASED, T0 + 3, NULL);
	assert_int_equal(flush(f), 0);
	assert_sql_text(f, "deferred", "SELECT status FROM messages");
	maillog_status(f->ml, ID1, "b@example.net", MAILLOG_SENT, T0 + 4, NULL);
	assert_int_equal(flush(f), 0);
	assert_sql_text(f, "queued", "SELECT status FROM messages");
}

static void
test_received_keeps_spool_states(void **state)
{
	struct fx *f = *state;
	struct spool_env e;

	/* Re-entered from the spool: recipient states come from the envelope. */
	memset(&e, 0, sizeof(e));
	e.id = ID1;
	e.received_ms = T0;
	e.from = xstrdup("");
	spool_env_add_rcpt(&e, "a@example.net", 0, NULL);
	spool_env_add_rcpt(&e, "b@example.net", 0, NULL);
	e.rcpts[0].state = SPOOL_RCPT_SENT;
	e.rcpts[1].state = SPOOL_RCPT_DEFERRED;
	maillog_received(f->ml, &e, NULL);
	/* A duplicate is ignored, not an error. */
	maillog_received(f->ml, &e, NULL);
	spool_env_fini(&e);
	assert_int_equal(flush(f), 0);
	assert_sql_text(f, "deferred", "SELECT status FROM messages");
	assert_sql_text(f, "sent", "SELECT status FROM recipients WHERE idx = 0");
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM events"), 1);
	assert_sql_text(f, "", "SELECT mail_from FROM messages");
}

static void
test_barrier_ordering(void **state)
{
	struct fx *f = *state;
	struct done d1 = { 0 }, d2 = { 0 }, d3 = { 0 };
	int seq = 0;

	d1.seq = d2.seq = d3.seq = &seq;
	received(f, ID1, "one", 1);
	maillog_barrier(f->ml, barrier_cb, &d1);
	received(f, ID2, "two", 1);
	maillog_barrier(f->ml, barrier_cb, &d2);
	maillog_barrier(f->ml, barrier_cb, &d3);
	assert_int_equal(d1.calls + d2.calls + d3.calls, 0);
	while (d1.calls == 0)
		jobs_wait_completions(f->hub);
	/* At the first barrier its predecessor is committed and visible to other readers. */
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages WHERE id = %lld",
	    (long long)ID1), 1);
	while (d3.calls == 0)
		jobs_wait_completions(f->hub);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 2);
	assert_int_equal(d1.order, 0);
	assert_int_equal(d2.order, 1);
	assert_int_equal(d3.order, 2);
	assert_int_equal(d1.rc + d2.rc + d3.rc, 0);
	assert_int_equal(d1.calls + d2.calls + d3.calls, 3);
	assert_int_equal(maillog_pending(f->ml), 0);
}

struct count {
	char up[16];
	uint64_t minute_ms;
	uint64_t n;
};

struct counts {
	struct count c[16];
	size_t n;
};

static void
count_cb(void *arg, const char *upstream, uint64_t minute_ms, uint64_t n)
{
	struct counts *cs = arg;

	assert_true(cs->n < HK_ARRAY_LEN(cs->c));
	snprintf(cs->c[cs->n].up, sizeof(cs->c[cs->n].up), "%s", upstream);
	cs->c[cs->n].minute_ms = minute_ms;
	cs->c[cs->n].n = n;
	cs->n++;
}

static void
test_upstream_counts(void **state)
{
	struct fx *f = *state;
	struct counts cs = { 0 };
	struct hk_err err = { 0 };
	uint64_t m0 = (T0 / 60000 + 10) * 60000; /* a minute boundary after T0 */

	received(f, ID1, "a", 3);
	received(f, ID2, "b", 2);
	attempt(f, ID1, "a@example.net", "primary", m0 - 60000, 250, "sent"); /* before since */
	attempt(f, ID1, "b@example.net", "primary", m0 + 1000, 250, "sent");
	attempt(f, ID1, "c@example.net", "primary", m0 + 59999, 250, "sent");
	attempt(f, ID2, "a@example.net", "backup", m0 + 5000, 250, "sent");
	attempt(f, ID2, "b@example.net", "primary", m0 + 6000, 451, "deferred");
	attempt(f, ID2, "b@example.net", "primary", m0 + 60000, 250, "sent");
	assert_int_equal(flush(f), 0);

	assert_int_equal(maillog_upstream_counts(f->ml, m0, count_cb, &cs, &err), 0);
	assert_int_equal(cs.n, 3);
	assert_string_equal(cs.c[0].up, "backup");
	assert_int_equal(cs.c[0].minute_ms, m0);
	assert_int_equal(cs.c[0].n, 1);
	assert_string_equal(cs.c[1].up, "primary");
	assert_int_equal(cs.c[1].minute_ms, m0);
	assert_int_equal(cs.c[1].n, 2);
	assert_string_equal(cs.c[2].up, "primary");
	assert_int_equal(cs.c[2].minute_ms, m0 + 60000);
	assert_int_equal(cs.c[2].n, 1);

	/* A whole-transaction attempt counts every recipient it covered. */
	received(f, 0x0193F2A1C4000009ULL, "c", 3);
	attempt(f, 0x0193F2A1C4000009ULL, NULL, "bulk", m0 + 120000, 250, "sent");
	assert_int_equal(flush(f), 0);
	memset(&cs, 0, sizeof(cs));
	assert_int_equal(maillog_upstream_counts(f->ml, m0 + 120000, count_cb, &cs, &err), 0);
	assert_int_equal(cs.n, 1);
	assert_string_equal(cs.c[0].up, "bulk");
	assert_int_equal(cs.c[0].n, 3);
}

static void
test_events_queued_while_committing(void **state)
{
	struct fx *f = *state;
	const uint64_t n_msgs = 3000;
	size_t max_pending = 0;
	uint64_t i;

	/* Add work in bursts while earlier batches are being written on the db thread. */
	for (i = 0; i < n_msgs; i++) {
		received(f, ID1 + i, "burst", 1);
		attempt(f, ID1 + i, "a@example.net", "primary", T0 + i, 250, "sent");
		maillog_status(f->ml, ID1 + i, "a@example.net", MAILLOG_SENT, T0 + i, NULL);
		if (maillog_pending(f->ml) > max_pending)
			max_pending = maillog_pending(f->ml);
		if (i % 97 == 0)
			jobs_run_completions(f->hub);
	}
	/* The loop never waited: events piled up behind the batch in flight. */
	assert_true(max_pending > 1);
	assert_int_equal(flush(f), 0);
	assert_int_equal(maillog_pending(f->ml), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages WHERE status = 'sent'"),
	    (int64_t)n_msgs);
	assert_int_equal(q_int(f, "SELECT count(*) FROM events"), (int64_t)(3 * n_msgs));
	assert_int_equal(maillog_dropped(f->ml), 0);
}

static void
test_close_flushes(void **state)
{
	struct fx *f = *state;
	uint64_t i;

	for (i = 0; i < 1500; i++)
		received(f, ID1 + i, "closing", 2);
	assert_true(maillog_pending(f->ml) > 0);
	maillog_close(f->ml);
	f->ml = NULL;
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 1500);
	assert_int_equal(q_int(f, "SELECT count(*) FROM recipients"), 3000);
}

static void
test_open_fails_cleanly(void **state)
{
	struct fx *f = *state;
	struct hk_err err = { 0 };
	char path[128];
	int fd;

	/* Missing state directory. */
	snprintf(path, sizeof(path), "%s/missing", f->dir);
	assert_null(maillog_open(path, f->hub, &err));
	assert_int_equal(err.code, HK_E_IO);
	assert_non_null(strstr(err.text, path));
	assert_int_equal(err.sys_errno, ENOENT);

	/* State "directory" that is a file. */
	snprintf(path, sizeof(path), "%s/file", f->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	memset(&err, 0, sizeof(err));
	assert_null(maillog_open(path, f->hub, &err));
	assert_non_null(strstr(err.text, path));
	assert_int_equal(err.sys_errno, ENOTDIR);

	/* hikyaku.db that is not a database. */
	snprintf(path, sizeof(path), "%s/garbage", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/garbage/hikyaku.db", f->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "this is not an sqlite database, just text.......\n", 49), 49);
	close(fd);
	snprintf(path, sizeof(path), "%s/garbage", f->dir);
	memset(&err, 0, sizeof(err));
	assert_null(maillog_open(path, f->hub, &err));
	assert_int_equal(err.code, HK_E_DATA);
	assert_non_null(strstr(err.text, "hikyaku.db"));

	/* Unwritable state directory (root writes anyway, so only checked as a user). */
	snprintf(path, sizeof(path), "%s/ro", f->dir);
	assert_int_equal(mkdir(path, 0500), 0);
	if (geteuid() != 0) {
		memset(&err, 0, sizeof(err));
		assert_null(maillog_open(path, f->hub, &err));
		assert_int_equal(err.code, HK_E_IO);
		assert_non_null(strstr(err.text, path));
		assert_non_null(strstr(err.text, "not writable"));
		assert_int_equal(err.sys_errno, EACCES);
	}
	assert_int_equal(chmod(path, 0700), 0);

	/* An existing log in a directory that became read-only: no -wal file can be made. */
	maillog_close(f->ml);
	f->ml = NULL;
	assert_int_equal(chmod(f->dir, 0500), 0);
	if (geteuid() != 0) {
		memset(&err, 0, sizeof(err));
		assert_null(maillog_open(f->dir, f->hub, &err));
		assert_int_equal(err.code, HK_E_IO);
		assert_non_null(strstr(err.text, "not writable"));
	}
	assert_int_equal(chmod(f->dir, 0700), 0);
}

static void
test_refused_item_does_not_spoil_batch(void **state)
{
	struct fx *f = *state;

	/* Events for a message the log never saw are refused alone. */
	attempt(f, ID2, "a@example.net", "primary", T0, 250, "sent");
	maillog_status(f->ml, ID2, NULL, MAILLOG_SENT, T0, NULL);
	received(f, ID1, "kept", 1);
	assert_int_equal(flush(f), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM events"), 1);
	assert_int_equal(maillog_dropped(f->ml), 0);
}

static void
test_failed_batch_is_dropped_and_reported(void **state)
{
	struct fx *f = *state;
	struct done d = { 0 };

	assert_int_equal(flush(f), 0);
	/* Pull a table from under the writer: every write now fails, not just one row. */
	exec_sql(f, "DROP TABLE events");
	received(f, ID1, "lost", 1);
	received(f, ID2, "lost too", 1);
	maillog_barrier(f->ml, barrier_cb, &d);
	while (d.calls == 0)
		jobs_wait_completions(f->hub);
	assert_int_equal(d.rc, -1);
	assert_int_equal(maillog_dropped(f->ml), 2);
	/* Rolled back as a whole: no half-written message. */
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 0);
	assert_int_equal(maillog_pending(f->ml), 0);
	/* A later barrier covers nothing lost: 0. */
	assert_int_equal(flush(f), 0);
}

static void
test_fts_finds_subject_and_address(void **state)
{
	struct fx *f = *state;

	received(f, ID1, "Your quarterly invoice is ready", 2);
	received(f, ID2, "Password reset", 1);
	assert_int_equal(flush(f), 0);
	assert_int_equal(q_int(f, "SELECT rowid FROM messages_fts WHERE messages_fts MATCH "
	    "'invoice'"), (int64_t)ID1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH "
	    "'invoice'"), 1);
	assert_int_equal(q_int(f, "SELECT rowid FROM messages_fts WHERE messages_fts MATCH "
	    "'PASSWORD'"), (int64_t)ID2);
	/* Addresses: a phrase over the address's tokens, and a column filter. */
	assert_int_equal(q_int(f, "SELECT rowid FROM messages_fts WHERE messages_fts MATCH "
	    "'rcpt_to:\"b@example.net\"'"), (int64_t)ID1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH "
	    "'mail_from:app'"), 2);
	/* Retention deletes follow into the index. */
	exec_sql(f, "PRAGMA foreign_keys = ON; DELETE FROM messages WHERE id = 0x0193F2A1C4000007");
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH "
	    "'invoice'"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM recipients"), 1);
}

static void
test_resent_links_both(void **state)
{
	struct fx *f = *state;

	received(f, ID1, "first", 1);
	received(f, ID2, "first", 1);
	maillog_resent(f->ml, ID2, ID1, T0 + 5);
	assert_int_equal(flush(f), 0);
	assert_int_equal(q_int(f, "SELECT resent_from FROM messages WHERE id = %lld",
	    (long long)ID2), (int64_t)ID1);
	assert_sql_text(f, "0193F2A1C4000008", "SELECT text FROM events WHERE type = 'resent' "
	    "AND message_id = %lld", (long long)ID1);
	assert_sql_text(f, "0193F2A1C4000007", "SELECT text FROM events WHERE type = 'resent' "
	    "AND message_id = %lld", (long long)ID2);
}

static void
test_event_names(void **state)
{
	(void)state;
	assert_string_equal(maillog_event_name(MAILLOG_RECEIVED), "received");
	assert_string_equal(maillog_event_name(MAILLOG_SUPPRESSED), "suppressed");
	assert_string_equal(maillog_event_name(MAILLOG_DELETED), "deleted");
	assert_string_equal(maillog_event_name(MAILLOG_EVENT_COUNT), "unknown");
}

/* The ID floor of a time bounds every ID made at or after it, and none made before. */
static void
test_id_floor_bounds_ids(void **state)
{
	struct id_gen g;
	uint64_t t = 1764000000123ull, id_before, id_at, id_after;
	unsigned i;

	(void)state;
	id_gen_init(&g, 255);
	id_before = id_gen_next(&g, t - 1);
	id_at = id_gen_next(&g, t);
	for (i = 0; i < 100; i++)
		id_after = id_gen_next(&g, t);
	assert_true(id_before < maillog_query_id_floor(t));
	assert_true(id_at >= maillog_query_id_floor(t));
	assert_true(id_after < maillog_query_id_floor(t + 1));
	assert_int_equal(id_time_ms(maillog_query_id_floor(t)), t);
	assert_int_equal(maillog_query_id_floor(0), 0);
	assert_int_equal(maillog_query_id_floor(ID_EPOCH_MS - 5), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrations_fresh_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_final_orders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_unfinished_orders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_received_keeps_spool_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_barrier_ordering, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_queued_while_committing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_close_flushes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_fails_cleanly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_item_does_not_spoil_batch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_failed_batch_is_dropped_and_reported, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fts_finds_subject_and_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resent_links_both, setup, teardown),
		cmocka_unit_test(test_event_names),
		cmocka_unit_test(test_id_floor_bounds_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
