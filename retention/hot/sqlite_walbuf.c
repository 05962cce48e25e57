/*
 * retention/hot/sqlite_walbuf.c - a VFS shim over SQLite's default VFS that
 * gathers a transaction's WAL frames into few writes.
 *
 * SQLite appends a frame to the WAL in two pwrite(2) calls (its 24-byte
 * header, then the page), so a commit of 250 pages was 500 system calls on
 * the writer's thread, the one that bounds ingest: 13% of its time was in
 * pwrite, most of it the fixed cost of a call (entry, the inode's lock and
 * times, ext4's set-up), not the copy. Here the writes to a WAL file that
 * follow each other are gathered in a buffer (WALBUF_BYTES) and written
 * together:
 *
 *  - when the buffer is full, or a write does not continue it;
 *  - after the page of a commit frame (its header's "database size" field is
 *    non-zero: wal.c, walEncodeFrame): so the commit's bytes are in the file
 *    before the call that wrote them returns, that is before SQLite makes
 *    the frames visible to readers (the WAL index header, updated after the
 *    frames are written) and before the commit returns to the writer, whose
 *    acks say "durable" (synchronous=NORMAL: in the kernel, surviving a crash
 *    of the process). A failed write is the error of that call: SQLite rolls
 *    the transaction back;
 *  - before any other operation on the file (read, sync, truncate, size,
 *    lock, close, file control), so SQLite never sees the file without what
 *    it wrote;
 *  - when the thread that wrote them takes or releases a lock of the shared
 *    memory (WAL index): a transaction that spilled frames and rolled back
 *    releases the write lock there, and another connection may write the
 *    same offsets next: what this one buffered must reach the file first.
 *
 * Everything else (the database file, journals, shared memory, other
 * processes' connections, which need not use this VFS) goes to the default
 * VFS unchanged.
 */
#include "retention/hot/sqlite_int.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* at most 0x1ffff bytes: the unix VFS writes no more at once (os_unix.c: seekAndWriteFd). 64 KiB
   (15 frames of 4 KiB pages) takes a commit of 250 pages from 500 calls to 17; 120 KiB to 9, for
   56 KiB more of the agent's resident memory, whose bound under load (32 MiB) is tight */
#define WALBUF_BYTES (64 * 1024)
#define WAL_FRAME_HDR 24

struct wb_file {
    sqlite3_file base; /* our methods */
    sqlite3_file *real;
    bool wal;
    unsigned char *buf; /* WAL only */
    size_t n;
    sqlite3_int64 off;   /* the file offset of buf[0] */
    bool commit_pending; /* the last write was a commit frame's header: its page comes next */
};

static sqlite3_vfs wb_vfs;
static sqlite3_vfs *wb_real;
/* the WAL file this thread has bytes buffered for (a connection is used by one thread at a time,
   and its write transaction ends in the thread that wrote, with the write lock's release) */
static __thread struct wb_file *wb_pending;

static int
wb_flush(struct wb_file *f)
{
    if (wb_pending == f)
        wb_pending = NULL;
    if (f->n == 0)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->n, f->off);
    f->n = 0;
    return rc;
}

static int
wb_flush_pending(void)
{
    return wb_pending != NULL ? wb_flush(wb_pending) : SQLITE_OK;
}

static int
wb_close(sqlite3_file *pf)
{
    struct wb_file *f = (struct wb_file *)pf;
    int rc = wb_flush(f);
    int rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int
wb_read(sqlite3_file *pf, void *p, int n, sqlite3_int64 off)
{
    struct wb_file *f = (struct wb_file *)pf;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, p, n, off);
}

static int
wb_write(sqlite3_file *pf, const void *p, int n, sqlite3_int64 off)
{
    struct wb_file *f = (struct wb_file *)pf;
    if (!f->wal)
        return f->real->pMethods->xWrite(f->real, p, n, off);
    int rc = SQLITE_OK;
    if (n <= 0 || (size_t)n > WALBUF_BYTES) /* not for the buffer: after what it holds */
        return (rc = wb_flush(f)) != SQLITE_OK ? rc : f->real->pMethods->xWrite(f->real, p, n, off);
    if (f->n > 0 && (off != f->off + (sqlite3_int64)f->n || f->n + (size_t)n > WALBUF_BYTES))
        rc = wb_flush(f);
    if (rc != SQLITE_OK)
        return rc;
    if (f->n == 0)
        f->off = off;
    if (wb_pending != f && (rc = wb_flush_pending()) != SQLITE_OK) /* another file's bytes */
        return rc;
    wb_pending = f;
    memcpy(f->buf + f->n, p, (size_t)n);
    f->n += (size_t)n;
    bool commit_page = f->commit_pending;
    /* a frame header: big-endian page number, then the database size, non-zero on a commit */
    const unsigned char *h = p;
    f->commit_pending = n == WAL_FRAME_HDR && (h[4] | h[5] | h[6] | h[7]) != 0;
    return commit_page ? wb_flush(f) : SQLITE_OK;
}

static int
wb_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
    struct wb_file *f = (struct wb_file *)pf;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int
