/* The prices in force: the shipped table (data/prices.json, compiled in),
 * then each --prices file, then per-project overrides (POST
 * /api/v1/prices), merged in that order (docs/prices.md). Ingest threads
 * price spans with the table of their request's project while an API call
 * may replace a project's overrides, so tables are reference counted: a
 * reader holds its table from acquire to release and a replaced table is
 * freed by its last reader. */
#ifndef LT_PRICEBOOK_H
#define LT_PRICEBOOK_H
#include <stddef.h>
#include <stdint.h>
#include "model/prices.h"

typedef struct lt_pricebook lt_pricebook_t;
typedef struct lt_price_ref lt_price_ref_t;

/* Loads the shipped table and merges files[0..n) on top. On a bad file
 * returns LT_ECONFIG with a message in err naming file, entry and field. */
int lt_pricebook_new(const char *const *files, size_t n, lt_pricebook_t **out, char *err, size_t errlen);
void lt_pricebook_free(lt_pricebook_t *pb);

/* Adds one override layer (price file JSON) for a project on top of its
 * earlier ones; layers = NULL/0 clears them. The layers are validated
 * first: on a bad one nothing changes and LT_ECONFIG comes back with a
 * message. Used at start-up (layers read from the store) and by the API. */
int lt_pricebook_set_project(lt_pricebook_t *pb, int64_t project_id, const char *const *layers,
                             const size_t *lens, size_t n, char *err, size_t errlen);
/* Validates a price file without installing it. */
int lt_pricebook_check(const char *json, size_t len, char *err, size_t errlen);

/* The table for a project (its overrides, or the global table). Never
 * NULL once the book exists. Release exactly once. */
lt_price_ref_t *lt_pricebook_acquire(lt_pricebook_t *pb, int64_t project_id);
const lt_prices_t *lt_price_ref_table(const lt_price_ref_t *ref);
void lt_pricebook_release(lt_pricebook_t *pb, lt_price_ref_t *ref);

/* Prices a freshly mapped span: wrapper spans (usage_rollup) get cost
 * source NONE, others are priced by the table unless they reported a cost.
 * Returns true when the span ended up with a computed cost. */
bool lt_pricebook_apply(const lt_prices_t *t, lt_span_t *sp);

#endif
