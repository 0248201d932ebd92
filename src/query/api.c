/* Query API handlers. A job carries the parsed query to a worker and the
 * rendered JSON back to the loop thread. */
#include "model/json_out.h"
#include "query/api.h"
#include "core/err.h"
#include "core/mem.h"
#include "ingest/receiver.h"
#include <ctype.h>
#include <strings.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { OP_TRACES, OP_TRACE, OP_SPANS, OP_SESSIONS, OP_SESSION, OP_STATS } op_t;

typedef struct {
  lt_api_t *api;
  lt_req_t *req;
  op_t op;
  lt_query_t q;
  uint8_t trace_id[16];
  int rc;
  char *json;      /* rendered result, malloc'd by jansson */
} job_t;

int lt_parse_time(const char *s, int64_t *ns) {
  if (!s || !*s) return LT_EINVAL;
  char *end;
  if (strspn(s, "0123456789") == strlen(s)) { /* integer nanoseconds */
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return LT_EINVAL;
    *ns = v;
    return 0;
  }
  struct tm tm = {0};
  end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) {
    memset(&tm, 0, sizeof tm);
    end = strptime(s, "%Y-%m-%d", &tm);
    if (!end || *end) return LT_EINVAL;
    *ns = (int64_t)timegm(&tm) * 1000000000LL;
    return 0;
  }
  int64_t frac = 0;
  if (*end == '.') {
    int digits = 0;
    end++;
    while (isdigit((unsigned char)*end)) {
      if (digits < 9) {
        frac = frac * 10 + (*end - '0');
        digits++;
      }
      end++;
    }
    while (digits++ < 9) frac *= 10;
  }
  int64_t off = 0;
  if (*end == 'Z' || *end == 'z') end++;
  else if (*end == '+' || *end == '-') {
    /* exactly [+-]HH:MM */
    if (!isdigit((unsigned char)end[1]) || !isdigit((unsigned char)end[2]) || end[3] != ':' ||
        !isdigit((unsigned char)end[4]) || !isdigit((unsigned char)end[5]))
      return LT_EINVAL;
    int sign = *end == '-' ? -1 : 1;
    int hh = (end[1] - '0') * 10 + (end[2] - '0'), mm = (end[4] - '0') * 10 + (end[5] - '0');
    off = sign * (hh * 3600 + mm * 60);
    end += 6;
  } else return LT_EINVAL;
  if (*end) return LT_EINVAL;
  *ns = ((int64_t)timegm(&tm) - off) * 1000000000LL + frac;
  return 0;
}

/* ---- parameters --------------------------------------------------------- */

static lt_str_t param(lt_req_t *r, const char *name) {
  const char *v = lt_req_query(r, name);
  return v ? lt_str_from(v) : LT_STR_NULL;
}

/* A finite decimal number (no NaN or infinity). */
static int parse_finite(const char *v, double *out) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (!*v || *end || errno || !isfinite(d)) return LT_EINVAL;
  *out = d;
  return 0;
}

