/* Incoming flows: samples taken from the flow's topic are checked (checksum, that
 * the data is one message of the flow, then numbering within the publisher's
 * incarnation) and the intact, new ones delivered in order to the destination cell,
 * through the broker, as one message (SEQPACKET) or one record of the stream
 * (STREAM). A connection the destination reset is opened again at the next sample,
 * which starts a record. Samples come from the network: nothing in one is trusted
 * to be what the far gateway sent, and none may end a good connection or stop the
 * real publisher's samples from being followed for long. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "gw_sample.h"
#include "rtmsg.h"

#define GW_TAKE 16
#define GW_WAIT DDS_MSECS(200)
#define GW_CONNECT_MS 1000
/* How many numbers a sample may skip and still be followed. Numbers are skipped by
 * samples lost on the way: replaced in a KEEP_LAST history of GW_HISTORY while this
 * reader lagged, or written while no reader was matched. Eight histories cover a
 * reader that lags well behind; a sample further ahead is not taken at its word,
 * since one forged number (2^64 - 2, say) would otherwise make every later real
 * sample a duplicate. Longer real gaps are recovered by GW_RESYNC. */
#define GW_SEQ_WINDOW (8u * GW_HISTORY)
/* Samples that do not fit the numbering followed (an older incarnation, or too far
 * ahead) but follow one another, within GW_SEQ_WINDOW, with no sample accepted in
 * between: after this many they are followed after all. That is the far gateway
 * itself after a gap longer than the window (a network partition) or after a restart
 * whose clock went back; a lone stray, forged or replayed sample is only dropped,
 * and so are strangers interleaved with a publisher that is still heard. */
#define GW_RESYNC 4u

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
	if (n == -EMSGSIZE) {
		/* Above what the connection takes (rtvio_max_message): nothing was
		 * written, so the connection is still at a boundary and stays. */
		f->n.undelivered++;
		return;
	}
	/* Reset (the destination went away) or stopped: a partly written record
	 * ends this connection, so the next one starts at a boundary. */
	f->n.undelivered++;
	rtvio_close(c, f->sock);
	f->sock = -1;
}

/* Is the data one message of this flow? SEQPACKET: 1 to cap bytes (an empty
 * message cannot be sent, and a longer one the destination may not take: its
 * -EMSGSIZE is no reason to end the connection). STREAM: exactly one whole rtmsg
 * record, as gw_out cuts them, so that every sample starts and ends a record and
 * the receiver is never handed half of one (the framing is all that is read: the
 * record's own checksum is the receiving cell's to check). */
static bool fits_flow(const struct gw_flow *f, const uint8_t *m, size_t len)
{
	if (len == 0 || len > f->cap)
		return false;
	if (f->f->type != RTVIO_STREAM)
		return true;
	return len >= RTMSG_HDR && rtmsg_get32(m) == RTMSG_MAGIC && rtmsg_get32(m + 4) == len;
}

/* From s on, s's incarnation and numbering are the ones followed. */
static void follow(struct gw_flow *f, const rtvio_gw_sample *s)
{
	if (!f->following || s->incarnation != f->incarnation)
		f->n.incarnations++;
	f->following = true;
	f->incarnation = s->incarnation;
	f->seq = s->seq + 1;
	f->run = 0;
}

/* A sample that does not fit the numbering followed: dropped and counted, unless it
 * is the GW_RESYNC-th of such samples in order (see there). What a resync skips is
 * not counted missing: the numbers were not checked, so neither is their distance. */
static bool out_of_line(struct gw_flow *f, const rtvio_gw_sample *s)
{
	bool next = f->run && s->incarnation == f->run_inc && s->seq > f->run_seq &&
		    s->seq - f->run_seq <= GW_SEQ_WINDOW;

	f->run = next ? f->run + 1 : 1;
	f->run_inc = s->incarnation;
	f->run_seq = s->seq;
	if (f->run < GW_RESYNC) {
		f->n.rejected++;
		return false;
	}
	follow(f, s);
	return true;
}

/* Is this sample new and next? Counts what it is not. Incarnations grow with the
 * publishing gateway's start time (cmd_gateway.c): only a newer one starts a new
 * numbering, so a replay of an older one is not delivered again. */
static bool in_order(struct gw_flow *f, const rtvio_gw_sample *s)
{
	if (!f->following || s->incarnation > f->incarnation) {
		/* A new publisher (the far gateway started again): its numbering is
		 * new, and what was lost in between is for the receiver to count. */
		follow(f, s);
		return true;
	}
	if (s->incarnation < f->incarnation)
		return out_of_line(f, s);
	if (s->seq < f->seq) {
		f->n.duplicates++;
		return false;
	}
	if (s->seq - f->seq > GW_SEQ_WINDOW)
		return out_of_line(f, s);
	f->n.missing += s->seq - f->seq;
	follow(f, s);
	return true;
}

/* Should s be delivered? Counts the sample and whatever is wrong with it. */
static bool check(struct gw_flow *f, const rtvio_gw_sample *s)
{
	f->n.samples++;
	if (gw_checksum(s->data._buffer, s->data._length) != s->check) {
		f->n.corrupt++;
		return false;
	}
	/* Before the numbering: a sample that is no message of the flow must not
	 * move it either. */
	if (!fits_flow(f, s->data._buffer, s->data._length)) {
		f->n.rejected++;
		return false;
	}
	return in_order(f, s);
}

static void take_all(struct gw_flow *f)
{
	void *samples[GW_TAKE] = { NULL };
	dds_sample_info_t info[GW_TAKE];
	int n = dds_take(f->ent, samples, info, GW_TAKE, GW_TAKE);

	for (int i = 0; i < n; i++) {
		const rtvio_gw_sample *s = samples[i];

		if (info[i].valid_data && check(f, s))
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
