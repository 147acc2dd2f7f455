/*
 * str.h - checked string helpers. Nothing here truncates silently.
 * Thread: any.
 */
#ifndef HK_STR_H
#define HK_STR_H

#include <stdbool.h>
#include <stddef.h>

#include "common.h"

/* Copy src into dst (size bytes) with a NUL; -1 (dst emptied) when it does not fit. */
HK_MUST_CHECK int str_copy(char *dst, size_t size, const char *src);
/* Copy n bytes of src into dst with a NUL; -1 (dst emptied) when it does not fit. */
HK_MUST_CHECK int str_copyn(char *dst, size_t size, const char *src, size_t n);
/* ASCII case-insensitive equality of p[0..n) and the NUL-terminated s. */
bool str_eq_ci(const char *p, size_t n, const char *s);
/* True when p[0..n) starts with prefix, ASCII case-insensitively. */
bool str_has_prefix_ci(const char *p, size_t n, const char *prefix);
/* ASCII lower-case s in place. */
void str_lower(char *s);
/* Constant-time comparison of two byte strings (length leaks, contents do not). */
bool str_eq_consttime(const void *a, size_t alen, const void *b, size_t blen);
/*
 * Length (1 to 4) of the well-formed UTF-8 character at s[0..n) (RFC 3629 4: no overlong forms,
 * no UTF-16 surrogates, nothing past U+10FFFF); 0 when it is malformed, cut short, or n is 0.
 */
size_t str_utf8_char_len(const unsigned char *s, size_t n);
/* Is s[0..n) well-formed UTF-8 throughout (str_utf8_char_len)? */
bool str_utf8_is_valid(const char *s, size_t n);

#endif
