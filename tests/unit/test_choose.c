/* test_choose.c - the pure upstream choice: order, limits, spill, waits, bounces, exclusions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sched/choose.h"
#include "sched/upstream.h"
#include "util/poison.h"

#define SEC 1000ull
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
/* 2024-03-01T00:00:00Z, on a minute boundary. */
#define T0 1709251200000ull

enum { PRIMARY, BACKUP, THIRD, N_UP };

/* Three upstreams and a route primary -> backup -> third (n_order may be cut shorter). */
struct fix {
	struct conf_upstream_limits lim[N_UP];
	struct upstream_state *st[N_UP];
	size_t order[N_UP];
	struct choose_route route;
};

static struct conf_upstream_limits
unlimited(void)
{
	struct conf_upstream_limits l = { .connections = 4, .recipients_per_message = 100 };

	return l;
}

/* Build the states from f->lim (filled by the test) with a route of n upstreams. */
static void
fix_start(struct fix *f, size_t n)
{
	size_t i;

	for (i = 0; i < N_UP; i++) {
		f->st[i] = upstream_state_new(&f->lim[i]);
		f->order[i] = i;
	}
	f->route.order = f->order;
	f->route.n_order = n;
	f->route.states = (const struct upstream_state *const *)f->st;
	f->route.n_states = N_UP;
}

static void
fix_init(struct fix *f, size_t n)
{
	size_t i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < N_UP; i++)
		f->lim[i] = unlimited();
	fix_start(f, n);
}

static void
fix_fini(struct fix *f)
{
	size_t i;

	for (i = 0; i < N_UP; i++)
		upstream_state_free(f->st[i]);
}

static struct choose_msg
msg1(void)
{
	struct choose_msg m = { .size = 2000, .n_rcpt = 1 };

	return m;
}

static struct choose_result
choose(struct fix *f, const struct choose_msg *m, const bool *excluded, uint64_t now)
{
	struct choose_result r;

	choose_upstream(&f->route, m, excluded, now, &r);
	return r;
}

/* Choose and, on SEND, run a whole successful transaction. Returns the upstream or -1. */
static int
deliver(struct fix *f, const struct choose_msg *m, uint64_t now)
{
	struct choose_result r = choose(f, m, NULL, now);

	if (r.kind != CHOOSE_SEND)
		return -1;
	upstream_send_begin(f->st[r.upstream], r.at_ms, r.n_rcpt, r.probe);
	upstream_session_ok(f->st[r.upstream], r.at_ms);
	upstream_send_end(f->st[r.upstream], r.at_ms, r.n_rcpt, r.n_rcpt, r.probe);
	return (int)r.upstream;
}

static void
test_choose_primary_first_for_every_message(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();
	int i;

	(void)state;
	fix_init(&f, 2);
	for (i = 0; i < 20; i++)
		assert_int_equal(deliver(&f, &m, T0 + (uint64_t)i * SEC), PRIMARY);
	fix_fini(&f);
}

static void
test_choose_per_day_spills_and_returns(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();
	struct choose_result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.lim[PRIMARY] = unlimited();
	f.lim[PRIMARY].per_day = 3;
	f.lim[BACKUP] = unlimited();
	fix_start(&f, 2);
	assert_int_equal(deliver(&f, &m, T0), PRIMARY);
	assert_int_equal(deliver(&f, &m, T0 + 1 * MIN), PRIMARY);
	assert_int_equal(deliver(&f, &m, T0 + 2 * MIN), PRIMARY);
	/* The 4th takes the backup, as does everything until the first send rolls out. */
	assert_int_equal(deliver(&f, &m, T0 + 3 * MIN), BACKUP);
	assert_int_equal(deliver(&f, &m, T0 + DAY), BACKUP);
	assert_int_equal(deliver(&f, &m, T0 + DAY + 1 * MIN - 1), BACKUP);
	/* Back to the primary by itself. */
	assert_int_equal(deliver(&f, &m, T0 + DAY + 1 * MIN), PRIMARY);
	assert_int_equal(deliver(&f, &m, T0 + DAY + 1 * MIN), BACKUP);
	/* Primary only: a wait until the next reset instead. */
	f.route.n_order = 1;
	r = choose(&f, &m, NULL, T0 + DAY + 90 * SEC);
	assert_int_equal(r.kind, CHOOSE_WAIT);
	assert_int_equal(r.at_ms, T0 + DAY + 2 * MIN);
	assert_false(r.on_event);
	fix_fini(&f);
}

