/* Backend registry and backend-neutral helpers. */
#include "store/store.h"
#include <string.h>

void lt_query_init(lt_query_t *q, int64_t project_id) {
  memset(q, 0, sizeof *q);
  q->project_id = project_id;
  q->status = -1;
  q->kind = -1;
  q->min_duration_ns = -1;
  q->sort = LT_SORT_START;
  q->ascending = false;
  q->limit = 50;
}

const lt_store_ops_t *lt_store_backend(const char *name) {
  if (strcmp(name, "sqlite") == 0) return &lt_store_sqlite_ops;
  return NULL;
}

const char *const lt_metric_field_names[LT_MF__COUNT] = {
#define LT_MF_NAME_(e, name) [LT_MF_##e] = name,
  LT_METRIC_FIELDS(LT_MF_NAME_)
#undef LT_MF_NAME_
};
