/*
 * api_checks.c - GET /api/v1/checks/dns?domain=D[&selector=S][&ip=IP]: the DNS checks of a
 * sending domain (docs/diagnostics.md "DNS checks"), run by the daemon through
 * api_ops.check_dns; the answer is the report as JSON (200), whatever the findings say.
 * Errors: 400 for a missing or malformed parameter, 503 when the daemon offers no checks.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "../util/log.h"
#include "../util/xalloc.h"
#include "api_int.h"
#include "api_query.h"
#include "../util/poison.h"

struct api_check_op {
	struct api *a;
	struct evhttp_request *req;
	void *handle;
	struct api_check_op *prev, *next;
};

struct api_check_args {
	char domain[256];
	char selector[64];
	char ip[64];
};

static bool
api_checks_is_name(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n >= max || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

static bool
api_checks_pair(void *arg, const char *key, const char *value, const char **why)
{
	struct api_check_args *ca = arg;
	unsigned char a[16];

	if (strcmp(key, "domain") == 0) {
		if (!api_checks_is_name(value, sizeof(ca->domain)) || strchr(value, '.') == NULL) {
			*why = "domain must be a domain name";
			return false;
		}
		memcpy(ca->domain, value, strlen(value) + 1);
	} else if (strcmp(key, "selector") == 0) {
		if (!api_checks_is_name(value, sizeof(ca->selector))) {
			*why = "selector must be a DNS label";
			return false;
		}
		memcpy(ca->selector, value, strlen(value) + 1);
	} else if (strcmp(key, "ip") == 0) {
		if (strlen(value) >= sizeof(ca->ip) || (inet_pton(AF_INET, value, a) != 1 &&
		    inet_pton(AF_INET6, value, a) != 1)) {
			*why = "ip must be an IPv4 or IPv6 address";
			return false;
		}
		memcpy(ca->ip, value, strlen(value) + 1);
	} else {
		*why = "unknown parameter (domain, selector, ip)";
		return false;
	}
	return true;
}

static void
api_checks_unlink(struct api_check_op *op)
{
	if (op->prev != NULL)
		op->prev->next = op->next;
	else if (op->a != NULL && op->a->checks == op)
		op->a->checks = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
}

static void
api_checks_done_cb(void *ctx, const struct buf *json)
{
	struct api_check_op *op = ctx;
	struct buf body;

	api_checks_unlink(op);
	buf_init(&body);
	buf_append(&body, json->ptr, json->len);
	api_reply_text(op->req, 200, "application/json", &body);
	buf_fini(&body);
	free(op);
}

void
api_checks_dns_get(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query)
{
	struct api_check_args ca;
	struct api_check_op *op;
	const char *why = NULL;

	(void)rest;
	memset(&ca, 0, sizeof(ca));
	if (api_query_each(query, api_checks_pair, &ca, &why) != API_QUERY_OK) {
		api_reply_error(req, 400, "bad_request", why != NULL ? why : "bad query string");
		return;
	}
	if (ca.domain[0] == '\0') {
		api_reply_error(req, 400, "bad_request", "domain is required");
		return;
	}
	if (a->ops.check_dns == NULL) {
		api_reply_error(req, 503, "unavailable", "DNS checks are not available");
		return;
	}
	op = xcalloc(1, sizeof(*op));
	op->a = a;
	op->req = req;
	op->next = a->checks;
	if (a->checks != NULL)
		a->checks->prev = op;
	a->checks = op;
	op->handle = a->ops.check_dns(a->ops.arg, ca.domain, ca.selector[0] ? ca.selector : NULL,
	    ca.ip[0] ? ca.ip : NULL, api_checks_done_cb, op);
}

void
api_checks_cancel_all(struct api *a)
{
	struct api_check_op *op, *next;

	for (op = a->checks; op != NULL; op = next) {
		next = op->next;
		if (a->ops.check_dns_cancel != NULL)
			a->ops.check_dns_cancel(a->ops.arg, op->handle);
		free(op);
	}
	a->checks = NULL;
}
