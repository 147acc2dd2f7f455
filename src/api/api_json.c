/* api_json.c - email log rows to JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_json.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

static const char *const api_json_bools[] = { "maybe_delivered", "body_kept" };

void
api_json_time(uint64_t ms, char out[API_JSON_TIME_LEN + 1])
{
	time_t t = (time_t)(ms / 1000);
	char tmp[80];
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999) {
		snprintf(out, API_JSON_TIME_LEN + 1, "%s", "9999-12-31T23:59:59.999Z");
		return;
	}
	/* gmtime_r keeps every field in range, so the text is always API_JSON_TIME_LEN long. */
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
	memcpy(out, tmp, API_JSON_TIME_LEN);
	out[API_JSON_TIME_LEN] = '\0';
}

static bool
api_json_is_bool(const char *col)
{
	size_t i;

	for (i = 0; i < HK_ARRAY_LEN(api_json_bools); i++) {
		if (strcmp(col, api_json_bools[i]) == 0)
			return true;
	}
	return false;
}

/* Stored text comes from peers: invalid UTF-8 (which jansson refuses) shows as '?' bytes. */
static json_t *
api_json_text(const char *s)
{
	size_t n = strlen(s), i;
	json_t *v = json_stringn(s, n);
	char *copy;

	if (v != NULL)
		return v;
	copy = xmemdup(s, n + 1);
	for (i = 0; i < n; i++) {
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	}
	v = json_stringn(copy, n);
	free(copy);
	return v;
}

json_t *
api_json_row(const struct maillog_rows *rows, size_t row)
{
	json_t *o = json_object();
	size_t c;

	for (c = 0; c < rows->n_cols; c++) {
		const char *col = rows->cols[c];
		const struct maillog_cell *cell = maillog_rows_cell(rows, row, c);
		size_t n = strlen(col);
		json_t *v;

		if (strcmp(col, "message_id") == 0)
			continue;
		switch (cell->type) {
		case MAILLOG_CELL_INT:
			v = api_json_is_bool(col) ? json_boolean(cell->i != 0) : json_integer(cell->i);
			break;
		case MAILLOG_CELL_TEXT:
			v = api_json_text(cell->s);
			break;
		default:
			v = json_null();
			break;
		}
		json_object_set_new(o, col, v);
		if (n > 3 && strcmp(col + n - 3, "_ms") == 0 && strcmp(col, "duration_ms") != 0 &&
		    cell->type == MAILLOG_CELL_INT && cell->i > 0) {
			char name[64], t[API_JSON_TIME_LEN + 1];

			if (n - 3 < sizeof(name)) {
				memcpy(name, col, n - 3);
				name[n - 3] = '\0';
				api_json_time((uint64_t)cell->i, t);
				json_object_set_new(o, name, json_string(t));
			}
		}
	}
	return o;
}

json_t *
api_json_rows(const struct maillog_rows *rows)
{
	json_t *a = json_array();
	size_t r;

	for (r = 0; r < rows->n_rows; r++)
		json_array_append_new(a, api_json_row(rows, r));
	return a;
}

/* First row of rcpts whose message_id is >= id (rows sorted by message_id). */
static size_t
api_json_lower_bound(const struct maillog_rows *rcpts, size_t col, const char *id)
{
	size_t lo = 0, hi = rcpts->n_rows;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct maillog_cell *c = maillog_rows_cell(rcpts, mid, col);

		/* Fixed-width upper-case hex: text order is numeric order. */
		if (c->type == MAILLOG_CELL_TEXT && strcmp(c->s, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

json_t *
api_json_messages(const struct maillog_rows *msgs, const struct maillog_rows *rcpts)
{
	json_t *a = json_array();
	int idcol = maillog_rows_col(msgs, "id");
	int mcol = maillog_rows_col(rcpts, "message_id");
	size_t r;

	for (r = 0; r < msgs->n_rows; r++) {
		json_t *o = api_json_row(msgs, r), *list = json_array();
		const struct maillog_cell *id;
		size_t k;

		if (idcol >= 0 && mcol >= 0 &&
		    (id = maillog_rows_cell(msgs, r, (size_t)idcol))->type == MAILLOG_CELL_TEXT) {
			for (k = api_json_lower_bound(rcpts, (size_t)mcol, id->s); k < rcpts->n_rows;
			     k++) {
				const struct maillog_cell *c = maillog_rows_cell(rcpts, k, (size_t)mcol);

				if (c->type != MAILLOG_CELL_TEXT || strcmp(c->s, id->s) != 0)
					break;
				json_array_append_new(list, api_json_row(rcpts, k));
			}
		}
		json_object_set_new(o, "recipients", list);
		json_array_append_new(a, o);
	}
	return a;
}

json_t *
api_json_error(const char *code, const char *message)
{
	return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
}
