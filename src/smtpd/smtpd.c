/*
 * smtpd.c - the SMTP engine: listeners, connection caps, the session registry, reload and
 * shutdown.
 *
 * Caps: limits.max_connections in total and limits.max_connections_per_ip per client address;
 * a connection over either cap gets "421 4.7.0" written straight to the new socket and is closed
 * (no session is created for it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../util/log.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "smtpd_int.h"
#include "../util/poison.h"

#define SMTPD_ACCEPT_PAUSE_MS 1000

void
smtpd_sockaddr_text(const struct sockaddr *sa, char *out, size_t size)
{
	const struct sockaddr_in6 *sin6;

	out[0] = '\0';
	switch (sa->sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
		    (socklen_t)size);
		break;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)sa;
		/* v4-mapped peers are shown and counted as the IPv4 address they are. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], out, (socklen_t)size);
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, out, (socklen_t)size);
		break;
	default:
		if (str_copy(out, size, "local") == -1)
			out[0] = '\0';
		break;
	}
}

static void
smtpd_check_done(struct smtpd *sd)
{
	if (sd->shutting && sd->done_cb != NULL && sd->n_sessions == 0 &&
	    LIST_EMPTY(&sd->commits))
		event_active(sd->done_ev, EV_TIMEOUT, 0);
}

static void
smtpd_done_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd *sd = arg;
	smtpd_done_fn cb = sd->done_cb;

	(void)fd;
	(void)what;
	sd->done_cb = NULL;
	if (cb != NULL)
		cb(sd->done_arg);
}

void
smtpd_session_gone(struct smtpd *sd, struct smtpd_session *s)
{
	TAILQ_REMOVE(&sd->sessions, s, link);
	sd->n_sessions--;
	smtpd_check_done(sd);
}

void
smtpd_commit_finished(struct smtpd *sd)
{
	smtpd_check_done(sd);
}

/* Refuse a connection over a cap without creating a session: one non-blocking write, close. */
static void
smtpd_refuse_conn(evutil_socket_t fd)
{
	static const char msg[] = "421 4.7.0 Too many connections, try again later\r\n";
	ssize_t n HK_UNUSED;

	n = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	evutil_closesocket(fd);
}

static void
smtpd_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
{
	struct smtpd_listen *l = arg;
	struct smtpd *sd = l->sd;
	const struct conf_limits *lim = &sd->conf->limits;
	struct smtpd_session *s;
	char ip[INET6_ADDRSTRLEN];
	size_t same_ip = 0;

	(void)lev;
	if (sd->shutting) {
		evutil_closesocket(fd);
		return;
	}
	smtpd_sockaddr_text(sa, ip, sizeof(ip));
	TAILQ_FOREACH(s, &sd->sessions, link) {
		if (strcmp(s->ip, ip) == 0)
			same_ip++;
	}
	if ((lim->max_connections > 0 && sd->n_sessions >= lim->max_connections) ||
	    (lim->max_connections_per_ip > 0 && same_ip >= lim->max_connections_per_ip)) {
		log_info("smtpd", "connection_refused", "sess=0 client=%s sessions=%zu same_ip=%zu",
		    ip, sd->n_sessions, same_ip);
		smtpd_refuse_conn(fd);
		return;
	}
	s = smtpd_session_new(sd, fd, sa, salen, l->index);
	if (s == NULL)
		return;
	TAILQ_INSERT_TAIL(&sd->sessions, s, link);
	sd->n_sessions++;
}

static void
smtpd_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd *sd = arg;
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < sd->n_listens; i++) {
		if (sd->listens[i].lev != NULL)
			evconnlistener_enable(sd->listens[i].lev);
	}
	if (sd->local.lev != NULL)
		evconnlistener_enable(sd->local.lev);
}

static void
smtpd_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct smtpd_listen *l = arg;
	int e = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { SMTPD_ACCEPT_PAUSE_MS / 1000, 0 };

	/* EMFILE and friends would make the listener spin: pause it for a second. */
	log_warn("smtpd", "accept_failed", "sess=0 listener=%s err=%s",
	    log_q(l->index == SMTPD_LOCAL ? l->sd->local_lst.addr.text :
	    l->sd->conf->listeners[l->index].addr.text),
	    log_q(evutil_socket_error_to_string(e)));
	evconnlistener_disable(lev);
	evtimer_add(l->sd->pause_ev, &tv);
}

