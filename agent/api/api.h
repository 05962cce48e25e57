/*
 * agent/api/api.h - the agent's HTTP API (libmicrohttpd, one thread per
 * connection, keep-alive), private to agent/api/ and the HTTP sources.
 *
 *   server.c   listening, buffering bodies, auth, routing
 *   answer.c   replies (JSON and text); an error text is always valid UTF-8
 *   ingest.c   POST /v1/events and OTLP/HTTP (/v1/traces, /v1/logs, /v1/metrics)
 *   query.c    GET /v1/conversations, /v1/conversations/ID, /v1/events, /v1/errors
 *   health.c   /healthz, /readyz, /metrics (never wait on a query)
 *   incidents.c /v1/incidents: bundles made, listed, downloaded
 *   ui.c       /ui/: the web console's files (embedded; no data, no token)
 *
 * Two listeners run the same server: the main one (http.listen) serves
 * everything; the OTLP one (otlp.listen) serves only the three OTLP paths
 * and health, so a port opened for telemetry exporters never serves reads.
 */
#ifndef FR_AGENT_API_H
#define FR_AGENT_API_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/api/mhd_dl.h"
#include "agent/pipeline.h"

/* A request's body as it arrives. */
struct fr_api_req {
    char *body;
    size_t len, cap;
    bool mapped;     /* body is its own mapping (fr_api_req_body_alloc), not heap */
    bool too_large;  /* over http.max_body_bytes: the rest is read and discarded */
    bool authorized; /* decided from the headers, before any byte of the body is kept */
    bool over_limit; /* opened past http.max_connections: only health is served */
    bool other_user; /* no token set, and the peer is another local user (http.local_users) */
    bool shed;       /* over http.max_inflight_bytes: read and dropped, answered 429 */
    bool busy;       /* no ingest queue room by http.queue_wait: read and dropped, 429 */
    size_t reserved; /* queue room reserved at the headers (fr_pipeline_admit); the work's */
    size_t held;     /* bytes of this body counted against http.max_inflight_bytes */
    double t0;       /* when the request's headers arrived (monotonic seconds) */
};

/*
 * The request's body is no longer needed (its events are prepared): freed,
 * and its bytes no longer count against http.max_inflight_bytes, while the
 * connection waits for the commit.
 */
void fr_api_req_release(struct fr_pipeline *p, struct fr_api_req *q);

/*
 * A body buffer of cap bytes for q (q->body, q->cap, which may be more). A
 * large one is a mapping of its own (a connection thread's malloc arena
 * would otherwise keep the pages of the largest body it ever held); freed,
 * it is zeroed and kept for the next large body (at most 4, 1 MiB together),
 * or unmapped. fr_api_body_pool_release() unmaps those kept (server stop).
 */
void fr_api_req_body_alloc(struct fr_api_req *q, size_t cap);
void fr_api_body_pool_release(void);
/* Appends n bytes to q's body; when they do not fit (a body without Content-Length, or more
   than announced), it grows on the heap to twice what it needs, at most max bytes (the caller
   has checked q->len + n + 1 <= max). */
void fr_api_req_body_add(struct fr_api_req *q, const void *data, size_t n, size_t max);
void fr_api_req_body_free(struct fr_api_req *q);

/* The status of the answer this thread queued last (one thread per connection): logged. */
extern _Thread_local int fr_api_answered_status;

enum fr_api_role {
    FR_API_MAIN, /* ingest, query API, health */
    FR_API_OTLP, /* OTLP paths and health only */
};

struct fr_http;

/* Listens on listen ("HOST:PORT", IPv4; port 0 = any free port) serving role for p. */
int fr_http_start(struct fr_pipeline *p, const char *listen, enum fr_api_role role,
                  struct fr_http **out, struct fr_err *err);
void fr_http_quiesce(struct fr_http *h); /* stop accepting new connections */
void fr_http_stop(struct fr_http *h);    /* finish in-flight requests, free */
int fr_http_port(const struct fr_http *h);
const char *fr_http_listen(const struct fr_http *h);

