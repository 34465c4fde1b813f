/* A front end's memory in the broker: its memory table checked, mapped, sealed and
 * released, and the SIGBUS guard over what is mapped (vhu_mem.h). */
#include "vhu_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define LOG(b, ...) vhu_log(b, __VA_ARGS__)
#define VLOG VHU_VLOG

/* ---- SIGBUS guard ------------------------------------------------------------------ */

struct guard_slot {
	_Atomic uintptr_t start; /* 0: free */
	uintptr_t end;
	struct vhu_backend *b;
};

volatile sig_atomic_t vhu_fault_pending;
static struct guard_slot guard[VHU_GUARD_SLOTS];
static uintptr_t guard_page;

static void sigbus_handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	(void)uc;
	for (unsigned int i = 0; i < VHU_GUARD_SLOTS; i++) {
		uintptr_t start = atomic_load_explicit(&guard[i].start, memory_order_acquire);

		if (!start || a < start || a >= guard[i].end)
			continue;
		/* mmap is a plain system call here; the zero page makes the interrupted
		 * load or store complete, and the flag tells the loop what happened. */
		if (mmap((void *)(a & ~(guard_page - 1)), guard_page, PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
			break;
		guard[i].b->faulted = 1;
		vhu_fault_pending = 1;
		return;
	}
	/* Not a front end's memory: a real bug. Die as if there were no handler. */
	signal(sig, SIG_DFL);
	raise(sig);
}

int vhu_sigbus_install(void)
{
	struct sigaction sa, cur;

	/* Someone may have replaced it since (a test harness does): check, not a flag. */
	if (sigaction(SIGBUS, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
	    cur.sa_sigaction == sigbus_handler)
		return 0;
	guard_page = (uintptr_t)sysconf(_SC_PAGESIZE);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigbus_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0)
		return -errno;
	return 0;
}

/* Registration happens in the loop thread, the only one that touches cell memory;
 * the release store publishes end and b before start makes the slot visible. */
static void guard_add(struct vhu_backend *b, const struct vhu_map *m)
{
	for (unsigned int i = 0; i < VHU_GUARD_SLOTS; i++) {
		if (atomic_load_explicit(&guard[i].start, memory_order_relaxed))
			continue;
		guard[i].end = (uintptr_t)m->addr + m->len;
		guard[i].b = b;
		atomic_store_explicit(&guard[i].start, (uintptr_t)m->addr, memory_order_release);
		return;
	}
	LOG(b, "warning: SIGBUS guard full: this region is unguarded");
}

static void guard_del(const struct vhu_map *m)
{
	for (unsigned int i = 0; i < VHU_GUARD_SLOTS; i++)
		if (atomic_load_explicit(&guard[i].start, memory_order_relaxed) == (uintptr_t)m->addr)
			atomic_store_explicit(&guard[i].start, 0, memory_order_release);
}

/* Memory the broker maps must be shared memory (memfd, tmpfs, hugetlbfs): pages of
 * a file on disk or on FUSE would fault in the data path through a file system, at
 * the speed (or the will) of whoever serves it. Returns the file's page size (its
 * huge page on hugetlbfs: mapped, populated and unmapped only whole), or 0. */
static size_t shmem_page(int fd, const struct stat *st)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct statfs fs;

	if (!S_ISREG(st->st_mode) || fstatfs(fd, &fs) < 0)
		return 0;
	if ((unsigned long)fs.f_type == TMPFS_MAGIC)
		return page;
	if ((unsigned long)fs.f_type == HUGETLBFS_MAGIC && fs.f_bsize > 0 &&
	    (size_t)fs.f_bsize % page == 0)
		return (size_t)fs.f_bsize;
	return 0;
}

/* One region stops using its mapping; the last user ends the loop's ownership of it
 * (the guard goes first: the loop touches nothing of it after). The munmap is the
 * memory thread's, in pieces, never the loop's (populate.h). */
