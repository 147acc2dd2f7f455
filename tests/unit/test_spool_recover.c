/* test_spool_recover.c - the start-up scan of tmp/ and queue/. */
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

#include "jobs/jobs.h"
#include "spool/spool.h"
#include "spool/spool_priv.h" /* spool_reuse_count */
#include "util/fsops.h"
#include "util/id.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/poison.h"

struct fx {
	char dir[64];
	char log_path[96];
	int log_fd;
	struct jobs *hub;
	struct spool *sp;
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

	snprintf(f->dir, sizeof(f->dir), "/tmp/hk-recover-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/* The log goes to a file outside the spool so tests can read what was reported. */
	snprintf(f->log_path, sizeof(f->log_path), "%s.log", f->dir);
	f->log_fd = open(f->log_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(f->log_fd >= 0);
	log_set_fd(f->log_fd);
	log_set_level(LOG_LEVEL_INFO);
	f->hub = jobs_new();
	f->sp = spool_new(f->dir, f->hub, 2, 100, &err);
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
	log_set_fd(2);
	close(f->log_fd);
	unlink(f->log_path);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static char *
read_log(struct fx *f)
{
	struct stat st;
	char *s;

	assert_int_equal(fstat(f->log_fd, &st), 0);
	s = xcalloc(1, (size_t)st.st_size + 1);
	assert_int_equal(pread(f->log_fd, s, (size_t)st.st_size, 0), st.st_size);
	return s;
}

static void
make_env(struct spool_env *e, uint64_t id)
{
	memset(e, 0, sizeof(*e));
	e->id = id;
	e->received_ms = 1732468369000ULL + id;
	e->from = xstrdup("app@example.com");
	e->source = xstrdup("api");
	e->size = 5;
	e->attempts = (unsigned)(id % 7);
	e->next_attempt_ms = 1732468400000ULL + id;
	spool_env_add_rcpt(e, "a@example.net", SMTP_NOTIFY_DELAY, NULL);
}

static void
done_cb(int rc, const struct hk_err *err, void *arg)
{
	int *out = arg;

	(void)err;
	*out = rc + 10;
}

static void
commit(struct fx *f, uint64_t id)
{
	struct spool_env e;
	struct buf body = BUF_INIT;
	struct hk_err err;
	int rc = 0;

	make_env(&e, id);
	buf_append_str(&body, "hello");
	assert_int_equal(spool_commit(f->sp, &e, &body, done_cb, &rc, &err), 0);
	while (rc == 0)
		jobs_wait_completions(f->hub);
	assert_int_equal(rc, 10);
	spool_env_fini(&e);
}

static void
put_file(struct fx *f, const char *sub, const char *name, const char *data)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s/%s", f->dir, sub, name);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	fputs(data, fp);
	fclose(fp);
}

static bool
has_file(struct fx *f, const char *sub, const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s/%s", f->dir, sub, name);
	return stat(path, &st) == 0;
}

static const char *
name_of(uint64_t id, const char *ext, char buf[32])
{
	id_format(id, buf);
	memcpy(buf + ID_HEX_LEN, ext, 5);
	return buf;
}

struct seen {
	size_t n;
	struct spool_env envs[16];
};

static void
recover_cb(void *arg, const struct spool_env *env)
{
	struct seen *s = arg;
	struct buf b = BUF_INIT;
	struct spool_env *copy;

	assert_true(s->n < HK_ARRAY_LEN(s->envs));
	/* The envelope is borrowed: keep a copy through the format. */
	copy = &s->envs[s->n++];
	spool_format_encode(env, &b);
	assert_int_equal(spool_format_decode(b.ptr, b.len, copy, NULL), SPOOL_FORMAT_OK);
	buf_fini(&b);
}

static void
seen_fini(struct seen *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		spool_env_fini(&s->envs[i]);
	s->n = 0;
}

static void
test_good_messages_reported(void **state)
{
	struct fx *f = *state;
	struct spool_recover_stats st;
	struct seen s = { 0 };
	struct hk_err err;
	size_t i;

	commit(f, 0x30);
	commit(f, 0x10);
	commit(f, 0x20);
	assert_int_equal(spool_recover(f->sp, recover_cb, &s, &st, &err), 0);
	assert_int_equal(st.queued, 3);
	assert_int_equal(st.corrupt, 0);
	assert_int_equal(st.tmp_removed, 0);
	assert_int_equal(st.orphan_bodies, 0);
	assert_int_equal(s.n, 3);
	/* In ID order, which is time order; every field as committed. */
	for (i = 0; i < 3; i++) {
		struct spool_env want;
		struct buf a = BUF_INIT, b = BUF_INIT;

		make_env(&want, 0x10 * (i + 1));
		spool_format_encode(&want, &a);
		spool_format_encode(&s.envs[i], &b);
		assert_string_equal(a.ptr, b.ptr);
		assert_true(s.envs[i].next_attempt_ms == 1732468400000ULL + 0x10 * (i + 1));
		buf_fini(&a);
		buf_fini(&b);
		spool_env_fini(&want);
	}
	seen_fini(&s);
	/* A second scan finds the same: recovery changes nothing that is good. */
	assert_int_equal(spool_recover(f->sp, NULL, NULL, &st, &err), 0);
	assert_int_equal(st.queued, 3);
}

static void
test_tmp_leftovers_removed(void **state)
{
	struct fx *f = *state;
	struct spool_recover_stats st;
	struct hk_err err;
	char n1[32], n2[32], n3[32];

	commit(f, 0x40);
	put_file(f, "tmp", name_of(0x41, ".msg", n1), "half a body");
	put_file(f, "tmp", name_of(0x41, ".env", n2), "hikyaku-envelope 1\nid ");
	put_file(f, "tmp", name_of(0x42, ".msg", n3), "");
	assert_int_equal(spool_recover(f->sp, NULL, NULL, &st, &err), 0);
	assert_int_equal(st.tmp_removed, 3);
	assert_int_equal(st.queued, 1);
	assert_false(has_file(f, "tmp", n1));
	assert_false(has_file(f, "tmp", n2));
	assert_false(has_file(f, "tmp", n3));
}

static void
test_envelope_without_body_to_corrupt(void **state)
{
	struct fx *f = *state;
	struct spool_recover_stats st;
	struct seen s = { 0 };
	struct hk_err err;
	char env[32];
	char *log;

	commit(f, 0x51);
	/* A valid envelope with neither a body file nor a body after it. */
	{
		struct spool_env e;
		struct buf b = BUF_INIT;

		make_env(&e, 0x50);
		spool_format_encode(&e, &b);
		put_file(f, "queue", name_of(0x50, ".env", env), b.ptr);
		buf_fini(&b);
		spool_env_fini(&e);
	}
	assert_int_equal(spool_recover(f->sp, recover_cb, &s, &st, &err), 0);
	assert_int_equal(st.corrupt, 1);
	assert_int_equal(st.queued, 1);
	assert_int_equal(s.n, 1);
	assert_true(s.envs[0].id == 0x51);
	assert_false(has_file(f, "queue", env));
	assert_true(has_file(f, "corrupt", env));
	log = read_log(f);
	assert_non_null(strstr(log, "event=corrupt qid=0000000000000050 why=\"envelope without "
	    "body\""));
	free(log);
	seen_fini(&s);
}

static void
test_body_without_envelope_removed(void **state)
{
	struct fx *f = *state;
	struct spool_recover_stats st;
	struct hk_err err;
	char msg[32];

	commit(f, 0x60);
	put_file(f, "queue", name_of(0x61, ".msg", msg), "never acknowledged");
	assert_int_equal(spool_recover(f->sp, NULL, NULL, &st, &err), 0);
	assert_int_equal(st.orphan_bodies, 1);
	assert_int_equal(st.queued, 1);
	assert_false(has_file(f, "queue", msg));
	assert_true(has_file(f, "queue", name_of(0x60, ".env", msg)));
}

static void
test_corrupt_envelopes_quarantined(void **state)
{
	struct fx *f = *state;
	struct spool_recover_stats st;
	struct seen s = { 0 };
	struct hk_err err;
	char env[32], msg[32], path[256];
	char *log;
	FILE *fp;

	commit(f, 0x70); /* flipped byte */
	commit(f, 0x71); /* truncated */
	commit(f, 0x72); /* good */
	commit(f, 0x73); /* envelope of another id */
	snprintf(path, sizeof(path), "%s/queue/%s", f->dir, name_of(0x70, ".env", env));
	fp = fopen(path, "r+");
	assert_non_null(fp);
	fseek(fp, 40, SEEK_SET);
	fputc('~', fp);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/queue/%s", f->dir, name_of(0x71, ".env", env));
	assert_int_equal(truncate(path, 50), 0);
	{
		struct spool_env other;
		struct buf b = BUF_INIT;

		make_env(&other, 0x99);
		spool_format_encode(&other, &b);
		put_file(f, "queue", name_of(0x73, ".env", env), b.ptr);
		buf_fini(&b);
		spool_env_fini(&other);
	}
	assert_int_equal(spool_recover(f->sp, recover_cb, &s, &st, &err), 0);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.corrupt, 3);
	assert_int_equal(s.n, 1);
	assert_true(s.envs[0].id == 0x72);
	/* Kept whole for a human (the body is in the envelope file), nothing left in queue/. */
	for (uint64_t id = 0x70; id <= 0x73; id += 1) {
		if (id == 0x72)
			continue;
		assert_true(has_file(f, "corrupt", name_of(id, ".env", env)));
		assert_false(has_file(f, "corrupt", name_of(id, ".msg", msg)));
		assert_false(has_file(f, "queue", env));
		assert_false(has_file(f, "queue", msg));
	}
	log = read_log(f);
	assert_non_null(strstr(log, "qid=0000000000000070 why=\"checksum mismatch\""));
	assert_non_null(strstr(log, "qid=0000000000000071 why=\"no END line\""));
	assert_non_null(strstr(log,
	    "qid=0000000000000073 why=\"id does not match the file name\""));
	free(log);
	seen_fini(&s);
}

static void
test_garbage_names_left_alone(void **state)
{
	struct fx *f = *state;
	struct spool_recover_stats st;
	struct hk_err err;
	char path[256];
	char *log;

	commit(f, 0x80);
	put_file(f, "queue", "README", "x");
	put_file(f, "queue", "0000000000000081.msg.bak", "x");
	put_file(f, "queue", "0000000000000abc.env", "lower-case hex is not ours");
	put_file(f, "queue", "evil\nlevel=error name", "x");
	put_file(f, "tmp", "notes.txt", "x");
	snprintf(path, sizeof(path), "%s/queue/0000000000000082.env", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(spool_recover(f->sp, NULL, NULL, &st, &err), 0);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.corrupt, 0);
	assert_int_equal(st.orphan_bodies, 0);
	assert_int_equal(st.tmp_removed, 0);
	assert_true(has_file(f, "queue", "README"));
	assert_true(has_file(f, "queue", "0000000000000081.msg.bak"));
	assert_true(has_file(f, "queue", "0000000000000abc.env"));
	assert_true(has_file(f, "queue", "0000000000000082.env"));
	assert_true(has_file(f, "tmp", "notes.txt"));
	log = read_log(f);
	assert_non_null(strstr(log, "event=unknown_file dir=queue name=\"README\""));
	assert_non_null(strstr(log, "dir=tmp name=\"notes.txt\""));
	/* The name is escaped: it cannot start a log line of its own. */
	assert_null(strstr(log, "\nlevel=error name"));
	free(log);
}

static void
test_io_error_is_not_corruption(void **state)
{
	struct fx *f = *state;
	struct spool_recover_stats st;
	struct hk_err err = { 0 };
	char env[32];

	commit(f, 0x90);
	fsops_fail_nth(FSOPS_READ, 1, EIO);
	assert_int_equal(spool_recover(f->sp, NULL, NULL, &st, &err), -1);
	fsops_fail_reset();
	assert_int_equal(err.code, HK_E_IO);
	/* A read error says nothing about the message: it stays queued. */
	assert_true(has_file(f, "queue", name_of(0x90, ".env", env)));
	assert_false(has_file(f, "corrupt", env));
	fsops_fail_nth(FSOPS_OPENDIR, 1, ENOSPC);
	assert_int_equal(spool_recover(f->sp, NULL, NULL, &st, &err), -1);
	fsops_fail_reset();
	assert_int_equal(err.code, HK_E_NOSPACE);
	assert_int_equal(spool_recover(f->sp, NULL, NULL, &st, &err), 0);
	assert_int_equal(st.queued, 1);
}

/* Free files (spool_reuse.c) are adopted into the pool; a malformed free name is removed. */
static void
test_free_files_adopted(void **state)
{
	struct fx *f = *state;
	struct spool_recover_stats st;
	struct hk_err err;

	commit(f, 0x70);
	put_file(f, "queue", ".free-0000000A", "old contents");
	put_file(f, "queue", ".free-0000000B", "old contents");
	put_file(f, "queue", ".free-XYZ", "junk");
	assert_int_equal(spool_recover(f->sp, NULL, NULL, &st, &err), 0);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.corrupt, 0);
	assert_int_equal(spool_reuse_count(f->sp), 2);
	assert_true(has_file(f, "queue", ".free-0000000A"));
	assert_false(has_file(f, "queue", ".free-XYZ"));
	{
		char *log = read_log(f);

		assert_null(strstr(log, "unknown_file"));
		free(log);
	}
	/* The next commit's directory fsync makes them usable; each later commit takes one. */
	commit(f, 0x71);
	commit(f, 0x72);
	assert_int_equal(spool_reuse_count(f->sp), 1);
	commit(f, 0x73);
	assert_int_equal(spool_reuse_count(f->sp), 0);
	assert_false(has_file(f, "queue", ".free-0000000A"));
	assert_false(has_file(f, "queue", ".free-0000000B"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_messages_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_files_adopted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmp_leftovers_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_envelope_without_body_to_corrupt, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_body_without_envelope_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_envelopes_quarantined, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_garbage_names_left_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_error_is_not_corruption, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
