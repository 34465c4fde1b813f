/* A fake broker for the POSIX port's tests: a thread that serves one vhost-user
 * socket (the back end side of the handshake, mapping the cell's memfd from
 * SET_MEM_TABLE like the broker does), then runs a loopback vsock device with
 * core's device side: every TX packet goes back into the same cell's RX ring,
 * split across RX buffers like the broker splits. It can also hang up at any
 * moment (broker EOF). Include after <cmocka.h>. */
#ifndef RTVIO_GUEST_TEST_POSIX_FAKE_H
#define RTVIO_GUEST_TEST_POSIX_FAKE_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vhost_user_proto.h"
#include "virtq.h"
#include "vsock.h"

#define MAXPKT (VSOCK_HDR_SIZE + 65536u)

struct fake {
	char dir[64];
	char path[108];
	int lsock;
	int conn;
	uint64_t cid;
	uint64_t offer_features;
	/* From the handshake. */
	uint8_t *mem;
	uint64_t mem_size, gpa, uaddr;
	struct vq_mem_region region;
	uint32_t num[2];
	uint64_t desc[2], avail[2], used[2];
	int kick[2], call[2];
	_Atomic unsigned long calls;	/* call eventfd writes (notifications sent) */
	uint64_t features;
	int enabled;
	struct vq_device vq[2];
	uint64_t inflight[2][VQ_INFLIGHT_WORDS(VQ_MAX_SIZE)];
	/* Loopback state: one TX packet being delivered. */
	uint8_t pkt[MAXPKT];
	struct vsock_hdr hdr;
	uint32_t off;
	bool pending;
	uint64_t delivered;	/* RX buffers filled */
	atomic_bool hangup;	/* test asks the broker to disappear */
	atomic_bool running;	/* rings are up */
	atomic_int seen_pkts;
	atomic_bool accepted;
	/* Answer mode: TX packets are not looped back; a REQUEST is answered by a
	 * RESPONSE advertising answer_buf_alloc and, with answer_shutdown, by a
	 * SHUTDOWN(RCV|SEND) right behind it, both in the RX ring before one
	 * notification. */
	atomic_bool answer;
	_Atomic uint32_t answer_buf_alloc;
	atomic_bool answer_shutdown;
	int error;
	pthread_t th;
};

static void *host_of(struct fake *f, uint64_t uaddr)
{
	return f->mem + (uaddr - f->uaddr);
}

