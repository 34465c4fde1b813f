/* The analysis on several cores (an_mcore.h) against the multi-core simulator
 * (sim_mcore.h), and on one core against an_analyze:
 *   - one core: an_analyze_mcore gives an_analyze's results, field for field, on
 *     random sets of every policy (streams, best-effort, regulation included);
 *   - 2 and 4 cores, fp / edf / fifo, from the critical instant and from random
 *     phases, with hostile ingest on every core and control-path writes (W's reader
 *     side taken for every step): no
 *     simulated response exceeds its flow's bound, and no simulated wait on M, K or W
 *     exceeds the analysis's per-request term; again with no control-path writes
 *     against the bounds without the reader wait, where M, K and the pass carry
 *     the bound alone (dropping the M term then fails here);
 *   - the lock terms are needed: without them, a flow alone on its core has a bound
 *     that the simulation exceeds; without the K term, likewise with k = 1;
 *   - the terms themselves (sync/bounds.h on the platform's sections), the DRAM
 *     budget's share per core, credit updates delivered by the sender's core, and
 *     bad input.
 * Seeded: a failure names a reproducible set. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "an_mcore.h"
#include "analysis.h"
#include "sim_mcore.h"

#define MAXN 8
#define MAXC 4

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static uint64_t between(uint64_t lo, uint64_t hi)
{
	return lo + rnd() % (hi - lo + 1);
}

struct mset {
	struct an_flow f[MAXN];
	size_t n;
	struct an_broker b;
	uint32_t core[MAXN];
	unsigned prio[MAXN];
	uint64_t tx[MAXC];
	struct an_mcore mc;
};

/* A random set the simulator models: 2..8 real-time seqpacket flows dealt to m
 * cores, unregulated, with every overhead. */
static void gen_mset(struct mset *s, enum an_policy pol, uint32_t m)
{
	static const uint64_t chunks[] = { 512, 1024, 2048, 4096 };
	static const uint64_t rxs[] = { 1000, 2000, 4052 };
	static const uint64_t pkts[] = { 2048, 4096, 65536 };

	memset(s, 0, sizeof(*s));
	s->n = between(2, MAXN);
	s->b.policy = pol;
	s->b.chunk = chunks[rnd() % 4];
	s->b.plat.copy_bandwidth = between(1, 3) * 1000000000ull;
	s->b.plat.chunk_overhead = between(50, 300);
	s->b.plat.packet_overhead = between(0, 1000);
	/* Its wake-ups, signalled after M: unknown, a part, or (saturating) all. */
	s->b.plat.wake_write = rnd() % 3 ? between(0, s->b.plat.packet_overhead / 2 + 50) : 0;
	s->b.plat.ingest_packet = between(0, 10);
	s->b.plat.ingest_latency = between(0, 2000);
	s->b.plat.notify_latency = between(0, 2000);
	s->b.plat.batch_gap = between(0, 3000);
	s->b.run_steps = between(2, 64);
	for (uint32_t k = 0; k < m; k++)
		s->tx[k] = between(32, 96);
	for (size_t i = 0; i < s->n; i++) {
		struct an_flow *f = &s->f[i];

		f->name = "f";
		f->type = AN_SEQPACKET;
		f->size = between(1, 12000);
		f->rx_payload = rxs[rnd() % 3];
		f->rx_max = f->rx_payload;
		f->packet_size = pkts[rnd() % 3];
		f->period = between(40000, 800000);
		f->deadline = f->period * between(50, 200) / 100;
		f->jitter = rnd() % 2 ? between(0, f->period / 2) : 0;
		f->priority = s->prio[i] = (unsigned)i + 1;
		s->core[i] = (uint32_t)(i < m ? i : rnd() % m);
	}
	s->mc = (struct an_mcore){ .ncores = m, .copy_slots = (uint32_t)between(1, m),
				   .core = s->core, .tx_slots = s->tx,
				   .write_section = between(0, 5000) };
}

static unsigned checked, waited, read_waited;

/* The bounds of s's flows, each core analysed with the terms lt (an_mcore_broker):
 * false when some core has no bound. */
static bool bounds_with(const struct mset *s, const struct an_mcore_terms *lt,
			struct an_flow_result *out)
{
	for (uint32_t c = 0; c < s->mc.ncores; c++) {
		struct an_flow sub[MAXN];
		struct an_flow_result so[MAXN];
		struct an_broker bc;
		struct an_result res;
		size_t map[MAXN], k = 0;

		for (size_t i = 0; i < s->n; i++)
			if (s->core[i] == c) {
				sub[k] = s->f[i];
				map[k++] = i;
			}
		an_mcore_broker(&s->b, &s->mc, lt, c, &bc);
		assert_int_equal(an_analyze(sub, k, &bc, &res, so), 0);
		if (res.status != AN_OK)
			return false;
		for (size_t j = 0; j < k; j++)
			out[map[j]] = so[j];
	}
	return true;
}

/* The terms of s with the reader wait dropped: what a data plane whose control path
 * never writes could be charged. */
static void terms_no_writes(const struct mset *s, struct an_mcore_terms *lt)
{
	struct an_costs c[MAXN];

	for (size_t i = 0; i < s->n; i++)
		assert_int_equal(an_flow_costs(&s->f[i], &s->b, &c[i]), 0);
	an_mcore_terms(&s->b, &s->mc, c, s->n, lt);
	lt->rw_reader = lt->rw_step = 0;
	lt->write_spacing = 0;
}

