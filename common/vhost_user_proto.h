/* The vhost-user wire protocol as rtvio speaks it (QEMU docs/interop/vhost-user.rst),
 * shared by the broker's backend (broker/vhost_user.c) and the process-cell front end
 * (cell/). Header-only on purpose: both sides include it without a library of its own.
 *
 * Every message is a 12-byte header (request, flags, payload size) followed by `size`
 * payload bytes; file descriptors travel as SCM_RIGHTS ancillary data attached to the
 * header. All fields are in the host's byte order (both ends run on one machine).
 * The front end (QEMU, or a process cell) writes requests; the back end (the broker)
 * writes replies. Each side treats what the other wrote as untrusted: sizes are
 * checked against the request's payload type before a field is used.
 *
 * The layouts below are ABI: they are _Static_assert'ed so that a compiler or a
 * careless edit cannot move a field. */
#ifndef RTVIO_VHOST_USER_PROTO_H
#define RTVIO_VHOST_USER_PROTO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- Requests (front end -> back end) ---------------------------------------- */
enum vhu_request {
	VHU_GET_FEATURES = 1,
	VHU_SET_FEATURES = 2,
	VHU_SET_OWNER = 3,
	VHU_RESET_OWNER = 4,
	VHU_SET_MEM_TABLE = 5,
	VHU_SET_LOG_BASE = 6,
	VHU_SET_LOG_FD = 7,
	VHU_SET_VRING_NUM = 8,
	VHU_SET_VRING_ADDR = 9,
	VHU_SET_VRING_BASE = 10,
	VHU_GET_VRING_BASE = 11,
	VHU_SET_VRING_KICK = 12,
	VHU_SET_VRING_CALL = 13,
	VHU_SET_VRING_ERR = 14,
	VHU_GET_PROTOCOL_FEATURES = 15,
	VHU_SET_PROTOCOL_FEATURES = 16,
	VHU_GET_QUEUE_NUM = 17,
	VHU_SET_VRING_ENABLE = 18,
	VHU_SEND_RARP = 19,
	VHU_NET_SET_MTU = 20,
	VHU_SET_BACKEND_REQ_FD = 21,
	VHU_IOTLB_MSG = 22,
	VHU_SET_VRING_ENDIAN = 23,
	VHU_GET_CONFIG = 24,
	VHU_SET_CONFIG = 25,
	VHU_GET_MAX_MEM_SLOTS = 36,
	VHU_ADD_MEM_REG = 37,
	VHU_REM_MEM_REG = 38,
};

/* ---- Header flags ------------------------------------------------------------- */
#define VHU_VERSION 0x1u	  /* bits 0-1: protocol version, always 1 */
#define VHU_VERSION_MASK 0x3u
#define VHU_FLAG_REPLY (1u << 2)      /* set by the back end on every reply */
#define VHU_FLAG_NEED_REPLY (1u << 3) /* front end wants an ack (REPLY_ACK negotiated) */

/* ---- Virtio feature bits (GET_FEATURES / SET_FEATURES) ------------------------ */
#define VHU_VSOCK_F_SEQPACKET 1		  /* VIRTIO_VSOCK_F_SEQPACKET */
#define VHU_F_INDIRECT_DESC 28		  /* VIRTIO_RING_F_INDIRECT_DESC */
#define VHU_F_EVENT_IDX 29		  /* VIRTIO_RING_F_EVENT_IDX */
#define VHU_F_PROTOCOL_FEATURES 30	  /* VHOST_USER_F_PROTOCOL_FEATURES */
#define VHU_F_VERSION_1 32		  /* VIRTIO_F_VERSION_1 */

/* What the broker offers for a vsock device (the set QEMU 7.2 is known to accept). */
#define VHU_VSOCK_FEATURES                                                               \
	((1ull << VHU_F_VERSION_1) | (1ull << VHU_F_PROTOCOL_FEATURES) |                 \
	 (1ull << VHU_F_EVENT_IDX) | (1ull << VHU_F_INDIRECT_DESC) |                     \
	 (1ull << VHU_VSOCK_F_SEQPACKET))

/* ---- Protocol feature bits (GET/SET_PROTOCOL_FEATURES) ------------------------ */
#define VHU_PROTOCOL_F_MQ 0
#define VHU_PROTOCOL_F_LOG_SHMFD 1
#define VHU_PROTOCOL_F_REPLY_ACK 3
#define VHU_PROTOCOL_F_CONFIG 9

#define VHU_VSOCK_PROTOCOL_FEATURES                                                      \
	((1ull << VHU_PROTOCOL_F_MQ) | (1ull << VHU_PROTOCOL_F_REPLY_ACK) |              \
	 (1ull << VHU_PROTOCOL_F_CONFIG))

/* ---- Limits --------------------------------------------------------------------- */
#define VHU_MAX_REGIONS 8	/* VHOST_MEMORY_BASELINE_NREGIONS */
#define VHU_MAX_FDS 8		/* at most one fd per region */
#define VHU_MAX_QUEUE_SIZE 32768u
#define VHU_CONFIG_MAX 256u	/* largest config-space window we move */
#define VHU_VSOCK_QUEUES 2u	/* rx (0) and tx (1); QEMU keeps the event queue */
#define VHU_VSOCK_RX 0u
#define VHU_VSOCK_TX 1u

