/*
 * core/crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the
 * checksum of the snappy framing format's chunks. None of flightrec's
 * libraries exports it (zlib's crc32 is the IEEE polynomial; libsnappy keeps
 * its own internal).
 */
#ifndef FR_CORE_CRC32C_H
#define FR_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC-32C of p[0, n), continuing crc (0 to start). */
uint32_t fr_crc32c(uint32_t crc, const void *p, size_t n);

/* The CRC-32C of p[0, n) masked as the snappy framing format stores it in a chunk (rotated
   right by 15 bits, plus 0xa282ead8). */
uint32_t fr_crc32c_masked(const void *p, size_t n);

#endif
