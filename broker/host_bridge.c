/* One bridge of the host endpoint: a gvsock socket (the cell's connection, switched
 * and scheduled by the data plane) joined to a Unix stream socket (the host
 * program). Two bounded buffers, one per direction; the Unix socket is non-blocking
 * and watched only for what the buffers can take, so a host program that stops
 * reading fills its own buffer, then its gvsock receive buffer, and the cell's
 * credit for that connection runs out: nobody else waits. */
#include "host_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"

struct host_bridge *hb_alloc(struct host *h)
{
	uint64_t now = rtvio_now_ns();

	for (unsigned int i = 0; i < h->nbr; i++)
		if (h->br[i].state == HB_FREE)
			return &h->br[i];
	/* Full: a host program that connected and never said which port it wants holds
	 * its slot only until somebody needs it. */
	for (unsigned int i = 0; i < h->nbr; i++) {
		struct host_bridge *b = &h->br[i];

		if (b->state == HB_HELLO && now - b->since >= HOST_HELLO_NS) {
			hb_close(h, b);
			return b;
		}
	}
	return NULL;
}

/* Registers the interest the buffers allow: readable while `in` has room and the
 * host program has not ended, writable while `out` holds bytes. A socket with no
 * interest leaves the set, so a hang-up cannot keep waking the loop. */
static void hb_watch(struct host *h, struct host_bridge *b)
{
	uint32_t want = 0;

	if (b->state != HB_CONNECTING && !b->fd_eof && b->in_len < HOST_BUF)
		want |= EPOLLIN;
	if (b->out_len)
		want |= EPOLLOUT;
	if (want == b->ev)
		return;
	struct epoll_event ev = { .events = want, .data.ptr = b };
	int op = !b->ev ? EPOLL_CTL_ADD : want ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;

	if (epoll_ctl(h->ep, op, b->fd, &ev) == 0)
		b->ev = want;
}

void hb_close(struct host *h, struct host_bridge *b)
{
	if (b->fd >= 0) {
		if (b->ev)
			epoll_ctl(h->ep, EPOLL_CTL_DEL, b->fd, NULL);
		close(b->fd);
	}
	if (b->id >= 0)
		gv_close(h->st, b->id);
	*b = (struct host_bridge){ .state = HB_FREE, .fd = -1, .id = -1 };
}

void hb_from_cell(struct host *h, int id, uint32_t port)
{
	struct host_bridge *b = hb_alloc(h);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = -1;

	/* Fits: the loader keeps uds_path short enough for "_<port>". */
	int len = snprintf(a.sun_path, sizeof(a.sun_path), "%.*s_%" PRIu32,
			   (int)RTVIO_UDS_PATH_MAX, h->path, port);

	if (b && len > 0 && (size_t)len < sizeof(a.sun_path))
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* A Unix stream connect completes at once or fails (EAGAIN: backlog full); it
	 * never waits, so the loop does not either. No listener: the cell gets RST. */
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (fd >= 0)
			close(fd);
		gv_close(h->st, id);
		return;
	}
	*b = (struct host_bridge){ .state = HB_OPEN, .fd = fd, .id = id };
	hb_watch(h, b);
}

void hb_from_host(struct host *h, int fd)
{
	struct host_bridge *b = hb_alloc(h);

	if (!b) {
		close(fd);
		return;
	}
	*b = (struct host_bridge){ .state = HB_HELLO, .fd = fd, .id = -1,
				   .since = rtvio_now_ns() };
	hb_watch(h, b);
}

/* The cell a host program's "CONNECT P" reaches: the flow from the host to port P. */
static int hb_flow_to(const struct host *h, uint32_t port)
{
	const struct rtvio_config *cfg = h->cfg;

	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];

		if (!f->vacant && f->from == (int)h->cell && f->to_port == port)
			return i;
	}
	return -1;
}

/* "CONNECT P\n" complete in `in`: start the connection. Bytes after the line stay
 * in `in` as the first data toward the cell. */
static void hb_hello(struct host *h, struct host_bridge *b)
{
	/* The line ends within its first HOST_LINE_MAX bytes, or it is not one: what
	 * the host program wrote may be far longer than `line`. */
	uint8_t *nl = memchr(b->in, '\n', b->in_len < HOST_LINE_MAX ? b->in_len : HOST_LINE_MAX);
	unsigned long port;
	char line[HOST_LINE_MAX + 1], *end;

	if (!nl) {
		if (b->in_len >= HOST_LINE_MAX || b->fd_eof)
			hb_close(h, b);
		return;
	}
	size_t n = (size_t)(nl - b->in);

	memcpy(line, b->in, n);
	line[n] = '\0';
	b->in_len -= (uint32_t)(n + 1);
	memmove(b->in, nl + 1, b->in_len);
	if (strncmp(line, "CONNECT ", 8) != 0 || line[8] < '0' || line[8] > '9')
		return hb_close(h, b);
	errno = 0;
	port = strtoul(line + 8, &end, 10);
	int fl = errno || (*end && *end != '\r') || port > 0xfffffffeul ? -1 :
			    hb_flow_to(h, (uint32_t)port);

	if (fl < 0)
		return hb_close(h, b);
	const struct rtvio_flow_cfg *f = &h->cfg->flows[fl];

	b->id = gv_socket(h->st, GV_SOCK_STREAM);
	if (b->id >= 0 && f->from_port != RTVIO_PORT_ANY)
		gv_bind(h->st, b->id, f->from_port);
	if (b->id < 0 || gv_connect(h->st, b->id, h->cfg->cells[f->to].cid, f->to_port) !=
			 -GV_EINPROGRESS)
		return hb_close(h, b);
	b->state = HB_CONNECTING;
}

