/* e2e_tool: the cell-side half of the end-to-end tests (tests/e2e.py), for what
 * `rtvio cell` does not do on purpose.
 *
 *   e2e_tool seqsizes DIR A B PORT      cells A and B (one process, two regions):
 *                                       A sends SEQPACKET messages of 1 B .. 256 KiB
 *                                       to B:PORT; B checks every length and byte
 *   e2e_tool echo DIR A PORT SECONDS    cell A echoes one STREAM connection on PORT
 *                                       and one SEQPACKET connection on PORT+1
 *                                       (a peer for bare-metal cells, whose
 *                                       `sizes` task checks every byte back)
 *   e2e_tool refused DIR A CID PORT     A connects to CID:PORT; expects a reset
 *   e2e_tool hostecho DIR A CID PORT BYTES
 *                                       A connects to CID:PORT (a host endpoint
 *                                       whose program echoes), sends BYTES of a
 *                                       pattern in 4 KiB pieces and checks every
 *                                       byte that comes back
 *   e2e_tool spoof DIR SOCK CID PORT    a raw cell on SOCK sends a REQUEST whose
 *                                       src_cid is CID+1000 (not its own) to
 *                                       CID:PORT; expects the broker's RST
 *   e2e_tool scribble DIR SOCK          a raw cell writes garbage over its own TX
 *                                       ring and kicks; expects the broker to cut
 *                                       it off (EOF on its vhost-user socket)
 *   e2e_tool hostcall DIR SOCK CID PORT ROUNDS
 *                                       ROUNDS times: a raw cell clears O_NONBLOCK
 *                                       on its call eventfds, writes
 *                                       0xfffffffffffffffe into them, sends a
 *                                       REQUEST to CID:PORT (the broker's answer
 *                                       is a notification); expects to be cut off
 *   e2e_tool vhunoread DIR SOCK         a front end sends GET_FEATURES and never
 *                                       reads the replies; expects to be cut off
 *   e2e_tool vhuflood DIR SOCK COUNT    a front end sends COUNT GET_FEATURES as
 *                                       fast as it can, reading the replies;
 *                                       expects all answered, or to be cut off
 *
 * Each prints one line saying what it saw and exits 0 when that is what the test
 * expects, 1 when not, 2 on usage or set-up errors. The raw cell speaks vhost-user
 * and drives core's virtqueue driver directly: it is a guest that can write
 * anything into its own memory, which is exactly what the broker must survive. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rtmsg.h"
#include "port_posix.h"
#include "vhost_front.h"
#include "virtq.h"
#include "vsock.h"

static char *sock_path(const char *dir, const char *cell)
{
	static char path[2][256];
	static int k;

	k ^= 1;
	snprintf(path[k], sizeof(path[k]), "%s/%s.sock", dir, cell);
	return path[k];
}

static struct rtvio_cell *open_cell(const char *dir, const char *name, uint32_t rcvbuf)
{
	struct rtvio_cell_opts o = { .rcvbuf = rcvbuf, .attach_wait_ms = 5000 };
	char err[256];
	struct rtvio_cell *c = rtvio_cell_open(sock_path(dir, name), 8u << 20, &o, err,
					       sizeof(err));

	if (!c) {
		fprintf(stderr, "e2e_tool: cell %s: %s\n", name, err);
		exit(2);
	}
	return c;
}

/* ---- seqsizes ---------------------------------------------------------------- */

