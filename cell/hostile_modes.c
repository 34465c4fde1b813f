/* The hostile cell's misbehaviours: each a set-up after every attach and a
 * non-blocking step the main loop repeats as fast as it can (cmd_hostile.c). */
#include "hostile.h"
#include "vhost_user_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BIG_PAYLOAD 60000u	/* over-size SEQPACKET messages, one packet each */
#define CREDIT_EVERY (16u << 10)
#define SINK_BUF_ALLOC (1u << 20)
#define NOREAD_BUF_ALLOC (256u << 10)
#define FLOOD_BURST 64
#define ATTACH_ROUNDS_ALL 4000ul /* `all`: steps between a detach and re-attach */

static void nap_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

static void hdr_to(struct hostile *h, struct vsock_hdr *v, uint64_t cid, uint32_t port,
		   uint16_t type, uint16_t op)
{
	memset(v, 0, sizeof(*v));
	v->src_cid = h->r.cid;
	v->dst_cid = cid;
	v->src_port = h->next_port;
	v->dst_port = port;
	v->type = type;
	v->op = op;
	v->buf_alloc = SINK_BUF_ALLOC;
}

static int send_pkt(struct hostile *h, const struct vsock_hdr *v)
{
	int rc = hraw_send(&h->r, v);

	if (!rc)
		h->packets_sent++;
	return rc;
}

/* A reply on a connection: ports and CIDs swapped. */
static void reply(struct hostile *h, const struct vsock_hdr *in, uint16_t op, uint32_t fwd)
{
	struct vsock_hdr v;

	memset(&v, 0, sizeof(v));
	v.src_cid = h->r.cid;
	v.dst_cid = in->src_cid;
	v.src_port = in->dst_port;
	v.dst_port = in->src_port;
	v.type = in->type;
	v.op = op;
	v.buf_alloc = h->mode->keep_rx ? NOREAD_BUF_ALLOC : SINK_BUF_ALLOC;
	v.fwd_cnt = fwd;
	send_pkt(h, &v);
}

static struct hostile_conn *conn_of(struct hostile *h, const struct vsock_hdr *in)
{
	for (int i = 0; i < HOSTILE_MAX_CONNS; i++) {
		struct hostile_conn *c = &h->conn[i];

		if (c->open && c->peer_cid == in->src_cid && c->peer_port == in->src_port &&
		    c->port == in->dst_port)
			return c;
	}
	return NULL;
}

static void accept_conn(struct hostile *h, const struct vsock_hdr *in)
{
	for (int i = 0; i < HOSTILE_MAX_CONNS; i++) {
		struct hostile_conn *c = &h->conn[i];

		if (!c->open) {
			*c = (struct hostile_conn){ true, in->src_cid, in->src_port, in->dst_port,
						    in->type, 0, 0 };
			reply(h, in, VSOCK_OP_RESPONSE, 0);
			return;
		}
	}
	reply(h, in, VSOCK_OP_RST, 0);
}

/* Data on a connection the helper opened: consumed at once, credit granted every
 * CREDIT_EVERY bytes, unless the mode never reads. */
static void take_data(struct hostile *h, const struct vsock_hdr *in)
{
	struct hostile_conn *c = conn_of(h, in);

	if (!c)
		return;
	c->fwd_cnt += in->len;
	if (!h->mode->keep_rx && c->fwd_cnt - c->announced >= CREDIT_EVERY) {
		c->announced = c->fwd_cnt;
		reply(h, in, VSOCK_OP_CREDIT_UPDATE, c->fwd_cnt);
	}
}

