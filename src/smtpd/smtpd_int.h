/*
 * smtpd_int.h - what the files of the SMTP engine share: the session, the command table row,
 * and the functions one file offers the others. Not for use outside src/smtpd/.
 *
 * Invariants: a session is freed in exactly one place (smtpd_session_destroy), which detaches any
 * job still in flight (commit, password check): the job's completion then finds no session and
 * only logs. Replies accumulate in s->out and go to the socket at smtpd_session_flush() (RFC 2920:
 * at a LAST_IN_GROUP command or when the input runs dry).
 * Thread: loop thread only.
 */
#ifndef HK_SMTPD_INT_H
#define HK_SMTPD_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "../net/conn.h"
#include "../proto/body.h"
#include "../proto/smtp_cmd.h"
#include "../spool/spool_format.h"
#include "../util/buf.h"
#include "smtpd.h"

enum smtpd_state {
	SMTPD_STATE_CONNECTED = 0, /* accepted; greeting held back to catch early talkers */
	SMTPD_STATE_TLS,           /* TLS handshake running (implicit TLS or after STARTTLS) */
	SMTPD_STATE_GREETED,       /* greeting sent (or TLS started), no EHLO/HELO yet */
	SMTPD_STATE_HELO,          /* EHLO/HELO done, no transaction */
	SMTPD_STATE_MAIL,          /* MAIL accepted, no recipient yet */
	SMTPD_STATE_RCPT,          /* at least one recipient accepted */
	SMTPD_STATE_DATA,          /* reading the DATA text */
	SMTPD_STATE_CHUNKING,      /* between BDAT chunks */
	SMTPD_STATE_BDAT,          /* reading the octets of a BDAT chunk */
	SMTPD_STATE_AUTH,          /* AUTH exchange: waiting for a SASL response line */
	SMTPD_STATE_AUTH_CHECK,    /* password check running on a worker */
	SMTPD_STATE_COMMIT,        /* spool commit in flight; input stays buffered */
	SMTPD_STATE_CLOSING,       /* last reply being written, then the session is freed */
	SMTPD_STATE_COUNT,
};

#define SMTPD_IN(st) (1u << (st))

/* Command flags. */
#define SMTPD_CMD_PRE_TLS 0x1u       /* allowed before TLS on a listener that requires TLS */
#define SMTPD_CMD_NEEDS_AUTH 0x2u    /* refused before AUTH on a listener with auth: required */
#define SMTPD_CMD_LAST_IN_GROUP 0x4u /* RFC 2920 3.1: replies are flushed after this command */

/* An error reply chosen by a check function. */
struct smtpd_reply {
	int code;
	const char *enh;
	const char *text;
};

/* Arguments parsed by a check function for its proceed function. */
union smtpd_args {
	struct smtp_mail_args mail;
	struct smtp_rcpt_args rcpt;
	struct {
		uint64_t size;
		bool last;
	} bdat;
	struct {
		char mech[21];
		const char *ir; /* into the command line */
		size_t ir_len;
	} auth;
	char helo[SMTP_DOMAIN_MAX + 1];
};

struct smtpd_session;

/* Pure validation: false with *r filled when the command must be refused. */
typedef bool (*smtpd_check_fn)(const struct smtpd_session *s, const struct smtp_cmd *cmd,
    union smtpd_args *a, struct smtpd_reply *r);
/* Act on a valid command; replies itself; may suspend the session. */
typedef void (*smtpd_proceed_fn)(struct smtpd_session *s, const struct smtp_cmd *cmd,
    union smtpd_args *a);

struct smtpd_cmd {
	const char *verb;
	unsigned states; /* SMTPD_IN() bits */
	unsigned flags;  /* SMTPD_CMD_* */
	smtpd_check_fn check; /* NULL: nothing to check */
	smtpd_proceed_fn proceed;
};

/* The row for verb, or NULL (SMTP_VERB_UNKNOWN). */
const struct smtpd_cmd *smtpd_cmd_find(enum smtp_verb verb);
const char *smtpd_state_name(enum smtpd_state st);

