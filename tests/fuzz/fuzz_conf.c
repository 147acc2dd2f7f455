/*
 * fuzz_conf.c - the configuration loader on arbitrary bytes: YAML events, the schema walk, every
 * setter and cross check, the diagnostics list. No file checks (no filesystem access); every
 * load, good or bad, must free all it allocated (leaks are findings under ASan).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conf/conf.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_diag diag;
	struct conf *c = NULL;
	int rc;

	conf_diag_init(&diag);
	rc = conf_load_string("fuzz.yaml", (const char *)data, size, false, &c, &diag);
	/* The contract: success means a snapshot and no diagnostics, failure the reverse. */
	if (rc == 0) {
		if (c == NULL || diag.count != 0 || c->refs != 1)
			__builtin_trap();
		conf_unref(conf_ref(c));
		conf_unref(c);
	} else if (c != NULL || diag.count == 0 || diag.text.len == 0 ||
	    strncmp(diag.text.ptr, "fuzz.yaml:", 10) != 0) {
		__builtin_trap();
	}
	conf_diag_fini(&diag);
	return 0;
}
