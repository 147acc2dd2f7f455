/*
 * cli_test.c - `hikyaku test UPSTREAM [--to ADDR] [--from ADDR] [--timeout D] [--local]
 * [--json]`: the connection test of one upstream (docs/cli.md "hikyaku test"), and the daemon's
 * side of POST /api/v1/upstreams/{name}/test.
 *
 * With the daemon running, the command asks it over the control socket, so the test runs from
 * the process, user and configuration that deliver mail. Without it (no control socket, or
 * --local) the test runs here on its own event loop and resolver, from the configuration file,
 * so it works before the first start. Either way the report is the same JSON, printed as is
 * (--json) or as one line per step and the diagnosis.
 * Exit codes: 0 every step passed, 69 a step failed, 64 usage or a bad address, 67 unknown
 * upstream, 78 configuration, 77 no permission on the control socket, 75 other trouble.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "cli.h"
#include "cli_http.h"
#include "cli_test.h"
#include "../util/buf.h"
#include "../util/clock.h"
#include "../util/fsops.h"
#include "../util/id.h"
#include "../util/log.h"
#include "../util/num.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define CLI_TEST_PASSWORD_MAX 4096
#define CLI_TEST_COMMAND_MAX_MS 30000
#define CLI_TEST_HTTP_TIMEOUT_MS 300000

/* ---- the report as JSON ---- */

/* A JSON string from peer text, which may not be UTF-8 (jansson refuses that). */
static json_t *
cli_test_str(const char *s)
{
	json_t *j = json_string(s ? s : "");
	struct buf b = BUF_INIT;

	if (j != NULL)
		return j;
	for (; *s; s++)
		buf_putc(&b, (unsigned char)*s < 0x80 ? *s : '?');
	j = json_string(b.ptr ? b.ptr : "");
	buf_fini(&b);
	return j;
}

static json_t *
cli_test_step_json(const struct relay_probe_step *s)
{
	json_t *o = json_object();

	json_object_set_new(o, "step", json_string(relay_probe_step_name(s->kind)));
	json_object_set_new(o, "ok", json_boolean(s->ok));
	json_object_set_new(o, "duration_ms", json_integer((json_int_t)s->duration_ms));
	json_object_set_new(o, "detail", cli_test_str(s->detail));
	if (s->code) {
		json_t *r = json_object();
		char enh[32];

		json_object_set_new(r, "code", json_integer(s->code));
		if (s->enh_class) {
			snprintf(enh, sizeof(enh), "%d.%d.%d", s->enh_class, s->enh_subject,
			    s->enh_detail);
			json_object_set_new(r, "enhanced", json_string(enh));
		} else {
			json_object_set_new(r, "enhanced", json_null());
		}
		json_object_set_new(r, "text", cli_test_str(s->reply));
		json_object_set_new(o, "reply", r);
	} else {
		json_object_set_new(o, "reply", json_null());
	}
	return o;
}

static json_t *
cli_test_lines(const char *text)
{
	json_t *a = json_array();
	const char *p = text, *nl;

	while (p && *p) {
		nl = strchr(p, '\n');
		json_array_append_new(a, json_stringn_nocheck(p, nl ? (size_t)(nl - p) : strlen(p)));
		p = nl ? nl + 1 : NULL;
	}
	return a;
}

static json_t *
cli_test_opt(const char *s)
{
	return s && *s ? cli_test_str(s) : json_null();
}

