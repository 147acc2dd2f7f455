/* fsops.c - filesystem seam with fault injection. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsops.h"
#include "num.h"
#include "poison.h"

struct fsops_fault {
	atomic_uint countdown; /* calls left before the failure; 0 = disarmed */
	atomic_bool always;
	atomic_int err;
	atomic_ulong calls;
};

static struct fsops_fault fsops_faults[FSOPS_OP_COUNT];

static const char *const fsops_names[FSOPS_OP_COUNT] = {
	[FSOPS_OPEN] = "open", [FSOPS_WRITE] = "write", [FSOPS_READ] = "read",
	[FSOPS_FSYNC] = "fsync", [FSOPS_CLOSE] = "close", [FSOPS_RENAME] = "rename",
	[FSOPS_UNLINK] = "unlink", [FSOPS_MKDIR] = "mkdir", [FSOPS_STAT] = "stat",
	[FSOPS_UTIMENS] = "utimens", [FSOPS_OPENDIR] = "opendir", [FSOPS_LINK] = "link",
};

/* True (errno set) when this call of op must fail. */
static bool
fsops_should_fail(enum fsops_op op)
{
	struct fsops_fault *f = &fsops_faults[op];
	unsigned c;

	atomic_fetch_add(&f->calls, 1);
	if (atomic_load(&f->always)) {
		errno = atomic_load(&f->err);
		return true;
	}
	c = atomic_load(&f->countdown);
	while (c > 0) {
		if (atomic_compare_exchange_weak(&f->countdown, &c, c - 1)) {
			if (c == 1) {
				errno = atomic_load(&f->err);
				return true;
			}
			return false;
		}
	}
	return false;
}

void
fsops_fail_nth(enum fsops_op op, unsigned n, int err)
{
	HK_ASSERT(op < FSOPS_OP_COUNT);
	atomic_store(&fsops_faults[op].err, err);
	if (n == 0) {
		atomic_store(&fsops_faults[op].always, true);
	} else {
		atomic_store(&fsops_faults[op].always, false);
		atomic_store(&fsops_faults[op].countdown, n);
	}
}

void
fsops_fail_reset(void)
{
	size_t i;

	for (i = 0; i < FSOPS_OP_COUNT; i++) {
		atomic_store(&fsops_faults[i].always, false);
		atomic_store(&fsops_faults[i].countdown, 0);
	}
}

unsigned long
fsops_calls(enum fsops_op op)
{
	return atomic_load(&fsops_faults[op].calls);
}

static int
fsops_errno_parse(const char *s, size_t n)
{
	static const struct {
		const char *name;
		int err;
	} errs[] = {
		{ "ENOSPC", ENOSPC }, { "EIO", EIO }, { "EDQUOT", EDQUOT },
		{ "EROFS", EROFS }, { "EMFILE", EMFILE },
	};
	size_t i;

	for (i = 0; i < HK_ARRAY_LEN(errs); i++) {
		if (strlen(errs[i].name) == n && memcmp(errs[i].name, s, n) == 0)
			return errs[i].err;
	}
	return 0;
}

/* Check one "op:n:ERRNO"; arm it too when apply is set. */
static int
fsops_fail_parse_one(const char *s, size_t n, bool apply)
{
	const char *c1 = memchr(s, ':', n), *c2;
	uint64_t nth;
	size_t op;
	int err;

	if (c1 == NULL || (c2 = memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - s))) == NULL)
		return -1;
	for (op = 0; op < FSOPS_OP_COUNT; op++) {
		if (strlen(fsops_names[op]) == (size_t)(c1 - s) &&
		    memcmp(fsops_names[op], s, (size_t)(c1 - s)) == 0)
			break;
	}
	if (op == FSOPS_OP_COUNT ||
	    num_parse_u64(c1 + 1, (size_t)(c2 - c1 - 1), 1000000000, &nth) == -1)
		return -1;
	err = fsops_errno_parse(c2 + 1, n - (size_t)(c2 + 1 - s));
	if (err == 0)
		return -1;
	if (apply)
		fsops_fail_nth((enum fsops_op)op, (unsigned)nth, err);
	return 0;
}

