/*
 * core/utf8.c - see utf8.h.
 */
#include "core/utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"

size_t
fr_utf8_cut(const char *s, size_t n)
{
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

size_t
fr_utf8_seq(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char b = s[0];
    size_t len;
    unsigned min;
    unsigned cp;
    if (b < 0x80)
        return 1;
    if ((b & 0xe0) == 0xc0) {
        len = 2, cp = b & 0x1f, min = 0x80;
    } else if ((b & 0xf0) == 0xe0) {
        len = 3, cp = b & 0x0f, min = 0x800;
    } else if ((b & 0xf8) == 0xf0) {
        len = 4, cp = b & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool
fr_utf8_valid(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) { /* eight ASCII bytes at a time: most text */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080u) == 0) {
                i += 8;
                continue;
            }
        }
        size_t k = fr_utf8_seq(s + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

char *
fr_utf8_sanitize_n(const char *s, size_t n, size_t *outlen, size_t **at, size_t *nat)
{
    size_t bad = 0; /* counted first: the copy is allocated as it will be (a body of MBs) */
    for (size_t i = 0; i < n;) {
        size_t k = fr_utf8_seq(s + i, n - i);
        bad += k == 0;
        i += k == 0 ? 1 : k;
    }
    char *clean = fr_malloc(n + 2 * bad + 1);
    size_t o = 0;
    if (at != NULL) {
        *at = NULL;
        *nat = 0;
    }
    for (size_t i = 0; i < n;) {
        size_t k = fr_utf8_seq(s + i, n - i);
        if (k == 0) {
            if (at != NULL) {
                if (*at == NULL)
                    *at = fr_malloc((bad ? bad : 1) * sizeof **at);
                (*at)[(*nat)++] = o;
            }
            memcpy(clean + o, "\xef\xbf\xbd", 3); /* U+FFFD for a byte that is not UTF-8 */
            o += 3;
            i++;
            continue;
        }
        memcpy(clean + o, s + i, k);
        o += k;
        i += k;
    }
    clean[o] = '\0';
    if (outlen != NULL)
        *outlen = o;
    return clean;
}

char *
fr_utf8_sanitize(const char *s)
{
    return fr_utf8_sanitize_n(s, strlen(s), NULL, NULL, NULL);
}

size_t
fr_escape_controls(const char *s, size_t n, bool keep_newlines, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(keep_newlines && c == '\n') && c != '\t') || c == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                   (unsigned char)s[i + 1] <= 0x9f) {
            /* U+0080..U+009F: C1 controls (0x9b is a CSI on some terminals) */
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", (unsigned char)s[++i]);
        } else {
            out[o++] = (char)c;
        }
    }
    if (cap > 0)
        out[o < cap ? o : cap - 1] = '\0';
    return o;
}
