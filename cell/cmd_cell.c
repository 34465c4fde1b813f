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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cell_cmd.h"
#include "cell_run.h"

static bool all_done(const struct run *r)
{
	for (int i = 0; i < r->nw; i++)
		if (!atomic_load(&r->w[i].done))
			return false;
	return true;
}

/* Loads the config and finds process cell `name` in it: 0, or exit status 2. */
static int load_cell(struct run *r, const char *conf, const char *name)
{
	char err[512];

	if (rtvio_config_load(conf, &r->cfg, err, sizeof(err))) {
		fprintf(stderr, "rtvio cell: %s\n", err);
		return 2;
	}
	r->me = rtvio_config_find_cell(&r->cfg, name);
	if (r->me < 0) {
		fprintf(stderr, "rtvio cell: %s: no [cell %s]\n", conf, name);
		return 2;
	}
	r->cell = &r->cfg.cells[r->me];
	if (r->cell->vm) {
		fprintf(stderr, "rtvio cell: %s: cell %s is a VM cell (vm = yes), not a process "
				"cell\n", conf, name);
		return 2;
	}
	if (cell_check_region(conf, r->cell) || cell_check_listeners(conf, &r->cfg, r->me))
		return 2;
	return 0;
}

/* Attaches to the broker as the cell: 0, or the exit status. */
static int attach_cell(struct run *r, const char *name, double wait)
{
	struct rtvio_cell_opts opts = { 0 };
	char err[512];

	snprintf(r->sock_path, sizeof(r->sock_path), "%s/%s.sock", r->cfg.broker.socket_dir,
		 name);
	/* The config gives RX buffer payload; gvsock counts the header in. */
	opts.rx_buf_size = (uint32_t)(r->cell->rx_buf + GV_HDR_SIZE);
	opts.tx_payload = (uint32_t)r->cell->max_packet;
	opts.poll_us = r->cell->poll_us;
	opts.attach_wait_ms = (int)(wait * 1000);
	r->c = rtvio_cell_open(r->sock_path, r->cell->region, &opts, err, sizeof(err));
	if (!r->c) {
		fprintf(stderr, "rtvio cell %s: %s\n", name, err);
		return errno == ENOSPC ? 2 : 1;
	}
	return 0;
}

/* One thread per flow end: 0; 1 when one did not start (the run is told to stop,
 * and the threads that did start are joined by the caller); -1 when none could. */
static int start_threads(struct run *r, const char *name)
{
	pthread_attr_t attr;
	int status = 0;

	/* Flow threads keep their buffers on the heap: a small stack each, since
	 * mlockall() below faults in and pins every stack whole (the default 8 MiB
	 * made a cell of 20 flows pin 160 MiB, and 32 such cells took half a minute
	 * to start on one core). */
	if (pthread_attr_init(&attr) || pthread_attr_setstacksize(&attr, CELL_THREAD_STACK)) {
		fprintf(stderr, "rtvio cell %s: cannot set up threads\n", name);
		return -1;
	}
	for (int i = 0; i < r->nw; i++) {
		if (pthread_create(&r->w[i].th, &attr, cell_thread_main, &r->w[i])) {
			fprintf(stderr, "rtvio cell %s: cannot start a thread\n", name);
			atomic_store(&r->stop, true);
			rtvio_cell_interrupt(r->c);
			status = 1;
			break;
		}
		r->w[i].started = true;
	}
	pthread_attr_destroy(&attr);
	return status;
}

/* Everything is allocated and listening: lock it in RAM and tell the parent. */
static void announce_ready(const struct run *r, const char *name, int ready_fd)
{
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
}

/* Runs until the duration is over, a signal, every flow done or the broker gone
 * (returns true for the last). */
