/*
 * conf_load.c - from a file or a string to a validated snapshot: the YAML tree (libyaml event
 * API), the diagnostics list and the load entry points.
 *
 * The tree is built from events rather than libyaml's document API so that aliases are seen (and
 * refused) where they are written, and every node keeps its own position.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "../util/fsops.h"
#include "../util/xalloc.h"
#include "conf.h"
#include "conf_explain.h"
#include "conf_int.h"
#include "../util/poison.h"

/* Deeper nesting than this is never a configuration; it bounds the builder's stack. */
#define CONF_MAX_DEPTH 32
/* Past this many problems the rest is noise (and fuzzed input could make millions). */
#define CONF_MAX_MSGS 100
/* A configuration file is a few kilobytes; refuse anything absurd before parsing it. */
#define CONF_MAX_FILE (1024 * 1024)

static void
conf_load_msg_add(struct conf_ctx *ctx, unsigned line, unsigned col, char *text)
{
	struct conf_msg *m;

	if (ctx->n_msgs > CONF_MAX_MSGS) {
		free(text);
		return;
	}
	ctx->msgs = xreallocarray(ctx->msgs, ctx->n_msgs + 1, sizeof(*ctx->msgs));
	m = &ctx->msgs[ctx->n_msgs];
	m->line = line;
	m->col = col;
	m->seq = (unsigned)ctx->n_msgs;
	m->text = text;
	ctx->n_msgs++;
}

static void
conf_load_vmsg(struct conf_ctx *ctx, unsigned line, unsigned col, bool with_path, const char *fmt,
    va_list ap)
{
	struct buf b = BUF_INIT;

	if (with_path && ctx->path.len > 0)
		buf_printf(&b, "%s: ", ctx->path.ptr);
	buf_vprintf(&b, fmt, ap);
	conf_load_msg_add(ctx, line, col, buf_steal(&b));
}

void
conf_load_error(struct conf_ctx *ctx, const struct ynode *at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_load_vmsg(ctx, at ? at->line : 1, at ? at->col : 1, false, fmt, ap);
	va_end(ap);
}

void
conf_load_value_error(struct conf_ctx *ctx, const struct ynode *at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_load_vmsg(ctx, at ? at->line : 1, at ? at->col : 1, true, fmt, ap);
	va_end(ap);
}

void
conf_load_error_at(struct conf_ctx *ctx, unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_load_vmsg(ctx, line, col, false, fmt, ap);
	va_end(ap);
}

static int
conf_load_msg_cmp(const void *a, const void *b)
{
	const struct conf_msg *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

void
conf_load_flush(struct conf_ctx *ctx, struct conf_diag *diag)
{
	size_t i;

	if (ctx->n_msgs > 1) /* never qsort(NULL, 0, ...): undefined */
		qsort(ctx->msgs, ctx->n_msgs, sizeof(*ctx->msgs), conf_load_msg_cmp);
	for (i = 0; i < ctx->n_msgs; i++) {
		const struct conf_msg *m = &ctx->msgs[i];

		if (diag != NULL) {
			if (i == CONF_MAX_MSGS)
				buf_printf(&diag->text,
				    "%s:%u:%u: too many problems; stopping here\n", ctx->name,
				    m->line, m->col);
			else
				buf_printf(&diag->text, "%s:%u:%u: %s\n", ctx->name, m->line,
				    m->col, m->text);
			diag->count++;
		}
		free(m->text);
	}
	free(ctx->msgs);
	ctx->msgs = NULL;
	ctx->n_msgs = 0;
}

/* ---- the tree ---- */

void
conf_load_tree_free(struct ynode *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->n; i++)
		conf_load_tree_free(n->items[i]);
	free(n->items);
	free(n->str);
	free(n);
}

static struct ynode *
conf_load_node(enum ynode_kind kind, yaml_mark_t mark)
{
	struct ynode *n = xcalloc(1, sizeof(*n));

	n->kind = kind;
	n->line = (unsigned)mark.line + 1;
	n->col = (unsigned)mark.column + 1;
	return n;
}

static void
conf_load_attach(struct ynode *parent, struct ynode *child)
{
	parent->items = xreallocarray(parent->items, parent->n + 1, sizeof(*parent->items));
	parent->items[parent->n++] = child;
}