wb_sync(sqlite3_file *pf, int flags)
{
    struct wb_file *f = (struct wb_file *)pf;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int
wb_size(sqlite3_file *pf, sqlite3_int64 *size)
{
    struct wb_file *f = (struct wb_file *)pf;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int
wb_lock(sqlite3_file *pf, int lock)
{
    struct wb_file *f = (struct wb_file *)pf;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xLock(f->real, lock);
}

static int
wb_unlock(sqlite3_file *pf, int lock)
{
    struct wb_file *f = (struct wb_file *)pf;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xUnlock(f->real, lock);
}

static int
wb_check_lock(sqlite3_file *pf, int *out)
{
    struct wb_file *f = (struct wb_file *)pf;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int
wb_fcntl(sqlite3_file *pf, int op, void *arg)
{
    struct wb_file *f = (struct wb_file *)pf;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int
wb_sector(sqlite3_file *pf)
{
    struct wb_file *f = (struct wb_file *)pf;
    return f->real->pMethods->xSectorSize(f->real);
}

static int
wb_devchar(sqlite3_file *pf)
{
    struct wb_file *f = (struct wb_file *)pf;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int
wb_shm_map(sqlite3_file *pf, int pg, int pgsz, int extend, void volatile **pp)
{
    struct wb_file *f = (struct wb_file *)pf;
    return f->real->pMethods->xShmMap(f->real, pg, pgsz, extend, pp);
}

static int
wb_shm_lock(sqlite3_file *pf, int offset, int n, int flags)
{
    struct wb_file *f = (struct wb_file *)pf;
    int rc = wb_flush_pending();
    return rc != SQLITE_OK && (flags & SQLITE_SHM_LOCK)
               ? rc
               : f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void
wb_shm_barrier(sqlite3_file *pf)
{
    struct wb_file *f = (struct wb_file *)pf;
    (void)wb_flush_pending(); /* a commit's frames were written at its last page already */
    f->real->pMethods->xShmBarrier(f->real);
}

static int
wb_shm_unmap(sqlite3_file *pf, int del)
{
    struct wb_file *f = (struct wb_file *)pf;
    return f->real->pMethods->xShmUnmap(f->real, del);
}

static int
wb_fetch(sqlite3_file *pf, sqlite3_int64 off, int n, void **pp)
{
    struct wb_file *f = (struct wb_file *)pf;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, off, n, pp);
}

static int
wb_unfetch(sqlite3_file *pf, sqlite3_int64 off, void *p)
{
    struct wb_file *f = (struct wb_file *)pf;
    return f->real->pMethods->xUnfetch(f->real, off, p);
}

static const sqlite3_io_methods wb_methods = {
    .iVersion = 3,
    .xClose = wb_close,
    .xRead = wb_read,
    .xWrite = wb_write,
    .xTruncate = wb_truncate,
    .xSync = wb_sync,
    .xFileSize = wb_size,
    .xLock = wb_lock,
    .xUnlock = wb_unlock,
    .xCheckReservedLock = wb_check_lock,
    .xFileControl = wb_fcntl,
    .xSectorSize = wb_sector,
    .xDeviceCharacteristics = wb_devchar,
    .xShmMap = wb_shm_map,
    .xShmLock = wb_shm_lock,
    .xShmBarrier = wb_shm_barrier,
    .xShmUnmap = wb_shm_unmap,
    .xFetch = wb_fetch,
    .xUnfetch = wb_unfetch,
};

static int
wb_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *pf, int flags, int *out_flags)
{
    (void)vfs;
    struct wb_file *f = (struct wb_file *)pf;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = wb_real->xOpen(wb_real, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (f->real->pMethods != NULL)
            f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL; /* a failed open is not closed again */
        return rc;
    }
    if ((flags & SQLITE_OPEN_WAL) != 0 && f->real->pMethods->iVersion >= 3)
        f->buf = malloc(WALBUF_BYTES);
    f->wal = f->buf != NULL; /* without it, the writes go through one by one */
    f->base.pMethods = &wb_methods;
    return SQLITE_OK;
}

static pthread_once_t wb_once = PTHREAD_ONCE_INIT;
static int wb_rc = SQLITE_ERROR;

static void
wb_register(void)
{
    wb_real = sqlite3_vfs_find(NULL);
    if (wb_real == NULL || wb_real->iVersion < 2)
        return;
    /* the default VFS itself but for opening files: its other methods (delete, access, full
       path, randomness, time, ...) take what they need from the sqlite3_vfs they are given
       (mxPathname, pAppData: copied), so they are not wrapped one by one */
    wb_vfs = *wb_real;
    wb_vfs.pNext = NULL;
    wb_vfs.szOsFile = (int)sizeof(struct wb_file) + wb_real->szOsFile;
    wb_vfs.zName = SQ_WALBUF_VFS;
    wb_vfs.xOpen = wb_open;
    wb_rc = sqlite3_vfs_register(&wb_vfs, 0);
}

const char *
sq_walbuf_vfs(void)
{
    pthread_once(&wb_once, wb_register);
    return wb_rc == SQLITE_OK ? SQ_WALBUF_VFS : NULL; /* NULL: the default VFS */
}
