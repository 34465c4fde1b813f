/* Ingest: one pass over every attached cell's TX ring, each packet validated and
 * switched into its queue, with a per-cell limit per pass. */
#include <errno.h>
#include <stdint.h>

#include "dp_internal.h"

/* Calls fn for every set bit in [lo, hi) of map, in order; fn may change the map. */
static void bits_each(struct dp *dp, const uint64_t *map, uint32_t lo, uint32_t hi,
		      void (*fn)(struct dp *dp, uint32_t i))
{
	for (uint32_t w = lo / 64; lo < hi && w <= (hi - 1) / 64; w++) {
		uint64_t word = map[w];

		if (w == lo / 64)
			word &= ~0ull << (lo % 64);
		if (w == (hi - 1) / 64 && hi % 64)
			word &= ~(~0ull << (hi % 64));
		while (word) {
			fn(dp, w * 64 + (uint32_t)__builtin_ctzll(word));
			word &= word - 1;
		}
	}
}

static bool op_known(uint16_t op)
{
	return op >= VSOCK_OP_REQUEST && op <= VSOCK_OP_CREDIT_REQUEST;
}

/* Fills slot p from the chain ch just popped into p->seg: the header read once into
 * broker memory, then checked. false when the chain breaks the rules: a TX chain is
 * header + payload, all device-readable, and its length matches the header exactly;
 * anything else is a hostile ring. */
static bool pkt_from_chain(struct dp *dp, struct dp_pkt *p, const struct vq_chain *ch,
			   uint32_t s, uint64_t now)
{
	uint8_t raw[VSOCK_HDR_SIZE];

	if (ch->n_seg != ch->n_out || ch->out_len < VSOCK_HDR_SIZE)
		return false;
	dp_seg_gather(raw, p->seg, ch->n_out, VSOCK_HDR_SIZE);
	/* Field by field: seg[] holds the chain just popped. */
	p->n_seg = ch->n_out;
	p->head = ch->head;
	p->synthetic = false;
	p->policed = false;
	p->budget_held = false;
	p->src = p->dst = s;
	p->sent = 0;
	p->arrival = p->release = now;
	p->deadline_abs = UINT64_MAX;
	p->seq = dp->seq++;
	vsock_hdr_decode(&p->h, raw);
	return (uint64_t)p->h.len + VSOCK_HDR_SIZE == ch->out_len && op_known(p->h.op) &&
	       (p->h.type == VSOCK_TYPE_STREAM || p->h.type == VSOCK_TYPE_SEQPACKET) &&
	       (p->h.op == VSOCK_OP_RW || !p->h.len);
}

/* Pops and validates the available TX chains of one cell at the pass's time: at most
 * its ingest budget in one pass, and at most what is left of its ingest budget for
 * the period (dp_budget.c). A chain the broker drops at once (an RST for no
 * connection) frees its slot again, so without the period budget a cell that keeps
 * posting such chains would cost every pass its whole slot budget, charged to
 * nobody; with it, the cell costs at most its period budget per period, which the
 * analysis charges. */
static void ingest_cell(struct dp *dp, uint32_t s)
{
	struct dp_cell *c = &dp->cells[s];
	uint64_t now = dp->now;

	if (dp_mem_waits(dp, s))
		return;
	for (uint32_t taken = 0; c->attached; taken++) {
		int32_t pi;
		struct dp_pkt *p;
		struct vq_chain ch;
		int r;

		if (taken == c->tx_budget) {
			/* The rest in a later pass: dp_run says there may be more. */
			dp_core_of(dp, s)->ingest_more = true;
			return;
		}
		pi = dp_pkt_alloc_tx(dp, s);
		if (pi < 0)
			return; /* all slots busy: the rest waits on the ring */
		p = &dp->pkts[pi];
		/* Charged before the pop: a chain taken is work done, whatever becomes
		 * of it (a look at an empty ring is a pass's fixed work, not charged). */
		if (!dp_budget_ingest(dp, s, now)) {
			dp_pkt_free(dp, pi);
			return; /* the rest waits on the ring for the next period */
		}
		r = vq_device_pop(c->tx, &ch, p->seg, DP_MAX_SEG);
		if (r == VQ_NOT_READY) {
			/* The look cost a chain walk: charged like a pop. */
			dp_pkt_free(dp, pi);
			dp_mem_wait(dp, s, c->tx);
			return;
		}
		if (r <= 0) {
			dp_budget_unused(dp, s);
			dp_pkt_free(dp, pi);
			if (r < 0) {
				dp_cell_break(dp, s, r);
				return;
			}
			c->tx_empty_at = now;
			/* Sleeping on kicks: ask for one, once per drained ring (a full
			 * fence each time), and look again in case packets came meanwhile. */
			if (dp->cfg->broker.poll || c->tx_armed)
				return;
			c->tx_armed = true;
			if (!vq_device_enable_notify(c->tx))
				return;
			continue;
		}
		c->tx_armed = false;
		if (!pkt_from_chain(dp, p, &ch, s, now)) {
			dp_pkt_free(dp, pi);
			dp_cell_break(dp, s, -EPROTO);
			return;
		}
		c->st.pkts_in++;
		c->st.bytes_in += p->h.len;
		dp_switch_pkt(dp, pi, now);
	}
}

/* A ring error found in the middle of queue surgery (completion, purges) is only
 * recorded there; the cell is broken here, at the start of the next pass, when no
 * queue is half changed. */
static void break_deferred(struct dp *dp, uint32_t s)
{
	int err = dp->cells[s].break_err;

	if (err) {
		dp->cells[s].break_err = 0;
		dp_cell_break(dp, s, err);
	}
}

/* One ingest pass of core k: every attached TX ring of its cells, starting one cell
 * further each pass (round robin: no cell is always last), then its destinations
 * that got RX buffers, then the policer's releases of its queues. Bitmaps keep the
 * cost per pass to one index read per attached cell plus O(1) per packet. */
void dp_ingest_pass(struct dp *dp, struct dp_core *k, uint64_t now)
{
	uint32_t start = k->rr;

	dp->now = now;
	k->ingest_more = false;
	k->budget_wake = 0;
	bits_each(dp, k->attmap, 0, dp->ncells, break_deferred);
	k->rr = k->rr + 1 < dp->ncells ? k->rr + 1 : 0;
	bits_each(dp, k->attmap, start, dp->ncells, ingest_cell);
	bits_each(dp, k->attmap, 0, start, ingest_cell);
	bits_each(dp, k->waitmap, 0, dp->ncells, dp_wake_rx_waiters);
	dp_release_held(dp, k, now);
}
