/* In-process harness for the data plane tests: each test cell is core's driver side
 * over rings and buffers in one block of ordinary memory (its "region", at guest
 * address 0x100000000 like a process cell's), the broker side is the real data plane
 * over vq_device objects whose memory table is that block, and time is a fake clock
 * the test moves (optionally running a callback at each read, i.e. between chunks).
 * Each scenario thus has a sending side and a receiving side over real rings. */
#ifndef RTVIO_TEST_DP_HARNESS_H
#define RTVIO_TEST_DP_HARNESS_H

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "dataplane.h"
#include "dp_internal.h"
#include "virtq.h"
#include "vsock.h"

#define T_GPA 0x100000000ull
#define T_QSIZE 64u
#define T_REGION (2u << 20)
#define T_TXBUF 70000u /* room for a 64 KiB packet and its header */
#define T_TXBUFS 8u
#define T_MAXCELLS 4

struct tcell {
	uint8_t *region;
	struct vq_mem_region mem;
	struct vq_ring ring[2];
	struct vq_driver drv[2];
	struct vq_drv_slot slot[2][T_QSIZE];
	struct vq_device dev[2];
	uint64_t inflight[2][VQ_INFLIGHT_WORDS(T_QSIZE)];
	size_t rx_off;       /* RX buffers: T_QSIZE of rx_size bytes */
	uint32_t rx_size;
	size_t tx_off;       /* TX buffers: T_TXBUFS of T_TXBUF bytes, used round-robin */
	unsigned int tx_next;
	unsigned int tx_busy; /* bit i: TX buffer i is in a chain not yet got back */
	unsigned int notified[2];
	bool kicked;         /* the last t_send's publish asked for a kick */
	int broken_err;
	unsigned int broken_calls;
	unsigned int conn_limit_calls;
};

struct tenv {
	struct rtvio_config cfg;
	struct dp *dp;
	struct tcell cell[T_MAXCELLS];
	uint64_t now;
	uint64_t tick;                /* added to the clock at every read */
	void (*on_clock)(struct tenv *e);
	unsigned int clock_reads;
};

static uint64_t t_now(void *ctx)
{
	struct tenv *e = ctx;

	e->now += e->tick;
	e->clock_reads++;
	if (e->on_clock)
		e->on_clock(e);
	return e->now;
}

static void t_notify(void *ctx, unsigned int cell, unsigned int queue)
{
	struct tenv *e = ctx;

	e->cell[cell].notified[queue]++;
}

static void t_broken(void *ctx, unsigned int cell, int err)
{
	struct tenv *e = ctx;

	e->cell[cell].broken_err = err;
	e->cell[cell].broken_calls++;
}

static void t_conn_limit(void *ctx, unsigned int cell, uint32_t limit, uint64_t count)
{
	struct tenv *e = ctx;

	(void)limit;
	(void)count;
	e->cell[cell].conn_limit_calls++;
}

static const struct dp_hooks t_hooks = { .notify = t_notify, .broken = t_broken,
					 .conn_limit = t_conn_limit, .now = t_now };

static uint64_t t_feat(void)
{
	return 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX;
}

static void t_cell_init(struct tcell *c, uint32_t rx_size)
{
	struct vq_layout l;
	size_t off = 0;

	memset(c, 0, sizeof(*c));
	c->region = aligned_alloc(4096, T_REGION);
	assert_non_null(c->region);
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
	c->tx_off = off + (size_t)T_QSIZE * rx_size;
	c->tx_off = (c->tx_off + 4095) & ~(size_t)4095;
	assert_true(c->tx_off + T_TXBUFS * T_TXBUF <= T_REGION);
}

static uint64_t t_gpa(const struct tcell *c, const void *p)
{
	return T_GPA + (uint64_t)((const uint8_t *)p - c->region);
}

/* Posts n RX buffers; split = header and payload in two descriptors. */
static void t_post_rx(struct tcell *c, unsigned int n, bool split)
{
	for (unsigned int i = 0; i < n; i++) {
		struct vq_driver *d = &c->drv[0];
		unsigned int slot = (unsigned int)(d->avail_idx % T_QSIZE);
		uint8_t *b = c->region + c->rx_off + (size_t)slot * c->rx_size;
		struct vq_buf in[2];

		/* Some slot not in flight: the ring size bounds the posted buffers. */
		in[0] = (struct vq_buf){ .addr = t_gpa(c, b), .len = split ? VSOCK_HDR_SIZE : c->rx_size };
		in[1] = (struct vq_buf){ .addr = t_gpa(c, b + VSOCK_HDR_SIZE),
					 .len = c->rx_size - VSOCK_HDR_SIZE };
		assert_int_equal(vq_driver_add(d, NULL, 0, in, split ? 2 : 1,
					       (void *)(uintptr_t)(slot + 1)), 0);
	}
	vq_driver_publish(&c->drv[0]);
}

/* The TX buffer of a used chain's token is the cell's own again. A driver rewrites a
 * buffer only once it got the chain back; tx_busy lets a caller that sends more than
 * T_TXBUFS packets in flight (the fuzzer) wait for that. The broker gives chains back
 * in the order it finishes them, not the order they were sent: one toward a slow
 * destination stays out while later ones to others come back. */
static void t_tx_used(struct tcell *c, const void *tok)
{
	size_t off = (size_t)((const uint8_t *)tok - c->region) - c->tx_off;

	assert_true(off % T_TXBUF == 0 && off / T_TXBUF < T_TXBUFS);
	c->tx_busy &= ~(1u << off / T_TXBUF);
}

/* The TX buffer the next send uses: the first one from tx_next round-robin that is
 * not in a chain still out (its payload may not have been copied yet). With all of
 * them out, the next in turn: only tests that queue more than T_TXBUFS identical
 * packets do that (test_dp_budget.c, test_dp_sched.c), and the rewrite leaves
 * those unchanged. */
