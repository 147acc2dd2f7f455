/*
 * test_diag.c - the pure parts of the DNS checks: SPF, DMARC and DKIM record parsers, tag lists,
 * organizational domains and alignment, the provider table, and the verdict rules run on a
 * hand-filled answer store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "diag/diag_align.h"
#include "diag/diag_facts.h"
#include "diag/diag_report.h"
#include "diag/diag_rules.h"
#include "diag/dkim_record.h"
#include "diag/dmarc.h"
#include "diag/spf.h"
#include "diag/taglist.h"
#include "util/poison.h"

static const char key1024[] = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDOT/K9bc9wrPODifky1gEqmSOXpOicdNzqyLPCTA3od2eJw7u2dOXkcgL9LlZeSByrQLqnYkVIsIF874oJJKnkwlMbdZz/+IciSZB6fkSQyP7frooPUwY4qSex1jAzG/Kx71RwWumFsG4YV/hztyAzMxwk07kKgHMb654Qj3wmDQIDAQAB";

static enum spf_parse_result
parse_spf(const char *s, struct spf_record *r, const char **why)
{
	return spf_parse(s, strlen(s), r, why, NULL);
}

static void
test_spf_parse_terms(void **state)
{
	static struct spf_record r;
	const char *why;

	(void)state;
	assert_int_equal(parse_spf("v=spf1 ip4:192.0.2.0/24 -ip6:2001:db8::/32 "
	    "include:_spf.Example.com a mx:mail.example.com/28//64 ptr ~all exp=x.example.com "
	    "unknown=ignored", &r, &why), SPF_PARSE_OK);
	assert_int_equal(r.n, 7);
	assert_int_equal(r.terms[0].mech, SPF_MECH_IP4);
	assert_int_equal(r.terms[0].prefix, 24);
	assert_int_equal(r.terms[1].qual, '-');
	assert_int_equal(r.terms[1].prefix, 32);
	assert_string_equal(r.terms[2].domain, "_spf.example.com");
	assert_int_equal(r.terms[3].mech, SPF_MECH_A);
	assert_string_equal(r.terms[3].domain, "");
	assert_int_equal(r.terms[4].prefix, 28);
	assert_int_equal(r.terms[4].prefix6, 64);
	assert_int_equal(r.terms[6].qual, '~');
	assert_true(r.has_exp);
	/* include, a, mx, ptr. */
	assert_int_equal(spf_record_lookups(&r), 4);
	assert_int_equal(parse_spf("v=spf1 redirect=_spf.example.net", &r, &why), SPF_PARSE_OK);
	assert_string_equal(r.redirect, "_spf.example.net");
	assert_int_equal(spf_record_lookups(&r), 1);
	assert_int_equal(parse_spf("V=SPF1", &r, &why), SPF_PARSE_OK);
	assert_int_equal(r.n, 0);
}

static void
test_spf_parse_errors(void **state)
{
	static struct spf_record r;
	static const char *const bad[] = {
		"v=spf1 ip4:192.0.2.300", "v=spf1 ip4:192.0.2.0/33", "v=spf1 foo", "v=spf1 include",
		"v=spf1 include:", "v=spf1 all:x", "v=spf1 a/33", "v=spf1 -", "v=spf1 =x",
		"v=spf1 redirect=a.example redirect=b.example", "v=spf1 include:nodot",
		"v=spf1 ptr/24", "v=spf1 ip6:zz::1",
	};
	const char *why;
	size_t i, off;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (spf_parse(bad[i], strlen(bad[i]), &r, &why, &off) != SPF_PARSE_BAD)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(why);
		assert_true(off >= 7);
	}
	assert_int_equal(parse_spf("v=spf10 -all", &r, &why), SPF_PARSE_NOT_SPF);
	assert_int_equal(parse_spf("google-site-verification=x", &r, &why), SPF_PARSE_NOT_SPF);
	/* Macros are kept, not followed. */
	assert_int_equal(parse_spf("v=spf1 exists:%{i}.bl.example -all", &r, &why), SPF_PARSE_OK);
	assert_true(r.terms[0].has_macro);
}

