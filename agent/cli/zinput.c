/*
 * agent/cli/zinput.c - see zinput.h.
 *
 * The decompressing thread owns the pipe's write end and closes it when the
 * stream ends (the reader then sees end of input) or fails; a reader that
 * closes the read end early makes its next write fail (EPIPE: SIGPIPE is
 * blocked on that thread), or its wait for input that stalls end (poll sees
 * the write end's error), which ends it too. Concatenated streams (gzip
 * members, zstd frames, as `cat a.gz b.gz` makes) are read one after another.
 */
#include "agent/cli/zinput.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "agent/body.h"
#include "core/fsutil.h"
#include "core/mem.h"

#define ZI_CHUNK 65536
#define ZI_GONE (-2) /* zi_get: the reader closed its end */

struct fr_zinput {
    int fd, rd, wr; /* the input; the pipe's ends */
    bool zstd;
    char pre[4];
    size_t npre;
    pthread_t thread;
    int rc; /* the thread's: FR_OK, FR_E_SYNTAX or FR_E_IO */
    char msg[200];
    unsigned long long in_bytes; /* compressed bytes read */
};

/* The next compressed bytes into buf: the ones read to detect the format first. */
static ssize_t
zi_get(struct fr_zinput *z, char *buf, size_t cap)
{
    if (z->npre > 0) {
        size_t n = z->npre;
        memcpy(buf, z->pre, n);
        z->npre = 0;
        z->in_bytes += n;
        return (ssize_t)n;
    }
    for (;;) {
        /* input that stalls (a pipe) is waited for only while someone reads the output */
        struct pollfd p[2] = {{.fd = z->fd, .events = POLLIN}, {.fd = z->wr, .events = 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return -1;
        if (p[1].revents & (POLLERR | POLLHUP))
            return ZI_GONE;
        if (p[0].revents == 0)
            continue;
        ssize_t k = read(z->fd, buf, cap);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k > 0)
            z->in_bytes += (unsigned long long)k;
        return k;
    }
}

static void
zi_fail(struct fr_zinput *z, int rc, const char *what)
{
    z->rc = rc;
    snprintf(z->msg, sizeof z->msg, "%s data %s after %llu compressed bytes",
             z->zstd ? "zstd" : "gzip", what, z->in_bytes);
}

/* The next compressed bytes into in, when the decoder has used what it had: their count,
   or 0 when the input ended (cut short unless ended: the stream ended there), failed, or
   the reader has gone. */
static size_t
zi_refill(struct fr_zinput *z, char *in, bool ended)
{
    ssize_t k = zi_get(z, in, ZI_CHUNK);
    if (k < 0 && k != ZI_GONE)
        zi_fail(z, FR_E_IO, strerror(errno));
    else if (k == 0 && !ended)
        zi_fail(z, FR_E_SYNTAX, "cut short");
    return k > 0 ? (size_t)k : 0;
}

static void
zi_gzip(struct fr_zinput *z, char *in, char *out)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, 15 + 32) != Z_OK) {
        zi_fail(z, FR_E_IO, "could not be read (no memory)");
        return;
    }
    int zr = Z_OK;
    bool full = false; /* the last call filled out: it may hold more without more input */
    for (;;) {
        if (s.avail_in == 0 && !full) {
            size_t k = zi_refill(z, in, zr == Z_STREAM_END);
            if (k == 0)
                break;
            s.next_in = (Bytef *)in;
            s.avail_in = (uInt)k;
        }
        if (zr == Z_STREAM_END && s.avail_in > 0) /* another member follows */
            inflateReset(&s);
        s.next_out = (Bytef *)out;
        s.avail_out = ZI_CHUNK;
        zr = inflate(&s, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            zi_fail(z, FR_E_SYNTAX, "corrupt");
            break;
        }
        full = s.avail_out == 0;
        if (!fr_fd_write_all(z->wr, out, ZI_CHUNK - s.avail_out))
            break;
    }
    inflateEnd(&s);
}

