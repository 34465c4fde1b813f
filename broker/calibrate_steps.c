/* `rtvio calibrate`: copy steps. dp_run reads its clock once after every copy step
 * and nowhere else (dataplane.h), so the clock hook sees the end of each step; the
 * interval between two reads inside one dp_run call is one step plus the ingest pass
 * before it. The first interval of a call also holds the call's first ingest pass
 * and is dropped. Which step is which follows from the chunk, the packet size and RX
 * buffers large enough for a whole packet (one piece per packet). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "calibrate_internal.h"

/* One batch of `batch` packets of `pkt` bytes on a's TX ring, with as many RX
 * buffers at b. */
static int batch_post(struct crun *r, unsigned int batch, uint32_t pkt)
{
	bool kk;
	int ret;

	usleep(C_BREATHE_US);
	if ((ret = cal_post_rx(&r->c[1], batch, &kk)))
		return ret;
	/* Both cells wait for the batch (receiver for data, sender for its
	 * buffers): the first completion of each then costs the data plane a
	 * notification and the hook an eventfd write, as in the daemon. */
	vq_driver_enable_cb(&r->c[1].drv[0]);
	vq_driver_enable_cb(&r->c[0].drv[1]);
	for (unsigned int i = 0; i < batch; i++) {
		ret = cal_add_tx(&r->c[0], VSOCK_OP_RW, C_PORT_A, C_CID_B, C_PORT_B, C_CID_A,
				 pkt, i);
		if (ret)
			return ret;
	}
	vq_driver_publish(&r->c[0].drv[1]);
	return 0;
}

/* dp_run until the batch is through, recording where each call started among the
 * clock reads. */
static int batch_run(struct crun *r)
{
	r->nts = 0;
	for (;;) {
		uint64_t t = cal_now_ns(), next;

		if (r->nts < r->ts_cap) {
			r->ts[r->nts] = t;
			r->ts_start[r->nts++] = 1;
		}
		next = dp_run(r->dp, t);
		if (!next)
			break;
	}
	return r->nts >= r->ts_cap ? -ENOBUFS : 0;
}

/* The batch's steps into out: every interval between two clock reads inside one
 * dp_run call, the step's size following from its place in its packet. Adds the
 * number taken to *got. */
static int batch_samples(struct crun *r, struct gapprobe *gp, uint32_t chunk, uint32_t pkt,
			 size_t nsteps, struct stepset *out, size_t *got, char *err,
			 size_t errlen)
{
	uint32_t spp = (pkt + chunk - 1) / chunk;
	size_t k = 0;

	/* Every step reads the clock once: anything else means the data plane
	 * did not do what this run assumes. */
	for (size_t i = 0; i < r->nts; i++)
		k += !r->ts_start[i];
	if (k != nsteps) {
		snprintf(err, errlen, "copy-step run: %zu clock reads for %zu steps "
			 "(chunk %u, packet %u)", k, nsteps, chunk, pkt);
		return -EPROTO;
	}
	k = 0;
	for (size_t i = 0; i < r->nts; i++) {
		uint32_t idx;
		struct gap_overlap ov;

		if (r->ts_start[i])
			continue;
		idx = (uint32_t)(k++ % spp);
		if (r->ts_start[i - 1])
			continue;
		if (out->n == out->cap) {
			snprintf(err, errlen, "copy-step run: sample storage full");
			return -ENOBUFS;
		}
		gapprobe_query(gp, r->ts[i - 1], r->ts[i], &ov);
		out->s[out->n++] = (struct cal_step){
			.bytes = idx + 1 < spp ? chunk : pkt - (spp - 1) * chunk,
			.last = idx + 1 == spp, .stalled = ov.count > 0,
			.ns = (double)(r->ts[i] - r->ts[i - 1]) };
		(*got)++;
	}
	return 0;
}

/* Integrity: every packet arrived, at its length, in order, once, with the right
 * bytes at both ends. */
static int batch_check(struct crun *r, unsigned int batch, uint32_t pkt, char *err,
		       size_t errlen)
{
	unsigned int rx = 0;

	for (;;) {
		struct vsock_hdr h;
		uint64_t seq;
		int t = cal_take_rx(&r->c[1], &h, &seq);

		if (t < 0 || (t == 1 && (h.op != VSOCK_OP_RW || h.len != pkt ||
					 (pkt >= 8 && seq != rx)))) {
			snprintf(err, errlen, "copy-step run: packet %u arrived damaged", rx);
			return -EPROTO;
		}
		if (!t)
			break;
		rx++;
	}
	if (rx != batch || cal_take_tx(&r->c[0]) != batch) {
		snprintf(err, errlen, "copy-step run: %u of %u packets delivered", rx, batch);
		return -EPROTO;
	}
	return 0;
}

int cal_steps_run(struct crun *r, struct gapprobe *gp, uint64_t *ts_buf, uint32_t chunk,
		  uint32_t pkt, size_t want, struct stepset *out, char *err, size_t errlen)
{
	struct rtvio_config cfg;
	uint32_t spp = (pkt + chunk - 1) / chunk;
	unsigned int batch = 32;
	size_t got = 0;
	int ret;

	ret = cal_env_open(r, &cfg, chunk, true, err, errlen);
	if (ret)
		return ret;
	r->ts = ts_buf;
	r->write_call = true;
	while (got < want) {
		if ((ret = batch_post(r, batch, pkt)) || (ret = batch_run(r)))
			break;
		ret = batch_samples(r, gp, chunk, pkt, (size_t)batch * spp, out, &got, err,
				    errlen);
		if (!ret)
			ret = batch_check(r, batch, pkt, err, errlen);
		if (ret)
			goto out;
	}
	if (ret)
		snprintf(err, errlen, "copy-step run: %s", strerror(-ret));
out:
	r->write_call = false;
	cal_env_close(r, &cfg);
	return ret;
}
