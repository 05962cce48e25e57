/*
 * agent/api/server.c - the HTTP server: listening, auth, body buffering and
 * routing (api.h). Authorization is decided from the headers at the first
 * callback, before any byte of a body is kept, so an unauthenticated
 * client cannot make the agent buffer anything; a kept body never grows
 * past http.max_body_bytes + 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent/api/api.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"

/*
 * Connections: http.max_connections serve requests; FR_HEALTH_RESERVE more
 * are accepted so that /healthz, /readyz and /metrics answer while the
 * others are all taken. A connection beyond max_connections gets a short
 * idle timeout (FR_EXCESS_TIMEOUT_S) and any request on it but health is
 * answered 503 at once: a flood of idle or half-open connections cycles
 * through the reserve in seconds instead of holding it.
 */
#define FR_HEALTH_RESERVE 16
#define FR_EXCESS_TIMEOUT_S 2

struct fr_http {
    struct fr_pipeline *p;
    enum fr_api_role role;
    struct MHD_Daemon *d;
    int port;
    char *listen;
    atomic_int open; /* connections open now */
};

/* Constant-time: both sides are hashed, so neither content nor length leaks through timing. */
bool
fr_api_bearer_ok(const char *value, size_t len, const char *token)
{
    if (token == NULL || token[0] == '\0')
        return true;
    if (value == NULL || len < 7 || strncasecmp(value, "Bearer ", 7) != 0)
        return false;
    unsigned char want[SHA256_DIGEST_LENGTH], got[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), want);
    SHA256((const unsigned char *)value + 7, len - 7, got);
    return CRYPTO_memcmp(want, got, sizeof want) == 0;
}

static bool
token_ok(struct MHD_Connection *c, const char *token)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    return fr_api_bearer_ok(h, h ? strlen(h) : 0, token);
}

/*
 * The peer socket's owner from the kernel's socket table in the agent's
 * network namespace, asked for that one socket by its address pair
 * (NETLINK_SOCK_DIAG): the socket whose source is the peer and whose
 * destination is this end. -1: no such local socket; -2: cannot be asked.
 */
static long
peer_uid_diag(const struct sockaddr_in *peer, const struct sockaddr_in *local)
{
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return -2;
    struct {
        struct nlmsghdr h;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof req);
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST;
    req.r.sdiag_family = AF_INET;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = ~0U;
    req.r.id.idiag_sport = peer->sin_port;
    req.r.id.idiag_dport = local->sin_port;
    req.r.id.idiag_src[0] = peer->sin_addr.s_addr;
    req.r.id.idiag_dst[0] = local->sin_addr.s_addr;
    req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    long uid = -2;
    union {
        struct nlmsghdr h;
        char bytes[2048];
    } ans;
    ssize_t n = -1;
    if (sendto(nl, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) ==
        (ssize_t)sizeof req)
        n = recv(nl, &ans, sizeof ans, 0);
    close(nl);
    if (n > 0 && NLMSG_OK(&ans.h, (size_t)n)) {
        if (ans.h.nlmsg_type == SOCK_DIAG_BY_FAMILY &&
            ans.h.nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
            const struct inet_diag_msg *m = NLMSG_DATA(&ans.h);
            uid = (long)m->idiag_uid;
        } else if (ans.h.nlmsg_type == NLMSG_ERROR &&
                   ans.h.nlmsg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
            const struct nlmsgerr *e = NLMSG_DATA(&ans.h);
            uid = e->error == -ENOENT ? -1 : -2;
        }
    }
    return uid;
}

/* The same from /proc/net/tcp: a scan of every TCP socket of the namespace. */
static long
peer_uid_proc(const struct sockaddr_in *peer, const struct sockaddr_in *local)
{
    unsigned want_ip = peer->sin_addr.s_addr; /* /proc prints it as the host's u32 of these bytes */
    unsigned want_port = ntohs(peer->sin_port), server_port = ntohs(local->sin_port);
    FILE *f = fopen("/proc/net/tcp", "r");
    if (f == NULL)
        return -1;
    char line[512];
    long uid = -1;
    if (fgets(line, sizeof line, f) != NULL) /* the header */
        while (uid < 0 && fgets(line, sizeof line, f) != NULL) {
            unsigned lip, lport, rip, rport, st;
            unsigned long u;
            if (sscanf(line, " %*u: %8X:%4X %8X:%4X %2X %*X:%*X %*X:%*X %*X %lu", &lip, &lport,
                       &rip, &rport, &st, &u) == 6 &&
                lip == want_ip && lport == want_port && rport == server_port)
                uid = (long)u;
        }
    fclose(f);
    return uid;
}

