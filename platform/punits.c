/* Unit parsing: see punits.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "punits.h"

struct unit {
	const char *name;
	double scale;
};

static const struct unit size_units[] = {
	{ "", 1 },	   { "B", 1 },	     { "kB", 1e3 },	      { "KB", 1e3 },
	{ "MB", 1e6 },	   { "GB", 1e9 },    { "TB", 1e12 },	      { "KiB", 1024.0 },
	{ "MiB", 1048576.0 }, { "GiB", 1073741824.0 }, { "TiB", 1099511627776.0 },
};

static const struct unit time_units[] = {
	{ "", 1e9 }, { "s", 1e9 }, { "ms", 1e6 }, { "us", 1e3 }, { "ns", 1 },
};

/* Parses "<number><unit>" where unit is one of units; the number may be fractional. */
static int parse_scaled(const char *s, const struct unit *units, size_t nunits, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v < 0)
		return -EINVAL;
	while (*end == ' ')
		end++;
	for (size_t i = 0; i < nunits; i++) {
		if (!strcmp(end, units[i].name)) {
			*out = v * units[i].scale;
			return 0;
		}
	}
	return -EINVAL;
}

static int to_u64(double v, uint64_t *out)
{
	if (v >= 9223372036854775808.0)
		return -ERANGE;
	*out = (uint64_t)llround(v);
	return 0;
}

int pu_parse_size(const char *s, uint64_t *out)
{
	double v;
	int err = parse_scaled(s, size_units, sizeof size_units / sizeof size_units[0], &v);

	return err ? err : to_u64(v, out);
}

int pu_parse_rate(const char *s, uint64_t *out_Bps)
{
	char buf[64];
	size_t len;
	double v;
	int err;

	if (!s)
		return -EINVAL;
	len = strlen(s);
	if (len >= sizeof buf)
		return -EINVAL;
	memcpy(buf, s, len + 1);
	if (len >= 2 && !strcmp(buf + len - 2, "/s"))
		buf[len - 2] = '\0';
	else if (len && !(buf[len - 1] >= '0' && buf[len - 1] <= '9') && buf[len - 1] != '.')
		return -EINVAL;	/* a size without "/s" is not a rate */
	err = parse_scaled(buf, size_units, sizeof size_units / sizeof size_units[0], &v);
	return err ? err : to_u64(v, out_Bps);
}

int pu_parse_duration(const char *s, uint64_t *out_ns)
{
	double v;
	int err = parse_scaled(s, time_units, sizeof time_units / sizeof time_units[0], &v);

	return err ? err : to_u64(v, out_ns);
}

void pu_format_rate(double Bps, char *buf, size_t len)
{
	if (Bps >= 1e9)
		snprintf(buf, len, "%.2f GB/s", Bps / 1e9);
	else if (Bps >= 1e6)
		snprintf(buf, len, "%.1f MB/s", Bps / 1e6);
	else
		snprintf(buf, len, "%.0f B/s", Bps);
}
