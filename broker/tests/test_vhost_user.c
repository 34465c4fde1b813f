/* The broker's vhost-user back end driven by a scripted front end over a socketpair:
 * QEMU 7.2's message sequence and a process cell's get the right replies (features,
 * GET_CONFIG with the CID, REPLY_ACK, GET_VRING_BASE) and start/stop the device at
 * the right moments; hostile messages are refused without crashing and without
 * leaking a descriptor; a front end that goes away can come back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <poll.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vhost_user.h"

#define NUM 128u
#define REGION (1u << 20)
#define CID 42u
#define GUEST_BASE 0x100000000ull
/* Ring placement inside the region (offsets): rx at 0, tx at 16 KiB. */
#define RING_OFF(q) ((uint64_t)(q) * 16384u)
#define DESC_OFF 0u
#define AVAIL_OFF 2048u
#define USED_OFF 4096u

struct dev_log {
	int starts, stops;
	uint16_t stop_base[VHU_VSOCK_QUEUES]; /* what stop() reports as next avail */
	void *desc[VHU_VSOCK_QUEUES];         /* ring pointers seen by start() */
	int start_rc;
};

static int dev_start(void *ctx, struct vhu_backend *b)
{
	struct dev_log *d = ctx;

	if (d->start_rc)
		return d->start_rc;
	d->starts++;
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		d->desc[q] = b->ring[q].desc;
	return 0;
}

static void dev_stop(void *ctx, struct vhu_backend *b)
{
	struct dev_log *d = ctx;

	d->stops++;
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		b->ring[q].base = d->stop_base[q];
}

static const struct vhu_dev_ops dev_ops = { .start = dev_start, .stop = dev_stop };

/* The front end's side: its region, its eventfds and its socket. */
struct fe {
	int sock;      /* front end's end of the socketpair */
	int memfd;
	uint8_t *mem;  /* the front end's own mapping (its "user addresses") */
	struct vhu_backend b;
	struct dev_log dev;
};

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static void fe_connect(struct fe *f)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->sock = sv[0];
	vhu_backend_connect(&f->b, sv[1]);
}

