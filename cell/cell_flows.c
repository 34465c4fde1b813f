/* `rtvio cell`'s flow threads: receivers (listening, accepting, checking every
 * message) and senders (connecting, periodic and bulk sending), and their set-up. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "rtmsg.h"
#include "cell_run.h"

static void warn_rt_once(struct run *r, int e)
{
	bool expect = false;

	if (atomic_compare_exchange_strong(&r->warned_rt, &expect, true))
		fprintf(stderr, "rtvio cell %s: warning: SCHED_FIFO not permitted (%s); real-time "
				"flows run at normal priority\n",
			r->cell->name, strerror(e));
}

static bool stopping(const struct worker *w)
{
	return atomic_load(&w->run->stop);
}

/* ---- Receivers ----------------------------------------------------------------- */

static void on_message(void *arg, const uint8_t *m, size_t len)
{
	struct worker *w = arg;

	wl_rx_account(&w->rx, m, len, w->feed_now);
}

static void receive(struct worker *w)
{
	struct rtvio_cell *c = w->run->c;
	bool stream = w->flow->type == RTVIO_STREAM;

	for (;;) {
		unsigned int of = 0;
		ssize_t n = rtvio_recv(c, w->sock, w->buf, w->buf_len, 0, &of, -1);
		uint64_t now = wl_now_ns();

		if (n > 0) {
			if (!stream) {
				/* A message longer than the flow's size cannot be ours. */
				if (of & GV_MSG_TRUNC)
					wl_rx_account(&w->rx, w->buf, 0, now);
				else
					wl_rx_account(&w->rx, w->buf, (size_t)n, now);
				continue;
			}
			w->feed_now = now;
			if (wl_stream_feed(&w->stream, w->buf, (size_t)n, on_message, w) < 0) {
				w->rx.corrupt++;
				w->status = "lost framing";
				w->err = -EBADMSG;
				return;
			}
			continue;
		}
		if (n == 0) {
			w->status = "ok";
			return;
		}
		if (n == -EINTR) {
			w->status = rtvio_cell_error(c) ? "broker gone" : "stopped";
			return;
		}
		w->err = (int)n;
		w->status = rtvio_cell_error(c) ? "broker gone" : "reset";
		return;
	}
}

/* The receiver expecting a connection from cid:port on w's listener: the flow's
 * sending cell and, when the flow names one, its source port (the loader makes that
 * unique), or NULL. */
static struct worker *expecting(const struct worker *w, uint64_t cid, uint32_t port)
{
	const struct run *r = w->run;

	for (int i = 0; i < r->nw; i++) {
		struct worker *o = &r->w[i];
		const struct rtvio_flow_cfg *f = o->flow;

		if (o->role == ROLE_RECV && o->lead == w->lead && !o->served && o->handed < 0 &&
		    r->cfg.cells[f->from].cid == cid &&
		    (f->from_port == RTVIO_PORT_ANY || f->from_port == port))
			return o;
	}
	return NULL;
}

/* The connection of w's flow. The receivers of one port take turns in
 * rtvio_accept: the one accepting hands each connection to the flow it belongs to
 * and goes on until its own comes; the others wait for theirs or for the turn.
 * Connections nobody expects (a flow whose workload is off, a flow's second
 * connection) are closed. */
static int accept_own(struct worker *w)
{
	struct run *r = w->run;
	struct worker *g = w->lead;
	int id;

	pthread_mutex_lock(&r->acc_lock);
	for (;;) {
		uint64_t cid = 0;
		uint32_t port = 0;
		struct worker *o;

		if (w->handed >= 0) {
			id = w->handed;
			break;
		}
		if (g->accept_err) {
			id = g->accept_err;
			break;
		}
		if (g->accepting) {
			pthread_cond_wait(&r->acc_cond, &r->acc_lock);
			continue;
		}
		g->accepting = true;
		pthread_mutex_unlock(&r->acc_lock);
		id = rtvio_accept(r->c, g->listen_id, &cid, &port, -1);
		pthread_mutex_lock(&r->acc_lock);
		g->accepting = false;
		pthread_cond_broadcast(&r->acc_cond);
		if (id < 0) {
			g->accept_err = id;
			break;
		}
		o = expecting(w, cid, port);
		if (o == w)
			break;
		if (o)
			o->handed = id;
		else
			rtvio_close(r->c, id);
	}
	if (id >= 0)
		w->served = true;
	pthread_mutex_unlock(&r->acc_lock);
	return id;
}

static void *recv_main(void *arg)
{
	struct worker *w = arg;
	struct rtvio_cell *c = w->run->c;
	int id;

	/* A flow has one sender, hence one connection: when it ends (the sender
	 * closed, a reset, the stop) the flow is over for this run. */
	id = accept_own(w);
	if (id < 0) {
		w->err = id == -EINTR ? 0 : id;
		w->status = rtvio_cell_error(c) ? "broker gone"
			    : id == -EINTR      ? "no sender"
						: "accept failed";
		goto out;
	}
	w->connections++;
	w->sock = id;
	if (w->flow->type == RTVIO_STREAM)
		wl_stream_init(&w->stream, w->reasm, w->size);
	receive(w);
	rtvio_close(c, id);
	w->sock = -1;
out:
	atomic_store(&w->done, true);
	return NULL;
}

