/* test_upstream.c - breaker, rolling quota windows, SPILL pause, rate, connections, snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sched/retry.h"
#include "sched/upstream.h"
#include "util/poison.h"

#define SEC 1000ull
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
/* 2024-03-01T00:00:00Z, on a minute boundary. */
#define T0 1709251200000ull

static struct upstream_state *
new_state(uint64_t per_day, uint64_t per_hour, uint64_t rate_count, uint64_t rate_period_ms,
    unsigned connections)
{
	struct conf_upstream_limits lim = {
		.per_day = per_day, .per_hour = per_hour, .rate_count = rate_count,
		.rate_period_ms = rate_period_ms, .connections = connections,
		.recipients_per_message = 100, .max_size = 0,
	};

	return upstream_state_new(&lim);
}

/* ---- breaker ---- */

static void
test_upstream_breaker_opens_after_three_failures(void **state)
{
	struct upstream_state *st = new_state(0, 0, 0, 0, 4);

	(void)state;
	assert_int_equal(upstream_breaker_at(st, T0), UPSTREAM_BREAKER_CLOSED);
	upstream_session_failed(st, T0, "connect refused");
	upstream_session_failed(st, T0 + 1 * SEC, "connect refused");
	assert_int_equal(upstream_breaker_at(st, T0 + 1 * SEC), UPSTREAM_BREAKER_CLOSED);
	upstream_session_failed(st, T0 + 2 * SEC, "connect refused");
	assert_int_equal(upstream_breaker_at(st, T0 + 2 * SEC), UPSTREAM_BREAKER_OPEN);
	assert_int_equal(upstream_open_until_ms(st), T0 + 32 * SEC);
	assert_int_equal(upstream_breaker_at(st, T0 + 32 * SEC - 1), UPSTREAM_BREAKER_OPEN);
	assert_int_equal(upstream_breaker_at(st, T0 + 32 * SEC), UPSTREAM_BREAKER_HALF_OPEN);
	upstream_state_free(st);
}

static void
test_upstream_breaker_success_resets_the_count(void **state)
{
	struct upstream_state *st = new_state(0, 0, 0, 0, 4);

	(void)state;
	upstream_session_failed(st, T0, "x");
	upstream_session_failed(st, T0, "x");
	upstream_session_ok(st, T0);
	upstream_session_failed(st, T0, "x");
	upstream_session_failed(st, T0, "x");
	assert_int_equal(upstream_breaker_at(st, T0), UPSTREAM_BREAKER_CLOSED);
	upstream_session_failed(st, T0, "x");
	assert_int_equal(upstream_breaker_at(st, T0), UPSTREAM_BREAKER_OPEN);
	upstream_state_free(st);
}

/* Each failed probe doubles the wait: 30 s, 60 s, ..., capped at 10 min. */
static void
test_upstream_breaker_backoff_doubles_and_caps(void **state)
{
	static const uint64_t waits[] = { 30 * SEC, 60 * SEC, 120 * SEC, 240 * SEC, 480 * SEC,
		600 * SEC, 600 * SEC, 600 * SEC };
	struct upstream_state *st = new_state(0, 0, 0, 0, 4);
	uint64_t now = T0;
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++)
		upstream_session_failed(st, now, "timeout");
	for (i = 0; i < HK_ARRAY_LEN(waits); i++) {
		assert_int_equal(upstream_open_until_ms(st), now + waits[i]);
		/* A probe one second after it turns half-open fails again. */
		now += waits[i];
		assert_int_equal(upstream_breaker_at(st, now - 1), UPSTREAM_BREAKER_OPEN);
		assert_int_equal(upstream_breaker_at(st, now), UPSTREAM_BREAKER_HALF_OPEN);
		now += 1 * SEC;
		upstream_send_begin(st, now, 1, true);
		upstream_session_failed(st, now, "timeout");
		upstream_send_end(st, now, 1, 0, true);
		assert_int_equal(upstream_breaker_at(st, now), UPSTREAM_BREAKER_OPEN);
	}
	/* A successful probe closes it and the next opening is 30 s again. */
	now = upstream_open_until_ms(st);
	upstream_send_begin(st, now, 1, true);
	upstream_session_ok(st, now);
	upstream_send_end(st, now, 1, 1, true);
	assert_int_equal(upstream_breaker_at(st, now), UPSTREAM_BREAKER_CLOSED);
	for (i = 0; i < 3; i++)
		upstream_session_failed(st, now, "timeout");
	assert_int_equal(upstream_open_until_ms(st), now + 30 * SEC);
	upstream_state_free(st);
}

