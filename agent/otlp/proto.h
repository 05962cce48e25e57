/*
 * agent/otlp/proto.h - OTLP protobuf (application/x-protobuf, and the
 * messages OTLP/gRPC carries): requests decoded into the tree of the OTLP
 * JSON encoding, so that one mapping (agent/otlp/map.c) serves both, and the
 * responses encoded back. The message subset is agent/otlp/otlp.proto.
 */
#ifndef FR_AGENT_OTLP_PROTO_H
#define FR_AGENT_OTLP_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum fr_otlp_signal { FR_OTLP_TRACES, FR_OTLP_LOGS, FR_OTLP_METRICS };

/* Nesting deeper than this (an attribute value holding lists of lists ...) is refused. */
#define FR_OTLP_PB_MAX_DEPTH 64

/*
 * Decodes an Export{Trace,Logs,Metrics}ServiceRequest into the OTLP JSON
 * tree (resourceSpans/resourceLogs/resourceMetrics, ids as lower-case hex,
 * times as integers, AnyValue as {"stringValue": ...} and so on). NULL with
 * why filled when the bytes are not such a message (malformed, a group,
 * nesting past FR_OTLP_PB_MAX_DEPTH). Strings that are not UTF-8 are
 * repaired (U+FFFD), never passed on.
 */
json_t *fr_otlp_pb_decode(enum fr_otlp_signal s, const void *buf, size_t len, char *why,
                          size_t why_cap);

/*
 * A traces or logs request read out in parts, for a large one: a
 * Collector's export of thousands of spans made into one tree is 10-20
 * times its body (~100 MiB for 8,000 spans). fr_otlp_pb_open unpacks it
 * (NULL, why filled, as fr_otlp_pb_decode; always NULL for metrics);
 * each fr_otlp_pb_part is then the tree of a request of its own holding the
 * next max_items spans or log records (max_items > 0; fewer in the last,
 * none in one that holds only resources without any), each under its
 * resource, in the order sent; NULL once all were given.
 * The parts' trees are the caller's (made in its JSON region, if one is
 * open); the unpacked request is not in any region.
 */
struct fr_otlp_pb_parts;
struct fr_otlp_pb_parts *fr_otlp_pb_open(enum fr_otlp_signal s, const void *buf, size_t len,
                                         char *why, size_t why_cap);
json_t *fr_otlp_pb_part(struct fr_otlp_pb_parts *p, size_t max_items);
void fr_otlp_pb_close(struct fr_otlp_pb_parts *p);

/*
 * The Export{Trace,Logs,Metrics}ServiceResponse: empty when rejected is 0
 * and msg NULL, else with partial_success. *out is malloc'd (caller frees).
 */
void fr_otlp_pb_response(enum fr_otlp_signal s, int64_t rejected, const char *msg, uint8_t **out,
                         size_t *len);

/*
 * A google.rpc.Status {code, message}: the error body of OTLP/HTTP protobuf
 * and gRPC's grpc-status-details-bin. retry_s > 0 adds a
 * google.rpc.RetryInfo detail (the OTLP specification's way of saying a
 * RESOURCE_EXHAUSTED or UNAVAILABLE may be retried, and when).
 */
void fr_otlp_pb_status(int code, const char *msg, int retry_s, uint8_t **out, size_t *len);

#endif
