/*
 * tls.h - OpenSSL contexts for both roles.
 * Server contexts: TLS 1.2+, certificate chain and key from files, read when built (as root at
 * start, as the service user on SIGHUP). Thread: loop thread (contexts are then shared read-only).
 */
#ifndef HK_TLS_H
#define HK_TLS_H

#include <openssl/ssl.h>

#include "../util/err.h"

/* Build a server context from PEM files. NULL with err (text names the file and the reason). */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, struct hk_err *err);
/* One line about the negotiated session: "TLSv1.3:TLS_AES_256_GCM_SHA384". */
const char *tls_describe(SSL *ssl, char *out, size_t size);

#endif
