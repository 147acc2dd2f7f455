/*
 * fuzz_smtp_reply.c - reply parser fed the input split at LF into lines. Checks: bounds hold,
 * text is NUL-terminated with no control bytes but "\n" joins, codes and enhanced codes agree.
 */
#include <stdint.h>
#include <string.h>

#include "proto/smtp_reply.h"
#include "util/common.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_reply(const struct smtp_reply *r)
{
	size_t i;

	HK_ASSERT(r->text_len <= SMTP_REPLY_MAX_TEXT && r->text[r->text_len] == '\0');
	HK_ASSERT(r->nlines <= SMTP_REPLY_MAX_LINES);
	for (i = 0; i < r->text_len; i++) {
		unsigned char c = (unsigned char)r->text[i];

		HK_ASSERT(c >= 32 || c == '\t' || c == '\n');
		HK_ASSERT(c != 127);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *why;
	struct smtp_reply r;
	size_t i = 0;
	int c, s, d;

	smtp_reply_init(&r);
	while (i <= size) {
		const char *lf = memchr(p + i, '\n', size - i);
		size_t e = lf != NULL ? (size_t)(lf - p) : size;
		unsigned before = r.nlines;
		enum smtp_reply_result res;

		why = NULL;
		res = smtp_reply_feed(&r, p + i, e - i, &why);
		check_reply(&r);
		if (res == SMTP_REPLY_BAD) {
			HK_ASSERT(why != NULL);
			smtp_reply_init(&r);
		} else {
			HK_ASSERT(r.nlines == before + 1);
			HK_ASSERT(r.code >= 200 && r.code <= 559);
			HK_ASSERT(r.enh_class == 0 || r.enh_class == r.code / 100);
			HK_ASSERT(r.enh_subject >= 0 && r.enh_subject <= 999);
			HK_ASSERT(r.enh_detail >= 0 && r.enh_detail <= 999);
			if (res == SMTP_REPLY_DONE)
				smtp_reply_init(&r);
		}
		if (e - i > 0) {
			size_t n = smtp_reply_parse_enhanced(p + i, e - i, &c, &s, &d);

			HK_ASSERT(n == 0 || (n >= 5 && n <= 9 && n <= e - i));
		}
		i = e + 1;
	}
	return 0;
}
