/* The broker daemon: sockets, vhost-user back ends, the event loop, RT hygiene.
 * See daemon.h. */
#include "clock.h"
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
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

#include "admit.h"
#include "config.h"
#include "control.h"
#include "dataplane.h"
#include "evsig.h"
#include "host.h"
#include "live.h"
#include "pmqos.h"
#include "stat_json.h"
#include "vhost_user.h"
#include "virtq.h"

/* vhost-user messages handled per readiness event and cell: keeps a flooding front
 * end from holding the loop (the socket stays readable and is served again). */
#define VHU_BUDGET 32u
#define MAX_EVENTS 32
/* How often the call eventfds of the cells notified meanwhile are checked for
 * O_NONBLOCK (check_call_flags). */
#define FLAG_CHECK_NS 10000000ull

enum src_kind { SRC_LISTEN, SRC_CONN, SRC_KICK, SRC_CTL_LISTEN, SRC_CTL_CLIENT, SRC_SIGNAL,
		SRC_WAKE, SRC_ADMIT, SRC_HOST };

/* What an epoll event points at. */
struct ev_src {
	enum src_kind kind;
	unsigned int cell;  /* SRC_LISTEN, SRC_CONN, SRC_KICK */
	unsigned int queue; /* SRC_KICK */
	unsigned int slot;  /* SRC_CTL_CLIENT */
};

struct cell {
	struct broker *br;
	unsigned int idx;
	char path[RTVIO_PATH_MAX];
	int listen_fd;
	struct vhu_backend vhu;
	enum broker_cell_state state;
	uint64_t connects, refused;
	uint64_t kicks;                 /* kick events handled (poll = no) */
	bool broken_pending;
	int broken_err;
	const char *broken_why;         /* the cut-off's reason, NULL: ring or memory rules */
	unsigned int broken_queue;
	bool notified;                  /* signalled since the last check_call_flags */
	int kick_reg[VHU_VSOCK_QUEUES]; /* fd registered with epoll, -1 none */
	struct ev_src src_listen, src_conn, src_kick[VHU_VSOCK_QUEUES];
	/* Storage the running device uses (core's vq_device keeps pointers into it). */
	struct vq_mem_region mem[VHU_MAX_REGIONS];
	struct vq_device vq[VHU_VSOCK_QUEUES];
	uint64_t inflight[VHU_VSOCK_QUEUES][VQ_INFLIGHT_WORDS(VQ_MAX_SIZE)];
};

struct broker {
	const struct rtvio_config *cfg; /* &live */
	/* The configuration in force, in capacity slots (live.h); admit.c changes it. */
	struct rtvio_config live;
	struct admit *adm;
	struct ev_src src_admit;
	/* Which client a deferred change reply is for: a slot may be reused meanwhile. */
	uint64_t ctl_ticket[CTL_MAX_CLIENTS], next_ticket;
	unsigned int ctl_current;
	struct broker_opts opts;
	struct dp *dp;
	struct cell *cells;
	unsigned int ncells;
	int ep;
	int sig_fd, wake_fd;
	int qos_fd;	/* the PM QoS hold ([broker] pm_qos), -1 none */
	int ctl_fd;
	char ctl_path[RTVIO_PATH_MAX];
	struct ctl_client ctl[CTL_MAX_CLIENTS];
	struct ev_src src_ctl_listen, src_sig, src_wake, src_ctl[CTL_MAX_CLIENTS];
	sigset_t old_mask;
	bool mask_set;
	atomic_bool stop;
	uint64_t start_ns;
	bool any_broken;
	bool any_notified;      /* some cell's notified is set */
	uint64_t flags_due;     /* next check_call_flags */
	struct evsig evsig;     /* every eventfd a cell holds is signalled through it */
	bool must_poll; /* some running cell gave no kick fd: poll = no cannot sleep long */
	struct host *host;      /* the [host] cell's endpoint, NULL when none (host.h) */
	struct ev_src src_host;
};

