/* xtext.c - RFC 3461 xtext. */
#include "xtext.h"
#include "poison.h"

static inline bool
xtext_is_plain(unsigned char c)
{
	return c >= '!' && c <= '~' && c != '+' && c != '=';
}

static int
xtext_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void
xtext_encode(struct buf *out, const char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	buf_reserve(out, n);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (xtext_is_plain(c)) {
			buf_putc(out, (char)c);
		} else {
			char e[3] = { '+', hex[c >> 4], hex[c & 15] };

			buf_append(out, e, 3);
		}
	}
}

int
xtext_decode(struct buf *out, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '+') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = xtext_hexval(p[i + 1]);
			lo = xtext_hexval(p[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			buf_putc(out, (char)(hi << 4 | lo));
			i += 2;
		} else if (xtext_is_plain(c)) {
			buf_putc(out, (char)c);
		} else {
			return -1;
		}
	}
	return 0;
}

bool
xtext_is_valid(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '+') {
			if (i + 2 >= n || xtext_hexval(p[i + 1]) < 0 || xtext_hexval(p[i + 2]) < 0)
				return false;
			i += 2;
		} else if (!xtext_is_plain(c)) {
			return false;
		}
	}
	return true;
}
