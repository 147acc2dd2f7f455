/*
 * cli_announce.c - hikyaku announce: an outage or recovery notice to every recipient of a CSV
 * file, rendered from a template and submitted one message at a time over the control socket
 * (POST /api/v1/messages), at a given rate (docs/announce.md).
 *
 * Everything is checked before the first message goes: the template, every row, every
 * variable. A refused submission stops the run; what is left is written to a CSV file beside
 * the input so the run can be resumed, and every message carries an Idempotency-Key derived
 * from template, row and address, so rerunning within 24 h never sends a notice twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cli.h"
#include "cli_announce.h"
#include "cli_http.h"
#include "../conf/conf.h"
#include "../proto/csv.h"
#include "../proto/tmpl.h"
#include "../util/buf.h"
#include "../util/clock.h"
#include "../util/fsops.h"
#include "../util/num.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define ANNOUNCE_CSV_MAX (64u << 20)
#define ANNOUNCE_TIMEOUT_MS 60000
#define ANNOUNCE_DEFAULT_RATE "10/s"
#define ANNOUNCE_RETRIES 4
#define ANNOUNCE_SYSTEM_DIR "/etc/hikyaku/templates"

/* ---- pure helpers (cli_announce.h) ---- */

int
cli_announce_rate_parse(const char *s, uint64_t *interval_us)
{
	uint64_t count, period_ms;

	if (num_parse_rate(s, &count, &period_ms) == -1 || count == 0 || count > 1000000)
		return -1;
	*interval_us = period_ms * 1000 / count;
	return 0;
}

static void
cli_announce_digest_str(EVP_MD_CTX *sha, const char *s)
{
	/* The NUL ends each part: "ab"+"c" and "a"+"bc" digest differently. */
	if (EVP_DigestUpdate(sha, s, strlen(s) + 1) != 1)
		hk_panic("SHA-256 failed");
}

void
cli_announce_key(const char *tmpl_text, size_t tmpl_len, const struct csv_record *header,
    const struct csv_record *row, const char *address, char out[CLI_ANNOUNCE_KEY_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	size_t *order = xcalloc(header->n ? header->n : 1, sizeof(*order));
	size_t i, j;
	EVP_MD_CTX *sha = EVP_MD_CTX_new();

	HK_ASSERT(row->n == header->n);
	for (i = 0; i < header->n; i++) {
		size_t k = i;

		/* Insertion sort by column name: the column order of the file does not matter. */
		for (j = i; j > 0 && strcmp(csv_field(header, order[j - 1]),
		    csv_field(header, k)) > 0; j--)
			order[j] = order[j - 1];
		order[j] = k;
	}
	if (sha == NULL || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(sha, "hikyaku-announce 1\n", 19) != 1 ||
	    EVP_DigestUpdate(sha, tmpl_text, tmpl_len) != 1)
		hk_panic("SHA-256 failed");
	cli_announce_digest_str(sha, "");
	for (i = 0; i < header->n; i++) {
		cli_announce_digest_str(sha, csv_field(header, order[i]));
		cli_announce_digest_str(sha, csv_field(row, order[i]));
	}
	cli_announce_digest_str(sha, address);
	if (EVP_DigestFinal_ex(sha, md, NULL) != 1)
		hk_panic("SHA-256 failed");
	EVP_MD_CTX_free(sha);
	free(order);
	memcpy(out, "announce-", 9);
	for (i = 0; i < 16; i++) {
		out[9 + 2 * i] = hex[md[i] >> 4];
		out[10 + 2 * i] = hex[md[i] & 15];
	}
	out[CLI_ANNOUNCE_KEY_LEN] = '\0';
}

char *
cli_announce_json(const char *from, const char *address, const char *name, const char *subject,
    const char *text, const char *route)
{
	json_t *o = json_object(), *to = json_object(), *list = json_array();
	char *s;

	if (o == NULL || to == NULL || list == NULL)
		hk_panic("out of memory");
	json_object_set_new(o, "from", json_string(from));
	json_object_set_new(to, "address", json_string(address));
	json_object_set_new(to, "name", json_string(name));
	json_array_append_new(list, to);
	json_object_set_new(o, "to", list);
	json_object_set_new(o, "subject", json_string(subject));
	json_object_set_new(o, "text", json_string(text));
	if (route != NULL)
		json_object_set_new(o, "route", json_string(route));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	if (s == NULL)
		hk_panic("json_dumps failed");
	return s;
}

bool
cli_announce_addr_is_ok(const char *s)
{
	const char *at = strrchr(s, '@');
	const char *p;

	if (at == NULL || at == s || at[1] == '\0' || strlen(s) > 254)
		return false;
	for (p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',' || c == ';')
			return false;
	}
	return true;
}

