/*
 * tests/integration/test_cli.c - the real `flightrec` binary, driven as a
 * user would: exit codes, per-line errors on stderr, the JSON outputs, help
 * on every subcommand, and owner-only database files.
 */
#include "tests/support/support.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "core/crypto.h"
#include "core/fsutil.h"
#include "core/hex.h"
#include "core/mem.h"
#include "retention/hot/sqlite_int.h" /* SQ_TRACE_EVENT_IDS: the store's trace query */

#ifndef FR_BIN
#error FR_BIN must name the flightrec binary
#endif

struct fx {
    char *dir, *db, *file;
};

static int
setup(void **state)
{
    struct fx *f = fr_calloc(1, sizeof *f);
    f->dir = t_tmpdir();
    f->db = t_path(f->dir, "data/hot.db");
    f->file = t_path(f->dir, "in.ndjson");
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    t_rmtree(f->dir);
    free(f->dir);
    free(f->db);
    free(f->file);
    free(f);
    return 0;
}

static void
write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* Runs `flightrec ARGS` (printf-style), returning the exit status. */
static int fr(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fr(char **out, char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char args[2048];
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    char *cmd = fr_asprintf("%s %s", FR_BIN, args);
    int rc = t_run(cmd, out, err);
    free(cmd);
    return rc;
}

static const char sample[] =
    "{\"kind\":\"conversation\",\"ts_ms\":1771357445100,\"conv_id\":\"c-1\",\"data\":"
    "{\"status\":\"active\"}}\n"
    "{\"kind\":\"provider\",\"ts_ms\":\"soon\",\"conv_id\":\"c-1\"}\n"
    "{\"kind\":\"provider\",\"ts_ms\":1771357445200,\"conv_id\":\"c-1\",\"seq\":1,\"data\":"
    "{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":\"error\"},\"error\":{\"message\":"
    "\"429 Too Many Requests\"}}\n"
    "\n"
    "{\"kind\":\"tool\",\"ts_ms\":1771357445300,\"conv_id\":\"c-1\",\"data\":{\"name\":\"search\","
    "\"status\":\"ok\",\"started_ms\":1771357445250,\"ended_ms\":1771357445300}}\n"
    "{\"ts_ms\":1771357445300}\n";

static void
test_cli_ingest_reports_bad_lines_and_keeps_good(void **state)
{
    struct fx *f = *state;
    write_file(f->file, sample);
    char *out, *err;
    int rc = fr(&out, &err, "ingest --db %s %s", f->db, f->file);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "line 2: ts_ms: must be an integer"));
    assert_non_null(strstr(err, "line 6: kind: missing"));
    assert_non_null(strstr(err, "5 lines, 3 accepted"));
    assert_non_null(strstr(err, "2 rejected"));
    assert_non_null(strstr(err, "wrong_type=1"));
    assert_non_null(strstr(err, "missing_field=1"));
    free(out);
    free(err);
    /* the database is owner-only */
    struct stat sb;
    assert_int_equal(stat(f->db, &sb), 0);
    assert_int_equal(sb.st_mode & 077, 0);

    /* all lines valid: exit 0; ingesting the same file again stores nothing twice */
    write_file(f->file, "{\"kind\":\"runtime\",\"ts_ms\":1771357445400,\"conv_id\":\"c-2\","
                        "\"event_id\":\"r1\"}\n");
    assert_int_equal(fr(NULL, &err, "ingest --db %s %s", f->db, f->file), 0);
    free(err);
    assert_int_equal(fr(NULL, &err, "ingest --db %s - < %s", f->db, f->file), 0);
    assert_non_null(strstr(err, "1 accepted (1 already stored)"));
    assert_null(strstr(err, "misnamed"));
    free(err);

    /* another spelling of an envelope field: stored (exit 0), each line said, then a count */
    write_file(f->file,
               "{\"kind\":\"runtime\",\"ts_ms\":1771357445500,\"conversation_id\":\"c-3\"}\n"
               "{\"kind\":\"runtime\",\"ts_ms\":1771357445501,\"conv_id\":\"c-3\"}\n"
               "{\"kind\":\"runtime\",\"ts_ms\":1771357445502,\"sessionId\":\"s\"}\n");
    assert_int_equal(fr(NULL, &err, "ingest --db %s %s", f->db, f->file), 0);
    assert_non_null(strstr(err, "line 1: warning: conversation_id: not an envelope field (kept as "
                                "an attribute); did you mean conv_id?"));
    assert_non_null(strstr(err, "line 3: warning: sessionId: not an envelope field"));
    assert_null(strstr(err, "line 2:"));
    assert_non_null(strstr(err, "3 accepted"));
    assert_non_null(strstr(err, "2 events stored with a warning (a misnamed or missing envelope"));
    free(err);

    /* a file saved by a Windows tool: a byte order mark, CRLF line ends; ingest and redact
       both take it */
    write_file(f->file, "\xef\xbb\xbf{\"kind\":\"runtime\",\"ts_ms\":1771357445600,"
                        "\"conv_id\":\"c-bom\"}\r\n\r\n"
                        "{\"kind\":\"runtime\",\"ts_ms\":1771357445601,\"conv_id\":\"c-bom\"}\r\n");
    assert_int_equal(fr(NULL, &err, "ingest --db %s %s", f->db, f->file), 0);
    assert_non_null(strstr(err, "2 lines, 2 accepted"));
    free(err);
    assert_int_equal(fr(&out, NULL, "redact --explain --db %s %s", f->db, f->file), 0);
    assert_non_null(strstr(out, "2 lines, 0 changed by the policy, 0 rejected"));
    free(out);

    /* pretty-printed events (jq ., an editor) and a JSON array: read whole, each numbered by
       the line it starts on or by its element */
    write_file(f->file, "{\n  \"kind\": \"runtime\",\n  \"ts_ms\": 1771357445700,\n"
                        "  \"conv_id\": \"c-pretty\"\n}\n{\n  \"kind\": \"runtime\",\n"
                        "  \"ts_ms\": \"soon\"\n}\n");
    assert_int_equal(fr(NULL, &err, "ingest --db %s %s", f->db, f->file), 1);
    assert_non_null(strstr(err, "line 6: ts_ms: must be an integer"));
    assert_non_null(strstr(err, "1 accepted"));
    free(err);
    write_file(f->file,
               "[\n {\"kind\":\"runtime\",\"ts_ms\":1771357445701,\"conv_id\":\"c-pretty\"},"
               "\n {\"kind\":\"runtime\"}\n]\n");
    assert_int_equal(fr(NULL, &err, "ingest --db %s - < %s", f->db, f->file), 1);
    assert_non_null(strstr(err, "element 2: ts_ms: missing"));
    free(err);
    assert_int_equal(fr(&out, NULL, "show --db %s c-pretty", f->db), 0);
    assert_non_null(strstr(out, "events=2 "));
    free(out);
    /* an array of one element per line (each line starting with '{'), one element broken and
       the end cut off: read whole all the same, every element that parses kept */
    write_file(f->file, "[\n{\"kind\":\"runtime\",\"ts_ms\":1771357445704,\"conv_id\":\"c-arr\"},\n"
                        "{\"kind\":\"runtime\",\"ts_ms\":},\n"
                        "{\"kind\":\"runtime\",\"ts_ms\":1771357445705,\"conv_id\":\"c-arr\"},\n"
                        "{\"kind\":\"runtime\",\"ts_");
    assert_int_equal(fr(NULL, &err, "ingest --db %s %s", f->db, f->file), 1);
    assert_non_null(strstr(err, "element 2: line 3: invalid JSON"));
    assert_non_null(strstr(err, "element 4: line 5: the element is cut short by the end"));
    assert_non_null(strstr(err, "2 accepted"));
    free(err);
    assert_int_equal(fr(&out, NULL, "show --db %s c-arr", f->db), 0);
    assert_non_null(strstr(out, "events=2 "));
    free(out);
    /* an event over several lines that does not parse: read as NDJSON, and said */
    write_file(f->file,
               "{\n  \"kind\": \"runtime\",\n  \"ts_ms\": 17\n"
               "{\"kind\":\"runtime\",\"ts_ms\":1771357445702,\"conv_id\":\"c-pretty\"}\n");
    assert_int_equal(fr(NULL, &err, "ingest --db %s %s", f->db, f->file), 1);
    assert_non_null(strstr(err, "line 1: invalid JSON"));
    assert_non_null(strstr(err, "(the event does not end on this line: cut short, or "
                                "pretty-printed over lines that do not parse; read as NDJSON, one "
                                "event per line)\nline 2:"));
    assert_non_null(strstr(err, "1 accepted"));
    free(err);
    /* a stream whose first line is cut short is read by lines, not whole */
    write_file(f->file,
               "{\"kind\":\"runtime\",\"ts_ms\":17\n\n"
               "{\"kind\":\"runtime\",\"ts_ms\":1771357445703,\"conv_id\":\"c-pretty\"}\n");
    assert_int_equal(fr(NULL, &err, "ingest --db %s - < %s", f->db, f->file), 1);
    assert_non_null(strstr(err, "line 1: invalid JSON"));
    assert_null(strstr(err, "does not end on this line"));
    assert_non_null(strstr(err, "2 lines, 1 accepted"));
    free(err);
}

