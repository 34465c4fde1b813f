/* Split virtqueue, driver and device over one ring in one process: layout, data
 * integrity, out-of-order completion, index wrap, notification suppression and the
 * absence of lost wake-ups, indirect descriptors, and every hostile input the device
 * side must survive. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "virtq.h"
#include "vqenv.h"

#define F_EVENT_IDX (1ull << VIRTIO_F_EVENT_IDX)
#define F_INDIRECT (1ull << VIRTIO_F_INDIRECT_DESC)

/* xorshift: reproducible pseudo-random choices. */
static uint64_t rng_state = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

/* ---- Raw ring writes: what a (possibly hostile) driver puts in memory ---------- */

static void raw_desc(struct vqenv *e, struct vring_desc *table, unsigned int i, uint64_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = (uint8_t *)(table ? table : e->ring.desc) + 16u * i;

	le64_store(d, addr);
	le32_store(d + 8, len);
	le16_store(d + 12, flags);
	le16_store(d + 14, next);
}

static uint16_t raw_avail_idx(struct vqenv *e)
{
	return le16_load(&e->ring.avail->idx);
}

static void raw_publish(struct vqenv *e, uint16_t head)
{
	uint16_t idx = raw_avail_idx(e);

	le16_store(&e->ring.avail->ring[idx & (e->num - 1)], head);
	le16_store(&e->ring.avail->idx, (uint16_t)(idx + 1));
}

/* A valid readable buffer in the buffer area. */
static uint64_t buf_gpa(struct vqenv *e, unsigned int i)
{
	return vqenv_gpa(e, vqenv_buf(e, i));
}

/* The ring is broken with err, and stays so whatever is called next. */
static void assert_broken(struct vqenv *e, int err)
{
	struct vq_seg seg[4];
	struct vq_chain c;

	assert_int_equal(vq_device_broken(&e->dev), err);
	assert_true(e->dev.broken_at > 0);
	assert_int_equal(vq_device_pop(&e->dev, &c, seg, 4), err);
	assert_int_equal(vq_device_push(&e->dev, 0, 0), err);
	assert_true(vq_device_enable_notify(&e->dev));
	assert_false(vq_device_should_notify(&e->dev));
	/* A correct chain published now does not revive it. */
	raw_desc(e, NULL, 0, buf_gpa(e, 0), 8, 0, 0);
	raw_publish(e, 0);
	assert_int_equal(vq_device_pop(&e->dev, &c, seg, 4), err);
	assert_int_equal(vq_device_broken(&e->dev), err);
}

static int pop(struct vqenv *e, struct vq_chain *c, struct vq_seg *seg, unsigned int max)
{
	return vq_device_pop(&e->dev, c, seg, max);
}

/* ---- Layout and set-up --------------------------------------------------------- */

static void layout_matches_spec(void **state)
{
	static const unsigned int nums[] = { 1, 2, 8, 256, 32768 };
	struct vq_layout l;

	(void)state;
	for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
		unsigned int n = nums[k];

		assert_int_equal(vq_layout(n, &l), 0);
		assert_int_equal(l.desc_off, 0);
		assert_int_equal(l.desc_size, 16u * n);
		assert_int_equal(l.avail_off, 16u * n);
		assert_int_equal(l.avail_size, 6u + 2u * n);
		assert_int_equal(l.used_off % 4, 0);
		assert_true(l.used_off >= l.avail_off + l.avail_size);
		assert_true(l.used_off < l.avail_off + l.avail_size + 4);
		assert_int_equal(l.used_size, 6u + 8u * n);
		assert_int_equal(l.total, l.used_off + l.used_size);
	}
	assert_int_equal(vq_layout(0, &l), -EINVAL);
	assert_int_equal(vq_layout(3, &l), -EINVAL);
	assert_int_equal(vq_layout(65536, &l), -EINVAL);
	assert_int_equal(vq_layout(24, &l), -EINVAL);
}

static void init_rejects_bad_rings(void **state)
{
	struct vqenv *e = vqenv_new(8, 0, 8, 64);
	struct vq_ring r;
	struct vq_driver d;
	struct vq_device v;

	(void)state;
	assert_non_null(e);
	r = e->ring;
	r.num = 6;
	assert_int_equal(vq_driver_init(&d, &r, e->slot, 0), -EINVAL);
	assert_int_equal(vq_device_init(&v, &r, &e->region, 1, e->inflight, 0, 0), -EINVAL);
	r = e->ring;
	r.desc = (struct vring_desc *)(void *)((uint8_t *)r.desc + 8);
	assert_int_equal(vq_driver_init(&d, &r, e->slot, 0), -EINVAL);
	assert_int_equal(vq_device_init(&v, &r, &e->region, 1, e->inflight, 0, 0), -EINVAL);
	r = e->ring;
	r.used = (struct vring_used *)(void *)((uint8_t *)r.used + 2);
	assert_int_equal(vq_device_init(&v, &r, &e->region, 1, e->inflight, 0, 0), -EINVAL);
	r = e->ring;
	assert_int_equal(vq_device_init(&v, &r, &e->region, 1, NULL, 0, 0), -EINVAL);
	assert_int_equal(vq_ring_at(&r, e->mem + 4, 8), -EINVAL);
	vqenv_free(e);
}