static const size_t sizes[] = { 1, 2, 31, 32, 33, 43, 44, 45, 100, 4051, 4052, 4053,
				4095, 4096, 4097, 8192, 65535, 65536, 65537, 100000,
				131072, 200000, 262143, 262144 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

struct seq_rx {
	struct rtvio_cell *c;
	int lid;
	int bad;
};

static void *seq_receiver(void *arg)
{
	struct seq_rx *r = arg;
	uint8_t *buf = malloc(300000);
	int id = rtvio_accept(r->c, r->lid, NULL, NULL, 10000);

	if (id < 0 || !buf) {
		fprintf(stderr, "e2e_tool: accept: %s\n", strerror(-id));
		r->bad++;
		free(buf);
		return NULL;
	}
	for (size_t i = 0; i < NSIZES; i++) {
		unsigned int fl = 0;
		ssize_t n = rtvio_recv(r->c, id, buf, 300000, 0, &fl, 10000);
		uint64_t seq = i, stamp;

		if (n != (ssize_t)sizes[i] || (fl & GV_MSG_TRUNC) ||
		    rtmsg_check(buf, (size_t)n, &seq, &stamp) != RTMSG_OK || seq != i) {
			fprintf(stderr, "e2e_tool: message %zu: want %zu bytes, got %zd%s\n",
				i, sizes[i], n, n > 0 ? " (or corrupt)" : "");
			r->bad++;
		}
	}
	free(buf);
	rtvio_close(r->c, id);
	return NULL;
}

static int seqsizes(const char *dir, const char *a, const char *b, uint32_t port)
{
	struct rtvio_cell *ca = open_cell(dir, a, 64u << 10);
	struct rtvio_cell *cb = open_cell(dir, b, 1u << 20); /* room for 256 KiB messages */
	struct seq_rx r = { .c = cb, .lid = rtvio_socket(cb, RTVIO_SOCK_SEQPACKET) };
	uint8_t *buf = malloc(300000);
	pthread_t th;
	int id, rc, bad = 0;

	if (!buf || r.lid < 0 || rtvio_listen(cb, r.lid, port, 4) < 0) {
		fprintf(stderr, "e2e_tool: listen on %u failed\n", port);
		free(buf);
		return 2;
	}
	pthread_create(&th, NULL, seq_receiver, &r);
	/* The broker may not have started b's rings yet when a's REQUEST comes (b's
	 * attach finishes in the broker's loop): a refusal then is retried, as rtvio cell
	 * retries while a listener is not there yet. */
	for (int tries = 0;; tries++) {
		id = rtvio_socket(ca, RTVIO_SOCK_SEQPACKET);
		rc = rtvio_connect(ca, id, rtvio_cell_cid(cb), port, 5000);
		if (rc != -ECONNREFUSED && rc != -ECONNRESET)
			break;
		rtvio_close(ca, id);
		if (tries == 50)
			break;
		usleep(100000);
	}
	if (rc) {
		fprintf(stderr, "e2e_tool: connect: %s\n", strerror(-rc));
		rtvio_cell_interrupt(cb);
		pthread_join(th, NULL);
		free(buf);
		return 1;
	}
	for (size_t i = 0; i < NSIZES; i++) {
		ssize_t n;

		rtmsg_fill(buf, sizes[i], i, 0);
		n = rtvio_send(ca, id, buf, sizes[i], 0, 10000);
		if (n != (ssize_t)sizes[i]) {
			fprintf(stderr, "e2e_tool: send %zu bytes: %s\n", sizes[i],
				n < 0 ? strerror((int)-n) : "short");
			bad++;
		}
	}
	pthread_join(th, NULL);
	printf("seqsizes: %zu messages from 1 B to 256 KiB, %d bad\n", NSIZES, bad + r.bad);
	rtvio_close(ca, id);
	rtvio_cell_close(ca);
	rtvio_cell_close(cb);
	free(buf);
	return bad + r.bad ? 1 : 0;
}

/* ---- echo ---------------------------------------------------------------------- */

struct echo {
	struct rtvio_cell *c;
	unsigned int type;
	uint32_t port;
	int timeout_ms;
	unsigned long long messages, bytes;
	int error;
};

static void *echo_one(void *arg)
{
	struct echo *e = arg;
	uint8_t *buf = malloc(300000);
	int lid = rtvio_socket(e->c, e->type), id = -1;
	unsigned int eor = e->type == RTVIO_SOCK_SEQPACKET ? RTVIO_MSG_EOR : 0;
	ssize_t n;

	if (!buf || lid < 0 || rtvio_listen(e->c, lid, e->port, 1) < 0 ||
	    (id = rtvio_accept(e->c, lid, NULL, NULL, e->timeout_ms)) < 0) {
		e->error = id < 0 ? id : -EIO;
		free(buf);
		return NULL;
	}
	while ((n = rtvio_recv(e->c, id, buf, 300000, 0, NULL, e->timeout_ms)) > 0) {
		if (rtvio_send(e->c, id, buf, (size_t)n, eor, e->timeout_ms) != n) {
			e->error = -EIO;
			break;
		}
		e->messages++;
		e->bytes += (unsigned long long)n;
	}
	if (n < 0)
		e->error = (int)n;
	rtvio_close(e->c, id);
	rtvio_close(e->c, lid);
	free(buf);
	return NULL;
}

static int echo(const char *dir, const char *a, uint32_t port, int seconds)
{
	struct rtvio_cell *c = open_cell(dir, a, 1u << 20); /* 256 KiB messages fit */
	struct echo e[2] = {
		{ c, RTVIO_SOCK_STREAM, port, seconds * 1000, 0, 0, 0 },
		{ c, RTVIO_SOCK_SEQPACKET, port + 1, seconds * 1000, 0, 0, 0 },
	};
	pthread_t th[2];

	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, echo_one, &e[i]);
	printf("echo: listening on %u and %u\n", port, port + 1);
	fflush(stdout);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		printf("echo: %s port %u: %llu messages, %llu bytes, %s\n", i ? "seqpacket" : "stream",
		       e[i].port, e[i].messages, e[i].bytes, e[i].error ? strerror(-e[i].error) : "ok");
	}
	rtvio_cell_close(c);
	return e[0].error || e[1].error ? 1 : 0;
}