/* Every flow of one simulation of s within its bound, every wait within its term. */
static void sim_check(const struct mset *s, const struct an_flow_result *out,
		      enum sim_pattern pat, uint64_t seed, bool no_writes)
{
	struct an_costs c[MAXN];
	struct an_mcore_terms lt;
	struct sim_flow_stats st[MAXN];
	struct sim_mc_waits w;
	struct sim_mc_config sc = { .flows = s->f, .n = s->n, .core = s->core, .prio = s->prio,
				    .b = &s->b, .ncores = s->mc.ncores,
				    .copy_slots = s->mc.copy_slots, .tx_slots = s->tx,
				    .write_section = s->mc.write_section,
				    .write_gap = s->mc.write_spacing ? between(0, 2000) :
								       between(0, 200000),
				    .write_spacing = s->mc.write_spacing, .no_writes = no_writes,
				    .pattern = pat, .seed = seed,
				    .until_ns = 3000000, .limit_ns = 4000000000ull };

	for (size_t i = 0; i < s->n; i++)
		assert_int_equal(an_flow_costs(&s->f[i], &s->b, &c[i]), 0);
	an_mcore_terms(&s->b, &s->mc, c, s->n, &lt);
	assert_int_equal(sim_mc_run(&sc, st, &w), 0);
	for (size_t i = 0; i < s->n; i++) {
		uint64_t bound = s->b.plat.ingest_latency + out[i].response;

		if (!out[i].bounded)
			continue;
		checked++;
		if (st[i].max_response > bound || st[i].max_residence > out[i].response)
			fail_msg("seed %llu, %u cores, flow %zu on core %u: simulated %llu ns "
				 "(residence %llu) > bound %llu ns (R %llu)",
				 (unsigned long long)seed, s->mc.ncores, i, s->core[i],
				 (unsigned long long)st[i].max_response,
				 (unsigned long long)st[i].max_residence,
				 (unsigned long long)bound, (unsigned long long)out[i].response);
	}
	if (w.mutex > lt.mutex || w.kex > lt.kex || w.rw_reader > lt.rw_reader)
		fail_msg("seed %llu: waits M %llu K %llu W %llu beyond the terms %llu %llu %llu",
			 (unsigned long long)seed, (unsigned long long)w.mutex,
			 (unsigned long long)w.kex, (unsigned long long)w.rw_reader,
			 (unsigned long long)lt.mutex, (unsigned long long)lt.kex,
			 (unsigned long long)lt.rw_reader);
	waited += w.mutex > 0;
	read_waited += w.rw_reader > 0;
}

static void check_cores(enum an_policy pol, uint32_t m, unsigned sets)
{
	checked = waited = read_waited = 0;
	for (unsigned k = 0; k < sets; k++) {
		struct mset s;
		struct an_result res;
		struct an_flow_result out[MAXN];
		struct an_mcore_terms lt;
		uint64_t seed = rng_state;

		gen_mset(&s, pol, m);
		assert_int_equal(an_analyze_mcore(s.f, s.n, &s.b, &s.mc, &res, out, NULL), 0);
		if (res.status != AN_OK)
			continue;
		sim_check(&s, out, SIM_CRITICAL, seed, false);
		sim_check(&s, out, SIM_RANDOM, seed, false);
		/* Without control-path writes the reader wait is gone, and the steps' own
		 * terms (M, K, the pass) must carry the bound alone. */
		terms_no_writes(&s, &lt);
		if (!bounds_with(&s, &lt, out))
			continue;
		sim_check(&s, out, SIM_CRITICAL, seed, true);
		sim_check(&s, out, SIM_RANDOM, seed, true);
	}
	/* The check is not vacuous: bounds were compared, and cores did wait for M and
	 * for W's reader side. */
	print_message("%s on %u cores: %u bounds checked, %u runs with M waits, %u with W "
		      "waits\n", an_policy_name(pol), m, checked, waited, read_waited);
	assert_true(checked > sets);
	assert_true(waited > 0);
	assert_true(read_waited > 0);
}

static void test_fp_2(void **state)
{
	(void)state;
	rng_state = 0x2c0e5;
	check_cores(AN_FP, 2, 40);
}

static void test_fp_4(void **state)
{
	(void)state;
	rng_state = 0x4c0e5;
	check_cores(AN_FP, 4, 30);
}

static void test_edf_fifo(void **state)
{
	(void)state;
	rng_state = 0xedf2;
	check_cores(AN_EDF, 2, 30);
	check_cores(AN_EDF, 4, 20);
	check_cores(AN_FIFO, 2, 30);
	check_cores(AN_FIFO, 4, 20);
}

/* The control path's writes spaced by the data plane's write gate, and charged per
 * write (lost supply) instead of per step: random sets on 2 and 4 cores under each
 * policy, the simulated writes as dense as the spacing allows (the next one within
 * 2 us of the last one's end, no sooner than the spacing after it came), no
 * simulated response above its bound, no reader wait above B_W. Not vacuous: on
 * some sets the per-write bound is below the per-step one, and cores waited on W. */
