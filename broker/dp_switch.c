/* Connection switching: CID and flow lookups, the connection table (the vsock state
 * of each connection the broker let through), and the RSTs the broker answers with or
 * sends when a cell goes away. Every lookup is O(1) per packet: open-addressed hashes
 * for CIDs and flows, a chained hash for connections. A connection the broker ends
 * (a detach, a flow removed) keeps its entry until each live end has been told: the
 * RSTs are made from the entry into the entry's own two packet slots, so none is
 * ever short of a slot, and the entry is freed when the last is delivered or dropped
 * (dp_conn_told). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "dp_internal.h"

static uint32_t hash32(uint64_t a, uint64_t b)
{
	uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (uint32_t)h;
}

static int cell_by_cid(const struct dp *dp, uint64_t cid)
{
	uint32_t mask = dp->cid_hash_size - 1;

	if (cid > UINT32_MAX)
		return -1;
	for (uint32_t i = hash32(cid, 0) & mask;; i = (i + 1) & mask) {
		int32_t c = dp->cid_hash[i];

		if (c < 0)
			return -1;
		if (dp->cells[c].cid == cid)
			return c;
	}
}

static uint64_t flow_key_hi(uint32_t from, uint32_t from_port)
{
	return (uint64_t)from << 32 | from_port;
}

static uint64_t flow_key_lo(uint32_t to, uint32_t to_port)
{
	return (uint64_t)to << 32 | to_port;
}

/* The vsock type a flow's connections carry. */
static uint16_t flow_vsock_type(const struct rtvio_flow_cfg *fc)
{
	return fc->type == RTVIO_SEQPACKET ? VSOCK_TYPE_SEQPACKET : VSOCK_TYPE_STREAM;
}

/* The flow declared for exactly from:from_port -> to:to_port with sockets of `type`,
 * or -1. A port may carry a STREAM flow and a SEQPACKET flow, as vsock allows. */
static int flow_find_exact(const struct dp *dp, uint32_t from, uint32_t from_port, uint32_t to,
			   uint32_t to_port, uint16_t type)
{
	uint32_t mask = dp->flow_hash_size - 1;
	uint64_t hi = flow_key_hi(from, from_port), lo = flow_key_lo(to, to_port);

	for (uint32_t i = hash32(hi, lo) & mask;; i = (i + 1) & mask) {
		int32_t f = dp->flow_hash[i];
		const struct rtvio_flow_cfg *fc;

		if (f < 0)
			return -1;
		fc = &dp->cfg->flows[f];
		if ((uint32_t)fc->from == from && fc->from_port == from_port &&
		    (uint32_t)fc->to == to && fc->to_port == to_port &&
		    flow_vsock_type(fc) == type)
			return f;
	}
}

/* The flow permitting from:port -> to:port for `type`, exact source port first, then
 * "any". */
static int flow_match(const struct dp *dp, uint32_t from, uint32_t from_port, uint32_t to,
		      uint32_t to_port, uint16_t type)
{
	int f = -1;

	if (from_port != RTVIO_PORT_ANY)
		f = flow_find_exact(dp, from, from_port, to, to_port, type);
	if (f < 0)
		f = flow_find_exact(dp, from, RTVIO_PORT_ANY, to, to_port, type);
	return f;
}

static uint32_t conn_bucket(const struct dp *dp, uint32_t a, uint32_t ap, uint32_t b,
			    uint32_t bp)
{
	return hash32((uint64_t)a << 32 | ap, (uint64_t)b << 32 | bp) & (dp->conn_hash_size - 1);
}

/* Finds the connection with connector (a, ap) and listener (b, bp). */
static int32_t conn_find(const struct dp *dp, uint32_t a, uint32_t ap, uint32_t b, uint32_t bp)
{
	for (int32_t c = dp->conn_hash[conn_bucket(dp, a, ap, b, bp)]; c >= 0;
	     c = dp->conns[c].hnext) {
		const struct dp_conn *k = &dp->conns[c];

		if (k->a == a && k->ap == ap && k->b == b && k->bp == bp)
			return c;
	}
	return -1;
}

