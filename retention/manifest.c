/*
 * retention/manifest.c - the MANIFEST journal beside the segments (one JSON
 * line per add, adopt, replace, delete; fsync'd, so `archive rebuild` can
 * restore the database's manifest from it), the rebuild itself, and the
 * path lists and manifest rows the mover and reconciliation share.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "retention/internal.h"
#include "retention/objstore.h"

/* Appends one entry (r NULL: a path alone); grows every array by one. */
static void
paths_push(struct paths *p, const char *path, const struct fr_manifest_row *r)
{
    size_t n = p->n + 1;
    p->v = fr_realloc(p->v, n * sizeof *p->v);
    p->tier = fr_realloc(p->tier, n * sizeof *p->tier);
    p->min_ts = fr_realloc(p->min_ts, n * sizeof *p->min_ts);
    p->max_ts = fr_realloc(p->max_ts, n * sizeof *p->max_ts);
    p->pending = fr_realloc(p->pending, n * sizeof *p->pending);
    p->mapped = fr_realloc(p->mapped, n * sizeof *p->mapped);
    p->sha = fr_realloc(p->sha, n * sizeof *p->sha);
    p->bad = fr_realloc(p->bad, n * sizeof *p->bad);
    p->checked = fr_realloc(p->checked, n * sizeof *p->checked);
    p->v[p->n] = fr_strdup(path);
    p->tier[p->n] = fr_strdup(r ? r->tier : "");
    p->min_ts[p->n] = r ? r->min_ts : 0;
    p->max_ts[p->n] = r ? r->max_ts : 0;
    p->pending[p->n] = r && r->pending;
    p->mapped[p->n] = r && r->mapped;
    p->sha[p->n] = r && r->sha256 ? fr_strdup(r->sha256) : NULL;
    p->bad[p->n] = r && r->bad ? fr_strdup(r->bad) : NULL;
    p->checked[p->n] = r && r->checked ? fr_strdup(r->checked) : NULL;
    p->n = n;
}

int
fr_ret_collect_manifest(void *ud, const struct fr_manifest_row *r)
{
    paths_push(ud, r->path, r);
    return 0;
}

int
fr_ret_collect_path(void *ud, const char *path)
{
    paths_push(ud, path, NULL);
    return 0;
}

void
fr_ret_paths_free(struct paths *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i]);
        free(p->tier[i]);
        free(p->sha[i]);
        free(p->bad[i]);
        free(p->checked[i]);
    }
    free(p->v);
    free(p->tier);
    free(p->min_ts);
    free(p->max_ts);
    free(p->pending);
    free(p->mapped);
    free(p->sha);
    free(p->bad);
    free(p->checked);
    memset(p, 0, sizeof *p);
}

bool
fr_ret_paths_has(const struct paths *p, const char *path)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i], path) == 0)
            return true;
    return false;
}

/* The other tier's file name of a segment (x.warm.seg <-> x.cold.seg). */
char *
fr_ret_twin_path(const char *path)
{
    const char *w = strstr(path, ".warm.seg"), *c = strstr(path, ".cold.seg");
    if (w)
        return fr_asprintf("%.*s.cold.seg", (int)(w - path), path);
    if (c)
        return fr_asprintf("%.*s.warm.seg", (int)(c - path), path);
    return NULL;
}

/*
 * Appends one record to the MANIFEST journal and fsyncs it. A failure is
 * returned, never skipped: `archive rebuild` would not know the change, so
 * the run stops before committing it and says so.
 */
bool
fr_ret_foreign(const char *path, const char *store_id)
{
    if (store_id == NULL || store_id[0] == '\0')
        return false;
    struct fr_seg *seg;
    if (fr_seg_open(path, NULL, &seg, NULL) != FR_OK) /* the header is enough */
        return false; /* not readable as a segment: judged by the caller */
    const char *owner = fr_seg_get_info(seg)->store_id;
    bool foreign = owner[0] != '\0' && strcmp(owner, store_id) != 0;
    fr_seg_close(seg);
    if (foreign)
        fr_log(FR_LOG_INFO, "retention", "%s belongs to another store (%s); left alone", path,
               owner);
    return foreign;
}

/*
 * A journal line's MAC: the first 16 bytes of HMAC-SHA256 with the archive
 * key over the line's JSON without "mac" (compact, keys sorted), as hex.
 */