static void
smtpd_listens_stop(struct smtpd *sd)
{
	size_t i;

	for (i = 0; i < sd->n_listens; i++) {
		if (sd->listens[i].lev != NULL)
			evconnlistener_free(sd->listens[i].lev);
		sd->listens[i].lev = NULL;
	}
}

/*
 * The sendmail socket: a fixed policy rather than a configured listener (no TLS, no AUTH; relay is
 * allowed because the peer is a local user, smtpd_session.c). Kept across reloads.
 */
static int
smtpd_local_start(struct smtpd *sd, int fd, struct hk_err *err)
{
	int on = 1;

	sd->local_lst.tls = CONF_TLS_NONE;
	sd->local_lst.auth = CONF_AUTH_NONE;
	sd->local_lst.relay = 0;
	sd->local_lst.name = "sendmail";
	sd->local_lst.addr.text = "sendmail.sock";
	sd->local.sd = sd;
	sd->local.index = SMTPD_LOCAL;
	if (fd < 0)
		return 0;
	/* Early talkers are caught as on TCP, where the kernel timestamps Unix stream data too. */
	if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) == -1)
		log_debug("smtpd", "no_rx_timestamps", "sess=0 listener=sendmail errno=%d", errno);
	sd->local.lev = evconnlistener_new(sd->base, smtpd_accept_cb, &sd->local,
	    LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (sd->local.lev == NULL)
		return hk_err_set(err, HK_E_IO, "listen on the sendmail socket: cannot set up the "
		    "event");
	evconnlistener_set_error_cb(sd->local.lev, smtpd_accept_error_cb);
	return 0;
}

static void
smtpd_local_stop(struct smtpd *sd)
{
	if (sd->local.lev != NULL)
		evconnlistener_free(sd->local.lev);
	sd->local.lev = NULL;
}

static int
smtpd_listens_start(struct smtpd *sd, const int *fds, struct hk_err *err)
{
	struct smtpd_listen *l;
	size_t i;

	if (sd->n_listens < sd->conf->n_listeners) {
		sd->listens = xreallocarray(sd->listens, sd->conf->n_listeners,
		    sizeof(*sd->listens));
		memset(sd->listens + sd->n_listens, 0,
		    (sd->conf->n_listeners - sd->n_listens) * sizeof(*sd->listens));
		sd->n_listens = sd->conf->n_listeners;
	}
	for (i = 0; i < sd->conf->n_listeners; i++) {
		l = &sd->listens[i];
		l->sd = sd;
		l->index = i;
		l->lev = NULL;
		if (fds == NULL || fds[i] < 0)
			continue;
		/*
		 * Kernel receive timestamps, inherited by accepted sockets, tell whether a client's
		 * first bytes arrived before our greeting (smtpd_session.c); implicit TLS starts
		 * with the client's handshake, so it has no such test.
		 */
		if (sd->conf->listeners[i].tls != CONF_TLS_IMPLICIT) {
			int on = 1;

			if (setsockopt(fds[i], SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) == -1)
				log_warn("smtpd", "no_rx_timestamps", "sess=0 listener=%s errno=%d",
				    log_q(sd->conf->listeners[i].addr.text), errno);
		}
		/* main owns the fds (it keeps them across reloads): no LEV_OPT_CLOSE_ON_FREE. */
		l->lev = evconnlistener_new(sd->base, smtpd_accept_cb, l, LEV_OPT_CLOSE_ON_EXEC, -1,
		    fds[i]);
		if (l->lev == NULL)
			return hk_err_set(err, HK_E_IO, "listen on %s: cannot set up the event",
			    sd->conf->listeners[i].addr.text);
		evconnlistener_set_error_cb(l->lev, smtpd_accept_error_cb);
	}
	return 0;
}

