/*
 * tmpl.c - message templates: parsing and {{variable}} substitution (see tmpl.h).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csv.h"
#include "tmpl.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

void
tmpl_init(struct tmpl *t)
{
	memset(t, 0, sizeof(*t));
	buf_init(&t->subject);
	buf_init(&t->body);
}

void
tmpl_fini(struct tmpl *t)
{
	size_t i;

	if (t == NULL)
		return;
	buf_fini(&t->subject);
	buf_fini(&t->body);
	for (i = 0; i < t->n_vars; i++)
		free(t->vars[i]);
	free(t->vars);
	memset(t, 0, sizeof(*t));
}

static bool
tmpl_is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '_' || c == '-';
}

/*
 * Match a reference at s[0..n) (s starts with "{{"). Returns its length and the name's place,
 * or 0 when it is not a well-formed reference.
 */
static size_t
tmpl_ref(const char *s, size_t n, size_t *name_off, size_t *name_len)
{
	size_t i = 2, start;

	while (i < n && s[i] == ' ')
		i++;
	start = i;
	while (i < n && tmpl_is_name_char(s[i]))
		i++;
	if (i == start || i - start > TMPL_NAME_MAX)
		return 0;
	*name_off = start;
	*name_len = i - start;
	while (i < n && s[i] == ' ')
		i++;
	if (n - i < 2 || s[i] != '}' || s[i + 1] != '}')
		return 0;
	return i + 2;
}

static void
tmpl_add_var(struct tmpl *t, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < t->n_vars; i++) {
		if (strlen(t->vars[i]) == len && memcmp(t->vars[i], name, len) == 0)
			return;
	}
	t->vars = xreallocarray(t->vars, t->n_vars + 1, sizeof(*t->vars));
	t->vars[t->n_vars++] = xstrndup(name, len);
}

/* Check the references of s[0..n) and collect their names; -1 with *line moved to the error. */
static int
tmpl_scan(struct tmpl *t, const char *s, size_t n, size_t *line, const char **why)
{
	size_t i, off, len, ref;

	for (i = 0; i < n; i++) {
		if (s[i] == '\n')
			(*line)++;
		if (s[i] != '{' || i + 1 >= n || s[i + 1] != '{')
			continue;
		ref = tmpl_ref(s + i, n - i, &off, &len);
		if (ref == 0) {
			*why = "\"{{\" must start a variable: {{name}} with letters, digits, _ or -";
			return -1;
		}
		tmpl_add_var(t, s + i + off, len);
		i += ref - 1;
	}
	return 0;
}

/* Copy p[0..n) to out without the CR of each CRLF. */
static void
tmpl_unix_lines(const char *p, size_t n, struct buf *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			continue;
		buf_putc(out, p[i]);
	}
}

static enum tmpl_result
tmpl_fail(struct tmpl *t, size_t *line, size_t at, const char **why, const char *reason)
{
	tmpl_fini(t);
	tmpl_init(t);
	*line = at;
	*why = reason;
	return TMPL_BAD;
}

