/* Split virtqueues, driver side and device side: see virtq.h. */
#include "virtq.h"

static bool valid_num(unsigned int num)
{
	return num != 0 && num <= VQ_MAX_SIZE && (num & (num - 1)) == 0;
}

static bool aligned(const void *p, uintptr_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

static bool valid_ring(const struct vq_ring *r)
{
	return r && valid_num(r->num) && r->desc && r->avail && r->used &&
	       aligned(r->desc, VQ_DESC_ALIGN) && aligned(r->avail, VQ_AVAIL_ALIGN) &&
	       aligned(r->used, VQ_USED_ALIGN);
}

int vq_layout(unsigned int num, struct vq_layout *l)
{
	if (!valid_num(num))
		return -RT_EINVAL;
	l->desc_off = 0;
	l->desc_size = sizeof(struct vring_desc) * num;
	l->avail_off = l->desc_off + l->desc_size;
	l->avail_size = sizeof(struct vring_avail) + sizeof(le16) * (num + 1u);
	l->used_off = (l->avail_off + l->avail_size + VQ_USED_ALIGN - 1) & ~(size_t)(VQ_USED_ALIGN - 1);
	l->used_size = sizeof(struct vring_used) + sizeof(struct vring_used_elem) * num +
		       sizeof(le16);
	l->total = l->used_off + l->used_size;
	return 0;
}

int vq_ring_at(struct vq_ring *r, void *base, unsigned int num)
{
	struct vq_layout l;
	int err = vq_layout(num, &l);

	if (err)
		return err;
	if (!base || !aligned(base, VQ_DESC_ALIGN))
		return -RT_EINVAL;
	r->num = num;
	/* Each offset keeps its part's alignment, given an aligned base (checked). */
	r->desc = (struct vring_desc *)(void *)((uint8_t *)base + l.desc_off);
	r->avail = (struct vring_avail *)(void *)((uint8_t *)base + l.avail_off);
	r->used = (struct vring_used *)(void *)((uint8_t *)base + l.used_off);
	return 0;
}

/* ---- Driver side ------------------------------------------------------------- */

int vq_driver_init(struct vq_driver *vq, const struct vq_ring *ring,
		   struct vq_drv_slot *slot, uint64_t features)
{
	unsigned int num;

	if (!vq || !valid_ring(ring) || !slot)
		return -RT_EINVAL;
	num = ring->num;
	*vq = (struct vq_driver){
		.ring = *ring,
		.slot = slot,
		.num_free = (uint16_t)num, /* 32768 at most: fits */
		.event_idx = (features >> VIRTIO_F_EVENT_IDX) & 1,
		.indirect = (features >> VIRTIO_F_INDIRECT_DESC) & 1,
	};
	/* The rings start out as a fresh ring: nothing available, nothing used, and
	 * notifications wanted from the first entry on. No device runs yet. */
	for (unsigned int i = 0; i < num; i++) {
		ring->desc[i] = (struct vring_desc){ 0 };
		ring->avail->ring[i] = 0;
		ring->used->ring[i] = (struct vring_used_elem){ 0 };
		slot[i] = (struct vq_drv_slot){ .next = (uint16_t)(i + 1u) };
	}
	shm_store_relaxed(&ring->avail->flags, 0);
	shm_store_relaxed(&ring->avail->idx, 0);
	shm_store_relaxed(vq_used_event(ring), 0);
	shm_store_relaxed(&ring->used->flags, 0);
	shm_store_relaxed(&ring->used->idx, 0);
	shm_store_relaxed(vq_avail_event(ring), 0);
	return 0;
}

static void put_desc(struct vring_desc *d, const struct vq_buf *b, uint16_t flags,
		     uint16_t next)
{
	d->addr = cpu_to_le64(b->addr);
	d->len = cpu_to_le32(b->len);
	d->flags = cpu_to_le16(flags);
	d->next = cpu_to_le16(next);
}

/* Checks a chain's shape and sums its writable bytes into *in_len. */
static int chain_ok(const struct vq_buf *out, unsigned int n_out, const struct vq_buf *in,
		    unsigned int n_in, const void *token, uint32_t *in_len)
{
	uint64_t sum = 0;

	if (!token || n_out > VQ_MAX_SIZE || n_in > VQ_MAX_SIZE || n_out + n_in == 0 ||
	    (n_out && !out) || (n_in && !in))
		return -RT_EINVAL;
	for (unsigned int k = 0; k < n_in; k++)
		sum += in[k].len;
	if (sum > UINT32_MAX)
		return -RT_EINVAL;
	*in_len = (uint32_t)sum;
	return 0;
}

static const struct vq_buf *nth_buf(const struct vq_buf *out, unsigned int n_out,
				    const struct vq_buf *in, unsigned int k)
{
	return k < n_out ? &out[k] : &in[k - n_out];
}

/* Records the chain at head and puts it in the next avail slot. The slot is plain
 * memory: the release store of avail->idx in vq_driver_publish() publishes it. */
static void expose(struct vq_driver *vq, uint16_t head, uint16_t ndesc, uint32_t in_len,
		   void *token)
{
	struct vq_drv_slot *s = &vq->slot[head];

	s->token = token;
	s->ndesc = ndesc;
	s->in_len = in_len;
	vq->ring.avail->ring[vq->avail_idx & (vq->ring.num - 1u)] = cpu_to_le16(head);
	vq->avail_idx++;
}

int vq_driver_add(struct vq_driver *vq, const struct vq_buf *out, unsigned int n_out,
		  const struct vq_buf *in, unsigned int n_in, void *token)
{
	unsigned int n = n_out + n_in;
	uint16_t head = vq->free_head, i = head;
	uint32_t in_len;
	int err;

	if (vq->broken)
		return vq->broken;
	err = chain_ok(out, n_out, in, n_in, token, &in_len);
	if (err)
		return err;
	if (n > vq->num_free)
		return -RT_ENOSPC;
	/* The chain takes the first n descriptors of the free list, which the private
	 * slot[].next links already chain together in order. */
	for (unsigned int k = 0; k < n; k++) {
		uint16_t flags = (k >= n_out ? VRING_DESC_F_WRITE : 0) |
				 (k + 1 < n ? VRING_DESC_F_NEXT : 0);

		put_desc(&vq->ring.desc[i], nth_buf(out, n_out, in, k), flags,
			 vq->slot[i].next);
		i = vq->slot[i].next;
	}
	vq->free_head = i;
	vq->num_free = (uint16_t)(vq->num_free - n);
	expose(vq, head, (uint16_t)n, in_len, token);
	return 0;
}

int vq_driver_add_indirect(struct vq_driver *vq, struct vring_desc *table,
			   uint64_t table_addr, const struct vq_buf *out,
			   unsigned int n_out, const struct vq_buf *in,
			   unsigned int n_in, void *token)
{
	unsigned int n = n_out + n_in;
	uint16_t head = vq->free_head;
	uint32_t in_len;
	int err;

	if (vq->broken)
		return vq->broken;
	err = chain_ok(out, n_out, in, n_in, token, &in_len);
	if (err)
		return err;
	if (!vq->indirect || !table || n > VQ_MAX_SIZE)
		return -RT_EINVAL;
	if (vq->num_free == 0)
		return -RT_ENOSPC;
	for (unsigned int k = 0; k < n; k++) {
		uint16_t flags = (k >= n_out ? VRING_DESC_F_WRITE : 0) |
				 (k + 1 < n ? VRING_DESC_F_NEXT : 0);

		put_desc(&table[k], nth_buf(out, n_out, in, k), flags, (uint16_t)(k + 1));
	}
	put_desc(&vq->ring.desc[head],
		 &(struct vq_buf){ table_addr, (uint32_t)(n * sizeof(struct vring_desc)) },
		 VRING_DESC_F_INDIRECT, 0);
	vq->free_head = vq->slot[head].next;
	vq->num_free--;
	expose(vq, head, 1, in_len, token);
	return 0;
}

bool vq_driver_publish(struct vq_driver *vq)
{
	uint16_t old = vq->published, new = vq->avail_idx;

	if (vq->broken || old == new)
		return false;
	/* Publishes the descriptors and avail slots written since the last call.
	 * Orders descriptor, buffer and avail slot writes before the avail index:
	 * property (a); model F_AVAIL_PUB (docs/verification.md). */
	shm_store_release(&vq->ring.avail->idx, new);
	vq->published = new;
	/* Orders the avail->idx store before the avail_event/flags load. The device,
	 * about to sleep, stores avail_event (or clears NO_NOTIFY), then fences, then
	 * re-reads avail->idx: with a fence on both sides at least one of us sees the
	 * other's store, so either it finds our entries or we kick. No lost kick:
	 * property (c); model F_PUB_SYNC. */
	fence_sync();
	if (vq->event_idx)
		return vq_need_event(shm_load_relaxed(vq_avail_event(&vq->ring)), new, old);
	return !(shm_load_relaxed(&vq->ring.used->flags) & VRING_USED_F_NO_NOTIFY);
}

/* Marks the ring broken for good, remembering where the error was found. */
static int drv_fail_at(struct vq_driver *vq, int err, int line)
{
	vq->broken = err;
	vq->broken_at = line;
	return err;
}
#define drv_fail(vq, err) drv_fail_at(vq, err, __LINE__)

/* Reads a field the other side writes, exactly once. */
/*@ requires \valid_read(p);
    assigns \nothing; */
static uint32_t read_once32(const le32 *p)
{
	return le32_to_cpu(*(const volatile le32 *)p);
}

/*@ requires \valid_read(p);
    assigns \nothing; */
static uint16_t read_once16(const le16 *p)
{
	return le16_to_cpu(*(const volatile le16 *)p);
}

int vq_driver_get_used(struct vq_driver *vq, void **token, uint32_t *len)
{
	const uint16_t mask = (uint16_t)(vq->ring.num - 1u);
	struct vring_used_elem *e;
	struct vq_drv_slot *s;
	uint16_t used_idx, last;
	uint32_t id, n;

	if (vq->broken)
		return vq->broken;
	/* Acquire: the used element (and the buffer the device wrote) is read only
	 * after the index that covers it: property (b); model F_USED_ACQ. */
	used_idx = shm_load_acquire(&vq->ring.used->idx);
	if (used_idx == vq->last_used)
		return 0;
	if ((uint16_t)(used_idx - vq->last_used) > vq->ring.num)
		return drv_fail(vq, -RT_EPROTO);
	e = &vq->ring.used->ring[vq->last_used & mask];
	id = read_once32(&e->id);
	n = read_once32(&e->len);
	if (id >= vq->ring.num || !vq->slot[id].token || n > vq->slot[id].in_len)
		return drv_fail(vq, -RT_EPROTO);
	s = &vq->slot[id];
	*token = s->token;
	*len = n;
	/* Back to the free list, walking the private links, never the shared table. */
	last = (uint16_t)id;
	for (unsigned int k = 1; k < s->ndesc; k++)
		last = vq->slot[last].next;
	vq->slot[last].next = vq->free_head;
	vq->free_head = (uint16_t)id;
	vq->num_free = (uint16_t)(vq->num_free + s->ndesc);
	s->token = 0;
	vq->last_used++;
	/* While notifications are on, ask for one at the next entry. A hint without a
	 * fence: vq_driver_enable_cb() is what guarantees no wake-up is lost. */
	if (vq->event_idx && !vq->cb_disabled)
		shm_store_relaxed(vq_used_event(&vq->ring), vq->last_used);
	return 1;
}

void vq_driver_disable_cb(struct vq_driver *vq)
{
	vq->cb_disabled = true;
	if (vq->event_idx)
		/* An event index just behind us is reached again only after 2^16 more
		 * entries. */
		shm_store_relaxed(vq_used_event(&vq->ring), (uint16_t)(vq->last_used - 1u));
	else
		shm_store_relaxed(&vq->ring.avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
}

bool vq_driver_enable_cb(struct vq_driver *vq)
{
	if (vq->broken)
		return true;
	vq->cb_disabled = false;
	if (vq->event_idx)
		shm_store_relaxed(vq_used_event(&vq->ring), vq->last_used);
	else
		shm_store_relaxed(&vq->ring.avail->flags, 0);
	/* Orders the used_event/flags store before the used->idx load. The device
	 * stores used->idx, fences, then reads used_event/flags: at least one of us
	 * sees the other's store, so either we find the entry here or it notifies.
	 * No lost notification: property (c); model F_ENABLE_CB_SYNC. The acquire of
	 * the load is not needed by any property (model F_ENABLE_CB_ACQ=0 still
	 * verifies): the answer only says whether to poll, and vq_driver_get_used()
	 * reads used->idx again with its own acquire. Kept: it costs nothing next to
	 * the full fence and keeps every used->idx load an acquire. */
	fence_sync();
	return shm_load_acquire(&vq->ring.used->idx) != vq->last_used;
}

/* ---- Device side ------------------------------------------------------------- */

/*@ requires mem_ok((struct vq_mem_region *)mem, n_mem);
    assigns \nothing;
    ensures \result != \null ==>
      in_region((struct vq_mem_region *)mem, n_mem, \result, len) &&
      \valid_read((uint8_t *)\result + (0 .. len - 1)); */
void *vq_translate(const struct vq_mem_region *mem, unsigned int n_mem, uint64_t gpa,
		   uint64_t len)
{
	/*@ loop invariant 0 <= i <= n_mem;
	    loop assigns i;
	    loop variant n_mem - i; */
	for (unsigned int i = 0; i < n_mem; i++) {
		const struct vq_mem_region *r = &mem[i];
		uint64_t off;

		if (gpa < r->gpa)
			continue;
		off = gpa - r->gpa;
		/* Written so that nothing can overflow: off <= size, then len fits in
		 * what is left. */
		if (off > r->size || len > r->size - off)
			continue;
		return (uint8_t *)r->host + (size_t)off;
	}
	return 0;
}

int vq_device_init(struct vq_device *vq, const struct vq_ring *ring,
		   const struct vq_mem_region *mem, unsigned int n_mem, uint64_t *inflight,
		   uint64_t features, uint16_t base)
{
	if (!vq || !valid_ring(ring) || !inflight || (n_mem && !mem))
		return -RT_EINVAL;
	*vq = (struct vq_device){
		.ring = *ring,
		.mem = mem,
		.n_mem = n_mem,
		.inflight = inflight,
		.last_avail = base,
		.avail_idx = base,
		.used_idx = base,
		.published = base,
		.signalled = base,
		.event_idx = (features >> VIRTIO_F_EVENT_IDX) & 1,
		.indirect = (features >> VIRTIO_F_INDIRECT_DESC) & 1,
	};
	for (unsigned int i = 0; i < VQ_INFLIGHT_WORDS(ring->num); i++)
		inflight[i] = 0;
	return 0;
}

/*@ requires \valid(vq);
    assigns vq->broken, vq->broken_at;
    ensures \result == err && vq->broken == err; */
static int dev_fail_at(struct vq_device *vq, int err, int line)
{
	vq->broken = err;
	vq->broken_at = line;
	return err;
}
#define dev_fail(vq, err) dev_fail_at(vq, err, __LINE__)

/* The chain names [host, host + len), which the device may not touch yet: nothing is
 * consumed and the ring stays usable; the caller learns where from vq->want. */
/*@ requires \valid(vq);
    assigns vq->want, vq->want_len;
    ensures \result == VQ_NOT_READY; */
static int not_ready(struct vq_device *vq, const void *host, uint64_t len)
{
	vq->want = host;
	vq->want_len = len;
	return VQ_NOT_READY;
}

/* A descriptor in host order, in private memory. */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Copies descriptor i of a table into private memory, reading each byte once. The
 * main table is 16-byte aligned (checked at init); an indirect table can be anywhere,
 * so this reads bytes rather than forming a possibly misaligned struct pointer. */
/*@ requires \valid(d) && i < VQ_MAX_SIZE;
    requires \valid_read(table + (16 * i .. 16 * i + 15));
    assigns *d; */
static void desc_read_once(struct desc *d, const uint8_t *table, unsigned int i)
{
	const volatile uint8_t *s = table + (size_t)i * sizeof(struct vring_desc);
	uint8_t b[sizeof(struct vring_desc)];

	/*@ loop invariant 0 <= k <= sizeof(b);
	    loop assigns k, b[0 .. sizeof(b) - 1];
	    loop variant sizeof(b) - k; */
	for (unsigned int k = 0; k < sizeof(b); k++)
		b[k] = s[k];
	d->addr = le64_load(b);
	d->len = le32_load(b + 8);
	d->flags = le16_load(b + 12);
	d->next = le16_load(b + 14);
}

/*@ requires \valid_read(vq) && head < vq->ring.num;
    requires \valid_read(vq->inflight + head / 64);
    assigns \nothing; */
static bool inflight_test(const struct vq_device *vq, uint16_t head)
{
	return (vq->inflight[head / 64u] >> (head % 64u)) & 1u;
}

/*@ requires \valid_read(vq) && head < vq->ring.num;
    requires \valid(vq->inflight + head / 64) && \separated(vq, vq->inflight + head / 64);
    assigns vq->inflight[head / 64]; */
static void inflight_flip(struct vq_device *vq, uint16_t head)
{
	vq->inflight[head / 64u] ^= (uint64_t)1 << (head % 64u);
}

/* Points seg[n] at descriptor d's buffer, translated through the memory table: false
 * when the buffer lies in no single region. seg[0 .. n - 1] stay as they are. */
/*@ requires \valid_read(d) && \valid(seg + n) && mem_ok((struct vq_mem_region *)mem, n_mem);
    requires \separated(seg + n, mem + (0 .. n_mem - 1), d);
    assigns seg[n].host, seg[n].len, seg[n].writable;
    ensures \forall integer k; 0 <= k < n ==>
      seg[k].host == \old(seg[k].host) && seg[k].len == \old(seg[k].len);
    ensures \result ==> seg[n].len == d->len &&
      in_region((struct vq_mem_region *)mem, n_mem, seg[n].host, seg[n].len); */
static bool seg_set(struct vq_seg *seg, unsigned int n, const struct vq_mem_region *mem,
		    unsigned int n_mem, const struct desc *d)
{
	struct vq_seg *s = &seg[n];

	s->host = vq_translate(mem, n_mem, d->addr, d->len);
	/*@ assert \forall integer j; 0 <= j < n_mem ==>
	      mem[j].host == \at(mem[j].host, Pre) && mem[j].size == \at(mem[j].size, Pre); */
	if (!s->host)
		return false;
	s->len = d->len;
	s->writable = d->flags & VRING_DESC_F_WRITE;
	return true;
}

/* Walks the chain at head into c, its segments into seg[]. Everything read from the
 * ring is copied once into private memory (d) and checked there before use. c is
 * written at the end, and only for a good chain. */
/*@ requires \valid(vq) && 1 <= vq->ring.num <= VQ_MAX_SIZE && head < vq->ring.num;
    requires \valid_read((uint8_t *)vq->ring.desc + (0 .. 16 * vq->ring.num - 1));
    requires mem_ok(vq->mem, vq->n_mem);
    requires \valid(c) && \valid(seg + (0 .. max_seg - 1));
    requires \separated(c, seg + (0 .. max_seg - 1), vq, vq->mem + (0 .. vq->n_mem - 1));
    assigns vq->broken, vq->broken_at, vq->want, vq->want_len, *c, seg[0 .. max_seg - 1];
    ensures \result == 0 || \result < 0;
    ensures \result == 0 ==> c->head == head && c->seg == seg;
    ensures \result == 0 ==> 0 <= c->n_out <= c->n_seg <= max_seg;
    ensures \result == 0 ==> \forall integer k; 0 <= k < c->n_seg ==>
      in_region{Pre}(\old(vq->mem), \old(vq->n_mem), seg[k].host, seg[k].len); */
static int walk_chain(struct vq_device *vq, uint16_t head, struct vq_chain *c,
		      struct vq_seg *seg, unsigned int max_seg)
{
	const struct vq_mem_region *mem = vq->mem;
	const unsigned int n_mem = vq->n_mem;
	const uint8_t *table = (const uint8_t *)vq->ring.desc;
	unsigned int table_n = vq->ring.num, i = head, hops = 0, n_seg = 0, n_out = 0;
	uint64_t out_len = 0, in_len = 0;
	bool indirect = false;
	struct desc d;

	/* The walk ends within the table's size: hops counts up to table_n, and only the
	 * first hop may switch, once, to an indirect table of at most VQ_MAX_SIZE. */
	/*@ loop invariant 0 <= hops <= table_n <= VQ_MAX_SIZE && i < table_n;
	    loop invariant mem == \at(vq->mem, Pre) && n_mem == \at(vq->n_mem, Pre);
	    loop invariant \forall integer j; 0 <= j < n_mem ==>
	      mem[j].host == \at(vq->mem[j].host, Pre) &&
	      mem[j].size == \at(vq->mem[j].size, Pre);
	    loop invariant mem_ok((struct vq_mem_region *)mem, n_mem);
	    loop invariant indirect ==>
	      in_region{Pre}((struct vq_mem_region *)mem, n_mem, (void *)table, 16 * table_n);
	    loop invariant \valid_read(table + (0 .. 16 * table_n - 1));
	    loop invariant 0 <= n_out <= n_seg <= max_seg;
	    loop invariant out_len <= UINT32_MAX && in_len <= UINT32_MAX;
	    loop invariant \forall integer k; 0 <= k < n_seg ==>
	      in_region{Pre}((struct vq_mem_region *)mem, n_mem, seg[k].host, seg[k].len);
	    loop assigns hops, i, table, table_n, indirect, d, out_len, in_len, n_seg, n_out,
	                 seg[0 .. max_seg - 1], vq->broken, vq->broken_at, vq->want,
	                 vq->want_len;
	    loop variant (indirect ? 0 : 65536) + table_n - hops; */
	for (;;) {
		/* No chain visits more descriptors than its table holds. */
		if (++hops > table_n)
			return dev_fail(vq, -RT_ELOOP);
		desc_read_once(&d, table, i);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			/* Only a chain's sole descriptor may point at a table (INDIRECT
			 * excludes NEXT, virtio 1.2 2.7.5.3.1), and tables don't nest. */
			if (!vq->indirect || indirect || hops != 1 ||
			    (d.flags & VRING_DESC_F_NEXT) || d.len == 0 ||
			    d.len % sizeof(struct vring_desc) != 0 ||
			    d.len / sizeof(struct vring_desc) > VQ_MAX_SIZE)
				return dev_fail(vq, -RT_EINVAL);
			table = vq_translate(mem, n_mem, d.addr, d.len);
			if (!table)
				return dev_fail(vq, -RT_EFAULT);
			if (!vq_mem_ready(mem, n_mem, table, d.len))
				return not_ready(vq, table, d.len);
			/*@ assert in_region{Pre}((struct vq_mem_region *)mem, n_mem,
			                          (void *)table, d.len); */
			table_n = d.len / sizeof(struct vring_desc);
			indirect = true;
			i = 0;
			hops = 0;
			continue;
		}
		if (d.flags & VRING_DESC_F_WRITE) {
			in_len += d.len;
		} else {
			if (n_seg > n_out)
				return dev_fail(vq, -RT_EINVAL); /* readable after writable */
			out_len += d.len;
			n_out++;
		}
		if (n_seg == max_seg || out_len > UINT32_MAX || in_len > UINT32_MAX)
			return dev_fail(vq, -RT_E2BIG);
		if (!seg_set(seg, n_seg, mem, n_mem, &d))
			return dev_fail(vq, -RT_EFAULT);
		if (!vq_mem_ready(mem, n_mem, seg[n_seg].host, seg[n_seg].len))
			return not_ready(vq, seg[n_seg].host, seg[n_seg].len);
		/*@ assert in_region{Pre}((struct vq_mem_region *)mem, n_mem, seg[n_seg].host,
		                          seg[n_seg].len); */
		n_seg++;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= table_n)
			return dev_fail(vq, -RT_EINVAL);
		i = d.next;
	}
	c->head = head;
	c->n_seg = n_seg;
	c->n_out = n_out;
	c->out_len = (uint32_t)out_len;
	c->in_len = (uint32_t)in_len;
	c->seg = seg;
	return 0;
}

