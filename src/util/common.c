/* common.c - panic and loop-thread bookkeeping. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "poison.h"

static pthread_t loop_thread;
static bool loop_thread_known;

void
hk_panic_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "level=crit mod=panic at=%s:%d msg=\"", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\"\n");
	fflush(stderr);
	abort();
}

void
hk_loop_thread_set(void)
{
	loop_thread = pthread_self();
	loop_thread_known = true;
}

bool
hk_is_loop_thread(void)
{
	return !loop_thread_known || pthread_equal(loop_thread, pthread_self());
}
