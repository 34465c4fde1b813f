/* `rtvio bench peer send|recv TRANSPORT PATH [options]`: the two measuring ends of one
 * `rtvio bench` run (see peer.h for the message discipline). The scenarios start a
 * receiver, wait for its "ready" line, start a sender, and read the receiver's JSON
 * result from its stdout. Hidden from `rtvio bench --help`: it is plumbing. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "workload.h"
#include "rtmsg.h"
#include "port_posix.h"
#include "fit.h"
#include "bench.h"
#include "peer.h"

#define CONNECT_WAIT_NS (10ull * RTVIO_NSEC_PER_SEC)
/* RX buffers a zero-copy receiver may hold: half the ring, so the broker always
 * has buffers posted to deliver into while the receiver reads. */
#define ZC_RX_BUFS 64

/* ---- Message discipline ------------------------------------------------------------ */

void peer_fill_payload(uint8_t *m, size_t len, uint64_t base)
{
	uint8_t b = (uint8_t)(base + RTMSG_HDR);

	for (size_t k = RTMSG_HDR; k < len; k++)
		m[k] = b++;
}

void peer_stamp(uint8_t *m, size_t len, uint64_t seq, uint64_t stamp_ns)
{
	uint8_t hdr[RTMSG_HDR] = { 0 };

	rtmsg_put32(hdr, RTMSG_MAGIC);
	rtmsg_put32(hdr + 4, (uint32_t)len);
	rtmsg_put64(hdr + 8, seq);
	rtmsg_put64(hdr + 16, stamp_ns);
	rtmsg_put32(hdr + 24, rtmsg_fnv(2166136261u, hdr, RTMSG_HDR));
	memcpy(m, hdr, RTMSG_HDR);
}

/* The payload pattern: byte o of a message is (uint8_t)(base + o), so it repeats every
 * 256 bytes. Written and checked in blocks of up to 64 KiB against this table, at
 * memcpy/memcmp speed like the ordinary sender's copy of its prepared message: a byte
 * loop cost the zero-copy sender more than the broker's copy of the same bytes. */
#define PAT_BLOCK 65536u
#define PAT4(n) (uint8_t)(n), (uint8_t)((n) + 1), (uint8_t)((n) + 2), (uint8_t)((n) + 3)
#define PAT16(n) PAT4(n), PAT4((n) + 4), PAT4((n) + 8), PAT4((n) + 12)
#define PAT64(n) PAT16(n), PAT16((n) + 16), PAT16((n) + 32), PAT16((n) + 48)
#define PAT256(n) PAT64(n), PAT64((n) + 64), PAT64((n) + 128), PAT64((n) + 192)
#define PAT1K PAT256(0), PAT256(0), PAT256(0), PAT256(0)
#define PAT4K PAT1K, PAT1K, PAT1K, PAT1K
#define PAT16K PAT4K, PAT4K, PAT4K, PAT4K
static const uint8_t pattern_table[PAT_BLOCK + 256] = {
	PAT16K, PAT16K, PAT16K, PAT16K, PAT256(0)
};

void peer_fill_range(uint8_t *dst, size_t off, size_t n, uint64_t base)
{
	/* PAT_BLOCK is a multiple of 256: every block starts at the same phase. */
	const uint8_t *t = pattern_table + (uint8_t)(base + off);

	for (size_t k = 0; k < n; k += PAT_BLOCK)
		memcpy(dst + k, t, n - k < PAT_BLOCK ? n - k : PAT_BLOCK);
}

uint8_t peer_pattern_diff(const uint8_t *src, size_t off, size_t n, uint64_t base)
{
	const uint8_t *t = pattern_table + (uint8_t)(base + off);

	for (size_t k = 0; k < n; k += PAT_BLOCK)
		if (memcmp(src + k, t, n - k < PAT_BLOCK ? n - k : PAT_BLOCK))
			return 1;
	return 0;
}

bool peer_rx_header(const uint8_t *m, size_t len, uint64_t *seq, uint64_t *stamp)
{
	uint8_t hdr[RTMSG_HDR];

	memcpy(hdr, m, RTMSG_HDR);
	rtmsg_put32(hdr + 24, 0);
	if (len < RTMSG_HDR || rtmsg_get32(m) != RTMSG_MAGIC || rtmsg_get32(m + 4) != len ||
	    rtmsg_get32(m + 24) != rtmsg_fnv(2166136261u, hdr, RTMSG_HDR))
		return false;
	*seq = rtmsg_get64(m + 8);
	*stamp = rtmsg_get64(m + 16);
	return true;
}

