/*
 * alert.h - the alert engine on the event loop (DESIGN.md 10): feeds delivery and ingress events
 * and polled gauges into the rule engine (alert_rules.h), turns its notices into struct alert_msg
 * (what happened, since when, how many messages, the last upstream reply explained, what to do),
 * hands them to the channels through the send callback, logs each one
 * (mod=alert event=alert_open|alert_digest|alert_escalation|alert_recovery) and keeps the open
 * and recent alerts (bounded) for GET /api/v1/alerts.
 *
 * Gauges: every few seconds the engine reads statvfs() of the spool and asks poll() for the rest
 * (queue size and oldest age, upstream quotas), which the daemon wires to the scheduler and the
 * relay. The TLS certificate's notAfter (tls.cert, used by every TLS listener) is read at start,
 * on reload and hourly.
 *
 * alerts.time_scale (tests only): rule windows, cooldowns and escalation delays are divided by
 * it, and the engine ticks that much faster, so tests need no long sleeps.
 *
 * Ownership: conf is referenced; strings handed in are copied. Thread: loop thread only.
 */
#ifndef HK_ALERT_H
#define HK_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "../conf/conf.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "alert_rules.h"
#include "notify.h"

struct alert;

/*
 * Deliver m to the channel named channel: notify_send() in the daemon (a fake in tests).
 * 0 accepted; -1 with err (no such channel). Strings in m are borrowed for the call.
 */
typedef int (*alert_send_fn)(void *arg, const char *channel, const struct alert_msg *m,
    struct hk_err *err);
/* Called every poll period: report gauges with alert_gauge(). */
typedef void (*alert_poll_fn)(void *arg, struct alert *a);

struct alert_params {
	struct event_base *base;
	struct conf *conf;        /* referenced */
	alert_send_fn send;       /* NULL: notices are only logged and listed */
	void *send_arg;
	alert_poll_fn poll;       /* NULL: only the spool's disk and the certificate are watched */
	void *poll_arg;
	bool no_timers;           /* tests: no tick/poll events; call alert_tick() */
};

struct alert *alert_new(const struct alert_params *p, struct hk_err *err);
/* Use conf's rules from now on: open alerts of rules that keep their name stay open. */
HK_MUST_CHECK int alert_reload(struct alert *a, struct conf *conf, struct hk_err *err);
/* NULL: no-op. */
void alert_free(struct alert *a);

/* Feed an event now (strings borrowed for the call). */
void alert_event(struct alert *a, const struct alert_event *ev);
/* Feed a gauge reading now. */
void alert_gauge(struct alert *a, enum alert_gauge g, const char *key, uint64_t value);
/* Run the timers' work now (tests): gauges polled, cooldowns, escalations, recoveries. */
void alert_tick(struct alert *a);

/* {"alerts":[...]} of the open alerts, then the recent ones, newest first. */
void alert_list_json(const struct alert *a, struct buf *out);
/* Notices made since start, by kind (ALERT_KIND_OPEN ...), for /metrics and tests. */
uint64_t alert_notices(const struct alert *a, enum alert_kind k);

#endif
