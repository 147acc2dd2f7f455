/*
 * relay.c - the delivery engine: passes over due messages (see relay.h).
 *
 * Objects and ownership (all on the loop):
 * - struct relay_up: runtime of one configured upstream (breaker, quotas, TLS context, password,
 *   idle connections). Found by name, so a reload keeps its state; reference-counted by the
 *   messages that use it, so a removed upstream lives until its last pass ends.
 * - struct relay_msg: one pass over one message: envelope, body, per-recipient work, groups.
 * - struct relay_group: the message's recipients that share a route (and a domain for MX).
 * - struct relay_tx: one SMTP transaction of a group on one connection.
 * - struct relay_conn: one smtpc session; idle ones wait on their upstream for reuse.
 * A pass ends (relay_msg_end) when every group is done; the message is freed only after its
 * envelope update or finish has been committed by the spool.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"
#include "pflog.h"
#include "smtpc.h"
#include "trouble.h"
#include "relay_dsn.h"
#include "../proto/explain.h"
#include "../proto/header.h"
#include "../sched/choose.h"
#include "../sched/retry.h"
#include "../sched/upstream.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define RELAY_MX_RCPTS 100          /* recipients per transaction to an MX host */
#define RELAY_ADDR_TTL_MS 60000     /* upstream host addresses are looked up again after this */
#define RELAY_PASSWORD_MAX 4096
#define RELAY_EVWAIT_TICK_MS 5000   /* event waiters: a few are let go at least this often */
#define RELAY_EVWAIT_TICK_N 64
#define RELAY_EVWAIT_PER_TX 2       /* waiters let go when a transaction frees a connection */

struct relay_conn;

struct relay_up {
	struct relay *r;
	char *name;
	struct conf_upstream cu;     /* copy of the scalar fields; strings below are owned */
	char *host, *helo, *username;
	char *password;              /* NULL when no AUTH */
	SSL_CTX *ssl;
	struct upstream_state *st;
	struct relay_conn *idle;     /* idle connections, newest first */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint64_t addr_expires_ms;
	bool retired;                /* removed by a reload */
	unsigned gen;                /* bumped by each (re)configuration */
	unsigned users;              /* passes holding it */
};

enum relay_rw {
	RW_SKIP = 0, /* already final before this pass */
	RW_PENDING,  /* to try in this pass */
	RW_INFLIGHT, /* in a transaction */
	RW_SENT,
	RW_BOUNCED,
	RW_DEFERRED,
	RW_WAIT,     /* quota, breaker or rate: not an attempt */
	RW_EXPIRED,
};

struct relay_rcpt {
	enum relay_rw rw;
	uint64_t wait_until_ms;
	bool wait_on_event;      /* the wait ends when a connection is freed or a probe ends */
	bool maybe_delivered;
	bool final_now;          /* became final in this pass (DSN and events) */
	char dsn[16];            /* enhanced status "5.1.1" */
	char reply[512];         /* last reply or reason */
	int code;                /* last reply code, 0 for a local failure */
	char remote[DNS_NAME_MAX + 72];/* "host [addr]" of the last attempt */
	enum trouble_verdict last_verdict;
	const char *upstream;    /* of the last attempt ("mx"), borrowed from the pass; or NULL */
	const char *route;       /* route name of the last attempt, borrowed from m->conf */
};

struct relay_group {
	struct relay_msg *m;
	size_t route;            /* index into m->conf->routes */
	bool is_mx;
	char *domain;            /* mx: the recipients' domain */
	size_t *idx;             /* recipient indexes of this group */
	size_t n_idx;
	bool *excluded;          /* per m->conf upstream: gave NEXT/SPILL in this pass */
	size_t tx_inflight;
	bool waiting_dns;
	bool done;
	/* mx */
	struct dns_mx_result *mxr;
	size_t mx_next;          /* next host to try */
	struct event *retry_ev;  /* delayed SEND (rate slot) */
};

struct relay_msg {
	struct relay *r;
	struct conf *conf;       /* snapshot for this pass */
	struct relay_up **ups;   /* per m->conf upstream (referenced) */
	uint64_t id;
	char qid[ID_HEX_LEN + 1];
	struct spool_env env;
	struct buf body;
	uint64_t start_ms;
	struct relay_rcpt *rc;
	struct relay_group *groups;
	size_t n_groups, groups_open;
	bool needs_smtputf8, eightbit;
	bool ending;
	unsigned holds;          /* frames on the stack that still use it (relay_msg_hold) */
	bool free_pending;       /* freed while held: done by the last relay_msg_unhold */
};

struct relay_tx {
	struct relay_group *g;
	struct relay_up *up;     /* NULL for MX */
	size_t up_index;         /* index into m->conf->upstreams */
	size_t *idx;             /* recipients (indexes into env.rcpts) */
	size_t n;
	bool probe;
	uint64_t begin_ms, connected_ms;
	char host[DNS_NAME_MAX];
	char addr_text[64];
	unsigned port;
	struct relay_conn *conn;
	const char **rcpts, **notify, **orcpt;
	char **notify_buf;
	struct dns_tlsa_result *tlsa; /* MX with DANE: the host's validated TLSA records */
	bool tls_required;            /* MX: TLSA records exist but none is usable (RFC 7672 2.2) */
};

struct relay_conn {
	struct relay *r;
	struct relay_up *up;     /* NULL for MX */
	struct smtpc *c;
	struct relay_tx *tx;     /* current transaction */
	struct relay_conn *next; /* idle list */
	struct event *idle_ev;
	unsigned gen;            /* up->gen when opened: older ones are never reused */
	bool ready;
	char tls[128];
};

struct relay {
	struct event_base *base;
	uint64_t *active_ids;    /* messages in a pass (relay_is_active) */
	size_t n_active_ids, cap_active_ids;
	struct conf *conf;
	struct spool *spool;
	struct dns *dns;
	struct maillog *ml;
	struct sched *sched;
	struct id_gen *ids;
	struct relay_up **ups;   /* per conf->upstreams */
	size_t n_ups;
	struct relay_up **retired;
	size_t n_retired;
	struct pflog *pflog;
	struct retry_policy retry;
	uint64_t rng;
	size_t active;           /* passes running (incl. waiting for the spool) */
	size_t n_conns;
	unsigned long next_sess;
	bool stopping;
	SSL_CTX *dane_ctx;       /* MX sessions authenticated by DANE; made on first use */
	struct relay_stats stats;
	/*
	 * Messages whose wait ends on an event (a busy connection freed, a half-open probe over),
	 * not at a time: a FIFO of IDs instead of polling the whole queue every second. A probe's
	 * end lets every waiter go; a freed connection, RELAY_EVWAIT_PER_TX of them; a timer a few
	 * every RELAY_EVWAIT_TICK_MS, so nothing waits forever.
	 */
	uint64_t *evwait;
	size_t evwait_head, evwait_n, evwait_cap;
	struct event *evwait_ev;
	void (*stopped_cb)(void *arg);
	void *stopped_arg;
	relay_event_fn on_event; /* optional (relay_params) */
	void *on_event_arg;
};

static void relay_group_run(struct relay_group *g);
static void relay_group_check_done(struct relay_group *g);
static void relay_msg_free(struct relay_msg *m);
static void relay_active_forget(struct relay *r, uint64_t id);

/*
 * A pass can end, and its message be freed, deep inside a call that then returns to code still
 * using the message or one of its groups (a wait ends it without any asynchronous step). Such
 * callers hold it; relay_msg_free while held only marks it, and the last unhold frees it.
 */
static void
relay_msg_hold(struct relay_msg *m)
{
	m->holds++;
}

static void
relay_msg_unhold(struct relay_msg *m)
{
	HK_ASSERT(m->holds > 0);
	if (--m->holds == 0 && m->free_pending)
		relay_msg_free(m);
}
static void relay_msg_end(struct relay_msg *m);

/* ---- upstreams ---- */

static char *
relay_read_password(const char *path, struct hk_err *err)
{
	struct buf b = BUF_INIT;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd == -1) {
		hk_err_sys(err, errno, "read password_file %s", path);
		return NULL;
	}
	buf_reserve(&b, RELAY_PASSWORD_MAX);
	n = read(fd, b.ptr, RELAY_PASSWORD_MAX);
	close(fd);
	if (n < 0) {
		hk_err_sys(err, errno, "read password_file %s", path);
		buf_fini(&b);
		return NULL;
	}
	b.len = (size_t)n;
	/* One line: a trailing newline is not part of the password. */
	while (b.len > 0 && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r'))
		b.len--;
	b.ptr[b.len] = '\0';
	return buf_steal(&b);
}

/* Close u's idle connections. */
static void
relay_up_drop_idle(struct relay_up *u)
{
	struct relay_conn *c;

	while ((c = u->idle) != NULL) {
		u->idle = c->next;
		smtpc_free(c->c);
		event_free(c->idle_ev);
		u->r->n_conns--;
		free(c);
	}
}

static void
relay_up_free(struct relay_up *u)
{
	if (u == NULL)
		return;
	relay_up_drop_idle(u);
	upstream_state_free(u->st);
	if (u->ssl)
		SSL_CTX_free(u->ssl);
	if (u->password) {
		explicit_bzero(u->password, strlen(u->password));
		free(u->password);
	}
	free(u->name);
	free(u->host);
	free(u->helo);
	free(u->username);
	free(u);
}

/* Set u's configuration from cu (new or reloaded); state is kept. */
static int
relay_up_configure(struct relay_up *u, const struct conf *c, const struct conf_upstream *cu,
    struct hk_err *err)
{
	char errbuf[256];
	char *pw = NULL;
	SSL_CTX *ssl;