static bool wait_for_end(struct run *r, const sigset_t *sigs, double duration)
{
	uint64_t end_ns = duration > 0 ? wl_now_ns() + (uint64_t)(duration * 1e9) : 0;

	while (!atomic_load(&r->stop)) {
		struct timespec tick = { 0, 50 * 1000000 };
		uint64_t now = wl_now_ns();
		int sig;

		if (end_ns && now >= end_ns)
			break;
		if (end_ns && end_ns - now < 50u * 1000000u)
			tick.tv_nsec = (long)(end_ns - now);
		sig = sigtimedwait(sigs, NULL, &tick);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		/* Notices a broker that closed the socket even when no flow is waiting. */
		if (rtvio_cell_process(r->c))
			return true;
		if (r->nw && all_done(r))
			break;
	}
	return false;
}

static void stop_threads(struct run *r)
{
	atomic_store(&r->stop, true);
	rtvio_cell_interrupt(r->c);
	for (int i = 0; i < r->nw; i++)
		if (r->w[i].started)
			pthread_join(r->w[i].th, NULL);
}

/* The exit status the run earned: 1 for a broken broker, a flow that failed or a
 * message lost, reordered, duplicated or corrupt; else 0. */
static int judge(const struct run *r, const char *name, bool broken)
{
	int rc = rtvio_cell_error(r->c), status = 0;

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
	return status;
}

static void print_results(const struct run *r, bool json)
{
	json_t *doc = cell_report(r);

	if (json) {
		char *s = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(12));

		if (s) {
			puts(s);
			free(s);
		}
	} else {
		cell_print_table(doc);
	}
	fflush(stdout);
	json_decref(doc);
}

/* Closes the listeners and gives the closing handshakes (SHUTDOWN out, RST back) a
 * moment, so that peers see an orderly end rather than the reset our detaching
 * causes. */
static void close_gently(struct run *r)
{
	for (int i = 0; i < r->nw; i++)
		if (r->w[i].listen_id >= 0)
			rtvio_close(r->c, r->w[i].listen_id);
	for (int i = 0; i < 40 && !rtvio_cell_error(r->c); i++) {
		struct timespec ts = { 0, 5 * 1000000 };

		rtvio_cell_process(r->c);
		nanosleep(&ts, NULL);
	}
}

static void run_free(struct run *r)
{
	for (int i = 0; i < r->nw; i++) {
		free(r->w[i].buf);
		free(r->w[i].reasm);
	}
	free(r->w);
	rtvio_config_free(&r->cfg);
	pthread_cond_destroy(&r->acc_cond);
	pthread_mutex_destroy(&r->acc_lock);
	free(r);
}

int cmd_cell(int argc, char **argv)
{
	const char *conf = NULL, *name = NULL;
	double duration = 0, wait = 10;
	bool json = false, broken;
	int ready_fd = -1, rc, status;
	struct run *r;
	sigset_t sigs;

	rc = cell_parse_args(argc, argv, &duration, &json, &ready_fd, &wait, &conf, &name);
	if (rc >= 0)
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r)
		return 1;
	pthread_mutex_init(&r->acc_lock, NULL);
	pthread_cond_init(&r->acc_cond, NULL);
	status = load_cell(r, conf, name);
	if (status) {
		run_free(r);
		return status;
	}
	if (cell_setup_workers(r)) {
		fprintf(stderr, "rtvio cell %s: out of memory\n", name);
		run_free(r);
		return 1;
	}
	/* Signals are taken by sigtimedwait in this thread only; the workers (created
	 * below) inherit the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	cell_pin(r);
	status = attach_cell(r, name, wait);
	if (status) {
		run_free(r);
		return status;
	}
	if (cell_start_listeners(r)) {
		status = 1;
		goto out;
	}
	status = start_threads(r, name);
	if (status < 0) {
		status = 1;
		goto out;
	}
	/* A thread that did not start has stopped the run: it still reports. */
	announce_ready(r, name, ready_fd);
	broken = wait_for_end(r, &sigs, duration);
	stop_threads(r);
	if (judge(r, name, broken))
		status = 1;
	print_results(r, json);
	close_gently(r);
out:
	rtvio_cell_close(r->c);
	run_free(r);
	return status;
}