long
fr_api_peer_uid(int fd)
{
    struct sockaddr_storage peer, local;
    socklen_t pl = sizeof peer, ll = sizeof local;
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 ||
        getsockname(fd, (struct sockaddr *)&local, &ll) != 0 || peer.ss_family != AF_INET ||
        local.ss_family != AF_INET)
        return -1;
    const struct sockaddr_in *p = (const struct sockaddr_in *)&peer,
                             *l = (const struct sockaddr_in *)&local;
    long uid = peer_uid_diag(p, l);
    return uid != -2 ? uid : peer_uid_proc(p, l);
}

/*
 * What is known of one TCP connection for all its requests: its peer's user,
 * looked up in the kernel's socket table once (a scan of every socket on
 * the host) rather than per request.
 */
struct conn_info {
    bool uid_known;
    long uid;
};

/* Without a token and with http.local_users owner: whether the peer is another user. */
static bool
other_local_user(struct fr_http *h, struct MHD_Connection *c)
{
    if (h->p->conf.http_local_users != 0)
        return false;
    const union MHD_ConnectionInfo *sc =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_info *conn = sc != NULL ? sc->socket_context : NULL;
    long uid;
    if (conn != NULL && conn->uid_known) {
        uid = conn->uid;
    } else {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        uid = fr_api_peer_uid(ci ? ci->connect_fd : -1);
        if (conn != NULL) {
            conn->uid = uid;
            conn->uid_known = true;
        }
    }
    /* unknown owner: not served (a loopback peer is always in the table) */
    return !(uid == (long)getuid() || uid == 0);
}

static bool
is_otlp_path(const char *url)
{
    return strcmp(url, "/v1/traces") == 0 || strcmp(url, "/v1/logs") == 0 ||
           strcmp(url, "/v1/metrics") == 0;
}

/* A POST here stores events: refused at its headers when the ingest queue is full. */
static bool
ingests(const char *url)
{
    return is_otlp_path(url) || strcmp(url, "/v1/events") == 0;
}

/*
 * Reads need the query token when one is set; writes always the ingest
 * token. Without any token, only the agent's own user (and root) may use
 * /v1/ unless http.local_users is any: *other_user says it was refused so.
 */
static bool
authorized(struct fr_http *h, struct MHD_Connection *c, const char *url, const char *method,
           bool *other_user)
{
    *other_user = false;
    if (strncmp(url, "/v1/", 4) != 0)
        return true; /* health and metrics: no data */
    bool get = strcmp(method, "GET") == 0;
    struct fr_live *l = fr_pipeline_live_get(h->p);
    if (strcmp(method, "DELETE") == 0) {
        /* erasure: only with the admin token; none set, the API erases nothing */
        bool ok = l->admin_token[0] != '\0' && token_ok(c, l->admin_token);
        fr_pipeline_live_put(h->p, l);
        return ok;
    }
    /* an incident bundle is data read out: the query token makes one too */
    bool reads = get || (strcmp(method, "POST") == 0 && strcmp(url, "/v1/incidents") == 0);
    const char *token = reads && l->query_token[0] ? l->query_token : l->token;
    bool open = token == NULL || token[0] == '\0';
    bool ok = token_ok(c, token);
    fr_pipeline_live_put(h->p, l);
    if (ok && open && other_local_user(h, c)) {
        *other_user = true;
        return false;
    }
    return ok;
}

/* Keeps upload bytes of an authorized request, up to the limit + 1. */
static void
req_append(struct fr_http *h, struct fr_api_req *q, const char *data, size_t n, size_t limit)
{
    if (q->too_large || !q->authorized || q->shed || q->busy)
        return; /* read and discarded, so the answer still arrives */
    if (q->len + n > q->held && !fr_pipeline_inflight_take(h->p, &q->held, q->len + n - q->held)) {
        q->shed = true; /* the agent holds enough bodies now: refused before any work */
        fr_api_req_body_free(q);
        return;
    }
    if (q->len + n > limit) {
        q->too_large = true;
        fr_api_req_body_free(q);
        return;
    }
    fr_api_req_body_add(q, data, n, limit + 1);
}

