/*
 * cli_sendmail.c - hikyaku sendmail (also run as "sendmail"): the sendmail-compatible command.
 *
 *   sendmail [-t] [-i] [-oi] [-f ADDR] [-F NAME] [-N DSN] [-R RET] [-V ENVID] [-bm|-bp|-bs]
 *            [-q[TIME]] [--] [RCPT...]
 *
 * The message on standard input is read by proto/sendmail_msg (LF to CRLF, Bcc removed, -t
 * recipients, From/Date/Message-ID added), then submitted over the daemon's sendmail socket
 * (sendmail.socket, cli_sendmail_smtp.h). When the daemon is not there (or stops talking before
 * the message is queued) it is written to the spool's maildrop/ instead (fsync'ed file and
 * directory) before exit 0; the daemon picks it up (spool/maildrop.h). -bs relays standard input
 * and output to the socket and needs the daemon.
 * Exit codes (sysexits.h): 64 usage, 65 bad message or address, 67 recipient refused by the
 * daemon, 69 refused for another reason, 73 maildrop cannot be written, 75 temporary (disk full,
 * daemon's 4xx, -bs without the daemon), 77 queue not readable (-bp), 78 configuration.
 * Thread: main thread; no daemon state.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_sendmail_smtp.h"
#include "../conf/conf.h"
#include "../proto/addr.h"
#include "../proto/sendmail_msg.h"
#include "../spool/maildrop.h"
#include "../spool/spool_format.h"
#include "../util/clock.h"
#include "../util/fsops.h"
#include "../util/id.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define SENDMAIL_NAME_MAX 256 /* -F */

enum sendmail_mode { SENDMAIL_MODE_DELIVER, SENDMAIL_MODE_LIST, SENDMAIL_MODE_SMTP,
	SENDMAIL_MODE_QUEUE_RUN, SENDMAIL_MODE_QUEUE_EVERY };

struct sendmail_args {
	enum sendmail_mode mode;
	bool extract;    /* -t */
	bool dot_data;   /* -i, -oi */
	const char *from; /* -f, -r; NULL: login@hostname */
	const char *name; /* -F */
	unsigned notify; /* -N */
	enum smtp_ret ret; /* -R */
	const char *envid; /* -V */
	char **rcpts;    /* operands */
	int n_rcpts;
};

static void
sendmail_usage(void)
{
	fprintf(stderr, "usage: sendmail [-t] [-i] [-oi] [-f ADDR] [-F NAME] [-N DSN] [-R full|hdrs] "
	    "[-V ENVID] [-bm|-bp|-bs] [-q] [-c FILE] [--] [RCPT...]\n");
}

static int
sendmail_parse_notify(const char *s, unsigned *out)
{
	const char *p = s;

	*out = 0;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (str_eq_ci(p, n, "never"))
			*out |= SMTP_NOTIFY_NEVER;
		else if (str_eq_ci(p, n, "success"))
			*out |= SMTP_NOTIFY_SUCCESS;
		else if (str_eq_ci(p, n, "failure"))
			*out |= SMTP_NOTIFY_FAILURE;
		else if (str_eq_ci(p, n, "delay"))
			*out |= SMTP_NOTIFY_DELAY;
		else
			return -1;
		p += n;
		if (*p == ',')
			p++;
	}
	/* RFC 3461 4.1: NEVER stands alone. */
	return *out == 0 || ((*out & SMTP_NOTIFY_NEVER) && *out != SMTP_NOTIFY_NEVER) ? -1 : 0;
}

