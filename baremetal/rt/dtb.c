/* Minimal FDT walk (see dtb.h): the structure block, big-endian tokens. */
#include "dtb.h"

#include <stddef.h>
#include <string.h>

#define FDT_MAGIC 0xd00dfeedu
#define FDT_BEGIN_NODE 1u
#define FDT_END_NODE 2u
#define FDT_PROP 3u
#define FDT_NOP 4u
#define FDT_END 9u

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

const char *dtb_bootargs(uintptr_t dtb)
{
	const uint8_t *h = (const uint8_t *)dtb;
	uint32_t size, off, end, strs;
	int depth = 0, in_chosen = 0;

	if (!dtb || be32(h) != FDT_MAGIC)
		return "";
	size = be32(h + 4);
	off = be32(h + 8);
	end = off + be32(h + 36);
	strs = be32(h + 12);
	if (end > size || end < off)
		return "";
	while (off + 4 <= end) {
		uint32_t tok = be32(h + off);

		off += 4;
		if (tok == FDT_BEGIN_NODE) {
			const char *name = (const char *)h + off;
			size_t n = strlen(name);

			depth++;
			if (depth == 2)
				in_chosen = streq(name, "chosen");
			off += (uint32_t)(n + 4) & ~3u;
		} else if (tok == FDT_END_NODE) {
			if (depth-- == 2)
				in_chosen = 0;
		} else if (tok == FDT_PROP) {
			uint32_t len = be32(h + off), name = be32(h + off + 4);

			if (in_chosen && depth == 2 &&
			    streq((const char *)h + strs + name, "bootargs"))
				return len ? (const char *)h + off + 8 : "";
			off += 8 + ((len + 3) & ~3u);
		} else if (tok != FDT_NOP) {
			break;
		}
	}
	return "";
}
