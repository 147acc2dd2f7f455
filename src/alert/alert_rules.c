/*
 * alert_rules.c - the alert rule engine: groups, windows, cooldowns, digests, recoveries and
 * escalations (see alert_rules.h for the model). Pure: time comes in as now_ms.
 *
 * Windows are rings of AR_BUCKETS counters, each window/AR_BUCKETS wide, so a storm of events
 * costs a constant amount of memory per group and a window's sum is exact to one bucket.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/common.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "alert_rules.h"
#include "../util/poison.h"

#define AR_BUCKETS 60
#define AR_KEY_MAX 255

struct ar_bucket {
	uint64_t idx; /* which slice of time this slot counts; stale slots are ignored */
	uint32_t bad, total;
};

struct ar_group {
	size_t rule;
	char key[AR_KEY_MAX + 1];
	bool open;
	bool clearing;       /* the condition cleared inside a cooldown: recovery at its end */
	bool escalated;
	bool gauge_bad;      /* gauge conditions: the last reading was past the threshold */
	bool down;           /* upstream_down: the breaker is open */
	uint64_t since_ms;
	uint64_t cooldown_end_ms; /* 0: not in a cooldown */
	uint64_t affected, pending, value;
	struct ar_bucket b[AR_BUCKETS];
	char lines[ALERT_RULES_SAMPLES][ALERT_RULES_SAMPLE_LEN + 1];
	size_t n_lines;
	int last_code;
	char last_enhanced[16];
	char last_text[ALERT_RULES_SAMPLE_LEN + 1];
	char last_upstream[65];
	char last_qid[17];
};

struct alert_rules {
	struct alert_rules_params p;
	struct ar_group **groups;
	size_t n_groups, max_groups;
	uint64_t dropped;
};

enum ar_class { AR_COUNT, AR_RATE, AR_STATE, AR_GAUGE };

static const struct {
	const char *name;
	enum ar_class cls;
	bool percent, duration, below;
	int gauge; /* enum alert_gauge, or -1 */
} ar_when[CONF_ALERT_WHEN_COUNT] = {
	[CONF_ALERT_PERMANENT_FAILURE] = { "permanent_failure", AR_COUNT, false, false, false, -1 },
	[CONF_ALERT_DEFERRED] = { "deferred", AR_COUNT, false, true, false, -1 },
	[CONF_ALERT_UPSTREAM_DOWN] = { "upstream_down", AR_STATE, false, false, false, -1 },
	[CONF_ALERT_FAILOVER] = { "failover", AR_COUNT, false, false, false, -1 },
	[CONF_ALERT_QUOTA] = { "quota", AR_GAUGE, true, false, false, ALERT_GAUGE_QUOTA_PCT },
	[CONF_ALERT_QUEUE_SIZE] = { "queue_size", AR_GAUGE, false, false, false,
	    ALERT_GAUGE_QUEUE_SIZE },
	[CONF_ALERT_QUEUE_AGE] = { "queue_age", AR_GAUGE, false, true, false,
	    ALERT_GAUGE_QUEUE_AGE_MS },
	[CONF_ALERT_BOUNCE_RATE] = { "bounce_rate", AR_RATE, true, false, false, -1 },
	[CONF_ALERT_DEFERRAL_RATE] = { "deferral_rate", AR_RATE, true, false, false, -1 },
	[CONF_ALERT_AUTH_FAILURES] = { "auth_failures", AR_COUNT, false, false, false, -1 },
	[CONF_ALERT_CERT_EXPIRY] = { "cert_expiry", AR_GAUGE, false, true, true,
	    ALERT_GAUGE_CERT_LEFT_MS },
	[CONF_ALERT_DISK_FREE] = { "disk_free", AR_GAUGE, true, false, true,
	    ALERT_GAUGE_DISK_FREE_PCT },
	[CONF_ALERT_DNS_CHECK] = { "dns_check", AR_COUNT, false, false, false, -1 },
};

const char *
alert_rules_when_name(enum conf_alert_when w)
{
	return (unsigned)w < CONF_ALERT_WHEN_COUNT ? ar_when[w].name : NULL;
}

const char *
alert_rules_group_name(enum conf_alert_group g)
{
	switch (g) {
	case CONF_ALERT_GROUP_UPSTREAM:
		return "upstream";
	case CONF_ALERT_GROUP_DOMAIN:
		return "domain";
	case CONF_ALERT_GROUP_RULE:
		return "rule";
	}
	return NULL;
}

bool
alert_rules_when_is_percent(enum conf_alert_when w)
{
	return (unsigned)w < CONF_ALERT_WHEN_COUNT && ar_when[w].percent;
}

