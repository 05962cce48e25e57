/*
 * retention/hot/pq_dl.h - libpq, opened when the fleet store is first used
 * (core/dl.h): include this instead of <libpq-fe.h>. The functions below
 * call through the table fr_pq_load filled; pg_open calls fr_pq_load first.
 * A function of libpq not listed here does not compile (an undeclared
 * name is not defined to the table): add it to FR_PQ_FUNCTIONS and below.
 */
#ifndef FR_STORE_PQ_DL_H
#define FR_STORE_PQ_DL_H

#include <libpq-fe.h>

#include "core/dl.h"

#define FR_PQ_FUNCTIONS(X)                                                                         \
    X(PQclear)                                                                                     \
    X(PQconnectdbParams)                                                                           \
    X(PQerrorMessage)                                                                              \
    X(PQexec)                                                                                      \
    X(PQexecParams)                                                                                \
    X(PQfinish)                                                                                    \
    X(PQgetResult)                                                                                 \
    X(PQgetisnull)                                                                                 \
    X(PQgetlength)                                                                                 \
    X(PQgetvalue)                                                                                  \
    X(PQntuples)                                                                                   \
    X(PQputCopyData)                                                                               \
    X(PQputCopyEnd)                                                                                \
    X(PQresultErrorField)                                                                          \
    X(PQresultErrorMessage)                                                                        \
    X(PQresultStatus)                                                                              \
    X(PQsendQueryParams)                                                                           \
    X(PQsetSingleRowMode)                                                                          \
    X(PQstatus)

FR_DL_DECLARE(pq, FR_PQ_FUNCTIONS) /* the table, fr_pq_load(), fr_pq(): core/dl.h */

#ifndef FR_PQ_DL_TABLE
#define PQclear (fr_pq()->PQclear)
#define PQconnectdbParams (fr_pq()->PQconnectdbParams)
#define PQerrorMessage (fr_pq()->PQerrorMessage)
#define PQexec (fr_pq()->PQexec)
#define PQexecParams (fr_pq()->PQexecParams)
#define PQfinish (fr_pq()->PQfinish)
#define PQgetResult (fr_pq()->PQgetResult)
#define PQgetisnull (fr_pq()->PQgetisnull)
#define PQgetlength (fr_pq()->PQgetlength)
#define PQgetvalue (fr_pq()->PQgetvalue)
#define PQntuples (fr_pq()->PQntuples)
#define PQputCopyData (fr_pq()->PQputCopyData)
#define PQputCopyEnd (fr_pq()->PQputCopyEnd)
#define PQresultErrorField (fr_pq()->PQresultErrorField)
#define PQresultErrorMessage (fr_pq()->PQresultErrorMessage)
#define PQresultStatus (fr_pq()->PQresultStatus)
#define PQsendQueryParams (fr_pq()->PQsendQueryParams)
#define PQsetSingleRowMode (fr_pq()->PQsetSingleRowMode)
#define PQstatus (fr_pq()->PQstatus)
#endif

#endif
