/* The broker's vhost-user back end (broker/vhost_user.c, and the framing reader of
 * common/vhost_user_proto.h) under a scripted hostile front end. The input is a
 * sequence of operations: well-formed messages with fuzzed fields (memory tables
 * over real memfds, ring addresses inside or outside them, ring sizes, bases, kick,
 * call and err descriptors of every kind), raw messages of any request, size,
 * payload and descriptors, raw bytes through the socket's framing, and
 * disconnects. Oracles: the sanitizers; on every device start, each ring lies inside
 * one mapped region (checked independently of the back end's own translation, and
 * touched byte by byte); and after each input no descriptor is left open. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "cmocka.h"
#include "fuzz_input.h"
#include "vhost_user.h"

#define REGION (256u << 10)
#define SMALL (8u << 10)

static int memfd, small_memfd;
static uint8_t *fe_mem; /* the front end's own mapping: its "user addresses" */

struct fe {
	int sock;
	struct vhu_backend b;
	unsigned int starts;
};

/* True when [p, p + len) lies inside one of b's mapped regions. */
static bool mapped(const struct vhu_backend *b, const void *p, size_t len)
{
	const uint8_t *q = p;

	for (unsigned int i = 0; i < b->nregions; i++) {
		const struct vhu_region *r = &b->regions[i];

		if (q >= r->host && (size_t)(q - r->host) <= r->size &&
		    len <= r->size - (size_t)(q - r->host))
			return true;
	}
	return false;
}

static void touch(const void *p, size_t len)
{
	const volatile uint8_t *q = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum ^= q[i];
	(void)sum;
}

static int dev_start(void *ctx, struct vhu_backend *b)
{
	struct fe *f = ctx;

	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++) {
		const struct vhu_ring *r = &b->ring[q];
		size_t n = r->num;

		assert_true(n && (n & (n - 1)) == 0 && n <= VHU_MAX_QUEUE_SIZE);
		assert_true(mapped(b, r->desc, 16 * n));
		assert_true(mapped(b, r->avail, 6 + 2 * n));
		assert_true(mapped(b, r->used, 6 + 8 * n));
		touch(r->desc, 16 * n);
		touch(r->avail, 6 + 2 * n);
		touch(r->used, 6 + 8 * n);
	}
	f->starts++;
	return 0;
}

static void dev_stop(void *ctx, struct vhu_backend *b)
{
	(void)ctx;
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		b->ring[q].base = (uint16_t)(b->ring[q].base + 1);
}

static void dev_kick(void *ctx, struct vhu_backend *b, unsigned int queue, int fd)
{
	(void)ctx;
	assert_true(queue < VHU_VSOCK_QUEUES);
	assert_true(fd != b->sock);
}

static const struct vhu_dev_ops ops = { .start = dev_start, .stop = dev_stop, .kick = dev_kick };

static int lowest_free_fd(void)
{
	int fd = dup(0);

	assert_true(fd >= 0);
	close(fd);
	return fd;
}

static void setup_once(void)
{
	if (fe_mem)
		return;
	memfd = memfd_create("fuzz-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	small_memfd = memfd_create("fuzz-small", MFD_CLOEXEC);
	assert_true(memfd >= 0 && small_memfd >= 0);
	assert_int_equal(ftruncate(memfd, REGION), 0);
	assert_int_equal(ftruncate(small_memfd, SMALL), 0);
	fe_mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	assert_true(fe_mem != MAP_FAILED);
	assert_int_equal(vhu_sigbus_install(), 0);
}

/* A descriptor of the kind the input picks: the region, a small memfd, an eventfd,
 * a pipe, a socket or /dev/null. */
static int make_fd(uint8_t kind)
{
	int p[2], fd;

	switch (kind % 6) {
	case 0:
		return fcntl(memfd, F_DUPFD_CLOEXEC, 0);
	case 1:
		return fcntl(small_memfd, F_DUPFD_CLOEXEC, 0);
	case 2:
		return eventfd(0, EFD_CLOEXEC);
	case 3:
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		close(p[1]);
		return p[0];
	case 4:
		return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	default:
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		return fd;
	}
}

static void fe_connect(struct fe *f)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->sock = sv[0];
	fcntl(f->sock, F_SETFL, O_NONBLOCK);
	vhu_backend_connect(&f->b, sv[1]);
}