/* ---- Senders ------------------------------------------------------------------- */

static int connect_retrying(struct worker *w)
{
	struct rtvio_cell *c = w->run->c;
	const struct rtvio_flow_cfg *f = w->flow;
	uint64_t cid = w->run->cfg.cells[f->to].cid, until = wl_now_ns() + CONNECT_RETRY_NS;
	unsigned int type = f->type == RTVIO_STREAM ? RTVIO_SOCK_STREAM : RTVIO_SOCK_SEQPACKET;
	int id, rc;

	for (;;) {
		id = rtvio_socket(c, type);
		if (id < 0)
			return id;
		rc = f->from_port ? rtvio_bind(c, id, f->from_port) : 0;
		if (!rc)
			rc = rtvio_connect(c, id, cid, f->to_port, -1);
		if (!rc)
			return id;
		rtvio_close(c, id);
		/* Refused: the receiving cell is not listening yet (or the broker
		 * refuses the flow, which retrying cannot fix but cannot tell apart). */
		if ((rc != -ECONNREFUSED && rc != -ETIMEDOUT && rc != -ECONNRESET) ||
		    rtvio_cell_error(c) || stopping(w) || wl_now_ns() >= until)
			return rc;
		struct timespec ts = { 0, CONNECT_RETRY_GAP_NS };

		nanosleep(&ts, NULL);
	}
}

/* Sleeps until abs_ns (CLOCK_MONOTONIC) in slices, so that a stop is noticed. */
static bool sleep_until(struct worker *w, uint64_t abs_ns)
{
	const uint64_t slice = 100u * 1000000u;

	for (;;) {
		uint64_t now = wl_now_ns(), t = abs_ns;
		struct timespec ts;

		if (stopping(w))
			return false;
		if (now >= abs_ns)
			return true;
		if (abs_ns - now > slice)
			t = now + slice;
		ts.tv_sec = (time_t)(t / 1000000000u);
		ts.tv_nsec = (long)(t % 1000000000u);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
}

static void *send_main(void *arg)
{
	struct worker *w = arg;
	struct rtvio_cell *c = w->run->c;
	const struct rtvio_traffic *t = &w->flow->traffic;
	bool periodic = t->pattern == RTVIO_PATTERN_PERIODIC;
	struct wl_period plan;
	int id;

	id = connect_retrying(w);
	if (id < 0) {
		w->err = id;
		w->status = id == -EINTR || stopping(w) ? "stopped"
			    : rtvio_cell_error(c)      ? "broker gone"
			    : id == -ECONNREFUSED      ? "refused"
						       : "connect failed";
		goto out;
	}
	w->sock = id;
	if (w->flow->type == RTVIO_SEQPACKET) {
		int max = rtvio_max_message(c, id);

		if (max >= 0 && (size_t)max < w->size) {
			fprintf(stderr, "rtvio cell %s: flow %s: %zu-byte messages exceed the "
					"largest this connection can carry (%d bytes)\n",
				w->run->cell->name, w->flow->name, w->size, max);
			w->err = -EMSGSIZE;
			w->status = "message too large";
			goto close;
		}
	}
	wl_period_init(&plan, wl_now_ns() + t->offset_ns, t->period_ns);
	if (t->offset_ns && !sleep_until(w, plan.next_ns))
		goto close;
	while (!t->count || w->sent < t->count) {
		/* The payload does not depend on the send time: made before the release,
		 * so that the stamp marks the send itself, as a latency should. */
		uint64_t stamp, ph = rtmsg_prepare(w->buf, w->size, w->sent);
		ssize_t n;

		if (periodic && !sleep_until(w, plan.next_ns))
			break;
		if (stopping(w))
			break;
		stamp = wl_now_ns();
		rtmsg_stamp(w->buf, w->size, w->sent, stamp, ph);
		n = rtvio_send(c, id, w->buf, w->size, 0, -1);
		if (n >= 0 && n < (ssize_t)w->size && !stopping(w)) {
			/* A blocking send stops short only on an error; the next call
			 * says which (EPIPE, ECONNRESET, ...). */
			ssize_t why = rtvio_send(c, id, w->buf + n, w->size - (size_t)n, 0, 0);

			if (why < 0 && why != -EAGAIN)
				n = why;
		}
		if (n != (ssize_t)w->size) {
			if (n == -EINTR || (n >= 0 && stopping(w)))
				break;
			w->err = n < 0 ? (int)n : -EIO;
			/* The peer closing first (EPIPE) is how a run ends when the
			 * receiving cell stops before us: not a failure of this flow. */
			if (rtvio_cell_error(c)) {
				w->status = "broker gone";
			} else if (n == -EPIPE) {
				w->status = "peer closed";
				w->err = 0;
			} else {
				w->status = "reset";
			}
			break;
		}
		w->sent++;
		w->sent_bytes += w->size;
		/* The stamp is the release: the next one is a period after it. */
		if (periodic)
			wl_period_next(&plan, stamp);
	}
	w->late = plan.late;
	w->overruns = plan.overruns;
close:
	if (!w->status)
		w->status = rtvio_cell_error(c) ? "broker gone" : "ok";
	rtvio_close(c, id);
	w->sock = -1;
out:
	atomic_store(&w->done, true);
	return NULL;
}

void *cell_thread_main(void *arg)
{
	struct worker *w = arg;
	int prio = w->run->cell->rt_priority;

	if (w->rt && prio > 0) {
		struct sched_param sp = { .sched_priority = prio };
		int e = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);

		if (e)
			warn_rt_once(w->run, e);
	}
	/* A normal thread's timed sleeps may end up to 50 us late by default (timer
	 * slack); a periodic sender wants its release times. */
	if (w->role == ROLE_SEND)
		prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	return w->role == ROLE_SEND ? send_main(w) : recv_main(w);
}

