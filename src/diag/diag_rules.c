/*
 * diag_rules.c - what the DNS answers mean, and what to do about them.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/str.h"
#include "../util/xalloc.h"
#include "diag_align.h"
#include "diag_rules.h"
#include "dkim_record.h"
#include "dmarc.h"
#include "spf.h"
#include "../util/poison.h"

#define DIAG_SPF_DEPTH 10

enum diag_spf_state {
	DIAG_SPF_PENDING = 0,
	DIAG_SPF_ONE,
	DIAG_SPF_NONE,
	DIAG_SPF_MANY,
	DIAG_SPF_BAD,
	DIAG_SPF_DNS,    /* lookup failed (temporary) */
	DIAG_SPF_NXDOMAIN,
};

/* The one SPF record of domain. why gets the syntax error or the DNS reason. */
static enum diag_spf_state
diag_spf_record(struct diag_facts *fs, const char *domain, struct spf_record *rec,
    const char **why, const char **text)
{
	const struct diag_fact *f = diag_facts_get(fs, DIAG_FACT_TXT, domain);
	size_t i, found = 0, at = 0;

	*why = NULL;
	if (f == NULL)
		return DIAG_SPF_PENDING;
	if (f->status == DNS_NXDOMAIN)
		return DIAG_SPF_NXDOMAIN;
	if (f->status != DNS_OK && f->status != DNS_NODATA) {
		*why = f->why[0] ? f->why : dns_status_name(f->status);
		return DIAG_SPF_DNS;
	}
	for (i = 0; i < f->n; i++) {
		if (spf_is_record(f->vals[i], strlen(f->vals[i]))) {
			found++;
			at = i;
		}
	}
	if (found == 0)
		return DIAG_SPF_NONE;
	if (found > 1)
		return DIAG_SPF_MANY;
	if (text != NULL)
		*text = f->vals[at];
	if (spf_parse(f->vals[at], strlen(f->vals[at]), rec, why, NULL) != SPF_PARSE_OK)
		return DIAG_SPF_BAD;
	return DIAG_SPF_ONE;
}

/* What a walk over the include/redirect tree found. */
struct diag_spf_walk {
	unsigned lookups;
	bool pending;
	char includes[64][SPF_DOMAIN_MAX];
	size_t n_includes;
	char problem[256];     /* first broken include/redirect target */
	bool macro;
};

static void
diag_spf_walk(struct diag_facts *fs, const char *domain, unsigned depth, struct diag_spf_walk *w)
{
	struct spf_record *rec = xmalloc(sizeof(*rec));
	const char *why;
	enum diag_spf_state st;
	size_t i;

	st = diag_spf_record(fs, domain, rec, &why, NULL);
	if (st == DIAG_SPF_PENDING) {
		w->pending = true;
		goto done;
	}
	if (st != DIAG_SPF_ONE) {
		if (depth > 0 && w->problem[0] == '\0')
			snprintf(w->problem, sizeof(w->problem), "%s %s", domain,
			    st == DIAG_SPF_NONE ? "has no SPF record" :
			    st == DIAG_SPF_MANY ? "has more than one SPF record" :
			    st == DIAG_SPF_BAD ? "has an SPF record with a syntax error" :
			    st == DIAG_SPF_NXDOMAIN ? "does not exist" : "could not be looked up");
		goto done;
	}
	w->lookups += spf_record_lookups(rec);
	if (depth >= DIAG_SPF_DEPTH || w->lookups > 4 * SPF_LOOKUP_LIMIT)
		goto done;
	for (i = 0; i < rec->n; i++) {
		const struct spf_term *t = &rec->terms[i];

		if (t->mech != SPF_MECH_INCLUDE)
			continue;
		if (t->has_macro) {
			w->macro = true;
			continue;
		}
		if (w->n_includes < HK_ARRAY_LEN(w->includes))
			memcpy(w->includes[w->n_includes++], t->domain, SPF_DOMAIN_MAX);
		diag_spf_walk(fs, t->domain, depth + 1, w);
	}
	if (rec->redirect[0] != '\0' && !rec->redirect_macro) {
		if (w->n_includes < HK_ARRAY_LEN(w->includes))
			memcpy(w->includes[w->n_includes++], rec->redirect, SPF_DOMAIN_MAX);
		diag_spf_walk(fs, rec->redirect, depth + 1, w);
	}
done:
	free(rec);
}

/* ---- SPF evaluation for one address ---- */

static bool
diag_addr_parse(const char *ip, uint8_t *a, bool *v6)
{
	*v6 = strchr(ip, ':') != NULL;
	return inet_pton(*v6 ? AF_INET6 : AF_INET, ip, a) == 1;
}