static void one_packet(struct hostile *h, const struct vsock_hdr *in)
{
	struct hostile_conn *c;

	switch (in->op) {
	case VSOCK_OP_REQUEST:
		if (in->dst_port == HOSTILE_SINK_PORT)
			accept_conn(h, in);
		break;
	case VSOCK_OP_RW:
		take_data(h, in);
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		c = conn_of(h, in);
		if (c && !h->mode->keep_rx)
			reply(h, in, VSOCK_OP_CREDIT_UPDATE, c->fwd_cnt);
		break;
	case VSOCK_OP_SHUTDOWN:
	case VSOCK_OP_RST:
		c = conn_of(h, in);
		if (c)
			c->open = false;
		if (in->op == VSOCK_OP_SHUTDOWN)
			reply(h, in, VSOCK_OP_RST, 0);
		if (in->dst_port == h->big_port)
			h->big_open = h->big_asked = false;
		break;
	case VSOCK_OP_RESPONSE:
		if (in->dst_port == h->big_port && h->big_asked)
			h->big_open = true;
		break;
	default:
		break;
	}
}

void hostile_rx(struct hostile *h)
{
	struct vsock_hdr in;

	hraw_reap_tx(&h->r);
	while (hraw_recv(&h->r, &in, !h->mode->keep_rx) == 1) {
		h->packets_received++;
		one_packet(h, &in);
	}
}

/* ---- (a) callfd: O_NONBLOCK cleared on the call eventfds, counters near full ---- */

static void callfd_setup(struct hostile *h)
{
	const uint64_t max = 0xfffffffffffffffeull;

	/* The broker sets O_NONBLOCK on each call eventfd as it takes it (the file is
	 * shared): wait for that, so that clearing it is not undone. */
	for (int q = 0, waited = 0; q < 2 && waited < 2000 && !hostile_stop; waited++) {
		if (fcntl(h->r.call[q], F_GETFL) & O_NONBLOCK)
			q++;
		else
			nap_us(1000);
	}
	for (int q = 0; q < 2; q++) {
		int fl = fcntl(h->r.call[q], F_GETFL);

		if (fl >= 0 && fcntl(h->r.call[q], F_SETFL, fl & ~O_NONBLOCK) == 0 &&
		    write(h->r.call[q], &max, sizeof(max)) != (ssize_t)sizeof(max)) {
			/* Already full: the broker notified meanwhile. */
		}
	}
}

/* Denied REQUESTs: every answer is an RST, and with it a notification. */
static void callfd_step(struct hostile *h)
{
	struct vsock_hdr v;

	hdr_to(h, &v, h->victim_cid, h->victim_port, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST);
	h->next_port++;
	if (send_pkt(h, &v) == -EAGAIN)
		sched_yield();
}

/* ---- (b) repost: packets the broker drops at once, sent again as they come back -- */

static void repost_step(struct hostile *h)
{
	struct vsock_hdr v;
	int n = 0;

	/* RW on no connection: dropped at ingest, answered with an RST. */
	hdr_to(h, &v, h->victim_cid, h->victim_port, VSOCK_TYPE_STREAM, VSOCK_OP_RW);
	v.len = 64;
	while (send_pkt(h, &v) == 0)
		n++;
	if (!n)
		sched_yield();
}

/* ---- (c) storm: REQUEST / RST / CREDIT_REQUEST / SHUTDOWN at full speed -------- */

static void storm_step(struct hostile *h)
{
	static const uint16_t ops[] = { VSOCK_OP_REQUEST, VSOCK_OP_RST, VSOCK_OP_CREDIT_REQUEST,
					VSOCK_OP_SHUTDOWN };
	struct vsock_hdr v;
	int n = 0;

	for (;;) {
		hdr_to(h, &v, h->victim_cid, h->victim_port,
		       h->steps & 1 ? VSOCK_TYPE_SEQPACKET : VSOCK_TYPE_STREAM,
		       ops[h->packets_sent % 4]);
		if (v.op == VSOCK_OP_SHUTDOWN)
			v.flags = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
		if (send_pkt(h, &v))
			break;
		h->next_port = (uint16_t)(2000 + (h->next_port + 1) % 1000);
		n++;
	}
	if (!n)
		sched_yield();
}

