/*
 * sched.h - the scheduler: which queued message is due next (DESIGN.md 7 "Scheduler").
 *
 * A min-heap of (due time, queue ID): 16 bytes per waiting message; envelopes are loaded by the
 * relay only when a message is due. A libevent timer fires at the earliest due time; due
 * messages are offered to ready_cb one by one, in due order; ready_cb returns false when the relay
 * is at capacity, and the message stays first in line until sched_kick(). The spool stays the
 * source of truth: at start main re-adds every recovered envelope.
 * A message must be in the scheduler at most once (the relay re-adds it after an attempt).
 * Thread: loop thread only.
 */
#ifndef HK_SCHED_H
#define HK_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct sched;

/* Take message id now (true), or refuse for now (false: at capacity). */
typedef bool (*sched_ready_fn)(void *arg, uint64_t id);

struct sched *sched_new(struct event_base *base, sched_ready_fn ready_cb, void *arg);
void sched_free(struct sched *s);
/* Queue id to be offered at due_ms (wall clock ms; 0 or past: as soon as possible). */
void sched_add(struct sched *s, uint64_t id, uint64_t due_ms);
/* Offer due messages again (the relay has capacity again). */
void sched_kick(struct sched *s);
/* Remove id if waiting (flush, hold, delete). Returns true when it was there. O(n). */
bool sched_remove(struct sched *s, uint64_t id);
/* Make every waiting message due now (flush). */
void sched_flush(struct sched *s);
size_t sched_waiting(const struct sched *s);
/* The smallest (oldest, IDs being time-ordered) waiting ID, 0 when none. O(n). */
uint64_t sched_oldest_id(const struct sched *s);
/* Due time of the earliest waiting message, UINT64_MAX when none. */
uint64_t sched_next_due(const struct sched *s);

#endif
