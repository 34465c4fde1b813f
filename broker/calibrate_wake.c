/* `rtvio calibrate`: the cost of waking a cell. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "calibrate_internal.h"

/* A notification to a cell that waits costs the broker more than the eventfd write
 * the step runs time (nobody waits there): the write does the wake-up's work, and on
 * a VM the cross-cpu interrupt, inside the step that delivers a piece. Here a thread
 * on the other cpu waits in read(), as a receiving cell's thread waits for its
 * notification, and the broker's cpu times each write that wakes it. */
struct wake {
	int fd;
	int cpu;
	atomic_ulong woken;
	atomic_bool stop;
};

static void *wake_waiter(void *arg)
{
	struct wake *w = arg;
	uint64_t v;

	if (cal_pin(w->cpu, true)) {
		/* unpinned: it still waits and wakes, only maybe on the broker's cpu */
	}
	while (!atomic_load(&w->stop)) {
		if (read(w->fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
			atomic_fetch_add(&w->woken, 1);
	}
	return NULL;
}

int cal_wake_run(const struct cal_opts *o, size_t want, struct cal_dist *out,
		    struct prog *pr, char *err, size_t errlen)
{
	struct wake w = { .cpu = o->other_cpu };
	double *v = malloc(want * sizeof(*v));
	pthread_t t;
	uint64_t one = 1;
	size_t n = 0, last = 0;
	int ret;

	w.fd = eventfd(0, EFD_CLOEXEC);
	if (!v || w.fd < 0) {
		ret = v ? -errno : -ENOMEM;
		snprintf(err, errlen, "wake-up run: %s", strerror(-ret));
		goto out;
	}
	if ((ret = -pthread_create(&t, NULL, wake_waiter, &w))) {
		snprintf(err, errlen, "wake-up run: cannot start the waiter: %s", strerror(-ret));
		goto out;
	}
	while (n < want) {
		struct timespec pause = { 0, C_PERIOD_NS };
		uint64_t t0, t1;

		/* Let the waiter go back to sleep in read() (and its cpu idle). */
		while (atomic_load(&w.woken) < n)
			sched_yield();
		nanosleep(&pause, NULL);
		t0 = cal_now_ns();
		if (write(w.fd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
			ret = -errno;
			snprintf(err, errlen, "wake-up run: eventfd write: %s", strerror(-ret));
			break;
		}
		t1 = cal_now_ns();
		v[n++] = (double)(t1 - t0);
		if (n - last >= 256) {
			cal_progress(pr, W_LAT * (double)(n - last), "wake-up cost");
			last = n;
		}
	}
	cal_progress(pr, W_LAT * (double)(n - last), "wake-up cost");
	atomic_store(&w.stop, true);
	if (write(w.fd, &one, sizeof(one)) < 0) {
		/* the counter cannot be full here: the waiter drains it */
	}
	pthread_join(t, NULL);
	/* Sleeping runs have no stall probe: one would keep the waiter's cpu awake. */
	if (!ret && (ret = cal_dist_make(v, n, 0, false, out)))
		snprintf(err, errlen, "wake-up run: no usable samples");
out:
	if (w.fd >= 0)
		close(w.fd);
	free(v);
	return ret;
}
