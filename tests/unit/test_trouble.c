/* test_trouble.c - every row of the Outcomes table (DESIGN.md 7), upstream and MX mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "relay/trouble.h"
#include "util/poison.h"

/* Input flags of a case. */
#define LAST 0x1u   /* last eligible upstream */
#define MX 0x2u     /* mx: true */
#define LARGER 0x4u /* a larger upstream exists */

/* Expected flags of a case. */
#define BRK 0x1u   /* counts toward the breaker */
#define OPEN 0x2u  /* opens the breaker now */
#define MAYBE 0x4u /* maybe delivered */

struct trouble_case {
	const char *name;
	enum trouble_stage stage;
	enum trouble_local local;
	const char *reply; /* "550 5.1.1 text" (one line) when local is NONE */
	unsigned in;
	enum trouble_verdict verdict;
	enum trouble_level level;
	enum trouble_kind kind;
	unsigned out;
	const char *explain; /* expected explainer row id, NULL for SENT */
};

#define ST(s) TROUBLE_STAGE_##s
#define LO(l) TROUBLE_LOCAL_##l
#define V(v) TROUBLE_##v
#define LV(l) TROUBLE_LEVEL_##l
#define K(k) TROUBLE_KIND_##k

static const struct trouble_case trouble_cases[] = {
	/* Row: DNS, connect, TLS or certificate failure; greeting not 220; 421; lost before the
	 * final dot -> NEXT, counts toward the breaker; DEFER when nothing is left. */
	{ "dns temp", ST(DNS), LO(DNS_TEMP), NULL, 0, V(NEXT), LV(SESSION), K(TEMPORARY), BRK,
	  "local-dns-temp" },
	{ "dns temp last", ST(DNS), LO(DNS_TEMP), NULL, LAST, V(DEFER), LV(SESSION), K(TEMPORARY),
	  BRK, "local-dns-temp" },
	{ "upstream nxdomain", ST(DNS), LO(DNS_NXDOMAIN), NULL, 0, V(NEXT), LV(SESSION),
	  K(TEMPORARY), BRK, "local-dns-nxdomain" },
	{ "refused", ST(CONNECT), LO(REFUSED), NULL, 0, V(NEXT), LV(SESSION), K(TEMPORARY), BRK,
	  "local-refused" },
	{ "refused last", ST(CONNECT), LO(REFUSED), NULL, LAST, V(DEFER), LV(SESSION),
	  K(TEMPORARY), BRK, "local-refused" },
	{ "connect timeout", ST(CONNECT), LO(TIMEOUT), NULL, 0, V(NEXT), LV(SESSION),
	  K(TEMPORARY), BRK, "local-timeout" },
	{ "tls failed", ST(TLS), LO(TLS_FAILED), NULL, 0, V(NEXT), LV(SESSION), K(TEMPORARY), BRK,
	  "local-tls-failed" },
	{ "cert invalid", ST(TLS), LO(CERT_INVALID), NULL, 0, V(NEXT), LV(SESSION), K(TEMPORARY),
	  BRK, "local-cert-invalid" },
	{ "greeting 554", ST(GREETING), LO(NONE), "554 5.7.1 No SMTP service here", 0, V(NEXT),
	  LV(SESSION), K(TEMPORARY), BRK, "permanent-policy" },
	{ "greeting 554 last", ST(GREETING), LO(NONE), "554 No SMTP service here", LAST,
	  V(DEFER), LV(SESSION), K(TEMPORARY), BRK, "permanent-failure" },
	{ "greeting 421", ST(GREETING), LO(NONE), "421 Too many connections", 0, V(NEXT),
	  LV(SESSION), K(TEMPORARY), BRK, "service-closing" },
	{ "421 at rcpt", ST(RCPT), LO(NONE), "421 4.4.2 mx.example.net Error: timeout exceeded",
	  0, V(NEXT), LV(SESSION), K(TEMPORARY), BRK, "connection-timeout" },
	{ "421 at dot last", ST(DOT), LO(NONE), "421 4.3.2 Service shutting down", LAST,
	  V(DEFER), LV(SESSION), K(TEMPORARY), BRK, "service-closing" },
	{ "disconnect at mail", ST(MAIL), LO(DISCONNECT), NULL, 0, V(NEXT), LV(SESSION),
	  K(TEMPORARY), BRK, "local-disconnect" },
	{ "timeout at data", ST(DATA), LO(TIMEOUT), NULL, 0, V(NEXT), LV(SESSION), K(TEMPORARY),
	  BRK, "local-timeout" },
	{ "timeout in bdat chunk", ST(BDAT), LO(TIMEOUT), NULL, 0, V(NEXT), LV(SESSION),
	  K(TEMPORARY), BRK, "local-timeout" },
	{ "malformed reply", ST(EHLO), LO(BAD_REPLY), NULL, 0, V(NEXT), LV(SESSION),
	  K(TEMPORARY), BRK, "local-bad-reply" },

	/* Row: STARTTLS required but missing or refused -> NEXT, never plaintext. */
	{ "starttls missing", ST(EHLO), LO(STARTTLS_MISSING_REQUIRED), NULL, 0, V(NEXT),
	  LV(SESSION), K(TEMPORARY), BRK, "local-starttls-missing" },
	{ "starttls missing last", ST(EHLO), LO(STARTTLS_MISSING_REQUIRED), NULL, LAST, V(DEFER),
	  LV(SESSION), K(TEMPORARY), BRK, "local-starttls-missing" },
	{ "starttls 454", ST(STARTTLS), LO(NONE), "454 4.7.0 TLS not available due to local problem",
	  0, V(NEXT), LV(SESSION), K(TEMPORARY), BRK, "tls-unavailable" },
	{ "starttls 502", ST(STARTTLS), LO(NONE), "502 5.5.1 Error: command not implemented", 0,
	  V(NEXT), LV(SESSION), K(TEMPORARY), BRK, "protocol-error" },
	{ "starttls 502 last", ST(STARTTLS), LO(NONE), "502 5.5.1 Error: command not implemented",
	  LAST, V(DEFER), LV(SESSION), K(TEMPORARY), BRK, "protocol-error" },

	/* Row: AUTH refused (530/534/535/454) -> NEXT; breaker opens at once. */
	{ "auth 535", ST(AUTH), LO(NONE), "535 5.7.8 Error: authentication failed: authentication "
	  "failure", 0, V(NEXT), LV(SESSION), K(PERMANENT), BRK | OPEN, "auth-failed" },
	{ "auth 535 last", ST(AUTH), LO(NONE), "535 5.7.8 Error: authentication failed", LAST,
	  V(DEFER), LV(SESSION), K(PERMANENT), BRK | OPEN, "auth-failed" },
	{ "auth 534", ST(AUTH), LO(NONE), "534 5.7.9 Authentication mechanism is too weak", 0,
	  V(NEXT), LV(SESSION), K(PERMANENT), BRK | OPEN, "auth-mechanism-weak" },
	{ "auth 454", ST(AUTH), LO(NONE), "454 4.7.0 Temporary authentication failure", 0,
	  V(NEXT), LV(SESSION), K(TEMPORARY), BRK | OPEN, "auth-temp-failure" },
	{ "530 at mail", ST(MAIL), LO(NONE), "530 5.7.0 Authentication required", 0, V(NEXT),
	  LV(SESSION), K(PERMANENT), BRK | OPEN, "auth-required" },
	{ "auth 504 mechanism", ST(AUTH), LO(NONE), "504 5.5.4 Unrecognized authentication type",
	  0, V(NEXT), LV(SESSION), K(PERMANENT), BRK, "protocol-error" },

	/* Row: a quota entry of the explainer -> SPILL (also on the last upstream). */
	{ "gmail daily quota", ST(DOT), LO(NONE), "550 5.4.5 Daily user sending limit exceeded.",
	  0, V(SPILL), LV(MESSAGE), K(QUOTA), 0, "gmail-daily-quota" },
	{ "gmail daily quota last", ST(MAIL), LO(NONE), "550 5.4.5 Daily user sending limit "
	  "exceeded.", LAST, V(SPILL), LV(MESSAGE), K(QUOTA), 0, "gmail-daily-quota" },
	{ "gmail rate limited", ST(RCPT), LO(NONE), "421 4.7.28 Our system has detected an unusual "
	  "rate of unsolicited mail", 0, V(SPILL), LV(RECIPIENT), K(QUOTA), 0,
	  "gmail-rate-limited" },
	{ "too many recipients", ST(RCPT), LO(NONE), "452 4.5.3 Too many recipients", 0, V(SPILL),
	  LV(RECIPIENT), K(QUOTA), 0, "microsoft-too-many-recipients" },
	{ "login attempts", ST(AUTH), LO(NONE), "454 4.7.0 Too many login attempts, please try "
	  "again later.", 0, V(SPILL), LV(SESSION), K(QUOTA), 0, "login-throttled" },
	{ "ses rate", ST(DOT), LO(NONE), "454 Throttling failure: Maximum sending rate exceeded.",
	  0, V(SPILL), LV(MESSAGE), K(QUOTA), 0, "ses-max-send-rate" },
	{ "outlook recipient limit at rcpt", ST(RCPT), LO(NONE), "550 5.1.90 Your message can't be "
	  "sent because you've reached your daily limit for message recipients", 0, V(SPILL),
	  LV(RECIPIENT), K(QUOTA), 0, "microsoft-daily-recipient-limit" },
	{ "5.7.708 is not quota", ST(RCPT), LO(NONE), "550 5.7.708 Service unavailable. Access "
	  "denied, traffic not accepted from this IP.", 0, V(NEXT), LV(RECIPIENT), K(PERMANENT), 0,
	  "microsoft-ip-blocked" },

	/* Row: RCPT 5xx x.1.x or x.2.x -> BOUNCE that recipient, no other upstream. */
	{ "rcpt 5.1.1", ST(RCPT), LO(NONE), "550 5.1.1 <x@example.net>: Recipient address "
	  "rejected: User unknown", 0, V(BOUNCE), LV(RECIPIENT), K(PERMANENT), 0,
	  "user-unknown-text" },
	{ "rcpt 5.1.10", ST(RCPT), LO(NONE), "550 5.1.10 RESOLVER.ADR.RecipientNotFound", 0,
	  V(BOUNCE), LV(RECIPIENT), K(PERMANENT), 0, "microsoft-recipient-not-found" },
	{ "rcpt 5.2.2", ST(RCPT), LO(NONE), "552 5.2.2 Mailbox full", 0, V(BOUNCE), LV(RECIPIENT),
	  K(PERMANENT), 0, "mailbox-full" },
	{ "rcpt 5.2.1 mx", ST(RCPT), LO(NONE), "550 5.2.1 The email account that you tried to "
	  "reach is disabled.", MX, V(BOUNCE), LV(RECIPIENT), K(PERMANENT), 0, "mailbox-disabled" },
	{ "rcpt 4.2.2 is temporary", ST(RCPT), LO(NONE), "452 4.2.2 The email account that you "
	  "tried to reach is over quota.", 0, V(NEXT), LV(RECIPIENT), K(TEMPORARY), 0,
	  "mailbox-full" },
	{ "5.1.1 at mail is not a recipient", ST(MAIL), LO(NONE), "550 5.1.1 Sender unknown", 0,
	  V(NEXT), LV(MESSAGE), K(PERMANENT), 0, "user-unknown" },

	/* Row: 5xx 5.3.4 -> NEXT to a larger upstream, else BOUNCE. */
	{ "too big, larger exists", ST(DOT), LO(NONE), "552 5.3.4 Message too big for "
	  "system", LARGER, V(NEXT), LV(MESSAGE), K(PERMANENT), 0, "message-too-big" },
	{ "too big, none larger", ST(DOT), LO(NONE), "552 5.3.4 Message too big for system",
	  0, V(BOUNCE), LV(MESSAGE), K(PERMANENT), 0, "message-too-big" },
	{ "too big at mail size=", ST(MAIL), LO(NONE), "552 5.3.4 Message too big for "
	  "system", LARGER | LAST, V(NEXT), LV(MESSAGE), K(PERMANENT), 0, "message-too-big" },
	{ "too big mx", ST(DOT), LO(NONE), "552 5.3.4 Message too big for system",
	  MX | LARGER, V(BOUNCE), LV(MESSAGE), K(PERMANENT), 0, "message-too-big" },

	/* Row: 5xx 5.6.x -> BOUNCE. */
	{ "content 5.6.0", ST(DOT), LO(NONE), "554 5.6.0 Message contains invalid header", 0,
	  V(BOUNCE), LV(MESSAGE), K(PERMANENT), 0, "media-error" },
	{ "content bare lf", ST(DOT), LO(NONE), "550 5.6.11 SMTPSEND.BareLinefeedsAreIllegal", 0,
	  V(BOUNCE), LV(MESSAGE), K(PERMANENT), 0, "microsoft-bare-linefeeds" },

	/* Row: other 5xx -> NEXT; BOUNCE on the last eligible upstream. */
	{ "relay denied", ST(RCPT), LO(NONE), "554 5.7.1 <x@example.net>: Relay access denied", 0,
	  V(NEXT), LV(RECIPIENT), K(PERMANENT), 0, "relay-denied" },
	{ "relay denied last", ST(RCPT), LO(NONE), "554 5.7.1 <x@example.net>: Relay access "
	  "denied", LAST, V(BOUNCE), LV(RECIPIENT), K(PERMANENT), 0, "relay-denied" },
	{ "sender refused", ST(MAIL), LO(NONE), "553 5.7.1 <a@example.com>: Sender address "
	  "rejected: not owned by user x", 0, V(NEXT), LV(MESSAGE), K(PERMANENT), 0,
	  "sender-not-owned" },
	{ "spam at dot last", ST(DOT), LO(NONE), "550 5.7.1 Message rejected as spam", LAST,
	  V(BOUNCE), LV(MESSAGE), K(PERMANENT), 0, "spam-content" },
	{ "ehlo refused", ST(EHLO), LO(NONE), "550 5.7.1 Your HELO name is not acceptable", 0,
	  V(NEXT), LV(SESSION), K(PERMANENT), BRK, "permanent-policy" },
	{ "no enhanced code", ST(RCPT), LO(NONE), "550 Requested action not taken", 0, V(NEXT),
	  LV(RECIPIENT), K(PERMANENT), 0, "permanent-failure" },

	/* Row: other 4xx -> NEXT; DEFER on the last eligible upstream. */
	{ "greylisted", ST(RCPT), LO(NONE), "450 4.2.0 Recipient address rejected: Greylisted", 0,
	  V(NEXT), LV(RECIPIENT), K(TEMPORARY), 0, "greylisted" },
	{ "greylisted last", ST(RCPT), LO(NONE), "451 4.7.1 Please try again later", LAST,
	  V(DEFER), LV(RECIPIENT), K(TEMPORARY), 0, "greylisted-text" },
	{ "storage at dot", ST(DOT), LO(NONE), "452 4.3.1 Insufficient system storage", 0, V(NEXT),
	  LV(MESSAGE), K(TEMPORARY), 0, "server-storage" },
	{ "4xx at mail last", ST(MAIL), LO(NONE), "451 4.3.0 Temporary lookup failure", LAST,
	  V(DEFER), LV(MESSAGE), K(TEMPORARY), 0, "server-local-error" },
	{ "4xx at ehlo", ST(EHLO), LO(NONE), "450 Try later", 0, V(NEXT), LV(SESSION),
	  K(TEMPORARY), BRK, "temporary-failure" },

	/* Row: timeout or disconnect after the final dot -> DEFER, maybe delivered. */
	{ "timeout after dot", ST(DOT), LO(TIMEOUT), NULL, 0, V(DEFER), LV(MESSAGE), K(TEMPORARY),
	  MAYBE, "local-lost-after-dot" },
	{ "disconnect after dot", ST(DOT), LO(DISCONNECT), NULL, 0, V(DEFER), LV(MESSAGE),
	  K(TEMPORARY), MAYBE, "local-lost-after-dot" },
	{ "disconnect after dot mx", ST(DOT), LO(DISCONNECT), NULL, MX | LAST, V(DEFER),
	  LV(MESSAGE), K(TEMPORARY), MAYBE, "local-lost-after-dot" },

	/* With mx: true, NEXT means the next MX host and any 5xx is final. */
	{ "mx refused", ST(CONNECT), LO(REFUSED), NULL, MX, V(NEXT), LV(SESSION), K(TEMPORARY),
	  BRK, "local-refused" },
	{ "mx refused last host", ST(CONNECT), LO(REFUSED), NULL, MX | LAST, V(DEFER),
	  LV(SESSION), K(TEMPORARY), BRK, "local-refused" },
	{ "mx 4xx", ST(RCPT), LO(NONE), "450 4.2.0 Greylisted", MX, V(NEXT), LV(RECIPIENT),
	  K(TEMPORARY), 0, "greylisted" },
	{ "mx 5xx policy", ST(RCPT), LO(NONE), "554 5.7.1 Relay access denied", MX, V(BOUNCE),
	  LV(RECIPIENT), K(PERMANENT), 0, "relay-denied" },
	{ "mx 5xx at dot", ST(DOT), LO(NONE), "550 5.7.26 Unauthenticated email is not accepted",
	  MX, V(BOUNCE), LV(MESSAGE), K(PERMANENT), 0, "gmail-dmarc" },
	{ "mx blocklisted", ST(RCPT), LO(NONE), "554 5.7.1 Service unavailable; Client host "
	  "[203.0.113.5] blocked using zen.spamhaus.org", MX, V(BOUNCE), LV(RECIPIENT),
	  K(PERMANENT), 0, "spamhaus-listed" },
	{ "mx 4xx quota defers", ST(RCPT), LO(NONE), "421 4.7.28 Our system has detected an "
	  "unusual rate of unsolicited mail", MX, V(DEFER), LV(RECIPIENT), K(QUOTA), 0,
	  "gmail-rate-limited" },
	{ "mx 5xx quota is final", ST(DOT), LO(NONE), "550 5.4.5 Daily user sending limit "
	  "exceeded.", MX, V(BOUNCE), LV(MESSAGE), K(PERMANENT), 0, "gmail-daily-quota" },
	{ "mx greeting 554 tries next host", ST(GREETING), LO(NONE), "554 5.7.1 No service", MX,
	  V(NEXT), LV(SESSION), K(TEMPORARY), BRK, "permanent-policy" },
	{ "mx nxdomain", ST(DNS), LO(DNS_NXDOMAIN), NULL, MX, V(BOUNCE), LV(MESSAGE),
	  K(PERMANENT), 0, "local-dns-nxdomain" },
	{ "mx null mx", ST(DNS), LO(NULL_MX), NULL, MX, V(BOUNCE), LV(MESSAGE), K(PERMANENT), 0,
	  "local-null-mx" },
	{ "mx dns temp", ST(DNS), LO(DNS_TEMP), NULL, MX | LAST, V(DEFER), LV(SESSION),
	  K(TEMPORARY), BRK, "local-dns-temp" },

	/* Success. */
	{ "sent", ST(DOT), LO(NONE), "250 2.0.0 Ok: queued as 4Z1x", 0, V(SENT), LV(MESSAGE),
	  K(NONE), 0, NULL },
	{ "rcpt ok", ST(RCPT), LO(NONE), "250 2.1.5 Ok", LAST | MX, V(SENT), LV(RECIPIENT),
	  K(NONE), 0, NULL },
	{ "data 354", ST(DATA), LO(NONE), "354 End data with <CR><LF>.<CR><LF>", 0, V(SENT),
	  LV(MESSAGE), K(NONE), 0, NULL },
};

