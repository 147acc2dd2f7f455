/* explain.c - the reply explainer table and its best-match lookup. */
#include <string.h>

#include "explain.h"
#include "smtp_reply.h"
#include "../util/poison.h"

#define R EXPLAIN_RETRY_HELPS
#define O EXPLAIN_OTHER_UPSTREAM_HELPS
#define Q EXPLAIN_QUOTA
#define S EXPLAIN_SUPPRESS

/*
 * One row per known reply. etc/explain.yaml holds the same rows in the same order; change both.
 * Among equally specific rows the earlier wins, so a provider's or a list's text row comes
 * before a generic text row ("spamhaus" before "blocked using" before "spam").
 */
static const struct explain_entry explain_rows[] = {
	/* Quotas and rate limits: these SPILL the upstream (DESIGN.md 7). */
	{ .id = "gmail-daily-quota", .code = 550, .enhanced = "5.4.5",
	  .pattern = "daily user sending limit exceeded",
	  .cause = "The Gmail or Google Workspace account reached its daily sending limit.",
	  .culprit = EXPLAIN_CULPRIT_PROVIDER_LIMIT,
	  .fix = "Mail goes through the next upstream until the quota resets (a rolling 24 hours). "
		 "Lower per_day for this upstream or move bulk mail to another provider.",
	  .flags = Q | R | O },
	{ .id = "gmail-relay-quota", .code = 550, .enhanced = "5.4.5",
	  .pattern = "daily smtp relay limit exceeded",
	  .cause = "The Google Workspace SMTP relay service reached its daily limit for this user.",
	  .culprit = EXPLAIN_CULPRIT_PROVIDER_LIMIT,
	  .fix = "Mail goes through the next upstream until the quota resets. Lower per_day for this "
		 "upstream or spread the traffic over more accounts.",
	  .flags = Q | R | O },
	{ .id = "daily-quota", .code = 550, .enhanced = "5.4.5",
	  .cause = "The upstream refused more mail today: a daily sending quota is used up.",
	  .culprit = EXPLAIN_CULPRIT_PROVIDER_LIMIT,
	  .fix = "Mail goes through the next upstream until the quota resets. Set per_day for this "
		 "upstream just below the provider's limit so hikyaku spills over before the refusal.",
	  .flags = Q | R | O },
	{ .id = "gmail-rate-limited", .code = 421, .enhanced = "4.7.28",
	  .cause = "Gmail is rate limiting mail from our IP address because of an unusual rate of "
		   "unsolicited mail.",
	  .culprit = EXPLAIN_CULPRIT_PROVIDER_LIMIT,
	  .fix = "Slow down (lower rate and per_hour), check SPF, DKIM and DMARC, and look at the "
		 "sending IP's reputation in Google Postmaster Tools.",
	  .flags = Q | R | O },
	{ .id = "too-many-recipients", .code = 452, .enhanced = "4.5.3",
	  .cause = "The upstream takes fewer recipients per message or per period than we sent.",
	  .culprit = EXPLAIN_CULPRIT_PROVIDER_LIMIT,
	  .fix = "Set recipients_per_message for this upstream to the provider's limit; the rest "
		 "of the recipients are retried.",
	  .flags = Q | R | O },
	{ .id = "microsoft-too-many-recipients", .code = 452, .enhanced = "4.5.3",
	  .pattern = "too many recipients",
	  .cause = "Microsoft refused more recipients: the per-message or per-day recipient limit "
		   "of the mailbox was reached.",
	  .culprit = EXPLAIN_CULPRIT_PROVIDER_LIMIT,
	  .fix = "Set recipients_per_message (Exchange Online allows 500 per message by default) and "
		 "per_day for this upstream.",
	  .flags = Q | R | O },
	{ .id = "login-throttled", .code = 454, .enhanced = "4.7.0",
	  .pattern = "too many login attempts",
	  .cause = "The upstream throttles logins from us after too many attempts.",
	  .culprit = EXPLAIN_CULPRIT_PROVIDER_LIMIT,
	  .fix = "Reuse connections (fewer logins), lower connections for this upstream, and check "
		 "that the password is right: repeated failures trigger the same limit.",
	  .flags = Q | R | O },
	{ .id = "ses-max-send-rate", .code = 454, .pattern = "maximum sending rate exceeded",
	  .cause = "Amazon SES refused the message: the account's per-second sending rate was "
		   "exceeded.",
	  .culprit = EXPLAIN_CULPRIT_PROVIDER_LIMIT,
	  .fix = "Set rate for this upstream to the SES maximum send rate shown in the SES console, "
		 "or ask AWS for a higher limit.",
	  .flags = Q | R | O },
	{ .id = "ses-daily-quota", .code = 454, .pattern = "daily message quota exceeded",
	  .cause = "Amazon SES refused the message: the account's 24-hour sending quota is used up.",
	  .culprit = EXPLAIN_CULPRIT_PROVIDER_LIMIT,
	  .fix = "Set per_day for this upstream below the SES quota, or request a higher quota.",
	  .flags = Q | R | O },
	{ .id = "ses-throttling", .code = 454, .pattern = "throttling",
	  .cause = "Amazon SES is throttling this account.",
	  .culprit = EXPLAIN_CULPRIT_PROVIDER_LIMIT,
	  .fix = "Lower rate and per_hour for this upstream to the SES sending limits.",
	  .flags = Q | R | O },
	{ .id = "microsoft-submission-quota", .code = 5, .pattern = "submissionquotaexceeded",
	  .cause = "Exchange Online refused the message: the mailbox exceeded its sending limits.",
	  .culprit = EXPLAIN_CULPRIT_PROVIDER_LIMIT,
	  .fix = "Mail goes through the next upstream until the limit resets (up to 24 hours). Set "
		 "per_day and rate below the Exchange Online sending limits.",
	  .flags = Q | R | O },
	{ .id = "microsoft-daily-recipient-limit", .code = 5,
	  .pattern = "reached your daily limit for message recipients",
	  .cause = "Outlook.com refused the message: the account reached its daily recipient limit.",
	  .culprit = EXPLAIN_CULPRIT_PROVIDER_LIMIT,
	  .fix = "Mail goes through the next upstream until the limit resets. Lower per_day for "
		 "this upstream.",
	  .flags = Q | R | O },
	{ .id = "sendgrid-credits", .code = 451, .pattern = "maximum credits exceeded",
	  .cause = "The SendGrid account has used up its sending credits.",
	  .culprit = EXPLAIN_CULPRIT_PROVIDER_LIMIT,
	  .fix = "Mail goes through the next upstream. Upgrade the plan or lower per_day to the "
		 "plan's limit.",
	  .flags = Q | R | O },

	/* Recipient address and mailbox. */
	{ .id = "gmail-no-such-user", .code = 550, .enhanced = "5.1.1",
	  .pattern = "account that you tried to reach does not exist",
	  .cause = "The Gmail address does not exist.",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "Check the address for typos; remove it from your list. It is suppressed.",
	  .flags = S },
	{ .id = "user-unknown", .code = 5, .enhanced = "5.1.1",
	  .cause = "The recipient's mail server says this mailbox does not exist.",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "Check the address for typos; remove it from your list. It is suppressed.",
	  .flags = S },
	{ .id = "user-unknown-text", .code = 5, .pattern = "user unknown",
	  .cause = "The recipient's mail server says this mailbox does not exist.",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "Check the address for typos; remove it from your list. It is suppressed.",
	  .flags = S },
	{ .id = "no-such-user-text", .code = 5, .pattern = "no such user",
	  .cause = "The recipient's mail server says this mailbox does not exist.",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "Check the address for typos; remove it from your list. It is suppressed.",
	  .flags = S },
	{ .id = "microsoft-recipient-not-found", .code = 5, .enhanced = "5.1.10",
	  .cause = "Microsoft 365 has no mailbox with this address in the recipient's organisation.",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "Check the address; remove it from your list. It is suppressed.",
	  .flags = S },
	{ .id = "microsoft-access-denied-recipient", .code = 550, .enhanced = "5.4.1",
	  .pattern = "recipient address rejected: access denied",
	  .cause = "Microsoft 365 rejected the recipient: the address is not valid in the "
		   "recipient's organisation (directory-based edge blocking).",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "Check the address; remove it from your list. It is suppressed.",
	  .flags = S },
	{ .id = "yahoo-no-account", .code = 5, .pattern = "doesn't have a * account",
	  .cause = "Yahoo has no account with this address.",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "Check the address for typos; remove it from your list. It is suppressed.",
	  .flags = S },
	{ .id = "bad-destination-host", .code = 5, .enhanced = "5.1.2",
	  .cause = "The recipient's domain does not exist or does not receive mail.",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "Check the domain part of the address for typos. It is suppressed.",
	  .flags = S },
	{ .id = "bad-address-syntax", .code = 5, .enhanced = "5.1.3",
	  .cause = "The recipient address is not a valid address.",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "Fix the address where it was entered. It is suppressed.",
	  .flags = S },
	{ .id = "mailbox-disabled", .code = 5, .enhanced = "5.2.1",
	  .cause = "The recipient's mailbox is disabled and does not accept mail.",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "The person has likely left; remove the address from your list. It is suppressed.",
	  .flags = S },
	{ .id = "mailbox-full", .enhanced = "?.2.2",
	  .cause = "The recipient's mailbox is full.",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "Nothing to do on our side; the recipient has to make room. A temporary reply is "
		 "retried; the address is never suppressed for this.",
	  .flags = R },
	{ .id = "gmail-recipient-rate", .code = 450, .enhanced = "4.2.1",
	  .pattern = "receiving mail at a rate",
	  .cause = "The Gmail recipient is receiving mail faster than Gmail allows.",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "Nothing to do; the message is retried later. Send fewer messages to this "
		 "recipient.",
	  .flags = R },
	{ .id = "mailbox-unavailable", .code = 550, .enhanced = "5.5.0",
	  .pattern = "mailbox unavailable",
	  .cause = "The recipient's server says the mailbox is unavailable (often: it does not "
		   "exist).",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "Check the address; if it keeps failing, remove it from your list.",
	  .flags = 0 },

	/* Size and content. */
	{ .id = "message-too-big", .code = 5, .enhanced = "5.3.4",
	  .cause = "The message is larger than the receiving server accepts.",
	  .culprit = EXPLAIN_CULPRIT_CONTENT,
	  .fix = "Send large files as links instead of attachments, or set max_size on upstreams "
		 "so big messages go to one that takes them.",
	  .flags = O },
	{ .id = "message-too-big-text", .code = 552, .pattern = "size exceeds",
	  .cause = "The message is larger than the receiving server accepts.",
	  .culprit = EXPLAIN_CULPRIT_CONTENT,
	  .fix = "Send large files as links instead of attachments, or set max_size on upstreams "
		 "so big messages go to one that takes them.",
	  .flags = O },
	{ .id = "media-error", .code = 5, .enhanced = "5.6.*",
	  .cause = "The receiving server rejected the message's format (MIME structure, headers, "
		   "encoding or line endings).",
	  .culprit = EXPLAIN_CULPRIT_CONTENT,
	  .fix = "Fix the application that builds the message; the reply names the problem.",
	  .flags = 0 },
	{ .id = "microsoft-bare-linefeeds", .code = 5, .pattern = "barelinefeedsareillegal",
	  .cause = "Exchange Online rejected the message because it contains bare line feeds.",
	  .culprit = EXPLAIN_CULPRIT_CONTENT,
	  .fix = "Fix the application to end lines with CRLF.",
	  .flags = 0 },
	{ .id = "gmail-unsolicited", .code = 550, .enhanced = "5.7.1",
	  .pattern = "likely unsolicited mail",
	  .cause = "Gmail classified the message as likely unsolicited mail.",
	  .culprit = EXPLAIN_CULPRIT_CONTENT,
	  .fix = "Review the content and the list hygiene; check DMARC alignment and the domain's "
		 "reputation in Google Postmaster Tools.",
	  .flags = 0 },
	{ .id = "gmail-security-issue", .code = 552, .enhanced = "5.7.0",
	  .pattern = "potential security issue",
	  .cause = "Gmail blocked the message because of its content, typically an attachment type "
		   "it refuses (executables, some archives).",
	  .culprit = EXPLAIN_CULPRIT_CONTENT,
	  .fix = "Do not attach executables or archives containing them; share a link instead.",
	  .flags = 0 },
	{ .id = "virus-found", .code = 5, .pattern = "virus",
	  .cause = "The receiving server found a virus or malware in the message.",
	  .culprit = EXPLAIN_CULPRIT_CONTENT,
	  .fix = "Check the attachment and the machine that produced it.",
	  .flags = 0 },
	{ .id = "yahoo-policy", .code = 554, .enhanced = "5.7.9",
	  .pattern = "not accepted for policy reasons",
	  .cause = "Yahoo refused the message for policy reasons (content or sender reputation).",
	  .culprit = EXPLAIN_CULPRIT_CONTENT,
	  .fix = "Check authentication (SPF, DKIM, DMARC), complaint rates and content; see "
		 "Yahoo's sender guidelines.",
	  .flags = 0 },

	/* Sender authentication and configuration. */
	{ .id = "gmail-dmarc", .code = 550, .enhanced = "5.7.26",
	  .cause = "Gmail rejected the message: it is unauthenticated or fails the From domain's "
		   "DMARC policy.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Sign with DKIM for the From domain (dkim: in the config), publish SPF that covers "
		 "the upstream, and check alignment with `hikyaku check-dns`.",
	  .flags = 0 },
	{ .id = "gmail-spf", .code = 550, .enhanced = "5.7.23",
	  .cause = "Gmail rejected the message: the sending IP is not allowed by the SPF record of "
		   "the sender's domain.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Add the upstream's SPF include (or our IP for direct MX) to the domain's SPF "
		 "record.",
	  .flags = 0 },
	{ .id = "gmail-spf-dkim", .code = 550, .enhanced = "5.7.27",
	  .cause = "Gmail rejected the message: the sender's domain fails SPF and the message has "
		   "no passing DKIM signature for it.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Publish a correct SPF record and sign with DKIM for the sender's domain.",
	  .flags = 0 },
	{ .id = "gmail-no-ptr", .code = 550, .enhanced = "5.7.25",
	  .cause = "Gmail rejected the connection: the sending IP has no matching reverse DNS (PTR) "
		   "record.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Ask the IP's owner for a PTR record naming a host that resolves back to the IP.",
	  .flags = O },
	{ .id = "unauthenticated-sender", .code = 5, .pattern = "sender is unauthenticated",
	  .cause = "The recipient's provider requires SPF or DKIM and the message passed neither.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Sign with DKIM for the From domain and publish SPF covering the upstream.",
	  .flags = 0 },
	{ .id = "no-reverse-dns", .code = 0, .pattern = "cannot find your hostname",
	  .cause = "The receiving server found no reverse DNS (PTR) name for our IP address.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Ask the IP's owner for a PTR record that resolves back to the IP.",
	  .flags = O },
	{ .id = "no-reverse-hostname", .pattern = "cannot find your reverse hostname",
	  .cause = "The receiving server found no reverse DNS (PTR) name for our IP address, or "
		   "the name does not resolve back to it.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Ask the IP's owner for a PTR record naming a host that resolves back to the IP.",
	  .flags = O },
	{ .id = "gmail-ipv6-guidelines", .pattern = "ipv6 sending guidelines",
	  .cause = "Gmail refused mail sent over IPv6: over IPv6 it requires a PTR record for the "
		   "sending address and passing SPF or DKIM.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Publish a PTR record for our IPv6 address that resolves back to it and make SPF "
		 "and DKIM pass, or send through an upstream that uses IPv4.",
	  .flags = O },
	{ .id = "relay-denied", .code = 5, .pattern = "relay access denied",
	  .cause = "The upstream does not let us relay mail: we are not authenticated or not an "
		   "allowed client.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Set username and password_file for this upstream, or add our IP to the "
		 "provider's allowed relays.",
	  .flags = O },
	{ .id = "unable-to-relay", .code = 5, .pattern = "unable to relay",
	  .cause = "The upstream does not let us relay mail for this sender or recipient.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Authenticate to this upstream, or allow our IP or the sender domain in its relay "
		 "settings (Microsoft 365: a connector).",
	  .flags = O },
	{ .id = "gmail-relay-denied", .code = 550, .pattern = "invalid credentials for relay",
	  .cause = "Google Workspace SMTP relay does not recognise our IP or the sender's domain.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "In the Google Admin console, add our IP to the SMTP relay service, or require SMTP "
		 "authentication and set username and password_file.",
	  .flags = O },
	{ .id = "sender-not-owned", .code = 5, .pattern = "not owned by user",
	  .cause = "The upstream refused the envelope sender: the authenticated account may not "
		   "send as this address.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Send from an address the upstream account owns, or route this sender's domain "
		 "to an upstream that allows it.",
	  .flags = O },
	{ .id = "microsoft-send-as-denied", .code = 5, .pattern = "sendasdenied",
	  .cause = "Exchange Online refused the message: the account may not send as the From "
		   "address.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Grant the account Send As permission for that address, or send from the "
		 "account's own address.",
	  .flags = O },
	{ .id = "ses-not-verified", .code = 554, .pattern = "email address is not verified",
	  .cause = "Amazon SES refused the message: the sender address or domain is not a verified "
		   "identity (or the account is in the sandbox and the recipient is not verified).",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Verify the sending domain in SES, and request production access if the account "
		 "is in the sandbox.",
	  .flags = O },
	{ .id = "sender-domain-not-found", .code = 5, .enhanced = "5.1.8",
	  .cause = "The receiving server refused the envelope sender: its domain does not resolve "
		   "or the address is not acceptable.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Use a sender address in a domain with MX or A records.",
	  .flags = 0 },
	{ .id = "bad-sender-syntax", .code = 5, .enhanced = "5.1.7",
	  .cause = "The receiving server refused the envelope sender's syntax.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Fix the sender address the application uses.",
	  .flags = 0 },
	{ .id = "sender-domain-not-found-text", .code = 5,
	  .pattern = "sender address rejected: domain not found",
	  .cause = "The receiving server refused the envelope sender: its domain does not "
		   "resolve.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Use a sender address in a domain with MX or A records (check the application's "
		 "From and envelope sender).",
	  .flags = 0 },
	{ .id = "microsoft-send-as-permission", .code = 5, .enhanced = "5.7.60",
	  .cause = "Microsoft 365 refused the sender: the authenticated account has no permission "
		   "to send as this address.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Send from the account's own address, or grant it Send As permission for the "
		 "From address.",
	  .flags = O },
	{ .id = "sendgrid-sender-identity", .code = 550,
	  .pattern = "does not match a verified sender identity",
	  .cause = "SendGrid refused the message: the From address is not a verified Sender "
		   "Identity of the account.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Verify the sending domain (domain authentication) or the single sender in "
		 "SendGrid, or send from a verified address.",
	  .flags = O },
	{ .id = "relaying-disallowed", .code = 553, .pattern = "relaying disallowed",
	  .cause = "The upstream refused the sender: the From domain does not belong to the "
		   "authenticated account.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Send from an address in a domain the upstream account owns, or route this "
		 "sender's domain to an upstream that allows it.",
	  .flags = O },
	{ .id = "sender-rejected", .code = 5, .pattern = "sender address rejected",
	  .cause = "The receiving server refused the envelope sender (MAIL FROM) address.",
	  .culprit = EXPLAIN_CULPRIT_SENDER_CONFIG,
	  .fix = "Read the rest of the reply; check the sender address the application uses, that "
		 "its domain resolves, and that the upstream allows sending as it.",
	  .flags = O },

	/* Reputation and blocklists: another upstream sends from other IPs. */
	{ .id = "microsoft-ip-blocked", .code = 550, .enhanced = "5.7.708",
	  .cause = "Microsoft does not accept traffic from this IP address (bad reputation); this "
		   "is not a quota.",
	  .culprit = EXPLAIN_CULPRIT_REPUTATION,
	  .fix = "Send through another upstream; for your own IP, request delisting at "
		 "sender.office.com.",
	  .flags = O },
	{ .id = "microsoft-blocklist-s3150", .code = 5, .pattern = "(s3150)",
	  .cause = "Microsoft's consumer mail (Outlook.com) blocks part of the sending network.",
	  .culprit = EXPLAIN_CULPRIT_REPUTATION,
	  .fix = "Request delisting at sender.office.com, or send through another upstream.",
	  .flags = O },
	{ .id = "microsoft-blocklist-s3140", .code = 5, .pattern = "(s3140)",
	  .cause = "Microsoft's consumer mail (Outlook.com) blocks the sending IP address.",
	  .culprit = EXPLAIN_CULPRIT_REPUTATION,
	  .fix = "Request delisting at sender.office.com, or send through another upstream.",
	  .flags = O },
	{ .id = "microsoft-spam-abuse", .code = 5, .enhanced = "5.7.50?",
	  .pattern = "spam abuse detected",
	  .cause = "Microsoft 365 blocked the sender for spam abuse.",
	  .culprit = EXPLAIN_CULPRIT_REPUTATION,
	  .fix = "Find what sent the spam (a compromised account or form), stop it, then request "
		 "delisting.",
	  .flags = O },
	{ .id = "low-reputation", .pattern = "low reputation",
	  .cause = "The receiving server distrusts the sending IP or domain: its reputation is too "
		   "low.",
	  .culprit = EXPLAIN_CULPRIT_REPUTATION,
	  .fix = "Check the domain and IP in the provider's postmaster tools, lower the volume, "
		 "remove inactive recipients, and make sure SPF, DKIM and DMARC pass.",
	  .flags = EXPLAIN_RETRY_HELPS | EXPLAIN_OTHER_UPSTREAM_HELPS },
	{ .id = "microsoft-server-busy", .code = 451, .enhanced = "4.7.500",
	  .cause = "Microsoft is temporarily throttling mail from our IP address.",
	  .culprit = EXPLAIN_CULPRIT_REPUTATION,
	  .fix = "Nothing to do at once; it is retried. If it persists, lower the sending rate.",
	  .flags = R | O },
	{ .id = "yahoo-deferred-volume", .code = 421, .pattern = "temporarily deferred due to",
	  .cause = "Yahoo temporarily defers our mail because of unexpected volume or user "
		   "complaints.",
	  .culprit = EXPLAIN_CULPRIT_REPUTATION,
	  .fix = "It is retried. Lower the rate to Yahoo, remove inactive recipients, and add "
		 "List-Unsubscribe.",
	  .flags = R | O },
	{ .id = "spamhaus-listed", .code = 5, .pattern = "spamhaus",
	  .cause = "The sending IP (or domain) is listed on a Spamhaus blocklist.",
	  .culprit = EXPLAIN_CULPRIT_REPUTATION,
	  .fix = "Look the IP up at check.spamhaus.org, fix the cause and request removal; send "
		 "through another upstream meanwhile.",
	  .flags = O },
	{ .id = "barracuda-listed", .code = 5, .pattern = "barracuda",
	  .cause = "The sending IP is listed on the Barracuda Reputation Block List.",
	  .culprit = EXPLAIN_CULPRIT_REPUTATION,
	  .fix = "Request removal at barracudacentral.org; send through another upstream meanwhile.",
	  .flags = O },
	{ .id = "spamcop-listed", .code = 5, .pattern = "spamcop",
	  .cause = "The sending IP is listed on the SpamCop blocklist (listings expire after 24 "
		   "hours without new reports).",
	  .culprit = EXPLAIN_CULPRIT_REPUTATION,
	  .fix = "Find the source of the spam reports and stop it; the listing expires by itself. "
		 "Send through another upstream meanwhile.",
	  .flags = O | R },
	{ .id = "proofpoint-blocked", .code = 5, .pattern = "ipcheck.proofpoint.com",
	  .cause = "Proofpoint blocks the sending IP address.",
	  .culprit = EXPLAIN_CULPRIT_REPUTATION,
	  .fix = "Request removal through the link in the reply (ipcheck.proofpoint.com).",
	  .flags = O },
	{ .id = "dnsbl-listed", .code = 5, .pattern = "blocked using",
	  .cause = "The receiving server found the sending IP on a DNS blocklist.",
	  .culprit = EXPLAIN_CULPRIT_REPUTATION,
	  .fix = "Look the IP up on the list the reply names and request removal; send through "
		 "another upstream meanwhile.",
	  .flags = O },
	{ .id = "spam-content", .code = 5, .pattern = "spam",
	  .cause = "The receiving server classified the message as spam.",
	  .culprit = EXPLAIN_CULPRIT_CONTENT,
	  .fix = "Review the content (links, shorteners, wording, attachments), make sure SPF, DKIM "
		 "and DMARC pass, and send only to people who asked for the mail.",
	  .flags = 0 },
	{ .id = "ses-sending-paused", .code = 554, .pattern = "sending paused",
	  .cause = "Amazon SES paused sending for this account (bounce or complaint rate too high).",
	  .culprit = EXPLAIN_CULPRIT_REPUTATION,
	  .fix = "Read the notice in the SES console, clean the list, and ask AWS to resume.",
	  .flags = O },

	/* Greylisting and temporary policy. */
	{ .id = "greylisted", .code = 4, .pattern = "greylist",
	  .cause = "The receiving server greylists: it refuses the first attempt from an unknown "
		   "sender and accepts a retry a few minutes later.",
	  .culprit = EXPLAIN_CULPRIT_UNKNOWN,
	  .fix = "Nothing to do; the retry goes through.",
	  .flags = R },
	{ .id = "greylisted-text", .code = 4, .enhanced = "4.7.1", .pattern = "try again later",
	  .cause = "The receiving server asks us to come back later, usually greylisting.",
	  .culprit = EXPLAIN_CULPRIT_UNKNOWN,
	  .fix = "Nothing to do; the retry goes through.",
	  .flags = R },
	{ .id = "temporary-policy", .code = 4, .enhanced = "4.7.*",
	  .cause = "The receiving server refused the message for now for a policy reason "
		   "(greylisting, rate, reputation).",
	  .culprit = EXPLAIN_CULPRIT_UNKNOWN,
	  .fix = "It is retried; if it keeps failing, read the reply's text or link.",
	  .flags = R | O },

	/* TLS and authentication at an upstream. */
	{ .id = "starttls-required", .code = 530, .pattern = "starttls",
	  .cause = "The upstream requires TLS before this command.",
	  .culprit = EXPLAIN_CULPRIT_TLS,
	  .fix = "Set tls: starttls (or implicit with port 465) for this upstream.",
	  .flags = O },
	{ .id = "tls-required", .code = 530, .pattern = "tls required",
	  .cause = "The upstream requires TLS before this command.",
	  .culprit = EXPLAIN_CULPRIT_TLS,
	  .fix = "Set tls: starttls (or implicit with port 465) for this upstream.",
	  .flags = O },
	{ .id = "starttls-required-text", .pattern = "starttls is required",
	  .cause = "The server requires TLS and the connection was not encrypted.",
	  .culprit = EXPLAIN_CULPRIT_TLS,
	  .fix = "Set tls: starttls (or implicit with port 465) for this upstream.",
	  .flags = O },
	{ .id = "auth-required", .code = 530,
	  .cause = "The upstream requires authentication.",
	  .culprit = EXPLAIN_CULPRIT_AUTH,
	  .fix = "Set username and password_file for this upstream.",
	  .flags = O },
	{ .id = "auth-failed", .code = 535,
	  .cause = "The upstream rejected our user name or password.",
	  .culprit = EXPLAIN_CULPRIT_AUTH,
	  .fix = "Check username and the password file of this upstream; the upstream stays "
		 "skipped until a probe succeeds.",
	  .flags = O },
	{ .id = "auth-temp-failure", .code = 454, .enhanced = "4.7.0",
	  .cause = "The upstream could not check our credentials right now (a temporary "
		   "authentication failure).",
	  .culprit = EXPLAIN_CULPRIT_AUTH,
	  .fix = "It is retried; if it persists, check username and the password file of this "
		 "upstream.",
	  .flags = R | O },
	{ .id = "gmail-bad-credentials", .code = 535, .enhanced = "5.7.8",
	  .pattern = "username and password not accepted",
	  .cause = "Google rejected the user name or password.",
	  .culprit = EXPLAIN_CULPRIT_AUTH,
	  .fix = "Use an app password (2-Step Verification must be on) as password_file for this "
		 "upstream.",
	  .flags = O },
	{ .id = "microsoft-smtp-auth-disabled", .code = 535, .enhanced = "5.7.139",
	  .cause = "Microsoft 365 has SMTP AUTH turned off for the tenant or the mailbox.",
	  .culprit = EXPLAIN_CULPRIT_AUTH,
	  .fix = "Enable Authenticated SMTP for the mailbox in the Microsoft 365 admin center (and "
		 "check Security Defaults), or use a connector with IP-based relay.",
	  .flags = O },
	{ .id = "auth-mechanism-weak", .code = 534, .enhanced = "5.7.9",
	  .cause = "The upstream wants a stronger authentication mechanism or an app-specific "
		   "password.",
	  .culprit = EXPLAIN_CULPRIT_AUTH,
	  .fix = "Create an app password at the provider and put it in this upstream's "
		 "password_file.",
	  .flags = O },
	{ .id = "gmail-app-password", .code = 534, .pattern = "application-specific password",
	  .cause = "Google requires an app password for this account.",
	  .culprit = EXPLAIN_CULPRIT_AUTH,
	  .fix = "Create an app password in the Google account and use it as password_file.",
	  .flags = O },
	{ .id = "gmail-web-login", .code = 534, .enhanced = "5.7.14",
	  .cause = "Google blocked the sign-in and wants the account owner to log in through a web "
		   "browser first.",
	  .culprit = EXPLAIN_CULPRIT_AUTH,
	  .fix = "Sign in to the account in a browser, confirm the activity, then use an app "
		 "password.",
	  .flags = O },
	{ .id = "encryption-required-for-auth", .code = 538,
	  .cause = "The upstream allows this authentication mechanism only over TLS.",
	  .culprit = EXPLAIN_CULPRIT_TLS,
	  .fix = "Set tls: starttls or implicit for this upstream.",
	  .flags = O },
	{ .id = "microsoft-old-tls", .code = 421, .enhanced = "4.7.66",
	  .cause = "Microsoft refuses TLS 1.0 and 1.1.",
	  .culprit = EXPLAIN_CULPRIT_TLS,
	  .fix = "Use an OpenSSL build that negotiates TLS 1.2 or later with this upstream.",
	  .flags = O },
	{ .id = "tls-unavailable", .code = 454, .pattern = "tls not available",
	  .cause = "The upstream could not start TLS right now.",
	  .culprit = EXPLAIN_CULPRIT_TLS,
	  .fix = "It is retried; mail is never sent in plaintext when TLS is required.",
	  .flags = R | O },
	{ .id = "cert-verify-failed", .pattern = "certificate verify failed",
	  .cause = "The server's TLS certificate did not verify (expired, wrong name or unknown "
		   "issuer).",
	  .culprit = EXPLAIN_CULPRIT_TLS,
	  .fix = "Check host (it must match the certificate) and ca_file of this upstream; never "
		 "turn verify off for a provider on the internet.",
	  .flags = R | O },
	{ .id = "cert-not-verified", .pattern = "certificate not verified",
	  .cause = "The server's TLS certificate could not be verified.",
	  .culprit = EXPLAIN_CULPRIT_TLS,
	  .fix = "Check host (it must match the certificate) and ca_file of this upstream; the "
		 "certificate may be expired or self-signed.",
	  .flags = R | O },
	{ .id = "microsoft-untrusted-root", .pattern = "untrustedroot",
	  .cause = "Exchange Online could not verify the next server's certificate: its issuer is "
		   "not trusted.",
	  .culprit = EXPLAIN_CULPRIT_TLS,
	  .fix = "The receiving server must present a certificate from a public certificate "
		 "authority with its whole chain.",
	  .flags = R | O },
	{ .id = "connect-timed-out", .pattern = "connection timed out",
	  .cause = "The connection to the server timed out: the host did not answer.",
	  .culprit = EXPLAIN_CULPRIT_NETWORK,
	  .fix = "It is tried on the next upstream and retried; check host, port and outbound "
		 "firewall rules (port 25 is often blocked by cloud providers).",
	  .flags = R | O },
	{ .id = "connect-refused", .pattern = "connection refused",
	  .cause = "The server refused the connection: nothing listens on that port, or a "
		   "firewall rejects it.",
	  .culprit = EXPLAIN_CULPRIT_NETWORK,
	  .fix = "Check host and port of the upstream; it is tried on the next upstream and "
		 "retried.",
	  .flags = R | O },
	{ .id = "network-unreachable", .pattern = "network is unreachable",
	  .cause = "There is no route to the server's network from here; often an IPv6 address on "
		   "a host without IPv6 connectivity.",
	  .culprit = EXPLAIN_CULPRIT_NETWORK,
	  .fix = "Check this host's routing (IPv6 in particular) and outbound firewall; it is "
		 "tried on the next upstream and retried.",
	  .flags = R | O },

	/* Network and server trouble. */
	{ .id = "connection-timeout", .code = 421, .enhanced = "4.4.2",
	  .cause = "The server closed the connection after a timeout.",
	  .culprit = EXPLAIN_CULPRIT_NETWORK,
	  .fix = "It is retried; if it keeps happening, check the network path and MTU.",
	  .flags = R | O },
	{ .id = "network-trouble", .enhanced = "4.4.*",
	  .cause = "A network or routing problem on the way to the recipient.",
	  .culprit = EXPLAIN_CULPRIT_NETWORK,
	  .fix = "It is retried.",
	  .flags = R | O },
	{ .id = "unroutable-domain", .code = 5, .enhanced = "5.4.4",
	  .cause = "The recipient's domain has no mail server we can route to.",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "Check the recipient's domain for typos.",
	  .flags = 0 },
	{ .id = "service-closing", .code = 421,
	  .cause = "The server is not available now and closed the connection.",
	  .culprit = EXPLAIN_CULPRIT_NETWORK,
	  .fix = "It is retried, on another upstream first.",
	  .flags = R | O },
	{ .id = "server-storage", .code = 452, .enhanced = "4.3.1",
	  .cause = "The receiving server is out of storage.",
	  .culprit = EXPLAIN_CULPRIT_UNKNOWN,
	  .fix = "It is retried; nothing to do on our side.",
	  .flags = R | O },
	{ .id = "server-local-error", .code = 451, .enhanced = "4.3.0",
	  .cause = "The receiving server had a temporary internal error.",
	  .culprit = EXPLAIN_CULPRIT_UNKNOWN,
	  .fix = "It is retried; nothing to do on our side.",
	  .flags = R | O },
	{ .id = "protocol-error", .code = 5, .enhanced = "5.5.*",
	  .cause = "The receiving server rejected a command's syntax or order.",
	  .culprit = EXPLAIN_CULPRIT_UNKNOWN,
	  .fix = "Report it with the transcript (hikyaku show ID); another upstream is tried.",
	  .flags = O },
	{ .id = "permanent-policy", .code = 5, .enhanced = "5.7.*",
	  .cause = "The receiving server refused the message for a policy reason.",
	  .culprit = EXPLAIN_CULPRIT_UNKNOWN,
	  .fix = "Read the reply's text or link; check SPF, DKIM, DMARC and the sending IP's "
		 "reputation.",
	  .flags = O },

	/* Generic fallbacks by class: always match, lowest rank. */
	{ .id = "temporary-failure", .code = 4,
	  .cause = "The receiving server refused the message for now.",
	  .culprit = EXPLAIN_CULPRIT_UNKNOWN,
	  .fix = "It is retried; if it keeps failing, read the reply's text.",
	  .flags = R | O },
	{ .id = "permanent-failure", .code = 5,
	  .cause = "The receiving server refused the message permanently.",
	  .culprit = EXPLAIN_CULPRIT_UNKNOWN,
	  .fix = "Read the reply's text; another upstream is tried before the message bounces.",
	  .flags = O },

	/* Local failures: no reply to match; trouble.c finds them by id. */
	{ .id = "local-timeout", .local = true,
	  .cause = "The server did not answer in time.",
	  .culprit = EXPLAIN_CULPRIT_NETWORK,
	  .fix = "It is tried on the next upstream and retried; check the host, port and firewall "
		 "if it persists.",
	  .flags = R | O },
	{ .id = "local-disconnect", .local = true,
	  .cause = "The server closed the connection before the message was accepted.",
	  .culprit = EXPLAIN_CULPRIT_NETWORK,
	  .fix = "It is tried on the next upstream and retried.",
	  .flags = R | O },
	{ .id = "local-lost-after-dot", .local = true,
	  .cause = "The connection was lost after the whole message was sent and before the "
		   "server confirmed it: the message may have been delivered.",
	  .culprit = EXPLAIN_CULPRIT_NETWORK,
	  .fix = "It is retried later; the recipient may get it twice.",
	  .flags = R },
	{ .id = "local-refused", .local = true,
	  .cause = "The connection was refused or the host is unreachable.",
	  .culprit = EXPLAIN_CULPRIT_NETWORK,
	  .fix = "Check host and port of the upstream, and outbound firewall rules (port 25 is "
		 "often blocked by cloud providers).",
	  .flags = R | O },
	{ .id = "local-tls-failed", .local = true,
	  .cause = "The TLS handshake with the server failed.",
	  .culprit = EXPLAIN_CULPRIT_TLS,
	  .fix = "Check tls: (starttls on 587, implicit on 465) and that the server supports "
		 "TLS 1.2 or later.",
	  .flags = R | O },
	{ .id = "local-cert-invalid", .local = true,
	  .cause = "The server's certificate did not verify (expired, wrong name or unknown "
		   "issuer).",
	  .culprit = EXPLAIN_CULPRIT_TLS,
	  .fix = "Check host (it must match the certificate) and ca_file; never turn verify off "
		 "for a provider on the internet.",
	  .flags = R | O },
	{ .id = "local-starttls-missing", .local = true,
	  .cause = "TLS is required but the server did not offer or refused STARTTLS; nothing was "
		   "sent in plaintext.",
	  .culprit = EXPLAIN_CULPRIT_TLS,
	  .fix = "Check the port (587 for STARTTLS, 465 for implicit TLS) and the tls: setting of "
		 "this upstream; a missing STARTTLS can also mean something strips it on the way.",
	  .flags = R | O },
	{ .id = "local-dns-nxdomain", .local = true,
	  .cause = "The host name does not exist in DNS.",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "For an upstream, check its host; for direct delivery, the recipient's domain "
		 "does not exist.",
	  .flags = O },
	{ .id = "local-dns-temp", .local = true,
	  .cause = "DNS lookup failed for now (timeout or server failure).",
	  .culprit = EXPLAIN_CULPRIT_NETWORK,
	  .fix = "It is retried; check the resolver if it persists.",
	  .flags = R | O },
	{ .id = "local-null-mx", .local = true,
	  .cause = "The recipient's domain publishes a null MX: it accepts no mail (RFC 7505).",
	  .culprit = EXPLAIN_CULPRIT_RECIPIENT,
	  .fix = "The address cannot receive mail; remove it. It is suppressed.",
	  .flags = S },
	{ .id = "local-bad-reply", .local = true,
	  .cause = "The server sent a malformed reply.",
	  .culprit = EXPLAIN_CULPRIT_UNKNOWN,
	  .fix = "It is treated as a temporary failure and tried elsewhere.",
	  .flags = R | O },
};

