/*
 * core/linereader.c - see linereader.h.
 *
 * Invariant: buf[start, end) holds unread bytes; buf[start, scan) is known to
 * hold no '\n', so each byte is searched once.
 */
#include "core/linereader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"

#define LR_CHUNK (64 * 1024)

struct fr_linereader {
    int fd;
    size_t max_line;
    char *buf;
    size_t cap, start, scan, end;
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
    lr->cap = max_line + 1 + LR_CHUNK;
    lr->buf = fr_malloc(lr->cap);
    return lr;
}

void
fr_linereader_free(struct fr_linereader *lr)
{
    if (lr == NULL)
        return;
    free(lr->buf);
    free(lr);
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

/* Reads more bytes after end, compacting first. Returns bytes read, 0 at EOF, <0 on error. */
static ssize_t
lr_fill(struct fr_linereader *lr)
{
    if (lr->start > 0) {
        memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
        lr->end -= lr->start;
        lr->scan -= lr->start;
        lr->start = 0;
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
        return n;
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
        if (lr_fill(lr) < 0)
            return FR_E_IO;
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
        if (lr_fill(lr) < 0)
            return FR_E_IO;
    }
}
