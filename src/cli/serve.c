/*
 * serve.c - hikyaku serve: start-up, privilege drop, signals, reload, shutdown and the wiring of
 * the engines (DESIGN.md 2). Everything after start-up runs on the loop thread.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "cli.h"
#include "privs.h"
#include "sdnotify.h"
#include "../alert/notify.h"
#include "../alert/alert.h"
#include "cli_test.h"
#include "../api/api.h"
#include "../conf/conf.h"
#include "../db/bodies.h"
#include "../db/maillog.h"
#include "../db/retention.h"
#include "../diag/diag.h"
#include "../diag/diag_align.h"
#include "../dns/dns.h"
#include "../jobs/jobs.h"
#include "../net/listener.h"
#include "../net/tls.h"
#include "../proto/header.h"
#include "../relay/relay.h"
#include "../sched/sched.h"
#include "../sched/upstream.h"
#include "../smtpd/smtpd.h"
#include "../spool/maildrop.h"
#include "../spool/spool.h"
#include "../util/clock.h"
#include "../util/fsops.h"
#include "../util/id.h"
#include "../util/log.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define SERVE_SHUTDOWN_GRACE_MS 30000
#define SERVE_SPOOL_MAX_INFLIGHT 4096

struct serve {
	struct event_base *base;
	struct conf *conf;
	struct jobs *hub;
	struct spool *spool;
	struct jobs_pool *auth_pool; /* crypt(3) checks are slow by design: off the loop */
	struct smtpd *smtpd;
	struct maillog *ml;
	struct bodies *bodies;       /* kept bodies for resend (log.keep_bodies) */
	struct retention *retention; /* log.retention passes, started by retention_ev */
	struct event *retention_ev;
	struct dns *dns;
	struct diag *diag; /* DNS checks: on demand (API) and checks.interval */
	struct sched *sched;
	struct relay *relay;
	struct api *api;
	struct alert *alert;       /* alert rules (alerts.rules); NULL until started */
	struct maildrop *maildrop; /* pickup of mail left by the sendmail command */
	struct api_pre api_pre; /* sockets and token until api_new() takes them */
	struct id_gen ids;
	SSL_CTX *tls_ctx;
	int *listen_fds; /* one per conf->listeners[i] */
	int sendmail_fd; /* the sendmail socket (conf->sendmail_socket), -1 when none */
	char *sendmail_path; /* its path as bound (a reload does not move it) */
	struct event *jobs_ev, *hup_ev, *term_ev, *int_ev, *watchdog_ev, *grace_ev;
	bool stopping;
	uint64_t started_ms;
	uint64_t recovered;
	uint64_t queued;
	uint64_t queued_api, queued_sendmail; /* of queued, by source (the rest came by SMTP) */
	struct serve_qop *qops; /* queue control changes in flight, one per message at most */
	struct cli_probes *probes; /* connection tests asked through the API */
	struct notify *notify;   /* alert channels (alerts.channels) */
};

/* A queue control change (hold, release, delete) waiting for the spool or the email log. */
struct serve_qop {
	struct serve *sv;
	uint64_t id;
	enum api_queue_op op;
	struct spool_env env;
	bool was_waiting;       /* taken out of the scheduler for the change */
	api_queue_done_fn done;
	void *ctx;
	struct serve_qop *next;
};

static void
serve_print_diag(const struct conf_diag *d)
{
	if (d->text.len)
		fputs(d->text.ptr, stderr);
}

int
cli_check(const struct cli_opts *o)
{
	struct conf_diag diag;
	struct conf *c = NULL;
	int rc;

	conf_diag_init(&diag);
	rc = conf_load(o->config, &c, &diag);
	serve_print_diag(&diag);
	if (rc == -1) {
		fprintf(stderr, "%s: %u problem%s found\n", o->config, diag.count,
		    diag.count == 1 ? "" : "s");
		conf_diag_fini(&diag);
		return EX_CONFIG;
	}
	printf("%s: configuration ok\n", o->config);
	conf_diag_fini(&diag);
	conf_unref(c);
	return EX_OK;
}

/* Log every diagnostic line of d (reload failures go to the daemon log, not a terminal). */
static void
serve_log_diag(const struct conf_diag *d)
{
	const char *p = d->text.ptr, *nl;

	if (p == NULL)
		return;
	for (; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		log_error("main", "config_problem", "sess=main problem=%s", log_qn(p, (size_t)(nl - p)));
		if (*nl == '\0')
			break;
	}
}

static bool
serve_needs_tls(const struct conf *c)
{
	size_t i;

	for (i = 0; i < c->n_listeners; i++) {
		if (c->listeners[i].tls != CONF_TLS_NONE)
			return true;
	}
	return false;
}

static void
serve_apply_log_conf(const struct conf *c)
{
	enum log_level lvl;

	if (c->log_level && log_level_parse(c->log_level, &lvl) == 0)
		log_set_level(lvl);
	log_set_trace(c->log_trace);
}

static void
serve_jobs_cb(evutil_socket_t fd, short what, void *arg)
{
	struct serve *sv = arg;

	(void)fd;
	(void)what;
	jobs_run_completions(sv->hub);
}

/* ---- kept bodies (log.keep_bodies) ---- */

struct serve_kept {
	struct serve *sv;
	uint64_t id;
};

/* Loop: a finished message's body is kept; the email log says so. */
static void
serve_kept_cb(void *arg)
{
	struct serve_kept *k = arg;

	if (k->sv->ml != NULL)
		maillog_body_kept(k->sv->ml, k->id);
	free(k);
}

/*
 * Spool worker, as a message finishes (spool_set_keep): copy its body to <state>/bodies for
 * resend (DESIGN.md 4, step 6). Mail not finished yet is resent from the spool (bodies_load), so
 * nothing is copied while a message is received: the client's 250 and the first attempt never
 * wait for it.
 */
static void
serve_keep_cb(void *arg, uint64_t id, int fd)
{
	struct serve *sv = arg;
	struct serve_kept *k;
	struct hk_err err = { 0 };
	char qid[ID_HEX_LEN + 1];

	if (bodies_keep_fd(sv->bodies, id, fd, &err) == -1) {
		id_format(id, qid);
		log_warn("main", "body_not_kept", "qid=%s err=%s action=%s", qid, log_q(err.text),
		    log_q("it cannot be resent; free space or fix the permissions of <state>/bodies"));
		return;
	}
	k = xcalloc(1, sizeof(*k));
	k->sv = sv;
	k->id = id;
	jobs_post(sv->hub, serve_kept_cb, k);
}

/* The keep hook as log.keep_bodies says: off, finishes do not even open the body. */
static void
serve_set_keep(struct serve *sv)
{
	if (sv->conf->log_keep_bodies)
		spool_set_keep(sv->spool, serve_keep_cb, sv);
	else
		spool_set_keep(sv->spool, NULL, NULL);
}

/* A message is durably queued: count, log (with its subject), schedule. */
static void
serve_queued(struct serve *sv, const struct spool_env *env, const char *subject)
{
	sv->queued++;
	if (env->source && strcmp(env->source, "api") == 0)
		sv->queued_api++;
	else if (env->source && strcmp(env->source, "sendmail") == 0)
		sv->queued_sendmail++;
	maillog_received(sv->ml, env, subject);
	sched_add(sv->sched, env->id, 0);
}

