/*
 * api_admin.c - queue control: POST /api/v1/queue/flush, POST /api/v1/queue/{id}/flush|hold|
 * release, DELETE /api/v1/queue/{id}.
 *
 * The spool, the scheduler and the relay belong to the daemon: each request goes to
 * api_ops.queue_control, which answers at once or after a spool write. Until then the request
 * sits on the API's admin_ops list, so api_free can cut it loose (evhttp frees the request with
 * its connection) and a late answer replies to nobody.
 */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "api_query.h"
#include "../util/id.h"
#include "../util/num.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

struct api_admin_op {
	struct api *a;               /* NULL once cancelled */
	struct evhttp_request *req;  /* NULL once cancelled */
	uint64_t id;
	enum api_queue_op op;
	struct api_admin_op *prev, *next;
};

static const char *const api_admin_status[] = {
	[API_QUEUE_FLUSH] = "queued",
	[API_QUEUE_HOLD] = "held",
	[API_QUEUE_RELEASE] = "queued",
	[API_QUEUE_DELETE] = "deleted",
};

static const char *const api_admin_action[] = {
	[API_QUEUE_FLUSH] = "flush",
	[API_QUEUE_HOLD] = "hold",
	[API_QUEUE_RELEASE] = "release",
	[API_QUEUE_DELETE] = "delete",
};

static void
api_admin_unlink(struct api_admin_op *o)
{
	if (o->a == NULL)
		return;
	if (o->prev)
		o->prev->next = o->next;
	else
		o->a->admin_ops = o->next;
	if (o->next)
		o->next->prev = o->prev;
	o->prev = o->next = NULL;
}

static void
api_admin_done_cb(void *ctx, enum api_queue_result res, const char *why)
{
	struct api_admin_op *o = ctx;
	char hex[ID_HEX_LEN + 1];

	api_admin_unlink(o);
	if (o->req == NULL)
		goto out;
	id_format(o->id, hex);
	switch (res) {
	case API_QUEUE_OK:
		api_reply_json(o->req, 200, json_pack("{s:s,s:s,s:s}", "id", hex, "action",
		    api_admin_action[o->op], "status", api_admin_status[o->op]));
		break;
	case API_QUEUE_NOT_FOUND:
		api_reply_error(o->req, 404, "not_found", why ? why : "no message with that id in "
		    "the queue");
		break;
	case API_QUEUE_ACTIVE:
		api_reply_error(o->req, 409, "busy", why ? why : "being delivered, try again");
		break;
	case API_QUEUE_CONFLICT:
		api_reply_error(o->req, 409, "conflict", why ? why : "not possible in this state");
		break;
	case API_QUEUE_FAILED:
	default:
		api_reply_error(o->req, 503, "unavailable", why ? why : "the spool cannot be "
		    "changed right now");
		break;
	}
out:
	free(o);
}

static void
api_admin_start(struct api *a, struct evhttp_request *req, uint64_t id, enum api_queue_op op)
{
	struct api_admin_op *o;

	if (a->ops.queue_control == NULL) {
		api_reply_error(req, 503, "unavailable", "queue control is not available");
		return;
	}
	o = xcalloc(1, sizeof(*o));
	o->a = a;
	o->req = req;
	o->id = id;
	o->op = op;
	o->next = a->admin_ops;
	if (o->next)
		o->next->prev = o;
	a->admin_ops = o;
	a->ops.queue_control(a->ops.arg, id, op, api_admin_done_cb, o);
}

/* "{id}" or "{id}/action" from rest: -1 with a reply sent when the id is malformed. */
static int
api_admin_id(struct evhttp_request *req, const char *rest, uint64_t *id, const char **action)
{
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);

	if (!api_id_is_valid(rest, n) || num_parse_hex64(rest, n, id) == -1) {
		api_reply_error(req, 400, "bad_id", "a message id is 16 hex digits");
		return -1;
	}
	*action = slash ? slash + 1 : NULL;
	return 0;
}

void
api_admin_flush_all(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query)
{
	size_t n;

	(void)rest;
	(void)query;
	if (a->ops.queue_flush_all == NULL) {
		api_reply_error(req, 503, "unavailable", "queue control is not available");
		return;
	}
	n = a->ops.queue_flush_all(a->ops.arg);
	api_reply_json(req, 200, json_pack("{s:s,s:I}", "action", "flush", "flushed",
	    (json_int_t)n));
}

void
api_admin_post(struct api *a, struct evhttp_request *req, const char *rest, const char *query)
{
	static const struct {
		const char *name;
		enum api_queue_op op;
	} actions[] = {
		{ "flush", API_QUEUE_FLUSH },
		{ "hold", API_QUEUE_HOLD },
		{ "release", API_QUEUE_RELEASE },
	};
	const char *action;
	uint64_t id;
	size_t i;

	(void)query;
	if (api_admin_id(req, rest, &id, &action) == -1)
		return;
	for (i = 0; action != NULL && i < HK_ARRAY_LEN(actions); i++) {
		if (strcmp(action, actions[i].name) == 0) {
			api_admin_start(a, req, id, actions[i].op);
			return;
		}
	}
	if (action == NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "DELETE");
		api_reply_error(req, 405, "method_not_allowed", "method not allowed on this path");
		return;
	}
	api_reply_error(req, 404, "not_found", "no such endpoint");
}

void
api_admin_delete(struct api *a, struct evhttp_request *req, const char *rest, const char *query)
{
	const char *action;
	uint64_t id;

	(void)query;
	if (api_admin_id(req, rest, &id, &action) == -1)
		return;
	if (action != NULL) {
		api_reply_error(req, 404, "not_found", "no such endpoint");
		return;
	}
	api_admin_start(a, req, id, API_QUEUE_DELETE);
}

void
api_admin_cancel_all(struct api *a)
{
	struct api_admin_op *o, *next;

	for (o = a->admin_ops; o != NULL; o = next) {
		next = o->next;
		o->a = NULL;
		o->req = NULL;
		o->prev = o->next = NULL;
	}
	a->admin_ops = NULL;
}
