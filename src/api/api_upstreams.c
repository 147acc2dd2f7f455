/*
 * api_upstreams.c - GET /api/v1/upstreams: per upstream, health, breaker, quota windows against
 * their limits, connections and the last error (docs/delivery.md "What the API shows").
 * The state lives in the relay; the daemon hands snapshots over through api_ops.upstreams.
 * POST /api/v1/upstreams/{name}/test: the connection test (docs/api.md), run by the daemon
 * through api_ops.test_upstream; the request waits for the report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "api_int.h"
#include "api_json.h"
#include "../util/clock.h"
#include "../util/xalloc.h"
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

/* ---- POST /api/v1/upstreams/{name}/test ---- */

#define API_TEST_TIMEOUT_MAX_MS 120000

struct api_test_op {
	struct evhttp_request *req;
};

static void
api_test_done_cb(void *ctx, int status, const char *json)
{
	struct api_test_op *o = ctx;
	struct buf b = BUF_INIT;

	buf_append_str(&b, json ? json : "{}");
	api_reply_text(o->req, status, "application/json", &b);
	buf_fini(&b);
	free(o);
}

/* An optional string member of the body; false with *why when it is there but not a string. */
static bool
api_test_str(const json_t *body, const char *key, const char **out, const char **why)
{
	const json_t *v = json_object_get(body, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_string(v) || json_string_length(v) == 0) {
		*why = "to and from must be non-empty strings";
		return false;
	}
	*out = json_string_value(v);
	return true;
}

void
api_upstreams_test_post(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in), n;
	const char *slash = strchr(rest, '/'), *to, *from, *why = NULL, *key;
	json_t *body = NULL, *v;
	json_error_t jerr;
	uint64_t timeout_ms = 0;
	char *name = NULL;
	struct api_test_op *o;

	if (query != NULL && *query != '\0') {
		api_reply_error(req, 400, "bad_request", "unknown query parameter");
		return;
	}
	if (slash == NULL || strcmp(slash, "/test") != 0 || slash == rest) {
		api_reply_error(req, 404, "not_found", "no such endpoint");
		return;
	}
	{
		char *raw = xcalloc(1, (size_t)(slash - rest) + 1);

		memcpy(raw, rest, (size_t)(slash - rest));
		name = evhttp_uridecode(raw, 0, &n);
		free(raw);
	}
	/* A decoded NUL would cut the name short: refuse it. */
	if (name == NULL || n == 0 || strlen(name) != n) {
		free(name);
		api_reply_error(req, 400, "bad_request", "bad upstream name");
		return;
	}
	body = len ? json_loadb((const char *)evbuffer_pullup(in, -1), len,
	    JSON_REJECT_DUPLICATES, &jerr) : json_object();
	if (body == NULL || !json_is_object(body)) {
		why = "the body must be a JSON object";
		goto bad;
	}
	json_object_foreach(body, key, v) {
		if (strcmp(key, "to") != 0 && strcmp(key, "from") != 0 &&
		    strcmp(key, "timeout_ms") != 0) {
			why = "unknown field (known: to, from, timeout_ms)";
			goto bad;
		}
	}
	if (!api_test_str(body, "to", &to, &why) || !api_test_str(body, "from", &from, &why))
		goto bad;
	v = json_object_get(body, "timeout_ms");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 100 ||
		    json_integer_value(v) > API_TEST_TIMEOUT_MAX_MS) {
			why = "timeout_ms must be an integer from 100 to 120000";
			goto bad;
		}
		timeout_ms = (uint64_t)json_integer_value(v);
	}
	if (a->ops.test_upstream == NULL) {
		json_decref(body);
		free(name);
		api_reply_error(req, 503, "unavailable", "the connection test is not available");
		return;
	}
	o = xcalloc(1, sizeof(*o));
	o->req = req;
	a->ops.test_upstream(a->ops.arg, name, to, from, timeout_ms, api_test_done_cb, o);
	json_decref(body);
	free(name);
	return;
bad:
	json_decref(body);
	free(name);
	api_reply_error(req, 400, "bad_request", why);
}
