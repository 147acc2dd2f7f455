/*
 * test_alert_rules.c - the alert rule engine with an injected clock: the storm (one open, one
 * digest, one recovery), escalation timing, filters, grouping, rates, gauges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alert/alert_rules.h"
#include "conf/conf.h"
#include "util/xalloc.h"
#include "util/poison.h"

#define MIN_MS 60000ull
#define T0 1700000000000ull /* a Tuesday, 22:13:20 UTC */

struct seen {
	enum alert_kind kind;
	char group[64];
	char rule[32];
	uint64_t at_ms, affected, count, value, samples;
	size_t n_lines;
	char line0[256];
	char channel0[32];
	size_t n_channels;
	char last_text[128];
};

static struct seen seen[64];
static size_t n_seen;

static void
emit_cb(void *arg, const struct alert_notice *n)
{
	struct seen *s;

	(void)arg;
	assert_true(n_seen < HK_ARRAY_LEN(seen));
	s = &seen[n_seen++];
	memset(s, 0, sizeof(*s));
	s->kind = n->kind;
	snprintf(s->group, sizeof(s->group), "%s", n->group);
	snprintf(s->rule, sizeof(s->rule), "%s", n->rule->name);
	s->at_ms = n->at_ms;
	s->affected = n->affected;
	s->count = n->count;
	s->value = n->value;
	s->samples = n->samples;
	s->n_lines = n->n_lines;
	if (n->n_lines > 0)
		snprintf(s->line0, sizeof(s->line0), "%s", n->lines[0]);
	s->n_channels = n->n_channels;
	if (n->n_channels > 0)
		snprintf(s->channel0, sizeof(s->channel0), "%s", n->channels[0]);
	snprintf(s->last_text, sizeof(s->last_text), "%s", n->last_text);
}

static char *chan_ops[] = { "ops" };
static char *chan_pager[] = { "pager" };

static struct conf_alert_rule
rule(const char *name, enum conf_alert_when when, uint64_t threshold)
{
	struct conf_alert_rule r;

	memset(&r, 0, sizeof(r));
	r.name = (char *)name;
	r.when = when;
	r.threshold = threshold;
	r.window_ms = 1 * MIN_MS;
	r.cooldown_ms = 5 * MIN_MS;
	r.min_samples = 20;
	r.group_by = CONF_ALERT_GROUP_RULE;
	r.channels = chan_ops;
	r.n_channels = 1;
	r.recovery = true;
	r.hours_from = r.hours_to = -1;
	return r;
}

static struct alert_rules *
engine(const struct conf_alert_rule *rules, size_t n)
{
	struct alert_rules_params p = { .rules = rules, .n_rules = n, .emit = emit_cb };

	n_seen = 0;
	return alert_rules_new(&p);
}

static struct alert_event
bounce(const char *domain, const char *upstream)
{
	struct alert_event ev = { .type = ALERT_EV_BOUNCED, .qid = "0193F2A1C4000007",
		.upstream = upstream, .sender_domain = "example.com", .rcpt_domain = domain,
		.route = "transactional", .code = 550, .enhanced = "5.1.1",
		.text = "5.1.1 The email account that you tried to reach does not exist" };

	return ev;
}

static size_t
count_kind(enum alert_kind k)
{
	size_t i, n = 0;

	for (i = 0; i < n_seen; i++)
		n += seen[i].kind == k;
	return n;
}

/* Tick every second from *now to until. */
static void
run_until(struct alert_rules *ar, uint64_t *now, uint64_t until)
{
	while (*now < until) {
		*now += 1000;
		alert_rules_tick(ar, *now);
	}
}

