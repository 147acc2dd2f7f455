/* buf.c - the growable byte buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xalloc.h"
#include "poison.h"

void
buf_init(struct buf *b)
{
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
}

void
buf_fini(struct buf *b)
{
	free(b->ptr);
	buf_init(b);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

void
buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;

	if (__builtin_add_overflow(b->len, extra, &need) || __builtin_add_overflow(need, 1, &need))
		hk_panic("buffer size overflow");
	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need) {
		if (__builtin_mul_overflow(cap, 2, &cap))
			cap = need;
	}
	b->ptr = xreallocarray(b->ptr, cap, 1);
	b->cap = cap;
	/* Keep the promise ptr[len] == '\0' even for a buffer that only reserved. */
	b->ptr[b->len] = '\0';
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->ptr + b->len, p, n);
	b->len += n;
	b->ptr[b->len] = '\0';
}

void
buf_append_str(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_putc(struct buf *b, char c)
{
	buf_reserve(b, 1);
	b->ptr[b->len++] = c;
	b->ptr[b->len] = '\0';
}

void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	buf_reserve(b, 64);
	va_copy(ap2, ap);
	n = vsnprintf(b->ptr + b->len, b->cap - b->len, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		hk_panic("vsnprintf failed");
	if ((size_t)n >= b->cap - b->len) {
		buf_reserve(b, (size_t)n);
		n = vsnprintf(b->ptr + b->len, b->cap - b->len, fmt, ap);
		HK_ASSERT(n >= 0 && (size_t)n < b->cap - b->len);
	}
	b->len += (size_t)n;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
buf_consume(struct buf *b, size_t n)
{
	HK_ASSERT(n <= b->len);
	if (n == 0)
		return;
	memmove(b->ptr, b->ptr + n, b->len - n);
	b->len -= n;
	b->ptr[b->len] = '\0';
}

void
buf_truncate(struct buf *b, size_t n)
{
	HK_ASSERT(n <= b->len);
	b->len = n;
	if (b->ptr)
		b->ptr[n] = '\0';
}

void
buf_move(struct buf *dst, struct buf *src)
{
	if (dst == src)
		return;
	free(dst->ptr);
	*dst = *src;
	buf_init(src);
}

char *
buf_steal(struct buf *b)
{
	char *p;

	if (b->ptr == NULL)
		return xstrdup("");
	p = b->ptr;
	buf_init(b);
	return p;
}
