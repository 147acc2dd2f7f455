/*
 * base64.h - RFC 4648 base64 (standard alphabet, padded).
 * Thread: any. Pure.
 */
#ifndef HK_BASE64_H
#define HK_BASE64_H

#include <stddef.h>

#include "buf.h"
#include "common.h"

void base64_encode(struct buf *out, const void *p, size_t n);
/* Strict decode: padding required, no white space; -1 on anything malformed. */
HK_MUST_CHECK int base64_decode(struct buf *out, const char *p, size_t n);

#endif
