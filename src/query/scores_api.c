/* Scores API handlers. A POST body is parsed and every score validated on
 * the loop thread, so a bad request is answered with the exact rule it
 * broke (and, for a batch, the index of the first bad item) before any
 * work is queued; the store call then runs on a worker. */
#include "model/json_out.h"
#include "query/scores_api.h"
#include "query/api.h"
#include "core/err.h"
#include "core/mem.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OP_ADD, OP_LIST } op_t;

typedef struct {
  lt_api_t *api;
  lt_req_t *req;
  op_t op;
  int64_t project_id;
  json_t *doc;                 /* the parsed body: the scores' strings point into it */
  lt_score_t *scores;
  lt_score_result_t *results;
  size_t n;
  bool batch;
  lt_score_query_t q;
  int rc;
  char *json;                  /* rendered reply, malloc'd by jansson */
  bool all_duplicates;
  /* Which API the request came through, which sets the reply's shape; for
   * Langfuse's, the translated items (the scores' strings point into
   * them), the refused items' errors and, for ingestion, the accepted
   * events' ids. */
  enum { API_NATIVE, API_LF_SCORES, API_LF_INGESTION } api_kind;
  json_t *lf_items, *lf_errors, *lf_ids;
} job_t;

static void job_free(job_t *j) {
  json_decref(j->doc);
  json_decref(j->lf_items);
  json_decref(j->lf_errors);
  json_decref(j->lf_ids);
  lt_free(j->scores);
  lt_free(j->results);
  lt_free(j->json);
  lt_free(j);
}

/* ---- validation ------------------------------------------------------------ */

typedef struct {
  char text[320];
} msg_t;

/* Sets m to the message (prefixed with the batch item, when there is one)
 * and returns LT_EINVAL. */
static int fail(msg_t *m, long item, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(msg_t *m, long item, const char *fmt, ...) {
  int k = item >= 0 ? snprintf(m->text, sizeof m->text, "item %ld: ", item) : 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->text + k, sizeof m->text - (size_t)k, fmt, ap);
  va_end(ap);
  return LT_EINVAL;
}

static size_t utf8_chars(const char *p, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    if (((unsigned char)p[i] & 0xC0) != 0x80) c++;
  return c;
}

/* An optional string field of at most max characters; JSON null is
 * absent. *given tells an empty string from an absent one. */
static int opt_str(json_t *o, const char *key, size_t max, lt_str_t *out, bool *given, msg_t *m, long item) {
  json_t *v = json_object_get(o, key);
  *out = LT_STR_NULL;
  if (given) *given = false;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v)) return fail(m, item, "%s: expected a string", key);
  out->ptr = json_string_value(v);
  out->len = json_string_length(v);
  if (given) *given = true;
  if (utf8_chars(out->ptr, out->len) > max) return fail(m, item, "%s: at most %zu characters", key, max);
  return 0;
}

static int hex_id(json_t *o, const char *key, uint8_t *out, size_t n, bool *has, msg_t *m, long item) {
  lt_str_t s;
  bool given;
  int rc = opt_str(o, key, 64, &s, &given, m, item);
  *has = given;
  if (rc == 0 && !given) return 0;
  if (rc || lt_hex_decode(out, n, s.ptr, s.len))
    return fail(m, item, "%s: expected %zu hexadecimal characters", key, 2 * n);
  return 0;
}

/* Rejects fields the endpoint does not know, so a typo ("trace" for
 * "trace_id") is an error rather than a silently different score. */
static int known_fields(json_t *o, const char *const *allowed, msg_t *m, long item) {
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    bool ok = false;
    for (const char *const *a = allowed; *a && !ok; a++) ok = !strcmp(key, *a);
    if (!ok) return fail(m, item, "unknown field '%.40s'", key);
  }
  return 0;
}

static const char *const score_fields[] = {"trace_id", "span_id", "session_id", "name", "value", "string_value",
                                           "data_type", "source", "comment", "idempotency_key", "time", NULL};
static const char *const feedback_fields[] = {"trace_id", "span_id", "value", "comment", "idempotency_key", NULL};

