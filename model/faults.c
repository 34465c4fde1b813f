/* The minor page faults the data path can take on a cell's memory, as counts of the
 * pages each of its actions touches (docs/analysis.md, "Page faults on cell memory").
 * The broker maps a cell's memory without faulting it in (broker/daemon_setup.c), and
 * a cell that holds the file behind it can punch holes into it at any time
 * (fallocate), which takes those pages out of the broker's mapping again: whatever
 * the table changes, any page an action touches may fault. So the counts are per
 * action, never per memory-table change: the pages of shared memory one copy step,
 * one piece's ring work and one packet's ingest can touch at most, under the ring
 * rules the broker enforces (MODEL_MAX_SEG segments per chain, descriptors 16 bytes
 * each). */
#include "model.h"

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* A contiguous range of l >= 1 bytes touches at most ceil((l - 1) / P) + 1 pages.
 * Over s pieces of l_i bytes (sum L, each at least a byte, so s <= L) the ceilings
 * add up to at most ceil((L - s) / P) + s - 1, hence ceil((L - s) / P) + 2 s - 1
 * pages; and never more pages than bytes. The count grows with s: the largest s the
 * ring rules allow is the bound. */
uint64_t model_span_pages(uint64_t len, uint64_t segs)
{
	uint64_t s = segs < len ? segs : len, p;

	if (!len || !s)
		return 0;
	p = ceil_div(len - s, MODEL_PAGE) + 2 * s - 1;
	return p < len ? p : len;
}

void model_faults(uint64_t chunk, struct model_faults *out)
{
	/* Popping a chain: the avail ring's index and entry (two pages at most), then
	 * its descriptors: MODEL_MAX_SEG of 16 bytes in the table, 16-byte aligned, one
	 * page each; an indirect chain instead reads one table entry and a table of at
	 * most MODEL_MAX_SEG descriptors (three pages, fewer than MODEL_MAX_SEG). */
	uint64_t pop = 2 + MODEL_MAX_SEG;
	/* Pushing to a used ring: the 8-byte element (4-byte aligned: two pages), the
	 * index, and for the notification decision the driver's flags or used_event
	 * and, with EVENT_IDX, the device's avail_event. */
	uint64_t push = 2 + 1 + 1 + 1;

	/* A step reads its chunk from the TX chain and writes it, with the piece's
	 * header on its first step, into the RX chain. */
	out->step = model_span_pages(chunk, MODEL_MAX_SEG) +
		    model_span_pages(chunk + MODEL_VSOCK_HDR, MODEL_MAX_SEG);
	/* A piece pops the receiver's RX chain and pushes it to its used ring; its
	 * packet's last piece pushes the sender's TX chain (charged on every piece). */
	out->piece = pop + push + push;
	/* Ingest pops a TX chain, gathers its header from up to MODEL_MAX_SEG segments
	 * and, for a packet it drops or answers at once, pushes the chain back. */
	out->ingest = pop + model_span_pages(MODEL_VSOCK_HDR, MODEL_MAX_SEG) + push;
}
