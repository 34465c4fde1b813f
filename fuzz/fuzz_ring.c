/* Device-side ring ingest over a fuzzed memory image: cell a's whole TX and RX rings,
 * descriptors, indirect tables and packet buffers are the input's bytes, read by
 * core/virtq.c's device side and validated by the broker's ingest (dp_ingest.c) on
 * their way into the real data plane, toward a well-behaved cell b. After the first
 * passes the input keeps rewriting bytes of the image between passes (a cell racing
 * the broker). Oracles: the sanitizers; cell b only ever receives well-formed pieces
 * addressed to it; a cell the data plane calls broken is detached as the daemon does,
 * and attached again over a fresh device. */
#include "fuzz_dp.h"
#include "fuzz_input.h"

#define IMAGE (16u << 10) /* the part of the region the input writes */
/* Cell a's layout (offsets in its region): TX ring, RX ring, then buffers. */
#define TX_DESC 0u
#define TX_AVAIL 1024u
#define TX_USED 2048u
#define RX_DESC 4096u
#define RX_AVAIL 5120u
#define RX_USED 6144u

static const char *const ini =
	"[broker]\npolicy = fp\nchunk = 1KiB\ndefault = best-effort\n"
	"[cell a]\ncid = 3\n[cell b]\ncid = 4\n"
	"[flow s]\nfrom = a\nto = b:1000\ntype = stream\nsize = 64KiB\nperiod = 1ms\n"
	"[flow q]\nfrom = a\nto = b:2000\ntype = seqpacket\nsize = 64KiB\nperiod = 1ms\n";

struct hostile {
	uint64_t features;
	unsigned int num;
	uint16_t base[2];
};

/* Cell a's devices over its (hostile) region, as the daemon builds them at start. */
static void attach_a(struct tenv *e, const struct hostile *h)
{
	struct tcell *c = &e->cell[0];
	static const size_t off[2][3] = { { RX_DESC, RX_AVAIL, RX_USED },
					  { TX_DESC, TX_AVAIL, TX_USED } };

	for (int q = 0; q < 2; q++) {
		c->ring[q] = (struct vq_ring){ .num = h->num,
					       .desc = (void *)(c->region + off[q][0]),
					       .avail = (void *)(c->region + off[q][1]),
					       .used = (void *)(c->region + off[q][2]) };
		assert_int_equal(vq_device_init(&c->dev[q], &c->ring[q], &c->mem, 1,
						c->inflight[q], h->features, h->base[q]), 0);
	}
	assert_int_equal(dp_attach(e->dp, 0, &c->dev[0], &c->dev[1]), 0);
	c->broken_calls = 0;
}

/* One data-plane pass and the daemon's and cell b's reactions to it. */
static void pass(struct tenv *e, const struct hostile *h, unsigned int *reattach)
{
	t_run(e);
	e->now += 100000;
	fz_drain_rx(&e->cell[1], 4, true);
	fz_drain_tx(&e->cell[1], true);
	if (e->cell[1].drv[0].num_free >= 8)
		t_post_rx(&e->cell[1], 8, false);
	assert_int_equal(e->cell[1].broken_calls, 0);
	if (e->cell[0].broken_calls) {
		dp_detach(e->dp, 0);
		if ((*reattach)++ < 2)
			attach_a(e, h);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fin in = { data, size };
	struct hostile h;
	static struct tenv e;
	uint8_t flags = fin_u8(&in);
	unsigned int reattach = 0, n;

	h.features = 1ull << VIRTIO_F_VERSION_1 |
		     (flags & 1 ? 1ull << VIRTIO_F_EVENT_IDX : 0) |
		     (flags & 2 ? 1ull << VIRTIO_F_INDIRECT_DESC : 0);
	h.num = 1u << (fin_u8(&in) % 7); /* up to 64 = T_QSIZE */
	h.base[0] = fin_u16(&in);
	h.base[1] = fin_u16(&in);
	n = fin_u16(&in) % (IMAGE + 1);

	/* Cell a is set up like any cell, then its devices are replaced. */
	fz_env_init(&e, ini, 4096);
	dp_detach(e.dp, 0);
	memset(e.cell[0].region, 0, IMAGE);
	fin_bytes(&in, e.cell[0].region, n);
	attach_a(&e, &h);
	t_post_rx(&e.cell[1], 32, flags & 4);
	for (unsigned int k = 0; k < 3; k++)
		pass(&e, &h, &reattach);
	while (fin_left(&in)) {
		/* A burst of rewrites (offset, byte), then a pass. */
		unsigned int burst = fin_u8(&in) % 16;

		for (unsigned int k = 0; k < burst; k++) {
			uint16_t at = fin_u16(&in) % IMAGE;

			e.cell[0].region[at] = fin_u8(&in);
		}
		pass(&e, &h, &reattach);
	}
	fz_env_fini(&e);
	return 0;
}