static void
test_upstream_breaker_auth_opens_at_once(void **state)
{
	struct upstream_state *st = new_state(0, 0, 0, 0, 4);

	(void)state;
	upstream_auth_failed(st, T0, "535 5.7.8 bad credentials");
	assert_int_equal(upstream_breaker_at(st, T0), UPSTREAM_BREAKER_OPEN);
	assert_int_equal(upstream_open_until_ms(st), T0 + 30 * SEC);
	/* Rejected again on the probe: doubled. */
	upstream_send_begin(st, T0 + 30 * SEC, 1, true);
	upstream_auth_failed(st, T0 + 30 * SEC, "535 5.7.8 bad credentials");
	upstream_send_end(st, T0 + 30 * SEC, 1, 0, true);
	assert_int_equal(upstream_open_until_ms(st), T0 + 90 * SEC);
	upstream_state_free(st);
}

static void
test_upstream_breaker_late_failure_while_open_changes_nothing(void **state)
{
	struct upstream_state *st = new_state(0, 0, 0, 0, 4);

	(void)state;
	upstream_session_failed(st, T0, "x");
	upstream_session_failed(st, T0, "x");
	upstream_session_failed(st, T0, "x");
	upstream_session_failed(st, T0 + 10 * SEC, "late");
	upstream_auth_failed(st, T0 + 11 * SEC, "late auth");
	assert_int_equal(upstream_open_until_ms(st), T0 + 30 * SEC);
	upstream_state_free(st);
}

static void
test_upstream_half_open_one_probe_only(void **state)
{
	struct upstream_state *st = new_state(0, 0, 0, 0, 4);
	uint64_t half = T0 + 30 * SEC;

	(void)state;
	upstream_auth_failed(st, T0, "x");
	assert_false(upstream_probe_is_busy(st));
	upstream_send_begin(st, half, 1, true);
	assert_true(upstream_probe_is_busy(st));
	assert_int_equal(upstream_breaker_at(st, half + 5 * SEC), UPSTREAM_BREAKER_HALF_OPEN);
	/* The probe ended without a session verdict (e.g. cancelled): the slot is free again. */
	upstream_send_end(st, half, 1, 0, true);
	assert_false(upstream_probe_is_busy(st));
	assert_int_equal(upstream_breaker_at(st, half + 6 * SEC), UPSTREAM_BREAKER_HALF_OPEN);
	upstream_state_free(st);
}

/* ---- quota windows ---- */

static void
test_upstream_day_window_rolls_per_minute(void **state)
{
	struct upstream_state *st = new_state(0, 0, 0, 0, 4);
	uint64_t s = T0 + 10 * MIN + 30 * SEC; /* mid-minute */
	uint64_t gone = T0 + 10 * MIN + DAY + 1 * MIN;

	(void)state;
	upstream_quota_add(st, s, 2);
	assert_int_equal(upstream_quota_count(st, s, UPSTREAM_WINDOW_DAY), 2);
	assert_int_equal(upstream_quota_count(st, s, UPSTREAM_WINDOW_HOUR), 2);
	/* Never earlier than 24 h after the send. */
	assert_int_equal(upstream_quota_count(st, s + DAY, UPSTREAM_WINDOW_DAY), 2);
	assert_int_equal(upstream_quota_count(st, gone - 1, UPSTREAM_WINDOW_DAY), 2);
	assert_int_equal(upstream_quota_count(st, gone, UPSTREAM_WINDOW_DAY), 0);
	/* The hour window: gone at the start of the minute after s + 1 h. */
	assert_int_equal(upstream_quota_count(st, T0 + 71 * MIN - 1, UPSTREAM_WINDOW_HOUR), 2);
	assert_int_equal(upstream_quota_count(st, T0 + 71 * MIN, UPSTREAM_WINDOW_HOUR), 0);
	assert_int_equal(upstream_quota_count(st, T0 + 71 * MIN, UPSTREAM_WINDOW_DAY), 2);
	upstream_state_free(st);
}

