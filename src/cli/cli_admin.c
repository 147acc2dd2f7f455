/*
 * cli_admin.c - the commands that talk to the running daemon over its control socket: status,
 * log, show, resend, queue, flush, hold, release, delete (DESIGN.md 14, docs/cli.md).
 *
 * Each loads the configuration only to find api.control_socket (files only the daemon reads are
 * not checked), sends HTTP/1.1 requests with cli_http, and prints either the server's JSON
 * (--json) or aligned tables with local times. Exit codes: sysexits.h, mapped from the HTTP
 * status or the socket error (69: daemon not running, 77: no permission on the socket).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "cli_fmt.h"
#include "cli_http.h"
#include "../conf/conf.h"
#include "../util/buf.h"
#include "../util/clock.h"
#include "../util/num.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define CLI_TIMEOUT_MS 60000
#define CLI_PAGE_MAX 500
#define CLI_CELL_MAX 60
#define CLI_POLL_MS 500

struct cli_ctx {
	const struct cli_opts *o;
	const char *cmd;
	char *socket;
};

/* ---- plumbing ---- */


/* An exit code and a message for a socket-level failure. */
static int
cli_socket_error(const struct cli_ctx *x, const struct hk_err *err)
{
	switch (err->sys_errno) {
	case ENOENT:
	case ECONNREFUSED:
	case ENOTDIR:
		fprintf(stderr, "hikyaku is not running (no control socket at %s): start it with "
		    "`systemctl start hikyaku` or `hikyaku serve`\n", x->socket);
		return EX_UNAVAILABLE;
	case EACCES:
	case EPERM:
		fprintf(stderr, "hikyaku %s: permission denied on the control socket %s: run as root "
		    "or as a member of group hikyaku\n", x->cmd, x->socket);
		return EX_NOPERM;
	default:
		fprintf(stderr, "hikyaku %s: %s\n", x->cmd, err->text);
		return err->code == HK_E_DATA ? EX_PROTOCOL : EX_TEMPFAIL;
	}
}

/* The exit code for an HTTP error status; prints the server's message. */
static int
cli_http_error(const struct cli_ctx *x, const struct cli_http_resp *r, const char *what)
{
	json_t *j = json_loadb(r->body.ptr ? r->body.ptr : "", r->body.len, 0, NULL);
	const char *code = NULL, *msg = NULL;
	int ex;

	if (j != NULL) {
		json_t *e = json_object_get(j, "error");

		code = json_string_value(json_object_get(e, "code"));
		msg = json_string_value(json_object_get(e, "message"));
	}
	fprintf(stderr, "hikyaku %s: %s%s%s (HTTP %d)\n", x->cmd, what ? what : "",
	    what ? ": " : "", msg ? msg : "request failed", r->status);
	if (r->status == 401 || r->status == 403)
		ex = EX_NOPERM;
	else if (r->status == 409 && code != NULL && strcmp(code, "busy") == 0)
		ex = EX_TEMPFAIL;
	else if (r->status == 429 || r->status >= 500)
		ex = EX_TEMPFAIL;
	else if (r->status == 404 && code != NULL && strcmp(code, "not_found") == 0 && msg &&
	    strcmp(msg, "no such endpoint") == 0)
		ex = EX_UNAVAILABLE; /* a daemon without this endpoint (older version) */
	else
		ex = EX_DATAERR;
	json_decref(j);
	return ex;
}

/*
 * One request. On 2xx: EX_OK, *out the parsed JSON (NULL when out is NULL) and *raw the body
 * when raw is given. Otherwise the exit code, the reason printed.
 */
static int
cli_call(const struct cli_ctx *x, const char *method, const char *target, const char *body,
    const char *what, json_t **out, struct buf *raw)
{
	struct cli_http_resp r;
	struct hk_err err = { 0 };
	json_error_t je;
	int ex = EX_OK;

	if (out)
		*out = NULL;
	cli_http_resp_init(&r);
	if (cli_http_request(x->socket, method, target, body, CLI_TIMEOUT_MS, &r, &err) == -1) {
		ex = cli_socket_error(x, &err);
		goto out;
	}
	if (r.status < 200 || r.status > 299) {
		ex = cli_http_error(x, &r, what);
		goto out;
	}
	if (out != NULL) {
		*out = json_loadb(r.body.ptr ? r.body.ptr : "{}", r.body.len ? r.body.len : 2, 0,
		    &je);
		if (*out == NULL) {
			fprintf(stderr, "hikyaku %s: the daemon's reply is not JSON: %s\n", x->cmd,
			    je.text);
			ex = EX_PROTOCOL;
			goto out;
		}
	}
	if (raw != NULL)
		buf_move(raw, &r.body);
out:
	cli_http_resp_fini(&r);
	return ex;
}

