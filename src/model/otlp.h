/* Decoded OTLP requests, independent of the wire format. The decoders
 * (ingest/otlp_pb_traces.c and otlp_pb.c for protobuf, otlp_json.c for
 * JSON) produce these structures; the mapping layer (model/semconv.c)
 * consumes them. Every pointer and slice points into the arena the decoder
 * was given, which owns all of it. Times are nanoseconds since the Unix
 * epoch. */
#ifndef LT_OTLP_H
#define LT_OTLP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/slice.h"

typedef enum {
  LT_VAL_EMPTY = 0,
  LT_VAL_STR,
  LT_VAL_BOOL,
  LT_VAL_INT,
  LT_VAL_DOUBLE,
  LT_VAL_BYTES,
  LT_VAL_ARRAY,
  LT_VAL_KVLIST
} lt_val_type_t;

struct lt_kv;

/* An OTLP AnyValue. */
typedef struct lt_val {
  lt_val_type_t type;
  union {
    lt_str_t s; /* STR and BYTES (raw bytes, not base64) */
    bool b;
    int64_t i;
    double d;
    struct { struct lt_val *items; size_t n; } arr;
    struct { struct lt_kv *items; size_t n; } kv;
  } u;
} lt_val_t;

typedef struct lt_kv {
  lt_str_t key;
  lt_val_t val;
} lt_kv_t;

typedef struct {
  lt_kv_t *items;
  size_t n;
} lt_attrs_t;

typedef struct {
  uint64_t time_ns;
  lt_str_t name;
  lt_attrs_t attrs;
} lt_otlp_event_t;

typedef struct {
  uint8_t trace_id[16], span_id[8];
  lt_str_t trace_state;
  lt_attrs_t attrs;
} lt_otlp_link_t;

/* OTLP Span.SpanKind: 0 unspecified, 1 internal, 2 server, 3 client,
 * 4 producer, 5 consumer. Status.code: 0 unset, 1 ok, 2 error. */
typedef struct {
  uint8_t trace_id[16], span_id[8], parent_span_id[8];
  bool has_parent; /* parent_span_id present and not all zero */
  lt_str_t trace_state;
  lt_str_t name;
  int kind;
  uint64_t start_ns, end_ns;
  lt_attrs_t attrs;
  lt_otlp_event_t *events;
  size_t n_events;
  lt_otlp_link_t *links;
  size_t n_links;
  int status_code;
  lt_str_t status_message;
} lt_otlp_span_t;

typedef struct {
  lt_str_t name, version;
  lt_attrs_t attrs;
} lt_otlp_scope_t;

typedef struct {
  lt_otlp_scope_t scope;
  lt_otlp_span_t *spans;
  size_t n_spans;
} lt_otlp_scope_spans_t;

typedef struct {
  lt_attrs_t resource;
  lt_otlp_scope_spans_t *scopes;
  size_t n_scopes;
} lt_otlp_resource_spans_t;

/* ExportTraceServiceRequest. */
typedef struct {
  lt_otlp_resource_spans_t *items;
  size_t n;
} lt_otlp_traces_t;

/* LogRecord. trace_id/span_id are all zero when absent. */
typedef struct {
  uint64_t time_ns, observed_ns;
  int severity_number;
  lt_str_t severity_text;
  lt_val_t body;
  lt_attrs_t attrs;
  uint32_t flags;
  uint8_t trace_id[16], span_id[8];
  bool has_trace, has_span;
  lt_str_t event_name; /* LogRecord.event_name (field 12), may be empty */
} lt_otlp_log_t;

typedef struct {
  lt_otlp_scope_t scope;
  lt_otlp_log_t *logs;
  size_t n_logs;
} lt_otlp_scope_logs_t;

typedef struct {
  lt_attrs_t resource;
  lt_otlp_scope_logs_t *scopes;
  size_t n_scopes;
} lt_otlp_resource_logs_t;

/* ExportLogsServiceRequest. */
typedef struct {
  lt_otlp_resource_logs_t *items;
  size_t n;
} lt_otlp_logs_t;

typedef enum {
  LT_METRIC_GAUGE = 1,
  LT_METRIC_SUM,
  LT_METRIC_HISTOGRAM,
  LT_METRIC_EXP_HISTOGRAM,
  LT_METRIC_SUMMARY
} lt_metric_type_t;

/* One data point of any metric type. For GAUGE/SUM: value (as_int tells
 * whether it was an int). For HISTOGRAM: count, sum, bucket_counts[n_buckets]
 * and explicit_bounds[n_bounds], min/max when has_min/has_max. For
 * EXP_HISTOGRAM and SUMMARY: count and sum only (the rest is kept raw). */
typedef struct {
  lt_attrs_t attrs;
  uint64_t start_ns, time_ns;
  double value;
  bool as_int;
  uint64_t count;
  double sum, min, max;
  bool has_sum, has_min, has_max;
  uint64_t *bucket_counts;
  size_t n_buckets;
  double *explicit_bounds;
  size_t n_bounds;
} lt_otlp_point_t;

typedef struct {
  lt_str_t name, description, unit;
  lt_metric_type_t type;
  int temporality; /* AggregationTemporality: 0 unspecified, 1 delta, 2 cumulative */
  bool monotonic;
  lt_otlp_point_t *points;
  size_t n_points;
} lt_otlp_metric_t;

typedef struct {
  lt_otlp_scope_t scope;
  lt_otlp_metric_t *metrics;
  size_t n_metrics;
} lt_otlp_scope_metrics_t;

typedef struct {
  lt_attrs_t resource;
  lt_otlp_scope_metrics_t *scopes;
  size_t n_scopes;
} lt_otlp_resource_metrics_t;

/* ExportMetricsServiceRequest. */
typedef struct {
  lt_otlp_resource_metrics_t *items;
  size_t n;
} lt_otlp_metrics_t;

/* Looks up key in attrs; returns NULL when absent. Linear: attribute lists
 * are short, and the mapping layer indexes them once per span. */
const lt_val_t *lt_attrs_get(const lt_attrs_t *attrs, const char *key);

#endif