/*@ requires dev_ok(vq) && vq->broken <= 0;
    requires \valid(c) && \valid(seg + (0 .. max_seg - 1));
    requires \separated(c, seg + (0 .. max_seg - 1), vq,
                        vq->inflight + (0 .. (vq->ring.num + 63) / 64 - 1),
                        vq->mem + (0 .. vq->n_mem - 1));
    assigns vq->last_avail, vq->avail_idx, vq->n_inflight, vq->broken, vq->broken_at,
            vq->want, vq->want_len,
            vq->inflight[0 .. (vq->ring.num + 63) / 64 - 1], *c, seg[0 .. max_seg - 1];
    ensures \result == 0 || \result == 1 || \result < 0;
    ensures \result == 1 ==> c->head < vq->ring.num && c->seg == seg; */
int vq_device_pop(struct vq_device *vq, struct vq_chain *c, struct vq_seg *seg,
		  unsigned int max_seg)
{
	uint16_t head;
	int err;

	if (vq->broken)
		return vq->broken;
	if (vq->last_avail == vq->avail_idx) {
		/* Acquire: the slots and descriptors this index covers are read only
		 * after it: property (a); model F_AVAIL_ACQ. Read once; a driver may publish at most num entries ahead of
		 * what we consumed (an index moved backwards shows up as far ahead). */
		uint16_t idx = shm_load_acquire(&vq->ring.avail->idx);

		if ((uint16_t)(idx - vq->last_avail) > vq->ring.num)
			return dev_fail(vq, -RT_EINVAL);
		vq->avail_idx = idx;
		if (idx == vq->last_avail)
			return 0;
	}
	/* The slot: last_avail & (num - 1), written as a remainder (num is a power of
	 * two) so that the provers see it is below num. */
	head = read_once16(&vq->ring.avail->ring[vq->last_avail % vq->ring.num]);
	if (head >= vq->ring.num)
		return dev_fail(vq, -RT_EINVAL);
	if (inflight_test(vq, head))
		return dev_fail(vq, -RT_EBUSY);
	err = walk_chain(vq, head, c, seg, max_seg);
	if (err)
		return err;
	/*@ assert c->n_out <= c->n_seg <= max_seg &&
	      \forall integer k; 0 <= k < c->n_seg ==>
	        in_region{Pre}(vq->mem, vq->n_mem, seg[k].host, seg[k].len); */
	inflight_flip(vq, head);
	vq->n_inflight++;
	vq->last_avail++;
	return 1;
}

