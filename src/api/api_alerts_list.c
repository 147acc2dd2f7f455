/*
 * api_alerts_list.c - GET /api/v1/alerts: the open alerts, then the recently resolved ones,
 * newest first, as the daemon's alert engine keeps them (src/alert/alert.h, docs/alerts.md).
 */
#include <string.h>

#include <event2/http.h>

#include "../util/buf.h"
#include "api_int.h"
#include "../util/poison.h"

void
api_alerts_list_get(struct api *a, struct evhttp_request *req, const char *rest,
    const char *query)
{
	struct buf body = BUF_INIT;

	(void)rest;
	if (query != NULL && *query != '\0') {
		api_reply_error(req, 400, "bad_request", "unknown query parameter");
		return;
	}
	if (a->ops.alerts_list == NULL) {
		api_reply_error(req, 503, "unavailable", "alerts are not running");
		return;
	}
	a->ops.alerts_list(a->ops.arg, &body);
	api_reply_text(req, 200, "application/json", &body);
	buf_fini(&body);
}
