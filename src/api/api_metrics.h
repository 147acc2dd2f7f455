/*
 * api_metrics.h - the Prometheus text of GET /metrics (exposition format 0.0.4), built purely
 * from copied-out numbers so it can be tested without a daemon.
 *
 * Names carry the hikyaku_ prefix and base units; counters end in _total; labels are bounded
 * (upstream names, enums), never addresses. Label values are escaped (\\, \", \n).
 * Thread: any.
 */
#ifndef HK_API_METRICS_H
#define HK_API_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "../util/buf.h"

/* One upstream's numbers (name owned by the caller). */
struct api_metrics_up {
	const char *name;
	struct upstream_snapshot snap; /* last_error not used */
};

/* One alert channel's counters (names owned by the caller). */
struct api_metrics_alert {
	const char *channel;
	const char *type;
	uint64_t sent_ok, sent_failed, retries;
};

struct api_metrics_in {
	struct api_stats stats;
	bool have_queue;       /* false: the email log could not be read */
	uint64_t queue[3];     /* queued, deferred, held */
	const struct api_metrics_up *ups;
	size_t n_ups;
	uint64_t api_requests;
	const struct api_metrics_alert *alerts;
	size_t n_alerts;
};

/* Append the whole exposition to out. */
void api_metrics_render(const struct api_metrics_in *in, struct buf *out);
/* Append v as a label value, escaped. */
void api_metrics_label(struct buf *out, const char *v);

#endif
