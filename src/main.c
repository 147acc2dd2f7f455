/*
 * main.c - the one hikyaku binary: global options, then the sub-command.
 *
 *   hikyaku [-c FILE] [--json] COMMAND [ARGS]
 *
 * -c and --json may also follow the command. The configuration path is -c, else
 * $HIKYAKU_CONFIG, else /etc/hikyaku/hikyaku.yaml. Exit codes follow sysexits.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli/cli.h"
#include "util/common.h"
#include "util/poison.h"

#define HK_VERSION "0.1.0"

int main(int argc, char **argv);

struct main_cmd {
	const char *name;
	int (*run)(const struct cli_opts *o, int argc, char **argv);
	const char *help;
};

static int main_version(const struct cli_opts *o, int argc, char **argv);
static int main_help(const struct cli_opts *o, int argc, char **argv);

static const struct main_cmd main_cmds[] = {
	{ .name = "serve", .run = cli_serve,
	  .help = "serve [--check]      run the daemon in the foreground (--check: validate config)" },
	{ .name = "sendmail", .run = cli_sendmail,
	  .help = "sendmail [-t] [-i] [-f A] [-F N] [-bp] [RCPT...]  sendmail-compatible submission" },
	{ .name = "status", .run = cli_status,
	  .help = "status               daemon, queue and upstream health at a glance" },
	{ .name = "log", .run = cli_log,
	  .help = "log [--status S] [--from A] [--to A] [--since T] [--until T] [--upstream U]\n"
		  "      [--search TEXT] [--limit N]   search the email log" },
	{ .name = "show", .run = cli_show,
	  .help = "show ID              one message: envelope, recipients, attempts, events" },
	{ .name = "resend", .run = cli_resend,
	  .help = "resend ID... | resend --status S --since T ...  resend one, several or a filter" },
	{ .name = "queue", .run = cli_queue,
	  .help = "queue                queued, deferred and held messages" },
	{ .name = "flush", .run = cli_flush,
	  .help = "flush [ID]           try one message, or every waiting one, now" },
	{ .name = "hold", .run = cli_hold,
	  .help = "hold ID              keep a queued message from delivery until released" },
	{ .name = "release", .run = cli_release,
	  .help = "release ID           let a held message go, now" },
	{ .name = "delete", .run = cli_delete,
	  .help = "delete ID            remove a message from the queue (logged as deleted)" },
	{ .name = "announce", .run = cli_announce,
	  .help = "announce --template outage|recovery|PATH [--lang en|ja] --to FILE.csv\n"
		  "      [--var K=V ...] [--from A] [--route R] [--rate N/s] [--skip-bad] [--preview]\n"
		  "                       send a notice to every recipient of a CSV file" },
	{ .name = "check-dns", .run = cli_check_dns,
	  .help = "check-dns DOMAIN [--selector S] [--ip IP]\n"
		  "      SPF, DKIM, DMARC, MX, PTR, MTA-STS, TLS-RPT, blocklists; a fix for each problem" },
	{ .name = "alert", .run = cli_alert,
	  .help = "alert test CHANNEL   send a test notice through one alert channel" },
	{ .name = "explain", .run = cli_explain,
	  .help = "explain \"REPLY\"      an upstream's SMTP reply in plain words: cause, fix" },
	{ .name = "test", .run = cli_test,
	  .help = "test UPSTREAM [--to A] [--from A] [--timeout D] [--local]\n"
		  "      connect, TLS, AUTH (and with --to send a message); explain any failure" },
	{ .name = "passwd", .run = cli_passwd,
	  .help = "passwd               read a password on stdin, print its yescrypt hash" },
	{ .name = "version", .run = main_version, .help = "version              print the version" },
	{ .name = "help", .run = main_help, .help = "help                 this text" },
};

static int
main_version(const struct cli_opts *o, int argc, char **argv)
{
	(void)o;
	(void)argc;
	(void)argv;
	printf("hikyaku %s\n", HK_VERSION);
	return EX_OK;
}

static void
main_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: hikyaku [-c FILE] [--json] COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < HK_ARRAY_LEN(main_cmds); i++)
		fprintf(f, "  %s\n", main_cmds[i].help);
	fprintf(f, "\nconfiguration: -c FILE, else $HIKYAKU_CONFIG, else %s\n",
	    CLI_DEFAULT_CONFIG);
}

static int
main_help(const struct cli_opts *o, int argc, char **argv)
{
	(void)o;
	(void)argc;
	(void)argv;
	main_usage(stdout);
	return EX_OK;
}

int
main(int argc, char **argv)
{
	struct cli_opts o = { 0 };
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	const char *base;
	int i, n = 0, rc;
	size_t k;

	if (rest == NULL)
		return EX_OSERR;
	o.config = getenv("HIKYAKU_CONFIG");
	/* Pull the global options out wherever they stand; keep the rest in order. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "hikyaku: %s needs a file\n", argv[i]);
				free(rest);
				return EX_USAGE;
			}
			o.config = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			o.config = argv[i] + 9;
		} else if (strcmp(argv[i], "--json") == 0) {
			o.json = true;
		} else {
			rest[n++] = argv[i];
		}
	}
	if (o.config == NULL || o.config[0] == '\0')
		o.config = CLI_DEFAULT_CONFIG;
	/* Run as "sendmail" (a symlink): every argument belongs to the sendmail command. */
	base = argc > 0 ? strrchr(argv[0], '/') : NULL;
	if (argc > 0 && strcmp(base ? base + 1 : argv[0], "sendmail") == 0) {
		memmove(rest + 1, rest, (size_t)n * sizeof(*rest));
		rest[0] = "sendmail";
		n++;
	}
	if (n == 0) {
		main_usage(stderr);
		free(rest);
		return EX_USAGE;
	}
	for (k = 0; k < HK_ARRAY_LEN(main_cmds); k++) {
		if (strcmp(rest[0], main_cmds[k].name) == 0) {
			rc = main_cmds[k].run(&o, n, rest);
			free(rest);
			return rc;
		}
	}
	fprintf(stderr, "hikyaku: unknown command \"%s\"\n\n", rest[0]);
	main_usage(stderr);
	free(rest);
	return EX_USAGE;
}
