/* Faulting a cell's memory in, off the broker's loop (docs/broker.md, "No page fault a
 * cell can cause").
 *
 * Every mapping of a front end's memory (struct vhu_map) is populated, before its cell's
 * device may start, by one populate thread per broker: madvise(MADV_POPULATE_WRITE) in
 * pieces of VHU_POP_PIECE_PAGES pages. The thread runs SCHED_OTHER on the cpus the
 * broker's cores leave free, so the populating costs the loop nothing; under the
 * broker's mlockall(MCL_FUTURE | MCL_ONFAULT) the populated pages are locked too, and
 * the data path never takes a first-touch fault. MADV_POPULATE_WRITE holds the
 * process's mmap_lock (read) for one piece at a time: an mmap or munmap the loop makes
 * meanwhile waits for at most one piece (4 pages: about 3 us at 0.7 us a page the
 * cell had written, more for a page never written, which is allocated and zeroed),
 * so a heavy message's at most 16 such calls wait for at most 16 pieces.
 *
 * Ownership. A mapping has up to two owners: the loop (while a memory table uses it)
 * and the populate thread (while it is queued or being populated). Whoever drops the
 * last ownership unmaps it and only then frees the slot, so the thread never touches
 * an unmapped range and the loop never waits for the thread: a loop that no longer
 * needs a mapping whose populate still runs sets `cancel` and leaves the munmap to the
 * thread, which sees it before its next piece.
 *
 * Without a populate context (tests of the back end alone, calibrate), the back end
 * uses its own slots and counts every mapping as populated at once. */
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

#define VHU_POP_PIECE_PAGES 4u
/* Mapping slots per front end: the current table's, a new table's, and a table's
 * worth still being cancelled by the populate thread. */
#define VHU_MAX_MAPS (3u * VHU_MAX_REGIONS)

struct vhu_map {
	/* Loop only. */
	void *addr;
	size_t len;
	dev_t dev;                 /* the file (process cells: mapped once per file) */
	ino_t ino;
	unsigned int users;        /* regions of the current or the new table in it */
	bool fresh;                /* mapped by the table being set up: populate it */
	/* Shared with the populate thread. */
	atomic_uint owners;        /* the loop and/or a queued populate */
	atomic_bool cancel;        /* loop -> thread: the loop no longer needs it */
	atomic_bool populated;     /* thread -> loop: every page is in */
	atomic_int result;         /* thread -> loop: 0, or the populate's -errno */
	atomic_bool busy;          /* the slot is taken until the last owner unmapped it */
};

struct vhu_pop {
	pthread_t thread;
	bool running;
	int work_fd;               /* loop -> thread: a job was queued (the thread blocks on it) */
	int done_fd;               /* thread -> loop: a job ended (the loop watches it) */
	struct vhu_map *maps;      /* VHU_MAX_MAPS per front end */
	unsigned int nslots;
	struct vhu_map **q;        /* single producer (loop), single consumer (thread) */
	unsigned int qcap;
	atomic_uint head, tail;
	atomic_bool stop;
	atomic_ullong pieces;      /* madvise calls made (for tests and stat) */
	atomic_ullong jobs;        /* mappings fully populated */
	/* Tests: the thread waits before each piece while this is set. */
	atomic_bool hold;
};

/* Opens the context for `nslots` front ends and starts the thread on `cpus` (NULL: the
 * caller's affinity as it is now). Returns 0 or -errno; on failure nothing is left. */
int vhu_pop_open(struct vhu_pop *p, unsigned int nslots, const cpu_set_t *cpus);
/* Stops the thread (after its current piece) and unmaps what only it still owned. */
void vhu_pop_close(struct vhu_pop *p);
/* The VHU_MAX_MAPS slots of front end `slot`. */
struct vhu_map *vhu_pop_slots(struct vhu_pop *p, unsigned int slot);
/* The descriptor the loop watches for finished jobs, and its reset. */
int vhu_pop_fd(const struct vhu_pop *p);
void vhu_pop_ack(struct vhu_pop *p);

/* Loop side of a mapping's life (struct vhu_map, ownership above). */
struct vhu_map *vhu_map_take(struct vhu_map *slots, void *addr, size_t len,
			     dev_t dev, ino_t ino);
/* Queues m's populate (p NULL: m counts as populated at once). Never blocks. */
void vhu_map_populate(struct vhu_pop *p, struct vhu_map *m);
/* The loop's ownership ends: unmapped now, or by the populate thread after its piece. */
void vhu_map_drop(struct vhu_map *m);
/* 1 populated, 0 not yet, -errno the populate failed. */
int vhu_map_ready(const struct vhu_map *m);

/* The cpus a helper thread of the broker should run on: the process's allowed cpus
 * minus `broker` (its pinned cores) when that leaves any, else all of them. */
void vhu_pop_cpus(const cpu_set_t *allowed, const int *broker, int nbroker, cpu_set_t *out);

#endif
