/*
 * retry.h - when a deferred message is tried again, and when it expires (DESIGN.md 7).
 *
 * Pure arithmetic: every function takes the current time as now_ms (wall-clock milliseconds) and
 * any randomness as a value the caller draws (retry_rng_next() on a state the caller owns); nothing
 * here reads a clock.
 *
 * Invariants: after the Nth deferral (N >= 1) the wait is schedule[N-1], the last step repeating
 * for every later deferral, scaled by a jitter factor in [0.9, 1.1] (bounds inclusive, whole
 * milliseconds). A message expires once now_ms >= received_ms + max_age_ms; no wait ever runs past
 * that deadline: it is clamped to it, so the wake-up at the deadline is the expiry.
 * Only DEFER verdicts count as attempts: retry_after_deferral() is the only function that moves
 * the deferral counter; waits for a quota window, a SPILL pause, an open breaker or a rate slot go
 * through retry_after_wait(), which has no counter to move.
 * Ownership: a struct retry_policy borrows its schedule array (normally the config snapshot's); it
 * must outlive the policy.
 * Thread: any (no shared state).
 * Failure: none; misuse (NULL pointers) is a bug and aborts.
 */
#ifndef HK_SCHED_RETRY_H
#define HK_SCHED_RETRY_H

#include <stddef.h>
#include <stdint.h>

#include "../conf/conf.h"
#include "../util/common.h"

/* Jitter is +-RETRY_JITTER_PERMILLE/1000 of the scheduled wait. */
#define RETRY_JITTER_PERMILLE 100u

struct retry_policy {
	const uint64_t *schedule_ms; /* waits after the 1st, 2nd, ... deferral; borrowed */
	size_t n_schedule;           /* 0: the built-in default 1m 5m 15m 1h 4h */
	uint64_t max_age_ms;         /* from reception; 0: never expires */
};

enum retry_result {
	RETRY_AT,      /* try again at *at_ms */
	RETRY_EXPIRED, /* max_age reached: the message ends "expired" */
};

/* Fill p from a config snapshot's retry keys; p borrows c's schedule array. */
void retry_policy_from_conf(struct retry_policy *p, const struct conf *c);

/*
 * The scheduled wait after the deferrals-th deferral (deferrals >= 1; 0 is treated as 1), before
 * jitter: schedule[min(deferrals, n) - 1].
 */
uint64_t retry_base_wait_ms(const struct retry_policy *p, uint32_t deferrals);

/*
 * base with jitter applied: a value in [base - base/10, base + base/10], picked uniformly by rnd
 * (any 64-bit value, e.g. from retry_rng_next()). Waits under 10 ms get no jitter.
 */
uint64_t retry_jitter_ms(uint64_t base, uint64_t rnd);

/* The moment the message expires: received_ms + max_age_ms (UINT64_MAX when max_age is 0). */
uint64_t retry_deadline_ms(const struct retry_policy *p, uint64_t received_ms);

/* True when the message received at received_ms has expired at now_ms (the deadline included). */
bool retry_is_expired(const struct retry_policy *p, uint64_t received_ms, uint64_t now_ms);

/*
 * A DEFER verdict at now_ms. Counts one attempt: *deferrals is incremented (saturating), then the
 * next attempt is now_ms + jittered schedule step, clamped to the deadline, in *at_ms. Returns
 * RETRY_EXPIRED (*at_ms untouched, counter still incremented) when the message has expired at
 * now_ms.
 */
enum retry_result retry_after_deferral(const struct retry_policy *p, uint32_t *deferrals,
    uint64_t received_ms, uint64_t now_ms, uint64_t rnd, uint64_t *at_ms);

/*
 * A wait that is NOT an attempt (quota window, SPILL pause, open breaker, rate slot): wake at
 * until_ms (at least now_ms), clamped to the deadline. RETRY_EXPIRED when expired at now_ms.
 */
enum retry_result retry_after_wait(const struct retry_policy *p, uint64_t received_ms,
    uint64_t now_ms, uint64_t until_ms, uint64_t *at_ms);

/* A small PRNG (splitmix64) for jitter; *state is the caller's, any seed is fine. */
uint64_t retry_rng_next(uint64_t *state);

#endif
