/* The memory thread (populating and unmapping cell memory) and the ownership of a
 * cell's mappings: see populate.h. */
#include "populate.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010 /* Linux 5.1 */
#endif

/* A piece of `pages` system pages, or one of m's pages when that is larger
 * (hugetlbfs maps, populates and unmaps whole huge pages only). */
static size_t piece_of(const struct vhu_map *m, unsigned int pages)
{
	size_t piece = (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);

	return m->page > piece ? m->page : piece;
}

/* The mapping's length as the kernel holds it: whole pages of its file. */
static size_t map_span(const struct vhu_map *m)
{
	size_t page = m->page ? m->page : (size_t)sysconf(_SC_PAGESIZE);

	return (m->len + page - 1) / page * page;
}

/* Tests: the thread stands still, its jobs and their mappings with it. */
static void pop_hold(struct vhu_pop *p)
{
	struct timespec ts = { 0, 1000000 };

	while (p && atomic_load_explicit(&p->hold, memory_order_relaxed) &&
	       !atomic_load_explicit(&p->stop, memory_order_relaxed))
		nanosleep(&ts, NULL);
}

/* A piece the kernel refused (it should not: pieces are whole pages of the file):
 * the whole range in one call, so that nothing stays mapped (and locked) for good. */
static void unmap_whole(struct vhu_map *m, size_t span, size_t off, int err)
{
	fprintf(stderr, "rtvio broker: memory thread: unmapping a cell's mapping at offset "
		"%zu failed (%s): unmapping its %zu bytes in one call\n", off, strerror(err),
		span);
	if (munmap(m->addr, span) < 0)
		fprintf(stderr, "rtvio broker: memory thread: cannot unmap a cell's mapping of "
			"%zu bytes (%s): it stays mapped\n", span, strerror(errno));
}

/* The memory thread's munmap: VHU_UNMAP_PIECE_PAGES pages (or one huge page) per
 * call, so that an mmap the loop makes meanwhile waits on the mmap_lock for one
 * piece at most. Without a thread (p NULL: tests of the back end alone) the caller's
 * own single call. */
static void unmap_pieces(struct vhu_pop *p, struct vhu_map *m)
{
	size_t piece = piece_of(m, VHU_UNMAP_PIECE_PAGES), span = map_span(m);

	if (!p) {
		if (munmap(m->addr, span) < 0)
			unmap_whole(m, span, 0, errno);
		return;
	}
	for (size_t off = 0; off < span; off += piece) {
		size_t len = span - off < piece ? span - off : piece;

		pop_hold(p);
		atomic_fetch_add_explicit(&p->unmap_pieces, 1, memory_order_relaxed);
		if (munmap((char *)m->addr + off, len) < 0) {
			unmap_whole(m, span, off, errno);
			break;
		}
	}
	atomic_fetch_add_explicit(&p->unmaps, 1, memory_order_relaxed);
}

/* The last owner unmaps, then frees the slot: the release store orders the munmap
 * (and every field written before it) before a later vhu_map_take sees the slot free. */
static void map_release(struct vhu_pop *p, struct vhu_map *m)
{
	if (atomic_fetch_sub_explicit(&m->owners, 1, memory_order_acq_rel) != 1)
		return;
	unmap_pieces(p, m);
	atomic_store_explicit(&m->busy, false, memory_order_release);
}

struct vhu_map *vhu_map_take(struct vhu_map *slots, size_t len, dev_t dev, ino_t ino)
{
	for (unsigned int i = 0; i < VHU_MAX_MAPS; i++) {
		struct vhu_map *m = &slots[i];

		/* Acquire: pairs with map_release, so the old mapping is gone. */
		if (atomic_load_explicit(&m->busy, memory_order_acquire))
			continue;
		m->addr = NULL;
		m->len = len;
		m->page = (size_t)sysconf(_SC_PAGESIZE);
		m->dev = dev;
		m->ino = ino;
		m->users = 0;
		m->fresh = true;
		atomic_store_explicit(&m->owners, 1, memory_order_relaxed);
		atomic_store_explicit(&m->cancel, false, memory_order_relaxed);
		atomic_store_explicit(&m->populated, false, memory_order_relaxed);
		atomic_store_explicit(&m->result, 0, memory_order_relaxed);
		atomic_store_explicit(&m->busy, true, memory_order_relaxed);
		return m;
	}
	return NULL;
}

void vhu_map_untake(struct vhu_map *m)
{
	/* Nothing was mapped and no one else ever saw the slot. */
	atomic_store_explicit(&m->busy, false, memory_order_relaxed);
}

size_t vhu_maps_held(const struct vhu_map *slots)
{
	size_t held = 0;

	/* len is the loop's own field; busy only tells which slots count. */
	for (unsigned int i = 0; i < VHU_MAX_MAPS; i++)
		if (atomic_load_explicit(&slots[i].busy, memory_order_relaxed))
			held += slots[i].len;
	return held;
}

