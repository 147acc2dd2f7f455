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

#endif
