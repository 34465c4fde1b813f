/* vhost-user-vsock back end for one cell: see vhost_user.h. */
#include "clock.h"
#include "vhost_user.h"
#include "vhu_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG(b, ...) vhu_log(b, __VA_ARGS__)
#define VLOG VHU_VLOG

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

static void rings_forget(struct vhu_backend *b)
{
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		b->ring[q].desc = b->ring[q].avail = b->ring[q].used = NULL;
}

static void device_stop(struct vhu_backend *b)
{
	if (!b->running)
		return;
	b->ops->stop(b->ctx, b);
	b->running = false;
	rings_forget(b);
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
	vhu_mem_release(b, b->regions, b->nregions);
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

/* The front end's memory could not be faulted in (a file cut short under the
 * populate: EFAULT; or no memory for it): the device cannot run, and the cell is cut
 * off as for a SIGBUS. */
static void populate_failed(struct vhu_backend *b, int rc)
{
	if (b->faulted)
		return;
	LOG(b, "its memory could not be faulted in (%s)", strerror(-rc));
	b->last_error = rc;
	b->faulted = 1;
	vhu_fault_pending = 1;
}

void vhu_backend_mem(const struct vhu_backend *b, struct vq_mem_region *mem)
{
	for (unsigned int i = 0; i < b->nregions; i++) {
		const struct vhu_region *r = &b->regions[i];

		mem[i] = (struct vq_mem_region){
			.gpa = r->guest_addr,
			.size = r->size,
			.host = r->host,
			.ready = b->seal || !r->map ? NULL : &r->map->ready,
		};
	}
}

/* Are the pages of [host, host + len) in? If not, the memory thread is asked for
 * them first. */
static bool range_in(const struct vhu_backend *b, const void *host, uint64_t len)
{
	struct vq_mem_region mem[VHU_MAX_REGIONS];

	vhu_backend_mem(b, mem);
	return vq_mem_ready(mem, b->nregions, host, len) ||
	       vq_mem_want(mem, b->nregions, host, len);
}

/* Are the three rings of both queues in (ring_translate done)? Every part that is
 * not is asked for at once. */
static bool rings_in(const struct vhu_backend *b)
{
	bool in = true;

	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++) {
		const struct vhu_ring *r = &b->ring[q];
		uint64_t n = r->num ? r->num : 1;

		in &= range_in(b, r->desc, 16 * n);
		in &= range_in(b, r->avail, 6 + 2 * n);
		in &= range_in(b, r->used, 6 + 8 * n);
	}
	return in;
}

/* Translates both queues' rings into the current table: false (logged once per
 * cause, since every later message would repeat it) when one does not lie in it. */
static bool rings_translate(struct vhu_backend *b)
{
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++) {
		struct vhu_ring *r = &b->ring[q];
		int rc = ring_translate(b, &r->addr, r->num, &r->desc, &r->avail, &r->used);

		if (rc < 0) {
			if (b->last_error != rc)
				LOG(b, "queue %u does not lie in the memory table: not started", q);
			b->last_error = rc;
			rings_forget(b);
			return false;
		}
	}
	return true;
}

/* Starts the device once both rings are ready; a failure leaves it stopped until the
 * front end changes something.
 *
 * A process cell's device starts once every page of its table is in. A VM's starts
 * as soon as the pages of its rings are, as QEMU expects of a device it started (its
 * whole RAM takes seconds to fault in): the memory thread fills in the rest behind
 * it, and until then a chain that names a page not yet in waits on the ring
 * (VQ_NOT_READY) while the thread takes that page first. Either way the data path
 * never touches a page the thread has not faulted in. */
static void maybe_start(struct vhu_backend *b)
{
	int rc;

	if (b->running || b->sock < 0 || !b->nregions || b->faulted)
		return;
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		if (!ring_ready(b, &b->ring[q]))
			return;
	rc = table_ready(b);
	if (rc < 0) {
		populate_failed(b, rc);
		return;
	}
	b->pop_wait = rc == 0 && b->seal;
	if (b->pop_wait || !rings_translate(b))
		return;
	if (rc == 0 && !rings_in(b)) {
		b->pop_wait = true;
		rings_forget(b);
		return;
	}
	rc = b->ops->start(b->ctx, b);
	if (rc < 0) {
		if (b->last_error != rc)
			LOG(b, "cannot start the device: %s", strerror(-rc));
		b->last_error = rc;
		rings_forget(b);
		return;
	}
	b->running = true;
	VLOG(b, "device started (rx %u, tx %u entries)", b->ring[0].num, b->ring[1].num);
}

void vhu_backend_populated(struct vhu_backend *b)
{
	int rc;

	if (b->pop_wait) {
		maybe_start(b);
		return;
	}
	/* A running VM whose memory could not all be faulted in: its chains that name
	 * the pages left out would wait for ever. */
	rc = b->running ? table_ready(b) : 0;
	if (rc < 0)
		populate_failed(b, rc);
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

static int set_mem_table(struct vhu_backend *b, const struct vhu_msg *m, int *fds,
			 unsigned int nfds)
{
	const struct vhu_mem_table *t = &m->p.mem;
	struct vhu_region nr[VHU_MAX_REGIONS];
	unsigned int n = m->hdr.size < 8 ? 0 : t->nregions;
	int rc = -EINVAL;

	memset(nr, 0, sizeof(nr));
	if (n && n <= VHU_MAX_REGIONS && m->hdr.size >= 8 + 32 * n && nfds == n)
		rc = vhu_mem_map(b, t, n, fds, nr);
	/* The mappings hold the memory now; the descriptors are not needed. */
	vhu_close_fds(fds, &nfds);
	if (rc < 0)
		return rc;
	/* No ring may keep pointers into the old table: stop first, swap, and let
	 * maybe_start() re-translate the rings against the new one once every mapping
	 * of it is populated. A mapping both tables use stays (users > 0). */
	device_stop(b);
	vhu_mem_release(b, b->regions, b->nregions);
	memcpy(b->regions, nr, sizeof(nr));
	b->nregions = n;
	vhu_mem_start(b);
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