const struct ynode *
conf_load_map_get(const struct ynode *map, const char *key)
{
	size_t i;

	if (map == NULL || map->kind != YNODE_MAP)
		return NULL;
	for (i = 0; i + 1 < map->n; i += 2) {
		const struct ynode *k = map->items[i];

		if (k->kind == YNODE_SCALAR && strcmp(k->str, key) == 0)
			return map->items[i + 1];
	}
	return NULL;
}

const struct ynode *
conf_load_seq_item(const struct ynode *seq, size_t i)
{
	if (seq == NULL || seq->kind != YNODE_SEQ || i >= seq->n)
		return NULL;
	return seq->items[i];
}

bool
conf_load_is_null(const struct ynode *n)
{
	return n->kind == YNODE_SCALAR && n->plain &&
	    (n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
		strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0);
}

const char *
conf_load_kind_name(const struct ynode *n)
{
	switch (n->kind) {
	case YNODE_SCALAR:
		return conf_load_is_null(n) ? "nothing" : "a single value";
	case YNODE_SEQ:
		return "a list";
	case YNODE_MAP:
		return "a mapping";
	case YNODE_BAD:
		break;
	}
	return "an invalid value";
}

/* 1-based line and column of byte offset off in text (libyaml reader errors give offsets). */
static void
conf_load_offset_pos(const char *text, size_t len, size_t off, unsigned *line, unsigned *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

static void
conf_load_syntax_error(struct conf_ctx *ctx, const yaml_parser_t *p, const char *text, size_t len)
{
	const char *problem = p->problem != NULL ? p->problem : "unknown problem";
	unsigned line, col;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		hk_panic("libyaml: out of memory");
	case YAML_READER_ERROR:
		conf_load_offset_pos(text, len, p->problem_offset, &line, &col);
		if (p->problem_value != -1)
			conf_load_error_at(ctx, line, col, "not valid text: %s (byte 0x%02x)",
			    problem, (unsigned)p->problem_value & 0xff);
		else
			conf_load_error_at(ctx, line, col, "not valid text: %s", problem);
		return;
	default:
		break;
	}
	line = (unsigned)p->problem_mark.line + 1;
	col = (unsigned)p->problem_mark.column + 1;
	if (p->context != NULL)
		conf_load_error_at(ctx, line, col, "YAML syntax error: %s (%s at %u:%u)", problem,
		    p->context, (unsigned)p->context_mark.line + 1,
		    (unsigned)p->context_mark.column + 1);
	else
		conf_load_error_at(ctx, line, col, "YAML syntax error: %s", problem);
}

/* Handle one event; 1 at the end of the stream, 0 to go on, -1 to stop. */
static int
conf_load_event(struct conf_ctx *ctx, const yaml_event_t *ev, struct ynode **doc,
    struct ynode **stack, size_t *depth, unsigned *docs)
{
	struct ynode *n = NULL;

	switch (ev->type) {
	case YAML_STREAM_END_EVENT:
		return 1;
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1) {
			conf_load_error_at(ctx, (unsigned)ev->start_mark.line + 1,
			    (unsigned)ev->start_mark.column + 1,
			    "only one YAML document is allowed (remove the second \"---\")");
			return -1;
		}
		return 0;
	case YAML_SCALAR_EVENT:
		n = conf_load_node(YNODE_SCALAR, ev->start_mark);
		n->len = ev->data.scalar.length;
		n->str = xstrndup((const char *)ev->data.scalar.value, n->len);
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		if (strlen(n->str) != n->len) {
			conf_load_error(ctx, n, "a value contains a NUL character");
			n->kind = YNODE_BAD;
		}
		break;
	case YAML_ALIAS_EVENT:
		n = conf_load_node(YNODE_BAD, ev->start_mark);
		conf_load_error(ctx, n,
		    "YAML aliases (*%s) are not allowed in the configuration; write the value out",
		    (const char *)ev->data.alias.anchor);
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (*depth == CONF_MAX_DEPTH) {
			conf_load_error_at(ctx, (unsigned)ev->start_mark.line + 1,
			    (unsigned)ev->start_mark.column + 1,
			    "nested more than %d levels deep", CONF_MAX_DEPTH);
			return -1;
		}
		n = conf_load_node(ev->type == YAML_SEQUENCE_START_EVENT ? YNODE_SEQ : YNODE_MAP,
		    ev->start_mark);
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		HK_ASSERT(*depth > 0);
		(*depth)--;
		return 0;
	default:
		return 0;
	}
	if (*depth == 0) {
		HK_ASSERT(*doc == NULL);
		*doc = n;
	} else {
		conf_load_attach(stack[*depth - 1], n);
	}
	if (n->kind == YNODE_SEQ || n->kind == YNODE_MAP)
		stack[(*depth)++] = n;
	return 0;
}

