/* The POSIX port of gvsock (see port_posix.h). */
#include "clock.h"
#include "port_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vhost_front.h"

#define DEFAULT_MAX_SOCKETS 64u
#define DEFAULT_RCVBUF (256u * 1024u)
#define DEFAULT_HANDSHAKE_MS 5000
#define DEFAULT_PUMP_CALLS 64u

/* Features we can use; VERSION_1 is the only one we cannot do without. */
#define WANT_FEATURES                                                                    \
	((1ull << VHU_F_VERSION_1) | (1ull << VHU_VSOCK_F_SEQPACKET) | (1ull << VHU_F_EVENT_IDX))
#define NEED_FEATURES (1ull << VHU_F_VERSION_1)

struct rtvio_cell {
	pthread_mutex_t lock;	/* serialises the stack and everything below */
	pthread_cond_t cond;	/* followers wait here for the poller's news */

	/* Fixed at open. */
	int sock;		/* vhost-user socket (non-blocking after the handshake) */
	int memfd;
	uint8_t *region;
	size_t region_size;
	void *stack_mem;
	size_t stack_mem_size;
	struct gv_stack *stack;
	int kick[VHU_VSOCK_QUEUES];
	int call[VHU_VSOCK_QUEUES];
	int wake_fd;		/* eventfd: news for the thread in poll() */
	int loop_fd;		/* eventfd: news for the event loop; drained only by
				 * rtvio_cell_process, so a blocked thread cannot take it */
	int epfd;		/* rtvio_cell_fd(): call fds, sock, loop_fd */
	uint32_t pump_calls;	/* gv_process calls per pump */
	uint64_t cid;
	uint64_t features;
	bool mlocked;
	struct gv_layout layout;
	struct gv_ops ops;
	struct gv_config gcfg;

	/* Under lock. */
	int dead;		/* 0, -ECONNRESET or -EIO; sticky */
	bool interrupted;
	bool poller;		/* a thread is in poll() on the fds */
	int poller_prio;	/* its SCHED_FIFO/RR priority, 0 for others */
	int want_prio;		/* a waiter of this priority asked to poll; -1 none */
	bool wake_written;	/* wake_fd has an unread count */
	bool loop_written;	/* loop_fd has an unread count */
	bool fd_used;		/* someone asked for rtvio_cell_fd() */
	bool in_process;	/* inside rtvio_cell_process(): the event loop itself */
	bool more;		/* the last pump stopped with work left */
	unsigned int waiters;	/* threads inside a blocking call */
	struct vhu_reader reader; /* anything the broker sends after the handshake */
};

