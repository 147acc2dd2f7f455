/*
 * conf_explain.c - explainer files (etc/explain.yaml format) into struct explain_entry rows.
 *
 * The YAML tree, positions and diagnostics are the configuration loader's (conf_int.h), so an
 * explainer file reports problems exactly like the configuration does. Only the header of
 * proto/explain.h is used (types, flag bits, names): conf does not link against proto.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "../util/fsops.h"
#include "../util/log.h"
#include "../util/num.h"
#include "../util/xalloc.h"
#include "conf_explain.h"
#include "conf_int.h"
#include "../util/poison.h"

/* Longer ids, patterns or texts are a mistake, not an explanation. */
#define CONF_EXPLAIN_MAX_ID 64
#define CONF_EXPLAIN_MAX_PATTERN 200
#define CONF_EXPLAIN_MAX_TEXT 1000

static const char *const conf_explain_keys[] = {
	"id", "code", "enhanced", "pattern", "local", "culprit", "cause", "fix", "flags",
};

/* One entry's walk: where it is ("entries[3]") and what was written. */
struct conf_explain_item {
	struct conf_ctx *ctx;
	const struct ynode *map;
	size_t index;
	bool bad; /* a problem was reported for this entry */
};

/*
 * Record a problem of entry it at `at` as "entries[I].KEY: message"; fmt holds at most one %s
 * for arg, which callers quote with log_q() when it is the file's own text.
 */
static void
conf_explain_fail(struct conf_explain_item *it, const struct ynode *at, const char *key,
    const char *fmt, const char *arg)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, fmt, arg != NULL ? arg : "");
	conf_load_error(it->ctx, at, "entries[%zu]%s%s: %s", it->index, key ? "." : "",
	    key ? key : "", b.ptr);
	buf_fini(&b);
	it->bad = true;
}

/* The text of key's scalar value, NULL when absent or after a diagnostic. */
static const char *
conf_explain_scalar(struct conf_explain_item *it, const char *key, size_t max)
{
	const struct ynode *v = conf_load_map_get(it->map, key);
	const char *s;

	if (v == NULL || v->kind == YNODE_BAD)
		return NULL;
	if (v->kind != YNODE_SCALAR) {
		conf_explain_fail(it, v, key, "expected a single value, got %s",
		    conf_load_kind_name(v));
		return NULL;
	}
	if (conf_load_is_null(v) || v->len == 0) {
		conf_explain_fail(it, v, key, "needs a value (or leave the key out)", NULL);
		return NULL;
	}
	for (s = v->str; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f) {
			conf_explain_fail(it, v, key, "contains a control character", NULL);
			return NULL;
		}
	}
	if (v->len > max) {
		conf_explain_fail(it, v, key, "%s", max == CONF_EXPLAIN_MAX_ID ?
		    "longer than 64 bytes" : max == CONF_EXPLAIN_MAX_PATTERN ?
		    "longer than 200 bytes" : "longer than 1000 bytes");
		return NULL;
	}
	return v->str;
}

static bool
conf_explain_is_id(const char *s)
{
	if (*s == '\0' || *s == '-')
		return false;
	for (; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
			return false;
	}
	return true;
}

/* 400..599 exactly, or a class "4xx"/"5xx" (stored as 4 or 5); -1 when neither. */
static int
conf_explain_code(const char *s)
{
	uint64_t v;

	if (strlen(s) == 3 && (s[0] == '4' || s[0] == '5') && (s[1] == 'x' || s[1] == 'X') &&
	    (s[2] == 'x' || s[2] == 'X'))
		return s[0] - '0';
	if (num_parse_u64(s, strlen(s), 599, &v) == -1 || v < 400)
		return -1;
	return (int)v;
}

/*
 * An enhanced-code glob is three dot-separated parts of digits, '?' and '*' (RFC 3463: class
 * 2, 4 or 5, subject and detail up to three digits), so it can match some "c.s.d".
 */
static bool
conf_explain_is_enhanced(const char *s)
{
	size_t part = 0, len = 0;

	if (!(s[0] == '2' || s[0] == '4' || s[0] == '5' || s[0] == '?' || s[0] == '*') ||
	    s[1] != '.')
		return false;
	for (s += 2; ; s++) {
		if (*s == '.' || *s == '\0') {
			if (len == 0 || len > 3)
				return false;
			if (*s == '\0')
				return part == 1;
			if (++part > 1)
				return false;
			len = 0;
			continue;
		}
		if (!((*s >= '0' && *s <= '9') || *s == '?' || *s == '*'))
			return false;
		len++;
	}
}

