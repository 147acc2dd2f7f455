/* upstream.c - per-upstream breaker, quota windows, rate and connections; see upstream.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream.h"

#include "../util/buf.h"
#include "../util/xalloc.h"

#include "../util/poison.h"

/* The ring holds the day window: minutes T-1440 .. T. */
#define UPSTREAM_RING (UPSTREAM_DAY_MINUTES + 1u)

struct upstream_state {
	struct conf_upstream_limits limits;

	/* Breaker: open and not yet past open_until_ms = open; open and past it = half-open. */
	bool open;
	bool probe_busy;
	unsigned failures;
	uint64_t open_until_ms;
	uint64_t open_wait_ms; /* wait of the last opening; 0 since the last close */
	uint64_t breaker_min_ms; /* first open wait (UPSTREAM_BREAKER_MIN_MS unless configured) */

	/* Quota: ring[m % UPSTREAM_RING] counts minute m, ring_minute-1440 <= m <= ring_minute. */
	uint64_t paused_until_ms;
	uint64_t ring_minute;
	uint64_t day_sum, hour_sum; /* sums of the day and hour windows at ring_minute */
	uint32_t ring[UPSTREAM_RING];

	/* Rate: GCRA theoretical arrival time in microseconds. */
	uint64_t rate_tat_us;

	unsigned busy; /* transactions in progress */

	bool ehlo_known, ehlo_smtputf8, ehlo_8bitmime;
	uint64_t ehlo_size;

	struct buf last_error;
	uint64_t last_error_ms, last_ok_ms;
};

