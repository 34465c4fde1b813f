/* Little-endian accessors.
 *
 * Every multi-byte field that virtio (1.0 and later) puts in shared memory is
 * little-endian, whatever the host's byte order. These helpers are written in terms of
 * byte values, not of a compile-time endianness test, so they are correct on any host;
 * on a little-endian host the compiler reduces them to plain moves.
 *
 * Two kinds:
 *  - le16_to_cpu() and friends convert a value already loaded from a little-endian
 *    field (used with the atomic accessors of fence.h, which load whole words);
 *  - le16_load()/le16_store() and friends read or write a little-endian field at any
 *    byte address (no alignment needed), for packet headers and other byte buffers.
 * The typedefs le16/le32/le64 only document that a field holds little-endian data. */
#ifndef RTVIO_CORE_LE_H
#define RTVIO_CORE_LE_H

#include <stdint.h>

typedef uint16_t le16;
typedef uint32_t le32;
typedef uint64_t le64;

/*@ requires \valid_read((const uint8_t *)p + (0 .. 1));
    assigns \nothing; */
static inline uint16_t le16_load(const void *p)
{
	const uint8_t *b = p;

	return (uint16_t)(b[0] | b[1] << 8);
}

/*@ requires \valid_read((const uint8_t *)p + (0 .. 3));
    assigns \nothing; */
static inline uint32_t le32_load(const void *p)
{
	const uint8_t *b = p;

	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

/*@ requires \valid_read((const uint8_t *)p + (0 .. 7));
    assigns \nothing; */
static inline uint64_t le64_load(const void *p)
{
	const uint8_t *b = p;

	return (uint64_t)le32_load(b) | (uint64_t)le32_load(b + 4) << 32;
}

/*@ requires \valid((uint8_t *)p + (0 .. 1));
    assigns ((uint8_t *)p)[0 .. 1]; */
static inline void le16_store(void *p, uint16_t v)
{
	uint8_t *b = p;

	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

/*@ requires \valid((uint8_t *)p + (0 .. 3));
    assigns ((uint8_t *)p)[0 .. 3]; */
static inline void le32_store(void *p, uint32_t v)
{
	uint8_t *b = p;

	/*@ loop invariant 0 <= i <= 4;
	    loop assigns i, b[0 .. 3];
	    loop variant 4 - i; */
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

/*@ requires \valid((uint8_t *)p + (0 .. 7));
    assigns ((uint8_t *)p)[0 .. 7]; */
static inline void le64_store(void *p, uint64_t v)
{
	le32_store(p, (uint32_t)v);
	le32_store((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* Value conversions: reinterpret the in-memory bytes of v as little-endian. A union
 * is the C11-defined way to look at an object's bytes. */
/*@ assigns \nothing; */
static inline uint16_t le16_to_cpu(le16 v)
{
	union { le16 v; uint8_t b[2]; } u = { .v = v };

	return le16_load(u.b);
}

/*@ assigns \nothing; */
static inline uint32_t le32_to_cpu(le32 v)
{
	union { le32 v; uint8_t b[4]; } u = { .v = v };

	return le32_load(u.b);
}

/*@ assigns \nothing; */
static inline uint64_t le64_to_cpu(le64 v)
{
	union { le64 v; uint8_t b[8]; } u = { .v = v };

	return le64_load(u.b);
}

/*@ assigns \nothing; */
static inline le16 cpu_to_le16(uint16_t v)
{
	union { le16 v; uint8_t b[2]; } u;

	le16_store(u.b, v);
	return u.v;
}

/*@ assigns \nothing; */
static inline le32 cpu_to_le32(uint32_t v)
{
	union { le32 v; uint8_t b[4]; } u;

	le32_store(u.b, v);
	return u.v;
}

/*@ assigns \nothing; */
static inline le64 cpu_to_le64(uint64_t v)
{
	union { le64 v; uint8_t b[8]; } u;

	le64_store(u.b, v);
	return u.v;
}

#endif
