/* gvsock's private state and the calls its files make on one another. Not part of the
 * API (gvsock.h is): a port never includes it. Same discipline as gvsock.h:
 * freestanding, no libc beyond mem*, caller-owned storage.
 *
 * The files, one concept each:
 *   layout.c   where the rings and buffers sit in the region
 *   stack.c    carving the caller's storage, ring setup, RX buffer posting
 *   tx.c       the transmit path: header and payload slots, control packets, RSTs
 *   sock.c     the socket table: slots, ports, the end of a connection
 *   rbuf.c     a socket's receive ring, its message boundaries and credit
 *   rx.c       the receive path: packet validation, demultiplexing, the state machine
 *   process.c  gv_process: the bounded work loop, timeouts, a broken ring
 *   conn.c     socket, bind, connect, listen, accept, shutdown, close
 *   send.c     gv_send: credit and TX slots for STREAM and SEQPACKET
 *   recv.c     gv_recv
 *   zc.c       zero copy: TX loans, RX buffers held for in-place reading
 *   query.c    poll events, pending errors, names */
#ifndef RTVIO_GVSOCK_GV_INTERNAL_H
#define RTVIO_GVSOCK_GV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gvsock.h"
#include "rterrno.h"
#include "virtq.h"
#include "vsock.h"

/* gvsock passes core's errors through as its own: the numbers must be the same. */
#if GV_EINVAL != RT_EINVAL || GV_ENOSPC != RT_ENOSPC
#error gvsock.h and core/rterrno.h disagree
#endif

/* <string.h> is not a freestanding header. The compiler inlines these or calls
 * memcpy/memset, which a freestanding implementation provides. */
#define gv_memcpy __builtin_memcpy
#define gv_memset __builtin_memset

#define GV_PORT_ANY 0xFFFFFFFFu
#define GV_EPHEMERAL_FIRST 49152u
#define GV_TX_HDR_STRIDE 48u
#define GV_RSTQ 32u
#define GV_NONE 0xFFFFu
#define GV_DEFAULT_TIMEOUT_NS 2000000000ull

/* The same numbers as gvsock.h's GV_SLOT_* (gv_slot_info reports them as they are). */
enum gv_state {
	GV_S_FREE = GV_SLOT_FREE,
	GV_S_OPEN = GV_SLOT_OPEN,             /* created, not connected */
	GV_S_LISTEN = GV_SLOT_LISTEN,
	GV_S_CONNECTING = GV_SLOT_CONNECTING, /* REQUEST sent (or pending) */
	GV_S_CONNECTED = GV_SLOT_CONNECTED,   /* including half-closed */
	GV_S_DONE = GV_SLOT_DONE,     /* connection gone (reset, or closed by both); id held */
	GV_S_LINGER = GV_SLOT_LINGER, /* closed by the application; waiting for the peer's
				       * RST, or owing a control packet the ring cannot take */
};

/* Control packets owed to the peer that did not fit in the TX ring yet. */
#define P_REQUEST GV_PEND_REQUEST
#define P_RESPONSE GV_PEND_RESPONSE
#define P_CREDIT_UPDATE GV_PEND_CREDIT_UPDATE
#define P_CREDIT_REQUEST GV_PEND_CREDIT_REQUEST
#define P_SHUTDOWN GV_PEND_SHUTDOWN
#define P_RST GV_PEND_RST

struct gv_sock {
	uint8_t state;
	uint8_t type;
	uint8_t pend;          /* P_* */
	uint8_t shut;          /* GV_SHUT_* we have declared */
	uint8_t peer_shut;     /* VSOCK_SHUTDOWN_* the peer has declared */
	uint8_t shut_pend;     /* VSOCK_SHUTDOWN_* flags of a pending SHUTDOWN */
	bool bound;            /* holds local_port exclusively (not an accepted child) */
	bool accepted;         /* child: handed out by gv_accept */
	bool peer_waiting;     /* peer asked for credit while we held unread data */
	bool credit_requested; /* we asked for credit; cleared when a send succeeds */
	bool discard;          /* SEQPACKET: dropping the rest of an oversize message */
	bool tx_blocked;       /* a send failed for TX ring space: wake on reclaim */
	int err;               /* pending asynchronous error (negative errno) or 0 */
	int parent;            /* listener of an unaccepted child, else -1 */
	int next;              /* accept queue link */
	int acc_head, acc_tail;/* listener: unaccepted children, oldest first */
	uint32_t backlog, npending;
	uint32_t local_port;
	uint32_t peer_port;
	uint64_t peer_cid;
	uint32_t want;         /* SEQPACKET: size of the last message refused (POLLOUT) */
	uint64_t deadline;     /* connect or linger timeout; 0 = none */
	struct vsock_credit cr;
	/* receive ring: payload waiting for gv_recv; rcap == cr.buf_alloc */
	uint8_t *rbuf;
	uint64_t *eom, *eor;   /* SEQPACKET: bit per ring byte, set on a message's last */
	uint32_t rcap, rhead, rlen;
	uint32_t msgs;         /* SEQPACKET: complete messages queued (ring and held) */
	/* Zero copy (zc.c). Held RX buffers come before the ring's bytes: a packet is
	 * held only while the ring is empty, so the order never interleaves. */
	uint16_t hold_head, hold_tail; /* RX buffer indices, GV_NONE = none */
	uint32_t nheld, hlen;  /* held buffers and their unread payload bytes */
	uint32_t hold_max;     /* buffers this socket may hold; 0 = copy everything */
	bool hold_msg;         /* SEQPACKET: the message now arriving is being held */
	bool loaned;           /* a TX slot is lent out (gv_loan) */
	uint16_t loan_hdr, loan_pay;
	uint32_t loan_len;     /* bytes granted to the loan */
	uint32_t lent;         /* length of the piece gv_borrow last handed out */
};