static void fe_setup(struct fe *f)
{
	memset(f, 0, sizeof(*f));
	f->memfd = memfd_create("test-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(f->memfd >= 0);
	assert_int_equal(ftruncate(f->memfd, REGION), 0);
	f->mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	assert_true(f->mem != MAP_FAILED);
	vhu_backend_init(&f->b, "test", CID, &dev_ops, &f->dev);
	fe_connect(f);
}

static void fe_teardown(struct fe *f)
{
	vhu_backend_disconnect(&f->b);
	if (f->sock >= 0)
		close(f->sock);
	munmap(f->mem, REGION);
	close(f->memfd);
}

static uint64_t uva(const struct fe *f, uint64_t off)
{
	return (uint64_t)(uintptr_t)f->mem + off;
}

/* Sends one message and lets the back end handle what is waiting. Returns the
 * back end's service result. */
static int xfer(struct fe *f, const struct vhu_msg *m, const int *fds, unsigned int nfds)
{
	assert_int_equal(vhu_send(f->sock, m, fds, nfds), 0);
	return vhu_backend_service(&f->b, 16);
}

/* Receives a reply to `request` (must be waiting already). */
static void get_reply(struct fe *f, uint32_t request, struct vhu_msg *r)
{
	int fds[VHU_MAX_FDS];
	unsigned int nfds = 0;

	assert_int_equal(vhu_recv(f->sock, r, fds, &nfds), 0);
	assert_int_equal(nfds, 0);
	assert_int_equal(r->hdr.request, request);
	assert_int_equal(r->hdr.flags, VHU_VERSION | VHU_FLAG_REPLY);
}

static bool reply_waiting(struct fe *f)
{
	char c;

	return recv(f->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

static uint64_t req_u64(struct fe *f, uint32_t request)
{
	struct vhu_msg m, r;

	vhu_msg_init(&m, request, 0);
	assert_int_equal(xfer(f, &m, NULL, 0), 0);
	get_reply(f, request, &r);
	assert_int_equal(r.hdr.size, 8);
	return r.p.u64;
}

static int send_u64(struct fe *f, uint32_t request, uint64_t v, bool need_reply,
		    const int *fds, unsigned int nfds, uint64_t *ack)
{
	struct vhu_msg m, r;
	int rc;

	vhu_msg_init(&m, request, 8);
	m.p.u64 = v;
	if (need_reply)
		m.hdr.flags |= VHU_FLAG_NEED_REPLY;
	rc = xfer(f, &m, fds, nfds);
	if (need_reply && rc == 0) {
		get_reply(f, request, &r);
		assert_int_equal(r.hdr.size, 8);
		*ack = r.p.u64;
	}
	return rc;
}

/* Sends a vring-state message with NEED_REPLY and returns the ack (0 = accepted). */
static uint64_t state_acked(struct fe *f, uint32_t request, uint32_t index, uint32_t num)
{
	struct vhu_msg m, r;

	vhu_msg_init(&m, request, sizeof(struct vhu_vring_state));
	m.hdr.flags |= VHU_FLAG_NEED_REPLY;
	m.p.state.index = index;
	m.p.state.num = num;
	assert_int_equal(xfer(f, &m, NULL, 0), 0);
	get_reply(f, request, &r);
	return r.p.u64;
}

static uint64_t addr_acked(struct fe *f, uint32_t index, uint64_t desc, uint64_t avail,
			   uint64_t used)
{
	struct vhu_msg m, r;

	vhu_msg_init(&m, VHU_SET_VRING_ADDR, sizeof(struct vhu_vring_addr));
	m.hdr.flags |= VHU_FLAG_NEED_REPLY;
	memset(&m.p.addr, 0, sizeof(m.p.addr));
	m.p.addr.index = index;
	m.p.addr.desc = desc;
	m.p.addr.avail = avail;
	m.p.addr.used = used;
	assert_int_equal(xfer(f, &m, NULL, 0), 0);
	get_reply(f, VHU_SET_VRING_ADDR, &r);
	return r.p.u64;
}

/* SET_MEM_TABLE with the given regions and descriptors. */
static uint64_t mem_table_fds_acked(struct fe *f, const struct vhu_mem_region *reg,
				    unsigned int n, const int *fds, unsigned int nfds)
{
	struct vhu_msg m, r;

	vhu_msg_init(&m, VHU_SET_MEM_TABLE, 8 + 32 * n);
	m.hdr.flags |= VHU_FLAG_NEED_REPLY;
	m.p.mem.nregions = n;
	m.p.mem.padding = 0;
	memcpy(m.p.mem.regions, reg, sizeof(*reg) * n);
	assert_int_equal(xfer(f, &m, fds, nfds), 0);
	get_reply(f, VHU_SET_MEM_TABLE, &r);
	return r.p.u64;
}

/* SET_MEM_TABLE with the given regions, all backed by the front end's memfd. */
static uint64_t mem_table_acked(struct fe *f, const struct vhu_mem_region *reg,
				unsigned int n, unsigned int nfds)
{
	struct vhu_msg m, r;
	int fds[VHU_MAX_FDS];

	vhu_msg_init(&m, VHU_SET_MEM_TABLE, 8 + 32 * n);
	m.hdr.flags |= VHU_FLAG_NEED_REPLY;
	m.p.mem.nregions = n;
	m.p.mem.padding = 0;
	memcpy(m.p.mem.regions, reg, sizeof(*reg) * n);
	for (unsigned int i = 0; i < nfds; i++)
		fds[i] = f->memfd;
	assert_int_equal(xfer(f, &m, fds, nfds), 0);
	get_reply(f, VHU_SET_MEM_TABLE, &r);
	return r.p.u64;
}

static uint64_t one_region_acked(struct fe *f)
{
	struct vhu_mem_region reg = {
		.guest_addr = GUEST_BASE, .size = REGION, .user_addr = uva(f, 0), .mmap_offset = 0,
	};

	return mem_table_acked(f, &reg, 1, 1);
}

static void negotiate(struct fe *f)
{
	uint64_t ack = 99;

	assert_int_equal(req_u64(f, VHU_GET_FEATURES), VHU_VSOCK_FEATURES);
	assert_int_equal(req_u64(f, VHU_GET_PROTOCOL_FEATURES), VHU_VSOCK_PROTOCOL_FEATURES);
	assert_int_equal(send_u64(f, VHU_SET_PROTOCOL_FEATURES, VHU_VSOCK_PROTOCOL_FEATURES,
				  false, NULL, 0, NULL), 0);
	assert_int_equal(req_u64(f, VHU_GET_QUEUE_NUM), 2);
	assert_int_equal(send_u64(f, VHU_SET_FEATURES,
				  (1ull << VHU_F_VERSION_1) | (1ull << VHU_F_PROTOCOL_FEATURES) |
					  (1ull << VHU_F_EVENT_IDX),
				  true, NULL, 0, &ack), 0);
	assert_int_equal(ack, 0);
}

static uint64_t kick_acked(struct fe *f, uint32_t request, uint32_t q)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t ack = 99;

	assert_true(efd >= 0);
	assert_int_equal(send_u64(f, request, q, true, &efd, 1, &ack), 0);
	close(efd); /* the back end holds its own copy now (or closed it) */
	return ack;
}

static void setup_ring(struct fe *f, uint32_t q)
{
	uint64_t base = RING_OFF(q);

	assert_int_equal(state_acked(f, VHU_SET_VRING_NUM, q, NUM), 0);
	assert_int_equal(state_acked(f, VHU_SET_VRING_BASE, q, 0), 0);
	assert_int_equal(addr_acked(f, q, uva(f, base + DESC_OFF), uva(f, base + AVAIL_OFF),
				    uva(f, base + USED_OFF)), 0);
	assert_int_equal(kick_acked(f, VHU_SET_VRING_KICK, q), 0);
	assert_int_equal(kick_acked(f, VHU_SET_VRING_CALL, q), 0);
}

/* A process cell's whole start-up; the device must be running afterwards. */
static void bring_up(struct fe *f)
{
	int starts = f->dev.starts;

	negotiate(f);
	assert_int_equal(one_region_acked(f), 0);
	setup_ring(f, 0);
	setup_ring(f, 1);
	assert_int_equal(f->dev.starts, starts); /* not before SET_VRING_ENABLE */
	assert_int_equal(state_acked(f, VHU_SET_VRING_ENABLE, 0, 1), 0);
	assert_int_equal(f->dev.starts, starts);
	assert_int_equal(state_acked(f, VHU_SET_VRING_ENABLE, 1, 1), 0);
	assert_int_equal(f->dev.starts, starts + 1);
	assert_true(f->b.running);
}

/* ---- The sequences real front ends send ----------------------------------------- */

static void test_qemu_sequence(void **state)
{
	struct fe f;
	struct vhu_msg m, r;
	int before = count_fds();
	uint64_t ack = 99;

	(void)state;
	fe_setup(&f);
	/* Realize. */
	assert_int_equal(req_u64(&f, VHU_GET_FEATURES), VHU_VSOCK_FEATURES);
	assert_int_equal(req_u64(&f, VHU_GET_PROTOCOL_FEATURES), VHU_VSOCK_PROTOCOL_FEATURES);
	assert_int_equal(send_u64(&f, VHU_SET_PROTOCOL_FEATURES, VHU_VSOCK_PROTOCOL_FEATURES,
				  false, NULL, 0, NULL), 0);
	assert_int_equal(req_u64(&f, VHU_GET_QUEUE_NUM), 2);
	vhu_msg_init(&m, VHU_SET_OWNER, 0);
	assert_int_equal(xfer(&f, &m, NULL, 0), 0);
	assert_false(reply_waiting(&f)); /* no NEED_REPLY: no answer */
	assert_int_equal(req_u64(&f, VHU_GET_FEATURES), VHU_VSOCK_FEATURES);
	for (uint32_t q = 0; q < 2; q++) {
		int efd = eventfd(0, EFD_CLOEXEC);

		assert_int_equal(send_u64(&f, VHU_SET_VRING_CALL, q, false, &efd, 1, NULL), 0);
		assert_int_equal(send_u64(&f, VHU_SET_VRING_ERR, q, false, &efd, 1, NULL), 0);
		close(efd);
	}
	/* GET_CONFIG: header echoed, CID little-endian. */
	vhu_msg_init(&m, VHU_GET_CONFIG, VHU_CONFIG_HDR + 8);
	m.p.config.offset = 0;
	m.p.config.size = 8;
	m.p.config.flags = 0;
	memset(m.p.config.data, 0, 8);
	assert_int_equal(xfer(&f, &m, NULL, 0), 0);
	get_reply(&f, VHU_GET_CONFIG, &r);
	assert_int_equal(r.hdr.size, VHU_CONFIG_HDR + 8);
	assert_int_equal(r.p.config.offset, 0);
	assert_int_equal(r.p.config.size, 8);
	assert_int_equal(r.p.config.flags, 0);
	{
		const uint8_t want[8] = { CID, 0, 0, 0, 0, 0, 0, 0 };

		assert_memory_equal(r.p.config.data, want, 8);
	}
	/* Driver OK: QEMU's two regions from one memfd (the VGA hole left out). */
	for (uint32_t q = 0; q < 2; q++) {
		int efd = eventfd(0, EFD_CLOEXEC);

		assert_int_equal(send_u64(&f, VHU_SET_VRING_CALL, q, false, &efd, 1, NULL), 0);
		close(efd);
	}
	assert_int_equal(send_u64(&f, VHU_SET_FEATURES,
				  (1ull << VHU_F_VERSION_1) | (1ull << VHU_F_PROTOCOL_FEATURES) |
					  (1ull << VHU_F_EVENT_IDX) | (1ull << VHU_VSOCK_F_SEQPACKET),
				  false, NULL, 0, NULL), 0);
	{
		struct vhu_mem_region reg[2] = {
			{ .guest_addr = 0, .size = 0xa0000, .user_addr = uva(&f, 0),
			  .mmap_offset = 0 },
			{ .guest_addr = 0xc0000, .size = REGION - 0xc0000,
			  .user_addr = uva(&f, 0xc0000), .mmap_offset = 0xc0000 },
		};

		assert_int_equal(mem_table_acked(&f, reg, 2, 2), 0);
		assert_int_equal(f.b.nregions, 2);
	}
	for (uint32_t q = 0; q < 2; q++) {
		/* tx in the upper region: its rings translate through region 1. */
		uint64_t base = q ? 0xc0000 : 0;

		vhu_msg_init(&m, VHU_SET_VRING_NUM, 8);
		m.p.state.index = q;
		m.p.state.num = NUM;
		assert_int_equal(xfer(&f, &m, NULL, 0), 0);
		vhu_msg_init(&m, VHU_SET_VRING_BASE, 8);
		m.p.state.index = q;
		m.p.state.num = 0;
		assert_int_equal(xfer(&f, &m, NULL, 0), 0);
		vhu_msg_init(&m, VHU_SET_VRING_ADDR, sizeof(struct vhu_vring_addr));
		memset(&m.p.addr, 0, sizeof(m.p.addr));
		m.p.addr.index = q;
		m.p.addr.desc = uva(&f, base + DESC_OFF);
		m.p.addr.avail = uva(&f, base + AVAIL_OFF);
		m.p.addr.used = uva(&f, base + USED_OFF);
		assert_int_equal(xfer(&f, &m, NULL, 0), 0);
		assert_int_equal(kick_acked(&f, VHU_SET_VRING_KICK, q), 0);
	}
	assert_int_equal(f.b.last_error, 0);
	assert_int_equal(f.dev.starts, 0);
	for (uint32_t q = 0; q < 2; q++) {
		vhu_msg_init(&m, VHU_SET_VRING_ENABLE, 8);
		m.p.state.index = q;
		m.p.state.num = 1;
		assert_int_equal(xfer(&f, &m, NULL, 0), 0);
	}
	assert_int_equal(f.dev.starts, 1);
	/* The back end sees the front end's ring memory through its own mapping. */
	f.mem[0xc0000 + DESC_OFF] = 0x5a;
	assert_int_equal(*(uint8_t *)f.dev.desc[1], 0x5a);
	f.mem[DESC_OFF] = 0xa5;
	assert_int_equal(*(uint8_t *)f.dev.desc[0], 0xa5);
	assert_non_null(vhu_backend_gpa_to_host(&f.b, 0xc0000, 16));
	assert_null(vhu_backend_gpa_to_host(&f.b, 0xa0000, 16)); /* the hole */
	assert_null(vhu_backend_gpa_to_host(&f.b, 0x9fff8, 16)); /* straddles the hole */
	for (uint32_t q = 0; q < 2; q++) {
		int efd = eventfd(0, EFD_CLOEXEC);

		assert_int_equal(send_u64(&f, VHU_SET_VRING_CALL, q, false, &efd, 1, NULL), 0);
		close(efd);
	}
	assert_int_equal(f.dev.stops, 0); /* a new call fd does not stop the device */
	/* Guest poweroff: disable, GET_VRING_BASE (reply required), EOF. */
	f.dev.stop_base[0] = 17;
	f.dev.stop_base[1] = 65535;
	for (uint32_t q = 0; q < 2; q++) {
		vhu_msg_init(&m, VHU_SET_VRING_ENABLE, 8);
		m.p.state.index = q;
		m.p.state.num = 0;
		assert_int_equal(xfer(&f, &m, NULL, 0), 0);
	}
	assert_int_equal(f.dev.stops, 1);
	assert_false(f.b.running);
	for (uint32_t q = 0; q < 2; q++) {
		vhu_msg_init(&m, VHU_GET_VRING_BASE, 8);
		m.p.state.index = q;
		m.p.state.num = 0;
		assert_int_equal(xfer(&f, &m, NULL, 0), 0);
		get_reply(&f, VHU_GET_VRING_BASE, &r);
		assert_int_equal(r.hdr.size, 8);
		assert_int_equal(r.p.state.index, q);
		assert_int_equal(r.p.state.num, q ? 65535 : 17);
	}
	(void)ack;
	close(f.sock);
	f.sock = -1;
	assert_int_equal(vhu_backend_service(&f.b, 16), -ECONNRESET);
	fe_teardown(&f);
	assert_int_equal(count_fds(), before);
}

static void test_process_cell_sequence(void **state)
{
	struct fe f;
	int before = count_fds();

	(void)state;
	fe_setup(&f);
	bring_up(&f);
	assert_true(f.b.features & (1ull << VHU_F_EVENT_IDX));
	/* Descriptor addresses are guest addresses, not offsets. */
	assert_ptr_equal(vhu_backend_gpa_to_host(&f.b, GUEST_BASE + 4096, 8),
			 (uint8_t *)vhu_backend_gpa_to_host(&f.b, GUEST_BASE, 8) + 4096);
	assert_null(vhu_backend_gpa_to_host(&f.b, 4096, 8));
	assert_null(vhu_backend_gpa_to_host(&f.b, GUEST_BASE + REGION - 4, 8));
	/* The memfd was sealed against shrinking while mapped by the broker. */
	assert_true(fcntl(f.memfd, F_GET_SEALS) & F_SEAL_SHRINK);
	fe_teardown(&f);
	assert_int_equal(f.dev.stops, 1); /* disconnect stopped the running device */
	assert_int_equal(count_fds(), before);
}

/* GET_VRING_BASE on a running device stops it before answering. */
static void test_get_vring_base_stops(void **state)
{
	struct fe f;
	struct vhu_msg m, r;

	(void)state;
	fe_setup(&f);
	bring_up(&f);
	f.dev.stop_base[1] = 300;
	vhu_msg_init(&m, VHU_GET_VRING_BASE, 8);
	m.p.state.index = 1;
	m.p.state.num = 0;
	assert_int_equal(xfer(&f, &m, NULL, 0), 0);
	get_reply(&f, VHU_GET_VRING_BASE, &r);
	assert_int_equal(r.p.state.num, 300);
	assert_int_equal(f.dev.stops, 1);
	assert_false(f.b.running);
	/* The ring restarts with a new kick; base comes from SET_VRING_BASE. */
	assert_int_equal(state_acked(&f, VHU_SET_VRING_BASE, 1, 300), 0);
	assert_int_equal(kick_acked(&f, VHU_SET_VRING_KICK, 1), 0);
	assert_int_equal(f.dev.starts, 2);
	fe_teardown(&f);
}

/* The guest resets its device (driver unbound and bound again) without QEMU
 * going away: QEMU 7.2 stops both rings, collects their bases, and then sends the
 * whole DRIVER_OK set-up again on the same connection, memory table included, with
 * the new driver's rings starting at 0. */
static void test_qemu_device_reset_restart(void **state)
{
	struct fe f;
	struct vhu_msg m, r;

	(void)state;
	fe_setup(&f);
	bring_up(&f);
	f.dev.stop_base[0] = 40;
	f.dev.stop_base[1] = 41;
	assert_int_equal(state_acked(&f, VHU_SET_VRING_ENABLE, 0, 0), 0);
	assert_int_equal(state_acked(&f, VHU_SET_VRING_ENABLE, 1, 0), 0);
	assert_int_equal(f.dev.stops, 1);
	for (uint32_t q = 0; q < 2; q++) {
		vhu_msg_init(&m, VHU_GET_VRING_BASE, 8);
		m.p.state.index = q;
		m.p.state.num = 0;
		assert_int_equal(xfer(&f, &m, NULL, 0), 0);
		get_reply(&f, VHU_GET_VRING_BASE, &r);
		assert_int_equal(r.p.state.num, 40 + q);
	}
	assert_int_equal(kick_acked(&f, VHU_SET_VRING_CALL, 0), 0);
	assert_int_equal(kick_acked(&f, VHU_SET_VRING_CALL, 1), 0);
	assert_int_equal(f.dev.stops, 1);
	/* DRIVER_OK of the new driver. */
	assert_int_equal(send_u64(&f, VHU_SET_FEATURES,
				  (1ull << VHU_F_VERSION_1) | (1ull << VHU_F_PROTOCOL_FEATURES) |
					  (1ull << VHU_F_EVENT_IDX),
				  false, NULL, 0, NULL), 0);
	assert_int_equal(one_region_acked(&f), 0);
	setup_ring(&f, 0);
	setup_ring(&f, 1);
	assert_int_equal(f.dev.starts, 1); /* not before SET_VRING_ENABLE */
	assert_int_equal(state_acked(&f, VHU_SET_VRING_ENABLE, 0, 1), 0);
	assert_int_equal(state_acked(&f, VHU_SET_VRING_ENABLE, 1, 1), 0);
	assert_int_equal(f.dev.starts, 2);
	assert_true(f.b.running);
	/* The new rings start where SET_VRING_BASE said, not where the old ones stopped. */
	assert_int_equal(f.b.ring[0].base, 0);
	assert_int_equal(f.b.ring[1].base, 0);
	assert_int_equal(f.b.last_error, 0);
	f.mem[RING_OFF(1)] = 0x3c;
	assert_int_equal(*(uint8_t *)f.dev.desc[1], 0x3c);
	fe_teardown(&f);
}

/* How many pages of [p, p + len) are in memory. */
static size_t resident_pages(const void *p, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = (len + page - 1) / page, k = 0;
	unsigned char *v = calloc(n, 1);

	assert_non_null(v);
	assert_int_equal(mincore((void *)(uintptr_t)p, len, v), 0);
	for (size_t i = 0; i < n; i++)
		k += v[i] & 1;
	free(v);
	return k;
}

/* ---- Sealing and populating (a process cell's memory, populate.h) ---------------- */

static int stderr_lines(void (*fn)(void *), void *arg, char *text, size_t len);

/* The back end as the broker sets it up for a process cell: sealing, and a populate
 * thread of its own (held before its first piece while hold is set). */
static void pop_attach(struct fe *f, struct vhu_pop *p, bool hold)
{
	assert_int_equal(vhu_pop_open(p, 1, NULL), 0);
	atomic_store(&p->hold, hold);
	f->b.seal = true;
	f->b.pop = p;
	f->b.maps = vhu_pop_slots(p, 0);
}

/* Waits (without a deadline that could fail a slow build: the test's own timeout
 * bounds it) for the populate thread to report a finished job, then tells the back
 * end, as the daemon's loop does. */
static void pop_wait_done(struct fe *f, struct vhu_pop *p)
{
	struct pollfd pf = { .fd = vhu_pop_fd(p), .events = POLLIN };

	assert_int_equal(poll(&pf, 1, -1), 1);
	vhu_pop_ack(p);
	vhu_backend_populated(&f->b);
}

/* Waits until n mappings are fully populated, telling the back end of every report
 * on the way, then once more: a VM's device starts once its rings' granules are in,
 * and their report may come before the whole mapping is, with it, or be read with
 * an earlier one. A job's report is written after it counts in jobs, so a count
 * below n always has a report to come; the last one is drained here. */
static void pop_wait_populated(struct fe *f, struct vhu_pop *p, unsigned long long n)
{
	while (atomic_load(&p->jobs) < n)
		pop_wait_done(f, p);
	vhu_pop_ack(p);
	vhu_backend_populated(&f->b);
}

static unsigned int slots_busy(struct vhu_pop *p)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < VHU_MAX_MAPS; i++)
		n += atomic_load(&p->maps[i].busy);
	return n;
}

