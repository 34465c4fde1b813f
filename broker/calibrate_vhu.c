/* `rtvio calibrate`: the broker loop's vhost-user costs and a page fault on a cell's
 * memory (docs/analysis.md, "vhost-user budget" and "Page faults on cell memory").
 *
 *   vhost_user_msg  one message that is not heavy, handled by the broker's own back end
 *                   (broker/vhost_user.c) from a socketpair, in turn: GET_FEATURES (a
 *                   reply), SET_VRING_CALL and SET_VRING_KICK (an eventfd: its checks
 *                   and flags; the kick hook adds it to an epoll set, as the daemon's
 *                   does). One sample is one vhu_backend_service() call for one message.
 *   vhost_user_map  SET_MEM_TABLE of one region of CAL_MAP_REGION bytes (the shipped
 *                   configurations' region), replacing the table before it, mapped as
 *                   the broker maps a `vm = yes` cell's memory (an mmap per table; the
 *                   old mapping handed to the memory thread, the new one queued for
 *                   its populate, populate.h). And the teardown of a connection (a
 *                   cut-off, a front end gone): its socket out of epoll, every kick,
 *                   call and err descriptor closed (the kicks out of epoll), its
 *                   populated table handed to the memory thread (vhu_backend_disconnect).
 *                   Both are timed while the memory thread works on another cell's
 *                   CAL_OTHER_REGION bytes, in turn populating them and unmapping them:
 *                   the loop's mmap waits on the mmap_lock for the thread's piece.
 *   page_fault      the first write into each page of a fresh mapping of a memfd whose
 *                   pages exist (the cell wrote them), locked on fault as the broker's
 *                   mappings are (mlockall MCL_ONFAULT): one sample per page.
 *
 * Samples that overlap a host stall the gap probe saw are counted, not kept. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "calibrate_internal.h"
#include "vhost_user.h"

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif

#define CAL_MAP_REGION (4u << 20)
/* Another cell's memory, kept in the memory thread while a sample runs: long enough
 * (thousands of pieces) to cover a sample whole. */
#define CAL_OTHER_REGION (16u << 20)
#define CAL_PAGE 4096u

/* Keeps or counts one timed window [t0, t0 + ns). */
struct vsamples {
	double *v;
	size_t n, stalled, want;
};

static void keep(struct gapprobe *gp, struct vsamples *s, uint64_t t0, uint64_t ns)
{
	struct gap_overlap ov;

	gapprobe_query(gp, t0, t0 + ns, &ov);
	if (ov.count)
		s->stalled++;
	else
		s->v[s->n++] = (double)ns;
}

static int vsamples_open(struct vsamples *s, size_t want)
{
	memset(s, 0, sizeof(*s));
	s->want = want;
	s->v = malloc(want * sizeof(*s->v));
	return s->v ? 0 : -ENOMEM;
}

static int vsamples_close(struct vsamples *s, struct cal_dist *out)
{
	int ret = cal_dist_make(s->v, s->n, s->stalled, true, out);

	free(s->v);
	return ret;
}

/* ---- the back end over a socketpair ---- */

struct vrig {
	struct vhu_backend b;
	int fe;		/* the front end's end */
	int ep;		/* the kick hook's and the socket's epoll set */
	int memfd;
	uint8_t *mem;	/* the front end's mapping of memfd */
	struct vhu_pop pop;	/* the memory thread: slots 0 ours, 1 the other cell's */
	bool pop_open;
	int other_fd;	/* the other cell's memory */
	struct vhu_map *other;	/* its mapping while the thread populates it */
};

static int dev_start(void *ctx, struct vhu_backend *b)
{
	(void)ctx;
	(void)b;
	return -EAGAIN; /* never runs: no rings are given */
}

static void dev_stop(void *ctx, struct vhu_backend *b)
{
	(void)ctx;
	(void)b;
}

/* As the daemon's kick hook: the old descriptor leaves the epoll set, the new one
 * joins it. */
static void dev_kick(void *ctx, struct vhu_backend *b, unsigned int queue, int fd)
{
	struct vrig *g = ctx;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = queue };

	if (b->ring[queue].kick_fd >= 0)
		epoll_ctl(g->ep, EPOLL_CTL_DEL, b->ring[queue].kick_fd, NULL);
	if (fd >= 0 && epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		/* Measured all the same: the daemon's failure path costs no more. */
	}
}

static const struct vhu_dev_ops cal_vhu_ops = { .start = dev_start, .stop = dev_stop,
						 .kick = dev_kick };

/* The memory thread's cpus: every online one but the one calibrating (the loop's),
 * as the broker gives its own (vhu_pop_cpus). */
static void other_cpus(cpu_set_t *out)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	int self = sched_getcpu();

	CPU_ZERO(out);
	for (long i = 0; i < n && i < CPU_SETSIZE; i++)
		if (i != self || n == 1)
			CPU_SET((int)i, out);
}

