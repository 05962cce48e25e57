/*
 * agent/api/mhd_dl.h - libmicrohttpd, opened when the agent starts its HTTP
 * server (core/dl.h), not by every CLI command: with GnuTLS and p11-kit
 * (whose set-up reads its configuration at load) it was a third of a
 * command's start. Include this instead of <microhttpd.h>; fr_http_start
 * calls fr_mhd_load first. A function not listed does not compile: add it
 * to FR_MHD_FUNCTIONS and below.
 */
#ifndef FR_AGENT_MHD_DL_H
#define FR_AGENT_MHD_DL_H

#include <microhttpd.h>

#include "core/dl.h"

#define FR_MHD_FUNCTIONS(X)                                                                        \
    X(MHD_add_response_header)                                                                     \
    X(MHD_create_response_from_buffer)                                                             \
    X(MHD_create_response_from_fd)                                                                 \
    X(MHD_destroy_response)                                                                        \
    X(MHD_get_connection_info)                                                                     \
    X(MHD_get_connection_values)                                                                   \
    X(MHD_get_daemon_info)                                                                         \
    X(MHD_get_version)                                                                             \
    X(MHD_lookup_connection_value)                                                                 \
    X(MHD_queue_response)                                                                          \
    X(MHD_quiesce_daemon)                                                                          \
    X(MHD_set_connection_option)                                                                   \
    X(MHD_start_daemon)                                                                            \
    X(MHD_stop_daemon)

FR_DL_DECLARE(mhd, FR_MHD_FUNCTIONS) /* the table, fr_mhd_load(), fr_mhd(): core/dl.h */

#ifndef FR_MHD_DL_TABLE
#define MHD_add_response_header (fr_mhd()->MHD_add_response_header)
#define MHD_create_response_from_buffer (fr_mhd()->MHD_create_response_from_buffer)
#define MHD_create_response_from_fd (fr_mhd()->MHD_create_response_from_fd)
#define MHD_destroy_response (fr_mhd()->MHD_destroy_response)
#define MHD_get_connection_info (fr_mhd()->MHD_get_connection_info)
#define MHD_get_connection_values (fr_mhd()->MHD_get_connection_values)
#define MHD_get_daemon_info (fr_mhd()->MHD_get_daemon_info)
#define MHD_get_version (fr_mhd()->MHD_get_version)
#define MHD_lookup_connection_value (fr_mhd()->MHD_lookup_connection_value)
#define MHD_queue_response (fr_mhd()->MHD_queue_response)
#define MHD_quiesce_daemon (fr_mhd()->MHD_quiesce_daemon)
#define MHD_set_connection_option (fr_mhd()->MHD_set_connection_option)
#define MHD_start_daemon (fr_mhd()->MHD_start_daemon)
#define MHD_stop_daemon (fr_mhd()->MHD_stop_daemon)
#endif

#endif
