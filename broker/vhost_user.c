/* vhost-user-vsock back end for one cell: see vhost_user.h. */
#include "clock.h"
#include "vhost_user.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define LOG(b, ...) vhu_log(b, __VA_ARGS__)
#define VLOG(b, ...)                                                                     \
	do {                                                                             \
		if ((b)->verbose)                                                        \
			LOG(b, __VA_ARGS__);                                             \
	} while (0)

void vhu_log(struct vhu_backend *b, const char *fmt, ...)
{
	uint64_t now = rtvio_now_ns();
	va_list ap;

	if (!b->verbose) {
		if (now - b->log_window_ns >= VHU_LOG_WINDOW_NS) {
			b->log_window_ns = now;
			b->log_lines = 0;
		}
		if (b->log_lines >= VHU_LOG_BURST) {
			b->log_suppressed++;
			return;
		}
		b->log_lines++;
	}
	if (b->log_suppressed) {
		fprintf(stderr, "rtvio broker: cell %s: %" PRIu64 " more line(s) not shown (at "
			"most %u per %llu s)\n", b->name, b->log_suppressed, VHU_LOG_BURST,
			VHU_LOG_WINDOW_NS / 1000000000ull);
		b->log_suppressed = 0;
	}
	fprintf(stderr, "rtvio broker: cell %s: ", b->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *vhu_request_name(uint32_t request)
{
	static const char *const names[] = {
		[VHU_GET_FEATURES] = "GET_FEATURES",
		[VHU_SET_FEATURES] = "SET_FEATURES",
		[VHU_SET_OWNER] = "SET_OWNER",
		[VHU_RESET_OWNER] = "RESET_OWNER",
		[VHU_SET_MEM_TABLE] = "SET_MEM_TABLE",
		[VHU_SET_LOG_BASE] = "SET_LOG_BASE",
		[VHU_SET_LOG_FD] = "SET_LOG_FD",
		[VHU_SET_VRING_NUM] = "SET_VRING_NUM",
		[VHU_SET_VRING_ADDR] = "SET_VRING_ADDR",
		[VHU_SET_VRING_BASE] = "SET_VRING_BASE",
		[VHU_GET_VRING_BASE] = "GET_VRING_BASE",
		[VHU_SET_VRING_KICK] = "SET_VRING_KICK",
		[VHU_SET_VRING_CALL] = "SET_VRING_CALL",
		[VHU_SET_VRING_ERR] = "SET_VRING_ERR",
		[VHU_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
		[VHU_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
		[VHU_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
		[VHU_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
		[VHU_SEND_RARP] = "SEND_RARP",
		[VHU_NET_SET_MTU] = "NET_SET_MTU",
		[VHU_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
		[VHU_IOTLB_MSG] = "IOTLB_MSG",
		[VHU_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
		[VHU_GET_CONFIG] = "GET_CONFIG",
		[VHU_SET_CONFIG] = "SET_CONFIG",
		[VHU_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
		[VHU_ADD_MEM_REG] = "ADD_MEM_REG",
		[VHU_REM_MEM_REG] = "REM_MEM_REG",
	};

	if (request < sizeof(names) / sizeof(names[0]) && names[request])
		return names[request];
	return "unknown";
}


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

static void ring_reset(struct vhu_ring *r)
{
	memset(r, 0, sizeof(*r));
	r->kick_fd = -1;
	r->call_fd = -1;
	r->err_fd = -1;
}

/* Installs a new kick descriptor; the old one is closed only after the owner of the
 * event loop has stopped watching it (vhu_dev_ops.kick). */
static void set_kick(struct vhu_backend *b, unsigned int q, int fd)
{
	struct vhu_ring *r = &b->ring[q];
	int old = r->kick_fd;

	if (b->ops->kick && (old >= 0 || fd >= 0))
		b->ops->kick(b->ctx, b, q, fd);
	r->kick_fd = fd;
	if (old >= 0)
		close(old);
}

static void ring_close_fds(struct vhu_backend *b, unsigned int q)
{
	struct vhu_ring *r = &b->ring[q];

	set_kick(b, q, -1);
	if (r->call_fd >= 0)
		close(r->call_fd);
	if (r->err_fd >= 0)
		close(r->err_fd);
	r->call_fd = r->err_fd = -1;
}

/* Kick, call and err descriptors must be eventfds: the data path reads and writes
 * them, and a regular file (FUSE, NFS) or a pipe could block it or take data. */
static bool is_eventfd(int fd)
{
	static const char want[] = "anon_inode:[eventfd]";
	char path[32], link[sizeof(want) + 1];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link));
	return n == (ssize_t)sizeof(want) - 1 && memcmp(link, want, sizeof(want) - 1) == 0;
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

static void unmap_regions(struct vhu_backend *b, struct vhu_region *regs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		region_put(b, &regs[i]);
}

void vhu_backend_init(struct vhu_backend *b, const char *name, uint64_t cid,
		      const struct vhu_dev_ops *ops, void *ctx)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
	b->cid = cid;
	b->ops = ops;
	b->ctx = ctx;
	b->sock = -1;
	b->maps = b->own_maps;
	vhu_reader_init(&b->rd);
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		ring_reset(&b->ring[q]);
}

void vhu_backend_connect(struct vhu_backend *b, int sock)
{
	int fl = fcntl(sock, F_GETFL);

	if (fl >= 0)
		fcntl(sock, F_SETFL, fl | O_NONBLOCK);
	b->sock = sock;
	b->messages = 0;
	b->last_error = 0;
	vhu_reader_init(&b->rd);
}

static void device_stop(struct vhu_backend *b)
{
	if (!b->running)
		return;
	b->ops->stop(b->ctx, b);
	b->running = false;
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		b->ring[q].desc = b->ring[q].avail = b->ring[q].used = NULL;
}

/* Forgets everything the front end set up (memory, rings, negotiation) but keeps the
 * connection: RESET_OWNER, and the first half of a disconnect. */
static void backend_reset_state(struct vhu_backend *b)
{
	device_stop(b);
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++) {
		ring_close_fds(b, q);
		ring_reset(&b->ring[q]);
	}
	unmap_regions(b, b->regions, b->nregions);
	memset(b->regions, 0, sizeof(b->regions));
	b->nregions = 0;
	b->pop_wait = false;
	b->owner = false;
	b->features_set = false;
	b->features = 0;
	b->protocol_features = 0;
}

void vhu_backend_disconnect(struct vhu_backend *b)
{
	backend_reset_state(b);
	b->faulted = 0;
	vhu_reader_reset(&b->rd);
	if (b->sock >= 0)
		close(b->sock);
	b->sock = -1;
}

void vhu_backend_signal_err(struct vhu_backend *b, unsigned int queue)
{
	uint64_t one = 1;
	int fd = queue < VHU_VSOCK_QUEUES ? b->ring[queue].err_fd : -1;
	int rc = 0;

	if (fd < 0)
		return;
	if (b->evsig)
		rc = evsig_signal(b->evsig, fd);
	else if (write(fd, &one, sizeof(one)) < 0)
		rc = -errno;
	if (rc < 0)
		VLOG(b, "cannot signal the error eventfd of queue %u: %s", queue, strerror(-rc));
}

static void *translate(const struct vhu_backend *b, uint64_t addr, uint64_t len, bool user)
{
	for (unsigned int i = 0; i < b->nregions; i++) {
		const struct vhu_region *r = &b->regions[i];
		uint64_t start = user ? r->user_addr : r->guest_addr;

		/* Overflow-safe containment: addr - start is only formed once addr >= start,
		 * and len is compared with what is left of the region. */
		if (addr >= start && addr - start < r->size && len <= r->size - (addr - start))
			return r->host + (addr - start);
	}
	return NULL;
}

void *vhu_backend_uva_to_host(const struct vhu_backend *b, uint64_t uva, uint64_t len)
{
	return translate(b, uva, len, true);
}

void *vhu_backend_gpa_to_host(const struct vhu_backend *b, uint64_t gpa, uint64_t len)
{
	return translate(b, gpa, len, false);
}

/* Where the three rings of `r` live here, checked against alignment and the current
 * memory table for a ring of `num` entries. */
static int ring_translate(const struct vhu_backend *b, const struct vhu_vring_addr *a,
			  uint32_t num, void **desc, void **avail, void **used)
{
	uint64_t n = num ? num : 1;

	/* virtio 1.x split ring alignment: descriptors 16, avail 2, used 4. */
	if ((a->desc & 15) || (a->avail & 1) || (a->used & 3))
		return -EINVAL;
	*desc = vhu_backend_uva_to_host(b, a->desc, 16 * n);
	*avail = vhu_backend_uva_to_host(b, a->avail, 6 + 2 * n);
	*used = vhu_backend_uva_to_host(b, a->used, 6 + 8 * n);
	if (!*desc || !*avail || !*used)
		return -EFAULT;
	return 0;
}

static bool ring_ready(const struct vhu_backend *b, const struct vhu_ring *r)
{
	bool enabled = r->enabled || !(b->features & (1ull << VHU_F_PROTOCOL_FEATURES));

	return r->num && r->addr_set && r->started && enabled;
}

/* 1 when every mapping of the table is populated, 0 while one is not yet, or the
 * -errno of a populate that failed. */
static int table_ready(const struct vhu_backend *b)
{
	for (unsigned int i = 0; i < b->nregions; i++) {
		int rc = vhu_map_ready(b->regions[i].map);

		if (rc <= 0)
			return rc;
	}
	return 1;
}

/* Starts the device once both rings are ready; a failure leaves it stopped until the
 * front end changes something. */
static void maybe_start(struct vhu_backend *b)
{
	int rc;

	if (b->running || b->sock < 0 || !b->nregions || b->faulted)
		return;
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		if (!ring_ready(b, &b->ring[q]))
			return;
	/* A process cell's device starts once every page of its table is in: the data
	 * path must not fault. A VM's starts at once, as QEMU expects of a device it
	 * started (its whole RAM takes seconds to fault in): until the populate ends,
	 * the data path may take one first-touch fault per page of the new table. */
	rc = table_ready(b);
	if (rc == 0 && !b->seal)
		rc = 1;
	b->pop_wait = rc == 0;
	if (rc < 0) {
		/* A file cut short under the populate (EFAULT), or no memory for it:
		 * the device cannot start, and the cell is cut off as for a SIGBUS. */
		LOG(b, "its memory could not be faulted in (%s)", strerror(-rc));
		b->last_error = rc;
		b->faulted = 1;
		vhu_fault_pending = 1;
	}
	if (rc <= 0)
		return;
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++) {
		struct vhu_ring *r = &b->ring[q];

		rc = ring_translate(b, &r->addr, r->num, &r->desc, &r->avail, &r->used);
		if (rc < 0) {
			/* Once per cause: every later message would repeat it. */
			if (b->last_error != rc)
				LOG(b, "queue %u does not lie in the memory table: not started", q);
			b->last_error = rc;
			return;
		}
	}
	rc = b->ops->start(b->ctx, b);
	if (rc < 0) {
		if (b->last_error != rc)
			LOG(b, "cannot start the device: %s", strerror(-rc));
		b->last_error = rc;
		for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
			b->ring[q].desc = b->ring[q].avail = b->ring[q].used = NULL;
		return;
	}
	b->running = true;
	VLOG(b, "device started (rx %u, tx %u entries)", b->ring[0].num, b->ring[1].num);
}

void vhu_backend_populated(struct vhu_backend *b)
{
	if (b->pop_wait)
		maybe_start(b);
}

static int send_reply(struct vhu_backend *b, const struct vhu_msg *req, const void *payload,
		      uint32_t size)
{
	struct vhu_msg r;

	vhu_msg_init(&r, req->hdr.request, size);
	r.hdr.flags |= VHU_FLAG_REPLY;
	if (size)
		memcpy(&r.p, payload, size);
	/* Never waits: a front end that leaves its replies unread until the socket
	 * buffer is full gets -EAGAIN here, and is cut off (the daemon logs why). */
	return vhu_send_flags(b->sock, &r, NULL, 0, MSG_DONTWAIT);
}

static int reply_u64(struct vhu_backend *b, const struct vhu_msg *req, uint64_t v)
{
	return send_reply(b, req, &v, sizeof(v));
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

static int set_mem_table(struct vhu_backend *b, const struct vhu_msg *m, int *fds,
			 unsigned int nfds)
{
	const struct vhu_mem_table *t = &m->p.mem;
	struct vhu_region nr[VHU_MAX_REGIONS];
	long page = sysconf(_SC_PAGESIZE);
	uint64_t total = 0;
	unsigned int n;
	int rc = 0;

	n = m->hdr.size < 8 ? 0 : t->nregions;
	if (n == 0 || n > VHU_MAX_REGIONS || m->hdr.size < 8 + 32 * n || nfds != n) {
		vhu_close_fds(fds, &nfds);
		return -EINVAL;
	}
	memset(nr, 0, sizeof(nr));
	if (copy_table(t, n, nr, (uint64_t)page, &total) < 0) {
		vhu_close_fds(fds, &nfds);
		return -EINVAL;
	}
	/* A process cell's table is its region, a VM's its RAM: anything larger would
	 * make the broker map (populate and lock) memory the configuration never
	 * granted. */
	if (b->max_mem && total > b->max_mem) {
		LOG(b, "memory table of %" PRIu64 " bytes refused: larger than the cell's "
		    "configured %s (%" PRIu64 " bytes)", total,
		    b->max_mem_key ? b->max_mem_key : "limit", b->max_mem);
		vhu_close_fds(fds, &nfds);
		return -E2BIG;
	}
	total = 0;
	for (unsigned int i = 0; i < n && !rc; i++)
		rc = map_region(b, i, fds[i], &nr[i], (uint64_t)page, &total);
	/* Sealed only once every region is mapped: a refused table leaves every file
	 * as it came, and the same descriptors can be brought again. */
	if (!rc)
		rc = seal_files(b, nr, fds, n);
	/* The mappings hold the memory now; the descriptors are not needed. */
	vhu_close_fds(fds, &nfds);
	if (rc < 0) {
		unmap_regions(b, nr, n);
		return rc;
	}
	/* No ring may keep pointers into the old table: stop first, swap, and let
	 * maybe_start() re-translate the rings against the new one once every mapping
	 * of it is populated. A mapping both tables use stays (users > 0). */
	device_stop(b);
	unmap_regions(b, b->regions, b->nregions);
	memcpy(b->regions, nr, sizeof(nr));
	b->nregions = n;
	for (unsigned int i = 0; i < n; i++) {
		struct vhu_map *mp = b->regions[i].map;

		if (!mp->fresh)
			continue;
		guard_add(b, mp);
		vhu_map_populate(b->pop, mp);
	}
	VLOG(b, "memory table: %u region(s)", n);
	return 0;
}

/* Index of a queue message, or -EINVAL for queues that are not ours. */
static int queue_index(uint64_t idx)
{
	return idx < VHU_VSOCK_QUEUES ? (int)idx : -EINVAL;
}

static int set_vring_fd(struct vhu_backend *b, const struct vhu_msg *m, int *fds,
			unsigned int nfds)
{
	uint64_t v = m->p.u64;
	bool nofd = v & VHU_VRING_NOFD;
	int q = queue_index(v & VHU_VRING_IDX_MASK);
	struct vhu_ring *r;
	int fd;

	if (m->hdr.size != sizeof(uint64_t) || q < 0 || (v & ~(VHU_VRING_IDX_MASK | VHU_VRING_NOFD)) ||
	    nfds != (nofd ? 0u : 1u)) {
		vhu_close_fds(fds, &nfds);
		return -EINVAL;
	}
	r = &b->ring[q];
	fd = nofd ? -1 : fds[0];
	if (fd >= 0) {
		/* Never block on a descriptor the cell also holds (it could fill or drain
		 * the counter); QEMU's own eventfds are non-blocking too. */
		int fl = fcntl(fd, F_GETFL);

		if (!is_eventfd(fd) || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			close(fd);
			return -EBADF;
		}
	}
	switch (m->hdr.request) {
	case VHU_SET_VRING_KICK:
		set_kick(b, (unsigned int)q, fd);
		r->kick_nofd = nofd;
		/* vhost-user: the ring starts when its kick descriptor arrives. */
		r->started = true;
		break;
	case VHU_SET_VRING_CALL:
		if (r->call_fd >= 0)
			close(r->call_fd);
		r->call_fd = fd;
		break;
	default:
		if (r->err_fd >= 0)
			close(r->err_fd);
		r->err_fd = fd;
		break;
	}
	return 0;
}

static int get_config(struct vhu_backend *b, const struct vhu_msg *m, bool *replied)
{
	const struct vhu_config *c = &m->p.config;
	struct vhu_config out;
	uint8_t space[8];
	int rc;

	*replied = true;
	/* The front end waits for an answer even to a request we refuse: a zero-sized
	 * reply tells it the request failed. */
	if (m->hdr.size < VHU_CONFIG_HDR || c->size > VHU_CONFIG_MAX ||
	    m->hdr.size != VHU_CONFIG_HDR + c->size || c->offset > sizeof(space) ||
	    c->size > sizeof(space) - c->offset) {
		rc = send_reply(b, m, NULL, 0);
		return rc < 0 ? rc : -EINVAL;
	}
	/* virtio-vsock config space: le64 guest_cid. */
	for (unsigned int i = 0; i < sizeof(space); i++)
		space[i] = (uint8_t)(b->cid >> (8 * i));
	out.offset = c->offset;
	out.size = c->size;
	out.flags = c->flags;
	memcpy(out.data, space + c->offset, c->size);
	return send_reply(b, m, &out, VHU_CONFIG_HDR + c->size);
}

/* Requests whose answer is a reply of their own (NEED_REPLY adds nothing). */
static bool has_own_reply(uint32_t request)
{
	switch (request) {
	case VHU_GET_FEATURES:
	case VHU_GET_PROTOCOL_FEATURES:
	case VHU_GET_QUEUE_NUM:
	case VHU_GET_VRING_BASE:
	case VHU_GET_CONFIG:
		return true;
	default:
		return false;
	}
}

static int expect(const struct vhu_msg *m, uint32_t size, int *fds, unsigned int nfds)
{
	if (nfds) {
		vhu_close_fds(fds, &nfds);
		return -EINVAL;
	}
	return m->hdr.size == size ? 0 : -EINVAL;
}

/* GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM: no payload, no descriptors.
 * The front end waits for an answer either way: a malformed request gets a
 * zero-sized reply, which it cannot take for a value. */
static int reply_get_u64(struct vhu_backend *b, const struct vhu_msg *m, int *fds,
			 unsigned int nfds, uint64_t v)
{
	int rc = expect(m, 0, fds, nfds);

	if (rc < 0) {
		int src = send_reply(b, m, NULL, 0);

		return src < 0 ? src : rc;
	}
	return reply_u64(b, m, v);
}

/* SET_FEATURES, SET_PROTOCOL_FEATURES, SET_OWNER, RESET_OWNER: the session's
 * negotiation, each a u64 or nothing. */
static int handle_session(struct vhu_backend *b, const struct vhu_msg *m, int *fds,
			  unsigned int nfds)
{
	uint32_t req = m->hdr.request;
	int rc = expect(m, req == VHU_SET_FEATURES || req == VHU_SET_PROTOCOL_FEATURES ? 8 : 0,
			fds, nfds);

	if (rc < 0)
		return rc;
	switch (req) {
	case VHU_SET_FEATURES:
		/* Acknowledging something we never offered, or not VERSION_1: core/ reads
		 * the rings as virtio 1.x (little-endian) only. */
		if ((m->p.u64 & ~VHU_VSOCK_FEATURES) || !(m->p.u64 & (1ull << VHU_F_VERSION_1)))
			return -EINVAL;
		device_stop(b);
		b->features = m->p.u64;
		b->features_set = true;
		break;
	case VHU_SET_PROTOCOL_FEATURES:
		if (m->p.u64 & ~VHU_VSOCK_PROTOCOL_FEATURES)
			return -EINVAL;
		b->protocol_features = m->p.u64;
		break;
	case VHU_SET_OWNER:
		b->owner = true;
		break;
	default: /* VHU_RESET_OWNER */
		backend_reset_state(b);
		break;
	}
	return 0;
}

/* SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ENABLE: one number for one ring. */
static int handle_vring_state(struct vhu_backend *b, const struct vhu_msg *m, int *fds,
			      unsigned int nfds)
{
	uint32_t req = m->hdr.request, num = m->p.state.num;
	int rc = expect(m, sizeof(struct vhu_vring_state), fds, nfds);
	int q = queue_index(m->p.state.index);

	if (rc == 0 && q < 0)
		rc = q;
	if (rc < 0)
		return rc;
	if (req == VHU_SET_VRING_NUM) {
		if (num == 0 || num > VHU_MAX_QUEUE_SIZE || (num & (num - 1)))
			return -EINVAL;
		device_stop(b);
		b->ring[q].num = num;
	} else if (req == VHU_SET_VRING_BASE) {
		if (num > UINT16_MAX)
			return -EINVAL;
		device_stop(b);
		b->ring[q].base = (uint16_t)num;
	} else {
		if (num > 1)
			return -EINVAL;
		if (!num)
			device_stop(b);
		b->ring[q].enabled = num;
	}
	return 0;
}

static int set_vring_addr(struct vhu_backend *b, const struct vhu_msg *m, int *fds,
			  unsigned int nfds)
{
	struct vhu_vring_addr a;
	void *d, *av, *u;
	int rc = expect(m, sizeof(a), fds, nfds), q;

	if (rc < 0)
		return rc;
	a = m->p.addr;
	q = queue_index(a.index);
	if (q < 0)
		return q;
	/* Bit 0 asks for dirty-page logging, which is never offered (no
	 * VHOST_F_LOG_ALL); no other flag is defined. */
	if (a.flags)
		return -EINVAL;
	rc = ring_translate(b, &a, b->ring[q].num, &d, &av, &u);
	if (rc < 0)
		return rc;
	device_stop(b);
	b->ring[q].addr = a;
	b->ring[q].addr_set = true;
	return 0;
}

static int get_vring_base(struct vhu_backend *b, const struct vhu_msg *m, int *fds,
			  unsigned int nfds, bool *fatal)
{
	struct vhu_vring_state st = { .index = m->p.state.index, .num = 0 };
	int rc = expect(m, sizeof(st), fds, nfds);
	int q = queue_index(m->p.state.index), src;

	if (rc == 0 && q < 0)
		rc = q;
	if (rc == 0) {
		/* The data plane drops the cell's in-flight chains first; then the
		 * ring is stopped and its next avail index is what we report. */
		device_stop(b);
		b->ring[q].started = false;
		st.num = b->ring[q].base;
	}
	/* Always answered: QEMU waits for this reply during guest shutdown. */
	src = send_reply(b, m, &st, sizeof(st));
	if (src < 0) {
		*fatal = true;
		return src;
	}
	return rc;
}

static int handle_unknown(struct vhu_backend *b, uint32_t req, int *fds, unsigned int nfds)
{
	vhu_close_fds(fds, &nfds);
	if (req < 64 && !(b->unknown_logged & (1ull << req))) {
		b->unknown_logged |= 1ull << req;
		LOG(b, "request %" PRIu32 " (%s) not supported: ignored", req,
		    vhu_request_name(req));
	}
	return -EOPNOTSUPP;
}

/* One request to its handler. *replied says whether it answered on its own. */
static int dispatch(struct vhu_backend *b, const struct vhu_msg *m, int *fds,
		    unsigned int nfds, bool *replied, bool *fatal)
{
	uint32_t req = m->hdr.request;

	switch (req) {
	case VHU_GET_FEATURES:
	case VHU_GET_PROTOCOL_FEATURES:
	case VHU_GET_QUEUE_NUM:
		*replied = true;
		return reply_get_u64(b, m, fds, nfds,
				     req == VHU_GET_FEATURES ? VHU_VSOCK_FEATURES :
				     req == VHU_GET_PROTOCOL_FEATURES ? VHU_VSOCK_PROTOCOL_FEATURES :
				     VHU_VSOCK_QUEUES);
	case VHU_SET_FEATURES:
	case VHU_SET_PROTOCOL_FEATURES:
	case VHU_SET_OWNER:
	case VHU_RESET_OWNER:
		return handle_session(b, m, fds, nfds);
	case VHU_GET_CONFIG:
		vhu_close_fds(fds, &nfds);
		return get_config(b, m, replied);
	case VHU_SET_MEM_TABLE:
		return set_mem_table(b, m, fds, nfds);
	case VHU_SET_VRING_NUM:
	case VHU_SET_VRING_BASE:
	case VHU_SET_VRING_ENABLE:
		return handle_vring_state(b, m, fds, nfds);
	case VHU_SET_VRING_ADDR:
		return set_vring_addr(b, m, fds, nfds);
	case VHU_GET_VRING_BASE:
		*replied = true;
		return get_vring_base(b, m, fds, nfds, fatal);
	case VHU_SET_VRING_KICK:
	case VHU_SET_VRING_CALL:
	case VHU_SET_VRING_ERR:
		return set_vring_fd(b, m, fds, nfds);
	default:
		return handle_unknown(b, req, fds, nfds);
	}
}

int vhu_backend_handle(struct vhu_backend *b, const struct vhu_msg *m, int *fds,
		       unsigned int nfds, bool *fatal)
{
	uint32_t req = m->hdr.request;
	/* RESET_OWNER forgets the protocol features: whether an ack is owed is decided
	 * by what was negotiated when the message arrived, or by the message itself. */
	uint64_t pf_before = b->protocol_features;
	bool replied = false;
	int rc;

	*fatal = false;
	b->messages++;
	rc = dispatch(b, m, fds, nfds, &replied, fatal);
	if (replied && rc < 0 && rc != -EINVAL && rc != -EOPNOTSUPP)
		*fatal = true; /* the reply itself could not be sent */
	if (!replied && (m->hdr.flags & VHU_FLAG_NEED_REPLY) &&
	    ((pf_before | b->protocol_features) & (1ull << VHU_PROTOCOL_F_REPLY_ACK)) &&
	    !has_own_reply(req)) {
		int src = reply_u64(b, m, rc < 0 ? 1 : 0);

		if (src < 0) {
			*fatal = true;
			return src;
		}
	}
	if (rc < 0 && !*fatal) {
		b->last_error = rc;
		VLOG(b, "%s refused: %s", vhu_request_name(req), strerror(-rc));
	}
	maybe_start(b);
	return rc;
}

bool vhu_msg_heavy(const struct vhu_backend *b, const struct vhu_msg *m)
{
	switch (m->hdr.request) {
	case VHU_SET_MEM_TABLE:
	case VHU_RESET_OWNER:
		return true;
	/* Each of these stops a running device (dp_detach), after which it may start
	 * again (dp_attach). */
	case VHU_SET_FEATURES:
	case VHU_SET_VRING_NUM:
	case VHU_SET_VRING_BASE:
	case VHU_SET_VRING_ADDR:
	case VHU_SET_VRING_ENABLE:
	case VHU_GET_VRING_BASE:
		return b->running;
	default:
		return false;
	}
}

int vhu_backend_service_allow(struct vhu_backend *b, struct vhu_allow *left)
{
	for (;;) {
		bool fatal, heavy;
		int rc;

		rc = vhu_reader_read(b->sock, &b->rd);
		if (rc == 0)
			return 0;
		if (rc < 0) {
			if (rc != -ECONNRESET)
				LOG(b, "front end broke the vhost-user framing: %s", strerror(-rc));
			return rc;
		}
		/* A message beyond the allowance stays in the reader, whole and unhandled:
		 * the next call finds it complete and takes it first. So 1 always means
		 * that one is waiting. */
		heavy = vhu_msg_heavy(b, &b->rd.msg);
		if (!left->msgs || (heavy && !left->maps))
			return 1;
		if (heavy)
			left->maps--;
		left->msgs--;
		rc = vhu_backend_handle(b, &b->rd.msg, b->rd.fds, b->rd.nfds, &fatal);
		/* vhu_backend_handle kept or closed every descriptor. */
		vhu_reader_init(&b->rd);
		if (fatal)
			return rc < 0 ? rc : -EPIPE;
	}
}

int vhu_backend_service(struct vhu_backend *b, unsigned int budget)
{
	struct vhu_allow left = { .msgs = budget, .maps = UINT_MAX };
	int rc = vhu_backend_service_allow(b, &left);

	return rc > 0 ? 0 : rc;
}