static void
journal_mac(const unsigned char key[FR_KEY_LEN], json_t *line, char out[33])
{
    char *text = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned char md[32];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), key, FR_KEY_LEN, (const unsigned char *)text, strlen(text), md, &mdlen);
    fr_hex_encode(md, 16, out);
    free(text);
}

/*
 * Whether a journal line is authentic: its "mac" (removed from j) matches
 * one of the archive keys. Without keys every line is taken.
 */
static bool
journal_line_ok(const struct fr_keyring *auth, json_t *j)
{
    if (auth->n == 0)
        return true;
    const char *mac = json_string_value(json_object_get(j, "mac"));
    if (mac == NULL || strlen(mac) != 32)
        return false;
    char want[33], got[33];
    snprintf(got, sizeof got, "%s", mac);
    json_object_del(j, "mac");
    for (size_t k = 0; k < auth->n; k++) {
        journal_mac(auth->key[k], j, want);
        if (CRYPTO_memcmp(want, got, 32) == 0)
            return true;
    }
    return false;
}

int
fr_ret_journal_append(const struct fr_retention_policy *p, const char *action,
                      const struct fr_manifest_row *m, const char *path, struct fr_err *err)
{
    char *mf = fr_asprintf("%s/MANIFEST", p->archive_dir);
    int fd = open(mf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = fr_err_set(err, FR_E_IO,
                            "MANIFEST journal %s: cannot open: %s (the run stops here: archive "
                            "rebuild would miss what it did next)",
                            mf, strerror(errno));
        free(mf);
        return rc;
    }
    /* names relative to the archive folder: the folder can be moved whole */
    size_t an = strlen(p->archive_dir);
    const char *full = m ? m->path : path;
    const char *name =
        strncmp(full, p->archive_dir, an) == 0 && full[an] == '/' ? full + an + 1 : full;
    json_t *j = m ? json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:s}", "action", action, "path",
                              name, "tier", m->tier, "min_ts", (json_int_t)m->min_ts, "max_ts",
                              (json_int_t)m->max_ts, "records", (json_int_t)m->records, "raw_bytes",
                              (json_int_t)m->raw_bytes, "file_bytes", (json_int_t)m->file_bytes,
                              "sha256", m->sha256)
                  : json_pack("{s:s,s:s}", "action", action, "path", name);
    /* authenticated with the archive key: a line added by anyone without it is not believed */
    struct fr_archive_keys keys;
    int krc = fr_retention_keys(p, true, false, &keys, err);
    if (krc != FR_OK) {
        json_decref(j);
        close(fd);
        free(mf);
        return krc;
    }
    char mac[33];
    journal_mac(keys.auth.key[0], j, mac);
    fr_archive_keys_wipe(&keys);
    json_object_set_new(j, "mac", json_string(mac));
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    size_t n = strlen(s);
    s = fr_realloc(s, n + 2);
    s[n] = '\n';
    int rc = FR_OK;
    if (write(fd, s, n + 1) != (ssize_t)(n + 1) || fsync(fd) != 0)
        rc = fr_err_set(err, FR_E_IO,
                        "MANIFEST journal %s: cannot append %s of %s: %s (the run stops here: "
                        "archive rebuild would miss it)",
                        mf, action, m ? m->path : path, strerror(errno));
    if (close(fd) != 0 && rc == FR_OK)
        rc = fr_err_set(err, FR_E_IO, "MANIFEST journal %s: %s", mf, strerror(errno));
    free(mf);
    free(s);
    return rc;
}

void
fr_ret_info_to_row(const struct fr_seg_info *info, const char *path, int64_t now,
                   struct fr_manifest_row *m)
{
    *m = (struct fr_manifest_row){.path = path,
                                  .tier = fr_tier_name(info->tier),
                                  .min_ts = info->min_ts,
                                  .max_ts = info->max_ts,
                                  .records = (int64_t)info->records,
                                  .raw_bytes = (int64_t)info->raw_bytes,
                                  .file_bytes = (int64_t)info->file_bytes,
                                  .sha256 = info->sha256,
                                  .policy = info->policy,
                                  .key_id = info->key_id,
                                  .created_ms = now};
}