bool
alert_rules_when_is_duration(enum conf_alert_when w)
{
	return (unsigned)w < CONF_ALERT_WHEN_COUNT && ar_when[w].duration;
}

struct alert_rules *
alert_rules_new(const struct alert_rules_params *p)
{
	struct alert_rules *ar = xcalloc(1, sizeof(*ar));
	size_t i;

	ar->p = *p;
	ar->max_groups = p->max_groups > 0 ? p->max_groups : 1024;
	ar->groups = xcalloc(ar->max_groups, sizeof(*ar->groups));
	for (i = 0; i < p->n_rules; i++)
		HK_ASSERT((unsigned)p->rules[i].when < CONF_ALERT_WHEN_COUNT);
	return ar;
}

void
alert_rules_free(struct alert_rules *ar)
{
	size_t i;

	if (ar == NULL)
		return;
	for (i = 0; i < ar->n_groups; i++)
		free(ar->groups[i]);
	free(ar->groups);
	free(ar);
}

/* ---- windows ---- */

static uint64_t
ar_width(const struct conf_alert_rule *r)
{
	uint64_t w = r->window_ms / AR_BUCKETS;

	return w > 0 ? w : 1;
}

static void
ar_window_add(struct ar_group *g, const struct conf_alert_rule *r, uint64_t now_ms, bool bad)
{
	uint64_t idx = now_ms / ar_width(r);
	struct ar_bucket *b = &g->b[idx % AR_BUCKETS];

	if (b->idx != idx) {
		b->idx = idx;
		b->bad = b->total = 0;
	}
	if (bad && b->bad < UINT32_MAX)
		b->bad++;
	if (b->total < UINT32_MAX)
		b->total++;
}

static void
ar_window_sum(const struct ar_group *g, const struct conf_alert_rule *r, uint64_t now_ms,
    uint64_t *bad, uint64_t *total)
{
	uint64_t idx = now_ms / ar_width(r);
	size_t i;

	*bad = *total = 0;
	for (i = 0; i < AR_BUCKETS; i++) {
		const struct ar_bucket *b = &g->b[i];

		if (b->total > 0 && b->idx <= idx && b->idx + AR_BUCKETS > idx) {
			*bad += b->bad;
			*total += b->total;
		}
	}
}

/* Does the group's condition hold now? Sets g->value to the current value. */
static bool
ar_holds(struct ar_group *g, const struct conf_alert_rule *r, uint64_t now_ms)
{
	uint64_t bad, total;

	switch (ar_when[r->when].cls) {
	case AR_COUNT:
		ar_window_sum(g, r, now_ms, &bad, &total);
		g->value = bad;
		/* deferred: the threshold is the message's age; one such message is enough. */
		return bad > 0 && (ar_when[r->when].duration || bad >= r->threshold);
	case AR_RATE:
		ar_window_sum(g, r, now_ms, &bad, &total);
		g->value = total > 0 ? bad * 100 / total : 0;
		return total > 0 && total >= r->min_samples && bad * 100 >= r->threshold * total;
	case AR_STATE:
		return g->down;
	case AR_GAUGE:
		return g->gauge_bad;
	}
	return false;
}

/* ---- groups ---- */

static bool
ar_group_is_idle(const struct ar_group *g, const struct conf_alert_rule *r, uint64_t now_ms)
{
	uint64_t bad, total;

	if (g->open || g->down || g->gauge_bad)
		return false;
	ar_window_sum(g, r, now_ms, &bad, &total);
	return total == 0;
}

static void
ar_gc(struct alert_rules *ar, uint64_t now_ms)
{
	size_t i = 0;

	while (i < ar->n_groups) {
		struct ar_group *g = ar->groups[i];

		if (ar_group_is_idle(g, &ar->p.rules[g->rule], now_ms)) {
			free(g);
			ar->groups[i] = ar->groups[--ar->n_groups];
			ar->groups[ar->n_groups] = NULL;
		} else {
			i++;
		}
	}
}

static struct ar_group *
ar_group_get(struct alert_rules *ar, size_t rule, const char *key, bool create, uint64_t now_ms)
{
	struct ar_group *g;
	size_t i, len;

	if (key == NULL)
		key = "";
	len = strlen(key);
	if (len > AR_KEY_MAX)
		len = AR_KEY_MAX;
	for (i = 0; i < ar->n_groups; i++) {
		g = ar->groups[i];
		if (g->rule == rule && strncmp(g->key, key, len) == 0 && g->key[len] == '\0')
			return g;
	}
	if (!create)
		return NULL;
	if (ar->n_groups == ar->max_groups)
		ar_gc(ar, now_ms);
	if (ar->n_groups == ar->max_groups) {
		ar->dropped++;
		return NULL;
	}
	g = xcalloc(1, sizeof(*g));
	g->rule = rule;
	memcpy(g->key, key, len);
	g->key[len] = '\0';
	ar->groups[ar->n_groups++] = g;
	return g;
}

