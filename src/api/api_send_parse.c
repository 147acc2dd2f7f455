/*
 * api_send_parse.c - request bodies of the sending endpoints -> mime_msg / raw envelope and body.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_send_parse.h"
#include "../proto/addr.h"
#include "../util/base64.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define API_LINE_MAX 998 /* RFC 5322 2.1.1, without the CRLF */

HK_PRINTF(4, 5) static int
api_send_fail(struct api_send_error *e, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	e->status = status;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- "Name <addr>" ---- */

static bool
api_is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Unquote "..." (with \x escapes) in s[0..n); -1 when the quotes do not match. */
static int
api_unquote(const char *s, size_t n, struct buf *out)
{
	size_t i;

	for (i = 1; i + 1 < n; i++) {
		if (s[i] == '\\') {
			if (++i + 1 >= n)
				return -1;
		} else if (s[i] == '"') {
			return -1;
		}
		buf_putc(out, s[i]);
	}
	return 0;
}

enum api_addr_result
api_addr_parse(const char *s, size_t n, char **name, char **address, const char **why)
{
	const char *lt, *end = s + n;
	struct buf nb = BUF_INIT;
	size_t nl;

	if (memchr(s, '\0', n) != NULL) {
		*why = "NUL byte in an address";
		return API_ADDR_BAD;
	}
	while (s < end && api_is_space(*s))
		s++;
	while (end > s && api_is_space(end[-1]))
		end--;
	if (s == end) {
		*why = "empty address";
		return API_ADDR_EMPTY;
	}
	if (end[-1] != '>') {
		if (memchr(s, '<', (size_t)(end - s)) || memchr(s, '>', (size_t)(end - s))) {
			*why = "text after the closing '>'";
			return API_ADDR_BAD;
		}
		*name = NULL;
		*address = xstrndup(s, (size_t)(end - s));
		return API_ADDR_OK;
	}
	/* The address is in the last <...>; a display name cannot hold '<' unless quoted. */
	lt = end - 1;
	while (lt > s && lt[-1] != '<')
		lt--;
	if (lt == s) {
		*why = "'>' without '<'";
		return API_ADDR_BAD;
	}
	if (memchr(lt, '<', (size_t)(end - 1 - lt)) || memchr(lt, '>', (size_t)(end - 1 - lt))) {
		*why = "nested angle brackets";
		return API_ADDR_BAD;
	}
	if (lt == end - 1) {
		*why = "empty address in '<>'";
		return API_ADDR_EMPTY;
	}
	nl = (size_t)(lt - 1 - s);
	while (nl > 0 && api_is_space(s[nl - 1]))
		nl--;
	if (nl >= 2 && s[0] == '"' && s[nl - 1] == '"') {
		if (api_unquote(s, nl, &nb) == -1) {
			buf_fini(&nb);
			*why = "bad quoting in the display name";
			return API_ADDR_BAD;
		}
	} else if (nl > 0) {
		if (memchr(s, '"', nl) || memchr(s, '<', nl) || memchr(s, '>', nl)) {
			*why = "a display name with '\"', '<' or '>' must be quoted";
			return API_ADDR_BAD;
		}
		buf_append(&nb, s, nl);
	}
	*name = nb.len ? buf_steal(&nb) : NULL;
	buf_fini(&nb);
	*address = xstrndup(lt, (size_t)(end - 1 - lt));
	return API_ADDR_OK;
}

/* ---- POST /api/v1/messages ---- */

static const char *
api_own(struct api_send_req *r, char *s)
{
	r->owned = xreallocarray(r->owned, r->n_owned + 1, sizeof(*r->owned));
	r->owned[r->n_owned++] = s;
	return s;
}

/* Only the keys in allowed[] (NULL-terminated) may appear in o. */
static int
api_check_keys(const json_t *o, const char *const *allowed, const char *where,
    struct api_send_error *e)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)o, k, v) {
		for (i = 0; allowed[i] && strcmp(allowed[i], k) != 0; i++)
			;
		if (allowed[i] == NULL)
			return api_send_fail(e, 400, "bad_request", "unknown field %s%.64s", where, k);
	}
	return 0;
}

