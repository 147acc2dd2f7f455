/*
 * diag_rules.h - the verdicts of the DNS checks: from the gathered answers (diag_facts) to
 * findings (diag_report), each ok, warning or error with a fix in plain words.
 *
 * diag_rules_run() is called again and again on the same store: each run asks for the answers
 * it lacks; once a run asks for nothing new, its report is complete.
 * Thread: any. Pure.
 */
#ifndef HK_DIAG_RULES_H
#define HK_DIAG_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "diag_facts.h"
#include "diag_report.h"

/* An upstream the domain's mail goes through, for the SPF provider and alignment checks. */
struct diag_upstream {
	const char *name;
	const char *host;
	const char *account_domain; /* domain of username; NULL without AUTH */
};

struct diag_input {
	const char *domain;
	const char *selector;            /* NULL or "": DKIM not checked */
	const char *const *ips;          /* sending IPs (PTR, FCrDNS, SPF, blocklists) */
	size_t n_ips;
	const char *const *blocklists;
	size_t n_blocklists;
	const struct diag_upstream *upstreams;
	size_t n_upstreams;
	bool mx_mode;                    /* the route delivers straight to MX */
};

void diag_rules_run(const struct diag_input *in, struct diag_facts *fs, struct diag_report *out);

/*
 * Evaluate the SPF policy of domain for ip as far as the store allows (RFC 7208 4.6, 5):
 * '+', '-', '~', '?' for the qualifier of the first matching term (or of redirect's), 'N' for
 * no match (neutral), 0 when answers are still wanted, 'U' when it cannot tell (macros, exists,
 * ptr, errors). Exposed for tests.
 */
char diag_rules_spf_eval(struct diag_facts *fs, const char *domain, const char *ip);

#endif
