/*
 * api_messages.c - GET /api/v1/messages (search) and GET /api/v1/messages/{id} (detail), both
 * answered from the email log on the query pool. Each attempt of the detail carries the reply
 * explainer's answer, with the configuration's explain: rows first (docs/explain.md).
 */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "api_json.h"
#include "api_query.h"
#include "../conf/conf.h"
#include "../proto/explain.h"
#include "../proto/smtp_reply.h"
#include "../util/clock.h"
#include "../util/id.h"
#include "../util/num.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

static void
api_search_done(void *arg, struct maillog_result *res)
{
	struct evhttp_request *req = arg;
	json_t *o;

	if (res->rc == -1) {
		api_reply_db_error(req, res);
		maillog_result_free(res);
		return;
	}
	o = json_object();
	json_object_set_new(o, "messages", api_json_messages(&res->sets[MAILLOG_SET_MESSAGES],
	    &res->sets[MAILLOG_SET_RECIPIENTS]));
	if (res->next_cursor) {
		char cur[API_CURSOR_LEN + 1];

		api_cursor_format(res->next_cursor, cur);
		json_object_set_new(o, "next_cursor", json_string(cur));
	} else {
		json_object_set_new(o, "next_cursor", json_null());
	}
	maillog_result_free(res);
	api_reply_json(req, 200, o);
}

void
api_messages_search(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query)
{
	struct maillog_filter f;
	const char *why = NULL;

	(void)rest;
	if (api_query_search(query, clock_now_ms(), &f, &why) != API_QUERY_OK) {
		maillog_filter_fini(&f);
		api_reply_error(req, 400, "bad_request", why ? why : "bad query");
		return;
	}
	maillog_query_search(a->mq, &f, api_search_done, req);
	maillog_filter_fini(&f);
}

/*
 * The explainer's answer for an attempt (docs/explain.md): its reply, or the text of a local
 * failure (code 0: only rows that name no code match). NULL for a success or no matching row.
 */
static json_t *
api_explanation(const struct conf *c, json_t *att)
{
	json_t *jc = json_object_get(att, "code"), *x;
	const char *enh = json_string_value(json_object_get(att, "enhanced"));
	const char *text = json_string_value(json_object_get(att, "text"));
	const struct explain_entry *e;
	int code = 0, cls = 0, subj = 0, det = 0;

	if (json_is_integer(jc))
		code = (int)json_integer_value(jc);
	if ((code != 0 && code < 400) || code > 599)
		return NULL;
	if (enh == NULL || smtp_reply_parse_enhanced(enh, strlen(enh), &cls, &subj, &det) == 0)
		cls = subj = det = 0;
	if (text == NULL)
		text = "";
	e = explain_lookup_in(c->explain_rows, c->n_explain_rows, code, cls, subj, det, text,
	    strlen(text));
	if (e == NULL)
		return NULL;
	x = json_object();
	json_object_set_new(x, "id", json_string(e->id));
	json_object_set_new(x, "cause", json_string(e->cause));
	json_object_set_new(x, "culprit", json_string(explain_culprit_name(e->culprit)));
	json_object_set_new(x, "fix", json_string(e->fix));
	json_object_set_new(x, "retry_helps", json_boolean(e->flags & EXPLAIN_RETRY_HELPS));
	json_object_set_new(x, "other_upstream_helps",
	    json_boolean(e->flags & EXPLAIN_OTHER_UPSTREAM_HELPS));
	return x;
}

/* Events of type "attempt" only, for the "attempts" list, each with its explanation. */
static json_t *
api_attempts(const struct conf *conf, const struct maillog_rows *ev)
{
	json_t *a = json_array();
	int col = maillog_rows_col(ev, "type");
	size_t r;

	for (r = 0; col >= 0 && r < ev->n_rows; r++) {
		const struct maillog_cell *c = maillog_rows_cell(ev, r, (size_t)col);

		if (c->type == MAILLOG_CELL_TEXT && strcmp(c->s, "attempt") == 0) {
			json_t *o = api_json_row(ev, r), *x;

			json_object_del(o, "type");
			x = api_explanation(conf, o);
			if (x != NULL)
				json_object_set_new(o, "explanation", x);
			json_array_append_new(a, o);
		}
	}
	return a;
}

/* A detail request waiting for the log: the snapshot whose explainer rows it will use. */
struct api_message_get {
	struct evhttp_request *req;
	struct conf *conf; /* one reference */
};

static void
api_message_done(void *arg, struct maillog_result *res)
{
	struct api_message_get *g = arg;
	struct evhttp_request *req = g->req;
	struct conf *conf = g->conf;
	const struct maillog_rows *msg = &res->sets[MAILLOG_SET_MESSAGES];
	json_t *o;

	free(g);
	if (res->rc == -1) {
		conf_unref(conf);
		api_reply_db_error(req, res);
		maillog_result_free(res);
		return;
	}
	if (msg->n_rows == 0) {
		conf_unref(conf);
		maillog_result_free(res);
		api_reply_error(req, 404, "not_found", "no message with this id in the email log");
		return;
	}
	o = api_json_row(msg, 0);
	json_object_set_new(o, "recipients", api_json_rows(&res->sets[MAILLOG_SET_RECIPIENTS]));
	json_object_set_new(o, "attempts", api_attempts(conf, &res->sets[MAILLOG_SET_EVENTS]));
	json_object_set_new(o, "events", api_json_rows(&res->sets[MAILLOG_SET_EVENTS]));
	conf_unref(conf);
	maillog_result_free(res);
	api_reply_json(req, 200, o);
}

void
api_set_explain(struct api *a, struct conf *c)
{
	if (a == NULL)
		return;
	conf_unref(a->explain_conf);
	a->explain_conf = conf_ref(c);
}

void
api_messages_get(struct api *a, struct evhttp_request *req, const char *rest, const char *query)
{
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
	struct api_message_get *g;
	uint64_t id;

	(void)query;
	if (!api_id_is_valid(rest, n) || num_parse_hex64(rest, n, &id) == -1) {
		api_reply_error(req, 400, "bad_id", "a message id is 16 hex digits");
		return;
	}
	if (slash != NULL) {
		/* /api/v1/messages/{id}/<action>: none is served yet by GET. */
		api_reply_error(req, 404, "not_found", "no such endpoint");
		return;
	}
	g = xmalloc(sizeof(*g));
	g->req = req;
	g->conf = conf_ref(a->explain_conf != NULL ? a->explain_conf : a->conf);
	maillog_query_message(a->mq, id, api_message_done, g);
}
