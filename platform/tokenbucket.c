/* Token bucket: see tokenbucket.h. Freestanding (core/'s error numbers), so it can
 * live in a cell as well as in the broker. */
#include "rterrno.h"

#include "tokenbucket.h"

#define NS_PER_S 1000000000ULL

static int tb_check(uint64_t rate_Bps, uint64_t burst)
{
	if (rate_Bps > TB_MAX_RATE_BPS || burst > TB_MAX_BURST)
		return -RT_EINVAL;
	if (rate_Bps && !burst)
		return -RT_EINVAL;
	return 0;
}

int tb_init(struct tokenbucket *tb, uint64_t rate_Bps, uint64_t burst, uint64_t now_ns)
{
	int err = tb_check(rate_Bps, burst);

	if (err)
		return err;
	tb->rate_Bps = rate_Bps;
	tb->burst = burst;
	tb->tokens = burst;
	tb->rem = 0;
	tb->last_ns = now_ns;
	return 0;
}

int tb_set_rate(struct tokenbucket *tb, uint64_t rate_Bps, uint64_t now_ns)
{
	int err = tb_check(rate_Bps, tb->burst);

	if (err)
		return err;
	/* Settle what the old rate earned before the new one applies. */
	tb_refill(tb, now_ns);
	tb->rate_Bps = rate_Bps;
	tb->rem = 0;
	return 0;
}

void tb_refill(struct tokenbucket *tb, uint64_t now_ns)
{
	uint64_t elapsed, room, full_ns, num;

	if (now_ns <= tb->last_ns)
		return;
	elapsed = now_ns - tb->last_ns;
	tb->last_ns = now_ns;
	if (!tb->rate_Bps)
		return;
	room = tb->burst - tb->tokens;
	/* Past the time that fills the bucket the product below could overflow, and the
	 * answer is "full" anyway. */
	full_ns = room * NS_PER_S / tb->rate_Bps + 1;
	if (elapsed >= full_ns) {
		tb->tokens = tb->burst;
		tb->rem = 0;
		return;
	}
	num = elapsed * tb->rate_Bps + tb->rem;
	tb->tokens += num / NS_PER_S;
	tb->rem = num % NS_PER_S;
	if (tb->tokens >= tb->burst) {
		tb->tokens = tb->burst;
		tb->rem = 0;
	}
}

bool tb_take(struct tokenbucket *tb, uint64_t n, uint64_t now_ns)
{
	tb_refill(tb, now_ns);
	if (!tb->rate_Bps)
		return true;
	if (tb->tokens < n)
		return false;
	tb->tokens -= n;
	return true;
}

uint64_t tb_wait_ns(const struct tokenbucket *tb, uint64_t n)
{
	uint64_t need;

	if (!tb->rate_Bps || tb->tokens >= n)
		return 0;
	if (n > tb->burst)
		return UINT64_MAX;
	need = (n - tb->tokens) * NS_PER_S - tb->rem;
	/* Round up: after this many ns the refill has earned at least n - tokens. */
	return (need + tb->rate_Bps - 1) / tb->rate_Bps;
}
