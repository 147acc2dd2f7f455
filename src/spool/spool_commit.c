/*
 * spool_commit.c - commit, update and finish (DESIGN.md 5, "Commit").
 *
 * A job goes through up to three stages; each stage hands the job straight to the next (no trip
 * through the loop in between) and the last one's completion runs on the loop:
 *   1. spool pool: write and fsync the file (commit: envelope and body in one unnamed O_TMPFILE
 *      in queue/, linked in as <ID>.env once durable; update: tmp/ then rename), or unlink the
 *      envelope (finish); the change gets a sequence number from dir_seq;
 *   2. dirsync thread: group fsync of queue/; one fsync covers every change numbered before it
 *      started, so a burst of commits costs one directory fsync;
 *   3. finish only, on the dirsync thread: retire the body once the envelope's removal is durable.
 * Finished files are not deleted but kept for reuse (spool_reuse.c explains why).
 * Then done_cb runs on the loop. A failed commit is undone (what reached queue/ is unlinked
 * again, and queue/ fsync'ed), so queue/ never holds a half-committed message.
 *
 * Departures from DESIGN.md 5 (which writes <ID>.msg and <ID>.env to tmp/, fsyncs both and
 * renames them), each for speed, none weakening the promise that done_cb(0) comes only after
 * everything of the message and its name in queue/ are fsync'ed:
 * - One file, one fsync. The commit writes the body after the envelope's END line, in the same
 *   file (spool_format.h). Creating, fsyncing and linking a second file per message was 40 % of
 *   the commit's cost; with one file the ingress benchmark went from about 2,600 to 3,300
 *   messages per second (log.keep_bodies off, to measure the spool alone). The body moves to
 *   an <ID>.msg of its own only when an update rewrites the envelope
 *   (spool_update_split_body), which happens to deferred mail, not to most mail.
 * - No tmp/ on the way. Renames between directories serialise on a filesystem-wide lock and
 *   every directory operation takes the directory's lock; with 20 concurrent clients the kernel
 *   spent most of the commit's CPU spinning on those locks. Linking an O_TMPFILE file makes its
 *   name appear only with complete, fsync'ed contents, exactly like the rename. (Filesystems
 *   without O_TMPFILE still go through tmp/.)
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

enum spool_job_kind { SPOOL_JOB_COMMIT, SPOOL_JOB_UPDATE, SPOOL_JOB_FINISH };

static const char *const spool_job_failed_event[] = {
	[SPOOL_JOB_COMMIT] = "commit_failed",
	[SPOOL_JOB_UPDATE] = "update_failed",
	[SPOOL_JOB_FINISH] = "finish_failed",
};

struct spool_job {
	struct spool *sp;
	enum spool_job_kind kind;
	uint64_t id;
	uint64_t mtime_ms; /* envelope mtime, 0: leave it (now) */
	uint64_t seq;      /* dir_seq number of this job's change of queue/ */
	spool_done_fn done_cb;
	void *arg;
	struct buf body;
	bool body_queued; /* commit: body renamed into queue/ (undo must unlink it) */
	bool env_queued;  /* commit: envelope renamed into queue/ */
	int rc;
	struct hk_err err;
	char msg_name[SPOOL_NAME_SIZE];
	char env_name[SPOOL_NAME_SIZE];
	size_t env_len;
	char env[]; /* encoded envelope */
};

/* Loop: a job with the envelope encoded into it (one allocation). */
static struct spool_job *
spool_job_new(struct spool *sp, enum spool_job_kind kind, uint64_t id,
    const struct spool_env *env, spool_done_fn done_cb, void *arg)
{
	struct spool_job *job;
	size_t len = 0;

	if (env != NULL) {
		buf_reset(&sp->scratch);
		spool_format_encode(env, &sp->scratch);
		len = sp->scratch.len;
	}
	job = xmalloc(sizeof(*job) + len);
	memset(job, 0, sizeof(*job));
	job->sp = sp;
	job->kind = kind;
	job->id = id;
	job->mtime_ms = env ? env->next_attempt_ms : 0;
	job->done_cb = done_cb;
	job->arg = arg;
	buf_init(&job->body);
	spool_name(job->msg_name, id, SPOOL_FILE_MSG);
	spool_name(job->env_name, id, SPOOL_FILE_ENV);
	job->env_len = len;
	if (len)
		memcpy(job->env, sp->scratch.ptr, len);
	sp->jobs++;
	if (kind == SPOOL_JOB_COMMIT)
		sp->commits++;
	return job;
}

