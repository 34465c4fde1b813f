/* Which parts of the driver's memory a device may touch yet.
 *
 * A device process that maps a driver's memory takes a page fault on the first touch
 * of each page it has not faulted in itself. The broker faults a VM's RAM in behind
 * its running device (docs/broker.md, "No page fault a cell can cause"), so until that
 * is done a chain may name memory the broker must not touch yet. A memory region
 * whose vq_mem_region.ready is set counts in granules of 2^shift bytes: a chain that
 * names a granule not yet in is left on the ring (vq_device_pop returns VQ_NOT_READY,
 * and vq_device.want says where), the device asks for that granule (vq_mem_want), and
 * whoever faults the memory in takes the wanted granules first and marks each one in
 * once every page of it is (vq_ready_set).
 *
 * Two parties: the filler (one thread: init, set, wanted) and the device (test,
 * want). in[] and all are the filler's, with release stores that the device's
 * acquire loads pair with: a granule seen in had its pages faulted in before. want[]
 * is the device's, stored with release, read by the filler with acquire: what the
 * device wrote before asking (that it now waits) is seen by the filler, and by
 * whoever the filler tells that the granule is in.
 *
 * No request is lost between the two: the device stores its want, then looks at in[]
 * once more (vq_mem_want), and the filler stores the bit, then looks at want[]
 * (vq_ready_set), each with a full fence between its store and its load. So either
 * the device sees the granule in and does not wait, or the filler sees the request
 * and tells. */
#ifndef RTVIO_CORE_VQ_READY_H
#define RTVIO_CORE_VQ_READY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtq.h"

#define VQ_READY_WORDS 256u
#define VQ_READY_MAX (32u * VQ_READY_WORDS) /* granules of one region at most */

struct vq_ready {
	uintptr_t base;      /* granule 0 starts at this host address */
	uint64_t len;        /* bytes covered from base */
	unsigned int shift;  /* a granule is 2^shift bytes */
	unsigned int n;      /* granules: len / 2^shift, rounded up */
	atomic_bool all;                  /* filler -> device: every granule is in */
	atomic_uint_least32_t in[VQ_READY_WORDS];   /* filler -> device */
	atomic_uint_least32_t want[VQ_READY_WORDS]; /* device -> filler */
};

/* Filler: len bytes at base, none in, in granules of at least 2^min_shift bytes
 * (and as large as it takes to cover len in VQ_READY_MAX of them). */
void vq_ready_init(struct vq_ready *r, const void *base, uint64_t len,
		   unsigned int min_shift);
/* Filler: granule g is in (every page of it faulted in), and with it perhaps all.
 * Returns whether the device has asked for g: it may wait for it, and must be told. */
bool vq_ready_set(struct vq_ready *r, unsigned int g);
/* Filler: everything is in (a region never to be filled piecewise). */
void vq_ready_set_all(struct vq_ready *r);
/* Filler: the first granule the device wants that is not in, or r->n. */
unsigned int vq_ready_wanted(const struct vq_ready *r);
/* Filler: is granule g in? */
bool vq_ready_is_in(const struct vq_ready *r, unsigned int g);

/* Device: may it touch [host, host + len)? False for a range outside r. */
bool vq_ready_test(const struct vq_ready *r, const void *host, uint64_t len);
/* Device: asks for the granules of [host, host + len) that are not in. */
void vq_ready_want(struct vq_ready *r, const void *host, uint64_t len);
/* Device: vq_ready_want for the region of mem[n_mem] that holds host, if it has a
 * ready map (after vq_device_pop said VQ_NOT_READY: vq->want, vq->want_len), then a
 * look again: true when [host, host + len) is in by now (the filler may have put it
 * in after the device's look and before it saw the request, and then tells nobody),
 * so the caller must not wait for it but look at the ring again. */
bool vq_mem_want(const struct vq_mem_region *mem, unsigned int n_mem, const void *host,
		 uint64_t len);

#endif
