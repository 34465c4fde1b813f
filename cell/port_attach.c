/* Attaching a cell to the broker: the connection to its socket, the vhost-user
 * handshake, and the gvsock stack built half-way through it (port_posix.h). */
#include "clock.h"
#include "port_posix.h"
#include "port_cell.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_SOCKETS 64u
#define DEFAULT_RCVBUF (256u * 1024u)
#define DEFAULT_HANDSHAKE_MS 5000

/* Features we can use; VERSION_1 is the only one we cannot do without. */
#define WANT_FEATURES                                                                    \
	((1ull << VHU_F_VERSION_1) | (1ull << VHU_VSOCK_F_SEQPACKET) | (1ull << VHU_F_EVENT_IDX))
#define NEED_FEATURES (1ull << VHU_F_VERSION_1)

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

static int attach(const char *path, int wait_ms, char *err, size_t errlen)
{
	uint64_t until = rtvio_now_ns() + (uint64_t)(wait_ms > 0 ? wait_ms : 0) * 1000000u;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		port_set_err(err, errlen, "broker socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			e = -errno;
			port_set_err(err, errlen, "socket: %s", strerror(errno));
			return e;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		e = -errno;
		close(fd);
		/* The broker may still be starting: its socket absent or not listening. */
		if ((e != -ENOENT && e != -ECONNREFUSED) || rtvio_now_ns() >= until) {
			port_set_err(err, errlen, "no broker at %s: %s", path, strerror(-e));
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

/* What gvsock needs but the CID and features, which init_stack adds during the
 * handshake. */
void port_gv_config(struct rtvio_cell *c, const struct rtvio_cell_opts *opts)
{
	c->ops.kick = op_kick;
	c->ops.now_ns = op_now;
	c->ops.wake = port_op_wake;
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
int port_attach(struct rtvio_cell *c, const char *socket_path,
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
		port_set_err(err, errlen, "vhost-user handshake on %s failed: %s", socket_path,
			handshake_why(rc));
		return rc;
	}
	if (fcntl(c->sock, F_SETFL, fcntl(c->sock, F_GETFL) | O_NONBLOCK) < 0) {
		rc = -errno;
		port_set_err(err, errlen, "fcntl: %s", strerror(errno));
		return rc;
	}
	return 0;
}
