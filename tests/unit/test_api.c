/*
 * test_api.c - the API's pure parts: IDs, query strings, search filters, times, cursors, JSON
 * from email log rows, Prometheus text, and the FTS quoting of the log queries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/api_json.h"
#include "api/api_metrics.h"
#include "api/api_query.h"
#include "db/maillog_query.h"
#include "util/xalloc.h"
#include "util/poison.h"

#define NOW_MS 1714564800000ull /* 2024-05-01T12:00:00Z */

static void
test_api_id_is_valid(void **state)
{
	(void)state;
	assert_true(api_id_is_valid("0193F2A1C4000007", 16));
	assert_true(api_id_is_valid("0193f2a1c4000007", 16));
	assert_false(api_id_is_valid("0193F2A1C400000", 15));
	assert_false(api_id_is_valid("0193F2A1C40000071", 17));
	assert_false(api_id_is_valid("0193F2A1C400000G", 16));
	assert_false(api_id_is_valid("0193F2A1C400000 ", 16));
	assert_false(api_id_is_valid("../../etc/passwd", 16));
}

static void
test_api_query_decode(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(api_query_decode("a%40b.example+x%2Bz", 19, &b), API_QUERY_OK);
	assert_string_equal(b.ptr, "a@b.example x+z");
	assert_int_equal(api_query_decode("%4", 2, &b), API_QUERY_BAD);
	assert_int_equal(api_query_decode("%", 1, &b), API_QUERY_BAD);
	assert_int_equal(api_query_decode("%zz", 3, &b), API_QUERY_BAD);
	/* A NUL byte would cut the value short further down: refused. */
	assert_int_equal(api_query_decode("a%00b", 5, &b), API_QUERY_BAD);
	buf_fini(&b);
}

static void
test_api_query_search_all_filters(void **state)
{
	struct maillog_filter f;
	const char *why = NULL;

	(void)state;
	assert_int_equal(api_query_search("status=deferred&from=a%40example.com&to=B%40x.example"
	    "&upstream=primary&q=invoice+may&limit=10&since=2024-05-01T00:00:00Z"
	    "&until=1714564800&cursor=1.0193F2A1C4000007", NOW_MS, &f, &why), API_QUERY_OK);
	assert_string_equal(f.status, "deferred");
	assert_string_equal(f.from, "a@example.com");
	assert_string_equal(f.to, "B@x.example");
	assert_string_equal(f.upstream, "primary");
	assert_string_equal(f.q, "invoice may");
	assert_int_equal(f.limit, 10);
	assert_true(f.since_ms == 1714521600000ull);
	assert_true(f.until_ms == 1714564800000ull);
	assert_true(f.before_id == 0x0193F2A1C4000007ull);
	maillog_filter_fini(&f);

	assert_int_equal(api_query_search(NULL, NOW_MS, &f, &why), API_QUERY_OK);
	assert_null(f.status);
	assert_int_equal(f.limit, 0);
	maillog_filter_fini(&f);
	/* The null sender is a real filter (bounces). */
	assert_int_equal(api_query_search("from=", NOW_MS, &f, &why), API_QUERY_OK);
	assert_string_equal(f.from, "");
	maillog_filter_fini(&f);
}

static void
test_api_query_search_rejects(void **state)
{
	static const char *const bad[] = {
		"status=lost", "limit=0", "limit=501", "limit=-1", "limit=1x", "cursor=abc",
		"cursor=1.0193F2A1C400000", "cursor=2.0193F2A1C4000007", "since=yesterday",
		"since=2024-02-30", "since=2024-05-01T25:00:00Z", "until=2024-05-01T12:00:00",
		"sort=id", "status=sent&status=bounced", "to=", "q=", "to=%zz",
		"since=2024-05-02&until=2024-05-01",
	};
	struct maillog_filter f;
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(bad); i++) {
		why = NULL;
		if (api_query_search(bad[i], NOW_MS, &f, &why) != API_QUERY_BAD)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(why);
		maillog_filter_fini(&f);
	}
}

