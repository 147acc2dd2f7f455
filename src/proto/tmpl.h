/*
 * tmpl.h - message templates of `hikyaku announce`: a "Subject:" line, an empty line, then the
 * body, with {{variable}} references in both.
 *
 * A reference is "{{", optional spaces, a name of 1 to TMPL_NAME_MAX characters [A-Za-z0-9_-],
 * optional spaces, "}}". Any other "{{" is an error with its line, so a typo never reaches a
 * reader as literal braces. Templates are UTF-8; CRLF line ends are read as LF; the body keeps
 * its LF line ends (the API's MIME builder makes them CRLF).
 * Rendering substitutes values verbatim. A value used in the subject must not hold CR, LF or
 * other control bytes (tab allowed); a value in the body may hold LF and tab but no other
 * control byte.
 * Ownership: struct tmpl owns its copies; free it with tmpl_fini(). Pure. Thread: any.
 */
#ifndef HK_TMPL_H
#define HK_TMPL_H

#include <stddef.h>

#include "../util/buf.h"
#include "../util/common.h"

#define TMPL_NAME_MAX 64
#define TMPL_SIZE_MAX (1u << 20) /* a template larger than this is refused */

struct tmpl {
	struct buf subject; /* template text after "Subject:" and spaces */
	struct buf body;    /* template text after the empty line */
	char **vars;        /* distinct variable names, in order of first use */
	size_t n_vars;
};

enum tmpl_result {
	TMPL_OK = 0,
	TMPL_BAD,       /* parse: malformed template (*line, *why) */
	TMPL_MISSING,   /* render: no value for a variable (*name) */
	TMPL_BAD_VALUE, /* render: a value holds a byte its place does not allow (*name) */
};

void tmpl_init(struct tmpl *t);
void tmpl_fini(struct tmpl *t);

/*
 * Parse p[0..n) into t (initialised by the caller). On TMPL_BAD, *line (1-based) and *why (a
 * static string) say what is wrong and t is empty.
 */
enum tmpl_result tmpl_parse(const char *p, size_t n, struct tmpl *t, size_t *line,
    const char **why);

/* Value of variable name, or NULL when it has none. */
typedef const char *(*tmpl_lookup_fn)(void *arg, const char *name);

/*
 * Render t's subject and body into subject and body (both reset first) with values from
 * lookup. On TMPL_MISSING or TMPL_BAD_VALUE, *name is the variable (owned by t).
 */
enum tmpl_result tmpl_render(const struct tmpl *t, tmpl_lookup_fn lookup, void *arg,
    struct buf *subject, struct buf *body, const char **name);

/* The variable names as "a, b, c" appended to out. */
void tmpl_vars_list(const struct tmpl *t, struct buf *out);

#endif
