/*
 * exporters/bundle_int.h - shared by the files that build and read incident
 * bundles (bundle.h is the public side):
 *
 *   bundle_select.c  what goes in: the selection across tiers, the runtime window
 *   bundle_files.c   the per-domain NDJSON files, the replay and summary.md
 *   bundle_sign.c    Ed25519 keys, key ids, signing the manifest
 *   bundle_write.c   manifest.json, the tar + zstd container, written crash-safely
 *   bundle_verify.c  reading members, checking the signature and every hash
 */
#ifndef FR_EXPORTERS_BUNDLE_INT_H
#define FR_EXPORTERS_BUNDLE_INT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "exporters/bundle.h"

/* ---- selection (bundle_select.c) ---- */

struct fr_bundle_gather {
    json_t *convs;  /* object used as a set of conv_ids */
    json_t *events; /* rendered events, time order, each once */
    json_t *tiers;  /* set of the tiers read */
    const struct fr_bundle_select *sel;
    const struct fr_keyring *raw_key; /* --include-raw: the raw-mode key file's keys */
    json_t *raw;                      /* id -> sealed payload, base64 */
    size_t raw_failed;
    size_t cold_skipped; /* cold segments not read (no key) */
};

/* Reads what sel selects from every tier into g (cleared first); caller clears g. */
int fr_bundle_gather(struct fr_store *st, const struct fr_bundle_select *sel,
                     const struct fr_archive_keys *keys, const struct fr_keyring *raw_key,
                     struct fr_bundle_gather *g, struct fr_err *err);
void fr_bundle_gather_clear(struct fr_bundle_gather *g);

/* ---- member files (bundle_files.c) ---- */

struct fr_bfile {
    const char *name;
    char *data;
    size_t len, cap;
    size_t records;
};

enum {
    F_CONVS,
    F_CONV_EVENTS,
    F_TURNS,
    F_TIMELINE,
    F_SEM,
    F_PROVIDER,
    F_TOOL,
    F_MIDDLEWARE,
    F_TRANSPORT,
    F_RUNTIME,
    F_ERRORS,
    F_REPLAY,
    F_RAW,
    F_SUMMARY,
    F_COUNT
};

/*
 * Fills files[F_COUNT] (names set, data owned: free each .data) from g:
 * the conversation rows (convrows), events per domain, the replay, sealed
 * raw payloads and summary.md; the redaction policies seen go to policies.
 * A failed read fails the whole bundle: nothing is signed over a part.
 */
int fr_bundle_build_files(struct fr_store *st, const struct fr_bundle_select *sel,
                          const struct fr_bundle_gather *g, const char *bundle_id,
                          struct fr_bfile files[F_COUNT], json_t *convrows, json_t *policies,
                          struct fr_err *err);

/* ---- signing (bundle_sign.c) ---- */

/* First 16 hex digits of SHA-256 of the DER public key. */
void fr_bundle_key_id(EVP_PKEY *k, char out[17]);

/* Signs text with the Ed25519 key: hex signature and a newline into sighex. */
int fr_bundle_sign(EVP_PKEY *k, const char *text, char sighex[2 * 64 + 2], struct fr_err *err);

#endif
