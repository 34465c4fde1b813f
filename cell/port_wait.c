/* How a blocking call waits: as the poller of the cell's descriptors, or as a
 * follower on its condition variable (leader/followers, port_posix.h). */
#include "clock.h"
#include "port_posix.h"
#include "port_cell.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

/* The real-time priority of the calling thread (0 when it has none). */
int port_thread_prio(void)
{
	struct sched_param sp;
	int pol;

	if (pthread_getschedparam(pthread_self(), &pol, &sp))
		return 0;
	return pol == SCHED_FIFO || pol == SCHED_RR ? sp.sched_priority : 0;
}

/* Why a blocking call must stop now: the dead error, -EINTR, or 0. */
static int wait_status(const struct rtvio_cell *c)
{
	if (c->dead)
		return -ECONNRESET;
	if (c->interrupted)
		return -EINTR;
	return 0;
}

/* poll()'s timeout for `until` (0 = none): rounded up so that we never wake just
 * before the deadline, at most an hour. */
static int poll_ms(uint64_t until, uint64_t now)
{
	uint64_t left;
	int ms;

	if (!until)
		return -1;
	left = until > now ? until - now : 0;
	ms = (int)((left + 999999u) / 1000000u);
	if ((uint64_t)ms > 3600000u)
		ms = 3600000;
	return ms;
}

/* Takes in what poll() found: call counts, the socket (EOF), our own wake-up. */
static void poll_news(struct rtvio_cell *c, const struct pollfd *p)
{
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		if (p[q].revents)
			port_drain_eventfd(c->call[q]);
	if (p[VHU_VSOCK_QUEUES].revents)
		port_check_socket(c);
	if (p[VHU_VSOCK_QUEUES + 1].revents) {
		port_drain_eventfd(c->wake_fd);
		c->wake_written = false;
	}
}

/* The poller: sleeps in poll() on the call eventfds, the socket and wake_fd (without
 * the lock), then processes what came and lets the followers look. */
static void wait_as_poller(struct rtvio_cell *c, int prio, uint64_t until, uint64_t now)
{
	struct pollfd p[VHU_VSOCK_QUEUES + 2];
	int n = 0, ms, rc;

	c->poller = true;
	c->poller_prio = prio;
	if (c->want_prio <= prio)
		c->want_prio = -1;
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		p[n++] = (struct pollfd){ .fd = c->call[q], .events = POLLIN };
	p[n++] = (struct pollfd){ .fd = c->sock, .events = POLLIN };
	p[n++] = (struct pollfd){ .fd = c->wake_fd, .events = POLLIN };
	ms = poll_ms(until, now);
	pthread_mutex_unlock(&c->lock);
	rc = poll(p, (nfds_t)n, ms);
	pthread_mutex_lock(&c->lock);
	c->poller = false;
	if (rc > 0)
		poll_news(c, p);
	port_pump(c);
	/* Whatever arrived may be for a follower; and one of them must take over
	 * polling if we are done. */
	pthread_cond_broadcast(&c->cond);
}

/* A follower: asks a lower-priority poller to step down, then sleeps on the
 * condition until the poller's news or `until` (0 = none). */
static void wait_as_follower(struct rtvio_cell *c, int prio, uint64_t until)
{
	struct timespec ts;

	if (c->poller && prio > c->poller_prio) {
		uint64_t one = 1;

		if (prio > c->want_prio)
			c->want_prio = prio;
		if (!c->wake_written && write(c->wake_fd, &one, sizeof(one)) == sizeof(one))
			c->wake_written = true;
	}
	if (until) {
		ts.tv_sec = (time_t)(until / 1000000000u);
		ts.tv_nsec = (long)(until % 1000000000u);
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	} else {
		pthread_cond_wait(&c->cond, &c->lock);
	}
	port_pump(c);
}

/* Waits (lock held, released while sleeping) until something may have changed or
 * `deadline` (CLOCK_MONOTONIC ns, 0 = none) passes. Returns 0 to retry the
 * operation, -ETIMEDOUT, -EINTR, or the dead error.
 *
 * The thread in poll() is the one the broker's notification wakes first; the
 * others hear from it. So the role goes to the highest-priority waiter: one that
 * finds a lower-priority poller asks it to step down (want_prio, wake_fd) and takes
 * over, and nobody below want_prio takes it meanwhile. Otherwise a real-time
 * receiver would wait for a bulk thread to be scheduled before it learns of its
 * data. `prio` is port_thread_prio() of the caller; the blocking call ends with
 * port_wait_done(). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* Between two clock reads of a spin (32 pauses, well under a microsecond) a longer
 * gap means the spinning thread was off its cpu. */
