/*
 * retention/hot/sqlite_body.h - the SQL function that reads a stored body
 * (sqlite_body.c), for a connection opened outside the store (a test, a
 * tool): fr_body(body) is the envelope as text, whether the row holds it as
 * text or as a zstd frame compressed with a dictionary of `body_dicts`.
 */
#ifndef FR_STORE_SQLITE_BODY_H
#define FR_STORE_SQLITE_BODY_H

#include <sqlite3.h>

/* Registers fr_body(body) on db; SQLite's result code. */
int fr_sqlite_body_functions(sqlite3 *db);

#endif
