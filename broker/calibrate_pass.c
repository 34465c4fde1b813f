/* `rtvio calibrate`: the ingest pass (dp_run over a full TX ring whose packets'
 * destination has no RX buffers, so nothing is copied), and the daemon's gap between
 * two data-plane runs. Both single-threaded, with the gap probe on the other cpu. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "calibrate_internal.h"

/* One timed pass over npk packets on a's TX ring (b has no RX buffers, so nothing
 * is copied), then the packets are let through and checked. */
static int one_pass(struct crun *r, struct gapprobe *gp, unsigned int npk, double *ns,
		    bool *stalled)
{
	uint64_t t0, t1;
	struct gap_overlap ov;
	unsigned int rx = 0;
	bool kk;
	int ret = 0;

	usleep(C_BREATHE_US);
	for (unsigned int p = 0; p < npk && !ret; p++)
		ret = cal_add_tx(&r->c[0], VSOCK_OP_RW, C_PORT_A, C_CID_B, C_PORT_B, C_CID_A, 64, p);
	if (ret)
		return ret;
	vq_driver_publish(&r->c[0].drv[1]);
	t0 = cal_now_ns();
	dp_run(r->dp, t0);
	t1 = cal_now_ns();
	gapprobe_query(gp, t0, t1, &ov);
	*stalled = ov.count > 0;
	*ns = (double)(t1 - t0);
	while (rx < npk && !ret) {
		struct vsock_hdr h;
		uint64_t seq;
		int t;

		/* Exactly as many as there are packets: the next pass must again find
		 * no RX buffer. */
		unsigned int more = npk - rx < C_QSIZE / 2 ? npk - rx : C_QSIZE / 2;

		if ((ret = cal_post_rx(&r->c[1], more, &kk)))
			break;
		cal_run_idle(r->dp);
		while ((t = cal_take_rx(&r->c[1], &h, &seq)) == 1) {
			if (seq != rx++)
				t = -EPROTO;
		}
		if (t < 0)
			ret = t;
	}
	if (!ret && cal_take_tx(&r->c[0]) != npk)
		ret = -EPROTO;
	return ret;
}

/* The longest pass: a full ring, `want` times. Every fourth time also passes over 1
 * and 32 packets, for a line of pass time against packets that lets a reader scale
 * the value to a configuration with more pending packets. */
int cal_ingest_pass_run(struct crun *r, struct gapprobe *gp, size_t want,
			   struct cal_results *res, char *err, size_t errlen)
{
	static const unsigned int fills[] = { 1, 32 };
	struct rtvio_config cfg;
	size_t cap = want + 2 * (want / 4 + 1);
	double *v = malloc(want * sizeof(*v));
	double *x = malloc(cap * sizeof(*x)), *y = malloc(cap * sizeof(*y));
	size_t n = 0, nf = 0, stalled = 0;
	int ret = -ENOMEM;

	if (!v || !x || !y)
		goto free;
	/* poll = no: the pass then also re-arms kicks on the drained ring. */
	ret = cal_env_open(r, &cfg, 4096, false, err, errlen);
	if (ret)
		goto free;
	r->ts = NULL;
	for (size_t i = 0; i < want && !ret; i++) {
		double ns;
		bool st;

		ret = one_pass(r, gp, C_QSIZE, &ns, &st);
		if (ret)
			break;
		if (st) {
			stalled++;
		} else {
			v[n++] = ns;
			x[nf] = C_QSIZE;
			y[nf++] = ns;
		}
		for (size_t f = 0; f < 2 && !ret && i % 4 == 0; f++) {
			ret = one_pass(r, gp, fills[f], &ns, &st);
			if (!ret && !st) {
				x[nf] = fills[f];
				y[nf++] = ns;
			}
		}
	}
	res->ingest_ring = C_QSIZE;
	if (!ret)
		ret = cal_dist_make(v, n, stalled, true, &res->ingest_step);
	if (!ret)
		ret = fit_linear(x, y, nf, &res->ingest_fit);
	if (ret)
		snprintf(err, errlen, "ingest-pass run: %s", strerror(-ret));
	cal_env_close(r, &cfg);
free:
	free(v);
	free(x);
	free(y);
	return ret;
}

/* ---- the daemon's gap between data-plane runs ---- */

/* Between two runs of up to DP_RUN_STEPS steps the daemon asks epoll, without
 * waiting, for what happened meanwhile, and handles it. With work pending on every
 * side, that is a full batch of events: kicks (edge-triggered eventfds, counted and
 * never read). Timed here as the daemon does it: one epoll_pwait2 with a zero
 * timeout returning BATCH_EVENTS ready eventfds, and a pass over them. */
#define BATCH_EVENTS 32	/* the daemon's MAX_EVENTS */

int cal_batch_gap_run(struct gapprobe *gp, size_t want, struct cal_dist *out, char *err,
			 size_t errlen)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), fds[BATCH_EVENTS];
	double *v = malloc(want * sizeof(*v));
	size_t n = 0, stalled = 0;
	uint64_t one = 1, seen = 0;
	int ret = 0, nfd = 0;

	if (ep < 0 || !v) {
		ret = v ? -errno : -ENOMEM;
		goto out;
	}
	for (; nfd < BATCH_EVENTS; nfd++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = (uint32_t)nfd };

		fds[nfd] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (fds[nfd] < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fds[nfd], &ev)) {
			ret = -errno;
			if (fds[nfd] >= 0)
				close(fds[nfd]);
			goto out;
		}
	}
	while (n + stalled < want) {
		struct epoll_event evs[BATCH_EVENTS];
		struct timespec zero = { 0, 0 };
		struct gap_overlap ov;
		uint64_t t0, t1;
		int k;

		/* Every fd signalled anew: a new edge each, as a kick after the last. */
		for (int i = 0; i < nfd; i++)
			if (write(fds[i], &one, sizeof(one)) < 0) {
				ret = -errno;
				goto out;
			}
		t0 = cal_now_ns();
		k = epoll_pwait2(ep, evs, BATCH_EVENTS, &zero, NULL);
		for (int i = 0; i < k; i++)
			seen += evs[i].data.u32 + 1u;
		t1 = cal_now_ns();
		if (k != nfd) {
			ret = k < 0 ? -errno : -EPROTO;
			goto out;
		}
		gapprobe_query(gp, t0, t1, &ov);
		if (ov.count)
			stalled++;
		else
			v[n++] = (double)(t1 - t0);
	}
	ret = cal_dist_make(v, n, stalled, true, out);
out:
	if (ret)
		snprintf(err, errlen, "batch-gap run: %s%s", strerror(-ret),
			 seen ? "" : " (no event seen)");
	for (int i = 0; i < nfd; i++)
		close(fds[i]);
	if (ep >= 0)
		close(ep);
	free(v);
	return ret;
}