	if (cu->password_file != NULL && (pw = relay_read_password(cu->password_file, err)) == NULL)
		return -1;
	ssl = smtpc_ssl_ctx_new(cu->ca_file, errbuf, sizeof(errbuf));
	if (ssl == NULL) {
		free(pw);
		return hk_err_set(err, HK_E_CONFIG, "upstream %s: TLS context: %s", cu->name, errbuf);
	}
	if (u->ssl)
		SSL_CTX_free(u->ssl);
	u->ssl = ssl;
	if (u->password) {
		explicit_bzero(u->password, strlen(u->password));
		free(u->password);
	}
	u->password = pw;
	free(u->host);
	free(u->helo);
	free(u->username);
	u->cu = *cu;
	u->host = xstrdup(cu->host);
	u->helo = xstrdup(cu->helo ? cu->helo : c->hostname);
	u->username = cu->username ? xstrdup(cu->username) : NULL;
	u->addr_expires_ms = 0;
	if (u->st == NULL)
		u->st = upstream_state_new(&cu->limits);
	else
		upstream_state_set_limits(u->st, &cu->limits);
	upstream_state_set_breaker_min(u->st, c->delivery_breaker_open_ms);
	/*
	 * Connections opened under the old settings (host, port, TLS, credentials) must not carry
	 * new mail: idle ones close now, busy ones close when their transaction ends.
	 */
	u->gen++;
	relay_up_drop_idle(u);
	return 0;
}

static struct relay_up *
relay_up_find(struct relay_up **ups, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (ups[i] != NULL && strcmp(ups[i]->name, name) == 0)
			return ups[i];
	}
	return NULL;
}

static void
relay_up_release(struct relay_up *u)
{
	struct relay *r = u->r;
	size_t i;

	HK_ASSERT(u->users > 0);
	if (--u->users > 0 || !u->retired)
		return;
	for (i = 0; i < r->n_retired; i++) {
		if (r->retired[i] == u) {
			r->retired[i] = r->retired[--r->n_retired];
			break;
		}
	}
	relay_up_free(u);
}

/* Build the upstream runtime for c, keeping states of upstreams with the same name. */
static int
relay_build_ups(struct relay *r, const struct conf *c, struct hk_err *err)
{
	struct relay_up **ups = xcalloc(c->n_upstreams ? c->n_upstreams : 1, sizeof(*ups));
	bool *taken = xcalloc(r->n_ups ? r->n_ups : 1, sizeof(*taken));
	size_t i, j;

	for (i = 0; i < c->n_upstreams; i++) {
		struct relay_up *u = NULL;

		for (j = 0; j < r->n_ups; j++) {
			if (!taken[j] && strcmp(r->ups[j]->name, c->upstreams[i].name) == 0) {
				u = r->ups[j];
				taken[j] = true;
				break;
			}
		}
		if (u == NULL) {
			u = xcalloc(1, sizeof(*u));
			u->r = r;
			u->name = xstrdup(c->upstreams[i].name);
		}
		ups[i] = u;
		if (relay_up_configure(u, c, &c->upstreams[i], err) == -1)
			goto fail;
	}
	for (j = 0; j < r->n_ups; j++) {
		if (taken[j])
			continue;
		if (r->ups[j]->users == 0) {
			relay_up_free(r->ups[j]);
		} else {
			r->ups[j]->retired = true;
			r->retired = xreallocarray(r->retired, r->n_retired + 1, sizeof(*r->retired));
			r->retired[r->n_retired++] = r->ups[j];
		}
	}
	free(r->ups);
	free(taken);
	r->ups = ups;
	r->n_ups = c->n_upstreams;
	return 0;
fail:
	/* New objects made here are freed; reused ones keep their (partly updated) config. */
	for (i = 0; i < c->n_upstreams; i++) {
		bool reused = false;

		for (j = 0; ups[i] && j < r->n_ups; j++)
			reused |= r->ups[j] == ups[i];
		if (ups[i] && !reused)
			relay_up_free(ups[i]);
	}
	free(ups);
	free(taken);
	return -1;
}

/* ---- recipients and routes ---- */

static const char *
relay_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

static bool
relay_in_list(const char *s, char *const *list, size_t n)
{
	size_t i;

	if (n == 0)
		return true;
	if (s == NULL)
		return false;
	for (i = 0; i < n; i++) {
		if (strcasecmp(s, list[i]) == 0)
			return true;
	}
	return false;
}

/*
 * The route the submitter chose (env->route) while it names a configured one, else the first
 * matching (sender, recipient, listener, user); SIZE_MAX when none.
 */
static size_t
relay_route_for(const struct conf *c, const struct spool_env *env, const char *rcpt)
{
	size_t i;

	for (i = 0; env->route != NULL && i < c->n_routes; i++) {
		if (strcmp(c->routes[i].name, env->route) == 0)
			return i;
	}
	for (i = 0; i < c->n_routes; i++) {
		const struct conf_route *rt = &c->routes[i];

		if (relay_in_list(relay_domain(env->from), rt->sender_domains,
		    rt->n_sender_domains) &&
		    relay_in_list(relay_domain(rcpt), rt->recipient_domains,
		    rt->n_recipient_domains) &&
		    relay_in_list(env->listener, rt->listeners, rt->n_listeners) &&
		    relay_in_list(env->auth_user, rt->users, rt->n_users))
			return i;
	}
	return SIZE_MAX;
}

static bool
relay_is_8bit(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return true;
	}
	return false;
}

/* Record a recipient's verdict for this pass. */
static void
relay_rcpt_set(struct relay_msg *m, size_t i, enum relay_rw rw, const char *dsn,
    const char *reply)
{
	struct relay_rcpt *rc = &m->rc[i];

	rc->rw = rw;
	if (dsn)
		snprintf(rc->dsn, sizeof(rc->dsn), "%s", dsn);
	if (reply)
		snprintf(rc->reply, sizeof(rc->reply), "%s", reply);
}

/* ---- groups ---- */

static struct choose_route
relay_choose_route(struct relay_group *g, const struct upstream_state **states)
{
	struct relay_msg *m = g->m;
	const struct conf_route *rt = &m->conf->routes[g->route];
	struct choose_route cr;
	size_t i;

	for (i = 0; i < m->conf->n_upstreams; i++)
		states[i] = m->ups[i]->st;
	cr.order = rt->upstreams;
	cr.n_order = rt->n_upstreams;
	cr.states = states;
	cr.n_states = m->conf->n_upstreams;
	return cr;
}

static size_t
relay_group_pending(const struct relay_group *g, size_t *out)
{
	size_t i, n = 0;

	for (i = 0; i < g->n_idx; i++) {
		if (g->m->rc[g->idx[i]].rw == RW_PENDING)
			out[n++] = g->idx[i];
	}
	return n;
}

static struct choose_msg
relay_choose_msg(const struct relay_msg *m, uint64_t n_rcpt)
{
	struct choose_msg cm;

	cm.size = m->body.len;
	cm.needs_smtputf8 = m->needs_smtputf8;
	cm.needs_8bitmime = m->eightbit;
	cm.n_rcpt = n_rcpt ? n_rcpt : 1;
	return cm;
}

/* ---- transactions ---- */

static void
relay_tx_free(struct relay_tx *tx)
{
	size_t i;

	for (i = 0; i < tx->n; i++)
		free(tx->notify_buf[i]);
	free(tx->notify_buf);
	free(tx->rcpts);
	free(tx->notify);
	free(tx->orcpt);
	free(tx->idx);
	free(tx->tlsa);
	free(tx);
}

static void
relay_notify_text(unsigned notify, char **out)
{
	struct buf b = BUF_INIT;

	*out = NULL;
	if (notify == 0)
		return;
	if (notify & SMTP_NOTIFY_NEVER) {
		*out = xstrdup("NEVER");
		return;
	}
	if (notify & SMTP_NOTIFY_SUCCESS)
		buf_append_str(&b, "SUCCESS,");
	if (notify & SMTP_NOTIFY_FAILURE)
		buf_append_str(&b, "FAILURE,");
	if (notify & SMTP_NOTIFY_DELAY)
		buf_append_str(&b, "DELAY,");
	if (b.len)
		buf_truncate(&b, b.len - 1);
	*out = buf_steal(&b);
}

/* Turn a smtpc failure into a reply for trouble_classify(). */
static void
relay_failure_reply(const struct smtpc_failure *f, struct smtp_reply *rep)
{
	smtp_reply_init(rep);
	rep->code = f->code;
	rep->enh_class = f->enh_class;
	rep->enh_subject = f->enh_subject;
	rep->enh_detail = f->enh_detail;
	rep->text_len = strlen(f->text);
	if (rep->text_len > SMTP_REPLY_MAX_TEXT)
		rep->text_len = SMTP_REPLY_MAX_TEXT;
	memcpy(rep->text, f->text, rep->text_len);
	rep->text[rep->text_len] = '\0';
	rep->nlines = 1;
}

/*
 * Refusals the client makes itself, before sending anything, are given the reply an upstream
 * would have given, so trouble.c classifies them like one: too big for the SIZE it advertised
 * (552 5.3.4: another upstream with a larger max_size, else bounce); SMTPUTF8 or 8BITMIME not
 * offered (4xx: the next upstream, deferred on the last; choose.c skips that upstream from then
 * on); no usable AUTH mechanism (535: the credentials cannot work there, breaker opens); a
 * malformed envelope of ours (554 5.6.0: bounce, no upstream will take it).
 */
static bool
relay_local_reply(const struct smtpc_failure *f, struct smtp_reply *rep)
{
	static const struct {
		enum smtpc_local local;
		int code, cls, subj, det;
		const char *text;
	} map[] = {
		{ SMTPC_LOCAL_TOO_BIG, 552, 5, 3, 4, "message larger than the size the server takes" },
		{ SMTPC_LOCAL_NEEDS_SMTPUTF8, 451, 4, 6, 7, "server does not offer SMTPUTF8" },
		{ SMTPC_LOCAL_NEEDS_8BITMIME, 451, 4, 6, 3, "server does not offer 8BITMIME" },
		{ SMTPC_LOCAL_AUTH_UNSUPPORTED, 535, 5, 7, 8,
		  "no AUTH mechanism we can use (PLAIN or LOGIN) is offered" },
		{ SMTPC_LOCAL_BAD_ENVELOPE, 554, 5, 6, 0, "malformed envelope" },
	};
	size_t i;

	for (i = 0; i < HK_ARRAY_LEN(map); i++) {
		if (map[i].local != f->local)
			continue;
		smtp_reply_init(rep);
		rep->code = map[i].code;
		rep->enh_class = map[i].cls;
		rep->enh_subject = map[i].subj;
		rep->enh_detail = map[i].det;
		rep->text_len = (size_t)snprintf(rep->text, sizeof(rep->text), "%s: %s", map[i].text,
		    f->text);
		if (rep->text_len >= sizeof(rep->text))
			rep->text_len = sizeof(rep->text) - 1;
		rep->nlines = 1;
		return true;
	}
	return false;
}

