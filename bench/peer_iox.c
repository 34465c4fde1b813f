/* The iceoryx ends of `rtvio bench` (Debian's iceoryx 2.0 C binding): a publisher
 * that writes each message in a loaned shared-memory chunk (zero copy) and a
 * subscriber that sleeps in a WaitSet, as a user would use it when sender and
 * receiver share a core (with --spin-us it first polls its queue that long). iox-roudi must be running (the scenarios start it). The
 * message discipline is peer.h's: the payload is written into the chunk before the
 * stamp, the header right after it, then the chunk is published. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "workload.h"
#include "bench.h"
#include "peer.h"

#ifdef RTVIO_HAVE_ICEORYX
/* iceoryx 2.0's runtime.h declares iox_runtime_shutdown() without (void). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <iceoryx_binding_c/enums.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/wait_set.h>
#pragma GCC diagnostic pop

int bench_iox_available(void)
{
	return 1;
}

static void iox_names(const struct peer_args *a, char *inst, size_t len, char *app, size_t alen)
{
	snprintf(inst, len, "p%u", (unsigned)a->port);
	snprintf(app, alen, "rtvio-bench-%s-%d", a->send ? "tx" : "rx", (int)getpid());
}

int bench_iox_send(const struct peer_args *a)
{
	iox_pub_storage_t storage;
	iox_pub_options_t opts;
	iox_pub_t pub;
	char inst[32], app[64];
	uint64_t seq = 0, next, end, t0, stamp;
	struct wl_period plan;
	/* Latency mode: each publish's duration, stamp to return. */
	size_t ncall = a->throughput ? 0 : (size_t)a->count;
	double *call_ns = ncall ? calloc(ncall, sizeof(double)) : NULL;
	int err = 0;

	if (ncall && !call_ns)
		return 1;
	iox_names(a, inst, sizeof(inst), app, sizeof(app));
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init(app);
	iox_pub_options_init(&opts);
	opts.historyCapacity = 0;
	/* Throughput: wait for a slow subscriber instead of overwriting its queue, so
	 * nothing is lost and the rate is what the receiver really consumes. */
	opts.subscriberTooSlowPolicy = a->throughput ? ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER
						     : ConsumerTooSlowPolicy_DISCARD_OLDEST_DATA;
	pub = iox_pub_init(&storage, "rtvio", "bench", inst, &opts);
	peer_setup_sched(a);
	t0 = rtvio_now_ns();
	while (!iox_pub_has_subscribers(pub)) {
		if (rtvio_now_ns() - t0 > 10ull * RTVIO_NSEC_PER_SEC) {
			fprintf(stderr, "rtvio bench peer: no iceoryx subscriber within 10 s\n");
			err = -ETIMEDOUT;
			goto out;
		}
		usleep(1000);
	}
	wl_period_init(&plan, a->start_ns ? a->start_ns : rtvio_now_ns(), a->period_ns ? a->period_ns : 1);
	next = plan.next_ns;
	end = rtvio_now_ns() + a->duration_ns;
	for (;;) {
		void *chunk = NULL;
		enum iox_AllocationResult r;

		if (a->throughput) {
			if (rtvio_now_ns() >= end)
				break;
		} else {
			if (seq >= a->count)
				break;
			rtvio_sleep_until_ns(next);
		}
		r = iox_pub_loan_chunk(pub, &chunk, (uint32_t)a->size);
		if (r != AllocationResult_SUCCESS) {
			if (a->throughput) {
				/* The pool is empty while the subscriber holds chunks. */
				sched_yield();
				continue;
			}
			fprintf(stderr, "rtvio bench peer: iceoryx loan of %zu B failed (%d); "
					"is the RouDi mempool configured for it?\n", a->size, (int)r);
			err = -ENOMEM;
			break;
		}
		peer_fill_payload(chunk, a->size, a->throughput ? 0 : seq);
		stamp = rtvio_now_ns();
		peer_stamp(chunk, a->size, seq, stamp);
		iox_pub_publish_chunk(pub, chunk);
		if (seq < ncall)
			call_ns[seq] = (double)(rtvio_now_ns() - stamp);
		seq++;
		next = wl_period_next(&plan, stamp);
	}
	/* Let the subscriber drain before the publisher (and its chunks) go away. */
	usleep(200000);
