/*
 * api_messages.c - GET /api/v1/messages (search) and GET /api/v1/messages/{id} (detail), both
 * answered from the email log on the query pool.
 */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "api_json.h"
#include "api_query.h"
#include "../util/clock.h"
#include "../util/id.h"
#include "../util/num.h"
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

/* Events of type "attempt" only, for the "attempts" list. */
static json_t *
api_attempts(const struct maillog_rows *ev)
{
	json_t *a = json_array();
	int col = maillog_rows_col(ev, "type");
	size_t r;

	for (r = 0; col >= 0 && r < ev->n_rows; r++) {
		const struct maillog_cell *c = maillog_rows_cell(ev, r, (size_t)col);

		if (c->type == MAILLOG_CELL_TEXT && strcmp(c->s, "attempt") == 0) {
			json_t *o = api_json_row(ev, r);

			json_object_del(o, "type");
			json_array_append_new(a, o);
		}
	}
	return a;
}

static void
api_message_done(void *arg, struct maillog_result *res)
{
	struct evhttp_request *req = arg;
	const struct maillog_rows *msg = &res->sets[MAILLOG_SET_MESSAGES];
	json_t *o;

	if (res->rc == -1) {
		api_reply_db_error(req, res);
		maillog_result_free(res);
		return;
	}
	if (msg->n_rows == 0) {
		maillog_result_free(res);
		api_reply_error(req, 404, "not_found", "no message with this id in the email log");
		return;
	}
	o = api_json_row(msg, 0);
	json_object_set_new(o, "recipients", api_json_rows(&res->sets[MAILLOG_SET_RECIPIENTS]));
	json_object_set_new(o, "attempts", api_attempts(&res->sets[MAILLOG_SET_EVENTS]));
	json_object_set_new(o, "events", api_json_rows(&res->sets[MAILLOG_SET_EVENTS]));
	maillog_result_free(res);
	api_reply_json(req, 200, o);
}

void
api_messages_get(struct api *a, struct evhttp_request *req, const char *rest, const char *query)
{
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
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
	maillog_query_message(a->mq, id, api_message_done, req);
}
