/*
 * test_relay_probe.c - the connection test's pure parts: the advice for each failing step
 * (relay_probe_diagnose), step names, and the address check for --to / --from.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "relay/relay_probe.h"
#include "util/poison.h"

static struct relay_probe_advice
diag(enum relay_probe_step_kind step, enum relay_probe_local local, int code, int c, int s,
    int d, const char *text, unsigned port, enum conf_tls tls)
{
	struct relay_probe_failure f;
	struct relay_probe_advice a;

	memset(&f, 0, sizeof(f));
	f.step = step;
	f.local = local;
	f.code = code;
	f.enh_class = c;
	f.enh_subject = s;
	f.enh_detail = d;
	f.text = text;
	f.port = port;
	f.tls = tls;
	f.verify = true;
	relay_probe_diagnose(&f, &a);
	return a;
}

static void
test_port_25_timeout_suggests_submission(void **state)
{
	struct relay_probe_advice a = diag(RELAY_PROBE_CONNECT, RELAY_PROBE_LOCAL_TIMEOUT, 0, 0, 0,
	    0, "no answer", 25, CONF_TLS_STARTTLS);

	(void)state;
	assert_string_equal(a.id, "port-25-blocked");
	assert_non_null(strstr(a.fix, "587"));
	assert_non_null(strstr(a.fix, "465"));
	/* Another port: a plain connect timeout, not the port 25 story. */
	a = diag(RELAY_PROBE_CONNECT, RELAY_PROBE_LOCAL_TIMEOUT, 0, 0, 0, 0, "x", 587,
	    CONF_TLS_STARTTLS);
	assert_string_equal(a.id, "connect-timeout");
}

static void
test_tls_mode_vs_port(void **state)
{
	struct relay_probe_advice a;

	(void)state;
	a = diag(RELAY_PROBE_TLS, RELAY_PROBE_LOCAL_TLS_PLAINTEXT, 0, 0, 0, 0, "220", 587,
	    CONF_TLS_IMPLICIT);
	assert_string_equal(a.id, "wrong-port-for-implicit-tls");
	assert_non_null(strstr(a.fix, "tls: starttls"));
	a = diag(RELAY_PROBE_GREETING, RELAY_PROBE_LOCAL_TIMEOUT, 0, 0, 0, 0, "x", 465,
	    CONF_TLS_STARTTLS);
	assert_string_equal(a.id, "wrong-port-for-starttls");
	assert_non_null(strstr(a.fix, "tls: implicit"));
	assert_non_null(strstr(a.cause, "465"));
	/* With implicit TLS a greeting timeout is not a port mix-up: the explainer's words. */
	a = diag(RELAY_PROBE_GREETING, RELAY_PROBE_LOCAL_TIMEOUT, 0, 0, 0, 0, "x", 465,
	    CONF_TLS_IMPLICIT);
	assert_string_equal(a.id, "local-timeout");
}

static void
test_auth_replies(void **state)
{
	struct relay_probe_advice a;

	(void)state;
	a = diag(RELAY_PROBE_AUTH, RELAY_PROBE_LOCAL_NONE, 535, 5, 7, 8,
	    "Authentication credentials invalid", 587, CONF_TLS_STARTTLS);
	assert_string_equal(a.id, "wrong-password");
	assert_non_null(a.explain_id);
	assert_string_equal(a.culprit, "auth");
	a = diag(RELAY_PROBE_AUTH, RELAY_PROBE_LOCAL_NONE, 534, 5, 7, 9,
	    "Application-specific password required. Learn more at\nhttps://support.example",
	    587, CONF_TLS_STARTTLS);
	assert_string_equal(a.id, "app-password-required");
	assert_non_null(strstr(a.fix, "app password"));
	/* The text alone is enough. */
	a = diag(RELAY_PROBE_AUTH, RELAY_PROBE_LOCAL_NONE, 534, 0, 0, 0,
	    "Please use an application-specific password", 465, CONF_TLS_IMPLICIT);
	assert_string_equal(a.id, "app-password-required");
	/* 535 outside AUTH is not a password problem. */
	a = diag(RELAY_PROBE_MAIL, RELAY_PROBE_LOCAL_NONE, 535, 5, 7, 8, "x", 587,
	    CONF_TLS_STARTTLS);
	assert_string_not_equal(a.id, "wrong-password");
}

