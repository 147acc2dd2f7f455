/* cli_conf.c - the configuration as the commands other than serve load it (cli.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "../conf/conf.h"
#include "../util/buf.h"
#include "../util/fsops.h"
#include "../util/xalloc.h"
#include "../util/poison.h"

#define CLI_CONF_MAX (16u << 20) /* conf_load_string refuses far less; this only bounds the read */

int
cli_conf_load(const char *prog, const char *path, struct conf **out)
{
	struct conf_diag diag;
	struct buf yaml = BUF_INIT;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1 || fsops_read_all(fd, &yaml, CLI_CONF_MAX) == -1) {
		int e = errno;

		fprintf(stderr, "%s: cannot read configuration %s: %s\n", prog, path, strerror(e));
		if (fd != -1)
			close(fd);
		buf_fini(&yaml);
		return EX_CONFIG;
	}
	close(fd);
	conf_diag_init(&diag);
	/* Commands need the settings, not the keys, passwords and certificates: no file checks. */
	rc = conf_load_string(path, yaml.ptr ? yaml.ptr : "", yaml.len, false, out, &diag);
	if (rc == -1 && diag.text.len)
		fputs(diag.text.ptr, stderr);
	conf_diag_fini(&diag);
	buf_fini(&yaml);
	return rc == -1 ? EX_CONFIG : EX_OK;
}

int
cli_conf_socket(const char *prog, const char *path, char **out)
{
	struct conf *c;
	int ex = cli_conf_load(prog, path, &c);

	if (ex != EX_OK)
		return ex;
	if (c->api_control_socket == NULL) {
		fprintf(stderr, "%s: %s has no api.control_socket\n", prog, path);
		conf_unref(c);
		return EX_CONFIG;
	}
	*out = xstrdup(c->api_control_socket);
	conf_unref(c);
	return EX_OK;
}
