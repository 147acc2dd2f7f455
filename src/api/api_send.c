/*
 * api_send.c - POST /api/v1/messages (JSON fields -> MIME) and POST /api/v1/messages/raw (a
 * ready message), both committed to the spool through the daemon before 202 (DESIGN.md 11).
 *
 * One struct api_send_op per request, on a list in struct api: parse -> Idempotency-Key lookup
 * (when the header is given) -> queue ID, Received:, MIME -> api_ops.submit -> (store the answer
 * under the key) -> 202. A second request with a key whose first request is still in this list
 * gets 409 at once rather than waiting: the client retries and then gets the stored answer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#include "api_int.h"
#include "api_send_parse.h"
#include "../db/idem.h"
#include "../diag/diag_align.h"
#include "../proto/header.h"
#include "../util/clock.h"
#include "../util/id.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define API_SEND_BODY_SLACK (64 * 1024) /* JSON around the base64 */
#define API_SEND_BODY_MIN (1024 * 1024)  /* what every endpoint accepts */

struct api_send_op {
	struct api_send_op *next;
	struct api *a;
	struct evhttp_request *req;
	bool raw;
	char *key; /* Idempotency-Key, NULL when not given */
	unsigned char hash[IDEM_HASH_LEN];
	struct api_send_req msg;
	struct api_raw_req rawreq;
	struct spool_env env;
	char qid[ID_HEX_LEN + 1];
	char *response; /* the 202 body */
	char peer[INET6_ADDRSTRLEN];
	bool control; /* came through the control socket */
};

size_t
api_send_body_max(const struct conf *c)
{
	uint64_t n = c->limits.max_message_size;

	/* Base64 of the whole message plus the JSON around it; never below the other endpoints'. */
	if (n == 0 || n > (uint64_t)SIZE_MAX / 2)
		return SIZE_MAX / 2;
	n = n / 3 * 4 + 8 + API_SEND_BODY_SLACK;
	return n < API_SEND_BODY_MIN ? API_SEND_BODY_MIN : (size_t)n;
}

void
api_send_init(struct api *a, struct jobs *hub, const char *state_dir)
{
	a->hub = hub;
	a->idem = idem_new(state_dir, hub);
}

void
api_send_fini(struct api *a)
{
	/* Each op waits for a completion (key lookup, commit or key store): let them answer. */
	while (a->sends != NULL)
		jobs_wait_completions(a->hub);
	idem_free(a->idem);
	a->idem = NULL;
}

static void
api_send_op_free(struct api_send_op *op)
{
	struct api_send_op **pp;

	for (pp = &op->a->sends; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	}
	api_send_req_fini(&op->msg);
	api_raw_req_fini(&op->rawreq);
	spool_env_fini(&op->env);
	free(op->key);
	free(op->response);
	free(op);
}

static void
api_send_error(struct api_send_op *op, int status, const char *code, const char *message)
{
	api_reply_error(op->req, status, code, message);
	api_send_op_free(op);
}

static void
api_send_unavailable(struct api_send_op *op, const struct hk_err *err)
{
	bool full = err != NULL && err->code == HK_E_NOSPACE;

	evhttp_add_header(evhttp_request_get_output_headers(op->req), "Retry-After",
	    full ? "60" : "5");
	api_send_error(op, 503, full ? "no_space" : "unavailable",
	    full ? "the spool is out of space; try again later"
		 : "the spool cannot take the message right now; try again later");
}

static void
api_send_reply_raw(struct api_send_op *op, int status, const char *json, bool replayed)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(op->req);
	struct evbuffer *out = evbuffer_new();

	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (replayed)
		evhttp_add_header(h, "Idempotent-Replayed", "true");
	evbuffer_add(out, json, strlen(json));
	evhttp_send_reply(op->req, status, NULL, out);
	evbuffer_free(out);
	api_send_op_free(op);
}

/* ---- after the commit ---- */

