/*
 * cli_http.h - a small blocking HTTP/1.1 client over the daemon's control socket (Unix), for the
 * admin commands (status, log, show, resend, queue ...).
 *
 * One request per connection ("Connection: close"). The response parser is pure and handles a
 * Content-Length body, a chunked body, or (at EOF) a body up to the end of the stream.
 * Ownership: a struct cli_http_resp owns its body; free it with cli_http_resp_fini().
 * Thread: any (no shared state).
 */
#ifndef HK_CLI_HTTP_H
#define HK_CLI_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/buf.h"
#include "../util/err.h"

#define CLI_HTTP_RESPONSE_MAX (64u << 20) /* a reply larger than this is refused */

struct cli_http_resp {
	int status;             /* 100..599 */
	char content_type[128]; /* "" when absent; truncated values are refused */
	struct buf body;        /* decoded (chunks joined) */
	bool replayed;          /* "Idempotent-Replayed: true": a stored answer to an earlier request */
};

enum cli_http_parse_result {
	CLI_HTTP_OK = 0,
	CLI_HTTP_INCOMPLETE, /* need more bytes (never returned when eof) */
	CLI_HTTP_BAD,        /* malformed: *why says how */
};

void cli_http_resp_init(struct cli_http_resp *r);
void cli_http_resp_fini(struct cli_http_resp *r);

/*
 * Parse one complete response from p[0..n). eof: the peer closed after these bytes (a body
 * without length then ends here; anything still missing is BAD). On OK, out holds status,
 * content type and body (out is reset first). Pure.
 */
enum cli_http_parse_result cli_http_parse(const char *p, size_t n, bool eof,
    struct cli_http_resp *out, const char **why);

/*
 * Send method target (with an optional JSON body) to the Unix socket at path and read the whole
 * response into out. -1 and err when the socket cannot be reached (err->sys_errno: ENOENT,
 * ECONNREFUSED, EACCES ...), on I/O errors, timeouts (timeout_ms per read) and malformed replies
 * (err->code HK_E_DATA).
 */
HK_MUST_CHECK int cli_http_request(const char *path, const char *method, const char *target,
    const char *body, unsigned timeout_ms, struct cli_http_resp *out, struct hk_err *err);
/*
 * cli_http_request() with extra request header lines: headers is "Name: value\r\n"... (the
 * caller checks that values hold no CR or LF), NULL for none.
 */
HK_MUST_CHECK int cli_http_request_hdrs(const char *path, const char *method, const char *target,
    const char *headers, const char *body, unsigned timeout_ms, struct cli_http_resp *out,
    struct hk_err *err);

#endif
