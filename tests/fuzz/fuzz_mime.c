/*
 * fuzz_mime.c - API message builder from fuzzed fields.
 *
 * Input: NUL-separated fields in this order: from, from name, to, to name, cc, bcc, reply_to,
 * subject, header name, header value, text, html, attachment file name, attachment content type,
 * and the rest (NULs included) as the attachment content. Missing or empty optional fields are
 * left out; an empty from or to gets a valid address so that most inputs reach the encoders.
 *
 * Checks: a built message is ASCII only (every encoding used is 7-bit), has no NUL, no bare CR
 * or LF, no line over 998, ends in CRLF, carries MIME-Version, and is the same when built twice;
 * a refused one leaves no data and a message that starts with the field it names.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mime.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFIELDS 14

static void
check_message(const struct buf *b)
{
	size_t i, line = 0;

	if (b->len < 2 || memcmp(b->ptr + b->len - 2, "\r\n", 2) != 0)
		abort();
	for (i = 0; i < b->len; i++) {
		unsigned char ch = (unsigned char)b->ptr[i];

		if (ch == 0 || ch >= 0x80)
			abort();
		if (ch == '\r') {
			if (i + 1 >= b->len || b->ptr[i + 1] != '\n' || i - line > 998)
				abort();
			i++;
			line = i + 1;
		} else if (ch == '\n') {
			abort();
		}
	}
	if (memmem(b->ptr, b->len, "\r\nMIME-Version: 1.0\r\n", 21) == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *f[NFIELDS];
	const char *rest = NULL;
	size_t rest_len = 0, pos = 0, k;
	struct mime_addr to, cc, bcc, reply_to;
	struct mime_header hdr;
	struct mime_attachment att;
	struct mime_msg m;
	struct mime_out o, o2;
	enum mime_error e;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (k = 0; k < NFIELDS; k++) {
		f[k] = copy + pos;
		while (pos < size && copy[pos] != '\0')
			pos++;
		if (pos < size)
			copy[pos++] = '\0';
	}
	rest = copy + pos;
	rest_len = size - pos;

	memset(&m, 0, sizeof(m));
	m.from.address = f[0][0] != '\0' ? f[0] : "a@example.com";
	m.from.name = f[1];
	to = (struct mime_addr){ f[2][0] != '\0' ? f[2] : "b@example.org", f[3] };
	m.to = &to;
	m.to_count = 1;
	cc = (struct mime_addr){ f[4], NULL };
	if (f[4][0] != '\0') {
		m.cc = &cc;
		m.cc_count = 1;
	}
	bcc = (struct mime_addr){ f[5], NULL };
	if (f[5][0] != '\0') {
		m.bcc = &bcc;
		m.bcc_count = 1;
	}
	reply_to = (struct mime_addr){ f[6], NULL };
	if (f[6][0] != '\0')
		m.reply_to = &reply_to;
	m.subject = f[7][0] != '\0' ? f[7] : NULL;
	hdr = (struct mime_header){ f[8], f[9] };
	if (f[8][0] != '\0') {
		m.headers = &hdr;
		m.header_count = 1;
	}
	if (f[10][0] != '\0') {
		m.text = f[10];
		m.text_len = strlen(f[10]);
	}
	if (f[11][0] != '\0') {
		m.html = f[11];
		m.html_len = strlen(f[11]);
	}
	att = (struct mime_attachment){ f[12], f[13][0] != '\0' ? f[13] : NULL, rest, rest_len };
	if (f[12][0] != '\0') {
		m.attachments = &att;
		m.attachment_count = 1;
	}
	m.date = "Tue, 14 Jan 2025 09:59:58 +0000";
	m.message_id = "<fuzz@example.com>";
	m.seed = (const unsigned char *)"0123456789abcdef";
	m.seed_len = 16;

	mime_out_init(&o);
	mime_out_init(&o2);
	e = mime_build(&m, &o);
	if (e == MIME_OK) {
		check_message(&o.data);
		if (o.rcpt_count == 0 || o.rcpt_count > 3)
			abort();
		if (mime_build(&m, &o2) != MIME_OK || o2.data.len != o.data.len ||
		    memcmp(o2.data.ptr, o.data.ptr, o.data.len) != 0)
			abort();
	} else {
		if (o.data.len != 0 || o.rcpt_count != 0 || o.field[0] == '\0' ||
		    strncmp(o.message, o.field, strlen(o.field)) != 0)
			abort();
		if (mime_error_http_status(e) != 400 && mime_error_http_status(e) != 422)
			abort();
	}
	mime_out_fini(&o);
	mime_out_fini(&o2);
	free(copy);
	return 0;
}
