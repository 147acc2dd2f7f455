/*
 * upstream.h - runtime state of one upstream: circuit breaker, quota windows, SPILL pause, rate
 * slots, connections in use, what its EHLO offered, and the last error (DESIGN.md 7).
 *
 * Pure state machine: every function that depends on time takes now_ms (wall-clock milliseconds);
 * nothing here reads a clock, does I/O or logs. The caller (sched, on the loop) reports events and
 * asks questions; choose.c combines the answers of several upstreams.
 *
 * Units: per_day, per_hour and rate all count RECIPIENTS handed to the upstream (a message to
 * three recipients counts 3). Providers' quotas mostly count recipients (Gmail's 500/day, SES,
 * Microsoft 365); for one that counts messages, counting recipients is the safe side.
 *
 * Invariants:
 * - Breaker: closed -> open after UPSTREAM_BREAKER_FAILURES consecutive session-level failures,
 *   or at once on an AUTH rejection. Open for 30 s, doubling on each reopening up to 10 min.
 *   Once open_until_ms has passed it is half-open: exactly one probe message may go; success
 *   closes it and resets the wait to 30 s, failure reopens it with the doubled wait.
 * - Quota windows roll: one bucket per wall-clock minute. The day window at minute T holds the
 *   buckets of minutes T-1440 .. T, the hour window T-60 .. T, so a recipient counted at time s
 *   leaves the window at floor(s / 1 min) + 24 h + 1 min (hour: + 1 h + 1 min): never earlier
 *   than the provider's own rolling window, at most one minute later.
 * - Rate: GCRA without burst: sends are spaced by period/count (rounded up to the microsecond),
 *   a transaction of n recipients takes n slots, so no window of one period ever holds more than
 *   count recipients.
 * - A limit of 0 means unlimited (per_day, per_hour, rate count, connections, max_size).
 * Ownership: upstream_state_new() returns a state the caller frees with upstream_state_free();
 * the limits are copied in (a config reload calls upstream_state_set_limits()). Strings passed in
 * are copied; strings returned are borrowed until the next call that changes the state.
 * Thread: the loop thread only (no locks).
 * Failure: none at run time; misuse (e.g. beginning a probe that choose did not offer) is a bug
 * and aborts.
 */
#ifndef HK_SCHED_UPSTREAM_H
#define HK_SCHED_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../conf/conf.h"
#include "../util/common.h"

#define UPSTREAM_BREAKER_FAILURES 3u
#define UPSTREAM_BREAKER_MIN_MS (30 * 1000ull)
#define UPSTREAM_BREAKER_MAX_MS (10 * 60 * 1000ull)
#define UPSTREAM_MINUTE_MS (60 * 1000ull)
#define UPSTREAM_DAY_MINUTES 1440u
#define UPSTREAM_HOUR_MINUTES 60u

struct upstream_state;

enum upstream_breaker {
	UPSTREAM_BREAKER_CLOSED,
	UPSTREAM_BREAKER_OPEN,      /* no traffic until open_until */
	UPSTREAM_BREAKER_HALF_OPEN, /* one probe message may go */
};

enum upstream_window { UPSTREAM_WINDOW_HOUR, UPSTREAM_WINDOW_DAY };

enum upstream_health {
	UPSTREAM_HEALTH_UP,       /* closed, no recent failure */
	UPSTREAM_HEALTH_DEGRADED, /* closed, but the last session(s) failed */
	UPSTREAM_HEALTH_PAUSED,   /* quota: SPILL pause or a window full */
	UPSTREAM_HEALTH_DOWN,     /* breaker open or half-open */
};

/* One past attempt for upstream_quota_rebuild(): count recipients handed over at at_ms. */
struct upstream_count {
	uint64_t at_ms;
	uint32_t count;
};

/* A copy-out view for the API and CLI ("health, open circuit?, sent today/this hour vs limits"). */
struct upstream_snapshot {
	enum upstream_health health;
	enum upstream_breaker breaker;
	bool open;                  /* breaker open or half-open */
	unsigned failures;          /* consecutive session-level failures */
	uint64_t open_until_ms;     /* when open: the moment it turns half-open */
	uint64_t paused_until_ms;   /* SPILL pause end; 0 when not paused */
	uint64_t sent_day, sent_hour;   /* recipients in the rolling windows */
	uint64_t per_day, per_hour;     /* the limits; 0 = unlimited */
	unsigned connections_in_use, connections;
	uint64_t last_ok_ms, last_error_ms; /* 0: never */
	const char *last_error;     /* "" when none; borrowed until the state next changes */
};

/* A fresh state: closed, nothing counted, limits copied from lim. */
struct upstream_state *upstream_state_new(const struct conf_upstream_limits *lim);
void upstream_state_free(struct upstream_state *st);
/* The first open wait (doubling from there to UPSTREAM_BREAKER_MAX_MS); 0: the 30 s default. */
void upstream_state_set_breaker_min(struct upstream_state *st, uint64_t ms);
/* Replace the limits (config reload); counts, breaker and pause are kept. */
void upstream_state_set_limits(struct upstream_state *st, const struct conf_upstream_limits *lim);
const struct conf_upstream_limits *upstream_limits(const struct upstream_state *st);

/* Breaker ------------------------------------------------------------------------------------ */

/* The breaker as seen at now_ms (open turns half-open by itself once open_until has passed). */
enum upstream_breaker upstream_breaker_at(const struct upstream_state *st, uint64_t now_ms);
/* When open: the moment it turns half-open. */
uint64_t upstream_open_until_ms(const struct upstream_state *st);
/* True while the one half-open probe is in flight. */
bool upstream_probe_is_busy(const struct upstream_state *st);

