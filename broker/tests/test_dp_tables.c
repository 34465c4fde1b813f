/* Run-time changes to the data plane (dp_tables.c) over real rings, and the live
 * configuration they work on (live.c): a flow added to a running data plane carries
 * traffic, a removed one resets both ends of its connections and nothing else, a
 * removed cell resets its peers only (its entries charged to its slot until they
 * are told), the connection table's room is checked, and
 * the configuration in force dumps to INI that loads back identically. */
#include "test_dp_harness.h"

#include "live.h"

static const char *const base_ini =
	"[broker]\npolicy = fp\nchunk = 1KiB\nmax_cells = 3\nmax_flows = 3\n"
	"[cell a]\ncid = 3\n[cell b]\ncid = 4\n"
	"[flow s]\nfrom = a\nto = b:1000\ntype = seqpacket\nsize = 1KiB\nperiod = 1ms\n";

/* The harness's environment on the live copy of base_ini: slots 0, 1 attached. */
static void env_init(struct tenv *e)
{
	struct rtvio_config loaded;
	char err[256];

	memset(e, 0, sizeof(*e));
	assert_int_equal(rtvio_config_parse(base_ini, "test.conf", &loaded, err, sizeof(err)), 0);
	assert_int_equal(live_create(&loaded, &e->cfg), 0);
	rtvio_config_free(&loaded);
	assert_int_equal(e->cfg.ncells, 3);
	assert_true(e->cfg.cells[2].vacant && e->cfg.flows[1].vacant);
	e->now = 1000000000ull;
	assert_int_equal(dp_create(&e->cfg, &t_hooks, e, &e->dp), 0);
	for (unsigned int i = 0; i < 3; i++)
		t_cell_init(&e->cell[i], 4096);
	for (unsigned int i = 0; i < 2; i++)
		assert_int_equal(dp_attach(e->dp, i, &e->cell[i].dev[0], &e->cell[i].dev[1]), 0);
}

static void env_fini(struct tenv *e)
{
	dp_destroy(e->dp);
	for (int i = 0; i < 3; i++)
		free(e->cell[i].region);
	rtvio_config_free(&e->cfg);
}

/* Runs until nothing is left, moving the clock past every policer hold. */
static void run_all(struct tenv *e)
{
	uint64_t next;

	while ((next = t_run(e)) > e->now)
		e->now = next;
}

static void put_cell_c(struct tenv *e, uint32_t connections)
{
	struct rtvio_cell_cfg *c = &e->cfg.cells[2];

	*c = e->cfg.cells[1];
	snprintf(c->name, sizeof(c->name), "c");
	c->cid = 5;
	c->connections = connections ? connections : RTVIO_CONNECTIONS_DEFAULT;
}

static void put_flow_x(struct tenv *e)
{
	struct rtvio_flow_cfg *f = &e->cfg.flows[1];

	*f = e->cfg.flows[0];
	snprintf(f->name, sizeof(f->name), "x");
	f->from = 0;
	f->to = 2;
	f->to_port = 3000;
}

static uint16_t open_conn(struct tenv *e, int from, uint32_t fcid, int to, uint32_t tcid,
			  uint32_t port)
{
	struct vsock_hdr h = t_hdr(fcid, 5000 + port, tcid, port, VSOCK_TYPE_SEQPACKET,
				   VSOCK_OP_REQUEST, 0), r;
	uint8_t buf[16];

	t_send(&e->cell[from], &h, NULL);
	run_all(e);
	if (t_recv(&e->cell[to], &r, buf, sizeof(buf)) != 1) {
		/* Refused: the broker answered the connector. */
		assert_int_equal(t_recv(&e->cell[from], &r, buf, sizeof(buf)), 1);
		return r.op;
	}
	h = t_hdr(tcid, port, fcid, 5000 + port, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RESPONSE, 0);
	t_send(&e->cell[to], &h, NULL);
	run_all(e);
	assert_int_equal(t_recv(&e->cell[from], &r, buf, sizeof(buf)), 1);
	return r.op;
}

static void send_msg(struct tenv *e, int from, uint32_t fcid, int to, uint32_t tcid,
		     uint32_t port, uint8_t seed)
{
	uint8_t msg[200], got[256];
	struct vsock_hdr h = t_hdr(fcid, 5000 + port, tcid, port, VSOCK_TYPE_SEQPACKET,
				   VSOCK_OP_RW, sizeof(msg)), r;

	memset(msg, seed, sizeof(msg));
	h.flags = VSOCK_SEQ_EOM;
	t_send(&e->cell[from], &h, msg);
	run_all(e);
	assert_int_equal(t_recv(&e->cell[to], &r, got, sizeof(got)), 1);
	assert_int_equal(r.op, VSOCK_OP_RW);
	assert_int_equal(r.len, sizeof(msg));
	assert_memory_equal(got, msg, sizeof(msg));
}