/* n slots left taken: every other mapping was unmapped by its last owner. */
static void pop_wait_busy(struct vhu_pop *p, unsigned int n)
{
	struct timespec ts = { 0, 1000000 };

	while (slots_busy(p) != n)
		nanosleep(&ts, NULL);
}

static void pop_wait_free(struct vhu_pop *p)
{
	pop_wait_busy(p, 0);
}

/* Rings, enable: everything of a process cell's start-up after its table. */
static void rings_up(struct fe *f)
{
	setup_ring(f, 0);
	setup_ring(f, 1);
	assert_int_equal(state_acked(f, VHU_SET_VRING_ENABLE, 0, 1), 0);
	assert_int_equal(state_acked(f, VHU_SET_VRING_ENABLE, 1, 1), 0);
}

/* The device starts only once its table is populated; then every page of the
 * region is resident, and the memfd is sealed: no hole can be punched into it, by
 * fallocate or by madvise, so no page the broker maps can go away. */
static void test_populate_then_start(void **state)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = REGION / page;
	struct vhu_pop p;
	struct fe f;
	int seals;

	(void)state;
	fe_setup(&f);
	pop_attach(&f, &p, true);
	f.mem[5 * page] = 1; /* the front end touched one page */
	negotiate(&f);
	assert_int_equal(one_region_acked(&f), 0); /* accepted at once: acked */
	rings_up(&f);
	/* Every ring is ready, but the populate is held: no start. */
	assert_int_equal(f.dev.starts, 0);
	assert_false(f.b.running);
	assert_true(f.b.pop_wait);
	assert_true(resident_pages(f.b.regions[0].host, REGION) < pages);
	atomic_store(&p.hold, false);
	pop_wait_done(&f, &p);
	assert_int_equal(f.dev.starts, 1);
	assert_true(f.b.running);
	assert_false(f.b.pop_wait);
	assert_int_equal(resident_pages(f.b.regions[0].host, REGION), pages);
	assert_int_equal(atomic_load(&p.pieces), pages / VHU_POP_PIECE_PAGES);
	seals = fcntl(f.memfd, F_GET_SEALS);
	assert_true(seals & F_SEAL_SHRINK);
	assert_true(seals & F_SEAL_FUTURE_WRITE);
	/* The front end's own mapping still writes, and the broker sees it. */
	f.mem[3 * page] = 0x5a;
	assert_int_equal(*(uint8_t *)vhu_backend_gpa_to_host(&f.b, GUEST_BASE + 3 * page, 1), 0x5a);
	assert_int_equal(fallocate(f.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, REGION), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(madvise(f.mem, REGION, MADV_REMOVE), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(f.memfd, REGION / 2), -1);
	assert_int_equal(resident_pages(f.b.regions[0].host, REGION), pages);
	assert_int_equal(*(uint8_t *)vhu_backend_gpa_to_host(&f.b, GUEST_BASE + 3 * page, 1), 0x5a);
	fe_teardown(&f);
	pop_wait_free(&p);
	vhu_pop_close(&p);
}

static void table_refused(void *arg)
{
	struct fe *f = arg;

	assert_int_not_equal(one_region_acked(f), 0);
}

/* A process cell's memory that cannot take the seals is refused with a line naming
 * the region and the fix: a memfd without MFD_ALLOW_SEALING, and one sealed with
 * F_SEAL_SEAL; so is a re-attach with a memfd the broker sealed already. */
static void test_unsealable_refused(void **state)
{
	char text[1024];
	struct vhu_pop p;
	struct fe f;

	(void)state;
	fe_setup(&f);
	pop_attach(&f, &p, false);
	munmap(f.mem, REGION);
	close(f.memfd);
	f.memfd = memfd_create("unsealable", MFD_CLOEXEC);
	assert_true(f.memfd >= 0);
	assert_int_equal(ftruncate(f.memfd, REGION), 0);
	f.mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, f.memfd, 0);
	assert_true(f.mem != MAP_FAILED);
	negotiate(&f);
	assert_int_equal(stderr_lines(table_refused, &f, text, sizeof(text)), 1);
	assert_non_null(strstr(text, "cell test: memory region 0 refused: its file cannot be "
			   "sealed (F_SEAL_SEAL is set): create it with "
			   "memfd_create(MFD_ALLOW_SEALING)"));
	assert_int_equal(f.b.last_error, -EPERM);
	assert_int_equal(f.b.nregions, 0);
	assert_int_equal(slots_busy(&p), 0);
	fe_teardown(&f);
	vhu_pop_close(&p);

	/* Sealed by a first attach; a second connection bringing it again is refused. */
	fe_setup(&f);
	pop_attach(&f, &p, false);
	negotiate(&f);
	assert_int_equal(one_region_acked(&f), 0);
	close(f.sock);
	vhu_backend_disconnect(&f.b);
	fe_connect(&f);
	negotiate(&f);
	assert_int_equal(stderr_lines(table_refused, &f, text, sizeof(text)), 1);
	assert_non_null(strstr(text, "memory region 0 refused: its file is sealed against "
			   "writing already (attached before?): attach with a new memfd"));
	assert_int_equal(f.b.last_error, -EPERM);
	fe_teardown(&f);
	pop_wait_free(&p);
	vhu_pop_close(&p);
}

/* A second and a third table on one connection naming the sealed file again reuse
 * its mapping (it could never be mapped writable again): accepted, the device
 * restarts on them at once, and the data written through the front end's mapping
 * is what the broker reads at the new addresses. */
static void test_same_file_again(void **state)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct vhu_mem_region reg[2];
	struct vhu_pop p;
	struct fe f;

	(void)state;
	fe_setup(&f);
	pop_attach(&f, &p, false);
	negotiate(&f);
	assert_int_equal(one_region_acked(&f), 0);
	rings_up(&f);
	pop_wait_done(&f, &p);
	assert_int_equal(f.dev.starts, 1);
	assert_int_equal(slots_busy(&p), 1);
	/* The same file as two regions at other guest addresses. */
	reg[0] = (struct vhu_mem_region){ .guest_addr = 0x1000000, .size = REGION / 2,
					  .user_addr = uva(&f, 0), .mmap_offset = 0 };
	reg[1] = (struct vhu_mem_region){ .guest_addr = 0x4000000, .size = REGION / 2,
					  .user_addr = uva(&f, REGION / 2),
					  .mmap_offset = REGION / 2 };
	assert_int_equal(mem_table_acked(&f, reg, 2, 2), 0);
	assert_int_equal(f.b.nregions, 2);
	assert_int_equal(f.dev.starts, 2); /* no second populate was needed */
	assert_int_equal(slots_busy(&p), 1); /* one mapping for both */
	f.mem[REGION / 2 + 7 * page] = 0xa5;
	assert_int_equal(*(uint8_t *)vhu_backend_gpa_to_host(&f.b, 0x4000000 + 7 * page, 1), 0xa5);
	assert_null(vhu_backend_gpa_to_host(&f.b, GUEST_BASE, 1));
	/* And back to the first layout. */
	assert_int_equal(one_region_acked(&f), 0);
	assert_int_equal(f.dev.starts, 3);
	assert_int_equal(*(uint8_t *)vhu_backend_gpa_to_host(&f.b, GUEST_BASE + REGION / 2 +
							     7 * page, 1), 0xa5);
	assert_int_equal(atomic_load(&p.jobs), 1);
	fe_teardown(&f);
	pop_wait_free(&p);
	vhu_pop_close(&p);
}

/* A VM's table sent again (QEMU does at every device start, e.g. a guest's driver
 * reset) points into the mappings the memory thread has faulted in already: no new
 * mapping and no new populate, so the guest cannot reopen the window in which its
 * device runs before its RAM is in. A table with another layout maps afresh. */
static void test_vm_table_again(void **state)
{
	struct vhu_mem_region reg;
	struct vhu_pop p;
	struct fe f;

	(void)state;
	fe_setup(&f);
	pop_attach(&f, &p, false);
	f.b.seal = false; /* a `vm = yes` cell */
	negotiate(&f);
	assert_int_equal(one_region_acked(&f), 0);
	rings_up(&f);
	pop_wait_populated(&f, &p, 1);
	assert_true(f.b.running);
	assert_int_equal(slots_busy(&p), 1);
	assert_int_equal(atomic_load(&p.jobs), 1);
	assert_int_equal(one_region_acked(&f), 0);
	assert_int_equal(f.b.nregions, 1);
	assert_int_equal(slots_busy(&p), 1);
	f.mem[5] = 0x5a;
	assert_int_equal(*(uint8_t *)vhu_backend_gpa_to_host(&f.b, GUEST_BASE + 5, 1), 0x5a);
	/* Half the region, from another offset: a mapping of its own, populated. */
	reg = (struct vhu_mem_region){ .guest_addr = GUEST_BASE, .size = REGION / 2,
				       .user_addr = uva(&f, REGION / 2),
				       .mmap_offset = REGION / 2 };
	assert_int_equal(mem_table_acked(&f, &reg, 1, 1), 0);
	pop_wait_populated(&f, &p, 2);
	assert_int_equal(atomic_load(&p.jobs), 2);
	f.mem[REGION / 2 + 9] = 0xc3;
	assert_int_equal(*(uint8_t *)vhu_backend_gpa_to_host(&f.b, GUEST_BASE + 9, 1), 0xc3);
	fe_teardown(&f);
	pop_wait_free(&p);
	vhu_pop_close(&p);
}

/* A VM's device starts as soon as its rings are in, not its whole RAM: the memory
 * thread takes the granules the start asks for (the two queues' rings) first, then
 * any granule the data path asks for, ahead of the rest. Each piece is allowed one by
 * one, so the order is the thread's, not the clock's. */