void
cli_announce_csv_encode(const struct csv_record *r, struct buf *out)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		const char *f = csv_field(r, i);

		if (i > 0)
			buf_putc(out, ',');
		if (strpbrk(f, ",\"\r\n") == NULL && f[0] != ' ' && f[0] != '\0') {
			buf_append_str(out, f);
			continue;
		}
		buf_putc(out, '"');
		for (; *f != '\0'; f++) {
			if (*f == '"')
				buf_putc(out, '"');
			buf_putc(out, *f);
		}
		buf_putc(out, '"');
	}
	buf_append_str(out, "\r\n");
}

/* ---- the command ---- */

struct announce_var {
	char *name;
	const char *value; /* points into argv */
};

struct announce_msg {
	const struct csv_record *row;
	const char *address; /* into row */
	const char *name;    /* into row */
	char *subject;
	char *text;
	char key[CLI_ANNOUNCE_KEY_LEN + 1];
};

struct announce {
	const struct cli_opts *o;
	/* arguments */
	const char *template_spec;
	const char *lang;
	const char *csv_path;
	const char *from;
	const char *route;
	const char *rate;
	bool preview;
	bool skip_bad;
	struct announce_var *vars;
	size_t n_vars;
	/* loaded */
	struct conf *conf;
	char *template_path;
	struct buf template_text;
	struct tmpl tmpl;
	struct buf csv_text;
	struct csv_table table;
	size_t col_address, col_name;
	struct announce_msg *msgs;
	size_t n_msgs;
	char *default_from;
	uint64_t interval_us;
};

static int
announce_usage(void)
{
	fputs("usage: hikyaku announce --template outage|recovery|PATH [--lang en|ja] --to FILE.csv\n"
	      "       [--var KEY=VALUE ...] [--from ADDR] [--route NAME] [--rate N/s|N/m|N/h]\n"
	      "       [--skip-bad] [--preview] [--json]\n", stderr);
	return EX_USAGE;
}

static const char *
announce_optarg(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc) {
		fprintf(stderr, "hikyaku announce: %s needs a value\n", argv[*i]);
		return NULL;
	}
	return argv[++*i];
}

static bool
announce_is_name(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	}
	return true;
}

static int
announce_add_var(struct announce *a, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char *name;
	size_t i;

	if (eq == NULL || eq == kv) {
		fprintf(stderr, "hikyaku announce: --var wants KEY=VALUE, not \"%s\"\n", kv);
		return -1;
	}
	name = xstrndup(kv, (size_t)(eq - kv));
	if (!announce_is_name(name)) {
		fprintf(stderr, "hikyaku announce: --var %s: a name is letters, digits, _ or -\n",
		    name);
		free(name);
		return -1;
	}
	for (i = 0; i < a->n_vars; i++) {
		if (strcmp(a->vars[i].name, name) == 0) {
			a->vars[i].value = eq + 1; /* the last one wins, as with most tools */
			free(name);
			return 0;
		}
	}
	a->vars = xreallocarray(a->vars, a->n_vars + 1, sizeof(*a->vars));
	a->vars[a->n_vars].name = name;
	a->vars[a->n_vars++].value = eq + 1;
	return 0;
}

