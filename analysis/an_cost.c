/* The cost model: what a message costs the broker, from its sizes and the platform's
 * measured costs (docs/analysis.md, "Costs"). */
#include "analysis.h"
#include "an_arith.h"
#include "an_internal.h"

#include <errno.h>

uint64_t an_chunk_cost(const struct an_platform *p, uint64_t bytes)
{
	/* 128-bit product: bytes * 1e9 overflows 64 bits above ~18 GB. */
	unsigned __int128 num = (unsigned __int128)bytes * NS_PER_S;
	unsigned __int128 t = num / p->copy_bandwidth + (num % p->copy_bandwidth != 0);

	if (t > UINT64_MAX)
		return UINT64_MAX;
	return sadd(p->chunk_overhead, (uint64_t)t);
}

/* What one message is made of: its copy cost, its last step, how many steps and TX
 * packets. */
struct shape {
	uint64_t copy, last, steps, packets, pieces;
};

/* A run of x bytes copied in steps of at most c bytes: e(c) per full step and
 * e(rest) for a short last one. */
static void run_shape(const struct an_platform *pl, uint64_t x, uint64_t c, struct shape *s)
{
	uint64_t full = x / c, rem = x % c;

	s->last = an_chunk_cost(pl, rem ? rem : c);
	s->copy = sadd(s->copy, sadd(smul(full, an_chunk_cost(pl, c)),
				     rem ? an_chunk_cost(pl, rem) : 0));
	s->steps = sadd(s->steps, full + (rem != 0));
}

/* One TX packet of p payload bytes. The broker delivers it as pieces of at most r
 * bytes, one per destination RX buffer, each a packet of its own to the receiver (its
 * own header and used-ring entry: packet_overhead, paid in the piece's last step),
 * and copies each piece in steps of at most `chunk` bytes. Added to *s, times `times`. */
static void packet_shape(const struct an_platform *pl, uint64_t p, uint64_t r, uint64_t chunk,
			 uint64_t times, struct shape *s)
{
	uint64_t full = p / r, rem = p % r;
	struct shape one = { 0 }, piece = { 0 };

	if (full) {
		run_shape(pl, r, chunk, &piece);
		one.copy = smul(full, sadd(piece.copy, pl->packet_overhead));
		one.steps = smul(full, piece.steps);
		one.last = piece.last;
	}
	if (rem) {
		piece = (struct shape){ 0 };
		run_shape(pl, rem, chunk, &piece);
		one.copy = sadd(one.copy, sadd(piece.copy, pl->packet_overhead));
		one.steps = sadd(one.steps, piece.steps);
		one.last = piece.last;
	}
	s->copy = sadd(s->copy, smul(times, one.copy));
	s->steps = sadd(s->steps, smul(times, one.steps));
	s->pieces = sadd(s->pieces, smul(times, full + (rem != 0)));
	s->packets = sadd(s->packets, times);
	s->last = sadd(one.last, pl->packet_overhead);
}

/* The broker leaves its loop after every run_steps steps for at most batch_gap: a
 * window of n steps holds at most floor(n / run_steps) + 1 gaps, covered by charging
 * every step this share and one whole gap as blocking. */
uint64_t an_gap_share(const struct an_broker *b)
{
	return b->run_steps ? ceil_div(b->plat.batch_gap, b->run_steps) : 0;
}

/* Ingest work charged per TX packet: its own ingest, and that of the packet another
 * cell may put into the TX slot its completion frees (docs/analysis.md). None with
 * the cells' budgets: every chain any pass takes, this packet and the one after it
 * included, is in the ingest budget stream, which every window is charged. */
static uint64_t ingest_charge(const struct an_broker *b)
{
	return b->budget_period ? 0 : smul(2, b->plat.ingest_packet);
}

/* Extra cost of a message made of `steps` steps and `packets` TX packets: its share of
 * the batch gaps and its ingest work, all before its last step. */
uint64_t an_extras(const struct an_broker *b, uint64_t steps, uint64_t packets)
{
	return sadd(smul(steps, an_gap_share(b)), smul(packets, ingest_charge(b)));
}

