/*
 * fuzz_envelope.c - spool_format_decode on hostile bytes.
 *
 * Checks: decoding never crashes or leaks; whatever decodes re-encodes to something that decodes
 * to the same envelope, and encoding is canonical (same envelope, same bytes). Random bytes
 * rarely carry a valid CRC, so each input is also decoded "re-sealed": its records up to the
 * last END line (or all of it) with a correct END line appended, which lets the fuzzer reach
 * the record parser. Every envelope that decodes is also followed by the input as an embedded
 * body: spool_format_env_len must find exactly the envelope's end whatever the body holds.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool/spool_format.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/crc32c.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
str_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
env_equal(const struct spool_env *a, const struct spool_env *b)
{
	size_t i;

	if (a->id != b->id || a->received_ms != b->received_ms || !str_same(a->from, b->from) ||
	    a->ret != b->ret || !str_same(a->envid, b->envid) || a->body != b->body ||
	    a->smtputf8 != b->smtputf8 || !str_same(a->source, b->source) ||
	    !str_same(a->listener, b->listener) || !str_same(a->auth_user, b->auth_user) ||
	    !str_same(a->client, b->client) || !str_same(a->helo, b->helo) ||
	    a->size != b->size || a->attempts != b->attempts ||
	    a->next_attempt_ms != b->next_attempt_ms || a->n_rcpts != b->n_rcpts)
		return false;
	for (i = 0; i < a->n_rcpts; i++) {
		if (!str_same(a->rcpts[i].addr, b->rcpts[i].addr) ||
		    a->rcpts[i].state != b->rcpts[i].state ||
		    a->rcpts[i].notify != b->rcpts[i].notify ||
		    !str_same(a->rcpts[i].orcpt, b->rcpts[i].orcpt))
			return false;
	}
	return true;
}

static void
check_one(const char *p, size_t n)
{
	struct spool_env d1, d2;
	struct buf e1 = BUF_INIT, e2 = BUF_INIT;
	const char *why = NULL;
	enum spool_format_result r;

	r = spool_format_decode(p, n, &d1, &why);
	if (r != SPOOL_FORMAT_OK) {
		/* Failure leaves nothing to free and always says why. */
		HK_ASSERT(why != NULL);
		HK_ASSERT(d1.from == NULL && d1.rcpts == NULL && d1.n_rcpts == 0);
		return;
	}
	HK_ASSERT(d1.from != NULL && d1.n_rcpts > 0);
	spool_format_encode(&d1, &e1);
	/* An embedded body after it, any bytes at all, never moves the envelope's end. */
	HK_ASSERT(spool_format_env_len(e1.ptr, e1.len) == e1.len);
	{
		size_t env_len = e1.len;

		buf_append(&e1, p, n);
		HK_ASSERT(spool_format_env_len(e1.ptr, e1.len) == env_len);
		buf_truncate(&e1, env_len);
	}
	HK_ASSERT(spool_format_decode(e1.ptr, e1.len, &d2, &why) == SPOOL_FORMAT_OK);
	HK_ASSERT(env_equal(&d1, &d2));
	spool_format_encode(&d2, &e2);
	HK_ASSERT(e1.len == e2.len && memcmp(e1.ptr, e2.ptr, e1.len) == 0);
	spool_env_fini(&d1);
	spool_env_fini(&d2);
	buf_fini(&e1);
	buf_fini(&e2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct buf sealed = BUF_INIT;
	size_t keep = size, i;

	check_one(p, size);
	/* Never past the input, and when found, just after a line starting "END ". */
	i = spool_format_env_len(p, size);
	HK_ASSERT(i <= size);
	HK_ASSERT(i == 0 || p[i - 1] == '\n');
	/* Keep everything before the last line starting with "END", then seal it. */
	for (i = size; i > 0; i--) {
		if ((i == 1 || p[i - 2] == '\n') && size - (i - 1) >= 3 &&
		    memcmp(p + i - 1, "END", 3) == 0) {
			keep = i - 1;
			break;
		}
	}
	buf_append(&sealed, p, keep);
	if (keep > 0 && sealed.ptr[keep - 1] != '\n')
		buf_putc(&sealed, '\n');
	buf_printf(&sealed, "END %08" PRIx32 "\n", crc32c(0, sealed.ptr, sealed.len));
	check_one(sealed.ptr, sealed.len);
	buf_fini(&sealed);
	return 0;
}