/* Loop: the last stage is over; report and free. */
static void
spool_job_end(void *arg)
{
	struct spool_job *job = arg;
	struct spool *sp = job->sp;

	sp->jobs--;
	if (job->kind == SPOOL_JOB_COMMIT)
		sp->commits--;
	if (job->rc == -1) {
		char hex[ID_HEX_LEN + 1];

		id_format(job->id, hex);
		log_warn("spool", spool_job_failed_event[job->kind], "qid=%s err=%s errno=%d why=%s",
		    hex, hk_err_code_name(job->err.code), job->err.sys_errno, log_q(job->err.text));
	}
	job->done_cb(job->rc, job->rc == 0 ? NULL : &job->err, job->arg);
	buf_fini(&job->body);
	free(job);
}

/*
 * Worker: create tmp/name with p[0..n) and then more (if not NULL), mtime (if not 0), fsync,
 * close. On failure nothing of it is left in tmp/.
 */
static int
spool_write_tmp(struct spool *sp, const char *name, const void *p, size_t n, const struct buf *more,
    uint64_t mtime_ms, struct hk_err *err)
{
	int fd;

	fd = fsops_openat(sp->tmp_fd, name, O_WRONLY | O_CREAT | O_EXCL, 0640);
	if (fd == -1)
		return hk_err_sys(err, errno, "create tmp/%s", name);
	if (fsops_write_all(fd, p, n) == -1 ||
	    (more != NULL && more->len > 0 && fsops_write_all(fd, more->ptr, more->len) == -1)) {
		hk_err_sys(err, errno, "write tmp/%s", name);
		goto fail;
	}
	/* Before the fsync, so the mtime (the next attempt time) is durable with the data. */
	if (mtime_ms != 0 && fsops_set_mtime_ms(sp->tmp_fd, name, mtime_ms) == -1) {
		hk_err_sys(err, errno, "set mtime of tmp/%s", name);
		goto fail;
	}
	/* A failed fsync leaves the page state unknown: never retry it on this fd. */
	if (fsops_fsync(fd) == -1) {
		hk_err_sys(err, errno, "fsync tmp/%s", name);
		goto fail;
	}
	if (fsops_close(fd) == -1) {
		hk_err_sys(err, errno, "close tmp/%s", name);
		fsops_unlinkat(sp->tmp_fd, name, 0);
		return -1;
	}
	return 0;
fail:
	fsops_close(fd);
	fsops_unlinkat(sp->tmp_fd, name, 0);
	return -1;
}

static void spool_dirsync_work(void *arg);
static void spool_job_end(void *arg);

/*
 * Worker, end of stage 1: a change goes straight on to the dirsync thread; a failure straight
 * back to the loop. No round trip through the loop between the stages.
 */
static void
spool_stage1_next(struct spool_job *job)
{
	if (job->rc == 0)
		jobs_pool_submit(job->sp->dirsync, spool_dirsync_work, spool_job_end, job);
	else
		jobs_post(job->sp->hub, spool_job_end, job);
}

/* Worker: number a change of queue/ that is now visible. */
static void
spool_job_changed(struct spool_job *job)
{
	job->seq = atomic_fetch_add(&job->sp->dir_seq, 1) + 1;
}

/*
 * Worker or dirsync thread: take a failed commit out of queue/ again, envelope first (an
 * envelope without body would be corrupt), then make the removal durable. If the envelope cannot
 * be removed, the body stays too: a complete message that may still be delivered beats a lost one.
 */
static void
spool_commit_undo(struct spool_job *job)
{
	struct spool *sp = job->sp;
	char hex[ID_HEX_LEN + 1];
	struct hk_err e;

	if (!job->body_queued && !job->env_queued)
		return;
	id_format(job->id, hex);
	if (job->env_queued && fsops_unlinkat(sp->queue_fd, job->env_name, 0) == -1 &&
	    errno != ENOENT) {
		log_error("spool", "undo_failed", "qid=%s step=unlink_env errno=%d", hex, errno);
		return;
	}
	if (job->body_queued && fsops_unlinkat(sp->queue_fd, job->msg_name, 0) == -1 &&
	    errno != ENOENT)
		log_error("spool", "undo_failed", "qid=%s step=unlink_body errno=%d", hex, errno);
	if (spool_fsync_subdir(sp, "queue", &e) == -1)
		log_error("spool", "undo_failed", "qid=%s step=fsync_queue why=%s", hex,
		    log_q(e.text));
	job->env_queued = job->body_queued = false;
}