static void set_err(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static uint64_t op_now(void *ctx)
{
	(void)ctx;
	return rtvio_now_ns();
}

/* Called by gvsock under our lock when the broker wants a kick. */
static void op_kick(void *ctx, unsigned int queue)
{
	struct rtvio_cell *c = ctx;
	uint64_t one = 1;

	if (queue < VHU_VSOCK_QUEUES && write(c->kick[queue], &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the broker has a kick pending anyway. */
	}
}

/* Makes rtvio_cell_fd() readable for an event loop, if there is one (lock held):
 * loop_fd is written at most once until rtvio_cell_process drains it. */
static void wake_loop(struct rtvio_cell *c)
{
	uint64_t one = 1;

	if (c->fd_used && !c->loop_written &&
	    write(c->loop_fd, &one, sizeof(one)) == sizeof(one))
		c->loop_written = true;
}

/* Something other threads may wait for has changed (lock held). Followers get the
 * condition; a thread inside poll() gets wake_fd, and an event loop watching
 * rtvio_cell_fd() (unless it is the caller: `from_loop`) loop_fd, each written at
 * most once until drained. */
static void wake_others(struct rtvio_cell *c, bool from_loop)
{
	uint64_t one = 1;

	if (c->waiters)
		pthread_cond_broadcast(&c->cond);
	if (c->poller && !c->wake_written &&
	    write(c->wake_fd, &one, sizeof(one)) == sizeof(one))
		c->wake_written = true;
	if (!from_loop)
		wake_loop(c);
}

static void wake_waiters(struct rtvio_cell *c)
{
	wake_others(c, false);
}

static void op_wake(void *ctx, int id)
{
	struct rtvio_cell *c = ctx;

	(void)id;
	wake_others(c, c->in_process);
}

static void drain_eventfd(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == sizeof(v))
		;
}

static void mark_dead(struct rtvio_cell *c, int why)
{
	if (c->dead)
		return;
	c->dead = why;
	/* Everyone blocked must learn it now. */
	pthread_cond_broadcast(&c->cond);
	if (c->poller && !c->wake_written) {
		uint64_t one = 1;

		if (write(c->wake_fd, &one, sizeof(one)) == sizeof(one))
			c->wake_written = true;
	}
	wake_loop(c);
}

/* The broker never sends requests to a front end on this socket; whatever comes is
 * read and dropped, and end of file means the broker is gone. Lock held; the
 * socket is non-blocking. */
static void check_socket(struct rtvio_cell *c)
{
	int rc;

	while (!c->dead) {
		rc = vhu_reader_read(c->sock, &c->reader);
		if (rc == 0)
			return;
		if (rc < 0) {
			mark_dead(c, -ECONNRESET);
			return;
		}
		vhu_reader_reset(&c->reader);
	}
}

/* Lock held: everything that can be done without blocking. gvsock returns a
 * positive count while there may be more (it then leaves the used-buffer
 * notifications off), so it is called until it reports nothing; a flood that
 * outlasts the bound leaves `c->more` set and the next wait does not sleep. */
static void pump(struct rtvio_cell *c)
{
	int rc = 0;

	if (c->dead)
		return;
	for (uint32_t i = 0; i < c->pump_calls; i++) {
		rc = gv_process(c->stack);
		if (rc <= 0)
			break;
	}
	c->more = rc > 0;
	if (rc < 0)
		mark_dead(c, -EIO);
	else if (c->more)
		/* Work left with the used-buffer notifications still off: no call
		 * eventfd will say so, so whoever sleeps on the cell, the event loop
		 * included, must be told to look again. */
		wake_others(c, false);
}

/* The real-time priority of the calling thread (0 when it has none). */
static int thread_prio(void)
{
	struct sched_param sp;
	int pol;

	if (pthread_getschedparam(pthread_self(), &pol, &sp))
		return 0;
	return pol == SCHED_FIFO || pol == SCHED_RR ? sp.sched_priority : 0;
}

/* Waits (lock held, released while sleeping) until something may have changed or
 * `deadline` (CLOCK_MONOTONIC ns, 0 = none) passes. Returns 0 to retry the
 * operation, -ETIMEDOUT, -EINTR, or the dead error.
 *
 * The thread in poll() is the one the broker's notification wakes first; the
 * others hear from it. So the role goes to the highest-priority waiter: one that
 * finds a lower-priority poller asks it to step down (want_prio, wake_fd) and takes
 * over, and nobody below want_prio takes it meanwhile. Otherwise a real-time
 * receiver would wait for a bulk thread to be scheduled before it learns of its
 * data. `prio` is thread_prio() of the caller; the blocking call ends with
 * wait_done(). */
static int wait_locked(struct rtvio_cell *c, uint64_t deadline, int prio)
{
	uint64_t now = rtvio_now_ns(), until = deadline, gvd;
	int rc;

	if (c->dead)
		return -ECONNRESET;
	if (c->interrupted)
		return -EINTR;
	if (deadline && now >= deadline)
		return -ETIMEDOUT;
	if (c->more) {
		/* Notifications are still off: look again instead of sleeping. */
		pump(c);
		return c->dead ? -ECONNRESET : 0;
	}
	/* gvsock's own timeouts (connect, close linger) need a gv_process on time. */
	gvd = gv_next_deadline(c->stack);
	if (gvd != UINT64_MAX && (!until || gvd < until))
		until = gvd;

	if (!c->poller && prio >= c->want_prio) {
		struct pollfd p[VHU_VSOCK_QUEUES + 2];
		int n = 0, ms = -1;

		c->poller = true;
		c->poller_prio = prio;
		if (c->want_prio <= prio)
			c->want_prio = -1;
		for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
			p[n++] = (struct pollfd){ .fd = c->call[q], .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = c->sock, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = c->wake_fd, .events = POLLIN };
		if (until) {
			uint64_t left = until > now ? until - now : 0;

			/* Round up so that we never wake just before the deadline. */
			ms = (int)((left + 999999u) / 1000000u);
			if ((uint64_t)ms > 3600000u)
				ms = 3600000;
		}
		pthread_mutex_unlock(&c->lock);
		rc = poll(p, (nfds_t)n, ms);
		pthread_mutex_lock(&c->lock);
		c->poller = false;
		if (rc > 0) {
			for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
				if (p[q].revents)
					drain_eventfd(c->call[q]);
			if (p[VHU_VSOCK_QUEUES].revents)
				check_socket(c);
			if (p[VHU_VSOCK_QUEUES + 1].revents) {
				drain_eventfd(c->wake_fd);
				c->wake_written = false;
			}
		}
		pump(c);
		/* Whatever arrived may be for a follower; and one of them must take over
		 * polling if we are done. */
		pthread_cond_broadcast(&c->cond);
	} else {
		struct timespec ts;

		if (c->poller && prio > c->poller_prio) {
			uint64_t one = 1;

			if (prio > c->want_prio)
				c->want_prio = prio;
			if (!c->wake_written && write(c->wake_fd, &one, sizeof(one)) == sizeof(one))
				c->wake_written = true;
		}
		if (until) {
			ts.tv_sec = (time_t)(until / 1000000000u);
			ts.tv_nsec = (long)(until % 1000000000u);
			pthread_cond_timedwait(&c->cond, &c->lock, &ts);
		} else {
			pthread_cond_wait(&c->cond, &c->lock);
		}
		pump(c);
	}
	if (c->dead)
		return -ECONNRESET;
	if (c->interrupted)
		return -EINTR;
	return 0;
}

/* End of a blocking call: a claim on the poller role it made is void now. */
static void wait_done(struct rtvio_cell *c, int prio)
{
	if (c->want_prio >= 0 && c->want_prio == prio) {
		c->want_prio = -1;
		pthread_cond_broadcast(&c->cond);
	}
}

static uint64_t deadline_of(int timeout_ms)
{
	if (timeout_ms <= 0)
		return 0;
	return rtvio_now_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* ---- Opening ------------------------------------------------------------------ */

static int attach(const char *path, int wait_ms, char *err, size_t errlen)
{
	uint64_t until = rtvio_now_ns() + (uint64_t)(wait_ms > 0 ? wait_ms : 0) * 1000000u;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		set_err(err, errlen, "broker socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			e = -errno;
			set_err(err, errlen, "socket: %s", strerror(errno));
			return e;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		e = -errno;
		close(fd);
		/* The broker may still be starting: its socket absent or not listening. */
		if ((e != -ENOENT && e != -ECONNREFUSED) || rtvio_now_ns() >= until) {
			set_err(err, errlen, "no broker at %s: %s", path, strerror(-e));
			return e;
		}
		struct timespec ts = { 0, 20 * 1000000 };

		nanosleep(&ts, NULL);
	}
}

/* vhost_front's hook between SET_MEM_TABLE and the rings: we now know our CID and
 * the features, so the stack can lay out and post its buffers. */
static int init_stack(void *arg, const struct vhost_front_result *r)
{
	struct rtvio_cell *c = arg;
	size_t need;
	int rc;

	c->cid = r->cid;
	c->features = r->features;
	c->gcfg.cid = r->cid;
	c->gcfg.seqpacket = r->features & (1ull << VHU_VSOCK_F_SEQPACKET);
	c->gcfg.event_idx = r->features & (1ull << VHU_F_EVENT_IDX);
	need = gv_stack_mem_size(&c->gcfg);
	if (!need)
		return -EINVAL;
	/* Rounded up so aligned_alloc's size is a multiple of the alignment. */
	need = (need + 63u) & ~(size_t)63u;
	c->stack_mem = aligned_alloc(64, need);
	if (!c->stack_mem)
		return -ENOMEM;
	memset(c->stack_mem, 0, need);
	c->stack_mem_size = need;
	rc = gv_stack_init(&c->gcfg, c->stack_mem, need, &c->stack);
	return rc;
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

static const char *handshake_why(int rc)
{
	switch (rc) {
	case -ENOTSUP: return "the broker lacks a feature a cell needs";
	case -EPROTO: return "the broker's reply does not follow the vhost-user protocol";
	case -ETIMEDOUT: return "the broker did not answer in time";
	case -ECONNRESET:
	/* The broker has a socket only for configured cells, so a close during set-up
	 * is nearly always the one-front-end-per-cell rule; the other causes (a
	 * message it could not take, the broker stopping) are in its log. */
	case -EPIPE: return "the broker closed the connection (is another front end already "
			    "attached as this cell? if not, the broker's log says why)";
	default: return strerror(-rc);
	}
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
		set_err(err, errlen, "region of %zu bytes %s", region,
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
		set_err(err, errlen, "memfd of %zu bytes: %s", region, strerror(errno));
		return rc;
	}
	c->region = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_SHARED, c->memfd, 0);
	if (c->region == MAP_FAILED) {
		c->region = NULL;
		rc = -errno;
		set_err(err, errlen, "mapping the region: %s", strerror(errno));
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
			set_err(err, errlen, "eventfd: %s", strerror(errno));
			return rc;
		}
	}
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->loop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->wake_fd < 0 || c->loop_fd < 0 || c->epfd < 0) {
		rc = -errno;
		set_err(err, errlen, "eventfd/epoll: %s", strerror(errno));
		return rc;
	}
	return 0;
}