static void
test_choose_per_hour(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();

	(void)state;
	memset(&f, 0, sizeof(f));
	f.lim[PRIMARY] = unlimited();
	f.lim[PRIMARY].per_hour = 2;
	f.lim[PRIMARY].per_day = 1000;
	f.lim[BACKUP] = unlimited();
	fix_start(&f, 2);
	assert_int_equal(deliver(&f, &m, T0 + 10 * MIN), PRIMARY);
	assert_int_equal(deliver(&f, &m, T0 + 20 * MIN), PRIMARY);
	assert_int_equal(deliver(&f, &m, T0 + 30 * MIN), BACKUP);
	assert_int_equal(deliver(&f, &m, T0 + 71 * MIN - 1), BACKUP);
	assert_int_equal(deliver(&f, &m, T0 + 71 * MIN), PRIMARY);
	fix_fini(&f);
}

/* A message with more recipients than the quota allows takes what is left; the rest goes on. */
static void
test_choose_quota_allowance_limits_recipients(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();
	struct choose_result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.lim[PRIMARY] = unlimited();
	f.lim[PRIMARY].per_day = 5;
	f.lim[BACKUP] = unlimited();
	fix_start(&f, 2);
	upstream_quota_add(f.st[PRIMARY], T0, 3);
	m.n_rcpt = 4;
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.kind, CHOOSE_SEND);
	assert_int_equal(r.upstream, PRIMARY);
	assert_int_equal(r.n_rcpt, 2);
	upstream_send_begin(f.st[PRIMARY], r.at_ms, r.n_rcpt, r.probe);
	m.n_rcpt = 2;
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.upstream, BACKUP);
	assert_int_equal(r.n_rcpt, 2);
	fix_fini(&f);
}

static void
test_choose_recipients_per_message_split(void **state)
{
	static const struct {
		uint64_t rpm, n_rcpt, want;
	} rows[] = {
		{ 100, 1, 1 }, { 100, 100, 100 }, { 100, 250, 100 }, { 1, 7, 1 }, { 0, 5000, 5000 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(rows); i++) {
		struct fix f;
		struct choose_msg m = msg1();
		struct choose_result r;

		memset(&f, 0, sizeof(f));
		f.lim[PRIMARY] = unlimited();
		f.lim[PRIMARY].recipients_per_message = (unsigned)rows[i].rpm;
		fix_start(&f, 1);
		m.n_rcpt = rows[i].n_rcpt;
		r = choose(&f, &m, NULL, T0);
		assert_int_equal(r.kind, CHOOSE_SEND);
		assert_int_equal(r.n_rcpt, rows[i].want);
		fix_fini(&f);
	}
}

static void
test_choose_rate_spill_over_one_second(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();
	struct choose_result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.lim[PRIMARY] = unlimited();
	f.lim[PRIMARY].rate_count = 2; /* 2/s: 500 ms apart */
	f.lim[PRIMARY].rate_period_ms = 1 * SEC;
	f.lim[BACKUP] = unlimited();
	f.lim[BACKUP].rate_count = 1; /* 1 per 5 s */
	f.lim[BACKUP].rate_period_ms = 5 * SEC;
	fix_start(&f, 2);
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.upstream, PRIMARY);
	assert_int_equal(r.at_ms, T0);
	upstream_send_begin(f.st[PRIMARY], r.at_ms, 1, false);
	/* 500 ms is within the 1 s tolerance: still the primary, at its slot. */
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.kind, CHOOSE_SEND);
	assert_int_equal(r.upstream, PRIMARY);
	assert_int_equal(r.at_ms, T0 + 500);
	upstream_send_begin(f.st[PRIMARY], r.at_ms, 1, false);
	/* The next slot is T0 + 1000: exactly 1 s, still allowed. */
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.upstream, PRIMARY);
	assert_int_equal(r.at_ms, T0 + 1000);
	upstream_send_begin(f.st[PRIMARY], r.at_ms, 1, false);
	/* T0 + 1500 is over 1 s away: spill to the backup. */
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.upstream, BACKUP);
	assert_int_equal(r.at_ms, T0);
	upstream_send_begin(f.st[BACKUP], r.at_ms, 1, false);
	/* Both too far: wait for the earlier slot (the primary's). */
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.kind, CHOOSE_WAIT);
	assert_int_equal(r.at_ms, T0 + 1500);
	/* Later, the primary is back in range and first again. */
	r = choose(&f, &m, NULL, T0 + 600);
	assert_int_equal(r.upstream, PRIMARY);
	assert_int_equal(r.at_ms, T0 + 1500);
	fix_fini(&f);
}

