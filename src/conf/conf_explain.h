/*
 * conf_explain.h - the loader of explainer files: extra reply-explainer rows in the format of
 * etc/explain.yaml (docs/explain.md), named by the configuration's top-level `explain:` key.
 *
 * The file is as strict as the configuration: unknown keys, wrong types, bad codes, enhanced
 * globs that cannot match "c.s.d", patterns that match everything or nothing, unknown culprits
 * and flags, duplicate ids are each one diagnostic "FILE:LINE:COL: message", and every problem
 * is reported, not only the first. The rows keep the file's order; the lookup
 * (explain_lookup_in()) puts them before the compiled-in rows, so they override or extend them.
 * Ownership: the loaded rows and their strings belong to the caller, who frees them with
 * conf_explain_free() (the configuration snapshot does, in conf_fini()).
 * Thread: any (reads one file).
 */
#ifndef HK_CONF_EXPLAIN_H
#define HK_CONF_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "../proto/explain.h"
#include "../util/common.h"
#include "conf.h"

/* Largest explainer file read; a table of a few hundred rows is a few tens of kilobytes. */
#define CONF_EXPLAIN_MAX_FILE (1024 * 1024)

/*
 * Read and validate the explainer file at path. On success 0 with *rows (NULL when the file
 * lists no entries) and *n. On any problem -1, every problem appended to diag ("PATH:LINE:COL:
 * message" lines), *rows NULL and *n 0.
 */
HK_MUST_CHECK int conf_explain_load(const char *path, struct explain_entry **rows, size_t *n,
    struct conf_diag *diag);
/* The same from a string; name is used in diagnostics. */
HK_MUST_CHECK int conf_explain_load_string(const char *name, const char *yaml, size_t len,
    struct explain_entry **rows, size_t *n, struct conf_diag *diag);
/* Free rows[0..n) loaded by the functions above. rows NULL is a no-op. */
void conf_explain_free(struct explain_entry *rows, size_t n);

#endif
