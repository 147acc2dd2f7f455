/* conn.c - bounded line reading and timeouts on bufferevents. */
#include <string.h>
#include <sys/time.h>

#include "conn.h"
#include "../util/poison.h"

void
conn_lines_init(struct conn_lines *cl, size_t max_line)
{
	cl->max_line = max_line;
	cl->skipping = false;
}

void
conn_lines_reset(struct conn_lines *cl)
{
	cl->skipping = false;
}

/* Drain up to and including the next LF; true when it was found. */
static bool
conn_skip_line(struct evbuffer *in)
{
	struct evbuffer_ptr p;

	p = evbuffer_search(in, "\n", 1, NULL);
	if (p.pos == -1) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return false;
	}
	evbuffer_drain(in, (size_t)p.pos + 1);
	return true;
}

enum conn_line_result
conn_line_read(struct conn_lines *cl, struct evbuffer *in, struct buf *out)
{
	size_t avail, window, n;
	const unsigned char *p, *lf;

	if (cl->skipping) {
		if (!conn_skip_line(in))
			return CONN_LINE_MORE;
		cl->skipping = false;
		return CONN_LINE_TOO_LONG;
	}
	avail = evbuffer_get_length(in);
	if (avail == 0)
		return CONN_LINE_MORE;
	/* The limit comes first: look for the LF only inside max_line + CRLF. */
	window = cl->max_line + 2;
	n = avail < window ? avail : window;
	p = evbuffer_pullup(in, (ev_ssize_t)n);
	lf = memchr(p, '\n', n);
	if (lf == NULL) {
		if (avail < window)
			return CONN_LINE_MORE;
		cl->skipping = true;
		evbuffer_drain(in, window);
		if (!conn_skip_line(in))
			return CONN_LINE_MORE;
		cl->skipping = false;
		return CONN_LINE_TOO_LONG;
	}
	n = (size_t)(lf - p);
	buf_reset(out);
	if (n > 0 && p[n - 1] == '\r') {
		if (n - 1 > cl->max_line) {
			evbuffer_drain(in, n + 1);
			return CONN_LINE_TOO_LONG;
		}
		buf_append(out, p, n - 1);
		evbuffer_drain(in, n + 1);
		return CONN_LINE_OK;
	}
	if (n > cl->max_line) {
		evbuffer_drain(in, n + 1);
		return CONN_LINE_TOO_LONG;
	}
	buf_append(out, p, n);
	evbuffer_drain(in, n + 1);
	return CONN_LINE_BARE_LF;
}

void
conn_set_timeout(struct bufferevent *bev, uint64_t ms)
{
	struct timeval tv;

	if (ms == 0) {
		bufferevent_set_timeouts(bev, NULL, NULL);
		return;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	bufferevent_set_timeouts(bev, &tv, &tv);
}
