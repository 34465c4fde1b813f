/* The portable half of a bare-metal cell: self-check, attach, run what the command
 * line asks, report, power off. Command line (-append), space-separated:
 *   echo=TYPE:PORT                      echo server (TYPE stream|seqpacket)
 *   sizes=TYPE:CID:PORT                 1 B .. 256 KiB through an echo peer
 *   rtt=CID:PORT:PERIOD_US:COUNT:SIZE   periodic SEQPACKET round trips
 *   scribble=AFTER_MS:HOLD_MS           garbage into the own TX ring (app.h)
 *   limit=SECONDS                       give up after this long (default 120)
 * Anything else is ignored. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "arch.h"
#include "console.h"
#include "exec.h"
#include "port.h"
#include "selftest.h"

/* Parses a decimal number at *p, advancing it; false when there is none. */
static bool num(const char **p, uint64_t *v)
{
	const char *s = *p;

	*v = 0;
	while (*s >= '0' && *s <= '9')
		*v = *v * 10 + (uint64_t)(*s++ - '0');
	if (s == *p)
		return false;
	*p = s;
	return true;
}

static bool prefix(const char **p, const char *word)
{
	const char *s = *p;

	while (*word)
		if (*s++ != *word++)
			return false;
	*p = s;
	return true;
}

/* Numbers separated by ':' up to the end of the token; how many were read. */
static unsigned int nums(const char **p, uint64_t *v, unsigned int max)
{
	unsigned int n = 0;

	while (n < max && num(p, &v[n])) {
		n++;
		if (**p != ':')
			break;
		(*p)++;
	}
	return n;
}

static bool sock_type(const char **p, unsigned int *type)
{
	if (prefix(p, "stream:"))
		*type = GV_SOCK_STREAM;
	else if (prefix(p, "seqpacket:"))
		*type = GV_SOCK_SEQPACKET;
	else
		return false;
	return true;
}

/* One token; returns tasks added (0 for an ignored token), negative on a bad one. */
static int parse_token(const char *p, struct app_ctx *c, struct bm_task *t,
		       unsigned int room, uint64_t *limit_s)
{
	unsigned int type;
	uint64_t v[5];
	int rc = -GV_EINVAL;

	if (room < 2)
		return -GV_ENOSPC;
	if (prefix(&p, "echo=") && sock_type(&p, &type) && nums(&p, v, 1) == 1)
		rc = app_echo(c, t, type, (uint32_t)v[0]);
	else if (prefix(&p, "sizes=") && sock_type(&p, &type) && nums(&p, v, 2) == 2)
		rc = app_sizes(c, t, type, v[0], (uint32_t)v[1]);
	else if (prefix(&p, "rtt=") && nums(&p, v, 5) == 5) {
		rc = app_rtt(c, t, v[0], (uint32_t)v[1], v[2] * 1000, (uint32_t)v[3],
			     (uint32_t)v[4]);
		return rc ? rc : 2;
	}
	else if (prefix(&p, "scribble=") && nums(&p, v, 2) == 2)
		rc = app_scribble(c, t, v[0], v[1]);
	else if (prefix(&p, "limit=") && num(&p, limit_s))
		return 0;
	else
		return 0;
	return rc ? rc : 1;
}

static int parse(const char *cmd, struct app_ctx *c, struct bm_task *t, unsigned int max,
		 uint64_t *limit_s)
{
	unsigned int n = 0;

	while (*cmd) {
		int rc;

		while (*cmd == ' ')
			cmd++;
		if (!*cmd)
			break;
		rc = parse_token(cmd, c, t + n, max - n, limit_s);
		if (rc < 0) {
			con_puts("rtvio-bm: bad or too many words on the command line: ");
			con_puts(cmd);
			con_puts("\n");
			return rc;
		}
		n += (unsigned int)rc;
		while (*cmd && *cmd != ' ')
			cmd++;
	}
	return (int)n;
}

static _Noreturn void finish(struct app_ctx *c, int rc)
{
	con_puts("RTVIO-DONE {");
	con_kvs("arch", arch_name, 1);
	con_kv("failed", c->failed + (rc ? 1u : 0u), 0);
	con_puts(",\"error\":");
	con_sdec(rc);
	con_puts("}\n");
	arch_poweroff(c->failed || rc);
}

_Noreturn void bm_main(void)
{
	static struct bm_task tasks[BM_MAX_TASKS];
	struct app_ctx c = { 0 };
	uint64_t limit_s = 120;
	int n, rc;

	con_puts("RTVIO-BOOT arch=");
	con_puts(arch_name);
	con_puts(" timer_hz=");
	con_dec(arch_tick_hz());
	con_puts(" cmdline=\"");
	con_puts(arch_cmdline());
	con_puts("\"\n");
	if (bm_selftest())
		finish(&c, -GV_EIO);
	if ((rc = bm_port_open(&c.s)) < 0)
		finish(&c, rc);
	n = parse(arch_cmdline(), &c, tasks, BM_MAX_TASKS, &limit_s);
	if (n < 0)
		finish(&c, n);
	rc = bm_exec_run(c.s, tasks, (unsigned int)n, bm_now_ns() + limit_s * 1000000000ull);
	app_report_unfinished(&c, tasks, (unsigned int)n);
	/* Let the closes finish (the peer's RST) before the device goes away. */
	bm_exec_idle(c.s, 200000000ull);
	finish(&c, rc);
}
