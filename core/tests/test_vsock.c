/* The vsock packet layer: header golden bytes (checked against Linux's own header
 * layout too), constants, credit arithmetic across the 2^32 wrap, and core/'s error
 * numbers against <errno.h>. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vsock.h"
#include <linux/virtio_vsock.h>

static const struct vsock_hdr golden_hdr = {
	.src_cid = 0x0102030405060708ull,
	.dst_cid = 2,
	.src_port = 0x11223344,
	.dst_port = 1000,
	.len = 0xaabbccdd,
	.type = VSOCK_TYPE_SEQPACKET,
	.op = VSOCK_OP_RW,
	.flags = VSOCK_SEQ_EOM | VSOCK_SEQ_EOR,
	.buf_alloc = 0x00040000,
	.fwd_cnt = 0xfffffffe,
};

static const uint8_t golden_bytes[VSOCK_HDR_SIZE] = {
	0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* src_cid */
	0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* dst_cid */
	0x44, 0x33, 0x22, 0x11,                         /* src_port */
	0xe8, 0x03, 0x00, 0x00,                         /* dst_port */
	0xdd, 0xcc, 0xbb, 0xaa,                         /* len */
	0x02, 0x00,                                     /* type */
	0x05, 0x00,                                     /* op */
	0x03, 0x00, 0x00, 0x00,                         /* flags */
	0x00, 0x00, 0x04, 0x00,                         /* buf_alloc */
	0xfe, 0xff, 0xff, 0xff,                         /* fwd_cnt */
};

static void header_golden_bytes(void **state)
{
	uint8_t buf[VSOCK_HDR_SIZE + 3];
	struct vsock_hdr h;

	(void)state;
	assert_int_equal(sizeof(golden_bytes), 44);
	/* At an odd address: the codec needs no alignment. */
	memset(buf, 0x5a, sizeof(buf));
	vsock_hdr_encode(&golden_hdr, buf + 1);
	assert_memory_equal(buf + 1, golden_bytes, VSOCK_HDR_SIZE);
	assert_int_equal(buf[0], 0x5a);
	assert_int_equal(buf[VSOCK_HDR_SIZE + 1], 0x5a);
	memset(&h, 0xa5, sizeof(h));
	vsock_hdr_decode(&h, buf + 1);
	assert_int_equal(h.src_cid, golden_hdr.src_cid);
	assert_int_equal(h.dst_cid, golden_hdr.dst_cid);
	assert_int_equal(h.src_port, golden_hdr.src_port);
	assert_int_equal(h.dst_port, golden_hdr.dst_port);
	assert_int_equal(h.len, golden_hdr.len);
	assert_int_equal(h.type, golden_hdr.type);
	assert_int_equal(h.op, golden_hdr.op);
	assert_int_equal(h.flags, golden_hdr.flags);
	assert_int_equal(h.buf_alloc, golden_hdr.buf_alloc);
	assert_int_equal(h.fwd_cnt, golden_hdr.fwd_cnt);
}

/* The same bytes read through Linux's packed struct virtio_vsock_hdr. */
static void header_matches_linux(void **state)
{
	struct virtio_vsock_hdr l;

	(void)state;
	assert_int_equal(sizeof(l), VSOCK_HDR_SIZE);
	memcpy(&l, golden_bytes, sizeof(l));
	assert_int_equal(le64toh(l.src_cid), golden_hdr.src_cid);
	assert_int_equal(le64toh(l.dst_cid), golden_hdr.dst_cid);
	assert_int_equal(le32toh(l.src_port), golden_hdr.src_port);
	assert_int_equal(le32toh(l.dst_port), golden_hdr.dst_port);
	assert_int_equal(le32toh(l.len), golden_hdr.len);
	assert_int_equal(le16toh(l.type), golden_hdr.type);
	assert_int_equal(le16toh(l.op), golden_hdr.op);
	assert_int_equal(le32toh(l.flags), golden_hdr.flags);
	assert_int_equal(le32toh(l.buf_alloc), golden_hdr.buf_alloc);
	assert_int_equal(le32toh(l.fwd_cnt), golden_hdr.fwd_cnt);
}

