/* The workload message format shared by `rtvio cell`, the VM guest program and
 * `rtvio bench`: every message carries its sequence number, its CLOCK_MONOTONIC send
 * stamp and a checksum, so that a receiver can count lost, reordered and corrupt
 * messages and measure one-way latency (sender and receiver share one clock: the
 * cells run on one machine).
 *
 * Layout (little-endian, 24 bytes, then len - 24 bytes of payload):
 *   0  u32 magic     RTMSG_MAGIC
 *   4  u32 len       whole message, header included (>= RTMSG_HDR)
 *   8  u64 seq       0, 1, 2, ... per connection
 *   16 u64 stamp_ns  CLOCK_MONOTONIC at send
 *   24 u32 check     FNV-1a of the 32 header bytes with check = 0, then of the payload
 *   28 u32 reserved  0
 *   32 ...           payload: byte k = (seq + k) & 0xff
 * Messages shorter than RTMSG_HDR (a 1-byte SEQPACKET, say) carry the first bytes of
 * a header: they can be checked for their pattern but not timed. */
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

static inline uint32_t rtmsg_checksum(const uint8_t *m, size_t len)
{
	uint8_t hdr[RTMSG_HDR];

	memcpy(hdr, m, RTMSG_HDR);
	rtmsg_put32(hdr + 24, 0);
	return rtmsg_fnv(rtmsg_fnv(2166136261u, hdr, RTMSG_HDR), m + RTMSG_HDR, len - RTMSG_HDR);
}

/* Fills m[0, len) as message `seq` sent at `stamp_ns`. */
static inline void rtmsg_fill(uint8_t *m, size_t len, uint64_t seq, uint64_t stamp_ns)
{
	uint8_t hdr[RTMSG_HDR] = { 0 };

	for (size_t k = RTMSG_HDR; k < len; k++)
		m[k] = (uint8_t)(seq + k);
	rtmsg_put32(hdr, RTMSG_MAGIC);
	rtmsg_put32(hdr + 4, (uint32_t)len);
	rtmsg_put64(hdr + 8, seq);
	rtmsg_put64(hdr + 16, stamp_ns);
	if (len >= RTMSG_HDR) {
		memcpy(m, hdr, RTMSG_HDR);
		rtmsg_put32(m + 24, rtmsg_checksum(m, len));
	} else {
		/* Too short for a header: a pattern that still depends on seq. */
		for (size_t k = 0; k < len; k++)
			m[k] = (uint8_t)(seq + k);
	}
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