/* A held RX buffer (zc.c): its payload stays in the region until released. The
 * header was validated into private memory; off/len are ours. */
struct gv_hold {
	uint32_t off, len;     /* unread payload: [off, len) after the header */
	uint16_t next;
	uint8_t flags;         /* GV_MSG_EOR | GV_MSG_EOM of the packet */
};

struct gv_txent {
	uint16_t hdr;  /* header slot (== index of this entry) */
	uint16_t pay;  /* payload slot, or GV_NONE */
};

struct gv_rst {
	uint64_t cid;
	uint32_t dst_port, src_port;
	uint16_t type;
};

struct gv_stack {
	struct gv_config cfg;
	uint8_t *region;
	uint32_t num;
	struct vq_driver rxq, txq;
	struct vq_drv_slot *rx_slot, *tx_slot;
	struct gv_txent *txent;
	uint16_t *hdr_free, *pay_free;
	uint32_t n_hdr_free, n_pay_free;
	uint32_t pay_head;      /* pay_free is a ring of tx_slot_count: the oldest free
				 * slot at pay_head (gv_pay_take) */
	uint32_t desc_reserved; /* TX descriptors promised to outstanding loans */
	struct gv_hold *hold;   /* one per RX buffer */
	uint32_t rx_cur;        /* RX buffer gv_rx_one is looking at */
	bool rx_held;           /* ... and a socket kept it (do not repost) */
	struct gv_sock *sk;
	uint8_t *sockmem;
	uint32_t sockmem_stride;
	struct gv_rst rstq[GV_RSTQ];
	uint32_t rst_head, rst_count;
	uint32_t next_port;
	uint64_t now;
	int dead;            /* sticky: rings broken */
	bool tx_dirty, rx_dirty;
	bool tx_armed;       /* somebody found no TX room: completions signalled */
	bool notify_held;    /* gv_notify_hold: gv_process leaves the notifications off */
	struct gv_stats st;
};

/* TX payload slots are handed out oldest-freed first: a slot the broker has just
 * read from is still in its core's cache, and writing it at once costs the sender a
 * cross-core invalidation per cache line; the most recently freed (a stack) was the
 * worst choice for bulk. Slots given back unused go in front again. */
static inline uint16_t gv_pay_take(struct gv_stack *s)
{
	uint16_t ps = s->pay_free[s->pay_head];

	s->pay_head = s->pay_head + 1 == s->cfg.layout.tx_slot_count ? 0 : s->pay_head + 1;
	s->n_pay_free--;
	return ps;
}

/* A slot the broker completed: at the back. */
static inline void gv_pay_free(struct gv_stack *s, uint16_t ps)
{
	uint32_t n = s->cfg.layout.tx_slot_count, i = s->pay_head + s->n_pay_free;

	s->pay_free[i >= n ? i - n : i] = ps;
	s->n_pay_free++;
}

/* A slot taken but not used (a returned loan, a refused add): in front. */
static inline void gv_pay_unused(struct gv_stack *s, uint16_t ps)
{
	s->pay_head = s->pay_head ? s->pay_head - 1 : s->cfg.layout.tx_slot_count - 1;
	s->pay_free[s->pay_head] = ps;
	s->n_pay_free++;
}

/* Ring position `skip` bytes past the read position. rcap <= 2^30 and skip <= rcap,
 * so the sum stays below 2^31: 32-bit arithmetic suffices, and it must, since a
 * 32-bit cell has no 64-bit division without the compiler's runtime library. */
static inline uint32_t gv_rbuf_pos(const struct gv_sock *k, uint32_t skip)
{
	return (k->rhead + skip) % k->rcap;
}

/* Packets of at most tp bytes that carry len bytes; len, tp < 2^31 (32-bit, as above). */
static inline uint32_t gv_npkt(uint32_t len, uint32_t tp)
{
	return len / tp + (len % tp != 0);
}

/* Index of the lowest set bit of w != 0, without __builtin_ctzll (a libgcc call on
 * 32-bit and on cores without a count-trailing-zeros instruction). */