/* Why a text pattern can never match as meant, or NULL when it is fine. */
static const char *
conf_explain_pattern_why(const char *s)
{
	size_t n = strlen(s), i;
	bool word = false;

	if (s[0] == ' ' || s[n - 1] == ' ')
		return "starts or ends with a blank (blanks match between words only)";
	for (i = 0; i < n; i++) {
		if (s[i] == ' ' && s[i + 1] == ' ')
			return "has two blanks in a row (one blank already matches any run of "
			       "blanks and line breaks; two never match)";
		if (s[i] == '\t')
			return "contains a tab (write one blank)";
		if (s[i] != ' ' && s[i] != '*' && s[i] != '?')
			word = true;
	}
	if (!word)
		return "matches every reply (it needs at least one letter or digit)";
	return NULL;
}

static bool
conf_explain_bool(struct conf_explain_item *it, const char *key)
{
	const char *s = conf_explain_scalar(it, key, CONF_EXPLAIN_MAX_ID);

	if (s == NULL)
		return false;
	if (strcmp(s, "true") == 0)
		return true;
	if (strcmp(s, "false") != 0)
		conf_explain_fail(it, conf_load_map_get(it->map, key), key,
		    "%s is not true or false", log_q(s));
	return false;
}

static void
conf_explain_culprit(struct conf_explain_item *it, struct explain_entry *e)
{
	const char *s = conf_explain_scalar(it, "culprit", CONF_EXPLAIN_MAX_ID);
	unsigned c;

	if (s == NULL) {
		if (conf_load_map_get(it->map, "culprit") == NULL)
			conf_explain_fail(it, it->map, NULL, "missing required key \"culprit\"",
			    NULL);
		return;
	}
	for (c = 0; c < EXPLAIN_CULPRIT_COUNT; c++) {
		if (strcmp(s, explain_culprit_name((enum explain_culprit)c)) == 0) {
			e->culprit = (enum explain_culprit)c;
			return;
		}
	}
	conf_explain_fail(it, conf_load_map_get(it->map, "culprit"), "culprit",
	    "%s is not a culprit (recipient, sender_config, provider_limit, reputation, content, "
	    "network, tls, auth or unknown)", log_q(s));
}

static void
conf_explain_flags(struct conf_explain_item *it, struct explain_entry *e)
{
	const struct ynode *v = conf_load_map_get(it->map, "flags");
	size_t i;
	unsigned f;

	if (v == NULL || v->kind == YNODE_BAD || conf_load_is_null(v))
		return;
	if (v->kind != YNODE_SEQ) {
		conf_explain_fail(it, v, "flags", "expected a list ([retry_helps, quota]), got %s",
		    conf_load_kind_name(v));
		return;
	}
	for (i = 0; i < v->n; i++) {
		const struct ynode *x = v->items[i];

		if (x->kind != YNODE_SCALAR) {
			if (x->kind != YNODE_BAD)
				conf_explain_fail(it, x, "flags", "expected a flag name, got %s",
				    conf_load_kind_name(x));
			continue;
		}
		for (f = 0; f < EXPLAIN_FLAG_COUNT; f++) {
			if (strcmp(x->str, explain_flag_name(f)) == 0)
				break;
		}
		if (f == EXPLAIN_FLAG_COUNT) {
			conf_explain_fail(it, x, "flags", "%s is not a flag (retry_helps, "
			    "other_upstream_helps, quota or suppress)", log_q(x->str));
			continue;
		}
		e->flags |= 1u << f;
	}
}

/* Free-text keys: required, copied. */
static const char *
conf_explain_text(struct conf_explain_item *it, const char *key)
{
	const char *s = conf_explain_scalar(it, key, CONF_EXPLAIN_MAX_TEXT);

	if (s == NULL && conf_load_map_get(it->map, key) == NULL)
		conf_explain_fail(it, it->map, NULL, "missing required key \"%s\"", key);
	return s != NULL ? xstrdup(s) : NULL;
}

static void
conf_explain_unknown_keys(struct conf_explain_item *it)
{
	size_t i, k;

	for (i = 0; i + 1 < it->map->n; i += 2) {
		const struct ynode *key = it->map->items[i];

		if (key->kind != YNODE_SCALAR) {
			if (key->kind != YNODE_BAD)
				conf_explain_fail(it, key, NULL, "keys must be plain words", NULL);
			continue;
		}
		for (k = 0; k < HK_ARRAY_LEN(conf_explain_keys); k++) {
			if (strcmp(key->str, conf_explain_keys[k]) == 0)
				break;
		}
		if (k == HK_ARRAY_LEN(conf_explain_keys))
			conf_explain_fail(it, key, NULL, "unknown key %s (known keys: id, code, "
			    "enhanced, pattern, local, culprit, cause, fix, flags)", log_q(key->str));
	}
}

