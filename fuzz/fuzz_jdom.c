/* libFuzzer target for the arena JSON document model (src/core/jdom.c).
 * The input is the document. Checks, aborting on a violation:
 *  - what parses writes back as compact JSON that parses again and writes
 *    the same bytes (parse → write → parse → write is stable), never longer
 *    than the input;
 *  - with a lower depth limit the document parses the same or not at all;
 *  - jansson is the reference: what it accepts (no deeper than our limit)
 *    we accept, and our writing means the same to it; for integers both
 *    read the same value;
 *  - accessors agree with the node types. */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/jdom.h"
#include "core/mem.h"

/* Nesting depth of a document jansson accepted (strings skipped). */
static unsigned depth_of(const char *p, size_t n) {
  unsigned d = 0, max = 0;
  bool in = false;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (in) {
      if (c == '\\') i++;
      else if (c == '"') in = false;
    } else if (c == '"') {
      in = true;
    } else if (c == '[' || c == '{') {
      if (++d > max) max = d;
    } else if (c == ']' || c == '}') {
      d--;
    }
  }
  return max;
}

/* ref: jansson's reading of the same value, or NULL when unknown. */
static void check_node(const lt_jd_t *j, json_t *ref) {
  int64_t i;
  double d;
  if (j->type == LT_JD_NUMBER) {
    if (!lt_jd_double(j, &d)) abort();
    if (ref && json_is_integer(ref) && (!lt_jd_int(j, &i) || i != (int64_t)json_integer_value(ref))) abort();
  } else if (lt_jd_int(j, &i) || lt_jd_double(j, &d)) {
    abort();
  }
  if (lt_jd_str(j).len && j->type != LT_JD_STRING) abort();
  if (j->type == LT_JD_STRING && ref &&
      (!json_is_string(ref) || j->str.len != json_string_length(ref) ||
       (j->str.len && memcmp(j->str.ptr, json_string_value(ref), j->str.len))))
    abort();
  if (j->type < LT_JD_ARRAY) {
    if (j->first || j->n) abort();
    return;
  }
  uint32_t n = 0;
  for (const lt_jd_t *k = j->first; k; k = k->next, n++) {
    json_t *kref = NULL;
    if (j->type == LT_JD_ARRAY) {
      if (lt_jd_at(j, n) != k) abort();
      kref = ref ? json_array_get(ref, n) : NULL;
    } else {
      if (!k->key.ptr) abort();
      /* Lookup finds the last member of a name; jansson keeps that one. */
      if (!memchr(k->key.ptr, 0, k->key.len)) {
        char key[256];
        if (k->key.len < sizeof key) {
          memcpy(key, k->key.ptr, k->key.len);
          key[k->key.len] = '\0';
          const lt_jd_t *last = lt_jd_get(j, key);
          if (!last || last->key.len != k->key.len) abort();
          if (last == k && ref) kref = json_object_get(ref, key);
        }
      }
    }
    check_node(k, kref);
  }
  if (n != j->n) abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  json_set_alloc_funcs(lt_malloc, lt_free);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data;
  lt_arena_t *a = lt_arena_create(64 * size + (1u << 20));
  if (!a) abort();
  lt_jd_t *j = NULL;
  lt_jd_err_t err = {0, NULL};
  int rc = lt_jd_parse(a, p, size, NULL, &j, &err);
  if (rc && (j || !err.msg || err.pos > size)) abort();
  if (rc && rc != LT_EDECODE) abort(); /* the arena is big enough for anything */

  /* jansson reads a NUL byte outside strings as the end of the input: no
   * reference for those. */
  json_t *ref = memchr(p, 0, size) ? NULL : json_loadb(p, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  if (ref && rc && depth_of(p, size) <= LT_JD_MAX_DEPTH) abort(); /* jansson took it, we did not */

  lt_buf_t w1, w2;
  lt_buf_init(&w1, 8 * size + 64);
  lt_buf_init(&w2, 8 * size + 64);
  if (rc == 0) {
    check_node(j, ref);
    if (lt_jd_write(&w1, j) || w1.len > size) abort();
    lt_jd_t *j2 = NULL;
    if (lt_jd_parse(a, w1.ptr, w1.len, NULL, &j2, NULL) || lt_jd_write(&w2, j2)) abort();
    if (w1.len != w2.len || memcmp(w1.ptr, w2.ptr, w1.len)) abort();
    if (ref) {
      json_t *back = json_loadb(w1.ptr, w1.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
      if (!back || !json_equal(ref, back)) abort();
      json_decref(back);
    }
    /* A lower depth limit: the same tree, or a refusal. */
    lt_jd_opts_t o = {.max_depth = 3};
    lt_jd_t *j3 = NULL;
    int rc3 = lt_jd_parse(a, p, size, &o, &j3, NULL);
    if (rc3 == 0) {
      lt_buf_reset(&w2);
      if (lt_jd_write(&w2, j3) || w1.len != w2.len || memcmp(w1.ptr, w2.ptr, w1.len)) abort();
    } else if (rc3 != LT_EDECODE) {
      abort();
    }
  }
  json_decref(ref);
  lt_buf_free(&w1);
  lt_buf_free(&w2);
  lt_arena_destroy(a);
  return 0;
}
