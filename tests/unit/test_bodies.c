/* test_bodies.c - kept bodies: paths, copy, load (with the spool fallback), removal, leftovers. */
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

#include <cmocka.h>

#include "db/bodies.h"
#include "spool/spool.h"
#include "jobs/jobs.h"
#include "util/fsops.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/poison.h"

/* 2024-11-24T17:12:49.123Z, node 0, sequence 7. */
#define ID1 ((((1732468369123ULL - 1577836800000ULL)) << 20) | 7)
#define ID2 (ID1 + 1)

struct fx {
	char dir[64];
	struct jobs *hub;
	struct bodies *b;
};

struct got {
	int calls;
	int rc;
	enum hk_err_code code;
	uint64_t id;
	struct buf body;
	size_t removed;
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
	snprintf(f->dir, sizeof(f->dir), "/tmp/hk-bodies-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->hub = jobs_new();
	f->b = bodies_new(f->dir, f->hub, &err);
	if (f->b == NULL)
		fail_msg("bodies_new: %s", err.text);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	fsops_fail_reset();
	bodies_free(f->b);
	jobs_free(f->hub);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static char *
path_in(struct fx *f, const char *fmt, ...)
{
	char rel[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	return xasprintf("%s/%s", f->dir, rel);
}

static void
write_file(const char *path, const char *data, size_t n)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static bool
exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void
commit_cb(int rc, const struct hk_err *err, void *arg)
{
	(void)err;
	*(int *)arg = rc;
}

static void
load_cb(void *arg, uint64_t id, int rc, struct buf *body, const struct hk_err *err)
{
	struct got *g = arg;

	g->calls++;
	g->id = id;
	g->rc = rc;
	g->code = rc == -1 ? err->code : HK_E_OK;
	buf_move(&g->body, body);
}

static void
remove_cb(void *arg, size_t removed)
{
	struct got *g = arg;

	g->calls++;
	g->removed = removed;
}

static void
wait_calls(struct fx *f, struct got *g)
{
	while (g->calls == 0)
		jobs_wait_completions(f->hub);
	assert_int_equal(g->calls, 1);
}

/* Keep the file src from byte skip on, as the spool's finish hook does. */
static void
keep_from(struct fx *f, uint64_t id, const char *src, off_t skip, struct got *g)
{
	struct hk_err err = { 0 };
	int fd = open(src, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(lseek(fd, skip, SEEK_SET), skip);
	memset(g, 0, sizeof(*g));
	g->calls = 1;
	g->id = id;
	g->rc = bodies_keep_fd(f->b, id, fd, &err);
	g->code = g->rc == -1 ? err.code : HK_E_OK;
	close(fd);
}

static void
keep(struct fx *f, uint64_t id, const char *src, struct got *g)
{
	keep_from(f, id, src, 0, g);
}

static void
test_rel_path_is_utc_day_and_hex(void **state)
{
	char rel[BODIES_REL_PATH_SIZE];

	(void)state;
	bodies_rel_path(ID1, rel);
	assert_string_equal(rel, "2024-11-24/02400C27EE300007");
	/* The first millisecond of the ID epoch. */
	bodies_rel_path(0, rel);
	assert_string_equal(rel, "2020-01-01/0000000000000000");
}

static void
test_keep_then_load(void **state)
{
	struct fx *f = *state;
	static const char body[] = "Subject: hi\r\n\r\nhello\r\n";
	char *src = path_in(f, "src.msg"), *kept = path_in(f, "bodies/2024-11-24/02400C27EE300007");
	struct got g;

	write_file(src, body, sizeof(body) - 1);
	keep(f, ID1, src, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.id, ID1);
	assert_true(exists(kept));
	/* The source is copied, never linked: the spool recycles its files in place. */
	unlink(src);
	write_file(src, "other", 5);
	memset(&g, 0, sizeof(g));
	bodies_load(f->b, ID1, 1 << 20, load_cb, &g);
	wait_calls(f, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.body.len, sizeof(body) - 1);
	assert_memory_equal(g.body.ptr, body, sizeof(body) - 1);
	buf_fini(&g.body);
	free(src);
	free(kept);
}

/* The hook hands over a file positioned at the body (after an envelope): only the rest is kept. */
static void
test_keep_copies_from_the_position(void **state)
{
	struct fx *f = *state;
	static const char env[] = "hikyaku-envelope 1\nid 02400C27EE300007\nEND 12345678\n";
	static const char body[] = "Subject: hi\r\n\r\nEND 00000000\n\r\n";
	char *envp = path_in(f, "q.env");
	struct got g;
	struct buf both = BUF_INIT;

	buf_append_str(&both, env);
	buf_append_str(&both, body);
	write_file(envp, both.ptr, both.len);
	keep_from(f, ID1, envp, (off_t)(sizeof(env) - 1), &g);
	assert_int_equal(g.rc, 0);
	memset(&g, 0, sizeof(g));
	bodies_load(f->b, ID1, 1 << 20, load_cb, &g);
	wait_calls(f, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.body.len, sizeof(body) - 1);
	assert_memory_equal(g.body.ptr, body, sizeof(body) - 1);
	buf_fini(&g.body);
	buf_fini(&both);
	free(envp);
}

/* Mail still queued has no kept body yet: a load reads the spool's, until the kept one exists. */
static void
test_load_falls_back_to_the_spool(void **state)
{
	struct fx *f = *state;
	static const char body[] = "Subject: queued\r\n\r\nstill here\r\n";
	char *spool_dir = path_in(f, "spool"), *kept_src = path_in(f, "kept.msg");
	struct spool_env e = { 0 };
	struct hk_err err = { 0 };
	struct spool *sp;
	struct buf b = BUF_INIT;
	struct got g;
	int done_rc = 1;

	sp = spool_new(spool_dir, f->hub, 1, 0, &err);
	assert_non_null(sp);
	e.id = ID1;
	e.received_ms = 1732468369123ULL;
	e.from = xstrdup("app@example.com");
	e.source = xstrdup("smtp");
	e.size = sizeof(body) - 1;
	spool_env_add_rcpt(&e, "a@example.net", 0, NULL);
	buf_append_str(&b, body);
	assert_int_equal(spool_commit(sp, &e, &b, commit_cb, &done_rc, &err), 0);
	while (done_rc == 1)
		jobs_wait_completions(f->hub);
	assert_int_equal(done_rc, 0);

	/* Without the fallback: nothing kept. */
	memset(&g, 0, sizeof(g));
	bodies_load(f->b, ID1, 1 << 20, load_cb, &g);
	wait_calls(f, &g);
	assert_int_equal(g.code, HK_E_NOTFOUND);
	buf_fini(&g.body);

	bodies_set_spool(f->b, sp);
	memset(&g, 0, sizeof(g));
	bodies_load(f->b, ID1, 1 << 20, load_cb, &g);
	wait_calls(f, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.body.len, sizeof(body) - 1);
	assert_memory_equal(g.body.ptr, body, sizeof(body) - 1);
	buf_fini(&g.body);
	memset(&g, 0, sizeof(g));
	bodies_load(f->b, ID1, 4, load_cb, &g); /* too big counts for the queued body too */
	wait_calls(f, &g);
	assert_int_equal(g.code, HK_E_DATA);
	buf_fini(&g.body);

	/* A kept body wins over the queued one. */
	write_file(kept_src, "kept", 4);
	keep(f, ID1, kept_src, &g);
	assert_int_equal(g.rc, 0);
	memset(&g, 0, sizeof(g));
	bodies_load(f->b, ID1, 1 << 20, load_cb, &g);
	wait_calls(f, &g);
	assert_string_equal(g.body.ptr, "kept");
	buf_fini(&g.body);

	/* Neither: not found. */
	memset(&g, 0, sizeof(g));
	bodies_load(f->b, ID2, 1 << 20, load_cb, &g);
	wait_calls(f, &g);
	assert_int_equal(g.code, HK_E_NOTFOUND);
	buf_fini(&g.body);

	bodies_set_spool(f->b, NULL);
	spool_free(sp);
	spool_env_fini(&e);
	free(spool_dir);
	free(kept_src);
}

static void
test_keep_leaves_existing_body(void **state)
{
	struct fx *f = *state;
	char *src = path_in(f, "src.msg");
	struct got g;

	write_file(src, "first", 5);
	keep(f, ID1, src, &g);
	assert_int_equal(g.rc, 0);
	write_file(src, "second", 6);
	keep(f, ID1, src, &g);
	assert_int_equal(g.rc, 0);
	memset(&g, 0, sizeof(g));
	bodies_load(f->b, ID1, 1 << 20, load_cb, &g);
	wait_calls(f, &g);
	assert_string_equal(g.body.ptr, "first");
	buf_fini(&g.body);
	free(src);
}

static void
test_load_missing_is_notfound(void **state)
{
	struct fx *f = *state;
	struct got g = { 0 };

	bodies_load(f->b, ID2, 1 << 20, load_cb, &g);
	wait_calls(f, &g);
	assert_int_equal(g.rc, -1);
	assert_int_equal(g.code, HK_E_NOTFOUND);
	assert_int_equal(g.body.len, 0);
	buf_fini(&g.body);
}

static void
test_load_too_big(void **state)
{
	struct fx *f = *state;
	char *src = path_in(f, "src.msg");
	struct got g;

	write_file(src, "0123456789", 10);
	keep(f, ID1, src, &g);
	memset(&g, 0, sizeof(g));
	bodies_load(f->b, ID1, 4, load_cb, &g);
	wait_calls(f, &g);
	assert_int_equal(g.rc, -1);
	assert_int_equal(g.code, HK_E_DATA);
	buf_fini(&g.body);
	free(src);
}

static void
test_keep_write_failure_leaves_nothing(void **state)
{
	struct fx *f = *state;
	char *src = path_in(f, "src.msg"), *tmp = path_in(f, "bodies/.tmp-02400C27EE300007");
	char *kept = path_in(f, "bodies/2024-11-24/02400C27EE300007");
	struct got g;

	write_file(src, "data", 4);
	fsops_fail_nth(FSOPS_WRITE, 1, ENOSPC);
	keep(f, ID1, src, &g);
	fsops_fail_reset();
	assert_int_equal(g.rc, -1);
	assert_int_equal(g.code, HK_E_NOSPACE);
	assert_false(exists(tmp));
	assert_false(exists(kept));
	free(src);
	free(tmp);
	free(kept);
}

static void
test_remove_bodies_and_empty_days(void **state)
{
	struct fx *f = *state;
	char *src = path_in(f, "src.msg"), *day = path_in(f, "bodies/2024-11-24");
	/* A day later: 86400000 ms. */
	uint64_t id3 = ID1 + (86400000ULL << 20);
	uint64_t ids[] = { ID1, ID2, 0x0ULL };
	struct got g;

	write_file(src, "x", 1);
	keep(f, ID1, src, &g);
	keep(f, ID2, src, &g);
	keep(f, id3, src, &g);
	memset(&g, 0, sizeof(g));
	bodies_remove(f->b, ids, 1, remove_cb, &g);
	wait_calls(f, &g);
	assert_int_equal(g.removed, 1);
	assert_true(exists(day)); /* ID2 is still there */
	memset(&g, 0, sizeof(g));
	bodies_remove(f->b, ids, 3, remove_cb, &g); /* ID1 again and an unknown one: fine */
	wait_calls(f, &g);
	assert_int_equal(g.removed, 1);
	assert_false(exists(day));
	memset(&g, 0, sizeof(g));
	bodies_load(f->b, id3, 16, load_cb, &g);
	wait_calls(f, &g);
	assert_int_equal(g.rc, 0);
	buf_fini(&g.body);
	free(src);
	free(day);
}

static void
test_new_removes_tmp_leftovers(void **state)
{
	struct fx *f = *state;
	char *tmp = path_in(f, "bodies/.tmp-02400C27EE300007");
	struct hk_err err = { 0 };

	write_file(tmp, "half", 4);
	bodies_free(f->b);
	f->b = bodies_new(f->dir, f->hub, &err);
	assert_non_null(f->b);
	assert_false(exists(tmp));
	free(tmp);
}

static void
test_new_fails_without_state_dir(void **state)
{
	struct jobs *hub = jobs_new();
	struct hk_err err = { 0 };

	(void)state;
	assert_null(bodies_new("/nonexistent/hk-state", hub, &err));
	assert_int_equal(err.code, HK_E_IO);
	jobs_free(hub);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rel_path_is_utc_day_and_hex),
		cmocka_unit_test_setup_teardown(test_keep_then_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_copies_from_the_position, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_falls_back_to_the_spool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_leaves_existing_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_missing_is_notfound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_write_failure_leaves_nothing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_remove_bodies_and_empty_days, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_removes_tmp_leftovers, setup, teardown),
		cmocka_unit_test(test_new_fails_without_state_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
