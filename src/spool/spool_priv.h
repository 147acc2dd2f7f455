/*
 * spool_priv.h - what spool.c, spool_commit.c and spool_recover.c share; not a module contract.
 *
 * Invariants: the directory fds stay open for the spool's life and every file operation is an
 * *at() call relative to them (through util/fsops). dir_seq counts changes of queue/ (renames
 * into it, unlinks from it) whose durability needs a directory fsync; a change is durable once
 * synced_seq >= its seq.
 * Thread: loop-only fields are marked; the dirsync fields belong to the one dirsync thread.
 */
#ifndef HK_SPOOL_PRIV_H
#define HK_SPOOL_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "spool.h"
#include "../util/id.h"

/* "<16 hex>.msg" plus NUL. */
#define SPOOL_NAME_SIZE (ID_HEX_LEN + 5)

enum spool_file_kind { SPOOL_FILE_MSG, SPOOL_FILE_ENV };

struct spool {
	struct jobs *hub;
	struct jobs_pool *pool;    /* "spool": writes, fsyncs, renames, unlinks */
	struct jobs_pool *dirsync; /* "dirsync": one thread, group fsync of queue/ */
	int root_fd, tmp_fd, queue_fd, corrupt_fd, maildrop_fd;
	unsigned max_inflight; /* 0: no limit */
	bool use_tmpfile;      /* commits link O_TMPFILE envelopes (else tmp/ + rename) */

	/* Loop thread only. */
	size_t commits;     /* commits in flight */
	size_t jobs;        /* commits, updates and finishes in flight */
	struct buf scratch; /* envelope encoding, reused */

	/* Written by spool workers after each change of queue/. */
	atomic_uint_fast64_t dir_seq;

	/* Dirsync thread only. */
	int sync_fd;         /* queue/ opened for fsync; -1 after a failed fsync */
	uint64_t synced_seq; /* every change with seq <= this is durable */
	/* Changes in (failed_lo, failed_hi] were covered only by a failed fsync. */
	uint64_t failed_lo, failed_hi;
	int failed_errno;

	/* synced_seq as others may read it. */
	atomic_uint_fast64_t synced_pub;

	/* The keep hook (spool_set_keep): workers call it under a read lock. */
	pthread_rwlock_t keep_lock;
	spool_keep_fn keep_fn;
	void *keep_arg;

	/* Recycled files queue/.free-<8 hex> (spool_reuse.c): a FIFO ring, under free_mu. */
	pthread_mutex_t free_mu;
	struct spool_free_ent {
		uint32_t k;   /* the name's number */
		uint64_t seq; /* dir_seq of its rename: usable once synced_pub >= seq */
	} *free_ring;     /* SPOOL_FREE_MAX slots */
	size_t free_head, n_free, free_reserved;
	uint32_t free_next;
};

/* Write "<16 hex>.msg" or ".env" into out. */
void spool_name(char out[SPOOL_NAME_SIZE], uint64_t id, enum spool_file_kind kind);
/* Parse a canonical spool file name (upper-case hex); -1 for anything else. */
HK_MUST_CHECK int spool_name_parse(const char *name, uint64_t *id, enum spool_file_kind *kind);
/*
 * Read and verify dirfd/name as the envelope of id, reading only the file's head. *body_len (may
 * be NULL) gets the length of the body embedded after it, 0 when there is none (the body is then
 * <ID>.msg); an embedded body whose length is not the envelope's size is an error.
 * Errors: HK_E_NOTFOUND (no file), HK_E_DATA (too large, undecodable, wrong id, body length;
 * err->text says why), HK_E_IO/HK_E_NOSPACE.
 */
HK_MUST_CHECK int spool_read_env(int dirfd, const char *name, uint64_t id, struct spool_env *out,
    uint64_t *body_len, struct hk_err *err);
/*
 * Read the body embedded in dirfd/name (the envelope file of id) into out (appended);
 * HK_E_NOTFOUND when the file has none. Checked against the envelope's size record.
 */
HK_MUST_CHECK int spool_read_embedded_body(int dirfd, const char *name, uint64_t id,
    struct buf *out, struct hk_err *err);
/* fsync root/<sub> through a freshly opened fd (never an fd whose fsync failed). */
HK_MUST_CHECK int spool_fsync_subdir(const struct spool *sp, const char *sub, struct hk_err *err);

/*
 * Reuse of finished files (spool_reuse.c). At most SPOOL_FREE_MAX wait in queue/ as
 * .free-<8 hex>; bodies over SPOOL_FREE_MAX_SIZE are removed, not kept.
 */
#define SPOOL_FREE_PREFIX ".free-"
#define SPOOL_FREE_NAME_SIZE (sizeof(SPOOL_FREE_PREFIX) + 8)
#define SPOOL_FREE_MAX 1024
#define SPOOL_FREE_MAX_SIZE (64 * 1024)

void spool_reuse_init(struct spool *sp);
void spool_reuse_fini(struct spool *sp);
/* Take a free file's name from the pool; false when it is empty. */
bool spool_reuse_take(struct spool *sp, char name[SPOOL_FREE_NAME_SIZE]);
/*
 * Take queue/name out of the queue: renamed to a free name when the pool has room (and, with
 * check_size, the file is small), else unlinked. 0, or -1 with errno (ENOENT: it was not there).
 */
int spool_reuse_retire(struct spool *sp, const char *name, bool check_size);
/* A taken free file that could not be used: remove it. */
void spool_reuse_drop(struct spool *sp, const char *fname);
/* Recovery: a queue/ entry named .free-*: kept in the pool or removed; false for other names. */
bool spool_reuse_adopt(struct spool *sp, const char *name);
size_t spool_reuse_count(struct spool *sp);

#endif