bool peer_rx_checks_payload(const struct peer_rx *rx, uint64_t seq)
{
	return !rx->throughput || seq % 64 == 0;
}

uint64_t peer_rx_pattern_base(const struct peer_rx *rx, uint64_t seq)
{
	return rx->throughput ? 0 : seq;
}

void peer_rx_note(struct peer_rx *rx, size_t len, uint64_t seq, uint64_t stamp,
		  uint64_t now_ns)
{
	if (seq < rx->next_seq) {
		rx->reordered++;
	} else {
		rx->lost += seq - rx->next_seq;
		rx->next_seq = seq + 1;
	}
	if (!rx->messages)
		rx->first_stamp = stamp;
	rx->messages++;
	rx->bytes += len;
	rx->last_arrival = now_ns;
	if (!rx->throughput && rx->nlat < rx->cap)
		rx->lat_ns[rx->nlat++] = now_ns >= stamp ? (double)(now_ns - stamp) : 0;
}

void peer_rx_account(struct peer_rx *rx, const uint8_t *m, size_t len, uint64_t now_ns)
{
	uint64_t seq, stamp;

	if (len < RTMSG_HDR || !peer_rx_header(m, len, &seq, &stamp) ||
	    (peer_rx_checks_payload(rx, seq) &&
	     peer_pattern_diff(m + RTMSG_HDR, RTMSG_HDR, len - RTMSG_HDR,
			       peer_rx_pattern_base(rx, seq)))) {
		rx->corrupt++;
		return;
	}
	peer_rx_note(rx, len, seq, stamp, now_ns);
}

long peer_sleeps(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) ? -1 : ru.ru_nvcsw;
}

void peer_rx_report(struct peer_rx *rx, const struct peer_args *a, const char *status)
{
	json_t *doc = json_object();

	json_object_set_new(doc, "status", json_string(status));
	json_object_set_new(doc, "messages", json_integer((json_int_t)rx->messages));
	json_object_set_new(doc, "bytes", json_integer((json_int_t)rx->bytes));
	json_object_set_new(doc, "lost", json_integer((json_int_t)rx->lost));
	json_object_set_new(doc, "reordered", json_integer((json_int_t)rx->reordered));
	json_object_set_new(doc, "corrupt", json_integer((json_int_t)rx->corrupt));
	if (a->throughput) {
		double s = rx->messages > 1 && rx->last_arrival > rx->first_stamp
				   ? (double)(rx->last_arrival - rx->first_stamp) / 1e9 : 0;

		json_object_set_new(doc, "seconds", json_real(s));
		json_object_set_new(doc, "gbps", s > 0 ? json_real((double)rx->bytes / s / 1e9)
						     : json_null());
		json_object_set_new(doc, "msgps", s > 0 ? json_real((double)rx->messages / s)
						      : json_null());
		json_object_set_new(doc, "rx_sleeps", json_integer(peer_sleeps()));
	} else if (rx->nlat) {
		json_t *lat = json_object(), *cdf = json_array();
		double *v = rx->lat_ns;
		size_t n = rx->nlat;
		static const struct { const char *k; double p; } q[] = {
			{ "min", 0 }, { "p50", 50 }, { "p90", 90 }, { "p99", 99 },
			{ "p999", 99.9 }, { "max", 100 },
		};

		fit_summarize(v, n, &(struct summary){ 0 });
		for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
			json_object_set_new(lat, q[i].k,
					    json_real(fit_percentile_sorted(v, n, q[i].p) / 1e3));
		json_object_set_new(doc, "latency_us", lat);
		/* A 100-point CDF (every percentile) is enough for the plots. */
		for (int p = 1; p <= 100; p++)
			json_array_append_new(cdf, json_real(fit_percentile_sorted(v, n, p) / 1e3));
		json_object_set_new(doc, "cdf_us", cdf);
		if (rx->nspin) {
			json_t *sp = json_object();

			fit_summarize(rx->back_ns, rx->nspin, &(struct summary){ 0 });
			fit_summarize(rx->news_ns, rx->nspin, &(struct summary){ 0 });
			json_object_set_new(sp, "messages", json_integer((json_int_t)rx->nspin));
			json_object_set_new(sp, "back_p50", json_real(
				fit_percentile_sorted(rx->back_ns, rx->nspin, 50) / 1e3));
			json_object_set_new(sp, "news_p50", json_real(
				fit_percentile_sorted(rx->news_ns, rx->nspin, 50) / 1e3));
			json_object_set_new(doc, "rx_spin_us", sp);
		}
	}
	json_dumpf(doc, stdout, JSON_COMPACT);
	printf("\n");
	fflush(stdout);
	json_decref(doc);
}

