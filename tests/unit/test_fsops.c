/* test_fsops.c - the filesystem seam and its fault injection. */
#include <errno.h>
#include <fcntl.h>
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

#include "util/fsops.h"
#include "util/poison.h"

struct fixture {
	char dir[64];
	int dfd;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/hk-fsops-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->dfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	if (f->dfd == -1)
		return -1;
	fsops_fail_reset();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	fsops_fail_reset();
	close(f->dfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Create name in the fixture dir with contents s; -1 and errno on failure. */
static int
write_file(struct fixture *f, const char *name, const char *s)
{
	int fd = fsops_openat(f->dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0640);

	if (fd == -1)
		return -1;
	if (fsops_write_all(fd, s, strlen(s)) == -1 || fsops_fsync(fd) == -1) {
		int e = errno;

		fsops_close(fd);
		errno = e;
		return -1;
	}
	return fsops_close(fd);
}

static void
test_fsops_basic_operations(void **state)
{
	struct fixture *f = *state;
	struct buf b = BUF_INIT;
	struct stat st;
	DIR *d;
	int fd, n = 0;
	struct dirent *de;

	assert_int_equal(fsops_mkdirat(f->dfd, "queue", 0750), 0);
	assert_int_equal(write_file(f, "x.tmp", "hello\r\n"), 0);
	assert_int_equal(fsops_renameat(f->dfd, "x.tmp", f->dfd, "queue/x.msg"), 0);
	assert_int_equal(fsops_fstatat(f->dfd, "queue/x.msg", &st, 0), 0);
	assert_int_equal(st.st_size, 7);

	fd = fsops_openat(f->dfd, "queue/x.msg", O_RDONLY, 0);
	assert_true(fd >= 0);
	/* Descriptors are close-on-exec so hooks never inherit the spool. */
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(fsops_read_all(fd, &b, 1000), 0);
	assert_string_equal(b.ptr, "hello\r\n");
	assert_int_equal(fsops_close(fd), 0);

	assert_int_equal(fsops_set_mtime_ms(f->dfd, "queue/x.msg", 1700000000123ULL), 0);
	assert_int_equal(fsops_fstatat(f->dfd, "queue/x.msg", &st, 0), 0);
	assert_int_equal(st.st_mtim.tv_sec, 1700000000);
	assert_int_equal(st.st_mtim.tv_nsec, 123000000);

	d = fsops_opendirat(f->dfd, "queue");
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	assert_int_equal(n, 1);

	assert_int_equal(fsops_unlinkat(f->dfd, "queue/x.msg", 0), 0);
	assert_int_equal(fsops_fstatat(f->dfd, "queue/x.msg", &st, 0), -1);
	assert_int_equal(errno, ENOENT);
	assert_null(fsops_opendirat(f->dfd, "missing"));
	buf_fini(&b);
}

static void
test_fsops_read_all_limit(void **state)
{
	struct fixture *f = *state;
	struct buf b = BUF_INIT;
	static char big[40000];
	int fd;

	memset(big, 'z', sizeof(big) - 1);
	assert_int_equal(write_file(f, "big", big), 0);
	fd = fsops_openat(f->dfd, "big", O_RDONLY, 0);
	assert_int_equal(fsops_read_all(fd, &b, sizeof(big) - 1), 0);
	assert_int_equal(b.len, sizeof(big) - 1);
	fsops_close(fd);

	buf_reset(&b);
	fd = fsops_openat(f->dfd, "big", O_RDONLY, 0);
	assert_int_equal(fsops_read_all(fd, &b, 1000), -1);
	assert_int_equal(errno, EFBIG);
	fsops_close(fd);
	buf_fini(&b);
}

static void
test_fsops_fail_nth_counts(void **state)
{
	struct fixture *f = *state;
	unsigned long before = fsops_calls(FSOPS_FSYNC);

	fsops_fail_nth(FSOPS_FSYNC, 3, EIO);
	assert_int_equal(write_file(f, "a", "1"), 0);
	assert_int_equal(write_file(f, "b", "2"), 0);
	errno = 0;
	assert_int_equal(write_file(f, "c", "3"), -1);
	assert_int_equal(errno, EIO);
	/* One-shot: the fourth call works again. */
	assert_int_equal(write_file(f, "d", "4"), 0);
	assert_int_equal(fsops_calls(FSOPS_FSYNC) - before, 4);
}

static void
test_fsops_fail_first(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	fsops_fail_nth(FSOPS_OPEN, 1, ENOSPC);
	assert_int_equal(write_file(f, "a", "1"), -1);
	assert_int_equal(errno, ENOSPC);
	/* A failed open creates nothing. */
	assert_int_equal(fstatat(f->dfd, "a", &st, 0), -1);
	assert_int_equal(write_file(f, "a", "1"), 0);
}

static void
test_fsops_fail_is_per_operation(void **state)
{
	struct fixture *f = *state;

	fsops_fail_nth(FSOPS_RENAME, 1, EIO);
	/* Opens, writes, fsyncs and closes are untouched. */
	assert_int_equal(write_file(f, "a", "1"), 0);
	assert_int_equal(fsops_renameat(f->dfd, "a", f->dfd, "b"), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(fsops_renameat(f->dfd, "a", f->dfd, "b"), 0);
}

static void
test_fsops_always_until_reset(void **state)
{
	struct fixture *f = *state;
	int i;

	fsops_fail_nth(FSOPS_WRITE, 0, EDQUOT);
	for (i = 0; i < 5; i++) {
		assert_int_equal(write_file(f, "a", "1"), -1);
		assert_int_equal(errno, EDQUOT);
	}
	fsops_fail_reset();
	assert_int_equal(write_file(f, "a", "1"), 0);
}

static void
test_fsops_reset_disarms_nth(void **state)
{
	struct fixture *f = *state;
	int i;

	fsops_fail_nth(FSOPS_FSYNC, 2, EIO);
	fsops_fail_nth(FSOPS_CLOSE, 0, EIO);
	fsops_fail_reset();
	for (i = 0; i < 4; i++)
		assert_int_equal(write_file(f, "a", "1"), 0);
}

static void
test_fsops_rearm_replaces(void **state)
{
	struct fixture *f = *state;

	/* Arming again replaces the earlier fault, including "always". */
	fsops_fail_nth(FSOPS_FSYNC, 0, EIO);
	fsops_fail_nth(FSOPS_FSYNC, 2, ENOSPC);
	assert_int_equal(write_file(f, "a", "1"), 0);
	assert_int_equal(write_file(f, "a", "1"), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(write_file(f, "a", "1"), 0);
}

static void
test_fsops_close_failure_still_closes(void **state)
{
	struct fixture *f = *state;
	int fd;

	fd = fsops_openat(f->dfd, "a", O_WRONLY | O_CREAT, 0640);
	assert_true(fd >= 0);
	fsops_fail_nth(FSOPS_CLOSE, 1, EIO);
	assert_int_equal(fsops_close(fd), -1);
	assert_int_equal(errno, EIO);
	/* The descriptor is gone all the same: no leak on the error path. */
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
}

static void
test_fsops_fail_opendir_and_others(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	fsops_fail_nth(FSOPS_OPENDIR, 1, EMFILE);
	assert_null(fsops_opendirat(f->dfd, "."));
	assert_int_equal(errno, EMFILE);
	fsops_fail_nth(FSOPS_MKDIR, 1, EROFS);
	assert_int_equal(fsops_mkdirat(f->dfd, "d", 0700), -1);
	assert_int_equal(errno, EROFS);
	fsops_fail_nth(FSOPS_STAT, 1, EIO);
	assert_int_equal(fsops_fstatat(f->dfd, ".", &st, 0), -1);
	fsops_fail_nth(FSOPS_UTIMENS, 1, EIO);
	assert_int_equal(fsops_set_mtime_ms(f->dfd, ".", 1000), -1);
	fsops_fail_nth(FSOPS_UNLINK, 1, EIO);
	assert_int_equal(fsops_unlinkat(f->dfd, "nothing", 0), -1);
	assert_int_equal(errno, EIO);
	fsops_fail_nth(FSOPS_READ, 1, EIO);
	{
		struct buf b = BUF_INIT;

		assert_int_equal(fsops_read_all(f->dfd, &b, 10), -1);
		assert_int_equal(errno, EIO);
		buf_fini(&b);
	}
}

static void
test_fsops_fail_parse_valid(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(fsops_fail_parse("fsync:2:EIO"), 0);
	assert_int_equal(write_file(f, "a", "1"), 0);
	assert_int_equal(write_file(f, "a", "1"), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(write_file(f, "a", "1"), 0);

	assert_int_equal(fsops_fail_parse("open:1:ENOSPC,rename:0:EROFS"), 0);
	assert_int_equal(write_file(f, "a", "1"), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(fsops_renameat(f->dfd, "a", f->dfd, "b"), -1);
	assert_int_equal(errno, EROFS);
	assert_int_equal(fsops_renameat(f->dfd, "a", f->dfd, "b"), -1);
	fsops_fail_reset();
	assert_int_equal(fsops_renameat(f->dfd, "a", f->dfd, "b"), 0);

	assert_int_equal(fsops_fail_parse("write:1:EDQUOT,close:1:EMFILE,mkdir:1:EIO,"
	    "stat:1:EIO,utimens:1:EIO,opendir:1:EIO,unlink:1:EIO,read:1:EIO"), 0);
	assert_int_equal(write_file(f, "a", "1"), -1);
	assert_int_equal(errno, EDQUOT);
}

static void
test_fsops_fail_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"fsync", "fsync:", "fsync:1", "fsync:1:", "fsync::EIO", ":1:EIO", "fsync:x:EIO",
		"fsync:-1:EIO", "fsync:1:eio", "fsync:1:EAGAIN", "fsync:1:EIO:", "Fsync:1:EIO",
		"fsyncs:1:EIO", "fsync:1:EIO,,open:1:EIO", ",fsync:1:EIO", "fsync: 1:EIO",
		"fsync:10000000000:EIO", "fsync:1:EIO;open:1:EIO",
	};
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (fsops_fail_parse(bad[i]) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* A spec that is wrong anywhere arms nothing, not even its valid part. */
	assert_int_equal(fsops_fail_parse("fsync:1:EIO,bogus:1:EIO"), -1);
	assert_int_equal(write_file(f, "a", "1"), 0);
	assert_int_equal(fsops_fail_parse("open:0:EIO,fsync:1:EBADNAME"), -1);
	assert_int_equal(write_file(f, "a", "1"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fsops_basic_operations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsops_read_all_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsops_fail_nth_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsops_fail_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsops_fail_is_per_operation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsops_always_until_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsops_reset_disarms_nth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsops_rearm_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsops_close_failure_still_closes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fsops_fail_opendir_and_others, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fsops_fail_parse_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsops_fail_parse_invalid, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