static void test_writes_spaced(void **state)
{
	static const enum an_policy pols[] = { AN_FP, AN_EDF, AN_FIFO };
	unsigned tighter = 0, per_write = 0;

	(void)state;
	rng_state = 0x5ace;
	checked = waited = read_waited = 0;
	for (unsigned p = 0; p < 3; p++)
		for (uint32_t m = 2; m <= 4; m += 2)
			for (unsigned k = 0; k < 15; k++) {
				struct mset s;
				struct an_result res, res0;
				struct an_flow_result out[MAXN], out0[MAXN];
				struct an_costs c[MAXN];
				struct an_mcore_terms lt;
				uint64_t seed = rng_state;

				gen_mset(&s, pols[p], m);
				assert_int_equal(an_analyze_mcore(s.f, s.n, &s.b, &s.mc, &res0,
								  out0, NULL), 0);
				s.mc.write_spacing = between(20000, 400000);
				for (size_t i = 0; i < s.n; i++)
					assert_int_equal(an_flow_costs(&s.f[i], &s.b, &c[i]), 0);
				an_mcore_terms(&s.b, &s.mc, c, s.n, &lt);
				per_write += lt.write_spacing != 0;
				assert_int_equal(an_analyze_mcore(s.f, s.n, &s.b, &s.mc, &res,
								  out, NULL), 0);
				if (res.status != AN_OK)
					continue;
				for (size_t i = 0; i < s.n; i++)
					tighter += res0.status == AN_OK && out[i].bounded &&
						   out0[i].bounded &&
						   out[i].response < out0[i].response;
				sim_check(&s, out, SIM_CRITICAL, seed, false);
				sim_check(&s, out, SIM_RANDOM, seed, false);
			}
	print_message("writes spaced: %u sets charged per write, %u bounds checked, %u "
		      "tighter than per step, %u runs with W waits\n", per_write, checked,
		      tighter, read_waited);
	assert_true(per_write > 0);
	assert_true(checked > 0);
	assert_true(tighter > 0);
	assert_true(read_waited > 0);
}

/* The set of test_blocking_needed (bulk every 200 us) with the writes spaced 100 us
 * apart (20 us each):
 * charged per write (lost supply), ctl's bound holds in the simulation with the
 * writes as dense as the gate allows; with the loss taken out (the per-write term
 * 0, nothing per step either) the simulation exceeds it: the term is needed. Writes
 * spaced closer than B_W are charged per step. */
static void test_writes_charged(void **state)
{
	struct mset s = { .n = 2, .core = { 0, 1 }, .prio = { 1, 1 }, .tx = { 8, 8 } };
	struct an_mcore_terms lt;
	struct an_costs c[2];
	struct an_flow_result full[2], cut[2];
	bool exceeded = false;

	(void)state;
	s.f[0] = (struct an_flow){ .name = "bulk", .type = AN_SEQPACKET, .size = 3 * 4096,
				   .rx_payload = 1024, .rx_max = 1024, .packet_size = 65536,
				   .period = 200000, .deadline = 200000, .priority = 1 };
	s.f[1] = (struct an_flow){ .name = "ctl", .type = AN_SEQPACKET, .size = 100,
				   .rx_payload = 4096, .rx_max = 4096, .packet_size = 65536,
				   .period = 100000, .deadline = 100000, .priority = 1 };
	s.b = (struct an_broker){ .policy = AN_FP, .chunk = 4096, .run_steps = 64,
				  .plat = { .copy_bandwidth = 1000000000ull, .chunk_overhead = 100,
					    .packet_overhead = 3000 } };
	s.mc = (struct an_mcore){ .ncores = 2, .core = s.core, .tx_slots = s.tx,
				  .write_section = 20000, .write_spacing = 100000 };
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(an_flow_costs(&s.f[i], &s.b, &c[i]), 0);
	an_mcore_terms(&s.b, &s.mc, c, 2, &lt);
	assert_int_equal(lt.write_spacing, 100000);
	assert_int_equal(lt.rw_step, 0);
	assert_true(bounds_with(&s, &lt, full));
	lt.rw_reader = 0;
	assert_true(bounds_with(&s, &lt, cut));
	assert_true(cut[1].response < full[1].response);
	for (uint64_t seed = 1; seed <= 40 && !exceeded; seed++) {
		struct sim_flow_stats st[2];
		struct sim_mc_waits w;
		struct sim_mc_config sc = { .flows = s.f, .n = 2, .core = s.core, .prio = s.prio,
					    .b = &s.b, .ncores = 2, .copy_slots = 2,
					    .tx_slots = s.tx, .write_section = 20000,
					    .write_gap = 1000, .write_spacing = 100000,
					    .pattern = SIM_RANDOM, .seed = 2 * seed + 1,
					    .until_ns = 2000000, .limit_ns = 1000000000ull };

		assert_int_equal(sim_mc_run(&sc, st, &w), 0);
		assert_true(st[1].max_response <= full[1].response);
		exceeded = st[1].max_response > cut[1].response;
	}
	assert_true(exceeded);
	/* Writes closer together than B_W: the argument fails, charged per step. */
	s.mc.write_spacing = lt.l_w;
	an_mcore_terms(&s.b, &s.mc, c, 2, &lt);
	assert_int_equal(lt.write_spacing, 0);
	assert_int_equal(lt.rw_step, lt.rw_reader);
}

/* Core 0 copies twelve 1 KiB pieces per 80 us, each completion holding M for its
 * 3 us packet overhead; core 1 serves one 100-byte flow, each message in a run of
 * its own; the control path writes for 20 us at a time. Without the lock terms the
 * flow's bound is its own step and one RST reply's (3.1 us); the simulation finds it
 * waiting longer: for core 0's completions on M, and for W's reader side while a
 * write waits for core 0's step or holds W. */
