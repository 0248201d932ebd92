/* libFuzzer target for the OTLP/JSON trace decoder. Besides not crashing,
 * every slice it returns must be readable for its full length, so the
 * result is walked and hashed (ASan flags a slice that points astray). */
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
  lt_otlp_traces_t t = {0};
  if (!a) return 0;
  if (lt_decode_traces_json(a, data, size, &t) == 0) {
    for (size_t i = 0; i < t.n; i++) {
      const lt_otlp_resource_spans_t *rs = &t.items[i];
      walk_kvs(rs->resource.items, rs->resource.n);
      for (size_t j = 0; j < rs->n_scopes; j++) {
        const lt_otlp_scope_spans_t *ss = &rs->scopes[j];
        touch(ss->scope.name);
        touch(ss->scope.version);
        walk_kvs(ss->scope.attrs.items, ss->scope.attrs.n);
        for (size_t k = 0; k < ss->n_spans; k++) {
          const lt_otlp_span_t *s = &ss->spans[k];
          touch(s->name);
          touch(s->trace_state);
          touch(s->status_message);
          walk_kvs(s->attrs.items, s->attrs.n);
          for (size_t e = 0; e < s->n_events; e++) {
            touch(s->events[e].name);
            walk_kvs(s->events[e].attrs.items, s->events[e].attrs.n);
          }
          for (size_t l = 0; l < s->n_links; l++) {
            touch(s->links[l].trace_state);
            walk_kvs(s->links[l].attrs.items, s->links[l].attrs.n);
          }
        }
      }
    }
  }
  lt_arena_destroy(a);
  return 0;
}
