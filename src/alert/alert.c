/*
 * alert.c - the alert engine on the loop: timers, gauges, messages, records (see alert.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "../proto/explain.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "alert.h"
#include "../util/poison.h"

#define ALERT_RECORDS_MAX 200
#define ALERT_TICK_MS 1000
#define ALERT_POLL_MS 5000
#define ALERT_CERT_EVERY_MS 3600000ull
#define ALERT_MIN_PERIOD_MS 20

/* One alert (a rule's group from its open notice to its recovery), for the API. */
struct alert_rec {
	char *id;        /* "rule:group" or "rule" */
	char *rule, *when, *group;
	char *title, *text, *reply, *cause, *fix;
	bool open;
	bool escalated;
	uint64_t since_ms, updated_ms, resolved_ms;
	uint64_t affected, notices;
	size_t rule_index;
	unsigned gen;    /* the engine generation (reloads) it belongs to */
};

struct alert {
	struct event_base *base;
	struct conf *conf;
	struct conf_alert_rule *rules; /* scaled copy of conf->alert_rules (strings borrowed) */
	size_t n_rules;
	struct alert_rules *engine;
	unsigned gen;
	alert_send_fn send;
	void *send_arg;
	alert_poll_fn poll;
	void *poll_arg;
	struct event *tick_ev;
	uint64_t last_poll_ms, last_cert_ms;
	uint64_t tick_ms, poll_ms;
	bool have_cert;
	uint64_t cert_not_after_ms;
	struct alert_rec recs[ALERT_RECORDS_MAX];
	size_t n_recs;
	uint64_t notices[ALERT_KIND_TEST + 1];
};

static const char *
alert_kind_word(enum alert_kind k)
{
	switch (k) {
	case ALERT_KIND_OPEN: return "open";
	case ALERT_KIND_DIGEST: return "digest";
	case ALERT_KIND_ESCALATION: return "escalation";
	case ALERT_KIND_RECOVERY: return "recovery";
	case ALERT_KIND_TEST: return "test";
	}
	return "unknown";
}

/* ---- formatting ---- */

static void
alert_fmt_dur(uint64_t ms, char *out, size_t size)
{
	if (ms >= 86400000ull && ms % 3600000ull == 0 && ms >= 2 * 86400000ull)
		snprintf(out, size, "%llud", (unsigned long long)(ms / 86400000ull));
	else if (ms >= 3600000ull)
		snprintf(out, size, "%lluh%02llum", (unsigned long long)(ms / 3600000ull),
		    (unsigned long long)(ms / 60000ull % 60));
	else if (ms >= 60000ull)
		snprintf(out, size, "%llum", (unsigned long long)(ms / 60000ull));
	else
		snprintf(out, size, "%llus", (unsigned long long)(ms / 1000ull));
}