/*
 * The MANIFEST journal's last word on each path: {path: record} of the
 * segments it says exist (a "replace" also ends its twin, a "delete" the
 * path). A missing journal is an empty state. Lines that do not parse (a
 * write cut short by a crash) are skipped, and so are lines whose MAC does
 * not verify with the archive key (logged): lines without a MAC are
 * believed only before the first authenticated one (journals written
 * before lines had MACs).
 */
int
fr_ret_journal_state(const struct fr_retention_policy *p, json_t **out, struct fr_err *err)
{
    *out = json_object();
    char *mf = fr_asprintf("%s/MANIFEST", p->archive_dir), *text;
    size_t len;
    if (access(mf, F_OK) != 0 && errno == ENOENT) {
        free(mf);
        return FR_OK;
    }
    struct fr_err rerr = {0};
    int rc = fr_read_file(mf, &text, &len, &rerr);
    if (rc != FR_OK) {
        fr_err_set(err, rc,
                   "MANIFEST journal %s: cannot read it: %s (archive rebuild depends on it)", mf,
                   rerr.msg);
        free(mf);
        json_decref(*out);
        *out = NULL;
        return rc;
    }
    json_t *state = *out;
    struct fr_archive_keys keys;
    if (fr_retention_keys(p, false, false, &keys, NULL) != FR_OK)
        memset(&keys, 0, sizeof keys);
    bool seen_mac = false;
    size_t refused = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        bool has_mac = json_object_get(j, "mac") != NULL;
        if (j != NULL && (has_mac || seen_mac) && !journal_line_ok(&keys.auth, j)) {
            refused++;
            json_decref(j);
            continue;
        }
        seen_mac = seen_mac || has_mac;
        json_object_del(j, "mac");
        const char *action = json_string_value(json_object_get(j, "action"));
        const char *stored = json_string_value(json_object_get(j, "path"));
        /* a name is relative to the archive folder; older journals hold absolute paths */
        char *abs = stored == NULL     ? NULL
                    : stored[0] == '/' ? fr_strdup(stored)
                                       : fr_asprintf("%s/%s", p->archive_dir, stored);
        const char *path = abs;
        if (action && path) {
            if (strcmp(action, "delete") == 0) {
                json_object_del(state, path);
            } else {
                if (strcmp(action, "replace") == 0) {
                    char *twin = fr_ret_twin_path(path);
                    if (twin)
                        json_object_del(state, twin);
                    free(twin);
                }
                json_object_set(state, path, j);
            }
        }
        free(abs);
        json_decref(j);
    }
    fr_archive_keys_wipe(&keys);
    if (refused > 0)
        fr_log(FR_LOG_WARN, "retention",
               "MANIFEST journal %s: %zu line(s) not believed: their MAC does not verify with "
               "the archive key (added or altered by someone without it)",
               mf, refused);
    free(mf);
    free(text);
    return FR_OK;
}

struct repair_ctx {
    const struct fr_retention_policy *p;
    json_t *state, *table; /* the journal's word; the table's paths */
    size_t repaired;
    int rc;
    struct fr_err *err;
};

static int
repair_row(void *ud, const struct fr_manifest_row *r)
{
    struct repair_ctx *c = ud;
    json_object_set_new(c->table, r->path, json_true());
    json_t *j = json_object_get(c->state, r->path);
    const char *tier = json_string_value(json_object_get(j, "tier"));
    if (j != NULL && tier != NULL && strcmp(tier, r->tier) == 0)
        return 0;
    /* the table holds what the journal does not say: a run stopped between the two
       (before journal records came first), or a change made outside a run */
    c->rc = fr_ret_journal_append(c->p, "add", r, NULL, c->err);
    if (c->rc != FR_OK)
        return 1;
    c->repaired++;
    return 0;
}