/* text as one gzip member appended to path (mode "ab": members concatenate) */
static void
append_gzip(const char *path, const char *text, size_t cut)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, strlen(text));
    unsigned char *out = fr_malloc(cap);
    zs.next_in = (Bytef *)text;
    zs.avail_in = (uInt)strlen(text);
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t n = cap - zs.avail_out;
    deflateEnd(&zs);
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    fwrite(out, 1, cut && cut < n ? cut : n, fp);
    fclose(fp);
    free(out);
}

/* A compressed input (an archived log, a rotated spool): read decompressed, gzip members and
   zstd frames one after another; one cut short keeps what came before and fails (exit 3). */
static void
test_cli_ingest_compressed_input(void **state)
{
    struct fx *f = *state;
    char *many = NULL;
    for (int i = 0; i < 300; i++) {
        char *next = fr_asprintf("%s{\"kind\":\"runtime\",\"ts_ms\":%lld,\"conv_id\":\"gz\","
                                 "\"event_id\":\"g%d\"}\n",
                                 many ? many : "", 1771357445000LL + i, i);
        free(many);
        many = next;
    }
    unlink(f->file);
    append_gzip(f->file, many, 0);
    append_gzip(f->file, "{\"kind\":\"runtime\",\"ts_ms\":1771357446000,\"conv_id\":\"gz2\"}\n", 0);
    char *err;
    assert_int_equal(fr(NULL, &err, "ingest --db %s - < %s", f->db, f->file), 0);
    assert_non_null(strstr(err, "301 lines, 301 accepted"));
    free(err);
    char *out; /* and redact --explain reads it as ingest does */
    assert_int_equal(fr(&out, NULL, "redact --explain --db %s %s", f->db, f->file), 0);
    assert_non_null(strstr(out, "301 lines, 0 changed by the policy, 0 rejected"));
    free(out);
    size_t n = strlen(many), cap = ZSTD_compressBound(n);
    char *z = fr_malloc(cap);
    size_t zn = ZSTD_compress(z, cap, many, n, 3);
    assert_false(ZSTD_isError(zn));
    FILE *fp = fopen(f->file, "wb");
    fwrite(z, 1, zn, fp);
    fclose(fp);
    assert_int_equal(fr(NULL, &err, "ingest --db %s %s", f->db, f->file), 0);
    assert_non_null(strstr(err, "300 lines, 300 accepted (300 already stored)"));
    free(err);
    free(z);
    /* UTF-16 (PowerShell's >): said once, not a rejection per line */
    FILE *u = fopen(f->file, "wb");
    fwrite("\xff\xfe{\0\"\0k\0", 1, 8, u);
    fclose(u);
    assert_int_equal(fr(NULL, &err, "ingest --check %s", f->file), 3);
    assert_non_null(strstr(err, "UTF-16 text"));
    assert_null(strstr(err, "line 1"));
    free(err);
    /* cut short: the lines before the cut are stored, the failure said */
    unlink(f->file);
    append_gzip(f->file, many, 1500);
    assert_int_equal(fr(NULL, &err, "ingest --db %s --check %s", f->db, f->file), 3);
    assert_non_null(strstr(err, "gzip data cut short after 1500 compressed bytes"));
    free(err);
    free(many);
}

/* ingest --check: the same per-line report and exit status, nothing stored, no file made (no
   database, no key beside it), and a temporary key that is not talked about. */
static void
test_cli_ingest_check_stores_nothing(void **state)
{
    struct fx *f = *state;
    write_file(f->file, sample);
    char *out, *err;
    assert_int_equal(fr(&out, &err, "ingest --check --db %s %s", f->db, f->file), 1);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "line 2: ts_ms: must be an integer"));
    assert_non_null(strstr(err, "line 6: kind: missing"));
    assert_non_null(strstr(err, "checked "));
    assert_non_null(strstr(err, "5 lines, 3 valid, 2 rejected; nothing stored"));
    assert_non_null(strstr(err, "rejected by reason:"));
    assert_null(strstr(err, "HMAC"));
    free(out);
    free(err);
    assert_int_equal(access(f->db, F_OK), -1);
    char *data = t_path(f->dir, "data"); /* the database's folder, where its keys would be */
    assert_int_equal(access(data, F_OK), -1);
    free(data);
    /* every line valid: 0, with what redaction would change and a misnamed field said */
    write_file(f->file,
               "{\"kind\":\"tool\",\"ts_ms\":1771357445400,\"conv_id\":\"c-2\",\"data\":{\"args\":"
               "\"mail a.b@example.com\"}}\n"
               "{\"kind\":\"tool\",\"ts_ms\":1771357445401,\"traceId\":\"ab\"}\n"
               "{\"kind\":\"error\",\"ts_ms\":1771357445402,\"data\":{\"message\":\"boom\"}}\n");
    assert_int_equal(fr(NULL, &err, "ingest --check --db %s %s", f->db, f->file), 0);
    assert_non_null(strstr(err, "3 lines, 3 valid, 0 rejected; nothing stored"));
    assert_non_null(strstr(err, "line 2: warning: traceId: not an envelope field"));
    assert_non_null(strstr(err, "line 3: warning: error: missing; an event of kind error carries "
                                "its failure there"));
    assert_non_null(strstr(err, "2 events would be stored with a warning (a misnamed"));
    assert_non_null(strstr(err, "1 events would change email=1"));
    assert_null(strstr(err, "a.b@example.com"));
    free(err);
    assert_int_equal(access(f->db, F_OK), -1);
    assert_int_equal(fr(NULL, &err, "ingest --check --raw --raw-key k %s", f->file), 2);
    assert_non_null(strstr(err, "--check stores nothing: not with --raw"));
    free(err);
}

/* Under a file size limit (ulimit -f, systemd's LimitFSIZE=) a write past it fails with EFBIG
   and is named, with the lines not stored: the signal (SIGXFSZ) killed the command without a
   word (exit 153), and the store said "disk I/O error". */
static void
test_cli_ingest_file_size_limit_named(void **state)
{
    struct fx *f = *state;
    char *cmd = fr_asprintf(FR_GEN " --events 20000 --seed 3 > %s", f->file);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    char *err;
    cmd = fr_asprintf("ulimit -f 4096 && %s ingest --no-progress --batch 1000 --db %s %s", FR_BIN,
                      f->db, f->file);
    int rc = t_run(cmd, NULL, &err);
    free(cmd);
    assert_int_equal(rc, 3); /* the store could not be used; not 153, killed by SIGXFSZ */
    assert_non_null(strstr(err, "a file size limit (ulimit -f, systemd's LimitFSIZE=)"));
    assert_null(strstr(err, "disk I/O error"));
    /* the batch that failed, by its lines: a whole one of 1000 */
    const char *at = strstr(err, "flightrec ingest: storing lines ");
    assert_non_null(at);
    unsigned long long first = 0, last = 0;
    assert_int_equal(sscanf(at, "flightrec ingest: storing lines %llu-%llu failed", &first, &last),
                     2);
    assert_int_equal(first % 1000, 1);
    assert_int_equal(last, first + 999);
    free(err);
}

/* An investigation command loads only what it needs: not libcurl, libpq, libarchive or
   libmicrohttpd (and what they bring: Kerberos, LDAP, GnuTLS ...), which it opens when a
   feature needs them (core/dl.h); `flightrec version`, which names them, opens them. */
