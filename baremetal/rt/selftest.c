/* Checks, at boot, what the ring code takes for granted about this ISA: core's
 * little-endian accessors give the virtio byte order at any alignment, and the
 * rtmsg codec agrees with them. A cell whose check fails does not attach. */
#include "selftest.h"

#include <stddef.h>
#include <string.h>

#include "../../common/rtmsg.h"
#include "console.h"
#include "le.h"

static int check(int cond, const char *what)
{
	if (!cond) {
		con_puts("rtvio-bm: self-check failed: ");
		con_puts(what);
		con_puts("\n");
	}
	return cond ? 0 : 1;
}

/* Every offset 0..7 of a buffer, so each access is tried misaligned too. */
static int check_at(uint8_t *b, size_t off)
{
	static const uint8_t want[8] = { 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01 };
	int bad = 0;

	memset(b, 0, 24);
	le64_store(b + off, 0x0102030405060708ull);
	bad += check(!memcmp(b + off, want, 8), "le64_store byte order");
	bad += check(le64_load(b + off) == 0x0102030405060708ull, "le64_load");
	bad += check(le32_load(b + off) == 0x05060708u, "le32_load");
	bad += check(le16_load(b + off + 1) == 0x0607u, "le16_load");
	le32_store(b + off, 0xa1b2c3d4u);
	bad += check(b[off] == 0xd4 && b[off + 3] == 0xa1, "le32_store byte order");
	le16_store(b + off, 0xbeefu);
	bad += check(b[off] == 0xef && b[off + 1] == 0xbe, "le16_store byte order");
	bad += check(rtmsg_get64(b + off) == le64_load(b + off), "rtmsg_get64 = le64_load");
	return bad;
}

int bm_selftest(void)
{
	uint8_t buf[32] __attribute__((aligned(8)));
	union {
		uint8_t b[8];
		le64 w;
		le32 h;
		le16 q;
	} u = { .b = { 1, 2, 3, 4, 5, 6, 7, 8 } };
	int bad = 0;

	for (size_t off = 0; off < 8; off++)
		bad += check_at(buf, off);
	/* The conversions of a value loaded as a whole word (the atomic accessors). */
	bad += check(le64_to_cpu(u.w) == 0x0807060504030201ull, "le64_to_cpu");
	bad += check(le32_to_cpu(u.h) == 0x04030201u, "le32_to_cpu");
	bad += check(le16_to_cpu(u.q) == 0x0201u, "le16_to_cpu");
	u.q = cpu_to_le16(0x1234u);
	bad += check(u.b[0] == 0x34 && u.b[1] == 0x12, "cpu_to_le16");
	return bad;
}