/* Waits (sleeping: the thread may share our cpu) until the thread has nothing queued
 * or running: our slots hold the current table only, the other cell's nothing but
 * `other`, and every populate asked for is done. */
static int quiesce(struct vrig *g)
{
	struct timespec ts = { 0, 100000 };
	struct vhu_map *ours = vhu_pop_slots(&g->pop, 0), *theirs = vhu_pop_slots(&g->pop, 1);

	for (;;) {
		unsigned int busy = 0, want = (g->b.nregions ? 1u : 0u) + (g->other ? 1u : 0u);
		int rc = g->b.nregions ? vhu_map_ready(g->b.regions[0].map) : 1;

		if (rc >= 0 && g->other)
			rc = rc ? vhu_map_ready(g->other) : 0;
		if (rc < 0)
			return rc;
		for (unsigned int i = 0; i < VHU_MAX_MAPS; i++)
			busy += atomic_load(&ours[i].busy) + atomic_load(&theirs[i].busy);
		if (rc == 1 && busy == want)
			return 0;
		nanosleep(&ts, NULL);
		vhu_pop_ack(&g->pop);
	}
}

/* Before sample k: the memory thread starts on the other cell's memory, populating
 * it (k even) or unmapping it (k odd, once populated). Never waits for the thread. */
static int other_start(struct vrig *g, size_t k)
{
	void *addr;

	if (k % 2) {
		if (g->other)
			vhu_map_drop(&g->pop, g->other);
		g->other = NULL;
		return 0;
	}
	g->other = vhu_map_take(vhu_pop_slots(&g->pop, 1), CAL_OTHER_REGION, 0, 0);
	if (!g->other)
		return -EBUSY;
	addr = mmap(NULL, CAL_OTHER_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, g->other_fd, 0);
	if (addr == MAP_FAILED) {
		vhu_map_untake(g->other);
		g->other = NULL;
		return -ENOMEM;
	}
	g->other->addr = addr;
	vhu_map_populate(&g->pop, g->other);
	return 0;
}

static void vrig_close(struct vrig *g)
{
	vhu_backend_disconnect(&g->b);
	if (g->other && g->pop_open)
		vhu_map_drop(&g->pop, g->other);
	g->other = NULL;
	/* After the back end let go: the thread unmaps what it was handed. */
	if (g->pop_open)
		vhu_pop_close(&g->pop);
	g->pop_open = false;
	if (g->fe >= 0)
		close(g->fe);
	if (g->ep >= 0)
		close(g->ep);
	if (g->mem && g->mem != MAP_FAILED)
		munmap(g->mem, CAL_MAP_REGION);
	if (g->memfd >= 0)
		close(g->memfd);
	if (g->other_fd >= 0)
		close(g->other_fd);
	g->fe = g->ep = g->memfd = g->other_fd = -1;
}

/* A new connection: the front end's end in g->fe, the back end's in epoll. */
static int vrig_connect(struct vrig *g)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 99 };
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (g->fe >= 0)
		close(g->fe);
	g->fe = sv[0];
	vhu_backend_connect(&g->b, sv[1]);
	if (epoll_ctl(g->ep, EPOLL_CTL_ADD, sv[1], &ev) < 0)
		return -errno;
	return 0;
}