/* SET_VRING_KICK/CALL/ERR u64 payload: bits 0-7 the queue index, bit 8 "no fd
 * attached" (kick: the back end must poll the ring; call: do not notify). */
#define VHU_VRING_IDX_MASK 0xffull
#define VHU_VRING_NOFD (1ull << 8)

/* ---- Wire structures ---------------------------------------------------------- */

/* Message header. request/size: written by the sender; flags: VERSION always,
 * REPLY by the back end, NEED_REPLY by the front end. */
struct vhu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size; /* payload bytes that follow */
};

/* SET_VRING_NUM / SET_VRING_BASE / GET_VRING_BASE / SET_VRING_ENABLE payload
 * (front end writes it; the back end writes `num` in the GET_VRING_BASE reply). */
struct vhu_vring_state {
	uint32_t index;
	uint32_t num;
};

/* SET_VRING_ADDR payload, written by the front end. The three ring addresses are the
 * front end's own virtual addresses (translate through each region's user_addr). */
struct vhu_vring_addr {
	uint32_t index;
	uint32_t flags; /* bit 0: log dirty pages (never offered by rtvio) */
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

/* One SET_MEM_TABLE region, written by the front end. guest_addr is what descriptors
 * carry; user_addr is the front end's mapping (what SET_VRING_ADDR carries);
 * mmap_offset is where the region starts inside the accompanying fd. */
struct vhu_mem_region {
	uint64_t guest_addr;
	uint64_t size;
	uint64_t user_addr;
	uint64_t mmap_offset;
};

/* SET_MEM_TABLE payload, written by the front end: `nregions` regions, one fd each. */
struct vhu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vhu_mem_region regions[VHU_MAX_REGIONS];
};

/* GET_CONFIG / SET_CONFIG payload: a window of the device's config space. The front
 * end writes offset/size/flags; the back end echoes them and fills `data`. The
 * payload on the wire is 12 + size bytes. */
struct vhu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t data[VHU_CONFIG_MAX];
};
#define VHU_CONFIG_HDR 12u

/* Largest payload either side accepts; anything bigger is a protocol error (the
 * stream cannot be trusted afterwards, so the connection is dropped). */
#define VHU_MAX_PAYLOAD 512u

/* In memory the payload is naturally aligned after the header (there may be padding
 * between them); on the wire it follows the 12 header bytes directly. The helpers
 * below move header and payload separately for that reason. */
struct vhu_msg {
	struct vhu_hdr hdr;
	union {
		uint64_t u64;
		struct vhu_vring_state state;
		struct vhu_vring_addr addr;
		struct vhu_mem_table mem;
		struct vhu_config config;
		uint8_t raw[VHU_MAX_PAYLOAD];
	} p;
};

_Static_assert(sizeof(struct vhu_hdr) == 12, "vhost-user header is 12 bytes");
_Static_assert(offsetof(struct vhu_hdr, flags) == 4 && offsetof(struct vhu_hdr, size) == 8,
	       "vhost-user header layout");
_Static_assert(sizeof(struct vhu_vring_state) == 8, "vring state is 8 bytes");
_Static_assert(sizeof(struct vhu_vring_addr) == 40, "vring address is 40 bytes");
_Static_assert(offsetof(struct vhu_vring_addr, desc) == 8 &&
		       offsetof(struct vhu_vring_addr, used) == 16 &&
		       offsetof(struct vhu_vring_addr, avail) == 24 &&
		       offsetof(struct vhu_vring_addr, log) == 32,
	       "vring address layout (desc, used, avail, log)");
_Static_assert(sizeof(struct vhu_mem_region) == 32, "memory region is 32 bytes");
_Static_assert(offsetof(struct vhu_mem_table, regions) == 8, "regions follow 8 bytes");
_Static_assert(sizeof(struct vhu_mem_table) == 8 + 32 * VHU_MAX_REGIONS, "memory table size");
_Static_assert(offsetof(struct vhu_config, data) == VHU_CONFIG_HDR, "config header");
_Static_assert(sizeof(struct vhu_mem_table) <= VHU_MAX_PAYLOAD &&
		       sizeof(struct vhu_config) <= VHU_MAX_PAYLOAD,
	       "every payload we parse fits the receive buffer");

/* ---- Small helpers -------------------------------------------------------------- */

static inline void vhu_msg_init(struct vhu_msg *m, uint32_t request, uint32_t size)
{
	memset(&m->hdr, 0, sizeof(m->hdr));
	m->hdr.request = request;
	m->hdr.flags = VHU_VERSION;
	m->hdr.size = size;
}