static void
test_cli_loads_only_what_it_needs(void **state)
{
    struct fx *f = *state;
    write_file(f->file, sample);
    fr(NULL, NULL, "ingest --db %s %s", f->db, f->file);
    static const char *const libs[] = {"libcurl.so",       "libpq.so",     "libarchive.so",
                                       "libmicrohttpd.so", "libgnutls.so", "libkrb5.so"};
    const char *cmds[] = {"conversations --has-errors", "show c-1", "errors --by code"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *err, *cmd = fr_asprintf("LD_DEBUG=files %s %s --db %s", FR_BIN, cmds[i], f->db);
        assert_int_equal(t_run(cmd, NULL, &err), 0);
        assert_non_null(strstr(err, "file=libsqlite3.so")); /* LD_DEBUG does list what loads */
        for (size_t k = 0; k < sizeof libs / sizeof libs[0]; k++)
            if (strstr(err, libs[k]) != NULL)
                fail_msg("flightrec %s loaded %s", cmds[i], libs[k]);
        free(err);
        free(cmd);
    }
    char *out, *err, *cmd = fr_asprintf("LD_DEBUG=files %s version", FR_BIN);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(err, "file=libcurl.so"));
    assert_non_null(strstr(err, "file=libarchive.so"));
    assert_non_null(strstr(err, "file=libmicrohttpd.so"));
    assert_null(strstr(out, " ?")); /* a library it could not open is named with "?" */
    assert_non_null(strstr(out, "libarchive 3"));
    free(out);
    free(err);
    free(cmd);
}

static void
test_cli_conversations_json_and_filters(void **state)
{
    struct fx *f = *state;
    write_file(f->file, sample);
    fr(NULL, NULL, "ingest --db %s %s", f->db, f->file);
    char *out;
    assert_int_equal(fr(&out, NULL, "conversations --db %s --json", f->db), 0);
    json_t *arr = json_loads(out, 0, NULL);
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 1);
    json_t *c = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(c, "conv_id")), "c-1");
    assert_int_equal(json_integer_value(json_object_get(c, "event_count")), 3);
    /* without --db: the store named by the agent configuration in $FLIGHTREC_CONFIG */
    char *cfg = t_path(f->dir, "agent.yaml"), *yaml = fr_asprintf("storage:\n  path: %s\n", f->db);
    write_file(cfg, yaml);
    char *cmd = fr_asprintf("FLIGHTREC_DB= FLIGHTREC_CONFIG=%s %s conversations", cfg, FR_BIN);
    char *out2;
    assert_int_equal(t_run(cmd, &out2, NULL), 0);
    assert_non_null(strstr(out2, "c-1"));
    free(out2);
    free(cmd);
    free(yaml);
    free(cfg);
    assert_int_equal(json_integer_value(json_object_get(c, "error_count")), 1);
    json_decref(arr);
    free(out);
    /* a filter that matches nothing gives an empty list, not an error */
    assert_int_equal(fr(&out, NULL, "conversations --db %s --json --status closed", f->db), 0);
    arr = json_loads(out, 0, NULL);
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    free(out);
    /* table form */
    assert_int_equal(fr(&out, NULL, "conversations --db %s --has-errors", f->db), 0);
    assert_non_null(strstr(out, "CONV_ID"));
    assert_non_null(strstr(out, "c-1"));
    free(out);
    /* by what the events hold: code, class, provider, model, tool */
    static const char *const hit[] = {"--code provider.rate_limited", "--class provider",
                                      "--provider openai --model gpt-4o", "--tool search"};
    static const char *const miss[] = {"--code tool.timeout", "--class tool", "--model gpt-4o-mini",
                                       "--tool search --provider anthropic"};
    for (size_t i = 0; i < 4; i++)
        for (int m = 0; m < 2; m++) {
            assert_int_equal(
                fr(&out, NULL, "conversations --db %s --json %s", f->db, m ? miss[i] : hit[i]), 0);
            arr = json_loads(out, 0, NULL);
            if (json_array_size(arr) != (m ? 0U : 1U))
                fail_msg("conversations %s: %zu listed", m ? miss[i] : hit[i],
                         json_array_size(arr));
            json_decref(arr);
            free(out);
        }
    char *err;
    assert_int_equal(fr(NULL, &err, "conversations --db %s --since tomorrowish", f->db), 2);
    assert_non_null(strstr(err, "--since"));
    free(err);
    assert_int_equal(fr(NULL, &err, "conversations --db %s --class slow", f->db), 2);
    assert_non_null(strstr(err, "--class: 'slow' is not one of"));
    free(err);
    assert_int_equal(fr(NULL, &err, "conversations --db %s --summaries --model gpt-4o", f->db), 2);
    assert_non_null(strstr(err, "--summaries takes only --since and --limit"));
    free(err);
}

static void
test_cli_show_ordered_view(void **state)
{
    struct fx *f = *state;
    write_file(f->file, sample);
    fr(NULL, NULL, "ingest --db %s %s", f->db, f->file);
    char *out;
    assert_int_equal(fr(&out, NULL, "show --db %s --json c-1", f->db), 0);
    json_t *o = json_loads(out, 0, NULL);
    assert_non_null(o);
    json_t *evs = json_object_get(o, "events");
    assert_int_equal(json_array_size(evs), 3);
    static const char *const kinds[] = {"conversation", "provider", "tool"};
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(evs, i);
        assert_string_equal(json_string_value(json_object_get(e, "kind")), kinds[i]);
    }
    json_t *meta = json_object_get(json_array_get(evs, 1), "flightrec");
    assert_string_equal(json_string_value(json_object_get(meta, "error_code")),
                        "provider.rate_limited");
    meta = json_object_get(json_array_get(evs, 2), "flightrec");
    assert_int_equal(json_integer_value(json_object_get(meta, "duration_ms")), 50);
    json_decref(o);
    free(out);
    assert_int_equal(fr(&out, NULL, "show --db %s --kind tool c-1", f->db), 0);
    assert_non_null(strstr(out, "search"));
    assert_null(strstr(out, "gpt-4o"));
    free(out);
    /* a part of it: the end, a page, failures only, a time range; each in order */
    static const char *const parts[][2] = {
        {"--last 2", "provider tool "},
        {"--offset 1 --limit 1", "provider "},
        {"--offset 2", "tool "},
        {"--errors", "provider "},
        {"--since 1771357445250", "tool "},
        {"--until 1771357445150", "conversation "},
        {"--since 1771357445150 --last 5", "provider tool "},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        char *perr;
        assert_int_equal(fr(&out, &perr, "show --db %s --ndjson %s c-1", f->db, parts[i][0]), 0);
        char got[128] = "";
        for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            json_t *ev = json_loads(line, 0, NULL);
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s ",
                     json_string_value(json_object_get(ev, "kind")));
            json_decref(ev);
        }
        assert_string_equal(got, parts[i][1]);
        if (i < 3) /* a slice says which of how many */
            assert_non_null(strstr(perr, " of 3 events shown"));
        free(out);
        free(perr);
    }
    assert_int_equal(fr(&out, NULL, "show --db %s --json --last 1 c-1", f->db), 0);
    o = json_loads(out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(o, "total_events")), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "offset")), 2);
    assert_int_equal(json_array_size(json_object_get(o, "events")), 1);
    json_decref(o);
    free(out);
    char *err;
    assert_int_equal(fr(NULL, &err, "show --db %s --last 0 c-1", f->db), 2);
    assert_non_null(strstr(err, "--last: expected a number of events"));
    free(err);
    assert_int_equal(fr(NULL, &err, "show --db %s --last 1 --limit 1 c-1", f->db), 2);
    assert_non_null(strstr(err, "not with --offset or --limit"));
    free(err);
    assert_int_equal(fr(NULL, &err, "show --db %s nobody", f->db), 4);
    assert_non_null(strstr(err, "no conversation nobody\n"));
    free(err);
    /* an id cut short: the conversations it starts are named */
    assert_int_equal(fr(NULL, &err, "show --db %s c-", f->db), 4);
    assert_non_null(
        strstr(err, "no conversation c-; did you mean c-1? (the one conversation whose id starts "
                    "with it)"));
    free(err);
    write_file(f->file, "{\"kind\":\"tool\",\"ts_ms\":1771357445500,\"conv_id\":\"c-10\"}\n"
                        "{\"kind\":\"tool\",\"ts_ms\":1771357445600,\"conv_id\":\"c-11\"}\n");
    assert_int_equal(fr(NULL, NULL, "ingest --no-progress --db %s %s", f->db, f->file), 0);
    assert_int_equal(fr(NULL, &err, "show --db %s c-", f->db), 4);
    assert_non_null(strstr(
        err, "no conversation c-; conversations whose id starts with it: c-11, c-10, c-1\n"));
    free(err);
    assert_int_equal(fr(&out, NULL, "conversations --db %s --prefix c-1 --json", f->db), 0);
    o = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(o), 3);
    json_decref(o);
    free(out);
    assert_int_equal(fr(&out, NULL, "conversations --db %s --prefix c-10 --json", f->db), 0);
    o = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(o), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(o, 0), "conv_id")),
                        "c-10");
    json_decref(o);
    free(out);
    assert_int_equal(fr(NULL, &err, "conversations --db %s --prefix ''", f->db), 2);
    assert_non_null(strstr(err, "--prefix: expected the start of a conversation id"));
    free(err);
}