static uint64_t
upstream_add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t
upstream_mul_sat(uint64_t a, uint64_t b)
{
	return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

struct upstream_state *
upstream_state_new(const struct conf_upstream_limits *lim)
{
	struct upstream_state *st = xcalloc(1, sizeof(*st));

	upstream_state_set_limits(st, lim);
	st->breaker_min_ms = UPSTREAM_BREAKER_MIN_MS;
	buf_init(&st->last_error);
	return st;
}

void
upstream_state_set_breaker_min(struct upstream_state *st, uint64_t ms)
{
	st->breaker_min_ms = ms > 0 && ms <= UPSTREAM_BREAKER_MAX_MS ? ms : UPSTREAM_BREAKER_MIN_MS;
}

void
upstream_state_free(struct upstream_state *st)
{
	if (st == NULL)
		return;
	buf_fini(&st->last_error);
	free(st);
}

void
upstream_state_set_limits(struct upstream_state *st, const struct conf_upstream_limits *lim)
{
	HK_ASSERT(st != NULL && lim != NULL);
	st->limits = *lim;
}

const struct conf_upstream_limits *
upstream_limits(const struct upstream_state *st)
{
	return &st->limits;
}

static void
upstream_set_error(struct upstream_state *st, uint64_t now_ms, const char *text)
{
	buf_reset(&st->last_error);
	buf_append_str(&st->last_error, text != NULL ? text : "");
	st->last_error_ms = now_ms;
}

/* Breaker ------------------------------------------------------------------------------------ */

enum upstream_breaker
upstream_breaker_at(const struct upstream_state *st, uint64_t now_ms)
{
	if (!st->open)
		return UPSTREAM_BREAKER_CLOSED;
	return now_ms < st->open_until_ms ? UPSTREAM_BREAKER_OPEN : UPSTREAM_BREAKER_HALF_OPEN;
}

uint64_t
upstream_open_until_ms(const struct upstream_state *st)
{
	return st->open ? st->open_until_ms : 0;
}

bool
upstream_probe_is_busy(const struct upstream_state *st)
{
	return st->probe_busy;
}

/* Open (or reopen) the breaker: 30 s the first time, then double the last wait, up to 10 min. */
static void
upstream_open(struct upstream_state *st, uint64_t now_ms)
{
	uint64_t wait = st->open_wait_ms == 0 ? st->breaker_min_ms : st->open_wait_ms * 2;

	if (wait > UPSTREAM_BREAKER_MAX_MS)
		wait = UPSTREAM_BREAKER_MAX_MS;
	st->open = true;
	st->open_wait_ms = wait;
	st->open_until_ms = upstream_add_sat(now_ms, wait);
	st->probe_busy = false;
}

void
upstream_session_ok(struct upstream_state *st, uint64_t now_ms)
{
	st->open = false;
	st->probe_busy = false;
	st->failures = 0;
	st->open_wait_ms = 0;
	st->open_until_ms = 0;
	st->last_ok_ms = now_ms;
}

void
upstream_session_failed(struct upstream_state *st, uint64_t now_ms, const char *text)
{
	upstream_set_error(st, now_ms, text);
	if (st->failures < UINT32_MAX)
		st->failures++;
	switch (upstream_breaker_at(st, now_ms)) {
	case UPSTREAM_BREAKER_CLOSED:
		if (st->failures >= UPSTREAM_BREAKER_FAILURES)
			upstream_open(st, now_ms);
		break;
	case UPSTREAM_BREAKER_OPEN:
		/* A session begun before the breaker opened: the wait already covers it. */
		break;
	case UPSTREAM_BREAKER_HALF_OPEN:
		upstream_open(st, now_ms);
		break;
	}
}

void
upstream_auth_failed(struct upstream_state *st, uint64_t now_ms, const char *text)
{
	upstream_set_error(st, now_ms, text);
	if (st->failures < UINT32_MAX)
		st->failures++;
	/* Wrong credentials do not heal by retrying: stop at once instead of after three. */
	if (upstream_breaker_at(st, now_ms) != UPSTREAM_BREAKER_OPEN)
		upstream_open(st, now_ms);
}

void
upstream_note_error(struct upstream_state *st, uint64_t now_ms, const char *text)
{
	upstream_set_error(st, now_ms, text);
}

/* Quota windows ------------------------------------------------------------------------------ */

/* Move the ring forward to minute m (> ring_minute), dropping what leaves the windows. */
static void
upstream_ring_advance(struct upstream_state *st, uint64_t m)
{
	uint64_t k;

	if (m - st->ring_minute >= UPSTREAM_RING) {
		memset(st->ring, 0, sizeof(st->ring));
		st->day_sum = 0;
		st->hour_sum = 0;
		st->ring_minute = m;
		return;
	}
	for (k = st->ring_minute + 1; k <= m; k++) {
		/* Entering minute k: minute k-1441 leaves the day window, k-61 the hour window. */
		uint32_t *old = &st->ring[k % UPSTREAM_RING];

		st->day_sum -= *old;
		*old = 0;
		if (k >= UPSTREAM_HOUR_MINUTES + 1)
			st->hour_sum -= st->ring[(k - UPSTREAM_HOUR_MINUTES - 1) % UPSTREAM_RING];
	}
	st->ring_minute = m;
}

static uint64_t
upstream_window_minutes(enum upstream_window w)
{
	return w == UPSTREAM_WINDOW_DAY ? UPSTREAM_DAY_MINUTES : UPSTREAM_HOUR_MINUTES;
}

static uint64_t
upstream_window_limit(const struct upstream_state *st, enum upstream_window w)
{
	return w == UPSTREAM_WINDOW_DAY ? st->limits.per_day : st->limits.per_hour;
}

/* The oldest minute of window w at ring_minute (bucket indexes below it are not in the window). */
static uint64_t
upstream_window_first(const struct upstream_state *st, enum upstream_window w)
{
	uint64_t len = upstream_window_minutes(w);

	return st->ring_minute >= len ? st->ring_minute - len : 0;
}

uint64_t
upstream_quota_count(const struct upstream_state *st, uint64_t now_ms, enum upstream_window w)
{
	uint64_t len = upstream_window_minutes(w);
	uint64_t t = now_ms / UPSTREAM_MINUTE_MS;
	uint64_t sum = w == UPSTREAM_WINDOW_DAY ? st->day_sum : st->hour_sum;
	uint64_t m, last_gone;

	/* A clock that went back counts as standing still: counts never come back early. */
	if (t <= st->ring_minute)
		return sum;
	if (t < len + 1)
		return sum;
	/* At minute t, minutes up to t-len-1 have left the window. */
	last_gone = t - len - 1;
	if (last_gone >= st->ring_minute)
		return 0;
	for (m = upstream_window_first(st, w); m <= last_gone; m++)
		sum -= st->ring[m % UPSTREAM_RING];
	return sum;
}

static uint64_t
upstream_window_allowance(const struct upstream_state *st, uint64_t now_ms, enum upstream_window w)
{
	uint64_t limit = upstream_window_limit(st, w);
	uint64_t count;

	if (limit == 0)
		return UINT64_MAX;
	count = upstream_quota_count(st, now_ms, w);
	return count >= limit ? 0 : limit - count;
}

uint64_t
upstream_quota_allowance(const struct upstream_state *st, uint64_t now_ms)
{
	uint64_t day = upstream_window_allowance(st, now_ms, UPSTREAM_WINDOW_DAY);
	uint64_t hour = upstream_window_allowance(st, now_ms, UPSTREAM_WINDOW_HOUR);

	return day < hour ? day : hour;
}

/*
 * Earliest time >= now_ms when at least `excess` recipients have left window w: walk the buckets
 * from the oldest; minute m leaves the window at the start of minute m + len + 1.
 */
static uint64_t
upstream_window_drain_at(const struct upstream_state *st, uint64_t now_ms, enum upstream_window w,
    uint64_t excess)
{
	uint64_t len = upstream_window_minutes(w);
	uint64_t t = now_ms / UPSTREAM_MINUTE_MS;
	uint64_t m, acc = 0, first = upstream_window_first(st, w);

	if (excess == 0)
		return now_ms;
	if (t > st->ring_minute && t >= len + 1 && t - len - 1 >= first)
		first = t - len - 1 + 1;
	for (m = first; m <= st->ring_minute; m++) {
		acc += st->ring[m % UPSTREAM_RING];
		if (acc >= excess) {
			uint64_t at = upstream_mul_sat(m + len + 1, UPSTREAM_MINUTE_MS);

			return at > now_ms ? at : now_ms;
		}
	}
	return UINT64_MAX;
}

static uint64_t
upstream_window_free_at(const struct upstream_state *st, uint64_t now_ms, enum upstream_window w,
    uint64_t need)
{
	uint64_t limit = upstream_window_limit(st, w);
	uint64_t count;

	if (limit == 0)
		return now_ms;
	if (need > limit)
		return UINT64_MAX;
	count = upstream_quota_count(st, now_ms, w);
	if (count + need <= limit)
		return now_ms;
	return upstream_window_drain_at(st, now_ms, w, count + need - limit);
}

uint64_t
upstream_quota_free_at_ms(const struct upstream_state *st, uint64_t now_ms, uint64_t need)
{
	/* Counts only fall as time passes, so the later of the two is when both allow. */
	uint64_t day = upstream_window_free_at(st, now_ms, UPSTREAM_WINDOW_DAY, need);
	uint64_t hour = upstream_window_free_at(st, now_ms, UPSTREAM_WINDOW_HOUR, need);

	return day > hour ? day : hour;
}

void
upstream_quota_add(struct upstream_state *st, uint64_t at_ms, uint64_t n)
{
	uint64_t m = at_ms / UPSTREAM_MINUTE_MS;
	uint32_t *b;

	if (m > st->ring_minute)
		upstream_ring_advance(st, m);
	if (m + UPSTREAM_DAY_MINUTES < st->ring_minute)
		return;
	b = &st->ring[m % UPSTREAM_RING];
	if (n > UINT32_MAX - *b)
		n = UINT32_MAX - *b;
	*b += (uint32_t)n;
	st->day_sum += n;
	if (m + UPSTREAM_HOUR_MINUTES >= st->ring_minute)
		st->hour_sum += n;
}

void
upstream_quota_remove(struct upstream_state *st, uint64_t at_ms, uint64_t n)
{
	uint64_t m = at_ms / UPSTREAM_MINUTE_MS;
	uint32_t *b;

	if (m > st->ring_minute || m + UPSTREAM_DAY_MINUTES < st->ring_minute)
		return;
	b = &st->ring[m % UPSTREAM_RING];
	if (n > *b)
		n = *b;
	*b -= (uint32_t)n;
	st->day_sum -= n;
	if (m + UPSTREAM_HOUR_MINUTES >= st->ring_minute)
		st->hour_sum -= n;
}

void
upstream_quota_rebuild(struct upstream_state *st, uint64_t now_ms,
    const struct upstream_count *list, size_t n)
{
	size_t i;

	HK_ASSERT(list != NULL || n == 0);
	memset(st->ring, 0, sizeof(st->ring));
	st->day_sum = 0;
	st->hour_sum = 0;
	st->ring_minute = now_ms / UPSTREAM_MINUTE_MS;
	for (i = 0; i < n; i++)
		upstream_quota_add(st, list[i].at_ms < now_ms ? list[i].at_ms : now_ms,
		    list[i].count);
}

void
upstream_spill(struct upstream_state *st, uint64_t now_ms, enum upstream_window w,
    uint64_t until_ms, const char *text)
{
	upstream_set_error(st, now_ms, text);
	if (until_ms == 0) {
		/* The provider counted what we sent: wait until our oldest send leaves. */
		until_ms = upstream_window_drain_at(st, now_ms, w, 1);
		if (until_ms == UINT64_MAX || until_ms <= now_ms)
			until_ms = upstream_add_sat(now_ms,
			    upstream_window_minutes(w) * UPSTREAM_MINUTE_MS);
	}
	if (until_ms > st->paused_until_ms)
		st->paused_until_ms = until_ms;
}

uint64_t
upstream_paused_until_ms(const struct upstream_state *st)
{
	return st->paused_until_ms;
}

/* Rate and connections ----------------------------------------------------------------------- */

/* Microseconds between two recipients, rounded up; 0 when unlimited. */
static uint64_t
upstream_rate_interval_us(const struct upstream_state *st)
{
	uint64_t count = st->limits.rate_count;
	uint64_t period_us;

	if (count == 0)
		return 0;
	period_us = upstream_mul_sat(st->limits.rate_period_ms, 1000);
	return period_us / count + (period_us % count != 0);
}

uint64_t
upstream_rate_next_ms(const struct upstream_state *st, uint64_t now_ms)
{
	uint64_t next;

	if (upstream_rate_interval_us(st) == 0)
		return now_ms;
	next = st->rate_tat_us / 1000 + (st->rate_tat_us % 1000 != 0);
	return next > now_ms ? next : now_ms;
}

void
upstream_rate_take(struct upstream_state *st, uint64_t at_ms, uint64_t n)
{
	uint64_t iv = upstream_rate_interval_us(st);
	uint64_t at_us = upstream_mul_sat(at_ms, 1000);

	if (iv == 0)
		return;
	if (st->rate_tat_us < at_us)
		st->rate_tat_us = at_us;
	st->rate_tat_us = upstream_add_sat(st->rate_tat_us, upstream_mul_sat(iv, n));
}

unsigned
upstream_conn_in_use(const struct upstream_state *st)
{
	return st->busy;
}

bool
upstream_conn_is_full(const struct upstream_state *st)
{
	return st->limits.connections != 0 && st->busy >= st->limits.connections;
}

/* Transactions ------------------------------------------------------------------------------- */

void
upstream_send_begin(struct upstream_state *st, uint64_t at_ms, uint64_t n_rcpt, bool probe)
{
	HK_ASSERT(!upstream_conn_is_full(st));
	if (probe) {
		HK_ASSERT(upstream_breaker_at(st, at_ms) == UPSTREAM_BREAKER_HALF_OPEN);
		HK_ASSERT(!st->probe_busy);
		st->probe_busy = true;
	}
	st->busy++;
	upstream_quota_add(st, at_ms, n_rcpt);
	upstream_rate_take(st, at_ms, n_rcpt);
}

void
upstream_send_end(struct upstream_state *st, uint64_t begin_at_ms, uint64_t n_counted,
    uint64_t n_accepted, bool probe)
{
	HK_ASSERT(st->busy > 0);
	st->busy--;
	if (n_accepted < n_counted)
		upstream_quota_remove(st, begin_at_ms, n_counted - n_accepted);
	if (probe)
		st->probe_busy = false;
}

/* EHLO facts --------------------------------------------------------------------------------- */

void
upstream_set_ehlo(struct upstream_state *st, bool smtputf8, bool eightbitmime, uint64_t size)
{
	st->ehlo_known = true;
	st->ehlo_smtputf8 = smtputf8;
	st->ehlo_8bitmime = eightbitmime;
	st->ehlo_size = size;
}

bool
upstream_ehlo_is_known(const struct upstream_state *st)
{
	return st->ehlo_known;
}

bool
upstream_ehlo_has_smtputf8(const struct upstream_state *st)
{
	return st->ehlo_smtputf8;
}

bool
upstream_ehlo_has_8bitmime(const struct upstream_state *st)
{
	return st->ehlo_8bitmime;
}

uint64_t
upstream_max_size(const struct upstream_state *st)
{
	uint64_t conf_max = st->limits.max_size;
	uint64_t ehlo_max = st->ehlo_known ? st->ehlo_size : 0;

	if (conf_max == 0)
		return ehlo_max;
	if (ehlo_max == 0)
		return conf_max;
	return conf_max < ehlo_max ? conf_max : ehlo_max;
}

/* Snapshot ----------------------------------------------------------------------------------- */

void
upstream_snapshot(const struct upstream_state *st, uint64_t now_ms, struct upstream_snapshot *out)
{
	memset(out, 0, sizeof(*out));
	out->breaker = upstream_breaker_at(st, now_ms);
	out->open = out->breaker != UPSTREAM_BREAKER_CLOSED;
	out->failures = st->failures;
	out->open_until_ms = upstream_open_until_ms(st);
	out->paused_until_ms = st->paused_until_ms > now_ms ? st->paused_until_ms : 0;
	out->sent_day = upstream_quota_count(st, now_ms, UPSTREAM_WINDOW_DAY);
	out->sent_hour = upstream_quota_count(st, now_ms, UPSTREAM_WINDOW_HOUR);
	out->per_day = st->limits.per_day;
	out->per_hour = st->limits.per_hour;
	out->connections_in_use = st->busy;
	out->connections = st->limits.connections;
	out->last_ok_ms = st->last_ok_ms;
	out->last_error_ms = st->last_error_ms;
	out->last_error = st->last_error.ptr != NULL ? st->last_error.ptr : "";
	if (out->open)
		out->health = UPSTREAM_HEALTH_DOWN;
	else if (out->paused_until_ms != 0 || upstream_quota_allowance(st, now_ms) == 0)
		out->health = UPSTREAM_HEALTH_PAUSED;
	else if (st->failures > 0)
		out->health = UPSTREAM_HEALTH_DEGRADED;
	else
		out->health = UPSTREAM_HEALTH_UP;
}

const char *
upstream_health_name(enum upstream_health h)
{
	static const char *const names[] = {
		[UPSTREAM_HEALTH_UP] = "up",
		[UPSTREAM_HEALTH_DEGRADED] = "degraded",
		[UPSTREAM_HEALTH_PAUSED] = "paused",
		[UPSTREAM_HEALTH_DOWN] = "down",
	};

	return (size_t)h < HK_ARRAY_LEN(names) ? names[h] : "unknown";
}

const char *
upstream_breaker_name(enum upstream_breaker b)
{
	static const char *const names[] = {
		[UPSTREAM_BREAKER_CLOSED] = "closed",
		[UPSTREAM_BREAKER_OPEN] = "open",
		[UPSTREAM_BREAKER_HALF_OPEN] = "half_open",
	};

	return (size_t)b < HK_ARRAY_LEN(names) ? names[b] : "unknown";
}
