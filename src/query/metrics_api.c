/* GET /api/v1/metrics, the price endpoints and GET /api/v1/models/unpriced.
 * Same shape as the other query handlers (api.c): parameters are checked
 * on the loop thread, the store call runs on the worker pool, the reply
 * goes back on the loop thread. Shapes are in docs/api.md. */
#include "model/json_out.h"
#include "query/metrics_api.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef enum { OP_METRICS, OP_PRICES_GET, OP_PRICES_POST, OP_PRICES_DELETE, OP_UNPRICED } op_t;

typedef struct {
  lt_api_t *api;
  lt_req_t *req;
  op_t op;
  int64_t project_id;
  lt_metrics_query_t mq;
  bool with_scores;
  lt_str_t model, provider; /* price lookup */
  int64_t at_ns;
  char *body;               /* POST /api/v1/prices: a copy of the request body */
  size_t body_len;
  int status;               /* reply status when rc == 0 */
  int rc;
  char message[512];        /* for rc != 0 */
  char *json;
} job_t;

#define DEFAULT_GROUPS 10
#define MAX_GROUPS 100
#define MAX_PRICE_BODY (1u << 20)

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- parsing ------------------------------------------------------------ */

static int parse_group(const char *v, lt_group_t *g) {
  static const struct {
    const char *name;
    lt_group_t g;
  } t[] = {{"model", LT_GROUP_MODEL}, {"provider", LT_GROUP_PROVIDER}, {"name", LT_GROUP_NAME},
           {"kind", LT_GROUP_KIND}, {"status", LT_GROUP_STATUS}, {"environment", LT_GROUP_ENVIRONMENT},
           {"feature", LT_GROUP_FEATURE}, {"user", LT_GROUP_USER}, {"session", LT_GROUP_SESSION},
           {"tag", LT_GROUP_TAG}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    if (!strcmp(v, t[i].name)) {
      *g = t[i].g;
      return 0;
    }
  }
  return LT_EINVAL;
}

/* "count,latency_p95_ms,scores": figure names, plus "scores". */
static int parse_fields(const char *v, uint32_t *mask, bool *scores, const char **bad, size_t *badlen) {
  *mask = 0;
  *scores = false;
  while (*v) {
    const char *comma = strchr(v, ',');
    size_t n = comma ? (size_t)(comma - v) : strlen(v);
    bool found = false;
    if (n == 6 && !strncmp(v, "scores", 6)) found = *scores = true;
    for (int f = 0; !found && f < LT_MF__COUNT; f++) {
      if (strlen(lt_metric_field_names[f]) == n && !strncmp(v, lt_metric_field_names[f], n)) {
        *mask |= 1u << f;
        found = true;
      }
    }
    if (!found) {
      *bad = v;
      *badlen = n;
      return LT_EINVAL;
    }
    v += n + (comma ? 1 : 0);
  }
  return 0;
}

static int64_t floor_to(int64_t v, int64_t step) { return v >= 0 ? v / step * step : -((-v + step - 1) / step) * step; }

