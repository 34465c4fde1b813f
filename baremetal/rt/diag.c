/* The give-up dump (see diag.h). */
#include "diag.h"

#include "arch.h"
#include "console.h"
#include "port.h"

/* Where a ring stands: what the device holds and where it asked to be kicked. */
static void ring(const char *name, const struct gv_ring_pos *p)
{
	con_puts(",\"");
	con_puts(name);
	con_puts("_ring\":{");
	con_kv("published", p->published, 1);
	con_kv("used", p->used, 0);
	con_kv("taken", p->taken, 0);
	con_kv("avail_event", p->avail_event, 0);
	con_puts("}");
}

static void stats(struct gv_stack *s)
{
	struct gv_stats st;
	struct gv_tx_info tx;

	gv_get_stats(s, &st);
	gv_tx_info(s, &tx);
	con_puts(",\"stats\":{");
	con_kv("rx_packets", st.rx_packets, 1);
	con_kv("tx_packets", st.tx_packets, 0);
	con_kv("rx_no_sock", st.rx_no_sock, 0);
	con_kv("rx_bad_len", st.rx_bad_len, 0);
	con_kv("rx_bad_hdr", st.rx_bad_hdr, 0);
	con_kv("rx_bad_credit", st.rx_bad_credit, 0);
	con_kv("rst_dropped", st.rst_dropped, 0);
	con_kv("rst_parked", st.rst_parked, 0);
	con_kv("ring_errors", st.ring_errors, 0);
	con_puts("},\"tx\":{");
	con_kv("hdr_free", tx.hdr_free, 1);
	con_kv("pay_free", tx.pay_free, 0);
	con_kv("desc_free", tx.desc_free, 0);
	con_kv("rst_queued", tx.rst_queued, 0);
	con_puts("}");
	ring("tx", &tx.tx);
	ring("rx", &tx.rx);
}

static void slot(uint32_t i, const struct gv_slot_info *si, uint64_t now)
{
	con_puts("RTVIO-DIAG {");
	con_kvs("arch", arch_name, 1);
	con_kv("slot", i, 0);
	con_kvs("state", gv_slot_state_name(si->state), 0);
	con_kvs("type", si->type == GV_SOCK_SEQPACKET ? "seqpacket" : "stream", 0);
	con_kv("pend", si->pend, 0);
	con_puts(",\"err\":");
	con_sdec(si->err);
	con_kv("local_port", si->local_port, 0);
	con_kv("peer_cid", si->peer_cid, 0);
	con_kv("peer_port", si->peer_port, 0);
	con_puts(",\"deadline_in_ms\":");
	con_sdec(si->deadline ? ((int64_t)si->deadline - (int64_t)now) / 1000000 : 0);
	con_puts("}\n");
}

void bm_diag(struct gv_stack *s, const char *task, uint32_t port)
{
	uint64_t now = bm_now_ns();
	struct gv_slot_info si;

	con_puts("RTVIO-DIAG {");
	con_kvs("arch", arch_name, 1);
	con_kvs("task", task, 0);
	con_kv("port", port, 0);
	stats(s);
	con_puts("}\n");
	for (uint32_t i = 0; gv_slot_info(s, i, &si) == 0; i++)
		if (si.state != GV_SLOT_FREE)
			slot(i, &si, now);
}
