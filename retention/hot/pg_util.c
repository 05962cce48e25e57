/*
 * retention/hot/pg_util.c - what the PostgreSQL fleet store's write path
 * (postgres.c) and read path (postgres_query.c) share: messages that name
 * the server without its credentials, running a statement.
 */
#include <stdio.h>
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