/*
 * Worker: write p[0..n) and more (if not NULL) into the recycled file queue/fname (spool_reuse.c),
 * set its mtime (if not 0), fsync, and rename it to queue/name: like a tmp/ file and its rename,
 * without allocating an inode. 1: done; 0: the free file is gone (the caller makes a new file);
 * -1: failed, job->err set, the free file removed and name untouched.
 */
static int
spool_write_reused(struct spool_job *job, const char *fname, const void *p, size_t n,
    const struct buf *more, uint64_t mtime_ms, const char *name)
{
	struct spool *sp = job->sp;
	struct stat st;
	int fd;

	/* A file with a second name is not rewritten (spool_reuse.c): a new file is made. */
	if (fsops_fstatat(sp->queue_fd, fname, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)
			return 0;
		hk_err_sys(&job->err, errno, "stat queue/%s for %s", fname, name);
		spool_reuse_drop(sp, fname);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		spool_reuse_drop(sp, fname);
		return 0;
	}
	fd = fsops_openat(sp->queue_fd, fname, O_WRONLY | O_TRUNC, 0);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		hk_err_sys(&job->err, errno, "open queue/%s for %s", fname, name);
		spool_reuse_drop(sp, fname);
		return -1;
	}
	if (fsops_write_all(fd, p, n) == -1 ||
	    (more != NULL && more->len > 0 && fsops_write_all(fd, more->ptr, more->len) == -1)) {
		hk_err_sys(&job->err, errno, "write queue/%s for %s", fname, name);
		goto fail;
	}
	if (mtime_ms != 0 && fsops_set_mtime_fd(fd, mtime_ms) == -1) {
		hk_err_sys(&job->err, errno, "set mtime of queue/%s for %s", fname, name);
		goto fail;
	}
	/* A failed fsync leaves the page state unknown: never retry it on this fd. */
	if (fsops_fsync(fd) == -1) {
		hk_err_sys(&job->err, errno, "fsync queue/%s for %s", fname, name);
		goto fail;
	}
	if (fsops_close(fd) == -1) {
		hk_err_sys(&job->err, errno, "close queue/%s for %s", fname, name);
		spool_reuse_drop(sp, fname);
		return -1;
	}
	if (fsops_renameat(sp->queue_fd, fname, sp->queue_fd, name) == -1) {
		hk_err_sys(&job->err, errno, "rename queue/%s to %s", fname, name);
		spool_reuse_drop(sp, fname);
		return -1;
	}
	return 1;
fail:
	fsops_close(fd);
	spool_reuse_drop(sp, fname);
	return -1;
}

/*
 * Worker: write the envelope and after it the body as an unnamed file in queue/, set its mtime,
 * fsync, then link it in as queue/<ID>.env: the commit marker appears only with complete,
 * durable contents.
 */
static int
spool_link_env(struct spool_job *job)
{
	struct spool *sp = job->sp;
	char fname[SPOOL_FREE_NAME_SIZE];
	int fd, rc;

	while (spool_reuse_take(sp, fname)) {
		rc = spool_write_reused(job, fname, job->env, job->env_len, &job->body,
		    job->mtime_ms, job->env_name);
		if (rc == 1)
			job->env_queued = true;
		if (rc != 0)
			return rc == 1 ? 0 : -1;
	}
	fd = fsops_open_tmpfile(sp->queue_fd, 0640);
	if (fd == -1)
		return hk_err_sys(&job->err, errno, "create unnamed envelope in queue/");
	if (fsops_write_all(fd, job->env, job->env_len) == -1 ||
	    (job->body.len > 0 && fsops_write_all(fd, job->body.ptr, job->body.len) == -1)) {
		hk_err_sys(&job->err, errno, "write envelope %s", job->env_name);
		goto fail;
	}
	if (job->mtime_ms != 0 && fsops_set_mtime_fd(fd, job->mtime_ms) == -1) {
		hk_err_sys(&job->err, errno, "set mtime of envelope %s", job->env_name);
		goto fail;
	}
	if (fsops_fsync(fd) == -1) {
		hk_err_sys(&job->err, errno, "fsync envelope %s", job->env_name);
		goto fail;
	}
	HK_CRASH_POINT("spool.before_env_link");
	if (fsops_link_tmpfile(fd, sp->queue_fd, job->env_name) == -1) {
		hk_err_sys(&job->err, errno, "link queue/%s", job->env_name);
		goto fail;
	}
	job->env_queued = true;
	if (fsops_close(fd) == -1)
		return hk_err_sys(&job->err, errno, "close queue/%s", job->env_name);
	return 0;
fail:
	fsops_close(fd);
	return -1;
}

