/* The copy engine's step: at most one chunk of a queue's head packet into one RX
 * buffer of its destination, regulated, and the packet's completion. */
#include <errno.h>
#include <stdint.h>

#include "dp_internal.h"
#include "model.h"

/* Copies n bytes from the segments src (starting src_off bytes in) to the segments
 * dst (starting dst_off bytes in) with fn, once per contiguous piece. The caller has
 * checked that both have room. */
static void seg_copy(dp_copy_fn fn, const struct vq_seg *dst, unsigned int nd,
		     uint64_t dst_off, const struct vq_seg *src, unsigned int ns,
		     uint64_t src_off, uint64_t n)
{
	unsigned int i = 0, j = 0;

	while (i < nd && dst_off >= dst[i].len)
		dst_off -= dst[i++].len;
	while (j < ns && src_off >= src[j].len)
		src_off -= src[j++].len;
	while (n && i < nd && j < ns) {
		uint64_t a = dst[i].len - dst_off, b = src[j].len - src_off;
		uint64_t k = a < b ? a : b;

		if (k > n)
			k = n;
		fn((uint8_t *)dst[i].host + dst_off, (const uint8_t *)src[j].host + src_off, k);
		n -= k;
		dst_off += k;
		src_off += k;
		if (dst_off == dst[i].len) {
			i++;
			dst_off = 0;
		}
		if (src_off == src[j].len) {
			j++;
			src_off = 0;
		}
	}
}

/* Gathers n bytes at offset 0 of the segments into private memory: each shared byte
 * is read exactly once. */
void dp_seg_gather(uint8_t *out, const struct vq_seg *src, unsigned int ns, uint64_t n)
{
	struct vq_seg d = { .host = out, .len = (uint32_t)n, .writable = true };

	seg_copy(dp_copy_normal, &d, 1, 0, src, ns, 0, n);
}

static void seg_scatter(const struct vq_seg *dst, unsigned int nd, const uint8_t *in,
			uint64_t n)
{
	struct vq_seg s = { .host = (void *)(uintptr_t)in, .len = (uint32_t)n };

	seg_copy(dp_copy_normal, dst, nd, 0, &s, 1, 0, n);
}

/* Gets an RX buffer of the destination for q's next piece: true when q got one,
 * false when none is posted (q now waits) or the destination broke. */
static bool rx_get(struct dp *dp, uint32_t q)
{
	struct dp_queue *w = &dp->queues[q];
	struct dp_cell *c = &dp->cells[w->dst];

	if (c->n_spare) {
		w->rx = c->spare[--c->n_spare];
	} else if (dp_mem_waits(dp, w->dst)) {
		/* Its next RX buffer names memory not in yet: wait with the others. */
		dp_queue_block(dp, q);
		return false;
	} else {
		struct vq_chain ch;
		int r = vq_device_pop(c->rx, &ch, w->rx.seg, DP_MAX_SEG);

		if (r == VQ_NOT_READY) {
			dp_mem_wait(dp, w->dst, c->rx);
			dp_queue_block(dp, q);
			return false;
		}
		if (r < 0) {
			dp_cell_break(dp, w->dst, r);
			return false;
		}
		if (!r) {
			dp_queue_block(dp, q);
			return false;
		}
		w->rx.head = ch.head;
		w->rx.n_seg = ch.n_seg;
		w->rx.n_out = ch.n_out;
		w->rx.in_len = ch.in_len;
	}
	/* An RX buffer is all device-writable and holds a header and at least one
	 * payload byte; anything else is a hostile ring. */
	if (w->rx.n_out || w->rx.in_len <= VSOCK_HDR_SIZE) {
		dp_cell_break(dp, w->dst, -EPROTO);
		return false;
	}
	return true;
}

static void record_residence(struct dp_flow *f, const struct dp_pkt *p, uint64_t now,
			     uint64_t deadline)
{
	uint64_t r = now - p->counted;
	unsigned int b = 0;

	if (r)
		b = 63u - (unsigned int)__builtin_clzll(r);
	if (b >= DP_HIST_BUCKETS)
		b = DP_HIST_BUCKETS - 1;
	f->st.hist[b]++;
	if (r > f->st.max_residence_ns) {
		f->st.max_residence_ns = r;
		f->st.max_residence_at = p->counted;
	}
	if (p->counted - p->arrival > f->st.max_budget_wait_ns)
		f->st.max_budget_wait_ns = p->counted - p->arrival;
	if (deadline && r > deadline)
		f->st.deadline_misses++;
}