static void
test_storm_one_open_one_digest_one_recovery(void **state)
{
	struct conf_alert_rule r = rule("perm", CONF_ALERT_PERMANENT_FAILURE, 1);
	struct alert_rules *ar = engine(&r, 1);
	uint64_t now = T0;
	struct alert_event ev = bounce("gmail.com", "primary");
	int i;

	(void)state;
	/* 1,000 permanent failures spread over one minute, ticking as the loop would. */
	for (i = 0; i < 1000; i++) {
		uint64_t at = T0 + (uint64_t)i * 60;

		if (at / 1000 != now / 1000)
			alert_rules_tick(ar, at);
		now = at;
		alert_rules_event(ar, &ev, now);
	}
	assert_int_equal(n_seen, 1);
	assert_int_equal(seen[0].kind, ALERT_KIND_OPEN);
	assert_int_equal(seen[0].affected, 1);
	assert_string_equal(seen[0].channel0, "ops");
	assert_int_equal(alert_rules_open_count(ar), 1);

	/* Quiet until the cooldown (5m) ends, although the window cleared after ~2m. */
	run_until(ar, &now, T0 + 5 * MIN_MS - 1000);
	assert_int_equal(n_seen, 1);

	run_until(ar, &now, T0 + 5 * MIN_MS);
	assert_int_equal(n_seen, 3);
	assert_int_equal(seen[1].kind, ALERT_KIND_DIGEST);
	assert_int_equal(seen[1].count, 999);
	assert_int_equal(seen[1].affected, 1000);
	assert_int_equal(seen[1].n_lines, ALERT_RULES_SAMPLES);
	assert_non_null(strstr(seen[1].line0, "0193F2A1C4000007 to gmail.com via primary: 550 5.1.1"));
	assert_int_equal(seen[2].kind, ALERT_KIND_RECOVERY);
	assert_int_equal(alert_rules_open_count(ar), 0);

	/* Nothing more, ever. */
	run_until(ar, &now, T0 + 30 * MIN_MS);
	assert_int_equal(n_seen, 3);
	assert_int_equal(count_kind(ALERT_KIND_OPEN), 1);
	assert_int_equal(count_kind(ALERT_KIND_DIGEST), 1);
	assert_int_equal(count_kind(ALERT_KIND_RECOVERY), 1);
	alert_rules_free(ar);
}

static void
test_storm_still_going_digests_each_cooldown(void **state)
{
	struct conf_alert_rule r = rule("perm", CONF_ALERT_PERMANENT_FAILURE, 1);
	struct alert_rules *ar = engine(&r, 1);
	struct alert_event ev = bounce("gmail.com", "primary");
	uint64_t now = T0;

	(void)state;
	/* One failure every 10 s for 12 minutes: open, digest at 5m, digest at 10m, no recovery. */
	while (now < T0 + 12 * MIN_MS) {
		if (now % 10000 == 0)
			alert_rules_event(ar, &ev, now);
		now += 1000;
		alert_rules_tick(ar, now);
	}
	assert_int_equal(count_kind(ALERT_KIND_OPEN), 1);
	assert_int_equal(count_kind(ALERT_KIND_DIGEST), 2);
	assert_int_equal(count_kind(ALERT_KIND_RECOVERY), 0);
	assert_int_equal(seen[1].count, 29);
	assert_int_equal(seen[2].count, 30);
	alert_rules_free(ar);
}

static void
test_threshold_counts_within_window(void **state)
{
	struct conf_alert_rule r = rule("perm", CONF_ALERT_PERMANENT_FAILURE, 3);
	struct alert_rules *ar = engine(&r, 1);
	struct alert_event ev = bounce("gmail.com", "primary");

	(void)state;
	/* Two in a minute, then a third two minutes later: never three within one window. */
	alert_rules_event(ar, &ev, T0);
	alert_rules_event(ar, &ev, T0 + 10000);
	alert_rules_event(ar, &ev, T0 + 3 * MIN_MS);
	assert_int_equal(n_seen, 0);
	alert_rules_event(ar, &ev, T0 + 3 * MIN_MS + 1000);
	alert_rules_event(ar, &ev, T0 + 3 * MIN_MS + 2000);
	assert_int_equal(n_seen, 1);
	assert_int_equal(seen[0].affected, 3);
	alert_rules_free(ar);
}

