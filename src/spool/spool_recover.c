/*
 * spool_recover.c - the start-up scan (DESIGN.md 5, "Recovery").
 *
 * Runs before the first commit, on the loop, synchronously. Names are collected first and acted
 * on after the directory scan (changing a directory while reading it may skip entries). IDs are
 * 8 bytes each, so even a large queue costs little memory.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spool_priv.h"
#include "../util/fsops.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

struct spool_ids {
	uint64_t *v;
	size_t n, cap;
};

static void
spool_ids_push(struct spool_ids *ids, uint64_t id)
{
	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? ids->cap * 2 : 256;
		ids->v = xreallocarray(ids->v, ids->cap, sizeof(*ids->v));
	}
	ids->v[ids->n++] = id;
}

static int
spool_ids_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
spool_ids_sort(struct spool_ids *ids)
{
	if (ids->n > 1)
		qsort(ids->v, ids->n, sizeof(*ids->v), spool_ids_cmp);
}

/*
 * List dir (sub of the spool) into msgs and envs. Entries that are not regular files named
 * <16 hex>.msg/.env are left alone and logged: they are not ours to remove.
 */
static int
spool_scan(struct spool *sp, const char *sub, struct spool_ids *msgs, struct spool_ids *envs,
    struct hk_err *err)
{
	struct dirent *de;
	DIR *d;

	d = fsops_opendirat(sp->root_fd, sub);
	if (d == NULL)
		return hk_err_sys(err, errno, "opendir %s/", sub);
	for (;;) {
		enum spool_file_kind kind;
		uint64_t id;

		errno = 0;
		de = readdir(d);
		if (de == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		/* Recycled files (spool_reuse.c) live in queue/ only. */
		if (strcmp(sub, "queue") == 0 && (de->d_type == DT_REG || de->d_type == DT_UNKNOWN) &&
		    spool_reuse_adopt(sp, de->d_name))
			continue;
		if ((de->d_type != DT_REG && de->d_type != DT_UNKNOWN) ||
		    spool_name_parse(de->d_name, &id, &kind) == -1) {
			log_warn("spool", "unknown_file", "dir=%s name=%s left=yes", sub,
			    log_q(de->d_name));
			continue;
		}
		spool_ids_push(kind == SPOOL_FILE_MSG ? msgs : envs, id);
	}
	if (errno != 0) {
		hk_err_sys(err, errno, "readdir %s/", sub);
		closedir(d);
		return -1;
	}
	closedir(d);
	spool_ids_sort(msgs);
	spool_ids_sort(envs);
	return 0;
}

/* Remove every spool file from tmp/: nothing there was ever acknowledged. */
static int
spool_recover_tmp(struct spool *sp, struct spool_recover_stats *st, struct hk_err *err)
{
	struct spool_ids ids[2] = { { 0 }, { 0 } };
	int rc = -1;
	size_t k, i;

	if (spool_scan(sp, "tmp", &ids[SPOOL_FILE_MSG], &ids[SPOOL_FILE_ENV], err) == -1)
		goto out;
	for (k = 0; k < 2; k++) {
		for (i = 0; i < ids[k].n; i++) {
			char name[SPOOL_NAME_SIZE];

			spool_name(name, ids[k].v[i], (enum spool_file_kind)k);
			if (fsops_unlinkat(sp->tmp_fd, name, 0) == -1 && errno != ENOENT) {
				hk_err_sys(err, errno, "unlink tmp/%s", name);
				goto out;
			}
			st->tmp_removed++;
		}
	}
	if (st->tmp_removed > 0 && fsops_fsync(sp->tmp_fd) == -1) {
		hk_err_sys(err, errno, "fsync tmp/");
		goto out;
	}
	rc = 0;
out:
	free(ids[0].v);
	free(ids[1].v);
	return rc;
}

/* Move queue/<id>.<kind> to corrupt/ (kept for a human; never emptied automatically). */
static int
spool_to_corrupt(struct spool *sp, uint64_t id, enum spool_file_kind kind, struct hk_err *err)
{
	char name[SPOOL_NAME_SIZE];

	spool_name(name, id, kind);
	if (fsops_renameat(sp->queue_fd, name, sp->corrupt_fd, name) == -1)
		return hk_err_sys(err, errno, "move %s to corrupt/", name);
	return 0;
}

/* Envelope first: queue/ must never hold an envelope whose body is gone. */
static int
spool_quarantine(struct spool *sp, uint64_t id, bool has_body, const char *why,
    struct hk_err *err)
{
	char hex[ID_HEX_LEN + 1];

