/*
 * sdnotify.h - systemd service notifications (Type=notify): READY=1, STATUS=, WATCHDOG=1,
 * STOPPING=1, RELOADING=1. Uses libsystemd when built with it, else a small writer to
 * $NOTIFY_SOCKET. Silent no-op when not started by systemd.
 * Thread: loop thread.
 */
#ifndef HK_SDNOTIFY_H
#define HK_SDNOTIFY_H

#include <stdint.h>

#include "../util/common.h"

/* Send one notification string ("READY=1\nSTATUS=..."). */
void sdnotify(const char *state);
HK_PRINTF(1, 2) void sdnotifyf(const char *fmt, ...);
/* Watchdog interval in ms requested by systemd (WATCHDOG_USEC for our PID), 0 when none. */
uint64_t sdnotify_watchdog_ms(void);

#endif
