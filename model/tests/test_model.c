/* The broker's model (model/model.h) against what reads it: the data plane's ranks,
 * classes, pools and fp dispatch order, and the analysis input built from it
 * (analysis/from_config.c). Configurations: configs/demo.conf, configs/vmdemo.conf
 * and generated ones (random flows with and without priorities, best-effort flows,
 * vm cells, `default = best-effort`).
 *
 * The reference below (ref_cmp) restates the ranking rules from the configuration
 * alone, so a model that ranks wrongly fails here even though the data plane and the
 * analysis would agree with it. */
#include "test_dp_harness.h"

#include "from_config.h"
#include "model.h"

#ifndef RTVIO_SOURCE_ROOT
#error "RTVIO_SOURCE_ROOT must name the source tree"
#endif

/* --------------------------------------------------------------- reference ---- */

/* Where a flow runs under fp: explicit priorities first (by value), then the other
 * real-time flows by deadline, then configured best-effort flows, then the implicit
 * class (flow index nflows). Returns <0, 0 or >0 like strcmp. */
static int ref_cmp(const struct rtvio_config *cfg, int i, int j)
{
	uint64_t ki[3], kj[3];
	const int *ix[2] = { &i, &j };
	uint64_t *k[2] = { ki, kj };

	for (int s = 0; s < 2; s++) {
		int x = *ix[s];
		const struct rtvio_flow_cfg *f = x < cfg->nflows ? &cfg->flows[x] : NULL;

		k[s][1] = k[s][2] = 0;
		if (!f)
			k[s][0] = 3;
		else if (f->best_effort)
			k[s][0] = 2;
		else if (f->priority > 0)
			k[s][0] = 0, k[s][1] = (uint64_t)f->priority;
		else
			k[s][0] = 1, k[s][1] = f->deadline_ns;
	}
	for (int d = 0; d < 3; d++)
		if (ki[d] != kj[d])
			return ki[d] < kj[d] ? -1 : 1;
	return 0;
}

