/* base64.c - RFC 4648 base64. */
#include "base64.h"
#include "poison.h"

static const char base64_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
base64_encode(struct buf *out, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	buf_reserve(out, (n + 2) / 3 * 4);
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		char q[4] = { base64_alpha[v >> 18], base64_alpha[(v >> 12) & 63],
			base64_alpha[(v >> 6) & 63], base64_alpha[v & 63] };

		buf_append(out, q, 4);
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
		char q[4] = { base64_alpha[v >> 18], base64_alpha[(v >> 12) & 63],
			i + 1 < n ? base64_alpha[(v >> 6) & 63] : '=', '=' };

		buf_append(out, q, 4);
	}
}

static int
base64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
base64_decode(struct buf *out, const char *p, size_t n)
{
	size_t i;

	if (n % 4 != 0)
		return -1;
	for (i = 0; i < n; i += 4) {
		int a = base64_val(p[i]), b = base64_val(p[i + 1]);
		int c = base64_val(p[i + 2]), d = base64_val(p[i + 3]);
		bool last = i + 4 == n;

		if (a < 0 || b < 0)
			return -1;
		if (last && p[i + 2] == '=' && p[i + 3] == '=') {
			if (b & 15)
				return -1;
			buf_putc(out, (char)(a << 2 | b >> 4));
		} else if (last && c >= 0 && p[i + 3] == '=') {
			if (c & 3)
				return -1;
			buf_putc(out, (char)(a << 2 | b >> 4));
			buf_putc(out, (char)((b & 15) << 4 | c >> 2));
		} else {
			if (c < 0 || d < 0)
				return -1;
			buf_putc(out, (char)(a << 2 | b >> 4));
			buf_putc(out, (char)((b & 15) << 4 | c >> 2));
			buf_putc(out, (char)((c & 3) << 6 | d));
		}
	}
	return 0;
}