static void region_put(struct vhu_backend *b, struct vhu_region *r)
{
	struct vhu_map *m = r->map;

	if (!m)
		return;
	r->map = NULL;
	if (--m->users)
		return;
	guard_del(m);
	vhu_map_drop(b->pop, m);
}

void vhu_mem_release(struct vhu_backend *b, struct vhu_region *regs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		region_put(b, &regs[i]);
}

static bool overlap(uint64_t a, uint64_t b, uint64_t size_a, uint64_t size_b)
{
	return a < b + size_b && b < a + size_a;
}

/* Copies the front end's table into nr[] once (then only the copy is looked at) and
 * checks what needs no descriptor; *total = the sum of the sizes. */
static int copy_table(const struct vhu_mem_table *t, unsigned int n, struct vhu_region *nr,
		      uint64_t page, uint64_t *total)
{
	*total = 0;
	for (unsigned int i = 0; i < n; i++) {
		const struct vhu_mem_region *w = &t->regions[i];
		struct vhu_region *r = &nr[i];

		r->guest_addr = w->guest_addr;
		r->size = w->size;
		r->user_addr = w->user_addr;
		r->mmap_offset = w->mmap_offset;
		if (r->size == 0 || r->size > VHU_MAX_REGION_SIZE ||
		    r->guest_addr > UINT64_MAX - r->size || r->user_addr > UINT64_MAX - r->size ||
		    r->mmap_offset > UINT64_MAX - r->size - page)
			return -EINVAL;
		/* Overlapping ranges, guest or user, make translation ambiguous. */
		for (unsigned int j = 0; j < i; j++)
			if (overlap(r->guest_addr, nr[j].guest_addr, r->size, nr[j].size) ||
			    overlap(r->user_addr, nr[j].user_addr, r->size, nr[j].size))
				return -EINVAL;
		*total += r->size; /* at most 8 * 2^38: no overflow */
	}
	return 0;
}

/* A process cell's file must take F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE: after them
 * it can neither shrink nor have holes punched into it (fallocate PUNCH_HOLE and
 * madvise MADV_REMOVE fail with EPERM), so no page the broker maps can go away. */
static int seal_check(struct vhu_backend *b, unsigned int i, int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0) {
		LOG(b, "memory region %u refused: its file cannot be sealed (%s): a process "
		    "cell's memory must be a memfd created with MFD_ALLOW_SEALING", i,
		    strerror(errno));
		return -EPERM;
	}
	if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) {
		LOG(b, "memory region %u refused: its file is sealed against writing already "
		    "(attached before?): attach with a new memfd", i);
		return -EPERM;
	}
	if (seals & F_SEAL_SEAL) {
		LOG(b, "memory region %u refused: its file cannot be sealed (F_SEAL_SEAL is "
		    "set): create it with memfd_create(MFD_ALLOW_SEALING) and leave "
		    "F_SEAL_SEAL off", i);
		return -EPERM;
	}
	return 0;
}

/* The mapping of a file the current or the new table already maps (process cells). */
static struct vhu_map *find_map(struct vhu_backend *b, const struct stat *st)
{
	for (unsigned int k = 0; k < VHU_MAX_MAPS; k++) {
		struct vhu_map *m = &b->maps[k];

		if (m->users && m->dev == st->st_dev && m->ino == st->st_ino)
			return m;
	}
	return NULL;
}

/* A slot for a mapping of len bytes, taken before the mmap so that nothing mapped is
 * ever refused (and unmapped by the loop) for want of one. Refused while the front
 * end's earlier mappings, still being unmapped by the memory thread, take every slot
 * or more than VHU_HELD_TABLES times its memory limit (populate.h, "Slots"). */
static struct vhu_map *map_slot(struct vhu_backend *b, unsigned int i, size_t len,
				size_t page, dev_t dev, ino_t ino)
{
	struct vhu_map *m = NULL;

	if (!b->max_mem || vhu_maps_held(b->maps) + len <= VHU_HELD_TABLES * b->max_mem)
		m = vhu_map_take(b->maps, len, dev, ino);
	if (!m)
		LOG(b, "memory region %u refused: earlier tables are still being released "
		    "(try again)", i);
	else
		m->page = page;
	return m;
}

