/*
 * api_alerts.c - alert channels over the API: POST /api/v1/alerts/test {"channel":"name"} sends
 * a test notice through the named channel and answers once it was delivered or failed after the
 * channel's retries (`hikyaku alert test CHANNEL`).
 *
 * Answers: 200 {"channel","ok":true}; 502 {"error":{"code":"channel_failed","message":why},
 * "channel"} when the channel failed; 404 {"error":{"code":"unknown_channel",...},
 * "channels":[...]} naming the configured channels; 400 for a bad body; 503 without alerting.
 * The channels belong to the daemon (api_ops.alert_test); until the outcome arrives the request
 * sits on the API's alert_ops list, so api_free can cut it loose.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "api_int.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

struct api_alert_op {
	struct api *a;              /* NULL once cancelled */
	struct evhttp_request *req; /* NULL once cancelled */
	char *channel;
	struct api_alert_op *prev, *next;
};

static void
api_alerts_unlink(struct api_alert_op *o)
{
	if (o->a == NULL)
		return;
	if (o->prev)
		o->prev->next = o->next;
	else
		o->a->alert_ops = o->next;
	if (o->next)
		o->next->prev = o->prev;
	o->prev = o->next = NULL;
}

static void
api_alerts_done_cb(void *ctx, bool ok, const char *why)
{
	struct api_alert_op *o = ctx;

	api_alerts_unlink(o);
	if (o->req == NULL)
		goto out;
	if (ok)
		api_reply_json(o->req, 200, json_pack("{s:s,s:b}", "channel", o->channel, "ok", 1));
	else
		api_reply_json(o->req, 502, json_pack("{s:{s:s,s:s},s:s}", "error", "code",
		    "channel_failed", "message", why ? why : "the channel failed", "channel",
		    o->channel));
out:
	free(o->channel);
	free(o);
}

static void
api_alerts_name_cb(void *ctx, const char *channel, const char *type, uint64_t sent_ok,
    uint64_t sent_failed, uint64_t retries)
{
	(void)type;
	(void)sent_ok;
	(void)sent_failed;
	(void)retries;
	json_array_append_new(ctx, json_string(channel));
}

void
api_alerts_test_post(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	struct api_alert_op *o;
	struct hk_err err = { 0 };
	const char *channel;
	json_t *body, *names;

	(void)rest;
	(void)query;
	if (a->ops.alert_test == NULL) {
		api_reply_error(req, 503, "unavailable", "alerting is not available");
		return;
	}
	body = len ? json_loadb((const char *)evbuffer_pullup(in, -1), len,
	    JSON_REJECT_DUPLICATES, NULL) : NULL;
	channel = json_string_value(json_object_get(body, "channel"));
	if (channel == NULL || channel[0] == '\0') {
		json_decref(body);
		api_reply_error(req, 400, "bad_request",
		    "the body must be a JSON object with \"channel\": a channel name");
		return;
	}
	o = xcalloc(1, sizeof(*o));
	o->a = a;
	o->req = req;
	o->channel = xstrdup(channel);
	json_decref(body);
	o->next = a->alert_ops;
	if (o->next)
		o->next->prev = o;
	a->alert_ops = o;
	if (a->ops.alert_test(a->ops.arg, o->channel, api_alerts_done_cb, o, &err) == 0)
		return;
	api_alerts_unlink(o);
	if (err.code == HK_E_NOTFOUND) {
		names = json_array();
		if (a->ops.alert_stats)
			a->ops.alert_stats(a->ops.arg, api_alerts_name_cb, names);
		api_reply_json(req, 404, json_pack("{s:{s:s,s:s},s:o}", "error", "code",
		    "unknown_channel", "message", err.text, "channels", names));
	} else {
		api_reply_error(req, 502, "channel_failed", err.text[0] ? err.text :
		    "the channel failed");
	}
	free(o->channel);
	free(o);
}

void
api_alerts_cancel_all(struct api *a)
{
	struct api_alert_op *o, *next;

	for (o = a->alert_ops; o != NULL; o = next) {
		next = o->next;
		o->a = NULL;
		o->req = NULL;
		o->prev = o->next = NULL;
	}
	a->alert_ops = NULL;
}