static void
test_cli_errors_and_stats(void **state)
{
    struct fx *f = *state;
    write_file(f->file, sample);
    fr(NULL, NULL, "ingest --db %s %s", f->db, f->file);
    char *out, *err;
    assert_int_equal(fr(&out, NULL, "errors --db %s", f->db), 0);
    assert_non_null(strstr(out, "provider.rate_limited"));
    assert_non_null(strstr(out, "gpt-4o"));
    assert_non_null(strstr(out, "429 Too Many Requests"));
    free(out);
    assert_int_equal(fr(&out, NULL, "errors --db %s --by code", f->db), 0);
    assert_non_null(strstr(out, "CODE"));
    assert_non_null(strstr(out, "provider.rate_limited"));
    free(out);
    assert_int_equal(fr(&out, &err, "errors --db %s --class tool", f->db), 0);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "no failures match"));
    free(out);
    free(err);
    assert_int_equal(fr(&out, NULL, "stats --db %s", f->db), 0);
    assert_non_null(strstr(out, "openai"));
    free(out);
    assert_int_equal(fr(&out, NULL, "stats --db %s --by tool", f->db), 0);
    assert_non_null(strstr(out, "search"));
    free(out);
    /* how calls ended, per finish reason and model: answers cut short or filtered although the
       call succeeded */
    write_file(f->file,
               "{\"kind\":\"provider\",\"ts_ms\":1771357446000,\"conv_id\":\"c-f\",\"data\":{"
               "\"model\":\"gpt-4o\",\"status\":\"ok\",\"finish_reason\":\"length\","
               "\"usage\":{\"output_tokens\":4096}}}\n"
               "{\"kind\":\"provider\",\"ts_ms\":1771357446100,\"conv_id\":\"c-f\",\"data\":{"
               "\"model\":\"gemini-2.5-pro\",\"status\":\"ok\",\"finish_reason\":\"SAFETY\"}}\n"
               "{\"kind\":\"provider\",\"ts_ms\":1771357446200,\"conv_id\":\"c-f\",\"data\":{"
               "\"model\":\"gpt-4o\",\"status\":\"ok\",\"finish_reason\":\"length\"}}\n");
    fr(NULL, NULL, "ingest --db %s %s", f->db, f->file);
    assert_int_equal(fr(&out, NULL, "stats --db %s --by finish", f->db), 0);
    assert_non_null(strstr(out, "FINISH"));
    assert_non_null(strstr(out, "MEANING"));
    char *len = strstr(out, "\nlength "), *safety = strstr(out, "\nSAFETY ");
    assert_non_null(len);
    assert_non_null(safety);
    assert_true(len < safety); /* busiest first */
    /* reason, meaning, model, calls, errors, then the tokens */
    char reason[32], meaning[32], model[32];
    long long calls, errors, in, outt;
    assert_int_equal(sscanf(len + 1, "%31s %31s %31s %lld %lld %lld %lld", reason, meaning, model,
                            &calls, &errors, &in, &outt),
                     7);
    assert_string_equal(meaning, "truncated");
    assert_string_equal(model, "gpt-4o");
    assert_int_equal(calls, 2);
    assert_int_equal(outt, 4096);
    assert_int_equal(sscanf(safety + 1, "%31s %31s %31s %lld", reason, meaning, model, &calls), 4);
    assert_string_equal(meaning, "filtered");
    assert_string_equal(model, "gemini-2.5-pro");
    assert_int_equal(calls, 1);
    free(out);
    /* show says so under each such call, and tail as each is committed */
    static const char cut_note[] =
        "~~ the answer stopped at the token limit (finish_reason length)",
                      filtered_note[] =
                          "~~ the answer was filtered or refused (finish_reason SAFETY)";
    assert_int_equal(fr(&out, NULL, "show --db %s c-f", f->db), 0);
    char *first = strstr(out, cut_note);
    assert_non_null(first);
    assert_non_null(strstr(first + 1, cut_note));
    assert_non_null(strstr(out, filtered_note));
    free(out);
    assert_int_equal(fr(&out, NULL, "tail --db %s --conv c-f --from-start --count 3", f->db), 0);
    assert_non_null(strstr(out, cut_note));
    assert_non_null(strstr(out, filtered_note));
    free(out);
    assert_int_equal(fr(NULL, &err, "stats --db %s --by colour", f->db), 2);
    assert_non_null(strstr(err, "--by"));
    free(err);
    assert_int_equal(fr(NULL, &err, "errors --db %s --class nope", f->db), 2);
    assert_non_null(strstr(err, "--class"));
    free(err);
    assert_int_equal(fr(NULL, &err, "errors --db %s --by colour", f->db), 2);
    free(err);
    assert_int_equal(fr(&out, NULL, "errors --db %s --ndjson", f->db), 0);
    json_t *line = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(json_object_get(line, "error_code"));
    json_decref(line);
    free(out);
    /* a range off whole minutes is read as whole minutes, and stats says so */
    assert_int_equal(fr(&out, &err, "stats --db %s --since 2026-02-17T19:44:05Z", f->db), 0);
    assert_non_null(strstr(err, "whole minutes"));
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "stats --db %s --since 2026-02-17T19:44:00Z", f->db), 0);
    assert_null(strstr(err, "whole minutes"));
    free(out);
    free(err);
    /* a time in seconds is refused as at ingest, not read as 1970 */
    assert_int_equal(fr(&out, &err, "conversations --db %s --since 1771357445", f->db), 2);
    assert_non_null(strstr(err, "looks like seconds"));
    free(out);
    free(err);
}

static void
test_cli_missing_db_and_usage_errors(void **state)
{
    struct fx *f = *state;
    char *err;
    assert_int_equal(fr(NULL, &err, "conversations --db %s/none.db", f->dir), 4);
    assert_non_null(strstr(err, "no database"));
    free(err);
    assert_int_equal(fr(NULL, &err, "ingest --db %s %s/missing.ndjson", f->db, f->dir), 3);
    free(err);
    assert_int_equal(fr(NULL, &err, "ingest --batch 0 --db %s x", f->db), 2);
    assert_non_null(strstr(err, "--batch"));
    free(err);
    assert_int_equal(fr(NULL, &err, "frobnicate"), 2);
    assert_non_null(strstr(err, "unknown command"));
    free(err);
    static const char *const cmds[] = {"ingest", "conversations", "show", "errors", "stats"};
    for (size_t i = 0; i < 5; i++) {
        char *out;
        assert_int_equal(fr(&out, NULL, "%s --help", cmds[i]), 0);
        char want[64];
        snprintf(want, sizeof want, "usage: flightrec %s", cmds[i]);
        assert_non_null(strstr(out, want));
        free(out);
    }
}

static const char secret_line[] =
    "{\"kind\":\"tool\",\"ts_ms\":1771357445100,\"conv_id\":\"r-1\",\"data\":{\"name\":"
    "\"http\",\"args\":{\"q\":\"mail ops@example.org key "
    "sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE6gI8kM0oQ\"}}}\n";

