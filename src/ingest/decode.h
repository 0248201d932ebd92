/* OTLP decoders: wire bytes → the format-neutral structures of
 * model/otlp.h. Two implementations share this contract:
 * ingest/otlp_pb.c (protobuf, via protobuf-c with an arena allocator) and
 * ingest/otlp_json.c (OTLP/JSON, via jansson: ids are hex strings, enums
 * integers, 64-bit integers numbers or strings, unknown fields ignored).
 *
 * All output is allocated in arena a (the caller owns it and frees it all
 * at once). Returns 0, LT_EDECODE for malformed input (nothing usable is
 * returned), or LT_ETOOBIG / LT_ENOMEM when the arena's cap or memory ran
 * out. Never crashes on any input: these are fuzzed (fuzz/). */
#ifndef LT_DECODE_H
#define LT_DECODE_H
#include <stddef.h>
#include "core/arena.h"
#include "model/otlp.h"

int lt_decode_traces_pb(lt_arena_t *a, const void *body, size_t len, lt_otlp_traces_t *out);
int lt_decode_logs_pb(lt_arena_t *a, const void *body, size_t len, lt_otlp_logs_t *out);
int lt_decode_metrics_pb(lt_arena_t *a, const void *body, size_t len, lt_otlp_metrics_t *out);

int lt_decode_traces_json(lt_arena_t *a, const void *body, size_t len, lt_otlp_traces_t *out);
int lt_decode_logs_json(lt_arena_t *a, const void *body, size_t len, lt_otlp_logs_t *out);
int lt_decode_metrics_json(lt_arena_t *a, const void *body, size_t len, lt_otlp_metrics_t *out);

/* Encoders for the Export*ServiceResponse (empty on full success, or with
 * partial_success). kind is "spans", "log_records" or "data_points".
 * Write into *out (allocated in arena a). Return 0, LT_ENOMEM, or LT_EINVAL
 * for an unknown kind. */
int lt_encode_export_response_pb(lt_arena_t *a, const char *kind, int64_t rejected,
                                 const char *message, lt_str_t *out);
int lt_encode_export_response_json(lt_arena_t *a, const char *kind, int64_t rejected,
                                   const char *message, lt_str_t *out);

#endif