/* A process cell's file, mapped whole once (and sealed by seal_files once the whole
 * table is mapped); *total gains its size when it is not mapped yet. Reusing the
 * mapping is the only way a later table (same connection) can name the file:
 * sealed, it can never be mapped writable again. */
static int map_file(struct vhu_backend *b, unsigned int i, int fd, const struct stat *st,
		    size_t page, uint64_t *total, struct vhu_map **out)
{
	void *addr;
	int rc;

	*out = find_map(b, st);
	if (*out)
		return 0;
	if (st->st_size <= 0)
		return -EINVAL;
	*total += (uint64_t)st->st_size;
	if (b->max_mem && *total > b->max_mem) {
		LOG(b, "memory region %u refused: its file (%" PRIu64 " bytes) takes the "
		    "table beyond the cell's configured %s (%" PRIu64 " bytes)", i,
		    (uint64_t)st->st_size, b->max_mem_key ? b->max_mem_key : "limit",
		    b->max_mem);
		return -E2BIG;
	}
	rc = seal_check(b, i, fd);
	if (rc < 0)
		return rc;
	*out = map_slot(b, i, (size_t)st->st_size, page, st->st_dev, st->st_ino);
	if (!*out)
		return -EBUSY;
	addr = mmap(NULL, (size_t)st->st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (addr == MAP_FAILED) {
		LOG(b, "cannot map region %u (%" PRIu64 " bytes): %s", i,
		    (uint64_t)st->st_size, strerror(errno));
		vhu_map_untake(*out);
		*out = NULL;
		return -ENOMEM;
	}
	(*out)->addr = addr;
	return 0;
}

/* The mapping of the same range of the same file in the current or the new table
 * (a VM's region). */
static struct vhu_map *find_range(struct vhu_backend *b, const struct stat *st, uint64_t off,
				  size_t len)
{
	for (unsigned int k = 0; k < VHU_MAX_MAPS; k++) {
		struct vhu_map *m = &b->maps[k];

		if (m->users && m->dev == st->st_dev && m->ino == st->st_ino &&
		    m->foff == off && m->len == len)
			return m;
	}
	return NULL;
}

/* A `vm = yes` cell's region, mapped on its own in whole pages of its file (a VMM's
 * file is not write-sealed: QEMU seals its RAM with F_SEAL_SEAL, and may map it
 * again itself; seal_files seals it against shrinking once the table is mapped).
 * A region the current table maps already is pointed into that mapping: QEMU sends
 * its table again at every device start (a guest's driver reset), and the mapping
 * the memory thread has faulted in stays, so a guest cannot reopen the window in
 * which its device runs before its RAM is in (docs/broker.md, *Known limitations*). */
static int map_range(struct vhu_backend *b, unsigned int i, int fd, const struct stat *st,
		     struct vhu_region *r, uint64_t page, struct vhu_map **out)
{
	uint64_t off = r->mmap_offset & ~(page - 1), delta = r->mmap_offset - off;
	size_t len = (size_t)((r->size + delta + page - 1) & ~(page - 1));
	void *addr;

	*out = find_range(b, st, off, len);
	if (*out) {
		r->host = (uint8_t *)(*out)->addr + delta;
		return 0;
	}
	*out = map_slot(b, i, len, (size_t)page, st->st_dev, st->st_ino);
	if (!*out)
		return -EBUSY;
	(*out)->foff = off;
	addr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
	if (addr == MAP_FAILED) {
		LOG(b, "cannot map region %u (%" PRIu64 " bytes): %s", i, r->size,
		    strerror(errno));
		vhu_map_untake(*out);
		*out = NULL;
		return -ENOMEM;
	}
	(*out)->addr = addr;
	r->host = (uint8_t *)addr + delta;
	return 0;
}

/* Region i of a new table into the broker: checked, then mapped or pointed into a
 * mapping of the same file. */
static int map_region(struct vhu_backend *b, unsigned int i, int fd, struct vhu_region *r,
		      uint64_t page, uint64_t *total)
{
	struct vhu_map *m;
	struct stat st;
	size_t fpage;
	int rc;

	if (fstat(fd, &st) < 0)
		return -EINVAL;
	fpage = shmem_page(fd, &st);
	if (!fpage) {
		LOG(b, "memory region %u refused: not shared memory (memfd, tmpfs or "
		    "hugetlbfs)", i);
		return -EINVAL;
	}
	/* Mapping past the end of the file would turn an access into SIGBUS. */
	if ((uint64_t)st.st_size < r->mmap_offset + r->size)
		return -EINVAL;
	if (fpage > page)
		page = fpage;
	rc = b->seal ? map_file(b, i, fd, &st, page, total, &m)
		     : map_range(b, i, fd, &st, r, page, &m);
	if (rc < 0)
		return rc;
	/* A file that grew after it was mapped: only what is mapped counts. */
	if (b->seal && r->mmap_offset + r->size > m->len) {
		if (!m->users)
			vhu_map_drop(b->pop, m);
		return -EINVAL;
	}
	if (b->seal)
		r->host = (uint8_t *)m->addr + r->mmap_offset;
	m->users++;
	r->map = m;
	return 0;
}

/* The files a new table maps afresh take their seals: a process cell's
 * F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE (refused, the whole table, when it cannot), a
 * VM's F_SEAL_SHRINK when its file lets us (shrinking would turn the broker's
 * accesses into SIGBUS, and the guard then cuts the cell off), as QEMU's own
 * memory-backend-memfd does. A file named twice in the table is sealed twice
 * (adding a seal it has is no change). */
static int seal_files(struct vhu_backend *b, const struct vhu_region *nr, const int *fds,
		      unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		int seals;

		if (!nr[i].map->fresh)
			continue;
		if (b->seal) {
			if (fcntl(fds[i], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE) == 0)
				continue;
			LOG(b, "memory region %u refused: cannot seal its file (%s): attach "
			    "with a new memfd created with MFD_ALLOW_SEALING", i,
			    strerror(errno));
			return -EPERM;
		}
		seals = fcntl(fds[i], F_GET_SEALS);
		if (seals >= 0 && !(seals & F_SEAL_SHRINK) &&
		    fcntl(fds[i], F_ADD_SEALS, F_SEAL_SHRINK) < 0)
			VLOG(b, "region %u cannot be sealed against shrinking: truncating it "
			     "gets the cell cut off through the SIGBUS guard", i);
	}
	return 0;
}