static void
test_choose_connections_cap(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();
	struct choose_result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.lim[PRIMARY] = unlimited();
	f.lim[PRIMARY].connections = 2;
	f.lim[BACKUP] = unlimited();
	f.lim[BACKUP].connections = 1;
	fix_start(&f, 2);
	upstream_send_begin(f.st[PRIMARY], T0, 1, false);
	assert_int_equal(choose(&f, &m, NULL, T0).upstream, PRIMARY);
	upstream_send_begin(f.st[PRIMARY], T0, 1, false);
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.upstream, BACKUP);
	upstream_send_begin(f.st[BACKUP], T0, 1, false);
	/* Everything busy: no timer, re-run when a connection is freed. */
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.kind, CHOOSE_WAIT);
	assert_true(r.on_event);
	assert_true(r.at_ms == UINT64_MAX);
	upstream_send_end(f.st[PRIMARY], T0, 1, 1, false);
	assert_int_equal(choose(&f, &m, NULL, T0 + 1).upstream, PRIMARY);
	fix_fini(&f);
}

static void
test_choose_max_size(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();
	struct choose_result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.lim[PRIMARY] = unlimited();
	f.lim[PRIMARY].max_size = 1000000;
	f.lim[BACKUP] = unlimited();
	f.lim[BACKUP].max_size = 5000000;
	f.lim[THIRD] = unlimited();
	f.lim[THIRD].max_size = 2000000;
	fix_start(&f, 3);
	m.size = 1000000;
	assert_int_equal(choose(&f, &m, NULL, T0).upstream, PRIMARY);
	m.size = 1000001;
	assert_int_equal(choose(&f, &m, NULL, T0).upstream, BACKUP);
	/* The backup's EHLO advertises less than its max_size: the smaller counts. */
	upstream_set_ehlo(f.st[BACKUP], true, true, 1500000);
	m.size = 1800000;
	assert_int_equal(choose(&f, &m, NULL, T0).upstream, THIRD);
	m.size = 2000001;
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.kind, CHOOSE_NEVER);
	assert_int_equal(r.never, CHOOSE_NEVER_SIZE);
	assert_string_equal(r.status, "5.3.4");
	assert_non_null(r.why);
	fix_fini(&f);
}

static void
test_choose_smtputf8_and_8bitmime(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();
	struct choose_result r;

	(void)state;
	fix_init(&f, 2);
	m.needs_smtputf8 = true;
	/* Unknown capabilities: try the primary. */
	assert_int_equal(choose(&f, &m, NULL, T0).upstream, PRIMARY);
	upstream_set_ehlo(f.st[PRIMARY], false, true, 0);
	assert_int_equal(choose(&f, &m, NULL, T0).upstream, BACKUP);
	upstream_set_ehlo(f.st[BACKUP], false, true, 0);
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.kind, CHOOSE_NEVER);
	assert_int_equal(r.never, CHOOSE_NEVER_SMTPUTF8);
	assert_string_equal(r.status, "5.6.7");
	/* Plain messages still go to the primary. */
	m.needs_smtputf8 = false;
	assert_int_equal(choose(&f, &m, NULL, T0).upstream, PRIMARY);
	/* 8BITMIME missing on the backup, SMTPUTF8 on the primary: mixed reasons. */
	upstream_set_ehlo(f.st[BACKUP], true, false, 0);
	m.needs_smtputf8 = true;
	m.needs_8bitmime = true;
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.kind, CHOOSE_NEVER);
	assert_int_equal(r.never, CHOOSE_NEVER_MIXED);
	m.needs_smtputf8 = false;
	upstream_set_ehlo(f.st[PRIMARY], true, false, 0);
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.never, CHOOSE_NEVER_8BITMIME);
	assert_string_equal(r.status, "5.6.3");
	fix_fini(&f);
}

