/* libFuzzer target for the proxy's stream and body parsing (src/proxy/sse.c,
 * src/proxy/llm_api.c).
 *
 * Input layout: byte 0 picks the event cap of a second scanner (small caps
 * exercise pass-through), bytes 1..8 seed the split points, the rest is
 * the stream (or body). Checks, aborting on a violation:
 *  - fed in pieces cut at the chosen points, the concatenation of every
 *    event's raw bytes is the input exactly (nothing lost or duplicated),
 *    with a large cap and with the small one;
 *  - with a cap larger than the input (no pass-through) the events — raw
 *    bytes, name, data, ok — are the same as when fed in one piece;
 *  - an event's name is a piece of its raw bytes, its data no longer.
 * Then, for every API kind, the input goes through lt_llm_request (with and
 * without adding stream usage: a rewritten body must parse and ask for
 * usage), every event through lt_llm_event, the input as a JSON response
 * through lt_llm_response, and both calls through lt_llm_fill; every JSON
 * field filled must parse and token counts must be -1 or non-negative. */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/mem.h"
#include "model/span.h"
#include "proxy/llm_api.h"
#include "proxy/sse.h"

#define MAX_EVENTS 4096
#define HEADER 9

typedef struct {
  char *raw, *name, *data;
  size_t raw_len, name_len, data_len;
  bool ok;
} ev_copy_t;

typedef struct {
  ev_copy_t ev[MAX_EVENTS];
  size_t n;
  lt_buf_t all; /* every raw byte, in order */
  bool overflow;
} sink_t;

static char *dup_bytes(const char *p, size_t n) {
  char *d = malloc(n + 1);
  if (!d) abort();
  if (n) memcpy(d, p, n);
  d[n] = '\0';
  return d;
}

/* The name is a piece of the event's own bytes. */
static bool within(lt_str_t part, lt_str_t raw) {
  if (!part.len) return true;
  return part.ptr >= raw.ptr && part.ptr + part.len <= raw.ptr + raw.len;
}

static int collect(void *ud, const lt_sse_event_t *e) {
  sink_t *k = ud;
  if (e->raw.len && lt_buf_append(&k->all, e->raw.ptr, e->raw.len)) abort();
  if (e->ok) {
    if (!within(e->name, e->raw)) abort();
    if (e->data.len > e->raw.len) abort(); /* joined data lines are shorter than the event */
  }
  if (k->n == MAX_EVENTS) {
    k->overflow = true;
    return 0;
  }
  ev_copy_t *c = &k->ev[k->n++];
  c->raw = dup_bytes(e->raw.ptr, e->raw.len);
  c->raw_len = e->raw.len;
  c->name = dup_bytes(e->name.ptr ? e->name.ptr : "", e->name.len);
  c->name_len = e->name.len;
  c->data = dup_bytes(e->data.ptr ? e->data.ptr : "", e->data.len);
  c->data_len = e->data.len;
  c->ok = e->ok;
  return 0;
}

static void sink_init(sink_t *k, size_t cap) {
  k->n = 0;
  k->overflow = false;
  lt_buf_init(&k->all, cap);
}

static void sink_free(sink_t *k) {
  for (size_t i = 0; i < k->n; i++) {
    free(k->ev[i].raw);
    free(k->ev[i].name);
    free(k->ev[i].data);
  }
  k->n = 0;
  lt_buf_free(&k->all);
}

static uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Feeds p in pieces whose lengths come from seed (0 = one piece). */
static void feed(lt_sse_t *s, const char *p, size_t n, uint64_t seed, sink_t *k) {
  if (!seed) {
    if (lt_sse_feed(s, p, n, collect, k)) abort();
  } else {
    uint64_t r = seed;
    size_t off = 0;
    while (off < n) {
      uint64_t x = next_rand(&r);
      /* mostly tiny pieces (1-3 bytes: split line ends), sometimes larger */
      size_t len = (x & 3) ? 1 + (size_t)((x >> 8) % 3) : 1 + (size_t)((x >> 8) % 97);
      if (len > n - off) len = n - off;
      if (lt_sse_feed(s, p + off, len, collect, k)) abort();
      off += len;
    }
  }
  if (lt_sse_finish(s, collect, k)) abort();
}

static void check_concat(const sink_t *k, const char *p, size_t n) {
  if (k->all.len != n || (n && memcmp(k->all.ptr, p, n))) abort();
}

static void check_json(lt_str_t s) {
  if (!s.len) return;
  json_t *j = json_loadb(s.ptr, s.len, JSON_DECODE_ANY, NULL);
  if (!j) abort();
  json_decref(j);
}

static void check_span(const lt_span_t *sp) {
  for (int i = 0; i < LT_TOK__COUNT; i++)
    if (sp->tokens[i] < -1) abort();
  check_json(sp->input_messages);
  check_json(sp->output_messages);
  check_json(sp->metadata);
  if (sp->ttft_ns < -1) abort();
}