enum tmpl_result
tmpl_parse(const char *p, size_t n, struct tmpl *t, size_t *line, const char **why)
{
	struct buf text = BUF_INIT;
	const char *nl, *s;
	size_t i, sn, at = 1;
	enum tmpl_result res = TMPL_OK;

	if (n > TMPL_SIZE_MAX)
		return tmpl_fail(t, line, 1, why, "template larger than 1 MiB");
	if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
		p += 3;
		n -= 3;
	}
	tmpl_unix_lines(p, n, &text);
	for (i = 0; i < text.len; i++) {
		unsigned char c = (unsigned char)text.ptr[i];

		if (c == '\n')
			at++;
		else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			res = tmpl_fail(t, line, at, why, "control byte in the template");
			goto out;
		}
	}
	if (!csv_is_utf8(text.ptr, text.len)) {
		res = tmpl_fail(t, line, 1, why, "malformed UTF-8 (save the template as UTF-8)");
		goto out;
	}
	nl = text.len ? memchr(text.ptr, '\n', text.len) : NULL;
	if (nl == NULL || text.len < 8 || strncasecmp(text.ptr, "Subject:", 8) != 0) {
		res = tmpl_fail(t, line, 1, why, "the first line must be \"Subject: ...\"");
		goto out;
	}
	s = text.ptr + 8;
	while (s < nl && (*s == ' ' || *s == '\t'))
		s++;
	sn = (size_t)(nl - s);
	while (sn > 0 && (s[sn - 1] == ' ' || s[sn - 1] == '\t'))
		sn--;
	if (sn == 0) {
		res = tmpl_fail(t, line, 1, why, "the subject is empty");
		goto out;
	}
	if ((size_t)(nl - text.ptr) + 1 >= text.len || nl[1] != '\n') {
		res = tmpl_fail(t, line, 2, why, "an empty line must follow the Subject: line");
		goto out;
	}
	buf_append(&t->subject, s, sn);
	buf_append(&t->body, nl + 2, text.len - (size_t)(nl + 2 - text.ptr));
	at = 1;
	if (tmpl_scan(t, t->subject.ptr, t->subject.len, &at, why) == -1) {
		res = tmpl_fail(t, line, 1, why, *why);
		goto out;
	}
	at = 3;
	if (tmpl_scan(t, t->body.ptr ? t->body.ptr : "", t->body.len, &at, why) == -1) {
		res = tmpl_fail(t, line, at, why, *why);
		goto out;
	}
	if (t->body.len == 0) {
		res = tmpl_fail(t, line, 3, why, "the body is empty");
		goto out;
	}
out:
	buf_fini(&text);
	return res;
}

/* May v be substituted where allowed newlines (the body) or not (the subject)? */
static bool
tmpl_value_is_ok(const char *v, bool newlines)
{
	for (; *v != '\0'; v++) {
		unsigned char c = (unsigned char)*v;

		if (c == '\t' || (c == '\n' && newlines))
			continue;
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static const char *
tmpl_var_name(const struct tmpl *t, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < t->n_vars; i++) {
		if (strlen(t->vars[i]) == len && memcmp(t->vars[i], name, len) == 0)
			return t->vars[i];
	}
	hk_panic("template variable missing from its own list");
}

static enum tmpl_result
tmpl_subst(const struct tmpl *t, const struct buf *src, bool newlines, tmpl_lookup_fn lookup,
    void *arg, struct buf *out, const char **name)
{
	const char *s = src->ptr ? src->ptr : "";
	size_t i = 0, n = src->len, off, len, ref;

	while (i < n) {
		const char *open = n - i >= 2 ? memmem(s + i, n - i, "{{", 2) : NULL;
		const char *var, *v;

		if (open == NULL) {
			buf_append(out, s + i, n - i);
			break;
		}
		buf_append(out, s + i, (size_t)(open - (s + i)));
		i = (size_t)(open - s);
		ref = tmpl_ref(s + i, n - i, &off, &len);
		HK_ASSERT(ref != 0); /* tmpl_parse checked every "{{" */
		var = tmpl_var_name(t, s + i + off, len);
		v = lookup(arg, var);
		*name = var;
		if (v == NULL)
			return TMPL_MISSING;
		if (!tmpl_value_is_ok(v, newlines))
			return TMPL_BAD_VALUE;
		buf_append_str(out, v);
		i += ref;
	}
	return TMPL_OK;
}

enum tmpl_result
tmpl_render(const struct tmpl *t, tmpl_lookup_fn lookup, void *arg, struct buf *subject,
    struct buf *body, const char **name)
{
	enum tmpl_result res;

	buf_reset(subject);
	buf_reset(body);
	*name = NULL;
	res = tmpl_subst(t, &t->subject, false, lookup, arg, subject, name);
	if (res != TMPL_OK)
		return res;
	return tmpl_subst(t, &t->body, true, lookup, arg, body, name);
}

void
tmpl_vars_list(const struct tmpl *t, struct buf *out)
{
	size_t i;

	for (i = 0; i < t->n_vars; i++) {
		if (i > 0)
			buf_append_str(out, ", ");
		buf_append_str(out, t->vars[i]);
	}
}
