/*
 * tests/integration/test_agent.c - the real `flightrec agent`, started on a
 * free loopback port and a socket path in a temporary directory, driven
 * with libcurl and a Unix socket client: acceptance and per-line errors,
 * auth, compression, body limit, backpressure (429, nothing lost), the
 * query API, the socket protocol, metrics, the runtime sampler, reload,
 * graceful shutdown and a kill -9 right after acknowledgements.
 */
#include "tests/support/support.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "core/fsutil.h"
#include "core/mem.h"
#include "exporters/upload.h"
#include "tests/support/secrets.h"

#ifndef FR_BIN
#error FR_BIN must name the flightrec binary
#endif

struct agent {
    char *dir, *config, *db, *sock, *log;
    pid_t pid;
    int port;
};

static void
write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/*
 * A stop signal must reach the main thread (it waits in sigtimedwait): a
 * thread that left SIGTERM unblocked takes it whenever main is between two
 * waits, and its default action kills the daemon without draining. So
 * every other thread (/proc/PID/task/TID/status, SigBlk) blocks SIGHUP,
 * SIGINT and SIGTERM; returns how many threads were checked.
 */
static int
assert_threads_block_stop_signals(pid_t pid)
{
    char *tasks = fr_asprintf("/proc/%d/task", (int)pid);
    DIR *d = opendir(tasks);
    assert_non_null(d);
    int checked = 0;
    const unsigned long long stop =
        (1ull << (SIGHUP - 1)) | (1ull << (SIGINT - 1)) | (1ull << (SIGTERM - 1));
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == (int)pid)
            continue;
        char *status = fr_asprintf("%s/%s/status", tasks, e->d_name), *text = NULL;
        size_t len;
        if (fr_read_file(status, &text, &len, NULL) == FR_OK) { /* a thread may just have ended */
            const char *blk = strstr(text, "SigBlk:");
            assert_non_null(blk);
            unsigned long long mask = strtoull(blk + 7, NULL, 16);
            if ((mask & stop) != stop)
                fail_msg("daemon thread %s leaves a stop signal unblocked (SigBlk %llx)", e->d_name,
                         mask);
            checked++;
        }
        free(text);
        free(status);
    }
    closedir(d);
    free(tasks);
    return checked;
}

/* Writes the config (extra YAML appended under the given sections) and starts the agent. */
static void
agent_config(struct agent *a, const char *extra_http, const char *extra_storage,
             const char *extra_sections)
{
    char *text =
        fr_asprintf("storage:\n  path: %s\n%s"
                    "http:\n  listen: 127.0.0.1:0\n%s"
                    "socket:\n  path: %s\n"
                    "otlp:\n  listen: 127.0.0.1:0\n"
                    "runtime:\n  self: false\n"
                    "%s",
                    a->db, extra_storage ? extra_storage : "", extra_http ? extra_http : "",
                    a->sock, extra_sections ? extra_sections : "");
    write_text(a->config, text);
    free(text);
}

static void
agent_start(struct agent *a)
{
    truncate(a->log, 0);
    a->pid = fork();
    assert_true(a->pid >= 0);
    if (a->pid == 0) {
        int fd = open(a->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 2);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        /* FR_AGENT_WRAPPER (e.g. "valgrind --error-exitcode=99"): run the daemon under it */
        char *argv[24], *w = getenv("FR_AGENT_WRAPPER") ? strdup(getenv("FR_AGENT_WRAPPER")) : NULL;
        int n = 0;
        for (char *save = NULL, *t = w ? strtok_r(w, " ", &save) : NULL; t && n < 16;
             t = strtok_r(NULL, " ", &save))
            argv[n++] = t;
        argv[n++] = (char *)FR_BIN;
        argv[n++] = (char *)"agent";
        argv[n++] = (char *)"--config";
        argv[n++] = a->config;
        argv[n] = NULL;
        execvp(argv[0], argv);
        _exit(127);
    }
    /* wait for "ready: ... http http://127.0.0.1:PORT" (longer under a wrapper) */
    int tries = getenv("FR_AGENT_WRAPPER") ? 12000 : 500;
    for (int i = 0; i < tries; i++) {
        size_t len;
        char *log = NULL;
        if (fr_read_file(a->log, &log, &len, NULL) == FR_OK) {
            const char *p = strstr(log, "http://127.0.0.1:");
            if (p != NULL && strstr(log, "ready:") != NULL) {
                a->port = atoi(p + 17);
                free(log);
                return;
            }
            free(log);
        }
        int st;
        if (waitpid(a->pid, &st, WNOHANG) == a->pid)
            fail_msg("the agent exited at start (status %d)", st);
        usleep(10000);
    }
    fail_msg("the agent did not become ready");
}

/* SIGTERM and wait; returns the exit status. */
static int
agent_stop(struct agent *a)
{
    if (a->pid <= 0)
        return -1;
    kill(a->pid, SIGTERM);
    int st = 0;
    waitpid(a->pid, &st, 0);
    a->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int
setup(void **state)
{
    struct agent *a = fr_calloc(1, sizeof *a);
    a->dir = t_tmpdir();
    a->config = t_path(a->dir, "flightrec.yaml");
    a->db = t_path(a->dir, "var/flightrec.db");
    a->sock = t_path(a->dir, "var/flightrec.sock");
    a->log = t_path(a->dir, "agent.log");
    *state = a;
    return 0;
}

static void loader_stop(void);

static int
teardown(void **state)
{
    struct agent *a = *state;
    loader_stop(); /* a failed test may have left its producer running */
    if (a->pid > 0) {
        kill(a->pid, SIGKILL);
        waitpid(a->pid, NULL, 0);
    }
    char *var = t_path(a->dir, "var");
    umount2(var, MNT_DETACH); /* the disk-full and read-only tests mount there */
    free(var);
    t_rmtree(a->dir);
    free(a->dir);
    free(a->config);
    free(a->db);
    free(a->sock);
    free(a->log);
    free(a);
    return 0;
}

/* ---- HTTP client ---- */

struct buf {
    char *p;
    size_t n;
};

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    b->p = fr_realloc(b->p, b->n + size * nmemb + 1);
    memcpy(b->p + b->n, ptr, size * nmemb);
    b->n += size * nmemb;
    b->p[b->n] = '\0';
    return size * nmemb;
}

struct hdrs {
    char retry_after[32];
};

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct hdrs *h = ud;
    if (strncasecmp(ptr, "Retry-After:", 12) == 0)
        snprintf(h->retry_after, sizeof h->retry_after, "%.*s", (int)(size * nmemb - 12), ptr + 12);
    return size * nmemb;
}

/* One request; returns the status, *out the body (caller frees). */
static long
http(struct agent *a, const char *method, const char *path, const char *const *headers,
     const void *body, size_t len, char **out, struct hdrs *h)
{
    CURL *c = curl_easy_init();
    char *url = fr_asprintf("http://127.0.0.1:%d%s", a->port, path);
    struct buf b = {fr_calloc(1, 1), 0};
    struct curl_slist *hl = NULL;
    for (const char *const *p = headers; p && *p; p++)
        hl = curl_slist_append(hl, *p);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (h != NULL) {
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    }
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    free(url);
    if (out != NULL)
        *out = b.p;
    else
        free(b.p);
    return rc == CURLE_OK ? status : -(long)rc;
}

static long
post(struct agent *a, const char *body, char **out)
{
    return http(a, "POST", "/v1/events", NULL, body, strlen(body), out, NULL);
}

static json_t *
get_json(struct agent *a, const char *path, long want)
{
    char *out;
    long st = http(a, "GET", path, NULL, NULL, 0, &out, NULL);
    if (st != want)
        fail_msg("GET %s: %ld (want %ld): %s", path, st, want, out);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(j);
    return j;
}

/* n events of one conversation as NDJSON (event_id e-<from>.. so they are distinct). */
static char *
events(const char *conv, int from, int n)
{
    size_t cap = (size_t)n * 200 + 1, len = 0;
    char *s = fr_malloc(cap);
    s[0] = '\0';
    for (int i = from; i < from + n; i++)
        len += (size_t)snprintf(s + len, cap - len,
                                "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"%s\","
                                "\"event_id\":\"e-%d\",\"data\":{\"name\":\"search\"}}\n",
                                1771357445000LL + i, conv, i);
    return s;
}

static long
count_events(const char *db, const char *conv)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(h, "SELECT count(*) FROM events WHERE conv_id = ?1", -1, &st, NULL);
    sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
    long n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* ---- tests ---- */

