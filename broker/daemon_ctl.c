/* The broker's control socket: `rtvio stat`, config dump and run-time changes, one
 * client at a time per slot, never waiting on a client (control.c speaks the
 * protocol). */
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

	return live_dump(&b->live, true);
}

static json_t *ctl_change(void *ctx, json_t *req, bool *deferred)
{
	struct broker *b = ctx;
	json_t *r = admit_request(b->adm, req, b->ctl_ticket[b->ctl_current], deferred);

	/* A removal is applied at once: a host port whose flow went stops listening
	 * (an addition refreshes when it is applied: admit_done). */
	if (!*deferred && b->host)
		host_refresh(b->host);
	return r;
}

static const struct ctl_ops ctl_ops = { .stat = stat_json, .shutdown = ctl_shutdown,
					.config = ctl_config, .change = ctl_change };

void daemon_ctl_accept(struct broker *b)
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
		daemon_ep_del(b, b->ctl[slot].fd);
		ctl_client_close(&b->ctl[slot]);
	}
	if (daemon_ep_add(b, fd, &b->src_ctl[slot]) < 0) {
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
	daemon_ep_del(b, c->fd);
	ctl_client_close(c);
}


/* Reads the request, then writes the reply as the socket takes it: a large reply
 * (hundreds of kB with many flows) waits in the client's slot for EPOLLOUT rather
 * than the loop waiting for the client. */
void daemon_ctl_client_event(struct broker *b, unsigned int slot)
{
	struct ctl_client *c = &b->ctl[slot];
	int rc;

	if (c->fd < 0)
		return; /* closed earlier in this batch of events */
	b->ctl_current = slot;
	rc = c->out ? ctl_client_flush(c) : ctl_client_service(c, &ctl_ops, b);
	daemon_ctl_client_after(b, slot, rc);
}

/* What a client's slot does next after rc (ctl_client_service, _flush, _reply). */
void daemon_ctl_client_after(struct broker *b, unsigned int slot, int rc)
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
uint64_t daemon_ctl_expire(struct broker *b, uint64_t now)
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

