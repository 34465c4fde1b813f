/* `rtvio cell CONFIG NAME`: runs process cell NAME of CONFIG. It attaches to the
 * broker as NAME (the socket is the identity), then, for every flow of the config:
 *   - `to` is NAME: listens on the flow's port and checks every message it gets
 *     (rtmsg: lost, reordered, corrupt, one-way latency, deadline misses); flows
 *     to one port share its listener, and each connection goes to the flow of its
 *     sender (cell and source port);
 *   - `from` is NAME: connects (retrying while the listener is not there yet) and
 *     sends: periodic flows one message per period at absolute release times,
 *     bulk flows as fast as credit allows.
 * Each flow runs on its own thread. At the end (--duration, SIGTERM, SIGINT, or
 * every flow finished) it stops cleanly and prints per-flow results; the receiver's
 * numbers are the flow's numbers (`rtvio demo` merges the cells' --json reports).
 *
 * Exit status: 0 the run completed and every message received was intact and in
 * order; 1 the broker could not be reached or went away, a flow could not run, or a
 * message was lost, reordered, duplicated or corrupt; 2 bad usage or configuration. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "../cli/commands.h"
#include "../common/config.h"
#include "../common/rtmsg.h"
#include "../common/units.h"
#include "port_posix.h"
#include "workload.h"

#define CONNECT_RETRY_NS (10ull * 1000000000u) /* the peer cell may start later */
#define CONNECT_RETRY_GAP_NS (50u * 1000000u)
#define STREAM_RECV_CHUNK (64u * 1024u)
/* Each flow thread's stack: its buffers live on the heap (see main). */
#define CELL_THREAD_STACK (512u * 1024u)

enum role { ROLE_SEND, ROLE_RECV };

struct run;

struct worker {
	struct run *run;
	const struct rtvio_flow_cfg *flow;
	enum role role;
	pthread_t th;
	bool started;
	int listen_id;		/* receivers: created before the cell reports ready; on
				 * the first receiver of each port only (its `lead`) */
	struct worker *lead;	/* receivers: the one whose listener this flow's port is */
	bool accepting;		/* lead: one of its receivers is in rtvio_accept */
	int accept_err;		/* lead: accepting ended (stop, broker gone) */
	int handed;		/* a connection accepted for us by another receiver */
	bool served;		/* has had its connection */
	int sock;
	size_t size;		/* bytes per message */
	bool rt;		/* a real-time flow's thread: SCHED_FIFO when configured */
	uint8_t *buf;		/* message buffer (sender) / receive buffer */
	size_t buf_len;
	uint8_t *reasm;		/* stream receivers: reassembly buffer */
	struct wl_stream stream;
	uint64_t feed_now;	/* arrival time of the bytes being fed */
	atomic_bool done;
	/* Results, read by the main thread after join. */
	const char *status;	/* "ok", "stopped", "reset", "refused", ... */
	int err;
	uint64_t sent, sent_bytes;
	uint64_t late, overruns;
	uint64_t connections;
	struct wl_rx_stats rx;
};

struct run {
	struct rtvio_config cfg;
	int me;
	const struct rtvio_cell_cfg *cell;
	struct rtvio_cell *c;
	struct worker *w;
	int nw;
	atomic_bool stop;
	atomic_bool warned_rt;
	pthread_mutex_t acc_lock; /* the receivers' accept hand-over */
	pthread_cond_t acc_cond;
	char sock_path[RTVIO_PATH_MAX + 8];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtvio cell CONFIG NAME [--duration S] [--json] [--ready-fd N] [--wait S]\n"
		"\n"
		"Runs process cell NAME of CONFIG: attaches to the broker on\n"
		"<socket_dir>/NAME.sock, receives and checks every flow to NAME, sends every\n"
		"flow from NAME (periodic: one message per period; bulk: as fast as credit\n"
		"allows), then prints per-flow results.\n"
		"\n"
		"  --duration S   stop after S seconds (default: at SIGTERM/SIGINT, or when\n"
		"                 every flow has finished)\n"
		"  --json         print one JSON document instead of a table\n"
		"  --ready-fd N   write \"ready\\n\" to descriptor N once attached and listening,\n"
		"                 then close it\n"
		"  --wait S       wait up to S seconds for the broker's socket (default 10)\n"
		"\n"
		"Exit status: 0 every message intact and in order; 1 broker unreachable or gone,\n"
		"a flow could not run, or messages lost/reordered/duplicated/corrupt; 2 bad usage\n"
		"or config.\n");
}

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

