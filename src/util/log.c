/* log.c - logfmt lines on stderr. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "poison.h"

#define LOG_Q_SLOTS 8
#define LOG_Q_MAX_IN 512

static enum log_level log_level = LOG_LEVEL_INFO;
static unsigned log_trace_flags;
static int log_fd = 2;

static const char *const log_level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug", [LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warn", [LOG_LEVEL_ERROR] = "error",
};

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

void
log_set_trace(unsigned flags)
{
	log_trace_flags = flags;
}

void
log_set_fd(int fd)
{
	log_fd = fd;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < HK_ARRAY_LEN(log_level_names); i++) {
		if (strcmp(s, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void
log_vwrite(const char *level, const char *mod, const char *event, const char *fmt, va_list ap)
{
	char stack[1024];
	struct buf b = BUF_INIT;
	va_list ap2;
	int n;

	/* Most lines fit on the stack; one write(2) keeps concurrent lines whole. */
	n = snprintf(stack, sizeof(stack), "level=%s mod=%s event=%s ", level, mod, event);
	if (n > 0 && (size_t)n < sizeof(stack)) {
		int m;

		va_copy(ap2, ap);
		m = vsnprintf(stack + n, sizeof(stack) - (size_t)n - 1, fmt, ap2);
		va_end(ap2);
		if (m >= 0 && (size_t)(n + m) < sizeof(stack) - 1) {
			stack[n + m] = '\n';
			if (write(log_fd, stack, (size_t)(n + m + 1)) < 0) {
				/* Nowhere left to report a failed log write. */
			}
			return;
		}
	}
	buf_printf(&b, "level=%s mod=%s event=%s ", level, mod, event);
	buf_vprintf(&b, fmt, ap);
	buf_putc(&b, '\n');
	if (write(log_fd, b.ptr, b.len) < 0) {
		/* Nowhere left to report a failed log write. */
	}
	buf_fini(&b);
}

void
log_write(enum log_level level, const char *mod, const char *event, const char *fmt, ...)
{
	va_list ap;

	if (level < log_level)
		return;
	va_start(ap, fmt);
	log_vwrite(log_level_names[level], mod, event, fmt, ap);
	va_end(ap);
}

void
log_trace_write(unsigned flag, const char *mod, const char *event, const char *fmt, ...)
{
	va_list ap;

	if ((log_trace_flags & flag) == 0)
		return;
	va_start(ap, fmt);
	log_vwrite("trace", mod, event, fmt, ap);
	va_end(ap);
}

const char *
log_qn(const char *s, size_t n)
{
	/* Worst case: every byte becomes \xNN (4), plus quotes, "..." and the NUL. */
	static __thread char slots[LOG_Q_SLOTS][LOG_Q_MAX_IN * 4 + 8];
	static __thread unsigned next;
	static const char hex[] = "0123456789abcdef";
	char *out = slots[next++ % LOG_Q_SLOTS], *p = out;
	size_t i, lim = n > LOG_Q_MAX_IN ? LOG_Q_MAX_IN : n;

	if (s == NULL)
		return "\"\"";
	*p++ = '"';
	for (i = 0; i < lim; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"': *p++ = '\\'; *p++ = '"'; break;
		case '\\': *p++ = '\\'; *p++ = '\\'; break;
		case '\n': *p++ = '\\'; *p++ = 'n'; break;
		case '\r': *p++ = '\\'; *p++ = 'r'; break;
		case '\t': *p++ = '\\'; *p++ = 't'; break;
		default:
			if (c < 0x20 || c == 0x7f) {
				*p++ = '\\';
				*p++ = 'x';
				*p++ = hex[c >> 4];
				*p++ = hex[c & 15];
			} else {
				*p++ = (char)c;
			}
		}
	}
	if (lim < n) {
		memcpy(p, "...", 3);
		p += 3;
	}
	*p++ = '"';
	*p = '\0';
	return out;
}

const char *
log_q(const char *s)
{
	return log_qn(s, s ? strlen(s) : 0);
}
