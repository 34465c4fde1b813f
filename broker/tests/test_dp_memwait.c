/* Data plane: a cell whose memory is not all faulted in yet (a VM's RAM, which the
 * memory thread fills in behind its running device: broker/populate.h). Cell v's
 * memory table carries a ready map in which only its rings are in. A chain of v that
 * names a page not in is left on its ring: nothing of it is touched, the ring is not
 * broken, the range is asked for, and v's rings are left alone until the loop says
 * the memory thread faulted something in (dp_mem_ready). The other cells' traffic
 * goes on meanwhile, and every byte arrives once the memory is in. */
#include "test_dp_harness.h"

#include "vq_ready.h"

#define A 3u /* CIDs of cells a, v, b */
#define V 4u
#define B 5u

static const char *const ini =
	"[broker]\npolicy = fp\nchunk = 1KiB\n"
	"[cell a]\ncid = 3\n"
	"[cell v]\ncid = 4\n"
	"[cell b]\ncid = 5\n"
	"[flow av]\nfrom = a\nto = v:1000\ntype = seqpacket\nsize = 4KiB\nperiod = 1ms\n"
	"[flow va]\nfrom = v\nto = a:2000\ntype = seqpacket\nsize = 4KiB\nperiod = 1ms\n"
	"[flow ab]\nfrom = a\nto = b:3000\ntype = seqpacket\nsize = 4KiB\nperiod = 1ms\n";

struct mw {
	struct tenv e;
	struct vq_ready *ready; /* v's region, in 4 KiB granules */
};

/* Cell v (index 1) gets a ready map in which only its two rings are in. */
static void mw_setup(struct mw *m)
{
	struct tcell *v;

	t_env_init(&m->e, ini, 512);
	v = &m->e.cell[1];
	m->ready = calloc(1, sizeof(*m->ready));
	assert_non_null(m->ready);
	vq_ready_init(m->ready, v->region, T_REGION, 12);
	assert_int_equal(m->ready->n, T_REGION / 4096);
	for (size_t off = 0; off < v->rx_off; off += 4096)
		vq_ready_set(m->ready, (unsigned int)(off / 4096));
	v->mem.ready = m->ready;
	for (unsigned int i = 0; i < 3; i++)
		t_post_rx(&m->e.cell[i], 8, false);
}

static void mw_teardown(struct mw *m)
{
	t_env_fini(&m->e);
	free(m->ready);
}

static uint64_t mem_waits(struct mw *m, unsigned int cell)
{
	struct dp_cell_stats cs;

	assert_int_equal(dp_stats_cell(m->e.dp, cell, &cs), 0);
	return cs.mem_waits;
}

/* One REQUEST (a header alone) from c. */
static void send_req(struct tcell *c, uint32_t scid, uint32_t sport, uint32_t dcid,
		     uint32_t dport)
{
	struct vsock_hdr h = t_hdr(scid, sport, dcid, dport, VSOCK_TYPE_SEQPACKET,
				   VSOCK_OP_REQUEST, 0);

	t_send(c, &h, NULL);
}

/* Takes the one piece `c` should have: a REQUEST from scid:sport to dport. */
static void expect_req(struct tcell *c, uint32_t scid, uint32_t sport, uint32_t dport)
{
	struct vsock_hdr h;
	uint8_t buf[8];

	assert_int_equal(t_recv(c, &h, buf, sizeof(buf)), 1);
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	assert_int_equal(h.src_cid, scid);
	assert_int_equal(h.src_port, sport);
	assert_int_equal(h.dst_port, dport);
	assert_int_equal(t_recv(c, &h, buf, sizeof(buf)), 0);
}

/* Nothing arrived at c. */
static void expect_none(struct tcell *c)
{
	struct vsock_hdr h;
	uint8_t buf[8];

	assert_int_equal(t_recv(c, &h, buf, sizeof(buf)), 0);
}

/* The granule of v's region that holds p. */
static unsigned int granule(const struct mw *m, const void *p)
{
	return (unsigned int)(((const uint8_t *)p - m->e.cell[1].region) >> m->ready->shift);
}

/* Delivery into v: its RX buffers are not in. The REQUEST waits in the broker, the
 * RX buffer's granule is asked for, v stays unbroken; a's traffic to b goes on. Once
 * the granules are in, v is still left alone until dp_mem_ready, then served. */
