/*
 * maildrop.c - the maildrop file format, the sendmail side's writer, and the daemon's pickup;
 * see maildrop.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "maildrop.h"
#include "spool_priv.h"
#include "../proto/addr.h"
#include "../proto/header.h"
#include "../util/clock.h"
#include "../util/fsops.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define MAILDROP_MAX_INFLIGHT 64   /* commits started by one pickup at a time */
#define MAILDROP_RESCAN_MS 30000   /* with inotify: retries of temporary failures */
#define MAILDROP_POLL_MS 1000      /* without inotify */
#define MAILDROP_CORRUPT_PREFIX "maildrop-"

/* Codec */

void
maildrop_encode(const struct spool_env *env, const char *body, size_t len, struct buf *out)
{
	struct spool_env e = *env;

	e.size = len;
	spool_format_encode(&e, out);
	buf_append(out, body, len);
}

enum spool_format_result
maildrop_decode(const char *p, size_t len, struct spool_env *out, size_t *body_off,
    const char **why)
{
	enum spool_format_result res;
	size_t end = spool_format_env_len(p, len);

	if (end == 0) {
		*why = "no END line";
		return SPOOL_FORMAT_TRUNCATED;
	}
	res = spool_format_decode(p, end, out, why);
	if (res != SPOOL_FORMAT_OK)
		return res;
	if (out->size != len - end) {
		spool_env_fini(out);
		*why = "body length differs from the size record";
		return SPOOL_FORMAT_TRUNCATED;
	}
	*body_off = end;
	return SPOOL_FORMAT_OK;
}

/* Writer (the sendmail command) */

static void
maildrop_make_name(char name[MAILDROP_NAME_SIZE])
{
	static const char hex[] = "0123456789ABCDEF";
	uint64_t t = clock_now_ms(), r = 0;
	size_t i;

	/* Unguessable, so nobody can open another user's file by name (the directory is 1733). */
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r ^= (uint64_t)getpid() << 32 ^ clock_mono_ms();
	for (i = 0; i < ID_HEX_LEN; i++) {
		name[i] = hex[(t >> (60 - 4 * i)) & 0xf];
		name[ID_HEX_LEN + 1 + i] = hex[(r >> (60 - 4 * i)) & 0xf];
	}
	name[ID_HEX_LEN] = '.';
	name[2 * ID_HEX_LEN + 1] = '\0';
}

int
maildrop_submit(const char *spool_dir, const struct spool_env *env, const char *body, size_t len,
    char name[MAILDROP_NAME_SIZE], struct hk_err *err)
{
	char tmp[MAILDROP_NAME_SIZE + 1];
	struct buf path = BUF_INIT, data = BUF_INIT;
	int dfd, fd = -1;

	buf_printf(&path, "%s/maildrop", spool_dir);
	dfd = fsops_openat(AT_FDCWD, path.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dfd == -1) {
		if (errno == ENOENT)
			hk_err_set(err, HK_E_NOTFOUND, "%s does not exist", path.ptr);
		else
			hk_err_sys(err, errno, "open %s", path.ptr);
		buf_fini(&path);
		return -1;
	}
	maildrop_make_name(name);
	tmp[0] = '.';
	memcpy(tmp + 1, name, MAILDROP_NAME_SIZE);
	maildrop_encode(env, body, len, &data);
	fd = fsops_openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd == -1) {
		hk_err_sys(err, errno, "create %s/%s", path.ptr, tmp);
		goto fail;
	}
	/* The daemon runs as another user: the umask must not hide the file from it. */
	if (fchmod(fd, 0644) == -1) {
		hk_err_sys(err, errno, "chmod %s/%s", path.ptr, tmp);
		goto fail_unlink;
	}
	if (fsops_write_all(fd, data.ptr, data.len) == -1) {
		hk_err_sys(err, errno, "write %s/%s", path.ptr, tmp);
		goto fail_unlink;
	}
	/* A failed fsync leaves the page state unknown: never retry it on this fd. */
	if (fsops_fsync(fd) == -1) {
		hk_err_sys(err, errno, "fsync %s/%s", path.ptr, tmp);
		goto fail_unlink;
	}
	if (fsops_close(fd) == -1) {
		fd = -1;
		hk_err_sys(err, errno, "close %s/%s", path.ptr, tmp);
		goto fail_unlink;
	}
	fd = -1;
	if (fsops_renameat(dfd, tmp, dfd, name) == -1) {
		hk_err_sys(err, errno, "rename %s/%s", path.ptr, tmp);
		goto fail_unlink;
	}
	/* Exit 0 promises the file survives a crash: the new name must be on disk too. */
	if (fsops_fsync(dfd) == -1) {
		hk_err_sys(err, errno, "fsync %s", path.ptr);
		fsops_unlinkat(dfd, name, 0);
		goto fail;
	}
	fsops_close(dfd);
	buf_fini(&path);
	buf_fini(&data);
	return 0;
