/* Outgoing flows: the local sender connects to the gateway cell on the flow's port
 * (as to any cell: the broker polices and schedules it), and every message it sends
 * becomes one DDS sample. SEQPACKET keeps its boundaries (a message longer than the
 * flow's cap is not carried at all); a STREAM is cut into its rtmsg records
 * (common/rtmsg.h: the length at offset 4), so that each sample is one whole record
 * and the far gateway can resume at a record boundary after a loss. */
#include <errno.h>
#include <stdio.h>

#include "gateway.h"
#include "gw_sample.h"
#include "rtmsg.h"

#define GW_STREAM_CHUNK (64u * 1024u)
#define GW_ACCEPT_MS 200

int gw_out_listen(struct gw_flow *f)
{
	struct rtvio_cell *c = f->gw->c;
	int id = rtvio_socket(c, f->f->type == RTVIO_STREAM ? RTVIO_SOCK_STREAM
							 : RTVIO_SOCK_SEQPACKET);

	if (id < 0)
		return id;
	int rc = rtvio_listen(c, id, f->f->to_port, 4);

	if (rc) {
		rtvio_close(c, id);
		return rc;
	}
	f->listen_id = id;
	return 0;
}

static void publish(void *arg, const uint8_t *m, size_t len)
{
	struct gw_flow *f = arg;
	dds_publication_matched_status_t pm;
	rtvio_gw_sample s = {
		.incarnation = f->incarnation,
		.seq = f->seq++,
		.check = gw_checksum(m, len),
		.data = { ._maximum = (uint32_t)len, ._length = (uint32_t)len,
			  ._buffer = (uint8_t *)m, ._release = false },
	};

	f->n.messages++;
	f->n.bytes += len;
	/* Nobody to receive it (the far gateway is down): it is lost, and said so. */
	if (dds_get_publication_matched_status(f->ent, &pm) == 0 && pm.current_count == 0)
		f->n.unmatched++;
	if (dds_write(f->ent, &s) < 0)
		f->n.write_errors++;
	else
		f->n.samples++;
}

/* Carries one connection until it ends; returns 0 or the error that ended it. */
static int carry(struct gw_flow *f, int id)
{
	struct rtvio_cell *c = f->gw->c;
	bool stream = f->f->type == RTVIO_STREAM;

	if (stream)
		wl_stream_init(&f->st, f->buf, f->cap);
	while (!atomic_load(&f->gw->stop)) {
		uint8_t *dst = stream ? f->chunk : f->buf;
		size_t len = stream ? GW_STREAM_CHUNK : f->cap;
		unsigned int got = 0;
		ssize_t n = rtvio_recv(c, id, dst, len, 0, &got, -1);

		if (n <= 0)
			return n == 0 ? 0 : (int)n;
		if (!stream && (got & GV_MSG_TRUNC)) {
			/* Longer than the flow's messages: only its first cap bytes
			 * arrived, and published they would pass every check at the
			 * far end. The message is not carried; the next one is. */
			f->n.rejected++;
		} else if (!stream) {
			publish(f, dst, (size_t)n);
		} else if (wl_stream_feed(&f->st, dst, (size_t)n, publish, f)) {
			/* Not rtmsg records: a stream cut anywhere else could not be
			 * resumed at the far end, so it is not carried at all. */
			f->n.corrupt++;
			return -EBADMSG;
		}
	}
	return -EINTR;
}

void *gw_out_main(void *arg)
{
	struct gw_flow *f = arg;
	struct rtvio_cell *c = f->gw->c;

	f->status = "ok";
	while (!atomic_load(&f->gw->stop)) {
		uint64_t cid;
		uint32_t port;
		int id = rtvio_accept(c, f->listen_id, &cid, &port, GW_ACCEPT_MS);

		if (id == -ETIMEDOUT || id == -EAGAIN)
			continue;
		if (id < 0) {
			f->status = id == -EINTR ? "ok" : rtvio_cell_error(c) ? "broker gone"
									   : "accept failed";
			break;
		}
		f->n.connections++;
		f->sock = id;
		int rc = carry(f, id);

		rtvio_close(c, id);
		/* No sender, no deadline to keep: unregistering the (only) instance
		 * stops DEADLINE accounting until the next message registers it. */
		rtvio_gw_sample none = { .incarnation = f->incarnation };

		dds_unregister_instance(f->ent, &none);
		f->sock = -1;
		if (rc == -EBADMSG)
			f->status = "stream not rtmsg-framed";
	}
	return NULL;
}