static void test_blocking_needed(void **state)
{
	struct an_flow f[2] = {
		{ .name = "bulk", .type = AN_SEQPACKET, .size = 3 * 4096, .rx_payload = 1024,
		  .rx_max = 1024, .packet_size = 65536, .period = 80000, .deadline = 80000,
		  .priority = 1 },
		{ .name = "ctl", .type = AN_SEQPACKET, .size = 100, .rx_payload = 4096,
		  .rx_max = 4096, .packet_size = 65536, .period = 100000, .deadline = 100000,
		  .priority = 1 },
	};
	struct an_broker b = { .policy = AN_FP, .chunk = 4096, .run_steps = 64,
			       .plat = { .copy_bandwidth = 1000000000ull, .chunk_overhead = 100,
					 .packet_overhead = 3000 } };
	uint32_t core[2] = { 0, 1 };
	unsigned prio[2] = { 1, 1 };
	uint64_t tx[2] = { 8, 8 };
	struct an_mcore mc = { .ncores = 2, .core = core, .tx_slots = tx,
			       .write_section = 20000 };
	struct an_mcore_terms none = { 0 };
	struct an_broker b1;
	struct an_result res;
	struct an_flow_result out[2], alone;
	bool exceeded = false;

	(void)state;
	an_mcore_broker(&b, &mc, &none, 1, &b1);
	assert_int_equal(an_analyze(&f[1], 1, &b1, &res, &alone), 0);
	assert_true(alone.bounded);
	assert_int_equal(an_analyze_mcore(f, 2, &b, &mc, &res, out, NULL), 0);
	assert_true(out[1].bounded && out[1].response > alone.response);
	for (uint64_t seed = 1; seed <= 20 && !exceeded; seed++) {
		struct sim_flow_stats st[2];
		struct sim_mc_waits w;
		struct sim_mc_config sc = { .flows = f, .n = 2, .core = core, .prio = prio, .b = &b,
					    .ncores = 2, .copy_slots = 2, .tx_slots = tx,
					    .write_section = 20000, .write_gap = 100000,
					    .pattern = SIM_RANDOM,
					    .seed = 2 * seed + 1, .until_ns = 2000000,
					    .limit_ns = 1000000000ull };

		assert_int_equal(sim_mc_run(&sc, st, &w), 0);
		/* No ingest latency: the response from the kick is within R. */
		assert_true(st[1].max_response <= out[1].response);
		exceeded = st[1].max_response > alone.response;
	}
	assert_true(exceeded);
}

/* The terms on hand-computed figures: 3 cores, k = 1, passes of 20 and 10 slots at
 * 5 ns, chunk 1000 B at 1 B/ns, chunk_overhead 200, packet_overhead 50, batch_gap
 * 4000, 8 steps per run.
 *   L_pick = 100 + 200 = 300 > L_done 50: mutex (3 - 1) 300 = 600;
 *   L_copy = 1000: kex ceil((3 - 1) / 1) 1000 = 2000;
 *   the longest step Q = 1200 + 50 = 1250, with the pass 100 and the waits among the
 *   two cores a waiting reader leaves inside, 2 x (2 - 1) 300 + ceil((2 - 1) / 1)
 *   1000 = 1600: L_R = 2950 (one step, not the run of 8); L_W = batch_gap 4000:
 *   rw_reader 6950 per step. */
/* L_done is packet_overhead less its two wake-ups (signalled after M), never below
 * zero; the step itself (Q in L_R) still pays all of packet_overhead. 2 cores, no
 * pass, chunk_overhead 200, packet_overhead 1000. */
static void test_l_done_wakes(void **state)
{
	struct an_flow f = { .name = "f", .type = AN_SEQPACKET, .size = 100, .rx_payload = 4000,
			     .packet_size = 4000, .period = 1000000, .deadline = 1000000,
			     .priority = 1 };
	struct an_broker b = { .policy = AN_FP, .chunk = 1000, .run_steps = 8,
			       .plat = { .copy_bandwidth = 1000000000ull, .chunk_overhead = 200,
					 .packet_overhead = 1000, .batch_gap = 4000 } };
	uint32_t core[1] = { 0 };
	uint64_t tx[2] = { 0, 0 };
	struct an_mcore mc = { .ncores = 2, .core = core, .tx_slots = tx };
	const uint64_t wake[] = { 0, 300, 600 }, done[] = { 1000, 400, 0 }, lm[] = { 1000, 400, 200 };
	struct an_mcore_terms lt;
	struct an_costs c;
	uint64_t l_r0 = 0;

	(void)state;
	assert_int_equal(an_flow_costs(&f, &b, &c), 0);
	for (int i = 0; i < 3; i++) {
		b.plat.wake_write = wake[i];
		an_mcore_terms(&b, &mc, &c, 1, &lt);
		assert_int_equal(an_mcore_l_done(&b.plat), done[i]);
		assert_int_equal(lt.l_done, done[i]);
		assert_int_equal(lt.l_m, lm[i]);
		assert_int_equal(lt.mutex, lm[i]);
		/* One step of the other core (its M waits among m - 1 = 1 cores are 0):
		 * the whole step, wake-ups included, whatever wake_write says. */
		if (!i)
			l_r0 = lt.l_r;
		assert_int_equal(lt.l_r, l_r0);
	}
	assert_true(l_r0 >= c.Q && l_r0 >= 200 + 1000);
}