/* redact --explain names paths, detectors and offsets, never the values */
static void
test_cli_redact_explain(void **state)
{
    struct fx *f = *state;
    write_file(f->file, secret_line);
    char *out, *err;
    assert_int_equal(fr(&out, &err, "redact --explain --db %s %s", f->db, f->file), 0);
    assert_non_null(strstr(out, "line 1: data.args.q: email [5,20) hmac:"));
    assert_non_null(strstr(out, "line 1: data.args.q: openai_key [25,"));
    assert_non_null(strstr(out, "hits per detector: openai_key=1 email=1"));
    assert_null(strstr(out, "ops@example.org"));
    assert_null(strstr(out, "Zq8XbN3k"));
    assert_null(strstr(err, "Zq8XbN3k"));
    free(out);
    free(err);
    /* a credential named only by its key: the rule that matched is named */
    write_file(f->file, "{\"kind\":\"tool\",\"ts_ms\":1760000000000,\"conv_id\":\"c\","
                        "\"data\":{\"name\":\"t\",\"args\":{\"db_password\":\"hunter2hunter2\","
                        "\"max_tokens\":100,\"githubToken\":\"opaque\"}}}\n");
    assert_int_equal(fr(&out, &err, "redact --explain --db %s %s", f->db, f->file), 0);
    assert_non_null(strstr(out, "data.args.db_password: tag secret"));
    assert_non_null(strstr(out, "(key rule: password)"));
    assert_non_null(strstr(out, "data.args.githubToken: tag secret"));
    assert_non_null(strstr(out, "(key rule: token)"));
    assert_null(strstr(out, "max_tokens"));
    assert_null(strstr(out, "hunter2"));
    free(out);
    free(err);
    /* a uint64 past 2^63 beside a secret: read as ingest reads it (kept as a string), so the
       secret's hit is explained, not the line rejected */
    write_file(f->file, "{\"kind\":\"tool\",\"ts_ms\":1760000000000,\"conv_id\":\"c\","
                        "\"data\":{\"hash\":14695981039346656037,\"args\":{\"q\":\"mail "
                        "ops@example.org\"}}}\n");
    assert_int_equal(fr(&out, &err, "redact --explain --db %s %s", f->db, f->file), 0);
    assert_non_null(strstr(out, "line 1: data.args.q: email [5,20)"));
    assert_non_null(strstr(out, "1 lines, 1 changed by the policy, 0 rejected"));
    free(out);
    free(err);
    /* redact --explain writes nothing: no key file appears (a temporary key, said so); the
       first command that stores hashed data makes it, owner-only */
    char *key = t_path(f->dir, "keys/hmac.key");
    assert_int_equal(access(key, F_OK), -1);
    assert_int_equal(fr(&out, &err, "redact --explain --db %s %s", f->db, f->file), 0);
    assert_non_null(strstr(err, "temporary key"));
    free(out);
    free(err);
    assert_int_equal(access(key, F_OK), -1);
    write_file(f->file, sample);
    assert_int_equal(fr(&out, &err, "ingest --no-progress --db %s %s", f->db, f->file), 1);
    free(out);
    free(err);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(key);
    /* a bad user policy names file and line */
    char *pol = t_path(f->dir, "policy.yaml");
    write_file(pol, "actions:\n  pii: shred\n");
    assert_int_equal(fr(NULL, &err, "redact --explain --redaction %s %s", pol, f->file), 2);
    assert_non_null(strstr(err, "policy.yaml:2: actions: unknown action 'shred'"));
    free(err);
    free(pol);
}

/* raw mode: off by default, needs a chosen key, readable only with it */
static void
test_cli_raw_mode(void **state)
{
    struct fx *f = *state;
    write_file(f->file, secret_line);
    char *out, *err;
    char *rawkey = t_path(f->dir, "secure/raw.key"), *other = t_path(f->dir, "other.key");
    assert_int_equal(fr(NULL, &err, "ingest --raw --db %s %s", f->db, f->file), 2);
    assert_non_null(strstr(err, "--raw needs --raw-key"));
    free(err);
    assert_int_equal(fr(NULL, NULL, "ingest --raw --raw-key %s --db %s %s", rawkey, f->db, f->file),
                     0);
    /* the redacted view, then the raw one with the key */
    assert_int_equal(fr(&out, NULL, "show --json --db %s r-1", f->db), 0);
    assert_null(strstr(out, "Zq8XbN3k"));
    assert_non_null(strstr(out, "[REDACTED:openai_key]"));
    assert_non_null(strstr(out, "\"redaction_policy\""));
    free(out);
    assert_int_equal(fr(&out, NULL, "show --raw --raw-key %s --db %s r-1", rawkey, f->db), 0);
    assert_non_null(strstr(out, "sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE6gI8kM0oQ"));
    free(out);
    /* without the key, or with another one, nothing raw comes back */
    assert_int_equal(fr(&out, &err, "show --raw --db %s r-1", f->db), 2);
    assert_null(strstr(out, "Zq8XbN3k"));
    free(out);
    free(err);
    write_file(other, "0000000000000000000000000000000000000000000000000000000000000000\n");
    chmod(other, 0600);
    assert_int_equal(fr(&out, &err, "show --raw --raw-key %s --db %s r-1", other, f->db), 3);
    assert_null(strstr(out, "Zq8XbN3k"));
    assert_non_null(strstr(err, "does not hold"));
    free(out);
    free(err);
    /* rotated: the payload sealed with the now retired key still opens */
    assert_int_equal(fr(&out, NULL, "keys rotate %s", rawkey), 0);
    free(out);
    assert_int_equal(fr(&out, NULL, "show --raw --raw-key %s --db %s r-1", rawkey, f->db), 0);
    assert_non_null(strstr(out, "sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE6gI8kM0oQ"));
    free(out);
    /* a key file others can read is refused */
    chmod(other, 0644);
    assert_int_equal(fr(NULL, &err, "show --raw --raw-key %s --db %s r-1", other, f->db), 2);
    assert_non_null(strstr(err, "chmod 600"));
    free(err);
    free(rawkey);
    free(other);
}

/*
 * Selections that cannot match are said so: an unknown error class or a
 * code that is not <class>.<reason> is a usage error (2), a conversation
 * with no events is "not found" (4) and leaves no bundle behind, --since
 * after --until is a usage error for the query commands too.
 */
static void
test_cli_incident_and_range_selection_errors(void **state)
{
    struct fx *f = *state;
    write_file(f->file, sample);
    char *out = NULL, *err = NULL;
    assert_int_equal(fr(&out, &err, "ingest --no-progress --db %s %s", f->db, f->file), 1);
    free(out);
    free(err);
    char *bundle = t_path(f->dir, "b.tar.zst");
    assert_int_equal(fr(&out, &err, "incident create --db %s --conv nope --out %s", f->db, bundle),
                     4);
    assert_non_null(strstr(err, "no event matches the selection"));
    assert_int_equal(access(bundle, F_OK), -1);
    free(out);
    free(err);
    assert_int_equal(
        fr(&out, &err, "incident create --db %s --error-class bogus --out %s", f->db, bundle), 2);
    assert_non_null(strstr(err, "--error-class: 'bogus' is not one of validation"));
    free(out);
    free(err);
    assert_int_equal(
        fr(&out, &err, "incident create --db %s --error-code ratelimited --out %s", f->db, bundle),
        2);
    assert_non_null(strstr(err, "is not a taxonomy code"));
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "incident create --db %s --conv c-1 --out %s", f->db, bundle),
                     0);
    assert_int_equal(access(bundle, F_OK), 0);
    free(out);
    free(err);
    /* without --out: into bundles/ beside the database, not the current folder */
    assert_int_equal(fr(&out, &err, "incident create --db %s --conv c-1", f->db), 0);
    char *dir = t_path(f->dir, "data/bundles/");
    assert_int_equal(strncmp(out, dir, strlen(dir)), 0);
    out[strcspn(out, "\n")] = '\0';
    assert_int_equal(access(out, F_OK), 0);
    free(dir);
    free(out);
    free(err);
    assert_int_equal(
        fr(&out, &err, "conversations --db %s --since 2026-02-18 --until 2026-02-17", f->db), 2);
    assert_non_null(strstr(err, "--since is after --until"));
    free(out);
    free(err);
    free(bundle);
}

/* Bytes of a file, for "left as it was". */
static char *
file_bytes(const char *path, size_t *len)
{
    char *b = NULL;
    *len = 0;
    if (fr_read_file(path, &b, len, NULL) != FR_OK)
        return NULL;
    return b;
}

/*
 * Read-only commands never write into a file that is not theirs: another
 * program's SQLite database or an empty file is "not a flightrec database"
 * (exit 3) and is left byte for byte as it was (no tables, no WAL switch,
 * no user_version); an absent one is exit 4 and is not created.
 */
