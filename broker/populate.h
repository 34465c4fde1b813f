/* Faulting a cell's memory in, and unmapping it, off the broker's loop (docs/broker.md,
 * "No page fault a cell can cause" and "No teardown in the loop").
 *
 * Every mapping of a front end's memory (struct vhu_map) is populated, before its cell's
 * device may start, by one memory thread per broker (struct vhu_pop):
 * madvise(MADV_POPULATE_WRITE) in pieces of VHU_POP_PIECE_PAGES pages, or of one huge
 * page on hugetlbfs (struct vhu_map's `page`). The thread runs SCHED_OTHER on the cpus the
 * broker's cores leave free, so the populating costs the loop nothing; under the
 * broker's mlockall(MCL_FUTURE | MCL_ONFAULT) the populated pages are locked too, and
 * the data path never takes a first-touch fault. MADV_POPULATE_WRITE holds the
 * process's mmap_lock (read) for one piece at a time: an mmap or munmap the loop makes
 * meanwhile waits for at most one piece (4 pages: about 3 us at 0.7 us a page the
 * cell had written, more for a page never written, which is allocated and zeroed;
 * on hugetlbfs one huge page, which a first touch allocates and zeroes whole: about
 * 2 MB of clearing, a few hundred us), so a heavy message's at most 8 such calls
 * (the mmaps of a table's regions; the loop never unmaps) wait for at most 8 pieces.
 *
 * Ownership. A mapping has up to two owners: the loop (while a memory table uses it)
 * and the memory thread (while it is queued or being populated). The loop never
 * unmaps cell memory: zapping a populated mapping's page tables costs time in
 * proportion to its size (about 0.2-0.6 us a page, milliseconds for a VM's RAM). A
 * loop that no longer needs a mapping sets `cancel` and drops its ownership; if the
 * thread still owns it (a populate queued or running) the thread stops before its next
 * piece and, last owner, unmaps it; if the loop was the last owner it hands its
 * ownership to the thread with a queue entry. The thread unmaps in pieces of
 * VHU_UNMAP_PIECE_PAGES pages (one huge page when that is larger: hugetlbfs unmaps
 * nothing smaller; a piece that fails anyway is followed by one call for the whole
 * range, with a line on stderr), so an mmap the loop makes meanwhile waits on the
 * mmap_lock for one piece at most (each piece also costs one TLB-shootdown IPI to
 * the cpus running the broker, the loop's included), and only then frees the slot.
 * After vhu_map_drop the loop touches nothing of the range (its SIGBUS guard slot is
 * removed before).
 *
 * Slots. A slot is busy from vhu_map_take (before the mmap) until its range is fully
 * unmapped, so a front end that re-attaches in a loop faster than the thread unmaps
 * finds no free slot, or more bytes held than vhu_maps_held allows, and is refused
 * (-EBUSY, "earlier tables are still being released"): it never leaks a mapping,
 * and what its mappings hold, in use or being unmapped, stays within VHU_MAX_MAPS
 * mappings and, with a configured limit, VHU_HELD_TABLES times that limit.
 *
 * Granules. The thread faults a mapping in granule by granule (struct vq_ready: at
 * most VQ_READY_MAX granules of at least one piece each), in order, except that the
 * granules the data path asked for (vq_ready_want, for a chain of a running VM that
 * names memory not yet in) come first; each granule the data path asked for, however
 * late it asked, is reported to the loop once in, like a finished job, so that the VM's waiting chains are looked at again.
 *
 * Without a memory thread (tests of the back end alone), the back end uses its own
 * slots, counts every mapping as populated at once and unmaps in place. */
#ifndef RTVIO_BROKER_POPULATE_H
#define RTVIO_BROKER_POPULATE_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vhost_user_proto.h"
#include "vq_ready.h"

#define VHU_POP_PIECE_PAGES 4u
/* munmap pieces: 16 pages, about 9 us each on the reference host (docs/broker.md). */
#define VHU_UNMAP_PIECE_PAGES 16u
/* Bytes a front end's mappings may hold, in use or still being unmapped: this many
 * times its configured memory limit (the current table, a new one, a released one). */
#define VHU_HELD_TABLES 3u
/* Mapping slots per front end: the current table's, a new table's, and a table's
 * worth still being unmapped by the memory thread. */
#define VHU_MAX_MAPS (3u * VHU_MAX_REGIONS)