/* The target, comment and idempotency key, which both endpoints share. */
static int parse_common(json_t *o, lt_score_t *sc, msg_t *m, long item) {
  bool given;
  int rc = hex_id(o, "trace_id", sc->trace_id, 16, &sc->has_trace, m, item);
  if (!rc) rc = hex_id(o, "span_id", sc->span_id, 8, &sc->has_span, m, item);
  if (!rc) rc = opt_str(o, "session_id", LT_SCORE_SESSION_MAX, &sc->session_id, &given, m, item);
  if (!rc && given && !sc->session_id.len) rc = fail(m, item, "session_id: must not be empty");
  if (!rc) rc = opt_str(o, "comment", LT_SCORE_COMMENT_MAX, &sc->comment, NULL, m, item);
  if (!rc) rc = opt_str(o, "idempotency_key", LT_SCORE_KEY_MAX, &sc->idempotency_key, &given, m, item);
  if (!rc && given && !sc->idempotency_key.len) rc = fail(m, item, "idempotency_key: must not be empty");
  if (rc) return rc;
  if (sc->has_span && !sc->has_trace) return fail(m, item, "span_id needs the trace_id of its trace");
  if (sc->has_trace && sc->session_id.len) return fail(m, item, "give either trace_id or session_id, not both");
  if (!sc->has_trace && !sc->session_id.len)
    return fail(m, item, "a score needs a target: trace_id (optionally with span_id) or session_id");
  return 0;
}

/* value, string_value and data_type: the declared type, else the type of
 * value (number → numeric, true/false → boolean, string → categorical). */
static int parse_value(json_t *o, lt_score_t *sc, msg_t *m, long item) {
  json_t *value = json_object_get(o, "value");
  if (json_is_null(value)) value = NULL;
  lt_str_t type, label;
  bool has_type, has_label;
  int rc = opt_str(o, "data_type", 32, &type, &has_type, m, item);
  if (!rc) rc = opt_str(o, "string_value", LT_SCORE_LABEL_MAX, &label, &has_label, m, item);
  if (rc) return rc;
  if (value && !json_is_number(value) && !json_is_boolean(value) && !json_is_string(value))
    return fail(m, item, "value: expected a number, true/false or a string label");
  if (has_type) {
    if (lt_str_eq_lit(type, "numeric")) sc->data_type = LT_SCORE_NUMERIC;
    else if (lt_str_eq_lit(type, "boolean")) sc->data_type = LT_SCORE_BOOLEAN;
    else if (lt_str_eq_lit(type, "categorical")) sc->data_type = LT_SCORE_CATEGORICAL;
    else return fail(m, item, "data_type: expected numeric, boolean or categorical");
  } else if (json_is_number(value)) {
    sc->data_type = LT_SCORE_NUMERIC;
  } else if (json_is_boolean(value)) {
    sc->data_type = LT_SCORE_BOOLEAN;
  } else if (json_is_string(value) || has_label) {
    sc->data_type = LT_SCORE_CATEGORICAL;
  } else {
    return fail(m, item, "value: required (a number, true/false, or a string label)");
  }
  switch (sc->data_type) {
  case LT_SCORE_CATEGORICAL:
    if (value && !json_is_string(value))
      return fail(m, item, "value: a categorical score takes a string label, not a number");
    if (value && has_label) return fail(m, item, "give the label once: in value or in string_value");
    if (value) {
      label = (lt_str_t){json_string_value(value), json_string_length(value)};
      if (utf8_chars(label.ptr, label.len) > LT_SCORE_LABEL_MAX)
        return fail(m, item, "value: a label has at most %d characters", LT_SCORE_LABEL_MAX);
    }
    if (!label.len) return fail(m, item, "string_value: a categorical score needs a label (1 to %d characters)",
                                LT_SCORE_LABEL_MAX);
    sc->string_value = label;
    return 0;
  case LT_SCORE_NUMERIC:
    if (!json_is_number(value)) return fail(m, item, "value: a numeric score needs a number");
    sc->value = json_number_value(value);
    if (!isfinite(sc->value)) return fail(m, item, "value: must be a finite number");
    break;
  case LT_SCORE_BOOLEAN:
    if (json_is_boolean(value)) sc->value = json_is_true(value) ? 1 : 0;
    else if (json_is_number(value) && (json_number_value(value) == 0 || json_number_value(value) == 1))
      sc->value = json_number_value(value);
    else return fail(m, item, "value: a boolean score needs true, false, 0 or 1");
    break;
  }
  if (has_label) return fail(m, item, "string_value: only categorical scores have a string_value");
  return 0;
}