#define SPIN_GAP_NS 3000u

/* After a spin that saw nothing (lock held): notifications back on before the caller
 * sleeps (gv_process turns them on, and looks once more). True when it found work
 * after all, or the rings broken: the caller retries instead of sleeping. */
static bool spin_rearm(struct rtvio_cell *c)
{
	int rc = gv_process(c->stack);

	if (rc < 0) {
		port_mark_dead(c, -EIO);
		return true;
	}
	if (rc > 0) {
		port_pump(c);
		return true;
	}
	return false;
}

/* One spinning thread fewer (lock held); the last one releases the notifications,
 * which the gv_process the caller runs next turns back on. */
static void spin_end(struct rtvio_cell *c)
{
	if (--c->spinning == 0)
		gv_notify_hold(c->stack, false);
}

/* Polling (opts.poll_us): spins on the used rings without the lock for up to
 * poll_ns, then lets the caller sleep. True when the broker completed something
 * (retry the call), false when the budget ran out with nothing new and the
 * notifications are on again. Nothing here is a system call but the clock (vDSO).
 * Notes when the thread last came back after being preempted and when it saw the
 * news (rtvio_cell_spin_times). */
static bool spin_for_news(struct rtvio_cell *c, uint64_t deadline)
{
	uint64_t end, now = rtvio_now_ns(), prev, back = 0;
	uint32_t snap;
	bool news = false;

	end = now + c->poll_ns;
	if (deadline && deadline < end)
		end = deadline;
	/* No notifications while we watch: the broker would signal the call eventfd
	 * (a system call of its own) for news we see here anyway. Snapshot first,
	 * then look for anything not taken yet, so that nothing published before
	 * the snapshot is missed (gv_process, which the caller runs next, turns the
	 * notifications back on). */
	c->spinning++;
	gv_notify_hold(c->stack, true);
	snap = gv_used_snapshot(c->stack);
	if (gv_used_pending(c->stack)) {
		spin_end(c);
		c->spin_back_ns = 0;
		c->spin_news_ns = now;
		return true;
	}
	pthread_mutex_unlock(&c->lock);
	while (!news && now < end) {
		for (int i = 0; i < 32 && !news; i++) {
			cpu_relax();
			news = gv_used_snapshot(c->stack) != snap;
		}
		prev = now;
		now = rtvio_now_ns();
		if (now - prev > SPIN_GAP_NS)
			back = now;
	}
	pthread_mutex_lock(&c->lock);
	spin_end(c);
	c->spin_back_ns = back;
	c->spin_news_ns = news ? now : 0;
	return news || spin_rearm(c);
}

int port_wait_locked(struct rtvio_cell *c, uint64_t deadline, int prio)
{
	uint64_t now = rtvio_now_ns(), until = deadline, gvd;
	int rc = wait_status(c);

	if (rc)
		return rc;
	if (deadline && now >= deadline)
		return -ETIMEDOUT;
	if (c->more) {
		/* Notifications are still off: look again instead of sleeping. */
		port_pump(c);
		return c->dead ? -ECONNRESET : 0;
	}
	if (c->poll_ns && spin_for_news(c, deadline)) {
		port_pump(c);
		return wait_status(c);
	}
	/* gvsock's own timeouts (connect, close linger) need a gv_process on time. */
	gvd = gv_next_deadline(c->stack);
	if (gvd != UINT64_MAX && (!until || gvd < until))
		until = gvd;
	if (!c->poller && prio >= c->want_prio)
		wait_as_poller(c, prio, until, now);
	else
		wait_as_follower(c, prio, until);
	return wait_status(c);
}

/* End of a blocking call: a claim on the poller role it made is void now. */
void port_wait_done(struct rtvio_cell *c, int prio)
{
	if (c->want_prio >= 0 && c->want_prio == prio) {
		c->want_prio = -1;
		pthread_cond_broadcast(&c->cond);
	}
}

uint64_t port_deadline_of(int timeout_ms)
{
	if (timeout_ms <= 0)
		return 0;
	return rtvio_now_ns() + (uint64_t)timeout_ms * 1000000u;
}