static void
test_agent_http_ingest_query_and_errors(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    char *out;
    const char *body =
        "{\"kind\":\"provider\",\"ts_ms\":1771357445100,\"conv_id\":\"h-1\","
        "\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"status\":\"ok\"}}\n"
        "{\"kind\":\"tool\",\"ts_ms\":\"soon\",\"conv_id\":\"h-1\"}\n"
        "\n"
        "{\"kind\":\"tool\",\"ts_ms\":1771357445200,\"conv_id\":\"h-1\","
        "\"data\":{\"name\":\"search\",\"result\":\"mail a.b@example.com\"}}\n";
    assert_int_equal(post(a, body, &out), 202);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "rejected")), 1);
    json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
    assert_int_equal(json_integer_value(json_object_get(e0, "line")), 2);
    assert_non_null(strstr(json_string_value(json_object_get(e0, "error")), "ts_ms"));
    json_decref(j);
    /* a JSON array body; element numbers are the "lines" */
    assert_int_equal(post(a,
                          "[{\"kind\":\"tool\",\"ts_ms\":1771357445300,\"conv_id\":\"h-2\"},"
                          "{\"kind\":\"nope\",\"ts_ms\":1771357445300}]",
                          &out),
                     202);
    assert_non_null(strstr(out, "\"accepted\":1,\"rejected\":1"));
    assert_non_null(strstr(out, "\"line\":2"));
    free(out);

    /* read back: the conversation view, redacted */
    j = get_json(a, "/v1/conversations/h-1", 200);
    assert_int_equal(json_array_size(json_object_get(j, "events")), 2);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "conversation"), "event_count")), 2);
    char *dump = json_dumps(j, 0);
    assert_null(strstr(dump, "a.b@example.com"));
    assert_non_null(strstr(dump, "[REDACTED:email]"));
    free(dump);
    json_decref(j);
    j = get_json(a, "/v1/conversations/nope", 404);
    json_decref(j);
    j = get_json(a, "/v1/conversations?limit=1", 200);
    assert_int_equal(json_array_size(json_object_get(j, "conversations")), 1);
    const char *cur = json_string_value(json_object_get(j, "next_cursor"));
    assert_non_null(cur);
    char *path = fr_asprintf("/v1/conversations?limit=1&cursor=%s", cur);
    json_t *j2 = get_json(a, path, 200);
    free(path);
    assert_int_equal(json_array_size(json_object_get(j2, "conversations")), 1);
    assert_string_not_equal(
        json_string_value(
            json_object_get(json_array_get(json_object_get(j, "conversations"), 0), "conv_id")),
        json_string_value(
            json_object_get(json_array_get(json_object_get(j2, "conversations"), 0), "conv_id")));
    assert_true(json_is_null(json_object_get(j2, "next_cursor")));
    json_decref(j);
    json_decref(j2);
    j = get_json(a, "/v1/conversations?provider=openai", 200);
    assert_int_equal(json_array_size(json_object_get(j, "conversations")), 1);
    json_decref(j);
    assert_int_equal(post(a,
                          "{\"kind\":\"provider\",\"ts_ms\":1771357445400,\"conv_id\":\"h-3\","
                          "\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\"},"
                          "\"error\":{\"http_status\":429,\"message\":\"slow down\"}}\n",
                          NULL),
                     202);
    j = get_json(a, "/v1/errors?by=code", 200);
    json_t *g0 = json_array_get(json_object_get(j, "groups"), 0);
    assert_string_equal(json_string_value(json_object_get(g0, "key")), "provider.rate_limited");
    assert_int_equal(json_integer_value(json_object_get(g0, "count")), 1);
    json_decref(j);
    j = get_json(a, "/v1/errors?class=provider", 200);
    assert_int_equal(json_array_size(json_object_get(j, "errors")), 1);
    json_decref(j);
    j = get_json(a, "/v1/errors?by=colour", 400);
    json_decref(j);
    j = get_json(a, "/v1/conversations?error_class=provider", 200);
    assert_int_equal(json_array_size(json_object_get(j, "conversations")), 1);
    json_decref(j);
    j = get_json(a, "/v1/events?conv_id=h-1&kind=tool", 200);
    assert_int_equal(json_array_size(json_object_get(j, "events")), 1);
    json_decref(j);
    /* invalid parameters: 400 with the reason */
    j = get_json(a, "/v1/conversations?limit=0", 400);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "limit"));
    json_decref(j);
    j = get_json(a, "/v1/conversations?colour=red", 400);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "colour"));
    json_decref(j);
    j = get_json(a, "/v1/events?since=yesterday-ish", 400);
    json_decref(j);
    /* redaction is counted per detector and action */
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &out, NULL), 200);
    assert_non_null(strstr(out, "flightrec_redaction_hits_total{detector=\"email\"} 1\n"));
    assert_non_null(strstr(out, "flightrec_redaction_actions_total{action=\"scan\"} 1\n"));
    assert_non_null(strstr(out, "flightrec_events_rejected_total{reason=\"wrong_type\"} 1\n"));
    free(out);
    assert_int_equal(agent_stop(a), 0);
}

static void
test_agent_auth_compression_and_limits(void **state)
{
    struct agent *a = *state;
    agent_config(a, "  auth_token: t0ken-Secret\n  max_body_bytes: 4096\n", NULL, NULL);
    agent_start(a);
    const char *auth[] = {"Authorization: Bearer t0ken-Secret", NULL};
    const char *wrong[] = {"Authorization: Bearer t0ken-secret", NULL};
    char *body = events("z-1", 0, 5);
    assert_int_equal(http(a, "POST", "/v1/events", NULL, body, strlen(body), NULL, NULL), 401);
    assert_int_equal(http(a, "POST", "/v1/events", wrong, body, strlen(body), NULL, NULL), 401);
    assert_int_equal(http(a, "GET", "/v1/conversations", NULL, NULL, 0, NULL, NULL), 401);
    assert_int_equal(http(a, "GET", "/healthz", NULL, NULL, 0, NULL, NULL), 200);
    assert_int_equal(http(a, "POST", "/v1/events", auth, body, strlen(body), NULL, NULL), 202);

    /* zstd */
    size_t bound = ZSTD_compressBound(strlen(body));
    char *z = fr_malloc(bound);
    size_t zn = ZSTD_compress(z, bound, body, strlen(body), 3);
    const char *zh[] = {auth[0], "Content-Encoding: zstd", NULL};
    free(body);
    body = events("z-2", 10, 5);
    zn = ZSTD_compress(z, bound, body, strlen(body), 3);
    char *out;
    assert_int_equal(http(a, "POST", "/v1/events", zh, z, zn, &out, NULL), 202);
    assert_non_null(strstr(out, "\"accepted\":5"));
    free(out);
    assert_int_equal(http(a, "POST", "/v1/events", zh, "garbage!", 8, NULL, NULL), 400);
    free(z);
    /* gzip */
    free(body);
    body = events("z-3", 20, 5);
    z_stream zs = {0};
    deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    unsigned char gz[4096];
    zs.next_in = (Bytef *)body;
    zs.avail_in = (uInt)strlen(body);
    zs.next_out = gz;
    zs.avail_out = sizeof gz;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t gn = sizeof gz - zs.avail_out;
    deflateEnd(&zs);
    const char *gh[] = {auth[0], "Content-Encoding: gzip", NULL};
    assert_int_equal(http(a, "POST", "/v1/events", gh, gz, gn, &out, NULL), 202);
    assert_non_null(strstr(out, "\"accepted\":5"));
    free(out);
    const char *bh[] = {auth[0], "Content-Encoding: br", NULL};
    assert_int_equal(http(a, "POST", "/v1/events", bh, gz, gn, NULL, NULL), 415);
    /* over the body limit: 413, plain or once decompressed */
    free(body);
    body = events("z-4", 30, 60);
    assert_true(strlen(body) > 4096);
    assert_int_equal(http(a, "POST", "/v1/events", auth, body, strlen(body), NULL, NULL), 413);
    z = fr_malloc(ZSTD_compressBound(strlen(body)));
    zn = ZSTD_compress(z, ZSTD_compressBound(strlen(body)), body, strlen(body), 3);
    assert_true(zn < 4096);
    assert_int_equal(http(a, "POST", "/v1/events", zh, z, zn, NULL, NULL), 413);
    free(z);
    free(body);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "z-1"), 5);
    assert_int_equal(count_events(a->db, "z-2"), 5);
    assert_int_equal(count_events(a->db, "z-3"), 5);
    assert_int_equal(count_events(a->db, "z-4"), 0);
    /* owner-only files */
    struct stat st;
    assert_int_equal(stat(a->db, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
}

struct bg_post {
    struct agent *a;
    char *body;
    long status;
};

static void *
bg_post_main(void *arg)
{
    struct bg_post *b = arg;
    b->status = post(b->a, b->body, NULL);
    return NULL;
}

/* A full queue answers 429 with Retry-After, stores nothing of that request, loses nothing else. */
static void
test_agent_backpressure_429_loses_nothing(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, "  queue_events: 10\n  batch_events: 10\n  busy_timeout_ms: 20000\n",
                 NULL);
    agent_start(a);
    /* hold the database's write lock so commits wait and the queue stays full */
    sqlite3 *h;
    assert_int_equal(sqlite3_open(a->db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct bg_post first = {a, events("b-1", 0, 9), 0};
    pthread_t t;
    pthread_create(&t, NULL, bg_post_main, &first);
    /* wait until the first request's 9 events are queued (90%: not ready) */
    bool queued = false;
    for (int i = 0; i < 3000 && !queued; i++) {
        char *m;
        http(a, "GET", "/metrics", NULL, NULL, 0, &m, NULL);
        queued = strstr(m, "\nflightrec_queue_events 9\n") != NULL;
        free(m);
        if (!queued)
            usleep(10000);
    }
    assert_true(queued); /* the first request is queued, its commit waiting for the lock */
    char *second = events("b-2", 100, 8), *out;
    struct hdrs hd = {""};
    long st = http(a, "POST", "/v1/events", NULL, second, strlen(second), &out, &hd);
    assert_int_equal(st, 429);
    assert_int_equal(atoi(hd.retry_after), 1);
    assert_non_null(strstr(out, "nothing of this request was stored"));
    free(out);
    /* the OTLP receiver answers the same way (429 + Retry-After, as OTLP exporters expect) */
    static const char spans[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
        "{\"traceId\":\"5bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"10f067aa0ba902b7\","
        "\"startTimeUnixNano\":\"1771357445000000000\",\"endTimeUnixNano\":"
        "\"1771357446000000000\",\"attributes\":[{\"key\":\"gen_ai.system\",\"value\":{"
        "\"stringValue\":\"openai\"}}]},"
        "{\"traceId\":\"5bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"10f067aa0ba902b8\","
        "\"startTimeUnixNano\":\"1771357446000000000\",\"endTimeUnixNano\":"
        "\"1771357447000000000\",\"attributes\":[{\"key\":\"gen_ai.system\",\"value\":{"
        "\"stringValue\":\"openai\"}}]}]}]}]}";
    const char *json[] = {"Content-Type: application/json", NULL};
    hd.retry_after[0] = '\0';
    assert_int_equal(http(a, "POST", "/v1/traces", json, spans, strlen(spans), &out, &hd), 429);
    assert_int_equal(atoi(hd.retry_after), 1);
    free(out);
    /* readiness reflects the full queue */
    assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, NULL, NULL), 503);
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(h);
    pthread_join(t, NULL);
    assert_int_equal(first.status, 202);
    /* the client retries the refused request */
    assert_int_equal(post(a, second, NULL), 202);
    assert_int_equal(http(a, "POST", "/v1/traces", json, spans, strlen(spans), &out, NULL), 200);
    free(out);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "5bf92f3577b34da6a3ce929d0e0e4736"), 2);
    assert_int_equal(count_events(a->db, "b-1"), 9);
    assert_int_equal(count_events(a->db, "b-2"), 8);
    free(first.body);
    free(second);
}

static int
sock_connect(struct agent *a)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", a->sock);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Reads one line (the ack) from fd. */
static char *
read_line(int fd)
{
    char *s = fr_calloc(1, 65536);
    size_t n = 0;
    while (n < 65535) {
        ssize_t r = read(fd, s + n, 1);
        if (r <= 0 || s[n] == '\n')
            break;
        n++;
    }
    s[n] = '\0';
    return s;
}

