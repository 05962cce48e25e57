/*
 * retention/curl_dl.h - libcurl, opened when a transfer first needs it
 * (core/dl.h): the bucket mirror (objstore.c), uploads
 * (exporters/upload_http.c), `flightrec version`. Include this instead of
 * <curl/curl.h>; each of those calls fr_curl_load before its first transfer.
 * The functions below call through the table. libcurl's compile-time check
 * of curl_easy_setopt's argument types (typecheck-gcc.h) is a macro of the
 * same name, which the table's replaces; with Debian 12's libcurl (7.88)
 * and GCC 12 it did not fire anyway (a string passed to CURLOPT_NOSIGNAL
 * compiled without a word at -O1 to -O3), so the calls are checked by hand
 * and by the tests that drive each option. A libcurl function not listed does
 * not compile: add it to FR_CURL_FUNCTIONS and below.
 */
#ifndef FR_RETENTION_CURL_DL_H
#define FR_RETENTION_CURL_DL_H

#include <curl/curl.h>

#include "core/dl.h"

#undef curl_easy_setopt /* typecheck-gcc.h's wrappers, or curl.h's argument count checks */
#undef curl_easy_getinfo

#define FR_CURL_FUNCTIONS(X)                                                                       \
    X(curl_easy_cleanup)                                                                           \
    X(curl_easy_getinfo)                                                                           \
    X(curl_easy_init)                                                                              \
    X(curl_easy_perform)                                                                           \
    X(curl_easy_setopt)                                                                            \
    X(curl_easy_strerror)                                                                          \
    X(curl_getdate)                                                                                \
    X(curl_mime_addpart)                                                                           \
    X(curl_mime_filedata)                                                                          \
    X(curl_mime_free)                                                                              \
    X(curl_mime_init)                                                                              \
    X(curl_mime_name)                                                                              \
    X(curl_slist_append)                                                                           \
    X(curl_slist_free_all)                                                                         \
    X(curl_version_info)

FR_DL_DECLARE(curl, FR_CURL_FUNCTIONS) /* the table, fr_curl_load(), fr_curl(): core/dl.h */

#ifndef FR_CURL_DL_TABLE
#define curl_easy_cleanup (fr_curl()->curl_easy_cleanup)
#define curl_easy_getinfo (fr_curl()->curl_easy_getinfo)
#define curl_easy_init (fr_curl()->curl_easy_init)
#define curl_easy_perform (fr_curl()->curl_easy_perform)
#define curl_easy_setopt (fr_curl()->curl_easy_setopt)
#define curl_easy_strerror (fr_curl()->curl_easy_strerror)
#define curl_getdate (fr_curl()->curl_getdate)
#define curl_mime_addpart (fr_curl()->curl_mime_addpart)
#define curl_mime_filedata (fr_curl()->curl_mime_filedata)
#define curl_mime_free (fr_curl()->curl_mime_free)
#define curl_mime_init (fr_curl()->curl_mime_init)
#define curl_mime_name (fr_curl()->curl_mime_name)
#define curl_slist_append (fr_curl()->curl_slist_append)
#define curl_slist_free_all (fr_curl()->curl_slist_free_all)
#define curl_version_info (fr_curl()->curl_version_info)
#endif

#endif