/* ---- refused ----------------------------------------------------------------- */

static int refused(const char *dir, const char *a, uint32_t cid, uint32_t port)
{
	struct rtvio_cell *c = open_cell(dir, a, 64u << 10);
	int id = rtvio_socket(c, RTVIO_SOCK_STREAM);
	int rc = rtvio_connect(c, id, cid, port, 5000);

	printf("refused: connect to %u:%u: %s\n", cid, port, rc ? strerror(-rc) : "connected");
	rtvio_cell_close(c);
	return rc == -ECONNREFUSED || rc == -ECONNRESET ? 0 : 1;
}

/* ---- hostecho ----------------------------------------------------------------- */

static uint8_t pattern_byte(unsigned long long i)
{
	return (uint8_t)(i * 131u + (i >> 12));
}

static int hostecho(const char *dir, const char *a, uint32_t cid, uint32_t port,
		    unsigned long long bytes)
{
	struct rtvio_cell *c = open_cell(dir, a, 1u << 20);
	int id = rtvio_socket(c, RTVIO_SOCK_STREAM);
	int rc = rtvio_connect(c, id, cid, port, 5000);
	unsigned long long sent = 0, got = 0, bad = 0;
	uint8_t buf[4096];

	if (rc) {
		printf("hostecho: connect to %u:%u: %s\n", cid, port, strerror(-rc));
		return 1;
	}
	while (got < bytes) {
		size_t n = bytes - sent < sizeof(buf) ? (size_t)(bytes - sent) : sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = pattern_byte(sent + i);
		if (n && rtvio_send(c, id, buf, n, 0, 10000) != (ssize_t)n)
			break;
		sent += n;
		/* The echo of this piece, before the next: neither side's buffer fills. */
		while (got < sent) {
			ssize_t r = rtvio_recv(c, id, buf, sizeof(buf), 0, NULL, 10000);

			if (r <= 0)
				goto out;
			for (ssize_t i = 0; i < r; i++)
				bad += buf[i] != pattern_byte(got + (unsigned long long)i);
			got += (unsigned long long)r;
		}
	}
out:
	printf("hostecho: %llu bytes sent, %llu echoed, %llu wrong\n", sent, got, bad);
	rtvio_close(c, id);
	rtvio_cell_close(c);
	return got == bytes && !bad ? 0 : 1;
}

/* ---- the raw cell -------------------------------------------------------------- */

#define RAW_REGION (1u << 20)
#define RAW_QSIZE 16u
#define RAW_BASE 0x100000000ull
#define RAW_RXBUF 4096u

struct raw {
	int sock;
	uint8_t *mem;
	struct vq_ring ring[2];
	struct vq_driver drv[2];
	struct vq_drv_slot slot[2][RAW_QSIZE];
	int kick[2], call[2];
	uint64_t cid;
};

