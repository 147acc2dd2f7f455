/*
 * api_resend.c - resend from kept bodies (DESIGN.md 8, 14): POST /api/v1/messages/{id}/resend,
 * POST /api/v1/resend (bulk, in the background) and GET /api/v1/resend/{job} (its progress).
 *
 * One resend is a chain on the loop, each step a job elsewhere: the message's sender and
 * recipients from the email log (query pool) -> its kept body (bodies pool) -> a new queue ID, a
 * Received: line on top, api_ops.submit (spool commit; the daemon logs and schedules it like any
 * new mail) -> api_ops.resent links both in the log. The copy goes to every recipient of the
 * original, or with "only_failed" to those that bounced or expired.
 *
 * A bulk job first collects the IDs (the given list, or every page of a log search), answers 202
 * with the count, then keeps at most API_RESEND_WINDOW resends in flight; a spool that refuses
 * for load (HK_E_BUSY) pauses the job for API_RESEND_PAUSE_MS and the ID is tried again, so
 * back-pressure slows a job down without failing it. Jobs live in memory (the last
 * API_RESEND_JOBS_KEPT); a restart forgets them, while the resent messages themselves are
 * durable in the spool and linked in the log.
 * Thread: loop thread only.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "api_int.h"
#include "api_json.h"
#include "api_query.h"
#include "../db/bodies.h"
#include "../proto/header.h"
#include "../util/clock.h"
#include "../util/id.h"
#include "../util/log.h"
#include "../util/num.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define API_RESEND_WINDOW 32
#define API_RESEND_PAUSE_MS 100
#define API_RESEND_JOBS_KEPT 100
#define API_RESEND_JOBS_RUNNING 4   /* bulk jobs at once; more: 429 */
#define API_RESEND_IDS_MAX 10000     /* in one {"ids": [...]} */
#define API_RESEND_MATCH_MAX 1000000 /* messages one filter may select */
#define API_RESEND_ERRORS_KEPT 50
#define API_RESEND_BODY_SLACK (64 * 1024) /* Received: lines on top of max_message_size */

enum api_resend_res {
	API_RESEND_OK = 0,
	API_RESEND_NOT_FOUND, /* 404 */
	API_RESEND_NO_BODY,   /* 409 */
	API_RESEND_NOTHING,   /* 409: only_failed and nothing failed */
	API_RESEND_BUSY,      /* 503 for one; a job pauses and tries again */
	API_RESEND_FAILED,    /* 503 */
};

struct api_resend_job {
	struct api_resend_job *next;
	struct api_resend *rs;
	char id[ID_HEX_LEN + 1];
	uint64_t *ids;
	size_t n, cap, next_i;
	uint64_t *again; /* refused for load: tried again after a pause */
	size_t n_again, cap_again;
	size_t running;
	uint64_t done, failed;
	bool only_failed, collecting, finished, paused;
	struct maillog_filter f;       /* collecting: the search, page after page */
	struct evhttp_request *req;    /* collecting: the POST still to answer */
	struct event *pause_ev;
	json_t *errors;
	uint64_t created_ms, finished_ms;
};

struct api_resend {
	struct api *a;
	struct api_resend_job *jobs; /* newest first */
	size_t n_jobs;
	size_t inflight; /* resends and collecting queries not completed yet */
	uint64_t seq;
	bool stopping;
};

struct api_resend_op {
	struct api_resend *rs;
	struct api_resend_job *job;  /* NULL: one resend answering req */
	struct evhttp_request *req;
	uint64_t old_id, new_id;
	bool only_failed;
	struct spool_env env;
	struct buf body;
};

static void api_resend_pump(struct api_resend_job *job);

/* ---- request bodies ---- */

/* The request body as a JSON object (an empty body is {}); NULL and *why when it is not one. */
static json_t *
api_resend_body(struct evhttp_request *req, const char **why)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	json_error_t jerr;
	json_t *o;

	if (len == 0)
		return json_object();
	o = json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		*why = "the body must be a JSON object";
		return NULL;
	}
	return o;
}

