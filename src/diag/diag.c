/*
 * diag.c - running the DNS checks: lookups on the loop, the schedule, and "got worse".
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conf/conf.h"
#include "../dns/dns.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "diag.h"
#include "diag_align.h"
#include "diag_facts.h"
#include "diag_rules.h"
#include "../util/poison.h"

/* Lookups one check may make before the rest count as failed. */
#define DIAG_MAX_LOOKUPS 300
#define DIAG_FIRST_DELAY_MS 5000

struct diag_query;

struct diag_run {
	struct diag *d;
	struct diag_run *prev, *next;
	struct conf *conf;              /* referenced */
	char domain[DNS_NAME_MAX];
	char selector[64];
	char ip[64];
	const char *ips[4];
	struct diag_upstream ups[16];
	struct diag_input in;
	struct diag_facts fs;
	struct diag_report rep;
	struct diag_query *queries;     /* outstanding */
	size_t pending, started;
	bool cancelled, finishing;
	struct event *step_ev;
	diag_done_fn done;
	void *arg;
};

struct diag_query {
	struct diag_run *run;
	struct diag_query *prev, *next;
	enum diag_fact_type type;
	char name[DNS_NAME_MAX];
};

/* One scheduled domain: the last report, to tell what got worse. */
struct diag_sched {
	struct diag *d;
	char domain[DNS_NAME_MAX];
	bool have_prev;
	struct diag_report prev;
	struct diag_run *run;
};

struct diag {
	struct event_base *base;
	struct conf *conf;
	struct dns *dns;
	struct diag_run *runs;
	bool schedule;
	uint64_t first_delay_ms;
	struct event *timer;
	struct diag_sched *sched;
	size_t n_sched;
	void (*worse)(void *arg, const struct diag_finding *f, const char *domain);
	void *worse_arg;
};

static void diag_run_step(struct diag_run *r);

/* ---- answers into facts ---- */

static void
diag_query_unlink(struct diag_query *q)
{
	struct diag_run *r = q->run;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		r->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	r->pending--;
}

/* Record the answer, then step the run once every answer is in. */
static void
diag_query_done(struct diag_query *q, enum dns_status st, const char *why,
    const char *const *vals, size_t n, bool implicit)
{
	struct diag_run *r = q->run;
	struct diag_fact *f;

	diag_query_unlink(q);
	diag_facts_set(&r->fs, q->type, q->name, st, vals, n);
	f = diag_facts_slot(&r->fs, q->type, q->name);
	f->implicit_mx = implicit;
	snprintf(f->why, sizeof(f->why), "%s", why != NULL ? why : "");
	free(q);
	if (r->pending == 0)
		event_active(r->step_ev, EV_TIMEOUT, 0);
}

static void
diag_txt_cb(void *arg, const struct dns_txt_result *res)
{
	diag_query_done(arg, res->status, res->why, res->recs, res->n, false);
}

