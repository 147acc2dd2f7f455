/*
 * test_retention.c - log.retention: which messages maillog_prune() chooses (finished, nothing
 * logged since the cutoff, never queued/deferred/held), cascades, batches, and a whole pass with
 * kept bodies.
 */
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

#include "db/bodies.h"
#include "db/maillog.h"
#include "db/retention.h"
#include "jobs/jobs.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/poison.h"

#define T0 1732468369123ULL /* received */
#define SEC 1000ULL
#define ID(n) ((((T0 - 1577836800000ULL)) << 20) | (n))

struct fx {
	char dir[64];
	char db[128];
	struct jobs *hub;
	struct maillog *ml;
	struct bodies *b;
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

	if (null_fd >= 0 && getenv("HK_TEST_LOG") == NULL)
		log_set_fd(null_fd);
	snprintf(f->dir, sizeof(f->dir), "/tmp/hk-retention-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/hikyaku.db", f->dir);
	f->hub = jobs_new();
	f->ml = maillog_open(f->dir, f->hub, &err);
	if (f->ml == NULL)
		fail_msg("open: %s", err.text);
	f->b = bodies_new(f->dir, f->hub, &err);
	if (f->b == NULL)
		fail_msg("bodies: %s", err.text);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	bodies_free(f->b);
	maillog_close(f->ml);
	jobs_free(f->hub);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

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

struct done {
	int calls;
	int rc;
	size_t n;
	uint64_t ids[16];
};

static void
barrier_cb(void *arg, int rc)
{
	struct done *d = arg;

	d->calls++;
	d->rc = rc;
}

static void
flush(struct fx *f)
{
	struct done d = { 0 };

	maillog_barrier(f->ml, barrier_cb, &d);
	while (d.calls == 0)
		jobs_wait_completions(f->hub);
	assert_int_equal(d.rc, 0);
}

static void
prune_cb(void *arg, int rc, const uint64_t *ids, size_t n)
{
	struct done *d = arg;
	size_t i;

	d->calls++;
	d->rc = rc;
	d->n = n;
	for (i = 0; i < n && i < HK_ARRAY_LEN(d->ids); i++)
		d->ids[i] = ids[i];
}

static struct done
prune(struct fx *f, uint64_t cutoff_ms, size_t limit)
{
	struct done d = { 0 };

	maillog_prune(f->ml, cutoff_ms, limit, prune_cb, &d);
	assert_int_equal(d.calls, 0);
	while (d.calls == 0)
		jobs_wait_completions(f->hub);
	assert_int_equal(d.calls, 1);
	return d;
}

/* A message with n recipients a@, b@ ... received at T0. */
static void
received(struct fx *f, uint64_t id, size_t n_rcpts)
{
	struct spool_env e;
	size_t i;

	memset(&e, 0, sizeof(e));
	e.id = id;
	e.received_ms = T0;
	e.from = xstrdup("app@example.com");
	e.source = xstrdup("smtp");
	for (i = 0; i < n_rcpts; i++) {
		char addr[64];

		snprintf(addr, sizeof(addr), "%c@example.net", (char)('a' + i));
		spool_env_add_rcpt(&e, addr, 0, NULL);
	}
	maillog_received(f->ml, &e, "subject words");
	spool_env_fini(&e);
}

static int64_t
rows(struct fx *f, uint64_t id)
{
	return q_int(f, "SELECT (SELECT count(*) FROM messages WHERE id = %lld)"
	    " + (SELECT count(*) FROM recipients WHERE message_id = %lld)"
	    " + (SELECT count(*) FROM events WHERE message_id = %lld)",
	    (long long)id, (long long)id, (long long)id);
}

static void
test_prune_chooses_only_finished_and_old(void **state)
{
	struct fx *f = *state;
	struct done d;

	/* 1: sent at T0+1s: finished. */
	received(f, ID(1), 1);
	maillog_status(f->ml, ID(1), NULL, MAILLOG_SENT, T0 + 1 * SEC, "250 ok");
	/* 2: still deferred: never chosen however old. */
	received(f, ID(2), 1);
	maillog_status(f->ml, ID(2), NULL, MAILLOG_DEFERRED, T0 + 1 * SEC, "451");
	/* 3: one recipient bounced, one still queued. */
	received(f, ID(3), 2);
	maillog_status(f->ml, ID(3), "a@example.net", MAILLOG_BOUNCED, T0 + 1 * SEC, "550");
	/* 4: bounced, but a complaint came in later (an event after the cutoff). */
	received(f, ID(4), 1);
	maillog_status(f->ml, ID(4), NULL, MAILLOG_BOUNCED, T0 + 1 * SEC, "550");
	maillog_status(f->ml, ID(4), NULL, MAILLOG_COMPLAINT, T0 + 20 * SEC, "arf");
	/* 5: held. */
	received(f, ID(5), 1);
	maillog_status(f->ml, ID(5), NULL, MAILLOG_HELD, T0 + 1 * SEC, "admin");
	/* 6: expired and deleted recipients: finished. */
	received(f, ID(6), 2);
	maillog_status(f->ml, ID(6), "a@example.net", MAILLOG_EXPIRED, T0 + 2 * SEC, "max_age");
	maillog_status(f->ml, ID(6), "b@example.net", MAILLOG_DELETED, T0 + 2 * SEC, "admin");
	/* 7: sent, but only after the cutoff. */
	received(f, ID(7), 1);
	maillog_status(f->ml, ID(7), NULL, MAILLOG_SENT, T0 + 30 * SEC, "250 ok");
	flush(f);
	assert_true(rows(f, ID(1)) > 2);

	/* A cutoff before everything chooses nothing. */
	d = prune(f, T0, 100);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.n, 0);

