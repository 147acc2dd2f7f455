/*
 * spool.h - durable store of queued mail; the source of truth (DESIGN.md 5).
 *
 * Layout under the spool directory: tmp/ (being written; emptied at start), queue/ (<ID>.env
 * envelope, whose presence is the commit marker, with the body after its END line as committed;
 * <ID>.msg, the body in a file of its own, once an update has rewritten the envelope), corrupt/
 * (never emptied automatically), maildrop/ (mode 1733).
 * Invariants: a message is queued iff queue/<ID>.env exists and its envelope has a valid END
 * line; its body is queue/<ID>.msg if that exists, else the bytes after that line.
 * Bodies are CRLF, never dot-stuffed. done_cb reports success only when body, envelope and the
 * queue directory are fsync'ed. A failed fsync is never retried on that fd.
 * Ownership: spool_commit() takes the body buffer's memory (the caller's buf is emptied); the
 * envelope is encoded during the call and not kept.
 * Thread: loop thread only; disk work runs on the spool pool (writes, fsyncs, renames) and one
 * dirsync thread that fsyncs queue/ once for every rename since its last fsync.
 */
#ifndef HK_SPOOL_H
#define HK_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../jobs/jobs.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "spool_format.h"

struct spool;

/* Called on the loop: rc 0 = durable; -1 with err (HK_E_NOSPACE, HK_E_IO). */
typedef void (*spool_done_fn)(int rc, const struct hk_err *err, void *arg);

/*
 * Open (creating with mode 0750 where missing) the spool at dir with its subdirectories, and start
 * `workers` spool threads plus the dirsync thread on hub. max_inflight bounds commits in flight.
 */
struct spool *spool_new(const char *dir, struct jobs *hub, unsigned workers, unsigned max_inflight,
    struct hk_err *err);
/* Wait for in-flight work, stop the threads, close the directories. NULL is a no-op. */
void spool_free(struct spool *sp);

/*
 * Where finished bodies go (DESIGN.md 4, step 6: the email log keeps them for resend). Each finish
 * calls fn(arg, id, fd) on a spool worker before the message's files go: fd is open on the file
 * that holds the body, positioned at its first byte, and closed by the spool after the call. fn
 * reports its own failures; the finish goes on regardless. fn NULL: none (the default). Setting
 * it waits for calls in progress to return, so after spool_set_keep(sp, NULL, NULL) the old fn
 * and arg are no longer used. Loop thread.
 */
typedef void (*spool_keep_fn)(void *arg, uint64_t id, int fd);
void spool_set_keep(struct spool *sp, spool_keep_fn fn, void *arg);

/*
 * Commit a new message: write the envelope and the body after it into one unnamed file in queue/
 * (tmp/ where O_TMPFILE is missing), fsync it, link it as queue/<ID>.env, then wait for the group
 * directory fsync; then done_cb(0). On any failure nothing is left in queue/ (what was linked is
 * unlinked again) and done_cb(-1, err).
 * Returns -1 (HK_E_BUSY) at once, without calling done_cb, when max_inflight commits are running.
 * The envelope's mtime is set to env->next_attempt_ms (0: now).
 */
HK_MUST_CHECK int spool_commit(struct spool *sp, const struct spool_env *env, struct buf *body,
    spool_done_fn done_cb, void *arg, struct hk_err *err);
/*
 * Replace the envelope of a queued message atomically (tmp + fsync + rename + dirsync). The first
 * update moves the body out of the envelope file into queue/<ID>.msg, durably, before that.
 */
HK_MUST_CHECK int spool_update(struct spool *sp, const struct spool_env *env,
    spool_done_fn done_cb, void *arg, struct hk_err *err);
/*
 * Finish: hand the body to the keep hook (spool_set_keep), unlink the envelope (dirsync), then the
 * body.
 */
HK_MUST_CHECK int spool_finish(struct spool *sp, uint64_t id, spool_done_fn done_cb, void *arg,
    struct hk_err *err);

/* Read and verify queue/<ID>.env synchronously (start-up, CLI, tests). */
HK_MUST_CHECK int spool_load(struct spool *sp, uint64_t id, struct spool_env *out,
    struct hk_err *err);
/*
 * spool_load and spool_load_body in one read of the envelope file when the body is embedded in
 * it (the usual case for mail not yet retried). On failure env is empty and body as it was.
 */
HK_MUST_CHECK int spool_load_message(struct spool *sp, uint64_t id, struct spool_env *env,
    struct buf *body, struct hk_err *err);
/*
 * Position fd, an envelope file open at offset 0, at the body embedded after the envelope (at
 * its end when there is none). Any thread.
 */
HK_MUST_CHECK int spool_skip_envelope(int fd, struct hk_err *err);
/* Read the body (queue/<ID>.msg, or embedded in queue/<ID>.env) synchronously into out. */
HK_MUST_CHECK int spool_load_body(struct spool *sp, uint64_t id, struct buf *out,
    struct hk_err *err);

struct spool_recover_stats {
	size_t queued;        /* valid envelopes with bodies */
	size_t tmp_removed;   /* leftovers removed from tmp/ */
	size_t corrupt;       /* envelopes moved to corrupt/ (bad, or without body) */
	size_t orphan_bodies; /* bodies without envelope removed (never acknowledged) */
};
/* Called once per queued message found by spool_recover(). */
typedef void (*spool_recover_fn)(void *arg, const struct spool_env *env);

/*
 * Start-up scan (synchronous, before accepting): empty tmp/; queue/<ID>.env without body or
 * failing verification -> corrupt/ (logged); <ID>.msg without envelope was never acknowledged ->
 * removed; each good envelope -> cb. Directory changes are fsync'ed before returning.
 */
HK_MUST_CHECK int spool_recover(struct spool *sp, spool_recover_fn cb, void *arg,
    struct spool_recover_stats *stats, struct hk_err *err);

/* Commits in flight (for back-pressure and shutdown). */
size_t spool_inflight(const struct spool *sp);

#endif