static void translate_bounds(void **state)
{
	uint8_t a[64], b[64];
	const struct vq_mem_region mem[] = {
		{ 0x1000, 64, a, NULL },
		{ 0x1040, 64, b, NULL }, /* adjacent to the first: no range may span both */
		{ UINT64_MAX - 63, 64, a, NULL }, /* ends exactly at 2^64 */
	};

	(void)state;
	assert_ptr_equal(vq_translate(mem, 3, 0x1000, 64), a);
	assert_ptr_equal(vq_translate(mem, 3, 0x1010, 16), a + 16);
	assert_ptr_equal(vq_translate(mem, 3, 0x1040, 1), b);
	assert_ptr_equal(vq_translate(mem, 3, 0x107f, 1), b + 63);
	assert_null(vq_translate(mem, 3, 0x1030, 32)); /* spans two regions */
	assert_null(vq_translate(mem, 3, 0x0fff, 2));
	assert_null(vq_translate(mem, 3, 0x1080, 1));
	assert_null(vq_translate(mem, 3, 0x1000, 129));
	assert_null(vq_translate(mem, 3, 0x1001, UINT64_MAX)); /* gpa + len overflows */
	assert_null(vq_translate(mem, 3, 0x1000, UINT64_MAX));
	assert_ptr_equal(vq_translate(mem, 3, UINT64_MAX - 63, 64), a);
	assert_ptr_equal(vq_translate(mem, 3, UINT64_MAX, 1), a + 63);
	assert_null(vq_translate(mem, 3, UINT64_MAX, 2));
	assert_null(vq_translate(mem, 3, UINT64_MAX - 7, 16));
	assert_null(vq_translate(mem, 0, 0x1000, 1));
}

/* ---- Data path ---------------------------------------------------------------- */

static void roundtrip_one_chain(void **state)
{
	struct vqenv *e = vqenv_new(8, 0, 8, 64);
	struct vq_seg seg[8];
	struct vq_chain c;
	void *tok;
	uint32_t len;

	(void)state;
	assert_non_null(e);
	memcpy(vqenv_buf(e, 0), "header..", 8);
	memcpy(vqenv_buf(e, 1), "payload", 7);
	struct vq_buf out[] = { { buf_gpa(e, 0), 8 }, { buf_gpa(e, 1), 7 } };
	struct vq_buf in[] = { { buf_gpa(e, 2), 64 } };

	assert_int_equal(vq_driver_add(&e->drv, out, 2, in, 1, e), 0);
	assert_int_equal(vq_driver_num_free(&e->drv), 5);
	/* Nothing is visible before publishing. */
	assert_int_equal(pop(e, &c, seg, 8), 0);
	assert_true(vq_driver_publish(&e->drv));
	assert_false(vq_driver_publish(&e->drv)); /* nothing new: no kick */

	assert_int_equal(pop(e, &c, seg, 8), 1);
	assert_int_equal(c.n_seg, 3);
	assert_int_equal(c.n_out, 2);
	assert_int_equal(c.out_len, 15);
	assert_int_equal(c.in_len, 64);
	assert_ptr_equal(seg[0].host, vqenv_buf(e, 0));
	assert_ptr_equal(seg[2].host, vqenv_buf(e, 2));
	assert_false(seg[0].writable);
	assert_false(seg[1].writable);
	assert_true(seg[2].writable);
	assert_memory_equal(seg[1].host, "payload", 7);
	assert_int_equal(vq_device_inflight(&e->dev), 1);
	assert_int_equal(pop(e, &c, seg, 8), 0);

	assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 0);
	memcpy(seg[2].host, "reply", 5);
	assert_int_equal(vq_device_push(&e->dev, c.head, 5), 0);
	assert_int_equal(vq_device_inflight(&e->dev), 0);
	assert_true(vq_device_should_notify(&e->dev));
	assert_false(vq_device_should_notify(&e->dev)); /* nothing new */
	assert_int_equal(vq_device_push(&e->dev, c.head, 5), -EINVAL); /* not in flight */
	assert_int_equal(vq_device_broken(&e->dev), 0);           /* caller bug only */

	assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 1);
	assert_ptr_equal(tok, e);
	assert_int_equal(len, 5);
	assert_memory_equal(vqenv_buf(e, 2), "reply", 5);
	assert_int_equal(vq_driver_num_free(&e->drv), 8);
	assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 0);
	vqenv_free(e);
}

static void add_errors(void **state)
{
	struct vqenv *e = vqenv_new(4, 0, 8, 64);
	struct vq_buf b[5];
	int tok;

	(void)state;
	assert_non_null(e);
	for (unsigned int i = 0; i < 5; i++)
		b[i] = (struct vq_buf){ buf_gpa(e, i), 64 };
	assert_int_equal(vq_driver_add(&e->drv, b, 0, b, 0, &tok), -EINVAL);
	assert_int_equal(vq_driver_add(&e->drv, b, 1, NULL, 0, NULL), -EINVAL);
	assert_int_equal(vq_driver_add(&e->drv, b, 5, NULL, 0, &tok), -ENOSPC);
	assert_int_equal(vq_driver_add(&e->drv, b, 3, b, 2, &tok), -ENOSPC);
	assert_int_equal(vq_driver_add_indirect(&e->drv, (struct vring_desc *)(void *)vqenv_buf(e, 0),
						buf_gpa(e, 0), b, 1, NULL, 0, &tok),
			 -EINVAL); /* INDIRECT_DESC not negotiated */
	assert_int_equal(vq_driver_add(&e->drv, b, 4, NULL, 0, &tok), 0);
	assert_int_equal(vq_driver_add(&e->drv, b, 1, NULL, 0, &tok), -ENOSPC);
	assert_int_equal(vq_driver_num_free(&e->drv), 0);
	vqenv_free(e);
}

/* Chains complete in an order unrelated to the order they were made available in,
 * and long after; descriptors are reused correctly afterwards. */