/* What gvsock needs but the CID and features, which init_stack adds during the
 * handshake. */
static void cell_gv_config(struct rtvio_cell *c, const struct rtvio_cell_opts *opts)
{
	c->ops.kick = op_kick;
	c->ops.now_ns = op_now;
	c->ops.wake = op_wake;
	c->gcfg.region = c->region;
	c->gcfg.region_dev = RTVIO_CELL_GUEST_BASE;
	c->gcfg.region_size = c->region_size;
	c->gcfg.layout = c->layout;
	c->gcfg.max_sockets = opts->max_sockets ? opts->max_sockets : DEFAULT_MAX_SOCKETS;
	c->gcfg.rcvbuf = opts->rcvbuf ? opts->rcvbuf : DEFAULT_RCVBUF;
	c->gcfg.connect_timeout_ns = opts->connect_timeout_ns;
	c->gcfg.ops = &c->ops;
	c->gcfg.ctx = c;
}

/* The vhost-user set-up: the region, the features and where both rings are. */
static void cell_front_setup(struct rtvio_cell *c, struct vhost_front_setup *vs)
{
	vs->mem_fd = c->memfd;
	vs->mem_size = c->region_size;
	vs->guest_addr = RTVIO_CELL_GUEST_BASE;
	vs->user_addr = (uint64_t)(uintptr_t)c->region;
	vs->want_features = WANT_FEATURES;
	vs->need_features = NEED_FEATURES;
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++) {
		const bool rx = q == GV_QUEUE_RX;

		vs->q[q].num = c->layout.queue_size;
		vs->q[q].desc = vs->user_addr + (rx ? c->layout.rx_desc : c->layout.tx_desc);
		vs->q[q].avail = vs->user_addr + (rx ? c->layout.rx_avail : c->layout.tx_avail);
		vs->q[q].used = vs->user_addr + (rx ? c->layout.rx_used : c->layout.tx_used);
		vs->q[q].kick_fd = c->kick[q];
		vs->q[q].call_fd = c->call[q];
	}
	vs->before_rings = init_stack;
	vs->arg = c;
}

