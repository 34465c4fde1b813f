/* The hostile cell's raw attachment (hostile_raw.h): vhost-user through
 * cell/vhost_front.c, core's virtqueue driver over a memfd region. */
#include "hostile_raw.h"
#include "vhost_front.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define RING_STRIDE (8u << 10)

static int raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* The region, both rings and the four eventfds. Call eventfds start blocking, as a
 * guest's may: the broker makes them non-blocking as it takes them. */
static int raw_memory(struct hraw *r, struct vhost_front_setup *s)
{
	r->memfd = memfd_create("rtvio-hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (r->memfd < 0 || ftruncate(r->memfd, RAW_REGION) < 0 ||
	    fcntl(r->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		return -errno;
	r->mem = mmap(NULL, RAW_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
	if (r->mem == MAP_FAILED) {
		r->mem = NULL;
		return -errno;
	}
	for (unsigned int q = 0; q < 2; q++) {
		vq_ring_at(&r->ring[q], r->mem + q * RING_STRIDE, RAW_QSIZE);
		vq_driver_init(&r->drv[q], &r->ring[q], r->slot[q], 1ull << VIRTIO_F_VERSION_1);
		r->kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		r->call[q] = eventfd(0, EFD_CLOEXEC);
		if (r->kick[q] < 0 || r->call[q] < 0)
			return -errno;
		s->q[q] = (struct vhost_front_queue){
			.num = RAW_QSIZE,
			.desc = (uint64_t)(uintptr_t)r->ring[q].desc,
			.avail = (uint64_t)(uintptr_t)r->ring[q].avail,
			.used = (uint64_t)(uintptr_t)r->ring[q].used,
			.kick_fd = r->kick[q],
			.call_fd = r->call[q],
		};
	}
	s->mem_fd = r->memfd;
	s->mem_size = RAW_REGION;
	s->guest_addr = RAW_BASE;
	s->user_addr = (uint64_t)(uintptr_t)r->mem;
	return 0;
}

static void kick(int fd)
{
	if (eventfd_write(fd, 1) < 0) {
		/* EAGAIN: the counter is saturated, a kick is pending anyway. */
	}
}

static void post_rx(struct hraw *r, unsigned int i)
{
	struct vq_buf b = { RAW_BASE + RAW_RXBUF_OFF + (uint64_t)i * RAW_RXBUF, r->rx_len };

	vq_driver_add(&r->drv[0], NULL, 0, &b, 1, r->mem + RAW_RXBUF_OFF + (size_t)i * RAW_RXBUF);
}

int hraw_open(struct hraw *r, const char *path, uint32_t rx_len)
{
	struct vhost_front_setup s = { 0 };
	struct vhost_front_result res;
	int rc;

	memset(r, 0, sizeof(*r));
	r->sock = r->memfd = r->kick[0] = r->kick[1] = r->call[0] = r->call[1] = -1;
	r->rx_len = rx_len < 1 ? 1 : rx_len > RAW_RXBUF ? RAW_RXBUF : rx_len;
	rc = raw_connect(path);
	if (rc < 0) {
		hraw_close(r);
		return rc;
	}
	r->sock = rc;
	rc = raw_memory(r, &s);
	s.want_features = s.need_features = 1ull << VIRTIO_F_VERSION_1;
	s.timeout_ms = 5000;
	if (!rc)
		rc = vhost_front_handshake(r->sock, &s, &res);
	if (!rc && fcntl(r->sock, F_SETFL, fcntl(r->sock, F_GETFL) | O_NONBLOCK) < 0)
		rc = -errno;
	if (rc) {
		hraw_close(r);
		return rc;
	}
	r->cid = res.cid;
	r->protocol_features = res.protocol_features;
	for (unsigned int i = 0; i < RAW_QSIZE; i++)
		post_rx(r, i);
	vq_driver_publish(&r->drv[0]);
	kick(r->kick[0]);
	return 0;
}

void hraw_close(struct hraw *r)
{
	int *fds[] = { &r->sock, &r->memfd, &r->kick[0], &r->kick[1], &r->call[0], &r->call[1] };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	if (r->mem)
		munmap(r->mem, RAW_REGION);
	r->mem = NULL;
}

static uint8_t *tx_slot(struct hraw *r, unsigned int i)
{
	return r->mem + RAW_TXBUF_OFF + (size_t)i * RAW_TXSLOT;
}

int hraw_send(struct hraw *r, const struct vsock_hdr *h)
{
	uint32_t len = h->len > RAW_TXSLOT - VSOCK_HDR_SIZE ? RAW_TXSLOT - VSOCK_HDR_SIZE : h->len;
	unsigned int i;
	uint8_t *p;

	for (i = 0; i < RAW_QSIZE && r->tx_busy[i]; i++)
		;
	if (i == RAW_QSIZE)
		return -EAGAIN;
	p = tx_slot(r, i);
	vsock_hdr_encode(h, p);
	for (uint32_t k = 0; k < len; k++)
		p[VSOCK_HDR_SIZE + k] = (uint8_t)(k * 7u + 1u);
	struct vq_buf b = { RAW_BASE + RAW_TXBUF_OFF + (uint64_t)i * RAW_TXSLOT,
			    VSOCK_HDR_SIZE + len };

	if (vq_driver_add(&r->drv[1], &b, 1, NULL, 0, p) < 0)
		return -EAGAIN;
	r->tx_busy[i] = true;
	vq_driver_publish(&r->drv[1]);
	kick(r->kick[1]);
	return 0;
}

unsigned int hraw_reap_tx(struct hraw *r)
{
	unsigned int n = 0;
	void *tok;
	uint32_t len;

	while (vq_driver_get_used(&r->drv[1], &tok, &len) == 1) {
		size_t off = (size_t)((uint8_t *)tok - (r->mem + RAW_TXBUF_OFF));

		r->tx_busy[off / RAW_TXSLOT] = false;
		n++;
	}
	return n;
}

int hraw_recv(struct hraw *r, struct vsock_hdr *h, bool repost)
{
	void *tok;
	uint32_t len;

	if (vq_driver_get_used(&r->drv[0], &tok, &len) != 1)
		return 0;
	memset(h, 0, sizeof(*h));
	if (len >= VSOCK_HDR_SIZE && r->rx_len >= VSOCK_HDR_SIZE)
		vsock_hdr_decode(h, tok);
	if (repost) {
		post_rx(r, (unsigned int)(((uint8_t *)tok - (r->mem + RAW_RXBUF_OFF)) / RAW_RXBUF));
		vq_driver_publish(&r->drv[0]);
		kick(r->kick[0]);
	}
	return 1;
}

bool hraw_check(struct hraw *r)
{
	char buf[4096];

	while (!r->dead) {
		ssize_t n = recv(r->sock, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			r->dead = true;
		break;
	}
	return r->dead;
}

bool hraw_wait_eof(struct hraw *r, int timeout_ms)
{
	struct pollfd p = { .fd = r->sock, .events = POLLIN };

	while (!hraw_check(r) && poll(&p, 1, timeout_ms) == 1)
		;
	return r->dead;
}