static void
test_agent_socket_acks_and_bad_lines(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    struct stat st;
    assert_int_equal(stat(a->sock, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    int fd = sock_connect(a);
    char *ev = events("s-1", 0, 3);
    char *lines = fr_asprintf("%s{not json\n", ev);
    assert_int_equal(write(fd, lines, strlen(lines)), (ssize_t)strlen(lines));
    char *ack = read_line(fd);
    json_t *j = json_loads(ack, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "ack_seq")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "rejected")), 1);
    assert_int_equal(json_integer_value(
                         json_object_get(json_array_get(json_object_get(j, "errors"), 0), "line")),
                     4);
    json_decref(j);
    free(ack);
    /* the connection survived the bad line: the acked events are already durable */
    assert_int_equal(count_events(a->db, "s-1"), 3);
    free(ev);
    ev = events("s-1", 3, 2);
    assert_int_equal(write(fd, ev, strlen(ev)), (ssize_t)strlen(ev));
    ack = read_line(fd);
    assert_non_null(strstr(ack, "\"ack_seq\":2,\"accepted\":2,\"rejected\":0"));
    free(ack);
    close(fd);
    free(ev);
    free(lines);
    assert_int_equal(count_events(a->db, "s-1"), 5);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(access(a->sock, F_OK), -1); /* removed at exit */
}

/* Runtime events stored for pid; with check, asserts what a sample holds. */
static size_t
runtime_samples(struct agent *a, pid_t pid, bool check)
{
    json_t *j = get_json(a, "/v1/events?kind=runtime&limit=1000", 200);
    size_t k, seen = 0;
    json_t *e;
    json_array_foreach(json_object_get(j, "events"), k, e)
    {
        json_t *d = json_object_get(e, "data");
        if (json_integer_value(json_object_get(d, "pid")) != pid)
            continue;
        seen++;
        if (check) {
            assert_string_equal(json_string_value(json_object_get(d, "process")), "watched");
            assert_true(json_integer_value(json_object_get(d, "rss_bytes")) > 0);
            assert_true(json_integer_value(json_object_get(d, "threads")) >= 1);
        }
    }
    json_decref(j);
    return seen;
}

/* Socket backpressure: with the queue full the agent stops reading, the
 * producer's writes block (no memory grows, nothing is dropped), and every
 * line is stored once the writer can commit again. */
static void
test_agent_socket_backpressure(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, "  queue_events: 10\n  batch_events: 10\n  busy_timeout_ms: 60000\n",
                 NULL);
    agent_start(a);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(a->db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    int fd = sock_connect(a);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* write until the kernel refuses: the agent is not reading any more */
    size_t lines = 0;
    bool blocked = false;
    char *pending = NULL;
    size_t plen = 0, poff = 0;
    for (int i = 0; i < 200000 && !blocked; i++) {
        if (pending == NULL) {
            pending = events("bp-1", (int)lines, 1);
            plen = strlen(pending);
            poff = 0;
        }
        ssize_t w = write(fd, pending + poff, plen - poff);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            blocked = true;
            break;
        }
        assert_true(w > 0);
        poff += (size_t)w;
        if (poff == plen) {
            free(pending);
            pending = NULL;
            lines++;
        }
    }
    assert_true(blocked);
    assert_true(lines > 10 && lines < 200000);
    /* the agent holds a bounded amount: its queue, one batch, the socket buffer */
    char *m;
    http(a, "GET", "/metrics", NULL, NULL, 0, &m, NULL);
    assert_non_null(strstr(m, "flightrec_queue_capacity_events 10"));
    free(m);
    /* the writer can commit again: everything written arrives */
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(h);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (pending != NULL) {
        assert_int_equal(write(fd, pending + poff, plen - poff), (ssize_t)(plen - poff));
        free(pending);
        lines++;
    }
    shutdown(fd, SHUT_WR);
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0)
        ; /* the acks, until the agent closes its side */
    close(fd);
    assert_int_equal(count_events(a->db, "bp-1"), (long)lines);
    assert_int_equal(agent_stop(a), 0);
}

static void
test_agent_metrics_and_runtime_sampler(void **state)
{
    struct agent *a = *state;
    /* a stand-in chat server, followed through its pidfile across a restart */
    pid_t child = fork();
    if (child == 0) {
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    char *pidfile = t_path(a->dir, "chat.pid");
    char pidtext[32];
    snprintf(pidtext, sizeof pidtext, "%d\n", child);
    write_text(pidfile, pidtext);
    char *extra = fr_asprintf("  pidfile: %s\n  interval_ms: 100\n", pidfile);
    agent_config(a, NULL, NULL, NULL);
    /* the runtime section is already written with self: false; append options to it */
    char *text;
    size_t len;
    assert_int_equal(fr_read_file(a->config, &text, &len, NULL), FR_OK);
    char *full = fr_asprintf("%s", text);
    char *at = strstr(full, "runtime:\n");
    char *cfg =
        fr_asprintf("%.*sruntime:\n%s%s", (int)(at - full), full, extra, at + strlen("runtime:\n"));
    write_text(a->config, cfg);
    free(text);
    free(full);
    free(cfg);
    free(extra);
    agent_start(a);
    char *body = events("m-1", 0, 3), *out;
    assert_int_equal(post(a, body, NULL), 202);
    free(body);
    /* samples of the watched process arrive every 100 ms (waits are generous for ASan) */
    size_t seen = 0;
    for (int i = 0; i < 400 && seen < 2; i++) {
        usleep(50000);
        seen = runtime_samples(a, child, true);
    }
    assert_true(seen >= 2);
    /* the watched process restarts with a new pid: the sampler follows */
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    pid_t child2 = fork();
    if (child2 == 0) {
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    snprintf(pidtext, sizeof pidtext, "%d\n", child2);
    write_text(pidfile, pidtext);
    seen = 0;
    for (int i = 0; i < 400 && seen < 1; i++) {
        usleep(50000);
        seen = runtime_samples(a, child2, false);
    }
    assert_true(seen >= 1);
    kill(child2, SIGKILL);
    waitpid(child2, NULL, 0);

    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &out, NULL), 200);
    assert_non_null(strstr(out, "flightrec_events_accepted_total{kind=\"tool\"} 3"));
    assert_non_null(strstr(out, "flightrec_events_received_total{source=\"http\"} 3"));
    assert_non_null(strstr(out, "flightrec_tool_calls_total{tool=\"search\"} 3"));
    assert_non_null(strstr(out, "# TYPE flightrec_commit_seconds histogram"));
    assert_non_null(
        strstr(out, "flightrec_runtime_samples_total{target=\"watched\",result=\"ok\"}"));
    assert_non_null(strstr(out, "flightrec_store_bytes "));
    free(out);
    free(pidfile);
    assert_int_equal(agent_stop(a), 0);
}

/* Waits (up to 30 s: sanitizer builds are slow) until the agent's log holds needle. */
static void
wait_log(struct agent *a, const char *needle)
{
    for (int i = 0; i < 3000; i++) {
        char *log;
        size_t len;
        bool found = fr_read_file(a->log, &log, &len, NULL) == FR_OK && strstr(log, needle);
        free(log);
        if (found)
            return;
        usleep(10000);
    }
    fail_msg("the agent's log never said: %s", needle);
}

static void
test_agent_reload_keeps_old_config_on_error(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    char *body = events("r-1", 0, 2);
    assert_int_equal(post(a, body, NULL), 202);
    /* a bad file: rejected, the agent keeps serving with the old settings */
    char *good;
    size_t len;
    assert_int_equal(fr_read_file(a->config, &good, &len, NULL), FR_OK);
    char *bad = fr_asprintf("%sbogus_section: 1\n", good);
    write_text(a->config, bad);
    kill(a->pid, SIGHUP);
    wait_log(a, "reload rejected");
    wait_log(a, "bogus_section");
    assert_int_equal(post(a, body, NULL), 202);
    /* a good file with a token: applied at once */
    char *with_token = fr_asprintf("%s", good);
    char *http_at = strstr(with_token, "http:\n");
    char *cfg = fr_asprintf("%.*shttp:\n  auth_token: n3w\n%s", (int)(http_at - with_token),
                            with_token, http_at + 6);
    write_text(a->config, cfg);
    kill(a->pid, SIGHUP);
    wait_log(a, "configuration reloaded");
    assert_int_equal(post(a, body, NULL), 401);
    const char *auth[] = {"Authorization: Bearer n3w", NULL};
    assert_int_equal(http(a, "POST", "/v1/events", auth, body, strlen(body), NULL, NULL), 202);
    free(cfg);
    free(with_token);
    free(bad);
    free(good);
    free(body);
    assert_int_equal(agent_stop(a), 0);
}

/* SIGTERM drains and exits 0; kill -9 right after acks loses no acked event. */
static void
test_agent_shutdown_and_crash(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    long acked = 0;
    for (int r = 0; r < 20; r++) {
        char *body = events("k-1", r * 50, 50);
        if (post(a, body, NULL) == 202)
            acked += 50;
        free(body);
    }
    assert_int_equal(acked, 1000);
    kill(a->pid, SIGKILL); /* no chance to flush anything after the acks */
    waitpid(a->pid, NULL, 0);
    a->pid = 0;
    assert_int_equal(count_events(a->db, "k-1"), acked);
    /* it starts again over the stale socket file, and stops cleanly */
    agent_start(a);
    assert_true(assert_threads_block_stop_signals(a->pid) >= 3); /* writer, servers, sampler */
    int fd = sock_connect(a);
    char *ev = events("k-2", 0, 4);
    assert_int_equal(write(fd, ev, strlen(ev)), (ssize_t)strlen(ev));
    char *ack = read_line(fd);
    assert_non_null(strstr(ack, "\"accepted\":4"));
    free(ack);
    free(ev);
    close(fd);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "k-2"), 4);
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    assert_non_null(strstr(log, "every acknowledged event is committed"));
    free(log);
}

/* A producer under load: posts 50-event batches of conversation "load",
 * each until it is acknowledged (a real client's retry), across restarts. */
struct loader {
    pthread_mutex_t mu;
    int port; /* the agent's current port, 0 while it is down */
    bool stop;
    long acked, batches, retries;
    useconds_t pace; /* pause after each acknowledged batch */
    pthread_t thread;
    bool running;
};

/* The one producer (static: it outlives a test that fails, teardown stops it). */
static struct loader g_load = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *
loader_main(void *arg)
{
    struct loader *l = arg;
    struct agent view = {0};
    for (long b = 0;; b++) {
        pthread_mutex_lock(&l->mu);
        bool stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (stop)
            break;
        char *body = events("load", (int)b * 50, 50);
        for (;;) {
            pthread_mutex_lock(&l->mu);
            view.port = l->port;
            pthread_mutex_unlock(&l->mu);
            long st = view.port ? post(&view, body, NULL) : -1;
            if (st == 202)
                break;
            pthread_mutex_lock(&l->mu);
            l->retries++;
            pthread_mutex_unlock(&l->mu);
            usleep(10000);
        }
        free(body);
        pthread_mutex_lock(&l->mu);
        l->acked += 50;
        l->batches++;
        pthread_mutex_unlock(&l->mu);
        if (l->pace)
            usleep(l->pace);
    }
    return NULL;
}

