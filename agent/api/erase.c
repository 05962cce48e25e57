/*
 * agent/api/erase.c - DELETE /v1/conversations/ID: the erasure of
 * `flightrec erase` through the API, behind the admin token (server.c);
 * on a write connection of its own, so ingest keeps going meanwhile.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api/api.h"
#include "agent/api/params.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "exporters/upload.h"
#include "retention/hot/archive.h"
#include "retention/retention.h"

enum MHD_Result
fr_api_delete_conversation(struct fr_pipeline *p, struct MHD_Connection *c, const char *id)
{
    static const char *const allowed[] = {"reason", "dry_run", NULL};
    struct fr_qparams q;
    fr_api_qparams(c, &q);
    char msg[600];
    int64_t unused = 0;
    int limit;
    if (!fr_qparams_common(&q, allowed, fr_now_ms(), 0, &unused, &unused, &limit, msg, sizeof msg))
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    const char *dry = fr_qparams_get(&q, "dry_run");
    bool dry_run = dry != NULL && (strcmp(dry, "1") == 0 || strcmp(dry, "true") == 0);
    if (dry != NULL && !dry_run && strcmp(dry, "0") != 0 && strcmp(dry, "false") != 0)
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, "dry_run: expected 1, true, 0 or false",
                            NULL);
    struct fr_err err = {0};
    struct fr_retention_policy pol;
    const char *rp = p->conf.retention_policy;
    if (fr_retention_policy_load(rp[0] ? rp : NULL, p->conf.db_path, &pol, &err) != FR_OK)
        return fr_api_error(p, c, MHD_HTTP_SERVICE_UNAVAILABLE, err.msg, NULL);
    struct fr_store_opts so;
    fr_store_opts_default(&so);
    so.create = false;
    so.busy_timeout_ms = (int)p->conf.busy_timeout_ms;
    so.read_only = dry_run;
    struct fr_store *st = NULL;
    int rc = fr_store_open(p->conf.db_path, &so, &st, &err);
    struct fr_erase_stats s = {0};
    if (rc == FR_OK)
        rc = fr_retention_erase(st, &pol, &id, 1, NULL, 0, fr_qparams_get(&q, "reason"),
                                fr_now_ms(), dry_run, &s, &err);
    /* copies of its data outside the store: automatic bundles, queued uploads */
    struct fr_erased_copies copies = {0};
    if (rc == FR_OK && !dry_run)
        rc = fr_erase_copies(p->conf.incident_bundle_dir, p->conf.incident_upload_config,
                             fr_store_erased_cb, st, &copies, &err);
    fr_store_close(st);
    fr_retention_policy_clear(&pol);
    if (rc != FR_OK)
        return fr_api_error(p, c, MHD_HTTP_SERVICE_UNAVAILABLE, err.msg, NULL);
    /* the copy shipped to the fleet store goes too (docs/fleet.md) */
    int64_t fleet_events = -1;
    if (p->conf.ship_url[0]) {
        struct fr_store *fleet = NULL;
        rc = fr_store_open(p->conf.ship_url, NULL, &fleet, &err);
        if (rc == FR_OK)
            rc = fr_store_erase_hot(fleet, id, fr_qparams_get(&q, "reason"), fr_now_ms(), dry_run,
                                    &fleet_events, &err);
        fr_store_close(fleet);
        if (rc != FR_OK) {
            char *m = fr_asprintf("erased from this agent's store, not yet from the fleet store "
                                  "(%s): send the request again",
                                  err.msg);
            enum MHD_Result r = fr_api_error(p, c, MHD_HTTP_SERVICE_UNAVAILABLE, m, "5");
            free(m);
            return r;
        }
    }
    fr_log(FR_LOG_WARN, "api", "%s conversation: %llu hot events, %llu archive records%s",
           dry_run ? "dry run of erasing a" : "erased a", (unsigned long long)s.hot_events,
           (unsigned long long)s.records_removed, s.pending_left ? " (pending)" : "");
    json_t *out =
        json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:f}", "dry_run", dry_run, "bundles_removed",
                  (json_int_t)(copies.bundles + copies.queued), "hot_events",
                  (json_int_t)s.hot_events, "records_removed", (json_int_t)s.records_removed,
                  "segments_rewritten", (json_int_t)s.segments_rewritten, "segments_deleted",
                  (json_int_t)s.segments_deleted, "bytes_rewritten", (json_int_t)s.bytes_rewritten,
                  "pending", s.pending_left > 0, "seconds", s.seconds);
    if (fleet_events >= 0)
        json_object_set_new(out, "fleet_events", json_integer(fleet_events));
    if (s.pending_left > 0)
        json_object_set_new(out, "message",
                            json_string("a segment could not be read (the agent log names it); "
                                        "the erasure stays pending and the next retention run "
                                        "finishes it"));
    return fr_api_json(p, c, MHD_HTTP_OK, out, NULL);
}