static void test_terms(void **state)
{
	struct an_flow f = { .name = "f", .type = AN_SEQPACKET, .size = 3000, .rx_payload = 4000,
			     .packet_size = 4000, .period = 1000000, .deadline = 1000000,
			     .priority = 1 };
	struct an_broker b = { .policy = AN_FP, .chunk = 1000, .run_steps = 8,
			       .reg_budget = 3000, .reg_period = 100000,
			       .plat = { .copy_bandwidth = 1000000000ull, .chunk_overhead = 200,
					 .packet_overhead = 50, .ingest_packet = 5,
					 .batch_gap = 4000 } };
	uint32_t core[1] = { 1 };
	uint64_t tx[3] = { 20, 10, 0 };
	struct an_mcore mc = { .ncores = 3, .copy_slots = 1, .core = core, .tx_slots = tx };
	struct an_mcore_terms lt;
	struct an_costs c;
	struct an_broker bc;
	struct an_blocking bl;
	struct an_result res;
	struct an_flow_result out;

	(void)state;
	assert_int_equal(an_flow_costs(&f, &b, &c), 0);
	an_mcore_terms(&b, &mc, &c, 1, &lt);
	assert_int_equal(lt.l_pick, 300);
	assert_int_equal(lt.l_m, 300);
	assert_int_equal(lt.mutex, 600);
	assert_int_equal(lt.l_copy, 1000);
	assert_int_equal(lt.kex, 2000);
	assert_int_equal(lt.l_r, 2950);
	assert_int_equal(lt.l_w, 4000);
	assert_int_equal(lt.rw_reader, 6950);
	/* Core 1's broker: steps longer by 2 x 600 + 2000 + the reader wait 6950 + its
	 * pass of 50; runs and their gap unchanged; a third of the DRAM budget; its own
	 * TX slots. */
	an_mcore_broker(&b, &mc, &lt, 1, &bc);
	assert_int_equal(bc.plat.chunk_overhead, 200 + 1200 + 2000 + 6950 + 50);
	assert_int_equal(bc.plat.batch_gap, 4000);
	assert_int_equal(bc.reg_budget, 1000);
	assert_int_equal(bc.tx_slots, 10);
	/* Before the pick: the reader wait and the first M wait. */
	assert_int_equal(bc.pick_lead, 6950 + 600);
	/* The flow's three steps each carry 10200 (its share of the runs' gaps is
	 * unchanged): per job 3 x 10200. */
	assert_int_equal(an_analyze_mcore(&f, 1, &b, &mc, &res, &out, &bl), 0);
	assert_int_equal(bl.core, 1);
	assert_int_equal(bl.rw_reader, 6950);
	assert_int_equal(bl.per_step, 10200);
	assert_int_equal(bl.per_job, 3 * 10200);
	/* The message's last byte comes the lead before its last step's cost ends. */
	bc.reg_budget = 0;
	{
		struct an_flow_result r0, r1;
		struct an_result rs;

		assert_int_equal(an_analyze(&f, 1, &bc, &rs, &r1), 0);
		bc.pick_lead = 0;
		assert_int_equal(an_analyze(&f, 1, &bc, &rs, &r0), 0);
		assert_int_equal(r0.response - r1.response, 6950 + 600);
	}
	/* k = m: no copy waits. */
	mc.copy_slots = 0;
	an_mcore_terms(&b, &mc, &c, 1, &lt);
	assert_int_equal(lt.kex, 0);
}

/* Random sets of every kind, analysed by an_analyze and as one core. */
static void test_one_core_same(void **state)
{
	(void)state;
	rng_state = 0x1c0e;
	for (unsigned k = 0; k < 300; k++) {
		struct mset s;
		struct an_result r0, r1;
		struct an_flow_result o0[MAXN], o1[MAXN];
		struct an_blocking bl[MAXN];

		gen_mset(&s, (enum an_policy)(k % 3), 1);
		s.mc.copy_slots = 1;
		for (size_t i = 0; i < s.n; i++) {
			s.f[i].type = rnd() % 2 ? AN_STREAM : AN_SEQPACKET;
			s.f[i].best_effort = i == s.n - 1 && rnd() % 2;
		}
		if (k % 4 == 0) {
			s.b.reg_period = between(5000, 50000);
			s.b.reg_budget = s.b.reg_period * between(30, 90) / 100;
		}
		assert_int_equal(an_analyze(s.f, s.n, &s.b, &r0, o0), 0);
		assert_int_equal(an_analyze_mcore(s.f, s.n, &s.b, &s.mc, &r1, o1, bl), 0);
		assert_int_equal(r0.status, r1.status);
		assert_int_equal(r0.schedulable, r1.schedulable);
		assert_true(r0.utilization == r1.utilization);
		assert_int_equal(r0.demand_ok, r1.demand_ok);
		for (size_t i = 0; i < s.n; i++) {
			assert_int_equal(o0[i].bounded, o1[i].bounded);
			assert_int_equal(o0[i].schedulable, o1[i].schedulable);
			assert_int_equal(o0[i].response, o1[i].response);
			assert_int_equal(o0[i].latency, o1[i].latency);
			assert_int_equal(o0[i].costs.C, o1[i].costs.C);
			assert_int_equal(bl[i].per_job, 0);
			assert_int_equal(bl[i].mutex, 0);
		}
	}
}

/* A stream flow toward core 1 whose sender is on core 0: its credit updates load
 * core 0, where they lengthen the bound of the flow core 0 serves. */
static void test_credits_on_sender_core(void **state)
{
	struct an_flow f[2] = {
		{ .name = "s", .type = AN_STREAM, .size = 4000, .rx_payload = 4000,
		  .packet_size = 4000, .period = 50000, .deadline = 50000, .priority = 2 },
		{ .name = "t", .type = AN_SEQPACKET, .size = 2000, .rx_payload = 4000,
		  .packet_size = 4000, .period = 100000, .deadline = 100000, .priority = 1 },
	};
	struct an_broker b = { .policy = AN_EDF, .chunk = 4096, .run_steps = 16,
			       .plat = { .copy_bandwidth = 1000000000ull, .chunk_overhead = 100,
					 .packet_overhead = 500 } };
	uint32_t core[2] = { 1, 0 }, same[2] = { 1, 0 }, sender[2] = { 0, 0 };
	uint64_t tx[2] = { 8, 8 };
	struct an_mcore mc = { .ncores = 2, .core = core, .credit_core = same, .tx_slots = tx };
	struct an_result res;
	struct an_flow_result a[2], c[2];

	(void)state;
	assert_int_equal(an_analyze_mcore(f, 2, &b, &mc, &res, a, NULL), 0);
	mc.credit_core = sender;
	assert_int_equal(an_analyze_mcore(f, 2, &b, &mc, &res, c, NULL), 0);
	assert_true(a[1].bounded && c[1].bounded);
	assert_true(c[1].response > a[1].response);
	assert_int_equal(c[0].response, a[0].response);
}

