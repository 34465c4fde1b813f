/* Batched used-ring updates on the device side (vq_device_add_used,
 * vq_device_publish_used): entries stay invisible to the driver until the batch is
 * published, the index is stored once per batch, the EVENT_IDX decision covers the
 * whole batch (crossing the event index, and across the 16-bit wrap), slots and
 * indices wrap, and a batch never grows past num. */
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

/* xorshift: reproducible pseudo-random choices. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static uint64_t buf_gpa(struct vqenv *e, unsigned int i)
{
	return vqenv_gpa(e, vqenv_buf(e, i));
}

static uint16_t used_idx(struct vqenv *e)
{
	return le16_load(&e->ring.used->idx);
}

/* A driver writing the ring by hand: descriptor h is buffer h, device-writable, and
 * head h is made available. */
static void raw_post(struct vqenv *e, uint16_t h)
{
	uint8_t *d = (uint8_t *)e->ring.desc + 16u * h;
	uint16_t idx = le16_load(&e->ring.avail->idx);

	le64_store(d, buf_gpa(e, h));
	le32_store(d + 8, 8);
	le16_store(d + 12, VRING_DESC_F_WRITE);
	le16_store(d + 14, 0);
	le16_store(&e->ring.avail->ring[idx & (e->num - 1)], h);
	le16_store(&e->ring.avail->idx, (uint16_t)(idx + 1));
}

/* A device resumed at base over a hand-written ring (both indices at base). */
static struct vqenv *resumed_at(unsigned int num, uint64_t features, uint16_t base)
{
	struct vqenv *e = vqenv_new(num, features, num, 16);

	assert_non_null(e);
	le16_store(&e->ring.avail->idx, base);
	le16_store(&e->ring.used->idx, base);
	assert_int_equal(vq_device_init(&e->dev, &e->ring, &e->region, 1, e->inflight,
					features, base), 0);
	return e;
}

static uint16_t pop_head(struct vqenv *e)
{
	struct vq_seg seg[1];
	struct vq_chain c;

	assert_int_equal(vq_device_pop(&e->dev, &c, seg, 1), 1);
	return c.head;
}

static void add_writable(struct vqenv *e, unsigned int buf)
{
	struct vq_buf b = { buf_gpa(e, buf), 8 };

	assert_int_equal(vq_driver_add(&e->drv, NULL, 0, &b, 1, (void *)(uintptr_t)(buf + 1)), 0);
}

/* Elements and buffer writes of a batch reach the driver only with the publish, in
 * order, each with its own id and length. */
static void entries_invisible_before_publish(void **state)
{
	struct vqenv *e = vqenv_new(8, 0, 8, 16);
	struct vq_seg seg[1];
	struct vq_chain c[3];
	void *tok;
	uint32_t len;

	(void)state;
	assert_non_null(e);
	for (unsigned int i = 0; i < 3; i++)
		add_writable(e, i);
	vq_driver_publish(&e->drv);
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(vq_device_pop(&e->dev, &c[i], seg, 1), 1);
		memset(seg[0].host, 0xa0 + (int)i, 8);
		assert_int_equal(vq_device_add_used(&e->dev, c[i].head, 5 + i), 0);
		/* Nothing visible: the index has not moved, the driver finds nothing. */
		assert_int_equal(used_idx(e), 0);
		assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 0);
	}
	assert_int_equal(vq_device_unpublished(&e->dev), 3);
	assert_int_equal(vq_device_inflight(&e->dev), 0);
	vq_device_publish_used(&e->dev);
	assert_int_equal(vq_device_unpublished(&e->dev), 0);
	assert_int_equal(used_idx(e), 3);
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 1);
		assert_int_equal((uintptr_t)tok, i + 1);
		assert_int_equal(len, 5 + i);
		assert_int_equal(vqenv_buf(e, i)[7], 0xa0 + i);
	}
	assert_int_equal(vq_driver_get_used(&e->drv, &tok, &len), 0);
	vqenv_free(e);
}