/* "only_failed": optional boolean. */
static bool
api_resend_only_failed(const json_t *o, bool *out, const char **why)
{
	const json_t *v = json_object_get(o, "only_failed");

	*out = false;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_boolean(v)) {
		*why = "only_failed must be true or false";
		return false;
	}
	*out = json_is_true(v);
	return true;
}

/* ---- one resend ---- */

static void
api_resend_op_free(struct api_resend_op *op)
{
	spool_env_fini(&op->env);
	buf_fini(&op->body);
	free(op);
}

static void
api_resend_job_error(struct api_resend_job *job, uint64_t id, const char *code)
{
	char hex[ID_HEX_LEN + 1];

	if (json_array_size(job->errors) >= API_RESEND_ERRORS_KEPT)
		return;
	id_format(id, hex);
	json_array_append_new(job->errors, json_pack("{s:s,s:s}", "id", hex, "error", code));
}

static void
api_resend_job_again(struct api_resend_job *job, uint64_t id)
{
	if (job->n_again == job->cap_again) {
		job->cap_again = job->cap_again ? 2 * job->cap_again : 64;
		job->again = xreallocarray(job->again, job->cap_again, sizeof(*job->again));
	}
	job->again[job->n_again++] = id;
	if (!job->paused && !job->rs->stopping) {
		struct timeval tv = { 0, API_RESEND_PAUSE_MS * 1000 };

		job->paused = true;
		evtimer_add(job->pause_ev, &tv);
	}
}

static const char *const api_resend_codes[] = {
	[API_RESEND_OK] = "ok",
	[API_RESEND_NOT_FOUND] = "not_found",
	[API_RESEND_NO_BODY] = "no_body",
	[API_RESEND_NOTHING] = "nothing_to_resend",
	[API_RESEND_BUSY] = "busy",
	[API_RESEND_FAILED] = "unavailable",
};

/* The end of one resend: answer its request or count it in its job. why: for a single resend. */
static void
api_resend_end(struct api_resend_op *op, enum api_resend_res res, const char *why)
{
	struct api_resend_job *job = op->job;
	char hex[ID_HEX_LEN + 1];

	op->rs->inflight--;
	if (job == NULL) {
		static const int status[] = {
			[API_RESEND_OK] = 202, [API_RESEND_NOT_FOUND] = 404,
			[API_RESEND_NO_BODY] = 409, [API_RESEND_NOTHING] = 409,
			[API_RESEND_BUSY] = 503, [API_RESEND_FAILED] = 503,
		};

		if (res == API_RESEND_OK) {
			id_format(op->new_id, hex);
			api_reply_json(op->req, 202, json_pack("{s:s}", "id", hex));
		} else {
			if (res == API_RESEND_BUSY)
				evhttp_add_header(evhttp_request_get_output_headers(op->req),
				    "Retry-After", "1");
			api_reply_error(op->req, status[res], api_resend_codes[res], why);
		}
		api_resend_op_free(op);
		return;
	}
	job->running--;
	if (res == API_RESEND_OK) {
		job->done++;
	} else if (res == API_RESEND_BUSY && !op->rs->stopping) {
		api_resend_job_again(job, op->old_id);
	} else {
		job->failed++;
		api_resend_job_error(job, op->old_id, api_resend_codes[res]);
	}
	api_resend_op_free(op);
	api_resend_pump(job);
}

static void
api_resend_submitted(void *ctx, int rc, const struct hk_err *err)
{
	struct api_resend_op *op = ctx;
	struct api *a = op->rs->a;
	char old_hex[ID_HEX_LEN + 1], new_hex[ID_HEX_LEN + 1];

	id_format(op->old_id, old_hex);
	id_format(op->new_id, new_hex);
	if (rc == -1) {
		log_warn("api", "resend_failed", "qid=%s err=%s", old_hex,
		    log_q(err ? err->text : "?"));
		api_resend_end(op, API_RESEND_FAILED, "the spool cannot take the message right now");
		return;
	}
	if (a->ops.resent)
		a->ops.resent(a->ops.arg, op->new_id, op->old_id);
	log_info("api", "resent", "qid=%s from_qid=%s rcpts=%zu", new_hex, old_hex,
	    op->env.n_rcpts);
	api_resend_end(op, API_RESEND_OK, NULL);
}