/* Does one of the addresses of host fall in the term's CIDR? -1 pending, -2 lookup failed. */
static int
diag_spf_host_match(struct diag_facts *fs, const char *host, const struct spf_term *t,
    const uint8_t *a, bool v6)
{
	const struct diag_fact *f = diag_facts_get(fs, DIAG_FACT_ADDR, host);
	size_t i;

	if (f == NULL)
		return -1;
	if (f->status == DNS_TEMPFAIL || f->status == DNS_BOGUS)
		return -2;
	for (i = 0; i < f->n; i++) {
		uint8_t b[16];
		bool bv6;

		if (diag_addr_parse(f->vals[i], b, &bv6) && bv6 == v6 &&
		    spf_cidr_match(b, v6 ? t->prefix6 : t->prefix, a, v6))
			return 1;
	}
	return 0;
}

static char diag_spf_eval_at(struct diag_facts *fs, const char *domain, const uint8_t *a, bool v6,
    unsigned depth);

/* 1 match, 0 no match, -1 pending, -2 cannot tell. */
static int
diag_spf_term_match(struct diag_facts *fs, const char *domain, const struct spf_term *t,
    const uint8_t *a, bool v6, unsigned depth)
{
	const char *target = t->domain[0] != '\0' ? t->domain : domain;
	const struct diag_fact *f;
	size_t i;
	int m, worst = 0;
	char r;

	if (t->has_macro)
		return -2;
	switch (t->mech) {
	case SPF_MECH_ALL:
		return 1;
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		return spf_term_has_ip(t, a, v6) ? 1 : 0;
	case SPF_MECH_A:
		return diag_spf_host_match(fs, target, t, a, v6);
	case SPF_MECH_MX:
		f = diag_facts_get(fs, DIAG_FACT_MX, target);
		if (f == NULL)
			return -1;
		if (f->status != DNS_OK)
			return f->status == DNS_TEMPFAIL || f->status == DNS_BOGUS ? -2 : 0;
		if (f->implicit_mx)
			return 0; /* RFC 7208 5.4: no MX records, no match */
		for (i = 0; i < f->n && i < 10; i++) {
			m = diag_spf_host_match(fs, f->vals[i], t, a, v6);
			if (m == 1)
				return 1;
			if (m < worst)
				worst = m;
		}
		return worst;
	case SPF_MECH_INCLUDE:
		r = diag_spf_eval_at(fs, target, a, v6, depth + 1);
		return r == 0 ? -1 : r == '+' ? 1 : r == 'U' ? -2 : 0;
	case SPF_MECH_PTR:
	case SPF_MECH_EXISTS:
		return -2;
	}
	return -2;
}

static char
diag_spf_eval_at(struct diag_facts *fs, const char *domain, const uint8_t *a, bool v6,
    unsigned depth)
{
	struct spf_record *rec;
	const char *why;
	enum diag_spf_state st;
	char res = 'N';
	size_t i;

	if (depth > DIAG_SPF_DEPTH)
		return 'U';
	rec = xmalloc(sizeof(*rec));
	st = diag_spf_record(fs, domain, rec, &why, NULL);
	if (st == DIAG_SPF_PENDING) {
		res = 0;
		goto done;
	}
	if (st != DIAG_SPF_ONE) {
		res = st == DIAG_SPF_NONE || st == DIAG_SPF_NXDOMAIN ? 'N' : 'U';
		goto done;
	}
	for (i = 0; i < rec->n; i++) {
		int m = diag_spf_term_match(fs, domain, &rec->terms[i], a, v6, depth);

		if (m == -1) {
			res = 0;
			goto done;
		}
		if (m == -2) {
			res = 'U';
			goto done;
		}
		if (m == 1) {
			res = rec->terms[i].qual;
			goto done;
		}
	}
	if (rec->redirect[0] != '\0')
		res = rec->redirect_macro ? 'U' : diag_spf_eval_at(fs, rec->redirect, a, v6,
		    depth + 1);
done:
	free(rec);
	return res;
}

char
diag_rules_spf_eval(struct diag_facts *fs, const char *domain, const char *ip)
{
	uint8_t a[16];
	bool v6;

	if (!diag_addr_parse(ip, a, &v6))
		return 'U';
	return diag_spf_eval_at(fs, domain, a, v6, 0);
}

/* ---- SPF ---- */

static const char *
diag_spf_suggest(const struct diag_input *in, char *buf, size_t size)
{
	size_t i, n = 0;

	n += (size_t)snprintf(buf, size, "v=spf1");
	for (i = 0; i < in->n_upstreams && n < size; i++) {
		const struct diag_provider *pv = diag_align_provider(in->upstreams[i].host);

		if (pv != NULL)
			n += (size_t)snprintf(buf + n, size - n, " include:%s", pv->spf_include);
	}
	for (i = 0; i < in->n_ips && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, " %s:%s",
		    strchr(in->ips[i], ':') ? "ip6" : "ip4", in->ips[i]);
	if (n < size)
		snprintf(buf + n, size - n, " -all");
	return buf;
}