static enum MHD_Result
route_v1(struct fr_http *h, struct MHD_Connection *c, struct fr_api_req *q, const char *url,
         bool get, bool post, bool del)
{
    struct fr_pipeline *p = h->p;
    if (is_otlp_path(url)) {
        if (post)
            return fr_api_post_otlp(p, c, q, url);
    } else if (h->role == FR_API_OTLP) {
        return fr_api_error(p, c, MHD_HTTP_NOT_FOUND,
                            "this is the OTLP listener: only /v1/traces, /v1/logs and "
                            "/v1/metrics are served here",
                            NULL);
    } else if (strcmp(url, "/v1/events") == 0) {
        if (post)
            return fr_api_post_events(p, c, q);
        if (get)
            return fr_api_get_events(p, c);
    } else if (strcmp(url, "/v1/errors") == 0) {
        if (get)
            return fr_api_get_errors(p, c);
    } else if (strcmp(url, "/v1/incidents") == 0) {
        if (post)
            return fr_api_post_incident(p, c);
        if (get)
            return fr_api_get_incidents(p, c);
    } else if (strncmp(url, "/v1/incidents/", 14) == 0 && url[14] != '\0') {
        if (get)
            return fr_api_get_incident(p, c, url + 14);
    } else if (strcmp(url, "/v1/stats") == 0) {
        if (get)
            return fr_api_get_stats(p, c);
    } else if (strcmp(url, "/v1/finish-meanings") == 0) {
        if (get)
            return fr_api_get_finish_meanings(p, c);
    } else if (strcmp(url, "/v1/summaries") == 0) {
        if (get)
            return fr_api_get_summaries(p, c);
    } else if (strcmp(url, "/v1/conversations") == 0) {
        if (get)
            return fr_api_get_conversations(p, c);
    } else if (strncmp(url, "/v1/conversations/", 18) == 0 && url[18] != '\0') {
        if (get)
            return fr_api_get_conversation(p, c, url + 18);
        if (del)
            return fr_api_delete_conversation(p, c, url + 18);
    } else {
        return fr_api_error(p, c, MHD_HTTP_NOT_FOUND, "no such endpoint", NULL);
    }
    return fr_api_error(p, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed here", NULL);
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version, const char *upload,
                                      size_t *upload_size, void **ctx);

/*
 * One line per request at info: method, path (never the query string or a
 * body), status, duration; debug adds nothing more. Control characters in
 * the path are escaped by the logger.
 */
static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload, size_t *upload_size, void **ctx)
{
    bool first = *ctx == NULL, body = *upload_size > 0;
    fr_api_answered_status = 0;
    enum MHD_Result r = handle_request(cls, c, url, method, version, upload, upload_size, ctx);
    if (!first && !body && fr_api_answered_status != 0) {
        const struct fr_api_req *q = *ctx;
        fr_log(FR_LOG_INFO, "http", "%s %.*s %d %.1f ms", method, (int)strcspn(url, "?"), url,
               fr_api_answered_status, (fr_mono_s() - q->t0) * 1000.0);
    }
    return r;
}

static enum MHD_Result
handle_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
               const char *version, const char *upload, size_t *upload_size, void **ctx)
{
    (void)version;
    struct fr_http *h = cls;
    struct fr_pipeline *p = h->p;
    bool post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
    size_t limit = (size_t)p->conf.http_max_body_bytes;
    bool health = get && (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0 ||
                          strcmp(url, "/metrics") == 0);
    if (*ctx == NULL) {
        struct fr_api_req *q = fr_calloc(1, sizeof *q);
        *ctx = q;
        q->t0 = fr_mono_s();
        q->over_limit = !health && atomic_load(&h->open) > (int)p->conf.http_max_connections;
        q->authorized = authorized(h, c, url, method, &q->other_user);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        unsigned long long clen = cl != NULL ? strtoull(cl, NULL, 10) : 0;
        if (clen > (unsigned long long)limit)
            q->too_large = true;
        else if (post && q->authorized && !q->over_limit && ingests(url) &&
                 fr_pipeline_admit(p, is_otlp_path(url) ? 0 : (size_t)clen, &q->reserved) != FR_OK)
            q->busy = true; /* refused before its body costs anything: no buffer, no count */
        else if (clen > 0 && post && q->authorized &&
                 !fr_pipeline_inflight_take(p, &q->held, (size_t)clen))
            q->shed = true;
        else if (clen > 0 && post && q->authorized) /* the body's size, allocated once */
            fr_api_req_body_alloc(q, (size_t)clen + 1);
        return MHD_YES;
    }
    struct fr_api_req *q = *ctx;
    if (*upload_size > 0) {
        req_append(h, q, upload, *upload_size, limit);
        *upload_size = 0;
        return MHD_YES;
    }
    if (q->over_limit)
        return fr_api_error(p, c, MHD_HTTP_SERVICE_UNAVAILABLE,
                            "connection limit reached (http.max_connections); retry shortly", "1");
    if (strcmp(url, "/healthz") == 0 && get)
        return fr_api_healthz(p, c);
    if (strcmp(url, "/readyz") == 0 && get)
        return fr_api_readyz(p, c);
    if (strcmp(url, "/metrics") == 0 && get)
        return fr_api_metrics(p, c);
    /* the console's files carry no data: served without a token, on the main listener only */
    if (get && h->role == FR_API_MAIN &&
        (strcmp(url, "/") == 0 || strcmp(url, "/ui") == 0 || strncmp(url, "/ui/", 4) == 0))
        return fr_api_ui(p, c, url);
    if (strncmp(url, "/v1/", 4) != 0)
        return fr_api_error(p, c, MHD_HTTP_NOT_FOUND, "no such endpoint", NULL);
    if (q->other_user)
        return fr_api_error(p, c, MHD_HTTP_FORBIDDEN,
                            "no token is set, so only the agent's own user and root may use "
                            "/v1/ here: run as that user, or set http.auth_token_file (or "
                            "http.local_users: any); docs/security.md",
                            NULL);
    bool del = strcmp(method, "DELETE") == 0;
    if (!q->authorized && del && h->role != FR_API_OTLP) {
        struct fr_live *l = fr_pipeline_live_get(p);
        bool off = l->admin_token[0] == '\0';
        fr_pipeline_live_put(p, l);
        if (off)
            return fr_api_error(p, c, MHD_HTTP_FORBIDDEN,
                                "erasure through the API is off: set http.admin_token_file (a "
                                "token of its own), or use flightrec erase",
                                NULL);
    }
    if (!q->authorized)
        return fr_api_error(p, c, MHD_HTTP_UNAUTHORIZED, "missing or wrong bearer token", NULL);
    return route_v1(h, c, q, url, get, post, del);
}

