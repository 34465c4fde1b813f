/* `rtvio calibrate`: the measurement. The real data plane (dp_run, unchanged) runs
 * against two synthetic process cells: core's driver side over memfd regions, as
 * cell/port_posix lays them out, with the data plane on the device side exactly as
 * the daemon attaches it. Nothing here is on a real-time path: it allocates freely
 * before and after each timed run, never inside one.
 *
 * What is timed, and how (docs/platform.md, "Calibrating the platform costs"):
 * - copy steps: dp_run reads its clock once after every copy step and nowhere else
 *   (dataplane.h), so the clock hook sees the end of each step; the interval between
 *   two reads inside one dp_run call is one step plus the ingest pass before it. The
 *   first interval of a call also holds the call's first ingest pass and is dropped.
 *   Which step is which follows from the chunk, the packet size and RX buffers large
 *   enough for a whole packet (one piece per packet).
 * - the ingest pass: dp_run over a TX ring holding a full ring of packets whose
 *   destination has no RX buffers, so nothing is copied: one pass that takes every
 *   packet, one copy attempt that finds no buffer, one empty pass.
 * - ingest latency: a sender thread stamps each packet just before it publishes and
 *   kicks; the broker thread stamps the dp_run call whose pass took it.
 * - notify latency: the notify hook stamps the notification (and, with poll = no,
 *   writes the call eventfd as the daemon does); the receiver thread stamps the moment
 *   it holds the used buffer.
 * Host stalls: during single-threaded runs a gap probe spins on the other cpu; a
 * spinning thread (poll = yes) is its own probe and records its own gaps. Sleeping
 * runs (poll = no) have no probe: one would keep a cpu awake and make every wake-up
 * look faster than it is. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../platform/gapprobe.h"
#include "calibrate.h"
#include "dataplane.h"
#include "virtq.h"
#include "vsock.h"

#define C_QSIZE 128u			/* what QEMU and cell/ use */
#define C_BUF (65536u + VSOCK_HDR_SIZE)	/* a whole 64 KiB packet with its header */
#define C_GPA 0x100000000ull
#define C_CID_A 3u
#define C_CID_B 4u
#define C_PORT_A 2000u
#define C_PORT_B 1000u
#define C_GAP_NS 10000u			/* a gap longer than this is a stall */
#define C_MAX_GAPS 65536u
#define C_PERIOD_NS 250000u		/* latency runs: one packet per period */
#define C_BREATHE_US 200u		/* pause between timed batches */
#define C_ROUNDS 8u			/* copy-step kinds take turns this many times */

/* One synthetic process cell. The region is shared memory in the real sense: the
 * driver side (this file, one thread at a time) writes descriptors, buffers and the
 * avail ring; the data plane (device side, through dev[]) writes the used ring and
 * RX buffers. Everything else here is the harness's own. */
struct ccell {
	uint8_t *region;
	size_t size;
	struct vq_mem_region mem;
	struct vq_ring ring[2];
	struct vq_driver drv[2];
	struct vq_drv_slot slot[2][C_QSIZE];
	struct vq_device dev[2];
	uint64_t inflight[2][VQ_INFLIGHT_WORDS(C_QSIZE)];
	size_t rx_off, tx_off;
	unsigned int rx_next, tx_next;
	int kick[2];	/* cell -> broker */
	int call[2];	/* broker -> cell */
};

/* A list of gaps one spinning thread saw in its own execution, in time order. */
struct gaplog {
	struct gap *g;
	size_t n, cap;
};

struct crun {
	struct dp *dp;
	struct ccell *c;	/* [2]: a sends, b receives */
	/* step runs: every clock read of dp_run, and where calls started */
	uint64_t *ts;
	uint8_t *ts_start;
	size_t nts, ts_cap;
	/* notify runs (broker thread only) */
	uint64_t *t_notify;
	size_t n_samples;
	uint64_t cur_seq;
	bool rec_notify;
	bool write_call;
	const char *copy;	/* [broker] copy */
};

static uint64_t now_ns(void)
{
	return gapprobe_now();
}

static uint64_t hook_now(void *ctx)
{
	struct crun *r = ctx;
	uint64_t t = now_ns();

	if (r->ts && r->nts < r->ts_cap) {
		r->ts[r->nts] = t;
		r->ts_start[r->nts++] = 0;
	}
	return t;
}

static void hook_notify(void *ctx, unsigned int cell, unsigned int queue)
{
	struct crun *r = ctx;
	uint64_t one = 1;

	if (r->rec_notify && cell == 1 && queue == DP_QUEUE_RX && r->cur_seq < r->n_samples &&
	    !r->t_notify[r->cur_seq])
		r->t_notify[r->cur_seq] = now_ns();
	/* As the daemon does: the cost of the wake-up is part of a step's cost. */
	if (r->write_call && write(r->c[cell].call[queue], &one, sizeof(one)) < 0) {
		/* counter full: the cell only loses a wake-up it does not wait for */
	}
}

static void hook_broken(void *ctx, unsigned int cell, int err)
{
	(void)ctx;
	fprintf(stderr, "rtvio calibrate: the data plane found cell %u's ring broken (%s)\n",
		cell, strerror(-err));
}

static const struct dp_hooks cal_hooks = { .notify = hook_notify, .broken = hook_broken,
					   .now = hook_now };

static uint64_t feat(void)
{
	return 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX;
}