static int parse_score(json_t *o, lt_score_t *sc, msg_t *m, long item) {
  memset(sc, 0, sizeof *sc);
  if (!json_is_object(o)) return fail(m, item, "expected a JSON object");
  int rc = known_fields(o, score_fields, m, item);
  if (!rc) rc = parse_common(o, sc, m, item);
  bool given;
  if (!rc) rc = opt_str(o, "name", LT_SCORE_NAME_MAX, &sc->name, &given, m, item);
  if (!rc && !sc->name.len) rc = fail(m, item, "name: required, 1 to %d characters", LT_SCORE_NAME_MAX);
  if (!rc) rc = parse_value(o, sc, m, item);
  lt_str_t source;
  if (!rc) rc = opt_str(o, "source", 32, &source, &given, m, item);
  if (rc) return rc;
  if (!given || lt_str_eq_lit(source, "api")) sc->source = LT_SCORE_API;
  else if (lt_str_eq_lit(source, "human")) sc->source = LT_SCORE_HUMAN;
  else if (lt_str_eq_lit(source, "evaluator")) sc->source = LT_SCORE_EVALUATOR;
  else return fail(m, item, "source: expected api, human or evaluator");
  json_t *t = json_object_get(o, "time");
  if (json_is_integer(t) && json_integer_value(t) > 0) sc->time_ns = json_integer_value(t);
  else if (t && !json_is_null(t) && (!json_is_string(t) || lt_parse_time(json_string_value(t), &sc->time_ns) ||
                                     sc->time_ns <= 0))
    return fail(m, item, "time: expected an RFC 3339 time or integer nanoseconds since the epoch");
  return 0;
}

static int parse_feedback(json_t *o, lt_score_t *sc, msg_t *m) {
  memset(sc, 0, sizeof *sc);
  if (!json_is_object(o)) return fail(m, -1, "expected a JSON object");
  int rc = known_fields(o, feedback_fields, m, -1);
  if (!rc && !json_object_get(o, "trace_id")) rc = fail(m, -1, "trace_id: required");
  if (!rc) rc = parse_common(o, sc, m, -1);
  if (rc) return rc;
  json_t *v = json_object_get(o, "value");
  double d = json_is_number(v) ? json_number_value(v) : 0;
  if (d != 1 && d != -1) return fail(m, -1, "value: feedback is 1 (thumbs up) or -1 (thumbs down)");
  sc->name = LT_STR(LT_SCORE_FEEDBACK);
  sc->data_type = LT_SCORE_NUMERIC;
  sc->value = d;
  sc->source = LT_SCORE_HUMAN;
  return 0;
}

/* ---- jobs ---------------------------------------------------------------------- */

static void job_reply(lt_req_t *r, void *arg) {
  job_t *j = arg;
  switch (j->rc) {
  case 0: {
    int status = 200;
    if (j->api_kind == API_LF_INGESTION) status = 207; /* per-event results */
    else if (j->api_kind == API_NATIVE && j->op == OP_ADD && !j->all_duplicates) status = 201;
    lt_reply(r, status, "application/json", j->json, strlen(j->json));
    break;
  }
  case LT_EINVAL:
    lt_reply_error(r, 400, "bad_request", j->op == OP_LIST ? "invalid cursor" : "invalid score");
    break;
  case LT_EFULL: lt_reply_error(r, 503, "overloaded", "the database is busy; retry later"); break;
  case LT_ENOSPACE:
    lt_reply_error(r, 503, "insufficient_storage", "the server's disk is full: nothing was stored; retry once space is freed");
    break;
  default: lt_reply_error(r, 500, "internal", "the request failed; see the server log"); break;
  }
  job_free(j);
}

/* Langfuse's answers: {"id"} for one score (its ids are strings); for a
 * list, {"message":"Accepted"} when every item was, else the counts and
 * the rejected items' messages (its SDK logs those). */
static json_t *lf_result(const job_t *j) {
  if (j->api_kind == API_LF_INGESTION) {
    json_t *ok = json_array();
    size_t i;
    json_t *id;
    json_array_foreach(j->lf_ids, i, id) json_array_append_new(ok, json_pack("{s:O,s:i}", "id", id, "status", 201));
    return ok ? json_pack("{s:o,s:O}", "successes", ok, "errors", j->lf_errors) : NULL;
  }
  if (!j->batch) {
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)j->results[0].id);
    return json_pack("{s:s}", "id", id);
  }
  size_t rejected = json_array_size(j->lf_errors);
  if (!rejected) return json_pack("{s:s}", "message", "Accepted");
  return json_pack("{s:I,s:I,s:O}", "accepted", (json_int_t)j->n, "rejected", (json_int_t)rejected, "errors",
                   j->lf_errors);
}

