/*
 * fuzz_cli_http.c - the CLI's HTTP response parser (cli_http_parse) on arbitrary bytes, as a
 * complete stream (eof) and as a prefix: it must never crash, read out of bounds, or accept a
 * body longer than the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cli/cli_http.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cli_http_resp r;
	const char *why = NULL;
	enum cli_http_parse_result res;

	cli_http_resp_init(&r);
	res = cli_http_parse((const char *)data, size, true, &r, &why);
	if (res == CLI_HTTP_OK && (r.body.len > size || r.status < 100 || r.status > 599))
		__builtin_trap();
	if (res == CLI_HTTP_BAD && why == NULL)
		__builtin_trap();
	if (res == CLI_HTTP_INCOMPLETE)
		__builtin_trap(); /* never at eof */
	res = cli_http_parse((const char *)data, size, false, &r, &why);
	if (res == CLI_HTTP_OK && r.body.len > size)
		__builtin_trap();
	cli_http_resp_fini(&r);
	return 0;
}