/* The all term of domain's record, following redirect when there is none: 0 when absent. */
static char
diag_spf_all(struct diag_facts *fs, const char *domain, unsigned depth)
{
	struct spf_record *rec = xmalloc(sizeof(*rec));
	const char *why;
	char q = 0;
	size_t i;

	if (diag_spf_record(fs, domain, rec, &why, NULL) == DIAG_SPF_ONE) {
		for (i = 0; i < rec->n; i++) {
			if (rec->terms[i].mech == SPF_MECH_ALL)
				q = rec->terms[i].qual;
		}
		if (q == 0 && rec->redirect[0] != '\0' && depth < DIAG_SPF_DEPTH)
			q = diag_spf_all(fs, rec->redirect, depth + 1);
	}
	free(rec);
	return q;
}

static void
diag_rules_spf(const struct diag_input *in, struct diag_facts *fs, struct diag_report *out)
{
	struct spf_record *rec = xmalloc(sizeof(*rec));
	struct diag_spf_walk *w = NULL;
	const char *why, *text = NULL;
	char sug[256], key[192], q;
	enum diag_spf_state st;
	size_t i, j;

	st = diag_spf_record(fs, in->domain, rec, &why, &text);
	switch (st) {
	case DIAG_SPF_PENDING:
		goto done;
	case DIAG_SPF_NXDOMAIN:
		diag_report_add(out, "spf", "spf.present", DIAG_ERROR,
		    "%s does not exist in DNS (NXDOMAIN)", in->domain);
		diag_report_fix(out, "Check the spelling of the domain, or register it and publish "
		    "its DNS records.");
		goto done;
	case DIAG_SPF_DNS:
		diag_report_add(out, "spf", "spf.present", DIAG_WARNING,
		    "the TXT records of %s could not be looked up: %s", in->domain, why);
		out->v[out->n - 1].transient = true;
		diag_report_fix(out, "Check the resolver (dns: in the configuration) and try again.");
		goto done;
	case DIAG_SPF_NONE:
		diag_report_add(out, "spf", "spf.present", DIAG_ERROR,
		    "%s publishes no SPF record: receivers cannot tell which servers may send for it",
		    in->domain);
		diag_report_fix(out, "Publish one TXT record at %s: \"%s\"", in->domain,
		    diag_spf_suggest(in, sug, sizeof(sug)));
		goto done;
	case DIAG_SPF_MANY:
		diag_report_add(out, "spf", "spf.single", DIAG_ERROR,
		    "%s publishes more than one SPF record: receivers treat that as a permanent "
		    "error (RFC 7208 4.5), as if there were none", in->domain);
		diag_report_fix(out, "Merge them into one TXT record starting with v=spf1 and "
		    "delete the others.");
		goto done;
	case DIAG_SPF_BAD:
		diag_report_add(out, "spf", "spf.syntax", DIAG_ERROR,
		    "the SPF record of %s has a syntax error (%s): receivers treat it as a permanent "
		    "error", in->domain, why);
		diag_report_fix(out, "Correct the record \"%.200s\".", text != NULL ? text : "");
		goto done;
	case DIAG_SPF_ONE:
		break;
	}
	diag_report_add(out, "spf", "spf.present", DIAG_OK, "SPF record: %.300s", text);

	w = xcalloc(1, sizeof(*w));
	diag_spf_walk(fs, in->domain, 0, w);
	if (w->pending)
		goto done;
	if (w->problem[0] != '\0') {
		diag_report_add(out, "spf", "spf.include", DIAG_ERROR,
		    "an include or redirect target is broken: %s; receivers see a permanent error",
		    w->problem);
		diag_report_fix(out, "Remove or correct that include:/redirect= in the SPF record "
		    "of %s.", in->domain);
	}
	if (w->lookups > SPF_LOOKUP_LIMIT) {
		diag_report_add(out, "spf", "spf.lookups", DIAG_ERROR,
		    "the SPF record needs %u DNS lookups (include, a, mx, ptr, exists, redirect, "
		    "counted through includes); the limit is %d, so receivers see a permanent error",
		    w->lookups, SPF_LOOKUP_LIMIT);
		diag_report_fix(out, "Remove includes you no longer use, replace a/mx terms with "
		    "ip4:/ip6: ranges, or flatten includes into addresses.");
	} else {
		diag_report_add(out, "spf", "spf.lookups", DIAG_OK,
		    "%u of at most %d DNS lookups", w->lookups, SPF_LOOKUP_LIMIT);
	}
	q = diag_spf_all(fs, in->domain, 0);
	if (q == 0) {
		diag_report_add(out, "spf", "spf.all", DIAG_WARNING,
		    "the SPF record has no \"all\" term: mail from other servers gets a neutral "
		    "result");
		diag_report_fix(out, "End the record with -all (or ~all while testing).");
	} else if (q == '+' || q == '?') {
		diag_report_add(out, "spf", "spf.all", DIAG_WARNING,
		    "the SPF record ends in %sall: %s", q == '+' ? "+" : "?",
		    q == '+' ? "every server on the Internet may send as this domain" :
		    "mail from other servers gets a neutral result, which protects nothing");
		diag_report_fix(out, "End the record with -all (or ~all while testing).");
	} else {
		diag_report_add(out, "spf", "spf.all", DIAG_OK, "the record ends in %call", q);
	}
	for (i = 0; i < in->n_upstreams; i++) {
		const struct diag_provider *pv = diag_align_provider(in->upstreams[i].host);
		bool found = false;

		if (pv == NULL)
			continue;
		for (j = 0; j < w->n_includes; j++)
			found |= strcmp(w->includes[j], pv->spf_include) == 0;
		snprintf(key, sizeof(key), "spf.provider.%s", in->upstreams[i].name);
		if (found) {
			diag_report_add(out, "spf", key, DIAG_OK, "includes %s for upstream %s (%s)",
			    pv->spf_include, in->upstreams[i].name, pv->name);
		} else {
			diag_report_add(out, "spf", key, DIAG_ERROR,
			    "upstream %s sends through %s (%s), but the SPF record does not include "
			    "%s", in->upstreams[i].name, in->upstreams[i].host, pv->name,
			    pv->spf_include);
			diag_report_fix(out, "Add include:%s to the SPF record of %s, before the all "
			    "term.", pv->spf_include, in->domain);
		}
	}
	for (i = 0; i < in->n_ips; i++) {
		char r = diag_rules_spf_eval(fs, in->domain, in->ips[i]);

		snprintf(key, sizeof(key), "spf.ip.%s", in->ips[i]);
		if (r == 0)
			continue;
		if (r == '+') {
			diag_report_add(out, "spf", key, DIAG_OK, "%s may send for %s (SPF pass)",
			    in->ips[i], in->domain);
		} else if (r == 'U') {
			diag_report_add(out, "spf", key, DIAG_WARNING,
			    "whether %s may send for %s cannot be told here (macros, exists:, ptr or a "
			    "failed lookup)", in->ips[i], in->domain);
			diag_report_fix(out, "List the address with ip4:/ip6: to be sure.");
		} else {
			diag_report_add(out, "spf", key, DIAG_ERROR,
			    "%s is not allowed to send for %s (SPF result: %s)", in->ips[i], in->domain,
			    r == '-' ? "fail" : r == '~' ? "softfail" : "neutral");
			diag_report_fix(out, "Add %s:%s to the SPF record of %s.",
			    strchr(in->ips[i], ':') ? "ip6" : "ip4", in->ips[i], in->domain);
		}
	}
done:
	free(w);
	free(rec);
}

