/* libFuzzer target for the OTLP/JSON logs decoder; walks the result so
 * ASan checks every returned slice. */
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
  default: sink += (unsigned)v->u.i; break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lt_arena_t *a = lt_arena_create(64u << 20);
  lt_otlp_logs_t t = {0};
  if (!a) return 0;
  if (lt_decode_logs_json(a, data, size, &t) == 0) {
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