static void
alert_fmt_time(uint64_t ms, char *out, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* What the condition means for this group, in one phrase. */
static void
alert_what(const struct conf_alert_rule *r, const struct alert_notice *n, struct buf *out)
{
	char d1[32], d2[32];
	const char *g = n->group;
	bool has_g = g != NULL && g[0] != '\0';

	alert_fmt_dur(r->window_ms, d1, sizeof(d1));
	switch (r->when) {
	case CONF_ALERT_PERMANENT_FAILURE:
		buf_printf(out, "Permanent delivery failures%s%s", has_g ? " for " : "", has_g ? g : "");
		break;
	case CONF_ALERT_DEFERRED:
		alert_fmt_dur(r->threshold, d2, sizeof(d2));
		buf_printf(out, "Messages deferred for longer than %s%s%s", d2, has_g ? " for " : "",
		    has_g ? g : "");
		break;
	case CONF_ALERT_UPSTREAM_DOWN:
		if (n->kind == ALERT_KIND_RECOVERY)
			buf_printf(out, "Upstream %s is back up", has_g ? g : "?");
		else
			buf_printf(out, "Upstream %s is down", has_g ? g : "?");
		break;
	case CONF_ALERT_FAILOVER:
		buf_printf(out, "Failover: mail moved away from upstream %s", has_g ? g : "?");
		break;
	case CONF_ALERT_QUOTA:
		buf_printf(out, "Upstream %s has used %llu%% of its quota%s", has_g ? g : "?",
		    (unsigned long long)n->value, n->value >= 100 ? " (exhausted)" : "");
		break;
	case CONF_ALERT_QUEUE_SIZE:
		buf_printf(out, "The queue holds %llu messages (threshold %llu)",
		    (unsigned long long)n->value, (unsigned long long)r->threshold);
		break;
	case CONF_ALERT_QUEUE_AGE:
		alert_fmt_dur(n->value, d2, sizeof(d2));
		buf_printf(out, "The oldest queued message is %s old", d2);
		break;
	case CONF_ALERT_BOUNCE_RATE:
	case CONF_ALERT_DEFERRAL_RATE:
		buf_printf(out, "%s rate %llu%% over %s (%llu outcomes)%s%s",
		    r->when == CONF_ALERT_BOUNCE_RATE ? "Bounce" : "Deferral",
		    (unsigned long long)n->value, d1, (unsigned long long)n->samples,
		    has_g ? " for " : "", has_g ? g : "");
		break;
	case CONF_ALERT_AUTH_FAILURES:
		buf_printf(out, "%llu AUTH failures on SMTP ingress within %s",
		    (unsigned long long)n->value, d1);
		break;
	case CONF_ALERT_CERT_EXPIRY:
		alert_fmt_dur(n->value, d2, sizeof(d2));
		buf_printf(out, "The TLS certificate of listener %s expires in %s", has_g ? g : "?", d2);
		break;
	case CONF_ALERT_DISK_FREE:
		buf_printf(out, "Spool disk has only %llu%% free", (unsigned long long)n->value);
		break;
	case CONF_ALERT_DNS_CHECK:
		if (n->kind == ALERT_KIND_RECOVERY)
			buf_printf(out, "No new DNS problems for %s", has_g ? g : "the checked domains");
		else
			buf_printf(out, "A DNS check of %s got worse", has_g ? g : "a checked domain");
		break;
	}
}

/* What to do, when the reply explains nothing. */
static const char *
alert_hint(enum conf_alert_when w)
{
	switch (w) {
	case CONF_ALERT_PERMANENT_FAILURE:
		return "Look at the replies with `hikyaku log --status bounced`; fix the addresses or "
		    "the sending setup the reply names, then resend.";
	case CONF_ALERT_DEFERRED:
		return "Check `hikyaku queue` and the last replies; retries continue until "
		    "retry.max_age.";
	case CONF_ALERT_UPSTREAM_DOWN:
		return "Mail fails over to the next upstream of each route. Test it with `hikyaku "
		    "test NAME`; check its host, port, TLS and credentials.";
	case CONF_ALERT_FAILOVER:
		return "The primary refused or failed; check its replies and status page.";
	case CONF_ALERT_QUOTA:
		return "Raise the plan's quota or add another upstream to the route; mail spills to "
		    "the next upstream when the window is full.";
	case CONF_ALERT_QUEUE_SIZE:
	case CONF_ALERT_QUEUE_AGE:
		return "Check `hikyaku queue` and the upstreams' health: delivery is slower than "
		    "submission.";
	case CONF_ALERT_BOUNCE_RATE:
		return "Check the list quality and the recipients' replies; providers block senders "
		    "with high bounce rates.";
	case CONF_ALERT_DEFERRAL_RATE:
		return "Recipients' servers are rate limiting or greylisting; check the replies.";
	case CONF_ALERT_AUTH_FAILURES:
		return "Someone is guessing passwords or a client has stale credentials; check the "
		    "client addresses in the log (event=auth_failed).";
	case CONF_ALERT_CERT_EXPIRY:
		return "Renew the certificate (tls.cert) and send SIGHUP.";
	case CONF_ALERT_DISK_FREE:
		return "Free space on the spool's file system; at 0 the relay refuses new mail "
		    "(452 4.3.1).";
	case CONF_ALERT_DNS_CHECK:
		return "Run `hikyaku check-dns DOMAIN`: it shows each record, what is wrong and the "
		    "fix. A new blocklist listing or a removed SPF/DKIM/DMARC record makes large "
		    "providers reject or junk the mail.";
	}
	return "";
}

/* The last reply, explained; enhanced "c.s.d" split into numbers. */
static const struct explain_entry *
alert_explain(const struct alert *a, const struct alert_notice *n)
{
	unsigned c = 0, s = 0, d = 0;
	const char *text = n->last_text != NULL ? n->last_text : "";

	if (n->last_code < 400 || n->last_code > 599)
		return NULL;
	if (n->last_enhanced != NULL && sscanf(n->last_enhanced, "%u.%u.%u", &c, &s, &d) != 3)
		c = s = d = 0;
	/* The configuration's explain: rows first, as everywhere else a reply is shown. */
	return explain_lookup_in(a->conf->explain_rows, a->conf->n_explain_rows, n->last_code,
	    (int)c, (int)s, (int)d, text, strlen(text));
}

/* ---- records ---- */

static void
alert_rec_fini(struct alert_rec *r)
{
	free(r->id);
	free(r->rule);
	free(r->when);
	free(r->group);
	free(r->title);
	free(r->text);
	free(r->reply);
	free(r->cause);
	free(r->fix);
	memset(r, 0, sizeof(*r));
}

static struct alert_rec *
alert_rec_find(struct alert *a, const char *id)
{
	size_t i;

	for (i = 0; i < a->n_recs; i++) {
		if (a->recs[i].open && a->recs[i].gen == a->gen && strcmp(a->recs[i].id, id) == 0)
			return &a->recs[i];
	}
	return NULL;
}

static struct alert_rec *
alert_rec_new(struct alert *a)
{
	size_t i, victim = 0;

	if (a->n_recs < ALERT_RECORDS_MAX)
		return &a->recs[a->n_recs++];
	/* Full: the oldest resolved one goes; with none resolved, the oldest open one. */
	for (i = 1; i < a->n_recs; i++) {
		const struct alert_rec *v = &a->recs[victim], *c = &a->recs[i];

		if ((v->open && !c->open) || (v->open == c->open && c->updated_ms < v->updated_ms))
			victim = i;
	}
	alert_rec_fini(&a->recs[victim]);
	return &a->recs[victim];
}

static void
alert_set(char **dst, const char *s)
{
	free(*dst);
	*dst = s != NULL && s[0] != '\0' ? xstrdup(s) : NULL;
}

/* ---- notices ---- */

static void
alert_emit_cb(void *arg, const struct alert_notice *n)
{
	struct alert *a = arg;
	const struct conf_alert_rule *r = n->rule;
	const struct explain_entry *ex = alert_explain(a, n);
	struct buf title = BUF_INIT, text = BUF_INIT, what = BUF_INIT, reply = BUF_INIT;
	struct alert_msg m;
	struct alert_rec *rec;
	char id[400], since[32], dur[32], event[32];
	size_t i;

	snprintf(id, sizeof(id), "%s%s%s", r->name, n->group[0] ? ":" : "", n->group);
	alert_what(r, n, &what);
	alert_fmt_time(n->since_ms, since, sizeof(since));
	alert_fmt_dur(n->at_ms - n->since_ms, dur, sizeof(dur));
	switch (n->kind) {
	case ALERT_KIND_OPEN:
		buf_printf(&title, "%s", what.ptr);
		break;
	case ALERT_KIND_DIGEST:
		buf_printf(&title, "Still open: %s (%llu more since the last notice)", what.ptr,
		    (unsigned long long)n->count);
		break;
	case ALERT_KIND_ESCALATION:
		buf_printf(&title, "Escalated, open for %s: %s", dur, what.ptr);
		break;
	default:
		if (r->when == CONF_ALERT_UPSTREAM_DOWN)
			buf_printf(&title, "Resolved: %s", what.ptr);
		else
			buf_printf(&title, "Resolved after %s: %s", dur, what.ptr);
		break;
	}
	if (n->last_code > 0)
		buf_printf(&reply, "%d%s%s %s", n->last_code, n->last_enhanced[0] ? " " : "",
		    n->last_enhanced, n->last_text);
	else if (n->last_text != NULL && n->last_text[0] != '\0')
		buf_printf(&reply, "%s", n->last_text);
	buf_printf(&text, "Rule: %s (%s)\nSince: %s\n", r->name, alert_rules_when_name(r->when),
	    since);
	if (n->affected > 0)
		buf_printf(&text, "Messages affected: %llu\n", (unsigned long long)n->affected);
	if (n->kind == ALERT_KIND_DIGEST)
		buf_printf(&text, "Since the last notice: %llu more\n", (unsigned long long)n->count);
	if (n->last_upstream[0] != '\0')
		buf_printf(&text, "Upstream: %s\n", n->last_upstream);
	if (reply.len > 0)
		buf_printf(&text, "Last reply: %s\n", reply.ptr);
	if (ex != NULL)
		buf_printf(&text, "Cause: %s\n", ex->cause);
	buf_printf(&text, "What to do: %s\n", ex != NULL && ex->fix != NULL ? ex->fix :
	    alert_hint(r->when));
	for (i = 0; i < n->n_lines; i++)
		buf_printf(&text, "%s  %s\n", i == 0 ? "Examples:\n" : "", n->lines[i]);

	memset(&m, 0, sizeof(m));
	m.kind = n->kind;
	m.severity = n->kind == ALERT_KIND_RECOVERY ? ALERT_SEVERITY_INFO :
	    n->kind == ALERT_KIND_ESCALATION || r->when == CONF_ALERT_UPSTREAM_DOWN ||
	    r->when == CONF_ALERT_DISK_FREE ? ALERT_SEVERITY_CRITICAL : ALERT_SEVERITY_WARNING;
	m.id = id;
	m.rule = r->name;
	m.group = n->group;
	m.title = title.ptr;
	m.text = text.ptr;
	m.since_ms = n->since_ms;
	m.at_ms = n->at_ms;
	m.affected = n->affected;
	m.reply = reply.len > 0 ? reply.ptr : NULL;
	m.cause = ex != NULL ? ex->cause : NULL;
	m.fix = ex != NULL && ex->fix != NULL ? ex->fix : alert_hint(r->when);
	m.node = a->conf->node;

	a->notices[n->kind]++;
	snprintf(event, sizeof(event), "alert_%s", alert_kind_word(n->kind));
	log_warn("alert", event, "id=%s rule=%s when=%s group=%s affected=%llu count=%llu value=%llu "
	    "channels=%zu title=%s", log_q(id), r->name, alert_rules_when_name(r->when),
	    log_q(n->group), (unsigned long long)n->affected, (unsigned long long)n->count,
	    (unsigned long long)n->value, n->n_channels, log_q(title.ptr));

	rec = alert_rec_find(a, id);
	if (rec == NULL && n->kind != ALERT_KIND_RECOVERY) {
		rec = alert_rec_new(a);
		rec->id = xstrdup(id);
		rec->rule = xstrdup(r->name);
		rec->when = xstrdup(alert_rules_when_name(r->when));
		rec->group = xstrdup(n->group);
		rec->open = true;
		rec->since_ms = n->since_ms;
		rec->rule_index = n->rule_index;
		rec->gen = a->gen;
	}
	if (rec != NULL) {
		rec->updated_ms = n->at_ms;
		rec->affected = n->affected > rec->affected ? n->affected : rec->affected;
		rec->notices++;
		rec->escalated |= n->kind == ALERT_KIND_ESCALATION;
		if (n->kind == ALERT_KIND_RECOVERY) {
			rec->open = false;
			rec->resolved_ms = n->at_ms;
		} else {
			alert_set(&rec->title, title.ptr);
			alert_set(&rec->text, text.ptr);
		}
		alert_set(&rec->reply, reply.ptr);
		alert_set(&rec->cause, m.cause);
		alert_set(&rec->fix, m.fix);
	}

	for (i = 0; a->send != NULL && i < n->n_channels; i++) {
		struct hk_err err = { 0 };

		if (a->send(a->send_arg, n->channels[i], &m, &err) == -1)
			log_error("alert", "alert_send_failed", "id=%s channel=%s err=%s", log_q(id),
			    log_q(n->channels[i]), log_q(err.text));
	}
	buf_fini(&title);
	buf_fini(&text);
	buf_fini(&what);
	buf_fini(&reply);
}

/* ---- rules, scaled ---- */

static void
alert_rules_build(struct alert *a, struct conf *conf)
{
	struct alert_rules_params p;
	unsigned scale = conf->alert_time_scale > 0 ? conf->alert_time_scale : 1;
	time_t now = time(NULL);
	struct tm tm;
	size_t i;

	free(a->rules);
	a->n_rules = conf->n_alert_rules;
	a->rules = xcalloc(a->n_rules > 0 ? a->n_rules : 1, sizeof(*a->rules));
	for (i = 0; i < a->n_rules; i++) {
		a->rules[i] = conf->alert_rules[i];
		a->rules[i].window_ms /= scale;
		a->rules[i].cooldown_ms /= scale;
		a->rules[i].escalate_after_ms /= scale;
		if (a->rules[i].window_ms == 0)
			a->rules[i].window_ms = 1;
		if (conf->alert_rules[i].escalate_after_ms > 0 && a->rules[i].escalate_after_ms == 0)
			a->rules[i].escalate_after_ms = 1;
	}
	memset(&p, 0, sizeof(p));
	p.rules = a->rules;
	p.n_rules = a->n_rules;
	p.emit = alert_emit_cb;
	p.emit_arg = a;
	localtime_r(&now, &tm);
	p.tz_offset_s = (int)tm.tm_gmtoff;
	a->engine = alert_rules_new(&p);
	a->gen++;
	a->tick_ms = ALERT_TICK_MS / scale;
	a->poll_ms = ALERT_POLL_MS / scale;
	if (a->tick_ms < ALERT_MIN_PERIOD_MS)
		a->tick_ms = ALERT_MIN_PERIOD_MS;
	if (a->poll_ms < ALERT_MIN_PERIOD_MS)
		a->poll_ms = ALERT_MIN_PERIOD_MS;
}

/* ---- gauges ---- */

static void
alert_read_cert(struct alert *a)
{
	FILE *f;
	X509 *x;
	struct tm tm;

	a->have_cert = false;
	if (a->conf->tls_cert == NULL)
		return;
	f = fopen(a->conf->tls_cert, "r");
	if (f == NULL) {
		log_warn("alert", "cert_unreadable", "qid=- path=%s errno=%d",
		    log_q(a->conf->tls_cert), errno);
		return;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return;
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
		time_t t = timegm(&tm);

		if (t > 0) {
			a->cert_not_after_ms = (uint64_t)t * 1000;
			a->have_cert = true;
		}
	}
	X509_free(x);
}

static void
alert_poll(struct alert *a, uint64_t now)
{
	struct statvfs sv;
	size_t i;

	if (a->conf->spool != NULL && statvfs(a->conf->spool, &sv) == 0 && sv.f_blocks > 0)
		alert_rules_gauge(a->engine, ALERT_GAUGE_DISK_FREE_PCT, NULL,
		    (uint64_t)sv.f_bavail * 100 / sv.f_blocks, now);
	if (now - a->last_cert_ms >= ALERT_CERT_EVERY_MS) {
		a->last_cert_ms = now;
		alert_read_cert(a);
	}
	for (i = 0; a->have_cert && i < a->conf->n_listeners; i++) {
		const struct conf_listener *l = &a->conf->listeners[i];

		if (l->tls == CONF_TLS_NONE)
			continue;
		alert_rules_gauge(a->engine, ALERT_GAUGE_CERT_LEFT_MS, l->name != NULL ? l->name :
		    l->addr.text, a->cert_not_after_ms > now ? a->cert_not_after_ms - now : 0, now);
	}
	if (a->poll != NULL)
		a->poll(a->poll_arg, a);
}

void
alert_tick(struct alert *a)
{
	uint64_t now = clock_now_ms();

	if (now - a->last_poll_ms >= a->poll_ms) {
		a->last_poll_ms = now;
		alert_poll(a, now);
	}
	alert_rules_tick(a->engine, now);
}

static void
alert_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	alert_tick(arg);
}

