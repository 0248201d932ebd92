/* Semantic-convention mapping: decoded OTLP records (model/otlp.h) → the
 * canonical records (model/span.h). The attribute names of each dialect
 * live in data tables in semconv.c (first match wins, in the precedence of
 * docs/semconv.md), not in chains of ifs, so a new dialect is a table edit.
 * Mapping never fails on odd attribute values: wrong types, absurd numbers
 * or malformed JSON leave the canonical field empty; the raw attributes are
 * always kept. All output is allocated in arena a.
 * Functions return 0, or LT_ENOMEM / LT_ETOOBIG when the arena runs out. */
#ifndef LT_SEMCONV_H
#define LT_SEMCONV_H
#include "core/arena.h"
#include "model/otlp.h"
#include "model/span.h"

/* Per-resource context computed once and shared by all its records. */
typedef struct {
  lt_str_t resource_json;      /* the resource attributes as a JSON object */
  lt_str_t service, environment, release;
  const lt_attrs_t *resource;  /* for fallbacks */
} lt_semconv_resource_t;

int lt_semconv_resource(lt_arena_t *a, const lt_attrs_t *resource, lt_semconv_resource_t *out);

/* Returned (positive, not an error) by lt_semconv_span for a span that is
 * not a record of work and must not be stored: Logfire's
 * `logfire.span_type = pending_span` placeholders, sent when a span starts
 * and superseded by the real span when it ends. out is initialised but
 * holds nothing of the span; the caller skips it (not a reject: the
 * exporter did nothing wrong). */
#define LT_SEMCONV_DROP 1

/* Maps one span: 0, LT_SEMCONV_DROP, or an LT_E* error. out is initialised
 * by the callee. */
int lt_semconv_span(lt_arena_t *a, const lt_semconv_resource_t *res, const lt_otlp_scope_t *scope,
                    const lt_otlp_span_t *in, lt_span_t *out);
int lt_semconv_log(lt_arena_t *a, const lt_semconv_resource_t *res, const lt_otlp_scope_t *scope,
                   const lt_otlp_log_t *in, lt_log_t *out);
/* Maps one data point of metric m. */
int lt_semconv_point(lt_arena_t *a, const lt_semconv_resource_t *res, const lt_otlp_scope_t *scope,
                     const lt_otlp_metric_t *m, const lt_otlp_point_t *in, lt_point_t *out);

/* The metadata key whose value becomes a span's feature when it has no
 * `lanterna.feature` attribute (default "feature"). The key is copied;
 * NULL or "" restores the default. Not thread-safe: call at start-up,
 * before ingest threads run. */
void lt_semconv_set_feature_key(const char *key);

/* JSON rendering of OTLP values: an attribute list as a JSON object, and a
 * single AnyValue as a JSON value. Strings are emitted as JSON strings
 * (not parsed); bytes as base64 strings. */
int lt_attrs_json(lt_arena_t *a, const lt_attrs_t *attrs, lt_str_t *out);
int lt_val_json(lt_arena_t *a, const lt_val_t *v, lt_str_t *out);

#endif