/* A mailbox from a string or an {"address","name"} object. */
static int
api_addr_from_json(struct api_send_req *r, const json_t *v, const char *field,
    struct mime_addr *out, struct api_send_error *e)
{
	static const char *const keys[] = { "address", "name", NULL };
	char *name = NULL, *address = NULL;
	const char *why = NULL;
	json_t *a, *nm;

	if (json_is_string(v)) {
		if (api_addr_parse(json_string_value(v), json_string_length(v), &name, &address,
			&why) != API_ADDR_OK)
			return api_send_fail(e, 422, "bad_address", "%s: %s", field, why);
		out->address = api_own(r, address);
		out->name = name ? api_own(r, name) : NULL;
		return 0;
	}
	if (!json_is_object(v))
		return api_send_fail(e, 400, "bad_request",
		    "%s: an address is a string or {\"address\",\"name\"}", field);
	if (api_check_keys(v, keys, "in an address: ", e) == -1)
		return -1;
	a = json_object_get(v, "address");
	nm = json_object_get(v, "name");
	if (!json_is_string(a))
		return api_send_fail(e, a ? 400 : 422, a ? "bad_request" : "missing_field",
		    "%s.address: a string is required", field);
	if (nm != NULL && !json_is_null(nm) && !json_is_string(nm))
		return api_send_fail(e, 400, "bad_request", "%s.name: must be a string", field);
	out->address = json_string_value(a);
	out->name = json_is_string(nm) ? json_string_value(nm) : NULL;
	return 0;
}

/* to/cc/bcc: an array of mailboxes (a single one is taken as an array of one). */
static int
api_addr_list(struct api_send_req *r, const json_t *v, const char *field, size_t *pos,
    struct api_send_error *e)
{
	char name[32];
	size_t i;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v)) {
		snprintf(name, sizeof(name), "%s", field);
		return api_addr_from_json(r, v, name, &r->addrs[(*pos)++], e);
	}
	for (i = 0; i < json_array_size(v); i++) {
		snprintf(name, sizeof(name), "%s[%zu]", field, i);
		if (api_addr_from_json(r, json_array_get(v, i), name, &r->addrs[(*pos)++], e) == -1)
			return -1;
	}
	return 0;
}

static size_t
api_list_len(const json_t *v)
{
	if (v == NULL || json_is_null(v))
		return 0;
	return json_is_array(v) ? json_array_size(v) : 1;
}

/* subject/text/html: a string, null or absent. */
static int
api_opt_string(const json_t *root, const char *field, const char **out, size_t *len,
    struct api_send_error *e)
{
	json_t *v = json_object_get(root, field);

	*out = NULL;
	if (len)
		*len = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return api_send_fail(e, 400, "bad_request", "%s: must be a string", field);
	*out = json_string_value(v);
	if (len)
		*len = json_string_length(v);
	return 0;
}

/* Base64 with line breaks or spaces allowed (what `base64` and most encoders write). */
static int
api_b64_decode(const char *s, size_t n, struct buf *out)
{
	struct buf clean = BUF_INIT;
	size_t i;
	int rc;

	buf_reserve(&clean, n + 1);
	for (i = 0; i < n; i++) {
		if (s[i] != '\r' && s[i] != '\n' && s[i] != ' ' && s[i] != '\t')
			buf_putc(&clean, s[i]);
	}
	rc = base64_decode(out, clean.ptr ? clean.ptr : "", clean.len);
	buf_fini(&clean);
	return rc;
}

static int
api_headers(struct api_send_req *r, const json_t *v, struct api_send_error *e)
{
	const char *k;
	json_t *val;
	size_t i = 0;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return api_send_fail(e, 400, "bad_request", "headers: must be an object");
	r->headers = xcalloc(json_object_size(v) + 1, sizeof(*r->headers));
	json_object_foreach((json_t *)v, k, val) {
		if (!json_is_string(val))
			return api_send_fail(e, 400, "bad_request", "headers[%.64s]: must be a string",
			    k);
		r->headers[i].name = k;
		r->headers[i].value = json_string_value(val);
		i++;
	}
	r->msg.headers = r->headers;
	r->msg.header_count = i;
	return 0;
}

