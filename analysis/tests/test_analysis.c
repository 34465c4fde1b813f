/* Hand-worked examples of the analysis: every expected number is derived in the
 * comment above it, from the equations in docs/analysis.md. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "analysis.h"
#include "sim.h"

/* A platform where only what a test sets costs anything: 1 byte per ns. */
static struct an_broker broker(enum an_policy p)
{
	struct an_broker b = { 0 };

	b.policy = p;
	b.chunk = 4096;
	b.plat.copy_bandwidth = 1000000000ull;
	return b;
}

static struct an_flow costed(const char *name, uint64_t C, uint64_t q, uint64_t Q, uint64_t T,
			     uint64_t D, unsigned prio)
{
	struct an_flow f = { 0 };

	f.name = name;
	f.type = AN_SEQPACKET;
	f.explicit_costs = true;
	f.cost = C;
	f.last_step = q;
	f.max_step = Q;
	f.period = T;
	f.deadline = D;
	f.priority = prio;
	return f;
}

static void test_chunk_cost(void **state)
{
	struct an_platform p = { .copy_bandwidth = 3000000000ull, .chunk_overhead = 7 };

	(void)state;
	/* e(b) = 7 + ceil(b * 1e9 / 3e9): b = 3 -> 7 + 1; b = 4 -> 7 + ceil(1.33) = 9;
	 * b = 0 -> 7. */
	assert_int_equal(an_chunk_cost(&p, 3), 8);
	assert_int_equal(an_chunk_cost(&p, 4), 9);
	assert_int_equal(an_chunk_cost(&p, 0), 7);
	/* 1 GiB at 1 B/s does not overflow: 2^30 * 1e9 ns + 7. */
	p.copy_bandwidth = 1;
	assert_true(an_chunk_cost(&p, 1ull << 30) == (1ull << 30) * 1000000000ull + 7);
}

static void test_costs_from_sizes(void **state)
{
	struct an_broker b = broker(AN_FP);
	struct an_flow f = { 0 };
	struct an_costs c;

	(void)state;
	/* 1 byte/ns, chunk overhead 100 ns, packet overhead 1000 ns, chunk 4096, RX
	 * payload 4052 (a 4096-byte buffer less its 44-byte header). */
	b.plat.chunk_overhead = 100;
	b.plat.packet_overhead = 1000;
	f.size = 10000;
	f.rx_payload = 4052;
	f.rx_max = 4052;
	f.packet_size = 65536;
	f.type = AN_SEQPACKET;
	f.period = f.deadline = 1000000;
	/* One TX packet of 10000 B, delivered as pieces of 4052, 4052, 1896, each one
	 * step (chunk 4096 >= 4052) with its own packet overhead:
	 * e(4052) = 4152, e(1896) = 1996; C = 2 * (4152 + 1000) + 1996 + 1000 = 13300;
	 * q = 1996 + 1000 = 2996; Q = e(min(4096, 4052, 65536, 10000)) + 1000 = 5152. */
	assert_int_equal(an_flow_costs(&f, &b, &c), 0);
	assert_int_equal(c.C, 13300);
	assert_int_equal(c.q, 2996);
	assert_int_equal(c.Q, 5152);

	/* Stream: the same; its credit updates are a stream of their own (an_analyze). */
	f.type = AN_STREAM;
	assert_int_equal(an_flow_costs(&f, &b, &c), 0);
	assert_int_equal(c.C, 13300);
	assert_int_equal(c.q, 2996);
	assert_int_equal(c.Q, 5152);

	/* Ingest and batch gaps: 30 ns per packet ingested, counted twice per TX packet
	 * (its own ingest, and one into the slot it frees), and a 640 ns gap per 64
	 * steps, 10 ns per step: 3 steps, 1 packet: C = 13300 + 30 + 60 = 13390; q and
	 * Q are single steps, without either. */
	b.plat.ingest_packet = 30;
	b.plat.batch_gap = 640;
	b.run_steps = 64;
	assert_int_equal(an_flow_costs(&f, &b, &c), 0);
	assert_int_equal(c.C, 13390);
	assert_int_equal(c.q, 2996);
	assert_int_equal(c.Q, 5152);
	b.plat.ingest_packet = 0;
	b.plat.batch_gap = 0;

	/* When the receiver's largest RX buffer is not known, only the chunk limits the
	 * longest step: Q = e(min(4096, 65536, 10000)) + 1000 = 4196 + 1000 = 5196. */
	f.rx_max = 0;
	assert_int_equal(an_flow_costs(&f, &b, &c), 0);
	assert_int_equal(c.Q, 5196);
	/* A best-effort flow is held to neither its size nor its sender's packet size:
	 * a 64-byte one still steps as long as min(chunk, RX buffer) allows: with
	 * rx_max 4052, Q = e(4052) + 1000 = 5152 (not e(64) + 1000 = 1164). */
	f.best_effort = true;
	f.size = 64;
	f.rx_max = 4052;
	assert_int_equal(an_flow_costs(&f, &b, &c), 0);
	assert_int_equal(c.Q, 5152);
	f.best_effort = false;
	/* An RX buffer range the wrong way round is refused. */
	f.rx_max = 4000;
	assert_int_equal(an_flow_costs(&f, &b, &c), -EINVAL);
	f.rx_max = 4052;

	/* 70000 B: a full TX packet of 65536 = 16 pieces of 4052 and one of 704 ->
	 * 16 * 5152 + (804 + 1000) = 84236; then 4464 = 4052 + 412 ->
	 * 5152 + (512 + 1000) = 6664. C = 90900, q = 512 + 1000 = 1512. */
	f.type = AN_SEQPACKET;
	f.size = 70000;
	assert_int_equal(an_flow_costs(&f, &b, &c), 0);
	assert_int_equal(c.C, 90900);
	assert_int_equal(c.q, 1512);
	assert_int_equal(c.Q, 5152);
	/* With the extras above: 17 + 2 = 19 steps and 2 packets:
	 * 90900 + 19 * 10 + 2 * 60 = 91210. */
	b.plat.ingest_packet = 30;
	b.plat.batch_gap = 640;
	assert_int_equal(an_flow_costs(&f, &b, &c), 0);
	assert_int_equal(c.C, 91210);
	b.plat.ingest_packet = 0;
	b.plat.batch_gap = 0;

	/* A chunk smaller than the RX buffer: chunk 1000, size 2500, one piece in
	 * steps 1000, 1000, 500: C = 1100 + 1100 + 600 + 1000 = 3800, q = 1600,
	 * Q = e(1000) + 1000 = 2100. */
	b.chunk = 1000;
	f.size = 2500;
	assert_int_equal(an_flow_costs(&f, &b, &c), 0);
	assert_int_equal(c.C, 3800);
	assert_int_equal(c.q, 1600);
	assert_int_equal(c.Q, 2100);

	/* Chunks restart with every piece: chunk 1000, RX payload 1500, size 3000 ->
	 * pieces 1500, 1500, each in steps 1000, 500: 2 * (1100 + 600 + 1000) = 5400
	 * (not the 3 * 1100 + 1000 of chunks laid over the whole packet); q = 1600. */
	f.rx_payload = 1500;
	f.size = 3000;
	assert_int_equal(an_flow_costs(&f, &b, &c), 0);
	assert_int_equal(c.C, 5400);
	assert_int_equal(c.q, 1600);
	assert_int_equal(c.Q, 2100);
}

