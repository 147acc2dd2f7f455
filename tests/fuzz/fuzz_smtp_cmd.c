/*
 * fuzz_smtp_cmd.c - command line parser, then the argument parser of the verb found; the
 * argument parsers are also driven directly with the raw input. Checks: outputs are
 * NUL-terminated, bounded, free of control bytes, and accepted addresses parse again.
 */
#include <stdint.h>
#include <string.h>

#include "proto/addr.h"
#include "proto/smtp_cmd.h"
#include "util/common.h"
#include "util/xtext.h"
#include "util/poison.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_str(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap), i;

	HK_ASSERT(n < cap);
	for (i = 0; i < n; i++)
		HK_ASSERT(s[i] != '\r' && s[i] != '\n');
}

static void
check_mail(const char *arg, size_t len)
{
	struct smtp_mail_args m;
	struct addr_parts p;
	const char *why = NULL;

	if (smtp_cmd_parse_mail(arg, len, &m, &why) != SMTP_CMD_OK) {
		HK_ASSERT(why != NULL);
		return;
	}
	check_str(m.addr, sizeof(m.addr));
	check_str(m.envid, sizeof(m.envid));
	check_str(m.auth, sizeof(m.auth));
	HK_ASSERT(xtext_is_valid(m.envid, strlen(m.envid)));
	HK_ASSERT(!m.has_size || m.size <= ((uint64_t)1 << 50));
	if (m.addr[0] != '\0')
		HK_ASSERT(addr_parse(m.addr, strlen(m.addr), m.smtputf8 ? ADDR_ALLOW_UTF8 : 0, &p,
		    &why) == ADDR_OK);
}

static void
check_rcpt(const char *arg, size_t len, bool utf8)
{
	struct smtp_rcpt_args r;
	struct addr_parts p;
	const char *why = NULL;

	if (smtp_cmd_parse_rcpt(arg, len, utf8, &r, &why) != SMTP_CMD_OK) {
		HK_ASSERT(why != NULL);
		return;
	}
	check_str(r.addr, sizeof(r.addr));
	check_str(r.orcpt, sizeof(r.orcpt));
	HK_ASSERT(r.addr[0] != '\0');
	HK_ASSERT(!(r.notify & SMTP_NOTIFY_NEVER) || r.notify == SMTP_NOTIFY_NEVER);
	HK_ASSERT(addr_parse(r.addr, strlen(r.addr),
	    ADDR_ALLOW_NO_DOMAIN | (utf8 ? ADDR_ALLOW_UTF8 : 0), &p, &why) == ADDR_OK);
	if (!utf8)
		HK_ASSERT(!p.has_utf8);
}

static void
check_args(enum smtp_verb verb, const char *arg, size_t len, bool utf8)
{
	const char *why = NULL, *ir;
	char mech[21], dom[SMTP_DOMAIN_MAX + 1];
	uint64_t sz;
	size_t ir_len;
	bool last;

	switch (verb) {
	case SMTP_VERB_MAIL:
		check_mail(arg, len);
		break;
	case SMTP_VERB_RCPT:
		check_rcpt(arg, len, utf8);
		break;
	case SMTP_VERB_BDAT:
		if (smtp_cmd_parse_bdat(arg, len, 1000000, &sz, &last, &why) == SMTP_CMD_OK)
			HK_ASSERT(sz <= 1000000);
		break;
	case SMTP_VERB_AUTH:
		if (smtp_cmd_parse_auth(arg, len, mech, &ir, &ir_len, &why) == SMTP_CMD_OK) {
			HK_ASSERT(strlen(mech) >= 1 && strlen(mech) <= 20);
			HK_ASSERT(ir == NULL || (ir >= arg && ir + ir_len <= arg + len));
		}
		break;
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		if (smtp_cmd_parse_helo(arg, len, verb == SMTP_VERB_EHLO, dom, &why) == SMTP_CMD_OK) {
			check_str(dom, sizeof(dom));
			HK_ASSERT(dom[0] != '\0' && strchr(dom, ' ') == NULL);
		}
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct smtp_cmd cmd;
	const char *why = NULL;
	bool utf8 = size > 0 && (data[size - 1] & 1);
	int v;

	if (smtp_cmd_parse(line, size, &cmd, &why) == SMTP_CMD_OK) {
		HK_ASSERT(cmd.verb > SMTP_VERB_UNKNOWN && cmd.verb < SMTP_VERB_COUNT);
		HK_ASSERT(cmd.arg == NULL || (cmd.arg >= line && cmd.arg + cmd.arg_len <= line + size));
		HK_ASSERT(cmd.arg == NULL || (cmd.arg_len > 0 && cmd.arg[0] != ' '));
		HK_ASSERT(strlen(smtp_verb_name(cmd.verb)) > 0);
		if (cmd.arg != NULL)
			check_args(cmd.verb, cmd.arg, cmd.arg_len, utf8);
	} else {
		HK_ASSERT(why != NULL);
	}
	/* The argument parsers must also survive input the line parser would refuse. */
	for (v = SMTP_VERB_HELO; v <= SMTP_VERB_AUTH; v++)
		check_args((enum smtp_verb)v, line, size, utf8);
	return 0;
}