struct smtpd *
smtpd_new(const struct smtpd_params *p, struct hk_err *err)
{
	struct smtpd *sd;

	HK_ASSERT(p->base != NULL && p->conf != NULL && p->spool != NULL && p->ids != NULL);
	sd = xcalloc(1, sizeof(*sd));
	sd->base = p->base;
	sd->conf = conf_ref(p->conf);
	if (p->tls_ctx != NULL) {
		SSL_CTX_up_ref(p->tls_ctx);
		sd->tls_ctx = p->tls_ctx;
	}
	sd->spool = p->spool;
	sd->ids = p->ids;
	sd->queued_cb = p->queued_cb;
	sd->cb_arg = p->cb_arg;
	sd->auth_pool = p->auth_pool;
	sd->on_auth_failure = p->on_auth_failure;
	sd->on_auth_failure_arg = p->on_auth_failure_arg;
	sd->greet_delay_ms = p->greet_delay_ms;
	TAILQ_INIT(&sd->sessions);
	LIST_INIT(&sd->commits);
	LIST_INIT(&sd->auth_jobs);
	sd->done_ev = event_new(sd->base, -1, 0, smtpd_done_ev_cb, sd);
	sd->pause_ev = evtimer_new(sd->base, smtpd_accept_resume_cb, sd);
	if (sd->done_ev == NULL || sd->pause_ev == NULL) {
		hk_err_set(err, HK_E_IO, "smtpd: cannot create an event");
		goto fail;
	}
	if (smtpd_auth_init(sd, err) == -1)
		goto fail;
	if (smtpd_listens_start(sd, p->listen_fds, err) == -1)
		goto fail;
	if (smtpd_local_start(sd, p->local_fd, err) == -1)
		goto fail;
	return sd;
fail:
	smtpd_free(sd);
	return NULL;
}

void
smtpd_reload(struct smtpd *sd, struct conf *conf, SSL_CTX *tls_ctx, const int *listen_fds)
{
	struct hk_err err;

	if (tls_ctx != NULL) {
		SSL_CTX_up_ref(tls_ctx);
		SSL_CTX_free(sd->tls_ctx);
		sd->tls_ctx = tls_ctx;
	}
	if (conf != NULL) {
		conf_ref(conf);
		conf_unref(sd->conf);
		sd->conf = conf;
	}
	if (sd->shutting)
		return;
	if (conf != NULL || listen_fds != NULL) {
		smtpd_listens_stop(sd);
		if (smtpd_listens_start(sd, listen_fds, &err) == -1)
			log_error("smtpd", "reload_failed", "sess=0 err=%s", log_q(err.text));
	}
	log_info("smtpd", "reloaded", "sess=0 listeners=%zu sessions=%zu", sd->conf->n_listeners,
	    sd->n_sessions);
}

void
smtpd_shutdown(struct smtpd *sd, smtpd_done_fn done_cb, void *arg)
{
	struct smtpd_session *s, *next;

	sd->shutting = true;
	sd->done_cb = done_cb;
	sd->done_arg = arg;
	smtpd_listens_stop(sd);
	smtpd_local_stop(sd);
	log_info("smtpd", "shutdown", "sess=0 sessions=%zu commits_in_flight=%s", sd->n_sessions,
	    LIST_EMPTY(&sd->commits) ? "no" : "yes");
	/* Sessions are only freed from their own callbacks, so iterating is safe. */
	for (s = TAILQ_FIRST(&sd->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, link);
		smtpd_session_shutdown(s);
		smtpd_session_flush(s);
	}
	smtpd_check_done(sd);
}

size_t
smtpd_sessions(const struct smtpd *sd)
{
	return sd->n_sessions;
}

void
smtpd_free(struct smtpd *sd)
{
	struct smtpd_session *s;

	if (sd == NULL)
		return;
	sd->done_cb = NULL;
	smtpd_listens_stop(sd);
	smtpd_local_stop(sd);
	while ((s = TAILQ_FIRST(&sd->sessions)) != NULL)
		smtpd_session_destroy(s);
	/* Jobs still in flight complete later: they must find neither smtpd nor session. */
	smtpd_commits_orphan(sd);
	smtpd_auth_jobs_orphan(sd);
	smtpd_auth_fini(sd);
	if (sd->done_ev != NULL)
		event_free(sd->done_ev);
	if (sd->pause_ev != NULL)
		event_free(sd->pause_ev);
	free(sd->listens);
	SSL_CTX_free(sd->tls_ctx);
	conf_unref(sd->conf);
	free(sd);
}