static int
fsops_fail_parse_all(const char *spec, bool apply)
{
	const char *p = spec;

	while (*p) {
		size_t n = strcspn(p, ",");

		if (fsops_fail_parse_one(p, n, apply) == -1)
			return -1;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

int
fsops_fail_parse(const char *spec)
{
	/* Check the whole spec first: a typo must not leave half of it armed. */
	if (fsops_fail_parse_all(spec, false) == -1)
		return -1;
	return fsops_fail_parse_all(spec, true);
}

int
fsops_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	if (fsops_should_fail(FSOPS_OPEN))
		return -1;
	return openat(dirfd, path, flags | O_CLOEXEC, mode);
}

int
fsops_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	if (fsops_should_fail(FSOPS_WRITE))
		return -1;
	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int
fsops_read_all(int fd, struct buf *out, size_t max)
{
	if (fsops_should_fail(FSOPS_READ))
		return -1;
	for (;;) {
		ssize_t r;

		buf_reserve(out, 16384);
		r = read(fd, out->ptr + out->len, out->cap - out->len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			return 0;
		out->len += (size_t)r;
		out->ptr[out->len] = '\0';
		if (out->len > max) {
			errno = EFBIG;
			return -1;
		}
	}
}

int
fsops_read_upto(int fd, struct buf *out, size_t n)
{
	if (fsops_should_fail(FSOPS_READ))
		return -1;
	buf_reserve(out, n);
	while (n > 0) {
		ssize_t r = read(fd, out->ptr + out->len, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		out->len += (size_t)r;
		n -= (size_t)r;
	}
	out->ptr[out->len] = '\0';
	return 0;
}

ssize_t
fsops_copy_range(int in, int out, size_t n)
{
	if (fsops_should_fail(FSOPS_WRITE))
		return -1;
	return copy_file_range(in, NULL, out, NULL, n, 0);
}

int
fsops_fsync(int fd)
{
	if (fsops_should_fail(FSOPS_FSYNC))
		return -1;
	return fsync(fd);
}

int
fsops_close(int fd)
{
	if (fsops_should_fail(FSOPS_CLOSE)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

int
fsops_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
	if (fsops_should_fail(FSOPS_RENAME))
		return -1;
	return renameat(olddirfd, oldpath, newdirfd, newpath);
}

int
fsops_unlinkat(int dirfd, const char *path, int flags)
{
	if (fsops_should_fail(FSOPS_UNLINK))
		return -1;
	return unlinkat(dirfd, path, flags);
}

int
fsops_mkdirat(int dirfd, const char *path, mode_t mode)
{
	if (fsops_should_fail(FSOPS_MKDIR))
		return -1;
	return mkdirat(dirfd, path, mode);
}

int
fsops_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	if (fsops_should_fail(FSOPS_STAT))
		return -1;
	return fstatat(dirfd, path, st, flags);
}

int
fsops_set_mtime_ms(int dirfd, const char *path, uint64_t ms)
{
	struct timespec ts[2];

	if (fsops_should_fail(FSOPS_UTIMENS))
		return -1;
	ts[0].tv_sec = (time_t)(ms / 1000);
	ts[0].tv_nsec = (long)(ms % 1000) * 1000000L;
	ts[1] = ts[0];
	return utimensat(dirfd, path, ts, 0);
}

int
fsops_set_mtime_fd(int fd, uint64_t ms)
{
	struct timespec ts[2];

	if (fsops_should_fail(FSOPS_UTIMENS))
		return -1;
	ts[0].tv_sec = (time_t)(ms / 1000);
	ts[0].tv_nsec = (long)(ms % 1000) * 1000000L;
	ts[1] = ts[0];
	return futimens(fd, ts);
}

int
fsops_open_tmpfile(int dirfd, mode_t mode)
{
	if (fsops_should_fail(FSOPS_OPEN))
		return -1;
	return openat(dirfd, ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, mode);
}

int
fsops_link_tmpfile(int fd, int dirfd, const char *name)
{
	char path[64];

	if (fsops_should_fail(FSOPS_LINK))
		return -1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, path, dirfd, name, AT_SYMLINK_FOLLOW);
}

DIR *
fsops_opendirat(int dirfd, const char *path)
{
	DIR *d;
	int fd;

	if (fsops_should_fail(FSOPS_OPENDIR))
		return NULL;
	fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return NULL;
	d = fdopendir(fd);
	if (d == NULL) {
		int e = errno;

		close(fd);
		errno = e;
	}
	return d;
}

void
fsops_crash_point(const char *name)
{
	static const char *armed;
	static bool looked;

	if (!looked) {
		armed = getenv("HIKYAKU_CRASH_POINT");
		looked = true;
	}
	if (armed != NULL && strcmp(armed, name) == 0)
		raise(SIGKILL);
}
