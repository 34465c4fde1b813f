/* The POSIX port of gvsock (see port_posix.h): opening and closing a cell, its
 * memfd region, eventfds and epoll set. The vhost-user attach is in port_attach.c,
 * the news and wake-ups in port_wake.c, the blocking wait in port_wait.c, the event
 * loop calls in port_loop.c and the socket calls in port_sockets.c; port_cell.h has
 * what they share. */
#include "port_posix.h"
#include "port_cell.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PUMP_CALLS 64u

void port_set_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static void cell_free(struct rtvio_cell *c)
{
	if (c->sock >= 0)
		close(c->sock);
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++) {
		if (c->kick[q] >= 0)
			close(c->kick[q]);
		if (c->call[q] >= 0)
			close(c->call[q]);
	}
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	if (c->loop_fd >= 0)
		close(c->loop_fd);
	if (c->epfd >= 0)
		close(c->epfd);
	vhu_reader_reset(&c->reader);
	if (c->region) {
		if (c->mlocked)
			munlock(c->region, c->region_size);
		munmap(c->region, c->region_size);
	}
	if (c->memfd >= 0)
		close(c->memfd);
	if (c->stack_mem) {
		if (c->mlocked)
			munlock(c->stack_mem, c->stack_mem_size);
		free(c->stack_mem);
	}
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* A cell with its lock and condition variable and every descriptor closed (-1). */
static struct rtvio_cell *cell_alloc(const struct rtvio_cell_opts *opts)
{
	struct rtvio_cell *c = calloc(1, sizeof(*c));
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;

	if (!c)
		return NULL;
	/* One lock serves a cell's real-time and bulk threads alike: priority
	 * inheritance keeps a bulk thread that holds it from delaying a SCHED_FIFO
	 * sender or receiver behind unrelated work. */
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(&c->lock, &ma);
	pthread_mutexattr_destroy(&ma);

	/* Deadlines are CLOCK_MONOTONIC, like everything else here. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);

	c->sock = c->memfd = c->wake_fd = c->loop_fd = c->epfd = -1;
	c->pump_calls = opts->test_pump_calls ? opts->test_pump_calls : DEFAULT_PUMP_CALLS;
	c->want_prio = -1;
	c->poll_ns = (uint64_t)opts->poll_us * 1000u;
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		c->kick[q] = c->call[q] = -1;
	vhu_reader_init(&c->reader);
	return c;
}

/* Lays out the rings in a region of `region` bytes, then creates and maps it. */
static int cell_region(struct rtvio_cell *c, size_t region,
		       const struct rtvio_cell_opts *opts, char *err, size_t errlen)
{
	struct gv_layout_params lp = {
		.queue_size = opts->queue_size,
		.rx_buf_size = opts->rx_buf_size,
		.tx_payload = opts->tx_payload,
	};
	int rc = gv_layout_compute(&lp, region, &c->layout);

	if (rc) {
		port_set_err(err, errlen, "region of %zu bytes %s", region,
			rc == -GV_ENOSPC ? "is too small for the rings and buffers"
					 : "cannot be laid out with these queue parameters");
		return rc;
	}
	/* Sealable, and sealed against resizing here: the broker maps it, and a
	 * region that shrinks under a mapping turns the broker's accesses into
	 * SIGBUS. F_SEAL_SEAL stays off so that the broker may add its own. */
	c->memfd = memfd_create("rtvio-cell", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (c->memfd < 0 || ftruncate(c->memfd, (off_t)region) < 0 ||
	    fcntl(c->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		rc = -errno;
		port_set_err(err, errlen, "memfd of %zu bytes: %s", region, strerror(errno));
		return rc;
	}
	c->region = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_SHARED, c->memfd, 0);
	if (c->region == MAP_FAILED) {
		c->region = NULL;
		rc = -errno;
		port_set_err(err, errlen, "mapping the region: %s", strerror(errno));
		return rc;
	}
	c->region_size = region;
	return 0;
}

/* The kick and call eventfds of both queues, our own wake-ups and the epoll set. */
static int cell_eventfds(struct rtvio_cell *c, char *err, size_t errlen)
{
	int rc;

	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++) {
		/* Non-blocking: a kick must never block the real-time path, and the
		 * poller drains call counts without waiting. */
		c->kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		c->call[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (c->kick[q] < 0 || c->call[q] < 0) {
			rc = -errno;
			port_set_err(err, errlen, "eventfd: %s", strerror(errno));
			return rc;
		}
	}
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->loop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->wake_fd < 0 || c->loop_fd < 0 || c->epfd < 0) {
		rc = -errno;
		port_set_err(err, errlen, "eventfd/epoll: %s", strerror(errno));
		return rc;
	}
	return 0;
}

/* Page-locks what the real-time path touches; not permitted is not fatal. */
static void cell_mlock(struct rtvio_cell *c, const struct rtvio_cell_opts *opts)
{
	if (!opts->no_mlock && mlock(c->region, c->region_size) == 0) {
		if (mlock(c->stack_mem, c->stack_mem_size) == 0)
			c->mlocked = true;
		else
			munlock(c->region, c->region_size);
	}
}

/* rtvio_cell_fd()'s epoll set: both call fds, the socket and the loop eventfd. */
static int cell_epoll(struct rtvio_cell *c, char *err, size_t errlen)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fds[] = { c->call[0], c->call[1], c->sock, c->loop_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		ev.data.fd = fds[i];
		if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
			int rc = -errno;

			port_set_err(err, errlen, "epoll_ctl: %s", strerror(errno));
			return rc;
		}
	}
	return 0;
}

struct rtvio_cell *rtvio_cell_open(const char *socket_path, size_t region,
				   const struct rtvio_cell_opts *opts, char *err, size_t errlen)
{
	static const struct rtvio_cell_opts defaults;
	struct rtvio_cell *c;
	int rc, e;

	if (!opts)
		opts = &defaults;
	c = cell_alloc(opts);
	if (!c) {
		port_set_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	rc = cell_region(c, region, opts, err, errlen);
	if (!rc)
		rc = cell_eventfds(c, err, errlen);
	if (!rc) {
		port_gv_config(c, opts);
		rc = port_attach(c, socket_path, opts, err, errlen);
	}
	if (!rc) {
		cell_mlock(c, opts);
		rc = cell_epoll(c, err, errlen);
	}
	if (rc) {
		e = rc < 0 ? -rc : EIO;
		cell_free(c);
		errno = e;
		return NULL;
	}
	pthread_mutex_lock(&c->lock);
	gv_start(c->stack);
	pthread_mutex_unlock(&c->lock);
	return c;
}

void rtvio_cell_close(struct rtvio_cell *c)
{
	if (c)
		cell_free(c);
}

uint64_t rtvio_cell_cid(const struct rtvio_cell *c)
{
	return c->cid;
}

bool rtvio_cell_mlocked(const struct rtvio_cell *c)
{
	return c->mlocked;
}

uint64_t rtvio_cell_features(const struct rtvio_cell *c)
{
	return c->features;
}
