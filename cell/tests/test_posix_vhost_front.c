/* The process cell's vhost-user front end against a scripted fake back end on a
 * socketpair: the message order and contents match what QEMU 7.2 sends, replies
 * are checked, and a back end that vanishes, stalls, lies or refuses at any step
 * makes the handshake fail cleanly with the right error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vhost_front.h"

#define MAX_LOG 64

struct logged {
	struct vhu_hdr hdr;
	uint8_t payload[VHU_MAX_PAYLOAD];
	unsigned int nfds;
	int fd_ok[VHU_MAX_FDS];	/* the received descriptor was open and of the right kind */
	ino_t fd_ino[VHU_MAX_FDS];
};

/* What the fake back end does. */
struct script {
	uint64_t features;
	uint64_t protocol_features;
	uint64_t cid;
	int close_after;	/* close the socket after receiving this many messages; -1 never */
	int stall_at;		/* receive this message and never answer it; -1 never */
	uint32_t config_size;	/* size echoed in the GET_CONFIG reply */
	uint64_t mem_ack;	/* REPLY_ACK status for SET_MEM_TABLE */
	int reply_fd;		/* attach this fd to the GET_FEATURES reply; -1 none */
	/* results */
	struct logged log[MAX_LOG];
	int n;
	int sock;
};

static void script_defaults(struct script *s)
{
	memset(s, 0, sizeof(*s));
	s->features = VHU_VSOCK_FEATURES;
	s->protocol_features = VHU_VSOCK_PROTOCOL_FEATURES;
	s->cid = 7;
	s->close_after = -1;
	s->stall_at = -1;
	s->config_size = 8;
	s->reply_fd = -1;
}

static int reply(int sock, const struct vhu_msg *req, struct vhu_msg *r, const int *fds,
		 unsigned int nfds)
{
	r->hdr.request = req->hdr.request;
	r->hdr.flags = VHU_VERSION | VHU_FLAG_REPLY;
	return vhu_send(sock, r, fds, nfds);
}

static void *backend(void *arg)
{
	struct script *s = arg;
	struct vhu_msg m, r;
	int fds[VHU_MAX_FDS];
	unsigned int nfds;

	for (;;) {
		if (s->close_after >= 0 && s->n == s->close_after)
			break;
		if (vhu_recv(s->sock, &m, fds, &nfds))
			break;
		if (s->n < MAX_LOG) {
			struct logged *l = &s->log[s->n];

			l->hdr = m.hdr;
			memcpy(l->payload, &m.p, m.hdr.size);
			l->nfds = nfds;
			for (unsigned int i = 0; i < nfds; i++) {
				struct stat st;

				l->fd_ok[i] = fstat(fds[i], &st) == 0;
				l->fd_ino[i] = st.st_ino;
				close(fds[i]);
			}
		}
		s->n++;
		if (s->stall_at >= 0 && s->n - 1 == s->stall_at) {
			/* Hold the socket open and answer nothing until the peer goes. */
			while (vhu_recv(s->sock, &m, fds, &nfds) == 0)
				vhu_close_fds(fds, &nfds);
			break;
		}
		switch (m.hdr.request) {
		case VHU_GET_FEATURES:
			r.hdr.size = 8;
			r.p.u64 = s->features;
			reply(s->sock, &m, &r, &s->reply_fd, s->reply_fd >= 0);
			break;
		case VHU_GET_PROTOCOL_FEATURES:
			r.hdr.size = 8;
			r.p.u64 = s->protocol_features;
			reply(s->sock, &m, &r, NULL, 0);
			break;
		case VHU_GET_CONFIG:
			r.hdr.size = VHU_CONFIG_HDR + s->config_size;
			r.p.config.offset = m.p.config.offset;
			r.p.config.size = s->config_size;
			r.p.config.flags = 0;
			for (unsigned int i = 0; i < 8; i++)
				r.p.config.data[i] = (uint8_t)(s->cid >> (8 * i));
			reply(s->sock, &m, &r, NULL, 0);
			break;
		default:
			if (m.hdr.flags & VHU_FLAG_NEED_REPLY) {
				r.hdr.size = 8;
				r.p.u64 = s->mem_ack;
				reply(s->sock, &m, &r, NULL, 0);
			}
			break;
		}
	}
	close(s->sock);
	return NULL;
}

