/* core/vq_ready: which parts of the driver's memory the device may touch yet. The map
 * itself (granule sizes, in, wanted, all), and the device's pop over a region with a
 * map: a chain that names a granule not in is left on the ring (VQ_NOT_READY, with
 * the range in vq->want), the ring is not broken, and the same chain comes out once
 * the granule is in; an indirect table not in waits the same way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "virtq.h"
#include "vq_ready.h"
#include "vqenv.h"

#define F_INDIRECT (1ull << VIRTIO_F_INDIRECT_DESC)

static struct vq_ready *ready_new(const void *base, uint64_t len, unsigned int min_shift)
{
	struct vq_ready *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	vq_ready_init(r, base, len, min_shift);
	return r;
}

/* Granules are at least 2^min_shift bytes, and large enough that VQ_READY_MAX of them
 * cover the region; an empty region is all in. */
static void map_sizes(void **state)
{
	static uint8_t block[1];
	struct vq_ready *r = ready_new(block, 1u << 20, 12);

	(void)state;
	assert_int_equal(r->shift, 12);
	assert_int_equal(r->n, 256);
	vq_ready_init(r, block, 64ull << 30, 14);
	assert_int_equal(r->shift, 23);
	assert_int_equal(r->n, VQ_READY_MAX);
	vq_ready_init(r, block, (64ull << 30) + 1, 14);
	assert_int_equal(r->shift, 24);
	assert_int_equal(r->n, VQ_READY_MAX / 2 + 1);
	vq_ready_init(r, block, 5000, 12);
	assert_int_equal(r->n, 2);
	vq_ready_init(r, block, 0, 12);
	assert_int_equal(r->n, 0);
	assert_true(atomic_load(&r->all));
	free(r);
}

/* A range is in when every granule it touches is; wants name only what is not in,
 * lowest first; the last granule set makes the whole map in. */
static void in_and_wanted(void **state)
{
	static uint8_t mem[4 * 4096];
	struct vq_ready *r = ready_new(mem, sizeof(mem), 12);

	(void)state;
	assert_int_equal(r->n, 4);
	assert_false(vq_ready_test(r, mem, 1));
	assert_int_equal(vq_ready_wanted(r), r->n);
	vq_ready_set(r, 1);
	assert_true(vq_ready_test(r, mem + 4096, 4096));
	assert_false(vq_ready_test(r, mem + 4095, 2));     /* straddles granules 0 and 1 */
	assert_false(vq_ready_test(r, mem + 4096, 4097));  /* and 1 and 2 */
	vq_ready_want(r, mem + 4096, 8192);                /* granules 1 and 2 */
	assert_int_equal(vq_ready_wanted(r), 2);           /* 1 is in already */
	vq_ready_want(r, mem + 1, 1);
	assert_int_equal(vq_ready_wanted(r), 0);
	vq_ready_set(r, 0);
	vq_ready_set(r, 2);
	assert_int_equal(vq_ready_wanted(r), r->n);
	assert_false(vq_ready_test(r, mem, sizeof(mem)));
	/* Outside the map: never in, never wanted. */
	assert_false(vq_ready_test(r, mem, sizeof(mem) + 1));
	vq_ready_want(r, mem + sizeof(mem), 1);
	assert_int_equal(vq_ready_wanted(r), r->n);
	vq_ready_set(r, 3);
	assert_true(vq_ready_test(r, mem, sizeof(mem)));
	assert_true(atomic_load(&r->all));
	free(r);
}

/* No request is lost between the filler and the device, whichever comes first: a
 * granule asked for before it is set (even while its last piece was being faulted
 * in) is reported by vq_ready_set, one set before the device asked is seen by the
 * device's second look (vq_mem_want says it is in, so it does not wait), and a
 * granule nobody asked for is not reported. */
static void no_request_lost(void **state)
{
	static uint8_t mem[64 * 4096];
	struct vq_mem_region reg = { .gpa = 0, .size = sizeof(mem), .host = mem };
	struct vq_ready *r = ready_new(mem, sizeof(mem), 12);

	(void)state;
	reg.ready = r;
	/* Asked for first: the set reports it, also for a granule not the lowest. */
	assert_false(vq_mem_want(&reg, 1, mem + 5 * 4096, 100));
	assert_false(vq_mem_want(&reg, 1, mem + 40 * 4096, 1));
	assert_true(vq_ready_set(r, 40));
	assert_true(vq_ready_set(r, 5));
	/* Nobody asked: not reported. */
	assert_false(vq_ready_set(r, 6));
	assert_false(vq_ready_set(r, 33));
	/* Set after the device's look, before its request: the request's second look
	 * finds it in. */
	assert_false(vq_ready_test(r, mem + 7 * 4096, 4096));
	assert_false(vq_ready_set(r, 7));
	assert_true(vq_mem_want(&reg, 1, mem + 7 * 4096, 4096));
	/* A range of which one granule is still out is not in. */
	assert_false(vq_mem_want(&reg, 1, mem + 6 * 4096, 3 * 4096));
	free(r);
}

/* vq_ready_test reads the map a word at a time: it must agree, on every range, with
 * the granules one by one, across word boundaries and at both ends of the map. */