int
conf_load_tree(struct conf_ctx *ctx, const char *text, size_t len, struct ynode **root)
{
	struct ynode *stack[CONF_MAX_DEPTH];
	struct ynode *doc = NULL;
	size_t depth = 0;
	unsigned docs = 0;
	yaml_parser_t p;
	int rc;

	*root = NULL;
	if (!yaml_parser_initialize(&p))
		hk_panic("libyaml: out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	do {
		yaml_event_t ev;

		if (!yaml_parser_parse(&p, &ev)) {
			conf_load_syntax_error(ctx, &p, text, len);
			rc = -1;
			break;
		}
		rc = conf_load_event(ctx, &ev, &doc, stack, &depth, &docs);
		yaml_event_delete(&ev);
	} while (rc == 0);
	yaml_parser_delete(&p);
	if (rc == -1) {
		conf_load_tree_free(doc);
		return -1;
	}
	*root = doc;
	return 0;
}

/* ---- entry points ---- */

int
conf_load_string(const char *name, const char *yaml, size_t len, bool check_files,
    struct conf **out, struct conf_diag *diag)
{
	struct conf_ctx ctx;
	struct conf_diag ediag;
	struct ynode *root = NULL;
	struct conf *c = xcalloc(1, sizeof(*c));
	bool explain_bad = false;

	*out = NULL;
	memset(&ctx, 0, sizeof(ctx));
	ctx.name = name;
	ctx.check_files = check_files;
	ctx.conf = c;
	buf_init(&ctx.path);
	c->path = xstrdup(name);
	if (conf_load_tree(&ctx, yaml, len, &root) == 0) {
		ctx.root = root;
		if (root == NULL || conf_load_is_null(root))
			conf_schema_apply(&ctx, NULL);
		else if (root->kind == YNODE_MAP)
			conf_schema_apply(&ctx, root);
		else if (root->kind != YNODE_BAD)
			conf_load_error(&ctx, root,
			    "the configuration must be a mapping of keys (key: value), not %s",
			    conf_load_kind_name(root));
	}
	conf_load_tree_free(root);
	buf_fini(&ctx.path);
	/* The explainer file reports its own FILE:LINE:COL problems after the configuration's. */
	conf_diag_init(&ediag);
	if (check_files && c->explain_path != NULL &&
	    conf_explain_load(c->explain_path, &c->explain_rows, &c->n_explain_rows, &ediag) == -1)
		explain_bad = true;
	if (ctx.n_msgs > 0 || explain_bad) {
		conf_load_flush(&ctx, diag);
		if (diag != NULL) {
			buf_append(&diag->text, ediag.text.ptr, ediag.text.len);
			diag->count += ediag.count;
		}
		conf_diag_fini(&ediag);
		conf_fini(c);
		free(c);
		return -1;
	}
	conf_diag_fini(&ediag);
	c->refs = 1;
	*out = c;
	return 0;
}

int
conf_load(const char *path, struct conf **out, struct conf_diag *diag)
{
	struct buf text = BUF_INIT;
	int fd, rc;

	*out = NULL;
	fd = fsops_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd == -1 || fsops_read_all(fd, &text, CONF_MAX_FILE) == -1) {
		int e = errno;

		if (fd != -1)
			fsops_close(fd);
		buf_fini(&text);
		if (diag != NULL) {
			if (e == EFBIG)
				buf_printf(&diag->text,
				    "%s:1:1: larger than %d bytes: not a configuration\n", path,
				    CONF_MAX_FILE);
			else
				buf_printf(&diag->text,
				    "%s:1:1: cannot read the configuration: %s\n", path,
				    strerror(e));
			diag->count++;
		}
		return -1;
	}
	fsops_close(fd);
	rc = conf_load_string(path, text.ptr != NULL ? text.ptr : "", text.len, true, out, diag);
	buf_fini(&text);
	return rc;
}
