/*
 * bench/rawinsert.c - `fr-rawinsert FILE DB [BATCH [DROP]]`: the raw ceiling
 * for ingest. Prepares every line of FILE into the exact column values
 * flightrec stores (untimed), creates DB with flightrec's schema (same
 * indexes), then times a bare prepared-statement insert loop of those rows in
 * transactions of BATCH rows, with the same PRAGMAs. Prints "rows_per_s N"
 * (wall clock) and "cpu_us_per_row X" (the process's user CPU time over the
 * loop: steadier on a shared machine, and without the kernel's writes).
 * DROP: comma-separated index names dropped before the timed loop, to price
 * each index (bench/indexes.sh).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "agent/ingest.h"
#include "collectors/taxonomy.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "redact/redact.h"
#include "retention/hot/schema.h"

#define RAW_COLS 28

struct raw_row {
    char *text[RAW_COLS + 1]; /* 1-based; NULL = SQL NULL */
    int64_t ints[RAW_COLS + 1];
    bool is_int[RAW_COLS + 1];
};

/* user CPU time of the process: the B-tree work, without the kernel's page cache writes */
static double
cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
}

static void
raw_set_text(struct raw_row *r, int i, const char *s)
{
    r->text[i] = s ? fr_strdup(s) : NULL;
}

static void
raw_set_int(struct raw_row *r, int i, bool present, int64_t v)
{
    r->is_int[i] = present;
    r->ints[i] = v;
}

static void
raw_from_rec(struct raw_row *r, const struct fr_record *rec)
{
    const struct fr_record *ev = rec;
    memset(r, 0, sizeof *r);
    raw_set_int(r, 1, true, ev->ts_ms);
    raw_set_int(r, 2, true, 0);
    raw_set_text(r, 3, fr_kind_name(ev->kind));
    raw_set_int(r, 4, ev->has_seq, ev->seq);
    for (int i = 0; i < FR_ID_COUNT; i++)
        raw_set_text(r, 5 + i, ev->ids[i]);
    raw_set_text(r, 16, ev->status);
    raw_set_text(r, 17, ev->provider);
    raw_set_text(r, 18, ev->model);
    raw_set_text(r, 19, ev->tool);
    raw_set_int(r, 20, ev->has_duration, ev->duration_ms);
    raw_set_text(r, 21, ev->has_error ? fr_error_class_name(ev->err.klass) : NULL);
    raw_set_text(r, 22, ev->has_error ? ev->err.code : NULL);
    raw_set_text(r, 23, ev->has_error ? ev->err.message : NULL);
    raw_set_text(r, 24, rec->body);
    raw_set_text(r, 25, ev->request_sha256[0] ? ev->request_sha256 : NULL);
    raw_set_text(r, 26, ev->response_sha256[0] ? ev->response_sha256 : NULL);
    raw_set_text(r, 27, ev->policy[0] ? ev->policy : NULL);
    raw_set_text(r, 28, NULL); /* raw mode is off */
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fr-rawinsert FILE DB [BATCH]\n");
        return 2;
    }
    size_t batch = argc > 3 ? (size_t)atol(argv[3]) : 1000;
    FILE *in = fopen(argv[1], "r");
    if (in == NULL) {
        perror(argv[1]);
        return 1;
    }
    struct fr_ingest_cfg cfg = {0};
    fr_wire_limits_default(&cfg.lim);
    struct fr_taxonomy *tax;
    fr_taxonomy_load(NULL, &tax, NULL);
    cfg.tax = tax;
    struct fr_policy *pol;
    struct fr_redactor *red = NULL;
    static const unsigned char key[FR_KEY_LEN] = {1};
    if (fr_policy_load(NULL, &pol, NULL) != FR_OK || fr_redactor_new(pol, key, &red, NULL) != FR_OK)
        return 1;
    cfg.red = red;
    size_t cap = 1024, n = 0;
    struct raw_row *rows = fr_malloc(cap * sizeof *rows);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, in)) > 0) {
        struct fr_record rec;
        if (fr_ingest_prepare(line, (size_t)len, &cfg, NULL, &rec, NULL) != FR_OK)
            continue;
        if (n == cap)
            rows = fr_realloc(rows, (cap *= 2) * sizeof *rows);
        raw_from_rec(&rows[n++], &rec);
        fr_record_clear(&rec);
    }
    free(line);
    fclose(in);

    /* create the schema exactly as flightrec does */
    struct fr_store *st;
    struct fr_err err = {0};
    if (fr_store_open(argv[2], NULL, &st, &err) != FR_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    fr_store_close(st);

    sqlite3 *db;
    sqlite3_open(argv[2], &db);
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;"
                 " PRAGMA cache_size=-16384;",
                 NULL, NULL, NULL);
    if (argc > 4 && argv[4][0] != '\0') {
        char *names = fr_strdup(argv[4]), *save = NULL;
        for (char *name = strtok_r(names, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
            char *sql = fr_asprintf("DROP INDEX \"%s\"", name);
            if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
                fprintf(stderr, "fr-rawinsert: cannot drop index %s: %s\n", name,
                        sqlite3_errmsg(db));
                return 1;
            }
            free(sql);
        }
        free(names);
    }
    sqlite3_stmt *ins;
    sqlite3_prepare_v2(db, fr_schema_insert_event_sql, -1, &ins, NULL);
    double t0 = fr_mono_s(), c0 = cpu_s();
    for (size_t i = 0; i < n; i++) {
        if (i % batch == 0)
            sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        for (int c = 1; c <= RAW_COLS; c++) {
            if (rows[i].is_int[c])
                sqlite3_bind_int64(ins, c, rows[i].ints[c]);
            else if (rows[i].text[c])
                sqlite3_bind_text(ins, c, rows[i].text[c], -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(ins, c);
        }
        if (sqlite3_step(ins) != SQLITE_DONE) {
            fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
            return 1;
        }
        sqlite3_reset(ins);
        if (i % batch == batch - 1 || i == n - 1)
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    double el = fr_mono_s() - t0, cpu = cpu_s() - c0;
    sqlite3_finalize(ins);
    sqlite3_close(db);
    printf("rows %zu\nseconds %.3f\nrows_per_s %.0f\ncpu_us_per_row %.3f\n", n, el,
           el > 0 ? (double)n / el : 0.0, n ? 1e6 * cpu / (double)n : 0.0);
    for (size_t i = 0; i < n; i++)
        for (int c = 1; c <= RAW_COLS; c++)
            free(rows[i].text[c]);
    free(rows);
    fr_taxonomy_free(tax);
    fr_redactor_free(red);
    return 0;
}