static void *thread_main(void *arg)
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
static void pin(struct run *r)
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

static int setup_workers(struct run *r)
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
 * the ready signal never finds the port closed. One listener per port: the loader
 * made every flow to it of one type. */
static int start_listeners(struct run *r)
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

/* ---- Results ------------------------------------------------------------------- */

/* The receiver's slowest messages, slowest first: [{seq, stamp_ns, latency_us}]. */
static json_t *slowest_json(const struct wl_rx_stats *st)
{
	struct wl_slow w[WL_SLOWEST];
	unsigned n = st->nslowest;
	json_t *a = json_array();

	memcpy(w, st->slowest, n * sizeof(w[0]));
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && w[j].latency_ns > w[j - 1].latency_ns; j--) {
			struct wl_slow t = w[j];

			w[j] = w[j - 1];
			w[j - 1] = t;
		}
	for (unsigned i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:I, s:I, s:f}", "seq", (json_int_t)w[i].seq,
						   "stamp_ns", (json_int_t)w[i].stamp_ns,
						   "latency_us", (double)w[i].latency_ns / 1e3));
	return a;
}

static json_t *us_or_null(const struct wl_hist *h, double q)
{
	if (!h->count)
		return json_null();
	return json_real((double)(q < 0 ? h->min_ns : wl_hist_quantile(h, q)) / 1e3);
}

static json_t *report(const struct run *r)
{
	json_t *doc = json_object(), *flows = json_array();

	json_object_set_new(doc, "cell", json_string(r->cell->name));
	json_object_set_new(doc, "cid", json_integer((json_int_t)rtvio_cell_cid(r->c)));
	json_object_set_new(doc, "mlocked", json_boolean(rtvio_cell_mlocked(r->c)));
	{
		/* What the cell's stack saw, including what it refused from the broker. */
		struct gv_stats st;
		json_t *o = json_object();

		rtvio_cell_stats(r->c, &st);
		json_object_set_new(o, "rx_packets", json_integer((json_int_t)st.rx_packets));
		json_object_set_new(o, "rx_bytes", json_integer((json_int_t)st.rx_bytes));
		json_object_set_new(o, "tx_packets", json_integer((json_int_t)st.tx_packets));
		json_object_set_new(o, "tx_bytes", json_integer((json_int_t)st.tx_bytes));
		json_object_set_new(o, "rx_bad", json_integer((json_int_t)(st.rx_bad_len +
									    st.rx_bad_hdr +
									    st.rx_bad_credit)));
		json_object_set_new(o, "credit_updates_sent",
				    json_integer((json_int_t)st.credit_updates_sent));
		json_object_set_new(o, "ring_errors", json_integer((json_int_t)st.ring_errors));
		json_object_set_new(doc, "stack", o);
	}
	for (int i = 0; i < r->nw; i++) {
		const struct worker *w = &r->w[i];
		const struct rtvio_flow_cfg *f = w->flow;
		bool rx = w->role == ROLE_RECV;
		json_t *o = json_object(), *lat = json_object();

		json_object_set_new(o, "name", json_string(f->name));
		json_object_set_new(o, "role", json_string(rx ? "recv" : "send"));
		json_object_set_new(o, "type", json_string(rtvio_sock_type_name(f->type)));
		json_object_set_new(o, "class",
				    json_string(f->best_effort ? "best-effort" : "real-time"));
		json_object_set_new(o, "status", json_string(w->status ? w->status : "not run"));
		json_object_set_new(o, "messages",
				    json_integer((json_int_t)(rx ? w->rx.messages : w->sent)));
		json_object_set_new(o, "bytes",
				    json_integer((json_int_t)(rx ? w->rx.bytes : w->sent_bytes)));
		json_object_set_new(o, "lost", json_integer((json_int_t)w->rx.lost));
		json_object_set_new(o, "reordered", json_integer((json_int_t)w->rx.reordered));
		json_object_set_new(o, "duplicates", json_integer((json_int_t)w->rx.duplicates));
		json_object_set_new(o, "corrupt", json_integer((json_int_t)w->rx.corrupt));
		json_object_set_new(lat, "min", us_or_null(&w->rx.lat, -1));
		json_object_set_new(lat, "p50", us_or_null(&w->rx.lat, 0.5));
		json_object_set_new(lat, "p99", us_or_null(&w->rx.lat, 0.99));
		json_object_set_new(lat, "p999", us_or_null(&w->rx.lat, 0.999));
		json_object_set_new(lat, "max", us_or_null(&w->rx.lat, 1.0));
		json_object_set_new(o, "latency_us", lat);
		json_object_set_new(o, "deadline_us",
				    f->best_effort ? json_null()
						   : json_real((double)f->deadline_ns / 1e3));
		json_object_set_new(o, "deadline_misses",
				    json_integer((json_int_t)w->rx.deadline_misses));
		if (rx)
			json_object_set_new(o, "slowest", slowest_json(&w->rx));
		if (!rx && f->traffic.pattern == RTVIO_PATTERN_PERIODIC) {
			json_object_set_new(o, "late_releases",
					    json_integer((json_int_t)w->late));
			json_object_set_new(o, "lost_periods",
					    json_integer((json_int_t)w->overruns));
		}
		json_array_append_new(flows, o);
	}
	json_object_set_new(doc, "flows", flows);
	return doc;
}

