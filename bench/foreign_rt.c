/* `rtvio bench`: real-time work of other processes on this machine while a run goes.
 *
 * The gap probes (stalls.c) run at SCHED_FIFO 99: they see the VM stalled, but not a
 * SCHED_FIFO thread of some other program at the broker's or the cells' priority,
 * which the scheduler runs before (or instead of) them. On a shared machine such a
 * thread (another broker under test, a calibration) can hold the broker's cpu for
 * 100 ms while the probes run undisturbed. So a sampler thread follows every
 * SCHED_FIFO/SCHED_RR thread at or above a priority that is not this process or one
 * of its descendants (the run's broker, cells and `rtvio hostile`): it finds them in
 * /proc every FRT_SCAN_NS and reads the cpu time each has had (schedstat) every
 * FRT_INTERVAL_NS, so that the time they took out of any window can be told. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "runner.h"

#define FRT_SCAN_NS 200000000ull

/* Field `idx` (1-based, as in proc(5)) of a /proc stat line, after the comm field,
 * which may hold spaces and parentheses: 0 when absent. */
static long long stat_field(const char *line, int idx)
{
	const char *p = strrchr(line, ')');
	long long v = 0;

	if (!p)
		return 0;
	p++;
	for (int i = 3; i <= idx && p; i++) {
		while (*p == ' ')
			p++;
		if (i == idx)
			return strtoll(p, NULL, 10);
		p = strchr(p, ' ');
	}
	return v;
}

static bool read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	bool ok = f && fgets(buf, (int)len, f);

	if (f)
		fclose(f);
	return ok;
}

/* Is pid this process or a descendant of it? The parent chain, up to init. */
static bool ours(pid_t pid, pid_t self)
{
	char path[64], line[512];

	for (int depth = 0; pid > 1 && depth < 16; depth++) {
		if (pid == self)
			return true;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		if (!read_line(path, line, sizeof(line)))
			return false;
		pid = (pid_t)stat_field(line, 4);
	}
	return false;
}

static bool tracked(const struct foreign_rt *f, pid_t tid)
{
	for (unsigned int i = 0; i < f->n_threads; i++)
		if (f->th[i].fd >= 0 && f->th[i].tid == tid)
			return true;
	return false;
}

/* A slot for a new thread: one whose thread is gone without having run (nothing
 * to report), else a new one; NULL when the table is full. */
static struct frt_thread *free_slot(struct foreign_rt *f)
{
	for (unsigned int i = 0; i < f->n_threads; i++)
		if (f->th[i].fd < 0 && !f->th[i].ran_ns)
			return &f->th[i];
	return f->n_threads < FRT_MAX_THREADS ? &f->th[f->n_threads] : NULL;
}

/* A real-time thread of pid at or above the priority: tracked from now on. */
static void consider(struct foreign_rt *f, pid_t pid, pid_t tid)
{
	char path[96], line[512];
	struct frt_thread *t;

	if (tracked(f, tid) || !(t = free_slot(f)))
		return;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	if (!read_line(path, line, sizeof(line)))
		return;
	/* 40: rt_priority, 41: policy (1 SCHED_FIFO, 2 SCHED_RR). */
	if ((stat_field(line, 41) != 1 && stat_field(line, 41) != 2) ||
	    stat_field(line, 40) < f->min_prio)
		return;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
	t->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (t->fd < 0)
		return;
	if (t == &f->th[f->n_threads])
		f->n_threads++;
	t->tid = tid;
	t->ran_ns = 0;
	t->prio = (int)stat_field(line, 40);
	t->last_ns = UINT64_MAX;
	snprintf(t->comm, sizeof(t->comm), "%.*s", (int)(strchr(line, ')') - strchr(line, '(') - 1),
		 strchr(line, '(') + 1);
}

static void scan(struct foreign_rt *f)
{
	DIR *d = opendir("/proc"), *td;
	struct dirent *de, *te;
	char path[64];

	while (d && (de = readdir(d))) {
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid <= 0 || ours(pid, f->self))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
		td = opendir(path);
		while (td && (te = readdir(td)))
			if (atoi(te->d_name) > 0)
				consider(f, pid, (pid_t)atoi(te->d_name));
		if (td)
			closedir(td);
	}
	if (d)
		closedir(d);
}