json_t *
cli_test_report_json(const struct relay_probe_report *r)
{
	json_t *o = json_object(), *steps = json_array(), *ext;
	const struct relay_probe_cert *c = &r->cert;
	size_t i;

	json_object_set_new(o, "upstream", cli_test_str(r->upstream));
	json_object_set_new(o, "host", cli_test_str(r->host));
	json_object_set_new(o, "port", json_integer(r->port));
	json_object_set_new(o, "tls", json_string(relay_probe_tls_name(r->tls)));
	json_object_set_new(o, "verify", json_boolean(r->verify));
	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "ok", json_boolean(r->ok));
	json_object_set_new(o, "address", cli_test_opt(r->address));
	for (i = 0; i < r->n_steps; i++)
		json_array_append_new(steps, cli_test_step_json(&r->steps[i]));
	json_object_set_new(o, "steps", steps);
	/* Keywords are ASCII by RFC 5321; anything else is replaced, never dropped silently. */
	ext = cli_test_lines(r->extensions);
	for (i = 0; i < json_array_size(ext); i++)
		json_array_set_new(ext, i, cli_test_str(json_string_value(json_array_get(ext, i))));
	json_object_set_new(o, "extensions", ext);
	if (c->present || c->protocol[0]) {
		json_t *j = json_object();

		json_object_set_new(j, "subject", cli_test_str(c->subject));
		json_object_set_new(j, "issuer", cli_test_str(c->issuer));
		json_object_set_new(j, "not_after", cli_test_opt(c->not_after));
		json_object_set_new(j, "days_left", c->present ? json_integer(c->days_left) :
		    json_null());
		json_object_set_new(j, "host_match", json_boolean(c->host_match));
		json_object_set_new(j, "chain_ok", json_boolean(c->chain_ok));
		json_object_set_new(j, "verified", json_boolean(c->verified));
		json_object_set_new(j, "error", cli_test_opt(c->verify_error));
		json_object_set_new(j, "protocol", cli_test_opt(c->protocol));
		json_object_set_new(j, "cipher", cli_test_opt(c->cipher));
		json_object_set_new(o, "certificate", j);
	} else {
		json_object_set_new(o, "certificate", json_null());
	}
	if (r->username[0])
		json_object_set_new(o, "auth", json_pack("{s:o,s:o}", "mechanism",
		    cli_test_opt(r->auth_mechanism), "username", cli_test_str(r->username)));
	else
		json_object_set_new(o, "auth", json_null());
	json_object_set_new(o, "mail_from", cli_test_str(r->mail_from));
	json_object_set_new(o, "rcpt_to", cli_test_opt(r->rcpt_to));
	if (r->subject[0])
		json_object_set_new(o, "message", json_pack("{s:o,s:o}", "subject",
		    cli_test_str(r->subject), "message_id", cli_test_str(r->message_id)));
	else
		json_object_set_new(o, "message", json_null());
	if (r->failed) {
		const struct relay_probe_advice *a = &r->advice;

		json_object_set_new(o, "failed_step",
		    json_string(relay_probe_step_name(r->steps[r->failed_step].kind)));
		json_object_set_new(o, "diagnosis", json_pack("{s:s,s:o,s:s,s:o,s:o}",
		    "id", a->id ? a->id : "unknown", "explain_id", cli_test_opt(a->explain_id),
		    "culprit", a->culprit ? a->culprit : "unknown", "cause", cli_test_str(a->cause),
		    "fix", cli_test_str(a->fix)));
	} else {
		json_object_set_new(o, "failed_step", json_null());
		json_object_set_new(o, "diagnosis", json_null());
	}
	return o;
}

/* ---- shared preparation ---- */

static const struct conf_upstream *
cli_test_find(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n_upstreams; i++)
		if (strcmp(c->upstreams[i].name, name) == 0)
			return &c->upstreams[i];
	return NULL;
}

/* The password from password_file (one line); NULL with why when it cannot be read. */
static char *
cli_test_password(const char *path, char *why, size_t whylen)
{
	struct buf b = BUF_INIT;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1 || fsops_read_all(fd, &b, CLI_TEST_PASSWORD_MAX) == -1) {
		snprintf(why, whylen, "password_file %s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		if (b.ptr)
			OPENSSL_cleanse(b.ptr, b.len);
		buf_fini(&b);
		return NULL;
	}
	close(fd);
	while (b.len > 0 && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r'))
		b.len--;
	buf_putc(&b, '\0');
	return buf_steal(&b);
}

static void
cli_test_wipe(char *pw)
{
	if (pw) {
		OPENSSL_cleanse(pw, strlen(pw));
		free(pw);
	}
}

/* Fill pp for upstream u of c; *pw gets the password to wipe after relay_probe_start(). */
static void
cli_test_params(struct relay_probe_params *pp, const struct conf *c,
    const struct conf_upstream *u, uint64_t timeout_ms, char **pw, char *pwerr, size_t pwerrlen)
{
	memset(pp, 0, sizeof(*pp));
	*pw = NULL;
	pwerr[0] = '\0';
	if (u->username && u->password_file)
		*pw = cli_test_password(u->password_file, pwerr, pwerrlen);
	pp->up = u;
	pp->helo = c->hostname;
	pp->password = *pw;
	pp->password_error = pwerr[0] ? pwerr : NULL;
	pp->now_ms = clock_now_ms();
	if (timeout_ms) {
		pp->connect_timeout_ms = pp->command_timeout_ms = timeout_ms;
	} else {
		pp->connect_timeout_ms = c->delivery_connect_timeout_ms;
		pp->command_timeout_ms = c->delivery_command_timeout_ms;
		if (pp->command_timeout_ms == 0 || pp->command_timeout_ms > CLI_TEST_COMMAND_MAX_MS)
			pp->command_timeout_ms = CLI_TEST_COMMAND_MAX_MS;
	}
}

static char *
cli_test_dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);

	if (s == NULL)
		hk_panic("json_dumps failed");
	return s;
}

