/*
 * api_send_parse.h - the pure part of the sending endpoints: request JSON -> struct mime_msg
 * (POST /api/v1/messages), request JSON -> envelope and checked body (POST
 * /api/v1/messages/raw), and the "Name <addr>" mailbox parser.
 *
 * Strict: unknown fields, wrong JSON types and duplicate keys are 400; a missing field or an
 * unacceptable value is 422 (for the MIME builder's own checks, mime_error_http_status()).
 * Addresses are "addr", "Name <addr>", "\"Quoted, Name\" <addr>" or {"address", "name"}.
 * Ownership: a parsed request owns everything mime_msg points to (the JSON tree, decoded
 * attachments, split names); free it with its _fini(). Pure: no I/O, no clock.
 * Thread: any.
 */
#ifndef HK_API_SEND_PARSE_H
#define HK_API_SEND_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../proto/mime.h"
#include "../util/buf.h"

/* Why a request was refused: HTTP status, snake_case code and one line safe to show. */
struct api_send_error {
	int status;
	const char *code; /* static */
	char message[256];
};

struct api_send_limits {
	uint64_t max_message_size; /* bytes of the message; 0: none */
	unsigned max_recipients;   /* 0: none */
};

enum api_addr_result {
	API_ADDR_OK = 0,
	API_ADDR_EMPTY,   /* nothing but spaces */
	API_ADDR_BAD,     /* unbalanced < >, text after >, bad quoting */
};

/*
 * Split s[0..n) into a display name and an address: "a@b", "Name <a@b>", "\"Q, N\" <a@b>" or
 * "<a@b>". Surrounding spaces are dropped; a quoted name is unquoted (\x -> x). *name is NULL
 * when there is none; both are new strings for the caller to free (set only on API_ADDR_OK).
 * The address itself is not checked here (mime_build checks RFC 5321 syntax).
 */
enum api_addr_result api_addr_parse(const char *s, size_t n, char **name, char **address,
    const char **why);

struct api_send_req {
	struct mime_msg msg; /* date, message_id and seed are the caller's to fill */
	json_t *root;        /* owns the strings msg points to */
	struct mime_addr *addrs; /* to, cc, bcc, reply_to in one array */
	struct mime_header *headers;
	struct mime_attachment *atts;
	struct buf *att_data;
	size_t n_att_data;
	char **owned; /* split names and addresses */
	size_t n_owned;
	const char *route; /* "route": a configured route's name to use, NULL: route matching */
};

/* Parse a POST /api/v1/messages body. -1 and e on a refusal (req is then empty). */
HK_MUST_CHECK int api_send_parse(const char *body, size_t len, const struct api_send_limits *lim,
    struct api_send_req *req, struct api_send_error *e);
void api_send_req_fini(struct api_send_req *req);

struct api_raw_req {
	char *mail_from; /* "" for the null sender */
	char **rcpts;
	size_t n_rcpts;
	struct buf data; /* CRLF, checked */
	bool eight_bit;  /* a byte >= 0x80 in data */
	bool smtputf8;   /* a UTF-8 address */
};

/*
 * Parse a POST /api/v1/messages/raw body: mail_from (may be "" for the null sender), rcpt_to
 * (1..max_recipients addresses), data_base64 (the message: LF or CRLF line ends, no bare CR,
 * no NUL, lines of at most 998 octets, a header section ending in an empty line).
 */
HK_MUST_CHECK int api_raw_parse(const char *body, size_t len, const struct api_send_limits *lim,
    struct api_raw_req *req, struct api_send_error *e);
void api_raw_req_fini(struct api_raw_req *req);

/*
 * Normalise a message to CRLF and check it as api_raw_parse() does. 0, or -1 with e (400 for
 * bare CR or NUL, 422 for the structure, 413 when out is over max_size (0: none)).
 */
HK_MUST_CHECK int api_raw_normalise(const char *p, size_t n, uint64_t max_size, struct buf *out,
    struct api_send_error *e);

#endif
