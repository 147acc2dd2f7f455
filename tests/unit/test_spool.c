/* test_spool.c - commit, update, finish, load; fault injection on every fsops call. */
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
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "jobs/jobs.h"
#include "spool/spool.h"
#include "spool/spool_priv.h" /* use_tmpfile: both commit paths are tested */
#include "util/fsops.h"
#include "util/id.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/poison.h"

struct fx {
	char dir[64];
	struct jobs *hub;
	struct spool *sp;
};

struct done {
	int calls;
	int rc;
	struct hk_err err;
};

static void
done_cb(int rc, const struct hk_err *err, void *arg)
{
	struct done *d = arg;

	d->calls++;
	d->rc = rc;
	if (rc != 0) {
		assert_non_null(err);
		d->err = *err;
	} else {
		assert_null(err);
	}
}

static void
wait_done(struct fx *f, struct done *d)
{
	while (d->calls == 0)
		jobs_wait_completions(f->hub);
	assert_int_equal(d->calls, 1);
}

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
	struct hk_err err;

	log_set_level(LOG_LEVEL_ERROR);
	snprintf(f->dir, sizeof(f->dir), "/tmp/hk-spool-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->hub = jobs_new();
	f->sp = spool_new(f->dir, f->hub, 4, 1000, &err);
	assert_non_null(f->sp);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	fsops_fail_reset();
	spool_free(f->sp);
	jobs_free(f->hub);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static const char body_text[] = "Subject: hi\r\n\r\nhello\r\n";

static void
make_env(struct spool_env *e, uint64_t id)
{
	memset(e, 0, sizeof(*e));
	e->id = id;
	e->received_ms = 1732468369123ULL;
	e->from = xstrdup("app@example.com");
	e->ret = SMTP_RET_HDRS;
	e->source = xstrdup("smtp");
	e->client = xstrdup("127.0.0.1");
	e->size = sizeof(body_text) - 1; /* the spool checks an embedded body against it */
	e->next_attempt_ms = 1732468400000ULL;
	spool_env_add_rcpt(e, "a@example.net", SMTP_NOTIFY_FAILURE, NULL);
	spool_env_add_rcpt(e, "b@example.net", 0, "rfc822;b@example.net");
}

static void
make_body(struct buf *b)
{
	buf_init(b);
	buf_append_str(b, body_text);
}

static bool
exists(struct fx *f, const char *sub, uint64_t id, const char *ext)
{
	char path[256], hex[ID_HEX_LEN + 1];
	struct stat st;

	id_format(id, hex);
	snprintf(path, sizeof(path), "%s/%s/%s%s", f->dir, sub, hex, ext);
	return stat(path, &st) == 0;
}

static size_t
count_entries(struct fx *f, const char *sub)
{
	char path[256];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", f->dir, sub);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static bool
env_same(const struct spool_env *a, const struct spool_env *b)
{
	struct buf x = BUF_INIT, y = BUF_INIT;
	bool same;

	spool_format_encode(a, &x);
	spool_format_encode(b, &y);
	same = x.len == y.len && memcmp(x.ptr, y.ptr, x.len) == 0;
	buf_fini(&x);
	buf_fini(&y);
	return same;
}

/* Commit synchronously; returns the done_cb rc. */
static int
commit_now(struct fx *f, const struct spool_env *e, struct done *d)
{
	struct buf body;
	struct hk_err err;

	memset(d, 0, sizeof(*d));
	make_body(&body);
	assert_int_equal(spool_commit(f->sp, e, &body, done_cb, d, &err), 0);
	assert_null(body.ptr);
	wait_done(f, d);
	return d->rc;
}

/* The message is fully queued and reads back as e. */
static void
assert_queued(struct fx *f, const struct spool_env *e)
{
	struct spool_env got = { 0 };
	struct buf body = BUF_INIT;
	struct hk_err err;

	assert_int_equal(spool_load(f->sp, e->id, &got, &err), 0);
	assert_true(env_same(e, &got));
	spool_env_fini(&got);
	assert_int_equal(spool_load_body(f->sp, e->id, &body, &err), 0);
	assert_int_equal(body.len, strlen(body_text));
	assert_memory_equal(body.ptr, body_text, body.len);
	buf_fini(&body);
}

static void
test_new_creates_dirs(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *sub;
		mode_t mode;
	} subs[] = { { "tmp", 0750 }, { "queue", 0750 }, { "corrupt", 0750 },
		{ "maildrop", 01733 } };
	struct hk_err err;
	size_t i;

	for (i = 0; i < HK_ARRAY_LEN(subs); i++) {
		char path[256];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", f->dir, subs[i].sub);
		assert_int_equal(stat(path, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		/* The umask may take bits from 0750, never from maildrop's 1733. */
		if (subs[i].mode == 01733)
			assert_int_equal(st.st_mode & 07777, 01733);
		else
			assert_int_equal(st.st_mode & ~subs[i].mode & 07777, 0);
	}
	/* Opening an existing spool works too. */
	spool_free(f->sp);
	f->sp = spool_new(f->dir, f->hub, 2, 10, &err);
	assert_non_null(f->sp);
}

static void
test_new_fails_cleanly(void **state)
{
	struct fx *f = *state;
	struct hk_err err = { 0 };
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/file", f->dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/file/spool", f->dir);
	assert_null(spool_new(path, f->hub, 1, 1, &err));
	assert_int_equal(err.code, HK_E_IO);
	assert_int_equal(err.sys_errno, ENOTDIR);
	/* A fault while creating the subdirectories. */
	snprintf(path, sizeof(path), "%s/other", f->dir);
	fsops_fail_nth(FSOPS_MKDIR, 3, ENOSPC);
	assert_null(spool_new(path, f->hub, 1, 1, &err));
	fsops_fail_reset();
	assert_int_equal(err.code, HK_E_NOSPACE);
}

static void
test_commit_then_load(void **state)
{
	struct fx *f = *state;
	struct spool_env e;
	struct done d;
	char path[256], hex[ID_HEX_LEN + 1];
	struct stat st;

	make_env(&e, 0x0193F2A1C4000007ULL);
	assert_int_equal(commit_now(f, &e, &d), 0);
	assert_queued(f, &e);
	assert_int_equal(count_entries(f, "tmp"), 0);
	/* One file: the body is embedded after the envelope. */
	assert_int_equal(count_entries(f, "queue"), 1);
	assert_false(exists(f, "queue", e.id, ".msg"));
	assert_int_equal(spool_inflight(f->sp), 0);
	id_format(e.id, hex);
	snprintf(path, sizeof(path), "%s/queue/%s.env", f->dir, hex);
	assert_int_equal(stat(path, &st), 0);
	/* Restart schedules from mtimes: the envelope's is the next attempt time. */
	assert_int_equal((uint64_t)st.st_mtim.tv_sec * 1000 + (uint64_t)st.st_mtim.tv_nsec / 1000000,
	    e.next_attempt_ms);
	assert_int_equal(st.st_mode & 0777 & ~0640, 0);
	spool_env_fini(&e);
}

static void
test_load_errors(void **state)
{
	struct fx *f = *state;
	struct spool_env got = { 0 };
	struct buf body = BUF_INIT;
	struct spool_env e;
	struct hk_err err;
	struct done d;
	char path[256], hex[ID_HEX_LEN + 1];
	FILE *fp;

	assert_int_equal(spool_load(f->sp, 42, &got, &err), -1);
	assert_int_equal(err.code, HK_E_NOTFOUND);
	buf_append_str(&body, "keep");
	assert_int_equal(spool_load_body(f->sp, 42, &body, &err), -1);
	assert_int_equal(err.code, HK_E_NOTFOUND);
	assert_string_equal(body.ptr, "keep");
	buf_fini(&body);

	make_env(&e, 77);
	assert_int_equal(commit_now(f, &e, &d), 0);
	/* A damaged envelope is reported as data, never half-loaded. */
	id_format(77, hex);
	snprintf(path, sizeof(path), "%s/queue/%s.env", f->dir, hex);
	fp = fopen(path, "r+");
	assert_non_null(fp);
	fseek(fp, 30, SEEK_SET);
	fputc('#', fp);
	fclose(fp);
	assert_int_equal(spool_load(f->sp, 77, &got, &err), -1);
	assert_int_equal(err.code, HK_E_DATA);
	assert_null(got.rcpts);
	spool_env_fini(&e);

	/* An envelope whose id is not its file name's. */
	make_env(&e, 78);
	assert_int_equal(commit_now(f, &e, &d), 0);
	id_format(78, hex);
	snprintf(path, sizeof(path), "%s/queue/%s.env", f->dir, hex);
	id_format(79, hex);
	snprintf(path + strlen(path) + 1, sizeof(path) - strlen(path) - 1, "%s/queue/%s.env",
	    f->dir, hex);
	assert_int_equal(rename(path, path + strlen(path) + 1), 0);
	assert_int_equal(spool_load(f->sp, 79, &got, &err), -1);
	assert_int_equal(err.code, HK_E_DATA);
	spool_env_fini(&e);
}

#define MANY 300

static void
test_concurrent_commits_all_present(void **state)
{
	struct fx *f = *state;
	struct done *d = xcalloc(MANY, sizeof(*d));
	unsigned long fsyncs = fsops_calls(FSOPS_FSYNC);
	struct hk_err err;
	size_t i, finished = 0;

	for (i = 0; i < MANY; i++) {
		struct spool_env e;
		struct buf body;

		make_env(&e, 1000 + i);
		make_body(&body);
		assert_int_equal(spool_commit(f->sp, &e, &body, done_cb, &d[i], &err), 0);
		spool_env_fini(&e);
	}
	assert_int_equal(spool_inflight(f->sp), MANY);
	while (finished < MANY) {
		jobs_wait_completions(f->hub);
		for (finished = 0, i = 0; i < MANY; i++)
			finished += d[i].calls;
	}
	assert_int_equal(spool_inflight(f->sp), 0);
	for (i = 0; i < MANY; i++) {
		struct spool_env e;

		assert_int_equal(d[i].calls, 1);
		assert_int_equal(d[i].rc, 0);
		make_env(&e, 1000 + i);
		assert_queued(f, &e);
		spool_env_fini(&e);
	}
	assert_int_equal(count_entries(f, "queue"), MANY);
	assert_int_equal(count_entries(f, "tmp"), 0);
	/*
	 * Group commit: one file fsync per message, and directory fsyncs shared between
	 * commits that were in flight together (300 at once cannot each get their own).
	 */
	fsyncs = fsops_calls(FSOPS_FSYNC) - fsyncs;
	assert_true(fsyncs >= MANY + 1);
	assert_true(fsyncs < 2 * MANY);
	free(d);
}

static void
test_busy_limit(void **state)
{
	struct fx *f = *state;
	struct done d[3] = { 0 };
	struct spool_env e;
	struct buf body;
	struct hk_err err = { 0 };
	size_t i;

	spool_free(f->sp);
	f->sp = spool_new(f->dir, f->hub, 2, 2, &err);
	assert_non_null(f->sp);
	for (i = 0; i < 2; i++) {
		make_env(&e, 500 + i);
		make_body(&body);
		assert_int_equal(spool_commit(f->sp, &e, &body, done_cb, &d[i], &err), 0);
		spool_env_fini(&e);
	}
	assert_int_equal(spool_inflight(f->sp), 2);
	make_env(&e, 502);
	make_body(&body);
	assert_int_equal(spool_commit(f->sp, &e, &body, done_cb, &d[2], &err), -1);
	assert_int_equal(err.code, HK_E_BUSY);
	/* Refused at once: the caller keeps its body and gets no callback. */
	assert_string_equal(body.ptr, body_text);
	buf_fini(&body);
	while (d[0].calls + d[1].calls < 2)
		jobs_wait_completions(f->hub);
	assert_int_equal(d[2].calls, 0);
	assert_int_equal(spool_inflight(f->sp), 0);
	assert_false(exists(f, "queue", 502, ".env"));
	assert_int_equal(commit_now(f, &e, &d[2]), 0);
	spool_env_fini(&e);
}

static void
test_free_waits_for_inflight(void **state)
{
	struct fx *f = *state;
	struct done d[20] = { 0 };
	struct hk_err err;
	size_t i;

	for (i = 0; i < 20; i++) {
		struct spool_env e;
		struct buf body;

		make_env(&e, 900 + i);
		make_body(&body);
		assert_int_equal(spool_commit(f->sp, &e, &body, done_cb, &d[i], &err), 0);
		spool_env_fini(&e);
	}
	spool_free(f->sp);
	for (i = 0; i < 20; i++) {
		assert_int_equal(d[i].calls, 1);
		assert_int_equal(d[i].rc, 0);
	}
	f->sp = spool_new(f->dir, f->hub, 1, 1, &err);
	assert_non_null(f->sp);
	for (i = 0; i < 20; i++) {
		struct spool_env e;

		make_env(&e, 900 + i);
		assert_queued(f, &e);
		spool_env_fini(&e);
	}
}

static const char *const op_names[FSOPS_OP_COUNT] = {
	"open", "write", "read", "fsync", "close", "rename", "unlink", "mkdir", "stat", "utimens",
	"opendir", "link",
};

/* The fault of the current run, armed by the run function just before the operation. */
static struct {
	enum fsops_op op;
	unsigned n;
	int err_no;
	unsigned long before;
} fault;

static void
fault_arm(void)
{
	fault.before = fsops_calls(fault.op);
	fsops_fail_nth(fault.op, fault.n, fault.err_no);
}

/*
 * Fail the nth call of op (n = 1, 2, ...) until the operation completes without reaching the
 * fault; check() judges each outcome. Returns how many runs failed.
 */
static unsigned
fault_sweep(struct fx *f, enum fsops_op op, int err_no,
    int (*run)(struct fx *f, uint64_t id, struct done *d),
    void (*check)(struct fx *f, uint64_t id, const struct done *d, bool fired),
    uint64_t *next_id)
{
	unsigned n, failures = 0;

	for (n = 1; n < 64; n++) {
		uint64_t id = (*next_id)++;
		struct done d;
		bool fired;

		fault.op = op;
		fault.n = n;
		fault.err_no = err_no;
		run(f, id, &d);
		fired = fsops_calls(op) - fault.before >= n;
		fsops_fail_reset();
		if (d.rc == -1) {
			if (!fired)
				fail_msg("%s #%u: failed without the fault: %s", op_names[op], n,
				    d.err.text);
			assert_int_equal(d.err.code, err_no == ENOSPC ? HK_E_NOSPACE : HK_E_IO);
			assert_int_equal(d.err.sys_errno, err_no);
			failures++;
		} else if (fired) {
			fail_msg("%s #%u: fault swallowed, done_cb said 0", op_names[op], n);
		}
		check(f, id, &d, fired);
		assert_int_equal(count_entries(f, "tmp"), 0);
		if (!fired)
			return failures;
	}
	fail_msg("%s: no success after 63 faults", op_names[op]);
	return failures;
}

static int
run_commit(struct fx *f, uint64_t id, struct done *d)
{
	struct spool_env e;
	int rc;

	make_env(&e, id);
	fault_arm();
	rc = commit_now(f, &e, d);
	spool_env_fini(&e);
	return rc;
}

static void
check_commit(struct fx *f, uint64_t id, const struct done *d, bool fired)
{
	(void)fired;
	if (d->rc == 0) {
		struct spool_env e;

		make_env(&e, id);
		assert_queued(f, &e);
		spool_env_fini(&e);
	} else {
		/* Nothing half-committed: neither envelope nor body. */
		assert_false(exists(f, "queue", id, ".env"));
		assert_false(exists(f, "queue", id, ".msg"));
	}
}

static void
commit_faults(struct fx *f, const unsigned expect[FSOPS_OP_COUNT])
{
	static const int errs[] = { EIO, ENOSPC };
	uint64_t next_id = 0x100;
	size_t i;
	int op;

	for (i = 0; i < HK_ARRAY_LEN(errs); i++) {
		for (op = 0; op < FSOPS_OP_COUNT; op++) {
			unsigned failures = fault_sweep(f, (enum fsops_op)op, errs[i], run_commit,
			    check_commit, &next_id);

			if (failures != expect[op])
				fail_msg("%s: %u failing calls, want %u", op_names[op], failures,
				    expect[op]);
		}
	}
}

static void
test_commit_faults(void **state)
{
	/*
	 * Failing calls in one commit: a map of its syscalls (group fsync included). Envelope and
	 * body are written (two writes) into one unnamed file, which is linked in.
	 */
	static const unsigned expect[FSOPS_OP_COUNT] = {
		[FSOPS_OPEN] = 1, [FSOPS_WRITE] = 2, [FSOPS_FSYNC] = 2, [FSOPS_CLOSE] = 1,
		[FSOPS_LINK] = 1, [FSOPS_UTIMENS] = 1,
	};
	struct fx *f = *state;

	assert_true(f->sp->use_tmpfile);
	commit_faults(f, expect);
}

static void
test_commit_faults_without_tmpfile(void **state)
{
	/* The fallback for filesystems without O_TMPFILE: the file in tmp/, then a rename. */
	static const unsigned expect[FSOPS_OP_COUNT] = {
		[FSOPS_OPEN] = 1, [FSOPS_WRITE] = 2, [FSOPS_FSYNC] = 2, [FSOPS_CLOSE] = 1,
		[FSOPS_RENAME] = 1, [FSOPS_UTIMENS] = 1,
	};
	struct fx *f = *state;

	f->sp->use_tmpfile = false;
	commit_faults(f, expect);
}

/* Update: the message 0x55 is queued; each run writes a new envelope with attempts = id. */
static struct spool_env *update_current;

static void
make_update_env(struct spool_env *e, uint64_t n)
{
	make_env(e, 0x55);
	e->attempts = (unsigned)n;
	e->next_attempt_ms += n * 1000;
	e->rcpts[0].state = SPOOL_RCPT_SENT;
}

static int
run_update(struct fx *f, uint64_t n, struct done *d)
{
	struct spool_env e;
	struct hk_err err;

	make_update_env(&e, n);
	memset(d, 0, sizeof(*d));
	fault_arm();
	assert_int_equal(spool_update(f->sp, &e, done_cb, d, &err), 0);
	wait_done(f, d);
	spool_env_fini(&e);
	return d->rc;
}

static void
check_update(struct fx *f, uint64_t n, const struct done *d, bool fired)
{
	struct spool_env want, got = { 0 };
	struct hk_err err;

	(void)fired;
	make_update_env(&want, n);
	assert_int_equal(spool_load(f->sp, 0x55, &got, &err), 0);
	if (d->rc == 0) {
		assert_true(env_same(&want, &got));
	} else if (!env_same(&want, &got)) {
		/* Failed before the rename: the old envelope is intact. */
		assert_true(env_same(update_current, &got));
	} else {
		/* Only the directory fsync can fail after the rename; either version is valid. */
		assert_non_null(strstr(d->err.text, "fsync queue/"));
	}
	spool_env_fini(update_current);
	*update_current = got;
	spool_env_fini(&want);
	assert_true(exists(f, "queue", 0x55, ".msg"));
}

static void
test_update_faults(void **state)
{
	static const unsigned expect[FSOPS_OP_COUNT] = {
		[FSOPS_OPEN] = 1, [FSOPS_WRITE] = 1, [FSOPS_FSYNC] = 2, [FSOPS_CLOSE] = 1,
		[FSOPS_RENAME] = 1, [FSOPS_UTIMENS] = 1, [FSOPS_STAT] = 1,
	};
	static const int errs[] = { EIO, ENOSPC };
	struct fx *f = *state;
	struct spool_env cur;
	uint64_t next_n = 1;
	struct hk_err err;
	struct done d;
	size_t i;
	int op;

	make_env(&cur, 0x55);
	assert_int_equal(commit_now(f, &cur, &d), 0);
	/* The first update moves the body out of the envelope (test_update_splits_body). */
	spool_env_fini(&cur);
	make_update_env(&cur, 0);
	memset(&d, 0, sizeof(d));
	assert_int_equal(spool_update(f->sp, &cur, done_cb, &d, &err), 0);
	wait_done(f, &d);
	assert_int_equal(d.rc, 0);
	assert_true(exists(f, "queue", 0x55, ".msg"));
	update_current = &cur;
	for (i = 0; i < HK_ARRAY_LEN(errs); i++) {
		for (op = 0; op < FSOPS_OP_COUNT; op++) {
			unsigned failures = fault_sweep(f, (enum fsops_op)op, errs[i], run_update,
			    check_update, &next_n);

			if (failures != expect[op])
				fail_msg("update %s: %u failing calls, want %u", op_names[op],
				    failures, expect[op]);
		}
	}
	spool_env_fini(&cur);
	update_current = NULL;
}

static void
test_update_of_missing_message(void **state)
{
	struct fx *f = *state;
	struct spool_env e;
	struct hk_err err;
	struct done d = { 0 };

	make_env(&e, 0x66);
	assert_int_equal(spool_update(f->sp, &e, done_cb, &d, &err), 0);
	wait_done(f, &d);
	assert_int_equal(d.rc, -1);
	assert_int_equal(d.err.code, HK_E_NOTFOUND);
	/* No envelope without body is ever created. */
	assert_false(exists(f, "queue", 0x66, ".env"));
	spool_env_fini(&e);
}

static int
run_finish(struct fx *f, uint64_t id, struct done *d)
{
	struct spool_env e;
	struct hk_err err;

	make_env(&e, id);
	assert_int_equal(commit_now(f, &e, d), 0);
	spool_env_fini(&e);
	memset(d, 0, sizeof(*d));
	fault_arm();
	assert_int_equal(spool_finish(f->sp, id, done_cb, d, &err), 0);
	wait_done(f, d);
	return d->rc;
}

static void
check_finish(struct fx *f, uint64_t id, const struct done *d, bool fired)
{
	struct hk_err err;
	struct done again = { 0 };

	(void)fired;
	if (d->rc == 0) {
		assert_false(exists(f, "queue", id, ".env"));
		assert_false(exists(f, "queue", id, ".msg"));
		return;
	}
	/* Never an envelope without its body. */
	if (exists(f, "queue", id, ".env")) {
		struct buf body = BUF_INIT;

		assert_int_equal(spool_load_body(f->sp, id, &body, &err), 0);
		assert_int_equal(body.len, strlen(body_text));
		buf_fini(&body);
	}
	/* Finishing again (no faults) completes the job. */
	assert_int_equal(spool_finish(f->sp, id, done_cb, &again, &err), 0);
	wait_done(f, &again);
	assert_int_equal(again.rc, 0);
	assert_false(exists(f, "queue", id, ".env"));
	assert_false(exists(f, "queue", id, ".msg"));
}

static void
test_finish_faults(void **state)
{
	/*
	 * The envelope (holding the body) is renamed to a free name after a stat (big files are
	 * removed instead); then a body file of its own is looked for (a stat: there is none).
	 */
	static const unsigned expect[FSOPS_OP_COUNT] = {
		[FSOPS_RENAME] = 1, [FSOPS_FSYNC] = 1, [FSOPS_STAT] = 2,
	};
	static const int errs[] = { EIO, ENOSPC };
	struct fx *f = *state;
	uint64_t next_id = 0x9000;
	size_t i;
	int op;

	for (i = 0; i < HK_ARRAY_LEN(errs); i++) {
		for (op = 0; op < FSOPS_OP_COUNT; op++) {
			unsigned failures = fault_sweep(f, (enum fsops_op)op, errs[i], run_finish,
			    check_finish, &next_id);
			if (failures != expect[op])
				fail_msg("finish %s: %u failing calls, want %u", op_names[op],
				    failures, expect[op]);
		}
	}
}

/* Inode number of queue/<id><ext>. */
static ino_t
ino_of(struct fx *f, uint64_t id, const char *ext)
{
	char path[256], hex[ID_HEX_LEN + 1];
	struct stat st;

	id_format(id, hex);
	snprintf(path, sizeof(path), "%s/queue/%s%s", f->dir, hex, ext);
	assert_int_equal(stat(path, &st), 0);
	return st.st_ino;
}

/* Commit n messages from id, then finish them all: fills the pool with n free files. */
static void
fill_pool(struct fx *f, uint64_t id, unsigned n)
{
	struct hk_err err;
	unsigned i;

	for (i = 0; i < n; i++) {
		struct spool_env e;
		struct done d;

		make_env(&e, id + i);
		assert_int_equal(commit_now(f, &e, &d), 0);
		spool_env_fini(&e);
	}
	for (i = 0; i < n; i++) {
		struct done d = { 0 };

		assert_int_equal(spool_finish(f->sp, id + i, done_cb, &d, &err), 0);
		wait_done(f, &d);
		assert_int_equal(d.rc, 0);
	}
}

/* Update synchronously (no faults armed). */
static void
update_now(struct fx *f, const struct spool_env *e)
{
	struct done d = { 0 };
	struct hk_err err;

	assert_int_equal(spool_update(f->sp, e, done_cb, &d, &err), 0);
	wait_done(f, &d);
	assert_int_equal(d.rc, 0);
}

/*
 * A finished message's files are reused, but only once the directory fsync made their free
 * names durable: the envelope's at the finish's own fsync, a body file's at the next one.
 */
static void
test_reuse_waits_for_dirsync(void **state)
{
	struct fx *f = *state;
	struct spool_env e;
	struct done d;
	struct hk_err err;
	ino_t a_env, a_msg;

	/* A gets a body file of its own through an update. */
	make_env(&e, 0xA0);
	assert_int_equal(commit_now(f, &e, &d), 0);
	e.attempts = 1;
	update_now(f, &e);
	spool_env_fini(&e);
	a_env = ino_of(f, 0xA0, ".env");
	a_msg = ino_of(f, 0xA0, ".msg");
	memset(&d, 0, sizeof(d));
	assert_int_equal(spool_finish(f->sp, 0xA0, done_cb, &d, &err), 0);
	wait_done(f, &d);
	assert_int_equal(d.rc, 0);
	assert_false(exists(f, "queue", 0xA0, ".env"));
	assert_false(exists(f, "queue", 0xA0, ".msg"));
	assert_int_equal(spool_reuse_count(f->sp), 2);

	/* B takes A's envelope inode; A's body is not durable yet as a free file. */
	make_env(&e, 0xB0);
	assert_int_equal(commit_now(f, &e, &d), 0);
	assert_queued(f, &e);
	spool_env_fini(&e);
	assert_true(ino_of(f, 0xB0, ".env") == a_env);
	/* C: B's directory fsync covered A's body. */
	make_env(&e, 0xC0);
	assert_int_equal(commit_now(f, &e, &d), 0);
	assert_queued(f, &e);
	spool_env_fini(&e);
	assert_true(ino_of(f, 0xC0, ".env") == a_msg);
	assert_int_equal(spool_reuse_count(f->sp), 0);
	/* Loads see the new contents only, at the new size. */
	assert_int_equal(count_entries(f, "queue"), 2);
}

/*
 * The first update moves the body out of the envelope: body file complete and its name durable
 * before the envelope is replaced. A failure on the way leaves the message as it was.
 */
static void
test_update_splits_body(void **state)
{
	struct fx *f = *state;
	struct spool_env e;
	struct done d;
	struct hk_err err;
	struct stat st;
	char path[256], hex[ID_HEX_LEN + 1];

	make_env(&e, 0x77);
	assert_int_equal(commit_now(f, &e, &d), 0);
	e.attempts = 2;
	/* The body file's link fails: no body file, the old envelope with its body intact. */
	fsops_fail_nth(FSOPS_LINK, 1, EIO);
	memset(&d, 0, sizeof(d));
	assert_int_equal(spool_update(f->sp, &e, done_cb, &d, &err), 0);
	wait_done(f, &d);
	fsops_fail_reset();
	assert_int_equal(d.rc, -1);
	assert_false(exists(f, "queue", 0x77, ".msg"));
	e.attempts = 0;
	assert_queued(f, &e);
	/* Then it works: the body in its own file, the envelope file only the envelope. */
	e.attempts = 2;
	update_now(f, &e);
	assert_true(exists(f, "queue", 0x77, ".msg"));
	assert_queued(f, &e);
	id_format(0x77, hex);
	snprintf(path, sizeof(path), "%s/queue/%s.msg", f->dir, hex);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((size_t)st.st_size, strlen(body_text));
	snprintf(path, sizeof(path), "%s/queue/%s.env", f->dir, hex);
	assert_int_equal(stat(path, &st), 0);
	assert_true((size_t)st.st_size < 1000);
	/* A second update leaves the body file alone. */
	e.attempts = 3;
	update_now(f, &e);
	assert_queued(f, &e);
	spool_env_fini(&e);
}

/* The same fault sweep as test_commit_faults, with every file coming from the pool. */
static void
test_commit_faults_reused(void **state)
{
	static const unsigned expect[FSOPS_OP_COUNT] = {
		[FSOPS_OPEN] = 1, [FSOPS_WRITE] = 2, [FSOPS_FSYNC] = 2, [FSOPS_CLOSE] = 1,
		[FSOPS_RENAME] = 1, [FSOPS_UTIMENS] = 1, [FSOPS_STAT] = 1,
	};
	struct fx *f = *state;
	size_t before;

	fill_pool(f, 0x50000, 400);
	before = spool_reuse_count(f->sp);
	assert_true(before >= 399);
	commit_faults(f, expect);
	/* Every run took its file from the pool: RENAME above counts only that path. */
	assert_true(spool_reuse_count(f->sp) + 30 < before);
	assert_true(spool_reuse_count(f->sp) > 0);
}

/* Read a whole small file into a NUL-terminated string. */
static char *
slurp(const char *path)
{
	struct buf b = BUF_INIT;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fsops_read_all(fd, &b, 1 << 20), 0);
	close(fd);
	return b.ptr ? b.ptr : xstrdup("");
}

/* A finished envelope with a second name (a kept body links to it) is unlinked, not recycled. */
static void
test_linked_files_are_not_recycled(void **state)
{
	struct fx *f = *state;
	char hex[ID_HEX_LEN + 1], *src, *kept, *before_text, *after_text;
	struct spool_env e;
	struct done d = { 0 };
	struct hk_err err;
	size_t before;

	make_env(&e, 0x70);
	assert_int_equal(commit_now(f, &e, &d), 0);
	id_format(e.id, hex);
	src = xasprintf("%s/queue/%s.env", f->dir, hex);
	kept = xasprintf("%s/kept", f->dir);
	assert_int_equal(link(src, kept), 0);
	before_text = slurp(kept);
	before = spool_reuse_count(f->sp);
	memset(&d, 0, sizeof(d));
	assert_int_equal(spool_finish(f->sp, e.id, done_cb, &d, &err), 0);
	wait_done(f, &d);
	assert_int_equal(d.rc, 0);
	assert_false(exists(f, "queue", e.id, ".env"));
	assert_int_equal(spool_reuse_count(f->sp), before);
	/* Later commits (which take free files) leave the kept name alone. */
	fill_pool(f, 0x71000, 3);
	spool_env_fini(&e);
	make_env(&e, 0x72000 - 1);
	assert_int_equal(commit_now(f, &e, &d), 0);
	after_text = slurp(kept);
	assert_string_equal(before_text, after_text);
	assert_non_null(strstr(after_text, body_text));
	spool_env_fini(&e);
	free(before_text);
	free(after_text);
	free(src);
	free(kept);
}

/* A free file that got a second name anyway is dropped by the commit that takes it. */
static void
test_free_file_with_second_name_is_not_rewritten(void **state)
{
	struct fx *f = *state;
	char path[512], *extra, *before_text, *after_text;
	struct dirent *de;
	struct spool_env e;
	struct done d;
	DIR *dir;
	size_t n_free = 0;

	fill_pool(f, 0x72000, 1);
	assert_int_equal(spool_reuse_count(f->sp), 1);
	snprintf(path, sizeof(path), "%s/queue", f->dir);
	dir = opendir(path);
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, ".free-", 6) == 0) {
			snprintf(path, sizeof(path), "%s/queue/%s", f->dir, de->d_name);
			n_free++;
		}
	}
	closedir(dir);
	assert_int_equal(n_free, 1);
	extra = xasprintf("%s/extra", f->dir);
	assert_int_equal(link(path, extra), 0);
	before_text = slurp(extra);
	make_env(&e, 0x73000);
	assert_int_equal(commit_now(f, &e, &d), 0);
	assert_queued(f, &e);
	after_text = slurp(extra);
	assert_string_equal(before_text, after_text);
	assert_int_equal(spool_reuse_count(f->sp), 0);
	assert_int_equal(access(path, F_OK), -1); /* the free name is gone */
	spool_env_fini(&e);
	free(before_text);
	free(after_text);
	free(extra);
}

