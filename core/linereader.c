/*
 * core/linereader.c - see linereader.h.
 *
 * Invariant: buf[start, end) holds unread bytes; buf[start, scan) is known to
 * hold no '\n', so each byte is searched once.
 */
#include "core/linereader.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"

#define LR_CHUNK (64 * 1024)

struct fr_linereader {
    int fd;
    size_t max_line;
    int idle_ms; /* a partial line may wait this long for more bytes (<= 0: forever) */
    char *buf;
    size_t cap, start, scan, end;
    size_t full_cap; /* what the longest line needs: max_line + 1 + LR_CHUNK */
    bool eof;
    uint64_t lineno;
    uint64_t bytes;
};

struct fr_linereader *
fr_linereader_new(int fd, size_t max_line)
{
    struct fr_linereader *lr = fr_calloc(1, sizeof *lr);
    lr->fd = fd;
    lr->max_line = max_line;
    lr->full_cap = max_line + 1 + LR_CHUNK;
    /* grown only when a line needs it, and shrunk back after: an idle connection holds
       one chunk, not the longest line it could ever send */
    lr->cap = lr->full_cap < 2 * LR_CHUNK ? lr->full_cap : 2 * LR_CHUNK;
    lr->buf = fr_malloc(lr->cap);
    return lr;
}

void
fr_linereader_set_idle_timeout(struct fr_linereader *lr, int ms)
{
    lr->idle_ms = ms;
}

void
fr_linereader_preload(struct fr_linereader *lr, const char *data, size_t n)
{
    if (n > 64 || lr->end + n > lr->cap)
        return; /* not what it is for */
    memcpy(lr->buf + lr->end, data, n);
    lr->end += n;
    lr->bytes += n;
}

void
fr_linereader_free(struct fr_linereader *lr)
{
    if (lr == NULL)
        return;
    free(lr->buf);
    free(lr);
}

const char *
fr_linereader_rest(const struct fr_linereader *lr, const char *from, size_t *n)
{
    *n = (size_t)(lr->buf + lr->end - from);
    return from;
}

bool
fr_linereader_buffered(const struct fr_linereader *lr)
{
    return memchr(lr->buf + lr->scan, '\n', lr->end - lr->scan) != NULL ||
           (lr->eof && lr->end > lr->start);
}

uint64_t
fr_linereader_bytes(const struct fr_linereader *lr)
{
    return lr->bytes;
}

/*
 * Reads more bytes after end, compacting first and growing the buffer when
 * the pending line fills it. Returns bytes read, 0 at EOF, FR_E_IO on a
 * read error, FR_E_TIMEOUT when a partial line got no byte for idle_ms.
 */
static ssize_t
lr_fill(struct fr_linereader *lr)
{
    if (lr->start > 0) {
        memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
        lr->end -= lr->start;
        lr->scan -= lr->start;
        lr->start = 0;
    }
    if (lr->end == 0 && lr->cap > 2 * LR_CHUNK) { /* a long line is done: give it back */
        lr->cap = 2 * LR_CHUNK;
        lr->buf = fr_realloc(lr->buf, lr->cap);
    } else if (lr->cap - lr->end < LR_CHUNK && lr->cap < lr->full_cap) {
        lr->cap = lr->cap * 2 < lr->full_cap ? lr->cap * 2 : lr->full_cap;
        lr->buf = fr_realloc(lr->buf, lr->cap);
    }
    if (lr->idle_ms > 0 && lr->end > 0) {
        struct pollfd pf = {.fd = lr->fd, .events = POLLIN};
        int r;
        while ((r = poll(&pf, 1, lr->idle_ms)) < 0 && errno == EINTR)
            ;
        if (r == 0)
            return FR_E_TIMEOUT;
    }
    for (;;) {
        ssize_t n = read(lr->fd, lr->buf + lr->end, lr->cap - lr->end);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0) {
            lr->end += (size_t)n;
            lr->bytes += (uint64_t)n;
        }
        if (n == 0)
            lr->eof = true;
        return n < 0 ? FR_E_IO : n;
    }
}

/* Discards the rest of an over-long line up to and including its '\n'. */
static int
lr_skip_line(struct fr_linereader *lr, size_t *total)
{
    for (;;) {
        char *nl = memchr(lr->buf + lr->start, '\n', lr->end - lr->start);
        if (nl != NULL) {
            *total += (size_t)(nl - (lr->buf + lr->start));
            lr->start = lr->scan = (size_t)(nl - lr->buf) + 1;
            return FR_OK;
        }
        *total += lr->end - lr->start;
        lr->start = lr->scan = lr->end = 0;
        if (lr->eof)
            return FR_OK;
        ssize_t r = lr_fill(lr);
        if (r < 0)
            return (int)r;
    }
}

int
fr_linereader_next(struct fr_linereader *lr, const char **line, size_t *len, bool *too_long,
                   uint64_t *lineno)
{
    *too_long = false;
    for (;;) {
        char *nl = memchr(lr->buf + lr->scan, '\n', lr->end - lr->scan);
        if (nl != NULL) {
            size_t n = (size_t)(nl - (lr->buf + lr->start));
            *line = lr->buf + lr->start;
            lr->start = lr->scan = (size_t)(nl - lr->buf) + 1;
            if (n > lr->max_line) {
                /* possible when the buffer held the line whole; still reject it */
                *line = NULL;
                *too_long = true;
            } else if (n > 0 && (*line)[n - 1] == '\r') {
                n--;
            }
            *len = n;
            *lineno = ++lr->lineno;
            return 1;
        }
        lr->scan = lr->end;
        size_t pending = lr->end - lr->start;
        if (pending > lr->max_line) {
            size_t total = 0;
            int rc = lr_skip_line(lr, &total);
            if (rc != FR_OK)
                return rc;
            *line = NULL;
            *len = total;
            *too_long = true;
            *lineno = ++lr->lineno;
            return 1;
        }
        if (lr->eof) {
            if (pending == 0)
                return 0;
            *line = lr->buf + lr->start;
            *len = pending;
            if ((*line)[pending - 1] == '\r')
                (*len)--;
            lr->start = lr->scan = lr->end;
            *lineno = ++lr->lineno;
            return 1;
        }
        ssize_t r = lr_fill(lr);
        if (r < 0)
            return (int)r;
    }
}