static int raw_open(struct raw *r, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vhost_front_setup s = { 0 };
	struct vhost_front_result res;
	struct vq_layout l;
	int memfd, rc;

	r->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	memfd = memfd_create("e2e-raw", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (r->sock < 0 || connect(r->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    memfd < 0 || ftruncate(memfd, RAW_REGION) < 0)
		return -errno;
	r->mem = mmap(NULL, RAW_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (r->mem == MAP_FAILED)
		return -errno;
	vq_layout(RAW_QSIZE, &l);
	for (int q = 0; q < 2; q++) {
		vq_ring_at(&r->ring[q], r->mem + (size_t)q * 4096, RAW_QSIZE);
		vq_driver_init(&r->drv[q], &r->ring[q], r->slot[q], 1ull << VIRTIO_F_VERSION_1);
		r->kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		/* Blocking: the broker sets O_NONBLOCK as it takes it (hostcall waits
		 * for that). */
		r->call[q] = eventfd(0, EFD_CLOEXEC);
		s.q[q] = (struct vhost_front_queue){
			.num = RAW_QSIZE,
			.desc = (uint64_t)(uintptr_t)r->ring[q].desc,
			.avail = (uint64_t)(uintptr_t)r->ring[q].avail,
			.used = (uint64_t)(uintptr_t)r->ring[q].used,
			.kick_fd = r->kick[q],
			.call_fd = r->call[q],
		};
	}
	s.mem_fd = memfd;
	s.mem_size = RAW_REGION;
	s.guest_addr = RAW_BASE;
	s.user_addr = (uint64_t)(uintptr_t)r->mem;
	s.want_features = 1ull << VIRTIO_F_VERSION_1;
	s.need_features = 1ull << VIRTIO_F_VERSION_1;
	s.timeout_ms = 5000;
	rc = vhost_front_handshake(r->sock, &s, &res);
	close(memfd);
	if (rc)
		return rc;
	r->cid = res.cid;
	/* RX buffers at 64 KiB on: one writable descriptor each, header + payload. */
	for (unsigned int i = 0; i < RAW_QSIZE; i++) {
		struct vq_buf b = { RAW_BASE + 65536 + (uint64_t)i * RAW_RXBUF, RAW_RXBUF };

		vq_driver_add(&r->drv[0], NULL, 0, &b, 1, r->mem + 65536 + (size_t)i * RAW_RXBUF);
	}
	vq_driver_publish(&r->drv[0]);
	eventfd_write(r->kick[0], 1);
	return 0;
}

static void raw_send_hdr(struct raw *r, const struct vsock_hdr *h)
{
	uint8_t *slot = r->mem + 32768;
	struct vq_buf b = { RAW_BASE + 32768, VSOCK_HDR_SIZE };

	vsock_hdr_encode(h, slot);
	vq_driver_add(&r->drv[1], &b, 1, NULL, 0, slot);
	vq_driver_publish(&r->drv[1]);
	eventfd_write(r->kick[1], 1);
}

/* Waits for a packet on RX; 1 and *h when one came, 0 on timeout, -1 on EOF. */
static int raw_wait_rx(struct raw *r, struct vsock_hdr *h, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		void *tok;
		uint32_t len;
		char c;

		if (vq_driver_get_used(&r->drv[0], &tok, &len) == 1 && len >= VSOCK_HDR_SIZE) {
			vsock_hdr_decode(h, tok);
			return 1;
		}
		if (recv(r->sock, &c, 1, MSG_DONTWAIT) == 0)
			return -1;
		usleep(10000);
	}
	return 0;
}

static void raw_close(struct raw *r)
{
	close(r->sock);
	for (int q = 0; q < 2; q++) {
		close(r->kick[q]);
		close(r->call[q]);
	}
	munmap(r->mem, RAW_REGION);
}

/* 1 when the broker closed the vhost-user socket within timeout_ms, else 0. */
static int raw_wait_eof(struct raw *r, int timeout_ms)
{
	struct pollfd p = { .fd = r->sock, .events = POLLIN };
	char c;

	while (poll(&p, 1, timeout_ms) == 1) {
		ssize_t n = recv(r->sock, &c, 1, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
	}
	return 0;
}

static int spoof(const char *path, uint32_t cid, uint32_t port)
{
	struct raw r = { 0 };
	struct vsock_hdr h = { 0 }, got;
	int rc = raw_open(&r, path);

	if (rc) {
		fprintf(stderr, "e2e_tool: raw cell on %s: %s\n", path, strerror(-rc));
		return 2;
	}
	h.src_cid = r.cid + 1000;
	h.dst_cid = cid;
	h.src_port = 7777;
	h.dst_port = port;
	h.type = VSOCK_TYPE_STREAM;
	h.op = VSOCK_OP_REQUEST;
	h.buf_alloc = 65536;
	raw_send_hdr(&r, &h);
	rc = raw_wait_rx(&r, &got, 3000);
	if (rc == 1) {
		printf("spoof: got op %u for %llu:%u\n", got.op, (unsigned long long)got.dst_cid,
		       got.dst_port);
		return got.op == VSOCK_OP_RST && got.dst_cid == r.cid ? 0 : 1;
	}
	printf("spoof: %s\n", rc ? "cut off" : "no answer");
	return 1;
}

static int scribble(const char *path)
{
	struct raw r = { 0 };
	struct vsock_hdr h;
	int rc = raw_open(&r, path);

	if (rc) {
		fprintf(stderr, "e2e_tool: raw cell on %s: %s\n", path, strerror(-rc));
		return 2;
	}
	/* Garbage over the whole TX ring: descriptors, flags, the avail index. */
	srand(42);
	for (size_t i = 0; i < 4096; i++)
		r.mem[4096 + i] = (uint8_t)rand();
	eventfd_write(r.kick[1], 1);
	rc = raw_wait_rx(&r, &h, 5000);
	printf("scribble: %s\n", rc < 0 ? "cut off by the broker" : "still attached");
	return rc < 0 ? 0 : 1;
}

/* ---- hostcall: the call eventfd made blocking and full ---------------------------- */

static void raw_request(struct raw *r, uint32_t cid, uint32_t port)
{
	struct vsock_hdr h = { 0 };

	h.src_cid = r->cid;
	h.dst_cid = cid;
	h.src_port = 7777;
	h.dst_port = port;
	h.type = VSOCK_TYPE_STREAM;
	h.op = VSOCK_OP_REQUEST;
	h.buf_alloc = 65536;
	raw_send_hdr(r, &h);
}

/* One attachment: 1 cut off, 0 not, -1 set-up failure. */
static int hostcall_round(const char *path, uint32_t cid, uint32_t port)
{
	struct raw r = { 0 };
	uint64_t max = 0xfffffffffffffffeull;
	int rc = raw_open(&r, path);

	if (rc) {
		fprintf(stderr, "e2e_tool: raw cell on %s: %s\n", path, strerror(-rc));
		return -1;
	}
	/* The broker sets O_NONBLOCK on each call eventfd as it takes it (the file
	 * is shared): wait for that, so that clearing it is not undone. */
	for (int q = 0, waited = 0; q < 2 && waited < 10000; waited++) {
		if (fcntl(r.call[q], F_GETFL) & O_NONBLOCK)
			q++;
		else
			usleep(1000);
	}
	for (int q = 0; q < 2; q++) {
		int fl = fcntl(r.call[q], F_GETFL);

		if (fl < 0 || fcntl(r.call[q], F_SETFL, fl & ~O_NONBLOCK) < 0 ||
		    write(r.call[q], &max, sizeof(max)) != (ssize_t)sizeof(max)) {
			fprintf(stderr, "e2e_tool: call eventfd: %s\n", strerror(errno));
			raw_close(&r);
			return -1;
		}
	}
	/* The broker's answer (RST) comes with a notification into a full counter. */
	raw_request(&r, cid, port);
	rc = raw_wait_eof(&r, 10000);
	raw_close(&r);
	return rc;
}

static int hostcall(const char *path, uint32_t cid, uint32_t port, unsigned int rounds)
{
	unsigned int cut = 0, i;

	for (i = 0; i < rounds; i++) {
		int rc = hostcall_round(path, cid, port);

		if (rc < 0)
			break;
		cut += (unsigned int)rc;
	}
	printf("hostcall: cut off in %u of %u rounds\n", cut, rounds);
	return cut == rounds ? 0 : 1;
}

/* ---- vhunoread, vhuflood: the vhost-user socket abused ---------------------------- */

static int vhu_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "e2e_tool: connect %s: %s\n", path, strerror(errno));
		exit(2);
	}
	return fd;
}

