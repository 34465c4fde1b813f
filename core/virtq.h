/* Split virtqueues (virtio 1.2, section 2.7), driver side and device side.
 *
 * A split virtqueue is three areas in memory both sides can reach:
 *   descriptor table  num x 16 bytes, 16-byte aligned; written by the driver
 *   available ring    flags, idx, ring[num], used_event; 2-byte aligned; written by
 *                     the driver
 *   used ring         flags, idx, ring[num] of {id, len}, avail_event; 4-byte
 *                     aligned; written by the device
 * num is a power of two from 1 to 32768. All fields are little-endian. The indices
 * are free-running 16-bit counters; slot = idx & (num - 1).
 *
 * Nothing here allocates, blocks or keeps global state: every object and every array
 * is the caller's. The driver side trusts its own memory and checks what the device
 * writes back (used ids and lengths). The device side trusts nothing in the ring:
 * each guest-writable field is read once into private memory and validated before it
 * is used, guest addresses are translated through the caller's memory table, and a
 * ring that breaks a rule stays broken (vq_device_broken() says why).
 *
 * Concurrency: one vq_driver and one vq_device may run on different CPUs (or in
 * different address spaces) over the same ring. Each object itself is used by one
 * thread at a time.
 *
 * Errors are negative RT_E* values (rterrno.h), equal to Linux's errno values. */
#ifndef RTVIO_CORE_VIRTQ_H
#define RTVIO_CORE_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fence.h"
#include "le.h"
#include "rterrno.h"

/* Feature bits (virtio 1.2, section 6) that concern the rings. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VQ_MAX_SIZE 32768u

/* Descriptor flags. */
#define VRING_DESC_F_NEXT 1u     /* the chain continues at .next */
#define VRING_DESC_F_WRITE 2u    /* device-writable (else device-readable) */
#define VRING_DESC_F_INDIRECT 4u /* .addr/.len is a table of descriptors */

/* avail->flags: the driver asks not to be notified of used buffers (no EVENT_IDX). */
#define VRING_AVAIL_F_NO_INTERRUPT 1u
/* used->flags: the device asks not to be kicked for new buffers (no EVENT_IDX). */
#define VRING_USED_F_NO_NOTIFY 1u

/* Written by the driver; read by the device. */
struct vring_desc {
	le64 addr;  /* device-visible (guest-physical) address */
	le32 len;
	le16 flags; /* VRING_DESC_F_* */
	le16 next;
};

/* Written by the driver; read by the device. Followed by used_event (shm_le16) at
 * ring[num]: see vq_used_event(). */
struct vring_avail {
	shm_le16 flags;
	shm_le16 idx;
	le16 ring[];
};

/* Written by the device; read by the driver. */
struct vring_used_elem {
	le32 id;  /* head of the completed chain */
	le32 len; /* bytes the device wrote into the chain's writable part */
};

/* Written by the device; read by the driver. Followed by avail_event (shm_le16)
 * at ring[num]: see vq_avail_event(). */
struct vring_used {
	shm_le16 flags;
	shm_le16 idx;
	struct vring_used_elem ring[];
};

_Static_assert(sizeof(shm_le16) == 2 && _Alignof(shm_le16) == 2,
	       "shared 16-bit fields must have the layout of uint16_t");
_Static_assert(sizeof(struct vring_desc) == 16, "virtio 1.2 2.7.5");
_Static_assert(sizeof(struct vring_avail) == 4, "virtio 1.2 2.7.6");
_Static_assert(sizeof(struct vring_used_elem) == 8, "virtio 1.2 2.7.8");
_Static_assert(sizeof(struct vring_used) == 4, "virtio 1.2 2.7.8");

/* Where each part of a ring of num entries goes when the three parts are laid out
 * one after the other in one block (each part at its required alignment). Any other
 * placement is fine too, as long as each part is aligned: VQ_*_ALIGN. */
#define VQ_DESC_ALIGN 16u
#define VQ_AVAIL_ALIGN 2u
#define VQ_USED_ALIGN 4u

struct vq_layout {
	size_t desc_off, desc_size;
	size_t avail_off, avail_size; /* including used_event */
	size_t used_off, used_size;   /* including avail_event */
	size_t total;                 /* bytes of the whole block */
};

