/*
 * api.h - the HTTP API engine (DESIGN.md 11 and 14): JSON over libevent's evhttp, on a TCP
 * address (bearer token) and on the control socket (no token: the CLI's way in).
 *
 * Layer 4: uses services (the email log through maillog_query, upstream snapshots from sched's
 * types) but never another engine. What only the daemon knows (counters, upstream state kept by
 * the relay) comes through the callbacks in struct api_ops, wired by src/cli/serve.c.
 *
 * Start-up: api_preinit() runs as root before the privilege drop (binds both sockets, reads the
 * token file); api_new() after it. The token is kept only as its SHA-256 digest.
 * Auth: TCP requests need "Authorization: Bearer <token>" except GET /healthz and /metrics;
 * without api.token_file every other TCP request is 401. The control socket (mode 0660) needs
 * none: filesystem permissions guard it.
 * Errors: JSON {"error":{"code","message"}} with real statuses (400, 401, 404, 405, 413, 503).
 * Thread: loop thread only; log queries run on the module's own "dbread" pool.
 */
#ifndef HK_API_H
#define HK_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "../conf/conf.h"
#include "../jobs/jobs.h"
#include "../sched/upstream.h"
#include "../spool/spool_format.h"
#include "../util/buf.h"
#include "../util/err.h"

struct api;
struct bodies;

/* Counters the daemon keeps, copied out for /metrics and /api/v1/queue. */
struct api_stats {
	uint64_t started_ms;        /* wall clock at start */
	uint64_t received_smtp;     /* messages accepted since start, by source */
	uint64_t received_api;
	uint64_t received_sendmail;
	uint64_t recovered;         /* messages found in the spool at start */
	uint64_t smtp_sessions;     /* open SMTP sessions */
	uint64_t sched_waiting;     /* messages waiting in the scheduler for their next attempt */
	uint64_t sched_next_due_ms; /* 0: nothing waiting */
	uint64_t delivering;        /* delivery passes running */
	uint64_t maillog_pending;   /* email log events not yet committed */
	uint64_t maillog_dropped;   /* email log events lost since start */
	/* Delivery counters since start (the relay's). */
	uint64_t attempts_sent, attempts_next, attempts_spill, attempts_deferred, attempts_bounced;
	uint64_t rcpts_sent, rcpts_bounced, rcpts_expired, rcpts_deferred;
	uint64_t messages_finished, maybe_delivered;
};

/* One upstream, for GET /api/v1/upstreams and /metrics; snap is borrowed for the call only. */
typedef void (*api_upstream_each_fn)(void *ctx, const struct conf_upstream *cu,
    const struct upstream_snapshot *snap);

/* Queue control (POST /api/v1/queue/{id}/flush|hold|release, DELETE /api/v1/queue/{id}). */
enum api_queue_op {
	API_QUEUE_FLUSH = 0, /* due now */
	API_QUEUE_HOLD,      /* unfinished recipients -> held; out of the scheduler */
	API_QUEUE_RELEASE,   /* held -> queued, due now */
	API_QUEUE_DELETE,    /* deleted events, then out of the spool */
};

enum api_queue_result {
	API_QUEUE_OK = 0,
	API_QUEUE_NOT_FOUND,  /* not in the queue: 404 */
	API_QUEUE_ACTIVE,     /* being delivered right now: 409, try again */
	API_QUEUE_CONFLICT,   /* not in a state for this (release of a message not held ...): 409 */
	API_QUEUE_FAILED,     /* spool or log error: 503 */
};

typedef void (*api_queue_done_fn)(void *ctx, enum api_queue_result res, const char *why);

/* Outcome of api_ops.submit, on the loop: rc 0 queued; -1 with err (HK_E_NOSPACE, HK_E_IO). */
typedef void (*api_submit_done_fn)(void *ctx, int rc, const struct hk_err *err);

/* Outcome of api_ops.alert_test, on the loop: ok, or why it failed (borrowed for the call). */
typedef void (*api_alert_done_fn)(void *ctx, bool ok, const char *why);
/* One alert channel's counters (strings borrowed for the call). */
typedef void (*api_alert_stats_fn)(void *ctx, const char *channel, const char *type,
    uint64_t sent_ok, uint64_t sent_failed, uint64_t retries);

/*
 * Outcome of api_ops.test_upstream: the HTTP status and the JSON body to answer with (borrowed
 * for the call): 200 with the report (also when a step failed), 400, 404 or 503 with an error.
 */
typedef void (*api_test_done_fn)(void *ctx, int status, const char *json);

