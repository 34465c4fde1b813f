/* gvsock: the OS-independent cell side of virtio-vsock, over core/'s split-virtqueue
 * driver. A port (POSIX process cell, bare metal, RTOS) supplies the communication
 * region, the notification hooks and the clock; gvsock supplies the ring layout,
 * the vsock protocol (STREAM and SEQPACKET, credit flow control, half-close, resets)
 * and a socket-like API.
 *
 * Discipline (same as core/): caller-owned storage, no allocation, no libc beyond
 * memcpy/memset/memmove/memcmp, no OS calls, no threads, no event loop. Every call on
 * one stack must be serialised by the port (one thread, or one lock around all of
 * them). The port calls gv_process() when the call eventfd (used-buffer interrupt)
 * fires, and before it blocks; gv_process never blocks.
 *
 * Trust: the broker writes the RX buffers and the used rings. Every received packet
 * is validated (used length against the buffer, header len against the used length,
 * op and type known, dst_cid ours) before it is looked at further; bad ones are
 * dropped and counted in gv_stats. The cell does not trust the broker either.
 *
 * Errors are negative errno values with Linux's numbers: gvsock is freestanding and
 * names them itself (GV_E* below; EINVAL 22 and ENOSPC 28 as core/rterrno.h), and
 * every call returns those names only. The -EINVAL... below mean -GV_EINVAL... On
 * Linux they are <errno.h>'s; a port on a system with other numbers maps them. */
#ifndef RTVIO_GVSOCK_GVSOCK_H
#define RTVIO_GVSOCK_GVSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GV_EIO 5
#define GV_EAGAIN 11
#define GV_EINVAL 22
#define GV_EMFILE 24
#define GV_ENOSPC 28
#define GV_EPIPE 32
#define GV_EMSGSIZE 90
#define GV_EPROTONOSUPPORT 93
#define GV_EADDRINUSE 98
#define GV_EADDRNOTAVAIL 99
#define GV_ECONNRESET 104
#define GV_EISCONN 106
#define GV_ENOTCONN 107
#define GV_ETIMEDOUT 110
#define GV_ECONNREFUSED 111
#define GV_EALREADY 114
#define GV_EINPROGRESS 115

/* ---- Region layout ---------------------------------------------------------------
 * Everything the broker may touch lives in one region: the rx ring (queue 0), the tx
 * ring (queue 1), the RX buffers (one writable descriptor each: 44-byte header +
 * payload, like Linux), the TX headers (one 44-byte slot per possible chain) and the
 * TX payload slots (a data packet is two descriptors: header, then payload). Device
 * addresses are `dev_base + offset`; a port that mirrors QEMU uses
 * dev_base = 0x100000000 and tells the broker so in SET_MEM_TABLE. */

#define GV_HDR_SIZE 44u
#define GV_DEFAULT_QUEUE_SIZE 128u
#define GV_DEFAULT_RX_BUF_SIZE 4096u   /* including the 44-byte header */
#define GV_DEFAULT_TX_PAYLOAD 65536u   /* largest TX packet payload, like Linux */

struct gv_layout_params {
	uint32_t queue_size;   /* both queues; power of two, 2..32768; 0 = default */
	uint32_t rx_buf_size;  /* bytes per RX buffer incl. header; 0 = default */
	uint32_t tx_payload;   /* bytes per TX payload slot; 0 = default */
	uint32_t tx_slots;     /* TX payload slots wanted; 0 = as many as fit, up to
				* queue_size / 2 (each data packet takes two descriptors) */
};

/* Offsets are from the start of the region. Who writes what in the region: the
 * descriptor tables and avail rings are gvsock's (the broker only reads them); the
 * used rings and the RX buffers are the broker's (gvsock reads each RX packet once
 * into private memory and validates it there); the TX headers and payload slots are
 * gvsock's and are never read back. The layout itself is private to the cell. */