static int vhunoread(const char *path)
{
	int fd = vhu_connect(path);
	struct vhu_msg m;
	unsigned long sent = 0;
	int rc = 0;

	vhu_msg_init(&m, VHU_GET_FEATURES, 0);
	/* Sends until the broker hangs up; waits (bounded) when its buffer is full. */
	for (int idle = 0; idle < 2000;) {
		rc = vhu_send_flags(fd, &m, NULL, 0, MSG_DONTWAIT);
		if (rc == -EAGAIN) {
			idle++;
			usleep(10000);
			continue;
		}
		if (rc < 0)
			break;
		sent++;
	}
	printf("vhunoread: %lu requests sent, then %s\n", sent,
	       rc == -EPIPE || rc == -ECONNRESET ? "cut off" : "still connected");
	close(fd);
	return rc == -EPIPE || rc == -ECONNRESET ? 0 : 1;
}

struct flood_rx {
	int fd;
	unsigned long got;
};

static void *flood_reader(void *arg)
{
	struct flood_rx *f = arg;
	struct vhu_reader rd;

	vhu_reader_init(&rd);
	for (;;) {
		struct pollfd p = { .fd = f->fd, .events = POLLIN };
		int rc;

		if (poll(&p, 1, 10000) != 1)
			return NULL;
		rc = vhu_reader_read(f->fd, &rd);
		if (rc < 0)
			return NULL;
		if (rc > 0) {
			vhu_close_fds(rd.fds, &rd.nfds);
			vhu_reader_init(&rd);
			f->got++;
		}
	}
}