/* The cells' budgets by core: flow a on core 0 (rank 2), flow b on core 1 (rank 1),
 * budget period 1 ms. A core is charged only its own cells' ingest budget: core 1's
 * 1000 chains (10 ns each) lengthen b's window, two periods of them, by exactly
 * 20000 ns, and leave a's alone. Two control packets per period that core 0 delivers
 * at b's rank (b is served by core 1) come through a carrier on core 0: a's bound
 * grows by exactly two periods of two header-only steps, each a step on core 0
 * (chunk_overhead + its per-step lock terms + packet_overhead; no batch gap), and
 * b's does not move. */
static void test_budgets_by_core(void **state)
{
	struct an_flow f[2] = {
		{ .name = "a", .type = AN_SEQPACKET, .size = 2000, .rx_payload = 4000,
		  .packet_size = 4000, .period = 100000, .deadline = 100000, .priority = 2 },
		{ .name = "b", .type = AN_SEQPACKET, .size = 2000, .rx_payload = 4000,
		  .packet_size = 4000, .period = 100000, .deadline = 100000, .priority = 1 },
	};
	struct an_broker b = { .policy = AN_FP, .chunk = 4096, .run_steps = 16,
			       .budget_period = 1000000, .budget_ingest = 5000,
			       .piece_steps = 1,
			       .plat = { .copy_bandwidth = 1000000000ull, .chunk_overhead = 100,
					 .packet_overhead = 500, .ingest_packet = 10 } };
	uint32_t core[2] = { 0, 1 };
	uint64_t tx[2] = { 8, 8 }, ingest[2] = { 0, 0 }, ctrl[4] = { 0 }, pieces[4] = { 0 };
	struct an_mcore mc = { .ncores = 2, .core = core, .tx_slots = tx,
			       .budget_ingest = ingest, .ride_ctrl = ctrl, .ride_pieces = pieces };
	struct an_result res;
	struct an_flow_result r0[2], r1[2], r2[2];
	struct an_blocking bl[2];
	uint64_t ctl;

	(void)state;
	assert_int_equal(an_analyze_mcore(f, 2, &b, &mc, &res, r0, bl), 0);
	assert_true(r0[0].bounded && r0[1].bounded);
	/* With the budgets the core's own pass is in them, not in every step. */
	assert_int_equal(bl[0].ingest_pass, 0);
	ingest[1] = 1000;
	assert_int_equal(an_analyze_mcore(f, 2, &b, &mc, &res, r1, NULL), 0);
	assert_int_equal(r1[0].response, r0[0].response);
	assert_int_equal(r1[1].response, r0[1].response + 2 * 1000 * 10);
	/* Control packets core 0 delivers at b's rank: ctrl[core 0 * n + b]. */
	ctrl[0 * 2 + 1] = 2;
	assert_int_equal(an_analyze_mcore(f, 2, &b, &mc, &res, r2, NULL), 0);
	ctl = b.plat.chunk_overhead + bl[0].per_step + b.plat.packet_overhead;
	assert_int_equal(r2[0].response, r1[0].response + 2 * 2 * ctl);
	assert_int_equal(r2[1].response, r1[1].response);
}

static void test_bad_input(void **state)
{
	struct an_flow f = { .name = "f", .type = AN_SEQPACKET, .size = 100, .rx_payload = 4000,
			     .packet_size = 4000, .period = 100000, .deadline = 100000,
			     .priority = 1 };
	struct an_broker b = { .policy = AN_FP, .chunk = 4096, .run_steps = 16,
			       .plat = { .copy_bandwidth = 1000000000ull, .chunk_overhead = 100 } };
	uint32_t core[1] = { 2 }, credit[1] = { 5 };
	uint64_t tx[2] = { 8, 8 };
	struct an_mcore mc = { .ncores = 2, .core = core, .tx_slots = tx };
	struct an_result res;
	struct an_flow_result out;

	(void)state;
	/* A core beyond m, a sender's core beyond m, no TX slots per core. */
	assert_int_equal(an_analyze_mcore(&f, 1, &b, &mc, &res, &out, NULL), -EINVAL);
	core[0] = 1;
	mc.credit_core = credit;
	assert_int_equal(an_analyze_mcore(&f, 1, &b, &mc, &res, &out, NULL), -EINVAL);
	credit[0] = 0;
	mc.tx_slots = NULL;
	assert_int_equal(an_analyze_mcore(&f, 1, &b, &mc, &res, &out, NULL), -EINVAL);
	mc.tx_slots = tx;
	assert_int_equal(an_analyze_mcore(&f, 1, &b, &mc, &res, &out, NULL), 0);
	assert_true(out.bounded);
}

/* Core 0 copies three 4 KiB chunks every 30 us; core 1 serves one 100-byte flow; one
 * copy slot (k = 1), no control-path writes, tiny M sections. Without the K term
 * core 1's bound is its own step and the small M and RST terms; the simulation finds
 * it waiting for core 0's chunk (4.1 us) on K. With the term the bound holds. */
