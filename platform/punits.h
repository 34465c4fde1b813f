/* Unit parsing for the platform commands (sizes, rates, durations), following the units
 * of DESIGN.md: B kB MB GB (powers of 10), KiB MiB GiB (powers of 2), ns us ms s, and a
 * rate is a size per s. Kept local to platform/ until a shared parser exists. */
#ifndef RTVIO_PLATFORM_PUNITS_H
#define RTVIO_PLATFORM_PUNITS_H

#include <stddef.h>
#include <stdint.h>

/* "64MiB", "1.5GB", "4096" (bytes). -EINVAL for junk, -ERANGE beyond 2^63. */
int pu_parse_size(const char *s, uint64_t *out);

/* "2GB/s", "500MiB/s", "1e9" (bytes per second). Same errors as pu_parse_size. */
int pu_parse_rate(const char *s, uint64_t *out_Bps);

/* "10s", "500ms", "20us", "10" (seconds) into nanoseconds. */
int pu_parse_duration(const char *s, uint64_t *out_ns);

/* "12.34 GB/s" (powers of 10, as measured bandwidths are usually quoted). */
void pu_format_rate(double Bps, char *buf, size_t len);

#endif
