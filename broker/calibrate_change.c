/* `rtvio calibrate`: the apply step of a run-time change (broker/admit.c). Between
 * two data-plane runs the broker adds or removes the change's cells and flows one at
 * a time (dp_cell_add, dp_cell_remove, dp_flow_add, dp_flow_remove), and each visits
 * at most model_change_op_slots() slots of the tables sized for the capacity. One
 * sample is one such operation's time divided by the slots it may visit: what the
 * analysis charges per slot visit (change_step). Samples alternate between two
 * capacities: a small one, where the fixed costs weigh most per slot, and a large one,
 * whose tables no longer fit the caches as well. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate_internal.h"
#include "model.h"

struct cap {
	struct rtvio_config cfg;
	struct dp *dp;
	uint64_t slots;
	unsigned ncells, nflows;
};

static const unsigned cap_cells[2] = { 4, 32 }, cap_flows[2] = { 8, 128 };

/* cells c0.. in a ring of flows f0.. (64 B every 10 ms, each on its own port). */
static int cap_open(struct cap *c, unsigned ncells, unsigned nflows, char *err, size_t errlen)
{
	size_t len = 256 + 64 * (size_t)ncells + 128 * (size_t)nflows, n;
	char *ini = malloc(len), cerr[256];
	int ret;

	memset(c, 0, sizeof(*c));
	if (!ini)
		return -ENOMEM;
	n = (size_t)snprintf(ini, len, "[broker]\ndefault = deny\n");
	for (unsigned i = 0; i < ncells; i++)
		n += (size_t)snprintf(ini + n, len - n, "[cell c%u]\ncid = %u\n", i, 3 + i);
	for (unsigned j = 0; j < nflows; j++)
		n += (size_t)snprintf(ini + n, len - n,
				      "[flow f%u]\nfrom = c%u\nto = c%u:%u\ntype = seqpacket\n"
				      "size = 64\nperiod = 10ms\n", j, j % ncells,
				      (j + 1) % ncells, 1000 + j);
	ret = rtvio_config_parse(ini, "calibrate-change", &c->cfg, cerr, sizeof(cerr));
	free(ini);
	if (ret) {
		snprintf(err, errlen, "internal configuration refused: %s", cerr);
		return -EINVAL;
	}
	ret = dp_create(&c->cfg, &(struct dp_hooks){ 0 }, NULL, &c->dp);
	if (ret) {
		snprintf(err, errlen, "cannot create the data plane: %s", strerror(-ret));
		rtvio_config_free(&c->cfg);
		return ret;
	}
	c->slots = model_change_op_slots(&c->cfg);
	c->ncells = ncells;
	c->nflows = nflows;
	return 0;
}

static void cap_close(struct cap *c)
{
	if (c->dp)
		dp_destroy(c->dp);
	rtvio_config_free(&c->cfg);
}

/* Operation k of capacity c, timed: k even removes, k odd adds again what k - 1
 * removed; every fourth pair is a cell's, the others a flow's. */
static int cap_op(struct cap *c, size_t k, uint64_t *ns)
{
	size_t pair = k / 2;
	bool cell = pair % 4 == 3;
	unsigned idx = (unsigned)(pair % (cell ? c->ncells : c->nflows));
	uint64_t t0 = cal_now_ns();
	int ret = 0;

	if (cell && !(k & 1))
		dp_cell_remove(c->dp, idx);
	else if (cell)
		ret = dp_cell_add(c->dp, idx);
	else if (!(k & 1))
		dp_flow_remove(c->dp, idx);
	else
		ret = dp_flow_add(c->dp, idx);
	*ns = cal_now_ns() - t0;
	return ret;
}

int cal_change_run(struct gapprobe *gp, size_t want, struct cal_dist *out, char *err,
		   size_t errlen)
{
	struct cap caps[2];
	double *v = malloc(want * sizeof(*v));
	size_t n = 0, stalled = 0, k = 0;
	int ret = v ? 0 : -ENOMEM;

	memset(caps, 0, sizeof(caps));
	for (int i = 0; i < 2 && !ret; i++)
		ret = cap_open(&caps[i], cap_cells[i], cap_flows[i], err, errlen);
	while (!ret && n + stalled < want) {
		struct cap *c = &caps[(k / 8) % 2];
		struct gap_overlap ov;
		uint64_t t0 = cal_now_ns(), ns;

		ret = cap_op(c, k++, &ns);
		if (ret) {
			snprintf(err, errlen, "change run: a table refused an operation: %s",
				 strerror(-ret));
			break;
		}
		gapprobe_query(gp, t0, t0 + ns, &ov);
		if (ov.count)
			stalled++;
		else
			v[n++] = (double)ns / (double)c->slots;
	}
	if (!ret)
		ret = cal_dist_make(v, n, stalled, true, out);
	for (int i = 0; i < 2; i++)
		cap_close(&caps[i]);
	free(v);
	return ret;
}