static void
cli_test_error_reply(api_test_done_fn done, void *ctx, int status, const char *code,
    const char *msg)
{
	json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
	char *s = cli_test_dump(j);

	json_decref(j);
	done(ctx, status, s);
	free(s);
}

/* ---- the daemon's side ---- */

struct cli_probe_run {
	struct cli_probes *ps;
	struct relay_probe *probe;
	api_test_done_fn done;
	void *ctx;
	struct cli_probe_run *prev, *next;
};

struct cli_probes {
	struct cli_probe_run *head;
};

struct cli_probes *
cli_probes_new(void)
{
	return xcalloc(1, sizeof(struct cli_probes));
}

static void
cli_probe_unlink(struct cli_probe_run *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		r->ps->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
}

static void
cli_probe_done_cb(void *arg, const struct relay_probe_report *rep)
{
	struct cli_probe_run *r = arg;
	json_t *j = cli_test_report_json(rep);
	char *s = cli_test_dump(j);

	json_decref(j);
	cli_probe_unlink(r);
	r->done(r->ctx, 200, s);
	free(s);
	free(r);
}

void
cli_probes_start(struct cli_probes *ps, struct event_base *base, struct dns *dns,
    const struct conf *c, uint64_t id, const char *name, const char *to, const char *from,
    uint64_t timeout_ms, api_test_done_fn done, void *ctx)
{
	const struct conf_upstream *u = cli_test_find(c, name);
	struct relay_probe_params pp;
	struct cli_probe_run *r;
	char pwerr[256], *pw;

	if (u == NULL) {
		cli_test_error_reply(done, ctx, 404, "unknown_upstream",
		    "no upstream by that name in the configuration");
		return;
	}
	if ((to && !relay_probe_addr_is_valid(to)) || (from && !relay_probe_addr_is_valid(from))) {
		cli_test_error_reply(done, ctx, 400, "bad_address",
		    "to and from must be plain addresses (local@domain, no spaces or <>)");
		return;
	}
	cli_test_params(&pp, c, u, timeout_ms, &pw, pwerr, sizeof(pwerr));
	pp.base = base;
	pp.dns = dns;
	pp.id = id;
	pp.rcpt_to = to;
	pp.mail_from = from;
	r = xcalloc(1, sizeof(*r));
	r->ps = ps;
	r->done = done;
	r->ctx = ctx;
	r->next = ps->head;
	if (r->next)
		r->next->prev = r;
	ps->head = r;
	r->probe = relay_probe_start(&pp, cli_probe_done_cb, r);
	cli_test_wipe(pw);
}

void
cli_probes_free(struct cli_probes *ps)
{
	struct cli_probe_run *r, *next;

	if (ps == NULL)
		return;
	for (r = ps->head; r != NULL; r = next) {
		next = r->next;
		relay_probe_cancel(r->probe);
		cli_test_error_reply(r->done, r->ctx, 503, "unavailable",
		    "the daemon is stopping; the test was cut short");
		free(r);
	}
	free(ps);
}

/* ---- printing ---- */

