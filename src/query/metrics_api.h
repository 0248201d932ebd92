/* The metrics API (GET /api/v1/metrics), prices (GET, POST and DELETE
 * /api/v1/prices) and GET /api/v1/models/unpriced. The context is the
 * query API's (api.h), whose prices field must be set. Shapes and errors
 * are in docs/api.md. */
#ifndef LT_METRICS_API_H
#define LT_METRICS_API_H
#include "query/api.h"

void lt_api_metrics(lt_req_t *r, void *api);
void lt_api_prices(lt_req_t *r, void *api);
void lt_api_models_unpriced(lt_req_t *r, void *api);

#endif
