/* libFuzzer target: the OTLP/protobuf traces decoder (ingest/otlp_pb_traces.c)
 * against the protobuf-c decoder it replaced (lt_decode_traces_pb_ref).
 * Both must give the same result code and, on success, the same structures,
 * with the differences the decoders document allowed for:
 *  - the reference cut strings at an embedded NUL, so each of our strings is
 *    compared cut there too;
 *  - the reference needs more arena (protobuf-c's tree, copies of unknown
 *    fields), so when it alone runs out of arena anything goes.
 * Also checks what only the new decoder promises: strings and bytes are
 * views of the body (inside it, not copies), and LT_ETOOBIG (never
 * anything worse) when its arena is one byte short. Aborts on any
 * difference. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/err.h"
#include "ingest/decode.h"
#include "otlp_walk.h"

static const uint8_t *body_lo, *body_hi;

static void differ(const char *what) {
  fprintf(stderr, "fuzz_traces_pb_diff: decoders differ: %s\n", what);
  abort();
}

/* A slice is null exactly when empty, in both decoders. */
static void check_null(lt_str_t s, const char *what) {
  if ((s.ptr == NULL) != (s.len == 0)) differ(what);
}

static void in_body(lt_str_t x, const char *what) {
  const uint8_t *p = (const uint8_t *)x.ptr;
  if (p < body_lo || p > body_hi || x.len > (size_t)(body_hi - p)) differ(what);
}

/* x is ours, y the reference's. */
static void same_str(lt_str_t x, lt_str_t y) {
  check_null(x, "string null iff empty (new)");
  check_null(y, "string null iff empty (ref)");
  if (x.len == 0) return;
  in_body(x, "string outside the body");
  const char *nul = memchr(x.ptr, '\0', x.len);
  size_t cut = nul ? (size_t)(nul - x.ptr) : x.len;
  if (cut != y.len || (cut && memcmp(x.ptr, y.ptr, cut) != 0)) differ("string");
}

static void same_bytes(lt_str_t x, lt_str_t y) {
  check_null(x, "bytes null iff empty (new)");
  check_null(y, "bytes null iff empty (ref)");
  if (x.len) in_body(x, "bytes outside the body");
  if (x.len != y.len || (x.len && memcmp(x.ptr, y.ptr, x.len) != 0)) differ("bytes");
}

/* Arrays are NULL exactly when empty. */
static void same_n(const void *px, size_t nx, const void *py, size_t ny, const char *what) {
  if (nx != ny || (px == NULL) != (nx == 0) || (py == NULL) != (ny == 0)) differ(what);
}

static void same_val(const lt_val_t *x, const lt_val_t *y);

static void same_kvs(const lt_kv_t *x, size_t nx, const lt_kv_t *y, size_t ny) {
  same_n(x, nx, y, ny, "attribute count");
  for (size_t i = 0; i < nx; i++) {
    same_str(x[i].key, y[i].key);
    same_val(&x[i].val, &y[i].val);
  }
}

static void same_attrs(const lt_attrs_t *x, const lt_attrs_t *y) { same_kvs(x->items, x->n, y->items, y->n); }

static void same_val(const lt_val_t *x, const lt_val_t *y) {
  if (x->type != y->type) differ("value type");
  switch (x->type) {
  case LT_VAL_STR: same_str(x->u.s, y->u.s); break;
  case LT_VAL_BYTES: same_bytes(x->u.s, y->u.s); break;
  case LT_VAL_BOOL:
    if (x->u.b != y->u.b) differ("bool");
    break;
  case LT_VAL_INT:
    if (x->u.i != y->u.i) differ("int");
    break;
  case LT_VAL_DOUBLE:
    if (memcmp(&x->u.d, &y->u.d, sizeof x->u.d) != 0) differ("double");
    break;
  case LT_VAL_ARRAY:
    same_n(x->u.arr.items, x->u.arr.n, y->u.arr.items, y->u.arr.n, "array count");
    for (size_t i = 0; i < x->u.arr.n; i++) same_val(&x->u.arr.items[i], &y->u.arr.items[i]);
    break;
  case LT_VAL_KVLIST: same_kvs(x->u.kv.items, x->u.kv.n, y->u.kv.items, y->u.kv.n); break;
  default: break;
  }
}