static void
alert_timer_start(struct alert *a)
{
	struct timeval tv = { (time_t)(a->tick_ms / 1000), (suseconds_t)(a->tick_ms % 1000) * 1000 };

	if (a->tick_ev != NULL)
		event_free(a->tick_ev);
	a->tick_ev = event_new(a->base, -1, EV_PERSIST, alert_tick_cb, a);
	event_add(a->tick_ev, &tv);
}

/* ---- lifecycle ---- */

struct alert *
alert_new(const struct alert_params *p, struct hk_err *err)
{
	struct alert *a = xcalloc(1, sizeof(*a));

	(void)err;
	a->base = p->base;
	a->conf = conf_ref(p->conf);
	a->send = p->send;
	a->send_arg = p->send_arg;
	a->poll = p->poll;
	a->poll_arg = p->poll_arg;
	alert_rules_build(a, a->conf);
	a->last_cert_ms = clock_now_ms();
	alert_read_cert(a);
	if (!p->no_timers && a->base != NULL && a->n_rules > 0)
		alert_timer_start(a);
	return a;
}

int
alert_reload(struct alert *a, struct conf *conf, struct hk_err *err)
{
	size_t i;

	(void)err;
	/* A reload starts the rules afresh: alerts open now are listed as ended by it. */
	for (i = 0; i < a->n_recs; i++) {
		if (a->recs[i].open) {
			a->recs[i].open = false;
			a->recs[i].resolved_ms = clock_now_ms();
			alert_set(&a->recs[i].fix, "The configuration was reloaded; the rule "
			    "starts afresh and opens again if the condition still holds.");
		}
	}
	alert_rules_free(a->engine);
	conf_ref(conf);
	conf_unref(a->conf);
	a->conf = conf;
	alert_rules_build(a, conf);
	alert_read_cert(a);
	if (a->tick_ev != NULL || (a->base != NULL && a->n_rules > 0))
		alert_timer_start(a);
	return 0;
}