static void
cli_print_raw(const struct buf *b)
{
	fwrite(b->ptr ? b->ptr : "", 1, b->len, stdout);
	if (b->len == 0 || b->ptr[b->len - 1] != '\n')
		putchar('\n');
}

static void
cli_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);

	if (s != NULL) {
		puts(s);
		free(s);
	}
}

static void
cli_print_table(struct cli_table *t, size_t max)
{
	struct buf b = BUF_INIT;

	cli_table_print(t, max, &b);
	fwrite(b.ptr ? b.ptr : "", 1, b.len, stdout);
	buf_fini(&b);
}

static const char *
cli_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* A number field as text ("" when null). */
static const char *
cli_num(json_t *o, const char *key, char *out, size_t size)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v)) {
		snprintf(out, size, "-");
		return out;
	}
	snprintf(out, size, "%lld", (long long)json_integer_value(v));
	return out;
}

static const char *
cli_local(json_t *o, const char *key_ms, char out[CLI_TIME_LEN + 1])
{
	json_t *v = json_object_get(o, key_ms);

	cli_time_local(json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0, out);
	return out;
}

/* "421 4.3.2 text" from code, enhanced, text fields. */
static void
cli_reply_text(json_t *o, struct buf *out)
{
	json_t *code = json_object_get(o, "code");

	buf_reset(out);
	if (json_is_integer(code) && json_integer_value(code) != 0)
		buf_printf(out, "%lld ", (long long)json_integer_value(code));
	if (*cli_str(o, "enhanced"))
		buf_printf(out, "%s ", cli_str(o, "enhanced"));
	buf_append_str(out, cli_str(o, "text"));
	if (out->len == 0)
		buf_append_str(out, "-");
}

/* "a@x" or "a@x (+2)" for a message's recipients. */
static void
cli_rcpt_summary(json_t *msg, struct buf *out)
{
	json_t *rc = json_object_get(msg, "recipients");
	size_t n = json_array_size(rc);

	buf_reset(out);
	buf_append_str(out, n ? cli_str(json_array_get(rc, 0), "address") : "-");
	if (n > 1)
		buf_printf(out, " (+%zu)", n - 1);
}

static bool
cli_id_is_valid(const char *s)
{
	uint64_t v;

	return strlen(s) == 16 && num_parse_hex64(s, 16, &v) == 0;
}

static int
cli_usage(const struct cli_ctx *x, const char *usage, const char *bad, const char *why)
{
	if (bad != NULL)
		fprintf(stderr, "hikyaku %s: %s: %s\n", x->cmd, why, bad);
	fprintf(stderr, "usage: hikyaku %s\n", usage);
	return EX_USAGE;
}

/* Common start: parse options, load the socket path. EX_OK or the exit code. */
static int
cli_begin(struct cli_ctx *x, const struct cli_opts *o, const char *cmd, const char *usage,
    const struct cli_opt *opts, size_t n_opts, int argc, char **argv, const char **pos,
    size_t max_pos, size_t *n_pos)
{
	const char *bad, *why;
	char prog[64];

	memset(x, 0, sizeof(*x));
	x->o = o;
	x->cmd = cmd;
	if (cli_opts_parse(opts, n_opts, argc, argv, pos, max_pos, n_pos, &bad, &why) == -1)
		return cli_usage(x, usage, bad, why);
	snprintf(prog, sizeof(prog), "hikyaku %s", cmd);
	return cli_conf_socket(prog, o->config, &x->socket);
}

/* ---- filters shared by log and resend ---- */

struct cli_filter {
	const char *status, *from, *to, *since, *until, *upstream, *search, *limit, *json;
};

#define CLI_FILTER_OPTS(f) \
	{ .name = "--status", .takes_value = true, .value = &(f).status }, \
	{ .name = "--from", .takes_value = true, .value = &(f).from }, \
	{ .name = "--to", .takes_value = true, .value = &(f).to }, \
	{ .name = "--since", .takes_value = true, .value = &(f).since }, \
	{ .name = "--until", .takes_value = true, .value = &(f).until }, \
	{ .name = "--upstream", .takes_value = true, .value = &(f).upstream }, \
	{ .name = "--search", .takes_value = true, .value = &(f).search }, \
	{ .name = "--json", .value = &(f).json }

static const char *const cli_statuses[] = {
	"queued", "deferred", "held", "sent", "bounced", "expired", "suppressed", "deleted",
};

/*
 * Check the filter and call add(key, value) for each one set, times as RFC 3339 UTC. EX_OK or
 * EX_USAGE (message printed).
 */