/* Fills *l for a ring of num entries. Returns 0, or -RT_EINVAL when num is not a
 * power of two in [1, VQ_MAX_SIZE]. The block must start 16-byte aligned. */
int vq_layout(unsigned int num, struct vq_layout *l);

/* The three parts of one ring, as pointers in the caller's address space. */
struct vq_ring {
	unsigned int num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
};

/* Fills *r with the parts of a ring laid out by vq_layout() at base. */
int vq_ring_at(struct vq_ring *r, void *base, unsigned int num);

/* The event-index fields that follow the two rings (meaningful with EVENT_IDX). */
/*@ requires \valid_read(r);
    assigns \nothing;
    ensures \result == (shm_le16 *)&r->avail->ring[r->num]; */
static inline shm_le16 *vq_used_event(const struct vq_ring *r)
{
	return (shm_le16 *)&r->avail->ring[r->num];
}

/*@ requires \valid_read(r);
    assigns \nothing;
    ensures \result == (shm_le16 *)&r->used->ring[r->num]; */
static inline shm_le16 *vq_avail_event(const struct vq_ring *r)
{
	return (shm_le16 *)&r->used->ring[r->num];
}

/* True when moving an index from old_idx to new_idx passes event_idx, i.e. the other
 * side asked to hear about entry event_idx and it is now among those published
 * (virtio 1.2, 2.7.7.2 and 2.7.10.1). Correct across 16-bit wrap. */
/*@ assigns \nothing; */
static inline bool vq_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

/* ---- Driver side ------------------------------------------------------------- */

/* A buffer as the device will see it. */
struct vq_buf {
	uint64_t addr; /* device-visible address */
	uint32_t len;
};

/* Private per-descriptor bookkeeping: the caller provides an array of num of them
 * and never touches it. It mirrors what the driver wrote into the shared table, so
 * that reclaiming a chain never reads back memory the device can write. */
struct vq_drv_slot {
	void *token;     /* non-NULL on a chain's head while it is in flight */
	uint32_t in_len; /* head: writable bytes in the chain (bound on used len) */
	uint16_t next;   /* next descriptor of the chain, or of the free list */
	uint16_t ndesc;  /* head: descriptors the chain occupies in the table */
};

struct vq_driver {
	struct vq_ring ring;
	struct vq_drv_slot *slot;
	uint16_t free_head;   /* first free descriptor */
	uint16_t num_free;
	uint16_t avail_idx;   /* shadow of avail->idx, including unpublished chains */
	uint16_t published;   /* avail->idx as last stored */
	uint16_t last_used;   /* next used entry to reclaim */
	bool event_idx;
	bool indirect;
	bool cb_disabled;     /* shadow of the NO_INTERRUPT flag we wrote */
	int broken;           /* 0, or why the device broke the ring */
	int broken_at;        /* the line of virtq.c that found it, for debugging */
};

/* Sets vq up over ring (the caller's memory, zeroed here: a fresh ring) and slot[num].
 * features: the negotiated feature bits (EVENT_IDX and INDIRECT_DESC matter).
 * Returns 0 or -RT_EINVAL (bad num, misaligned part, NULL pointer). */
int vq_driver_init(struct vq_driver *vq, const struct vq_ring *ring,
		   struct vq_drv_slot *slot, uint64_t features);

/* Adds one chain: n_out device-readable buffers, then n_in device-writable ones. The
 * chain is not visible to the device until vq_driver_publish(). token (non-NULL)
 * comes back from vq_driver_get_used(). Returns 0, -RT_ENOSPC when fewer than
 * n_out + n_in descriptors are free, -RT_EINVAL for an empty chain or NULL token,
 * or the broken reason. */
int vq_driver_add(struct vq_driver *vq, const struct vq_buf *out, unsigned int n_out,
		  const struct vq_buf *in, unsigned int n_in, void *token);

/* Like vq_driver_add(), but the chain goes into an indirect table that the caller
 * provides (table in its address space, table_addr as the device sees it, room for
 * n_out + n_in entries, at most VQ_MAX_SIZE), and it uses one ring descriptor. Needs
 * INDIRECT_DESC. The table must stay untouched until the chain comes back. */
