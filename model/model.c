/* The broker's model of a configuration (model.h): ranks, classes, sizes, pools. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "config.h"
#include "model.h"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Explicit priority first, then deadline-monotonic, best-effort last. */
void model_flow_key(const struct rtvio_flow_cfg *f, struct model_flow *mf)
{
	mf->cls = f->best_effort ? MODEL_BEST_EFFORT : MODEL_REAL_TIME;
	mf->rank_lo = 0;
	if (f->best_effort) {
		mf->rank_hi = UINT64_MAX - 1;
	} else if (f->priority > 0) {
		mf->rank_hi = (uint64_t)f->priority;
	} else {
		/* After every explicitly prioritised flow (priorities are ints). */
		mf->rank_hi = (uint64_t)INT_MAX + 1;
		mf->rank_lo = f->deadline_ns;
	}
}

/* The smallest RX payload the analysis assumes cell c posts. */
static uint64_t rx_floor(const struct rtvio_cell_cfg *c)
{
	return c->vm ? min_u64(c->rx_buf, MODEL_LINUX_GUEST_RX_PAYLOAD) : c->rx_buf;
}

/* A process cell posts rx_buf (rtvio cell does); a guest what its kernel posts,
 * which rx_buf bounds for the piece count but not for the longest step. */
static void flow_sizes(const struct rtvio_config *cfg, const struct rtvio_flow_cfg *f,
		       struct model_flow *mf)
{
	const struct rtvio_cell_cfg *dst = &cfg->cells[f->to];

	mf->rx_payload = rx_floor(dst);
	mf->rx_max = dst->vm ? 0 : dst->rx_buf;
	mf->chunk = min_u64(cfg->broker.chunk, mf->rx_payload);
	mf->packet_size = cfg->cells[f->from].max_packet;
}

/* The implicit class goes toward any cell: its steps are as long as a chunk and the
 * largest RX buffer any cell posts allow (not known when any cell is a guest). */
static void default_class(const struct rtvio_config *cfg, struct model_flow *mf)
{
	uint64_t rxm = 0;

	for (int c = 0; c < cfg->ncells; c++) {
		if (cfg->cells[c].vm) {
			rxm = 0;
			break;
		}
		if (cfg->cells[c].rx_buf > rxm)
			rxm = cfg->cells[c].rx_buf;
	}
	*mf = (struct model_flow){ .cls = MODEL_BEST_EFFORT, .rank_hi = UINT64_MAX };
	mf->rx_payload = rxm ? rxm : cfg->broker.chunk;
	mf->rx_max = rxm;
	mf->chunk = min_u64(cfg->broker.chunk, mf->rx_payload);
	mf->packet_size = cfg->broker.chunk;
}

/* Total order of the keys, ties by index: a deterministic dispatch order. */
static bool before(const struct model_flow *f, uint32_t a, uint32_t b)
{
	if (f[a].rank_hi != f[b].rank_hi)
		return f[a].rank_hi < f[b].rank_hi;
	if (f[a].rank_lo != f[b].rank_lo)
		return f[a].rank_lo < f[b].rank_lo;
	return a < b;
}

static void sift_down(const struct model_flow *f, uint32_t *o, size_t i, size_t n)
{
	for (;;) {
		size_t c = 2 * i + 1, big = i;
		uint32_t t;

		if (c < n && before(f, o[big], o[c]))
			big = c;
		if (c + 1 < n && before(f, o[big], o[c + 1]))
			big = c + 1;
		if (big == i)
			return;
		t = o[i];
		o[i] = o[big];
		o[big] = t;
		i = big;
	}
}

/* Heapsort: no allocation and no context-free comparator needed (qsort has none). */
static void sort_by_key(const struct model_flow *f, uint32_t *o, size_t n)
{
	for (size_t i = 0; i < n; i++)
		o[i] = (uint32_t)i;
	for (size_t i = n / 2; i-- > 0;)
		sift_down(f, o, i, n);
	for (size_t end = n; end-- > 1;) {
		uint32_t t = o[0];

		o[0] = o[end];
		o[end] = t;
		sift_down(f, o, 0, end);
	}
}