static json_t *add_result(const job_t *j) {
  if (j->api_kind != API_NATIVE) return lf_result(j);
  if (!j->batch)
    return json_pack("{s:I,s:b}", "id", (json_int_t)j->results[0].id, "duplicate", j->results[0].duplicate);
  json_t *ids = json_array(), *dup = json_array();
  for (size_t i = 0; ids && dup && i < j->n; i++)
    if (json_array_append_new(ids, json_integer(j->results[i].id)) ||
        json_array_append_new(dup, json_boolean(j->results[i].duplicate))) {
      json_decref(ids);
      ids = NULL;
    }
  if (!ids || !dup) {
    json_decref(ids);
    json_decref(dup);
    return NULL;
  }
  return json_pack("{s:o,s:o}", "ids", ids, "duplicate", dup);
}

static void job_run(void *arg) {
  job_t *j = arg;
  lt_store_t *s = j->api->store;
  json_t *out = NULL;
  if (j->op == OP_ADD) {
    j->rc = j->n ? lt_store_score_add(s, j->project_id, j->scores, j->n, j->results) : 0;
    if (j->rc == 0) {
      j->all_duplicates = true;
      for (size_t i = 0; i < j->n; i++) j->all_duplicates &= j->results[i].duplicate;
      if (!(out = add_result(j))) j->rc = LT_ENOMEM;
    }
  } else {
    j->rc = lt_store_scores_list(s, &j->q, &out);
  }
  if (j->rc == 0) {
    j->json = lt_json_dumps(out);
    if (!j->json) j->rc = LT_ENOMEM;
  }
  json_decref(out);
  lt_req_post(j->req, job_reply, j);
}

static void job_free_any(void *j) { job_free(j); }

/* Queues the job; the reply comes from job_reply. */
static void run(lt_req_t *r, lt_api_t *api, job_t *j) {
  j->api = api;
  j->req = r;
  lt_api_submit(api, r, job_run, j, job_free_any);
}

static job_t *new_job(lt_req_t *r, op_t op) {
  job_t *j = lt_calloc(1, sizeof *j);
  if (!j) lt_reply_error(r, 503, "overloaded", "out of memory");
  else {
    j->op = op;
    j->project_id = lt_req_project(r);
  }
  return j;
}