/* Value of an option given as "-fADDR" or "-f ADDR"; NULL when missing. */
static const char *
sendmail_optarg(int argc, char **argv, int *i, size_t optlen)
{
	if (argv[*i][optlen] != '\0')
		return argv[*i] + optlen;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

/* Parse the options; returns EX_OK or EX_USAGE (with a message). */
static int
sendmail_parse_args(int argc, char **argv, struct sendmail_args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		const char *s = argv[i], *v;

		if (strcmp(s, "--") == 0) {
			i++;
			break;
		}
		if (s[0] != '-' || s[1] == '\0')
			break;
		if (strcmp(s, "-t") == 0) {
			a->extract = true;
		} else if (strcmp(s, "-i") == 0 || strcmp(s, "-oi") == 0) {
			a->dot_data = true;
		} else if (s[1] == 'f' || s[1] == 'r') {
			if ((a->from = sendmail_optarg(argc, argv, &i, 2)) == NULL)
				goto missing;
		} else if (s[1] == 'F') {
			if ((a->name = sendmail_optarg(argc, argv, &i, 2)) == NULL)
				goto missing;
		} else if (s[1] == 'N') {
			if ((v = sendmail_optarg(argc, argv, &i, 2)) == NULL)
				goto missing;
			if (sendmail_parse_notify(v, &a->notify) == -1) {
				fprintf(stderr, "sendmail: bad -N value \"%s\" (never, or any of "
				    "success,failure,delay)\n", v);
				return EX_USAGE;
			}
		} else if (s[1] == 'R') {
			if ((v = sendmail_optarg(argc, argv, &i, 2)) == NULL)
				goto missing;
			if (strcasecmp(v, "full") == 0)
				a->ret = SMTP_RET_FULL;
			else if (strcasecmp(v, "hdrs") == 0)
				a->ret = SMTP_RET_HDRS;
			else {
				fprintf(stderr, "sendmail: bad -R value \"%s\" (full or hdrs)\n", v);
				return EX_USAGE;
			}
		} else if (s[1] == 'V') {
			if ((a->envid = sendmail_optarg(argc, argv, &i, 2)) == NULL)
				goto missing;
		} else if (strcmp(s, "-bm") == 0) {
			a->mode = SENDMAIL_MODE_DELIVER;
		} else if (strcmp(s, "-bp") == 0) {
			a->mode = SENDMAIL_MODE_LIST;
		} else if (strcmp(s, "-bs") == 0) {
			a->mode = SENDMAIL_MODE_SMTP;
		} else if (strcmp(s, "-q") == 0) {
			a->mode = SENDMAIL_MODE_QUEUE_RUN;
		} else if (s[1] == 'q') {
			/* -qTIME (a queue run every TIME) and -qI/-qR/-qS selections */
			a->mode = SENDMAIL_MODE_QUEUE_EVERY;
		} else if (s[1] == 'o' || strcmp(s, "-U") == 0 || strcmp(s, "-v") == 0 ||
		    strcmp(s, "-n") == 0 || strcmp(s, "-G") == 0 || strncmp(s, "-B", 2) == 0) {
			/* Delivery-mode, error-mode and similar options of the original: no effect
			 * here (-B takes its value attached, as "-B8BITMIME"). */
		} else {
			fprintf(stderr, "sendmail: unknown option %s\n", s);
			sendmail_usage();
			return EX_USAGE;
		}
	}
	a->rcpts = argv + i;
	a->n_rcpts = argc - i;
	return EX_OK;
missing:
	fprintf(stderr, "sendmail: option %s needs a value\n", argv[i]);
	sendmail_usage();
	return EX_USAGE;
}


/* "<x>" -> "x"; the rest unchanged. */
static void
sendmail_strip_angle(const char **p, size_t *n)
{
	while (*n > 0 && (**p == ' ' || **p == '\t')) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
		(*n)--;
	if (*n >= 2 && (*p)[0] == '<' && (*p)[*n - 1] == '>') {
		(*p)++;
		*n -= 2;
	}
}

/* Add each address of a command-line operand ("a@x" or "a@x, <b@y>") to env; -1 if bad. */
static int
sendmail_add_operand(struct spool_env *env, const char *arg, unsigned notify, size_t max)
{
	const char *p = arg;

	while (*p) {
		size_t n = strcspn(p, ","), k, alen;
		const char *a = p;
		struct addr_parts parts;
		const char *why = NULL;
		bool dup = false;

		p += n;
		if (*p == ',')
			p++;
		alen = n;
		sendmail_strip_angle(&a, &alen);
		if (alen == 0)
			continue;
		if (addr_parse(a, alen, ADDR_ALLOW_UTF8, &parts, &why) != ADDR_OK) {
			fprintf(stderr, "sendmail: bad recipient address \"%.*s\": %s\n", (int)alen, a,
			    why ? why : "invalid");
			return -1;
		}
		for (k = 0; k < env->n_rcpts; k++)
			dup = dup || str_eq_ci(a, alen, env->rcpts[k].addr);
		if (dup)
			continue;
		if (max && env->n_rcpts >= max) {
			fprintf(stderr, "sendmail: more than %zu recipients\n", max);
			return -1;
		}
		{
			char *copy = xstrndup(a, alen);

			spool_env_add_rcpt(env, copy, notify, NULL);
			free(copy);
		}
	}
	return 0;
}

/* Read all of standard input, at most max bytes (more: -1 with *too_big). */
static int
sendmail_read_stdin(struct buf *in, size_t max, bool *too_big)
{
	*too_big = false;
	if (fsops_read_all(STDIN_FILENO, in, max + 1) == -1) {
		*too_big = errno == EFBIG;
		return -1;
	}
	if (in->len > max) {
		*too_big = true;
		return -1;
	}
	return 0;
}