struct gv_layout {
	uint32_t queue_size;
	uint64_t rx_desc, rx_avail, rx_used;
	uint64_t tx_desc, tx_avail, tx_used;
	uint64_t rx_bufs;        /* rx_buf_count buffers of rx_buf_size bytes */
	uint32_t rx_buf_count;   /* = queue_size */
	uint32_t rx_buf_size;
	uint64_t tx_hdrs;        /* queue_size header slots, 48 bytes apart */
	uint64_t tx_bufs;        /* tx_slot_count slots of tx_payload bytes */
	uint32_t tx_slot_count;
	uint32_t tx_payload;
	uint64_t footprint;      /* bytes of the region used, from offset 0 */
};

/* Places everything in a region of `region_size` bytes. Returns 0, or -EINVAL (bad
 * parameter), -ENOSPC (does not fit: not even one TX payload slot after the rings and
 * RX buffers). */
int gv_layout_compute(const struct gv_layout_params *p, uint64_t region_size,
		      struct gv_layout *out);

/* ---- The stack ------------------------------------------------------------------ */

#define GV_QUEUE_RX 0u
#define GV_QUEUE_TX 1u

struct gv_ops {
	/* Notify the broker that `queue` has new available buffers (write the kick
	 * eventfd). Called only when core's notification suppression says the device
	 * wants it. */
	void (*kick)(void *ctx, unsigned int queue);
	/* Monotonic time in ns (connect and close timeouts). */
	uint64_t (*now_ns)(void *ctx);
	/* Optional: socket `id`'s gv_poll_events() may have changed (data, space,
	 * connection state, pending accept). Lets a port wake its waiters. */
	void (*wake)(void *ctx, int id);
};

#define GV_SOCK_STREAM 1u      /* VIRTIO_VSOCK_TYPE_STREAM */
#define GV_SOCK_SEQPACKET 2u   /* VIRTIO_VSOCK_TYPE_SEQPACKET */

struct gv_config {
	uint64_t cid;                 /* ours, from the broker's GET_CONFIG reply */
	bool seqpacket;               /* VIRTIO_VSOCK_F_SEQPACKET negotiated */
	bool event_idx;               /* VIRTIO_RING_F_EVENT_IDX negotiated */
	/* The region and where gv_layout_compute placed things in it. */
	void *region;
	uint64_t region_dev;          /* device (guest) address of region[0] */
	uint64_t region_size;
	struct gv_layout layout;
	/* Sockets: a fixed table; each socket owns rcvbuf bytes of receive buffering
	 * (advertised as buf_alloc; SEQPACKET keeps 2 boundary bits per byte in the
	 * same budget, so its buf_alloc is 4/5 of rcvbuf). */
	uint32_t max_sockets;         /* 1..4096 */
	uint32_t rcvbuf;              /* per socket, 128..2^30 bytes */
	uint64_t connect_timeout_ns;  /* 0 = 2 s */
	uint64_t close_timeout_ns;    /* wait for the peer's RST after close; 0 = 2 s */
	const struct gv_ops *ops;
	void *ctx;
	/* Tests only: start every new connection's free-running credit counters
	 * (tx_cnt, rx_cnt, fwd_cnt) here instead of 0, to exercise the 2^32 wrap. Both
	 * ends of a connection must use the same value; 0 for anything real. */
	uint32_t test_counter_base;
};

struct gv_stats {
	uint64_t rx_packets;    /* valid packets received */
	uint64_t rx_bytes;      /* their payload */
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t rx_bad_len;    /* used length beyond the buffer or below a header,
				 * header len beyond the used length */
	uint64_t rx_bad_hdr;    /* unknown op or type, dst_cid not ours */
	uint64_t rx_bad_credit; /* RW beyond the credit we gave: connection reset */
	uint64_t rx_no_sock;    /* packets for no connection (answered by RST) */
	uint64_t rst_dropped;   /* RST replies not sent: reply queue full */
	uint64_t credit_updates_sent;
	uint64_t credit_requests_sent;
	uint64_t ring_errors;   /* core reported a broken ring: the stack is dead */
	uint64_t rst_parked;    /* RSTs of ended connections moved to the RST reply
				 * queue (TX ring full) so that their slot was freed */
};

struct gv_stack;

/* Bytes of caller storage gv_stack_init needs for `cfg` (stack state, socket table,
 * per-descriptor bookkeeping, receive buffers); 0 if cfg is invalid. The storage
 * must be aligned to 16 bytes and is owned by the stack until the caller drops it
 * (there is no teardown beyond forgetting it). */