static void *loader_main(void *arg);

static struct loader *
loader_start(int port, useconds_t pace)
{
    struct loader *l = &g_load;
    pthread_mutex_lock(&l->mu);
    l->port = port;
    l->stop = false;
    l->acked = l->batches = l->retries = 0;
    l->pace = pace;
    pthread_mutex_unlock(&l->mu);
    assert_int_equal(pthread_create(&l->thread, NULL, loader_main, l), 0);
    l->running = true;
    return l;
}

static void
loader_stop(void)
{
    struct loader *l = &g_load;
    if (!l->running)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    l->running = false;
}

/* Waits (up to 60 s) until the loader has a batch acknowledged by the agent now running. */
static void
wait_progress(struct loader *l)
{
    pthread_mutex_lock(&l->mu);
    long from = l->batches;
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < 6000; i++) {
        pthread_mutex_lock(&l->mu);
        long now = l->batches;
        pthread_mutex_unlock(&l->mu);
        if (now > from)
            return;
        usleep(10000);
    }
    fail_msg("no batch acknowledged within 60 s of a restart");
}

static long
sql_long(const char *db, const char *sql, char *text, size_t n)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    long v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
        if (text)
            snprintf(text, n, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/*
 * kill -9 at random moments under continuous load, FR_CRASH_ROUNDS rounds
 * (default 8): after every restart each acknowledged event is there exactly
 * once, and the database passes PRAGMA integrity_check.
 */
static void
test_agent_kill9_under_load(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, "  batch_events: 200\n", NULL);
    agent_start(a);
    int rounds = getenv("FR_CRASH_ROUNDS") ? atoi(getenv("FR_CRASH_ROUNDS")) : 8;
    unsigned seed = (unsigned)time(NULL);
    print_message("kill -9 under load: %d rounds, seed %u\n", rounds, seed);
    struct loader *l = loader_start(a->port, 0);
    for (int r = 0; r < rounds; r++) {
        wait_progress(l);
        usleep((useconds_t)(20000 + rand_r(&seed) % 250000));
        kill(a->pid, SIGKILL);
        waitpid(a->pid, NULL, 0);
        a->pid = 0;
        pthread_mutex_lock(&l->mu);
        l->port = 0;
        long acked = l->acked;
        pthread_mutex_unlock(&l->mu);
        /* everything acknowledged so far is there, once (the batch in flight may be too) */
        long stored = count_events(a->db, "load");
        if (stored < acked || stored > acked + 50)
            fail_msg("round %d: %ld events stored, %ld acknowledged", r, stored, acked);
        char ok[64] = "";
        sql_long(a->db, "PRAGMA integrity_check", ok, sizeof ok);
        assert_string_equal(ok, "ok");
        agent_start(a);
        pthread_mutex_lock(&l->mu);
        l->port = a->port;
        pthread_mutex_unlock(&l->mu);
    }
    usleep(100000);
    loader_stop();
    assert_int_equal(agent_stop(a), 0);
    assert_true(l->batches > rounds);
    assert_int_equal(count_events(a->db, "load"), l->acked);
    assert_int_equal(sql_long(a->db,
                              "SELECT count(*) - count(DISTINCT event_id) FROM events WHERE "
                              "conv_id = 'load'",
                              NULL, 0),
                     0);
    char ok[64] = "";
    sql_long(a->db, "PRAGMA integrity_check", ok, sizeof ok);
    assert_string_equal(ok, "ok");
    print_message("%ld events acknowledged in %ld batches, %ld retries across %d crashes\n",
                  l->acked, l->batches, l->retries, rounds);
}

/* Events of conv across the tiers (flightrec show --json); *dups counts repeated event ids. */
static long
count_across_tiers(struct agent *a, const char *conv, long *dups)
{
    char *cmd = fr_asprintf("%s show %s --json --db %s", FR_BIN, conv, a->db), *out = NULL,
         *err = NULL;
    if (t_run(cmd, &out, &err) != 0)
        fail_msg("show failed: %s", err);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    json_t *evs = json_object_get(j, "events"), *seen = json_object(), *e;
    size_t i;
    *dups = 0;
    json_array_foreach(evs, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "event_id"));
        assert_non_null(id);
        if (json_object_get(seen, id))
            (*dups)++;
        json_object_set_new(seen, id, json_true());
    }
    long n = (long)json_array_size(evs);
    json_decref(seen);
    json_decref(j);
    free(out);
    free(err);
    free(cmd);
    return n;
}

/*
 * The same during retention: the agent's retention job runs every second
 * (everything the loader sends is old enough to move to warm), the daemon
 * is killed at random moments: every acknowledged event is readable exactly
 * once across hot and warm, and the database stays intact.
 */
static void
test_agent_kill9_during_retention_under_load(void **state)
{
    struct agent *a = *state;
    char *policy = t_path(a->dir, "retention.yaml");
    write_text(policy, "schedule:\n  interval: 1s\nwarm:\n  segment_events: 2000\n");
    char *extra = fr_asprintf("retention:\n  policy: %s\n", policy);
    agent_config(a, NULL, "  batch_events: 200\n", extra);
    agent_start(a);
    unsigned seed = (unsigned)time(NULL);
    struct loader *l = loader_start(a->port, 10000);
    for (int r = 0; r < 6; r++) {
        wait_progress(l);
        usleep((useconds_t)(300000 + rand_r(&seed) % 1500000));
        kill(a->pid, SIGKILL);
        waitpid(a->pid, NULL, 0);
        a->pid = 0;
        pthread_mutex_lock(&l->mu);
        l->port = 0;
        long acked = l->acked;
        pthread_mutex_unlock(&l->mu);
        char ok[64] = "";
        sql_long(a->db, "PRAGMA integrity_check", ok, sizeof ok);
        assert_string_equal(ok, "ok");
        long dups, n = count_across_tiers(a, "load", &dups);
        if (dups != 0 || n < acked || n > acked + 50)
            fail_msg("round %d (seed %u): %ld readable (%ld repeated), %ld acknowledged", r, seed,
                     n, dups, acked);
        agent_start(a);
        pthread_mutex_lock(&l->mu);
        l->port = a->port;
        pthread_mutex_unlock(&l->mu);
    }
    /* let the retention job move something before the end (slow under valgrind) */
    for (int i = 0;
         i < 600 && sql_long(a->db, "SELECT count(*) FROM archive_segments", NULL, 0) == 0; i++)
        usleep(100000);
    loader_stop();
    assert_int_equal(agent_stop(a), 0);
    long dups, n = count_across_tiers(a, "load", &dups);
    assert_int_equal(dups, 0);
    assert_int_equal(n, l->acked);
    long warm = sql_long(a->db, "SELECT count(*) FROM archive_segments", NULL, 0);
    assert_true(warm > 0); /* retention did run between the crashes */
    print_message("%ld events acknowledged, %ld in hot, %ld warm segments, seed %u\n", l->acked,
                  count_events(a->db, "load"), warm, seed);
    free(extra);
    free(policy);
}

static size_t
count_bundles(const char *dir)
{
    char *cmd = fr_asprintf("ls %s 2>/dev/null | grep -c 'tar.zst$'", dir), *out = NULL;
    t_run(cmd, &out, NULL);
    size_t n = out ? (size_t)atoi(out) : 0;
    free(out);
    free(cmd);
    return n;
}

static char *
timeouts(const char *conv, int from)
{
    return fr_asprintf("{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"data\":{\"name\":"
                       "\"search\",\"status\":\"timeout\"}}\n"
                       "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"data\":{\"name\":"
                       "\"search\",\"status\":\"timeout\"}}\n",
                       1771357445000LL + from, conv, 1771357445000LL + from + 1, conv);
}

/* A trigger rule builds one signed bundle per conversation per cool-down. */
static void
test_agent_trigger_fires_once_per_cooldown(void **state)
{
    struct agent *a = *state;
    char *rules = t_path(a->dir, "triggers.yaml"), *bundles = t_path(a->dir, "bundles");
    write_text(rules, "cooldown: 1h\nrules:\n  - name: tool_timeouts\n    error_code: "
                      "tool.timeout\n    count: 2\n    window: 1m\n");
    char *extra = fr_asprintf("incident:\n  triggers: %s\n  bundle_dir: %s\n", rules, bundles);
    agent_config(a, NULL, NULL, extra);
    agent_start(a);
    char *body = timeouts("t-1", 0);
    assert_int_equal(post(a, body, NULL), 202);
    free(body);
    for (int i = 0; i < 3000 && count_bundles(bundles) < 1; i++)
        usleep(10000);
    assert_int_equal(count_bundles(bundles), 1);
    /* the same conversation again, within the cool-down: no second bundle */
    body = timeouts("t-1", 10);
    assert_int_equal(post(a, body, NULL), 202);
    free(body);
    /* another conversation: its own bundle */
    body = timeouts("t-2", 20);
    assert_int_equal(post(a, body, NULL), 202);
    free(body);
    for (int i = 0; i < 3000 && count_bundles(bundles) < 2; i++)
        usleep(10000);
    char *out;
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &out, NULL), 200);
    assert_non_null(strstr(
        out, "flightrec_incident_triggers_total{rule=\"tool_timeouts\",outcome=\"fired\"} 2"));
    assert_non_null(strstr(
        out, "flightrec_incident_triggers_total{rule=\"tool_timeouts\",outcome=\"cooldown\"} 2"));
    free(out);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_bundles(bundles), 2);
    /* the bundles are signed with the agent's key and verify */
    char *cmd = fr_asprintf("for b in %s/*.tar.zst; do %s incident verify $b --pubkey "
                            "%s/var/keys/signing.pub.pem || exit 1; done",
                            bundles, FR_BIN, a->dir);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    free(extra);
    free(rules);
    free(bundles);
}

/*
 * Starts the upload sink (bench/sink.c) on *port (0: a free one, stored in
 * *port) and returns once it listens; fails the test if it cannot.
 */
static pid_t
sink_start(int *port)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        char p[16];
        snprintf(p, sizeof p, "%d", *port);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(FR_SINK, FR_SINK, p, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = "";
    ssize_t got = 0, r;
    while (got < (ssize_t)sizeof line - 1 && !strchr(line, '\n') &&
           (r = read(fds[0], line + got, sizeof line - 1 - (size_t)got)) > 0)
        got += r;
    close(fds[0]);
    int listening = atoi(line); /* the sink prints its port once it listens */
    if (listening <= 0) {
        waitpid(pid, NULL, 0);
        fail_msg("the upload sink could not listen on port %d", *port);
    }
    *port = listening;
    return pid;
}