/* Rules that span keys; the same the unit tests hold the compiled-in table to. */
static void
conf_explain_check_row(struct conf_explain_item *it, const struct explain_entry *e)
{
	if (e->local && (e->code != 0 || e->enhanced != NULL || e->pattern != NULL))
		conf_explain_fail(it, conf_load_map_get(it->map, "local"), "local",
		    "a local entry (a failure without a reply) cannot have code, enhanced or "
		    "pattern", NULL);
	if (!e->local && e->code == 0 && e->enhanced == NULL && e->pattern == NULL &&
	    !it->bad)
		conf_explain_fail(it, it->map, NULL, "an entry needs code, enhanced or pattern "
		    "(or local: true); without them it matches nothing", NULL);
	if (e->code != 0 && e->enhanced != NULL && e->enhanced[0] >= '0' &&
	    e->enhanced[0] <= '9' && e->enhanced[0] - '0' != (e->code >= 100 ? e->code / 100 :
	    e->code))
		conf_explain_fail(it, conf_load_map_get(it->map, "enhanced"), "enhanced",
		    "the class of %s disagrees with code, so the entry could never match",
		    log_q(e->enhanced));
	if ((e->flags & EXPLAIN_QUOTA) != 0 && (e->flags & EXPLAIN_OTHER_UPSTREAM_HELPS) == 0)
		conf_explain_fail(it, conf_load_map_get(it->map, "flags"), "flags",
		    "quota pauses the upstream and sends through the next one: it needs "
		    "other_upstream_helps too", NULL);
	if ((e->flags & EXPLAIN_SUPPRESS) != 0 && e->culprit != EXPLAIN_CULPRIT_RECIPIENT)
		conf_explain_fail(it, conf_load_map_get(it->map, "flags"), "flags",
		    "suppress is for hard bounces of an address: it needs culprit: recipient", NULL);
}

static void
conf_explain_row(struct conf_explain_item *it, struct explain_entry *e)
{
	const char *s;

	conf_explain_unknown_keys(it);
	s = conf_explain_scalar(it, "id", CONF_EXPLAIN_MAX_ID);
	if (s != NULL && !conf_explain_is_id(s))
		conf_explain_fail(it, conf_load_map_get(it->map, "id"), "id",
		    "%s is not an id (lower-case letters, digits and '-')", log_q(s));
	else if (s == NULL && conf_load_map_get(it->map, "id") == NULL)
		conf_explain_fail(it, it->map, NULL, "missing required key \"id\"", NULL);
	e->id = xstrdup(s != NULL ? s : "");
	s = conf_explain_scalar(it, "code", CONF_EXPLAIN_MAX_ID);
	if (s != NULL && (e->code = conf_explain_code(s)) == -1) {
		e->code = 0;
		conf_explain_fail(it, conf_load_map_get(it->map, "code"), "code",
		    "%s is not a failure reply code (400..599, 4xx or 5xx)", log_q(s));
	}
	s = conf_explain_scalar(it, "enhanced", CONF_EXPLAIN_MAX_ID);
	if (s != NULL && !conf_explain_is_enhanced(s))
		conf_explain_fail(it, conf_load_map_get(it->map, "enhanced"), "enhanced",
		    "%s is not an enhanced status code glob (like \"5.7.26\", \"5.6.*\" or "
		    "\"?.2.2\")", log_q(s));
	else if (s != NULL)
		e->enhanced = xstrdup(s);
	s = conf_explain_scalar(it, "pattern", CONF_EXPLAIN_MAX_PATTERN);
	if (s != NULL) {
		const char *why = conf_explain_pattern_why(s);

		if (why != NULL)
			conf_explain_fail(it, conf_load_map_get(it->map, "pattern"), "pattern",
			    "%s", why);
		else
			e->pattern = xstrdup(s);
	}
	e->local = conf_explain_bool(it, "local");
	conf_explain_culprit(it, e);
	e->cause = conf_explain_text(it, "cause");
	e->fix = conf_explain_text(it, "fix");
	conf_explain_flags(it, e);
	conf_explain_check_row(it, e);
}

/* Report ids used twice in the file (a file may reuse a built-in id: that overrides it). */
static void
conf_explain_check_ids(struct conf_ctx *ctx, const struct ynode *seq,
    const struct explain_entry *rows, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (rows[i].id[0] == '\0')
			continue;
		for (j = 0; j < i; j++) {
			const struct ynode *at, *first;

			if (strcmp(rows[i].id, rows[j].id) != 0)
				continue;
			at = conf_load_map_get(seq->items[i], "id");
			first = conf_load_map_get(seq->items[j], "id");
			conf_load_error(ctx, at, "entries[%zu].id: duplicate id %s (first at %u:%u)",
			    i, log_q(rows[i].id), first->line, first->col);
			break;
		}
	}
}

