/*
 * cli_explain.c - hikyaku explain "REPLY" [--json]: an upstream's SMTP reply in plain words,
 * without the daemon (DESIGN.md 10, docs/explain.md).
 *
 * The reply may span lines ("550-5.7.26 ...\n550 5.7.26 ..."), come without an enhanced code,
 * be given as several arguments (joined by blanks) or on stdin ("-"). The configuration's
 * explain: file is used when the configuration loads; otherwise the built-in table, with a
 * warning when a configuration exists but does not load. Exit: 0 a row matched, 1 a valid reply
 * that needs no explanation (2xx, 3xx), 65 not an SMTP reply, 64 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <jansson.h>

#include "../conf/conf.h"
#include "../proto/explain.h"
#include "../proto/smtp_reply.h"
#include "../util/buf.h"
#include "cli.h"
#include "cli_fmt.h"
#include "../util/poison.h"

/* Text on stdin larger than this is not a reply someone pasted. */
#define CLI_EXPLAIN_MAX_INPUT (256 * 1024)
#define CLI_EXPLAIN_WIDTH 78

/*
 * Parse text as one SMTP reply, leniently about what pasting adds: leading blanks and CR on
 * each line, blank lines around it, a missing last line. -1 with *why when it is not a reply.
 */
static int
cli_explain_parse(const char *text, size_t len, struct smtp_reply *r, const char **why)
{
	enum smtp_reply_result res = SMTP_REPLY_MORE;
	size_t i = 0;

	smtp_reply_init(r);
	*why = "empty input";
	while (i < len) {
		size_t end = i, n;

		while (end < len && text[end] != '\n')
			end++;
		n = end;
		while (i < n && (text[i] == ' ' || text[i] == '\t'))
			i++;
		while (n > i && (text[n - 1] == '\r' || text[n - 1] == ' ' || text[n - 1] == '\t'))
			n--;
		if (n > i) {
			if (res == SMTP_REPLY_DONE) {
				*why = "text after the last line of the reply (one reply at a time)";
				return -1;
			}
			res = smtp_reply_feed(r, text + i, n - i, why);
			if (res == SMTP_REPLY_BAD)
				return -1;
		}
		i = end + 1;
	}
	return r->nlines > 0 ? 0 : -1;
}

/* Print label and s wrapped at CLI_EXPLAIN_WIDTH, continuation lines indented under s. */
static void
cli_explain_wrapped(const char *label, const char *s)
{
	size_t indent = strlen(label), col = indent, w;

	fputs(label, stdout);
	while (*s != '\0') {
		while (*s == ' ')
			s++;
		w = strcspn(s, " ");
		if (w == 0)
			break;
		if (col > indent && col + 1 + w > CLI_EXPLAIN_WIDTH) {
			printf("\n%*s", (int)indent, "");
			col = indent;
		} else if (col > indent) {
			putchar(' ');
			col++;
		}
		fwrite(s, 1, w, stdout);
		col += w;
		s += w;
	}
	putchar('\n');
}

static void
cli_explain_print(const struct smtp_reply *r, const struct explain_entry *e, const char *source)
{
	char enh[32] = "";
	const char *nl = strchr(r->text, '\n');

	if (r->enh_class != 0)
		snprintf(enh, sizeof(enh), " %d.%d.%d", r->enh_class, r->enh_subject, r->enh_detail);
	printf("reply:    %d%s %.*s%s\n", r->code, enh, nl ? (int)(nl - r->text) : (int)r->text_len,
	    r->text, nl ? " ..." : "");
	if (e == NULL) {
		printf("entry:    none (%s)\n", r->code < 400 ? "not a failure: nothing to explain" :
		    "no entry matches");
		return;
	}
	printf("entry:    %s (%s)\n", e->id, source);
	cli_explain_wrapped("cause:    ", e->cause);
	printf("culprit:  %s\n", explain_culprit_name(e->culprit));
	cli_explain_wrapped("fix:      ", e->fix);
	printf("retry helps:          %s\n", e->flags & EXPLAIN_RETRY_HELPS ?
	    "yes, the same upstream may accept it later" : "no");
	printf("other upstream helps: %s\n", e->flags & EXPLAIN_OTHER_UPSTREAM_HELPS ?
	    "yes, another upstream or MX host may accept it" : "no");
	if (e->flags & EXPLAIN_QUOTA)
		printf("quota:                yes, hikyaku pauses this upstream (SPILL) and uses the "
		    "next one\n");
	if (e->flags & EXPLAIN_SUPPRESS)
		printf("suppress:             yes, the address goes on the suppression list\n");
}