/* The outbox survives a restart of the agent, which retries it in the background. */
static void
test_agent_outbox_survives_restart(void **state)
{
    struct agent *a = *state;
    int port = t_free_port(); /* nobody listens there yet */
    char *outbox = t_path(a->dir, "outbox"), *yaml = t_path(a->dir, "upload.yaml");
    char *text = fr_asprintf("outbox: %s\ntargets:\n  - name: sink\n    url: "
                             "http://127.0.0.1:%d/u/{name}\n    max_attempts: 1\n",
                             outbox, port);
    write_text(yaml, text);
    free(text);
    char *bundle = t_path(a->dir, "incident-x.tar.zst");
    write_text(bundle, "pretend bundle bytes");
    struct fr_upload_config c;
    struct fr_err err = {0};
    assert_int_equal(fr_upload_config_load(yaml, &c, &err), FR_OK);
    assert_int_equal(fr_outbox_add(&c, bundle, "sink", &err), FR_OK);
    char *extra = fr_asprintf("incident:\n  upload_config: %s\n  outbox_retry_ms: 200\n", yaml);
    agent_config(a, NULL, NULL, extra);
    agent_start(a);
    /* the target is down: tried, kept */
    struct fr_outbox_item *items;
    size_t n = 0;
    for (int i = 0; i < 3000; i++) {
        fr_outbox_list(c.outbox, &items, &n, &err);
        bool tried = n == 1 && items[0].attempts > 0;
        fr_outbox_items_free(items, n);
        if (tried)
            break;
        usleep(10000);
    }
    assert_int_equal(agent_stop(a), 0);
    fr_outbox_list(c.outbox, &items, &n, &err);
    assert_int_equal(n, 1);
    assert_true(items[0].attempts >= 1);
    fr_outbox_items_free(items, n);
    /* the target comes up; the restarted agent delivers and empties the outbox */
    pid_t sink = sink_start(&port);
    agent_start(a);
    for (int i = 0; i < 3000; i++) {
        fr_outbox_list(c.outbox, &items, &n, &err);
        fr_outbox_items_free(items, n);
        if (n == 0)
            break;
        usleep(10000);
    }
    assert_int_equal(n, 0);
    char *out;
    assert_int_equal(http(a, "GET", "/metrics", NULL, NULL, 0, &out, NULL), 200);
    assert_non_null(strstr(out, "flightrec_uploads_total{result=\"sent\"} 1"));
    assert_non_null(strstr(out, "flightrec_outbox_bundles 0"));
    free(out);
    assert_int_equal(agent_stop(a), 0);
    kill(sink, SIGTERM);
    waitpid(sink, NULL, 0);
    fr_upload_config_clear(&c);
    free(extra);
    free(bundle);
    free(outbox);
    free(yaml);
}

static const char otlp_traces[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
    "\"value\":{\"stringValue\":\"chat-api\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":"
    "\"openai\"},\"spans\":["
    /* a chat call with usage and a prompt holding a secret */
    "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b7\","
    "\"name\":\"chat gpt-4o\",\"kind\":3,\"startTimeUnixNano\":\"1771357445000000000\","
    "\"endTimeUnixNano\":\"1771357446250000000\",\"attributes\":["
    "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
    "{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}},"
    "{\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"gpt-4o\"}},"
    "{\"key\":\"gen_ai.response.model\",\"value\":{\"stringValue\":\"gpt-4o-2024-08-06\"}},"
    "{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":\"120\"}},"
    "{\"key\":\"gen_ai.usage.output_tokens\",\"value\":{\"intValue\":\"45\"}},"
    "{\"key\":\"gen_ai.response.finish_reasons\",\"value\":{\"arrayValue\":{\"values\":["
    "{\"stringValue\":\"tool_calls\"}]}}},"
    "{\"key\":\"gen_ai.prompt.0.role\",\"value\":{\"stringValue\":\"user\"}},"
    "{\"key\":\"gen_ai.prompt.0.content\",\"value\":{\"stringValue\":\"my key is "
    "sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE6gI8kM0oQ\"}},"
    "{\"key\":\"session.id\",\"value\":{\"stringValue\":\"o-1\"}}],"
    "\"events\":[{\"name\":\"gen_ai.content.completion\",\"timeUnixNano\":"
    "\"1771357446250000000\",\"attributes\":[{\"key\":\"gen_ai.completion\",\"value\":{"
    "\"stringValue\":\"Sunny, 21C\"}}]}],"
    "\"status\":{\"code\":1}},"
    /* the tool call */
    "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b8\","
    "\"name\":\"execute_tool get_weather\",\"startTimeUnixNano\":\"1771357446300000000\","
    "\"endTimeUnixNano\":\"1771357446400000000\",\"attributes\":["
    "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"execute_tool\"}},"
    "{\"key\":\"gen_ai.tool.name\",\"value\":{\"stringValue\":\"get_weather\"}},"
    "{\"key\":\"gen_ai.tool.call.id\",\"value\":{\"stringValue\":\"call_1\"}},"
    "{\"key\":\"session.id\",\"value\":{\"stringValue\":\"o-1\"}}]},"
    /* a provoked 429 */
    "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b9\","
    "\"name\":\"chat gpt-4o\",\"startTimeUnixNano\":\"1771357447000000000\","
    "\"endTimeUnixNano\":\"1771357447100000000\",\"attributes\":["
    "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
    "{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}},"
    "{\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"gpt-4o\"}},"
    /* current semconv: the input messages as a JSON string */
    "{\"key\":\"gen_ai.input.messages\",\"value\":{\"stringValue\":\"[{\\\"role\\\":"
    "\\\"user\\\",\\\"parts\\\":[{\\\"type\\\":\\\"text\\\",\\\"content\\\":"
    "\\\"mail jane.doe@example.com\\\"}]}]\"}},"
    "{\"key\":\"session.id\",\"value\":{\"stringValue\":\"o-1\"}}],"
    "\"events\":[{\"name\":\"exception\",\"timeUnixNano\":\"1771357447100000000\","
    "\"attributes\":[{\"key\":\"exception.type\",\"value\":{\"stringValue\":"
    "\"RateLimitError\"}},{\"key\":\"exception.message\",\"value\":{\"stringValue\":"
    "\"429 Rate limit reached for gpt-4o\"}}]}],\"status\":{\"code\":2,\"message\":"
    "\"429 Rate limit reached for gpt-4o\"}},"
    /* malformed: no start time */
    "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902ba\","
    "\"name\":\"broken\"}"
    "]}]}]}";

/* An OTLP metrics request with the two GenAI histograms (cumulative). */
static char *
otlp_metrics(int input_tokens, int calls, double seconds)
{
    return fr_asprintf(
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"gen_ai.client.token.usage\",\"histogram\":{\"aggregationTemporality\":2,"
        "\"dataPoints\":[{\"timeUnixNano\":\"1771357448000000000\",\"count\":\"%d\","
        "\"sum\":%d,\"attributes\":[{\"key\":\"gen_ai.token.type\",\"value\":{"
        "\"stringValue\":\"input\"}},{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":"
        "\"openai\"}},{\"key\":\"gen_ai.response.model\",\"value\":{\"stringValue\":"
        "\"gpt-4o-2024-08-06\"}}]}]}},"
        "{\"name\":\"gen_ai.client.operation.duration\",\"histogram\":{"
        "\"aggregationTemporality\":2,\"dataPoints\":[{\"timeUnixNano\":"
        "\"1771357448000000000\",\"count\":\"%d\",\"sum\":%g,\"max\":1.2,"
        "\"explicitBounds\":[0.5,1.0],\"bucketCounts\":[\"1\",\"%d\",\"0\"],"
        "\"attributes\":[{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":"
        "\"openai\"}},{\"key\":\"gen_ai.response.model\",\"value\":{\"stringValue\":"
        "\"gpt-4o-2024-08-06\"}}]}]}}]}]}]}",
        calls, input_tokens, calls, seconds, calls - 1);
}

/* The otel rollup row of a model from `flightrec stats --by otel`. */
static void
otel_stats(struct agent *a, const char *model, int64_t *calls, int64_t *in_tokens, int64_t *avg_ms)
{
    char *cmd = fr_asprintf("%s stats --db %s --by otel --limit 0", FR_BIN, a->db), *out = NULL,
         *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    const char *line = strstr(out, model);
    if (line == NULL)
        fail_msg("no otel row for %s in:\n%s", model, out);
    long long c, e, in, o, avg;
    assert_int_equal(
        sscanf(line + strlen(model), "%lld %lld %lld %lld %lld", &c, &e, &in, &o, &avg), 5);
    *calls = c;
    *in_tokens = in;
    *avg_ms = avg;
    free(out);
    free(err);
    free(cmd);
}

/* OTLP/HTTP JSON: GenAI spans become provider and tool events, the 429 is classified. */
static void
test_agent_otlp_traces(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    const char *p = strstr(log, "otlp http://127.0.0.1:");
    assert_non_null(p);
    int otlp_port = atoi(p + 22), main_port = a->port;
    free(log);
    a->port = otlp_port; /* the OTLP port, as an exporter would use it */
    const char *json[] = {"Content-Type: application/json", NULL};
    char *out;
    assert_int_equal(
        http(a, "POST", "/v1/traces", json, otlp_traces, strlen(otlp_traces), &out, NULL), 200);
    json_t *j = json_loads(out, 0, NULL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "partialSuccess"), "rejectedSpans")),
        1);
    json_decref(j);
    free(out);
    const char *proto[] = {"Content-Type: application/x-protobuf", NULL};
    assert_int_equal(http(a, "POST", "/v1/traces", proto, "x", 1, &out, NULL), 415);
    assert_non_null(strstr(out, "http/json"));
    free(out);
    /* an ERROR log record becomes an error event */
    const char *logs = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
                       "\"1771357448000000000\",\"severityNumber\":17,\"body\":{\"stringValue\":"
                       "\"worker crashed\"},\"attributes\":[{\"key\":\"session.id\",\"value\":{"
                       "\"stringValue\":\"o-1\"}}]}]}]}]}";
    assert_int_equal(http(a, "POST", "/v1/logs", json, logs, strlen(logs), &out, NULL), 200);
    free(out);
    /* a record naming its kind becomes that event (body = data); a body that is
       not an object is counted in rejectedLogRecords */
    const char *kinds =
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
        "\"1771357449000000000\",\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"name\","
        "\"value\":{\"stringValue\":\"lookup\"}},{\"key\":\"status\",\"value\":{"
        "\"stringValue\":\"ok\"}}]}},\"attributes\":[{\"key\":\"flightrec.kind\",\"value\":{"
        "\"stringValue\":\"tool\"}},{\"key\":\"session.id\",\"value\":{\"stringValue\":"
        "\"o-1\"}}]},{\"timeUnixNano\":\"1771357449000000000\",\"body\":{\"stringValue\":"
        "\"not json\"},\"attributes\":[{\"key\":\"flightrec.kind\",\"value\":{"
        "\"stringValue\":\"tool\"}}]}]}]}]}";
    assert_int_equal(http(a, "POST", "/v1/logs", json, kinds, strlen(kinds), &out, NULL), 200);
    j = json_loads(out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "partialSuccess"),
                                                        "rejectedLogRecords")),
                     1);
    json_decref(j);
    free(out);
    /* GenAI metrics, cumulative: the second export counts only the increase */
    for (int round = 1; round <= 2; round++) {
        char *m = otlp_metrics(round == 1 ? 100 : 150, round == 1 ? 2 : 3, round == 1 ? 1.5 : 2.5);
        assert_int_equal(http(a, "POST", "/v1/metrics", json, m, strlen(m), &out, NULL), 200);
        free(out);
        free(m);
    }
    int64_t calls, in_tokens, avg_ms;
    otel_stats(a, "gpt-4o-2024-08-06", &calls, &in_tokens, &avg_ms);
    assert_int_equal(calls, 3);
    assert_int_equal(in_tokens, 150);
    assert_int_equal(avg_ms, 833);
    a->port = main_port;
    j = get_json(a, "/v1/conversations/o-1", 200);
    json_t *evs = json_object_get(j, "events");
    assert_int_equal(json_array_size(evs), 5);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(evs, 4), "flightrec"), "tool")),
                        "lookup");
    json_t *call = json_array_get(evs, 0), *tool = json_array_get(evs, 1),
           *limited = json_array_get(evs, 2);
    assert_string_equal(json_string_value(json_object_get(call, "kind")), "provider");
    json_t *meta = json_object_get(call, "flightrec");
    assert_string_equal(json_string_value(json_object_get(meta, "model")), "gpt-4o-2024-08-06");
    assert_int_equal(json_integer_value(json_object_get(meta, "duration_ms")), 1250);
    json_t *usage = json_object_get(json_object_get(call, "data"), "usage");
    assert_int_equal(json_integer_value(json_object_get(usage, "input_tokens")), 120);
    assert_int_equal(json_integer_value(json_object_get(usage, "output_tokens")), 45);
    assert_string_equal(json_string_value(json_object_get(call, "trace_id")),
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    char *dump = json_dumps(call, 0);
    assert_null(strstr(dump, "Zq8XbN3k")); /* redacted like any free text */
    free(dump);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(call, "data"), "response"), "content")),
                        "Sunny, 21C"); /* from the gen_ai.content.completion span event */
    json_t *parts = json_object_get(
        json_array_get(json_object_get(json_object_get(json_object_get(limited, "data"), "request"),
                                       "messages"),
                       0),
        "parts");
    const char *said = json_string_value(json_object_get(json_array_get(parts, 0), "content"));
    assert_non_null(said);
    assert_null(strstr(said, "jane.doe@example.com")); /* structured messages, redacted */
    assert_non_null(strstr(said, "mail "));
    assert_string_equal(json_string_value(json_object_get(tool, "kind")), "tool");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(tool, "flightrec"), "tool")),
        "get_weather");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(limited, "flightrec"), "error_code")),
        "provider.rate_limited");
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 3), "kind")),
                        "error");
    json_decref(j);
    assert_int_equal(agent_stop(a), 0);
}