/* What the keep hook saw: the id and the bytes from fd's position on. */
struct kept {
	int calls;
	uint64_t id;
	struct buf body;
};

static void
keep_hook(void *arg, uint64_t id, int fd)
{
	struct kept *k = arg;

	k->calls++;
	k->id = id;
	buf_reset(&k->body);
	assert_int_equal(fsops_read_all(fd, &k->body, 1 << 20), 0);
}

static void
finish_now(struct fx *f, uint64_t id)
{
	struct done d = { 0 };
	struct hk_err err;

	assert_int_equal(spool_finish(f->sp, id, done_cb, &d, &err), 0);
	wait_done(f, &d);
	assert_int_equal(d.rc, 0);
}

/* A finish hands the body to the keep hook before the files go: embedded or in its own file. */
static void
test_finish_hands_body_to_keep_hook(void **state)
{
	struct fx *f = *state;
	struct kept k = { 0 };
	struct spool_env e;
	struct done d;

	buf_init(&k.body);
	spool_set_keep(f->sp, keep_hook, &k);
	make_env(&e, 0x90);
	assert_int_equal(commit_now(f, &e, &d), 0);
	finish_now(f, e.id);
	assert_int_equal(k.calls, 1);
	assert_true(k.id == e.id);
	assert_int_equal(k.body.len, strlen(body_text));
	assert_memory_equal(k.body.ptr, body_text, k.body.len);
	spool_env_fini(&e);

	/* After an update the body has a file of its own. */
	make_env(&e, 0x91);
	assert_int_equal(commit_now(f, &e, &d), 0);
	e.attempts = 1;
	update_now(f, &e);
	assert_true(exists(f, "queue", e.id, ".msg"));
	finish_now(f, e.id);
	assert_int_equal(k.calls, 2);
	assert_true(k.id == e.id);
	assert_int_equal(k.body.len, strlen(body_text));
	assert_memory_equal(k.body.ptr, body_text, k.body.len);

	/* A finish retried after the files went has nothing to hand over. */
	finish_now(f, e.id);
	assert_int_equal(k.calls, 2);
	spool_env_fini(&e);

	/* Off: no more calls. */
	spool_set_keep(f->sp, NULL, NULL);
	make_env(&e, 0x92);
	assert_int_equal(commit_now(f, &e, &d), 0);
	finish_now(f, e.id);
	assert_int_equal(k.calls, 2);
	spool_env_fini(&e);
	buf_fini(&k.body);
}

/* Updates write into a free file and rename it over the old envelope. */
static void
test_update_reuses_files(void **state)
{
	struct fx *f = *state;
	struct spool_env e;
	struct done d;
	struct hk_err err;
	size_t before;

	fill_pool(f, 0x60000, 4);
	make_env(&e, 0x61);
	assert_int_equal(commit_now(f, &e, &d), 0);
	before = spool_reuse_count(f->sp);
	e.attempts = 3;
	e.rcpts[0].state = SPOOL_RCPT_DEFERRED;
	memset(&d, 0, sizeof(d));
	assert_int_equal(spool_update(f->sp, &e, done_cb, &d, &err), 0);
	wait_done(f, &d);
	assert_int_equal(d.rc, 0);
	assert_queued(f, &e);
	assert_int_equal(spool_reuse_count(f->sp), before - 1);
	spool_env_fini(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_creates_dirs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_fails_cleanly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_then_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reuse_waits_for_dirsync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_faults_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_reuses_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_linked_files_are_not_recycled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finish_hands_body_to_keep_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_file_with_second_name_is_not_rewritten,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_splits_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_commits_all_present, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_busy_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_waits_for_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_faults_without_tmpfile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_of_missing_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finish_faults, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
