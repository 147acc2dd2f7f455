/*
 * fuzz_spf.c - the SPF record parser and the lookup counter on any bytes.
 * Checks: a parsed record has at most SPF_MAX_TERMS terms, NUL-terminated domains, prefixes
 * within range; the lookup count never exceeds the terms plus redirect.
 */
#include <stdint.h>
#include <string.h>

#include "diag/spf.h"
#include "util/common.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct spf_record rec;
	const char *why = NULL;
	size_t off = 0, i;
	enum spf_parse_result r;

	r = spf_parse((const char *)data, size, &rec, &why, &off);
	HK_ASSERT(off <= size);
	if (r != SPF_PARSE_OK) {
		HK_ASSERT(why != NULL);
		return 0;
	}
	HK_ASSERT(rec.n <= SPF_MAX_TERMS);
	HK_ASSERT(spf_record_lookups(&rec) <= rec.n + 1);
	HK_ASSERT(memchr(rec.redirect, '\0', sizeof(rec.redirect)) != NULL);
	for (i = 0; i < rec.n; i++) {
		const struct spf_term *t = &rec.terms[i];

		HK_ASSERT(memchr(t->domain, '\0', sizeof(t->domain)) != NULL);
		HK_ASSERT(t->prefix <= 128 && t->prefix6 <= 128);
		HK_ASSERT(t->qual == '+' || t->qual == '-' || t->qual == '~' || t->qual == '?');
		(void)spf_term_has_ip(t, data, size >= 16);
	}
	return 0;
}
