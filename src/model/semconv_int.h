/* Internals shared by the semantic-convention mapping files: the per-span
 * attribute index (semconv_attr.c), value conversions and warnings
 * (semconv_attr.c), and payload normalisation — messages and documents
 * (semconv_msgs.c). Internal to src/model/. */
#ifndef LT_SEMCONV_INT_H
#define LT_SEMCONV_INT_H
#include <stdbool.h>
#include <stdint.h>
#include "core/arena.h"
#include "core/buf.h"
#include "model/json_out.h"
#include "model/otlp.h"

/* Flattened lists (`prefix.<i>.suffix`) are read up to this index; larger
 * indexes are ignored with a warning, so a hostile key cannot make us walk
 * a billion empty slots. */
#define LT_SC_MAX_INDEX 1000
#define LT_SC_BITS_LEN (LT_SC_MAX_INDEX / 8 + 1)
/* Warnings kept per span; more are summarised as one. */
#define LT_SC_MAX_WARN 16
/* Longest attribute key we build for a lookup. */
#define LT_SC_MAX_KEY 512

/* The attributes of one span sorted by key, built once per span: exact
 * lookups are binary searches, and every key under a prefix (a flattened
 * list) is one contiguous run. */
typedef struct {
  const lt_kv_t **kv;      /* sorted by key, for prefix runs */
  size_t n;
  bool heap;
  const lt_kv_t *small[48];
  /* Exact lookups (most of the mapping's ~100 per span) go through an
   * open-addressing hash of the keys: position in kv + 1, 0 = empty. */
  uint32_t *slot;
  size_t mask;
  bool slot_heap;
  uint32_t slot_small[128];
  /* Most keys the mapping asks for are absent: a 512-bit filter over
   * (length, middle and last byte) answers those without hashing. */
  uint64_t filt[8];
} lt__aidx_t;

/* JSON-valued attributes parsed at most once per record (several fields
 * read Langfuse's usage_details, metadata objects ...). */
typedef struct {
  const lt_val_t *v;
  json_t *tree; /* NULL when the value is not JSON (bad says whether it tried to be) */
  bool bad;
} lt__sc_json_t;

/* The state of mapping one record. */
typedef struct {
  lt_arena_t *a;
  lt__aidx_t ix;
  int64_t start_ns;                /* the span's start, for absolute timestamps */
  lt__sc_json_t *json;             /* heap, grown as needed */
  size_t n_json, cap_json;
  const lt_otlp_event_t *events;
  size_t n_events;
  lt_buf_t buf;                    /* scratch for rendering */
  lt_str_t warn[LT_SC_MAX_WARN];   /* in the arena */
  size_t n_warn, n_warn_dropped;
  lt_str_t out_finish_reason;      /* first finish reason seen in output messages */
  /* Elision (lt_span_t.elided): the record's attributes, which of them are
   * stored as part of a canonical field instead, and the map being built
   * (JSON object text, key → JSON pointer into the stored span). */
  const lt_attrs_t *attrs;
  bool *skip;                      /* in the arena; NULL: no elision */
  lt_buf_t elided;
  size_t n_elided;
} lt__sc_t;

/* Text attributes at least this long are elided when a canonical field
 * holds exactly the same bytes. */
#define LT__SC_ELIDE_MIN 64

/* Offers s (n bytes, stored at the JSON pointer ptr_fmt...) for elision: an
 * attribute not yet elided whose text is exactly s is left out of the
 * stored attributes and mapped to the pointer. Returns 0 or LT_E*. */
int lt__sc_elide(lt__sc_t *c, const char *s, size_t n, const char *ptr_fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Offers the "content" strings of an array of objects (messages,
 * documents) stored under /field. */
int lt__sc_elide_contents(lt__sc_t *c, const json_t *arr, const char *field);

/* Result of a value conversion that can reject the value (negative values
 * are LT_E* errors). */
enum { LT__CV_OK = 0, LT__CV_BAD = 1 };

int lt__sc_init(lt__sc_t *c, lt_arena_t *a, const lt_attrs_t *attrs);
void lt__sc_free(lt__sc_t *c);

const lt_val_t *lt__idx_get(const lt__aidx_t *ix, const char *key, size_t klen);
/* The value under the key a followed by b; NULL when absent or too long. */
const lt_val_t *lt__idx_get2(const lt__aidx_t *ix, const char *a, const char *b);
/* Marks in bits every index i present as `prefix<i>.`; returns the highest
 * such index plus one (0: none), the bound for walking bits. *over is set
 * when some index exceeded LT_SC_MAX_INDEX. */
int lt__idx_list(const lt__aidx_t *ix, const char *prefix, uint8_t bits[LT_SC_BITS_LEN], bool *over);
/* The run of index positions [*first, *end) whose keys start with prefix. */
void lt__idx_prefix(const lt__aidx_t *ix, const char *prefix, size_t plen, size_t *first, size_t *end);
/* The parsed JSON of an attribute value: maps and arrays as they are,
 * strings parsed when they look like JSON (an object or array); NULL
 * otherwise, with *bad set for a string that looked like JSON but did not
 * parse. Owned by c (freed by lt__sc_free). */
const json_t *lt__sc_json(lt__sc_t *c, const lt_val_t *v, bool *bad);
static inline bool lt__bit(const uint8_t *bits, int i) { return bits[i >> 3] & (1u << (i & 7)); }

/* Records a rejected attribute ("key: why") for `lanterna.warnings`. */
int lt__sc_warn(lt__sc_t *c, const char *key, size_t klen, const char *why);

/* Conversions. Each returns LT__CV_OK, LT__CV_BAD (wrong type or value,
 * *why says what) or an LT_E* error. Strings land in the arena. */
int lt__cv_text(lt__sc_t *c, const lt_val_t *v, lt_str_t *out, const char **why);
int lt__cv_payload(lt__sc_t *c, const lt_val_t *v, lt_str_t *out, const char **why);
int lt__cv_int(const lt_val_t *v, int64_t *out, const char **why);
int lt__cv_double(const lt_val_t *v, double *out, const char **why);

/* Payloads (semconv_msgs.c). Messages of one side (input or output) in the
 * normalised schema as a JSON array, plus their plain text for previews;
 * both empty when no source has messages. */
int lt__sc_messages(lt__sc_t *c, bool output, lt_str_t *json, lt_str_t *text);
int lt__sc_documents(lt__sc_t *c, lt_str_t *json);
/* Inline evaluations (OpenInference annotations/evaluations, GenAI
 * evaluation events) as a JSON array of {name, value?, string_value?,
 * comment?, source}, empty when there are none. */
int lt__sc_scores(lt__sc_t *c, lt_str_t *json);

#endif