/* The cell answered: "OK <port>\n" (our local port, as Firecracker) goes first. */
static void hb_connected(struct host *h, struct host_bridge *b)
{
	uint32_t local = 0, peer_port;
	uint64_t peer_cid;

	if (gv_sock_connecting(h->st, b->id))
		return;
	if (gv_sock_error(h->st, b->id) != 0)
		return hb_close(h, b);
	gv_sock_name(h->st, b->id, &local, &peer_cid, &peer_port);
	b->out_len = (uint32_t)snprintf((char *)b->out, HOST_BUF, "OK %" PRIu32 "\n", local);
	b->state = HB_OPEN;
}

/* Bytes of a copy of up to `want` the pass budget still allows. */
static uint32_t hb_take(struct host *h, uint32_t want)
{
	return h->left < want ? (uint32_t)h->left : want;
}

/* Host program -> cell. Returns true when bytes moved; false and *dead on an error
 * that ends the bridge. Every copy is charged to the pass budget; a zero budget
 * skips the call (a read of 0 bytes would look like the end of the stream). */
static bool hb_up(struct host *h, struct host_bridge *b, bool *dead)
{
	bool moved = false;
	uint32_t want = hb_take(h, HOST_BUF - b->in_len);

	if (!b->fd_eof && want) {
		ssize_t n = read(b->fd, b->in + b->in_len, want);

		if (n > 0) {
			b->in_len += (uint32_t)n;
			h->left -= (uint64_t)n;
		} else if (n == 0) {
			b->fd_eof = true;
		} else if (errno != EAGAIN && errno != EINTR) {
			*dead = true;
		}
		moved |= n >= 0;
	}
	if (b->state != HB_OPEN)
		return moved;
	want = hb_take(h, b->in_len);
	if (want) {
		int r = gv_send(h->st, b->id, b->in, want, false);

		if (r > 0) {
			b->in_len -= (uint32_t)r;
			h->left -= (uint64_t)r;
			memmove(b->in, b->in + r, b->in_len);
			moved = true;
		} else if (r != -GV_EAGAIN) {
			*dead = true;
		}
	}
	if (b->fd_eof && !b->in_len && !b->shut_cell) {
		gv_shutdown(h->st, b->id, GV_SHUT_WR);
		b->shut_cell = moved = true;
	}
	return moved;
}

/* Cell -> host program; same contract as hb_up. */
static bool hb_down(struct host *h, struct host_bridge *b, bool *dead)
{
	bool moved = false;
	uint32_t want = hb_take(h, HOST_BUF - b->out_len);

	if (b->state == HB_OPEN && !b->cell_eof && want) {
		int r = gv_recv(h->st, b->id, b->out + b->out_len, want, 0, NULL);

		if (r > 0) {
			b->out_len += (uint32_t)r;
			h->left -= (uint64_t)r;
		} else if (r != -GV_EAGAIN) {
			b->cell_eof = true; /* end of stream, or reset: nothing more comes */
		}
		moved |= r != -GV_EAGAIN;
	}
	want = hb_take(h, b->out_len);
	if (want) {
		ssize_t n = send(b->fd, b->out, want, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			b->out_len -= (uint32_t)n;
			h->left -= (uint64_t)n;
			memmove(b->out, b->out + n, b->out_len);
			moved = true;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			*dead = true;
		}
	}
	if (b->cell_eof && !b->out_len && !b->shut_fd) {
		shutdown(b->fd, SHUT_WR);
		b->shut_fd = moved = true;
	}
	return moved;
}

bool hb_pending(struct host *h, struct host_bridge *b)
{
	unsigned int ev;

	/* Only work a step could do now: what waits on the host program's socket (bytes
	 * to read, room to write) is that socket's readiness, in the epoll set; a
	 * HB_HELLO bridge has parsed all it read. Counting more would keep the loop
	 * from ever sleeping while a host program holds bytes nobody can move. */
	if (b->state == HB_CONNECTING)
		return !gv_sock_connecting(h->st, b->id);
	if (b->state != HB_OPEN)
		return false;
	if ((b->fd_eof && !b->in_len && !b->shut_cell) ||
	    (b->cell_eof && !b->out_len && !b->shut_fd))
		return true;
	ev = gv_poll_events(h->st, b->id);
	return (b->in_len && (ev & (GV_POLLOUT | GV_POLLERR | GV_POLLHUP))) ||
	       (!b->cell_eof && b->out_len < HOST_BUF &&
		(ev & (GV_POLLIN | GV_POLLERR | GV_POLLHUP)));
}

bool hb_step(struct host *h, struct host_bridge *b)
{
	bool dead = false, moved;

	if (b->state == HB_CONNECTING)
		hb_connected(h, b);
	if (b->state == HB_FREE)
		return true;
	moved = hb_up(h, b, &dead);
	if (b->state == HB_HELLO && !dead) {
		hb_hello(h, b);
		if (b->state == HB_FREE)
			return true;
	}
	moved |= hb_down(h, b, &dead);
	/* Done when both directions have ended and everything was passed on. */
	if (dead || (b->shut_cell && b->shut_fd)) {
		hb_close(h, b);
		return true;
	}
	hb_watch(h, b);
	return moved;
}
