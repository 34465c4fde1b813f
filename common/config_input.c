/* The configuration's input: inih's reader, one line per call so that lines can be
 * counted, and the "[...]" header lines it notices on the way. */
#include "config_int.h"

#include <errno.h>
#include <string.h>

/* inih's reader: one line per call, so that ps->lineno is the line inih is on. A
 * line longer than inih's buffer would be split silently, so it is an error. */
static char *reader(char *str, int num, void *stream)
{
	struct parser *ps = stream;
	int n = 0, c;
	bool too_long = false;

	if (ps->ret)
		return NULL; /* stop at the first error */
	for (;;) {
		if (ps->f) {
			c = fgetc(ps->f);
			if (c == EOF && ferror(ps->f) && !ps->read_errno)
				ps->read_errno = errno ? errno : EIO;
		} else {
			c = *ps->text ? (unsigned char)*ps->text : EOF;
			if (c != EOF)
				ps->text++;
		}
		if (c == EOF) {
			if (n == 0 && !too_long)
				return NULL;
			break;
		}
		if (c == '\n')
			break;
		if (n < num - 1)
			str[n++] = (char)c;
		else
			too_long = true;
	}
	str[n] = '\0';
	ps->lineno++;
	/* Editors on Windows start a UTF-8 file with a byte order mark; it is not part
	 * of the first line's text. */
	if (ps->lineno == 1 && n >= 3 && memcmp(str, "\xef\xbb\xbf", 3) == 0)
		memmove(str, str + 3, (size_t)n - 2);
	if (too_long) {
		cfg_fail(ps, ps->lineno, "line too long (at most %d characters)", num - 1);
		return NULL;
	}
	return str;
}

static enum kind kind_of(const char *word, size_t len)
{
	static const struct {
		const char *name;
		enum kind kind;
	} kinds[] = {
		{ "broker", K_BROKER }, { "cell", K_CELL }, { "flow", K_FLOW },
		{ "workload", K_WORKLOAD }, { "platform", K_PLATFORM }, { "remote", K_REMOTE },
		{ "host", K_HOST },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strlen(kinds[i].name) == len && memcmp(kinds[i].name, word, len) == 0)
			return kinds[i].kind;
	}
	return K_NONE;
}

/* Splits "cell sensor" into its kind and name. Returns the kind, or K_NONE with a
 * message already given. */
enum kind cfg_split_section(struct parser *ps, int line, const char *section,
			       const char **name)
{
	const char *sp = section;

	while (*sp && *sp != ' ' && *sp != '\t')
		sp++;
	int wordlen = (int)(sp - section);
	enum kind k = kind_of(section, (size_t)wordlen);

	while (*sp == ' ' || *sp == '\t')
		sp++;
	*name = sp;
	if (ps->platform_only)
		return k == K_PLATFORM && !*sp ? K_PLATFORM : K_SKIP;
	if (k == K_NONE) {
		cfg_fail(ps, line, "unknown section [%s] (expected [broker], [cell NAME], [flow NAME], "
			       "[workload NAME] or [platform])", section);
		return K_NONE;
	}
	if ((k == K_BROKER || k == K_PLATFORM) && *sp) {
		cfg_fail(ps, line, "section [%s] takes no name (expected [%.*s])", section, wordlen,
		     section);
		return K_NONE;
	}
	if (k == K_CELL || k == K_FLOW || k == K_WORKLOAD || k == K_REMOTE || k == K_HOST) {
		if (!*sp) {
			cfg_fail(ps, line, "section [%s] needs a name (expected [%s NAME])", section, section);
			return K_NONE;
		}
		if (!cfg_valid_name(sp)) {
			cfg_fail(ps, line, "[%s]: invalid name '%s' (expected at most %d letters, digits, "
				       "'-' or '_', starting with a letter or digit)", section, sp,
			     RTVIO_NAME_MAX - 1);
			return K_NONE;
		}
	}
	return k;
}

/* Called by the reader's caller when a header closes: a header that never got a
 * key is invisible to inih's handler, so it is checked here. */
static void close_header(struct parser *ps)
{
	const char *name;
	enum kind k;

	if (!ps->header_line || ps->header_keys || ps->ret)
		return;
	k = cfg_split_section(ps, ps->header_line, ps->header, &name);
	if (k == K_CELL || k == K_FLOW || k == K_WORKLOAD)
		cfg_fail(ps, ps->header_line, "section [%s] has no keys (a %s needs at least '%s')",
		     ps->header, k == K_CELL ? "cell" : k == K_FLOW ? "flow" : "workload",
		     k == K_CELL ? "cid" : k == K_FLOW ? "from, to and size" : "flow");
	else if (k == K_HOST)
		cfg_fail(ps, ps->header_line, "section [%s] has no keys (a host needs 'uds_path')",
			 ps->header);
	else if (k == K_REMOTE)
		cfg_fail(ps, ps->header_line, "section [%s] has no keys (a remote needs at least "
			 "'gateway' and 'network_budget')", ps->header);
}

/* Wraps reader() to notice "[...]" lines; the section's text is only used for
 * messages and for the empty-section check, inih remains the parser. */
char *cfg_header_reader(char *str, int num, void *stream)
{
	struct parser *ps = stream;
	char *line = reader(str, num, stream);

	if (!line) {
		if (!ps->ret)
			close_header(ps);
		return NULL;
	}
	const char *p = line;

	while (*p == ' ' || *p == '\t')
		p++;
	/* inih reads an indented line after a key as that key's continuation, even
	 * one that starts with '['; so must this. */
	if (*p == '[' && (p == line || ps->header_keys == 0)) {
		close_header(ps);
		if (ps->ret)
			return NULL;
		const char *q = strchr(p, ']');
		size_t len = q ? (size_t)(q - p - 1) : strlen(p + 1);
		const char *s = p + 1;

		while (len && (*s == ' ' || *s == '\t')) {
			s++;
			len--;
		}
		while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		if (len >= sizeof(ps->header))
			len = sizeof(ps->header) - 1;
		memcpy(ps->header, s, len);
		ps->header[len] = '\0';
		ps->header_line = ps->lineno;
		ps->header_keys = 0;
	}
	return line;
}
