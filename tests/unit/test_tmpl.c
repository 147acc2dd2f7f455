/* test_tmpl.c - announce templates: parsing, variables, substitution, refusals; shipped files. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/tmpl.h"
#include "util/buf.h"
#include "util/fsops.h"
#include "util/poison.h"

struct kv {
	const char *const *pairs; /* name, value, ..., NULL */
};

static const char *
kv_lookup(void *arg, const char *name)
{
	const struct kv *kv = arg;
	size_t i;

	for (i = 0; kv->pairs[i] != NULL; i += 2) {
		if (strcmp(kv->pairs[i], name) == 0)
			return kv->pairs[i + 1];
	}
	return NULL;
}

static enum tmpl_result
parse(const char *s, struct tmpl *t, size_t *line, const char **why)
{
	tmpl_init(t);
	return tmpl_parse(s, strlen(s), t, line, why);
}

static void
test_parse_and_render(void **state)
{
	static const char *const vals[] = { "service", "mail", "name", "Ann", "since", "09:00",
		NULL };
	struct kv kv = { vals };
	struct tmpl t;
	struct buf subj = BUF_INIT, body = BUF_INIT, list = BUF_INIT;
	size_t line = 0;
	const char *why = NULL, *name = NULL;

	(void)state;
	assert_int_equal(parse("subject:  {{service}} is down \r\n\r\nDear {{ name }},\r\n"
	    "{{service}} has been down since {{since}}.\r\n", &t, &line, &why), TMPL_OK);
	assert_int_equal(t.n_vars, 3);
	tmpl_vars_list(&t, &list);
	assert_string_equal(list.ptr, "service, name, since");
	assert_int_equal(tmpl_render(&t, kv_lookup, &kv, &subj, &body, &name), TMPL_OK);
	assert_string_equal(subj.ptr, "mail is down");
	assert_string_equal(body.ptr, "Dear Ann,\nmail has been down since 09:00.\n");
	tmpl_fini(&t);
	buf_fini(&subj);
	buf_fini(&body);
	buf_fini(&list);
}

static void
test_missing_and_bad_values(void **state)
{
	static const char *const no_since[] = { "service", "mail", NULL };
	static const char *const nl_subject[] = { "service", "a\nb", "since", "x", NULL };
	static const char *const nl_body[] = { "service", "mail", "since", "a\nb", NULL };
	static const char *const ctl_body[] = { "service", "mail", "since", "a\x1b", NULL };
	struct kv kv;
	struct tmpl t;
	struct buf subj = BUF_INIT, body = BUF_INIT;
	size_t line;
	const char *why, *name;

	(void)state;
	assert_int_equal(parse("Subject: {{service}}\n\nsince {{since}}\n", &t, &line, &why),
	    TMPL_OK);
	kv.pairs = no_since;
	assert_int_equal(tmpl_render(&t, kv_lookup, &kv, &subj, &body, &name), TMPL_MISSING);
	assert_string_equal(name, "since");
	kv.pairs = nl_subject;
	assert_int_equal(tmpl_render(&t, kv_lookup, &kv, &subj, &body, &name), TMPL_BAD_VALUE);
	assert_string_equal(name, "service");
	kv.pairs = nl_body;
	assert_int_equal(tmpl_render(&t, kv_lookup, &kv, &subj, &body, &name), TMPL_OK);
	assert_string_equal(body.ptr, "since a\nb\n");
	kv.pairs = ctl_body;
	assert_int_equal(tmpl_render(&t, kv_lookup, &kv, &subj, &body, &name), TMPL_BAD_VALUE);
	assert_string_equal(name, "since");
	tmpl_fini(&t);
	buf_fini(&subj);
	buf_fini(&body);
}

static void
test_refused_templates(void **state)
{
	static const struct {
		const char *in;
		size_t line;
		const char *why;
	} cases[] = {
		{ "", 1, "Subject:" },
		{ "Hello\n\nbody\n", 1, "Subject:" },
		{ "Subject: x", 1, "Subject:" },
		{ "Subject:   \n\nbody\n", 1, "subject is empty" },
		{ "Subject: x\nbody\n", 2, "empty line" },
		{ "Subject: x\n\n", 3, "body is empty" },
		{ "Subject: {{ }}\n\nbody\n", 1, "{{" },
		{ "Subject: x\n\nline\n{{a b}}\n", 4, "{{" },
		{ "Subject: x\n\nline\n\nx {{a\n", 5, "{{" },
		{ "Subject: x\n\nbad \x01 byte\n", 3, "control byte" },
		{ "Subject: x\n\n\xff\n", 1, "UTF-8" },
	};
	struct tmpl t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t line = 0;
		const char *why = NULL;

		assert_int_equal(parse(cases[i].in, &t, &line, &why), TMPL_BAD);
		assert_non_null(strstr(why, cases[i].why));
		assert_int_equal(line, cases[i].line);
		assert_int_equal(t.n_vars, 0);
		tmpl_fini(&t);
	}
}

static void
test_single_braces_are_text(void **state)
{
	static const char *const vals[] = { "a", "1", NULL };
	struct kv kv = { vals };
	struct tmpl t;
	struct buf subj = BUF_INIT, body = BUF_INIT;
	size_t line;
	const char *why, *name;

	(void)state;
	assert_int_equal(parse("Subject: {x} {{a}}}\n\n{ } {{a}}{\n", &t, &line, &why), TMPL_OK);
	assert_int_equal(tmpl_render(&t, kv_lookup, &kv, &subj, &body, &name), TMPL_OK);
	assert_string_equal(subj.ptr, "{x} 1}");
	assert_string_equal(body.ptr, "{ } 1{\n");
	tmpl_fini(&t);
	buf_fini(&subj);
	buf_fini(&body);
}

/* Every shipped template parses and uses the documented variables. */
static void
test_shipped_templates(void **state)
{
	static const char *const files[] = { "outage.en.txt", "outage.ja.txt", "recovery.en.txt",
		"recovery.ja.txt" };
	const char *dir = getenv("HK_DATA_DIR");
	size_t i;

	(void)state;
	assert_non_null(dir);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[4096];
		struct buf in = BUF_INIT, list = BUF_INIT;
		struct tmpl t;
		size_t line = 0;
		const char *why = NULL;
		int fd;

		snprintf(path, sizeof(path), "%s/../../etc/templates/%s", dir, files[i]);
		fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(fsops_read_all(fd, &in, TMPL_SIZE_MAX), 0);
		close(fd);
		tmpl_init(&t);
		assert_int_equal(tmpl_parse(in.ptr, in.len, &t, &line, &why), TMPL_OK);
		tmpl_vars_list(&t, &list);
		assert_non_null(strstr(list.ptr, "name"));
		assert_non_null(strstr(list.ptr, "service"));
		assert_non_null(strstr(list.ptr, "company"));
		if (strncmp(files[i], "outage", 6) == 0) {
			assert_non_null(strstr(list.ptr, "since"));
			assert_non_null(strstr(list.ptr, "expected"));
			assert_non_null(strstr(list.ptr, "backup_address"));
		}
		tmpl_fini(&t);
		buf_fini(&in);
		buf_fini(&list);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_render),
		cmocka_unit_test(test_missing_and_bad_values),
		cmocka_unit_test(test_refused_templates),
		cmocka_unit_test(test_single_braces_are_text),
		cmocka_unit_test(test_shipped_templates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
