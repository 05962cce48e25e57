/*
 * core/fsutil.h - small file-system helpers shared by the stages.
 */
#ifndef FR_CORE_FSUTIL_H
#define FR_CORE_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

/* Reads a whole file into a NUL-terminated buffer the caller frees. */
int fr_read_file(const char *path, char **text, size_t *len, struct fr_err *err);

/* fsync()s a directory (after a rename into it); -1 on failure. */
int fr_fsync_dir(const char *dir);

/* Writes all of data to fd, retrying interrupted and short writes; false (errno set, or 0
   when the fd took nothing) when it could not. */
bool fr_fd_write_all(int fd, const void *data, size_t len);
/* Reads fd to its end into a NUL-terminated buffer the caller frees (*out is set even on
   failure: what was read); false (errno set) on a read error. */
bool fr_fd_read_all(int fd, char **out, size_t *len);

/* fr_fd_read_all, stopping once more than max bytes were read: false with *over set then
   (errno 0), *out holding what was read. */
bool fr_fd_read_max(int fd, size_t max, char **out, size_t *len, bool *over);

/*
 * Replaces path with data[0, len) crash-safely, the one way flightrec
 * writes a small file: a temporary file beside it (mode 0600), written and
 * fsync'd, renamed over path, then the directory fsync'd. After a crash
 * path holds either the old content or the new, never a part. err names
 * the step and the reason.
 */
int fr_write_file_atomic(const char *path, const void *data, size_t len, struct fr_err *err);

/*
 * Copies the file src to dst the same crash-safe way (streamed, so any
 * size): a temporary file beside dst, fsync'd, renamed, directory fsync'd.
 */
int fr_copy_file_atomic(const char *src, const char *dst, struct fr_err *err);

/* Creates every missing directory above the file `path` with mode (mkdir -p of its dirname). */
int fr_mkdirs_for(const char *path, mode_t mode, struct fr_err *err);

/*
 * Space on the file system that holds path (a file, which need not exist:
 * its directory is asked; or a directory): bytes an unprivileged writer may
 * still use and the file system's size. false (errno set) when it cannot be
 * asked.
 */
bool fr_fs_space(const char *path, uint64_t *avail, uint64_t *total);

/* bytes for people, into buf: "812 B", "3.2 KiB", "6.0 MiB", "1.5 GiB", "2.0 TiB". */
const char *fr_fmt_bytes(char *buf, size_t cap, uint64_t bytes);

#endif