static void
test_cli_read_commands_leave_foreign_files_alone(void **state)
{
    struct fx *f = *state;
    char *other = t_path(f->dir, "other.db"), *empty = t_path(f->dir, "empty.db"),
         *absent = t_path(f->dir, "absent.db");
    sqlite3 *h;
    assert_int_equal(sqlite3_open(other, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "CREATE TABLE users(id INTEGER)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    write_file(empty, "");
    size_t olen, elen;
    char *before = file_bytes(other, &olen);
    static const char *const cmds[] = {"conversations", "show c-1", "errors", "stats",
                                       "incident create --conv c-1"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        const char *dbs[] = {other, empty};
        for (int k = 0; k < 2; k++) {
            char *out = NULL, *err = NULL;
            int ex = fr(&out, &err, "%s --db %s", cmds[i], dbs[k]);
            if (ex != 3 || strstr(err, "not a flightrec database") == NULL)
                fail_msg("%s on %s: exit %d, %s", cmds[i], dbs[k], ex, err);
            free(out);
            free(err);
        }
        char *out = NULL, *err = NULL;
        assert_int_equal(fr(&out, &err, "%s --db %s", cmds[i], absent), 4);
        assert_int_equal(access(absent, F_OK), -1);
        free(out);
        free(err);
    }
    size_t nlen;
    char *after = file_bytes(other, &nlen);
    assert_int_equal(nlen, olen);
    assert_memory_equal(after, before, olen);
    char *e = file_bytes(empty, &elen);
    assert_int_equal(elen, 0);
    char *wal = fr_asprintf("%s-wal", other);
    assert_int_equal(access(wal, F_OK), -1);
    free(wal);
    free(e);
    free(after);
    free(before);
    free(other);
    free(empty);
    free(absent);
}

/*
 * A producer's text cannot drive the reader's terminal: escape sequences
 * (OSC title, clear screen), carriage returns and C1 controls in stored
 * fields are printed visibly by show, conversations, errors and incident
 * open; incident open says a bundle is unverified unless --pubkey checks it.
 */
static void
test_cli_terminal_escapes_shown_not_sent(void **state)
{
    struct fx *f = *state;
    write_file(
        f->file,
        "{\"kind\":\"tool\",\"ts_ms\":1771357445000,\"conv_id\":\"esc\\u001b]0;pwned\\u0007\","
        "\"data\":{\"name\":\"t\\u001b[2J\\r\",\"status\":\"error\"},\"error\":{"
        "\"code\":\"tool.timeout\",\"message\":\"boom\\u001b[31m\\u009b2J\"}}\n");
    char *out = NULL, *err = NULL;
    assert_int_equal(fr(&out, &err, "ingest --no-progress --db %s %s", f->db, f->file), 0);
    free(out);
    free(err);
    static const char *const cmds[] = {"show 'esc\033]0;pwned\007'", "conversations", "errors"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        assert_int_equal(fr(&out, &err, "%s --db %s", cmds[i], f->db), 0);
        if (strchr(out, '\033') != NULL || strchr(out, '\r') != NULL ||
            strstr(out, "\xc2\x9b") != NULL)
            fail_msg("%s printed a control character: %s", cmds[i], out);
        assert_non_null(strstr(out, "\\x1b"));
        free(out);
        free(err);
    }
    char *bundle = t_path(f->dir, "b.tar.zst");
    assert_int_equal(fr(&out, &err, "incident create --db %s --conv 'esc\033]0;pwned\007' --out %s",
                        f->db, bundle),
                     0);
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "incident open %s", bundle), 0);
    assert_non_null(strstr(err, "UNVERIFIED"));
    assert_null(strchr(out, '\033'));
    free(out);
    free(err);
    char *pub = t_path(f->dir, "keys/signing.pub.pem");
    assert_int_equal(fr(&out, &err, "incident open %s --pubkey %s", bundle, pub), 0);
    assert_null(strstr(err, "UNVERIFIED"));
    assert_null(strchr(out, '\033'));
    assert_non_null(strstr(out, "\\x1b"));
    free(out);
    free(err);
    free(pub);
    free(bundle);
}

/*
 * A failed `incident upload` keeps the bundle in the outbox with every HTTP
 * (or file) attempt counted and the last error, and `outbox retry` adds its
 * own attempts to them (it counted rounds, and forgot the first upload's).
 */
static void
test_cli_failed_upload_counts_attempts(void **state)
{
    struct fx *f = *state;
    write_file(f->file, sample);
    char *out = NULL, *err = NULL;
    assert_int_equal(fr(&out, &err, "ingest --no-progress --db %s %s", f->db, f->file), 1);
    free(out);
    free(err);
    char *bundle = t_path(f->dir, "b.tar.zst"), *yaml = t_path(f->dir, "up.yaml");
    assert_int_equal(fr(&out, &err, "incident create --db %s --conv c-1 --out %s", f->db, bundle),
                     0);
    free(out);
    free(err);
    char *text = fr_asprintf("outbox: %s/outbox\ntargets:\n  - name: t\n"
                             "    url: file://%s/no/such/dir/{name}\n    max_attempts: 2\n"
                             "    backoff_base_ms: 1\n",
                             f->dir, f->dir);
    write_file(yaml, text);
    free(text);
    assert_int_equal(fr(&out, &err, "incident upload %s --to t --targets %s", bundle, yaml), 3);
    assert_non_null(strstr(err, "1 attempt(s)")); /* a missing directory is not retried */
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "outbox list --targets %s", yaml), 0);
    if (strstr(out, "attempts 1 ") == NULL || strstr(out, "does not exist") == NULL)
        fail_msg("outbox list after a failed upload: %s", out);
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "outbox retry --targets %s", yaml), 3);
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "outbox list --targets %s", yaml), 0);
    if (strstr(out, "attempts 2 ") == NULL)
        fail_msg("outbox list after a retry: %s", out);
    free(out);
    free(err);
    free(bundle);
    free(yaml);
}

/* The test tools check their arguments like the product does, and bind loopback only. */
static void
test_cli_test_tools_check_arguments(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(t_run(FR_GEN " --events abc", &out, &err), 2);
    assert_non_null(strstr(err, "--events: expected a whole number"));
    assert_int_equal(out == NULL || out[0] == '\0', true);
    free(out);
    free(err);
    assert_int_equal(t_run(FR_GEN " --events 3", &out, &err), 0);
    assert_non_null(strstr(out, "\"kind\""));
    free(out);
    free(err);
    assert_int_equal(t_run(FR_SINK " --help", &out, &err), 0); /* help, not a server */
    assert_non_null(strstr(out, "usage: fr-sink"));
    free(out);
    free(err);
    assert_int_equal(t_run(FR_SINK " nope", &out, &err), 2);
    free(out);
    free(err);
}

static const char by_ids[] =
    "{\"kind\":\"tool\",\"ts_ms\":1771357445100,\"conv_id\":\"c-a\",\"trace_id\":\"t1\","
    "\"request_id\":\"r1\",\"data\":{\"name\":\"search\"}}\n"
    "{\"kind\":\"tool\",\"ts_ms\":1771357445200,\"conv_id\":\"c-b\",\"trace_id\":\"t1\","
    "\"session_id\":\"s9\",\"data\":{\"name\":\"fetch\"}}\n"
    "{\"kind\":\"tool\",\"ts_ms\":1771357445300,\"conv_id\":\"c-c\",\"trace_id\":\"t2\","
    "\"data\":{\"name\":\"other\"}}\n";

