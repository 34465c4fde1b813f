/* The data plane's packet state machine (dp_switch.c and the rest of broker/dp_*.c)
 * driven by three cells through real rings and a fake clock: each cell sends
 * packets with fuzzed headers (own or spoofed src_cid, any destination, port, type,
 * op, length, flags and credit fields, split or not), posts and takes RX buffers,
 * detaches and comes back, or scribbles over its own rings; time moves by fuzzed
 * steps, within or between data-plane passes. Oracles: the sanitizers; every RX piece
 * a well-behaved cell gets is well formed and addressed to it; the broker never calls
 * a well-behaved cell broken. */
#include "fuzz_dp.h"
#include "fuzz_input.h"

static const char *const ini[2] = {
	"[broker]\npolicy = fp\nchunk = 1KiB\n"
	"[cell a]\ncid = 3\n[cell b]\ncid = 4\n[cell c]\ncid = 5\n"
	"[flow s]\nfrom = a\nto = b:1000\ntype = stream\nsize = 64KiB\nperiod = 1ms\npriority = 2\n"
	"[flow q]\nfrom = a\nto = c:2000\ntype = seqpacket\nsize = 4KiB\nperiod = 1ms\npriority = 1\n",
	"[broker]\npolicy = edf\nchunk = 512\ndefault = best-effort\nregulation_budget = 8KiB\n"
	"regulation_period = 1ms\n"
	"[cell a]\ncid = 3\n[cell b]\ncid = 4\n[cell c]\ncid = 5\n"
	"[flow s]\nfrom = a:7\nto = b:1000\ntype = stream\nsize = 2KiB\nperiod = 1ms\n"
	"[flow q]\nfrom = b\nto = c:2000\ntype = seqpacket\nsize = 8KiB\nperiod = 2ms\n",
};

struct run {
	struct tenv e;
	bool scribbled[3];
	bool detached[3];
	uint8_t payload[T_TXBUF];
};

static uint64_t pick_cid(struct fin *in, unsigned int self)
{
	uint8_t k = fin_u8(in);

	switch (k % 8) {
	case 0: case 1: case 2: case 3:
		return 3 + (k >> 3) % 3;
	case 4:
		return 3 + self;
	case 5:
		return 2;
	default:
		return fin_u64(in);
	}
}

static uint32_t pick_port(struct fin *in)
{
	static const uint32_t ports[] = { 1000, 2000, 7, 5000, 49152, 0xffffffff };
	uint8_t k = fin_u8(in);

	return k < 192 ? ports[k % 6] : fin_u32(in);
}

/* Whether the cell's next TX buffer is its own again (its chain came back). */
static bool tx_buf_free(const struct tcell *c)
{
	return !(c->tx_busy & 1u << c->tx_next % T_TXBUFS);
}

static void op_send(struct run *r, unsigned int self, struct fin *in)
{
	struct tcell *c = &r->e.cell[self];
	uint8_t k = fin_u8(in);
	struct vsock_hdr h = {
		.src_cid = k & 1 ? pick_cid(in, self) : 3 + self,
		.dst_cid = pick_cid(in, self),
		.src_port = pick_port(in),
		.dst_port = pick_port(in),
		.type = k & 2 ? fin_u16(in) : 1 + (k >> 2 & 1),
		.op = fin_u8(in) % 9,
		.flags = k & 8 ? fin_u32(in) : 1,
		.buf_alloc = k & 16 ? fin_u32(in) : 65536,
		.fwd_cnt = k & 32 ? fin_u32(in) : 0,
	};

	if (h.op == VSOCK_OP_RW)
		h.len = fin_u16(in) % 9000;
	if (k & 64)
		h.len = fin_u32(in) % (T_TXBUF - VSOCK_HDR_SIZE);
	/* A cell rewrites a TX buffer only once it got its chain back. */
	if (c->drv[1].num_free < 2 || !tx_buf_free(c))
		return;
	/* The driver stops at a used entry it never made available: only after this
	 * cell scribbled on its own rings. */
	if (c->drv[1].broken) {
		assert_true(r->scribbled[self]);
		return;
	}
	/* A header the broker must refuse outright breaks the TX ring's rules. */
	if (h.op < VSOCK_OP_REQUEST || h.op > VSOCK_OP_CREDIT_REQUEST ||
	    (h.type != VSOCK_TYPE_STREAM && h.type != VSOCK_TYPE_SEQPACKET) ||
	    (h.op != VSOCK_OP_RW && h.len))
		r->scribbled[self] = true;
	memset(r->payload, k, h.len);
	t_send_ex(c, &h, h.len ? r->payload : NULL, k & 128);
}