/* ---- (d) tinyrx, (e) noread: the helper's stream does the work; we only answer -- */

static void idle_step(struct hostile *h)
{
	(void)h;
	nap_us(200);
}

/* ---- (f) vhuflood: requests on the vhost-user socket, replies never read -------- */

static void vhuflood_setup(struct hostile *h)
{
	h->sock_unread = true;
}

static void vhuflood_step(struct hostile *h)
{
	struct vhu_msg m;
	int rc = 0;

	vhu_msg_init(&m, VHU_GET_FEATURES, 0);
	for (int i = 0; i < FLOOD_BURST && !rc; i++) {
		rc = vhu_send_flags(h->r.sock, &m, NULL, 0, MSG_DONTWAIT);
		if (!rc)
			h->vhu_sent++;
	}
	if (rc == -EAGAIN)
		nap_us(100);
	else if (rc)
		h->r.dead = true;
}

/* ---- (g) memtable: SET_MEM_TABLE again and again ------------------------------- */

static void memtable_step(struct hostile *h)
{
	bool ack = h->r.protocol_features & (1ull << VHU_PROTOCOL_F_REPLY_ACK);
	struct vhu_msg m;
	int rc;

	vhu_msg_init(&m, VHU_SET_MEM_TABLE,
		     (uint32_t)offsetof(struct vhu_mem_table, regions) +
			     (uint32_t)sizeof(struct vhu_mem_region));
	if (ack)
		m.hdr.flags |= VHU_FLAG_NEED_REPLY;
	memset(&m.p.mem, 0, sizeof(m.p.mem));
	m.p.mem.nregions = 1;
	m.p.mem.regions[0].guest_addr = RAW_BASE;
	m.p.mem.regions[0].size = RAW_REGION;
	m.p.mem.regions[0].user_addr = (uint64_t)(uintptr_t)h->r.mem;
	rc = vhu_send_flags(h->r.sock, &m, &h->r.memfd, 1, MSG_DONTWAIT);
	if (!rc) {
		h->memtables++;
		h->vhu_sent++;
	} else if (rc == -EAGAIN) {
		nap_us(100);
	} else {
		h->r.dead = true;
	}
	/* Traffic on top, so that the broker remaps under live rings. */
	repost_step(h);
}

/* ---- (i) punch: holes into its own memory, under the broker's mappings --------- */

/* Every page of the region, one fallocate(PUNCH_HOLE) each, then madvise(MADV_REMOVE)
 * over all of it: on a file the broker could not seal, each would take the pages
 * out of the broker's mapping too, and its next touch of them would fault. The
 * broker seals a process cell's memory (F_SEAL_FUTURE_WRITE), so each fails with
 * EPERM; a punch that succeeds is counted (and wrecks our own rings). */
static void punch_one(struct hostile *h, int rc)
{
	if (rc == 0)
		h->punched++;
	else if (errno == EPERM)
		h->punch_refused++;
}

static void punch_step(struct hostile *h)
{
	const size_t page = 4096;

	for (size_t off = 0; off < RAW_REGION && !hostile_stop; off += page)
		punch_one(h, fallocate(h->r.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				       (off_t)off, (off_t)page));
	punch_one(h, madvise(h->r.mem, RAW_REGION, MADV_REMOVE));
	/* Traffic on top, so that the broker touches the memory it would lose. */
	repost_step(h);
}

/* ---- (h) attach: attach and detach in a loop ----------------------------------- */

static void attach_step(struct hostile *h)
{
	hraw_close(&h->r);
	h->attached = false;
	h->detached++;
}

/* ---- (i) oversize: SEQPACKET messages far over the flow's declared size -------- */

