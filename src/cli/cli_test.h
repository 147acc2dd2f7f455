/*
 * cli_test.h - the connection test outside the relay: its JSON report, and the daemon's side
 * of POST /api/v1/upstreams/{name}/test (api_ops.test_upstream, wired by serve.c). The command
 * itself, `hikyaku test`, is cli_test() in cli.h.
 *
 * Ownership: a struct cli_probes owns the probes it started; cli_probes_free() cancels those
 * still running and answers their requests with 503 (call it before api_free()).
 * Thread: loop thread only (the report builder: any).
 */
#ifndef HK_CLI_TEST_H
#define HK_CLI_TEST_H

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "../api/api.h"
#include "../conf/conf.h"
#include "../dns/dns.h"
#include "../relay/relay_probe.h"

struct cli_probes;

/* The report as JSON (docs/api.md "Connection test"); the caller owns the value. */
json_t *cli_test_report_json(const struct relay_probe_report *r);

struct cli_probes *cli_probes_new(void);
void cli_probes_free(struct cli_probes *ps);

/*
 * Run the test of upstream name from configuration c (copied what is needed) on base with
 * dns. to and from may be NULL; timeout_ms 0 uses the configuration's delivery timeouts (the
 * command timeout capped at 30 s). done receives (status, JSON body): 200 with the report (failed
 * steps included), 400 for a bad address, 404 for an unknown upstream; once, possibly at once.
 */
void cli_probes_start(struct cli_probes *ps, struct event_base *base, struct dns *dns,
    const struct conf *c, uint64_t id, const char *name, const char *to, const char *from,
    uint64_t timeout_ms, api_test_done_fn done, void *ctx);

#endif
