/* The broker's vhost-user-vsock back end for one cell (QEMU docs/interop/vhost-user.rst,
 * docs/qemu-vhost-user.md): negotiation, the front end's memory table, vring set-up,
 * kick/call/err descriptors, GET_CONFIG (the cell's CID) and the ring start/stop
 * rules. It owns no event loop: the daemon calls vhu_backend_service() when the socket
 * is readable and learns about ring state and kick descriptors through callbacks.
 *
 * Everything the front end sends is untrusted: sizes, counts, indices, addresses and
 * descriptor counts are checked before use, and so is the kind of every descriptor
 * (shared memory for the memory table, eventfds for kick, call and err); every
 * descriptor that is not kept is closed, and a message that fails a check changes
 * nothing (it is answered with an error ack when the front end asked for one). Only
 * framing errors (bad version, oversized payload, too many descriptors) end the
 * connection, since the byte stream cannot be trusted after them.
 *
 * All of this is start-up and teardown work (mmap, close); the daemon runs it in its
 * one thread between data-path steps, never inside one, and at most a cell's declared
 * vhost-user budget of it per period (vhu_backend_service_allow; a memory table has at
 * most VHU_MAX_REGIONS regions, so one change is at most that many mmap calls). The
 * loop never unmaps cell memory: the memory thread does, in pieces (populate.h). */
#ifndef RTVIO_BROKER_VHOST_USER_H
#define RTVIO_BROKER_VHOST_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>

#include "evsig.h"
#include "populate.h"
#include "vhost_user_proto.h"

/* Ring sizes and regions bigger than this are refused (a 256 GiB guest is far
 * beyond what rtvio runs; the bound keeps every sum below 2^64). */
#define VHU_MAX_REGION_SIZE (1ull << 38)

/* One region of the front end's memory table, mapped into the broker. */
struct vhu_region {
	uint64_t guest_addr;  /* front end: base of descriptor addresses */
	uint64_t size;        /* front end */
	uint64_t user_addr;   /* front end: its own mapping (SET_VRING_ADDR is in these) */
	uint64_t mmap_offset; /* front end */
	uint8_t *host;        /* broker: where guest_addr is mapped here */
	struct vhu_map *map;  /* broker: the mapping it lies in (populate.h) */
};

/* One of the back end's queues (0 = rx, 1 = tx). */
struct vhu_ring {
	uint32_t num;              /* SET_VRING_NUM; 0 = not set */
	uint16_t base;             /* SET_VRING_BASE; the last avail index after a stop */
	bool addr_set;
	struct vhu_vring_addr addr; /* SET_VRING_ADDR as received (front-end addresses) */
	/* Host addresses of the three rings: valid while the back end is running. */
	void *desc, *avail, *used;
	int kick_fd;               /* -1: none (kick_nofd: the broker must poll) */
	bool kick_nofd;
	int call_fd;               /* -1: none or "do not notify" */
	int err_fd;                /* -1: none */
	bool started;              /* SET_VRING_KICK seen, not stopped since */
	bool enabled;              /* SET_VRING_ENABLE(1), or implied without PROTOCOL_FEATURES */
};

struct vhu_backend;

struct vhu_dev_ops {
	/* Both rings are started and enabled and lie in the current memory table (their
	 * host addresses are in ring[].desc/avail/used). Return 0 when the device is
	 * running (the cell is attached to the data plane), or -errno to stay stopped. */
	int (*start)(void *ctx, struct vhu_backend *b);
	/* Stop touching the rings and the memory now (detach from the data plane) and
	 * store each ring's next avail index in ring[].base. Called only while running. */
	void (*stop)(void *ctx, struct vhu_backend *b);
	/* Optional. The kick descriptor of `queue` becomes `fd` (-1: none). Called while
	 * the old one (ring[queue].kick_fd) is still open: whoever watches it must stop
	 * now, since the front end keeps its own copy of the same file after the back end
	 * closes this one (epoll would keep reporting it). */
	void (*kick)(void *ctx, struct vhu_backend *b, unsigned int queue, int fd);
};

