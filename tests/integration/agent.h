/*
 * tests/integration/agent.h - what the integration tests of the agent
 * share: starting the real `flightrec agent` on a free loopback port with a
 * socket in a temporary directory, an HTTP client (libcurl), a Unix socket
 * client, a producer under load, an upload sink, and waiting on the log.
 * One test file per concern: test_agent_{http,socket,lifecycle,faults,
 * crash,incident,otlp}.c.
 */
#ifndef FR_TESTS_AGENT_H
#define FR_TESTS_AGENT_H

#include "tests/support/support.h"

#include "core/fsutil.h"
#include "core/mem.h"
#include "exporters/upload.h"
#include "tests/support/secrets.h"
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <lz4frame.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <snappy-c.h>
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

#ifndef FR_BIN
#error FR_BIN must name the flightrec binary
/* msg compressed (caller frees): "zstd", "gzip", "zlib" (deflate as HTTP and gRPC define it),
   "raw" (raw deflate), "snappy" (the block format), "snappy-framed" (the framing format),
   "lz4" (an LZ4 frame). */
uint8_t *compress_as(const char *how, const void *msg, size_t len, size_t *out_len);

#endif

struct agent {
    char *dir, *config, *db, *sock, *log;
    pid_t pid;
    int port;
};

/* ---- HTTP client ---- */

struct buf {
    char *p;
    size_t n;
};

struct hdrs {
    char retry_after[32];
    char content_type[64];
    size_t body_len; /* the body's length (it may hold NULs: protobuf) */
};

struct bg_post {
    struct agent *a;
    char *body;
    long status;
    const char *const *headers; /* NULL: none */
};

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

void write_text(const char *path, const char *text);
/* len bytes of data into path (created or truncated) */
void write_bytes(const char *path, const void *data, size_t len);

/*
 * A stop signal must reach the main thread (it waits in sigtimedwait): a
 * thread that left SIGTERM unblocked takes it whenever main is between two
 * waits, and its default action kills the daemon without draining. So
 * every other thread (/proc/PID/task/TID/status, SigBlk) blocks SIGHUP,
 * SIGINT and SIGTERM; returns how many threads were checked.
 */
int assert_threads_block_stop_signals(pid_t pid);

/* Writes the config (extra YAML appended under the given sections) and starts the agent. */
void agent_config(struct agent *a, const char *extra_http, const char *extra_storage,
                  const char *extra_sections);

void agent_start(struct agent *a);

/* SIGTERM and wait; returns the exit status. */
int agent_stop(struct agent *a);

int setup(void **state);

int teardown(void **state);

size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud);

size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud);

/* One request; returns the status, *out the body (caller frees). */
long http(struct agent *a, const char *method, const char *path, const char *const *headers,
          const void *body, size_t len, char **out, struct hdrs *h);

long post(struct agent *a, const char *body, char **out);

json_t *get_json(struct agent *a, const char *path, long want);

/* n events of one conversation as NDJSON (event_id e-<from>.. so they are distinct). */
char *events(const char *conv, int from, int n);

long count_events(const char *db, const char *conv);

void *bg_post_main(void *arg);

/*
 * A full ingest queue on demand: the database's write lock held (commits
 * wait) while n events of conv, posted in the background (with headers, may
 * be NULL), sit in the queue; queue_release lets them commit and returns
 * that post's status.
 */
struct held_queue {
    sqlite3 *db;
    pthread_t thread;
    struct bg_post post;
};
void queue_hold(struct agent *a, struct held_queue *q, const char *conv, int n,
                const char *const *headers);
long queue_release(struct held_queue *q);

int sock_connect(struct agent *a);

/* Reads one line (the ack) from fd. */
char *read_line(int fd);

/* Runtime events stored for pid; with check, asserts what a sample holds. */
size_t runtime_samples(struct agent *a, pid_t pid, bool check);

/* Waits (up to 30 s: sanitizer builds are slow) until the agent's log holds needle. */
void wait_log(struct agent *a, const char *needle);
/* Waits (up to 60 s) until the agent's /metrics holds needle. */
void wait_metric(struct agent *a, const char *needle);

/* The port of the agent's OTLP listener, from its ready line. */
/* The OTLP/gRPC listener's port, from the ready line. */
int grpc_port(struct agent *a);

int otlp_port(struct agent *a);

/*
 * kill -9 of the agent under the producer's load: the producer forgets the
 * port first (once freed, it may be another test's); returns the events it
 * had acknowledged by then.
 */
long loader_kill_agent(struct loader *l, struct agent *a);

/* Starts the agent again and points the producer at it. */
void loader_restart_agent(struct loader *l, struct agent *a);

void *loader_main(void *arg);

struct loader *loader_start(int port, useconds_t pace);

void loader_stop(void);

/* Waits (up to 60 s) until the loader has a batch acknowledged by the agent now running. */
void wait_progress(struct loader *l);

/* Events of conv across the tiers (flightrec show --json); *dups counts repeated event ids. */
long count_across_tiers(struct agent *a, const char *conv, long *dups);

size_t count_bundles(const char *dir);

char *timeouts(const char *conv, int from);

/*
 * Starts the upload sink (bench/sink.c) on *port (0: a free one, stored in
 * *port) and returns once it listens; fails the test if it cannot.
 */
pid_t sink_start(int *port);

/* An OTLP/HTTP JSON traces request with GenAI spans (test data). */
extern const char otlp_traces[];

/* The otel rollup row of a model from `flightrec stats --by otel`. */
/* An OTLP metrics request with the two GenAI histograms (cumulative); caller frees. */
char *otlp_metrics(int input_tokens, int calls, double seconds);

void otel_stats(struct agent *a, const char *model, int64_t *calls, int64_t *in_tokens,
                int64_t *avg_ms);

/* Appends text to *all (the outputs searched for secrets). */
void collect(char **all, const char *text);

/* Fails when any needle of the corpus is in buf (what, for the message). */
void assert_no_secret(const char *what, const char *buf, size_t len);

/* Runs the agent expecting it to stop at start; returns its log (caller frees). */
char *agent_start_fails(struct agent *a);

/* Waits up to 10 s for the agent to exit on its own; returns its exit status. */
int agent_wait_exit(struct agent *a);

/* Starts FR_BIN with args (space-separated) in the background, output to /dev/null. */
pid_t spawn_cli(const char *args);

/* msg compressed (caller frees): "zstd", "gzip", "zlib" (deflate as HTTP and gRPC define it),
   "raw" (raw deflate), "snappy" (the block format), "snappy-framed" (the framing format),
   "lz4" (an LZ4 frame). */
uint8_t *compress_as(const char *how, const void *msg, size_t len, size_t *out_len);

#endif
