/*
 * api_query.h - pure parsing for the HTTP API: query strings, search filters, times, cursors, IDs.
 *
 * No I/O, no clock (now_ms is a parameter), no libevent. Everything from the peer is bounded:
 * a query string over API_QUERY_MAX bytes, a value over API_QUERY_VALUE_MAX bytes, an unknown or
 * repeated parameter, a bad percent escape or a NUL byte is refused with a static reason.
 * Thread: any.
 */
#ifndef HK_API_QUERY_H
#define HK_API_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../db/maillog_query.h"
#include "../util/buf.h"
#include "../util/common.h"

#define API_QUERY_MAX 4096
#define API_QUERY_VALUE_MAX 512
#define API_CURSOR_LEN 18 /* "1." + 16 hex digits */

enum api_query_result { API_QUERY_OK = 0, API_QUERY_BAD };

/* True when s[0..n) is exactly 16 hex digits (either case): ^[0-9A-Fa-f]{16}$. */
bool api_id_is_valid(const char *s, size_t n);

/*
 * Decode one application/x-www-form-urlencoded component s[0..n) ("+" is a space, %XX a byte)
 * into out (replacing its contents). API_QUERY_BAD for a broken escape or a NUL byte.
 */
enum api_query_result api_query_decode(const char *s, size_t n, struct buf *out);

/*
 * Call fn(arg, key, value) for each "key=value" of the query string qs (NULL or "" = none);
 * both decoded. A part without "=" has the value "". Stops at the first fn that returns false
 * (the result is then API_QUERY_BAD with the reason fn left in *why).
 */
typedef bool (*api_query_pair_fn)(void *arg, const char *key, const char *value,
    const char **why);
enum api_query_result api_query_each(const char *qs, api_query_pair_fn fn, void *arg,
    const char **why);

/*
 * A point in time: RFC 3339 ("2024-05-01T12:00:00Z", offset or fraction allowed), a date
 * ("2024-05-01", midnight UTC), Unix seconds ("1714564800"), or a duration back from now_ms
 * ("90s", "15m", "2h", "7d").
 */
enum api_query_result api_query_time(const char *s, uint64_t now_ms, uint64_t *out_ms);

/* An opaque page cursor for id: "1." + 16 upper-case hex digits and a NUL. */
void api_cursor_format(uint64_t id, char out[API_CURSOR_LEN + 1]);
enum api_query_result api_cursor_parse(const char *s, uint64_t *out_id);

/*
 * The filters of GET /api/v1/messages (status, from, to, since, until, upstream, q, limit,
 * cursor) into f, which the caller frees with maillog_filter_fini() (also after a failure).
 */
enum api_query_result api_query_search(const char *qs, uint64_t now_ms, struct maillog_filter *f,
    const char **why);

/* The only parameter of GET /api/v1/queue: limit (0..500, default 100). */
enum api_query_result api_query_queue(const char *qs, unsigned *limit, const char **why);

#endif