/* ---- DKIM ---- */

static void
diag_rules_dkim(const struct diag_input *in, struct diag_facts *fs, struct diag_report *out)
{
	const struct diag_fact *f;
	struct dkim_record dr;
	const char *why = NULL;
	char name[DNS_NAME_MAX + 64];
	size_t i;
	int best = -1;
	enum dkim_record_result res = DKIM_RECORD_NOT_DKIM;

	if (in->selector == NULL || in->selector[0] == '\0') {
		diag_report_add(out, "dkim", "dkim.selector", DIAG_WARNING,
		    "no DKIM selector given, so the DKIM key was not checked");
		diag_report_fix(out, "Pass --selector (or set checks.selector) to the selector your "
		    "provider signs with, e.g. the s= of a DKIM-Signature header you received.");
		return;
	}
	snprintf(name, sizeof(name), "%s._domainkey.%s", in->selector, in->domain);
	f = diag_facts_get(fs, DIAG_FACT_TXT, name);
	if (f == NULL)
		return;
	if (f->status == DNS_TEMPFAIL || f->status == DNS_BOGUS) {
		diag_report_add(out, "dkim", "dkim.present", DIAG_WARNING,
		    "%s could not be looked up: %s", name, f->why);
		out->v[out->n - 1].transient = true;
		return;
	}
	for (i = 0; i < f->n; i++) {
		res = dkim_record_parse(f->vals[i], strlen(f->vals[i]), &dr, &why);
		if (res != DKIM_RECORD_NOT_DKIM) {
			best = (int)i;
			break;
		}
	}
	if (best == -1) {
		diag_report_add(out, "dkim", "dkim.present", DIAG_ERROR,
		    "no DKIM key is published at %s: receivers cannot verify signatures made with "
		    "selector %s", name, in->selector);
		diag_report_fix(out, "Publish the TXT record your provider (or signer) gives for "
		    "selector %s, or check the selector name.", in->selector);
		return;
	}
	if (res == DKIM_RECORD_BAD) {
		diag_report_add(out, "dkim", "dkim.present", DIAG_ERROR,
		    "the DKIM record at %s is broken: %s", name, why);
		diag_report_fix(out, "Publish the record again exactly as given (long keys are "
		    "split into several strings of one TXT record, not several records).");
		return;
	}
	if (dr.revoked) {
		diag_report_add(out, "dkim", "dkim.present", DIAG_ERROR,
		    "the DKIM key at %s is revoked (empty p=)", name);
		diag_report_fix(out, "Sign with a current selector, or publish its key.");
		return;
	}
	diag_report_add(out, "dkim", "dkim.present", DIAG_OK, "DKIM key at %s: %s, %u bits%s",
	    name, dr.k == DKIM_RECORD_KEY_ED25519 ? "ed25519" : "rsa", dr.bits,
	    dr.has_v ? "" : " (no v=DKIM1, which is allowed)");
	if (dr.k == DKIM_RECORD_KEY_RSA && dr.bits < 1024) {
		diag_report_add(out, "dkim", "dkim.key_size", DIAG_ERROR,
		    "the RSA key has %u bits: receivers ignore keys under 1024 bits (RFC 8301)",
		    dr.bits);
		diag_report_fix(out, "Make a 2048-bit key and publish it under a new selector.");
	} else if (dr.k == DKIM_RECORD_KEY_RSA && dr.bits < 2048) {
		diag_report_add(out, "dkim", "dkim.key_size", DIAG_WARNING,
		    "the RSA key has %u bits; 2048 is the current recommendation", dr.bits);
		diag_report_fix(out, "Move to a 2048-bit key under a new selector.");
	}
	if (dr.testing) {
		diag_report_add(out, "dkim", "dkim.testing", DIAG_WARNING,
		    "the key is marked as testing (t=y): receivers may treat signatures as unsigned");
		diag_report_fix(out, "Remove t=y from the record once signing works.");
	}
}