/* The mail transaction; everything in it is freed by smtpd_tx_reset(). */
struct smtpd_tx {
	struct spool_env env; /* from, ret, envid, body, smtputf8, rcpts */
	bool active;          /* MAIL accepted */
	struct buf body;      /* canonical body received so far */
	struct body_scan scan;
	bool chunking;        /* BDAT used in this transaction */
	uint64_t chunk_left;  /* octets of the current BDAT chunk still to read */
	bool chunk_last;
};

struct smtpd_commit;
struct smtpd_auth_job;

struct smtpd_session {
	TAILQ_ENTRY(smtpd_session) link;
	struct smtpd *sd;
	unsigned long id;
	struct conf *conf;              /* referenced */
	const struct conf_listener *lst; /* inside conf */
	SSL_CTX *tls_ctx;               /* referenced; NULL when none */
	struct bufferevent *bev;
	struct event *timer;            /* greeting pause, then the close poll */
	struct event *pregreet;         /* first readability after an immediate greeting */
	uint64_t greet_ns;              /* CLOCK_REALTIME just before the greeting was queued */
	struct conn_lines lines;
	struct buf line;
	struct buf out;                 /* replies not yet handed to the socket */
	struct sockaddr_storage peer;
	char ip[INET6_ADDRSTRLEN];
	enum smtpd_state state;
	bool in_tls;
	bool esmtp;
	bool tls_required;              /* starttls listener with auth required */
	bool processing;                /* inside smtpd_session_process() */
	bool local;                     /* on the sendmail socket: relay allowed, uid in Received: */
	unsigned local_uid;             /* the peer's uid (SO_PEERCRED) when local */
	char tls_desc[128];
	char helo[SMTP_DOMAIN_MAX + 1];
	char *auth_user;
	/* AUTH exchange in progress */
	int auth_mech;                  /* SMTPD_AUTH_* */
	int auth_step;
	struct buf auth_user_buf;
	struct smtpd_auth_job *auth_job;
	struct smtpd_commit *commit;
	uint64_t skip_octets;           /* octets of a refused BDAT chunk still to discard */
	unsigned errors, ncommands, nmessages;
	unsigned close_polls;
	struct smtpd_tx tx;
};

/* Sizes of the per-IP / per-user AUTH failure table. */
#define SMTPD_THROTTLE_SLOTS 512

struct smtpd_throttle_slot {
	char key[SMTP_PATH_MAX + 3]; /* "i:<ip>" or "u:<user>"; "" when free */
	uint64_t window_start_ms;
	unsigned count;
};

struct smtpd_listen {
	struct smtpd *sd;
	struct evconnlistener *lev;
	size_t index; /* into sd->conf->listeners, or SMTPD_LOCAL */
};

/* Listener index of the sendmail socket (smtpd_params.local_fd). */
#define SMTPD_LOCAL ((size_t)-1)

struct smtpd {
	struct event_base *base;
	struct conf *conf;
	SSL_CTX *tls_ctx;
	struct spool *spool;
	struct id_gen *ids;
	smtpd_queued_fn queued_cb;
	void *cb_arg;
	struct jobs_pool *auth_pool;
	unsigned greet_delay_ms;
	struct smtpd_listen *listens;
	size_t n_listens;
	struct smtpd_listen local;          /* the sendmail socket; local.lev NULL when none */
	struct conf_listener local_lst;     /* its policy: no TLS, no AUTH, relay for local users */
	TAILQ_HEAD(, smtpd_session) sessions;
	size_t n_sessions;
	unsigned long next_id;
	LIST_HEAD(, smtpd_commit) commits;  /* in flight */
	LIST_HEAD(, smtpd_auth_job) auth_jobs;
	struct smtpd_throttle_slot *throttle;
	char *dummy_hash; /* a crypt setting used for unknown users, so timing tells nothing */
	bool shutting;
	smtpd_done_fn done_cb;
	void *done_arg;
	struct event *done_ev;
	struct event *pause_ev; /* re-enables the listeners after an accept error */
	void (*on_auth_failure)(void *arg, const char *client, const char *user, const char *why);
	void *on_auth_failure_arg;
};

