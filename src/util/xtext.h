/*
 * xtext.h - RFC 3461 section 4 xtext: printable ASCII except '+' and '=' as is, every other
 * byte as "+XX" (upper-case hex). Used for DSN parameters and for every envelope value, so no
 * CR, LF, space or control byte can forge an envelope record.
 * Thread: any. Pure.
 */
#ifndef HK_XTEXT_H
#define HK_XTEXT_H

#include <stddef.h>

#include "buf.h"
#include "common.h"

/* Append the xtext form of p[0..n) to out. */
void xtext_encode(struct buf *out, const char *p, size_t n);
/* Append the decoded form of p[0..n) to out; -1 on a malformed "+XX" or a forbidden byte. */
HK_MUST_CHECK int xtext_decode(struct buf *out, const char *p, size_t n);
/* True when p[0..n) is well-formed xtext. */
bool xtext_is_valid(const char *p, size_t n);

#endif
