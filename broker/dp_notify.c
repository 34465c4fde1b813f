/* Used-ring publication and notifications to cells, one per batch: the data plane
 * adds used elements without publishing them (vq_device_add_used) and marks the queue
 * here; while dp_run copies, the index store (a release store) and the notify
 * decision (a full fence, and maybe a system call) are taken once for everything
 * added since, at the flush points that dp_run chooses (docs/broker.md, "7.
 * Completion"): vq_device_should_notify publishes before it decides. Outside dp_run,
 * and for every element the data plane adds on a control path (drops, refusals,
 * purges), both happen at once. On several cores a core takes the decision
 * under the data plane's mutex M and only marks the queue; it signals after releasing
 * M (dp_mc.c, mc_unlock), so no system call runs under M. */
#include "dp_internal.h"

static uint32_t note_bit(uint32_t cell, unsigned int queue)
{
	return 2 * cell + (queue == DP_QUEUE_TX);
}

static void notify_now(struct dp *dp, uint32_t cell, unsigned int queue, struct vq_device *vq)
{
	dp->notify_checks++;
	if (!vq_device_should_notify(vq))
		return;
	if (dp->notify_core != DP_NOTE_AT_ONCE) {
		/* A core under M: decided here, signalled once it has released M. */
		dp->notify_sent++;
		dp_mc_note(dp, dp->notify_core, cell, queue);
	} else if (dp->hooks.notify) {
		dp->notify_sent++;
		dp->hooks.notify(dp->ctx, cell, queue);
	}
}

static void hook_flush(struct dp *dp, uint64_t sent_before)
{
	if (dp->notify_core == DP_NOTE_AT_ONCE && dp->notify_sent != sent_before && dp->hooks.notify_flush)
		dp->hooks.notify_flush(dp->ctx);
}

void dp_notify(struct dp *dp, uint32_t cell, unsigned int queue, struct vq_device *vq)
{
	if (!dp->notify_defer) {
		uint64_t sent = dp->notify_sent;

		notify_now(dp, cell, queue, vq);
		hook_flush(dp, sent);
		return;
	}
	dp_bit_set(dp->notemap, note_bit(cell, queue));
	dp->notify_pending = true;
}

/* Takes the notify decision for every queue marked since the last flush. A cell
 * that went away meanwhile is skipped: its rings are no longer ours. */
static void flush_one(struct dp *dp, uint32_t bit)
{
	uint32_t cell = bit / 2;
	unsigned int queue = bit % 2 ? DP_QUEUE_TX : DP_QUEUE_RX;
	struct dp_cell *c = &dp->cells[cell];

	dp_bit_clear(dp->notemap, bit);
	if (c->attached)
		notify_now(dp, cell, queue, queue == DP_QUEUE_TX ? c->tx : c->rx);
}

/* Every decision of the batch first, then the signals in one go (notify_flush). */
void dp_notify_flush(struct dp *dp)
{
	uint32_t words = (2 * dp->ncells + 63) / 64;
	uint64_t sent = dp->notify_sent;

	if (!dp->notify_pending)
		return;
	dp->notify_pending = false;
	for (uint32_t w = 0; w < words; w++) {
		uint64_t word = dp->notemap[w];

		while (word) {
			flush_one(dp, w * 64 + (uint32_t)__builtin_ctzll(word));
			word &= word - 1;
		}
	}
	hook_flush(dp, sent);
}

void dp_stats_notify(const struct dp *dp, struct dp_notify_stats *out)
{
	*out = (struct dp_notify_stats){ .checks = dp->notify_checks, .sent = dp->notify_sent };
}
