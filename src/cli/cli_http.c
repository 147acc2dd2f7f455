/*
 * cli_http.c - blocking HTTP/1.1 over the control socket, and the pure response parser.
 *
 * The parser is re-run on the whole buffer after every read (replies are small; a bounded
 * total size keeps that linear enough), so it keeps no state between calls.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli_http.h"
#include "../util/num.h"
#include "../util/str.h"
#include "../util/poison.h"

#define CLI_HTTP_LINE_MAX 8192
#define CLI_HTTP_HEADERS_MAX 100

void
cli_http_resp_init(struct cli_http_resp *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body);
}

void
cli_http_resp_fini(struct cli_http_resp *r)
{
	buf_fini(&r->body);
	r->status = 0;
	r->content_type[0] = '\0';
}

/* The line starting at p[off] (without CRLF or LF): its length, and *next after it; -1 if none. */
static int
cli_http_line(const char *p, size_t n, size_t off, size_t *len, size_t *next)
{
	const char *nl = off < n ? memchr(p + off, '\n', n - off) : NULL;
	size_t l;

	if (nl == NULL)
		return -1;
	l = (size_t)(nl - (p + off));
	*next = off + l + 1;
	if (l > 0 && p[off + l - 1] == '\r')
		l--;
	*len = l;
	return 0;
}

static void
cli_http_trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

static enum cli_http_parse_result
cli_http_need(bool eof, const char **why, const char *what)
{
	if (!eof)
		return CLI_HTTP_INCOMPLETE;
	*why = what;
	return CLI_HTTP_BAD;
}

/* Decode a chunked body starting at p[off]. */
static enum cli_http_parse_result
cli_http_chunked(const char *p, size_t n, size_t off, bool eof, struct buf *body,
    const char **why)
{
	size_t len, next;
	uint64_t size, end;

	for (;;) {
		const char *semi;
		size_t hex_len;

		if (cli_http_line(p, n, off, &len, &next) == -1)
			return n - off > CLI_HTTP_LINE_MAX ? (*why = "chunk size line too long",
			    CLI_HTTP_BAD) : cli_http_need(eof, why, "truncated chunk size");
		semi = memchr(p + off, ';', len);
		hex_len = semi ? (size_t)(semi - (p + off)) : len;
		while (hex_len > 0 && (p[off + hex_len - 1] == ' ' || p[off + hex_len - 1] == '\t'))
			hex_len--;
		if (hex_len == 0 || hex_len > 15 || num_parse_hex64(p + off, hex_len, &size) == -1) {
			*why = "bad chunk size";
			return CLI_HTTP_BAD;
		}
		off = next;
		if (size == 0)
			break;
		if (num_add_size(body->len, size, &end) == -1 || end > CLI_HTTP_RESPONSE_MAX) {
			*why = "response too large";
			return CLI_HTTP_BAD;
		}
		if (n - off < size + 1)
			return cli_http_need(eof, why, "truncated chunk");
		buf_append(body, p + off, (size_t)size);
		off += (size_t)size;
		if (p[off] == '\r') {
			if (n - off < 2)
				return cli_http_need(eof, why, "truncated chunk");
			off++;
		}
		if (p[off] != '\n') {
			*why = "chunk not followed by CRLF";
			return CLI_HTTP_BAD;
		}
		off++;
	}
	/* Trailer fields, then an empty line. */
	for (;;) {
		if (cli_http_line(p, n, off, &len, &next) == -1)
			return cli_http_need(eof, why, "truncated trailer");
		off = next;
		if (len == 0)
			return CLI_HTTP_OK;
	}
}

static enum cli_http_parse_result
cli_http_status_line(const char *p, size_t len, int *status, const char **why)
{
	uint64_t code;

	if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
	    p[8] != ' ' || (len > 12 && p[12] != ' ') ||
	    num_parse_u64(p + 9, 3, 599, &code) == -1 || code < 100) {
		*why = "bad status line";
		return CLI_HTTP_BAD;
	}
	*status = (int)code;
	return CLI_HTTP_OK;
}

