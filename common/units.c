/* Values with units: see units.h. Integer arithmetic only, so that what the user
 * wrote is represented exactly or rejected, never rounded. */
#include "units.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct unit {
	const char *name;
	uint64_t mult;
};

static const struct unit size_units[] = {
	{ "B", 1 },
	{ "kB", 1000ull },
	{ "MB", 1000000ull },
	{ "GB", 1000000000ull },
	{ "TB", 1000000000000ull },
	{ "KiB", 1ull << 10 },
	{ "MiB", 1ull << 20 },
	{ "GiB", 1ull << 30 },
	{ "TiB", 1ull << 40 },
	{ NULL, 0 },
};

static const struct unit time_units[] = {
	{ "ns", 1 },
	{ "us", 1000ull },
	{ "\xc2\xb5s", 1000ull }, /* µs, UTF-8 */
	{ "ms", 1000000ull },
	{ "s", RTVIO_NS_PER_S },
	{ NULL, 0 },
};

static const char why_size[] =
	"expected a size such as 64, 4KiB or 2MB (units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)";
static const char why_time[] = "expected a time such as 0, 500us or 1ms (units ns, us, ms, s)";
static const char why_unit[] = "a time needs a unit: ns, us, ms or s (only 0 may be bare)";
static const char why_bw[] = "expected a bandwidth such as 8GB/s or 500MiB/s";
static const char why_range[] = "value too large";
static const char why_frac[] = "not a whole number of the base unit (bytes or ns)";
static const char why_neg[] = "negative values are not allowed";

static void set_why(const char **why, const char *s)
{
	if (why)
		*why = s;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* "12.50" -> mant 125, frac 1. Fraction zeros are held back until a non-zero digit
 * follows, so "1.000000000000000000000" does not overflow. */
static int parse_decimal(const char **pp, uint64_t *mant, unsigned *frac, const char **why,
			 const char *why_syntax)
{
	const char *p = *pp;
	uint64_t m = 0;
	unsigned f = 0, zeros = 0;
	bool any = false, in_frac = false;

	if (*p == '-') {
		set_why(why, why_neg);
		return -EINVAL;
	}
	for (;; p++) {
		if (*p == '.' && !in_frac) {
			if (!any || !is_digit(p[1])) {
				set_why(why, why_syntax);
				return -EINVAL;
			}
			in_frac = true;
			continue;
		}
		if (!is_digit(*p))
			break;
		any = true;
		unsigned d = (unsigned)(*p - '0');

		if (in_frac && d == 0) {
			zeros++;
			continue;
		}
		if (in_frac) {
			/* Apply held-back zeros, then this digit. */
			for (unsigned i = 0; i <= zeros; i++) {
				if (m > UINT64_MAX / 10) {
					set_why(why, why_range);
					return -ERANGE;
				}
				m *= 10;
			}
			f += zeros + 1;
			zeros = 0;
		} else {
			if (m > UINT64_MAX / 10) {
				set_why(why, why_range);
				return -ERANGE;
			}
			m *= 10;
		}
		if (m > UINT64_MAX - d) {
			set_why(why, why_range);
			return -ERANGE;
		}
		m += d;
	}
	if (!any) {
		set_why(why, why_syntax);
		return -EINVAL;
	}
	if (f > 19) {
		/* 10^20 does not fit; such a value cannot be a whole number anyway
		 * since the mantissa is not divisible by 10 (its last digit is non-zero). */
		set_why(why, why_frac);
		return -EINVAL;
	}
	*pp = p;
	*mant = m;
	*frac = f;
	return 0;
}

/* mant / 10^frac * mult, exactly, or an error. */
static int scale(uint64_t mant, unsigned frac, uint64_t mult, uint64_t *out, const char **why)
{
	uint64_t pow = 1;

	for (unsigned i = 0; i < frac; i++)
		pow *= 10;
	uint64_t g = gcd64(mult, pow);
	uint64_t m = mult / g, p = pow / g;

	/* gcd(m, p) = 1, so p divides mant * m exactly when it divides mant. */
	if (mant % p) {
		set_why(why, why_frac);
		return -EINVAL;
	}
	mant /= p;
	if (m && mant > UINT64_MAX / m) {
		set_why(why, why_range);
		return -ERANGE;
	}
	*out = mant * m;
	return 0;
}

/* Parses "<number>[ ]<unit>" between s and end (end exclusive; trailing blanks
 * allowed). An empty unit takes bare_unit. */
static int parse_with_units(const char *s, const char *end, const struct unit *units,
			    uint64_t bare_unit, uint64_t *out, const char **why,
			    const char *why_syntax)
{
	const char *p = s;
	uint64_t mant;
	unsigned frac;
	int ret;

	while (p < end && is_space(*p))
		p++;
	while (end > p && is_space(end[-1]))
		end--;
	if (p == end) {
		set_why(why, why_syntax);
		return -EINVAL;
	}
	/* parse_decimal stops at the first non-digit, which is at or before end. */
	ret = parse_decimal(&p, &mant, &frac, why, why_syntax);
	if (ret)
		return ret;
	if (p > end) {
		set_why(why, why_syntax);
		return -EINVAL;
	}
	while (p < end && is_space(*p))
		p++;
	size_t ulen = (size_t)(end - p);

	if (ulen == 0 && bare_unit == RTVIO_UNIT_REQUIRED && mant != 0) {
		set_why(why, why_unit);
		return -EINVAL;
	}
	if (ulen == 0)
		return scale(mant, frac, bare_unit, out, why);
	for (const struct unit *u = units; u->name; u++) {
		if (strlen(u->name) == ulen && memcmp(u->name, p, ulen) == 0)
			return scale(mant, frac, u->mult, out, why);
	}
	set_why(why, why_syntax);
	return -EINVAL;
}

int rtvio_parse_size(const char *s, uint64_t bare_unit, uint64_t *bytes, const char **why)
{
	return parse_with_units(s, s + strlen(s), size_units, bare_unit, bytes, why, why_size);
}

int rtvio_parse_time(const char *s, uint64_t bare_unit, uint64_t *ns, const char **why)
{
	return parse_with_units(s, s + strlen(s), time_units, bare_unit, ns, why, why_time);
}

int rtvio_parse_bandwidth(const char *s, uint64_t *bytes_per_s, const char **why)
{
	const char *slash = strchr(s, '/');
	const char *end = s + strlen(s);
	int ret;

	if (!slash) {
		/* Only a bare number (bytes per second): "8GB" is a size, not a rate. */
		static const struct unit none[] = { { NULL, 0 } };

		return parse_with_units(s, end, none, 1, bytes_per_s, why, why_bw);
	}
	const char *t = slash + 1;

	while (is_space(*t))
		t++;
	while (end > t && is_space(end[-1]))
		end--;
	if (end - t != 1 || *t != 's') {
		set_why(why, why_bw);
		return -EINVAL;
	}
	ret = parse_with_units(s, slash, size_units, 1, bytes_per_s, why, why_bw);
	if (ret == -EINVAL && why && *why == why_size)
		*why = why_bw;
	return ret;
}

int rtvio_parse_bool(const char *s, bool *v, const char **why)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*v = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*v = false;
			return 0;
		}
	}
	set_why(why, "expected yes or no");
	return -EINVAL;
}

