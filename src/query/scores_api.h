/* The scores API: evaluations and user feedback on traces, spans and
 * sessions (/api/v1/scores, /api/v1/feedback). As in api.h, handlers parse
 * and validate on the loop thread, the store call runs on the worker pool
 * and the reply goes out on the loop thread. Shapes and error messages are
 * documented in docs/api.md ("Scores and feedback"). The handlers take the
 * lt_api_t of api.h as their user data. */
#ifndef LT_SCORES_API_H
#define LT_SCORES_API_H
#include "net/http.h"

/* The largest request body accepted (a batch of up to 1,000 scores). */
#define LT_SCORES_MAX_BODY (1u << 20)

void lt_api_scores(lt_req_t *r, void *api);   /* POST (store) and GET (list) /api/v1/scores */
void lt_api_feedback(lt_req_t *r, void *api); /* POST /api/v1/feedback */
/* POST /api/public/scores: Langfuse's score API (one object or a list),
 * so a Langfuse SDK pointed at Lanterna stores its scores here too. */
void lt_api_lf_scores(lt_req_t *r, void *api);
/* POST /api/public/ingestion: the score-create events of Langfuse SDKs v3
 * and v4 (answer 207 with per-event successes and errors). */
void lt_api_lf_ingestion(lt_req_t *r, void *api);

#endif
