/* cli_passwd.c - hikyaku passwd: print a yescrypt hash for users: password_hash. */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "../util/poison.h"

#define PASSWD_MAX 1024

/* Read one line from stdin without echo when it is a terminal. -1 on EOF or error. */
static int
passwd_read(const char *prompt, char *out, size_t size)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO);
	size_t n;

	if (tty) {
		fprintf(stderr, "%s", prompt);
		if (tcgetattr(STDIN_FILENO, &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		} else {
			tty = false;
		}
	}
	if (fgets(out, (int)size, stdin) == NULL) {
		if (tty)
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		return -1;
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	n = strcspn(out, "\r\n");
	out[n] = '\0';
	return 0;
}

int
cli_passwd(const struct cli_opts *o, int argc, char **argv)
{
	char pw[PASSWD_MAX], again[PASSWD_MAX], salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;
	const char *hash;

	(void)o;
	if (argc > 1) {
		fprintf(stderr, "usage: hikyaku passwd  (reads the password from standard input)\n");
		return EX_USAGE;
	}
	(void)argv;
	if (passwd_read("Password: ", pw, sizeof(pw)) == -1) {
		fprintf(stderr, "hikyaku passwd: no password given on standard input\n");
		return EX_DATAERR;
	}
	if (isatty(STDIN_FILENO)) {
		if (passwd_read("Again: ", again, sizeof(again)) == -1 || strcmp(pw, again) != 0) {
			fprintf(stderr, "hikyaku passwd: the passwords differ\n");
			return EX_DATAERR;
		}
	}
	if (pw[0] == '\0') {
		fprintf(stderr, "hikyaku passwd: refusing an empty password\n");
		return EX_DATAERR;
	}
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL) {
		fprintf(stderr, "hikyaku passwd: cannot make a salt: %s\n", strerror(errno));
		return EX_SOFTWARE;
	}
	memset(&cd, 0, sizeof(cd));
	hash = crypt_rn(pw, salt, &cd, sizeof(cd));
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(again, sizeof(again));
	if (hash == NULL || hash[0] == '*') {
		fprintf(stderr, "hikyaku passwd: hashing failed\n");
		return EX_SOFTWARE;
	}
	printf("%s\n", hash);
	explicit_bzero(&cd, sizeof(cd));
	return EX_OK;
}