static void
diag_addr_cb(void *arg, const struct dns_addr_result *res)
{
	char text[DNS_MAX_RESULTS][INET6_ADDRSTRLEN];
	const char *vals[DNS_MAX_RESULTS];
	size_t i, n = 0;

	for (i = 0; i < res->n; i++) {
		const struct sockaddr_storage *ss = &res->addrs[i];
		const void *a = ss->ss_family == AF_INET6 ?
		    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
		    (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

		if (inet_ntop(ss->ss_family, a, text[n], sizeof(text[n])) != NULL) {
			vals[n] = text[n];
			n++;
		}
	}
	diag_query_done(arg, res->status, res->why, vals, n, false);
}

static void
diag_mx_cb(void *arg, const struct dns_mx_result *res)
{
	const char *vals[DNS_MAX_RESULTS];
	size_t i;

	for (i = 0; i < res->n; i++)
		vals[i] = res->hosts[i].name;
	diag_query_done(arg, res->status, res->why, vals, res->n, res->implicit);
}

static void
diag_ptr_cb(void *arg, const struct dns_ptr_result *res)
{
	const char *vals[DNS_PTR_MAX];
	size_t i;

	for (i = 0; i < res->n; i++)
		vals[i] = res->names[i];
	diag_query_done(arg, res->status, res->why, vals, res->n, false);
}

static void
diag_query_start(struct diag_run *r, struct diag_fact *f)
{
	struct diag_query *q = xcalloc(1, sizeof(*q));

	f->asked = true;
	q->run = r;
	q->type = f->type;
	memcpy(q->name, f->name, sizeof(q->name));
	q->next = r->queries;
	if (r->queries != NULL)
		r->queries->prev = q;
	r->queries = q;
	r->pending++;
	r->started++;
	switch (q->type) {
	case DIAG_FACT_TXT:
		dns_txt(r->d->dns, q->name, diag_txt_cb, q);
		break;
	case DIAG_FACT_ADDR:
		dns_addrs(r->d->dns, q->name, diag_addr_cb, q);
		break;
	case DIAG_FACT_MX:
		dns_mx(r->d->dns, q->name, diag_mx_cb, q);
		break;
	case DIAG_FACT_PTR:
		dns_ptr(r->d->dns, q->name, diag_ptr_cb, q);
		break;
	}
}

/* ---- runs ---- */

static void
diag_run_free(struct diag_run *r)
{
	struct diag *d = r->d;
	struct diag_query *q;

	/* Their answers can no longer come: the resolver is gone or the queries are orphaned. */
	while ((q = r->queries) != NULL) {
		r->queries = q->next;
		free(q);
	}
	if (r->prev != NULL)
		r->prev->next = r->next;
	else if (d->runs == r)
		d->runs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	event_free(r->step_ev);
	diag_facts_fini(&r->fs);
	diag_report_fini(&r->rep);
	conf_unref(r->conf);
	free(r);
}

static void
diag_run_step(struct diag_run *r)
{
	size_t i;

	if (r->cancelled) {
		if (r->pending == 0)
			diag_run_free(r);
		return;
	}
	diag_rules_run(&r->in, &r->fs, &r->rep);
	if (diag_facts_wanted(&r->fs) > 0 && r->started < DIAG_MAX_LOOKUPS) {
		for (i = 0; i < r->fs.n && r->started < DIAG_MAX_LOOKUPS; i++) {
			if (!r->fs.v[i].done && !r->fs.v[i].asked)
				diag_query_start(r, &r->fs.v[i]);
		}
		return;
	}
	if (diag_facts_wanted(&r->fs) > 0) {
		r->fs.frozen = true;
		diag_rules_run(&r->in, &r->fs, &r->rep);
	}
	r->done(r->arg, &r->rep);
	if (r->pending == 0) {
		diag_run_free(r);
	} else {
		/* Answers still out (started before the limit): drop the run when they are in. */
		r->cancelled = true;
	}
}

static void
diag_step_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	diag_run_step(arg);
}

/* The input of the rules from the configuration: route, upstreams, IPs, blocklists. */
static void
diag_run_input(struct diag_run *r)
{
	const struct conf *c = r->conf;
	const struct conf_route *rt = diag_align_route(c, r->domain);
	struct diag_input *in = &r->in;
	size_t i;

	in->domain = r->domain;
	in->selector = r->selector;
	if (r->ip[0] != '\0') {
		r->ips[0] = r->ip;
		in->n_ips = 1;
	} else {
		for (i = 0; i < c->n_checks_ips && i < HK_ARRAY_LEN(r->ips); i++)
			r->ips[i] = c->checks_ips[i];
		in->n_ips = i;
	}
	in->ips = r->ips;
	in->blocklists = (const char *const *)c->checks_blocklists;
	in->n_blocklists = c->n_checks_blocklists;
	in->upstreams = r->ups;
	in->mx_mode = rt != NULL && rt->mx;
	for (i = 0; rt != NULL && i < rt->n_upstreams && i < HK_ARRAY_LEN(r->ups); i++) {
		const struct conf_upstream *u = &c->upstreams[rt->upstreams[i]];

		r->ups[i].name = u->name;
		r->ups[i].host = u->host;
		r->ups[i].account_domain = u->username != NULL ?
		    diag_align_addr_domain(u->username) : NULL;
	}
	in->n_upstreams = i;
	snprintf(r->rep.domain, sizeof(r->rep.domain), "%s", r->domain);
	snprintf(r->rep.selector, sizeof(r->rep.selector), "%s", r->selector);
	for (i = 0; i < in->n_ips; i++)
		snprintf(r->rep.ips[i], sizeof(r->rep.ips[i]), "%s", in->ips[i]);
	r->rep.n_ips = in->n_ips;
}

