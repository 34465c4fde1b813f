/* Test fixture for core/ ring tests: one block of "guest memory" holding a ring and
 * a buffer area, seen by the device through a one-region memory table at a guest
 * address different from the host one (so a missing translation shows). The block is
 * allocated at its exact size so that AddressSanitizer catches any access past it. */
#ifndef RTVIO_CORE_TESTS_VQENV_H
#define RTVIO_CORE_TESTS_VQENV_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtq.h"

#define VQENV_GPA 0x40000000ull

struct vqenv {
	unsigned int num;
	uint8_t *mem;
	size_t mem_size;
	size_t buf_off;  /* buffer area: nbuf buffers of buf_size bytes */
	size_t buf_size;
	unsigned int nbuf;
	struct vq_mem_region region;
	struct vq_ring ring;
	struct vq_drv_slot *slot;
	uint64_t *inflight;
	struct vq_driver drv;
	struct vq_device dev;
};

static inline uint64_t vqenv_gpa(const struct vqenv *e, const void *host)
{
	return e->region.gpa + (uint64_t)((const uint8_t *)host - e->mem);
}

static inline uint8_t *vqenv_buf(const struct vqenv *e, unsigned int i)
{
	return e->mem + e->buf_off + (size_t)i * e->buf_size;
}

/* Lays out the ring and nbuf buffers in mem (the caller's, mem_size bytes, 16-byte
 * aligned) and initialises both sides. Returns the first error. */
static inline int vqenv_setup(struct vqenv *e, uint8_t *mem, size_t mem_size,
			      unsigned int num, uint64_t features, unsigned int nbuf,
			      size_t buf_size, int want_driver, int want_device)
{
	struct vq_layout l;
	int err = vq_layout(num, &l);

	if (err)
		return err;
	e->num = num;
	e->mem = mem;
	e->mem_size = mem_size;
	e->buf_off = (l.total + 63) & ~(size_t)63;
	e->buf_size = buf_size;
	e->nbuf = nbuf;
	if (e->buf_off + (size_t)nbuf * buf_size > mem_size)
		return -1;
	e->region = (struct vq_mem_region){ .gpa = VQENV_GPA, .size = mem_size, .host = mem };
	err = vq_ring_at(&e->ring, mem, num);
	if (err)
		return err;
	if (want_driver) {
		e->slot = calloc(num, sizeof(*e->slot));
		err = vq_driver_init(&e->drv, &e->ring, e->slot, features);
		if (err)
			return err;
	}
	if (want_device) {
		e->inflight = calloc(VQ_INFLIGHT_WORDS(num), sizeof(uint64_t));
		err = vq_device_init(&e->dev, &e->ring, &e->region, 1, e->inflight, features, 0);
	}
	return err;
}

static inline size_t vqenv_size(unsigned int num, unsigned int nbuf, size_t buf_size)
{
	struct vq_layout l;

	if (vq_layout(num, &l))
		return 0;
	return ((l.total + 63) & ~(size_t)63) + (size_t)nbuf * buf_size;
}

/* A fresh environment in its own exactly-sized heap block. */
static inline struct vqenv *vqenv_new(unsigned int num, uint64_t features, unsigned int nbuf,
				      size_t buf_size)
{
	struct vqenv *e = calloc(1, sizeof(*e));
	size_t size = (vqenv_size(num, nbuf, buf_size) + 63) & ~(size_t)63;
	uint8_t *mem = aligned_alloc(64, size);

	if (!e || !mem || vqenv_setup(e, mem, size, num, features, nbuf, buf_size, 1, 1)) {
		free(mem);
		free(e);
		return NULL;
	}
	return e;
}

static inline void vqenv_free(struct vqenv *e)
{
	if (!e)
		return;
	free(e->slot);
	free(e->inflight);
	free(e->mem);
	free(e);
}

#endif
