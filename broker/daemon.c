/* The broker daemon: the cells' vhost-user back ends and their rings, the data-plane
 * hooks, and the event loop (daemon_setup.c opens and closes it all, daemon_ctl.c
 * serves the control socket). See daemon.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "clock.h"
#include "daemon_int.h"
#include "live.h"
#include "pmqos.h"
#include "stat_json.h"

/* ---- data-plane hooks (called inside dp_run) ------------------------------------ */

/* The signalling context of the data plane's notifications: the loop's own with one
 * core; with several, for the control path's (under W's write side), one of their
 * own; each core signals through its own (daemon_hook_notify_core). */
static struct evsig *daemon_dp_evsig(struct broker *b)
{
	return b->multicore ? &b->dp_evsig : &b->evsig;
}

/* Never write(2): the cell shares the file's flags and counter and could make the
 * write sleep (evsig.h). A cell that saturates its counter only confuses itself. */
static void notify_via(struct broker *b, struct evsig *s, unsigned cell, unsigned queue)
{
	struct cell *c;

	if (cell >= b->ncells || queue >= VHU_VSOCK_QUEUES)
		return;
	c = &b->cells[cell];
	if (c->vhu.ring[queue].call_fd < 0)
		return;
	evsig_queue(s, c->vhu.ring[queue].call_fd);
	c->notified = true;
	b->any_notified = true;
}

void daemon_hook_notify(void *ctx, unsigned cell, unsigned queue)
{
	struct broker *b = ctx;

	notify_via(b, daemon_dp_evsig(b), cell, queue);
}

/* From data-plane core `core`'s thread, outside the data plane's mutex: the core's
 * own context, which no other thread touches. */
void daemon_hook_notify_core(void *ctx, unsigned core, unsigned cell, unsigned queue)
{
	struct broker *b = ctx;

	if (core < RTVIO_MAX_BROKER_CORES)
		notify_via(b, &b->dp_core_evsig[core], cell, queue);
}

/* The data plane's batch of notifications is complete: one system call for all. */
void daemon_hook_notify_flush(void *ctx)
{
	struct broker *b = ctx;

	evsig_flush(daemon_dp_evsig(b));
}

void daemon_hook_notify_flush_core(void *ctx, unsigned core)
{
	struct broker *b = ctx;

	if (core < RTVIO_MAX_BROKER_CORES)
		evsig_flush(&b->dp_core_evsig[core]);
}

void daemon_hook_conn_limit(void *ctx, unsigned cell, uint32_t limit, uint64_t count)
{
	struct broker *b = ctx;

	/* Logged at 1, 2, 4, 8... refusals: a cell cannot flood the log. */
	if (cell < b->ncells && !(count & (count - 1)))
		CLOG(&b->cells[cell], "connection REQUEST refused: the cell has its %" PRIu32
		     " connections open (its `connections` limit; %" PRIu64 " refused so far)",
		     limit, count);
}

void daemon_hook_broken(void *ctx, unsigned cell, int err)
{
	struct broker *b = ctx;

	if (cell >= b->ncells)
		return;
	/* Cut off after dp_run returns: the data plane is in the middle of a step. */
	b->cells[cell].broken_pending = true;
	b->cells[cell].broken_err = err;
	b->any_broken = true;
}

/* A data-plane core left work for the loop thread (dp_run): end its sleep. The
 * broker's own eventfd, never a cell's: the write cannot sleep. */
void daemon_hook_wake(void *ctx)
{
	struct broker *b = ctx;
	uint64_t one = 1;

	if (write(b->wake_fd, &one, sizeof(one)) < 0) {
		/* Counter full: the loop is already due to wake up. */
	}
}

/* ---- vhost-user device callbacks -------------------------------------------------- */

static int dev_start(void *ctx, struct vhu_backend *v)
{
	struct cell *c = ctx;
	int rc;

	vhu_backend_mem(v, c->mem);
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++) {
		struct vq_ring ring = {
			.num = v->ring[q].num,
			.desc = v->ring[q].desc,
			.avail = v->ring[q].avail,
			.used = v->ring[q].used,
		};

		rc = vq_device_init(&c->vq[q], &ring, c->mem, v->nregions, c->inflight[q],
				    v->features, v->ring[q].base);
		if (rc < 0)
			return rc;
	}
	rc = dp_attach(c->br->dp, c->idx, &c->vq[DP_QUEUE_RX], &c->vq[DP_QUEUE_TX]);
	if (rc < 0)
		return rc;
	if (c->br->opts.verbose)
		CLOG(c, "attached to the data plane");
	return 0;
}

