/* test_jobs.c - worker pools and the completion hub. */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "jobs/jobs.h"
#include "util/poison.h"

/* Everything a job records; the test thread reads it after the job's done_fn ran. */
struct rec {
	unsigned idx;
	unsigned pool;
	pthread_t work_thread;
	pthread_t done_thread;
	char thread_name[16];
	atomic_int worked;
	int done;
	unsigned *done_order; /* shared log of done_fn order, per pool */
	unsigned *done_count;
	struct jobs_pool *resubmit_to;
};

static void
rec_work(void *arg)
{
	struct rec *r = arg;

	r->work_thread = pthread_self();
	pthread_getname_np(pthread_self(), r->thread_name, sizeof(r->thread_name));
	atomic_fetch_add(&r->worked, 1);
}

static void
rec_done(void *arg)
{
	struct rec *r = arg;

	/* done_fn sees the effects of work_fn. */
	assert_int_equal(atomic_load(&r->worked), 1);
	r->done_thread = pthread_self();
	r->done++;
	if (r->done_order)
		r->done_order[(*r->done_count)++] = r->idx;
}

/* True when fd is readable right now. */
static bool
fd_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

/* Run completions until want done_fns ran; fails the test after about 10 s. */
static size_t
drain(struct jobs *j, size_t want)
{
	size_t ran = 0;
	int spins = 0;

	while (ran < want) {
		if (!fd_readable(jobs_fd(j), 100)) {
			assert_true(++spins < 100);
			continue;
		}
		ran += jobs_run_completions(j);
	}
	return ran;
}

static void
test_jobs_one_job(void **state)
{
	struct jobs *j = jobs_new();
	struct jobs_pool *p = jobs_pool_new(j, "spool", 2);
	struct rec r = { .idx = 1 };

	(void)state;
	assert_true(jobs_fd(j) >= 0);
	assert_false(fd_readable(jobs_fd(j), 0));
	assert_int_equal(jobs_run_completions(j), 0);

	jobs_pool_submit(p, rec_work, rec_done, &r);
	assert_int_equal(jobs_wait_completions(j), 1);
	assert_int_equal(r.done, 1);
	/* Work on a worker, completion on the thread that ran the completions. */
	assert_false(pthread_equal(r.work_thread, pthread_self()));
	assert_true(pthread_equal(r.done_thread, pthread_self()));
	assert_string_equal(r.thread_name, "spool");
	/* Drained: nothing runs twice. */
	assert_int_equal(jobs_run_completions(j), 0);
	assert_int_equal(jobs_pool_pending(p), 0);
	jobs_pool_free(p);
	jobs_free(j);
}

static void
test_jobs_thread_name_truncated(void **state)
{
	struct jobs *j = jobs_new();
	struct jobs_pool *p = jobs_pool_new(j, "a-very-long-pool-name", 1);
	struct rec r = { 0 };

	(void)state;
	jobs_pool_submit(p, rec_work, rec_done, &r);
	drain(j, 1);
	assert_string_equal(r.thread_name, "a-very-long-poo");
	jobs_pool_free(p);
	jobs_free(j);
}

static void
test_jobs_fd_signals_completion(void **state)
{
	struct jobs *j = jobs_new();
	struct jobs_pool *p = jobs_pool_new(j, "t", 1);
	struct rec r = { 0 };

	(void)state;
	jobs_pool_submit(p, rec_work, rec_done, &r);
	/* The loop only learns of completions through the fd. */
	assert_true(fd_readable(jobs_fd(j), 10000));
	assert_int_equal(r.done, 0);
	assert_int_equal(jobs_run_completions(j), 1);
	assert_int_equal(r.done, 1);
	assert_false(fd_readable(jobs_fd(j), 0));
	jobs_pool_free(p);
	jobs_free(j);
}

#define ORDER_N 500