static void
serve_queued_cb(void *arg, const struct spool_env *env)
{
	struct serve *sv = arg;
	char qid[ID_HEX_LEN + 1], why[512];

	serve_queued(sv, env, env->subject);
	/*
	 * SMTP and sendmail mail: warn before sending when the From: domain cannot align (DMARC,
	 * relaxed) with the account of the route's first upstream; large providers reject it.
	 */
	if (env->from_domain != NULL &&
	    diag_align_from_is_unaligned(sv->conf, env->from_domain, why, sizeof(why))) {
		id_format(env->id, qid);
		log_warn("smtpd", "from_unaligned", "qid=%s from_domain=%s why=%s", qid,
		    log_q(env->from_domain), log_q(why));
	}
}

/* The scheduler offers a due message to the relay (wired here: engines do not know each other). */
static bool
serve_ready_cb(void *arg, uint64_t id)
{
	struct serve *sv = arg;

	return sv->relay != NULL && relay_ready(sv->relay, id);
}

/*
 * Listener fds for c: reuse the fd of an old listener with the same address text, bind the others.
 * Returns a new array, or NULL (err) with everything it bound closed again.
 */
static int *
serve_bind_listeners(const struct conf *c, const struct conf *old, const int *old_fds,
    struct hk_err *err)
{
	int *fds = xcalloc(c->n_listeners ? c->n_listeners : 1, sizeof(*fds));
	bool *fresh = xcalloc(c->n_listeners ? c->n_listeners : 1, sizeof(*fresh));
	size_t i, j;

	for (i = 0; i < c->n_listeners; i++) {
		fds[i] = -1;
		for (j = 0; old && j < old->n_listeners; j++) {
			if (strcmp(old->listeners[j].addr.text, c->listeners[i].addr.text) == 0)
				fds[i] = old_fds[j];
		}
		if (fds[i] != -1)
			continue;
		fds[i] = listener_bind(&c->listeners[i].addr, 0660, err);
		if (fds[i] == -1)
			goto fail;
		fresh[i] = true;
	}
	free(fresh);
	return fds;
fail:
	for (j = 0; j < i; j++) {
		if (fresh[j])
			close(fds[j]);
	}
	free(fresh);
	free(fds);
	return NULL;
}

/* Close the fds of c that were bound for it (not taken over from old). */
static void
serve_close_new(const struct conf *c, const int *fds, const struct conf *old, const int *old_fds)
{
	size_t i, j;

	for (i = 0; i < c->n_listeners; i++) {
		bool old_fd = false;

		for (j = 0; j < old->n_listeners; j++)
			old_fd |= fds[i] == old_fds[j];
		if (!old_fd)
			close(fds[i]);
	}
}

/* Close the old fds that the new configuration no longer uses. */
static void
serve_close_unused(const struct conf *old, const int *old_fds, const struct conf *c,
    const int *fds)
{
	size_t i, j;

	for (j = 0; j < old->n_listeners; j++) {
		bool kept = false;

		for (i = 0; i < c->n_listeners; i++)
			kept |= fds[i] == old_fds[j];
		if (!kept)
			close(old_fds[j]);
	}
}

static void
serve_reload(struct serve *sv)
{
	struct conf_diag diag;
	struct conf *c = NULL;
	SSL_CTX *ctx = NULL;
	struct hk_err err = { 0 };
	int *fds;

	sdnotify("RELOADING=1");
	log_info("main", "reload_start", "sess=main config=%s", log_q(sv->conf->path));
	conf_diag_init(&diag);
	if (conf_load(sv->conf->path, &c, &diag) == -1) {
		serve_log_diag(&diag);
		log_error("main", "reload_failed", "sess=main problems=%u action=%s", diag.count,
		    log_q("kept the running configuration"));
		goto out;
	}
	if (strcmp(c->spool, sv->conf->spool) != 0 || strcmp(c->state, sv->conf->state) != 0) {
		log_error("main", "reload_failed", "sess=main reason=%s action=%s",
		    log_q("spool or state directory changed: restart needed"),
		    log_q("kept the running configuration"));
		goto out;
	}
	if (serve_needs_tls(c)) {
		ctx = tls_server_ctx_new(c->tls_cert, c->tls_key, &err);
		if (ctx == NULL) {
			log_error("main", "reload_failed", "sess=main reason=%s action=%s",
			    log_q(err.text), log_q("kept the running configuration"));
			goto out;
		}
	}
	fds = serve_bind_listeners(c, sv->conf, sv->listen_fds, &err);
	if (fds == NULL) {
		log_error("main", "reload_failed", "sess=main reason=%s action=%s", log_q(err.text),
		    log_q("kept the running configuration (a new privileged port needs a restart)"));
		goto out;
	}
	if (relay_reload(sv->relay, c, &err) == -1) {
		log_error("main", "reload_failed", "sess=main reason=%s action=%s", log_q(err.text),
		    log_q("kept the running configuration"));
		serve_close_new(c, fds, sv->conf, sv->listen_fds);
		free(fds);
		goto out;
	}
	/* A channel whose secret file is unreadable keeps the old channels, not the old config. */
	if (sv->notify != NULL && notify_reload(sv->notify, c, &err) == -1)
		log_error("main", "reload_partial", "sess=main reason=%s action=%s", log_q(err.text),
		    log_q("kept the previous alert channels"));
	smtpd_reload(sv->smtpd, c, ctx, fds);
	if (sv->alert != NULL && alert_reload(sv->alert, c, &err) == -1)
		log_error("main", "reload_alerts_failed", "sess=main err=%s", log_q(err.text));
	if (sv->diag != NULL)
		diag_reload(sv->diag, c);
	serve_close_unused(sv->conf, sv->listen_fds, c, fds);
	free(sv->listen_fds);
	sv->listen_fds = fds;
	if (sv->tls_ctx)
		SSL_CTX_free(sv->tls_ctx);
	sv->tls_ctx = ctx;
	ctx = NULL;
	conf_unref(sv->conf);
	sv->conf = c;
	c = NULL;
	serve_apply_log_conf(sv->conf);
	serve_set_keep(sv);
	api_set_explain(sv->api, sv->conf);
	log_info("main", "reload_done", "sess=main listeners=%zu", sv->conf->n_listeners);
out:
	if (ctx)
		SSL_CTX_free(ctx);
	conf_unref(c);
	conf_diag_fini(&diag);
	sdnotify("READY=1");
}

static void
serve_hup_cb(evutil_socket_t sig, short what, void *arg)
{
	struct serve *sv = arg;

	(void)sig;
	(void)what;
	if (!sv->stopping)
		serve_reload(sv);
}

static void
serve_relay_stopped_cb(void *arg)
{
	struct serve *sv = arg;

	log_info("main", "deliveries_stopped", "sess=main");
	event_base_loopexit(sv->base, NULL);
}

static void
serve_stopped_cb(void *arg)
{
	struct serve *sv = arg;

	log_info("main", "sessions_closed", "sess=main");
	if (sv->relay)
		relay_shutdown(sv->relay, serve_relay_stopped_cb, sv);
	else
		event_base_loopexit(sv->base, NULL);
}

static void
serve_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct serve *sv = arg;

	(void)fd;
	(void)what;
	log_warn("main", "shutdown_forced", "sess=main sessions=%zu reason=%s",
	    smtpd_sessions(sv->smtpd), log_q("grace period over"));
	event_base_loopexit(sv->base, NULL);
}

static void
serve_term_cb(evutil_socket_t sig, short what, void *arg)
{
	struct serve *sv = arg;
	struct timeval tv = { SERVE_SHUTDOWN_GRACE_MS / 1000, 0 };

	(void)what;
	if (sv->stopping)
		return;
	sv->stopping = true;
	sdnotify("STOPPING=1");
	log_info("main", "shutdown", "sess=main signal=%d sessions=%zu", (int)sig,
	    smtpd_sessions(sv->smtpd));
	sv->grace_ev = evtimer_new(sv->base, serve_grace_cb, sv);
	evtimer_add(sv->grace_ev, &tv);
	smtpd_shutdown(sv->smtpd, serve_stopped_cb, sv);
}

