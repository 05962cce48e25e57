/*
 * exporters/bundle_write.c - fr_bundle_create(): the selection and its files
 * (bundle_select.c, bundle_files.c), manifest.json with every member's
 * SHA-256, its Ed25519 signature, and the tar + zstd container, written to
 * a temporary file, fsync'd and renamed, with a .sha256 sidecar.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/hex.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "core/version.h"
#include "exporters/archive_dl.h"
#include "exporters/bundle_int.h"
#include "exporters/render.h"
#include "retention/retention.h"

static int
tar_add(struct archive *a, const char *name, const void *data, size_t len)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_mtime(e, (time_t)(fr_now_ms() / 1000), 0);
    int rc = archive_write_header(a, e);
    if (rc == ARCHIVE_OK && len > 0 && archive_write_data(a, data, len) != (la_ssize_t)len)
        rc = ARCHIVE_FATAL;
    archive_entry_free(e);
    return rc == ARCHIVE_OK ? FR_OK : FR_E_IO;
}

/* The manifest's list of members: name, SHA-256, bytes, records. */
static json_t *
manifest_files(const struct fr_bfile files[F_COUNT])
{
    json_t *mfiles = json_array();
    for (int i = 0; i < F_COUNT; i++) {
        if (i == F_RAW && files[i].len == 0)
            continue;
        unsigned char md[32];
        char mdhex[65];
        SHA256((const unsigned char *)(files[i].data ? files[i].data : ""), files[i].len, md);
        fr_hex_encode(md, 32, mdhex);
        json_array_append_new(mfiles, json_pack("{s:s,s:s,s:I,s:I}", "name", files[i].name,
                                                "sha256", mdhex, "bytes", (json_int_t)files[i].len,
                                                "records", (json_int_t)files[i].records));
    }
    return mfiles;
}

static json_t *
manifest_selection(const struct fr_bundle_select *sel)
{
    json_t *selj =
        json_pack("{s:[],s:I,s:I,s:o,s:o,s:o}", "convs", "since_ms", (json_int_t)sel->since_ms,
                  "until_ms", (json_int_t)sel->until_ms, "error_class",
                  sel->error_class ? json_string(sel->error_class) : json_null(), "error_code",
                  sel->error_code ? json_string(sel->error_code) : json_null(), "trace_id",
                  sel->trace_id ? json_string(sel->trace_id) : json_null());
    for (size_t i = 0; i < sel->nconvs; i++)
        json_array_append_new(json_object_get(selj, "convs"), json_string(sel->convs[i]));
    return selj;
}

static json_t *
set_keys(json_t *set)
{
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v) json_array_append_new(arr, json_string(k));
    return arr;
}