int rtvio_parse_int(const char *s, long long min, long long max, long long *v, const char **why)
{
	const char *p = s;
	bool neg = false;
	unsigned long long m = 0;
	/* Magnitude limit for this sign: |min| for negatives, max otherwise. */
	unsigned long long lim;

	while (is_space(*p))
		p++;
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (!is_digit(*p)) {
		set_why(why, "expected a whole number");
		return -EINVAL;
	}
	for (; is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (m > (~0ull - d) / 10) {
			set_why(why, "value out of range");
			return -ERANGE;
		}
		m = m * 10 + d;
	}
	while (is_space(*p))
		p++;
	if (*p) {
		set_why(why, "expected a whole number");
		return -EINVAL;
	}
	if (neg)
		lim = min < 0 ? (unsigned long long)(-(min + 1)) + 1 : 0;
	else
		lim = max < 0 ? 0 : (unsigned long long)max;
	if (m > lim || (!neg && (long long)m < min)) {
		set_why(why, "value out of range");
		return -ERANGE;
	}
	if (neg)
		*v = m ? -(long long)(m - 1) - 1 : 0;
	else
		*v = (long long)m;
	if (*v < min || *v > max) {
		set_why(why, "value out of range");
		return -ERANGE;
	}
	return 0;
}

/* The unit with the largest multiplier that divides v exactly; ties go to the
 * first in the table. */
static char *fmt_units(char *buf, size_t len, uint64_t v, const struct unit *units,
		       const char *suffix)
{
	const struct unit *best = &units[0];

	for (const struct unit *u = units; u->name; u++) {
		if (v != 0 && v % u->mult == 0 && u->mult > best->mult)
			best = u;
	}
	snprintf(buf, len, "%llu%s%s", (unsigned long long)(v / best->mult), best->name, suffix);
	return buf;
}

char *rtvio_fmt_size(char *buf, size_t len, uint64_t bytes)
{
	return fmt_units(buf, len, bytes, size_units, "");
}

char *rtvio_fmt_time(char *buf, size_t len, uint64_t ns)
{
	return fmt_units(buf, len, ns, time_units, "");
}

char *rtvio_fmt_bandwidth(char *buf, size_t len, uint64_t bytes_per_s)
{
	return fmt_units(buf, len, bytes_per_s, size_units, "/s");
}