/* Sender address: -f (without <>; "<>" is the null sender), else login@hostname. */
static int
sendmail_sender(const struct sendmail_args *a, const struct conf *c, struct buf *out)
{
	const char *p = a->from;
	size_t n;

	if (p != NULL) {
		struct addr_parts parts;
		const char *why = NULL;

		n = strlen(p);
		sendmail_strip_angle(&p, &n);
		if (n > 0 && addr_parse(p, n, ADDR_ALLOW_UTF8, &parts, &why) != ADDR_OK) {
			fprintf(stderr, "sendmail: bad sender address \"%s\": %s\n", a->from,
			    why ? why : "invalid");
			return -1;
		}
		buf_append(out, p, n);
		return 0;
	}
	{
		struct passwd *pw = getpwuid(geteuid());
		char host[256];
		const char *h = c->hostname;

		if (h == NULL || h[0] == '\0') {
			if (gethostname(host, sizeof(host)) == -1)
				host[0] = '\0';
			host[sizeof(host) - 1] = '\0';
			h = host[0] ? host : "localhost";
		}
		buf_printf(out, "%s@%s", pw && pw->pw_name ? pw->pw_name : "nobody", h);
	}
	return 0;
}

static int
sendmail_tz_minutes(time_t t)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL)
		return 0;
	return (int)(tm.tm_gmtoff / 60);
}

/*
 * Submit through the daemon's socket: true when that settled it (*rc: 0 queued, or the refusal's
 * exit code), false when the maildrop must take the message (no daemon, or it stopped talking).
 */
static bool
sendmail_via_socket(const struct conf *c, const struct spool_env *env, const char *body,
    size_t len, int *rc)
{
	const char *helo = c->hostname != NULL && c->hostname[0] != '\0' ? c->hostname : "localhost";
	int fd;

	if (c->sendmail_socket == NULL)
		return false;
	fd = sendmail_smtp_connect(c->sendmail_socket);
	if (fd == -1)
		return false;
	switch (sendmail_smtp_submit(fd, helo, env, body, len, rc, NULL)) {
	case SENDMAIL_SMTP_QUEUED:
		*rc = EX_OK;
		return true;
	case SENDMAIL_SMTP_REFUSED:
		return true;
	case SENDMAIL_SMTP_UNAVAILABLE:
	default:
		*rc = EX_OK;
		return false;
	}
}

/* -bs: the session is the daemon's; without it, a 421 greeting says why. */
static int
sendmail_smtp_session(const struct conf *c)
{
	int fd = c->sendmail_socket != NULL ? sendmail_smtp_connect(c->sendmail_socket) : -1;

	/* A client that goes away must not kill us mid-write: EPIPE is handled. */
	signal(SIGPIPE, SIG_IGN);
	if (fd == -1) {
		static const char msg[] = "421 4.3.0 hikyaku is not running\r\n";

		if (fsops_write_all(STDOUT_FILENO, msg, sizeof(msg) - 1) == -1)
			return EX_IOERR;
		return EX_TEMPFAIL;
	}
	return sendmail_smtp_relay(fd, STDIN_FILENO, STDOUT_FILENO);
}