/* Reads the body as JSON; replies and returns NULL when it is not. */
static json_t *read_body(lt_req_t *r) {
  lt_str_t body = lt_req_body(r);
  if (body.len > LT_SCORES_MAX_BODY) {
    lt_reply_error(r, 413, "payload_too_large", "the body exceeds 1 MiB; send at most 1,000 scores per request");
    return NULL;
  }
  json_error_t err;
  json_t *doc = json_loadb(body.ptr ? body.ptr : "", body.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
  if (!doc) {
    char m[300];
    if (body.len == 0) snprintf(m, sizeof m, "the body is empty: send a JSON object (or an array of them)");
    else snprintf(m, sizeof m, "the body is not valid JSON: %s (line %d, column %d)", err.text, err.line, err.column);
    lt_reply_error(r, 400, "bad_request", m);
  }
  return doc;
}

/* ---- POST /api/v1/scores and /api/v1/feedback ---------------------------------- */

/* Reads a POST body and makes the job that stores its scores: the items
 * are the body itself, or the array under list_key, a list when batch
 * allows one (else one object). Sets *items and *n (how many); replies
 * and returns NULL when the body is not JSON, holds no item or too many,
 * or memory runs out. */
static job_t *add_job(lt_req_t *r, bool batch, const char *list_key, json_t **items, size_t *n) {
  json_t *doc = read_body(r);
  if (!doc) return NULL;
  job_t *j = new_job(r, OP_ADD);
  if (!j) {
    json_decref(doc);
    return NULL;
  }
  j->doc = doc;
  *items = list_key ? json_object_get(doc, list_key) : doc;
  j->batch = batch && json_is_array(*items);
  *n = j->batch ? json_array_size(*items) : 1;
  msg_t m = {{0}};
  int rc = 0;
  if (list_key && !j->batch) rc = fail(&m, -1, "expected {\"%s\": [...]}", list_key);
  else if (j->batch && *n == 0) rc = fail(&m, -1, "the list is empty: send 1 to %d scores", LT_SCORE_BATCH_MAX);
  else if (*n > LT_SCORE_BATCH_MAX) rc = fail(&m, -1, "at most %d scores per request", LT_SCORE_BATCH_MAX);
  if (rc) {
    job_free(j);
    lt_reply_error(r, 400, "bad_request", m.text);
    return NULL;
  }
  j->scores = lt_calloc(*n, sizeof *j->scores);
  j->results = lt_calloc(*n, sizeof *j->results);
  if (!j->scores || !j->results) {
    job_free(j);
    lt_reply_error(r, 503, "overloaded", "out of memory");
    return NULL;
  }
  return j;
}

static void add(lt_req_t *r, lt_api_t *api, bool feedback) {
  json_t *doc;
  size_t n;
  job_t *j = add_job(r, !feedback, NULL, &doc, &n);
  if (!j) return;
  j->n = n;
  msg_t m = {{0}};
  int rc = 0;
  if (feedback) rc = parse_feedback(doc, &j->scores[0], &m);
  else if (!j->batch) rc = parse_score(doc, &j->scores[0], &m, -1);
  for (size_t i = 0; rc == 0 && j->batch && i < j->n; i++)
    rc = parse_score(json_array_get(doc, i), &j->scores[i], &m, (long)i);
  if (rc) {
    job_free(j);
    lt_reply_error(r, 400, "bad_request", m.text);
    return;
  }
  run(r, api, j);
}

void lt_api_feedback(lt_req_t *r, void *ud) { add(r, ud, true); }

/* ---- POST /api/public/scores (Langfuse) ---------------------------------------
 * What a Langfuse SDK sends when pointed at Lanterna: a list of scores
 * (SDK v5), or one (the public API's single-score form), camelCase. Each item is translated to
 * this API's fields and validated by the same rules; fields Lanterna does
 * not keep (metadata, environment, configId, queueId, datasetRunId) and
 * unknown ones are ignored, as a Langfuse server would. In a list, a bad
 * item is reported in `errors` and the others are stored. */

static const char *const lf_renames[][2] = {
  {"name", "name"}, {"value", "value"}, {"comment", "comment"}, {"traceId", "trace_id"},
  {"observationId", "span_id"}, {"sessionId", "session_id"}, {"id", "idempotency_key"}, {"timestamp", "time"},
};

/* An upper-case Langfuse enum value, mapped through pairs (from, to) into
 * t[to]; what is kept names the accepted values for the message. */
static int lf_enum(json_t *o, const char *key, const char *const *pairs, const char *kept, json_t *t, const char *to,
                   msg_t *m, long item) {
  json_t *v = json_object_get(o, key);
  if (!v || json_is_null(v)) return 0;
  const char *sv = json_string_value(v);
  if (!sv) return fail(m, item, "%s: expected a string", key);
  for (const char *const *p = pairs; *p; p += 2)
    if (!strcmp(sv, p[0])) return json_object_set_new(t, to, json_string(p[1])) ? LT_ENOMEM : 0;
  return fail(m, item, "%s: '%.40s' is not supported (Lanterna keeps %s)", key, sv, kept);
}

/* A hex id under its Langfuse name, so the message names what was sent. */
static int lf_hex(json_t *o, const char *key, size_t n, msg_t *m, long item) {
  json_t *v = json_object_get(o, key);
  uint8_t id[16];
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v) || lt_hex_decode(id, n, json_string_value(v), json_string_length(v)))
    return fail(m, item, "%s: expected %zu hexadecimal characters (an OpenTelemetry %s id)", key, 2 * n,
                n == 16 ? "trace" : "span");
  return 0;
}