int vq_driver_add_indirect(struct vq_driver *vq, struct vring_desc *table,
			   uint64_t table_addr, const struct vq_buf *out,
			   unsigned int n_out, const struct vq_buf *in,
			   unsigned int n_in, void *token);

/* Makes every chain added since the last call visible to the device, and says
 * whether the device wants a notification (kick) for them: per avail_event with
 * EVENT_IDX, per used->flags otherwise. Kicking when told to never loses a wake-up. */
bool vq_driver_publish(struct vq_driver *vq);

/* Reclaims one completed chain. Returns 1 and sets *token and *len (bytes the device
 * wrote), 0 when nothing is completed, or a negative error when the device broke the
 * ring (id out of range or not in flight, len above the chain's writable size, used
 * index ahead by more than num): then the ring is broken for good. */
int vq_driver_get_used(struct vq_driver *vq, void **token, uint32_t *len);

/* Asks the device not to notify about used buffers (a hint: with EVENT_IDX at most
 * one more notification may come). */
void vq_driver_disable_cb(struct vq_driver *vq);

/* Asks to be notified of the next used buffer. Returns true when used buffers
 * arrived meanwhile (or the ring is broken): the caller must poll with
 * vq_driver_get_used() again rather than wait, or it may wait forever. */
bool vq_driver_enable_cb(struct vq_driver *vq);

static inline unsigned int vq_driver_num_free(const struct vq_driver *vq)
{
	return vq->num_free;
}

/* 0, or the negative error that broke the ring. */
static inline int vq_driver_broken(const struct vq_driver *vq)
{
	return vq->broken;
}

/* ---- Device side ------------------------------------------------------------- */

struct vq_ready;

/* One region of the driver's memory: driver addresses [gpa, gpa + size) are at
 * host[0, size) here. A table of these is the caller's, read-only to core/. ready:
 * NULL when the device may touch all of it, else which parts it may yet
 * (vq_ready.h). */
struct vq_mem_region {
	uint64_t gpa;
	uint64_t size;
	void *host;
	struct vq_ready *ready;
};

/* What vq_device_pop returns for a chain that names memory the device may not touch
 * yet: the ring is not broken, nothing was consumed, and vq_device.want says where. */
#define VQ_NOT_READY (-RT_EAGAIN)


/* Host pointer for driver addresses [gpa, gpa + len), or NULL unless the whole range
 * lies inside one region. Overflow-safe for any gpa and len. */
void *vq_translate(const struct vq_mem_region *mem, unsigned int n_mem, uint64_t gpa,
		   uint64_t len);

/* One translated buffer of a popped chain. */
struct vq_seg {
	void *host;
	uint32_t len;
	bool writable;
};

/* A popped chain, in the device's private memory. seg[0, n_out) are readable and
 * seg[n_out, n_seg) writable: a chain whose readable part follows a writable one is
 * refused. */
struct vq_chain {
	uint16_t head;        /* pass back to vq_device_push() */
	unsigned int n_seg;
	unsigned int n_out;
	uint32_t out_len;     /* total readable bytes */
	uint32_t in_len;      /* total writable bytes */
	struct vq_seg *seg;   /* the caller's array given to vq_device_pop() */
};

struct vq_device {
	struct vq_ring ring;
	const struct vq_mem_region *mem;
	unsigned int n_mem;
	uint64_t *inflight;     /* caller's bitmap, VQ_INFLIGHT_WORDS(num) words */
	unsigned int n_inflight;
	uint16_t last_avail;    /* next avail slot to pop */
	uint16_t avail_idx;     /* avail->idx as last read and checked */
	uint16_t used_idx;      /* shadow of used->idx, including unpublished entries */
	uint16_t published;     /* used->idx as last stored */
	uint16_t signalled;     /* used_idx at the last notify decision */
	bool signalled_valid;
	bool event_idx;
	bool indirect;
	int broken;             /* 0, or why the driver broke the ring */
	int broken_at;          /* the line of virtq.c that found it, for debugging */
	const void *want;       /* the range the last VQ_NOT_READY pop needs */
	uint64_t want_len;
};

