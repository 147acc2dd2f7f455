/*
 * fuzz_header.c - the header helpers fed a message head: field lookup and RFC 2047 decoding.
 * Checks: the decoded value stays within its limit, holds no control byte, is NUL-terminated;
 * lookups never read past the input.
 */
#include <stdint.h>
#include <string.h>

#include "proto/header.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct buf v = BUF_INIT, out = BUF_INIT;
	size_t i, max = size % 64 + 4;

	HK_ASSERT(header_section_len(p, size) <= size);
	(void)header_has_field(p, size, "Message-ID");
	if (header_get_field(p, size, "Subject", &v))
		header_decode_words(v.ptr, v.len, 998, &out);
	header_decode_words(p, size, max, &out);
	HK_ASSERT(out.len <= max);
	for (i = 0; i < out.len; i++) {
		unsigned char c = (unsigned char)out.ptr[i];

		HK_ASSERT(c >= 0x20 && c != 0x7f);
	}
	HK_ASSERT(out.len == 0 || out.ptr[out.len] == '\0');
	buf_fini(&v);
	buf_fini(&out);
	return 0;
}