/* Returns every chain the data plane popped and forgot, as used with length 0, so
 * that a device restarted from last_avail (a new memory table, GET_VRING_BASE and
 * SET_VRING_BASE) agrees with the driver about which buffers it still holds. Drivers
 * drop a zero-length RX buffer and repost it; a TX chain's length is ignored. A
 * broken ring is left alone. */
static void return_inflight(struct cell *c, unsigned int q)
{
	struct vq_device *vq = &c->vq[q];
	int fd = c->vhu.ring[q].call_fd;

	if (vq_device_broken(vq) || !vq_device_inflight(vq))
		return;
	for (unsigned int w = 0; w < VQ_INFLIGHT_WORDS(vq->ring.num); w++) {
		uint64_t bits = c->inflight[q][w];

		while (bits) {
			unsigned int b = (unsigned int)__builtin_ctzll(bits);

			bits &= bits - 1;
			if (vq_device_push(vq, (uint16_t)(w * 64u + b), 0) < 0)
				return;
		}
	}
	if (fd >= 0 && vq_device_should_notify(vq))
		evsig_signal(&c->br->evsig, fd);
}

static void dev_stop(void *ctx, struct vhu_backend *v)
{
	struct cell *c = ctx;

	/* The data plane forgets the cell's in-flight chains and resets its connections
	 * before the rings or the memory change under it; the memory is still mapped
	 * here (it is unmapped only after this returns). */
	dp_detach(c->br->dp, c->idx);
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++) {
		/* Memory the cell truncated is not written again (each access would be
		 * another SIGBUS). */
		if (!c->vhu.faulted)
			return_inflight(c, q);
		v->ring[q].base = c->vq[q].last_avail;
	}
	if (c->br->opts.verbose)
		CLOG(c, "detached from the data plane");
}

/* ---- epoll bookkeeping -------------------------------------------------------------- */

static int ep_add_events(struct broker *b, int fd, uint32_t events, struct ev_src *src)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	return epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int daemon_ep_add(struct broker *b, int fd, struct ev_src *src)
{
	return ep_add_events(b, fd, EPOLLIN, src);
}

void daemon_ep_del(struct broker *b, int fd)
{
	if (fd >= 0)
		epoll_ctl(b->ep, EPOLL_CTL_DEL, fd, NULL);
}

/* Several cores: the data plane's write gate holds the loop thread until `until`
 * (dp_mc.c, mc_write_gate). The kicks still reach the cores meanwhile (from the
 * kick descriptors' own epoll set, which sees every kick the loop's does: the loop
 * relays it again later, which only wakes a core that is awake), so that a
 * sender's packets are seen as soon as without the gate; the loop's other work
 * waits. Returns early only if that set cannot be waited on; the gate then sleeps. */
void daemon_hook_gate_wait(void *ctx, uint64_t until)
{
	struct broker *b = ctx;
	struct epoll_event evs[MAX_EVENTS];

	for (uint64_t now = rtvio_now_ns(); b->kick_ep >= 0 && now < until;
	     now = rtvio_now_ns()) {
		struct timespec ts = rtvio_ns_to_timespec(until - now);
		int n = epoll_pwait2(b->kick_ep, evs, MAX_EVENTS, &ts, NULL);

		if (n < 0 && errno != EINTR)
			return;
		for (int i = 0; i < n; i++) {
			const struct ev_src *s = evs[i].data.ptr;

			dp_kick(b->dp, s->cell, s->queue);
		}
	}
}

/* The kick descriptor of queue q becomes fd: called by the back end while the old one
 * is still open, so that its registration can go (the front end keeps the same file
 * open, and epoll would go on reporting it under this queue). poll = no only: a
 * polling broker never waits for kicks.
 *
 * Edge-triggered, and never read: an eventfd signals every write, and a kick is only
 * a wake-up. Reading it would block the loop if the cell cleared O_NONBLOCK on the
 * file (the flag is shared with the cell) and drained the counter first. */
