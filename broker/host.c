/* The host endpoint's set-up and its step: a gvsock stack in broker memory attached to
 * the data plane as the [host] cell, a listening Unix socket for host programs, and
 * gvsock listeners for the cells' connections (host.h). */
#include "host_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "control.h"
#include "dataplane.h"
#include "vsock.h"

/* Device address of the region: any fixed value works, the data plane translates
 * through the one-entry memory table below; this one mirrors QEMU's. */
#define HOST_REGION_GPA 0x100000000ull
/* Receive buffering of each gvsock socket: the credit a cell gets toward the host. */
#define HOST_RCVBUF 65536u

static void host_kick(void *ctx, unsigned int queue)
{
	/* The data plane reads every attached ring on every pass: nothing to signal. */
	(void)ctx;
	(void)queue;
}

static uint64_t host_now(void *ctx)
{
	(void)ctx;
	return rtvio_now_ns();
}

static const struct gv_ops host_ops = { .kick = host_kick, .now_ns = host_now };

/* Does a flow toward the host still end at port? */
static bool host_port_live(const struct host *h, uint32_t port)
{
	const struct rtvio_config *cfg = h->cfg;

	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];

		if (!f->vacant && f->to == (int)h->cell && f->to_port == port &&
		    f->type == RTVIO_STREAM)
			return true;
	}
	return false;
}

/* Listeners of ports no flow toward the host names any more (flows removed at run
 * time) are closed, so that h->lis holds at most one per live flow and a port that
 * lost its flow stops accepting. */
static void host_unlisten_gone(struct host *h)
{
	unsigned int kept = 0;

	for (unsigned int j = 0; j < h->nlis; j++) {
		if (host_port_live(h, h->lis[j].port))
			h->lis[kept++] = h->lis[j];
		else
			gv_close(h->st, h->lis[j].id);
	}
	h->nlis = kept;
	if (h->next_lis >= kept)
		h->next_lis = 0;
}

/* Flows toward the host: one gvsock listener per distinct port, added for the ports
 * not listened on yet (h->lis has a slot for every flow slot of the configuration,
 * vacant ones included, and holds only live ports: host_unlisten_gone). strict: a
 * host flow that is not a stream is an error (at start), else it is skipped. */
static int host_listen_flows(struct host *h, bool strict, char *err, size_t errlen)
{
	const struct rtvio_config *cfg = h->cfg;

	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];
		bool dup = false;

		if (f->vacant || (f->to != (int)h->cell && f->from != (int)h->cell))
			continue;
		if (f->type != RTVIO_STREAM) {
			if (!strict)
				continue;
			snprintf(err, errlen, "[flow %s]: a flow with a host end must be a stream "
				 "(a Unix stream socket keeps no message boundaries)", f->name);
			return -EINVAL;
		}
		if (f->to != (int)h->cell)
			continue;
		for (unsigned int j = 0; j < h->nlis; j++)
			dup |= h->lis[j].port == f->to_port;
		if (dup)
			continue;
		if (h->nlis > (unsigned int)cfg->nflows) {
			snprintf(err, errlen, "[flow %s]: no room for another host listener",
				 f->name);
			return -ENOSPC;
		}
		int id = gv_socket(h->st, GV_SOCK_STREAM);
		int rc = id < 0 ? id : gv_listen(h->st, id, f->to_port, 16);

		if (rc < 0) {
			snprintf(err, errlen, "[flow %s]: host listener on port %u: %s", f->name,
				 (unsigned)f->to_port, strerror(-rc));
			return rc;
		}
		h->lis[h->nlis++] = (struct host_listener){ .id = id, .port = f->to_port };
	}
	return 0;
}

/* The rings as the data plane sees them: a device over our own region. */
static int host_attach(struct host *h, const struct gv_layout *lay)
{
	const uint64_t off[2][3] = { { lay->rx_desc, lay->rx_avail, lay->rx_used },
				     { lay->tx_desc, lay->tx_avail, lay->tx_used } };
	uint64_t feat = 1ull << VIRTIO_F_VERSION_1;

	h->mem = (struct vq_mem_region){ .gpa = HOST_REGION_GPA, .size = h->region_size, .host = h->region };
	for (unsigned int q = 0; q < 2; q++) {
		struct vq_ring r = { .num = lay->queue_size,
				     .desc = (void *)(h->region + off[q][0]),
				     .avail = (void *)(h->region + off[q][1]),
				     .used = (void *)(h->region + off[q][2]) };
		int rc = vq_device_init(&h->vq[q], &r, &h->mem, 1, h->inflight[q], feat, 0);

		if (rc < 0)
			return rc;
	}
	int rc = dp_attach(h->dp, h->cell, &h->vq[DP_QUEUE_RX], &h->vq[DP_QUEUE_TX]);

	h->attached = rc == 0;
	return rc;
}

static int host_stack(struct host *h, const struct rtvio_cell_cfg *c)
{
	struct gv_layout_params lp = { .rx_buf_size = (uint32_t)(c->rx_buf + GV_HDR_SIZE),
				       .tx_payload = (uint32_t)c->max_packet };
	struct gv_config g = { .cid = RTVIO_HOST_CID, .seqpacket = true, .ops = &host_ops,
			       .ctx = h, .rcvbuf = HOST_RCVBUF };
	int rc;

	h->region_size = c->region;
	h->region = aligned_alloc(4096, h->region_size);
	if (!h->region)
		return -ENOMEM;
	memset(h->region, 0, h->region_size);
	rc = gv_layout_compute(&lp, h->region_size, &g.layout);
	if (rc < 0)
		return rc;
	g.region = h->region;
	g.region_dev = HOST_REGION_GPA;
	g.region_size = h->region_size;
	/* Every bridge, every listener, and as many again lingering after a close. */
	g.max_sockets = 2 * h->nbr + (unsigned int)h->cfg->nflows + 1;
	if (g.max_sockets > 4096)
		g.max_sockets = 4096;
	size_t need = (gv_stack_mem_size(&g) + 63) & ~(size_t)63;

	if (need == 0 || !(h->stack_mem = aligned_alloc(64, need)))
		return need ? -ENOMEM : -EINVAL;
	rc = gv_stack_init(&g, h->stack_mem, need, &h->st);
	if (rc < 0)
		return rc;
	rc = host_attach(h, &g.layout);
	if (rc == 0)
		gv_start(h->st);
	return rc;
}