static void test_kex_needed(void **state)
{
	struct mset s = { .n = 2, .core = { 0, 1 }, .prio = { 1, 1 }, .tx = { 4, 4 } };
	struct an_mcore_terms lt;
	struct an_flow_result full[2], cut[2];
	bool exceeded = false;

	(void)state;
	s.f[0] = (struct an_flow){ .name = "bulk", .type = AN_SEQPACKET, .size = 3 * 4096,
				   .rx_payload = 4096, .rx_max = 4096, .packet_size = 65536,
				   .period = 30000, .deadline = 30000, .priority = 1 };
	s.f[1] = (struct an_flow){ .name = "ctl", .type = AN_SEQPACKET, .size = 100,
				   .rx_payload = 4096, .rx_max = 4096, .packet_size = 65536,
				   .period = 50000, .deadline = 50000, .priority = 1 };
	s.b = (struct an_broker){ .policy = AN_FP, .chunk = 4096, .run_steps = 64,
				  .plat = { .copy_bandwidth = 1000000000ull, .chunk_overhead = 10 } };
	s.mc = (struct an_mcore){ .ncores = 2, .copy_slots = 1, .core = s.core, .tx_slots = s.tx };
	terms_no_writes(&s, &lt);
	assert_int_equal(lt.kex, 4096);
	assert_true(bounds_with(&s, &lt, full));
	lt.kex = 0;
	assert_true(bounds_with(&s, &lt, cut));
	for (uint64_t seed = 1; seed <= 20 && !exceeded; seed++) {
		struct sim_flow_stats st[2];
		struct sim_mc_waits w;
		struct sim_mc_config sc = { .flows = s.f, .n = 2, .core = s.core, .prio = s.prio,
					    .b = &s.b, .ncores = 2, .copy_slots = 1,
					    .tx_slots = s.tx, .no_writes = true,
					    .pattern = SIM_RANDOM, .seed = 2 * seed + 1,
					    .until_ns = 2000000, .limit_ns = 1000000000ull };

		assert_int_equal(sim_mc_run(&sc, st, &w), 0);
		assert_true(w.kex <= 4096);
		assert_true(st[1].max_response <= full[1].response);
		exceeded = st[1].max_response > cut[1].response;
	}
	assert_true(exceeded);
}

/* One core: the per-core assignments are an_assign_dm's and an_assign_opa's. */
static void test_assign_one_core(void **state)
{
	(void)state;
	rng_state = 0xa551;
	for (unsigned k = 0; k < 60; k++) {
		struct mset s;
		struct an_costs c[MAXN];
		unsigned p0[MAXN], p1[MAXN];
		int r0, r1;

		gen_mset(&s, AN_FP, 1);
		s.f[s.n - 1].best_effort = rnd() % 2;
		an_assign_dm(s.f, s.n, p0);
		assert_int_equal(an_mcore_assign_dm(s.f, s.n, &s.mc, p1), 0);
		assert_memory_equal(p0, p1, s.n * sizeof(*p0));
		for (size_t i = 0; i < s.n; i++)
			assert_int_equal(an_flow_costs(&s.f[i], &s.b, &c[i]), 0);
		r0 = an_assign_opa(s.f, s.n, &s.b, c, p0);
		r1 = an_mcore_assign_opa(s.f, s.n, &s.b, &s.mc, p1);
		assert_int_equal(r0, r1);
		if (!r0)
			assert_memory_equal(p0, p1, s.n * sizeof(*p0));
	}
}

/* Ranks 1..n_c on each core c, each once; best-effort 0. */
static void assert_ranks(const struct mset *s, const unsigned *prio)
{
	for (uint32_t c = 0; c < s->mc.ncores; c++) {
		unsigned n_c = 0, seen = 0;

		for (size_t i = 0; i < s->n; i++)
			n_c += s->core[i] == c && !s->f[i].best_effort;
		for (size_t i = 0; i < s->n; i++) {
			if (s->core[i] != c)
				continue;
			if (s->f[i].best_effort) {
				assert_int_equal(prio[i], 0);
				continue;
			}
			assert_true(prio[i] >= 1 && prio[i] <= n_c);
			assert_false(seen & (1u << prio[i]));
			seen |= 1u << prio[i];
		}
	}
}

/* The m-core analysis of s under prio[]: every flow schedulable? */
static bool schedulable_with(struct mset *s, const unsigned *prio)
{
	struct an_result res;
	struct an_flow_result out[MAXN];

	for (size_t i = 0; i < s->n; i++)
		s->f[i].priority = prio[i];
	assert_int_equal(an_analyze_mcore(s->f, s->n, &s->b, &s->mc, &res, out, NULL), 0);
	return res.schedulable;
}

/* 2 and 4 cores, random sets (no stream flows, so no credit updates cross cores and
 * each core's search is exact): ranks within each core; deadline-monotonic order on
 * each core; Audsley's search finds an assignment whenever the per-core
 * deadline-monotonic one is schedulable, and every assignment it finds is schedulable
 * under the m-core analysis. Also counted: sets where the search over the whole set
 * as one core without the lock terms (what --assign opa did before) gives ranks the
 * m-core analysis rejects while the per-core search's pass. */