static void test_vm_rings_first(void **state)
{
	size_t gsize = VHU_POP_PIECE_PAGES * (size_t)sysconf(_SC_PAGESIZE);
	struct vq_mem_region mem[VHU_MAX_REGIONS];
	struct vhu_pop p;
	struct vq_ready *r;
	uint8_t *far;
	struct fe f;

	(void)state;
	fe_setup(&f);
	pop_attach(&f, &p, true);
	f.b.seal = false; /* a `vm = yes` cell */
	negotiate(&f);
	assert_int_equal(one_region_acked(&f), 0);
	rings_up(&f);
	assert_false(f.b.running);
	assert_true(f.b.pop_wait);
	r = &f.b.regions[0].map->ready;
	assert_int_equal(r->n, REGION / gsize);
	assert_int_equal(vq_ready_wanted(r), 0); /* the rx ring's */
	vhu_backend_mem(&f.b, mem);
	assert_ptr_equal(mem[0].ready, r);
	/* Two pieces: the granules of the rx ring (offset 0) and the tx ring (16 KiB). */
	atomic_store(&p.allow, 2);
	while (!f.b.running)
		pop_wait_done(&f, &p);
	assert_int_equal(f.dev.starts, 1);
	assert_int_equal(atomic_load(&p.pieces), 2);
	assert_true(vq_ready_is_in(r, 0) && vq_ready_is_in(r, 1));
	assert_false(vq_ready_is_in(r, 2));
	assert_int_equal(vhu_map_ready(f.b.regions[0].map), 0);
	/* The data path asks for a granule far ahead: it comes next. */
	far = f.b.regions[0].host + 40 * gsize;
	assert_false(vq_mem_ready(mem, 1, far, 64));
	vq_mem_want(mem, 1, far, 64);
	atomic_store(&p.allow, 1);
	/* The report of the rings' second granule may still be pending: wait for the
	 * granule, not for one report. */
	while (!vq_mem_ready(mem, 1, far, 64))
		pop_wait_done(&f, &p);
	assert_false(vq_ready_is_in(r, 2));
	assert_int_equal(atomic_load(&p.pieces), 3);
	/* The rest in order, and the whole mapping is in. */
	atomic_store(&p.hold, false);
	while (vhu_map_ready(f.b.regions[0].map) != 1)
		pop_wait_done(&f, &p);
	assert_true(vq_mem_ready(mem, 1, f.b.regions[0].host, REGION));
	assert_int_equal(atomic_load(&p.pieces), REGION / gsize);
	assert_true(f.b.running);
	fe_teardown(&f);
	pop_wait_free(&p);
	vhu_pop_close(&p);
}

/* A front end that goes, or replaces its table, while its populate runs: the loop
 * never waits, the populate thread stops at its next piece and unmaps what only it
 * still holds; the device starts on the new table only. */
static void test_detach_during_populate(void **state)
{
	struct vhu_mem_region reg;
	struct vhu_pop p;
	int memfd2;
	uint8_t *mem2;
	struct fe f;

	(void)state;
	fe_setup(&f);
	pop_attach(&f, &p, true);
	negotiate(&f);
	assert_int_equal(one_region_acked(&f), 0);
	rings_up(&f);
	assert_int_equal(slots_busy(&p), 1);
	close(f.sock);
	f.sock = -1;
	vhu_backend_disconnect(&f.b);
	/* The thread still owns the mapping: it is not unmapped under it. */
	assert_int_equal(slots_busy(&p), 1);
	atomic_store(&p.hold, false);
	pop_wait_free(&p);
	assert_int_equal(atomic_load(&p.jobs), 0);
	assert_int_equal(f.dev.starts, 0);

	/* Replaced: a new connection, a new memfd, then a table with another one. */
	fe_setup(&f);
	atomic_store(&p.hold, true);
	f.b.seal = true;
	f.b.pop = &p;
	f.b.maps = vhu_pop_slots(&p, 0);
	negotiate(&f);
	assert_int_equal(one_region_acked(&f), 0);
	rings_up(&f);
	memfd2 = memfd_create("second", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(memfd2 >= 0);
	assert_int_equal(ftruncate(memfd2, REGION), 0);
	mem2 = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, memfd2, 0);
	assert_true(mem2 != MAP_FAILED);
	mem2[100] = 0x77;
	close(f.memfd);
	f.memfd = memfd2; /* mem_table_acked sends f->memfd */
	reg = (struct vhu_mem_region){ .guest_addr = GUEST_BASE, .size = REGION,
				       .user_addr = uva(&f, 0), .mmap_offset = 0 };
	assert_int_equal(mem_table_acked(&f, &reg, 1, 1), 0);
	assert_int_equal(slots_busy(&p), 2); /* the old one is the thread's to unmap */
	assert_int_equal(f.dev.starts, 0);
	atomic_store(&p.hold, false);
	while (!f.b.running)
		pop_wait_done(&f, &p);
	assert_int_equal(f.dev.starts, 1);
	assert_int_equal(*(uint8_t *)vhu_backend_gpa_to_host(&f.b, GUEST_BASE + 100, 1), 0x77);
	pop_wait_busy(&p, 1);
	fe_teardown(&f);
	munmap(mem2, REGION);
	pop_wait_free(&p);
	vhu_pop_close(&p);
}

/* Is any byte of [p, p + len) still mapped in this process? mincore fails with
 * ENOMEM on a range with an unmapped page in it, so page by page. */
static size_t mapped_pages(const void *p, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), k = 0;
	unsigned char v;

	for (size_t off = 0; off < len; off += page) {
		if (mincore((char *)(uintptr_t)p + off, page, &v) == 0)
			k++;
		else
			assert_int_equal(errno, ENOMEM);
	}
	return k;
}

/* Mappings of the test's memfds this process holds (the front end's and the back
 * end's), as /proc/self/maps lists them. */
static unsigned int memfd_maps(void)
{
	FILE *m = fopen("/proc/self/maps", "r");
	unsigned int n = 0;
	char line[512];

	assert_non_null(m);
	while (fgets(line, sizeof(line), m))
		n += strstr(line, "/memfd:test-region") != NULL;
	fclose(m);
	return n;
}

/* A populated mapping the loop drops (the cell detached) is not unmapped by the loop:
 * when vhu_backend_disconnect returns, every page of it is still mapped, and held
 * there while the memory thread is; the thread then unmaps it, in pieces of
 * VHU_UNMAP_PIECE_PAGES, and frees the slot. */
static void test_drop_unmapped_by_thread(void **state)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = REGION / page;
	struct vhu_pop p;
	struct fe f;
	void *host;

	(void)state;
	fe_setup(&f);
	pop_attach(&f, &p, false);
	negotiate(&f);
	assert_int_equal(one_region_acked(&f), 0);
	rings_up(&f);
	pop_wait_done(&f, &p);
	assert_true(f.b.running);
	host = f.b.regions[0].host;
	assert_int_equal(resident_pages(host, REGION), pages);
	atomic_store(&p.hold, true);
	vhu_backend_disconnect(&f.b);
	/* The loop returned: the range is the thread's, untouched so far. */
	assert_int_equal(mapped_pages(host, REGION), pages);
	assert_int_equal(slots_busy(&p), 1);
	assert_int_equal(atomic_load(&p.unmap_pieces), 0);
	atomic_store(&p.hold, false);
	pop_wait_free(&p);
	assert_int_equal(mapped_pages(host, REGION), 0);
	assert_int_equal(atomic_load(&p.unmaps), 1);
	assert_int_equal(atomic_load(&p.unmap_pieces), pages / VHU_UNMAP_PIECE_PAGES);
	assert_int_equal(atomic_load(&p.jobs), 1);
	fe_teardown(&f);
	vhu_pop_close(&p);
}

/* A table whose second region is refused (its descriptor is a pipe) after the first
 * was mapped leaves the first region's file unsealed, for a process cell (no
 * F_SEAL_SHRINK, no F_SEAL_FUTURE_WRITE) and for a VM (no F_SEAL_SHRINK): the same
 * memfd is accepted when it comes again, and only then sealed. */
static void refused_then_again(bool seal)
{
	struct vhu_mem_region reg[2];
	struct vhu_pop p;
	int pipefd[2], fds[2];
	struct fe f;

	fe_setup(&f);
	pop_attach(&f, &p, false);
	f.b.seal = seal;
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	negotiate(&f);
	for (unsigned int i = 0; i < 2; i++)
		reg[i] = (struct vhu_mem_region){ .guest_addr = GUEST_BASE + i * (REGION / 2),
						  .size = REGION / 2,
						  .user_addr = uva(&f, i * (REGION / 2)),
						  .mmap_offset = i * (REGION / 2) };
	fds[0] = f.memfd;
	fds[1] = pipefd[0];
	assert_int_not_equal(mem_table_fds_acked(&f, reg, 2, fds, 2), 0);
	assert_int_equal(f.b.last_error, -EINVAL);
	assert_int_equal(f.b.nregions, 0);
	assert_int_equal(fcntl(f.memfd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE), 0);
	pop_wait_free(&p);
	assert_int_equal(one_region_acked(&f), 0);
	assert_int_equal(f.b.nregions, 1);
	assert_true(fcntl(f.memfd, F_GET_SEALS) & F_SEAL_SHRINK);
	assert_int_equal(!!(fcntl(f.memfd, F_GET_SEALS) & F_SEAL_FUTURE_WRITE), seal);
	close(pipefd[0]);
	close(pipefd[1]);
	fe_teardown(&f);
	pop_wait_free(&p);
	vhu_pop_close(&p);
}

static void test_refused_table_unsealed(void **state)
{
	(void)state;
	refused_then_again(true);
	refused_then_again(false);
}

/* Waits (for 30 s at most: a lost queue entry never comes) until n jobs ended. */
static void pop_wait_jobs(struct vhu_pop *p, unsigned long long n)
{
	struct timespec ts = { 0, 1000000 };

	for (int k = 0; k < 30000 && atomic_load(&p->jobs) < n; k++)
		nanosleep(&ts, NULL);
	assert_int_equal(atomic_load(&p->jobs), n);
}

/* The work queue's indices wrap at 2^32: its capacity is a power of two, so the slot
 * after UINT_MAX's is slot 0's and no entry queued before the wrap is overwritten by
 * one queued after it. Every slot of a front end queued at once across the wrap:
 * each mapping is populated. */
static void test_queue_wrap(void **state)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len = 2 * page;
	const unsigned int start = UINT_MAX - 19;
	struct vhu_map *slots, *m[VHU_MAX_MAPS];
	struct vhu_pop p;
	int fd;

	(void)state;
	for (unsigned int n = 1; n <= 5; n++) {
		assert_int_equal(vhu_pop_open(&p, n, NULL), 0);
		assert_true(p.qcap >= n * VHU_MAX_MAPS);
		assert_int_equal(p.qcap & (p.qcap - 1), 0);
		for (unsigned int i = UINT_MAX - 2 * p.qcap; i != 2 * p.qcap; i++)
			assert_int_equal(vhu_pop_qslot(&p, i + 1), (vhu_pop_qslot(&p, i) + 1) % p.qcap);
		vhu_pop_close(&p);
	}
	fd = memfd_create("wrap", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	assert_int_equal(vhu_pop_open(&p, 1, NULL), 0);
	atomic_store(&p.hold, true);
	/* The thread is idle, waiting for work: both indices move together. */
	atomic_store(&p.head, start);
	atomic_store(&p.tail, start);
	slots = vhu_pop_slots(&p, 0);
	for (unsigned int i = 0; i < VHU_MAX_MAPS; i++) {
		m[i] = vhu_map_take(slots, len, 0, 0);
		assert_non_null(m[i]);
		m[i]->addr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		assert_true(m[i]->addr != MAP_FAILED);
		vhu_map_populate(&p, m[i]);
	}
	assert_int_equal(atomic_load(&p.tail), start + VHU_MAX_MAPS);
	atomic_store(&p.hold, false);
	pop_wait_jobs(&p, VHU_MAX_MAPS);
	for (unsigned int i = 0; i < VHU_MAX_MAPS; i++) {
		assert_int_equal(vhu_map_ready(m[i]), 1);
		vhu_map_drop(&p, m[i]);
	}
	pop_wait_free(&p);
	assert_int_equal(atomic_load(&p.unmaps), VHU_MAX_MAPS);
	assert_int_equal(atomic_load(&p.head), start + 2 * VHU_MAX_MAPS);
	vhu_pop_close(&p);
	close(fd);
}

/* A mapping of len bytes of a fresh memfd in a slot of front end `slot`. */
static struct vhu_map *pop_map(struct vhu_pop *p, unsigned int slot, size_t len, int *fd)
{
	struct vhu_map *m = vhu_map_take(vhu_pop_slots(p, slot), len, 0, 0);

	*fd = memfd_create("pop", MFD_CLOEXEC);
	assert_true(*fd >= 0 && m);
	assert_int_equal(ftruncate(*fd, (off_t)len), 0);
	m->addr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	assert_true(m->addr != MAP_FAILED);
	return m;
}

