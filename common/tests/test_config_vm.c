/* A VM cell's launch keys (common/config_vm.c): values, defaults, the dump read
 * back, and the messages for wrong ones. */
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

static const char bm_config[] =
	"[cell arm]\ncid = 3\nvm = yes\nmemory = 64MiB\narch = aarch64\nkind = baremetal\n"
	"args = echo=seqpacket:1000 limit=30\ncpu = 1\ncpu_max = 50%\n"
	"[cell rv]\ncid = 4\nvm = yes\narch = riscv64\nkind = baremetal\n"
	"image = /images/rv.elf\ncpu_max = 5ms/10ms\n"
	"[cell linux]\ncid = 5\nvm = yes\n"
	"[cell proc]\ncid = 6\n";

static void test_values_and_defaults(void **state)
{
	struct rtvio_config c;

	(void)state;
	parse_ok(bm_config, &c);
	assert_int_equal(c.cells[0].vmc.arch, RTVIO_ARCH_AARCH64);
	assert_int_equal(c.cells[0].vmc.kind, RTVIO_VM_BAREMETAL);
	assert_string_equal(c.cells[0].vmc.args, "echo=seqpacket:1000 limit=30");
	assert_string_equal(c.cells[0].vmc.image, "");
	assert_int_equal(c.cells[0].cpu, 1);
	assert_int_equal(c.cells[0].vmc.cpu_quota_ns, 50000000);
	assert_int_equal(c.cells[0].vmc.cpu_period_ns, 100000000);
	assert_int_equal(c.cells[1].vmc.arch, RTVIO_ARCH_RISCV64);
	assert_string_equal(c.cells[1].vmc.image, "/images/rv.elf");
	assert_int_equal(c.cells[1].vmc.cpu_quota_ns, 5000000);
	assert_int_equal(c.cells[1].vmc.cpu_period_ns, 10000000);
	/* Defaults: an x86_64 Linux guest, no budget. */
	assert_int_equal(c.cells[2].vmc.arch, RTVIO_ARCH_X86_64);
	assert_int_equal(c.cells[2].vmc.kind, RTVIO_VM_LINUX);
	assert_int_equal(c.cells[2].vmc.cpu_quota_ns, 0);
	assert_string_equal(rtvio_vm_arch_name(RTVIO_ARCH_RISCV64), "riscv64");
	assert_string_equal(rtvio_vm_kind_name(RTVIO_VM_BAREMETAL), "baremetal");
	rtvio_config_free(&c);
}

static void test_dump_round_trip(void **state)
{
	struct rtvio_config a, b;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	parse_ok(bm_config, &a);
	assert_non_null(f);
	assert_int_equal(rtvio_config_dump(&a, f), 0);
	fclose(f);
	assert_non_null(strstr(buf, "arch = aarch64\nkind = baremetal\n"));
	assert_non_null(strstr(buf, "args = echo=seqpacket:1000 limit=30\n"));
	assert_non_null(strstr(buf, "cpu_max = 50ms/100ms\n"));
	assert_non_null(strstr(buf, "image = /images/rv.elf\n"));
	parse_ok(buf, &b);
	assert_int_equal(a.ncells, b.ncells);
	for (int i = 0; i < a.ncells; i++) {
		struct rtvio_cell_cfg x = a.cells[i], y = b.cells[i];

		x.line = y.line = 0;
		assert_memory_equal(&x, &y, sizeof(x));
	}
	free(buf);
	rtvio_config_free(&a);
	rtvio_config_free(&b);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[cell a]\ncid = 3\narch = aarch64\n",
		     "t.conf:3: [cell a] key 'arch': applies to vm cells only (add vm = yes)");
	expect_error("[cell a]\ncid = 3\nvm = yes\narch = mips\n",
		     "t.conf:4: [cell a] key 'arch': 'mips': expected x86_64, aarch64 or riscv64");
	expect_error("[cell a]\ncid = 3\nvm = yes\nkind = rtos\n",
		     "t.conf:4: [cell a] key 'kind': 'rtos': expected linux or baremetal");
	expect_error("[cell a]\ncid = 3\nvm = yes\narch = riscv64\n",
		     "t.conf:4: [cell a] key 'arch': Linux guests are x86_64 only (use kind = "
		     "baremetal for riscv64)");
	expect_error("[cell a]\ncid = 3\nvm = yes\nargs = echo=stream:1\n",
		     "t.conf:4: [cell a] key 'args': applies to kind = baremetal only (a Linux "
		     "guest runs its flows' jobs)");
	expect_error("[cell a]\ncid = 3\nvm = yes\ncpu_max = 0%\n",
		     "t.conf:4: [cell a] key 'cpu_max': '0%': expected a percentage from 1% to 100%");
	expect_error("[cell a]\ncid = 3\nvm = yes\ncpu_max = 20ms/10ms\n",
		     "t.conf:4: [cell a] key 'cpu_max': '20ms/10ms': expected a period from 1ms "
		     "to 1s and a budget from 1ms to the period");
	/* A comment character could not survive a dump (found by the config fuzzer:
	 * `image=;` loaded as ";" and came back empty). */
	expect_error("[cell p]\nimage=;\ncid=4\nvm =yes\n",
		     "t.conf:2: [cell p] key 'image': ';': ';' and '#' start comments in this "
		     "format and cannot be part of a value");
	expect_error("[broker]\nsocket_dir = /tmp/a#b\n",
		     "t.conf:2: [broker] key 'socket_dir': '/tmp/a#b': ';' and '#' start "
		     "comments in this format and cannot be part of a value");
	expect_error("[cell a]\ncid = 3\nvm = yes\ncpu_max = half\n",
		     "t.conf:4: [cell a] key 'cpu_max': 'half': expected a share such as 50% or a "
		     "budget such as 5ms/10ms");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_and_defaults),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