/* The packet at q's head is fully delivered. */
void dp_pkt_done(struct dp *dp, uint32_t q, uint64_t now)
{
	struct dp_queue *w = &dp->queues[q];
	int32_t pi = w->head;
	struct dp_pkt *p = &dp->pkts[pi];
	struct dp_flow *f = &dp->flows[w->flow];

	dp_queue_unplace(dp, q);
	w->head = p->next;
	if (w->head < 0)
		w->tail = -1;
	f->queued--;
	f->st.packets++;
	f->st.bytes += p->h.len;
	record_residence(f, p, now,
			 f->be ? 0 : dp->cfg->flows[w->flow].deadline_ns);
	dp_queue_place(dp, q, now);
	dp_pkt_complete_tx(dp, p);
	dp_pkt_free(dp, pi);
}

/* Opens q's next piece: an RX buffer of the destination, filled with as much of the
 * head packet p as it holds. false when q cannot run now. */
static bool piece_open(struct dp *dp, uint32_t q, const struct dp_pkt *p)
{
	struct dp_queue *w = &dp->queues[q];

	if (!rx_get(dp, q) || !dp_budget_piece(dp, q, dp->now))
		return false;
	w->rx_open = true;
	w->piece_done = 0;
	w->piece_len = p->h.len - p->sent;
	if (w->piece_len > w->rx.in_len - VSOCK_HDR_SIZE)
		w->piece_len = w->rx.in_len - VSOCK_HDR_SIZE;
	return true;
}

/* The real-time reserve serves a one-core broker: with several cores each core's
 * share is spent in its ready heap's order (docs/broker.md "Several cores"), as the
 * analysis of several cores assumes. */
void dp_reg_reserve_update(struct dp *dp)
{
	dp->core[0].reg_reserve = dp->ncores == 1 ? model_rt_reserve(dp->cfg) : 0;
}

/* A best-effort step: it may spend only what the real-time reserve leaves of this
 * period's budget. Refused, it forfeits nothing (the rest belongs to the real-time
 * flows) and waits for the next period; a real-time queue ready meanwhile still
 * runs, as it is ahead of every best-effort one in the ready heap (fp, edf). */
static bool regulate_be(struct dp_core *k, uint64_t hdr, uint64_t *n, uint64_t now)
{
	uint64_t rem = reg_remaining(&k->reg, now), g;

	rem = rem > k->reg_reserve ? rem - k->reg_reserve : 0;
	if (rem < hdr + (*n ? 1 : 0)) {
		k->reg_be_waits++;
		return false;
	}
	g = reg_grant(&k->reg, hdr + *n < rem ? hdr + *n : rem, now);
	*n = g - hdr;
	return true;
}

/* Charges a step of hdr + *n bytes to the regulator, trimming *n to the grant. false
 * when too little is left for a step that makes progress: the rest of this period
 * is then forfeited (never overspent) and the wait counted. A best-effort step is
 * held to what the real-time reserve leaves (regulate_be). */
static bool regulate(struct dp *dp, struct dp_core *k, bool be, uint64_t hdr, uint64_t *n,
		     uint64_t now)
{
	uint64_t want = hdr + *n, rem, g;

	if (!dp->cfg->broker.regulation_budget)
		return true;
	if (be && k->reg_reserve)
		return regulate_be(k, hdr, n, now);
	rem = reg_remaining(&k->reg, now);
	if (rem < hdr + (*n ? 1 : 0)) {
		if (rem)
			reg_grant(&k->reg, rem, now);
		reg_grant(&k->reg, want, now);
		return false;
	}
	g = reg_grant(&k->reg, want, now);
	*n = g - hdr;
	return true;
}

/* The piece's header: p's, with the piece's length and, for all but the last piece
 * of a seqpacket message, no message boundary. */
static void piece_header(const struct dp_queue *w, const struct dp_pkt *p)
{
	struct vsock_hdr ph = p->h;
	uint8_t raw[VSOCK_HDR_SIZE];

	ph.len = w->piece_len;
	if (p->sent + w->piece_len < p->h.len && ph.type == VSOCK_TYPE_SEQPACKET)
		ph.flags &= ~(uint32_t)(VSOCK_SEQ_EOM | VSOCK_SEQ_EOR);
	vsock_hdr_encode(&ph, raw);
	seg_scatter(w->rx.seg, w->rx.n_seg, raw, VSOCK_HDR_SIZE);
}