static void test_sbf(void **state)
{
	(void)state;
	/* Pi = 1000, Theta = 400: blackout 2 * 600 = 1200. */
	assert_int_equal(an_sbf(1000, 400, 1200), 0);
	assert_int_equal(an_sbf(1000, 400, 1201), 1);
	/* 1600 = 1200 + 400: the first budget complete. */
	assert_int_equal(an_sbf(1000, 400, 1600), 400);
	/* Then 600 ns of nothing: t' = 2200 - 600 = 1600 = 1 * 1000 + 600, r = 600 is not
	 * above the gap 600 -> 400. */
	assert_int_equal(an_sbf(1000, 400, 2200), 400);
	assert_int_equal(an_sbf(1000, 400, 2600), 800);
	/* Inverse: least t with sbf(t) >= w. */
	assert_int_equal(an_sbf_inv(1000, 400, 0), 0);
	assert_int_equal(an_sbf_inv(1000, 400, 1), 1201);
	assert_int_equal(an_sbf_inv(1000, 400, 400), 1600);
	/* 401 = one whole budget + 1: 2 * 600 + 1 * 1000 + 1 = 2201. */
	assert_int_equal(an_sbf_inv(1000, 400, 401), 2201);
	/* Dedicated resource and no resource at all. */
	assert_int_equal(an_sbf(1000, 1000, 77), 77);
	assert_int_equal(an_sbf_inv(1000, 2000, 77), 77);
	assert_true(an_sbf_inv(1000, 0, 1) == UINT64_MAX);
	/* Consistency with each other on a grid. */
	for (uint64_t w = 1; w < 3000; w += 7) {
		uint64_t t = an_sbf_inv(1000, 400, w);

		assert_true(an_sbf(1000, 400, t) >= w);
		assert_true(an_sbf(1000, 400, t - 1) < w);
	}
}

static void test_theta(void **state)
{
	struct an_broker b = broker(AN_FP);

	(void)state;
	/* 1000 B per 5000 ns at 1 B/ns is 1000 ns of copying; less one step that may
	 * overrun the boundary (300), one extra chunk overhead for a split step and one
	 * for a forfeited remainder (2 * 100): 500. */
	b.reg_budget = 1000;
	b.reg_period = 5000;
	b.plat.chunk_overhead = 100;
	assert_int_equal(an_regulated_theta(&b, 300), 500);
	/* Losses larger than the budget leave nothing. */
	assert_int_equal(an_regulated_theta(&b, 1000), 0);
	/* A budget that takes longer to copy than the period plus the losses
	 * (5000 + 500 ns) never runs out: Theta = Pi. */
	b.reg_budget = 1000000;
	assert_int_equal(an_regulated_theta(&b, 300), 5000);
}

/* Three flows, explicit copy costs (ns), each message one TX packet; ingest 100 ns
 * per packet, 4 TX slots in all, ingest latency 1000, notify latency 2000, no step
 * or packet overhead (so the broker's RST reply costs nothing):
 *   A: copy 2000, q 1000, Q 1000, T 4000,  D 8000,  priority 1
 *   B: copy 3000, q 1000, Q 1500, T 15000, D 18000, priority 2
 *   C: copy 4000, q 2000, Q 2000, T 30000, D 30000, priority 3
 * Each C adds 2 * 100 of ingest (its packet's, and one into the slot it frees):
 * C_A = 2200, C_B = 3200, C_C = 4200. The blocking pool is (4 + 1) * 100 = 500
 * (every slot's packet and one more, ingested while the level-i period runs), and
 * every release is seen with up to 1000 of jitter (the ingest latency). */
static void three_flows(struct an_flow *f, struct an_broker *b)
{
	*b = broker(AN_FP);
	b->plat.ingest_packet = 100;
	b->tx_slots = 4;
	b->plat.ingest_latency = 1000;
	b->plat.notify_latency = 2000;
	f[0] = costed("A", 2000, 1000, 1000, 4000, 8000, 1);
	f[1] = costed("B", 3000, 1000, 1500, 15000, 18000, 2);
	f[2] = costed("C", 4000, 2000, 2000, 30000, 30000, 3);
}

