/* trouble.c - classify a delivery failure into level, kind and verdict (DESIGN.md 7). */
#include <string.h>

#include "trouble.h"
#include "../util/poison.h"

/* Explainer rows for failures without a reply, by enum trouble_local. */
static const char *const trouble_local_ids[] = {
	[TROUBLE_LOCAL_NONE] = NULL,
	[TROUBLE_LOCAL_TIMEOUT] = "local-timeout",
	[TROUBLE_LOCAL_DISCONNECT] = "local-disconnect",
	[TROUBLE_LOCAL_REFUSED] = "local-refused",
	[TROUBLE_LOCAL_TLS_FAILED] = "local-tls-failed",
	[TROUBLE_LOCAL_CERT_INVALID] = "local-cert-invalid",
	[TROUBLE_LOCAL_STARTTLS_MISSING_REQUIRED] = "local-starttls-missing",
	[TROUBLE_LOCAL_DNS_NXDOMAIN] = "local-dns-nxdomain",
	[TROUBLE_LOCAL_DNS_TEMP] = "local-dns-temp",
	[TROUBLE_LOCAL_NULL_MX] = "local-null-mx",
	[TROUBLE_LOCAL_BAD_REPLY] = "local-bad-reply",
};

/* Which part of the delivery a reply at this stage speaks about. */
static enum trouble_level
trouble_stage_level(enum trouble_stage stage)
{
	switch (stage) {
	case TROUBLE_STAGE_RCPT:
		return TROUBLE_LEVEL_RECIPIENT;
	case TROUBLE_STAGE_MAIL:
	case TROUBLE_STAGE_DATA:
	case TROUBLE_STAGE_BDAT:
	case TROUBLE_STAGE_DOT:
		return TROUBLE_LEVEL_MESSAGE;
	default:
		return TROUBLE_LEVEL_SESSION;
	}
}

static void
trouble_set(struct trouble_result *out, enum trouble_level level, enum trouble_kind kind,
    enum trouble_verdict verdict, const char *why)
{
	out->level = level;
	out->kind = kind;
	out->verdict = verdict;
	out->why = why;
}

/* NEXT, unless nothing is left to try now: then the retry schedule takes over. */
static enum trouble_verdict
trouble_next_or_defer(const struct trouble_input *in)
{
	return in->is_last_eligible_upstream ? TROUBLE_DEFER : TROUBLE_NEXT;
}

static void
trouble_local(const struct trouble_input *in, struct trouble_result *out)
{
	size_t k = (size_t)in->local;

	HK_ASSERT(k < HK_ARRAY_LEN(trouble_local_ids) && trouble_local_ids[k] != NULL);
	out->explain = explain_find_in(in->explain_extra, in->n_explain_extra,
	    trouble_local_ids[k]);
	HK_ASSERT(out->explain != NULL);
	if ((in->local == TROUBLE_LOCAL_TIMEOUT || in->local == TROUBLE_LOCAL_DISCONNECT) &&
	    in->stage == TROUBLE_STAGE_DOT) {
		/* The upstream may have queued it: another upstream now could deliver it twice. */
		out->explain = explain_find_in(in->explain_extra, in->n_explain_extra,
		    "local-lost-after-dot");
		out->maybe_delivered = true;
		trouble_set(out, TROUBLE_LEVEL_MESSAGE, TROUBLE_KIND_TEMPORARY, TROUBLE_DEFER,
		    "lost_after_dot");
		return;
	}
	if (in->local == TROUBLE_LOCAL_NULL_MX) {
		/* RFC 7505 3: a null MX domain accepts no mail; bounce without retrying. */
		trouble_set(out, TROUBLE_LEVEL_MESSAGE, TROUBLE_KIND_PERMANENT, TROUBLE_BOUNCE,
		    "null_mx");
		return;
	}
	if (in->local == TROUBLE_LOCAL_DNS_NXDOMAIN && in->mx_mode) {
		/* With mx: true the name is the recipient's domain: it does not exist. */
		trouble_set(out, TROUBLE_LEVEL_MESSAGE, TROUBLE_KIND_PERMANENT, TROUBLE_BOUNCE,
		    "domain_not_found");
		return;
	}
	trouble_set(out, TROUBLE_LEVEL_SESSION, TROUBLE_KIND_TEMPORARY, trouble_next_or_defer(in),
	    in->local == TROUBLE_LOCAL_STARTTLS_MISSING_REQUIRED ? "starttls_missing" :
								   "local_failure");
}