static int vhuflood(const char *path, unsigned long count)
{
	struct flood_rx f = { .fd = vhu_connect(path) };
	struct vhu_msg m;
	unsigned long sent = 0;
	pthread_t th;

	vhu_msg_init(&m, VHU_GET_FEATURES, 0);
	pthread_create(&th, NULL, flood_reader, &f);
	int rc = 0;

	while (sent < count && (rc = vhu_send(f.fd, &m, NULL, 0)) == 0)
		sent++;
	shutdown(f.fd, SHUT_WR);
	pthread_join(th, NULL);
	/* Served within limits (32 messages per turn of the loop), or cut off when its
	 * replies piled up faster than it read them: both keep the loop free. */
	printf("vhuflood: %lu sent, %lu answered, %s\n", sent, f.got,
	       rc ? "then cut off" : "all served");
	close(f.fd);
	return (sent == count && f.got == count) || rc == -EPIPE || rc == -ECONNRESET ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "echo"))
		return echo(argv[2], argv[3], (uint32_t)strtoul(argv[4], NULL, 0), atoi(argv[5]));
	if (argc == 6 && !strcmp(argv[1], "seqsizes"))
		return seqsizes(argv[2], argv[3], argv[4], (uint32_t)strtoul(argv[5], NULL, 0));
	if (argc == 6 && !strcmp(argv[1], "refused"))
		return refused(argv[2], argv[3], (uint32_t)strtoul(argv[4], NULL, 0),
			       (uint32_t)strtoul(argv[5], NULL, 0));
	if (argc == 7 && !strcmp(argv[1], "hostecho"))
		return hostecho(argv[2], argv[3], (uint32_t)strtoul(argv[4], NULL, 0),
				(uint32_t)strtoul(argv[5], NULL, 0), strtoull(argv[6], NULL, 0));
	if (argc == 6 && !strcmp(argv[1], "spoof"))
		return spoof(sock_path(argv[2], argv[3]), (uint32_t)strtoul(argv[4], NULL, 0),
			     (uint32_t)strtoul(argv[5], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "scribble"))
		return scribble(sock_path(argv[2], argv[3]));
	if (argc == 7 && !strcmp(argv[1], "hostcall"))
		return hostcall(sock_path(argv[2], argv[3]), (uint32_t)strtoul(argv[4], NULL, 0),
				(uint32_t)strtoul(argv[5], NULL, 0),
				(unsigned int)strtoul(argv[6], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "vhunoread"))
		return vhunoread(sock_path(argv[2], argv[3]));
	if (argc == 5 && !strcmp(argv[1], "vhuflood"))
		return vhuflood(sock_path(argv[2], argv[3]), strtoul(argv[4], NULL, 0));
	fprintf(stderr, "usage: see the comment at the top of tests/e2e_tool.c\n");
	return 2;
}
