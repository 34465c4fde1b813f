/* Victim and interferers: see memload.h. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "memload.h"
#include "units.h"
#include "tokenbucket.h"

#define HUGE_2M (2u << 20)

uint64_t memload_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Anonymous memory, asking for transparent huge pages: with 4 KiB pages a random walk
 * over a buffer this size would measure TLB misses as much as DRAM. */
static void *map_buffer(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (bytes >= HUGE_2M)
		(void)madvise(p, bytes, MADV_HUGEPAGE);	/* a hint; fine if refused */
	return p;
}

int chase_build(struct chase *c, size_t bytes, uint64_t seed)
{
	size_t lines = bytes / MEMLOAD_LINE;
	uint32_t *order;
	char *mem;

	if (lines < 2 || lines > UINT32_MAX)
		return -EINVAL;
	order = malloc(lines * sizeof *order);
	if (!order)
		return -ENOMEM;
	mem = map_buffer(lines * MEMLOAD_LINE);
	if (!mem) {
		free(order);
		return -ENOMEM;
	}
	for (size_t i = 0; i < lines; i++)
		order[i] = (uint32_t)i;
	/* Fisher-Yates: a uniformly random visiting order. Linking the lines in that order
	 * and closing the loop makes one cycle through all of them. */
	for (size_t i = lines - 1; i > 0; i--) {
		size_t j = (size_t)(splitmix64(&seed) % (i + 1));
		uint32_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (size_t i = 0; i < lines; i++) {
		char *line = mem + (size_t)order[i] * MEMLOAD_LINE;
		char *next = mem + (size_t)order[(i + 1) % lines] * MEMLOAD_LINE;

		memcpy(line, &next, sizeof next);
	}
	c->mem = mem;
	c->bytes = lines * MEMLOAD_LINE;
	c->lines = lines;
	c->start = mem + (size_t)order[0] * MEMLOAD_LINE;
	free(order);
	return 0;
}

void chase_free(struct chase *c)
{
	if (c->mem)
		munmap(c->mem, c->bytes);
	c->mem = NULL;
}

void *chase_run(void *p, uint64_t n)
{
	void *volatile *q = p;

	/* volatile: each load must really happen, in order, even though the compiler
	 * could otherwise prove nothing uses the intermediate values. */
	while (n--)
		q = (void *volatile *)*q;
	return (void *)q;
}

int chase_verify(const struct chase *c)
{
	const char *base = c->mem, *p = c->start;
	size_t words = (c->lines + 63) / 64;
	uint64_t *seen = calloc(words, sizeof *seen);
	int ret = 0;

	if (!seen)
		return -ENOMEM;
	for (size_t i = 0; i < c->lines; i++) {
		size_t off, line;

		if (p < base || p >= base + c->bytes) {
			ret = -EINVAL;
			break;
		}
		off = (size_t)(p - base);
		line = off / MEMLOAD_LINE;
		if (off % MEMLOAD_LINE || (seen[line / 64] >> (line % 64)) & 1) {
			ret = -EINVAL;
			break;
		}
		seen[line / 64] |= 1ULL << (line % 64);
		memcpy(&p, p, sizeof(const char *));
	}
	if (!ret && p != c->start)
		ret = -EINVAL;
	free(seen);
	return ret;
}

int mem_pattern_parse(const char *s, enum mem_pattern *out)
{
	static const enum mem_pattern all[] = { MEM_READ, MEM_WRITE, MEM_COPY };

	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		if (s && !strcmp(s, mem_pattern_name(all[i]))) {
			*out = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

const char *mem_pattern_name(enum mem_pattern p)
{
	switch (p) {
	case MEM_READ:
		return "read";
	case MEM_WRITE:
		return "write";
	case MEM_COPY:
		return "copy";
	}
	return "?";
}

/* One STREAM_CHUNK of traffic at offset pos of the buffers. */
static void stream_chunk(struct streamer *s, size_t pos)
{
	switch (s->pattern) {
	case MEM_READ: {
		/* mmap()ed buffers and whole chunks: every word is 8-byte aligned. */
		const uint64_t *w = (const uint64_t *)(const void *)(s->src + pos);
		uint64_t a = 0, b = 0, c = 0, d = 0;

		/* Four independent sums keep several loads in flight. */
		for (size_t i = 0; i < STREAM_CHUNK / 8; i += 4) {
			a += w[i];
			b += w[i + 1];
			c += w[i + 2];
			d += w[i + 3];
		}
		s->sink += a ^ b ^ c ^ d;
		break;
	}
	case MEM_WRITE:
		memset(s->dst + pos, (int)(pos >> 16), STREAM_CHUNK);
		break;
	case MEM_COPY:
		memcpy(s->dst + pos, s->src + pos, STREAM_CHUNK / 2);
		break;
	}
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ULL),
			       .tv_nsec = (long)(ns % 1000000000ULL) };

	nanosleep(&ts, NULL);
}

/* Bucket depth for a rate: about 1 ms of traffic, so the stream is smooth at the
 * victim's time scale, but never less than a few chunks. */
static uint64_t burst_for(uint64_t rate)
{
	uint64_t b = rate / 1000;

	if (b < 4 * STREAM_CHUNK)
		b = 4 * STREAM_CHUNK;
	return b > TB_MAX_BURST ? TB_MAX_BURST : b;
}

static void *streamer_main(void *arg)
{
	struct streamer *s = arg;
	struct tokenbucket tb;
	uint64_t cur = STREAM_IDLE, total = 0;
	size_t pos = 0, step = s->pattern == MEM_COPY ? STREAM_CHUNK / 2 : STREAM_CHUNK;

	tb_init(&tb, 0, 0, memload_now());
	/* relaxed loads of rate and stop: control values with no data attached. */
	while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
		uint64_t rate = atomic_load_explicit(&s->rate_Bps, memory_order_relaxed);
		uint64_t now;

		if (rate != cur) {
			cur = rate;
			if (rate != STREAM_IDLE && rate != STREAM_FLAT_OUT &&
			    rate <= TB_MAX_RATE_BPS)
				tb_init(&tb, rate, burst_for(rate), memload_now());
			else
				tb_init(&tb, 0, 0, memload_now());
			/* release: the bytes of the old rate are counted before the switch
			 * is acknowledged. */
			atomic_store_explicit(&s->applied_Bps, rate, memory_order_release);
		}
		if (cur == STREAM_IDLE) {
			sleep_ns(1000000);
			continue;
		}
		now = memload_now();
		if (!tb_take(&tb, STREAM_CHUNK, now)) {
			uint64_t wait = tb_wait_ns(&tb, STREAM_CHUNK);

			/* Sleep only when the wait dwarfs a wake-up's lateness (about
			 * 50 us here); shorter waits spin, which costs no memory traffic. */
			if (wait > 300000)
				sleep_ns(wait - 200000);
			continue;
		}
		stream_chunk(s, pos);
		pos += step;
		if (pos + step > s->buf_bytes)
			pos = 0;
		total += STREAM_CHUNK;
		/* relaxed: a statistic; readers only need a recent value. */
		atomic_store_explicit(&s->bytes, total, memory_order_relaxed);
	}
	return NULL;
}