/* RFC 4954 6: 530 auth required, 534 mechanism too weak, 535 bad credentials, 538 TLS needed. */
static bool
trouble_is_auth_refusal(enum trouble_stage stage, int code)
{
	if (code == 530 || code == 534 || code == 535 || code == 538)
		return true;
	return stage == TROUBLE_STAGE_AUTH;
}

static void
trouble_reply(const struct trouble_input *in, struct trouble_result *out)
{
	const struct smtp_reply *r = in->reply;
	enum trouble_level level = trouble_stage_level(in->stage);
	int cls = r->code / 100;

	if (cls == 2 || cls == 3) {
		trouble_set(out, level, TROUBLE_KIND_NONE, TROUBLE_SENT, "sent");
		return;
	}
	out->explain = explain_reply_in(in->explain_extra, in->n_explain_extra, r);
	HK_ASSERT(out->explain != NULL);
	if ((out->explain->flags & EXPLAIN_QUOTA) != 0 && !(in->mx_mode && cls == 5)) {
		/* DESIGN.md 10: the explainer's quota rows drive SPILL. Direct MX has no window. */
		trouble_set(out, level, TROUBLE_KIND_QUOTA, in->mx_mode ? TROUBLE_DEFER : TROUBLE_SPILL,
		    "quota");
		return;
	}
	if (in->stage == TROUBLE_STAGE_GREETING) {
		/* The host, not the message, is refused (Postfix's smtp_skip_5xx_greeting). */
		trouble_set(out, TROUBLE_LEVEL_SESSION, TROUBLE_KIND_TEMPORARY,
		    trouble_next_or_defer(in), "greeting_refused");
		return;
	}
	if (in->stage == TROUBLE_STAGE_STARTTLS) {
		/* DESIGN.md 13: TLS is required here; never fall back to plaintext. */
		trouble_set(out, TROUBLE_LEVEL_SESSION, TROUBLE_KIND_TEMPORARY,
		    trouble_next_or_defer(in), "starttls_refused");
		return;
	}
	if (trouble_is_auth_refusal(in->stage, r->code)) {
		/* Our credentials or settings are wrong: no point in retrying this upstream soon. */
		out->opens_breaker_now = r->code == 530 || r->code == 534 || r->code == 535 ||
		    r->code == 538 || r->code == 454;
		trouble_set(out, TROUBLE_LEVEL_SESSION,
		    cls == 5 ? TROUBLE_KIND_PERMANENT : TROUBLE_KIND_TEMPORARY,
		    trouble_next_or_defer(in), "auth_refused");
		return;
	}
	if (r->code == 421) {
		/* RFC 5321 3.8: the server is closing the channel. */
		trouble_set(out, TROUBLE_LEVEL_SESSION, TROUBLE_KIND_TEMPORARY,
		    trouble_next_or_defer(in), "service_closing");
		return;
	}
	if (cls == 4) {
		trouble_set(out, level, TROUBLE_KIND_TEMPORARY, trouble_next_or_defer(in),
		    "temporary_reply");
		return;
	}
	/* 5xx from here on. RFC 3463: x.1.x addressing, x.2.x mailbox: no upstream can help. */
	if (in->stage == TROUBLE_STAGE_RCPT && (r->enh_subject == 1 || r->enh_subject == 2) &&
	    r->enh_class == 5) {
		trouble_set(out, TROUBLE_LEVEL_RECIPIENT, TROUBLE_KIND_PERMANENT, TROUBLE_BOUNCE,
		    "rcpt_hard_bounce");
		return;
	}
	if (r->enh_class == 5 && r->enh_subject == 3 && r->enh_detail == 4) {
		trouble_set(out, level, TROUBLE_KIND_PERMANENT,
		    in->has_larger_max_size_upstream && !in->mx_mode ? TROUBLE_NEXT : TROUBLE_BOUNCE,
		    "too_big");
		return;
	}
	if (r->enh_class == 5 && r->enh_subject == 6) {
		trouble_set(out, level, TROUBLE_KIND_PERMANENT, TROUBLE_BOUNCE, "content_rejected");
		return;
	}
	/* Policy, relay denied, sender refused: another upstream may take it; an MX is final. */
	trouble_set(out, level, TROUBLE_KIND_PERMANENT,
	    in->mx_mode || in->is_last_eligible_upstream ? TROUBLE_BOUNCE : TROUBLE_NEXT,
	    "permanent_reply");
}