static void
test_upstream_free_at_and_allowance(void **state)
{
	struct upstream_state *st = new_state(3, 0, 0, 0, 4);

	(void)state;
	assert_true(upstream_quota_allowance(st, T0) == 3);
	upstream_quota_add(st, T0, 1);
	upstream_quota_add(st, T0 + 10 * MIN, 1);
	assert_true(upstream_quota_allowance(st, T0 + 20 * MIN) == 1);
	assert_int_equal(upstream_quota_free_at_ms(st, T0 + 20 * MIN, 1), T0 + 20 * MIN);
	upstream_quota_add(st, T0 + 20 * MIN, 1);
	assert_true(upstream_quota_allowance(st, T0 + 20 * MIN) == 0);
	/* Full: one frees when the first leaves, two when the second leaves. */
	assert_int_equal(upstream_quota_free_at_ms(st, T0 + 20 * MIN, 1), T0 + DAY + 1 * MIN);
	assert_int_equal(upstream_quota_free_at_ms(st, T0 + 20 * MIN, 2), T0 + DAY + 11 * MIN);
	assert_int_equal(upstream_quota_free_at_ms(st, T0 + 20 * MIN, 3), T0 + DAY + 21 * MIN);
	assert_true(upstream_quota_free_at_ms(st, T0 + 20 * MIN, 4) == UINT64_MAX);
	/* Asked later, once the first has left. */
	assert_int_equal(upstream_quota_free_at_ms(st, T0 + DAY + 5 * MIN, 2), T0 + DAY + 11 * MIN);
	assert_true(upstream_quota_allowance(st, T0 + DAY + 5 * MIN) == 1);
	upstream_state_free(st);
}

static void
test_upstream_per_hour_free_at(void **state)
{
	struct upstream_state *st = new_state(0, 2, 0, 0, 4);

	(void)state;
	upstream_quota_add(st, T0 + 5 * MIN, 1);
	upstream_quota_add(st, T0 + 6 * MIN, 1);
	assert_true(upstream_quota_allowance(st, T0 + 7 * MIN) == 0);
	assert_int_equal(upstream_quota_free_at_ms(st, T0 + 7 * MIN, 1), T0 + 66 * MIN);
	assert_true(upstream_quota_allowance(st, T0 + 66 * MIN) == 1);
	upstream_state_free(st);
}

static void
test_upstream_quota_remove_gives_back(void **state)
{
	struct upstream_state *st = new_state(10, 10, 0, 0, 4);

	(void)state;
	upstream_quota_add(st, T0, 5);
	upstream_quota_add(st, T0 + 2 * HOUR, 1);
	upstream_quota_remove(st, T0, 3);
	assert_int_equal(upstream_quota_count(st, T0 + 2 * HOUR, UPSTREAM_WINDOW_DAY), 3);
	assert_int_equal(upstream_quota_count(st, T0 + 2 * HOUR, UPSTREAM_WINDOW_HOUR), 1);
	/* Never below zero. */
	upstream_quota_remove(st, T0, 99);
	assert_int_equal(upstream_quota_count(st, T0 + 2 * HOUR, UPSTREAM_WINDOW_DAY), 1);
	upstream_state_free(st);
}

