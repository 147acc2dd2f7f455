/* str.c - checked string helpers. */
#include <stdint.h>
#include <string.h>

#include "str.h"
#include "poison.h"

int
str_copyn(char *dst, size_t size, const char *src, size_t n)
{
	if (size == 0)
		return -1;
	if (n >= size) {
		dst[0] = '\0';
		return -1;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

int
str_copy(char *dst, size_t size, const char *src)
{
	return str_copyn(dst, size, src, strlen(src));
}

static inline char
str_ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

bool
str_eq_ci(const char *p, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\0' || str_ascii_lower(p[i]) != str_ascii_lower(s[i]))
			return false;
	}
	return s[n] == '\0';
}

bool
str_has_prefix_ci(const char *p, size_t n, const char *prefix)
{
	size_t i;

	for (i = 0; prefix[i] != '\0'; i++) {
		if (i >= n || str_ascii_lower(p[i]) != str_ascii_lower(prefix[i]))
			return false;
	}
	return true;
}

void
str_lower(char *s)
{
	for (; *s; s++)
		*s = str_ascii_lower(*s);
}

bool
str_eq_consttime(const void *a, size_t alen, const void *b, size_t blen)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char diff = 0;
	size_t i, n = alen < blen ? alen : blen;

	for (i = 0; i < n; i++)
		diff |= x[i] ^ y[i];
	return diff == 0 && alen == blen;
}

size_t
str_utf8_char_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (n == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool
str_utf8_is_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	while (i < n) {
		if ((k = str_utf8_char_len(p + i, n - i)) == 0)
			return false;
		i += k;
	}
	return true;
}
