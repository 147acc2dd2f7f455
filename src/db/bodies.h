/*
 * bodies.h - kept message bodies for resend (DESIGN.md 4.6, 8; log.keep_bodies).
 *
 * Layout: <state>/bodies/YYYY-MM-DD/<ID>, the day being the UTC date encoded in the ID (so the
 * path follows from the ID alone), plus .tmp-<ID> files in <state>/bodies/ while a copy is
 * written. A kept body is a byte copy of the message's body as the spool held it: canonical CRLF,
 * not dot-stuffed.
 *
 * When (DESIGN.md 4, step 6): as a message finishes, the spool hands its body to
 * bodies_keep_fd() on a spool worker, before its files go; mail still queued has its body in the
 * spool, and a load reads it from there (bodies_set_spool).
 * Invariants: <state>/bodies/<day>/<ID> appears only by rename, complete. Copies are not
 * fsync'ed: the email log and its bodies are derived data (the spool is the source of truth), so
 * a crash may lose the body of a message finished just before it, which then only cannot be
 * resent; queue files are never linked (the spool recycles finished files in place), always
 * copied.
 * Ownership: the paths passed in are copied; a body handed to a load callback belongs to it.
 * Thread: loop thread, but bodies_keep_fd() on any thread; file work runs on the module's
 * one-thread "bodies" pool, and callbacks run on the loop through the jobs hub.
 * Failure: environment errors complete with rc -1 and a struct hk_err; a missing body is
 * HK_E_NOTFOUND.
 */
#ifndef HK_BODIES_H
#define HK_BODIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../jobs/jobs.h"
#include "../util/buf.h"
#include "../util/err.h"

#define BODIES_DIR "bodies"
/* "YYYY-MM-DD/" + 16 hex digits + NUL. */
#define BODIES_REL_PATH_SIZE 28

struct bodies;

/* Load finished: rc 0 with body (the callback may take its memory with buf_move), or -1. */
typedef void (*bodies_load_fn)(void *arg, uint64_t id, int rc, struct buf *body,
    const struct hk_err *err);
/* Removal finished: how many of the asked bodies existed and were removed. */
typedef void (*bodies_remove_fn)(void *arg, size_t removed);

/*
 * Create <state_dir>/bodies (0750) if missing, remove .tmp- leftovers of a crash, and start the
 * worker on hub. NULL and err when the directory cannot be created or opened.
 */
struct bodies *bodies_new(const char *state_dir, struct jobs *hub, struct hk_err *err);
/* Finish every job (their callbacks run from here, waiting on hub), stop, close. NULL: no-op. */
void bodies_free(struct bodies *b);

/* The path of id's body below <state>/bodies: "YYYY-MM-DD/<16 upper-case hex digits>". */
void bodies_rel_path(uint64_t id, char out[BODIES_REL_PATH_SIZE]);

/*
 * Any thread (the spool's keep hook): copy the rest of in, a file positioned at a body, as id's
 * body, unless one is kept already: to .tmp-<ID>, then renamed into place. 0, or -1 with err.
 * At most one call per id at a time.
 */
HK_MUST_CHECK int bodies_keep_fd(struct bodies *b, uint64_t id, int in, struct hk_err *err);
/* Loads fall back to sp's queue for mail not finished yet (NULL: no fallback). Before any load. */
struct spool;
void bodies_set_spool(struct bodies *b, struct spool *sp);
/*
 * Read id's body: the kept one, else (bodies_set_spool) the queued one; HK_E_NOTFOUND when there
 * is neither. Bodies larger than max fail (HK_E_DATA).
 */
void bodies_load(struct bodies *b, uint64_t id, size_t max, bodies_load_fn done_cb, void *arg);
/* Remove the bodies of ids[0..n) (copied; missing ones are fine) and then empty day directories. */
void bodies_remove(struct bodies *b, const uint64_t *ids, size_t n, bodies_remove_fn done_cb,
    void *arg);

/* Jobs queued or running (back-pressure, metrics). */
size_t bodies_pending(const struct bodies *b);

#endif