static void dev_kick(void *ctx, struct vhu_backend *v, unsigned int q, int fd)
{
	struct cell *c = ctx;
	struct broker *b = c->br;
	int rc;

	(void)v;
	if (c->kick_reg[q] >= 0) {
		daemon_ep_del(b, c->kick_reg[q]);
		if (b->kick_ep >= 0)
			epoll_ctl(b->kick_ep, EPOLL_CTL_DEL, c->kick_reg[q], NULL);
	}
	c->kick_reg[q] = -1;
	if (b->cfg->broker.poll || fd < 0)
		return;
	rc = ep_add_events(b, fd, EPOLLIN | EPOLLET, &c->src_kick[q]);
	if (!rc && b->kick_ep >= 0) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.ptr = &c->src_kick[q] };

		if (epoll_ctl(b->kick_ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			rc = -errno;
			/* Not half registered: a stale kick would be reported later. */
			daemon_ep_del(b, fd);
		}
	}
	if (rc < 0)
		CLOG(c, "cannot watch the kick descriptor of queue %u: %s", q, strerror(-rc));
	else
		c->kick_reg[q] = fd;
}

const struct vhu_dev_ops daemon_dev_ops = { .start = dev_start, .stop = dev_stop,
					    .kick = dev_kick };

void daemon_cell_disconnect(struct cell *c, enum broker_cell_state next)
{
	struct broker *b = c->br;

	/* The kick registrations go through dev_kick as the back end closes them. */
	daemon_ep_del(b, c->vhu.sock);
	daemon_vhu_forget_conn(c);
	vhu_backend_disconnect(&c->vhu);
	c->state = next;
	c->broken_pending = false;
	c->drop_pending = false;
}

/* Undoing a connection that has a memory table mapped or a device running is a heavy
 * vhost-user operation (the data plane's detach, up to 8 munmap calls, the
 * descriptors closed): it takes a token of the cell's heavy bucket like a memory-table
 * change, so that a cell that gets itself cut off, or leaves, in a loop costs the loop
 * no more than its vhost_user_maps, which `rtvio analyze` charges. Without a token
 * the connection waits out of epoll (daemon_vhu_defer_drop). Memory the cell took away
 * is the exception: every access to it would fault, so it goes at once (a cell pays
 * a heavy token for each memory table it has mapped, so this too happens at most once
 * per token). */
void daemon_cell_drop(struct cell *c, enum broker_cell_state next, uint64_t now)
{
	bool light = !c->vhu.nregions && !c->vhu.running;

	if (c->drop_pending) {
		/* A cut-off overrides an end of file seen before. */
		if (next == BROKER_CELL_BROKEN)
			c->drop_next = c->state = next;
		if (!c->vhu.faulted)
			return;
	}
	if (light || c->vhu.faulted || daemon_vhu_take_heavy(c, now)) {
		daemon_cell_disconnect(c, c->drop_pending ? c->drop_next : next);
		return;
	}
	daemon_vhu_defer_drop(c, next, now);
}

/* The front end closed its end (what it still had to say no longer matters: its
 * state is dropped with the connection). */