fail_unlink:
	fsops_unlinkat(dfd, tmp, 0);
fail:
	if (fd != -1)
		fsops_close(fd);
	fsops_close(dfd);
	buf_fini(&path);
	buf_fini(&data);
	return -1;
}

/* Pickup (the daemon) */

struct maildrop_job {
	struct maildrop *md;
	struct maildrop_job *next;
	struct spool_env env;
	unsigned uid;
	char name[MAILDROP_NAME_SIZE];
};

struct maildrop {
	struct maildrop_params p;
	char *hostname;
	struct event *ino_ev, *timer_ev, *kick_ev;
	int ino_fd;
	struct maildrop_job *jobs; /* commits in flight */
	size_t inflight;
	struct maildrop_stats stats;
};

size_t
maildrop_inflight(const struct maildrop *md)
{
	return md->inflight;
}

const struct maildrop_stats *
maildrop_stats(const struct maildrop *md)
{
	return &md->stats;
}

static bool
maildrop_is_inflight(const struct maildrop *md, const char *name)
{
	const struct maildrop_job *j;

	for (j = md->jobs; j != NULL; j = j->next) {
		if (strcmp(j->name, name) == 0)
			return true;
	}
	return false;
}

/* Move maildrop/name to corrupt/ (kept for a human) and make both directories durable. */
static void
maildrop_to_corrupt(struct maildrop *md, const char *name, unsigned uid, const char *why)
{
	struct spool *sp = md->p.spool;
	struct buf dst = BUF_INIT;
	struct hk_err err = { 0 };

	buf_printf(&dst, MAILDROP_CORRUPT_PREFIX "%s", name);
	md->stats.corrupt++;
	log_warn("maildrop", "corrupt", "sess=maildrop file=%s uid=%u why=%s", log_q(name), uid,
	    log_q(why));
	if (fsops_renameat(sp->maildrop_fd, name, sp->corrupt_fd, dst.ptr) == -1) {
		log_error("maildrop", "corrupt_move_failed", "sess=maildrop file=%s errno=%d fix=%s",
		    log_q(name), errno, log_q("remove the file from maildrop/ by hand"));
		buf_fini(&dst);
		return;
	}
	buf_fini(&dst);
	if (spool_fsync_subdir(sp, "corrupt", &err) == -1 ||
	    spool_fsync_subdir(sp, "maildrop", &err) == -1)
		log_error("maildrop", "fsync_failed", "sess=maildrop err=%s", log_q(err.text));
}

static void
maildrop_kick(struct maildrop *md)
{
	struct timeval now = { 0, 0 };

	if (md->kick_ev != NULL && !event_pending(md->kick_ev, EV_TIMEOUT, NULL))
		event_add(md->kick_ev, &now);
}

