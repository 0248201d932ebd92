/* lt_jd_t: a small JSON document model whose nodes and unescaped strings
 * all live in an lt_arena_t, so parsing costs a few pointer bumps instead
 * of an allocation per value, and the whole tree dies with the arena.
 * Strings without escapes point into the input, so the input must outlive
 * the tree. Parsing is strict RFC 8259: one value, optional whitespace,
 * nothing after it; escapes and UTF-8 are checked (a lone surrogate is an
 * error); numbers keep their text. Objects keep their members in order;
 * lookup by name scans them and, for a repeated name, finds the last one
 * (as most parsers do). */
#ifndef LT_JDOM_H
#define LT_JDOM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/slice.h"

typedef enum {
  LT_JD_NULL = 0,
  LT_JD_FALSE,
  LT_JD_TRUE,
  LT_JD_NUMBER,
  LT_JD_STRING,
  LT_JD_ARRAY,
  LT_JD_OBJECT
} lt_jd_type_t;

typedef struct lt_jd lt_jd_t;
struct lt_jd {
  uint8_t type;        /* lt_jd_type_t */
  bool compact;        /* containers: raw holds no whitespace */
  uint32_t n;          /* containers: elements or members */
  lt_str_t key;        /* a member's name (unescaped), when the parent is an object */
  lt_str_t str;        /* strings: the value, unescaped; numbers: their text */
  lt_str_t raw;        /* the value's bytes in the input (quotes included) */
  lt_jd_t *first;      /* containers: the first element or member */
  lt_jd_t *next;       /* the next sibling */
};

typedef struct {
  unsigned max_depth;  /* nesting of arrays and objects; 0 = LT_JD_MAX_DEPTH */
  size_t max_bytes;    /* longest input accepted; 0 = LT_JD_MAX_BYTES */
} lt_jd_opts_t;

#define LT_JD_MAX_DEPTH 64
#define LT_JD_MAX_BYTES ((size_t)64 << 20)

typedef struct {
  size_t pos;          /* byte offset of the problem */
  const char *msg;     /* static text */
} lt_jd_err_t;

/* Parses n bytes at p into a tree allocated from a. Returns 0 and *out, or
 * LT_EDECODE (not JSON, or nested deeper than allowed), LT_ETOOBIG (input
 * longer than allowed) or LT_ENOMEM (the arena's cap). opts and err may be
 * NULL. */
int lt_jd_parse(lt_arena_t *a, const char *p, size_t n, const lt_jd_opts_t *opts, lt_jd_t **out, lt_jd_err_t *err);

/* Accessors accept NULL and nodes of the wrong type (they return NULL, an
 * empty string or false), so paths can be chained without checks. */
static inline bool lt_jd_is(const lt_jd_t *j, lt_jd_type_t t) { return j && j->type == t; }
/* The member named key of an object (the last one when repeated). */
lt_jd_t *lt_jd_get(const lt_jd_t *obj, const char *key);
/* Element i of an array. */
lt_jd_t *lt_jd_at(const lt_jd_t *arr, size_t i);
/* A string's value; LT_STR_NULL (len 0) for anything else. Not always
 * NUL-terminated: use the length. */
static inline lt_str_t lt_jd_str(const lt_jd_t *j) { return lt_jd_is(j, LT_JD_STRING) ? j->str : LT_STR_NULL; }
/* lt_jd_str of a member. */
static inline lt_str_t lt_jd_gets(const lt_jd_t *obj, const char *key) { return lt_jd_str(lt_jd_get(obj, key)); }
/* An integer number (no fraction, no exponent) that fits int64. */
bool lt_jd_int(const lt_jd_t *j, int64_t *out);
/* Any number, as a double (may be ±inf when out of range). */
bool lt_jd_double(const lt_jd_t *j, double *out);
/* Elements of arrays, members of objects; nothing for other values. */
#define LT_JD_EACH(it, parent) \
  for (lt_jd_t *it = ((parent) && (parent)->type >= LT_JD_ARRAY) ? (parent)->first : NULL; it; it = it->next)

/* Appends j as compact JSON. Numbers keep their text; strings and compact
 * containers are copied from the input as they were. Returns 0 or the
 * buffer's error. */
int lt_jd_write(lt_buf_t *b, const lt_jd_t *j);

#endif