static void
zi_zstd(struct fr_zinput *z, char *in, char *out)
{
    ZSTD_DStream *d = ZSTD_createDStream();
    if (d == NULL) {
        zi_fail(z, FR_E_IO, "could not be read (no memory)");
        return;
    }
    ZSTD_inBuffer ib = {in, 0, 0};
    size_t left = 0;   /* ZSTD_decompressStream's hint: 0 once a frame is complete */
    bool full = false; /* the last call filled out: it may hold more without more input */
    for (;;) {
        if (ib.pos == ib.size && !full) {
            size_t k = zi_refill(z, in, left == 0);
            if (k == 0)
                break;
            ib.size = k;
            ib.pos = 0;
        }
        ZSTD_outBuffer ob = {out, ZI_CHUNK, 0};
        left = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(left)) {
            zi_fail(z, FR_E_SYNTAX, "corrupt");
            break;
        }
        full = ob.pos == ob.size;
        if (!fr_fd_write_all(z->wr, out, ob.pos))
            break;
    }
    ZSTD_freeDStream(d);
}

static void *
zi_main(void *ud)
{
    struct fr_zinput *z = ud;
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL); /* a reader gone: EPIPE, not the process killed */
    char *in = fr_malloc(ZI_CHUNK), *out = fr_malloc(ZI_CHUNK);
    if (z->zstd)
        zi_zstd(z, in, out);
    else
        zi_gzip(z, in, out);
    free(in);
    free(out);
    close(z->wr);
    return NULL;
}

int
fr_zinput_open(int fd, struct fr_zinput **z, int *in, char pre[4], size_t *npre, struct fr_err *err)
{
    *z = NULL;
    *in = fd;
    *npre = 0;
    while (*npre < 4) { /* a pipe may give them one at a time */
        ssize_t k = read(fd, pre + *npre, 4 - *npre);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return fr_err_set(err, FR_E_IO, "reading: %s", strerror(errno));
        if (k == 0)
            break;
        *npre += (size_t)k;
    }
    unsigned char b0 = *npre >= 2 ? (unsigned char)pre[0] : 0,
                  b1 = *npre >= 2 ? (unsigned char)pre[1] : 0;
    if ((b0 == 0xff && b1 == 0xfe) || (b0 == 0xfe && b1 == 0xff)) /* every line invalid */
        return fr_err_set(err, FR_E_UTF8,
                          "UTF-16 text (its byte order mark; what Windows PowerShell's > "
                          "writes); events are UTF-8: convert it with iconv -f UTF-16 -t UTF-8 "
                          "FILE");
    const char *sniffed = fr_body_sniff(pre, *npre);
    if (sniffed == NULL)
        return FR_OK;
    bool is_zs = strcmp(sniffed, "zstd") == 0;
    struct fr_zinput *zi = fr_calloc(1, sizeof *zi);
    int p[2];
    if (pipe(p) != 0) {
        free(zi);
        return fr_err_set(err, FR_E_IO, "decompressing: no pipe: %s", strerror(errno));
    }
    zi->fd = fd;
    zi->rd = p[0];
    zi->wr = p[1];
    zi->zstd = is_zs;
    memcpy(zi->pre, pre, *npre);
    zi->npre = *npre;
    int rc = pthread_create(&zi->thread, NULL, zi_main, zi);
    if (rc != 0) {
        close(p[0]);
        close(p[1]);
        free(zi);
        return fr_err_set(err, FR_E_IO, "decompressing: no thread: %s", strerror(rc));
    }
    *npre = 0;
    *z = zi;
    *in = zi->rd;
    return FR_OK;
}

int
fr_zinput_close(struct fr_zinput *z, struct fr_err *err)
{
    if (z == NULL)
        return FR_OK;
    close(z->rd);
    pthread_join(z->thread, NULL);
    int rc = z->rc;
    if (rc != FR_OK)
        fr_err_set(err, rc, "%s", z->msg);
    free(z);
    return rc;
}