static void oversize_step(struct hostile *h)
{
	struct vsock_hdr v;
	int n = 0;

	if (!h->helper_cid)
		return;
	if (!h->big_asked) {
		h->big_port = 3000u + (uint32_t)(h->attaches % 1000);
		hdr_to(h, &v, h->helper_cid, HOSTILE_BIG_PORT, VSOCK_TYPE_SEQPACKET,
		       VSOCK_OP_REQUEST);
		v.src_port = h->big_port;
		if (send_pkt(h, &v) == 0)
			h->big_asked = true;
		return;
	}
	if (!h->big_open) {
		sched_yield();
		return;
	}
	/* Credit is ignored: the broker holds what the helper has no room for. */
	hdr_to(h, &v, h->helper_cid, HOSTILE_BIG_PORT, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RW);
	v.src_port = h->big_port;
	v.len = BIG_PAYLOAD;
	v.flags = VSOCK_SEQ_EOM | VSOCK_SEQ_EOR;
	while (n < 4 && send_pkt(h, &v) == 0)
		n++;
	if (!n)
		sched_yield();
}

static void oversize_setup(struct hostile *h)
{
	h->big_open = h->big_asked = false;
}

/* ---- all: every one of them on one attachment, as far as they combine ----------- */

static void all_setup(struct hostile *h)
{
	oversize_setup(h);
	/* A poisoned call eventfd gets the cell cut off at once: one attach in four,
	 * so that the others get time too. */
	if (h->attaches % 4 == 2)
		callfd_setup(h);
}

static void all_step(struct hostile *h)
{
	switch (h->steps % 4) {
	case 0: storm_step(h); break;
	case 1: repost_step(h); break;
	case 2: oversize_step(h); break;
	default: callfd_step(h); break;
	}
	if (h->steps % 16 == 0) {
		h->sock_unread = true;	/* replies pile up between two reads */
		vhuflood_step(h);
	}
	if (h->steps % 64 == 0) {
		memtable_step(h);
		h->sock_unread = false;	/* this round reads what piled up */
	}
	if (h->steps % 64 == 32)
		punch_step(h);
	if (h->steps % ATTACH_ROUNDS_ALL == ATTACH_ROUNDS_ALL - 1)
		attach_step(h);
}

const struct hostile_mode hostile_modes[] = {
	{ "callfd", "clears O_NONBLOCK on its call eventfds, fills them, provokes notifications",
	  0, false, false, callfd_setup, callfd_step },
	{ "repost", "reposts packets the broker drops at once (RW on no connection)",
	  0, false, false, NULL, repost_step },
	{ "storm", "REQUEST / RST / CREDIT_REQUEST / SHUTDOWN at a victim, full speed",
	  0, false, false, NULL, storm_step },
	{ "tinyrx", "RX buffers with room for one payload byte; the helper streams to it",
	  VSOCK_HDR_SIZE + 1, true, false, NULL, idle_step },
	{ "rx1", "RX buffers one byte long: no room even for a header; the helper streams to it",
	  1, true, false, NULL, idle_step },
	{ "noread", "accepts the helper's stream, never reads nor grants credit",
	  0, true, true, NULL, idle_step },
	{ "vhuflood", "floods its vhost-user socket with requests, never reads the replies",
	  0, false, false, vhuflood_setup, vhuflood_step },
	{ "memtable", "sends SET_MEM_TABLE in a loop under live traffic",
	  0, false, false, NULL, memtable_step },
	{ "attach", "attaches and detaches in a loop",
	  0, false, false, NULL, attach_step },
	{ "punch", "punches holes into every page of its memory (fallocate, MADV_REMOVE)",
	  0, false, false, NULL, punch_step },
	{ "oversize", "SEQPACKET messages of 60000 bytes on a flow declared 64, credit ignored",
	  0, true, false, oversize_setup, oversize_step },
	{ "all", "storm, repost, oversize, callfd, vhuflood, memtable, punch, tinyrx, attach "
		 "together",
	  0, true, false, all_setup, all_step },
};
const unsigned int hostile_nmodes = sizeof(hostile_modes) / sizeof(hostile_modes[0]);
