/* sdnotify.c - systemd notifications. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef HK_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "sdnotify.h"
#include "../util/num.h"
#include "../util/poison.h"

#ifndef HK_HAVE_LIBSYSTEMD
static void
sdnotify_builtin(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	size_t n;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return;
	n = strlen(path);
	if (n >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0) {
		/* systemd gone: nothing to tell. */
	}
	close(fd);
}
#endif

void
sdnotify(const char *state)
{
#ifdef HK_HAVE_LIBSYSTEMD
	sd_notify(0, state);
#else
	sdnotify_builtin(state);
#endif
}

void
sdnotifyf(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	sdnotify(line);
}

uint64_t
sdnotify_watchdog_ms(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	uint64_t us, p;

	if (usec == NULL || num_parse_u64z(usec, UINT64_MAX, &us) == -1 || us == 0)
		return 0;
	if (pid != NULL && (num_parse_u64z(pid, UINT32_MAX, &p) == -1 || p != (uint64_t)getpid()))
		return 0;
	return us / 1000;
}