/* manifest.json as text (caller frees); info->files gets the member count. */
static char *
manifest_text(const struct fr_bundle_select *sel, const struct fr_bundle_gather *g,
              const struct fr_bfile files[F_COUNT], json_t *convrows, json_t *policies,
              EVP_PKEY *sign, struct fr_bundle_info *info)
{
    char kid[17];
    fr_bundle_key_id(sign, kid);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json_t *mfiles = manifest_files(files);
    info->files = json_array_size(mfiles);
    json_t *manifest = json_pack(
        "{s:i,s:s,s:I,s:s,s:s,s:o,s:I,s:I,s:o,s:o,s:o,s:I,s:s}", "format", 1, "bundle_id", info->id,
        "created_ms", (json_int_t)fr_now_ms(), "agent_version", fr_version, "host", host,
        "selection", manifest_selection(sel), "events", (json_int_t)json_array_size(g->events),
        "conversations", (json_int_t)json_array_size(convrows), "files", mfiles,
        "redaction_policies", set_keys(policies), "tiers", set_keys(g->tiers),
        "cold_segments_skipped", (json_int_t)g->cold_skipped, "signing_key_id", kid);
    char *mtext = json_dumps(manifest, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(manifest);
    return mtext;
}

/* The tar + zstd container at tmp: manifest, signature, then the members. */
static int
write_container(const char *tmp, const char *mtext, const char *sighex,
                const struct fr_bfile files[F_COUNT], struct fr_err *err)
{
    int lrc = fr_archive_load(err); /* opened now, not at every start (core/dl.h) */
    if (lrc != FR_OK)
        return lrc;
    struct archive *a = archive_write_new();
    archive_write_add_filter_zstd(a);
    archive_write_set_format_pax_restricted(a);
    int rc;
    if (archive_write_open_filename(a, tmp) != ARCHIVE_OK) {
        rc = fr_err_set(err, FR_E_IO, "%s: %s", tmp, archive_error_string(a));
    } else {
        rc = tar_add(a, "manifest.json", mtext, strlen(mtext));
        if (rc == FR_OK)
            rc = tar_add(a, "manifest.sig", sighex, strlen(sighex));
        for (int i = 0; rc == FR_OK && i < F_COUNT; i++)
            if (!(i == F_RAW && files[i].len == 0))
                rc = tar_add(a, files[i].name, files[i].data ? files[i].data : "", files[i].len);
        if (archive_write_close(a) != ARCHIVE_OK && rc == FR_OK)
            rc = fr_err_set(err, FR_E_IO, "%s: %s", tmp, archive_error_string(a));
        else if (rc != FR_OK)
            fr_err_set(err, rc, "%s: writing the bundle failed", tmp);
    }
    archive_write_free(a);
    return rc;
}

/*
 * Gives tmp its name durably (fsync, rename, directory fsync: a crash leaves
 * the old file or the whole new one), then writes the "<hex> <size>"
 * sidecar that uploads use as the Idempotency-Key.
 */
static int
publish(const char *tmp, const char *out_path, struct fr_bundle_info *info, struct fr_err *err)
{
    int rc = FR_OK;
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        rc = fr_err_set(err, FR_E_IO, "fsync %s: %s", tmp, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (rc == FR_OK && rename(tmp, out_path) != 0)
        rc = fr_err_set(err, FR_E_IO, "rename %s: %s", tmp, strerror(errno));
    if (rc != FR_OK)
        return rc;
    char *dir = fr_strdup(out_path), *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    if (fr_fsync_dir(slash ? dir : ".") != 0)
        rc =
            fr_err_set(err, FR_E_IO, "fsync of the directory of %s: %s", out_path, strerror(errno));
    free(dir);
    char *data = NULL;
    size_t len = 0;
    if (rc == FR_OK)
        rc = fr_read_file(out_path, &data, &len, err);
    if (rc == FR_OK) {
        info->bytes = (uint64_t)len;
        unsigned char md[32];
        char mdhex[65];
        SHA256((unsigned char *)data, len, md);
        fr_hex_encode(md, 32, mdhex);
        char *side = fr_asprintf("%s.sha256", out_path);
        char line[100];
        int ln = snprintf(line, sizeof line, "%s %zu\n", mdhex, len);
        rc = fr_write_file_atomic(side, line, (size_t)ln, err);
        free(side);
    }
    free(data);
    return rc;
}

int
fr_bundle_create(struct fr_store *st, const struct fr_bundle_select *sel,
                 const struct fr_archive_keys *keys, const struct fr_keyring *raw_key,
                 EVP_PKEY *sign, const char *out_path, struct fr_bundle_info *info,
                 struct fr_err *err)
{
    memset(info, 0, sizeof *info);
    double t0 = fr_mono_s();
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return fr_err_set(err, FR_E_IO, "bundle: no random bytes from OpenSSL for its id");
    fr_hex_encode(rnd, sizeof rnd, info->id);
    struct fr_bundle_gather g;
    int rc = fr_bundle_gather(st, sel, keys, raw_key, &g, err);
    struct fr_bfile files[F_COUNT] = {0};
    json_t *convrows = json_array(), *policies = json_object();
    char *mtext = NULL;
    char sighex[2 * 64 + 2];
    /* each step only after the one before succeeded: nothing is read or signed in vain */
    if (rc == FR_OK)
        rc = fr_bundle_build_files(st, sel, &g, info->id, files, convrows, policies, err);
    if (rc == FR_OK) {
        mtext = manifest_text(sel, &g, files, convrows, policies, sign, info);
        rc = fr_bundle_sign(sign, mtext, sighex, err);
    }
    char *tmp = fr_asprintf("%s.tmp", out_path);
    if (rc == FR_OK)
        rc = write_container(tmp, mtext, sighex, files, err);
    if (rc == FR_OK)
        rc = publish(tmp, out_path, info, err);
    if (rc != FR_OK)
        unlink(tmp);
    free(tmp);
    info->events = json_array_size(g.events);
    info->conversations = json_array_size(convrows);
    info->seconds = fr_mono_s() - t0;
    for (int i = 0; i < F_COUNT; i++)
        free(files[i].data);
    free(mtext);
    json_decref(convrows);
    json_decref(policies);
    fr_bundle_gather_clear(&g);
    return rc;
}
