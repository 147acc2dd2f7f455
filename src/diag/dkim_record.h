/*
 * dkim_record.h - DKIM public key records (RFC 6376 3.6.1) at <selector>._domainkey.<domain>.
 *
 * v=DKIM1 is optional but, when present, first. k= is rsa (default) or ed25519 (RFC 8463);
 * p= is the base64 key: SubjectPublicKeyInfo DER for rsa, the raw 32 bytes for ed25519; an
 * empty p= means the key was revoked. t=y marks a domain testing DKIM.
 * Thread: any. Pure (OpenSSL decodes the key in memory).
 */
#ifndef HK_DKIM_RECORD_H
#define HK_DKIM_RECORD_H

#include <stdbool.h>
#include <stddef.h>

enum dkim_record_key { DKIM_RECORD_KEY_RSA = 0, DKIM_RECORD_KEY_ED25519 };

struct dkim_record {
	bool has_v;
	enum dkim_record_key k;
	bool revoked;   /* p= empty */
	bool testing;   /* t=y */
	unsigned bits;  /* key size: RSA modulus bits; 256 for ed25519 */
};

enum dkim_record_result {
	DKIM_RECORD_OK = 0,
	DKIM_RECORD_NOT_DKIM, /* v= is there but not DKIM1, or the text is no tag list */
	DKIM_RECORD_BAD,      /* p= missing, bad base64, a key that does not decode, bad k= */
};

enum dkim_record_result dkim_record_parse(const char *txt, size_t len, struct dkim_record *out,
    const char **why);

#endif