static inline void vhu_close_fds(int *fds, unsigned int *nfds)
{
	for (unsigned int i = 0; i < *nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	*nfds = 0;
}

/* Sends one message (header + hdr.size payload bytes) and, attached to its first
 * byte, `nfds` descriptors. Retries short writes and EINTR. Returns 0 or -errno
 * (-EPIPE when the peer is gone; SIGPIPE is never raised). `flags` go to sendmsg:
 * MSG_DONTWAIT makes a full socket buffer -EAGAIN whatever the socket's mode. */
static inline int vhu_send_flags(int sock, const struct vhu_msg *m, const int *fds,
				 unsigned int nfds, int flags)
{
	size_t hl = sizeof(m->hdr), len = hl + m->hdr.size;
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	size_t off = 0;

	if (m->hdr.size > VHU_MAX_PAYLOAD || nfds > VHU_MAX_FDS)
		return -EINVAL;
	while (off < len) {
		struct iovec iov[2];
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 0 };
		ssize_t n;

		if (off < hl)
			iov[mh.msg_iovlen++] = (struct iovec){ (uint8_t *)&m->hdr + off, hl - off };
		if (m->hdr.size > 0) {
			size_t po = off < hl ? 0 : off - hl;

			iov[mh.msg_iovlen++] =
				(struct iovec){ (uint8_t *)&m->p + po, m->hdr.size - po };
		}
		if (off == 0 && nfds > 0) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
		}
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | flags);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)n;
	}
	return 0;
}

static inline int vhu_send(int sock, const struct vhu_msg *m, const int *fds, unsigned int nfds)
{
	return vhu_send_flags(sock, m, fds, nfds, 0);
}

/* Incremental receiver: reads exactly one message (header first, then exactly
 * hdr.size bytes, so that descriptors belonging to the next message are never taken
 * with this one). Works on blocking and non-blocking sockets alike. */
struct vhu_reader {
	size_t have;		/* bytes of msg received so far */
	unsigned int nfds;	/* descriptors received with this message */
	int fds[VHU_MAX_FDS];
	int overflow;		/* more descriptors arrived than fit: a protocol error */
	struct vhu_msg msg;
};

static inline void vhu_reader_init(struct vhu_reader *r)
{
	r->have = 0;
	r->nfds = 0;
	r->overflow = 0;
}

/* Drops a partly or fully received message, closing the descriptors it carried. */
static inline void vhu_reader_reset(struct vhu_reader *r)
{
	vhu_close_fds(r->fds, &r->nfds);
	vhu_reader_init(r);
}

/* Returns 1 when r->msg is complete (the caller takes or closes r->fds[0..nfds) and
 * then calls vhu_reader_init), 0 when the socket has nothing more for now (EAGAIN),
 * -ECONNRESET on end of file, -EPROTO on a bad version, -EMSGSIZE on an oversized
 * payload, -E2BIG on too many descriptors, other -errno from recvmsg. On any error
 * the descriptors received so far are closed. */
static inline int vhu_reader_read(int sock, struct vhu_reader *r)
{
	for (;;) {
		size_t want = sizeof(r->msg.hdr);
		union {
			char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov;
		struct msghdr mh = { 0 };
		struct cmsghdr *c;
		ssize_t n;

		if (r->have >= sizeof(r->msg.hdr)) {
			/* Header complete: check it before reading what it announces. */
			if ((r->msg.hdr.flags & VHU_VERSION_MASK) != VHU_VERSION) {
				vhu_reader_reset(r);
				return -EPROTO;
			}
			if (r->msg.hdr.size > VHU_MAX_PAYLOAD) {
				vhu_reader_reset(r);
				return -EMSGSIZE;
			}
			want += r->msg.hdr.size;
			if (r->have == want)
				break;
		}
		if (r->have < sizeof(r->msg.hdr))
			iov.iov_base = (uint8_t *)&r->msg.hdr + r->have;
		else
			iov.iov_base = (uint8_t *)&r->msg.p + (r->have - sizeof(r->msg.hdr));
		iov.iov_len = want - r->have;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			n = -errno;
			vhu_reader_reset(r);
			return (int)n;
		}
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			size_t k;
			int fd;

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (r->nfds < VHU_MAX_FDS)
					r->fds[r->nfds++] = fd;
				else {
					close(fd);
					r->overflow = 1;
				}
			}
		}
		if (mh.msg_flags & MSG_CTRUNC)
			r->overflow = 1;
		if (n == 0) {
			vhu_reader_reset(r);
			return -ECONNRESET;
		}
		r->have += (size_t)n;
	}
	if (r->overflow) {
		vhu_reader_reset(r);
		return -E2BIG;
	}
	return 1;
}

/* Receive of one message on a blocking socket into *m with up to VHU_MAX_FDS descriptors in
 * fds[] (count in *nfds). Returns 0 or a negative errno as vhu_reader_read. */
static inline int vhu_recv(int sock, struct vhu_msg *m, int *fds, unsigned int *nfds)
{
	struct vhu_reader r;
	int rc;

	vhu_reader_init(&r);
	do
		rc = vhu_reader_read(sock, &r);
	while (rc == 0);
	if (rc < 0)
		return rc;
	m->hdr = r.msg.hdr;
	memcpy(&m->p, &r.msg.p, r.msg.hdr.size);
	memcpy(fds, r.fds, sizeof(int) * r.nfds);
	*nfds = r.nfds;
	return 0;
}

#endif