/* The proof with a real client: the official OpenTelemetry JS SDK and OpenAI
 * instrumentation (tests/otlp/chat.mjs, npm packages pinned in
 * package-lock.json) export a turn to the agent's OTLP port unchanged. */
static void
test_agent_otlp_real_sdk(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    const char *p = strstr(log, "otlp http://127.0.0.1:");
    assert_non_null(p);
    int otlp_port = atoi(p + 22);
    free(log);
    char *cmd = fr_asprintf("node %s/tests/otlp/chat.mjs http://127.0.0.1:%d conv-js-1",
                            FR_SOURCE_DIR, otlp_port),
         *out = NULL, *err = NULL;
    int rc = t_run(cmd, &out, &err);
    if (rc != 0)
        fail_msg("the OpenTelemetry client failed (%d): %s", rc, err);
    free(out);
    free(err);
    free(cmd);
    json_t *j = get_json(a, "/v1/conversations/conv-js-1", 200);
    json_t *evs = json_object_get(j, "events");
    size_t i, providers = 0, tools = 0, limited = 0;
    json_int_t in_tokens = 0, out_tokens = 0;
    json_t *e;
    json_array_foreach(evs, i, e)
    {
        const char *kind = json_string_value(json_object_get(e, "kind"));
        json_t *meta = json_object_get(e, "flightrec");
        const char *code = json_string_value(json_object_get(meta, "error_code"));
        if (strcmp(kind, "provider") == 0) {
            providers++;
            if (code && strcmp(code, "provider.rate_limited") == 0) {
                limited++;
                continue;
            }
            assert_string_equal(json_string_value(json_object_get(meta, "model")),
                                "gpt-4o-2024-08-06");
            json_t *u = json_object_get(json_object_get(e, "data"), "usage");
            in_tokens += json_integer_value(json_object_get(u, "input_tokens"));
            out_tokens += json_integer_value(json_object_get(u, "output_tokens"));
            assert_non_null(json_object_get(e, "trace_id"));
        } else if (strcmp(kind, "tool") == 0) {
            tools++;
            assert_string_equal(json_string_value(json_object_get(meta, "tool")), "get_weather");
        }
    }
    assert_int_equal(providers, 3);
    assert_int_equal(limited, 1);
    assert_int_equal(tools, 1);
    assert_int_equal(in_tokens, 101 + 102);
    assert_int_equal(out_tokens, 21 + 22);
    json_decref(j);
    /* and what an engineer sees: flightrec show of the conversation */
    cmd = fr_asprintf("%s show conv-js-1 --db %s", FR_BIN, a->db);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "openai/gpt-4o-2024-08-06 in=101 out=21"));
    assert_non_null(strstr(out, "openai/gpt-4o-2024-08-06 in=102 out=22"));
    assert_non_null(strstr(out, "get_weather call=call_1"));
    assert_non_null(strstr(out, "!! provider.rate_limited: 429"));
    free(out);
    free(err);
    free(cmd);
    /* the SDK's GenAI metrics (exported at shutdown) land in the otel rollups */
    int64_t calls, m_in, avg;
    otel_stats(a, "gpt-4o-2024-08-06", &calls, &m_in, &avg);
    assert_int_equal(calls, 2);
    assert_int_equal(m_in, 101 + 102);
    assert_int_equal(agent_stop(a), 0);
}

/* Hardening: exposure needs a token, readers and writers hold different
 * tokens, token files must be owner-only, data files are owner-only. */
