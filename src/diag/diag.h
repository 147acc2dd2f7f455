/*
 * diag.h - DNS checks of a sending domain (DESIGN.md 10): SPF, DKIM, DMARC and alignment, MX,
 * PTR and forward-confirmed reverse DNS, MTA-STS, TLS-RPT, and the sending IPs on DNS
 * blocklists; once on demand (hikyaku check-dns, GET /api/v1/checks/dns) or on a schedule.
 *
 * A run asks the rules (diag_rules.h, pure) what they need, looks it up through its own
 * resolver (src/dns, configured by the dns: section), and repeats until nothing new is needed.
 * Scheduled runs (checks.interval over checks.domains) compare each finding with the previous
 * run's: a finding that got worse (ok -> warning -> error; transient lookup failures excepted)
 * is logged as "mod=diag event=check_worse" at warning level and passed to params.worse.
 * Ownership: struct diag references the configuration given; reports are borrowed by callbacks
 * for the call only.
 * Thread: loop thread only.
 */
#ifndef HK_DIAG_H
#define HK_DIAG_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "../util/err.h"
#include "diag_report.h"

struct conf;
struct diag;
struct diag_run;

/*
 * A finding of a scheduled check got worse (the alert engine wires this). f and domain are
 * borrowed for the call.
 */
typedef void (*diag_worse_fn)(void *arg, const struct diag_finding *f, const char *domain);
/* A check finished; r is borrowed for the call. The run is gone after it returns. */
typedef void (*diag_done_fn)(void *arg, const struct diag_report *r);

struct diag_params {
	struct event_base *base;
	struct conf *conf;        /* referenced */
	bool schedule;            /* run checks.domains every checks.interval */
	uint64_t first_delay_ms;  /* first scheduled run after this (0: 5 s) */
	/* Optional: called for each finding that got worse in a scheduled re-check. */
	void (*worse)(void *arg, const struct diag_finding *f, const char *domain);
	void *worse_arg;
};

/* NULL and err (HK_E_CONFIG) when the resolver cannot be set up from the dns: section. */
struct diag *diag_new(const struct diag_params *p, struct hk_err *err);
/* Outstanding runs are dropped without their callbacks. NULL is a no-op. */
void diag_free(struct diag *d);
/* Use c (referenced) for runs started from now on (SIGHUP); the schedule restarts. */
void diag_reload(struct diag *d, struct conf *c);

/*
 * Check domain. selector NULL: checks.selector; ip NULL: checks.ips. done runs exactly once on
 * the loop (never inside this call) unless the run is cancelled first.
 */
struct diag_run *diag_check(struct diag *d, const char *domain, const char *selector,
    const char *ip, diag_done_fn done, void *arg);
/* Drop a run: its done callback will not run. */
void diag_check_cancel(struct diag_run *r);

#endif