static void
maildrop_done_cb(int rc, const struct hk_err *err, void *arg)
{
	struct maildrop_job *job = arg, **pp;
	struct maildrop *md = job->md;
	struct hk_err ferr = { 0 };
	char qid[ID_HEX_LEN + 1];

	for (pp = &md->jobs; *pp != job; pp = &(*pp)->next)
		;
	*pp = job->next;
	md->inflight--;
	id_format(job->env.id, qid);
	if (rc == -1) {
		md->stats.failed++;
		log_warn("maildrop", "commit_failed", "qid=%s file=%s err=%s", qid, log_q(job->name),
		    log_q(err ? err->text : "unknown"));
		goto out;
	}
	md->stats.queued++;
	log_info("maildrop", "queued", "qid=%s file=%s uid=%u from=%s nrcpt=%zu size=%" PRIu64,
	    qid, log_q(job->name), job->uid, log_q(job->env.from), job->env.n_rcpts,
	    job->env.size);
	if (md->p.queued_cb != NULL)
		md->p.queued_cb(md->p.cb_arg, &job->env);
	/* Queued for good: the drop file must go, or a restart would send it again. */
	if (fsops_unlinkat(md->p.spool->maildrop_fd, job->name, 0) == -1 && errno != ENOENT)
		log_error("maildrop", "unlink_failed", "qid=%s file=%s errno=%d fix=%s", qid,
		    log_q(job->name), errno,
		    log_q("remove the file from maildrop/ by hand, or it is sent again"));
	else if (spool_fsync_subdir(md->p.spool, "maildrop", &ferr) == -1)
		log_error("maildrop", "fsync_failed", "qid=%s err=%s", qid, log_q(ferr.text));
	maildrop_kick(md); /* a scan may have stopped at MAILDROP_MAX_INFLIGHT */
out:
	spool_env_fini(&job->env);
	free(job);
}

/*
 * Build the queued envelope from a decoded drop: only sender, recipients and DSN options are
 * taken; *why explains a refusal.
 */
static int
maildrop_build_env(struct maildrop *md, const struct spool_env *in, const char *body, size_t len,
    struct spool_env *out, const char **why)
{
	struct addr_parts parts;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (md->p.max_size && len > md->p.max_size) {
		*why = "message larger than limits.max_message_size";
		return -1;
	}
	if (md->p.max_rcpts && in->n_rcpts > md->p.max_rcpts) {
		*why = "more recipients than limits.max_recipients";
		return -1;
	}
	if (in->from[0] != '\0') {
		if (addr_parse(in->from, strlen(in->from), ADDR_ALLOW_UTF8, &parts, why) != ADDR_OK)
			return -1;
		out->smtputf8 = parts.has_utf8;
	}
	for (i = 0; i < in->n_rcpts; i++) {
		const char *a = in->rcpts[i].addr;

		if (addr_parse(a, strlen(a), ADDR_ALLOW_UTF8, &parts, why) != ADDR_OK) {
			spool_env_fini(out);
			return -1;
		}
		out->smtputf8 = out->smtputf8 || parts.has_utf8;
		spool_env_add_rcpt(out, a, in->rcpts[i].notify, NULL);
	}
	out->from = xstrdup(in->from);
	out->ret = in->ret;
	out->envid = in->envid ? xstrdup(in->envid) : NULL;
	out->body = SMTP_BODY_7BIT;
	for (i = 0; i < len; i++) {
		if ((unsigned char)body[i] >= 0x80) {
			out->body = SMTP_BODY_8BITMIME;
			break;
		}
	}
	out->source = xstrdup("sendmail");
	return 0;
}

/* RFC 5321 4.4: every hop that takes a message in adds a Received: field. */
static void
maildrop_received(struct maildrop *md, uint64_t id, unsigned uid, uint64_t now_ms,
    struct buf *out)
{
	char qid[ID_HEX_LEN + 1];

	id_format(id, qid);
	buf_printf(out, "Received: from local (uid %u)\r\n\tby %s (hikyaku) with local id %s;\r\n\t",
	    uid, md->hostname, qid);
	header_format_date(out, (int64_t)(now_ms / 1000), 0);
	buf_append_str(out, "\r\n");
}

