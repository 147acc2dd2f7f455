/* test_addr.c - RFC 5321 mailbox syntax. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/addr.h"
#include "util/poison.h"

int main(void);

struct addr_case {
	const char *in;
	size_t len; /* 0: strlen(in) */
	unsigned flags;
	enum addr_result want;
};

#define U ADDR_ALLOW_UTF8
#define ND ADDR_ALLOW_NO_DOMAIN

static const struct addr_case addr_cases[] = {
	{ "a@example.com", 0, 0, ADDR_OK },
	{ "first.last@sub.example.co.uk", 0, 0, ADDR_OK },
	{ "x+tag@example.com", 0, 0, ADDR_OK },
	{ "!#$%&'*+-/=?^_`{|}~@example.com", 0, 0, ADDR_OK },
	{ "\"john doe\"@example.com", 0, 0, ADDR_OK },
	{ "\"a\\\"b\"@example.com", 0, 0, ADDR_OK },
	{ "\"a@b\"@example.com", 0, 0, ADDR_OK },
	{ "\"\"@example.com", 0, 0, ADDR_OK },
	{ "a@[192.0.2.1]", 0, 0, ADDR_OK },
	{ "a@[IPv6:2001:db8::1]", 0, 0, ADDR_OK },
	{ "a@[ipv6:::1]", 0, 0, ADDR_OK },
	{ "a@[IPv6:::]", 0, 0, ADDR_OK },
	{ "a@[IPv6::]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[IPv6:1:2:3:4:5:6:7:8]", 0, 0, ADDR_OK },
	{ "a@[IPv6:::ffff:192.0.2.1]", 0, 0, ADDR_OK },
	{ "a@[IPv6:1:2:3:4:5:6:192.0.2.1]", 0, 0, ADDR_OK },
	{ "a@[IPv6:1::]", 0, 0, ADDR_OK },
	{ "a@xn--bcher-kva.example", 0, 0, ADDR_OK },
	{ "a@localhost", 0, 0, ADDR_OK },
	{ "a@1.example", 0, 0, ADDR_OK },
	{ "", 0, 0, ADDR_EMPTY },
	{ "a", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@", 0, 0, ADDR_BAD_DOMAIN },
	{ "@example.com", 0, 0, ADDR_BAD_LOCAL },
	{ ".a@example.com", 0, 0, ADDR_BAD_LOCAL },
	{ "a.@example.com", 0, 0, ADDR_BAD_LOCAL },
	{ "a..b@example.com", 0, 0, ADDR_BAD_LOCAL },
	{ "a b@example.com", 0, 0, ADDR_BAD_LOCAL },
	{ "a(b)@example.com", 0, 0, ADDR_BAD_LOCAL },
	{ "\"abc@example.com", 0, 0, ADDR_BAD_LOCAL },
	{ "\"a\"b@example.com", 0, 0, ADDR_BAD_LOCAL },
	{ "\"a\tb\"@example.com", 0, 0, ADDR_BAD_LOCAL },
	{ "\"a\\\x01\"@example.com", 0, 0, ADDR_BAD_LOCAL },
	{ "a@b@example.com", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@example..com", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@.example.com", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@example.com.", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@-example.com", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@example-.com", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@exa_mple.com", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@exa mple.com", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[192.0.2.256]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[192.0.2]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[192.0.2.1.5]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[1921.0.2.1]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[192.0.2.1", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[IPv6:1:2:3:4:5:6:7:8:9]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[IPv6:1:2:3:4:5:6:7]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[IPv6:1::2::3]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[IPv6:12345::1]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[IPv6:1:]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[IPv6::1]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[IPv6:1:2:3:4:5:6:7:192.0.2.1]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[IPv6:::192.0.2.1:1]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[IPv6:g::1]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[x-tag:stuff]", 0, 0, ADDR_BAD_DOMAIN },
	{ "a@[192.0.2.1]x", 0, 0, ADDR_BAD_DOMAIN },
	{ "a\0b@example.com", 15, 0, ADDR_BAD_LOCAL },
	{ "a@exam\0ple.com", 14, 0, ADDR_BAD_DOMAIN },
	{ "a\r\n@example.com", 0, 0, ADDR_BAD_LOCAL },
	/* RFC 6531 */
	{ "j\xc3\xb6rg@example.com", 0, 0, ADDR_UTF8_NOT_ALLOWED },
	{ "j\xc3\xb6rg@example.com", 0, U, ADDR_OK },
	{ "a@b\xc3\xbc" "cher.example", 0, 0, ADDR_UTF8_NOT_ALLOWED },
	{ "a@b\xc3\xbc" "cher.example", 0, U, ADDR_OK },
	{ "\"\xe2\x82\xac\"@example.com", 0, U, ADDR_OK },
	{ "\xf0\x9f\x93\xa7@example.com", 0, U, ADDR_OK },
	{ "\xc3@example.com", 0, U, ADDR_BAD_LOCAL },
	{ "\xc0\xaf@example.com", 0, U, ADDR_BAD_LOCAL },       /* overlong */
	{ "\xed\xa0\x80@example.com", 0, U, ADDR_BAD_LOCAL },   /* surrogate */
	{ "\xf4\x90\x80\x80@example.com", 0, U, ADDR_BAD_LOCAL }, /* above U+10FFFF */
	{ "\xff@example.com", 0, U, ADDR_BAD_LOCAL },
	{ "a@\xe2\x82@x", 0, U, ADDR_BAD_DOMAIN },
	{ "a@[IPv6:\xc3\xbc]", 0, U, ADDR_BAD_DOMAIN },
	/* Postmaster */
	{ "postmaster", 0, ND, ADDR_OK },
	{ "PostMaster", 0, ND, ADDR_OK },
	{ "postmaster", 0, 0, ADDR_BAD_DOMAIN },
	{ "abuse", 0, ND, ADDR_BAD_DOMAIN },
	{ "\"postmaster\"", 0, ND, ADDR_BAD_DOMAIN },
};

static void
test_addr_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		const struct addr_case *c = &addr_cases[i];
		size_t len = c->len != 0 ? c->len : strlen(c->in);
		struct addr_parts p;
		const char *why = NULL;
		enum addr_result r = addr_parse(c->in, len, c->flags, &p, &why);

		if (r != c->want)
			print_error("case %zu \"%s\": got %d want %d (%s)\n", i, c->in, (int)r,
			    (int)c->want, why != NULL ? why : "-");
		assert_int_equal(r, c->want);
		if (r != ADDR_OK)
			assert_non_null(why);
	}
}