#define VQ_INFLIGHT_WORDS(num) (((num) + 63u) / 64u)

/* The device side's proof obligations (ACSL, for Frama-C/WP; gcc sees comments). What
 * they mean and what is assumed: docs/verification.md, "What is proved". */
/*@
  // Driver addresses [.., + len) translated to host pointer p lie inside region i.
  predicate in_region{L}(struct vq_mem_region *mem, integer n, void *p, integer len) =
    \exists integer i, off; 0 <= i < n && 0 <= off && off + len <= mem[i].size &&
      (char *)p == (char *)mem[i].host + off;

  // A table whose entries did not change keeps its region facts (for the provers:
  // writes elsewhere leave in_region alone).
  lemma in_region_frame{L1, L2}:
    \forall struct vq_mem_region *mem, integer n, void *p, integer len;
      in_region{L1}(mem, n, p, len) &&
      (\forall integer j; 0 <= j < n ==>
        \at(mem[j].host, L1) == \at(mem[j].host, L2) &&
        \at(mem[j].size, L1) == \at(mem[j].size, L2)) ==>
      in_region{L2}(mem, n, p, len);

  // The caller's memory table: readable, and every region mapped for its whole size.
  predicate mem_ok(struct vq_mem_region *mem, integer n) =
    0 <= n && \valid_read(mem + (0 .. n - 1)) &&
    \forall integer i; 0 <= i < n ==>
      \valid_read((uint8_t *)mem[i].host + (0 .. mem[i].size - 1));

  // The ring parts (translated by the caller) are mapped, each where vq_layout puts
  // its fields, and apart from the device's private state.
  predicate ring_ok(struct vq_ring r) =
    1 <= r.num <= VQ_MAX_SIZE &&
    \valid_read((uint8_t *)r.desc + (0 .. 16 * r.num - 1)) &&
    \valid(&r.avail->flags) && \valid(&r.avail->idx) &&
    \valid(&r.avail->ring[0] + (0 .. r.num)) &&
    \valid(&r.used->flags) && \valid(&r.used->idx) &&
    \valid(&r.used->ring[0] + (0 .. r.num - 1)) &&
    \valid((shm_le16 *)&r.used->ring[r.num]);

  predicate dev_ok(struct vq_device *vq) =
    \valid(vq) && ring_ok(vq->ring) && mem_ok(vq->mem, vq->n_mem) &&
    \valid(vq->inflight + (0 .. (vq->ring.num + 63) / 64 - 1)) &&
    \separated(vq, vq->inflight + (0 .. (vq->ring.num + 63) / 64 - 1),
               vq->mem + (0 .. vq->n_mem - 1),
               &vq->ring.used->ring[0] + (0 .. vq->ring.num - 1),
               &vq->ring.used->idx, &vq->ring.used->flags,
               (shm_le16 *)&vq->ring.used->ring[vq->ring.num]) &&
    \separated(vq + (0 .. 0), vq->inflight + (0 .. (vq->ring.num + 63) / 64 - 1),
               vq->mem + (0 .. vq->n_mem - 1),
               &vq->ring.avail->ring[0] + (0 .. vq->ring.num),
               &vq->ring.avail->idx, &vq->ring.avail->flags);
*/

/* May the device touch [host, host + len), which lies in a region of mem[n_mem]? True
 * unless that region's ready map says a granule of it is not in yet (vq_ready.c,
 * outside the proof: its contract is assumed there). */
/*@ requires mem_ok((struct vq_mem_region *)mem, n_mem);
    assigns \nothing; */
bool vq_mem_ready(const struct vq_mem_region *mem, unsigned int n_mem, const void *host,
		  uint64_t len);

/* Sets vq up over a ring whose parts the caller has already translated (ring) and
 * the driver's memory table (mem[n_mem], used to translate descriptor addresses; it
 * may change between calls as long as it is not changed during one). inflight is the
 * caller's bitmap of VQ_INFLIGHT_WORDS(num) words (cleared here). base is the index
 * both rings start from (0 for a fresh ring; vhost-user's SET_VRING_BASE).
 * Returns 0 or -RT_EINVAL. */