/* ---- DMARC and alignment ---- */

static void
diag_rules_alignment(const struct diag_input *in, struct diag_report *out)
{
	char key[192];
	size_t i;

	for (i = 0; i < in->n_upstreams; i++) {
		const struct diag_upstream *u = &in->upstreams[i];

		if (u->account_domain == NULL)
			continue;
		snprintf(key, sizeof(key), "alignment.%s", u->name);
		if (diag_align_is_aligned(in->domain, u->account_domain)) {
			diag_report_add(out, "alignment", key, DIAG_OK,
			    "upstream %s authenticates as an account of %s, which aligns with %s",
			    u->name, u->account_domain, in->domain);
		} else {
			diag_report_add(out, "alignment", key, DIAG_WARNING,
			    "upstream %s authenticates as an account of %s: unless the provider "
			    "signs DKIM as %s, mail From: %s fails DMARC alignment", u->name,
			    u->account_domain, in->domain, in->domain);
			diag_report_fix(out, "Add %s as a sending domain at the provider (with its "
			    "DKIM record), or send From: an address of %s.", in->domain,
			    u->account_domain);
		}
	}
}

static void
diag_rules_dmarc(const struct diag_input *in, struct diag_facts *fs, struct diag_report *out)
{
	const struct diag_fact *f;
	struct dmarc_record dr;
	char name[DNS_NAME_MAX + 16], org[256];
	const char *why = NULL;
	size_t i, found = 0, at = 0;

	snprintf(name, sizeof(name), "_dmarc.%s", in->domain);
	f = diag_facts_get(fs, DIAG_FACT_TXT, name);
	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++) {
		if (dmarc_is_record(f->vals[i], strlen(f->vals[i]))) {
			found++;
			at = i;
		}
	}
	/* RFC 7489 6.6.3: no record at the domain: the organizational domain's applies. */
	if (found == 0 && f->status != DNS_TEMPFAIL && f->status != DNS_BOGUS &&
	    diag_align_org_domain(in->domain, org, sizeof(org)) == 0 &&
	    strcmp(org, in->domain) != 0) {
		snprintf(name, sizeof(name), "_dmarc.%s", org);
		f = diag_facts_get(fs, DIAG_FACT_TXT, name);
		if (f == NULL)
			return;
		for (i = 0; i < f->n; i++) {
			if (dmarc_is_record(f->vals[i], strlen(f->vals[i]))) {
				found++;
				at = i;
			}
		}
	}
	if (found == 0 && (f->status == DNS_TEMPFAIL || f->status == DNS_BOGUS)) {
		diag_report_add(out, "dmarc", "dmarc.present", DIAG_WARNING,
		    "%s could not be looked up: %s", name, f->why);
		out->v[out->n - 1].transient = true;
		return;
	}
	if (found == 0) {
		diag_report_add(out, "dmarc", "dmarc.present", DIAG_ERROR,
		    "%s publishes no DMARC record; large mailbox providers require one from bulk "
		    "senders", in->domain);
		diag_report_fix(out, "Publish a TXT record at _dmarc.%s: \"v=DMARC1; p=none; "
		    "rua=mailto:dmarc-reports@%s\", then tighten p= once reports look clean.",
		    in->domain, in->domain);
		return;
	}
	if (found > 1) {
		diag_report_add(out, "dmarc", "dmarc.single", DIAG_ERROR,
		    "%s holds more than one DMARC record: receivers ignore them all (RFC 7489 6.6.3)",
		    name);
		diag_report_fix(out, "Keep exactly one TXT record starting with v=DMARC1 at %s.",
		    name);
		return;
	}
	if (dmarc_parse(f->vals[at], strlen(f->vals[at]), &dr, &why) != DMARC_PARSE_OK) {
		diag_report_add(out, "dmarc", "dmarc.syntax", DIAG_ERROR,
		    "the DMARC record at %s is invalid (%s): receivers ignore it", name, why);
		diag_report_fix(out, "Correct the record \"%.200s\".", f->vals[at]);
		return;
	}
	diag_report_add(out, "dmarc", "dmarc.present", DIAG_OK, "DMARC record at %s: %.250s", name,
	    f->vals[at]);
	if (dr.p == DMARC_POLICY_NONE) {
		diag_report_add(out, "dmarc", "dmarc.policy", DIAG_WARNING,
		    "policy p=none only monitors: forged mail From: %s is still delivered",
		    in->domain);
		diag_report_fix(out, "Once the reports show your mail passes, move to "
		    "p=quarantine, then p=reject.");
	} else {
		diag_report_add(out, "dmarc", "dmarc.policy", DIAG_OK, "policy p=%s",
		    dmarc_policy_name(dr.p));
	}
	if (dr.pct < 100) {
		diag_report_add(out, "dmarc", "dmarc.pct", DIAG_WARNING,
		    "pct=%u: the policy applies to only %u%% of failing mail", dr.pct, dr.pct);
		diag_report_fix(out, "Raise pct= to 100 (or remove it) once you are confident.");
	}
	if (!dr.has_rua) {
		diag_report_add(out, "dmarc", "dmarc.rua", DIAG_WARNING,
		    "no rua= address: you get no aggregate reports about who sends as %s",
		    in->domain);
		diag_report_fix(out, "Add rua=mailto:an-address-you-read@%s to the record.",
		    in->domain);
	} else if (!dr.rua_ok) {
		diag_report_add(out, "dmarc", "dmarc.rua", DIAG_WARNING,
		    "rua=%s is not a list of mailto: addresses", dr.rua);
		diag_report_fix(out, "Write it as rua=mailto:reports@%s.", in->domain);
	} else {
		diag_report_add(out, "dmarc", "dmarc.rua", DIAG_OK, "aggregate reports go to %s",
		    dr.rua);
	}
}