static void
test_choose_breaker_open_and_half_open_probe(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();
	struct choose_result r;
	int i;

	(void)state;
	fix_init(&f, 2);
	for (i = 0; i < 3; i++)
		upstream_session_failed(f.st[PRIMARY], T0, "connect refused");
	assert_int_equal(choose(&f, &m, NULL, T0).upstream, BACKUP);
	assert_int_equal(choose(&f, &m, NULL, T0 + 30 * SEC - 1).upstream, BACKUP);
	/* Half-open: this message is the one probe. */
	r = choose(&f, &m, NULL, T0 + 30 * SEC);
	assert_int_equal(r.upstream, PRIMARY);
	assert_true(r.probe);
	upstream_send_begin(f.st[PRIMARY], r.at_ms, r.n_rcpt, r.probe);
	/* While it is out, the next message goes on to the backup. */
	r = choose(&f, &m, NULL, T0 + 31 * SEC);
	assert_int_equal(r.upstream, BACKUP);
	assert_false(r.probe);
	/* With no backup it waits for the probe's outcome. */
	f.route.n_order = 1;
	r = choose(&f, &m, NULL, T0 + 31 * SEC);
	assert_int_equal(r.kind, CHOOSE_WAIT);
	assert_true(r.on_event);
	/* The probe failed: open again for 60 s, and the wait has a time. */
	upstream_session_failed(f.st[PRIMARY], T0 + 32 * SEC, "timeout");
	upstream_send_end(f.st[PRIMARY], T0 + 30 * SEC, 1, 0, true);
	r = choose(&f, &m, NULL, T0 + 33 * SEC);
	assert_int_equal(r.kind, CHOOSE_WAIT);
	assert_int_equal(r.at_ms, T0 + 92 * SEC);
	assert_false(r.on_event);
	/* The next probe succeeds: closed, no probe flag any more. */
	f.route.n_order = 2;
	r = choose(&f, &m, NULL, T0 + 92 * SEC);
	assert_true(r.probe);
	upstream_send_begin(f.st[PRIMARY], r.at_ms, r.n_rcpt, r.probe);
	upstream_session_ok(f.st[PRIMARY], T0 + 93 * SEC);
	upstream_send_end(f.st[PRIMARY], T0 + 92 * SEC, 1, 1, true);
	r = choose(&f, &m, NULL, T0 + 93 * SEC);
	assert_int_equal(r.upstream, PRIMARY);
	assert_false(r.probe);
	fix_fini(&f);
}

static void
test_choose_wait_for_earliest(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();
	struct choose_result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.lim[PRIMARY] = unlimited();
	f.lim[PRIMARY].per_day = 1;
	f.lim[BACKUP] = unlimited();
	f.lim[THIRD] = unlimited();
	fix_start(&f, 3);
	upstream_quota_add(f.st[PRIMARY], T0, 1);                       /* free at T0+1d+1m */
	upstream_spill(f.st[BACKUP], T0, UPSTREAM_WINDOW_DAY, T0 + 5 * HOUR, "550 5.4.5");
	upstream_auth_failed(f.st[THIRD], T0 + 10 * MIN, "535 5.7.8"); /* half-open T0+10m30s */
	r = choose(&f, &m, NULL, T0 + 10 * MIN);
	assert_int_equal(r.kind, CHOOSE_WAIT);
	assert_int_equal(r.at_ms, T0 + 10 * MIN + 30 * SEC);
	/* After the third reopened for longer, the backup's pause end is the earliest. */
	upstream_auth_failed(f.st[THIRD], T0 + 10 * MIN + 30 * SEC, "535 5.7.8");
	upstream_auth_failed(f.st[THIRD], T0 + 11 * MIN + 30 * SEC, "535 5.7.8");
	upstream_auth_failed(f.st[THIRD], T0 + 13 * MIN + 30 * SEC, "535 5.7.8");
	upstream_auth_failed(f.st[THIRD], T0 + 17 * MIN + 30 * SEC, "535 5.7.8");
	r = choose(&f, &m, NULL, T0 + 18 * MIN);
	assert_int_equal(r.at_ms, T0 + 25 * MIN + 30 * SEC);
	/* The SPILL pause ends: the backup takes it, the primary is still full. */
	r = choose(&f, &m, NULL, T0 + 5 * HOUR);
	assert_int_equal(r.kind, CHOOSE_SEND);
	assert_int_equal(r.upstream, BACKUP);
	fix_fini(&f);
}

