/*
 * smtp_reply.h - parse SMTP replies received by a client (RFC 5321 4.2, RFC 3463 enhanced codes).
 *
 * Strict and bounded: a reply is at most SMTP_REPLY_MAX_LINES lines and SMTP_REPLY_MAX_TEXT text
 * bytes; lines must agree on the code. Anything malformed is reported, and the caller treats it as
 * a temporary failure.
 * Pure. Thread: any.
 */
#ifndef HK_SMTP_REPLY_H
#define HK_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_REPLY_MAX_LINES 100
#define SMTP_REPLY_MAX_TEXT 4096

enum smtp_reply_result {
	SMTP_REPLY_MORE = 0, /* line accepted; the reply continues */
	SMTP_REPLY_DONE,     /* last line seen; the reply is complete */
	SMTP_REPLY_BAD,      /* malformed */
};

struct smtp_reply {
	int code;          /* 200..599 */
	int enh_class;     /* enhanced status class.subject.detail; class 0 when absent */
	int enh_subject;
	int enh_detail;
	char text[SMTP_REPLY_MAX_TEXT + 1]; /* lines' texts (without codes) joined by "\n" */
	size_t text_len;
	unsigned nlines;
};

void smtp_reply_init(struct smtp_reply *r);
/*
 * Feed one line without its CRLF. The enhanced code is taken from the first line's text when its
 * class agrees with the reply code (RFC 3463 3); that same code is dropped from the start of each
 * line's text. Text may hold 8-bit bytes and HT; other control bytes (NUL, CR, LF) are BAD. After
 * DONE or BAD, call smtp_reply_init() before the next reply.
 */
enum smtp_reply_result smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len,
    const char **why);
/* Parse "5.1.1" at the start of p; returns the chars consumed (0 when not an enhanced code). */
size_t smtp_reply_parse_enhanced(const char *p, size_t len, int *cls, int *subj, int *det);

#endif
