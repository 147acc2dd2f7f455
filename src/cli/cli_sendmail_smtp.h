/*
 * cli_sendmail_smtp.h - the sendmail command's side of the daemon's sendmail socket
 * (sendmail.socket, DESIGN.md 11): submission as an SMTP client, and the -bs relay.
 *
 * Submission: EHLO, MAIL FROM (SMTPUTF8, BODY=8BITMIME, RET=, ENVID= as the envelope needs),
 * one RCPT per recipient (NOTIFY=), DATA with the body dot-stuffed, QUIT. Any failure before the
 * final dot leaves nothing queued, so the caller may fall back to the maildrop; a 4xx/5xx reply is
 * the daemon's verdict and is reported. When the connection fails after the final dot the outcome
 * is unknown: the caller falls back to the maildrop too, which may deliver twice, never zero times.
 * Thread: main thread of the sendmail command; blocking I/O with poll() deadlines.
 */
#ifndef HK_CLI_SENDMAIL_SMTP_H
#define HK_CLI_SENDMAIL_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "../spool/spool_format.h"
#include "../util/buf.h"

enum sendmail_smtp_result {
	SENDMAIL_SMTP_QUEUED,      /* 250 after the data */
	SENDMAIL_SMTP_UNAVAILABLE, /* daemon not there or not talking: use the maildrop */
	SENDMAIL_SMTP_REFUSED,     /* the daemon answered 4xx/5xx (printed on stderr) */
};

/*
 * Connect to the Unix socket at path. Returns the fd, or -1 with errno (ENOENT, ECONNREFUSED,
 * EACCES ...: the daemon is not running or not reachable).
 */
int sendmail_smtp_connect(const char *path);

/*
 * Submit env (from, rcpts with notify, ret, envid) and body[0..len) (CRLF, not dot-stuffed) on fd,
 * which is closed. helo names this host. On SENDMAIL_SMTP_REFUSED *exit_code is the sysexits.h
 * code; on SENDMAIL_SMTP_QUEUED qid gets the daemon's queue ID when it said one.
 */
enum sendmail_smtp_result sendmail_smtp_submit(int fd, const char *helo,
    const struct spool_env *env, const char *body, size_t len, int *exit_code, struct buf *qid);

/*
 * sendmail -bs: copy the daemon's greeting to out_fd, then relay in_fd -> sock and sock -> out_fd
 * byte for byte until the daemon closes. The greeting goes first so a client that writes its
 * whole session at once is not taken for an early talker. Returns a sysexits.h code (0 when the
 * daemon closed the session, 75 when it went away or did not greet).
 */
int sendmail_smtp_relay(int sock, int in_fd, int out_fd);

/* Pure helpers (unit tests). */
/* Append body[0..len) to out with RFC 5321 4.5.2 dot-stuffing, ending in CRLF "." CRLF. */
void sendmail_smtp_stuff(const char *body, size_t len, struct buf *out);
/* sysexits.h code for a refusal: code 4xx -> 75; 5xx to RCPT -> 67, to MAIL/DATA -> 65, else 69. */
int sendmail_smtp_exit_code(int code, const char *verb);

#endif