static void
test_spf_cidr(void **state)
{
	static struct spf_record r;
	const uint8_t in[4] = { 192, 0, 2, 77 }, out[4] = { 192, 0, 3, 1 };
	const char *why;

	(void)state;
	assert_int_equal(parse_spf("v=spf1 ip4:192.0.2.64/26", &r, &why), SPF_PARSE_OK);
	assert_true(spf_term_has_ip(&r.terms[0], in, false));
	assert_false(spf_term_has_ip(&r.terms[0], out, false));
	assert_false(spf_term_has_ip(&r.terms[0], in, true));
	assert_true(spf_cidr_match(in, 0, out, false));
}

static void
test_taglist(void **state)
{
	static const char s[] = " v = DKIM1 ;; k=rsa;\tp=AB CD ;";
	struct taglist tl;
	struct taglist_tag t;
	const char *why;

	(void)state;
	taglist_init(&tl, s, strlen(s));
	assert_int_equal(taglist_next(&tl, &t, &why), 1);
	assert_int_equal(t.name_len, 1);
	assert_memory_equal(t.value, "DKIM1", 5);
	assert_int_equal(t.value_len, 5);
	assert_int_equal(taglist_next(&tl, &t, &why), 1);
	assert_memory_equal(t.name, "k", 1);
	assert_int_equal(taglist_next(&tl, &t, &why), 1);
	assert_int_equal(t.value_len, 5);
	assert_int_equal(taglist_next(&tl, &t, &why), 0);
	taglist_init(&tl, "novalue; x=1", 12);
	assert_int_equal(taglist_next(&tl, &t, &why), -1);
	taglist_init(&tl, "1a=2", 4);
	assert_int_equal(taglist_next(&tl, &t, &why), -1);
}

static void
test_dmarc_parse(void **state)
{
	struct dmarc_record r;
	const char *why;
	static const char full[] = "v=DMARC1; p=quarantine; sp=reject; pct=25; "
	    "rua=mailto:a@example.com, mailto:b@example.org; adkim=s";

	(void)state;
	assert_int_equal(dmarc_parse(full, strlen(full), &r, &why), DMARC_PARSE_OK);
	assert_int_equal(r.p, DMARC_POLICY_QUARANTINE);
	assert_true(r.has_sp);
	assert_int_equal(r.sp, DMARC_POLICY_REJECT);
	assert_int_equal(r.pct, 25);
	assert_true(r.has_rua && r.rua_ok);
	assert_true(r.strict_dkim);
	assert_false(r.strict_spf);
	assert_int_equal(dmarc_parse("v=DMARC1; p=none", 16, &r, &why), DMARC_PARSE_OK);
	assert_int_equal(r.pct, 100);
	assert_false(r.has_rua);
	assert_int_equal(dmarc_parse("v=DMARC1; rua=https://x", 23, &r, &why), DMARC_PARSE_BAD);
	assert_string_equal(why, "the required p= tag is missing");
	assert_int_equal(dmarc_parse("v=DMARC1; p=block", 17, &r, &why), DMARC_PARSE_BAD);
	assert_int_equal(dmarc_parse("v=DMARC1; p=none; pct=101", 25, &r, &why), DMARC_PARSE_BAD);
	assert_int_equal(dmarc_parse("p=none; v=DMARC1", 16, &r, &why), DMARC_PARSE_NOT_DMARC);
	assert_int_equal(dmarc_parse("v=DMARC1; p=none; rua=reports@example.com", 41, &r, &why),
	    DMARC_PARSE_OK);
	assert_false(r.rua_ok);
}