void
alert_free(struct alert *a)
{
	size_t i;

	if (a == NULL)
		return;
	if (a->tick_ev != NULL)
		event_free(a->tick_ev);
	alert_rules_free(a->engine);
	for (i = 0; i < a->n_recs; i++)
		alert_rec_fini(&a->recs[i]);
	free(a->rules);
	conf_unref(a->conf);
	free(a);
}

void
alert_event(struct alert *a, const struct alert_event *ev)
{
	alert_rules_event(a->engine, ev, clock_now_ms());
}

void
alert_gauge(struct alert *a, enum alert_gauge g, const char *key, uint64_t value)
{
	alert_rules_gauge(a->engine, g, key, value, clock_now_ms());
}

uint64_t
alert_notices(const struct alert *a, enum alert_kind k)
{
	return (unsigned)k <= ALERT_KIND_TEST ? a->notices[k] : 0;
}

/* ---- the list ---- */

static json_t *
alert_json_str(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *
alert_json_time(uint64_t ms)
{
	char t[32];

	if (ms == 0)
		return json_null();
	alert_fmt_time(ms, t, sizeof(t));
	return json_string(t);
}

static json_t *
alert_rec_json(const struct alert_rec *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "rule", json_string(r->rule));
	json_object_set_new(o, "when", json_string(r->when));
	json_object_set_new(o, "group", json_string(r->group));
	json_object_set_new(o, "status", json_string(r->open ? "open" : "resolved"));
	json_object_set_new(o, "since", alert_json_time(r->since_ms));
	json_object_set_new(o, "updated", alert_json_time(r->updated_ms));
	json_object_set_new(o, "resolved", alert_json_time(r->resolved_ms));
	json_object_set_new(o, "affected", json_integer((json_int_t)r->affected));
	json_object_set_new(o, "notices", json_integer((json_int_t)r->notices));
	json_object_set_new(o, "escalated", json_boolean(r->escalated));
	json_object_set_new(o, "title", alert_json_str(r->title));
	json_object_set_new(o, "text", alert_json_str(r->text));
	json_object_set_new(o, "reply", alert_json_str(r->reply));
	json_object_set_new(o, "cause", alert_json_str(r->cause));
	json_object_set_new(o, "fix", alert_json_str(r->fix));
	return o;
}

