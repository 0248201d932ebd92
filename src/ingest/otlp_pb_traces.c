/* OTLP/protobuf traces decoder: reads the wire bytes itself, straight into
 * the structures of model/otlp.h. Traces are most of what we ingest, and
 * going through protobuf-c walked every body three times (a nesting check,
 * protobuf-c's unpack copying every string, then our conversion of its
 * tree). Logs and metrics still take that path (otlp_pb.c), which also
 * keeps it for traces as lt_decode_traces_pb_ref: the reference this file
 * is tested (tests/unit/test_otlp_pb.c) and fuzzed (fuzz/fuzz_traces_pb_diff.c)
 * against.
 *
 * Each message is one function over its byte range. A message with repeated
 * fields is read twice at its own level, first counting them (keys and
 * lengths only; nested bytes are skipped), so each array is allocated once,
 * at its exact size (only a singular message sent twice costs a copy).
 * Strings are not copied: they point into the body, with no NUL after them,
 * so the result is good for as long as the body is (the receiver maps it
 * before letting the body go, and the mapping copies what it keeps).
 * Nesting is bounded by MAX_MSG_DEPTH, and so is recursion.
 *
 * The result is the reference's for every body it accepts, except one
 * deliberate difference: protobuf-c hands over strings NUL-terminated with
 * no length, so the reference cut a string at an embedded NUL; we keep all
 * of it, as the JSON decoder (otlp_json.c) does. Otherwise protobuf-c's
 * rules are followed, including where they are not protobuf's, so that the
 * two decoders stay interchangeable:
 *  - a key is at most 5 bytes and a 1-byte key for field 0 is refused (a
 *    longer one is an unknown field); a length is at most 5 bytes; a varint
 *    at most 10, bits past 64 dropped; wire types 3, 4, 6, 7 are refused;
 *  - a known field of the wrong wire type is refused, except bool_value,
 *    which protobuf-c reads from any wire type (true when one of the low 7
 *    bits of any of the field's bytes is set; length-delimited, when
 *    non-empty);
 *  - a singular message sent more than once is merged: repeated fields
 *    append, strings keep the last one sent, but Status.code takes the last
 *    occurrence's value even when it did not send one (so 0);
 *  - KeyValue.value sent more than once: the last AnyValue with a member
 *    set wins; one with no member keeps the earlier member, except that an
 *    earlier string or empty bytes is then lost (EMPTY), and two in a row
 *    with no member at all are refused. Within one AnyValue the last member
 *    set wins (array_value twice replaces, it does not merge).
 * No OTLP exporter sends any of those; they matter only for equality.
 * Refusals match too, but this decoder needs less arena, so a body the
 * reference found too big (LT_ETOOBIG) may decode here, and a body both
 * malformed and too big may get the other of the two errors. Field numbers
 * are those of proto/ (the .proto files the build uses); fields added since,
 * such as Resource.entity_refs, are unknown to both decoders and skipped. */
#include "ingest/decode.h"
#include "core/err.h"
#include <limits.h>
#include <stdint.h>
#include <string.h>

/* As in otlp_pb.c and otlp_json.c: attribute values nested deeper are
 * LT_EDECODE (attributes sit at depth 1). */
#define MAX_VAL_DEPTH 64
/* Messages nested deeper are LT_EDECODE (the request is depth 0), as the
 * reference's pre-check has it. Deep enough for MAX_VAL_DEPTH kvlists.
 * Only the value messages (KeyValue, AnyValue, ArrayValue, KeyValueList)
 * nest without bound, so only they check; the others sit at depth 5 or
 * less. */
#define MAX_MSG_DEPTH 256

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* One field as read off the wire. */
typedef struct {
  uint32_t num;
  unsigned wt;
  const uint8_t *p; /* WT_LEN: the payload; otherwise the value's own bytes */
  size_t len;
  uint64_t v; /* WT_VARINT, WT_I64, WT_I32: the value */
} field_t;

/* The unread part of one message. */
typedef struct {
  const uint8_t *p, *end;
} rd_t;

static rd_t rd_of(const field_t *f) { return (rd_t){f->p, f->p + f->len}; }