static void
test_addr_parts(void **state)
{
	struct addr_parts p;
	const char *why;
	static const char q[] = "\"a b\"@[IPv6:::1]";

	(void)state;
	assert_int_equal(addr_parse(q, strlen(q), 0, &p, &why), ADDR_OK);
	assert_true(p.local_quoted);
	assert_true(p.domain_literal);
	assert_int_equal(p.local_len, 5);
	assert_memory_equal(p.local, "\"a b\"", 5);
	assert_int_equal(p.domain_len, 10);
	assert_memory_equal(p.domain, "[IPv6:::1]", 10);
	assert_false(p.has_utf8);

	assert_int_equal(addr_parse("postmaster", 10, ADDR_ALLOW_NO_DOMAIN, &p, &why), ADDR_OK);
	assert_null(p.domain);
	assert_int_equal(p.local_len, 10);

	assert_int_equal(addr_parse("x@b\xc3\xbc.de", 8, ADDR_ALLOW_UTF8, &p, &why), ADDR_OK);
	assert_true(p.has_utf8);
}

static void
test_addr_routing_flags(void **state)
{
	struct addr_parts p;
	const char *why;

	(void)state;
	assert_int_equal(addr_parse("u%other.example@relay.example", 29, 0, &p, &why), ADDR_OK);
	assert_true(p.has_percent);
	assert_false(p.has_bang);
	assert_int_equal(addr_parse("host!u@relay.example", 20, 0, &p, &why), ADDR_OK);
	assert_true(p.has_bang);
	assert_false(p.has_percent);
	assert_int_equal(addr_parse("\"u%x!y\"@relay.example", 21, 0, &p, &why), ADDR_OK);
	assert_true(p.has_bang);
	assert_true(p.has_percent);
	assert_int_equal(addr_parse("plain@relay.example", 19, 0, &p, &why), ADDR_OK);
	assert_false(p.has_bang);
	assert_false(p.has_percent);
}

