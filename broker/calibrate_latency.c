/* `rtvio calibrate`: ingest and notify latency, two threads each.
 * - ingest latency: a sender thread stamps each packet just before it publishes and
 *   kicks; the broker thread stamps the dp_run call whose pass took it.
 * - notify latency: the notify hook stamps the notification (and, with poll = no,
 *   writes the call eventfd as the daemon does); the receiver thread stamps the
 *   moment it holds the used buffer.
 * A spinning thread (poll = yes) is its own stall probe and records its own gaps;
 * sleeping runs (poll = no) have none: one would keep a cpu awake and make every
 * wake-up look faster than it is. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "calibrate_internal.h"

struct lat {
	struct crun *r;
	bool poll;
	bool notify;	/* notify run; else ingest run */
	int broker_cpu, other_cpu;
	size_t n;
	uint64_t *t_a;	/* ingest: kick; notify: receiver running */
	uint64_t *t_b;	/* ingest: broker saw it */
	atomic_size_t progress;	/* samples completed (receiver / broker side) */
	atomic_bool stop;
	atomic_int err;
	struct gaplog glog[2];	/* broker, cell thread (poll = yes only) */
	double *v, *all;	/* latencies: those kept, and every one */
	const char *what;	/* the run's name in messages */
};

static void gaplog_note(struct gaplog *l, uint64_t *prev, uint64_t t)
{
	if (t - *prev > C_GAP_NS && l->n < l->cap)
		l->g[l->n++] = (struct gap){ .start_ns = *prev, .len_ns = t - *prev };
	*prev = t;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000u),
			       .tv_nsec = (long)(t % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void wait_fds(const int *fds, unsigned int n, int timeout_ms)
{
	struct pollfd p[2];
	uint64_t v;

	for (unsigned int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	if (poll(p, n, timeout_ms) > 0) {
		for (unsigned int i = 0; i < n; i++) {
			if (p[i].revents & POLLIN)
				while (read(fds[i], &v, sizeof(v)) > 0)
					;
		}
	}
}

/* Ingest run, cell side: a periodic sender that also keeps b's RX ring stocked. */
static void *ingest_sender(void *arg)
{
	struct lat *L = arg;
	struct ccell *a = &L->r->c[0], *b = &L->r->c[1];
	uint64_t next = cal_now_ns() + C_PERIOD_NS;
	bool kk;

	cal_pin(L->other_cpu, true); /* it sleeps between packets */
	for (size_t k = 0; k < L->n && !atomic_load(&L->stop); k++) {
		struct vsock_hdr h;
		uint64_t seq;
		unsigned int got = 0;
		int t;

		sleep_until(next);
		/* One packet at a time (see notify_broker). */
		while (atomic_load(&L->progress) < k && !atomic_load(&L->stop))
			sleep_until(cal_now_ns() + 20000);
		next = cal_now_ns() + C_PERIOD_NS;
		while ((t = cal_take_rx(b, &h, &seq)) == 1)
			got++;
		if (t < 0 || (got && cal_post_rx(b, got, &kk))) {
			atomic_store(&L->err, -EPROTO);
			break;
		}
		if (got && kk)
			cal_kick(b, DP_QUEUE_RX);
		cal_take_tx(a);
		if (cal_add_tx(a, VSOCK_OP_RW, C_PORT_A, C_CID_B, C_PORT_B, C_CID_A, 64, k)) {
			atomic_store(&L->err, -ENOSPC);
			break;
		}
		L->t_a[k] = cal_now_ns();
		if (vq_driver_publish(&a->drv[1]))
			cal_kick(a, DP_QUEUE_TX);
	}
	return NULL;
}

/* Ingest run, broker side: dp_run as the daemon runs it; stamps the pass that took
 * each packet. */
static void *ingest_broker(void *arg)
{
	struct lat *L = arg;
	struct dp *dp = L->r->dp;
	int fds[2] = { L->r->c[0].kick[DP_QUEUE_TX], L->r->c[1].kick[DP_QUEUE_RX] };
	struct dp_cell_stats st;
	uint64_t base, prev = cal_now_ns();
	size_t seen = 0;

	cal_pin(L->broker_cpu, !L->poll);
	dp_stats_cell(dp, 0, &st);
	base = st.pkts_in;
	while (seen < L->n && !atomic_load_explicit(&L->stop, memory_order_relaxed)) {
		uint64_t t;

		if (!L->poll)
			wait_fds(fds, 2, 10);
		t = cal_now_ns();
		if (L->poll)
			gaplog_note(&L->glog[0], &prev, t);
		dp_run(dp, t);
		dp_stats_cell(dp, 0, &st);
		while (seen < L->n && base + seen < st.pkts_in)
			L->t_b[seen++] = t;
		atomic_store_explicit(&L->progress, seen, memory_order_relaxed);
	}
	return NULL;
}

/* Notify run, broker side: the sender's part is played here too (a's driver side is
 * this thread's), so that the cell cpu holds only the receiver. */
static void *notify_broker(void *arg)
{
	struct lat *L = arg;
	struct crun *r = L->r;
	struct ccell *a = &r->c[0];
	int fds[1] = { r->c[1].kick[DP_QUEUE_RX] };
	uint64_t next_send = cal_now_ns() + C_PERIOD_NS, prev = cal_now_ns(), give_up = 0;
	size_t k = 0;

	cal_pin(L->broker_cpu, !L->poll);
	while (!atomic_load_explicit(&L->stop, memory_order_relaxed)) {
		uint64_t t = cal_now_ns();

		if (L->poll)
			gaplog_note(&L->glog[0], &prev, t);
		/* One packet at a time: each sample sees an otherwise idle data plane, and
		 * a receiver held up by other load never fills the rings. */
		if (k < L->n && t >= next_send && atomic_load(&L->progress) >= k) {
			cal_take_tx(a);
			if (cal_add_tx(a, VSOCK_OP_RW, C_PORT_A, C_CID_B, C_PORT_B, C_CID_A, 64, k)) {
				atomic_store(&L->err, -ENOSPC);
				break;
			}
			vq_driver_publish(&a->drv[1]);
			r->cur_seq = k++;
			next_send += C_PERIOD_NS;
			if (next_send < t)
				next_send = t + C_PERIOD_NS;
			if (k == L->n)
				give_up = t + 2000000000ull;
		}
		dp_run(r->dp, t);
		if (k == L->n && (atomic_load(&L->progress) >= L->n || t > give_up))
			break;
		if (!L->poll) {
			uint64_t now = cal_now_ns();
			int ms = now >= next_send ? 0 : (int)((next_send - now) / 1000000u);

			if (now < next_send && ms == 0) {
				sleep_until(next_send);
				continue;
			}
			wait_fds(fds, 1, k == L->n ? 10 : ms);
		}
	}
	return NULL;
}

/* Notify run, cell side: takes each delivered buffer and stamps it. */
static void *notify_receiver(void *arg)
{
	struct lat *L = arg;
	struct ccell *b = &L->r->c[1];
	uint64_t prev = cal_now_ns();
	size_t got = 0;

	cal_pin(L->other_cpu, !L->poll);
	while (got < L->n && !atomic_load_explicit(&L->stop, memory_order_relaxed)) {
		struct vsock_hdr h;
		uint64_t seq, t;
		bool kk;
		int rr;

		/* A spinning receiver is its own probe: a long time between two turns of
		 * this loop is a stall (noted before looking, so that a stall right
		 * before a buffer arrives is seen). */
		if (L->poll)
			gaplog_note(&L->glog[1], &prev, cal_now_ns());
		rr = cal_take_rx(b, &h, &seq);
		if (rr < 0) {
			atomic_store(&L->err, rr);
			break;
		}
		if (rr == 1) {
			t = cal_now_ns();
			if (seq < L->n)
				L->t_a[seq] = t;
			got++;
			atomic_store(&L->progress, got);
			if (cal_post_rx(b, 1, &kk)) {
				atomic_store(&L->err, -ENOSPC);
				break;
			}
			if (kk)
				cal_kick(b, DP_QUEUE_RX);
			/* Ask for the notification even when spinning: its hook is the
			 * broker-side stamp. */
			vq_driver_enable_cb(&b->drv[0]);
			continue;
		}
		if (L->poll)
			continue;
		if (vq_driver_enable_cb(&b->drv[0]))
			continue;
		{
			int fds[1] = { b->call[DP_QUEUE_RX] };

			wait_fds(fds, 1, 10);
		}
	}
	return NULL;
}

static void overlap_any(const struct lat *L, uint64_t t0, uint64_t t1, bool *stalled)
{
	for (int i = 0; i < 2; i++) {
		struct gap_overlap ov;

		gaps_overlapping(L->glog[i].g, L->glog[i].n, t0, t1, &ov);
		if (ov.count)
			*stalled = true;
	}
}

static int lat_alloc(struct lat *L)
{
	L->t_a = calloc(L->n, sizeof(uint64_t));
	L->t_b = calloc(L->n, sizeof(uint64_t));
	L->v = malloc(L->n * sizeof(*L->v));
	L->all = malloc(L->n * sizeof(*L->all));
	for (int i = 0; i < 2; i++) {
		L->glog[i].cap = C_MAX_GAPS;
		L->glog[i].g = malloc(C_MAX_GAPS * sizeof(struct gap));
	}
	if (!L->t_a || !L->t_b || !L->v || !L->all || !L->glog[0].g || !L->glog[1].g)
		return -ENOMEM;
	return 0;
}

static void lat_free(struct lat *L)
{
	free(L->t_a);
	free(L->t_b);
	free(L->v);
	free(L->all);
	free(L->glog[0].g);
	free(L->glog[1].g);
}

/* Watches the threads' progress until every sample is in, one failed, or nothing
 * moved for 5 s (then the samples missing are reported by the caller). */
static void lat_watch(struct lat *L, struct prog *pr)
{
	size_t last = 0;
	uint64_t idle_since = cal_now_ns();

	for (;;) {
		size_t p = atomic_load(&L->progress);

		if (p >= L->n || atomic_load(&L->err))
			break;
		if (p != last) {
			cal_progress(pr, W_LAT * (double)(p - last), L->what);
			last = p;
			idle_since = cal_now_ns();
		} else if (cal_now_ns() - idle_since > 5000000000ull) {
			break;
		}
		usleep(20000);
	}
	cal_progress(pr, W_LAT * (double)(L->n - last), L->what);
}

/* Runs the broker thread and the cell thread of the run to their end. */
static int lat_threads(struct lat *L, struct prog *pr)
{
	pthread_t tb, tc;

	if (pthread_create(&tb, NULL, L->notify ? notify_broker : ingest_broker, L))
		return -EAGAIN;
	if (pthread_create(&tc, NULL, L->notify ? notify_receiver : ingest_sender, L)) {
		atomic_store(&L->stop, true);
		pthread_join(tb, NULL);
		return -EAGAIN;
	}
	lat_watch(L, pr);
	atomic_store(&L->stop, true);
	pthread_join(tc, NULL);
	pthread_join(tb, NULL);
	return 0;
}

/* The latencies from the stamps: into L->all every one, into L->v those that
 * overlapped no recorded gap. */
static int lat_samples(struct lat *L, size_t *kept, size_t *stalled, char *err,
		       size_t errlen)
{
	for (size_t k = 0; k < L->n; k++) {
		/* ingest: t_a kick, t_b seen; notify: t_b notified, t_a running */
		uint64_t t0 = L->notify ? L->t_b[k] : L->t_a[k];
		uint64_t t1 = L->notify ? L->t_a[k] : L->t_b[k];
		bool st = false;

		/* A receiver that is running (spinning, or still busy with the previous
		 * buffer) may take the buffer between the push and the broker's notify
		 * decision, which then rightly sends none: it needed no notification, a
		 * latency of 0. */
		if (L->notify && !t0 && t1)
			t0 = t1;
		if (!t0 || !t1) {
			snprintf(err, errlen, "%s run (poll = %s): sample %zu of %zu never completed",
				 L->what, L->poll ? "yes" : "no", k, L->n);
			return -ETIMEDOUT;
		}
		if (L->poll)
			overlap_any(L, t0 < t1 ? t0 : t1, t1 > t0 ? t1 : t0 + 1, &st);
		/* Seen within the pass that started just before the publication: 0. */
		L->all[k] = t1 > t0 ? (double)(t1 - t0) : 0;
		if (st)
			(*stalled)++;
		else
			L->v[(*kept)++] = L->all[k];
	}
	return 0;
}

/* The distribution from the samples, and the gaps the spinning threads saw. */
static int lat_result(struct lat *L, size_t kept, size_t stalled, struct cal_dist *out,
		      struct cal_results *res, char *err, size_t errlen)
{
	bool check = L->poll;
	int ret;

	if (!kept) {
		/* Every sample overlapped a gap: the machine is too busy (or too slow, as
		 * under a sanitizer) for its loops to tell stalls apart. Keep them all,
		 * which can only raise the values, and say so. */
		fprintf(stderr, "rtvio calibrate: %s (poll = %s): every sample overlapped a "
			"recorded gap; keeping them all (the machine is too busy to tell host "
			"stalls apart)\n", L->what, L->poll ? "yes" : "no");
		memcpy(L->v, L->all, L->n * sizeof(*L->v));
		kept = L->n;
		stalled = 0;
		check = false;
	}
	for (int i = 0; i < 2; i++) {
		res->gaps += L->glog[i].n;
		for (size_t g = 0; g < L->glog[i].n; g++) {
			if (L->glog[i].g[g].len_ns > res->longest_gap_ns)
				res->longest_gap_ns = L->glog[i].g[g].len_ns;
		}
	}
	ret = cal_dist_make(L->v, kept, stalled, check, out);
	if (ret)
		snprintf(err, errlen, "%s run (poll = %s): %s", L->what, L->poll ? "yes" : "no",
			 strerror(-ret));
	return ret;
}

int cal_latency_run(struct crun *r, const struct cal_opts *o, bool notify, bool poll,
		    size_t n, struct cal_dist *out, struct cal_results *res,
		    struct prog *pr, char *err, size_t errlen)
{
	struct rtvio_config cfg;
	struct lat L;
	size_t kept = 0, stalled = 0;
	bool kk;
	int ret, e;

	memset(&L, 0, sizeof(L));
	L.r = r;
	L.poll = poll;
	L.notify = notify;
	L.broker_cpu = o->broker_cpu;
	L.other_cpu = o->other_cpu;
	L.n = n;
	L.what = notify ? "notify-latency" : "ingest-latency";
	ret = lat_alloc(&L);
	r->t_notify = L.t_b;
	if (ret) {
		snprintf(err, errlen, "%s run: out of memory", L.what);
		goto free;
	}
	ret = cal_env_open(r, &cfg, 4096, poll, err, errlen);
	if (ret)
		goto free;
	r->ts = NULL;
	r->n_samples = n;
	r->cur_seq = 0;
	r->rec_notify = notify;
	r->write_call = notify && !poll;
	ret = cal_post_rx(&r->c[1], C_QSIZE / 2, &kk);
	if (ret)
		goto close;
	if (notify)
		vq_driver_enable_cb(&r->c[1].drv[0]);
	ret = lat_threads(&L, pr);
	if (ret)
		goto close;
	e = atomic_load(&L.err);
	if (e) {
		ret = e;
		snprintf(err, errlen, "%s run (poll = %s): %s", L.what, poll ? "yes" : "no",
			 strerror(-e));
		goto close;
	}
	ret = lat_samples(&L, &kept, &stalled, err, errlen);
	if (!ret)
		ret = lat_result(&L, kept, stalled, out, res, err, errlen);
close:
	r->rec_notify = false;
	r->write_call = false;
	cal_env_close(r, &cfg);
free:
	r->t_notify = NULL;
	lat_free(&L);
	return ret;
}
