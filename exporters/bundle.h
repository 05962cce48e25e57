/*
 * exporters/bundle.h - incident bundles: everything about some
 * conversations or a time window in one signed file for a post-mortem.
 *
 * A bundle is a tar archive compressed with zstd (libarchive) holding
 * manifest.json (id, time, agent version, host, selection, per-file SHA-256
 * and record counts, redaction policy ids, tiers, signing key id),
 * manifest.sig (Ed25519 signature of manifest.json, hex), per-domain NDJSON
 * files, summary.md and replay.ndjson (the events in order, in the wire
 * format). Only stored (redacted) data goes in. docs/bundles.md.
 */
#ifndef FR_EXPORTERS_BUNDLE_H
#define FR_EXPORTERS_BUNDLE_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "retention/hot/store.h"
#include "retention/segment.h"

struct fr_bundle_select {
    const char *const *convs; /* explicit conversations */
    size_t nconvs;
    int64_t since_ms, until_ms;           /* 0: unbounded */
    const char *error_class, *error_code; /* conversations with such a failure */
    const char *trace_id;                 /* conversations with an event of this trace */
};

struct fr_bundle_info {
    char id[33];
    size_t events, conversations, files;
    uint64_t bytes;
    double seconds;
};

/*
 * Builds the bundle at out_path (written to a temporary file, renamed when
 * complete). keys may be NULL (cold segments skipped, said in the
 * manifest); raw_key non-NULL adds the sealed raw-mode payloads (still
 * encrypted) of the selected events. sign is the Ed25519 private key.
 */
int fr_bundle_create(struct fr_store *st, const struct fr_bundle_select *sel,
                     const struct fr_archive_keys *keys, const struct fr_keyring *raw_key,
                     EVP_PKEY *sign, const char *out_path, struct fr_bundle_info *info,
                     struct fr_err *err);

/*
 * Checks the signature of manifest.json with pub and every file's SHA-256
 * and size against the manifest; err names the first file that differs.
 */
int fr_bundle_verify(const char *path, EVP_PKEY *pub, struct fr_err *err);

/* Reads one member of a bundle (caller frees *data; NUL-terminated). */
int fr_bundle_member(const char *path, const char *name, char **data, size_t *len,
                     struct fr_err *err);

/* Ed25519 keys as PEM files: generate (private 0600), load private, load public. */
/* Whether a conversation was erased (the store's erasure log: fr_store_is_erased). */
typedef bool (*fr_erased_fn)(void *ud, const char *conv_id);

/*
 * Whether the bundle at path holds a conversation is_erased says was
 * erased (by its conversations.ndjson); conv_out (may be NULL) gets the
 * first such id. Not a readable bundle: false.
 */
bool fr_bundle_holds_erased(const char *path, fr_erased_fn is_erased, void *ud, char *conv_out,
                            size_t conv_len);

/*
 * Removes from dir every bundle (*.tar.zst) holding an erased conversation,
 * with its .sha256; *removed counts them. A missing dir holds none. (The
 * outbox: fr_outbox_drop_erased, exporters/upload.h.)
 */
int fr_bundles_erase(const char *dir, fr_erased_fn is_erased, void *ud, size_t *removed,
                     struct fr_err *err);

int fr_ed25519_generate(const char *priv_path, const char *pub_path, struct fr_err *err);
int fr_ed25519_load(const char *path, bool private_key, EVP_PKEY **out, struct fr_err *err);

#endif
