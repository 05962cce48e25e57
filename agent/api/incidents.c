/*
 * agent/api/incidents.c - incident bundles through the API (the console's
 * Incidents view): POST /v1/incidents builds one (a conversation, or the
 * conversations with a failure of a class/code in a time window), GET
 * /v1/incidents lists incident.bundle_dir with each bundle's upload state
 * from the outbox, GET /v1/incidents/NAME downloads one. Reading data out,
 * so the query token is enough (server.c).
 */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/api/api.h"
#include "agent/api/params.h"
#include "agent/triggers.h"
#include "collectors/taxonomy.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "exporters/bundle.h"
#include "exporters/upload.h"

enum MHD_Result
fr_api_post_incident(struct fr_pipeline *p, struct MHD_Connection *c)
{
    static const char *const allowed[] = {"conv_id", "error_class", "error_code",
                                          "since",   "until",       NULL};
    struct fr_qparams q;
    fr_api_qparams(c, &q);
    struct fr_bundle_select sel = {0};
    char msg[600];
    int limit;
    if (!fr_qparams_common(&q, allowed, fr_now_ms(), 0, &sel.since_ms, &sel.until_ms, &limit, msg,
                           sizeof msg))
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    const char *conv = fr_qparams_get(&q, "conv_id");
    sel.error_class = fr_qparams_get(&q, "error_class");
    sel.error_code = fr_qparams_get(&q, "error_code");
    if (sel.error_class && fr_error_class_parse(sel.error_class) <= 0)
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST, "error_class: not an error class", NULL);
    if (conv == NULL && sel.since_ms == 0)
        return fr_api_error(p, c, MHD_HTTP_BAD_REQUEST,
                            "give conv_id, or since (with error_class or error_code to choose "
                            "the conversations of a time window)",
                            NULL);
    const char *convs[1] = {conv};
    if (conv != NULL) {
        sel.convs = convs;
        sel.nconvs = 1;
    }
    struct fr_bundle_info info;
    struct fr_err err = {0};
    char *path = NULL;
    int rc = fr_incident_bundle(p, "console", conv ? conv : "window", &sel, &path, &info, &err);
    if (rc != FR_OK)
        return fr_api_error(
            p, c, rc == FR_E_INVALID ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_SERVICE_UNAVAILABLE, err.msg,
            NULL);
    /* queued for upload like a rule's bundle; the agent's outbox retry sends it */
    if (p->conf.incident_upload_config[0] && p->conf.incident_upload_to[0]) {
        struct fr_upload_config uc;
        if (fr_upload_config_load(p->conf.incident_upload_config, &uc, &err) == FR_OK) {
            if (fr_outbox_add(&uc, path, p->conf.incident_upload_to, &err) != FR_OK)
                fr_log(FR_LOG_ERROR, "incident", "bundle %s not queued for upload: %s", path,
                       err.msg);
            fr_upload_config_clear(&uc);
        }
    }
    fr_log(FR_LOG_INFO, "incident", "bundle %s made through the API: %zu events", path,
           info.events);
    json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:I}", "name", strrchr(path, '/') + 1, "id", info.id,
                          "events", (json_int_t)info.events, "conversations",
                          (json_int_t)info.conversations, "bytes", (json_int_t)info.bytes);
    free(path);
    return fr_api_json(p, c, MHD_HTTP_CREATED, j, NULL);
}

/* A bundle's file name as this agent makes them: no path, no dot file. */
static bool
bundle_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 9 || n > 255 || name[0] == '.' || strcmp(name + n - 8, ".tar.zst") != 0)
        return false;
    for (const char *s = name; *s; s++)
        if (*s == '/' || *s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return false;
    return true;
}

static int
newest_first(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "mtime_ms"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "mtime_ms"));
    return x < y ? 1 : x > y ? -1 : 0;
}

enum MHD_Result
fr_api_get_incidents(struct fr_pipeline *p, struct MHD_Connection *c)
{
    json_t *outbox = json_object();
    if (p->conf.incident_upload_config[0]) {
        struct fr_upload_config uc;
        struct fr_err err = {0};
        if (fr_upload_config_load(p->conf.incident_upload_config, &uc, &err) == FR_OK) {
            struct fr_outbox_item *items = NULL;
            size_t n = 0;
            if (fr_outbox_list(uc.outbox, &items, &n, &err) == FR_OK)
                for (size_t i = 0; i < n; i++) {
                    const char *base = strrchr(items[i].file, '/');
                    json_object_set_new(outbox, base ? base + 1 : items[i].file,
                                        json_pack("{s:s,s:s,s:i,s:s?}", "state", "waiting",
                                                  "target", items[i].target, "attempts",
                                                  items[i].attempts, "error", items[i].last_error));
                }
            fr_outbox_items_free(items, n);
            fr_upload_config_clear(&uc);
        }
    }
    /* the bundles, gathered then listed newest first */
    json_t **v = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(p->conf.incident_bundle_dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        struct stat sb;
        char *path = fr_asprintf("%s/%s", p->conf.incident_bundle_dir, de->d_name);
        if (bundle_name_ok(de->d_name) && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (n == cap)
                v = fr_realloc(v, (cap = cap ? 2 * cap : 16) * sizeof *v);
            v[n++] = json_pack("{s:s,s:I,s:I,s:O?}", "name", de->d_name, "bytes",
                               (json_int_t)sb.st_size, "mtime_ms",
                               (json_int_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000,
                               "upload", json_object_get(outbox, de->d_name));
        }
        free(path);
    }
    if (d != NULL)
        closedir(d);
    json_decref(outbox);
    if (n > 1)
        qsort(v, n, sizeof *v, newest_first);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, v[i]);
    free(v);
    return fr_api_json(p, c, MHD_HTTP_OK,
                       json_pack("{s:o,s:s?}", "bundles", list, "upload_to",
                                 p->conf.incident_upload_to[0] ? p->conf.incident_upload_to : NULL),
                       NULL);
}

enum MHD_Result
fr_api_get_incident(struct fr_pipeline *p, struct MHD_Connection *c, const char *name)
{
    if (!bundle_name_ok(name))
        return fr_api_error(p, c, MHD_HTTP_NOT_FOUND, "not a bundle name", NULL);
    char *path = fr_asprintf("%s/%s", p->conf.incident_bundle_dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0)
            close(fd);
        return fr_api_error(p, c, MHD_HTTP_NOT_FOUND, "no such bundle", NULL);
    }
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
    if (r == NULL) {
        close(fd);
        return MHD_NO;
    }
    char disp[300];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", name);
    MHD_add_response_header(r, "Content-Type", "application/zstd");
    MHD_add_response_header(r, "Content-Disposition", disp);
    return fr_api_queue(p, c, MHD_HTTP_OK, r);
}
