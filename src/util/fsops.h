/*
 * fsops.h - the filesystem seam. Every spool file operation goes through here so tests can fail
 * the Nth call of an operation (ENOSPC, EIO) or "crash" at a named point.
 *
 * Functions behave as their libc namesakes (return -1 and set errno on failure).
 * Faults: fsops_fail_nth() arms a one-shot failure of the nth next call of an operation;
 * with n == 0 every call fails until fsops_fail_reset(). Counters are atomic, so workers may
 * call fsops concurrently.
 * Crash points: HK_CRASH_POINT("spool.after_body_rename") kills the process with SIGKILL when
 * the build enables crash points and HIKYAKU_CRASH_POINT names that point.
 * Thread: any.
 */
#ifndef HK_FSOPS_H
#define HK_FSOPS_H

#include <dirent.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "buf.h"
#include "common.h"

enum fsops_op {
	FSOPS_OPEN,
	FSOPS_WRITE,
	FSOPS_READ,
	FSOPS_FSYNC,
	FSOPS_CLOSE,
	FSOPS_RENAME,
	FSOPS_UNLINK,
	FSOPS_MKDIR,
	FSOPS_STAT,
	FSOPS_UTIMENS,
	FSOPS_OPENDIR,
	FSOPS_LINK,
	FSOPS_OP_COUNT,
};

int fsops_openat(int dirfd, const char *path, int flags, mode_t mode);
/* Write all n bytes (retrying short writes and EINTR). */
int fsops_write_all(int fd, const void *p, size_t n);
/* Append the whole rest of fd to out; -1 on error (out may hold part of it). */
int fsops_read_all(int fd, struct buf *out, size_t max);
/* Append up to n bytes of fd to out (fewer only at end of file); counted as FSOPS_READ. */
int fsops_read_upto(int fd, struct buf *out, size_t n);
/* copy_file_range(in, NULL, out, NULL, n, 0) (counted as FSOPS_WRITE). */
ssize_t fsops_copy_range(int in, int out, size_t n);
int fsops_fsync(int fd);
int fsops_close(int fd);
int fsops_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
int fsops_unlinkat(int dirfd, const char *path, int flags);
int fsops_mkdirat(int dirfd, const char *path, mode_t mode);
int fsops_fstatat(int dirfd, const char *path, struct stat *st, int flags);
/* Set the modification (and access) time of dirfd/path to ms since the epoch. */
int fsops_set_mtime_ms(int dirfd, const char *path, uint64_t ms);
/* Set the modification (and access) time of an open file (counted as FSOPS_UTIMENS). */
int fsops_set_mtime_fd(int fd, uint64_t ms);
/*
 * An unnamed file (O_TMPFILE) in directory dirfd, opened for writing (counted as FSOPS_OPEN).
 * Fails with EOPNOTSUPP/EISDIR where the filesystem has no O_TMPFILE.
 */
int fsops_open_tmpfile(int dirfd, mode_t mode);
/*
 * Give the unnamed file fd the name dirfd/name (linkat through /proc/self/fd, so no
 * CAP_DAC_READ_SEARCH is needed). Fails with EEXIST when the name exists: never replaces.
 */
int fsops_link_tmpfile(int fd, int dirfd, const char *name);
/* opendir() of dirfd/path; the DIR owns a new descriptor. NULL on error. */
DIR *fsops_opendirat(int dirfd, const char *path);

/* Fail the nth next call of op with errno err (n == 0: every call until reset). */
void fsops_fail_nth(enum fsops_op op, unsigned n, int err);
void fsops_fail_reset(void);
/*
 * Arm faults from a spec "op:n:ERRNO[,op:n:ERRNO...]" (op: open write read fsync close rename
 * unlink mkdir stat utimens opendir link; ERRNO: ENOSPC EIO EDQUOT EROFS EMFILE). -1 if malformed.
 * Used by main from HIKYAKU_FSOPS_FAIL in builds with crash points.
 */
HK_MUST_CHECK int fsops_fail_parse(const char *spec);
/* Number of calls of op so far (tests). */
unsigned long fsops_calls(enum fsops_op op);

void fsops_crash_point(const char *name);
#ifdef HK_CRASH_POINTS
#define HK_CRASH_POINT(name) fsops_crash_point(name)
#else
#define HK_CRASH_POINT(name) ((void)0)
#endif

#endif