static void
test_choose_exclude_next_and_last(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();
	struct choose_result r;
	bool ex[N_UP] = { false };

	(void)state;
	fix_init(&f, 2);
	assert_false(choose_is_last(&f.route, &m, ex, PRIMARY, T0));
	/* NEXT on the primary: the backup now. */
	ex[PRIMARY] = true;
	r = choose(&f, &m, ex, T0);
	assert_int_equal(r.upstream, BACKUP);
	assert_true(choose_is_last(&f.route, &m, ex, BACKUP, T0));
	/* NEXT on the backup too: nothing left in this pass. */
	ex[BACKUP] = true;
	r = choose(&f, &m, ex, T0);
	assert_int_equal(r.kind, CHOOSE_NONE);
	/* A backup that cannot send now makes the primary the last eligible one. */
	memset(ex, 0, sizeof(ex));
	upstream_spill(f.st[BACKUP], T0, UPSTREAM_WINDOW_HOUR, T0 + HOUR, "421 4.7.28");
	assert_true(choose_is_last(&f.route, &m, ex, PRIMARY, T0));
	assert_false(choose_is_last(&f.route, &m, ex, PRIMARY, T0 + HOUR));
	/* A backup that can never take it: excluding the primary is NONE, not NEVER. */
	m.size = 10000000;
	f.lim[BACKUP].max_size = 1000;
	upstream_state_set_limits(f.st[BACKUP], &f.lim[BACKUP]);
	ex[PRIMARY] = true;
	r = choose(&f, &m, ex, T0 + HOUR);
	assert_int_equal(r.kind, CHOOSE_NONE);
	assert_true(choose_is_last(&f.route, &m, NULL, PRIMARY, T0 + HOUR));
	fix_fini(&f);
}

static void
test_choose_spill_pause_then_return(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();

	(void)state;
	fix_init(&f, 2);
	assert_int_equal(deliver(&f, &m, T0), PRIMARY);
	upstream_spill(f.st[PRIMARY], T0 + SEC, UPSTREAM_WINDOW_DAY, 0, "550 5.4.5 Daily limit");
	/* Paused until the message sent at T0 leaves the day window. */
	assert_int_equal(upstream_paused_until_ms(f.st[PRIMARY]), T0 + DAY + 1 * MIN);
	assert_int_equal(deliver(&f, &m, T0 + 2 * SEC), BACKUP);
	assert_int_equal(deliver(&f, &m, T0 + DAY + 1 * MIN - 1), BACKUP);
	assert_int_equal(deliver(&f, &m, T0 + DAY + 1 * MIN), PRIMARY);
	fix_fini(&f);
}

static void
test_choose_no_upstream(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();
	struct choose_result r;

	(void)state;
	fix_init(&f, 0);
	r = choose(&f, &m, NULL, T0);
	assert_int_equal(r.kind, CHOOSE_NEVER);
	assert_int_equal(r.never, CHOOSE_NEVER_NO_UPSTREAM);
	assert_string_equal(choose_kind_name(CHOOSE_WAIT), "wait");
	assert_string_equal(choose_kind_name(CHOOSE_NEVER), "never");
	fix_fini(&f);
}

/* The route order decides, not the configuration order. */
static void
test_choose_follows_route_order(void **state)
{
	struct fix f;
	struct choose_msg m = msg1();

	(void)state;
	fix_init(&f, 3);
	f.order[0] = THIRD;
	f.order[1] = PRIMARY;
	f.order[2] = BACKUP;
	assert_int_equal(choose(&f, &m, NULL, T0).upstream, THIRD);
	upstream_auth_failed(f.st[THIRD], T0, "535");
	assert_int_equal(choose(&f, &m, NULL, T0).upstream, PRIMARY);
	fix_fini(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_choose_primary_first_for_every_message),
		cmocka_unit_test(test_choose_per_day_spills_and_returns),
		cmocka_unit_test(test_choose_per_hour),
		cmocka_unit_test(test_choose_quota_allowance_limits_recipients),
		cmocka_unit_test(test_choose_recipients_per_message_split),
		cmocka_unit_test(test_choose_rate_spill_over_one_second),
		cmocka_unit_test(test_choose_connections_cap),
		cmocka_unit_test(test_choose_max_size),
		cmocka_unit_test(test_choose_smtputf8_and_8bitmime),
		cmocka_unit_test(test_choose_breaker_open_and_half_open_probe),
		cmocka_unit_test(test_choose_wait_for_earliest),
		cmocka_unit_test(test_choose_exclude_next_and_last),
		cmocka_unit_test(test_choose_spill_pause_then_return),
		cmocka_unit_test(test_choose_no_upstream),
		cmocka_unit_test(test_choose_follows_route_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