static void
test_escalation_after_delay_not_before(void **state)
{
	struct conf_alert_rule r = rule("down", CONF_ALERT_UPSTREAM_DOWN, 1);
	struct alert_rules *ar;
	struct alert_event down = { .type = ALERT_EV_UPSTREAM_DOWN, .upstream = "primary",
		.code = 421, .enhanced = "4.3.2", .text = "Service not available" };
	struct alert_event up = { .type = ALERT_EV_UPSTREAM_UP, .upstream = "primary" };
	uint64_t now = T0;

	(void)state;
	r.group_by = CONF_ALERT_GROUP_UPSTREAM;
	r.escalate_after_ms = 10 * MIN_MS;
	r.escalate_channels = chan_pager;
	r.n_escalate_channels = 1;
	ar = engine(&r, 1);
	alert_rules_event(ar, &down, now);
	assert_int_equal(n_seen, 1);
	assert_string_equal(seen[0].group, "primary");
	assert_string_equal(seen[0].last_text, "Service not available");
	run_until(ar, &now, T0 + 10 * MIN_MS - 1000);
	assert_int_equal(count_kind(ALERT_KIND_ESCALATION), 0);
	run_until(ar, &now, T0 + 10 * MIN_MS);
	assert_int_equal(count_kind(ALERT_KIND_ESCALATION), 1);
	assert_string_equal(seen[n_seen - 1].channel0, "pager");
	run_until(ar, &now, T0 + 40 * MIN_MS);
	assert_int_equal(count_kind(ALERT_KIND_ESCALATION), 1);
	assert_int_equal(count_kind(ALERT_KIND_RECOVERY), 0);

	alert_rules_event(ar, &up, now);
	now += 1000;
	alert_rules_tick(ar, now);
	assert_int_equal(count_kind(ALERT_KIND_RECOVERY), 1);
	assert_string_equal(seen[n_seen - 1].channel0, "ops");
	alert_rules_free(ar);
}

static void
test_escalation_not_sent_when_recovered_first(void **state)
{
	struct conf_alert_rule r = rule("down", CONF_ALERT_UPSTREAM_DOWN, 1);
	struct alert_rules *ar;
	struct alert_event down = { .type = ALERT_EV_UPSTREAM_DOWN, .upstream = "primary" };
	struct alert_event up = { .type = ALERT_EV_UPSTREAM_UP, .upstream = "primary" };
	uint64_t now = T0;

	(void)state;
	r.group_by = CONF_ALERT_GROUP_UPSTREAM;
	r.cooldown_ms = 1 * MIN_MS;
	r.escalate_after_ms = 10 * MIN_MS;
	r.escalate_channels = chan_pager;
	r.n_escalate_channels = 1;
	ar = engine(&r, 1);
	alert_rules_event(ar, &down, now);
	run_until(ar, &now, T0 + 30000);
	alert_rules_event(ar, &up, now);
	/* Cleared inside the cooldown: the recovery waits for its end. */
	run_until(ar, &now, T0 + 59000);
	assert_int_equal(count_kind(ALERT_KIND_RECOVERY), 0);
	run_until(ar, &now, T0 + MIN_MS);
	assert_int_equal(count_kind(ALERT_KIND_RECOVERY), 1);
	run_until(ar, &now, T0 + 20 * MIN_MS);
	assert_int_equal(count_kind(ALERT_KIND_ESCALATION), 0);
	assert_int_equal(n_seen, 2);
	alert_rules_free(ar);
}