int vq_device_init(struct vq_device *vq, const struct vq_ring *ring,
		   const struct vq_mem_region *mem, unsigned int n_mem, uint64_t *inflight,
		   uint64_t features, uint16_t base);

/* Pops the next available chain into *c, with up to max_seg segments in seg[]
 * (caller's). Returns 1 when a chain was popped, 0 when none is available, or a
 * negative error, after which the ring is broken for good:
 *   -RT_EINVAL  avail index ahead by more than num; head or next out of range;
 *               readable after writable; bad indirect descriptor (with NEXT, nested,
 *               length not a non-zero multiple of 16, or INDIRECT_DESC not
 *               negotiated)
 *   -RT_EBUSY   the head is still in flight (popped and not pushed)
 *   -RT_ELOOP   the chain is longer than its table: it loops
 *   -RT_E2BIG   more than max_seg segments, or more than 2^32 - 1 bytes in one part
 *   -RT_EFAULT  a buffer or indirect table outside every memory region
 * or VQ_NOT_READY, which breaks nothing: a buffer or indirect table of the next chain
 * lies in memory the device may not touch yet (vq_mem_ready); [want, want + want_len)
 * is that range, and the same chain is popped again by a later call.
 * Chains may be pushed back in any order and at any later time. */
int vq_device_pop(struct vq_device *vq, struct vq_chain *c, struct vq_seg *seg,
		  unsigned int max_seg);

/* Completes the chain at head, which wrote len bytes, and publishes it to the driver:
 * vq_device_add_used() then vq_device_publish_used(). Returns 0, -RT_EINVAL when head
 * is not in flight (a caller bug: the ring stays usable), or the broken reason. */
int vq_device_push(struct vq_device *vq, uint16_t head, uint32_t len);

/* Batched completion. vq_device_add_used() writes the used element of the chain at
 * head (which wrote len bytes) without publishing it: the driver does not see it
 * until vq_device_publish_used() (or vq_device_should_notify(), which publishes
 * first) stores the used index once for every element added since, with release
 * order over the elements and the writes into their buffers. Returns as
 * vq_device_push(). A batch never holds more than num elements: an add that would
 * reuse an unpublished slot (a driver re-posting heads it was not yet given back)
 * publishes the batch first. A device that adds must publish before it waits, or
 * the driver may wait for ever. */
int vq_device_add_used(struct vq_device *vq, uint16_t head, uint32_t len);
void vq_device_publish_used(struct vq_device *vq);

/* Publishes what was added (vq_device_publish_used()), then says whether the driver
 * wants a notification for everything published since the last call, taken as one
 * batch: per used_event with EVENT_IDX (whether the batch passed it), per
 * avail->flags otherwise. */
bool vq_device_should_notify(struct vq_device *vq);

/* Elements added and not yet published. */
static inline unsigned int vq_device_unpublished(const struct vq_device *vq)
{
	return (uint16_t)(vq->used_idx - vq->published);
}

/* Asks the driver not to kick for new buffers (a hint; polling devices use it). */
void vq_device_disable_notify(struct vq_device *vq);

/* Asks the driver to kick for the next new buffer. Returns true when buffers arrived
 * meanwhile (or the ring is broken): the caller must pop again rather than wait. */
bool vq_device_enable_notify(struct vq_device *vq);

/* Replaces the memory table (vhost-user SET_MEM_TABLE); same rules as at init. */
static inline void vq_device_set_mem(struct vq_device *vq, const struct vq_mem_region *mem,
				     unsigned int n_mem)
{
	vq->mem = mem;
	vq->n_mem = n_mem;
}

/* The next avail index the device will consume: what vhost-user GET_VRING_BASE
 * reports. Chains still in flight are not included in it. */
static inline uint16_t vq_device_base(const struct vq_device *vq)
{
	return vq->last_avail;
}

/* Chains popped and not yet pushed. */
static inline unsigned int vq_device_inflight(const struct vq_device *vq)
{
	return vq->n_inflight;
}

/* 0, or the negative error that broke the ring. */
static inline int vq_device_broken(const struct vq_device *vq)
{
	return vq->broken;
}

#endif
