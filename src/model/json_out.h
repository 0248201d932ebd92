/* JSON rendering for the mapping layer (model/semconv*.c): OTLP AnyValues
 * and attribute lists, and jansson trees, written into a capped lt_buf_t.
 * We render jansson trees ourselves instead of json_dumps so that every
 * JSON field Lanterna stores has one number format (shortest round-trip
 * doubles, always with a fraction or exponent) and one treatment of invalid
 * UTF-8 (U+FFFD, via lt_buf_json_str). Internal to src/model/, except
 * lt_json_dumps, which the query API answers with.
 * Functions return 0 or LT_ENOMEM / LT_ETOOBIG. */
#ifndef LT_JSON_OUT_H
#define LT_JSON_OUT_H
#include <jansson.h>
#include "core/arena.h"
#include "core/buf.h"
#include "model/otlp.h"

/* Nesting we follow in AnyValues and parsed JSON; deeper values render as
 * null (nothing legitimate comes near this, and recursion costs stack). */
#define LT_JSON_MAX_DEPTH 64

int lt__json_double(lt_buf_t *b, double d);
int lt__json_base64(lt_buf_t *b, const void *p, size_t n); /* as a JSON string */
/* An AnyValue; EMPTY renders as null. */
int lt__json_val(lt_buf_t *b, const lt_val_t *v);
/* An attribute list as an object, keys in their order. */
int lt__json_attrs(lt_buf_t *b, const lt_attrs_t *attrs);
/* A jansson tree (NULL renders as null). */
int lt__json_tree(lt_buf_t *b, const json_t *j);

/* A jansson tree as compact JSON text, NUL-terminated (free it with
 * lt_free), NULL when out of memory: what the query API answers with.
 * Public, unlike the rest of this header: json_dumps prints every double
 * with 17 significant digits, so a temperature sent as 0.7 would come back
 * as 0.69999999999999996 and a cost of 1.05e-5 USD as 1.0499999999999999e-5;
 * this prints the shortest text that reads back as the same double. */
char *lt_json_dumps(const json_t *j);

/* A new jansson tree for an AnyValue (bytes become base64 strings), or NULL
 * when out of memory. Strings are taken as they are; rendering through
 * lt__json_tree repairs invalid UTF-8. */
json_t *lt__val_tree(const lt_val_t *v);
/* Parses a JSON document; NULL when it is malformed. */
json_t *lt__json_parse(const char *s, size_t n);

/* Copies b's bytes into the arena as *out (empty when b is empty). */
int lt__buf_to_arena(lt_arena_t *a, const lt_buf_t *b, lt_str_t *out);

#endif
