/*
 * bench/otlppb.h - OTLP JSON trace requests re-encoded as protobuf (bench only).
 */
#ifndef FR_BENCH_OTLPPB_H
#define FR_BENCH_OTLPPB_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* req (an ExportTraceServiceRequest in OTLP JSON) as protobuf; caller frees. */
uint8_t *fr_bench_otlp_pb(const json_t *req, size_t *len);

#endif