/* ---- notices ---- */

static void
ar_copy(char *dst, size_t size, const char *src)
{
	size_t n = src != NULL ? strlen(src) : 0;

	if (n >= size)
		n = size - 1;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
ar_emit(struct alert_rules *ar, struct ar_group *g, enum alert_kind kind, uint64_t count,
    uint64_t now_ms)
{
	const struct conf_alert_rule *r = &ar->p.rules[g->rule];
	struct alert_notice n;
	size_t i;

	memset(&n, 0, sizeof(n));
	n.kind = kind;
	n.rule = r;
	n.rule_index = g->rule;
	n.group = g->key;
	if (kind == ALERT_KIND_ESCALATION) {
		n.channels = r->escalate_channels;
		n.n_channels = r->n_escalate_channels;
	} else {
		n.channels = r->channels;
		n.n_channels = r->n_channels;
	}
	n.since_ms = g->since_ms;
	n.at_ms = now_ms;
	n.affected = g->affected;
	n.count = count;
	n.value = g->value;
	if (ar_when[r->when].cls == AR_RATE) {
		uint64_t bad;

		ar_window_sum(g, r, now_ms, &bad, &n.samples);
	}
	if (kind == ALERT_KIND_DIGEST) {
		for (i = 0; i < g->n_lines; i++)
			n.lines[i] = g->lines[i];
		n.n_lines = g->n_lines;
	}
	n.last_code = g->last_code;
	n.last_enhanced = g->last_enhanced;
	n.last_text = g->last_text;
	n.last_upstream = g->last_upstream;
	n.last_qid = g->last_qid;
	ar->p.emit(ar->p.emit_arg, &n);
}

static void
ar_open(struct alert_rules *ar, struct ar_group *g, uint64_t now_ms)
{
	const struct conf_alert_rule *r = &ar->p.rules[g->rule];
	enum ar_class cls = ar_when[r->when].cls;

	g->open = true;
	g->clearing = false;
	g->escalated = false;
	g->since_ms = now_ms;
	g->cooldown_end_ms = now_ms + r->cooldown_ms;
	g->pending = 0;
	g->n_lines = 0;
	if (cls == AR_COUNT) {
		g->affected = g->value;
	} else if (cls == AR_RATE) {
		uint64_t bad, total;

		ar_window_sum(g, r, now_ms, &bad, &total);
		g->affected = bad;
	} else {
		g->affected = cls == AR_STATE ? 1 : 0;
	}
	ar_emit(ar, g, ALERT_KIND_OPEN, g->affected, now_ms);
}

static void
ar_close(struct ar_group *g)
{
	g->open = false;
	g->clearing = false;
	g->escalated = false;
	g->cooldown_end_ms = 0;
	g->pending = 0;
	g->affected = 0;
	g->n_lines = 0;
}

/* ---- events ---- */

static bool
ar_list_has(char *const *list, size_t n, const char *s)
{
	size_t i;

	if (n == 0)
		return true;
	if (s == NULL || s[0] == '\0')
		return false;
	for (i = 0; i < n; i++) {
		if (str_eq_ci(s, strlen(s), list[i]))
			return true;
	}
	return false;
}

static bool
ar_hours_ok(const struct alert_rules *ar, const struct conf_alert_rule *r, uint64_t now_ms)
{
	int64_t s;
	int m;

	if (r->hours_from < 0 || r->hours_to < 0 || r->hours_from == r->hours_to)
		return true;
	s = (int64_t)(now_ms / 1000) + ar->p.tz_offset_s;
	s %= 86400;
	if (s < 0)
		s += 86400;
	m = (int)(s / 60);
	if (r->hours_from < r->hours_to)
		return m >= r->hours_from && m < r->hours_to;
	return m >= r->hours_from || m < r->hours_to; /* over midnight: "20:00-08:00" */
}

static bool
ar_filters_ok(const struct alert_rules *ar, const struct conf_alert_rule *r,
    const struct alert_event *ev, uint64_t now_ms)
{
	return ar_list_has(r->sender_domains, r->n_sender_domains, ev->sender_domain) &&
	    ar_list_has(r->recipient_domains, r->n_recipient_domains, ev->rcpt_domain) &&
	    ar_list_has(r->routes, r->n_routes, ev->route) && ar_hours_ok(ar, r, now_ms);
}

/* How an event counts for a rule: not at all, as a sample (total only), or as a bad one. */
enum ar_hit { AR_HIT_NONE, AR_HIT_TOTAL, AR_HIT_BAD, AR_HIT_UP };

static enum ar_hit
ar_classify(const struct conf_alert_rule *r, const struct alert_event *ev)
{
	bool final_fail = ev->type == ALERT_EV_BOUNCED || ev->type == ALERT_EV_EXPIRED;

	switch (r->when) {
	case CONF_ALERT_PERMANENT_FAILURE:
		return final_fail ? AR_HIT_BAD : AR_HIT_NONE;
	case CONF_ALERT_DEFERRED:
		return ev->type == ALERT_EV_DEFERRED && ev->age_ms >= r->threshold ? AR_HIT_BAD :
		    AR_HIT_NONE;
	case CONF_ALERT_UPSTREAM_DOWN:
		if (ev->type == ALERT_EV_UPSTREAM_DOWN)
			return AR_HIT_BAD;
		return ev->type == ALERT_EV_UPSTREAM_UP ? AR_HIT_UP : AR_HIT_NONE;
	case CONF_ALERT_FAILOVER:
		return ev->type == ALERT_EV_FAILOVER ? AR_HIT_BAD : AR_HIT_NONE;
	case CONF_ALERT_AUTH_FAILURES:
		return ev->type == ALERT_EV_AUTH_FAILURE ? AR_HIT_BAD : AR_HIT_NONE;
	case CONF_ALERT_DNS_CHECK:
		return ev->type == ALERT_EV_DNS_WORSE ? AR_HIT_BAD : AR_HIT_NONE;
	case CONF_ALERT_BOUNCE_RATE:
		if (final_fail)
			return AR_HIT_BAD;
		return ev->type == ALERT_EV_SENT ? AR_HIT_TOTAL : AR_HIT_NONE;
	case CONF_ALERT_DEFERRAL_RATE:
		if (ev->type == ALERT_EV_DEFERRED)
			return AR_HIT_BAD;
		return ev->type == ALERT_EV_SENT || final_fail ? AR_HIT_TOTAL : AR_HIT_NONE;
	default:
		return AR_HIT_NONE;
	}
}

static const char *
ar_event_key(const struct conf_alert_rule *r, const struct alert_event *ev)
{
	const char *k = NULL;

	if (r->group_by == CONF_ALERT_GROUP_UPSTREAM)
		k = ev->upstream;
	else if (r->group_by == CONF_ALERT_GROUP_DOMAIN)
		k = ev->rcpt_domain;
	return k != NULL ? k : "";
}

static void
ar_sample(struct ar_group *g, const struct alert_event *ev)
{
	char line[ALERT_RULES_SAMPLE_LEN + 1];

	if (ev->code > 0 || (ev->text != NULL && ev->text[0] != '\0')) {
		g->last_code = ev->code;
		ar_copy(g->last_enhanced, sizeof(g->last_enhanced), ev->enhanced);
		ar_copy(g->last_text, sizeof(g->last_text), ev->text);
	}
	if (ev->upstream != NULL && ev->upstream[0] != '\0')
		ar_copy(g->last_upstream, sizeof(g->last_upstream), ev->upstream);
	if (ev->qid != NULL && ev->qid[0] != '\0')
		ar_copy(g->last_qid, sizeof(g->last_qid), ev->qid);
	if (!g->open || g->n_lines == ALERT_RULES_SAMPLES)
		return;
	if (ev->type == ALERT_EV_AUTH_FAILURE) {
		snprintf(line, sizeof(line), "AUTH failed from %s", ev->peer != NULL ? ev->peer : "?");
	} else if (ev->type == ALERT_EV_DNS_WORSE) {
		snprintf(line, sizeof(line), "%s: %s", ev->rcpt_domain ? ev->rcpt_domain : "?",
		    ev->text ? ev->text : "");
	} else if (ev->type == ALERT_EV_FAILOVER) {
		snprintf(line, sizeof(line), "%s%s%s -> %s: %d %s %s", ev->qid ? ev->qid : "",
		    ev->qid ? " " : "", ev->upstream ? ev->upstream : "?",
		    ev->to_upstream ? ev->to_upstream : "?", ev->code,
		    ev->enhanced ? ev->enhanced : "", ev->text ? ev->text : "");
	} else {
		snprintf(line, sizeof(line), "%s%s%s%s%s: %d %s %s", ev->qid ? ev->qid : "",
		    ev->rcpt_domain ? " to " : "", ev->rcpt_domain ? ev->rcpt_domain : "",
		    ev->upstream ? " via " : "", ev->upstream ? ev->upstream : "", ev->code,
		    ev->enhanced ? ev->enhanced : "", ev->text ? ev->text : "");
	}
	/* Control bytes from a peer's reply never reach a channel as line breaks. */
	for (char *p = line; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	}
	memcpy(g->lines[g->n_lines++], line, sizeof(line));
}

void
alert_rules_event(struct alert_rules *ar, const struct alert_event *ev, uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < ar->p.n_rules; i++) {
		const struct conf_alert_rule *r = &ar->p.rules[i];
		enum ar_hit hit = ar_classify(r, ev);
		struct ar_group *g;
		const char *key;

		/* A breaker closing always counts: a filter must not leave an alert open forever. */
		if (hit == AR_HIT_NONE || (hit != AR_HIT_UP && !ar_filters_ok(ar, r, ev, now_ms)))
			continue;
		key = r->when == CONF_ALERT_UPSTREAM_DOWN ? (ev->upstream ? ev->upstream : "") :
		    ar_event_key(r, ev);
		g = ar_group_get(ar, i, key, hit != AR_HIT_UP, now_ms);
		if (g == NULL)
			continue;
		if (hit == AR_HIT_UP) {
			g->down = false;
			continue;
		}
		if (r->when == CONF_ALERT_UPSTREAM_DOWN)
			g->down = true;
		ar_window_add(g, r, now_ms, hit == AR_HIT_BAD);
		if (hit == AR_HIT_BAD)
			ar_sample(g, ev);
		if (g->open) {
			if (hit != AR_HIT_BAD)
				continue;
			g->affected++;
			g->pending++;
			if (g->clearing && ar_holds(g, r, now_ms))
				g->clearing = false;
			/* Quiet since the last notice: this event starts a new cooldown. */
			if (g->cooldown_end_ms == 0)
				g->cooldown_end_ms = now_ms + r->cooldown_ms;
		} else if (ar_holds(g, r, now_ms)) {
			ar_open(ar, g, now_ms);
		}
	}
}