static void print_num(const json_t *v, int width)
{
	if (json_is_number(v))
		printf(" %*.1f", width, json_number_value(v));
	else
		printf(" %*s", width, "-");
}

static void print_table(json_t *doc)
{
	json_t *flows = json_object_get(doc, "flows"), *f;
	size_t i;

	printf("cell %s (cid %lld); latency one-way in microseconds\n",
	       json_string_value(json_object_get(doc, "cell")),
	       (long long)json_integer_value(json_object_get(doc, "cid")));
	printf("%-12s %-4s %-12s %9s %6s %6s %7s %8s %8s %8s %8s %8s %6s\n", "flow", "role",
	       "status", "messages", "lost", "reord", "corrupt", "min", "p50", "p99", "p99.9",
	       "max", "misses");
	json_array_foreach(flows, i, f) {
		json_t *lat = json_object_get(f, "latency_us");

		printf("%-12s %-4s %-12s %9lld %6lld %6lld %7lld",
		       json_string_value(json_object_get(f, "name")),
		       json_string_value(json_object_get(f, "role")),
		       json_string_value(json_object_get(f, "status")),
		       (long long)json_integer_value(json_object_get(f, "messages")),
		       (long long)json_integer_value(json_object_get(f, "lost")),
		       (long long)json_integer_value(json_object_get(f, "reordered")),
		       (long long)json_integer_value(json_object_get(f, "corrupt")));
		print_num(json_object_get(lat, "min"), 8);
		print_num(json_object_get(lat, "p50"), 8);
		print_num(json_object_get(lat, "p99"), 8);
		print_num(json_object_get(lat, "p999"), 8);
		print_num(json_object_get(lat, "max"), 8);
		printf(" %6lld\n", (long long)json_integer_value(json_object_get(f, "deadline_misses")));
	}
}

/* ---- Main ---------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, double *duration, bool *json, int *ready_fd,
		      double *wait, const char **conf, const char **name)
{
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "wait", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	/* 0, not 1: glibc then resets all of getopt's state (the command may run
	 * more than once in one process, as in tests). */
	optind = 0;
	while ((ch = getopt_long(argc, argv, "d:jr:w:h", opts, NULL)) != -1) {
		char *end;
		long v;

		switch (ch) {
		case 'd':
			*duration = strtod(optarg, &end);
			if (*end || !(*duration > 0) || *duration > 86400 * 365) {
				fprintf(stderr, "rtvio cell: --duration '%s': expected a positive "
						"number of seconds\n", optarg);
				return 2;
			}
			break;
		case 'j':
			*json = true;
			break;
		case 'w':
			*wait = strtod(optarg, &end);
			if (*end || !(*wait >= 0) || *wait > 3600) {
				fprintf(stderr, "rtvio cell: --wait '%s': expected seconds (0 to "
						"3600)\n", optarg);
				return 2;
			}
			break;
		case 'r':
			v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 1 << 20) {
				fprintf(stderr, "rtvio cell: --ready-fd '%s': expected a descriptor "
						"number\n", optarg);
				return 2;
			}
			*ready_fd = (int)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "rtvio cell: expected CONFIG and NAME\n");
		usage(stderr);
		return 2;
	}
	*conf = argv[optind];
	*name = argv[optind + 1];
	return -1;
}

