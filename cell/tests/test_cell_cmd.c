/* `rtvio cell` as a command, run in-process: usage and configuration errors exit 2
 * with one line that names what is wrong, a missing broker exits 1 with a line that
 * names the socket, --help exits 0; against the fake broker of test_posix_fake.h it
 * attaches, signals readiness, reports, and notices the broker hanging up. (Runs
 * with flows against the real broker are in tests/.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>

#include "cell_cmd.h"
#include "test_posix_fake.h"

static char dir[64];
static char out[8192], errbuf[8192];

/* Runs cmd_cell with argv (NULL-terminated), capturing stdout and stderr. */
static int run(const char *const *args)
{
	char *argv[16];
	int argc = 0, rc, so, se;
	FILE *fo = tmpfile(), *fe = tmpfile();
	size_t n;

	for (; args[argc]; argc++)
		argv[argc] = (char *)args[argc];
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	dup2(fileno(fo), 1);
	dup2(fileno(fe), 2);
	rc = cmd_cell(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	rewind(fo);
	rewind(fe);
	n = fread(out, 1, sizeof(out) - 1, fo);
	out[n] = 0;
	n = fread(errbuf, 1, sizeof(errbuf) - 1, fe);
	errbuf[n] = 0;
	fclose(fo);
	fclose(fe);
	return rc;
}

static const char *write_conf(const char *name, const char *body)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[broker]\nsocket_dir = %s/sock\n\n%s", dir, body);
	fclose(f);
	return path;
}

static const char *good_body =
	"[cell a]\ncid = 3\n\n[cell b]\ncid = 4\n\n[cell v]\ncid = 5\nvm = yes\n\n"
	"[flow f]\nfrom = a\nto = b:1000\ntype = seqpacket\nsize = 64\nperiod = 1ms\n";

static void help_and_usage(void **state)
{
	(void)state;
	assert_int_equal(run((const char *[]){ "cell", "--help", NULL }), 0);
	assert_non_null(strstr(out, "usage: rtvio cell CONFIG NAME"));
	assert_non_null(strstr(out, "Exit status"));
	/* Missing operands, an unknown option, and bad option values: 2, one line
	 * naming the problem. */
	assert_int_equal(run((const char *[]){ "cell", NULL }), 2);
	assert_non_null(strstr(errbuf, "expected CONFIG and NAME"));
	assert_int_equal(run((const char *[]){ "cell", "x.conf", "a", "--bogus", NULL }), 2);
	assert_int_equal(run((const char *[]){ "cell", "x.conf", "a", "--duration", "-1", NULL }), 2);
	assert_non_null(strstr(errbuf, "--duration '-1'"));
	assert_int_equal(run((const char *[]){ "cell", "x.conf", "a", "--duration", "3x", NULL }), 2);
	assert_int_equal(run((const char *[]){ "cell", "x.conf", "a", "--ready-fd", "q", NULL }), 2);
	assert_non_null(strstr(errbuf, "--ready-fd 'q'"));
	assert_int_equal(run((const char *[]){ "cell", "x.conf", "a", "--wait", "-2", NULL }), 2);
	assert_int_equal(run((const char *[]){ "cell", "a", "b", "c", NULL }), 2);
}

