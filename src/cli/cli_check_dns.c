/*
 * cli_check_dns.c - hikyaku check-dns DOMAIN [--selector S] [--ip IP] [--json]: the DNS checks
 * of a sending domain, run here (no daemon needed) with the configuration's dns: and checks:
 * settings. Exit 0 when nothing is an error, 65 when a finding is an error, 64 on bad usage,
 * 78 when the configuration does not load, 69 when the resolver cannot be set up.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include <event2/event.h>

#include "../conf/conf.h"
#include "../diag/diag.h"
#include "../util/buf.h"
#include "cli.h"
#include "../util/poison.h"

struct cli_check_dns {
	struct event_base *base;
	bool json;
	bool finished;
	int rc;
};

static void
cli_check_dns_done_cb(void *arg, const struct diag_report *r)
{
	struct cli_check_dns *st = arg;
	struct buf out;

	buf_init(&out);
	if (st->json) {
		diag_report_json(r, &out);
		buf_putc(&out, '\n');
	} else {
		diag_report_text(r, &out);
	}
	fwrite(out.ptr, 1, out.len, stdout);
	fflush(stdout);
	buf_fini(&out);
	st->rc = diag_report_worst(r) == DIAG_ERROR ? EX_DATAERR : EX_OK;
	st->finished = true;
	event_base_loopbreak(st->base);
}

static int
cli_check_dns_usage(void)
{
	fputs("usage: hikyaku check-dns DOMAIN [--selector S] [--ip IP] [--json]\n", stderr);
	return EX_USAGE;
}

int
cli_check_dns(const struct cli_opts *o, int argc, char **argv)
{
	const char *domain = NULL, *selector = NULL, *ip = NULL;
	struct cli_check_dns st = { .json = o->json, .rc = EX_SOFTWARE };
	struct diag_params dp = { 0 };
	struct conf_diag cd;
	struct conf *c = NULL;
	struct hk_err err = { 0 };
	struct diag *d;
	unsigned char a[16];
	int i;

	for (i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "--selector") == 0 || strcmp(argv[i], "--ip") == 0) &&
		    i + 1 < argc) {
			if (argv[i][2] == 's')
				selector = argv[++i];
			else
				ip = argv[++i];
		} else if (argv[i][0] == '-' || domain != NULL) {
			return cli_check_dns_usage();
		} else {
			domain = argv[i];
		}
	}
	if (domain == NULL || strchr(domain, '.') == NULL || strlen(domain) > 253)
		return cli_check_dns_usage();
	if (ip != NULL && inet_pton(AF_INET, ip, a) != 1 && inet_pton(AF_INET6, ip, a) != 1) {
		fprintf(stderr, "hikyaku check-dns: --ip %s is not an IPv4 or IPv6 address\n", ip);
		return EX_USAGE;
	}
	conf_diag_init(&cd);
	if (conf_load(o->config, &c, &cd) == -1) {
		fputs(cd.text.ptr != NULL ? cd.text.ptr : "", stderr);
		conf_diag_fini(&cd);
		return EX_CONFIG;
	}
	conf_diag_fini(&cd);
	st.base = event_base_new();
	if (st.base == NULL) {
		conf_unref(c);
		return EX_OSERR;
	}
	dp.base = st.base;
	dp.conf = c;
	d = diag_new(&dp, &err);
	if (d == NULL) {
		fprintf(stderr, "hikyaku check-dns: %s\n", err.text);
		event_base_free(st.base);
		conf_unref(c);
		return EX_UNAVAILABLE;
	}
	(void)diag_check(d, domain, selector, ip, cli_check_dns_done_cb, &st);
	while (!st.finished && event_base_loop(st.base, EVLOOP_ONCE) == 0)
		;
	diag_free(d);
	event_base_free(st.base);
	conf_unref(c);
	return st.rc;
}