static void
test_agent_hardening(void **state)
{
    struct agent *a = *state;
    /* a non-loopback listener without a token is refused, naming the option */
    write_text(a->config, "http:\n  listen: 0.0.0.0:0\n");
    char *cmd = fr_asprintf("%s config check %s", FR_BIN, a->config), *out = NULL, *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 2);
    assert_non_null(strstr(err, "http.listen: 0.0.0.0:0 is not a loopback address"));
    free(out);
    free(err);
    write_text(a->config, "otlp:\n  listen: 10.0.0.1:4318\n");
    assert_int_equal(t_run(cmd, &out, &err), 2);
    assert_non_null(strstr(err, "otlp.listen: 10.0.0.1:4318 is not a loopback address"));
    free(out);
    free(err);
    write_text(a->config, "http:\n  listen: 0.0.0.0:0\n  auth_token: w\n");
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out);
    free(err);
    free(cmd);
    /* a token file open to others is refused at start */
    char *wfile = t_path(a->dir, "write.token"), *rfile = t_path(a->dir, "read.token");
    write_text(wfile, "writer-secret\n");
    write_text(rfile, "reader-secret\n");
    chmod(wfile, 0644);
    chmod(rfile, 0600);
    char *extra = fr_asprintf("  auth_token_file: %s\n  query_token_file: %s\n", wfile, rfile);
    agent_config(a, extra, NULL, NULL);
    a->pid = fork();
    if (a->pid == 0) {
        int null = open("/dev/null", O_WRONLY),
            log = open(a->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(null, 1);
        dup2(log, 2);
        execl(FR_BIN, FR_BIN, "agent", "--config", a->config, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(a->pid, &st, 0);
    a->pid = 0;
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    assert_non_null(strstr(log, "readable by group or others (mode 644); run chmod 600"));
    assert_null(strstr(log, "writer-secret"));
    free(log);
    /* writers and readers: each token opens only its side */
    chmod(wfile, 0600);
    agent_start(a);
    char *ev = events("h-1", 0, 2);
    const char *wauth[] = {"Authorization: Bearer writer-secret", NULL};
    const char *rauth[] = {"Authorization: Bearer reader-secret", NULL};
    assert_int_equal(http(a, "POST", "/v1/events", wauth, ev, strlen(ev), &out, NULL), 202);
    free(out);
    assert_int_equal(http(a, "POST", "/v1/events", rauth, ev, strlen(ev), &out, NULL), 401);
    free(out);
    assert_int_equal(http(a, "GET", "/v1/conversations/h-1", wauth, NULL, 0, &out, NULL), 401);
    free(out);
    assert_int_equal(http(a, "GET", "/v1/conversations/h-1", rauth, NULL, 0, &out, NULL), 200);
    free(out);
    assert_int_equal(agent_stop(a), 0);
    /* the data directory and its files are owner-only */
    struct stat sb;
    char *dir = t_path(a->dir, "var");
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(a->db, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* a data directory opened up by someone is reported at start */
    chmod(dir, 0755);
    agent_start(a);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    assert_non_null(strstr(log, "is open to group or others (mode 755)"));
    free(log);
    free(dir);
    free(ev);
    free(extra);
    free(wfile);
    free(rfile);
}

/* Appends text to *all (the outputs searched for secrets). */
static void
collect(char **all, const char *text)
{
    char *next = fr_asprintf("%s%s\n", *all, text ? text : "");
    free(*all);
    *all = next;
}

/* Fails when any needle of the corpus is in buf (what, for the message). */
static void
assert_no_secret(const char *what, const char *buf, size_t len)
{
    for (size_t s = 0; s < NSECRETS; s++)
        for (int k = 0; k < 3 && secrets[s].needles[k]; k++)
            if (memmem(buf, len, secrets[s].needles[k], strlen(secrets[s].needles[k])))
                fail_msg("%s holds secret #%zu in clear (%.6s...)", what, s, secrets[s].needles[k]);
}

/*
 * No secret in any output: the whole corpus sent in every free-text field,
 * in unknown fields, and in the places that make a line fail (kind, ts_ms,
 * an enum value, a data field's type, an over-long id, broken JSON), over
 * HTTP, the socket and OTLP, with debug logging. Then the answers, the
 * acks, /metrics, the query API, the CLI, the log and the database files
 * are searched for every needle.
 */
static void
test_agent_no_secret_in_any_output(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, "log:\n  level: debug\n");
    agent_start(a);
    char *all = fr_strdup(""), *body = fr_strdup(""), *out;
    for (size_t i = 0; i < NSECRETS; i++) {
        json_t *sj = json_string(secrets[i].text);
        char *s = json_dumps(sj, JSON_ENCODE_ANY);
        char *long_id = fr_strdup("");
        for (int r = 0; r < 16; r++) { /* over the 256-byte id limit: rejected */
            char *more = fr_asprintf("%s%s / ", long_id, secrets[i].text);
            free(long_id);
            long_id = more;
        }
        json_t *lj = json_string(long_id);
        char *l = json_dumps(lj, JSON_ENCODE_ANY);
        const long long t = 1771357445000LL + (long long)i;
        char *lines = fr_asprintf(
            "{\"v\":1,\"kind\":\"provider\",\"ts_ms\":%lld,\"conv_id\":\"leak\",\"event_id\":\"p-%"
            "zu\","
            "\"data\":{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"request\":{\"messages\":[{"
            "\"role\":\"user\",\"content\":%s}]},\"response\":{\"content\":%s}}}\n"
            "{\"v\":1,\"kind\":\"error\",\"ts_ms\":%lld,\"conv_id\":\"leak\",\"event_id\":\"e-%"
            "zu\","
            "\"error\":{\"message\":%s,\"stack\":%s,\"cause\":[%s]}}\n"
            "{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"leak\",\"event_id\":\"t-%zu\","
            "\"session_id\":%s,"
            "\"data\":{\"name\":\"search\",\"args\":{\"q\":%s},\"result\":%s},\"note\":%s}\n"
            "{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"leak\",\"data\":{\"status\":%"
            "s}}\n"
            "{\"v\":1,\"kind\":\"provider\",\"ts_ms\":%lld,\"data\":{\"usage\":{\"input_tokens\":%"
            "s}}}\n"
            "{\"v\":1,\"kind\":%s,\"ts_ms\":%lld}\n"
            "{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%s}\n"
            "{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":%s}\n"
            "{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld, %s\n"
            "{\"v\":1,\"kind\":\"tool\",\"ts_ms\":%lld, %s}\n",
            t, i, s, s, t, i, s, s, s, t, i, s, s, s, s, t, s, t, s, s, t, s, t, l, t, s, t,
            secrets[i].text); /* unquoted: what a JSON parser quotes back "near" */
        collect(&body, lines);
        free(lines);
        free(s);
        free(l);
        free(long_id);
        json_decref(sj);
        json_decref(lj);
    }
    /* HTTP */
    post(a, body, &out);
    collect(&all, out);
    free(out);
    /* the socket: the same lines, acks with their errors */
    int fd = sock_connect(a);
    assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    shutdown(fd, SHUT_WR);
    char buf[65536];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf - 1)) > 0) {
        buf[r] = '\0';
        collect(&all, buf);
    }
    close(fd);
    /* OTLP: a chat span with the secret as prompt and exception, an ERROR log record */
    const char *json[] = {"Content-Type: application/json", NULL};
    for (size_t i = 0; i < NSECRETS; i++) {
        json_t *sj = json_string(secrets[i].text);
        char *s = json_dumps(sj, JSON_ENCODE_ANY);
        char *spans = fr_asprintf(
            "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
            "\"6bf92f3577b34da6a3ce929d0e0e47%02zx\",\"spanId\":\"20f067aa0ba902%02zx\","
            "\"startTimeUnixNano\":\"1771357445000000000\",\"endTimeUnixNano\":"
            "\"1771357446000000000\",\"attributes\":[{\"key\":\"gen_ai.system\",\"value\":{"
            "\"stringValue\":\"openai\"}},{\"key\":\"gen_ai.prompt.0.content\",\"value\":{"
            "\"stringValue\":%s}},{\"key\":\"session.id\",\"value\":{\"stringValue\":"
            "\"leak-otlp\"}}],\"events\":[{\"name\":\"exception\",\"attributes\":[{\"key\":"
            "\"exception.message\",\"value\":{\"stringValue\":%s}}]}],\"status\":{\"code\":2,"
            "\"message\":%s}}]}]}]}",
            i, i, s, s, s);
        assert_int_equal(http(a, "POST", "/v1/traces", json, spans, strlen(spans), &out, NULL),
                         200);
        collect(&all, out);
        free(out);
        char *logs = fr_asprintf(
            "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
            "\"1771357448000000000\",\"severityNumber\":17,\"body\":{\"stringValue\":%s},"
            "\"attributes\":[{\"key\":\"session.id\",\"value\":{\"stringValue\":\"leak-otlp\"}}]},"
            "{\"timeUnixNano\":\"1771357448000000000\",\"body\":{\"stringValue\":%s},"
            "\"attributes\":[{\"key\":\"flightrec.kind\",\"value\":{\"stringValue\":%s}}]}"
            "]}]}]}",
            s, s, s);
        assert_int_equal(http(a, "POST", "/v1/logs", json, logs, strlen(logs), &out, NULL), 200);
        collect(&all, out);
        free(out);
        free(logs);
        free(spans);
        free(s);
        json_decref(sj);
    }
    /* what readers see: the query API, /metrics, the CLI */
    static const char *const gets[] = {"/v1/conversations/leak",
                                       "/v1/conversations/leak-otlp",
                                       "/v1/errors",
                                       "/v1/errors?by=code",
                                       "/metrics",
                                       "/v1/events?conv_id=leak"};
    for (size_t g = 0; g < sizeof gets / sizeof gets[0]; g++) {
        assert_int_equal(http(a, "GET", gets[g], NULL, NULL, 0, &out, NULL), 200);
        collect(&all, out);
        free(out);
    }
    json_t *conv = get_json(a, "/v1/conversations/leak", 200);
    assert_int_equal(json_array_size(json_object_get(conv, "events")), 3 * NSECRETS);
    json_decref(conv);
    assert_int_equal(agent_stop(a), 0);
    static const char *const cli[] = {"show leak", "show leak-otlp", "errors", "stats --by error"};
    for (size_t c = 0; c < sizeof cli / sizeof cli[0]; c++) {
        char *cmd = fr_asprintf("%s %s --db %s", FR_BIN, cli[c], a->db), *err = NULL;
        assert_int_equal(t_run(cmd, &out, &err), 0);
        collect(&all, out);
        collect(&all, err);
        free(out);
        free(err);
        free(cmd);
    }
    if (getenv("FR_DUMP"))
        write_text(getenv("FR_DUMP"), all);
    assert_no_secret("the answers, acks, query API, /metrics and CLI output", all, strlen(all));
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    assert_true(strstr(log, "debug") != NULL || len > 0);
    assert_no_secret("the agent's log", log, len);
    free(log);
    static const char *const suffixes[] = {"", "-wal"};
    for (size_t k = 0; k < 2; k++) {
        char *path = fr_asprintf("%s%s", a->db, suffixes[k]), *bytes;
        if (fr_read_file(path, &bytes, &len, NULL) == FR_OK) {
            assert_no_secret(path, bytes, len);
            free(bytes);
        }
        free(path);
    }
    free(all);
    free(body);
}

/* http.max_connections: connections past it are closed at once, never queued
 * without bound; the ones already in keep working, and room comes back. */
static void
test_agent_connection_limit(void **state)
{
    struct agent *a = *state;
    agent_config(a, "  max_connections: 2\n", NULL, NULL);
    agent_start(a);
    int held[2];
    for (int i = 0; i < 2; i++) {
        held[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)a->port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        assert_int_equal(connect(held[i], (struct sockaddr *)&sa, sizeof sa), 0);
    }
    usleep(200000); /* the server has taken both */
    long st = http(a, "GET", "/healthz", NULL, NULL, 0, NULL, NULL);
    assert_true(st < 0); /* a transport error (closed), not an answer */
    for (int i = 0; i < 2; i++)
        close(held[i]);
    st = 0;
    for (int i = 0; i < 100 && st != 200; i++) {
        st = http(a, "GET", "/healthz", NULL, NULL, 0, NULL, NULL);
        if (st != 200)
            usleep(20000);
    }
    assert_int_equal(st, 200);
    assert_int_equal(agent_stop(a), 0);
}

/* Runs the agent expecting it to stop at start; returns its log (caller frees). */
static char *
agent_start_fails(struct agent *a)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY),
            log = open(a->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(null, 1);
        dup2(log, 2);
        execl(FR_BIN, FR_BIN, "agent", "--config", a->config, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 0)
        fail_msg("the agent started (status %d) where it should have refused", st);
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    return log;
}

/* Waits up to 10 s for the agent to exit on its own; returns its exit status. */
static int
agent_wait_exit(struct agent *a)
{
    for (int i = 0; i < 1000; i++) {
        int st;
        if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
            a->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    fail_msg("the agent did not exit");
    return -1;
}

/* Another process holds the write lock: 503 with the reason and Retry-After,
 * /readyz says why, and it recovers by itself when the lock goes. */
static void
test_agent_fault_sqlite_busy(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, "  busy_timeout_ms: 200\n", NULL);
    agent_start(a);
    char *ev = events("busy", 0, 10), *out;
    assert_int_equal(post(a, ev, NULL), 202);
    free(ev);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(a->db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    ev = events("busy", 10, 10);
    struct hdrs hd = {""};
    assert_int_equal(http(a, "POST", "/v1/events", NULL, ev, strlen(ev), &out, &hd), 503);
    assert_non_null(strstr(out, "locked"));
    assert_true(atoi(hd.retry_after) > 0);
    free(out);
    assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, &out, NULL), 503);
    assert_non_null(strstr(out, "the last commit failed"));
    free(out);
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(h);
    assert_int_equal(post(a, ev, NULL), 202); /* the client's retry */
    assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, NULL, NULL), 200);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "busy"), 20);
    free(ev);
}

/* The data directory deleted under the running agent: SQLite would write on
 * into the unlinked file, so the next commit fails saying so (nothing acked),
 * the agent exits 3, and started again it begins a new database. */
static void
test_agent_fault_data_dir_deleted(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    char *ev = events("gone", 0, 10), *out;
    assert_int_equal(post(a, ev, NULL), 202);
    char *var = t_path(a->dir, "var");
    t_rmtree(var);
    assert_int_equal(http(a, "POST", "/v1/events", NULL, ev, strlen(ev), &out, NULL), 503);
    assert_non_null(strstr(out, "was removed or replaced"));
    free(out);
    assert_int_equal(agent_wait_exit(a), 3);
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    assert_non_null(strstr(log, "was removed (or its directory): stopping with exit status 3"));
    free(log);
    agent_start(a);
    assert_int_equal(post(a, ev, NULL), 202);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "gone"), 10);
    free(var);
    free(ev);
}

