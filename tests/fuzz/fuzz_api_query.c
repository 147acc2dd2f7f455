/*
 * fuzz_api_query.c - the API's query-string parser, search filters, times and cursors. Checks:
 * accepted filters hold only what the parser promises (known status, limit in range, a cursor
 * that formats back to itself), and every refusal has a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_query.h"
#include "util/common.h"
#include "util/xalloc.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);
	struct maillog_filter f;
	const char *why = NULL;
	unsigned limit;
	uint64_t v;

	memcpy(s, data, size);
	s[size] = '\0';
	if (api_query_search(s, 1714564800000ull, &f, &why) == API_QUERY_OK) {
		HK_ASSERT(f.status == NULL || maillog_status_is_known(f.status));
		HK_ASSERT(f.limit <= MAILLOG_QUERY_LIMIT_MAX);
		HK_ASSERT(!f.since_ms || !f.until_ms || f.until_ms > f.since_ms);
		if (f.before_id) {
			char cur[API_CURSOR_LEN + 1];

			api_cursor_format(f.before_id, cur);
			HK_ASSERT(api_cursor_parse(cur, &v) == API_QUERY_OK && v == f.before_id);
		}
	} else {
		HK_ASSERT(why != NULL);
	}
	maillog_filter_fini(&f);
	why = NULL;
	if (api_query_queue(s, &limit, &why) == API_QUERY_OK)
		HK_ASSERT(limit <= MAILLOG_QUERY_LIMIT_MAX);
	else
		HK_ASSERT(why != NULL);
	if (api_cursor_parse(s, &v) == API_QUERY_OK) {
		char cur[API_CURSOR_LEN + 1];

		api_cursor_format(v, cur);
		HK_ASSERT(strcasecmp(cur, s) == 0);
	}
	(void)api_query_time(s, 1714564800000ull, &v);
	HK_ASSERT(api_id_is_valid(s, strlen(s)) == (strlen(s) == 16 && strspn(s,
	    "0123456789abcdefABCDEF") == 16));
	free(s);
	return 0;
}
