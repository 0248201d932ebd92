/* OTLP decoders: wire bytes → the format-neutral structures of
 * model/otlp.h. Two formats share this contract: protobuf (traces by
 * ingest/otlp_pb_traces.c, one pass off the wire; logs and metrics by
 * ingest/otlp_pb.c, via protobuf-c with an arena allocator) and OTLP/JSON
 * (ingest/otlp_json.c, via jansson: ids are hex strings, enums integers,
 * 64-bit integers numbers or strings, unknown fields ignored).
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

/* Its strings point into body (not NUL-terminated): keep body until the
 * result is no longer used. */
int lt_decode_traces_pb(lt_arena_t *a, const void *body, size_t len, lt_otlp_traces_t *out);
int lt_decode_logs_pb(lt_arena_t *a, const void *body, size_t len, lt_otlp_logs_t *out);
int lt_decode_metrics_pb(lt_arena_t *a, const void *body, size_t len, lt_otlp_metrics_t *out);
/* The protobuf-c traces decoder lt_decode_traces_pb replaced, kept as the
 * reference that tests and fuzz/fuzz_traces_pb_diff.c compare it with; the
 * server does not use it. Same output, except that it cuts strings at an
 * embedded NUL (see otlp_pb_traces.c). */
int lt_decode_traces_pb_ref(lt_arena_t *a, const void *body, size_t len, lt_otlp_traces_t *out);

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
