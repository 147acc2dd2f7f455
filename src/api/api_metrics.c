/*
 * api_metrics.c - GET /metrics: counters from the daemon, queue gauges from the email log, and
 * upstream health, as Prometheus text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "api_metrics.h"
#include "../util/clock.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

void
api_metrics_label(struct buf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_putc(out, '\\');
		if (*v == '\n') {
			buf_append_str(out, "\\n");
			continue;
		}
		buf_putc(out, *v);
	}
}

static void
api_metrics_head(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP hikyaku_%s %s\n# TYPE hikyaku_%s %s\n", name, help, name, type);
}

static void
api_metrics_one(struct buf *out, const char *name, const char *type, const char *help,
    uint64_t v)
{
	api_metrics_head(out, name, type, help);
	buf_printf(out, "hikyaku_%s %llu\n", name, (unsigned long long)v);
}

/* hikyaku_<name>{upstream="<u>"<extra>} v */
static void
api_metrics_up_line(struct buf *out, const char *name, const char *up, const char *extra,
    uint64_t v)
{
	buf_printf(out, "hikyaku_%s{upstream=\"", name);
	api_metrics_label(out, up);
	buf_printf(out, "\"%s} %llu\n", extra ? extra : "", (unsigned long long)v);
}

static void
api_metrics_upstreams(const struct api_metrics_in *in, struct buf *out)
{
	static const enum upstream_health healths[] = { UPSTREAM_HEALTH_UP,
		UPSTREAM_HEALTH_DEGRADED, UPSTREAM_HEALTH_PAUSED, UPSTREAM_HEALTH_DOWN };
	char extra[64];
	size_t i, k;

	if (in->n_ups == 0)
		return;
	api_metrics_head(out, "upstream_up", "gauge",
	    "1 when the upstream takes traffic (up or degraded), else 0.");
	for (i = 0; i < in->n_ups; i++)
		api_metrics_up_line(out, "upstream_up", in->ups[i].name, NULL,
		    in->ups[i].snap.health == UPSTREAM_HEALTH_UP ||
		    in->ups[i].snap.health == UPSTREAM_HEALTH_DEGRADED);
	api_metrics_head(out, "upstream_health", "gauge",
	    "1 for the upstream's current health (up, degraded, paused, down).");
	for (i = 0; i < in->n_ups; i++) {
		for (k = 0; k < HK_ARRAY_LEN(healths); k++) {
			snprintf(extra, sizeof(extra), ",health=\"%s\"",
			    upstream_health_name(healths[k]));
			api_metrics_up_line(out, "upstream_health", in->ups[i].name, extra,
			    in->ups[i].snap.health == healths[k]);
		}
	}
	api_metrics_head(out, "upstream_breaker_open", "gauge",
	    "1 while the circuit breaker is open or half-open.");
	for (i = 0; i < in->n_ups; i++)
		api_metrics_up_line(out, "upstream_breaker_open", in->ups[i].name, NULL,
		    in->ups[i].snap.open);
	api_metrics_head(out, "upstream_sent_recipients", "gauge",
	    "Recipients handed to the upstream in the rolling window.");
	for (i = 0; i < in->n_ups; i++) {
		api_metrics_up_line(out, "upstream_sent_recipients", in->ups[i].name,
		    ",window=\"hour\"", in->ups[i].snap.sent_hour);
		api_metrics_up_line(out, "upstream_sent_recipients", in->ups[i].name,
		    ",window=\"day\"", in->ups[i].snap.sent_day);
	}
	for (i = 0, k = 0; i < in->n_ups; i++)
		k += in->ups[i].snap.per_hour || in->ups[i].snap.per_day;
	if (k)
		api_metrics_head(out, "upstream_limit_recipients", "gauge",
		    "The upstream's per_hour and per_day limits (absent when unlimited).");
	for (i = 0; i < in->n_ups; i++) {
		if (in->ups[i].snap.per_hour)
			api_metrics_up_line(out, "upstream_limit_recipients", in->ups[i].name,
			    ",window=\"hour\"", in->ups[i].snap.per_hour);
		if (in->ups[i].snap.per_day)
			api_metrics_up_line(out, "upstream_limit_recipients", in->ups[i].name,
			    ",window=\"day\"", in->ups[i].snap.per_day);
	}
	api_metrics_head(out, "upstream_connections", "gauge", "Transactions in progress.");
	for (i = 0; i < in->n_ups; i++)
		api_metrics_up_line(out, "upstream_connections", in->ups[i].name, NULL,
		    in->ups[i].snap.connections_in_use);
}