static bool
api_resend_is_8bit(const struct buf *b)
{
	size_t i;

	for (i = 0; i < b->len; i++)
		if ((unsigned char)b->ptr[i] & 0x80)
			return true;
	return false;
}

static bool
api_resend_str_is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s & 0x80)
			return false;
	return true;
}

/* RFC 5321 4.4: the new message gets its own trace line, naming the original. */
static void
api_resend_received(struct api_resend_op *op, uint64_t now_ms, struct buf *out)
{
	const char *host = op->rs->a->conf->hostname ? op->rs->a->conf->hostname : "localhost";
	char old_hex[ID_HEX_LEN + 1], new_hex[ID_HEX_LEN + 1];

	id_format(op->old_id, old_hex);
	id_format(op->new_id, new_hex);
	buf_printf(out, "Received: by %s (hikyaku) with HTTP id %s\r\n\t(resent from %s);\r\n\t",
	    host, new_hex, old_hex);
	header_format_date(out, (int64_t)(now_ms / 1000), 0);
	buf_append_str(out, "\r\n");
}

static void
api_resend_loaded(void *arg, uint64_t id, int rc, struct buf *body, const struct hk_err *err)
{
	struct api_resend_op *op = arg;
	struct api *a = op->rs->a;
	struct hk_err serr = { 0 };
	uint64_t now = clock_now_ms();
	size_t i;

	(void)id;
	if (rc == -1) {
		if (err->code == HK_E_NOTFOUND) {
			api_resend_end(op, API_RESEND_NO_BODY,
			    "no kept body for this message (log.keep_bodies was off, or retention "
			    "removed it)");
			return;
		}
		log_warn("api", "resend_body_failed", "sess=api err=%s", log_q(err->text));
		api_resend_end(op, API_RESEND_FAILED, "the kept body cannot be read");
		return;
	}
	if (a->ops.new_id == NULL || a->ops.submit == NULL) {
		api_resend_end(op, API_RESEND_FAILED, "resend is not available");
		return;
	}
	op->new_id = a->ops.new_id(a->ops.arg);
	op->env.id = op->new_id;
	op->env.received_ms = now;
	op->env.source = xstrdup("api");
	op->env.body = api_resend_is_8bit(body) ? SMTP_BODY_8BITMIME : SMTP_BODY_7BIT;
	op->env.smtputf8 = !api_resend_str_is_ascii(op->env.from);
	for (i = 0; i < op->env.n_rcpts; i++)
		op->env.smtputf8 |= !api_resend_str_is_ascii(op->env.rcpts[i].addr);
	api_resend_received(op, now, &op->body);
	buf_append(&op->body, body->ptr, body->len);
	op->env.size = op->body.len;
	if (a->ops.submit(a->ops.arg, &op->env, &op->body, api_resend_submitted, op, &serr) == -1) {
		api_resend_end(op, serr.code == HK_E_BUSY ? API_RESEND_BUSY : API_RESEND_FAILED,
		    serr.code == HK_E_BUSY ? "too many messages being committed; try again"
					   : "the spool cannot take the message right now");
		return;
	}
}

static bool
api_resend_status_failed(const char *s)
{
	return strcmp(s, "bounced") == 0 || strcmp(s, "expired") == 0;
}