static void test_fp_hand(void **state)
{
	struct an_flow f[3];
	struct an_broker b;
	struct an_result res;
	struct an_flow_result out[3];

	(void)state;
	three_flows(f, &b);
	assert_int_equal(an_analyze(f, 3, &b, &res, out), 0);
	assert_int_equal(res.status, AN_OK);

	/* A: B_A = 500 + max(1500, 2000) = 2500. Jobs counted with J = 1000:
	 * L = 2500 + 2200 = 4700 -> ceil(5700/4000) = 2 -> 6900 -> ceil(7900/4000) = 2:
	 * L = 6900, ceil(7900/4000) = 2 jobs.
	 * k=1: S = 2500 + (2200 - 1000) = 3700, F = 4700: 4700.
	 * k=2: S = 2500 + 2200 + 1200 = 5900, F = 6900: 6900 - 4000 + J'_A (1000) = 3900.
	 * R_A = 4700, latency 1000 + 4700 + 2000 = 7700 <= 8000. */
	assert_int_equal(out[0].busy_period, 6900);
	assert_int_equal(out[0].jobs, 2);
	assert_int_equal(out[0].response, 4700);
	assert_int_equal(out[0].latency, 7700);
	assert_true(out[0].schedulable);

	/* B: B_B = 500 + 2000 = 2500.
	 * L: 7900 -> A ceil(8900/4000) = 3: 12300 -> A 4: 14500 -> A 4, B ceil(15500/15000)
	 * = 2: 17700 -> A 5: 19900 -> A 6: 22100 -> A ceil(23100/4000) = 6, B 2: 22100;
	 * ceil(23100/15000) = 2 jobs.
	 * k=1: S = 2500 + 2200 + A: 6900 -> A floor(7900/4000)+1 = 2: 9100 -> 3: 11300 ->
	 * 4: 13500 -> A floor(14500/4000)+1 = 4: 13500. F = 14500: 14500.
	 * k=2: S from max(2500 + 3200 + 2200 + A 2200, 13500 + 3200) = 16700 -> A
	 * floor(17700/4000)+1 = 5: 7900 + 11000 = 18900 -> A floor(19900/4000)+1 = 5.
	 * F = 19900: 19900 - 15000 + 1000 = 5900.
	 * R_B = 14500; latency 17500 <= 18000. (Without the ingest latency as jitter A
	 * would count 3 jobs, not 4, and R_B would read 12300.) */
	assert_int_equal(out[1].busy_period, 22100);
	assert_int_equal(out[1].jobs, 2);
	assert_int_equal(out[1].worst_job, 1);
	assert_int_equal(out[1].response, 14500);
	assert_int_equal(out[1].latency, 17500);
	assert_true(out[1].schedulable);

	/* C: B_C = 500 (nothing below, and the RST reply costs 0).
	 * L: 10100 -> A 3, B 1, C 1: 14500 -> A 4, B 2: 19900 -> A 6: 24300 -> A 7:
	 * 26500 -> A ceil(27500/4000) = 7, B 2, C 1: 26500; 1 job.
	 * S = 500 + 2200 + A + B: 8100 -> A floor(9100/4000)+1 = 3: 12500 -> A 4: 14700
	 * -> A 4, B floor(15700/15000)+1 = 2: 17900 -> A 5: 20100 -> A 6: 22300 -> A
	 * floor(23300/4000)+1 = 6, B 2: 22300. F = 24300 = R_C; latency 27300. */
	assert_int_equal(out[2].busy_period, 26500);
	assert_int_equal(out[2].response, 24300);
	assert_int_equal(out[2].latency, 27300);
	assert_true(res.schedulable);

	/* A deadline 1 ns short of C's latency makes it, and the whole set, fail. */
	f[2].deadline = 27299;
	assert_int_equal(an_analyze(f, 3, &b, &res, out), 0);
	assert_false(out[2].schedulable);
	assert_false(res.schedulable);
}

/* The same three flows in the simulator without ingest work and latency: with no
 * jitter the analysis is exact, the blocking step being the longest lower step. */
static void test_fp_hand_sim(void **state)
{
	struct an_flow f[3];
	struct an_broker b;
	struct an_result res;
	struct an_flow_result out[3];
	static const uint64_t block[3] = { 2000, 2000, 0 };

	(void)state;
	three_flows(f, &b);
	b.plat.ingest_packet = 0;
	b.plat.ingest_latency = 0;
	assert_int_equal(an_analyze(f, 3, &b, &res, out), 0);
	for (size_t i = 0; i < 3; i++) {
		bool inc[3];
		unsigned prio[3] = { 1, 2, 3 };
		struct sim_flow_stats st[3];
		struct sim_config c = { .flows = f, .n = 3, .include = inc, .prio = prio,
					.b = &b, .block_ns = block[i], .limit_ns = 1000000 };

		for (size_t j = 0; j < 3; j++)
			inc[j] = j <= i;
		assert_int_equal(sim_run(&c, st), 0);
		assert_int_equal(st[i].max_response, out[i].response);
	}
}

/* Davis, Burns, Bril and Lukkien (2007), section 3: three CAN messages of 1 ms each,
 * periods 2.5, 3.5, 3.5 ms, deadlines equal to periods, priorities A > B > C, no
 * preemption within a message. Here: ns, C = q = Q = 1000, no platform costs.
 *
 * C (lowest, no blocking): L = 3000 -> A2: 4000 -> B2 C2: 6000 -> A3: 7000 -> A3 B2 C2
 * = 7000, so ceil(7000/3500) = 2 jobs of C are in the level-C active period.
 * k=1: S = 0 + A + B = 2000 (A floor(2000/2500)+1 = 1, B 1), F = 3000, R = 3000.
 * k=2: S = 1000 + A + B: 3000 -> A2 B1: 4000 -> A2 B2: 5000 -> A3 B2: 6000 -> A
 * floor(6000/2500)+1 = 3, B floor(6000/3500)+1 = 2: 6000. F = 7000, R = 7000 - 3500 =
 * 3500. The original analysis stopped at k = 1 and claimed 3000. */