/* Dense ranks along the dispatch order: each distinct real-time key one more. */
static void dense_ranks(struct model *m)
{
	const struct model_flow *prev = NULL;
	unsigned rank = 0;

	for (uint32_t k = 0; k <= m->pools.nflows; k++) {
		struct model_flow *mf = &m->flows[m->order[k]];

		if (mf->cls == MODEL_BEST_EFFORT)
			continue;
		if (!prev || prev->rank_hi != mf->rank_hi || prev->rank_lo != mf->rank_lo)
			rank++;
		mf->rank = rank;
		prev = mf;
	}
}

uint32_t model_cell_connections(const struct rtvio_config *cfg, int i)
{
	uint32_t n = cfg->cells[i].connections;

	return n ? n : RTVIO_CONNECTIONS_DEFAULT;
}

/* Messages of flow f that can be in the broker at once while it meets its deadline:
 * their kicks lie within D of each other, their nominal releases within D + J. */
static uint64_t pending_msgs(const struct rtvio_flow_cfg *f)
{
	if (!f->period_ns)
		return 1;
	return (f->deadline_ns + f->jitter_ns) / f->period_ns + 1;
}

uint32_t model_cell_allowance(const struct rtvio_config *cfg, int c)
{
	uint32_t n = cfg->cells[c].allowance;

	return n ? n : MODEL_CELL_ALLOWANCE;
}

/* TX packets one message of real-time flow f takes. */
static uint64_t msg_packets(const struct rtvio_config *cfg, const struct rtvio_flow_cfg *f)
{
	uint64_t mp = cfg->cells[f->from].max_packet;

	return mp ? (f->size + mp - 1) / mp : 1;
}

uint64_t model_budget_period(const struct rtvio_config *cfg)
{
	uint64_t p = cfg->broker.budget_period_ns;

	return p ? p : MODEL_BUDGET_PERIOD_NS;
}

uint64_t model_write_spacing(const struct rtvio_config *cfg)
{
	return model_budget_period(cfg) / MODEL_WRITES_PER_PERIOD;
}

/* Messages of f released in one budget period P at most, beyond those already
 * pending at its start: ceil(P / T). */
static uint64_t period_msgs(const struct rtvio_config *cfg, const struct rtvio_flow_cfg *f)
{
	if (!f->period_ns)
		return 1;
	return (model_budget_period(cfg) + f->period_ns - 1) / f->period_ns;
}

static uint32_t clamp32(uint64_t n)
{
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

uint32_t model_flow_credits(const struct rtvio_config *cfg, int i)
{
	const struct rtvio_flow_cfg *f = &cfg->flows[i];

	if (f->best_effort || f->vacant || f->type != RTVIO_STREAM)
		return 0;
	return clamp32(pending_msgs(f) + period_msgs(cfg, f));
}

void model_cell_budgets(const struct rtvio_config *cfg, int c, struct model_cell_budget *out)
{
	uint64_t in = model_cell_ingest_budget(cfg, c) + model_cell_allowance(cfg, c);
	uint64_t ctrl = model_cell_allowance(cfg, c);

	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];

		if (f->best_effort || f->vacant)
			continue;
		if (f->from == c)
			in += period_msgs(cfg, f) * msg_packets(cfg, f);
		if (f->to == c && f->type == RTVIO_STREAM) {
			in += period_msgs(cfg, f);
			ctrl += model_flow_credits(cfg, i);
		}
	}
	out->ingest = clamp32(in);
	out->ctrl = clamp32(ctrl);
	out->pieces = model_cell_allowance(cfg, c);
	out->rx_floor = rx_floor(&cfg->cells[c]);
}

uint32_t model_cell_ingest_budget(const struct rtvio_config *cfg, int c)
{
	uint64_t n = MODEL_CELL_SLACK;

	for (int i = 0; i < cfg->nflows && n < MODEL_TX_SLOTS; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];

		/* A vacant slot (run-time capacity) has no ends: from is -1. */
		if (f->best_effort || f->vacant)
			continue;
		if (f->from == c)
			n += pending_msgs(f) * msg_packets(cfg, f);
		if (f->to == c && f->type == RTVIO_STREAM)
			n += pending_msgs(f);
	}
	return (uint32_t)min_u64(n, MODEL_TX_SLOTS);
}

/* Every cell's per-period budgets added up: the work the analysis charges per
 * budget period whatever the cells do. */
