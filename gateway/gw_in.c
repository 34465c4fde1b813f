/* Incoming flows: samples taken from the flow's topic are checked (checksum, then
 * numbering within the publisher's incarnation) and the intact, new ones delivered
 * in order to the destination cell, through the broker, as one message (SEQPACKET)
 * or one record of the stream (STREAM). A connection the destination reset is
 * opened again at the next sample, which starts a record. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "gw_sample.h"

#define GW_TAKE 16
#define GW_WAIT DDS_MSECS(200)
#define GW_CONNECT_MS 1000

static int open_dst(struct gw_flow *f)
{
	struct gw *g = f->gw;
	const struct rtvio_flow_cfg *fl = f->f;
	int id = rtvio_socket(g->c, fl->type == RTVIO_STREAM ? RTVIO_SOCK_STREAM
							: RTVIO_SOCK_SEQPACKET);

	if (id < 0)
		return id;
	int rc = rtvio_connect(g->c, id, g->cfg.cells[fl->to].cid, fl->to_port, GW_CONNECT_MS);

	if (rc) {
		rtvio_close(g->c, id);
		return rc;
	}
	f->n.connections++;
	f->sock = id;
	return 0;
}

static void deliver(struct gw_flow *f, const uint8_t *m, size_t len)
{
	struct rtvio_cell *c = f->gw->c;
	unsigned flags = f->f->type == RTVIO_SEQPACKET ? RTVIO_MSG_EOR : 0;

	if (f->sock < 0 && open_dst(f)) {
		f->n.undelivered++;
		return;
	}
	ssize_t n = rtvio_send(c, f->sock, m, len, flags, -1);

	if (n == (ssize_t)len) {
		f->n.messages++;
		f->n.bytes += len;
		return;
	}
	/* Reset (the destination went away) or stopped: a partly written record
	 * ends this connection, so the next one starts at a boundary. */
	f->n.undelivered++;
	rtvio_close(c, f->sock);
	f->sock = -1;
}

/* Is this sample new and next? Counts what it is not. */
static bool in_order(struct gw_flow *f, const rtvio_gw_sample *s)
{
	if (!f->following || s->incarnation != f->incarnation) {
		/* A new publisher (the far gateway started again): its numbering is
		 * new, and what was lost in between is for the receiver to count. */
		f->following = true;
		f->incarnation = s->incarnation;
		f->n.incarnations++;
	} else if (s->seq < f->seq) {
		f->n.duplicates++;
		return false;
	} else if (s->seq > f->seq) {
		f->n.missing += s->seq - f->seq;
	}
	f->seq = s->seq + 1;
	return true;
}

static void take_all(struct gw_flow *f)
{
	void *samples[GW_TAKE] = { NULL };
	dds_sample_info_t info[GW_TAKE];
	int n = dds_take(f->ent, samples, info, GW_TAKE, GW_TAKE);

	for (int i = 0; i < n; i++) {
		const rtvio_gw_sample *s = samples[i];

		if (!info[i].valid_data)
			continue;
		f->n.samples++;
		if (gw_checksum(s->data._buffer, s->data._length) != s->check) {
			f->n.corrupt++;
			continue;
		}
		if (in_order(f, s))
			deliver(f, s->data._buffer, s->data._length);
	}
	if (n > 0)
		dds_return_loan(f->ent, samples, n);
}

void *gw_in_main(void *arg)
{
	struct gw_flow *f = arg;
	dds_entity_t ws = dds_create_waitset(f->gw->pp);
	dds_entity_t cond = dds_create_readcondition(f->ent, DDS_ANY_STATE);

	f->status = "ok";
	if (ws < 0 || cond < 0 || dds_waitset_attach(ws, cond, 0) < 0) {
		f->status = "DDS waitset failed";
		return NULL;
	}
	while (!atomic_load(&f->gw->stop)) {
		if (dds_waitset_wait(ws, NULL, 0, GW_WAIT) > 0)
			take_all(f);
	}
	if (f->sock >= 0)
		rtvio_close(f->gw->c, f->sock);
	f->sock = -1;
	dds_delete(ws);
	return NULL;
}
