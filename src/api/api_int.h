/*
 * api_int.h - private to src/api: the engine's state, reply helpers and the endpoint handlers.
 *
 * A handler gets the request, the part of the path after its route's prefix (endpoints with an
 * ID) and the raw query string. It answers with exactly one api_reply_*() call, at once or from
 * a log query's completion; an asynchronous handler holds a reference on the API (inflight).
 * JSON bodies are built with jansson; api_reply_json() takes ownership of the value.
 * Thread: loop thread only.
 */
#ifndef HK_API_INT_H
#define HK_API_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/http.h>
#include <jansson.h>

#include "api.h"
#include "../db/maillog_query.h"
#include "../util/buf.h"

struct api {
	struct event_base *base;
	struct conf *conf;
	struct conf *explain_conf;   /* newest snapshot, for explanations; NULL: conf */
	struct maillog_query *mq;
	struct api_ops ops;
	struct evhttp *http_tcp;     /* token required */
	struct evhttp *http_control; /* no token */
	struct api_pre pre;
	uint64_t requests;
	struct jobs *hub;
	struct idem *idem;           /* Idempotency-Key store (api_send.c) */
	struct api_send_op *sends;   /* POSTs of messages not answered yet */
	struct api_admin_op *admin_ops; /* queue control requests waiting for the daemon */
	struct bodies *bodies;          /* kept bodies (api_resend.c) */
	struct api_resend *resend;      /* resends and bulk resend jobs (api_resend.c) */
	struct api_check_op *checks;    /* DNS checks waiting for the daemon (api_checks.c) */
	struct api_alert_op *alert_ops; /* alert channel tests waiting for their outcome */
};

typedef void (*api_handler_fn)(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);

/* Reply with body (owned, may be NULL for an empty object) as application/json. */
void api_reply_json(struct evhttp_request *req, int status, json_t *body);
/* Reply {"error":{"code":code,"message":message}}. */
void api_reply_error(struct evhttp_request *req, int status, const char *code,
    const char *message);
/* Reply with a text body of type content_type. */
void api_reply_text(struct evhttp_request *req, int status, const char *content_type,
    const struct buf *body);
/* 503 for a log query that failed. */
void api_reply_db_error(struct evhttp_request *req, const struct maillog_result *res);

/* Endpoints. */
void api_messages_search(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
void api_messages_get(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
void api_queue_get(struct api *a, struct evhttp_request *req, const char *rest, const char *query);
void api_upstreams_get(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
/* POST /api/v1/upstreams/{name}/test (api_upstreams.c). */
void api_upstreams_test_post(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
void api_metrics_get(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
/* Queue control (api_admin.c). */
void api_admin_flush_all(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
void api_admin_post(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
void api_admin_delete(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
/* At api_free: requests still waiting are dropped; their later completions reply to nobody. */
void api_admin_cancel_all(struct api *a);
/* Sending (api_send.c). */
void api_messages_post(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
void api_messages_raw_post(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
/* Request body limit for evhttp: big enough for a base64 message of max_message_size. */
size_t api_send_body_max(const struct conf *c);
/* At api_new: the Idempotency-Key store. */
void api_send_init(struct api *a, struct jobs *hub, const char *state_dir);
/* At api_free: wait until every send in flight is answered, then close the store. */
void api_send_fini(struct api *a);
/* Resend (api_resend.c): one message, a bulk job, a job's progress. */
void api_resend_post(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
void api_resend_bulk_post(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
void api_resend_job_get(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
/* Alert channels (api_alerts.c): POST /api/v1/alerts/test. */
void api_alerts_test_post(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
/* At api_free: tests still waiting are cut loose; their outcomes reply to nobody. */
void api_alerts_cancel_all(struct api *a);
/* GET /api/v1/alerts (api_alerts_list.c). */
void api_alerts_list_get(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
/* At api_new: resend state. */
void api_resend_init(struct api *a);
/* At api_free, before the query pool goes: resends in flight finish, jobs stop. */
void api_resend_fini(struct api *a);

/* DNS checks (api_checks.c): GET /api/v1/checks/dns; at api_free, checks still running go. */
void api_checks_dns_get(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);
void api_checks_cancel_all(struct api *a);

#endif