static void config_errors(void **state)
{
	const char *p;

	(void)state;
	/* A file that does not exist. */
	assert_int_equal(run((const char *[]){ "cell", "/nonexistent/rtvio.conf", "a", NULL }), 2);
	assert_non_null(strstr(errbuf, "/nonexistent/rtvio.conf"));
	/* The loader's own message comes through, naming the key. */
	p = write_conf("typo.conf", "[cell a]\ncid = 3\nregoin = 1MiB\n");
	assert_int_equal(run((const char *[]){ "cell", p, "a", NULL }), 2);
	assert_non_null(strstr(errbuf, "regoin"));
	/* A cell the config does not have. */
	p = write_conf("good.conf", good_body);
	assert_int_equal(run((const char *[]){ "cell", p, "zz", NULL }), 2);
	assert_non_null(strstr(errbuf, "no [cell zz]"));
	/* A region too small for the rings and buffers, named with its line and the
	 * size that would do; that size does. */
	p = write_conf("small.conf", "[cell a]\ncid = 3\nregion = 64KiB\n");
	assert_int_equal(run((const char *[]){ "cell", p, "a", "--wait", "0", NULL }), 2);
	assert_non_null(strstr(errbuf, "small.conf:4: [cell a]: region 64KiB is too small"));
	assert_non_null(strstr(errbuf, "(at least 596KiB)"));
	p = write_conf("small.conf", "[cell a]\ncid = 3\nregion = 596KiB\n");
	assert_int_equal(run((const char *[]){ "cell", p, "a", "--wait", "0", NULL }), 1);
	assert_non_null(strstr(errbuf, "no broker at"));
	p = write_conf("good.conf", good_body);
	/* A VM cell is QEMU's to run, not ours. */
	assert_int_equal(run((const char *[]){ "cell", p, "v", NULL }), 2);
	assert_non_null(strstr(errbuf, "VM cell"));
	/* Exactly one line each time. */
	assert_non_null(strchr(errbuf, '\n'));
	assert_null(strchr(strchr(errbuf, '\n') + 1, '\n'));
	/* A port carrying flows of both socket types loads (vsock allows it), but this
	 * cell serves a port with one listener: it says so at its start, naming both
	 * flows; the sending cell is not concerned. */
	p = write_conf("twotypes.conf", "[cell a]\ncid = 3\n[cell b]\ncid = 4\n"
		       "[flow s]\nfrom = a\nto = b:1234\ntype = stream\nsize = 64\nperiod = 1ms\n"
		       "[flow q]\nfrom = a\nto = b:1234\ntype = seqpacket\nsize = 64\n"
		       "period = 1ms\n");
	assert_int_equal(run((const char *[]){ "cell", p, "b", "--wait", "0", NULL }), 2);
	assert_non_null(strstr(errbuf, "twotypes.conf:"));
	assert_non_null(strstr(errbuf, "[flow q] comes to port 1234 as seqpacket"));
	assert_non_null(strstr(errbuf, "[flow s]"));
	assert_int_equal(run((const char *[]){ "cell", p, "a", "--wait", "0", NULL }), 1);
	assert_non_null(strstr(errbuf, "no broker at"));
}

static void no_broker(void **state)
{
	const char *p = write_conf("good.conf", good_body);

	(void)state;
	/* Nobody serves <socket_dir>/a.sock: exit 1, naming the socket. */
	assert_int_equal(run((const char *[]){ "cell", p, "a", "--wait", "0", NULL }), 1);
	assert_non_null(strstr(errbuf, "no broker at"));
	assert_non_null(strstr(errbuf, "/sock/a.sock"));
	assert_string_equal(out, "");
}

static const char *fake_conf(void)
{
	char sd[96];

	snprintf(sd, sizeof(sd), "%s/sock", dir);
	mkdir(sd, 0700);
	return write_conf("lone.conf", "[cell a]\ncid = 3\nregion = 1MiB\n");
}

static void attaches_signals_ready_and_reports(void **state)
{
	char path[128], fdarg[16], ready[16] = "";
	const char *p = fake_conf();
	struct fake *f;
	json_t *doc;
	int pfd[2];

	(void)state;
	snprintf(path, sizeof(path), "%s/sock/a.sock", dir);
	f = fake_start_at(path, VHU_VSOCK_FEATURES);
	assert_int_equal(pipe(pfd), 0);
	snprintf(fdarg, sizeof(fdarg), "%d", pfd[1]);
	assert_int_equal(run((const char *[]){ "cell", p, "a", "--duration", "0.3", "--json",
					       "--ready-fd", fdarg, NULL }), 0);
	/* The ready line came, and the descriptor was closed after it. */
	assert_int_equal(read(pfd[0], ready, sizeof(ready) - 1), 6);
	assert_string_equal(ready, "ready\n");
	assert_int_equal(read(pfd[0], ready, 1), 0);
	close(pfd[0]);
	/* One JSON document; the CID is the broker's answer, not the config's. */
	doc = json_loads(out, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "cell")), "a");
	assert_int_equal(json_integer_value(json_object_get(doc, "cid")), 42);
	assert_true(json_is_array(json_object_get(doc, "flows")));
	assert_int_equal(json_array_size(json_object_get(doc, "flows")), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "stack"),
							    "ring_errors")), 0);
	json_decref(doc);
	fake_stop(f);
}

