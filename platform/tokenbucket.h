/* Token bucket with an injected clock.
 *
 * The interferers of `rtvio membench` and `rtvio hog` throttle themselves with it to a
 * target byte rate. Time is passed in by the caller (nanoseconds of any monotonic
 * clock), so the bucket never reads a clock itself and tests can drive it with a fake
 * one. No allocation, O(1), no libc: it may sit on a real-time path.
 */
#ifndef RTVIO_PLATFORM_TOKENBUCKET_H
#define RTVIO_PLATFORM_TOKENBUCKET_H

#include <stdbool.h>
#include <stdint.h>

/* Largest rate and burst accepted: they keep every intermediate product of the refill
 * below 2^64 (elapsed * rate <= burst * 1e9 + rate). */
#define TB_MAX_RATE_BPS  1000000000000ULL	/* 1 TB/s */
#define TB_MAX_BURST     (1ULL << 30)		/* 1 GiB */

struct tokenbucket {
	uint64_t rate_Bps;	/* 0 = unlimited: every take succeeds */
	uint64_t burst;		/* most tokens the bucket holds */
	uint64_t tokens;
	uint64_t rem;		/* refill remainder, in byte-nanoseconds, < 1e9 */
	uint64_t last_ns;	/* time of the last refill */
};

/* Starts full (a burst is allowed at once). -EINVAL when rate or burst is out of range
 * or burst is 0 with a nonzero rate. */
int tb_init(struct tokenbucket *tb, uint64_t rate_Bps, uint64_t burst, uint64_t now_ns);

/* Changes the rate from now on, keeping the tokens earned so far (capped by the burst). */
int tb_set_rate(struct tokenbucket *tb, uint64_t rate_Bps, uint64_t now_ns);

/* Adds the tokens earned since the last refill. A clock that goes backwards earns
 * nothing. */
void tb_refill(struct tokenbucket *tb, uint64_t now_ns);

/* Takes n tokens if all n are there (after a refill); otherwise takes none. */
bool tb_take(struct tokenbucket *tb, uint64_t n, uint64_t now_ns);

/* Nanoseconds from the last refill until n tokens will be there; 0 if they already are,
 * UINT64_MAX if they never will be (n > burst). */
uint64_t tb_wait_ns(const struct tokenbucket *tb, uint64_t n);

#endif