void
alert_rules_gauge(struct alert_rules *ar, enum alert_gauge gauge, const char *key,
    uint64_t value, uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < ar->p.n_rules; i++) {
		const struct conf_alert_rule *r = &ar->p.rules[i];
		struct ar_group *g;
		bool bad;

		if (ar_when[r->when].gauge != (int)gauge || !ar_hours_ok(ar, r, now_ms))
			continue;
		bad = ar_when[r->when].below ? value <= r->threshold : value >= r->threshold;
		g = ar_group_get(ar, i, key, bad, now_ms);
		if (g == NULL)
			continue;
		g->gauge_bad = bad;
		g->value = value;
		if (!bad)
			continue;
		if (!g->open)
			ar_open(ar, g, now_ms);
		else
			g->clearing = false;
	}
}

void
alert_rules_tick(struct alert_rules *ar, uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < ar->n_groups; i++) {
		struct ar_group *g = ar->groups[i];
		const struct conf_alert_rule *r = &ar->p.rules[g->rule];
		bool holds;

		if (!g->open)
			continue;
		holds = ar_holds(g, r, now_ms);
		g->clearing = !holds;
		if (holds && !g->escalated && r->escalate_after_ms > 0 &&
		    r->n_escalate_channels > 0 && now_ms >= g->since_ms + r->escalate_after_ms) {
			g->escalated = true;
			ar_emit(ar, g, ALERT_KIND_ESCALATION, g->affected, now_ms);
		}
		if (g->cooldown_end_ms != 0 && now_ms < g->cooldown_end_ms)
			continue;
		if (g->pending > 0) {
			ar_emit(ar, g, ALERT_KIND_DIGEST, g->pending, now_ms);
			g->pending = 0;
			g->n_lines = 0;
			g->cooldown_end_ms = now_ms + r->cooldown_ms;
			if (!g->clearing)
				continue;
		} else {
			g->cooldown_end_ms = 0;
		}
		if (g->clearing) {
			if (r->recovery)
				ar_emit(ar, g, ALERT_KIND_RECOVERY, 0, now_ms);
			ar_close(g);
		}
	}
	if (ar->n_groups * 2 > ar->max_groups)
		ar_gc(ar, now_ms);
}

size_t
alert_rules_open_count(const struct alert_rules *ar)
{
	size_t i, n = 0;

	for (i = 0; i < ar->n_groups; i++)
		n += ar->groups[i]->open;
	return n;
}

size_t
alert_rules_group_count(const struct alert_rules *ar)
{
	return ar->n_groups;
}

uint64_t
alert_rules_dropped(const struct alert_rules *ar)
{
	return ar->dropped;
}
