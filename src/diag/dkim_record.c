/*
 * dkim_record.c - DKIM key record syntax (RFC 6376 3.6.1) and the key inside it.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "../util/base64.h"
#include "../util/buf.h"
#include "../util/str.h"
#include "dkim_record.h"
#include "taglist.h"
#include "../util/poison.h"

/* p= may be split by whitespace (folded in DNS, RFC 6376 3.6.2.2): drop it before decoding. */
static int
dkim_record_key(const struct taglist_tag *t, struct dkim_record *out, const char **why)
{
	struct buf b64, der;
	const unsigned char *p;
	EVP_PKEY *pk = NULL;
	size_t i;
	int rc = -1;

	buf_init(&b64);
	buf_init(&der);
	for (i = 0; i < t->value_len; i++) {
		char c = t->value[i];

		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			buf_putc(&b64, c);
	}
	if (b64.len == 0) {
		out->revoked = true;
		rc = 0;
		goto done;
	}
	if (base64_decode(&der, b64.ptr, b64.len) == -1) {
		*why = "p= is not valid base64";
		goto done;
	}
	if (out->k == DKIM_RECORD_KEY_ED25519) {
		if (der.len != 32) {
			*why = "an ed25519 key in p= must be 32 bytes";
			goto done;
		}
		out->bits = 256;
		rc = 0;
		goto done;
	}
	p = (const unsigned char *)der.ptr;
	pk = d2i_PUBKEY(NULL, &p, (long)der.len);
	if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA ||
	    p != (const unsigned char *)der.ptr + der.len) {
		*why = "p= does not hold an RSA public key (SubjectPublicKeyInfo)";
		goto done;
	}
	out->bits = (unsigned)EVP_PKEY_get_bits(pk);
	rc = 0;
done:
	EVP_PKEY_free(pk);
	buf_fini(&b64);
	buf_fini(&der);
	return rc;
}

enum dkim_record_result
dkim_record_parse(const char *txt, size_t len, struct dkim_record *out, const char **why)
{
	struct taglist tl;
	struct taglist_tag t, key = { 0 };
	bool first = true, has_p = false;
	int rc;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	taglist_init(&tl, txt, len);
	while ((rc = taglist_next(&tl, &t, why)) == 1) {
		if (str_eq_ci(t.name, t.name_len, "v")) {
			if (!first || !str_eq_ci(t.value, t.value_len, "DKIM1")) {
				*why = first ? "v= is not DKIM1" : "v= must be the first tag";
				return first ? DKIM_RECORD_NOT_DKIM : DKIM_RECORD_BAD;
			}
			out->has_v = true;
		} else if (str_eq_ci(t.name, t.name_len, "k")) {
			if (str_eq_ci(t.value, t.value_len, "rsa")) {
				out->k = DKIM_RECORD_KEY_RSA;
			} else if (str_eq_ci(t.value, t.value_len, "ed25519")) {
				out->k = DKIM_RECORD_KEY_ED25519;
			} else {
				*why = "k= names a key type other than rsa or ed25519";
				return DKIM_RECORD_BAD;
			}
		} else if (str_eq_ci(t.name, t.name_len, "p")) {
			key = t;
			has_p = true;
		} else if (str_eq_ci(t.name, t.name_len, "t")) {
			size_t i;

			/* t= is a colon-separated flag list; "y" marks testing. */
			for (i = 0; i < t.value_len; i++) {
				if ((t.value[i] == 'y' || t.value[i] == 'Y') &&
				    (i == 0 || t.value[i - 1] == ':' || t.value[i - 1] == ' ') &&
				    (i + 1 == t.value_len || t.value[i + 1] == ':' ||
				    t.value[i + 1] == ' '))
					out->testing = true;
			}
		}
		first = false;
	}
	if (rc == -1)
		return first ? DKIM_RECORD_NOT_DKIM : DKIM_RECORD_BAD;
	if (!has_p) {
		*why = "the required p= tag (the public key) is missing";
		return DKIM_RECORD_BAD;
	}
	return dkim_record_key(&key, out, why) == 0 ? DKIM_RECORD_OK : DKIM_RECORD_BAD;
}