static void
api_send_stored_cb(void *arg, int rc, const struct hk_err *err)
{
	struct api_send_op *op = arg;

	if (rc == -1)
		log_warn("api", "idempotency_not_kept", "qid=%s key=%s err=%s", op->qid,
		    log_q(op->key), log_q(err->text));
	api_send_reply_raw(op, 202, op->response, false);
}

static void
api_send_committed_cb(void *ctx, int rc, const struct hk_err *err)
{
	struct api_send_op *op = ctx;
	json_t *o, *rcpts;
	const char *from_domain;
	char why[384];
	size_t i;

	if (rc == -1) {
		log_warn("api", "commit_failed", "qid=%s err=%s", op->qid, log_q(err->text));
		api_send_unavailable(op, err);
		return;
	}
	log_info("api", "queued", "qid=%s from=%s rcpts=%zu size=%llu source=%s", op->qid,
	    log_q(op->env.from), op->env.n_rcpts, (unsigned long long)op->env.size,
	    op->raw ? "api_raw" : "api");
	rcpts = json_array();
	for (i = 0; i < op->env.n_rcpts; i++)
		json_array_append_new(rcpts, json_pack("{s:s,s:s}", "address", op->env.rcpts[i].addr,
		    "status", "queued"));
	o = json_pack("{s:s,s:o}", "id", op->qid, "recipients", rcpts);
	/* DMARC relaxed alignment with the route's first upstream account: say so before it fails. */
	if (op->env.from != NULL && (from_domain = diag_align_addr_domain(op->env.from)) != NULL &&
	    diag_align_from_is_unaligned(op->a->conf, from_domain, why, sizeof(why))) {
		log_warn("api", "from_unaligned", "qid=%s from_domain=%s why=%s", op->qid,
		    log_q(from_domain), log_q(why));
		json_object_set_new(o, "warnings", json_pack("[s]", why));
	}
	op->response = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (op->response == NULL)
		hk_panic("json_dumps failed");
	if (op->key != NULL) {
		idem_store(op->a->idem, op->key, op->hash, 202, op->response, clock_now_ms(),
		    api_send_stored_cb, op);
		return;
	}
	api_send_reply_raw(op, 202, op->response, false);
}

/* ---- building and committing ---- */

/* RFC 5321 4.4: the API is a hop that takes the message in, so it adds a trace field. */
static void
api_send_received(const struct api_send_op *op, uint64_t now_ms, struct buf *out)
{
	const char *host = op->a->conf->hostname;

	if (op->control)
		buf_printf(out, "Received: from control socket (local)\r\n");
	else
		buf_printf(out, "Received: from api ([%s%s])\r\n",
		    strchr(op->peer, ':') != NULL ? "IPv6:" : "", op->peer);
	buf_printf(out, "\tby %s (hikyaku) with HTTP id %s", host, op->qid);
	if (op->env.n_rcpts == 1)
		buf_printf(out, "\r\n\tfor <%s>", op->env.rcpts[0].addr);
	buf_append_str(out, "; ");
	header_format_date(out, (int64_t)(now_ms / 1000), 0);
	buf_append_str(out, "\r\n");
}

static void
api_send_env_base(struct api_send_op *op, uint64_t id, uint64_t now_ms)
{
	op->env.id = id;
	op->env.received_ms = now_ms;
	op->env.source = xstrdup("api");
	op->env.listener = xstrdup(op->control ? (op->a->conf->api_control_socket
							 ? op->a->conf->api_control_socket
							 : "control")
					       : op->a->conf->api_listen.text);
	op->env.client = op->control ? NULL : xstrdup(op->peer);
	op->env.body = SMTP_BODY_7BIT;
	id_format(id, op->qid);
}

