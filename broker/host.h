/* Host endpoints: programs on the host join flows through Unix sockets, with the
 * convention of Firecracker and rust-vmm's vhost-device-vsock (docs/broker.md, "Host
 * endpoints"):
 *   - a cell connecting to CID 2 port P is joined to the Unix socket <uds_path>_P;
 *   - a host program connecting to <uds_path> and writing "CONNECT P\n" is joined to
 *     port P of the cell its flow names, and reads "OK <port>\n" first.
 *
 * The [host NAME] cell is a pseudo-cell inside the broker: gvsock (the same stack a
 * process cell runs) drives a pair of rings in broker memory, attached to the data
 * plane like any cell's, so switching, policing, scheduling, statistics and the
 * analysis apply to host flows unchanged. The bridge between each gvsock socket and
 * its Unix socket holds two bounded buffers; every Unix socket is non-blocking and
 * the credit the host side gives a cell is its gvsock receive buffer: a host program
 * that stops reading stalls its own connection only.
 *
 * Threading: everything runs in the broker's loop thread, between dp_run calls. */
#ifndef RTVIO_BROKER_HOST_H
#define RTVIO_BROKER_HOST_H

#include <stdbool.h>
#include <stddef.h>

struct dp;
struct host;
struct rtvio_config;

#include "model.h"

/* Bytes each bridge buffers per direction; also the most one host_step moves per
 * connection and direction. What one host_step does in all is bounded by the pass
 * budget of model_host_pass (bridges, bytes, system calls), which the analysis
 * charges with every batch gap (docs/analysis.md, "Host bridge"). */
#define HOST_BUF MODEL_HOST_BUF

/* Sets up the host endpoint of cell `cell` (cfg->cells[cell].host): its region and
 * stack, attached to `dp`; listening on uds_path; gvsock listeners on the ports of
 * the flows toward it. Returns 0 and *out, or -errno with one line in err. */
int host_open(const struct rtvio_config *cfg, unsigned int cell, struct dp *dp,
	      struct host **out, char *err, size_t errlen);

/* Detaches from the data plane, closes every socket, unlinks uds_path. NULL: no-op. */
void host_close(struct host *h);

/* After a run-time change of the configuration (rtvio flow add/remove): listens on
 * the ports of flows toward the host added since, and takes the pass budget of the
 * flows now configured (the one the admission's analysis charged). A flow toward
 * the host that is not a stream is not listened on (its connections are reset). */
void host_refresh(struct host *h);

/* An epoll descriptor that becomes readable when a Unix socket of the endpoint has
 * something to do; the loop then (and after every dp_run) calls host_step. */
int host_fd(const struct host *h);

/* Does the endpoint's pending work without blocking: the stack's rings, new
 * connections on both sides, and each bridge's bounded copies. Returns true when it
 * made progress (the loop should not sleep before calling dp_run and host_step
 * again). */
bool host_step(struct host *h);

/* When the endpoint's stack next times something out (a connect the cell does not
 * answer, a close it does not confirm), in rtvio_now_ns time; UINT64_MAX when
 * nothing: the loop sleeps no longer, so that host_step sees the timeout. */
uint64_t host_deadline(const struct host *h);

#endif