static int lf_translate(json_t *o, json_t **out, msg_t *m, long item) {
  static const char *const types[] = {"NUMERIC", "numeric", "BOOLEAN", "boolean", "CATEGORICAL", "categorical", NULL};
  static const char *const sources[] = {"API", "api", "ANNOTATION", "human", "EVAL", "evaluator", NULL};
  *out = NULL;
  if (!json_is_object(o)) return fail(m, item, "expected a JSON object");
  int rc = lf_hex(o, "traceId", 16, m, item);
  if (!rc) rc = lf_hex(o, "observationId", 8, m, item);
  if (rc) return rc;
  json_t *t = json_object();
  if (!t) return LT_ENOMEM;
  for (size_t i = 0; rc == 0 && i < sizeof lf_renames / sizeof lf_renames[0]; i++) {
    json_t *v = json_object_get(o, lf_renames[i][0]);
    if (v && json_object_set(t, lf_renames[i][1], v)) rc = LT_ENOMEM;
  }
  if (!rc) rc = lf_enum(o, "dataType", types, "NUMERIC, BOOLEAN and CATEGORICAL scores", t, "data_type", m, item);
  if (!rc) rc = lf_enum(o, "source", sources, "API, ANNOTATION and EVAL", t, "source", m, item);
  if (rc) json_decref(t);
  else *out = t;
  return rc;
}

/* Records item i as refused: Langfuse's per-item error shapes. */
static int lf_refuse(job_t *j, json_t *event_id, const char *msg) {
  json_t *e;
  if (j->api_kind == API_LF_INGESTION)
    e = json_pack("{s:O,s:i,s:s,s:s}", "id", event_id ? event_id : json_null(), "status", 400, "message", msg, "error",
                  msg);
  else
    e = json_pack("{s:s}", "message", msg);
  return json_array_append_new(j->lf_errors, e) ? LT_ENOMEM : 0;
}

/* One score of a Langfuse request: translated, validated, queued in j (or
 * refused, in a list). ts is the ingestion event's timestamp, the score's
 * time when its body has none. Returns 0, LT_ENOMEM, or LT_EINVAL for a
 * single object that failed (m says why). */
static int lf_item(job_t *j, json_t *o, json_t *event_id, json_t *ts, long item, msg_t *m) {
  json_t *t;
  int rc = lf_translate(o, &t, m, item);
  if (rc == 0 && json_array_append_new(j->lf_items, t)) return LT_ENOMEM;
  if (rc == 0 && ts && !json_object_get(t, "time") && json_object_set(t, "time", ts)) return LT_ENOMEM;
  if (rc == 0) rc = parse_score(t, &j->scores[j->n], m, item);
  if (rc == 0) {
    j->n++;
    return event_id && json_array_append(j->lf_ids, event_id) ? LT_ENOMEM : 0;
  }
  if (rc == LT_ENOMEM || !j->batch) return rc;
  return lf_refuse(j, event_id, m->text);
}

/* POST /api/public/scores (ingestion false) and POST /api/public/ingestion:
 * Langfuse SDKs v3 and v4 send scores as `score-create` events there, in
 * {"batch":[{"id","type","timestamp","body"}]}. Other event types are the
 * pre-OpenTelemetry SDKs' traces: refused per event, saying what to use. */
static void lf_add(lt_req_t *r, lt_api_t *api, bool ingestion) {
  json_t *items;
  size_t n;
  job_t *j = add_job(r, true, ingestion ? "batch" : NULL, &items, &n);
  if (!j) return;
  j->api_kind = ingestion ? API_LF_INGESTION : API_LF_SCORES;
  j->lf_items = json_array();
  j->lf_errors = json_array();
  j->lf_ids = json_array();
  if (!j->lf_items || !j->lf_errors || !j->lf_ids) {
    job_free(j);
    lt_reply_error(r, 503, "overloaded", "out of memory");
    return;
  }
  msg_t m = {{0}};
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    json_t *o = j->batch ? json_array_get(items, i) : items;
    if (!ingestion) {
      rc = lf_item(j, o, NULL, NULL, j->batch ? (long)i : -1, &m);
      continue;
    }
    json_t *id = json_object_get(o, "id");
    const char *type = json_string_value(json_object_get(o, "type"));
    if (!json_is_object(o)) {
      fail(&m, (long)i, "expected an event object");
      rc = lf_refuse(j, NULL, m.text);
    } else if (!type || strcmp(type, "score-create")) {
      fail(&m, (long)i, "event type '%.40s' is not accepted here: Lanterna takes scores (score-create); send traces "
                        "over OpenTelemetry, as Langfuse SDKs v3 and later do", type ? type : "(none)");
      rc = lf_refuse(j, id, m.text);
    } else {
      rc = lf_item(j, json_object_get(o, "body"), id, json_object_get(o, "timestamp"), (long)i, &m);
    }
  }
  if (rc) {
    job_free(j);
    if (rc == LT_ENOMEM) lt_reply_error(r, 503, "overloaded", "out of memory");
    else lt_reply_error(r, 400, "bad_request", m.text);
    return;
  }
  run(r, api, j);
}

