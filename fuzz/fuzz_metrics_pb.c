/* libFuzzer target for the OTLP/protobuf metrics decoder: no crash, and
 * every returned slice and array readable for its full length. */
#include <stddef.h>
#include <stdint.h>
#include "core/arena.h"
#include "ingest/decode.h"

static unsigned sink;

static void touch(lt_str_t s) {
  for (size_t i = 0; i < s.len; i++) sink += (unsigned char)s.ptr[i];
}

static void walk_val(const lt_val_t *v);

static void walk_kvs(const lt_kv_t *kv, size_t n) {
  for (size_t i = 0; i < n; i++) {
    touch(kv[i].key);
    walk_val(&kv[i].val);
  }
}

static void walk_val(const lt_val_t *v) {
  switch (v->type) {
  case LT_VAL_STR:
  case LT_VAL_BYTES: touch(v->u.s); break;
  case LT_VAL_ARRAY:
    for (size_t i = 0; i < v->u.arr.n; i++) walk_val(&v->u.arr.items[i]);
    break;
  case LT_VAL_KVLIST: walk_kvs(v->u.kv.items, v->u.kv.n); break;
  case LT_VAL_BOOL: sink += v->u.b; break;
  case LT_VAL_INT: sink += (unsigned)v->u.i; break;
  case LT_VAL_DOUBLE: sink += v->u.d > 0; break;
  default: break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lt_arena_t *a = lt_arena_create(64u << 20);
  lt_otlp_metrics_t t = {0};
  if (!a) return 0;
  if (lt_decode_metrics_pb(a, data, size, &t) == 0) {
    for (size_t i = 0; i < t.n; i++) {
      const lt_otlp_resource_metrics_t *rm = &t.items[i];
      walk_kvs(rm->resource.items, rm->resource.n);
      for (size_t j = 0; j < rm->n_scopes; j++) {
        const lt_otlp_scope_metrics_t *sm = &rm->scopes[j];
        touch(sm->scope.name);
        touch(sm->scope.version);
        walk_kvs(sm->scope.attrs.items, sm->scope.attrs.n);
        for (size_t k = 0; k < sm->n_metrics; k++) {
          const lt_otlp_metric_t *m = &sm->metrics[k];
          touch(m->name);
          touch(m->description);
          touch(m->unit);
          sink += (unsigned)m->type + (unsigned)m->temporality + m->monotonic;
          for (size_t p = 0; p < m->n_points; p++) {
            const lt_otlp_point_t *pt = &m->points[p];
            walk_kvs(pt->attrs.items, pt->attrs.n);
            sink += (unsigned)pt->count + (pt->value > 0) + (pt->sum > 0) + pt->has_min + pt->has_max;
            for (size_t b = 0; b < pt->n_buckets; b++) sink += (unsigned)pt->bucket_counts[b];
            for (size_t b = 0; b < pt->n_bounds; b++) sink += pt->explicit_bounds[b] > 0;
          }
        }
      }
    }
  }
  lt_arena_destroy(a);
  return 0;
}
