/*
 * notify.h - alert channels (DESIGN.md 9 and 10): email, Slack, Microsoft Teams, Twilio SMS and
 * signed webhooks, configured under alerts.channels[] and addressed by name.
 *
 * The rule engine (alert.c) decides WHAT to say and WHEN; this module only delivers one
 * struct alert_msg to one named channel: it builds the channel's payload (pure builders in
 * notify_<type>.c), sends it over HTTP with libcurl multi on the event loop (never blocking
 * delivery), retries with backoff (honouring Retry-After on 429/503) within the channel's
 * retries, and logs and counts every outcome (hikyaku_alerts_sent_total{channel,result},
 * hikyaku_alerts_failed_total{channel}). Nothing is dropped silently: a send that exhausted its
 * retries is logged at error level with the alert's title and counted as failed.
 *
 * The email channel builds an RFC 5322 message and commits it through the daemon's normal
 * submission (notify_params.submit): it then goes through the spool and the relay like any mail,
 * so an upstream that is down (open breaker) is skipped by ordinary failover.
 *
 * Thread: loop thread only.
 */
#ifndef HK_NOTIFY_H
#define HK_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "../conf/conf.h"
#include "../util/err.h"

enum alert_kind {
	ALERT_KIND_OPEN = 0,   /* a problem started (first notice of its group) */
	ALERT_KIND_DIGEST,     /* what happened during the cooldown, while still open */
	ALERT_KIND_ESCALATION, /* still open after the rule's escalation delay */
	ALERT_KIND_RECOVERY,   /* the condition cleared */
	ALERT_KIND_TEST,       /* hikyaku alert test CHANNEL */
};

enum alert_severity {
	ALERT_SEVERITY_INFO = 0,
	ALERT_SEVERITY_WARNING,
	ALERT_SEVERITY_CRITICAL,
};

/* One notice. Every string is borrowed for the duration of notify_send() (which copies). */
struct alert_msg {
	enum alert_kind kind;
	enum alert_severity severity;
	const char *id;        /* stable id of the alert (its group), e.g. "upstream_down:primary" */
	const char *rule;      /* rule name from the configuration */
	const char *group;     /* grouping key value ("primary", "gmail.com", "" for per-rule) */
	const char *title;     /* one line: what happened */
	const char *text;      /* details, several lines allowed (digest lines, counts) */
	uint64_t since_ms;     /* when the problem started (wall clock, ms) */
	uint64_t at_ms;        /* when this notice was made */
	uint64_t affected;     /* messages affected so far */
	const char *reply;     /* the last upstream reply, or NULL */
	const char *cause;     /* the reply explained in plain words (explain.h), or NULL */
	const char *fix;       /* what to do, or NULL */
	const char *node;      /* conf->node */
};

/* Outcome of a send, on the loop, exactly once per notify_send() that returned 0. */
typedef void (*notify_done_fn)(void *ctx, bool ok, const char *why);

/*
 * The email channel's way into the spool: commit a message from mail_from to rcpts with the
 * RFC 5322 text data[0..len) (CRLF line ends). 0 when handed over (done later, on the loop:
 * rc 0 queued, -1 failed with a reason); -1 with err when refused at once.
 */
typedef int (*notify_submit_fn)(void *arg, const char *mail_from, char *const *rcpts,
    size_t n_rcpts, const char *data, size_t len,
    void (*done)(void *ctx, int rc, const char *why), void *ctx, struct hk_err *err);

struct notify_params {
	struct event_base *base;
	struct conf *conf;         /* referenced */
	notify_submit_fn submit;   /* NULL: email channels fail with "no submission path" */
	void *submit_arg;
};

struct notify;

/* Secrets (url_file, secret_file, token files) are read here; a missing file is an error. */
struct notify *notify_new(const struct notify_params *p, struct hk_err *err);
/* Use conf's channels from now on; sends in flight finish on their old settings. -1: kept old. */
HK_MUST_CHECK int notify_reload(struct notify *n, struct conf *conf, struct hk_err *err);
/*
 * Deliver m to the channel named channel. 0: accepted (done, when not NULL, runs later on the
 * loop); -1 with err: no such channel (HK_E_NOTFOUND; err names the channels that exist).
 */
int notify_send(struct notify *n, const char *channel, const struct alert_msg *m,
    notify_done_fn done, void *ctx, struct hk_err *err);
/* Is there a channel by this name? */
bool notify_has_channel(const struct notify *n, const char *channel);

/* Per-channel counters for /metrics, in configuration order. */
struct notify_channel_stats {
	const char *name;  /* borrowed until the next reload */
	const char *type;  /* "email", "slack", "teams", "twilio", "webhook" */
	uint64_t sent_ok, sent_failed, retries;
};
/* Calls each() once per channel. */
void notify_stats(const struct notify *n,
    void (*each)(void *ctx, const struct notify_channel_stats *s), void *ctx);
/* Stop: cancel timers, abort transfers (logged as failed), free. NULL: no-op. */
void notify_free(struct notify *n);

const char *alert_kind_name(enum alert_kind k);         /* "open", "digest", ... */
const char *alert_severity_name(enum alert_severity s); /* "info", "warning", "critical" */

#endif