size_t gv_stack_mem_size(const struct gv_config *cfg);

/* Builds the stack in `mem` (gv_stack_mem_size bytes) and lays out both rings in the
 * region (rings zeroed, RX buffers posted on the rx avail ring, nothing kicked yet).
 * Call once the layout is known, before telling the broker the ring addresses.
 * Returns 0 and *out, -EINVAL (bad config), -ENOSPC (mem too small). */
int gv_stack_init(const struct gv_config *cfg, void *mem, size_t mem_size,
		  struct gv_stack **out);

/* The broker has the rings (vhost-user SET_VRING_ENABLE sent): kick both queues so
 * it sees the posted RX buffers. */
void gv_start(struct gv_stack *s);

/* Does pending work without blocking: takes used RX buffers (validates, delivers to
 * sockets, reposts them), reclaims completed TX chains, sends queued control packets
 * (RESPONSE, RST, CREDIT_UPDATE), runs connect/close timeouts, then re-arms the
 * used-buffer notifications. Returns the number of packets handled and sent: > 0
 * means there may be more (the work per call is bounded, and notifications may still
 * be off), so call again before sleeping; 0 means everything is done and a
 * notification will come for new work. Negative once the rings are broken (-EIO: the
 * broker broke the ring rules; sticky, every connection is reset). */
int gv_process(struct gv_stack *s);

/* Time of the earliest pending timeout (connect/close) in the now_ns clock, or
 * UINT64_MAX when none: a port that blocks should wake by then and call
 * gv_process. */
uint64_t gv_next_deadline(const struct gv_stack *s);

/* True when the broker has put something on a used ring that gv_process has not
 * taken yet (a hint: gv_process does the ordered read). Serialised like every call. */
bool gv_used_pending(const struct gv_stack *s);

/* Both used indices as one number: it changes when the broker completes anything.
 * Reads only ring memory (no stack state another thread may be changing), so a
 * polling port may spin on it without the stack's lock. */
uint32_t gv_used_snapshot(const struct gv_stack *s);

/* hold true: asks the broker for no used-buffer notifications (both queues), and
 * every gv_process leaves them off, until gv_notify_hold(s, false); the gv_process
 * after that turns them back on (and looks once more) before it returns 0. A port
 * that spins on gv_used_snapshot holds them while any of its threads spins, so that
 * the broker makes no system call to signal a cell that is watching anyway, not even
 * when another thread of the cell runs gv_process meanwhile; it releases them, and
 * calls gv_process, before it sleeps. A sender that finds no TX room still arms the
 * TX completions (tx_arm.c). Serialised like every call. */
void gv_notify_hold(struct gv_stack *s, bool hold);

void gv_get_stats(const struct gv_stack *s, struct gv_stats *out);

/* ---- Diagnostics -------------------------------------------------------------------
 * What holds the stack's resources now, for a port that must explain a failure (a
 * full socket table, a connect that never completes). Not for the data path. */

/* TX resources free now, RSTs waiting in the reply queue for ring room, and where
 * both rings stand. The indices the device writes are read once, as they are now:
 * published - used is what the device holds (taken or not); avail_event (EVENT_IDX)
 * is where the device last asked to be kicked, so one far behind `published` with
 * chains outstanding says it stopped looking at the ring, one close to it says it
 * took the chains and holds them. */
struct gv_ring_pos {
	uint16_t published;   /* avail index the cell last published */
	uint16_t used;        /* used index the device last wrote */
	uint16_t taken;       /* next used entry the cell will take */
	uint16_t avail_event; /* the device's kick threshold (EVENT_IDX), else 0 */
};
struct gv_tx_info {
	uint32_t hdr_free;   /* TX header slots (one per packet) */
	uint32_t pay_free;   /* TX payload slots */
	uint32_t desc_free;  /* TX ring descriptors */
	uint32_t rst_queued; /* RSTs waiting for the ring (at most 32) */
	struct gv_ring_pos tx, rx;
};
void gv_tx_info(const struct gv_stack *s, struct gv_tx_info *out);