/* Walk the document root into rows; problems go to ctx. */
static void
conf_explain_walk(struct conf_ctx *ctx, const struct ynode *root, struct explain_entry **rows,
    size_t *n)
{
	const struct ynode *seq;
	size_t i;

	if (root == NULL || conf_load_is_null(root)) {
		conf_load_error(ctx, root, "an explainer file needs \"entries:\" with a list of "
		    "entries (see etc/explain.yaml)");
		return;
	}
	if (root->kind != YNODE_MAP) {
		if (root->kind != YNODE_BAD)
			conf_load_error(ctx, root, "an explainer file must be a mapping with "
			    "\"entries:\", not %s", conf_load_kind_name(root));
		return;
	}
	for (i = 0; i + 1 < root->n; i += 2) {
		const struct ynode *key = root->items[i];

		if (key->kind == YNODE_SCALAR && strcmp(key->str, "entries") != 0)
			conf_load_error(ctx, key, "unknown key %s at the top level (known keys: "
			    "entries)", log_q(key->str));
	}
	seq = conf_load_map_get(root, "entries");
	if (seq == NULL) {
		conf_load_error(ctx, root, "missing required key \"entries\" at the top level");
		return;
	}
	if (seq->kind == YNODE_BAD || conf_load_is_null(seq))
		return;
	if (seq->kind != YNODE_SEQ) {
		conf_load_error(ctx, seq, "entries: expected a list of entries, got %s",
		    conf_load_kind_name(seq));
		return;
	}
	*rows = seq->n > 0 ? xcalloc(seq->n, sizeof(**rows)) : NULL;
	*n = seq->n;
	for (i = 0; i < seq->n; i++) {
		struct conf_explain_item it = { .ctx = ctx, .map = seq->items[i], .index = i };

		if (it.map->kind != YNODE_MAP) {
			(*rows)[i].id = xstrdup("");
			if (it.map->kind != YNODE_BAD)
				conf_load_error(ctx, it.map, "entries[%zu]: expected a mapping "
				    "(id: ..., culprit: ..., cause: ..., fix: ...), got %s", i,
				    conf_load_kind_name(it.map));
			continue;
		}
		conf_explain_row(&it, &(*rows)[i]);
	}
	conf_explain_check_ids(ctx, seq, *rows, *n);
}

int
conf_explain_load_string(const char *name, const char *yaml, size_t len,
    struct explain_entry **rows, size_t *n, struct conf_diag *diag)
{
	struct conf_ctx ctx;
	struct ynode *root = NULL;

	*rows = NULL;
	*n = 0;
	memset(&ctx, 0, sizeof(ctx));
	ctx.name = name;
	buf_init(&ctx.path);
	if (conf_load_tree(&ctx, yaml, len, &root) == 0)
		conf_explain_walk(&ctx, root, rows, n);
	conf_load_tree_free(root);
	buf_fini(&ctx.path);
	if (ctx.n_msgs > 0) {
		conf_load_flush(&ctx, diag);
		conf_explain_free(*rows, *n);
		*rows = NULL;
		*n = 0;
		return -1;
	}
	return 0;
}

int
conf_explain_load(const char *path, struct explain_entry **rows, size_t *n,
    struct conf_diag *diag)
{
	struct buf text = BUF_INIT;
	int fd, rc;

	*rows = NULL;
	*n = 0;
	fd = fsops_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd == -1 || fsops_read_all(fd, &text, CONF_EXPLAIN_MAX_FILE) == -1) {
		int e = errno;

		if (fd != -1)
			fsops_close(fd);
		buf_fini(&text);
		if (diag != NULL) {
			buf_printf(&diag->text, "%s:1:1: cannot read the explainer file: %s\n",
			    path, e == EFBIG ? "larger than 1 MiB" : strerror(e));
			diag->count++;
		}
		return -1;
	}
	fsops_close(fd);
	rc = conf_explain_load_string(path, text.ptr != NULL ? text.ptr : "", text.len, rows, n,
	    diag);
	buf_fini(&text);
	return rc;
}

void
conf_explain_free(struct explain_entry *rows, size_t n)
{
	size_t i;

	if (rows == NULL)
		return;
	/* The rows' strings are const for their readers; this loader allocated every one. */
	for (i = 0; i < n; i++) {
		free((char *)rows[i].id);
		free((char *)rows[i].enhanced);
		free((char *)rows[i].pattern);
		free((char *)rows[i].cause);
		free((char *)rows[i].fix);
	}
	free(rows);
}
