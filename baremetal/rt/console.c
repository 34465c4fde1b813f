/* Console formatting over arch_putc (see console.h). */
#include "console.h"

#include "arch.h"

void con_puts(const char *s)
{
	while (*s) {
		if (*s == '\n')
			arch_putc('\r');
		arch_putc(*s++);
	}
}

void con_dec(uint64_t v)
{
	char b[21];
	int i = 20;

	b[i] = 0;
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	con_puts(b + i);
}

void con_sdec(int64_t v)
{
	if (v < 0) {
		arch_putc('-');
		con_dec((uint64_t)0 - (uint64_t)v);
	} else {
		con_dec((uint64_t)v);
	}
}

void con_hex(uint64_t v)
{
	static const char digits[] = "0123456789abcdef";

	con_puts("0x");
	for (int i = 60; i >= 0; i -= 4)
		if (v >> i || i == 0)
			arch_putc(digits[(v >> i) & 15]);
}

void con_kv(const char *key, uint64_t v, int first)
{
	con_puts(first ? "\"" : ",\"");
	con_puts(key);
	con_puts("\":");
	con_dec(v);
}

void con_kvs(const char *key, const char *v, int first)
{
	con_puts(first ? "\"" : ",\"");
	con_puts(key);
	con_puts("\":\"");
	con_puts(v);
	con_puts("\"");
}
