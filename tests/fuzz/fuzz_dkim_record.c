/*
 * fuzz_dkim_record.c - the DKIM key record parser on any bytes, key decoding included.
 * Checks: a parsed, unrevoked key has a size; a reason for every refusal.
 */
#include <stdint.h>
#include <string.h>

#include "diag/dkim_record.h"
#include "util/common.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_record rec;
	const char *why = NULL;
	enum dkim_record_result r;

	r = dkim_record_parse((const char *)data, size, &rec, &why);
	if (r == DKIM_RECORD_BAD)
		HK_ASSERT(why != NULL);
	if (r == DKIM_RECORD_OK && !rec.revoked)
		HK_ASSERT(rec.bits > 0);
	return 0;
}