/* A socket-table slot, whether an application holds it or not: a closed socket
 * stays (GV_SLOT_LINGER) while it waits for the peer's answer to its SHUTDOWN or
 * owes the peer a control packet the TX ring has no room for. */
enum {
	GV_SLOT_FREE,
	GV_SLOT_OPEN,       /* created, not connected */
	GV_SLOT_LISTEN,
	GV_SLOT_CONNECTING, /* REQUEST sent or owed, no answer yet */
	GV_SLOT_CONNECTED,  /* including half-closed and not yet accepted */
	GV_SLOT_DONE,       /* connection gone; the application still holds the id */
	GV_SLOT_LINGER,     /* closed by the application, not yet freed */
};
/* Control packets a slot owes its peer (not yet on the TX ring). */
#define GV_PEND_REQUEST 0x01u
#define GV_PEND_RESPONSE 0x02u
#define GV_PEND_CREDIT_UPDATE 0x04u
#define GV_PEND_CREDIT_REQUEST 0x08u
#define GV_PEND_SHUTDOWN 0x10u
#define GV_PEND_RST 0x20u
struct gv_slot_info {
	uint8_t state;       /* GV_SLOT_* */
	uint8_t type;        /* GV_SOCK_* */
	uint8_t pend;        /* GV_PEND_* */
	int err;             /* pending error, 0 if none */
	uint32_t local_port; /* 0xFFFFFFFF when unbound */
	uint32_t peer_port;
	uint64_t peer_cid;
	uint64_t deadline;   /* connect or close timeout in the now_ns clock; 0 = none */
};
/* Slot i (0 .. max_sockets - 1): 0 and *out, or -EINVAL beyond the table. */
int gv_slot_info(const struct gv_stack *s, uint32_t i, struct gv_slot_info *out);
/* "free", "open", "listen", "connecting", "connected", "done", "linger" or "?". */
const char *gv_slot_state_name(unsigned int state);
uint64_t gv_local_cid(const struct gv_stack *s);

/* ---- Sockets ---------------------------------------------------------------------
 * Ids are small non-negative integers (< max_sockets). All calls are non-blocking:
 * a port builds blocking calls by waiting for gv_poll_events / ops->wake. */

/* A new unconnected socket of `type` (GV_SOCK_*): id, or -EMFILE (table full),
 * -EPROTONOSUPPORT (SEQPACKET not negotiated), -EINVAL. */
int gv_socket(struct gv_stack *s, unsigned int type);

/* Optional before connect or listen: local port. -EADDRINUSE, -EINVAL (already bound
 * or connected). Port 0xFFFFFFFF (VMADDR_PORT_ANY) picks an ephemeral one. */
int gv_bind(struct gv_stack *s, int id, uint32_t port);

/* Starts connecting (REQUEST) and returns -EINPROGRESS; the socket then becomes
 * writable (connected) or reports an error through gv_sock_error: -ECONNREFUSED
 * (RST in reply), -ETIMEDOUT (no answer within connect_timeout_ns). Other returns:
 * -EISCONN, -EALREADY (connect in progress), -EINVAL (listening/closed socket),
 * -EADDRNOTAVAIL (no ephemeral port). If the TX ring is full the REQUEST goes out
 * from a later gv_process. */
int gv_connect(struct gv_stack *s, int id, uint64_t cid, uint32_t port);

/* Listens on `port` (binds it if not bound); up to `backlog` (>= 1) connections wait
 * for gv_accept, further REQUESTs are answered by RST. -EADDRINUSE, -EINVAL. */
int gv_listen(struct gv_stack *s, int id, uint32_t port, uint32_t backlog);

/* The oldest connection waiting on listening socket `id`: new id, or -EAGAIN, or
 * -EINVAL (not listening). Peer address optional. */
int gv_accept(struct gv_stack *s, int id, uint64_t *peer_cid, uint32_t *peer_port);