static void test_matches_granules(void **state)
{
	enum { N = 200 };
	static uint8_t mem[N * 64];
	struct vq_ready *r = ready_new(mem, sizeof(mem), 6);
	bool in[N] = { false };
	unsigned int seed = 12345;

	(void)state;
	assert_int_equal(r->n, N);
	for (int round = 0; round < 4000; round++) {
		unsigned int first, last;
		bool want = true;

		seed = seed * 1103515245u + 12345u;
		if (round % 20 == 0) {
			unsigned int g = (seed >> 8) % N;

			vq_ready_set(r, g);
			in[g] = true;
			continue;
		}
		first = (seed >> 4) % N;
		seed = seed * 1103515245u + 12345u;
		last = first + (seed >> 4) % (N - first);
		for (unsigned int g = first; g <= last; g++)
			want &= in[g];
		assert_int_equal(vq_ready_test(r, mem + first * 64,
					       (uint64_t)(last - first) * 64 + 1 + (seed >> 20) % 63),
				 want);
	}
	free(r);
}

/* The environment's region gets a map in 64-byte granules with only the ring in. */
static struct vq_ready *ring_only(struct vqenv *e)
{
	struct vq_ready *r = ready_new(e->mem, e->mem_size, 6);

	for (size_t off = 0; off < e->buf_off; off += 64)
		vq_ready_set(r, (unsigned int)(off >> 6));
	e->region.ready = r;
	return r;
}

static uint64_t buf_gpa(struct vqenv *e, unsigned int i)
{
	return vqenv_gpa(e, vqenv_buf(e, i));
}

static unsigned int granule_of(const struct vqenv *e, const void *p)
{
	return (unsigned int)(((const uint8_t *)p - e->mem) >> 6);
}

/* A chain whose second buffer is not in: not popped, the ring usable, the range
 * named; popped whole once that buffer's granule is in. */
static void pop_waits(void **state)
{
	struct vqenv *e = vqenv_new(8, 0, 4, 64);
	struct vq_buf out[2];
	struct vq_seg seg[4];
	struct vq_chain c;
	struct vq_ready *r;

	(void)state;
	assert_non_null(e);
	r = ring_only(e);
	vq_ready_set(r, granule_of(e, vqenv_buf(e, 0)));
	out[0] = (struct vq_buf){ buf_gpa(e, 0), 64 };
	out[1] = (struct vq_buf){ buf_gpa(e, 2), 40 };
	assert_int_equal(vq_driver_add(&e->drv, out, 2, NULL, 0, e), 0);
	vq_driver_publish(&e->drv);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(vq_device_pop(&e->dev, &c, seg, 4), VQ_NOT_READY);
		assert_int_equal(e->dev.broken, 0);
		assert_ptr_equal(e->dev.want, vqenv_buf(e, 2));
		assert_int_equal(e->dev.want_len, 40);
		assert_int_equal(e->dev.n_inflight, 0);
	}
	assert_false(vq_mem_want(&e->region, 1, e->dev.want, e->dev.want_len));
	assert_int_equal(vq_ready_wanted(r), granule_of(e, vqenv_buf(e, 2)));
	assert_true(vq_ready_set(r, vq_ready_wanted(r)));
	assert_int_equal(vq_device_pop(&e->dev, &c, seg, 4), 1);
	assert_int_equal(c.n_seg, 2);
	assert_ptr_equal(seg[1].host, vqenv_buf(e, 2));
	assert_int_equal(vq_device_push(&e->dev, c.head, 0), 0);
	assert_int_equal(vq_device_pop(&e->dev, &c, seg, 4), 0);
	free(r);
	vqenv_free(e);
}

/* An indirect table not in is not read: the pop waits for its granule too. */
static void indirect_table_waits(void **state)
{
	struct vqenv *e = vqenv_new(8, F_INDIRECT, 4, 64);
	struct vring_desc *table = (struct vring_desc *)(void *)vqenv_buf(e, 3);
	struct vq_buf out = { 0 };
	struct vq_seg seg[4];
	struct vq_chain c;
	struct vq_ready *r;
	void *tok = e;

	(void)state;
	assert_non_null(e);
	r = ring_only(e);
	vq_ready_set(r, granule_of(e, vqenv_buf(e, 0)));
	out = (struct vq_buf){ buf_gpa(e, 0), 32 };
	assert_int_equal(vq_driver_add_indirect(&e->drv, table, vqenv_gpa(e, table), &out, 1,
						NULL, 0, tok), 0);
	vq_driver_publish(&e->drv);
	assert_int_equal(vq_device_pop(&e->dev, &c, seg, 4), VQ_NOT_READY);
	assert_ptr_equal(e->dev.want, table);
	assert_int_equal(e->dev.broken, 0);
	vq_ready_set(r, granule_of(e, table));
	assert_int_equal(vq_device_pop(&e->dev, &c, seg, 4), 1);
	assert_int_equal(c.n_seg, 1);
	assert_ptr_equal(seg[0].host, vqenv_buf(e, 0));
	free(r);
	vqenv_free(e);
}

/* Memory outside every region still breaks the ring, map or not. */
static void outside_breaks(void **state)
{
	struct vqenv *e = vqenv_new(8, 0, 4, 64);
	struct vq_buf out;
	struct vq_seg seg[4];
	struct vq_chain c;
	struct vq_ready *r;

	(void)state;
	assert_non_null(e);
	r = ring_only(e);
	out = (struct vq_buf){ VQENV_GPA + e->mem_size, 8 };
	assert_int_equal(vq_driver_add(&e->drv, &out, 1, NULL, 0, e), 0);
	vq_driver_publish(&e->drv);
	assert_int_equal(vq_device_pop(&e->dev, &c, seg, 4), -RT_EFAULT);
	assert_int_equal(e->dev.broken, -RT_EFAULT);
	free(r);
	vqenv_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(map_sizes),
		cmocka_unit_test(in_and_wanted),
		cmocka_unit_test(no_request_lost),
		cmocka_unit_test(test_matches_granules),
		cmocka_unit_test(pop_waits),
		cmocka_unit_test(indirect_table_waits),
		cmocka_unit_test(outside_breaks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
