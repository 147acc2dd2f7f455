/*
 * retention.h - log.retention: finished messages leave the email log and their kept bodies go
 * (DESIGN.md 8).
 *
 * A pass asks the email log writer to delete finished messages last touched before a cutoff, in
 * batches of RETENTION_BATCH (maillog_prune: the single writer does the deletes), and after each
 * batch removes the deleted messages' kept bodies (bodies_remove), until a batch comes back short.
 * It never looks at the spool: what is queued, deferred or held in the log is never chosen, and
 * the spool finishes a message only after its terminal events are committed.
 * The timer that starts passes (hourly and at start) belongs to the daemon (src/cli/serve.c).
 * Thread: loop thread.
 */
#ifndef HK_RETENTION_H
#define HK_RETENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "bodies.h"
#include "maillog.h"

#define RETENTION_BATCH 500

struct retention;

/* Called on the loop when a pass ends: messages deleted from the log, bodies removed, rc. */
typedef void (*retention_done_fn)(void *arg, uint64_t messages, uint64_t bodies, int rc);

/* ml and b (NULL: no kept bodies) are borrowed and must outlive the retention. */
struct retention *retention_new(struct maillog *ml, struct bodies *b, struct jobs *hub);
/* Stop after the batch in flight (waiting for it on hub) and free. NULL is a no-op. */
void retention_free(struct retention *r);

/*
 * Start a pass for messages finished before cutoff_ms; done_cb (may be NULL) runs when it ends.
 * Returns false, doing nothing, while a pass is running.
 */
bool retention_start(struct retention *r, uint64_t cutoff_ms, retention_done_fn done_cb,
    void *arg);
bool retention_is_running(const struct retention *r);

#endif