static void added_flow_carries_removed_flow_resets(void **state)
{
	struct tenv e;
	struct vsock_hdr r;
	uint8_t buf[16];

	(void)state;
	env_init(&e);
	t_post_rx(&e.cell[0], 16, false);
	t_post_rx(&e.cell[1], 16, false);
	t_post_rx(&e.cell[2], 16, false);
	assert_int_equal(open_conn(&e, 0, 3, 1, 4, 1000), VSOCK_OP_RESPONSE);
	/* A new cell and a flow to it, between runs. */
	put_cell_c(&e, 0);
	assert_int_equal(dp_cell_add(e.dp, 2), 0);
	assert_int_equal(dp_attach(e.dp, 2, &e.cell[2].dev[0], &e.cell[2].dev[1]), 0);
	assert_int_equal(open_conn(&e, 0, 3, 2, 5, 3000), VSOCK_OP_RST); /* no flow yet */
	put_flow_x(&e);
	assert_int_equal(dp_flow_add(e.dp, 1), 0);
	assert_string_equal(dp_flow_name(e.dp, 1), "x");
	assert_int_equal(open_conn(&e, 0, 3, 2, 5, 3000), VSOCK_OP_RESPONSE);
	send_msg(&e, 0, 3, 2, 5, 3000, 7);
	send_msg(&e, 0, 3, 1, 4, 1000, 9);
	/* x goes: both its ends hear RST, s carries on. */
	dp_flow_remove(e.dp, 1);
	e.cfg.flows[1].vacant = true;
	run_all(&e);
	assert_int_equal(t_recv(&e.cell[2], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(t_recv(&e.cell[0], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(r.src_port, 3000);
	assert_null(dp_flow_name(e.dp, 1));
	send_msg(&e, 0, 3, 1, 4, 1000, 11);
	env_fini(&e);
}

static void removed_cell_resets_its_peers_only(void **state)
{
	struct tenv e;
	struct vsock_hdr r;
	uint8_t buf[16];
	struct dp_cell_stats cs;

	(void)state;
	env_init(&e);
	for (int i = 0; i < 3; i++)
		t_post_rx(&e.cell[i], 16, false);
	put_cell_c(&e, 0);
	assert_int_equal(dp_cell_add(e.dp, 2), 0);
	assert_int_equal(dp_attach(e.dp, 2, &e.cell[2].dev[0], &e.cell[2].dev[1]), 0);
	put_flow_x(&e);
	e.cfg.flows[1].from = 2; /* c -> a:3000 */
	e.cfg.flows[1].to = 0;
	assert_int_equal(dp_flow_add(e.dp, 1), 0);
	assert_int_equal(open_conn(&e, 0, 3, 1, 4, 1000), VSOCK_OP_RESPONSE);
	assert_int_equal(open_conn(&e, 2, 5, 0, 3, 3000), VSOCK_OP_RESPONSE);
	/* The daemon's order: the cell cut off (its front end gone), its flows, then
	 * its slot. */
	dp_detach(e.dp, 2);
	dp_flow_remove(e.dp, 1);
	e.cfg.flows[1].vacant = true;
	dp_cell_remove(e.dp, 2);
	e.cfg.cells[2].vacant = true;
	run_all(&e);
	assert_int_equal(t_recv(&e.cell[0], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(r.src_cid, 5);
	assert_int_equal(t_recv(&e.cell[1], &r, buf, sizeof(buf)), 0); /* b: nothing */
	assert_int_equal(dp_stats_cell(e.dp, 1, &cs), 0);
	assert_int_equal(cs.resets, 0);
	send_msg(&e, 0, 3, 1, 4, 1000, 5);
	env_fini(&e);
}

static void connection_room_checked(void **state)
{
	struct tenv e;

	(void)state;
	env_init(&e);
	/* Two cells of 256 and one vacant slot's default share. */
	assert_int_equal(dp_conn_room(e.dp), 256);
	put_cell_c(&e, 300);
	assert_int_equal(dp_cell_add(e.dp, 2), -ENOSPC);
	put_cell_c(&e, 100);
	e.cfg.cells[2].cid = 4;
	assert_int_equal(dp_cell_add(e.dp, 2), -EEXIST);
	e.cfg.cells[2].cid = 5;
	assert_int_equal(dp_cell_add(e.dp, 2), 0);
	assert_int_equal(dp_conn_room(e.dp), 156);
	env_fini(&e);
}

/* A removed cell's connection whose peer has not yet had its RST keeps its entry,
 * charged to the slot: the room counts it, a cell added into the slot inherits it
 * in its count (its share must still fit beside it), and it is freed when the peer
 * has the RST. */
static void removed_cell_pending_reset_charged(void **state)
{
	struct tenv e;
	struct vsock_hdr r;
	uint8_t buf[16];

	(void)state;
	env_init(&e);
	for (int i = 0; i < 3; i++)
		t_post_rx(&e.cell[i], 16, false);
	put_cell_c(&e, 0);
	assert_int_equal(dp_cell_add(e.dp, 2), 0);
	assert_int_equal(dp_attach(e.dp, 2, &e.cell[2].dev[0], &e.cell[2].dev[1]), 0);
	put_flow_x(&e);
	e.cfg.flows[1].from = 2; /* c -> a:3000 */
	e.cfg.flows[1].to = 0;
	assert_int_equal(dp_flow_add(e.dp, 1), 0);
	assert_int_equal(open_conn(&e, 2, 5, 0, 3, 3000), VSOCK_OP_RESPONSE);
	dp_detach(e.dp, 2);
	dp_flow_remove(e.dp, 1);
	e.cfg.flows[1].vacant = true;
	dp_cell_remove(e.dp, 2);
	e.cfg.cells[2].vacant = true;
	/* The RST toward a is queued, not yet delivered: its entry is the slot's. */
	assert_int_equal(t_conns_used(e.dp), 1);
	assert_int_equal(e.dp->cells[2].nconn, 1);
	assert_int_equal(dp_conn_room(e.dp), 255);
	put_cell_c(&e, 257);
	assert_int_equal(dp_cell_add(e.dp, 2), -ENOSPC);
	put_cell_c(&e, 256);
	assert_int_equal(dp_cell_add(e.dp, 2), 0);
	assert_int_equal(e.dp->cells[2].nconn, 1);
	assert_int_equal(dp_conn_room(e.dp), 0);
	run_all(&e);
	assert_int_equal(t_recv(&e.cell[0], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(r.src_cid, 5);
	assert_int_equal(r.src_port, 8000);
	assert_int_equal(r.dst_port, 3000);
	assert_int_equal(t_conns_used(e.dp), 0);
	assert_int_equal(e.dp->cells[2].nconn, 0);
	env_fini(&e);
}

static void live_dump_round_trip(void **state)
{
	struct tenv e;
	struct rtvio_config back, live2;
	char err[256], *one, *two;

	(void)state;
	env_init(&e);
	put_cell_c(&e, 0);
	put_flow_x(&e);
	one = live_dump(&e.cfg, true);
	assert_non_null(one);
	assert_non_null(strstr(one, "[cell c]"));
	assert_non_null(strstr(one, "[flow x]"));
	assert_non_null(strstr(one, "max_cells = 3"));
	if (rtvio_config_parse(one, "dump", &back, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(back.ncells, 3);
	assert_int_equal(back.nflows, 2);
	assert_int_equal(live_create(&back, &live2), 0);
	two = live_dump(&live2, true);
	assert_string_equal(one, two);
	/* Dropping a cell drops its flows. */
	rtvio_config_free(&back);
	assert_int_equal(live_compact(&e.cfg, "c", NULL, &back), 0);
	assert_int_equal(back.ncells, 2);
	assert_int_equal(back.nflows, 1);
	rtvio_config_free(&back);
	rtvio_config_free(&live2);
	free(one);
	free(two);
	dp_destroy(e.dp);
	e.dp = NULL;
	for (int i = 0; i < 3; i++)
		free(e.cell[i].region);
	rtvio_config_free(&e.cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(added_flow_carries_removed_flow_resets),
		cmocka_unit_test(removed_cell_resets_its_peers_only),
		cmocka_unit_test(connection_room_checked),
		cmocka_unit_test(removed_cell_pending_reset_charged),
		cmocka_unit_test(live_dump_round_trip),
	};

	/* The harness's own environment is for fixed configurations. */
	(void)t_env_init;
	(void)t_env_fini;
	(void)t_tx_done;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