static void
test_group_by_domain_and_upstream(void **state)
{
	struct conf_alert_rule rules[2];
	struct alert_rules *ar;
	struct alert_event a = bounce("gmail.com", "primary"), b = bounce("yahoo.com", "primary");
	struct alert_event c = bounce("gmail.com", "backup");

	(void)state;
	rules[0] = rule("by-domain", CONF_ALERT_PERMANENT_FAILURE, 1);
	rules[0].group_by = CONF_ALERT_GROUP_DOMAIN;
	rules[1] = rule("by-upstream", CONF_ALERT_PERMANENT_FAILURE, 1);
	rules[1].group_by = CONF_ALERT_GROUP_UPSTREAM;
	ar = engine(rules, 2);
	alert_rules_event(ar, &a, T0);
	alert_rules_event(ar, &b, T0 + 1);
	alert_rules_event(ar, &c, T0 + 2);
	alert_rules_event(ar, &a, T0 + 3);
	/* by-domain: gmail.com, yahoo.com; by-upstream: primary, backup. */
	assert_int_equal(n_seen, 4);
	assert_string_equal(seen[0].rule, "by-domain");
	assert_string_equal(seen[0].group, "gmail.com");
	assert_string_equal(seen[1].group, "primary");
	assert_string_equal(seen[2].group, "yahoo.com");
	assert_string_equal(seen[3].group, "backup");
	assert_int_equal(alert_rules_open_count(ar), 4);
	alert_rules_free(ar);
}

static void
test_filters(void **state)
{
	struct conf_alert_rule r = rule("f", CONF_ALERT_PERMANENT_FAILURE, 1);
	char *senders[] = { "example.com" }, *rcpts[] = { "gmail.com" }, *routes[] = { "bulk" };
	struct alert_rules *ar;
	struct alert_event ev = bounce("gmail.com", "primary");

	(void)state;
	r.sender_domains = senders;
	r.n_sender_domains = 1;
	r.recipient_domains = rcpts;
	r.n_recipient_domains = 1;
	r.routes = routes;
	r.n_routes = 1;
	ar = engine(&r, 1);
	alert_rules_event(ar, &ev, T0); /* route transactional: filtered out */
	ev.route = "bulk";
	ev.rcpt_domain = "yahoo.com";
	alert_rules_event(ar, &ev, T0 + 1);
	ev.rcpt_domain = "GMAIL.com";
	ev.sender_domain = "other.example";
	alert_rules_event(ar, &ev, T0 + 2);
	ev.sender_domain = NULL;
	alert_rules_event(ar, &ev, T0 + 3);
	assert_int_equal(n_seen, 0);
	ev.sender_domain = "Example.COM";
	alert_rules_event(ar, &ev, T0 + 4);
	assert_int_equal(n_seen, 1);
	alert_rules_free(ar);
}

static void
test_filter_hours(void **state)
{
	struct conf_alert_rule r = rule("day", CONF_ALERT_PERMANENT_FAILURE, 1);
	struct alert_rules *ar;
	struct alert_rules_params p = { .rules = &r, .n_rules = 1, .emit = emit_cb };
	struct alert_event ev = bounce("gmail.com", "primary");
	uint64_t midnight = T0 - (T0 % (1440 * MIN_MS));

	(void)state;
	r.hours_from = 8 * 60;
	r.hours_to = 20 * 60;
	n_seen = 0;
	ar = alert_rules_new(&p);
	alert_rules_event(ar, &ev, midnight + 7 * 60 * MIN_MS + 59 * MIN_MS);
	alert_rules_event(ar, &ev, midnight + 20 * 60 * MIN_MS);
	assert_int_equal(n_seen, 0);
	alert_rules_event(ar, &ev, midnight + 8 * 60 * MIN_MS);
	assert_int_equal(n_seen, 1);
	alert_rules_free(ar);

	/* Local time two hours ahead of UTC: 06:00 UTC is 08:00 local. */
	p.tz_offset_s = 7200;
	n_seen = 0;
	ar = alert_rules_new(&p);
	alert_rules_event(ar, &ev, midnight + 6 * 60 * MIN_MS);
	assert_int_equal(n_seen, 1);
	alert_rules_free(ar);

	/* Over midnight. */
	r.hours_from = 20 * 60;
	r.hours_to = 8 * 60;
	p.tz_offset_s = 0;
	n_seen = 0;
	ar = alert_rules_new(&p);
	alert_rules_event(ar, &ev, midnight + 12 * 60 * MIN_MS);
	assert_int_equal(n_seen, 0);
	alert_rules_event(ar, &ev, midnight + 2 * 60 * MIN_MS);
	assert_int_equal(n_seen, 1);
	alert_rules_free(ar);
}