struct diag_run *
diag_check(struct diag *d, const char *domain, const char *selector, const char *ip,
    diag_done_fn done, void *arg)
{
	struct diag_run *r = xcalloc(1, sizeof(*r));
	size_t n;

	HK_ASSERT_LOOP();
	r->d = d;
	r->conf = conf_ref(d->conf);
	n = strnlen(domain, sizeof(r->domain) - 1);
	memcpy(r->domain, domain, n);
	if (n > 1 && r->domain[n - 1] == '.')
		n--;
	r->domain[n] = '\0';
	for (n = 0; r->domain[n] != '\0'; n++) {
		if (r->domain[n] >= 'A' && r->domain[n] <= 'Z')
			r->domain[n] = (char)(r->domain[n] - 'A' + 'a');
	}
	if (selector == NULL)
		selector = d->conf->checks_selector;
	snprintf(r->selector, sizeof(r->selector), "%s", selector != NULL ? selector : "");
	snprintf(r->ip, sizeof(r->ip), "%s", ip != NULL ? ip : "");
	r->done = done;
	r->arg = arg;
	diag_facts_init(&r->fs);
	diag_report_init(&r->rep);
	diag_run_input(r);
	r->step_ev = event_new(d->base, -1, 0, diag_step_cb, r);
	HK_ASSERT(r->step_ev != NULL);
	r->next = d->runs;
	if (d->runs != NULL)
		d->runs->prev = r;
	d->runs = r;
	event_active(r->step_ev, EV_TIMEOUT, 0);
	return r;
}

void
diag_check_cancel(struct diag_run *r)
{
	if (r == NULL)
		return;
	r->cancelled = true;
	if (r->pending == 0) {
		/* The step event may be active: let it run and free the run. */
		event_active(r->step_ev, EV_TIMEOUT, 0);
	}
}

/* ---- the schedule ---- */

/* Keep the last known status of findings that were only lookup failures this time. */
static void
diag_sched_keep(struct diag_sched *s, const struct diag_report *r)
{
	struct diag_report next;
	size_t i;

	diag_report_init(&next);
	for (i = 0; i < r->n; i++) {
		const struct diag_finding *f = &r->v[i], *old = NULL;

		if (f->transient && s->have_prev)
			old = diag_report_find(&s->prev, f->key);
		diag_report_add(&next, "", "", DIAG_OK, "%s", "");
		next.v[next.n - 1] = old != NULL ? *old : *f;
	}
	diag_report_fini(&s->prev);
	s->prev = next;
	s->have_prev = true;
}

static void
diag_sched_done_cb(void *arg, const struct diag_report *r)
{
	struct diag_sched *s = arg;
	struct diag *d = s->d;
	size_t i, worse = 0;

	s->run = NULL;
	if (s->have_prev) {
		for (i = 0; i < r->n; i++) {
			const struct diag_finding *f = &r->v[i], *old;
			enum diag_status was;

			if (f->transient || f->status == DIAG_OK)
				continue;
			old = diag_report_find(&s->prev, f->key);
			was = old != NULL ? old->status : DIAG_OK;
			if (f->status <= was)
				continue;
			worse++;
			log_warn("diag", "check_worse", "sess=diag domain=%s check=%s key=%s "
			    "status=%s was=%s text=%s fix=%s", log_q(r->domain), f->check,
			    log_q(f->key), diag_status_name(f->status), diag_status_name(was),
			    log_q(f->text), log_q(f->fix));
			if (d->worse != NULL)
				d->worse(d->worse_arg, f, r->domain);
		}
	}
	log_info("diag", "check_done", "sess=diag domain=%s ok=%zu warnings=%zu errors=%zu "
	    "worse=%zu", log_q(r->domain), diag_report_count(r, DIAG_OK),
	    diag_report_count(r, DIAG_WARNING), diag_report_count(r, DIAG_ERROR), worse);
	diag_sched_keep(s, r);
}