/* ---- MX, PTR, MTA-STS, TLS-RPT ---- */

static void
diag_rules_mx(const struct diag_input *in, struct diag_facts *fs, struct diag_report *out)
{
	const struct diag_fact *f = diag_facts_get(fs, DIAG_FACT_MX, in->domain), *a;
	size_t i, bad = 0;
	bool pending = false;
	char badnames[200] = "";

	if (f == NULL)
		return;
	switch (f->status) {
	case DNS_NULL_MX:
		diag_report_add(out, "mx", "mx.present", DIAG_WARNING,
		    "%s has a null MX (RFC 7505): it accepts no mail, so bounces and replies to it "
		    "are lost and some receivers refuse mail from it", in->domain);
		diag_report_fix(out, "Publish real MX records if anyone should be able to answer "
		    "or bounce mail to %s.", in->domain);
		return;
	case DNS_NXDOMAIN:
		return; /* the SPF check already says the domain does not exist */
	case DNS_OK:
		break;
	default:
		diag_report_add(out, "mx", "mx.present", DIAG_WARNING,
		    "the MX records of %s could not be looked up: %s", in->domain, f->why);
		out->v[out->n - 1].transient = true;
		return;
	}
	if (f->implicit_mx) {
		diag_report_add(out, "mx", "mx.present", DIAG_WARNING,
		    "%s has no MX records: mail to it goes to its own address, if it has one",
		    in->domain);
		diag_report_fix(out, "Publish MX records so bounces and replies reach you.");
	} else {
		diag_report_add(out, "mx", "mx.present", DIAG_OK, "%zu MX host%s", f->n,
		    f->n == 1 ? "" : "s");
	}
	for (i = 0; i < f->n && i < 10; i++) {
		a = diag_facts_get(fs, DIAG_FACT_ADDR, f->vals[i]);
		if (a == NULL) {
			pending = true;
			continue;
		}
		if (a->status != DNS_OK) {
			size_t l = strlen(badnames);

			bad++;
			snprintf(badnames + l, sizeof(badnames) - l, "%s%s", l ? ", " : "",
			    f->vals[i]);
		}
	}
	if (pending)
		return;
	if (bad > 0) {
		diag_report_add(out, "mx", "mx.resolve", bad == f->n ? DIAG_ERROR : DIAG_WARNING,
		    "MX host%s without an address: %s", bad == 1 ? "" : "s", badnames);
		diag_report_fix(out, "Give each MX host an A or AAAA record, or remove the MX "
		    "records that point nowhere.");
	} else {
		diag_report_add(out, "mx", "mx.resolve", DIAG_OK, "every MX host has an address");
	}
}

static bool
diag_same_addr(const char *a, const char *b)
{
	uint8_t x[16], y[16];
	bool xv6, yv6;

	return diag_addr_parse(a, x, &xv6) && diag_addr_parse(b, y, &yv6) && xv6 == yv6 &&
	    memcmp(x, y, xv6 ? 16 : 4) == 0;
}