/* STREAM: queues up to len bytes as RW packets (each at most tx_payload bytes and at
 * most the peer's free credit); returns bytes accepted (> 0), or -EAGAIN (no credit
 * or no TX slot; the receiver announces space by itself once it has consumed half
 * its buffer), -EPIPE (we shut down writing, the peer shut down reading or closed),
 * -ENOTCONN, or, once, the error that ended the connection (-ECONNRESET,
 * -ECONNREFUSED, -ETIMEDOUT) and -EPIPE after that.
 * SEQPACKET: one message, all or nothing: len, or -EAGAIN (not enough credit or TX
 * slots now; short of credit, the stack sends one CREDIT_REQUEST per stall and the
 * peer then announces every consumption until the message fits), -EMSGSIZE (len
 * above gv_max_message()), same errors otherwise. `eor` sets the EOR flag on the
 * message's last packet (MSG_EOR); ignored for STREAM. A zero-length send returns 0
 * and sends nothing (an empty SEQPACKET message is not supported either way: one
 * received is dropped). At most INT32_MAX bytes per call. */
int gv_send(struct gv_stack *s, int id, const void *buf, size_t len, bool eor);

#define GV_MSG_PEEK 0x1u    /* in: leave the data queued */
#define GV_MSG_TRUNC 0x2u   /* out: the message was longer than len (SEQPACKET) */
#define GV_MSG_EOR 0x4u     /* out: the message carried EOR (SEQPACKET) */
#define GV_MSG_EOM 0x8u     /* out (gv_borrow): the piece ends a message (SEQPACKET) */

/* STREAM: copies up to len bytes; returns bytes (> 0), 0 at end of stream (peer
 * shut down sending, or we shut down receiving, and nothing is left), -EAGAIN,
 * -ENOTCONN, or, once nothing is left to read after a reset, its error
 * (-ECONNRESET...) and 0 after that.
 * SEQPACKET: one whole message (never part of one): its bytes up to len; the rest of
 * a longer message is discarded and GV_MSG_TRUNC set in *out_flags. A message longer
 * than the whole receive budget (only a peer ignoring gv_max_message sends one) is
 * delivered as its first buf_alloc bytes with GV_MSG_TRUNC; the rest is discarded.
 * `flags` in: GV_MSG_PEEK. out_flags may be NULL. May queue a CREDIT_UPDATE: the
 * peer hears of consumed space once half the buffer is consumed unannounced, when
 * it asked, and whenever it sees no room while no whole message (STREAM: no byte)
 * is queued, so a sender that splits a SEQPACKET message over credit windows
 * without asking (Linux) never stalls against a waiting reader. */
int gv_recv(struct gv_stack *s, int id, void *buf, size_t len, unsigned int flags,
	    unsigned int *out_flags);

#define GV_SHUT_RD 0x1u
#define GV_SHUT_WR 0x2u

/* Half-close: sends SHUTDOWN with the matching flags (RCV for RD, SEND for WR).
 * -ENOTCONN if not connected. */
int gv_shutdown(struct gv_stack *s, int id, unsigned int how);

/* Releases the id. A connected socket sends SHUTDOWN(RCV|SEND) and lingers in the
 * table (its slot counts against max_sockets) until the peer's RST or
 * close_timeout_ns, after which an RST is sent; a connecting one sends RST;
 * queued-but-unaccepted children of a listener are reset. Unread received data is
 * dropped. 0, or -EINVAL for an id that is not open. */
int gv_close(struct gv_stack *s, int id);

#define GV_POLLIN 0x1u    /* recv would not return -EAGAIN / accept has a connection */
#define GV_POLLOUT 0x2u   /* send of the size last refused (or 1 byte) would succeed */
#define GV_POLLERR 0x4u   /* gv_sock_error would return an error */
#define GV_POLLHUP 0x8u   /* both directions are shut or the connection is gone */
#define GV_POLLRDHUP 0x10u /* the peer will send no more */

/* GV_POLL* bits of socket id; GV_POLLERR | GV_POLLHUP for an id that is not open.
 * A POLLOUT refused for TX room arms the TX ring's completions, so that a caller
 * waiting for it hears of the next one (it may reclaim completions already there). */
unsigned int gv_poll_events(struct gv_stack *s, int id);

