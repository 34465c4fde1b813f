/* The broker's live configuration (live.h). */
#include "live.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "model.h"

static void *copy_array(const void *src, int n, int cap, size_t elem)
{
	void *a = calloc(cap > 0 ? (size_t)cap : 1, elem);

	if (a && n > 0)
		memcpy(a, src, (size_t)n * elem);
	return a;
}

int live_create(const struct rtvio_config *in, struct rtvio_config *out)
{
	int cc = in->broker.max_cells > in->ncells ? in->broker.max_cells : in->ncells;
	int fc = in->broker.max_flows > in->nflows ? in->broker.max_flows : in->nflows;

	*out = *in;
	out->cells = copy_array(in->cells, in->ncells, cc, sizeof(*in->cells));
	out->flows = copy_array(in->flows, in->nflows, fc, sizeof(*in->flows));
	/* A slot per flow slot: a flow has at most one workload, and one added at run
	 * time then needs no allocation (admit.c). */
	out->workloads = copy_array(in->workloads, in->nworkloads,
				    fc > in->nworkloads ? fc : in->nworkloads,
				    sizeof(*in->workloads));
	/* Its own copy: rtvio_config_free frees the remotes of both. */
	out->remotes = copy_array(in->remotes, in->nremotes, in->nremotes, sizeof(*in->remotes));
	if (!out->cells || !out->flows || !out->workloads || !out->remotes) {
		rtvio_config_free(out);
		return -ENOMEM;
	}
	for (int i = in->ncells; i < cc; i++)
		out->cells[i].vacant = true;
	for (int i = in->nflows; i < fc; i++) {
		out->flows[i].vacant = true;
		out->flows[i].from = out->flows[i].to = -1;
	}
	out->ncells = cc;
	out->nflows = fc;
	out->broker.max_cells = cc;
	out->broker.max_flows = fc;
	return 0;
}

int live_count_cells(const struct rtvio_config *live)
{
	int n = 0;

	for (int i = 0; i < live->ncells; i++)
		n += !live->cells[i].vacant;
	return n;
}

int live_count_flows(const struct rtvio_config *live)
{
	int n = 0;

	for (int i = 0; i < live->nflows; i++)
		n += !live->flows[i].vacant;
	return n;
}

static bool flow_kept(const struct rtvio_config *live, int f, const char *drop_cell,
		      const char *drop_flow)
{
	const struct rtvio_flow_cfg *fl = &live->flows[f];

	if (fl->vacant || (drop_flow && !strcmp(fl->name, drop_flow)))
		return false;
	return !drop_cell || (strcmp(live->cells[fl->from].name, drop_cell) &&
			      strcmp(live->cells[fl->to].name, drop_cell));
}

/* Remotes of the compact copy: the gateway renumbered through cmap, and a remote
 * whose gateway is dropped dropped with it (rmap: live remote -> compact, -1), so
 * that no remote names a vacant slot (the dump would write `gateway = `). */
static void compact_remotes(const struct rtvio_config *live, const int *cmap, int *rmap,
			    struct rtvio_config *out)
{
	out->nremotes = 0;
	for (int r = 0; r < live->nremotes; r++) {
		int g = cmap[live->remotes[r].gateway];

		rmap[r] = g < 0 ? -1 : out->nremotes;
		if (g < 0)
			continue;
		out->remotes[out->nremotes] = live->remotes[r];
		out->remotes[out->nremotes++].gateway = g;
	}
}

/* Flows and workloads of the compact copy, their cell, remote and flow indexes
 * renumbered through cmap (live cell -> compact), rmap (live remote -> compact) and
 * fmap (live flow -> compact, -1 dropped). */
static void compact_flows(const struct rtvio_config *live, const int *cmap, const int *rmap,
			  int *fmap, const char *drop_cell, const char *drop_flow,
			  struct rtvio_config *out)
{
	for (int f = 0; f < live->nflows; f++) {
		int rem = live->flows[f].rem.remote;
		struct rtvio_flow_cfg *o;

		fmap[f] = -1;
		/* A flow of a dropped remote ends on its gateway: dropped with it anyway. */
		if (!flow_kept(live, f, drop_cell, drop_flow) || (rem >= 0 && rmap[rem] < 0))
			continue;
		fmap[f] = out->nflows;
		o = &out->flows[out->nflows++];
		*o = live->flows[f];
		o->from = cmap[o->from];
		o->to = cmap[o->to];
		o->rem.remote = rem >= 0 ? rmap[rem] : -1;
		o->traffic.workload = -1;
	}
	for (int w = 0; w < live->nworkloads; w++) {
		struct rtvio_workload_cfg *o;

		if (fmap[live->workloads[w].flow] < 0)
			continue;
		o = &out->workloads[out->nworkloads];
		*o = live->workloads[w];
		o->flow = fmap[o->flow];
		out->flows[o->flow].traffic.workload = out->nworkloads++;
	}
}

/* The cells present, in slot order. On several cores each keeps its core as
 * broker_core: a cell without one is served by the core of its slot
 * (model_cell_core), and compacting moves the index that would otherwise pick it. */
static void compact_cells(const struct rtvio_config *live, const char *drop_cell, int *cmap,
			  struct rtvio_config *out)
{
	for (int i = 0; i < live->ncells; i++) {
		cmap[i] = -1;
		if (live->cells[i].vacant || (drop_cell && !strcmp(live->cells[i].name, drop_cell)))
			continue;
		cmap[i] = out->ncells;
		out->cells[out->ncells] = live->cells[i];
		if (live->broker.ncores > 1)
			out->cells[out->ncells].broker_core = model_cell_core(live, i);
		out->ncells++;
	}
}

int live_compact(const struct rtvio_config *live, const char *drop_cell, const char *drop_flow,
		 struct rtvio_config *out)
{
	int *cmap = calloc((size_t)live->ncells + 1, sizeof(int));
	int *fmap = calloc((size_t)live->nflows + 1, sizeof(int));
	int *rmap = calloc((size_t)live->nremotes + 1, sizeof(int));

	*out = *live;
	out->ncells = out->nflows = out->nworkloads = 0;
	out->cells = calloc((size_t)live->ncells + 1, sizeof(*live->cells));
	out->flows = calloc((size_t)live->nflows + 1, sizeof(*live->flows));
	out->workloads = calloc((size_t)live->nworkloads + 1, sizeof(*live->workloads));
	out->remotes = copy_array(live->remotes, live->nremotes, live->nremotes,
				  sizeof(*live->remotes));
	if (!cmap || !fmap || !rmap || !out->cells || !out->flows || !out->workloads ||
	    !out->remotes) {
		free(cmap);
		free(fmap);
		free(rmap);
		rtvio_config_free(out);
		return -ENOMEM;
	}
	compact_cells(live, drop_cell, cmap, out);
	compact_remotes(live, cmap, rmap, out);
	compact_flows(live, cmap, rmap, fmap, drop_cell, drop_flow, out);
	free(cmap);
	free(fmap);
	free(rmap);
	return 0;
}

char *live_dump(const struct rtvio_config *live, bool capacity)
{
	struct rtvio_config c;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	if (live_compact(live, NULL, NULL, &c))
		return NULL;
	if (!capacity)
		c.broker.max_cells = c.broker.max_flows = 0;
	f = open_memstream(&text, &len);
	rc = f ? rtvio_config_dump(&c, f) : -ENOMEM;
	if (f && fclose(f))
		rc = -EIO;
	rtvio_config_free(&c);
	if (rc) {
		free(text);
		return NULL;
	}
	return text;
}