static void out_of_order_completion(void **state)
{
	struct vqenv *e = vqenv_new(8, F_EVENT_IDX, 16, 32);
	struct vq_seg seg[8];
	struct vq_chain c[8];
	uint16_t order[8];

	(void)state;
	assert_non_null(e);
	for (unsigned int round = 0; round < 50; round++) {
		unsigned int n = 0;

		/* Chains of one or two descriptors until the table is full. */
		while (vq_driver_num_free(&e->drv) >= 2) {
			unsigned int id = n;
			struct vq_buf out = { buf_gpa(e, 2 * id), 32 };
			struct vq_buf in = { buf_gpa(e, 2 * id + 1), 32 };

			memset(vqenv_buf(e, 2 * id), (int)(round * 8 + id), 32);
			assert_int_equal(vq_driver_add(&e->drv, &out, 1, &in, id % 2,
						       (void *)(uintptr_t)(id + 1)), 0);
			n++;
		}
		vq_driver_publish(&e->drv);
		for (unsigned int k = 0; k < n; k++) {
			assert_int_equal(pop(e, &c[k], seg, 2), 1);
			assert_int_equal(c[k].n_seg, 1 + k % 2);
			assert_int_equal(((uint8_t *)seg[0].host)[0], (uint8_t)(round * 8 + k));
			order[k] = (uint16_t)k;
		}
		assert_int_equal(pop(e, &c[0], seg, 1), 0);
		for (unsigned int k = n - 1; k > 0; k--) { /* shuffle */
			unsigned int j = rnd(k + 1);
			uint16_t t = order[k];

			order[k] = order[j];
			order[j] = t;
		}
		for (unsigned int k = 0; k < n; k++) {
			unsigned int id = order[k];
			void *tok;
			uint32_t len;

			assert_int_equal(vq_device_push(&e->dev, c[id].head, id % 2 ? 7 : 0), 0);
			assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 1);
			assert_int_equal((uintptr_t)tok, id + 1);
			assert_int_equal(len, id % 2 ? 7 : 0);
		}
		assert_int_equal(vq_driver_num_free(&e->drv), 8);
		assert_int_equal(vq_device_inflight(&e->dev), 0);
	}
	vqenv_free(e);
}

/* Far more than 2^16 buffers through a queue of 8: every 16-bit index wraps many
 * times, with chains of one to three descriptors and completions out of order. */
static void index_wrap(uint64_t features)
{
	enum { NUM = 8, TOTAL = 200000 };
	struct vqenv *e = vqenv_new(NUM, features, NUM, 16);
	struct vq_seg seg[4];
	struct vq_chain held[NUM];
	unsigned int nheld = 0;
	uint64_t sent = 0, done = 0;

	assert_non_null(e);
	while (done < TOTAL) {
		unsigned int ndesc = 1 + rnd(3);
		struct vq_chain c;
		int r;

		if (sent < TOTAL && vq_driver_num_free(&e->drv) >= ndesc) {
			/* Each buffer carries its sequence number. */
			struct vq_buf b[3];
			uint16_t head = e->drv.free_head;

			for (unsigned int k = 0; k < ndesc; k++) {
				uint16_t slot = k ? e->slot[head].next : head;

				b[k] = (struct vq_buf){ buf_gpa(e, slot), 16 };
				memcpy(vqenv_buf(e, slot), &sent, sizeof(sent));
				head = slot;
			}
			assert_int_equal(vq_driver_add(&e->drv, b, ndesc, NULL, 0,
						       (void *)(uintptr_t)(sent + 1)), 0);
			sent++;
			if (rnd(3) == 0)
				vq_driver_publish(&e->drv);
			continue;
		}
		vq_driver_publish(&e->drv);
		while ((r = pop(e, &c, seg, 4)) == 1) {
			uint64_t v;

			memcpy(&v, seg[0].host, sizeof(v));
			assert_int_equal(v, done + nheld);
			held[nheld++] = c;
		}
		assert_int_equal(r, 0);
		/* Complete the held chains in a random order. */
		while (nheld) {
			unsigned int j = rnd(nheld);
			void *tok;
			uint32_t len;

			assert_int_equal(vq_device_push(&e->dev, held[j].head, 0), 0);
			held[j] = held[--nheld];
			assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 1);
			assert_true((uintptr_t)tok >= 1 && (uintptr_t)tok <= sent);
			done++;
		}
	}
	assert_int_equal(vq_driver_num_free(&e->drv), NUM);
	assert_int_equal(e->dev.last_avail, (uint16_t)TOTAL);
	assert_int_equal(le16_load(&e->ring.used->idx), (uint16_t)TOTAL);
	vqenv_free(e);
}

static void wrap_200000_through_8(void **state)
{
	(void)state;
	index_wrap(0);
}

static void wrap_200000_through_8_event_idx(void **state)
{
	(void)state;
	index_wrap(F_EVENT_IDX);
}

/* ---- Notifications ------------------------------------------------------------- */

static void add_one(struct vqenv *e, unsigned int buf)
{
	struct vq_buf b = { buf_gpa(e, buf), 8 };

	assert_int_equal(vq_driver_add(&e->drv, NULL, 0, &b, 1, e), 0);
}

static void event_idx_suppresses_kicks(void **state)
{
	struct vqenv *e = vqenv_new(8, F_EVENT_IDX, 8, 16);
	struct vq_seg seg[1];
	struct vq_chain c;

	(void)state;
	assert_non_null(e);
	/* The device wants to hear about entry 0 (avail_event = 0). */
	assert_false(vq_device_enable_notify(&e->dev));
	add_one(e, 0);
	assert_true(vq_driver_publish(&e->drv));
	/* The device has not caught up: further entries need no kick. */
	add_one(e, 1);
	assert_false(vq_driver_publish(&e->drv));
	add_one(e, 2);
	add_one(e, 3);
	assert_false(vq_driver_publish(&e->drv));
	/* It pops everything and sleeps again: the next entry kicks, once. */
	for (int k = 0; k < 4; k++)
		assert_int_equal(pop(e, &c, seg, 1), 1);
	assert_false(vq_device_enable_notify(&e->dev));
	add_one(e, 4);
	assert_true(vq_driver_publish(&e->drv));
	add_one(e, 5);
	assert_false(vq_driver_publish(&e->drv));
	/* Entries made available while the device re-enables: it sees them itself. */
	assert_int_equal(pop(e, &c, seg, 1), 1);
	add_one(e, 6);
	assert_false(vq_driver_publish(&e->drv));
	assert_true(vq_device_enable_notify(&e->dev));
	vqenv_free(e);
}