/* The index is stored once per batch: a publish (or a notify decision) with nothing
 * new added leaves the used index alone. The test overwrites it behind the device's
 * back; a second store would show. */
static void index_stored_once(void **state)
{
	struct vqenv *e = resumed_at(8, 0, 0);

	(void)state;
	for (uint16_t h = 0; h < 4; h++)
		raw_post(e, h);
	for (uint16_t h = 0; h < 4; h++)
		assert_int_equal(vq_device_add_used(&e->dev, pop_head(e), 1), 0);
	vq_device_publish_used(&e->dev);
	assert_int_equal(used_idx(e), 4);
	le16_store(&e->ring.used->idx, 0x5a5a);
	vq_device_publish_used(&e->dev);
	(void)vq_device_should_notify(&e->dev);
	assert_int_equal(used_idx(e), 0x5a5a);
	/* The next batch stores its own end, counted from the device's shadow. */
	assert_int_equal(vq_device_add_used(&e->dev, 0, 1), -RT_EINVAL); /* not in flight */
	raw_post(e, 0);
	assert_int_equal(vq_device_add_used(&e->dev, pop_head(e), 1), 0);
	assert_int_equal(used_idx(e), 0x5a5a);
	vq_device_publish_used(&e->dev);
	assert_int_equal(used_idx(e), 5);
	/* vq_device_push is an add and a publish. */
	raw_post(e, 1);
	assert_int_equal(vq_device_push(&e->dev, pop_head(e), 1), 0);
	assert_int_equal(used_idx(e), 6);
	assert_int_equal(vq_device_unpublished(&e->dev), 0);
	vqenv_free(e);
}

/* With EVENT_IDX one decision covers a whole batch: a batch that crosses the driver's
 * used_event notifies once, one that stops short does not; the decision publishes
 * first, so what the driver is woken for is there. Starts near 2^16 so that the
 * batches cross the index wrap too. */
static void event_idx_over_batch(void **state)
{
	const uint16_t base = 65530;
	struct vqenv *e = resumed_at(8, F_EVENT_IDX, base);
	uint16_t idx = base;

	(void)state;
	/* After (re)start the device does not know what the driver heard: one notify. */
	raw_post(e, 0);
	assert_int_equal(vq_device_add_used(&e->dev, pop_head(e), 1), 0);
	assert_true(vq_device_should_notify(&e->dev));
	idx++;
	assert_int_equal(used_idx(e), idx);
	/* The driver wants to hear of entry idx + 5: a batch of 3 stays short of it. */
	le16_store(vq_used_event(&e->ring), (uint16_t)(idx + 5));
	for (uint16_t h = 1; h < 4; h++)
		raw_post(e, h);
	for (uint16_t h = 1; h < 4; h++)
		assert_int_equal(vq_device_add_used(&e->dev, pop_head(e), 1), 0);
	assert_false(vq_device_should_notify(&e->dev));
	idx += 3;
	assert_int_equal(used_idx(e), idx); /* published although not notified */
	/* The next batch of 4 covers entries 65534, 65535, 0, 1: it wraps the index and
	 * passes the event (entry 0): one notify. */
	assert_true((uint16_t)(idx + 4) < idx); /* the batch wraps the 16-bit index */
	for (uint16_t h = 4; h < 8; h++)
		raw_post(e, h);
	for (uint16_t h = 4; h < 8; h++)
		assert_int_equal(vq_device_add_used(&e->dev, pop_head(e), 1), 0);
	assert_int_equal(used_idx(e), idx);
	assert_true(vq_device_should_notify(&e->dev));
	idx += 4;
	assert_int_equal(used_idx(e), idx);
	/* Nothing new: no second notification for the same batch. */
	assert_false(vq_device_should_notify(&e->dev));
	/* An event index one past a batch's last entry does not count (it is moved
	 * there after the adds: what counts is what it is at the decision) ... */
	le16_store(vq_used_event(&e->ring), (uint16_t)(idx + 1));
	for (uint16_t h = 0; h < 3; h++)
		raw_post(e, h);
	for (uint16_t h = 0; h < 3; h++)
		assert_int_equal(vq_device_add_used(&e->dev, pop_head(e), 1), 0);
	le16_store(vq_used_event(&e->ring), (uint16_t)(idx + 3));
	assert_false(vq_device_should_notify(&e->dev));
	idx += 3;
	/* ... one exactly at the last entry does. */
	le16_store(vq_used_event(&e->ring), (uint16_t)(idx + 1));
	for (uint16_t h = 3; h < 5; h++)
		raw_post(e, h);
	for (uint16_t h = 3; h < 5; h++)
		assert_int_equal(vq_device_add_used(&e->dev, pop_head(e), 1), 0);
	assert_true(vq_device_should_notify(&e->dev));
	vqenv_free(e);
}

