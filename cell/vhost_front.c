/* vhost-user front end of a process cell (see vhost_front.h). Start-up only. */
#include "clock.h"
#include "vhost_front.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

static uint64_t mono_ms(void)
{
	return rtvio_now_ns() / 1000000u;
}

/* Receives one reply, bounded by timeout_ms. Replies never carry descriptors: any
 * that arrive are closed and the reply is refused (the broker misbehaves). */
static int recv_reply(int sock, struct vhu_msg *m, int timeout_ms)
{
	uint64_t deadline = timeout_ms > 0 ? mono_ms() + (uint64_t)timeout_ms : 0;
	struct vhu_reader r;
	int rc;

	vhu_reader_init(&r);
	for (;;) {
		struct pollfd p = { .fd = sock, .events = POLLIN };
		int wait = -1;

		if (deadline) {
			uint64_t now = mono_ms();

			if (now >= deadline) {
				vhu_reader_reset(&r);
				return -ETIMEDOUT;
			}
			wait = (int)(deadline - now);
		}
		rc = poll(&p, 1, wait);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			rc = -errno;
			vhu_reader_reset(&r);
			return rc;
		}
		if (rc == 0)
			continue;
		/* The socket is blocking: read the message that poll announced, which the
		 * reader does header first, then exactly the announced payload. */
		rc = vhu_reader_read(sock, &r);
		if (rc < 0)
			return rc;
		if (rc == 1)
			break;
	}
	if (r.nfds) {
		vhu_reader_reset(&r);
		return -EPROTO;
	}
	m->hdr = r.msg.hdr;
	memcpy(&m->p, &r.msg.p, r.msg.hdr.size);
	return 0;
}

/* A reply must name our request, carry REPLY and the version, and have exactly the
 * payload size the request implies. */
static int check_reply(const struct vhu_msg *m, uint32_t request, uint32_t size)
{
	if (m->hdr.request != request || !(m->hdr.flags & VHU_FLAG_REPLY) ||
	    (m->hdr.flags & VHU_VERSION_MASK) != VHU_VERSION || m->hdr.size != size)
		return -EPROTO;
	return 0;
}

/* Receives the u64 reply to request. */
static int recv_u64(int sock, uint32_t request, uint64_t *v, int timeout_ms)
{
	struct vhu_msg m;
	int rc;

	rc = recv_reply(sock, &m, timeout_ms);
	if (rc)
		return rc;
	rc = check_reply(&m, request, sizeof(uint64_t));
	if (rc)
		return rc;
	*v = m.p.u64;
	return 0;
}

static int get_u64(int sock, uint32_t request, uint64_t *v, int timeout_ms)
{
	struct vhu_msg m;
	int rc;

	vhu_msg_init(&m, request, 0);
	rc = vhu_send(sock, &m, NULL, 0);
	return rc ? rc : recv_u64(sock, request, v, timeout_ms);
}

/* Under REPLY_ACK, a NEED_REPLY request is answered with a u64: 0 = success. */
static int wait_ack(int sock, uint32_t request, int timeout_ms)
{
	uint64_t v;
	int rc = recv_u64(sock, request, &v, timeout_ms);

	return rc ? rc : v ? -EPROTO : 0;
}

static int send_u64(int sock, uint32_t request, uint64_t v, const int *fds, unsigned int nfds)
{
	struct vhu_msg m;

	vhu_msg_init(&m, request, sizeof(uint64_t));
	m.p.u64 = v;
	return vhu_send(sock, &m, fds, nfds);
}

static int send_state(int sock, uint32_t request, uint32_t index, uint32_t num)
{
	struct vhu_msg m;

	vhu_msg_init(&m, request, sizeof(struct vhu_vring_state));
	m.p.state.index = index;
	m.p.state.num = num;
	return vhu_send(sock, &m, NULL, 0);
}

static int send_vring_fd(int sock, uint32_t request, uint32_t index, int fd)
{
	if (fd < 0)
		return send_u64(sock, request, index | VHU_VRING_NOFD, NULL, 0);
	return send_u64(sock, request, index, &fd, 1);
}