enum cli_http_parse_result
cli_http_parse(const char *p, size_t n, bool eof, struct cli_http_resp *out, const char **why)
{
	size_t off = 0, len, next, nheaders = 0;
	bool chunked = false, has_length = false;
	uint64_t length = 0;
	enum cli_http_parse_result res;

	*why = NULL;
	buf_reset(&out->body);
	out->status = 0;
	out->content_type[0] = '\0';
	out->replayed = false;
	if (cli_http_line(p, n, 0, &len, &next) == -1)
		return n > CLI_HTTP_LINE_MAX ? (*why = "status line too long", CLI_HTTP_BAD)
					     : cli_http_need(eof, why, "no status line");
	res = cli_http_status_line(p, len, &out->status, why);
	if (res != CLI_HTTP_OK)
		return res;
	off = next;
	for (;;) {
		const char *colon, *name, *val;
		size_t name_len, val_len;

		if (cli_http_line(p, n, off, &len, &next) == -1)
			return n - off > CLI_HTTP_LINE_MAX ? (*why = "header line too long",
			    CLI_HTTP_BAD) : cli_http_need(eof, why, "truncated header");
		if (len == 0) {
			off = next;
			break;
		}
		if (++nheaders > CLI_HTTP_HEADERS_MAX) {
			*why = "too many header fields";
			return CLI_HTTP_BAD;
		}
		name = p + off;
		colon = memchr(name, ':', len);
		if (colon == NULL || colon == name || name[0] == ' ' || name[0] == '\t') {
			*why = "bad header line";
			return CLI_HTTP_BAD;
		}
		name_len = (size_t)(colon - name);
		val = colon + 1;
		val_len = len - name_len - 1;
		cli_http_trim(&val, &val_len);
		if (str_eq_ci(name, name_len, "Content-Length")) {
			uint64_t v;

			if (num_parse_u64(val, val_len, CLI_HTTP_RESPONSE_MAX, &v) == -1 ||
			    (has_length && v != length)) {
				*why = "bad Content-Length";
				return CLI_HTTP_BAD;
			}
			has_length = true;
			length = v;
		} else if (str_eq_ci(name, name_len, "Transfer-Encoding")) {
			if (!str_eq_ci(val, val_len, "chunked")) {
				*why = "unsupported Transfer-Encoding";
				return CLI_HTTP_BAD;
			}
			chunked = true;
		} else if (str_eq_ci(name, name_len, "Content-Type")) {
			if (val_len >= sizeof(out->content_type)) {
				*why = "Content-Type too long";
				return CLI_HTTP_BAD;
			}
			memcpy(out->content_type, val, val_len);
			out->content_type[val_len] = '\0';
		} else if (str_eq_ci(name, name_len, "Idempotent-Replayed")) {
			out->replayed = str_eq_ci(val, val_len, "true");
		}
		off = next;
	}
	/* RFC 9112 6.3: these never have a body. */
	if (out->status < 200 || out->status == 204 || out->status == 304)
		return CLI_HTTP_OK;
	if (chunked)
		return cli_http_chunked(p, n, off, eof, &out->body, why);
	if (has_length) {
		if (n - off < length)
			return cli_http_need(eof, why, "truncated body");
		buf_append(&out->body, p + off, (size_t)length);
		return CLI_HTTP_OK;
	}
	if (!eof)
		return CLI_HTTP_INCOMPLETE;
	if (n - off > CLI_HTTP_RESPONSE_MAX) {
		*why = "response too large";
		return CLI_HTTP_BAD;
	}
	buf_append(&out->body, p + off, n - off);
	return CLI_HTTP_OK;
}

static int
cli_http_write_all(int fd, const char *p, size_t n, struct hk_err *err)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return hk_err_sys(err, errno, "send to the control socket");
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
cli_http_request(const char *path, const char *method, const char *target, const char *body,
    unsigned timeout_ms, struct cli_http_resp *out, struct hk_err *err)
{
	return cli_http_request_hdrs(path, method, target, NULL, body, timeout_ms, out, err);
}

int
cli_http_request_hdrs(const char *path, const char *method, const char *target,
    const char *headers, const char *body, unsigned timeout_ms, struct cli_http_resp *out,
    struct hk_err *err)
{
	struct sockaddr_un sun;
	struct buf req = BUF_INIT, in = BUF_INIT;
	const char *why = NULL;
	enum cli_http_parse_result res = CLI_HTTP_INCOMPLETE;
	bool eof = false;
	int fd = -1, rc = -1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (str_copy(sun.sun_path, sizeof(sun.sun_path), path) == -1)
		return hk_err_set(err, HK_E_CONFIG, "control socket path too long: %s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return hk_err_sys(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		hk_err_sys(err, errno, "connect %s", path);
		goto out;
	}
	buf_printf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
	    "User-Agent: hikyaku-cli\r\nAccept: application/json\r\n", method, target);
	if (headers != NULL)
		buf_append_str(&req, headers);
	if (body != NULL)
		buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		    strlen(body), body);
	else
		buf_append_str(&req, strcmp(method, "GET") == 0 ? "\r\n" :
		    "Content-Length: 0\r\n\r\n");
	if (cli_http_write_all(fd, req.ptr, req.len, err) == -1)
		goto out;
	while (res == CLI_HTTP_INCOMPLETE) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;
		int pr;

		pr = poll(&pfd, 1, (int)timeout_ms);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			hk_err_sys(err, errno, "poll");
			goto out;
		}
		if (pr == 0) {
			hk_err_set(err, HK_E_TEMP, "no answer from the daemon within %u s",
			    timeout_ms / 1000);
			goto out;
		}
		buf_reserve(&in, 65536);
		r = recv(fd, in.ptr + in.len, 65536, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			hk_err_sys(err, errno, "read from the control socket");
			goto out;
		}
		if (r == 0)
			eof = true;
		in.len += (size_t)r;
		in.ptr[in.len] = '\0';
		if (in.len > CLI_HTTP_RESPONSE_MAX + 65536) {
			hk_err_set(err, HK_E_DATA, "response too large");
			goto out;
		}
		res = cli_http_parse(in.ptr, in.len, eof, out, &why);
	}
	if (res == CLI_HTTP_BAD) {
		hk_err_set(err, HK_E_DATA, "malformed reply from the daemon: %s", why ? why : "?");
		goto out;
	}
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	buf_fini(&req);
	buf_fini(&in);
	return rc;
}