static bool conn_hung_up(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

void daemon_cell_accept(struct cell *c, uint64_t now)
{
	struct broker *b = c->br;
	int fd;

	/* A front end that reconnects at once (QEMU restarting a device) may come in
	 * before the loop has read the old connection's end of file (or while that
	 * connection waits for its budget period, unread). */
	if (c->drop_pending)
		return;	/* the listening socket waits too (daemon_vhu_defer_drop) */
	if (c->vhu.sock >= 0 && conn_hung_up(c->vhu.sock)) {
		if (b->opts.verbose)
			CLOG(c, "front end gone (hung up; a new one is connecting)");
		daemon_cell_drop(c, BROKER_CELL_WAITING, now);
		if (c->drop_pending)
			return;
	}
	/* Attaching comes out of the cell's vhost-user budget like any message. */
	if (!daemon_vhu_accept(c, now))
		return;
	fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (c->vhu.sock >= 0) {
		/* The socket is the identity: one front end per cell at a time. */
		c->refused++;
		/* Logged at 1, 2, 4, 8... refusals: a local process cannot flood the log. */
		if (!(c->refused & (c->refused - 1)))
			CLOG(c, "second front end refused (one is already connected; %" PRIu64
				" so far)", c->refused);
		close(fd);
		return;
	}
	vhu_backend_connect(&c->vhu, fd);
	if (daemon_ep_add(b, fd, &c->src_conn) < 0) {
		CLOG(c, "cannot watch the connection: %s", strerror(errno));
		vhu_backend_disconnect(&c->vhu);
		return;
	}
	c->connects++;
	c->state = BROKER_CELL_CONNECTED;
	if (b->opts.verbose)
		CLOG(c, "front end connected");
}

void daemon_cell_service(struct cell *c, uint64_t now)
{
	int rc = daemon_vhu_service(c, now);

	if (rc == -EAGAIN) {
		/* Replies are sent with MSG_DONTWAIT: waiting would hand the loop to it. */
		CLOG(c, "does not read its vhost-user replies (socket buffer full): cut off");
		daemon_cell_drop(c, BROKER_CELL_BROKEN, now);
		return;
	}
	if (rc < 0) {
		if (c->br->opts.verbose || rc != -ECONNRESET)
			CLOG(c, "front end gone (%s)", strerror(-rc));
		daemon_cell_drop(c, BROKER_CELL_WAITING, now);
	}
}

/* The SIGBUS guard caught an access to memory a cell took away (vhost_user.h). */
static void mark_faulted(struct broker *b)
{
	for (unsigned int i = 0; i < b->ncells; i++) {
		struct cell *c = &b->cells[i];

		/* faulted stays set until the memory is unmapped (vhu_backend_disconnect). */
		if (!c->vhu.faulted)
			continue;
		c->broken_pending = true;
		c->broken_err = -EFAULT;
		b->any_broken = true;
	}
}

static void cut_off_broken(struct broker *b, uint64_t now)
{
	b->any_broken = false;
	for (unsigned int i = 0; i < b->ncells; i++) {
		struct cell *c = &b->cells[i];

		if (!c->broken_pending)
			continue;
		c->broken_pending = false;
		/* Already cut off, its connection waiting for a heavy token to go. */
		if (c->drop_pending && !c->vhu.faulted)
			continue;
		if (c->broken_why)
			CLOG(c, "%s of queue %u: cut off", c->broken_why, c->broken_queue);
		else
			CLOG(c, "broke its ring or memory rules (%s): cut off",
			     strerror(-c->broken_err));
		c->broken_why = NULL;
		for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
			if (vq_device_broken(&c->vq[q]))
				vhu_backend_signal_err(&c->vhu, q);
		daemon_cell_drop(c, BROKER_CELL_BROKEN, now);
	}
}

/* A cell that cleared O_NONBLOCK on a call eventfd it shares with the broker breaks
 * the vhost-user contract. It cannot stall the broker (evsig.h), so this check is
 * policy, not protection: it runs at most every FLAG_CHECK_NS, on the cells notified
 * since (at most two fcntl each), never in the data path. */
static void check_call_flags(struct broker *b, uint64_t now)
{
	b->any_notified = false;
	b->flags_due = now + FLAG_CHECK_NS;
	for (unsigned int i = 0; i < b->ncells; i++) {
		struct cell *c = &b->cells[i];

		if (!c->notified)
			continue;
		c->notified = false;
		if (c->drop_pending)
			continue;	/* cut off already */
		for (unsigned int q = 0; q < VHU_VSOCK_QUEUES && !c->broken_pending; q++) {
			int fd = c->vhu.ring[q].call_fd;
			int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;

			if (fl < 0 || (fl & O_NONBLOCK))
				continue;
			c->broken_pending = true;
			c->broken_err = -EPERM;
			c->broken_why = "cleared O_NONBLOCK on the call eventfd";
			c->broken_queue = q;
			b->any_broken = true;
		}
	}
}

/* ---- the loop ------------------------------------------------------------------------- */

static void drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: the counter was already read. */
	}
}

/* Does some attached cell want its ring polled (kick "no fd")? Recomputed after
 * control-path events only, so the loop itself stays O(1) in the number of cells. */
void daemon_update_must_poll(struct broker *b)
{
	b->must_poll = false;
	for (unsigned int i = 0; i < b->ncells; i++) {
		const struct vhu_backend *v = &b->cells[i].vhu;

		if (v->running && (v->ring[0].kick_nofd || v->ring[1].kick_nofd))
			b->must_poll = true;
	}
}

/* An admission result: applied here, between data-plane runs; the parked client,
 * if still connected, gets its reply. */
static void admit_done(struct broker *b)
{
	uint64_t ticket = 0;
	json_t *r = admit_finish(b->adm, &ticket);

	if (!r)
		return;
	/* Flows toward the host added by the change get their listeners. */
	if (b->host)
		host_refresh(b->host);
	for (unsigned int i = 0; i < CTL_MAX_CLIENTS; i++) {
		if (b->ctl[i].fd >= 0 && b->ctl_ticket[i] == ticket) {
			daemon_ctl_client_after(b, i, ctl_client_reply(&b->ctl[i], r));
			return;
		}
	}
	json_decref(r);
}

