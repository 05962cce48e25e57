/*
 * tests/support/support.h - shared test helpers: temporary directories, a
 * one-call "prepare this JSON line", and a one-batch ingest into a store.
 * Everything here fails the running test (cmocka fail_msg) on error.
 */
#ifndef FR_TESTS_SUPPORT_H
#define FR_TESTS_SUPPORT_H

/* cmocka needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent/ingest.h"
#include "core/err.h"
#include "core/event.h"
#include "retention/hot/store.h"

/*
 * A fresh directory under $TMPDIR (or /tmp), and $FLIGHTREC_KEYS_DIR set to
 * its keys/ folder. Caller frees the string and t_rmtree()s it.
 */
char *t_tmpdir(void);

/* Removes dir and everything below it. */
void t_rmtree(const char *dir);

/* dir + "/" + name; caller frees. */
char *t_path(const char *dir, const char *name);

/* Default limits and the built-in taxonomy (loaded once, kept for the process). */
const struct fr_ingest_cfg *t_cfg(void);

/* The built-in redaction policy with the fixed test key t_key (shared, never freed). */
struct fr_redactor *t_redactor(void);
extern const unsigned char t_key[32];

/* Generates n events (bench/gen.h, seed 11) into dir and ingests them into st. */
void t_ingest_generated(struct fr_store *st, const char *dir, uint64_t n);

/* Runs the ingest pipeline's prepare step on one JSON line with t_cfg(). */
int t_prepare(const char *json, struct fr_record *rec, struct fr_err *err);

/* The value of the series `line` (its name and labels, as /metrics renders them), -1 when
   m renders no such series. */
struct fr_metrics;
long t_metric(struct fr_metrics *m, const char *line);

/* Prepares every line (each must be valid) and commits them in one transaction. */
void t_ingest(struct fr_store *st, const char *const *lines, size_t n);

/* Opens (creating) a store at dir/name. */
struct fr_store *t_store_open(const char *dir, const char *name);

/* The usual fixture: a fresh directory with a store at dir/hot.db (path). */
struct t_store_fx {
    char *dir, *path;
    struct fr_store *st;
};

/* cmocka setup/teardown for struct t_store_fx (as *state). */
int t_store_setup(void **state);
int t_store_teardown(void **state);

/* Runs a command line with /bin/sh, capturing stdout and stderr (caller frees). Returns exit
 * status. */
int t_run(const char *cmd, char **out, char **err);

/*
 * The seed of a randomized test: FR_TEST_SEED when set (to repeat a run),
 * else a fresh one. Printed with the test's name either way, so a failure's
 * output says how to run it again.
 */
unsigned t_seed(const char *test);

/* The first column of the first row of sql on the database at db (read-only, a connection
   of its own); -1 when no row. text (may be NULL): that value as text, n bytes at most. */
long sql_long(const char *db, const char *sql, char *text, size_t n);

/* A loopback TCP port free right now (bound to port 0, read back, closed). */
int t_free_port(void);

/* A loopback port kept bound, not listening, until the returned socket is closed: a connection
   there is refused, and no other process (a test beside, an agent's port 0) can take the port
   meanwhile, as it can one t_free_port() has given back. */
int t_hold_port(int *port);

/*
 * s3rver (npm, package-lock.json; scripts/npm-deps.sh) on loopback, its
 * objects under data_dir, bucket created: the S3-compatible server of the
 * upload and object-storage tests. *port: a free one when 0 (given: reused,
 * to start it again on the same data). Account: access key and secret S3RVER.
 */
/* Flips one bit of the byte in the middle of the file at path (twice: as it was). */
void t_flip_middle_byte(const char *path);

pid_t t_s3rver_start(const char *data_dir, const char *bucket, int *port);
void t_s3rver_stop(pid_t pid);

/*
 * An OTLP ExportTraceServiceRequest in protobuf, as an SDK's proto exporter
 * packs it (built with the generated structs of agent/otlp/otlp.proto): one
 * chat span of trace 4bf92f35…4736 (span 00f067aa0ba902b7, openai, 77 input
 * tokens, 1.2 s) naming conversation conv, and one span without a start time
 * (rejected). Caller frees.
 */
uint8_t *t_otlp_pb_traces(const char *conv, size_t *len);

/* spans[0, n) packed as one ExportTraceServiceRequest (one resource, one scope). Caller frees. */
struct FrOtlp__Span;
uint8_t *t_otlp_pb_pack(struct FrOtlp__Span **spans, size_t n, size_t *len);

/* One span of t_otlp_pb_layout, filled by its caller: name, ids, up to 4 string attributes,
   and a status (code 0: none). */
struct t_pb_span {
    char name[32];
    uint8_t trace[16], span[8];
    const char *keys[4];
    char *vals[4]; /* the caller's (static, or kept until the request is packed) */
    size_t nattr;
    int status;
    const char *status_msg;
};
typedef void (*t_pb_span_fill)(size_t i, struct t_pb_span *s, void *ud);
/* An ExportTraceServiceRequest (caller frees) of nres resources (resource r has the attribute
   service.name "r<r>" and nscopes[r] scopes), its scopes holding nspans[0], nspans[1], ...
   spans in order (flattened over the resources); span i (counted over all) started at
   1771357445201 ms + i and filled by fill(i). */
uint8_t *t_otlp_pb_layout(size_t nres, const size_t *nscopes, const size_t *nspans,
                          t_pb_span_fill fill, void *ud, size_t *len);

/* msg in the snappy framing format (caller frees): the stream identifier, then chunks of at
   most 65,536 bytes, compressed (type 0x00) or, every third one and a short message's, stored
   (0x01), each with its masked CRC-32C; a padding chunk after the first. */
uint8_t *t_snappy_framed(const void *msg, size_t len, size_t *out_len);

#endif
