/* libFuzzer target for the OTLP/protobuf logs decoder: no crash, every
 * returned slice readable for its full length, and the id flags consistent
 * with the id bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
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

static int nonzero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lt_arena_t *a = lt_arena_create(64u << 20);
  lt_otlp_logs_t t = {0};
  if (!a) return 0;
  if (lt_decode_logs_pb(a, data, size, &t) == 0) {
    for (size_t i = 0; i < t.n; i++) {
      const lt_otlp_resource_logs_t *rl = &t.items[i];
      walk_kvs(rl->resource.items, rl->resource.n);
      for (size_t j = 0; j < rl->n_scopes; j++) {
        const lt_otlp_scope_logs_t *sl = &rl->scopes[j];
        touch(sl->scope.name);
        touch(sl->scope.version);
        walk_kvs(sl->scope.attrs.items, sl->scope.attrs.n);
        for (size_t k = 0; k < sl->n_logs; k++) {
          const lt_otlp_log_t *l = &sl->logs[k];
          if (l->has_trace != nonzero(l->trace_id, sizeof l->trace_id)) abort();
          if (l->has_span != nonzero(l->span_id, sizeof l->span_id)) abort();
          touch(l->severity_text);
          touch(l->event_name);
          walk_val(&l->body);
          walk_kvs(l->attrs.items, l->attrs.n);
        }
      }
    }
  }
  lt_arena_destroy(a);
  return 0;
}
