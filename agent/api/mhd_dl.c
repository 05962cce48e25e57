/*
 * agent/api/mhd_dl.c - libmicrohttpd's table (mhd_dl.h, core/dl.h).
 */
#define FR_MHD_DL_TABLE
#include "agent/api/mhd_dl.h"

FR_DL_DEFINE(mhd, FR_MHD_FUNCTIONS, FR_SONAME_MHD, "the agent's HTTP server")