static int
cli_filter_each(const struct cli_ctx *x, const struct cli_filter *f,
    void (*add)(void *arg, const char *key, const char *value), void *arg)
{
	const struct {
		const char *key, *value;
	} plain[] = {
		{ "status", f->status }, { "from", f->from }, { "to", f->to },
		{ "upstream", f->upstream }, { "q", f->search },
	};
	const char *times[2][2] = { { "since", f->since }, { "until", f->until } };
	uint64_t now = clock_now_ms(), ms;
	char t[CLI_TIME_LEN + 1];
	size_t i;
	bool ok = f->status == NULL;

	for (i = 0; !ok && i < HK_ARRAY_LEN(cli_statuses); i++)
		ok = strcmp(f->status, cli_statuses[i]) == 0;
	if (!ok) {
		fprintf(stderr, "hikyaku %s: unknown status %s (one of queued, deferred, held, sent, "
		    "bounced, expired, suppressed, deleted)\n", x->cmd, f->status);
		return EX_USAGE;
	}
	for (i = 0; i < HK_ARRAY_LEN(plain); i++) {
		if (plain[i].value != NULL)
			add(arg, plain[i].key, plain[i].value);
	}
	for (i = 0; i < 2; i++) {
		if (times[i][1] == NULL)
			continue;
		if (cli_time_parse(times[i][1], now, &ms) == -1) {
			fprintf(stderr, "hikyaku %s: bad time for --%s: %s (RFC 3339, YYYY-MM-DD, or "
			    "a duration ago such as 2h or 3d)\n", x->cmd, times[i][0], times[i][1]);
			return EX_USAGE;
		}
		cli_time_rfc3339(ms, t);
		add(arg, times[i][0], t);
	}
	return EX_OK;
}

static void
cli_filter_query_cb(void *arg, const char *key, const char *value)
{
	cli_query_add(arg, key, value);
}

static void
cli_filter_json_cb(void *arg, const char *key, const char *value)
{
	json_object_set_new(arg, key, json_string(value));
}

/* ---- status ---- */

int
cli_status(const struct cli_opts *o, int argc, char **argv)
{
	static const char usage[] = "status [--json]";
	const char *json_flag = NULL, *pos[1];
	const struct cli_opt opts[] = { { .name = "--json", .value = &json_flag } };
	struct cli_ctx x;
	json_t *q = NULL, *u = NULL, *ups, *cnt, *sch, *v;
	char t[CLI_TIME_LEN + 1], a[32], b[32];
	struct cli_table tab;
	size_t n_pos, i;
	int ex;

	ex = cli_begin(&x, o, "status", usage, opts, HK_ARRAY_LEN(opts), argc, argv, pos, 0,
	    &n_pos);
	if (ex != EX_OK)
		goto out;
	ex = cli_call(&x, "GET", "/api/v1/queue?limit=0", NULL, "queue", &q, NULL);
	if (ex == EX_OK)
		ex = cli_call(&x, "GET", "/api/v1/upstreams", NULL, "upstreams", &u, NULL);
	if (ex != EX_OK)
		goto out;
	ups = json_object_get(u, "upstreams");
	if (o->json || json_flag) {
		json_t *all = json_pack("{s:s,s:O,s:O}", "daemon", "running", "queue", q,
		    "upstreams", ups ? ups : json_null());

		cli_print_json(all);
		json_decref(all);
		goto out;
	}
	cnt = json_object_get(q, "counts");
	sch = json_object_get(q, "scheduler");
	printf("hikyaku is running (control socket %s)\n", x.socket);
	printf("queue: %s queued, %s deferred, %s held\n", cli_num(cnt, "queued", a, sizeof(a)),
	    cli_num(cnt, "deferred", b, sizeof(b)), cli_num(cnt, "held", t, sizeof(t)));
	printf("scheduler: %s waiting for a retry, %s being delivered",
	    cli_num(sch, "waiting", a, sizeof(a)), cli_num(sch, "delivering", b, sizeof(b)));
	v = json_object_get(sch, "next_attempt_ms");
	if (json_is_integer(v))
		printf(", next attempt %s", cli_local(sch, "next_attempt_ms", t));
	printf("\n\n");
	cli_table_init(&tab, 7);
	{
		const char *h[] = { "UPSTREAM", "HEALTH", "BREAKER", "SENT/HOUR", "SENT/DAY",
			"CONNECTIONS", "LAST ERROR" };

		cli_table_add(&tab, h);
	}
	for (i = 0; i < json_array_size(ups); i++) {
		json_t *e = json_array_get(ups, i), *le = json_object_get(e, "last_error");
		char sh[48], sd[48], cn[48], x1[24], x2[24];
		struct buf err = BUF_INIT;
		const char *row[7];

		snprintf(sh, sizeof(sh), "%s/%s", cli_num(e, "sent_hour", x1, sizeof(x1)),
		    json_is_integer(json_object_get(e, "per_hour")) ?
		    cli_num(e, "per_hour", x2, sizeof(x2)) : "-");
		snprintf(sd, sizeof(sd), "%s/%s", cli_num(e, "sent_day", x1, sizeof(x1)),
		    json_is_integer(json_object_get(e, "per_day")) ?
		    cli_num(e, "per_day", x2, sizeof(x2)) : "-");
		snprintf(cn, sizeof(cn), "%s/%s", cli_num(e, "connections_in_use", x1, sizeof(x1)),
		    json_is_integer(json_object_get(e, "connections")) ?
		    cli_num(e, "connections", x2, sizeof(x2)) : "-");
		if (json_is_object(le))
			buf_printf(&err, "%s (%s)", cli_str(le, "text"),
			    cli_local(le, "time_ms", t));
		row[0] = cli_str(e, "name");
		row[1] = cli_str(e, "health");
		row[2] = cli_str(e, "breaker");
		row[3] = sh;
		row[4] = sd;
		row[5] = cn;
		row[6] = err.len ? err.ptr : "-";
		cli_table_add(&tab, row);
		buf_fini(&err);
	}
	cli_print_table(&tab, 0);
	cli_table_fini(&tab);
out:
	json_decref(q);
	json_decref(u);
	free(x.socket);
	return ex;
}

