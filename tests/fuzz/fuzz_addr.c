/*
 * fuzz_addr.c - mailbox and domain parser. The first byte picks the flags. Checks: parts lie
 * inside the input and within RFC limits; UTF-8 only when allowed; flags match the bytes.
 */
#include <stdint.h>
#include <string.h>

#include "proto/addr.h"
#include "util/common.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1, *why = NULL;
	struct addr_parts p;
	unsigned flags;
	size_t len, i;
	bool lit, hi = false;

	if (size < 1)
		return 0;
	flags = data[0] & (ADDR_ALLOW_UTF8 | ADDR_ALLOW_NO_DOMAIN | ADDR_ALLOW_UNDERSCORE);
	len = size - 1;
	for (i = 0; i < len; i++)
		hi |= (unsigned char)s[i] >= 0x80;
	if (addr_parse(s, len, flags, &p, &why) == ADDR_OK) {
		HK_ASSERT(p.local == s && p.local_len > 0);
		HK_ASSERT(memchr(s, '\0', len) == NULL && memchr(s, '\r', len) == NULL);
		HK_ASSERT(memchr(s, '\n', len) == NULL);
		HK_ASSERT(p.has_utf8 == hi);
		HK_ASSERT(!hi || (flags & ADDR_ALLOW_UTF8));
		if (p.domain == NULL) {
			HK_ASSERT(flags & ADDR_ALLOW_NO_DOMAIN);
			HK_ASSERT(p.local_len == 10 && p.local_len == len);
		} else {
			HK_ASSERT(len <= 254 && p.local_len <= 64);
			HK_ASSERT(p.domain == s + p.local_len + 1 && s[p.local_len] == '@');
			HK_ASSERT(p.domain + p.domain_len == s + len && p.domain_len > 0);
			HK_ASSERT(p.domain_literal == (p.domain[0] == '['));
			HK_ASSERT(memchr(p.domain, '_', p.domain_len) == NULL);
		}
		HK_ASSERT(p.has_percent == (memchr(s, '%', p.local_len) != NULL));
		HK_ASSERT(p.has_bang == (memchr(s, '!', p.local_len) != NULL));
	} else {
		HK_ASSERT(why != NULL);
	}
	why = NULL;
	if (addr_parse_domain(s, len, flags, &lit, &why) == ADDR_OK) {
		HK_ASSERT(len > 0 && len <= 255);
		HK_ASSERT(lit == (s[0] == '['));
		HK_ASSERT(!hi || (flags & ADDR_ALLOW_UTF8));
		HK_ASSERT(memchr(s, '@', len) == NULL && memchr(s, ' ', len) == NULL);
	} else {
		HK_ASSERT(why != NULL);
	}
	return 0;
}