/* One-line "ddd c.s.d text" into a struct smtp_reply, without the reply parser. */
static void
trouble_make_reply(const char *line, struct smtp_reply *r)
{
	const char *t = line + 4;
	int s = 0, d = 0;

	memset(r, 0, sizeof(*r));
	r->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	r->nlines = 1;
	if (t[0] >= '2' && t[0] <= '5' && t[1] == '.') {
		const char *q = t + 2;

		while (*q >= '0' && *q <= '9')
			s = s * 10 + (*q++ - '0');
		if (*q == '.') {
			q++;
			while (*q >= '0' && *q <= '9')
				d = d * 10 + (*q++ - '0');
			if (*q == ' ') {
				r->enh_class = t[0] - '0';
				r->enh_subject = s;
				r->enh_detail = d;
				t = q + 1;
			}
		}
	}
	r->text_len = strlen(t);
	assert_true(r->text_len <= SMTP_REPLY_MAX_TEXT);
	memcpy(r->text, t, r->text_len + 1);
}

static void
trouble_run(const struct trouble_case *c, struct trouble_result *res)
{
	struct trouble_input in;
	struct smtp_reply r;

	memset(&in, 0, sizeof(in));
	in.stage = c->stage;
	in.local = c->local;
	if (c->reply != NULL) {
		trouble_make_reply(c->reply, &r);
		in.reply = &r;
	}
	in.is_last_eligible_upstream = (c->in & LAST) != 0;
	in.mx_mode = (c->in & MX) != 0;
	in.has_larger_max_size_upstream = (c->in & LARGER) != 0;
	trouble_classify(&in, res);
}

