/*
 * fuzz_api_send.c - the sending endpoints' request parsers (api_send_parse.c).
 *
 * Input: the first byte picks the parser (even: POST /api/v1/messages JSON, then mime_build on
 * what parsed; odd: the raw endpoint's JSON), the rest is the request body. The same bytes also
 * go to api_addr_parse() and api_raw_normalise().
 *
 * Checks: a refusal has a 4xx status, a code and a message; an accepted raw message is CRLF only,
 * has no NUL, no line over 998 and an empty line; a split address never holds '<' or '>' outside
 * quotes in the name and is never empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_send_parse.h"
#include "util/buf.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_error(const struct api_send_error *e)
{
	if (e->status < 400 || e->status > 499 || e->code == NULL || e->message[0] == '\0')
		abort();
}

static void
check_crlf(const struct buf *b)
{
	size_t i, line = 0;
	int blank = 0;

	for (i = 0; i < b->len; i++) {
		if (b->ptr[i] == '\0')
			abort();
		if (b->ptr[i] == '\n' && (i == 0 || b->ptr[i - 1] != '\r'))
			abort();
		if (b->ptr[i] == '\r') {
			if (i + 1 >= b->len || b->ptr[i + 1] != '\n' || i - line > 998)
				abort();
			blank |= i == line;
			line = i + 2;
		}
	}
	if (!blank || b->len < 2 || b->ptr[b->len - 1] != '\n')
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct api_send_limits lim = { .max_message_size = 4096, .max_recipients = 8 };
	const char *p = (const char *)data + 1;
	struct api_send_error e = { 0 };
	struct buf out = BUF_INIT;
	char *name = NULL, *addr = NULL;
	const char *why = NULL;
	size_t n;

	if (size == 0)
		return 0;
	n = size - 1;
	if (data[0] % 2 == 0) {
		struct api_send_req r;

		if (api_send_parse(p, n, &lim, &r, &e) == 0) {
			struct mime_out mo;

			r.msg.date = "Mon, 1 Jan 2024 00:00:00 +0000";
			r.msg.message_id = "<0000000000000001@fuzz.example>";
			mime_out_init(&mo);
			(void)mime_build(&r.msg, &mo);
			mime_out_fini(&mo);
			api_send_req_fini(&r);
		} else {
			check_error(&e);
		}
	} else {
		struct api_raw_req r;

		if (api_raw_parse(p, n, &lim, &r, &e) == 0) {
			check_crlf(&r.data);
			if (r.n_rcpts == 0 || r.n_rcpts > lim.max_recipients)
				abort();
			api_raw_req_fini(&r);
		} else {
			check_error(&e);
		}
	}
	if (api_raw_normalise(p, n, 0, &out, &e) == 0)
		check_crlf(&out);
	else
		check_error(&e);
	buf_fini(&out);
	if (api_addr_parse(p, n, &name, &addr, &why) == API_ADDR_OK) {
		if (addr[0] == '\0')
			abort();
		free(name);
		free(addr);
	} else if (name != NULL || addr != NULL || why == NULL) {
		abort();
	}
	return 0;
}