/* The running sums agree with a brute-force count over random traffic and random gaps. */
static void
test_upstream_window_matches_brute_force(void **state)
{
	enum { N = 4000 };
	static uint64_t at[N], cnt[N];
	struct upstream_state *st = new_state(0, 0, 0, 0, 4);
	uint64_t now = T0, rng = 99;
	size_t i, j;

	(void)state;
	for (i = 0; i < N; i++) {
		uint64_t r = retry_rng_next(&rng);

		/* Mostly small steps, sometimes hours, rarely more than a day. */
		now += r % 16 == 0 ? r % (30 * HOUR) : r % (5 * MIN);
		at[i] = now;
		cnt[i] = 1 + r % 5;
		upstream_quota_add(st, now, cnt[i]);
		if (i % 7 == 0) {
			uint64_t q = now + (r >> 8) % (2 * HOUR);
			uint64_t qm = q / MIN, day = 0, hour = 0;

			for (j = 0; j <= i; j++) {
				uint64_t m = at[j] / MIN;

				if (m + UPSTREAM_DAY_MINUTES >= qm)
					day += cnt[j];
				if (m + UPSTREAM_HOUR_MINUTES >= qm)
					hour += cnt[j];
			}
			assert_int_equal(upstream_quota_count(st, q, UPSTREAM_WINDOW_DAY), day);
			assert_int_equal(upstream_quota_count(st, q, UPSTREAM_WINDOW_HOUR), hour);
		}
	}
	upstream_state_free(st);
}

static void
test_upstream_rebuild_from_attempts(void **state)
{
	const struct upstream_count list[] = {
		{ .at_ms = T0 - DAY - 2 * MIN, .count = 50 }, /* out of the day window */
		{ .at_ms = T0 - 23 * HOUR, .count = 4 },
		{ .at_ms = T0 - 30 * MIN, .count = 2 },
		{ .at_ms = T0 - 1 * MIN, .count = 1 },
		{ .at_ms = T0 + 5 * MIN, .count = 3 }, /* clock skew: counted now */
	};
	struct upstream_state *st = new_state(10, 0, 0, 0, 4);

	(void)state;
	upstream_quota_add(st, T0, 77); /* forgotten by the rebuild */
	upstream_quota_rebuild(st, T0, list, HK_ARRAY_LEN(list));
	assert_int_equal(upstream_quota_count(st, T0, UPSTREAM_WINDOW_DAY), 10);
	assert_int_equal(upstream_quota_count(st, T0, UPSTREAM_WINDOW_HOUR), 6);
	assert_true(upstream_quota_allowance(st, T0) == 0);
	/* The 4 from 23 h ago leave one day and one minute after their minute. */
	assert_int_equal(upstream_quota_free_at_ms(st, T0, 1), T0 - 23 * HOUR + DAY + 1 * MIN);
	upstream_quota_rebuild(st, T0, NULL, 0);
	assert_int_equal(upstream_quota_count(st, T0, UPSTREAM_WINDOW_DAY), 0);
	upstream_state_free(st);
}

/* ---- SPILL ---- */

static void
test_upstream_spill_pause(void **state)
{
	struct upstream_state *st = new_state(0, 0, 0, 0, 4);
	struct upstream_snapshot snap;

	(void)state;
	/* Nothing counted: a whole window. */
	upstream_spill(st, T0, UPSTREAM_WINDOW_HOUR, 0, "421 4.7.28 rate limited");
	assert_int_equal(upstream_paused_until_ms(st), T0 + HOUR);
	/* A caller-supplied earlier time does not shorten it. */
	upstream_spill(st, T0, UPSTREAM_WINDOW_HOUR, T0 + 5 * MIN, "again");
	assert_int_equal(upstream_paused_until_ms(st), T0 + HOUR);
	upstream_spill(st, T0, UPSTREAM_WINDOW_DAY, T0 + 3 * HOUR, "550 5.4.5 daily quota");
	assert_int_equal(upstream_paused_until_ms(st), T0 + 3 * HOUR);
	upstream_snapshot(st, T0 + HOUR, &snap);
	assert_int_equal(snap.health, UPSTREAM_HEALTH_PAUSED);
	assert_string_equal(snap.last_error, "550 5.4.5 daily quota");
	upstream_snapshot(st, T0 + 3 * HOUR, &snap);
	assert_int_equal(snap.health, UPSTREAM_HEALTH_UP);
	assert_int_equal(snap.paused_until_ms, 0);
	upstream_state_free(st);
}

