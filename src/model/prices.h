/* The price table and the cost of a span. A table is loaded from JSON
 * (data/prices.json, or a user's --prices FILE merged on top), each entry
 * names one or more globs on the model name, an optional provider, an
 * optional effective date and USD-per-million-token rates per token type.
 * Rates are held as integer nano-dollars per million tokens, so pricing a
 * span is integer arithmetic with one rounding per token type. The schema
 * and the matching rules are in docs/prices.md.
 * Ownership: a table owns all its strings; lookups return pointers into it
 * that live until lt_prices_free. A table is immutable after loading and
 * merging, so concurrent lookups need no lock. */
#ifndef LT_PRICES_H
#define LT_PRICES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/slice.h"
#include "model/span.h"

typedef struct lt_prices lt_prices_t;

/* One resolved price. Rates are nano-dollars per million tokens; the
 * defaults of the file format are already applied (reasoning = output,
 * absent cache rates = input rate), so every rate is >= 0. */
typedef struct {
  const char *match;    /* first glob of the entry, for messages */
  const char *provider; /* NULL when the entry applies to any provider */
  int64_t effective_from_ns; /* INT64_MIN when the entry has no date */
  lt_nusd_t input, output, cache_read, cache_write, reasoning;
  bool input_includes_cache_read;
} lt_price_t;

/* Parses a price table from len bytes of JSON text. origin names the text
 * in messages (a path, "built-in"...). On failure returns LT_ECONFIG (or
 * LT_ENOMEM) and, when err is not NULL, writes a NUL-terminated message
 * naming the entry and field to change. On success *out is a new table the
 * caller frees with lt_prices_free. */
int lt_prices_load(const char *json, size_t len, const char *origin, lt_prices_t **out, char *err,
                   size_t errlen);

/* Copies every entry of over into base, ranked above base's own entries
 * when both match a model equally specifically (an override file wins).
 * over is left untouched and still belongs to the caller. Returns 0 or
 * LT_ENOMEM (base is then unchanged). */
int lt_prices_merge(lt_prices_t *base, const lt_prices_t *over);

/* Frees a table; NULL is fine. */
void lt_prices_free(lt_prices_t *t);

/* Number of entries (after merging). */
size_t lt_prices_count(const lt_prices_t *t);

/* The price for model at time at_ns (Unix ns; <= 0 means "now": the
 * newest entry). provider may be empty. Among entries whose glob matches
 * and whose effective date is not after at_ns, the most specific glob wins
 * (exact name, then longest literal prefix before the first '*', then most
 * literal characters); then an entry of the same provider (or of none);
 * then an override layer; then the latest effective date. Returns NULL
 * when nothing matches. Matching is case-insensitive. */
const lt_price_t *lt_prices_lookup(const lt_prices_t *t, lt_str_t provider, lt_str_t model,
                                   int64_t at_ns);

/* Prices span from its token counts. Acts only when span->cost_source is
 * LT_COST_UNKNOWN, the span names a model (response_model, else
 * request_model), at least the input or output count is known and the
 * model has a price at span->start_ns; then it fills cost_input (input,
 * cache read and cache write tokens), cost_output (output incl. reasoning)
 * and cost_total, sets LT_COST_COMPUTED and returns true. Otherwise the
 * span is left exactly as it was (a reported cost wins; an unpriced span
 * stays UNKNOWN, never $0) and it returns false. */
bool lt_prices_cost(const lt_prices_t *t, lt_span_t *span);

#endif