static void op_scribble(struct run *r, unsigned int i, struct fin *in)
{
	struct tcell *c = &r->e.cell[i];
	unsigned int n = 1 + fin_u8(in) % 8;

	/* Only what the driver writes (descriptor table and avail ring of either
	 * queue): the used rings are the broker's. */
	for (unsigned int k = 0; k < n; k++) {
		struct vq_ring *q = &c->ring[fin_u8(in) & 1];
		uint16_t at = fin_u16(in);
		uint8_t *base = at & 1 ? (uint8_t *)q->avail : (uint8_t *)q->desc;
		size_t span = at & 1 ? 4 + 2 * T_QSIZE : 16 * T_QSIZE;

		base[(at >> 1) % span] = fin_u8(in);
	}
	r->scribbled[i] = true;
}

static void op_reattach(struct run *r, unsigned int i)
{
	struct tcell *c = &r->e.cell[i];

	if (!r->detached[i]) {
		dp_detach(r->e.dp, i);
		r->detached[i] = true;
		return;
	}
	fz_cell_init(c, i, c->rx_size);
	assert_int_equal(dp_attach(r->e.dp, i, &c->dev[0], &c->dev[1]), 0);
	r->detached[i] = false;
	r->scribbled[i] = false;
}

/* The daemon's reaction to a broken cell, and the check that only cells that broke
 * the rules are called broken. */
static void check_broken(struct run *r)
{
	for (unsigned int i = 0; i < 3; i++) {
		struct tcell *c = &r->e.cell[i];

		if (!c->broken_calls)
			continue;
		assert_true(r->scribbled[i]);
		c->broken_calls = 0;
		if (!r->detached[i]) {
			dp_detach(r->e.dp, i);
			r->detached[i] = true;
		}
	}
}

static void step(struct run *r, struct fin *in)
{
	uint8_t k = fin_u8(in);
	unsigned int i = (k >> 4) % 3;
	struct tcell *c = &r->e.cell[i];

	switch (k & 15) {
	case 0: case 1: case 2: case 3:
		op_send(r, i, in);
		break;
	case 4:
		/* Up to 8 buffers of up to 2 descriptors each (split layout); not by a
		 * cell whose own driver broke on the rings it scribbled over. */
		if (c->drv[0].num_free >= 16 && !c->drv[0].broken)
			t_post_rx(c, 1 + fin_u8(in) % 8, fin_u8(in) & 1);
		break;
	case 5:
		fz_drain_rx(c, 3 + i, !r->scribbled[i] && !r->detached[i]);
		fz_drain_tx(c, !r->scribbled[i] && !r->detached[i]);
		break;
	case 6:
		r->e.now += fin_u32(in);
		break;
	case 7:
		r->e.tick = fin_u16(in);
		break;
	case 8:
		op_reattach(r, i);
		break;
	case 9:
		op_scribble(r, i, in);
		break;
	default:
		dp_run(r->e.dp, r->e.now);
		break;
	}
	check_broken(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run r;
	struct fin in = { data, size };
	uint8_t setup = fin_u8(&in);
	static const uint32_t rx_sizes[] = { 4096, 1024, 256, 100 };

	memset(r.scribbled, 0, sizeof(r.scribbled));
	memset(r.detached, 0, sizeof(r.detached));
	fz_env_init(&r.e, ini[setup & 1], rx_sizes[setup >> 1 & 3]);
	for (unsigned int i = 0; i < 3; i++)
		t_post_rx(&r.e.cell[i], 16, setup & 8);
	for (unsigned int n = 0; fin_left(&in) && n < 512; n++)
		step(&r, &in);
	/* Whatever is left settles without anybody breaking a rule. */
	for (unsigned int n = 0; n < 4; n++) {
		r.e.now += 10000000;
		t_run(&r.e);
		check_broken(&r);
	}
	fz_env_fini(&r.e);
	return 0;
}
