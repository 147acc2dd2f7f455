/*
 * fuzz_dmarc.c - the DMARC record parser (and the tag-list reader under it) on any bytes.
 * Checks: pct within 0..100, rua NUL-terminated, a reason for every refusal.
 */
#include <stdint.h>
#include <string.h>

#include "diag/dmarc.h"
#include "util/common.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_record rec;
	const char *why = NULL;
	enum dmarc_parse_result r;

	r = dmarc_parse((const char *)data, size, &rec, &why);
	if (r != DMARC_PARSE_OK) {
		HK_ASSERT(why != NULL);
		return 0;
	}
	HK_ASSERT(rec.pct <= 100);
	HK_ASSERT(memchr(rec.rua, '\0', sizeof(rec.rua)) != NULL);
	HK_ASSERT(dmarc_policy_name(rec.p) != NULL);
	return 0;
}