/* Connects to the broker's socket for this cell and runs the vhost-user handshake
 * (init_stack builds the stack half-way through); the socket is non-blocking after. */
static int cell_attach(struct rtvio_cell *c, const char *socket_path,
		       const struct rtvio_cell_opts *opts, char *err, size_t errlen)
{
	struct vhost_front_setup vs = { 0 };
	struct vhost_front_result vr;
	struct timeval tv;
	int rc = attach(socket_path, opts->attach_wait_ms, err, errlen);

	if (rc < 0)
		return rc;
	c->sock = rc;
	/* Bounds a broker that stalls half-way through a reply too. */
	vs.timeout_ms = opts->handshake_timeout_ms ? opts->handshake_timeout_ms
						   : DEFAULT_HANDSHAKE_MS;
	tv.tv_sec = vs.timeout_ms / 1000;
	tv.tv_usec = (vs.timeout_ms % 1000) * 1000;
	setsockopt(c->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	cell_front_setup(c, &vs);
	rc = vhost_front_handshake(c->sock, &vs, &vr);
	if (rc) {
		set_err(err, errlen, "vhost-user handshake on %s failed: %s", socket_path,
			handshake_why(rc));
		return rc;
	}
	if (fcntl(c->sock, F_SETFL, fcntl(c->sock, F_GETFL) | O_NONBLOCK) < 0) {
		rc = -errno;
		set_err(err, errlen, "fcntl: %s", strerror(errno));
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

			set_err(err, errlen, "epoll_ctl: %s", strerror(errno));
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
		set_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	rc = cell_region(c, region, opts, err, errlen);
	if (!rc)
		rc = cell_eventfds(c, err, errlen);
	if (!rc) {
		cell_gv_config(c, opts);
		rc = cell_attach(c, socket_path, opts, err, errlen);
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

int rtvio_cell_error(struct rtvio_cell *c)
{
	int e;

	pthread_mutex_lock(&c->lock);
	e = c->dead;
	pthread_mutex_unlock(&c->lock);
	return e;
}

int rtvio_cell_fd(struct rtvio_cell *c)
{
	pthread_mutex_lock(&c->lock);
	c->fd_used = true;
	pthread_mutex_unlock(&c->lock);
	return c->epfd;
}

int rtvio_cell_process(struct rtvio_cell *c)
{
	int e;

	pthread_mutex_lock(&c->lock);
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		drain_eventfd(c->call[q]);
	drain_eventfd(c->loop_fd);
	c->loop_written = false;
	check_socket(c);
	c->in_process = true;
	pump(c);
	c->in_process = false;
	wake_others(c, true);
	e = c->dead;
	pthread_mutex_unlock(&c->lock);
	return e;
}

void rtvio_cell_interrupt(struct rtvio_cell *c)
{
	uint64_t one = 1;

	pthread_mutex_lock(&c->lock);
	c->interrupted = true;
	pthread_cond_broadcast(&c->cond);
	if (write(c->wake_fd, &one, sizeof(one)) == sizeof(one))
		c->wake_written = true;
	pthread_mutex_unlock(&c->lock);
}

int rtvio_cell_poller_prio(struct rtvio_cell *c)
{
	int p;

	pthread_mutex_lock(&c->lock);
	p = c->poller ? c->poller_prio : -1;
	pthread_mutex_unlock(&c->lock);
	return p;
}

void rtvio_cell_stats(struct rtvio_cell *c, struct gv_stats *out)
{
	pthread_mutex_lock(&c->lock);
	gv_get_stats(c->stack, out);
	pthread_mutex_unlock(&c->lock);
}

/* ---- Sockets ------------------------------------------------------------------ */

/* Short calls: take the lock and refuse on a dead cell ... */
static int enter(struct rtvio_cell *c)
{
	pthread_mutex_lock(&c->lock);
	return c->dead ? -ECONNRESET : 0;
}

/* ... and on the way out, tell waiting threads when this call changed a socket's
 * state in a way only we know about (a close, a shutdown); news from the broker
 * reaches them through gvsock's wake hook and the call eventfds instead. */
static int leave(struct rtvio_cell *c, int rc, bool changed)
{
	if (changed)
		wake_waiters(c);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int rtvio_socket(struct rtvio_cell *c, unsigned int type)
{
	int rc = enter(c);

	if (!rc)
		rc = gv_socket(c->stack, type);
	return leave(c, rc, false);
}

int rtvio_bind(struct rtvio_cell *c, int id, uint32_t port)
{
	int rc = enter(c);

	if (!rc)
		rc = gv_bind(c->stack, id, port);
	return leave(c, rc, false);
}

int rtvio_listen(struct rtvio_cell *c, int id, uint32_t port, uint32_t backlog)
{
	int rc = enter(c);

	if (!rc)
		rc = gv_listen(c->stack, id, port, backlog);
	return leave(c, rc, false);
}

int rtvio_shutdown(struct rtvio_cell *c, int id, unsigned int how)
{
	int rc = enter(c);

	if (!rc)
		rc = gv_shutdown(c->stack, id, how);
	return leave(c, rc, true);
}

int rtvio_max_message(struct rtvio_cell *c, int id)
{
	int rc = enter(c);

	if (!rc)
		rc = gv_max_message(c->stack, id);
	return leave(c, rc, false);
}

int rtvio_sock_error(struct rtvio_cell *c, int id)
{
	int rc = enter(c);

	if (!rc)
		rc = gv_sock_error(c->stack, id);
	return leave(c, rc, false);
}

int rtvio_close(struct rtvio_cell *c, int id)
{
	int rc;

	/* Even on a dead cell the id must become free. */
	pthread_mutex_lock(&c->lock);
	rc = gv_close(c->stack, id);
	return leave(c, rc, true);
}

unsigned int rtvio_poll_events(struct rtvio_cell *c, int id)
{
	unsigned int ev;

	pthread_mutex_lock(&c->lock);
	ev = c->dead ? GV_POLLERR | GV_POLLHUP : gv_poll_events(c->stack, id);
	pthread_mutex_unlock(&c->lock);
	return ev;
}

int rtvio_connect(struct rtvio_cell *c, int id, uint64_t cid, uint32_t port, int timeout_ms)
{
	uint64_t deadline = deadline_of(timeout_ms);
	int prio = timeout_ms ? thread_prio() : 0;
	int rc;

	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		rc = -ECONNRESET;
		goto out;
	}
	rc = gv_connect(c->stack, id, cid, port);
	if (rc != -EINPROGRESS || timeout_ms == 0)
		goto out;
	c->waiters++;
	for (;;) {
		pump(c);
		if (!c->dead && !gv_sock_connecting(c->stack, id)) {
			/* Answered: refused, timed out or reset (the pending error), or
			 * connected, even when the peer left no room to write or has
			 * already shut the connection down again; the next calls say so. */
			rc = gv_sock_error(c->stack, id);
			break;
		}
		rc = wait_locked(c, deadline, prio);
		if (rc)
			break;
	}
	wait_done(c, prio);
	c->waiters--;
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int rtvio_accept(struct rtvio_cell *c, int id, uint64_t *peer_cid, uint32_t *peer_port,
		 int timeout_ms)
{
	uint64_t deadline = deadline_of(timeout_ms);
	int prio = timeout_ms ? thread_prio() : 0;
	int rc;

	pthread_mutex_lock(&c->lock);
	c->waiters++;
	for (;;) {
		if (c->dead) {
			rc = -ECONNRESET;
			break;
		}
		pump(c);
		rc = gv_accept(c->stack, id, peer_cid, peer_port);
		if (rc != -EAGAIN || timeout_ms == 0)
			break;
		rc = wait_locked(c, deadline, prio);
		if (rc)
			break;
	}
	wait_done(c, prio);
	c->waiters--;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

ssize_t rtvio_send(struct rtvio_cell *c, int id, const void *buf, size_t len,
		   unsigned int flags, int timeout_ms)
{
	uint64_t deadline = deadline_of(timeout_ms);
	int prio = timeout_ms ? thread_prio() : 0;
	const uint8_t *p = buf;
	size_t done = 0;
	int rc;

	if (len > INT32_MAX)
		len = INT32_MAX;
	pthread_mutex_lock(&c->lock);
	c->waiters++;
	for (bool pumped = false;;) {
		if (c->dead) {
			rc = -ECONNRESET;
			break;
		}
		rc = gv_send(c->stack, id, p + done, len - done, flags & RTVIO_MSG_EOR);
		if (rc > 0) {
			done += (size_t)rc;
			pumped = false;
			/* A SEQPACKET send is all or nothing; a STREAM one may be partial. */
			if (done >= len)
				break;
			continue;
		}
		if (rc != -EAGAIN)
			break;
		/* Credit and TX slots come back with the broker's completions. */
		if (!pumped) {
			pump(c);
			pumped = true;
			continue;
		}
		if (timeout_ms == 0)
			break;
		rc = wait_locked(c, deadline, prio);
		if (rc)
			break;
		pumped = true;
	}
	wait_done(c, prio);
	c->waiters--;
	pthread_mutex_unlock(&c->lock);
	if (done)
		return (ssize_t)done;
	return rc;
}

ssize_t rtvio_recv(struct rtvio_cell *c, int id, void *buf, size_t len, unsigned int flags,
		   unsigned int *out_flags, int timeout_ms)
{
	uint64_t deadline = deadline_of(timeout_ms);
	int prio = timeout_ms ? thread_prio() : 0;
	int rc;

	pthread_mutex_lock(&c->lock);
	c->waiters++;
	for (;;) {
		/* Data already delivered stays readable even after the broker is gone. */
		rc = gv_recv(c->stack, id, buf, len, flags, out_flags);
		if (rc != -EAGAIN)
			break;
		if (c->dead) {
			rc = -ECONNRESET;
			break;
		}
		pump(c);
		rc = gv_recv(c->stack, id, buf, len, flags, out_flags);
		if (rc != -EAGAIN || timeout_ms == 0)
			break;
		rc = wait_locked(c, deadline, prio);
		if (rc)
			break;
	}
	wait_done(c, prio);
	c->waiters--;
	pthread_mutex_unlock(&c->lock);
	return rc;
}