static inline uint32_t gv_ctz64(uint64_t w)
{
	uint32_t v = (uint32_t)w, n = 0;

	if (!v) {
		v = (uint32_t)(w >> 32);
		n = 32;
	}
	if (!(v & 0xFFFFu)) {
		v >>= 16;
		n += 16;
	}
	if (!(v & 0xFFu)) {
		v >>= 8;
		n += 8;
	}
	if (!(v & 0xFu)) {
		v >>= 4;
		n += 4;
	}
	if (!(v & 0x3u)) {
		v >>= 2;
		n += 2;
	}
	return n + !(v & 1u);
}

static inline uint64_t gv_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* ---- stack.c ---- */
int gv_rx_post(struct gv_stack *s, uint32_t i);

/* ---- tx.c ---- */
bool gv_tx_room(const struct gv_stack *s, uint32_t npkt, uint32_t npay);

/* ---- tx_arm.c ---- */
/* Reclaims the TX ring's completions and wakes the sockets that waited for room:
 * how many, or the dead error. */
int gv_tx_drain(struct gv_stack *s);
/* Every socket that found no TX room may go on now: TX room came back (completions
 * drained, or a loan returned unused). */
void gv_tx_wake_blocked(struct gv_stack *s);
/* gv_tx_room for a caller that will wait when there is none: false only with the
 * TX ring's completions armed and none pending, so that the next one is signalled. */
bool gv_tx_avail(struct gv_stack *s, uint32_t npkt, uint32_t npay);
void gv_tx_put(struct gv_stack *s, const struct vsock_hdr *h, const void *payload);
void gv_tx_put_slots(struct gv_stack *s, const struct vsock_hdr *h, uint16_t hs, uint16_t ps);
void gv_hdr_for(struct gv_stack *s, struct gv_sock *k, uint16_t op, uint32_t flags,
		uint32_t len, struct vsock_hdr *h);
void gv_ctrl_flush(struct gv_stack *s, struct gv_sock *k);
void gv_ctrl(struct gv_stack *s, struct gv_sock *k, uint8_t p);
void gv_rst_reply(struct gv_stack *s, const struct vsock_hdr *in);
void gv_rstq_flush(struct gv_stack *s);
bool gv_rst_park(struct gv_stack *s, struct gv_sock *k);
bool gv_rstq_holds(const struct gv_stack *s, uint32_t port);
void gv_tx_publish(struct gv_stack *s);
void gv_tx_reclaim(struct gv_stack *s, struct gv_txent *e);

/* ---- sock.c ---- */
static inline int gv_sock_id(const struct gv_stack *s, const struct gv_sock *k)
{
	return (int)(k - s->sk);
}

struct gv_sock *gv_sock_get(const struct gv_stack *s, int id);
void gv_wake(struct gv_stack *s, struct gv_sock *k);
void gv_sock_setup(struct gv_stack *s, struct gv_sock *k, unsigned int type);
void gv_credit_base(struct gv_stack *s, struct gv_sock *k);
struct gv_sock *gv_sock_alloc(struct gv_stack *s);
bool gv_port_in_use(const struct gv_stack *s, uint32_t port);
int gv_bind_ephemeral(struct gv_stack *s, struct gv_sock *k);
void gv_sock_free(struct gv_stack *s, struct gv_sock *k);
void gv_conn_gone(struct gv_stack *s, struct gv_sock *k, int err);
void gv_send_rst(struct gv_stack *s, struct gv_sock *k);

/* ---- rbuf.c ---- */
static inline void gv_bit_set(uint64_t *map, uint32_t i)
{
	map[i / 64] |= 1ull << (i % 64);
}

static inline void gv_bit_clear(uint64_t *map, uint32_t i)
{
	map[i / 64] &= ~(1ull << (i % 64));
}

static inline bool gv_bit_test(const uint64_t *map, uint32_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}

void gv_rbuf_put(struct gv_sock *k, const uint8_t *p, uint32_t len);
void gv_rbuf_peek(const struct gv_sock *k, uint32_t skip, uint8_t *out, uint32_t len);
uint32_t gv_rbuf_next_eom(const struct gv_sock *k);
void gv_credit_check(struct gv_stack *s, struct gv_sock *k);
void gv_consume(struct gv_stack *s, struct gv_sock *k, uint32_t n);

uint8_t *gv_rx_buf(struct gv_stack *s, uint32_t i);

/* ---- recv.c ---- */
int gv_recv_empty(struct gv_sock *k);

/* ---- rx.c ---- */
void gv_rx_one(struct gv_stack *s, uint8_t *buf, uint32_t used);

/* ---- zc.c ---- */
bool gv_hold_wanted(const struct gv_sock *k);
void gv_hold_put(struct gv_stack *s, struct gv_sock *k, uint32_t len, uint8_t flags);
void gv_zc_drop(struct gv_stack *s, struct gv_sock *k);
int gv_recv_zc(struct gv_stack *s, struct gv_sock *k, uint8_t *buf, uint32_t len,
	       unsigned int flags, unsigned int *out_flags);

/* ---- send.c ---- */
int gv_send_state(struct gv_stack *s, struct gv_sock *k);
bool gv_seq_credit(struct gv_stack *s, struct gv_sock *k, uint32_t len);

/* ---- process.c ---- */
int gv_fail(struct gv_stack *s, int err);

#endif