static int
announce_args(struct announce *a, int argc, char **argv)
{
	int i;

	a->lang = "en";
	a->rate = ANNOUNCE_DEFAULT_RATE;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], **slot = NULL;

		if (strcmp(arg, "--template") == 0)
			slot = &a->template_spec;
		else if (strcmp(arg, "--lang") == 0)
			slot = &a->lang;
		else if (strcmp(arg, "--to") == 0)
			slot = &a->csv_path;
		else if (strcmp(arg, "--from") == 0)
			slot = &a->from;
		else if (strcmp(arg, "--route") == 0)
			slot = &a->route;
		else if (strcmp(arg, "--rate") == 0)
			slot = &a->rate;
		else if (strcmp(arg, "--preview") == 0)
			a->preview = true;
		else if (strcmp(arg, "--skip-bad") == 0)
			a->skip_bad = true;
		else if (strcmp(arg, "--json") == 0)
			continue; /* global, also accepted after the command */
		else if (strcmp(arg, "--var") == 0) {
			const char *v = announce_optarg(argc, argv, &i);

			if (v == NULL || announce_add_var(a, v) == -1)
				return EX_USAGE;
			continue;
		} else {
			fprintf(stderr, "hikyaku announce: unknown argument %s\n", arg);
			return announce_usage();
		}
		if (slot != NULL && (*slot = announce_optarg(argc, argv, &i)) == NULL)
			return EX_USAGE;
	}
	if (a->template_spec == NULL || a->csv_path == NULL) {
		fputs("hikyaku announce: --template and --to are required\n", stderr);
		return announce_usage();
	}
	if (strcmp(a->lang, "en") != 0 && strcmp(a->lang, "ja") != 0) {
		fprintf(stderr, "hikyaku announce: --lang %s: en or ja\n", a->lang);
		return EX_USAGE;
	}
	if (cli_announce_rate_parse(a->rate, &a->interval_us) == -1) {
		fprintf(stderr, "hikyaku announce: --rate %s: N/s, N/m or N/h with N from 1\n",
		    a->rate);
		return EX_USAGE;
	}
	return EX_OK;
}

static int
announce_read(const char *path, size_t max, struct buf *out, const char *what)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;

	if (fd == -1 || fsops_read_all(fd, out, max) == -1) {
		e = errno;
		fprintf(stderr, "hikyaku announce: cannot read %s %s: %s\n", what, path,
		    e == EFBIG ? "file too large" : strerror(e));
		if (fd != -1)
			close(fd);
		return e == ENOENT ? EX_NOINPUT : EX_IOERR;
	}
	close(fd);
	return EX_OK;
}

static int
announce_load_conf(struct announce *a)
{
	int ex = cli_conf_load("hikyaku announce", a->o->config, &a->conf);

	if (ex != EX_OK)
		return ex;
	if (a->route != NULL) {
		struct buf names = BUF_INIT;
		size_t i;

		for (i = 0; i < a->conf->n_routes; i++) {
			if (strcmp(a->conf->routes[i].name, a->route) == 0)
				break;
			buf_printf(&names, "%s%s", names.len ? ", " : "", a->conf->routes[i].name);
		}
		if (i == a->conf->n_routes) {
			fprintf(stderr, "hikyaku announce: --route %s: no such route in %s (routes: "
			    "%s)\n", a->route, a->o->config, names.ptr ? names.ptr : "none");
			buf_fini(&names);
			return EX_DATAERR;
		}
		buf_fini(&names);
	}
	a->default_from = xasprintf("postmaster@%s", a->conf->hostname);
	return EX_OK;
}

/*
 * The template file. A spec with a '/' is a path; otherwise NAME.LANG.txt in, in order:
 * $HIKYAKU_TEMPLATES, templates/ beside the configuration file, /etc/hikyaku/templates.
 */
