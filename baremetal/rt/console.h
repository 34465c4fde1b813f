/* Serial console output without a C library: strings, decimal, hex. */
#ifndef RTVIO_BAREMETAL_CONSOLE_H
#define RTVIO_BAREMETAL_CONSOLE_H

#include <stdint.h>

void con_puts(const char *s);
void con_dec(uint64_t v);
void con_sdec(int64_t v);
void con_hex(uint64_t v);
/* A JSON key and number: "key":v with a leading comma unless first. */
void con_kv(const char *key, uint64_t v, int first);
void con_kvs(const char *key, const char *v, int first);

#endif