void lt_api_lf_scores(lt_req_t *r, void *ud) { lf_add(r, ud, false); }
void lt_api_lf_ingestion(lt_req_t *r, void *ud) { lf_add(r, ud, true); }

/* ---- GET /api/v1/scores ------------------------------------------------------ */

static int query_hex(lt_req_t *r, const char *name, uint8_t *out, size_t n, bool *has, msg_t *m) {
  const char *v = lt_req_query(r, name);
  *has = v != NULL;
  if (v && lt_hex_decode(out, n, v, strlen(v))) return fail(m, -1, "%s: expected %zu hexadecimal characters", name, 2 * n);
  return 0;
}

static int query_number(lt_req_t *r, const char *name, double *out, bool *has, msg_t *m) {
  const char *v = lt_req_query(r, name);
  *has = v != NULL;
  if (!v) return 0;
  char *end;
  errno = 0;
  *out = strtod(v, &end);
  if (!*v || *end || errno || !isfinite(*out)) return fail(m, -1, "%s: expected a number", name);
  return 0;
}

static int parse_list(lt_req_t *r, lt_score_query_t *q, msg_t *m) {
  lt_score_query_init(q, lt_req_project(r));
  const char *v;
  int rc = query_hex(r, "trace_id", q->trace_id, 16, &q->has_trace, m);
  if (!rc) rc = query_hex(r, "span_id", q->span_id, 8, &q->has_span, m);
  if (!rc) rc = query_number(r, "min_value", &q->min_value, &q->has_min, m);
  if (!rc) rc = query_number(r, "max_value", &q->max_value, &q->has_max, m);
  if (rc) return rc;
  q->session_id = lt_str_from(lt_req_query(r, "session_id"));
  q->name = lt_str_from(lt_req_query(r, "name"));
  q->cursor = lt_str_from(lt_req_query(r, "cursor"));
  if ((v = lt_req_query(r, "source"))) {
    if (!strcmp(v, "api")) q->source = LT_SCORE_API;
    else if (!strcmp(v, "human")) q->source = LT_SCORE_HUMAN;
    else if (!strcmp(v, "evaluator")) q->source = LT_SCORE_EVALUATOR;
    else return fail(m, -1, "source: expected api, human or evaluator");
  }
  if ((v = lt_req_query(r, "data_type"))) {
    if (!strcmp(v, "numeric")) q->data_type = LT_SCORE_NUMERIC;
    else if (!strcmp(v, "boolean")) q->data_type = LT_SCORE_BOOLEAN;
    else if (!strcmp(v, "categorical")) q->data_type = LT_SCORE_CATEGORICAL;
    else return fail(m, -1, "data_type: expected numeric, boolean or categorical");
  }
  if ((v = lt_req_query(r, "from")) && lt_parse_time(v, &q->from_ns))
    return fail(m, -1, "from: expected RFC 3339 time or nanoseconds");
  if ((v = lt_req_query(r, "to")) && lt_parse_time(v, &q->to_ns))
    return fail(m, -1, "to: expected RFC 3339 time or nanoseconds");
  if ((v = lt_req_query(r, "limit"))) {
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 1 || n > 1000) return fail(m, -1, "limit: expected an integer from 1 to 1000");
    q->limit = (int)n;
  }
  if (q->session_id.len > 1000 || q->name.len > 1000 || q->cursor.len > 200)
    return fail(m, -1, "a parameter is too long");
  return 0;
}

void lt_api_scores(lt_req_t *r, void *ud) {
  if (lt_req_method(r) == LT_POST) {
    add(r, ud, false);
    return;
  }
  job_t *j = new_job(r, OP_LIST);
  if (!j) return;
  msg_t m = {{0}};
  if (parse_list(r, &j->q, &m)) {
    job_free(j);
    lt_reply_error(r, 400, "bad_request", m.text);
    return;
  }
  run(r, ud, j);
}