static void
cli_explain_json(const struct smtp_reply *r, const struct explain_entry *e, const char *source)
{
	json_t *o = json_object(), *rep = json_object(), *x;
	char enh[32] = "";
	char *s;

	if (r->enh_class != 0)
		snprintf(enh, sizeof(enh), "%d.%d.%d", r->enh_class, r->enh_subject, r->enh_detail);
	json_object_set_new(rep, "code", json_integer(r->code));
	json_object_set_new(rep, "enhanced", r->enh_class != 0 ? json_string(enh) : json_null());
	json_object_set_new(rep, "text", json_stringn(r->text, r->text_len));
	json_object_set_new(o, "reply", rep);
	if (e != NULL) {
		x = json_object();
		json_object_set_new(x, "id", json_string(e->id));
		json_object_set_new(x, "cause", json_string(e->cause));
		json_object_set_new(x, "culprit", json_string(explain_culprit_name(e->culprit)));
		json_object_set_new(x, "fix", json_string(e->fix));
		json_object_set_new(x, "retry_helps", json_boolean(e->flags & EXPLAIN_RETRY_HELPS));
		json_object_set_new(x, "other_upstream_helps",
		    json_boolean(e->flags & EXPLAIN_OTHER_UPSTREAM_HELPS));
		json_object_set_new(x, "quota", json_boolean(e->flags & EXPLAIN_QUOTA));
		json_object_set_new(x, "suppress", json_boolean(e->flags & EXPLAIN_SUPPRESS));
		json_object_set_new(x, "source", json_string(source));
		json_object_set_new(o, "explanation", x);
	} else {
		json_object_set_new(o, "explanation", json_null());
	}
	s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (s != NULL)
		printf("%s\n", s);
	free(s);
	json_decref(o);
}

/*
 * The configuration's extra rows: NULL (built-in table only) when there is no configuration
 * file; a warning, and the built-in table, when it exists but does not load.
 */
static struct conf *
cli_explain_conf(const struct cli_opts *o)
{
	struct conf_diag diag;
	struct conf *c = NULL;

	if (access(o->config, F_OK) == -1 && errno == ENOENT)
		return NULL;
	conf_diag_init(&diag);
	if (conf_load(o->config, &c, &diag) == -1) {
		fprintf(stderr, "hikyaku explain: warning: %s does not load (%u problem%s; see "
		    "hikyaku serve --check): using the built-in table only\n", o->config,
		    diag.count, diag.count == 1 ? "" : "s");
		c = NULL;
	}
	conf_diag_fini(&diag);
	return c;
}

static int
cli_explain_read_stdin(struct buf *in)
{
	char chunk[4096];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		if (in->len + n > CLI_EXPLAIN_MAX_INPUT)
			return -1;
		buf_append(in, chunk, n);
	}
	return ferror(stdin) ? -1 : 0;
}

int
cli_explain(const struct cli_opts *o, int argc, char **argv)
{
	static const char usage[] = "usage: hikyaku explain [--json] \"REPLY\" | -\n";
	const char *json_flag = NULL, *pos[64], *bad = NULL, *why = NULL;
	const struct cli_opt opts[] = { { .name = "--json", .value = &json_flag } };
	const struct explain_entry *e = NULL;
	struct smtp_reply *r = NULL;
	struct buf in = BUF_INIT;
	struct conf *c = NULL;
	const char *source = "built-in";
	size_t n_pos = 0, i;
	int ex;

	if (cli_opts_parse(opts, HK_ARRAY_LEN(opts), argc, argv, pos, HK_ARRAY_LEN(pos), &n_pos,
	    &bad, &why) == -1 || n_pos == 0) {
		if (bad != NULL)
			fprintf(stderr, "hikyaku explain: %s: %s\n", bad, why);
		fputs(usage, stderr);
		return EX_USAGE;
	}
	if (n_pos == 1 && strcmp(pos[0], "-") == 0) {
		if (cli_explain_read_stdin(&in) == -1) {
			fprintf(stderr, "hikyaku explain: cannot read the reply from stdin (or it is "
			    "larger than %d bytes)\n", CLI_EXPLAIN_MAX_INPUT);
			buf_fini(&in);
			return EX_DATAERR;
		}
	} else {
		for (i = 0; i < n_pos; i++) {
			if (i > 0)
				buf_putc(&in, ' ');
			buf_append_str(&in, pos[i]);
		}
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		buf_fini(&in);
		return EX_OSERR;
	}
	if (cli_explain_parse(in.ptr != NULL ? in.ptr : "", in.len, r, &why) == -1) {
		fprintf(stderr, "hikyaku explain: not an SMTP reply (%s); give the reply as the "
		    "server sent it, e.g. \"550 5.1.1 User unknown\"\n", why);
		ex = EX_DATAERR;
		goto out;
	}
	c = cli_explain_conf(o);
	e = explain_reply_in(c ? c->explain_rows : NULL, c ? c->n_explain_rows : 0, r);
	for (i = 0; e != NULL && c != NULL && i < c->n_explain_rows; i++) {
		if (e == &c->explain_rows[i])
			source = c->explain_path;
	}
	if (o->json || json_flag != NULL)
		cli_explain_json(r, e, source);
	else
		cli_explain_print(r, e, source);
	ex = e != NULL ? EX_OK : 1;
out:
	conf_unref(c);
	free(r);
	buf_fini(&in);
	return ex;
}