/* Fills the metrics query; on a bad parameter writes the message. */
static int parse_metrics(lt_req_t *r, job_t *j) {
  lt_metrics_query_t *q = &j->mq;
  memset(q, 0, sizeof *q);
  q->project_id = j->project_id;
  q->kind = q->status = -1;
  q->max_groups = DEFAULT_GROUPS;
  q->fields = LT_MF_ALL;
  j->with_scores = true;
  char *m = j->message;
  size_t ml = sizeof j->message;
  const char *v;
  int64_t to = now_ns(), from = 0;
  if ((v = lt_req_query(r, "to")) && lt_parse_time(v, &to))
    return snprintf(m, ml, "to: expected an RFC 3339 time or nanoseconds"), LT_EINVAL;
  if ((v = lt_req_query(r, "from")) && lt_parse_time(v, &from))
    return snprintf(m, ml, "from: expected an RFC 3339 time or nanoseconds"), LT_EINVAL;
  if (!lt_req_query(r, "from")) from = to - 86400LL * 1000000000;
  if (from >= to) return snprintf(m, ml, "from must be before to"), LT_EINVAL;
  if ((v = lt_req_query(r, "interval"))) {
    if (!strcmp(v, "1m")) q->interval_s = 60;
    else if (!strcmp(v, "1h")) q->interval_s = 3600;
    else if (!strcmp(v, "1d")) q->interval_s = 86400;
    else return snprintf(m, ml, "interval: expected 1m, 1h or 1d"), LT_EINVAL;
  } else {
    /* The finest interval that keeps a chart readable. */
    int64_t range_s = (to - from) / 1000000000;
    q->interval_s = range_s <= 6 * 3600 ? 60 : range_s <= 14 * 86400 ? 3600 : 86400;
  }
  int64_t step = q->interval_s * 1000000000LL;
  q->from_ns = floor_to(from, step);
  q->to_ns = floor_to(to - 1, step) + step;
  if ((q->to_ns - q->from_ns) / step > 2000)
    return snprintf(m, ml, "the range holds more than 2000 %s buckets; use a coarser interval or a shorter range",
                    v ? v : "interval"), LT_EINVAL;
  if ((v = lt_req_query(r, "group_by")) && parse_group(v, &q->group_by))
    return snprintf(m, ml, "group_by: expected model, provider, name, kind, status, environment, feature, user, "
                           "session or tag"), LT_EINVAL;
  if ((v = lt_req_query(r, "metrics"))) {
    const char *bad = NULL;
    size_t badlen = 0;
    if (parse_fields(v, &q->fields, &j->with_scores, &bad, &badlen))
      return snprintf(m, ml, "metrics: unknown figure '%.*s' (see docs/api.md for the list)",
                      (int)(badlen > 64 ? 64 : badlen), bad), LT_EINVAL;
  }
  if ((v = lt_req_query(r, "limit_groups"))) {
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < 1 || n > MAX_GROUPS) return snprintf(m, ml, "limit_groups: expected 1 to %d", MAX_GROUPS), LT_EINVAL;
    q->max_groups = (int)n;
  }
  struct {
    const char *name;
    lt_str_t *field;
  } filters[] = {{"model", &q->model}, {"provider", &q->provider}, {"name", &q->name},
                 {"environment", &q->environment}, {"feature", &q->feature}};
  bool filtered = false;
  for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
    if ((v = lt_req_query(r, filters[i].name))) {
      if (strlen(v) > 1000) return snprintf(m, ml, "%s: too long", filters[i].name), LT_EINVAL;
      *filters[i].field = lt_str_from(v);
      filtered = true;
    }
  }
  if ((v = lt_req_query(r, "kind"))) {
    lt_kind_t k = lt_kind_parse(lt_str_from(v));
    if (k == LT_KIND_UNKNOWN && strcasecmp(v, "UNKNOWN"))
      return snprintf(m, ml, "kind: expected LLM, CHAIN, RETRIEVER, EMBEDDING, TOOL, AGENT, RERANKER, GUARDRAIL, "
                             "EVALUATOR, PROMPT or UNKNOWN"), LT_EINVAL;
    q->kind = (int)k;
    filtered = true;
  }
  if ((v = lt_req_query(r, "status"))) {
    if (!strcmp(v, "ok")) q->status = LT_STATUS_OK;
    else if (!strcmp(v, "error")) q->status = LT_STATUS_ERROR;
    else if (!strcmp(v, "unset")) q->status = LT_STATUS_UNSET;
    else return snprintf(m, ml, "status: expected ok, error or unset"), LT_EINVAL;
    filtered = true;
  }
  /* Minute buckets are kept 14 days, and per name, feature or environment
   * only 2 days (docs/rollups.md): say so rather than return empty charts. */
  if (q->interval_s == 60) {
    bool fine = q->name.len || q->feature.len || q->environment.len || q->group_by == LT_GROUP_NAME ||
                q->group_by == LT_GROUP_FEATURE || q->group_by == LT_GROUP_ENVIRONMENT;
    int64_t keep_days = fine ? 2 : 14;
    if (q->group_by != LT_GROUP_USER && q->group_by != LT_GROUP_SESSION && q->group_by != LT_GROUP_TAG &&
        q->from_ns < now_ns() - keep_days * 86400 * 1000000000LL - 60 * 1000000000LL)
      return snprintf(m, ml, "minute buckets%s are kept %lld days; use interval=1h for older data",
                      fine ? " per name, feature or environment" : "", (long long)keep_days), LT_EINVAL;
  }
  if (filtered && (q->group_by == LT_GROUP_USER || q->group_by == LT_GROUP_SESSION || q->group_by == LT_GROUP_TAG))
    return snprintf(m, ml, "filters (model, provider, name, environment, feature, kind, status) do not apply to "
                           "group_by=user, session or tag, which are answered per trace"), LT_EINVAL;
  return 0;
}

