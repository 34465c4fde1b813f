/* What the data-plane harnesses share: the broker's in-process test harness
 * (broker/tests/test_dp_harness.h, its cmocka assertions turned into aborts by
 * shim/cmocka.h) and the receiving cell's checks of what the broker delivers. */
#ifndef RTVIO_FUZZ_DP_H
#define RTVIO_FUZZ_DP_H

#include "test_dp_harness.h"

/* Takes every RX piece the broker completed on c and checks it as a cell would rely
 * on: a known buffer, the used length exactly header + payload, addressed to c. With
 * strict false (the cell scribbled over its own rings) the driver may find the ring
 * broken: that is the cell's own doing, and only ends the draining. */
static unsigned int fz_drain_rx(struct tcell *c, uint64_t cid, bool strict)
{
	unsigned int n = 0;
	void *tok;
	uint32_t len;
	int r;

	while ((r = vq_driver_get_used(&c->drv[0], &tok, &len)) == 1) {
		uintptr_t slot = (uintptr_t)tok - 1;
		struct vsock_hdr h;

		assert_true(slot < T_QSIZE);
		if (strict) {
			assert_true(len >= VSOCK_HDR_SIZE && len <= c->rx_size);
			vsock_hdr_decode(&h, c->region + c->rx_off + slot * c->rx_size);
			assert_int_equal(len, VSOCK_HDR_SIZE + (uint64_t)h.len);
			assert_int_equal(h.dst_cid, cid);
			assert_true(h.op >= VSOCK_OP_REQUEST && h.op <= VSOCK_OP_CREDIT_REQUEST);
		}
		n++;
	}
	assert_true(r == 0 || !strict);
	return n;
}

static unsigned int fz_drain_tx(struct tcell *c, bool strict)
{
	unsigned int n = 0;
	void *tok;
	uint32_t len;
	int r;

	while ((r = vq_driver_get_used(&c->drv[1], &tok, &len)) == 1) {
		t_tx_used(c, tok);
		n++;
	}
	assert_true(r == 0 || !strict);
	return n;
}

/* The harness's t_env_init without its per-run costs: the configuration is parsed
 * once per text and the cells' regions are allocated once and only cleared, so that a
 * run costs a dp_create and the input's own work. */
static uint8_t *fz_regions[T_MAXCELLS];

static void fz_cell_init(struct tcell *c, unsigned int i, uint32_t rx_size)
{
	struct vq_layout l;
	size_t off = 0;

	if (!fz_regions[i]) {
		fz_regions[i] = aligned_alloc(4096, T_REGION);
		assert_non_null(fz_regions[i]);
	}
	memset(c, 0, sizeof(*c));
	c->region = fz_regions[i];
	memset(c->region, 0, T_REGION);
	c->mem = (struct vq_mem_region){ .gpa = T_GPA, .size = T_REGION, .host = c->region };
	assert_int_equal(vq_layout(T_QSIZE, &l), 0);
	for (int q = 0; q < 2; q++) {
		assert_int_equal(vq_ring_at(&c->ring[q], c->region + off, T_QSIZE), 0);
		assert_int_equal(vq_driver_init(&c->drv[q], &c->ring[q], c->slot[q], t_feat()), 0);
		assert_int_equal(vq_device_init(&c->dev[q], &c->ring[q], &c->mem, 1,
						c->inflight[q], t_feat(), 0), 0);
		off += (l.total + 4095) & ~(size_t)4095;
	}
	c->rx_off = off;
	c->rx_size = rx_size;
	c->tx_off = (off + (size_t)T_QSIZE * rx_size + 4095) & ~(size_t)4095;
}

static void fz_env_init(struct tenv *e, const char *ini, uint32_t rx_size)
{
	static const char *parsed;
	static struct rtvio_config cfg;
	char err[256];

	if (parsed != ini) {
		if (parsed)
			rtvio_config_free(&cfg);
		if (rtvio_config_parse(ini, "fuzz.conf", &cfg, err, sizeof(err))) {
			fprintf(stderr, "config: %s\n", err);
			abort();
		}
		parsed = ini;
	}
	memset(e, 0, sizeof(*e));
	e->cfg = cfg;
	e->now = 1000000000ull;
	assert_int_equal(dp_create(&e->cfg, &t_hooks, e, &e->dp), 0);
	for (int i = 0; i < e->cfg.ncells; i++) {
		fz_cell_init(&e->cell[i], (unsigned int)i, rx_size);
		assert_int_equal(dp_attach(e->dp, (unsigned int)i, &e->cell[i].dev[0],
					   &e->cell[i].dev[1]), 0);
	}
}

static void fz_env_fini(struct tenv *e)
{
	dp_destroy(e->dp);
}

#endif