static void test_assign_cores(void **state)
{
	unsigned found = 0, dm_ok = 0, better = 0;

	(void)state;
	rng_state = 0xa552;
	for (unsigned k = 0; k < 200; k++) {
		struct mset s;
		struct an_costs c[MAXN];
		unsigned dm[MAXN], opa[MAXN], whole[MAXN];
		int ret;

		gen_mset(&s, AN_FP, k % 2 ? 2 : 4);
		for (size_t i = 0; i < s.n; i++)
			s.f[i].deadline = s.f[i].period * between(5, 100) / 100;
		assert_int_equal(an_mcore_assign_dm(s.f, s.n, &s.mc, dm), 0);
		assert_ranks(&s, dm);
		for (size_t i = 0; i < s.n; i++)
			for (size_t j = 0; j < s.n; j++)
				if (s.core[i] == s.core[j] && s.f[i].deadline < s.f[j].deadline)
					assert_true(dm[i] < dm[j]);
		ret = an_mcore_assign_opa(s.f, s.n, &s.b, &s.mc, opa);
		assert_true(ret == 0 || ret == -ESRCH);
		if (schedulable_with(&s, dm)) {
			dm_ok++;
			assert_int_equal(ret, 0);
		}
		if (ret)
			continue;
		found++;
		assert_ranks(&s, opa);
		assert_true(schedulable_with(&s, opa));
		for (size_t i = 0; i < s.n; i++)
			assert_int_equal(an_flow_costs(&s.f[i], &s.b, &c[i]), 0);
		if (an_assign_opa(s.f, s.n, &s.b, c, whole) == 0 && !schedulable_with(&s, whole))
			better++;
	}
	print_message("per-core assignment: dm schedulable %u, opa found %u (the whole-set "
		      "one-core search's ranks rejected on %u of them)\n", dm_ok, found, better);
	assert_true(dm_ok > 0);
	assert_true(better > 0);
}

/* Core 1 serves hi (100 B) above lo (one 4 KiB step), core 0 a 4 KiB flow whose
 * completions hold M for 1 us; the control path writes for 3 us within every 6 us.
 * hi's worst case: it arrives just after lo's pick, so lo's step, the next step's W
 * and first M waits (the pick lead) and hi's own step after its pick: the bound with
 * the lead taken off hi's last step (an_broker.pick_lead). The simulation stays
 * within it, and goes beyond it less the lead once more: the lead is owed once. */
static void test_pick_lead(void **state)
{
	struct mset s = { .n = 3, .core = { 1, 1, 0 }, .prio = { 1, 2, 1 }, .tx = { 2, 2 } };
	struct an_flow_result out[3];
	struct an_mcore_terms lt;
	struct an_costs c[3];
	uint64_t worst = 0, lead;

	(void)state;
	s.f[0] = (struct an_flow){ .name = "hi", .type = AN_SEQPACKET, .size = 100,
				   .rx_payload = 4096, .rx_max = 4096, .packet_size = 65536,
				   .period = 37000, .deadline = 37000, .priority = 1 };
	s.f[1] = (struct an_flow){ .name = "lo", .type = AN_SEQPACKET, .size = 4096,
				   .rx_payload = 4096, .rx_max = 4096, .packet_size = 65536,
				   .period = 41000, .deadline = 400000, .priority = 2 };
	s.f[2] = (struct an_flow){ .name = "bulk", .type = AN_SEQPACKET, .size = 4096,
				   .rx_payload = 4096, .rx_max = 4096, .packet_size = 65536,
				   .period = 30000, .deadline = 400000, .priority = 1 };
	s.b = (struct an_broker){ .policy = AN_FP, .chunk = 4096, .run_steps = 64,
				  .plat = { .copy_bandwidth = 1000000000ull, .chunk_overhead = 10,
					    .packet_overhead = 1000 } };
	s.mc = (struct an_mcore){ .ncores = 2, .copy_slots = 2, .core = s.core, .tx_slots = s.tx,
				  .write_section = 3000 };
	for (int i = 0; i < 3; i++)
		assert_int_equal(an_flow_costs(&s.f[i], &s.b, &c[i]), 0);
	an_mcore_terms(&s.b, &s.mc, c, 3, &lt);
	lead = lt.rw_reader + lt.mutex;
	assert_true(bounds_with(&s, &lt, out));
	for (uint64_t seed = 1; seed <= 300; seed++) {
		struct sim_flow_stats st[3];
		struct sim_mc_waits w;
		struct sim_mc_config sc = { .flows = s.f, .n = 3, .core = s.core, .prio = s.prio,
					    .b = &s.b, .ncores = 2, .copy_slots = 2, .tx_slots = s.tx,
					    .write_section = 3000, .write_gap = 6000,
					    .pattern = SIM_RANDOM, .seed = 2 * seed + 1,
					    .until_ns = 2000000, .limit_ns = 1000000000ull };

		assert_int_equal(sim_mc_run(&sc, st, &w), 0);
		/* No ingest latency: the response from the kick is within R. */
		if (st[0].max_response > out[0].response)
			fail_msg("seed %llu: hi simulated %llu ns > bound %llu ns",
				 (unsigned long long)sc.seed, (unsigned long long)st[0].max_response,
				 (unsigned long long)out[0].response);
		worst = st[0].max_response > worst ? st[0].max_response : worst;
	}
	print_message("hi: bound %llu ns (lead %llu), simulated %llu ns\n",
		      (unsigned long long)out[0].response, (unsigned long long)lead,
		      (unsigned long long)worst);
	assert_true(worst > out[0].response - lead);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_terms),
		cmocka_unit_test(test_l_done_wakes),
		cmocka_unit_test(test_one_core_same),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_credits_on_sender_core),
		cmocka_unit_test(test_budgets_by_core),
		cmocka_unit_test(test_blocking_needed),
		cmocka_unit_test(test_writes_spaced),
		cmocka_unit_test(test_writes_charged),
		cmocka_unit_test(test_kex_needed),
		cmocka_unit_test(test_pick_lead),
		cmocka_unit_test(test_fp_2),
		cmocka_unit_test(test_fp_4),
		cmocka_unit_test(test_edf_fifo),
		cmocka_unit_test(test_assign_one_core),
		cmocka_unit_test(test_assign_cores),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
