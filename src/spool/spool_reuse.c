/*
 * spool_reuse.c - finished spool files keep their inodes for the next messages.
 *
 * Why: on ext4 without a journal, every inode allocation skips the inodes freed in the last few
 * minutes (the kernel reads each one's deletion time), so a relay that creates and deletes two
 * files per message spends most of its time in inode allocation once thousands of messages have
 * come and gone (perf: over half of the spool threads' CPU in find_inode_bit/recently_deleted).
 * Instead, a finished envelope or small body is renamed to queue/.free-<8 hex> (same directory:
 * no filesystem-wide rename lock) and a later commit or update writes into it and renames it to
 * its real name. The commit marker rule is unchanged: <ID>.env appears, by rename, only with
 * complete, fsync'ed contents; a .free- file holds nothing anyone acknowledged.
 *
 * Crash safety: on a filesystem without a journal, the kernel never hands out an inode freed a
 * moment ago, because after a crash the directory may still name it. The same holds here: a
 * retired file is reused only after a directory fsync made its new .free- name durable (its
 * rename's dir_seq number is covered by synced_pub); until then no old name can point at it
 * when new contents arrive. Hence a FIFO: the oldest entries are the first to be durable.
 *
 * Files with a second name are never recycled: a hard link made from outside (a backup made by
 * hard links, an administrator's copy with ln) would see its file rewritten with another
 * message. Retirement unlinks such a file instead, and a writer checks the link count of every
 * free file before it opens it.
 *
 * Recovery adopts .free- files found in queue/ (or removes those beyond the pool's size); they
 * too wait for the next directory fsync.
 * Thread: any; the pool is under a mutex.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spool_priv.h"
#include "../util/fsops.h"
#include "../util/num.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

void
spool_reuse_init(struct spool *sp)
{
	pthread_mutex_init(&sp->free_mu, NULL);
	sp->free_ring = xcalloc(SPOOL_FREE_MAX, sizeof(*sp->free_ring));
	sp->free_head = sp->n_free = sp->free_reserved = 0;
	sp->free_next = 0;
	atomic_init(&sp->synced_pub, 0);
}

void
spool_reuse_fini(struct spool *sp)
{
	pthread_mutex_destroy(&sp->free_mu);
	free(sp->free_ring);
	sp->free_ring = NULL;
}

static void
spool_reuse_name(char out[SPOOL_FREE_NAME_SIZE], uint32_t k)
{
	snprintf(out, SPOOL_FREE_NAME_SIZE, "%s%08X", SPOOL_FREE_PREFIX, (unsigned)k);
}

bool
spool_reuse_take(struct spool *sp, char name[SPOOL_FREE_NAME_SIZE])
{
	uint32_t k;

	pthread_mutex_lock(&sp->free_mu);
	if (sp->n_free == 0 ||
	    sp->free_ring[sp->free_head].seq > atomic_load(&sp->synced_pub)) {
		pthread_mutex_unlock(&sp->free_mu);
		return false;
	}
	k = sp->free_ring[sp->free_head].k;
	sp->free_head = (sp->free_head + 1) % SPOOL_FREE_MAX;
	sp->n_free--;
	pthread_mutex_unlock(&sp->free_mu);
	spool_reuse_name(name, k);
	return true;
}

/* Reserve a slot and a number; false when the pool is full. */
static bool
spool_reuse_reserve(struct spool *sp, uint32_t *k)
{
	bool ok = false;

	pthread_mutex_lock(&sp->free_mu);
	if (sp->n_free + sp->free_reserved < SPOOL_FREE_MAX) {
		sp->free_reserved++;
		*k = sp->free_next++;
		ok = true;
	}
	pthread_mutex_unlock(&sp->free_mu);
	return ok;
}

/* Append to the ring (free_mu held; room was reserved or checked). */
static void
spool_reuse_push(struct spool *sp, uint32_t k, uint64_t seq)
{
	struct spool_free_ent *e = &sp->free_ring[(sp->free_head + sp->n_free) % SPOOL_FREE_MAX];

	e->k = k;
	e->seq = seq;
	sp->n_free++;
}

static void
spool_reuse_settle(struct spool *sp, uint32_t k, bool keep)
{
	uint64_t seq = 0;

	/* Numbered after the rename, so any directory fsync that starts later covers it. */
	if (keep)
		seq = atomic_fetch_add(&sp->dir_seq, 1) + 1;
	pthread_mutex_lock(&sp->free_mu);
	sp->free_reserved--;
	if (keep)
		spool_reuse_push(sp, k, seq);
	pthread_mutex_unlock(&sp->free_mu);
}

int
spool_reuse_retire(struct spool *sp, const char *name, bool check_size)
{
	char fname[SPOOL_FREE_NAME_SIZE];
	struct stat st;
	uint32_t k;

	if (check_size) {
		if (fsops_fstatat(sp->queue_fd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			return -1;
		/* A file with a second name is left to that name: never rewrite it. */
		if (!S_ISREG(st.st_mode) || st.st_size > SPOOL_FREE_MAX_SIZE || st.st_nlink != 1)
			return fsops_unlinkat(sp->queue_fd, name, 0);
	}
	if (!spool_reuse_reserve(sp, &k))
		return fsops_unlinkat(sp->queue_fd, name, 0);
	spool_reuse_name(fname, k);
	if (fsops_renameat(sp->queue_fd, name, sp->queue_fd, fname) == 0) {
		spool_reuse_settle(sp, k, true);
		return 0;
	}
	{
		int e = errno;

		/* Reported like a failed unlink: the caller retries the whole step later. */
		spool_reuse_settle(sp, k, false);
		errno = e;
	}
	return -1;
}

void
spool_reuse_drop(struct spool *sp, const char *fname)
{
	fsops_unlinkat(sp->queue_fd, fname, 0);
}

bool
spool_reuse_adopt(struct spool *sp, const char *name)
{
	size_t plen = sizeof(SPOOL_FREE_PREFIX) - 1;
	uint64_t v;
	bool keep = false;

	if (strncmp(name, SPOOL_FREE_PREFIX, plen) != 0)
		return false;
	if (strlen(name + plen) == 8 && num_parse_hex64(name + plen, 8, &v) == 0) {
		uint64_t seq = atomic_load(&sp->dir_seq) + 1; /* wait for the next fsync */

		pthread_mutex_lock(&sp->free_mu);
		if (sp->n_free + sp->free_reserved < SPOOL_FREE_MAX) {
			spool_reuse_push(sp, (uint32_t)v, seq);
			if ((uint32_t)v >= sp->free_next)
				sp->free_next = (uint32_t)v + 1;
			keep = true;
		}
		pthread_mutex_unlock(&sp->free_mu);
	}
	if (!keep)
		fsops_unlinkat(sp->queue_fd, name, 0);
	return true;
}

size_t
spool_reuse_count(struct spool *sp)
{
	size_t n;

	pthread_mutex_lock(&sp->free_mu);
	n = sp->n_free;
	pthread_mutex_unlock(&sp->free_mu);
	return n;
}
