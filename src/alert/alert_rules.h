/*
 * alert_rules.h - the alert rule engine (DESIGN.md 10): decides WHEN to notify and about WHAT,
 * from delivery and ingress events and from polled gauges, per the rules under alerts.rules.
 *
 * Pure: no I/O, no clock of its own (every call takes now_ms), no libraries. Notices leave
 * through the emit callback given to alert_rules_new(); alert.c turns them into alert_msg and
 * hands them to the channels.
 *
 * Model: each rule keeps groups (one per upstream, recipient domain, or one per rule, after
 * group_by). A group is idle or open. It opens when its condition holds (a count of events in
 * the window reaching threshold, a rate over the window above threshold with enough samples, a
 * gauge past threshold, an upstream breaker opening) and emits ALERT_KIND_OPEN. A cooldown then
 * starts: within it the group stays quiet and only counts what happens (the digest). At the end
 * of each cooldown, if anything happened, it emits one ALERT_KIND_DIGEST (counts and a few sample
 * lines) and a new cooldown starts. When the condition clears, the group closes with one
 * ALERT_KIND_RECOVERY (if the rule wants one), but never inside a cooldown: a recovery waits for
 * the cooldown's end and follows its digest, so notices never outrun the cooldown and a flapping
 * upstream cannot flood a channel. A group still open escalate.after after it opened emits one
 * ALERT_KIND_ESCALATION to the escalation channels.
 *
 * Ownership: the rules array is borrowed for the engine's life (alert.c keeps the conf snapshot
 * referenced); a notice and all its strings are borrowed for the emit call only.
 * Thread: loop thread only (no locks), or any single thread in tests.
 */
#ifndef HK_ALERT_RULES_H
#define HK_ALERT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../conf/conf.h"
#include "notify.h"

/* What the engines report. Strings are borrowed for the call; NULL or "" when unknown. */
enum alert_event_type {
	ALERT_EV_SENT = 0,       /* a recipient delivered */
	ALERT_EV_BOUNCED,        /* a recipient failed permanently */
	ALERT_EV_EXPIRED,        /* a recipient gave up after retry.max_age */
	ALERT_EV_DEFERRED,       /* a recipient deferred; age_ms is the message's age */
	ALERT_EV_UPSTREAM_DOWN,  /* an upstream's breaker opened */
	ALERT_EV_UPSTREAM_UP,    /* an upstream's breaker closed again */
	ALERT_EV_FAILOVER,       /* recipients moved from upstream to to_upstream */
	ALERT_EV_AUTH_FAILURE,   /* an ingress AUTH attempt failed */
	ALERT_EV_DNS_WORSE,      /* a scheduled DNS check got worse; rcpt_domain: the domain */
};

struct alert_event {
	enum alert_event_type type;
	const char *qid;           /* 16 hex digits, or NULL */
	const char *upstream;      /* upstream name ("mx" for direct delivery) */
	const char *to_upstream;   /* FAILOVER: where the recipients went */
	const char *sender_domain;
	const char *rcpt_domain;
	const char *route;
	int code;                  /* the reply code, 0 when none */
	const char *enhanced;      /* "5.1.1", or NULL */
	const char *text;          /* the reply text (or the local failure), or NULL */
	uint64_t age_ms;           /* DEFERRED: time since the message was received */
	const char *peer;          /* AUTH_FAILURE: client address */
};

/* Gauges alert.c polls. key names the object: upstream, listener, or NULL for global ones. */
enum alert_gauge {
	ALERT_GAUGE_QUOTA_PCT = 0, /* key: upstream; percent of its tightest quota used */
	ALERT_GAUGE_QUEUE_SIZE,    /* messages in the queue */
	ALERT_GAUGE_QUEUE_AGE_MS,  /* age of the oldest queued message */
	ALERT_GAUGE_CERT_LEFT_MS,  /* key: listener; time until its certificate's notAfter */
	ALERT_GAUGE_DISK_FREE_PCT, /* free space of the spool's file system, percent */
};

#define ALERT_RULES_SAMPLES 5     /* sample lines kept per digest */
#define ALERT_RULES_SAMPLE_LEN 240 /* bytes per sample line, without NUL */

/* One notice, borrowed for the emit call. */
struct alert_notice {
	enum alert_kind kind;           /* OPEN, DIGEST, ESCALATION or RECOVERY */
	const struct conf_alert_rule *rule;
	size_t rule_index;
	const char *group;              /* the grouping key value, "" for per-rule */
	char *const *channels;          /* rule channels, or escalation channels for ESCALATION */
	size_t n_channels;
	uint64_t since_ms;              /* when the group opened */
	uint64_t at_ms;                 /* now */
	uint64_t affected;              /* matching events since it opened (open: those that opened it) */
	uint64_t count;                 /* DIGEST: events since the last notice ("N more") */
	uint64_t value;                 /* current value: count/rate %/gauge, in the rule's unit */
	uint64_t samples;               /* rates: outcomes in the window */
	const char *lines[ALERT_RULES_SAMPLES]; /* DIGEST: sample lines */
	size_t n_lines;
	int last_code;                  /* last reply seen in the group, 0 when none */
	const char *last_enhanced;      /* "" when none */
	const char *last_text;          /* "" when none */
	const char *last_upstream;      /* "" when none */
	const char *last_qid;           /* "" when none */
};

typedef void (*alert_rules_emit_fn)(void *arg, const struct alert_notice *n);

struct alert_rules_params {
	const struct conf_alert_rule *rules; /* borrowed */
	size_t n_rules;
	alert_rules_emit_fn emit;
	void *emit_arg;
	int tz_offset_s;       /* local time minus UTC, for filters.hours */
	size_t max_groups;     /* bound on groups over all rules; 0: 1024 */
};

struct alert_rules;

struct alert_rules *alert_rules_new(const struct alert_rules_params *p);
/* NULL: no-op. Emits nothing. */
void alert_rules_free(struct alert_rules *ar);
/* Feed one event at now_ms. May emit OPEN notices. */
void alert_rules_event(struct alert_rules *ar, const struct alert_event *ev, uint64_t now_ms);
/* Feed a gauge reading at now_ms. May emit OPEN notices (recoveries come from tick). */
void alert_rules_gauge(struct alert_rules *ar, enum alert_gauge g, const char *key,
    uint64_t value, uint64_t now_ms);
/* Advance time: ends cooldowns (digests, held recoveries), escalations, clears by window. */
void alert_rules_tick(struct alert_rules *ar, uint64_t now_ms);
/* Open groups and groups tracked (for checks and the API). */
size_t alert_rules_open_count(const struct alert_rules *ar);
size_t alert_rules_group_count(const struct alert_rules *ar);
/* Groups refused because max_groups was reached (each also counted once per refusal). */
uint64_t alert_rules_dropped(const struct alert_rules *ar);

/* Config words: "permanent_failure", ...; NULL for out-of-range values. */
const char *alert_rules_when_name(enum conf_alert_when w);
const char *alert_rules_group_name(enum conf_alert_group g);
/* Is the condition's threshold a percentage / a duration? (for messages and validation) */
bool alert_rules_when_is_percent(enum conf_alert_when w);
bool alert_rules_when_is_duration(enum conf_alert_when w);

#endif
