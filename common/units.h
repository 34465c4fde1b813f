/* Values with units, as the configuration and the command line write them.
 *
 * Sizes: a number and B, kB, MB, GB, TB (powers of 10) or KiB, MiB, GiB, TiB (powers
 * of 2); times: ns, us (or µs), ms, s; bandwidths: a size per second ("8GB/s").
 * Whitespace may separate number and unit. A decimal fraction is accepted when the
 * result is a whole number of the base unit ("1.5KiB" = 1536 B, "2.5us" = 2500 ns;
 * "1.5B" is an error). Negative values, garbage and results that overflow 64 bits are
 * rejected. A bare number takes the default unit the caller passes; for times the
 * caller may pass RTVIO_UNIT_REQUIRED instead, and then only a bare 0 is accepted
 * (zero is zero in every unit) and any other bare number is an error saying that a
 * unit is needed, so that `period = 1000` can never silently mean 1000 s.
 *
 * Each parser returns 0, or -EINVAL (malformed) / -ERANGE (too large), and then
 * points *why (when not NULL) at a static phrase saying what was expected. */
#ifndef RTVIO_COMMON_UNITS_H
#define RTVIO_COMMON_UNITS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define RTVIO_NS_PER_S 1000000000ull
/* bare_unit of rtvio_parse_time(): a number other than 0 must carry its unit. */
#define RTVIO_UNIT_REQUIRED 0ull

/* bare_unit: the multiplier of a bare number (1 = bytes). */
int rtvio_parse_size(const char *s, uint64_t bare_unit, uint64_t *bytes, const char **why);
/* bare_unit: the multiplier of a bare number in ns (RTVIO_NS_PER_S = seconds), or
 * RTVIO_UNIT_REQUIRED. */
int rtvio_parse_time(const char *s, uint64_t bare_unit, uint64_t *ns, const char **why);
/* A size per "s"; a bare number is bytes per second. */
int rtvio_parse_bandwidth(const char *s, uint64_t *bytes_per_s, const char **why);
/* yes/no, true/false, on/off, 1/0 (case-insensitive). */
int rtvio_parse_bool(const char *s, bool *v, const char **why);
/* A plain decimal integer within [min, max]. */
int rtvio_parse_int(const char *s, long long min, long long max, long long *v, const char **why);

/* Exact, compact, re-parseable renderings ("4KiB", "1500B", "1ms", "2500ns",
 * "8GB/s"): the largest unit that divides the value exactly. Return buf. */
char *rtvio_fmt_size(char *buf, size_t len, uint64_t bytes);
char *rtvio_fmt_time(char *buf, size_t len, uint64_t ns);
char *rtvio_fmt_bandwidth(char *buf, size_t len, uint64_t bytes_per_s);

#endif