static const char *
cli_test_get(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void
cli_test_print(const json_t *j)
{
	const json_t *steps = json_object_get(j, "steps"), *s, *cert, *diag, *msg;
	size_t i;

	printf("Connection test of upstream \"%s\" (%s:%lld, tls: %s%s), test id %s\n",
	    cli_test_get(j, "upstream"), cli_test_get(j, "host"),
	    (long long)json_integer_value(json_object_get(j, "port")), cli_test_get(j, "tls"),
	    json_is_false(json_object_get(j, "verify")) ? ", verify: false" : "",
	    cli_test_get(j, "id"));
	json_array_foreach(steps, i, s) {
		const json_t *r = json_object_get(s, "reply");
		const char *step = cli_test_get(s, "step");

		printf("  %-6s  %-8s %6lld ms  %s", json_is_true(json_object_get(s, "ok")) ? "ok" :
		    "FAILED", step, (long long)json_integer_value(json_object_get(s, "duration_ms")),
		    cli_test_get(s, "detail"));
		if (json_is_object(r) && strcmp(step, "ehlo") != 0) {
			const char *t = cli_test_get(r, "text");
			const char *nl = strchr(t, '\n');

			printf("%s%lld %s%s%.*s%s", cli_test_get(s, "detail")[0] ? "; " : "",
			    (long long)json_integer_value(json_object_get(r, "code")),
			    cli_test_get(r, "enhanced"), cli_test_get(r, "enhanced")[0] ? " " : "",
			    nl ? (int)(nl - t) : (int)strlen(t), t, nl ? " ..." : "");
		}
		putchar('\n');
		if (strcmp(step, "ehlo") == 0 && json_array_size(json_object_get(j, "extensions"))) {
			const json_t *e;
			size_t k;

			printf("%28s", "extensions:");
			json_array_foreach(json_object_get(j, "extensions"), k, e)
				printf(" %s%s", json_string_value(e), k + 1 < json_array_size(
				    json_object_get(j, "extensions")) ? "," : "");
			putchar('\n');
		}
		cert = json_object_get(j, "certificate");
		if ((strcmp(step, "tls") == 0 || strcmp(step, "starttls") == 0) &&
		    json_is_object(cert) && cli_test_get(cert, "subject")[0]) {
			printf("%28s subject %s\n", "certificate:", cli_test_get(cert, "subject"));
			printf("%28s issuer %s\n", "", cli_test_get(cert, "issuer"));
			printf("%28s not after %s (%lld days left)\n", "",
			    cli_test_get(cert, "not_after"),
			    (long long)json_integer_value(json_object_get(cert, "days_left")));
			printf("%28s host name %s; %s%s%s\n", "",
			    json_is_true(json_object_get(cert, "host_match")) ? "matches" :
			    "does NOT match", json_is_true(json_object_get(cert, "verified")) ?
			    "verified" : "not verified: ", cli_test_get(cert, "error"),
			    json_is_true(json_object_get(cert, "verified")) ? "" :
			    (json_is_false(json_object_get(j, "verify")) ? " (verify: false)" : ""));
		}
	}
	msg = json_object_get(j, "message");
	diag = json_object_get(j, "diagnosis");
	if (json_is_true(json_object_get(j, "ok"))) {
		if (json_is_object(msg))
			printf("\nAll steps passed. Test message sent to %s: Subject \"%s\", "
			    "Message-ID %s\n", cli_test_get(j, "rcpt_to"), cli_test_get(msg, "subject"),
			    cli_test_get(msg, "message_id"));
		else
			printf("\nAll steps passed (no message sent; add --to ADDR to send one).\n");
		return;
	}
	printf("\nThe test failed at step \"%s\".\n", cli_test_get(j, "failed_step"));
	if (json_is_object(diag)) {
		printf("  Cause: %s\n", cli_test_get(diag, "cause"));
		if (cli_test_get(diag, "fix")[0])
			printf("  Fix:   %s\n", cli_test_get(diag, "fix"));
		printf("  (diagnosis %s%s%s)\n", cli_test_get(diag, "id"),
		    cli_test_get(diag, "explain_id")[0] ? ", explainer entry " : "",
		    cli_test_get(diag, "explain_id"));
	}
}

/* Print the report; the exit code it means. */
static int
cli_test_output(const struct cli_opts *o, json_t *j)
{
	if (o->json) {
		char *s = cli_test_dump(j);

		puts(s);
		free(s);
	} else {
		cli_test_print(j);
	}
	return json_is_true(json_object_get(j, "ok")) ? EX_OK : EX_UNAVAILABLE;
}

/* ---- the command ---- */

struct cli_test_args {
	const char *name, *to, *from;
	uint64_t timeout_ms;
	bool local;
};

static int
cli_test_usage(const char *why)
{
	if (why)
		fprintf(stderr, "hikyaku test: %s\n", why);
	fprintf(stderr, "usage: hikyaku test UPSTREAM [--to ADDR] [--from ADDR] [--timeout D] "
	    "[--local] [--json]\n");
	return EX_USAGE;
}

static int
cli_test_parse(int argc, char **argv, struct cli_test_args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = NULL, *eq;
		char key[16];

		if (strcmp(opt, "--local") == 0) {
			a->local = true;
			continue;
		}
		if (strncmp(opt, "--", 2) != 0) {
			if (a->name != NULL)
				return cli_test_usage("one upstream at a time");
			a->name = opt;
			continue;
		}
		eq = strchr(opt, '=');
		if (eq != NULL) {
			snprintf(key, sizeof(key), "%.*s", (int)(eq - opt), opt);
			val = eq + 1;
		} else {
			snprintf(key, sizeof(key), "%s", opt);
			if (i + 1 >= argc)
				return cli_test_usage("an option needs a value");
			val = argv[++i];
		}
		if (strcmp(key, "--to") == 0) {
			a->to = val;
		} else if (strcmp(key, "--from") == 0) {
			a->from = val;
		} else if (strcmp(key, "--timeout") == 0) {
			if (num_parse_duration_ms(val, &a->timeout_ms) == -1 || a->timeout_ms < 100 ||
			    a->timeout_ms > 120000)
				return cli_test_usage("--timeout takes a duration from 1s to 2m");
		} else {
			return cli_test_usage("unknown option");
		}
	}
	if (a->name == NULL)
		return cli_test_usage("which upstream?");
	if (a->to && !relay_probe_addr_is_valid(a->to))
		return cli_test_usage("--to needs a plain address (local@domain)");
	if (a->from && !relay_probe_addr_is_valid(a->from))
		return cli_test_usage("--from needs a plain address (local@domain)");
	return EX_OK;
}


