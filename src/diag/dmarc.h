/*
 * dmarc.h - DMARC policy records (RFC 7489 6.3, 6.4) at _dmarc.<domain>.
 *
 * "v=DMARC1" must be the first tag and p= is required (a record without it is treated as
 * invalid here, though 6.6.3 lets receivers fall back to rua=-only handling). Unknown tags are
 * ignored, as the RFC asks.
 * Thread: any. Pure.
 */
#ifndef HK_DMARC_H
#define HK_DMARC_H

#include <stdbool.h>
#include <stddef.h>

enum dmarc_policy { DMARC_POLICY_NONE = 0, DMARC_POLICY_QUARANTINE, DMARC_POLICY_REJECT };

struct dmarc_record {
	enum dmarc_policy p;
	bool has_sp;
	enum dmarc_policy sp;
	unsigned pct;      /* 0..100, default 100 */
	bool has_rua;
	char rua[512];     /* as written (comma-separated URIs), cut to fit */
	bool rua_ok;       /* every rua URI is mailto: */
	bool strict_dkim;  /* adkim=s */
	bool strict_spf;   /* aspf=s */
};

enum dmarc_parse_result {
	DMARC_PARSE_OK = 0,
	DMARC_PARSE_NOT_DMARC, /* does not start with v=DMARC1: not a DMARC record */
	DMARC_PARSE_BAD,       /* a DMARC record receivers will ignore: *why says why */
};

/* True when the TXT text starts with the tag v=DMARC1. */
bool dmarc_is_record(const char *txt, size_t len);
enum dmarc_parse_result dmarc_parse(const char *txt, size_t len, struct dmarc_record *out,
    const char **why);
const char *dmarc_policy_name(enum dmarc_policy p);

#endif
