/* Monotonic time in nanoseconds, and absolute sleeps on the same clock. Absolute
 * deadlines keep periodic activities from drifting: each release is computed from the
 * first, never from when the previous one happened to wake. CLOCK_MONOTONIC is also
 * what common/rtmsg.h stamps messages with, so stamps and deadlines compare directly. */
#ifndef RTVIO_COMMON_CLOCK_H
#define RTVIO_COMMON_CLOCK_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

#define RTVIO_NSEC_PER_SEC 1000000000ull

static inline struct timespec rtvio_ns_to_timespec(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / RTVIO_NSEC_PER_SEC),
		.tv_nsec = (long)(ns % RTVIO_NSEC_PER_SEC),
	};

	return ts;
}

/* A negative time (before the epoch) cannot come from CLOCK_MONOTONIC; it maps to 0. */
static inline uint64_t rtvio_timespec_to_ns(const struct timespec *ts)
{
	if (ts->tv_sec < 0)
		return 0;
	return (uint64_t)ts->tv_sec * RTVIO_NSEC_PER_SEC + (uint64_t)ts->tv_nsec;
}

/* CLOCK_MONOTONIC now. Through the vDSO: no system call, usable on the real-time path. */
static inline uint64_t rtvio_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return rtvio_timespec_to_ns(&ts);
}

/* Sleeps until CLOCK_MONOTONIC reaches t_ns (at once if it has). Signals do not cut
 * the sleep short. Returns 0, or a negative errno from clock_nanosleep(). */
static inline int rtvio_sleep_until_ns(uint64_t t_ns)
{
	struct timespec ts = rtvio_ns_to_timespec(t_ns);
	int ret;

	do
		ret = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	while (ret == EINTR);
	return -ret;
}

#endif