static void
api_resend_found(void *arg, struct maillog_result *res)
{
	struct api_resend_op *op = arg;
	const struct maillog_rows *msg = &res->sets[MAILLOG_SET_MESSAGES];
	const struct maillog_rows *rc = &res->sets[MAILLOG_SET_RECIPIENTS];
	int c_from = maillog_rows_col(msg, "from");
	int c_addr = maillog_rows_col(rc, "address"), c_status = maillog_rows_col(rc, "status");
	const struct maillog_cell *from;
	size_t r;

	if (res->rc == -1) {
		maillog_result_free(res);
		api_resend_end(op, API_RESEND_FAILED, "the email log cannot be read right now");
		return;
	}
	if (msg->n_rows == 0 || c_from < 0 || c_addr < 0 || c_status < 0) {
		maillog_result_free(res);
		api_resend_end(op, API_RESEND_NOT_FOUND, "no message with this id in the email log");
		return;
	}
	from = maillog_rows_cell(msg, 0, (size_t)c_from);
	op->env.from = xstrdup(from->type == MAILLOG_CELL_TEXT ? from->s : "");
	for (r = 0; r < rc->n_rows; r++) {
		const struct maillog_cell *addr = maillog_rows_cell(rc, r, (size_t)c_addr);
		const struct maillog_cell *st = maillog_rows_cell(rc, r, (size_t)c_status);

		if (addr->type != MAILLOG_CELL_TEXT)
			continue;
		if (op->only_failed &&
		    (st->type != MAILLOG_CELL_TEXT || !api_resend_status_failed(st->s)))
			continue;
		spool_env_add_rcpt(&op->env, addr->s, 0, NULL);
	}
	maillog_result_free(res);
	if (op->env.n_rcpts == 0) {
		api_resend_end(op, API_RESEND_NOTHING, op->only_failed
		    ? "no recipient of this message bounced or expired"
		    : "this message has no recipients");
		return;
	}
	bodies_load(op->rs->a->bodies, op->old_id,
	    op->rs->a->conf->limits.max_message_size + API_RESEND_BODY_SLACK, api_resend_loaded,
	    op);
}

static void
api_resend_start(struct api_resend *rs, struct api_resend_job *job, struct evhttp_request *req,
    uint64_t id, bool only_failed)
{
	struct api_resend_op *op = xcalloc(1, sizeof(*op));

	op->rs = rs;
	op->job = job;
	op->req = req;
	op->old_id = id;
	op->only_failed = only_failed;
	buf_init(&op->body);
	rs->inflight++;
	if (job)
		job->running++;
	maillog_query_message(rs->a->mq, id, api_resend_found, op);
}

void
api_resend_post(struct api *a, struct evhttp_request *req, const char *rest, const char *query)
{
	const char *slash = strchr(rest, '/');
	const char *why = "bad request";
	bool only_failed;
	uint64_t id;
	json_t *o;

	(void)query;
	if (slash == NULL || strcmp(slash, "/resend") != 0) {
		api_reply_error(req, 404, "not_found", "no such endpoint");
		return;
	}
	if (!api_id_is_valid(rest, (size_t)(slash - rest)) ||
	    num_parse_hex64(rest, (size_t)(slash - rest), &id) == -1) {
		api_reply_error(req, 400, "bad_id", "a message id is 16 hex digits");
		return;
	}
	o = api_resend_body(req, &why);
	if (o == NULL || !api_resend_only_failed(o, &only_failed, &why)) {
		json_decref(o);
		api_reply_error(req, 400, "bad_request", why);
		return;
	}
	json_decref(o);
	if (a->resend == NULL || a->resend->stopping || a->bodies == NULL) {
		api_reply_error(req, 503, "unavailable", "resend is not available");
		return;
	}
	api_resend_start(a->resend, NULL, req, id, only_failed);
}

/* ---- bulk jobs ---- */

static void
api_resend_job_free(struct api_resend_job *job)
{
	if (job->pause_ev)
		event_free(job->pause_ev);
	maillog_filter_fini(&job->f);
	json_decref(job->errors);
	free(job->ids);
	free(job->again);
	free(job);
}

static void
api_resend_job_finish(struct api_resend_job *job)
{
	job->finished = true;
	job->finished_ms = clock_now_ms();
	log_info("api", "resend_job_done", "sess=api job=%s total=%zu done=%llu failed=%llu",
	    job->id, job->n, (unsigned long long)job->done, (unsigned long long)job->failed);
}

static void
api_resend_pump(struct api_resend_job *job)
{
	struct api_resend *rs = job->rs;

	if (job->finished || job->collecting)
		return;
	while (!rs->stopping && !job->paused && job->running < API_RESEND_WINDOW) {
		uint64_t id;

		if (job->n_again > 0)
			id = job->again[--job->n_again];
		else if (job->next_i < job->n)
			id = job->ids[job->next_i++];
		else
			break;
		api_resend_start(rs, job, NULL, id, job->only_failed);
	}
	if (job->running == 0 && (rs->stopping ||
	    (job->n_again == 0 && job->next_i == job->n)))
		api_resend_job_finish(job);
}

