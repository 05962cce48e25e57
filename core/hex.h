/*
 * core/hex.h - lower-case hexadecimal, the one encoding of keys, hashes,
 * ids and cursors in flightrec.
 */
#ifndef FR_CORE_HEX_H
#define FR_CORE_HEX_H

#include <stddef.h>

/* Writes 2n hex digits of b[0, n) and a NUL into out (2n + 1 bytes). */
void fr_hex_encode(const unsigned char *b, size_t n, char *out);

/* The value of one hex digit (either case), -1 when c is not one. */
int fr_hex_digit(char c);

#endif
