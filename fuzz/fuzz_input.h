/* Reading a fuzzer's input as a stream of small fields. Past the end every field
 * reads as zero, so any input is a complete script. */
#ifndef RTVIO_FUZZ_INPUT_H
#define RTVIO_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct fin {
	const uint8_t *p;
	size_t n;
};

static inline int fin_left(const struct fin *f)
{
	return f->n > 0;
}

static inline uint8_t fin_u8(struct fin *f)
{
	uint8_t v = 0;

	if (f->n) {
		v = *f->p++;
		f->n--;
	}
	return v;
}

static inline uint16_t fin_u16(struct fin *f)
{
	return (uint16_t)(fin_u8(f) | fin_u8(f) << 8);
}

static inline uint32_t fin_u32(struct fin *f)
{
	return (uint32_t)fin_u16(f) | (uint32_t)fin_u16(f) << 16;
}

static inline uint64_t fin_u64(struct fin *f)
{
	return (uint64_t)fin_u32(f) | (uint64_t)fin_u32(f) << 32;
}

/* Copies up to n bytes (zero-filled past the end). */
static inline void fin_bytes(struct fin *f, void *out, size_t n)
{
	size_t k = n < f->n ? n : f->n;

	memcpy(out, f->p, k);
	memset((uint8_t *)out + k, 0, n - k);
	f->p += k;
	f->n -= k;
}

#endif