static void test_rx_waits_for_memory(void **state)
{
	struct tcell *a, *v, *b;
	struct mw m;

	(void)state;
	mw_setup(&m);
	a = &m.e.cell[0];
	v = &m.e.cell[1];
	b = &m.e.cell[2];
	send_req(a, A, 7000, V, 1000);
	t_run(&m.e);
	expect_none(v);
	assert_int_equal(v->broken_calls, 0);
	assert_int_equal(mem_waits(&m, 1), 1);
	assert_int_equal(vq_ready_wanted(m.ready), granule(&m, v->region + v->rx_off));
	/* Another cell's exchange is not held up. */
	send_req(a, A, 7001, B, 3000);
	t_run(&m.e);
	expect_req(b, A, 7001, 3000);
	/* In, but nobody said so yet: v's rings stay untouched. */
	vq_ready_set_all(m.ready);
	t_run(&m.e);
	expect_none(v);
	dp_mem_ready(m.e.dp, 1);
	t_run(&m.e);
	expect_req(v, A, 7000, 1000);
	assert_int_equal(v->broken_calls, 0);
	assert_int_equal(mem_waits(&m, 1), 1);
	mw_teardown(&m);
}

/* Ingest from v: its TX buffers are not in. Its chain stays on the ring (not taken
 * back, not forwarded), the TX buffer's granule is asked for; once it is in and the
 * loop says so, the REQUEST reaches a and v gets its chain back. */
static void test_tx_waits_for_memory(void **state)
{
	struct tcell *a, *v;
	struct mw m;

	(void)state;
	mw_setup(&m);
	a = &m.e.cell[0];
	v = &m.e.cell[1];
	send_req(v, V, 8000, A, 2000);
	t_run(&m.e);
	expect_none(a);
	assert_int_equal(t_tx_done(v), 0);
	assert_int_equal(v->broken_calls, 0);
	assert_int_equal(mem_waits(&m, 1), 1);
	assert_int_equal(vq_ready_wanted(m.ready), granule(&m, v->region + v->tx_off));
	/* Every pass leaves v alone: no second walk of the same chain. */
	t_run(&m.e);
	assert_int_equal(mem_waits(&m, 1), 1);
	/* Only the wanted granule comes in: enough for this chain. The thread says
	 * that the data path asked for it, so it tells the loop. */
	assert_true(vq_ready_set(m.ready, vq_ready_wanted(m.ready)));
	dp_mem_ready(m.e.dp, 1);
	t_run(&m.e);
	expect_req(a, V, 8000, 2000);
	assert_int_equal(t_tx_done(v), 1);
	assert_int_equal(v->broken_calls, 0);
	mw_teardown(&m);
}

/* The memory thread put the chain's granule in after the chain's look and before it
 * saw the request (so it tells nobody): the cell must not wait for a dp_mem_ready
 * that never comes. dp_mem_wait is called as the ingest pass calls it after that
 * look, with the granule already in; the next pass takes the chain. */
static void test_in_before_the_request(void **state)
{
	struct tcell *a, *v;
	struct vq_device *tx;
	struct mw m;

	(void)state;
	mw_setup(&m);
	a = &m.e.cell[0];
	v = &m.e.cell[1];
	tx = m.e.dp->cells[1].tx;
	send_req(v, V, 8000, A, 2000);
	tx->want = v->region + v->tx_off;
	tx->want_len = VSOCK_HDR_SIZE;
	assert_false(vq_ready_set(m.ready, granule(&m, tx->want))); /* nobody asked yet */
	dp_mem_wait(m.e.dp, 1, tx);
	assert_int_equal(mem_waits(&m, 1), 1);
	assert_false(dp_mem_waits(m.e.dp, 1));
	t_run(&m.e);
	expect_req(a, V, 8000, 2000);
	assert_int_equal(t_tx_done(v), 1);
	assert_int_equal(v->broken_calls, 0);
	mw_teardown(&m);
}

/* A chain that names memory outside every region is still a broken ring, ready map
 * or not: waiting is only for memory that is v's and not in yet. */
static void test_outside_still_breaks(void **state)
{
	struct vq_buf out = { .addr = T_GPA + T_REGION, .len = 64 };
	struct tcell *v;
	struct mw m;

	(void)state;
	mw_setup(&m);
	v = &m.e.cell[1];
	assert_int_equal(vq_driver_add(&v->drv[1], &out, 1, NULL, 0, v->region), 0);
	vq_driver_publish(&v->drv[1]);
	t_run(&m.e);
	assert_int_equal(v->broken_calls, 1);
	assert_int_equal(v->broken_err, -EFAULT);
	assert_int_equal(mem_waits(&m, 1), 0);
	mw_teardown(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rx_waits_for_memory),
		cmocka_unit_test(test_tx_waits_for_memory),
		cmocka_unit_test(test_in_before_the_request),
		cmocka_unit_test(test_outside_still_breaks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
