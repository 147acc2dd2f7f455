/*
 * xalloc.h - allocation that aborts on failure, so callers never check for NULL.
 * Thread: any.
 */
#ifndef HK_XALLOC_H
#define HK_XALLOC_H

#include <stddef.h>

#include "common.h"

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
/* Resize p to nmemb * size bytes; aborts on overflow or failure. */
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
/* Copy n bytes of s and add a NUL. */
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
HK_PRINTF(1, 2) char *xasprintf(const char *fmt, ...);

#endif