/* ---- log ---- */

static void
cli_messages_table(json_t *msgs, struct cli_table *tab)
{
	const char *h[] = { "ID", "RECEIVED", "STATUS", "FROM", "TO", "SUBJECT" };
	struct buf to = BUF_INIT;
	char t[CLI_TIME_LEN + 1];
	size_t i;

	cli_table_add(tab, h);
	for (i = 0; i < json_array_size(msgs); i++) {
		json_t *m = json_array_get(msgs, i);
		const char *row[6];

		cli_rcpt_summary(m, &to);
		row[0] = cli_str(m, "id");
		row[1] = cli_local(m, "received_ms", t);
		row[2] = cli_str(m, "status");
		row[3] = *cli_str(m, "from") ? cli_str(m, "from") : "<>";
		row[4] = to.ptr;
		row[5] = cli_str(m, "subject");
		cli_table_add(tab, row);
	}
	buf_fini(&to);
}

int
cli_log(const struct cli_opts *o, int argc, char **argv)
{
	static const char usage[] = "log [--status S] [--from A] [--to A] [--since T] [--until T] "
	    "[--upstream U] [--search TEXT] [--limit N] [--json]";
	struct cli_filter f = { 0 };
	const struct cli_opt opts[] = {
		CLI_FILTER_OPTS(f),
		{ .name = "--limit", .takes_value = true, .value = &f.limit },
	};
	struct buf q = BUF_INIT, target = BUF_INIT;
	json_t *all = json_array(), *page = NULL;
	const char *pos[1], *cursor = NULL;
	uint64_t limit = 50;
	size_t n_pos;
	struct cli_ctx x;
	int ex;

	ex = cli_begin(&x, o, "log", usage, opts, HK_ARRAY_LEN(opts), argc, argv, pos, 0, &n_pos);
	if (ex != EX_OK)
		goto out;
	if (f.limit && (num_parse_u64z(f.limit, 1000000, &limit) == -1 || limit == 0)) {
		ex = cli_usage(&x, usage, f.limit, "--limit is a number from 1 to 1000000");
		goto out;
	}
	ex = cli_filter_each(&x, &f, cli_filter_query_cb, &q);
	if (ex != EX_OK)
		goto out;
	/* Pages of at most 500 until limit messages or the last page. */
	while (json_array_size(all) < limit) {
		size_t want = limit - json_array_size(all);
		char n[24];
		json_t *msgs, *next;

		buf_reset(&target);
		buf_append_str(&target, "/api/v1/messages");
		buf_append(&target, q.ptr ? q.ptr : "", q.len);
		snprintf(n, sizeof(n), "%zu", want > CLI_PAGE_MAX ? (size_t)CLI_PAGE_MAX : want);
		buf_putc(&target, q.len == 0 ? '?' : '&');
		buf_printf(&target, "limit=%s", n);
		if (cursor != NULL)
			cli_query_add(&target, "cursor", cursor);
		json_decref(page);
		ex = cli_call(&x, "GET", target.ptr, NULL, "search", &page, NULL);
		if (ex != EX_OK)
			goto out;
		msgs = json_object_get(page, "messages");
		json_array_extend(all, msgs);
		next = json_object_get(page, "next_cursor");
		if (!json_is_string(next) || json_array_size(msgs) == 0)
			break;
		cursor = json_string_value(next);
	}
	if (o->json || f.json) {
		json_t *r = json_pack("{s:O}", "messages", all);

		cli_print_json(r);
		json_decref(r);
	} else {
		struct cli_table tab;

		cli_table_init(&tab, 6);
		cli_messages_table(all, &tab);
		cli_print_table(&tab, CLI_CELL_MAX);
		cli_table_fini(&tab);
		if (json_array_size(all) == 0)
			fprintf(stderr, "no message matches\n");
	}
out:
	json_decref(page);
	json_decref(all);
	buf_fini(&q);
	buf_fini(&target);
	free(x.socket);
	return ex;
}

/* ---- show ---- */