static unsigned int t_tx_slot(const struct tcell *c)
{
	for (unsigned int k = 0; k < T_TXBUFS; k++) {
		unsigned int i = (c->tx_next + k) % T_TXBUFS;

		if (!(c->tx_busy & 1u << i))
			return i;
	}
	return c->tx_next % T_TXBUFS;
}

/* Sends one packet (header + payload), in one descriptor or split in two. */
static void t_send_ex(struct tcell *c, const struct vsock_hdr *h, const void *payload,
		      bool split)
{
	unsigned int i = t_tx_slot(c);
	uint8_t *b = c->region + c->tx_off + (size_t)i * T_TXBUF;
	struct vq_buf out[2];

	assert_true(h->len + VSOCK_HDR_SIZE <= T_TXBUF);
	c->tx_next = i + 1;
	c->tx_busy |= 1u << i;
	assert_true(payload || !h->len);
	vsock_hdr_encode(h, b);
	/* Tested on payload, not on len: gcc -O3 cannot tell that len is 0 whenever
	 * payload is NULL and warns about a memcpy from NULL. */
	if (payload)
		memcpy(b + VSOCK_HDR_SIZE, payload, h->len);
	if (split || !h->len) {
		out[0] = (struct vq_buf){ .addr = t_gpa(c, b), .len = VSOCK_HDR_SIZE };
		out[1] = (struct vq_buf){ .addr = t_gpa(c, b + VSOCK_HDR_SIZE), .len = h->len };
	} else {
		out[0] = (struct vq_buf){ .addr = t_gpa(c, b), .len = VSOCK_HDR_SIZE + h->len };
	}
	assert_int_equal(vq_driver_add(&c->drv[1], out, (split && h->len) ? 2 : 1, NULL, 0, b), 0);
	c->kicked = vq_driver_publish(&c->drv[1]);
}

static void t_send(struct tcell *c, const struct vsock_hdr *h, const void *payload)
{
	t_send_ex(c, h, payload, false);
}

static struct vsock_hdr t_hdr(uint32_t scid, uint32_t sport, uint32_t dcid, uint32_t dport,
			      uint16_t type, uint16_t op, uint32_t len)
{
	return (struct vsock_hdr){ .src_cid = scid, .dst_cid = dcid, .src_port = sport,
				   .dst_port = dport, .type = type, .op = op, .len = len,
				   .buf_alloc = 262144 };
}

/* Takes one received RX piece: 1 and *h + payload (up to cap bytes), or 0. */
static int t_recv(struct tcell *c, struct vsock_hdr *h, uint8_t *payload, size_t cap)
{
	void *tok;
	uint32_t len;
	int r = vq_driver_get_used(&c->drv[0], &tok, &len);
	uint8_t *b;

	assert_true(r >= 0);
	if (!r)
		return 0;
	b = c->region + c->rx_off + ((uintptr_t)tok - 1) * c->rx_size;
	assert_true(len >= VSOCK_HDR_SIZE);
	vsock_hdr_decode(h, b);
	assert_int_equal(len, VSOCK_HDR_SIZE + h->len);
	assert_true(h->len <= cap);
	memcpy(payload, b + VSOCK_HDR_SIZE, h->len);
	return 1;
}

/* Completed TX chains since the last call. */
static unsigned int t_tx_done(struct tcell *c)
{
	unsigned int n = 0;
	void *tok;
	uint32_t len;

	while (vq_driver_get_used(&c->drv[1], &tok, &len) == 1) {
		t_tx_used(c, tok);
		n++;
	}
	return n;
}

static void t_env_init(struct tenv *e, const char *ini, uint32_t rx_size)
{
	char err[256];

	memset(e, 0, sizeof(*e));
	if (rtvio_config_parse(ini, "test.conf", &e->cfg, err, sizeof(err))) {
		print_error("config: %s\n", err);
		fail();
	}
	/* These tests exchange many control packets, and post RX buffers of any size,
	 * at one instant of a frozen clock: the cells get the largest allowance per
	 * budget period unless the test sets its own (test_dp_budget.c does). */
	if (!strstr(ini, "allowance"))
		for (int i = 0; i < e->cfg.ncells; i++)
			e->cfg.cells[i].allowance = 256;
	e->now = 1000000000ull;
	assert_int_equal(dp_create(&e->cfg, &t_hooks, e, &e->dp), 0);
	for (int i = 0; i < e->cfg.ncells; i++) {
		t_cell_init(&e->cell[i], rx_size);
		assert_int_equal(dp_attach(e->dp, (unsigned int)i, &e->cell[i].dev[0],
					   &e->cell[i].dev[1]), 0);
	}
}

static void t_env_fini(struct tenv *e)
{
	dp_destroy(e->dp);
	for (int i = 0; i < e->cfg.ncells; i++)
		free(e->cell[i].region);
	rtvio_config_free(&e->cfg);
}

/* Runs the data plane until it has nothing to do right now. */
static uint64_t t_run(struct tenv *e)
{
	uint64_t next;

	do
		next = dp_run(e->dp, e->now);
	while (next && next <= e->now);
	return next;
}

/* Connection-table entries in use (open, or ended with a peer not yet told), and
 * the free list's length: together always the whole table. */
__attribute__((unused)) static uint32_t t_conns_used(const struct dp *dp)
{
	uint32_t used = 0, free_n = 0;

	for (uint32_t k = 0; k < dp->nconns; k++)
		used += dp->conns[k].state != DP_CONN_FREE;
	for (int32_t c = dp->conn_free; c >= 0; c = dp->conns[c].hnext)
		free_n++;
	assert_int_equal(used + free_n, dp->nconns);
	return used;
}

#endif
