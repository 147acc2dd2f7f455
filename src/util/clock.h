/*
 * clock.h - the time seam. Code asks here instead of calling clock_gettime(), so tests can set a
 * fake clock instead of sleeping.
 * Thread: any; clock_set_fake() only from tests, before threads start.
 */
#ifndef HK_CLOCK_H
#define HK_CLOCK_H

#include <stdint.h>

/* Wall-clock milliseconds since the Unix epoch. */
uint64_t clock_now_ms(void);
/* Monotonic milliseconds (arbitrary origin), for timeouts and durations. */
uint64_t clock_mono_ms(void);
/* Freeze both clocks at ms (wall) ; 0 returns to the real clocks. */
void clock_set_fake(uint64_t ms);
/* Advance the fake clock by ms. */
void clock_advance_fake(uint64_t ms);

#endif