static void same_span(const lt_otlp_span_t *p, const lt_otlp_span_t *q) {
  if (memcmp(p->trace_id, q->trace_id, 16) || memcmp(p->span_id, q->span_id, 8) ||
      memcmp(p->parent_span_id, q->parent_span_id, 8) || p->has_parent != q->has_parent)
    differ("span ids");
  if (p->kind != q->kind || p->start_ns != q->start_ns || p->end_ns != q->end_ns || p->status_code != q->status_code)
    differ("span scalars");
  same_str(p->trace_state, q->trace_state);
  same_str(p->name, q->name);
  same_str(p->status_message, q->status_message);
  same_attrs(&p->attrs, &q->attrs);
  same_n(p->events, p->n_events, q->events, q->n_events, "event count");
  for (size_t e = 0; e < p->n_events; e++) {
    if (p->events[e].time_ns != q->events[e].time_ns) differ("event time");
    same_str(p->events[e].name, q->events[e].name);
    same_attrs(&p->events[e].attrs, &q->events[e].attrs);
  }
  same_n(p->links, p->n_links, q->links, q->n_links, "link count");
  for (size_t l = 0; l < p->n_links; l++) {
    if (memcmp(p->links[l].trace_id, q->links[l].trace_id, 16) || memcmp(p->links[l].span_id, q->links[l].span_id, 8))
      differ("link ids");
    same_str(p->links[l].trace_state, q->links[l].trace_state);
    same_attrs(&p->links[l].attrs, &q->links[l].attrs);
  }
}

static void same_traces(const lt_otlp_traces_t *x, const lt_otlp_traces_t *y) {
  same_n(x->items, x->n, y->items, y->n, "resource count");
  for (size_t i = 0; i < x->n; i++) {
    const lt_otlp_resource_spans_t *rx = &x->items[i], *ry = &y->items[i];
    same_attrs(&rx->resource, &ry->resource);
    same_n(rx->scopes, rx->n_scopes, ry->scopes, ry->n_scopes, "scope count");
    for (size_t j = 0; j < rx->n_scopes; j++) {
      const lt_otlp_scope_spans_t *sx = &rx->scopes[j], *sy = &ry->scopes[j];
      same_str(sx->scope.name, sy->scope.name);
      same_str(sx->scope.version, sy->scope.version);
      same_attrs(&sx->scope.attrs, &sy->scope.attrs);
      same_n(sx->spans, sx->n_spans, sy->spans, sy->n_spans, "span count");
      for (size_t k = 0; k < sx->n_spans; k++) same_span(&sx->spans[k], &sy->spans[k]);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lt_arena_t *an = lt_arena_create(64u << 20), *ar = lt_arena_create(64u << 20);
  lt_otlp_traces_t x = {0}, y = {0};
  if (an && ar) {
    int rx = lt_decode_traces_pb(an, data, size, &x);
    int ry = lt_decode_traces_pb_ref(ar, data, size, &y);
    body_lo = data;
    body_hi = data + size;
    if (ry != LT_ETOOBIG) {
      if (rx != ry) {
        fprintf(stderr, "new %s, reference %s\n", lt_errname(rx), lt_errname(ry));
        differ("result code");
      }
      if (rx == 0) {
        same_traces(&x, &y);
        walk_traces(&x);
      }
    }
    size_t used = lt_arena_used(an);
    lt_arena_t *small = lt_arena_create(used ? used - 1 : 0);
    if (small) {
      lt_otlp_traces_t z = {0};
      int rz = lt_decode_traces_pb(small, data, size, &z);
      if (rx == 0 && used ? rz != LT_ETOOBIG : rz != rx && rz != LT_ETOOBIG) differ("short arena");
      lt_arena_destroy(small);
    }
  }
  lt_arena_destroy(an);
  lt_arena_destroy(ar);
  return 0;
}
