/*
 * fuzz_sendmail_msg.c - the sendmail command's message reader on any input.
 *
 * Input: 1 byte of flags (bit 0 -t, bit 1 -i, bit 2 a -F name taken from the input's tail), then
 * the standard input. Checks: the result is CRLF lines only with no NUL; it has exactly one
 * empty line ending a header section that holds no Bcc field; every recipient found passes the
 * mailbox parser; without -t no recipient is returned.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/addr.h"
#include "proto/sendmail_msg.h"
#include "util/common.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_body(const struct buf *b)
{
	size_t i, line = 0;
	bool in_header = true;

	HK_ASSERT(b->len >= 2);
	for (i = 0; i < b->len; i++) {
		HK_ASSERT(b->ptr[i] != '\0');
		if (b->ptr[i] == '\n')
			HK_ASSERT(i > 0 && b->ptr[i - 1] == '\r');
		if (b->ptr[i] != '\r')
			continue;
		HK_ASSERT(i + 1 < b->len && b->ptr[i + 1] == '\n');
		if (in_header) {
			if (i == line)
				in_header = false;
			else
				HK_ASSERT(!str_has_prefix_ci(b->ptr + line, i - line, "Bcc:"));
		}
		i++;
		line = i + 1;
	}
	HK_ASSERT(!in_header);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sendmail_msg_opts o;
	struct sendmail_msg m;
	struct addr_parts parts;
	char *name = NULL;
	const char *in;
	size_t len, k;
	enum sendmail_msg_result res;

	if (size < 1)
		return 0;
	memset(&o, 0, sizeof(o));
	o.extract_rcpts = data[0] & 1;
	o.dot_is_data = data[0] & 2;
	o.from_addr = "fuzz@example.com";
	o.now = 1736848798;
	o.message_id = "<fuzz@example.com>";
	o.max_rcpts = 1000;
	in = (const char *)data + 1;
	len = size - 1;
	if ((data[0] & 4) && len > 0) {
		size_t n = len < 40 ? len : 40;

		name = xstrndup(in + len - n, n);
		o.from_name = name;
		len -= n;
	}
	sendmail_msg_init(&m);
	res = sendmail_msg_parse(in, len, &o, &m, NULL);
	if (res == SENDMAIL_MSG_OK) {
		check_body(&m.body);
		HK_ASSERT(o.extract_rcpts || m.n_rcpts == 0);
		for (k = 0; k < m.n_rcpts; k++)
			HK_ASSERT(addr_parse(m.rcpts[k], strlen(m.rcpts[k]), ADDR_ALLOW_UTF8, &parts,
			    NULL) == ADDR_OK);
	}
	sendmail_msg_fini(&m);
	free(name);
	return 0;
}