/* Throws away whatever the back end answered, closing any descriptor with it. */
static void drain(struct fe *f)
{
	struct vhu_msg r;
	int fds[VHU_MAX_FDS];
	unsigned int nfds;
	char buf[4096];

	(void)r;
	(void)fds;
	(void)nfds;
	while (recv(f->sock, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static void reconnect(struct fe *f)
{
	vhu_backend_disconnect(&f->b);
	close(f->sock);
	fe_connect(f);
}

/* Hands one message to the back end as the daemon would (through the real handler,
 * descriptors included); a fatal result drops the connection. */
static void deliver(struct fe *f, struct vhu_msg *m, int *fds, unsigned int nfds)
{
	bool fatal = false;

	vhu_backend_handle(&f->b, m, fds, nfds, &fatal);
	drain(f);
	if (fatal)
		reconnect(f);
}

static uint64_t uva(uint32_t off)
{
	return (uint64_t)(uintptr_t)fe_mem + off;
}

static void op_mem_table(struct fe *f, struct fin *in)
{
	struct vhu_msg m;
	int fds[VHU_MAX_FDS];
	unsigned int n = fin_u8(in) % (VHU_MAX_REGIONS + 1), nfds = n;
	uint8_t shape = fin_u8(in);

	vhu_msg_init(&m, VHU_SET_MEM_TABLE, 8 + 32 * n);
	m.p.mem.nregions = n;
	for (unsigned int i = 0; i < n; i++) {
		struct vhu_mem_region *r = &m.p.mem.regions[i];
		uint8_t k = fin_u8(in);

		if (k & 0x80) { /* anything at all */
			r->guest_addr = fin_u64(in);
			r->size = fin_u64(in);
			r->user_addr = fin_u64(in);
			r->mmap_offset = fin_u64(in);
		} else { /* a slice of the region: page-granular offset and size */
			uint32_t off = (uint32_t)(fin_u8(in) % 64) * 4096u;
			uint32_t size = (uint32_t)(fin_u8(in) % 65) * 4096u;

			r->guest_addr = 0x100000000ull + off + (uint64_t)i * 0x10000000ull;
			r->size = size ? size : REGION - off;
			r->user_addr = uva(off) + (k & 1 ? 0 : (uint64_t)i * 0x10000000ull);
			r->mmap_offset = off;
		}
		fds[i] = make_fd(k & 0x40 ? fin_u8(in) : 0);
	}
	if (shape & 1 && nfds < VHU_MAX_FDS) /* one descriptor too many */
		fds[nfds++] = make_fd(fin_u8(in));
	else if (shape & 2 && nfds) /* one too few */
		close(fds[--nfds]);
	if (shape & 4)
		m.hdr.size = fin_u16(in) % (VHU_MAX_PAYLOAD + 1);
	if (shape & 8)
		m.p.mem.nregions = fin_u32(in);
	deliver(f, &m, fds, nfds);
}

static void op_vring_addr(struct fe *f, struct fin *in)
{
	struct vhu_msg m;
	uint8_t k = fin_u8(in);

	vhu_msg_init(&m, VHU_SET_VRING_ADDR, sizeof(m.p.addr));
	m.p.addr.index = k & 0x10 ? fin_u32(in) : (k & 1);
	m.p.addr.flags = k & 0x20 ? fin_u32(in) : 0;
	if (k & 0x40) {
		m.p.addr.desc = fin_u64(in);
		m.p.addr.avail = fin_u64(in);
		m.p.addr.used = fin_u64(in);
	} else {
		m.p.addr.desc = uva((uint32_t)fin_u16(in) * 4u);
		m.p.addr.avail = uva((uint32_t)fin_u16(in) * 4u);
		m.p.addr.used = uva((uint32_t)fin_u16(in) * 4u);
	}
	m.p.addr.log = fin_u64(in);
	deliver(f, &m, NULL, 0);
}

static void op_vring_state(struct fe *f, struct fin *in, uint32_t req)
{
	struct vhu_msg m;
	uint8_t k = fin_u8(in);

	vhu_msg_init(&m, req, sizeof(m.p.state));
	m.p.state.index = k & 0x80 ? fin_u32(in) : (k & 1);
	if (req == VHU_SET_VRING_NUM)
		m.p.state.num = k & 0x40 ? fin_u32(in) : 1u << (fin_u8(in) % 17);
	else
		m.p.state.num = k & 0x40 ? fin_u32(in) : fin_u8(in) % 3;
	deliver(f, &m, NULL, 0);
}

static void op_vring_fd(struct fe *f, struct fin *in)
{
	static const uint32_t req[] = { VHU_SET_VRING_KICK, VHU_SET_VRING_CALL,
					VHU_SET_VRING_ERR };
	struct vhu_msg m;
	uint8_t k = fin_u8(in);
	int fds[2];
	unsigned int nfds = 0;

	vhu_msg_init(&m, req[(k & 3) % 3], 8);
	m.p.u64 = (k >> 2 & 1) | (k & 0x08 ? VHU_VRING_NOFD : 0);
	if (k & 0x10)
		m.p.u64 = fin_u64(in);
	if (!(k & 0x08) || (k & 0x20))
		fds[nfds++] = make_fd(k & 0x40 ? fin_u8(in) : 2);
	if (k & 0x80)
		fds[nfds++] = make_fd(fin_u8(in));
	deliver(f, &m, fds, nfds);
}

static void op_u64(struct fe *f, struct fin *in, uint32_t req, uint64_t usual)
{
	struct vhu_msg m;
	uint8_t k = fin_u8(in);

	vhu_msg_init(&m, req, 8);
	m.p.u64 = k & 1 ? fin_u64(in) : usual;
	if (k & 2)
		m.hdr.flags |= VHU_FLAG_NEED_REPLY;
	deliver(f, &m, NULL, 0);
}

/* Any request, flags, size and payload, with up to VHU_MAX_FDS descriptors. */
static void op_raw(struct fe *f, struct fin *in)
{
	struct vhu_msg m;
	int fds[VHU_MAX_FDS];
	unsigned int nfds = fin_u8(in) % 4;

	memset(&m, 0, sizeof(m));
	m.hdr.request = fin_u8(in) % 48;
	m.hdr.flags = fin_u32(in);
	m.hdr.size = fin_u16(in) % (VHU_MAX_PAYLOAD + 1);
	fin_bytes(in, m.p.raw, m.hdr.size);
	for (unsigned int i = 0; i < nfds; i++)
		fds[i] = make_fd(fin_u8(in));
	deliver(f, &m, fds, nfds);
}

/* Raw bytes (and maybe descriptors) through the socket and the framing reader. */
static void op_stream(struct fe *f, struct fin *in)
{
	uint8_t buf[600];
	size_t len = fin_u16(in) % sizeof(buf);
	union {
		char b[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { buf, len ? len : 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	unsigned int nfds = fin_u8(in) % (VHU_MAX_FDS + 2);
	int fds[VHU_MAX_FDS + 1], rc;

	if (nfds > VHU_MAX_FDS)
		nfds = VHU_MAX_FDS;
	fin_bytes(in, buf, iov.iov_len);
	for (unsigned int i = 0; i < nfds; i++)
		fds[i] = make_fd(fin_u8(in));
	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	rc = (int)sendmsg(f->sock, &mh, MSG_DONTWAIT);
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	if (rc < 0)
		return;
	rc = vhu_backend_service(&f->b, 4);
	drain(f);
	if (rc < 0)
		reconnect(f);
}

static void op_config(struct fe *f, struct fin *in)
{
	struct vhu_msg m;

	vhu_msg_init(&m, VHU_GET_CONFIG, VHU_CONFIG_HDR);
	m.p.config.offset = fin_u8(in) % 12;
	m.p.config.size = fin_u8(in) % 12;
	m.hdr.size = VHU_CONFIG_HDR + m.p.config.size;
	if (fin_u8(in) & 1) {
		m.p.config.offset = fin_u32(in);
		m.p.config.size = fin_u32(in);
		m.hdr.size = fin_u16(in) % (VHU_MAX_PAYLOAD + 1);
	}
	deliver(f, &m, NULL, 0);
}

static void step(struct fe *f, struct fin *in)
{
	struct vhu_msg m;

	switch (fin_u8(in) % 16) {
	case 0:
		op_mem_table(f, in);
		break;
	case 1:
		op_vring_addr(f, in);
		break;
	case 2:
		op_vring_state(f, in, VHU_SET_VRING_NUM);
		break;
	case 3:
		op_vring_state(f, in, VHU_SET_VRING_BASE);
		break;
	case 4:
		op_vring_state(f, in, VHU_SET_VRING_ENABLE);
		break;
	case 5:
		op_vring_state(f, in, VHU_GET_VRING_BASE);
		break;
	case 6:
		op_vring_fd(f, in);
		break;
	case 7:
		op_u64(f, in, VHU_SET_FEATURES, VHU_VSOCK_FEATURES);
		break;
	case 8:
		op_u64(f, in, VHU_SET_PROTOCOL_FEATURES, VHU_VSOCK_PROTOCOL_FEATURES);
		break;
	case 9:
		vhu_msg_init(&m, fin_u8(in) & 1 ? VHU_SET_OWNER : VHU_RESET_OWNER, 0);
		deliver(f, &m, NULL, 0);
		break;
	case 10:
		vhu_msg_init(&m, VHU_GET_FEATURES + (fin_u8(in) % 3 == 0 ? 0 : 14), 0);
		deliver(f, &m, NULL, 0);
		break;
	case 11:
		op_config(f, in);
		break;
	case 12:
		op_raw(f, in);
		break;
	case 13:
		op_stream(f, in);
		break;
	case 14:
		reconnect(f);
		break;
	default:
		if (f->b.running)
			vhu_backend_signal_err(&f->b, fin_u8(in) % 3);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fe f;
	struct fin in = { data, size };

	int fd_baseline;

	setup_once();
	/* Every descriptor made below is kept by the back end or closed: none is left. */
	fd_baseline = lowest_free_fd();
	memset(&f, 0, sizeof(f));
	vhu_backend_init(&f.b, "fuzz", 3, &ops, &f);
	/* Not sealed (as for a vm cell): the region is shared by every input. */
	/* Quiet: the rate limit starts closed, unless FUZZ_VERBOSE asks for every line. */
	f.b.verbose = getenv("FUZZ_VERBOSE") != NULL;
	f.b.log_window_ns = rtvio_now_ns();
	f.b.log_lines = VHU_LOG_BURST;
	fe_connect(&f);
	for (unsigned int n = 0; fin_left(&in) && n < 256; n++)
		step(&f, &in);
	vhu_backend_disconnect(&f.b);
	close(f.sock);
	assert_int_equal(lowest_free_fd(), fd_baseline);
	return 0;
}