/* Fills q from the query string; on error sets *msg and returns LT_EINVAL. */
static int parse_query(lt_req_t *r, lt_query_t *q, bool spans, const char **msg) {
  lt_query_init(q, lt_req_project(r));
  const char *v;
  if ((v = lt_req_query(r, "from")) && lt_parse_time(v, &q->from_ns)) return *msg = "from: expected RFC 3339 time or nanoseconds", LT_EINVAL;
  if ((v = lt_req_query(r, "to")) && lt_parse_time(v, &q->to_ns)) return *msg = "to: expected RFC 3339 time or nanoseconds", LT_EINVAL;
  q->name = param(r, "name");
  q->user_id = param(r, "user");
  q->session_id = param(r, "session");
  q->model = param(r, "model");
  q->tag = param(r, "tag");
  q->q = param(r, "q");
  q->cursor = param(r, "cursor");
  if ((v = lt_req_query(r, "status"))) {
    if (!strcmp(v, "ok")) q->status = LT_STATUS_OK;
    else if (!strcmp(v, "error")) q->status = LT_STATUS_ERROR;
    else if (!strcmp(v, "unset")) q->status = LT_STATUS_UNSET;
    else return *msg = "status: expected ok, error or unset", LT_EINVAL;
  }
  if ((v = lt_req_query(r, "kind"))) {
    if (!spans) return *msg = "kind: only /api/v1/spans filters by kind", LT_EINVAL;
    lt_kind_t k = lt_kind_parse(lt_str_from(v));
    if (k == LT_KIND_UNKNOWN && strcasecmp(v, "UNKNOWN") != 0)
      return *msg = "kind: expected LLM, CHAIN, RETRIEVER, EMBEDDING, TOOL, AGENT, RERANKER, GUARDRAIL, EVALUATOR, PROMPT or UNKNOWN", LT_EINVAL;
    q->kind = (int)k;
  }
  if ((v = lt_req_query(r, "trace_id"))) {
    if (!spans) return *msg = "trace_id: only /api/v1/spans filters by trace id", LT_EINVAL;
    if (lt_hex_decode(q->trace_id, 16, v, strlen(v))) return *msg = "trace_id: expected 32 hexadecimal characters", LT_EINVAL;
    q->has_trace_id = true;
  }
  if ((v = lt_req_query(r, "min_duration_ms"))) {
    char *end;
    double ms = strtod(v, &end);
    if (*end || ms < 0 || ms > 1e12) return *msg = "min_duration_ms: expected a non-negative number", LT_EINVAL;
    q->min_duration_ns = (int64_t)(ms * 1e6);
  }
  /* Scores: traces (spans) having a score of that name, in range. */
  q->score_name = param(r, "score_name");
  if ((v = lt_req_query(r, "score_min"))) {
    if (parse_finite(v, &q->score_min)) return *msg = "score_min: expected a number", LT_EINVAL;
    q->has_score_min = true;
  }
  if ((v = lt_req_query(r, "score_max"))) {
    if (parse_finite(v, &q->score_max)) return *msg = "score_max: expected a number", LT_EINVAL;
    q->has_score_max = true;
  }
  if ((q->has_score_min || q->has_score_max) && !q->score_name.len)
    return *msg = "score_min and score_max need score_name", LT_EINVAL;
  if ((v = lt_req_query(r, "feedback"))) {
    if (!strcmp(v, "up")) q->feedback = 1;
    else if (!strcmp(v, "down")) q->feedback = -1;
    else return *msg = "feedback: expected up or down", LT_EINVAL;
  }
  if ((v = lt_req_query(r, "sort"))) {
    if (!strcmp(v, "start")) q->sort = LT_SORT_START;
    else if (!strcmp(v, "duration")) q->sort = LT_SORT_DURATION;
    else if (!strcmp(v, "cost")) q->sort = LT_SORT_COST;
    else return *msg = "sort: expected start, duration or cost", LT_EINVAL;
  }
  if ((v = lt_req_query(r, "order"))) {
    if (!strcmp(v, "asc")) q->ascending = true;
    else if (strcmp(v, "desc")) return *msg = "order: expected asc or desc", LT_EINVAL;
  }
  if ((v = lt_req_query(r, "limit"))) {
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < 1 || n > 1000) return *msg = "limit: expected an integer from 1 to 1000", LT_EINVAL;
    q->limit = (int)n;
  }
  if (q->q.len > 1000 || q->name.len > 1000 || q->cursor.len > 200 || q->score_name.len > 1000)
    return *msg = "a parameter is too long", LT_EINVAL;
  return 0;
}

/* ---- jobs ------------------------------------------------------------- */

