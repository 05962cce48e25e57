/*
 * retention/curl_dl.c - libcurl's table (curl_dl.h, core/dl.h).
 */
#define FR_CURL_DL_TABLE
#include "retention/curl_dl.h"

FR_DL_DEFINE(curl, FR_CURL_FUNCTIONS, FR_SONAME_CURL, "uploads and the bucket mirror")