/* The piece is complete: its element goes into the destination's used ring, published
 * with the rest of its batch by dp_notify. false when the destination broke on it. */
static bool piece_close(struct dp *dp, struct dp_queue *w)
{
	struct dp_cell *dc = &dp->cells[w->dst];
	int err;

	w->rx_open = false;
	w->hdr_written = false;
	err = vq_device_add_used(dc->rx, w->rx.head, VSOCK_HDR_SIZE + w->piece_len);
	if (err) {
		dp_cell_break(dp, w->dst, err);
		return false;
	}
	dc->st.pkts_out++;
	dc->st.bytes_out += w->piece_len;
	dp_notify(dp, w->dst, DP_QUEUE_RX, dc->rx);
	return true;
}

/* The step's decisions: q's piece open (an RX buffer of the destination), the chunk
 * sized and granted by the regulator of the destination's core. PROGRESS: go on
 * with dp_step_copy. Touches no payload. */
enum dp_step dp_step_reserve(struct dp *dp, uint32_t q, uint64_t now, struct dp_piece *pc)
{
	struct dp_queue *w = &dp->queues[q];
	struct dp_pkt *p = &dp->pkts[w->head];

	if (!w->rx_open && !piece_open(dp, q, p))
		return DP_STEP_BLOCKED;
	pc->n = w->piece_len - w->piece_done;
	if (pc->n > dp->cfg->broker.chunk)
		pc->n = dp->cfg->broker.chunk;
	pc->hdr = w->piece_done == 0 && !w->hdr_written ? VSOCK_HDR_SIZE : 0;
	if (!regulate(dp, dp_core_of(dp, w->dst), dp->flows[w->flow].be, pc->hdr, &pc->n,
		      now))
		return DP_STEP_THROTTLED;
	return DP_STEP_PROGRESS;
}

/* The step's bytes: the piece's header and the chunk into the reserved RX buffer.
 * Reads only what the reserving core owns until dp_step_finish (the open piece, the
 * head packet's segments and progress); changes nothing the data plane reads. */
void dp_step_copy(struct dp *dp, uint32_t q, const struct dp_piece *pc)
{
	const struct dp_queue *w = &dp->queues[q];
	const struct dp_pkt *p = &dp->pkts[w->head];

	if (pc->hdr)
		piece_header(w, p);
	if (pc->n)
		seg_copy(dp->copy, w->rx.seg, w->rx.n_seg, VSOCK_HDR_SIZE + w->piece_done,
			 p->seg, p->n_seg, VSOCK_HDR_SIZE + (uint64_t)p->sent, pc->n);
}

/* The step's bookkeeping: progress, statistics, and the piece to the destination's
 * used ring when complete. DELIVERED: call dp_pkt_done. */
enum dp_step dp_step_finish(struct dp *dp, uint32_t q, const struct dp_piece *pc)
{
	struct dp_queue *w = &dp->queues[q];
	struct dp_pkt *p = &dp->pkts[w->head];

	if (pc->hdr)
		w->hdr_written = true;
	w->piece_done += (uint32_t)pc->n;
	p->sent += (uint32_t)pc->n;
	dp_core_of(dp, w->dst)->reg_bytes += pc->hdr + pc->n;
	dp->flows[w->flow].st.chunks++;
	if (w->piece_done < w->piece_len)
		return DP_STEP_PROGRESS;
	if (!piece_close(dp, w))
		return DP_STEP_BLOCKED;
	return p->sent == p->h.len ? DP_STEP_DELIVERED : DP_STEP_PROGRESS;
}

/* One non-preemptive step of queue q's head packet: at most one chunk into one RX
 * buffer. On DP_STEP_DELIVERED the caller calls dp_pkt_done with the time after the
 * step. */
enum dp_step dp_copy_step(struct dp *dp, uint32_t q, uint64_t now)
{
	struct dp_piece pc;
	enum dp_step r = dp_step_reserve(dp, q, now, &pc);

	if (r != DP_STEP_PROGRESS)
		return r;
	dp_step_copy(dp, q, &pc);
	return dp_step_finish(dp, q, &pc);
}
