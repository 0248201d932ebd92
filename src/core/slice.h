/* lt_str_t: a (pointer, length) view of bytes that someone else owns.
 * Network input is never NUL-terminated; never strlen() it. */
#ifndef LT_SLICE_H
#define LT_SLICE_H
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct {
  const char *ptr;
  size_t len;
} lt_str_t;

#define LT_STR(lit) ((lt_str_t){(lit), sizeof(lit) - 1})
#define LT_STR_NULL ((lt_str_t){NULL, 0})

static inline lt_str_t lt_str_from(const char *s) {
  return (lt_str_t){s, s ? strlen(s) : 0};
}
static inline bool lt_str_eq(lt_str_t a, lt_str_t b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
static inline bool lt_str_eq_lit(lt_str_t a, const char *lit) {
  return lt_str_eq(a, lt_str_from(lit));
}
static inline bool lt_str_starts(lt_str_t a, const char *prefix) {
  size_t n = strlen(prefix);
  return a.len >= n && memcmp(a.ptr, prefix, n) == 0;
}
static inline bool lt_str_empty(lt_str_t a) { return a.len == 0; }

#endif
