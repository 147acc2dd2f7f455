/*
 * spool.c - opening and closing the spool, synchronous reads (see spool.h).
 * Commits, updates and finishes are in spool_commit.c, start-up recovery in spool_recover.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool_priv.h"
#include "../util/fsops.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

static const char spool_ext[][5] = { [SPOOL_FILE_MSG] = ".msg", [SPOOL_FILE_ENV] = ".env" };

void
spool_name(char out[SPOOL_NAME_SIZE], uint64_t id, enum spool_file_kind kind)
{
	id_format(id, out);
	memcpy(out + ID_HEX_LEN, spool_ext[kind], 5);
}

int
spool_name_parse(const char *name, uint64_t *id, enum spool_file_kind *kind)
{
	size_t i;

	if (strlen(name) != SPOOL_NAME_SIZE - 1)
		return -1;
	for (i = 0; i < ID_HEX_LEN; i++) {
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'A' && name[i] <= 'F')))
			return -1;
	}
	if (strcmp(name + ID_HEX_LEN, spool_ext[SPOOL_FILE_MSG]) == 0)
		*kind = SPOOL_FILE_MSG;
	else if (strcmp(name + ID_HEX_LEN, spool_ext[SPOOL_FILE_ENV]) == 0)
		*kind = SPOOL_FILE_ENV;
	else
		return -1;
	return id_parse(name, ID_HEX_LEN, id);
}

int
spool_fsync_subdir(const struct spool *sp, const char *sub, struct hk_err *err)
{
	int fd = fsops_openat(sp->root_fd, sub, O_RDONLY | O_DIRECTORY, 0);

	if (fd == -1)
		return hk_err_sys(err, errno, "open %s/", sub);
	if (fsops_fsync(fd) == -1) {
		hk_err_sys(err, errno, "fsync %s/", sub);
		fsops_close(fd);
		return -1;
	}
	/* Closing a read-only directory fd cannot lose data. */
	fsops_close(fd);
	return 0;
}

/* Read dirfd/name whole (at most max bytes) into out. */
static int
spool_read_file(int dirfd, const char *name, size_t max, struct buf *out, struct hk_err *err)
{
	int fd = fsops_openat(dirfd, name, O_RDONLY, 0);

	if (fd == -1) {
		if (errno == ENOENT)
			return hk_err_set(err, HK_E_NOTFOUND, "%s: not found", name);
		return hk_err_sys(err, errno, "open %s", name);
	}
	if (fsops_read_all(fd, out, max) == -1) {
		int e = errno;

		fsops_close(fd);
		if (e == EFBIG)
			return hk_err_set(err, HK_E_DATA, "%s: larger than %zu bytes", name, max);
		return hk_err_sys(err, e, "read %s", name);
	}
	fsops_close(fd);
	return 0;
}

/* Read fd (size bytes in all) into b until the envelope's END line is in it: *env_len, or 0. */
static int
spool_read_head(int fd, uint64_t size, struct buf *b, size_t *env_len, struct hk_err *err)
{
	size_t want = 4096;

	for (;;) {
		if (fsops_read_upto(fd, b, want) == -1)
			return hk_err_sys(err, errno, "read envelope");
		*env_len = spool_format_env_len(b->ptr, b->len);
		if (*env_len != 0 || b->len >= size || b->len > SPOOL_ENV_MAX)
			return 0;
		want = b->len;
	}
}

/*
 * Decode the envelope of id at the start of p[0..n), the first n bytes of a file of file_size
 * bytes, and check it: the id, and an embedded body's length against the size record. Sets
 * *env_len; on failure out is empty and err says why (HK_E_DATA).
 */
static int
spool_decode_file(const char *p, size_t n, uint64_t file_size, uint64_t id,
    struct spool_env *out, size_t *env_len, struct hk_err *err)
{
	const char *why = NULL;

	*env_len = spool_format_env_len(p, n);
	/* No END line: decode the whole head, which says what is wrong with it. */
	if (spool_format_decode(p, *env_len ? *env_len : n, out, &why) != SPOOL_FORMAT_OK)
		return hk_err_set(err, HK_E_DATA, "%s", why ? why : "undecodable");
	if (out->id != id) {
		spool_env_fini(out);
		return hk_err_set(err, HK_E_DATA, "id does not match the file name");
	}
	if (file_size > *env_len && file_size - *env_len != out->size) {
		spool_env_fini(out);
		return hk_err_set(err, HK_E_DATA, "embedded body is %llu bytes, size record says %llu",
		    (unsigned long long)(file_size - *env_len), (unsigned long long)out->size);
	}
	return 0;
}

