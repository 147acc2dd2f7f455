/*
 * bodies.c - kept message bodies: copies (on the spool worker that finishes the message), loads
 * and removals (on a one-thread pool).
 *
 * A copy is a read and a write of a file the page cache usually still holds, and nothing waits
 * for a disk flush, so the finishing spool worker makes it itself: no hand-over, and the spool
 * file is certain to exist until the copy is done. One pool thread is enough for loads (resend)
 * and removals (retention).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bodies.h"
#include "../spool/spool.h"
#include "../util/fsops.h"
#include "../util/id.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define BODIES_TMP_PREFIX ".tmp-"
#define BODIES_COPY_CHUNK (64 * 1024)

struct bodies {
	struct jobs *hub;
	struct jobs_pool *pool;
	int dirfd; /* <state>/bodies */
	size_t pending;
	struct spool *spool; /* bodies of mail not finished yet; NULL: none */
};

enum bodies_op { BODIES_LOAD, BODIES_REMOVE };

struct bodies_job {
	struct bodies *b;
	enum bodies_op op;
	uint64_t id;
	size_t max;     /* load */
	uint64_t *ids;  /* remove */
	size_t n_ids;
	size_t removed;
	int rc;
	struct hk_err err;
	struct buf body; /* load */
	bodies_load_fn load_cb;
	bodies_remove_fn remove_cb;
	void *arg;
};

void
bodies_rel_path(uint64_t id, char out[BODIES_REL_PATH_SIZE])
{
	char hex[ID_HEX_LEN + 1];
	time_t t = (time_t)(id_time_ms(id) / 1000);
	struct tm tm;

	id_format(id, hex);
	gmtime_r(&t, &tm);
	/* 44 bits of milliseconds after 2020 stay within four-digit years. */
	if (strftime(out, BODIES_REL_PATH_SIZE, "%Y-%m-%d/", &tm) != 11)
		hk_panic("bodies: date of id %s", hex);
	memcpy(out + 11, hex, ID_HEX_LEN + 1);
}

/* ---- worker ---- */

/*
 * Copy the rest of in to out. In the kernel (copy_file_range: no buffer, no copy through user
 * space) where the two files allow it, else through a buffer.
 */
static int
bodies_copy_fd(int in, int out, struct hk_err *err)
{
	char *chunk;
	int rc = 0;

	for (;;) {
		ssize_t n = fsops_copy_range(in, out, BODIES_COPY_CHUNK);

		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		/* Not supported between these files (another filesystem, an old kernel). */
		if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)
			break;
		return hk_err_sys(err, errno, "copy");
	}
	chunk = xmalloc(BODIES_COPY_CHUNK);

	for (;;) {
		ssize_t n = read(in, chunk, BODIES_COPY_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = hk_err_sys(err, errno, "read");
			break;
		}
		if (n == 0)
			break;
		if (fsops_write_all(out, chunk, (size_t)n) == -1) {
			rc = hk_err_sys(err, errno, "write");
			break;
		}
	}
	free(chunk);
	return rc;
}

/*
 * Rename bodies/tmp to bodies/rel, making the day directory. Twice at most: retention, on the
 * bodies thread, may remove an empty day directory between the mkdir and the rename.
 */
static int
bodies_place(struct bodies *b, const char *tmp, char rel[BODIES_REL_PATH_SIZE],
    struct hk_err *err)
{
	int tries;

	for (tries = 0; tries < 2; tries++) {
		rel[10] = '\0';
		if (fsops_mkdirat(b->dirfd, rel, 0750) == -1 && errno != EEXIST) {
			hk_err_sys(err, errno, "mkdir bodies/%s", rel);
			rel[10] = '/';
			return -1;
		}
		rel[10] = '/';
		if (fsops_renameat(b->dirfd, tmp, b->dirfd, rel) == 0)
			return 0;
		if (errno != ENOENT)
			break;
	}
	return hk_err_sys(err, errno, "rename bodies/%s", rel);
}

