/* test_retry.c - retry schedule arithmetic, jitter bounds, expiry boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sched/retry.h"
#include "util/poison.h"

#define SEC 1000ull
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
/* 2024-03-01T00:00:00Z: an arbitrary reception time. */
#define T0 1709251200000ull

static const uint64_t sched5[] = { 1 * MIN, 5 * MIN, 15 * MIN, 1 * HOUR, 4 * HOUR };

static struct retry_policy
policy5(uint64_t max_age)
{
	struct retry_policy p = { .schedule_ms = sched5, .n_schedule = 5, .max_age_ms = max_age };

	return p;
}

static void
test_retry_base_wait_repeats_last_step(void **state)
{
	static const struct {
		uint32_t deferrals;
		uint64_t want;
	} rows[] = {
		{ 0, 1 * MIN }, { 1, 1 * MIN }, { 2, 5 * MIN }, { 3, 15 * MIN }, { 4, 1 * HOUR },
		{ 5, 4 * HOUR }, { 6, 4 * HOUR }, { 7, 4 * HOUR }, { 1000, 4 * HOUR },
		{ UINT32_MAX, 4 * HOUR },
	};
	struct retry_policy p = policy5(5 * DAY);
	size_t i;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(rows); i++)
		assert_int_equal(retry_base_wait_ms(&p, rows[i].deferrals), rows[i].want);
}

static void
test_retry_empty_schedule_uses_default(void **state)
{
	struct retry_policy p = { .schedule_ms = NULL, .n_schedule = 0, .max_age_ms = 0 };

	(void)state;
	assert_int_equal(retry_base_wait_ms(&p, 1), 1 * MIN);
	assert_int_equal(retry_base_wait_ms(&p, 3), 15 * MIN);
	assert_int_equal(retry_base_wait_ms(&p, 9), 4 * HOUR);
}

static void
test_retry_single_step_schedule(void **state)
{
	static const uint64_t one[] = { 10 * MIN };
	struct retry_policy p = { .schedule_ms = one, .n_schedule = 1, .max_age_ms = DAY };

	(void)state;
	assert_int_equal(retry_base_wait_ms(&p, 1), 10 * MIN);
	assert_int_equal(retry_base_wait_ms(&p, 50), 10 * MIN);
}

static void
test_retry_jitter_bounds(void **state)
{
	static const struct {
		uint64_t base, rnd, want;
	} rows[] = {
		{ 60000, 0, 54000 },         /* lowest: -10 % */
		{ 60000, 12000, 66000 },     /* highest: +10 % (2 * span) */
		{ 60000, 12001, 54000 },     /* wraps */
		{ 60000, 6000, 60000 },      /* middle */
		{ 9, 12345, 9 },             /* under 10 ms: no jitter */
		{ 10, 0, 9 }, { 10, 2, 11 }, /* 10 ms: +-1 */
		{ 0, 99, 0 },
		{ 4 * HOUR, 0, 4 * HOUR - 24 * MIN },
		{ 4 * HOUR, 48 * MIN, 4 * HOUR + 24 * MIN },
	};
	uint64_t seed = 42, lo = UINT64_MAX, hi = 0;
	size_t i;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(rows); i++)
		assert_int_equal(retry_jitter_ms(rows[i].base, rows[i].rnd), rows[i].want);
	/* Random draws stay inside [0.9, 1.1] and reach close to both ends. */
	for (i = 0; i < 100000; i++) {
		uint64_t v = retry_jitter_ms(5 * MIN, retry_rng_next(&seed));

		assert_true(v >= 270000 && v <= 330000);
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	assert_true(lo < 270000 + 100);
	assert_true(hi > 330000 - 100);
	/* No overflow at the top. */
	assert_true(retry_jitter_ms(UINT64_MAX, UINT64_MAX) <= UINT64_MAX);
	assert_true(retry_jitter_ms(UINT64_MAX, 0) == UINT64_MAX - UINT64_MAX / 10);
}

static void
test_retry_after_deferral_sequence(void **state)
{
	struct retry_policy p = policy5(5 * DAY);
	uint32_t deferrals = 0;
	uint64_t now = T0, at = 0, rng = 7;
	static const uint64_t want_base[] = { 1 * MIN, 5 * MIN, 15 * MIN, 1 * HOUR, 4 * HOUR,
		4 * HOUR, 4 * HOUR };
	size_t i;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(want_base); i++) {
		uint64_t b = want_base[i];

		assert_int_equal(retry_after_deferral(&p, &deferrals, T0, now, retry_rng_next(&rng),
				     &at),
		    RETRY_AT);
		assert_int_equal(deferrals, i + 1);
		assert_true(at >= now + b - b / 10 && at <= now + b + b / 10);
		now = at;
	}
	/* The jitter value is used exactly: rnd 0 gives the lower bound. */
	deferrals = 1;
	assert_int_equal(retry_after_deferral(&p, &deferrals, T0, T0, 0, &at), RETRY_AT);
	assert_int_equal(at, T0 + 5 * MIN - 30 * SEC);
}

