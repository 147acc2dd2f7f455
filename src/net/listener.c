/* listener.c - listening sockets, bound before the privilege drop. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listener.h"
#include "../util/poison.h"

#define LISTENER_BACKLOG 1024

static int
listener_bind_unix(const struct conf_addr *addr, unsigned unix_mode, struct hk_err *err)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&addr->ss;
	struct stat st;
	mode_t old_mask;
	int fd, rc;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return hk_err_sys(err, errno, "socket %s", addr->text);
	/* Replace a stale socket from an earlier run, but never unlink anything else. */
	if (lstat(sun->sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			close(fd);
			return hk_err_set(err, HK_E_EXISTS, "%s exists and is not a socket",
			    addr->text);
		}
		if (unlink(sun->sun_path) == -1 && errno != ENOENT) {
			hk_err_sys(err, errno, "unlink %s", addr->text);
			goto fail;
		}
	}
	/* fchmod on a socket before bind does not set the file's mode: narrow the umask. */
	old_mask = umask(0777 & ~(mode_t)unix_mode);
	rc = bind(fd, (const struct sockaddr *)&addr->ss, addr->len);
	umask(old_mask);
	if (rc == -1) {
		hk_err_sys(err, errno, "bind %s", addr->text);
		goto fail;
	}
	if (chmod(sun->sun_path, (mode_t)unix_mode) == -1) {
		hk_err_sys(err, errno, "chmod %s", addr->text);
		goto fail;
	}
	if (listen(fd, LISTENER_BACKLOG) == -1) {
		hk_err_sys(err, errno, "listen %s", addr->text);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int
listener_bind(const struct conf_addr *addr, unsigned unix_mode, struct hk_err *err)
{
	int fd, one = 1;

	if (addr->ss.ss_family == AF_UNIX)
		return listener_bind_unix(addr, unix_mode, err);
	if (addr->ss.ss_family != AF_INET && addr->ss.ss_family != AF_INET6)
		return hk_err_set(err, HK_E_CONFIG, "%s: unsupported address family", addr->text);
	fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return hk_err_sys(err, errno, "socket %s", addr->text);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1) {
		hk_err_sys(err, errno, "SO_REUSEADDR %s", addr->text);
		goto fail;
	}
	/* [::]:25 and 0.0.0.0:25 may both be configured: keep the v6 socket v6-only. */
	if (addr->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) {
		hk_err_sys(err, errno, "IPV6_V6ONLY %s", addr->text);
		goto fail;
	}
	if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) == -1) {
		hk_err_sys(err, errno, "bind %s", addr->text);
		goto fail;
	}
	if (listen(fd, LISTENER_BACKLOG) == -1) {
		hk_err_sys(err, errno, "listen %s", addr->text);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}
