/*
 * retention/hot/pq_dl.c - libpq's table (pq_dl.h, core/dl.h).
 */
#define FR_PQ_DL_TABLE
#include "retention/hot/pq_dl.h"

FR_DL_DEFINE(pq, FR_PQ_FUNCTIONS, FR_SONAME_PQ, "the fleet store on PostgreSQL")