int
spool_read_env(int dirfd, const char *name, uint64_t id, struct spool_env *out,
    uint64_t *body_len, struct hk_err *err)
{
	struct buf b = BUF_INIT;
	struct stat st;
	size_t env_len = 0;
	int fd, rc = -1;

	fd = fsops_openat(dirfd, name, O_RDONLY, 0);
	if (fd == -1) {
		if (errno == ENOENT)
			return hk_err_set(err, HK_E_NOTFOUND, "%s: not found", name);
		return hk_err_sys(err, errno, "open %s", name);
	}
	if (fsops_fstatat(fd, "", &st, AT_EMPTY_PATH) == -1)
		hk_err_sys(err, errno, "stat %s", name);
	else if (spool_read_head(fd, (uint64_t)st.st_size, &b, &env_len, err) == 0)
		rc = spool_decode_file(b.ptr ? b.ptr : "", b.len, (uint64_t)st.st_size, id, out,
		    &env_len, err);
	fsops_close(fd);
	buf_fini(&b);
	if (rc == 0 && body_len != NULL)
		*body_len = (uint64_t)st.st_size - env_len;
	return rc;
}

int
spool_skip_envelope(int fd, struct hk_err *err)
{
	struct buf b = BUF_INIT;
	struct stat st;
	size_t env_len = 0;
	int rc;

	if (fsops_fstatat(fd, "", &st, AT_EMPTY_PATH) == -1)
		return hk_err_sys(err, errno, "stat envelope");
	rc = spool_read_head(fd, (uint64_t)st.st_size, &b, &env_len, err);
	buf_fini(&b);
	if (rc == -1)
		return -1;
	if (env_len == 0)
		return hk_err_set(err, HK_E_DATA, "envelope without END line");
	if (lseek(fd, (off_t)env_len, SEEK_SET) == -1)
		return hk_err_sys(err, errno, "seek past the envelope");
	return 0;
}

int
spool_read_embedded_body(int dirfd, const char *name, uint64_t id, struct buf *out,
    struct hk_err *err)
{
	struct spool_env env = { 0 };
	size_t old_len = out->len, n, env_len;

	if (spool_read_file(dirfd, name, SIZE_MAX / 2, out, err) == -1)
		goto fail;
	n = out->len - old_len;
	if (spool_decode_file(out->ptr + old_len, n, n, id, &env, &env_len, err) == -1)
		goto fail;
	spool_env_fini(&env);
	if (n == env_len) {
		hk_err_set(err, HK_E_NOTFOUND, "%s: no body", name);
		goto fail;
	}
	memmove(out->ptr + old_len, out->ptr + old_len + env_len, n - env_len);
	buf_truncate(out, old_len + (n - env_len));
	return 0;
fail:
	buf_truncate(out, old_len);
	return -1;
}

/* Open root/name as a directory, creating it with mode when missing. */
static int
spool_open_subdir(struct spool *sp, const char *name, mode_t mode, bool *created,
    struct hk_err *err)
{
	int fd;

	if (fsops_mkdirat(sp->root_fd, name, mode) == 0) {
		*created = true;
		/* mkdir applies the umask; maildrop/ must be exactly 1733 (DESIGN.md 5). */
		if ((mode & 07000) && fchmodat(sp->root_fd, name, mode, 0) == -1)
			return hk_err_sys(err, errno, "chmod %s/", name);
	} else if (errno != EEXIST) {
		return hk_err_sys(err, errno, "mkdir %s/", name);
	}
	fd = fsops_openat(sp->root_fd, name, O_RDONLY | O_DIRECTORY, 0);
	if (fd == -1)
		return hk_err_sys(err, errno, "open %s/", name);
	return fd;
}

/* Close every directory fd that is open. */
static void
spool_close_dirs(struct spool *sp)
{
	int *fds[] = { &sp->tmp_fd, &sp->queue_fd, &sp->corrupt_fd, &sp->maildrop_fd,
		&sp->sync_fd, &sp->root_fd };
	size_t i;

	for (i = 0; i < HK_ARRAY_LEN(fds); i++) {
		if (*fds[i] != -1)
			fsops_close(*fds[i]);
		*fds[i] = -1;
	}
}

static int
spool_open_dirs(struct spool *sp, const char *dir, struct hk_err *err)
{
	const struct {
		const char *name;
		mode_t mode;
		int *fd;
	} subs[] = {
		{ "tmp", 0750, &sp->tmp_fd },
		{ "queue", 0750, &sp->queue_fd },
		{ "corrupt", 0750, &sp->corrupt_fd },
		{ "maildrop", 01733, &sp->maildrop_fd },
	};
	bool created = false;
	size_t i;

	if (fsops_mkdirat(AT_FDCWD, dir, 0750) == -1 && errno != EEXIST)
		return hk_err_sys(err, errno, "mkdir %s", dir);
	sp->root_fd = fsops_openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY, 0);
	if (sp->root_fd == -1)
		return hk_err_sys(err, errno, "open %s", dir);
	for (i = 0; i < HK_ARRAY_LEN(subs); i++) {
		*subs[i].fd = spool_open_subdir(sp, subs[i].name, subs[i].mode, &created, err);
		if (*subs[i].fd == -1)
			return -1;
	}
	/* New directories must survive a crash before mail is put in them. */
	if (created && fsops_fsync(sp->root_fd) == -1)
		return hk_err_sys(err, errno, "fsync %s", dir);
	sp->sync_fd = fsops_openat(sp->root_fd, "queue", O_RDONLY | O_DIRECTORY, 0);
	if (sp->sync_fd == -1)
		return hk_err_sys(err, errno, "open queue/");
	return 0;
}

