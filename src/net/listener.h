/*
 * listener.h - listening sockets. Bound before the privilege drop (ports < 1024), handed to the
 * engines afterwards; kept across SIGHUP.
 * Thread: loop thread.
 */
#ifndef HK_LISTENER_H
#define HK_LISTENER_H

#include "../conf/conf.h"
#include "../util/err.h"

/*
 * Create, bind and listen on addr (TCP, or a Unix socket path: an existing socket file is
 * replaced, mode applied with fchmod before bind is impossible, so umask-then-chmod). Sets
 * SO_REUSEADDR, non-blocking, close-on-exec, backlog 1024. Returns the fd or -1 with err.
 */
HK_MUST_CHECK int listener_bind(const struct conf_addr *addr, unsigned unix_mode,
    struct hk_err *err);

#endif