/* Single producer (the loop), single consumer (the thread). Every entry is one slot's
 * and a slot has one entry at most at a time (a populate, or the hand-over of its
 * last ownership, never both queued): qcap covers every slot, never full. */
static void pop_queue(struct vhu_pop *p, struct vhu_map *m)
{
	uint64_t one = 1;
	unsigned int t = atomic_load_explicit(&p->tail, memory_order_relaxed);

	p->q[vhu_pop_qslot(p, t)] = m;
	/* Release: publishes the entry and m's fields to the thread. */
	atomic_store_explicit(&p->tail, t + 1, memory_order_release);
	/* Non-blocking eventfd owned by the broker: the counter cannot fill up. */
	if (write(p->work_fd, &one, sizeof(one)) < 0) {
		/* The thread is awake already. */
	}
}

void vhu_map_populate(struct vhu_pop *p, struct vhu_map *m)
{
	m->fresh = false;
	if (!p) {
		atomic_store_explicit(&m->populated, true, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&m->owners, 1, memory_order_relaxed);
	pop_queue(p, m);
}

void vhu_map_drop(struct vhu_pop *p, struct vhu_map *m)
{
	/* Release: the thread that sees cancel also sees the loop done with m. */
	atomic_store_explicit(&m->cancel, true, memory_order_release);
	if (!p) {
		map_release(NULL, m);
		return;
	}
	/* Acq_rel: the thread's populate, if it still owns m, unmaps it when it ends. */
	if (atomic_fetch_sub_explicit(&m->owners, 1, memory_order_acq_rel) != 1)
		return;
	/* The loop was the last owner: its ownership goes to the thread with the entry
	 * (the thread takes the populate path, finds cancel set and unmaps). Nobody
	 * else reads owners now; the queue's release store publishes it. */
	atomic_store_explicit(&m->owners, 1, memory_order_relaxed);
	pop_queue(p, m);
}

int vhu_map_ready(const struct vhu_map *m)
{
	/* Acquire: pairs with the thread's release stores after its last piece. */
	int rc = atomic_load_explicit(&m->result, memory_order_acquire);

	if (rc < 0)
		return rc;
	return atomic_load_explicit(&m->populated, memory_order_acquire) ? 1 : 0;
}

static struct vhu_map *pop_next(struct vhu_pop *p)
{
	unsigned int h = atomic_load_explicit(&p->head, memory_order_relaxed);
	struct vhu_map *m;

	/* Acquire: pairs with vhu_map_populate's release of the tail. */
	if (h == atomic_load_explicit(&p->tail, memory_order_acquire))
		return NULL;
	m = p->q[vhu_pop_qslot(p, h)];
	atomic_store_explicit(&p->head, h + 1, memory_order_relaxed);
	return m;
}

static bool job_cut(struct vhu_pop *p, struct vhu_map *m)
{
	return atomic_load_explicit(&m->cancel, memory_order_acquire) ||
	       atomic_load_explicit(&p->stop, memory_order_relaxed);
}

/* One mapping, piece by piece, looking for a cancel before each piece; then the
 * thread's ownership ends (the last owner unmaps). A mapping the loop handed over
 * comes here with cancel set: nothing is populated, and it is unmapped. */
static void pop_job(struct vhu_pop *p, struct vhu_map *m)
{
	size_t piece = piece_of(m, VHU_POP_PIECE_PAGES);
	size_t off = 0;
	uint64_t one = 1;
	bool told;
	int rc = 0;

	for (;;) {
		size_t len = m->len - off < piece ? m->len - off : piece;

		pop_hold(p);
		if (off >= m->len || job_cut(p, m))
			break;
		if (madvise((char *)m->addr + off, len, MADV_POPULATE_WRITE) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			rc = -errno;
			break;
		}
		atomic_fetch_add_explicit(&p->pieces, 1, memory_order_relaxed);
		off += len;
	}
	told = rc < 0 || off >= m->len;

	/* Release: the loop that sees the flag or the error starts (or refuses) the
	 * device only after every piece above returned. */
	if (rc < 0)
		atomic_store_explicit(&m->result, rc, memory_order_release);
	else if (off >= m->len) {
		atomic_store_explicit(&m->populated, true, memory_order_release);
		atomic_fetch_add_explicit(&p->jobs, 1, memory_order_relaxed);
	}
	map_release(p, m);
	/* Non-blocking, the broker's own eventfd; a cancelled job tells nobody. */
	if (told && write(p->done_fd, &one, sizeof(one)) < 0) {
		/* The loop has a wake-up pending already. */
	}
}

static void *pop_main(void *arg)
{
	struct vhu_pop *p = arg;
	struct pollfd pf = { .fd = p->work_fd, .events = POLLIN };
	struct vhu_map *m;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
		uint64_t v;

		m = pop_next(p);
		if (m) {
			pop_job(p, m);
			continue;
		}
		/* Blocks in poll: the loop writes after every job it queues (the eventfd is
		 * non-blocking so that the loop's write never can). */
		if (poll(&pf, 1, -1) < 0 && errno != EINTR)
			break;
		if (read(p->work_fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR)
			break;
	}
	/* Anything still queued: give up the thread's ownership (unmapping what the
	 * loop handed over). */
	while ((m = pop_next(p)))
		map_release(p, m);
	return NULL;
}

void vhu_pop_cpus(const cpu_set_t *allowed, const int *broker, int nbroker, cpu_set_t *out)
{
	*out = *allowed;
	for (int i = 0; i < nbroker; i++)
		if (broker[i] >= 0 && broker[i] < CPU_SETSIZE)
			CPU_CLR(broker[i], out);
	if (CPU_COUNT(out) == 0)
		*out = *allowed;
}

static int pop_start(struct vhu_pop *p, const cpu_set_t *cpus)
{
	struct sched_param sp = { .sched_priority = 0 };
	pthread_attr_t at;
	int rc;

	pthread_attr_init(&at);
	/* SCHED_OTHER whatever the creator runs at: populating is background work. */
	pthread_attr_setinheritsched(&at, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&at, SCHED_OTHER);
	pthread_attr_setschedparam(&at, &sp);
	if (cpus)
		pthread_attr_setaffinity_np(&at, sizeof(*cpus), cpus);
	rc = pthread_create(&p->thread, &at, pop_main, p);
	pthread_attr_destroy(&at);
	if (rc)
		return -rc;
	p->running = true;
	return 0;
}

/* MADV_POPULATE_WRITE on a page of a sealable memfd, then F_SEAL_FUTURE_WRITE on it:
 * an older kernel refuses either with EINVAL. */
int vhu_pop_probe(char *why, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int fd = memfd_create("rtvio-probe", MFD_CLOEXEC | MFD_ALLOW_SEALING), rc = 0;
	void *a = MAP_FAILED;

	if (fd < 0 || ftruncate(fd, (off_t)page) < 0) {
		snprintf(why, len, "cannot create a memfd to probe the kernel (%s)", strerror(errno));
		rc = -errno;
		goto out;
	}
	a = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED) {
		snprintf(why, len, "cannot map a memfd to probe the kernel (%s)", strerror(errno));
		rc = -errno;
	} else if (madvise(a, page, MADV_POPULATE_WRITE) < 0) {
		snprintf(why, len, "the kernel lacks madvise(MADV_POPULATE_WRITE) (%s): the "
			 "broker needs Linux 5.14 or later", strerror(errno));
		rc = -ENOSYS;
	} else if (fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0) {
		snprintf(why, len, "the kernel lacks memfd's F_SEAL_FUTURE_WRITE (%s): the "
			 "broker needs Linux 5.1 or later", strerror(errno));
		rc = -ENOSYS;
	}
out:
	if (a != MAP_FAILED)
		munmap(a, page);
	if (fd >= 0)
		close(fd);
	return rc;
}