static void
test_addr_lengths(void **state)
{
	char s[600];
	struct addr_parts p;
	const char *why;
	size_t n;

	(void)state;
	/* 64-octet local part is fine, 65 is not. */
	memset(s, 'l', 64);
	memcpy(s + 64, "@example.com", 12);
	assert_int_equal(addr_parse(s, 76, 0, &p, &why), ADDR_OK);
	memset(s, 'l', 65);
	memcpy(s + 65, "@example.com", 12);
	assert_int_equal(addr_parse(s, 77, 0, &p, &why), ADDR_TOO_LONG);

	/* 63-octet label fine, 64 not. */
	memcpy(s, "a@", 2);
	memset(s + 2, 'd', 63);
	assert_int_equal(addr_parse(s, 65, 0, &p, &why), ADDR_OK);
	memset(s + 2, 'd', 64);
	assert_int_equal(addr_parse(s, 66, 0, &p, &why), ADDR_TOO_LONG);

	/* Whole mailbox: 254 octets fine, 255 not (labels of 49 + '.'). */
	for (n = 254; n <= 255; n++) {
		size_t i;

		memcpy(s, "a@", 2);
		for (i = 2; i < n; i++)
			s[i] = (i - 2) % 50 == 49 ? '.' : 'd';
		if (s[n - 1] == '.')
			s[n - 1] = 'd';
		assert_int_equal(addr_parse(s, n, 0, &p, &why), n == 254 ? ADDR_OK : ADDR_TOO_LONG);
	}

	/* Domain over 255 octets. */
	memcpy(s, "a@", 2);
	for (n = 2; n < 2 + 300; n++)
		s[n] = (n - 2) % 10 == 9 ? '.' : 'd';
	assert_int_equal(addr_parse(s, 301, 0, &p, &why), ADDR_TOO_LONG);
}

static void
test_addr_parse_domain(void **state)
{
	bool lit;
	const char *why;

	(void)state;
	assert_int_equal(addr_parse_domain("mail.example", 12, 0, &lit, &why), ADDR_OK);
	assert_false(lit);
	assert_int_equal(addr_parse_domain("[10.0.0.1]", 10, 0, &lit, &why), ADDR_OK);
	assert_true(lit);
	assert_int_equal(addr_parse_domain("my_host", 7, 0, &lit, &why), ADDR_BAD_DOMAIN);
	assert_int_equal(addr_parse_domain("my_host", 7, ADDR_ALLOW_UNDERSCORE, &lit, &why),
	    ADDR_OK);
	assert_int_equal(addr_parse_domain("", 0, 0, &lit, &why), ADDR_EMPTY);
	assert_int_equal(addr_parse_domain("b\xc3\xbc", 3, 0, &lit, &why), ADDR_UTF8_NOT_ALLOWED);
	assert_int_equal(addr_parse_domain("b\xc3\xbc", 3, ADDR_ALLOW_UTF8, &lit, &why), ADDR_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_table),
		cmocka_unit_test(test_addr_parts),
		cmocka_unit_test(test_addr_routing_flags),
		cmocka_unit_test(test_addr_lengths),
		cmocka_unit_test(test_addr_parse_domain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