static enum trouble_stage
relay_stage(enum smtpc_stage s)
{
	static const enum trouble_stage map[SMTPC_STAGE_COUNT] = {
		[SMTPC_STAGE_CONNECT] = TROUBLE_STAGE_CONNECT,
		[SMTPC_STAGE_GREETING] = TROUBLE_STAGE_GREETING,
		[SMTPC_STAGE_EHLO] = TROUBLE_STAGE_EHLO,
		[SMTPC_STAGE_STARTTLS] = TROUBLE_STAGE_STARTTLS,
		[SMTPC_STAGE_TLS] = TROUBLE_STAGE_TLS,
		[SMTPC_STAGE_AUTH] = TROUBLE_STAGE_AUTH,
		[SMTPC_STAGE_MAIL] = TROUBLE_STAGE_MAIL,
		[SMTPC_STAGE_RCPT] = TROUBLE_STAGE_RCPT,
		[SMTPC_STAGE_DATA] = TROUBLE_STAGE_DATA,
		[SMTPC_STAGE_DOT] = TROUBLE_STAGE_DOT,
		[SMTPC_STAGE_RSET] = TROUBLE_STAGE_MAIL,
	};

	return (unsigned)s < SMTPC_STAGE_COUNT ? map[s] : TROUBLE_STAGE_CONNECT;
}

static enum trouble_local
relay_local(enum smtpc_local l)
{
	switch (l) {
	case SMTPC_LOCAL_NONE: return TROUBLE_LOCAL_NONE;
	case SMTPC_LOCAL_REFUSED: return TROUBLE_LOCAL_REFUSED;
	case SMTPC_LOCAL_TIMEOUT: return TROUBLE_LOCAL_TIMEOUT;
	case SMTPC_LOCAL_DISCONNECT: return TROUBLE_LOCAL_DISCONNECT;
	case SMTPC_LOCAL_TLS_FAILED: return TROUBLE_LOCAL_TLS_FAILED;
	case SMTPC_LOCAL_CERT_INVALID: return TROUBLE_LOCAL_CERT_INVALID;
	case SMTPC_LOCAL_STARTTLS_MISSING: return TROUBLE_LOCAL_STARTTLS_MISSING_REQUIRED;
	case SMTPC_LOCAL_BAD_REPLY: return TROUBLE_LOCAL_BAD_REPLY;
	default: return TROUBLE_LOCAL_BAD_REPLY;
	}
}

/* Enhanced status for a recipient outcome: the reply's, else one per verdict. */
static void
relay_dsn_code(const struct smtp_reply *rep, enum trouble_verdict v, char out[16])
{
	if (rep && rep->enh_class)
		snprintf(out, 16, "%d.%d.%d", rep->enh_class, rep->enh_subject, rep->enh_detail);
	else if (v == TROUBLE_SENT)
		snprintf(out, 16, "2.0.0");
	else if (v == TROUBLE_BOUNCE)
		snprintf(out, 16, "5.0.0");
	else
		snprintf(out, 16, "4.0.0");
}

static const char *
relay_verdict_result(enum trouble_verdict v)
{
	static const char *const names[] = {
		[TROUBLE_SENT] = "sent", [TROUBLE_NEXT] = "next", [TROUBLE_SPILL] = "spill",
		[TROUBLE_DEFER] = "deferred", [TROUBLE_BOUNCE] = "bounced",
	};

	return names[v];
}

static bool
relay_has_larger_upstream(const struct relay_group *g, size_t except)
{
	const struct relay_msg *m = g->m;
	const struct conf_route *rt = &m->conf->routes[g->route];
	size_t i;

	for (i = 0; i < rt->n_upstreams; i++) {
		size_t u = rt->upstreams[i];
		uint64_t max = upstream_max_size(m->ups[u]->st);

		if (u != except && !g->excluded[u] && (max == 0 || max > m->body.len))
			return true;
	}
	return false;
}

/* Tell the alert engine (when wired) about recipient i of m. */
static void
relay_emit(struct relay_msg *m, enum relay_event_type type, size_t i, const char *upstream,
    int code, const char *enhanced, const char *text, uint64_t now)
{
	struct relay *r = m->r;
	struct relay_event ev;

	if (r->on_event == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	ev.qid = m->qid;
	ev.upstream = upstream;
	ev.from_domain = relay_domain(m->env.from);
	ev.rcpt_domain = i < m->env.n_rcpts ? relay_domain(m->env.rcpts[i].addr) : NULL;
	ev.route = i < m->env.n_rcpts ? m->rc[i].route : NULL;
	ev.code = code;
	ev.enhanced = enhanced;
	ev.text = text;
	ev.age_ms = now > m->env.received_ms ? now - m->env.received_ms : 0;
	r->on_event(r->on_event_arg, &ev);
}

/* Breaker transitions of an upstream become UPSTREAM_DOWN / UPSTREAM_UP events. */
static void
relay_emit_breaker(struct relay_msg *m, struct relay_up *u, bool was_down, int code,
    const char *text, uint64_t now)
{
	bool down = upstream_breaker_at(u->st, now) != UPSTREAM_BREAKER_CLOSED;

	if (down != was_down)
		relay_emit(m, down ? RELAY_EVENT_UPSTREAM_DOWN : RELAY_EVENT_UPSTREAM_UP, SIZE_MAX,
		    u->name, code, NULL, text, now);
}

/*
 * One recipient's outcome of an attempt: classify, log, record. Returns the verdict. reply may be
 * NULL with a local failure.
 */
static enum trouble_verdict
relay_outcome(struct relay_tx *tx, size_t i, enum trouble_stage stage, enum trouble_local local,
    const struct smtp_reply *rep, const char *text, bool is_last, bool maybe_delivered,
    struct trouble_result *tr)
{
	struct relay_group *g = tx->g;
	struct relay_msg *m = g->m;
	struct relay *r = m->r;
	struct relay_rcpt *rc = &m->rc[i];
	struct trouble_input in;
	struct maillog_attempt a;
	uint64_t now = clock_now_ms();
	char dsn[16];

	memset(&in, 0, sizeof(in));
	in.stage = stage;
	in.local = rep ? TROUBLE_LOCAL_NONE : local;
	in.reply = rep;
	in.is_last_eligible_upstream = is_last;
	in.mx_mode = g->is_mx;
	in.has_larger_max_size_upstream = !g->is_mx && relay_has_larger_upstream(g, tx->up_index);
	in.explain_extra = m->conf->explain_rows;
	in.n_explain_extra = m->conf->n_explain_rows;
	trouble_classify(&in, tr);
	if (maybe_delivered)
		tr->maybe_delivered = true;
	relay_dsn_code(rep, tr->verdict, dsn);
	snprintf(rc->remote, sizeof(rc->remote), "%s [%s]", tx->host, tx->addr_text);
	rc->last_verdict = tr->verdict;
	rc->code = rep ? rep->code : 0;
	rc->upstream = g->is_mx ? "mx" : tx->up->name;
	rc->route = m->conf->routes[g->route].name;
	rc->maybe_delivered |= tr->maybe_delivered;

	memset(&a, 0, sizeof(a));
	a.id = m->id;
	a.time_ms = now;
	a.rcpt = m->env.rcpts[i].addr;
	a.upstream = g->is_mx ? "mx" : tx->up->name;
	a.remote_host = tx->host;
	a.remote_addr = tx->addr_text;
	a.tls = tx->conn ? tx->conn->tls : "";
	a.code = rep ? rep->code : 0;
	a.enhanced = rep && rep->enh_class ? dsn : "";
	a.text = text;
	a.duration_ms = now - tx->begin_ms;
	a.result = relay_verdict_result(tr->verdict);
	a.maybe_delivered = tr->maybe_delivered;
	switch (tr->verdict) {
	case TROUBLE_SENT: r->stats.attempts_sent++; break;
	case TROUBLE_NEXT: r->stats.attempts_next++; break;
	case TROUBLE_SPILL: r->stats.attempts_spill++; break;
	case TROUBLE_DEFER: r->stats.attempts_deferred++; break;
	case TROUBLE_BOUNCE: r->stats.attempts_bounced++; break;
	}
	if (tr->maybe_delivered)
		r->stats.maybe_delivered++;
	if (r->ml)
		maillog_attempt(r->ml, &a);
	log_info("relay", "attempt", "qid=%s rcpt=%s upstream=%s host=%s addr=%s code=%d dsn=%s "
	    "result=%s why=%s reply=%s%s", m->qid, log_q(a.rcpt), log_q(a.upstream),
	    log_q(tx->host), tx->addr_text[0] ? tx->addr_text : "-", a.code, dsn, a.result,
	    tr->why ? tr->why : "-", log_q(text),
	    tr->maybe_delivered ? " note=\"may have been delivered\"" : "");

	switch (tr->verdict) {
	case TROUBLE_SENT:
		relay_rcpt_set(m, i, RW_SENT, dsn, text);
		break;
	case TROUBLE_BOUNCE:
		relay_rcpt_set(m, i, RW_BOUNCED, dsn, text);
		break;
	case TROUBLE_DEFER:
		relay_rcpt_set(m, i, RW_DEFERRED, dsn, text);
		break;
	case TROUBLE_NEXT:
	case TROUBLE_SPILL:
		relay_rcpt_set(m, i, RW_PENDING, dsn, text);
		if (!g->is_mx && !is_last)
			relay_emit(m, RELAY_EVENT_FAILOVER, i, tx->up->name, a.code, a.enhanced,
			    text, now);
		break;
	}
	if (tr->verdict == TROUBLE_SENT || tr->verdict == TROUBLE_BOUNCE ||
	    tr->verdict == TROUBLE_DEFER) {
		struct pflog_entry pe;
		char full[600];

		/* As Postfix shows it: the whole reply, code and enhanced code included. */
		if (rep && rep->enh_class)
			snprintf(full, sizeof(full), "%d %s %s", rep->code, dsn, text);
		else if (rep)
			snprintf(full, sizeof(full), "%d %s", rep->code, text);
		else
			snprintf(full, sizeof(full), "%s", text);

		memset(&pe, 0, sizeof(pe));
		pe.qid = m->qid;
		pe.to = m->env.rcpts[i].addr;
		pe.relay_host = tx->host[0] ? tx->host : "none";
		pe.relay_addr = tx->addr_text[0] ? tx->addr_text : NULL;
		pe.port = tx->port;
		pe.received_ms = m->env.received_ms;
		pe.attempt_start_ms = tx->begin_ms;
		pe.connected_ms = tx->connected_ms;
		pe.end_ms = now;
		pe.dsn = dsn;
		pe.status = tr->verdict == TROUBLE_SENT ? "sent" :
		    tr->verdict == TROUBLE_BOUNCE ? "bounced" : "deferred";
		pe.reply = full;
		pflog_write(r->pflog, &pe);
	}
	return tr->verdict;
}

static void relay_conn_release(struct relay_conn *c);

/* Let up to n event waiters go (to the scheduler, due now), oldest first. */
static void
relay_evwait_release(struct relay *r, size_t n)
{
	uint64_t now = clock_now_ms();

	while (n-- > 0 && r->evwait_n > 0) {
		uint64_t id = r->evwait[r->evwait_head];

		r->evwait_head = (r->evwait_head + 1) % r->evwait_cap;
		r->evwait_n--;
		if (!r->stopping)
			sched_add(r->sched, id, now);
	}
}

static void
relay_evwait_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	relay_evwait_release(arg, RELAY_EVWAIT_TICK_N);
}