int
bodies_keep_fd(struct bodies *b, uint64_t id, int in, struct hk_err *err)
{
	char rel[BODIES_REL_PATH_SIZE], tmp[sizeof(BODIES_TMP_PREFIX) + ID_HEX_LEN];
	struct stat st;
	int out;

	bodies_rel_path(id, rel);
	if (fsops_fstatat(b->dirfd, rel, &st, 0) == 0)
		return 0;
	/* One finish per ID at a time, so the temporary name is this caller's alone. */
	snprintf(tmp, sizeof(tmp), "%s%s", BODIES_TMP_PREFIX, rel + 11);
	out = fsops_openat(b->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0640);
	if (out == -1)
		return hk_err_sys(err, errno, "create bodies/%s", tmp);
	if (bodies_copy_fd(in, out, err) == -1)
		goto fail;
	if (fsops_close(out) == -1) {
		out = -1;
		hk_err_sys(err, errno, "close bodies/%s", tmp);
		goto fail;
	}
	out = -1;
	if (bodies_place(b, tmp, rel, err) == -1)
		goto fail;
	return 0;
fail:
	if (out != -1)
		fsops_close(out);
	fsops_unlinkat(b->dirfd, tmp, 0);
	return -1;
}

static int
bodies_load_kept(struct bodies *b, uint64_t id, size_t max, struct buf *out, struct hk_err *err)
{
	char rel[BODIES_REL_PATH_SIZE];
	int fd, rc = 0;

	bodies_rel_path(id, rel);
	fd = fsops_openat(b->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
	if (fd == -1) {
		if (errno == ENOENT)
			return hk_err_set(err, HK_E_NOTFOUND, "no kept body for %s", rel + 11);
		return hk_err_sys(err, errno, "open bodies/%s", rel);
	}
	if (fsops_read_all(fd, out, max) == -1) {
		if (errno == EFBIG)
			rc = hk_err_set(err, HK_E_DATA, "bodies/%s: larger than %zu bytes", rel,
			    max);
		else
			rc = hk_err_sys(err, errno, "read bodies/%s", rel);
		buf_reset(out);
	}
	fsops_close(fd);
	return rc;
}

/*
 * Read the kept body of id; for mail still in the queue (bodies are kept when a message finishes),
 * the spool's. A message that finishes meanwhile has its body kept before its spool files go, so
 * the kept file is tried once more when the spool no longer has it.
 */
static int
bodies_work_load(struct bodies *b, uint64_t id, size_t max, struct buf *out, struct hk_err *err)
{
	int pass;

	for (pass = 0; pass < 2; pass++) {
		if (bodies_load_kept(b, id, max, out, err) == 0)
			return 0;
		if (err->code != HK_E_NOTFOUND || b->spool == NULL || pass == 1)
			return -1;
		if (spool_load_body(b->spool, id, out, err) == 0) {
			if (out->len <= max)
				return 0;
			buf_reset(out);
			return hk_err_set(err, HK_E_DATA,
			    "queued body of %016llX: larger than %zu bytes", (unsigned long long)id,
			    max);
		}
		buf_reset(out);
		if (err->code != HK_E_NOTFOUND)
			return -1;
	}
	return -1;
}

static size_t
bodies_work_remove(struct bodies *b, const uint64_t *ids, size_t n)
{
	char rel[BODIES_REL_PATH_SIZE], day[BODIES_REL_PATH_SIZE] = "";
	size_t i, removed = 0;

	for (i = 0; i < n; i++) {
		bodies_rel_path(ids[i], rel);
		if (fsops_unlinkat(b->dirfd, rel, 0) == 0)
			removed++;
		else if (errno != ENOENT)
			log_warn("bodies", "remove_failed", "qid=%s errno=%d", rel + 11, errno);
		rel[10] = '\0';
		/* IDs come in order, so each day directory is tried once it is done with. */
		if (day[0] != '\0' && strcmp(day, rel) != 0)
			fsops_unlinkat(b->dirfd, day, AT_REMOVEDIR);
		memcpy(day, rel, sizeof(day));
	}
	if (day[0] != '\0')
		fsops_unlinkat(b->dirfd, day, AT_REMOVEDIR); /* ENOTEMPTY: other bodies remain */
	return removed;
}

static void
bodies_work(void *arg)
{
	struct bodies_job *j = arg;

	switch (j->op) {
	case BODIES_LOAD:
		j->rc = bodies_work_load(j->b, j->id, j->max, &j->body, &j->err);
		break;
	case BODIES_REMOVE:
		j->removed = bodies_work_remove(j->b, j->ids, j->n_ids);
		j->rc = 0;
		break;
	}
}

/* ---- loop ---- */

static void
bodies_done(void *arg)
{
	struct bodies_job *j = arg;

	HK_ASSERT_LOOP();
	j->b->pending--;
	switch (j->op) {
	case BODIES_LOAD:
		j->load_cb(j->arg, j->id, j->rc, &j->body, &j->err);
		break;
	case BODIES_REMOVE:
		if (j->remove_cb)
			j->remove_cb(j->arg, j->removed);
		break;
	}
	buf_fini(&j->body);
	free(j->ids);
	free(j);
}

static struct bodies_job *
bodies_job_new(struct bodies *b, enum bodies_op op, uint64_t id, void *arg)
{
	struct bodies_job *j = xcalloc(1, sizeof(*j));

	j->b = b;
	j->op = op;
	j->id = id;
	j->arg = arg;
	buf_init(&j->body);
	return j;
}

static void
bodies_submit(struct bodies *b, struct bodies_job *j)
{
	b->pending++;
	jobs_pool_submit(b->pool, bodies_work, bodies_done, j);
}

void
bodies_load(struct bodies *b, uint64_t id, size_t max, bodies_load_fn done_cb, void *arg)
{
	struct bodies_job *j;

	HK_ASSERT_LOOP();
	j = bodies_job_new(b, BODIES_LOAD, id, arg);
	j->max = max;
	j->load_cb = done_cb;
	bodies_submit(b, j);
}

void
bodies_remove(struct bodies *b, const uint64_t *ids, size_t n, bodies_remove_fn done_cb,
    void *arg)
{
	struct bodies_job *j;

	HK_ASSERT_LOOP();
	j = bodies_job_new(b, BODIES_REMOVE, 0, arg);
	j->ids = n ? xmemdup(ids, n * sizeof(*ids)) : NULL;
	j->n_ids = n;
	j->remove_cb = done_cb;
	bodies_submit(b, j);
}

void
bodies_set_spool(struct bodies *b, struct spool *sp)
{
	HK_ASSERT_LOOP();
	HK_ASSERT(b->pending == 0);
	b->spool = sp;
}

size_t
bodies_pending(const struct bodies *b)
{
	return b->pending;
}

/* A crash may leave a copy half-written under its temporary name. */
static void
bodies_clean_tmp(struct bodies *b)
{
	DIR *d = fsops_opendirat(b->dirfd, ".");
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, BODIES_TMP_PREFIX, strlen(BODIES_TMP_PREFIX)) == 0)
			fsops_unlinkat(b->dirfd, de->d_name, 0);
	}
	closedir(d);
}

struct bodies *
bodies_new(const char *state_dir, struct jobs *hub, struct hk_err *err)
{
	struct bodies *b;
	char *path = xasprintf("%s/%s", state_dir, BODIES_DIR);
	int fd;

	if (fsops_mkdirat(AT_FDCWD, path, 0750) == -1 && errno != EEXIST) {
		hk_err_sys(err, errno, "mkdir %s", path);
		free(path);
		return NULL;
	}
	fd = fsops_openat(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd == -1) {
		hk_err_sys(err, errno, "open %s", path);
		free(path);
		return NULL;
	}
	free(path);
	b = xcalloc(1, sizeof(*b));
	b->hub = hub;
	b->dirfd = fd;
	bodies_clean_tmp(b);
	b->pool = jobs_pool_new(hub, "bodies", 1);
	return b;
}

void
bodies_free(struct bodies *b)
{
	if (b == NULL)
		return;
	HK_ASSERT_LOOP();
	while (b->pending > 0)
		jobs_wait_completions(b->hub);
	jobs_pool_free(b->pool);
	fsops_close(b->dirfd);
	free(b);
}