static void budget_pools(const struct rtvio_config *cfg, struct model_pools *p)
{
	p->budget_period = model_budget_period(cfg);
	p->budget_ingest = p->budget_ctrl = p->budget_pieces = p->piece_steps = 0;
	for (int i = 0; i < cfg->ncells; i++) {
		struct model_cell_budget mb;
		uint64_t steps;

		model_cell_budgets(cfg, i, &mb);
		p->budget_ingest += mb.ingest;
		p->budget_ctrl += mb.ctrl;
		p->budget_pieces += mb.pieces;
		steps = cfg->broker.chunk ? (mb.rx_floor + cfg->broker.chunk - 1) / cfg->broker.chunk : 1;
		if (steps > p->piece_steps)
			p->piece_steps = steps;
	}
}

/* Pieces a message of `size` bytes travels in: packets of at most packet_size, each
 * cut into RX buffers of rx_payload (one header each). */
static uint64_t msg_pieces(uint64_t size, uint64_t packet_size, uint64_t rx_payload)
{
	uint64_t pk = packet_size ? packet_size : size, rx = rx_payload ? rx_payload : 1;
	uint64_t full = size / pk, rem = size % pk;

	return full * ((pk + rx - 1) / rx) + (rem + rx - 1) / rx;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
	return a && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}

/* Is cell c an end of a real-time flow (to_only: does it receive one)? Its control
 * packets (its short pieces) then ride a real-time flow (analysis/from_config.c). */
static bool rt_end(const struct rtvio_config *cfg, int c, bool to_only)
{
	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];

		if (!f->best_effort && !f->vacant && (f->to == c || (!to_only && f->from == c)))
			return true;
	}
	return false;
}

/* The longest deadline of the real-time flows: a cell's control packet or short piece
 * on one of them is copied by its flow's deadline after the budget released it. */
static uint64_t rt_max_deadline(const struct rtvio_config *cfg)
{
	uint64_t d = 0;

	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];

		if (!f->best_effort && !f->vacant && f->deadline_ns > d)
			d = f->deadline_ns;
	}
	return d;
}

/* The headers of the cells' control packets and short pieces on real-time flows in
 * one regulation period [a, a + pi). The budget limits them when released, the
 * regulator charges them when copied, up to a deadline D later: released in
 * (a - D, a + pi), the budgets of the ceil((pi + D) / P) + 1 budget periods that
 * interval overlaps. */
static uint64_t budget_headers(const struct rtvio_config *cfg, uint64_t pi)
{
	uint64_t p = model_budget_period(cfg), per = 0;
	uint64_t span = sat_add(pi, rt_max_deadline(cfg));

	for (int c = 0; c < cfg->ncells; c++) {
		struct model_cell_budget mb;

		if (cfg->cells[c].vacant)
			continue;
		model_cell_budgets(cfg, c, &mb);
		if (rt_end(cfg, c, false))
			per = sat_add(per, mb.ctrl);
		if (rt_end(cfg, c, true))
			per = sat_add(per, mb.pieces);
	}
	return sat_mul(sat_mul(span / p + (span % p != 0) + 1, per), MODEL_HDR_BYTES);
}

uint64_t model_rt_demand(const struct rtvio_config *cfg)
{
	uint64_t pi = cfg->broker.regulation_period_ns, sum = budget_headers(cfg, pi);

	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];
		struct model_flow mf;
		uint64_t msgs, bytes;

		if (f->best_effort || f->vacant || !f->period_ns)
			continue;
		flow_sizes(cfg, f, &mf);
		/* Copied within one period [a, a + pi) while the flow meets its deadline:
		 * released in (a - D, a + pi), at most floor((pi + D + J) / T) + 1 of them. */
		msgs = (pi + f->deadline_ns + f->jitter_ns) / f->period_ns + 1;
		bytes = sat_add(f->size, sat_mul(MODEL_HDR_BYTES,
						 msg_pieces(f->size, mf.packet_size, mf.rx_payload)));
		sum = sat_add(sum, sat_mul(msgs, bytes));
		/* A stream message's credit update comes back on the flow, one header: a
		 * control packet of its receiver, in budget_headers. */
	}
	return sum;
}