static void
test_jobs_single_worker_keeps_order(void **state)
{
	struct jobs *j = jobs_new();
	struct jobs_pool *p = jobs_pool_new(j, "dirsync", 1);
	struct rec *r = calloc(ORDER_N, sizeof(*r));
	unsigned order[ORDER_N], count = 0, i;

	(void)state;
	for (i = 0; i < ORDER_N; i++) {
		r[i].idx = i;
		r[i].done_order = order;
		r[i].done_count = &count;
		jobs_pool_submit(p, rec_work, rec_done, &r[i]);
	}
	assert_int_equal(drain(j, ORDER_N), ORDER_N);
	/* One worker completes in submission order, and done_fns run in completion order. */
	for (i = 0; i < ORDER_N; i++)
		assert_int_equal(order[i], i);
	jobs_pool_free(p);
	jobs_free(j);
	free(r);
}

static void
slow_work(void *arg)
{
	struct rec *r = arg;

	usleep(2000);
	rec_work(r);
}

static void
test_jobs_pending_counts_queued_and_running(void **state)
{
	struct jobs *j = jobs_new();
	struct jobs_pool *p = jobs_pool_new(j, "t", 1);
	struct rec r[5] = { 0 };
	unsigned i;

	(void)state;
	for (i = 0; i < 5; i++)
		jobs_pool_submit(p, slow_work, rec_done, &r[i]);
	assert_true(jobs_pool_pending(p) >= 4);
	assert_true(jobs_pool_pending(p) <= 5);
	drain(j, 5);
	assert_int_equal(jobs_pool_pending(p), 0);
	jobs_pool_free(p);
	jobs_free(j);
}

static void
test_jobs_pool_free_finishes_queued(void **state)
{
	struct jobs *j = jobs_new();
	struct jobs_pool *p = jobs_pool_new(j, "t", 2);
	struct rec r[20] = { 0 };
	unsigned i;

	(void)state;
	for (i = 0; i < 20; i++)
		jobs_pool_submit(p, slow_work, rec_done, &r[i]);
	jobs_pool_free(p);
	/* Every queued job ran; their completions wait on the hub. */
	for (i = 0; i < 20; i++) {
		assert_int_equal(atomic_load(&r[i].worked), 1);
		assert_int_equal(r[i].done, 0);
	}
	assert_true(fd_readable(jobs_fd(j), 0));
	assert_int_equal(jobs_run_completions(j), 20);
	for (i = 0; i < 20; i++)
		assert_int_equal(r[i].done, 1);
	jobs_free(j);
}

static void
test_jobs_null_done_fn(void **state)
{
	struct jobs *j = jobs_new();
	struct jobs_pool *p = jobs_pool_new(j, "t", 1);
	struct rec r = { 0 };
	int spins = 0;

	(void)state;
	jobs_pool_submit(p, rec_work, NULL, &r);
	while (atomic_load(&r.worked) == 0)
		assert_true(++spins < 100000 && usleep(100) == 0);
	/* Nothing to run on the loop: no completion, no wake-up. */
	assert_false(fd_readable(jobs_fd(j), 100));
	assert_int_equal(jobs_run_completions(j), 0);
	assert_int_equal(r.done, 0);
	jobs_pool_free(p);
	jobs_free(j);
}

/* A chain: the first stage (done_fn NULL) passes the job to a second pool, which posts back. */
static struct jobs *chain_hub;
static struct jobs_pool *chain_second;

static void
chain_done(void *arg)
{
	struct rec *r = arg;

	/* The loop sees the effects of both stages. */
	assert_int_equal(atomic_load(&r->worked), 2);
	r->done_thread = pthread_self();
	r->done++;
}

static void
chain_second_work(void *arg)
{
	rec_work(arg);
	jobs_post(chain_hub, chain_done, arg);
}

static void
chain_first_work(void *arg)
{
	rec_work(arg);
	jobs_pool_submit(chain_second, chain_second_work, NULL, arg);
}

static void
test_jobs_chain_and_post(void **state)
{
	struct rec r = { 0 };
	struct jobs_pool *first;

	(void)state;
	chain_hub = jobs_new();
	first = jobs_pool_new(chain_hub, "first", 1);
	chain_second = jobs_pool_new(chain_hub, "second", 1);
	jobs_pool_submit(first, chain_first_work, NULL, &r);
	assert_int_equal(drain(chain_hub, 1), 1);
	assert_int_equal(atomic_load(&r.worked), 2);
	assert_int_equal(r.done, 1);
	assert_string_equal(r.thread_name, "second");
	assert_true(pthread_equal(r.done_thread, pthread_self()));
	jobs_pool_free(first);
	jobs_pool_free(chain_second);
	jobs_free(chain_hub);
}

