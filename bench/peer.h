/* The measuring ends of `rtvio bench`: a sender and a receiver process per run, the
 * same loops for every transport so that only the transport differs.
 *
 * Messages use the rtmsg layout (common/rtmsg.h): magic, length, sequence number,
 * CLOCK_MONOTONIC send stamp, then a payload whose byte k is (base + k) & 0xff. The
 * check field covers the 32 header bytes only, and the payload is verified against
 * its pattern instead: an FNV hash over 1 MiB costs about a millisecond, which would
 * sit between the stamp and the send and be counted as transport latency.
 *
 * latency mode: one message every period (absolute releases), `count` messages; the
 *   payload for the next message is written before the sender sleeps, so only the
 *   header is written between stamp and send. The receiver records each message's
 *   one-way latency (stamp to the moment its last byte was read).
 * throughput mode: messages back to back for `duration`; the payload pattern is
 *   that of sequence 0 for every message (written once) and the receiver checks it
 *   on every 64th message and the header on each; throughput is bytes over the time
 *   from the first message's stamp to the last one's arrival. */
#ifndef RTVIO_BENCH_PEER_H
#define RTVIO_BENCH_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum peer_transport {
	PT_RTVIO,		/* a process cell on a broker socket */
	PT_UNIX_STREAM,
	PT_UNIX_SEQPACKET,
	PT_PIPE,		/* a named FIFO */
	PT_IOX,			/* iceoryx publisher / subscriber */
	PT_SHM,			/* SPSC ring in a shared file, futex wake-ups: the floor */
};

struct peer_args {
	bool send;
	enum peer_transport tr;
	const char *path;	/* socket, FIFO or shared file; broker socket for rtvio */
	uint32_t port;		/* rtvio: the flow's port; iceoryx: the service instance */
	uint64_t peer_cid;	/* rtvio sender: the receiving cell's CID */
	uint64_t region;	/* rtvio: communication region bytes */
	size_t size;		/* bytes per message */
	bool throughput;
	uint64_t count;		/* latency mode: messages to send */
	uint64_t period_ns;	/* latency mode */
	uint64_t duration_ns;	/* throughput mode */
	uint64_t start_ns;	/* latency mode sender: first release (CLOCK_MONOTONIC), 0 = now */
	int cpu;		/* -1 = not pinned */
	int prio;		/* SCHED_FIFO priority, 0 = ordinary */
	bool rtvio_poll_recv;	/* rtvio receiver spins on non-blocking calls */
	bool zerocopy;		/* rtvio: loan/commit and borrow/release (rtvio-zc) */
	uint32_t spin_us;	/* a wait spins this long before it sleeps (rtvio: poll_us) */
	uint32_t rx_buf;	/* rtvio: payload bytes per RX buffer; 0 = 4096 */
	uint32_t rcvbuf;	/* rtvio: receive budget per socket (buf_alloc); 0 = the
				 * cell's default, 256 KiB */
};

/* Receiver-side bookkeeping shared by every transport. */
struct peer_rx {
	uint64_t messages, bytes, lost, reordered, corrupt;
	uint64_t next_seq;
	uint64_t first_stamp, last_arrival;
	double *lat_ns;		/* latency mode: one per message, allocated before the run */
	size_t nlat, cap;
	/* Polling rtvio receiver, latency mode: per message, stamp to the spinning
	 * thread's return to its cpu and to its seeing the completion (ns). */
	double *back_ns, *news_ns;
	size_t nspin;
	bool throughput;
};

/* Checks one complete message and accounts it (arrival at now_ns). */
void peer_rx_account(struct peer_rx *rx, const uint8_t *m, size_t len, uint64_t now_ns);
/* The same in steps, for a message checked in place piece by piece: the header
 * (false: corrupt; seq and stamp out), whether this message's payload is checked and
 * against which pattern base, and the accounting of a message found intact. */
bool peer_rx_header(const uint8_t *hdr, size_t len, uint64_t *seq, uint64_t *stamp);
bool peer_rx_checks_payload(const struct peer_rx *rx, uint64_t seq);
uint64_t peer_rx_pattern_base(const struct peer_rx *rx, uint64_t seq);
void peer_rx_note(struct peer_rx *rx, size_t len, uint64_t seq, uint64_t stamp,
		  uint64_t now_ns);
/* Pattern bytes for message offsets [off, off + n) at dst; and nonzero when src
 * (offsets [off, off + n)) differs from the pattern anywhere. */
void peer_fill_range(uint8_t *dst, size_t off, size_t n, uint64_t base);
uint8_t peer_pattern_diff(const uint8_t *src, size_t off, size_t n, uint64_t base);
/* Writes the pattern for sequence base into m[RTMSG_HDR, len). */
void peer_fill_payload(uint8_t *m, size_t len, uint64_t base);
/* Writes the header of message seq stamped now; call right before handing it over. */
void peer_stamp(uint8_t *m, size_t len, uint64_t seq, uint64_t stamp_ns);
/* Prints the receiver's JSON result on stdout. */
void peer_rx_report(struct peer_rx *rx, const struct peer_args *a, const char *status);
/* The sender's JSON line: messages sent, the error, how often it slept, and
 * (latency mode, n > 0) the send call's duration, stamp to return, p50 and p99 as
 * send_call_us. */
void peer_send_report(uint64_t seq, int err, double *call_ns, size_t n);
/* How often this process has slept so far (voluntary context switches, all its
 * threads), -1 if unknown: in throughput runs, what a side's wake-ups cost. */
long peer_sleeps(void);

/* One pause of a spin loop (the cpu's spin-wait hint). */
static inline void peer_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* Pins and raises the calling process as the arguments say; warns once on failure. */
void peer_setup_sched(const struct peer_args *a);
/* Tells the orchestrator the receiver is listening. */
void peer_ready(void);

/* Zero copy over an rtvio STREAM socket (bench/peer_zc.c). Sending writes message
 * seq in place in loaned TX slots (payload first, the stamp right before the first
 * commit, as the iceoryx peer does) and returns 0 or a negative errno. Receiving
 * checks one message of len bytes in place in borrowed RX buffers and accounts it:
 * 1, 0 at the end of the stream, or a negative errno. */
struct rtvio_cell;
int peer_zc_send(struct rtvio_cell *c, int id, const struct peer_args *a, uint64_t seq,
		 uint64_t *stamp_ns);
int peer_zc_recv(struct rtvio_cell *c, int id, struct peer_rx *rx, size_t len);

#endif
