/*
 * fuzz_conf_explain.c - the explainer file loader on arbitrary bytes: YAML events, every entry
 * check, the diagnostics list; then a lookup over the loaded rows (their globs run against a
 * fixed reply). Every load, good or bad, must free all it allocated (leaks are findings).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conf/conf_explain.h"
#include "proto/explain.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char text[] = "Daily user sending limit exceeded\n - gsmtp";
	struct explain_entry *rows = NULL;
	const struct explain_entry *e;
	struct conf_diag diag;
	size_t n = 0, i;
	int rc;

	conf_diag_init(&diag);
	rc = conf_explain_load_string("fuzz.yaml", (const char *)data, size, &rows, &n, &diag);
	/* The contract: success means rows and no diagnostics, failure the reverse. */
	if (rc == 0) {
		if (diag.count != 0 || (n > 0) != (rows != NULL))
			__builtin_trap();
		for (i = 0; i < n; i++) {
			if (rows[i].id == NULL || rows[i].cause == NULL || rows[i].fix == NULL)
				__builtin_trap();
		}
		e = explain_lookup_in(rows, n, 550, 5, 4, 5, text, sizeof(text) - 1);
		if (e == NULL)
			__builtin_trap();
		(void)explain_find_in(rows, n, "local-timeout");
	} else if (rows != NULL || n != 0 || diag.count == 0 ||
	    strncmp(diag.text.ptr, "fuzz.yaml:", 10) != 0) {
		__builtin_trap();
	}
	conf_explain_free(rows, n);
	conf_diag_fini(&diag);
	return 0;
}