struct rig {
	struct script sc;
	struct vhost_front_setup setup;
	struct vhost_front_result res;
	int sock;
	int memfd;
	int efd[4];
	pthread_t th;
	bool check_eof;		/* after success, wait for the back end's EOF */
	bool saw_eof;
};

static void rig_init(struct rig *g)
{
	int sv[2];

	memset(g, 0, sizeof(*g));
	script_defaults(&g->sc);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	g->sock = sv[0];
	g->sc.sock = sv[1];
	g->memfd = memfd_create("test-region", MFD_CLOEXEC);
	assert_true(g->memfd >= 0);
	assert_int_equal(ftruncate(g->memfd, 65536), 0);
	for (int i = 0; i < 4; i++) {
		g->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(g->efd[i] >= 0);
	}
	g->setup.mem_fd = g->memfd;
	g->setup.mem_size = 65536;
	g->setup.guest_addr = 0x100000000ull;
	g->setup.user_addr = 0x7f0000001000ull;
	g->setup.want_features = (1ull << VHU_F_VERSION_1) | (1ull << VHU_VSOCK_F_SEQPACKET) |
				 (1ull << VHU_F_EVENT_IDX);
	g->setup.need_features = 1ull << VHU_F_VERSION_1;
	for (int q = 0; q < 2; q++) {
		g->setup.q[q].num = 128;
		g->setup.q[q].desc = g->setup.user_addr + 0x1000u * (unsigned)(3 * q);
		g->setup.q[q].avail = g->setup.user_addr + 0x1000u * (unsigned)(3 * q + 1);
		g->setup.q[q].used = g->setup.user_addr + 0x1000u * (unsigned)(3 * q + 2);
		g->setup.q[q].kick_fd = g->efd[2 * q];
		g->setup.q[q].call_fd = g->efd[2 * q + 1];
	}
	g->setup.timeout_ms = 2000;
}

static int rig_run(struct rig *g)
{
	int rc;

	assert_int_equal(pthread_create(&g->th, NULL, backend, &g->sc), 0);
	rc = vhost_front_handshake(g->sock, &g->setup, &g->res);
	if (rc == 0 && g->check_eof) {
		struct pollfd p = { .fd = g->sock, .events = POLLIN };
		char c;

		/* The back end closes only after it got what it was told to wait for. */
		if (poll(&p, 1, 5000) == 1 && recv(g->sock, &c, 1, MSG_DONTWAIT) <= 0)
			g->saw_eof = true;
	}
	/* Closing our end releases a back end that stalls or waits for more. */
	close(g->sock);
	pthread_join(g->th, NULL);
	return rc;
}

static void rig_fini(struct rig *g)
{
	close(g->memfd);
	for (int i = 0; i < 4; i++)
		close(g->efd[i]);
	if (g->sc.reply_fd >= 0)
		close(g->sc.reply_fd);
}

static ino_t ino_of(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_ino;
}

static uint64_t u64_of(const struct logged *l)
{
	uint64_t v;

	memcpy(&v, l->payload, 8);
	return v;
}