#undef R
#undef O
#undef Q
#undef S

const struct explain_entry *
explain_table(size_t *n)
{
	*n = HK_ARRAY_LEN(explain_rows);
	return explain_rows;
}

static inline bool
explain_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static inline char
explain_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool
explain_glob_is_match(const char *pattern, const char *text, size_t len, bool anchored)
{
	size_t pn = strlen(pattern), pi = 0, ti = 0, star_pi = 0, star_ti = 0;
	/* Unanchored: an implicit leading '*' (and any text may follow the end of the pattern). */
	bool star = !anchored;

	for (;;) {
		if (pi < pn && pattern[pi] == '*') {
			star = true;
			star_pi = ++pi;
			star_ti = ti;
			continue;
		}
		if (pi == pn) {
			if (!anchored || ti == len)
				return true;
		} else if (ti < len) {
			char pc = pattern[pi];

			/* One pattern blank takes a whole run: providers wrap lines anywhere. */
			if (pc == ' ' && explain_is_blank(text[ti])) {
				pi++;
				while (ti < len && explain_is_blank(text[ti]))
					ti++;
				continue;
			}
			if (pc == '?' || (pc != ' ' && explain_lower(pc) == explain_lower(text[ti]))) {
				pi++;
				ti++;
				continue;
			}
		}
		if (!star || star_ti >= len)
			return false;
		pi = star_pi;
		ti = ++star_ti;
	}
}