static int
announce_find_template(struct announce *a)
{
	const char *env = getenv("HIKYAKU_TEMPLATES");
	const char *slash = strrchr(a->o->config, '/');
	struct buf tried = BUF_INIT;
	char *dirs[3];
	size_t n = 0, i;
	int ex = EX_NOINPUT;

	if (strchr(a->template_spec, '/') != NULL) {
		a->template_path = xstrdup(a->template_spec);
		return EX_OK;
	}
	if (!announce_is_name(a->template_spec)) {
		fprintf(stderr, "hikyaku announce: --template %s: a name (outage, recovery) or a "
		    "path containing '/'\n", a->template_spec);
		return EX_USAGE;
	}
	if (env != NULL && env[0] != '\0')
		dirs[n++] = xstrdup(env);
	dirs[n++] = slash ? xasprintf("%.*s/templates", (int)(slash - a->o->config),
	    a->o->config) : xstrdup("templates");
	dirs[n++] = xstrdup(ANNOUNCE_SYSTEM_DIR);
	for (i = 0; i < n && a->template_path == NULL; i++) {
		char *p = xasprintf("%s/%s.%s.txt", dirs[i], a->template_spec, a->lang);

		if (access(p, R_OK) == 0) {
			a->template_path = p;
			ex = EX_OK;
		} else {
			buf_printf(&tried, "\n  %s (%s)", p, strerror(errno));
			free(p);
		}
	}
	if (ex != EX_OK)
		fprintf(stderr, "hikyaku announce: no template %s.%s.txt; looked for:%s\n",
		    a->template_spec, a->lang, tried.ptr);
	for (i = 0; i < n; i++)
		free(dirs[i]);
	buf_fini(&tried);
	return ex;
}

static int
announce_load_template(struct announce *a)
{
	size_t line = 0;
	const char *why = NULL;
	int ex;

	ex = announce_find_template(a);
	if (ex != EX_OK)
		return ex;
	ex = announce_read(a->template_path, TMPL_SIZE_MAX, &a->template_text, "template");
	if (ex != EX_OK)
		return ex;
	if (tmpl_parse(a->template_text.ptr ? a->template_text.ptr : "", a->template_text.len,
	    &a->tmpl, &line, &why) != TMPL_OK) {
		fprintf(stderr, "%s:%zu: %s\n", a->template_path, line, why);
		return EX_DATAERR;
	}
	return EX_OK;
}

static const struct announce_var *
announce_var(const struct announce *a, const char *name)
{
	size_t i;

	for (i = 0; i < a->n_vars; i++) {
		if (strcmp(a->vars[i].name, name) == 0)
			return &a->vars[i];
	}
	return NULL;
}

/* Every variable of the template must have a source: a CSV column or --var. */
static int
announce_check_vars(const struct announce *a)
{
	struct buf list = BUF_INIT;
	size_t i;

	for (i = 0; i < a->tmpl.n_vars; i++) {
		const char *v = a->tmpl.vars[i];

		if (csv_table_column(&a->table, v) != SIZE_MAX || announce_var(a, v) != NULL)
			continue;
		tmpl_vars_list(&a->tmpl, &list);
		fprintf(stderr, "hikyaku announce: %s uses {{%s}}, which has no value: give --var "
		    "%s=VALUE or add a column \"%s\" to %s\n(the template uses: %s)\n"
		    "nothing was sent\n", a->template_path, v, v, v, a->csv_path, list.ptr);
		buf_fini(&list);
		return EX_DATAERR;
	}
	return EX_OK;
}

struct announce_lookup {
	const struct announce *a;
	const struct csv_record *row;
};

/* A row's own non-empty value first, then --var. */
static const char *
announce_lookup_cb(void *arg, const char *name)
{
	const struct announce_lookup *l = arg;
	size_t col = csv_table_column(&l->a->table, name);
	const struct announce_var *v;

	if (col != SIZE_MAX && csv_field(l->row, col)[0] != '\0')
		return csv_field(l->row, col);
	v = announce_var(l->a, name);
	return v ? v->value : NULL;
}

/* Check and render one row; false (recorded as a bad row) when it cannot be sent. */
static bool
announce_prepare_row(struct announce *a, const struct csv_record *row, size_t dup_of,
    struct buf *subj, struct buf *body)
{
	struct announce_lookup l = { .a = a, .row = row };
	const char *addr = csv_field(row, a->col_address), *name;
	struct announce_msg *m;
	enum tmpl_result res;