static void
api_resend_unpause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct api_resend_job *job = arg;

	(void)fd;
	(void)what;
	job->paused = false;
	api_resend_pump(job);
}

static void
api_resend_job_add_id(struct api_resend_job *job, uint64_t id)
{
	if (job->n == job->cap) {
		job->cap = job->cap ? 2 * job->cap : 256;
		job->ids = xreallocarray(job->ids, job->cap, sizeof(*job->ids));
	}
	job->ids[job->n++] = id;
}

/* Bulk jobs still collecting or resending. */
static size_t
api_resend_unfinished(const struct api_resend *rs)
{
	const struct api_resend_job *j;
	size_t n = 0;

	for (j = rs->jobs; j != NULL; j = j->next)
		n += !j->finished;
	return n;
}

/* Keep at most API_RESEND_JOBS_KEPT jobs: the oldest finished ones go first. */
static void
api_resend_jobs_trim(struct api_resend *rs)
{
	struct api_resend_job **pp = &rs->jobs, **last = NULL;

	while (rs->n_jobs > API_RESEND_JOBS_KEPT) {
		for (pp = &rs->jobs, last = NULL; *pp != NULL; pp = &(*pp)->next)
			if ((*pp)->finished)
				last = pp;
		if (last == NULL)
			return;
		{
			struct api_resend_job *gone = *last;

			*last = gone->next;
			api_resend_job_free(gone);
			rs->n_jobs--;
		}
	}
}

static struct api_resend_job *
api_resend_job_new(struct api_resend *rs, bool only_failed)
{
	struct api_resend_job *job = xcalloc(1, sizeof(*job));
	uint64_t now = clock_now_ms();

	job->rs = rs;
	job->only_failed = only_failed;
	job->created_ms = now;
	job->errors = json_array();
	job->pause_ev = evtimer_new(rs->a->base, api_resend_unpause_cb, job);
	/* Time-ordered like queue IDs, and unique within this process. */
	id_format(((now - ID_EPOCH_MS) << 20) | (++rs->seq & 0xfffff), job->id);
	job->next = rs->jobs;
	rs->jobs = job;
	rs->n_jobs++;
	api_resend_jobs_trim(rs);
	return job;
}

static void
api_resend_job_accepted(struct api_resend_job *job, struct evhttp_request *req)
{
	log_info("api", "resend_job_started", "sess=api job=%s total=%zu only_failed=%s", job->id,
	    job->n, job->only_failed ? "yes" : "no");
	api_reply_json(req, 202, json_pack("{s:I,s:s}", "count", (json_int_t)job->n, "job",
	    job->id));
	api_resend_pump(job);
}

static void
api_resend_page(void *arg, struct maillog_result *res)
{
	struct api_resend_job *job = arg;
	struct api_resend *rs = job->rs;
	const struct maillog_rows *msg = &res->sets[MAILLOG_SET_MESSAGES];
	int c_id = maillog_rows_col(msg, "id");
	size_t r;

	rs->inflight--;
	if (res->rc == -1 || rs->stopping) {
		if (res->rc == -1)
			api_reply_db_error(job->req, res);
		else
			api_reply_error(job->req, 503, "unavailable", "shutting down");
		maillog_result_free(res);
		job->collecting = false;
		job->req = NULL;
		job->n = job->next_i = 0;
		api_resend_job_finish(job);
		return;
	}
	for (r = 0; c_id >= 0 && r < msg->n_rows; r++) {
		const struct maillog_cell *c = maillog_rows_cell(msg, r, (size_t)c_id);
		uint64_t id;

		if (c->type == MAILLOG_CELL_TEXT && id_parse(c->s, strlen(c->s), &id) == 0)
			api_resend_job_add_id(job, id);
	}
	job->f.before_id = res->next_cursor;
	maillog_result_free(res);
	if (job->f.before_id != 0 && job->n < API_RESEND_MATCH_MAX) {
		rs->inflight++;
		maillog_query_search(rs->a->mq, &job->f, api_resend_page, job);
		return;
	}
	job->collecting = false;
	{
		struct evhttp_request *req = job->req;

		job->req = NULL;
		api_resend_job_accepted(job, req);
	}
}