uint64_t model_rt_reserve(const struct rtvio_config *cfg)
{
	uint64_t b = cfg->broker.regulation_budget;

	if (!b)
		return 0;
	return min_u64(model_rt_demand(cfg), b - b / MODEL_BULK_SHARE);
}

static void size_pools(const struct rtvio_config *cfg, struct model_pools *p)
{
	p->ncells = (uint32_t)cfg->ncells;
	p->nflows = (uint32_t)cfg->nflows;
	p->nqueues = 2 * p->nflows + p->ncells;
	p->nconns = 0;
	for (int i = 0; i < cfg->ncells; i++)
		p->nconns += model_cell_connections(cfg, i);
	p->nsyn = 2 * p->nconns;
	p->npkts = p->ncells * MODEL_TX_SLOTS + p->nsyn;
	/* Every configured cell may attach and fill its TX slots (or its ingest
	 * budget), flows or not. */
	p->tx_slots_all = (uint64_t)p->ncells * MODEL_TX_SLOTS;
	p->tx_slots = p->tx_slots_all;
	if (MODEL_INGEST_BUDGETS) {
		p->tx_slots = 0;
		for (int i = 0; i < cfg->ncells; i++)
			p->tx_slots += model_cell_ingest_budget(cfg, i);
	}
	p->run_steps = MODEL_RUN_STEPS;
	budget_pools(cfg, p);
}

static int check(const struct rtvio_config *cfg)
{
	if (cfg->ncells < 0 || (uint32_t)cfg->ncells > MODEL_MAX_CELLS || cfg->nflows < 0 ||
	    cfg->nflows >= INT_MAX / 2)
		return -EINVAL;
	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];

		if (f->from < 0 || f->from >= cfg->ncells || f->to < 0 || f->to >= cfg->ncells)
			return -EINVAL;
	}
	return 0;
}

int model_create(const struct rtvio_config *cfg, struct model **out)
{
	size_t n, bytes;
	struct model *m;
	int r = check(cfg);

	*out = NULL;
	if (r)
		return r;
	n = (size_t)cfg->nflows + 1;
	bytes = sizeof(*m) + n * sizeof(m->flows[0]) + n * sizeof(uint32_t);
	m = calloc(1, bytes);
	if (!m)
		return -ENOMEM;
	m->order = (uint32_t *)(void *)&m->flows[n];
	size_pools(cfg, &m->pools);
	m->default_best_effort = cfg->broker.default_best_effort;
	for (int i = 0; i < cfg->nflows; i++) {
		model_flow_key(&cfg->flows[i], &m->flows[i]);
		flow_sizes(cfg, &cfg->flows[i], &m->flows[i]);
	}
	default_class(cfg, &m->flows[n - 1]);
	sort_by_key(m->flows, m->order, n);
	dense_ranks(m);
	*out = m;
	return 0;
}

void model_destroy(struct model *m)
{
	free(m);
}

uint64_t model_ingest_packet_ns(uint64_t ingest_step_ns)
{
	return ingest_step_ns / MODEL_INGEST_STEP_PACKETS +
	       (ingest_step_ns % MODEL_INGEST_STEP_PACKETS != 0);
}

void model_host_pass(const struct rtvio_config *cfg, struct model_host_pass *p)
{
	uint32_t nflows = 0;

	*p = (struct model_host_pass){ .cell = -1 };
	for (int i = 0; i < cfg->ncells && p->cell < 0; i++)
		if (cfg->cells[i].host)
			p->cell = i;
	if (p->cell < 0)
		return;
	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];
		uint64_t b = f->size < MODEL_HOST_BUF ? f->size : MODEL_HOST_BUF;

		if (f->vacant || (f->from != p->cell && f->to != p->cell))
			continue;
		nflows++;
		p->bytes += 2 * (b > MODEL_HOST_LINE_MIN ? b : MODEL_HOST_LINE_MIN);
	}
	uint32_t conns = model_cell_connections(cfg, p->cell);

	p->bridges = nflows < conns ? nflows : conns;
	p->calls = (uint64_t)p->bridges * MODEL_HOST_BRIDGE_CALLS + MODEL_HOST_ACCEPT_CALLS;
	p->rx_payload = cfg->cells[p->cell].rx_buf;
}
