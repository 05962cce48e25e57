/*
 * retention/hot/sqlite_util.c - the small helpers every file of the SQLite
 * store shares (error mapping, statements with no rows, statements prepared
 * once, the synchronous setting's name), kept apart so that
 * the write path, rollups and reads depend on them and not on each other.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core/fsutil.h"
#include "retention/hot/sqlite_int.h"

/*
 * A write with no room said for the people who must act on it at once:
 * which file, how much room its disk has left, and what to do. SQLite's own
 * words ("database or disk is full", or "disk I/O error" when the file may
 * not grow: EFBIG) name neither. sys is the system's errno of the failed
 * write (0: unknown).
 */
static int
sq_no_room(sqlite3 *db, int sys, struct fr_err *err, const char *what)
{
    const char *path = db != NULL ? sqlite3_db_filename(db, "main") : NULL;
    uint64_t avail, total;
    if (path == NULL || *path == '\0' || !fr_fs_space(path, &avail, &total))
        return fr_err_set(err, FR_E_STORE,
                          "%s: no room to write the hot store (%s); nothing of this write was "
                          "stored (docs/storage.md, When the disk fills)",
                          what, sys ? strerror(sys) : "database or disk is full");
    char a[32], t[32];
    fr_fmt_bytes(a, sizeof a, avail);
    fr_fmt_bytes(t, sizeof t, total);
    if (sys == EFBIG || sys == EDQUOT || (sys != ENOSPC && avail >= ((uint64_t)64 << 20))) {
        /* room on the disk, yet the file may not grow: a limit of the process or the user */
        static const char limit[] = "a file size limit (ulimit -f, systemd's LimitFSIZE=)";
        return fr_err_set(err, FR_E_STORE,
                          "%s: the hot store %.200s may not grow (%s) though its disk has %s "
                          "free: %s%s; nothing of this write was stored",
                          what, path, sys ? strerror(sys) : "database or disk is full", a,
                          sys == EDQUOT ? "a disk quota is used up" : limit,
                          sys == EDQUOT || sys == EFBIG ? "" : " or a disk quota");
    }
    return fr_err_set(err, FR_E_STORE,
                      "%s: the disk holding the hot store %.200s is full (%s free of %s); nothing "
                      "of this write was stored: free space there, or bound the hot store "
                      "(hot.max_bytes in the retention policy; docs/storage.md, When the disk "
                      "fills)",
                      what, path, a, t);
}

/*
 * Whether the database of db or its WAL has reached the process's file size
 * limit. SQLite keeps the errno of a failed write only until its next system
 * call: a commit whose WAL write went past the limit (EFBIG) is told as "disk
 * I/O error" with no errno, the limit unnamed.
 */
static bool
sq_at_size_limit(sqlite3 *db)
{
    struct rlimit rl;
    const char *path = db != NULL ? sqlite3_db_filename(db, "main") : NULL;
    if (path == NULL || *path == '\0' || getrlimit(RLIMIT_FSIZE, &rl) != 0 ||
        rl.rlim_cur == RLIM_INFINITY)
        return false;
    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", path);
    const char *files[] = {path, wal};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        struct stat st;
        /* within a page of the limit: the write that failed did not fit */
        if (stat(files[i], &st) == 0 && (uint64_t)st.st_size + 65536 >= (uint64_t)rl.rlim_cur)
            return true;
    }
    return false;
}

int
sq_fail(sqlite3 *db, int rc, struct fr_err *err, const char *what)
{
    int primary = rc & 0xff, sys = db != NULL ? sqlite3_system_errno(db) : 0;
    if (primary == SQLITE_IOERR && sys == 0 && sq_at_size_limit(db))
        sys = EFBIG;
    if (primary == SQLITE_FULL ||
        (primary == SQLITE_IOERR && (sys == ENOSPC || sys == EDQUOT || sys == EFBIG)))
        return sq_no_room(db, sys, err, what);
    int code = (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) ? FR_E_BUSY : FR_E_STORE;
    if (primary == SQLITE_IOERR && sys != 0) /* which error of the system's: EIO, EROFS, ... */
        return fr_err_set(err, code, "%s: %s (%s)", what, sqlite3_errmsg(db), strerror(sys));
    return fr_err_set(err, code, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

int
sq_exec(sqlite3 *db, const char *sql, struct fr_err *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(db, rc, err, sql);
    return FR_OK;
}

int
sq_cached(sqlite3 *db, sqlite3_stmt **slot, const char *sql, sqlite3_stmt **out, struct fr_err *err)
{
    if (*slot == NULL) {
        int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK)
            return sq_fail(db, rc, err, sql);
    }
    *out = *slot;
    sqlite3_reset(*out);
    sqlite3_clear_bindings(*out);
    return FR_OK;
}

int
sq_txn_end(struct sq_store *s, int rc, struct fr_err *err)
{
    if (rc == FR_OK)
        rc = sq_exec(s->db, "COMMIT", err);
    if (rc != FR_OK)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int
sq_step_texts(sqlite3 *db, sqlite3_stmt *st, const char *a, const char *b, const char *what,
              struct fr_err *err)
{
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b != NULL)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? FR_OK : sq_fail(db, rc, err, what);
}

int
sq_prune_step(sqlite3 *db, sqlite3_stmt *step, sqlite3_stmt *del, int64_t before_ms, int64_t *from,
              int64_t *added, int *deleted, const char *what, struct fr_err *err)
{
    int64_t limit = *added * 2;
    limit = limit < 5000 ? 5000 : limit > 50000 ? 50000 : limit;
    sqlite3_bind_int64(step, 1, *from);
    sqlite3_bind_int64(step, 2, before_ms);
    sqlite3_bind_int64(step, 3, limit);
    int64_t end = 0, n = 0;
    int rc = sqlite3_step(step);
    if (rc == SQLITE_ROW) {
        end = sqlite3_column_int64(step, 0);
        n = sqlite3_column_int64(step, 1);
    }
    sqlite3_reset(step);
    if (rc != SQLITE_ROW)
        return sq_fail(db, rc, err, what);
    *deleted = 0;
    if (n > 0) {
        sqlite3_bind_int64(del, 1, *from);
        sqlite3_bind_int64(del, 2, end);
        rc = sqlite3_step(del);
        sqlite3_reset(del);
        if (rc != SQLITE_DONE)
            return sq_fail(db, rc, err, what);
        *deleted = sqlite3_changes(db);
    }
    *from = n < limit ? 0 : end + 1;
    *added = 0;
    return FR_OK;
}

const char *
sq_sync_name(int synchronous)
{
    static const char *const names[] = {"OFF", "NORMAL", "FULL"};
    return names[synchronous < 0 ? 0 : synchronous > 2 ? 2 : synchronous];
}

int64_t
sq_pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q;
    int64_t v = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            v = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    return v;
}
