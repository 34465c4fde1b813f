/* The configuration's messages ("FILE:LINE: [section] key 'k': ...") and the parsers
 * of one value each: sizes, times, numbers, booleans, words, endpoints. */
#include "config_int.h"
#include "units.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int cfg_fail(struct parser *ps, int line, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (ps->ret)
		return ps->ret;
	ps->ret = -EINVAL;
	if (!ps->err || !ps->errlen)
		return ps->ret;
	if (line > 0)
		n = snprintf(ps->err, ps->errlen, "%s:%d: ", ps->file, line);
	else
		n = snprintf(ps->err, ps->errlen, "%s: ", ps->file);
	if (n < 0 || (size_t)n >= ps->errlen)
		return ps->ret;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return ps->ret;
}

bool cfg_valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= RTVIO_NAME_MAX)
		return false;
	if (s[0] == '-' || s[0] == '_')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int cfg_key_fail(const struct keyctx *k, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cfg_fail(k->ps, k->line, "[%s] key '%s': %s", k->ps->section, k->key, msg);
}

int cfg_text_value(const struct keyctx *k)
{
	if (strpbrk(k->value, ";#"))
		return cfg_key_fail(k, "'%s': ';' and '#' start comments in this format and "
				    "cannot be part of a value", k->value);
	return 0;
}

int cfg_bad_value(const struct keyctx *k, const char *why)
{
	return cfg_key_fail(k, "'%s': %s", k->value, why);
}

int cfg_get_size(const struct keyctx *k, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *why = NULL;
	char a[32], b[32];

	if (rtvio_parse_size(k->value, 1, out, &why))
		return cfg_bad_value(k, why);
	if (*out < min || *out > max)
		return cfg_key_fail(k, "'%s': expected a size from %s to %s", k->value,
				rtvio_fmt_size(a, sizeof(a), min), rtvio_fmt_size(b, sizeof(b), max));
	return 0;
}

int cfg_get_time(const struct keyctx *k, uint64_t min, uint64_t *out)
{
	const char *why = NULL;
	char a[32], b[32];

	if (rtvio_parse_time(k->value, RTVIO_UNIT_REQUIRED, out, &why))
		return cfg_bad_value(k, why);
	if (*out < min || *out > RTVIO_MAX_TIME_NS)
		return cfg_key_fail(k, "'%s': expected a time from %s to %s", k->value,
				rtvio_fmt_time(a, sizeof(a), min),
				rtvio_fmt_time(b, sizeof(b), RTVIO_MAX_TIME_NS));
	return 0;
}

int cfg_get_int(const struct keyctx *k, long long min, long long max, long long *out)
{
	const char *why = NULL;

	if (rtvio_parse_int(k->value, min, max, out, &why))
		return cfg_key_fail(k, "'%s': expected a whole number from %lld to %lld", k->value, min,
				max);
	return 0;
}

int cfg_get_bool(const struct keyctx *k, bool *out)
{
	const char *why = NULL;

	if (rtvio_parse_bool(k->value, out, &why))
		return cfg_bad_value(k, why);
	return 0;
}

/* Chooses among words: returns the index, or an error naming them. */
int cfg_get_word(const struct keyctx *k, const char *const *words, int *out)
{
	char list[128];

	for (int i = 0; words[i]; i++) {
		if (strcmp(words[i], k->value) == 0) {
			*out = i;
			return 0;
		}
	}
	size_t n = 0;

	list[0] = '\0';
	for (int i = 0; words[i]; i++) {
		int w = snprintf(list + n, sizeof(list) - n, "%s%s", !i ? "" : words[i + 1] ? ", " : " or ",
				 words[i]);

		if (w < 0 || (size_t)w >= sizeof(list) - n)
			break;
		n += (size_t)w;
	}
	return cfg_key_fail(k, "'%s': expected %s", k->value, list);
}

/* "cell" or "cell:port". */
int cfg_get_endpoint(const struct keyctx *k, char *cell, uint32_t *port, bool *has_port)
{
	const char *colon = strchr(k->value, ':');
	size_t len = colon ? (size_t)(colon - k->value) : strlen(k->value);
	long long p;

	if (len == 0 || len >= RTVIO_NAME_MAX)
		return cfg_key_fail(k, "'%s': expected CELL or CELL:PORT", k->value);
	memcpy(cell, k->value, len);
	cell[len] = '\0';
	if (!cfg_valid_name(cell))
		return cfg_key_fail(k, "'%s': expected CELL or CELL:PORT, and '%s' is not a valid cell name",
				k->value, cell);
	*has_port = colon != NULL;
	*port = RTVIO_PORT_ANY;
	if (!colon)
		return 0;
	const char *why = NULL;

	if (rtvio_parse_int(colon + 1, 1, 0xfffffffell, &p, &why))
		return cfg_key_fail(k, "'%s': expected a port from 1 to 4294967294 after ':'", k->value);
	*port = (uint32_t)p;
	return 0;
}