struct cli_test_local {
	struct event_base *base;
	json_t *report;
};

static void
cli_test_local_cb(void *arg, const struct relay_probe_report *rep)
{
	struct cli_test_local *l = arg;

	l->report = cli_test_report_json(rep);
	/* The resolver's fd keeps the loop alive: end it here. */
	event_base_loopexit(l->base, NULL);
}

static int
cli_test_in_process(const struct cli_opts *o, const struct conf *c,
    const struct conf_upstream *u, const struct cli_test_args *a)
{
	struct relay_probe_params pp;
	struct cli_test_local l = { 0 };
	struct dns_params dp;
	struct hk_err err = { 0 };
	struct event_base *base;
	struct id_gen ids;
	struct dns *dns;
	char pwerr[256], *pw;
	int ex;

	signal(SIGPIPE, SIG_IGN);
	/* The report says it all; info lines would only repeat it on stderr. */
	if (log_get_level() < LOG_LEVEL_WARN)
		log_set_level(LOG_LEVEL_WARN);
	base = event_base_new();
	if (base == NULL) {
		fprintf(stderr, "hikyaku test: cannot create an event loop\n");
		return EX_OSERR;
	}
	l.base = base;
	dns_params_from_conf(&dp, c);
	dns = dns_new(base, &dp, &err);
	if (dns == NULL) {
		fprintf(stderr, "hikyaku test: resolver: %s\n", err.text);
		event_base_free(base);
		return EX_CONFIG;
	}
	id_gen_init(&ids, c->node_id);
	cli_test_params(&pp, c, u, a->timeout_ms, &pw, pwerr, sizeof(pwerr));
	pp.base = base;
	pp.dns = dns;
	pp.id = id_gen_next(&ids, clock_now_ms());
	pp.rcpt_to = a->to;
	pp.mail_from = a->from;
	(void)relay_probe_start(&pp, cli_test_local_cb, &l);
	cli_test_wipe(pw);
	event_base_dispatch(base);
	dns_free(dns);
	event_base_free(base);
	if (l.report == NULL) {
		fprintf(stderr, "hikyaku test: the test ended without a report\n");
		return EX_SOFTWARE;
	}
	ex = cli_test_output(o, l.report);
	json_decref(l.report);
	return ex;
}

