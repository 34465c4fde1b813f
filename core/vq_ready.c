/* Which parts of the driver's memory a device may touch yet: see vq_ready.h. */
#include "vq_ready.h"

void vq_ready_init(struct vq_ready *r, const void *base, uint64_t len,
		   unsigned int min_shift)
{
	unsigned int shift = min_shift;

	while (shift < 63 && (len + (1ull << shift) - 1) >> shift > VQ_READY_MAX)
		shift++;
	r->base = (uintptr_t)base;
	r->len = len;
	r->shift = shift;
	r->n = (unsigned int)((len + (1ull << shift) - 1) >> shift);
	for (unsigned int w = 0; w < VQ_READY_WORDS; w++) {
		atomic_store_explicit(&r->in[w], 0, memory_order_relaxed);
		atomic_store_explicit(&r->want[w], 0, memory_order_relaxed);
	}
	atomic_store_explicit(&r->all, len == 0, memory_order_relaxed);
}

bool vq_ready_is_in(const struct vq_ready *r, unsigned int g)
{
	/* Acquire: pairs with vq_ready_set's release, after the granule's pages. */
	return (atomic_load_explicit(&r->in[g / 32u], memory_order_acquire) >> (g % 32u)) & 1u;
}

void vq_ready_set_all(struct vq_ready *r)
{
	/* Release: the filler's faulting-in happens before a device sees `all`. */
	atomic_store_explicit(&r->all, true, memory_order_release);
}

/* Filler: are all granules in? */
static bool all_in(const struct vq_ready *r)
{
	for (unsigned int w = 0; w < (r->n + 31u) / 32u; w++) {
		uint_least32_t full = w < r->n / 32u ? UINT32_MAX
				      : ((uint_least32_t)1 << (r->n % 32u)) - 1u;

		if (atomic_load_explicit(&r->in[w], memory_order_relaxed) != full)
			return false;
	}
	return true;
}

bool vq_ready_set(struct vq_ready *r, unsigned int g)
{
	uint_least32_t bit = (uint_least32_t)1 << (g % 32u);

	if (g >= r->n)
		return false;
	/* Release: every page of the granule was faulted in before the bit. */
	atomic_fetch_or_explicit(&r->in[g / 32u], bit, memory_order_release);
	if (all_in(r))
		vq_ready_set_all(r);
	/* Seq_cst: orders the bit's store before the load of want[] below, against the
	 * device's fence between its want and its second look (vq_mem_want): one of
	 * the two loads sees the other side's store. Acquire: pairs with the want's
	 * release, so that whoever is told sees what the device wrote before it. */
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load_explicit(&r->want[g / 32u], memory_order_acquire) & bit;
}

unsigned int vq_ready_wanted(const struct vq_ready *r)
{
	for (unsigned int w = 0; w < (r->n + 31u) / 32u; w++) {
		/* Acquire: pairs with vq_ready_want's release. */
		uint_least32_t left = atomic_load_explicit(&r->want[w], memory_order_acquire) &
				      ~atomic_load_explicit(&r->in[w], memory_order_relaxed);

		if (left)
			return w * 32u + (unsigned int)__builtin_ctzl((unsigned long)left);
	}
	return r->n;
}

/* The granules [*first, *last] of [host, host + len) (a zero length names the granule
 * of host): false when the range is not inside r. */
static bool span(const struct vq_ready *r, const void *host, uint64_t len,
		 unsigned int *first, unsigned int *last)
{
	uintptr_t h = (uintptr_t)host;
	uint64_t off;

	if (h < r->base || h - r->base >= r->len || len > r->len - (h - r->base))
		return false;
	off = h - r->base;
	*first = (unsigned int)(off >> r->shift);
	*last = (unsigned int)((off + (len ? len - 1 : 0)) >> r->shift);
	return true;
}

/* Are granules [first, last] all in? One load per word of the map, so that a chain
 * naming much memory costs at most VQ_READY_WORDS loads a segment. */
static bool span_in(const struct vq_ready *r, unsigned int first, unsigned int last)
{
	for (unsigned int w = first / 32u; w <= last / 32u; w++) {
		uint_least32_t need = UINT32_MAX;

		if (w == first / 32u)
			need &= (uint_least32_t)UINT32_MAX << (first % 32u);
		if (w == last / 32u)
			need &= (uint_least32_t)UINT32_MAX >> (31u - last % 32u);
		/* Acquire: pairs with vq_ready_set's release, after the granules' pages. */
		if ((atomic_load_explicit(&r->in[w], memory_order_acquire) & need) != need)
			return false;
	}
	return true;
}

bool vq_ready_test(const struct vq_ready *r, const void *host, uint64_t len)
{
	unsigned int first, last;

	/* Acquire: pairs with vq_ready_set_all's release. */
	if (atomic_load_explicit(&r->all, memory_order_acquire))
		return true;
	return span(r, host, len, &first, &last) && span_in(r, first, last);
}

void vq_ready_want(struct vq_ready *r, const void *host, uint64_t len)
{
	unsigned int first, last;

	if (!span(r, host, len, &first, &last))
		return;
	/* Release: what the device wrote before asking (that it waits) is seen by a
	 * filler that reads the want, and by whoever that filler then tells. */
	for (unsigned int g = first; g <= last; g++)
		atomic_fetch_or_explicit(&r->want[g / 32u], (uint_least32_t)1 << (g % 32u),
					 memory_order_release);
}

/* The region of mem[n_mem] whose host range holds host, or NULL. */
static const struct vq_mem_region *region_of(const struct vq_mem_region *mem,
					     unsigned int n_mem, const void *host)
{
	uintptr_t h = (uintptr_t)host;

	for (unsigned int i = 0; i < n_mem; i++) {
		uintptr_t start = (uintptr_t)mem[i].host;

		if (h >= start && h - start < mem[i].size)
			return &mem[i];
	}
	return 0;
}

bool vq_mem_ready(const struct vq_mem_region *mem, unsigned int n_mem, const void *host,
		  uint64_t len)
{
	const struct vq_mem_region *r = region_of(mem, n_mem, host);

	return !r || !r->ready || vq_ready_test(r->ready, host, len);
}

bool vq_mem_want(const struct vq_mem_region *mem, unsigned int n_mem, const void *host,
		 uint64_t len)
{
	const struct vq_mem_region *r = region_of(mem, n_mem, host);

	if (r && r->ready)
		vq_ready_want(r->ready, host, len);
	/* Seq_cst: orders the want's stores before the second look, against the
	 * filler's fence between its bit and its look at want[] (vq_ready_set). */
	atomic_thread_fence(memory_order_seq_cst);
	return vq_mem_ready(mem, n_mem, host, len);
}
