/*
 * notify_payload.h - the pure payload builders of the alert channels (one file each:
 * notify_slack.c, notify_teams.c, notify_twilio.c, notify_webhook.c, notify_email.c) and the
 * text helpers they share (notify_json.c).
 *
 * Pure: no I/O, no clock (times come from the struct alert_msg), no randomness (ids and dates
 * come from the caller), so every payload is tested byte for byte against golden files.
 * Every text from an alert is cleaned first: invalid UTF-8 becomes U+FFFD and control bytes
 * other than LF become spaces, so no alert text can break a JSON, form or header encoding.
 * Ownership: inputs are borrowed for the call; output is appended to the caller's buffer.
 * Thread: any.
 */
#ifndef HK_NOTIFY_PAYLOAD_H
#define HK_NOTIFY_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "notify.h"
#include "../util/buf.h"

#define NOTIFY_SMS_MAX 1600 /* characters: Twilio's limit for one message body */

/* ---- shared helpers (notify_json.c) ---- */

/* Append s (NULL: nothing) cleaned: valid UTF-8, no control bytes but LF (keep_lf). */
void notify_text_clean(struct buf *out, const char *s, bool keep_lf);
/* Cut b to at most max characters (code points), ending in "…" when cut. */
void notify_text_trunc(struct buf *b, size_t max);
/* "2026-03-01 12:00:00 UTC" for ms since the epoch. */
void notify_time_human(uint64_t ms, char out[32]);
/* "2026-03-01T12:00:00Z". */
void notify_time_iso(uint64_t ms, char out[32]);
/* "45m", "2h 5m", "3d 4h": how long since since_ms at at_ms ("0s" when not later). */
void notify_age(uint64_t since_ms, uint64_t at_ms, char out[32]);
/* "[CRITICAL] " style prefix words: "Alert", "Digest", "Escalation", "Recovered", "Test". */
const char *notify_kind_word(enum alert_kind k);
/* The one-line headline used by every channel: "<Word>: <title>" (cleaned). */
void notify_headline(const struct alert_msg *m, struct buf *out);
/* A JSON string of s cleaned (NULL: ""), cut to max characters (0: no limit). */
json_t *notify_json_str(const char *s, bool keep_lf, size_t max);
/* Append j compact (UTF-8 kept, key order as built) and drop the reference. */
void notify_json_dump(json_t *j, struct buf *out);

/* ---- Slack incoming webhook, Block Kit (notify_slack.c) ---- */
void notify_slack_payload(const struct alert_msg *m, struct buf *out);

/* ---- Teams workflow webhook, Adaptive Card in a "message" (notify_teams.c) ---- */
void notify_teams_payload(const struct alert_msg *m, struct buf *out);

/* ---- Twilio SMS (notify_twilio.c) ---- */
/* The SMS text: headline, since, affected, cause, fix; at most NOTIFY_SMS_MAX characters. */
void notify_twilio_text(const struct alert_msg *m, struct buf *out);
/* application/x-www-form-urlencoded "To=...&From=...&Body=...". */
void notify_twilio_form(const char *to, const char *from, const char *text, struct buf *out);
/* base (no trailing slash needed) + "/2010-04-01/Accounts/{sid}/Messages.json". */
void notify_twilio_url(const char *base, const char *sid, struct buf *out);

/* ---- Standard Webhooks (notify_webhook.c) ---- */
/* "alert.open", "alert.digest", "alert.escalation", "alert.recovery", "alert.test". */
const char *notify_webhook_type(enum alert_kind k);
/* {"type","timestamp","data":{...}} for the notice. */
void notify_webhook_payload(const struct alert_msg *m, struct buf *out);
/* Decode "whsec_<base64>" (the prefix is optional) into the key bytes; -1 when malformed. */
HK_MUST_CHECK int notify_webhook_secret_parse(const char *s, struct buf *key);
/* "v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>". */
void notify_webhook_signature(const void *key, size_t key_len, const char *id, uint64_t ts_s,
    const char *body, size_t body_len, struct buf *out);

/* ---- email (notify_email.c) ---- */
/* The Subject: "[hikyaku] <headline>" (UTF-8; RFC 2047 encoding is the MIME builder's). */
void notify_email_subject(const struct alert_msg *m, struct buf *out);
/* The plain text body (LF line ends). */
void notify_email_text(const struct alert_msg *m, struct buf *out);
/*
 * The whole RFC 5322 message (CRLF) from from to to[0..n_to), with date (RFC 5322 date-time)
 * and message_id ("<x@y>"). -1 with *why (static) when the addresses are refused.
 */
HK_MUST_CHECK int notify_email_message(const struct alert_msg *m, const char *from,
    char *const *to, size_t n_to, const char *date, const char *message_id, struct buf *out,
    const char **why);

#endif