int
fr_ret_journal_repair(struct fr_store *st, const struct fr_retention_policy *p, size_t *repaired,
                      struct fr_err *err)
{
    *repaired = 0;
    struct repair_ctx c = {.p = p, .table = json_object(), .err = err};
    int rc = fr_ret_journal_state(p, &c.state, err);
    if (rc == FR_OK)
        rc = fr_store_manifest(st, repair_row, &c, err);
    if (rc == FR_OK)
        rc = c.rc;
    /* what the journal says exists and neither the table nor the folder has */
    const char *path;
    json_t *j;
    json_object_foreach(c.state, path, j)
    {
        if (rc != FR_OK)
            break;
        if (json_object_get(c.table, path) != NULL || access(path, F_OK) == 0)
            continue;
        rc = fr_ret_journal_append(p, "delete", NULL, path, err);
        if (rc == FR_OK)
            c.repaired++;
    }
    *repaired = c.repaired;
    json_decref(c.state);
    json_decref(c.table);
    return rc;
}

int
fr_retention_rebuild(struct fr_store *st, const struct fr_retention_policy *p, int64_t now_ms,
                     struct fr_rebuild_stats *out, struct fr_err *err)
{
    memset(out, 0, sizeof *out);
    json_t *state = NULL;
    int rc = fr_ret_journal_state(p, &state, err);
    if (rc != FR_OK)
        return rc;
    struct paths man = {0};
    rc = fr_store_manifest(st, fr_ret_collect_manifest, &man, err);
    struct fr_archive_keys keys;
    if (rc == FR_OK)
        rc = fr_retention_keys(p, false, false, &keys, err);
    else
        memset(&keys, 0, sizeof keys);
    char store_id[17] = "";
    fr_store_id(st, store_id, NULL);
    const char *path;
    json_t *j;
    json_object_foreach(state, path, j)
    {
        if (rc != FR_OK)
            break;
        if (fr_ret_paths_has(&man, path)) {
            out->present++;
            continue;
        }
        if (access(path, F_OK) == 0 && fr_ret_foreign(path, store_id)) {
            out->foreign++;
            continue;
        }
        struct fr_seg *seg;
        struct fr_err serr = {0};
        bool cold_file = strstr(path, ".cold.seg") != NULL;
        if (access(path, F_OK) != 0 && !fr_objstore_remote(path)) {
            /* one missing file is reported, and the others are restored all the same */
            out->missing++;
            fr_log(FR_LOG_WARN, "retention", "rebuild: %s is in MANIFEST but the file is gone",
                   path);
            continue;
        }
        if (fr_seg_open(path, &keys, &seg, &serr) != FR_OK) {
            out->unreadable++;
            fr_log(FR_LOG_WARN, "retention", "rebuild: %s not restored: %s", path, serr.msg);
            continue;
        }
        if (!fr_seg_get_info(seg)->authenticated && fr_seg_version(seg) >= 3) {
            out->unreadable++;
            fr_log(FR_LOG_WARN, "retention",
                   "rebuild: %s not restored: it is authenticated with the archive key, which "
                   "is not loaded (%s)",
                   path, p->archive_key);
            fr_seg_close(seg);
            continue;
        }
        struct fr_manifest_row m;
        fr_ret_info_to_row(fr_seg_get_info(seg), path, now_ms, &m);
        /* a warm segment journaled just before a kill may still have its rows in hot: the
           next run's reconciliation deletes those (a row only when id and ingest time match) */
        m.pending = !cold_file;
        rc = fr_store_manifest_add(st, &m, err);
        if (rc == FR_OK)
            rc = fr_store_retention_log(st, "rebuild", path, m.records, m.min_ts, m.max_ts,
                                        "from MANIFEST", now_ms, err);
        fr_seg_close(seg);
        if (rc == FR_OK)
            out->restored++;
    }
    fr_archive_keys_wipe(&keys);
    fr_ret_paths_free(&man);
    json_decref(state);
    return rc;
}

int
fr_ret_lock(const struct fr_retention_policy *p, int *fd, struct fr_err *err)
{
    char *path = fr_asprintf("%s/.lock", p->archive_dir);
    int rc = fr_mkdirs_for(path, 0700, err);
    *fd = rc == FR_OK ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    if (rc == FR_OK && *fd < 0)
        rc = fr_err_set(err, FR_E_IO, "%s: %s", path, strerror(errno));
    if (rc == FR_OK && flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        fr_log(FR_LOG_INFO, "retention",
               "waiting for another retention run or erasure on %s to finish", p->archive_dir);
        while (flock(*fd, LOCK_EX) != 0 && errno == EINTR)
            ;
    }
    free(path);
    return rc;
}

void
fr_ret_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* the lock goes with the descriptor */
}