/* Worker, stage 1 of a commit where O_TMPFILE works (spool_new probes it). */
static void
spool_commit_work(void *arg)
{
	struct spool_job *job = arg;

	job->rc = -1;
	if (spool_link_env(job) == -1)
		goto fail;
	buf_fini(&job->body);
	HK_CRASH_POINT("spool.after_env_rename");
	spool_job_changed(job);
	job->rc = 0;
	return;
fail:
	spool_commit_undo(job);
}

/* Worker, stage 1 of a commit on a filesystem without O_TMPFILE: tmp/ files, then renames. */
static void
spool_commit_tmp_work(void *arg)
{
	struct spool_job *job = arg;
	struct spool *sp = job->sp;

	job->rc = -1;
	if (spool_write_tmp(sp, job->env_name, job->env, job->env_len, &job->body, job->mtime_ms,
	    &job->err) == -1)
		return;
	buf_fini(&job->body);
	HK_CRASH_POINT("spool.before_env_link");
	/* Its presence in queue/ is the commit marker. */
	if (fsops_renameat(sp->tmp_fd, job->env_name, sp->queue_fd, job->env_name) == -1) {
		hk_err_sys(&job->err, errno, "rename %s into queue/", job->env_name);
		fsops_unlinkat(sp->tmp_fd, job->env_name, 0);
		return;
	}
	job->env_queued = true;
	HK_CRASH_POINT("spool.after_env_rename");
	spool_job_changed(job);
	job->rc = 0;
}

/*
 * Worker: the envelope queue/<ID>.env still carries the body (as the commit wrote it) and an
 * update is about to replace it: give the body a file of its own first, queue/<ID>.msg, complete
 * and fsync'ed before its name appears, and that name durable (queue/ fsync'ed) before the
 * envelope is replaced. A crash in between leaves both, the same bytes twice, which loads and
 * recovers like any message; never an envelope without its body.
 */
static int
spool_update_split_body(struct spool_job *job)
{
	struct spool *sp = job->sp;
	struct buf body = BUF_INIT;
	int fd = -1, rc = -1;

	if (spool_read_embedded_body(sp->queue_fd, job->env_name, job->id, &body, &job->err) == -1) {
		if (job->err.code == HK_E_NOTFOUND)
			hk_err_set(&job->err, HK_E_NOTFOUND, "%s: not queued", job->msg_name);
		goto out;
	}
	if (!sp->use_tmpfile) {
		if (spool_write_tmp(sp, job->msg_name, body.ptr, body.len, NULL, 0, &job->err) == -1)
			goto out;
		if (fsops_renameat(sp->tmp_fd, job->msg_name, sp->queue_fd, job->msg_name) == -1) {
			hk_err_sys(&job->err, errno, "rename %s into queue/", job->msg_name);
			fsops_unlinkat(sp->tmp_fd, job->msg_name, 0);
			goto out;
		}
	} else {
		fd = fsops_open_tmpfile(sp->queue_fd, 0640);
		if (fd == -1) {
			hk_err_sys(&job->err, errno, "create unnamed body in queue/");
			goto out;
		}
		if (fsops_write_all(fd, body.ptr, body.len) == -1) {
			hk_err_sys(&job->err, errno, "write body %s", job->msg_name);
			goto out;
		}
		if (fsops_fsync(fd) == -1) {
			hk_err_sys(&job->err, errno, "fsync body %s", job->msg_name);
			goto out;
		}
		if (fsops_link_tmpfile(fd, sp->queue_fd, job->msg_name) == -1) {
			hk_err_sys(&job->err, errno, "link queue/%s", job->msg_name);
			goto out;
		}
	}
	HK_CRASH_POINT("spool.after_body_split");
	/*
	 * An fsync of its own, not the group one: the new name must be durable before the rename
	 * that drops the old envelope, and the group fsync comes after that rename.
	 */
	if (spool_fsync_subdir(sp, "queue", &job->err) == -1) {
		/* Both are still there and complete; the update fails, the message stays as it was. */
		goto out;
	}
	rc = 0;
out:
	if (fd != -1)
		fsops_close(fd);
	buf_fini(&body);
	return rc;
}