static void
test_retry_expiry_boundary(void **state)
{
	struct retry_policy p = policy5(5 * DAY);
	uint64_t deadline = T0 + 5 * DAY, at = 0;
	uint32_t deferrals = 4;

	(void)state;
	assert_int_equal(retry_deadline_ms(&p, T0), deadline);
	assert_false(retry_is_expired(&p, T0, T0));
	assert_false(retry_is_expired(&p, T0, deadline - 1));
	assert_true(retry_is_expired(&p, T0, deadline));
	assert_true(retry_is_expired(&p, T0, deadline + 1));

	/* One millisecond before the deadline: the next attempt is clamped to it. */
	assert_int_equal(retry_after_deferral(&p, &deferrals, T0, deadline - 1, 0, &at), RETRY_AT);
	assert_int_equal(at, deadline);
	assert_int_equal(deferrals, 5);
	/* At the deadline: expired, at untouched. */
	at = 123;
	assert_int_equal(retry_after_deferral(&p, &deferrals, T0, deadline, 0, &at), RETRY_EXPIRED);
	assert_int_equal(at, 123);
	/* Far from it: not clamped. */
	deferrals = 0;
	assert_int_equal(retry_after_deferral(&p, &deferrals, T0, T0, 0, &at), RETRY_AT);
	assert_int_equal(at, T0 + 54 * SEC);
}

static void
test_retry_no_max_age_never_expires(void **state)
{
	struct retry_policy p = policy5(0);
	uint32_t deferrals = 100;
	uint64_t at;

	(void)state;
	assert_false(retry_is_expired(&p, T0, UINT64_MAX - 1));
	assert_int_equal(retry_after_deferral(&p, &deferrals, T0, T0 + 400 * DAY, 0, &at),
	    RETRY_AT);
	assert_int_equal(at, T0 + 400 * DAY + 4 * HOUR - 24 * MIN);
	/* Saturates instead of wrapping. */
	assert_int_equal(retry_after_deferral(&p, &deferrals, T0, UINT64_MAX - 5, 0, &at),
	    RETRY_AT);
	assert_true(at == UINT64_MAX);
}

static void
test_retry_wait_is_not_an_attempt(void **state)
{
	struct retry_policy p = policy5(5 * DAY);
	uint64_t at = 0;

	(void)state;
	/* A quota wait until tomorrow: at that time, no counter anywhere. */
	assert_int_equal(retry_after_wait(&p, T0, T0 + HOUR, T0 + DAY, &at), RETRY_AT);
	assert_int_equal(at, T0 + DAY);
	/* A wait that already passed wakes at once. */
	assert_int_equal(retry_after_wait(&p, T0, T0 + HOUR, T0, &at), RETRY_AT);
	assert_int_equal(at, T0 + HOUR);
	/* A wait past the deadline wakes at the deadline (the expiry). */
	assert_int_equal(retry_after_wait(&p, T0, T0 + 4 * DAY, T0 + 9 * DAY, &at), RETRY_AT);
	assert_int_equal(at, T0 + 5 * DAY);
	assert_int_equal(retry_after_wait(&p, T0, T0 + 5 * DAY, T0 + 9 * DAY, &at), RETRY_EXPIRED);
}

static void
test_retry_rng_is_seeded_and_deterministic(void **state)
{
	uint64_t a = 1, b = 1, c = 2;
	uint64_t xa = retry_rng_next(&a), xb = retry_rng_next(&b), xc = retry_rng_next(&c);

	(void)state;
	assert_true(xa == xb);
	assert_true(xa != xc);
	assert_true(retry_rng_next(&a) != xa);
}

static void
test_retry_policy_from_conf(void **state)
{
	struct conf c;
	struct retry_policy p;
	uint64_t sched[] = { 2 * MIN, 7 * MIN };

	(void)state;
	memset(&c, 0, sizeof(c));
	c.retry_schedule_ms = sched;
	c.n_retry = 2;
	c.retry_max_age_ms = 3 * DAY;
	retry_policy_from_conf(&p, &c);
	assert_int_equal(retry_base_wait_ms(&p, 1), 2 * MIN);
	assert_int_equal(retry_base_wait_ms(&p, 3), 7 * MIN);
	assert_int_equal(retry_deadline_ms(&p, T0), T0 + 3 * DAY);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_base_wait_repeats_last_step),
		cmocka_unit_test(test_retry_empty_schedule_uses_default),
		cmocka_unit_test(test_retry_single_step_schedule),
		cmocka_unit_test(test_retry_jitter_bounds),
		cmocka_unit_test(test_retry_after_deferral_sequence),
		cmocka_unit_test(test_retry_expiry_boundary),
		cmocka_unit_test(test_retry_no_max_age_never_expires),
		cmocka_unit_test(test_retry_wait_is_not_an_attempt),
		cmocka_unit_test(test_retry_rng_is_seeded_and_deterministic),
		cmocka_unit_test(test_retry_policy_from_conf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