/* The MIME message for op->msg into body; -1 when refused (answered). */
static int
api_send_build_mime(struct api_send_op *op, uint64_t now_ms, struct buf *body)
{
	unsigned char seed[16];
	struct buf date = BUF_INIT, mid = BUF_INIT;
	struct mime_out out;
	enum mime_error me;
	char msg[MIME_MESSAGE_MAX + 8];
	size_t i;

	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		memset(seed, 0, sizeof(seed)); /* boundaries are checked against every part anyway */
	header_format_date(&date, (int64_t)(now_ms / 1000), 0);
	buf_printf(&mid, "<%s@%s>", op->qid, op->a->conf->hostname);
	op->msg.msg.date = date.ptr;
	op->msg.msg.message_id = mid.ptr;
	op->msg.msg.seed = seed;
	op->msg.msg.seed_len = sizeof(seed);
	mime_out_init(&out);
	me = mime_build(&op->msg.msg, &out);
	op->msg.msg.date = op->msg.msg.message_id = NULL;
	buf_fini(&date);
	buf_fini(&mid);
	if (me != MIME_OK) {
		snprintf(msg, sizeof(msg), "%s", out.message);
		mime_out_fini(&out);
		api_send_error(op, mime_error_http_status(me), mime_error_code(me), msg);
		return -1;
	}
	if (op->a->conf->limits.max_recipients && out.rcpt_count > op->a->conf->limits.max_recipients) {
		mime_out_fini(&out);
		api_send_error(op, 422, "too_many_recipients", "too many recipients");
		return -1;
	}
	op->env.from = xstrdup(op->msg.msg.from.address);
	op->env.route = op->msg.route ? xstrdup(op->msg.route) : NULL;
	for (i = 0; i < out.rcpt_count; i++)
		spool_env_add_rcpt(&op->env, out.rcpts[i], 0, NULL);
	api_send_received(op, now_ms, body);
	buf_append(body, out.data.ptr, out.data.len);
	mime_out_fini(&out);
	return 0;
}

static void
api_send_build_raw(struct api_send_op *op, uint64_t now_ms, struct buf *body)
{
	size_t i;

	op->env.from = xstrdup(op->rawreq.mail_from);
	for (i = 0; i < op->rawreq.n_rcpts; i++)
		spool_env_add_rcpt(&op->env, op->rawreq.rcpts[i], 0, NULL);
	op->env.body = op->rawreq.eight_bit ? SMTP_BODY_8BITMIME : SMTP_BODY_7BIT;
	op->env.smtputf8 = op->rawreq.smtputf8;
	api_send_received(op, now_ms, body);
	buf_append(body, op->rawreq.data.ptr, op->rawreq.data.len);
	api_raw_req_fini(&op->rawreq);
}

static void
api_send_commit(struct api_send_op *op)
{
	const struct api_ops *ops = &op->a->ops;
	struct hk_err err = { 0 };
	struct buf body = BUF_INIT;
	uint64_t now = clock_now_ms();

	if (ops->new_id == NULL || ops->submit == NULL) {
		api_send_unavailable(op, NULL);
		return;
	}
	api_send_env_base(op, ops->new_id(ops->arg), now);
	if (op->raw)
		api_send_build_raw(op, now, &body);
	else if (api_send_build_mime(op, now, &body) == -1)
		return;
	if (op->a->conf->limits.max_message_size && body.len > op->a->conf->limits.max_message_size) {
		buf_fini(&body);
		api_send_error(op, 413, "too_large", "the message exceeds limits.max_message_size");
		return;
	}
	op->env.size = body.len;
	if (ops->submit(ops->arg, &op->env, &body, api_send_committed_cb, op, &err) == -1) {
		buf_fini(&body);
		log_warn("api", "commit_refused", "qid=%s err=%s", op->qid, log_q(err.text));
		api_send_unavailable(op, &err);
		return;
	}
	buf_fini(&body);
}

/* ---- Idempotency-Key ---- */