static void
test_bounce_rate_needs_samples(void **state)
{
	struct conf_alert_rule r = rule("rate", CONF_ALERT_BOUNCE_RATE, 10);
	struct alert_rules *ar;
	struct alert_event b = bounce("gmail.com", "primary"), s = b;
	int i;

	(void)state;
	s.type = ALERT_EV_SENT;
	r.group_by = CONF_ALERT_GROUP_DOMAIN;
	ar = engine(&r, 1);
	/* 5 bounces of 5: 100 %, but below min_samples (20). */
	for (i = 0; i < 5; i++)
		alert_rules_event(ar, &b, T0 + (uint64_t)i);
	assert_int_equal(n_seen, 0);
	/* 14 sent: 19 samples, still quiet; one more sent: 20 samples, 25 % -> open. */
	for (i = 0; i < 14; i++)
		alert_rules_event(ar, &s, T0 + 10 + (uint64_t)i);
	assert_int_equal(n_seen, 0);
	alert_rules_event(ar, &s, T0 + 100);
	assert_int_equal(n_seen, 1);
	assert_string_equal(seen[0].group, "gmail.com");
	assert_int_equal(seen[0].value, 25);
	assert_int_equal(seen[0].samples, 20);
	assert_int_equal(seen[0].affected, 5);
	/* Another domain at 0 %: nothing. */
	s.rcpt_domain = "yahoo.com";
	for (i = 0; i < 30; i++)
		alert_rules_event(ar, &s, T0 + 200 + (uint64_t)i);
	assert_int_equal(n_seen, 1);
	alert_rules_free(ar);
}

static void
test_deferral_rate_overall(void **state)
{
	struct conf_alert_rule r = rule("defer", CONF_ALERT_DEFERRAL_RATE, 45);
	struct alert_rules *ar;
	struct alert_event d = bounce("gmail.com", "primary"), s = d;
	int i;

	(void)state;
	d.type = ALERT_EV_DEFERRED;
	s.type = ALERT_EV_SENT;
	s.rcpt_domain = "yahoo.com";
	r.min_samples = 10;
	ar = engine(&r, 1);
	for (i = 0; i < 6; i++)
		alert_rules_event(ar, &s, T0 + (uint64_t)i);
	for (i = 0; i < 4; i++)
		alert_rules_event(ar, &d, T0 + 10 + (uint64_t)i);
	assert_int_equal(n_seen, 0); /* 40 % */
	alert_rules_event(ar, &d, T0 + 20);
	assert_int_equal(n_seen, 1); /* 5 of 11: 45 % */
	alert_rules_free(ar);
}

static void
test_deferred_longer_than(void **state)
{
	struct conf_alert_rule r = rule("old", CONF_ALERT_DEFERRED, 60 * MIN_MS);
	struct alert_rules *ar = engine(&r, 1);
	struct alert_event d = bounce("gmail.com", "primary");

	(void)state;
	d.type = ALERT_EV_DEFERRED;
	d.age_ms = 59 * MIN_MS;
	alert_rules_event(ar, &d, T0);
	assert_int_equal(n_seen, 0);
	d.age_ms = 61 * MIN_MS;
	alert_rules_event(ar, &d, T0 + 1);
	assert_int_equal(n_seen, 1);
	alert_rules_free(ar);
}

