/*
 * api_queue.c - GET /api/v1/queue: unfinished messages (queued, deferred, held) from the email
 * log, with what the daemon knows right now (scheduler, deliveries in progress).
 *
 * The spool is the source of truth; the log mirrors it (queued mail missing from the log is
 * re-entered at start), so counts and entries come from the log's status index.
 */
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "api_json.h"
#include "api_query.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

struct api_queue_req {
	struct api *a;
	struct evhttp_request *req;
};

/* {"queued":n,"deferred":n,"held":n} from the (status, count) rows, missing ones 0. */
static json_t *
api_queue_counts(const struct maillog_rows *rows, json_int_t *total)
{
	static const char *const names[] = { "queued", "deferred", "held" };
	json_t *o = json_object();
	int sc = maillog_rows_col(rows, "status"), cc = maillog_rows_col(rows, "count");
	size_t i, r;

	*total = 0;
	for (i = 0; i < HK_ARRAY_LEN(names); i++) {
		json_int_t n = 0;

		for (r = 0; sc >= 0 && cc >= 0 && r < rows->n_rows; r++) {
			const struct maillog_cell *s = maillog_rows_cell(rows, r, (size_t)sc);

			if (s->type == MAILLOG_CELL_TEXT && strcmp(s->s, names[i]) == 0)
				n = maillog_rows_cell(rows, r, (size_t)cc)->i;
		}
		*total += n;
		json_object_set_new(o, names[i], json_integer(n));
	}
	return o;
}

static void
api_queue_done(void *arg, struct maillog_result *res)
{
	struct api_queue_req *q = arg;
	struct api_stats st;
	json_int_t total;
	json_t *o, *live;

	if (res->rc == -1) {
		api_reply_db_error(q->req, res);
		goto out;
	}
	memset(&st, 0, sizeof(st));
	if (q->a->ops.stats)
		q->a->ops.stats(q->a->ops.arg, &st);
	o = json_object();
	json_object_set_new(o, "counts", api_queue_counts(&res->sets[MAILLOG_SET_COUNTS], &total));
	json_object_set_new(o, "total", json_integer(total));
	live = json_pack("{s:I,s:I}", "waiting", (json_int_t)st.sched_waiting, "delivering",
	    (json_int_t)st.delivering);
	if (st.sched_next_due_ms) {
		char t[API_JSON_TIME_LEN + 1];

		api_json_time(st.sched_next_due_ms, t);
		json_object_set_new(live, "next_attempt_ms", json_integer(
		    (json_int_t)st.sched_next_due_ms));
		json_object_set_new(live, "next_attempt", json_string(t));
	}
	json_object_set_new(o, "scheduler", live);
	json_object_set_new(o, "messages", api_json_messages(&res->sets[MAILLOG_SET_MESSAGES],
	    &res->sets[MAILLOG_SET_RECIPIENTS]));
	api_reply_json(q->req, 200, o);
out:
	maillog_result_free(res);
	free(q);
}

void
api_queue_get(struct api *a, struct evhttp_request *req, const char *rest, const char *query)
{
	struct api_queue_req *q;
	const char *why = NULL;
	unsigned limit;

	(void)rest;
	if (api_query_queue(query, &limit, &why) != API_QUERY_OK) {
		api_reply_error(req, 400, "bad_request", why ? why : "bad query");
		return;
	}
	q = xcalloc(1, sizeof(*q));
	q->a = a;
	q->req = req;
	maillog_query_queue(a->mq, limit, api_queue_done, q);
}
