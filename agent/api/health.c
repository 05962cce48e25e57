/*
 * agent/api/health.c - /healthz (the process answers), /readyz (it can
 * take events now: queue below 90%, last commit fine, store answering on
 * its own connection) and /metrics (Prometheus text). None of them takes
 * a connection of the query pool, so slow reads never fail a probe.
 */
#include <stdio.h>
#include <string.h>

#include "agent/api/api.h"
#include "core/fsutil.h"
#include "core/mem.h"
#include "exporters/upload.h"

enum MHD_Result
fr_api_healthz(struct fr_pipeline *p, struct MHD_Connection *c)
{
    return fr_api_answer(p, c, MHD_HTTP_OK, "text/plain", fr_strdup("ok\n"), 3, NULL);
}

enum MHD_Result
fr_api_readyz(struct fr_pipeline *p, struct MHD_Connection *c)
{
    char why[1024];
    bool ok = fr_pipeline_ready(p, why, sizeof why);
    char *body = fr_asprintf("%s\n", why);
    return fr_api_answer(p, c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", body,
                         strlen(body), ok ? NULL : "1");
}

static size_t
outbox_size(struct fr_pipeline *p)
{
    if (!p->conf.incident_upload_config[0])
        return 0;
    struct fr_upload_config c;
    struct fr_outbox_item *items = NULL;
    size_t n = 0;
    if (fr_upload_config_load(p->conf.incident_upload_config, &c, NULL) == FR_OK) {
        fr_outbox_list(c.outbox, &items, &n, NULL);
        fr_outbox_items_free(items, n);
        fr_upload_config_clear(&c);
    }
    return n;
}

enum MHD_Result
fr_api_metrics(struct fr_pipeline *p, struct MHD_Connection *c)
{
    char why[1024], bad[8];
    struct fr_metrics_gauges g = {.queue_events = fr_writer_queued(p->writer),
                                  .queue_capacity = (size_t)p->conf.queue_events,
                                  .store_bytes = fr_pipeline_store_bytes(p),
                                  .ready = fr_pipeline_ready(p, why, sizeof why),
                                  .outbox = outbox_size(p),
                                  .bad_segments = fr_pipeline_bad_segments(p, bad, sizeof bad),
                                  .inflight_bytes = atomic_load(&p->http_inflight),
                                  .queue_waiting = atomic_load(&p->queue_waiting)};
    uint64_t avail, total;
    if (fr_fs_space(p->conf.db_path, &avail, &total)) {
        g.disk_free_bytes = (int64_t)avail;
        g.disk_bytes = (int64_t)total;
    }
    pthread_mutex_lock(&p->ship.mu);
    struct fr_ship_state ship = p->ship; /* a copy: rendered without the lock */
    pthread_mutex_unlock(&p->ship.mu);
    g.ship = &ship;
    pthread_mutex_lock(&p->bucket.mu);
    struct fr_bucket_state bucket = p->bucket;
    pthread_mutex_unlock(&p->bucket.mu);
    g.bucket = &bucket;
    pthread_mutex_lock(&p->retention_state.mu);
    struct fr_retention_state retention = p->retention_state;
    pthread_mutex_unlock(&p->retention_state.mu);
    g.retention = &retention;
    struct fr_store_wal_stats wal;
    fr_writer_wal_stats(p->writer, &wal);
    g.wal = &wal;
    size_t len;
    char *body = fr_metrics_render(p->metrics, &g, &len);
    return fr_api_answer(p, c, MHD_HTTP_OK, "text/plain; version=0.0.4", body, len, NULL);
}
