/*
 * diag_facts.h - the DNS answers a check run has gathered, by type and name.
 *
 * The rules ask for what they need with diag_facts_get(); an answer not there yet is recorded
 * as wanted and NULL comes back, so the rules run again once the engine has fetched it. Tests
 * fill the store by hand, which keeps the rules pure.
 * Ownership: the store owns its names and values.
 * Thread: any. Pure.
 */
#ifndef HK_DIAG_FACTS_H
#define HK_DIAG_FACTS_H

#include <stdbool.h>
#include <stddef.h>

#include "../dns/dns.h"

enum diag_fact_type { DIAG_FACT_TXT = 0, DIAG_FACT_ADDR, DIAG_FACT_MX, DIAG_FACT_PTR };

struct diag_fact {
	enum diag_fact_type type;
	char name[DNS_NAME_MAX];
	bool done;             /* answered (else wanted, not fetched yet) */
	bool asked;            /* the engine has started its query */
	enum dns_status status;
	bool implicit_mx;      /* MX: no records, the domain itself */
	char why[128];
	size_t n;
	char **vals;           /* TXT texts, addresses as text, MX hosts, PTR names */
};

struct diag_facts {
	struct diag_fact *v;
	size_t n, cap;
	bool frozen;           /* no more lookups: wanted answers count as failed */
};

void diag_facts_init(struct diag_facts *fs);
void diag_facts_fini(struct diag_facts *fs);
/* The answer for (type, name), or NULL after recording it as wanted (names are lower-cased). */
const struct diag_fact *diag_facts_get(struct diag_facts *fs, enum diag_fact_type type,
    const char *name);
/* Store an answer; vals are copied. */
void diag_facts_set(struct diag_facts *fs, enum diag_fact_type type, const char *name,
    enum dns_status status, const char *const *vals, size_t n);
/* The fact slot for (type, name), created when missing. */
struct diag_fact *diag_facts_slot(struct diag_facts *fs, enum diag_fact_type type,
    const char *name);
/* Wanted facts whose query has not started. */
size_t diag_facts_wanted(const struct diag_facts *fs);

#endif