static void
test_api_query_time(void **state)
{
	uint64_t t;

	(void)state;
	assert_int_equal(api_query_time("2024-05-01T12:00:00Z", NOW_MS, &t), API_QUERY_OK);
	assert_true(t == NOW_MS);
	assert_int_equal(api_query_time("2024-05-01T14:00:00.250+02:00", NOW_MS, &t),
	    API_QUERY_OK);
	assert_true(t == NOW_MS + 250);
	assert_int_equal(api_query_time("2024-05-01", NOW_MS, &t), API_QUERY_OK);
	assert_true(t == NOW_MS - 12 * 3600000ull);
	assert_int_equal(api_query_time("2024-02-29", NOW_MS, &t), API_QUERY_OK);
	assert_int_equal(api_query_time("2023-02-29", NOW_MS, &t), API_QUERY_BAD);
	assert_int_equal(api_query_time("1714564800", NOW_MS, &t), API_QUERY_OK);
	assert_true(t == NOW_MS);
	assert_int_equal(api_query_time("2h", NOW_MS, &t), API_QUERY_OK);
	assert_true(t == NOW_MS - 7200000ull);
	assert_int_equal(api_query_time("", NOW_MS, &t), API_QUERY_BAD);
	assert_int_equal(api_query_time("1969-12-31", NOW_MS, &t), API_QUERY_BAD);
	assert_int_equal(api_query_time("2024-05-01T12:00:00Zjunk", NOW_MS, &t), API_QUERY_BAD);
}

static void
test_api_cursor_round_trip(void **state)
{
	char cur[API_CURSOR_LEN + 1];
	uint64_t id;

	(void)state;
	api_cursor_format(0x0193F2A1C4000007ull, cur);
	assert_string_equal(cur, "1.0193F2A1C4000007");
	assert_int_equal(api_cursor_parse(cur, &id), API_QUERY_OK);
	assert_true(id == 0x0193F2A1C4000007ull);
	assert_int_equal(api_cursor_parse("1.0000000000000000", &id), API_QUERY_BAD);
	assert_int_equal(api_cursor_parse("", &id), API_QUERY_BAD);
}

static void
test_api_query_queue(void **state)
{
	const char *why;
	unsigned limit;

	(void)state;
	assert_int_equal(api_query_queue(NULL, &limit, &why), API_QUERY_OK);
	assert_int_equal(limit, 100);
	assert_int_equal(api_query_queue("limit=0", &limit, &why), API_QUERY_OK);
	assert_int_equal(limit, 0);
	assert_int_equal(api_query_queue("limit=501", &limit, &why), API_QUERY_BAD);
	assert_int_equal(api_query_queue("status=held", &limit, &why), API_QUERY_BAD);
}

static void
test_api_fts_quote(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(maillog_query_fts_quote("  invoice  a\"b OR  ", &b), 3);
	assert_string_equal(b.ptr, "\"invoice\" \"a\"\"b\" \"OR\"");
	buf_reset(&b);
	assert_int_equal(maillog_query_fts_quote(" \t ", &b), 0);
	assert_int_equal(b.len, 0);
	buf_fini(&b);
	assert_true(maillog_status_is_known("held"));
	assert_false(maillog_status_is_known("Held"));
	assert_false(maillog_status_is_known(NULL));
}

/* A two-column table built by hand: id (text), and one more column. */
static void
rows_init(struct maillog_rows *r, const char *const *cols, size_t n_cols, size_t n_rows)
{
	size_t i;

	memset(r, 0, sizeof(*r));
	r->n_cols = n_cols;
	r->n_rows = n_rows;
	r->cols = xcalloc(n_cols, sizeof(*r->cols));
	for (i = 0; i < n_cols; i++)
		r->cols[i] = xstrdup(cols[i]);
	r->cells = xcalloc(n_cols * n_rows, sizeof(*r->cells));
}

static void
cell_text(struct maillog_rows *r, size_t row, size_t col, const char *s)
{
	r->cells[row * r->n_cols + col].type = MAILLOG_CELL_TEXT;
	r->cells[row * r->n_cols + col].s = xstrdup(s);
}

static void
cell_int(struct maillog_rows *r, size_t row, size_t col, int64_t v)
{
	r->cells[row * r->n_cols + col].type = MAILLOG_CELL_INT;
	r->cells[row * r->n_cols + col].i = v;
}

static void
rows_fini(struct maillog_rows *r)
{
	size_t i;

	for (i = 0; i < r->n_cols * r->n_rows; i++)
		free(r->cells[i].s);
	for (i = 0; i < r->n_cols; i++)
		free(r->cols[i]);
	free(r->cells);
	free(r->cols);
}

static char *
dump(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

	json_decref(v);
	return s;
}

static void
test_api_json_row_types(void **state)
{
	static const char *const cols[] = { "id", "received_ms", "maybe_delivered", "text",
		"duration_ms", "code" };
	struct maillog_rows r;
	char *s;

	(void)state;
	rows_init(&r, cols, 6, 1);
	cell_text(&r, 0, 0, "0193F2A1C4000007");
	cell_int(&r, 0, 1, (int64_t)NOW_MS + 5);
	cell_int(&r, 0, 2, 1);
	cell_text(&r, 0, 3, "bad \xff byte");
	cell_int(&r, 0, 4, 12);
	s = dump(api_json_row(&r, 0));
	assert_string_equal(s, "{\"code\":null,\"duration_ms\":12,\"id\":\"0193F2A1C4000007\","
	    "\"maybe_delivered\":true,\"received\":\"2024-05-01T12:00:00.005Z\","
	    "\"received_ms\":1714564800005,\"text\":\"bad ? byte\"}");
	free(s);
	rows_fini(&r);
}