/* Alert channels: notices sent by result, failures after every retry, retries. */
static void
api_metrics_alerts(const struct api_metrics_in *in, struct buf *out)
{
	static const char *const what[] = { "alerts_sent_total", "alerts_failed_total",
		"alert_retries_total" };
	size_t i, k;

	if (in->n_alerts == 0)
		return;
	api_metrics_head(out, what[0], "counter",
	    "Alert notices by channel and result (failed: after every retry).");
	for (i = 0; i < in->n_alerts; i++) {
		for (k = 0; k < 2; k++) {
			buf_append_str(out, "hikyaku_alerts_sent_total{channel=\"");
			api_metrics_label(out, in->alerts[i].channel);
			buf_printf(out, "\",result=\"%s\"} %llu\n", k ? "failed" : "ok",
			    (unsigned long long)(k ? in->alerts[i].sent_failed :
			    in->alerts[i].sent_ok));
		}
	}
	for (k = 1; k < HK_ARRAY_LEN(what); k++) {
		api_metrics_head(out, what[k], "counter", k == 1 ?
		    "Alert notices a channel failed to deliver after every retry." :
		    "Alert delivery attempts retried, by channel.");
		for (i = 0; i < in->n_alerts; i++) {
			buf_printf(out, "hikyaku_%s{channel=\"", what[k]);
			api_metrics_label(out, in->alerts[i].channel);
			buf_printf(out, "\"} %llu\n", (unsigned long long)(k == 1 ?
			    in->alerts[i].sent_failed : in->alerts[i].retries));
		}
	}
}

void
api_metrics_render(const struct api_metrics_in *in, struct buf *out)
{
	static const char *const states[] = { "queued", "deferred", "held" };
	const struct api_stats *st = &in->stats;
	size_t i;

	api_metrics_one(out, "up", "gauge", "1 while the daemon serves.", 1);
	api_metrics_one(out, "start_time_seconds", "gauge", "Start time, Unix seconds.",
	    st->started_ms / 1000);
	api_metrics_head(out, "messages_received_total", "counter",
	    "Messages accepted since start, by source.");
	buf_printf(out, "hikyaku_messages_received_total{source=\"smtp\"} %llu\n"
	    "hikyaku_messages_received_total{source=\"api\"} %llu\n"
	    "hikyaku_messages_received_total{source=\"sendmail\"} %llu\n",
	    (unsigned long long)st->received_smtp, (unsigned long long)st->received_api,
	    (unsigned long long)st->received_sendmail);
	api_metrics_one(out, "messages_recovered_total", "counter",
	    "Queued messages found in the spool at start.", st->recovered);
	if (in->have_queue) {
		api_metrics_head(out, "queue_messages", "gauge",
		    "Unfinished messages by state (from the email log).");
		for (i = 0; i < HK_ARRAY_LEN(states); i++)
			buf_printf(out, "hikyaku_queue_messages{state=\"%s\"} %llu\n", states[i],
			    (unsigned long long)in->queue[i]);
	}
	api_metrics_one(out, "scheduler_waiting_messages", "gauge",
	    "Messages waiting for their next attempt.", st->sched_waiting);
	api_metrics_one(out, "deliveries_in_progress", "gauge", "Delivery passes running.",
	    st->delivering);
	api_metrics_one(out, "smtp_sessions", "gauge", "Open SMTP sessions.", st->smtp_sessions);
	api_metrics_head(out, "delivery_attempts_total", "counter",
	    "Delivery attempts per recipient, by verdict (next: failed over to the next upstream, "
	    "spill: the upstream said quota).");
	buf_printf(out, "hikyaku_delivery_attempts_total{result=\"sent\"} %llu\n"
	    "hikyaku_delivery_attempts_total{result=\"next\"} %llu\n"
	    "hikyaku_delivery_attempts_total{result=\"spill\"} %llu\n"
	    "hikyaku_delivery_attempts_total{result=\"deferred\"} %llu\n"
	    "hikyaku_delivery_attempts_total{result=\"bounced\"} %llu\n",
	    (unsigned long long)st->attempts_sent, (unsigned long long)st->attempts_next,
	    (unsigned long long)st->attempts_spill, (unsigned long long)st->attempts_deferred,
	    (unsigned long long)st->attempts_bounced);
	api_metrics_head(out, "recipients_total", "counter",
	    "Recipients by the outcome of a delivery pass (deferred counts every deferral).");
	buf_printf(out, "hikyaku_recipients_total{status=\"sent\"} %llu\n"
	    "hikyaku_recipients_total{status=\"bounced\"} %llu\n"
	    "hikyaku_recipients_total{status=\"expired\"} %llu\n"
	    "hikyaku_recipients_total{status=\"deferred\"} %llu\n",
	    (unsigned long long)st->rcpts_sent, (unsigned long long)st->rcpts_bounced,
	    (unsigned long long)st->rcpts_expired, (unsigned long long)st->rcpts_deferred);
	api_metrics_one(out, "messages_finished_total", "counter",
	    "Messages that left the queue with every recipient final.", st->messages_finished);
	api_metrics_one(out, "maybe_delivered_total", "counter",
	    "Attempts cut after the final dot (the message may have been delivered).",
	    st->maybe_delivered);
	api_metrics_one(out, "email_log_up", "gauge", "1 when the email log could be read.",
	    in->have_queue);
	api_metrics_one(out, "email_log_pending_events", "gauge",
	    "Email log events not yet committed.", st->maillog_pending);
	api_metrics_one(out, "email_log_dropped_events_total", "counter",
	    "Email log events lost to failed writes.", st->maillog_dropped);
	api_metrics_upstreams(in, out);
	api_metrics_alerts(in, out);
	api_metrics_one(out, "api_requests_total", "counter", "HTTP API requests.",
	    in->api_requests);
}

