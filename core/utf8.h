/*
 * core/utf8.h - UTF-8 for text flightrec cuts or echoes: cutting never
 * splits a character, and text a producer sent can be made valid before it
 * goes into JSON.
 */
#ifndef FR_CORE_UTF8_H
#define FR_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* n backed off to the start of a UTF-8 sequence of s (s holds at least n bytes). */
size_t fr_utf8_cut(const char *s, size_t n);

/*
 * Length of the valid UTF-8 sequence at s (n > 0 bytes there), 0 when the
 * bytes are not one: overlong, a surrogate, past U+10FFFF, or cut short.
 */
size_t fr_utf8_seq(const char *s, size_t n);

/* Whether s[0, n) is valid UTF-8 throughout (NUL bytes included), as jansson checks it. */
bool fr_utf8_valid(const char *s, size_t n);

/* A copy of s (caller frees) with each byte that is not part of valid UTF-8 as U+FFFD. */
char *fr_utf8_sanitize(const char *s);

/* The same for s[0, n), NUL bytes kept (*outlen the copy's length); at (when not NULL): *at
   gets the offset in the copy of each U+FFFD written, in order (caller frees), *nat how many. */
char *fr_utf8_sanitize_n(const char *s, size_t n, size_t *outlen, size_t **at, size_t *nat);

/*
 * s[0, n) with every control character a terminal or a log reader would
 * act on written visibly: C0 controls (ESC, CR, BEL, backspace; newline
 * too unless keep_newlines; tab is kept) and DEL as \xNN, the C1 controls
 * U+0080..U+009F as \uNNNN. Writes at most cap bytes with the NUL (a
 * longer text is cut); returns the length written.
 */
size_t fr_escape_controls(const char *s, size_t n, bool keep_newlines, char *out, size_t cap);

#endif
