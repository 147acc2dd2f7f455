/* tls.c - OpenSSL server contexts (bufferevent_openssl does the I/O). */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls.h"
#include "../util/poison.h"

/*
 * TLS 1.2 suites: forward secrecy and AEAD only. TLS 1.3 suites are OpenSSL's defaults, which
 * are all acceptable.
 */
#define TLS_CIPHERS_12 "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!DSS"

static const char *
tls_last_error(void)
{
	unsigned long e = ERR_get_error();
	const char *r;

	if (e == 0)
		return "unknown error";
	/* Only the most recent error matters; drop the rest so it cannot leak into a later call. */
	ERR_clear_error();
	r = ERR_reason_error_string(e);
	return r != NULL ? r : "unknown error";
}

SSL_CTX *
tls_server_ctx_new(const char *cert_file, const char *key_file, struct hk_err *err)
{
	static const unsigned char sid_ctx[] = "hikyaku";
	SSL_CTX *ctx;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		hk_err_set(err, HK_E_CONFIG, "SSL_CTX_new: %s", tls_last_error());
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		hk_err_set(err, HK_E_CONFIG, "TLS minimum version: %s", tls_last_error());
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1) {
		hk_err_set(err, HK_E_CONFIG, "cipher list: %s", tls_last_error());
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		hk_err_set(err, HK_E_CONFIG, "%s: %s", cert_file, tls_last_error());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		hk_err_set(err, HK_E_CONFIG, "%s: %s", key_file, tls_last_error());
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		hk_err_set(err, HK_E_CONFIG, "%s does not match %s: %s", key_file, cert_file,
		    tls_last_error());
		goto fail;
	}
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

const char *
tls_describe(SSL *ssl, char *out, size_t size)
{
	const SSL_CIPHER *c;

	if (size == 0)
		return out;
	if (ssl == NULL) {
		out[0] = '\0';
		return out;
	}
	c = SSL_get_current_cipher(ssl);
	snprintf(out, size, "%s:%s", SSL_get_version(ssl),
	    c != NULL ? SSL_CIPHER_get_name(c) : "none");
	return out;
}
