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
 *                   the broker maps a cell's memory (nothing faulted in).
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
#include <sys/socket.h>
#include <unistd.h>

#include "calibrate_internal.h"
#include "vhost_user.h"

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif

#define CAL_MAP_REGION (4u << 20)
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
	int ep;		/* the kick hook's epoll set */
	int memfd;
	uint8_t *mem;	/* the front end's mapping of memfd */
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

static void vrig_close(struct vrig *g)
{
	vhu_backend_disconnect(&g->b);
	if (g->fe >= 0)
		close(g->fe);
	if (g->ep >= 0)
		close(g->ep);
	if (g->mem && g->mem != MAP_FAILED)
		munmap(g->mem, CAL_MAP_REGION);
	if (g->memfd >= 0)
		close(g->memfd);
}

static int vrig_open(struct vrig *g)
{
	int sv[2];

	memset(g, 0, sizeof(*g));
	g->fe = g->ep = g->memfd = -1;
	vhu_backend_init(&g->b, "calibrate", C_CID_A, &cal_vhu_ops, g);
	g->ep = epoll_create1(EPOLL_CLOEXEC);
	g->memfd = memfd_create("rtvio-calibrate-vhu", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (g->ep < 0 || g->memfd < 0 || ftruncate(g->memfd, CAL_MAP_REGION) < 0)
		goto fail;
	g->mem = mmap(NULL, CAL_MAP_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
	if (g->mem == MAP_FAILED)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		goto fail;
	g->fe = sv[0];
	vhu_backend_connect(&g->b, sv[1]);
	return 0;
fail:
	{
		int e = -errno;

		vrig_close(g);
		return e ? e : -EIO;
	}
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

/* The light messages, then the memory tables, on one connection. */
static int vhu_sample(struct gapprobe *gp, struct vrig *g, struct vsamples *msg,
		      struct vsamples *map)
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
	while (!ret && map->n + map->stalled < map->want) {
		ret = map_round(g, &t0, &ns);
		if (!ret)
			keep(gp, map, t0, ns);
	}
	return ret;
}

static int vhu_runs(struct gapprobe *gp, size_t want, struct cal_results *res, char *err,
		    size_t errlen)
{
	struct vsamples msg, map;
	struct vrig g;
	int ret = vrig_open(&g);

	if (ret) {
		snprintf(err, errlen, "vhost-user run: cannot set up a front end: %s",
			 strerror(-ret));
		return ret;
	}
	(void)vsamples_open(&msg, want);
	(void)vsamples_open(&map, want / 4 + 1);
	ret = msg.v && map.v ? vhu_sample(gp, &g, &msg, &map) : -ENOMEM;
	vrig_close(&g);
	if (ret) {
		snprintf(err, errlen, "vhost-user run: the back end refused a message: %s",
			 strerror(-ret));
		free(msg.v);
		free(map.v);
		return ret;
	}
	ret = vsamples_close(&msg, &res->vhu_msg);
	if (ret)
		free(map.v);
	else
		ret = vsamples_close(&map, &res->vhu_map);
	return ret;
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
