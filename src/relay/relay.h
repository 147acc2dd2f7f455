/*
 * relay.h - the delivery engine (DESIGN.md 4 and 7): takes due messages from the scheduler,
 * routes their recipients, chooses upstreams (or MX hosts), runs SMTP transactions, classifies
 * every outcome, and records the result: envelope updates in the spool, events in the email log,
 * daemon and Postfix-style log lines, DSNs to senders.
 *
 * A pass over one message: load the envelope and body; expire it if past retry.max_age; group
 * the unfinished recipients by route (and by domain for mx: true routes); for each group, ask
 * choose_upstream() from the top of the route's list and run transactions; NEXT and SPILL
 * verdicts move the recipients to the next eligible upstream at once; the pass ends when every
 * recipient has a verdict for now (SENT, BOUNCE, DEFER, or WAIT for a quota window, breaker or
 * rate slot). Then: all final -> terminal events committed to the email log, DSNs queued, the
 * message finished in the spool; otherwise the envelope is rewritten with per-recipient states and
 * the next attempt time, and the message goes back to the scheduler.
 * Thread: loop thread only.
 */
#ifndef HK_RELAY_H
#define HK_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "../conf/conf.h"
#include "../db/maillog.h"
#include "../dns/dns.h"
#include "../sched/sched.h"
#include "../spool/spool.h"
#include "../util/err.h"
#include "../util/id.h"

struct relay;

/* What the relay tells the alert engine (relay_params.on_event); see struct relay_event. */
enum relay_event_type {
	RELAY_EVENT_SENT = 0,      /* a recipient delivered (end of a pass) */
	RELAY_EVENT_BOUNCED,       /* a recipient failed permanently (end of a pass) */
	RELAY_EVENT_EXPIRED,       /* a recipient gave up at retry.max_age (end of a pass) */
	RELAY_EVENT_DEFERRED,      /* a recipient deferred (end of a pass) */
	RELAY_EVENT_UPSTREAM_DOWN, /* an upstream's breaker opened */
	RELAY_EVENT_UPSTREAM_UP,   /* an upstream's breaker closed again */
	RELAY_EVENT_FAILOVER,      /* a recipient moved on from upstream to the next eligible one */
};

/* One event; every string is borrowed for the callback only and may be NULL or "". */
struct relay_event {
	enum relay_event_type type;
	const char *qid;
	const char *upstream;      /* "mx" for direct delivery */
	const char *from_domain;   /* the envelope sender's domain */
	const char *rcpt_domain;
	const char *route;
	int code;                  /* reply code; 0 for a local failure (timeouts, DNS, ...) */
	const char *enhanced;      /* "5.1.1" or "" */
	const char *text;          /* the reply text or the local failure */
	uint64_t age_ms;           /* time since the message was received */
};

typedef void (*relay_event_fn)(void *arg, const struct relay_event *ev);

struct relay_params {
	struct event_base *base;
	struct conf *conf;       /* referenced */
	struct spool *spool;     /* borrowed */
	struct dns *dns;         /* borrowed */
	struct maillog *maillog; /* borrowed; NULL: no email log */
	struct sched *sched;     /* borrowed: messages go back here after a pass */
	struct id_gen *ids;      /* borrowed: IDs for DSNs */
	relay_event_fn on_event; /* optional: delivery events for alerts, on the loop */
	void *on_event_arg;
};

/* Upstream passwords are read here (password_file); a missing file is an error. */
struct relay *relay_new(const struct relay_params *p, struct hk_err *err);
/* The scheduler's ready callback: start a pass over id; false when at capacity. */
bool relay_ready(struct relay *r, uint64_t id);
/* Use conf for passes started from now on (upstream states are kept by name). -1: kept old. */
HK_MUST_CHECK int relay_reload(struct relay *r, struct conf *conf, struct hk_err *err);
/* Rebuild the quota windows from the email log's attempts (at start). */
void relay_rebuild_quotas(struct relay *r);
/* Stop taking messages; done_cb once no pass is running. */
void relay_shutdown(struct relay *r, void (*done_cb)(void *arg), void *arg);
size_t relay_active(const struct relay *r);
/* Messages the relay keeps waiting for a connection or a probe (not in the scheduler). */
size_t relay_waiting(const struct relay *r);
/* The smallest ID in a pass or waiting in the relay, 0 when none (queue age gauge). */
uint64_t relay_oldest_id(const struct relay *r);

/* Counters since start, for /metrics: attempts by verdict, recipients by the pass's outcome. */
struct relay_stats {
	uint64_t attempts_sent, attempts_next, attempts_spill, attempts_deferred, attempts_bounced;
	uint64_t rcpts_sent, rcpts_bounced, rcpts_expired, rcpts_deferred; /* per pass verdicts */
	uint64_t messages_finished;  /* left the queue, every recipient final */
	uint64_t maybe_delivered;    /* attempts cut after the final dot */
};
void relay_stats(const struct relay *r, struct relay_stats *out);
/*
 * Messages waiting for a connection or a probe are kept by the relay, not the scheduler (docs/
 * delivery.md). Take one out (true when it was there), or hand them all to the scheduler, due
 * now (how many).
 */
bool relay_evwait_take(struct relay *r, uint64_t id);
size_t relay_evwait_flush(struct relay *r);
void relay_free(struct relay *r);

struct upstream_snapshot;
/*
 * Copy out the runtime state of the configured upstream name (for the API and metrics); false
 * when there is none by that name. out->last_error is borrowed until the state next changes.
 */
bool relay_upstream_snapshot(const struct relay *r, const char *name, uint64_t now_ms,
    struct upstream_snapshot *out);
/*
 * Is message id in a delivery pass right now (loaded, in transactions, or waiting for its
 * envelope update or finish)? Queue control refuses to change such a message.
 */
bool relay_is_active(const struct relay *r, uint64_t id);

#endif