static void
relay_evwait_add(struct relay *r, uint64_t id)
{
	if (r->evwait_n == r->evwait_cap) {
		size_t cap = r->evwait_cap ? r->evwait_cap * 2 : 64, i;
		uint64_t *v = xcalloc(cap, sizeof(*v));

		for (i = 0; i < r->evwait_n; i++)
			v[i] = r->evwait[(r->evwait_head + i) % r->evwait_cap];
		free(r->evwait);
		r->evwait = v;
		r->evwait_cap = cap;
		r->evwait_head = 0;
	}
	r->evwait[(r->evwait_head + r->evwait_n) % r->evwait_cap] = id;
	r->evwait_n++;
	if (r->evwait_ev == NULL) {
		struct timeval tv = { RELAY_EVWAIT_TICK_MS / 1000, 0 };

		r->evwait_ev = event_new(r->base, -1, EV_PERSIST, relay_evwait_tick, r);
		event_add(r->evwait_ev, &tv);
	}
}

/* The transaction is over: account, free, and let the group go on. */
static void
relay_tx_end(struct relay_tx *tx, uint64_t n_accepted)
{
	struct relay_group *g = tx->g;

	if (tx->up)
		upstream_send_end(tx->up->st, tx->begin_ms, tx->n, n_accepted, tx->probe);
	if (tx->conn) {
		tx->conn->tx = NULL;
		relay_conn_release(tx->conn);
	}
	/* The events event waiters wait for: a probe's outcome, a connection freed. */
	relay_evwait_release(g->m->r, tx->probe ? SIZE_MAX : RELAY_EVWAIT_PER_TX);
	g->tx_inflight--;
	relay_tx_free(tx);
	relay_group_run(g);
}

/* Session-level failure (before or during the transaction): every recipient of the tx. */
static void
relay_tx_failed(struct relay_tx *tx, const struct smtpc_failure *f)
{
	struct relay_group *g = tx->g;
	struct relay_msg *m = g->m;
	struct smtp_reply rep;
	struct trouble_result tr;
	bool is_last, counted = false, have_rep = false;
	uint64_t now = clock_now_ms();
	size_t k;

	if (f->code)
		relay_failure_reply(f, &rep);
	else
		have_rep = relay_local_reply(f, &rep);
	if (g->is_mx) {
		is_last = g->mxr == NULL || g->mx_next >= g->mxr->n;
	} else {
		const struct upstream_state *states[m->conf->n_upstreams + 1];
		struct choose_route cr = relay_choose_route(g, states);
		struct choose_msg cm = relay_choose_msg(m, tx->n);

		is_last = choose_is_last(&cr, &cm, g->excluded, tx->up_index, now);
	}
	for (k = 0; k < tx->n; k++) {
		enum trouble_verdict v = relay_outcome(tx, tx->idx[k], relay_stage(f->stage),
		    relay_local(f->local), f->code || have_rep ? &rep : NULL, f->text, is_last, false,
		    &tr);

		if (tx->up && !counted) {
			bool was_down = upstream_breaker_at(tx->up->st, now) !=
			    UPSTREAM_BREAKER_CLOSED;

			counted = true;
			if (tr.opens_breaker_now)
				upstream_auth_failed(tx->up->st, now, f->text);
			else if (tr.counts_toward_breaker)
				upstream_session_failed(tx->up->st, now, f->text);
			else
				upstream_note_error(tx->up->st, now, f->text);
			relay_emit_breaker(m, tx->up, was_down, f->code, f->text, now);
		}
		if (v == TROUBLE_NEXT || v == TROUBLE_SPILL) {
			if (!g->is_mx)
				g->excluded[tx->up_index] = true;
			if (v == TROUBLE_SPILL && tx->up)
				upstream_spill(tx->up->st, now, UPSTREAM_WINDOW_DAY, 0, f->text);
		}
	}
	relay_tx_end(tx, 0);
}

static void
relay_tx_done_cb(void *arg, bool ok, const struct smtpc_failure *final,
    const struct smtpc_rcpt_result *rcpts, bool maybe_delivered)
{
	struct relay_conn *c = arg;
	struct relay_tx *tx = c->tx;
	struct relay_group *g = tx->g;
	struct relay_msg *m = g->m;
	struct smtp_reply rep;
	struct trouble_result tr;
	uint64_t now = clock_now_ms(), accepted = 0;
	bool is_last, spilled = false;
	size_t k;

	if (g->is_mx) {
		is_last = g->mxr == NULL || g->mx_next >= g->mxr->n;
	} else {
		const struct upstream_state *states[m->conf->n_upstreams + 1];
		struct choose_route cr = relay_choose_route(g, states);
		struct choose_msg cm = relay_choose_msg(m, tx->n);

		is_last = choose_is_last(&cr, &cm, g->excluded, tx->up_index, now);
	}
	for (k = 0; k < tx->n; k++) {
		size_t i = tx->idx[k];
		enum trouble_verdict v;

		if (!rcpts[k].accepted && rcpts[k].fail.code != 0) {
			relay_failure_reply(&rcpts[k].fail, &rep);
			v = relay_outcome(tx, i, TROUBLE_STAGE_RCPT, TROUBLE_LOCAL_NONE, &rep,
			    rcpts[k].fail.text, is_last, false, &tr);
		} else if (ok && rcpts[k].accepted) {
			relay_failure_reply(final, &rep);
			v = relay_outcome(tx, i, TROUBLE_STAGE_DOT, TROUBLE_LOCAL_NONE, &rep,
			    final->text, is_last, false, &tr);
			accepted++;
		} else {
			bool have_rep = final->code != 0;

			if (have_rep)
				relay_failure_reply(final, &rep);
			else
				have_rep = relay_local_reply(final, &rep);
			v = relay_outcome(tx, i, relay_stage(final->stage), relay_local(final->local),
			    have_rep ? &rep : NULL, final->text, is_last, maybe_delivered, &tr);
		}
		if ((v == TROUBLE_NEXT || v == TROUBLE_SPILL) && !g->is_mx)
			g->excluded[tx->up_index] = true;
		if (v == TROUBLE_SPILL && tx->up && !spilled) {
			spilled = true;
			upstream_spill(tx->up->st, now, UPSTREAM_WINDOW_DAY, 0, final->text);
		}
	}
	relay_tx_end(tx, accepted);
}

static void
relay_conn_ready_cb(void *arg, const struct smtpc_caps *caps, const char *tls_desc)
{
	struct relay_conn *c = arg;
	struct relay_tx *tx = c->tx;
	struct smtpc_tx stx;
	struct relay_msg *m;

	c->ready = true;
	snprintf(c->tls, sizeof(c->tls), "%s", tls_desc ? tls_desc : "");
	if (c->up) {
		uint64_t now = clock_now_ms();
		bool was_down = upstream_breaker_at(c->up->st, now) != UPSTREAM_BREAKER_CLOSED;

		upstream_session_ok(c->up->st, now);
		if (tx != NULL)
			relay_emit_breaker(tx->g->m, c->up, was_down, 0, NULL, now);
		upstream_set_ehlo(c->up->st, caps->smtputf8, caps->eightbitmime, caps->max_size);
	}
	if (tx == NULL)
		return;
	tx->connected_ms = clock_now_ms();
	m = tx->g->m;
	memset(&stx, 0, sizeof(stx));
	stx.mail_from = m->env.from;
	stx.size = m->body.len;
	stx.eightbit = m->eightbit;
	stx.smtputf8 = m->needs_smtputf8;
	stx.ret = m->env.ret == SMTP_RET_FULL ? "FULL" : m->env.ret == SMTP_RET_HDRS ? "HDRS" : NULL;
	stx.envid = NULL;
	stx.n_rcpts = tx->n;
	stx.rcpts = tx->rcpts;
	stx.notify = tx->notify;
	stx.orcpt = tx->orcpt;
	stx.body = &m->body;
	smtpc_send(c->c, &stx, relay_tx_done_cb);
}

static void
relay_conn_free(struct relay_conn *c)
{
	struct relay_up *u = c->up;
	struct relay_conn **pp;

	if (u) {
		for (pp = &u->idle; *pp; pp = &(*pp)->next) {
			if (*pp == c) {
				*pp = c->next;
				break;
			}
		}
	}
	smtpc_free(c->c);
	if (c->idle_ev)
		event_free(c->idle_ev);
	c->r->n_conns--;
	free(c);
}