/* The memory thread finished a job or a granule a core asked for: the devices that
 * waited for their memory (a process cell's table, a VM's rings) start, a cell whose
 * memory could not be faulted in is cut off, and the running VMs' chains that waited
 * for memory are looked at again. */
static void populated(struct broker *b)
{
	for (unsigned int i = 0; i < b->ncells; i++) {
		struct vhu_backend *v = &b->cells[i].vhu;

		if (v->sock < 0)
			continue;
		vhu_backend_populated(v);
		if (v->running && !v->seal)
			dp_mem_ready(b->dp, i);
	}
}

static void handle_event(struct broker *b, const struct epoll_event *ev, uint64_t now)
{
	const struct ev_src *s = ev->data.ptr;
	struct cell *c = s->kind <= SRC_KICK ? &b->cells[s->cell] : NULL;

	switch (s->kind) {
	case SRC_LISTEN:
		daemon_cell_accept(c, now);
		daemon_update_must_poll(b);
		break;
	case SRC_CONN:
		/* An event of this batch may be for a connection just set aside. */
		if (c->vhu.sock >= 0 && !c->drop_pending)
			daemon_cell_service(c, now);
		daemon_update_must_poll(b);
		break;
	case SRC_KICK:
		c->kicks++;
		dp_kick(b->dp, s->cell, s->queue);
		break;
	case SRC_CTL_LISTEN:
		daemon_ctl_accept(b);
		break;
	case SRC_CTL_CLIENT:
		daemon_ctl_client_event(b, s->slot);
		break;
	case SRC_SIGNAL: {
		struct signalfd_siginfo si;

		if (read(b->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si) && b->opts.verbose)
			fprintf(stderr, "rtvio broker: signal %u: shutting down\n", si.ssi_signo);
		atomic_store_explicit(&b->stop, true, memory_order_relaxed);
		break;
	}
	case SRC_WAKE:
		drain(b->wake_fd);
		break;
	case SRC_ADMIT:
		admit_done(b);
		daemon_update_must_poll(b);
		break;
	case SRC_HOST:
		/* host_step runs after every dp_run: the event only ends the sleep. */
		break;
	case SRC_POPULATE:
		vhu_pop_ack(&b->pop);
		populated(b);
		daemon_update_must_poll(b);
		break;
	}
}

/* With several cores, how long a cell's memory fault caught in a core thread may go
 * unnoticed by the loop (which cuts the cell off). */
#define MC_FAULT_CHECK_NS 10000000ull

/* How long the loop may sleep (poll = no), UINT64_MAX: until an event. The data
 * plane's next release, the polling of cells without kick fds, a control client
 * still owed a reply and the flag check of the cells just notified bound it. */
static uint64_t sleep_ns(struct broker *b, uint64_t now, uint64_t next)
{
	uint64_t due = daemon_ctl_expire(b, now);
	uint64_t wait = UINT64_MAX;

	if (next != 0)
		wait = next > now ? next - now : 0;
	if (b->must_poll && wait > BROKER_POLL_CHECK_NS)
		wait = BROKER_POLL_CHECK_NS;
	/* A fault the SIGBUS guard caught in a core thread wakes nobody: look often. */
	if (b->multicore && wait > MC_FAULT_CHECK_NS)
		wait = MC_FAULT_CHECK_NS;
	if (due && wait > (due > now ? due - now : 0))
		wait = due > now ? due - now : 0;
	if (b->any_notified && wait > (b->flags_due > now ? b->flags_due - now : 0))
		wait = b->flags_due > now ? b->flags_due - now : 0;
	/* The host endpoint's timeouts (a connect no cell answers) end on time. */
	if (b->host) {
		uint64_t hd = host_deadline(b->host);

		if (hd != UINT64_MAX && wait > (hd > now ? hd - now : 0))
			wait = hd > now ? hd - now : 0;
	}
	/* A socket paused for its vhost-user budget is watched again at its period's end. */
	if (b->vhu_any_paused && wait > (b->vhu_resume_due > now ? b->vhu_resume_due - now : 0))
		wait = b->vhu_resume_due > now ? b->vhu_resume_due - now : 0;
	return wait;
}

/* A busy-polling broker at SCHED_FIFO (or SCHED_RR) sleeps BROKER_POLL_GIVE_NS of every
 * BROKER_POLL_RUN_NS, when the data plane has nothing due. Linux gives ordinary
 * tasks on a cpu that a real-time task monopolises 50 ms of every second (the fair
 * server), in one piece: a broker stopped for 50 ms. Taking that share in slivers
 * of 60 µs (6 %) keeps the fair server idle; a packet that comes during one waits
 * at most that long. Not while work is ready or due within the pause. */