static void
test_upstream_spill_until_oldest_leaves(void **state)
{
	struct upstream_state *st = new_state(0, 0, 0, 0, 4);

	(void)state;
	upstream_quota_add(st, T0 + 2 * HOUR, 5);
	upstream_quota_add(st, T0 + 20 * HOUR, 5);
	upstream_spill(st, T0 + 21 * HOUR, UPSTREAM_WINDOW_DAY, 0, "550 5.4.5 quota");
	assert_int_equal(upstream_paused_until_ms(st), T0 + 26 * HOUR + 1 * MIN);
	upstream_state_free(st);
}

/* ---- rate ---- */

static void
test_upstream_rate_spacing(void **state)
{
	static const struct {
		uint64_t count, period_ms, n, want_next_offset;
	} rows[] = {
		{ 10, 1 * SEC, 1, 100 },     /* 10/s: 100 ms apart */
		{ 10, 1 * SEC, 3, 300 },     /* three recipients take three slots */
		{ 3, 1 * SEC, 3, 1001 },     /* 333.334 ms rounded up: never 4 in one second */
		{ 100, 1 * MIN, 1, 600 },    /* 100/m */
		{ 2000, 1 * SEC, 1, 1 },     /* 500 us: the next ms */
		{ 0, 0, 5, 0 },              /* unlimited */
	};
	size_t i;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(rows); i++) {
		struct upstream_state *st = new_state(0, 0, rows[i].count, rows[i].period_ms, 4);

		assert_int_equal(upstream_rate_next_ms(st, T0), T0);
		upstream_rate_take(st, T0, rows[i].n);
		assert_int_equal(upstream_rate_next_ms(st, T0), T0 + rows[i].want_next_offset);
		/* Idle time is not banked: no burst after a pause. */
		upstream_rate_take(st, T0 + HOUR, 1);
		assert_true(upstream_rate_next_ms(st, T0 + HOUR) >= T0 + HOUR);
		upstream_state_free(st);
	}
}

static void
test_upstream_rate_never_exceeds_count_per_period(void **state)
{
	struct upstream_state *st = new_state(0, 0, 7, 1 * SEC, 4);
	uint64_t sends[200], t = T0;
	size_t i, j;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(sends); i++) {
		t = upstream_rate_next_ms(st, t);
		sends[i] = t;
		upstream_rate_take(st, t, 1);
	}
	for (i = 0; i < HK_ARRAY_LEN(sends); i++) {
		size_t in = 0;

		for (j = i; j < HK_ARRAY_LEN(sends) && sends[j] < sends[i] + 1 * SEC; j++)
			in++;
		assert_true(in <= 7);
	}
	upstream_state_free(st);
}

/* ---- connections, EHLO, snapshot ---- */

static void
test_upstream_connections_cap(void **state)
{
	struct upstream_state *st = new_state(0, 0, 0, 0, 2);
	struct upstream_state *unl = new_state(0, 0, 0, 0, 0);

	(void)state;
	upstream_send_begin(st, T0, 1, false);
	assert_false(upstream_conn_is_full(st));
	upstream_send_begin(st, T0, 1, false);
	assert_true(upstream_conn_is_full(st));
	assert_int_equal(upstream_conn_in_use(st), 2);
	upstream_send_end(st, T0, 1, 1, false);
	assert_false(upstream_conn_is_full(st));
	upstream_send_begin(unl, T0, 1, false);
	assert_false(upstream_conn_is_full(unl));
	upstream_state_free(st);
	upstream_state_free(unl);
}

static void
test_upstream_send_counts_quota_and_gives_back_refused(void **state)
{
	struct upstream_state *st = new_state(100, 0, 0, 0, 4);

	(void)state;
	upstream_send_begin(st, T0, 5, false);
	assert_int_equal(upstream_quota_count(st, T0, UPSTREAM_WINDOW_DAY), 5);
	upstream_send_end(st, T0, 5, 3, false);
	assert_int_equal(upstream_quota_count(st, T0 + SEC, UPSTREAM_WINDOW_DAY), 3);
	upstream_state_free(st);
}

