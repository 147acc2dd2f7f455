/*
 * http.c - the API's HTTP side: sockets, evhttp set-up, bearer token, routing, error replies.
 *
 * Two evhttp instances share one route table: the TCP one checks the token, the control socket's
 * does not. Routing is a table of (path or prefix, methods, public?, handler); an unknown path is
 * 404, a known path with another method 405 with Allow. Unauthenticated requests get 401 before
 * anything is routed, so a caller without the token learns nothing about which paths exist.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "api_int.h"
#include "api_json.h"
#include "../net/listener.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define API_TOKEN_MAX 4096
#define API_BODY_MAX (1024 * 1024)
#define API_HEADERS_MAX (16 * 1024)
#define API_TIMEOUT_S 30
#define API_QUERY_THREADS 2

enum {
	API_M_GET = 1 << 0,
	API_M_HEAD = 1 << 1,
	API_M_POST = 1 << 2,
	API_M_DELETE = 1 << 3,
};

struct api_route {
	const char *path; /* exact path, or a prefix when prefix is set */
	bool prefix;
	unsigned methods;
	bool public;      /* no token needed on TCP */
	api_handler_fn fn;
};

static void api_healthz(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query);

static const struct api_route api_routes[] = {
	{ .path = "/healthz", .methods = API_M_GET | API_M_HEAD, .public = true, .fn = api_healthz },
	{ .path = "/metrics", .methods = API_M_GET | API_M_HEAD, .public = true,
	  .fn = api_metrics_get },
	{ .path = "/api/v1/messages", .methods = API_M_GET, .fn = api_messages_search },
	{ .path = "/api/v1/messages", .methods = API_M_POST, .fn = api_messages_post },
	{ .path = "/api/v1/messages/raw", .methods = API_M_POST, .fn = api_messages_raw_post },
	{ .path = "/api/v1/messages/", .prefix = true, .methods = API_M_GET,
	  .fn = api_messages_get },
	{ .path = "/api/v1/queue", .methods = API_M_GET, .fn = api_queue_get },
	{ .path = "/api/v1/queue/flush", .methods = API_M_POST, .fn = api_admin_flush_all },
	{ .path = "/api/v1/queue/", .prefix = true, .methods = API_M_POST, .fn = api_admin_post },
	{ .path = "/api/v1/queue/", .prefix = true, .methods = API_M_DELETE,
	  .fn = api_admin_delete },
	{ .path = "/api/v1/upstreams", .methods = API_M_GET, .fn = api_upstreams_get },
	{ .path = "/api/v1/checks/dns", .methods = API_M_GET, .fn = api_checks_dns_get },
	{ .path = "/api/v1/upstreams/", .prefix = true, .methods = API_M_POST,
	  .fn = api_upstreams_test_post },
	/* After /api/v1/messages/raw: the prefix would match it too. */
	{ .path = "/api/v1/messages/", .prefix = true, .methods = API_M_POST,
	  .fn = api_resend_post },
	{ .path = "/api/v1/resend", .methods = API_M_POST, .fn = api_resend_bulk_post },
	{ .path = "/api/v1/alerts/test", .methods = API_M_POST, .fn = api_alerts_test_post },
	{ .path = "/api/v1/alerts", .methods = API_M_GET, .fn = api_alerts_list_get },
	{ .path = "/api/v1/resend/", .prefix = true, .methods = API_M_GET,
	  .fn = api_resend_job_get },
};

/* ---- replies ---- */

static void
api_send(struct evhttp_request *req, int status, const char *content_type, const char *body,
    size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evbuffer_new();

	evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evbuffer_add(out, body, len);
	evhttp_send_reply(req, status, NULL, out);
	evbuffer_free(out);
}

void
api_reply_json(struct evhttp_request *req, int status, json_t *body)
{
	char *text;

	if (body == NULL)
		body = json_object();
	text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(body);
	if (text == NULL)
		hk_panic("json_dumps failed");
	api_send(req, status, "application/json", text, strlen(text));
	free(text);
}

