/* SPANK plugin: `sbatch --rtvio=FILE` asks the running rtvio broker to admit the
 * cells and flows of FILE (an INI fragment, docs/broker.md "Run-time changes") for
 * the job, at submission. A refusal fails the submission with the analysis' reasons
 * on sbatch's stderr, so an inadmissible job never queues. An admitted job carries
 * the names of its cells in its control environment (SPANK_RTVIO_CELLS, ...) for
 * the Prolog and Epilog (scripts/slurm/rtvio-job), which provision its VM cells and
 * give everything back; the job itself sees RTVIO_BROKER, RTVIO_CELLS and
 * RTVIO_VM_CELLS.
 *
 * plugstack.conf:  required rtvio_spank.so rtvio=/path/rtvio broker=/tmp/rtvio
 *                  [provision=/path/scripts/vm/provision state=/path/template]
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ini.h>
#include <slurm/spank.h>

#include "rtvio_spank.h"

SPANK_PLUGIN(rtvio, 1);

static char opt_file[PATH_MAX];
static char arg_rtvio[PATH_MAX] = "rtvio";
static char arg_broker[PATH_MAX] = "/tmp/rtvio";
static char arg_provision[PATH_MAX];
static char arg_state[PATH_MAX];

static int opt_cb(int val, const char *optarg, int remote)
{
	(void)val;
	/* The remote side gets the option too; only the submitting side admits. */
	if (remote)
		return 0;
	if (!optarg || !realpath(optarg, opt_file)) {
		slurm_error("rtvio: --rtvio=%s: %s", optarg ? optarg : "", strerror(errno));
		return -1;
	}
	return 0;
}

/* spank.h's option fields are not const; -Wwrite-strings wants arrays for them. */
static char opt_name[] = "rtvio", opt_arg[] = "FILE",
	opt_usage[] = "rtvio cells and flows (a config fragment) admitted by the broker for the job";

/* Registered in slurm_spank_init: an exported spank_options table is not seen by
 * sbatch (allocator context). */
static struct spank_option opt_rtvio = { opt_name, opt_arg, opt_usage, 1, 0, opt_cb };

static int copy_arg(char *dst, const char *arg, const char *key)
{
	size_t n = strlen(key);
	if (strncmp(arg, key, n) != 0 || arg[n] != '=')
		return 0;
	if (strlen(arg + n + 1) >= PATH_MAX)
		return -1;
	strcpy(dst, arg + n + 1);
	return 1;
}

static int parse_args(int ac, char **av)
{
	for (int i = 0; i < ac; i++) {
		int r = copy_arg(arg_rtvio, av[i], "rtvio");
		if (!r) r = copy_arg(arg_broker, av[i], "broker");
		if (!r) r = copy_arg(arg_provision, av[i], "provision");
		if (!r) r = copy_arg(arg_state, av[i], "state");
		if (r != 1) {
			slurm_error("rtvio: bad plugin argument '%s'", av[i]);
			return -1;
		}
	}
	return 0;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	if (parse_args(ac, av) < 0)
		return -1;
	return spank_option_register(sp, &opt_rtvio) == ESPANK_SUCCESS ? 0 : -1;
}

/* Runs `rtvio cell VERB --broker B ARG` with its output on our stderr (sbatch's
 * stdout is the job id for scripts) and returns its exit status, or -1. */
static int run_rtvio(const char *verb, const char *arg)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execl(arg_rtvio, arg_rtvio, "cell", verb, "--broker", arg_broker, arg,
		      (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int export_env(spank_t sp, const struct rs_cells *c)
{
	const struct { const char *name, *val; } v[] = {
		{ "RTVIO_CELLS", c->all }, { "RTVIO_VM_CELLS", c->vm },
		{ "RTVIO_FLOWS", c->flows },
		{ "RTVIO_BROKER", arg_broker }, { "RTVIO_BIN", arg_rtvio },
		{ "RTVIO_FRAGMENT", opt_file }, { "RTVIO_PROVISION", arg_provision },
		{ "RTVIO_STATE", arg_state },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		if (spank_job_control_setenv(sp, v[i].name, v[i].val, 1) != ESPANK_SUCCESS)
			return -1;
	/* What the job's own processes need to attach: the broker and their cells.
	 * sbatch hands its own environment to the job (spank_setenv is not available
	 * in the allocator context). */
	if (setenv("RTVIO_BROKER", arg_broker, 1) < 0 || setenv("RTVIO_CELLS", c->all, 1) < 0 ||
	    setenv("RTVIO_VM_CELLS", c->vm, 1) < 0)
		return -1;
	return 0;
}

/* Takes back what was admitted for a submission that then failed. */
static void release(char *cells)
{
	for (char *save = NULL, *c = strtok_r(cells, " ", &save); c;
	     c = strtok_r(NULL, " ", &save))
		run_rtvio("remove", c);
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	spank_context_t ctx = spank_context();
	if ((ctx != S_CTX_ALLOCATOR && ctx != S_CTX_LOCAL) || !opt_file[0])
		return 0;
	struct rs_cells cells;
	int r = rs_cells_of(opt_file, &cells);
	if (r < 0) {
		slurm_error("rtvio: %s: %s", opt_file, r == -ENOSPC ? "too many cells" :
			    "cannot read its [cell] sections");
		return -1;
	}
	r = run_rtvio("add", opt_file);
	if (r != 0) {
		slurm_error("rtvio: %s: %s", opt_file, r == 1 ?
			    "refused by the broker's analysis (reasons above)" :
			    "not admitted (bad fragment, or no broker)");
		return -1;
	}
	if (export_env(sp, &cells) < 0) {
		slurm_error("rtvio: cannot pass the admitted cells on to the job");
		release(cells.all);
		return -1;
	}
	return 0;
}