static void event_idx_suppresses_notifications(void **state)
{
	struct vqenv *e = vqenv_new(8, F_EVENT_IDX, 8, 16);
	struct vq_seg seg[1];
	struct vq_chain c[8];
	void *tok;
	uint32_t len;

	(void)state;
	assert_non_null(e);
	for (unsigned int i = 0; i < 8; i++)
		add_one(e, i);
	vq_driver_publish(&e->drv);
	for (unsigned int i = 0; i < 8; i++)
		assert_int_equal(pop(e, &c[i], seg, 1), 1);
	assert_false(vq_driver_enable_cb(&e->drv)); /* used_event = 0 */
	assert_int_equal(vq_device_push(&e->dev, c[0].head, 1), 0);
	assert_true(vq_device_should_notify(&e->dev));
	/* The driver has not looked yet: no more notifications. */
	assert_int_equal(vq_device_push(&e->dev, c[1].head, 1), 0);
	assert_false(vq_device_should_notify(&e->dev));
	assert_int_equal(vq_device_push(&e->dev, c[2].head, 1), 0);
	assert_false(vq_device_should_notify(&e->dev));
	/* It consumes all three; the next one is wanted again. */
	for (int k = 0; k < 3; k++)
		assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 1);
	assert_false(vq_driver_enable_cb(&e->drv));
	assert_int_equal(vq_device_push(&e->dev, c[3].head, 1), 0);
	assert_true(vq_device_should_notify(&e->dev));
	/* Disabled: nothing, however much completes. */
	assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 1);
	vq_driver_disable_cb(&e->drv);
	for (int k = 4; k < 7; k++) {
		assert_int_equal(vq_device_push(&e->dev, c[k].head, 1), 0);
		assert_false(vq_device_should_notify(&e->dev));
	}
	/* Re-enabling with entries pending says so: the caller polls, not sleeps. */
	assert_true(vq_driver_enable_cb(&e->drv));
	vqenv_free(e);
}

static void flags_suppress_without_event_idx(void **state)
{
	struct vqenv *e = vqenv_new(8, 0, 8, 16);
	struct vq_seg seg[1];
	struct vq_chain c;
	void *tok;
	uint32_t len;

	(void)state;
	assert_non_null(e);
	vq_device_disable_notify(&e->dev);
	add_one(e, 0);
	assert_false(vq_driver_publish(&e->drv));
	assert_true(vq_device_enable_notify(&e->dev)); /* the entry is there */
	assert_int_equal(pop(e, &c, seg, 1), 1);
	assert_false(vq_device_enable_notify(&e->dev));
	add_one(e, 1);
	assert_true(vq_driver_publish(&e->drv));

	vq_driver_disable_cb(&e->drv);
	assert_int_equal(vq_device_push(&e->dev, c.head, 0), 0);
	assert_false(vq_device_should_notify(&e->dev));
	assert_true(vq_driver_enable_cb(&e->drv));
	assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 1);
	assert_false(vq_driver_enable_cb(&e->drv));
	assert_int_equal(pop(e, &c, seg, 1), 1);
	assert_int_equal(vq_device_push(&e->dev, c.head, 0), 0);
	assert_true(vq_device_should_notify(&e->dev));
	vqenv_free(e);
}

/* Random interleavings of a driver and a device that sleep whenever they run out of
 * work and wake only when the other side's decision says so. If a kick or a
 * notification were ever suppressed wrongly, both sides would end up asleep with work
 * pending. */
static void no_lost_wakeup(uint64_t features)
{
	enum { NUM = 8, TOTAL = 100000 };
	struct vqenv *e = vqenv_new(NUM, features, NUM, 8);
	struct vq_chain held[NUM];
	unsigned int nheld = 0;
	bool dev_asleep = false, drv_asleep = false;
	uint64_t sent = 0, done = 0, kicks = 0, notifies = 0, steps = 0;

	assert_non_null(e);
	vq_driver_enable_cb(&e->drv);
	while (done < TOTAL) {
		assert_true(++steps < 50ull * TOTAL);
		if (dev_asleep && drv_asleep) {
			fail_msg("both sides asleep: sent %llu done %llu avail %u used %u",
				 (unsigned long long)sent, (unsigned long long)done,
				 raw_avail_idx(e), le16_load(&e->ring.used->idx));
		}
		if (!drv_asleep && rnd(2)) {
			/* Driver: add a few, publish (kick if told), reclaim, maybe sleep. */
			void *tok;
			uint32_t len;
			int r;

			for (unsigned int k = rnd(3); k && sent < TOTAL && vq_driver_num_free(&e->drv); k--) {
				add_one(e, 0);
				sent++;
			}
			if (vq_driver_publish(&e->drv)) {
				kicks++;
				dev_asleep = false;
			}
			while ((r = vq_driver_get_used(&e->drv, &tok, &len)) == 1)
				done++;
			assert_int_equal(r, 0);
			if ((sent == TOTAL || !vq_driver_num_free(&e->drv)) && done < TOTAL &&
			    !vq_driver_enable_cb(&e->drv))
				drv_asleep = true;
		} else if (!dev_asleep) {
			/* Device: pop some, complete some (any order), notify if told. */
			struct vq_seg seg[1];
			int r = 1;

			for (unsigned int k = rnd(4); k && r == 1; k--) {
				r = pop(e, &held[nheld], seg, 1);
				assert_true(r >= 0);
				nheld += (unsigned int)r;
			}
			for (unsigned int k = rnd(4); k && nheld; k--) {
				unsigned int j = rnd(nheld);

				assert_int_equal(vq_device_push(&e->dev, held[j].head, 8), 0);
				held[j] = held[--nheld];
			}
			if (vq_device_should_notify(&e->dev)) {
				notifies++;
				drv_asleep = false;
			}
			if (nheld == 0 && !vq_device_enable_notify(&e->dev))
				dev_asleep = true;
		}
	}
	/* Suppression did work: far fewer kicks and notifications than buffers. */
	assert_true(kicks < TOTAL);
	assert_true(notifies < TOTAL);
	print_message("# %llu buffers, %llu kicks, %llu notifications\n",
		      (unsigned long long)TOTAL, (unsigned long long)kicks,
		      (unsigned long long)notifies);
	vqenv_free(e);
}

