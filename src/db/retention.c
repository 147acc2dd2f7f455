/*
 * retention.c - one pass of log.retention: prune a batch in the writer, remove its bodies, repeat.
 */
#include <stdlib.h>

#include "retention.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

struct retention {
	struct maillog *ml;
	struct bodies *bodies;
	struct jobs *hub;
	bool running;
	bool stopping;
	uint64_t cutoff_ms;
	uint64_t messages, removed;
	bool more; /* the last batch was full: go on after its bodies */
	retention_done_fn done_cb;
	void *arg;
};

static void retention_next(struct retention *r);

static void
retention_end(struct retention *r, int rc)
{
	retention_done_fn cb = r->done_cb;

	r->running = false;
	if (rc == 0 && r->messages > 0)
		log_info("retention", "pruned", "sess=retention messages=%llu bodies=%llu",
		    (unsigned long long)r->messages, (unsigned long long)r->removed);
	if (cb)
		cb(r->arg, r->messages, r->removed, rc);
}

static void
retention_removed_cb(void *arg, size_t removed)
{
	struct retention *r = arg;

	r->removed += removed;
	if (r->more && !r->stopping)
		retention_next(r);
	else
		retention_end(r, 0);
}

static void
retention_pruned_cb(void *arg, int rc, const uint64_t *ids, size_t n)
{
	struct retention *r = arg;

	if (rc == -1) {
		log_warn("retention", "prune_failed", "sess=retention action=%s",
		    log_q("tried again at the next pass"));
		retention_end(r, -1);
		return;
	}
	r->messages += n;
	r->more = n == RETENTION_BATCH;
	if (n > 0 && r->bodies != NULL) {
		bodies_remove(r->bodies, ids, n, retention_removed_cb, r);
		return;
	}
	retention_removed_cb(r, 0);
}

static void
retention_next(struct retention *r)
{
	maillog_prune(r->ml, r->cutoff_ms, RETENTION_BATCH, retention_pruned_cb, r);
}

struct retention *
retention_new(struct maillog *ml, struct bodies *b, struct jobs *hub)
{
	struct retention *r = xcalloc(1, sizeof(*r));

	r->ml = ml;
	r->bodies = b;
	r->hub = hub;
	return r;
}

void
retention_free(struct retention *r)
{
	if (r == NULL)
		return;
	HK_ASSERT_LOOP();
	r->stopping = true;
	r->done_cb = NULL;
	while (r->running)
		jobs_wait_completions(r->hub);
	free(r);
}

bool
retention_start(struct retention *r, uint64_t cutoff_ms, retention_done_fn done_cb, void *arg)
{
	HK_ASSERT_LOOP();
	if (r->running || r->stopping)
		return false;
	r->running = true;
	r->cutoff_ms = cutoff_ms;
	r->messages = r->removed = 0;
	r->more = false;
	r->done_cb = done_cb;
	r->arg = arg;
	retention_next(r);
	return true;
}

bool
retention_is_running(const struct retention *r)
{
	return r->running;
}