/* Per-cell lines, under the cell's rate limit (a front end can provoke them). */
#define CLOG(c, ...) vhu_log(&(c)->vhu, __VA_ARGS__)

/* ---- data-plane hooks (called inside dp_run) ------------------------------------ */

/* Never write(2): the cell shares the file's flags and counter and could make the
 * write sleep (evsig.h). A cell that saturates its counter only confuses itself. */
static void hook_notify(void *ctx, unsigned cell, unsigned queue)
{
	struct broker *b = ctx;
	struct cell *c;

	if (cell >= b->ncells || queue >= VHU_VSOCK_QUEUES)
		return;
	c = &b->cells[cell];
	if (c->vhu.ring[queue].call_fd < 0)
		return;
	evsig_signal(&b->evsig, c->vhu.ring[queue].call_fd);
	c->notified = true;
	b->any_notified = true;
}

static void hook_conn_limit(void *ctx, unsigned cell, uint32_t limit, uint64_t count)
{
	struct broker *b = ctx;

	/* Logged at 1, 2, 4, 8... refusals: a cell cannot flood the log. */
	if (cell < b->ncells && !(count & (count - 1)))
		CLOG(&b->cells[cell], "connection REQUEST refused: the cell has its %" PRIu32
		     " connections open (its `connections` limit; %" PRIu64 " refused so far)",
		     limit, count);
}

static void hook_broken(void *ctx, unsigned cell, int err)
{
	struct broker *b = ctx;

	if (cell >= b->ncells)
		return;
	/* Cut off after dp_run returns: the data plane is in the middle of a step. */
	b->cells[cell].broken_pending = true;
	b->cells[cell].broken_err = err;
	b->any_broken = true;
}

/* ---- vhost-user device callbacks -------------------------------------------------- */

