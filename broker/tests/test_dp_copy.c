/* The copy engine's chunk copy routines (dp_copy.h), and the data plane running with
 * `copy = nt`.
 *
 * Both routines must produce exactly memcpy's bytes and never write outside the
 * destination: every source and destination misalignment 0..15 against every length
 * 0..300 (which crosses the streaming threshold, the 64-byte groups, the 16- and
 * 8-byte steps and every tail), then a few large sizes, each destination between
 * guard zones. Then whole exchanges through the real data plane with copy = nt, with
 * chunk and RX buffer sizes chosen so that chunks start at odd offsets. */
#include "test_dp_harness.h"

#include "dp_copy.h"

#define GUARD 64u
#define MAXMIS 16u
#define SMALL_MAX 300u

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint8_t rnd8(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint8_t)(rng_state >> 24);
}

/* The byte every guard position must still hold: differs from position to position,
 * so that a stray write of a neighbouring byte is caught too. */
static uint8_t guard_byte(size_t i)
{
	return (uint8_t)(0xa5u ^ (i * 29u));
}

struct bufs {
	uint8_t *src, *dst;
	size_t cap; /* bytes usable after the misalignment */
};

static void bufs_init(struct bufs *b, size_t cap)
{
	b->cap = cap;
	/* 64-byte aligned bases: misalignment k really means address % 16 == k. */
	b->src = aligned_alloc(64, (cap + MAXMIS + 63) / 64 * 64);
	b->dst = aligned_alloc(64, (2 * GUARD + cap + MAXMIS + 63) / 64 * 64);
	assert_non_null(b->src);
	assert_non_null(b->dst);
}

static void bufs_fini(struct bufs *b)
{
	free(b->src);
	free(b->dst);
}

/* One copy of n bytes from src + smis to dst + GUARD + dmis, checked byte for byte
 * against the source and the guards. */
static void check_one(dp_copy_fn fn, struct bufs *b, unsigned int smis, unsigned int dmis,
		      size_t n)
{
	uint8_t *s = b->src + smis, *d = b->dst + GUARD + dmis;
	size_t total = 2 * GUARD + MAXMIS + b->cap;

	assert_true(n <= b->cap);
	for (size_t i = 0; i < n; i++)
		s[i] = rnd8();
	for (size_t i = 0; i < total; i++)
		b->dst[i] = guard_byte(i);
	fn(d, s, n);
	if (memcmp(d, s, n) != 0)
		fail_msg("wrong bytes: len %zu, src %% 16 = %u, dst %% 16 = %u", n, smis, dmis);
	for (size_t i = 0; i < total; i++) {
		if (i >= GUARD + dmis && i < GUARD + dmis + n)
			continue;
		if (b->dst[i] != guard_byte(i))
			fail_msg("wrote outside the destination: byte %td relative to it, len %zu, "
				 "src %% 16 = %u, dst %% 16 = %u",
				 (ptrdiff_t)i - (ptrdiff_t)(GUARD + dmis), n, smis, dmis);
	}
}

static void all_small(dp_copy_fn fn)
{
	struct bufs b;

	bufs_init(&b, SMALL_MAX);
	for (unsigned int smis = 0; smis < MAXMIS; smis++)
		for (unsigned int dmis = 0; dmis < MAXMIS; dmis++)
			for (size_t n = 0; n <= SMALL_MAX; n++)
				check_one(fn, &b, smis, dmis, n);
	bufs_fini(&b);
}

static void some_large(dp_copy_fn fn)
{
	static const size_t sizes[] = { 4096, 4096 - 44, 65536, 65536 + 44 + 7, (1u << 20) + 13 };
	static const unsigned int mis[][2] = { { 0, 0 }, { 0, 12 }, { 12, 0 }, { 7, 3 }, { 15, 15 } };
	struct bufs b;

	bufs_init(&b, (1u << 20) + 13);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (size_t j = 0; j < sizeof(mis) / sizeof(mis[0]); j++)
			check_one(fn, &b, mis[j][0], mis[j][1], sizes[i]);
	bufs_fini(&b);
}

static void test_normal_small(void **state)
{
	(void)state;
	all_small(dp_copy_normal);
}

static void test_nt_small(void **state)
{
	(void)state;
	all_small(dp_copy_nt);
}

static void test_normal_large(void **state)
{
	(void)state;
	some_large(dp_copy_normal);
}

static void test_nt_large(void **state)
{
	(void)state;
	some_large(dp_copy_nt);
}

/* The configured mode picks the routine; on x86-64 the streaming one is real. */
static void test_select(void **state)
{
	(void)state;
	assert_ptr_equal(dp_copy_select(RTVIO_COPY_NORMAL), dp_copy_normal);
	assert_ptr_equal(dp_copy_select(RTVIO_COPY_NT), dp_copy_nt);
#if defined(__x86_64__)
	assert_true(dp_copy_nt_native());
#endif
}

/* ---- through the data plane ---- */

#define A 3u
#define B 4u

/* chunk = 1000 and RX payloads of 4096 - 44 bytes: chunks and pieces start at
 * offsets that are not multiples of 16 on both sides. */