static void test_davis_2007(void **state)
{
	struct an_flow f[3];
	struct an_broker b = broker(AN_FP);
	struct an_result res;
	struct an_flow_result out[3];

	(void)state;
	f[0] = costed("A", 1000, 1000, 1000, 2500, 2500, 1);
	f[1] = costed("B", 1000, 1000, 1000, 3500, 3500, 2);
	f[2] = costed("C", 1000, 1000, 1000, 3500, 3500, 3);
	assert_int_equal(an_analyze(f, 3, &b, &res, out), 0);
	/* A: blocked by one lower message (1000), F = 2000.
	 * B: blocked 1000; L = 5000 (2 jobs); k=1: S = 1000 + A = 2000, F = 3000;
	 * k=2: S = 2000 + A: 4000 -> A2: 4000, F = 5000, 5000 - 3500 = 1500. R_B = 3000. */
	assert_int_equal(out[0].response, 2000);
	assert_int_equal(out[1].response, 3000);
	assert_int_equal(out[2].busy_period, 7000);
	assert_int_equal(out[2].jobs, 2);
	assert_int_equal(out[2].worst_job, 2);
	assert_int_equal(out[2].response, 3500);
	assert_true(out[2].schedulable); /* exactly on its deadline */

	/* The simulator agrees for C: 0-1 A, 1-2 B, 2-3 C; A (2.5) 3-4; B (3.5) 4-5;
	 * A (5.0) 5-6; C (3.5) 6-7: 3500 after its release. */
	{
		unsigned prio[3] = { 1, 2, 3 };
		struct sim_flow_stats st[3];
		struct sim_config c = { .flows = f, .n = 3, .prio = prio, .b = &b,
					.limit_ns = 100000 };

		assert_int_equal(sim_run(&c, st), 0);
		assert_int_equal(st[2].max_response, 3500);
		/* C's third job, released at 7000 when the level-C period ends, is run
		 * too: the simulator stops only when the broker goes idle. */
		assert_true(st[2].jobs >= 2);
	}
	/* One ns less of deadline and C misses, which the first-job analysis missed. */
	f[2].deadline = 3499;
	assert_int_equal(an_analyze(f, 3, &b, &res, out), 0);
	assert_false(out[2].schedulable);
	assert_false(res.schedulable);
}

/* EDF, explicit costs, no platform costs:
 *   X: C 2000, q 1000, Q 1000, T 5000,  D 4000
 *   Y: C 3000, q 1500, Q 1500, T 10000, D 10000
 * The broker stamps a packet (its deadline's origin) at the ingest pass that takes
 * it, which may come a whole step after the packet became visible: up to 1500 late
 * (Y's step; no TX slots to ingest here). Every release therefore carries 1500 of
 * jitter, and every response 1500 more. */
static void test_edf_hand(void **state)
{
	struct an_flow f[2];
	struct an_broker b = broker(AN_EDF);
	struct an_result res;
	struct an_flow_result out[2];

	(void)state;
	f[0] = costed("X", 2000, 1000, 1000, 5000, 4000, 0);
	f[1] = costed("Y", 3000, 1500, 1500, 10000, 10000, 0);
	assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
	/* Busy period with the longest step as blocking: 1500 + X 2000 + Y 3000 = 6500
	 * -> X ceil(8000/5000) = 2: 8500 -> 8500. Deadlines up to 8500 (X's at 4000 and
	 * at 4000 + 5000 - 1500 = 7500; Y's first at 10000):
	 * t = 4000: dbf = X floor(1500/5000)+1 = 1: 2000, B = Q_Y = 1500 (D_Y > 4000):
	 * 3500 <= 4000; t = 7500: X floor(5000/5000)+1 = 2: 4000 + 1500 <= 7500. */
	assert_true(res.demand_ok);
	assert_int_equal(out[0].busy_period, 8500);
	/* X, offsets 0, its own 5000 - 1500 = 3500, and Y's deadline meeting its own at
	 * 10000 - 4000 = 6000:
	 * a = 0: d = 4000, B = 1500, m = 0, S = 1500 + 1000 = 2500, F = 3500: 3500.
	 * a = 3500: d = 7500, B = 1500, m = floor(5000/5000) = 1, S = 1500 + 2000 + 1000
	 * = 4500, F = max(4500, 3500 + 1000) + 1000 = 5500: 2000.
	 * a = 6000: d = 10000, B = 0, m = 1, Y due: S = 3000 + 3000 = 6000, F =
	 * max(6000, 7000) + 1000 = 8000: 2000.
	 * R_X = 1500 + 3500 = 5000: the broker meets its own deadlines (the demand
	 * test), but a message kicked just as a step began may take 5000 > 4000. */
	assert_int_equal(out[0].response, 5000);
	assert_false(out[0].schedulable);
	/* Y, offsets 0 and where X's deadlines (4000 + 5000k - 1500) meet 10000 + a:
	 * a = 2500, 7500 (its own next release, 8500, is not below L).
	 * a = 0: d = 10000, no blocker, X due floor(7500/5000)+1 = 2, S = 1500 + X: 3500
	 * -> X floor(5000/5000)+1 = 2: 5500 -> 2: F = 5500 + 1500 = 7000: 7000.
	 * a = 2500: X due 3, S = 5500 (X released 2 by then), F = 7000: 4500.
	 * a = 7500: X due 4, S = 5500, F = max(5500, 9000) + 1500 = 10500: 3000.
	 * R_Y = 1500 + 7000 = 8500 <= 10000. */
	assert_int_equal(out[1].response, 8500);
	assert_true(out[1].schedulable);
	assert_false(res.schedulable);

	/* Shrink X's deadline to 3400: at t = 3400, 2000 + 1500 > 3400: the demand test
	 * fails there. */
	f[0].deadline = 3400;
	assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
	assert_false(res.demand_ok);
	assert_int_equal(res.demand_fail_at, 3400);
	assert_false(out[0].schedulable);
	assert_false(res.schedulable);
}

/* FIFO on the same X and Y: no best-effort flow and no ingest work, so B = 0; the
 * stamps (fifo's order) spread by up to Y's 1500 step, as under edf. Busy period:
 * 5000 -> X ceil(6500/5000) = 2: 7000 -> 7000. Release points below it: x = 0 and
 * X's 5000 - 1500 = 3500:
 * x = 0: X floor(1500/5000)+1 = 1, Y 1: W = 5000: 5000;
 * x = 3500: X floor(5000/5000)+1 = 2, Y 1: W = 7000: 3500.
 * Both bounds are 1500 + 5000 = 6500: X misses its 4000 deadline, by more than
 * under edf (what deadlines buy), Y meets its 10000. */