static void
test_api_json_messages_group_recipients(void **state)
{
	static const char *const mcols[] = { "id" };
	static const char *const rcols[] = { "message_id", "address" };
	struct maillog_rows m, r;
	char *s;

	(void)state;
	rows_init(&m, mcols, 1, 3);
	cell_text(&m, 0, 0, "00000000000000C0"); /* newest first, as a search returns */
	cell_text(&m, 1, 0, "00000000000000B0");
	cell_text(&m, 2, 0, "00000000000000A0");
	rows_init(&r, rcols, 2, 3);
	cell_text(&r, 0, 0, "00000000000000A0");
	cell_text(&r, 0, 1, "a1@x.example");
	cell_text(&r, 1, 0, "00000000000000C0");
	cell_text(&r, 1, 1, "c1@x.example");
	cell_text(&r, 2, 0, "00000000000000C0");
	cell_text(&r, 2, 1, "c2@x.example");
	s = dump(api_json_messages(&m, &r));
	assert_string_equal(s, "[{\"id\":\"00000000000000C0\",\"recipients\":"
	    "[{\"address\":\"c1@x.example\"},{\"address\":\"c2@x.example\"}]},"
	    "{\"id\":\"00000000000000B0\",\"recipients\":[]},"
	    "{\"id\":\"00000000000000A0\",\"recipients\":[{\"address\":\"a1@x.example\"}]}]");
	free(s);
	rows_fini(&m);
	rows_fini(&r);
}

static void
test_api_json_error(void **state)
{
	char *s;

	(void)state;
	s = dump(api_json_error("bad_id", "a message id is 16 hex digits"));
	assert_string_equal(s, "{\"error\":{\"code\":\"bad_id\","
	    "\"message\":\"a message id is 16 hex digits\"}}");
	free(s);
}

static void
test_api_metrics_render(void **state)
{
	struct api_metrics_up ups[1];
	struct api_metrics_in in;
	struct buf out = BUF_INIT;

	(void)state;
	memset(&in, 0, sizeof(in));
	memset(ups, 0, sizeof(ups));
	ups[0].name = "we\"ird\\name";
	ups[0].snap.health = UPSTREAM_HEALTH_DOWN;
	ups[0].snap.open = true;
	ups[0].snap.sent_day = 7;
	ups[0].snap.per_day = 500;
	in.stats.received_smtp = 3;
	in.have_queue = true;
	in.queue[1] = 2;
	in.ups = ups;
	in.n_ups = 1;
	api_metrics_render(&in, &out);
	assert_non_null(strstr(out.ptr, "\nhikyaku_messages_received_total{source=\"smtp\"} 3\n"));
	assert_non_null(strstr(out.ptr, "\nhikyaku_queue_messages{state=\"deferred\"} 2\n"));
	assert_non_null(strstr(out.ptr,
	    "\nhikyaku_upstream_up{upstream=\"we\\\"ird\\\\name\"} 0\n"));
	assert_non_null(strstr(out.ptr,
	    "{upstream=\"we\\\"ird\\\\name\",health=\"down\"} 1\n"));
	assert_non_null(strstr(out.ptr,
	    "hikyaku_upstream_limit_recipients{upstream=\"we\\\"ird\\\\name\",window=\"day\"} 500\n"));
	assert_null(strstr(out.ptr, "window=\"hour\"} 0\nhikyaku_upstream_limit"));
	assert_true(out.ptr[out.len - 1] == '\n');
	buf_reset(&out);
	in.have_queue = false;
	api_metrics_render(&in, &out);
	assert_null(strstr(out.ptr, "hikyaku_queue_messages"));
	assert_non_null(strstr(out.ptr, "\nhikyaku_email_log_up 0\n"));
	buf_fini(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_id_is_valid),
		cmocka_unit_test(test_api_query_decode),
		cmocka_unit_test(test_api_query_search_all_filters),
		cmocka_unit_test(test_api_query_search_rejects),
		cmocka_unit_test(test_api_query_time),
		cmocka_unit_test(test_api_cursor_round_trip),
		cmocka_unit_test(test_api_query_queue),
		cmocka_unit_test(test_api_fts_quote),
		cmocka_unit_test(test_api_json_row_types),
		cmocka_unit_test(test_api_json_messages_group_recipients),
		cmocka_unit_test(test_api_json_error),
		cmocka_unit_test(test_api_metrics_render),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