/* smtpd.c */
void smtpd_session_gone(struct smtpd *sd, struct smtpd_session *s);
/* A commit completed (with or without its session): shutdown may be complete. */
void smtpd_commit_finished(struct smtpd *sd);
/* Client address text; v4-mapped IPv6 shown as IPv4; "local" for Unix sockets. */
void smtpd_sockaddr_text(const struct sockaddr *sa, char *out, size_t size);

/* smtpd_session.c */
/* listener_index: into sd->conf->listeners, or SMTPD_LOCAL for the sendmail socket. */
struct smtpd_session *smtpd_session_new(struct smtpd *sd, evutil_socket_t fd,
    const struct sockaddr *sa, int salen, size_t listener_index);
/* Append one reply line (enh may be NULL). */
HK_PRINTF(4, 5) void smtpd_reply(struct smtpd_session *s, int code, const char *enh,
    const char *fmt, ...);
/* A reply that refuses a command: counts toward limits.max_errors (421 4.7.0 and close). */
void smtpd_reply_error(struct smtpd_session *s, int code, const char *enh, const char *text);
void smtpd_session_flush(struct smtpd_session *s);
/* Send what is pending, then free the session. */
void smtpd_session_close(struct smtpd_session *s);
void smtpd_enter_state(struct smtpd_session *s, enum smtpd_state st);
/* Run buffered input again after a suspension (commit or password check) ended. */
void smtpd_session_resume(struct smtpd_session *s);
/* Shutdown: 421 4.3.2 unless a commit is in flight (then after its reply). */
void smtpd_session_shutdown(struct smtpd_session *s);
void smtpd_session_destroy(struct smtpd_session *s);
void smtpd_tx_reset(struct smtpd_session *s);

/* smtpd_data.c */
bool smtpd_data_check(const struct smtpd_session *s, const struct smtp_cmd *cmd,
    union smtpd_args *a, struct smtpd_reply *r);
void smtpd_data_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a);
bool smtpd_bdat_check(const struct smtpd_session *s, const struct smtp_cmd *cmd,
    union smtpd_args *a, struct smtpd_reply *r);
void smtpd_bdat_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a);
/* Size argument of a BDAT line even when the command is refused (its octets must be skipped). */
bool smtpd_bdat_size(const struct smtp_cmd *cmd, uint64_t *size);
/* Consume DATA text or BDAT octets from in; false when more input is needed. */
bool smtpd_data_feed(struct smtpd_session *s, struct evbuffer *in);
/* Session going away with a commit in flight: the commit only logs when it completes. */
void smtpd_commit_detach(struct smtpd_commit *c);
void smtpd_commits_orphan(struct smtpd *sd);

/* smtpd_auth.c */
bool smtpd_auth_check(const struct smtpd_session *s, const struct smtp_cmd *cmd,
    union smtpd_args *a, struct smtpd_reply *r);
void smtpd_auth_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a);
/* A SASL response line in SMTPD_STATE_AUTH. */
void smtpd_auth_line(struct smtpd_session *s, const char *line, size_t len);
/* True when AUTH may be advertised and used now. */
bool smtpd_auth_is_offered(const struct smtpd_session *s);
void smtpd_auth_job_detach(struct smtpd_auth_job *j);
void smtpd_auth_jobs_orphan(struct smtpd *sd);
/* Prepare the dummy hash; -1 when crypt cannot make a setting. */
int smtpd_auth_init(struct smtpd *sd, struct hk_err *err);
void smtpd_auth_fini(struct smtpd *sd);
/* Per-minute failure count of key ("i:1.2.3.4" / "u:name") and recording a failure. */
bool smtpd_throttle_is_over(struct smtpd *sd, const char *key, unsigned limit);
/* Failures of key in its current window. */
unsigned smtpd_throttle_count(struct smtpd *sd, const char *key);
void smtpd_throttle_fail(struct smtpd *sd, const char *key);

#endif