/* A batch of num elements that wraps both the slot index and the 16-bit index lands
 * in the right slots, and the one store moves the index across the wrap. */
static void batch_wraps(void **state)
{
	const uint16_t base = 65533;
	struct vqenv *e = resumed_at(8, 0, base);

	(void)state;
	for (uint16_t h = 0; h < 8; h++)
		raw_post(e, (uint16_t)(7 - h));
	for (uint16_t k = 0; k < 8; k++)
		assert_int_equal(vq_device_add_used(&e->dev, pop_head(e), 100u + k), 0);
	assert_int_equal(used_idx(e), base);
	vq_device_publish_used(&e->dev);
	assert_int_equal(used_idx(e), (uint16_t)(base + 8));
	for (uint16_t k = 0; k < 8; k++) {
		struct vring_used_elem *u = &e->ring.used->ring[(uint16_t)(base + k) % 8];

		assert_int_equal(le32_load(&u->id), 7 - k);
		assert_int_equal(le32_load(&u->len), 100u + k);
	}
	vqenv_free(e);
}

/* A driver re-posting a head it was not yet given back (the element is added, not
 * published): the device pops it again, and the add that would reuse an unpublished
 * slot publishes the full batch first. Nothing of the batch is overwritten. */
static void batch_bounded_by_num(void **state)
{
	struct vqenv *e = resumed_at(4, 0, 0);

	(void)state;
	for (uint16_t h = 0; h < 4; h++)
		raw_post(e, h);
	for (uint16_t h = 0; h < 4; h++)
		assert_int_equal(vq_device_add_used(&e->dev, pop_head(e), 10u + h), 0);
	assert_int_equal(used_idx(e), 0);
	assert_int_equal(vq_device_unpublished(&e->dev), 4);
	raw_post(e, 2);
	assert_int_equal(vq_device_add_used(&e->dev, pop_head(e), 99), 0);
	assert_int_equal(used_idx(e), 4);
	assert_int_equal(vq_device_unpublished(&e->dev), 1);
	for (uint16_t h = 1; h < 4; h++)
		assert_int_equal(le32_load(&e->ring.used->ring[h].len), 10u + h);
	assert_int_equal(le32_load(&e->ring.used->ring[0].len), 99);
	vq_device_publish_used(&e->dev);
	assert_int_equal(used_idx(e), 5);
	vqenv_free(e);
}

/* A broken ring adds nothing and publishes nothing. */
static void broken_ring_adds_nothing(void **state)
{
	struct vqenv *e = resumed_at(4, 0, 0);
	struct vq_seg seg[1];
	struct vq_chain c;
	uint16_t h;

	(void)state;
	raw_post(e, 0);
	h = pop_head(e);
	le16_store(&e->ring.avail->idx, 40); /* far ahead: broken */
	assert_int_equal(vq_device_pop(&e->dev, &c, seg, 1), -RT_EINVAL);
	assert_int_equal(vq_device_add_used(&e->dev, h, 1), -RT_EINVAL);
	vq_device_publish_used(&e->dev);
	assert_false(vq_device_should_notify(&e->dev));
	assert_int_equal(used_idx(e), 0);
	vqenv_free(e);
}