/* One memory thread serves every cell, a piece of each mapping in turn: a one-piece
 * table queued behind a 64 MiB one (4096 pieces) is in while the large one is not.
 * Served in the order they came, the small one would wait for all of the large one. */
static void test_small_behind_large(void **state)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct timespec ts = { 0, 100000 };
	struct vhu_map *big, *small;
	struct vhu_pop p;
	int fb, fs;

	(void)state;
	assert_int_equal(vhu_pop_open(&p, 2, NULL), 0);
	big = pop_map(&p, 0, 64u << 20, &fb);
	small = pop_map(&p, 1, VHU_POP_PIECE_PAGES * page, &fs);
	atomic_store(&p.hold, true);
	vhu_map_populate(&p, big);
	vhu_map_populate(&p, small);
	atomic_store(&p.hold, false);
	for (int k = 0; k < 100000 && vhu_map_ready(small) == 0; k++)
		nanosleep(&ts, NULL);
	assert_int_equal(vhu_map_ready(small), 1);
	assert_int_equal(vhu_map_ready(big), 0);
	vhu_map_drop(&p, small);
	vhu_map_drop(&p, big);
	pop_wait_free(&p);
	vhu_pop_close(&p);
	close(fb);
	close(fs);
}

/* Huge pages free for the test (nr_hugepages is the administrator's: left as it is). */
static size_t huge_free(size_t *hpage)
{
	FILE *fp = fopen("/proc/meminfo", "r");
	char line[128];
	size_t free_pages = 0, kb = 0;

	if (!fp)
		return 0;
	while (fgets(line, sizeof(line), fp)) {
		sscanf(line, "HugePages_Free: %zu", &free_pages);
		sscanf(line, "Hugepagesize: %zu kB", &kb);
	}
	fclose(fp);
	*hpage = kb * 1024;
	return kb ? free_pages : 0;
}

/* One cell on a memfd of two huge pages: a process cell's region is its whole file,
 * a VM's starts one small page in (its mapping starts at the huge page before). */
static void hugetlb_cell(bool seal, size_t hpage)
{
	size_t len = 2 * hpage, skip_off = seal ? 0 : 4096;
	struct vhu_mem_region reg;
	struct vhu_pop p;
	struct fe f;
	uint8_t *host;

	fe_setup(&f);
	munmap(f.mem, REGION);
	close(f.memfd);
	f.memfd = memfd_create("huge", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB);
	assert_true(f.memfd >= 0);
	assert_int_equal(ftruncate(f.memfd, (off_t)len), 0);
	f.mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, f.memfd, 0);
	assert_true(f.mem != MAP_FAILED);
	pop_attach(&f, &p, false);
	f.b.seal = seal;
	negotiate(&f);
	reg = (struct vhu_mem_region){ .guest_addr = GUEST_BASE, .size = len - skip_off,
				       .user_addr = uva(&f, 0), .mmap_offset = skip_off };
	assert_int_equal(mem_table_acked(&f, &reg, 1, 1), 0);
	rings_up(&f);
	pop_wait_done(&f, &p);
	assert_true(f.b.running);
	host = f.b.regions[0].host;
	assert_int_equal(f.b.regions[0].map->page, hpage);
	assert_int_equal(atomic_load(&p.pieces), 2);
	assert_true(fcntl(f.memfd, F_GET_SEALS) & F_SEAL_SHRINK);
	f.mem[hpage + 7] = 0x3c;
	assert_int_equal(host[hpage + 7 - skip_off], 0x3c);
	vhu_backend_disconnect(&f.b);
	pop_wait_free(&p);
	assert_int_equal(mapped_pages(host - skip_off, len), 0);
	assert_int_equal(atomic_load(&p.unmaps), 1);
	assert_int_equal(atomic_load(&p.unmap_pieces), 2);
	munmap(f.mem, len);
	close(f.memfd);
	close(f.sock);
	vhu_pop_close(&p);
}

/* hugetlbfs memory is mapped, populated and unmapped in whole huge pages: a process
 * cell's memfd and a VM's are accepted, populated (the device starts), and after the
 * front end goes every piece is unmapped: the huge pages are free again. Skipped
 * when the host has no free huge pages (nr_hugepages is left as it is). */
static void test_hugetlb_memory(void **state)
{
	size_t hpage = 0, before = huge_free(&hpage);

	(void)state;
	/* A TAP diagnostic, not cmocka's skip(): its "not ok # SKIP" counts as a failure
	 * for meson. */
	if (before < 2) {
		printf("# SKIP test_hugetlb_memory: no free huge pages (vm.nr_hugepages)\n");
		return;
	}
	hugetlb_cell(true, hpage);
	assert_int_equal(huge_free(&hpage), before);
	hugetlb_cell(false, hpage);
	assert_int_equal(huge_free(&hpage), before);
}

