/*
 * smtpd.h - the SMTP ingress engine: accepts connections on the configured listeners and runs one
 * session per connection (DESIGN.md 6).
 *
 * Wiring: main binds the listener sockets before the privilege drop (listener_bind), builds the
 * TLS server context, then calls smtpd_new() with them. Each committed message is reported
 * through queued_cb (so main can hand it to the scheduler).
 * Reload: smtpd_reload() swaps the configuration snapshot and TLS context used by NEW sessions;
 * live sessions keep theirs. Listener fds are matched by address text and kept.
 * Shutdown: smtpd_shutdown() stops accepting, sends "421 4.3.2" to idle sessions, lets in-flight
 * commits finish, then calls done_cb once no session is left.
 * Thread: loop thread only.
 */
#ifndef HK_SMTPD_H
#define HK_SMTPD_H

#include <event2/event.h>
#include <openssl/ssl.h>

#include "../conf/conf.h"
#include "../jobs/jobs.h"
#include "../spool/spool.h"
#include "../util/err.h"
#include "../util/id.h"

struct smtpd;

/* A message was committed to the spool (env is borrowed for the call). */
typedef void (*smtpd_queued_fn)(void *arg, const struct spool_env *env);
typedef void (*smtpd_done_fn)(void *arg);

struct smtpd_params {
	struct event_base *base;
	struct conf *conf;      /* referenced (conf_ref) by smtpd */
	SSL_CTX *tls_ctx;       /* NULL when no listener uses TLS; up-referenced by smtpd */
	const int *listen_fds;  /* one per conf->listeners[i], same order */
	struct spool *spool;    /* borrowed; outlives smtpd */
	struct id_gen *ids;     /* borrowed */
	smtpd_queued_fn queued_cb;
	void *cb_arg;
	/*
	 * The sendmail socket (listening Unix socket, owned by main like listen_fds): -1 when none.
	 * Its sessions are local submissions: no STARTTLS or AUTH, relay allowed, the Received:
	 * field names the peer's uid (SO_PEERCRED), envelope source "sendmail".
	 */
	int local_fd;
	/* Added: AUTH crypt(3) checks run here (borrowed); NULL runs them on the loop (tests). */
	struct jobs_pool *auth_pool;
	/*
	 * Added: pause before the greeting (ms) for listeners without a configured limits.greet_pause
	 * (tests). 0 greets at once: clients that talk first are still caught (554 5.5.0 and close) by
	 * comparing the kernel's receive timestamp of their first bytes with the moment of the
	 * greeting, which costs no latency.
	 */
	unsigned greet_delay_ms;
	/*
	 * Added, optional: an AUTH attempt failed (why: "credentials", "throttled",
	 * "throttled_ip"); client is the peer's address, user NULL when unknown. For alerts. Strings
	 * are borrowed for the call; never a password.
	 */
	void (*on_auth_failure)(void *arg, const char *client, const char *user, const char *why);
	void *on_auth_failure_arg;
};


/* Start accepting on every listener. NULL with err when an event cannot be set up. */
struct smtpd *smtpd_new(const struct smtpd_params *p, struct hk_err *err);
/*
 * Use conf and tls_ctx (either may be NULL = keep) for sessions started from now on. listen_fds
 * correspond to conf->listeners (main binds new addresses, closes removed ones).
 */
void smtpd_reload(struct smtpd *s, struct conf *conf, SSL_CTX *tls_ctx, const int *listen_fds);
void smtpd_shutdown(struct smtpd *s, smtpd_done_fn done_cb, void *arg);
/* Sessions open right now. */
size_t smtpd_sessions(const struct smtpd *s);
void smtpd_free(struct smtpd *s);

#endif
