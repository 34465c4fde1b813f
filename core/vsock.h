/* The virtio-vsock packet layer (virtio 1.2, section 5.10): the packet header, its
 * constants, and the credit arithmetic both ends of a connection share.
 *
 * Freestanding: no allocation, no libc. */
#ifndef RTVIO_CORE_VSOCK_H
#define RTVIO_CORE_VSOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "le.h"
#include "rterrno.h"
#include "virtq.h" /* VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC */

/* Device-specific feature bits. */
#define VIRTIO_VSOCK_F_STREAM 0
#define VIRTIO_VSOCK_F_SEQPACKET 1

/* Queues of a vsock device. */
#define VSOCK_VQ_RX 0
#define VSOCK_VQ_TX 1
#define VSOCK_VQ_EVENT 2

/* Well-known CIDs. */
#define VSOCK_CID_HOST 2u

/* Packet types (hdr.type). */
#define VSOCK_TYPE_STREAM 1u
#define VSOCK_TYPE_SEQPACKET 2u

/* Operations (hdr.op). */
#define VSOCK_OP_INVALID 0u
#define VSOCK_OP_REQUEST 1u
#define VSOCK_OP_RESPONSE 2u
#define VSOCK_OP_RST 3u
#define VSOCK_OP_SHUTDOWN 4u
#define VSOCK_OP_RW 5u
#define VSOCK_OP_CREDIT_UPDATE 6u
#define VSOCK_OP_CREDIT_REQUEST 7u

/* hdr.flags of a SHUTDOWN packet. */
#define VSOCK_SHUTDOWN_RCV 1u  /* the sender will receive no more */
#define VSOCK_SHUTDOWN_SEND 2u /* the sender will send no more */
/* hdr.flags of a SEQPACKET RW packet. */
#define VSOCK_SEQ_EOM 1u /* last packet of a message */
#define VSOCK_SEQ_EOR 2u /* last packet of a record (MSG_EOR) */

/* The header on the wire: 44 bytes, little-endian, packed:
 *   0 le64 src_cid   8 le64 dst_cid   16 le32 src_port   20 le32 dst_port
 *   24 le32 len      28 le16 type     30 le16 op         32 le32 flags
 *   36 le32 buf_alloc                 40 le32 fwd_cnt */
#define VSOCK_HDR_SIZE 44u

/* The same header in host byte order, for private memory only. */
struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;       /* payload bytes after the header */
	uint16_t type;      /* VSOCK_TYPE_* */
	uint16_t op;        /* VSOCK_OP_* */
	uint32_t flags;
	uint32_t buf_alloc; /* the sender's receive buffer for this connection */
	uint32_t fwd_cnt;   /* payload bytes the sender has consumed from it */
};

/* Writes h as 44 wire bytes at out (any alignment). */
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_SIZE]);

/* Reads 44 wire bytes at in (any alignment) into h. The bytes are read exactly once,
 * so in may point into memory the peer can still write; h is then private. No field
 * is checked here. */
void vsock_hdr_decode(struct vsock_hdr *h, const uint8_t in[VSOCK_HDR_SIZE]);

/* Bytes the peer can still take: peer_buf_alloc - (tx_cnt - peer_fwd_cnt), computed
 * modulo 2^32 as the counters are, and 0 when the peer claims more bytes in flight
 * than it allocated (a shrinking buf_alloc, or a lying peer). */
/*@ assigns \nothing;
    ensures \result <= peer_buf_alloc; */
static inline uint32_t vsock_peer_free(uint32_t peer_buf_alloc, uint32_t tx_cnt,
				       uint32_t peer_fwd_cnt)
{
	uint32_t in_flight = tx_cnt - peer_fwd_cnt;

	return in_flight > peer_buf_alloc ? 0 : peer_buf_alloc - in_flight;
}

/* Credit state of one end of one connection. Only payload bytes count. All counters
 * are free-running modulo 2^32. */
struct vsock_credit {
	/* our receive side */
	uint32_t buf_alloc;    /* receive buffer we advertise */
	uint32_t fwd_cnt;      /* payload bytes our application has consumed */
	uint32_t rx_cnt;       /* payload bytes received from the peer */
	uint32_t last_fwd_cnt; /* fwd_cnt as last advertised to the peer */
	/* our send side */
	uint32_t tx_cnt;         /* payload bytes we have sent */
	uint32_t peer_buf_alloc; /* as last advertised by the peer */
	uint32_t peer_fwd_cnt;   /* as last advertised by the peer */
};

/* A fresh connection with our receive buffer of buf_alloc bytes. The peer's side is
 * zero (no credit) until its first header arrives. */
void vsock_credit_init(struct vsock_credit *c, uint32_t buf_alloc);

/* Takes the peer's buf_alloc and fwd_cnt from a header it sent (every packet carries
 * them). */
void vsock_credit_from_peer(struct vsock_credit *c, const struct vsock_hdr *h);

/* Stamps our buf_alloc and fwd_cnt into an outgoing header and remembers that the
 * peer now knows them. */
void vsock_credit_to_peer(struct vsock_credit *c, struct vsock_hdr *h);

/* Bytes we may send now. */
/*@ requires \valid_read(c);
    assigns \nothing;
    ensures \result <= c->peer_buf_alloc; */
static inline uint32_t vsock_credit_peer_free(const struct vsock_credit *c)
{
	return vsock_peer_free(c->peer_buf_alloc, c->tx_cnt, c->peer_fwd_cnt);
}

/* Reserves up to want payload bytes for sending: returns how many may go now
 * (min(want, peer_free)) and counts them as sent. */
uint32_t vsock_credit_take(struct vsock_credit *c, uint32_t want);

/* Counts len payload bytes received from the peer. Returns 0, or -RT_EPROTO when
 * they do not fit in what we advertised (buf_alloc - (rx_cnt - fwd_cnt)): the peer
 * ignored its credit. Nothing is counted then. */
int vsock_credit_rx(struct vsock_credit *c, uint32_t len);

/* Counts len payload bytes our application consumed (made room for). */
void vsock_credit_consumed(struct vsock_credit *c, uint32_t len);

/* Bytes consumed since we last told the peer: a receiver sends a CREDIT_UPDATE when
 * this grows large (a one-way flow hears nothing otherwise and the sender stalls). */
/*@ requires \valid_read(c);
    assigns \nothing; */
static inline uint32_t vsock_credit_unannounced(const struct vsock_credit *c)
{
	return c->fwd_cnt - c->last_fwd_cnt;
}

#endif