/* The layout rtvio_cell_open makes (gvsock's default queue size) must fit the cell's
 * region: checked before anything starts, so that a region too small is reported as
 * the configuration error it is. The loader cannot check it: other process-cell
 * programs may lay out their rings differently. */
static int check_region(const char *conf, const struct rtvio_cell_cfg *cell)
{
	struct gv_layout_params lp = { 0 };
	struct gv_layout l;
	char have[32], need[32], rx[32], mp[32];
	uint64_t min = 0;

	/* The loader keeps rx_buf and max_packet at most 64 KiB. */
	lp.rx_buf_size = (uint32_t)cell->rx_buf + GV_HDR_SIZE;
	lp.tx_payload = (uint32_t)cell->max_packet;
	if (gv_layout_compute(&lp, cell->region, &l) == 0)
		return 0;
	lp.tx_slots = 1;
	if (gv_layout_compute(&lp, UINT64_MAX >> 1, &l) == 0)
		min = (l.footprint + 4095) & ~4095ull;
	fprintf(stderr, "rtvio cell: %s:%d: [cell %s]: region %s is too small for the cell's "
			"rings and buffers with rx_buf = %s and max_packet = %s (at least %s)\n",
		conf, cell->line, cell->name, rtvio_fmt_size(have, sizeof(have), cell->region),
		rtvio_fmt_size(rx, sizeof(rx), cell->rx_buf),
		rtvio_fmt_size(mp, sizeof(mp), cell->max_packet),
		rtvio_fmt_size(need, sizeof(need), min));
	return -ENOSPC;
}

static bool all_done(const struct run *r)
{
	for (int i = 0; i < r->nw; i++)
		if (!atomic_load(&r->w[i].done))
			return false;
	return true;
}

