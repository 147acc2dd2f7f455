/* test_sched.c - due order, refusal and kick, removal, flush, timer firing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <event2/event.h>

#include "sched/sched.h"
#include "util/clock.h"

struct taker {
	uint64_t got[64];
	size_t n;
	size_t capacity; /* refuse once n reaches it */
};

static bool
take_cb(void *arg, uint64_t id)
{
	struct taker *t = arg;

	if (t->n >= t->capacity)
		return false;
	t->got[t->n++] = id;
	return true;
}

static void
test_due_order_and_refusal(void **state)
{
	struct event_base *base = event_base_new();
	struct taker t = { .capacity = 2 };
	struct sched *s = sched_new(base, take_cb, &t);
	uint64_t now = clock_now_ms();

	(void)state;
	sched_add(s, 30, now - 10);
	sched_add(s, 10, now - 30);
	sched_add(s, 20, now - 20);
	sched_add(s, 99, now + 3600 * 1000);
	sched_kick(s);
	assert_int_equal(t.n, 2);
	assert_int_equal(t.got[0], 10);
	assert_int_equal(t.got[1], 20);
	/* The refused message stays first in line. */
	assert_int_equal(sched_waiting(s), 2);
	assert_int_equal(sched_next_due(s), now - 10);
	t.capacity = 10;
	sched_kick(s);
	assert_int_equal(t.n, 3);
	assert_int_equal(t.got[2], 30);
	/* Not due yet: not offered. */
	sched_kick(s);
	assert_int_equal(t.n, 3);
	assert_true(sched_remove(s, 99));
	assert_false(sched_remove(s, 99));
	assert_int_equal(sched_waiting(s), 0);
	sched_free(s);
	event_base_free(base);
}

static void
test_timer_fires_and_flush(void **state)
{
	struct event_base *base = event_base_new();
	struct taker t = { .capacity = 10 };
	struct sched *s = sched_new(base, take_cb, &t);
	uint64_t now = clock_now_ms();

	(void)state;
	sched_add(s, 1, now + 50);
	sched_add(s, 2, now + 3600 * 1000);
	event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.got[0], 1);
	sched_flush(s);
	event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(t.n, 2);
	assert_int_equal(t.got[1], 2);
	sched_free(s);
	event_base_free(base);
}

static void
test_many_in_order(void **state)
{
	struct event_base *base = event_base_new();
	struct taker t = { .capacity = 64 };
	struct sched *s = sched_new(base, take_cb, &t);
	uint64_t now = clock_now_ms();
	uint64_t i;

	(void)state;
	for (i = 0; i < 64; i++)
		sched_add(s, (i * 37) % 64, now - 1000 + (i * 37) % 64);
	sched_kick(s);
	assert_int_equal(t.n, 64);
	for (i = 0; i < 64; i++)
		assert_int_equal(t.got[i], i);
	sched_free(s);
	event_base_free(base);
}

int main(void);

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_due_order_and_refusal),
		cmocka_unit_test(test_timer_fires_and_flush),
		cmocka_unit_test(test_many_in_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