/* ---- jobs ---------------------------------------------------------------- */

static void job_reply(lt_req_t *r, void *arg) {
  job_t *j = arg;
  switch (j->rc) {
  case 0: lt_reply(r, j->status ? j->status : 200, "application/json", j->json, strlen(j->json)); break;
  case LT_ECONFIG:
  case LT_EINVAL: lt_reply_error(r, 400, "bad_request", j->message[0] ? j->message : "invalid request"); break;
  case LT_ETOOBIG: lt_reply_error(r, 400, "bad_request", "the range holds too many buckets; use a coarser interval"); break;
  default: lt_reply_error(r, 500, "internal", "the query failed; see the server log"); break;
  }
  lt_free(j->json); /* jansson allocates through lt_malloc (main.c) */
  lt_free(j->body);
  lt_free(j);
}

static json_t *price_json(const lt_price_t *p) {
  json_t *o = json_pack("{s:s,s:f,s:f,s:f,s:f,s:f,s:b}", "match", p->match, "input", (double)p->input / 1e9,
                        "output", (double)p->output / 1e9, "cache_read", (double)p->cache_read / 1e9,
                        "cache_write", (double)p->cache_write / 1e9, "reasoning", (double)p->reasoning / 1e9,
                        "input_includes_cache_read", p->input_includes_cache_read);
  if (o) json_object_set_new(o, "provider", p->provider ? json_string(p->provider) : json_null());
  return o;
}

/* Re-reads a project's override layers from the store and installs them. */
static int reload_project(job_t *j) {
  lt_store_t *s = j->api->store;
  json_t *rows = NULL;
  int rc = s->ops->prices_list(s, j->project_id, &rows);
  if (rc) return rc;
  size_t n = json_array_size(rows);
  const char **texts = lt_calloc(n ? n : 1, sizeof *texts);
  size_t *lens = lt_calloc(n ? n : 1, sizeof *lens);
  if (!texts || !lens) rc = LT_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    json_t *b = json_object_get(json_array_get(rows, i), "body");
    texts[i] = json_string_value(b);
    lens[i] = json_string_length(b);
  }
  if (rc == 0)
    rc = lt_pricebook_set_project(j->api->prices, j->project_id, n ? texts : NULL, lens, n, j->message,
                                  sizeof j->message);
  lt_free(texts);
  lt_free(lens);
  json_decref(rows);
  return rc;
}

static int run_prices_get(job_t *j, json_t **out) {
  lt_price_ref_t *ref = lt_pricebook_acquire(j->api->prices, j->project_id);
  const lt_prices_t *t = lt_price_ref_table(ref);
  int rc = 0;
  json_t *o = json_object();
  if (!o) rc = LT_ENOMEM;
  if (rc == 0) json_object_set_new(o, "entries", json_integer((json_int_t)lt_prices_count(t)));
  if (rc == 0 && j->model.len) {
    const lt_price_t *p = lt_prices_lookup(t, j->provider, j->model, j->at_ns > 0 ? j->at_ns : now_ns());
    json_object_set_new(o, "model", json_stringn(j->model.ptr, j->model.len));
    json_object_set_new(o, "price", p ? price_json(p) : json_null());
  }
  lt_pricebook_release(j->api->prices, ref);
  if (rc == 0) {
    lt_store_t *s = j->api->store;
    json_t *rows = NULL;
    rc = s->ops->prices_list(s, j->project_id, &rows);
    json_t *layers = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
      json_t *body = json_object_get(row, "body");
      json_t *parsed = json_loadb(json_string_value(body), json_string_length(body), 0, NULL);
      json_array_append_new(layers, parsed ? parsed : json_null());
    }
    json_decref(rows);
    json_object_set_new(o, "overrides", layers);
  }
  if (rc) json_decref(o);
  else *out = o;
  return rc;
}