void
api_reply_error(struct evhttp_request *req, int status, const char *code, const char *message)
{
	api_reply_json(req, status, api_json_error(code, message));
}

void
api_reply_text(struct evhttp_request *req, int status, const char *content_type,
    const struct buf *body)
{
	api_send(req, status, content_type, body->ptr ? body->ptr : "", body->len);
}

void
api_reply_db_error(struct evhttp_request *req, const struct maillog_result *res)
{
	(void)res; /* the text is logged by maillog_query; it may name files: not for clients */
	api_reply_error(req, 503, "unavailable", "the email log cannot be read right now");
}

/* ---- auth ---- */

static void
api_sha256(const void *p, size_t n, unsigned char out[32])
{
	SHA256(p, n, out);
}

/*
 * True when the request carries the right bearer token. Both sides are hashed first, so the
 * comparison is constant-time whatever the lengths (CRYPTO_memcmp on equal-size digests).
 */
static bool
api_token_is_valid(const struct api *a, struct evhttp_request *req)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	unsigned char got[32];
	size_t n;

	if (!a->pre.has_token || v == NULL)
		return false;
	n = strlen(v);
	if (n < 7 || !str_has_prefix_ci(v, n, "bearer "))
		return false;
	v += 7;
	while (*v == ' ')
		v++;
	n = strlen(v);
	while (n > 0 && v[n - 1] == ' ')
		n--;
	if (n == 0 || n > API_TOKEN_MAX)
		return false;
	api_sha256(v, n, got);
	return CRYPTO_memcmp(got, a->pre.token_sha256, sizeof(got)) == 0;
}

/* ---- routing ---- */

static unsigned
api_method_bit(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return API_M_GET;
	case EVHTTP_REQ_HEAD:
		return API_M_HEAD;
	case EVHTTP_REQ_POST:
		return API_M_POST;
	case EVHTTP_REQ_DELETE:
		return API_M_DELETE;
	default:
		return 0;
	}
}

static void
api_allow_header(struct evhttp_request *req, unsigned methods)
{
	struct buf b = BUF_INIT;

	if (methods & API_M_GET)
		buf_append_str(&b, "GET, ");
	if (methods & API_M_HEAD)
		buf_append_str(&b, "HEAD, ");
	if (methods & API_M_POST)
		buf_append_str(&b, "POST, ");
	if (methods & API_M_DELETE)
		buf_append_str(&b, "DELETE, ");
	if (b.len >= 2)
		buf_truncate(&b, b.len - 2);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", b.ptr ? b.ptr : "");
	buf_fini(&b);
}

/*
 * The first route whose path matches and which serves method; else the first whose path matches
 * (the caller answers 405), with *allow the methods of every route matching the path.
 */
static const struct api_route *
api_route_find(const char *path, unsigned method, const char **rest, unsigned *allow)
{
	const struct api_route *first = NULL;
	const char *first_rest = "";
	size_t i;

	*allow = 0;
	for (i = 0; i < HK_ARRAY_LEN(api_routes); i++) {
		const struct api_route *r = &api_routes[i];
		size_t n = strlen(r->path);

		if (r->prefix ? strncmp(path, r->path, n) != 0 : strcmp(path, r->path) != 0)
			continue;
		if (r->methods & method) {
			*rest = path + n;
			return r;
		}
		*allow |= r->methods;
		if (first == NULL) {
			first = r;
			first_rest = path + n;
		}
	}
	*rest = first_rest;
	return first;
}

