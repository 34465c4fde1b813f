/* A driver and a device that run concurrently over one ring (in two threads or two
 * processes) and wake each other only when the ring says so: the driver kicks only
 * when vq_driver_publish() asks for it, the device notifies only when
 * vq_device_should_notify() does, and each side sleeps after a failed
 * enable-and-recheck. A lost wake-up shows as a wait that times out.
 *
 * Every chain is one readable 8-byte buffer holding a sequence number and one
 * writable 8-byte buffer the device fills with its complement; the driver checks
 * every reply. The device holds up to `hold` chains and completes them in random
 * order. The last chain carries VQPAIR_STOP and ends the device loop. */
#ifndef RTVIO_CORE_TESTS_VQPAIR_H
#define RTVIO_CORE_TESTS_VQPAIR_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "virtq.h"
#include "vqenv.h"

#define VQPAIR_STOP UINT64_MAX
#define VQPAIR_MAX_HOLD 16

struct vqpair_ops {
	void (*kick)(void *ctx);      /* driver -> device */
	int (*wait_kick)(void *ctx);  /* 0, or -1 after the timeout */
	void (*call)(void *ctx);      /* device -> driver */
	int (*wait_call)(void *ctx);
	void *ctx;
};

struct vqpair_stats {
	uint64_t chains, kicks, calls, sleeps;
};

static inline uint64_t vqpair_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The device side. Returns 0 after the STOP chain, -1 on any error (printed). */
static inline int vqpair_device(struct vq_device *dev, const struct vqpair_ops *ops,
				unsigned int hold, struct vqpair_stats *st)
{
	struct vq_chain held[VQPAIR_MAX_HOLD];
	struct vq_seg seg[2];
	unsigned int nheld = 0;
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	int stop = 0;

	if (hold == 0 || hold > VQPAIR_MAX_HOLD)
		return -1;
	for (;;) {
		struct vq_chain c;
		int r = vq_device_pop(dev, &c, seg, 2);

		if (r < 0) {
			fprintf(stderr, "device: pop: %d\n", r);
			return -1;
		}
		if (r == 1) {
			uint64_t v;

			if (c.n_seg != 2 || c.n_out != 1 || seg[0].len != 8 || seg[1].len != 8) {
				fprintf(stderr, "device: bad chain shape\n");
				return -1;
			}
			memcpy(&v, seg[0].host, 8);
			stop |= v == VQPAIR_STOP;
			v = ~v;
			memcpy(seg[1].host, &v, 8);
			held[nheld++] = c;
			st->chains++;
		}
		/* Complete held chains, in random order, when full or idle. */
		while (nheld && (nheld == hold || r == 0)) {
			unsigned int j = (unsigned int)(vqpair_rand(&rng) % nheld);

			if (vq_device_push(dev, held[j].head, 8)) {
				fprintf(stderr, "device: push failed\n");
				return -1;
			}
			held[j] = held[--nheld];
		}
		if (vq_device_should_notify(dev)) {
			st->calls++;
			ops->call(ops->ctx);
		}
		if (r == 1)
			continue;
		if (stop)
			return 0;
		if (vq_device_enable_notify(dev))
			continue;
		st->sleeps++;
		if (ops->wait_kick(ops->ctx)) {
			fprintf(stderr, "device: lost kick (avail %u, popped %u)\n",
				shm_load_relaxed(&dev->ring.avail->idx), dev->last_avail);
			return -1;
		}
		vq_device_disable_notify(dev);
	}
}

/* The driver side: total chains, then STOP; returns 0 or -1 (printed). */
static inline int vqpair_driver(struct vqenv *e, const struct vqpair_ops *ops,
				uint64_t total, struct vqpair_stats *st)
{
	unsigned int nchain = e->num / 2, nfree = nchain;
	unsigned int freelist[VQ_MAX_SIZE / 2];
	uint64_t seq_of[VQ_MAX_SIZE / 2];
	uint64_t sent = 0, done = 0;

	if (nchain == 0 || e->nbuf < 2 * nchain)
		return -1;
	for (unsigned int k = 0; k < nchain; k++)
		freelist[k] = k;
	while (done <= total) {
		int got = 0, r;
		void *tok;
		uint32_t len;

		while (sent <= total && nfree) {
			unsigned int k = freelist[--nfree];
			uint64_t v = sent == total ? VQPAIR_STOP : sent;
			struct vq_buf out = { vqenv_gpa(e, vqenv_buf(e, 2 * k)), 8 };
			struct vq_buf in = { vqenv_gpa(e, vqenv_buf(e, 2 * k + 1)), 8 };

			memcpy(vqenv_buf(e, 2 * k), &v, 8);
			memset(vqenv_buf(e, 2 * k + 1), 0, 8);
			seq_of[k] = v;
			if (vq_driver_add(&e->drv, &out, 1, &in, 1, (void *)(uintptr_t)(k + 1))) {
				fprintf(stderr, "driver: add failed\n");
				return -1;
			}
			sent++;
		}
		if (vq_driver_publish(&e->drv)) {
			st->kicks++;
			ops->kick(ops->ctx);
		}
		while ((r = vq_driver_get_used(&e->drv, &tok, &len)) == 1) {
			unsigned int k = (unsigned int)((uintptr_t)tok - 1);
			uint64_t v;

			memcpy(&v, vqenv_buf(e, 2 * k + 1), 8);
			if (k >= nchain || len != 8 || v != ~seq_of[k]) {
				fprintf(stderr, "driver: bad reply for %llu\n",
					(unsigned long long)seq_of[k]);
				return -1;
			}
			freelist[nfree++] = k;
			done++;
			got = 1;
			st->chains++;
		}
		if (r < 0) {
			fprintf(stderr, "driver: get_used: %d\n", r);
			return -1;
		}
		if (got || done > total || (sent <= total && nfree))
			continue;
		if (vq_driver_enable_cb(&e->drv))
			continue;
		st->sleeps++;
		if (ops->wait_call(ops->ctx)) {
			fprintf(stderr, "driver: lost notification (sent %llu, done %llu)\n",
				(unsigned long long)sent, (unsigned long long)done);
			return -1;
		}
		vq_driver_disable_cb(&e->drv);
	}
	return 0;
}

#endif