/* Look-ups by trace, request and session id, across conversations, through an index. */
static void
test_cli_show_by_trace_request_session(void **state)
{
    struct fx *f = *state;
    write_file(f->file, by_ids);
    char *out = NULL, *err = NULL;
    assert_int_equal(fr(&out, &err, "ingest --no-progress --db %s %s", f->db, f->file), 0);
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "show --db %s --trace-id t1", f->db), 0);
    assert_non_null(strstr(out, "conversation c-a"));
    assert_non_null(strstr(out, "conversation c-b"));
    assert_null(strstr(out, "c-c"));
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "show --db %s --request-id r1 --json", f->db), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "events")), 1);
    json_decref(j);
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "show --db %s --session-id s9", f->db), 0);
    assert_non_null(strstr(out, "conversation c-b"));
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "show --db %s --trace-id nope", f->db), 4);
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "show --db %s --trace-id t1 --session-id s9", f->db), 2);
    free(out);
    free(err);
    /* through indexes, not a scan of every event: the store's query (sqlite_query.c) reads
       the trace's conversations, then each one's events of the trace */
    char *q = fr_asprintf("sqlite3 %s \"EXPLAIN QUERY PLAN SELECT * FROM events WHERE "
                          "trace_id = 't1' AND id IN (%s)\"",
                          f->db, SQ_TRACE_EVENT_IDS("'t1'"));
    assert_int_equal(t_run(q, &out, NULL), 0);
    assert_non_null(strstr(out, "COVERING INDEX events_conv (conv_id=?)"));
    assert_non_null(strstr(out, "events_trace_noconv (trace_id=?)"));
    assert_non_null(strstr(out, "PRIMARY KEY (trace_id=?)")); /* trace_convs */
    assert_null(strstr(out, "SCAN events"));
    assert_null(strstr(out, "SCAN e "));
    free(out);
    free(q);
}

/*
 * tail follows events as they are committed: what was stored (with
 * --from-start) and then what arrives, filtered, and stops after --count.
 */
static void
test_cli_tail_follows(void **state)
{
    struct fx *f = *state;
    write_file(f->file,
               "{\"kind\":\"tool\",\"ts_ms\":1771357445000,\"conv_id\":\"t-1\","
               "\"data\":{\"name\":\"first\",\"args\":{\"q\":\"mail jane@example.com\"}}}\n");
    char *out = NULL, *err = NULL;
    assert_int_equal(fr(&out, &err, "ingest --no-progress --db %s %s", f->db, f->file), 0);
    free(out);
    free(err);
    char *more = t_path(f->dir, "more.ndjson"), *got = t_path(f->dir, "tail.out");
    write_file(more, "{\"kind\":\"tool\",\"ts_ms\":1771357446000,\"conv_id\":\"t-2\","
                     "\"data\":{\"name\":\"skipped\"}}\n"
                     "{\"kind\":\"tool\",\"ts_ms\":1771357447000,\"conv_id\":\"t-1\","
                     "\"data\":{\"name\":\"second\"}}\n");
    /* tail runs while the second ingest commits; it ends by itself after 2 events of t-1 */
    char *cmd = fr_asprintf("(timeout 60 %s tail --db %s --conv t-1 --from-start --count 2 "
                            "--interval 20 --json > %s; echo \"tail exit $?\" >> %s) & "
                            "%s ingest --no-progress --db %s %s; wait",
                            FR_BIN, f->db, got, got, FR_BIN, f->db, more);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    char *text;
    size_t len;
    assert_int_equal(fr_read_file(got, &text, &len, NULL), FR_OK);
    assert_non_null(strstr(text, "first"));
    assert_non_null(strstr(text, "second"));
    assert_null(strstr(text, "skipped"));
    assert_non_null(strstr(text, "tail exit 0"));
    free(text);
    free(more);
    free(got);
    /* --text: what was said under each row, redacted as stored */
    assert_int_equal(fr(&out, &err, "tail --db %s --conv t-1 --from-start --count 1 --text", f->db),
                     0);
    assert_non_null(strstr(out, "first"));
    assert_non_null(strstr(out, "args: {\"q\":\"mail [REDACTED:email]\"}\n"));
    assert_null(strstr(out, "jane@"));
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "tail --db %s --json --text --count 1", f->db), 2);
    assert_non_null(strstr(err, "--json and --text"));
    free(out);
    free(err);
}

/* show --text prints what was said (as stored, redacted); --ndjson streams one event a line. */
static void
test_cli_show_text_and_ndjson(void **state)
{
    struct fx *f = *state;
    write_file(f->file,
               "{\"kind\":\"provider\",\"ts_ms\":1771357445000,\"conv_id\":\"tx\",\"data\":{"
               "\"provider\":\"openai\",\"model\":\"gpt-4o\",\"request\":{\"messages\":[{\"role\":"
               "\"user\",\"content\":\"refund please, mail jane@example.com\"}]},\"response\":{"
               "\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Refunds within "
               "30 days.\"}}]}}}\n"
               "{\"kind\":\"tool\",\"ts_ms\":1771357446000,\"conv_id\":\"tx\",\"data\":{\"name\":"
               "\"search\",\"args\":{\"q\":\"refund\"},\"result\":\"found 3\"}}\n"
               /* the GenAI conventions' parts, and the Vercel AI SDK's content parts */
               "{\"kind\":\"provider\",\"ts_ms\":1771357447000,\"conv_id\":\"tx\",\"data\":{"
               "\"provider\":\"openai\",\"request\":{\"messages\":[{\"role\":\"user\","
               "\"parts\":[{\"type\":\"text\",\"content\":\"weather?\"}]},{\"role\":\"tool\","
               "\"parts\":[{\"type\":\"tool_call_response\",\"id\":\"c1\",\"response\":{\"sky\":"
               "\"sunny\"}}]},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool-call\","
               "\"toolName\":\"lookup\",\"input\":{\"id\":7}}]}]},\"response\":{\"messages\":[{"
               "\"role\":\"assistant\",\"parts\":[{\"type\":\"tool_call\",\"name\":\"get_weather\","
               "\"arguments\":{\"city\":\"Paris\"}}]}]}}}\n"
               /* system instructions; text and the calls asked for, in one message */
               "{\"kind\":\"provider\",\"ts_ms\":1771357448000,\"conv_id\":\"tx\",\"data\":{"
               "\"provider\":\"openai\",\"request\":{\"system\":\"You are a support bot\","
               "\"messages\":[{\"role\":\"assistant\",\"content\":\"checking\",\"tool_calls\":[{"
               "\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"refund\","
               "\"arguments\":\"{\\\"order\\\":9}\"}}]}]},\"response\":{\"content\":\"Done.\","
               "\"tool_calls\":[{\"toolName\":\"notify\",\"input\":{\"to\":\"ops\"}}]}}}\n");
    char *out = NULL, *err = NULL;
    assert_int_equal(fr(&out, &err, "ingest --no-progress --db %s %s", f->db, f->file), 0);
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "show tx --db %s --text", f->db), 0);
    assert_non_null(strstr(out, "system: You are a support bot\n"));
    const char *text = strstr(out, "assistant: checking\n"),
               *call = strstr(out, "assistant: refund({\"order\":9})\n");
    assert_non_null(text);
    assert_true(call > text);
    text = strstr(out, "assistant: Done.\n");
    call = strstr(out, "assistant: notify({\"to\":\"ops\"})\n");
    assert_non_null(text);
    assert_true(call > text);
    assert_non_null(strstr(out, "user: refund please, mail [REDACTED:email]"));
    assert_non_null(strstr(out, "assistant: Refunds within 30 days."));
    assert_non_null(strstr(out, "args: {\"q\":\"refund\"}"));
    assert_non_null(strstr(out, "user: weather?\n"));
    assert_non_null(strstr(out, "tool: {\"sky\":\"sunny\"}\n"));
    assert_non_null(strstr(out, "assistant: lookup({\"id\":7})\n"));
    assert_non_null(strstr(out, "assistant: get_weather({\"city\":\"Paris\"})\n"));
    assert_null(strstr(out, "jane@"));
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "show tx --db %s --ndjson", f->db), 0);
    size_t lines = 0;
    for (char *l = strtok(out, "\n"); l != NULL; l = strtok(NULL, "\n")) {
        json_t *j = json_loads(l, 0, NULL);
        assert_non_null(j);
        json_decref(j);
        lines++;
    }
    assert_int_equal(lines, 4);
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "conversations --db %s --ndjson", f->db), 0);
    json_t *j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "conv_id")), "tx");
    json_decref(j);
    free(out);
    free(err);
}

/*
 * show groups a conversation's events by turn and nests a span under its
 * parent, with each event's offset from the turn's start (what overlapped
 * is visible: a tool at +110ms inside a 500ms provider call at +10ms).
 */
