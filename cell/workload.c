/* Workload bookkeeping for `rtvio cell` (see workload.h). */
#include "workload.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "rtmsg.h"

void wl_hist_init(struct wl_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min_ns = UINT64_MAX;
}

unsigned wl_hist_index(uint64_t ns)
{
	unsigned msb, shift;

	if (ns < 2 * WL_HIST_SUB)
		return (unsigned)ns;
	msb = 63u - (unsigned)__builtin_clzll(ns);
	/* 16 linear steps per power of two: the top five bits pick the bucket. */
	shift = msb - 4u;
	return WL_HIST_SUB * shift + (unsigned)(ns >> shift);
}

uint64_t wl_hist_lower(unsigned idx)
{
	unsigned shift;

	if (idx < 2 * WL_HIST_SUB)
		return idx;
	shift = idx / WL_HIST_SUB - 1u;
	return (uint64_t)(idx - WL_HIST_SUB * shift) << shift;
}

uint64_t wl_hist_upper(unsigned idx)
{
	unsigned shift;

	if (idx < 2 * WL_HIST_SUB)
		return idx;
	shift = idx / WL_HIST_SUB - 1u;
	/* The very last bucket ends at 2^64 - 1 (its upper end would overflow). */
	if (shift >= 59u && idx - WL_HIST_SUB * shift == 2 * WL_HIST_SUB - 1)
		return UINT64_MAX;
	return ((uint64_t)(idx - WL_HIST_SUB * shift + 1u) << shift) - 1u;
}

void wl_hist_add(struct wl_hist *h, uint64_t ns)
{
	h->bucket[wl_hist_index(ns)]++;
	h->count++;
	if (ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

uint64_t wl_hist_quantile(const struct wl_hist *h, double q)
{
	uint64_t rank, seen = 0, v;

	if (!h->count)
		return 0;
	if (q >= 1.0)
		return h->max_ns;
	rank = (uint64_t)(q * (double)h->count);
	if ((double)rank < q * (double)h->count)
		rank++;
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < WL_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen < rank)
			continue;
		/* The bucket's midpoint, kept inside what was actually observed. */
		v = wl_hist_lower(i) + (wl_hist_upper(i) - wl_hist_lower(i)) / 2;
		if (v < h->min_ns)
			v = h->min_ns;
		if (v > h->max_ns)
			v = h->max_ns;
		return v;
	}
	return h->max_ns;
}

void wl_rx_init(struct wl_rx_stats *s, uint64_t deadline_ns)
{
	memset(s, 0, sizeof(*s));
	s->deadline_ns = deadline_ns;
	wl_hist_init(&s->lat);
}

static void bit_put(uint64_t *map, uint64_t seq, bool v)
{
	uint64_t i = seq % WL_SEQ_WINDOW, bit = 1ull << (i % 64);

	if (v)
		map[i / 64] |= bit;
	else
		map[i / 64] &= ~bit;
}

static bool bit_get(const uint64_t *map, uint64_t seq)
{
	uint64_t i = seq % WL_SEQ_WINDOW;

	return map[i / 64] >> (i % 64) & 1;
}

/* Keeps the WL_SLOWEST slowest messages: a new one replaces the fastest kept. */
static void keep_slowest(struct wl_rx_stats *s, uint64_t stamp, uint64_t lat, uint64_t seq)
{
	unsigned k = s->nslowest;

	if (k == WL_SLOWEST) {
		k = 0;
		for (unsigned i = 1; i < WL_SLOWEST; i++)
			if (s->slowest[i].latency_ns < s->slowest[k].latency_ns)
				k = i;
		if (s->slowest[k].latency_ns >= lat)
			return;
	} else {
		s->nslowest++;
	}
	s->slowest[k] = (struct wl_slow){ .stamp_ns = stamp, .latency_ns = lat, .seq = seq };
}