/* The cpu time the tracked threads have had since the last sample, in ns. */
static uint64_t sample(struct foreign_rt *f)
{
	uint64_t sum = 0;

	for (unsigned int i = 0; i < f->n_threads; i++) {
		struct frt_thread *t = &f->th[i];
		char buf[96];
		ssize_t n = t->fd >= 0 ? pread(t->fd, buf, sizeof(buf) - 1, 0) : -1;
		uint64_t ns;

		if (n <= 0) {
			/* The thread is gone: it runs no more. */
			if (t->fd >= 0)
				close(t->fd);
			t->fd = -1;
			continue;
		}
		buf[n] = 0;
		ns = strtoull(buf, NULL, 10);
		if (t->last_ns != UINT64_MAX && ns > t->last_ns) {
			sum += ns - t->last_ns;
			t->ran_ns += ns - t->last_ns;
		}
		t->last_ns = ns;
	}
	return sum;
}

static void *sampler(void *arg)
{
	struct foreign_rt *f = arg;
	struct timespec ts = { 0, (long)FRT_INTERVAL_NS };
	uint64_t next_scan = 0;

	/* Relaxed: the flag orders nothing; pthread_join orders the samples for the
	 * reader. */
	while (!atomic_load_explicit(&f->stop, memory_order_relaxed)) {
		uint64_t now = rtvio_now_ns(), ran;

		if (now >= next_scan) {
			scan(f);
			next_scan = now + FRT_SCAN_NS;
		}
		ran = sample(f);
		if (f->n < FRT_MAX_SAMPLES)
			f->s[f->n++] = (struct frt_sample){ .t = rtvio_now_ns(), .ran_ns = ran };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

void bench_foreign_start(struct foreign_rt *f, int min_prio)
{
	memset(f, 0, sizeof(*f));
	f->self = getpid();
	f->min_prio = min_prio < 1 ? 1 : min_prio;
	f->s = calloc(FRT_MAX_SAMPLES, sizeof(*f->s));
	f->on = f->s && !pthread_create(&f->thread, NULL, sampler, f);
}

void bench_foreign_stop(struct foreign_rt *f)
{
	if (!f->on)
		return;
	atomic_store_explicit(&f->stop, true, memory_order_relaxed); /* see sampler() */
	pthread_join(f->thread, NULL);
}

/* Each sample holds what the threads ran since the one before: spread evenly over
 * that interval, the part of it inside [t0, t1). */
double bench_foreign_in(const struct foreign_rt *f, uint64_t t0, uint64_t t1)
{
	double ns = 0;

	for (size_t i = 1; f->on && i < f->n; i++) {
		uint64_t a = f->s[i - 1].t, b = f->s[i].t;
		uint64_t lo = a > t0 ? a : t0, hi = b < t1 ? b : t1;

		if (hi > lo && b > a)
			ns += (double)f->s[i].ran_ns * (double)(hi - lo) / (double)(b - a);
	}
	return ns / 1e3;
}

void bench_foreign_json(const struct foreign_rt *f, json_t *out)
{
	json_t *th = json_array();
	uint64_t total = 0;

	for (unsigned int i = 0; i < f->n_threads; i++) {
		const struct frt_thread *t = &f->th[i];

		total += t->ran_ns;
		if (t->ran_ns)
			json_array_append_new(th, json_pack("{s:s, s:I, s:I, s:f}", "comm", t->comm,
							    "tid", (json_int_t)t->tid, "rt_priority",
							    (json_int_t)t->prio, "ran_ms",
							    (double)t->ran_ns / 1e6));
	}
	json_object_set_new(out, "min_rt_priority", json_integer(f->min_prio));
	json_object_set_new(out, "ran_ms", json_real((double)total / 1e6));
	json_object_set_new(out, "threads", th);
	json_object_set_new(out, "sampled", json_boolean(f->on));
}

void bench_foreign_free(struct foreign_rt *f)
{
	for (unsigned int i = 0; i < f->n_threads; i++)
		if (f->th[i].fd >= 0)
			close(f->th[i].fd);
	free(f->s);
	f->s = NULL;
	f->n_threads = 0;
	f->on = false;
}