static void
test_upstream_ehlo_max_size(void **state)
{
	struct conf_upstream_limits lim = { .max_size = 10000000, .connections = 4 };
	struct upstream_state *st = upstream_state_new(&lim);

	(void)state;
	assert_int_equal(upstream_max_size(st), 10000000);
	upstream_set_ehlo(st, true, true, 5000000);
	assert_int_equal(upstream_max_size(st), 5000000);
	upstream_set_ehlo(st, false, true, 0);
	assert_int_equal(upstream_max_size(st), 10000000);
	assert_false(upstream_ehlo_has_smtputf8(st));
	lim.max_size = 0;
	upstream_state_set_limits(st, &lim);
	upstream_set_ehlo(st, false, true, 7);
	assert_int_equal(upstream_max_size(st), 7);
	upstream_state_free(st);
}

static void
test_upstream_snapshot(void **state)
{
	struct upstream_state *st = new_state(500, 100, 0, 0, 4);
	struct upstream_snapshot snap;

	(void)state;
	upstream_snapshot(st, T0, &snap);
	assert_int_equal(snap.health, UPSTREAM_HEALTH_UP);
	assert_false(snap.open);
	assert_string_equal(snap.last_error, "");
	upstream_send_begin(st, T0, 7, false);
	upstream_session_ok(st, T0);
	upstream_send_end(st, T0, 7, 7, false);
	upstream_quota_add(st, T0 - 2 * HOUR, 3);
	upstream_session_failed(st, T0 + SEC, "connect: refused");
	upstream_snapshot(st, T0 + SEC, &snap);
	assert_int_equal(snap.health, UPSTREAM_HEALTH_DEGRADED);
	assert_int_equal(snap.sent_day, 10);
	assert_int_equal(snap.sent_hour, 7);
	assert_int_equal(snap.per_day, 500);
	assert_int_equal(snap.per_hour, 100);
	assert_int_equal(snap.last_ok_ms, T0);
	assert_int_equal(snap.last_error_ms, T0 + SEC);
	assert_string_equal(snap.last_error, "connect: refused");
	upstream_auth_failed(st, T0 + 2 * SEC, "535 5.7.8");
	upstream_snapshot(st, T0 + 2 * SEC, &snap);
	assert_int_equal(snap.health, UPSTREAM_HEALTH_DOWN);
	assert_true(snap.open);
	assert_int_equal(snap.breaker, UPSTREAM_BREAKER_OPEN);
	assert_int_equal(snap.open_until_ms, T0 + 32 * SEC);
	assert_string_equal(upstream_health_name(snap.health), "down");
	assert_string_equal(upstream_breaker_name(UPSTREAM_BREAKER_HALF_OPEN), "half_open");
	upstream_state_free(st);
	upstream_state_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upstream_breaker_opens_after_three_failures),
		cmocka_unit_test(test_upstream_breaker_success_resets_the_count),
		cmocka_unit_test(test_upstream_breaker_backoff_doubles_and_caps),
		cmocka_unit_test(test_upstream_breaker_auth_opens_at_once),
		cmocka_unit_test(test_upstream_breaker_late_failure_while_open_changes_nothing),
		cmocka_unit_test(test_upstream_half_open_one_probe_only),
		cmocka_unit_test(test_upstream_day_window_rolls_per_minute),
		cmocka_unit_test(test_upstream_free_at_and_allowance),
		cmocka_unit_test(test_upstream_per_hour_free_at),
		cmocka_unit_test(test_upstream_quota_remove_gives_back),
		cmocka_unit_test(test_upstream_window_matches_brute_force),
		cmocka_unit_test(test_upstream_rebuild_from_attempts),
		cmocka_unit_test(test_upstream_spill_pause),
		cmocka_unit_test(test_upstream_spill_until_oldest_leaves),
		cmocka_unit_test(test_upstream_rate_spacing),
		cmocka_unit_test(test_upstream_rate_never_exceeds_count_per_period),
		cmocka_unit_test(test_upstream_connections_cap),
		cmocka_unit_test(test_upstream_send_counts_quota_and_gives_back_refused),
		cmocka_unit_test(test_upstream_ehlo_max_size),
		cmocka_unit_test(test_upstream_snapshot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
