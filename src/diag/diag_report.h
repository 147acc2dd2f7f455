/*
 * diag_report.h - findings of the DNS checks and their text and JSON forms.
 *
 * A finding has a check ("spf", "dkim", "dmarc", "alignment", "mx", "ptr", "mta_sts",
 * "tls_rpt", "blocklist"), a key that names the same finding across runs ("spf.lookups",
 * "blocklist.zen.spamhaus.org.192.0.2.1"), a status, what was found, and the fix in plain words
 * (empty when ok). transient marks a finding that only says a lookup failed this time: the
 * scheduled re-check does not count it as worse.
 * Ownership: a report owns its findings; diag_report_fini() frees them.
 * Thread: any. Pure.
 */
#ifndef HK_DIAG_REPORT_H
#define HK_DIAG_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/buf.h"
#include "../util/common.h"

enum diag_status { DIAG_OK = 0, DIAG_WARNING, DIAG_ERROR };

struct diag_finding {
	char check[16];
	char key[192];
	enum diag_status status;
	bool transient;
	char text[384];
	char fix[384];
};

struct diag_report {
	char domain[256];
	char selector[64];
	char ips[4][64];
	size_t n_ips;
	struct diag_finding *v;
	size_t n, cap;
};

void diag_report_init(struct diag_report *r);
void diag_report_fini(struct diag_report *r);
/* Drop the findings, keep domain, selector and ips. */
void diag_report_clear(struct diag_report *r);
/* Add a finding; fix may be NULL. Texts are cut to fit. */
HK_PRINTF(5, 6) void diag_report_add(struct diag_report *r, const char *check, const char *key,
    enum diag_status status, const char *fmt, ...);
/* Set the fix of the last finding added. */
HK_PRINTF(2, 3) void diag_report_fix(struct diag_report *r, const char *fmt, ...);
/* The finding with key, or NULL. */
const struct diag_finding *diag_report_find(const struct diag_report *r, const char *key);
/* The worst status of all findings (DIAG_OK when none). */
enum diag_status diag_report_worst(const struct diag_report *r);
size_t diag_report_count(const struct diag_report *r, enum diag_status s);
const char *diag_status_name(enum diag_status s);
/* Plain text for a terminal, one finding per line with its fix below. */
void diag_report_text(const struct diag_report *r, struct buf *out);
/* {"domain","selector","ips","status","counts":{...},"findings":[{check,key,status,text,fix}]} */
void diag_report_json(const struct diag_report *r, struct buf *out);

#endif
