/*
 * mime.h - build the message for POST /api/v1/messages from its fields (RFC 5322, RFC 2045-2047,
 * RFC 2231).
 *
 * Output: canonical CRLF, no line over 998 octets, header lines ASCII only; header lines folded
 * to 78 columns where a fold point exists. Non-ASCII display names, subjects and extra header
 * values become RFC 2047 encoded words (UTF-8, B or Q, at most 75 characters, split on character
 * boundaries); attachment names use RFC 2231 (filename*=UTF-8''..., continued when long) with an
 * ASCII filename= fallback. Bodies are 7bit (ASCII, lines of at most 78) or quoted-printable;
 * attachments base64 in 76-character lines. text+html is multipart/alternative; attachments put
 * everything in multipart/mixed. Boundaries come from the caller's seed and are checked against
 * every part. Bcc recipients are envelope-only.
 *
 * Refused: CR, LF or other control bytes in header fields (tab allowed in subject and header
 * values), malformed UTF-8 anywhere in text, addresses that fail RFC 5321 syntax (UTF-8
 * addresses included: they would need SMTPUTF8), extra headers that are not RFC 5322 field names
 * or that name a field the builder writes (From To Cc Bcc Subject Date Message-ID MIME-Version
 * Content-*, and Reply-To when reply_to is given), attachment types that are not type/subtype
 * or that are multipart or message types (RFC 2046 forbids base64 for them).
 *
 * Pure: date, Message-ID and the boundary seed come from the caller; nothing is read or sent.
 * Ownership: inputs are borrowed for the call; mime_out owns data and the rcpts array, whose
 * strings point into the caller's input (valid as long as that input).
 * Thread: any.
 */
#ifndef HK_MIME_H
#define HK_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/buf.h"
#include "../util/common.h"

/* A mailbox: RFC 5321 address (no angle brackets) and an optional UTF-8 display name. */
struct mime_addr {
	const char *address;
	const char *name; /* NULL or "" for none */
};

/* An extra header field; name is an RFC 5322 field name, value UTF-8 without CR/LF. */
struct mime_header {
	const char *name;
	const char *value;
};

struct mime_attachment {
	const char *filename;     /* UTF-8, required, no control bytes */
	const char *content_type; /* "type/subtype[; a=v]..."; NULL: application/octet-stream */
	const void *content;      /* raw bytes (already base64-decoded by the caller) */
	size_t content_len;
};

struct mime_msg {
	struct mime_addr from; /* required */
	const struct mime_addr *to;
	size_t to_count;
	const struct mime_addr *cc;
	size_t cc_count;
	const struct mime_addr *bcc; /* envelope only, never in a header */
	size_t bcc_count;
	const struct mime_addr *reply_to; /* NULL: none */
	const char *subject;              /* UTF-8; NULL: no Subject field */
	const char *text;                 /* UTF-8 body; NULL: none; LF, CRLF or CR line ends */
	size_t text_len;
	const char *html; /* UTF-8 body; NULL: none */
	size_t html_len;
	const struct mime_header *headers;
	size_t header_count;
	const struct mime_attachment *attachments;
	size_t attachment_count;
	const char *date;       /* RFC 5322 date-time (header_format_date()), required */
	const char *message_id; /* "<left@right>", required */
	const unsigned char *seed; /* random bytes for the boundaries (16 are used); may be empty */
	size_t seed_len;
};

enum mime_error {
	MIME_OK = 0,
	MIME_E_MISSING,      /* a required field is absent or empty; no recipient at all */
	MIME_E_ADDRESS,      /* an address fails RFC 5321 mailbox syntax */
	MIME_E_CONTROL,      /* CR, LF or another control byte in a header field */
	MIME_E_UTF8,         /* malformed UTF-8 */
	MIME_E_HEADER_NAME,  /* not an RFC 5322 field name */
	MIME_E_FORBIDDEN,    /* an extra header names a field the builder writes */
	MIME_E_TOO_LONG,     /* a header line cannot be folded within 998 octets */
	MIME_E_CONTENT_TYPE, /* attachment content type not acceptable */
};

#define MIME_FIELD_MAX 64
#define MIME_MESSAGE_MAX 256

struct mime_out {
	struct buf data;    /* the message, canonical CRLF */
	const char **rcpts; /* envelope recipients: to, cc, bcc in order, duplicates dropped */
	size_t rcpt_count;
	char field[MIME_FIELD_MAX];     /* on error: "to[2]", "headers[X-Tag]", ... */
	char message[MIME_MESSAGE_MAX]; /* on error: one line naming the field, safe to show */
};

void mime_out_init(struct mime_out *out);
/* Free data and rcpts; out is empty and reusable afterwards. */
void mime_out_fini(struct mime_out *out);

/*
 * Build the message m into out (emptied first). On MIME_OK out->data holds the message and
 * out->rcpts the envelope recipients; otherwise out->data is empty, out->rcpt_count 0, and
 * out->field and out->message say what is wrong.
 */
enum mime_error mime_build(const struct mime_msg *m, struct mime_out *out);

/* HTTP status for an error: 400 for malformed input (control bytes, bad UTF-8, bad header name),
 * 422 for well-formed but unacceptable fields; 200 for MIME_OK. */
int mime_error_http_status(enum mime_error e);
/* Short snake_case code for the JSON error ("bad_address", ...). */
const char *mime_error_code(enum mime_error e);

#endif