static void sequence_matches_qemu(void **state)
{
	static const uint32_t expect[] = {
		VHU_GET_FEATURES, VHU_GET_PROTOCOL_FEATURES, VHU_SET_PROTOCOL_FEATURES,
		VHU_SET_OWNER, VHU_GET_CONFIG, VHU_SET_FEATURES, VHU_SET_MEM_TABLE,
		VHU_SET_VRING_NUM, VHU_SET_VRING_BASE, VHU_SET_VRING_ADDR, VHU_SET_VRING_KICK,
		VHU_SET_VRING_CALL,
		VHU_SET_VRING_NUM, VHU_SET_VRING_BASE, VHU_SET_VRING_ADDR, VHU_SET_VRING_KICK,
		VHU_SET_VRING_CALL,
		VHU_SET_VRING_ENABLE, VHU_SET_VRING_ENABLE,
	};
	const size_t n = sizeof(expect) / sizeof(expect[0]);
	struct rig *g = malloc(sizeof(*g));
	struct logged *l;

	(void)state;
	rig_init(g);
	assert_int_equal(rig_run(g), 0);
	assert_int_equal(g->sc.n, (int)n);
	for (size_t i = 0; i < n; i++) {
		l = &g->sc.log[i];
		if (l->hdr.request != expect[i])
			fail_msg("message %zu is %s, expected %s", i,
				 vhost_front_request_name(l->hdr.request),
				 vhost_front_request_name(expect[i]));
		assert_int_equal(l->hdr.flags & VHU_VERSION_MASK, VHU_VERSION);
		assert_false(l->hdr.flags & VHU_FLAG_REPLY);
		/* SET_MEM_TABLE asks for an ack (like QEMU), and so does the last
		 * SET_VRING_ENABLE: the broker may defer the messages before it. */
		assert_int_equal(!!(l->hdr.flags & VHU_FLAG_NEED_REPLY),
				 expect[i] == VHU_SET_MEM_TABLE || i + 1 == n);
	}
	assert_int_equal(g->res.cid, 7);
	/* Protocol features: REPLY_ACK and CONFIG, never MQ. */
	assert_int_equal(u64_of(&g->sc.log[2]),
			 (1ull << VHU_PROTOCOL_F_REPLY_ACK) | (1ull << VHU_PROTOCOL_F_CONFIG));
	assert_int_equal(g->sc.log[3].hdr.size, 0);
	/* GET_CONFIG asks for the 8-byte guest_cid at offset 0. */
	l = &g->sc.log[4];
	assert_int_equal(l->hdr.size, VHU_CONFIG_HDR + 8);
	struct vhu_config cfg;

	memcpy(&cfg, l->payload, VHU_CONFIG_HDR);
	assert_int_equal(cfg.offset, 0);
	assert_int_equal(cfg.size, 8);
	/* SET_FEATURES: what we want and they offer, plus PROTOCOL_FEATURES; not
	 * INDIRECT_DESC, which we never use. */
	assert_int_equal(u64_of(&g->sc.log[5]),
			 (1ull << VHU_F_VERSION_1) | (1ull << VHU_VSOCK_F_SEQPACKET) |
				 (1ull << VHU_F_EVENT_IDX) | (1ull << VHU_F_PROTOCOL_FEATURES));
	assert_int_equal(g->res.features, u64_of(&g->sc.log[5]));
	/* SET_MEM_TABLE: one region, the memfd itself, guest address not 0. */
	l = &g->sc.log[6];
	struct vhu_mem_table mt;

	assert_int_equal(l->hdr.size, 8 + 32);
	memcpy(&mt, l->payload, 8 + 32);
	assert_int_equal(mt.nregions, 1);
	assert_int_equal(mt.regions[0].guest_addr, 0x100000000ull);
	assert_int_equal(mt.regions[0].size, 65536);
	assert_int_equal(mt.regions[0].user_addr, 0x7f0000001000ull);
	assert_int_equal(mt.regions[0].mmap_offset, 0);
	assert_int_equal(l->nfds, 1);
	assert_true(l->fd_ok[0]);
	assert_int_equal(l->fd_ino[0], ino_of(g->memfd));
	for (uint32_t q = 0; q < 2; q++) {
		struct vhu_vring_state st;
		struct vhu_vring_addr ad;
		const struct logged *b = &g->sc.log[7 + 5 * q];

		memcpy(&st, b[0].payload, 8);
		assert_int_equal(st.index, q);
		assert_int_equal(st.num, 128);
		memcpy(&st, b[1].payload, 8);
		assert_int_equal(st.index, q);
		assert_int_equal(st.num, 0);
		assert_int_equal(b[2].hdr.size, 40);
		memcpy(&ad, b[2].payload, 40);
		assert_int_equal(ad.index, q);
		assert_int_equal(ad.flags, 0);
		assert_int_equal(ad.desc, g->setup.q[q].desc);
		assert_int_equal(ad.avail, g->setup.q[q].avail);
		assert_int_equal(ad.used, g->setup.q[q].used);
		/* Kick and call: the queue index, an fd attached, the right eventfds. */
		assert_int_equal(u64_of(&b[3]), q);
		assert_int_equal(b[3].nfds, 1);
		assert_int_equal(b[3].fd_ino[0], ino_of(g->efd[2 * q]));
		assert_int_equal(u64_of(&b[4]), q);
		assert_int_equal(b[4].nfds, 1);
		assert_int_equal(b[4].fd_ino[0], ino_of(g->efd[2 * q + 1]));
		memcpy(&st, g->sc.log[17 + q].payload, 8);
		assert_int_equal(st.index, q);
		assert_int_equal(st.num, 1);
	}
	rig_fini(g);
	free(g);
}