/*
 * Print the attempts table with "why:" and "fix:" lines under each failed attempt that the
 * explainer explains (the API's "explanation"). A table row is one line: control bytes are
 * shown as '?', so line i + 1 is attempt i.
 */
static void
cli_show_attempts(const struct cli_table *tab, json_t *arr)
{
	struct buf b = BUF_INIT;
	const char *p, *end;
	size_t line = 0;

	cli_table_print(tab, 0, &b);
	for (p = b.ptr; p != NULL && p < b.ptr + b.len; p = end + 1, line++) {
		json_t *a, *x;

		end = memchr(p, '\n', (size_t)(b.ptr + b.len - p));
		if (end == NULL)
			end = b.ptr + b.len;
		fwrite(p, 1, (size_t)(end - p), stdout);
		putchar('\n');
		a = line > 0 ? json_array_get(arr, line - 1) : NULL;
		x = json_object_get(a, "explanation");
		if (x == NULL || strcmp(cli_str(a, "result"), "sent") == 0)
			continue;
		printf("    why: %s\n", cli_str(x, "cause"));
		printf("    fix: %s\n", cli_str(x, "fix"));
	}
	buf_fini(&b);
}

static void
cli_show_human(json_t *m)
{
	char t[CLI_TIME_LEN + 1], n[32];
	struct cli_table tab;
	struct buf reply = BUF_INIT;
	json_t *arr;
	size_t i;

	printf("id:        %s\n", cli_str(m, "id"));
	printf("received:  %s\n", cli_local(m, "received_ms", t));
	printf("status:    %s\n", cli_str(m, "status"));
	printf("from:      %s\n", *cli_str(m, "from") ? cli_str(m, "from") : "<>");
	printf("subject:   %s\n", cli_str(m, "subject"));
	printf("size:      %s bytes\n", cli_num(m, "size", n, sizeof(n)));
	printf("source:    %s", cli_str(m, "source"));
	if (*cli_str(m, "client"))
		printf(" client=%s", cli_str(m, "client"));
	if (*cli_str(m, "helo"))
		printf(" helo=%s", cli_str(m, "helo"));
	if (*cli_str(m, "auth_user"))
		printf(" user=%s", cli_str(m, "auth_user"));
	if (*cli_str(m, "listener"))
		printf(" listener=%s", cli_str(m, "listener"));
	printf("\n");
	if (*cli_str(m, "envid"))
		printf("envid:     %s\n", cli_str(m, "envid"));
	if (*cli_str(m, "resent_from"))
		printf("resent of: %s\n", cli_str(m, "resent_from"));

	printf("\nrecipients:\n");
	cli_table_init(&tab, 5);
	{
		const char *h[] = { "RECIPIENT", "STATUS", "ATTEMPTS", "UPSTREAM", "LAST REPLY" };

		cli_table_add(&tab, h);
	}
	arr = json_object_get(m, "recipients");
	for (i = 0; i < json_array_size(arr); i++) {
		json_t *r = json_array_get(arr, i);
		const char *row[5];

		cli_reply_text(r, &reply);
		row[0] = cli_str(r, "address");
		row[1] = cli_str(r, "status");
		row[2] = cli_num(r, "attempts", n, sizeof(n));
		row[3] = *cli_str(r, "upstream") ? cli_str(r, "upstream") : "-";
		row[4] = reply.ptr;
		cli_table_add(&tab, row);
	}
	cli_print_table(&tab, 0);
	cli_table_fini(&tab);

	arr = json_object_get(m, "attempts");
	printf("\nattempts:\n");
	if (json_array_size(arr) == 0)
		printf("  (none)\n");
	else {
		cli_table_init(&tab, 6);
		{
			const char *h[] = { "TIME", "RECIPIENT", "UPSTREAM", "HOST", "RESULT",
				"REPLY" };

			cli_table_add(&tab, h);
		}
		for (i = 0; i < json_array_size(arr); i++) {
			json_t *a = json_array_get(arr, i);
			const char *row[6];

			cli_reply_text(a, &reply);
			row[0] = cli_local(a, "time_ms", t);
			row[1] = *cli_str(a, "rcpt") ? cli_str(a, "rcpt") : "(all)";
			row[2] = cli_str(a, "upstream");
			row[3] = *cli_str(a, "remote_host") ? cli_str(a, "remote_host") :
			    cli_str(a, "remote_addr");
			row[4] = cli_str(a, "result");
			row[5] = reply.ptr;
			cli_table_add(&tab, row);
		}
		cli_show_attempts(&tab, arr);
		cli_table_fini(&tab);
	}

	arr = json_object_get(m, "events");
	printf("\nevents:\n");
	cli_table_init(&tab, 4);
	{
		const char *h[] = { "TIME", "EVENT", "RECIPIENT", "DETAIL" };

		cli_table_add(&tab, h);
	}
	for (i = 0; i < json_array_size(arr); i++) {
		json_t *e = json_array_get(arr, i);
		const char *row[4];

		if (strcmp(cli_str(e, "type"), "attempt") == 0)
			continue;
		row[0] = cli_local(e, "time_ms", t);
		row[1] = cli_str(e, "type");
		row[2] = *cli_str(e, "rcpt") ? cli_str(e, "rcpt") : "-";
		row[3] = *cli_str(e, "text") ? cli_str(e, "text") : "-";
		cli_table_add(&tab, row);
	}
	cli_print_table(&tab, 0);
	cli_table_fini(&tab);
	buf_fini(&reply);
}