	id_format(id, hex);
	log_warn("spool", "corrupt", "qid=%s why=%s", hex, log_q(why));
	if (spool_to_corrupt(sp, id, SPOOL_FILE_ENV, err) == -1)
		return -1;
	if (has_body && spool_to_corrupt(sp, id, SPOOL_FILE_MSG, err) == -1)
		return -1;
	return 0;
}

/*
 * A message's envelope, with a body file (has_msg) or the body embedded in it (as a commit
 * writes it): verify, report it or quarantine it. An envelope without either never had a body.
 */
static int
spool_recover_one(struct spool *sp, uint64_t id, bool has_msg, spool_recover_fn cb, void *arg,
    struct spool_recover_stats *st, struct hk_err *err)
{
	char name[SPOOL_NAME_SIZE];
	struct spool_env env = { 0 };
	uint64_t embedded = 0;
	struct hk_err e;

	spool_name(name, id, SPOOL_FILE_ENV);
	if (spool_read_env(sp->queue_fd, name, id, &env, &embedded, &e) == 0) {
		if (!has_msg && embedded == 0) {
			spool_env_fini(&env);
			if (spool_quarantine(sp, id, false, "envelope without body", err) == -1)
				return -1;
			st->corrupt++;
			return 0;
		}
		if (cb != NULL)
			cb(arg, &env);
		spool_env_fini(&env);
		st->queued++;
		return 0;
	}
	/* Only bad contents quarantine a message; an I/O error is not the message's fault. */
	if (e.code != HK_E_DATA) {
		if (err != NULL)
			*err = e;
		return -1;
	}
	if (spool_quarantine(sp, id, has_msg, e.text, err) == -1)
		return -1;
	st->corrupt++;
	return 0;
}

static int
spool_recover_queue(struct spool *sp, spool_recover_fn cb, void *arg,
    struct spool_recover_stats *st, bool *changed, struct hk_err *err)
{
	struct spool_ids msgs = { 0 }, envs = { 0 };
	size_t i = 0, j = 0;
	int rc = -1;

	if (spool_scan(sp, "queue", &msgs, &envs, err) == -1)
		goto out;
	while (i < envs.n || j < msgs.n) {
		if (j == msgs.n || (i < envs.n && envs.v[i] < msgs.v[j])) {
			size_t before = st->corrupt;

			/* The usual case: the commit wrote the body into the envelope's file. */
			if (spool_recover_one(sp, envs.v[i], false, cb, arg, st, err) == -1)
				goto out;
			if (st->corrupt != before)
				*changed = true;
			i++;
		} else if (i == envs.n || msgs.v[j] < envs.v[i]) {
			char name[SPOOL_NAME_SIZE];

			/* Never acknowledged: the envelope, the commit marker, never arrived. */
			spool_name(name, msgs.v[j], SPOOL_FILE_MSG);
			*changed = true;
			if (fsops_unlinkat(sp->queue_fd, name, 0) == -1) {
				hk_err_sys(err, errno, "unlink queue/%s", name);
				goto out;
			}
			st->orphan_bodies++;
			j++;
		} else {
			size_t before = st->corrupt;

			if (spool_recover_one(sp, envs.v[i], true, cb, arg, st, err) == -1)
				goto out;
			if (st->corrupt != before)
				*changed = true;
			i++;
			j++;
		}
	}
	rc = 0;
out:
	free(msgs.v);
	free(envs.v);
	return rc;
}

int
spool_recover(struct spool *sp, spool_recover_fn cb, void *arg,
    struct spool_recover_stats *stats, struct hk_err *err)
{
	struct spool_recover_stats st = { 0 };
	bool changed = false;

	HK_ASSERT_LOOP();
	if (spool_recover_tmp(sp, &st, err) == -1)
		return -1;
	if (spool_recover_queue(sp, cb, arg, &st, &changed, err) == -1)
		return -1;
	/* The new names in corrupt/ first: a crash between the two must not lose the files. */
	if (st.corrupt > 0 && fsops_fsync(sp->corrupt_fd) == -1)
		return hk_err_sys(err, errno, "fsync corrupt/");
	if (changed && fsops_fsync(sp->queue_fd) == -1)
		return hk_err_sys(err, errno, "fsync queue/");
	log_info("spool", "recovered", "queued=%zu tmp_removed=%zu corrupt=%zu orphan_bodies=%zu",
	    st.queued, st.tmp_removed, st.corrupt, st.orphan_bodies);
	if (stats != NULL)
		*stats = st;
	return 0;
}
