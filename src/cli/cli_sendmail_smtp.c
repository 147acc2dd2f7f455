/*
 * cli_sendmail_smtp.c - SMTP client of the sendmail socket, and the -bs relay
 * (cli_sendmail_smtp.h).
 *
 * Replies are read with a bounded line reader (SENDMAIL_SMTP_LINE_MAX per line, at most
 * SENDMAIL_SMTP_REPLY_LINES lines); anything malformed counts as the daemon not talking, so the
 * caller falls back to the maildrop. Socket timeouts (SO_RCVTIMEO/SO_SNDTIMEO) bound every wait.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli_sendmail_smtp.h"
#include "../proto/smtp_cmd.h"
#include "../util/str.h"
#include "../util/xtext.h"
#include "../util/poison.h"

#define SENDMAIL_SMTP_LINE_MAX 2048
#define SENDMAIL_SMTP_REPLY_LINES 64
/* RFC 5321 4.5.3.2: 5 minutes for a command reply, 10 for the reply to the final dot. */
#define SENDMAIL_SMTP_CMD_TIMEOUT_S 300
#define SENDMAIL_SMTP_DOT_TIMEOUT_S 600
#define SENDMAIL_SMTP_IO_SIZE 65536
/*
 * -bs after the client's end of input: the daemon still answers what it has read (a commit may
 * be in flight), and closes after QUIT. A client that ends without QUIT is let go after this idle
 * time; half-closing the socket instead would make the daemon drop its pending replies.
 */
#define SENDMAIL_SMTP_DRAIN_MS 30000

struct smc {
	int fd;
	char buf[SENDMAIL_SMTP_IO_SIZE];
	size_t off, len;
};

