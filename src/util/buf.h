/*
 * buf.h - the one growable byte buffer.
 *
 * Invariants: ptr is NULL (cap 0) or points to cap bytes with ptr[len] == '\0', so a buffer is
 * always usable as a C string for printing; contents are binary-safe by len.
 * Ownership: the struct owns ptr; buf_fini() frees it. buf_move() hands it over.
 * Thread: a buffer belongs to one thread at a time.
 */
#ifndef HK_BUF_H
#define HK_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "common.h"

struct buf {
	char *ptr;
	size_t len;
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_init(struct buf *b);
/* Free the memory; the buffer is empty and reusable afterwards. */
void buf_fini(struct buf *b);
/* Empty the buffer, keeping its capacity. */
void buf_reset(struct buf *b);
/* Make room for at least extra more bytes (plus the NUL). */
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_append_str(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
HK_PRINTF(2, 3) void buf_printf(struct buf *b, const char *fmt, ...);
HK_PRINTF(2, 0) void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Remove the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Shorten to n bytes (n <= len). */
void buf_truncate(struct buf *b, size_t n);
/* Move src's memory into dst (dst's old memory is freed); src is left empty. */
void buf_move(struct buf *dst, struct buf *src);
/* Take the memory out (NUL-terminated, never NULL); the buffer is left empty. */
char *buf_steal(struct buf *b);

#endif
