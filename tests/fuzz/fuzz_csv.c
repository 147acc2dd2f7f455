/*
 * fuzz_csv.c - the CSV reader and header table fed arbitrary bytes.
 * Checks: the reader always moves forward and ends; every field is NUL-terminated valid UTF-8;
 * table rows have as many fields as the header; bad rows are in line order.
 */
#include <stdint.h>
#include <string.h>

#include "proto/csv.h"
#include "util/common.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct csv_record r;
	struct csv_table t;
	size_t pos = 0, line = 1, i, j;
	enum csv_result res;
	const char *why;

	csv_record_init(&r);
	for (;;) {
		size_t before = pos;

		res = csv_next(p, size, &pos, &line, &r, &why);
		if (res == CSV_END)
			break;
		HK_ASSERT(pos > before && pos <= size);
		if (res == CSV_BAD) {
			HK_ASSERT(why != NULL);
			continue;
		}
		for (i = 0; i < r.n; i++) {
			const char *f = csv_field(&r, i);

			HK_ASSERT(csv_is_utf8(f, strlen(f)));
		}
	}
	csv_record_fini(&r);
	if (csv_table_parse(p, size, &t, &why) == 0) {
		for (i = 0; i < t.n_rows; i++)
			HK_ASSERT(t.rows[i].n == t.header.n);
		for (j = 1; j < t.n_bad; j++)
			HK_ASSERT(t.bad[j - 1].line <= t.bad[j].line);
	} else {
		HK_ASSERT(why != NULL && t.n_rows == 0);
	}
	csv_table_fini(&t);
	return 0;
}