struct api_metrics_req {
	struct api *a;
	struct evhttp_request *req;
};

struct api_metrics_ups {
	struct api_metrics_up *v;
	size_t n, cap;
};

struct api_metrics_alerts {
	struct api_metrics_alert *v;
	size_t n;
};

static void
api_metrics_alert_cb(void *ctx, const char *channel, const char *type, uint64_t sent_ok,
    uint64_t sent_failed, uint64_t retries)
{
	struct api_metrics_alerts *al = ctx;

	al->v = xreallocarray(al->v, al->n + 1, sizeof(*al->v));
	al->v[al->n].channel = xstrdup(channel);
	al->v[al->n].type = xstrdup(type);
	al->v[al->n].sent_ok = sent_ok;
	al->v[al->n].sent_failed = sent_failed;
	al->v[al->n].retries = retries;
	al->n++;
}

static void
api_metrics_up_cb(void *ctx, const struct conf_upstream *cu, const struct upstream_snapshot *s)
{
	struct api_metrics_ups *u = ctx;

	if (u->n == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 8;
		u->v = xreallocarray(u->v, u->cap, sizeof(*u->v));
	}
	u->v[u->n].name = xstrdup(cu->name);
	u->v[u->n].snap = *s;
	u->v[u->n].snap.last_error = NULL; /* borrowed: not kept */
	u->n++;
}

static void
api_metrics_done(void *arg, struct maillog_result *res)
{
	static const char *const states[] = { "queued", "deferred", "held" };
	struct api_metrics_req *m = arg;
	struct api *a = m->a;
	struct api_metrics_in in;
	struct api_metrics_ups ups = { 0 };
	struct api_metrics_alerts al = { 0 };
	struct buf out = BUF_INIT;
	const struct maillog_rows *rows = &res->sets[MAILLOG_SET_COUNTS];
	int sc = maillog_rows_col(rows, "status"), cc = maillog_rows_col(rows, "count");
	size_t i, r;

	memset(&in, 0, sizeof(in));
	if (a->ops.stats)
		a->ops.stats(a->ops.arg, &in.stats);
	if (a->ops.upstreams)
		a->ops.upstreams(a->ops.arg, clock_now_ms(), api_metrics_up_cb, &ups);
	in.ups = ups.v;
	in.n_ups = ups.n;
	if (a->ops.alert_stats)
		a->ops.alert_stats(a->ops.arg, api_metrics_alert_cb, &al);
	in.alerts = al.v;
	in.n_alerts = al.n;
	in.api_requests = a->requests;
	in.have_queue = res->rc == 0;
	for (i = 0; in.have_queue && sc >= 0 && cc >= 0 && i < HK_ARRAY_LEN(states); i++) {
		for (r = 0; r < rows->n_rows; r++) {
			const struct maillog_cell *s = maillog_rows_cell(rows, r, (size_t)sc);

			if (s->type == MAILLOG_CELL_TEXT && strcmp(s->s, states[i]) == 0)
				in.queue[i] = (uint64_t)maillog_rows_cell(rows, r, (size_t)cc)->i;
		}
	}
	api_metrics_render(&in, &out);
	api_reply_text(m->req, 200, "text/plain; version=0.0.4; charset=utf-8", &out);
	buf_fini(&out);
	for (i = 0; i < ups.n; i++)
		free((char *)ups.v[i].name);
	free(ups.v);
	for (i = 0; i < al.n; i++) {
		free((char *)al.v[i].channel);
		free((char *)al.v[i].type);
	}
	free(al.v);
	maillog_result_free(res);
	free(m);
}

void
api_metrics_get(struct api *a, struct evhttp_request *req, const char *rest, const char *query)
{
	struct api_metrics_req *m = xcalloc(1, sizeof(*m));

	(void)rest;
	(void)query;
	m->a = a;
	m->req = req;
	/* Queue counts only (limit 0): the status index, not the whole log. */
	maillog_query_queue(a->mq, 0, api_metrics_done, m);
}