void peer_setup_sched(const struct peer_args *a)
{
	if (a->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(a->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			fprintf(stderr, "rtvio bench peer: warning: cannot pin to cpu %d: %s\n",
				a->cpu, strerror(errno));
	}
	if (a->prio > 0) {
		struct sched_param sp = { .sched_priority = a->prio };

		if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
			fprintf(stderr, "rtvio bench peer: warning: SCHED_FIFO %d not permitted: %s\n",
				a->prio, strerror(errno));
	}
	mlockall(MCL_CURRENT | MCL_FUTURE);
}

void peer_ready(void)
{
	printf("ready\n");
	fflush(stdout);
}

/* ---- Transport operations ------------------------------------------------------------ */

struct conn {
	const struct peer_args *a;
	int fd;			/* socket or FIFO */
	struct rtvio_cell *cell;
	int id;			/* rtvio socket */
	struct shm_ring *ring;
	size_t ring_map;
};

/* The floor: a byte ring in a shared file between exactly two processes, with
 * futex wake-ups when a side has to wait (both ends share cpu 0, so neither may
 * spin). head is written by the sender only, tail by the receiver only. */
#define SHM_RING_BYTES (4u << 20)
struct shm_ring {
	_Atomic uint64_t head;		/* sender: bytes published */
	char pad0[56];
	_Atomic uint64_t tail;		/* receiver: bytes consumed */
	char pad1[56];
	_Atomic uint32_t data_seq;	/* sender bumps it to wake a waiting receiver */
	_Atomic uint32_t rx_waiting;	/* receiver: it is (about to be) asleep on data_seq */
	_Atomic uint32_t space_seq;	/* receiver bumps it to wake a waiting sender */
	_Atomic uint32_t tx_waiting;	/* sender: it is (about to be) asleep on space_seq */
	_Atomic uint32_t closed;	/* sender: no more data */
	char pad2[44];
	uint8_t data[SHM_RING_BYTES];	/* sender writes [tail, head + free), receiver reads */
};

static void futex_wait(_Atomic uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* After publishing an index: wake the other side if it said it sleeps. The seq_cst
 * store of the index and this seq_cst load of the flag order like Dekker's: either
 * the sleeper sees the new index on its re-check, or we see its flag. */
static void shm_wake(_Atomic uint32_t *waiting, _Atomic uint32_t *seq)
{
	if (atomic_load(waiting)) {
		atomic_store(waiting, 0);
		atomic_fetch_add(seq, 1);
		futex_wake(seq);
	}
}

/* Spin-before-sleep (--spin-us): watches *idx for up to spin_ns while it still
 * equals old; true when it moved. Looks after every pause, reads the clock after
 * 32 (as a polling rtvio cell does). Acquire: what the other side wrote before it
 * moved the index is visible once we see the move. */
static bool shm_spin(_Atomic uint64_t *idx, uint64_t old, uint64_t spin_ns)
{
	uint64_t t0;

	if (!spin_ns)
		return false;
	t0 = rtvio_now_ns();
	do {
		for (int i = 0; i < 32; i++) {
			if (atomic_load_explicit(idx, memory_order_acquire) != old)
				return true;
			peer_relax();
		}
	} while (rtvio_now_ns() - t0 < spin_ns);
	return false;
}

static ssize_t shm_write(struct shm_ring *r, const uint8_t *buf, size_t len, uint64_t spin_ns)
{
	size_t done = 0;
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

	while (done < len) {
		uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		size_t space = SHM_RING_BYTES - (size_t)(head - tail), n, off, first;

		if (!space) {
			uint32_t s;

			if (shm_spin(&r->tail, tail, spin_ns))
				continue;
			s = atomic_load(&r->space_seq);

			atomic_store(&r->tx_waiting, 1);
			if (atomic_load(&r->tail) == tail)
				futex_wait(&r->space_seq, s);
			continue;
		}
		n = len - done < space ? len - done : space;
		off = (size_t)(head % SHM_RING_BYTES);
		first = n < SHM_RING_BYTES - off ? n : SHM_RING_BYTES - off;
		memcpy(r->data + off, buf + done, first);
		memcpy(r->data, buf + done + first, n - first);
		head += n;
		done += n;
		/* Release: the bytes above before the index that exposes them. */
		atomic_store(&r->head, head);
		shm_wake(&r->rx_waiting, &r->data_seq);
	}
	return (ssize_t)len;
}

static ssize_t shm_read(struct shm_ring *r, uint8_t *buf, size_t len, uint64_t spin_ns)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	for (;;) {
		/* Acquire: the bytes below head were written before head was. */
		uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
		size_t avail = (size_t)(head - tail), n, off, first;

		if (!avail) {
			uint32_t s;

			if (atomic_load(&r->closed) && atomic_load(&r->head) == tail)
				return 0;
			if (shm_spin(&r->head, tail, spin_ns))
				continue;
			s = atomic_load(&r->data_seq);
			atomic_store(&r->rx_waiting, 1);
			if (atomic_load(&r->head) == tail && !atomic_load(&r->closed))
				futex_wait(&r->data_seq, s);
			continue;
		}
		n = len < avail ? len : avail;
		off = (size_t)(tail % SHM_RING_BYTES);
		first = n < SHM_RING_BYTES - off ? n : SHM_RING_BYTES - off;
		memcpy(buf, r->data + off, first);
		memcpy(buf + first, r->data, n - first);
		/* Release: our reads of the bytes are done before the sender may reuse them. */
		atomic_store(&r->tail, tail + n);
		shm_wake(&r->tx_waiting, &r->space_seq);
		return (ssize_t)n;
	}
}

static void shm_close(struct shm_ring *r)
{
	atomic_store(&r->closed, 1);
	atomic_fetch_add(&r->data_seq, 1);
	futex_wake(&r->data_seq);
}

static int set_sndbuf(int fd, size_t want)
{
	int v = want > INT_MAX / 2 ? INT_MAX / 2 : (int)want;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		return setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	return 0;
}

static int unix_type(enum peer_transport tr)
{
	return tr == PT_UNIX_SEQPACKET ? SOCK_SEQPACKET : SOCK_STREAM;
}

static int fill_sun(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

static int rtvio_attach(struct conn *c)
{
	struct rtvio_cell_opts opts = { 0 };
	char err[256];

	opts.rx_buf_size = (c->a->rx_buf ? c->a->rx_buf : 4096) + GV_HDR_SIZE;
	opts.poll_us = c->a->spin_us;
	/* A large receive budget is per socket and private: the peer needs three
	 * (listener, connection, and one spare), not the default 64. */
	if (c->a->rcvbuf) {
		opts.rcvbuf = c->a->rcvbuf;
		opts.max_sockets = 4;
	}
	opts.attach_wait_ms = 10000;
	c->cell = rtvio_cell_open(c->a->path, c->a->region, &opts, err, sizeof(err));
	if (!c->cell) {
		fprintf(stderr, "rtvio bench peer: %s\n", err);
		return -errno;
	}
	return 0;
}

/* Receiver: creates the endpoint, says ready, waits for the sender. */
static int open_recv(struct conn *c)
{
	const struct peer_args *a = c->a;
	struct sockaddr_un sun;
	int lfd, err;

	switch (a->tr) {
	case PT_RTVIO: {
		int lid;

		err = rtvio_attach(c);
		if (err)
			return err;
		lid = rtvio_socket(c->cell, RTVIO_SOCK_STREAM);
		if (lid < 0)
			return lid;
		err = rtvio_listen(c->cell, lid, a->port, 1);
		/* Accepted connections inherit it: every piece stays in place. */
		if (!err && a->zerocopy)
			err = rtvio_set_zerocopy(c->cell, lid, ZC_RX_BUFS);
		if (err)
			return err;
		peer_ready();
		c->id = rtvio_accept(c->cell, lid, NULL, NULL, 20000);
		rtvio_close(c->cell, lid);
		return c->id < 0 ? c->id : 0;
	}
	case PT_UNIX_STREAM:
	case PT_UNIX_SEQPACKET:
		err = fill_sun(&sun, a->path);
		if (err)
			return err;
		lfd = socket(AF_UNIX, unix_type(a->tr) | SOCK_CLOEXEC, 0);
		if (lfd < 0)
			return -errno;
		unlink(a->path);
		if (bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(lfd, 1) < 0) {
			err = -errno;
			close(lfd);
			return err;
		}
		peer_ready();
		c->fd = accept(lfd, NULL, NULL);
		err = c->fd < 0 ? -errno : 0;
		close(lfd);
		unlink(a->path);
		return err;
	case PT_PIPE:
		if (mkfifo(a->path, 0600) < 0 && errno != EEXIST)
			return -errno;
		peer_ready();
		c->fd = open(a->path, O_RDONLY | O_CLOEXEC);
		if (c->fd < 0)
			return -errno;
		/* A pipe as a user who moves big messages would set it up: 1 MiB buffer. */
		fcntl(c->fd, F_SETPIPE_SZ, 1 << 20);
		unlink(a->path);
		return 0;
	case PT_SHM:
		c->ring_map = sizeof(struct shm_ring);
		lfd = open(a->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (lfd < 0)
			return -errno;
		if (ftruncate(lfd, (off_t)c->ring_map) < 0) {
			err = -errno;
			close(lfd);
			return err;
		}
		c->ring = mmap(NULL, c->ring_map, PROT_READ | PROT_WRITE, MAP_SHARED, lfd, 0);
		close(lfd);
		if (c->ring == MAP_FAILED)
			return -errno;
		peer_ready();
		return 0;
	case PT_IOX:
		break;
	}
	return -ENOTSUP;
}

static int open_send(struct conn *c)
{
	const struct peer_args *a = c->a;
	struct sockaddr_un sun;
	uint64_t t0 = rtvio_now_ns();
	int err, fd;

	switch (a->tr) {
	case PT_RTVIO:
		err = rtvio_attach(c);
		if (err)
			return err;
		c->id = rtvio_socket(c->cell, RTVIO_SOCK_STREAM);
		if (c->id < 0)
			return c->id;
		return rtvio_connect(c->cell, c->id, a->peer_cid, a->port, 10000);
	case PT_UNIX_STREAM:
	case PT_UNIX_SEQPACKET:
		err = fill_sun(&sun, a->path);
		if (err)
			return err;
		c->fd = socket(AF_UNIX, unix_type(a->tr) | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			return -errno;
		/* A seqpacket message must fit the send buffer whole. */
		set_sndbuf(c->fd, 2 * a->size + 65536);
		while (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			if (rtvio_now_ns() - t0 > CONNECT_WAIT_NS)
				return -errno;
			usleep(10000);
		}
		return 0;
	case PT_PIPE:
		c->fd = open(a->path, O_WRONLY | O_CLOEXEC);
		if (c->fd < 0)
			return -errno;
		fcntl(c->fd, F_SETPIPE_SZ, 1 << 20);
		return 0;
	case PT_SHM:
		c->ring_map = sizeof(struct shm_ring);
		fd = open(a->path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		c->ring = mmap(NULL, c->ring_map, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (c->ring == MAP_FAILED)
			return -errno;
		unlink(a->path);
		return 0;
	case PT_IOX:
		break;
	}
	return -ENOTSUP;
}

/* Hands over a whole message; negative errno on failure. */
static int send_msg(struct conn *c, const uint8_t *m, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;

		switch (c->a->tr) {
		case PT_RTVIO:
			n = rtvio_send(c->cell, c->id, m + done, len - done, 0, -1);
			break;
		case PT_SHM:
			n = shm_write(c->ring, m + done, len - done, (uint64_t)c->a->spin_us * 1000);
			break;
		default:
			n = c->a->tr == PT_PIPE ? write(c->fd, m + done, len - done)
						: send(c->fd, m + done, len - done, MSG_NOSIGNAL);
			if (n < 0)
				n = -errno;
			if (n == -EINTR)
				continue;
			break;
		}
		if (n < 0)
			return (int)n;
		if (c->a->tr == PT_UNIX_SEQPACKET && (size_t)n != len)
			return -EMSGSIZE;
		done += (size_t)n;
	}
	return 0;
}

/* Reads one whole message of len bytes: 1, 0 at the end, or a negative errno. */
static int recv_msg(struct conn *c, uint8_t *m, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;

		switch (c->a->tr) {
		case PT_RTVIO:
			if (c->a->rtvio_poll_recv) {
				n = rtvio_recv(c->cell, c->id, m + done, len - done, 0, NULL, 0);
				if (n == -EAGAIN) {
					rtvio_cell_process(c->cell);
					continue;
				}
			} else {
				n = rtvio_recv(c->cell, c->id, m + done, len - done, 0, NULL, -1);
			}
			break;
		case PT_SHM:
			n = shm_read(c->ring, m + done, len - done, (uint64_t)c->a->spin_us * 1000);
			break;
		default:
			n = c->a->tr == PT_PIPE ? read(c->fd, m + done, len - done)
						: recv(c->fd, m + done, len - done, 0);
			if (n < 0)
				n = -errno;
			if (n == -EINTR)
				continue;
			break;
		}
		if (n < 0)
			return (int)n;
		if (n == 0)
			return done ? -EPIPE : 0;
		/* A seqpacket message arrives whole or not at all. */
		if (c->a->tr == PT_UNIX_SEQPACKET && (size_t)n != len)
			return -EMSGSIZE;
		done += (size_t)n;
	}
	return 1;
}

static void close_conn(struct conn *c)
{
	if (c->cell) {
		if (c->id >= 0) {
			rtvio_shutdown(c->cell, c->id, 3);
			rtvio_close(c->cell, c->id);
		}
		/* Let the close reach the peer before detaching (detaching resets). */
		for (int i = 0; i < 100 && c->a->send; i++) {
			rtvio_cell_process(c->cell);
			usleep(1000);
		}
		rtvio_cell_close(c->cell);
	}
	if (c->ring) {
		if (c->a->send)
			shm_close(c->ring);
		munmap(c->ring, c->ring_map);
	}
	if (c->fd >= 0)
		close(c->fd);
}

/* ---- The two loops ------------------------------------------------------------------ */

/* The sender's JSON line: how many it sent and, in latency mode, how long the send
 * call took (stamp to return: the sender's own share of the one-way latency). */
void peer_send_report(uint64_t seq, int err, double *call_ns, size_t n)
{
	json_t *doc = json_object();

	json_object_set_new(doc, "sent", json_integer((json_int_t)seq));
	json_object_set_new(doc, "error", json_integer(err));
	json_object_set_new(doc, "sleeps", json_integer(peer_sleeps()));
	if (n) {
		json_t *q = json_object();

		fit_summarize(call_ns, n, &(struct summary){ 0 });
		json_object_set_new(q, "p50", json_real(fit_percentile_sorted(call_ns, n, 50) / 1e3));
		json_object_set_new(q, "p99", json_real(fit_percentile_sorted(call_ns, n, 99) / 1e3));
		json_object_set_new(doc, "send_call_us", q);
	}
	json_dumpf(doc, stdout, JSON_COMPACT);
	printf("\n");
	fflush(stdout);
	json_decref(doc);
}

static int run_send(const struct peer_args *a)
{
	struct conn c = { .a = a, .fd = -1, .id = -1 };
	uint8_t *m = malloc(a->size);
	uint64_t seq = 0, next, end, stamp;
	struct wl_period plan;
	/* Latency mode: each send call's duration, allocated before the run. */
	size_t ncall = a->throughput ? 0 : (size_t)a->count;
	double *call_ns = ncall ? calloc(ncall, sizeof(double)) : NULL;
	int err;

	if (!m || (ncall && !call_ns)) {
		free(m);
		free(call_ns);
		return 1;
	}
	peer_fill_payload(m, a->size, 0);
	peer_setup_sched(a);
	err = open_send(&c);
	if (err) {
		fprintf(stderr, "rtvio bench peer: cannot connect: %s\n", strerror(-err));
		close_conn(&c);
		free(m);
		return 1;
	}
	wl_period_init(&plan, a->start_ns ? a->start_ns : rtvio_now_ns(), a->period_ns ? a->period_ns : 1);
	next = plan.next_ns;
	end = rtvio_now_ns() + a->duration_ns;
	for (;;) {
		if (a->throughput) {
			if (rtvio_now_ns() >= end)
				break;
		} else {
			if (seq >= a->count)
				break;
			rtvio_sleep_until_ns(next);
		}
		if (a->zerocopy) {
			err = peer_zc_send(c.cell, c.id, a, seq, &stamp);
		} else {
			stamp = rtvio_now_ns();
			peer_stamp(m, a->size, seq, stamp);
			err = send_msg(&c, m, a->size);
		}
		if (err)
			break;
		if (seq < ncall)
			call_ns[seq] = (double)(rtvio_now_ns() - stamp);
		seq++;
		/* A late release moves the grid: the flow's declared minimum inter-arrival
		 * holds (a catch-up burst would be policed by rtvio's broker, rightly). */
		next = wl_period_next(&plan, stamp);
		/* The next payload is written while the period's slack lasts. */
		if (!a->throughput)
			peer_fill_payload(m, a->size, seq);
	}
	if (err)
		fprintf(stderr, "rtvio bench peer: send failed after %llu messages: %s\n",
			(unsigned long long)seq, strerror(-err));
	peer_send_report(seq, err, call_ns, seq < ncall ? (size_t)seq : ncall);
	close_conn(&c);
	free(m);
	free(call_ns);
	return err ? 1 : 0;
}

/* A polling rtvio receiver: where the message just received waited, from the
 * cell's last spin (rtvio_cell_spin_times) against its stamp; only messages that a
 * spin saw arrive, after being preempted (by the sender, on the same cpu). */
static void spin_note(struct peer_rx *rx, struct rtvio_cell *cell, const uint8_t *m,
		      size_t len)
{
	uint64_t back, news, seq, stamp;

	rtvio_cell_spin_times(cell, &back, &news);
	if (rx->nspin >= rx->cap || !peer_rx_header(m, len, &seq, &stamp) || !news ||
	    back < stamp || news < back)
		return;
	rx->back_ns[rx->nspin] = (double)(back - stamp);
	rx->news_ns[rx->nspin++] = (double)(news - stamp);
}

static int run_recv(const struct peer_args *a)
{
	struct conn c = { .a = a, .fd = -1, .id = -1 };
	struct peer_rx rx = { .throughput = a->throughput };
	uint8_t *m = malloc(a->size);
	const char *status = "ok";
	int err;

	rx.cap = a->throughput ? 0 : (size_t)a->count;
	rx.lat_ns = rx.cap ? calloc(rx.cap, sizeof(double)) : NULL;
	if (rx.cap && a->tr == PT_RTVIO && a->spin_us && !a->zerocopy) {
		rx.back_ns = calloc(rx.cap, sizeof(double));
		rx.news_ns = calloc(rx.cap, sizeof(double));
	}
	if (!m || (rx.cap && !rx.lat_ns) || (rx.back_ns && !rx.news_ns))
		return 1;
	peer_setup_sched(a);
	err = open_recv(&c);
	if (err) {
		fprintf(stderr, "rtvio bench peer: cannot set up the receiving end: %s\n",
			strerror(-err));
		status = "setup failed";
	}
	while (!err) {
		int r = a->zerocopy ? peer_zc_recv(c.cell, c.id, &rx, a->size)
				    : recv_msg(&c, m, a->size);

		if (r <= 0) {
			if (r < 0) {
				status = r == -EMSGSIZE ? "message too large" : "receive error";
				fprintf(stderr, "rtvio bench peer: receive: %s\n", strerror(-r));
			}
			break;
		}
		if (!a->zerocopy) {
			uint64_t now = rtvio_now_ns();

			if (rx.back_ns)
				spin_note(&rx, c.cell, m, a->size);
			peer_rx_account(&rx, m, a->size, now);
		}
		if (!a->throughput && rx.messages + rx.lost >= a->count)
			break;
	}
	peer_rx_report(&rx, a, status);
	close_conn(&c);
	free(rx.lat_ns);
	free(rx.back_ns);
	free(rx.news_ns);
	free(m);
	return strcmp(status, "ok") ? 1 : 0;
}

/* ---- Command line ---------------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || end == s)
		return -EINVAL;
	*out = v;
	return 0;
}

/* rtvio-zc and rtvio-poll-cells are the rtvio transport with the zero-copy calls,
 * or with polling cells (a spin of --spin-us, 1 ms when not given). */
static const struct {
	const char *name;
	enum peer_transport tr;
	bool zerocopy, poll;
} transports[] = {
	{ "rtvio", PT_RTVIO, false, false }, { "rtvio-zc", PT_RTVIO, true, false },
	{ "rtvio-poll-cells", PT_RTVIO, false, true }, { "unix-stream", PT_UNIX_STREAM, false, false },
	{ "unix-seqpacket", PT_UNIX_SEQPACKET, false, false }, { "pipe", PT_PIPE, false, false },
	{ "iceoryx", PT_IOX, false, false }, { "shm", PT_SHM, false, false },
};

static bool find_transport(const char *name, struct peer_args *a)
{
	for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++)
		if (!strcmp(name, transports[i].name)) {
			a->tr = transports[i].tr;
			a->zerocopy = transports[i].zerocopy;
			if (transports[i].poll && !a->spin_us)
				a->spin_us = 1000;
			return true;
		}
	return false;
}

int bench_peer_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "period-ns", required_argument, NULL, 'p' },
		{ "duration-ns", required_argument, NULL, 'd' },
		{ "start-ns", required_argument, NULL, 'S' },
		{ "port", required_argument, NULL, 'P' },
		{ "cid", required_argument, NULL, 'c' },
		{ "region", required_argument, NULL, 'r' },
		{ "cpu", required_argument, NULL, 'C' },
		{ "prio", required_argument, NULL, 'R' },
		{ "throughput", no_argument, NULL, 't' },
		{ "poll", no_argument, NULL, 'o' },
		{ "spin-us", required_argument, NULL, 'w' },
		{ "rx-buf", required_argument, NULL, 'b' },
		{ "rcvbuf", required_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	struct peer_args a = { .cpu = -1, .region = 16u << 20, .size = 64 };
	uint64_t v;
	int ch;

	/* argv: peer ROLE TRANSPORT PATH [options] */
	if (argc < 4) {
		fprintf(stderr, "usage: rtvio bench peer send|recv TRANSPORT PATH [options]\n");
		return 2;
	}
	a.send = !strcmp(argv[1], "send");
	if (!a.send && strcmp(argv[1], "recv")) {
		fprintf(stderr, "rtvio bench peer: role '%s': expected send or recv\n", argv[1]);
		return 2;
	}
	a.path = argv[3];
	optind = 4;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 't') {
			a.throughput = true;
			continue;
		}
		if (ch == 'o') {
			a.rtvio_poll_recv = true;
			continue;
		}
		if (ch == '?' || !optarg || parse_u64(optarg, &v)) {
			fprintf(stderr, "rtvio bench peer: bad option or value\n");
			return 2;
		}
		switch (ch) {
		case 's': a.size = (size_t)v; break;
		case 'n': a.count = v; break;
		case 'p': a.period_ns = v; break;
		case 'd': a.duration_ns = v; break;
		case 'S': a.start_ns = v; break;
		case 'P': a.port = (uint32_t)v; break;
		case 'c': a.peer_cid = v; break;
		case 'r': a.region = v; break;
		case 'C': a.cpu = (int)v; break;
		case 'R': a.prio = (int)v; break;
		case 'w': a.spin_us = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v; break;
		case 'b': a.rx_buf = v > (1u << 20) ? 1u << 20 : (uint32_t)v; break;
		case 'B':
			if (v < 128 || v > (64u << 20)) {
				fprintf(stderr, "rtvio bench peer: --rcvbuf must be 128 B .. 64 MiB\n");
				return 2;
			}
			a.rcvbuf = (uint32_t)v;
			break;
		default: return 2;
		}
	}
	/* After the options: rtvio-poll-cells' default spin yields to --spin-us. */
	if (!find_transport(argv[2], &a)) {
		fprintf(stderr, "rtvio bench peer: unknown transport '%s'\n", argv[2]);
		return 2;
	}
	if (a.size < RTMSG_HDR || a.size > (64u << 20)) {
		fprintf(stderr, "rtvio bench peer: --size must be 32 B .. 64 MiB\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (a.tr == PT_IOX)
		return a.send ? bench_iox_send(&a) : bench_iox_recv(&a);
	return a.send ? run_send(&a) : run_recv(&a);
}
