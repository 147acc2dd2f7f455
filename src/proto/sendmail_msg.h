/*
 * sendmail_msg.h - the message a sendmail-compatible command reads on its standard input.
 *
 * Turns what PHP's mail(), cron and friends write into a canonical spool body (DESIGN.md 11):
 * LF or CRLF line ends become CRLF; a line holding only "." ends the input unless dot_is_data
 * (-i, -oi); a leading mbox "From " line is dropped; Bcc fields are always removed; with
 * extract_rcpts (-t) the recipients are collected from To, Cc and Bcc (folded lines, groups,
 * comments, quoted strings); From (with the -F display name, RFC 2047 encoded when not ASCII),
 * Date and Message-ID are added at the end of the header section when missing. A header section
 * that ends without an empty line gets one. The body is never dot-stuffed.
 * Refused: NUL bytes and a CR not followed by LF (they cannot be sent as CRLF lines safely),
 * recipient fields that are not address lists, more than max_rcpts recipients, output over
 * max_size.
 * Pure: no I/O, no clock (the caller passes the time and the Message-ID). Thread: any.
 * Ownership: struct sendmail_msg owns its buffers and strings; sendmail_msg_fini() frees them.
 */
#ifndef HK_SENDMAIL_MSG_H
#define HK_SENDMAIL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"

struct sendmail_msg_opts {
	bool extract_rcpts;     /* -t */
	bool dot_is_data;       /* -i, -oi */
	const char *from_addr;  /* address of an added From: field (not NULL, not empty) */
	const char *from_name;  /* -F display name; NULL: none */
	int64_t now;            /* seconds since the epoch, for an added Date: field */
	int tz_minutes;         /* offset of the added Date: */
	const char *message_id; /* "<left@right>" for an added Message-ID: field */
	size_t max_size;        /* bytes of the resulting body; 0: no limit */
	size_t max_rcpts;       /* recipients found in headers; 0: no limit */
};

enum sendmail_msg_result {
	SENDMAIL_MSG_OK = 0,
	SENDMAIL_MSG_TOO_BIG,
	SENDMAIL_MSG_BAD_DATA,       /* NUL byte or bare CR */
	SENDMAIL_MSG_BAD_ADDR,       /* -t: a To/Cc/Bcc value that is no address list; see bad */
	SENDMAIL_MSG_TOO_MANY_RCPTS, /* -t: more than max_rcpts */
	SENDMAIL_MSG_BAD_NAME,       /* -F holds a control character or is not UTF-8 */
};

struct sendmail_msg {
	struct buf body; /* CRLF lines, header section, empty line, body */
	char **rcpts;    /* -t: the addresses found, in order, without duplicates */
	size_t n_rcpts;
	struct buf bad;  /* SENDMAIL_MSG_BAD_ADDR: the offending text */
	bool added_from, added_date, added_msgid;
};

void sendmail_msg_init(struct sendmail_msg *m);
/* Free what m owns; m is reusable after sendmail_msg_init(). */
void sendmail_msg_fini(struct sendmail_msg *m);

/*
 * Build m (initialised by the caller) from in[0..len) under o. On failure *why (when not NULL)
 * gets a static explanation and m may hold partial results (free them with sendmail_msg_fini()).
 */
enum sendmail_msg_result sendmail_msg_parse(const char *in, size_t len,
    const struct sendmail_msg_opts *o, struct sendmail_msg *m, const char **why);

/*
 * Append the display name as an RFC 5322 phrase: atoms as they are, other ASCII as a quoted
 * string, anything with 8-bit bytes as RFC 2047 "B" encoded words of at most 75 characters
 * separated by CRLF SP (so the caller's line may be folded). -1 for control bytes or bad UTF-8.
 */
int sendmail_msg_phrase(struct buf *out, const char *name, size_t len);

#endif