	if (!cli_announce_addr_is_ok(addr)) {
		csv_table_add_bad(&a->table, row->line, "address \"%.60s\" is not local@domain",
		    addr);
		return false;
	}
	if (dup_of != SIZE_MAX) {
		csv_table_add_bad(&a->table, row->line, "%.60s is already on line %zu", addr,
		    a->table.rows[dup_of].line);
		return false;
	}
	res = tmpl_render(&a->tmpl, announce_lookup_cb, &l, subj, body, &name);
	if (res == TMPL_MISSING) {
		csv_table_add_bad(&a->table, row->line, "{{%s}} is empty (and no --var %s=)", name,
		    name);
		return false;
	}
	if (res == TMPL_BAD_VALUE) {
		csv_table_add_bad(&a->table, row->line, "the value of {{%s}} holds a %s", name,
		    "control character (or a line break in the subject)");
		return false;
	}
	a->msgs = xreallocarray(a->msgs, a->n_msgs + 1, sizeof(*a->msgs));
	m = &a->msgs[a->n_msgs++];
	memset(m, 0, sizeof(*m));
	m->row = row;
	m->address = addr;
	m->name = csv_field(row, a->col_name);
	m->subject = xstrdup(subj->ptr ? subj->ptr : "");
	m->text = xstrdup(body->ptr ? body->ptr : "");
	cli_announce_key(a->template_text.ptr ? a->template_text.ptr : "", a->template_text.len,
	    &a->table.header, row, addr, m->key);
	return true;
}

struct announce_addr_ix {
	const char *addr;
	size_t i;
};

static int
announce_addr_ix_cmp(const void *x, const void *y)
{
	const struct announce_addr_ix *p = x, *q = y;
	int c = strcasecmp(p->addr, q->addr);

	if (c != 0)
		return c;
	return p->i < q->i ? -1 : p->i > q->i;
}

/* dup[i]: the first row with row i's address when that is an earlier row, else SIZE_MAX. */
static size_t *
announce_duplicates(const struct announce *a)
{
	size_t n = a->table.n_rows, i, *dup = xcalloc(n ? n : 1, sizeof(*dup));
	struct announce_addr_ix *ix = xcalloc(n ? n : 1, sizeof(*ix));

	for (i = 0; i < n; i++) {
		ix[i].addr = csv_field(&a->table.rows[i], a->col_address);
		ix[i].i = i;
		dup[i] = SIZE_MAX;
	}
	/* Sorted by address, then row: each group starts with its first row. */
	qsort(ix, n, sizeof(*ix), announce_addr_ix_cmp);
	for (i = 1; i < n; i++) {
		if (strcasecmp(ix[i].addr, ix[i - 1].addr) == 0)
			dup[ix[i].i] = dup[ix[i - 1].i] == SIZE_MAX ? ix[i - 1].i : dup[ix[i - 1].i];
	}
	free(ix);
	return dup;
}

static int
announce_load_csv(struct announce *a)
{
	struct buf subj = BUF_INIT, body = BUF_INIT;
	const char *why = NULL;
	size_t i, *dup;
	int ex;

	ex = announce_read(a->csv_path, ANNOUNCE_CSV_MAX, &a->csv_text, "recipient list");
	if (ex != EX_OK)
		return ex;
	if (csv_table_parse(a->csv_text.ptr ? a->csv_text.ptr : "", a->csv_text.len, &a->table,
	    &why) == -1) {
		fprintf(stderr, "%s:1: %s\n", a->csv_path, why);
		return EX_DATAERR;
	}
	a->col_address = csv_table_column(&a->table, "address");
	a->col_name = csv_table_column(&a->table, "name");
	if (a->col_address == SIZE_MAX || a->col_name == SIZE_MAX) {
		fprintf(stderr, "%s:1: the header row needs the columns \"address\" and \"name\"\n",
		    a->csv_path);
		return EX_DATAERR;
	}
	ex = announce_check_vars(a);
	if (ex != EX_OK)
		return ex;
	dup = announce_duplicates(a);
	for (i = 0; i < a->table.n_rows; i++)
		(void)announce_prepare_row(a, &a->table.rows[i], dup[i], &subj, &body);
	free(dup);
	buf_fini(&subj);
	buf_fini(&body);
	for (i = 0; i < a->table.n_bad; i++)
		fprintf(stderr, "%s:%zu: %s\n", a->csv_path, a->table.bad[i].line,
		    a->table.bad[i].why);
	if (a->table.n_bad > 0 && !a->skip_bad) {
		fprintf(stderr, "hikyaku announce: %zu bad row%s in %s; nothing was sent (fix them, "
		    "or add --skip-bad to send to the other rows)\n", a->table.n_bad,
		    a->table.n_bad == 1 ? "" : "s", a->csv_path);
		return EX_DATAERR;
	}
	if (a->n_msgs == 0) {
		fprintf(stderr, "hikyaku announce: no recipient to send to in %s\n", a->csv_path);
		return EX_DATAERR;
	}
	return EX_OK;
}