static void
serve_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct serve *sv = arg;

	(void)fd;
	(void)what;
	sdnotifyf("WATCHDOG=1\nSTATUS=serving; %zu sessions; %llu queued since start",
	    smtpd_sessions(sv->smtpd), (unsigned long long)sv->queued);
}

static bool
serve_env_is_held(const struct spool_env *env)
{
	size_t i;

	for (i = 0; i < env->n_rcpts; i++) {
		if (env->rcpts[i].state == SPOOL_RCPT_HELD)
			return true;
	}
	return false;
}

static void
serve_recovered_cb(void *arg, const struct spool_env *env)
{
	struct serve *sv = arg;

	id_gen_observe(&sv->ids, env->id);
	sv->recovered++;
	/* The log is derived: queued mail missing from it is entered again (a no-op otherwise). */
	maillog_received(sv->ml, env, NULL);
	/* Held messages stay out of the scheduler until released. */
	if (!serve_env_is_held(env))
		sched_add(sv->sched, env->id, env->next_attempt_ms);
}

/*
 * Spool threads mostly wait for fsync, so more than cores help; past about two per core they
 * spin on the queue directory's lock instead (bench/ingress.sh on 2 cores: 4 threads 3,310
 * msg/s, 8 threads 2,530-3,030 msg/s).
 */
static unsigned
serve_spool_workers(const struct conf *c)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (c->spool_workers)
		return c->spool_workers;
	return n > 2 ? (unsigned)(2 * n) : 4;
}

static int
serve_dns_start(struct serve *sv, struct hk_err *err)
{
	struct dns_params dp;

	memset(&dp, 0, sizeof(dp));
	dp.resolv_conf = sv->conf->dns_resolv_conf;
	dp.forward = sv->conf->n_dns_forward ? (const char *const *)sv->conf->dns_forward : NULL;
	dp.trust_anchor = sv->conf->dns_dnssec ? sv->conf->dns_trust_anchor : NULL;
	dp.timeout_ms = sv->conf->dns_timeout_ms;
	sv->dns = dns_new(sv->base, &dp, err);
	return sv->dns == NULL ? -1 : 0;
}

/* ---- alerts: events from the engines, gauges, GET /api/v1/alerts ---- */

static const enum alert_event_type serve_alert_types[] = {
	[RELAY_EVENT_SENT] = ALERT_EV_SENT,
	[RELAY_EVENT_BOUNCED] = ALERT_EV_BOUNCED,
	[RELAY_EVENT_EXPIRED] = ALERT_EV_EXPIRED,
	[RELAY_EVENT_DEFERRED] = ALERT_EV_DEFERRED,
	[RELAY_EVENT_UPSTREAM_DOWN] = ALERT_EV_UPSTREAM_DOWN,
	[RELAY_EVENT_UPSTREAM_UP] = ALERT_EV_UPSTREAM_UP,
	[RELAY_EVENT_FAILOVER] = ALERT_EV_FAILOVER,
};

static void
serve_relay_event_cb(void *arg, const struct relay_event *rev)
{
	struct serve *sv = arg;
	struct alert_event ev;

	if (sv->alert == NULL || (size_t)rev->type >= HK_ARRAY_LEN(serve_alert_types))
		return;
	memset(&ev, 0, sizeof(ev));
	ev.type = serve_alert_types[rev->type];
	ev.qid = rev->qid;
	ev.upstream = rev->upstream;
	ev.sender_domain = rev->from_domain;
	ev.rcpt_domain = rev->rcpt_domain;
	ev.route = rev->route;
	ev.code = rev->code;
	ev.enhanced = rev->enhanced;
	ev.text = rev->text;
	ev.age_ms = rev->age_ms;
	alert_event(sv->alert, &ev);
}