static void
api_send_lookup_cb(void *arg, int rc, const struct hk_err *err, const struct idem_entry *e)
{
	struct api_send_op *op = arg;

	(void)err;
	if (rc == -1) {
		api_send_unavailable(op, NULL);
		return;
	}
	if (!e->found) {
		api_send_commit(op);
		return;
	}
	if (memcmp(e->hash, op->hash, IDEM_HASH_LEN) != 0) {
		api_send_error(op, 409, "idempotency_conflict",
		    "this Idempotency-Key was used with a different request in the last 24 hours");
		return;
	}
	api_send_reply_raw(op, e->status, e->response, true);
}

static bool
api_send_key_in_flight(const struct api *a, const char *key)
{
	const struct api_send_op *op;

	for (op = a->sends; op != NULL; op = op->next) {
		if (op->key != NULL && strcmp(op->key, key) == 0)
			return true;
	}
	return false;
}

/* ---- handlers ---- */

static bool
api_send_route_is_known(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n_routes; i++) {
		if (strcmp(c->routes[i].name, name) == 0)
			return true;
	}
	return false;
}

static void
api_send_peer(struct api_send_op *op)
{
	struct evhttp_connection *c = evhttp_request_get_connection(op->req);
	const struct sockaddr *sa = c ? evhttp_connection_get_addr(c) : NULL;

	op->control = sa == NULL || sa->sa_family == AF_UNIX;
	if (sa != NULL && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		    op->peer, sizeof(op->peer));
	else if (sa != NULL && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    op->peer, sizeof(op->peer));
	else
		op->control = true;
}

static void
api_send_start(struct api *a, struct evhttp_request *req, bool raw)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *key = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Idempotency-Key");
	struct api_send_limits lim = { .max_message_size = a->conf->limits.max_message_size,
		.max_recipients = a->conf->limits.max_recipients };
	struct api_send_error e = { 0 };
	struct api_send_op *op;
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	EVP_MD_CTX *sha;
	int rc;

	if (key != NULL && !idem_key_is_valid(key)) {
		api_reply_error(req, 400, "bad_idempotency_key",
		    "Idempotency-Key: 1 to 255 printable ASCII characters");
		return;
	}
	if (len > api_send_body_max(a->conf)) {
		api_reply_error(req, 413, "too_large", "the request exceeds the message size limit");
		return;
	}
	op = xcalloc(1, sizeof(*op));
	op->a = a;
	op->req = req;
	op->raw = raw;
	op->next = a->sends;
	a->sends = op;
	api_send_peer(op);
	rc = raw ? api_raw_parse(body, len, &lim, &op->rawreq, &e)
		 : api_send_parse(body, len, &lim, &op->msg, &e);
	if (rc == -1) {
		api_send_error(op, e.status, e.code, e.message);
		return;
	}
	if (!raw && op->msg.route != NULL && !api_send_route_is_known(a->conf, op->msg.route)) {
		api_send_error(op, 422, "unknown_route",
		    "route: no route of that name in the configuration");
		return;
	}
	if (key == NULL) {
		api_send_commit(op);
		return;
	}
	if (api_send_key_in_flight(a, key)) {
		api_send_error(op, 409, "idempotency_in_progress",
		    "a request with this Idempotency-Key is still being processed; retry later");
		return;
	}
	op->key = xstrdup(key);
	/* The path is part of the digest: the same body sent to the other endpoint differs. */
	sha = EVP_MD_CTX_new();
	if (sha == NULL || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(sha, raw ? "raw\n" : "messages\n", raw ? 4 : 9) != 1 ||
	    EVP_DigestUpdate(sha, body, len) != 1 || EVP_DigestFinal_ex(sha, op->hash, NULL) != 1)
		hk_panic("SHA-256 failed");
	EVP_MD_CTX_free(sha);
	idem_lookup(a->idem, op->key, clock_now_ms(), api_send_lookup_cb, op);
}

void
api_messages_post(struct api *a, struct evhttp_request *req, const char *rest, const char *query)
{
	(void)rest;
	(void)query;
	api_send_start(a, req, false);
}

void
api_messages_raw_post(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query)
{
	(void)rest;
	(void)query;
	api_send_start(a, req, true);
}