static void
diag_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct diag *d = arg;
	struct timeval tv;
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < d->n_sched; i++) {
		struct diag_sched *s = &d->sched[i];

		/* A run still going (slow resolver) is not started twice. */
		if (s->run == NULL)
			s->run = diag_check(d, s->domain, NULL, NULL, diag_sched_done_cb, s);
	}
	tv.tv_sec = (time_t)(d->conf->checks_interval_ms / 1000);
	tv.tv_usec = (suseconds_t)(d->conf->checks_interval_ms % 1000 * 1000);
	evtimer_add(d->timer, &tv);
}

static void
diag_sched_stop(struct diag *d)
{
	size_t i;

	if (d->timer != NULL)
		evtimer_del(d->timer);
	for (i = 0; i < d->n_sched; i++) {
		diag_check_cancel(d->sched[i].run);
		diag_report_fini(&d->sched[i].prev);
	}
	free(d->sched);
	d->sched = NULL;
	d->n_sched = 0;
}

static void
diag_sched_start(struct diag *d)
{
	const struct conf *c = d->conf;
	struct timeval tv;
	size_t i;

	if (!d->schedule || c->checks_interval_ms == 0 || c->n_checks_domains == 0)
		return;
	d->sched = xcalloc(c->n_checks_domains, sizeof(*d->sched));
	d->n_sched = c->n_checks_domains;
	for (i = 0; i < d->n_sched; i++) {
		d->sched[i].d = d;
		snprintf(d->sched[i].domain, sizeof(d->sched[i].domain), "%s", c->checks_domains[i]);
	}
	tv.tv_sec = (time_t)(d->first_delay_ms / 1000);
	tv.tv_usec = (suseconds_t)(d->first_delay_ms % 1000 * 1000);
	evtimer_add(d->timer, &tv);
	log_info("diag", "schedule", "sess=diag domains=%zu interval_ms=%llu", d->n_sched,
	    (unsigned long long)c->checks_interval_ms);
}

/* ---- life ---- */

struct diag *
diag_new(const struct diag_params *p, struct hk_err *err)
{
	struct diag *d = xcalloc(1, sizeof(*d));
	struct dns_params dp;

	d->base = p->base;
	d->conf = conf_ref(p->conf);
	d->schedule = p->schedule;
	d->first_delay_ms = p->first_delay_ms ? p->first_delay_ms : DIAG_FIRST_DELAY_MS;
	d->worse = p->worse;
	d->worse_arg = p->worse_arg;
	dns_params_from_conf(&dp, d->conf);
	d->dns = dns_new(d->base, &dp, err);
	if (d->dns == NULL) {
		conf_unref(d->conf);
		free(d);
		return NULL;
	}
	d->timer = evtimer_new(d->base, diag_timer_cb, d);
	HK_ASSERT(d->timer != NULL);
	diag_sched_start(d);
	return d;
}

void
diag_reload(struct diag *d, struct conf *c)
{
	diag_sched_stop(d);
	conf_unref(d->conf);
	d->conf = conf_ref(c);
	diag_sched_start(d);
}

void
diag_free(struct diag *d)
{
	if (d == NULL)
		return;
	diag_sched_stop(d);
	/* No answer comes after this: every run can go, with its queries. */
	dns_free(d->dns);
	while (d->runs != NULL)
		diag_run_free(d->runs);
	event_free(d->timer);
	conf_unref(d->conf);
	free(d);
}