static void
test_gauges_open_and_recover(void **state)
{
	struct conf_alert_rule rules[3];
	struct alert_rules *ar;
	uint64_t now = T0;

	(void)state;
	rules[0] = rule("disk", CONF_ALERT_DISK_FREE, 10);
	rules[1] = rule("quota", CONF_ALERT_QUOTA, 90);
	rules[2] = rule("cert", CONF_ALERT_CERT_EXPIRY, 14 * 1440 * MIN_MS);
	rules[0].cooldown_ms = rules[1].cooldown_ms = rules[2].cooldown_ms = 0;
	ar = engine(rules, 3);
	alert_rules_gauge(ar, ALERT_GAUGE_DISK_FREE_PCT, NULL, 50, now);
	alert_rules_gauge(ar, ALERT_GAUGE_QUOTA_PCT, "primary", 89, now);
	alert_rules_gauge(ar, ALERT_GAUGE_CERT_LEFT_MS, "smtp", 30 * 1440 * MIN_MS, now);
	assert_int_equal(n_seen, 0);
	assert_int_equal(alert_rules_group_count(ar), 0);
	alert_rules_gauge(ar, ALERT_GAUGE_DISK_FREE_PCT, NULL, 9, now);
	alert_rules_gauge(ar, ALERT_GAUGE_QUOTA_PCT, "primary", 95, now);
	alert_rules_gauge(ar, ALERT_GAUGE_QUOTA_PCT, "backup", 100, now);
	alert_rules_gauge(ar, ALERT_GAUGE_CERT_LEFT_MS, "smtp", 3 * 1440 * MIN_MS, now);
	assert_int_equal(n_seen, 4);
	assert_string_equal(seen[1].group, "primary");
	assert_int_equal(seen[1].value, 95);
	assert_string_equal(seen[2].group, "backup");
	/* Still bad: no repeat. */
	alert_rules_gauge(ar, ALERT_GAUGE_QUOTA_PCT, "primary", 97, now + 1000);
	alert_rules_tick(ar, now + 2000);
	assert_int_equal(n_seen, 4);
	/* Primary recovers, the others stay. */
	alert_rules_gauge(ar, ALERT_GAUGE_QUOTA_PCT, "primary", 10, now + 3000);
	alert_rules_tick(ar, now + 4000);
	assert_int_equal(n_seen, 5);
	assert_int_equal(seen[4].kind, ALERT_KIND_RECOVERY);
	assert_string_equal(seen[4].group, "primary");
	assert_int_equal(alert_rules_open_count(ar), 3);
	alert_rules_free(ar);
}

static void
test_auth_failures_per_window(void **state)
{
	struct conf_alert_rule r = rule("auth", CONF_ALERT_AUTH_FAILURES, 5);
	struct alert_rules *ar;
	struct alert_event a = { .type = ALERT_EV_AUTH_FAILURE, .peer = "192.0.2.7" };
	uint64_t now = T0;
	int i;

	(void)state;
	r.cooldown_ms = 0;
	r.recovery = false;
	ar = engine(&r, 1);
	for (i = 0; i < 4; i++)
		alert_rules_event(ar, &a, now + (uint64_t)i * 1000);
	assert_int_equal(n_seen, 0);
	alert_rules_event(ar, &a, now + 5000);
	assert_int_equal(n_seen, 1);
	assert_int_equal(seen[0].affected, 5);
	run_until(ar, &now, T0 + 10 * MIN_MS);
	assert_int_equal(n_seen, 1); /* recovery: false */
	assert_int_equal(alert_rules_open_count(ar), 0);
	alert_rules_free(ar);
}

/* dns_check: one alert per domain for any number of worse findings; other events ignored. */
static void
test_dns_check_per_domain(void **state)
{
	struct conf_alert_rule r = rule("dns", CONF_ALERT_DNS_CHECK, 1);
	struct alert_rules *ar;
	struct alert_event a = { .type = ALERT_EV_DNS_WORSE, .rcpt_domain = "example.com",
		.text = "blocklist zen.example is now error: listed" };
	struct alert_event b = a, bounced = bounce("example.com", "primary");
	uint64_t now = T0;

	(void)state;
	r.group_by = CONF_ALERT_GROUP_DOMAIN;
	ar = engine(&r, 1);
	alert_rules_event(ar, &bounced, now);
	assert_int_equal(n_seen, 0);
	alert_rules_event(ar, &a, now);
	alert_rules_event(ar, &a, now + 1000);
	assert_int_equal(n_seen, 1);
	assert_int_equal(seen[0].kind, ALERT_KIND_OPEN);
	assert_string_equal(seen[0].group, "example.com");
	assert_string_equal(seen[0].last_text, "blocklist zen.example is now error: listed");
	b.rcpt_domain = "example.org";
	alert_rules_event(ar, &b, now + 2000);
	assert_int_equal(n_seen, 2);
	assert_string_equal(seen[1].group, "example.org");
	assert_int_equal(alert_rules_open_count(ar), 2);
	alert_rules_free(ar);
}