static json_t *
announce_skipped_json(const struct announce *a)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < a->table.n_bad; i++)
		json_array_append_new(arr, json_pack("{s:I,s:s}", "line",
		    (json_int_t)a->table.bad[i].line, "why", a->table.bad[i].why));
	return arr;
}

static void
announce_dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);

	if (s != NULL)
		puts(s);
	free(s);
	json_decref(j);
}

static int
announce_preview(const struct announce *a)
{
	const struct announce_msg *m = &a->msgs[0];
	const char *from = a->from ? a->from : a->default_from;

	if (a->o->json) {
		announce_dump(json_pack("{s:b,s:I,s:s,s:s,s:o,s:{s:s,s:{s:s,s:s},s:s,s:s,s:s?}}",
		    "preview", 1, "count", (json_int_t)a->n_msgs, "template", a->template_path,
		    "idempotency_key", m->key, "skipped", announce_skipped_json(a), "message",
		    "from", from, "to", "address", m->address, "name", m->name, "subject",
		    m->subject, "text", m->text, "route", a->route));
		return EX_OK;
	}
	printf("From: %s\nTo: %s <%s>\nSubject: %s\n", from, m->name, m->address, m->subject);
	if (a->route)
		printf("Route: %s\n", a->route);
	printf("\n%s", m->text);
	if (m->text[0] != '\0' && m->text[strlen(m->text) - 1] != '\n')
		putchar('\n');
	printf("--\n%zu message%s would be sent from %s (template %s)%s; nothing was sent.\n",
	    a->n_msgs, a->n_msgs == 1 ? "" : "s", a->csv_path, a->template_path,
	    a->table.n_bad ? ", bad rows skipped" : "");
	return EX_OK;
}

/* ---- sending ---- */

static void
announce_sleep_until(uint64_t due_us)
{
	struct timespec now;

	for (;;) {
		uint64_t t;
		struct timespec d;

		clock_gettime(CLOCK_MONOTONIC, &now);
		t = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
		if (t >= due_us)
			return;
		d.tv_sec = (time_t)((due_us - t) / 1000000u);
		d.tv_nsec = (long)((due_us - t) % 1000000u * 1000u);
		nanosleep(&d, NULL);
	}
}

static uint64_t
announce_now_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

/* The outcome of one submission. */
struct announce_result {
	int ex;          /* EX_OK when taken (new or replayed) */
	bool replayed;   /* sent by an earlier run */
	bool conflict;   /* an earlier run sent this notice with other text */
	char id[32];
	char why[512];
};

static bool
announce_is_retryable(int status, const char *code)
{
	return status == 429 || status == 503 ||
	    (status == 409 && code != NULL && strcmp(code, "idempotency_in_progress") == 0);
}

static void
announce_submit(const struct announce *a, const char *socket, const struct announce_msg *m,
    struct announce_result *res)
{
	struct cli_http_resp r;
	struct hk_err err = { 0 };
	char *body, hdr[128];
	unsigned attempt;