static void no_lost_wakeup_event_idx(void **state)
{
	(void)state;
	no_lost_wakeup(F_EVENT_IDX);
}

static void no_lost_wakeup_flags(void **state)
{
	(void)state;
	no_lost_wakeup(0);
}

/* ---- Indirect descriptors ------------------------------------------------------ */

static void indirect_chain(void **state)
{
	struct vqenv *e = vqenv_new(4, F_INDIRECT, 16, 64);
	struct vring_desc *table = (struct vring_desc *)(void *)vqenv_buf(e, 13);
	struct vq_buf out[3], in[2];
	struct vq_seg seg[8];
	struct vq_chain c;
	void *tok;
	uint32_t len;

	(void)state;
	assert_non_null(e);
	for (unsigned int i = 0; i < 3; i++) {
		out[i] = (struct vq_buf){ buf_gpa(e, i), 10 + i };
		memset(vqenv_buf(e, i), 'a' + (int)i, 10 + i);
	}
	for (unsigned int i = 0; i < 2; i++)
		in[i] = (struct vq_buf){ buf_gpa(e, 3 + i), 64 };
	assert_int_equal(vq_driver_add_indirect(&e->drv, table, vqenv_gpa(e, table), out, 3,
						in, 2, &tok), 0);
	assert_int_equal(vq_driver_num_free(&e->drv), 3); /* one ring descriptor */
	/* A direct chain next to it. */
	assert_int_equal(vq_driver_add(&e->drv, out, 1, in, 1, &len), 0);
	assert_true(vq_driver_publish(&e->drv));

	assert_int_equal(pop(e, &c, seg, 8), 1);
	assert_int_equal(c.n_seg, 5);
	assert_int_equal(c.n_out, 3);
	assert_int_equal(c.out_len, 33);
	assert_int_equal(c.in_len, 128);
	for (unsigned int i = 0; i < 3; i++) {
		assert_ptr_equal(seg[i].host, vqenv_buf(e, i));
		assert_int_equal(seg[i].len, 10 + i);
		assert_int_equal(((uint8_t *)seg[i].host)[9], 'a' + i);
	}
	assert_true(seg[3].writable && seg[4].writable);
	assert_ptr_equal(seg[4].host, vqenv_buf(e, 4));
	assert_int_equal(vq_device_push(&e->dev, c.head, 100), 0);
	assert_int_equal(pop(e, &c, seg, 8), 1);
	assert_int_equal(c.n_seg, 2);
	assert_int_equal(vq_device_push(&e->dev, c.head, 1), 0);

	assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 1);
	assert_ptr_equal(tok, &tok);
	assert_int_equal(len, 100);
	assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 1);
	assert_ptr_equal(tok, &len);
	assert_int_equal(vq_driver_num_free(&e->drv), 4);
	vqenv_free(e);
}

/* An indirect table at an odd address, written by hand. */
static void indirect_misaligned_table(void **state)
{
	struct vqenv *e = vqenv_new(4, F_INDIRECT, 8, 64);
	struct vring_desc *table = (struct vring_desc *)(void *)(vqenv_buf(e, 7) + 3);
	struct vq_seg seg[4];
	struct vq_chain c;

	(void)state;
	assert_non_null(e);
	raw_desc(e, table, 0, buf_gpa(e, 0), 5, VRING_DESC_F_NEXT, 1);
	raw_desc(e, table, 1, buf_gpa(e, 1), 6, VRING_DESC_F_WRITE, 0);
	raw_desc(e, NULL, 2, vqenv_gpa(e, table), 32, VRING_DESC_F_INDIRECT, 0);
	raw_publish(e, 2);
	assert_int_equal(pop(e, &c, seg, 4), 1);
	assert_int_equal(c.head, 2);
	assert_int_equal(c.n_seg, 2);
	assert_int_equal(c.out_len, 5);
	assert_int_equal(c.in_len, 6);
	assert_ptr_equal(seg[1].host, vqenv_buf(e, 1));
	vqenv_free(e);
}

/* ---- Hostile drivers ----------------------------------------------------------- */

static struct vqenv *hostile_env(uint64_t features)
{
	struct vqenv *e = vqenv_new(8, features, 8, 64);

	assert_non_null(e);
	return e;
}

/* Pops with room for max segments (at most 64) and expects err. */
static void expect_pop_error_max(struct vqenv *e, int err, unsigned int max)
{
	struct vq_seg seg[64];
	struct vq_chain c;

	assert_int_equal(pop(e, &c, seg, max), err);
	assert_broken(e, err);
	vqenv_free(e);
}

static void expect_pop_error(struct vqenv *e, int err)
{
	expect_pop_error_max(e, err, 64);
}

static void hostile_head_out_of_range(void **state)
{
	struct vqenv *e = hostile_env(0);

	(void)state;
	raw_publish(e, 8);
	expect_pop_error(e, -EINVAL);
}

static void hostile_head_huge(void **state)
{
	struct vqenv *e = hostile_env(0);

	(void)state;
	raw_publish(e, 0xffff);
	expect_pop_error(e, -EINVAL);
}

