/* num.c - strict number parsing. */
#include <string.h>

#include "num.h"
#include "poison.h"

int
num_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
			return -1;
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

int
num_parse_u64z(const char *s, uint64_t max, uint64_t *out)
{
	return num_parse_u64(s, strlen(s), max, out);
}

int
num_parse_hex64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 16)
		return -1;
	for (i = 0; i < n; i++) {
		char c = s[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return -1;
		v = (v << 4) | d;
	}
	*out = v;
	return 0;
}

/* Split s into a number and a unit suffix; apply the unit's multiplier. */
static int
num_parse_unit(const char *s, const char *const *units, const uint64_t *mult, size_t nunits,
    uint64_t dflt_mult, uint64_t *out)
{
	size_t n = strspn(s, "0123456789");
	uint64_t v, m = dflt_mult;
	size_t i;

	if (num_parse_u64(s, n, UINT64_MAX, &v) == -1)
		return -1;
	if (s[n] != '\0') {
		for (i = 0; i < nunits; i++) {
			if (strcmp(s + n, units[i]) == 0)
				break;
		}
		if (i == nunits)
			return -1;
		m = mult[i];
	}
	if (__builtin_mul_overflow(v, m, out))
		return -1;
	return 0;
}

int
num_parse_duration_ms(const char *s, uint64_t *out)
{
	static const char *const units[] = { "ms", "s", "m", "h", "d", "w" };
	static const uint64_t mult[] = { 1, 1000, 60000, 3600000, 86400000, 604800000 };

	return num_parse_unit(s, units, mult, HK_ARRAY_LEN(units), 1000, out);
}

int
num_parse_size(const char *s, uint64_t *out)
{
	static const char *const units[] = { "K", "M", "G", "k", "KB", "MB", "GB" };
	static const uint64_t mult[] = { 1024, 1048576, 1073741824, 1024, 1024, 1048576,
		1073741824 };

	if (num_parse_unit(s, units, mult, HK_ARRAY_LEN(units), 1, out) == -1)
		return -1;
	return *out > HK_SIZE_MAX ? -1 : 0;
}

int
num_parse_rate(const char *s, uint64_t *count, uint64_t *period_ms)
{
	const char *slash = strchr(s, '/');

	if (slash == NULL || num_parse_u64(s, (size_t)(slash - s), UINT32_MAX, count) == -1 ||
	    *count == 0)
		return -1;
	if (strcmp(slash + 1, "s") == 0)
		*period_ms = 1000;
	else if (strcmp(slash + 1, "m") == 0)
		*period_ms = 60000;
	else if (strcmp(slash + 1, "h") == 0)
		*period_ms = 3600000;
	else if (strcmp(slash + 1, "d") == 0)
		*period_ms = 86400000;
	else
		return -1;
	return 0;
}