static int32_t conn_new(struct dp *dp, uint32_t a, uint32_t ap, uint32_t b, uint32_t bp,
			uint32_t flow, uint16_t type)
{
	int32_t c = dp->conn_free;
	uint32_t bk;

	/* Each cell may open at most its share of the table (its `connections`): one
	 * cell's REQUEST flood never leaves the others without connections. The table
	 * holds every cell's share, so a cell within its own never finds it full. */
	if (c < 0)
		return -1;
	if (dp->cells[a].nconn >= dp->cells[a].conn_limit) {
		struct dp_cell *cl = &dp->cells[a];

		cl->conn_limit_refusals++;
		if (dp->mc)
			dp_mc_defer(dp); /* reported by the loop thread */
		else if (dp->hooks.conn_limit)
			dp->hooks.conn_limit(dp->ctx, a, cl->conn_limit, cl->conn_limit_refusals);
		return -1;
	}
	dp->cells[a].nconn++;
	dp->conn_free = dp->conns[c].hnext;
	bk = conn_bucket(dp, a, ap, b, bp);
	dp->conns[c] = (struct dp_conn){ .a = a, .ap = ap, .b = b, .bp = bp, .flow = flow,
					 .type = type, .state = DP_CONN_REQUESTED,
					 .hnext = dp->conn_hash[bk] };
	dp->conn_hash[bk] = c;
	dp->flows[flow].connections++;
	return c;
}

/* The connection is gone: out of the hash (later packets naming it find nothing) and
 * out of its flow's count. The entry stays in use, RESETTING, until its RSTs are out. */
static void conn_unhash(struct dp *dp, int32_t c)
{
	struct dp_conn *k = &dp->conns[c];
	int32_t *pp = &dp->conn_hash[conn_bucket(dp, k->a, k->ap, k->b, k->bp)];

	while (*pp != c)
		pp = &dp->conns[*pp].hnext;
	*pp = k->hnext;
	k->hnext = -1;
	dp->flows[k->flow].connections--;
	k->state = DP_CONN_RESETTING;
	k->pending = 0;
}

/* The entry goes back to the free list and off its connector's count. */
static void conn_release(struct dp *dp, int32_t c)
{
	struct dp_conn *k = &dp->conns[c];

	dp->cells[k->a].nconn--;
	k->state = DP_CONN_FREE;
	k->hnext = dp->conn_free;
	dp->conn_free = c;
}

static void conn_free(struct dp *dp, int32_t c)
{
	conn_unhash(dp, c);
	conn_release(dp, c);
}

void dp_conn_told(struct dp *dp, int32_t c)
{
	struct dp_conn *k = &dp->conns[c];

	if (k->state == DP_CONN_RESETTING && k->pending && --k->pending == 0)
		conn_release(dp, c);
}

/* Entry c's RSTs are queued (rst_to_peer): with none (no live end to tell) it is
 * free at once, else when the last is delivered or dropped. */
static void conn_resets_queued(struct dp *dp, int32_t c)
{
	if (!dp->conns[c].pending)
		conn_release(dp, c);
}

/* Turns p (a TX packet of cell s) into an RST back to s for the connection its header
 * names. The TX chain stays with the packet and goes back to s once the RST is
 * delivered: a cell provoking resets is slowed by its own TX slots, never by the
 * broker's memory. */
static void reply_rst(struct dp *dp, int32_t pi, uint64_t now)
{
	struct dp_pkt *p = &dp->pkts[pi];
	struct vsock_hdr h = p->h;
	struct dp_cell *c = &dp->cells[p->src];

	p->h = (struct vsock_hdr){
		.src_cid = h.dst_cid, .dst_cid = c->cid, .src_port = h.dst_port,
		.dst_port = h.src_port, .type = h.type, .op = VSOCK_OP_RST,
	};
	p->dst = p->src;
	p->release = now;
	p->deadline_abs = now;
	p->n_seg = 0;
	c->resets++;
	dp_queue_append(dp, dp_queue_of(dp, dp->nflows, p->src), pi, now);
}

/* Switches one validated TX packet: connection state, admission, queueing. */
/* The connection packet p (from cell s to cell d) belongs to, created for a
 * REQUEST; -EPERM when the broker refuses it (the sender gets an RST), -ENOENT for
 * an RST that matches nothing (dropped: an RST is never answered). */
static int32_t switch_conn(struct dp *dp, struct dp_pkt *p, uint32_t s, uint32_t d)
{
	const struct vsock_hdr *h = &p->h;
	int32_t cn = conn_find(dp, s, h->src_port, d, h->dst_port);
	bool from_connector = cn >= 0;
	int f;

	if (cn < 0)
		cn = conn_find(dp, d, h->dst_port, s, h->src_port);
	if (h->op == VSOCK_OP_REQUEST) {
		if (cn >= 0)
			return -EPERM; /* a second REQUEST on a live connection */
		f = flow_match(dp, s, h->src_port, d, h->dst_port, h->type);
		if (f < 0) {
			if (!dp->cfg->broker.default_best_effort)
				return -EPERM;
			f = (int)dp->nflows;
		}
		cn = conn_new(dp, s, h->src_port, d, h->dst_port, (uint32_t)f, h->type);
		return cn < 0 ? -EPERM : cn;
	}
	if (cn < 0 || h->type != dp->conns[cn].type)
		return h->op == VSOCK_OP_RST ? -ENOENT : -EPERM;
	if (h->op == VSOCK_OP_RESPONSE) {
		if (from_connector || dp->conns[cn].state != DP_CONN_REQUESTED)
			return -EPERM;
		dp->conns[cn].state = DP_CONN_ESTABLISHED;
	} else if (h->op != VSOCK_OP_RST && dp->conns[cn].state != DP_CONN_ESTABLISHED) {
		return -EPERM;
	}
	return cn;
}

