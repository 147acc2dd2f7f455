/* clock.c - real and fake clocks. */
#include <stdatomic.h>
#include <time.h>

#include "clock.h"
#include "poison.h"

static _Atomic uint64_t clock_fake_ms;

static uint64_t
clock_read(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
clock_now_ms(void)
{
	uint64_t f = atomic_load(&clock_fake_ms);

	return f ? f : clock_read(CLOCK_REALTIME);
}

uint64_t
clock_mono_ms(void)
{
	uint64_t f = atomic_load(&clock_fake_ms);

	return f ? f : clock_read(CLOCK_MONOTONIC);
}

void
clock_set_fake(uint64_t ms)
{
	atomic_store(&clock_fake_ms, ms);
}

void
clock_advance_fake(uint64_t ms)
{
	atomic_fetch_add(&clock_fake_ms, ms);
}