static void run_call(lt_llm_api_t api, const char *p, size_t n, const sink_t *events, bool stream_view,
                     bool add_usage, lt_arena_t *a) {
  lt_llm_call_t c;
  lt_llm_init(&c, api);
  lt_buf_t scratch;
  lt_buf_init(&scratch, 1u << 21);
  char *out = NULL;
  size_t out_len = 0;
  if (lt_llm_request(&c, p, n, add_usage, &out, &out_len) == 0 && out) {
    /* a rewritten body asks for usage and is still an object */
    if (!add_usage || !c.usage_added) abort();
    json_t *j = json_loadb(out, out_len, 0, NULL);
    if (!json_is_object(j)) abort();
    if (!json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage"))) abort();
    json_decref(j);
    lt_free(out);
  }
  if (stream_view) {
    for (size_t i = 0; i < events->n; i++) {
      const ev_copy_t *e = &events->ev[i];
      lt_sse_event_t ev = {.raw = {e->raw, e->raw_len}, .name = {e->name, e->name_len},
                           .data = {e->data, e->data_len}, .ok = e->ok};
      bool drop = true;
      const char *fwd = NULL;
      size_t fwd_len = 0;
      lt_llm_event(&c, &ev, 1000 + (int64_t)i, &drop, &scratch, &fwd, &fwd_len);
      if (drop && !c.usage_added) abort(); /* only the usage chunk we asked for is dropped */
      /* What is forwarded is the raw event, or it minus one "usage":null. */
      if (!fwd || fwd_len > ev.raw.len || (!c.usage_added && (fwd != ev.raw.ptr || fwd_len != ev.raw.len))) abort();
    }
  } else {
    lt_llm_response(&c, p, n);
  }
  lt_span_t sp;
  lt_span_init(&sp);
  if (lt_llm_fill(&c, a, 500, false, false, &sp) == 0) check_span(&sp);
  lt_span_t omitted;
  lt_span_init(&omitted);
  if (lt_llm_fill(&c, a, 500, true, true, &omitted) == 0) {
    if (omitted.input_messages.len || omitted.output_messages.len || omitted.input.len || omitted.output.len)
      abort();
  }
  lt_llm_free(&c);
  lt_buf_free(&scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  json_set_alloc_funcs(lt_malloc, lt_free); /* as the server does */
  return 0;
}

static sink_t one, pieces;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEADER) return 0;
  static const size_t small_caps[] = {1, 2, 7, 16, 64, 300, 4096};
  size_t small_cap = small_caps[data[0] % (sizeof small_caps / sizeof small_caps[0])];
  uint64_t seed = 0;
  memcpy(&seed, data + 1, 8);
  seed |= 1; /* never zero: zero means one piece */
  const char *p = (const char *)data + HEADER;
  size_t n = size - HEADER;
  size_t big = n + 1024;

  /* One piece versus pieces, no pass-through possible. */
  lt_sse_t s1, s2;
  lt_sse_init(&s1, big);
  lt_sse_init(&s2, big);
  sink_init(&one, 2 * n + 16);
  sink_init(&pieces, 2 * n + 16);
  feed(&s1, p, n, 0, &one);
  feed(&s2, p, n, seed, &pieces);
  check_concat(&one, p, n);
  check_concat(&pieces, p, n);
  if (one.n != pieces.n || one.overflow != pieces.overflow) abort();
  for (size_t i = 0; i < one.n; i++) {
    const ev_copy_t *x = &one.ev[i], *y = &pieces.ev[i];
    if (x->ok != y->ok || !x->ok) abort(); /* with this cap every event parses */
    if (x->raw_len != y->raw_len || memcmp(x->raw, y->raw, x->raw_len)) abort();
    if (x->name_len != y->name_len || memcmp(x->name, y->name, x->name_len)) abort();
    if (x->data_len != y->data_len || memcmp(x->data, y->data, x->data_len)) abort();
  }
  lt_sse_free(&s1);
  lt_sse_free(&s2);
  sink_free(&pieces);

  /* A small cap: pass-through may start anywhere; still nothing lost. */
  lt_sse_t s3;
  lt_sse_init(&s3, small_cap);
  sink_init(&pieces, 2 * n + 16);
  feed(&s3, p, n, seed, &pieces);
  check_concat(&pieces, p, n);
  for (size_t i = 0; i < pieces.n; i++)
    if (pieces.ev[i].ok && pieces.ev[i].raw_len > small_cap) abort();
  lt_sse_free(&s3);
  sink_free(&pieces);

  /* What the bodies and events mean, for every API. */
  lt_arena_t *a = lt_arena_create(64u << 20);
  if (!a) abort();
  for (int api = LT_API_OTHER; api <= LT_API_ANTHROPIC_MESSAGES; api++) {
    run_call((lt_llm_api_t)api, p, n, &one, true, true, a);
    run_call((lt_llm_api_t)api, p, n, &one, true, false, a);
    run_call((lt_llm_api_t)api, p, n, &one, false, (seed >> 8) & 1, a);
  }
  lt_arena_destroy(a);

  /* The input as a request path. */
  char path[700];
  size_t pl = n < sizeof path - 1 ? n : sizeof path - 1;
  memcpy(path, p, pl);
  path[pl] = '\0';
  lt_llm_api_t k1 = lt_llm_api_of(path, false), k2 = lt_llm_api_of(path, true);
  if (k2 != LT_API_OTHER && k2 != LT_API_ANTHROPIC_MESSAGES) abort();
  if (k1 == LT_API_ANTHROPIC_MESSAGES) abort();

  sink_free(&one);
  return 0;
}