static void
test_trouble_outcomes_table(void **state)
{
	struct trouble_result res;
	size_t i;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(trouble_cases); i++) {
		const struct trouble_case *c = &trouble_cases[i];

		trouble_run(c, &res);
		if (res.verdict != c->verdict)
			fail_msg("%s: verdict %s, want %s (%s)", c->name,
			    trouble_verdict_name(res.verdict), trouble_verdict_name(c->verdict),
			    res.why);
		if (res.level != c->level)
			fail_msg("%s: level %s, want %s", c->name, trouble_level_name(res.level),
			    trouble_level_name(c->level));
		if (res.kind != c->kind)
			fail_msg("%s: kind %s, want %s", c->name, trouble_kind_name(res.kind),
			    trouble_kind_name(c->kind));
		if (res.counts_toward_breaker != ((c->out & BRK) != 0))
			fail_msg("%s: counts_toward_breaker %d", c->name, res.counts_toward_breaker);
		if (res.opens_breaker_now != ((c->out & OPEN) != 0))
			fail_msg("%s: opens_breaker_now %d", c->name, res.opens_breaker_now);
		if (res.maybe_delivered != ((c->out & MAYBE) != 0))
			fail_msg("%s: maybe_delivered %d", c->name, res.maybe_delivered);
		if (c->explain == NULL) {
			if (res.explain != NULL)
				fail_msg("%s: explain %s, want none", c->name, res.explain->id);
		} else if (res.explain == NULL || strcmp(res.explain->id, c->explain) != 0) {
			fail_msg("%s: explain %s, want %s", c->name,
			    res.explain != NULL ? res.explain->id : "(none)", c->explain);
		}
		assert_non_null(res.why);
	}
}