static int
sendmail_deliver(const struct sendmail_args *a, const struct conf *c)
{
	struct sendmail_msg_opts mo;
	struct sendmail_msg m;
	struct spool_env env;
	struct buf in = BUF_INIT, sender = BUF_INIT, from_hdr = BUF_INIT, msgid = BUF_INIT;
	struct id_gen ids;
	struct hk_err err = { 0 };
	char name[MAILDROP_NAME_SIZE];
	const char *why = NULL;
	uint64_t now = clock_now_ms(), rnd = 0;
	size_t max_rcpts = c->limits.max_recipients, k;
	bool too_big;
	int rc = EX_OK, i;

	sendmail_msg_init(&m);
	memset(&env, 0, sizeof(env));
	if (a->name != NULL && strlen(a->name) > SENDMAIL_NAME_MAX) {
		fprintf(stderr, "sendmail: -F name longer than %d bytes\n", SENDMAIL_NAME_MAX);
		rc = EX_USAGE;
		goto out;
	}
	if (a->n_rcpts == 0 && !a->extract) {
		fprintf(stderr, "sendmail: no recipients given (name them, or use -t)\n");
		sendmail_usage();
		rc = EX_USAGE;
		goto out;
	}
	if (sendmail_sender(a, c, &sender) == -1) {
		rc = EX_DATAERR;
		goto out;
	}
	for (i = 0; i < a->n_rcpts; i++) {
		if (sendmail_add_operand(&env, a->rcpts[i], a->notify, max_rcpts) == -1) {
			rc = EX_DATAERR;
			goto out;
		}
	}
	if (sendmail_read_stdin(&in, (size_t)c->limits.max_message_size, &too_big) == -1) {
		if (too_big)
			fprintf(stderr, "sendmail: message larger than %llu bytes "
			    "(limits.max_message_size)\n", (unsigned long long)c->limits.max_message_size);
		else
			fprintf(stderr, "sendmail: cannot read the message: %s\n", strerror(errno));
		rc = too_big ? EX_DATAERR : EX_IOERR;
		goto out;
	}
	/* The From: address: the sender, or the login when the sender is null. */
	if (sender.len > 0) {
		buf_append(&from_hdr, sender.ptr, sender.len);
	} else {
		struct sendmail_args b = *a;

		b.from = NULL;
		(void)sendmail_sender(&b, c, &from_hdr);
	}
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd = now ^ ((uint64_t)getpid() << 20);
	buf_printf(&msgid, "<%llx.%016llx@%s>", (unsigned long long)now,
	    (unsigned long long)rnd, strrchr(from_hdr.ptr, '@') + 1);
	memset(&mo, 0, sizeof(mo));
	mo.extract_rcpts = a->extract;
	mo.dot_is_data = a->dot_data;
	mo.from_addr = from_hdr.ptr;
	mo.from_name = a->name;
	mo.now = (int64_t)(now / 1000);
	mo.tz_minutes = sendmail_tz_minutes((time_t)(now / 1000));
	mo.message_id = msgid.ptr;
	mo.max_size = (size_t)c->limits.max_message_size;
	mo.max_rcpts = max_rcpts;
	switch (sendmail_msg_parse(in.ptr ? in.ptr : "", in.len, &mo, &m, &why)) {
	case SENDMAIL_MSG_OK:
		break;
	case SENDMAIL_MSG_BAD_ADDR:
		fprintf(stderr, "sendmail: bad recipient in the message header \"%s\": %s\n",
		    m.bad.ptr ? m.bad.ptr : "", why);
		rc = EX_DATAERR;
		goto out;
	case SENDMAIL_MSG_BAD_NAME:
		fprintf(stderr, "sendmail: %s\n", why);
		rc = EX_USAGE;
		goto out;
	default:
		fprintf(stderr, "sendmail: %s\n", why);
		rc = EX_DATAERR;
		goto out;
	}
	/* -t adds the header recipients to those named on the command line. */
	for (k = 0; k < m.n_rcpts; k++) {
		if (sendmail_add_operand(&env, m.rcpts[k], a->notify, max_rcpts) == -1) {
			rc = EX_DATAERR;
			goto out;
		}
	}
	if (env.n_rcpts == 0) {
		fprintf(stderr, "sendmail: no recipient addresses found in the message header\n");
		rc = EX_DATAERR;
		goto out;
	}
	id_gen_init(&ids, 0);
	env.id = id_gen_next(&ids, now);
	env.received_ms = now;
	env.from = buf_steal(&sender);
	env.ret = a->ret;
	env.envid = a->envid ? xstrdup(a->envid) : NULL;
	env.source = xstrdup("sendmail");
	if (sendmail_via_socket(c, &env, m.body.ptr ? m.body.ptr : "", m.body.len, &rc))
		goto out;
	if (maildrop_submit(c->spool, &env, m.body.ptr, m.body.len, name, &err) == -1) {
		fprintf(stderr, "sendmail: mail not accepted: %s%s\n", err.text,
		    err.code == HK_E_NOTFOUND ? " (start \"hikyaku serve\" once to create the spool)" :
		    "");
		rc = err.code == HK_E_NOSPACE ? EX_TEMPFAIL : EX_CANTCREAT;
		goto out;
	}
out:
	spool_env_fini(&env);
	sendmail_msg_fini(&m);
	buf_fini(&in);
	buf_fini(&sender);
	buf_fini(&from_hdr);
	buf_fini(&msgid);
	return rc;
}

/* -bp */