static void test_fifo_hand(void **state)
{
	struct an_flow f[2];
	struct an_broker b = broker(AN_FIFO);
	struct an_result res;
	struct an_flow_result out[2];

	(void)state;
	f[0] = costed("X", 2000, 1000, 1000, 5000, 4000, 0);
	f[1] = costed("Y", 3000, 1500, 1500, 10000, 10000, 0);
	assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
	assert_int_equal(out[0].response, 6500);
	assert_int_equal(out[1].response, 6500);
	assert_false(out[0].schedulable);
	assert_true(out[1].schedulable);
	assert_false(res.schedulable);
	assert_int_equal(res.status, AN_OK);

	/* Under fifo the broker queues best-effort traffic in arrival order with the
	 * rest: with a best-effort flow nothing bounds what is queued ahead. */
	f[1].best_effort = true;
	assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
	assert_int_equal(res.status, AN_UNBOUNDED);
	assert_false(out[0].bounded);
	assert_false(res.schedulable);
}

/* Regulated fp, one flow: C 500, q 200, Q 300, T = D = 100 us (explicit costs: no
 * bytes known, so no byte surcharge); 1000 B per 5000 ns at 1 B/ns with a 100 ns
 * chunk overhead. The byte regulator charges bytes only: every throttled period
 * serves at least 1000 - 44 = 956 B and a throttle costs at most 5000 + 100 ns, so
 * each regulated byte costs 5100/956 ns and every window one throttle (in the pool).
 * The broker's own RST reply (a 100 ns step of 44 B) may block: under fp for its
 * 100 ns only, since its 44 B were charged at its start, before the window, where
 * the pool's one throttle covers them (its surcharge, ceil(44 * 5100 / 956) = 235,
 * is not charged again): F = 5100 + 100 + 500 = 5700. edf and fifo still charge
 * blocking steps their surcharge (100 + 235 = 335). */
static void test_regulated_hand(void **state)
{
	struct an_flow f = costed("R", 500, 200, 300, 100000, 100000, 1);
	struct an_broker b = broker(AN_FP);
	struct an_result res;
	struct an_flow_result out;

	(void)state;
	b.reg_budget = 1000;
	b.reg_period = 5000;
	b.plat.chunk_overhead = 100;
	assert_int_equal(an_reg_served(&b), 956);
	assert_int_equal(an_reg_stall(&b), 5100);
	assert_int_equal(an_reg_surcharge(&b, 44), 235);
	assert_int_equal(an_analyze(&f, 1, &b, &res, &out), 0);
	assert_true(res.regulated);
	assert_int_equal(res.theta, 956);
	assert_int_equal(out.response, 5700);
	/* edf: blocking 5100 + 335 and the work, F = 5935 at a = 0, and stamps up to a
	 * throttle (5000, longer than the 300 step) late: 10935. */
	b.policy = AN_EDF;
	assert_int_equal(an_analyze(&f, 1, &b, &res, &out), 0);
	assert_int_equal(out.response, 10935);
	/* fifo: no step blocks, 5100 + 500 = 5600, plus 5000: 10600. */
	b.policy = AN_FIFO;
	assert_int_equal(an_analyze(&f, 1, &b, &res, &out), 0);
	assert_int_equal(out.response, 10600);
	/* Utilisation 500/100000 = 0.005 of 1: fine; a period of 400 ns gives 1.25:
	 * overload; and so does a budget that cannot carry a header and a byte. */
	f.period = 400;
	b.policy = AN_FP;
	assert_int_equal(an_analyze(&f, 1, &b, &res, &out), 0);
	assert_int_equal(res.status, AN_OVERLOAD);
	assert_false(out.bounded);
	assert_false(res.schedulable);
	f.period = 100000;
	b.reg_budget = 44;
	assert_int_equal(an_analyze(&f, 1, &b, &res, &out), 0);
	assert_int_equal(res.status, AN_OVERLOAD);
	/* Sized flows charge their bytes: 100 B in one piece are 144 B, a surcharge of
	 * ceil(144 * 5100 / 956) = 769 ns on C and on Q. */
	{
		struct an_flow g = { .name = "g", .type = AN_SEQPACKET, .size = 100,
				     .rx_payload = 4096, .rx_max = 4096, .packet_size = 4096,
				     .period = 100000, .deadline = 100000, .priority = 1 };
		struct an_costs c;

		b.reg_budget = 1000;
		assert_int_equal(an_flow_costs(&g, &b, &c), 0);
		assert_int_equal(c.bytes, 144);
		assert_int_equal(c.Qbytes, 144);
		assert_int_equal(an_reg_surcharge(&b, c.bytes), 769);
		/* C = 100 + 100 = 200, Q the same; the RST reply blocks for its 100 ns
		 * (fp): F = 5100 + 100 + 200 + 769 = 6169. */
		assert_int_equal(an_analyze(&g, 1, &b, &res, &out), 0);
		assert_int_equal(out.response, 6169);
	}
}

/* The real-time demand per regulation period with the cells' budgets (an_rt_demand,
 * docs/analysis.md "Regulation serving real-time flows first"): Pi = 250 us, budget
 * period P = 1 ms, one 100 B seqpacket flow (144 B with its header) every 10 ms with
 * D = 5 ms that 3 control packets and 1 short piece per budget period ride. Messages:
 * floor((250 us + 5 ms) / 10 ms) + 1 = 1, 144 B. The budget releases the headers, the
 * regulator charges them when copied, up to D later: released in (a - 5 ms,
 * a + 250 us), ceil(5.25 ms / 1 ms) + 1 = 7 budget periods of 4 headers: 28 * 44 =
 * 1232 B (counting only the ceil(250 us / 1 ms) + 1 = 2 periods the window meets
 * would give 352 B). 1376 B in all. By a response bound R = 300 us (an_rt_demand_
 * bounded, ingest_latency 10 us): the message count stays 1, the headers
 * ceil((250 + 300 + 10) us / 1 ms) + 1 = 2 periods: 352 B, 496 B in all; by
 * R = 1.5 ms, ceil(1.76 ms / 1 ms) + 1 = 3 periods: 528 B, 672 B. */