int wl_rx_account(struct wl_rx_stats *s, const uint8_t *m, size_t len, uint64_t now_ns)
{
	uint64_t seq = s->next_seq, stamp;

	if (len == 0 || rtmsg_check(m, len, &seq, &stamp) != RTMSG_OK) {
		s->corrupt++;
		s->corrupt_pending++;
		return -EBADMSG;
	}
	if (seq >= s->next_seq) {
		uint64_t gap = seq - s->next_seq, a;

		a = gap < s->corrupt_pending ? gap : s->corrupt_pending;
		if (gap >= WL_SEQ_WINDOW) {
			memset(s->seen, 0, sizeof(s->seen));
			memset(s->cov, 0, sizeof(s->cov));
		}
		for (uint64_t q = gap >= WL_SEQ_WINDOW ? seq - WL_SEQ_WINDOW + 1 : s->next_seq;
		     q < seq; q++) {
			bit_put(s->seen, q, false);
			bit_put(s->cov, q, q - s->next_seq < a);
		}
		bit_put(s->seen, seq, true);
		bit_put(s->cov, seq, false);
		s->missing += gap;
		s->covered += a;
		s->corrupt_pending -= a;
		s->next_seq = seq + 1;
	} else if (s->next_seq - seq <= WL_SEQ_WINDOW) {
		if (bit_get(s->seen, seq)) {
			s->duplicates++;
			return 0;
		}
		bit_put(s->seen, seq, true);
		s->reordered++;
		s->missing--;
		if (bit_get(s->cov, seq)) {
			/* The corrupt message that stood for it was another number of the
			 * same gap (the missing numbers that follow), or none. */
			uint64_t q = seq + 1;

			bit_put(s->cov, seq, false);
			while (q < s->next_seq && !bit_get(s->seen, q) && bit_get(s->cov, q))
				q++;
			if (q < s->next_seq && !bit_get(s->seen, q))
				bit_put(s->cov, q, true);
			else
				s->covered--;
		}
	} else {
		s->reordered++;
	}
	s->lost = s->missing - s->covered;
	s->messages++;
	s->bytes += len;
	if (!stamp) {
		s->untimed++;
		return 0;
	}
	/* Sender and receiver read the same CLOCK_MONOTONIC; a stamp from the future
	 * is a corrupt stamp that the checksum happened to cover, count it as 0. */
	uint64_t lat = now_ns > stamp ? now_ns - stamp : 0;

	wl_hist_add(&s->lat, lat);
	if (s->deadline_ns && lat > s->deadline_ns)
		s->deadline_misses++;
	keep_slowest(s, stamp, lat, seq);
	return 0;
}

void wl_stream_init(struct wl_stream *st, uint8_t *buf, size_t cap)
{
	st->buf = buf;
	st->cap = cap;
	st->have = 0;
	st->desync = false;
}

int wl_stream_feed(struct wl_stream *st, const uint8_t *data, size_t n, wl_msg_fn fn, void *arg)
{
	size_t want, take;
	uint32_t len;

	if (st->desync)
		return -EBADMSG;
	while (n) {
		if (st->have < 8) {
			want = 8;
		} else {
			len = rtmsg_get32(st->buf + 4);
			want = len;
		}
		take = want - st->have;
		if (take > n)
			take = n;
		memcpy(st->buf + st->have, data, take);
		st->have += take;
		data += take;
		n -= take;
		if (st->have == 8) {
			len = rtmsg_get32(st->buf + 4);
			if (rtmsg_get32(st->buf) != RTMSG_MAGIC || len < RTMSG_HDR || len > st->cap) {
				st->desync = true;
				return -EBADMSG;
			}
			continue;
		}
		if (st->have > 8 && st->have == rtmsg_get32(st->buf + 4)) {
			fn(arg, st->buf, st->have);
			st->have = 0;
		}
	}
	return 0;
}

void wl_period_init(struct wl_period *p, uint64_t start_ns, uint64_t period_ns)
{
	p->next_ns = start_ns;
	p->period_ns = period_ns ? period_ns : 1;
	p->late = 0;
	p->overruns = 0;
}

uint64_t wl_period_next(struct wl_period *p, uint64_t released_ns)
{
	if (released_ns > p->next_ns) {
		p->late++;
		p->overruns += (released_ns - p->next_ns) / p->period_ns;
		p->next_ns = released_ns;
	}
	p->next_ns += p->period_ns;
	return p->next_ns;
}

uint64_t wl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
