/*
 * smtpc.h - the SMTP client: one connection to an upstream or MX host, one or more transactions
 * (DESIGN.md 7 "Client"). OpenSMTPD-style enter_state()/response() pairs with separate send and
 * receive cursors for PIPELINING.
 *
 * Life: smtpc_new() connects to one address and runs greeting, EHLO (HELO fallback), STARTTLS or
 * implicit TLS, AUTH; then ready_cb. smtpc_send() runs one transaction (MAIL, RCPTs, DATA or BDAT,
 * with PIPELINING when offered); tx_cb reports every reply. After tx_cb the session is idle again
 * (RSET sent when needed) and may take another transaction: connection reuse. smtpc_free() sends
 * QUIT when idle and closes. Every failure ends in fail_cb exactly once (and nothing after it).
 * Security: when tls is required (upstream tls: starttls or implicit), a missing or refused
 * STARTTLS, a failed handshake or (verify) a bad certificate or host name fails the session:
 * never plaintext, never AUTH in clear. Bytes after "220" to STARTTLS are dropped and EHLO is sent
 * again (RFC 3207). Replies are parsed by proto/smtp_reply (strict, bounded); a malformed reply
 * is a temporary failure. Lines sent are CRLF and dot-stuffed (RFC 5321 4.5.2).
 * Timeouts (DESIGN.md 7): connect 10 s, commands 60 s, after the final dot 10 min (settable).
 * Ownership: params and tx are copied; the body is borrowed until tx_cb runs.
 * Thread: loop thread only.
 */
#ifndef HK_SMTPC_H
#define HK_SMTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "../dns/dns.h"
#include "../proto/smtp_reply.h"
#include "../util/buf.h"

struct smtpc;

enum smtpc_tls_mode {
	SMTPC_TLS_NONE = 0,       /* plaintext only */
	/*
	 * STARTTLS when offered, no verification (MX default). Plaintext only when STARTTLS is not
	 * offered: a refused STARTTLS or a failed handshake fails the session (stage STARTTLS or
	 * TLS), so the caller may retry with SMTPC_TLS_NONE or move on.
	 */
	SMTPC_TLS_OPPORTUNISTIC,
	SMTPC_TLS_STARTTLS,       /* STARTTLS required */
	SMTPC_TLS_IMPLICIT,       /* TLS from the first byte (port 465) */
};

/* Where a session or transaction stopped. */
enum smtpc_stage {
	SMTPC_STAGE_CONNECT = 0,
	SMTPC_STAGE_GREETING,
	SMTPC_STAGE_EHLO,
	SMTPC_STAGE_STARTTLS,
	SMTPC_STAGE_TLS,   /* handshake or certificate */
	SMTPC_STAGE_AUTH,
	SMTPC_STAGE_MAIL,
	SMTPC_STAGE_RCPT,
	SMTPC_STAGE_DATA,  /* DATA command or BDAT chunks before the last */
	SMTPC_STAGE_DOT,   /* after the final dot / BDAT LAST */
	SMTPC_STAGE_RSET,
	SMTPC_STAGE_COUNT,
};

/* A failure that is not an SMTP reply. */
enum smtpc_local {
	SMTPC_LOCAL_NONE = 0,     /* an SMTP reply is given */
	SMTPC_LOCAL_REFUSED,      /* connection refused / unreachable */
	SMTPC_LOCAL_TIMEOUT,
	SMTPC_LOCAL_DISCONNECT,   /* peer closed or reset */
	SMTPC_LOCAL_TLS_FAILED,   /* handshake failed */
	SMTPC_LOCAL_CERT_INVALID, /* chain or host name verification failed (text says which) */
	SMTPC_LOCAL_STARTTLS_MISSING, /* TLS required, STARTTLS not offered */
	SMTPC_LOCAL_BAD_REPLY,    /* malformed reply */
	SMTPC_LOCAL_AUTH_UNSUPPORTED, /* credentials configured, no usable mechanism offered */
	SMTPC_LOCAL_TOO_BIG,      /* message exceeds the SIZE the server advertised */
	SMTPC_LOCAL_NEEDS_SMTPUTF8, /* tx needs SMTPUTF8, server lacks it */
	SMTPC_LOCAL_NEEDS_8BITMIME,
	SMTPC_LOCAL_BAD_ENVELOPE, /* control bytes or spaces in an address or parameter: not sent */
};

struct smtpc_failure {
	enum smtpc_stage stage;
	enum smtpc_local local;
	int code;        /* SMTP reply code, 0 with local failures */
	int enh_class, enh_subject, enh_detail; /* 0 when absent */
	char text[512];  /* reply text (first lines) or the local reason; log-safe after log_q */
};