	memset(res, 0, sizeof(*res));
	body = cli_announce_json(a->from ? a->from : a->default_from, m->address, m->name,
	    m->subject, m->text, a->route);
	snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s\r\n", m->key);
	cli_http_resp_init(&r);
	for (attempt = 0;; attempt++) {
		json_t *j = NULL, *e;
		const char *code = NULL, *msg = NULL, *id;

		if (cli_http_request_hdrs(socket, "POST", "/api/v1/messages", hdr, body,
		    ANNOUNCE_TIMEOUT_MS, &r, &err) == -1) {
			bool down = err.sys_errno == ENOENT || err.sys_errno == ECONNREFUSED;

			snprintf(res->why, sizeof(res->why), "%s%s", err.text, down ?
			    " (is hikyaku running? start it with `hikyaku serve`)" : "");
			res->ex = down ? EX_UNAVAILABLE : (err.sys_errno == EACCES ? EX_NOPERM
										: EX_TEMPFAIL);
			break;
		}
		j = json_loadb(r.body.ptr ? r.body.ptr : "", r.body.len, 0, NULL);
		if (r.status >= 200 && r.status <= 299) {
			id = json_string_value(json_object_get(j, "id"));
			snprintf(res->id, sizeof(res->id), "%s", id ? id : "?");
			res->replayed = r.replayed;
			json_decref(j);
			break;
		}
		e = json_object_get(j, "error");
		code = json_string_value(json_object_get(e, "code"));
		msg = json_string_value(json_object_get(e, "message"));
		if (r.status == 409 && code != NULL && strcmp(code, "idempotency_conflict") == 0) {
			res->conflict = true;
			json_decref(j);
			break;
		}
		if (announce_is_retryable(r.status, code) && attempt < ANNOUNCE_RETRIES) {
			json_decref(j);
			announce_sleep_until(announce_now_us() + (1000000u << attempt));
			continue;
		}
		snprintf(res->why, sizeof(res->why), "HTTP %d %s: %s", r.status,
		    code ? code : "error", msg ? msg : "request refused");
		res->ex = r.status == 429 || r.status >= 500 ? EX_TEMPFAIL : EX_DATAERR;
		json_decref(j);
		break;
	}
	cli_http_resp_fini(&r);
	free(body);
}

/* Write the header and rows msgs[from..] to a CSV file beside the input; its path or NULL. */
static char *
announce_write_rest(const struct announce *a, size_t from)
{
	struct buf out = BUF_INIT;
	size_t len = strlen(a->csv_path), i;
	char *path;
	int fd;

	if (len > 4 && strcmp(a->csv_path + len - 4, ".csv") == 0)
		len -= 4;
	path = xasprintf("%.*s.rest.csv", (int)len, a->csv_path);
	cli_announce_csv_encode(&a->table.header, &out);
	for (i = from; i < a->n_msgs; i++)
		cli_announce_csv_encode(a->msgs[i].row, &out);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd == -1 || fsops_write_all(fd, out.ptr, out.len) == -1 || fsops_close(fd) == -1) {
		fprintf(stderr, "hikyaku announce: cannot write %s: %s\n", path, strerror(errno));
		free(path);
		path = NULL;
	}
	buf_fini(&out);
	return path;
}

static void
announce_print_argv_without_to(const struct announce *a, int argc, char **argv)
{
	int i;

	fputs("  hikyaku", stderr);
	if (strcmp(a->o->config, CLI_DEFAULT_CONFIG) != 0)
		fprintf(stderr, " -c '%s'", a->o->config);
	fputs(" announce", stderr);
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) {
			i++;
			continue;
		}
		fprintf(stderr, strpbrk(argv[i], " \t'\"$`\\!*?") ? " '%s'" : " %s", argv[i]);
	}
}

