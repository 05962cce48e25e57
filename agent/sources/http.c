/*
 * agent/sources/http.c - the two HTTP sources: "http" (http.listen: the
 * wire format on POST /v1/events, plus the query API and health) and
 * "otlp" (otlp.listen: OTLP/HTTP only). Both run the server of
 * agent/api/ with a different role.
 */
#include <stdio.h>

#include "agent/api/api.h"
#include "agent/source.h"

static bool
http_enabled(const struct fr_config *c)
{
    return c->http_enabled;
}

static bool
otlp_enabled(const struct fr_config *c)
{
    return c->otlp_enabled;
}

static int
http_init(struct fr_pipeline *p, void **ctx, struct fr_err *err)
{
    struct fr_http *h = NULL;
    int rc = fr_http_start(p, p->conf.http_listen, FR_API_MAIN, &h, err);
    *ctx = h;
    return rc;
}

static int
otlp_init(struct fr_pipeline *p, void **ctx, struct fr_err *err)
{
    struct fr_http *h = NULL;
    int rc = fr_http_start(p, p->conf.otlp_listen, FR_API_OTLP, &h, err);
    *ctx = h;
    return rc;
}

static void
http_destroy(void *ctx)
{
    fr_http_stop(ctx);
}

static void
http_quiesce(void *ctx)
{
    fr_http_quiesce(ctx);
}

static void
http_describe(void *ctx, char *buf, size_t len)
{
    snprintf(buf, len, "http http://%s", fr_http_listen(ctx));
}

static void
otlp_describe(void *ctx, char *buf, size_t len)
{
    snprintf(buf, len, "otlp http://%s", fr_http_listen(ctx));
}

const struct fr_source fr_source_http = {
    .name = "http",
    .description = "POST /v1/events (the wire format), the query API and health on http.listen",
    .options = "http.*",
    .enabled = http_enabled,
    .init = http_init,
    .destroy = http_destroy,
    .quiesce = http_quiesce,
    .describe = http_describe,
};

const struct fr_source fr_source_otlp = {
    .name = "otlp",
    .description = "OTLP/HTTP, protobuf or JSON (/v1/traces, /v1/logs, /v1/metrics) on otlp.listen",
    .options = "otlp.*",
    .enabled = otlp_enabled,
    .init = otlp_init,
    .destroy = http_destroy,
    .quiesce = http_quiesce,
    .describe = otlp_describe,
};
