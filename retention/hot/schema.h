/*
 * retention/hot/schema.h - the SQLite hot store's schema and its versioned
 * migrations (PRAGMA user_version). Each migration runs in its own
 * transaction, so a database is always at exactly one version. The schema is
 * documented in docs/storage.md; change both together.
 */
#ifndef FR_STORE_SCHEMA_H
#define FR_STORE_SCHEMA_H

#include <sqlite3.h>

#include "core/err.h"

/* The version this build creates and migrates to. */
int fr_schema_latest(void);

/* Reads the database's version (0 for an empty database). */
int fr_schema_version(sqlite3 *db, int *out, struct fr_err *err);

/*
 * Migrates db from its version up to target (<= fr_schema_latest()). Fails
 * with FR_E_VERSION when the database is newer than this build knows.
 */
int fr_schema_migrate(sqlite3 *db, int target, struct fr_err *err);

/*
 * The statement that inserts one event (26 parameters, in the order of
 * docs/storage.md). Shared with bench/ so the raw-insert ceiling measures
 * exactly the rows and indexes flightrec writes.
 */
extern const char fr_schema_insert_event_sql[];

#endif