static void *hang_up_later(void *arg)
{
	struct fake *f = arg;

	while (!atomic_load(&f->running))
		usleep(1000);
	usleep(100000);
	atomic_store(&f->hangup, true);
	return NULL;
}

static void broker_hangup_exits_1(void **state)
{
	char path[128];
	const char *p = fake_conf();
	struct fake *f;
	pthread_t th;

	(void)state;
	snprintf(path, sizeof(path), "%s/sock/a.sock", dir);
	f = fake_start_at(path, VHU_VSOCK_FEATURES);
	assert_int_equal(pthread_create(&th, NULL, hang_up_later, f), 0);
	/* Would run 60 s; the broker leaving ends it at once, with status 1. */
	assert_int_equal(run((const char *[]){ "cell", p, "a", "--duration", "60", NULL }), 1);
	assert_non_null(strstr(errbuf, "the broker closed the connection"));
	assert_non_null(strstr(out, "cell a (cid 42)"));
	pthread_join(th, NULL);
	fake_stop(f);
}

static void flows_share_a_port(void **state)
{
	/* Two flows to one port of this cell: one listener, and each connection goes
	 * to the receiver of its own flow. Against the loopback fake the cell's own
	 * senders play cell x (the CID the fake gives this cell), from two source
	 * ports; the flows' message sizes differ, so a connection handed to the wrong
	 * receiver shows as corrupt messages. */
	char path[128], sd[96];
	const char *p;
	struct fake *f;
	json_t *doc, *fl;
	size_t i;
	int seen = 0;

	(void)state;
	snprintf(sd, sizeof(sd), "%s/sock", dir);
	mkdir(sd, 0700);
	p = write_conf("shared.conf",
		       "[cell a]\ncid = 3\nregion = 1MiB\n[cell x]\ncid = 42\nvm = yes\n"
		       "[flow h1]\nfrom = a:5001\nto = x:1000\ntype = seqpacket\nsize = 100\nperiod = 1ms\n"
		       "[flow h2]\nfrom = a:5002\nto = x:1000\ntype = seqpacket\nsize = 300\nperiod = 1ms\n"
		       "[flow g1]\nfrom = x:5001\nto = a:1000\ntype = seqpacket\nsize = 100\nperiod = 1ms\n"
		       "[flow g2]\nfrom = x:5002\nto = a:1000\ntype = seqpacket\nsize = 300\nperiod = 1ms\n"
		       "[workload w1]\nflow = h1\ncount = 30\n[workload w2]\nflow = h2\ncount = 30\n");
	snprintf(path, sizeof(path), "%s/sock/a.sock", dir);
	f = fake_start_at(path, VHU_VSOCK_FEATURES);
	assert_int_equal(run((const char *[]){ "cell", p, "a", "--duration", "20", "--json", NULL }),
			 0);
	doc = json_loads(out, 0, NULL);
	assert_non_null(doc);
	json_array_foreach(json_object_get(doc, "flows"), i, fl) {
		const char *name = json_string_value(json_object_get(fl, "name"));

		if (strcmp(name, "g1") && strcmp(name, "g2"))
			continue;
		seen++;
		assert_string_equal(json_string_value(json_object_get(fl, "status")), "ok");
		assert_int_equal(json_integer_value(json_object_get(fl, "messages")), 30);
		assert_int_equal(json_integer_value(json_object_get(fl, "bytes")),
				 name[1] == '1' ? 3000 : 9000);
		assert_int_equal(json_integer_value(json_object_get(fl, "corrupt")), 0);
	}
	assert_int_equal(seen, 2);
	json_decref(doc);
	fake_stop(f);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/rtvio-test-cellcmd-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(help_and_usage),
		cmocka_unit_test(config_errors),
		cmocka_unit_test(no_broker),
		cmocka_unit_test(attaches_signals_ready_and_reports),
		cmocka_unit_test(broker_hangup_exits_1),
		cmocka_unit_test(flows_share_a_port),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