static void test_rt_demand_budgets(void **state)
{
	struct an_flow f = { .name = "ride", .type = AN_SEQPACKET, .size = 100,
			     .rx_payload = 4096, .rx_max = 4096, .packet_size = 4096,
			     .period = 10000000, .deadline = 5000000, .priority = 1,
			     .budget_ctrl = 3, .budget_pieces = 1 };
	struct an_broker b = broker(AN_FP);
	struct an_costs c;
	struct an_flow_result out = { .bounded = true, .response = 300000 };

	(void)state;
	b.reg_budget = 100000;
	b.reg_period = 250000;
	b.budget_period = 1000000;
	b.plat.ingest_latency = 10000;
	assert_int_equal(an_flow_costs(&f, &b, &c), 0);
	assert_int_equal(c.bytes, 144);
	assert_int_equal(an_rt_demand(&f, 1, &b, &c), 144 + 1232);
	assert_int_equal(an_rt_demand_bounded(&f, 1, &b, &c, &out), 144 + 352);
	out.response = 1500000;
	assert_int_equal(an_rt_demand_bounded(&f, 1, &b, &c, &out), 144 + 528);
	/* D within the window's own periods: D = P = 1 ms, ceil(1.25) + 1 = 3 periods. */
	f.deadline = 1000000;
	assert_int_equal(an_rt_demand(&f, 1, &b, &c), 144 + 528);
	/* A best-effort flow's deadline does not count; its budgets ride nothing. */
	{
		struct an_flow two[2] = { f, { .name = "bulk", .best_effort = true,
					       .type = AN_STREAM, .size = 65536,
					       .rx_payload = 4096, .packet_size = 4096,
					       .deadline = 50000000 } };
		struct an_costs cc[2] = { c, c };

		assert_int_equal(an_rt_demand(two, 2, &b, cc), 144 + 528);
	}
}

static void test_overload_and_horizon(void **state)
{
	struct an_flow f[2];
	struct an_broker b = broker(AN_FP);
	struct an_result res;
	struct an_flow_result out[2];

	(void)state;
	/* 600/1000 + 500/1000 = 1.1 > 1: overload, for every policy, at once; no flow
	 * is bounded under edf and fifo (one busy period serves all), but under fp a's
	 * level (600/1000) closes: B = b's step 500, S = 500, F = 500 + 600 = 1100. */
	f[0] = costed("a", 600, 600, 600, 1000, 1000, 1);
	f[1] = costed("b", 500, 500, 500, 1000, 1000, 2);
	for (int p = AN_FP; p <= AN_FIFO; p++) {
		b.policy = (enum an_policy)p;
		assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
		assert_int_equal(res.status, AN_OVERLOAD);
		assert_false(res.schedulable);
		assert_true(out[0].bounded == (p == AN_FP));
		assert_false(out[1].bounded);
	}
	b.policy = AN_FP;
	assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
	assert_int_equal(out[0].response, 1100);
	/* Exactly 1 (500/1000 + 500/1000) is not overload: the busy period closes at
	 * 1000 for a, and b's at 1000 too; R_b = 1000 (both released at 0). */
	f[0] = costed("a", 500, 500, 500, 1000, 1000, 1);
	b.policy = AN_FP;
	assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
	assert_int_equal(res.status, AN_OK);
	assert_int_equal(out[1].response, 1000);
	/* Just below 1 with coprime periods: 498/997 + 500/1000 = 0.9995. The busy period
	 * gains about 1 ns per 1000 (L = 998 k until ceil(998 k / 997) catches up, near
	 * k = 997), far beyond a 100 us horizon, which is reported, not iterated for ever. */
	f[0] = costed("a", 498, 498, 498, 997, 997, 1);
	b.horizon = 100000;
	assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
	assert_int_equal(res.status, AN_UNBOUNDED);
	assert_false(out[1].bounded);
	assert_false(res.schedulable);
}

/* Credit updates are a stream of their own, at their flow's priority, coming back
 * after the message: co 100, po 200, so a credit update is a 300 ns step; nothing
 * else costs.
 *   S: stream, C 1000 (one step), T 10000, D 5000, priority 1
 *   L: seqpacket, C 6000, q 2000, Q 2000 (3 steps), T 20000, D 20000, priority 2
 * S's credit updates: C 300, T 10000, posted by S's deadline: jitter 5000.
 * S: B = max(RST 300, Q_L 2000) = 2000; S = 2000 + credit 300 (floor(7300/10000)+1
 * = 1) = 2300, F = 3300 = R_S <= 5000.
 * L: B = RST 300. S = 300 + (6000 - 2000) + S 1000 + credits: 5600 -> S 1, credits
 * floor(10600/10000)+1 = 2: 5900 -> 2: 5900, F = 7900. Two credit updates fall in
 * 5900 ns: one for a message 10000 earlier, posted at its deadline, and one for the
 * message at 0, posted at once. (Counted inside S's message, as one step per
 * message, the credit would give 7600.) */
static void test_credit_updates(void **state)
{
	struct an_flow f[2];
	struct an_broker b = broker(AN_FP);
	struct an_result res;
	struct an_flow_result out[2], r;
	struct an_costs c[2];
	unsigned prio[2] = { 1, 2 };

	(void)state;
	b.plat.chunk_overhead = 100;
	b.plat.packet_overhead = 200;
	f[0] = costed("S", 1000, 1000, 1000, 10000, 5000, 1);
	f[0].type = AN_STREAM;
	f[1] = costed("L", 6000, 2000, 2000, 20000, 20000, 2);
	assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
	assert_int_equal(res.status, AN_OK);
	assert_int_equal(out[0].costs.C, 1000); /* the credit update is not in C */
	assert_int_equal(out[0].response, 3300);
	assert_int_equal(out[1].response, 7900);
	assert_true(res.schedulable);

	/* L longer (C 7200) and S's deadline 1000, which its bound (3300) exceeds: its
	 * receiver may then get messages, and post credit updates, up to 3300 after
	 * the kick. Taken by the deadline (jitter 1000), L: S = 300 + 5200 + 1300 =
	 * 6800, credits floor(7800/10000)+1 = 1: F = 8800 (what an_fp_flow, the test
	 * OPA runs, says: it holds when every flow meets its deadline). an_analyze
	 * raises the jitter to 3300: credits floor(10100/10000)+1 = 2: S = 7100 ->
	 * floor(10400/10000)+1 = 2: F = 9100. S's own bound does not move (2300 + 3300
	 * < 10000), so that is the fixed point. */
	f[0].deadline = 1000;
	f[1].cost = 7200;
	assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
	assert_int_equal(res.status, AN_OK);
	assert_int_equal(out[0].response, 3300);
	assert_false(out[0].schedulable);
	assert_int_equal(out[1].response, 9100);
	for (int i = 0; i < 2; i++)
		assert_int_equal(an_flow_costs(&f[i], &b, &c[i]), 0);
	assert_int_equal(an_fp_flow(f, 2, &b, c, prio, 1, &r), 0);
	assert_int_equal(r.response, 8800);
}

