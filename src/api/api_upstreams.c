/*
 * api_upstreams.c - GET /api/v1/upstreams: per upstream, health, breaker, quota windows against
 * their limits, connections and the last error (docs/delivery.md "What the API shows").
 * The state lives in the relay; the daemon hands snapshots over through api_ops.upstreams.
 */
#include <stdio.h>
#include <string.h>

#include "api_int.h"
#include "api_json.h"
#include "../util/clock.h"
#include "../util/poison.h"

/* A time field pair: "<name>_ms" and "<name>" (RFC 3339), or both null when ms is 0. */
static void
api_up_time(json_t *o, const char *name, uint64_t ms)
{
	char key[64], t[API_JSON_TIME_LEN + 1];

	snprintf(key, sizeof(key), "%s_ms", name);
	if (ms == 0) {
		json_object_set_new(o, key, json_null());
		json_object_set_new(o, name, json_null());
		return;
	}
	api_json_time(ms, t);
	json_object_set_new(o, key, json_integer((json_int_t)ms));
	json_object_set_new(o, name, json_string(t));
}

/* A limit: the number, or null for unlimited (0). */
static json_t *
api_up_limit(uint64_t v)
{
	return v ? json_integer((json_int_t)v) : json_null();
}

static void
api_up_each(void *ctx, const struct conf_upstream *cu, const struct upstream_snapshot *s)
{
	json_t *list = ctx, *o, *err;

	o = json_pack("{s:s,s:s,s:i,s:s,s:s,s:b,s:i}", "name", cu->name, "host", cu->host,
	    "port", (int)cu->port, "health", upstream_health_name(s->health), "breaker",
	    upstream_breaker_name(s->breaker), "open", s->open, "failures", (int)s->failures);
	api_up_time(o, "open_until", s->open ? s->open_until_ms : 0);
	api_up_time(o, "paused_until", s->paused_until_ms);
	json_object_set_new(o, "sent_hour", json_integer((json_int_t)s->sent_hour));
	json_object_set_new(o, "per_hour", api_up_limit(s->per_hour));
	json_object_set_new(o, "sent_day", json_integer((json_int_t)s->sent_day));
	json_object_set_new(o, "per_day", api_up_limit(s->per_day));
	json_object_set_new(o, "connections_in_use", json_integer(s->connections_in_use));
	json_object_set_new(o, "connections", api_up_limit(s->connections));
	api_up_time(o, "last_ok", s->last_ok_ms);
	if (s->last_error != NULL && s->last_error[0] != '\0') {
		json_t *text = json_string(s->last_error);

		/* Reply text from a peer may not be UTF-8, which jansson refuses. */
		if (text == NULL)
			text = json_string("(not UTF-8)");
		err = json_object();
		json_object_set_new(err, "text", text);
		api_up_time(err, "time", s->last_error_ms);
		json_object_set_new(o, "last_error", err);
	} else {
		json_object_set_new(o, "last_error", json_null());
	}
	json_array_append_new(list, o);
}

void
api_upstreams_get(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query)
{
	json_t *list = json_array();

	(void)rest;
	if (query != NULL && *query != '\0') {
		json_decref(list);
		api_reply_error(req, 400, "bad_request", "unknown query parameter");
		return;
	}
	if (a->ops.upstreams)
		a->ops.upstreams(a->ops.arg, clock_now_ms(), api_up_each, list);
	api_reply_json(req, 200, json_pack("{s:o}", "upstreams", list));
}