static int
alert_rec_cmp(const void *x, const void *y)
{
	const struct alert_rec *a = *(const struct alert_rec *const *)x;
	const struct alert_rec *b = *(const struct alert_rec *const *)y;

	if (a->open != b->open)
		return a->open ? -1 : 1;
	if (a->updated_ms != b->updated_ms)
		return a->updated_ms > b->updated_ms ? -1 : 1;
	return 0;
}

void
alert_list_json(const struct alert *a, struct buf *out)
{
	const struct alert_rec *order[ALERT_RECORDS_MAX];
	json_t *list = json_array(), *root;
	size_t i, open = 0;
	char *s;

	for (i = 0; i < a->n_recs; i++) {
		order[i] = &a->recs[i];
		open += a->recs[i].open;
	}
	qsort(order, a->n_recs, sizeof(order[0]), alert_rec_cmp);
	for (i = 0; i < a->n_recs; i++)
		json_array_append_new(list, alert_rec_json(order[i]));
	root = json_pack("{s:o, s:I, s:I}", "alerts", list, "open", (json_int_t)open, "rules",
	    (json_int_t)a->n_rules);
	s = json_dumps(root, JSON_COMPACT);
	buf_append_str(out, s != NULL ? s : "{}");
	free(s);
	json_decref(root);
}
