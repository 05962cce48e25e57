/*
 * core/hex.h - lower-case hexadecimal, the one encoding of keys, hashes,
 * ids and cursors in flightrec; and decimal digits written without printf,
 * for text built per event (JSON integers, attribute names).
 */
#ifndef FR_CORE_HEX_H
#define FR_CORE_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2n hex digits of b[0, n) and a NUL into out (2n + 1 bytes). */
void fr_hex_encode(const unsigned char *b, size_t n, char *out);

/* Writes v in decimal (a '-' first when negative) and a NUL into out; returns the length. */
size_t fr_dec_encode(int64_t v, char out[21]);

/* The value of one hex digit (either case), -1 when c is not one. */
int fr_hex_digit(char c);

#endif
