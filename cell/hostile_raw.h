/* The hostile cell's raw attachment: a vhost-user front end and a split-virtqueue
 * driver over its own memory, with no vsock stack on top, so that it can put any
 * packet on its TX ring, post RX buffers of any length and abuse its vhost-user
 * socket and call eventfds (cmd_hostile.c and hostile_modes.c say what each mode does).
 *
 * Region layout (RAW_REGION bytes, device address RAW_BASE + offset):
 *   0       rx ring          RAW_RXBUF_OFF  RAW_QSIZE RX buffers of RAW_RXBUF bytes
 *   8 KiB   tx ring          RAW_TXBUF_OFF  RAW_QSIZE TX slots of RAW_TXSLOT bytes
 * Everything is single-threaded and non-blocking after hraw_open. */
#ifndef RTVIO_CELL_HOSTILE_RAW_H
#define RTVIO_CELL_HOSTILE_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtq.h"
#include "vsock.h"

#define RAW_QSIZE 64u
#define RAW_BASE 0x100000000ull
#define RAW_RXBUF 4096u
#define RAW_RXBUF_OFF (64u << 10)
#define RAW_TXSLOT (VSOCK_HDR_SIZE + 61440u)
#define RAW_TXBUF_OFF (512u << 10)
#define RAW_REGION (RAW_TXBUF_OFF + RAW_QSIZE * RAW_TXSLOT)

struct hraw {
	int sock;		/* vhost-user socket; non-blocking after the handshake */
	int memfd;		/* kept open: SET_MEM_TABLE can be sent again */
	uint8_t *mem;
	struct vq_ring ring[2];
	struct vq_driver drv[2];
	struct vq_drv_slot slot[2][RAW_QSIZE];
	bool tx_busy[RAW_QSIZE];
	int kick[2], call[2];
	uint64_t cid;
	uint64_t protocol_features;
	uint32_t rx_len;	/* bytes per posted RX buffer */
	bool dead;		/* the broker closed the socket */
};

/* Connects to `path`, runs the vhost-user handshake and posts every RX buffer with
 * rx_len (1 .. RAW_RXBUF) bytes. 0 or -errno; on error everything is closed. */
int hraw_open(struct hraw *r, const char *path, uint32_t rx_len);
void hraw_close(struct hraw *r);

/* Puts one packet on TX: header h (h->len payload bytes follow, at most
 * RAW_TXSLOT - VSOCK_HDR_SIZE, filled with a pattern), publishes and kicks.
 * 0, or -EAGAIN when every TX slot is in flight. */
int hraw_send(struct hraw *r, const struct vsock_hdr *h);
/* Takes back the TX slots the broker used; returns how many. */
unsigned int hraw_reap_tx(struct hraw *r);
/* Takes one used RX buffer: 1 with its header in *h (a buffer shorter than a header
 * gives op VSOCK_OP_INVALID), 0 when none. repost: give the buffer back at once. */
int hraw_recv(struct hraw *r, struct vsock_hdr *h, bool repost);
/* Reads (and drops) whatever the broker sent on the vhost-user socket; notes EOF
 * in r->dead. Returns r->dead. */
bool hraw_check(struct hraw *r);
/* Waits up to timeout_ms for the broker to close the socket: true when it did. */
bool hraw_wait_eof(struct hraw *r, int timeout_ms);

#endif
