/*
 * header.h - RFC 5322 header section helpers for ingress.
 * Pure. Thread: any.
 */
#ifndef HK_HEADER_H
#define HK_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"

/* Length of the header section of body[0..len) including the empty line (or len if none). */
size_t header_section_len(const char *body, size_t len);
/* True when the header section has a field named name (case-insensitive, e.g. "Message-ID"). */
bool header_has_field(const char *body, size_t len, const char *name);
/*
 * Copy the unfolded value of the first field named name into out (trimmed; out is reset first).
 * Returns false when absent. Lines may end in CRLF or a lone LF.
 */
bool header_get_field(const char *body, size_t len, const char *name, struct buf *out);
/*
 * Decode the RFC 2047 encoded words of an unstructured field value (a Subject) into out (reset
 * first) as UTF-8, for search and display: B and Q encodings of UTF-8, US-ASCII and ISO-8859-1
 * are decoded; a word in another charset, or malformed, is kept as it was written. White space
 * between two adjacent encoded words is dropped (RFC 2047 6.2); control bytes become spaces; at
 * most max bytes are written (cut on a UTF-8 character boundary).
 */
void header_decode_words(const char *in, size_t len, size_t max, struct buf *out);
/* The decoded Subject of the message body[0..len) (at most 998 bytes), or NULL when absent. */
char *header_subject(const char *body, size_t len);
/*
 * The domain of the first address of the message's From: field, lower-case, or NULL when there
 * is no From: field or no address in it. Comments, quoted display names and groups are skipped;
 * the address is the one in <...> when there is one, else the first word holding an '@'.
 */
char *header_from_domain(const char *body, size_t len);
/*
 * Append an RFC 5322 date-time for t (seconds since the epoch, UTC) and tz offset minutes:
 * "Tue, 24 Nov 2026 17:12:49 +0000".
 */
void header_format_date(struct buf *out, int64_t t, int tz_minutes);

#endif
