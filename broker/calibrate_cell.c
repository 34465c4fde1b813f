/* `rtvio calibrate`: two synthetic process cells (core's driver side over memfd
 * regions, laid out as cell/port_posix lays them out) and the real data plane over
 * them, attached as the daemon attaches it; thread placement and progress. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "calibrate_internal.h"

uint64_t cal_now_ns(void)
{
	return gapprobe_now();
}

static uint64_t hook_now(void *ctx)
{
	struct crun *r = ctx;
	uint64_t t = cal_now_ns();

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
		r->t_notify[r->cur_seq] = cal_now_ns();
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

int cal_cell_open(struct ccell *c)
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

void cal_cell_close(struct ccell *c)
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
int cal_cell_reset(struct ccell *c)
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

void cal_kick(struct ccell *c, unsigned int q)
{
	uint64_t one = 1;

	if (write(c->kick[q], &one, sizeof(one)) < 0) {
		/* counter full: a kick is pending anyway */
	}
}

/* Posts n RX buffers (each takes a whole packet); true when the broker wants a kick. */
int cal_post_rx(struct ccell *c, unsigned int n, bool *want_kick)
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

int cal_add_tx(struct ccell *c, uint16_t op, uint32_t sport, uint32_t dcid, uint32_t dport,
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
int cal_take_rx(struct ccell *c, struct vsock_hdr *h, uint64_t *seq)
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

unsigned int cal_take_tx(struct ccell *c)
{
	unsigned int n = 0;
	void *tok;
	uint32_t len;

	while (vq_driver_get_used(&c->drv[1], &tok, &len) == 1)
		n++;
	return n;
}

void cal_run_idle(struct dp *dp)
{
	uint64_t t, next;

	do {
		t = cal_now_ns();
		next = dp_run(dp, t);
	} while (next && next <= t);
}

/* A data plane over the two cells (chunk bytes, poll mode, copy routine), with the
 * connection a:2000 -> b:1000 set up through it. */
int cal_env_open(struct crun *r, struct rtvio_config *cfg, uint64_t chunk, bool poll,
		    char *err, size_t errlen)
{
	char ini[512], cerr[256];
	struct vsock_hdr h;
	uint64_t seq;
	bool k;
	int ret;

	/* The largest allowance: calibrate times steps and passes back to back, which
	 * the cells' per-period budgets would otherwise spread over periods. */
	snprintf(ini, sizeof(ini),
		 "[broker]\nchunk = %llu\npoll = %s\ncopy = %s\ndefault = best-effort\n"
		 "[cell a]\ncid = %u\nrx_buf = 64KiB\nallowance = 65535\n"
		 "[cell b]\ncid = %u\nrx_buf = 64KiB\nallowance = 65535\n",
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
		if ((ret = cal_cell_reset(&r->c[i])) ||
		    (ret = dp_attach(r->dp, i, &r->c[i].dev[0], &r->c[i].dev[1])))
			goto fail;
	}
	if ((ret = cal_post_rx(&r->c[0], 4, &k)) || (ret = cal_post_rx(&r->c[1], 4, &k)) ||
	    (ret = cal_add_tx(&r->c[0], VSOCK_OP_REQUEST, C_PORT_A, C_CID_B, C_PORT_B, C_CID_A, 0, 0)))
		goto fail;
	vq_driver_publish(&r->c[0].drv[1]);
	cal_run_idle(r->dp);
	if (cal_take_rx(&r->c[1], &h, &seq) != 1 || h.op != VSOCK_OP_REQUEST) {
		ret = -EPROTO;
		goto fail;
	}
	if ((ret = cal_add_tx(&r->c[1], VSOCK_OP_RESPONSE, C_PORT_B, C_CID_A, C_PORT_A, C_CID_B, 0, 0)))
		goto fail;
	vq_driver_publish(&r->c[1].drv[1]);
	cal_run_idle(r->dp);
	if (cal_take_rx(&r->c[0], &h, &seq) != 1 || h.op != VSOCK_OP_RESPONSE) {
		ret = -EPROTO;
		goto fail;
	}
	cal_take_tx(&r->c[0]);
	cal_take_tx(&r->c[1]);
	return 0;
fail:
	snprintf(err, errlen, "connection set-up through the data plane failed: %s",
		 strerror(-ret));
	dp_destroy(r->dp);
	r->dp = NULL;
	rtvio_config_free(cfg);
	return ret < 0 ? ret : -EPROTO;
}

void cal_env_close(struct crun *r, struct rtvio_config *cfg)
{
	dp_destroy(r->dp);
	r->dp = NULL;
	rtvio_config_free(cfg);
}

int cal_pin(int cpu, bool fifo)
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

void cal_pin_restore(const cpu_set_t *old)
{
	struct sched_param sp = { .sched_priority = 0 };

	pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
	pthread_setaffinity_np(pthread_self(), sizeof(*old), old);
}

void cal_progress(struct prog *p, double add, const char *phase)
{
	p->done += add;
	if (p->o->progress)
		p->o->progress(p->o->progress_ctx, p->total > 0 ? p->done / p->total : 1, phase);
}