static int vrig_open(struct vrig *g)
{
	cpu_set_t cpus;
	int ret;

	memset(g, 0, sizeof(*g));
	g->fe = g->ep = g->memfd = g->other_fd = -1;
	vhu_backend_init(&g->b, "calibrate", C_CID_A, &cal_vhu_ops, g);
	other_cpus(&cpus);
	ret = vhu_pop_open(&g->pop, 2, &cpus);
	if (ret)
		return ret;
	g->pop_open = true;
	g->b.pop = &g->pop;
	g->b.maps = vhu_pop_slots(&g->pop, 0);
	g->ep = epoll_create1(EPOLL_CLOEXEC);
	g->memfd = memfd_create("rtvio-calibrate-vhu", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	g->other_fd = memfd_create("rtvio-calibrate-other", MFD_CLOEXEC);
	if (g->ep < 0 || g->memfd < 0 || g->other_fd < 0 ||
	    ftruncate(g->memfd, CAL_MAP_REGION) < 0 || ftruncate(g->other_fd, CAL_OTHER_REGION) < 0)
		goto fail;
	g->mem = mmap(NULL, CAL_MAP_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
	if (g->mem == MAP_FAILED)
		goto fail;
	ret = vrig_connect(g);
	if (ret)
		goto out;
	return 0;
fail:
	ret = errno ? -errno : -EIO;
out:
	vrig_close(g);
	return ret;
}

/* The front end sends m; the back end handles it, timed; a reply is drained. */
static int vrig_round(struct vrig *g, const struct vhu_msg *m, const int *fds, unsigned nfds,
		      uint64_t *t0, uint64_t *ns)
{
	struct vhu_msg r;
	int rfds[VHU_MAX_FDS], ret;
	unsigned int rn = 0;

	ret = vhu_send(g->fe, m, fds, nfds);
	if (ret)
		return ret;
	g->b.last_error = 0;
	*t0 = cal_now_ns();
	ret = vhu_backend_service(&g->b, 1);
	*ns = cal_now_ns() - *t0;
	if (ret)
		return ret;
	if (g->b.last_error)
		return g->b.last_error;
	/* Only GET_FEATURES answers here: no REPLY_ACK is negotiated. */
	if (m->hdr.request == VHU_GET_FEATURES) {
		ret = vhu_recv(g->fe, &r, rfds, &rn);
		vhu_close_fds(rfds, &rn);
	}
	return ret;
}

/* Message k of the light rotation: GET_FEATURES, SET_VRING_CALL, SET_VRING_KICK. */
static int light_round(struct vrig *g, size_t k, uint64_t *t0, uint64_t *ns)
{
	static const uint32_t req[] = { VHU_GET_FEATURES, VHU_SET_VRING_CALL, VHU_SET_VRING_KICK };
	uint32_t q = req[k % 3];
	struct vhu_msg m;
	int fd = -1, ret;

	vhu_msg_init(&m, q, q == VHU_GET_FEATURES ? 0 : sizeof(uint64_t));
	m.p.u64 = (k / 3) % VHU_VSOCK_QUEUES;
	if (q != VHU_GET_FEATURES) {
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			return -errno;
	}
	ret = vrig_round(g, &m, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0, t0, ns);
	if (fd >= 0)
		close(fd); /* the back end keeps its own copy */
	return ret;
}

static int map_round(struct vrig *g, uint64_t *t0, uint64_t *ns)
{
	struct vhu_msg m;

	vhu_msg_init(&m, VHU_SET_MEM_TABLE, 8 + 32);
	m.p.mem.nregions = 1;
	m.p.mem.padding = 0;
	m.p.mem.regions[0] = (struct vhu_mem_region){
		.guest_addr = C_GPA, .size = CAL_MAP_REGION,
		.user_addr = (uint64_t)(uintptr_t)g->mem, .mmap_offset = 0 };
	return vrig_round(g, &m, &g->memfd, 1, t0, ns);
}

/* One ring descriptor message with a fresh eventfd (the back end keeps its own copy). */
static int fd_round(struct vrig *g, uint32_t req, uint64_t q)
{
	struct vhu_msg m;
	uint64_t t0, ns;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), ret;

	if (fd < 0)
		return -errno;
	vhu_msg_init(&m, req, sizeof(uint64_t));
	m.p.u64 = q;
	ret = vrig_round(g, &m, &fd, 1, &t0, &ns);
	close(fd);
	return ret;
}

/* Table change k, timed while the memory thread works on the other cell's memory. */
static int map_sample(struct gapprobe *gp, struct vrig *g, size_t k, struct vsamples *map)
{
	uint64_t t0, ns;
	int ret = other_start(g, k);

	if (!ret)
		ret = map_round(g, &t0, &ns);
	if (!ret)
		keep(gp, map, t0, ns);
	return ret ? ret : quiesce(g);
}

/* Teardown k: a connection with its owner, a populated table and every ring's kick,
 * call and err descriptor, undone as the daemon undoes a cut-off or a front end
 * gone (its socket out of epoll, then vhu_backend_disconnect), timed while the
 * memory thread works on the other cell's memory. */
static int down_sample(struct gapprobe *gp, struct vrig *g, size_t k, struct vsamples *down)
{
	static const uint32_t req[] = { VHU_SET_VRING_KICK, VHU_SET_VRING_CALL, VHU_SET_VRING_ERR };
	struct vhu_msg m;
	uint64_t t0, ns;
	int ret = g->b.sock < 0 ? vrig_connect(g) : 0;

	vhu_msg_init(&m, VHU_SET_OWNER, 0);
	if (!ret && !g->b.owner)
		ret = vrig_round(g, &m, NULL, 0, &t0, &ns);
	if (!ret)
		ret = map_round(g, &t0, &ns);
	for (unsigned int i = 0; !ret && i < 3 * VHU_VSOCK_QUEUES; i++)
		ret = fd_round(g, req[i % 3], i / 3);
	if (!ret)
		ret = quiesce(g);
	if (!ret)
		ret = other_start(g, k);
	if (ret)
		return ret;
	t0 = cal_now_ns();
	epoll_ctl(g->ep, EPOLL_CTL_DEL, g->b.sock, NULL);
	vhu_backend_disconnect(&g->b);
	ns = cal_now_ns() - t0;
	keep(gp, down, t0, ns);
	return quiesce(g);
}

/* The light messages, then the memory tables and the teardowns, on one back end. */
static int vhu_sample(struct gapprobe *gp, struct vrig *g, struct vsamples *msg,
		      struct vsamples *map, struct vsamples *down)
{
	struct vhu_msg m;
	uint64_t t0, ns;
	size_t k = 0;
	int ret;

	vhu_msg_init(&m, VHU_SET_OWNER, 0);
	ret = vrig_round(g, &m, NULL, 0, &t0, &ns);
	while (!ret && msg->n + msg->stalled < msg->want) {
		ret = light_round(g, k++, &t0, &ns);
		if (!ret)
			keep(gp, msg, t0, ns);
	}
	for (k = 0; !ret && map->n + map->stalled < map->want; k++)
		ret = map_sample(gp, g, k, map);
	for (k = 0; !ret && down->n + down->stalled < down->want; k++)
		ret = down_sample(gp, g, k, down);
	return ret;
}

static int vhu_runs(struct gapprobe *gp, size_t want, struct cal_results *res, char *err,
		    size_t errlen)
{
	struct vsamples msg, map, down;
	struct vrig g;
	int ret = vrig_open(&g), rc;

	if (ret) {
		snprintf(err, errlen, "vhost-user run: cannot set up a front end: %s",
			 strerror(-ret));
		return ret;
	}
	(void)vsamples_open(&msg, want);
	(void)vsamples_open(&map, want / 4 + 1);
	(void)vsamples_open(&down, want / 4 + 1);
	ret = msg.v && map.v && down.v ? vhu_sample(gp, &g, &msg, &map, &down) : -ENOMEM;
	vrig_close(&g);
	if (ret) {
		snprintf(err, errlen, "vhost-user run: the back end refused a message: %s",
			 strerror(-ret));
		free(msg.v);
		free(map.v);
		free(down.v);
		return ret;
	}
	/* Every set is closed (and freed), whichever fails first. */
	ret = vsamples_close(&msg, &res->vhu_msg);
	rc = vsamples_close(&map, &res->vhu_map);
	ret = ret ? ret : rc;
	rc = vsamples_close(&down, &res->vhu_down);
	return ret ? ret : rc;
}

/* ---- page faults ---- */

static int fault_pass(struct gapprobe *gp, int fd, struct vsamples *s)
{
	size_t pages = CAL_MAP_REGION / CAL_PAGE;
	volatile uint8_t *p = mmap(NULL, CAL_MAP_REGION, PROT_READ | PROT_WRITE, MAP_SHARED,
				   fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	/* Locked as each page is touched, like the broker's mappings; without the
	 * privilege for it the faults are timed unlocked (a little cheaper). */
	if (mlock2((const void *)p, CAL_MAP_REGION, MLOCK_ONFAULT) < 0) {
		/* measured unlocked */
	}
	for (size_t i = 0; i < pages && s->n + s->stalled < s->want; i++) {
		uint64_t t0 = cal_now_ns(), ns;

		p[i * CAL_PAGE] = (uint8_t)i;
		ns = cal_now_ns() - t0;
		keep(gp, s, t0, ns);
	}
	munmap((void *)p, CAL_MAP_REGION);
	return 0;
}

static int fault_run(struct gapprobe *gp, size_t want, struct cal_dist *out, char *err,
		     size_t errlen)
{
	struct vsamples s;
	int fd = memfd_create("rtvio-calibrate-fault", MFD_CLOEXEC);
	int ret = fd < 0 ? -errno : 0;
	void *cell = MAP_FAILED;

	if (!ret && ftruncate(fd, CAL_MAP_REGION) < 0)
		ret = -errno;
	if (!ret) {
		/* The cell's own mapping: its pages exist before the broker touches them. */
		cell = mmap(NULL, CAL_MAP_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (cell == MAP_FAILED)
			ret = -errno;
		else
			memset(cell, 1, CAL_MAP_REGION);
	}
	if (!ret)
		ret = vsamples_open(&s, want);
	while (!ret && s.n + s.stalled < s.want) {
		ret = fault_pass(gp, fd, &s);
		if (ret)
			free(s.v);
	}
	if (!ret)
		ret = vsamples_close(&s, out);
	if (cell != MAP_FAILED)
		munmap(cell, CAL_MAP_REGION);
	if (fd >= 0)
		close(fd);
	if (ret)
		snprintf(err, errlen, "page-fault run: %s", strerror(-ret));
	return ret;
}

int cal_vhu_run(struct gapprobe *gp, size_t want, struct cal_results *res, char *err,
		size_t errlen)
{
	int ret = vhu_runs(gp, want, res, err, errlen);

	if (!ret)
		ret = fault_run(gp, want, &res->page_fault, err, errlen);
	return ret;
}
