/*
 * cli.h - sub-commands of the one hikyaku binary. Each returns a sysexits.h exit code.
 * Thread: main thread, before any other thread exists (serve makes the loop thread its own).
 */
#ifndef HK_CLI_H
#define HK_CLI_H

#include <stdbool.h>

struct cli_opts {
	const char *config; /* -c FILE, $HIKYAKU_CONFIG, or the default path */
	bool json;          /* --json */
};

#define CLI_DEFAULT_CONFIG "/etc/hikyaku/hikyaku.yaml"

struct conf;

/*
 * Load the configuration at path for a command (cli_conf.c): the settings only, without checking
 * files only the daemon reads (keys, certificates, password files). Problems go to stderr, a read
 * error as "PROG: cannot read configuration PATH: why". EX_OK with *out (one reference), or
 * EX_CONFIG.
 */
int cli_conf_load(const char *prog, const char *path, struct conf **out);
/* The configuration's api.control_socket, copied to *out; EX_CONFIG (said on stderr) without. */
int cli_conf_socket(const char *prog, const char *path, char **out);

/* hikyaku serve [--check] */
int cli_serve(const struct cli_opts *o, int argc, char **argv);
/* hikyaku serve --check: validate and print FILE:LINE:COL: message per problem. */
int cli_check(const struct cli_opts *o);
/*
 * hikyaku sendmail [-t] [-i] [-f ADDR] [-F NAME] [-bp] [-bs] [-q] [--] [RCPT...], also run when
 * the binary is called "sendmail" (argv[0] is then "sendmail").
 */
int cli_sendmail(const struct cli_opts *o, int argc, char **argv);
/* hikyaku passwd: read a password (twice on a terminal), print its yescrypt hash. */
int cli_passwd(const struct cli_opts *o, int argc, char **argv);
/*
 * hikyaku explain [--json] "REPLY" | -: an SMTP reply in plain words, no daemon needed
 * (cli_explain.c). 0 explained, 1 nothing to explain (2xx/3xx), 65 not a reply.
 */
int cli_explain(const struct cli_opts *o, int argc, char **argv);
/*
 * Commands that talk to the running daemon over api.control_socket (cli_admin.c): exit 69 when
 * it is not running, 77 without permission on the socket.
 */
int cli_status(const struct cli_opts *o, int argc, char **argv);
int cli_log(const struct cli_opts *o, int argc, char **argv);
int cli_show(const struct cli_opts *o, int argc, char **argv);
int cli_resend(const struct cli_opts *o, int argc, char **argv);
int cli_queue(const struct cli_opts *o, int argc, char **argv);
int cli_flush(const struct cli_opts *o, int argc, char **argv);
int cli_hold(const struct cli_opts *o, int argc, char **argv);
int cli_release(const struct cli_opts *o, int argc, char **argv);
int cli_delete(const struct cli_opts *o, int argc, char **argv);
/*
 * hikyaku test UPSTREAM [--to ADDR] [--from ADDR] [--timeout D] [--local]: the connection test,
 * through the daemon when it runs, else in this process (cli_test.c).
 */
int cli_test(const struct cli_opts *o, int argc, char **argv);
/*
 * hikyaku announce --template T [--lang en|ja] --to FILE.csv [--var K=V]... [--from A]
 * [--route R] [--rate N/s] [--skip-bad] [--preview]: a notice to every row of a CSV file
 * (cli_announce.c, docs/announce.md).
 */
int cli_announce(const struct cli_opts *o, int argc, char **argv);

/*
 * hikyaku check-dns DOMAIN [--selector S] [--ip IP] [--json] (cli_check_dns.c): SPF, DKIM, DMARC,
 * MX, PTR, MTA-STS, TLS-RPT and blocklist checks; no daemon needed. 0 ok, 65 errors found.
 */
int cli_check_dns(const struct cli_opts *o, int argc, char **argv);
/*
 * hikyaku alert test CHANNEL [--json] (cli_alert.c): a test notice through one alert channel
 * of the running daemon. 0 accepted, 69 failed (or no daemon), 64 no such channel.
 */
int cli_alert(const struct cli_opts *o, int argc, char **argv);

#endif