/* A read-only database: the agent refuses to start and says why; writable
 * again, it starts with the data intact. */
static void
test_agent_fault_read_only_database(void **state)
{
    struct agent *a = *state;
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    char *ev = events("ro", 0, 10);
    assert_int_equal(post(a, ev, NULL), 202);
    free(ev);
    assert_int_equal(agent_stop(a), 0);
    char *var = t_path(a->dir, "var");
    bool mounted = false;
    if (geteuid() == 0) { /* root writes through file modes: make the filesystem read-only */
        mounted = mount(var, var, "none", MS_BIND, NULL) == 0 &&
                  mount("none", var, "none", MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) == 0;
        if (!mounted)
            print_message("no read-only bind mount here (%s); using file modes\n", strerror(errno));
    }
    if (!mounted) {
        chmod(a->db, 0400);
        chmod(var, 0500);
    }
    char *log = agent_start_fails(a);
    if (strstr(log, "readonly") == NULL && strstr(log, "read-only") == NULL &&
        strstr(log, "not writable") == NULL)
        fail_msg("no clear reason in the log: %s", log);
    free(log);
    if (mounted)
        assert_int_equal(umount2(var, 0), 0);
    chmod(var, 0700);
    chmod(a->db, 0600);
    agent_start(a);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "ro"), 10);
    free(var);
}

/* The data directory on a small filesystem that fills up: ingest answers 503
 * and stops acking, the log and /readyz say why, nothing acked is lost, and
 * when space returns ingest recovers by itself. Needs a tmpfs mount (root). */
static void
test_agent_fault_disk_full(void **state)
{
    struct agent *a = *state;
    char *var = t_path(a->dir, "var");
    mkdir(var, 0700);
    if (mount("tmpfs", var, "tmpfs", 0, "size=3m,mode=0700") != 0) {
        print_message("SKIPPED: cannot mount a small tmpfs here (%s; needs root)\n",
                      strerror(errno));
        free(var);
        skip();
    }
    agent_config(a, NULL, NULL, NULL);
    agent_start(a);
    long acked = 0, status = 202;
    char *out = NULL;
    int b;
    for (b = 0; b < 2000 && status == 202; b++) {
        char *ev = events("full", b * 100, 100);
        free(out);
        status = http(a, "POST", "/v1/events", NULL, ev, strlen(ev), &out, NULL);
        if (status == 202)
            acked += 100;
        free(ev);
    }
    assert_int_equal(status, 503);
    assert_non_null(strstr(out, "full"));
    free(out);
    print_message("disk full after %ld acknowledged events\n", acked);
    assert_int_equal(http(a, "GET", "/readyz", NULL, NULL, 0, &out, NULL), 503);
    assert_non_null(strstr(out, "full"));
    free(out);
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    assert_non_null(strstr(log, "failed"));
    assert_non_null(strstr(log, "full"));
    free(log);
    /* space returns: the producer's retries go through, no restart */
    assert_int_equal(mount("tmpfs", var, "tmpfs", MS_REMOUNT, "size=64m,mode=0700"), 0);
    char *ev = events("full", b * 100, 100);
    long st = 0;
    for (int i = 0; i < 50 && st != 202; i++) {
        st = post(a, ev, NULL);
        if (st != 202)
            usleep(100000);
    }
    assert_int_equal(st, 202);
    free(ev);
    assert_int_equal(agent_stop(a), 0);
    assert_int_equal(count_events(a->db, "full"), acked + 100);
    char ok[64] = "";
    sql_long(a->db, "PRAGMA integrity_check", ok, sizeof ok);
    assert_string_equal(ok, "ok");
    assert_int_equal(umount2(var, 0), 0);
    free(var);
}

/* Starts FR_BIN with args (space-separated) in the background, output to /dev/null. */
static pid_t
spawn_cli(const char *args)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        char *copy = strdup(args), *argv[24];
        int n = 0;
        argv[n++] = (char *)FR_BIN;
        for (char *save = NULL, *t = strtok_r(copy, " ", &save); t && n < 23;
             t = strtok_r(NULL, " ", &save))
            argv[n++] = t;
        argv[n] = NULL;
        execv(FR_BIN, argv);
        _exit(127);
    }
    return pid;
}

/*
 * kill -9 during bundle creation: the bundle's name only ever holds a whole,
 * verifiable bundle. kill -9 during an upload (to a target that accepts the
 * connection and never answers): the bundle stays in the outbox and a later
 * retry delivers it.
 */
static void
test_agent_kill9_during_bundle_and_upload(void **state)
{
    struct agent *a = *state;
    char *file = t_path(a->dir, "big.ndjson"), *ev = events("big", 0, 30000);
    write_text(file, ev);
    free(ev);
    char *cmd = fr_asprintf("%s ingest --no-progress --db %s %s", FR_BIN, a->db, file), *out, *err;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out);
    free(err);
    free(cmd);
    char *key = t_path(a->dir, "sign.pem"), *pub = t_path(a->dir, "sign.pub"),
         *bundle = t_path(a->dir, "big.tar.zst");
    cmd = fr_asprintf("%s incident keygen --key %s --pubkey %s", FR_BIN, key, pub);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out);
    free(err);
    free(cmd);
    char *create = fr_asprintf("incident create --db %s --conv big --key %s --out %s", a->db, key,
                               bundle),
         *verify = fr_asprintf("%s incident verify %s --pubkey %s", FR_BIN, bundle, pub);
    unsigned seed = (unsigned)time(NULL);
    int killed = 0;
    for (int r = 0; r < 6; r++) {
        pid_t pid = spawn_cli(create);
        usleep((useconds_t)(rand_r(&seed) % 400000));
        killed += kill(pid, SIGKILL) == 0;
        waitpid(pid, NULL, 0);
        if (access(bundle, F_OK) == 0) { /* whatever has the name is whole */
            if (t_run(verify, &out, &err) != 0)
                fail_msg("round %d: a partial bundle under the final name: %s", r, err);
            free(out);
            free(err);
        }
    }
    print_message("bundle creation killed %d times (seed %u)\n", killed, seed);
    cmd = fr_asprintf("%s %s", FR_BIN, create);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out);
    free(err);
    free(cmd);
    assert_int_equal(t_run(verify, &out, &err), 0);
    free(out);
    free(err);
    /* the upload: a listener that never accepts, so the request hangs */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 1), 0);
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    char *outbox = t_path(a->dir, "outbox"), *yaml = t_path(a->dir, "upload.yaml");
    char *text = fr_asprintf("outbox: %s\ntargets:\n  - name: t\n    url: "
                             "http://127.0.0.1:%d/u/{name}\n    timeout_ms: 600000\n",
                             outbox, ntohs(sa.sin_port));
    write_text(yaml, text);
    free(text);
    char *up = fr_asprintf("incident upload %s --to t --targets %s", bundle, yaml);
    pid_t pid = spawn_cli(up);
    usleep(500000);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st)); /* it was still uploading */
    close(lfd);
    cmd = fr_asprintf("%s outbox list --targets %s", FR_BIN, yaml);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "big.tar.zst"));
    free(out);
    free(err);
    /* the target is back (here: a sink on another port): a retry delivers it */
    int port = 0;
    pid_t sink = sink_start(&port);
    text = fr_asprintf("outbox: %s\ntargets:\n  - name: t\n    url: "
                       "http://127.0.0.1:%d/u/{name}\n",
                       outbox, port);
    write_text(yaml, text);
    free(text);
    char *retry = fr_asprintf("%s outbox retry --targets %s", FR_BIN, yaml);
    int rc = t_run(retry, &out, &err); /* the sink listens already */
    if (rc != 0)
        fail_msg("outbox retry: %s", err);
    free(out);
    free(err);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_null(strstr(out, "big.tar.zst"));
    free(out);
    free(err);
    kill(sink, SIGTERM);
    waitpid(sink, NULL, 0);
    free(retry);
    free(cmd);
    free(up);
    free(yaml);
    free(outbox);
    free(create);
    free(verify);
    free(key);
    free(pub);
    free(bundle);
    free(file);
}

static void
test_agent_config_check(void **state)
{
    struct agent *a = *state;
    agent_config(a, "  auth_token: hush-hush\n", NULL, NULL);
    char *cmd = fr_asprintf("%s config check %s", FR_BIN, a->config), *out = NULL, *err = NULL;
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "auth_token: \"***\""));
    assert_null(strstr(out, "hush-hush"));
    assert_non_null(strstr(out, "listen: \"127.0.0.1:0\""));
    free(out);
    free(err);
    free(cmd);
    /* FLIGHTREC_<SECTION>_<KEY> overrides one option; a bad value names the variable */
    cmd = fr_asprintf("FLIGHTREC_HTTP_LISTEN=127.0.0.1:9999 %s config check %s", FR_BIN, a->config);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "listen: \"127.0.0.1:9999\""));
    free(out);
    free(err);
    free(cmd);
    cmd = fr_asprintf("FLIGHTREC_STORAGE_QUEUE_EVENTS=many %s config check %s", FR_BIN, a->config);
    assert_int_equal(t_run(cmd, &out, &err), 2);
    assert_non_null(strstr(err, "FLIGHTREC_STORAGE_QUEUE_EVENTS"));
    free(out);
    free(err);
    free(cmd);
    write_text(a->config, "http:\n  listen: 127.0.0.1:1\n  max_body_bytes: lots\n");
    cmd = fr_asprintf("%s config check %s", FR_BIN, a->config);
    assert_int_equal(t_run(cmd, &out, &err), 2);
    assert_non_null(strstr(err, "flightrec.yaml:3: http.max_body_bytes: expected a whole number"));
    free(out);
    free(err);
    free(cmd);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agent_http_ingest_query_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_auth_compression_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_backpressure_429_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_socket_acks_and_bad_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_socket_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_metrics_and_runtime_sampler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_reload_keeps_old_config_on_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_agent_shutdown_and_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_config_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_hardening, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_connection_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_kill9_under_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_kill9_during_retention_under_load, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_agent_kill9_during_bundle_and_upload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_fault_sqlite_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_fault_data_dir_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_fault_read_only_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_fault_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_no_secret_in_any_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_trigger_fires_once_per_cooldown, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_agent_outbox_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_traces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_otlp_real_sdk, setup, teardown),
    };
    if (getenv("FR_TEST_FILTER")) /* e.g. "test_agent_http*", for the valgrind run */
        cmocka_set_test_filter(getenv("FR_TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