static void
test_cli_show_turns_and_span_tree(void **state)
{
    struct fx *f = *state;
    write_file(f->file,
               "{\"kind\":\"turn\",\"ts_ms\":1771357445000,\"conv_id\":\"g\",\"turn_id\":"
               "\"t1\",\"data\":{\"phase\":\"draft\"}}\n"
               "{\"kind\":\"provider\",\"ts_ms\":1771357445010,\"conv_id\":\"g\",\"turn_id\":"
               "\"t1\",\"span_id\":\"s1\",\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\","
               "\"latency\":{\"provider_ms\":500}}}\n"
               "{\"kind\":\"tool\",\"ts_ms\":1771357445110,\"conv_id\":\"g\",\"turn_id\":"
               "\"t1\",\"span_id\":\"s2\",\"parent_span_id\":\"s1\",\"data\":{\"name\":"
               "\"search\"}}\n"
               "{\"kind\":\"transport\",\"ts_ms\":1771357445120,\"conv_id\":\"g\",\"turn_id\":"
               "\"t1\",\"data\":{\"proto\":\"http\",\"method\":\"POST\",\"path\":\"/chat\"}}\n"
               "{\"kind\":\"turn\",\"ts_ms\":1771357446000,\"conv_id\":\"g\",\"turn_id\":"
               "\"t2\",\"data\":{\"phase\":\"draft\"}}\n");
    char *out = NULL, *err = NULL;
    assert_int_equal(fr(&out, &err, "ingest --no-progress --db %s %s", f->db, f->file), 0);
    free(out);
    free(err);
    assert_int_equal(fr(&out, &err, "show g --db %s", f->db), 0);
    const char *t1 = strstr(out, "turn t1\n"), *t2 = strstr(out, "turn t2\n");
    assert_non_null(t1);
    assert_non_null(t2);
    const char *tool = strstr(out, "\xe2\x94\x94 +110ms search"); /* nested under s1 */
    assert_non_null(tool);
    assert_true(t1 < tool && tool < t2);
    assert_non_null(strstr(out, "+10ms openai/gpt-4o"));
    /* one space after the offset, whatever the kind's detail (transport's began with one) */
    assert_non_null(strstr(out, "+120ms proto=http method=POST path=/chat\n"));
    free(out);
    free(err);
}

/* The token of jane@example.org as show --json prints it for conversation conv, or NULL. */
static char *
stored_token(struct fx *f, const char *db, const char *conv)
{
    char *out = NULL, *err = NULL;
    assert_int_equal(fr(&out, &err, "show %s --json --db %s", conv, db), 0);
    free(err);
    const char *t = strstr(out, "hmac:");
    char *tok = t ? strndup(t, FR_TOKEN_LEN) : NULL;
    free(out);
    (void)f;
    return tok;
}

/*
 * Keys live in a folder of their own, not beside the data: by default
 * $XDG_CONFIG_HOME/flightrec/keys; a key still kept where earlier versions
 * put it (keys/ next to the database) is used from there, with a warning to
 * move it. `keys rotate` keeps the old key in the file, new tokens name the
 * new key, and `keys` lists ids, never key material.
 */
static void
test_cli_keys_folder_and_rotation(void **state)
{
    struct fx *f = *state;
    char *out, *err;
    char *xdg = t_path(f->dir, "xdg");
    unsetenv("FLIGHTREC_KEYS_DIR");
    setenv("XDG_CONFIG_HOME", xdg, 1);
    char *pol = t_path(f->dir, "hash.yaml");
    write_file(pol, "scan_replacement: hash\n"); /* an email becomes [email:hmac:...] */
    setenv("FLIGHTREC_REDACTION", pol, 1);
    write_file(f->file, "{\"kind\":\"tool\",\"ts_ms\":1760000000000,\"conv_id\":\"k1\","
                        "\"data\":{\"name\":\"mail\",\"args\":{\"to\":\"jane@example.org\"}}}\n");
    assert_int_equal(fr(&out, &err, "ingest --no-progress --db %s %s", f->db, f->file), 0);
    free(out);
    free(err);
    char *key = t_path(f->dir, "xdg/flightrec/keys/hmac.key"),
         *beside = t_path(f->dir, "data/keys");
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(access(beside, F_OK), -1); /* nothing next to the data */
    char *t1 = stored_token(f, f->db, "k1");
    assert_non_null(t1);
    unsigned char k[FR_KEY_LEN];
    char kid[FR_KEY_ID_HEX + 1];
    assert_int_equal(fr_key_load(key, false, k, NULL, NULL), FR_OK);
    fr_key_id_hex(k, kid);
    assert_memory_equal(t1 + 5, kid, 4); /* the token names its key */

    /* rotation: two keys in the file, the old one second; new tokens name the new key */
    assert_int_equal(fr(&out, &err, "keys rotate hmac --db %s", f->db), 0);
    assert_non_null(strstr(out, "new current key"));
    free(out);
    free(err);
    struct fr_keyring ring;
    assert_int_equal(fr_keyring_load(key, false, &ring, NULL, NULL), FR_OK);
    assert_int_equal(ring.n, 2);
    assert_memory_equal(ring.key[1], k, FR_KEY_LEN);
    char newid[FR_KEY_ID_HEX + 1];
    fr_key_id_hex(ring.key[0], newid);
    write_file(f->file, "{\"kind\":\"tool\",\"ts_ms\":1760000000001,\"conv_id\":\"k2\","
                        "\"data\":{\"name\":\"mail\",\"args\":{\"to\":\"jane@example.org\"}}}\n");
    assert_int_equal(fr(&out, &err, "ingest --no-progress --db %s %s", f->db, f->file), 0);
    free(out);
    free(err);
    char *t2 = stored_token(f, f->db, "k2");
    assert_memory_equal(t2 + 5, newid, 4);
    assert_string_not_equal(t1, t2);
    /* the listing: ids and files, never a key */
    assert_int_equal(fr(&out, &err, "keys --db %s", f->db), 0);
    assert_non_null(strstr(out, newid));
    assert_non_null(strstr(out, kid));
    assert_non_null(strstr(out, "retired"));
    char hex[2 * FR_KEY_LEN + 1];
    fr_hex_encode(k, FR_KEY_LEN, hex);
    assert_null(strstr(out, hex));
    free(out);
    free(err);
    assert_int_equal(fr(NULL, &err, "keys rotate everything --db %s", f->db), 2);
    assert_non_null(strstr(err, "not hmac, cold, archive"));
    free(err);

    /* a key kept beside the data by an earlier version (and none in the keys folder) is still
       used, with a warning */
    char *xdg2 = t_path(f->dir, "xdg2");
    setenv("XDG_CONFIG_HOME", xdg2, 1);
    free(xdg2);
    char *olddb = t_path(f->dir, "old/hot.db"), *oldkey = t_path(f->dir, "old/keys/hmac.key");
    unsigned char ok[FR_KEY_LEN];
    assert_int_equal(fr_key_load(oldkey, true, ok, NULL, NULL), FR_OK);
    write_file(f->file, "{\"kind\":\"tool\",\"ts_ms\":1760000000002,\"conv_id\":\"k3\","
                        "\"data\":{\"name\":\"mail\",\"args\":{\"to\":\"jane@example.org\"}}}\n");
    assert_int_equal(fr(&out, &err, "ingest --no-progress --db %s %s", olddb, f->file), 0);
    assert_non_null(strstr(err, "beside the data"));
    free(out);
    free(err);
    char *t3 = stored_token(f, olddb, "k3"), oldid[FR_KEY_ID_HEX + 1];
    fr_key_id_hex(ok, oldid);
    assert_memory_equal(t3 + 5, oldid, 4);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("FLIGHTREC_REDACTION");
    free(pol);
    fr_key_wipe(&ring, sizeof ring);
    free(t1);
    free(t2);
    free(t3);
    free(olddb);
    free(oldkey);
    free(key);
    free(beside);
    free(xdg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cli_ingest_compressed_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_ingest_check_stores_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_ingest_file_size_limit_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_ingest_reports_bad_lines_and_keeps_good, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_loads_only_what_it_needs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_conversations_json_and_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_show_ordered_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_errors_and_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_missing_db_and_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_redact_explain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_raw_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_incident_and_range_selection_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_read_commands_leave_foreign_files_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_terminal_escapes_shown_not_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_failed_upload_counts_attempts, setup, teardown),
        cmocka_unit_test(test_cli_test_tools_check_arguments),
        cmocka_unit_test_setup_teardown(test_cli_show_by_trace_request_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_tail_follows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_show_text_and_ndjson, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_show_turns_and_span_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_keys_folder_and_rotation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