static const char *const nt_ini =
	"[broker]\npolicy = fp\nchunk = 1000\ncopy = nt\n"
	"[cell a]\ncid = 3\n[cell b]\ncid = 4\n"
	"[flow s]\nfrom = a\nto = b:1000\ntype = stream\nsize = 64KiB\nperiod = 1ms\n"
	"[flow q]\nfrom = a\nto = b:2000\ntype = seqpacket\nsize = 64KiB\nperiod = 1ms\n";

static void connect_ab(struct tenv *e, uint32_t port, uint16_t type)
{
	struct vsock_hdr h = t_hdr(A, 5000 + port, B, port, type, VSOCK_OP_REQUEST, 0), r;
	uint8_t buf[16];

	t_send(&e->cell[0], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[1], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_REQUEST);
	h = t_hdr(B, port, A, 5000 + port, type, VSOCK_OP_RESPONSE, 0);
	t_send(&e->cell[1], &h, NULL);
	t_run(e);
	assert_int_equal(t_recv(&e->cell[0], &r, buf, sizeof(buf)), 1);
	assert_int_equal(r.op, VSOCK_OP_RESPONSE);
	t_tx_done(&e->cell[0]);
	t_tx_done(&e->cell[1]);
}

/* Sends len random bytes from a on port and checks b gets exactly them, in pieces
 * that each carry a correct header; the last piece of a seqpacket message alone
 * carries EOM. */
static void exchange(struct tenv *e, uint32_t port, uint16_t type, size_t len, bool split)
{
	static uint8_t msg[65536], got[65536], piece[4096];
	struct vsock_hdr h, r;
	size_t off = 0;

	assert_true(len <= sizeof(msg));
	/* Well past the policer's period: this message is never held. */
	e->now += 10000000;
	for (size_t i = 0; i < len; i++)
		msg[i] = rnd8();
	h = t_hdr(A, 5000 + port, B, port, type, VSOCK_OP_RW, (uint32_t)len);
	if (type == VSOCK_TYPE_SEQPACKET)
		h.flags = VSOCK_SEQ_EOM;
	t_post_rx(&e->cell[1], (unsigned int)(len / (4096 - VSOCK_HDR_SIZE) + 1), split);
	t_send_ex(&e->cell[0], &h, msg, split);
	t_run(e);
	while (t_recv(&e->cell[1], &r, piece, sizeof(piece))) {
		assert_int_equal(r.op, VSOCK_OP_RW);
		assert_int_equal(r.src_cid, A);
		assert_int_equal(r.dst_port, port);
		assert_true(off + r.len <= len);
		memcpy(got + off, piece, r.len);
		off += r.len;
		if (type == VSOCK_TYPE_SEQPACKET)
			assert_int_equal(!!(r.flags & VSOCK_SEQ_EOM), off == len);
	}
	assert_int_equal(off, len);
	assert_memory_equal(got, msg, len);
	assert_int_equal(t_tx_done(&e->cell[0]), 1);
}

static void test_dp_nt_exchange(void **state)
{
	static struct tenv e;
	static const size_t lens[] = { 1, 15, 63, 64, 65, 1000, 1001, 2004, 4052, 4053, 8105, 65536 };
	struct dp_flow_stats fs;

	(void)state;
	t_env_init(&e, nt_ini, 4096);
	assert_int_equal(e.cfg.broker.copy, RTVIO_COPY_NT);
	assert_ptr_equal(e.dp->copy, dp_copy_nt);
	t_post_rx(&e.cell[0], 4, false);
	t_post_rx(&e.cell[1], 2, false);
	connect_ab(&e, 1000, VSOCK_TYPE_STREAM);
	connect_ab(&e, 2000, VSOCK_TYPE_SEQPACKET);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		exchange(&e, 1000, VSOCK_TYPE_STREAM, lens[i], i % 2);
		exchange(&e, 2000, VSOCK_TYPE_SEQPACKET, lens[i], !(i % 2));
	}
	assert_int_equal(dp_stats_flow(e.dp, 0, &fs), 0);
	assert_true(fs.chunks >= 66); /* 65536 B in 1000-byte chunks alone */
	t_env_fini(&e);
}

/* Without the key the data plane copies with memcpy. */
static void test_dp_default_normal(void **state)
{
	static struct tenv e;

	(void)state;
	t_env_init(&e, "[cell a]\ncid = 3\n[cell b]\ncid = 4\n"
		   "[flow s]\nfrom = a\nto = b:1000\nsize = 64KiB\nperiod = 1ms\n", 2048);
	assert_ptr_equal(e.dp->copy, dp_copy_normal);
	t_post_rx(&e.cell[0], 4, false);
	t_post_rx(&e.cell[1], 2, false);
	connect_ab(&e, 1000, VSOCK_TYPE_STREAM);
	exchange(&e, 1000, VSOCK_TYPE_STREAM, 5000, false);
	t_env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normal_small),
		cmocka_unit_test(test_nt_small),
		cmocka_unit_test(test_normal_large),
		cmocka_unit_test(test_nt_large),
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_dp_nt_exchange),
		cmocka_unit_test(test_dp_default_normal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