/*@ requires \valid(vq) && \valid(&vq->ring.used->idx) && \separated(vq, &vq->ring.used->idx);
    assigns vq->published, vq->ring.used->idx;
    ensures vq->published == vq->used_idx; */
void vq_device_publish_used(struct vq_device *vq)
{
	if (vq->published == vq->used_idx)
		return;
	vq->published = vq->used_idx;
	/* Release: publishes every used element added since the last publish, and the
	 * caller's writes into those chains' buffers, before the one index store that
	 * covers them all: property (b); model F_USED_PUB. */
	shm_store_release(&vq->ring.used->idx, vq->used_idx);
}

/*@ requires dev_ok(vq);
    assigns vq->inflight[0 .. (vq->ring.num + 63) / 64 - 1], vq->n_inflight,
            vq->used_idx, vq->published, vq->ring.used->ring[0 .. vq->ring.num - 1],
            vq->ring.used->idx;
    ensures \result == 0 ==> head < vq->ring.num; */
int vq_device_add_used(struct vq_device *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem *e;

	if (vq->broken)
		return vq->broken;
	if (head >= vq->ring.num || !inflight_test(vq, head))
		return -RT_EINVAL;
	/* A driver that re-posts heads it has not yet seen completed could make the
	 * batch wrap onto its own unpublished slots: publish the full batch first. */
	if ((uint16_t)(vq->used_idx - vq->published) >= vq->ring.num)
		vq_device_publish_used(vq);
	inflight_flip(vq, head);
	vq->n_inflight--;
	/* The slot: used_idx & (num - 1), as a remainder like vq_device_pop's. Plain
	 * stores: the driver reads them only after the index that publishes them. */
	e = &vq->ring.used->ring[vq->used_idx % vq->ring.num];
	e->id = cpu_to_le32(head);
	e->len = cpu_to_le32(len);
	vq->used_idx++;
	return 0;
}