static void
serve_auth_failure_cb(void *arg, const char *client, const char *user, const char *why)
{
	struct serve *sv = arg;
	struct alert_event ev;

	(void)user;
	if (sv->alert == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.type = ALERT_EV_AUTH_FAILURE;
	ev.peer = client;
	ev.text = why;
	alert_event(sv->alert, &ev);
}

/* Gauges only the daemon can read: the queue and the upstreams' quotas. */
static void
serve_alert_poll_cb(void *arg, struct alert *a)
{
	struct serve *sv = arg;
	uint64_t now = clock_now_ms();
	size_t i;

	uint64_t oldest = sched_oldest_id(sv->sched), r_oldest;

	alert_gauge(a, ALERT_GAUGE_QUEUE_SIZE, NULL, sched_waiting(sv->sched) +
	    (sv->relay != NULL ? relay_active(sv->relay) + relay_waiting(sv->relay) : 0));
	/* IDs are time-ordered (id.h): the smallest one is the oldest message still queued. */
	r_oldest = sv->relay != NULL ? relay_oldest_id(sv->relay) : 0;
	if (r_oldest != 0 && (oldest == 0 || r_oldest < oldest))
		oldest = r_oldest;
	alert_gauge(a, ALERT_GAUGE_QUEUE_AGE_MS, NULL,
	    oldest != 0 && id_time_ms(oldest) < now ? now - id_time_ms(oldest) : 0);
	for (i = 0; sv->relay != NULL && i < sv->conf->n_upstreams; i++) {
		const struct conf_upstream *cu = &sv->conf->upstreams[i];
		struct upstream_snapshot snap;
		uint64_t pct = 0;

		if (!relay_upstream_snapshot(sv->relay, cu->name, now, &snap))
			continue;
		if (snap.per_day > 0)
			pct = snap.sent_day * 100 / snap.per_day;
		if (snap.per_hour > 0 && snap.sent_hour * 100 / snap.per_hour > pct)
			pct = snap.sent_hour * 100 / snap.per_hour;
		/* A SPILL pause means the provider itself said the quota is spent. */
		if (snap.health == UPSTREAM_HEALTH_PAUSED)
			pct = 100;
		alert_gauge(a, ALERT_GAUGE_QUOTA_PCT, cu->name, pct);
	}
}

static void
serve_api_alerts_cb(void *arg, struct buf *out)
{
	struct serve *sv = arg;

	if (sv->alert != NULL)
		alert_list_json(sv->alert, out);
	else
		buf_append_str(out, "{\"alerts\":[],\"open\":0,\"rules\":0}");
}

/* alert_params.send: notices go to the channels (notify.h) once they are running. */
static int
serve_alert_send_cb(void *arg, const char *channel, const struct alert_msg *m,
    struct hk_err *err)
{
	struct serve *sv = arg;

	if (sv->notify == NULL) {
		log_warn("alert", "alert_not_sent", "id=%s channel=%s why=%s", log_q(m->id),
		    log_q(channel), log_q("channels not running (start-up or shutdown)"));
		return 0;
	}
	return notify_send(sv->notify, channel, m, NULL, NULL, err);
}

static int
serve_alert_start(struct serve *sv, struct hk_err *err)
{
	struct alert_params ap;

	memset(&ap, 0, sizeof(ap));
	ap.base = sv->base;
	ap.conf = sv->conf;
	ap.poll = serve_alert_poll_cb;
	ap.poll_arg = sv;
	ap.send = serve_alert_send_cb;
	ap.send_arg = sv;
	sv->alert = alert_new(&ap, err);
	return sv->alert != NULL ? 0 : -1;
}

static int
serve_relay_start(struct serve *sv, struct hk_err *err)
{
	struct relay_params rp;

	memset(&rp, 0, sizeof(rp));
	rp.base = sv->base;
	rp.conf = sv->conf;
	rp.spool = sv->spool;
	rp.dns = sv->dns;
	rp.maillog = sv->ml;
	rp.sched = sv->sched;
	rp.ids = &sv->ids;
	rp.on_event = serve_relay_event_cb;
	rp.on_event_arg = sv;
	sv->relay = relay_new(&rp, err);
	if (sv->relay == NULL)
		return -1;
	relay_rebuild_quotas(sv->relay);
	return 0;
}

/* The API's view of the daemon's counters (api_ops.stats). */
static void
serve_api_stats_cb(void *arg, struct api_stats *out)
{
	struct serve *sv = arg;
	uint64_t due = sched_next_due(sv->sched);

	out->started_ms = sv->started_ms;
	out->received_api = sv->queued_api;
	out->received_sendmail = sv->queued_sendmail;
	out->received_smtp = sv->queued - sv->queued_api - sv->queued_sendmail;
	out->recovered = sv->recovered;
	out->smtp_sessions = sv->smtpd ? smtpd_sessions(sv->smtpd) : 0;
	out->sched_waiting = sched_waiting(sv->sched);
	out->sched_next_due_ms = due == UINT64_MAX ? 0 : due;
	out->delivering = sv->relay ? relay_active(sv->relay) : 0;
	out->maillog_pending = maillog_pending(sv->ml);
	out->maillog_dropped = maillog_dropped(sv->ml);
	if (sv->relay) {
		struct relay_stats rs;

		relay_stats(sv->relay, &rs);
		out->attempts_sent = rs.attempts_sent;
		out->attempts_next = rs.attempts_next;
		out->attempts_spill = rs.attempts_spill;
		out->attempts_deferred = rs.attempts_deferred;
		out->attempts_bounced = rs.attempts_bounced;
		out->rcpts_sent = rs.rcpts_sent;
		out->rcpts_bounced = rs.rcpts_bounced;
		out->rcpts_expired = rs.rcpts_expired;
		out->rcpts_deferred = rs.rcpts_deferred;
		out->messages_finished = rs.messages_finished;
		out->maybe_delivered = rs.maybe_delivered;
	}
}

/* Upstream state lives in the relay; the API gets copies (api_ops.upstreams). */
static void
serve_api_upstreams_cb(void *arg, uint64_t now_ms, api_upstream_each_fn each, void *ctx)
{
	struct serve *sv = arg;
	struct upstream_snapshot snap;
	size_t i;

	for (i = 0; i < sv->conf->n_upstreams; i++) {
		const struct conf_upstream *cu = &sv->conf->upstreams[i];

		if (relay_upstream_snapshot(sv->relay, cu->name, now_ms, &snap))
			each(ctx, cu, &snap);
	}
}


/* ---- queue control (api_ops.queue_flush_all, api_ops.queue_control) ---- */

static size_t
serve_api_flush_all_cb(void *arg)
{
	struct serve *sv = arg;

	if (sv->relay)
		relay_evwait_flush(sv->relay);
	sched_flush(sv->sched);
	log_info("main", "queue_flushed", "sess=api waiting=%zu", sched_waiting(sv->sched));
	return sched_waiting(sv->sched);
}

static void
serve_qop_end(struct serve_qop *q, enum api_queue_result res, const char *why)
{
	struct serve_qop **pp;

	for (pp = &q->sv->qops; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	}
	q->done(q->ctx, res, why);
	spool_env_fini(&q->env);
	free(q);
}

/* Every recipient's email log event for a change, per recipient so the log shows each one. */
static void
serve_qop_log(struct serve_qop *q, enum spool_rcpt_state from1, enum spool_rcpt_state from2,
    enum maillog_event ev, const char *detail)
{
	uint64_t now = clock_now_ms();
	size_t i;

	for (i = 0; i < q->env.n_rcpts; i++) {
		enum spool_rcpt_state s = q->env.rcpts[i].state;

		if (s == from1 || s == from2)
			maillog_status(q->sv->ml, q->id, q->env.rcpts[i].addr, ev, now, detail);
	}
}

static void
serve_qop_updated_cb(int rc, const struct hk_err *err, void *arg)
{
	struct serve_qop *q = arg;
	char qid[ID_HEX_LEN + 1];

	id_format(q->id, qid);
	if (rc == -1) {
		log_error("main", "queue_control_failed", "sess=api qid=%s op=%d err=%s", qid,
		    (int)q->op, log_q(err ? err->text : "?"));
		if (q->was_waiting && !q->sv->stopping)
			sched_add(q->sv->sched, q->id, q->env.next_attempt_ms);
		serve_qop_end(q, API_QUEUE_FAILED, "the envelope could not be rewritten");
		return;
	}
	if (q->op == API_QUEUE_HOLD) {
		serve_qop_log(q, SPOOL_RCPT_HELD, SPOOL_RCPT_HELD, MAILLOG_HELD,
		    "held by an administrator");
		log_info("main", "held", "sess=api qid=%s", qid);
	} else {
		serve_qop_log(q, SPOOL_RCPT_QUEUED, SPOOL_RCPT_QUEUED, MAILLOG_RELEASED,
		    "released by an administrator");
		log_info("main", "released", "sess=api qid=%s", qid);
		if (!q->sv->stopping)
			sched_add(q->sv->sched, q->id, 0);
	}
	serve_qop_end(q, API_QUEUE_OK, NULL);
}

static void
serve_qop_finished_cb(int rc, const struct hk_err *err, void *arg)
{
	struct serve_qop *q = arg;
	char qid[ID_HEX_LEN + 1];

	id_format(q->id, qid);
	if (rc == -1) {
		log_error("main", "delete_failed", "sess=api qid=%s err=%s", qid,
		    log_q(err ? err->text : "?"));
		serve_qop_end(q, API_QUEUE_FAILED, "the message could not be removed from the spool");
		return;
	}
	log_info("main", "deleted", "sess=api qid=%s", qid);
	serve_qop_end(q, API_QUEUE_OK, NULL);
}

/* The deleted events are durable: now the spool may let go (DESIGN.md 8). */
static void
serve_qop_logged_cb(void *arg, int rc)
{
	struct serve_qop *q = arg;
	struct hk_err err = { 0 };

	if (rc == -1)
		log_warn("main", "log_not_durable", "sess=api op=delete");
	if (spool_finish(q->sv->spool, q->id, serve_qop_finished_cb, q, &err) == -1)
		serve_qop_finished_cb(-1, &err, q);
}

/* Set every recipient in state from1 or from2 to state to; returns how many changed. */
static size_t
serve_qop_set(struct spool_env *env, enum spool_rcpt_state from1, enum spool_rcpt_state from2,
    enum spool_rcpt_state to)
{
	size_t i, n = 0;

	for (i = 0; i < env->n_rcpts; i++) {
		if (env->rcpts[i].state == from1 || env->rcpts[i].state == from2) {
			env->rcpts[i].state = to;
			n++;
		}
	}
	return n;
}

static void
serve_qop_start(struct serve_qop *q)
{
	struct serve *sv = q->sv;
	struct spool_env *env = &q->env;
	struct hk_err err = { 0 };
	size_t held = 0, active = 0, i;

	for (i = 0; i < env->n_rcpts; i++) {
		if (env->rcpts[i].state == SPOOL_RCPT_HELD)
			held++;
		else if (env->rcpts[i].state == SPOOL_RCPT_QUEUED ||
		    env->rcpts[i].state == SPOOL_RCPT_DEFERRED)
			active++;
	}
	switch (q->op) {
	case API_QUEUE_FLUSH:
		if (held) {
			serve_qop_end(q, API_QUEUE_CONFLICT, "the message is held: release it");
			return;
		}
		if (active == 0) {
			serve_qop_end(q, API_QUEUE_CONFLICT, "no recipient left to deliver");
			return;
		}
		if (!sched_remove(sv->sched, q->id) &&
		    !(sv->relay && relay_evwait_take(sv->relay, q->id))) {
			serve_qop_end(q, API_QUEUE_CONFLICT, "not waiting for a retry");
			return;
		}
		sched_add(sv->sched, q->id, 0);
		serve_qop_end(q, API_QUEUE_OK, NULL);
		return;
	case API_QUEUE_HOLD:
		if (active == 0) {
			serve_qop_end(q, held ? API_QUEUE_OK : API_QUEUE_CONFLICT,
			    "no recipient left to hold");
			return;
		}
		q->was_waiting = sched_remove(sv->sched, q->id) ||
		    (sv->relay && relay_evwait_take(sv->relay, q->id));
		serve_qop_set(env, SPOOL_RCPT_QUEUED, SPOOL_RCPT_DEFERRED, SPOOL_RCPT_HELD);
		break;
	case API_QUEUE_RELEASE:
		if (held == 0) {
			serve_qop_end(q, API_QUEUE_CONFLICT, "the message is not held");
			return;
		}
		serve_qop_set(env, SPOOL_RCPT_HELD, SPOOL_RCPT_HELD, SPOOL_RCPT_QUEUED);
		env->next_attempt_ms = clock_now_ms();
		break;
	case API_QUEUE_DELETE:
		if (!sched_remove(sv->sched, q->id) && sv->relay)
			relay_evwait_take(sv->relay, q->id);
		serve_qop_log(q, SPOOL_RCPT_QUEUED, SPOOL_RCPT_DEFERRED, MAILLOG_DELETED,
		    "deleted by an administrator");
		serve_qop_log(q, SPOOL_RCPT_HELD, SPOOL_RCPT_HELD, MAILLOG_DELETED,
		    "deleted by an administrator");
		maillog_barrier(sv->ml, serve_qop_logged_cb, q);
		return;
	}
	if (spool_update(sv->spool, env, serve_qop_updated_cb, q, &err) == -1)
		serve_qop_updated_cb(-1, &err, q);
}

static void
serve_api_queue_control_cb(void *arg, uint64_t id, enum api_queue_op op,
    api_queue_done_fn done, void *ctx)
{
	struct serve *sv = arg;
	struct serve_qop *q;
	struct hk_err err = { 0 };

	for (q = sv->qops; q != NULL; q = q->next) {
		if (q->id == id) {
			done(ctx, API_QUEUE_ACTIVE,
			    "another change of this message is in progress, try again");
			return;
		}
	}
	if (sv->relay != NULL && relay_is_active(sv->relay, id)) {
		done(ctx, API_QUEUE_ACTIVE, "being delivered, try again");
		return;
	}
	q = xcalloc(1, sizeof(*q));
	q->sv = sv;
	q->id = id;
	q->op = op;
	q->done = done;
	q->ctx = ctx;
	q->next = sv->qops;
	sv->qops = q;
	if (spool_load(sv->spool, id, &q->env, &err) == -1) {
		if (err.code == HK_E_NOTFOUND) {
			serve_qop_end(q, API_QUEUE_NOT_FOUND, "no message with that id in the "
			    "queue");
			return;
		}
		log_error("main", "queue_control_failed", "sess=api err=%s", log_q(err.text));
		serve_qop_end(q, API_QUEUE_FAILED, "the envelope cannot be read");
		return;
	}
	serve_qop_start(q);
}

/* ---- messages sent through the API (api_ops.new_id, api_ops.submit) ---- */

struct serve_submit {
	struct serve *sv;
	const struct spool_env *env; /* the API's, kept until done runs */
	api_submit_done_fn done;
	void *ctx;
	char *subject;               /* decoded Subject, for the email log */
};

static uint64_t
serve_api_new_id_cb(void *arg)
{
	struct serve *sv = arg;

	return id_gen_next(&sv->ids, clock_now_ms());
}

static void
serve_api_committed_cb(int rc, const struct hk_err *err, void *arg)
{
	struct serve_submit *s = arg;

	/* Durable now: logged and scheduled exactly like SMTP mail (env->source is "api"). */
	if (rc == 0)
		serve_queued(s->sv, s->env, s->subject);
	s->done(s->ctx, rc, err);
	free(s->subject);
	free(s);
}

static int
serve_api_submit_cb(void *arg, const struct spool_env *env, struct buf *body,
    api_submit_done_fn done, void *ctx, struct hk_err *err)
{
	struct serve *sv = arg;
	struct serve_submit *s = xcalloc(1, sizeof(*s));

	s->sv = sv;
	s->env = env;
	s->done = done;
	s->ctx = ctx;
	s->subject = header_subject(body->ptr, body->len);
	if (spool_commit(sv->spool, env, body, serve_api_committed_cb, s, err) == -1) {
		free(s->subject);
		free(s);
		return -1;
	}
	return 0;
}

/*
 * As root, before the control socket (they may share a directory): the sendmail socket, mode
 * 0666 in a directory created 0755, so every local user can reach it; owned by the service user,
 * who removes it at exit. A stale socket file is replaced (listener_bind).
 */
static int
serve_sendmail_preinit(struct serve *sv, const struct privs_target *pt, struct hk_err *err)
{
	const char *sock = sv->conf->sendmail_socket;
	const char *slash = sock ? strrchr(sock, '/') : NULL;
	struct conf_addr addr;
	struct stat st;
	const char *why = NULL;

	if (sock == NULL)
		return 0;
	if (slash != NULL && slash != sock) {
		char *dir = xstrndup(sock, (size_t)(slash - sock));
		int rc = privs_prepare_dir(dir, 0755, pt, err);

		if (rc == 0 && stat(dir, &st) == 0 && (st.st_mode & S_IXOTH) == 0)
			log_warn("main", "sendmail_socket_unreachable", "sess=main dir=%s fix=%s",
			    log_q(dir), log_q("other users cannot reach the sendmail socket and use "
			    "the maildrop; set sendmail.socket under /run/hikyaku"));
		free(dir);
		if (rc == -1)
			return -1;
	}
	if (conf_addr_parse(sock, &addr, &why) == -1)
		return hk_err_set(err, HK_E_CONFIG, "sendmail.socket %s: %s", sock, why);
	sv->sendmail_fd = listener_bind(&addr, 0666, err);
	free(addr.text);
	if (sv->sendmail_fd == -1)
		return -1;
	sv->sendmail_path = xstrdup(sock);
	if (pt->drop && chown(sock, pt->uid, pt->gid) == -1)
		return hk_err_sys(err, errno, "chown %s", sock);
	return 0;
}

/* As root: the control socket's directory, both API sockets and the token (api_preinit). */
static int
serve_api_preinit(struct serve *sv, const struct privs_target *pt, struct hk_err *err)
{
	const char *sock = sv->conf->api_control_socket;
	const char *slash = sock ? strrchr(sock, '/') : NULL;

	if (slash != NULL && slash != sock) {
		char *dir = xstrndup(sock, (size_t)(slash - sock));
		int rc = privs_prepare_dir(dir, 0750, pt, err);

		free(dir);
		if (rc == -1)
			return -1;
	}
	if (api_preinit(sv->conf, &sv->api_pre, err) == -1)
		return -1;
	/* Group hikyaku may use the control socket (0660): it must belong to the service user. */
	if (pt->drop && sock != NULL && chown(sock, pt->uid, pt->gid) == -1)
		return hk_err_sys(err, errno, "chown %s", sock);
	return 0;
}

/* A resend committed through api_ops.submit: link the copy and the original in the log. */
static void
serve_api_resent_cb(void *arg, uint64_t new_id, uint64_t old_id)
{
	struct serve *sv = arg;

	maillog_resent(sv->ml, new_id, old_id, clock_now_ms());
}

/* ---- log.retention: a pass at start and every hour, off the loop (retention.h) ---- */

static void
serve_retention_cb(evutil_socket_t fd, short what, void *arg)
{
	struct serve *sv = arg;
	uint64_t now = clock_now_ms();

	(void)fd;
	(void)what;
	if (sv->stopping || now <= sv->conf->log_retention_ms)
		return;
	if (!retention_start(sv->retention, now - sv->conf->log_retention_ms, NULL, NULL))
		log_info("main", "retention_still_running", "sess=main");
}

/* ---- alert channels (notify.h): email alerts through the API's commit path ---- */

struct serve_notify_submit {
	struct serve *sv;
	struct spool_env env;
	char *subject;
	void (*done)(void *ctx, int rc, const char *why);
	void *ctx;
};

static void
serve_notify_committed_cb(int rc, const struct hk_err *err, void *arg)
{
	struct serve_notify_submit *s = arg;

	if (rc == 0)
		serve_queued(s->sv, &s->env, s->subject);
	s->done(s->ctx, rc, rc == 0 ? NULL : err != NULL ? err->text : "spool commit failed");
	spool_env_fini(&s->env);
	free(s->subject);
	free(s);
}

/* notify_params.submit: an alert email becomes a queued message like one sent by the API. */
static int
serve_notify_submit_cb(void *arg, const char *mail_from, char *const *rcpts, size_t n_rcpts,
    const char *data, size_t len, void (*done)(void *ctx, int rc, const char *why), void *ctx,
    struct hk_err *err)
{
	struct serve *sv = arg;
	struct serve_notify_submit *s = xcalloc(1, sizeof(*s));
	struct buf body = BUF_INIT;
	uint64_t now = clock_now_ms();
	size_t i;

	s->sv = sv;
	s->done = done;
	s->ctx = ctx;
	s->env.id = id_gen_next(&sv->ids, now);
	s->env.received_ms = now;
	s->env.from = xstrdup(mail_from);
	s->env.source = xstrdup("api");
	s->env.listener = xstrdup("alerts");
	s->env.body = SMTP_BODY_7BIT;
	for (i = 0; i < n_rcpts; i++)
		spool_env_add_rcpt(&s->env, rcpts[i], SMTP_NOTIFY_NEVER, NULL);
	buf_append(&body, data, len);
	s->env.size = body.len;
	s->subject = header_subject(body.ptr, body.len);
	if (spool_commit(sv->spool, &s->env, &body, serve_notify_committed_cb, s, err) == -1) {
		buf_fini(&body);
		spool_env_fini(&s->env);
		free(s->subject);
		free(s);
		return -1;
	}
	return 0;
}

/* POST /api/v1/alerts/test (api_ops.alert_test). */
static int
serve_api_alert_test_cb(void *arg, const char *channel, api_alert_done_fn done, void *ctx,
    struct hk_err *err)
{
	struct serve *sv = arg;
	struct alert_msg m;
	char *title, *id;
	int rc;

	memset(&m, 0, sizeof(m));
	m.kind = ALERT_KIND_TEST;
	m.severity = ALERT_SEVERITY_INFO;
	id = xasprintf("test:%s", channel);
	title = xasprintf("Test notice from hikyaku on %s", sv->conf->node);
	m.id = id;
	m.rule = "test";
	m.group = channel;
	m.title = title;
	m.text = "hikyaku alert test: if you can read this, the channel works.";
	m.since_ms = m.at_ms = clock_now_ms();
	m.node = sv->conf->node;
	rc = notify_send(sv->notify, channel, &m, done, ctx, err);
	free(id);
	free(title);
	return rc;
}

struct serve_alert_stats {
	api_alert_stats_fn each;
	void *ctx;
};

static void
serve_alert_stats_each(void *ctx, const struct notify_channel_stats *s)
{
	struct serve_alert_stats *st = ctx;

	st->each(st->ctx, s->name, s->type, s->sent_ok, s->sent_failed, s->retries);
}

/* /metrics and the 404 of an unknown channel (api_ops.alert_stats). */
static void
serve_api_alert_stats_cb(void *arg, api_alert_stats_fn each, void *ctx)
{
	struct serve *sv = arg;
	struct serve_alert_stats st = { each, ctx };

	if (sv->notify != NULL)
		notify_stats(sv->notify, serve_alert_stats_each, &st);
}

static int
serve_notify_start(struct serve *sv, struct hk_err *err)
{
	struct notify_params np;

	memset(&np, 0, sizeof(np));
	np.base = sv->base;
	np.conf = sv->conf;
	np.submit = serve_notify_submit_cb;
	np.submit_arg = sv;
	sv->notify = notify_new(&np, err);
	return sv->notify == NULL ? -1 : 0;
}

/* ---- DNS checks (api_ops.check_dns, and the checks: schedule) ---- */

struct serve_check {
	struct diag_run *run;
	void (*done)(void *ctx, const struct buf *json);
	void *ctx;
};

static void
serve_check_done_cb(void *arg, const struct diag_report *r)
{
	struct serve_check *c = arg;
	struct buf b;

	buf_init(&b);
	diag_report_json(r, &b);
	c->done(c->ctx, &b);
	buf_fini(&b);
	free(c);
}

static void *
serve_api_check_dns_cb(void *arg, const char *domain, const char *selector, const char *ip,
    void (*done)(void *ctx, const struct buf *json), void *ctx)
{
	struct serve *sv = arg;
	struct serve_check *c = xcalloc(1, sizeof(*c));

	c->done = done;
	c->ctx = ctx;
	c->run = diag_check(sv->diag, domain, selector, ip, serve_check_done_cb, c);
	return c;
}

static void
serve_api_check_dns_cancel_cb(void *arg, void *handle)
{
	struct serve_check *c = handle;

	(void)arg;
	diag_check_cancel(c->run);
	free(c);
}

/*
 * The DNS checks have a resolver of their own (the same dns: settings), so a slow blocklist
 * never holds up MX lookups of deliveries. params.worse is left for the alert engine to wire.
 */
/* diag_params.worse: a scheduled DNS check found something worse; rules with dns_check. */
static void
serve_diag_worse_cb(void *arg, const struct diag_finding *f, const char *domain)
{
	struct serve *sv = arg;
	struct alert_event ev;
	char text[1024];

	if (sv->alert == NULL)
		return;
	snprintf(text, sizeof(text), "%s %s is now %s: %s", f->check, f->key,
	    diag_status_name(f->status), f->text);
	memset(&ev, 0, sizeof(ev));
	ev.type = ALERT_EV_DNS_WORSE;
	ev.rcpt_domain = domain;
	ev.text = text;
	alert_event(sv->alert, &ev);
}

static int
serve_diag_start(struct serve *sv, struct hk_err *err)
{
	struct diag_params dp;

	memset(&dp, 0, sizeof(dp));
	dp.base = sv->base;
	dp.conf = sv->conf;
	dp.schedule = true;
	dp.worse = serve_diag_worse_cb;
	dp.worse_arg = sv;
	dp.first_delay_ms = sv->conf->checks_interval_ms > 0 &&
	    sv->conf->checks_interval_ms < 5000 ? sv->conf->checks_interval_ms : 5000;
	sv->diag = diag_new(&dp, err);
	return sv->diag == NULL ? -1 : 0;
}

/* POST /api/v1/upstreams/{name}/test (api_ops.test_upstream): the probe runs on the loop. */
static void
serve_api_test_cb(void *arg, const char *name, const char *to, const char *from,
    uint64_t timeout_ms, api_test_done_fn done, void *ctx)
{
	struct serve *sv = arg;

	if (sv->probes == NULL)
		sv->probes = cli_probes_new();
	cli_probes_start(sv->probes, sv->base, sv->dns, sv->conf,
	    id_gen_next(&sv->ids, clock_now_ms()), name, to, from, timeout_ms, done, ctx);
}

static int
serve_api_start(struct serve *sv, struct hk_err *err)
{
	struct api_params ap;

	memset(&ap, 0, sizeof(ap));
	ap.base = sv->base;
	ap.conf = sv->conf;
	ap.hub = sv->hub;
	ap.state_dir = sv->conf->state;
	ap.pre = &sv->api_pre;
	ap.ops.stats = serve_api_stats_cb;
	ap.ops.upstreams = serve_api_upstreams_cb;
	ap.ops.new_id = serve_api_new_id_cb;
	ap.ops.submit = serve_api_submit_cb;
	ap.ops.queue_flush_all = serve_api_flush_all_cb;
	ap.ops.queue_control = serve_api_queue_control_cb;
	ap.ops.resent = serve_api_resent_cb;
	ap.ops.test_upstream = serve_api_test_cb;
	ap.ops.alerts_list = serve_api_alerts_cb;
	ap.ops.check_dns = serve_api_check_dns_cb;
	ap.ops.check_dns_cancel = serve_api_check_dns_cancel_cb;
	ap.ops.alert_test = serve_api_alert_test_cb;
	ap.ops.alert_stats = serve_api_alert_stats_cb;
	ap.bodies = sv->bodies;
	ap.ops.arg = sv;
	sv->api = api_new(&ap, err);
	return sv->api == NULL ? -1 : 0;
}

/* Everything before the loop runs: returns a sysexits code, or EX_OK to run. */
static int
serve_start(struct serve *sv)
{
	struct spool_recover_stats st = { 0 };
	struct privs_target pt;
	struct smtpd_params sp;
	struct maildrop_params mp;
	struct hk_err err = { 0 };
	const char *dirs[3];
	const char *faults;
	uint64_t wd;

	serve_apply_log_conf(sv->conf);
	privs_plan(sv->conf->user, &pt);
	if (privs_prepare_dir(sv->conf->spool, 0750, &pt, &err) == -1 ||
	    privs_prepare_dir(sv->conf->state, 0750, &pt, &err) == -1) {
		log_error("main", "start_failed", "sess=main step=directories err=%s", log_q(err.text));
		return EX_CANTCREAT;
	}
	dirs[0] = sv->conf->spool;
	dirs[1] = sv->conf->state;
	dirs[2] = NULL;
	privs_check_reach(&pt, dirs);

	/* As root: bind (ports < 1024) and read the TLS key, then drop for good. */
	sv->listen_fds = serve_bind_listeners(sv->conf, NULL, NULL, &err);
	if (sv->listen_fds == NULL) {
		log_error("main", "start_failed", "sess=main step=listen err=%s", log_q(err.text));
		return EX_UNAVAILABLE;
	}
	if (serve_needs_tls(sv->conf)) {
		sv->tls_ctx = tls_server_ctx_new(sv->conf->tls_cert, sv->conf->tls_key, &err);
		if (sv->tls_ctx == NULL) {
			log_error("main", "start_failed", "sess=main step=tls err=%s", log_q(err.text));
			return EX_CONFIG;
		}
	}
	if (serve_sendmail_preinit(sv, &pt, &err) == -1) {
		log_error("main", "start_failed", "sess=main step=sendmail_socket err=%s",
		    log_q(err.text));
		return EX_UNAVAILABLE;
	}
	if (serve_api_preinit(sv, &pt, &err) == -1) {
		log_error("main", "start_failed", "sess=main step=api err=%s", log_q(err.text));
		return EX_UNAVAILABLE;
	}
	if (privs_drop(&pt, &err) == -1) {
		log_error("main", "start_failed", "sess=main step=privileges err=%s", log_q(err.text));
		return EX_NOPERM;
	}

	hk_loop_thread_set();
	sv->base = event_base_new();
	if (sv->base == NULL)
		hk_panic("event_base_new failed");
	sv->hub = jobs_new();
	id_gen_init(&sv->ids, sv->conf->node_id);
	sv->spool = spool_new(sv->conf->spool, sv->hub, serve_spool_workers(sv->conf),
	    SERVE_SPOOL_MAX_INFLIGHT, &err);
	if (sv->spool == NULL) {
		log_error("main", "start_failed", "sess=main step=spool err=%s", log_q(err.text));
		return EX_CANTCREAT;
	}
	sv->ml = maillog_open(sv->conf->state, sv->hub, &err);
	if (sv->ml == NULL) {
		log_error("main", "start_failed", "sess=main step=maillog err=%s", log_q(err.text));
		return EX_CANTCREAT;
	}
	sv->bodies = bodies_new(sv->conf->state, sv->hub, &err);
	if (sv->bodies == NULL) {
		log_error("main", "start_failed", "sess=main step=bodies err=%s", log_q(err.text));
		return EX_CANTCREAT;
	}
	bodies_set_spool(sv->bodies, sv->spool);
	serve_set_keep(sv);
	sv->retention = retention_new(sv->ml, sv->bodies, sv->hub);
	if (serve_dns_start(sv, &err) == -1) {
		log_error("main", "start_failed", "sess=main step=dns err=%s", log_q(err.text));
		return EX_CONFIG;
	}
	if (serve_diag_start(sv, &err) == -1) {
		log_error("main", "start_failed", "sess=main step=diag err=%s", log_q(err.text));
		return EX_CONFIG;
	}
	sv->sched = sched_new(sv->base, serve_ready_cb, sv);
	if (serve_alert_start(sv, &err) == -1) {
		log_error("main", "start_failed", "sess=main step=alerts err=%s", log_q(err.text));
		return EX_CONFIG;
	}
	if (serve_relay_start(sv, &err) == -1) {
		log_error("main", "start_failed", "sess=main step=relay err=%s", log_q(err.text));
		return EX_CONFIG;
	}
	if (spool_recover(sv->spool, serve_recovered_cb, sv, &st, &err) == -1) {
		log_error("main", "start_failed", "sess=main step=recovery err=%s", log_q(err.text));
		return EX_IOERR;
	}
	log_info("main", "spool_recovered",
	    "sess=main queued=%zu tmp_removed=%zu corrupt=%zu orphan_bodies=%zu", st.queued,
	    st.tmp_removed, st.corrupt, st.orphan_bodies);
	if (st.corrupt)
		log_warn("main", "spool_corrupt", "sess=main corrupt=%zu dir=%s fix=%s", st.corrupt,
		    log_q(sv->conf->spool),
		    log_q("inspect corrupt/ in the spool; those messages were not delivered"));

	faults = getenv("HIKYAKU_FSOPS_FAIL");
#ifdef HK_CRASH_POINTS
	if (faults != NULL && fsops_fail_parse(faults) == -1) {
		log_error("main", "start_failed", "sess=main step=faults spec=%s", log_q(faults));
		return EX_USAGE;
	}
#else
	if (faults != NULL)
		log_warn("main", "faults_ignored", "sess=main reason=%s",
		    log_q("built without crash points"));
#endif

	sv->auth_pool = jobs_pool_new(sv->hub, "auth", 2);
	memset(&sp, 0, sizeof(sp));
	sp.base = sv->base;
	sp.conf = sv->conf;
	sp.tls_ctx = sv->tls_ctx;
	sp.listen_fds = sv->listen_fds;
	sp.spool = sv->spool;
	sp.ids = &sv->ids;
	sp.queued_cb = serve_queued_cb;
	sp.cb_arg = sv;
	sp.local_fd = sv->sendmail_fd;
	sp.auth_pool = sv->auth_pool;
	sp.on_auth_failure = serve_auth_failure_cb;
	sp.on_auth_failure_arg = sv;
	sv->smtpd = smtpd_new(&sp, &err);
	if (sv->smtpd == NULL) {
		log_error("main", "start_failed", "sess=main step=smtpd err=%s", log_q(err.text));
		return EX_SOFTWARE;
	}
	if (serve_notify_start(sv, &err) == -1) {
		log_error("main", "start_failed", "sess=main step=alerts err=%s", log_q(err.text));
		return EX_CONFIG;
	}
	if (serve_api_start(sv, &err) == -1) {
		log_error("main", "start_failed", "sess=main step=api err=%s", log_q(err.text));
		return EX_SOFTWARE;
	}
	memset(&mp, 0, sizeof(mp));
	mp.base = sv->base;
	mp.spool = sv->spool;
	mp.ids = &sv->ids;
	mp.hostname = sv->conf->hostname;
	mp.max_size = sv->conf->limits.max_message_size;
	mp.max_rcpts = sv->conf->limits.max_recipients;
	mp.queued_cb = serve_queued_cb; /* env->source says "sendmail" */
	mp.cb_arg = sv;
	sv->maildrop = maildrop_new(&mp, &err);
	if (sv->maildrop == NULL) {
		log_error("main", "start_failed", "sess=main step=maildrop err=%s", log_q(err.text));
		return EX_SOFTWARE;
	}

	sv->jobs_ev = event_new(sv->base, jobs_fd(sv->hub), EV_READ | EV_PERSIST, serve_jobs_cb, sv);
	event_add(sv->jobs_ev, NULL);
	{
		struct timeval hour = { 3600, 0 };

		/* Every hour, and once as soon as the loop runs. */
		sv->retention_ev = event_new(sv->base, -1, EV_PERSIST, serve_retention_cb, sv);
		event_add(sv->retention_ev, &hour);
		event_active(sv->retention_ev, EV_TIMEOUT, 0);
	}
	sv->hup_ev = evsignal_new(sv->base, SIGHUP, serve_hup_cb, sv);
	sv->term_ev = evsignal_new(sv->base, SIGTERM, serve_term_cb, sv);
	sv->int_ev = evsignal_new(sv->base, SIGINT, serve_term_cb, sv);
	event_add(sv->hup_ev, NULL);
	event_add(sv->term_ev, NULL);
	event_add(sv->int_ev, NULL);
	wd = sdnotify_watchdog_ms();
	if (wd) {
		struct timeval tv = { (time_t)(wd / 2000), (suseconds_t)((wd / 2) % 1000) * 1000 };

		sv->watchdog_ev = event_new(sv->base, -1, EV_PERSIST, serve_watchdog_cb, sv);
		event_add(sv->watchdog_ev, &tv);
	}
	return EX_OK;
}

static void
serve_teardown(struct serve *sv)
{
	size_t i;

	/* Tests still running answer 503 while the API can still reply. */
	cli_probes_free(sv->probes);
	/* First: its queries finish here, while the email log and the hub still exist. */
	if (sv->api != NULL) {
		api_free(sv->api);
		if (sv->conf->api_control_socket != NULL)
			unlink(sv->conf->api_control_socket);
	}
	api_pre_fini(&sv->api_pre);
	/* After the API (tests waiting get their answer), before the spool (email alerts). */
	notify_free(sv->notify);
	sv->notify = NULL; /* alerts raised while the engines stop are only logged */
	/* Before the spool and the log: it waits for its commits, whose callback uses both. */
	maildrop_free(sv->maildrop);
	smtpd_free(sv->smtpd);
	retention_free(sv->retention);
	/* No more keeping (this waits for calls in progress); their notes still find the log. */
	if (sv->spool != NULL) {
		spool_set_keep(sv->spool, NULL, NULL);
		jobs_run_completions(sv->hub);
	}
	bodies_free(sv->bodies);
	relay_free(sv->relay);
	/* After the engines that report to it. */
	alert_free(sv->alert);
	sv->alert = NULL;
	sched_free(sv->sched);
	/* After the API, whose DNS checks in flight it drops. */
	diag_free(sv->diag);
	dns_free(sv->dns);
	jobs_pool_free(sv->auth_pool);
	maillog_close(sv->ml);
	spool_free(sv->spool);
	if (sv->jobs_ev)
		event_free(sv->jobs_ev);
	if (sv->hup_ev)
		event_free(sv->hup_ev);
	if (sv->term_ev)
		event_free(sv->term_ev);
	if (sv->int_ev)
		event_free(sv->int_ev);
	if (sv->watchdog_ev)
		event_free(sv->watchdog_ev);
	if (sv->retention_ev)
		event_free(sv->retention_ev);
	if (sv->grace_ev)
		event_free(sv->grace_ev);
	jobs_free(sv->hub);
	if (sv->listen_fds) {
		for (i = 0; i < sv->conf->n_listeners; i++)
			close(sv->listen_fds[i]);
		free(sv->listen_fds);
	}
	if (sv->sendmail_fd != -1) {
		close(sv->sendmail_fd);
		unlink(sv->sendmail_path);
	}
	free(sv->sendmail_path);
	if (sv->tls_ctx)
		SSL_CTX_free(sv->tls_ctx);
	if (sv->base)
		event_base_free(sv->base);
	conf_unref(sv->conf);
}

int
cli_serve(const struct cli_opts *o, int argc, char **argv)
{
	struct serve sv;
	struct conf_diag diag;
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--check") == 0)
			return cli_check(o);
		fprintf(stderr, "hikyaku serve: unknown option %s\nusage: hikyaku serve [--check] "
		    "[-c FILE]\n", argv[i]);
		return EX_USAGE;
	}
	memset(&sv, 0, sizeof(sv));
	sv.api_pre.tcp_fd = sv.api_pre.control_fd = -1;
	sv.sendmail_fd = -1;
	sv.started_ms = clock_now_ms();
	conf_diag_init(&diag);
	if (conf_load(o->config, &sv.conf, &diag) == -1) {
		serve_print_diag(&diag);
		fprintf(stderr, "hikyaku: not started: %u configuration problem%s in %s\n",
		    diag.count, diag.count == 1 ? "" : "s", o->config);
		conf_diag_fini(&diag);
		return EX_CONFIG;
	}
	conf_diag_fini(&diag);
	signal(SIGPIPE, SIG_IGN);

	rc = serve_start(&sv);
	if (rc == EX_OK) {
		log_info("main", "ready", "sess=main node=%s listeners=%zu recovered=%llu pid=%d",
		    log_q(sv.conf->node), sv.conf->n_listeners, (unsigned long long)sv.recovered,
		    (int)getpid());
		sdnotifyf("READY=1\nSTATUS=serving; %llu messages recovered",
		    (unsigned long long)sv.recovered);
		event_base_dispatch(sv.base);
		log_info("main", "stopped", "sess=main queued=%llu", (unsigned long long)sv.queued);
	}
	serve_teardown(&sv);
	return rc;
}