static void no_reply_ack_means_no_need_reply(void **state)
{
	struct rig *g = malloc(sizeof(*g));

	(void)state;
	rig_init(g);
	g->sc.protocol_features = 1ull << VHU_PROTOCOL_F_CONFIG;
	/* A NACK would fail the handshake if we waited for one: we must not. */
	g->sc.mem_ack = 1;
	assert_int_equal(rig_run(g), 0);
	assert_int_equal(g->sc.n, 19);
	for (int i = 0; i < g->sc.n; i++)
		assert_false(g->sc.log[i].hdr.flags & VHU_FLAG_NEED_REPLY);
	assert_int_equal(u64_of(&g->sc.log[2]), 1ull << VHU_PROTOCOL_F_CONFIG);
	assert_int_equal(g->res.protocol_features, 1ull << VHU_PROTOCOL_F_CONFIG);
	rig_fini(g);
	free(g);
}

static void eof_at_every_step(void **state)
{
	(void)state;
	/* The back end answers its k-th message and hangs up, k = 0 .. 18. Until it
	 * has acked SET_MEM_TABLE (the 7th) the handshake must report the lost
	 * broker itself. After it only one-way messages follow (as with QEMU), so
	 * the handshake may complete; then the hang-up must be visible on the
	 * socket, which is what the port watches. Never a false success that hides
	 * the EOF, never a hang. */
	for (int k = 0; k < 19; k++) {
		struct rig *g = malloc(sizeof(*g));
		int rc;

		rig_init(g);
		g->sc.close_after = k;
		g->check_eof = true;
		rc = rig_run(g);
		if (k <= 6 && rc != -ECONNRESET && rc != -EPIPE)
			fail_msg("hang-up after %d messages gave %d", k, rc);
		if (k > 6 && rc != 0 && rc != -ECONNRESET && rc != -EPIPE)
			fail_msg("hang-up after %d messages gave %d", k, rc);
		if (rc == 0 && !g->saw_eof)
			fail_msg("hang-up after %d messages not visible on the socket", k);
		rig_fini(g);
		free(g);
	}
}

static void missing_features_refused(void **state)
{
	struct rig *g = malloc(sizeof(*g));

	(void)state;
	/* No PROTOCOL_FEATURES: no GET_CONFIG, no CID. */
	rig_init(g);
	g->sc.features = (1ull << VHU_F_VERSION_1);
	assert_int_equal(rig_run(g), -ENOTSUP);
	assert_int_equal(g->sc.n, 1);
	rig_fini(g);
	/* No VERSION_1, which we need. */
	rig_init(g);
	g->sc.features = 1ull << VHU_F_PROTOCOL_FEATURES;
	assert_int_equal(rig_run(g), -ENOTSUP);
	rig_fini(g);
	/* No PROTOCOL_F_CONFIG. */
	rig_init(g);
	g->sc.protocol_features = 1ull << VHU_PROTOCOL_F_REPLY_ACK;
	assert_int_equal(rig_run(g), -ENOTSUP);
	assert_int_equal(g->sc.n, 2);
	rig_fini(g);
	/* SEQPACKET is wanted but optional: without it we go on, without it acked. */
	rig_init(g);
	g->sc.features = (1ull << VHU_F_VERSION_1) | (1ull << VHU_F_PROTOCOL_FEATURES);
	assert_int_equal(rig_run(g), 0);
	assert_int_equal(g->res.features,
			 (1ull << VHU_F_VERSION_1) | (1ull << VHU_F_PROTOCOL_FEATURES));
	rig_fini(g);
	free(g);
}

