/*
 * core/linereader.h - bounded NDJSON line reader over a file descriptor.
 *
 * Memory is bounded by the configured maximum line length: a line longer than
 * that is skipped (its bytes are read and discarded, never buffered) and
 * reported as too long, and the lines after it are read normally. A trailing
 * "\r" is removed (CRLF input). The last line needs no final newline.
 */
#ifndef FR_CORE_LINEREADER_H
#define FR_CORE_LINEREADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fr_linereader;

/*
 * Reads from fd (borrowed; not closed by free). max_line is in bytes. The
 * buffer starts at 128 KiB, grows only while a line needs it (up to
 * max_line) and shrinks back once that line is read.
 */
struct fr_linereader *fr_linereader_new(int fd, size_t max_line);

/*
 * A partial line (bytes without their newline) that gets no further byte
 * for ms milliseconds ends the reading with FR_E_TIMEOUT: a stalled
 * producer cannot hold its buffer forever. ms <= 0 (the default) waits
 * forever. Waiting between whole lines is never timed out.
 */
void fr_linereader_set_idle_timeout(struct fr_linereader *lr, int ms);

/* Bytes read from fd already (at most 64, e.g. to sniff its format), to be read first; only
   before the first fr_linereader_next. */
void fr_linereader_preload(struct fr_linereader *lr, const char *data, size_t n);
void fr_linereader_free(struct fr_linereader *lr);

/*
 * Reads the next line. Returns 1 with *line and *len set (the line is borrowed
 * until the next call and is NOT NUL-terminated), 0 at end of input, or a
 * negative enum fr_rc: FR_E_IO on a read error, FR_E_TIMEOUT (see above). When the line exceeded
 * max_line, *too_long is true, *line is NULL and *len is the line's full length. *lineno is the
 * 1-based number of the line returned.
 */
int fr_linereader_next(struct fr_linereader *lr, const char **line, size_t *len, bool *too_long,
                       uint64_t *lineno);

/* True when the next call can return a line without reading (one is buffered). */
bool fr_linereader_buffered(const struct fr_linereader *lr);

/*
 * The bytes read but not yet returned as lines, from `from` (a pointer into
 * the line the last fr_linereader_next returned) to the end of what was
 * read: *n bytes, borrowed until the next call. For a reader that takes the
 * rest of the input otherwise than by lines.
 */
const char *fr_linereader_rest(const struct fr_linereader *lr, const char *from, size_t *n);

/* Total bytes consumed so far (for progress output). */
uint64_t fr_linereader_bytes(const struct fr_linereader *lr);

#endif