/* ---- Set-up -------------------------------------------------------------------- */

/* Pins the process to the cell's cpu, or else away from the broker's when there is
 * another one: a spinning broker and a cell on one core starve each other. */
void cell_pin(struct run *r)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	int bcpu = r->cfg.broker.cpu;
	cpu_set_t set;

	CPU_ZERO(&set);
	if (r->cell->cpu >= 0) {
		CPU_SET(r->cell->cpu, &set);
	} else if (bcpu >= 0 && n > 1) {
		for (long i = 0; i < n && i < CPU_SETSIZE; i++)
			if (i != bcpu)
				CPU_SET((int)i, &set);
	} else {
		return;
	}
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		if (r->cell->cpu >= 0)
			fprintf(stderr, "rtvio cell %s: warning: cannot pin to cpu %d: %s\n",
				r->cell->name, r->cell->cpu, strerror(errno));
		else
			fprintf(stderr, "rtvio cell %s: warning: cannot keep off the broker's "
					"cpu %d: %s\n", r->cell->name, bcpu, strerror(errno));
	}
}

int cell_setup_workers(struct run *r)
{
	struct rtvio_config *cfg = &r->cfg;

	r->w = calloc((size_t)cfg->nflows * 2, sizeof(*r->w));
	if (!r->w)
		return -ENOMEM;
	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];

		if (f->traffic.pattern == RTVIO_PATTERN_OFF)
			continue;
		for (int role = ROLE_SEND; role <= ROLE_RECV; role++) {
			struct worker *w;

			if ((role == ROLE_SEND ? f->from : f->to) != r->me)
				continue;
			w = &r->w[r->nw++];
			w->run = r;
			w->flow = f;
			w->role = (enum role)role;
			w->listen_id = w->sock = w->handed = -1;
			w->rt = !f->best_effort;
			w->size = f->traffic.size;
			/* A stream carries rtmsg framing: a message holds at least a header. */
			if (f->type == RTVIO_STREAM && w->size < RTMSG_HDR)
				w->size = RTMSG_HDR;
			wl_rx_init(&w->rx, f->best_effort ? 0 : f->deadline_ns);
			if (role == ROLE_RECV && f->type == RTVIO_STREAM) {
				w->buf_len = STREAM_RECV_CHUNK;
				w->reasm = malloc(w->size);
				if (!w->reasm)
					return -ENOMEM;
			} else {
				w->buf_len = w->size;
			}
			w->buf = malloc(w->buf_len);
			if (!w->buf)
				return -ENOMEM;
			memset(w->buf, 0, w->buf_len);
		}
	}
	return 0;
}

/* Receivers listen before the cell says it is ready, so a sender that starts after
 * the ready signal never finds the port closed. One listener per port: at start,
 * cell_check_listeners made sure every flow to it has one type. */
int cell_start_listeners(struct run *r)
{
	for (int i = 0; i < r->nw; i++) {
		struct worker *w = &r->w[i];
		unsigned int type = w->flow->type == RTVIO_STREAM ? RTVIO_SOCK_STREAM
								  : RTVIO_SOCK_SEQPACKET;
		int id, rc;

		if (w->role != ROLE_RECV)
			continue;
		w->lead = w;
		for (int j = 0; j < i; j++)
			if (r->w[j].role == ROLE_RECV && r->w[j].flow->to_port == w->flow->to_port)
				w->lead = r->w[j].lead;
		if (w->lead != w)
			continue;
		id = rtvio_socket(r->c, type);
		if (id < 0) {
			fprintf(stderr, "rtvio cell %s: flow %s: no socket: %s\n", r->cell->name,
				w->flow->name, strerror(-id));
			return id;
		}
		rc = rtvio_listen(r->c, id, w->flow->to_port, 4);
		if (rc) {
			fprintf(stderr, "rtvio cell %s: flow %s: cannot listen on port %u: %s\n",
				r->cell->name, w->flow->name, w->flow->to_port, strerror(-rc));
			return rc;
		}
		w->listen_id = id;
	}
	return 0;
}