static int handshake(struct fake *f)
{
	struct vhu_msg m, r;
	int fds[VHU_MAX_FDS];
	unsigned int nfds;

	while (f->enabled < 2) {
		if (vhu_recv(f->conn, &m, fds, &nfds))
			return -1;
		memset(&r, 0, sizeof(r));
		r.hdr.request = m.hdr.request;
		r.hdr.flags = VHU_VERSION | VHU_FLAG_REPLY;
		switch (m.hdr.request) {
		case VHU_GET_FEATURES:
			r.hdr.size = 8;
			r.p.u64 = f->offer_features;
			vhu_send(f->conn, &r, NULL, 0);
			break;
		case VHU_GET_PROTOCOL_FEATURES:
			r.hdr.size = 8;
			r.p.u64 = VHU_VSOCK_PROTOCOL_FEATURES;
			vhu_send(f->conn, &r, NULL, 0);
			break;
		case VHU_GET_CONFIG:
			r.hdr.size = m.hdr.size;
			r.p.config = m.p.config;
			memset(r.p.config.data, 0, 8);
			for (int i = 0; i < 8; i++)
				r.p.config.data[i] = (uint8_t)(f->cid >> (8 * i));
			vhu_send(f->conn, &r, NULL, 0);
			break;
		case VHU_SET_FEATURES:
			f->features = m.p.u64;
			break;
		case VHU_SET_MEM_TABLE:
			if (nfds != 1 || m.p.mem.nregions != 1)
				return -1;
			f->mem_size = m.p.mem.regions[0].size;
			f->gpa = m.p.mem.regions[0].guest_addr;
			f->uaddr = m.p.mem.regions[0].user_addr;
			f->mem = mmap(NULL, f->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
			close(fds[0]);
			nfds = 0;
			if (f->mem == MAP_FAILED)
				return -1;
			f->region = (struct vq_mem_region){ .gpa = f->gpa, .size = f->mem_size, .host = f->mem };
			if (m.hdr.flags & VHU_FLAG_NEED_REPLY) {
				r.hdr.size = 8;
				r.p.u64 = 0;
				vhu_send(f->conn, &r, NULL, 0);
			}
			break;
		case VHU_SET_VRING_NUM:
			f->num[m.p.state.index & 1] = m.p.state.num;
			break;
		case VHU_SET_VRING_ADDR:
			f->desc[m.p.addr.index & 1] = m.p.addr.desc;
			f->avail[m.p.addr.index & 1] = m.p.addr.avail;
			f->used[m.p.addr.index & 1] = m.p.addr.used;
			break;
		case VHU_SET_VRING_KICK:
			f->kick[m.p.u64 & 1] = nfds ? fds[0] : -1;
			nfds = 0;
			break;
		case VHU_SET_VRING_CALL:
			f->call[m.p.u64 & 1] = nfds ? fds[0] : -1;
			nfds = 0;
			break;
		case VHU_SET_VRING_ENABLE:
			f->enabled++;
			/* The front end asks for an ack of its last one (vhost_front.c). */
			if (m.hdr.flags & VHU_FLAG_NEED_REPLY) {
				r.hdr.size = 8;
				r.p.u64 = 0;
				vhu_send(f->conn, &r, NULL, 0);
			}
			break;
		default:
			break;
		}
		vhu_close_fds(fds, &nfds);
	}
	for (int q = 0; q < 2; q++) {
		struct vq_ring ring = { f->num[q], host_of(f, f->desc[q]), host_of(f, f->avail[q]),
					host_of(f, f->used[q]) };

		if (vq_device_init(&f->vq[q], &ring, &f->region, 1, f->inflight[q], f->features, 0))
			return -1;
	}
	return 0;
}

static void notify(struct fake *f, int q)
{
	uint64_t one = 1;

	if (vq_device_should_notify(&f->vq[q]) && f->call[q] >= 0) {
		f->calls++;
		(void)!write(f->call[q], &one, sizeof(one));
	}
}

/* Takes the next TX packet into f->pkt (the fake copies through a buffer: fine for
 * a test, unlike the broker) and completes its chain at once. */
static int take_tx(struct fake *f)
{
	struct vq_seg seg[8];
	struct vq_chain c;
	uint32_t n = 0;
	int rc = vq_device_pop(&f->vq[1], &c, seg, 8);

	if (rc <= 0)
		return rc;
	for (unsigned int i = 0; i < c.n_out && n < MAXPKT; i++) {
		uint32_t k = seg[i].len < MAXPKT - n ? seg[i].len : MAXPKT - n;

		memcpy(f->pkt + n, seg[i].host, k);
		n += k;
	}
	vq_device_push(&f->vq[1], c.head, 0);
	notify(f, 1);
	if (n < VSOCK_HDR_SIZE)
		return -EINVAL;
	vsock_hdr_decode(&f->hdr, f->pkt);
	if (f->hdr.len > n - VSOCK_HDR_SIZE)
		return -EINVAL;
	f->off = 0;
	f->pending = true;
	atomic_fetch_add(&f->seen_pkts, 1);
	return 1;
}

/* Delivers (a piece of) the pending packet into one RX buffer. */
static int give_rx(struct fake *f)
{
	struct vq_seg seg[8];
	struct vq_chain c;
	struct vsock_hdr h = f->hdr;
	uint8_t hb[VSOCK_HDR_SIZE];
	uint32_t piece, w = 0, left;
	int rc = vq_device_pop(&f->vq[0], &c, seg, 8);

	if (rc <= 0)
		return rc;
	if (c.in_len < VSOCK_HDR_SIZE)
		return -EINVAL;
	piece = f->hdr.len - f->off;
	if (piece > c.in_len - VSOCK_HDR_SIZE)
		piece = c.in_len - VSOCK_HDR_SIZE;
	h.len = piece;
	/* Message boundaries belong to the last piece only. */
	if (f->off + piece < f->hdr.len)
		h.flags = h.op == VSOCK_OP_RW && h.type == VSOCK_TYPE_SEQPACKET ? 0 : h.flags;
	vsock_hdr_encode(&h, hb);
	left = VSOCK_HDR_SIZE + piece;
	for (unsigned int i = c.n_out; i < c.n_seg && left; i++) {
		uint32_t k = seg[i].len < left ? seg[i].len : left;
		uint32_t done = 0;

		while (done < k) {
			uint32_t pos = w + done, chunk;

			if (pos < VSOCK_HDR_SIZE) {
				chunk = VSOCK_HDR_SIZE - pos < k - done ? VSOCK_HDR_SIZE - pos : k - done;
				memcpy((uint8_t *)seg[i].host + done, hb + pos, chunk);
			} else {
				chunk = k - done;
				memcpy((uint8_t *)seg[i].host + done,
				       f->pkt + VSOCK_HDR_SIZE + f->off + (pos - VSOCK_HDR_SIZE), chunk);
			}
			done += chunk;
		}
		w += k;
		left -= k;
	}
	vq_device_push(&f->vq[0], c.head, VSOCK_HDR_SIZE + piece);
	f->off += piece;
	f->delivered++;
	if (f->off >= f->hdr.len)
		f->pending = false;
	return 1;
}

/* Puts header-only packet h in the next RX buffer. */
static int put_rx(struct fake *f, const struct vsock_hdr *h)
{
	struct vq_seg seg[8];
	struct vq_chain c;
	int rc = vq_device_pop(&f->vq[0], &c, seg, 8);

	if (rc <= 0)
		return rc;
	if (c.n_seg == c.n_out || seg[c.n_out].len < VSOCK_HDR_SIZE)
		return -EINVAL;
	vsock_hdr_encode(h, seg[c.n_out].host);
	vq_device_push(&f->vq[0], c.head, VSOCK_HDR_SIZE);
	return 1;
}

static int answer(struct fake *f)
{
	struct vsock_hdr h = {
		.src_cid = f->hdr.dst_cid, .dst_cid = f->hdr.src_cid,
		.src_port = f->hdr.dst_port, .dst_port = f->hdr.src_port,
		.type = f->hdr.type, .op = VSOCK_OP_RESPONSE,
		.buf_alloc = f->answer_buf_alloc,
	};

	f->pending = false;
	if (f->hdr.op != VSOCK_OP_REQUEST)
		return 0;
	if (put_rx(f, &h) != 1)
		return -1;
	if (f->answer_shutdown) {
		h.op = VSOCK_OP_SHUTDOWN;
		h.flags = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
		if (put_rx(f, &h) != 1)
			return -1;
	}
	notify(f, 0);
	return 0;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	f->conn = accept(f->lsock, NULL, NULL);
	atomic_store(&f->accepted, true);
	if (f->conn < 0 || handshake(f)) {
		f->error = 1;
		goto out;
	}
	atomic_store(&f->running, true);
	while (!atomic_load(&f->hangup)) {
		struct pollfd p[3] = { { f->kick[0], POLLIN, 0 }, { f->kick[1], POLLIN, 0 },
				       { f->conn, POLLIN, 0 } };
		bool progress = false;
		int rc;

		for (;;) {
			if (!f->pending) {
				rc = take_tx(f);
				if (rc < 0) {
					f->error = 2;
					goto out;
				}
				if (rc == 0)
					break;
				if (atomic_load(&f->answer)) {
					if (answer(f)) {
						f->error = 4;
						goto out;
					}
					continue;
				}
			}
			rc = give_rx(f);
			if (rc < 0) {
				f->error = 3;
				goto out;
			}
			if (rc == 0)
				break;
			progress = true;
		}
		if (progress)
			notify(f, 0);
		/* Short sleeps: the cell kicks only when asked, the fake polls too. */
		poll(p, 3, 2);
		for (int q = 0; q < 2; q++) {
			uint64_t v;

			if (p[q].revents)
				(void)!read(f->kick[q], &v, sizeof(v));
		}
		if (p[2].revents) {
			char c;

			if (recv(f->conn, &c, 1, MSG_DONTWAIT) == 0)
				break;
		}
	}
out:
	if (f->conn >= 0)
		close(f->conn);
	f->conn = -1;
	return NULL;
}

/* Serves `path` when given (the caller owns its directory), else a socket in a
 * fresh temporary directory. */
static struct fake *fake_start_at(const char *path, uint64_t features)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	assert_non_null(f);
	if (path) {
		snprintf(f->path, sizeof(f->path), "%s", path);
	} else {
		strcpy(f->dir, "/tmp/rtvio-test-cell-XXXXXX");
		assert_non_null(mkdtemp(f->dir));
		snprintf(f->path, sizeof(f->path), "%s/c.sock", f->dir);
	}
	f->cid = 42;
	f->offer_features = features;
	f->conn = -1;
	f->kick[0] = f->kick[1] = f->call[0] = f->call[1] = -1;
	f->lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lsock >= 0);
	strcpy(sa.sun_path, f->path);
	assert_int_equal(bind(f->lsock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lsock, 1), 0);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	return f;
}

static void fake_stop(struct fake *f)
{
	atomic_store(&f->hangup, true);
	if (!atomic_load(&f->accepted)) {
		/* Nobody came: come ourselves and leave at once, so accept returns. */
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		strcpy(sa.sun_path, f->path);
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			close(s);
		else
			close(s);
	}
	pthread_join(f->th, NULL);
	for (int q = 0; q < 2; q++) {
		if (f->kick[q] >= 0)
			close(f->kick[q]);
		if (f->call[q] >= 0)
			close(f->call[q]);
	}
	if (f->mem && f->mem != MAP_FAILED)
		munmap(f->mem, f->mem_size);
	close(f->lsock);
	unlink(f->path);
	if (f->dir[0])
		rmdir(f->dir);
	free(f);
}

static inline struct fake *fake_start(uint64_t features)
{
	return fake_start_at(NULL, features);
}

#endif