static int
api_resend_cmp_id(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* {"ids": [...]}: every one a valid ID; duplicates are resent once. */
static bool
api_resend_parse_ids(const json_t *ids, struct api_resend_job *job, const char **why)
{
	size_t i, n = json_array_size(ids), k;

	if (!json_is_array(ids) || n == 0) {
		*why = "ids must be a non-empty array of message ids";
		return false;
	}
	if (n > API_RESEND_IDS_MAX) {
		*why = "too many ids in one request (at most 10000)";
		return false;
	}
	for (i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(ids, i));
		uint64_t id;

		if (s == NULL || !api_id_is_valid(s, strlen(s)) ||
		    num_parse_hex64(s, strlen(s), &id) == -1) {
			*why = "ids must be message ids (16 hex digits)";
			return false;
		}
		api_resend_job_add_id(job, id);
	}
	qsort(job->ids, job->n, sizeof(*job->ids), api_resend_cmp_id);
	for (i = 1, k = 1; i < job->n; i++)
		if (job->ids[i] != job->ids[k - 1])
			job->ids[k++] = job->ids[i];
	job->n = k;
	return true;
}

/* {"filter": {...}}: the search filters of GET /api/v1/messages, checked by the same code. */
static bool
api_resend_parse_filter(const json_t *flt, struct maillog_filter *f, const char **why)
{
	static const char *const keys[] = { "status", "from", "to", "since", "until", "upstream",
		"q" };
	struct buf qs = BUF_INIT;
	const char *key;
	json_t *v;
	bool ok;

	memset(f, 0, sizeof(*f));
	if (!json_is_object(flt)) {
		*why = "filter must be an object";
		return false;
	}
	json_object_foreach((json_t *)flt, key, v) {
		char num[24], *enc;
		const char *s = NULL;
		size_t i;

		for (i = 0; i < HK_ARRAY_LEN(keys) && strcmp(key, keys[i]) != 0; i++)
			;
		if (i == HK_ARRAY_LEN(keys)) {
			*why = "filter keys: status, from, to, since, until, upstream, q";
			buf_fini(&qs);
			return false;
		}
		if (json_is_string(v)) {
			s = json_string_value(v);
		} else if (json_is_integer(v) && json_integer_value(v) >= 0 &&
		    (strcmp(key, "since") == 0 || strcmp(key, "until") == 0)) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
			s = num;
		} else {
			*why = "filter values must be strings (since and until may be Unix seconds)";
			buf_fini(&qs);
			return false;
		}
		enc = evhttp_uriencode(s, -1, 0);
		if (enc == NULL)
			hk_panic("evhttp_uriencode failed");
		buf_printf(&qs, "%s%s=%s", qs.len ? "&" : "", key, enc);
		free(enc);
	}
	ok = api_query_search(qs.ptr ? qs.ptr : "", clock_now_ms(), f, why) == API_QUERY_OK;
	buf_fini(&qs);
	if (ok)
		f->limit = MAILLOG_QUERY_LIMIT_MAX;
	return ok;
}

