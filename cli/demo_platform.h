/* The platform costs `rtvio demo` bounds its flows with: this machine's, measured by
 * `rtvio calibrate --quick` once per boot and cached, or the config's own [platform]
 * when that cannot be done. Not real-time code. */
#ifndef RTVIO_CLI_DEMO_PLATFORM_H
#define RTVIO_CLI_DEMO_PLATFORM_H

#include <stddef.h>

#include "config.h"

struct demo_platform {
	char file[512];   /* [platform] file for `rtvio analyze --platform`; "" = none */
	char source[640]; /* where the costs come from, for the report's header */
};

/* Fills *p for cfg (loaded from conf_path), calibrating when no measurement of this
 * boot is cached; says on stderr what it does. Never fails: without a measurement
 * p->file is "" and p->source names the config's costs (or their absence). */
void demo_platform(const struct rtvio_config *cfg, const char *conf_path,
		   struct demo_platform *p);

#endif
