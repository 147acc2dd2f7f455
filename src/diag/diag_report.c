/*
 * diag_report.c - findings and their rendering.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../util/xalloc.h"
#include "diag_report.h"
#include "../util/poison.h"

const char *
diag_status_name(enum diag_status s)
{
	return s == DIAG_ERROR ? "error" : s == DIAG_WARNING ? "warning" : "ok";
}

void
diag_report_init(struct diag_report *r)
{
	memset(r, 0, sizeof(*r));
}

void
diag_report_fini(struct diag_report *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

void
diag_report_clear(struct diag_report *r)
{
	r->n = 0;
}

static void
diag_copy(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

void
diag_report_add(struct diag_report *r, const char *check, const char *key, enum diag_status status,
    const char *fmt, ...)
{
	struct diag_finding *f;
	va_list ap;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->v = xreallocarray(r->v, r->cap, sizeof(*r->v));
	}
	f = &r->v[r->n++];
	memset(f, 0, sizeof(*f));
	diag_copy(f->check, sizeof(f->check), check);
	diag_copy(f->key, sizeof(f->key), key);
	f->status = status;
	va_start(ap, fmt);
	vsnprintf(f->text, sizeof(f->text), fmt, ap);
	va_end(ap);
}

void
diag_report_fix(struct diag_report *r, const char *fmt, ...)
{
	va_list ap;

	HK_ASSERT(r->n > 0);
	va_start(ap, fmt);
	vsnprintf(r->v[r->n - 1].fix, sizeof(r->v[r->n - 1].fix), fmt, ap);
	va_end(ap);
}

const struct diag_finding *
diag_report_find(const struct diag_report *r, const char *key)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		if (strcmp(r->v[i].key, key) == 0)
			return &r->v[i];
	}
	return NULL;
}

enum diag_status
diag_report_worst(const struct diag_report *r)
{
	enum diag_status w = DIAG_OK;
	size_t i;

	for (i = 0; i < r->n; i++) {
		if (r->v[i].status > w)
			w = r->v[i].status;
	}
	return w;
}

size_t
diag_report_count(const struct diag_report *r, enum diag_status s)
{
	size_t i, n = 0;

	for (i = 0; i < r->n; i++)
		n += r->v[i].status == s;
	return n;
}

void
diag_report_text(const struct diag_report *r, struct buf *out)
{
	size_t i;

	buf_printf(out, "DNS checks for %s", r->domain);
	if (r->selector[0] != '\0')
		buf_printf(out, " (DKIM selector %s)", r->selector);
	for (i = 0; i < r->n_ips; i++)
		buf_printf(out, "%s%s", i == 0 ? ", sending IP " : ", ", r->ips[i]);
	buf_printf(out, ": %zu ok, %zu warning%s, %zu error%s\n", diag_report_count(r, DIAG_OK),
	    diag_report_count(r, DIAG_WARNING), diag_report_count(r, DIAG_WARNING) == 1 ? "" : "s",
	    diag_report_count(r, DIAG_ERROR), diag_report_count(r, DIAG_ERROR) == 1 ? "" : "s");
	for (i = 0; i < r->n; i++) {
		const struct diag_finding *f = &r->v[i];

		buf_printf(out, "%-8s %-10s %s\n", f->status == DIAG_OK ? "ok" :
		    f->status == DIAG_WARNING ? "WARNING" : "ERROR", f->check, f->text);
		if (f->fix[0] != '\0')
			buf_printf(out, "%-8s %-10s fix: %s\n", "", "", f->fix);
	}
}

void
diag_report_json(const struct diag_report *r, struct buf *out)
{
	json_t *o = json_object(), *ips = json_array(), *fs = json_array();
	char *s;
	size_t i;

	for (i = 0; i < r->n_ips; i++)
		json_array_append_new(ips, json_string(r->ips[i]));
	for (i = 0; i < r->n; i++) {
		const struct diag_finding *f = &r->v[i];

		json_array_append_new(fs, json_pack("{s:s,s:s,s:s,s:s,s:s}", "check", f->check,
		    "key", f->key, "status", diag_status_name(f->status), "text", f->text,
		    "fix", f->fix));
	}
	json_object_set_new(o, "domain", json_string(r->domain));
	json_object_set_new(o, "selector", r->selector[0] ? json_string(r->selector) : json_null());
	json_object_set_new(o, "ips", ips);
	json_object_set_new(o, "status", json_string(diag_status_name(diag_report_worst(r))));
	json_object_set_new(o, "counts", json_pack("{s:I,s:I,s:I}",
	    "ok", (json_int_t)diag_report_count(r, DIAG_OK),
	    "warning", (json_int_t)diag_report_count(r, DIAG_WARNING),
	    "error", (json_int_t)diag_report_count(r, DIAG_ERROR)));
	json_object_set_new(o, "findings", fs);
	s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (s == NULL)
		hk_panic("json_dumps failed");
	buf_append_str(out, s);
	free(s);
}
