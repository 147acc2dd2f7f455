/*
 * test_conf_explain.c - explainer files: etc/explain.yaml holds exactly the compiled-in table,
 * every kind of bad entry is a FILE:LINE:COL diagnostic, file rows override and extend the
 * built-in ones, and the configuration's explain: key loads them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "conf/conf_explain.h"
#include "proto/explain.h"
#include "util/buf.h"
#include "util/poison.h"

static void
str_eq_or_null(const char *id, const char *what, const char *a, const char *b)
{
	if (a == NULL && b == NULL)
		return;
	if (a == NULL || b == NULL || strcmp(a, b) != 0)
		fail_msg("row %s: %s differs: compiled-in \"%s\", etc/explain.yaml \"%s\"", id, what,
		    a ? a : "(none)", b ? b : "(none)");
}

/* The data file and the compiled-in default must never drift apart (DESIGN.md 10). */
static void
test_yaml_matches_compiled_table(void **state)
{
	struct explain_entry *rows = NULL;
	const struct explain_entry *t;
	struct conf_diag d;
	char path[4096];
	size_t n = 0, nt, i;

	(void)state;
	snprintf(path, sizeof(path), "%s/../../etc/explain.yaml", getenv("HK_DATA_DIR"));
	conf_diag_init(&d);
	if (conf_explain_load(path, &rows, &n, &d) == -1)
		fail_msg("%s", d.text.ptr);
	conf_diag_fini(&d);
	t = explain_table(&nt);
	for (i = 0; i < n && i < nt; i++) {
		const char *id = t[i].id;

		if (strcmp(t[i].id, rows[i].id) != 0)
			fail_msg("row %zu: compiled-in %s, etc/explain.yaml %s (same order in both)",
			    i, t[i].id, rows[i].id);
		if (t[i].code != rows[i].code)
			fail_msg("row %s: code %d vs %d", id, t[i].code, rows[i].code);
		str_eq_or_null(id, "enhanced", t[i].enhanced, rows[i].enhanced);
		str_eq_or_null(id, "pattern", t[i].pattern, rows[i].pattern);
		if (t[i].local != rows[i].local)
			fail_msg("row %s: local differs", id);
		if (t[i].culprit != rows[i].culprit)
			fail_msg("row %s: culprit %s vs %s", id, explain_culprit_name(t[i].culprit),
			    explain_culprit_name(rows[i].culprit));
		str_eq_or_null(id, "cause", t[i].cause, rows[i].cause);
		str_eq_or_null(id, "fix", t[i].fix, rows[i].fix);
		if (t[i].flags != rows[i].flags)
			fail_msg("row %s: flags 0x%x vs 0x%x", id, t[i].flags, rows[i].flags);
	}
	if (n != nt)
		fail_msg("compiled-in table has %zu rows, etc/explain.yaml %zu", nt, n);
	conf_explain_free(rows, n);
}

/* Load text as "x.yaml"; returns the diagnostics (caller frees) or NULL on success. */
static char *
diags(const char *yaml, struct explain_entry **rows, size_t *n)
{
	struct conf_diag d;
	char *out = NULL;

	conf_diag_init(&d);
	if (conf_explain_load_string("x.yaml", yaml, strlen(yaml), rows, n, &d) == -1) {
		assert_null(*rows);
		assert_int_equal(*n, 0);
		assert_true(d.count > 0);
		out = buf_steal(&d.text);
	} else {
		assert_int_equal(d.count, 0);
	}
	conf_diag_fini(&d);
	return out;
}

#define ROW(extra) "entries:\n  - id: a\n    culprit: auth\n    cause: c\n    fix: f\n" extra

