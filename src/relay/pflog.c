/* pflog.c - Postfix-compatible delivery lines. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "pflog.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

enum pflog_kind { PFLOG_STDERR, PFLOG_SYSLOG, PFLOG_FILE };

struct pflog {
	enum pflog_kind kind;
	int fd;
	char *ident; /* "<tag>/smtp" */
	char host[256];
	struct buf line;
};

struct pflog *
pflog_open(const char *target, const char *tag, struct hk_err *err)
{
	struct pflog *p;

	if (target == NULL || target[0] == '\0')
		return NULL;
	p = xcalloc(1, sizeof(*p));
	p->ident = xasprintf("%s/smtp", tag ? tag : "hikyaku");
	if (gethostname(p->host, sizeof(p->host) - 1) == -1)
		snprintf(p->host, sizeof(p->host), "localhost");
	p->host[strcspn(p->host, ".")] = '\0';
	buf_init(&p->line);
	if (strcmp(target, "stderr") == 0) {
		p->kind = PFLOG_STDERR;
		p->fd = 2;
	} else if (strcmp(target, "syslog") == 0) {
		p->kind = PFLOG_SYSLOG;
		p->fd = -1;
		openlog(p->ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	} else {
		p->kind = PFLOG_FILE;
		p->fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (p->fd == -1) {
			hk_err_sys(err, errno, "open %s", target);
			pflog_close(p);
			return NULL;
		}
	}
	return p;
}

void
pflog_close(struct pflog *p)
{
	if (p == NULL)
		return;
	if (p->kind == PFLOG_FILE && p->fd >= 0)
		close(p->fd);
	if (p->kind == PFLOG_SYSLOG)
		closelog();
	buf_fini(&p->line);
	free(p->ident);
	free(p);
}

static double
pflog_secs(uint64_t from, uint64_t to)
{
	return to > from ? (double)(to - from) / 1000.0 : 0.0;
}

/* Postfix prints delays with up to two significant decimals, "0" for zero. */
static void
pflog_delay(struct buf *out, double s)
{
	if (s >= 10)
		buf_printf(out, "%.0f", s);
	else if (s >= 0.01)
		buf_printf(out, "%.2g", s);
	else if (s > 0)
		buf_printf(out, "%.1g", s);
	else
		buf_putc(out, '0');
}

/* Peer text goes into a log line: no control bytes. */
static void
pflog_text(struct buf *out, const char *s)
{
	for (; s && *s; s++)
		buf_putc(out, (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
}

void
pflog_format(struct buf *out, const struct pflog_entry *e)
{
	uint64_t start = e->attempt_start_ms ? e->attempt_start_ms : e->end_ms;
	uint64_t conn = e->connected_ms ? e->connected_ms : start;

	buf_printf(out, "%s: to=<", e->qid);
	pflog_text(out, e->to);
	buf_append_str(out, ">, ");
	if (e->orig_to && strcmp(e->orig_to, e->to) != 0) {
		buf_append_str(out, "orig_to=<");
		pflog_text(out, e->orig_to);
		buf_append_str(out, ">, ");
	}
	buf_append_str(out, "relay=");
	pflog_text(out, e->relay_host ? e->relay_host : "none");
	if (e->relay_addr)
		buf_printf(out, "[%s]:%u", e->relay_addr, e->port);
	buf_append_str(out, ", delay=");
	pflog_delay(out, pflog_secs(e->received_ms, e->end_ms));
	buf_append_str(out, ", delays=");
	pflog_delay(out, 0);
	buf_putc(out, '/');
	pflog_delay(out, pflog_secs(e->received_ms, start));
	buf_putc(out, '/');
	pflog_delay(out, pflog_secs(start, conn));
	buf_putc(out, '/');
	pflog_delay(out, pflog_secs(conn, e->end_ms));
	buf_printf(out, ", dsn=%s, status=%s (", e->dsn ? e->dsn : "4.0.0", e->status);
	pflog_text(out, e->reply);
	buf_putc(out, ')');
}

void
pflog_write(struct pflog *p, const struct pflog_entry *e)
{
	char stamp[32];
	struct tm tm;
	time_t now;

	if (p == NULL)
		return;
	buf_reset(&p->line);
	if (p->kind == PFLOG_SYSLOG) {
		pflog_format(&p->line, e);
		syslog(LOG_INFO, "%s", p->line.ptr);
		return;
	}
	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
	buf_printf(&p->line, "%s %s %s[%d]: ", stamp, p->host, p->ident, (int)getpid());
	pflog_format(&p->line, e);
	buf_putc(&p->line, '\n');
	if (write(p->fd, p->line.ptr, p->line.len) < 0) {
		/* Nowhere to report a failed log write. */
	}
}