/*@ requires dev_ok(vq);
    assigns vq->inflight[0 .. (vq->ring.num + 63) / 64 - 1], vq->n_inflight,
            vq->used_idx, vq->published, vq->ring.used->ring[0 .. vq->ring.num - 1],
            vq->ring.used->idx;
    ensures \result == 0 ==> head < vq->ring.num; */
int vq_device_push(struct vq_device *vq, uint16_t head, uint32_t len)
{
	int err = vq_device_add_used(vq, head, len);

	if (err)
		return err;
	vq_device_publish_used(vq);
	return 0;
}

/*@ requires dev_ok(vq);
    assigns vq->signalled, vq->signalled_valid, vq->published, vq->ring.used->idx;
    ensures dev_ok(vq); */
bool vq_device_should_notify(struct vq_device *vq)
{
	uint16_t old = vq->signalled, new = vq->used_idx;
	bool first = !vq->signalled_valid;

	if (vq->broken || old == new)
		return false;
	/* The decision covers only what the driver can see: the batch first. */
	vq_device_publish_used(vq);
	vq->signalled = new;
	vq->signalled_valid = true;
	/* Orders the used->idx store (just above, or an earlier publish's) before the
	 * used_event/flags load, and so the whole batch since the last decision. The driver,
	 * about to sleep, stores used_event (or clears NO_INTERRUPT), then fences, then
	 * re-reads used->idx: at least one of us sees the other's store, so either it
	 * finds the entry or we notify. No lost notification: property (c); model
	 * F_NOTIFY_SYNC. */
	fence_sync();
	if (!vq->event_idx)
		return !(shm_load_relaxed(&vq->ring.avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	/* After (re)start we do not know what the driver last heard: tell it once. */
	if (first)
		return true;
	return vq_need_event(shm_load_relaxed(vq_used_event(&vq->ring)), new, old);
}

/*@ requires dev_ok(vq);
    assigns vq->ring.used->flags; */
void vq_device_disable_notify(struct vq_device *vq)
{
	/* With EVENT_IDX, leaving avail_event where it is suffices: the driver kicks
	 * only when its index passes it, at most once more. */
	if (!vq->event_idx)
		shm_store_relaxed(&vq->ring.used->flags, VRING_USED_F_NO_NOTIFY);
}

/*@ requires dev_ok(vq);
    assigns vq->ring.used->flags, *(shm_le16 *)&vq->ring.used->ring[vq->ring.num]; */
bool vq_device_enable_notify(struct vq_device *vq)
{
	if (vq->broken)
		return true;
	if (vq->event_idx)
		shm_store_relaxed(vq_avail_event(&vq->ring), vq->avail_idx);
	else
		shm_store_relaxed(&vq->ring.used->flags, 0);
	/* Orders the avail_event/flags store before the avail->idx load. The driver
	 * stores avail->idx, fences, then reads avail_event/flags: at least one of us
	 * sees the other's store, so either we find the entry here or it kicks. No
	 * lost kick: property (c); model F_ENABLE_NOTIFY_SYNC. */
	fence_sync();
	return shm_load_relaxed(&vq->ring.avail->idx) != vq->last_avail;
}