/* The broker leaves its loop for up to batch_gap after every run_steps steps: here
 * 400 ns per 4 steps, 100 ns charged per step and one whole gap (plus one step's
 * share) as blocking. No other cost.
 *   A: C 3000 in steps of 500 (6 steps), q 500, T = D = 10000, priority 1
 *   B: C 800, one step, T = D = 20000, priority 2
 * C_A = 3000 + 6 * 100 = 3600; B_A = 800 + 400 + 100 = 1300; S = 1300 + 3100 =
 * 4400, F = R_A = 4900. The simulator: B's step to 800, a gap to 1200, four steps
 * to 3200, a gap to 3600, two steps to 4600 (without gaps in the analysis: 3800). */
static void test_batch_gap(void **state)
{
	struct an_flow f[2];
	struct an_broker b = broker(AN_FP);
	struct an_result res;
	struct an_flow_result out[2];
	struct sim_flow_stats st[2];
	unsigned prio[2] = { 1, 2 };
	bool inc[2] = { true, false };
	struct sim_config c = { .flows = f, .n = 2, .include = inc, .prio = prio, .b = &b,
				.block_ns = 800, .limit_ns = 1000000 };

	(void)state;
	b.run_steps = 4;
	b.plat.batch_gap = 400;
	f[0] = costed("A", 3000, 500, 500, 10000, 10000, 1);
	f[1] = costed("B", 800, 800, 800, 20000, 20000, 2);
	assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
	assert_int_equal(out[0].costs.C, 3600);
	assert_int_equal(out[0].response, 4900);
	assert_int_equal(sim_run(&c, st), 0);
	assert_int_equal(st[0].max_response, 4600);
	/* run_steps must be given with a gap. */
	b.run_steps = 0;
	assert_int_equal(an_analyze(f, 2, &b, &res, out), -EINVAL);
}

/* A near-saturated edf set with microsecond periods and a busy period of seconds:
 *   a: C 9999 (steps of 5000), T = D = 10 us;  b: C 98, T = D = 1 ms;
 * utilisation 0.999998, a busy period of about 5 s, and some 500000 offsets to
 * examine for b, each fixed point climbing by a few ns per round. Each offset starts
 * from the answer of the one before (its fixed point only grows with the offset),
 * so the default budget is plenty; a small one is spent, and then the result says
 * so rather than run on. (Started afresh at every offset, the default budget runs
 * out too; without a budget that took most of a minute.) */
static void test_edf_work_budget(void **state)
{
	struct an_flow f[2];
	struct an_broker b = broker(AN_EDF);
	struct an_result res;
	struct an_flow_result out[2];

	(void)state;
	f[0] = costed("a", 9999, 4999, 5000, 10000, 10000, 0);
	f[1] = costed("b", 98, 49, 50, 1000000, 1000000, 0);
	assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
	assert_int_equal(res.status, AN_OK);
	assert_true(out[0].bounded);
	assert_true(out[1].bounded);
	assert_true(out[1].busy_period > 1000000000ull);
	b.work_budget = 100000;
	assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
	assert_int_equal(res.status, AN_UNBOUNDED);
	assert_non_null(strstr(res.why, "budget"));
	assert_false(out[0].bounded);
	assert_false(out[1].bounded);
	assert_false(res.schedulable);
	/* fp shares the budget. */
	b.policy = AN_FP;
	f[0].priority = 1;
	f[1].priority = 2;
	b.work_budget = 10;
	assert_int_equal(an_analyze(f, 2, &b, &res, out), 0);
	assert_int_equal(res.status, AN_UNBOUNDED);
	assert_non_null(strstr(res.why, "budget"));
}

static void test_validation(void **state)
{
	struct an_flow f = costed("a", 10, 5, 8, 100, 100, 1);
	struct an_broker b = broker(AN_FP);
	struct an_result res;
	struct an_flow_result out;
	int bad;
	const char *why;

	(void)state;
	assert_int_equal(an_validate(&f, 1, &b, &bad, &why), 0);
	f.last_step = 9; /* q > Q */
	assert_int_equal(an_validate(&f, 1, &b, &bad, &why), -EINVAL);
	assert_int_equal(bad, 0);
	assert_non_null(strstr(why, "last_step"));
	assert_int_equal(an_analyze(&f, 1, &b, &res, &out), -EINVAL);
	f.last_step = 5;
	f.priority = 0; /* fp needs priorities */
	assert_int_equal(an_validate(&f, 1, &b, &bad, &why), -EINVAL);
	f.priority = 1;
	f.period = 0;
	assert_int_equal(an_validate(&f, 1, &b, &bad, &why), -EINVAL);
	f.period = 100;
	b.plat.copy_bandwidth = 0;
	assert_int_equal(an_validate(&f, 1, &b, &bad, &why), -EINVAL);
	assert_int_equal(bad, -1);
	b.plat.copy_bandwidth = 1000000000ull;
	/* Regulated with a chunk overhead below the 44 ns a header takes at 1 B/ns. */
	b.reg_budget = 1000;
	b.reg_period = 10000;
	b.plat.chunk_overhead = 43;
	assert_int_equal(an_validate(&f, 1, &b, &bad, &why), -EINVAL);
	b.plat.chunk_overhead = 44;
	assert_int_equal(an_validate(&f, 1, &b, &bad, &why), 0);
}

