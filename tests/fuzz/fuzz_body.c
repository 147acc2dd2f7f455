/*
 * fuzz_body.c - DATA scanner and BDAT checker against split-invariance and a naive oracle.
 *
 * Input: 2 bytes choosing split points, then the stream. Checks: the result does not depend on
 * the feed split; output never holds a bare CR or LF; DONE exactly at the first CRLF.CRLF
 * (the stream starts at the beginning of a line); clean data gives the dot-unstuffed lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/body.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOT_DONE ((size_t)-1)

struct run {
	struct buf out;
	unsigned flags;
	uint64_t size;
	size_t consumed;
};

static void
run_data(const char *in, size_t len, const size_t *cuts, size_t ncuts, uint64_t max_size,
    struct run *r)
{
	struct body_scan sc;
	size_t pos = 0, k;

	buf_init(&r->out);
	body_scan_init(&sc, max_size, 998);
	r->consumed = NOT_DONE;
	for (k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : len, used = 0;

		if (end < pos)
			end = pos;
		if (body_scan_feed(&sc, in + pos, end - pos, &r->out, &used) == BODY_SCAN_DONE) {
			HK_ASSERT(body_scan_is_done(&sc));
			HK_ASSERT(used <= end - pos);
			r->consumed = pos + used;
			break;
		}
		HK_ASSERT(used == end - pos);
		HK_ASSERT(!body_scan_is_done(&sc));
		pos = end;
	}
	r->flags = sc.flags;
	r->size = sc.size;
}

/* No CR without LF after it, no LF without CR before it. */
static void
check_crlf_only(const struct buf *b)
{
	size_t i;

	for (i = 0; i < b->len; i++) {
		if (b->ptr[i] == '\r')
			HK_ASSERT(i + 1 < b->len && b->ptr[i + 1] == '\n');
		if (b->ptr[i] == '\n')
			HK_ASSERT(i > 0 && b->ptr[i - 1] == '\r');
	}
}

/* Index just after the first "\r\n.\r\n" in "\r\n" + in, or NOT_DONE. */
static size_t
naive_end(const char *in, size_t len)
{
	static const char pat[] = "\r\n.\r\n";
	size_t i;

	if (len >= 3 && memcmp(in, ".\r\n", 3) == 0)
		return 3;
	for (i = 0; i + 5 <= len; i++) {
		if (memcmp(in + i, pat, 5) == 0)
			return i + 5;
	}
	return NOT_DONE;
}

/* Dot-unstuffed lines of clean data in[0..end), end just after the terminator. */
static void
naive_body(const char *in, size_t end, struct buf *out)
{
	size_t i = 0;

	while (i + 3 < end) {
		const char *lf = memchr(in + i, '\n', end - i);
		size_t e = (size_t)(lf - in) + 1;

		if (in[i] == '.')
			i++;
		buf_append(out, in + i, e - i);
		i = e;
	}
}

static void
fuzz_data(const char *in, size_t len, const size_t *cuts, size_t ncuts)
{
	struct run whole, split, big;
	size_t end = naive_end(in, len);

	run_data(in, len, NULL, 0, 0, &whole);
	run_data(in, len, cuts, ncuts, 0, &split);
	HK_ASSERT(whole.consumed == split.consumed);
	HK_ASSERT(whole.flags == split.flags);
	HK_ASSERT(whole.size == split.size);
	HK_ASSERT(whole.out.len == split.out.len);
	HK_ASSERT(whole.out.len == 0 || memcmp(whole.out.ptr, split.out.ptr, whole.out.len) == 0);
	HK_ASSERT(whole.size == whole.out.len);
	check_crlf_only(&whole.out);
	HK_ASSERT(whole.consumed == end);
	if (end != NOT_DONE && !(whole.flags & (BODY_FLAG_BARE_CR | BODY_FLAG_BARE_LF))) {
		struct buf want = BUF_INIT;

		naive_body(in, end, &want);
		HK_ASSERT(want.len == whole.out.len);
		HK_ASSERT(want.len == 0 || memcmp(want.ptr, whole.out.ptr, want.len) == 0);
		buf_fini(&want);
	}
	/* A size limit changes only what is kept, never where the data ends. */
	run_data(in, len, cuts, ncuts, whole.size / 2 + 1, &big);
	HK_ASSERT(big.consumed == whole.consumed);
	HK_ASSERT(big.size == whole.size);
	HK_ASSERT(big.out.len <= whole.size / 2 + 1);
	check_crlf_only(&big.out);
	HK_ASSERT(((big.flags & BODY_FLAG_TOO_BIG) != 0) == (whole.size > whole.size / 2 + 1));
	buf_fini(&whole.out);
	buf_fini(&split.out);
	buf_fini(&big.out);
}

static void
fuzz_chunks(const char *in, size_t len, const size_t *cuts, size_t ncuts)
{
	struct body_scan a, b;
	struct buf oa = BUF_INIT, ob = BUF_INIT;
	size_t pos = 0, k;

	body_scan_init(&a, 0, 0);
	body_chunk_feed(&a, in, len, &oa);
	body_chunk_finish(&a);
	body_scan_init(&b, 0, 0);
	for (k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : len;

		if (end < pos)
			end = pos;
		body_chunk_feed(&b, in + pos, end - pos, &ob);
		pos = end;
	}
	body_chunk_finish(&b);
	HK_ASSERT(a.flags == b.flags && a.size == b.size && oa.len == ob.len);
	HK_ASSERT(oa.len == 0 || memcmp(oa.ptr, ob.ptr, oa.len) == 0);
	check_crlf_only(&oa);
	if (!(a.flags & (BODY_FLAG_BARE_CR | BODY_FLAG_BARE_LF))) {
		/* Clean chunks pass through untouched, and end in CRLF (or are empty). */
		HK_ASSERT(oa.len == len && (len == 0 || memcmp(oa.ptr, in, len) == 0));
		HK_ASSERT(len == 0 || (len >= 2 && in[len - 2] == '\r' && in[len - 1] == '\n'));
	}
	buf_fini(&oa);
	buf_fini(&ob);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cuts[3], len;
	const char *in;

	if (size < 2)
		return 0;
	in = (const char *)data + 2;
	len = size - 2;
	cuts[0] = len != 0 ? data[0] % (len + 1) : 0;
	cuts[1] = len != 0 ? (cuts[0] + data[1]) % (len + 1) : 0;
	cuts[2] = cuts[1] + 1 <= len ? cuts[1] + 1 : len;
	fuzz_data(in, len, cuts, 3);
	fuzz_chunks(in, len, cuts, 3);
	return 0;
}