static uint64_t le(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Reads the next field of r into *f. r->p < r->end on entry. */
static int next_field(rd_t *r, field_t *f) {
  const uint8_t *p = r->p, *end = r->end;
  uint8_t b = *p++;
  if ((b & 0xf8) == 0) return LT_EDECODE; /* field 0 in one byte */
  uint64_t key = b & 0x7f;
  for (unsigned shift = 7; b & 0x80; shift += 7) {
    if (p == end || shift > 28) return LT_EDECODE;
    b = *p++;
    key |= (uint64_t)(b & 0x7f) << shift;
  }
  f->num = (uint32_t)(key >> 3);
  f->wt = key & 7;
  switch (f->wt) {
  case WT_VARINT: {
    uint64_t v = 0;
    f->p = p;
    for (unsigned shift = 0;; shift += 7) {
      if (p == end || shift == 70) return LT_EDECODE;
      b = *p++;
      v |= (uint64_t)(b & 0x7f) << shift; /* shift <= 63 here */
      if (!(b & 0x80)) break;
    }
    f->len = (size_t)(p - f->p);
    f->v = v;
    break;
  }
  case WT_I64:
    if (end - p < 8) return LT_EDECODE;
    f->p = p;
    f->len = 8;
    f->v = le(p, 8);
    p += 8;
    break;
  case WT_I32:
    if (end - p < 4) return LT_EDECODE;
    f->p = p;
    f->len = 4;
    f->v = le(p, 4);
    p += 4;
    break;
  case WT_LEN: {
    uint64_t n = 0;
    for (unsigned shift = 0;; shift += 7) {
      if (p == end || shift > 28) return LT_EDECODE;
      b = *p++;
      n |= (uint64_t)(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    if (n > INT_MAX || n > (uint64_t)(end - p)) return LT_EDECODE;
    f->p = p;
    f->len = (size_t)n;
    p += n;
    break;
  }
  default: /* groups (3, 4) and the undefined 6, 7 */
    return LT_EDECODE;
  }
  r->p = p;
  return 0;
}

static int want(const field_t *f, unsigned wt) { return f->wt == wt ? 0 : LT_EDECODE; }

/* Counts the fields of message m numbered nums[0..k) into n[0..k). */
static int count_fields(const field_t *m, const uint32_t *nums, size_t *n, int k) {
  rd_t r = rd_of(m);
  field_t f;
  for (int i = 0; i < k; i++) n[i] = 0;
  while (r.p < r.end) {
    int rc = next_field(&r, &f);
    if (rc) return rc;
    for (int i = 0; i < k; i++) n[i] += f.num == nums[i];
  }
  return 0;
}

/* A zeroed array of n elements, or NULL for n == 0. */
static int alloc_array(lt_arena_t *a, size_t n, size_t size, void **out) {
  *out = NULL;
  if (n == 0) return 0;
  *out = lt_arena_calloc(a, n, size);
  return *out ? 0 : LT_ETOOBIG;
}

/* The count-then-allocate step of a repeated field: *items gets a zeroed
 * array for the fields numbered num of message m, at their exact count *n
 * (NULL when there are none). The caller's loop then fills it in order. */
static int alloc_counted(lt_arena_t *a, const field_t *m, uint32_t num, size_t size, void **items, size_t *n) {
  int rc = count_fields(m, &num, n, 1);
  return rc ? rc : alloc_array(a, *n, size, items);
}

/* A string or bytes field as a view of the body; empty is the null slice. */
static lt_str_t view(const field_t *f) { return f->len ? (lt_str_t){(const char *)f->p, f->len} : LT_STR_NULL; }

/* protobuf-c's bool: any payload bit of the field's bytes, whatever the
 * wire type; length-delimited is true when non-empty (its length prefix
 * counts as payload there). */
static bool bool_of(const field_t *f) {
  if (f->wt == WT_LEN) return f->len > 0;
  for (size_t i = 0; i < f->len; i++)
    if (f->p[i] & 0x7f) return true;
  return false;
}

typedef enum { ID_ABSENT, ID_OK, ID_BAD } id_state_t;

/* An id must be exactly n bytes; empty is absent. out is written only for
 * ID_OK, so it stays zero otherwise. */
static id_state_t get_id(const field_t *f, uint8_t *out, size_t n) {
  if (f->len == 0) return ID_ABSENT;
  if (f->len != n) return ID_BAD;
  memcpy(out, f->p, n);
  return ID_OK;
}

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

/* ---- AnyValue and attributes ------------------------------------------- */

/* An AnyValue with what KeyValue needs to merge it. deep: it holds a value
 * slot past MAX_VAL_DEPTH, which fails the request only if the value
 * survives (a later member or KeyValue.value can still replace it, as in
 * the reference, which checked depth on the final tree). */
typedef struct {
  lt_val_t val;
  uint32_t member; /* the oneof member set last, 0 for none */
  bool deep;
} any_t;

static int dec_any(lt_arena_t *a, const field_t *m, int depth, int vdepth, any_t *out);

/* A KeyValue whose value sits at value depth vdepth. */
static int dec_kv(lt_arena_t *a, const field_t *m, int depth, int vdepth, lt_kv_t *out, bool *deep) {
  rd_t r = rd_of(m);
  field_t f;
  any_t v = {0}, nv;
  bool seen = false;
  int rc = 0;
  if (depth > MAX_MSG_DEPTH) return LT_EDECODE;
  while (rc == 0 && r.p < r.end) {
    if ((rc = next_field(&r, &f))) break;
    if (f.num == 1) {
      if ((rc = want(&f, WT_LEN)) == 0) out->key = view(&f);
    } else if (f.num == 2) {
      if ((rc = want(&f, WT_LEN)) || (rc = dec_any(a, &f, depth + 1, vdepth, &nv))) break;
      /* protobuf-c's merge of a second AnyValue (see the file comment) */
      if (!seen || nv.member)
        v = nv;
      else if (!v.member)
        rc = LT_EDECODE;
      else if (v.member == 1 || (v.member == 7 && v.val.u.s.len == 0))
        v = (any_t){0};
      seen = true;
    }
  }
  out->val = v.val;
  *deep = v.deep;
  return rc;
}

/* ArrayValue (kv false) or KeyValueList (kv true) m of an AnyValue at value
 * depth vdepth: both are one repeated field 1, of AnyValue or KeyValue. */
static int dec_list(lt_arena_t *a, const field_t *m, int depth, int vdepth, bool kv, lt_val_t *out, bool *deep) {
  rd_t r = rd_of(m);
  field_t f;
  size_t n;
  void *items;
  int rc;
  if (depth > MAX_MSG_DEPTH) return LT_EDECODE;
  if ((rc = alloc_counted(a, m, 1, kv ? sizeof(lt_kv_t) : sizeof(lt_val_t), &items, &n))) return rc;
  *out = kv ? (lt_val_t){.type = LT_VAL_KVLIST, .u.kv = {items, n}} : (lt_val_t){.type = LT_VAL_ARRAY, .u.arr = {items, n}};
  *deep = n > 0 && vdepth + 1 > MAX_VAL_DEPTH;
  for (size_t i = 0; r.p < r.end;) {
    if ((rc = next_field(&r, &f))) return rc;
    if (f.num != 1) continue;
    if ((rc = want(&f, WT_LEN))) return rc;
    bool d;
    if (kv) {
      rc = dec_kv(a, &f, depth + 1, vdepth + 1, &out->u.kv.items[i++], &d);
    } else {
      any_t it;
      rc = dec_any(a, &f, depth + 1, vdepth + 1, &it);
      out->u.arr.items[i++] = it.val;
      d = it.deep;
    }
    if (rc) return rc;
    *deep |= d;
  }
  return 0;
}

static int dec_any(lt_arena_t *a, const field_t *m, int depth, int vdepth, any_t *out) {
  rd_t r = rd_of(m);
  field_t f;
  int rc = 0;
  *out = (any_t){0};
  if (depth > MAX_MSG_DEPTH) return LT_EDECODE;
  while (rc == 0 && r.p < r.end) {
    if ((rc = next_field(&r, &f))) break;
    if (f.num < 1 || f.num > 7) continue; /* unknown */
    lt_val_t *v = &out->val;
    *v = (lt_val_t){0};
    out->deep = false;
    switch (f.num) {
    case 1:
      v->type = LT_VAL_STR;
      if ((rc = want(&f, WT_LEN)) == 0) v->u.s = view(&f);
      break;
    case 2:
      v->type = LT_VAL_BOOL;
      v->u.b = bool_of(&f);
      break;
    case 3:
      v->type = LT_VAL_INT;
      v->u.i = (int64_t)f.v;
      rc = want(&f, WT_VARINT);
      break;
    case 4:
      v->type = LT_VAL_DOUBLE;
      memcpy(&v->u.d, &f.v, sizeof v->u.d);
      rc = want(&f, WT_I64);
      break;
    case 5:
    case 6:
      if ((rc = want(&f, WT_LEN)) == 0) rc = dec_list(a, &f, depth + 1, vdepth, f.num == 6, v, &out->deep);
      break;
    default:
      v->type = LT_VAL_BYTES;
      if ((rc = want(&f, WT_LEN)) == 0) v->u.s = view(&f);
      break;
    }
    out->member = f.num;
  }
  return rc;
}

/* One attribute (a KeyValue in m, at message depth depth). */
static int dec_attr(lt_arena_t *a, const field_t *m, int depth, lt_kv_t *out) {
  bool deep;
  int rc = want(m, WT_LEN);
  if (rc == 0) rc = dec_kv(a, m, depth, 1, out, &deep);
  return rc ? rc : deep ? LT_EDECODE : 0;
}

/* Makes room in *attrs for the attributes (field num) of message m, after
 * those already there: a singular message sent twice appends. */
static int attrs_room(lt_arena_t *a, const field_t *m, uint32_t num, lt_attrs_t *attrs) {
  size_t n;
  int rc = count_fields(m, &num, &n, 1);
  if (rc || n == 0) return rc;
  lt_kv_t *items = lt_arena_calloc(a, attrs->n + n, sizeof *items);
  if (!items) return LT_ETOOBIG;
  if (attrs->n) memcpy(items, attrs->items, attrs->n * sizeof *items);
  attrs->items = items;
  return 0;
}

/* ---- traces ------------------------------------------------------------ */

/* Resource (m): its attributes append to *out (merged if sent twice). */
static int dec_resource(lt_arena_t *a, const field_t *m, int depth, lt_attrs_t *out) {
  rd_t r = rd_of(m);
  field_t f;
  int rc = attrs_room(a, m, 1, out);
  while (rc == 0 && r.p < r.end) {
    if ((rc = next_field(&r, &f))) break;
    if (f.num == 1)
      rc = dec_attr(a, &f, depth + 1, &out->items[out->n++]);
    else if (f.num == 2) /* dropped_attributes_count */
      rc = want(&f, WT_VARINT);
  }
  return rc;
}

/* InstrumentationScope (m), merged into *out. */
static int dec_scope(lt_arena_t *a, const field_t *m, int depth, lt_otlp_scope_t *out) {
  rd_t r = rd_of(m);
  field_t f;
  int rc = attrs_room(a, m, 3, &out->attrs);
  while (rc == 0 && r.p < r.end) {
    if ((rc = next_field(&r, &f))) break;
    switch (f.num) {
    case 1:
      if ((rc = want(&f, WT_LEN)) == 0) out->name = view(&f);
      break;
    case 2:
      if ((rc = want(&f, WT_LEN)) == 0) out->version = view(&f);
      break;
    case 3: rc = dec_attr(a, &f, depth + 1, &out->attrs.items[out->attrs.n++]); break;
    case 4: rc = want(&f, WT_VARINT); break; /* dropped_attributes_count */
    default: break;
    }
  }
  return rc;
}

static int dec_status(lt_arena_t *a, const field_t *m, int depth, lt_otlp_span_t *s) {
  rd_t r = rd_of(m);
  field_t f;
  int rc = 0;
  s->status_code = 0; /* protobuf-c's merge: the last Status's code, sent or not */
  while (rc == 0 && r.p < r.end) {
    if ((rc = next_field(&r, &f))) break;
    if (f.num == 2) {
      if ((rc = want(&f, WT_LEN)) == 0) s->status_message = view(&f);
    } else if (f.num == 3) {
      rc = want(&f, WT_VARINT);
      s->status_code = (int32_t)(uint32_t)f.v;
    }
  }
  return rc;
}

static int dec_event(lt_arena_t *a, const field_t *m, int depth, lt_otlp_event_t *ev) {
  rd_t r = rd_of(m);
  field_t f;
  int rc = attrs_room(a, m, 3, &ev->attrs);
  while (rc == 0 && r.p < r.end) {
    if ((rc = next_field(&r, &f))) break;
    switch (f.num) {
    case 1:
      rc = want(&f, WT_I64);
      ev->time_ns = f.v;
      break;
    case 2:
      if ((rc = want(&f, WT_LEN)) == 0) ev->name = view(&f);
      break;
    case 3: rc = dec_attr(a, &f, depth + 1, &ev->attrs.items[ev->attrs.n++]); break;
    case 4: rc = want(&f, WT_VARINT); break; /* dropped_attributes_count */
    default: break;
    }
  }
  return rc;
}

static int dec_link(lt_arena_t *a, const field_t *m, int depth, lt_otlp_link_t *l) {
  rd_t r = rd_of(m);
  field_t f, tid = {0}, sid = {0};
  int rc = attrs_room(a, m, 4, &l->attrs);
  while (rc == 0 && r.p < r.end) {
    if ((rc = next_field(&r, &f))) break;
    switch (f.num) {
    case 1: tid = f; rc = want(&f, WT_LEN); break;
    case 2: sid = f; rc = want(&f, WT_LEN); break;
    case 3:
      if ((rc = want(&f, WT_LEN)) == 0) l->trace_state = view(&f);
      break;
    case 4: rc = dec_attr(a, &f, depth + 1, &l->attrs.items[l->attrs.n++]); break;
    case 5: rc = want(&f, WT_VARINT); break; /* dropped_attributes_count */
    case 6: rc = want(&f, WT_I32); break;    /* flags */
    default: break;
    }
  }
  /* A malformed id loses only the link target; the span is still good. */
  if (get_id(&tid, l->trace_id, sizeof l->trace_id) == ID_BAD || get_id(&sid, l->span_id, sizeof l->span_id) == ID_BAD) {
    memset(l->trace_id, 0, sizeof l->trace_id);
    memset(l->span_id, 0, sizeof l->span_id);
  }
  return rc;
}

static int dec_span(lt_arena_t *a, const field_t *m, int depth, lt_otlp_span_t *s) {
  static const uint32_t nums[] = {9, 11, 13}; /* attributes, events, links */
  rd_t r = rd_of(m);
  field_t f, tid = {0}, sid = {0}, pid = {0};
  size_t n[3];
  int rc = count_fields(m, nums, n, 3);
  if (rc == 0) rc = alloc_array(a, n[0], sizeof *s->attrs.items, (void **)&s->attrs.items);
  if (rc == 0) rc = alloc_array(a, n[1], sizeof *s->events, (void **)&s->events);
  if (rc == 0) rc = alloc_array(a, n[2], sizeof *s->links, (void **)&s->links);
  while (rc == 0 && r.p < r.end) {
    if ((rc = next_field(&r, &f))) break;
    switch (f.num) {
    case 1: tid = f; rc = want(&f, WT_LEN); break;
    case 2: sid = f; rc = want(&f, WT_LEN); break;
    case 4: pid = f; rc = want(&f, WT_LEN); break;
    case 3:
      if ((rc = want(&f, WT_LEN)) == 0) s->trace_state = view(&f);
      break;
    case 5:
      if ((rc = want(&f, WT_LEN)) == 0) s->name = view(&f);
      break;
    case 6:
      rc = want(&f, WT_VARINT);
      s->kind = (int32_t)(uint32_t)f.v; /* an int32 enum: the low 32 bits */
      break;
    case 7:
      rc = want(&f, WT_I64);
      s->start_ns = f.v;
      break;
    case 8:
      rc = want(&f, WT_I64);
      s->end_ns = f.v;
      break;
    case 9: rc = dec_attr(a, &f, depth + 1, &s->attrs.items[s->attrs.n++]); break;
    case 11:
      if ((rc = want(&f, WT_LEN)) == 0) rc = dec_event(a, &f, depth + 1, &s->events[s->n_events++]);
      break;
    case 13:
      if ((rc = want(&f, WT_LEN)) == 0) rc = dec_link(a, &f, depth + 1, &s->links[s->n_links++]);
      break;
    case 15:
      if ((rc = want(&f, WT_LEN)) == 0) rc = dec_status(a, &f, depth + 1, s);
      break;
    case 10: /* dropped_attributes_count */
    case 12: /* dropped_events_count */
    case 14: rc = want(&f, WT_VARINT); break; /* dropped_links_count */
    case 16: rc = want(&f, WT_I32); break;    /* flags */
    default: break;
    }
  }
  if (rc) return rc;
  id_state_t t = get_id(&tid, s->trace_id, sizeof s->trace_id);
  id_state_t i = get_id(&sid, s->span_id, sizeof s->span_id);
  id_state_t p = get_id(&pid, s->parent_span_id, sizeof s->parent_span_id);
  if (t == ID_BAD || i == ID_BAD || p == ID_BAD) {
    /* One span with an id of the wrong length must not cost the whole
     * request: all its ids are left zero, which OTLP defines as invalid, so
     * the receiver rejects just this span and counts it in partial_success. */
    memset(s->trace_id, 0, sizeof s->trace_id);
    memset(s->span_id, 0, sizeof s->span_id);
    memset(s->parent_span_id, 0, sizeof s->parent_span_id);
  }
  s->has_parent = p == ID_OK && !all_zero(s->parent_span_id, sizeof s->parent_span_id); /* zeroed when any id is bad */
  return 0;
}

static int dec_scope_spans(lt_arena_t *a, const field_t *m, int depth, lt_otlp_scope_spans_t *ss) {
  rd_t r = rd_of(m);
  field_t f;
  size_t n;
  int rc = alloc_counted(a, m, 2, sizeof *ss->spans, (void **)&ss->spans, &n); /* spans */
  while (rc == 0 && r.p < r.end) {
    if ((rc = next_field(&r, &f)) || f.num < 1 || f.num > 3) continue;
    if ((rc = want(&f, WT_LEN))) break;
    if (f.num == 1)
      rc = dec_scope(a, &f, depth + 1, &ss->scope);
    else if (f.num == 2)
      rc = dec_span(a, &f, depth + 1, &ss->spans[ss->n_spans++]);
    /* 3 is schema_url */
  }
  return rc;
}

static int dec_resource_spans(lt_arena_t *a, const field_t *m, int depth, lt_otlp_resource_spans_t *rs) {
  rd_t r = rd_of(m);
  field_t f;
  size_t n;
  int rc = alloc_counted(a, m, 2, sizeof *rs->scopes, (void **)&rs->scopes, &n); /* scope_spans */
  while (rc == 0 && r.p < r.end) {
    if ((rc = next_field(&r, &f)) || f.num < 1 || f.num > 3) continue;
    if ((rc = want(&f, WT_LEN))) break;
    if (f.num == 1)
      rc = dec_resource(a, &f, depth + 1, &rs->resource);
    else if (f.num == 2)
      rc = dec_scope_spans(a, &f, depth + 1, &rs->scopes[rs->n_scopes++]);
    /* 3 is schema_url */
  }
  return rc;
}

int lt_decode_traces_pb(lt_arena_t *a, const void *body, size_t len, lt_otlp_traces_t *out) {
  static const uint8_t empty[1];
  field_t req = {.wt = WT_LEN, .p = len ? body : empty, .len = len}, f;
  rd_t r = rd_of(&req);
  lt_otlp_traces_t t = {0};
  size_t n;
  int rc = alloc_counted(a, &req, 1, sizeof *t.items, (void **)&t.items, &n); /* resource_spans */
  while (rc == 0 && r.p < r.end) {
    if ((rc = next_field(&r, &f)) || f.num != 1) continue;
    if ((rc = want(&f, WT_LEN)) == 0) rc = dec_resource_spans(a, &f, 1, &t.items[t.n++]);
  }
  if (rc == 0) *out = t;
  return rc;
}
