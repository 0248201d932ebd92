/* Shared by the OTLP decoder fuzz targets: walks everything a decoder
 * returned, reading every slice for its full length (ASan flags one that
 * points astray) and checking the invariants both decoders promise (a
 * has_* flag is set exactly when the id is non-zero). Aborts on a broken
 * invariant so libFuzzer reports it. Header-only: each target is one file. */
#ifndef LT_FUZZ_OTLP_WALK_H
#define LT_FUZZ_OTLP_WALK_H
#include <stdint.h>
#include <stdlib.h>
#include "model/otlp.h"

static unsigned walk_sink;

static void walk_touch(lt_str_t s) {
  for (size_t i = 0; i < s.len; i++) walk_sink += (unsigned char)s.ptr[i];
}

static int walk_nonzero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 1;
  return 0;
}

static void walk_val(const lt_val_t *v);

static void walk_kvs(const lt_attrs_t *a) {
  for (size_t i = 0; i < a->n; i++) {
    walk_touch(a->items[i].key);
    walk_val(&a->items[i].val);
  }
}

static void walk_val(const lt_val_t *v) {
  switch (v->type) {
  case LT_VAL_STR:
  case LT_VAL_BYTES: walk_touch(v->u.s); break;
  case LT_VAL_ARRAY:
    for (size_t i = 0; i < v->u.arr.n; i++) walk_val(&v->u.arr.items[i]);
    break;
  case LT_VAL_KVLIST: {
    lt_attrs_t kv = {v->u.kv.items, v->u.kv.n};
    walk_kvs(&kv);
    break;
  }
  case LT_VAL_BOOL: walk_sink += v->u.b; break;
  case LT_VAL_INT: walk_sink += (unsigned)v->u.i; break;
  case LT_VAL_DOUBLE: walk_sink += v->u.d > 0; break;
  default: break;
  }
}

static void walk_scope(const lt_otlp_scope_t *s) {
  walk_touch(s->name);
  walk_touch(s->version);
  walk_kvs(&s->attrs);
}

/* Returns the number of spans. */
static size_t walk_traces(const lt_otlp_traces_t *t) {
  size_t spans = 0;
  for (size_t i = 0; i < t->n; i++) {
    const lt_otlp_resource_spans_t *rs = &t->items[i];
    walk_kvs(&rs->resource);
    for (size_t j = 0; j < rs->n_scopes; j++) {
      const lt_otlp_scope_spans_t *ss = &rs->scopes[j];
      walk_scope(&ss->scope);
      for (size_t k = 0; k < ss->n_spans; k++, spans++) {
        const lt_otlp_span_t *s = &ss->spans[k];
        if (s->has_parent && !walk_nonzero(s->parent_span_id, sizeof s->parent_span_id)) abort();
        walk_touch(s->name);
        walk_touch(s->trace_state);
        walk_touch(s->status_message);
        walk_kvs(&s->attrs);
        for (size_t e = 0; e < s->n_events; e++) {
          walk_touch(s->events[e].name);
          walk_kvs(&s->events[e].attrs);
        }
        for (size_t l = 0; l < s->n_links; l++) {
          walk_touch(s->links[l].trace_state);
          walk_kvs(&s->links[l].attrs);
        }
      }
    }
  }
  return spans;
}

static void walk_logs(const lt_otlp_logs_t *t) {
  for (size_t i = 0; i < t->n; i++) {
    const lt_otlp_resource_logs_t *rl = &t->items[i];
    walk_kvs(&rl->resource);
    for (size_t j = 0; j < rl->n_scopes; j++) {
      const lt_otlp_scope_logs_t *sl = &rl->scopes[j];
      walk_scope(&sl->scope);
      for (size_t k = 0; k < sl->n_logs; k++) {
        const lt_otlp_log_t *l = &sl->logs[k];
        if (l->has_trace != walk_nonzero(l->trace_id, sizeof l->trace_id)) abort();
        if (l->has_span != walk_nonzero(l->span_id, sizeof l->span_id)) abort();
        walk_touch(l->severity_text);
        walk_touch(l->event_name);
        walk_val(&l->body);
        walk_kvs(&l->attrs);
      }
    }
  }
}

static void walk_metrics(const lt_otlp_metrics_t *t) {
  for (size_t i = 0; i < t->n; i++) {
    const lt_otlp_resource_metrics_t *rm = &t->items[i];
    walk_kvs(&rm->resource);
    for (size_t j = 0; j < rm->n_scopes; j++) {
      const lt_otlp_scope_metrics_t *sm = &rm->scopes[j];
      walk_scope(&sm->scope);
      for (size_t k = 0; k < sm->n_metrics; k++) {
        const lt_otlp_metric_t *m = &sm->metrics[k];
        walk_touch(m->name);
        walk_touch(m->description);
        walk_touch(m->unit);
        walk_sink += (unsigned)m->type + (unsigned)m->temporality + m->monotonic;
        for (size_t p = 0; p < m->n_points; p++) {
          const lt_otlp_point_t *pt = &m->points[p];
          walk_kvs(&pt->attrs);
          walk_sink += (unsigned)pt->count + (pt->value > 0) + (pt->sum > 0) + pt->has_min + pt->has_max;
          for (size_t b = 0; b < pt->n_buckets; b++) walk_sink += (unsigned)pt->bucket_counts[b];
          for (size_t b = 0; b < pt->n_bounds; b++) walk_sink += pt->explicit_bounds[b] > 0;
        }
      }
    }
  }
}

#endif
