/* [remote NAME] sections and flows with an end on another broker
 * (common/config_remote.c): values, defaults, how the flow runs locally, the dump
 * read back, and the messages for wrong ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

static void parse_ok(const char *text, struct rtvio_config *cfg)
{
	char err[512] = "";

	if (rtvio_config_parse(text, "t.conf", cfg, err, sizeof(err)))
		fail_msg("valid config refused: %s", err);
}

static void expect_error(const char *text, const char *want)
{
	struct rtvio_config cfg;
	char err[512] = "";

	if (rtvio_config_parse(text, "t.conf", &cfg, err, sizeof(err)) == 0)
		fail_msg("accepted, expected error: %s", want);
	if (strcmp(err, want) != 0)
		fail_msg("wrong message\n   got: %s\n  want: %s", err, want);
	rtvio_config_free(&cfg);
}

#define CELLS "[cell s]\ncid = 3\n[cell gw]\ncid = 4\n[cell d]\ncid = 5\n"
#define REMOTE "[remote far]\ngateway = gw\nnetwork_budget = 2ms\n"

static const char both_ways[] = CELLS
	"[remote far]\ngateway = gw\ndomain = 7\npeers = 127.0.0.1 ::1\n"
	"network_budget = 2ms\nremote_bound = 300us\n"
	"[flow out]\nfrom = s\nto = far/act:1000\ntype = seqpacket\nsize = 64\nperiod = 1ms\n"
	"[flow in]\nfrom = far/ctl:7\nto = d:2000\nsize = 1KiB\nperiod = 5ms\n"
	"[flow plain]\nfrom = s\nto = d:3000\nsize = 1KiB\nperiod = 5ms\n";

static void test_values(void **state)
{
	struct rtvio_config c;

	(void)state;
	parse_ok(both_ways, &c);
	assert_int_equal(c.nremotes, 1);
	assert_string_equal(c.remotes[0].name, "far");
	assert_int_equal(c.remotes[0].gateway, 1);
	assert_int_equal(c.remotes[0].domain, 7);
	assert_string_equal(c.remotes[0].peers, "127.0.0.1 ::1");
	assert_int_equal(c.remotes[0].network_budget_ns, 2000000);
	assert_int_equal(c.remotes[0].remote_bound_ns, 300000);
	/* Outgoing: locally from s to the gateway, on the far listener's port. */
	assert_int_equal(c.flows[0].from, 0);
	assert_int_equal(c.flows[0].to, 1);
	assert_int_equal(c.flows[0].to_port, 1000);
	assert_int_equal(c.flows[0].rem.remote, 0);
	assert_false(c.flows[0].rem.incoming);
	assert_string_equal(c.flows[0].rem.cell, "act");
	assert_int_equal(c.flows[0].rem.port, 1000);
	/* Incoming: locally from the gateway (any source port) to d. */
	assert_int_equal(c.flows[1].from, 1);
	assert_int_equal(c.flows[1].from_port, 0);
	assert_int_equal(c.flows[1].to, 2);
	assert_true(c.flows[1].rem.incoming);
	assert_string_equal(c.flows[1].rem.cell, "ctl");
	assert_int_equal(c.flows[1].rem.port, 7);
	assert_int_equal(c.flows[2].rem.remote, -1);
	rtvio_config_free(&c);

	parse_ok(CELLS REMOTE "[flow f]\nfrom = s\nto = far/x:1\nsize = 1\nperiod = 1ms\n", &c);
	assert_int_equal(c.remotes[0].domain, 0);
	assert_string_equal(c.remotes[0].peers, "127.0.0.1");
	assert_int_equal(c.remotes[0].remote_bound_ns, 0);
	rtvio_config_free(&c);
}

static void test_dump_round_trip(void **state)
{
	struct rtvio_config a, b;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	parse_ok(both_ways, &a);
	assert_int_equal(rtvio_config_dump(&a, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "to = far/act:1000\n"));
	assert_non_null(strstr(text, "from = far/ctl:7\n"));
	parse_ok(text, &b);
	assert_int_equal(b.nremotes, 1);
	/* Everything but the lines, which the dump moves. */
	b.remotes[0].line = a.remotes[0].line;
	assert_memory_equal(&a.remotes[0], &b.remotes[0], sizeof(a.remotes[0]));
	for (int i = 0; i < a.nflows; i++) {
		b.flows[i].line = a.flows[i].line;
		assert_memory_equal(&a.flows[i], &b.flows[i], sizeof(a.flows[i]));
	}
	rtvio_config_free(&a);
	rtvio_config_free(&b);
	free(text);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error(CELLS "[remote far]\nnetwork_budget = 1ms\n",
		     "t.conf:7: [remote far]: missing key 'gateway' (the local process cell that "
		     "carries this remote's flows)");
	expect_error(CELLS "[remote far]\ngateway = gw\n",
		     "t.conf:7: [remote far]: missing key 'network_budget' (the declared one-way "
		     "time across the network, such as 2ms)");
	expect_error(CELLS "[remote far]\ngateway = nope\nnetwork_budget = 1ms\n",
		     "t.conf:8: [remote far] key 'gateway': unknown cell 'nope' (no [cell nope] "
		     "section)");
	expect_error(CELLS REMOTE "[remote near]\ngateway = gw\nnetwork_budget = 1ms\n",
		     "t.conf:11: [remote near] key 'gateway': cell 'gw' is already the gateway of "
		     "remote far (line 7); each remote has its own");
	expect_error(CELLS "[remote far]\ngateway = gw\ndomain = 231\n",
		     "t.conf:9: [remote far] key 'domain': '231': expected a whole number from 0 "
		     "to 230");
	expect_error(CELLS "[remote far]\ngateway = gw\nnetwork_budget = 2\n",
		     "t.conf:9: [remote far] key 'network_budget': '2': a time needs a unit: ns, "
		     "us, ms or s (only 0 may be bare)");
	expect_error(CELLS "[remote far]\ngateway = gw\npeers = a;b\n",
		     "t.conf:9: [remote far] key 'peers': 'a;b': expected addresses separated by "
		     "spaces (such as 127.0.0.1)");
	expect_error(CELLS REMOTE "[flow f]\nfrom = s\nto = other/x:1\nsize = 1\nperiod = 1ms\n",
		     "t.conf:12: [flow f] key 'to': unknown remote 'other' (no [remote other] "
		     "section)");
	expect_error(CELLS REMOTE "[flow f]\nfrom = s\nto = far/x\nsize = 1\nperiod = 1ms\n",
		     "t.conf:12: [flow f] key 'to': 'far/x': expected BROKER/CELL:PORT (the port "
		     "the remote receiver listens on)");
	expect_error(CELLS REMOTE "[flow f]\nfrom = far/y\nto = far/x:1\nsize = 1\nperiod = 1ms\n",
		     "t.conf:12: [flow f] key 'to': 'far/x:1': a flow has at most one end on "
		     "another broker");
	expect_error(CELLS REMOTE "[flow f]\nfrom = gw\nto = far/x:1\nsize = 1\nperiod = 1ms\n",
		     "t.conf:12: [flow f] key 'to': the flow starts and ends at cell gw (a flow "
		     "joins two different cells)");
	expect_error(CELLS "[remote]\ngateway = gw\n",
		     "t.conf:7: section [remote] needs a name (expected [remote NAME])");
	expect_error(CELLS "[remote far]\n",
		     "t.conf:7: section [remote far] has no keys (a remote needs at least "
		     "'gateway' and 'network_budget')");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