static void
completed(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode toe)
{
    struct fr_http *h = cls;
    (void)c;
    (void)toe;
    struct fr_api_req *q = *ctx;
    if (q != NULL) {
        fr_api_req_release(h->p, q);
        fr_pipeline_unreserve(h->p, q->reserved); /* not taken by the work (an error answer) */
        free(q);
        *ctx = NULL;
    }
}

static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
              enum MHD_ConnectionNotificationCode toe)
{
    struct fr_http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        free(*socket_ctx);
        *socket_ctx = NULL;
        atomic_fetch_sub(&h->open, 1);
        return;
    }
    *socket_ctx = fr_calloc(1, sizeof(struct conn_info));
    int open = atomic_fetch_add(&h->open, 1) + 1;
    if (open > (int)h->p->conf.http_max_connections)
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
                                  (unsigned int)FR_EXCESS_TIMEOUT_S);
}

static int
parse_listen(const char *listen, struct sockaddr_in *sa, struct fr_err *err)
{
    const char *colon = strrchr(listen, ':');
    char host[64];
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || (size_t)(colon - listen) >= sizeof host || colon[1] == '\0' ||
        *end != '\0' || port < 0 || port > 65535)
        return fr_err_set(err, FR_E_CONFIG, "listen: expected HOST:PORT (IPv4), got '%s'", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return fr_err_set(err, FR_E_CONFIG, "listen: '%s' is not an IPv4 address", host);
    sa->sin_port = htons((uint16_t)port);
    return FR_OK;
}

int
fr_http_start(struct fr_pipeline *p, const char *listen, enum fr_api_role role,
              struct fr_http **out, struct fr_err *err)
{
    *out = NULL;
    struct sockaddr_in sa;
    int rc = parse_listen(listen, &sa, err);
    if (rc == FR_OK)
        rc = fr_mhd_load(err); /* opened now, not by every CLI command (core/dl.h) */
    if (rc != FR_OK)
        return rc;
    struct fr_http *h = fr_calloc(1, sizeof *h);
    h->p = p;
    h->role = role;
    atomic_init(&h->open, 0);
    h->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_ITC | MHD_USE_ERROR_LOG,
                            ntohs(sa.sin_port), NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_NOTIFY_CONNECTION,
                            on_connection, h, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)p->conf.http_max_connections + FR_HEALTH_RESERVE,
                            MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)(p->conf.http_idle_timeout_ms / 1000), MHD_OPTION_END);
    if (h->d == NULL) {
        free(h);
        return fr_err_set(err, FR_E_IO, "cannot listen on %s (in use, or not an address here)",
                          listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : ntohs(sa.sin_port);
    h->listen = fr_asprintf("%.*s:%d", (int)strcspn(listen, ":"), listen, h->port);
    *out = h;
    return FR_OK;
}

int
fr_http_port(const struct fr_http *h)
{
    return h->port;
}

const char *
fr_http_listen(const struct fr_http *h)
{
    return h->listen;
}

void
fr_http_quiesce(struct fr_http *h)
{
    if (h != NULL) {
        MHD_socket s = MHD_quiesce_daemon(h->d);
        if (s != MHD_INVALID_SOCKET)
            close(s);
    }
}

void
fr_http_stop(struct fr_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->d);
    fr_api_body_pool_release();
    free(h->listen);
    free(h);
}