/* Whatever the stage or flags, a failure never yields SENT and always has an explanation. */
static void
test_trouble_every_local_kind_at_every_stage(void **state)
{
	struct trouble_input in;
	struct trouble_result res;
	int st, lo;
	unsigned fl;

	(void)state;
	for (st = TROUBLE_STAGE_DNS; st <= TROUBLE_STAGE_DOT; st++)
		for (lo = TROUBLE_LOCAL_TIMEOUT; lo <= TROUBLE_LOCAL_BAD_REPLY; lo++)
			for (fl = 0; fl < 8; fl++) {
				memset(&in, 0, sizeof(in));
				in.stage = (enum trouble_stage)st;
				in.local = (enum trouble_local)lo;
				in.is_last_eligible_upstream = (fl & LAST) != 0;
				in.mx_mode = (fl & MX) != 0;
				in.has_larger_max_size_upstream = (fl & LARGER) != 0;
				trouble_classify(&in, &res);
				assert_int_not_equal(res.verdict, TROUBLE_SENT);
				assert_int_not_equal(res.verdict, TROUBLE_SPILL);
				assert_non_null(res.explain);
				assert_true(res.explain->local);
				assert_false(res.opens_breaker_now);
				/* The last upstream never gets NEXT: nothing is left to try. */
				if (in.is_last_eligible_upstream)
					assert_int_not_equal(res.verdict, TROUBLE_NEXT);
				assert_int_equal(res.maybe_delivered,
				    st == TROUBLE_STAGE_DOT && (lo == TROUBLE_LOCAL_TIMEOUT ||
				    lo == TROUBLE_LOCAL_DISCONNECT));
			}
}