/* Worker, stage 1 of an update. */
static void
spool_update_work(void *arg)
{
	struct spool_job *job = arg;
	struct spool *sp = job->sp;
	char fname[SPOOL_FREE_NAME_SIZE];
	struct stat st;
	int rc;

	job->rc = -1;
	/* Without its body, a new envelope would be a corrupt message: refuse. */
	if (fsops_fstatat(sp->queue_fd, job->msg_name, &st, 0) == -1) {
		if (errno != ENOENT) {
			hk_err_sys(&job->err, errno, "stat queue/%s", job->msg_name);
			return;
		}
		/* The body is still in the envelope that is about to be replaced. */
		if (spool_update_split_body(job) == -1)
			return;
	}
	/* rename(2) replaces atomically: a crash leaves the old or the new envelope. */
	while (spool_reuse_take(sp, fname)) {
		rc = spool_write_reused(job, fname, job->env, job->env_len, NULL, job->mtime_ms,
		    job->env_name);
		if (rc == -1)
			return;
		if (rc == 1) {
			spool_job_changed(job);
			job->rc = 0;
			return;
		}
	}
	if (spool_write_tmp(sp, job->env_name, job->env, job->env_len, NULL, job->mtime_ms,
	    &job->err) == -1)
		return;
	/* rename(2) replaces atomically: a crash leaves the old or the new envelope. */
	if (fsops_renameat(sp->tmp_fd, job->env_name, sp->queue_fd, job->env_name) == -1) {
		hk_err_sys(&job->err, errno, "rename %s into queue/", job->env_name);
		fsops_unlinkat(sp->tmp_fd, job->env_name, 0);
		return;
	}
	spool_job_changed(job);
	job->rc = 0;
}

/* Worker, stage 1 of a finish. */
/*
 * Worker, at the start of a finish: hand the body to the keep hook, from queue/<ID>.msg or, when
 * there is none, from after the envelope in queue/<ID>.env. Nothing to hand (a finish retried
 * after the files went, an unreadable file): the hook is not called; keeping is best effort and
 * never stops a finish.
 */
static void
spool_finish_keep(struct spool_job *job)
{
	struct spool *sp = job->sp;
	struct hk_err e = { 0 };
	int fd;

	pthread_rwlock_rdlock(&sp->keep_lock);
	if (sp->keep_fn == NULL)
		goto out;
	fd = fsops_openat(sp->queue_fd, job->msg_name, O_RDONLY | O_CLOEXEC, 0);
	if (fd == -1 && errno == ENOENT) {
		fd = fsops_openat(sp->queue_fd, job->env_name, O_RDONLY | O_CLOEXEC, 0);
		if (fd != -1 && spool_skip_envelope(fd, &e) == -1) {
			fsops_close(fd);
			fd = -1;
			errno = EINVAL;
		}
	}
	if (fd == -1) {
		if (errno != ENOENT)
			log_warn("spool", "keep_failed", "qid=%.16s errno=%d why=%s", job->env_name,
			    errno, log_q(e.text[0] ? e.text : "cannot open the body"));
		goto out;
	}
	sp->keep_fn(sp->keep_arg, job->id, fd);
	fsops_close(fd);
out:
	pthread_rwlock_unlock(&sp->keep_lock);
}

static void
spool_finish_work(void *arg)
{
	struct spool_job *job = arg;
	struct spool *sp = job->sp;

	spool_finish_keep(job);

	/* ENOENT: an earlier finish got this far; carry on so finishing can be retried. */
	/* With the size check: an envelope may still hold the body. */
	if (spool_reuse_retire(sp, job->env_name, true) == -1 && errno != ENOENT) {
		job->rc = hk_err_sys(&job->err, errno, "unlink queue/%s", job->env_name);
		return;
	}
	spool_job_changed(job);
	job->rc = 0;
}

/* Worker, stage 3 of a finish: the envelope's removal is durable, the body may go. */
static void
spool_finish_body_work(void *arg)
{
	struct spool_job *job = arg;

	if (spool_reuse_retire(job->sp, job->msg_name, true) == -1 && errno != ENOENT)
		job->rc = hk_err_sys(&job->err, errno, "unlink queue/%s", job->msg_name);
}

