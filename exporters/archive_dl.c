/*
 * exporters/archive_dl.c - libarchive's table (archive_dl.h, core/dl.h).
 */
#define FR_ARCHIVE_DL_TABLE
#include "exporters/archive_dl.h"

FR_DL_DEFINE(archive, FR_ARCHIVE_FUNCTIONS, FR_SONAME_ARCHIVE, "incident bundles")