struct vhu_map {
	/* Loop only. */
	void *addr;
	size_t len;
	dev_t dev;                 /* the file (process cells: mapped once per file) */
	ino_t ino;
	uint64_t foff;             /* offset in the file (a VM's region; 0 for a whole file) */
	size_t page;               /* the file's page size (hugetlbfs: its huge page) */
	unsigned int users;        /* regions of the current or the new table in it */
	bool fresh;                /* mapped by the table being set up: populate it */
	/* Shared with the memory thread. */
	atomic_uint owners;        /* the loop and/or a queued populate */
	atomic_bool cancel;        /* loop -> thread: the loop no longer needs it */
	atomic_bool populated;     /* thread -> loop: every page is in */
	atomic_int result;         /* thread -> loop: 0, or the populate's -errno */
	atomic_bool busy;          /* the slot is taken until the last owner unmapped it */
	/* Which granules are in, and which the data path wants first (vq_ready.h): set
	 * up by vhu_map_populate, filled by the thread. */
	struct vq_ready ready;
};

struct vhu_pop_work;

struct vhu_pop {
	pthread_t thread;
	bool running;
	int work_fd;               /* loop -> thread: a job was queued (the thread blocks on it) */
	int done_fd;               /* thread -> loop: a job ended (the loop watches it) */
	struct vhu_map *maps;      /* VHU_MAX_MAPS per front end */
	unsigned int nslots;
	struct vhu_map **q;        /* single producer (loop), single consumer (thread) */
	unsigned int qcap;         /* a power of two: head and tail wrap with it */
	struct vhu_pop_work *work; /* thread only: the mappings in work, qcap at most */
	unsigned int nwork;
	atomic_uint head, tail;
	atomic_bool stop;
	atomic_ullong pieces;      /* madvise calls made (for tests and stat) */
	atomic_ullong jobs;        /* mappings fully populated */
	atomic_ullong unmap_pieces; /* munmap calls made */
	atomic_ullong unmaps;      /* mappings fully unmapped */
	/* Tests: the thread waits before each piece while hold is set, except for the
	 * `allow` pieces it may still make (each one counts it down). */
	atomic_bool hold;
	atomic_uint allow;
};

/* Opens the context for `nslots` front ends and starts the thread on `cpus` (NULL: the
 * caller's affinity as it is now). Returns 0 or -errno; on failure nothing is left.
 * -ENOSYS: the kernel lacks MADV_POPULATE_WRITE (Linux 5.14) or F_SEAL_FUTURE_WRITE
 * (Linux 5.1), and a line on stderr names which. */
int vhu_pop_open(struct vhu_pop *p, unsigned int nslots, const cpu_set_t *cpus);
/* 0 when the kernel has what the broker's memory handling needs, else -ENOSYS with
 * the missing feature and the kernel that brings it in `why`. */
int vhu_pop_probe(char *why, size_t len);
/* The queue slot of index i (head or tail): i wraps at 2^32, a multiple of qcap. */
static inline unsigned int vhu_pop_qslot(const struct vhu_pop *p, unsigned int i)
{
	return i & (p->qcap - 1);
}
/* Stops the thread (after its current piece) and unmaps what only it still owned or
 * was handed. */
void vhu_pop_close(struct vhu_pop *p);
/* The VHU_MAX_MAPS slots of front end `slot`. */
struct vhu_map *vhu_pop_slots(struct vhu_pop *p, unsigned int slot);
/* The descriptor the loop watches for finished jobs, and its reset. */
int vhu_pop_fd(const struct vhu_pop *p);
void vhu_pop_ack(struct vhu_pop *p);

/* Loop side of a mapping's life (struct vhu_map, ownership above). A free slot for a
 * mapping of len bytes, taken before the mmap (which sets m->addr), or NULL. */
struct vhu_map *vhu_map_take(struct vhu_map *slots, size_t len, dev_t dev, ino_t ino);
/* The mmap after vhu_map_take failed: the slot is free again (nothing to unmap). */
void vhu_map_untake(struct vhu_map *m);
/* Bytes of the busy slots of one front end: in use, being set up or being unmapped. */
size_t vhu_maps_held(const struct vhu_map *slots);
/* Queues m's populate (p NULL: m counts as populated at once). Never blocks. */
void vhu_map_populate(struct vhu_pop *p, struct vhu_map *m);
/* The loop's ownership ends; the memory thread unmaps m (p NULL: unmapped now). Never
 * blocks, never unmaps in the caller when p is given. */
void vhu_map_drop(struct vhu_pop *p, struct vhu_map *m);
/* 1 populated, 0 not yet, -errno the populate failed. */
int vhu_map_ready(const struct vhu_map *m);

/* The cpus a helper thread of the broker should run on: the process's allowed cpus
 * minus `broker` (its pinned cores) when that leaves any, else all of them. */
void vhu_pop_cpus(const cpu_set_t *allowed, const int *broker, int nbroker, cpu_set_t *out);

#endif