static int dev_start(void *ctx, struct vhu_backend *v)
{
	struct cell *c = ctx;
	int rc;

	for (unsigned int i = 0; i < v->nregions; i++) {
		c->mem[i].gpa = v->regions[i].guest_addr;
		c->mem[i].size = v->regions[i].size;
		c->mem[i].host = v->regions[i].host;
	}
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

static int ep_add(struct broker *b, int fd, struct ev_src *src)
{
	return ep_add_events(b, fd, EPOLLIN, src);
}

static void ep_del(struct broker *b, int fd)
{
	if (fd >= 0)
		epoll_ctl(b->ep, EPOLL_CTL_DEL, fd, NULL);
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
	if (c->kick_reg[q] >= 0)
		ep_del(b, c->kick_reg[q]);
	c->kick_reg[q] = -1;
	if (b->cfg->broker.poll || fd < 0)
		return;
	rc = ep_add_events(b, fd, EPOLLIN | EPOLLET, &c->src_kick[q]);
	if (rc < 0)
		CLOG(c, "cannot watch the kick descriptor of queue %u: %s", q, strerror(-rc));
	else
		c->kick_reg[q] = fd;
}

static const struct vhu_dev_ops dev_ops = { .start = dev_start, .stop = dev_stop,
					    .kick = dev_kick };

static void cell_disconnect(struct cell *c, enum broker_cell_state next)
{
	struct broker *b = c->br;

	/* The kick registrations go through dev_kick as the back end closes them. */
	ep_del(b, c->vhu.sock);
	vhu_backend_disconnect(&c->vhu);
	c->state = next;
	c->broken_pending = false;
}

/* The front end closed its end (what it still had to say no longer matters: its
 * state is dropped with the connection). */
static bool conn_hung_up(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

static void cell_accept(struct cell *c)
{
	struct broker *b = c->br;
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/* A front end that reconnects at once (QEMU restarting a device) may come in
	 * before the loop has read the old connection's end of file. */
	if (c->vhu.sock >= 0 && conn_hung_up(c->vhu.sock)) {
		if (b->opts.verbose)
			CLOG(c, "front end gone (hung up; a new one is connecting)");
		cell_disconnect(c, BROKER_CELL_WAITING);
	}
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
	if (ep_add(b, fd, &c->src_conn) < 0) {
		CLOG(c, "cannot watch the connection: %s", strerror(errno));
		vhu_backend_disconnect(&c->vhu);
		return;
	}
	c->connects++;
	c->state = BROKER_CELL_CONNECTED;
	if (b->opts.verbose)
		CLOG(c, "front end connected");
}

static void cell_service(struct cell *c)
{
	int rc = vhu_backend_service(&c->vhu, VHU_BUDGET);

	if (rc == -EAGAIN) {
		/* Replies are sent with MSG_DONTWAIT: waiting would hand the loop to it. */
		CLOG(c, "does not read its vhost-user replies (socket buffer full): cut off");
		cell_disconnect(c, BROKER_CELL_BROKEN);
		return;
	}
	if (rc < 0) {
		if (c->br->opts.verbose || rc != -ECONNRESET)
			CLOG(c, "front end gone (%s)", strerror(-rc));
		cell_disconnect(c, BROKER_CELL_WAITING);
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

static void cut_off_broken(struct broker *b)
{
	b->any_broken = false;
	for (unsigned int i = 0; i < b->ncells; i++) {
		struct cell *c = &b->cells[i];

		if (!c->broken_pending)
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
		cell_disconnect(c, BROKER_CELL_BROKEN);
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

/* ---- control socket ------------------------------------------------------------------ */

static json_t *stat_json(void *ctx)
{
	return broker_stat_json(ctx);
}

static void ctl_shutdown(void *ctx)
{
	broker_stop(ctx);
}

static char *ctl_config(void *ctx)
{
	struct broker *b = ctx;

	return live_dump(&b->live);
}

static json_t *ctl_change(void *ctx, json_t *req, bool *deferred)
{
	struct broker *b = ctx;

	return admit_request(b->adm, req, b->ctl_ticket[b->ctl_current], deferred);
}

static const struct ctl_ops ctl_ops = { .stat = stat_json, .shutdown = ctl_shutdown,
					.config = ctl_config, .change = ctl_change };

static void ctl_accept(struct broker *b)
{
	int fd = accept4(b->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	unsigned int slot = 0;

	if (fd < 0)
		return;
	/* A free slot, else the oldest client goes: clients that connect and never
	 * send cannot lock monitoring out. */
	for (unsigned int i = 0; i < CTL_MAX_CLIENTS; i++) {
		if (b->ctl[i].fd < 0) {
			slot = i;
			break;
		}
		if (b->ctl[i].since_ns < b->ctl[slot].since_ns)
			slot = i;
	}
	if (b->ctl[slot].fd >= 0) {
		ep_del(b, b->ctl[slot].fd);
		ctl_client_close(&b->ctl[slot]);
	}
	if (ep_add(b, fd, &b->src_ctl[slot]) < 0) {
		close(fd);
		return;
	}
	b->ctl[slot].fd = fd;
	b->ctl_ticket[slot] = ++b->next_ticket;
	b->ctl[slot].len = 0;
	b->ctl[slot].out_deadline_ns = 0;
	b->ctl[slot].since_ns = rtvio_now_ns();
}

static void ctl_drop(struct broker *b, struct ctl_client *c)
{
	ep_del(b, c->fd);
	ctl_client_close(c);
}

static void ctl_client_after(struct broker *b, unsigned int slot, int rc);

/* Reads the request, then writes the reply as the socket takes it: a large reply
 * (hundreds of kB with many flows) waits in the client's slot for EPOLLOUT rather
 * than the loop waiting for the client. */
static void ctl_client_event(struct broker *b, unsigned int slot)
{
	struct ctl_client *c = &b->ctl[slot];
	int rc;

	if (c->fd < 0)
		return; /* closed earlier in this batch of events */
	b->ctl_current = slot;
	rc = c->out ? ctl_client_flush(c) : ctl_client_service(c, &ctl_ops, b);
	ctl_client_after(b, slot, rc);
}

/* What a client's slot does next after rc (ctl_client_service, _flush, _reply). */
static void ctl_client_after(struct broker *b, unsigned int slot, int rc)
{
	struct ctl_client *c = &b->ctl[slot];

	if (rc == CTL_DEFERRED) {
		/* Parked until admit_finish: only a hang-up (always reported) wakes it. */
		struct epoll_event ev = { .events = 0, .data.ptr = &b->src_ctl[slot] };

		if (epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
			return;
	}
	if (rc == 0 || (rc == CTL_WRITING && c->out_deadline_ns))
		return;
	if (rc == CTL_WRITING) {
		/* From now on only writability matters: whatever else it sends is
		 * ignored, and a hang-up shows as EPOLLHUP/EPOLLERR, failing the send. */
		struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = &b->src_ctl[slot] };

		if (epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
			c->out_deadline_ns = rtvio_now_ns() + CTL_WRITE_TIMEOUT_NS;
			return;
		}
	}
	ctl_drop(b, c);
}

/* Drops the clients that have not taken their reply in time; returns the earliest
 * deadline of those still writing (0: none). At most CTL_MAX_CLIENTS checks. */
static uint64_t ctl_expire(struct broker *b, uint64_t now)
{
	uint64_t due = 0;

	for (unsigned int i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &b->ctl[i];

		if (c->fd < 0 || !c->out || !c->out_deadline_ns)
			continue;
		if (now >= c->out_deadline_ns) {
			if (b->opts.verbose)
				fprintf(stderr, "rtvio broker: control client dropped: it did "
					"not read its reply within %llu s\n",
					CTL_WRITE_TIMEOUT_NS / 1000000000ull);
			ctl_drop(b, c);
		} else if (!due || c->out_deadline_ns < due) {
			due = c->out_deadline_ns;
		}
	}
	return due;
}

/* ---- set-up and teardown --------------------------------------------------------------- */

const char *broker_cell_state_name(enum broker_cell_state s)
{
	switch (s) {
	case BROKER_CELL_WAITING:
		return "waiting";
	case BROKER_CELL_CONNECTED:
		return "connected";
	default:
		return "broken";
	}
}

/* mkdir -p with mode 0700 for what is created; an existing directory is kept. */
static int make_dir(const char *path, char *err, size_t errlen)
{
	char tmp[RTVIO_PATH_MAX];
	struct stat st;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
			return -errno;
		}
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create socket_dir %s: %s", tmp, strerror(errno));
		return -errno;
	}
	if (stat(tmp, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "socket_dir %s is not a directory", tmp);
		return -ENOTDIR;
	}
	return 0;
}

/* dst = dir/name+suffix into a sockaddr_un-sized buffer; false when it does not fit
 * (the config loader already refuses such paths). */
static bool join_path(char dst[RTVIO_PATH_MAX], const char *dir, const char *name,
		      const char *suffix)
{
	size_t a = strlen(dir), n = strlen(name), s = strlen(suffix);

	if (a + 1 + n + s + 1 > RTVIO_PATH_MAX)
		return false;
	memcpy(dst, dir, a);
	dst[a] = '/';
	memcpy(dst + a + 1, name, n);
	memcpy(dst + a + 1 + n, suffix, s + 1);
	return true;
}

/* Slot i as the configuration now describes it (a vacant slot gets its event
 * sources and closed descriptors only). */
static void cell_init_slot(struct broker *b, unsigned int i)
{
	const struct rtvio_cell_cfg *cc = &b->cfg->cells[i];
	struct cell *c = &b->cells[i];

	memset(c, 0, sizeof(*c));
	c->br = b;
	c->idx = i;
	c->listen_fd = -1;
	c->kick_reg[0] = c->kick_reg[1] = -1;
	c->src_listen = (struct ev_src){ .kind = SRC_LISTEN, .cell = i };
	c->src_conn = (struct ev_src){ .kind = SRC_CONN, .cell = i };
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		c->src_kick[q] = (struct ev_src){ .kind = SRC_KICK, .cell = i, .queue = q };
	vhu_backend_init(&c->vhu, cc->name, cc->cid, &dev_ops, c);
	c->vhu.verbose = b->opts.verbose;
	c->vhu.evsig = &b->evsig;
	c->vhu.prefault = !cc->vm;
	/* A cell maps no more than the configuration grants it. */
	c->vhu.max_mem = cc->vm ? cc->memory : cc->region;
	c->vhu.max_mem_key = cc->vm ? "memory" : "region";
}

/* The broker object with every descriptor closed (-1) and every event source named,
 * its cells' vhost-user back ends initialised from the configuration. */
static struct broker *broker_alloc(const struct rtvio_config *cfg, const struct broker_opts *opts)
{
	struct broker *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	/* The broker owns the live configuration from here on. */
	b->live = *cfg;
	b->cfg = &b->live;
	b->opts = *opts;
	b->ep = b->sig_fd = b->wake_fd = b->ctl_fd = b->qos_fd = -1;
	b->evsig.null_fd = -1;
	for (unsigned int i = 0; i < CTL_MAX_CLIENTS; i++) {
		b->ctl[i].fd = -1;
		b->src_ctl[i] = (struct ev_src){ .kind = SRC_CTL_CLIENT, .slot = i };
	}
	b->src_ctl_listen.kind = SRC_CTL_LISTEN;
	b->src_sig.kind = SRC_SIGNAL;
	b->src_wake.kind = SRC_WAKE;
	atomic_init(&b->stop, false);
	b->src_admit.kind = SRC_ADMIT;
	b->src_host.kind = SRC_HOST;
	b->ncells = (unsigned int)cfg->ncells;
	b->cells = calloc(b->ncells ? b->ncells : 1, sizeof(*b->cells));
	if (!b->cells)
		return b; /* the caller sees cells == NULL */
	for (unsigned int i = 0; i < b->ncells; i++)
		cell_init_slot(b, i);
	return b;
}

/* epoll, the wake eventfd, the signal descriptor, SIGPIPE ignored and the SIGBUS
 * guard. */
static int broker_open_events(struct broker *b, char *err, size_t errlen)
{
	sigset_t mask;
	int rc;

	rc = evsig_open(&b->evsig);
	if (rc < 0) {
		snprintf(err, errlen, "cannot set up eventfd signalling (Linux AIO): %s",
			 strerror(-rc));
		return rc;
	}
	b->ep = epoll_create1(EPOLL_CLOEXEC);
	b->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->ep < 0 || b->wake_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "epoll/eventfd: %s", strerror(errno));
		return rc;
	}
	/* SIGTERM/SIGINT arrive through a descriptor the loop already watches. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &mask, &b->old_mask) == 0)
		b->mask_set = true;
	b->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (b->sig_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		return rc;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = vhu_sigbus_install();
	if (rc < 0)
		snprintf(err, errlen, "cannot install the SIGBUS guard: %s", strerror(-rc));
	return rc;
}

/* Cell i's socket <socket_dir>/<cell>.sock, listening. */
static int cell_listen(struct broker *b, unsigned int i, char *err, size_t errlen)
{
	struct cell *c = &b->cells[i];
	const struct rtvio_config *cfg = b->cfg;
	int rc;

	if (!join_path(c->path, cfg->broker.socket_dir, cfg->cells[i].name, ".sock")) {
		snprintf(err, errlen, "socket path for cell %s too long", cfg->cells[i].name);
		return -ENAMETOOLONG;
	}
	rc = ctl_listen_unix(c->path, 4, err, errlen);
	if (rc < 0) {
		c->path[0] = '\0';
		return rc;
	}
	c->listen_fd = rc;
	return 0;
}

/* One listening socket per cell and the control socket in socket_dir, all of them
 * and the loop's own descriptors in epoll. */
static int broker_open_sockets(struct broker *b, char *err, size_t errlen)
{
	const struct rtvio_config *cfg = b->cfg;
	int rc = make_dir(cfg->broker.socket_dir, err, errlen);

	if (rc < 0)
		return rc;
	for (unsigned int i = 0; i < b->ncells; i++) {
		if (cfg->cells[i].vacant)
			continue;
		/* The host endpoint is driven by the broker itself: no vhost-user socket. */
		rc = cfg->cells[i].host ? host_open(cfg, i, b->dp, &b->host, err, errlen) :
					  cell_listen(b, i, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (!join_path(b->ctl_path, cfg->broker.socket_dir, CTL_SOCKET_NAME, "")) {
		snprintf(err, errlen, "control socket path too long");
		return -ENAMETOOLONG;
	}
	rc = ctl_listen_unix(b->ctl_path, 8, err, errlen);
	if (rc < 0) {
		b->ctl_path[0] = '\0';
		return rc;
	}
	b->ctl_fd = rc;
	rc = ep_add(b, b->sig_fd, &b->src_sig);
	if (!rc)
		rc = ep_add(b, b->wake_fd, &b->src_wake);
	if (!rc)
		rc = ep_add(b, b->ctl_fd, &b->src_ctl_listen);
	for (unsigned int i = 0; !rc && i < b->ncells; i++)
		if (b->cells[i].listen_fd >= 0)
			rc = ep_add(b, b->cells[i].listen_fd, &b->cells[i].src_listen);
	if (!rc)
		rc = ep_add(b, admit_fd(b->adm), &b->src_admit);
	if (!rc && b->host)
		rc = ep_add(b, host_fd(b->host), &b->src_host);
	if (rc < 0)
		snprintf(err, errlen, "epoll_ctl: %s", strerror(-rc));
	return rc;
}

static void update_must_poll(struct broker *b);
static void admit_cell_close(void *ctx, unsigned int slot);

/* A cell added at run time: its slot is filled in the configuration. */
static int admit_cell_open(void *ctx, unsigned int slot, char *err, size_t errlen)
{
	struct broker *b = ctx;
	struct cell *c = &b->cells[slot];
	int rc;

	cell_init_slot(b, slot);
	rc = cell_listen(b, slot, err, errlen);
	if (!rc)
		rc = ep_add(b, c->listen_fd, &c->src_listen);
	if (rc < 0)
		admit_cell_close(ctx, slot);
	return rc;
}

/* A cell leaving: its front end is cut off (the data plane resets its peers'
 * connections, its memory is unmapped) and its socket goes. */
static void admit_cell_close(void *ctx, unsigned int slot)
{
	struct broker *b = ctx;
	struct cell *c = &b->cells[slot];

	if (c->vhu.sock >= 0)
		cell_disconnect(c, BROKER_CELL_WAITING);
	if (c->listen_fd >= 0) {
		ep_del(b, c->listen_fd);
		close(c->listen_fd);
	}
	if (c->path[0])
		unlink(c->path);
	c->listen_fd = -1;
	c->path[0] = '\0';
	c->broken_pending = false;
	update_must_poll(b);
}

int broker_open(const struct rtvio_config *cfg, const struct broker_opts *opts,
		struct broker **out, char *err, size_t errlen)
{
	struct dp_hooks hooks = { .notify = hook_notify, .broken = hook_broken,
				  .conn_limit = hook_conn_limit, .now = NULL };
	struct broker *b;
	int rc;

	static const struct admit_ops aops = { .cell_open = admit_cell_open,
					       .cell_close = admit_cell_close };
	struct rtvio_config live;

	*out = NULL;
	if (live_create(cfg, &live)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	b = broker_alloc(&live, opts);
	if (!b)
		rtvio_config_free(&live); /* else b owns it */
	if (!b || !b->cells) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	rc = dp_create(b->cfg, &hooks, b, &b->dp);
	if (rc < 0) {
		snprintf(err, errlen, "cannot create the data plane: %s", strerror(-rc));
		goto fail;
	}
	rc = admit_create(&b->live, b->dp, &aops, b, &b->adm);
	if (rc < 0) {
		snprintf(err, errlen, "cannot set up admission: %s", strerror(-rc));
		goto fail;
	}
	rc = broker_open_events(b, err, errlen);
	if (!rc)
		rc = broker_open_sockets(b, err, errlen);
	if (rc < 0)
		goto fail;
	b->start_ns = rtvio_now_ns();
	*out = b;
	return 0;
fail:
	broker_close(b);
	return rc;
}

void broker_apply_rt(struct broker *b)
{
	const struct rtvio_broker_cfg *bc = &b->cfg->broker;

	if (bc->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(bc->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			fprintf(stderr, "rtvio broker: warning: cannot pin to cpu %d (%s): running "
					"unpinned\n", bc->cpu, strerror(errno));
	}
	/* Idle cpus kept awake: a notification inside a step then wakes its cell
	 * without a halted cpu to rouse (the cost rtvio calibrate puts in
	 * packet_overhead assumes the same setting). */
	if (bc->pm_qos && b->qos_fd < 0) {
		b->qos_fd = pmqos_hold(0);
		if (b->qos_fd < 0)
			fprintf(stderr, "rtvio broker: warning: cannot keep idle cpus awake "
					"(/dev/cpu_dma_latency: %s): wake-ups cost more than with "
					"pm_qos held\n", strerror(-b->qos_fd));
	}
	if (bc->rt_priority > 0) {
		struct sched_param sp = { .sched_priority = bc->rt_priority };

		if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
			fprintf(stderr, "rtvio broker: warning: SCHED_FIFO %d not permitted (%s): "
					"running SCHED_OTHER\n", bc->rt_priority, strerror(errno));
	}
	/* Page faults in the data path would be unbounded stalls; region mappings made
	 * later are locked as they are created (MCL_FUTURE). Under a finite
	 * RLIMIT_MEMLOCK without privilege, MCL_FUTURE would make later mmap() and
	 * malloc() fail once the limit is reached, so only what exists now is locked. */
	{
		struct rlimit rl;
		int flags = MCL_CURRENT | MCL_FUTURE;

		if (geteuid() != 0 && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
		    rl.rlim_cur != RLIM_INFINITY) {
			flags = MCL_CURRENT;
			fprintf(stderr, "rtvio broker: warning: RLIMIT_MEMLOCK is finite: cell "
					"memory mapped later is not locked\n");
		}
		/* What exists now is faulted in and locked; mappings made later are
		 * locked page by page as they are touched (MCL_ONFAULT), so that mapping
		 * a QEMU guest's whole RAM costs nothing up front. Process cells' regions
		 * are still faulted in when mapped (vhu_backend.prefault). */
		if (mlockall(MCL_CURRENT) < 0 ||
		    ((flags & MCL_FUTURE) && mlockall(MCL_FUTURE | MCL_ONFAULT) < 0))
			fprintf(stderr, "rtvio broker: warning: mlockall failed (%s): memory may "
					"be paged\n", strerror(errno));
	}
}

void broker_stop(struct broker *b)
{
	uint64_t one = 1;

	atomic_store_explicit(&b->stop, true, memory_order_relaxed);
	if (write(b->wake_fd, &one, sizeof(one)) < 0) {
		/* Counter full: the loop is already due to wake up. */
	}
}

void broker_close(struct broker *b)
{
	if (!b)
		return;
	for (unsigned int i = 0; b->cells && i < b->ncells; i++) {
		struct cell *c = &b->cells[i];

		if (c->vhu.sock >= 0)
			cell_disconnect(c, BROKER_CELL_WAITING);
		if (c->listen_fd >= 0)
			close(c->listen_fd);
		if (c->path[0])
			unlink(c->path);
	}
	for (unsigned int i = 0; i < CTL_MAX_CLIENTS; i++)
		ctl_client_close(&b->ctl[i]);
	host_close(b->host);
	evsig_close(&b->evsig);
	pmqos_release(b->qos_fd);
	if (b->ctl_fd >= 0)
		close(b->ctl_fd);
	if (b->ctl_path[0])
		unlink(b->ctl_path);
	admit_destroy(b->adm);
	if (b->dp)
		dp_destroy(b->dp);
	rtvio_config_free(&b->live);
	if (b->sig_fd >= 0)
		close(b->sig_fd);
	if (b->mask_set)
		pthread_sigmask(SIG_SETMASK, &b->old_mask, NULL);
	if (b->wake_fd >= 0)
		close(b->wake_fd);
	if (b->ep >= 0)
		close(b->ep);
	free(b->cells);
	free(b);
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
static void update_must_poll(struct broker *b)
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
	for (unsigned int i = 0; i < CTL_MAX_CLIENTS; i++) {
		if (b->ctl[i].fd >= 0 && b->ctl_ticket[i] == ticket) {
			ctl_client_after(b, i, ctl_client_reply(&b->ctl[i], r));
			return;
		}
	}
	json_decref(r);
}

static void handle_event(struct broker *b, const struct epoll_event *ev)
{
	const struct ev_src *s = ev->data.ptr;
	struct cell *c = s->kind <= SRC_KICK ? &b->cells[s->cell] : NULL;

	switch (s->kind) {
	case SRC_LISTEN:
		cell_accept(c);
		update_must_poll(b);
		break;
	case SRC_CONN:
		if (c->vhu.sock >= 0)
			cell_service(c);
		update_must_poll(b);
		break;
	case SRC_KICK:
		c->kicks++;
		dp_kick(b->dp, s->cell, s->queue);
		break;
	case SRC_CTL_LISTEN:
		ctl_accept(b);
		break;
	case SRC_CTL_CLIENT:
		ctl_client_event(b, s->slot);
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
		update_must_poll(b);
		break;
	case SRC_HOST:
		/* host_step runs after every dp_run: the event only ends the sleep. */
		break;
	}
}

/* How long the loop may sleep (poll = no), UINT64_MAX: until an event. The data
 * plane's next release, the polling of cells without kick fds, a control client
 * still owed a reply and the flag check of the cells just notified bound it. */
static uint64_t sleep_ns(struct broker *b, uint64_t now, uint64_t next)
{
	uint64_t due = ctl_expire(b, now);
	uint64_t wait = UINT64_MAX;

	if (next != 0)
		wait = next > now ? next - now : 0;
	if (b->must_poll && wait > BROKER_POLL_CHECK_NS)
		wait = BROKER_POLL_CHECK_NS;
	if (due && wait > (due > now ? due - now : 0))
		wait = due > now ? due - now : 0;
	if (b->any_notified && wait > (b->flags_due > now ? b->flags_due - now : 0))
		wait = b->flags_due > now ? b->flags_due - now : 0;
	return wait;
}

int broker_run(struct broker *b)
{
	struct epoll_event evs[MAX_EVENTS];
	bool poll_mode = b->cfg->broker.poll;
	uint64_t last_check = 0;

	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		uint64_t now = rtvio_now_ns();
		uint64_t next = dp_run(b->dp, now);
		struct timespec ts, *tsp = NULL;
		int n;

		/* Host sockets moved something: the data plane has work at once. */
		if (b->host && host_step(b->host))
			next = now;

		if (b->any_notified && now >= b->flags_due)
			check_call_flags(b, now);
		if (vhu_fault_pending) {
			/* Cleared before the scan: a fault during the scan is seen next time. */
			vhu_fault_pending = 0;
			mark_faulted(b);
		}
		if (b->any_broken) {
			cut_off_broken(b);
			update_must_poll(b);
		}
		if (poll_mode) {
			/* Busy-poll: the sockets only every BROKER_POLL_CHECK_NS. */
			if (now - last_check < BROKER_POLL_CHECK_NS)
				continue;
			last_check = now;
			ctl_expire(b, now);
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
		for (int i = 0; i < n; i++)
			handle_event(b, &evs[i]);
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
