/*
 * common.h - macros every hikyaku source file may use: assertions, panics, attributes.
 *
 * Invariants: HK_ASSERT is always compiled in (a broken invariant in a mail system must stop the
 * process, never corrupt the spool); HK_ASSERT_LOOP only in debug builds.
 * Thread: any.
 */
#ifndef HK_COMMON_H
#define HK_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_MUST_CHECK __attribute__((warn_unused_result))
#define HK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define HK_NORETURN __attribute__((noreturn))
#define HK_UNUSED __attribute__((unused))
#define HK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Abort with file:line and a message. For bugs only, never for environment or peer errors. */
HK_NORETURN HK_PRINTF(3, 4) void hk_panic_at(const char *file, int line, const char *fmt, ...);
#define hk_panic(...) hk_panic_at(__FILE__, __LINE__, __VA_ARGS__)

#define HK_ASSERT(cond)                                                                    \
	do {                                                                               \
		if (__builtin_expect(!(cond), 0))                                          \
			hk_panic_at(__FILE__, __LINE__, "assertion failed: %s", #cond);    \
	} while (0)

/* Remember the calling thread as the loop thread (once, at start-up). */
void hk_loop_thread_set(void);
/* True when called on the loop thread (or when none was set, as in unit tests). */
bool hk_is_loop_thread(void);

#ifdef HK_DEBUG
#define HK_ASSERT_LOOP() HK_ASSERT(hk_is_loop_thread())
#else
#define HK_ASSERT_LOOP() ((void)0)
#endif

#endif
