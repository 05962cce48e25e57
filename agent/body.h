/*
 * agent/body.h - the framing of an ingest request body, apart from the HTTP
 * server so it can be tested and fuzzed alone: Content-Encoding (zstd,
 * gzip, deflate, snappy, lz4) with a limit on the decompressed size, then NDJSON (one envelope
 * per line, blank lines skipped, CRLF accepted) or one JSON array of
 * envelopes, each prepared through the ingest pipeline (agent/ingest.h).
 */
#ifndef FR_AGENT_BODY_H
#define FR_AGENT_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/ingest.h"
#include "core/err.h"
#include "core/event.h"

/* Whether a Content-Encoding (or grpc-encoding) is one fr_body_inflate takes: zstd, gzip,
   deflate, snappy, x-snappy-framed, lz4 (case-insensitive). */
bool fr_body_encoding_known(const char *enc);

/* "gzip" or "zstd" when buf[0, n) starts with that format's magic bytes (which no JSON text
   starts with), else NULL. */
const char *fr_body_sniff(const char *buf, size_t n);

/* Those encodings, as the refusals of another one name them. */
#define FR_BODY_ENCODINGS "zstd, gzip, deflate, snappy, x-snappy-framed, lz4"

/*
 * Decompresses in[0, n) ("zstd"; "gzip"/"deflate" with the header
 * detected; "snappy": the block format, or the framing format when the body
 * starts with its stream identifier; "x-snappy-framed"; "lz4": LZ4 frames)
 * into *out (caller frees). FR_E_LIMIT when the result would pass max bytes,
 * FR_E_SYNTAX for a corrupt or truncated stream (a snappy chunk whose
 * checksum does not match included).
 */
int fr_body_inflate(const char *enc, const char *in, size_t n, size_t max, char **out,
                    size_t *outlen);

/* The refusal of what fr_body_inflate could not read, written into out[0, n) and returned:
   "<what> does not decompress as <header> <enc>" (enc one of the known names, never a
   sender's arbitrary text). */
const char *fr_body_undecodable(char *out, size_t n, const char *what, const char *header,
                                const char *enc);

/* The prepared records of a body; free with fr_body_result_clear(). */
struct fr_body_result {
    struct fr_record *recs;
    size_t n, cap;
    size_t received; /* envelopes seen (prepared + rejected) */
    size_t rejected;
};

/* Called for every envelope that does not prepare: its line (or array index + 1) and why. */
typedef void (*fr_body_reject_fn)(void *ud, size_t line, const struct fr_err *e);

/*
 * Called once the body is framed, before any envelope is prepared, with
 * how many envelopes it holds (non-blank lines, or array elements):
 * FR_OK to go on, anything else to stop with nothing prepared (admission
 * before the work, see fr_pipeline_reserve).
 */
typedef int (*fr_body_admit_fn)(void *ud, size_t envelopes);

/*
 * Frames body[0, len) and prepares every envelope into res (appending).
 * A bad envelope never stops the others; a line over cfg->lim.max_line is
 * rejected without being parsed; an array body that does not parse is one
 * rejection at line 1. Returns FR_OK, or what admit (may be NULL) returned.
 */
int fr_body_prepare(const char *body, size_t len, const struct fr_ingest_cfg *cfg,
                    struct fr_redact_counts *counts, struct fr_body_result *res,
                    fr_body_reject_fn reject, fr_body_admit_fn admit, void *ud);

/* Non-blank lines of an NDJSON body (a line of spaces, tabs or a lone CR is blank). */
size_t fr_body_count_lines(const char *body, size_t len);

/* Frees the records (and clears those the writer did not take). */
void fr_body_result_clear(struct fr_body_result *res);

#endif