/* What the server offered (valid from ready_cb on). */
struct smtpc_caps {
	bool esmtp, pipelining, size, chunking, smtputf8, eightbitmime, dsn, starttls;
	bool auth_plain, auth_login;
	uint64_t max_size; /* SIZE n, 0 when not given */
};

struct smtpc_params {
	struct event_base *base;
	struct sockaddr_storage addr; /* where to connect */
	socklen_t addr_len;
	const char *host;      /* name for SNI, certificate check and logs (copied) */
	const char *helo;      /* our EHLO name (copied) */
	enum smtpc_tls_mode tls;
	bool verify;           /* verify chain and host name (ignored for OPPORTUNISTIC) */
	/* Client context (ca_file loaded by the caller), up-referenced; NULL: one is made when TLS
	 * starts (the system trust store only with verify). */
	SSL_CTX *ssl_ctx;
	/*
	 * DANE (RFC 7672): the host's validated TLSA records. With n_tlsa > 0, tls must be
	 * SMTPC_TLS_STARTTLS and the certificate is checked against the records (DANE-TA(2) and
	 * DANE-EE(3); PKIX-TA/EE are unusable for SMTP, 3.1.3); when none is usable, TLS is still
	 * required but not authenticated (2.2). ssl_ctx, when given, must have DANE enabled.
	 */
	const struct dns_tlsa_record *tlsa;
	size_t n_tlsa;
	const char *username;  /* NULL: no AUTH */
	const char *password;  /* copied; wiped on free */
	uint64_t connect_timeout_ms, command_timeout_ms, dot_timeout_ms; /* 0: the defaults */
	unsigned long sess_id; /* for logs */
};

/* One recipient's outcome in a transaction. */
struct smtpc_rcpt_result {
	bool accepted;         /* RCPT 2xx and (with PIPELINING) the transaction went on */
	struct smtpc_failure fail; /* the RCPT reply when refused */
};

struct smtpc_tx {
	const char *mail_from;    /* "" for <> */
	uint64_t size;            /* SIZE= parameter when the server has SIZE */
	bool eightbit, smtputf8;  /* BODY=8BITMIME / SMTPUTF8 wanted */
	const char *ret;          /* "FULL"/"HDRS" or NULL (only with DSN) */
	const char *envid;        /* xtext or NULL (only with DSN) */
	size_t n_rcpts;
	const char *const *rcpts;
	const char *const *notify; /* per rcpt "FAILURE,DELAY" or NULL (only with DSN) */
	const char *const *orcpt;  /* per rcpt "rfc822;xtext" or NULL */
	const struct buf *body;    /* canonical CRLF, not dot-stuffed; borrowed until tx_cb */
};

/*
 * The transaction ended: ok when the final reply (after DATA's dot or BDAT LAST) was 2xx for at
 * least one accepted recipient. final is the reply to MAIL when it failed, else the final reply.
 * rcpts[i] per recipient. maybe_delivered: timeout or disconnect after the final dot.
 */
typedef void (*smtpc_tx_fn)(void *arg, bool ok, const struct smtpc_failure *final,
    const struct smtpc_rcpt_result *rcpts, bool maybe_delivered);
typedef void (*smtpc_ready_fn)(void *arg, const struct smtpc_caps *caps, const char *tls_desc);
/*
 * The session failed (before ready, between transactions, or inside one before its final dot:
 * then no tx_cb). When the session dies after the final dot or in the RSET that ends an aborted
 * transaction, tx_cb reports the transaction first (session no longer idle), then fail_cb runs
 * unless tx_cb freed the session.
 */
typedef void (*smtpc_fail_fn)(void *arg, const struct smtpc_failure *f);

struct smtpc *smtpc_new(const struct smtpc_params *p, smtpc_ready_fn ready_cb,
    smtpc_fail_fn fail_cb, void *arg);
/* Run one transaction; only when idle (after ready_cb or a tx_cb). */
void smtpc_send(struct smtpc *c, const struct smtpc_tx *tx, smtpc_tx_fn tx_cb);
bool smtpc_is_idle(const struct smtpc *c);
/* "TLSv1.3:TLS_AES_256_GCM_SHA384" or "" (valid while the session lives). */
const char *smtpc_tls(const struct smtpc *c);
/* The peer address as text "1.2.3.4" (for logs and events). */
const char *smtpc_peer(const struct smtpc *c);
/* QUIT when idle, then close; no callback runs after this. NULL is a no-op. */
void smtpc_free(struct smtpc *c);

/* A client SSL_CTX: TLS 1.2+, system trust store or ca_file. NULL with err text. */
SSL_CTX *smtpc_ssl_ctx_new(const char *ca_file, char *err, size_t errlen);

const char *smtpc_stage_name(enum smtpc_stage s);
const char *smtpc_local_name(enum smtpc_local l);

#endif