static const struct {
	const char *yaml;
	const char *want; /* a substring of the diagnostics */
} bad_files[] = {
	{ "", "x.yaml:1:1: an explainer file needs \"entries:\"" },
	{ "- a\n", "x.yaml:1:1: an explainer file must be a mapping" },
	{ "entries: []\nentrys: 1\n", "x.yaml:2:1: unknown key \"entrys\" at the top level" },
	{ "foo: 1\n", "missing required key \"entries\"" },
	{ "entries: {a: 1}\n", "x.yaml:1:10: entries: expected a list" },
	{ "entries:\n  - 5\n", "x.yaml:2:5: entries[0]: expected a mapping" },
	{ ROW("    code: 250\n"), "x.yaml:6:11: entries[0].code: \"250\" is not a failure reply "
	  "code" },
	{ ROW("    code: 6xx\n"), "x.yaml:6:11: entries[0].code:" },
	{ ROW("    code: 55O\n"), "x.yaml:6:11: entries[0].code:" },
	{ ROW("    enhanced: \"5.7\"\n"), "x.yaml:6:15: entries[0].enhanced: \"5.7\" is not an "
	  "enhanced status code glob" },
	{ ROW("    enhanced: \"5.7.2a\"\n"), "x.yaml:6:15: entries[0].enhanced:" },
	{ ROW("    enhanced: \"3.1.1\"\n"), "x.yaml:6:15: entries[0].enhanced:" },
	{ ROW("    enhanced: \"5.1.1000\"\n"), "x.yaml:6:15: entries[0].enhanced:" },
	{ ROW("    code: 450\n    enhanced: \"5.1.1\"\n"), "x.yaml:7:15: entries[0].enhanced: "
	  "the class of \"5.1.1\" disagrees with code" },
	{ ROW("    pattern: \"*\"\n"), "x.yaml:6:14: entries[0].pattern: matches every reply" },
	{ ROW("    pattern: \"a  b\"\n"), "x.yaml:6:14: entries[0].pattern: has two blanks" },
	{ ROW("    pattern: \" a\"\n"), "x.yaml:6:14: entries[0].pattern: starts or ends" },
	{ ROW("    pattern: [a]\n"), "x.yaml:6:14: entries[0].pattern: expected a single value" },
	{ ROW("    code: 550\n    flags: [retry, quota]\n"), "x.yaml:7:13: entries[0].flags: "
	  "\"retry\" is not a flag" },
	{ ROW("    code: 550\n    flags: quota\n"), "x.yaml:7:12: entries[0].flags: expected a "
	  "list" },
	{ ROW("    code: 550\n    flags: [quota]\n"), "quota pauses the upstream" },
	{ ROW("    code: 550\n    flags: [suppress]\n"), "it needs culprit: recipient" },
	{ ROW("    code: 550\n    local: true\n"), "x.yaml:7:12: entries[0].local: a local entry" },
	{ ROW("    code: 550\n    local: yes\n"), "x.yaml:7:12: entries[0].local: \"yes\" is not "
	  "true or false" },
	{ ROW(""), "x.yaml:2:5: entries[0]: an entry needs code, enhanced or pattern" },
	{ ROW("    code: 550\n    colprit: tls\n"), "x.yaml:7:5: entries[0]: unknown key "
	  "\"colprit\"" },
	{ "entries:\n  - id: a\n    code: 550\n    culprit: mailbox\n    cause: c\n    fix: f\n",
	  "x.yaml:4:14: entries[0].culprit: \"mailbox\" is not a culprit" },
	{ "entries:\n  - id: A_b\n    code: 550\n    culprit: tls\n    cause: c\n    fix: f\n",
	  "x.yaml:2:9: entries[0].id: \"A_b\" is not an id" },
	{ "entries:\n  - code: 550\n    culprit: tls\n    fix: f\n",
	  "x.yaml:2:5: entries[0]: missing required key \"id\"" },
	{ "entries:\n  - id: a\n    code: 550\n    culprit: tls\n    fix: f\n",
	  "missing required key \"cause\"" },
	{ "entries:\n  - id: a\n    code: 550\n    cause: c\n    fix: f\n",
	  "missing required key \"culprit\"" },
	{ ROW("    code: 550\n") "  - id: a\n    code: 4xx\n    culprit: tls\n    cause: c\n"
	  "    fix: f\n", "x.yaml:7:9: entries[1].id: duplicate id \"a\" (first at 2:9)" },
	{ "entries:\n  - &x {id: a}\n  - *x\n", "YAML aliases" },
	{ "entries:\n  - id: [\n", "x.yaml:3:1: YAML syntax error" },
};

static void
test_bad_files_are_positioned(void **state)
{
	struct explain_entry *rows = NULL;
	size_t n = 0, i;

	(void)state;
	for (i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		char *got = diags(bad_files[i].yaml, &rows, &n);

		if (got == NULL)
			fail_msg("case %zu loaded, want %s", i, bad_files[i].want);
		if (strstr(got, bad_files[i].want) == NULL)
			fail_msg("case %zu: want \"%s\" in:\n%s", i, bad_files[i].want, got);
		free(got);
	}
}