int vhu_pop_open(struct vhu_pop *p, unsigned int nslots, const cpu_set_t *cpus)
{
	char why[160];
	int rc;

	memset(p, 0, sizeof(*p));
	p->work_fd = p->done_fd = -1;
	rc = vhu_pop_probe(why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "rtvio broker: %s\n", why);
		return rc;
	}
	p->work_fd = p->done_fd = -1;
	p->nslots = nslots ? nslots : 1;
	/* Every slot's one entry fits; a power of two, so that the indices' wrap at 2^32
	 * lands on slot 0 (vhu_pop_qslot). */
	p->qcap = 1;
	while (p->qcap < p->nslots * VHU_MAX_MAPS)
		p->qcap <<= 1;
	p->maps = calloc((size_t)p->nslots * VHU_MAX_MAPS, sizeof(*p->maps));
	p->q = calloc(p->qcap, sizeof(*p->q));
	p->work_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!p->maps || !p->q || p->work_fd < 0 || p->done_fd < 0)
		rc = -ENOMEM;
	else
		rc = pop_start(p, cpus);
	if (rc < 0)
		vhu_pop_close(p);
	return rc;
}

void vhu_pop_close(struct vhu_pop *p)
{
	uint64_t one = 1;

	if (p->running) {
		atomic_store_explicit(&p->stop, true, memory_order_relaxed);
		if (write(p->work_fd, &one, sizeof(one)) < 0) {
			/* Awake already. */
		}
		pthread_join(p->thread, NULL);
		p->running = false;
	}
	if (p->work_fd >= 0)
		close(p->work_fd);
	if (p->done_fd >= 0)
		close(p->done_fd);
	p->work_fd = p->done_fd = -1;
	free(p->maps);
	free(p->q);
	p->maps = NULL;
	p->q = NULL;
}

struct vhu_map *vhu_pop_slots(struct vhu_pop *p, unsigned int slot)
{
	return &p->maps[(size_t)slot * VHU_MAX_MAPS];
}

int vhu_pop_fd(const struct vhu_pop *p)
{
	return p->done_fd;
}

void vhu_pop_ack(struct vhu_pop *p)
{
	uint64_t v;

	if (read(p->done_fd, &v, sizeof(v)) < 0) {
		/* Nothing pending. */
	}
}