static void
diag_rules_ptr(const struct diag_input *in, struct diag_facts *fs, struct diag_report *out)
{
	enum diag_status bad_status = in->mx_mode ? DIAG_ERROR : DIAG_WARNING;
	char key[192];
	size_t i, j, k;

	for (i = 0; i < in->n_ips; i++) {
		const char *ip = in->ips[i];
		const struct diag_fact *p = diag_facts_get(fs, DIAG_FACT_PTR, ip);
		bool confirmed = false, pending = false;

		if (p == NULL)
			continue;
		snprintf(key, sizeof(key), "ptr.%s", ip);
		if (p->status == DNS_TEMPFAIL || p->status == DNS_BOGUS) {
			diag_report_add(out, "ptr", key, DIAG_WARNING,
			    "the reverse DNS of %s could not be looked up: %s", ip, p->why);
			out->v[out->n - 1].transient = true;
			continue;
		}
		if (p->status != DNS_OK || p->n == 0) {
			diag_report_add(out, "ptr", key, bad_status,
			    "%s has no reverse DNS (PTR) name: many receivers refuse or junk mail from "
			    "such addresses", ip);
			diag_report_fix(out, "Ask whoever owns the address (hosting provider, ISP) to "
			    "set its PTR record to the host name hikyaku greets with.");
			continue;
		}
		for (j = 0; j < p->n; j++) {
			const struct diag_fact *a = diag_facts_get(fs, DIAG_FACT_ADDR, p->vals[j]);

			if (a == NULL) {
				pending = true;
				continue;
			}
			for (k = 0; k < a->n; k++)
				confirmed |= diag_same_addr(a->vals[k], ip);
		}
		if (pending)
			continue;
		if (confirmed) {
			diag_report_add(out, "ptr", key, DIAG_OK,
			    "%s has reverse DNS %s, which resolves back to it", ip, p->vals[0]);
		} else {
			diag_report_add(out, "ptr", key, bad_status,
			    "%s has reverse DNS %s, but that name does not resolve back to %s "
			    "(forward-confirmed reverse DNS fails)", ip, p->vals[0], ip);
			diag_report_fix(out, "Add an A/AAAA record %s -> %s, or change the PTR to a "
			    "name that has it.", p->vals[0], ip);
		}
	}
}

/* A TXT record of name starting with prefix (the version tag), checked for a required tag. */
static void
diag_rules_txt_policy(struct diag_facts *fs, struct diag_report *out, const char *check,
    const char *name, const char *prefix, const char *need, const char *what, const char *fix)
{
	const struct diag_fact *f = diag_facts_get(fs, DIAG_FACT_TXT, name);
	char key[64];
	size_t i, found = 0, at = 0;

	if (f == NULL)
		return;
	snprintf(key, sizeof(key), "%s.present", check);
	if (f->status == DNS_TEMPFAIL || f->status == DNS_BOGUS) {
		diag_report_add(out, check, key, DIAG_WARNING, "%s could not be looked up: %s", name,
		    f->why);
		out->v[out->n - 1].transient = true;
		return;
	}
	for (i = 0; i < f->n; i++) {
		if (str_has_prefix_ci(f->vals[i], strlen(f->vals[i]), prefix)) {
			found++;
			at = i;
		}
	}
	if (found == 0) {
		diag_report_add(out, check, key, DIAG_WARNING, "no %s record at %s", what, name);
		diag_report_fix(out, "%s", fix);
	} else if (found > 1) {
		diag_report_add(out, check, key, DIAG_ERROR, "more than one %s record at %s: "
		    "senders ignore them", what, name);
		diag_report_fix(out, "Keep exactly one.");
	} else if (strstr(f->vals[at], need) == NULL) {
		diag_report_add(out, check, key, DIAG_ERROR, "the %s record at %s lacks %s: %.200s",
		    what, name, need, f->vals[at]);
		diag_report_fix(out, "%s", fix);
	} else {
		diag_report_add(out, check, key, DIAG_OK, "%s record: %.250s", what, f->vals[at]);
	}
}

/* ---- blocklists ---- */

/* What a blocklist's answer code means (the lists document these). */
static const char *
diag_bl_meaning(const char *list, const char *code)
{
	static const struct {
		const char *list_suffix, *code, *meaning;
	} codes[] = {
		{ "spamhaus.org", "127.0.0.2", "SBL: a known spam source or spam operation" },
		{ "spamhaus.org", "127.0.0.3", "SBL CSS: snowshoe spam from this address" },
		{ "spamhaus.org", "127.0.0.4", "XBL: the address is infected or an open proxy" },
		{ "spamhaus.org", "127.0.0.5", "XBL: the address is infected or an open proxy" },
		{ "spamhaus.org", "127.0.0.6", "XBL: the address is infected or an open proxy" },
		{ "spamhaus.org", "127.0.0.7", "XBL: the address is infected or an open proxy" },
		{ "spamhaus.org", "127.0.0.9", "DROP: a hijacked or criminal network" },
		{ "spamhaus.org", "127.0.0.10", "PBL (ISP): a dynamic or end-user address that "
		  "should not send mail directly" },
		{ "spamhaus.org", "127.0.0.11", "PBL (Spamhaus): an address that should not send "
		  "mail directly" },
		{ "", "127.0.0.2", "listed as a spam source" },
	};
	size_t i, n = strlen(list);

	for (i = 0; i < HK_ARRAY_LEN(codes); i++) {
		size_t m = strlen(codes[i].list_suffix);

		if (strcmp(code, codes[i].code) == 0 && n >= m &&
		    strcmp(list + n - m, codes[i].list_suffix) == 0)
			return codes[i].meaning;
	}
	return "listed";
}

