/*
 * test_maildrop.c - maildrop file format, the sendmail writer and the daemon pickup on a real
 * spool in a temporary directory (inotify and the libevent loop included).
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
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>
#include <event2/event.h>

#include "jobs/jobs.h"
#include "spool/maildrop.h"
#include "spool/spool.h"
#include "util/clock.h"
#include "util/fsops.h"
#include "util/id.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/poison.h"

static const char test_body[] = "From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\n"
    "hello\r\n.\r\n";

struct fx {
	char dir[64];
	struct jobs *hub;
	struct spool *sp;
	struct event_base *base;
	struct id_gen ids;
	struct maildrop *md;
	size_t queued;
	struct spool_env last; /* copy of the last queued envelope's key fields */
	uint64_t last_id;
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
	struct hk_err err;

	log_set_level(LOG_LEVEL_ERROR);
	snprintf(f->dir, sizeof(f->dir), "/tmp/hk-maildrop-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->hub = jobs_new();
	f->sp = spool_new(f->dir, f->hub, 2, 0, &err);
	assert_non_null(f->sp);
	f->base = event_base_new();
	assert_non_null(f->base);
	id_gen_init(&f->ids, 1);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	maildrop_free(f->md);
	spool_free(f->sp);
	jobs_free(f->hub);
	event_base_free(f->base);
	fsops_fail_reset();
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void
queued_cb(void *arg, const struct spool_env *env)
{
	struct fx *f = arg;

	f->queued++;
	f->last_id = env->id;
	assert_string_equal(env->source, "sendmail");
}

static void
start(struct fx *f)
{
	struct maildrop_params p;
	struct hk_err err;

	memset(&p, 0, sizeof(p));
	p.base = f->base;
	p.spool = f->sp;
	p.ids = &f->ids;
	p.hostname = "relay.example";
	p.max_size = 1 << 20;
	p.max_rcpts = 10;
	p.queued_cb = queued_cb;
	p.cb_arg = f;
	f->md = maildrop_new(&p, &err);
	assert_non_null(f->md);
}

/* Run the loop once (pending scans), then wait for the commits it started. */
static void
pump(struct fx *f)
{
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	while (maildrop_inflight(f->md) > 0)
		jobs_wait_completions(f->hub);
}

static void
make_env(struct spool_env *env, const char *from)
{
	memset(env, 0, sizeof(*env));
	env->id = 1;
	env->received_ms = 1736848798000ull;
	env->from = xstrdup(from);
	env->source = xstrdup("sendmail");
	spool_env_add_rcpt(env, "b@example.net", 0, NULL);
	spool_env_add_rcpt(env, "c@example.org", SMTP_NOTIFY_FAILURE, NULL);
}

static size_t
count_dir(struct fx *f, const char *sub, const char *prefix)
{
	char path[128];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", f->dir, sub);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' && strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static void
test_codec(void **state)
{
	struct spool_env env, out;
	struct buf b = BUF_INIT;
	const char *why = NULL;
	size_t off = 0;

	(void)state;
	make_env(&env, "a@example.com");
	maildrop_encode(&env, test_body, sizeof(test_body) - 1, &b);
	memset(&out, 0, sizeof(out));
	assert_int_equal(maildrop_decode(b.ptr, b.len, &out, &off, &why), SPOOL_FORMAT_OK);
	assert_string_equal(out.from, "a@example.com");
	assert_int_equal(out.n_rcpts, 2);
	assert_int_equal(out.rcpts[1].notify, SMTP_NOTIFY_FAILURE);
	assert_int_equal(out.size, sizeof(test_body) - 1);
	assert_memory_equal(b.ptr + off, test_body, sizeof(test_body) - 1);
	spool_env_fini(&out);
	/* A body cut short (or longer than said) is not a complete file. */
	assert_int_equal(maildrop_decode(b.ptr, b.len - 1, &out, &off, &why),
	    SPOOL_FORMAT_TRUNCATED);
	assert_null(out.from);
	b.ptr[25] ^= 1; /* inside the envelope */
	assert_int_not_equal(maildrop_decode(b.ptr, b.len, &out, &off, &why), SPOOL_FORMAT_OK);
	assert_int_equal(maildrop_decode("garbage", 7, &out, &off, &why), SPOOL_FORMAT_TRUNCATED);
	spool_env_fini(&env);
	buf_fini(&b);
}

static void
test_submit_then_pickup(void **state)
{
	struct fx *f = *state;
	struct spool_env env, got;
	struct buf body = BUF_INIT;
	char name[MAILDROP_NAME_SIZE], path[256];
	struct hk_err err;
	struct stat st;

	make_env(&env, "a@example.com");
	assert_int_equal(maildrop_submit(f->dir, &env, test_body, sizeof(test_body) - 1, name,
	    &err), 0);
	spool_env_fini(&env);
	snprintf(path, sizeof(path), "%s/maildrop/%s", f->dir, name);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(count_dir(f, "maildrop", ""), 1);

	start(f);
	pump(f);
	assert_int_equal(f->queued, 1);
	assert_int_equal(maildrop_stats(f->md)->queued, 1);
	assert_int_equal(count_dir(f, "maildrop", ""), 0);
	memset(&got, 0, sizeof(got));
	assert_int_equal(spool_load(f->sp, f->last_id, &got, &err), 0);
	assert_string_equal(got.from, "a@example.com");
	assert_int_equal(got.n_rcpts, 2);
	assert_string_equal(got.rcpts[0].addr, "b@example.net");
	assert_string_equal(got.source, "sendmail");
	assert_int_not_equal(got.id, 1); /* the writer's ID is never trusted */
	assert_int_equal(spool_load_body(f->sp, f->last_id, &body, &err), 0);
	assert_int_equal(got.size, body.len);
	assert_true(strncmp(body.ptr, "Received: from local (uid ", 26) == 0);
	assert_non_null(strstr(body.ptr, "by relay.example (hikyaku) with local id "));
	assert_memory_equal(body.ptr + body.len - (sizeof(test_body) - 1), test_body,
	    sizeof(test_body) - 1);
	spool_env_fini(&got);
	buf_fini(&body);
}

/* A file dropped while the daemon runs is seen through inotify, without waiting for a timer. */
static void
test_inotify_pickup(void **state)
{
	struct fx *f = *state;
	struct spool_env env;
	char name[MAILDROP_NAME_SIZE];
	struct hk_err err;
	int rounds;

	start(f);
	pump(f);
	assert_int_equal(f->queued, 0);
	make_env(&env, "");
	assert_int_equal(maildrop_submit(f->dir, &env, test_body, sizeof(test_body) - 1, name,
	    &err), 0);
	spool_env_fini(&env);
	/* The inotify event, then the scan it schedules: two blocking loop rounds at most. */
	for (rounds = 0; rounds < 3 && f->queued == 0; rounds++) {
		event_base_loop(f->base, EVLOOP_ONCE);
		while (maildrop_inflight(f->md) > 0)
			jobs_wait_completions(f->hub);
	}
	assert_int_equal(f->queued, 1);
	assert_int_equal(count_dir(f, "maildrop", ""), 0);
}

static void
write_file(struct fx *f, const char *name, const char *data, size_t n)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/maildrop/%s", f->dir, name);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static void
test_corrupt_files(void **state)
{
	struct fx *f = *state;
	struct spool_env env;
	struct buf b = BUF_INIT;
	char path[256];

	write_file(f, "0193F2A1C4000007.0000000000000001", "not an envelope", 15);
	/* Truncated: envelope complete, body short. */
	make_env(&env, "a@example.com");
	maildrop_encode(&env, test_body, sizeof(test_body) - 1, &b);
	write_file(f, "0193F2A1C4000007.0000000000000002", b.ptr, b.len - 3);
	spool_env_fini(&env);
	buf_reset(&b);
	/* Decodes, but a recipient is no mailbox. */
	make_env(&env, "a@example.com");
	spool_env_add_rcpt(&env, "no mailbox", 0, NULL);
	maildrop_encode(&env, test_body, sizeof(test_body) - 1, &b);
	write_file(f, "0193F2A1C4000007.0000000000000003", b.ptr, b.len);
	spool_env_fini(&env);
	/* A symbolic link (to a file the daemon could read) must not be followed. */
	snprintf(path, sizeof(path), "%s/maildrop/0193F2A1C4000007.0000000000000004", f->dir);
	assert_int_equal(symlink("/etc/hostname", path), 0);
	/* A name the writer never makes. */
	write_file(f, "evil", "x", 1);
	/* An unfinished write: left alone (it is recent). */
	write_file(f, ".0193F2A1C4000007.0000000000000005", "partial", 7);

	start(f);
	pump(f);
	assert_int_equal(f->queued, 0);
	assert_int_equal(maildrop_stats(f->md)->corrupt, 5);
	assert_int_equal(count_dir(f, "corrupt", "maildrop-"), 5);
	assert_int_equal(count_dir(f, "maildrop", ""), 0);
	snprintf(path, sizeof(path), "%s/maildrop/.0193F2A1C4000007.0000000000000005", f->dir);
	assert_int_equal(access(path, F_OK), 0);
	buf_fini(&b);
}

/* A failed commit keeps the file; the next scan queues it once. */
static void
test_commit_failure_retried(void **state)
{
	struct fx *f = *state;
	struct spool_env env;
	char name[MAILDROP_NAME_SIZE];
	struct hk_err err;

	make_env(&env, "a@example.com");
	assert_int_equal(maildrop_submit(f->dir, &env, test_body, sizeof(test_body) - 1, name,
	    &err), 0);
	spool_env_fini(&env);
	fsops_fail_nth(FSOPS_FSYNC, 0, ENOSPC);
	start(f);
	pump(f);
	fsops_fail_reset();
	assert_int_equal(f->queued, 0);
	assert_true(maildrop_stats(f->md)->failed >= 1);
	assert_int_equal(count_dir(f, "maildrop", ""), 1);
	maildrop_scan(f->md);
	pump(f);
	assert_int_equal(f->queued, 1);
	assert_int_equal(count_dir(f, "maildrop", ""), 0);
}

/* The writer fails cleanly without a maildrop/ directory. */
static void
test_submit_no_dir(void **state)
{
	struct spool_env env;
	char name[MAILDROP_NAME_SIZE];
	struct hk_err err = { 0 };

	(void)state;
	make_env(&env, "a@example.com");
	assert_int_equal(maildrop_submit("/nonexistent-hk-spool", &env, "x\r\n", 3, name, &err), -1);
	assert_int_equal(err.code, HK_E_NOTFOUND);
	spool_env_fini(&env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec),
		cmocka_unit_test_setup_teardown(test_submit_then_pickup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inotify_pickup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_failure_retried, setup, teardown),
		cmocka_unit_test(test_submit_no_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