	d = prune(f, T0 + 10 * SEC, 100);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.ids[0], ID(1));
	assert_int_equal(d.ids[1], ID(6));
	/* Rows go with the message: recipients and events by cascade, the search row too. */
	assert_int_equal(rows(f, ID(1)), 0);
	assert_int_equal(rows(f, ID(6)), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages_fts WHERE rowid IN (%lld, %lld)",
	    (long long)ID(1), (long long)ID(6)), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 5);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages_fts"), 5);
	assert_true(rows(f, ID(2)) > 0);
	assert_true(rows(f, ID(3)) > 0);
	assert_true(rows(f, ID(5)) > 0);

	/* Later, the complaint and the late delivery are old enough too; unfinished ones stay. */
	d = prune(f, T0 + 3600 * SEC, 100);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.ids[0], ID(4));
	assert_int_equal(d.ids[1], ID(7));
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 3);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages WHERE id IN (%lld, %lld, %lld)",
	    (long long)ID(2), (long long)ID(3), (long long)ID(5)), 3);
}

static void
test_prune_in_batches(void **state)
{
	struct fx *f = *state;
	struct done d;
	int i;

	for (i = 1; i <= 5; i++) {
		received(f, ID(i), 1);
		maillog_status(f->ml, ID(i), NULL, MAILLOG_SENT, T0 + SEC, "250");
	}
	d = prune(f, T0 + 2 * SEC, 2);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.ids[0], ID(1));
	assert_int_equal(d.ids[1], ID(2));
	d = prune(f, T0 + 2 * SEC, 2);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.ids[0], ID(3));
	d = prune(f, T0 + 2 * SEC, 2);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.ids[0], ID(5));
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 0);
}

/* A message resent later keeps working: the copy's resent_from may name a pruned original. */
static void
test_prune_original_of_a_resend(void **state)
{
	struct fx *f = *state;
	uint64_t later = ID(9) + (3600000ULL << 20);
	struct done d;

	received(f, ID(1), 1);
	maillog_status(f->ml, ID(1), NULL, MAILLOG_BOUNCED, T0 + SEC, "550");
	received(f, later, 1);
	maillog_resent(f->ml, later, ID(1), T0 + 2 * SEC);
	/* The resent event on the original is newer than this cutoff: it stays. */
	d = prune(f, T0 + 2 * SEC, 10);
	assert_int_equal(d.n, 0);
	d = prune(f, T0 + 3 * SEC, 10);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.ids[0], ID(1));
	/* The copy (received at T0 too in this test, still queued) is kept. */
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages WHERE id = %lld",
	    (long long)later), 1);
}

struct pass {
	int calls;
	uint64_t messages, bodies;
	int rc;
};

static void
pass_cb(void *arg, uint64_t messages, uint64_t bodies, int rc)
{
	struct pass *p = arg;

	p->calls++;
	p->messages = messages;
	p->bodies = bodies;
	p->rc = rc;
}

/* Keep src as id's body, as the spool's finish hook does. */
static void
keep_body(struct fx *f, uint64_t id, const char *src)
{
	struct hk_err err = { 0 };
	int fd = open(src, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(bodies_keep_fd(f->b, id, fd, &err), 0);
	close(fd);
}

static bool
body_exists(struct fx *f, uint64_t id)
{
	char rel[BODIES_REL_PATH_SIZE], path[256];
	struct stat st;

	bodies_rel_path(id, rel);
	snprintf(path, sizeof(path), "%s/bodies/%s", f->dir, rel);
	return stat(path, &st) == 0;
}

static void
test_pass_removes_rows_and_bodies_in_batches(void **state)
{
	struct fx *f = *state;
	struct retention *r = retention_new(f->ml, f->b, f->hub);
	char src[128];
	struct pass p = { 0 };
	FILE *fp;
	int i, n = RETENTION_BATCH + 3;

	snprintf(src, sizeof(src), "%s/src.msg", f->dir);
	fp = fopen(src, "w");
	assert_non_null(fp);
	fputs("Subject: x\r\n\r\nbody\r\n", fp);
	fclose(fp);
	for (i = 1; i <= n; i++) {
		received(f, ID(i), 1);
		maillog_status(f->ml, ID(i), NULL, i == 2 ? MAILLOG_DEFERRED : MAILLOG_SENT,
		    T0 + SEC, "x");
		keep_body(f, ID(i), src);
	}
	flush(f);

	assert_true(retention_start(r, T0 + 2 * SEC, pass_cb, &p));
	assert_true(retention_is_running(r));
	assert_false(retention_start(r, T0 + 2 * SEC, pass_cb, &p));
	while (p.calls == 0)
		jobs_wait_completions(f->hub);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.messages, n - 1);
	assert_int_equal(p.bodies, n - 1);
	assert_false(retention_is_running(r));
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 1);
	assert_false(body_exists(f, ID(1)));
	assert_false(body_exists(f, ID(n)));
	/* The deferred one keeps its row and its body. */
	assert_true(body_exists(f, ID(2)));
	retention_free(r);
}

static void
test_free_while_running_waits(void **state)
{
	struct fx *f = *state;
	struct retention *r = retention_new(f->ml, f->b, f->hub);
	struct pass p = { 0 };

	received(f, ID(1), 1);
	maillog_status(f->ml, ID(1), NULL, MAILLOG_SENT, T0 + SEC, "x");
	assert_true(retention_start(r, T0 + 2 * SEC, pass_cb, &p));
	retention_free(r);
	/* Stopped: no callback into a caller that is going away. */
	assert_int_equal(p.calls, 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM messages"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_prune_chooses_only_finished_and_old, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_prune_in_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_original_of_a_resend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pass_removes_rows_and_bodies_in_batches, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_while_running_waits, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