static void
test_every_problem_is_reported(void **state)
{
	static const char yaml[] =
	    "entries:\n"
	    "  - id: one\n    code: 250\n    culprit: tls\n    cause: c\n    fix: f\n"
	    "  - id: two\n    code: 550\n    culprit: nobody\n    cause: c\n    fix: f\n";
	struct explain_entry *rows = NULL;
	size_t n = 0;
	char *got;

	(void)state;
	got = diags(yaml, &rows, &n);
	assert_non_null(got);
	assert_non_null(strstr(got, "x.yaml:3:11: "));
	assert_non_null(strstr(got, "x.yaml:9:14: "));
	free(got);
}

static void
test_rows_are_loaded(void **state)
{
	static const char yaml[] =
	    "# comment\n"
	    "entries:\n"
	    "  - id: custom-quota\n"
	    "    code: 5xx\n"
	    "    enhanced: \"5.?.*\"\n"
	    "    pattern: \"acme  quota\"\n"
	    "    culprit: provider_limit\n"
	    "    cause: \"Acme's quota.\"\n"
	    "    fix: \"Wait.\"\n"
	    "    flags: [retry_helps, other_upstream_helps, quota]\n"
	    "  - id: local-timeout\n"
	    "    local: true\n"
	    "    culprit: network\n"
	    "    cause: \"Our own words for a timeout.\"\n"
	    "    fix: \"Call the network team.\"\n";
	struct explain_entry *rows = NULL;
	size_t n = 0;
	char *got;

	(void)state;
	got = diags(yaml, &rows, &n);
	/* "acme  quota" has two blanks: fix the file, then check the rows. */
	assert_non_null(got);
	free(got);
	{
		char fixed[sizeof(yaml)];
		char *p;

		memcpy(fixed, yaml, sizeof(yaml));
		p = strstr(fixed, "acme  quota");
		memmove(p + 5, p + 6, strlen(p + 6) + 1);
		assert_null(diags(fixed, &rows, &n));
	}
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].id, "custom-quota");
	assert_int_equal(rows[0].code, 5);
	assert_string_equal(rows[0].enhanced, "5.?.*");
	assert_string_equal(rows[0].pattern, "acme quota");
	assert_int_equal(rows[0].culprit, EXPLAIN_CULPRIT_PROVIDER_LIMIT);
	assert_int_equal(rows[0].flags, EXPLAIN_RETRY_HELPS | EXPLAIN_OTHER_UPSTREAM_HELPS |
	    EXPLAIN_QUOTA);
	assert_false(rows[0].local);
	assert_true(rows[1].local);
	assert_null(rows[1].pattern);
	assert_int_equal(rows[1].flags, 0);
	conf_explain_free(rows, n);
	/* An empty list is a valid file: nothing added. */
	assert_null(diags("entries: []\n", &rows, &n));
	assert_null(rows);
	assert_int_equal(n, 0);
}

/* File rows come first: an equally specific row overrides a built-in one; others extend. */
static void
test_file_rows_override_and_extend(void **state)
{
	static const char yaml[] =
	    "entries:\n"
	    "  - id: our-dmarc\n"
	    "    code: 550\n"
	    "    enhanced: \"5.7.26\"\n"
	    "    culprit: sender_config\n"
	    "    cause: \"DMARC again: ask the mail team.\"\n"
	    "    fix: \"Open a ticket.\"\n"
	    "  - id: acme-quota\n"
	    "    code: 451\n"
	    "    pattern: \"acme hourly quota\"\n"
	    "    culprit: provider_limit\n"
	    "    cause: \"The Acme relay's hourly quota is used up.\"\n"
	    "    fix: \"Lower per_hour.\"\n"
	    "    flags: [retry_helps, other_upstream_helps, quota]\n"
	    "  - id: local-timeout\n"
	    "    local: true\n"
	    "    culprit: network\n"
	    "    cause: \"Our own words for a timeout.\"\n"
	    "    fix: \"Call the network team.\"\n";
	static const char dmarc[] = "Unauthenticated email from example.com is not accepted";
	static const char acme[] = "Acme hourly\n quota reached";
	struct explain_entry *rows = NULL;
	const struct explain_entry *e;
	size_t n = 0;

	(void)state;
	assert_null(diags(yaml, &rows, &n));
	e = explain_lookup_in(rows, n, 550, 5, 7, 26, dmarc, sizeof(dmarc) - 1);
	assert_string_equal(e->id, "our-dmarc");
	/* Without the file, the built-in row. */
	assert_string_equal(explain_lookup(550, 5, 7, 26, dmarc, sizeof(dmarc) - 1)->id,
	    "gmail-dmarc");
	e = explain_lookup_in(rows, n, 451, 0, 0, 0, acme, sizeof(acme) - 1);
	assert_string_equal(e->id, "acme-quota");
	assert_true(e->flags & EXPLAIN_QUOTA);
	/* A more specific built-in row still wins over a less specific file row. */
	e = explain_lookup_in(rows, n, 550, 5, 7, 26, "sender is unauthenticated", 25);
	assert_string_equal(e->id, "unauthenticated-sender");
	/* Built-in rows the file does not touch are still found. */
	e = explain_lookup_in(rows, n, 550, 5, 1, 1, "no", 2);
	assert_string_equal(e->id, "user-unknown");
	assert_string_equal(explain_find_in(rows, n, "local-timeout")->cause,
	    "Our own words for a timeout.");
	assert_string_equal(explain_find_in(rows, n, "local-refused")->id, "local-refused");
	assert_null(explain_find_in(rows, n, "nope"));
	conf_explain_free(rows, n);
}

