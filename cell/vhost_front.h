/* The vhost-user front end of a process cell: the messages QEMU 7.2 sends to a
 * vhost-user-vsock back end (docs/qemu-vhost-user.md), sent over an already
 * connected Unix socket, so that the broker sees one kind of peer whether a cell is
 * a VM or a process.
 *
 * Sequence (one region, queues 0 = rx and 1 = tx):
 *   GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, SET_OWNER,
 *   GET_CONFIG (offset 0, size 8: our CID), SET_FEATURES,
 *   SET_MEM_TABLE (NEED_REPLY when REPLY_ACK was negotiated),
 *   per queue: SET_VRING_NUM, SET_VRING_BASE(0), SET_VRING_ADDR, SET_VRING_KICK,
 *              SET_VRING_CALL,
 *   SET_VRING_ENABLE(1) for each queue.
 * MQ is never acknowledged, so GET_QUEUE_NUM is not sent.
 *
 * This is start-up work: it blocks (bounded by a timeout) and is never on a
 * real-time path. For the timeout to bound a broker that stalls in the middle of a
 * reply too, give the socket SO_RCVTIMEO (or make it non-blocking). */
#ifndef RTVIO_GUEST_VHOST_FRONT_H
#define RTVIO_GUEST_VHOST_FRONT_H

#include <stddef.h>
#include <stdint.h>

#include "vhost_user_proto.h"

/* One virtqueue as the front end describes it. The ring addresses are our own
 * virtual addresses (QEMU sends its own too); the back end translates them through
 * the region's user_addr. */
struct vhost_front_queue {
	uint32_t num;
	uint64_t desc, avail, used;
	int kick_fd;	/* we write it after publishing buffers */
	int call_fd;	/* the back end writes it after using buffers */
};

struct vhost_front_result {
	uint64_t features;	   /* acknowledged virtio features */
	uint64_t protocol_features; /* acknowledged protocol features */
	uint64_t cid;		   /* from GET_CONFIG */
};

struct vhost_front_setup {
	int mem_fd;		/* the region's memfd */
	uint64_t mem_size;
	uint64_t guest_addr;	/* what descriptor addresses are based on */
	uint64_t user_addr;	/* our mmap of the region */
	uint64_t want_features;	/* virtio features we can use */
	uint64_t need_features;	/* ... of which the broker must offer these */
	struct vhost_front_queue q[VHU_VSOCK_QUEUES];
	int timeout_ms;		/* for each reply; <= 0 waits forever */
	/* Optional: called once the CID and the features are known and the memory
	 * table is accepted, before any ring is described (where QEMU's guest driver
	 * sets its rings up). A negative return aborts the handshake with it. */
	int (*before_rings)(void *arg, const struct vhost_front_result *r);
	void *arg;
};

/* Runs the whole sequence on `sock`. Returns 0, or:
 *   -ENOTSUP    the broker lacks a feature we need (need_features, PROTOCOL_FEATURES,
 *               PROTOCOL_F_CONFIG);
 *   -EPROTO     a reply that does not answer the request (wrong code, flags, size,
 *               echoed config window, a failed REPLY_ACK, a CID below 3);
 *   -ETIMEDOUT  no reply within timeout_ms;
 *   -ECONNRESET the broker closed the socket;
 *   other -errno from the socket. */
int vhost_front_handshake(int sock, const struct vhost_front_setup *s,
			  struct vhost_front_result *r);

/* Human-readable name of a request code, for messages and tests ("SET_MEM_TABLE"). */
const char *vhost_front_request_name(uint32_t request);

#endif