/* Ask the daemon. -1: not running (run here instead); else the exit code. */
static int
cli_test_daemon(const struct cli_opts *o, const char *socket, const struct cli_test_args *a)
{
	struct cli_http_resp r;
	struct hk_err err = { 0 };
	json_t *body = json_object(), *j;
	char *enc, *req, target[512];
	const char *code = NULL, *msg = NULL;
	int ex;

	if (a->to)
		json_object_set_new(body, "to", json_string(a->to));
	if (a->from)
		json_object_set_new(body, "from", json_string(a->from));
	if (a->timeout_ms)
		json_object_set_new(body, "timeout_ms", json_integer((json_int_t)a->timeout_ms));
	req = cli_test_dump(body);
	json_decref(body);
	enc = evhttp_encode_uri(a->name);
	snprintf(target, sizeof(target), "/api/v1/upstreams/%s/test", enc ? enc : "");
	free(enc);
	cli_http_resp_init(&r);
	if (cli_http_request(socket, "POST", target, req, CLI_TEST_HTTP_TIMEOUT_MS, &r, &err) ==
	    -1) {
		free(req);
		cli_http_resp_fini(&r);
		switch (err.sys_errno) {
		case ENOENT:
		case ECONNREFUSED:
		case ENOTDIR:
			return -1;
		case EACCES:
		case EPERM:
			fprintf(stderr, "hikyaku test: permission denied on the control socket %s: run "
			    "as root or as a member of group hikyaku (or use --local)\n", socket);
			return EX_NOPERM;
		default:
			fprintf(stderr, "hikyaku test: %s\n", err.text);
			return EX_TEMPFAIL;
		}
	}
	free(req);
	j = json_loadb(r.body.ptr ? r.body.ptr : "", r.body.len, 0, NULL);
	if (r.status == 200 && json_is_object(j)) {
		ex = cli_test_output(o, j);
		goto out;
	}
	if (j != NULL) {
		code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
		msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	}
	fprintf(stderr, "hikyaku test: %s (HTTP %d)\n", msg ? msg : "the daemon refused the test",
	    r.status);
	if (r.status == 404 && code && strcmp(code, "unknown_upstream") == 0)
		ex = EX_NOUSER;
	else if (r.status == 400)
		ex = EX_USAGE;
	else if (r.status == 404 || r.status == 405)
		ex = -1; /* a daemon without this endpoint: test from here */
	else
		ex = EX_TEMPFAIL;
out:
	json_decref(j);
	cli_http_resp_fini(&r);
	return ex;
}

int
cli_test(const struct cli_opts *o, int argc, char **argv)
{
	struct cli_test_args a;
	const struct conf_upstream *u;
	struct conf *c = NULL;
	size_t i;
	int ex;

	ex = cli_test_parse(argc, argv, &a);
	if (ex != EX_OK)
		return ex;
	ex = cli_conf_load("hikyaku test", o->config, &c);
	if (ex != EX_OK)
		return ex;
	u = cli_test_find(c, a.name);
	if (u == NULL) {
		fprintf(stderr, "hikyaku test: no upstream \"%s\" in %s; configured:", a.name,
		    o->config);
		for (i = 0; i < c->n_upstreams; i++)
			fprintf(stderr, " %s", c->upstreams[i].name);
		fprintf(stderr, "%s\n", c->n_upstreams ? "" : " none");
		conf_unref(c);
		return EX_NOUSER;
	}
	ex = -1;
	if (!a.local && c->api_control_socket != NULL)
		ex = cli_test_daemon(o, c->api_control_socket, &a);
	if (ex == -1) {
		if (!a.local && !o->json)
			fprintf(stderr, "hikyaku test: the daemon is not running; testing from this "
			    "process with %s\n", o->config);
		ex = cli_test_in_process(o, c, u, &a);
	}
	conf_unref(c);
	return ex;
}