int
cli_show(const struct cli_opts *o, int argc, char **argv)
{
	static const char usage[] = "show ID [--json]";
	const char *json_flag = NULL, *pos[1];
	const struct cli_opt opts[] = { { .name = "--json", .value = &json_flag } };
	struct buf target = BUF_INIT, raw = BUF_INIT;
	struct cli_ctx x;
	json_t *m = NULL;
	size_t n_pos;
	int ex;

	ex = cli_begin(&x, o, "show", usage, opts, HK_ARRAY_LEN(opts), argc, argv, pos, 1,
	    &n_pos);
	if (ex != EX_OK)
		goto out;
	if (n_pos != 1) {
		ex = cli_usage(&x, usage, NULL, NULL);
		goto out;
	}
	if (!cli_id_is_valid(pos[0])) {
		fprintf(stderr, "hikyaku show: %s is not a message id (16 hex digits)\n", pos[0]);
		ex = EX_DATAERR;
		goto out;
	}
	buf_printf(&target, "/api/v1/messages/%s", pos[0]);
	ex = cli_call(&x, "GET", target.ptr, NULL, pos[0], &m, &raw);
	if (ex != EX_OK)
		goto out;
	if (o->json || json_flag)
		cli_print_raw(&raw);
	else
		cli_show_human(m);
out:
	json_decref(m);
	buf_fini(&target);
	buf_fini(&raw);
	free(x.socket);
	return ex;
}

/* ---- resend ---- */

/* "[=====>     ]  40/100" on stderr, redrawn in place. */
static void
cli_progress(uint64_t done, uint64_t total)
{
	char bar[41];
	size_t i, fill = total ? (size_t)(done * 40 / total) : 0;

	if (fill > 40)
		fill = 40;
	for (i = 0; i < 40; i++)
		bar[i] = i < fill ? '=' : ' ';
	bar[40] = '\0';
	fprintf(stderr, "\r[%s] %llu/%llu", bar, (unsigned long long)done,
	    (unsigned long long)total);
	fflush(stderr);
}

/* Follow a background resend job until it is done (a bar on a terminal). */
static int
cli_resend_follow(const struct cli_ctx *x, const char *job, uint64_t total)
{
	struct buf target = BUF_INIT;
	bool tty = isatty(STDERR_FILENO);
	int ex = EX_OK;

	buf_printf(&target, "/api/v1/resend/%s", job);
	for (;;) {
		json_t *j = NULL, *d;
		uint64_t done, failed;
		const char *state;
		struct timespec ts = { CLI_POLL_MS / 1000, (CLI_POLL_MS % 1000) * 1000000L };

		ex = cli_call(x, "GET", target.ptr, NULL, "resend job", &j, NULL);
		if (ex != EX_OK)
			break;
		d = json_object_get(j, "done");
		done = json_is_integer(d) ? (uint64_t)json_integer_value(d) : 0;
		d = json_object_get(j, "failed");
		failed = json_is_integer(d) ? (uint64_t)json_integer_value(d) : 0;
		if (json_is_integer(json_object_get(j, "count")))
			total = (uint64_t)json_integer_value(json_object_get(j, "count"));
		state = cli_str(j, "state");
		if (tty)
			cli_progress(done + failed, total);
		if (strcmp(state, "running") != 0) {
			if (tty)
				fputc('\n', stderr);
			printf("resent %llu of %llu messages", (unsigned long long)done,
			    (unsigned long long)total);
			if (failed)
				printf(" (%llu failed: no kept body, or no longer in the log)",
				    (unsigned long long)failed);
			putchar('\n');
			if (failed)
				ex = EX_DATAERR;
			json_decref(j);
			break;
		}
		json_decref(j);
		nanosleep(&ts, NULL);
	}
	buf_fini(&target);
	return ex;
}