/* Data integrity through the driver's API with batches of random size (1 .. num,
 * completed out of order, published at random points) over 2^17 buffers: every
 * index wraps, every buffer comes back once, with the device's bytes in it. */
static void random_batches(uint64_t features)
{
	enum { NUM = 8, TOTAL = 1 << 17 };
	static uint16_t tok_buf[TOTAL + 1];
	static uint8_t seen[TOTAL + 1];
	struct vqenv *e = vqenv_new(NUM, features, NUM, 16);
	uint64_t sent = 0, got = 0;
	struct vq_chain held[NUM];
	unsigned int nheld = 0;

	assert_non_null(e);
	memset(seen, 0, sizeof(seen));
	while (got < TOTAL) {
		struct vq_seg seg[1];
		void *tok;
		uint32_t len;

		while (sent < TOTAL && vq_driver_num_free(&e->drv) > 0) {
			struct vq_buf b = { buf_gpa(e, e->drv.free_head), 16 };

			memset(vqenv_buf(e, e->drv.free_head), 0xff, 16);
			tok_buf[sent + 1] = e->drv.free_head;
			assert_int_equal(vq_driver_add(&e->drv, NULL, 0, &b, 1,
						       (void *)(uintptr_t)(sent + 1)), 0);
			sent++;
		}
		vq_driver_publish(&e->drv);
		for (unsigned int n = 1 + rnd(NUM); n && nheld < NUM; n--) {
			if (vq_device_pop(&e->dev, &held[nheld], seg, 1) != 1)
				break;
			nheld++;
		}
		for (unsigned int n = 1 + rnd(nheld ? nheld : 1); n && nheld; n--) {
			unsigned int j = rnd(nheld);
			uint16_t h = held[j].head;

			/* The device writes the descriptor's index into the buffer. */
			memcpy(vqenv_buf(e, h), &h, sizeof(h));
			assert_int_equal(vq_device_add_used(&e->dev, h, sizeof(h)), 0);
			held[j] = held[--nheld];
			if (rnd(4) == 0)
				vq_device_publish_used(&e->dev);
		}
		if (rnd(2))
			vq_device_publish_used(&e->dev);
		else
			(void)vq_device_should_notify(&e->dev);
		assert_int_equal(vq_device_unpublished(&e->dev), 0);
		while (vq_driver_get_used(&e->drv, &tok, &len) == 1) {
			uintptr_t t = (uintptr_t)tok;
			uint16_t h;

			assert_true(t >= 1 && t <= sent);
			assert_false(seen[t]);
			seen[t] = 1;
			assert_int_equal(len, sizeof(h));
			memcpy(&h, vqenv_buf(e, tok_buf[t]), sizeof(h));
			assert_int_equal(h, tok_buf[t]);
			got++;
		}
		assert_int_equal(vq_driver_broken(&e->drv), 0);
	}
	assert_int_equal(sent, TOTAL);
	assert_int_equal(used_idx(e), (uint16_t)TOTAL);
	assert_int_equal(vq_driver_num_free(&e->drv), NUM);
	vqenv_free(e);
}

static void random_batches_flags(void **state)
{
	(void)state;
	random_batches(0);
}

static void random_batches_event_idx(void **state)
{
	(void)state;
	random_batches(F_EVENT_IDX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(entries_invisible_before_publish),
		cmocka_unit_test(index_stored_once),
		cmocka_unit_test(event_idx_over_batch),
		cmocka_unit_test(batch_wraps),
		cmocka_unit_test(batch_bounded_by_num),
		cmocka_unit_test(broken_ring_adds_nothing),
		cmocka_unit_test(random_batches_flags),
		cmocka_unit_test(random_batches_event_idx),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