/* True while a connect on `id` waits for its answer (gv_connect returned
 * -EINPROGRESS and neither RESPONSE, RST nor the timeout has come). A blocking
 * connect waits for this to end, not for POLLOUT: the answer may leave a socket that
 * is connected yet not writable (no credit or TX slot yet, or the peer already shut
 * it down again). */
bool gv_sock_connecting(const struct gv_stack *s, int id);

/* The pending asynchronous error of the socket (connect result, reset), cleared by
 * reading it; 0 when none. */
int gv_sock_error(struct gv_stack *s, int id);

/* Largest SEQPACKET message gv_send can ever take on `id` now: the smaller of the TX
 * payload slots' total and the peer's buf_alloc. -ENOTCONN if not connected. */
int gv_max_message(const struct gv_stack *s, int id);

/* Local and peer address of a socket; -EINVAL for a free id. */
int gv_sock_name(const struct gv_stack *s, int id, uint32_t *local_port, uint64_t *peer_cid,
		 uint32_t *peer_port);

/* Receive budget advertised as buf_alloc (payload bytes the socket can hold). */
uint32_t gv_sock_buf_alloc(const struct gv_stack *s, int id);

/* ---- Zero copy ---------------------------------------------------------------------
 * Sending: gv_loan lends the caller a TX payload slot in the region; the caller
 * writes its message there and gv_commit sends it (the broker's copy out of that
 * slot is the only one). One loan per socket at a time, of at most tx_payload bytes
 * (one packet). STREAM: the loan is at most the peer's free credit and the call
 * returns the bytes granted; SEQPACKET: all or nothing, -EAGAIN as gv_send. A loan
 * never committed goes back when the socket is closed or its connection ends, or
 * with gv_commit(len 0).
 *
 * Receiving: a socket with gv_set_zerocopy(max_bufs) keeps up to max_bufs RX buffers
 * (plus the rest of a SEQPACKET message it started holding) instead of copying their
 * payload into its receive ring; gv_borrow hands out the oldest unread piece in
 * place, gv_release consumes it, and a fully consumed buffer is reposted. Only held
 * buffers wait for reposting: the others go back at once. When the limit is
 * reached, packets are copied into the ring as usual and borrowed from there. The
 * header of every held packet was validated into private memory when it arrived;
 * the payload is region memory the broker could still write, like any received
 * data, so a reader that validates it should read each byte once. gv_recv works on
 * such a socket too (GV_MSG_PEEK then sees only the first piece). */

/* Sets how many RX buffers socket `id` may hold (0: none, copy as before); a
 * listener's accepted connections inherit it. 0 or -EINVAL. */
int gv_set_zerocopy(struct gv_stack *s, int id, uint32_t max_bufs);

/* Lends a TX payload area for up to len bytes: bytes granted (> 0) with *ptr, or
 * -EAGAIN, -EALREADY (a loan is outstanding), -EMSGSIZE (SEQPACKET: len above one
 * packet or gv_max_message), gv_send's errors. */
int gv_loan(struct gv_stack *s, int id, size_t len, void **ptr);

/* Sends the first len bytes of the loan (len <= granted; SEQPACKET: one whole
 * message, `eor` as gv_send). 0 gives the loan back unsent. Returns len, or
 * -EAGAIN (the peer's credit shrank below len: the loan stays), -EINVAL (no loan,
 * len too long), or the error that ended the connection (the loan is gone). */
int gv_commit(struct gv_stack *s, int id, size_t len, bool eor);

/* The oldest unread piece of socket id, in place: its length (> 0) with *ptr and
 * *out_flags (GV_MSG_EOM, GV_MSG_EOR: SEQPACKET message end; out_flags may be NULL);
 * 0 at end of stream; -EAGAIN, -ENOTCONN or the connection's error as gv_recv.
 * SEQPACKET hands out pieces as they arrive, whole messages or not. The pointer is
 * good until gv_release or the socket's close. */
int gv_borrow(struct gv_stack *s, int id, const void **ptr, size_t *len,
	      unsigned int *out_flags);

/* Consumes n bytes (at most the piece gv_borrow returned last) of the oldest piece;
 * a held RX buffer read to its end is reposted. 0 or -EINVAL. */
int gv_release(struct gv_stack *s, int id, size_t n);


#endif