static void
api_dispatch(struct api *a, struct evhttp_request *req, bool trusted)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	unsigned method = api_method_bit(evhttp_request_get_command(req)), allow = 0;
	const struct api_route *r;
	const char *rest = "";

	a->requests++;
	if (path == NULL || *path == '\0')
		path = "/";
	r = api_route_find(path, method, &rest, &allow);
	if (!trusted && (r == NULL || !r->public) && !api_token_is_valid(a, req)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		    "Bearer realm=\"hikyaku\"");
		api_reply_error(req, 401, "unauthorized",
		    a->pre.has_token ? "missing or wrong bearer token"
				     : "the API has no token configured (api.token_file); use the "
				       "control socket");
		return;
	}
	if (r == NULL) {
		api_reply_error(req, 404, "not_found", "no such endpoint");
		return;
	}
	if (!(method & r->methods)) {
		api_allow_header(req, allow);
		api_reply_error(req, 405, "method_not_allowed", "method not allowed on this path");
		return;
	}
	r->fn(a, req, rest, query);
}

/*
 * Replies go out as headers and body in separate writes; with Nagle's algorithm the last short
 * segment of a reply over a few segments waits for the client's delayed ACK (40 ms on Linux) on
 * a keep-alive connection. Each request turns Nagle off on its socket (one cheap syscall).
 */
static void
api_nodelay(struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
api_tcp_cb(struct evhttp_request *req, void *arg)
{
	api_nodelay(req);
	api_dispatch(arg, req, false);
}

static void
api_control_cb(struct evhttp_request *req, void *arg)
{
	api_dispatch(arg, req, true);
}

static void
api_healthz(struct api *a, struct evhttp_request *req, const char *rest, const char *query)
{
	(void)a;
	(void)rest;
	(void)query;
	api_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

/* ---- set-up ---- */

static int
api_read_token(const char *path, unsigned char out[32], struct hk_err *err)
{
	char buf[API_TOKEN_MAX + 2];
	size_t len = 0, start = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return hk_err_sys(err, errno, "api.token_file %s", path);
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			hk_err_sys(err, errno, "read api.token_file %s", path);
			close(fd);
			goto fail;
		}
		len += (size_t)n;
	}
	close(fd);
	if (len > API_TOKEN_MAX) {
		hk_err_set(err, HK_E_CONFIG, "api.token_file %s: longer than %d bytes", path,
		    API_TOKEN_MAX);
		goto fail;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
			      buf[len - 1] == '\t'))
		len--;
	while (start < len && (buf[start] == ' ' || buf[start] == '\t'))
		start++;
	if (start == len || memchr(buf + start, '\n', len - start) != NULL) {
		hk_err_set(err, HK_E_CONFIG, "api.token_file %s: must hold one non-empty line", path);
		goto fail;
	}
	api_sha256(buf + start, len - start, out);
	explicit_bzero(buf, sizeof(buf));
	return 0;
fail:
	explicit_bzero(buf, sizeof(buf));
	return -1;
}

int
api_preinit(const struct conf *c, struct api_pre *pre, struct hk_err *err)
{
	struct conf_addr ctl;
	const char *why = NULL;

	memset(pre, 0, sizeof(*pre));
	pre->tcp_fd = -1;
	pre->control_fd = -1;
	if (c->api_token_file != NULL) {
		if (api_read_token(c->api_token_file, pre->token_sha256, err) == -1)
			return -1;
		pre->has_token = true;
	}
	pre->tcp_fd = listener_bind(&c->api_listen, 0, err);
	if (pre->tcp_fd == -1)
		goto fail;
	if (c->api_control_socket != NULL) {
		memset(&ctl, 0, sizeof(ctl));
		if (conf_addr_parse(c->api_control_socket, &ctl, &why) == -1 ||
		    ctl.ss.ss_family != AF_UNIX) {
			hk_err_set(err, HK_E_CONFIG, "api.control_socket %s: %s",
			    c->api_control_socket, why ? why : "not a socket path");
			free(ctl.text);
			goto fail;
		}
		pre->control_fd = listener_bind(&ctl, 0660, err);
		free(ctl.text);
		if (pre->control_fd == -1)
			goto fail;
	}
	return 0;
fail:
	api_pre_fini(pre);
	return -1;
}