static int sign_u(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int key_cmp(const struct model_flow *a, const struct model_flow *b)
{
	int s = sign_u(a->rank_hi, b->rank_hi);

	return s ? s : sign_u(a->rank_lo, b->rank_lo);
}

/* ------------------------------------------------------------------ checks ---- */

/* Violations of the ranking rules by the model's keys, dense ranks, classes and
 * dispatch order. */
static unsigned check_ranks(const struct rtvio_config *cfg, const struct model *m)
{
	unsigned bad = 0, maxrank = 0, n = (unsigned)cfg->nflows;
	bool seen[RTVIO_MAX_FLOWS + 2] = { false };

	for (unsigned i = 0; i <= n; i++) {
		const struct model_flow *a = &m->flows[i];
		bool be = i == n || cfg->flows[i].best_effort;

		bad += be != (a->cls == MODEL_BEST_EFFORT);
		bad += be ? a->rank != 0 : a->rank == 0;
		if (a->rank <= n)
			seen[a->rank] = true;
		if (a->rank > maxrank)
			maxrank = a->rank;
		for (unsigned j = 0; j <= n; j++) {
			const struct model_flow *b = &m->flows[j];
			int r = ref_cmp(cfg, (int)i, (int)j);

			bad += key_cmp(a, b) != r;
			if (!be && b->cls == MODEL_REAL_TIME)
				bad += sign_u(a->rank, b->rank) != r;
		}
	}
	/* Dense: every rank 1..max is someone's. */
	for (unsigned r = 1; r <= maxrank; r++)
		bad += r > n || !seen[r];
	for (unsigned k = 0; k < n; k++)
		bad += ref_cmp(cfg, (int)m->order[k], (int)m->order[k + 1]) > 0;
	return bad;
}

static uint64_t min_u(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The sizes each flow travels in (DESIGN.md §Analysis model). */
static void check_sizes(const struct rtvio_config *cfg, const struct model *m)
{
	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_cell_cfg *dst = &cfg->cells[cfg->flows[i].to];
		const struct model_flow *mf = &m->flows[i];
		uint64_t rx = dst->vm ? min_u(dst->rx_buf, MODEL_LINUX_GUEST_RX_PAYLOAD) :
					dst->rx_buf;

		assert_int_equal(mf->rx_payload, rx);
		assert_int_equal(mf->rx_max, dst->vm ? 0 : dst->rx_buf);
		assert_int_equal(mf->chunk, min_u(cfg->broker.chunk, rx));
		assert_int_equal(mf->packet_size, cfg->cells[cfg->flows[i].from].max_packet);
	}
	assert_int_equal(m->flows[cfg->nflows].packet_size, cfg->broker.chunk);
	assert_true(m->flows[cfg->nflows].chunk <= cfg->broker.chunk);
}

/* (a) dp_create's flows and pools are the model's. */
static void check_dp(const struct rtvio_config *cfg, const struct model *m)
{
	struct dp *dp;

	assert_int_equal(dp_create(cfg, NULL, NULL, &dp), 0);
	assert_int_equal(dp->nflows, m->pools.nflows);
	assert_int_equal(dp->ncells, m->pools.ncells);
	assert_int_equal(dp->nqueues, m->pools.nqueues);
	assert_int_equal(dp->nconns, m->pools.nconns);
	assert_int_equal(dp->nsyn, m->pools.nsyn);
	assert_int_equal((uint64_t)dp->ncells * DP_TX_SLOTS + dp->nsyn, m->pools.npkts);
	assert_int_equal(DP_RUN_STEPS, m->pools.run_steps);
	for (uint32_t i = 0; i <= dp->nflows; i++) {
		assert_int_equal(dp->flows[i].rank_hi, m->flows[i].rank_hi);
		assert_int_equal(dp->flows[i].rank_lo, m->flows[i].rank_lo);
		assert_int_equal(dp->flows[i].be, m->flows[i].cls == MODEL_BEST_EFFORT);
	}
	dp_destroy(dp);
}

static const struct rtvio_platform_cfg plat = {
	.copy_bandwidth = 2000000000ull, .chunk_overhead = 1000, .packet_overhead = 5000,
	.ingest_latency = 10000, .notify_latency = 50000, .ingest_step = 50001,
	.batch_gap = 20000, .present = RTVIO_PLAT_ALL,
};

/* (b) The analysis input carries the model's priorities, sizes and pools, and its
 * priorities order the flows as the data plane's keys do. */
static void check_input(const struct rtvio_config *cfg, const struct model *m)
{
	struct an_flow *fl = calloc((size_t)cfg->nflows + 1, sizeof(*fl));
	struct an_broker b;
	size_t n;

	assert_non_null(fl);
	n = an_input_from_config(cfg, m, &plat, &b, fl);
	assert_int_equal(n, (size_t)cfg->nflows + cfg->broker.default_best_effort);
	assert_int_equal(b.chunk, cfg->broker.chunk);
	assert_int_equal(m->pools.tx_slots_all, (uint64_t)cfg->ncells * DP_TX_SLOTS);
	if (MODEL_INGEST_BUDGETS) {
		uint64_t sum = 0;

		for (int c = 0; c < cfg->ncells; c++) {
			uint32_t nb = model_cell_ingest_budget(cfg, c);

			assert_true(nb >= MODEL_CELL_SLACK && nb <= DP_TX_SLOTS);
			sum += nb;
		}
		assert_int_equal(b.tx_slots, sum);
	} else {
		assert_int_equal(b.tx_slots, (uint64_t)cfg->ncells * DP_TX_SLOTS);
	}
	assert_int_equal(b.run_steps, DP_RUN_STEPS);
	assert_int_equal(b.plat.ingest_packet, 50001 / MODEL_INGEST_STEP_PACKETS + 1);
	for (size_t i = 0; i < n; i++) {
		const struct model_flow *mf = &m->flows[i];

		assert_int_equal(fl[i].priority, mf->rank);
		assert_int_equal(fl[i].best_effort, mf->cls == MODEL_BEST_EFFORT);
		assert_int_equal(fl[i].rx_payload, mf->rx_payload);
		assert_int_equal(fl[i].rx_max, mf->rx_max);
		assert_int_equal(fl[i].packet_size, mf->packet_size);
		assert_int_equal(min_u(b.chunk, fl[i].rx_payload), mf->chunk);
		for (size_t j = 0; j < n; j++)
			if (!fl[i].best_effort && !fl[j].best_effort)
				assert_int_equal(sign_u(fl[i].priority, fl[j].priority),
						 key_cmp(mf, &m->flows[j]));
	}
	if (b.policy == AN_FP)
		assert_int_equal(an_validate(fl, n, &b, NULL, NULL), 0);
	free(fl);
}

static void check_all(const struct rtvio_config *cfg)
{
	struct model *m;

	assert_int_equal(model_create(cfg, &m), 0);
	assert_int_equal(check_ranks(cfg, m), 0);
	check_sizes(cfg, m);
	check_dp(cfg, m);
	check_input(cfg, m);
	model_destroy(m);
}

static void check_file(const char *path)
{
	struct rtvio_config cfg = { 0 };
	char err[512];

	if (rtvio_config_load(path, &cfg, err, sizeof(err))) {
		print_error("%s\n", err);
		fail();
	}
	check_all(&cfg);
	rtvio_config_free(&cfg);
}

/* Cells are dealt to the broker's cores by slot unless they name one; a flow runs on
 * its destination's core; a config built in code (ncores 0) has one core. */
static void test_cores(void **state)
{
	struct rtvio_cell_cfg cells[3] = { { .broker_core = -1 }, { .broker_core = -1 },
					   { .broker_core = 0 } };
	struct rtvio_flow_cfg flows[2] = { { .from = 0, .to = 1 }, { .from = 1, .to = 2 } };
	struct rtvio_config cfg = { .cells = cells, .ncells = 3, .flows = flows, .nflows = 2 };

	(void)state;
	for (int c = 0; c < 3; c++)
		assert_int_equal(model_cell_core(&cfg, c), 0);
	cfg.broker.ncores = 2;
	assert_int_equal(model_cell_core(&cfg, 0), 0);
	assert_int_equal(model_cell_core(&cfg, 1), 1);
	assert_int_equal(model_cell_core(&cfg, 2), 0);
	assert_int_equal(model_flow_core(&cfg, 0), 1);
	assert_int_equal(model_flow_core(&cfg, 1), 0);
	cells[2].broker_core = 1;
	assert_int_equal(model_flow_core(&cfg, 1), 1);
}

/* A cell pinned to a data-plane core's cpu is named unless the broker outranks it
 * there; unpinned cells, cells elsewhere and vacant slots are not. */
static void test_cell_over_core(void **state)
{
	struct rtvio_cell_cfg cells[3] = { { .cpu = -1 }, { .cpu = 2, .rt_priority = 90 },
					   { .cpu = 1, .rt_priority = 50 } };
	struct rtvio_config cfg = { .cells = cells, .ncells = 3 };

	(void)state;
	cfg.broker.ncores = 1;
	cfg.broker.cpus[0] = 1;
	assert_int_equal(model_cell_over_core(&cfg), 2);     /* no broker priority */
	cfg.broker.rt_priority = 50;
	assert_int_equal(model_cell_over_core(&cfg), 2);     /* equal: no preemption */
	cfg.broker.rt_priority = 80;
	assert_int_equal(model_cell_over_core(&cfg), -1);    /* outranked */
	cfg.broker.ncores = 2;
	cfg.broker.cpus[1] = 2;
	assert_int_equal(model_cell_over_core(&cfg), 1);     /* above the broker on cpu 2 */
	cells[1].vacant = true;
	assert_int_equal(model_cell_over_core(&cfg), -1);
	cfg.broker.cpus[0] = -1;
	cells[2].cpu = -1;
	assert_int_equal(model_cell_over_core(&cfg), -1);
}

/* [broker] budget_period P: the budgets' ceil(P / T) terms scale with it, the rest
 * does not, and the pools and the analysis input carry P. a sends s (1 ms) and t
 * (a stream, 3 ms) to b, one packet per message: from the default 1 ms to 10 ms,
 * a's ingest budget gains (10 - 1) + (4 - 1) = 12 messages, b's ingest and control
 * budgets t's 4 - 1 = 3 credit updates; the pieces (the allowance) stay. */
static void test_budget_period(void **state)
{
	static const char body[] =
		"[cell a]\ncid = 3\n[cell b]\ncid = 4\n"
		"[flow s]\nfrom = a\nto = b:1\ntype = seqpacket\nsize = 64\nperiod = 1ms\n"
		"[flow t]\nfrom = a\nto = b:2\ntype = stream\nsize = 64\nperiod = 3ms\n"
		"[platform]\ncopy_bandwidth = 1GB/s\nchunk_overhead = 100ns\n"
		"packet_overhead = 1us\ningest_latency = 2us\nnotify_latency = 3us\n"
		"ingest_step = 500ns\nbatch_gap = 0\n";
	char text[1024], err[256];
	struct rtvio_config one, ten;
	struct model_cell_budget a1, b1, a10, b10;
	struct an_flow fl[3];
	struct an_broker b;
	struct model *m;

	(void)state;
	assert_int_equal(rtvio_config_parse(body, "one", &one, err, sizeof(err)), 0);
	snprintf(text, sizeof(text), "[broker]\nbudget_period = 10ms\n%s", body);
	if (rtvio_config_parse(text, "ten", &ten, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(model_budget_period(&one), 1000000);
	assert_int_equal(model_budget_period(&ten), 10000000);
	model_cell_budgets(&one, 0, &a1);
	model_cell_budgets(&one, 1, &b1);
	model_cell_budgets(&ten, 0, &a10);
	model_cell_budgets(&ten, 1, &b10);
	assert_int_equal(a10.ingest - a1.ingest, 12);
	assert_int_equal(a10.ctrl, a1.ctrl);
	assert_int_equal(b10.ingest - b1.ingest, 3);
	assert_int_equal(b10.ctrl - b1.ctrl, 3);
	assert_int_equal(a10.pieces, a1.pieces);
	assert_int_equal(b10.pieces, b1.pieces);
	assert_int_equal(model_create(&ten, &m), 0);
	assert_int_equal(m->pools.budget_period, 10000000);
	assert_int_equal(m->pools.budget_ingest, a10.ingest + b10.ingest);
	assert_int_equal(m->pools.budget_ctrl, a10.ctrl + b10.ctrl);
	an_input_from_config(&ten, m, &ten.platform, &b, fl);
	assert_int_equal(b.budget_period, 10000000);
	assert_int_equal(b.budget_ingest, a10.ingest + b10.ingest);
	model_destroy(m);
	/* A config built in code that leaves it 0 has the default. */
	ten.broker.budget_period_ns = 0;
	assert_int_equal(model_budget_period(&ten), MODEL_BUDGET_PERIOD_NS);
	rtvio_config_free(&one);
	rtvio_config_free(&ten);
}

/* The reserve for the real-time flows (model_rt_demand) counts the cells' budgets'
 * headers over the budget periods released while a header can wait to be copied:
 * regulation period Pi = 250 us, budget period P = 1 ms, a 100 B seqpacket flow every
 * 10 ms with D = 5 ms. Messages: floor((250 us + 5 ms) / 10 ms) + 1 = 1 of 144 B.
 * Headers: released in (a - 5 ms, a + 250 us), ceil(5.25 ms / 1 ms) + 1 = 7 budget
 * periods of a's control packets and b's control packets and short pieces, 3 headers
 * per period: 7 * 3 * 44 = 924 B, 1068 B in all (not the 2 periods, 408 B, a 250 us
 * window meets by itself). c and d carry only best effort. The
 * analysis built from the same config charges the same (an_rt_demand). */
static void test_rt_demand_budgets(void **state)
{
	static const char text[] =
		"[broker]\nregulation_budget = 64KiB\nregulation_period = 250us\n"
		"[cell a]\ncid = 3\n[cell b]\ncid = 4\n[cell c]\ncid = 5\n[cell d]\ncid = 6\n"
		"[flow s]\nfrom = a\nto = b:1\ntype = seqpacket\nsize = 100\nperiod = 10ms\n"
		"deadline = 5ms\n"
		"[flow bulk]\nfrom = c\nto = d:2\ntype = stream\nsize = 1MiB\n"
		"class = best-effort\n"
		"[platform]\ncopy_bandwidth = 1GB/s\nchunk_overhead = 100ns\n"
		"packet_overhead = 1us\ningest_latency = 2us\nnotify_latency = 3us\n"
		"ingest_step = 500ns\nbatch_gap = 0\n";
	char err[256];
	struct rtvio_config cfg;
	struct model_cell_budget a, b, c;
	struct an_flow fl[3];
	struct an_costs co[3];
	struct an_broker br;
	struct model *m;
	uint64_t per;
	size_t n;

	(void)state;
	if (rtvio_config_parse(text, "rt", &cfg, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(model_budget_period(&cfg), 1000000);
	model_cell_budgets(&cfg, 0, &a);
	model_cell_budgets(&cfg, 1, &b);
	model_cell_budgets(&cfg, 2, &c);
	per = a.ctrl + b.ctrl + b.pieces;
	assert_int_equal(per, 3);
	assert_true(c.ctrl > 0);
	assert_int_equal(model_rt_demand(&cfg), 144 + 7 * per * 44);
	assert_int_equal(model_rt_reserve(&cfg), 144 + 7 * per * 44);
	assert_int_equal(model_create(&cfg, &m), 0);
	n = an_input_from_config(&cfg, m, &cfg.platform, &br, fl);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(an_flow_costs(&fl[i], &br, &co[i]), 0);
	assert_int_equal(an_rt_demand(fl, n, &br, co), model_rt_demand(&cfg));
	model_destroy(m);
	rtvio_config_free(&cfg);
}

static void test_demo_conf(void **state)
{
	(void)state;
	check_file(RTVIO_SOURCE_ROOT "/configs/demo.conf");
}

static void test_vmdemo_conf(void **state)
{
	(void)state;
	check_file(RTVIO_SOURCE_ROOT "/configs/vmdemo.conf");
}

/* ------------------------------------------------------- generated configs ---- */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#define PICK(s, arr) ((arr)[rnd(s) % (sizeof(arr) / sizeof((arr)[0]))])

struct gen {
	int ncells, nflows, senders; /* senders > 0: cells 0..senders-1 send to the last */
	unsigned be_pct, prio_pct;
	bool vm, default_be;
};

/* Appends one flow section; few priorities and deadlines, so that ties happen. */
static size_t gen_flow(char *p, size_t len, uint64_t *s, const struct gen *g, int f)
{
	static const unsigned dl[] = { 1, 2, 5, 10 };
	int a = g->senders ? f % g->senders : (int)(rnd(s) % (uint64_t)g->ncells);
	int b = g->senders ? g->ncells - 1 : (a + 1 + (int)(rnd(s) % (uint64_t)(g->ncells - 1))) %
						   g->ncells;
	size_t o = (size_t)snprintf(p, len, "[flow f%d]\nfrom = c%d\nto = c%d:%d\n"
				    "type = seqpacket\nsize = 256\n", f, a, b, 1000 + f);

	if (rnd(s) % 100 < g->be_pct)
		return o + (size_t)snprintf(p + o, len - o, "class = best-effort\n");
	o += (size_t)snprintf(p + o, len - o, "period = 10ms\ndeadline = %ums\n", PICK(s, dl));
	if (rnd(s) % 100 < g->prio_pct)
		o += (size_t)snprintf(p + o, len - o, "priority = %u\n", 1 + (unsigned)(rnd(s) % 4));
	return o;
}

static void gen_ini(char *buf, size_t len, uint64_t *s, const struct gen *g)
{
	static const char *chunk[] = { "1KiB", "4KiB", "16KiB" };
	static const unsigned rx[] = { 1024, 4096, 8192 }, pkt[] = { 4096, 65536 };
	size_t o = (size_t)snprintf(buf, len, "[broker]\npolicy = fp\nchunk = %s\ndefault = %s\n",
				    PICK(s, chunk), g->default_be ? "best-effort" : "deny");

	for (int c = 0; c < g->ncells; c++)
		o += (size_t)snprintf(buf + o, len - o,
				      "[cell c%d]\ncid = %d\nrx_buf = %u\nmax_packet = %u\n%s", c,
				      c + 3, PICK(s, rx), PICK(s, pkt),
				      g->vm && rnd(s) % 3 == 0 ? "vm = yes\n" : "");
	for (int f = 0; f < g->nflows; f++)
		o += gen_flow(buf + o, len - o, s, g, f);
	assert_true(o < len);
}

static void gen_config(uint64_t *s, const struct gen *g, struct rtvio_config *cfg)
{
	static char ini[65536];
	char err[512];

	gen_ini(ini, sizeof(ini), s, g);
	if (rtvio_config_parse(ini, "generated.conf", cfg, err, sizeof(err))) {
		print_error("%s\n%s\n", err, ini);
		fail();
	}
}

static struct gen random_gen(uint64_t *s, int variant)
{
	struct gen g = { .ncells = 2 + (int)(rnd(s) % 7), .nflows = 1 + (int)(rnd(s) % 24) };

	/* variant: 0 no priorities, 1 all prioritised, 2 mixed with vm cells and
	 * best-effort flows. */
	g.prio_pct = variant == 0 ? 0 : variant == 1 ? 100 : 50;
	g.be_pct = variant == 2 ? 25 : 0;
	g.vm = variant == 2;
	g.default_be = rnd(s) % 2;
	return g;
}

static void test_generated(void **state)
{
	(void)state;
	for (int variant = 0; variant < 3; variant++) {
		uint64_t s = 0x9e3779b97f4a7c15ull + (uint64_t)variant;

		for (int k = 0; k < 100; k++) {
			struct rtvio_config cfg = { 0 };
			struct gen g = random_gen(&s, variant);

			gen_config(&s, &g, &cfg);
			check_all(&cfg);
			rtvio_config_free(&cfg);
		}
	}
}

/* The checks catch a broken ranking: swapping the keys of two flows the rules
 * order differently is a violation. */
static void test_broken_ranking_detected(void **state)
{
	uint64_t s = 42;
	struct gen g = { .ncells = 3, .nflows = 8, .prio_pct = 50, .be_pct = 25 };
	unsigned caught = 0;

	(void)state;
	for (int k = 0; k < 20; k++) {
		struct rtvio_config cfg = { 0 };
		struct model *m;
		struct model_flow t;
		uint32_t a, b;

		gen_config(&s, &g, &cfg);
		assert_int_equal(model_create(&cfg, &m), 0);
		a = m->order[0];
		b = m->order[cfg.nflows - 1];
		if (ref_cmp(&cfg, (int)a, (int)b)) {
			t = m->flows[a];
			m->flows[a] = m->flows[b];
			m->flows[b] = t;
			assert_int_not_equal(check_ranks(&cfg, m), 0);
			caught++;
		}
		model_destroy(m);
		rtvio_config_free(&cfg);
	}
	assert_true(caught > 0);
}

/* ---------------------------------------------------------- dispatch order ---- */

#define RECV 3 /* cell index of the receiver in the dispatch tests (cid 6) */
#define UNNAMED_PORT 999u

static void open_conn(struct tenv *e, int from, uint32_t sport, uint32_t dport)
{
	uint32_t scid = e->cfg.cells[from].cid, dcid = e->cfg.cells[RECV].cid;
	struct vsock_hdr h = t_hdr(scid, sport, dcid, dport, VSOCK_TYPE_SEQPACKET,
				   VSOCK_OP_REQUEST, 0), r;
	uint8_t buf[16];

	t_post_rx(&e->cell[RECV], 1, false);
	t_send(&e->cell[from], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[RECV], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_REQUEST);
	t_post_rx(&e->cell[from], 1, false);
	h = t_hdr(dcid, dport, scid, sport, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RESPONSE, 0);
	t_send(&e->cell[RECV], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[from], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RESPONSE);
	t_tx_done(&e->cell[from]);
	t_tx_done(&e->cell[RECV]);
}

static void send_one(struct tenv *e, int from, uint32_t sport, uint32_t dport)
{
	static uint8_t payload[64];
	struct vsock_hdr h = t_hdr(e->cfg.cells[from].cid, sport, e->cfg.cells[RECV].cid, dport,
				   VSOCK_TYPE_SEQPACKET, VSOCK_OP_RW, sizeof(payload));

	h.flags = VSOCK_SEQ_EOM;
	t_send(&e->cell[from], &h, payload);
}

/* Flow index (nflows = the implicit class) of a piece the receiver got. */
static int flow_of_port(const struct rtvio_config *cfg, uint32_t port)
{
	return port == UNNAMED_PORT ? cfg->nflows : (int)port - 1000;
}

/* Every flow (and an unnamed connection in the implicit class) has one packet
 * pending at once; the receiver must get them in the rules' order. */
static void dispatch_once(uint64_t *s, int variant)
{
	struct gen g = { .ncells = 4, .senders = 3, .nflows = 3 + (int)(rnd(s) % 19),
			 .prio_pct = variant ? 50 : 0, .be_pct = 20, .default_be = true };
	static uint8_t piece[4096];
	static char ini[16384];
	struct tenv e;
	struct vsock_hdr r;
	int prev = -1, got = 0;

	gen_ini(ini, sizeof(ini), s, &g);
	t_env_init(&e, ini, 4096);
	for (int f = 0; f < g.nflows; f++)
		open_conn(&e, f % 3, 5000 + (uint32_t)f, 1000 + (uint32_t)f);
	open_conn(&e, 0, 4999, UNNAMED_PORT);
	t_post_rx(&e.cell[RECV], (unsigned)g.nflows + 1, false);
	send_one(&e, 0, 4999, UNNAMED_PORT);
	for (int f = 0; f < g.nflows; f++)
		send_one(&e, f % 3, 5000 + (uint32_t)f, 1000 + (uint32_t)f);
	t_run(&e);
	while (t_recv(&e.cell[RECV], &r, piece, sizeof(piece))) {
		int fl = flow_of_port(&e.cfg, r.dst_port);

		assert_int_equal(r.op, VSOCK_OP_RW);
		if (prev >= 0 && ref_cmp(&e.cfg, prev, fl) > 0) {
			print_error("flow %d dispatched after flow %d\n", fl, prev);
			fail();
		}
		prev = fl;
		got++;
	}
	assert_int_equal(got, g.nflows + 1);
	t_env_fini(&e);
}

static void test_dispatch_order(void **state)
{
	uint64_t s = 7;

	(void)state;
	for (int k = 0; k < 40; k++)
		dispatch_once(&s, k % 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demo_conf),
		cmocka_unit_test(test_vmdemo_conf),
		cmocka_unit_test(test_generated),
		cmocka_unit_test(test_broken_ranking_detected),
		cmocka_unit_test(test_dispatch_order),
		cmocka_unit_test(test_cores),
		cmocka_unit_test(test_cell_over_core),
		cmocka_unit_test(test_budget_period),
		cmocka_unit_test(test_rt_demand_budgets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
