/* The outgoing side of the gateway (gw_out.c) without DDS or a broker: gw_out_main is
 * run with rtvio_* and dds_* replaced at link time (-Wl,--wrap, meson.build) by one
 * connection whose messages are scripted and a writer that records every sample. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "gateway.h"
#include "gw_sample.h"

#define MAXM 16

static struct script {
	size_t len[MAXM];	/* the message's whole length */
	int nm, next, accepts;
	size_t wrote_len[MAXM];
	uint64_t wrote_seq[MAXM];
	uint32_t wrote_check[MAXM];
	int nwrote;
} sc;

int __wrap_rtvio_accept(struct rtvio_cell *c, int id, uint64_t *cid, uint32_t *port, int ms);
ssize_t __wrap_rtvio_recv(struct rtvio_cell *c, int id, void *buf, size_t len,
			  unsigned int flags, unsigned int *out_flags, int ms);
int __wrap_rtvio_close(struct rtvio_cell *c, int id);
dds_return_t __wrap_dds_write(dds_entity_t w, const void *data);
dds_return_t __wrap_dds_unregister_instance(dds_entity_t w, const void *data);
dds_return_t __wrap_dds_get_publication_matched_status(dds_entity_t w,
						       dds_publication_matched_status_t *st);

/* One connection, then the gateway is stopped (-EINTR, as rtvio_cell_interrupt). */
int __wrap_rtvio_accept(struct rtvio_cell *c, int id, uint64_t *cid, uint32_t *port, int ms)
{
	(void)c;
	(void)id;
	(void)ms;
	*cid = 3;
	*port = 1;
	return sc.accepts++ ? -EINTR : 20;
}

/* SEQPACKET as gvsock delivers it: at most len bytes of the next message, and
 * GV_MSG_TRUNC when it was longer. */
ssize_t __wrap_rtvio_recv(struct rtvio_cell *c, int id, void *buf, size_t len,
			  unsigned int flags, unsigned int *out_flags, int ms)
{
	(void)c;
	(void)id;
	(void)flags;
	(void)ms;
	if (out_flags)
		*out_flags = 0;
	if (sc.next >= sc.nm)
		return 0;
	size_t whole = sc.len[sc.next], n = whole < len ? whole : len;

	memset(buf, 0x40 + sc.next++, n);
	if (whole > len && out_flags)
		*out_flags = GV_MSG_TRUNC;
	return (ssize_t)n;
}

int __wrap_rtvio_close(struct rtvio_cell *c, int id)
{
	(void)c;
	(void)id;
	return 0;
}

dds_return_t __wrap_dds_write(dds_entity_t w, const void *data)
{
	const rtvio_gw_sample *s = data;

	(void)w;
	assert_true(sc.nwrote < MAXM);
	sc.wrote_len[sc.nwrote] = s->data._length;
	sc.wrote_seq[sc.nwrote] = s->seq;
	sc.wrote_check[sc.nwrote++] = s->check;
	assert_int_equal(s->check, gw_checksum(s->data._buffer, s->data._length));
	return 0;
}

dds_return_t __wrap_dds_unregister_instance(dds_entity_t w, const void *data)
{
	(void)w;
	(void)data;
	return 0;
}

dds_return_t __wrap_dds_get_publication_matched_status(dds_entity_t w,
						       dds_publication_matched_status_t *st)
{
	(void)w;
	memset(st, 0, sizeof(*st));
	st->current_count = 1;
	return 0;
}

static struct gw g;
static struct rtvio_flow_cfg flow;
static struct gw_flow f;
static uint8_t buf[64];

static int setup(void **state)
{
	(void)state;
	memset(&sc, 0, sizeof(sc));
	memset(&g, 0, sizeof(g));
	memset(&flow, 0, sizeof(flow));
	memset(&f, 0, sizeof(f));
	flow.type = RTVIO_SEQPACKET;
	flow.to_port = 1000;
	f.gw = &g;
	f.f = &flow;
	f.out = true;
	f.sock = -1;
	f.buf = buf;
	f.cap = sizeof(buf);
	return 0;
}

/* A message longer than the flow's cap arrives cut to cap bytes: it is counted and
 * not published (its checksum would be valid at the far end), and it takes no
 * number, so the far gateway sees no gap. */
static void test_truncated_not_published(void **state)
{
	(void)state;
	size_t msgs[] = { 40, 64, 65, 1000, 50 };

	memcpy(sc.len, msgs, sizeof(msgs));
	sc.nm = 5;
	gw_out_main(&f);
	assert_int_equal(sc.next, 5);
	assert_int_equal(sc.nwrote, 3);
	assert_int_equal(sc.wrote_len[0], 40);
	assert_int_equal(sc.wrote_len[1], 64);
	assert_int_equal(sc.wrote_len[2], 50);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sc.wrote_seq[i], i);
	assert_int_equal(f.n.rejected, 2);
	assert_int_equal(f.n.messages, 3);
	assert_int_equal(f.n.bytes, 154);
	assert_int_equal(f.n.samples, 3);
	assert_int_equal(f.n.connections, 1);
	assert_string_equal(f.status, "ok");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_truncated_not_published, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