/* Packet pi of `flow` is policed, held for its sender's control budget when it is
 * a real-time control packet, given its deadline and queued toward its receiver. */
static void switch_enqueue(struct dp *dp, int32_t pi, uint32_t flow, uint64_t now)
{
	struct dp_pkt *p = &dp->pkts[pi];
	uint32_t q = dp_queue_of(dp, flow, p->dst);

	p->release = dp_police(dp, &dp->queues[q], p, dp->cells[p->src].tx_empty_at);
	if (p->release > p->arrival) {
		p->policed = true;
		dp->flows[flow].policed++;
	}
	/* Control packets of a real-time flow are not policed by their flow but by
	 * the sender's control budget: beyond it they are held for its next period
	 * with budget left. Best-effort ones run below every real-time step (only
	 * their ingest counts, against the ingest budget). */
	if (p->h.op != VSOCK_OP_RW && !dp->flows[flow].be) {
		uint64_t r = dp_budget_ctrl(dp, p->src, now);

		if (r > p->release) {
			p->release = r;
			p->budget_held = true;
		}
	}
	/* A held packet's deadline runs from its release, as a conforming sender's
	 * would: holding a burst must not hand it earlier deadlines than the flow's
	 * declared rate allows (the edf analysis counts deadlines that way). */
	p->deadline_abs = dp->flows[flow].be ? UINT64_MAX :
			  dp_pkt_eligible(p) + dp->cfg->flows[flow].deadline_ns;
	dp_queue_append(dp, q, pi, now);
}

void dp_switch_pkt(struct dp *dp, int32_t pi, uint64_t now)
{
	struct dp_pkt *p = &dp->pkts[pi];
	const struct vsock_hdr *h = &p->h;
	uint32_t s = p->src, flow;
	int d = cell_by_cid(dp, h->dst_cid);
	int32_t cn;

	/* Impersonation: refused and counted. The sender gets an RST for the
	 * connection it named (addressed to its real CID, so nobody else sees it): a
	 * spoofed connect fails at once instead of hanging. */
	if (h->src_cid != dp->cells[s].cid) {
		dp->cells[s].refused++;
		goto refuse;
	}
	if (d < 0 || !dp->cells[d].attached)
		goto refuse;
	p->dst = (uint32_t)d;
	cn = switch_conn(dp, p, s, (uint32_t)d);
	if (cn == -ENOENT)
		goto drop;
	if (cn < 0)
		goto refuse;
	flow = dp->conns[cn].flow;
	if (h->op == VSOCK_OP_RST)
		conn_free(dp, cn); /* later packets of it get RST; this one still goes */
	switch_enqueue(dp, pi, flow, now);
	return;
refuse:
	if (h->op != VSOCK_OP_RST) {
		reply_rst(dp, pi, now);
		return;
	}
drop:
	dp_pkt_complete_tx(dp, p);
	dp_pkt_free(dp, pi);
}

/* Queues an RST from `cell` to the peer of connection entry c (unhashed, RESETTING),
 * made from the entry into the entry's own slot toward that peer, on class `flow`'s
 * queue toward the peer. On a real-time flow it is a control packet of `cell`, charged to its control
 * budget like one it sent (docs/broker.md, "Per-cell budgets"): the budget state of
 * a cell survives its detach, so a cell that leaves with many connections open, or
 * detaches and re-attaches in a loop, has its RSTs spread over its later periods
 * (held until then, counted in its ctrl_over_budget), never more per period than
 * the analysis charges it. Its deadline runs from that release, as a held control
 * packet's does (dp_switch_pkt). */
