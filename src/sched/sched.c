/* sched.c - due-time heap and the timer that offers due messages to the relay. */
#include <stdlib.h>

#include <event2/event.h>

#include "sched.h"
#include "../util/clock.h"
#include "../util/common.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

struct sched_item {
	uint64_t due_ms;
	uint64_t id;
};

struct sched {
	struct event_base *base;
	struct event *timer;
	sched_ready_fn ready_cb;
	void *arg;
	struct sched_item *heap;
	size_t n, cap;
	bool offering; /* inside sched_offer(): no re-entry */
};

static bool
sched_less(const struct sched_item *a, const struct sched_item *b)
{
	return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->id < b->id);
}

static void
sched_swap(struct sched_item *a, struct sched_item *b)
{
	struct sched_item t = *a;

	*a = *b;
	*b = t;
}

static void
sched_up(struct sched *s, size_t i)
{
	while (i > 0 && sched_less(&s->heap[i], &s->heap[(i - 1) / 2])) {
		sched_swap(&s->heap[i], &s->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
}

static void
sched_down(struct sched *s, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->n && sched_less(&s->heap[l], &s->heap[m]))
			m = l;
		if (r < s->n && sched_less(&s->heap[r], &s->heap[m]))
			m = r;
		if (m == i)
			return;
		sched_swap(&s->heap[i], &s->heap[m]);
		i = m;
	}
}

static void
sched_pop(struct sched *s)
{
	s->heap[0] = s->heap[--s->n];
	if (s->n)
		sched_down(s, 0);
}

static void
sched_arm(struct sched *s)
{
	uint64_t now = clock_now_ms(), wait;
	struct timeval tv;

	if (s->n == 0) {
		evtimer_del(s->timer);
		return;
	}
	wait = s->heap[0].due_ms > now ? s->heap[0].due_ms - now : 0;
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
	evtimer_add(s->timer, &tv);
}

/* Offer every due message until the relay refuses one. */
static void
sched_offer(struct sched *s)
{
	uint64_t now;

	if (s->offering)
		return;
	s->offering = true;
	now = clock_now_ms();
	while (s->n > 0 && s->heap[0].due_ms <= now) {
		struct sched_item it = s->heap[0];

		sched_pop(s);
		if (!s->ready_cb(s->arg, it.id)) {
			/* Still first in line: re-insert with its due time; wait for sched_kick(). */
			sched_add(s, it.id, it.due_ms);
			s->offering = false;
			evtimer_del(s->timer);
			return;
		}
	}
	s->offering = false;
	sched_arm(s);
}

static void
sched_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sched_offer(arg);
}

struct sched *
sched_new(struct event_base *base, sched_ready_fn ready_cb, void *arg)
{
	struct sched *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->ready_cb = ready_cb;
	s->arg = arg;
	s->timer = evtimer_new(base, sched_timer_cb, s);
	HK_ASSERT(s->timer != NULL);
	return s;
}

void
sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	event_free(s->timer);
	free(s->heap);
	free(s);
}

void
sched_add(struct sched *s, uint64_t id, uint64_t due_ms)
{
	HK_ASSERT_LOOP();
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->heap = xreallocarray(s->heap, s->cap, sizeof(*s->heap));
	}
	s->heap[s->n].due_ms = due_ms;
	s->heap[s->n].id = id;
	sched_up(s, s->n++);
	/* Inside an offer run the timer is armed at its end; else re-arm for a new earliest. */
	if (!s->offering && s->heap[0].id == id)
		sched_arm(s);
}

void
sched_kick(struct sched *s)
{
	if (s->n > 0 && s->heap[0].due_ms <= clock_now_ms())
		sched_offer(s);
}

bool
sched_remove(struct sched *s, uint64_t id)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (s->heap[i].id != id)
			continue;
		s->heap[i] = s->heap[--s->n];
		if (i < s->n) {
			sched_down(s, i);
			sched_up(s, i);
		}
		if (!s->offering)
			sched_arm(s);
		return true;
	}
	return false;
}

void
sched_flush(struct sched *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		s->heap[i].due_ms = 0;
	if (!s->offering)
		sched_arm(s);
}

size_t
sched_waiting(const struct sched *s)
{
	return s->n;
}

uint64_t
sched_oldest_id(const struct sched *s)
{
	uint64_t min = 0;
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (min == 0 || s->heap[i].id < min)
			min = s->heap[i].id;
	}
	return min;
}

uint64_t
sched_next_due(const struct sched *s)
{
	return s->n ? s->heap[0].due_ms : UINT64_MAX;
}
