/*
 * conf_int.h - private to src/conf: the YAML node tree, the load context and the helpers the
 * loader (conf_load.c), the schema (conf_schema.c) and the checks share.
 *
 * The loader turns libyaml events into a small tree of ynodes (aliases rejected, positions
 * kept), then the schema table walks it into a struct conf. Diagnostics are collected with their
 * positions and sorted by position before they reach the caller.
 * Ownership: the tree and the context belong to one conf_load_string() call.
 * Thread: whichever thread calls conf_load().
 */
#ifndef HK_CONF_INT_H
#define HK_CONF_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/buf.h"
#include "../util/common.h"
#include "conf.h"

enum ynode_kind {
	YNODE_SCALAR,
	YNODE_SEQ,
	YNODE_MAP,
	YNODE_BAD, /* an alias or other rejected node, already diagnosed: skipped silently */
};

struct ynode {
	enum ynode_kind kind;
	unsigned line, col; /* 1-based */
	bool plain;         /* scalar written without quotes */
	char *str;          /* scalar text, NUL-terminated */
	size_t len;
	struct ynode **items; /* seq: the items; map: key, value, key, value ... */
	size_t n;             /* seq: items; map: pairs */
};

struct conf_msg {
	unsigned line, col;
	unsigned seq; /* order of discovery, for a stable sort */
	char *text;
};

struct conf_ctx {
	const char *name; /* file name for diagnostics */
	bool check_files;
	struct conf *conf;
	const struct ynode *root; /* NULL for an empty document */
	struct buf path;          /* where the walk is: "listen[1].tls" */
	struct conf_msg *msgs;
	size_t n_msgs;
};

/* Record a diagnostic at node (NULL: 1:1). */
HK_PRINTF(3, 4) void conf_load_error(struct conf_ctx *ctx, const struct ynode *at,
    const char *fmt, ...);
/* Same, prefixed by the current path ("limits.max_line: "). */
HK_PRINTF(3, 4) void conf_load_value_error(struct conf_ctx *ctx, const struct ynode *at,
    const char *fmt, ...);
/* Record a diagnostic at a line and column. */
HK_PRINTF(4, 5) void conf_load_error_at(struct conf_ctx *ctx, unsigned line, unsigned col,
    const char *fmt, ...);

/*
 * Sort ctx's diagnostics by position, append them to diag (may be NULL) as "NAME:LINE:COL:
 * message" lines and free them.
 */
void conf_load_flush(struct conf_ctx *ctx, struct conf_diag *diag);
/*
 * Parse text into a tree. Syntax errors, aliases and extra documents become diagnostics.
 * Returns 0 with *root (NULL for an empty document) or -1 when the tree is unusable.
 */
HK_MUST_CHECK int conf_load_tree(struct conf_ctx *ctx, const char *text, size_t len,
    struct ynode **root);
void conf_load_tree_free(struct ynode *n);
/* The value of key in map, or NULL (also when map is not a mapping). */
const struct ynode *conf_load_map_get(const struct ynode *map, const char *key);
/* Item i of a sequence, or NULL. */
const struct ynode *conf_load_seq_item(const struct ynode *seq, size_t i);
/* True for a plain empty, "~" or "null" scalar. */
bool conf_load_is_null(const struct ynode *n);
/* "a string", "a list", "a mapping", "nothing". */
const char *conf_load_kind_name(const struct ynode *n);

/* Walk root (a mapping or NULL) into ctx->conf, applying defaults and every check. */
void conf_schema_apply(struct conf_ctx *ctx, const struct ynode *root);

/* Free every field of c (not c itself); used for failed loads and at refcount zero. */
void conf_fini(struct conf *c);

/* Hostname syntax (RFC 1123 labels, 1..253 bytes, no trailing dot). */
bool conf_net_is_hostname(const char *s);
/* A numeric IPv4 or IPv6 address (no brackets). */
bool conf_net_is_ip(const char *s);

#endif
