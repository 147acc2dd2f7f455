/*
 * diag_facts.c - the answer store of one check run.
 */
#include <stdlib.h>
#include <string.h>

#include "../util/str.h"
#include "../util/xalloc.h"
#include "diag_facts.h"
#include "../util/poison.h"

void
diag_facts_init(struct diag_facts *fs)
{
	memset(fs, 0, sizeof(*fs));
}

static void
diag_fact_vals_free(struct diag_fact *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		free(f->vals[i]);
	free(f->vals);
	f->vals = NULL;
	f->n = 0;
}

void
diag_facts_fini(struct diag_facts *fs)
{
	size_t i;

	for (i = 0; i < fs->n; i++)
		diag_fact_vals_free(&fs->v[i]);
	free(fs->v);
	memset(fs, 0, sizeof(*fs));
}

struct diag_fact *
diag_facts_slot(struct diag_facts *fs, enum diag_fact_type type, const char *name)
{
	struct diag_fact *f;
	char lower[DNS_NAME_MAX];
	size_t i, n = strnlen(name, sizeof(lower) - 1);

	memcpy(lower, name, n);
	lower[n] = '\0';
	if (n > 1 && lower[n - 1] == '.')
		lower[n - 1] = '\0';
	str_lower(lower);
	for (i = 0; i < fs->n; i++) {
		if (fs->v[i].type == type && strcmp(fs->v[i].name, lower) == 0)
			return &fs->v[i];
	}
	if (fs->n == fs->cap) {
		fs->cap = fs->cap ? fs->cap * 2 : 32;
		fs->v = xreallocarray(fs->v, fs->cap, sizeof(*fs->v));
	}
	f = &fs->v[fs->n++];
	memset(f, 0, sizeof(*f));
	f->type = type;
	memcpy(f->name, lower, sizeof(f->name));
	return f;
}

const struct diag_fact *
diag_facts_get(struct diag_facts *fs, enum diag_fact_type type, const char *name)
{
	struct diag_fact *f = diag_facts_slot(fs, type, name);

	if (!f->done && fs->frozen) {
		f->done = true;
		f->status = DNS_TEMPFAIL;
		memcpy(f->why, "not looked up: too many lookups in one check",
		    sizeof("not looked up: too many lookups in one check"));
	}
	return f->done ? f : NULL;
}

void
diag_facts_set(struct diag_facts *fs, enum diag_fact_type type, const char *name,
    enum dns_status status, const char *const *vals, size_t n)
{
	struct diag_fact *f = diag_facts_slot(fs, type, name);
	size_t i;

	diag_fact_vals_free(f);
	f->done = true;
	f->status = status;
	f->vals = xcalloc(n ? n : 1, sizeof(*f->vals));
	for (i = 0; i < n; i++)
		f->vals[i] = xstrdup(vals[i]);
	f->n = n;
}

size_t
diag_facts_wanted(const struct diag_facts *fs)
{
	size_t i, n = 0;

	for (i = 0; i < fs->n; i++)
		n += !fs->v[i].done && !fs->v[i].asked;
	return n;
}