struct vhu_backend {
	const char *name;           /* the cell's name, for messages */
	uint64_t cid;               /* answered to GET_CONFIG */
	const struct vhu_dev_ops *ops;
	void *ctx;
	bool verbose;
	/* broker: signals the error eventfds (evsig.h), so that no write(2) can block
	 * on them; NULL (tests of the back end alone): plain non-blocking write. */
	struct evsig *evsig;

	int sock;                   /* -1 when no front end is connected */
	struct vhu_reader rd;
	bool owner;
	bool features_set;
	uint64_t features;          /* acknowledged by SET_FEATURES */
	uint64_t protocol_features; /* acknowledged by SET_PROTOCOL_FEATURES */
	unsigned int nregions;
	struct vhu_region regions[VHU_MAX_REGIONS];
	struct vhu_ring ring[VHU_VSOCK_QUEUES];
	bool running;               /* ops->start succeeded and no stop since */
	uint64_t unknown_logged;    /* request codes < 64 already logged as unknown */
	unsigned int messages;      /* handled on this connection (for tests and logs) */
	int last_error;             /* -errno of the last refused message, 0 if none */
	/* broker: a process cell's memory. Each file is mapped once, whole, and sealed
	 * (F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE) so that the cell can neither shrink it
	 * nor punch holes into it; a file that cannot take the seals is refused. Clear
	 * (`vm = yes`, tests): each region is mapped on its own and nothing is sealed. */
	bool seal;
	/* broker: the memory thread (populate.h); NULL: nothing is populated and a
	 * mapping counts as ready at once and is unmapped in place (tests of the back
	 * end alone). */
	struct vhu_pop *pop;
	/* Mapping slots: VHU_MAX_MAPS from pop (vhu_pop_slots), or own_maps without. */
	struct vhu_map *maps;
	struct vhu_map own_maps[VHU_MAX_MAPS];
	/* The device waits for its table's populate (maybe_start); the daemon calls
	 * vhu_backend_populated when the populate thread reports a finished job. */
	bool pop_wait;
	/* broker: the largest memory table (sum of the region sizes) accepted, and the
	 * configuration key it comes from (for the message); 0 = no limit but
	 * VHU_MAX_REGION_SIZE per region. */
	uint64_t max_mem;
	const char *max_mem_key;
	/* Set by the SIGBUS guard when an access to this front end's memory hit a page
	 * its file no longer has (the cell truncated it); the daemon cuts it off. It
	 * stays set until the memory is unmapped (vhu_backend_disconnect): nothing may
	 * touch that memory again, and the device does not start again. */
	volatile sig_atomic_t faulted;
	/* Rate limit of the lines a front end can provoke (vhu_log); kept across
	 * connections, so that a reconnect loop cannot flood the log either. */
	uint64_t log_window_ns;
	unsigned int log_lines;
	uint64_t log_suppressed;
};

/* At most VHU_LOG_BURST lines per cell in VHU_LOG_WINDOW_NS (unless verbose); the
 * lines left out are counted and the count is printed before the next line. */
#define VHU_LOG_BURST 8u
#define VHU_LOG_WINDOW_NS (10ull * 1000000000ull)