static int
announce_send(struct announce *a, const char *socket, int argc, char **argv)
{
	json_t *done = json_array();
	size_t i, sent = 0, again = 0, conflicts = 0;
	uint64_t next = announce_now_us();
	struct announce_result res = { 0 };
	char *rest = NULL;

	for (i = 0; i < a->n_msgs; i++) {
		const struct announce_msg *m = &a->msgs[i];

		announce_sleep_until(next);
		next = announce_now_us() + a->interval_us;
		announce_submit(a, socket, m, &res);
		if (res.ex != EX_OK)
			break;
		if (res.conflict)
			conflicts++;
		else if (res.replayed)
			again++;
		else
			sent++;
		json_array_append_new(done, json_pack("{s:I,s:s,s:s?,s:s}", "line",
		    (json_int_t)m->row->line, "address", m->address, "id",
		    res.conflict ? NULL : res.id, "status", res.conflict ? "sent_earlier_other_text"
		    : res.replayed ? "sent_earlier" : "queued"));
		if (!a->o->json)
			printf("[%zu/%zu] %s %s%s%s\n", i + 1, a->n_msgs, m->address,
			    res.conflict ? "already sent within 24 h with other text: not sent again"
			    : res.replayed ? "already sent within 24 h: id " : "queued: id ",
			    res.conflict ? "" : res.id, "");
		fflush(stdout);
	}
	if (i < a->n_msgs) {
		rest = announce_write_rest(a, i);
		fprintf(stderr, "hikyaku announce: stopped at %s:%zu (%s): %s\n%zu of %zu messages "
		    "were submitted before the stop.\n", a->csv_path, a->msgs[i].row->line,
		    a->msgs[i].address, res.why, i, a->n_msgs);
		if (rest != NULL) {
			fprintf(stderr, "The %zu not yet sent are in %s; once the cause is fixed, "
			    "resume with:\n", a->n_msgs - i, rest);
			announce_print_argv_without_to(a, argc, argv);
			fprintf(stderr, " --to '%s'\n", rest);
		}
		fputs("(Rerunning the whole list within 24 h is safe too: a notice already sent "
		      "is not sent again.)\n", stderr);
	} else if (!a->o->json) {
		printf("done: %zu queued, %zu already sent earlier", sent, again + conflicts);
		if (a->table.n_bad)
			printf(", %zu bad row%s skipped", a->table.n_bad, a->table.n_bad == 1 ? "" :
			    "s");
		printf(" (of %zu)\n", a->n_msgs);
	}
	if (a->o->json)
		announce_dump(json_pack("{s:I,s:I,s:I,s:o,s:o,s:s?,s:s?}", "total",
		    (json_int_t)a->n_msgs, "queued", (json_int_t)sent, "sent_earlier",
		    (json_int_t)(again + conflicts), "messages", done, "skipped",
		    announce_skipped_json(a), "error", i < a->n_msgs ? res.why : NULL, "rest_csv",
		    rest));
	else
		json_decref(done);
	free(rest);
	return i < a->n_msgs ? res.ex : EX_OK;
}

static void
announce_fini(struct announce *a)
{
	size_t i;

	for (i = 0; i < a->n_vars; i++)
		free(a->vars[i].name);
	free(a->vars);
	for (i = 0; i < a->n_msgs; i++) {
		free(a->msgs[i].subject);
		free(a->msgs[i].text);
	}
	free(a->msgs);
	tmpl_fini(&a->tmpl);
	csv_table_fini(&a->table);
	buf_fini(&a->template_text);
	buf_fini(&a->csv_text);
	free(a->template_path);
	free(a->default_from);
	if (a->conf != NULL)
		conf_unref(a->conf);
}

int
cli_announce(const struct cli_opts *o, int argc, char **argv)
{
	struct announce a;
	int ex;

	memset(&a, 0, sizeof(a));
	a.o = o;
	tmpl_init(&a.tmpl);
	csv_table_init(&a.table);
	ex = announce_args(&a, argc, argv);
	if (ex == EX_OK)
		ex = announce_load_conf(&a);
	if (ex == EX_OK)
		ex = announce_load_template(&a);
	if (ex == EX_OK)
		ex = announce_load_csv(&a);
	if (ex == EX_OK && a.preview)
		ex = announce_preview(&a);
	else if (ex == EX_OK && a.conf->api_control_socket == NULL) {
		fprintf(stderr, "hikyaku announce: %s has no api.control_socket\n", o->config);
		ex = EX_CONFIG;
	} else if (ex == EX_OK) {
		ex = announce_send(&a, a.conf->api_control_socket, argc - 1, argv + 1);
	}
	announce_fini(&a);
	return ex;
}