void
trouble_classify(const struct trouble_input *in, struct trouble_result *out)
{
	memset(out, 0, sizeof(*out));
	if (in->local != TROUBLE_LOCAL_NONE) {
		trouble_local(in, out);
	} else {
		HK_ASSERT(in->reply != NULL);
		trouble_reply(in, out);
	}
	/* The breaker judges the upstream, not our quota use or one message's fate. */
	out->counts_toward_breaker = out->level == TROUBLE_LEVEL_SESSION &&
	    out->verdict != TROUBLE_SENT && out->kind != TROUBLE_KIND_QUOTA &&
	    !out->maybe_delivered;
}

const char *
trouble_verdict_name(enum trouble_verdict v)
{
	static const char *const names[] = {
		[TROUBLE_SENT] = "sent", [TROUBLE_NEXT] = "next", [TROUBLE_SPILL] = "spill",
		[TROUBLE_DEFER] = "defer", [TROUBLE_BOUNCE] = "bounce",
	};

	return (size_t)v < HK_ARRAY_LEN(names) ? names[v] : "unknown";
}

const char *
trouble_level_name(enum trouble_level l)
{
	static const char *const names[] = {
		[TROUBLE_LEVEL_SESSION] = "session", [TROUBLE_LEVEL_MESSAGE] = "message",
		[TROUBLE_LEVEL_RECIPIENT] = "recipient",
	};

	return (size_t)l < HK_ARRAY_LEN(names) ? names[l] : "unknown";
}

const char *
trouble_kind_name(enum trouble_kind k)
{
	static const char *const names[] = {
		[TROUBLE_KIND_NONE] = "none", [TROUBLE_KIND_TEMPORARY] = "temporary",
		[TROUBLE_KIND_PERMANENT] = "permanent", [TROUBLE_KIND_QUOTA] = "quota",
	};

	return (size_t)k < HK_ARRAY_LEN(names) ? names[k] : "unknown";
}

const char *
trouble_stage_name(enum trouble_stage s)
{
	static const char *const names[] = {
		[TROUBLE_STAGE_DNS] = "dns", [TROUBLE_STAGE_CONNECT] = "connect",
		[TROUBLE_STAGE_TLS] = "tls", [TROUBLE_STAGE_GREETING] = "greeting",
		[TROUBLE_STAGE_EHLO] = "ehlo", [TROUBLE_STAGE_STARTTLS] = "starttls",
		[TROUBLE_STAGE_AUTH] = "auth", [TROUBLE_STAGE_MAIL] = "mail",
		[TROUBLE_STAGE_RCPT] = "rcpt", [TROUBLE_STAGE_DATA] = "data",
		[TROUBLE_STAGE_BDAT] = "bdat", [TROUBLE_STAGE_DOT] = "dot",
	};

	return (size_t)s < HK_ARRAY_LEN(names) ? names[s] : "unknown";
}