static int
api_attachments(struct api_send_req *r, const json_t *v, const struct api_send_limits *lim,
    struct api_send_error *e)
{
	static const char *const keys[] = { "filename", "content_type", "content_base64", NULL };
	uint64_t total = 0;
	size_t i, n;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return api_send_fail(e, 400, "bad_request", "attachments: must be an array");
	n = json_array_size(v);
	r->atts = xcalloc(n + 1, sizeof(*r->atts));
	r->att_data = xcalloc(n + 1, sizeof(*r->att_data));
	r->n_att_data = n;
	r->msg.attachments = r->atts;
	for (i = 0; i < n; i++) {
		const json_t *a = json_array_get(v, i);
		const json_t *fn, *ct, *data;

		if (!json_is_object(a))
			return api_send_fail(e, 400, "bad_request", "attachments[%zu]: must be an object",
			    i);
		if (api_check_keys(a, keys, "in an attachment: ", e) == -1)
			return -1;
		fn = json_object_get(a, "filename");
		ct = json_object_get(a, "content_type");
		data = json_object_get(a, "content_base64");
		if ((fn && !json_is_string(fn) && !json_is_null(fn)) ||
		    (ct && !json_is_string(ct) && !json_is_null(ct)) ||
		    (data && !json_is_string(data)))
			return api_send_fail(e, 400, "bad_request",
			    "attachments[%zu]: filename, content_type and content_base64 are strings", i);
		if (data == NULL)
			return api_send_fail(e, 422, "missing_field",
			    "attachments[%zu].content_base64: required", i);
		if (api_b64_decode(json_string_value(data), json_string_length(data),
			&r->att_data[i]) == -1)
			return api_send_fail(e, 400, "bad_base64",
			    "attachments[%zu].content_base64: not valid base64", i);
		total += r->att_data[i].len;
		if (lim->max_message_size && total > lim->max_message_size)
			return api_send_fail(e, 413, "too_large",
			    "attachments exceed the message size limit of %llu bytes",
			    (unsigned long long)lim->max_message_size);
		r->atts[i].filename = json_is_string(fn) ? json_string_value(fn) : NULL;
		r->atts[i].content_type = json_is_string(ct) ? json_string_value(ct) : NULL;
		r->atts[i].content = r->att_data[i].ptr ? r->att_data[i].ptr : "";
		r->atts[i].content_len = r->att_data[i].len;
		r->msg.attachment_count = i + 1;
	}
	return 0;
}

static json_t *
api_load(const char *body, size_t len, struct api_send_error *e)
{
	json_error_t je;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);

	if (root == NULL) {
		api_send_fail(e, 400, "bad_json", "malformed JSON at line %d column %d: %.120s",
		    je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		api_send_fail(e, 400, "bad_json", "the body must be a JSON object");
		return NULL;
	}
	return root;
}

int
api_send_parse(const char *body, size_t len, const struct api_send_limits *lim,
    struct api_send_req *req, struct api_send_error *e)
{
	static const char *const keys[] = { "from", "to", "cc", "bcc", "reply_to", "subject", "text",
		"html", "headers", "attachments", "route", NULL };
	const json_t *from, *to, *cc, *bcc, *rt;
	size_t n, pos = 0;