static void
relay_conn_fail_cb(void *arg, const struct smtpc_failure *f)
{
	struct relay_conn *c = arg;
	struct relay_tx *tx = c->tx;

	log_debug("relay", "session_failed", "sess=c%lu stage=%s why=%s", c->r->next_sess,
	    smtpc_stage_name(f->stage), log_q(f->text));
	if (tx == NULL) {
		/* An idle connection went away: just forget it. */
		relay_conn_free(c);
		return;
	}
	c->tx = NULL;
	tx->conn = NULL;
	relay_conn_free(c);
	relay_tx_failed(tx, f);
}

static void
relay_conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	relay_conn_free(arg);
}

/* After a transaction: keep the connection for reuse, or close it. */
static void
relay_conn_release(struct relay_conn *c)
{
	struct relay *r = c->r;
	uint64_t keep = r->conf->delivery_idle_timeout_ms;
	struct timeval tv;

	if (c->up == NULL || c->up->retired || c->gen != c->up->gen || keep == 0 || r->stopping ||
	    !c->ready || !smtpc_is_idle(c->c)) {
		relay_conn_free(c);
		return;
	}
	c->next = c->up->idle;
	c->up->idle = c;
	tv.tv_sec = (time_t)(keep / 1000);
	tv.tv_usec = (suseconds_t)(keep % 1000) * 1000;
	if (c->idle_ev == NULL)
		c->idle_ev = evtimer_new(r->base, relay_conn_idle_cb, c);
	evtimer_add(c->idle_ev, &tv);
}

static void
relay_addr_text(const struct sockaddr_storage *ss, char *out, size_t len, unsigned *port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)len);
		*port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, out, (socklen_t)len);
		*port = ntohs(s4->sin_port);
	}
}

static void
relay_set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

/* Open a connection for tx to addr (port set) and attach tx to it. */
static void
relay_tx_connect(struct relay_tx *tx, const struct sockaddr_storage *addr, socklen_t len)
{
	struct relay_msg *m = tx->g->m;
	struct relay *r = m->r;
	struct relay_conn *c = xcalloc(1, sizeof(*c));
	struct smtpc_params p;
	const struct conf *conf = r->conf;

	c->r = r;
	c->up = tx->up;
	c->gen = tx->up ? tx->up->gen : 0;
	c->tx = tx;
	tx->conn = c;
	r->n_conns++;
	relay_addr_text(addr, tx->addr_text, sizeof(tx->addr_text), &tx->port);
	memset(&p, 0, sizeof(p));
	p.base = r->base;
	p.addr = *addr;
	p.addr_len = len;
	p.host = tx->host;
	p.connect_timeout_ms = conf->delivery_connect_timeout_ms;
	p.command_timeout_ms = conf->delivery_command_timeout_ms;
	p.dot_timeout_ms = conf->delivery_dot_timeout_ms;
	p.sess_id = ++r->next_sess;
	if (tx->up) {
		static const enum smtpc_tls_mode modes[] = {
			[CONF_TLS_NONE] = SMTPC_TLS_NONE, [CONF_TLS_STARTTLS] = SMTPC_TLS_STARTTLS,
			[CONF_TLS_IMPLICIT] = SMTPC_TLS_IMPLICIT,
		};

		p.helo = tx->up->helo;
		p.tls = modes[tx->up->cu.tls];
		p.verify = tx->up->cu.verify;
		p.ssl_ctx = tx->up->ssl;
		p.username = tx->up->username;
		p.password = tx->up->password;
	} else {
		p.helo = m->conf->hostname;
		p.tls = SMTPC_TLS_OPPORTUNISTIC;
		p.verify = false;
		p.ssl_ctx = r->ups && r->n_ups ? r->ups[0]->ssl : NULL;
		if (tx->tls_required)
			p.tls = SMTPC_TLS_STARTTLS;
		if (tx->tlsa != NULL) {
			char err[256];

			if (r->dane_ctx == NULL) {
				r->dane_ctx = smtpc_ssl_ctx_new(NULL, err, sizeof(err));
				if (r->dane_ctx != NULL && SSL_CTX_dane_enable(r->dane_ctx) <= 0) {
					SSL_CTX_free(r->dane_ctx);
					r->dane_ctx = NULL;
				}
			}
			p.tls = SMTPC_TLS_STARTTLS;
			p.ssl_ctx = r->dane_ctx; /* NULL: smtpc makes one */
			p.tlsa = tx->tlsa->recs;
			p.n_tlsa = tx->tlsa->n;
		}
	}
	c->c = smtpc_new(&p, relay_conn_ready_cb, relay_conn_fail_cb, c);
}

/* A local failure of tx before any connection (DNS). */
static void
relay_tx_local_fail(struct relay_tx *tx, enum smtpc_local local, enum smtpc_stage stage,
    const char *why)
{
	struct smtpc_failure f;

	memset(&f, 0, sizeof(f));
	f.stage = stage;
	f.local = local;
	snprintf(f.text, sizeof(f.text), "%s", why);
	relay_tx_failed(tx, &f);
}

static void
relay_up_addr_cb(void *arg, const struct dns_addr_result *res)
{
	struct relay_tx *tx = arg;
	struct relay_up *u = tx->up;

	if (res->status != DNS_OK || res->n == 0) {
		struct smtpc_failure f;

		memset(&f, 0, sizeof(f));
		f.stage = SMTPC_STAGE_CONNECT;
		f.local = SMTPC_LOCAL_REFUSED;
		snprintf(f.text, sizeof(f.text), "cannot resolve %s: %s", u->host,
		    res->why[0] ? res->why : dns_status_name(res->status));
		relay_tx_failed(tx, &f);
		return;
	}
	u->addr = res->addrs[0];
	u->addr_len = res->lens[0];
	relay_set_port(&u->addr, u->cu.port);
	u->addr_expires_ms = clock_now_ms() + RELAY_ADDR_TTL_MS;
	relay_tx_connect(tx, &u->addr, u->addr_len);
}

/* Start tx on an upstream: an idle connection, or a new one (resolving the host if needed). */
static void
relay_tx_start_upstream(struct relay_tx *tx)
{
	struct relay_up *u = tx->up;
	struct relay_conn *c = u->idle;
	struct in_addr a4;
	struct in6_addr a6;

	snprintf(tx->host, sizeof(tx->host), "%s", u->host);
	if (c != NULL) {
		struct smtpc_caps caps;

		u->idle = c->next;
		evtimer_del(c->idle_ev);
		c->tx = tx;
		tx->conn = c;
		snprintf(tx->addr_text, sizeof(tx->addr_text), "%s", smtpc_peer(c->c));
		tx->port = u->cu.port;
		memset(&caps, 0, sizeof(caps));
		/* Reuse: the session is ready; send at once (EHLO facts are already known). */
		c->ready = true;
		{
			struct smtpc_tx stx;
			struct relay_msg *m = tx->g->m;

			tx->connected_ms = clock_now_ms();
			memset(&stx, 0, sizeof(stx));
			stx.mail_from = m->env.from;
			stx.size = m->body.len;
			stx.eightbit = m->eightbit;
			stx.smtputf8 = m->needs_smtputf8;
			stx.ret = m->env.ret == SMTP_RET_FULL ? "FULL" :
			    m->env.ret == SMTP_RET_HDRS ? "HDRS" : NULL;
			stx.n_rcpts = tx->n;
			stx.rcpts = tx->rcpts;
			stx.notify = tx->notify;
			stx.orcpt = tx->orcpt;
			stx.body = &m->body;
			smtpc_send(c->c, &stx, relay_tx_done_cb);
		}
		return;
	}
	if (u->addr_expires_ms > clock_now_ms()) {
		relay_tx_connect(tx, &u->addr, u->addr_len);
		return;
	}
	memset(&u->addr, 0, sizeof(u->addr));
	if (inet_pton(AF_INET, u->host, &a4) == 1) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&u->addr;

		s4->sin_family = AF_INET;
		s4->sin_addr = a4;
		u->addr_len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, u->host, &a6) == 1) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&u->addr;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = a6;
		u->addr_len = sizeof(*s6);
	} else {
		dns_addrs(tx->g->m->r->dns, u->host, relay_up_addr_cb, tx);
		return;
	}
	relay_set_port(&u->addr, u->cu.port);
	u->addr_expires_ms = UINT64_MAX;
	relay_tx_connect(tx, &u->addr, u->addr_len);
}

static struct relay_tx *
relay_tx_new(struct relay_group *g, const size_t *idx, size_t n)
{
	struct relay_msg *m = g->m;
	struct relay_tx *tx = xcalloc(1, sizeof(*tx));
	size_t k;

	tx->g = g;
	tx->idx = xmemdup(idx, n * sizeof(*idx));
	tx->n = n;
	tx->rcpts = xcalloc(n, sizeof(*tx->rcpts));
	tx->notify = xcalloc(n, sizeof(*tx->notify));
	tx->orcpt = xcalloc(n, sizeof(*tx->orcpt));
	tx->notify_buf = xcalloc(n, sizeof(*tx->notify_buf));
	for (k = 0; k < n; k++) {
		const struct spool_rcpt *sr = &m->env.rcpts[idx[k]];

		tx->rcpts[k] = sr->addr;
		relay_notify_text(sr->notify, &tx->notify_buf[k]);
		tx->notify[k] = tx->notify_buf[k];
		tx->orcpt[k] = sr->orcpt;
		m->rc[idx[k]].rw = RW_INFLIGHT;
	}
	tx->begin_ms = clock_now_ms();
	g->tx_inflight++;
	return tx;
}

/* ---- MX groups ---- */

static void relay_mx_next(struct relay_group *g);
static void relay_tx_local_fail(struct relay_tx *tx, enum smtpc_local local,
    enum smtpc_stage stage, const char *why);

static void
relay_mx_addr_cb(void *arg, const struct dns_addr_result *res)
{
	struct relay_tx *tx = arg;
	struct relay_group *g = tx->g;
	struct sockaddr_storage ss;

	g->waiting_dns = false;
	if (res->status != DNS_OK || res->n == 0) {
		char why[DNS_NAME_MAX + 160];

		snprintf(why, sizeof(why), "cannot resolve MX host %s: %s", tx->host,
		    res->why[0] ? res->why : dns_status_name(res->status));
		relay_tx_local_fail(tx, SMTPC_LOCAL_REFUSED, SMTPC_STAGE_CONNECT, why);
		return;
	}
	ss = res->addrs[0];
	relay_set_port(&ss, g->m->conf->delivery_mx_port);
	relay_tx_connect(tx, &ss, res->lens[0]);
}