uint64_t an_host_gap(const struct an_broker *b, uint64_t calls, uint64_t bytes,
		     uint64_t rx_payload)
{
	const struct an_platform *pl = &b->plat;
	uint64_t ring = sadd(an_chunk_cost(pl, rx_payload), pl->ingest_packet);

	if (!calls)
		return 0;
	return sadd(sadd(smul(calls, pl->batch_gap), an_chunk_cost(pl, bytes)),
		    smul(b->run_steps, ring));
}

/* A credit update (and any other header-only control packet): one step with its
 * packet overhead. */
uint64_t an_ctl_step(const struct an_broker *b)
{
	return sadd(b->plat.chunk_overhead, b->plat.packet_overhead);
}

int an_flow_costs(const struct an_flow *f, const struct an_broker *b, struct an_costs *c)
{
	const struct an_platform *pl = &b->plat;
	struct shape s = { 0 };
	uint64_t step;

	if (f->explicit_costs) {
		if (!f->last_step || f->last_step > f->max_step || f->max_step > f->cost)
			return -EINVAL;
		s.copy = f->cost;
		s.last = f->last_step;
		s.steps = ceil_div(f->cost - f->last_step, f->max_step) + 1;
		s.packets = 1;
		c->Q = f->max_step;
		c->bytes = 0;
		c->Qbytes = 0;
	} else {
		if (!f->size || !f->rx_payload || !f->packet_size || !b->chunk ||
		    !pl->copy_bandwidth || (f->rx_max && f->rx_max < f->rx_payload))
			return -EINVAL;
		if (f->size / f->packet_size)
			packet_shape(pl, f->packet_size, f->rx_payload, b->chunk,
				     f->size / f->packet_size, &s);
		if (f->size % f->packet_size)
			packet_shape(pl, f->size % f->packet_size, f->rx_payload, b->chunk, 1, &s);
		/* The longest single step: a one-step piece with its packet overhead (every
		 * longer piece ends in a step no longer than that). A real-time message is
		 * at most `size` in packets of at most packet_size; a best-effort one is
		 * held to neither, only to chunk and the RX buffers its receiver posts. */
		step = b->chunk;
		if (f->rx_max)
			step = min_u64(step, f->rx_max);
		if (!f->best_effort)
			step = min_u64(step, min_u64(f->packet_size, f->size));
		c->Q = sadd(an_chunk_cost(pl, step), pl->packet_overhead);
		/* The regulator charges every payload byte and each piece's header. */
		c->bytes = sadd(f->size, smul(s.pieces, AN_HDR_BYTES));
		c->Qbytes = sadd(step, AN_HDR_BYTES);
	}
	c->q = s.last;
	c->C = sadd(s.copy, an_extras(b, s.steps, s.packets));
	return 0;
}

uint64_t an_ingest_work(const struct an_broker *b)
{
	return b->budget_period ? smul(b->budget_ingest, b->plat.ingest_packet) : 0;
}

uint64_t an_budget_steps(const struct an_broker *b, uint64_t ctrl, uint64_t pieces)
{
	const struct an_platform *pl = &b->plat;
	uint64_t gs = an_gap_share(b), ctl, piece;

	if (!b->budget_period)
		return 0;
	/* A control packet: one header-only step. A short piece: at most piece_steps
	 * steps, each a chunk overhead and a gap share, and its packet overhead; its
	 * bytes belong to a message whose copy is charged already. Each charges the
	 * regulator a header. */
	ctl = sadd(sadd(an_ctl_step(b), gs), an_reg_surcharge(b, AN_HDR_BYTES));
	piece = sadd(sadd(pl->packet_overhead, smul(b->piece_steps, sadd(pl->chunk_overhead, gs))),
		     an_reg_surcharge(b, AN_HDR_BYTES));
	return sadd(smul(ctrl, ctl), smul(pieces, piece));
}

uint64_t an_ride_work(const struct an_broker *b, const struct an_flow *f)
{
	return an_budget_steps(b, f->budget_ctrl, f->budget_pieces);
}
