/* gvsock: where the rings, RX buffers, TX headers and TX payload slots sit in the
 * communication region (gv_layout_compute, see gvsock.h). */
#include "gv_internal.h"

/* min(room / size, cap) for size >= 1 and cap < 2^16, by bisection on the count:
 * a 64-bit division would need the compiler's runtime library on a 32-bit cell. */
static uint32_t fit_slots(uint64_t room, uint32_t size, uint32_t cap)
{
	uint32_t lo = 0, hi = cap;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo + 1) / 2;

		if ((uint64_t)mid * size <= room)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

int gv_layout_compute(const struct gv_layout_params *p, uint64_t region_size,
		      struct gv_layout *out)
{
	struct gv_layout_params d = { 0 };
	struct vq_layout vl;
	uint64_t off, room, max_slots, slots;

	if (!out)
		return -GV_EINVAL;
	if (p)
		d = *p;
	if (!d.queue_size)
		d.queue_size = GV_DEFAULT_QUEUE_SIZE;
	if (!d.rx_buf_size)
		d.rx_buf_size = GV_DEFAULT_RX_BUF_SIZE;
	if (!d.tx_payload)
		d.tx_payload = GV_DEFAULT_TX_PAYLOAD;
	/* 2 descriptors per data packet, and tokens index a 16-bit slot space. */
	if (d.queue_size < 2 || d.queue_size > VQ_MAX_SIZE ||
	    (d.queue_size & (d.queue_size - 1)))
		return -GV_EINVAL;
	if (d.rx_buf_size <= GV_HDR_SIZE || d.tx_payload == 0 ||
	    d.tx_payload > 0x40000000u)
		return -GV_EINVAL;
	if (vq_layout(d.queue_size, &vl))
		return -GV_EINVAL;

	gv_memset(out, 0, sizeof(*out));
	out->queue_size = d.queue_size;
	off = 0;
	out->rx_desc = off + vl.desc_off;
	out->rx_avail = off + vl.avail_off;
	out->rx_used = off + vl.used_off;
	off = gv_align_up(off + vl.total, 64);
	out->tx_desc = off + vl.desc_off;
	out->tx_avail = off + vl.avail_off;
	out->tx_used = off + vl.used_off;
	off = gv_align_up(off + vl.total, 64);
	out->rx_bufs = off;
	out->rx_buf_count = d.queue_size;
	out->rx_buf_size = d.rx_buf_size;
	off = gv_align_up(off + (uint64_t)d.queue_size * d.rx_buf_size, 64);
	out->tx_hdrs = off;
	off = gv_align_up(off + (uint64_t)d.queue_size * GV_TX_HDR_STRIDE, 64);
	out->tx_bufs = off;
	out->tx_payload = d.tx_payload;
	if (off >= region_size)
		return -GV_ENOSPC;
	room = region_size - off;
	max_slots = d.queue_size / 2;
	slots = fit_slots(room, d.tx_payload, max_slots);
	if (d.tx_slots) {
		if (d.tx_slots > max_slots)
			return -GV_EINVAL;
		if (slots < d.tx_slots)
			return -GV_ENOSPC;
		slots = d.tx_slots;
	}
	if (slots == 0)
		return -GV_ENOSPC;
	out->tx_slot_count = (uint32_t)slots;
	out->footprint = off + slots * d.tx_payload;
	return 0;
}