static int run_unpriced(job_t *j, json_t **out) {
  lt_store_t *s = j->api->store;
  json_t *arr = NULL;
  int rc = s->ops->models_unpriced(s, j->project_id, j->mq.from_ns, j->mq.to_ns, &arr);
  if (rc) return rc;
  /* Say which of them have a price by now (added after they arrived). */
  lt_price_ref_t *ref = lt_pricebook_acquire(j->api->prices, j->project_id);
  size_t i;
  json_t *row;
  json_array_foreach(arr, i, row) {
    const char *model = json_string_value(json_object_get(row, "model"));
    const char *prov = json_string_value(json_object_get(row, "provider"));
    const lt_price_t *p = model ? lt_prices_lookup(lt_price_ref_table(ref), lt_str_from(prov ? prov : ""),
                                                   lt_str_from(model), now_ns())
                                : NULL;
    json_object_set_new(row, "priced_now", json_boolean(p != NULL));
  }
  lt_pricebook_release(j->api->prices, ref);
  *out = json_pack("{s:o}", "data", arr);
  return *out ? 0 : LT_ENOMEM;
}

/* Feedback rate (traces with feedback over traces started in the range,
 * whatever the query's filters) and thumbs-down rate (down over all
 * feedback), added to the summary's "feedback" object. */
static void add_feedback_rates(job_t *j, json_t *sc) {
  json_t *fb = json_object_get(sc, "feedback");
  if (!json_is_object(fb)) return;
  lt_store_t *s = j->api->store;
  lt_metrics_query_t q = {.project_id = j->project_id, .from_ns = j->mq.from_ns, .to_ns = j->mq.to_ns,
                          .interval_s = j->mq.interval_s, .group_by = LT_GROUP_NONE, .max_groups = 1,
                          .kind = -1, .status = -1, .fields = 1u << LT_MF_TRACES};
  json_t *m = NULL;
  json_int_t traces = -1;
  if (s->ops->metrics(s, &q, &m) == 0) traces = json_integer_value(json_object_get(json_object_get(m, "totals"), "traces"));
  json_decref(m);
  json_int_t up = json_integer_value(json_object_get(fb, "up")), down = json_integer_value(json_object_get(fb, "down"));
  json_int_t with = json_integer_value(json_object_get(fb, "traces"));
  json_object_set_new(fb, "traces_in_range", traces >= 0 ? json_integer(traces) : json_null());
  json_object_set_new(fb, "feedback_rate", traces > 0 ? json_real((double)with / (double)traces) : json_null());
  json_object_set_new(fb, "thumbs_down_rate", up + down > 0 ? json_real((double)down / (double)(up + down)) : json_null());
}

static void job_run(void *arg) {
  job_t *j = arg;
  lt_store_t *s = j->api->store;
  json_t *out = NULL;
  switch (j->op) {
  case OP_METRICS: {
    lt_buf_t b;
    lt_buf_init(&b, 1u << 30);
    j->rc = s->ops->metrics_text(s, &j->mq, &b);
    json_t *sc = NULL;
    if (j->rc == 0 && j->with_scores &&
        s->ops->scores_summary(s, j->project_id, j->mq.from_ns, j->mq.to_ns, j->mq.interval_s, &sc) == 0) {
      add_feedback_rates(j, sc);
      /* Splice "scores" in before the object's closing brace. */
      char *text = lt_json_dumps(sc);
      if (text && b.len && b.ptr[b.len - 1] == '}') {
        b.len--;
        j->rc = lt_buf_printf(&b, ",\"scores\":%s}", text);
      }
      lt_free(text);
      json_decref(sc);
    }
    if (j->rc == 0 && lt_buf_append(&b, "", 1) == 0) {
      j->json = b.ptr; /* NUL-terminated */
      b.ptr = NULL;
    } else if (j->rc == 0) {
      j->rc = LT_ENOMEM;
    }
    lt_buf_free(&b);
    lt_req_post(j->req, job_reply, j);
    return;
  }
  case OP_PRICES_GET: j->rc = run_prices_get(j, &out); break;
  case OP_PRICES_POST:
    j->rc = lt_pricebook_check(j->body, j->body_len, j->message, sizeof j->message);
    if (j->rc == 0) j->rc = s->ops->prices_add(s, j->project_id, j->body, j->body_len);
    if (j->rc == 0) j->rc = reload_project(j);
    if (j->rc == 0) {
      j->status = 201;
      j->rc = run_prices_get(j, &out);
    }
    break;
  case OP_PRICES_DELETE:
    j->rc = s->ops->prices_clear(s, j->project_id);
    if (j->rc == 0) j->rc = reload_project(j);
    if (j->rc == 0) j->rc = run_prices_get(j, &out);
    break;
  case OP_UNPRICED: j->rc = run_unpriced(j, &out); break;
  }
  if (j->rc == 0) {
    j->json = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(12));
    if (!j->json) j->rc = LT_ENOMEM;
  } else if (j->rc != LT_EINVAL && j->rc != LT_ECONFIG && j->rc != LT_ETOOBIG) {
    lt_error("api: %s failed: %s", lt_req_path(j->req).ptr, lt_strerror(j->rc));
  }
  json_decref(out);
  lt_req_post(j->req, job_reply, j);
}