/*
 * Rank of row e for this reply, 0 when it does not match: a text pattern outranks everything
 * else, then an exact enhanced code, an exact code, an enhanced glob, a class (so "530" beats
 * "5.7.*"). A row that names nothing ranks 0 and so never matches.
 */
static unsigned
explain_score(const struct explain_entry *e, int code, const char *enh, const char *text,
    size_t len)
{
	unsigned score = 0;

	if (e->local)
		return 0;
	if (e->code >= 100) {
		if (e->code != code)
			return 0;
		score += 20;
	} else if (e->code != 0) {
		if (e->code != code / 100)
			return 0;
		score += 1;
	}
	if (e->enhanced != NULL) {
		if (enh[0] == '\0' || !explain_glob_is_match(e->enhanced, enh, strlen(enh), true))
			return 0;
		score += strpbrk(e->enhanced, "*?") == NULL ? 100 : 10;
	}
	if (e->pattern != NULL) {
		if (!explain_glob_is_match(e->pattern, text, len, false))
			return 0;
		score += 1000;
	}
	return score;
}

const struct explain_entry *
explain_lookup_in(const struct explain_entry *extra, size_t n_extra, int code, int cls, int subj,
    int det, const char *text, size_t len)
{
	const struct explain_entry *best = NULL;
	unsigned best_score = 0, sc;
	char enh[16] = "";
	size_t i;

	if (text == NULL)
		len = 0;
	if (cls >= 2 && cls <= 5 && subj >= 0 && subj <= 999 && det >= 0 && det <= 999) {
		/* The digits are bounded above, so this always fits. */
		char *p = enh;

		*p++ = (char)('0' + cls);
		*p++ = '.';
		if (subj >= 100)
			*p++ = (char)('0' + subj / 100);
		if (subj >= 10)
			*p++ = (char)('0' + subj / 10 % 10);
		*p++ = (char)('0' + subj % 10);
		*p++ = '.';
		if (det >= 100)
			*p++ = (char)('0' + det / 100);
		if (det >= 10)
			*p++ = (char)('0' + det / 10 % 10);
		*p++ = (char)('0' + det % 10);
		*p = '\0';
	}
	/* Extra rows first: a tie goes to the earlier row, so they override built-in ones. */
	for (i = 0; i < n_extra + HK_ARRAY_LEN(explain_rows); i++) {
		const struct explain_entry *e = i < n_extra ? &extra[i] : &explain_rows[i - n_extra];

		sc = explain_score(e, code, enh, text != NULL ? text : "", len);
		if (sc > best_score) {
			best_score = sc;
			best = e;
		}
	}
	return best;
}

const struct explain_entry *
explain_lookup(int code, int cls, int subj, int det, const char *text, size_t len)
{
	return explain_lookup_in(NULL, 0, code, cls, subj, det, text, len);
}

const struct explain_entry *
explain_reply_in(const struct explain_entry *extra, size_t n_extra, const struct smtp_reply *r)
{
	return explain_lookup_in(extra, n_extra, r->code, r->enh_class, r->enh_subject,
	    r->enh_detail, r->text, r->text_len);
}

const struct explain_entry *
explain_reply(const struct smtp_reply *r)
{
	return explain_reply_in(NULL, 0, r);
}

const struct explain_entry *
explain_find_in(const struct explain_entry *extra, size_t n_extra, const char *id)
{
	size_t i;

	for (i = 0; i < n_extra; i++)
		if (strcmp(extra[i].id, id) == 0)
			return &extra[i];
	for (i = 0; i < HK_ARRAY_LEN(explain_rows); i++)
		if (strcmp(explain_rows[i].id, id) == 0)
			return &explain_rows[i];
	return NULL;
}

const struct explain_entry *
explain_find(const char *id)
{
	return explain_find_in(NULL, 0, id);
}