static void
test_reopen_inside_cooldown_cancels_recovery(void **state)
{
	struct conf_alert_rule r = rule("down", CONF_ALERT_UPSTREAM_DOWN, 1);
	struct alert_rules *ar;
	struct alert_event down = { .type = ALERT_EV_UPSTREAM_DOWN, .upstream = "primary" };
	struct alert_event up = { .type = ALERT_EV_UPSTREAM_UP, .upstream = "primary" };
	uint64_t now = T0;

	(void)state;
	r.group_by = CONF_ALERT_GROUP_UPSTREAM;
	ar = engine(&r, 1);
	alert_rules_event(ar, &down, now);
	run_until(ar, &now, T0 + 10000);
	alert_rules_event(ar, &up, now);
	run_until(ar, &now, T0 + 20000);
	alert_rules_event(ar, &down, now); /* flapped back down */
	run_until(ar, &now, T0 + 5 * MIN_MS);
	/* One open, then one digest (the second down), no recovery: it is down. */
	assert_int_equal(count_kind(ALERT_KIND_OPEN), 1);
	assert_int_equal(count_kind(ALERT_KIND_DIGEST), 1);
	assert_int_equal(count_kind(ALERT_KIND_RECOVERY), 0);
	alert_rules_free(ar);
}

static void
test_groups_are_bounded(void **state)
{
	struct conf_alert_rule r = rule("perm", CONF_ALERT_PERMANENT_FAILURE, 1);
	struct alert_rules_params p = { .rules = &r, .n_rules = 1, .emit = emit_cb,
		.max_groups = 8 };
	struct alert_rules *ar;
	char dom[32];
	int i;

	(void)state;
	r.group_by = CONF_ALERT_GROUP_DOMAIN;
	n_seen = 0;
	ar = alert_rules_new(&p);
	for (i = 0; i < 20; i++) {
		struct alert_event ev = bounce(dom, "primary");

		snprintf(dom, sizeof(dom), "d%d.example", i);
		alert_rules_event(ar, &ev, T0 + (uint64_t)i);
	}
	assert_int_equal(alert_rules_group_count(ar), 8);
	assert_int_equal(alert_rules_dropped(ar), 12);
	assert_int_equal(n_seen, 8);
	alert_rules_free(ar);
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(alert_rules_when_name(CONF_ALERT_DISK_FREE), "disk_free");
	assert_null(alert_rules_when_name(CONF_ALERT_WHEN_COUNT));
	assert_true(alert_rules_when_is_percent(CONF_ALERT_BOUNCE_RATE));
	assert_true(alert_rules_when_is_duration(CONF_ALERT_QUEUE_AGE));
	assert_string_equal(alert_rules_group_name(CONF_ALERT_GROUP_DOMAIN), "domain");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storm_one_open_one_digest_one_recovery),
		cmocka_unit_test(test_storm_still_going_digests_each_cooldown),
		cmocka_unit_test(test_threshold_counts_within_window),
		cmocka_unit_test(test_escalation_after_delay_not_before),
		cmocka_unit_test(test_escalation_not_sent_when_recovered_first),
		cmocka_unit_test(test_group_by_domain_and_upstream),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_filter_hours),
		cmocka_unit_test(test_bounce_rate_needs_samples),
		cmocka_unit_test(test_deferral_rate_overall),
		cmocka_unit_test(test_deferred_longer_than),
		cmocka_unit_test(test_gauges_open_and_recover),
		cmocka_unit_test(test_auth_failures_per_window),
		cmocka_unit_test(test_dns_check_per_domain),
		cmocka_unit_test(test_reopen_inside_cooldown_cancels_recovery),
		cmocka_unit_test(test_groups_are_bounded),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