static void
resubmit_done(void *arg)
{
	struct rec *r = arg;

	rec_done(r);
	if (r->resubmit_to && r->done < 3) {
		atomic_store(&r->worked, 0);
		jobs_pool_submit(r->resubmit_to, rec_work, resubmit_done, r);
	}
}

static void
test_jobs_done_fn_may_submit(void **state)
{
	struct jobs *j = jobs_new();
	struct jobs_pool *p = jobs_pool_new(j, "t", 1);
	struct rec r = { 0 };

	(void)state;
	r.resubmit_to = p;
	jobs_pool_submit(p, rec_work, resubmit_done, &r);
	drain(j, 3);
	assert_int_equal(r.done, 3);
	jobs_pool_free(p);
	jobs_free(j);
}

/* Many jobs across several pools sharing one hub. */
#define MANY_POOLS 4
#define MANY_PER_POOL 5000

static void
test_jobs_many_across_threads(void **state)
{
	struct jobs *j = jobs_new();
	struct jobs_pool *p[MANY_POOLS];
	struct rec *r = calloc(MANY_POOLS * MANY_PER_POOL, sizeof(*r));
	unsigned order[MANY_POOLS][MANY_PER_POOL], count[MANY_POOLS] = { 0 };
	unsigned i, k, workers = 0;
	pthread_t seen[64];

	(void)state;
	for (k = 0; k < MANY_POOLS; k++)
		p[k] = jobs_pool_new(j, "many", k == 0 ? 1 : 3 + k);
	/* Interleave submissions across pools. */
	for (i = 0; i < MANY_PER_POOL; i++) {
		for (k = 0; k < MANY_POOLS; k++) {
			struct rec *x = &r[k * MANY_PER_POOL + i];

			x->idx = i;
			x->pool = k;
			x->done_order = order[k];
			x->done_count = &count[k];
			jobs_pool_submit(p[k], rec_work, rec_done, x);
		}
	}
	assert_int_equal(drain(j, MANY_POOLS * MANY_PER_POOL), MANY_POOLS * MANY_PER_POOL);
	for (i = 0; i < MANY_POOLS * MANY_PER_POOL; i++) {
		unsigned s;

		/* Exactly once each, done on this thread. */
		assert_int_equal(atomic_load(&r[i].worked), 1);
		assert_int_equal(r[i].done, 1);
		assert_true(pthread_equal(r[i].done_thread, pthread_self()));
		for (s = 0; s < workers; s++) {
			if (pthread_equal(seen[s], r[i].work_thread))
				break;
		}
		if (s == workers && workers < 64)
			seen[workers++] = r[i].work_thread;
	}
	/* The single-thread pool kept its order under load from the others. */
	for (i = 0; i < MANY_PER_POOL; i++)
		assert_int_equal(order[0][i], i);
	for (k = 0; k < MANY_POOLS; k++)
		assert_int_equal(count[k], MANY_PER_POOL);
	/* Work really spread over more than one thread. */
	assert_true(workers > 1);
	for (k = 0; k < MANY_POOLS; k++) {
		assert_int_equal(jobs_pool_pending(p[k]), 0);
		jobs_pool_free(p[k]);
	}
	assert_int_equal(jobs_run_completions(j), 0);
	jobs_free(j);
	free(r);
}

static void
test_jobs_free_null(void **state)
{
	(void)state;
	jobs_pool_free(NULL);
	jobs_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jobs_one_job),
		cmocka_unit_test(test_jobs_thread_name_truncated),
		cmocka_unit_test(test_jobs_fd_signals_completion),
		cmocka_unit_test(test_jobs_single_worker_keeps_order),
		cmocka_unit_test(test_jobs_pending_counts_queued_and_running),
		cmocka_unit_test(test_jobs_pool_free_finishes_queued),
		cmocka_unit_test(test_jobs_null_done_fn),
		cmocka_unit_test(test_jobs_chain_and_post),
		cmocka_unit_test(test_jobs_done_fn_may_submit),
		cmocka_unit_test(test_jobs_many_across_threads),
		cmocka_unit_test(test_jobs_free_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
