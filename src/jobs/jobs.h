/*
 * jobs.h - worker pools whose results come back to the loop thread.
 *
 * A job is (work_fn on a worker thread, done_fn on the loop, arg). The job owns copies of its
 * inputs through arg; it never touches loop state from work_fn. When work_fn returns, the job goes
 * on the hub's completion list and an eventfd becomes readable; the loop (which watches
 * jobs_fd()) calls jobs_run_completions(), which runs the done_fns in completion order.
 * Layer 1: no libevent here; main registers the fd with the loop.
 * Only this module takes locks.
 * A work_fn may pass its job on instead of finishing it: submit it to another pool (a chain of
 * stages without a round trip through the loop), or post its completion with jobs_post(); such
 * stages are submitted with done_fn NULL, which costs the loop no wake-up.
 * Thread: jobs_run_completions() on the loop; jobs_pool_submit() and jobs_post() on the loop or
 * in a work_fn; work_fns on workers.
 */
#ifndef HK_JOBS_H
#define HK_JOBS_H

#include <stddef.h>

#include "../util/common.h"

typedef void (*jobs_work_fn)(void *arg);
typedef void (*jobs_done_fn)(void *arg);

struct jobs;
struct jobs_pool;

/* A completion hub with its eventfd. */
struct jobs *jobs_new(void);
/* Free the hub; every pool using it must be freed first. */
void jobs_free(struct jobs *j);
/* The eventfd to watch for readability. */
int jobs_fd(const struct jobs *j);
/* Run every completed job's done_fn. Returns how many ran. */
size_t jobs_run_completions(struct jobs *j);
/* Block until at least one job completes, then run completions (start-up and tests). */
size_t jobs_wait_completions(struct jobs *j);

/* Start nthreads workers named name (visible in top -H). */
struct jobs_pool *jobs_pool_new(struct jobs *j, const char *name, unsigned nthreads);
/*
 * Queue a job. work_fn runs on a worker; then done_fn (if not NULL) runs on the loop. Never
 * fails: the queue is unbounded, so callers bound what they submit.
 */
void jobs_pool_submit(struct jobs_pool *p, jobs_work_fn work_fn, jobs_done_fn done_fn, void *arg);
/* From any thread: run done_fn(arg) on the loop, as if a job had just completed. */
void jobs_post(struct jobs *j, jobs_done_fn done_fn, void *arg);
/* Jobs queued or running in the pool. */
size_t jobs_pool_pending(const struct jobs_pool *p);
/* Finish queued jobs, stop and join the workers; completions still pending stay on the hub. */
void jobs_pool_free(struct jobs_pool *p);

#endif
