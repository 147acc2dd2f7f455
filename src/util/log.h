/*
 * log.h - the daemon log: one logfmt line per event on stderr (journald picks it up).
 *
 * Line: "level=info mod=smtpd event=queued qid=... size=4211". The format arguments supply the
 * key=value pairs after event=. Peer-supplied text must go through log_q(), which quotes and
 * escapes control bytes so no input can forge a line. Never log credentials.
 * Thread: any (each line is written with one write(2)).
 */
#ifndef HK_LOG_H
#define HK_LOG_H

#include <stddef.h>

#include "common.h"

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Transcript flags for log_trace(); set with log_set_trace(). */
#define TRACE_SMTPD 0x1u
#define TRACE_SMTPC 0x2u
#define TRACE_SPOOL 0x4u

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_trace(unsigned flags);
/* Parse "debug", "info", "warn", "error"; -1 if unknown. */
HK_MUST_CHECK int log_level_parse(const char *s, enum log_level *out);
/* Write to fd instead of stderr (tests). */
void log_set_fd(int fd);

HK_PRINTF(4, 5) void log_write(enum log_level level, const char *mod, const char *event,
    const char *fmt, ...);
HK_PRINTF(4, 5) void log_trace_write(unsigned flag, const char *mod, const char *event,
    const char *fmt, ...);

#define log_debug(mod, event, ...) log_write(LOG_LEVEL_DEBUG, mod, event, __VA_ARGS__)
#define log_info(mod, event, ...) log_write(LOG_LEVEL_INFO, mod, event, __VA_ARGS__)
#define log_warn(mod, event, ...) log_write(LOG_LEVEL_WARN, mod, event, __VA_ARGS__)
#define log_error(mod, event, ...) log_write(LOG_LEVEL_ERROR, mod, event, __VA_ARGS__)
#define log_trace(flag, mod, event, ...) log_trace_write(flag, mod, event, __VA_ARGS__)

/*
 * Quote s for a log value: "..." with \" \\ \n \r \t \xNN escapes, at most 512 input bytes
 * (longer input ends in "..."). Returns a pointer into one of 8 per-thread rotating buffers:
 * valid until 8 more log_q calls on the same thread, so use it only inside one log call.
 */
const char *log_q(const char *s);
const char *log_qn(const char *s, size_t n);

#endif