/*
 * Dirsync thread: make every change of queue/ up to seq durable, with one fsync for all changes
 * made before it started.
 */
static int
spool_dirsync(struct spool *sp, uint64_t seq, struct hk_err *err)
{
	uint64_t target;

	/* Its change was covered by a failed fsync; a later success on another fd proves nothing. */
	if (seq > sp->failed_lo && seq <= sp->failed_hi)
		return hk_err_sys(err, sp->failed_errno, "fsync queue/ (shared)");
	if (sp->synced_seq >= seq)
		return 0;
	/* Every change numbered up to target was done before this fsync starts. */
	target = atomic_load(&sp->dir_seq);
	if (sp->sync_fd == -1) {
		sp->sync_fd = fsops_openat(sp->root_fd, "queue", O_RDONLY | O_DIRECTORY, 0);
		if (sp->sync_fd == -1)
			return hk_err_sys(err, errno, "open queue/");
	}
	if (fsops_fsync(sp->sync_fd) == -1) {
		int e = errno;

		/* Never retry a failed fsync on the same fd; the next one gets a fresh fd. */
		fsops_close(sp->sync_fd);
		sp->sync_fd = -1;
		if (sp->failed_hi == 0)
			sp->failed_lo = sp->synced_seq;
		sp->failed_hi = target;
		sp->failed_errno = e;
		return hk_err_sys(err, e, "fsync queue/");
	}
	sp->synced_seq = target;
	atomic_store(&sp->synced_pub, target);
	return 0;
}

static void
spool_dirsync_work(void *arg)
{
	struct spool_job *job = arg;

	HK_CRASH_POINT("spool.before_dirsync");
	if (spool_dirsync(job->sp, job->seq, &job->err) == -1) {
		job->rc = -1;
		/*
		 * A commit is undone. An update stays: the new envelope replaced the old one, and
		 * either is a valid envelope of the message. A finish keeps the body.
		 */
		if (job->kind == SPOOL_JOB_COMMIT)
			spool_commit_undo(job);
		return;
	}
	/* The envelope's removal is durable: the body may go (a rename, done right here). */
	if (job->kind == SPOOL_JOB_FINISH)
		spool_finish_body_work(job);
}

/* Stage 1 on a spool worker, passed on by spool_stage1_next. */
static void
spool_commit_run(void *arg)
{
	struct spool_job *job = arg;

	if (job->sp->use_tmpfile)
		spool_commit_work(job);
	else
		spool_commit_tmp_work(job);
	spool_stage1_next(job);
}

static void
spool_update_run(void *arg)
{
	spool_update_work(arg);
	spool_stage1_next(arg);
}

static void
spool_finish_run(void *arg)
{
	spool_finish_work(arg);
	spool_stage1_next(arg);
}

int
spool_commit(struct spool *sp, const struct spool_env *env, struct buf *body,
    spool_done_fn done_cb, void *arg, struct hk_err *err)
{
	struct spool_job *job;

	HK_ASSERT_LOOP();
	if (sp->max_inflight != 0 && sp->commits >= sp->max_inflight)
		return hk_err_set(err, HK_E_BUSY, "spool busy: %zu commits in flight", sp->commits);
	job = spool_job_new(sp, SPOOL_JOB_COMMIT, env->id, env, done_cb, arg);
	buf_move(&job->body, body);
	jobs_pool_submit(sp->pool, spool_commit_run, NULL, job);
	return 0;
}

int
spool_update(struct spool *sp, const struct spool_env *env, spool_done_fn done_cb, void *arg,
    struct hk_err *err)
{
	struct spool_job *job;

	HK_ASSERT_LOOP();
	job = spool_job_new(sp, SPOOL_JOB_UPDATE, env->id, env, done_cb, arg);
	jobs_pool_submit(sp->pool, spool_update_run, NULL, job);
	return 0;
}

int
spool_finish(struct spool *sp, uint64_t id, spool_done_fn done_cb, void *arg,
    struct hk_err *err)
{
	struct spool_job *job;

	HK_ASSERT_LOOP();
	job = spool_job_new(sp, SPOOL_JOB_FINISH, id, NULL, done_cb, arg);
	jobs_pool_submit(sp->pool, spool_finish_run, NULL, job);
	return 0;
}
