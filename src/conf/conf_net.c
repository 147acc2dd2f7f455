/*
 * conf_net.c - socket addresses, networks and host names as written in the configuration.
 * Pure apart from inet_pton(); every parser says why it refused with a static string.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "../util/num.h"
#include "../util/xalloc.h"
#include "conf.h"
#include "conf_int.h"
#include "../util/poison.h"

bool
conf_net_is_hostname(const char *s)
{
	size_t total = strlen(s), label = 0, i;

	if (total == 0 || total > 253)
		return false;
	for (i = 0; i <= total; i++) {
		char c = s[i];

		if (c == '.' || c == '\0') {
			/* RFC 1123 2.1: 1..63 characters, no hyphen at either end. */
			if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-'))
			return false;
		label++;
	}
	return true;
}

bool
conf_net_is_ip(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

static int
conf_addr_parse_unix(const char *text, struct conf_addr *out, const char **why)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
	size_t n = strlen(text);

	if (n >= sizeof(sun->sun_path)) {
		*why = "Unix socket path too long";
		return -1;
	}
	memset(&out->ss, 0, sizeof(out->ss));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, text, n + 1);
	out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	out->text = xstrdup(text);
	return 0;
}

int
conf_addr_parse(const char *text, struct conf_addr *out, const char **why)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_text;
	uint64_t port;
	size_t hlen;

	if (text[0] == '/' || text[0] == '.')
		return conf_addr_parse_unix(text, out, why);
	if (text[0] == '[') {
		const char *end = strchr(text, ']');

		if (end == NULL) {
			*why = "missing ]";
			return -1;
		}
		hlen = (size_t)(end - text - 1);
		if (hlen == 0 || hlen >= sizeof(host)) {
			*why = "not an IPv6 address inside [ ]";
			return -1;
		}
		memcpy(host, text + 1, hlen);
		host[hlen] = '\0';
		if (end[1] != ':') {
			*why = "missing :port";
			return -1;
		}
		port_text = end + 2;
	} else {
		const char *colon = strrchr(text, ':');

		if (colon == NULL) {
			*why = "missing :port";
			return -1;
		}
		hlen = (size_t)(colon - text);
		if (memchr(text, ':', hlen) != NULL) {
			*why = "IPv6 addresses need brackets, as [::1]:25";
			return -1;
		}
		if (hlen == 0 || hlen >= sizeof(host)) {
			*why = "not a numeric IP address";
			return -1;
		}
		memcpy(host, text, hlen);
		host[hlen] = '\0';
		port_text = colon + 1;
	}
	if (num_parse_u64z(port_text, 65535, &port) == -1 || port == 0) {
		*why = "the port must be a number from 1 to 65535";
		return -1;
	}
	memset(&out->ss, 0, sizeof(out->ss));
	if (text[0] == '[') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			*why = "not an IPv6 address inside [ ]";
			return -1;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			*why = "not a numeric IP address (host names are not allowed here)";
			return -1;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->len = sizeof(*sin);
	}
	out->text = xstrdup(text);
	return 0;
}

static const uint8_t conf_v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* True when prefix bits of a equal those of b. */
static bool
conf_bits_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int
conf_cidr_parse(const char *text, struct conf_cidr *out, const char **why)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t hlen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	unsigned max;
	uint64_t prefix;

	if (hlen == 0 || hlen >= sizeof(host)) {
		*why = "not an IP address";
		return -1;
	}
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		*why = "not an IP address";
		return -1;
	}
	prefix = max;
	if (slash != NULL && num_parse_u64z(slash + 1, max, &prefix) == -1) {
		*why = max == 32 ? "the prefix must be a number from 0 to 32"
				 : "the prefix must be a number from 0 to 128";
		return -1;
	}
	out->prefix = (unsigned)prefix;
	{
		uint8_t masked[16];
		unsigned i;

		for (i = 0; i < 16; i++) {
			unsigned bit = i * 8;

			if (bit >= prefix)
				masked[i] = 0;
			else if (bit + 8 <= prefix)
				masked[i] = out->addr[i];
			else
				masked[i] = out->addr[i] & (uint8_t)(0xff << (8 - (prefix - bit)));
		}
		if (memcmp(masked, out->addr, 16) != 0) {
			*why = "host bits are set after the prefix";
			return -1;
		}
	}
	/* ::ffff:10.0.0.0/104 is 10.0.0.0/8: match it against IPv4 peers too. */
	if (out->family == AF_INET6 && out->prefix >= 96 &&
	    memcmp(out->addr, conf_v4mapped_prefix, 12) == 0) {
		memmove(out->addr, out->addr + 12, 4);
		memset(out->addr + 4, 0, 12);
		out->family = AF_INET;
		out->prefix -= 96;
	}
	return 0;
}

/* The address of sa as (family, 16 bytes), with v4-mapped IPv6 turned into IPv4. */
static bool
conf_sa_addr(const struct sockaddr *sa, int *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		memcpy(addr, &sin->sin_addr, 4);
		*family = AF_INET;
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *a = sin6->sin6_addr.s6_addr;

		if (memcmp(a, conf_v4mapped_prefix, 12) == 0) {
			memcpy(addr, a + 12, 4);
			*family = AF_INET;
		} else {
			memcpy(addr, a, 16);
			*family = AF_INET6;
		}
		return true;
	}
	return false;
}

bool
conf_cidr_contains(const struct conf_cidr *cidr, const struct sockaddr *sa)
{
	uint8_t addr[16];
	int family;

	if (!conf_sa_addr(sa, &family, addr) || family != cidr->family)
		return false;
	return conf_bits_equal(addr, cidr->addr, cidr->prefix);
}

bool
conf_networks_contain(const struct conf *c, const struct sockaddr *sa)
{
	size_t i;

	for (i = 0; i < c->n_networks; i++) {
		if (conf_cidr_contains(&c->networks[i], sa))
			return true;
	}
	return false;
}
