/*
 * fuzz_tmpl.c - the template parser and renderer fed arbitrary bytes.
 * Checks: a parsed template renders with every variable set; the subject holds no CR or LF;
 * a variable left out is reported by name; a refused template leaves nothing behind.
 */
#include <stdint.h>
#include <string.h>

#include "proto/tmpl.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *
fuzz_all_cb(void *arg, const char *name)
{
	(void)arg;
	return name;
}

static const char *
fuzz_none_cb(void *arg, const char *name)
{
	(void)arg;
	(void)name;
	return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tmpl t;
	struct buf subj = BUF_INIT, body = BUF_INIT;
	size_t line = 0;
	const char *why = NULL, *name = NULL;

	tmpl_init(&t);
	if (tmpl_parse((const char *)data, size, &t, &line, &why) != TMPL_OK) {
		HK_ASSERT(why != NULL && line >= 1 && t.n_vars == 0);
		tmpl_fini(&t);
		return 0;
	}
	HK_ASSERT(tmpl_render(&t, fuzz_all_cb, NULL, &subj, &body, &name) == TMPL_OK);
	HK_ASSERT(subj.len > 0 && memchr(subj.ptr, '\n', subj.len) == NULL);
	HK_ASSERT(memchr(subj.ptr, '\r', subj.len) == NULL);
	if (t.n_vars > 0) {
		HK_ASSERT(tmpl_render(&t, fuzz_none_cb, NULL, &subj, &body, &name) == TMPL_MISSING);
		HK_ASSERT(name != NULL);
	}
	tmpl_fini(&t);
	buf_fini(&subj);
	buf_fini(&body);
	return 0;
}
