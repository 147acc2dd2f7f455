/* jobs.c - worker pools, completion list, eventfd wake-up. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "jobs.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

struct jobs_item {
	struct jobs_item *next;
	jobs_work_fn work_fn;
	jobs_done_fn done_fn;
	void *arg;
};

struct jobs {
	pthread_mutex_t lock;
	struct jobs_item *done_head, *done_tail;
	int efd;
};

struct jobs_pool {
	struct jobs *hub;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct jobs_item *head, *tail;
	size_t pending;
	bool stopping;
	unsigned nthreads;
	pthread_t *threads;
	char name[16];
};

struct jobs *
jobs_new(void)
{
	struct jobs *j = xcalloc(1, sizeof(*j));

	pthread_mutex_init(&j->lock, NULL);
	j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (j->efd == -1)
		hk_panic("eventfd: %s", strerror(errno));
	return j;
}

void
jobs_free(struct jobs *j)
{
	struct jobs_item *it, *next;

	if (j == NULL)
		return;
	for (it = j->done_head; it; it = next) {
		next = it->next;
		free(it);
	}
	close(j->efd);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

int
jobs_fd(const struct jobs *j)
{
	return j->efd;
}

static void
jobs_complete(struct jobs *j, struct jobs_item *it)
{
	uint64_t one = 1;
	bool wake;

	it->next = NULL;
	pthread_mutex_lock(&j->lock);
	wake = j->done_head == NULL;
	if (j->done_tail)
		j->done_tail->next = it;
	else
		j->done_head = it;
	j->done_tail = it;
	pthread_mutex_unlock(&j->lock);
	/* One wake-up per batch: the loop drains the whole list each time. */
	if (wake && write(j->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		hk_panic("eventfd write: %s", strerror(errno));
}

void
jobs_post(struct jobs *j, jobs_done_fn done_fn, void *arg)
{
	struct jobs_item *it = xmalloc(sizeof(*it));

	it->work_fn = NULL;
	it->done_fn = done_fn;
	it->arg = arg;
	jobs_complete(j, it);
}

size_t
jobs_run_completions(struct jobs *j)
{
	struct jobs_item *it, *next;
	uint64_t v;
	size_t n = 0;

	if (read(j->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		hk_panic("eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&j->lock);
	it = j->done_head;
	j->done_head = j->done_tail = NULL;
	pthread_mutex_unlock(&j->lock);
	for (; it; it = next) {
		next = it->next;
		if (it->done_fn)
			it->done_fn(it->arg);
		free(it);
		n++;
	}
	return n;
}

size_t
jobs_wait_completions(struct jobs *j)
{
	struct pollfd pfd = { .fd = j->efd, .events = POLLIN };
	size_t n;

	while ((n = jobs_run_completions(j)) == 0) {
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			hk_panic("poll: %s", strerror(errno));
	}
	return n;
}

static void *
jobs_worker(void *arg)
{
	struct jobs_pool *p = arg;

	for (;;) {
		struct jobs_item *it;

		pthread_mutex_lock(&p->lock);
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		it = p->head;
		if (it == NULL) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		p->head = it->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		it->work_fn(it->arg);

		pthread_mutex_lock(&p->lock);
		p->pending--;
		pthread_mutex_unlock(&p->lock);
		/* Nothing to run on the loop (the work passed itself on): no wake-up. */
		if (it->done_fn == NULL)
			free(it);
		else
			jobs_complete(p->hub, it);
	}
}

struct jobs_pool *
jobs_pool_new(struct jobs *j, const char *name, unsigned nthreads)
{
	struct jobs_pool *p = xcalloc(1, sizeof(*p));
	unsigned i;

	HK_ASSERT(nthreads > 0);
	p->hub = j;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->nthreads = nthreads;
	p->threads = xcalloc(nthreads, sizeof(*p->threads));
	snprintf(p->name, sizeof(p->name), "%s", name);
	for (i = 0; i < nthreads; i++) {
		int rc = pthread_create(&p->threads[i], NULL, jobs_worker, p);

		if (rc != 0)
			hk_panic("pthread_create %s: %s", name, strerror(rc));
		pthread_setname_np(p->threads[i], p->name);
	}
	return p;
}

void
jobs_pool_submit(struct jobs_pool *p, jobs_work_fn work_fn, jobs_done_fn done_fn, void *arg)
{
	struct jobs_item *it = xmalloc(sizeof(*it));

	it->next = NULL;
	it->work_fn = work_fn;
	it->done_fn = done_fn;
	it->arg = arg;
	pthread_mutex_lock(&p->lock);
	HK_ASSERT(!p->stopping);
	if (p->tail)
		p->tail->next = it;
	else
		p->head = it;
	p->tail = it;
	p->pending++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

size_t
jobs_pool_pending(const struct jobs_pool *p)
{
	size_t n;

	pthread_mutex_lock((pthread_mutex_t *)&p->lock);
	n = p->pending;
	pthread_mutex_unlock((pthread_mutex_t *)&p->lock);
	return n;
}

void
jobs_pool_free(struct jobs_pool *p)
{
	unsigned i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}