/* The front end brings a new memfd (a sealed one cannot come again). */
static void fe_new_memfd(struct fe *f)
{
	munmap(f->mem, REGION);
	close(f->memfd);
	f->memfd = memfd_create("test-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(f->memfd >= 0);
	assert_int_equal(ftruncate(f->memfd, REGION), 0);
	f->mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	assert_true(f->mem != MAP_FAILED);
}

/* Attach, then detach at once: the mapping goes to the memory thread. */
static int attach_detach(struct fe *f)
{
	int rc;

	negotiate(f);
	rc = one_region_acked(f);
	close(f->sock);
	f->sock = -1;
	vhu_backend_disconnect(&f->b);
	fe_connect(f);
	fe_new_memfd(f);
	return rc;
}

/* A cell that attaches and detaches in a loop faster than the memory thread unmaps:
 * with a memory limit, the bytes its mappings hold (being unmapped included) stop at
 * VHU_HELD_TABLES times the limit; without one, at VHU_MAX_MAPS mappings. Then it is
 * refused with a line saying why, no mapping leaks, its refused file is left unsealed,
 * and once the thread caught up the same file attaches. */
static void test_reattach_loop(void **state)
{
	unsigned int base, n = 0;
	char text[512];
	struct vhu_pop p;
	struct fe f;

	(void)state;
	fe_setup(&f);
	base = memfd_maps(); /* the front end's own mapping */
	pop_attach(&f, &p, true);
	f.b.max_mem = REGION;
	f.b.max_mem_key = "region";
	for (unsigned int i = 0; i < VHU_HELD_TABLES; i++)
		assert_int_equal(attach_detach(&f), 0);
	assert_int_equal(slots_busy(&p), VHU_HELD_TABLES);
	assert_int_equal(memfd_maps(), base + VHU_HELD_TABLES);
	negotiate(&f);
	assert_int_equal(stderr_lines(table_refused, &f, text, sizeof(text)), 1);
	assert_non_null(strstr(text, "cell test: memory region 0 refused: earlier tables are "
			   "still being released (try again)"));
	assert_int_equal(f.b.last_error, -EBUSY);
	assert_int_equal(slots_busy(&p), VHU_HELD_TABLES);
	assert_int_equal(memfd_maps(), base + VHU_HELD_TABLES);
	assert_false(fcntl(f.memfd, F_GET_SEALS) & F_SEAL_FUTURE_WRITE);
	atomic_store(&p.hold, false);
	pop_wait_free(&p);
	assert_int_equal(atomic_load(&p.unmaps), VHU_HELD_TABLES);
	assert_int_equal(memfd_maps(), base);
	assert_int_equal(one_region_acked(&f), 0);
	assert_int_equal(memfd_maps(), base + 1);

	/* No limit: the slots bound it. */
	atomic_store(&p.hold, true);
	vhu_backend_disconnect(&f.b);
	fe_connect(&f);
	fe_new_memfd(&f);
	f.b.max_mem = 0;
	while (n <= VHU_MAX_MAPS && attach_detach(&f) == 0)
		n++;
	assert_int_equal(n, VHU_MAX_MAPS - 1); /* one slot is still the first table's */
	assert_int_equal(slots_busy(&p), VHU_MAX_MAPS);
	assert_int_equal(memfd_maps(), base + VHU_MAX_MAPS);
	atomic_store(&p.hold, false);
	pop_wait_free(&p);
	assert_int_equal(memfd_maps(), base);
	fe_teardown(&f);
	vhu_pop_close(&p);
}

/* The populate thread's cpus: the allowed ones minus the broker's, or all. */
static void test_pop_cpus(void **state)
{
	cpu_set_t all, out;
	int broker[2] = { 0, -1 };

	(void)state;
	CPU_ZERO(&all);
	CPU_SET(0, &all);
	CPU_SET(1, &all);
	vhu_pop_cpus(&all, broker, 2, &out);
	assert_int_equal(CPU_COUNT(&out), 1);
	assert_true(CPU_ISSET(1, &out));
	broker[1] = 1;
	vhu_pop_cpus(&all, broker, 2, &out);
	assert_int_equal(CPU_COUNT(&out), 2);
}

/* A new memory table on a running device: stop, remap, re-translate, start. */
static void test_mem_table_while_running(void **state)
{
	struct fe f;

	(void)state;
	fe_setup(&f);
	bring_up(&f);
	assert_int_equal(one_region_acked(&f), 0);
	assert_int_equal(f.dev.stops, 1);
	assert_int_equal(f.dev.starts, 2);
	f.mem[RING_OFF(1)] = 0x77;
	assert_int_equal(*(uint8_t *)f.dev.desc[1], 0x77);
	fe_teardown(&f);
}

/* ---- Hostile front ends ------------------------------------------------------------ */

static void test_oversized_payload(void **state)
{
	struct fe f;
	struct vhu_hdr h = { .request = VHU_SET_FEATURES, .flags = VHU_VERSION,
			     .size = VHU_MAX_PAYLOAD + 1 };
	int before = count_fds();

	(void)state;
	fe_setup(&f);
	assert_int_equal(write(f.sock, &h, sizeof(h)), (ssize_t)sizeof(h));
	assert_int_equal(vhu_backend_service(&f.b, 16), -EMSGSIZE);
	fe_teardown(&f);
	assert_int_equal(count_fds(), before);
}

static void test_bad_version(void **state)
{
	struct fe f;
	struct vhu_msg m;

	(void)state;
	fe_setup(&f);
	vhu_msg_init(&m, VHU_GET_FEATURES, 0);
	m.hdr.flags = 2;
	assert_int_equal(xfer(&f, &m, NULL, 0), -EPROTO);
	fe_teardown(&f);
}

/* Too many descriptors for one message: framing is lost, the connection goes. */
static void test_too_many_fds(void **state)
{
	struct fe f;
	int before = count_fds();
	int fds[VHU_MAX_FDS + 1];
	struct vhu_hdr h = { .request = VHU_SET_OWNER, .flags = VHU_VERSION, .size = 0 };
	union {
		char buf[CMSG_SPACE(sizeof(int) * (VHU_MAX_FDS + 1))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = &h, .iov_len = sizeof(h) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c;

	(void)state;
	fe_setup(&f);
	before = count_fds();
	for (int i = 0; i <= (int)VHU_MAX_FDS; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	memset(&ctl, 0, sizeof(ctl));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	assert_int_equal(sendmsg(f.sock, &mh, 0), (ssize_t)sizeof(h));
	for (int i = 0; i <= (int)VHU_MAX_FDS; i++)
		close(fds[i]);
	assert_int_equal(vhu_backend_service(&f.b, 16), -E2BIG);
	assert_int_equal(count_fds(), before);
	fe_teardown(&f);
}

static void test_bad_mem_tables(void **state)
{
	struct fe f;
	int before;
	struct vhu_mem_region reg[VHU_MAX_REGIONS + 1];

	(void)state;
	fe_setup(&f);
	before = count_fds();
	negotiate(&f);
	for (unsigned int i = 0; i <= VHU_MAX_REGIONS; i++)
		reg[i] = (struct vhu_mem_region){ .guest_addr = GUEST_BASE + i * 4096ull,
						  .size = 4096, .user_addr = uva(&f, i * 4096ull),
						  .mmap_offset = i * 4096ull };
	/* nregions 9: more than the table holds (the payload says 9, carries 8). */
	{
		struct vhu_msg m, r;
		int fds[VHU_MAX_FDS];

		vhu_msg_init(&m, VHU_SET_MEM_TABLE, sizeof(struct vhu_mem_table));
		m.hdr.flags |= VHU_FLAG_NEED_REPLY;
		m.p.mem.nregions = 9;
		memcpy(m.p.mem.regions, reg, sizeof(m.p.mem.regions));
		for (int i = 0; i < (int)VHU_MAX_FDS; i++)
			fds[i] = f.memfd;
		assert_int_equal(xfer(&f, &m, fds, VHU_MAX_FDS), 0);
		get_reply(&f, VHU_SET_MEM_TABLE, &r);
		assert_int_not_equal(r.p.u64, 0);
	}
	/* Zero regions. */
	assert_int_not_equal(mem_table_acked(&f, reg, 0, 0), 0);
	/* One region but two descriptors, and two regions but one descriptor. */
	assert_int_not_equal(mem_table_acked(&f, reg, 1, 2), 0);
	assert_int_not_equal(mem_table_acked(&f, reg, 2, 1), 0);
	/* guest_addr + size wraps around 2^64. */
	{
		struct vhu_mem_region w = { .guest_addr = UINT64_MAX - 100, .size = 4096,
					    .user_addr = uva(&f, 0) };

		assert_int_not_equal(mem_table_acked(&f, &w, 1, 1), 0);
		w.guest_addr = GUEST_BASE;
		w.user_addr = UINT64_MAX - 10;
		assert_int_not_equal(mem_table_acked(&f, &w, 1, 1), 0);
		w.user_addr = uva(&f, 0);
		w.mmap_offset = UINT64_MAX - 4095;
		assert_int_not_equal(mem_table_acked(&f, &w, 1, 1), 0);
		/* Size zero, and a size beyond the file (would SIGBUS on access). */
		w.mmap_offset = 0;
		w.size = 0;
		assert_int_not_equal(mem_table_acked(&f, &w, 1, 1), 0);
		w.size = REGION + 4096;
		assert_int_not_equal(mem_table_acked(&f, &w, 1, 1), 0);
		w.size = REGION;
		w.mmap_offset = 4096;
		assert_int_not_equal(mem_table_acked(&f, &w, 1, 1), 0);
		/* Overlapping guest ranges. */
		struct vhu_mem_region o[2] = { reg[0], reg[1] };

		o[1].guest_addr = reg[0].guest_addr + 2048;
		assert_int_not_equal(mem_table_acked(&f, o, 2, 2), 0);
	}
	/* A descriptor that is not a memory object at all. */
	{
		struct vhu_msg m, r;
		int efd = eventfd(0, EFD_CLOEXEC);

		vhu_msg_init(&m, VHU_SET_MEM_TABLE, 8 + 32);
		m.hdr.flags |= VHU_FLAG_NEED_REPLY;
		m.p.mem.nregions = 1;
		m.p.mem.regions[0] = reg[0];
		assert_int_equal(xfer(&f, &m, &efd, 1), 0);
		get_reply(&f, VHU_SET_MEM_TABLE, &r);
		assert_int_not_equal(r.p.u64, 0);
		close(efd);
	}
	/* Truncated payload for one region. */
	{
		struct vhu_msg m, r;

		vhu_msg_init(&m, VHU_SET_MEM_TABLE, 8 + 16);
		m.hdr.flags |= VHU_FLAG_NEED_REPLY;
		m.p.mem.nregions = 1;
		assert_int_equal(xfer(&f, &m, &f.memfd, 1), 0);
		get_reply(&f, VHU_SET_MEM_TABLE, &r);
		assert_int_not_equal(r.p.u64, 0);
	}
	assert_int_equal(f.b.nregions, 0);
	assert_int_equal(count_fds(), before);
	/* Eight regions are fine. */
	assert_int_equal(mem_table_acked(&f, reg, VHU_MAX_REGIONS, VHU_MAX_REGIONS), 0);
	assert_int_equal(f.b.nregions, VHU_MAX_REGIONS);
	fe_teardown(&f);
}

static void test_bad_rings(void **state)
{
	struct fe f;
	int before;

	(void)state;
	fe_setup(&f);
	before = count_fds();
	negotiate(&f);
	/* SET_VRING_ADDR before any memory table cannot be checked: refused. */
	assert_int_not_equal(addr_acked(&f, 0, uva(&f, 0), uva(&f, AVAIL_OFF), uva(&f, USED_OFF)), 0);
	assert_int_equal(one_region_acked(&f), 0);
	/* Queue sizes: zero, not a power of two, above 32768. */
	assert_int_not_equal(state_acked(&f, VHU_SET_VRING_NUM, 0, 0), 0);
	assert_int_not_equal(state_acked(&f, VHU_SET_VRING_NUM, 0, 100), 0);
	assert_int_not_equal(state_acked(&f, VHU_SET_VRING_NUM, 0, 65536), 0);
	assert_int_equal(f.b.ring[0].num, 0);
	/* Queue index 5 (and 2, QEMU's own event queue) are not ours. */
	assert_int_not_equal(state_acked(&f, VHU_SET_VRING_NUM, 5, NUM), 0);
	assert_int_not_equal(state_acked(&f, VHU_SET_VRING_NUM, 2, NUM), 0);
	assert_int_not_equal(state_acked(&f, VHU_SET_VRING_BASE, 5, 0), 0);
	assert_int_not_equal(state_acked(&f, VHU_SET_VRING_ENABLE, 5, 1), 0);
	assert_int_not_equal(state_acked(&f, VHU_SET_VRING_ENABLE, 0, 2), 0);
	assert_int_not_equal(state_acked(&f, VHU_SET_VRING_BASE, 0, 70000), 0);
	assert_int_not_equal(kick_acked(&f, VHU_SET_VRING_KICK, 5), 0);
	assert_int_not_equal(kick_acked(&f, VHU_SET_VRING_CALL, 5), 0);
	assert_int_not_equal(addr_acked(&f, 5, uva(&f, 0), uva(&f, AVAIL_OFF), uva(&f, USED_OFF)), 0);
	assert_int_equal(state_acked(&f, VHU_SET_VRING_NUM, 0, NUM), 0);
	/* Ring addresses outside every region, straddling its end, misaligned. */
	assert_int_not_equal(addr_acked(&f, 0, 4096, uva(&f, AVAIL_OFF), uva(&f, USED_OFF)), 0);
	assert_int_not_equal(addr_acked(&f, 0, uva(&f, 0), uva(&f, AVAIL_OFF),
					uva(&f, REGION - 512)), 0);
	assert_int_not_equal(addr_acked(&f, 0, uva(&f, REGION - 1024), uva(&f, AVAIL_OFF),
					uva(&f, USED_OFF)), 0);
	assert_int_not_equal(addr_acked(&f, 0, uva(&f, 8), uva(&f, AVAIL_OFF), uva(&f, USED_OFF)), 0);
	assert_int_not_equal(addr_acked(&f, 0, uva(&f, 0), uva(&f, AVAIL_OFF + 1),
					uva(&f, USED_OFF)), 0);
	assert_int_not_equal(addr_acked(&f, 0, uva(&f, 0), uva(&f, AVAIL_OFF), uva(&f, USED_OFF + 2)), 0);
	/* Guest addresses instead of user addresses are outside too. */
	assert_int_not_equal(addr_acked(&f, 0, GUEST_BASE, GUEST_BASE + AVAIL_OFF,
					GUEST_BASE + USED_OFF), 0);
	assert_false(f.b.ring[0].addr_set);
	assert_int_equal(count_fds(), before + 0);
	fe_teardown(&f);
	assert_int_equal(f.dev.starts, 0);
}

/* A ring whose size grows after its address was accepted so that it no longer fits
 * its region: the device must not start. */
static void test_ring_grows_out_of_region(void **state)
{
	struct fe f;

	(void)state;
	fe_setup(&f);
	negotiate(&f);
	assert_int_equal(one_region_acked(&f), 0);
	setup_ring(&f, 0);
	assert_int_equal(state_acked(&f, VHU_SET_VRING_NUM, 1, 8), 0);
	assert_int_equal(addr_acked(&f, 1, uva(&f, REGION - 4096), uva(&f, REGION - 2048),
				    uva(&f, REGION - 1024)), 0);
	assert_int_equal(state_acked(&f, VHU_SET_VRING_NUM, 1, 1024), 0);
	assert_int_equal(kick_acked(&f, VHU_SET_VRING_KICK, 1), 0);
	assert_int_equal(state_acked(&f, VHU_SET_VRING_ENABLE, 0, 1), 0);
	assert_int_equal(state_acked(&f, VHU_SET_VRING_ENABLE, 1, 1), 0);
	assert_int_equal(f.dev.starts, 0);
	assert_false(f.b.running);
	fe_teardown(&f);
}

static void test_wrong_fd_counts(void **state)
{
	struct fe f;
	int before, efd[2];
	uint64_t ack = 0;

	(void)state;
	fe_setup(&f);
	before = count_fds();
	negotiate(&f);
	efd[0] = eventfd(0, EFD_CLOEXEC);
	efd[1] = eventfd(0, EFD_CLOEXEC);
	/* KICK with no descriptor and no "no fd" flag. */
	assert_int_equal(send_u64(&f, VHU_SET_VRING_KICK, 0, true, NULL, 0, &ack), 0);
	assert_int_not_equal(ack, 0);
	/* CALL with the "no fd" flag and a descriptor anyway. */
	assert_int_equal(send_u64(&f, VHU_SET_VRING_CALL, 0 | VHU_VRING_NOFD, true, efd, 1, &ack), 0);
	assert_int_not_equal(ack, 0);
	/* KICK with two descriptors. */
	assert_int_equal(send_u64(&f, VHU_SET_VRING_KICK, 0, true, efd, 2, &ack), 0);
	assert_int_not_equal(ack, 0);
	/* Unknown bits in the index word. */
	assert_int_equal(send_u64(&f, VHU_SET_VRING_KICK, 0 | (1ull << 20), true, efd, 1, &ack), 0);
	assert_int_not_equal(ack, 0);
	/* Descriptors on messages that take none. */
	assert_int_equal(send_u64(&f, VHU_SET_FEATURES, 1ull << VHU_F_VERSION_1, true, efd, 2, &ack), 0);
	assert_int_not_equal(ack, 0);
	{
		struct vhu_msg m, r;

		/* GET_FEATURES with a descriptor: closed, and a zero-sized reply. */
		vhu_msg_init(&m, VHU_GET_FEATURES, 0);
		assert_int_equal(xfer(&f, &m, efd, 1), 0);
		get_reply(&f, VHU_GET_FEATURES, &r);
		assert_int_equal(r.hdr.size, 0);
	}
	/* Features we never offered. */
	assert_int_equal(send_u64(&f, VHU_SET_FEATURES, 1ull << 26, true, NULL, 0, &ack), 0);
	assert_int_not_equal(ack, 0);
	assert_int_equal(send_u64(&f, VHU_SET_PROTOCOL_FEATURES, 1ull << 1, true, NULL, 0, &ack), 0);
	assert_int_not_equal(ack, 0);
	assert_int_equal(f.b.ring[0].kick_fd, -1);
	assert_int_equal(f.b.ring[0].call_fd, -1);
	/* "No fd" kick: the broker polls that ring; accepted. */
	assert_int_equal(send_u64(&f, VHU_SET_VRING_KICK, 1 | VHU_VRING_NOFD, true, NULL, 0, &ack), 0);
	assert_int_equal(ack, 0);
	assert_true(f.b.ring[1].kick_nofd);
	assert_true(f.b.ring[1].started);
	close(efd[0]);
	close(efd[1]);
	assert_int_equal(count_fds(), before);
	fe_teardown(&f);
}

static void test_unknown_and_config(void **state)
{
	struct fe f;
	struct vhu_msg m, r;
	int efd = eventfd(0, EFD_CLOEXEC);
	int before;

	(void)state;
	fe_setup(&f);
	negotiate(&f);
	before = count_fds();
	/* Unknown request with NEED_REPLY: an error ack. */
	vhu_msg_init(&m, 99, 4);
	m.hdr.flags |= VHU_FLAG_NEED_REPLY;
	assert_int_equal(xfer(&f, &m, &efd, 1), 0);
	get_reply(&f, 99, &r);
	assert_int_equal(r.p.u64, 1);
	/* ... without: no answer, and the connection carries on. */
	vhu_msg_init(&m, VHU_SET_LOG_BASE, 0);
	assert_int_equal(xfer(&f, &m, &efd, 1), 0);
	assert_false(reply_waiting(&f));
	close(efd);
	assert_int_equal(count_fds(), before - 1);
	/* GET_CONFIG beyond the 8-byte config space: a zero-sized reply. */
	vhu_msg_init(&m, VHU_GET_CONFIG, VHU_CONFIG_HDR + 8);
	m.p.config.offset = 4;
	m.p.config.size = 8;
	assert_int_equal(xfer(&f, &m, NULL, 0), 0);
	get_reply(&f, VHU_GET_CONFIG, &r);
	assert_int_equal(r.hdr.size, 0);
	/* Sizes that disagree with each other. */
	vhu_msg_init(&m, VHU_GET_CONFIG, VHU_CONFIG_HDR + 4);
	m.p.config.offset = 0;
	m.p.config.size = 8;
	assert_int_equal(xfer(&f, &m, NULL, 0), 0);
	get_reply(&f, VHU_GET_CONFIG, &r);
	assert_int_equal(r.hdr.size, 0);
	/* A window of it: bytes 4..7 of the CID. */
	vhu_msg_init(&m, VHU_GET_CONFIG, VHU_CONFIG_HDR + 4);
	m.p.config.offset = 4;
	m.p.config.size = 4;
	m.p.config.flags = 0;
	f.b.cid = 0x1122334455667788ull;
	assert_int_equal(xfer(&f, &m, NULL, 0), 0);
	get_reply(&f, VHU_GET_CONFIG, &r);
	assert_int_equal(r.hdr.size, VHU_CONFIG_HDR + 4);
	assert_int_equal(r.p.config.offset, 4);
	{
		const uint8_t want[4] = { 0x44, 0x33, 0x22, 0x11 };

		assert_memory_equal(r.p.config.data, want, 4);
	}
	/* GET_VRING_BASE for a queue that is not ours is still answered. */
	vhu_msg_init(&m, VHU_GET_VRING_BASE, 8);
	m.p.state.index = 5;
	assert_int_equal(xfer(&f, &m, NULL, 0), 0);
	get_reply(&f, VHU_GET_VRING_BASE, &r);
	assert_int_equal(r.p.state.num, 0);
	fe_teardown(&f);
}

/* A message cut in the middle is completed by a later read (non-blocking reader). */
static void test_split_message(void **state)
{
	struct fe f;
	struct vhu_hdr h = { .request = VHU_SET_FEATURES, .flags = VHU_VERSION, .size = 8 };
	uint64_t v = 1ull << VHU_F_VERSION_1;

	(void)state;
	fe_setup(&f);
	assert_int_equal(write(f.sock, &h, 6), 6);
	assert_int_equal(vhu_backend_service(&f.b, 16), 0);
	assert_int_equal(f.b.messages, 0);
	assert_int_equal(write(f.sock, (uint8_t *)&h + 6, 6), 6);
	assert_int_equal(write(f.sock, &v, 3), 3);
	assert_int_equal(vhu_backend_service(&f.b, 16), 0);
	assert_int_equal(f.b.messages, 0);
	assert_int_equal(write(f.sock, (uint8_t *)&v + 3, 5), 5);
	assert_int_equal(vhu_backend_service(&f.b, 16), 0);
	assert_int_equal(f.b.messages, 1);
	assert_int_equal(f.b.features, v);
	fe_teardown(&f);
}

/* EOF while running: everything is released, and the same cell can come back. */
static void test_reconnect(void **state)
{
	struct fe f;
	int before;

	(void)state;
	fe_setup(&f);
	before = count_fds();
	bring_up(&f);
	close(f.sock);
	assert_int_equal(vhu_backend_service(&f.b, 16), -ECONNRESET);
	vhu_backend_disconnect(&f.b);
	assert_int_equal(f.dev.stops, 1);
	assert_int_equal(f.b.nregions, 0);
	assert_int_equal(f.b.sock, -1);
	assert_int_equal(count_fds(), before - 2);
	fe_connect(&f);
	bring_up(&f);
	assert_int_equal(f.dev.starts, 2);
	/* A start that the device refuses leaves the back end stopped, not wedged. */
	close(f.sock);
	vhu_backend_disconnect(&f.b);
	fe_connect(&f);
	f.dev.start_rc = -EBUSY;
	negotiate(&f);
	assert_int_equal(one_region_acked(&f), 0);
	setup_ring(&f, 0);
	setup_ring(&f, 1);
	assert_int_equal(state_acked(&f, VHU_SET_VRING_ENABLE, 0, 1), 0);
	assert_int_equal(state_acked(&f, VHU_SET_VRING_ENABLE, 1, 1), 0);
	assert_false(f.b.running);
	assert_int_equal(f.b.last_error, -EBUSY);
	fe_teardown(&f);
}

/* RESET_OWNER forgets the set-up but keeps the connection; asked for an ack, it
 * gets one even though the reset also forgot REPLY_ACK. */
static void test_reset_owner(void **state)
{
	struct fe f;
	struct vhu_msg m, r;

	(void)state;
	fe_setup(&f);
	bring_up(&f);
	vhu_msg_init(&m, VHU_RESET_OWNER, 0);
	assert_int_equal(xfer(&f, &m, NULL, 0), 0);
	assert_false(reply_waiting(&f));
	assert_false(f.b.running);
	assert_int_equal(f.b.nregions, 0);
	assert_int_equal(f.b.ring[0].kick_fd, -1);
	bring_up(&f);
	assert_int_equal(f.dev.starts, 2);
	vhu_msg_init(&m, VHU_RESET_OWNER, 0);
	m.hdr.flags |= VHU_FLAG_NEED_REPLY;
	assert_int_equal(xfer(&f, &m, NULL, 0), 0);
	assert_true(reply_waiting(&f));
	get_reply(&f, VHU_RESET_OWNER, &r);
	assert_int_equal(r.hdr.size, 8);
	assert_int_equal(r.p.u64, 0);
	assert_false(f.b.running);
	assert_int_equal(f.b.protocol_features, 0);
	fe_teardown(&f);
}

/* A flood of messages is handled at most `budget` at a time. */
static void test_service_budget(void **state)
{
	struct fe f;
	struct vhu_msg m;

	(void)state;
	fe_setup(&f);
	vhu_msg_init(&m, VHU_SET_OWNER, 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(vhu_send(f.sock, &m, NULL, 0), 0);
	assert_int_equal(vhu_backend_service(&f.b, 4), 0);
	assert_int_equal(f.b.messages, 4);
	assert_int_equal(vhu_backend_service(&f.b, 100), 0);
	assert_int_equal(f.b.messages, 10);
	fe_teardown(&f);
}

/* Within an allowance: at most `msgs` messages, and a memory-table change beyond
 * `maps` is read but kept, unhandled, for the next call (which takes it first). */
static void test_service_allow(void **state)
{
	struct vhu_mem_region reg = {
		.guest_addr = GUEST_BASE, .size = REGION, .mmap_offset = 0,
	};
	struct vhu_allow left = { .msgs = 10, .maps = 0 };
	struct fe f;
	struct vhu_msg m;

	(void)state;
	fe_setup(&f);
	reg.user_addr = uva(&f, 0);
	vhu_msg_init(&m, VHU_SET_OWNER, 0);
	assert_int_equal(vhu_send(f.sock, &m, NULL, 0), 0);
	vhu_msg_init(&m, VHU_SET_MEM_TABLE, 8 + 32);
	m.p.mem.nregions = 1;
	m.p.mem.padding = 0;
	memcpy(m.p.mem.regions, &reg, sizeof(reg));
	assert_int_equal(vhu_send(f.sock, &m, &f.memfd, 1), 0);
	vhu_msg_init(&m, VHU_SET_OWNER, 0);
	assert_int_equal(vhu_send(f.sock, &m, NULL, 0), 0);
	/* SET_OWNER handled; the table waits for an allowance with a map in it. */
	assert_int_equal(vhu_backend_service_allow(&f.b, &left), 1);
	assert_int_equal(f.b.messages, 1);
	assert_int_equal(left.msgs, 9);
	assert_int_equal(f.b.nregions, 0);
	assert_int_equal(vhu_backend_service_allow(&f.b, &left), 1);
	assert_int_equal(f.b.messages, 1);
	left = (struct vhu_allow){ .msgs = 1, .maps = 1 };
	/* The table, then the last SET_OWNER is read and kept: no messages left. */
	assert_int_equal(vhu_backend_service_allow(&f.b, &left), 1);
	assert_int_equal(f.b.messages, 2);
	assert_int_equal(f.b.nregions, 1);
	assert_int_equal(left.maps, 0);
	left = (struct vhu_allow){ .msgs = 5, .maps = 0 };
	assert_int_equal(vhu_backend_service_allow(&f.b, &left), 0);
	assert_int_equal(f.b.messages, 3);
	assert_int_equal(left.msgs, 4);
	fe_teardown(&f);
}

/* Runs fn with stderr going to a file; returns how many lines it wrote. */
static int stderr_lines(void (*fn)(void *), void *arg, char *text, size_t len)
{
	FILE *tmp = tmpfile();
	int saved, lines = 0;
	size_t n;

	assert_non_null(tmp);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_int_equal(dup2(fileno(tmp), STDERR_FILENO), STDERR_FILENO);
	fn(arg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(text, 1, len - 1, tmp);
	text[n] = '\0';
	fclose(tmp);
	for (size_t i = 0; i < n; i++)
		lines += text[i] == '\n';
	return lines;
}

static void one_region_refused(void *arg)
{
	assert_int_not_equal(one_region_acked(arg), 0);
}

/* A memory table larger than the cell's configured memory is refused before anything
 * is mapped, with a line naming the cell; one that fits exactly is fine. */
static void test_mem_limit(void **state)
{
	char text[512];
	struct fe f;
	struct vhu_mem_region reg[2];
	int before;

	(void)state;
	fe_setup(&f);
	before = count_fds();
	f.b.max_mem = REGION / 2;
	f.b.max_mem_key = "region";
	negotiate(&f);
	assert_int_equal(stderr_lines(one_region_refused, &f, text, sizeof(text)), 1);
	assert_string_equal(text, "rtvio broker: cell test: memory table of 1048576 bytes "
			    "refused: larger than the cell's configured region (524288 bytes)\n");
	assert_int_equal(f.b.last_error, -E2BIG);
	assert_int_equal(f.b.nregions, 0);
	/* Two regions that fit one by one but not together. */
	for (unsigned int i = 0; i < 2; i++)
		reg[i] = (struct vhu_mem_region){ .guest_addr = GUEST_BASE + i * (REGION / 2),
						  .size = REGION / 4 + 4096,
						  .user_addr = uva(&f, i * (REGION / 2)),
						  .mmap_offset = i * (REGION / 2) };
	assert_int_not_equal(mem_table_acked(&f, reg, 2, 2), 0);
	assert_int_equal(f.b.nregions, 0);
	reg[1].size = REGION / 4 - 4096;
	assert_int_equal(mem_table_acked(&f, reg, 2, 2), 0);
	assert_int_equal(f.b.nregions, 2);
	/* Exactly the limit. */
	reg[0].size = REGION / 2;
	assert_int_equal(mem_table_acked(&f, reg, 1, 1), 0);
	assert_int_equal(count_fds(), before);
	fe_teardown(&f);
}

/* A regular file on a disk file system, or -1 when only tmpfs is at hand. */
static int disk_file(size_t size)
{
	const char *dirs[] = { "/var/tmp", "/tmp", "." };

	for (unsigned int i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char path[64];
		struct statfs fs;
		int fd;

		snprintf(path, sizeof(path), "%s/rtvio-test-XXXXXX", dirs[i]);
		fd = mkstemp(path);
		if (fd < 0)
			continue;
		unlink(path);
		if (fstatfs(fd, &fs) == 0 && fs.f_type != TMPFS_MAGIC &&
		    ftruncate(fd, (off_t)size) == 0)
			return fd;
		close(fd);
	}
	return -1;
}

/* Descriptors of the wrong kind: the memory table takes shared memory only (not a
 * file on disk, not a pipe), kick/call/err take eventfds only. Each is refused and
 * closed; the kinds that are right still work afterwards. */
static void test_wrong_fd_kinds(void **state)
{
	struct fe f;
	struct vhu_msg m, r;
	int before, pfd[2], disk, wrong[3];
	uint64_t ack = 0;
	const uint32_t reqs[] = { VHU_SET_VRING_KICK, VHU_SET_VRING_CALL, VHU_SET_VRING_ERR };

	(void)state;
	fe_setup(&f);
	negotiate(&f);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	disk = disk_file(REGION);
	before = count_fds();
	wrong[0] = pfd[0];
	wrong[1] = pfd[1];
	wrong[2] = disk;
	for (unsigned int i = 0; i < 3; i++) {
		if (wrong[i] < 0)
			continue; /* no disk file system here */
		vhu_msg_init(&m, VHU_SET_MEM_TABLE, 8 + 32);
		m.hdr.flags |= VHU_FLAG_NEED_REPLY;
		m.p.mem.nregions = 1;
		m.p.mem.regions[0] = (struct vhu_mem_region){
			.guest_addr = GUEST_BASE, .size = 4096, .user_addr = uva(&f, 0),
		};
		assert_int_equal(xfer(&f, &m, &wrong[i], 1), 0);
		get_reply(&f, VHU_SET_MEM_TABLE, &r);
		assert_int_not_equal(r.p.u64, 0);
		assert_int_equal(f.b.nregions, 0);
		for (unsigned int k = 0; k < 3; k++) {
			assert_int_equal(send_u64(&f, reqs[k], 0, true, &wrong[i], 1, &ack), 0);
			assert_int_not_equal(ack, 0);
		}
	}
	assert_int_equal(f.b.ring[0].kick_fd, -1);
	assert_int_equal(f.b.ring[0].call_fd, -1);
	assert_int_equal(f.b.ring[0].err_fd, -1);
	assert_false(f.b.ring[0].started);
	assert_int_equal(count_fds(), before);
	assert_int_equal(one_region_acked(&f), 0);
	for (unsigned int k = 0; k < 3; k++)
		assert_int_equal(kick_acked(&f, reqs[k], 0), 0);
	assert_true(f.b.ring[0].kick_fd >= 0 && f.b.ring[0].call_fd >= 0 &&
		    f.b.ring[0].err_fd >= 0);
	close(pfd[0]);
	close(pfd[1]);
	if (disk >= 0)
		close(disk);
	fe_teardown(&f);
}

/* Malformed requests a careless or hostile front end may send, each refused. */
static void test_bad_requests(void **state)
{
	const uint32_t gets[] = { VHU_GET_FEATURES, VHU_GET_PROTOCOL_FEATURES, VHU_GET_QUEUE_NUM };
	struct fe f;
	struct vhu_msg m, r;
	uint64_t ack = 0;

	(void)state;
	fe_setup(&f);
	/* GET_* with a payload: a zero-sized reply, never a value. */
	for (unsigned int i = 0; i < 3; i++) {
		vhu_msg_init(&m, gets[i], 8);
		m.p.u64 = 0;
		assert_int_equal(xfer(&f, &m, NULL, 0), 0);
		get_reply(&f, gets[i], &r);
		assert_int_equal(r.hdr.size, 0);
	}
	negotiate(&f);
	/* SET_FEATURES without VERSION_1: core/ speaks virtio 1.x only. */
	assert_int_equal(send_u64(&f, VHU_SET_FEATURES, 1ull << VHU_F_PROTOCOL_FEATURES, true,
				  NULL, 0, &ack), 0);
	assert_int_not_equal(ack, 0);
	assert_true(f.b.features & (1ull << VHU_F_VERSION_1)); /* unchanged */
	/* Regions whose user ranges overlap (guest ranges apart). */
	{
		struct vhu_mem_region o[2] = {
			{ .guest_addr = GUEST_BASE, .size = REGION / 2, .user_addr = uva(&f, 0) },
			{ .guest_addr = GUEST_BASE + REGION, .size = REGION / 2,
			  .user_addr = uva(&f, REGION / 4), .mmap_offset = REGION / 2 },
		};

		assert_int_not_equal(mem_table_acked(&f, o, 2, 2), 0);
		assert_int_equal(f.b.nregions, 0);
		o[1].user_addr = uva(&f, REGION / 2);
		assert_int_equal(mem_table_acked(&f, o, 2, 2), 0);
	}
	/* SET_VRING_ADDR asking for dirty logging, which was never offered. */
	assert_int_equal(state_acked(&f, VHU_SET_VRING_NUM, 0, NUM), 0);
	vhu_msg_init(&m, VHU_SET_VRING_ADDR, sizeof(struct vhu_vring_addr));
	m.hdr.flags |= VHU_FLAG_NEED_REPLY;
	memset(&m.p.addr, 0, sizeof(m.p.addr));
	m.p.addr.index = 0;
	m.p.addr.flags = 1;
	m.p.addr.desc = uva(&f, DESC_OFF);
	m.p.addr.avail = uva(&f, AVAIL_OFF);
	m.p.addr.used = uva(&f, USED_OFF);
	assert_int_equal(xfer(&f, &m, NULL, 0), 0);
	get_reply(&f, VHU_SET_VRING_ADDR, &r);
	assert_int_not_equal(r.p.u64, 0);
	assert_false(f.b.ring[0].addr_set);
	assert_int_equal(addr_acked(&f, 0, uva(&f, DESC_OFF), uva(&f, AVAIL_OFF),
				    uva(&f, USED_OFF)), 0);
	fe_teardown(&f);
}

/* A front end that connects, breaks the framing and comes back, over and over. */
static void framing_errors(void *arg)
{
	struct fe *f = arg;
	struct vhu_msg m;

	for (int i = 0; i < 20; i++) {
		vhu_msg_init(&m, VHU_GET_FEATURES, 0);
		m.hdr.flags = 2;
		assert_int_equal(xfer(f, &m, NULL, 0), -EPROTO);
		close(f->sock);
		vhu_backend_disconnect(&f->b);
		fe_connect(f);
	}
}

/* What a reconnect loop can make the broker print is bounded per cell; the lines
 * left out are counted and reported with the next line once the window has passed. */
static void test_log_rate_limit(void **state)
{
	static char text[8192];
	struct fe f;

	(void)state;
	fe_setup(&f);
	assert_int_equal(stderr_lines(framing_errors, &f, text, sizeof(text)), VHU_LOG_BURST);
	assert_non_null(strstr(text, "rtvio broker: cell test: front end broke the "
				     "vhost-user framing"));
	assert_int_equal(f.b.log_suppressed, 20 - VHU_LOG_BURST);
	/* The window is over: the count comes first, then the line. */
	f.b.log_window_ns -= VHU_LOG_WINDOW_NS;
	assert_int_equal(stderr_lines(framing_errors, &f, text, sizeof(text)),
			 VHU_LOG_BURST + 1);
	assert_non_null(strstr(text, "rtvio broker: cell test: 12 more line(s) not shown"));
	assert_true(strstr(text, "not shown") < strstr(text, "framing"));
	/* Verbose: everything is shown. */
	f.b.verbose = true;
	assert_true(stderr_lines(framing_errors, &f, text, sizeof(text)) >= 20);
	fe_teardown(&f);
}

/* A cell that truncates its (unsealable) memory under the broker: the next access
 * completes on a zero page, the back end is marked faulted, and the process lives.
 * A fault outside every front-end region still kills (checked in a child). */
static void test_sigbus_guard(void **state)
{
	struct fe f;
	volatile uint8_t *p;
	uint8_t v;
	pid_t pid;
	int status;

	(void)state;
	assert_int_equal(vhu_sigbus_install(), 0);
	fe_setup(&f);
	/* Replace the region by one that cannot be sealed (no MFD_ALLOW_SEALING). */
	munmap(f.mem, REGION);
	close(f.memfd);
	f.memfd = memfd_create("unsealable", MFD_CLOEXEC);
	assert_true(f.memfd >= 0);
	assert_int_equal(ftruncate(f.memfd, REGION), 0);
	f.mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, f.memfd, 0);
	assert_true(f.mem != MAP_FAILED);
	bring_up(&f);
	assert_false(fcntl(f.memfd, F_GET_SEALS) & F_SEAL_SHRINK);
	p = vhu_backend_gpa_to_host(&f.b, GUEST_BASE + 8192, 1);
	assert_non_null(p);
	f.mem[8192] = 0x42;
	assert_int_equal(*p, 0x42);
	vhu_fault_pending = 0;
	assert_int_equal(ftruncate(f.memfd, 0), 0);
	v = *p; /* SIGBUS, caught */
	assert_int_equal(v, 0);
	p[1] = 7; /* the same page, now private: no second fault */
	assert_true(f.b.faulted);
	assert_true(vhu_fault_pending);
	vhu_fault_pending = 0;
	/* Until the memory is unmapped, the device never starts on it again. */
	assert_int_equal(state_acked(&f, VHU_SET_VRING_ENABLE, 1, 0), 0);
	assert_false(f.b.running);
	assert_int_equal(state_acked(&f, VHU_SET_VRING_ENABLE, 1, 1), 0);
	assert_false(f.b.running);
	assert_true(f.b.faulted);
	close(f.sock);
	vhu_backend_disconnect(&f.b);
	assert_false(f.b.faulted);
	f.sock = -1;
	fe_teardown(&f);

	/* Not a front end's memory: the default action (death by SIGBUS) stays. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = memfd_create("other", MFD_CLOEXEC);
		volatile uint8_t *q;

		if (fd < 0 || ftruncate(fd, 4096) < 0)
			_exit(3);
		q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (q == MAP_FAILED || ftruncate(fd, 0) < 0)
			_exit(3);
		v = *q;
		_exit(v == 0 ? 4 : 5); /* must not get here */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGBUS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu_sequence),
		cmocka_unit_test(test_process_cell_sequence),
		cmocka_unit_test(test_get_vring_base_stops),
		cmocka_unit_test(test_qemu_device_reset_restart),
		cmocka_unit_test(test_populate_then_start),
		cmocka_unit_test(test_unsealable_refused),
		cmocka_unit_test(test_same_file_again),
		cmocka_unit_test(test_vm_table_again),
		cmocka_unit_test(test_vm_rings_first),
		cmocka_unit_test(test_detach_during_populate),
		cmocka_unit_test(test_drop_unmapped_by_thread),
		cmocka_unit_test(test_reattach_loop),
		cmocka_unit_test(test_refused_table_unsealed),
		cmocka_unit_test(test_queue_wrap),
		cmocka_unit_test(test_small_behind_large),
		cmocka_unit_test(test_hugetlb_memory),
		cmocka_unit_test(test_pop_cpus),
		cmocka_unit_test(test_mem_table_while_running),
		cmocka_unit_test(test_oversized_payload),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_too_many_fds),
		cmocka_unit_test(test_bad_mem_tables),
		cmocka_unit_test(test_bad_rings),
		cmocka_unit_test(test_ring_grows_out_of_region),
		cmocka_unit_test(test_wrong_fd_counts),
		cmocka_unit_test(test_unknown_and_config),
		cmocka_unit_test(test_split_message),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test(test_reset_owner),
		cmocka_unit_test(test_service_budget),
		cmocka_unit_test(test_service_allow),
		cmocka_unit_test(test_mem_limit),
		cmocka_unit_test(test_wrong_fd_kinds),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_log_rate_limit),
		cmocka_unit_test(test_sigbus_guard),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