static void job_reply(lt_req_t *r, void *arg) {
  job_t *j = arg;
  switch (j->rc) {
  case 0: lt_reply(r, 200, "application/json", j->json, strlen(j->json)); break;
  case LT_ENOTFOUND:
    lt_reply_error(r, 404, "not_found", j->op == OP_TRACE ? "no trace with that id in this project"
                                                          : "no session with that id in this project");
    break;
  case LT_EINVAL: lt_reply_error(r, 400, "bad_request", "invalid cursor or search query"); break;
  default: lt_reply_error(r, 500, "internal", "the query failed; see the server log"); break;
  }
  lt_free(j->json);
  lt_free(j);
}

static void job_run(void *arg) {
  job_t *j = arg;
  lt_store_t *s = j->api->store;
  json_t *out = NULL;
  switch (j->op) {
  case OP_TRACES: j->rc = s->ops->traces_list(s, &j->q, &out); break;
  case OP_TRACE: j->rc = s->ops->trace_get(s, j->q.project_id, j->trace_id, &out); break;
  case OP_SPANS: j->rc = s->ops->spans_list(s, &j->q, &out); break;
  case OP_SESSIONS: j->rc = s->ops->sessions_list(s, &j->q, &out); break;
  case OP_SESSION: j->rc = s->ops->session_get(s, j->q.project_id, j->q.session_id, &out); break;
  case OP_STATS: {
    lt_store_stats_t ss;
    lt_writer_stats_t ws;
    j->rc = s->ops->stats(s, &ss);
    lt_writer_stats(j->api->writer, &ws);
    if (j->rc == 0)
      out = json_pack("{s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:b,s:I,s:I,s:I,s:I}}",
                      "store", "spans", (json_int_t)ss.spans, "traces", (json_int_t)ss.traces,
                      "logs", (json_int_t)ss.logs, "points", (json_int_t)ss.points,
                      "db_bytes", (json_int_t)ss.db_bytes, "fts_lag", (json_int_t)ss.fts_lag,
                      "rollup_lag", (json_int_t)ss.rollup_lag, "keys_lag", (json_int_t)ss.keys_lag,
                      "writer", "batches", (json_int_t)ws.batches, "records", (json_int_t)ws.records,
                      "inserted_spans", (json_int_t)ws.inserted_spans, "commits", (json_int_t)ws.commits,
                      "failed_commits", (json_int_t)ws.failed_commits, "disk_full", (int)ws.disk_full,
                      "disk_full_refused", (json_int_t)ws.disk_full_refused,
                      "rejected_full", (json_int_t)ws.rejected_full,
                      "queue_records", (json_int_t)ws.queue_records,
                      "queue_bytes", (json_int_t)ws.queue_bytes);
    if (j->rc == 0 && !out) j->rc = LT_ENOMEM;
    const lt_receiver_t *rcv = j->api->receiver;
    uint64_t off = rcv ? atomic_load_explicit(&rcv->offloaded, memory_order_relaxed) : 0;
    if (out && json_object_set_new(out, "ingest", json_pack("{s:I}", "offloaded_requests", (json_int_t)off)))
      j->rc = LT_ENOMEM;
    break;
  }
  }
  if (j->rc == 0) {
    j->json = lt_json_dumps(out);
    if (!j->json) j->rc = LT_ENOMEM;
  }
  json_decref(out);
  lt_req_post(j->req, job_reply, j);
}

void lt_api_submit(lt_api_t *api, lt_req_t *r, void (*fn)(void *), void *job, void (*free_fn)(void *)) {
  lt_req_defer(r);
  if (atomic_load(&api->shutting_down)) {
    free_fn(job);
    lt_reply_error(r, 503, "overloaded", "the server is shutting down");
    return;
  }
  if (lt_workq_submit(api->workq, fn, job)) {
    free_fn(job);
    lt_reply_error(r, 503, "overloaded", "too many queries in flight; retry later");
  }
}

static void run(lt_req_t *r, lt_api_t *api, job_t *j) {
  j->api = api;
  j->req = r;
  lt_api_submit(api, r, job_run, j, lt_free);
}

