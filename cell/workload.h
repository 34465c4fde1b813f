/* Workload bookkeeping for `rtvio cell`: what a receiver learns from the rtmsg stream
 * it gets (lost, reordered, corrupt, one-way latency, deadline misses) and how a
 * stream receiver finds message boundaries again. Everything here works on
 * caller-owned, fixed-size storage so it can run on a real-time thread: nothing
 * allocates, nothing blocks. */
#ifndef RTVIO_GUEST_WORKLOAD_H
#define RTVIO_GUEST_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Log-linear latency histogram (nanoseconds): values below 32 ns are exact, above
 * that each power of two is split in 16 linear steps, so a reported percentile is
 * within 1/16 of the true value whatever the magnitude. min and max are exact. */
#define WL_HIST_SUB 16u
#define WL_HIST_BUCKETS (2u * WL_HIST_SUB + 60u * WL_HIST_SUB)

struct wl_hist {
	uint64_t count;
	uint64_t min_ns;
	uint64_t max_ns;
	uint64_t bucket[WL_HIST_BUCKETS];
};

void wl_hist_init(struct wl_hist *h);
void wl_hist_add(struct wl_hist *h, uint64_t ns);
/* The value at quantile q (0 < q <= 1), clamped to [min, max]; 0 when empty. */
uint64_t wl_hist_quantile(const struct wl_hist *h, double q);
/* Bucket arithmetic, exposed for tests. */
unsigned wl_hist_index(uint64_t ns);
uint64_t wl_hist_lower(unsigned idx);
uint64_t wl_hist_upper(unsigned idx);

/* Sequence numbers below the next expected one whose arrival is remembered: a late
 * message within this window is told apart from a duplicate exactly. */
#define WL_SEQ_WINDOW 4096u

/* The slowest messages a receiver keeps, with their send stamps: enough to tell,
 * message by message, whether a slow one coincided with something else seen at the
 * time (a host stall, say). */
#define WL_SLOWEST 16u

struct wl_slow {
	uint64_t stamp_ns;	/* the sender's CLOCK_MONOTONIC stamp */
	uint64_t latency_ns;
	uint64_t seq;
};

/* What one receiving flow has seen. */
struct wl_rx_stats {
	uint64_t messages;	/* intact messages received, each sequence number once */
	uint64_t lost;		/* sequence numbers skipped, never seen since, and not
				 * accounted for by a corrupt message */
	uint64_t reordered;	/* intact messages that arrived after a later one */
	uint64_t duplicates;	/* intact messages whose sequence number had arrived */
	uint64_t corrupt;	/* messages failing the rtmsg check */
	uint64_t deadline_misses; /* latency above deadline_ns (0 = no deadline) */
	uint64_t untimed;	/* intact messages too short to carry a stamp */
	uint64_t bytes;
	uint64_t next_seq;	/* the sequence number expected next */
	uint64_t corrupt_pending; /* corrupt messages not yet matched to a gap */
	uint64_t missing;	/* sequence numbers skipped and not seen since */
	uint64_t covered;	/* corrupt messages matched to them (lost = missing -
				 * covered) */
	/* Bit seq % WL_SEQ_WINDOW, for the window below next_seq: */
	uint64_t seen[WL_SEQ_WINDOW / 64]; /* arrived intact */
	uint64_t cov[WL_SEQ_WINDOW / 64];  /* missing, a corrupt message stands for it */
	uint64_t deadline_ns;
	struct wl_hist lat;
	struct wl_slow slowest[WL_SLOWEST]; /* in no order; nslowest of them used */
	unsigned nslowest;
};

void wl_rx_init(struct wl_rx_stats *s, uint64_t deadline_ns);
/* Accounts one received message m[0, len) that arrived at now_ns. Returns 0 when it
 * was intact (a duplicate too: counted as such, nothing else), -EBADMSG when corrupt.
 * A corrupt message used up a sequence number: the next gap counts it instead of a
 * loss (for the gap's first missing numbers). A late message takes back the loss its
 * gap counted; when a corrupt message stood for it instead, that one now stands for
 * another missing number of the same gap, or for none (it is then just corrupt:
 * never a reason to count less loss elsewhere). One older than WL_SEQ_WINDOW cannot
 * be told from a duplicate: it counts as reordered and the loss stays counted. */
int wl_rx_account(struct wl_rx_stats *s, const uint8_t *m, size_t len, uint64_t now_ns);

/* Stream reassembly: rtmsg framing over a byte stream (len at offset 4). The
 * caller feeds whatever recv() gave it; complete messages come out one at a time
 * through the callback. A length field that cannot be a message (below the header,
 * above `cap`) means the stream has lost its framing: that is reported once and
 * the stream is considered dead (a byte stream cannot resynchronise reliably). */
struct wl_stream {
	uint8_t *buf;		/* caller-owned, cap bytes */
	size_t cap;
	size_t have;		/* bytes of the current message buffered */
	bool desync;
};

typedef void (*wl_msg_fn)(void *arg, const uint8_t *m, size_t len);

void wl_stream_init(struct wl_stream *st, uint8_t *buf, size_t cap);
/* Consumes data[0, n); returns 0, or -EBADMSG once framing is lost. */
int wl_stream_feed(struct wl_stream *st, const uint8_t *data, size_t n, wl_msg_fn fn, void *arg);

/* Sender-side plan of a periodic flow. The flow declares `period` as its minimum
 * inter-arrival time, and that is what the plan keeps: releases follow a grid
 * while the sender keeps up, and a release that happened late moves the grid so
 * that the next one is still a whole period after it (never a catch-up burst,
 * which a broker policing the flow would rightly hold back). */
struct wl_period {
	uint64_t next_ns;
	uint64_t period_ns;
	uint64_t late;		/* releases that happened after their time */
	uint64_t overruns;	/* whole periods lost to lateness */
};

void wl_period_init(struct wl_period *p, uint64_t start_ns, uint64_t period_ns);
/* The next release after one that actually happened at released_ns. */
uint64_t wl_period_next(struct wl_period *p, uint64_t released_ns);

uint64_t wl_now_ns(void);

#endif
