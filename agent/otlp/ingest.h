/*
 * agent/otlp/ingest.h - one OTLP export request (any transport: OTLP/HTTP
 * JSON or protobuf, OTLP/gRPC) through the pipeline: mapped, admitted,
 * redacted, committed. The transports hand over the request's bytes (the
 * protobuf decoder is agent/otlp/proto.h) and encode the outcome.
 */
#ifndef FR_AGENT_OTLP_INGEST_H
#define FR_AGENT_OTLP_INGEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/otlp/proto.h"
#include "agent/pipeline.h"

/* Why a request (or items of it) was refused: the reason label of flightrec_otlp_rejected_total. */
enum fr_otlp_refusal {
    FR_OTLP_OK,
    FR_OTLP_MEDIA_TYPE,  /* a Content-Type the receiver does not take (415) */
    FR_OTLP_ENCODING,    /* a Content-Encoding it does not take, or a body that does not inflate */
    FR_OTLP_MALFORMED,   /* not an OTLP request of that signal (400) */
    FR_OTLP_TOO_LARGE,   /* over http.max_body_bytes (413) */
    FR_OTLP_QUEUE_FULL,  /* 429 / RESOURCE_EXHAUSTED: nothing stored, retry */
    FR_OTLP_UNAVAILABLE, /* 503 / UNAVAILABLE: the store failed, retry */
    FR_OTLP_INVALID,     /* items rejected inside an accepted request (partial success) */
    FR_OTLP_REFUSAL_COUNT
};

const char *fr_otlp_refusal_name(enum fr_otlp_refusal r);

struct fr_otlp_result;
/* The gRPC status code of a result: 0 OK, 3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED (queue
   full, or too large), 14 UNAVAILABLE. */
int fr_otlp_grpc_code(const struct fr_otlp_result *r);
const char *fr_otlp_signal_name(enum fr_otlp_signal s);

struct fr_otlp_result {
    int status;                  /* 200, or the HTTP status of a refusal */
    enum fr_otlp_refusal reason; /* FR_OTLP_OK, or why */
    int64_t rejected;            /* items rejected of an accepted request */
    const char *retry_after;     /* seconds, for 429 / 503; NULL otherwise */
    char msg[800];               /* partial-success text, or the refusal's text */
};

/*
 * Runs one export request of signal s through the pipeline and says how to
 * answer: status 200 means every stored item is committed. body (len bytes,
 * already inflated) is protobuf when pb, else OTLP JSON; decoded(ud), when
 * not NULL, is called once the body's bytes are no longer needed. The
 * decoding, mapping and redaction take one of the pipeline's preparing
 * slots (fr_pipeline_prepare_begin) and a JSON region (core/jsonmem.h); the
 * request's tree is dropped before the wait for the commit.
 */
void fr_otlp_ingest_body(struct fr_pipeline *p, enum fr_otlp_signal s, bool pb, const char *body,
                         size_t len, void (*decoded)(void *ud), void *ud, struct fr_otlp_result *r);

/*
 * A refusal decided by the transport before fr_otlp_ingest_body (media type,
 * encoding, size): fills r, counts it and logs it at warn (rate-limited).
 * fr_otlp_ingest_body does the same for its own.
 */
void fr_otlp_refuse(struct fr_pipeline *p, enum fr_otlp_signal s, enum fr_otlp_refusal why,
                    int status, const char *retry_after, const char *msg, struct fr_otlp_result *r);
/* A request the queue did not admit (ack->rc FR_E_BUSY: 429 full now, FR_E_LIMIT: 413 more
   than it ever holds, else 503), refused as fr_otlp_refuse() does. */
void fr_otlp_refuse_ack(struct fr_pipeline *p, enum fr_otlp_signal s, const struct fr_ack *ack,
                        struct fr_otlp_result *r);

#endif
