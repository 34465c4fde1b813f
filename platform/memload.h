/* Memory load shared by `rtvio membench` and `rtvio hog`: the pointer-chasing victim and
 * the token-bucket-throttled stream interferers. */
#ifndef RTVIO_PLATFORM_MEMLOAD_H
#define RTVIO_PLATFORM_MEMLOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMLOAD_LINE 64		/* stride of the chase: one cache line */

/* The victim: a random cyclic permutation of the cache lines of a buffer, each line
 * holding a pointer to the next, so every access depends on the previous one and
 * neither out-of-order execution nor prefetchers can hide DRAM latency. */
struct chase {
	void *mem;		/* mmap'ed, MEMLOAD_LINE-aligned */
	size_t bytes;
	size_t lines;
	void *start;
};

/* Builds a single cycle through all lines of a buffer of `bytes` (rounded down to whole
 * lines, at least 2) in an order drawn from seed. -ENOMEM, -EINVAL. */
int chase_build(struct chase *c, size_t bytes, uint64_t seed);
void chase_free(struct chase *c);

/* Follows n pointers from p and returns where it stopped. */
void *chase_run(void *p, uint64_t n);

/* Checks the structure: starting anywhere, `lines` steps return to the start having
 * visited every line exactly once, and every pointer stays inside the buffer at a line
 * boundary. 0 or -EINVAL (with -ENOMEM if the check cannot get its bitmap). */
int chase_verify(const struct chase *c);

enum mem_pattern { MEM_READ, MEM_WRITE, MEM_COPY };

/* "read" | "write" | "copy"; -EINVAL otherwise. */
int mem_pattern_parse(const char *s, enum mem_pattern *out);
const char *mem_pattern_name(enum mem_pattern p);

/* Traffic each interferer step generates (read and write bytes both count, so a copy
 * step copies half of it). */
#define STREAM_CHUNK (64 * 1024)

#define STREAM_IDLE 0			/* rate: generate nothing */
#define STREAM_FLAT_OUT UINT64_MAX	/* rate: as fast as the core can */

/* One interferer thread, pinned to one core, streaming through its own buffers. */
struct streamer {
	/* Written by the owner, read by the thread. */
	_Atomic uint64_t rate_Bps;	/* STREAM_IDLE, STREAM_FLAT_OUT or a byte rate */
	atomic_bool stop;

	/* Written by the thread: traffic generated so far (read + written bytes), and
	 * the rate it has switched to (stored with release after bytes, so an owner that
	 * acquires applied_Bps == its rate sees every byte of the old rate counted). */
	_Atomic uint64_t bytes;
	_Atomic uint64_t applied_Bps;

	/* Set up by streamer_start. */
	enum mem_pattern pattern;
	int cpu;
	char *src, *dst;
	size_t buf_bytes;
	uint64_t sink;
	pthread_t thread;
	bool running;
};

/* Allocates the buffers (buf_bytes each, touched once so no page faults later),
 * pins a new thread to cpu (cpu < 0: unpinned) and starts it at rate_Bps. */
int streamer_start(struct streamer *s, int cpu, enum mem_pattern pattern, size_t buf_bytes,
		   uint64_t rate_Bps);
void streamer_set_rate(struct streamer *s, uint64_t rate_Bps);
/* True once the thread runs at the rate last set: from then on, no traffic of the
 * previous rate is added (an idle streamer's count no longer moves). */
bool streamer_rate_applied(struct streamer *s);
uint64_t streamer_bytes(struct streamer *s);
/* Stops, joins and frees. */
void streamer_stop(struct streamer *s);

/* CLOCK_MONOTONIC in ns. */
uint64_t memload_now(void);

/* Pins the calling thread to cpu. Negative errno. */
int memload_pin_self(int cpu);

/* The CPUs this process may run on, ascending, into cpus[cap]; returns how many. */
int memload_cpus(int *cpus, int cap);

/* Size of the largest cache of cpu0 (the last level), from sysfs; 0 if unknown. */
uint64_t memload_llc_bytes(void);

/* "12.34 GB/s": powers of 10, rounded for people (not re-parseable). */
void memload_format_rate(double Bps, char *buf, size_t len);

#endif