	memset(req, 0, sizeof(*req));
	req->root = api_load(body, len, e);
	if (req->root == NULL)
		return -1;
	if (api_check_keys(req->root, keys, "", e) == -1)
		goto fail;
	from = json_object_get(req->root, "from");
	to = json_object_get(req->root, "to");
	cc = json_object_get(req->root, "cc");
	bcc = json_object_get(req->root, "bcc");
	rt = json_object_get(req->root, "reply_to");
	n = api_list_len(to) + api_list_len(cc) + api_list_len(bcc);
	if (lim->max_recipients && n > lim->max_recipients) {
		api_send_fail(e, 422, "too_many_recipients", "more than %u recipients",
		    lim->max_recipients);
		goto fail;
	}
	req->addrs = xcalloc(n + 2, sizeof(*req->addrs));
	if (from == NULL || json_is_null(from)) {
		api_send_fail(e, 422, "missing_field", "from: required");
		goto fail;
	}
	if (api_addr_from_json(req, from, "from", &req->msg.from, e) == -1)
		goto fail;
	req->msg.to = req->addrs + pos;
	if (api_addr_list(req, to, "to", &pos, e) == -1)
		goto fail;
	req->msg.to_count = api_list_len(to);
	req->msg.cc = req->addrs + pos;
	if (api_addr_list(req, cc, "cc", &pos, e) == -1)
		goto fail;
	req->msg.cc_count = api_list_len(cc);
	req->msg.bcc = req->addrs + pos;
	if (api_addr_list(req, bcc, "bcc", &pos, e) == -1)
		goto fail;
	req->msg.bcc_count = api_list_len(bcc);
	if (rt != NULL && !json_is_null(rt)) {
		if (json_is_array(rt)) {
			if (json_array_size(rt) != 1) {
				api_send_fail(e, 422, "bad_address", "reply_to: one address");
				goto fail;
			}
			rt = json_array_get(rt, 0);
		}
		if (api_addr_from_json(req, rt, "reply_to", &req->addrs[pos], e) == -1)
			goto fail;
		req->msg.reply_to = &req->addrs[pos++];
	}
	if (api_opt_string(req->root, "subject", &req->msg.subject, NULL, e) == -1 ||
	    api_opt_string(req->root, "text", &req->msg.text, &req->msg.text_len, e) == -1 ||
	    api_opt_string(req->root, "html", &req->msg.html, &req->msg.html_len, e) == -1 ||
	    api_headers(req, json_object_get(req->root, "headers"), e) == -1 ||
	    api_attachments(req, json_object_get(req->root, "attachments"), lim, e) == -1 ||
	    api_opt_string(req->root, "route", &req->route, NULL, e) == -1)
		goto fail;
	if (req->route != NULL && req->route[0] == '\0') {
		api_send_fail(e, 422, "unknown_route", "route: must name a configured route");
		goto fail;
	}
	return 0;
fail:
	api_send_req_fini(req);
	return -1;
}

void
api_send_req_fini(struct api_send_req *req)
{
	size_t i;

	for (i = 0; i < req->n_att_data; i++)
		buf_fini(&req->att_data[i]);
	for (i = 0; i < req->n_owned; i++)
		free(req->owned[i]);
	free(req->owned);
	free(req->att_data);
	free(req->atts);
	free(req->headers);
	free(req->addrs);
	if (req->root)
		json_decref(req->root);
	memset(req, 0, sizeof(*req));
}

/* ---- POST /api/v1/messages/raw ---- */

int
api_raw_normalise(const char *p, size_t n, uint64_t max_size, struct buf *out,
    struct api_send_error *e)
{
	size_t i, line = 0, lines = 0;
	bool in_header = true, colon = false;
	char first = 0;

	buf_reserve(out, n + n / 32 + 2);
	for (i = 0; i < n; i++) {
		char c = p[i];

		if (c == '\0')
			return api_send_fail(e, 400, "bad_message", "NUL byte in the message");
		if (c == '\r') {
			if (i + 1 >= n || p[i + 1] != '\n')
				return api_send_fail(e, 400, "bad_message",
				    "bare CR in line %zu of the message", lines + 1);
			continue;
		}
		if (c != '\n') {
			if (++line > API_LINE_MAX)
				return api_send_fail(e, 422, "line_too_long",
				    "line %zu is longer than %d octets", lines + 1, API_LINE_MAX);
			if (line == 1)
				first = c;
			colon |= c == ':';
			buf_putc(out, c);
			continue;
		}
		/* RFC 5322 2.2: a field is "name:" or a continuation starting with white space. */
		if (in_header && line == 0) {
			in_header = false;
		} else if (in_header) {
			bool cont = first == ' ' || first == '\t';

			if (cont ? lines == 0 : !colon)
				return api_send_fail(e, 422, "bad_message",
				    "line %zu of the header section is not a header field",
				    lines + 1);
		}
		buf_append(out, "\r\n", 2);
		colon = false;
		line = 0;
		lines++;
	}
	if (in_header)
		return api_send_fail(e, 422, "bad_message", "no empty line after the header section");
	if (line > 0)
		buf_append(out, "\r\n", 2);
	if (out->len >= 2 && out->ptr[0] == '\r')
		return api_send_fail(e, 422, "bad_message", "no header fields");
	if (max_size && out->len > max_size)
		return api_send_fail(e, 413, "too_large", "the message exceeds %llu bytes",
		    (unsigned long long)max_size);
	return 0;
}