static int
sendmail_name_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void
sendmail_list_one(const struct spool_env *e, const char *hex)
{
	char when[64];
	time_t t = (time_t)(e->received_ms / 1000);
	struct tm tm;
	size_t k;

	if (localtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm)
	    == 0)
		when[0] = '\0';
	printf("%-16s %9llu %-20s  %s\n", hex, (unsigned long long)e->size, when,
	    e->from[0] ? e->from : "<>");
	for (k = 0; k < e->n_rcpts; k++)
		printf("%48s %s (%s)\n", "", e->rcpts[k].addr, spool_rcpt_state_name(e->rcpts[k].state));
	printf("\n");
}

static int
sendmail_list(const struct conf *c)
{
	struct buf path = BUF_INIT;
	char **names = NULL;
	size_t n = 0, i, listed = 0;
	uint64_t bytes = 0;
	struct dirent *de;
	DIR *d;
	int qfd;

	buf_printf(&path, "%s/queue", c->spool);
	qfd = open(path.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = qfd == -1 ? NULL : fdopendir(qfd);
	if (d == NULL) {
		int e = errno;

		fprintf(stderr, "sendmail: cannot read the queue %s: %s%s\n", path.ptr, strerror(e),
		    e == EACCES ? " (run as root or as the hikyaku user)" : "");
		if (qfd != -1)
			close(qfd);
		buf_fini(&path);
		return e == EACCES ? EX_NOPERM : e == ENOENT ? EX_OK : EX_IOERR;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len == ID_HEX_LEN + 4 && strcmp(de->d_name + ID_HEX_LEN, ".env") == 0) {
			names = xreallocarray(names, n + 1, sizeof(*names));
			names[n++] = xstrdup(de->d_name);
		}
	}
	if (n > 1) /* qsort needs a non-NULL array, even for 0 elements */
		qsort(names, n, sizeof(*names), sendmail_name_cmp);
	for (i = 0; i < n; i++) {
		struct spool_env e;
		struct buf raw = BUF_INIT;
		const char *why = NULL;
		size_t env_len;
		int fd = openat(dirfd(d), names[i], O_RDONLY | O_CLOEXEC);

		names[i][ID_HEX_LEN] = '\0';
		memset(&e, 0, sizeof(e));
		/* The head is enough: the commit writes the body after the envelope. */
		if (fd == -1 || fsops_read_upto(fd, &raw, 1u << 20) == -1) {
			/* Finished while we looked: not an error. */
			if (fd != -1)
				close(fd);
			buf_fini(&raw);
			continue;
		}
		close(fd);
		env_len = spool_format_env_len(raw.ptr ? raw.ptr : "", raw.len);
		if (spool_format_decode(raw.ptr ? raw.ptr : "", env_len ? env_len : raw.len, &e,
		    &why) != SPOOL_FORMAT_OK) {
			printf("%-16s %9s %-20s  (unreadable envelope: %s)\n\n", names[i], "-", "",
			    why ? why : "?");
		} else {
			if (listed == 0)
				printf("%-16s %9s %-20s  %s\n", "-Queue ID-", "--Size--",
				    "----Arrival Time----", "-Sender/Recipient-------");
			sendmail_list_one(&e, names[i]);
			bytes += e.size;
			listed++;
			spool_env_fini(&e);
		}
		buf_fini(&raw);
	}
	if (listed == 0)
		printf("Mail queue is empty\n");
	else
		printf("-- %llu Kbytes in %zu Request%s.\n",
		    (unsigned long long)((bytes + 1023) / 1024), listed, listed == 1 ? "" : "s");
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	buf_fini(&path);
	return EX_OK;
}

int
cli_sendmail(const struct cli_opts *o, int argc, char **argv)
{
	struct sendmail_args a;
	struct conf *c = NULL;
	int rc;

	rc = sendmail_parse_args(argc, argv, &a);
	if (rc != EX_OK)
		return rc;
	if (a.mode == SENDMAIL_MODE_QUEUE_RUN) {
		/* As the original: attempt every queued message now ("hikyaku flush"). */
		char *fargv[] = { (char *)"flush", NULL };

		return cli_flush(o, 1, fargv);
	}
	if (a.mode == SENDMAIL_MODE_QUEUE_EVERY) {
		printf("hikyaku delivers queued mail by itself; there is no periodic queue run to start "
		    "(\"hikyaku sendmail -q\" retries everything now, \"-bp\" lists the queue)\n");
		return EX_OK;
	}
	rc = cli_conf_load("sendmail", o->config, &c);
	if (rc != EX_OK)
		return rc;
	if (a.mode == SENDMAIL_MODE_SMTP)
		rc = sendmail_smtp_session(c);
	else
		rc = a.mode == SENDMAIL_MODE_LIST ? sendmail_list(c) : sendmail_deliver(&a, c);
	conf_unref(c);
	return rc;
}