/*
 * The MX host's TLSA records (RFC 7672 2.2): validated records make TLS mandatory and
 * authenticated; a validated answer that there are none leaves STARTTLS opportunistic; a lookup
 * that fails or does not validate makes the host unusable for now (never a fall back to
 * plaintext), so the next MX host is tried.
 */
static void
relay_mx_tlsa_cb(void *arg, const struct dns_tlsa_result *res)
{
	struct relay_tx *tx = arg;
	struct relay_group *g = tx->g;

	if (res->status == DNS_OK && res->secure) {
		if (res->n > 0)
			tx->tlsa = xmemdup(res, sizeof(*res));
		else
			tx->tls_required = true;
	} else if (res->status == DNS_TEMPFAIL || res->status == DNS_BOGUS) {
		char why[DNS_NAME_MAX + 200];

		g->waiting_dns = false;
		snprintf(why, sizeof(why), "TLSA lookup for MX host %s failed (DANE, RFC 7672): %s",
		    tx->host, res->why[0] ? res->why : dns_status_name(res->status));
		relay_tx_local_fail(tx, SMTPC_LOCAL_REFUSED, SMTPC_STAGE_CONNECT, why);
		return;
	}
	dns_addrs(g->m->r->dns, tx->host, relay_mx_addr_cb, tx);
}

/* Try the pending recipients of an MX group on the next MX host. */
static void
relay_mx_next(struct relay_group *g)
{
	struct relay_msg *m = g->m;
	size_t *pend = xcalloc(g->n_idx, sizeof(*pend));
	size_t n = relay_group_pending(g, pend), off;

	for (off = 0; off < n; off += RELAY_MX_RCPTS) {
		size_t k = n - off < RELAY_MX_RCPTS ? n - off : RELAY_MX_RCPTS;
		struct relay_tx *tx = relay_tx_new(g, pend + off, k);

		snprintf(tx->host, sizeof(tx->host), "%s", g->mxr->hosts[g->mx_next].name);
		tx->up_index = SIZE_MAX;
		g->waiting_dns = true;
		/* RFC 7672 2.2: TLSA records count only behind a validated MX answer. */
		if (m->conf->dns_dnssec && g->mxr->secure)
			dns_tlsa(m->r->dns, tx->host, m->conf->delivery_mx_port, relay_mx_tlsa_cb, tx);
		else
			dns_addrs(m->r->dns, tx->host, relay_mx_addr_cb, tx);
	}
	g->mx_next++;
	free(pend);
}

static void
relay_mx_cb(void *arg, const struct dns_mx_result *res)
{
	struct relay_group *g = arg;
	struct relay_msg *m = g->m;
	size_t k;

	g->waiting_dns = false;
	if (res->status == DNS_OK && res->n > 0) {
		g->mxr = xmemdup(res, sizeof(*res));
		g->mx_next = 0;
		relay_group_run(g);
		return;
	}
	for (k = 0; k < g->n_idx; k++) {
		size_t i = g->idx[k];
		char why[300];

		if (m->rc[i].rw != RW_PENDING)
			continue;
		switch (res->status) {
		case DNS_NXDOMAIN:
			snprintf(why, sizeof(why), "domain %s does not exist", g->domain);
			relay_rcpt_set(m, i, RW_BOUNCED, "5.1.2", why);
			break;
		case DNS_NULL_MX:
			snprintf(why, sizeof(why), "domain %s accepts no mail (null MX, RFC 7505)",
			    g->domain);
			relay_rcpt_set(m, i, RW_BOUNCED, "5.1.10", why);
			break;
		default:
			snprintf(why, sizeof(why), "MX lookup for %s failed: %s", g->domain,
			    res->why[0] ? res->why : dns_status_name(res->status));
			relay_rcpt_set(m, i, RW_DEFERRED, "4.4.3", why);
			break;
		}
		log_info("relay", "attempt", "qid=%s rcpt=%s upstream=mx result=%s reply=%s", m->qid,
		    log_q(m->env.rcpts[i].addr), m->rc[i].rw == RW_BOUNCED ? "bounced" : "deferred",
		    log_q(why));
	}
	relay_group_check_done(g);
}

/* ---- running a group ---- */

static void
relay_group_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	relay_group_run(arg);
}

/* Pending recipients of an upstream group: choose and start transactions. */
static void
relay_group_run_upstreams(struct relay_group *g)
{
	struct relay_msg *m = g->m;
	const struct upstream_state *states[m->conf->n_upstreams + 1];
	struct choose_route cr = relay_choose_route(g, states);
	size_t *pend = xcalloc(g->n_idx, sizeof(*pend));
	size_t n, k;

	while ((n = relay_group_pending(g, pend)) > 0) {
		struct choose_msg cm = relay_choose_msg(m, n);
		struct choose_result res;
		uint64_t now = clock_now_ms();
		struct relay_tx *tx;

		choose_upstream(&cr, &cm, g->excluded, now, &res);
		if (res.kind == CHOOSE_SEND) {
			if (res.at_ms > now + 5) {
				/* The rate slot is up to a second away: come back then. */
				struct timeval tv = { 0, (suseconds_t)(res.at_ms - now) * 1000 };

				if (g->retry_ev == NULL)
					g->retry_ev = evtimer_new(m->r->base, relay_group_retry_cb, g);
				evtimer_add(g->retry_ev, &tv);
				break;
			}
			tx = relay_tx_new(g, pend, (size_t)res.n_rcpt);
			tx->up_index = res.upstream;
			tx->up = m->ups[res.upstream];
			tx->probe = res.probe;
			upstream_send_begin(tx->up->st, now, res.n_rcpt, res.probe);
			relay_tx_start_upstream(tx);
			continue;
		}
		for (k = 0; k < n; k++) {
			size_t i = pend[k];

			if (res.kind == CHOOSE_WAIT) {
				m->rc[i].rw = RW_WAIT;
				/*
				 * Event waits with no timed reason soon (a window, a pause, a
				 * half-open time within a minute) leave the scheduler for the
				 * relay's waiter list; the others re-run within a second.
				 */
				m->rc[i].wait_on_event = res.on_event &&
				    (res.at_ms == UINT64_MAX || res.at_ms > now + 60000);
				m->rc[i].wait_until_ms = res.on_event && res.at_ms > now + 1000 ?
				    now + 1000 : res.at_ms;
				if (m->rc[i].reply[0] == '\0')
					snprintf(m->rc[i].reply, sizeof(m->rc[i].reply), "%s", res.why);
			} else if (res.kind == CHOOSE_NEVER) {
				relay_rcpt_set(m, i, RW_BOUNCED, res.status, res.why);
			} else if (m->rc[i].last_verdict == TROUBLE_NEXT &&
			    m->rc[i].dsn[0] == '5') {
				/* NONE: every eligible upstream said no; the last word stands. */
				m->rc[i].rw = RW_BOUNCED;
			} else {
				m->rc[i].rw = RW_DEFERRED;
				if (m->rc[i].dsn[0] == '\0')
					snprintf(m->rc[i].dsn, sizeof(m->rc[i].dsn), "4.4.1");
			}
		}
		if (res.kind != CHOOSE_SEND)
			log_info("relay", "no_upstream_now", "qid=%s route=%s decision=%s why=%s "
			    "recipients=%zu", m->qid, log_q(m->conf->routes[g->route].name),
			    choose_kind_name(res.kind), log_q(res.why), n);
	}
	free(pend);
}

static void
relay_group_check_done(struct relay_group *g)
{
	struct relay_msg *m = g->m;
	size_t k;

	if (g->done || g->tx_inflight > 0 || g->waiting_dns ||
	    (g->retry_ev && evtimer_pending(g->retry_ev, NULL)))
		return;
	for (k = 0; k < g->n_idx; k++) {
		enum relay_rw rw = m->rc[g->idx[k]].rw;

		if (rw == RW_PENDING || rw == RW_INFLIGHT)
			return;
	}
	g->done = true;
	if (--m->groups_open == 0)
		relay_msg_end(m);
}

static void
relay_group_run(struct relay_group *g)
{
	struct relay_msg *m = g->m;
	size_t *pend;
	size_t n, k;

	if (g->done)
		return;
	relay_msg_hold(m);
	if (g->is_mx) {
		pend = xcalloc(g->n_idx, sizeof(*pend));
		n = relay_group_pending(g, pend);
		if (n > 0 && g->mxr == NULL && !g->waiting_dns) {
			g->waiting_dns = true;
			dns_mx(m->r->dns, g->domain, relay_mx_cb, g);
		} else if (n > 0 && g->mxr != NULL && g->tx_inflight == 0) {
			if (g->mx_next < g->mxr->n) {
				relay_mx_next(g);
			} else {
				/* Every MX host tried: the last verdict stands (DEFER by default). */
				for (k = 0; k < n; k++) {
					if (m->rc[pend[k]].dsn[0] == '5')
						m->rc[pend[k]].rw = RW_BOUNCED;
					else
						m->rc[pend[k]].rw = RW_DEFERRED;
				}
			}
		}
		free(pend);
	} else {
		relay_group_run_upstreams(g);
	}
	relay_group_check_done(g);
	relay_msg_unhold(m);
}

/* ---- a pass over a message ---- */

static void
relay_msg_free(struct relay_msg *m)
{
	struct relay *r = m->r;
	size_t i;

	if (m->holds > 0) {
		m->free_pending = true;
		return;
	}
	for (i = 0; i < m->n_groups; i++) {
		struct relay_group *g = &m->groups[i];

		if (g->retry_ev)
			event_free(g->retry_ev);
		free(g->idx);
		free(g->excluded);
		free(g->domain);
		free(g->mxr);
	}
	free(m->groups);
	for (i = 0; m->ups && i < m->conf->n_upstreams; i++)
		relay_up_release(m->ups[i]);
	free(m->ups);
	free(m->rc);
	spool_env_fini(&m->env);
	buf_fini(&m->body);
	conf_unref(m->conf);
	relay_active_forget(r, m->id);
	free(m);
	r->active--;
	if (r->stopping && r->active == 0 && r->stopped_cb)
		r->stopped_cb(r->stopped_arg);
	else
		sched_kick(r->sched);
}

