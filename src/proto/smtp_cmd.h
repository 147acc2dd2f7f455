/*
 * smtp_cmd.h - parse SMTP commands received by the server (RFC 5321, 1869, 2920, 3030, 3461,
 * 4954, 6152, 6531, 1870).
 *
 * Pure: no I/O, no clock, no allocation except into caller-provided buffers/structs.
 * Input: one command line WITHOUT its CRLF (the connection layer strips it and enforces the line
 * length limit). Lines may contain any byte; NUL or a bare CR/LF inside the line is a syntax error.
 * Output structs hold copies (fixed RFC-bounded arrays), never pointers into the line, except
 * struct smtp_cmd, whose arg points into the caller's line.
 * Thread: any.
 */
#ifndef HK_SMTP_CMD_H
#define HK_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_COUNT,
};

enum smtp_cmd_result {
	SMTP_CMD_OK = 0,
	SMTP_CMD_UNKNOWN,       /* 500 5.5.2: unrecognised verb */
	SMTP_CMD_SYNTAX,        /* 501 5.5.4: syntax error in parameters or arguments */
	SMTP_CMD_PARAM_UNKNOWN, /* 555 5.5.4: MAIL/RCPT parameter not recognised */
	SMTP_CMD_TOO_LONG,      /* 501 5.5.4 / 552: an element exceeds its RFC limit */
};

/* A parsed command line: the verb and its argument (after one space), borrowed from the line. */
struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg; /* NULL when the verb had no argument */
	size_t arg_len;
};

/* Upper-case verb name ("MAIL"). */
const char *smtp_verb_name(enum smtp_verb v);

/*
 * Split a line into verb and argument. Verbs are case-insensitive. HELO/EHLO/MAIL/RCPT/VRFY/EXPN/
 * BDAT/AUTH need an argument; DATA/RSET/QUIT/STARTTLS take none; NOOP and HELP take an optional
 * string (RFC 5321 4.1.1). Spaces around the argument are dropped. Any NUL, CR or LF in the line
 * -> SMTP_CMD_SYNTAX; an unknown verb -> SMTP_CMD_UNKNOWN (out->verb SMTP_VERB_UNKNOWN).
 */
enum smtp_cmd_result smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out,
    const char **why);

/* RFC 5321 4.5.3.1: path 256 octets; we allow more bytes for UTF-8 (RFC 6531) addresses. */
#define SMTP_PATH_MAX 512
#define SMTP_ENVID_MAX 100  /* RFC 3461 4.4 (xtext form) */
#define SMTP_ORCPT_MAX 500  /* RFC 3461 4.2 (addr-type ";" xtext form) */
#define SMTP_DOMAIN_MAX 255 /* RFC 5321 4.5.3.1.2 */

enum smtp_body_type { SMTP_BODY_UNSPEC = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_UNSPEC = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

#define SMTP_NOTIFY_NEVER 0x1u
#define SMTP_NOTIFY_SUCCESS 0x2u
#define SMTP_NOTIFY_FAILURE 0x4u
#define SMTP_NOTIFY_DELAY 0x8u

/* MAIL FROM:<path> [params]. */
struct smtp_mail_args {
	char addr[SMTP_PATH_MAX]; /* mailbox without <>; "" for the null sender <> */
	bool has_size;
	uint64_t size;           /* SIZE= (RFC 1870) */
	enum smtp_body_type body; /* BODY= (RFC 6152, 3030) */
	bool smtputf8;            /* SMTPUTF8 (RFC 6531) */
	enum smtp_ret ret;        /* RET= (RFC 3461) */
	char envid[SMTP_ENVID_MAX + 1]; /* ENVID= as received (valid xtext), "" if absent */
	char auth[SMTP_PATH_MAX]; /* AUTH= as received (valid xtext), "" if absent (RFC 4954 5) */
	bool had_route;           /* a source route was given and stripped */
};

/* RCPT TO:<path> [params]. */
struct smtp_rcpt_args {
	char addr[SMTP_PATH_MAX];       /* mailbox without <>; "Postmaster" allowed */
	unsigned notify;                /* SMTP_NOTIFY_* bits; 0 when not given */
	char orcpt[SMTP_ORCPT_MAX + 1]; /* ORCPT= as received ("rfc822;xtext"), "" if absent */
	bool had_route;                 /* a source route was given and stripped */
};

/*
 * Parse the argument of MAIL ("FROM:<a@b> SIZE=10 ..."). "FROM:" is case-insensitive; RFC 5321
 * says no space after the colon, but one is tolerated (as Postfix does). Unknown parameters and
 * repeated parameters -> SMTP_CMD_PARAM_UNKNOWN / SMTP_CMD_SYNTAX. SIZE over HK_SIZE_MAX (or
 * overflowing) and over-long ENVID/AUTH=/path -> SMTP_CMD_TOO_LONG. ENVID, AUTH= and ORCPT must be
 * valid xtext that does not decode to a control byte (they end up in DSN header fields). The address is validated with
 * addr_parse() (UTF-8 allowed only with SMTPUTF8). Source routes (@a,@b:u@d) are stripped, as
 * RFC 5321 C allows, and had_route is set so policy can refuse them.
 */
enum smtp_cmd_result smtp_cmd_parse_mail(const char *arg, size_t len, struct smtp_mail_args *out,
    const char **why);
/*
 * Parse the argument of RCPT ("TO:<a@b> NOTIFY=FAILURE ORCPT=rfc822;a@b"). NOTIFY=NEVER cannot
 * combine with other values. utf8_ok: the transaction declared SMTPUTF8.
 */
enum smtp_cmd_result smtp_cmd_parse_rcpt(const char *arg, size_t len, bool utf8_ok,
    struct smtp_rcpt_args *out, const char **why);

/* Parse "BDAT <size> [LAST]" (RFC 3030). size must fit max (so attackers cannot overflow). */
enum smtp_cmd_result smtp_cmd_parse_bdat(const char *arg, size_t len, uint64_t max,
    uint64_t *size, bool *last, const char **why);

/*
 * Parse "AUTH <mechanism> [initial-response]" (RFC 4954). mech gets the upper-cased mechanism
 * name (max 20 chars per RFC 4422); ir points into arg (NULL when absent; "=" means empty).
 */
enum smtp_cmd_result smtp_cmd_parse_auth(const char *arg, size_t len, char mech[21],
    const char **ir, size_t *ir_len, const char **why);

/*
 * Validate an EHLO/HELO argument: a domain (letters, digits, hyphens, dots; '_' tolerated for
 * misnamed hosts; UTF-8 not allowed) or an address literal [1.2.3.4] / [IPv6:...]. Trailing
 * words after the domain are tolerated by HELO per common practice, not by EHLO. out gets the
 * domain or literal.
 */
enum smtp_cmd_result smtp_cmd_parse_helo(const char *arg, size_t len, bool ehlo,
    char out[SMTP_DOMAIN_MAX + 1], const char **why);

#endif