static void
diag_rules_blocklists(const struct diag_input *in, struct diag_facts *fs,
    struct diag_report *out)
{
	char name[DNS_NAME_MAX], key[192];
	size_t i, j;

	for (i = 0; i < in->n_ips; i++) {
		for (j = 0; j < in->n_blocklists; j++) {
			const char *bl = in->blocklists[j];
			const struct diag_fact *a, *t;

			if (dns_reverse_name(in->ips[i], bl, name, sizeof(name)) == -1)
				continue;
			snprintf(key, sizeof(key), "blocklist.%s.%s", bl, in->ips[i]);
			a = diag_facts_get(fs, DIAG_FACT_ADDR, name);
			if (a == NULL)
				continue;
			if (a->status == DNS_NXDOMAIN || a->status == DNS_NODATA) {
				diag_report_add(out, "blocklist", key, DIAG_OK,
				    "%s is not listed on %s", in->ips[i], bl);
				continue;
			}
			if (a->status != DNS_OK || a->n == 0) {
				diag_report_add(out, "blocklist", key, DIAG_WARNING,
				    "%s could not be asked about %s: %s", bl, in->ips[i], a->why);
				out->v[out->n - 1].transient = true;
				continue;
			}
			if (strncmp(a->vals[0], "127.255.255.", 12) == 0) {
				/* Spamhaus and others answer 127.255.255.x to refuse a query. */
				diag_report_add(out, "blocklist", key, DIAG_WARNING,
				    "%s refused the query (answer %s): queries through public or "
				    "busy resolvers are blocked, so the result is unknown", bl,
				    a->vals[0]);
				out->v[out->n - 1].transient = true;
				diag_report_fix(out, "Point dns: at a resolver of your own (or use the "
				    "list's registered query key).");
				continue;
			}
			if (strncmp(a->vals[0], "127.", 4) != 0) {
				diag_report_add(out, "blocklist", key, DIAG_WARNING,
				    "%s gave an unexpected answer %s for %s (not 127.0.0.x): the list "
				    "may be gone or wildcard-listing everything", bl, a->vals[0],
				    in->ips[i]);
				diag_report_fix(out, "Remove %s from checks.blocklists.", bl);
				continue;
			}
			t = diag_facts_get(fs, DIAG_FACT_TXT, name);
			if (t == NULL)
				continue;
			diag_report_add(out, "blocklist", key, DIAG_ERROR,
			    "%s is listed on %s (answer %s: %s)%s%.200s", in->ips[i], bl, a->vals[0],
			    diag_bl_meaning(bl, a->vals[0]), t->status == DNS_OK && t->n > 0 ?
			    "; reason: " : "", t->status == DNS_OK && t->n > 0 ? t->vals[0] : "");
			diag_report_fix(out, "Find and stop the cause (a compromised account, an open "
			    "relay, bad lists), then ask %s for delisting on its web site.", bl);
		}
	}
}

void
diag_rules_run(const struct diag_input *in, struct diag_facts *fs, struct diag_report *out)
{
	char name[DNS_NAME_MAX + 16];

	diag_report_clear(out);
	diag_rules_spf(in, fs, out);
	diag_rules_dkim(in, fs, out);
	diag_rules_dmarc(in, fs, out);
	diag_rules_alignment(in, out);
	diag_rules_mx(in, fs, out);
	diag_rules_ptr(in, fs, out);
	snprintf(name, sizeof(name), "_mta-sts.%s", in->domain);
	diag_rules_txt_policy(fs, out, "mta_sts", name, "v=STSv1", "id=", "MTA-STS",
	    "Publish \"v=STSv1; id=<a version>\" there and the policy file at "
	    "https://mta-sts.<domain>/.well-known/mta-sts.txt, so senders must use TLS to you.");
	snprintf(name, sizeof(name), "_smtp._tls.%s", in->domain);
	diag_rules_txt_policy(fs, out, "tls_rpt", name, "v=TLSRPTv1", "rua=", "TLS-RPT",
	    "Publish \"v=TLSRPTv1; rua=mailto:tls-reports@<domain>\" to hear about TLS failures "
	    "of mail sent to you.");
	diag_rules_blocklists(in, fs, out);
}