int
cli_resend(const struct cli_opts *o, int argc, char **argv)
{
	static const char usage[] = "resend ID... | resend [--status S] [--from A] [--to A] "
	    "[--since T] [--until T] [--upstream U] [--search TEXT] [--json]";
	struct cli_filter f = { 0 };
	const struct cli_opt opts[] = { CLI_FILTER_OPTS(f) };
	const char **pos = xcalloc((size_t)argc + 1, sizeof(*pos));
	struct buf target = BUF_INIT, raw = BUF_INIT;
	json_t *filter = NULL, *j = NULL;
	bool json_out;
	size_t n_pos, i;
	struct cli_ctx x;
	int ex;

	ex = cli_begin(&x, o, "resend", usage, opts, HK_ARRAY_LEN(opts), argc, argv, pos,
	    (size_t)argc, &n_pos);
	if (ex != EX_OK)
		goto out;
	json_out = o->json || f.json;
	filter = json_object();
	ex = cli_filter_each(&x, &f, cli_filter_json_cb, filter);
	if (ex != EX_OK)
		goto out;
	if ((n_pos == 0) == (json_object_size(filter) == 0)) {
		fprintf(stderr, "hikyaku resend: give message IDs or at least one filter (not "
		    "both)\n");
		ex = cli_usage(&x, usage, NULL, NULL);
		goto out;
	}
	for (i = 0; i < n_pos; i++) {
		if (!cli_id_is_valid(pos[i])) {
			fprintf(stderr, "hikyaku resend: %s is not a message id (16 hex digits)\n",
			    pos[i]);
			ex = EX_DATAERR;
			goto out;
		}
	}
	for (i = 0; i < n_pos; i++) {
		int e;

		buf_reset(&target);
		buf_printf(&target, "/api/v1/messages/%s/resend", pos[i]);
		json_decref(j);
		buf_reset(&raw);
		e = cli_call(&x, "POST", target.ptr, NULL, pos[i], &j, &raw);
		if (e != EX_OK) {
			ex = e; /* go on with the others; the last failure decides */
			continue;
		}
		if (json_out)
			cli_print_raw(&raw);
		else
			printf("%s resent as %s\n", pos[i], cli_str(j, "id"));
	}
	if (n_pos > 0)
		goto out;
	{
		json_t *req = json_pack("{s:O}", "filter", filter);
		char *body = json_dumps(req, JSON_COMPACT);
		json_t *job, *count;

		json_decref(req);
		ex = cli_call(&x, "POST", "/api/v1/resend", body, "resend", &j, &raw);
		free(body);
		if (ex != EX_OK)
			goto out;
		if (json_out) {
			cli_print_raw(&raw);
			goto out;
		}
		count = json_object_get(j, "count");
		job = json_object_get(j, "job");
		if (json_is_string(job)) {
			ex = cli_resend_follow(&x, json_string_value(job), json_is_integer(count) ?
			    (uint64_t)json_integer_value(count) : 0);
		} else {
			printf("resending %lld messages in the background\n",
			    json_is_integer(count) ? (long long)json_integer_value(count) : 0LL);
		}
	}
out:
	json_decref(filter);
	json_decref(j);
	buf_fini(&target);
	buf_fini(&raw);
	free(pos);
	free(x.socket);
	return ex;
}

/* ---- queue ---- */

int
cli_queue(const struct cli_opts *o, int argc, char **argv)
{
	static const char usage[] = "queue [--limit N] [--json]";
	const char *json_flag = NULL, *limit = NULL, *pos[1];
	const struct cli_opt opts[] = {
		{ .name = "--json", .value = &json_flag },
		{ .name = "--limit", .takes_value = true, .value = &limit },
	};
	struct buf target = BUF_INIT, raw = BUF_INIT, to = BUF_INIT, reply = BUF_INIT;
	char a[24], b[24], c[24], t[CLI_TIME_LEN + 1];
	struct cli_table tab;
	struct cli_ctx x;
	json_t *q = NULL, *cnt, *msgs;
	uint64_t lim = 500;
	size_t n_pos, i;
	int ex;

	ex = cli_begin(&x, o, "queue", usage, opts, HK_ARRAY_LEN(opts), argc, argv, pos, 0,
	    &n_pos);
	if (ex != EX_OK)
		goto out;
	if (limit && num_parse_u64z(limit, CLI_PAGE_MAX, &lim) == -1) {
		ex = cli_usage(&x, usage, limit, "--limit is a number from 0 to 500");
		goto out;
	}
	buf_printf(&target, "/api/v1/queue?limit=%llu", (unsigned long long)lim);
	ex = cli_call(&x, "GET", target.ptr, NULL, "queue", &q, &raw);
	if (ex != EX_OK)
		goto out;
	if (o->json || json_flag) {
		cli_print_raw(&raw);
		goto out;
	}
	cnt = json_object_get(q, "counts");
	printf("%s queued, %s deferred, %s held\n", cli_num(cnt, "queued", a, sizeof(a)),
	    cli_num(cnt, "deferred", b, sizeof(b)), cli_num(cnt, "held", c, sizeof(c)));
	msgs = json_object_get(q, "messages");
	if (json_array_size(msgs) == 0)
		goto out;
	putchar('\n');
	cli_table_init(&tab, 7);
	{
		const char *h[] = { "ID", "RECEIVED", "STATUS", "FROM", "TO", "ATTEMPTS",
			"LAST REPLY" };

		cli_table_add(&tab, h);
	}
	for (i = 0; i < json_array_size(msgs); i++) {
		json_t *m = json_array_get(msgs, i), *r0;
		const char *row[7];
		long long att = 0;
		size_t k;

		cli_rcpt_summary(m, &to);
		for (k = 0; k < json_array_size(json_object_get(m, "recipients")); k++) {
			json_t *r = json_array_get(json_object_get(m, "recipients"), k);

			if (json_integer_value(json_object_get(r, "attempts")) > att)
				att = json_integer_value(json_object_get(r, "attempts"));
		}
		r0 = json_array_get(json_object_get(m, "recipients"), 0);
		cli_reply_text(r0 ? r0 : m, &reply);
		snprintf(a, sizeof(a), "%lld", att);
		row[0] = cli_str(m, "id");
		row[1] = cli_local(m, "received_ms", t);
		row[2] = cli_str(m, "status");
		row[3] = *cli_str(m, "from") ? cli_str(m, "from") : "<>";
		row[4] = to.ptr;
		row[5] = a;
		row[6] = reply.ptr;
		cli_table_add(&tab, row);
	}
	cli_print_table(&tab, CLI_CELL_MAX);
	cli_table_fini(&tab);
out:
	json_decref(q);
	buf_fini(&target);
	buf_fini(&raw);
	buf_fini(&to);
	buf_fini(&reply);
	free(x.socket);
	return ex;
}