/* An envelope address: RFC 5321 syntax, UTF-8 allowed (then the message needs SMTPUTF8). */
static int
api_raw_addr(const json_t *v, const char *field, bool empty_ok, bool *utf8, char **out,
    struct api_send_error *e)
{
	struct addr_parts parts;
	const char *why = "bad address";
	const char *s;
	size_t n;

	if (!json_is_string(v))
		return api_send_fail(e, v ? 400 : 422, v ? "bad_request" : "missing_field",
		    "%s: a string is required", field);
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0 && empty_ok) {
		*out = xstrdup("");
		return 0;
	}
	if (memchr(s, '\0', n) != NULL ||
	    addr_parse(s, n, ADDR_ALLOW_UTF8, &parts, &why) != ADDR_OK)
		return api_send_fail(e, 422, "bad_address", "%s: %s", field, why);
	*utf8 |= parts.has_utf8;
	*out = xstrndup(s, n);
	return 0;
}

int
api_raw_parse(const char *body, size_t len, const struct api_send_limits *lim,
    struct api_raw_req *req, struct api_send_error *e)
{
	static const char *const keys[] = { "mail_from", "rcpt_to", "data_base64", NULL };
	struct buf raw = BUF_INIT;
	json_t *root, *rcpts, *data;
	char field[32];
	size_t i;

	memset(req, 0, sizeof(*req));
	root = api_load(body, len, e);
	if (root == NULL)
		return -1;
	if (api_check_keys(root, keys, "", e) == -1)
		goto fail;
	if (api_raw_addr(json_object_get(root, "mail_from"), "mail_from", true, &req->smtputf8,
		&req->mail_from, e) == -1)
		goto fail;
	rcpts = json_object_get(root, "rcpt_to");
	if (rcpts != NULL && !json_is_array(rcpts)) {
		api_send_fail(e, 400, "bad_request", "rcpt_to: must be an array");
		goto fail;
	}
	if (json_array_size(rcpts) == 0) {
		api_send_fail(e, 422, "missing_field", "rcpt_to: at least one recipient");
		goto fail;
	}
	if (lim->max_recipients && json_array_size(rcpts) > lim->max_recipients) {
		api_send_fail(e, 422, "too_many_recipients", "more than %u recipients",
		    lim->max_recipients);
		goto fail;
	}
	req->rcpts = xcalloc(json_array_size(rcpts), sizeof(*req->rcpts));
	for (i = 0; i < json_array_size(rcpts); i++) {
		snprintf(field, sizeof(field), "rcpt_to[%zu]", i);
		if (api_raw_addr(json_array_get(rcpts, i), field, false, &req->smtputf8,
			&req->rcpts[i], e) == -1)
			goto fail;
		req->n_rcpts++;
	}
	data = json_object_get(root, "data_base64");
	if (!json_is_string(data)) {
		api_send_fail(e, data ? 400 : 422, data ? "bad_request" : "missing_field",
		    "data_base64: a string is required");
		goto fail;
	}
	if (api_b64_decode(json_string_value(data), json_string_length(data), &raw) == -1) {
		api_send_fail(e, 400, "bad_base64", "data_base64: not valid base64");
		goto fail;
	}
	if (lim->max_message_size && raw.len > lim->max_message_size) {
		api_send_fail(e, 413, "too_large", "the message exceeds %llu bytes",
		    (unsigned long long)lim->max_message_size);
		goto fail;
	}
	if (api_raw_normalise(raw.ptr ? raw.ptr : "", raw.len, lim->max_message_size, &req->data,
		e) == -1)
		goto fail;
	for (i = 0; i < req->data.len && !req->eight_bit; i++)
		req->eight_bit = (unsigned char)req->data.ptr[i] >= 0x80;
	buf_fini(&raw);
	json_decref(root);
	return 0;
fail:
	buf_fini(&raw);
	json_decref(root);
	api_raw_req_fini(req);
	return -1;
}

void
api_raw_req_fini(struct api_raw_req *req)
{
	size_t i;

	for (i = 0; i < req->n_rcpts; i++)
		free(req->rcpts[i]);
	free(req->rcpts);
	free(req->mail_from);
	buf_fini(&req->data);
	memset(req, 0, sizeof(*req));
}