static void rst_to_peer(struct dp *dp, int32_t c, uint32_t cell, uint32_t flow, uint64_t now)
{
	struct dp_conn *cn = &dp->conns[c];
	bool to_b = cn->a == cell;
	uint32_t peer = to_b ? cn->b : cn->a;
	uint32_t peer_port = to_b ? cn->bp : cn->ap;
	uint32_t port = to_b ? cn->ap : cn->bp;
	int32_t pi = dp_conn_rst_slot(dp, c, to_b);
	struct dp_pkt *p;

	if (peer == cell || !dp->cells[peer].attached)
		return;
	/* The slot is the entry's: free, since each end of an entry is told once. */
	cn->pending++;
	p = &dp->pkts[pi];
	*p = (struct dp_pkt){
		.synthetic = true, .src = cell, .dst = peer,
		.arrival = now, .release = now, .seq = dp->seq++,
		.deadline_abs = now,
	};
	if (!dp->flows[flow].be) {
		p->release = dp_budget_ctrl(dp, cell, now);
		p->budget_held = p->release > now;
		p->deadline_abs = p->release + dp->cfg->flows[flow].deadline_ns;
	}
	p->h = (struct vsock_hdr){
		.src_cid = dp->cells[cell].cid, .dst_cid = dp->cells[peer].cid,
		.src_port = port, .dst_port = peer_port,
		.type = cn->type, .op = VSOCK_OP_RST,
	};
	dp->cells[peer].resets++;
	dp_queue_append(dp, dp_queue_of(dp, flow, peer), pi, now);
}

void dp_conns_reset(struct dp *dp, uint32_t cell, uint64_t now)
{
	/* The peers learn at once that the connection is gone. */
	for (uint32_t k = 0; k < dp->nconns; k++) {
		struct dp_conn *cn = &dp->conns[k];

		if (cn->state == DP_CONN_FREE || cn->state == DP_CONN_RESETTING ||
		    (cn->a != cell && cn->b != cell))
			continue;
		conn_unhash(dp, (int32_t)k);
		rst_to_peer(dp, (int32_t)k, cell, cn->flow, now);
		conn_resets_queued(dp, (int32_t)k);
	}
}

/* ------------------------------------------------------------ tables ---- */

int dp_cid_table_add(struct dp *dp, uint32_t cell)
{
	uint32_t mask = dp->cid_hash_size - 1, k;
	uint32_t cid = dp->cells[cell].cid;

	if (cell_by_cid(dp, cid) >= 0)
		return -EINVAL;
	for (k = hash32(cid, 0) & mask; dp->cid_hash[k] >= 0; k = (k + 1) & mask)
		;
	dp->cid_hash[k] = (int32_t)cell;
	return 0;
}

int dp_flow_table_add(struct dp *dp, uint32_t f)
{
	const struct rtvio_config *cfg = dp->cfg;
	const struct rtvio_flow_cfg *fc = &cfg->flows[f];
	uint32_t mask = dp->flow_hash_size - 1, k;

	if (fc->from < 0 || fc->from >= cfg->ncells || fc->to < 0 ||
	    fc->to >= cfg->ncells ||
	    flow_find_exact(dp, (uint32_t)fc->from, fc->from_port, (uint32_t)fc->to,
			    fc->to_port, flow_vsock_type(fc)) >= 0)
		return -EINVAL;
	k = hash32(flow_key_hi((uint32_t)fc->from, fc->from_port),
		   flow_key_lo((uint32_t)fc->to, fc->to_port)) & mask;
	while (dp->flow_hash[k] >= 0)
		k = (k + 1) & mask;
	dp->flow_hash[k] = (int32_t)f;
	return 0;
}

void dp_flow_conns_reset(struct dp *dp, uint32_t flow, uint64_t now)
{
	/* Both ends hear of it, on the best-effort class: the flow's own queues are
	 * about to be emptied. */
	for (uint32_t k = 0; k < dp->nconns; k++) {
		struct dp_conn *cn = &dp->conns[k];

		if (cn->state == DP_CONN_FREE || cn->state == DP_CONN_RESETTING ||
		    cn->flow != flow)
			continue;
		conn_unhash(dp, (int32_t)k);
		rst_to_peer(dp, (int32_t)k, cn->a, dp->nflows, now);
		rst_to_peer(dp, (int32_t)k, cn->b, dp->nflows, now);
		conn_resets_queued(dp, (int32_t)k);
	}
}

void dp_tables_rehash(struct dp *dp, uint32_t skip_cell, uint32_t skip_flow)
{
	memset(dp->cid_hash, 0xff, dp->cid_hash_size * sizeof(int32_t));
	memset(dp->flow_hash, 0xff, dp->flow_hash_size * sizeof(int32_t));
	/* Re-adding entries that were unique before cannot fail. */
	for (uint32_t i = 0; i < dp->ncells; i++)
		if (i != skip_cell && !dp->cfg->cells[i].vacant)
			(void)dp_cid_table_add(dp, i);
	for (uint32_t f = 0; f < dp->nflows; f++)
		if (f != skip_flow && !dp->cfg->flows[f].vacant)
			(void)dp_flow_table_add(dp, f);
}