static void
relay_add_group(struct relay_msg *m, size_t route, const char *domain, size_t i)
{
	struct relay_group *g;
	size_t k;

	for (k = 0; k < m->n_groups; k++) {
		g = &m->groups[k];
		if (g->route == route && (domain == NULL ||
		    (g->domain && strcasecmp(g->domain, domain) == 0))) {
			g->idx[g->n_idx++] = i;
			return;
		}
	}
	g = &m->groups[m->n_groups++];
	memset(g, 0, sizeof(*g));
	g->m = m;
	g->route = route;
	g->is_mx = m->conf->routes[route].mx;
	g->domain = domain ? xstrdup(domain) : NULL;
	g->idx = xcalloc(m->env.n_rcpts, sizeof(*g->idx));
	g->excluded = xcalloc(m->conf->n_upstreams + 1, sizeof(*g->excluded));
	g->idx[g->n_idx++] = i;
}

static void
relay_msg_update_done(int rc, const struct hk_err *err, void *arg)
{
	struct relay_msg *m = arg;

	if (rc == -1)
		log_error("relay", "update_failed", "qid=%s err=%s action=%s", m->qid,
		    log_q(err ? err->text : "?"),
		    log_q("the message stays queued with its previous envelope"));
	if (!m->r->stopping)
		sched_add(m->r->sched, m->id, m->env.next_attempt_ms);
	relay_msg_free(m);
}

static void
relay_msg_finish_done(int rc, const struct hk_err *err, void *arg)
{
	struct relay_msg *m = arg;

	if (rc == -1)
		log_error("relay", "finish_failed", "qid=%s err=%s", m->qid,
		    log_q(err ? err->text : "?"));
	else {
		m->r->stats.messages_finished++;
		log_info("relay", "finished", "qid=%s", m->qid);
	}
	relay_msg_free(m);
}

static void
relay_msg_barrier_done(void *arg, int rc)
{
	struct relay_msg *m = arg;
	struct hk_err err = { 0 };

	/* Even when the log failed, the spool is the truth: finishing is still right. */
	if (rc == -1)
		log_warn("relay", "log_not_durable", "qid=%s", m->qid);
	if (spool_finish(m->r->spool, m->id, relay_msg_finish_done, m, &err) == -1) {
		log_error("relay", "finish_failed", "qid=%s err=%s", m->qid, log_q(err.text));
		relay_msg_free(m);
	}
}

static enum maillog_event
relay_rw_event(enum relay_rw rw)
{
	switch (rw) {
	case RW_SENT: return MAILLOG_SENT;
	case RW_BOUNCED: return MAILLOG_BOUNCED;
	case RW_EXPIRED: return MAILLOG_EXPIRED;
	default: return MAILLOG_DEFERRED;
	}
}

/* DSNs for the recipients that became bounced or expired in this pass. */
static void
relay_msg_dsn(struct relay_msg *m)
{
	struct relay *r = m->r;
	struct relay_dsn_rcpt *out = xcalloc(m->env.n_rcpts, sizeof(*out));
	struct relay_dsn_ctx ctx = { r->spool, r->ids, r->sched, r->ml, m->conf };
	size_t i, n = 0;

	for (i = 0; i < m->env.n_rcpts; i++) {
		const struct relay_rcpt *rc = &m->rc[i];

		if (!rc->final_now || (rc->rw != RW_BOUNCED && rc->rw != RW_EXPIRED))
			continue;
		out[n].index = i;
		out[n].expired = rc->rw == RW_EXPIRED;
		out[n].status = rc->dsn;
		out[n].code = rc->code;
		out[n].diagnostic = rc->reply;
		out[n].remote = rc->remote;
		n++;
	}
	if (n > 0)
		relay_dsn_send(&ctx, &m->env, &m->body, out, n);
	free(out);
}

/* Did this pass change a recipient's state (or count a deferral)? */
static bool
relay_msg_changed(const struct relay_msg *m)
{
	size_t i;

	for (i = 0; i < m->env.n_rcpts; i++) {
		enum relay_rw rw = m->rc[i].rw;

		if (rw != RW_SKIP && rw != RW_WAIT)
			return true;
	}
	return false;
}

/* Does every waiting recipient wait for an event rather than a time? */
static bool
relay_msg_waits_on_event(const struct relay_msg *m)
{
	size_t i;
	bool any = false;

	for (i = 0; i < m->env.n_rcpts; i++) {
		if (m->rc[i].rw != RW_WAIT)
			continue;
		if (!m->rc[i].wait_on_event)
			return false;
		any = true;
	}
	return any;
}

/* Every group has a verdict for every recipient: record and dispose of the message. */
static void
relay_msg_end(struct relay_msg *m)
{
	struct relay *r = m->r;
	uint64_t now = clock_now_ms(), wait_until = UINT64_MAX, at;
	bool deferred = false, waiting = false, unfinished = false;
	uint32_t deferrals = m->env.attempts;
	struct hk_err err = { 0 };
	size_t i;

	m->ending = true;
	for (i = 0; i < m->env.n_rcpts; i++) {
		if (m->rc[i].rw == RW_DEFERRED)
			deferred = true;
		if (m->rc[i].rw == RW_WAIT) {
			waiting = true;
			if (m->rc[i].wait_until_ms < wait_until)
				wait_until = m->rc[i].wait_until_ms;
		}
	}
	if (deferred || waiting) {
		enum retry_result rr;

		if (deferred)
			rr = retry_after_deferral(&r->retry, &deferrals, m->env.received_ms, now,
			    retry_rng_next(&r->rng), &at);
		else
			rr = retry_after_wait(&r->retry, m->env.received_ms, now, wait_until, &at);
		if (deferred && waiting && rr == RETRY_AT && wait_until < at)
			at = wait_until;
		if (rr == RETRY_EXPIRED) {
			for (i = 0; i < m->env.n_rcpts; i++) {
				if (m->rc[i].rw == RW_DEFERRED || m->rc[i].rw == RW_WAIT) {
					m->rc[i].rw = RW_EXPIRED;
					if (m->rc[i].dsn[0] != '4')
						snprintf(m->rc[i].dsn, sizeof(m->rc[i].dsn), "4.4.7");
				}
			}
		} else {
			m->env.next_attempt_ms = at;
		}
	}
	if (deferred)
		m->env.attempts = deferrals;
	for (i = 0; i < m->env.n_rcpts; i++) {
		struct relay_rcpt *rc = &m->rc[i];
		struct spool_rcpt *sr = &m->env.rcpts[i];

		switch (rc->rw) {
		case RW_SENT: sr->state = SPOOL_RCPT_SENT; break;
		case RW_BOUNCED: sr->state = SPOOL_RCPT_BOUNCED; break;
		case RW_EXPIRED: sr->state = SPOOL_RCPT_EXPIRED; break;
		case RW_DEFERRED: sr->state = SPOOL_RCPT_DEFERRED; break;
		default: break;
		}
		if (rc->rw == RW_SKIP || rc->rw == RW_WAIT) {
			if (sr->state == SPOOL_RCPT_QUEUED || sr->state == SPOOL_RCPT_DEFERRED)
				unfinished = true;
			continue;
		}
		if (rc->rw == RW_DEFERRED)
			unfinished = true;
		switch (rc->rw) {
		case RW_SENT: r->stats.rcpts_sent++; break;
		case RW_BOUNCED: r->stats.rcpts_bounced++; break;
		case RW_EXPIRED: r->stats.rcpts_expired++; break;
		case RW_DEFERRED: r->stats.rcpts_deferred++; break;
		default: break;
		}
		rc->final_now = rc->rw == RW_SENT || rc->rw == RW_BOUNCED || rc->rw == RW_EXPIRED;
		if (r->ml)
			maillog_status(r->ml, m->id, sr->addr, relay_rw_event(rc->rw), now, rc->reply);
		if (rc->rw == RW_EXPIRED)
			log_info("relay", "expired", "qid=%s rcpt=%s reply=%s", m->qid,
			    log_q(sr->addr), log_q(rc->reply));
		if (rc->rw == RW_SENT || rc->rw == RW_BOUNCED || rc->rw == RW_EXPIRED ||
		    rc->rw == RW_DEFERRED)
			relay_emit(m, rc->rw == RW_SENT ? RELAY_EVENT_SENT : rc->rw == RW_BOUNCED ?
			    RELAY_EVENT_BOUNCED : rc->rw == RW_EXPIRED ? RELAY_EVENT_EXPIRED :
			    RELAY_EVENT_DEFERRED, i, rc->upstream, rc->code, rc->dsn, rc->reply,
			    now);
	}
	relay_msg_dsn(m);
	if (unfinished && !relay_msg_changed(m)) {
		/*
		 * Only waits (breaker, quota, rate): nothing durable changed, so no envelope rewrite;
		 * after a restart the old mtime just makes it due a little early.
		 */
		if (r->stopping)
			;
		else if (relay_msg_waits_on_event(m))
			relay_evwait_add(r, m->id);
		else
			sched_add(r->sched, m->id, m->env.next_attempt_ms);
		relay_msg_free(m);
		return;
	}
	if (unfinished) {
		log_info("relay", "deferred", "qid=%s next=%llu attempts=%u", m->qid,
		    (unsigned long long)m->env.next_attempt_ms, m->env.attempts);
		if (spool_update(r->spool, &m->env, relay_msg_update_done, m, &err) == -1) {
			log_error("relay", "update_failed", "qid=%s err=%s", m->qid, log_q(err.text));
			if (!r->stopping)
				sched_add(r->sched, m->id, now + 60000);
			relay_msg_free(m);
		}
		return;
	}
	/* All final: the terminal events must be durable before the spool lets go. */
	if (r->ml)
		maillog_barrier(r->ml, relay_msg_barrier_done, m);
	else
		relay_msg_barrier_done(m, 0);
}