static void hostile_next_out_of_range(void **state)
{
	struct vqenv *e = hostile_env(0);

	(void)state;
	raw_desc(e, NULL, 0, buf_gpa(e, 0), 8, VRING_DESC_F_NEXT, 8);
	raw_publish(e, 0);
	expect_pop_error(e, -EINVAL);
}

static void hostile_self_loop(void **state)
{
	struct vqenv *e = hostile_env(0);

	(void)state;
	raw_desc(e, NULL, 3, buf_gpa(e, 0), 8, VRING_DESC_F_NEXT, 3);
	raw_publish(e, 3);
	expect_pop_error(e, -ELOOP);
}

static void hostile_long_loop(void **state)
{
	struct vqenv *e = hostile_env(0);

	(void)state;
	/* 0 -> 1 -> ... -> 7 -> 0: each step valid, the chain endless. Writable
	 * segments so no rule other than the loop is broken. */
	for (unsigned int i = 0; i < 8; i++)
		raw_desc(e, NULL, i, buf_gpa(e, 0), 0, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
			 (uint16_t)((i + 1) % 8));
	raw_publish(e, 0);
	expect_pop_error(e, -ELOOP);
}

static void hostile_length_overflow(void **state)
{
	struct vqenv *e = hostile_env(0);
	uint8_t *big = e->mem;
	/* A region of 2^40 bytes the test never touches beyond its first buffer, so
	 * that each 4 GiB - 1 segment translates and only the sum overflows. */
	struct vq_mem_region huge = { 0, 1ull << 40, big, NULL };

	(void)state;
	e->dev.mem = &huge;
	raw_desc(e, NULL, 0, 0, UINT32_MAX, VRING_DESC_F_NEXT, 1);
	raw_desc(e, NULL, 1, 0, 2, 0, 0);
	raw_publish(e, 0);
	expect_pop_error(e, -E2BIG);
}

static void hostile_address_outside(void **state)
{
	struct vqenv *e = hostile_env(0);

	(void)state;
	raw_desc(e, NULL, 0, VQENV_GPA + e->mem_size, 8, 0, 0);
	raw_publish(e, 0);
	expect_pop_error(e, -EFAULT);
}

static void hostile_address_straddles_end(void **state)
{
	struct vqenv *e = hostile_env(0);

	(void)state;
	raw_desc(e, NULL, 0, VQENV_GPA + e->mem_size - 4, 8, VRING_DESC_F_WRITE, 0);
	raw_publish(e, 0);
	expect_pop_error(e, -EFAULT);
}

static void hostile_address_wraps(void **state)
{
	struct vqenv *e = hostile_env(0);

	(void)state;
	raw_desc(e, NULL, 0, UINT64_MAX - 3, 8, 0, 0);
	raw_publish(e, 0);
	expect_pop_error(e, -EFAULT);
}

static void hostile_avail_jump(void **state)
{
	struct vqenv *e = hostile_env(0);

	(void)state;
	raw_desc(e, NULL, 0, buf_gpa(e, 0), 8, 0, 0);
	le16_store(&e->ring.avail->idx, 9); /* num + 1 ahead */
	expect_pop_error(e, -EINVAL);
}

static void hostile_avail_backwards(void **state)
{
	struct vqenv *e = hostile_env(0);
	struct vq_seg seg[4];
	struct vq_chain c;

	(void)state;
	raw_desc(e, NULL, 0, buf_gpa(e, 0), 8, 0, 0);
	raw_publish(e, 0);
	assert_int_equal(pop(e, &c, seg, 4), 1);
	le16_store(&e->ring.avail->idx, 0);
	expect_pop_error(e, -EINVAL);
}

static void hostile_head_republished_in_flight(void **state)
{
	struct vqenv *e = hostile_env(0);
	struct vq_seg seg[4];
	struct vq_chain c;

	(void)state;
	raw_desc(e, NULL, 5, buf_gpa(e, 0), 8, 0, 0);
	raw_publish(e, 5);
	raw_publish(e, 5);
	assert_int_equal(pop(e, &c, seg, 4), 1);
	expect_pop_error(e, -EBUSY);
}

