/*
 * tests/integration/agent.c - see agent.h.
 */
#include "tests/integration/agent.h"

#include <sys/prctl.h>

void
write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

void
write_bytes(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/*
 * A stop signal must reach the main thread (it waits in sigtimedwait): a
 * thread that left SIGTERM unblocked takes it whenever main is between two
 * waits, and its default action kills the daemon without draining. So
 * every other thread (/proc/PID/task/TID/status, SigBlk) blocks SIGHUP,
 * SIGINT and SIGTERM; returns how many threads were checked.
 */
int
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
void
agent_config(struct agent *a, const char *extra_http, const char *extra_storage,
             const char *extra_sections)
{
    char *text =
        fr_asprintf("storage:\n  path: %s\n%s"
                    "http:\n  listen: 127.0.0.1:0\n%s"
                    "socket:\n  path: %s\n"
                    "otlp:\n  listen: 127.0.0.1:0\n  grpc_listen: 127.0.0.1:0\n"
                    "runtime:\n  self: false\n"
                    "%s",
                    a->db, extra_storage ? extra_storage : "", extra_http ? extra_http : "",
                    a->sock, extra_sections ? extra_sections : "");
    write_text(a->config, text);
    free(text);
}

void
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
    /* wait for "ready: ... http http://HOST:PORT" (longer under a wrapper) */
    int tries = getenv("FR_AGENT_WRAPPER") ? 12000 : 3000;
    for (int i = 0; i < tries; i++) {
        size_t len;
        char *log = NULL;
        if (fr_read_file(a->log, &log, &len, NULL) == FR_OK) {
            const char *p = strstr(log, " http http://");
            const char *colon = p ? strchr(p + 13, ':') : NULL;
            const char *ready = strstr(log, "ready:");
            if (colon != NULL && ready != NULL && strchr(ready, '\n') != NULL) {
                a->port = atoi(colon + 1); /* any bound address is reached on loopback */
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
int
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

int
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

int
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

size_t
on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    b->p = fr_realloc(b->p, b->n + size * nmemb + 1);
    memcpy(b->p + b->n, ptr, size * nmemb);
    b->n += size * nmemb;
    b->p[b->n] = '\0';
    return size * nmemb;
}

size_t
on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct hdrs *h = ud;
    if (strncasecmp(ptr, "Retry-After:", 12) == 0)
        snprintf(h->retry_after, sizeof h->retry_after, "%.*s", (int)(size * nmemb - 12), ptr + 12);
    if (strncasecmp(ptr, "Content-Type: ", 14) == 0)
        snprintf(h->content_type, sizeof h->content_type, "%.*s", (int)strcspn(ptr + 14, "\r\n"),
                 ptr + 14);
    return size * nmemb;
}

/* One request; returns the status, *out the body (caller frees). */
long
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
    if (h != NULL)
        h->body_len = b.n;
    if (out != NULL)
        *out = b.p;
    else
        free(b.p);
    return rc == CURLE_OK ? status : -(long)rc;
}

long
post(struct agent *a, const char *body, char **out)
{
    return http(a, "POST", "/v1/events", NULL, body, strlen(body), out, NULL);
}

json_t *
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
char *
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

long
count_events(const char *db, const char *conv)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    /* the agent writes and checkpoints meanwhile: a reader can meet a moment's lock (a WAL
       restart, its index being rebuilt), longer under valgrind */
    sqlite3_busy_timeout(h, 10000);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(h, "SELECT count(*) FROM events WHERE conv_id = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        fail_msg("count_events: %s", sqlite3_errmsg(h));
    sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        fail_msg("count_events: %s", sqlite3_errmsg(h));
    long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

void *
bg_post_main(void *arg)
{
    struct bg_post *b = arg;
    b->status = b->headers ? http(b->a, "POST", "/v1/events", b->headers, b->body, strlen(b->body),
                                  NULL, NULL)
                           : post(b->a, b->body, NULL);
    return NULL;
}

void
queue_hold(struct agent *a, struct held_queue *q, const char *conv, int n,
           const char *const *headers)
{
    assert_int_equal(sqlite3_open(a->db, &q->db), SQLITE_OK);
    /* the agent's own writers (its batches, a checkpoint's or a job's transaction) may hold
       the lock for a moment: wait for it as any other writer would */
    sqlite3_busy_timeout(q->db, 10000);
    assert_int_equal(sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    q->post = (struct bg_post){a, events(conv, 0, n), 0, headers};
    pthread_create(&q->thread, NULL, bg_post_main, &q->post);
    char want[64];
    snprintf(want, sizeof want, "\nflightrec_queue_events %d\n", n);
    bool queued = false;
    for (int i = 0; i < 3000 && !queued; i++) {
        char *m;
        http(a, "GET", "/metrics", NULL, NULL, 0, &m, NULL);
        queued = strstr(m, want) != NULL;
        free(m);
        if (!queued)
            usleep(10000);
    }
    assert_true(queued); /* queued, its commit waiting for the lock */
}

long
queue_release(struct held_queue *q)
{
    sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(q->db);
    pthread_join(q->thread, NULL);
    free(q->post.body);
    return q->post.status;
}

int
sock_connect(struct agent *a)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", a->sock);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Reads one line (the ack) from fd. */
char *
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

/* Runtime events stored for pid; with check, asserts what a sample holds. */
size_t
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

/* Waits (up to 30 s: sanitizer builds are slow) until the agent's log holds needle. */
void
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

/* Waits (up to 60 s) until the agent's /metrics holds needle. */
void
wait_metric(struct agent *a, const char *needle)
{
    for (int i = 0; i < 6000; i++) {
        char *m = NULL;
        http(a, "GET", "/metrics", NULL, NULL, 0, &m, NULL);
        bool found = m != NULL && strstr(m, needle) != NULL;
        free(m);
        if (found)
            return;
        usleep(10000);
    }
    fail_msg("the agent's /metrics never held: %s", needle);
}

/* The one producer (static: it outlives a test that fails, teardown stops it). */
static struct loader g_load = {.mu = PTHREAD_MUTEX_INITIALIZER};

void *
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

struct loader *
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

void
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
void
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

/* Events of conv across the tiers (flightrec show --json); *dups counts repeated event ids. */
long
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

size_t
count_bundles(const char *dir)
{
    char *cmd = fr_asprintf("ls %s 2>/dev/null | grep -c 'tar.zst$'", dir), *out = NULL;
    t_run(cmd, &out, NULL);
    size_t n = out ? (size_t)atoi(out) : 0;
    free(out);
    free(cmd);
    return n;
}

char *
timeouts(const char *conv, int from)
{
    return fr_asprintf("{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"data\":{\"name\":"
                       "\"search\",\"status\":\"timeout\"}}\n"
                       "{\"kind\":\"tool\",\"ts_ms\":%lld,\"conv_id\":\"%s\",\"data\":{\"name\":"
                       "\"search\",\"status\":\"timeout\"}}\n",
                       1771357445000LL + from, conv, 1771357445000LL + from + 1, conv);
}

/*
 * Starts the upload sink (bench/sink.c) on *port (0: a free one, stored in
 * *port) and returns once it listens; fails the test if it cannot.
 */
pid_t
sink_start(int *port)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        /* a failed assertion leaves no sink behind holding the test's output open (ctest
           would wait for it until its timeout) */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
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

const char otlp_traces[] =
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
char *
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
void
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

/* Appends text to *all (the outputs searched for secrets). */
void
collect(char **all, const char *text)
{
    char *next = fr_asprintf("%s%s\n", *all, text ? text : "");
    free(*all);
    *all = next;
}

/* Fails when any needle of the corpus is in buf (what, for the message). */
void
assert_no_secret(const char *what, const char *buf, size_t len)
{
    for (size_t s = 0; s < NSECRETS; s++)
        for (int k = 0; k < 3 && secrets[s].needles[k]; k++)
            if (memmem(buf, len, secrets[s].needles[k], strlen(secrets[s].needles[k])))
                fail_msg("%s holds secret #%zu in clear (%.6s...)", what, s, secrets[s].needles[k]);
}

/* Runs the agent expecting it to stop at start; returns its log (caller frees). */
char *
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
int
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

/* Starts FR_BIN with args (space-separated) in the background, output to /dev/null. */
pid_t
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

/* The port after `what` (e.g. "otlp http://127.0.0.1:") in the agent's ready line. */
static int
ready_port(struct agent *a, const char *what)
{
    char *log;
    size_t len;
    assert_int_equal(fr_read_file(a->log, &log, &len, NULL), FR_OK);
    const char *p = strstr(log, what);
    assert_non_null(p);
    int port = atoi(p + strlen(what));
    free(log);
    return port;
}

int
otlp_port(struct agent *a)
{
    return ready_port(a, "otlp http://127.0.0.1:");
}

int
grpc_port(struct agent *a)
{
    return ready_port(a, "otlp-grpc grpc://127.0.0.1:");
}

long
loader_kill_agent(struct loader *l, struct agent *a)
{
    pthread_mutex_lock(&l->mu);
    l->port = 0;
    pthread_mutex_unlock(&l->mu);
    kill(a->pid, SIGKILL);
    waitpid(a->pid, NULL, 0);
    a->pid = 0;
    pthread_mutex_lock(&l->mu);
    long acked = l->acked;
    pthread_mutex_unlock(&l->mu);
    return acked;
}

void
loader_restart_agent(struct loader *l, struct agent *a)
{
    agent_start(a);
    pthread_mutex_lock(&l->mu);
    l->port = a->port;
    pthread_mutex_unlock(&l->mu);
}

uint8_t *
compress_as(const char *how, const void *msg, size_t len, size_t *out_len)
{
    if (strcmp(how, "snappy-framed") == 0)
        return t_snappy_framed(msg, len, out_len);
    size_t cap = ZSTD_compressBound(len) + compressBound((uLong)len) +
                 snappy_max_compressed_length(len) + LZ4F_compressFrameBound(len, NULL) + 64;
    uint8_t *out = fr_malloc(cap);
    if (strcmp(how, "snappy") == 0) { /* the block format */
        *out_len = cap;
        assert_int_equal(snappy_compress(msg, len, (char *)out, out_len), SNAPPY_OK);
        return out;
    }
    if (strcmp(how, "lz4") == 0) {
        *out_len = LZ4F_compressFrame(out, cap, msg, len, NULL);
        assert_false(LZ4F_isError(*out_len));
        return out;
    }
    if (strcmp(how, "zstd") == 0) {
        *out_len = ZSTD_compress(out, cap, msg, len, 3);
        assert_false(ZSTD_isError(*out_len));
        return out;
    }
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED,
                                  strcmp(how, "raw") == 0    ? -15
                                  : strcmp(how, "gzip") == 0 ? 15 + 16
                                                             : 15,
                                  8, Z_DEFAULT_STRATEGY),
                     Z_OK);
    zs.next_in = (Bytef *)msg;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}