/*
 * Can this filesystem and process make an unnamed file in tmp/ and link it? (Probed in tmp/, which
 * recovery empties, so a crash here leaves nothing behind in queue/.)
 */
static bool
spool_tmpfile_works(struct spool *sp)
{
	static const char name[] = "tmpfile-probe";
	bool ok;
	int fd;

	fd = fsops_open_tmpfile(sp->tmp_fd, 0640);
	if (fd == -1)
		return false;
	fsops_unlinkat(sp->tmp_fd, name, 0);
	ok = fsops_link_tmpfile(fd, sp->tmp_fd, name) == 0;
	fsops_close(fd);
	if (ok)
		fsops_unlinkat(sp->tmp_fd, name, 0);
	return ok;
}

struct spool *
spool_new(const char *dir, struct jobs *hub, unsigned workers, unsigned max_inflight,
    struct hk_err *err)
{
	struct spool *sp = xcalloc(1, sizeof(*sp));

	sp->root_fd = sp->tmp_fd = sp->queue_fd = sp->corrupt_fd = sp->maildrop_fd = -1;
	sp->sync_fd = -1;
	if (spool_open_dirs(sp, dir, err) == -1) {
		spool_close_dirs(sp);
		free(sp);
		return NULL;
	}
	sp->hub = hub;
	sp->max_inflight = max_inflight;
	buf_init(&sp->scratch);
	atomic_init(&sp->dir_seq, 0);
	spool_reuse_init(sp);
	pthread_rwlock_init(&sp->keep_lock, NULL);
	sp->use_tmpfile = spool_tmpfile_works(sp);
	if (!sp->use_tmpfile)
		log_info("spool", "no_tmpfile", "sess=main why=%s",
		    log_q("O_TMPFILE or /proc/self/fd unavailable: commits go through tmp/"));
	sp->pool = jobs_pool_new(hub, "spool", workers > 0 ? workers : 1);
	sp->dirsync = jobs_pool_new(hub, "dirsync", 1);
	return sp;
}

void
spool_free(struct spool *sp)
{
	if (sp == NULL)
		return;
	HK_ASSERT_LOOP();
	/* Every job ends with a completion on the hub; run them so no callback is lost. */
	while (sp->jobs > 0)
		jobs_wait_completions(sp->hub);
	jobs_pool_free(sp->pool);
	jobs_pool_free(sp->dirsync);
	spool_close_dirs(sp);
	buf_fini(&sp->scratch);
	spool_reuse_fini(sp);
	pthread_rwlock_destroy(&sp->keep_lock);
	free(sp);
}

void
spool_set_keep(struct spool *sp, spool_keep_fn fn, void *arg)
{
	HK_ASSERT_LOOP();
	pthread_rwlock_wrlock(&sp->keep_lock);
	sp->keep_fn = fn;
	sp->keep_arg = arg;
	pthread_rwlock_unlock(&sp->keep_lock);
}

int
spool_load(struct spool *sp, uint64_t id, struct spool_env *out, struct hk_err *err)
{
	char name[SPOOL_NAME_SIZE];

	spool_name(name, id, SPOOL_FILE_ENV);
	return spool_read_env(sp->queue_fd, name, id, out, NULL, err);
}

int
spool_load_body(struct spool *sp, uint64_t id, struct buf *out, struct hk_err *err)
{
	char name[SPOOL_NAME_SIZE];
	size_t old_len = out->len;

	/* A body of its own (written by an update) or, from the commit, the one in the envelope. */
	spool_name(name, id, SPOOL_FILE_MSG);
	if (spool_read_file(sp->queue_fd, name, SIZE_MAX / 2, out, err) == 0)
		return 0;
	buf_truncate(out, old_len);
	if (err->code != HK_E_NOTFOUND)
		return -1;
	spool_name(name, id, SPOOL_FILE_ENV);
	return spool_read_embedded_body(sp->queue_fd, name, id, out, err);
}

int
spool_load_message(struct spool *sp, uint64_t id, struct spool_env *env, struct buf *body,
    struct hk_err *err)
{
	char name[SPOOL_NAME_SIZE];
	struct buf b = BUF_INIT;
	size_t env_len;

	memset(env, 0, sizeof(*env));
	spool_name(name, id, SPOOL_FILE_ENV);
	if (spool_read_file(sp->queue_fd, name, SIZE_MAX / 2, &b, err) == -1 ||
	    spool_decode_file(b.ptr ? b.ptr : "", b.len, b.len, id, env, &env_len, err) == -1) {
		buf_fini(&b);
		return -1;
	}
	if (b.len == env_len) {
		/* A body of its own: the envelope was rewritten by an update. */
		buf_fini(&b);
		if (spool_load_body(sp, id, body, err) == -1) {
			spool_env_fini(env);
			return -1;
		}
		return 0;
	}
	buf_append(body, b.ptr + env_len, b.len - env_len);
	buf_fini(&b);
	return 0;
}

size_t
spool_inflight(const struct spool *sp)
{
	return sp->commits;
}
