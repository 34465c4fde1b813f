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

/* Tests: the thread stands still, its jobs and their mappings with it, but for the
 * pieces it is allowed. */
static void pop_hold(struct vhu_pop *p)
{
	struct timespec ts = { 0, 1000000 };

	while (p && atomic_load_explicit(&p->hold, memory_order_relaxed) &&
	       !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
		unsigned int a = atomic_load_explicit(&p->allow, memory_order_relaxed);

		if (a && atomic_compare_exchange_weak_explicit(&p->allow, &a, a - 1,
							       memory_order_relaxed,
							       memory_order_relaxed))
			return;
		nanosleep(&ts, NULL);
	}
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

/* Without a memory thread (tests of the back end alone) the last owner unmaps at
 * once, in one call; the release store orders the munmap (and every field written
 * before it) before a later vhu_map_take sees the slot free. */
static void map_release(struct vhu_map *m)
{
	size_t span = map_span(m);

	if (atomic_fetch_sub_explicit(&m->owners, 1, memory_order_acq_rel) != 1)
		return;
	if (munmap(m->addr, span) < 0)
		unmap_whole(m, span, 0, errno);
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
		m->foff = 0;
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

/* log2 of n, a power of two. */
static unsigned int log2_of(size_t n)
{
	return (unsigned int)__builtin_ctzll((unsigned long long)n);
}

void vhu_map_populate(struct vhu_pop *p, struct vhu_map *m)
{
	m->fresh = false;
	vq_ready_init(&m->ready, m->addr, m->len, log2_of(piece_of(m, VHU_POP_PIECE_PAGES)));
	if (!p) {
		vq_ready_set_all(&m->ready);
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
		map_release(m);
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

/* A mapping the memory thread works on: populating it granule by granule (g, and in:
 * bytes of g faulted in; sweep: the next granule in order), then, should the thread
 * be its last owner, unmapping it (off: bytes unmapped). */
struct vhu_pop_work {
	struct vhu_map *m;
	unsigned int sweep, g;
	size_t in;
	bool full;    /* every granule is in */
	size_t off;
	bool unmapping;
};

/* Wakes the loop: a job ended, or a granule the data path asked for is in. The
 * broker's own non-blocking eventfd. */
static void pop_tell(struct vhu_pop *p)
{
	uint64_t one = 1;

	if (write(p->done_fd, &one, sizeof(one)) < 0) {
		/* The loop has a wake-up pending already. */
	}
}

/* The populate ended (every piece in, a piece refused, or cut short): the loop hears
 * of a finished or failed one, and the thread's ownership ends. True when the thread
 * was the last owner: the mapping is then unmapped, piece by piece, as work of its own.
 * A mapping the loop handed over comes here at once (cancel set). */
static bool populate_end(struct vhu_pop *p, struct vhu_pop_work *w, int rc)
{
	struct vhu_map *m = w->m;
	bool told = rc < 0 || w->full;

	/* Release: the loop that sees the flag or the error starts (or refuses) the
	 * device only after every piece returned. */
	if (rc < 0)
		atomic_store_explicit(&m->result, rc, memory_order_release);
	else if (w->full) {
		atomic_store_explicit(&m->populated, true, memory_order_release);
		atomic_fetch_add_explicit(&p->jobs, 1, memory_order_relaxed);
	}
	/* A cancelled job tells nobody. */
	if (told)
		pop_tell(p);
	/* Acq_rel: the last owner sees every other owner done with m. */
	if (atomic_fetch_sub_explicit(&m->owners, 1, memory_order_acq_rel) != 1)
		return false;
	w->unmapping = true;
	w->off = 0;
	return true;
}

/* One unmap piece; false once the whole range is gone and the slot is free. */
static bool unmap_step(struct vhu_pop *p, struct vhu_pop_work *w)
{
	struct vhu_map *m = w->m;
	size_t span = map_span(m), piece = piece_of(m, VHU_UNMAP_PIECE_PAGES);
	size_t len = span - w->off < piece ? span - w->off : piece;

	if (w->off < span) {
		atomic_fetch_add_explicit(&p->unmap_pieces, 1, memory_order_relaxed);
		if (munmap((char *)m->addr + w->off, len) < 0) {
			unmap_whole(m, span, w->off, errno);
			w->off = span;
		} else {
			w->off += len;
		}
		if (w->off < span)
			return true;
	}
	atomic_fetch_add_explicit(&p->unmaps, 1, memory_order_relaxed);
	/* Release: the munmap (and every field written before it) happens before a later
	 * vhu_map_take sees the slot free. */
	atomic_store_explicit(&m->busy, false, memory_order_release);
	return false;
}

/* The granule to fault in next: the first one the data path wants, else the next
 * in order that is not in yet; the ready map's size when every one is. A granule
 * left half done for a wanted one is started again later (its pages that are in
 * cost little the second time). */
static unsigned int next_granule(struct vhu_pop_work *w)
{
	const struct vq_ready *r = &w->m->ready;
	unsigned int g = vq_ready_wanted(r);

	if (g < r->n)
		return g;
	while (w->sweep < r->n && vq_ready_is_in(r, w->sweep))
		w->sweep++;
	return w->sweep;
}

/* One populate piece of the granule next_granule names; false once w is done. */
static bool populate_step(struct vhu_pop *p, struct vhu_pop_work *w)
{
	struct vhu_map *m = w->m;
	size_t gsize = (size_t)1 << m->ready.shift, start, glen, len;
	unsigned int g;

	/* A mapping handed over unpopulated has no ready map yet: the cut comes first. */
	if (job_cut(p, m))
		return populate_end(p, w, 0);
	g = next_granule(w);
	w->full = g >= m->ready.n;
	if (w->full)
		return populate_end(p, w, 0);
	if (g != w->g)
		w->in = 0;
	w->g = g;
	start = (size_t)g * gsize;
	glen = m->len - start < gsize ? m->len - start : gsize;
	len = glen - w->in < piece_of(m, VHU_POP_PIECE_PAGES) ? glen - w->in
							      : piece_of(m, VHU_POP_PIECE_PAGES);
	if (madvise((char *)m->addr + start + w->in, len, MADV_POPULATE_WRITE) < 0)
		return errno == EINTR || errno == EAGAIN || populate_end(p, w, -errno);
	atomic_fetch_add_explicit(&p->pieces, 1, memory_order_relaxed);
	w->in += len;
	if (w->in < glen)
		return true;
	w->in = 0;
	/* Told whenever the data path asked for g, also while this piece ran: it may be
	 * waiting for it (vq_ready.h: no request is lost). */
	if (vq_ready_set(&m->ready, g))
		pop_tell(p);
	return true;
}

/* One piece of w's work, looking for a cancel before each populate piece; false once
 * w is done. */
static bool work_step(struct vhu_pop *p, struct vhu_pop_work *w)
{
	pop_hold(p);
	if (w->unmapping)
		return unmap_step(p, w);
	return populate_step(p, w);
}

/* One piece of every mapping in work, in the order they came: a small table is in
 * after as many rounds as it has pieces, however large the tables queued before it
 * (one memory thread serves every cell). Finished work leaves the list. */
static void work_round(struct vhu_pop *p)
{
	unsigned int kept = 0;

	for (unsigned int i = 0; i < p->nwork; i++)
		if (work_step(p, &p->work[i]))
			p->work[kept++] = p->work[i];
	p->nwork = kept;
}

/* Stopping: populates are given up (the thread's ownership ends, unmapping what only
 * it still owned), unmaps finished. */
static void work_drain(struct vhu_pop *p)
{
	struct vhu_map *m;

	while (p->nwork < p->qcap && (m = pop_next(p)))
		p->work[p->nwork++] = (struct vhu_pop_work){ .m = m };
	for (unsigned int i = 0; i < p->nwork; i++) {
		struct vhu_pop_work *w = &p->work[i];

		if (!w->unmapping && !populate_end(p, w, -ECANCELED))
			continue;
		while (unmap_step(p, w))
			;
	}
	p->nwork = 0;
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

		/* qcap covers every slot, and a slot has one entry at a time. */
		while (p->nwork < p->qcap && (m = pop_next(p)))
			p->work[p->nwork++] = (struct vhu_pop_work){ .m = m };
		if (p->nwork) {
			work_round(p);
			continue;
		}
		/* Blocks in poll: the loop writes after every job it queues (the eventfd is
		 * non-blocking so that the loop's write never can). */
		if (poll(&pf, 1, -1) < 0 && errno != EINTR)
			break;
		if (read(p->work_fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR)
			break;
	}
	work_drain(p);
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
	p->work = calloc(p->qcap, sizeof(*p->work));
	p->work_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!p->maps || !p->q || !p->work || p->work_fd < 0 || p->done_fd < 0) {
		rc = -ENOMEM;
	} else {
		/* Every slot written once now (calloc's pages may not be in yet), so that
		 * the loop's first use of a slot's ready map takes no page fault. */
		for (size_t i = 0; i < (size_t)p->nslots * VHU_MAX_MAPS; i++)
			vq_ready_init(&p->maps[i].ready, NULL, 0, 0);
		rc = pop_start(p, cpus);
	}
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
	free(p->work);
	p->maps = NULL;
	p->q = NULL;
	p->work = NULL;
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
