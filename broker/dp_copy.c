/* The copy engine's chunk copy routines: see dp_copy.h. */
#include <stdint.h>
#include <string.h>

#include "dp_copy.h"

#if defined(__x86_64__) && defined(__SSE2__)
#include <emmintrin.h>
#define DP_COPY_HAVE_NT 1
#else
#define DP_COPY_HAVE_NT 0
#endif

void dp_copy_normal(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
}

#if DP_COPY_HAVE_NT

void dp_copy_nt(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	size_t head;

	if (n < DP_COPY_NT_MIN) {
		memcpy(d, s, n);
		return;
	}
	/* Streaming stores of 16 bytes need a 16-byte-aligned destination; the source
	 * has no such constraint (unaligned loads cost little). n >= 64 > head. */
	head = (16u - ((uintptr_t)d & 15u)) & 15u;
	memcpy(d, s, head);
	d += head;
	s += head;
	n -= head;
	/* Whole 64-byte groups fill write-combining buffers in one go. */
	for (; n >= 64; n -= 64, d += 64, s += 64) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
		__m128i c = _mm_loadu_si128((const __m128i *)(const void *)(s + 32));
		__m128i e = _mm_loadu_si128((const __m128i *)(const void *)(s + 48));

		_mm_stream_si128((__m128i *)(void *)d, a);
		_mm_stream_si128((__m128i *)(void *)(d + 16), b);
		_mm_stream_si128((__m128i *)(void *)(d + 32), c);
		_mm_stream_si128((__m128i *)(void *)(d + 48), e);
	}
	for (; n >= 16; n -= 16, d += 16, s += 16)
		_mm_stream_si128((__m128i *)(void *)d,
				 _mm_loadu_si128((const __m128i *)(const void *)s));
	if (n >= 8) {
		long long v;

		/* d is 16-byte aligned here, so 8-byte aligned as movnti wants. */
		memcpy(&v, s, sizeof(v));
		_mm_stream_si64((long long *)(void *)d, v);
		d += 8;
		s += 8;
		n -= 8;
	}
	memcpy(d, s, n);
	/* Streaming stores are weakly ordered even on x86 (they leave through
	 * write-combining buffers, outside TSO): without this fence the store of the
	 * used-ring index that publishes this buffer, whose release ordering is only a
	 * compiler barrier on x86, could become visible to the receiver before the
	 * payload. sfence orders every streaming store above before every later store
	 * of this thread, so the payload is globally visible first. */
	_mm_sfence();
}

bool dp_copy_nt_native(void)
{
	return true;
}

#else

/* No non-temporal store is available to portable C here: ordinary stores, which need
 * no fence beyond the caller's release ordering. The broker says so at start-up. */
void dp_copy_nt(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
}

bool dp_copy_nt_native(void)
{
	return false;
}

#endif

dp_copy_fn dp_copy_select(enum rtvio_copy mode)
{
	return mode == RTVIO_COPY_NT ? dp_copy_nt : dp_copy_normal;
}
