/*
 * core/fsutil.c - see fsutil.h.
 */
#include "core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/mem.h"

int
fr_read_file(const char *path, char **text, size_t *len, struct fr_err *err)
{
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fr_err_set(err, FR_E_IO, "cannot read %s: %s", path, strerror(errno));
    char *buf;
    size_t n;
    bool ok = fr_fd_read_all(fd, &buf, &n);
    int e = errno;
    close(fd);
    if (!ok) {
        free(buf);
        return fr_err_set(err, FR_E_IO, "cannot read %s: %s", path, strerror(e));
    }
    *text = buf;
    *len = n;
    return FR_OK;
}

bool
fr_fd_read_max(int fd, size_t max, char **out, size_t *len, bool *over)
{
    /* binary-safe: everything, NUL bytes included, plus a terminating NUL */
    size_t cap = 4096, n = 0;
    char *buf = fr_malloc(cap);
    bool ok = true;
    *over = false;
    for (;;) {
        if (n > max) {
            *over = true;
            errno = 0;
            ok = false;
            break;
        }
        if (n + 1 >= cap)
            buf = fr_realloc(buf, cap *= 2);
        ssize_t got = read(fd, buf + n, cap - n - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            ok = got == 0;
            break;
        }
        n += (size_t)got;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return ok;
}

bool
fr_fd_read_all(int fd, char **out, size_t *len)
{
    bool over;
    return fr_fd_read_max(fd, SIZE_MAX, out, len, &over);
}

int
fr_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Renames tmp over path and fsyncs path's directory; removes tmp on failure. */
static int
publish_tmp(const char *tmp, const char *path, int rc, struct fr_err *err)
{
    if (rc == FR_OK && rename(tmp, path) != 0)
        rc = fr_err_set(err, FR_E_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc != FR_OK) {
        unlink(tmp);
        return rc;
    }
    char *dir = fr_strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    if (fr_fsync_dir(slash ? dir : ".") != 0)
        rc =
            fr_err_set(err, FR_E_IO, "cannot fsync the directory of %s: %s", path, strerror(errno));
    free(dir);
    return rc;
}

bool
fr_fd_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = 0;
            return false;
        }
        p += w;
        len -= (size_t)w;
    }
    return true;
}

/* Writes all of data to fd (named for messages), retrying short writes. */
static int
write_all(int fd, const char *name, const void *data, size_t len, struct fr_err *err)
{
    if (fr_fd_write_all(fd, data, len))
        return FR_OK;
    return fr_err_set(err, FR_E_IO, "cannot write %s: %s", name,
                      errno != 0 ? strerror(errno) : "short write");
}

/* fsync and close fd, then give tmp its name (publish_tmp). */
static int
finish_tmp(int fd, const char *tmp, const char *path, int rc, struct fr_err *err)
{
    if (rc == FR_OK && fsync(fd) != 0)
        rc = fr_err_set(err, FR_E_IO, "cannot fsync %s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == FR_OK)
        rc = fr_err_set(err, FR_E_IO, "cannot close %s: %s", tmp, strerror(errno));
    return publish_tmp(tmp, path, rc, err);
}

int
fr_write_file_atomic(const char *path, const void *data, size_t len, struct fr_err *err)
{
    char *tmp = fr_asprintf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc;
    if (fd < 0)
        rc = fr_err_set(err, FR_E_IO, "cannot create %s: %s", tmp, strerror(errno));
    else
        rc = finish_tmp(fd, tmp, path, write_all(fd, tmp, data, len, err), err);
    free(tmp);
    return rc;
}

int
fr_copy_file_atomic(const char *src, const char *dst, struct fr_err *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return fr_err_set(err, FR_E_IO, "cannot open %s: %s", src, strerror(errno));
    char *tmp = fr_asprintf("%s.tmp.%ld", dst, (long)getpid());
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc =
        out < 0 ? fr_err_set(err, FR_E_IO, "cannot create %s: %s", tmp, strerror(errno)) : FR_OK;
    char buf[65536];
    while (rc == FR_OK) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = fr_err_set(err, FR_E_IO, "cannot read %s: %s", src, strerror(errno));
        if (n <= 0)
            break;
        rc = write_all(out, tmp, buf, (size_t)n, err);
    }
    close(in);
    if (out >= 0)
        rc = finish_tmp(out, tmp, dst, rc, err);
    free(tmp);
    return rc;
}

int
fr_mkdirs_for(const char *path, mode_t mode, struct fr_err *err)
{
    char *dir = fr_strdup(path);
    char *slash = strrchr(dir, '/');
    int rc = FR_OK;
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; rc == FR_OK; p++) {
            bool last = *p == '\0';
            if (*p != '/' && !last)
                continue;
            *p = '\0';
            if (mkdir(dir, mode) != 0 && errno != EEXIST)
                rc = fr_err_set(err, FR_E_IO, "cannot create directory %s: %s", dir,
                                strerror(errno));
            if (last)
                break;
            *p = '/';
        }
    }
    free(dir);
    return rc;
}

bool
fr_fs_space(const char *path, uint64_t *avail, uint64_t *total)
{
    struct stat st;
    char *dir = NULL;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) { /* a file, there or to be */
        const char *slash = strrchr(path, '/');
        dir = slash == NULL ? fr_strdup(".")
                            : fr_strndup(path, slash == path ? 1 : (size_t)(slash - path));
    }
    struct statvfs vfs;
    bool ok = statvfs(dir != NULL ? dir : path, &vfs) == 0;
    free(dir);
    if (ok) {
        *avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        *total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    }
    return ok;
}

const char *
fr_fmt_bytes(char *buf, size_t cap, uint64_t bytes)
{
    static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) {
        snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof unit / sizeof *unit) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, cap, "%.1f %s", v, unit[u]);
    return buf;
}