static void hostile_readable_after_writable(void **state)
{
	struct vqenv *e = hostile_env(0);

	(void)state;
	raw_desc(e, NULL, 0, buf_gpa(e, 0), 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	raw_desc(e, NULL, 1, buf_gpa(e, 1), 8, 0, 0);
	raw_publish(e, 0);
	expect_pop_error(e, -EINVAL);
}

static void hostile_too_many_segments(void **state)
{
	struct vqenv *e = hostile_env(0);

	(void)state;
	for (unsigned int i = 0; i < 5; i++)
		raw_desc(e, NULL, i, buf_gpa(e, i), 8, i < 4 ? VRING_DESC_F_NEXT : 0,
			 (uint16_t)(i + 1));
	raw_publish(e, 0);
	expect_pop_error_max(e, -E2BIG, 4); /* 5 segments, room for 4 */
}

static void hostile_indirect_not_negotiated(void **state)
{
	struct vqenv *e = hostile_env(0);

	(void)state;
	raw_desc(e, (struct vring_desc *)(void *)vqenv_buf(e, 1), 0, buf_gpa(e, 0), 8, 0, 0);
	raw_desc(e, NULL, 0, buf_gpa(e, 1), 16, VRING_DESC_F_INDIRECT, 0);
	raw_publish(e, 0);
	expect_pop_error(e, -EINVAL);
}

/* Indirect descriptors that break a rule, each on its own fresh ring. */
static void hostile_indirect_rules(void **state)
{
	enum { WITH_NEXT, NESTED, BAD_LEN, ZERO_LEN, NOT_HEAD, OUTSIDE, LOOP, NEXT_RANGE };
	static const int want[] = { -EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL,
				    -EFAULT, -ELOOP, -EINVAL };

	(void)state;
	for (int k = WITH_NEXT; k <= NEXT_RANGE; k++) {
		struct vqenv *e = hostile_env(F_INDIRECT);
		struct vring_desc *t = (struct vring_desc *)(void *)vqenv_buf(e, 1);
		uint64_t tg = buf_gpa(e, 1);
		uint32_t tlen = 32;
		uint16_t flags = VRING_DESC_F_INDIRECT;

		raw_desc(e, t, 0, buf_gpa(e, 0), 8, VRING_DESC_F_NEXT, 1);
		raw_desc(e, t, 1, buf_gpa(e, 0), 8, 0, 0);
		switch (k) {
		case WITH_NEXT:
			flags |= VRING_DESC_F_NEXT;
			break;
		case NESTED:
			raw_desc(e, t, 1, tg, 32, VRING_DESC_F_INDIRECT, 0);
			break;
		case BAD_LEN:
			tlen = 24;
			break;
		case ZERO_LEN:
			tlen = 0;
			break;
		case NOT_HEAD:
			raw_desc(e, NULL, 1, buf_gpa(e, 0), 8, VRING_DESC_F_NEXT, 0);
			raw_desc(e, NULL, 0, tg, tlen, flags, 0);
			raw_publish(e, 1);
			expect_pop_error(e, want[k]);
			continue;
		case OUTSIDE:
			tg = VQENV_GPA + e->mem_size - 16;
			break;
		case LOOP:
			raw_desc(e, t, 1, buf_gpa(e, 0), 8, VRING_DESC_F_NEXT, 0);
			break;
		case NEXT_RANGE:
			raw_desc(e, t, 1, buf_gpa(e, 0), 8, VRING_DESC_F_NEXT, 2);
			break;
		}
		raw_desc(e, NULL, 0, tg, tlen, flags, 1);
		raw_publish(e, 0);
		expect_pop_error(e, want[k]);
	}
}

/* The driver side checks what the device writes back. */
static void driver_rejects_bad_used(void **state)
{
	enum { BAD_ID, NOT_IN_FLIGHT, TOO_LONG, JUMP };

	(void)state;
	for (int k = BAD_ID; k <= JUMP; k++) {
		struct vqenv *e = vqenv_new(8, 0, 8, 16);
		struct vring_used_elem *u = &e->ring.used->ring[0];
		void *tok;
		uint32_t len;

		assert_non_null(e);
		add_one(e, 0); /* head 0, 8 writable bytes */
		vq_driver_publish(&e->drv);
		le32_store(&u->id, k == BAD_ID ? 8 : k == NOT_IN_FLIGHT ? 1 : 0);
		le32_store(&u->len, k == TOO_LONG ? 9 : 8);
		le16_store(&e->ring.used->idx, k == JUMP ? 9 : 1);
		assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), -EPROTO);
		assert_int_equal(vq_driver_broken(&e->drv), -EPROTO);
		/* Sticky. */
		le32_store(&u->id, 0);
		le32_store(&u->len, 8);
		le16_store(&e->ring.used->idx, 1);
		assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), -EPROTO);
		assert_int_equal(vq_driver_add(&e->drv, NULL, 0,
					       &(struct vq_buf){ buf_gpa(e, 1), 8 }, 1, e),
				 -EPROTO);
		assert_false(vq_driver_publish(&e->drv));
		assert_true(vq_driver_enable_cb(&e->drv));
		vqenv_free(e);
	}
}

/* Random garbage in every guest-writable byte of the ring: the device either pops
 * chains that lie entirely inside guest memory, or breaks with one of its errors.
 * AddressSanitizer watches every access. */
static void hostile_fuzz(void **state)
{
	static const int errs[] = { -EINVAL, -EBUSY, -ELOOP, -E2BIG, -EFAULT };

	(void)state;
	for (int iter = 0; iter < 3000; iter++) {
		struct vqenv *e = vqenv_new(8, iter % 2 ? F_INDIRECT : 0, 8, 64);
		struct vq_seg seg[16];
		struct vq_chain c;
		int r;

		assert_non_null(e);
		/* Descriptors point mostly near guest memory, so that some chains
		 * translate and the walk goes deep. */
		for (unsigned int i = 0; i < 8; i++)
			raw_desc(e, NULL, i, VQENV_GPA + rnd((uint32_t)e->mem_size + 64) - 32,
				 rnd(4) ? rnd(256) : rnd(UINT32_MAX), (uint16_t)rnd(8),
				 (uint16_t)rnd(10));
		for (unsigned int i = 0; i < 8; i++)
			le16_store(&e->ring.avail->ring[i], (uint16_t)rnd(10));
		/* Indirect tables are read from the buffer area: fill it too. */
		for (size_t i = e->buf_off; i < e->mem_size; i++)
			e->mem[i] = (uint8_t)rnd(256);
		le16_store(&e->ring.avail->idx, (uint16_t)rnd(12));
		for (int k = 0; k < 12 && (r = pop(e, &c, seg, 16)) == 1; k++) {
			assert_true(c.head < 8);
			for (unsigned int s = 0; s < c.n_seg; s++) {
				uint8_t *h = seg[s].host;

				assert_true(h >= e->mem && h + seg[s].len <= e->mem + e->mem_size);
				if (seg[s].len) /* touch both ends */
					h[0] = h[seg[s].len - 1];
			}
			if (rnd(2))
				assert_int_equal(vq_device_push(&e->dev, c.head, 0), 0);
		}
		r = vq_device_broken(&e->dev);
		if (r) {
			bool known = false;

			for (size_t k = 0; k < sizeof(errs) / sizeof(errs[0]); k++)
				known |= r == errs[k];
			assert_true(known);
			assert_broken(e, r);
		}
		vqenv_free(e);
	}
}

/* vq_need_event() against its definition: notify when event_idx is one of the
 * indices published by moving from old_idx to new_idx, i.e. in [old, new) mod 2^16. */
