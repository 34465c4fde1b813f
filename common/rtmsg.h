/* The workload message format shared by `rtvio cell`, the VM guest program and
 * `rtvio bench`: every message carries its sequence number, its CLOCK_MONOTONIC send
 * stamp and a checksum, so that a receiver can count lost, reordered and corrupt
 * messages and measure one-way latency (sender and receiver share one clock: the
 * cells run on one machine).
 *
 * Layout (little-endian, a 32-byte header, then len - 32 bytes of payload):
 *   0  u32 magic     RTMSG_MAGIC
 *   4  u32 len       whole message, header included (>= RTMSG_HDR)
 *   8  u64 seq       0, 1, 2, ... per connection
 *   16 u64 stamp_ns  CLOCK_MONOTONIC at send
 *   24 u32 check     rtmsg_checksum: the payload, then the 32 header bytes with
 *                    check = 0, hashed eight bytes at a time (see rtmsg_hash)
 *   28 u32 reserved  0
 *   32 ...           payload: byte k = (seq + k) & 0xff
 * Messages shorter than RTMSG_HDR (a 1-byte SEQPACKET, say) carry only a pattern that
 * depends on seq: they can be checked for it but not timed. */
#ifndef RTVIO_RTMSG_H
#define RTVIO_RTMSG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RTMSG_MAGIC 0x7274766fu /* "rtvo" */
#define RTMSG_HDR 32u

static inline void rtmsg_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void rtmsg_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t rtmsg_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t rtmsg_get64(const uint8_t *p)
{
	return (uint64_t)rtmsg_get32(p) | (uint64_t)rtmsg_get32(p + 4) << 32;
}

static inline uint32_t rtmsg_fnv(uint32_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* The checksum hashes whole little-endian 64-bit words (a byte-at-a-time hash
 * costs more than the copy it checks on large messages): each step is a bijection
 * of the state for a fixed input word, so corrupting any one word always changes
 * the 64-bit state; a final avalanche spreads that into the 32 bits kept. */
static inline uint64_t rtmsg_hash(uint64_t h, const uint8_t *p, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		h = (h ^ rtmsg_get64(p + i)) * 0x100000001b3ull;
	for (; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

#define RTMSG_SEED 0xcbf29ce484222325ull

/* The payload first, then the header: a sender can hash the payload before it takes
 * the send stamp (rtmsg_prepare), so that the stamp is taken right before the send,
 * not before the work of filling a large message. */
static inline uint32_t rtmsg_finish(uint64_t payload_hash, const uint8_t *hdr_with_zero_check)
{
	uint64_t h = rtmsg_hash(payload_hash, hdr_with_zero_check, RTMSG_HDR);

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)(h ^ (h >> 32));
}

static inline uint32_t rtmsg_checksum(const uint8_t *m, size_t len)
{
	uint8_t hdr[RTMSG_HDR];

	memcpy(hdr, m, RTMSG_HDR);
	rtmsg_put32(hdr + 24, 0);
	return rtmsg_finish(rtmsg_hash(RTMSG_SEED, m + RTMSG_HDR, len - RTMSG_HDR), hdr);
}

/* Payload byte k of message seq is (seq + k) & 0xff: copied from a table of that
 * sequence rather than computed byte by byte. */
static inline void rtmsg_pattern(uint8_t *m, size_t from, size_t to, uint64_t seq)
{
	static const uint8_t ramp[512] = {
#define RTMSG_R4(i) (uint8_t)(i), (uint8_t)((i) + 1), (uint8_t)((i) + 2), (uint8_t)((i) + 3)
#define RTMSG_R16(i) RTMSG_R4(i), RTMSG_R4((i) + 4), RTMSG_R4((i) + 8), RTMSG_R4((i) + 12)
#define RTMSG_R64(i) RTMSG_R16(i), RTMSG_R16((i) + 16), RTMSG_R16((i) + 32), RTMSG_R16((i) + 48)
		RTMSG_R64(0), RTMSG_R64(64), RTMSG_R64(128), RTMSG_R64(192),
		RTMSG_R64(256), RTMSG_R64(320), RTMSG_R64(384), RTMSG_R64(448),
#undef RTMSG_R64
#undef RTMSG_R16
#undef RTMSG_R4
	};

	while (from < to) {
		size_t off = (size_t)((seq + from) & 0xff), n = to - from;

		if (n > 256)
			n = 256;
		memcpy(m + from, ramp + off, n);
		from += n;
	}
}

/* The part of message `seq` that does not depend on its send time: the payload of
 * m[0, len), and its hash, which rtmsg_stamp() needs. */
static inline uint64_t rtmsg_prepare(uint8_t *m, size_t len, uint64_t seq)
{
	if (len < RTMSG_HDR) {
		/* Too short for a header: a pattern that still depends on seq. */
		rtmsg_pattern(m, 0, len, seq);
		return 0;
	}
	rtmsg_pattern(m, RTMSG_HDR, len, seq);
	return rtmsg_hash(RTMSG_SEED, m + RTMSG_HDR, len - RTMSG_HDR);
}

/* Completes a prepared message: its header, stamped `stamp_ns`, and checksum. */
static inline void rtmsg_stamp(uint8_t *m, size_t len, uint64_t seq, uint64_t stamp_ns,
			       uint64_t payload_hash)
{
	uint8_t hdr[RTMSG_HDR] = { 0 };

	if (len < RTMSG_HDR)
		return;
	rtmsg_put32(hdr, RTMSG_MAGIC);
	rtmsg_put32(hdr + 4, (uint32_t)len);
	rtmsg_put64(hdr + 8, seq);
	rtmsg_put64(hdr + 16, stamp_ns);
	rtmsg_put32(hdr + 24, rtmsg_finish(payload_hash, hdr));
	memcpy(m, hdr, RTMSG_HDR);
}

/* Fills m[0, len) as message `seq` sent at `stamp_ns`. */
static inline void rtmsg_fill(uint8_t *m, size_t len, uint64_t seq, uint64_t stamp_ns)
{
	rtmsg_stamp(m, len, seq, stamp_ns, rtmsg_prepare(m, len, seq));
}

enum rtmsg_verdict { RTMSG_OK, RTMSG_CORRUPT };

/* Checks a received message of `len` bytes; on success *seq and *stamp_ns are set
 * (stamp 0 for messages too short to carry one; their seq must be supplied as the
 * expected one in *seq). */
static inline enum rtmsg_verdict rtmsg_check(const uint8_t *m, size_t len, uint64_t *seq,
					     uint64_t *stamp_ns)
{
	if (len < RTMSG_HDR) {
		for (size_t k = 0; k < len; k++)
			if (m[k] != (uint8_t)(*seq + k))
				return RTMSG_CORRUPT;
		*stamp_ns = 0;
		return RTMSG_OK;
	}
	if (rtmsg_get32(m) != RTMSG_MAGIC || rtmsg_get32(m + 4) != len ||
	    rtmsg_get32(m + 24) != rtmsg_checksum(m, len))
		return RTMSG_CORRUPT;
	*seq = rtmsg_get64(m + 8);
	*stamp_ns = rtmsg_get64(m + 16);
	return RTMSG_OK;
}

#endif