static int host_listen_uds(struct host *h, char *err, size_t errlen)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int rc = ctl_listen_unix(h->path, 16, err, errlen);

	if (rc < 0) {
		h->path[0] = '\0';
		return rc;
	}
	h->listen_fd = rc;
	if (epoll_ctl(h->ep, EPOLL_CTL_ADD, h->listen_fd, &ev) < 0) {
		snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int host_open(const struct rtvio_config *cfg, unsigned int cell, struct dp *dp,
	      struct host **out, char *err, size_t errlen)
{
	const struct rtvio_cell_cfg *c = &cfg->cells[cell];
	struct host *h = calloc(1, sizeof(*h));
	int rc = -ENOMEM;

	*out = NULL;
	if (!h)
		goto fail;
	h->cfg = cfg;
	h->cell = cell;
	h->dp = dp;
	h->listen_fd = -1;
	snprintf(h->path, sizeof(h->path), "%s", c->uds_path);
	h->nbr = c->connections;
	model_host_pass(cfg, &h->pass);
	h->br = calloc(h->nbr, sizeof(*h->br));
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	if (!h->br || h->ep < 0)
		goto fail;
	for (unsigned int i = 0; i < h->nbr; i++)
		h->br[i] = (struct host_bridge){ .fd = -1, .id = -1 };
	h->lis = calloc((size_t)cfg->nflows + 1, sizeof(*h->lis));
	if (!h->lis) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = host_stack(h, c);
	if (rc < 0)
		goto fail;
	rc = host_listen_flows(h, true, err, errlen);
	if (rc < 0)
		goto fail_msg;
	rc = host_listen_uds(h, err, errlen);
	if (rc < 0)
		goto fail_msg;
	*out = h;
	return 0;
fail:
	snprintf(err, errlen, "[host %s]: cannot set up: %s", c->name, strerror(-rc));
fail_msg:
	host_close(h);
	return rc;
}

void host_close(struct host *h)
{
	if (!h)
		return;
	for (unsigned int i = 0; h->br && i < h->nbr; i++)
		if (h->br[i].state != HB_FREE)
			hb_close(h, &h->br[i]);
	if (h->attached)
		dp_detach(h->dp, h->cell);
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	if (h->path[0] && h->listen_fd >= 0)
		unlink(h->path);
	if (h->ep >= 0)
		close(h->ep);
	free(h->lis);
	free(h->br);
	free(h->stack_mem);
	free(h->region);
	free(h);
}

void host_refresh(struct host *h)
{
	char err[256];

	/* A flow the admission let in that cannot be listened on (a stack out of
	 * sockets) is reset when a cell connects to it; the broker goes on. */
	host_unlisten_gone(h);
	if (host_listen_flows(h, false, err, sizeof(err)) < 0)
		fprintf(stderr, "rtvio broker: host endpoint: %s\n", err);
	model_host_pass(h->cfg, &h->pass);
}

uint64_t host_deadline(const struct host *h)
{
	return gv_next_deadline(h->st);
}

int host_fd(const struct host *h)
{
	return h->ep;
}

/* New connections: at most one a cell opened (listeners served round robin) and one
 * from a host program per pass: MODEL_HOST_ACCEPT_CALLS system calls at most. */
static bool host_accept(struct host *h)
{
	bool moved = false;

	for (unsigned int k = 0; k < h->nlis; k++) {
		struct host_listener *l = &h->lis[(h->next_lis + k) % h->nlis];
		uint32_t port;
		uint64_t cid;
		int id = gv_accept(h->st, l->id, &cid, &port);

		if (id >= 0) {
			hb_from_cell(h, id, l->port);
			h->next_lis = (h->next_lis + k + 1) % h->nlis;
			moved = true;
			break;
		}
	}
	int fd = accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd >= 0) {
		hb_from_host(h, fd);
		moved = true;
	}
	return moved;
}

/* At most pass.bridges bridges, round robin from next_br, sharing pass.bytes. True
 * when one moved, or when one left for the next pass has work its socket's
 * readiness would not wake the loop for (that readiness does: the epoll set). */
static bool host_bridges(struct host *h)
{
	unsigned int seen = 0, k = 0, from = h->next_br;
	bool moved = false, owed = false;

	h->left = h->pass.bytes;
	for (; k < h->nbr; k++) {
		struct host_bridge *b = &h->br[(from + k) % h->nbr];

		if (b->state == HB_FREE)
			continue;
		if (seen == h->pass.bridges || !h->left) {
			owed |= hb_pending(h, b);
			continue;
		}
		seen++;
		moved |= hb_step(h, b);
		/* The next pass starts after the last one stepped. */
		h->next_br = (from + k + 1) % h->nbr;
	}
	return moved || owed;
}

bool host_step(struct host *h)
{
	bool moved = false;

	/* The epoll set needs no draining: its interest follows each bridge's buffers
	 * (level-triggered), so it is ready exactly while a socket has work. */
	if (gv_process(h->st) > 0)
		moved = true;
	moved |= host_accept(h);
	moved |= host_bridges(h);
	if (gv_process(h->st) > 0)
		moved = true;
	return moved;
}