static void need_event_matches_definition(void **state)
{
	(void)state;
	for (int k = 0; k < 200000; k++) {
		uint16_t old = (uint16_t)rnd(65536);
		uint16_t n = (uint16_t)(k < 1000 ? rnd(3) : rnd(40));
		uint16_t new = (uint16_t)(old + n);
		uint16_t event = (uint16_t)(k % 2 ? old + rnd(48) - 4 : rnd(65536));
		bool want = false;

		for (uint16_t i = 0; i < n; i++)
			want |= (uint16_t)(old + i) == event;
		assert_int_equal(vq_need_event(event, new, old), want);
	}
}

/* The largest ring: every descriptor in flight at once, completed in reverse. */
static void full_ring_32768(void **state)
{
	enum { NUM = 32768 };
	struct vqenv *e = vqenv_new(NUM, F_EVENT_IDX, 1, 8);
	struct vq_buf b;
	struct vq_seg seg[1];
	struct vq_chain c;
	uint16_t *heads = calloc(NUM, sizeof(*heads));
	void *tok;
	uint32_t len;

	(void)state;
	assert_non_null(e);
	assert_non_null(heads);
	b = (struct vq_buf){ buf_gpa(e, 0), 8 };
	for (uintptr_t i = 0; i < NUM; i++)
		assert_int_equal(vq_driver_add(&e->drv, NULL, 0, &b, 1, (void *)(i + 1)), 0);
	assert_int_equal(vq_driver_num_free(&e->drv), 0);
	assert_int_equal(vq_driver_add(&e->drv, NULL, 0, &b, 1, e), -ENOSPC);
	assert_true(vq_driver_publish(&e->drv));
	for (unsigned int i = 0; i < NUM; i++) {
		assert_int_equal(pop(e, &c, seg, 1), 1);
		heads[i] = c.head;
	}
	assert_int_equal(pop(e, &c, seg, 1), 0);
	assert_int_equal(vq_device_inflight(&e->dev), NUM);
	for (unsigned int i = NUM; i-- > 0;)
		assert_int_equal(vq_device_push(&e->dev, heads[i], 8), 0);
	for (uintptr_t i = NUM; i-- > 0;) {
		assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 1);
		assert_int_equal((uintptr_t)tok, i + 1);
	}
	assert_int_equal(vq_driver_num_free(&e->drv), NUM);
	free(heads);
	vqenv_free(e);
}

/* A device (re)started at a base index (vhost-user SET_VRING_BASE) continues there. */
static void device_resumes_at_base(void **state)
{
	struct vqenv *e = vqenv_new(8, 0, 8, 16);
	struct vq_seg seg[1];
	struct vq_chain c;

	(void)state;
	assert_non_null(e);
	le16_store(&e->ring.avail->idx, 65533);
	le16_store(&e->ring.used->idx, 65533);
	assert_int_equal(vq_device_init(&e->dev, &e->ring, &e->region, 1, e->inflight, 0, 65533), 0);
	assert_int_equal(pop(e, &c, seg, 1), 0);
	for (uint16_t h = 0; h < 5; h++) {
		raw_desc(e, NULL, h, buf_gpa(e, h), 8, VRING_DESC_F_WRITE, 0);
		raw_publish(e, h);
	}
	for (uint16_t h = 0; h < 5; h++) {
		assert_int_equal(pop(e, &c, seg, 1), 1);
		assert_int_equal(c.head, h);
		assert_int_equal(vq_device_push(&e->dev, h, 1), 0);
	}
	assert_int_equal(vq_device_base(&e->dev), 2);
	assert_int_equal(le16_load(&e->ring.used->idx), 2);
	assert_int_equal(le32_load(&e->ring.used->ring[65533 % 8].id), 0);
	assert_int_equal(le32_load(&e->ring.used->ring[1].id), 4);
	vqenv_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(layout_matches_spec),
		cmocka_unit_test(init_rejects_bad_rings),
		cmocka_unit_test(translate_bounds),
		cmocka_unit_test(roundtrip_one_chain),
		cmocka_unit_test(add_errors),
		cmocka_unit_test(out_of_order_completion),
		cmocka_unit_test(wrap_200000_through_8),
		cmocka_unit_test(wrap_200000_through_8_event_idx),
		cmocka_unit_test(event_idx_suppresses_kicks),
		cmocka_unit_test(event_idx_suppresses_notifications),
		cmocka_unit_test(flags_suppress_without_event_idx),
		cmocka_unit_test(no_lost_wakeup_event_idx),
		cmocka_unit_test(no_lost_wakeup_flags),
		cmocka_unit_test(need_event_matches_definition),
		cmocka_unit_test(full_ring_32768),
		cmocka_unit_test(device_resumes_at_base),
		cmocka_unit_test(indirect_chain),
		cmocka_unit_test(indirect_misaligned_table),
		cmocka_unit_test(hostile_head_out_of_range),
		cmocka_unit_test(hostile_head_huge),
		cmocka_unit_test(hostile_next_out_of_range),
		cmocka_unit_test(hostile_self_loop),
		cmocka_unit_test(hostile_long_loop),
		cmocka_unit_test(hostile_length_overflow),
		cmocka_unit_test(hostile_address_outside),
		cmocka_unit_test(hostile_address_straddles_end),
		cmocka_unit_test(hostile_address_wraps),
		cmocka_unit_test(hostile_avail_jump),
		cmocka_unit_test(hostile_avail_backwards),
		cmocka_unit_test(hostile_head_republished_in_flight),
		cmocka_unit_test(hostile_readable_after_writable),
		cmocka_unit_test(hostile_too_many_segments),
		cmocka_unit_test(hostile_indirect_not_negotiated),
		cmocka_unit_test(hostile_indirect_rules),
		cmocka_unit_test(driver_rejects_bad_used),
		cmocka_unit_test(hostile_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
