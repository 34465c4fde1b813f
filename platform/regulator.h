/* MemGuard-style memory-bandwidth regulator (Yun et al., RTAS 2013), driven by an
 * injected clock.
 *
 * The broker's copy engine asks it, before each chunk, how many bytes it may copy now.
 * Each period of period_ns grants at most `budget` bytes; the budget is replenished at
 * period boundaries (start + k * period_ns, never drifting with the caller's timing);
 * unused budget is not carried over. A period in which the caller asks while budget
 * remains always grants something, so no period is skipped.
 *
 * No allocation, no clock reads, no libc, O(1) per call: safe on the real-time path,
 * and self-contained enough to be compiled into a freestanding cell.
 */
#ifndef RTVIO_PLATFORM_REGULATOR_H
#define RTVIO_PLATFORM_REGULATOR_H

#include <stdbool.h>
#include <stdint.h>

struct regulator {
	uint64_t budget;	/* bytes per period; 0 = unregulated */
	uint64_t period_ns;
	uint64_t period_start;	/* start of the current period */
	uint64_t used;		/* bytes granted in the current period */
	bool throttled;		/* a request was refused in the current period */
	uint64_t throttle_since;	/* when that first refusal happened */

	/* Statistics, for `rtvio stat`. */
	uint64_t granted_bytes;
	uint64_t throttled_periods;	/* periods in which some request was refused */
	uint64_t throttled_ns;	/* time from each first refusal to its period's end */
};

/* -EINVAL if budget is nonzero and period_ns is 0. The first period starts at now_ns. */
int reg_init(struct regulator *r, uint64_t budget, uint64_t period_ns, uint64_t now_ns);

/* Grants up to `want` bytes now and charges them to the current period: returns the
 * number granted (0 when the budget is spent; then wait for reg_next_ns()). A partial
 * grant is the rest of this period's budget. An unregulated regulator grants `want`.
 * A clock that goes backwards is treated as no time passing. */
uint64_t reg_grant(struct regulator *r, uint64_t want, uint64_t now_ns);

/* Budget left in the period containing now_ns, without charging anything. */
uint64_t reg_remaining(struct regulator *r, uint64_t now_ns);

/* Start of the next period: when a refused caller should try again. */
uint64_t reg_next_ns(const struct regulator *r);

/* Settles the throttled time of a throttled period that has ended by now_ns, so that
 * statistics read while the copy engine is idle are up to date. */
void reg_advance(struct regulator *r, uint64_t now_ns);

#endif