static job_t *new_job(lt_req_t *r, op_t op) {
  job_t *j = lt_calloc(1, sizeof *j);
  if (!j) lt_reply_error(r, 503, "overloaded", "out of memory");
  else j->op = op;
  return j;
}

void lt_api_traces(lt_req_t *r, void *ud) {
  lt_str_t path = lt_req_path(r);
  const char *base = "/api/v1/traces";
  size_t bl = strlen(base);
  if (path.len == bl || (path.len == bl + 1 && path.ptr[bl] == '/')) {
    job_t *j = new_job(r, OP_TRACES);
    const char *msg = NULL;
    if (!j) return;
    if (parse_query(r, &j->q, false, &msg)) {
      lt_free(j);
      lt_reply_error(r, 400, "bad_request", msg);
      return;
    }
    run(r, ud, j);
    return;
  }
  if (path.len < bl + 1 || path.ptr[bl] != '/') {
    lt_reply_error(r, 404, "not_found", "no such endpoint");
    return;
  }
  const char *id = path.ptr + bl + 1;
  size_t idlen = path.len - bl - 1;
  job_t *j = new_job(r, OP_TRACE);
  if (!j) return;
  lt_query_init(&j->q, lt_req_project(r));
  if (lt_hex_decode(j->trace_id, 16, id, idlen)) {
    lt_free(j);
    lt_reply_error(r, 400, "bad_request", "a trace id is 32 hexadecimal characters");
    return;
  }
  run(r, ud, j);
}

void lt_api_spans(lt_req_t *r, void *ud) {
  job_t *j = new_job(r, OP_SPANS);
  const char *msg = NULL;
  if (!j) return;
  if (parse_query(r, &j->q, true, &msg)) {
    lt_free(j);
    lt_reply_error(r, 400, "bad_request", msg);
    return;
  }
  run(r, ud, j);
}

void lt_api_sessions(lt_req_t *r, void *ud) {
  lt_str_t path = lt_req_path(r);
  const char *base = "/api/v1/sessions";
  size_t bl = strlen(base);
  bool list = path.len == bl || (path.len == bl + 1 && path.ptr[bl] == '/');
  if (!list && (path.len < bl + 1 || path.ptr[bl] != '/')) {
    lt_reply_error(r, 404, "not_found", "no such endpoint");
    return;
  }
  job_t *j = new_job(r, list ? OP_SESSIONS : OP_SESSION);
  const char *msg = NULL;
  if (!j) return;
  if (parse_query(r, &j->q, false, &msg)) {
    lt_free(j);
    lt_reply_error(r, 400, "bad_request", msg);
    return;
  }
  if (!list) j->q.session_id = (lt_str_t){path.ptr + bl + 1, path.len - bl - 1};
  run(r, ud, j);
}

void lt_api_stats(lt_req_t *r, void *ud) {
  job_t *j = new_job(r, OP_STATS);
  if (!j) return;
  run(r, ud, j);
}

void lt_api_healthz(lt_req_t *r, void *ud) {
  static const char ok[] = "{\"status\":\"ok\"}";
  lt_reply(r, 200, "application/json", ok, sizeof ok - 1);
}

void lt_api_readyz(lt_req_t *r, void *ud) {
  lt_api_t *api = ud;
  lt_writer_stats_t st;
  lt_writer_stats(api->writer, &st);
  bool down = atomic_load(&api->shutting_down);
  bool ready = !down && !st.disk_full && lt_writer_ready(api->writer);
  lt_buf_t b;
  lt_buf_init(&b, 4096);
  lt_buf_printf(&b, "{\"status\":\"%s\",\"queue_records\":%zu,\"queue_bytes\":%zu}",
                ready ? "ready" : down ? "shutting_down" : st.disk_full ? "disk_full" : "overloaded",
                st.queue_records, st.queue_bytes);
  if (!ready) lt_req_set_header(r, "Retry-After", "1");
  lt_reply_json(r, ready ? 200 : 503, &b);
  lt_buf_free(&b);
}