struct tmp {
	char dir[64];
	char conf[128];
	char explain[128];
};

static void
tmp_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static const char tmp_conf_fmt[] =
    "listen: [{address: \"127.0.0.1:2525\"}]\n"
    "upstreams: [{name: u, host: 127.0.0.1, port: 2526, tls: none}]\n"
    "routes: [{name: r, upstreams: [u]}]\n"
    "explain: %s\n";

/* The configuration's explain: key loads the file; a broken file fails the whole load. */
static void
test_conf_key_loads_the_file(void **state)
{
	struct tmp t;
	struct conf *c = NULL;
	struct conf_diag d;
	char text[512], want[256];

	(void)state;
	snprintf(t.dir, sizeof(t.dir), "/tmp/hk-test-explain-XXXXXX");
	assert_non_null(mkdtemp(t.dir));
	snprintf(t.conf, sizeof(t.conf), "%s/hikyaku.yaml", t.dir);
	snprintf(t.explain, sizeof(t.explain), "%s/explain.yaml", t.dir);
	snprintf(text, sizeof(text), tmp_conf_fmt, t.explain);
	tmp_write(t.conf, text);
	tmp_write(t.explain, "entries:\n  - id: mine\n    code: 550\n    culprit: tls\n"
	    "    cause: c\n    fix: f\n");
	conf_diag_init(&d);
	if (conf_load(t.conf, &c, &d) == -1)
		fail_msg("%s", d.text.ptr);
	assert_string_equal(c->explain_path, t.explain);
	assert_int_equal(c->n_explain_rows, 1);
	assert_string_equal(c->explain_rows[0].id, "mine");
	conf_unref(c);

	tmp_write(t.explain, "entries:\n  - id: mine\n    code: 550\n    culprit: tls\n"
	    "    cause: c\n    fix: f\n    flags: [sometimes]\n");
	assert_int_equal(conf_load(t.conf, &c, &d), -1);
	assert_null(c);
	snprintf(want, sizeof(want), "%s:7:13: entries[0].flags: \"sometimes\" is not a flag",
	    t.explain);
	if (strstr(d.text.ptr, want) == NULL)
		fail_msg("want %s in %s", want, d.text.ptr);
	conf_diag_fini(&d);

	/* A missing file is reported at the key, in the configuration. */
	conf_diag_init(&d);
	assert_int_equal(unlink(t.explain), 0);
	assert_int_equal(conf_load(t.conf, &c, &d), -1);
	snprintf(want, sizeof(want), "%s:4:10: explain: cannot read", t.conf);
	if (strstr(d.text.ptr, want) == NULL)
		fail_msg("want %s in %s", want, d.text.ptr);
	conf_diag_fini(&d);
	assert_int_equal(unlink(t.conf), 0);
	assert_int_equal(rmdir(t.dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_matches_compiled_table),
		cmocka_unit_test(test_bad_files_are_positioned),
		cmocka_unit_test(test_every_problem_is_reported),
		cmocka_unit_test(test_rows_are_loaded),
		cmocka_unit_test(test_file_rows_override_and_extend),
		cmocka_unit_test(test_conf_key_loads_the_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
