/* retry.c - retry schedule, jitter and expiry; see retry.h. */
#include <stdint.h>

#include "retry.h"

#include "../util/poison.h"

/* DESIGN.md 14: the schedule when the config gives none. */
static const uint64_t retry_default_schedule_ms[] = {
	60 * 1000ull, 5 * 60 * 1000ull, 15 * 60 * 1000ull, 60 * 60 * 1000ull, 4 * 60 * 60 * 1000ull,
};

static uint64_t
retry_add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void
retry_policy_from_conf(struct retry_policy *p, const struct conf *c)
{
	HK_ASSERT(p != NULL && c != NULL);
	p->schedule_ms = c->retry_schedule_ms;
	p->n_schedule = c->n_retry;
	p->max_age_ms = c->retry_max_age_ms;
}

uint64_t
retry_base_wait_ms(const struct retry_policy *p, uint32_t deferrals)
{
	const uint64_t *sched;
	size_t n, step;

	HK_ASSERT(p != NULL);
	sched = p->schedule_ms;
	n = p->n_schedule;
	if (sched == NULL || n == 0) {
		sched = retry_default_schedule_ms;
		n = HK_ARRAY_LEN(retry_default_schedule_ms);
	}
	step = deferrals == 0 ? 0 : (size_t)deferrals - 1;
	/* The last step repeats for every later deferral. */
	if (step >= n)
		step = n - 1;
	return sched[step];
}

uint64_t
retry_jitter_ms(uint64_t base, uint64_t rnd)
{
	/* floor(base * permille / 1000) without overflow. */
	uint64_t span = base / 1000 * RETRY_JITTER_PERMILLE +
	    base % 1000 * RETRY_JITTER_PERMILLE / 1000;

	if (span == 0)
		return base;
	/* span <= base / 10, so 2 * span + 1 cannot overflow and base - span cannot underflow. */
	return base - span + rnd % (2 * span + 1);
}

uint64_t
retry_deadline_ms(const struct retry_policy *p, uint64_t received_ms)
{
	HK_ASSERT(p != NULL);
	if (p->max_age_ms == 0)
		return UINT64_MAX;
	return retry_add_sat(received_ms, p->max_age_ms);
}

bool
retry_is_expired(const struct retry_policy *p, uint64_t received_ms, uint64_t now_ms)
{
	return now_ms >= retry_deadline_ms(p, received_ms);
}

enum retry_result
retry_after_deferral(const struct retry_policy *p, uint32_t *deferrals, uint64_t received_ms,
    uint64_t now_ms, uint64_t rnd, uint64_t *at_ms)
{
	uint64_t deadline, at;

	HK_ASSERT(deferrals != NULL && at_ms != NULL);
	if (*deferrals < UINT32_MAX)
		(*deferrals)++;
	deadline = retry_deadline_ms(p, received_ms);
	if (now_ms >= deadline)
		return RETRY_EXPIRED;
	at = retry_add_sat(now_ms, retry_jitter_ms(retry_base_wait_ms(p, *deferrals), rnd));
	*at_ms = at < deadline ? at : deadline;
	return RETRY_AT;
}

enum retry_result
retry_after_wait(const struct retry_policy *p, uint64_t received_ms, uint64_t now_ms,
    uint64_t until_ms, uint64_t *at_ms)
{
	uint64_t deadline;

	HK_ASSERT(at_ms != NULL);
	deadline = retry_deadline_ms(p, received_ms);
	if (now_ms >= deadline)
		return RETRY_EXPIRED;
	if (until_ms < now_ms)
		until_ms = now_ms;
	*at_ms = until_ms < deadline ? until_ms : deadline;
	return RETRY_AT;
}

uint64_t
retry_rng_next(uint64_t *state)
{
	uint64_t z;

	HK_ASSERT(state != NULL);
	z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