int cmd_cell(int argc, char **argv)
{
	struct rtvio_cell_opts opts = { 0 };
	const char *conf = NULL, *name = NULL;
	double duration = 0, wait = 10;
	bool json = false, broken = false;
	int ready_fd = -1, rc, status = 0;
	char err[512];
	struct run *r;
	sigset_t sigs;
	uint64_t end_ns = 0;
	json_t *doc;

	rc = parse_args(argc, argv, &duration, &json, &ready_fd, &wait, &conf, &name);
	if (rc >= 0)
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r)
		return 1;
	pthread_mutex_init(&r->acc_lock, NULL);
	pthread_cond_init(&r->acc_cond, NULL);
	if (rtvio_config_load(conf, &r->cfg, err, sizeof(err))) {
		fprintf(stderr, "rtvio cell: %s\n", err);
		status = 2;
		goto out_cfg;
	}
	r->me = rtvio_config_find_cell(&r->cfg, name);
	if (r->me < 0) {
		fprintf(stderr, "rtvio cell: %s: no [cell %s]\n", conf, name);
		status = 2;
		goto out_cfg;
	}
	r->cell = &r->cfg.cells[r->me];
	if (r->cell->vm) {
		fprintf(stderr, "rtvio cell: %s: cell %s is a VM cell (vm = yes), not a process "
				"cell\n", conf, name);
		status = 2;
		goto out_cfg;
	}
	if (check_region(conf, r->cell)) {
		status = 2;
		goto out_cfg;
	}
	if (setup_workers(r)) {
		fprintf(stderr, "rtvio cell %s: out of memory\n", name);
		status = 1;
		goto out_workers;
	}

	/* Signals are taken by sigtimedwait in this thread only; the workers (created
	 * below) inherit the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	pin(r);

	snprintf(r->sock_path, sizeof(r->sock_path), "%s/%s.sock", r->cfg.broker.socket_dir,
		 name);
	/* The config gives RX buffer payload; gvsock counts the header in. */
	opts.rx_buf_size = (uint32_t)(r->cell->rx_buf + GV_HDR_SIZE);
	opts.tx_payload = (uint32_t)r->cell->max_packet;
	opts.attach_wait_ms = (int)(wait * 1000);
	r->c = rtvio_cell_open(r->sock_path, r->cell->region, &opts, err, sizeof(err));
	if (!r->c) {
		fprintf(stderr, "rtvio cell %s: %s\n", name, err);
		status = errno == ENOSPC ? 2 : 1;
		goto out_workers;
	}
	if (start_listeners(r)) {
		status = 1;
		goto out_cell;
	}
	/* Flow threads keep their buffers on the heap: a small stack each, since
	 * mlockall() below faults in and pins every stack whole (the default 8 MiB
	 * made a cell of 20 flows pin 160 MiB, and 32 such cells took half a minute
	 * to start on one core). */
	pthread_attr_t attr;

	if (pthread_attr_init(&attr) || pthread_attr_setstacksize(&attr, CELL_THREAD_STACK)) {
		fprintf(stderr, "rtvio cell %s: cannot set up threads\n", name);
		status = 1;
		goto out_cell;
	}
	for (int i = 0; i < r->nw; i++) {
		if (pthread_create(&r->w[i].th, &attr, thread_main, &r->w[i])) {
			fprintf(stderr, "rtvio cell %s: cannot start a thread\n", name);
			atomic_store(&r->stop, true);
			rtvio_cell_interrupt(r->c);
			status = 1;
			break;
		}
		r->w[i].started = true;
	}
	pthread_attr_destroy(&attr);
	/* A real-time cell keeps everything its flows touch in RAM; all of it is
	 * allocated by now (buffers, thread stacks). Not MCL_FUTURE, which under a
	 * small RLIMIT_MEMLOCK would turn later allocations into failures. The
	 * region itself is locked by the port in any case. */
	if (r->cell->rt_priority > 0 && mlockall(MCL_CURRENT) < 0)
		fprintf(stderr, "rtvio cell %s: warning: mlockall not permitted (%s)\n", name,
			strerror(errno));
	if (ready_fd >= 0) {
		if (write(ready_fd, "ready\n", 6) != 6) {
			/* The parent is gone or does not care: nothing to do about it. */
		}
		close(ready_fd);
	}

	if (duration > 0)
		end_ns = wl_now_ns() + (uint64_t)(duration * 1e9);
	while (!atomic_load(&r->stop)) {
		struct timespec tick = { 0, 50 * 1000000 };
		uint64_t now = wl_now_ns();
		int sig;

		if (end_ns && now >= end_ns)
			break;
		if (end_ns && end_ns - now < 50u * 1000000u)
			tick.tv_nsec = (long)(end_ns - now);
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		/* Notices a broker that closed the socket even when no flow is waiting. */
		if (rtvio_cell_process(r->c)) {
			broken = true;
			break;
		}
		if (r->nw && all_done(r))
			break;
	}
	atomic_store(&r->stop, true);
	rtvio_cell_interrupt(r->c);
	for (int i = 0; i < r->nw; i++)
		if (r->w[i].started)
			pthread_join(r->w[i].th, NULL);

	rc = rtvio_cell_error(r->c);
	if (rc || broken) {
		fprintf(stderr, "rtvio cell %s: %s\n", name,
			rc == -EIO ? "the broker broke the ring rules; cell stopped"
				   : "the broker closed the connection; cell stopped");
		status = 1;
	}
	for (int i = 0; i < r->nw; i++) {
		const struct worker *w = &r->w[i];

		if (w->rx.lost || w->rx.reordered || w->rx.duplicates || w->rx.corrupt)
			status = 1;
		if (w->err && w->err != -EINTR) {
			if (!rc)
				fprintf(stderr, "rtvio cell %s: flow %s (%s): %s: %s\n", name,
					w->flow->name, w->role == ROLE_SEND ? "send" : "recv",
					w->status, strerror(-w->err));
			status = 1;
		}
	}
	doc = report(r);
	if (json) {
		char *s = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(12));

		if (s) {
			puts(s);
			free(s);
		}
	} else {
		print_table(doc);
	}
	fflush(stdout);
	json_decref(doc);
	for (int i = 0; i < r->nw; i++)
		if (r->w[i].listen_id >= 0)
			rtvio_close(r->c, r->w[i].listen_id);
	/* Give the closing handshakes (SHUTDOWN out, RST back) a moment, so that
	 * peers see an orderly end rather than the reset our detaching causes. */
	for (int i = 0; i < 40 && !rtvio_cell_error(r->c); i++) {
		struct timespec ts = { 0, 5 * 1000000 };

		rtvio_cell_process(r->c);
		nanosleep(&ts, NULL);
	}
out_cell:
	rtvio_cell_close(r->c);
out_workers:
	for (int i = 0; i < r->nw; i++) {
		free(r->w[i].buf);
		free(r->w[i].reasm);
	}
	free(r->w);
out_cfg:
	rtvio_config_free(&r->cfg);
	pthread_cond_destroy(&r->acc_cond);
	pthread_mutex_destroy(&r->acc_lock);
	free(r);
	return status;
}
