/* gvsock's TX completions: reclaimed in batches, and signalled by the broker only
 * while somebody waits for TX room.
 *
 * A completion frees a header slot, a payload slot and descriptors; nobody needs it
 * until a send, a loan, a control packet or an RST finds no room. So the TX ring's
 * callbacks stay disabled (used_event behind last_used, vq_driver_disable_cb) and
 * every pass of gv_process reclaims whatever completed meanwhile; only gv_tx_avail,
 * the one place that says "no room", arms them (tx_armed), and gv_process keeps
 * them armed until a completion arrives.
 *
 * Why no wake-up is lost. A caller that sleeps for room sleeps after gv_tx_avail
 * said false (directly, or through the -EAGAIN of a send or loan, or a control
 * packet or RST left pending). gv_tx_avail says false only after
 * vq_driver_enable_cb returned false: it stored used_event = last_used, then a full
 * fence (ordering that store before its load of used->idx), and found no entry past
 * last_used. The broker stores used->idx, fences, then loads used_event: either it
 * saw our used_event and signals the next completion, or we saw its entry, drained
 * it and looked at the room again. A completion that gv_process drains later (its
 * round disables callbacks first) clears tx_armed and wakes every tx_blocked socket,
 * whose retry arms again if it still finds no room; while no completion came,
 * tx_armed survives the round and gv_process enables the callbacks again at its
 * end, with the same fence. */
#include "gv_internal.h"

void gv_tx_wake_blocked(struct gv_stack *s)
{
	for (uint32_t i = 0; i < s->cfg.max_sockets; i++) {
		struct gv_sock *k = &s->sk[i];

		if (k->state != GV_S_FREE && k->tx_blocked) {
			k->tx_blocked = false;
			gv_wake(s, k);
		}
	}
}

int gv_tx_drain(struct gv_stack *s)
{
	uint32_t freed = 0;
	void *tok;
	uint32_t len;
	int r;

	while ((r = vq_driver_get_used(&s->txq, &tok, &len)) == 1) {
		gv_tx_reclaim(s, tok);
		freed++;
	}
	if (r < 0)
		return gv_fail(s, r);
	if (freed) {
		s->tx_armed = false; /* whoever still finds no room arms again */
		gv_tx_wake_blocked(s);
	}
	return (int)freed;
}

bool gv_tx_avail(struct gv_stack *s, uint32_t npkt, uint32_t npay)
{
	bool armed = false;

	while (!gv_tx_room(s, npkt, npay)) {
		if (s->dead)
			return false;
		s->tx_armed = true;
		armed = true;
		/* used_event = last_used, full fence, used->idx: see the top. */
		if (!vq_driver_enable_cb(&s->txq))
			return false;
		if (gv_tx_drain(s) <= 0)
			return false;
	}
	/* Armed here and room found: nobody else asked for signals (a drain clears
	 * tx_armed), so the broker need not send them. */
	if (armed && !s->tx_armed)
		vq_driver_disable_cb(&s->txq);
	return true;
}
