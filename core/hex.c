/*
 * core/hex.c - see hex.h.
 */
#include "core/hex.h"

void
fr_hex_encode(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t
fr_dec_encode(int64_t v, char out[21])
{
    char tmp[20], *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    size_t n = 0;
    if (v < 0)
        out[n++] = '-';
    size_t digits = (size_t)(tmp + sizeof tmp - p);
    for (size_t i = 0; i < digits; i++)
        out[n++] = p[i];
    out[n] = '\0';
    return n;
}

int
fr_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
