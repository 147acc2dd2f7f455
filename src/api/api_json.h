/*
 * api_json.h - JSON from email log rows (jansson). Pure: no I/O, no clock.
 *
 * A row becomes an object with one field per column: NULL -> null, integers -> numbers, text ->
 * strings; columns named in api_json_bools become true/false; every "<name>_ms" time column
 * (except duration_ms) also gets "<name>" as an RFC 3339 UTC string, so both machines and people
 * can read it. The "message_id" column of recipient rows is left out (it is the parent's id).
 * Ownership: returned json_t values belong to the caller (json_decref).
 * Thread: any.
 */
#ifndef HK_API_JSON_H
#define HK_API_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../db/maillog_query.h"

#define API_JSON_TIME_LEN 24 /* "2024-05-01T12:00:00.123Z" */

/* RFC 3339 UTC with milliseconds for ms since the epoch. */
void api_json_time(uint64_t ms, char out[API_JSON_TIME_LEN + 1]);
/* One row as an object. */
json_t *api_json_row(const struct maillog_rows *rows, size_t row);
/* Every row as an array of objects. */
json_t *api_json_rows(const struct maillog_rows *rows);
/*
 * Messages with their recipients: each message object gets "recipients", the rows of rcpts whose
 * "message_id" equals the message's "id" (rcpts sorted by message_id, as maillog_query returns).
 */
json_t *api_json_messages(const struct maillog_rows *msgs, const struct maillog_rows *rcpts);
/* An error body {"error":{"code":code,"message":message}}. */
json_t *api_json_error(const char *code, const char *message);

#endif