static void constants_match_linux(void **state)
{
	(void)state;
	assert_int_equal(VSOCK_TYPE_STREAM, VIRTIO_VSOCK_TYPE_STREAM);
	assert_int_equal(VSOCK_TYPE_SEQPACKET, VIRTIO_VSOCK_TYPE_SEQPACKET);
	assert_int_equal(VSOCK_OP_INVALID, VIRTIO_VSOCK_OP_INVALID);
	assert_int_equal(VSOCK_OP_REQUEST, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(VSOCK_OP_RESPONSE, VIRTIO_VSOCK_OP_RESPONSE);
	assert_int_equal(VSOCK_OP_RST, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_OP_SHUTDOWN);
	assert_int_equal(VSOCK_OP_RW, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(VSOCK_OP_CREDIT_UPDATE, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(VSOCK_OP_CREDIT_REQUEST, VIRTIO_VSOCK_OP_CREDIT_REQUEST);
	assert_int_equal(VSOCK_SHUTDOWN_RCV, VIRTIO_VSOCK_SHUTDOWN_RCV);
	assert_int_equal(VSOCK_SHUTDOWN_SEND, VIRTIO_VSOCK_SHUTDOWN_SEND);
	assert_int_equal(VSOCK_SEQ_EOM, VIRTIO_VSOCK_SEQ_EOM);
	assert_int_equal(VSOCK_SEQ_EOR, VIRTIO_VSOCK_SEQ_EOR);
	assert_int_equal(VIRTIO_F_VERSION_1, 32);
	assert_int_equal(VIRTIO_F_EVENT_IDX, 29);
	assert_int_equal(VIRTIO_F_INDIRECT_DESC, 28);
	assert_int_equal(VIRTIO_VSOCK_F_SEQPACKET, 1);
}

static void errno_values_match(void **state)
{
	(void)state;
	assert_int_equal(RT_EFAULT, EFAULT);
	assert_int_equal(RT_EBUSY, EBUSY);
	assert_int_equal(RT_EINVAL, EINVAL);
	assert_int_equal(RT_ENOSPC, ENOSPC);
	assert_int_equal(RT_E2BIG, E2BIG);
	assert_int_equal(RT_ELOOP, ELOOP);
	assert_int_equal(RT_EPROTO, EPROTO);
	assert_int_equal(RT_EAGAIN, EAGAIN);
}

static void le_accessors(void **state)
{
	uint8_t b[8];

	(void)state;
	le16_store(b, 0x1234);
	assert_int_equal(b[0], 0x34);
	assert_int_equal(b[1], 0x12);
	le32_store(b, 0x89abcdef);
	assert_memory_equal(b, "\xef\xcd\xab\x89", 4);
	le64_store(b, 0x0102030405060708ull);
	assert_memory_equal(b, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
	assert_int_equal(le64_load(b), 0x0102030405060708ull);
	/* The value conversions are the host's view of those bytes. */
	uint32_t v;

	memcpy(&v, "\xef\xcd\xab\x89", 4);
	assert_int_equal(le32_to_cpu(v), 0x89abcdef);
	assert_int_equal(cpu_to_le32(0x89abcdef), v);
	assert_int_equal(le16_to_cpu(cpu_to_le16(0xbeef)), 0xbeef);
	assert_int_equal(le64_to_cpu(cpu_to_le64(0x1122334455667788ull)), 0x1122334455667788ull);
	assert_int_equal(cpu_to_le16(0x1234), htole16(0x1234));
	assert_int_equal(cpu_to_le64(0x1122334455667788ull), htole64(0x1122334455667788ull));
}

static void peer_free_basic_and_wrap(void **state)
{
	(void)state;
	assert_int_equal(vsock_peer_free(1000, 100, 50), 950);
	assert_int_equal(vsock_peer_free(1000, 1050, 50), 0);
	assert_int_equal(vsock_peer_free(1000, 50, 50), 1000);
	/* tx_cnt has wrapped, peer_fwd_cnt not yet: 21 bytes in flight. */
	assert_int_equal(vsock_peer_free(1000, 5, 0xfffffff0u), 979);
	assert_int_equal(vsock_peer_free(1000, 0, 0xffffffffu), 999);
	assert_int_equal(vsock_peer_free(UINT32_MAX, 0x7fffffffu, 0x80000000u), 0);
	/* The peer claims more in flight than it allocated: clamped, not wrapped. */
	assert_int_equal(vsock_peer_free(10, 100, 0), 0);
	assert_int_equal(vsock_peer_free(2, 3, 0xffffffffu), 0);
	/* A peer whose fwd_cnt runs ahead of what we sent is lying: no credit. */
	assert_int_equal(vsock_peer_free(1000, 100, 101), 0);
}

static void credit_rx_limits(void **state)
{
	struct vsock_credit c;
	struct vsock_hdr h = { 0 };

	(void)state;
	vsock_credit_init(&c, 100);
	assert_int_equal(vsock_credit_rx(&c, 60), 0);
	assert_int_equal(vsock_credit_rx(&c, 41), -EPROTO);
	assert_int_equal(c.rx_cnt, 60); /* nothing counted */
	assert_int_equal(vsock_credit_rx(&c, 40), 0);
	assert_int_equal(vsock_credit_rx(&c, 1), -EPROTO);
	vsock_credit_consumed(&c, 30);
	assert_int_equal(vsock_credit_unannounced(&c), 30);
	vsock_credit_to_peer(&c, &h);
	assert_int_equal(h.buf_alloc, 100);
	assert_int_equal(h.fwd_cnt, 30);
	assert_int_equal(vsock_credit_unannounced(&c), 0);
	assert_int_equal(vsock_credit_rx(&c, 30), 0);
	assert_int_equal(vsock_credit_rx(&c, 1), -EPROTO);
}

static void credit_take_bounded(void **state)
{
	struct vsock_credit c;

	(void)state;
	vsock_credit_init(&c, 4096);
	assert_int_equal(vsock_credit_take(&c, 10), 0); /* nothing heard from the peer */
	vsock_credit_from_peer(&c, &(struct vsock_hdr){ .buf_alloc = 1000, .fwd_cnt = 0 });
	assert_int_equal(vsock_credit_take(&c, 600), 600);
	assert_int_equal(vsock_credit_take(&c, 600), 400);
	assert_int_equal(vsock_credit_take(&c, 1), 0);
	assert_int_equal(c.tx_cnt, 1000);
	vsock_credit_from_peer(&c, &(struct vsock_hdr){ .buf_alloc = 1000, .fwd_cnt = 250 });
	assert_int_equal(vsock_credit_peer_free(&c), 250);
	/* The peer shrinks its buffer below what is in flight: no credit, no wrap. */
	vsock_credit_from_peer(&c, &(struct vsock_hdr){ .buf_alloc = 500, .fwd_cnt = 250 });
	assert_int_equal(vsock_credit_take(&c, 1), 0);
}

/* A sender and a receiver moving 16 GiB through a 256 KiB window, starting just
 * below the wrap: every counter wraps four times, the receiver never gets more than
 * it advertised, and the sender is held back only when the window is used up. */
static void credit_flow_across_wrap(void **state)
{
	struct vsock_credit tx, rx;
	struct vsock_hdr h = { 0 };
	uint64_t moved = 0, pending = 0;
	const uint32_t window = 256 * 1024;

	(void)state;
	vsock_credit_init(&tx, 0);
	vsock_credit_init(&rx, window);
	tx.tx_cnt = rx.rx_cnt = rx.fwd_cnt = rx.last_fwd_cnt = 0xffff0000u;
	vsock_credit_to_peer(&rx, &h);
	vsock_credit_from_peer(&tx, &h);
	for (unsigned int step = 0; moved < (16ull << 30); step++) {
		uint32_t want = 1 + (step * 2654435761u) % (96 * 1024);
		uint32_t n = vsock_credit_take(&tx, want);

		assert_true(step < 10000000);
		assert_true(vsock_credit_peer_free(&tx) <= window);
		/* Short only when the window, as last announced, is used up. */
		assert_true(n == want || vsock_credit_peer_free(&tx) == 0);
		assert_int_equal(vsock_credit_rx(&rx, n), 0);
		pending += n;
		moved += n;
		/* The receiver consumes part of what is pending, and announces when a
		 * quarter of the window is free again. */
		uint32_t eat = (uint32_t)(pending / (1 + step % 3));

		vsock_credit_consumed(&rx, eat);
		pending -= eat;
		if (vsock_credit_unannounced(&rx) >= window / 4 || step % 7 == 0) {
			vsock_credit_to_peer(&rx, &h);
			vsock_credit_from_peer(&tx, &h);
		}
		assert_int_equal((uint32_t)(rx.rx_cnt - rx.fwd_cnt), pending);
	}
	assert_int_equal(tx.tx_cnt, (uint32_t)(0xffff0000u + moved));
	assert_int_equal(rx.rx_cnt, tx.tx_cnt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_golden_bytes),
		cmocka_unit_test(header_matches_linux),
		cmocka_unit_test(constants_match_linux),
		cmocka_unit_test(errno_values_match),
		cmocka_unit_test(le_accessors),
		cmocka_unit_test(peer_free_basic_and_wrap),
		cmocka_unit_test(credit_rx_limits),
		cmocka_unit_test(credit_take_bounded),
		cmocka_unit_test(credit_flow_across_wrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