int
sendmail_smtp_connect(const char *path)
{
	struct sockaddr_un sun;
	size_t n = strlen(path);
	int fd;

	if (n >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (const struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void
smc_timeout(int fd, int optname, int seconds)
{
	struct timeval tv = { seconds, 0 };

	/* Without the timeout a hung daemon only hangs us: not worth failing for. */
	(void)setsockopt(fd, SOL_SOCKET, optname, &tv, sizeof(tv));
}

static int
smc_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write to a descriptor that may be a pipe or a terminal (not a socket). */
static int
smc_fd_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One line including its LF into line (NUL-terminated); its length, or -1 (EOF, timeout, long). */
static ssize_t
smc_line(struct smc *c, char *line, size_t cap)
{
	size_t n = 0;

	for (;;) {
		while (c->off < c->len) {
			char ch = c->buf[c->off++];

			if (n + 1 >= cap)
				return -1;
			line[n++] = ch;
			if (ch == '\n') {
				line[n] = '\0';
				return (ssize_t)n;
			}
		}
		{
			ssize_t r = recv(c->fd, c->buf, sizeof(c->buf), 0);

			if (r == -1 && errno == EINTR)
				continue;
			if (r <= 0)
				return -1;
			c->off = 0;
			c->len = (size_t)r;
		}
	}
}

/*
 * Read one reply; its code, or -1 when the daemon closed, timed out or sent garbage. text gets
 * the lines without CRLF, joined by " / "; raw (optional) the bytes as received.
 */
static int
smc_reply(struct smc *c, struct buf *text, struct buf *raw)
{
	char line[SENDMAIL_SMTP_LINE_MAX];
	int code = -1, i;

	buf_reset(text);
	for (i = 0; i < SENDMAIL_SMTP_REPLY_LINES; i++) {
		ssize_t n = smc_line(c, line, sizeof(line));
		size_t k;
		int this;

		if (n < 5 || line[n - 2] != '\r')
			return -1;
		if (raw != NULL)
			buf_append(raw, line, (size_t)n);
		for (k = 0; k < 3; k++) {
			if (line[k] < '0' || line[k] > '9')
				return -1;
		}
		this = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (this < 200 || this > 599 || (code != -1 && this != code))
			return -1;
		code = this;
		if (text->len > 0)
			buf_append_str(text, " / ");
		buf_append(text, line, (size_t)n - 2);
		if (line[3] == ' ' || line[3] == '\r')
			return code;
		if (line[3] != '-')
			return -1;
	}
	return -1;
}

static int
smc_cmd(struct smc *c, const struct buf *cmd, struct buf *text)
{
	if (smc_write_all(c->fd, cmd->ptr, cmd->len) == -1)
		return -1;
	return smc_reply(c, text, NULL);
}

void
sendmail_smtp_stuff(const char *body, size_t len, struct buf *out)
{
	size_t i = 0;

	buf_reserve(out, len + len / 64 + 8);
	while (i < len) {
		const char *nl = memchr(body + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - body) + 1 : len;

		/* RFC 5321 4.5.2: a line starting with a dot gets one more. */
		if (body[i] == '.')
			buf_append(out, ".", 1);
		buf_append(out, body + i, end - i);
		i = end;
	}
	if (len > 0 && body[len - 1] != '\n')
		buf_append_str(out, "\r\n");
	buf_append_str(out, ".\r\n");
}

int
sendmail_smtp_exit_code(int code, const char *verb)
{
	if (code >= 400 && code < 500)
		return EX_TEMPFAIL;
	if (strcmp(verb, "RCPT") == 0)
		return EX_NOUSER;
	if (strcmp(verb, "MAIL") == 0 || strcmp(verb, "DATA") == 0)
		return EX_DATAERR;
	return EX_UNAVAILABLE;
}

static bool
sendmail_smtp_has_8bit(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if ((unsigned char)p[i] >= 0x80)
			return true;
	}
	return false;
}

static bool
sendmail_smtp_needs_utf8(const struct spool_env *env)
{
	size_t i;

	if (sendmail_smtp_has_8bit(env->from, strlen(env->from)))
		return true;
	for (i = 0; i < env->n_rcpts; i++) {
		if (sendmail_smtp_has_8bit(env->rcpts[i].addr, strlen(env->rcpts[i].addr)))
			return true;
	}
	return false;
}

static void
sendmail_smtp_mail_cmd(const struct spool_env *env, const char *body, size_t len, struct buf *cmd)
{
	buf_reset(cmd);
	buf_printf(cmd, "MAIL FROM:<%s> SIZE=%zu", env->from, len);
	if (sendmail_smtp_has_8bit(body, len))
		buf_append_str(cmd, " BODY=8BITMIME");
	if (sendmail_smtp_needs_utf8(env))
		buf_append_str(cmd, " SMTPUTF8");
	if (env->ret == SMTP_RET_FULL)
		buf_append_str(cmd, " RET=FULL");
	else if (env->ret == SMTP_RET_HDRS)
		buf_append_str(cmd, " RET=HDRS");
	if (env->envid != NULL) {
		buf_append_str(cmd, " ENVID=");
		xtext_encode(cmd, env->envid, strlen(env->envid));
	}
	buf_append_str(cmd, "\r\n");
}

static void
sendmail_smtp_rcpt_cmd(const struct spool_rcpt *r, struct buf *cmd)
{
	static const struct {
		unsigned bit;
		const char *word;
	} words[] = {
		{ SMTP_NOTIFY_NEVER, "NEVER" }, { SMTP_NOTIFY_SUCCESS, "SUCCESS" },
		{ SMTP_NOTIFY_FAILURE, "FAILURE" }, { SMTP_NOTIFY_DELAY, "DELAY" },
	};
	const char *sep = " NOTIFY=";
	size_t k;

	buf_reset(cmd);
	buf_printf(cmd, "RCPT TO:<%s>", r->addr);
	for (k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
		if (r->notify & words[k].bit) {
			buf_printf(cmd, "%s%s", sep, words[k].word);
			sep = ",";
		}
	}
	buf_append_str(cmd, "\r\n");
}

static void
sendmail_smtp_refused(const char *verb, const char *arg, const struct buf *text)
{
	fprintf(stderr, "sendmail: mail not accepted: %s%s%s: %s\n", verb, arg[0] ? " " : "", arg,
	    text->ptr);
}

enum sendmail_smtp_result
sendmail_smtp_submit(int fd, const char *helo, const struct spool_env *env, const char *body,
    size_t len, int *exit_code, struct buf *qid)
{
	static struct smc c;
	struct buf cmd = BUF_INIT, text = BUF_INIT, data = BUF_INIT;
	enum sendmail_smtp_result res = SENDMAIL_SMTP_UNAVAILABLE;
	const char *verb = "MAIL", *arg = "";
	char arg_buf[SMTP_PATH_MAX + 8];
	const char *q;
	size_t i;
	int code;

	memset(&c, 0, sizeof(c));
	c.fd = fd;
	*exit_code = EX_OK;
	smc_timeout(fd, SO_RCVTIMEO, SENDMAIL_SMTP_CMD_TIMEOUT_S);
	smc_timeout(fd, SO_SNDTIMEO, SENDMAIL_SMTP_CMD_TIMEOUT_S);
	/* Greeting and EHLO: a daemon that is stopping or full says 421; the maildrop waits. */
	if (smc_reply(&c, &text, NULL) != 220)
		goto out;
	buf_printf(&cmd, "EHLO %s\r\n", helo);
	if (smc_cmd(&c, &cmd, &text) != 250)
		goto out;
	sendmail_smtp_mail_cmd(env, body, len, &cmd);
	code = smc_cmd(&c, &cmd, &text);
	if (code != 250)
		goto refused;
	for (i = 0; i < env->n_rcpts; i++) {
		sendmail_smtp_rcpt_cmd(&env->rcpts[i], &cmd);
		code = smc_cmd(&c, &cmd, &text);
		if (code != 250 && code != 251) {
			verb = "RCPT";
			if (str_copy(arg_buf, sizeof(arg_buf), env->rcpts[i].addr) == 0)
				arg = arg_buf;
			goto refused;
		}
	}
	verb = "DATA";
	buf_reset(&cmd);
	buf_append_str(&cmd, "DATA\r\n");
	code = smc_cmd(&c, &cmd, &text);
	if (code != 354)
		goto refused;
	sendmail_smtp_stuff(body, len, &data);
	if (smc_write_all(fd, data.ptr, data.len) == -1)
		goto out;
	smc_timeout(fd, SO_RCVTIMEO, SENDMAIL_SMTP_DOT_TIMEOUT_S);
	code = smc_reply(&c, &text, NULL);
	if (code != 250)
		goto refused;
	q = strstr(text.ptr, "queued as ");
	if (q != NULL && qid != NULL) {
		q += strlen("queued as ");
		buf_append(qid, q, strcspn(q, " \r\n"));
	}
	res = SENDMAIL_SMTP_QUEUED;
	buf_reset(&cmd);
	buf_append_str(&cmd, "QUIT\r\n");
	(void)smc_cmd(&c, &cmd, &text);
	goto out;
refused:
	/* No reply, or 421 (the daemon is closing this session): nothing was queued. */
	if (code == -1 || code == 421)
		goto out;
	sendmail_smtp_refused(verb, arg, &text);
	*exit_code = sendmail_smtp_exit_code(code, verb);
	res = SENDMAIL_SMTP_REFUSED;
	buf_reset(&cmd);
	buf_append_str(&cmd, "QUIT\r\n");
	(void)smc_cmd(&c, &cmd, &text);
out:
	close(fd);
	buf_fini(&cmd);
	buf_fini(&text);
	buf_fini(&data);
	return res;
}

static void
sendmail_smtp_not_running(int out_fd)
{
	static const char msg[] = "421 4.3.0 hikyaku is not running\r\n";

	(void)smc_fd_write_all(out_fd, msg, sizeof(msg) - 1);
}

int
sendmail_smtp_relay(int sock, int in_fd, int out_fd)
{
	static struct smc c;
	static char io[SENDMAIL_SMTP_IO_SIZE];
	struct buf text = BUF_INIT, raw = BUF_INIT;
	struct pollfd pfd[2];
	bool in_open = true;
	int code, rc = EX_OK;

	memset(&c, 0, sizeof(c));
	c.fd = sock;
	smc_timeout(sock, SO_RCVTIMEO, SENDMAIL_SMTP_CMD_TIMEOUT_S);
	code = smc_reply(&c, &text, &raw);
	if (code == -1) {
		sendmail_smtp_not_running(out_fd);
		rc = EX_TEMPFAIL;
		goto out;
	}
	if (code != 220)
		rc = EX_TEMPFAIL;
	if (smc_fd_write_all(out_fd, raw.ptr, raw.len) == -1 ||
	    (c.off < c.len && smc_fd_write_all(out_fd, c.buf + c.off, c.len - c.off) == -1)) {
		rc = EX_IOERR;
		goto out;
	}
	/* From here on the session is the client's; the daemon's own timeouts end it. */
	smc_timeout(sock, SO_RCVTIMEO, 0);
	for (;;) {
		ssize_t n;

		pfd[0].fd = sock;
		pfd[0].events = POLLIN;
		pfd[1].fd = in_open ? in_fd : -1;
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		n = poll(pfd, 2, in_open ? -1 : SENDMAIL_SMTP_DRAIN_MS);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			rc = EX_OSERR;
			break;
		}
		if (n == 0)
			break;
		if (pfd[0].revents) {
			n = recv(sock, io, sizeof(io), 0);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0)
				break; /* the daemon ended the session (QUIT, timeout, error) */
			if (smc_fd_write_all(out_fd, io, (size_t)n) == -1) {
				rc = EX_IOERR;
				break;
			}
		}
		if (in_open && pfd[1].revents) {
			n = read(in_fd, io, sizeof(io));
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				in_open = false;
				continue;
			}
			if (smc_write_all(sock, io, (size_t)n) == -1)
				break;
		}
	}
out:
	close(sock);
	buf_fini(&text);
	buf_fini(&raw);
	return rc;
}