void
api_resend_bulk_post(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query)
{
	struct api_resend_job *job;
	const char *why = "bad request", *key;
	const json_t *ids, *flt;
	bool only_failed;
	json_t *o, *v;

	(void)rest;
	(void)query;
	o = api_resend_body(req, &why);
	if (o == NULL || !api_resend_only_failed(o, &only_failed, &why))
		goto bad;
	json_object_foreach(o, key, v) {
		if (strcmp(key, "ids") != 0 && strcmp(key, "filter") != 0 &&
		    strcmp(key, "only_failed") != 0) {
			why = "fields: ids or filter, and only_failed";
			goto bad;
		}
	}
	ids = json_object_get(o, "ids");
	flt = json_object_get(o, "filter");
	if ((ids == NULL) == (flt == NULL)) {
		why = "give either ids or filter";
		goto bad;
	}
	if (a->resend == NULL || a->resend->stopping || a->bodies == NULL) {
		json_decref(o);
		api_reply_error(req, 503, "unavailable", "resend is not available");
		return;
	}
	if (api_resend_unfinished(a->resend) >= API_RESEND_JOBS_RUNNING) {
		json_decref(o);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "10");
		api_reply_error(req, 429, "too_many_jobs",
		    "4 bulk resend jobs are running already: wait for one to finish "
		    "(GET /api/v1/resend/{job})");
		return;
	}
	job = api_resend_job_new(a->resend, only_failed);
	if (ids != NULL) {
		if (!api_resend_parse_ids(ids, job, &why))
			goto bad_job;
		json_decref(o);
		api_resend_job_accepted(job, req);
		return;
	}
	if (!api_resend_parse_filter(flt, &job->f, &why))
		goto bad_job;
	json_decref(o);
	job->collecting = true;
	job->req = req;
	a->resend->inflight++;
	maillog_query_search(a->mq, &job->f, api_resend_page, job);
	return;
bad_job:
	/* Never started: nothing else refers to it. */
	a->resend->jobs = job->next;
	a->resend->n_jobs--;
	api_resend_job_free(job);
bad:
	json_decref(o);
	api_reply_error(req, 400, "bad_request", why);
}

void
api_resend_job_get(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query)
{
	struct api_resend_job *job;
	char t[API_JSON_TIME_LEN + 1];
	json_t *o;

	(void)query;
	if (!api_id_is_valid(rest, strlen(rest))) {
		api_reply_error(req, 400, "bad_id", "a job id is 16 hex digits");
		return;
	}
	for (job = a->resend ? a->resend->jobs : NULL; job != NULL; job = job->next)
		if (strcasecmp(job->id, rest) == 0)
			break;
	if (job == NULL) {
		api_reply_error(req, 404, "not_found", "no such resend job (jobs live in memory)");
		return;
	}
	api_json_time(job->created_ms, t);
	o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:b,s:b,s:s,s:O}", "job", job->id,
	    "total", (json_int_t)job->n, "done", (json_int_t)job->done,
	    "failed", (json_int_t)job->failed,
	    "pending", (json_int_t)(job->n - job->done - job->failed),
	    "only_failed", job->only_failed, "finished", job->finished, "created", t,
	    "errors", job->errors);
	/* "count" as in the 202, "state" for pollers (hikyaku resend follows it). */
	json_object_set_new(o, "count", json_integer((json_int_t)job->n));
	json_object_set_new(o, "state", json_string(job->finished ? "done" : "running"));
	if (job->finished) {
		api_json_time(job->finished_ms, t);
		json_object_set_new(o, "finished_at", json_string(t));
	}
	api_reply_json(req, 200, o);
}

/* ---- life ---- */

void
api_resend_init(struct api *a)
{
	a->resend = xcalloc(1, sizeof(*a->resend));
	a->resend->a = a;
}

void
api_resend_fini(struct api *a)
{
	struct api_resend *rs = a->resend;
	struct api_resend_job *job;

	if (rs == NULL)
		return;
	rs->stopping = true;
	for (job = rs->jobs; job != NULL; job = job->next) {
		evtimer_del(job->pause_ev);
		job->paused = false;
		if (!job->finished && !job->collecting && job->running == 0)
			api_resend_job_finish(job);
	}
	/* Resends in flight finish their chain (the message may already be in the spool). */
	while (rs->inflight > 0)
		jobs_wait_completions(a->hub);
	while ((job = rs->jobs) != NULL) {
		rs->jobs = job->next;
		if (job->n_again + (job->n - job->next_i) > 0)
			log_warn("api", "resend_job_stopped", "sess=api job=%s not_started=%zu",
			    job->id, job->n_again + (job->n - job->next_i));
		api_resend_job_free(job);
	}
	free(rs);
	a->resend = NULL;
}
