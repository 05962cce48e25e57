/*
 * retention/hot/pg_util.c - what the PostgreSQL fleet store's write path
 * (postgres.c) and read path (postgres_query.c) share: messages that name
 * the server without its credentials, running a statement.
 */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "retention/hot/pg_int.h"

/* "postgres://user:secret@host/db" -> "postgres://host/db": for messages. */
char *
pg_safe_url(const char *url)
{
    const char *scheme = strstr(url, "://");
    if (scheme == NULL)
        return fr_strdup("postgres (connection string)");
    const char *rest = scheme + 3, *at = strchr(rest, '@'), *slash = strchr(rest, '/');
    if (at != NULL && (slash == NULL || at < slash))
        rest = at + 1;
    const char *q = strchr(rest, '?');
    size_t n = q ? (size_t)(q - rest) : strlen(rest);
    return fr_asprintf("%.*s://%.*s", (int)(scheme - url), url, (int)n, rest);
}

/* err from the connection's last message (its first line), with what was being done. */
int
pg_fail(struct pg_store *s, const char *what, struct fr_err *err)
{
    const char *msg = PQerrorMessage(s->c);
    size_t n = strcspn(msg, "\n");
    return fr_err_set(err, FR_E_STORE, "%s: %s: %.*s", s->safe_url, what, (int)n, msg);
}

/* Runs sql (no parameters, no rows wanted). */
int
pg_exec(struct pg_store *s, const char *sql, const char *what, struct fr_err *err)
{
    PGresult *r = PQexec(s->c, sql);
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return pg_fail(s, what, err);
    return FR_OK;
}

/*
 * An id as the fleet store keys and indexes it. A B-tree entry holds at most
 * about 2.7 kB, so one id past PG_ID_MAX would fail its batch, and every
 * retry of it, for good: such an id is stored as "sha256:" and the hex
 * digest of its bytes (docs/fleet.md), which still finds it. out holds 72.
 */
const char *
pg_id(const char *id, char out[72])
{
    size_t n = id ? strlen(id) : 0;
    if (n <= PG_ID_MAX)
        return id;
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)id, n, md);
    strcpy(out, "sha256:");
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    return out;
}

int64_t
pg_col_int(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

const char *
pg_col_text(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}