/* Read, check and start the commit of maildrop/name. */
static void
maildrop_take(struct maildrop *md, const char *name)
{
	struct spool *sp = md->p.spool;
	struct spool_env dropped, env;
	struct maildrop_job *job;
	struct buf raw = BUF_INIT, body = BUF_INIT;
	struct hk_err err = { 0 };
	const char *why = NULL;
	size_t cap, off = 0;
	uint64_t now;
	struct stat st;
	int fd;

	fd = fsops_openat(sp->maildrop_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
	if (fd == -1) {
		if (errno == ELOOP)
			maildrop_to_corrupt(md, name, 0, "symbolic link");
		else if (errno != ENOENT)
			log_warn("maildrop", "open_failed", "sess=maildrop file=%s errno=%d",
			    log_q(name), errno);
		return;
	}
	if (fstat(fd, &st) == -1) {
		log_warn("maildrop", "stat_failed", "sess=maildrop file=%s errno=%d", log_q(name),
		    errno);
		fsops_close(fd);
		return;
	}
	/* Never follow a writer's trick: a FIFO, a device, or a hard link to someone else's file. */
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		fsops_close(fd);
		maildrop_to_corrupt(md, name, (unsigned)st.st_uid,
		    S_ISREG(st.st_mode) ? "file has other links" : "not a regular file");
		return;
	}
	cap = md->p.max_size ? (size_t)md->p.max_size + SPOOL_ENV_MAX : SIZE_MAX / 2;
	if ((uint64_t)st.st_size > cap) {
		fsops_close(fd);
		maildrop_to_corrupt(md, name, (unsigned)st.st_uid, "file too big");
		return;
	}
	if (fsops_read_all(fd, &raw, cap) == -1) {
		log_warn("maildrop", "read_failed", "sess=maildrop file=%s errno=%d", log_q(name),
		    errno);
		fsops_close(fd);
		buf_fini(&raw);
		return;
	}
	fsops_close(fd);
	memset(&dropped, 0, sizeof(dropped));
	if (maildrop_decode(raw.ptr ? raw.ptr : "", raw.len, &dropped, &off, &why) !=
	    SPOOL_FORMAT_OK) {
		maildrop_to_corrupt(md, name, (unsigned)st.st_uid, why);
		buf_fini(&raw);
		return;
	}
	if (maildrop_build_env(md, &dropped, raw.ptr + off, raw.len - off, &env, &why) == -1) {
		spool_env_fini(&dropped);
		maildrop_to_corrupt(md, name, (unsigned)st.st_uid, why);
		buf_fini(&raw);
		return;
	}
	spool_env_fini(&dropped);
	now = clock_now_ms();
	env.id = id_gen_next(md->p.ids, now);
	env.received_ms = now;
	maildrop_received(md, env.id, (unsigned)st.st_uid, now, &body);
	buf_append(&body, raw.ptr + off, raw.len - off);
	buf_fini(&raw);
	env.size = body.len;
	env.subject = header_subject(body.ptr, body.len);

	job = xcalloc(1, sizeof(*job));
	job->md = md;
	job->env = env;
	job->uid = (unsigned)st.st_uid;
	memcpy(job->name, name, strlen(name) + 1);
	if (spool_commit(sp, &job->env, &body, maildrop_done_cb, job, &err) == -1) {
		/* Busy or failing: the file stays, the next scan tries again. */
		md->stats.failed++;
		log_warn("maildrop", "commit_refused", "sess=maildrop file=%s err=%s", log_q(name),
		    log_q(err.text));
		spool_env_fini(&job->env);
		free(job);
		buf_fini(&body);
		return;
	}
	buf_fini(&body);
	job->next = md->jobs;
	md->jobs = job;
	md->inflight++;
}