static void bad_replies_refused(void **state)
{
	struct rig *g = malloc(sizeof(*g));

	(void)state;
	/* A reserved CID is not an identity. */
	rig_init(g);
	g->sc.cid = 2;
	assert_int_equal(rig_run(g), -EPROTO);
	rig_fini(g);
	/* 0xffffffff (VMADDR_CID_ANY) neither. */
	rig_init(g);
	g->sc.cid = 0xffffffffu;
	assert_int_equal(rig_run(g), -EPROTO);
	rig_fini(g);
	/* GET_CONFIG answered with a window of the wrong size. */
	rig_init(g);
	g->sc.config_size = 4;
	assert_int_equal(rig_run(g), -EPROTO);
	rig_fini(g);
	/* SET_MEM_TABLE refused through REPLY_ACK. */
	rig_init(g);
	g->sc.mem_ack = 1;
	assert_int_equal(rig_run(g), -EPROTO);
	assert_int_equal(g->sc.n, 7);
	rig_fini(g);
	/* A reply carrying a descriptor: nothing we asked for. */
	rig_init(g);
	g->sc.reply_fd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(rig_run(g), -EPROTO);
	rig_fini(g);
	free(g);
}

static void stalled_backend_times_out(void **state)
{
	struct rig *g = malloc(sizeof(*g));

	(void)state;
	/* Stalls on GET_CONFIG, as QEMU's notes warn a back end may. */
	rig_init(g);
	g->setup.timeout_ms = 100;
	g->sc.stall_at = 4;
	assert_int_equal(rig_run(g), -ETIMEDOUT);
	assert_int_equal(g->sc.log[4].hdr.request, VHU_GET_CONFIG);
	rig_fini(g);
	free(g);
}

struct hook {
	struct vhost_front_result seen;
	int ret;
};

static int hook_fn(void *arg, const struct vhost_front_result *r)
{
	struct hook *h = arg;

	h->seen = *r;
	return h->ret;
}

static void before_rings_hook(void **state)
{
	struct rig *g = malloc(sizeof(*g));
	struct hook h = { .ret = 0 };

	(void)state;
	rig_init(g);
	g->setup.before_rings = hook_fn;
	g->setup.arg = &h;
	assert_int_equal(rig_run(g), 0);
	/* The hook saw the CID and the features before the rings were described. */
	assert_int_equal(h.seen.cid, 7);
	assert_true(h.seen.features & (1ull << VHU_F_VERSION_1));
	assert_int_equal(g->sc.n, 19);
	rig_fini(g);
	/* A failing hook stops the handshake before any ring message. */
	rig_init(g);
	h.ret = -ENOMEM;
	g->setup.before_rings = hook_fn;
	g->setup.arg = &h;
	assert_int_equal(rig_run(g), -ENOMEM);
	assert_int_equal(g->sc.n, 7);
	assert_int_equal(g->sc.log[6].hdr.request, VHU_SET_MEM_TABLE);
	rig_fini(g);
	free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sequence_matches_qemu),
		cmocka_unit_test(no_reply_ack_means_no_need_reply),
		cmocka_unit_test(eof_at_every_step),
		cmocka_unit_test(missing_features_refused),
		cmocka_unit_test(bad_replies_refused),
		cmocka_unit_test(stalled_backend_times_out),
		cmocka_unit_test(before_rings_hook),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