static int cell_open(struct ccell *c)
{
	struct vq_layout l;
	size_t rings;
	int fd;

	memset(c, 0, sizeof(*c));
	for (int q = 0; q < 2; q++)
		c->kick[q] = c->call[q] = -1;
	if (vq_layout(C_QSIZE, &l))
		return -EINVAL;
	rings = 2 * ((l.total + 4095) & ~(size_t)4095);
	c->rx_off = rings;
	c->tx_off = rings + (size_t)C_QSIZE * C_BUF;
	c->size = (c->tx_off + (size_t)C_QSIZE * C_BUF + 4095) & ~(size_t)4095;
	fd = memfd_create("rtvio-calibrate-cell", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)c->size) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	c->region = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	close(fd);
	if (c->region == MAP_FAILED) {
		c->region = NULL;
		return -errno;
	}
	c->mem = (struct vq_mem_region){ .gpa = C_GPA, .size = c->size, .host = c->region };
	for (int q = 0; q < 2; q++) {
		c->kick[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		c->call[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (c->kick[q] < 0 || c->call[q] < 0)
			return -errno;
	}
	return 0;
}

static void cell_close(struct ccell *c)
{
	if (c->region)
		munmap(c->region, c->size);
	for (int q = 0; q < 2; q++) {
		if (c->kick[q] >= 0)
			close(c->kick[q]);
		if (c->call[q] >= 0)
			close(c->call[q]);
	}
	memset(c, 0, sizeof(*c));
}

/* Fresh rings on both sides (a new data plane starts from index 0). */
static int cell_reset(struct ccell *c)
{
	struct vq_layout l;
	size_t off = 0;
	uint64_t v;

	if (vq_layout(C_QSIZE, &l))
		return -EINVAL;
	for (int q = 0; q < 2; q++) {
		if (vq_ring_at(&c->ring[q], c->region + off, C_QSIZE) ||
		    vq_driver_init(&c->drv[q], &c->ring[q], c->slot[q], feat()) ||
		    vq_device_init(&c->dev[q], &c->ring[q], &c->mem, 1, c->inflight[q], feat(), 0))
			return -EINVAL;
		off += (l.total + 4095) & ~(size_t)4095;
		while (read(c->kick[q], &v, sizeof(v)) > 0 || read(c->call[q], &v, sizeof(v)) > 0)
			;
	}
	c->rx_next = c->tx_next = 0;
	return 0;
}

static void kick(struct ccell *c, unsigned int q)
{
	uint64_t one = 1;

	if (write(c->kick[q], &one, sizeof(one)) < 0) {
		/* counter full: a kick is pending anyway */
	}
}

/* Posts n RX buffers (each takes a whole packet); true when the broker wants a kick. */
static int post_rx(struct ccell *c, unsigned int n, bool *want_kick)
{
	for (unsigned int i = 0; i < n; i++) {
		unsigned int s = c->rx_next++ % C_QSIZE;
		struct vq_buf in = { .addr = C_GPA + c->rx_off + (uint64_t)s * C_BUF, .len = C_BUF };
		int r = vq_driver_add(&c->drv[0], NULL, 0, &in, 1, (void *)(uintptr_t)(s + 1));

		if (r)
			return r;
	}
	*want_kick = vq_driver_publish(&c->drv[0]);
	return 0;
}

static int add_tx(struct ccell *c, uint16_t op, uint32_t sport, uint32_t dcid, uint32_t dport,
		  uint32_t scid, uint32_t len, uint64_t seq)
{
	unsigned int s = c->tx_next++ % C_QSIZE;
	uint8_t *b = c->region + c->tx_off + (size_t)s * C_BUF;
	struct vsock_hdr h = { .src_cid = scid, .dst_cid = dcid, .src_port = sport,
			       .dst_port = dport, .type = VSOCK_TYPE_STREAM, .op = op,
			       .len = len, .buf_alloc = 1u << 20 };
	struct vq_buf out = { .addr = C_GPA + c->tx_off + (uint64_t)s * C_BUF,
			      .len = VSOCK_HDR_SIZE + len };

	vsock_hdr_encode(&h, b);
	/* The sequence number at both ends of the payload: the receiver checks both. */
	if (len >= sizeof(seq)) {
		memcpy(b + VSOCK_HDR_SIZE, &seq, sizeof(seq));
		memcpy(b + VSOCK_HDR_SIZE + len - sizeof(seq), &seq, sizeof(seq));
	}
	return vq_driver_add(&c->drv[1], &out, 1, NULL, 0, b);
}

/* One used RX buffer: 1 with its header and the sequence number its payload
 * carries, 0 none, or a negative error (also when the two copies of the sequence
 * number differ: a piece went missing or was misplaced). */
static int take_rx(struct ccell *c, struct vsock_hdr *h, uint64_t *seq)
{
	void *tok;
	uint32_t len;
	int r = vq_driver_get_used(&c->drv[0], &tok, &len);
	const uint8_t *b;

	if (r <= 0)
		return r;
	b = c->region + c->rx_off + ((uintptr_t)tok - 1) * C_BUF;
	if (len < VSOCK_HDR_SIZE)
		return -EPROTO;
	vsock_hdr_decode(h, b);
	if (h->len != len - VSOCK_HDR_SIZE)
		return -EPROTO;
	*seq = 0;
	if (h->len >= sizeof(*seq)) {
		uint64_t tail;

		memcpy(seq, b + VSOCK_HDR_SIZE, sizeof(*seq));
		memcpy(&tail, b + VSOCK_HDR_SIZE + h->len - sizeof(tail), sizeof(tail));
		if (tail != *seq)
			return -EPROTO;
	}
	return 1;
}

static unsigned int take_tx(struct ccell *c)
{
	unsigned int n = 0;
	void *tok;
	uint32_t len;

	while (vq_driver_get_used(&c->drv[1], &tok, &len) == 1)
		n++;
	return n;
}

static void run_idle(struct dp *dp)
{
	uint64_t t, next;

	do {
		t = now_ns();
		next = dp_run(dp, t);
	} while (next && next <= t);
}

/* A data plane over the two cells (chunk bytes, poll mode, copy routine), with the
 * connection a:2000 -> b:1000 set up through it. */
static int env_open(struct crun *r, struct rtvio_config *cfg, uint64_t chunk, bool poll,
		    char *err, size_t errlen)
{
	char ini[512], cerr[256];
	struct vsock_hdr h;
	uint64_t seq;
	bool k;
	int ret;

	snprintf(ini, sizeof(ini),
		 "[broker]\nchunk = %llu\npoll = %s\ncopy = %s\ndefault = best-effort\n"
		 "[cell a]\ncid = %u\nrx_buf = 64KiB\n[cell b]\ncid = %u\nrx_buf = 64KiB\n",
		 (unsigned long long)chunk, poll ? "yes" : "no", r->copy, C_CID_A, C_CID_B);
	if (rtvio_config_parse(ini, "calibrate", cfg, cerr, sizeof(cerr))) {
		snprintf(err, errlen, "internal configuration refused: %s", cerr);
		return -EINVAL;
	}
	ret = dp_create(cfg, &cal_hooks, r, &r->dp);
	if (ret) {
		snprintf(err, errlen, "cannot create the data plane: %s", strerror(-ret));
		rtvio_config_free(cfg);
		return ret;
	}
	for (unsigned int i = 0; i < 2; i++) {
		if ((ret = cell_reset(&r->c[i])) ||
		    (ret = dp_attach(r->dp, i, &r->c[i].dev[0], &r->c[i].dev[1])))
			goto fail;
	}
	if ((ret = post_rx(&r->c[0], 4, &k)) || (ret = post_rx(&r->c[1], 4, &k)) ||
	    (ret = add_tx(&r->c[0], VSOCK_OP_REQUEST, C_PORT_A, C_CID_B, C_PORT_B, C_CID_A, 0, 0)))
		goto fail;
	vq_driver_publish(&r->c[0].drv[1]);
	run_idle(r->dp);
	if (take_rx(&r->c[1], &h, &seq) != 1 || h.op != VSOCK_OP_REQUEST) {
		ret = -EPROTO;
		goto fail;
	}
	if ((ret = add_tx(&r->c[1], VSOCK_OP_RESPONSE, C_PORT_B, C_CID_A, C_PORT_A, C_CID_B, 0, 0)))
		goto fail;
	vq_driver_publish(&r->c[1].drv[1]);
	run_idle(r->dp);
	if (take_rx(&r->c[0], &h, &seq) != 1 || h.op != VSOCK_OP_RESPONSE) {
		ret = -EPROTO;
		goto fail;
	}
	take_tx(&r->c[0]);
	take_tx(&r->c[1]);
	return 0;
fail:
	snprintf(err, errlen, "connection set-up through the data plane failed: %s",
		 strerror(-ret));
	dp_destroy(r->dp);
	r->dp = NULL;
	rtvio_config_free(cfg);
	return ret < 0 ? ret : -EPROTO;
}

static void env_close(struct crun *r, struct rtvio_config *cfg)
{
	dp_destroy(r->dp);
	r->dp = NULL;
	rtvio_config_free(cfg);
}

static int pin(int cpu, bool fifo)
{
	cpu_set_t set;
	int e;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	e = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (e)
		return -e;
	if (fifo) {
		struct sched_param sp = { .sched_priority = 80 };

		/* Best effort: without the privilege the numbers include other load. */
		pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	} else {
		struct sched_param sp = { .sched_priority = 0 };

		pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
	}
	return 0;
}

static void pin_restore(const cpu_set_t *old)
{
	struct sched_param sp = { .sched_priority = 0 };

	pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
	pthread_setaffinity_np(pthread_self(), sizeof(*old), old);
}

/* ---- progress ---- */

/* Rough time of an ingest pass and of a latency sample, in copy steps (each ~30 us
 * with the pauses between batches), so that the bar moves with the clock. */
#define W_PASS 15.0
#define W_LAT 10.0

struct prog {
	const struct cal_opts *o;
	double done, total;
};

static void progress(struct prog *p, double add, const char *phase)
{
	p->done += add;
	if (p->o->progress)
		p->o->progress(p->o->progress_ctx, p->total > 0 ? p->done / p->total : 1, phase);
}

/* ---- copy steps ---- */

static const uint32_t chunk_sizes[] = { 64, 256, 1024, 4096, 16384, 65536 };
#define N_CHUNKS (sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))

struct stepset {
	struct cal_step *s;
	size_t n, cap;
};

/* Runs packets of `pkt` bytes through a data plane with chunk `chunk` until `want`
 * steps were timed. */
static int steps_run(struct crun *r, struct gapprobe *gp, uint64_t *ts_buf, uint32_t chunk,
		     uint32_t pkt, size_t want, struct stepset *out, char *err, size_t errlen)
{
	struct rtvio_config cfg;
	uint32_t spp = (pkt + chunk - 1) / chunk;
	unsigned int batch = 32;
	size_t got = 0;
	int ret;

	ret = env_open(r, &cfg, chunk, true, err, errlen);
	if (ret)
		return ret;
	r->ts = ts_buf;
	r->write_call = true;
	while (got < want) {
		size_t nsteps = (size_t)batch * spp, k = 0;
		unsigned int rx = 0;
		bool kk;

		usleep(C_BREATHE_US);
		if ((ret = post_rx(&r->c[1], batch, &kk)))
			break;
		/* Both cells wait for the batch (receiver for data, sender for its
		 * buffers): the first completion of each then costs the data plane a
		 * notification and the hook an eventfd write, as in the daemon. */
		vq_driver_enable_cb(&r->c[1].drv[0]);
		vq_driver_enable_cb(&r->c[0].drv[1]);
		for (unsigned int i = 0; i < batch; i++) {
			ret = add_tx(&r->c[0], VSOCK_OP_RW, C_PORT_A, C_CID_B, C_PORT_B, C_CID_A,
				     pkt, i);
			if (ret)
				break;
		}
		if (ret)
			break;
		vq_driver_publish(&r->c[0].drv[1]);
		r->nts = 0;
		for (;;) {
			uint64_t t = now_ns(), next;

			if (r->nts < r->ts_cap) {
				r->ts[r->nts] = t;
				r->ts_start[r->nts++] = 1;
			}
			next = dp_run(r->dp, t);
			if (!next)
				break;
		}
		if (r->nts >= r->ts_cap) {
			ret = -ENOBUFS;
			break;
		}
		/* Every step reads the clock once: anything else means the data plane
		 * did not do what this run assumes. */
		for (size_t i = 0; i < r->nts; i++)
			k += !r->ts_start[i];
		if (k != nsteps) {
			snprintf(err, errlen, "copy-step run: %zu clock reads for %zu steps "
				 "(chunk %u, packet %u)", k, nsteps, chunk, pkt);
			ret = -EPROTO;
			goto out;
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
				ret = -ENOBUFS;
				goto out;
			}
			gapprobe_query(gp, r->ts[i - 1], r->ts[i], &ov);
			out->s[out->n++] = (struct cal_step){
				.bytes = idx + 1 < spp ? chunk : pkt - (spp - 1) * chunk,
				.last = idx + 1 == spp, .stalled = ov.count > 0,
				.ns = (double)(r->ts[i] - r->ts[i - 1]) };
			got++;
		}
		/* Integrity: every packet arrived, at its length, in order, once, with
		 * the right bytes at both ends. */
		for (;;) {
			struct vsock_hdr h;
			uint64_t seq;
			int t = take_rx(&r->c[1], &h, &seq);

			if (t < 0 || (t == 1 && (h.op != VSOCK_OP_RW || h.len != pkt ||
						 (pkt >= 8 && seq != rx)))) {
				snprintf(err, errlen, "copy-step run: packet %u arrived damaged", rx);
				ret = -EPROTO;
				goto out;
			}
			if (!t)
				break;
			rx++;
		}
		if (rx != batch || take_tx(&r->c[0]) != batch) {
			snprintf(err, errlen, "copy-step run: %u of %u packets delivered", rx, batch);
			ret = -EPROTO;
			goto out;
		}
	}
	if (ret)
		snprintf(err, errlen, "copy-step run: %s", strerror(-ret));
out:
	r->write_call = false;
	env_close(r, &cfg);
	return ret;
}

