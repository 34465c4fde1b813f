/* `rtvio calibrate`: the device stop and start that a heavy vhost-user message of a
 * running cell costs the loop (a part of vhost_user_map, docs/platform.md). The
 * daemon's stop hook detaches the cell from the data plane (dp_detach: its queued
 * packets dropped, each of its connections reset at its peer), and once the rings are
 * given again maybe_start re-initialises them and attaches it (dp_attach). One sample
 * is that pair for a cell holding C_DEV_CONNS connections, each on a fresh data plane
 * (calibrate_cell.c's two cells); samples that overlap a host stall are counted, not
 * kept. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate_internal.h"

/* The most connections a cell opens in the shipped configurations' budgets. */
#define C_DEV_CONNS 64u

/* b answers a's REQUEST from port sport (already taken from b's RX ring). */
static int answer(struct ccell *b, uint32_t sport)
{
	return cal_add_tx(b, VSOCK_OP_RESPONSE, C_PORT_B, C_CID_A, sport, C_CID_B, 0, 0);
}

/* a opens C_DEV_CONNS - 1 more connections to b (cal_env_open made the first). */
static int connect_many(struct crun *r)
{
	struct ccell *a = &r->c[0], *b = &r->c[1];
	unsigned int n = C_DEV_CONNS - 1, got = 0;
	struct vsock_hdr h;
	uint64_t seq;
	bool k;
	int ret = cal_post_rx(b, n, &k);

	for (unsigned int i = 1; !ret && i <= n; i++)
		ret = cal_add_tx(a, VSOCK_OP_REQUEST, C_PORT_A + i, C_CID_B, C_PORT_B, C_CID_A, 0, 0);
	if (ret)
		return ret;
	vq_driver_publish(&a->drv[1]);
	cal_run_idle(r->dp);
	while (!ret && cal_take_rx(b, &h, &seq) == 1) {
		if (h.op != VSOCK_OP_REQUEST)
			return -EPROTO;
		ret = answer(b, h.src_port);
		got++;
	}
	if (ret || got != n || (ret = cal_post_rx(a, n, &k)))
		return ret ? ret : -EPROTO;
	vq_driver_publish(&b->drv[1]);
	cal_run_idle(r->dp);
	for (got = 0; cal_take_rx(a, &h, &seq) == 1; got++)
		if (h.op != VSOCK_OP_RESPONSE)
			return -EPROTO;
	cal_take_tx(a);
	cal_take_tx(b);
	return got == n ? 0 : -EPROTO;
}

/* One timed stop and start of cell a. */
static int restart(struct crun *r, uint64_t *t0, uint64_t *ns)
{
	int ret;

	*t0 = cal_now_ns();
	dp_detach(r->dp, 0);
	ret = cal_cell_reset(&r->c[0]);
	if (!ret)
		ret = dp_attach(r->dp, 0, &r->c[0].dev[0], &r->c[0].dev[1]);
	*ns = cal_now_ns() - *t0;
	return ret;
}

int cal_device_run(struct crun *r, struct gapprobe *gp, size_t want, struct cal_dist *out,
		   char *err, size_t errlen)
{
	double *v = malloc((want ? want : 1) * sizeof(*v));
	size_t n = 0, stalled = 0;
	int ret = v ? 0 : -ENOMEM;

	while (!ret && n + stalled < want) {
		struct rtvio_config cfg;
		struct gap_overlap ov;
		uint64_t t0, ns;

		ret = cal_env_open(r, &cfg, 4096, false, err, errlen);
		if (ret)
			break;
		ret = connect_many(r);
		if (!ret)
			ret = restart(r, &t0, &ns);
		cal_env_close(r, &cfg);
		if (ret) {
			snprintf(err, errlen, "device restart run: %s", strerror(-ret));
			break;
		}
		gapprobe_query(gp, t0, t0 + ns, &ov);
		if (ov.count)
			stalled++;
		else
			v[n++] = (double)ns;
	}
	if (!ret)
		ret = cal_dist_make(v, n, stalled, true, out);
	free(v);
	return ret;
}
