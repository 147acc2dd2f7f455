/*
 * fuzz_dns_wire.c - the DNS message reader fed whole packets. Checks: every record it hands out
 * lies inside the packet, names read from it are lower-case host names within the size limit,
 * and a walk ends after at most the header's answer count.
 */
#include <stdint.h>
#include <string.h>

#include "dns/dns_wire.h"
#include "util/common.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_name(const char *name)
{
	size_t i, n = strlen(name);

	HK_ASSERT(n >= 1 && n <= DNS_WIRE_HOST_MAX);
	if (n == 1 && name[0] == '.')
		return;
	HK_ASSERT(name[n - 1] != '.');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		HK_ASSERT(c == '.' || dns_wire_is_label_char(c));
		HK_ASSERT(!(c >= 'A' && c <= 'Z'));
	}
}

/* Walk the answers for one type; for MX, also read the exchange name the relay would. */
static void
walk(const uint8_t *data, size_t size, unsigned rrtype)
{
	struct dns_wire_answers w;
	struct dns_rdata rd;
	char name[DNS_WIRE_HOST_MAX + 2];
	unsigned seen = 0, total;

	if (dns_wire_answers_open(&w, data, size) != 0)
		return;
	total = w.left;
	while (dns_wire_answers_next(&w, rrtype, &rd)) {
		HK_ASSERT(rd.p == data && rd.p_len == size);
		HK_ASSERT(rd.off <= size && rd.len <= size - rd.off);
		seen++;
		HK_ASSERT(seen <= total);
		if (rrtype == 15 && rd.len >= 3 &&
		    dns_wire_name(rd.p, rd.ptr_ok ? rd.p_len : rd.off + rd.len, rd.off + 2, rd.ptr_ok, name,
			sizeof(name)) == 0)
			check_name(name);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[DNS_WIRE_HOST_MAX + 2];
	size_t off;

	walk(data, size, 15); /* MX */
	walk(data, size, 1);  /* A */
	walk(data, size, 28); /* AAAA */
	/* Names at every small offset, with and without compression. */
	for (off = 0; off < size && off < 64; off++) {
		if (dns_wire_name(data, size, off, true, name, sizeof(name)) == 0)
			check_name(name);
		if (dns_wire_name(data, size, off, false, name, sizeof(name)) == 0)
			check_name(name);
	}
	return 0;
}