int vhu_mem_map(struct vhu_backend *b, const struct vhu_mem_table *t, unsigned int n,
		const int *fds, struct vhu_region *nr)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t total = 0;
	int rc = 0;

	if (copy_table(t, n, nr, (uint64_t)page, &total) < 0)
		return -EINVAL;
	/* A process cell's table is its region, a VM's its RAM: anything larger would
	 * make the broker map (populate and lock) memory the configuration never
	 * granted. */
	if (b->max_mem && total > b->max_mem) {
		LOG(b, "memory table of %" PRIu64 " bytes refused: larger than the cell's "
		    "configured %s (%" PRIu64 " bytes)", total,
		    b->max_mem_key ? b->max_mem_key : "limit", b->max_mem);
		return -E2BIG;
	}
	total = 0;
	for (unsigned int i = 0; i < n && !rc; i++)
		rc = map_region(b, i, fds[i], &nr[i], (uint64_t)page, &total);
	/* Sealed only once every region is mapped: a refused table leaves every file
	 * as it came, and the same descriptors can be brought again. */
	if (!rc)
		rc = seal_files(b, nr, fds, n);
	if (rc < 0)
		vhu_mem_release(b, nr, n);
	return rc;
}

void vhu_mem_start(struct vhu_backend *b)
{
	for (unsigned int i = 0; i < b->nregions; i++) {
		struct vhu_map *m = b->regions[i].map;

		if (!m->fresh)
			continue;
		guard_add(b, m);
		vhu_map_populate(b->pop, m);
	}
}