void
api_pre_fini(struct api_pre *pre)
{
	if (pre->tcp_fd != -1)
		close(pre->tcp_fd);
	if (pre->control_fd != -1)
		close(pre->control_fd);
	pre->tcp_fd = pre->control_fd = -1;
	OPENSSL_cleanse(pre->token_sha256, sizeof(pre->token_sha256));
	pre->has_token = false;
}

static struct evhttp *
api_http_new(struct api *a, int fd, void (*cb)(struct evhttp_request *, void *),
    struct hk_err *err)
{
	struct evhttp *h = evhttp_new(a->base);

	if (h == NULL) {
		hk_err_set(err, HK_E_IO, "evhttp_new failed");
		return NULL;
	}
	/* The sending endpoints take whole messages in base64; the rest stays small anyway. */
	evhttp_set_max_body_size(h, api_send_body_max(a->conf));
	evhttp_set_max_headers_size(h, API_HEADERS_MAX);
	evhttp_set_timeout(h, API_TIMEOUT_S);
	/* Other methods reach the dispatcher too, so they get a JSON 405 instead of a bare 501. */
	evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(h, cb, a);
	if (evhttp_accept_socket(h, fd) == -1) {
		hk_err_set(err, HK_E_IO, "evhttp_accept_socket failed");
		evhttp_free(h);
		return NULL;
	}
	return h;
}

struct api *
api_new(const struct api_params *p, struct hk_err *err)
{
	struct api *a = xcalloc(1, sizeof(*a));

	HK_ASSERT_LOOP();
	a->base = p->base;
	a->conf = conf_ref(p->conf);
	a->ops = p->ops;
	a->pre = *p->pre;
	p->pre->tcp_fd = p->pre->control_fd = -1;
	OPENSSL_cleanse(p->pre->token_sha256, sizeof(p->pre->token_sha256));
	a->mq = maillog_query_new(p->state_dir, p->hub, API_QUERY_THREADS);
	api_send_init(a, p->hub, p->state_dir);
	a->hub = p->hub;
	a->bodies = p->bodies;
	api_resend_init(a);
	if (a->pre.tcp_fd != -1) {
		a->http_tcp = api_http_new(a, a->pre.tcp_fd, api_tcp_cb, err);
		if (a->http_tcp == NULL)
			goto fail;
	}
	if (a->pre.control_fd != -1) {
		a->http_control = api_http_new(a, a->pre.control_fd, api_control_cb, err);
		if (a->http_control == NULL)
			goto fail;
	}
	log_info("api", "listening", "sess=api listen=%s control=%s token=%s",
	    log_q(a->conf->api_listen.text),
	    log_q(a->conf->api_control_socket ? a->conf->api_control_socket : ""),
	    a->pre.has_token ? "yes" : "no");
	return a;
fail:
	api_free(a);
	return NULL;
}

void
api_free(struct api *a)
{
	if (a == NULL)
		return;
	/* Resends use the query pool and the daemon's submit: they finish first. */
	api_resend_fini(a);
	/* Queries in flight answer their requests first; evhttp_free then closes everything. */
	maillog_query_free(a->mq);
	if (a->idem != NULL)
		api_send_fini(a);
	api_admin_cancel_all(a);
	api_checks_cancel_all(a);
	api_alerts_cancel_all(a);
	if (a->http_tcp)
		evhttp_free(a->http_tcp);
	if (a->http_control)
		evhttp_free(a->http_control);
	/* evhttp_accept_socket() made the fds evhttp's; evhttp_free closed them. */
	if (a->http_tcp == NULL && a->pre.tcp_fd != -1)
		close(a->pre.tcp_fd);
	if (a->http_control == NULL && a->pre.control_fd != -1)
		close(a->pre.control_fd);
	conf_unref(a->explain_conf);
	conf_unref(a->conf);
	free(a);
}