/* ---- the ingest pass ---- */

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
		ret = add_tx(&r->c[0], VSOCK_OP_RW, C_PORT_A, C_CID_B, C_PORT_B, C_CID_A, 64, p);
	if (ret)
		return ret;
	vq_driver_publish(&r->c[0].drv[1]);
	t0 = now_ns();
	dp_run(r->dp, t0);
	t1 = now_ns();
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

		if ((ret = post_rx(&r->c[1], more, &kk)))
			break;
		run_idle(r->dp);
		while ((t = take_rx(&r->c[1], &h, &seq)) == 1) {
			if (seq != rx++)
				t = -EPROTO;
		}
		if (t < 0)
			ret = t;
	}
	if (!ret && take_tx(&r->c[0]) != npk)
		ret = -EPROTO;
	return ret;
}

/* The longest pass: a full ring, `want` times. Every fourth time also passes over 1
 * and 32 packets, for a line of pass time against packets that lets a reader scale
 * the value to a configuration with more pending packets. */
static int ingest_pass_run(struct crun *r, struct gapprobe *gp, size_t want,
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
	ret = env_open(r, &cfg, 4096, false, err, errlen);
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
	env_close(r, &cfg);
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

static int batch_gap_run(struct gapprobe *gp, size_t want, struct cal_dist *out, char *err,
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
		t0 = now_ns();
		k = epoll_pwait2(ep, evs, BATCH_EVENTS, &zero, NULL);
		for (int i = 0; i < k; i++)
			seen += evs[i].data.u32 + 1u;
		t1 = now_ns();
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

/* ---- latency runs (two threads) ---- */

struct lat {
	struct crun *r;
	bool poll;
	bool notify;	/* notify run; else ingest run */
	int broker_cpu, other_cpu;
	size_t n;
	uint64_t *t_a;	/* ingest: kick; notify: receiver running */
	uint64_t *t_b;	/* ingest: broker saw it */
	atomic_size_t progress;	/* samples completed (receiver / broker side) */
	atomic_bool stop;
	atomic_int err;
	struct gaplog glog[2];	/* broker, cell thread (poll = yes only) */
};

static void gaplog_note(struct gaplog *l, uint64_t *prev, uint64_t t)
{
	if (t - *prev > C_GAP_NS && l->n < l->cap)
		l->g[l->n++] = (struct gap){ .start_ns = *prev, .len_ns = t - *prev };
	*prev = t;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000u),
			       .tv_nsec = (long)(t % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void wait_fds(const int *fds, unsigned int n, int timeout_ms)
{
	struct pollfd p[2];
	uint64_t v;

	for (unsigned int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	if (poll(p, n, timeout_ms) > 0) {
		for (unsigned int i = 0; i < n; i++) {
			if (p[i].revents & POLLIN)
				while (read(fds[i], &v, sizeof(v)) > 0)
					;
		}
	}
}

/* Ingest run, cell side: a periodic sender that also keeps b's RX ring stocked. */
static void *ingest_sender(void *arg)
{
	struct lat *L = arg;
	struct ccell *a = &L->r->c[0], *b = &L->r->c[1];
	uint64_t next = now_ns() + C_PERIOD_NS;
	bool kk;

	pin(L->other_cpu, true); /* it sleeps between packets */
	for (size_t k = 0; k < L->n && !atomic_load(&L->stop); k++) {
		struct vsock_hdr h;
		uint64_t seq;
		unsigned int got = 0;
		int t;

		sleep_until(next);
		/* One packet at a time (see notify_broker). */
		while (atomic_load(&L->progress) < k && !atomic_load(&L->stop))
			sleep_until(now_ns() + 20000);
		next = now_ns() + C_PERIOD_NS;
		while ((t = take_rx(b, &h, &seq)) == 1)
			got++;
		if (t < 0 || (got && post_rx(b, got, &kk))) {
			atomic_store(&L->err, -EPROTO);
			break;
		}
		if (got && kk)
			kick(b, DP_QUEUE_RX);
		take_tx(a);
		if (add_tx(a, VSOCK_OP_RW, C_PORT_A, C_CID_B, C_PORT_B, C_CID_A, 64, k)) {
			atomic_store(&L->err, -ENOSPC);
			break;
		}
		L->t_a[k] = now_ns();
		if (vq_driver_publish(&a->drv[1]))
			kick(a, DP_QUEUE_TX);
	}
	return NULL;
}

/* Ingest run, broker side: dp_run as the daemon runs it; stamps the pass that took
 * each packet. */
static void *ingest_broker(void *arg)
{
	struct lat *L = arg;
	struct dp *dp = L->r->dp;
	int fds[2] = { L->r->c[0].kick[DP_QUEUE_TX], L->r->c[1].kick[DP_QUEUE_RX] };
	struct dp_cell_stats st;
	uint64_t base, prev = now_ns();
	size_t seen = 0;

	pin(L->broker_cpu, !L->poll);
	dp_stats_cell(dp, 0, &st);
	base = st.pkts_in;
	while (seen < L->n && !atomic_load_explicit(&L->stop, memory_order_relaxed)) {
		uint64_t t;

		if (!L->poll)
			wait_fds(fds, 2, 10);
		t = now_ns();
		if (L->poll)
			gaplog_note(&L->glog[0], &prev, t);
		dp_run(dp, t);
		dp_stats_cell(dp, 0, &st);
		while (seen < L->n && base + seen < st.pkts_in)
			L->t_b[seen++] = t;
		atomic_store_explicit(&L->progress, seen, memory_order_relaxed);
	}
	return NULL;
}

/* Notify run, broker side: the sender's part is played here too (a's driver side is
 * this thread's), so that the cell cpu holds only the receiver. */
static void *notify_broker(void *arg)
{
	struct lat *L = arg;
	struct crun *r = L->r;
	struct ccell *a = &r->c[0];
	int fds[1] = { r->c[1].kick[DP_QUEUE_RX] };
	uint64_t next_send = now_ns() + C_PERIOD_NS, prev = now_ns(), give_up = 0;
	size_t k = 0;

	pin(L->broker_cpu, !L->poll);
	while (!atomic_load_explicit(&L->stop, memory_order_relaxed)) {
		uint64_t t = now_ns();

		if (L->poll)
			gaplog_note(&L->glog[0], &prev, t);
		/* One packet at a time: each sample sees an otherwise idle data plane, and
		 * a receiver held up by other load never fills the rings. */
		if (k < L->n && t >= next_send && atomic_load(&L->progress) >= k) {
			take_tx(a);
			if (add_tx(a, VSOCK_OP_RW, C_PORT_A, C_CID_B, C_PORT_B, C_CID_A, 64, k)) {
				atomic_store(&L->err, -ENOSPC);
				break;
			}
			vq_driver_publish(&a->drv[1]);
			r->cur_seq = k++;
			next_send += C_PERIOD_NS;
			if (next_send < t)
				next_send = t + C_PERIOD_NS;
			if (k == L->n)
				give_up = t + 2000000000ull;
		}
		dp_run(r->dp, t);
		if (k == L->n && (atomic_load(&L->progress) >= L->n || t > give_up))
			break;
		if (!L->poll) {
			uint64_t now = now_ns();
			int ms = now >= next_send ? 0 : (int)((next_send - now) / 1000000u);

			if (now < next_send && ms == 0) {
				sleep_until(next_send);
				continue;
			}
			wait_fds(fds, 1, k == L->n ? 10 : ms);
		}
	}
	return NULL;
}

/* Notify run, cell side: takes each delivered buffer and stamps it. */
static void *notify_receiver(void *arg)
{
	struct lat *L = arg;
	struct ccell *b = &L->r->c[1];
	uint64_t prev = now_ns();
	size_t got = 0;

	pin(L->other_cpu, !L->poll);
	while (got < L->n && !atomic_load_explicit(&L->stop, memory_order_relaxed)) {
		struct vsock_hdr h;
		uint64_t seq, t;
		bool kk;
		int rr;

		/* A spinning receiver is its own probe: a long time between two turns of
		 * this loop is a stall (noted before looking, so that a stall right
		 * before a buffer arrives is seen). */
		if (L->poll)
			gaplog_note(&L->glog[1], &prev, now_ns());
		rr = take_rx(b, &h, &seq);
		if (rr < 0) {
			atomic_store(&L->err, rr);
			break;
		}
		if (rr == 1) {
			t = now_ns();
			if (seq < L->n)
				L->t_a[seq] = t;
			got++;
			atomic_store(&L->progress, got);
			if (post_rx(b, 1, &kk)) {
				atomic_store(&L->err, -ENOSPC);
				break;
			}
			if (kk)
				kick(b, DP_QUEUE_RX);
			/* Ask for the notification even when spinning: its hook is the
			 * broker-side stamp. */
			vq_driver_enable_cb(&b->drv[0]);
			continue;
		}
		if (L->poll)
			continue;
		if (vq_driver_enable_cb(&b->drv[0]))
			continue;
		{
			int fds[1] = { b->call[DP_QUEUE_RX] };

			wait_fds(fds, 1, 10);
		}
	}
	return NULL;
}

static void overlap_any(const struct lat *L, uint64_t t0, uint64_t t1, bool *stalled)
{
	for (int i = 0; i < 2; i++) {
		struct gap_overlap ov;

		gaps_overlapping(L->glog[i].g, L->glog[i].n, t0, t1, &ov);
		if (ov.count)
			*stalled = true;
	}
}

static int latency_run(struct crun *r, const struct cal_opts *o, bool notify, bool poll,
		       size_t n, struct cal_dist *out, struct cal_results *res,
		       struct prog *pr, char *err, size_t errlen)
{
	struct rtvio_config cfg;
	struct lat L;
	pthread_t tb, tc;
	double *v = NULL, *all = NULL;
	size_t kept = 0, stalled = 0;
	bool kk, check = poll;
	int ret, e;
	const char *what = notify ? "notify-latency" : "ingest-latency";

	memset(&L, 0, sizeof(L));
	L.r = r;
	L.poll = poll;
	L.notify = notify;
	L.broker_cpu = o->broker_cpu;
	L.other_cpu = o->other_cpu;
	L.n = n;
	L.t_a = calloc(n, sizeof(uint64_t));
	L.t_b = calloc(n, sizeof(uint64_t));
	v = malloc(n * sizeof(*v));
	all = malloc(n * sizeof(*all));
	for (int i = 0; i < 2; i++) {
		L.glog[i].cap = C_MAX_GAPS;
		L.glog[i].g = malloc(C_MAX_GAPS * sizeof(struct gap));
	}
	r->t_notify = L.t_b;
	if (!L.t_a || !L.t_b || !v || !all || !L.glog[0].g || !L.glog[1].g) {
		ret = -ENOMEM;
		snprintf(err, errlen, "%s run: out of memory", what);
		goto free;
	}
	ret = env_open(r, &cfg, 4096, poll, err, errlen);
	if (ret)
		goto free;
	r->ts = NULL;
	r->n_samples = n;
	r->cur_seq = 0;
	r->rec_notify = notify;
	r->write_call = notify && !poll;
	ret = post_rx(&r->c[1], C_QSIZE / 2, &kk);
	if (ret)
		goto close;
	if (notify)
		vq_driver_enable_cb(&r->c[1].drv[0]);
	if (pthread_create(&tb, NULL, notify ? notify_broker : ingest_broker, &L)) {
		ret = -EAGAIN;
		goto close;
	}
	if (pthread_create(&tc, NULL, notify ? notify_receiver : ingest_sender, &L)) {
		atomic_store(&L.stop, true);
		pthread_join(tb, NULL);
		ret = -EAGAIN;
		goto close;
	}
	{
		size_t last = 0;
		uint64_t idle_since = now_ns();

		for (;;) {
			size_t p = atomic_load(&L.progress);

			if (p >= n || atomic_load(&L.err))
				break;
			if (p != last) {
				progress(pr, W_LAT * (double)(p - last), what);
				last = p;
				idle_since = now_ns();
			} else if (now_ns() - idle_since > 5000000000ull) {
				break; /* nothing moved for 5 s: report what is missing */
			}
			usleep(20000);
		}
		progress(pr, W_LAT * (double)(n - last), what);
	}
	atomic_store(&L.stop, true);
	pthread_join(tc, NULL);
	pthread_join(tb, NULL);
	e = atomic_load(&L.err);
	if (e) {
		ret = e;
		snprintf(err, errlen, "%s run (poll = %s): %s", what, poll ? "yes" : "no",
			 strerror(-e));
		goto close;
	}
	for (size_t k = 0; k < n; k++) {
		/* ingest: t_a kick, t_b seen; notify: t_b notified, t_a running */
		uint64_t t0 = notify ? L.t_b[k] : L.t_a[k], t1 = notify ? L.t_a[k] : L.t_b[k];
		bool st = false;

		/* A receiver that is running (spinning, or still busy with the previous
		 * buffer) may take the buffer between the push and the broker's notify
		 * decision, which then rightly sends none: it needed no notification, a
		 * latency of 0. */
		if (notify && !t0 && t1)
			t0 = t1;
		if (!t0 || !t1) {
			snprintf(err, errlen, "%s run (poll = %s): sample %zu of %zu never completed",
				 what, poll ? "yes" : "no", k, n);
			ret = -ETIMEDOUT;
			goto close;
		}
		if (poll)
			overlap_any(&L, t0 < t1 ? t0 : t1, t1 > t0 ? t1 : t0 + 1, &st);
		/* Seen within the pass that started just before the publication: 0. */
		all[k] = t1 > t0 ? (double)(t1 - t0) : 0;
		if (st)
			stalled++;
		else
			v[kept++] = all[k];
	}
	if (!kept) {
		/* Every sample overlapped a gap: the machine is too busy (or too slow, as
		 * under a sanitizer) for its loops to tell stalls apart. Keep them all,
		 * which can only raise the values, and say so. */
		fprintf(stderr, "rtvio calibrate: %s (poll = %s): every sample overlapped a "
			"recorded gap; keeping them all (the machine is too busy to tell host "
			"stalls apart)\n", what, poll ? "yes" : "no");
		memcpy(v, all, n * sizeof(*v));
		kept = n;
		stalled = 0;
		check = false;
	}
	for (int i = 0; i < 2; i++) {
		res->gaps += L.glog[i].n;
		for (size_t g = 0; g < L.glog[i].n; g++) {
			if (L.glog[i].g[g].len_ns > res->longest_gap_ns)
				res->longest_gap_ns = L.glog[i].g[g].len_ns;
		}
	}
	ret = cal_dist_make(v, kept, stalled, check, out);
	if (ret)
		snprintf(err, errlen, "%s run (poll = %s): %s", what, poll ? "yes" : "no",
			 strerror(-ret));
close:
	r->rec_notify = false;
	r->write_call = false;
	env_close(r, &cfg);
free:
	r->t_notify = NULL;
	free(L.t_a);
	free(L.t_b);
	free(v);
	free(all);
	free(L.glog[0].g);
	free(L.glog[1].g);
	return ret;
}

/* ---- the cost of waking a cell ---- */

/* A notification to a cell that waits costs the broker more than the eventfd write
 * the step runs time (nobody waits there): the write does the wake-up's work, and on
 * a VM the cross-cpu interrupt, inside the step that delivers a piece. Here a thread
 * on the other cpu waits in read(), as a receiving cell's thread waits for its
 * notification, and the broker's cpu times each write that wakes it. */
struct wake {
	int fd;
	int cpu;
	atomic_ulong woken;
	atomic_bool stop;
};

static void *wake_waiter(void *arg)
{
	struct wake *w = arg;
	uint64_t v;

	if (pin(w->cpu, true)) {
		/* unpinned: it still waits and wakes, only maybe on the broker's cpu */
	}
	while (!atomic_load(&w->stop)) {
		if (read(w->fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
			atomic_fetch_add(&w->woken, 1);
	}
	return NULL;
}

static int wake_run(const struct cal_opts *o, size_t want, struct cal_dist *out,
		    struct prog *pr, char *err, size_t errlen)
{
	struct wake w = { .cpu = o->other_cpu };
	double *v = malloc(want * sizeof(*v));
	pthread_t t;
	uint64_t one = 1;
	size_t n = 0, last = 0;
	int ret;

	w.fd = eventfd(0, EFD_CLOEXEC);
	if (!v || w.fd < 0) {
		ret = v ? -errno : -ENOMEM;
		snprintf(err, errlen, "wake-up run: %s", strerror(-ret));
		goto out;
	}
	if ((ret = -pthread_create(&t, NULL, wake_waiter, &w))) {
		snprintf(err, errlen, "wake-up run: cannot start the waiter: %s", strerror(-ret));
		goto out;
	}
	while (n < want) {
		struct timespec pause = { 0, C_PERIOD_NS };
		uint64_t t0, t1;

		/* Let the waiter go back to sleep in read() (and its cpu idle). */
		while (atomic_load(&w.woken) < n)
			sched_yield();
		nanosleep(&pause, NULL);
		t0 = now_ns();
		if (write(w.fd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
			ret = -errno;
			snprintf(err, errlen, "wake-up run: eventfd write: %s", strerror(-ret));
			break;
		}
		t1 = now_ns();
		v[n++] = (double)(t1 - t0);
		if (n - last >= 256) {
			progress(pr, W_LAT * (double)(n - last), "wake-up cost");
			last = n;
		}
	}
	progress(pr, W_LAT * (double)(n - last), "wake-up cost");
	atomic_store(&w.stop, true);
	if (write(w.fd, &one, sizeof(one)) < 0) {
		/* the counter cannot be full here: the waiter drains it */
	}
	pthread_join(t, NULL);
	/* Sleeping runs have no stall probe: one would keep the waiter's cpu awake. */
	if (!ret && (ret = cal_dist_make(v, n, 0, false, out)))
		snprintf(err, errlen, "wake-up run: no usable samples");
out:
	if (w.fd >= 0)
		close(w.fd);
	free(v);
	return ret;
}

int cal_measure(const struct cal_opts *o, struct cal_results *res, char *err, size_t errlen)
{
	struct ccell cells[2];
	struct crun r;
	struct gapprobe gp;
	struct gap *gaps = NULL;
	uint64_t *ts_buf = NULL;
	struct stepset ss = { 0 };
	size_t want_steps = o->quick ? CAL_STEPS_QUICK : CAL_STEPS_FULL;
	size_t want_pass = o->quick ? CAL_PASSES_QUICK : CAL_PASSES_FULL;
	size_t want_lat = o->quick ? CAL_LAT_QUICK : CAL_LAT_FULL;
	struct prog pr = { .o = o };
	bool probing = false;
	cpu_set_t old;
	int ret;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	memset(cells, 0, sizeof(cells));
	for (int i = 0; i < 2; i++)
		cells[i].kick[0] = cells[i].kick[1] = cells[i].call[0] = cells[i].call[1] = -1;
	r.c = cells;
	r.copy = o->copy ? o->copy : "normal";
	pr.total = (double)(2 * N_CHUNKS - 1) * (double)want_steps + W_PASS * (double)want_pass +
		   5.0 * W_LAT * (double)want_lat;
	pthread_getaffinity_np(pthread_self(), sizeof(old), &old);
	for (int i = 0; i < 2; i++) {
		ret = cell_open(&cells[i]);
		if (ret) {
			snprintf(err, errlen, "cannot set up a cell's memory: %s", strerror(-ret));
			goto out;
		}
	}
	/* each run may overshoot its share by one batch (32 packets of 8 chunks) */
	ss.cap = (2 * N_CHUNKS) * (want_steps + C_ROUNDS * (C_ROUNDS + 300));
	ss.s = malloc(ss.cap * sizeof(*ss.s));
	r.ts_cap = 1u << 16;
	ts_buf = malloc(r.ts_cap * sizeof(*ts_buf));
	r.ts_start = malloc(r.ts_cap);
	gaps = malloc(C_MAX_GAPS * sizeof(*gaps));
	if (!ss.s || !ts_buf || !r.ts_start || !gaps) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ret = gapprobe_start(&gp, gaps, C_MAX_GAPS, C_GAP_NS, o->other_cpu, NULL, NULL);
	if (ret) {
		snprintf(err, errlen, "cannot start the gap probe on cpu %d: %s", o->other_cpu,
			 strerror(-ret));
		goto out;
	}
	probing = true;
	/* SCHED_FIFO keeps other processes off the measured cpu; the runs sleep
	 * between batches, so RT throttling (95 %) never cuts into a step. */
	ret = pin(o->broker_cpu, true);
	if (ret) {
		snprintf(err, errlen, "cannot pin to cpu %d: %s", o->broker_cpu, strerror(-ret));
		goto out;
	}
	progress(&pr, 0, "copy steps");
	/* Rounds over every kind rather than one kind after another: interference
	 * comes in bursts (another process, another guest), and a burst should raise
	 * every size a little rather than one size a lot, which would tilt the fit. */
	for (unsigned int round = 0; round < C_ROUNDS; round++) {
		for (size_t i = 0; i < N_CHUNKS; i++) {
			uint32_t k = chunk_sizes[i];
			uint32_t many = 8 * k < 65536 ? 8 * k : 65536;
			size_t before = ss.n, part = (want_steps + C_ROUNDS - 1) / C_ROUNDS;

			ret = steps_run(&r, &gp, ts_buf, k, k, part, &ss, err, errlen);
			if (!ret && many > k)
				ret = steps_run(&r, &gp, ts_buf, k, many, part, &ss, err, errlen);
			if (ret)
				goto out;
			progress(&pr, (double)(ss.n - before), "copy steps");
		}
	}
	ret = cal_fit_steps(ss.s, ss.n, &res->steps);
	if (ret) {
		snprintf(err, errlen, "no copy cost follows from the steps measured (%s)",
			 strerror(-ret));
		goto out;
	}
	ret = ingest_pass_run(&r, &gp, want_pass, res, err, errlen);
	if (!ret)
		ret = batch_gap_run(&gp, want_pass, &res->batch_gap, err, errlen);
	if (ret)
		goto out;
	progress(&pr, W_PASS * (double)want_pass, "ingest pass");
	gapprobe_stop(&gp);
	probing = false;
	res->gaps = gapprobe_count(&gp);
	for (size_t g = 0; g < res->gaps && g < C_MAX_GAPS; g++) {
		if (gaps[g].len_ns > res->longest_gap_ns)
			res->longest_gap_ns = gaps[g].len_ns;
	}
	/* Still on the broker's cpu at its priority, with the probe's cpu now free. */
	ret = wake_run(o, want_lat, &res->wake_write, &pr, err, errlen);
	if (ret)
		goto out;
	/* The latency runs place their own threads; this one only watches. */
	pin_restore(&old);
	for (int notify = 0; notify < 2; notify++) {
		for (int poll = 1; poll >= 0; poll--) {
			struct cal_dist *d = notify ? &res->notify_lat[poll] : &res->ingest_lat[poll];

			ret = latency_run(&r, o, notify, poll, want_lat, d, res, &pr, err, errlen);
			if (ret)
				goto out;
		}
	}
out:
	if (probing)
		gapprobe_stop(&gp);
	pin_restore(&old);
	free(ss.s);
	free(ts_buf);
	free(r.ts_start);
	free(gaps);
	for (int i = 0; i < 2; i++)
		cell_close(&cells[i]);
	return ret;
}
