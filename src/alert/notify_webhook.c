/*
 * notify_webhook.c - signed webhooks per the Standard Webhooks specification: the JSON body
 * {"type":"alert.<kind>","timestamp":ISO 8601,"data":{...}} and the webhook-signature value
 * "v1,<base64 of HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>")>", where the
 * secret is the base64 part of "whsec_<base64>". Pure (OpenSSL's HMAC only computes).
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "notify_payload.h"
#include "../util/base64.h"
#include "../util/poison.h"

const char *
notify_webhook_type(enum alert_kind k)
{
	switch (k) {
	case ALERT_KIND_OPEN:
		return "alert.open";
	case ALERT_KIND_DIGEST:
		return "alert.digest";
	case ALERT_KIND_ESCALATION:
		return "alert.escalation";
	case ALERT_KIND_RECOVERY:
		return "alert.recovery";
	case ALERT_KIND_TEST:
		return "alert.test";
	}
	return "alert.open";
}

void
notify_webhook_payload(const struct alert_msg *m, struct buf *out)
{
	char at[32], since[32];
	json_t *data;

	notify_time_iso(m->at_ms, at);
	notify_time_iso(m->since_ms, since);
	data = json_pack("{s:o,s:o,s:o,s:s,s:s,s:o,s:o,s:s,s:I,s:o,s:o,s:o,s:o}",
	    "id", notify_json_str(m->id, false, 0),
	    "rule", notify_json_str(m->rule, false, 0),
	    "group", notify_json_str(m->group, false, 0),
	    "kind", alert_kind_name(m->kind),
	    "severity", alert_severity_name(m->severity),
	    "title", notify_json_str(m->title, false, 0),
	    "text", notify_json_str(m->text, true, 0),
	    "since", since,
	    "affected", (json_int_t)m->affected,
	    "reply", m->reply ? notify_json_str(m->reply, false, 0) : json_null(),
	    "cause", m->cause ? notify_json_str(m->cause, true, 0) : json_null(),
	    "fix", m->fix ? notify_json_str(m->fix, true, 0) : json_null(),
	    "node", notify_json_str(m->node, false, 0));
	notify_json_dump(json_pack("{s:s,s:s,s:o}", "type", notify_webhook_type(m->kind),
	    "timestamp", at, "data", data), out);
}

int
notify_webhook_secret_parse(const char *s, struct buf *key)
{
	size_t n;

	if (strncmp(s, "whsec_", 6) == 0)
		s += 6;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	buf_reset(key);
	if (n == 0 || base64_decode(key, s, n) == -1 || key->len == 0)
		return -1;
	return 0;
}

void
notify_webhook_signature(const void *key, size_t key_len, const char *id, uint64_t ts_s,
    const char *body, size_t body_len, struct buf *out)
{
	struct buf content = BUF_INIT;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0;

	buf_printf(&content, "%s.%llu.", id, (unsigned long long)ts_s);
	buf_append(&content, body, body_len);
	if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)content.ptr, content.len,
	    mac, &mac_len) == NULL)
		hk_panic("HMAC-SHA256 failed");
	buf_append_str(out, "v1,");
	base64_encode(out, mac, mac_len);
	buf_fini(&content);
}