/* One line on stderr, "rtvio broker: cell NAME: ...", under b's rate limit. */
void vhu_log(struct vhu_backend *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same, only for a verbose back end. */
#define VHU_VLOG(b, ...)                                                                 \
	do {                                                                             \
		if ((b)->verbose)                                                        \
			vhu_log(b, __VA_ARGS__);                                         \
	} while (0)

/* Prepares an idle back end (no connection). `name` must outlive it. */
void vhu_backend_init(struct vhu_backend *b, const char *name, uint64_t cid,
		      const struct vhu_dev_ops *ops, void *ctx);

/* A front end connected: `sock` (made non-blocking here) now belongs to b. */
void vhu_backend_connect(struct vhu_backend *b, int sock);

/* Handles the messages waiting on the socket, at most `budget` of them (so that a
 * flooding front end cannot starve the data path; the socket stays readable).
 * Returns 0 while the connection is healthy, or a negative errno when it must be
 * dropped (-ECONNRESET end of file, framing error, send failure); the caller then
 * calls vhu_backend_disconnect(). */
int vhu_backend_service(struct vhu_backend *b, unsigned int budget);

/* What a front end may still have handled now (the daemon's per-cell vhost-user
 * budget, docs/broker.md): messages of any kind, and of them the heavy ones
 * (vhu_msg_heavy). */
struct vhu_allow {
	unsigned int msgs;
	unsigned int maps;
};

/* Is m heavy for b: does handling it map or release memory (SET_MEM_TABLE, RESET_OWNER:
 * up to VHU_MAX_REGIONS mmap calls, and mappings handed to the memory thread), or stop the running device (and so
 * detach it from the data plane, to start again later)? */
bool vhu_msg_heavy(const struct vhu_backend *b, const struct vhu_msg *m);

/* vhu_backend_service within *left, which it decrements per message handled. Returns
 * 1 when the allowance ran out first with a message waiting (read, kept unhandled, and
 * handled first by the next call),
 * 0 when the socket has nothing more for now, or a negative errno as
 * vhu_backend_service. */
int vhu_backend_service_allow(struct vhu_backend *b, struct vhu_allow *left);

/* Handles one received message whose descriptors are fds[0..nfds) (each is either
 * kept or closed). Returns 0 if the message was accepted, -errno if it was refused
 * (the connection stays), or -EPIPE/-ECONNRESET style errors from sending a reply
 * (the connection must be dropped): see vhu_backend_service. Exposed for tests. */
int vhu_backend_handle(struct vhu_backend *b, const struct vhu_msg *m, int *fds,
		       unsigned int nfds, bool *fatal);

/* The front end is gone (or must go): stop the device if running, unmap the memory,
 * close every descriptor and the socket, forget the negotiation. The back end is idle
 * again and accepts the next connection. */
void vhu_backend_disconnect(struct vhu_backend *b);

/* The memory thread finished a job or a wanted granule: start the device if what it
 * waits for is now in, cut the cell off (log, `faulted`) if its memory could not be
 * faulted in. Cheap when nothing changed. */
void vhu_backend_populated(struct vhu_backend *b);

/* The current table as the data plane sees it, mem[0..nregions): a VM's regions carry
 * their mappings' ready maps (which granules the memory thread has faulted in), a
 * process cell's none (its device starts only once all of it is in). */
void vhu_backend_mem(const struct vhu_backend *b, struct vq_mem_region *mem);

/* The data plane found a ring broken: tell the front end through the ring's error
 * eventfd, if it gave one. */
void vhu_backend_signal_err(struct vhu_backend *b, unsigned int queue);

/* Front-end virtual address -> broker pointer, when [uva, uva + len) lies inside one
 * region; NULL otherwise. */
void *vhu_backend_uva_to_host(const struct vhu_backend *b, uint64_t uva, uint64_t len);
/* Guest address -> broker pointer, likewise. */
void *vhu_backend_gpa_to_host(const struct vhu_backend *b, uint64_t gpa, uint64_t len);

const char *vhu_request_name(uint32_t request);

/* ---- SIGBUS guard ------------------------------------------------------------------
 * A cell owns the file behind its memory. If it shrinks the file (a `vm = yes`
 * cell's, which is not sealed), the broker's next access to the lost pages raises SIGBUS.
 * The guard catches that for addresses inside a mapped front-end region, maps a
 * private zero page over the faulting page so the access completes harmlessly, marks
 * that back end `faulted` and sets vhu_fault_pending; the daemon then cuts the cell
 * off like one that broke its ring rules. Faults anywhere else keep their default
 * action. Regions are registered while mapped (at most VHU_GUARD_SLOTS at once). */
#define VHU_GUARD_SLOTS 4096
extern volatile sig_atomic_t vhu_fault_pending;
/* Installs the handler (idempotent). Returns 0 or -errno. */
int vhu_sigbus_install(void);

#endif
