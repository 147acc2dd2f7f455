/*
 * cli_alert.c - hikyaku alert test CHANNEL [--json]: send a test notice through one alert
 * channel of the running daemon (POST /api/v1/alerts/test on the control socket) and say
 * whether the channel accepted it.
 *
 * Exit codes (sysexits.h): 0 the channel accepted the notice; 69 it failed after its retries
 * (the reason is printed), or the daemon is not running; 64 no such channel (the configured
 * ones are listed) or bad usage; 77 no permission on the control socket; 78 bad configuration.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jansson.h>

#include "cli.h"
#include "cli_http.h"
#include "../conf/conf.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

/* Long enough for a channel's every retry (timeouts and backoff) to play out. */
#define CLI_ALERT_TIMEOUT_MS (15u * 60u * 1000u)

static const char cli_alert_usage[] = "usage: hikyaku alert test CHANNEL [--json]\n";

static int
cli_alert_socket_error(const char *sock, const struct hk_err *err)
{
	switch (err->sys_errno) {
	case ENOENT:
	case ECONNREFUSED:
	case ENOTDIR:
		fprintf(stderr, "hikyaku is not running (no control socket at %s): start it with "
		    "`systemctl start hikyaku` or `hikyaku serve`\n", sock);
		return EX_UNAVAILABLE;
	case EACCES:
	case EPERM:
		fprintf(stderr, "hikyaku alert: permission denied on the control socket %s: run as "
		    "root or as a member of group hikyaku\n", sock);
		return EX_NOPERM;
	default:
		fprintf(stderr, "hikyaku alert: %s\n", err->text);
		return EX_UNAVAILABLE;
	}
}

/* Print the outcome of the reply r for channel; returns the exit code. */
static int
cli_alert_outcome(const struct cli_opts *o, const char *channel, const struct cli_http_resp *r)
{
	json_t *j = json_loadb(r->body.ptr ? r->body.ptr : "", r->body.len, 0, NULL);
	json_t *e = json_object_get(j, "error"), *names = json_object_get(j, "channels");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	int ex;

	if (o->json && j != NULL) {
		char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		puts(text ? text : "{}");
		free(text);
	}
	if (r->status == 200) {
		if (!o->json)
			printf("alert test: channel %s accepted the test notice\n", channel);
		ex = EX_OK;
	} else if (r->status == 404 && code != NULL && strcmp(code, "unknown_channel") == 0) {
		size_t i;

		fprintf(stderr, "hikyaku alert test: no channel \"%s\"; configured channels:",
		    channel);
		for (i = 0; i < json_array_size(names); i++)
			fprintf(stderr, "%s %s", i ? "," : "",
			    json_string_value(json_array_get(names, i)));
		fprintf(stderr, "%s\n", json_array_size(names) ? "" : " none (see alerts.channels "
		    "in the configuration)");
		ex = EX_USAGE;
	} else if (r->status == 502) {
		fprintf(stderr, "hikyaku alert test: channel %s failed: %s\n", channel,
		    msg ? msg : "no reason given");
		ex = EX_UNAVAILABLE;
	} else {
		fprintf(stderr, "hikyaku alert test: %s (HTTP %d)\n", msg ? msg : "request failed",
		    r->status);
		ex = r->status == 401 || r->status == 403 ? EX_NOPERM : EX_UNAVAILABLE;
	}
	json_decref(j);
	return ex;
}

static int
cli_alert_test(const struct cli_opts *o, const char *channel)
{
	struct cli_http_resp r;
	struct hk_err err = { 0 };
	char *sock = NULL, *body;
	json_t *req;
	int ex;

	ex = cli_conf_socket("hikyaku alert", o->config, &sock);
	if (ex != EX_OK)
		return ex;
	req = json_pack("{s:s}", "channel", channel);
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (body == NULL)
		hk_panic("json_dumps failed");
	cli_http_resp_init(&r);
	if (cli_http_request(sock, "POST", "/api/v1/alerts/test", body, CLI_ALERT_TIMEOUT_MS, &r,
	    &err) == -1)
		ex = cli_alert_socket_error(sock, &err);
	else
		ex = cli_alert_outcome(o, channel, &r);
	cli_http_resp_fini(&r);
	free(body);
	free(sock);
	return ex;
}

int
cli_alert(const struct cli_opts *o, int argc, char **argv)
{
	struct cli_opts opts = *o;
	const char *args[2];
	int i, n = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			opts.json = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(cli_alert_usage, stdout);
			return EX_OK;
		} else if (argv[i][0] == '-' || n == 2) {
			fprintf(stderr, "hikyaku alert: unexpected %s\n%s", argv[i], cli_alert_usage);
			return EX_USAGE;
		} else {
			args[n++] = argv[i];
		}
	}
	if (n != 2 || strcmp(args[0], "test") != 0) {
		fputs(cli_alert_usage, stderr);
		return EX_USAGE;
	}
	return cli_alert_test(&opts, args[1]);
}