out:
	peer_send_report(seq, err, call_ns, seq < ncall ? (size_t)seq : ncall);
	free(call_ns);
	iox_pub_deinit(pub);
	iox_runtime_shutdown();
	return err ? 1 : 0;
}

/* Spin-before-sleep (--spin-us): true once a chunk is there within spin_us. */
static bool iox_spin(iox_sub_t sub, uint32_t spin_us)
{
	uint64_t t0 = rtvio_now_ns();

	if (!spin_us)
		return false;
	do {
		for (int i = 0; i < 32; i++) {
			if (iox_sub_has_chunks(sub))
				return true;
			peer_relax();
		}
	} while (rtvio_now_ns() - t0 < (uint64_t)spin_us * 1000);
	return false;
}

int bench_iox_recv(const struct peer_args *a)
{
	iox_sub_storage_t storage;
	iox_ws_storage_t wss;
	iox_sub_options_t opts;
	iox_notification_info_t events[4];
	iox_sub_t sub;
	iox_ws_t ws;
	struct peer_rx rx = { .throughput = a->throughput };
	char inst[32], app[64];
	const char *status = "ok";
	uint64_t idle_since = 0;
	bool any = false;

	rx.cap = a->throughput ? 0 : (size_t)a->count;
	rx.lat_ns = rx.cap ? calloc(rx.cap, sizeof(double)) : NULL;
	if (rx.cap && !rx.lat_ns)
		return 1;
	iox_names(a, inst, sizeof(inst), app, sizeof(app));
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init(app);
	iox_sub_options_init(&opts);
	opts.queueCapacity = 256;
	opts.historyRequest = 0;
	opts.queueFullPolicy = a->throughput ? QueueFullPolicy_BLOCK_PRODUCER
					     : QueueFullPolicy_DISCARD_OLDEST_DATA;
	sub = iox_sub_init(&storage, "rtvio", "bench", inst, &opts);
	ws = iox_ws_init(&wss);
	iox_ws_attach_subscriber_state(ws, sub, SubscriberState_HAS_DATA, 0, NULL);
	peer_setup_sched(a);
	peer_ready();
	for (;;) {
		uint64_t missed = 0;
		struct timespec tmo = { .tv_sec = 0, .tv_nsec = 100000000 };
		const void *chunk;

		if (!iox_spin(sub, a->spin_us))
			iox_ws_timed_wait(ws, tmo, events, 4, &missed);
		while (iox_sub_take_chunk(sub, &chunk) == ChunkReceiveResult_SUCCESS) {
			peer_rx_account(&rx, chunk, a->size, rtvio_now_ns());
			iox_sub_release_chunk(sub, chunk);
			any = true;
			idle_since = 0;
		}
		if (!a->throughput && rx.messages + rx.lost >= a->count)
			break;
		/* No end-of-stream in publish/subscribe: a quiet second after data ends it,
		 * as do 20 s without any publisher. */
		if (!idle_since)
			idle_since = rtvio_now_ns();
		if (rtvio_now_ns() - idle_since > (any ? 1ull : 20ull) * RTVIO_NSEC_PER_SEC) {
			if (!any)
				status = "no publisher";
			break;
		}
	}
	/* In latency mode a message never seen at the end is lost, not pending. */
	if (!a->throughput && rx.messages + rx.lost < a->count)
		rx.lost = a->count - rx.messages;
	peer_rx_report(&rx, a, status);
	iox_ws_detach_subscriber_state(ws, sub, SubscriberState_HAS_DATA);
	iox_ws_deinit(ws);
	iox_sub_deinit(sub);
	iox_runtime_shutdown();
	free(rx.lat_ns);
	return strcmp(status, "ok") ? 1 : 0;
}

#else

int bench_iox_available(void)
{
	return 0;
}

int bench_iox_send(const struct peer_args *a)
{
	(void)a;
	fprintf(stderr, "rtvio bench peer: built without iceoryx (libiceoryx-binding-c-dev)\n");
	return 1;
}

int bench_iox_recv(const struct peer_args *a)
{
	return bench_iox_send(a);
}

#endif