static void
test_certificates(void **state)
{
	static const struct {
		enum relay_probe_local local;
		const char *id, *fix_word;
	} rows[] = {
		{ RELAY_PROBE_LOCAL_CERT_SELF_SIGNED, "certificate-self-signed", "ca_file" },
		{ RELAY_PROBE_LOCAL_CERT_UNTRUSTED, "certificate-untrusted", "ca_file" },
		{ RELAY_PROBE_LOCAL_CERT_EXPIRED, "certificate-expired", "verify: false" },
		{ RELAY_PROBE_LOCAL_CERT_MISMATCH, "certificate-host-mismatch", "host:" },
		{ RELAY_PROBE_LOCAL_STARTTLS_MISSING, "starttls-not-offered", "587" },
		{ RELAY_PROBE_LOCAL_AUTH_NEEDS_TLS, "auth-needs-starttls", "tls: starttls" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct relay_probe_advice a = diag(RELAY_PROBE_STARTTLS, rows[i].local, 0, 0, 0, 0,
		    "detail", 587, CONF_TLS_STARTTLS);

		assert_string_equal(a.id, rows[i].id);
		assert_non_null(strstr(a.fix, rows[i].fix_word));
		assert_true(a.cause[0] != '\0');
	}
}

static void
test_replies_go_to_the_explainer(void **state)
{
	struct relay_probe_advice a;

	(void)state;
	a = diag(RELAY_PROBE_RCPT, RELAY_PROBE_LOCAL_NONE, 550, 5, 1, 1, "no such user", 587,
	    CONF_TLS_STARTTLS);
	assert_non_null(a.explain_id);
	assert_string_equal(a.id, a.explain_id);
	assert_string_equal(a.culprit, "recipient");
	/* A bare class-wide reply gets the step's own words. */
	a = diag(RELAY_PROBE_GREETING, RELAY_PROBE_LOCAL_NONE, 554, 0, 0, 0, "go away", 587,
	    CONF_TLS_STARTTLS);
	assert_non_null(strstr(a.cause, "greeting"));
	assert_non_null(strstr(a.cause, "554"));
	a = diag(RELAY_PROBE_CONNECT, RELAY_PROBE_LOCAL_REFUSED, 0, 0, 0, 0, "refused", 2525,
	    CONF_TLS_NONE);
	assert_string_equal(a.id, "connection-refused");
	assert_string_equal(a.explain_id, "local-refused");
	a = diag(RELAY_PROBE_DNS, RELAY_PROBE_LOCAL_DNS_NXDOMAIN, 0, 0, 0, 0, "nx", 587,
	    CONF_TLS_STARTTLS);
	assert_string_equal(a.id, "local-dns-nxdomain");
}

static void
test_names_and_addresses(void **state)
{
	(void)state;
	assert_string_equal(relay_probe_step_name(RELAY_PROBE_STARTTLS), "starttls");
	assert_string_equal(relay_probe_step_name(RELAY_PROBE_STEP_COUNT), "unknown");
	assert_string_equal(relay_probe_tls_name(CONF_TLS_IMPLICIT), "implicit");
	assert_true(relay_probe_addr_is_valid("a@example.net"));
	assert_false(relay_probe_addr_is_valid("a b@example.net"));
	assert_false(relay_probe_addr_is_valid("a@example.net>\r\nRCPT TO:<x@y"));
	assert_false(relay_probe_addr_is_valid("<a@example.net>"));
	assert_false(relay_probe_addr_is_valid("noat"));
	assert_false(relay_probe_addr_is_valid("@example.net"));
	assert_false(relay_probe_addr_is_valid(""));
	assert_false(relay_probe_addr_is_valid(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_port_25_timeout_suggests_submission),
		cmocka_unit_test(test_tls_mode_vs_port),
		cmocka_unit_test(test_auth_replies),
		cmocka_unit_test(test_certificates),
		cmocka_unit_test(test_replies_go_to_the_explainer),
		cmocka_unit_test(test_names_and_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
