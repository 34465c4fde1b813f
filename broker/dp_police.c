/* The policer: when a packet conforms to its flow's declaration (GCRA). */
#include <stdbool.h>
#include <stdint.h>

#include "dp_internal.h"

/* The policer's byte bucket: `size` bytes refilled at size/period, the flow's
 * jitter as tolerance. tat = when the bucket is full again. byte_cost is what len
 * bytes cost in ns of refill; byte_conform the earliest time they are paid for. A
 * packet larger than the bucket is held until its whole length has been refilled
 * (less the tolerance a conforming packet gets), never sent on credit: over any
 * window the flow's bytes stay within size per period and the tolerance, which is
 * what the analysis charges it. */
static uint64_t byte_cost(const struct rtvio_flow_cfg *f, uint32_t len)
{
	unsigned __int128 c128 = (unsigned __int128)len * f->period_ns / f->size;

	return c128 > UINT64_MAX / 4 ? UINT64_MAX / 4 : (uint64_t)c128;
}

static uint64_t byte_conform(const struct rtvio_flow_cfg *f, uint64_t tat, uint64_t cost)
{
	uint64_t slack = f->period_ns + f->jitter_ns;

	return tat + cost > slack ? tat + cost - slack : 0;
}

/* Seqpacket: adds p to its message's length and counts, once, a message that
 * holds more than the flow's size. */
static void msg_oversize(struct dp *dp, struct dp_queue *w, const struct rtvio_flow_cfg *f,
			 const struct dp_pkt *p)
{
	if (!w->in_msg) {
		w->msg_len = 0;
		w->msg_over = false;
	}
	w->msg_len += p->h.len;
	if (w->msg_len > f->size && !w->msg_over) {
		w->msg_over = true;
		dp->flows[w->flow].oversize++;
	}
}

/* The policer: the time at which p conforms to its flow's declaration, charged
 * against the queue's state at ingest so that release times are monotonic within
 * the queue. Every rule is a GCRA (virtual scheduling) with the flow's release
 * jitter as tolerance, so a sender within its declared (size, period, jitter) is
 * never held:
 *   seqpacket  message starts at least `period` apart (later packets of a message
 *              go no earlier than the one before), AND the byte bucket: a packet
 *              goes when both conform, so neither more than one message nor more
 *              than `size` bytes per period reach dispatch (plus the tolerance);
 *              A message that passes `size` bytes is counted in the flow's
 *              `oversize`; its packets are charged their real length and each
 *              waits until its bytes are paid for, so neither it nor the flow's
 *              next messages go early;
 *   stream     the byte bucket.
 * `seen` is when p can have been posted at the earliest: the last time this
 * sender's TX ring was seen empty. Judging by that rather than by the ingest time
 * means that the broker's own delays (a late pass, a host stall) never make a
 * sender look burstier than it was; the release times themselves still conform, so
 * the interference the flow can cause stays what it declared. */
uint64_t dp_police(struct dp *dp, struct dp_queue *w, const struct dp_pkt *p,
		       uint64_t seen)
{
	const struct rtvio_flow_cfg *f;
	uint64_t r = seen, t, cost, base, slack, paid;

	if (dp->flows[w->flow].be || p->h.op != VSOCK_OP_RW)
		return p->arrival;
	f = &dp->cfg->flows[w->flow];
	cost = byte_cost(f, p->h.len);
	/* From when the bucket is full (tat in the past) or its debt is paid. */
	base = w->tat > seen ? w->tat : seen;
	t = byte_conform(f, base, cost);
	if (f->type == RTVIO_SEQPACKET)
		msg_oversize(dp, w, f, p);
	if (t > r)
		r = t;
	if (f->type == RTVIO_SEQPACKET) {
		if (!w->in_msg) {
			t = w->mtat > f->jitter_ns ? w->mtat - f->jitter_ns : 0;
			if (t > r)
				r = t;
			w->mtat = (w->mtat > r ? w->mtat : r) + f->period_ns;
		} else if (w->last_rel > r) {
			r = w->last_rel;
		}
		w->last_rel = r;
		w->in_msg = !(p->h.flags & VSOCK_SEQ_EOM);
	}
	/* The bucket after the packet: its cost on top of what was owed, or, when the
	 * other rules held it later, empty by its cost from its release; an over-size
	 * packet paid its cost beyond the bucket by waiting, and leaves it empty. */
	slack = f->period_ns + f->jitter_ns;
	paid = r + (cost < slack ? cost : slack);
	w->tat = base + cost > paid ? base + cost : paid;
	return r;
}