static int get_cid(int sock, uint64_t *cid, int timeout_ms)
{
	const uint32_t want = 8; /* struct virtio_vsock_config: le64 guest_cid */
	struct vhu_msg m;
	int rc;

	vhu_msg_init(&m, VHU_GET_CONFIG, VHU_CONFIG_HDR + want);
	memset(&m.p.config, 0, VHU_CONFIG_HDR + want);
	m.p.config.offset = 0;
	m.p.config.size = want;
	rc = vhu_send(sock, &m, NULL, 0);
	if (rc)
		return rc;
	rc = recv_reply(sock, &m, timeout_ms);
	if (rc)
		return rc;
	rc = check_reply(&m, VHU_GET_CONFIG, VHU_CONFIG_HDR + want);
	if (rc)
		return rc;
	if (m.p.config.offset != 0 || m.p.config.size != want)
		return -EPROTO;
	/* Config space is little-endian whatever the host. */
	*cid = 0;
	for (unsigned int i = 0; i < want; i++)
		*cid |= (uint64_t)m.p.config.data[i] << (8 * i);
	/* 0..2 are reserved and 0xffffffff means "any": not an identity. */
	if (*cid < 3 || *cid >= 0xffffffffu)
		return -EPROTO;
	return 0;
}

int vhost_front_handshake(int sock, const struct vhost_front_setup *s,
			  struct vhost_front_result *r)
{
	const uint64_t pf_want = (1ull << VHU_PROTOCOL_F_REPLY_ACK) | (1ull << VHU_PROTOCOL_F_CONFIG);
	uint64_t offered, pf_offered, features, pf;
	bool reply_ack;
	struct vhu_msg m;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = get_u64(sock, VHU_GET_FEATURES, &offered, s->timeout_ms);
	if (rc)
		return rc;
	/* Without PROTOCOL_FEATURES there is no GET_CONFIG, hence no CID. */
	if (!(offered & (1ull << VHU_F_PROTOCOL_FEATURES)) ||
	    (offered & s->need_features) != s->need_features)
		return -ENOTSUP;
	features = (offered & s->want_features) | (1ull << VHU_F_PROTOCOL_FEATURES);

	rc = get_u64(sock, VHU_GET_PROTOCOL_FEATURES, &pf_offered, s->timeout_ms);
	if (rc)
		return rc;
	if (!(pf_offered & (1ull << VHU_PROTOCOL_F_CONFIG)))
		return -ENOTSUP;
	pf = pf_offered & pf_want;
	reply_ack = pf & (1ull << VHU_PROTOCOL_F_REPLY_ACK);
	rc = send_u64(sock, VHU_SET_PROTOCOL_FEATURES, pf, NULL, 0);
	if (rc)
		return rc;

	vhu_msg_init(&m, VHU_SET_OWNER, 0);
	rc = vhu_send(sock, &m, NULL, 0);
	if (rc)
		return rc;

	rc = get_cid(sock, &r->cid, s->timeout_ms);
	if (rc)
		return rc;

	rc = send_u64(sock, VHU_SET_FEATURES, features, NULL, 0);
	if (rc)
		return rc;

	/* One region: the whole memfd, at guest address guest_addr, mapped by us at
	 * user_addr (like QEMU, which sends its own mapping address). */
	vhu_msg_init(&m, VHU_SET_MEM_TABLE,
		     (uint32_t)offsetof(struct vhu_mem_table, regions) +
			     (uint32_t)sizeof(struct vhu_mem_region));
	if (reply_ack)
		m.hdr.flags |= VHU_FLAG_NEED_REPLY;
	memset(&m.p.mem, 0, sizeof(m.p.mem));
	m.p.mem.nregions = 1;
	m.p.mem.regions[0].guest_addr = s->guest_addr;
	m.p.mem.regions[0].size = s->mem_size;
	m.p.mem.regions[0].user_addr = s->user_addr;
	m.p.mem.regions[0].mmap_offset = 0;
	rc = vhu_send(sock, &m, &s->mem_fd, 1);
	if (rc)
		return rc;
	if (reply_ack) {
		rc = wait_ack(sock, VHU_SET_MEM_TABLE, s->timeout_ms);
		if (rc)
			return rc;
	}