static void
relay_active_note(struct relay *r, uint64_t id)
{
	if (r->n_active_ids == r->cap_active_ids) {
		r->cap_active_ids = r->cap_active_ids ? 2 * r->cap_active_ids : 16;
		r->active_ids = xreallocarray(r->active_ids, r->cap_active_ids,
		    sizeof(*r->active_ids));
	}
	r->active_ids[r->n_active_ids++] = id;
}

/* Any recipient held: the whole message waits for a release. */
static bool
relay_env_is_held(const struct spool_env *env)
{
	size_t i;

	for (i = 0; i < env->n_rcpts; i++) {
		if (env->rcpts[i].state == SPOOL_RCPT_HELD)
			return true;
	}
	return false;
}

bool
relay_ready(struct relay *r, uint64_t id)
{
	struct relay_msg *m;
	struct hk_err err = { 0 };
	uint64_t now = clock_now_ms();
	size_t i;

	HK_ASSERT_LOOP();
	if (r->stopping || r->active >= r->conf->delivery_max_messages)
		return false;
	/* In a pass already (offered twice): that pass puts it back in line when it ends. */
	if (relay_is_active(r, id))
		return true;
	m = xcalloc(1, sizeof(*m));
	m->r = r;
	m->id = id;
	id_format(id, m->qid);
	m->conf = conf_ref(r->conf);
	m->start_ms = now;
	buf_init(&m->body);
	r->active++;
	relay_active_note(r, id);
	if (spool_load_message(r->spool, id, &m->env, &m->body, &err) == -1) {
		if (err.code == HK_E_NOTFOUND && m->env.n_rcpts == 0)
			log_info("relay", "gone", "qid=%s reason=%s", m->qid,
			    log_q("no longer in the queue (deleted)"));
		else
			/* Leave it where it is: visible in queue/, tried again after a restart. */
			log_error("relay", "load_failed", "qid=%s err=%s action=%s", m->qid,
			    log_q(err.text), log_q("not delivered until the problem is fixed and "
			    "hikyaku restarts"));
		relay_msg_free(m);
		return true;
	}
	if (relay_env_is_held(&m->env)) {
		/* Held by an administrator: out of the scheduler until released. */
		log_info("relay", "held_skipped", "qid=%s", m->qid);
		relay_msg_free(m);
		return true;
	}
	m->ups = xcalloc(m->conf->n_upstreams + 1, sizeof(*m->ups));
	for (i = 0; i < m->conf->n_upstreams; i++) {
		m->ups[i] = r->ups[i];
		m->ups[i]->users++;
	}
	m->rc = xcalloc(m->env.n_rcpts, sizeof(*m->rc));
	m->groups = xcalloc(m->env.n_rcpts, sizeof(*m->groups));
	m->eightbit = relay_is_8bit(m->body.ptr, m->body.len);
	m->needs_smtputf8 = m->env.smtputf8;
	if (retry_is_expired(&r->retry, m->env.received_ms, now)) {
		for (i = 0; i < m->env.n_rcpts; i++) {
			enum spool_rcpt_state s = m->env.rcpts[i].state;

			if (s == SPOOL_RCPT_QUEUED || s == SPOOL_RCPT_DEFERRED)
				relay_rcpt_set(m, i, RW_EXPIRED, "4.4.7",
				    "retry.max_age reached without a successful delivery");
		}
		relay_msg_end(m);
		return true;
	}
	for (i = 0; i < m->env.n_rcpts; i++) {
		const struct spool_rcpt *sr = &m->env.rcpts[i];
		size_t route;

		if (sr->state != SPOOL_RCPT_QUEUED && sr->state != SPOOL_RCPT_DEFERRED) {
			m->rc[i].rw = RW_SKIP;
			continue;
		}
		route = relay_route_for(m->conf, &m->env, sr->addr);
		if (route == SIZE_MAX) {
			relay_rcpt_set(m, i, RW_BOUNCED, "5.4.4",
			    "no route in the configuration matches this recipient");
			continue;
		}
		m->rc[i].rw = RW_PENDING;
		relay_add_group(m, route, m->conf->routes[route].mx ? relay_domain(sr->addr) : NULL,
		    i);
	}
	m->groups_open = m->n_groups;
	if (m->n_groups == 0) {
		relay_msg_end(m);
		return true;
	}
	relay_msg_hold(m);
	for (i = 0; i < m->n_groups; i++)
		relay_group_run(&m->groups[i]);
	relay_msg_unhold(m);
	return true;
}

/* ---- life ---- */

struct relay *
relay_new(const struct relay_params *p, struct hk_err *err)
{
	struct relay *r = xcalloc(1, sizeof(*r));

	r->base = p->base;
	r->conf = conf_ref(p->conf);
	r->spool = p->spool;
	r->dns = p->dns;
	r->ml = p->maillog;
	r->sched = p->sched;
	r->ids = p->ids;
	r->on_event = p->on_event;
	r->on_event_arg = p->on_event_arg;
	r->rng = clock_now_ms() ^ ((uint64_t)getpid() << 32);
	retry_policy_from_conf(&r->retry, r->conf);
	if (relay_build_ups(r, r->conf, err) == -1)
		goto fail;
	if (r->conf->log_postfix_target != NULL) {
		r->pflog = pflog_open(r->conf->log_postfix_target, r->conf->log_postfix_tag, err);
		if (r->pflog == NULL)
			goto fail;
	}
	return r;
fail:
	relay_free(r);
	return NULL;
}

int
relay_reload(struct relay *r, struct conf *conf, struct hk_err *err)
{
	struct pflog *pl = NULL;

	if (conf->log_postfix_target != NULL &&
	    (pl = pflog_open(conf->log_postfix_target, conf->log_postfix_tag, err)) == NULL)
		return -1;
	if (relay_build_ups(r, conf, err) == -1) {
		pflog_close(pl);
		return -1;
	}
	pflog_close(r->pflog);
	r->pflog = pl;
	conf_unref(r->conf);
	r->conf = conf_ref(conf);
	retry_policy_from_conf(&r->retry, r->conf);
	return 0;
}

static void
relay_count_cb(void *arg, const char *upstream, uint64_t minute_ms, uint64_t count)
{
	struct relay *r = arg;
	struct relay_up *u = relay_up_find(r->ups, r->n_ups, upstream);
	struct upstream_count c = { minute_ms, (uint32_t)count };

	if (u != NULL)
		upstream_quota_add(u->st, c.at_ms, c.count);
}

void
relay_rebuild_quotas(struct relay *r)
{
	struct hk_err err = { 0 };
	uint64_t now = clock_now_ms();

	if (r->ml == NULL)
		return;
	if (maillog_upstream_counts(r->ml, now - 86400000ull - 60000, relay_count_cb, r,
	    &err) == -1)
		log_warn("relay", "quota_rebuild_failed", "sess=main err=%s action=%s",
		    log_q(err.text), log_q("quota windows start empty"));
}

void
relay_shutdown(struct relay *r, void (*done_cb)(void *arg), void *arg)
{
	r->stopping = true;
	r->stopped_cb = done_cb;
	r->stopped_arg = arg;
	if (r->active == 0 && done_cb)
		done_cb(arg);
}

size_t
relay_active(const struct relay *r)
{
	return r->active;
}

size_t
relay_waiting(const struct relay *r)
{
	return r->evwait_n;
}

uint64_t
relay_oldest_id(const struct relay *r)
{
	uint64_t min = 0;
	size_t i;

	for (i = 0; i < r->n_active_ids; i++) {
		if (min == 0 || r->active_ids[i] < min)
			min = r->active_ids[i];
	}
	for (i = 0; i < r->evwait_n; i++) {
		uint64_t id = r->evwait[(r->evwait_head + i) % r->evwait_cap];

		if (min == 0 || id < min)
			min = id;
	}
	return min;
}

void
relay_stats(const struct relay *r, struct relay_stats *out)
{
	*out = r->stats;
}

bool
relay_evwait_take(struct relay *r, uint64_t id)
{
	size_t i, j;

	for (i = 0; i < r->evwait_n; i++) {
		if (r->evwait[(r->evwait_head + i) % r->evwait_cap] != id)
			continue;
		/* Close the gap, keeping the order of the others. */
		for (j = i; j + 1 < r->evwait_n; j++)
			r->evwait[(r->evwait_head + j) % r->evwait_cap] =
			    r->evwait[(r->evwait_head + j + 1) % r->evwait_cap];
		r->evwait_n--;
		return true;
	}
	return false;
}

size_t
relay_evwait_flush(struct relay *r)
{
	size_t n = r->evwait_n;

	relay_evwait_release(r, SIZE_MAX);
	return n;
}

void
relay_free(struct relay *r)
{
	size_t i;

	if (r == NULL)
		return;
	free(r->active_ids);
	for (i = 0; i < r->n_ups; i++)
		relay_up_free(r->ups[i]);
	for (i = 0; i < r->n_retired; i++)
		relay_up_free(r->retired[i]);
	free(r->ups);
	free(r->retired);
	SSL_CTX_free(r->dane_ctx);
	if (r->evwait_ev)
		event_free(r->evwait_ev);
	free(r->evwait);
	pflog_close(r->pflog);
	conf_unref(r->conf);
	free(r);
}

bool
relay_upstream_snapshot(const struct relay *r, const char *name, uint64_t now_ms,
    struct upstream_snapshot *out)
{
	const struct relay_up *u = relay_up_find(r->ups, r->n_ups, name);

	if (u == NULL || u->st == NULL)
		return false;
	upstream_snapshot(u->st, now_ms, out);
	return true;
}

static void
relay_active_forget(struct relay *r, uint64_t id)
{
	size_t i;

	for (i = 0; i < r->n_active_ids; i++) {
		if (r->active_ids[i] == id) {
			r->active_ids[i] = r->active_ids[--r->n_active_ids];
			return;
		}
	}
}

bool
relay_is_active(const struct relay *r, uint64_t id)
{
	size_t i;

	for (i = 0; i < r->n_active_ids; i++) {
		if (r->active_ids[i] == id)
			return true;
	}
	return false;
}