/*
 * The user owning the peer's end of the local TCP connection fd (IPv4), from
 * the kernel's socket table: asked for that one socket (sock_diag), or where
 * that cannot be asked, found in /proc/net/tcp. -1 when it cannot be told
 * (not IPv4, not a socket of this host). Used without a token, where only
 * the agent's own user and root are served (http.local_users owner).
 */
long fr_api_peer_uid(int fd);

/* Whether an Authorization value (len bytes, not NUL-terminated) is "Bearer <token>";
   true when no token is set. Compared as digests, in constant time. */
bool fr_api_bearer_ok(const char *value, size_t len, const char *token);

/* ---- replies (answer.c): each takes ownership of what it is given ---- */

enum MHD_Result fr_api_answer(struct fr_pipeline *p, struct MHD_Connection *c, int status,
                              const char *type, char *body, size_t len, const char *retry_after);
/* Queues a built response r (and releases it), counted and logged like every answer. */
enum MHD_Result fr_api_queue(struct fr_pipeline *p, struct MHD_Connection *c, int status,
                             struct MHD_Response *r);
/* j may be NULL (a failed json_pack): answered as 500 with a fixed text. */
enum MHD_Result fr_api_json(struct fr_pipeline *p, struct MHD_Connection *c, int status, json_t *j,
                            const char *retry_after);
/* {"error": msg}; bytes of msg that are not UTF-8 are replaced, so any input can be echoed. */
enum MHD_Result fr_api_error(struct fr_pipeline *p, struct MHD_Connection *c, int status,
                             const char *msg, const char *retry_after);

struct fr_qparams;
/* The request's query parameters (agent/api/params.h). */
void fr_api_qparams(struct MHD_Connection *c, struct fr_qparams *q);

/* ---- handlers ---- */

enum MHD_Result fr_api_post_events(struct fr_pipeline *p, struct MHD_Connection *c,
                                   struct fr_api_req *q);
enum MHD_Result fr_api_post_otlp(struct fr_pipeline *p, struct MHD_Connection *c,
                                 struct fr_api_req *q, const char *url);
enum MHD_Result fr_api_get_conversations(struct fr_pipeline *p, struct MHD_Connection *c);
enum MHD_Result fr_api_get_conversation(struct fr_pipeline *p, struct MHD_Connection *c,
                                        const char *id);
/* DELETE /v1/conversations/ID[?reason=...&dry_run=1]: erasure (retention/erase.c). */
enum MHD_Result fr_api_delete_conversation(struct fr_pipeline *p, struct MHD_Connection *c,
                                           const char *id);
enum MHD_Result fr_api_get_events(struct fr_pipeline *p, struct MHD_Connection *c);
/* GET /v1/summaries: what stays of conversations whose detail retention deleted. */
enum MHD_Result fr_api_get_summaries(struct fr_pipeline *p, struct MHD_Connection *c);
enum MHD_Result fr_api_get_errors(struct fr_pipeline *p, struct MHD_Connection *c);
/* POST /v1/incidents, GET /v1/incidents, GET /v1/incidents/NAME (agent/api/incidents.c). */
enum MHD_Result fr_api_post_incident(struct fr_pipeline *p, struct MHD_Connection *c);
enum MHD_Result fr_api_get_incidents(struct fr_pipeline *p, struct MHD_Connection *c);
enum MHD_Result fr_api_get_incident(struct fr_pipeline *p, struct MHD_Connection *c,
                                    const char *name);
/* GET /v1/finish-meanings?reason=R...: what provider finish reasons say of the answer. */
enum MHD_Result fr_api_get_finish_meanings(struct fr_pipeline *p, struct MHD_Connection *c);
/* GET /v1/stats: rollups per key (and per time step with ?step=). */
enum MHD_Result fr_api_get_stats(struct fr_pipeline *p, struct MHD_Connection *c);
/* GET /ui/...: the console's files, embedded at build time (agent/api/ui.c). */
enum MHD_Result fr_api_ui(struct fr_pipeline *p, struct MHD_Connection *c, const char *url);
enum MHD_Result fr_api_healthz(struct fr_pipeline *p, struct MHD_Connection *c);
enum MHD_Result fr_api_readyz(struct fr_pipeline *p, struct MHD_Connection *c);
enum MHD_Result fr_api_metrics(struct fr_pipeline *p, struct MHD_Connection *c);

#endif