	r->features = features;
	r->protocol_features = pf;
	if (s->before_rings) {
		rc = s->before_rings(s->arg, r);
		if (rc)
			return rc;
	}

	for (uint32_t q = 0; q < VHU_VSOCK_QUEUES; q++) {
		const struct vhost_front_queue *vq = &s->q[q];

		rc = send_state(sock, VHU_SET_VRING_NUM, q, vq->num);
		if (!rc)
			rc = send_state(sock, VHU_SET_VRING_BASE, q, 0);
		if (!rc) {
			vhu_msg_init(&m, VHU_SET_VRING_ADDR, sizeof(struct vhu_vring_addr));
			memset(&m.p.addr, 0, sizeof(m.p.addr));
			m.p.addr.index = q;
			m.p.addr.desc = vq->desc;
			m.p.addr.avail = vq->avail;
			m.p.addr.used = vq->used;
			rc = vhu_send(sock, &m, NULL, 0);
		}
		if (!rc)
			rc = send_vring_fd(sock, VHU_SET_VRING_KICK, q, vq->kick_fd);
		if (!rc)
			rc = send_vring_fd(sock, VHU_SET_VRING_CALL, q, vq->call_fd);
		if (rc)
			return rc;
	}
	/* PROTOCOL_FEATURES was negotiated, so the rings start disabled. The last
	 * enable asks for an ack: the broker serves a front end's messages within a
	 * budget per period (docs/broker.md), so the rings run only once it has got
	 * here, and the cell must not take itself for attached before. */
	for (uint32_t q = 0; q < VHU_VSOCK_QUEUES; q++) {
		bool last = q + 1 == VHU_VSOCK_QUEUES && reply_ack;

		vhu_msg_init(&m, VHU_SET_VRING_ENABLE, sizeof(struct vhu_vring_state));
		m.p.state.index = q;
		m.p.state.num = 1;
		if (last)
			m.hdr.flags |= VHU_FLAG_NEED_REPLY;
		rc = vhu_send(sock, &m, NULL, 0);
		if (!rc && last)
			rc = wait_ack(sock, VHU_SET_VRING_ENABLE, s->timeout_ms);
		if (rc)
			return rc;
	}
	return 0;
}

const char *vhost_front_request_name(uint32_t request)
{
	switch (request) {
	case VHU_GET_FEATURES: return "GET_FEATURES";
	case VHU_SET_FEATURES: return "SET_FEATURES";
	case VHU_SET_OWNER: return "SET_OWNER";
	case VHU_RESET_OWNER: return "RESET_OWNER";
	case VHU_SET_MEM_TABLE: return "SET_MEM_TABLE";
	case VHU_SET_VRING_NUM: return "SET_VRING_NUM";
	case VHU_SET_VRING_ADDR: return "SET_VRING_ADDR";
	case VHU_SET_VRING_BASE: return "SET_VRING_BASE";
	case VHU_GET_VRING_BASE: return "GET_VRING_BASE";
	case VHU_SET_VRING_KICK: return "SET_VRING_KICK";
	case VHU_SET_VRING_CALL: return "SET_VRING_CALL";
	case VHU_SET_VRING_ERR: return "SET_VRING_ERR";
	case VHU_GET_PROTOCOL_FEATURES: return "GET_PROTOCOL_FEATURES";
	case VHU_SET_PROTOCOL_FEATURES: return "SET_PROTOCOL_FEATURES";
	case VHU_GET_QUEUE_NUM: return "GET_QUEUE_NUM";
	case VHU_SET_VRING_ENABLE: return "SET_VRING_ENABLE";
	case VHU_GET_CONFIG: return "GET_CONFIG";
	case VHU_SET_CONFIG: return "SET_CONFIG";
	default: return "unknown";
	}
}