/* On the last eligible upstream, NEXT never comes out for any reply code at any stage. */
static void
test_trouble_last_upstream_never_next_without_larger(void **state)
{
	static const char *const replies[] = {
		"421 bye", "450 4.2.0 later", "451 4.3.0 oops", "452 4.5.3 Too many recipients",
		"454 4.7.0 Temporary authentication failure", "500 5.5.2 what",
		"530 5.7.0 Authentication required", "535 5.7.8 bad", "550 5.1.1 unknown",
		"550 5.7.1 policy", "552 5.3.4 big", "554 5.6.0 bad header", "554 Transaction failed",
	};
	struct trouble_input in;
	struct trouble_result res;
	struct smtp_reply r;
	size_t i;
	int st;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(replies); i++)
		for (st = TROUBLE_STAGE_GREETING; st <= TROUBLE_STAGE_DOT; st++) {
			memset(&in, 0, sizeof(in));
			trouble_make_reply(replies[i], &r);
			in.stage = (enum trouble_stage)st;
			in.reply = &r;
			in.is_last_eligible_upstream = true;
			trouble_classify(&in, &res);
			if (res.verdict == TROUBLE_NEXT || res.verdict == TROUBLE_SENT)
				fail_msg("%s at %s: %s", replies[i],
				    trouble_stage_name(in.stage), trouble_verdict_name(res.verdict));
			in.mx_mode = true;
			trouble_classify(&in, &res);
			/* Any 5xx from an MX host is final, except a refused greeting (next host). */
			if (r.code / 100 == 5 && st != TROUBLE_STAGE_GREETING &&
			    st != TROUBLE_STAGE_STARTTLS && res.verdict != TROUBLE_BOUNCE &&
			    !res.opens_breaker_now && st != TROUBLE_STAGE_AUTH)
				fail_msg("mx %s at %s: %s", replies[i], trouble_stage_name(in.stage),
				    trouble_verdict_name(res.verdict));
		}
}

static void
test_trouble_names(void **state)
{
	(void)state;
	assert_string_equal(trouble_verdict_name(TROUBLE_SPILL), "spill");
	assert_string_equal(trouble_verdict_name(TROUBLE_BOUNCE), "bounce");
	assert_string_equal(trouble_level_name(TROUBLE_LEVEL_RECIPIENT), "recipient");
	assert_string_equal(trouble_kind_name(TROUBLE_KIND_QUOTA), "quota");
	assert_string_equal(trouble_stage_name(TROUBLE_STAGE_DOT), "dot");
	assert_string_equal(trouble_stage_name(TROUBLE_STAGE_STARTTLS), "starttls");
	assert_string_equal(trouble_verdict_name((enum trouble_verdict)42), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trouble_outcomes_table),
		cmocka_unit_test(test_trouble_every_local_kind_at_every_stage),
		cmocka_unit_test(test_trouble_last_upstream_never_next_without_larger),
		cmocka_unit_test(test_trouble_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