static void
test_dkim_record(void **state)
{
	struct dkim_record r;
	const char *why;
	char txt[1024];

	(void)state;
	snprintf(txt, sizeof(txt), "v=DKIM1; k=rsa; t=s:y; p=%.60s  %s", key1024, key1024 + 60);
	assert_int_equal(dkim_record_parse(txt, strlen(txt), &r, &why), DKIM_RECORD_OK);
	assert_int_equal(r.bits, 1024);
	assert_true(r.has_v && r.testing && !r.revoked);
	assert_int_equal(dkim_record_parse("p=", 2, &r, &why), DKIM_RECORD_OK);
	assert_true(r.revoked);
	snprintf(txt, sizeof(txt), "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
	assert_int_equal(dkim_record_parse(txt, strlen(txt), &r, &why), DKIM_RECORD_OK);
	assert_int_equal(r.bits, 256);
	assert_int_equal(r.k, DKIM_RECORD_KEY_ED25519);
	assert_int_equal(dkim_record_parse("v=DKIM1; k=dsa; p=AAAA", 22, &r, &why),
	    DKIM_RECORD_BAD);
	assert_int_equal(dkim_record_parse("v=DKIM1; p=!!!", 14, &r, &why), DKIM_RECORD_BAD);
	assert_string_equal(why, "p= is not valid base64");
	assert_int_equal(dkim_record_parse("v=DKIM1; p=AAAA", 15, &r, &why), DKIM_RECORD_BAD);
	assert_int_equal(dkim_record_parse("v=DKIM1; k=rsa", 14, &r, &why), DKIM_RECORD_BAD);
	assert_int_equal(dkim_record_parse("v=spf1 -all", 11, &r, &why), DKIM_RECORD_NOT_DKIM);
	assert_int_equal(dkim_record_parse("k=rsa; v=DKIM1; p=", 18, &r, &why), DKIM_RECORD_BAD);
}

static void
test_align(void **state)
{
	char org[256];

	(void)state;
	assert_int_equal(diag_align_org_domain("Mail.Example.COM", org, sizeof(org)), 0);
	assert_string_equal(org, "example.com");
	assert_int_equal(diag_align_org_domain("a.b.example.co.uk", org, sizeof(org)), 0);
	assert_string_equal(org, "example.co.uk");
	assert_true(diag_align_is_aligned("news.example.com", "example.com"));
	assert_false(diag_align_is_aligned("example.co.uk", "other.co.uk"));
	assert_false(diag_align_is_aligned("example.com", "example.net"));
	assert_string_equal(diag_align_addr_domain("relay@Example.org"), "Example.org");
	assert_null(diag_align_addr_domain("nodomain"));
	assert_string_equal(diag_align_provider("smtp.gmail.com")->spf_include, "_spf.google.com");
	assert_string_equal(diag_align_provider("email-smtp.eu-west-1.amazonaws.com")->spf_include,
	    "amazonses.com");
	assert_string_equal(diag_align_provider("smtp.office365.com")->spf_include,
	    "spf.protection.outlook.com");
	assert_null(diag_align_provider("notgmail.com"));
	assert_null(diag_align_provider("smtp.example.net"));
}

/* ---- rules on a hand-filled store ---- */

static void
txt(struct diag_facts *fs, const char *name, const char *v)
{
	const char *vals[1] = { v };

	diag_facts_set(fs, DIAG_FACT_TXT, name, v != NULL ? DNS_OK : DNS_NODATA, vals,
	    v != NULL ? 1 : 0);
}

static void
addr(struct diag_facts *fs, const char *name, const char *v)
{
	const char *vals[1] = { v };

	diag_facts_set(fs, DIAG_FACT_ADDR, name, v != NULL ? DNS_OK : DNS_NXDOMAIN, vals,
	    v != NULL ? 1 : 0);
}

/* Run the rules, answering every wanted fact NXDOMAIN, until they want nothing. */
static void
run(const struct diag_input *in, struct diag_facts *fs, struct diag_report *rep)
{
	size_t i, rounds = 0;

	for (;;) {
		diag_rules_run(in, fs, rep);
		if (diag_facts_wanted(fs) == 0)
			return;
		assert_true(++rounds < 30);
		for (i = 0; i < fs->n; i++) {
			if (!fs->v[i].done)
				diag_facts_set(fs, fs->v[i].type, fs->v[i].name, DNS_NXDOMAIN, NULL, 0);
		}
	}
}

static enum diag_status
status_of(const struct diag_report *rep, const char *key)
{
	const struct diag_finding *f = diag_report_find(rep, key);

	if (f == NULL)
		fail_msg("no finding %s", key);
	return f->status;
}

static void
test_rules_spf_lookups_and_ip(void **state)
{
	static const char *const ips[] = { "198.18.0.9", "203.0.113.5" };
	static const struct diag_upstream ups[] = {
		{ .name = "gw", .host = "smtp.gmail.com", .account_domain = "example.com" },
	};
	struct diag_input in = { .domain = "example.com", .ips = ips, .n_ips = 2,
		.upstreams = ups, .n_upstreams = 1 };
	struct diag_facts fs;
	struct diag_report rep;

	(void)state;
	diag_facts_init(&fs);
	diag_report_init(&rep);
	txt(&fs, "example.com", "v=spf1 a include:_spf.google.com include:i.example.com ~all");
	txt(&fs, "_spf.google.com", "v=spf1 include:a.google.com include:b.google.com ~all");
	txt(&fs, "a.google.com", "v=spf1 ip4:203.0.113.0/24 ~all");
	txt(&fs, "b.google.com", "v=spf1 mx a ptr exists:x.example -all");
	txt(&fs, "i.example.com", "v=spf1 a mx a:x.example.com mx:y.example.com -all");
	addr(&fs, "example.com", "198.18.0.9");
	run(&in, &fs, &rep);
	/* 3 + 2 + 0 + 4 + 4 = 13 lookups. */
	assert_int_equal(status_of(&rep, "spf.lookups"), DIAG_ERROR);
	assert_non_null(strstr(diag_report_find(&rep, "spf.lookups")->text, "needs 13"));
	assert_int_equal(status_of(&rep, "spf.all"), DIAG_OK);
	assert_int_equal(status_of(&rep, "spf.provider.gw"), DIAG_OK);
	assert_int_equal(status_of(&rep, "alignment.gw"), DIAG_OK);
	assert_int_equal(status_of(&rep, "spf.ip.198.18.0.9"), DIAG_OK);
	/* Matched inside an include: pass. */
	assert_int_equal(status_of(&rep, "spf.ip.203.0.113.5"), DIAG_OK);
	diag_report_fini(&rep);
	diag_facts_fini(&fs);
}

static void
test_rules_spf_failures(void **state)
{
	static const char *const ips[] = { "198.18.0.9" };
	static const struct diag_upstream ups[] = {
		{ .name = "ses", .host = "email-smtp.us-east-1.amazonaws.com",
		  .account_domain = "other.example" },
	};
	struct diag_input in = { .domain = "example.com", .ips = ips, .n_ips = 1,
		.upstreams = ups, .n_upstreams = 1, .mx_mode = true };
	struct diag_facts fs;
	struct diag_report rep;
	const char *vals[2] = { "v=spf1 -all", "v=spf1 +all" };

	(void)state;
	diag_facts_init(&fs);
	diag_report_init(&rep);
	diag_facts_set(&fs, DIAG_FACT_TXT, "example.com", DNS_OK, vals, 2);
	run(&in, &fs, &rep);
	assert_int_equal(status_of(&rep, "spf.single"), DIAG_ERROR);
	assert_null(diag_report_find(&rep, "spf.present"));
	/* MX mode: no PTR is an error. */
	assert_int_equal(status_of(&rep, "ptr.198.18.0.9"), DIAG_ERROR);
	assert_int_equal(status_of(&rep, "alignment.ses"), DIAG_WARNING);
	assert_int_equal(status_of(&rep, "dmarc.present"), DIAG_ERROR);
	diag_facts_fini(&fs);

	diag_facts_init(&fs);
	txt(&fs, "example.com", "v=spf1 ip4:192.0.2.1 include:gone.example.com ?all");
	run(&in, &fs, &rep);
	assert_int_equal(status_of(&rep, "spf.include"), DIAG_ERROR);
	assert_int_equal(status_of(&rep, "spf.all"), DIAG_WARNING);
	assert_int_equal(status_of(&rep, "spf.provider.ses"), DIAG_ERROR);
	assert_int_equal(status_of(&rep, "spf.ip.198.18.0.9"), DIAG_ERROR);
	assert_non_null(strstr(diag_report_find(&rep, "spf.provider.ses")->fix,
	    "include:amazonses.com"));
	diag_facts_fini(&fs);

	diag_facts_init(&fs);
	txt(&fs, "example.com", NULL);
	run(&in, &fs, &rep);
	assert_int_equal(status_of(&rep, "spf.present"), DIAG_ERROR);
	assert_non_null(strstr(diag_report_find(&rep, "spf.present")->fix,
	    "v=spf1 include:amazonses.com ip4:198.18.0.9 -all"));
	diag_report_fini(&rep);
	diag_facts_fini(&fs);
}

static void
test_rules_spf_eval_mx_redirect(void **state)
{
	struct diag_facts fs;
	const char *mx[1] = { "mx.example.com" };

	(void)state;
	diag_facts_init(&fs);
	txt(&fs, "example.com", "v=spf1 mx/24 redirect=_spf.example.com");
	diag_facts_set(&fs, DIAG_FACT_MX, "example.com", DNS_OK, mx, 1);
	addr(&fs, "mx.example.com", "198.18.1.1");
	txt(&fs, "_spf.example.com", "v=spf1 ip6:3fff::/16 -all");
	assert_int_equal(diag_rules_spf_eval(&fs, "example.com", "198.18.1.200"), '+');
	assert_int_equal(diag_rules_spf_eval(&fs, "example.com", "3fff::5"), '+');
	assert_int_equal(diag_rules_spf_eval(&fs, "example.com", "198.18.2.1"), '-');
	/* An answer still missing: 0, and the name is wanted. */
	txt(&fs, "other.example", "v=spf1 include:later.example -all");
	assert_int_equal(diag_rules_spf_eval(&fs, "other.example", "198.18.2.1"), 0);
	assert_int_equal(diag_facts_wanted(&fs), 1);
	assert_int_equal(diag_rules_spf_eval(&fs, "example.com", "bogus"), 'U');
	diag_facts_fini(&fs);
}

static void
test_rules_dmarc_dkim_blocklist(void **state)
{
	static const char *const ips[] = { "198.18.0.9" };
	static const char *const bls[] = { "zen.spamhaus.org", "bl.example" };
	struct diag_input in = { .domain = "mail.example.com", .selector = "s1", .ips = ips,
		.n_ips = 1, .blocklists = bls, .n_blocklists = 2 };
	struct diag_facts fs;
	struct diag_report rep;
	char txtv[512];
	const char *names[1] = { "out.example.com" };
	const struct diag_finding *f;

	(void)state;
	diag_facts_init(&fs);
	diag_report_init(&rep);
	txt(&fs, "_dmarc.mail.example.com", NULL);
	txt(&fs, "_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:d@example.com");
	snprintf(txtv, sizeof(txtv), "v=DKIM1; p=%s", key1024);
	txt(&fs, "s1._domainkey.mail.example.com", txtv);
	diag_facts_set(&fs, DIAG_FACT_PTR, "198.18.0.9", DNS_OK, names, 1);
	addr(&fs, "out.example.com", "198.18.0.9");
	addr(&fs, "9.0.18.198.zen.spamhaus.org", "127.0.0.10");
	txt(&fs, "9.0.18.198.zen.spamhaus.org", "https://www.spamhaus.org/query/ip/198.18.0.9");
	addr(&fs, "9.0.18.198.bl.example", "127.255.255.254");
	run(&in, &fs, &rep);
	/* The organizational domain's record applies. */
	assert_int_equal(status_of(&rep, "dmarc.present"), DIAG_OK);
	assert_non_null(strstr(diag_report_find(&rep, "dmarc.present")->text, "_dmarc.example.com"));
	assert_int_equal(status_of(&rep, "dmarc.policy"), DIAG_OK);
	assert_int_equal(status_of(&rep, "dkim.present"), DIAG_OK);
	assert_int_equal(status_of(&rep, "dkim.key_size"), DIAG_WARNING);
	assert_int_equal(status_of(&rep, "ptr.198.18.0.9"), DIAG_OK);
	f = diag_report_find(&rep, "blocklist.zen.spamhaus.org.198.18.0.9");
	assert_non_null(f);
	assert_int_equal(f->status, DIAG_ERROR);
	assert_non_null(strstr(f->text, "PBL"));
	assert_non_null(strstr(f->text, "spamhaus.org/query"));
	f = diag_report_find(&rep, "blocklist.bl.example.198.18.0.9");
	assert_int_equal(f->status, DIAG_WARNING);
	assert_true(f->transient);
	assert_int_equal(status_of(&rep, "mta_sts.present"), DIAG_WARNING);
	assert_int_equal(diag_report_worst(&rep), DIAG_ERROR);
	diag_report_fini(&rep);
	diag_facts_fini(&fs);
}

static void
test_report_render(void **state)
{
	struct diag_report rep;
	struct buf b;

	(void)state;
	diag_report_init(&rep);
	snprintf(rep.domain, sizeof(rep.domain), "example.com");
	diag_report_add(&rep, "spf", "spf.present", DIAG_ERROR, "no \"SPF\" record");
	diag_report_fix(&rep, "publish one");
	diag_report_add(&rep, "mx", "mx.present", DIAG_OK, "2 MX hosts");
	buf_init(&b);
	diag_report_json(&rep, &b);
	assert_string_equal(b.ptr, "{\"domain\":\"example.com\",\"selector\":null,\"ips\":[],"
	    "\"status\":\"error\",\"counts\":{\"ok\":1,\"warning\":0,\"error\":1},\"findings\":["
	    "{\"check\":\"spf\",\"key\":\"spf.present\",\"status\":\"error\","
	    "\"text\":\"no \\\"SPF\\\" record\",\"fix\":\"publish one\"},"
	    "{\"check\":\"mx\",\"key\":\"mx.present\",\"status\":\"ok\",\"text\":\"2 MX hosts\","
	    "\"fix\":\"\"}]}");
	buf_reset(&b);
	diag_report_text(&rep, &b);
	assert_non_null(strstr(b.ptr, "1 ok, 0 warnings, 1 error\n"));
	assert_non_null(strstr(b.ptr, "ERROR    spf        no \"SPF\" record\n"));
	assert_non_null(strstr(b.ptr, "fix: publish one\n"));
	buf_fini(&b);
	diag_report_fini(&rep);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spf_parse_terms),
		cmocka_unit_test(test_spf_parse_errors),
		cmocka_unit_test(test_spf_cidr),
		cmocka_unit_test(test_taglist),
		cmocka_unit_test(test_dmarc_parse),
		cmocka_unit_test(test_dkim_record),
		cmocka_unit_test(test_align),
		cmocka_unit_test(test_rules_spf_lookups_and_ip),
		cmocka_unit_test(test_rules_spf_failures),
		cmocka_unit_test(test_rules_spf_eval_mx_redirect),
		cmocka_unit_test(test_rules_dmarc_dkim_blocklist),
		cmocka_unit_test(test_report_render),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