struct api_ops {
	/* Fill *out (zeroed by the caller). */
	void (*stats)(void *arg, struct api_stats *out);
	/* Call each(ctx, ...) once per configured upstream, in configuration order. */
	void (*upstreams)(void *arg, uint64_t now_ms, api_upstream_each_fn each, void *ctx);
	/* Make every message waiting in the scheduler due now; returns how many (NULL: 503). */
	size_t (*queue_flush_all)(void *arg);
	/*
	 * Queue control on one message (NULL: 503). done runs exactly once, at once or later on
	 * the loop, with the outcome and, for API_QUEUE_FAILED and the refusals, a short reason
	 * (borrowed for the call).
	 */
	void (*queue_control)(void *arg, uint64_t id, enum api_queue_op op,
	    api_queue_done_fn done, void *ctx);
	/* A new queue ID (the daemon owns the generator): Message-ID and Received: need it first. */
	uint64_t (*new_id)(void *arg);
	/*
	 * Commit env (its id from new_id; borrowed until done runs) with body (taken over, emptied)
	 * to the spool. Once durable, the daemon logs and schedules it as it does SMTP mail, then
	 * done(ctx, 0, NULL); on failure done(ctx, -1, err). -1 and err at once (HK_E_BUSY: too
	 * many commits), done never called. NULL: the API answers 503.
	 */
	int (*submit)(void *arg, const struct spool_env *env, struct buf *body,
	    api_submit_done_fn done, void *ctx, struct hk_err *err);
	/* new_id (committed through submit) was resent from old_id: link both in the email log. */
	void (*resent)(void *arg, uint64_t new_id, uint64_t old_id);
	/*
	 * DNS checks of domain (GET /api/v1/checks/dns; selector and ip may be NULL: the checks:
	 * configuration's). done(ctx, json) runs once, later on the loop, with the report as JSON
	 * (borrowed for the call), unless check_dns_cancel(arg, handle) runs first. NULL: 503.
	 */
	void *(*check_dns)(void *arg, const char *domain, const char *selector, const char *ip,
	    void (*done)(void *ctx, const struct buf *json), void *ctx);
	void (*check_dns_cancel)(void *arg, void *handle);
	/*
	 * Send a test notice to the alert channel named channel (POST /api/v1/alerts/test). 0:
	 * started; done runs once, later on the loop, when the channel accepted it or failed after
	 * its retries. -1 with err at once: HK_E_NOTFOUND for an unknown channel. NULL: 503.
	 */
	int (*alert_test)(void *arg, const char *channel, api_alert_done_fn done, void *ctx,
	    struct hk_err *err);
	/* Call each once per configured alert channel, in configuration order (NULL: none). */
	void (*alert_stats)(void *arg, api_alert_stats_fn each, void *ctx);
	/*
	 * Connection test of the upstream called name (POST /api/v1/upstreams/{name}/test); to and
	 * from NULL when not given, timeout_ms 0 for the defaults (all borrowed for the call). done
	 * runs exactly once, at once or later on the loop. NULL: the API answers 503.
	 */
	void (*test_upstream)(void *arg, const char *name, const char *to, const char *from,
	    uint64_t timeout_ms, api_test_done_fn done, void *ctx);
	/* GET /api/v1/alerts: append the alerts' JSON document to out (NULL: 503). */
	void (*alerts_list)(void *arg, struct buf *out);
	void *arg;
};

/* What api_preinit() prepares as root; handed to api_new(), which takes it over. */
struct api_pre {
	int tcp_fd;      /* -1: none */
	int control_fd;  /* -1: none */
	bool has_token;
	unsigned char token_sha256[32];
};

/*
 * As root, before the drop: bind c->api_listen and create c->api_control_socket (0660; a stale
 * socket file is replaced), read c->api_token_file (one line; surrounding whitespace ignored;
 * empty is an error). -1 and err on any failure, with nothing left open.
 */
HK_MUST_CHECK int api_preinit(const struct conf *c, struct api_pre *pre, struct hk_err *err);
/* Close what api_preinit() opened when api_new() is never called. */
void api_pre_fini(struct api_pre *pre);

struct api_params {
	struct event_base *base;
	struct conf *conf;       /* referenced */
	struct jobs *hub;        /* borrowed: completions of log queries */
	const char *state_dir;   /* where hikyaku.db is (the writer created it) */
	struct api_pre *pre;     /* taken over: its fds belong to the API from now on */
	struct bodies *bodies;   /* borrowed: kept bodies for resend; NULL: resend answers 503 */
	struct api_ops ops;
};

/* Start serving on the prepared sockets. NULL and err when evhttp cannot be set up. */
struct api *api_new(const struct api_params *p, struct hk_err *err);
/* Finish queries in flight, answer or drop open requests, close the sockets. NULL: no-op. */
void api_free(struct api *a);
/*
 * After a reload: c (referenced) becomes the snapshot whose explain: rows the message detail's
 * explanations use (api_messages.c). The rest of the API keeps the snapshot it started with.
 */
void api_set_explain(struct api *a, struct conf *c);

#endif
