/* The cell side (gvsock/) receiving from a broken broker. Two stacks are joined by
 * the gvsock tests' wire (core's device side playing the broker), and the input
 * mixes ordinary socket calls on both cells with what only a broken broker does to
 * cell 1: raw bytes in its RX buffers with any used length, used-ring entries and
 * indices written by hand on either queue, and time jumps. Oracles: the sanitizers;
 * gv_process never fails except with -EIO once the ring is broken; calls return
 * only the errors gvsock.h lists (negative, small). */
#include "cmocka.h"
#include "fuzz_input.h"
#include "test_gvsock_wire.h"

static void api(struct wire *w, struct fin *in, uint8_t k)
{
	struct gv_stack *s = w->c[k >> 7].st;
	int id = fin_u8(in) % 8, rc = 0;
	static uint8_t buf[70000];
	uint32_t len = fin_u16(in) % sizeof(buf);

	switch ((k >> 3) % 9) {
	case 0: rc = gv_socket(s, 1 + (fin_u8(in) & 1)); break;
	case 1: rc = gv_listen(s, id, 1000 + fin_u8(in) % 3, 1 + fin_u8(in) % 4); break;
	case 2: rc = gv_connect(s, id, 3 + fin_u8(in) % 3, 1000 + fin_u8(in) % 3); break;
	case 3: rc = gv_accept(s, id, NULL, NULL); break;
	case 4: rc = gv_send(s, id, buf, len, fin_u8(in) & 1); break;
	case 5: rc = gv_recv(s, id, buf, len, fin_u8(in) & 1, NULL); break;
	case 6: rc = gv_shutdown(s, id, fin_u8(in) % 4); break;
	case 7: rc = gv_close(s, id); break;
	default:
		gv_poll_events(s, id);
		rc = gv_sock_error(s, id);
		gv_max_message(s, id);
		break;
	}
	assert_true(rc > -4096);
}

/* A broker writing a used element and index of its own choosing. */
static void raw_used(struct cell *c, struct fin *in)
{
	const struct gv_layout *l = &c->lay;
	bool tx = fin_u8(in) & 1;
	uint8_t *used = c->region + (tx ? l->tx_used : l->rx_used);
	uint16_t idx = (uint16_t)(used[2] | used[3] << 8);
	uint16_t slot = idx & (l->queue_size - 1);
	uint8_t k = fin_u8(in);

	if (k & 1) {
		uint32_t id = k & 2 ? fin_u32(in) : fin_u8(in) % l->queue_size;
		uint32_t len = fin_u32(in);

		memcpy(used + 4 + 8 * slot, &id, 4);
		memcpy(used + 8 + 8 * slot, &len, 4);
	}
	idx = k & 4 ? fin_u16(in) : (uint16_t)(idx + 1);
	used[2] = (uint8_t)idx;
	used[3] = (uint8_t)(idx >> 8);
}

static void inject(struct cell *c, struct fin *in)
{
	static uint8_t pkt[GV_HDR_SIZE + 4096];
	uint8_t k = fin_u8(in);
	uint32_t n = fin_u16(in) % sizeof(pkt);
	struct vsock_hdr h = {
		.src_cid = k & 1 ? fin_u64(in) : 3,
		.dst_cid = k & 2 ? fin_u64(in) : 4,
		.src_port = 1000 + fin_u8(in) % 3,
		.dst_port = k & 4 ? fin_u32(in) : 49152 + fin_u8(in) % 4,
		.type = 1 + (fin_u8(in) & 1),
		.op = fin_u8(in) % 9,
		.flags = fin_u8(in) % 4,
		.buf_alloc = fin_u32(in),
		.fwd_cnt = fin_u32(in),
	};
	uint32_t used = n;

	h.len = k & 8 ? fin_u32(in) : (n >= GV_HDR_SIZE ? n - GV_HDR_SIZE : 0);
	if (k & 16)
		used = fin_u32(in);
	vsock_hdr_encode(&h, pkt);
	fin_bytes(in, pkt + GV_HDR_SIZE, n > GV_HDR_SIZE ? (n - GV_HDR_SIZE) % 64 : 0);
	wire_inject(c, pkt, n, used);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wire w;
	struct fin in = { data, size };
	uint8_t setup = fin_u8(&in);
	/* Small regions and rings keep a run cheap; the shapes still vary. */
	struct wire_opts o = { .region = 512u << 10, .rcvbuf = setup & 1 ? 5120 : 16384,
			       .event_idx = setup & 2, .max_sockets = 4,
			       .lp = { .queue_size = setup & 4 ? 16 : 32,
				       .rx_buf_size = setup & 8 ? 1024 : 4096,
				       .tx_payload = 8192 } };

	assert_int_equal(wire_init(&w, &o), 0);
	for (unsigned int n = 0; fin_left(&in) && n < 256; n++) {
		uint8_t k = fin_u8(&in);
		int rc;

		switch (k & 7) {
		case 0: case 1:
			api(&w, &in, k);
			break;
		case 2:
			wire_run(&w, 1 + fin_u8(&in) % 8);
			break;
		case 3:
			inject(&w.c[1], &in);
			break;
		case 4:
			raw_used(&w.c[1], &in);
			break;
		case 5:
			w.now += (uint64_t)fin_u32(&in) << (fin_u8(&in) % 16);
			break;
		default:
			for (int i = 0; i < 2; i++) {
				rc = gv_process(w.c[i].st);
				assert_true(rc >= 0 || rc == -GV_EIO);
			}
			break;
		}
	}
	wire_fini(&w);
	return 0;
}