/*
 * A session reached the transaction stage (connected, TLS, AUTH accepted): closes the breaker,
 * resets the failure count and the open wait to 30 s, ends any probe. Message- or recipient-level
 * replies after that point do not count against the upstream.
 */
void upstream_session_ok(struct upstream_state *st, uint64_t now_ms);
/*
 * A session-level failure (DNS, connect, TLS, certificate, greeting not 220, 421, lost before the
 * final dot). Closed: counts, opening at the 3rd in a row. Half-open: reopens with the doubled
 * wait. Already open (a session begun before it opened): only recorded. text is the error to show.
 */
void upstream_session_failed(struct upstream_state *st, uint64_t now_ms, const char *text);
/* AUTH rejected (530/534/535/454): opens at once (doubled wait when half-open). */
void upstream_auth_failed(struct upstream_state *st, uint64_t now_ms, const char *text);
/* Record an error text that has no effect on the breaker (message-level replies). */
void upstream_note_error(struct upstream_state *st, uint64_t now_ms, const char *text);

/* Quota windows and SPILL ---------------------------------------------------------------------- */

/* Recipients counted in the rolling window at now_ms. */
uint64_t upstream_quota_count(const struct upstream_state *st, uint64_t now_ms,
    enum upstream_window w);
/* How many more recipients both windows allow at now_ms (UINT64_MAX when both are unlimited). */
uint64_t upstream_quota_allowance(const struct upstream_state *st, uint64_t now_ms);
/*
 * Earliest time >= now_ms at which both windows allow need more recipients; UINT64_MAX when need
 * exceeds a limit (it never will).
 */
uint64_t upstream_quota_free_at_ms(const struct upstream_state *st, uint64_t now_ms, uint64_t need);
/* Count n recipients handed over at at_ms (a time before the window is ignored). */
void upstream_quota_add(struct upstream_state *st, uint64_t at_ms, uint64_t n);
/* Give back up to n recipients counted at at_ms (refused recipients, failed transaction). */
void upstream_quota_remove(struct upstream_state *st, uint64_t at_ms, uint64_t n);
/*
 * Start over from the email log's attempts (start-up): forget all counts, then count each entry
 * that is still inside the day window at now_ms (entries after now_ms count at now_ms).
 */
void upstream_quota_rebuild(struct upstream_state *st, uint64_t now_ms,
    const struct upstream_count *list, size_t n);

/*
 * SPILL: the provider says its quota is used up (550 5.4.5, 421 4.7.28, ...). Pause this upstream
 * until until_ms when nonzero (a time the caller knows, e.g. from the reply), else until the
 * oldest recipient counted in window w leaves it, or one whole window from now when nothing is
 * counted. A pause is never shortened by a later SPILL. text is recorded as the last error.
 */
void upstream_spill(struct upstream_state *st, uint64_t now_ms, enum upstream_window w,
    uint64_t until_ms, const char *text);
/* End of the SPILL pause; <= now_ms (or 0) when not paused. */
uint64_t upstream_paused_until_ms(const struct upstream_state *st);

/* Rate and connections ------------------------------------------------------------------------- */

/* Earliest time >= now_ms at which the next send is allowed by `rate`. */
uint64_t upstream_rate_next_ms(const struct upstream_state *st, uint64_t now_ms);
/* Take n rate slots for a send at at_ms. */
void upstream_rate_take(struct upstream_state *st, uint64_t at_ms, uint64_t n);
/* Transactions in progress. */
unsigned upstream_conn_in_use(const struct upstream_state *st);
/* True when `connections` transactions are in progress (never with connections: 0). */
bool upstream_conn_is_full(const struct upstream_state *st);

/* Transactions (what the caller does with a choose_result) ------------------------------------- */

/*
 * A transaction of n_rcpt recipients starts (or is scheduled) at at_ms: takes a connection, rate
 * slots and quota; with probe, takes the half-open probe slot (a bug unless it is free).
 */
void upstream_send_begin(struct upstream_state *st, uint64_t at_ms, uint64_t n_rcpt, bool probe);
/*
 * The transaction begun at begin_at_ms with n_counted recipients ended; n_accepted of them were
 * taken by the upstream (the rest are given back to the quota). With probe and no breaker outcome
 * reported, the probe slot is freed and the breaker stays half-open.
 */
void upstream_send_end(struct upstream_state *st, uint64_t begin_at_ms, uint64_t n_counted,
    uint64_t n_accepted, bool probe);

/* EHLO facts ----------------------------------------------------------------------------------- */

/* Remember what the upstream's EHLO offered (size 0: no SIZE limit advertised). */
void upstream_set_ehlo(struct upstream_state *st, bool smtputf8, bool eightbitmime, uint64_t size);
/* True when an EHLO was seen; then the three getters below are meaningful. */
bool upstream_ehlo_is_known(const struct upstream_state *st);
bool upstream_ehlo_has_smtputf8(const struct upstream_state *st);
bool upstream_ehlo_has_8bitmime(const struct upstream_state *st);
/* The largest message the upstream takes: the smaller of max_size and EHLO SIZE; 0 = no limit. */
uint64_t upstream_max_size(const struct upstream_state *st);

/* Snapshot ------------------------------------------------------------------------------------- */

void upstream_snapshot(const struct upstream_state *st, uint64_t now_ms,
    struct upstream_snapshot *out);
/* "up", "degraded", "paused", "down". */
const char *upstream_health_name(enum upstream_health h);
/* "closed", "open", "half_open". */
const char *upstream_breaker_name(enum upstream_breaker b);

#endif