/* ---- flush, hold, release, delete ---- */

struct cli_qcmd {
	const char *name, *method, *action, *done;
	bool id_optional;
};

static const struct cli_qcmd cli_qcmds[] = {
	{ .name = "flush", .method = "POST", .action = "flush", .done = "due now",
	  .id_optional = true },
	{ .name = "hold", .method = "POST", .action = "hold", .done = "held" },
	{ .name = "release", .method = "POST", .action = "release", .done = "released" },
	{ .name = "delete", .method = "DELETE", .action = NULL, .done = "deleted" },
};

static int
cli_qcmd_run(const struct cli_qcmd *qc, const struct cli_opts *o, int argc, char **argv)
{
	const char *json_flag = NULL, *pos[1];
	const struct cli_opt opts[] = { { .name = "--json", .value = &json_flag } };
	struct buf target = BUF_INIT, raw = BUF_INIT, usage = BUF_INIT;
	struct cli_ctx x;
	json_t *j = NULL;
	size_t n_pos;
	int ex;

	buf_printf(&usage, qc->id_optional ? "%s [ID] [--json]" : "%s ID [--json]", qc->name);
	ex = cli_begin(&x, o, qc->name, usage.ptr, opts, HK_ARRAY_LEN(opts), argc, argv, pos, 1,
	    &n_pos);
	if (ex != EX_OK)
		goto out;
	if (n_pos == 0 && !qc->id_optional) {
		ex = cli_usage(&x, usage.ptr, NULL, NULL);
		goto out;
	}
	if (n_pos == 1 && !cli_id_is_valid(pos[0])) {
		fprintf(stderr, "hikyaku %s: %s is not a message id (16 hex digits)\n", qc->name,
		    pos[0]);
		ex = EX_DATAERR;
		goto out;
	}
	if (n_pos == 0)
		buf_append_str(&target, "/api/v1/queue/flush");
	else if (qc->action)
		buf_printf(&target, "/api/v1/queue/%s/%s", pos[0], qc->action);
	else
		buf_printf(&target, "/api/v1/queue/%s", pos[0]);
	ex = cli_call(&x, qc->method, target.ptr, NULL, n_pos ? pos[0] : NULL, &j, &raw);
	if (ex != EX_OK)
		goto out;
	if (o->json || json_flag)
		cli_print_raw(&raw);
	else if (n_pos == 0)
		printf("%lld messages due now\n",
		    (long long)json_integer_value(json_object_get(j, "flushed")));
	else
		printf("%s %s\n", pos[0], qc->done);
out:
	json_decref(j);
	buf_fini(&target);
	buf_fini(&raw);
	buf_fini(&usage);
	free(x.socket);
	return ex;
}

int
cli_flush(const struct cli_opts *o, int argc, char **argv)
{
	return cli_qcmd_run(&cli_qcmds[0], o, argc, argv);
}

int
cli_hold(const struct cli_opts *o, int argc, char **argv)
{
	return cli_qcmd_run(&cli_qcmds[1], o, argc, argv);
}

int
cli_release(const struct cli_opts *o, int argc, char **argv)
{
	return cli_qcmd_run(&cli_qcmds[2], o, argc, argv);
}

int
cli_delete(const struct cli_opts *o, int argc, char **argv)
{
	return cli_qcmd_run(&cli_qcmds[3], o, argc, argv);
}
