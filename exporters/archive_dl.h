/*
 * exporters/archive_dl.h - libarchive, opened when a bundle is first written
 * or read (core/dl.h): include this instead of <archive.h> and
 * <archive_entry.h>. The functions below call through the table; the
 * bundle writer and reader call fr_archive_load first. A libarchive function
 * not listed does not compile: add it to FR_ARCHIVE_FUNCTIONS and below.
 */
#ifndef FR_EXPORTERS_ARCHIVE_DL_H
#define FR_EXPORTERS_ARCHIVE_DL_H

#include <archive.h>
#include <archive_entry.h>

#include "core/dl.h"

#define FR_ARCHIVE_FUNCTIONS(X)                                                                    \
    X(archive_entry_filetype)                                                                      \
    X(archive_entry_free)                                                                          \
    X(archive_entry_new)                                                                           \
    X(archive_entry_pathname)                                                                      \
    X(archive_entry_set_filetype)                                                                  \
    X(archive_entry_set_mtime)                                                                     \
    X(archive_entry_set_pathname)                                                                  \
    X(archive_entry_set_perm)                                                                      \
    X(archive_entry_set_size)                                                                      \
    X(archive_entry_size)                                                                          \
    X(archive_error_string)                                                                        \
    X(archive_read_data)                                                                           \
    X(archive_read_free)                                                                           \
    X(archive_read_new)                                                                            \
    X(archive_read_next_header)                                                                    \
    X(archive_read_open_filename)                                                                  \
    X(archive_read_support_filter_zstd)                                                            \
    X(archive_read_support_format_tar)                                                             \
    X(archive_version_string)                                                                      \
    X(archive_write_add_filter_zstd)                                                               \
    X(archive_write_close)                                                                         \
    X(archive_write_data)                                                                          \
    X(archive_write_free)                                                                          \
    X(archive_write_header)                                                                        \
    X(archive_write_new)                                                                           \
    X(archive_write_open_filename)                                                                 \
    X(archive_write_set_format_pax_restricted)

FR_DL_DECLARE(archive,
              FR_ARCHIVE_FUNCTIONS) /* the table, fr_archive_load(), fr_archive(): core/dl.h */

#ifndef FR_ARCHIVE_DL_TABLE
#define archive_entry_filetype (fr_archive()->archive_entry_filetype)
#define archive_entry_free (fr_archive()->archive_entry_free)
#define archive_entry_new (fr_archive()->archive_entry_new)
#define archive_entry_pathname (fr_archive()->archive_entry_pathname)
#define archive_entry_set_filetype (fr_archive()->archive_entry_set_filetype)
#define archive_entry_set_mtime (fr_archive()->archive_entry_set_mtime)
#define archive_entry_set_pathname (fr_archive()->archive_entry_set_pathname)
#define archive_entry_set_perm (fr_archive()->archive_entry_set_perm)
#define archive_entry_set_size (fr_archive()->archive_entry_set_size)
#define archive_entry_size (fr_archive()->archive_entry_size)
#define archive_error_string (fr_archive()->archive_error_string)
#define archive_read_data (fr_archive()->archive_read_data)
#define archive_read_free (fr_archive()->archive_read_free)
#define archive_read_new (fr_archive()->archive_read_new)
#define archive_read_next_header (fr_archive()->archive_read_next_header)
#define archive_read_open_filename (fr_archive()->archive_read_open_filename)
#define archive_read_support_filter_zstd (fr_archive()->archive_read_support_filter_zstd)
#define archive_read_support_format_tar (fr_archive()->archive_read_support_format_tar)
#define archive_version_string (fr_archive()->archive_version_string)
#define archive_write_add_filter_zstd (fr_archive()->archive_write_add_filter_zstd)
#define archive_write_close (fr_archive()->archive_write_close)
#define archive_write_data (fr_archive()->archive_write_data)
#define archive_write_free (fr_archive()->archive_write_free)
#define archive_write_header (fr_archive()->archive_write_header)
#define archive_write_new (fr_archive()->archive_write_new)
#define archive_write_open_filename (fr_archive()->archive_write_open_filename)
#define archive_write_set_format_pax_restricted                                                    \
    (fr_archive()->archive_write_set_format_pax_restricted)
#endif

#endif