static void job_free(void *arg) {
  job_t *j = arg;
  lt_free(j->body);
  lt_free(j);
}

static void run(lt_req_t *r, lt_api_t *api, job_t *j) {
  j->api = api;
  j->req = r;
  lt_api_submit(api, r, job_run, j, job_free);
}

static job_t *new_job(lt_req_t *r, op_t op) {
  job_t *j = lt_calloc(1, sizeof *j);
  if (!j) {
    lt_reply_error(r, 503, "overloaded", "out of memory");
    return NULL;
  }
  j->op = op;
  j->project_id = lt_req_project(r);
  return j;
}

static void bad(lt_req_t *r, job_t *j) {
  lt_reply_error(r, 400, "bad_request", j->message);
  lt_free(j->body);
  lt_free(j);
}

void lt_api_metrics(lt_req_t *r, void *api) {
  job_t *j = new_job(r, OP_METRICS);
  if (!j) return;
  if (parse_metrics(r, j)) return bad(r, j);
  run(r, api, j);
}

void lt_api_prices(lt_req_t *r, void *api) {
  int method = lt_req_method(r);
  job_t *j = new_job(r, method == LT_POST ? OP_PRICES_POST : method == LT_DELETE ? OP_PRICES_DELETE : OP_PRICES_GET);
  if (!j) return;
  const char *v;
  if (j->op == OP_PRICES_GET) {
    j->model = lt_str_from((v = lt_req_query(r, "model")) ? v : "");
    j->provider = lt_str_from((v = lt_req_query(r, "provider")) ? v : "");
    if ((v = lt_req_query(r, "at")) && lt_parse_time(v, &j->at_ns)) {
      snprintf(j->message, sizeof j->message, "at: expected an RFC 3339 time or nanoseconds");
      return bad(r, j);
    }
    if (j->model.len > 1000 || j->provider.len > 1000) {
      snprintf(j->message, sizeof j->message, "model or provider too long");
      return bad(r, j);
    }
  } else if (j->op == OP_PRICES_POST) {
    lt_str_t body = lt_req_body(r);
    if (body.len == 0 || body.len > MAX_PRICE_BODY) {
      snprintf(j->message, sizeof j->message,
               "expected a price file as the body (JSON, at most 1 MiB; format in docs/prices.md)");
      return bad(r, j);
    }
    if (!(j->body = lt_malloc(body.len))) {
      lt_free(j);
      lt_reply_error(r, 503, "overloaded", "out of memory");
      return;
    }
    memcpy(j->body, body.ptr, body.len);
    j->body_len = body.len;
  }
  run(r, api, j);
}

void lt_api_models_unpriced(lt_req_t *r, void *api) {
  job_t *j = new_job(r, OP_UNPRICED);
  if (!j) return;
  const char *v;
  int64_t to = now_ns(), from = to - 30LL * 86400 * 1000000000;
  if ((v = lt_req_query(r, "from")) && lt_parse_time(v, &from)) {
    snprintf(j->message, sizeof j->message, "from: expected an RFC 3339 time or nanoseconds");
    return bad(r, j);
  }
  if ((v = lt_req_query(r, "to")) && lt_parse_time(v, &to)) {
    snprintf(j->message, sizeof j->message, "to: expected an RFC 3339 time or nanoseconds");
    return bad(r, j);
  }
  j->mq.from_ns = from;
  j->mq.to_ns = to + 86400LL * 1000000000; /* the day bucket holding `to` */
  run(r, api, j);
}