#define BROKER_POLL_RUN_NS 1000000ull
#define BROKER_POLL_GIVE_NS 60000ull

/* The poll loop's pause (see above), when one is due and nothing else is. */
static void poll_give(uint64_t now, uint64_t next, uint64_t *ran_from)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)BROKER_POLL_GIVE_NS };

	if (now - *ran_from < BROKER_POLL_RUN_NS ||
	    (next && next < now + BROKER_POLL_GIVE_NS))
		return;
	clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	*ran_from = rtvio_now_ns();
}

int broker_run(struct broker *b)
{
	struct epoll_event evs[MAX_EVENTS];
	bool poll_mode = b->cfg->broker.poll;
	/* Whoever made this thread real-time (broker_apply_rt, or its creator). */
	int policy = sched_getscheduler(0);
	bool give = poll_mode && (policy == SCHED_FIFO || policy == SCHED_RR);
	uint64_t last_check = 0, ran_from = rtvio_now_ns();

	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		uint64_t now = rtvio_now_ns();
		uint64_t next = dp_run(b->dp, now);
		struct timespec ts, *tsp = NULL;
		int n;

		/* Host sockets moved something: the data plane has work at once. */
		if (b->host && host_step(b->host)) {
			next = now;
			dp_wake_cores(b->dp);
		}
		/* Cells without kick fds: the cores look at their rings now and then. */
		if (b->multicore && b->must_poll)
			dp_wake_cores(b->dp);

		if (b->any_notified && now >= b->flags_due)
			check_call_flags(b, now);
		if (vhu_fault_pending) {
			/* Cleared before the scan: a fault during the scan is seen next time. */
			vhu_fault_pending = 0;
			mark_faulted(b);
		}
		if (b->any_broken) {
			cut_off_broken(b, now);
			daemon_update_must_poll(b);
		}
		if (b->vhu_any_paused && now >= b->vhu_resume_due)
			daemon_vhu_resume(b, now);
		if (poll_mode && !b->multicore) {
			/* Busy-poll: the sockets only every BROKER_POLL_CHECK_NS (with
			 * several cores, the cores poll and this thread sleeps). */
			if (give)
				poll_give(now, next, &ran_from);
			if (now - last_check < BROKER_POLL_CHECK_NS)
				continue;
			last_check = now;
			daemon_ctl_expire(b, now);
			ts.tv_sec = 0;
			ts.tv_nsec = 0;
			tsp = &ts;
		} else {
			uint64_t wait = sleep_ns(b, now, next);

			if (wait != UINT64_MAX) {
				ts.tv_sec = (time_t)(wait / 1000000000ull);
				ts.tv_nsec = (long)(wait % 1000000000ull);
				tsp = &ts;
			}
		}
		n = epoll_pwait2(b->ep, evs, MAX_EVENTS, tsp, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "rtvio broker: epoll: %s\n", strerror(errno));
			return -errno;
		}
		now = rtvio_now_ns();
		for (int i = 0; i < n; i++)
			handle_event(b, &evs[i], now);
	}
	return 0;
}

/* ---- introspection ---------------------------------------------------------------------- */

const struct rtvio_config *broker_config(const struct broker *b)
{
	return b->cfg;
}

struct dp *broker_dp(const struct broker *b)
{
	return b->dp;
}

unsigned broker_ncells(const struct broker *b)
{
	return b->ncells;
}

int broker_cell_info(const struct broker *b, unsigned cell, struct broker_cell_info *out)
{
	const struct cell *c;

	if (cell >= b->ncells)
		return -EINVAL;
	c = &b->cells[cell];
	out->name = b->cfg->cells[cell].name;
	out->cid = b->cfg->cells[cell].cid;
	out->state = c->state;
	out->running = c->vhu.running;
	out->connects = c->connects;
	out->refused = c->refused;
	out->kicks = c->kicks;
	out->broken_err = c->broken_err;
	out->vhu_deferred = c->vhu_deferred;
	return 0;
}

uint64_t broker_generation(const struct broker *b)
{
	return admit_generation(b->adm);
}

bool broker_cell_present(const struct broker *b, unsigned cell)
{
	return cell < b->ncells && !b->cfg->cells[cell].vacant;
}

uint64_t broker_uptime_ns(const struct broker *b)
{
	return rtvio_now_ns() - b->start_ns;
}