static void test_dm(void **state)
{
	struct an_flow f[4];
	unsigned prio[4];

	(void)state;
	f[0] = costed("a", 1, 1, 1, 100, 300, 0);
	f[1] = costed("b", 1, 1, 1, 100, 100, 0);
	f[2] = costed("c", 1, 1, 1, 100, 300, 0);
	f[3] = costed("be", 1, 1, 1, 0, 0, 0);
	f[3].best_effort = true;
	an_assign_dm(f, 4, prio);
	/* Shortest deadline first, ties by configuration order; best-effort gets 0. */
	assert_int_equal(prio[1], 1);
	assert_int_equal(prio[0], 2);
	assert_int_equal(prio[2], 3);
	assert_int_equal(prio[3], 0);
}

/* OPA with non-preemptive messages (each one step):
 *   a: C 400, T 10000, D 1200;  b: C 1000, T 10000, D 3000;  c: C 100, T 10000, D 10000.
 * Any order fails a: above b it is blocked by b's 1000 step (1000 + 400 = 1400), below
 * b it waits for b (>= 1000 + 400). OPA, lowest level first, config order:
 * level 3: a (b, c above: 1000 + 100 + 400 = 1500 > 1200) no; b (400 + 100 + 1000 =
 * 1500 <= 3000) yes. Level 2: a (c above, b below: 1000 + 100 + 400 = 1500) no; c
 * (1000 + 400 + 100 = 1500) yes. Level 1: a (blocked 1000: 1400) no: none exists.
 * With D_a = 1500, level 3 takes a at once (1500 <= 1500); level 2: b (c above, a
 * below: 400 + 100 + 1000 = 1500 <= 3000); level 1: c (blocked by 1000: 1100). */
static void test_opa_hand(void **state)
{
	struct an_flow f[3];
	struct an_broker b = broker(AN_FP);
	struct an_costs c[3];
	unsigned prio[3];

	(void)state;
	f[0] = costed("a", 400, 400, 400, 10000, 1200, 0);
	f[1] = costed("b", 1000, 1000, 1000, 10000, 3000, 0);
	f[2] = costed("c", 100, 100, 100, 10000, 10000, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(an_flow_costs(&f[i], &b, &c[i]), 0);
	assert_int_equal(an_assign_opa(f, 3, &b, c, prio), -ESRCH);
	f[0].deadline = 1500;
	assert_int_equal(an_assign_opa(f, 3, &b, c, prio), 0);
	assert_int_equal(prio[0], 3);
	assert_int_equal(prio[1], 2);
	assert_int_equal(prio[2], 1);
}

/* OPA succeeds where deadline-monotonic fails (no platform costs):
 *   a: C 800, q = Q 700, T 1000,  D 3000
 *   b: C 800, q = Q 100, T 10000, D 4500
 *   c: C 300, q = Q 200, T 10000, D 10000
 * DM (a, b, c), flow b: B = Q_c = 200; L = 1800 -> a2: 2600 -> a3: 3400 -> a4: 4200 ->
 * a5: 5000 -> a5 b1: 5000, one job. S = 200 + 700 + a: 1700 -> a floor(1.7)+1 = 2:
 * 2500 -> 3300 -> 4100 -> 4900 -> a floor(4.9)+1 = 5: 4900; F = 5000 > 4500.
 * OPA, level 3: a (b, c above, B = 0): L = 5900 (a6 b1 c1), 6 jobs; k=1: S = 100 +
 * 800 + 300 = 1200, F = 1900; job k: S = 100 + (k-1)800 + 1100, F - (k-1)1000 =
 * 1900 - (k-1)200: R_a = 1900 <= 3000, so a goes to the bottom. Level 2: b (c above,
 * B = Q_a = 700): S = 700 + 700 + 300 = 1700, F = 1800 <= 4500. Level 1: c (B = 700):
 * S = 700 + 100 = 800, F = 1000. Priorities c 1, b 2, a 3. */
static void test_opa_beats_dm(void **state)
{
	struct an_flow f[3];
	struct an_broker b = broker(AN_FP);
	struct an_costs c[3];
	struct an_flow_result r;
	unsigned prio[3];

	(void)state;
	f[0] = costed("a", 800, 700, 700, 1000, 3000, 0);
	f[1] = costed("b", 800, 100, 100, 10000, 4500, 0);
	f[2] = costed("c", 300, 200, 200, 10000, 10000, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(an_flow_costs(&f[i], &b, &c[i]), 0);
	an_assign_dm(f, 3, prio);
	assert_int_equal(an_fp_flow(f, 3, &b, c, prio, 1, &r), 0);
	assert_int_equal(r.response, 5000);
	assert_int_equal(an_assign_opa(f, 3, &b, c, prio), 0);
	assert_int_equal(prio[0], 3);
	assert_int_equal(prio[1], 2);
	assert_int_equal(prio[2], 1);
	assert_int_equal(an_fp_flow(f, 3, &b, c, prio, 0, &r), 0);
	assert_int_equal(r.response, 1900);
	assert_int_equal(r.jobs, 6);
	assert_int_equal(an_fp_flow(f, 3, &b, c, prio, 1, &r), 0);
	assert_int_equal(r.response, 1800);
	assert_int_equal(an_fp_flow(f, 3, &b, c, prio, 2, &r), 0);
	assert_int_equal(r.response, 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunk_cost),
		cmocka_unit_test(test_costs_from_sizes),
		cmocka_unit_test(test_sbf),
		cmocka_unit_test(test_theta),
		cmocka_unit_test(test_fp_hand),
		cmocka_unit_test(test_fp_hand_sim),
		cmocka_unit_test(test_davis_2007),
		cmocka_unit_test(test_edf_hand),
		cmocka_unit_test(test_fifo_hand),
		cmocka_unit_test(test_regulated_hand),
		cmocka_unit_test(test_rt_demand_budgets),
		cmocka_unit_test(test_overload_and_horizon),
		cmocka_unit_test(test_credit_updates),
		cmocka_unit_test(test_batch_gap),
		cmocka_unit_test(test_edf_work_budget),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_dm),
		cmocka_unit_test(test_opa_hand),
		cmocka_unit_test(test_opa_beats_dm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
