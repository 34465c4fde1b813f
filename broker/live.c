/* The broker's live configuration (live.h). */
#include "live.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

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

/* Flows and workloads of the compact copy, their cell and flow indexes renumbered
 * through cmap (live cell -> compact) and fmap (live flow -> compact, -1 dropped). */
static void compact_flows(const struct rtvio_config *live, const int *cmap, int *fmap,
			  const char *drop_cell, const char *drop_flow, struct rtvio_config *out)
{
	for (int f = 0; f < live->nflows; f++) {
		struct rtvio_flow_cfg *o;

		fmap[f] = -1;
		if (!flow_kept(live, f, drop_cell, drop_flow))
			continue;
		fmap[f] = out->nflows;
		o = &out->flows[out->nflows++];
		*o = live->flows[f];
		o->from = cmap[o->from];
		o->to = cmap[o->to];
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

int live_compact(const struct rtvio_config *live, const char *drop_cell, const char *drop_flow,
		 struct rtvio_config *out)
{
	int *cmap = calloc((size_t)live->ncells + 1, sizeof(int));
	int *fmap = calloc((size_t)live->nflows + 1, sizeof(int));

	*out = *live;
	out->ncells = out->nflows = out->nworkloads = 0;
	out->cells = calloc((size_t)live->ncells + 1, sizeof(*live->cells));
	out->flows = calloc((size_t)live->nflows + 1, sizeof(*live->flows));
	out->workloads = calloc((size_t)live->nworkloads + 1, sizeof(*live->workloads));
	out->remotes = copy_array(live->remotes, live->nremotes, live->nremotes,
				  sizeof(*live->remotes));
	if (!cmap || !fmap || !out->cells || !out->flows || !out->workloads || !out->remotes) {
		free(cmap);
		free(fmap);
		rtvio_config_free(out);
		return -ENOMEM;
	}
	for (int i = 0; i < live->ncells; i++) {
		cmap[i] = -1;
		if (live->cells[i].vacant || (drop_cell && !strcmp(live->cells[i].name, drop_cell)))
			continue;
		cmap[i] = out->ncells;
		out->cells[out->ncells++] = live->cells[i];
	}
	compact_flows(live, cmap, fmap, drop_cell, drop_flow, out);
	free(cmap);
	free(fmap);
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
