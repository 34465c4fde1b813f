/* gv_process: the bounded, non-blocking work loop of a gvsock stack, its
 * timeouts, and the sticky end of a stack whose rings the broker broke. */
#include "gv_internal.h"

static void timeouts(struct gv_stack *s)
{
	for (uint32_t i = 0; i < s->cfg.max_sockets; i++) {
		struct gv_sock *k = &s->sk[i];

		if (!k->deadline || k->deadline > s->now)
			continue;
		if (k->state == GV_S_CONNECTING) {
			gv_send_rst(s, k);
			gv_conn_gone(s, k, -GV_ETIMEDOUT);
		} else if (k->state == GV_S_LINGER) {
			/* The peer never answered our SHUTDOWN: end it ourselves. */
			gv_send_rst(s, k);
			gv_conn_gone(s, k, 0);
		}
	}
}

static void flush_all(struct gv_stack *s)
{
	gv_rstq_flush(s);
	for (uint32_t i = 0; i < s->cfg.max_sockets; i++) {
		struct gv_sock *k = &s->sk[i];

		if (k->state == GV_S_FREE)
			continue;
		if (k->pend)
			gv_ctrl_flush(s, k);
		if (k->state == GV_S_LINGER && !k->deadline && (!k->pend || gv_rst_park(s, k)))
			gv_sock_free(s, k);
	}
}

/* The broker broke the ring rules (core's error err): the stack is dead for good. */
int gv_fail(struct gv_stack *s, int err)
{
	(void)err; /* core's reason; the port learns -EIO, the stats count it */
	if (!s->dead) {
		s->dead = -GV_EIO;
		s->st.ring_errors++;
		/* Nothing can be sent or received any more: every connection is gone. */
		for (uint32_t i = 0; i < s->cfg.max_sockets; i++) {
			struct gv_sock *k = &s->sk[i];

			if (k->state == GV_S_FREE)
				continue;
			k->pend = 0;
			if (k->state == GV_S_CONNECTING || k->state == GV_S_CONNECTED ||
			    k->state == GV_S_LINGER)
				gv_conn_gone(s, k, -GV_ECONNRESET);
			else
				gv_wake(s, k);
		}
	}
	return s->dead;
}

int gv_process(struct gv_stack *s)
{
	int handled = 0;
	bool more = true;
	uint32_t rounds = 0;
	uint64_t tx0 = s->st.tx_packets;

	if (s->dead)
		return s->dead;
	s->now = s->cfg.ops->now_ns(s->cfg.ctx);
	/* Bounded: under a flood we return with callbacks still disabled and a
	 * positive count, and the port calls again before it sleeps. */
	while (more && rounds++ < 8) {
		void *tok;
		uint32_t len;
		int r;

		vq_driver_disable_cb(&s->rxq);
		vq_driver_disable_cb(&s->txq);
		/* Completions of the TX ring, and the sockets that waited for them. */
		r = gv_tx_drain(s);
		if (r < 0)
			return r;
		handled += r;
		while ((r = vq_driver_get_used(&s->rxq, &tok, &len)) == 1) {
			uint8_t *b = tok;
			/* The token is our own pointer (core keeps it privately). */
			uint32_t i = (uint32_t)((size_t)(b - (s->region + s->cfg.layout.rx_bufs)) /
						s->cfg.layout.rx_buf_size);

			s->rx_cur = i;
			s->rx_held = false;
			gv_rx_one(s, b, len);
			handled++;
			if (!s->rx_held && gv_rx_post(s, i))
				return gv_fail(s, -GV_EINVAL);
			/* A reply rx_one put on the TX ring found it broken (tx_put). */
			if (s->dead)
				return s->dead;
		}
		if (r < 0)
			return gv_fail(s, r);
		flush_all(s);
		gv_tx_publish(s);
		if (s->dead)
			return s->dead;
		/* Held off (a spinning port watches the rings): nothing is turned on,
		 * and what came meanwhile is taken in the next round. */
		if (s->notify_held) {
			more = gv_used_pending(s);
			continue;
		}
		more = vq_driver_enable_cb(&s->rxq);
		/* TX completions are signalled only while somebody waits for room
		 * (tx_arm.c): the sender that does not wait costs the broker no signal. */
		if (s->tx_armed)
			more = vq_driver_enable_cb(&s->txq) || more;
	}
	/* Timeouts last: an answer that was on the used ring by `now` came in time,
	 * however long this cell was not running (a descheduled VM finds its RESPONSE
	 * and the passed deadline together). */
	timeouts(s);
	gv_tx_publish(s);
	if (s->dead)
		return s->dead;
	/* Packets sent (replies, timeouts) count as work done too. */
	handled += (int)(s->st.tx_packets - tx0);
	return more ? (handled ? handled : 1) : handled;
}

uint64_t gv_next_deadline(const struct gv_stack *s)
{
	uint64_t d = UINT64_MAX;

	for (uint32_t i = 0; i < s->cfg.max_sockets; i++)
		if (s->sk[i].state != GV_S_FREE && s->sk[i].deadline &&
		    s->sk[i].deadline < d)
			d = s->sk[i].deadline;
	return d;
}

bool gv_used_pending(const struct gv_stack *s)
{
	/* A hint only: a stale read costs one more spin or one gv_process. */
	return shm_load_relaxed(&s->rxq.ring.used->idx) != s->rxq.last_used ||
	       shm_load_relaxed(&s->txq.ring.used->idx) != s->txq.last_used;
}

void gv_notify_hold(struct gv_stack *s, bool hold)
{
	s->notify_held = hold;
	if (!hold)
		return;
	vq_driver_disable_cb(&s->rxq);
	if (!s->tx_armed)
		vq_driver_disable_cb(&s->txq);
}

uint32_t gv_used_snapshot(const struct gv_stack *s)
{
	return (uint32_t)shm_load_relaxed(&s->rxq.ring.used->idx) |
	       (uint32_t)shm_load_relaxed(&s->txq.ring.used->idx) << 16;
}
