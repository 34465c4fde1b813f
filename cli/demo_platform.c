/* `rtvio demo`'s platform costs: see demo_platform.h.
 *
 * A bound is only as good as the costs it is computed from, and the ones in a shipped
 * config were measured on another machine. A quick calibration takes about ten
 * seconds; its result holds until the machine reboots (a new boot_id), so it is
 * cached under the boot's id, and under the broker settings it was measured with. */
#include "demo_platform.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

/* How long calibrate --quick may take on a loaded machine before the demo gives up. */
#define CALIBRATE_TIMEOUT_MS 120000

/* /proc/sys/kernel/random/boot_id without its dashes; false when unknown. */
static bool boot_id(char *id, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	char line[64];
	size_t n = 0;

	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	for (const char *c = line; *c && n + 1 < len; c++)
		if ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))
			id[n++] = *c;
	id[n] = '\0';
	return n > 0;
}

/* $XDG_RUNTIME_DIR/rtvio (a per-user tmpfs, emptied at logout and reboot), else
 * /tmp/rtvio-UID. Created 0700; false when it cannot be. */
static bool cache_dir(char *dir, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(dir, len, "%s/rtvio", xdg);
	else
		n = snprintf(dir, len, "/tmp/rtvio-%u", (unsigned)getuid());
	if (n < 0 || (size_t)n >= len)
		return false;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return false;
	/* Someone else's directory under /tmp is not ours to trust. */
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid();
}

/* The cache file for this boot and these broker settings. */
static bool cache_path(const struct rtvio_config *cfg, char *path, size_t len)
{
	char dir[400], id[40];
	int n;

	if (!boot_id(id, sizeof(id)) || !cache_dir(dir, sizeof(dir)))
		return false;
	n = snprintf(path, len, "%s/platform-%s-cpu%d-poll-%s-copy-%s-qos-%s.conf", dir, id,
		     cfg->broker.cpu, cfg->broker.poll ? "yes" : "no",
		     rtvio_copy_name(cfg->broker.copy), cfg->broker.pm_qos ? "yes" : "no");
	return n > 0 && (size_t)n < len;
}

/* A cached file counts when it holds every value analyze needs. */
static bool usable(const char *path)
{
	struct rtvio_platform_cfg plat;
	char err[256], missing[256];

	if (access(path, R_OK) != 0 || rtvio_platform_load(path, &plat, err, sizeof(err)))
		return false;
	return rtvio_platform_missing(&plat, missing, sizeof(missing)) == 0;
}

/* Runs `rtvio calibrate --quick` with the broker's settings, into a temporary file
 * renamed into place only when complete. */
static int calibrate(const struct rtvio_config *cfg, const char *path)
{
	char tmp[560], cpu[16];
	struct proc c;
	int rc;

	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	snprintf(cpu, sizeof(cpu), "%d", cfg->broker.cpu);
	const char *argv[] = { proc_self_exe(), "calibrate", "--quick", "--out", tmp,
			       "--poll", cfg->broker.poll ? "yes" : "no",
			       "--copy", rtvio_copy_name(cfg->broker.copy),
			       "--pm-qos", cfg->broker.pm_qos ? "yes" : "no",
			       cfg->broker.cpu >= 0 ? "--cpu" : NULL, cpu, NULL };

	rc = proc_start(&c, argv, PROC_CAPTURE);
	if (rc)
		return rc;
	if (!proc_wait(&c, CALIBRATE_TIMEOUT_MS))
		rc = -ETIMEDOUT;
	proc_stop(&c, SIGTERM, 2000);
	if (!rc && !(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0))
		rc = -ECHILD;
	proc_free(&c);
	if (!rc && (!usable(tmp) || rename(tmp, path) < 0))
		rc = -EIO;
	unlink(tmp);
	return rc;
}

/* No measurement: the config's own costs, said plainly. */
static void from_config(const struct rtvio_config *cfg, const char *conf_path,
			struct demo_platform *p)
{
	char missing[256];

	p->file[0] = '\0';
	if (rtvio_platform_missing(&cfg->platform, missing, sizeof(missing)) == 0)
		snprintf(p->source, sizeof(p->source), "%s's [platform] (measured elsewhere, "
			 "not on this machine)", conf_path);
	else
		snprintf(p->source, sizeof(p->source), "none: %s has no complete [platform] "
			 "(missing %s), so there are no bounds", conf_path, missing);
	fprintf(stderr, "rtvio demo: bounds from the platform costs in %s\n", p->source);
}

void demo_platform(const struct rtvio_config *cfg, const char *conf_path,
		   struct demo_platform *p)
{
	char path[sizeof(p->file)];
	int rc;

	if (!cache_path(cfg, path, sizeof(path))) {
		fprintf(stderr, "rtvio demo: cannot measure this machine's costs (no boot id "
				"or no cache directory for them)\n");
		from_config(cfg, conf_path, p);
		return;
	}
	if (usable(path)) {
		snprintf(p->file, sizeof(p->file), "%s", path);
		snprintf(p->source, sizeof(p->source), "this machine, `rtvio calibrate --quick` "
			 "earlier this boot (%s)", path);
		fprintf(stderr, "rtvio demo: platform costs of this machine from %s\n", path);
		return;
	}
	fprintf(stderr, "rtvio demo: measuring this machine's platform costs with "
			"`rtvio calibrate --quick` (about 10 s, once per boot)...\n");
	rc = calibrate(cfg, path);
	if (rc) {
		fprintf(stderr, "\nrtvio demo: rtvio calibrate could not measure this machine (%s; "
				"see its message above)\n", rc == -ECHILD ? "it failed" : strerror(-rc));
		from_config(cfg, conf_path, p);
		return;
	}
	snprintf(p->file, sizeof(p->file), "%s", path);
	snprintf(p->source, sizeof(p->source), "this machine, `rtvio calibrate --quick` just "
		 "now (%s)", path);
	fprintf(stderr, "rtvio demo: platform costs measured, cached in %s\n", path);
}
