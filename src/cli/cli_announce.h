/*
 * cli_announce.h - the pure parts of `hikyaku announce` (cli_announce.c, docs/announce.md):
 * rate parsing, the per-message Idempotency-Key, the request body, address checks and CSV
 * output for the list of recipients still to do.
 *
 * Ownership: strings returned are the caller's to free. Thread: any.
 */
#ifndef HK_CLI_ANNOUNCE_H
#define HK_CLI_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/csv.h"
#include "../util/buf.h"
#include "../util/common.h"

#define CLI_ANNOUNCE_KEY_LEN 41 /* "announce-" + 32 hex digits */

/*
 * --rate N/s|N/m|N/h: the pause between two submissions in microseconds. -1 when malformed or
 * N is 0 (or over 1,000,000).
 */
HK_MUST_CHECK int cli_announce_rate_parse(const char *s, uint64_t *interval_us);

/*
 * The Idempotency-Key of one notice: a digest of the template text, the row (header names and
 * values, whatever their order) and the address, so the same notice to the same person gets
 * the same key on a rerun, also from another CSV file holding the same row.
 */
void cli_announce_key(const char *tmpl_text, size_t tmpl_len, const struct csv_record *header,
    const struct csv_record *row, const char *address, char out[CLI_ANNOUNCE_KEY_LEN + 1]);

/*
 * The POST /api/v1/messages body (compact JSON, stable key order): from (as given, may be
 * "Name <addr>"), to [{address, name}], subject, text and, when route is not NULL, route.
 */
char *cli_announce_json(const char *from, const char *address, const char *name,
    const char *subject, const char *text, const char *route);

/*
 * A recipient address as the CSV gives it: local@domain, no spaces, angle brackets, commas or
 * control bytes (the daemon checks RFC 5321 syntax in full).
 */
bool cli_announce_addr_is_ok(const char *s);

/* Append r as one RFC 4180 record ending in CRLF, quoting fields where needed. */
void cli_announce_csv_encode(const struct csv_record *r, struct buf *out);

#endif
