/*
 * diag_align.c - organizational domains, alignment, and the provider table.
 */
#include <stdio.h>
#include <string.h>

#include <libpsl.h>

#include "../conf/conf.h"
#include "../util/common.h"
#include "../util/str.h"
#include "diag_align.h"
#include "../util/poison.h"

static const struct diag_provider diag_providers[] = {
	{ .host_suffix = "gmail.com", .name = "Google Workspace / Gmail",
	  .spf_include = "_spf.google.com" },
	{ .host_suffix = "googlemail.com", .name = "Google Workspace / Gmail",
	  .spf_include = "_spf.google.com" },
	{ .host_suffix = "office365.com", .name = "Microsoft 365",
	  .spf_include = "spf.protection.outlook.com" },
	{ .host_suffix = "outlook.com", .name = "Microsoft 365",
	  .spf_include = "spf.protection.outlook.com" },
	{ .host_suffix = "amazonaws.com", .name = "Amazon SES", .spf_include = "amazonses.com" },
	{ .host_suffix = "sendgrid.net", .name = "SendGrid", .spf_include = "sendgrid.net" },
	{ .host_suffix = "mailgun.org", .name = "Mailgun", .spf_include = "mailgun.org" },
	{ .host_suffix = "postmarkapp.com", .name = "Postmark", .spf_include = "spf.mtasv.net" },
	{ .host_suffix = "sparkpostmail.com", .name = "SparkPost",
	  .spf_include = "sparkpostmail.com" },
	{ .host_suffix = "mandrillapp.com", .name = "Mailchimp Transactional",
	  .spf_include = "spf.mandrillapp.com" },
	{ .host_suffix = "brevo.com", .name = "Brevo", .spf_include = "spf.brevo.com" },
	{ .host_suffix = "fastmail.com", .name = "Fastmail",
	  .spf_include = "spf.messagingengine.com" },
	{ .host_suffix = "zoho.com", .name = "Zoho Mail", .spf_include = "zohomail.com" },
};

int
diag_align_org_domain(const char *domain, char *out, size_t size)
{
	const psl_ctx_t *psl = psl_builtin();
	char lower[256];
	const char *reg = NULL, *p;
	size_t n = strlen(domain);

	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || n >= sizeof(lower))
		return -1;
	memcpy(lower, domain, n);
	lower[n] = '\0';
	str_lower(lower);
	if (psl != NULL)
		reg = psl_registrable_domain(psl, lower);
	if (reg == NULL) {
		/* No list, or the name is itself a public suffix: the last two labels. */
		p = strrchr(lower, '.');
		if (p != NULL) {
			while (p > lower && p[-1] != '.')
				p--;
		}
		reg = p != NULL ? p : lower;
	}
	if (strlen(reg) >= size)
		return -1;
	memcpy(out, reg, strlen(reg) + 1);
	return 0;
}

bool
diag_align_is_aligned(const char *a, const char *b)
{
	char oa[256], ob[256];

	if (diag_align_org_domain(a, oa, sizeof(oa)) == -1 ||
	    diag_align_org_domain(b, ob, sizeof(ob)) == -1)
		return false;
	return strcmp(oa, ob) == 0;
}

const char *
diag_align_addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

const struct diag_provider *
diag_align_provider(const char *host)
{
	size_t n = strlen(host), i;

	for (i = 0; i < HK_ARRAY_LEN(diag_providers); i++) {
		const struct diag_provider *pv = &diag_providers[i];
		size_t m = strlen(pv->host_suffix);

		if (n >= m && str_eq_ci(host + n - m, m, pv->host_suffix) &&
		    (n == m || host[n - m - 1] == '.'))
			return pv;
	}
	return NULL;
}

const struct conf_route *
diag_align_route(const struct conf *c, const char *sender_domain)
{
	size_t i, j;

	for (i = 0; i < c->n_routes; i++) {
		const struct conf_route *r = &c->routes[i];

		if (r->n_sender_domains == 0)
			return r;
		for (j = 0; j < r->n_sender_domains; j++) {
			if (str_eq_ci(sender_domain, strlen(sender_domain), r->sender_domains[j]))
				return r;
		}
	}
	return NULL;
}

bool
diag_align_from_is_unaligned(const struct conf *c, const char *from_domain, char *why,
    size_t size)
{
	const struct conf_route *r = diag_align_route(c, from_domain);
	const struct conf_upstream *u;
	const char *acct;

	if (r == NULL || r->mx || r->n_upstreams == 0)
		return false;
	u = &c->upstreams[r->upstreams[0]];
	if (u->username == NULL || (acct = diag_align_addr_domain(u->username)) == NULL)
		return false;
	if (diag_align_is_aligned(from_domain, acct))
		return false;
	snprintf(why, size, "From domain %s does not align with %s, the account of upstream %s: "
	    "DMARC will fail unless the provider signs DKIM for %s", from_domain, acct, u->name,
	    from_domain);
	return true;
}