int streamer_start(struct streamer *s, int cpu, enum mem_pattern pattern, size_t buf_bytes,
		   uint64_t rate_Bps)
{
	pthread_attr_t attr;
	int err;

	if (buf_bytes < STREAM_CHUNK)
		return -EINVAL;
	buf_bytes -= buf_bytes % STREAM_CHUNK;
	*s = (struct streamer){ .pattern = pattern, .cpu = cpu, .buf_bytes = buf_bytes };
	atomic_init(&s->rate_Bps, rate_Bps);
	atomic_init(&s->stop, false);
	atomic_init(&s->bytes, 0);
	/* The thread starts from idle and acknowledges rate_Bps on its first pass. */
	atomic_init(&s->applied_Bps, STREAM_IDLE);
	s->src = map_buffer(buf_bytes);
	s->dst = map_buffer(buf_bytes);
	if (!s->src || !s->dst) {
		err = -ENOMEM;
		goto fail;
	}
	/* Fault every page in now, so the measured traffic is memory traffic, not page
	 * faults. */
	memset(s->src, 0x5a, buf_bytes);
	memset(s->dst, 0xa5, buf_bytes);

	err = -pthread_attr_init(&attr);
	if (err)
		goto fail;
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		if (cpu >= CPU_SETSIZE) {
			err = -EINVAL;
		} else {
			CPU_SET(cpu, &set);
			err = -pthread_attr_setaffinity_np(&attr, sizeof set, &set);
		}
	}
	if (!err)
		err = -pthread_create(&s->thread, &attr, streamer_main, s);
	pthread_attr_destroy(&attr);
	if (err)
		goto fail;
	s->running = true;
	return 0;
fail:
	if (s->src)
		munmap(s->src, buf_bytes);
	if (s->dst)
		munmap(s->dst, buf_bytes);
	s->src = s->dst = NULL;
	return err;
}

void streamer_set_rate(struct streamer *s, uint64_t rate_Bps)
{
	atomic_store_explicit(&s->rate_Bps, rate_Bps, memory_order_relaxed);
}

bool streamer_rate_applied(struct streamer *s)
{
	/* acquire: pairs with the thread's release, so streamer_bytes() after a true
	 * answer includes all traffic of the previous rate. */
	return atomic_load_explicit(&s->applied_Bps, memory_order_acquire) ==
	       atomic_load_explicit(&s->rate_Bps, memory_order_relaxed);
}

uint64_t streamer_bytes(struct streamer *s)
{
	return atomic_load_explicit(&s->bytes, memory_order_relaxed);
}

void streamer_stop(struct streamer *s)
{
	if (s->running) {
		atomic_store_explicit(&s->stop, true, memory_order_relaxed);
		pthread_join(s->thread, NULL);
		s->running = false;
	}
	if (s->src)
		munmap(s->src, s->buf_bytes);
	if (s->dst)
		munmap(s->dst, s->buf_bytes);
	s->src = s->dst = NULL;
}

int memload_pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int memload_cpus(int *cpus, int cap)
{
	cpu_set_t set;
	int n = 0;

	if (sched_getaffinity(0, sizeof set, &set))
		return -errno;
	for (int i = 0; i < CPU_SETSIZE && n < cap; i++)
		if (CPU_ISSET(i, &set))
			cpus[n++] = i;
	return n;
}

uint64_t memload_llc_bytes(void)
{
	uint64_t best = 0;

	for (int i = 0; i < 16; i++) {
		char path[96], buf[64];
		uint64_t size;
		FILE *f;

		snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof buf, f)) {
			buf[strcspn(buf, "\n")] = '\0';
			/* sysfs writes "32768K", meaning KiB. */
			size_t n = strlen(buf);

			if (n && n < sizeof buf - 3 && strchr("KMG", buf[n - 1]))
				strcat(buf, "iB");
			if (!rtvio_parse_size(buf, 1, &size, NULL) && size > best)
				best = size;
		}
		fclose(f);
	}
	return best;
}

void memload_format_rate(double Bps, char *buf, size_t len)
{
	if (Bps >= 1e9)
		snprintf(buf, len, "%.2f GB/s", Bps / 1e9);
	else if (Bps >= 1e6)
		snprintf(buf, len, "%.1f MB/s", Bps / 1e6);
	else
		snprintf(buf, len, "%.0f B/s", Bps);
}