/* Is name "<16 hex>.<16 hex>", as maildrop_submit() makes them? */
static bool
maildrop_name_is_valid(const char *name)
{
	size_t i;

	for (i = 0; i < 2 * ID_HEX_LEN + 1; i++) {
		char c = name[i];

		if (i == ID_HEX_LEN ? c != '.' : !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return name[2 * ID_HEX_LEN + 1] == '\0';
}

/* A dot file left by a writer that died: removed once it is a day old. */
static void
maildrop_reap(struct maildrop *md, const char *name)
{
	struct stat st;
	uint64_t mtime_ms;

	if (fsops_fstatat(md->p.spool->maildrop_fd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return;
	mtime_ms = (uint64_t)st.st_mtim.tv_sec * 1000 + (uint64_t)st.st_mtim.tv_nsec / 1000000;
	if (mtime_ms + MAILDROP_STALE_MS < clock_now_ms() &&
	    fsops_unlinkat(md->p.spool->maildrop_fd, name, 0) == 0)
		log_info("maildrop", "stale_removed", "sess=maildrop file=%s", log_q(name));
}

void
maildrop_scan(struct maildrop *md)
{
	struct dirent *de;
	DIR *d;

	HK_ASSERT_LOOP();
	d = fsops_opendirat(md->p.spool->maildrop_fd, ".");
	if (d == NULL) {
		log_error("maildrop", "scan_failed", "sess=maildrop errno=%d", errno);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		if (name[0] == '.') {
			maildrop_reap(md, name);
			continue;
		}
		if (maildrop_is_inflight(md, name))
			continue;
		if (md->inflight >= MAILDROP_MAX_INFLIGHT)
			break; /* the next completion kicks a new scan */
		if (!maildrop_name_is_valid(name)) {
			maildrop_to_corrupt(md, name, 0, "not a maildrop file name");
			continue;
		}
		maildrop_take(md, name);
	}
	closedir(d);
}

static void
maildrop_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	maildrop_scan(arg);
}

static void
maildrop_ino_cb(evutil_socket_t fd, short what, void *arg)
{
	char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	(void)what;
	/* Drain the events; one scan covers them all. */
	while (read(fd, ev, sizeof(ev)) > 0)
		;
	maildrop_kick(arg);
}

static void
maildrop_watch(struct maildrop *md)
{
	struct buf path = BUF_INIT;

	md->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (md->ino_fd == -1)
		goto fail;
	buf_printf(&path, "/proc/self/fd/%d", md->p.spool->maildrop_fd);
	/* Writers rename complete files into place (maildrop_submit). */
	if (inotify_add_watch(md->ino_fd, path.ptr, IN_MOVED_TO | IN_ONLYDIR) == -1)
		goto fail;
	buf_fini(&path);
	md->ino_ev = event_new(md->p.base, md->ino_fd, EV_READ | EV_PERSIST, maildrop_ino_cb, md);
	if (md->ino_ev == NULL || event_add(md->ino_ev, NULL) == -1)
		hk_panic("maildrop: cannot add the inotify event");
	return;
fail:
	log_warn("maildrop", "no_inotify", "sess=maildrop errno=%d fallback=%s", errno,
	    log_q("rescan every second"));
	if (md->ino_fd != -1)
		close(md->ino_fd);
	md->ino_fd = -1;
	buf_fini(&path);
}

struct maildrop *
maildrop_new(const struct maildrop_params *p, struct hk_err *err)
{
	struct maildrop *md = xcalloc(1, sizeof(*md));
	struct timeval tv, now = { 0, 0 };
	uint64_t every;

	HK_ASSERT_LOOP();
	HK_ASSERT(p->base != NULL && p->spool != NULL && p->ids != NULL);
	md->p = *p;
	md->hostname = xstrdup(p->hostname && p->hostname[0] ? p->hostname : "localhost");
	md->p.hostname = md->hostname;
	md->ino_fd = -1;
	maildrop_watch(md);
	every = md->ino_fd != -1 ? MAILDROP_RESCAN_MS : MAILDROP_POLL_MS;
	tv.tv_sec = (time_t)(every / 1000);
	tv.tv_usec = (suseconds_t)(every % 1000) * 1000;
	md->timer_ev = event_new(p->base, -1, EV_PERSIST, maildrop_kick_cb, md);
	md->kick_ev = evtimer_new(p->base, maildrop_kick_cb, md);
	if (md->timer_ev == NULL || md->kick_ev == NULL || event_add(md->timer_ev, &tv) == -1 ||
	    event_add(md->kick_ev, &now) == -1) {
		maildrop_free(md);
		hk_err_set(err, HK_E_IO, "maildrop: cannot add timer events");
		return NULL;
	}
	return md;
}

void
maildrop_free(struct maildrop *md)
{
	if (md == NULL)
		return;
	HK_ASSERT_LOOP();
	if (md->ino_ev)
		event_free(md->ino_ev);
	if (md->timer_ev)
		event_free(md->timer_ev);
	if (md->kick_ev)
		event_free(md->kick_ev);
	md->ino_ev = md->timer_ev = md->kick_ev = NULL;
	if (md->ino_fd != -1)
		close(md->ino_fd);
	/* Each commit ends with a completion: run them so queued messages leave maildrop/. */
	while (md->inflight > 0)
		jobs_wait_completions(md->p.spool->hub);
	free(md->hostname);
	free(md);
}
