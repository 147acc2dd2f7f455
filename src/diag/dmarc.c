/*
 * dmarc.c - DMARC record syntax (RFC 7489 6.4).
 */
#include <string.h>

#include "../util/num.h"
#include "../util/str.h"
#include "dmarc.h"
#include "taglist.h"
#include "../util/poison.h"

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	return p == DMARC_POLICY_REJECT ? "reject" :
	    p == DMARC_POLICY_QUARANTINE ? "quarantine" : "none";
}

bool
dmarc_is_record(const char *txt, size_t len)
{
	struct taglist tl;
	struct taglist_tag t;
	const char *why;

	taglist_init(&tl, txt, len);
	return taglist_next(&tl, &t, &why) == 1 && str_eq_ci(t.name, t.name_len, "v") &&
	    str_eq_ci(t.value, t.value_len, "DMARC1");
}

static int
dmarc_policy(const struct taglist_tag *t, enum dmarc_policy *out)
{
	if (str_eq_ci(t->value, t->value_len, "none"))
		*out = DMARC_POLICY_NONE;
	else if (str_eq_ci(t->value, t->value_len, "quarantine"))
		*out = DMARC_POLICY_QUARANTINE;
	else if (str_eq_ci(t->value, t->value_len, "reject"))
		*out = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

/* Every comma-separated URI of rua= is mailto: (RFC 7489 6.2 allows others; few use them). */
static bool
dmarc_rua_ok(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t e = i;

		while (e < n && p[e] != ',')
			e++;
		while (i < e && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (e - i < 8 || !str_has_prefix_ci(p + i, e - i, "mailto:") ||
		    memchr(p + i, '@', e - i) == NULL)
			return false;
		i = e + 1;
	}
	return n > 0;
}

enum dmarc_parse_result
dmarc_parse(const char *txt, size_t len, struct dmarc_record *out, const char **why)
{
	struct taglist tl;
	struct taglist_tag t;
	bool has_p = false, first = true;
	int rc;

	memset(out, 0, sizeof(*out));
	out->pct = 100;
	*why = NULL;
	if (!dmarc_is_record(txt, len)) {
		*why = "not a DMARC record (it must start with v=DMARC1)";
		return DMARC_PARSE_NOT_DMARC;
	}
	taglist_init(&tl, txt, len);
	while ((rc = taglist_next(&tl, &t, why)) == 1) {
		uint64_t v;

		if (first) {
			first = false;
			continue;
		}
		if (str_eq_ci(t.name, t.name_len, "p")) {
			if (dmarc_policy(&t, &out->p) == -1) {
				*why = "p= must be none, quarantine or reject";
				return DMARC_PARSE_BAD;
			}
			has_p = true;
		} else if (str_eq_ci(t.name, t.name_len, "sp")) {
			if (dmarc_policy(&t, &out->sp) == -1) {
				*why = "sp= must be none, quarantine or reject";
				return DMARC_PARSE_BAD;
			}
			out->has_sp = true;
		} else if (str_eq_ci(t.name, t.name_len, "pct")) {
			if (num_parse_u64(t.value, t.value_len, 100, &v) == -1) {
				*why = "pct= must be a number from 0 to 100";
				return DMARC_PARSE_BAD;
			}
			out->pct = (unsigned)v;
		} else if (str_eq_ci(t.name, t.name_len, "rua")) {
			size_t n = t.value_len < sizeof(out->rua) - 1 ? t.value_len :
			    sizeof(out->rua) - 1;

			out->has_rua = true;
			memcpy(out->rua, t.value, n);
			out->rua[n] = '\0';
			out->rua_ok = dmarc_rua_ok(t.value, t.value_len);
		} else if (str_eq_ci(t.name, t.name_len, "adkim") ||
		    str_eq_ci(t.name, t.name_len, "aspf")) {
			bool s = str_eq_ci(t.value, t.value_len, "s");

			if (!s && !str_eq_ci(t.value, t.value_len, "r")) {
				*why = "adkim= and aspf= must be r or s";
				return DMARC_PARSE_BAD;
			}
			if (t.name_len == 5)
				out->strict_dkim = s;
			else
				out->strict_spf = s;
		} else if (str_eq_ci(t.name, t.name_len, "v")) {
			*why = "v= appears twice";
			return DMARC_PARSE_BAD;
		}
	}
	if (rc == -1)
		return DMARC_PARSE_BAD;
	if (!has_p) {
		*why = "the required p= tag is missing";
		return DMARC_PARSE_BAD;
	}
	return DMARC_PARSE_OK;
}
