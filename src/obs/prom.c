/* The metrics registry and its text exposition. GenAI label sets live in
 * an append-only array indexed by an open-addressing hash table sized once
 * for the cap, so observing a span is a few string copies, one hash and a
 * probe, under one mutex taken once per batch. Entries are never removed
 * and their label strings never change, so a render copies the array under
 * the lock and formats the copy without it. */
#include "obs/prom.h"
#include "core/err.h"
#include "core/mem.h"
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

/* ---- histograms ---------------------------------------------------------- */

/* Upper bounds, inclusive (le). Times are in nanoseconds so placement is an
 * exact integer comparison, with no rounding at the boundaries. */
static const int64_t DUR_LE[] = {10000000LL,   20000000LL,   40000000LL,   80000000LL,   160000000LL,
                                 320000000LL,  640000000LL,  1280000000LL, 2560000000LL, 5120000000LL,
                                 10240000000LL, 20480000000LL, 40960000000LL, 81920000000LL};
static const int64_t TTFT_LE[] = {1000000LL,   5000000LL,   10000000LL,   20000000LL,  40000000LL,  60000000LL,
                                  80000000LL,  100000000LL, 250000000LL,  500000000LL, 750000000LL, 1000000000LL,
                                  2500000000LL, 5000000000LL, 7500000000LL, 10000000000LL};
static const int64_t TOK_LE[] = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                                 16777216, 67108864};
#define NB(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_BUCKETS 16

typedef struct {
  const int64_t *le;
  int n;
  bool nano; /* values are nanoseconds, shown as seconds */
} hist_spec_t;

static const hist_spec_t DUR_SPEC = {DUR_LE, (int)NB(DUR_LE), true};
static const hist_spec_t TTFT_SPEC = {TTFT_LE, (int)NB(TTFT_LE), true};
static const hist_spec_t TOK_SPEC = {TOK_LE, (int)NB(TOK_LE), false};

typedef struct {
  uint64_t b[MAX_BUCKETS + 1]; /* per bucket, not cumulative; [n] is +Inf */
  uint64_t count;
  int64_t sum;                 /* saturating */
} hist_t;

static void hist_add(hist_t *h, const hist_spec_t *sp, int64_t v) {
  int i = 0;
  while (i < sp->n && v > sp->le[i]) i++;
  h->b[i]++;
  h->count++;
  h->sum = v > INT64_MAX - h->sum ? INT64_MAX : h->sum + v;
}

/* ---- the registry ---------------------------------------------------------- */

/* Token types exposed, in gen_ai_token_type order. cache_read is part of
 * input and reasoning part of output, as the sources report them. */
static const lt_tok_t TOK_TYPES[] = {LT_TOK_INPUT, LT_TOK_OUTPUT, LT_TOK_CACHE_READ, LT_TOK_REASONING};
static const char *const TOK_NAMES[] = {"input", "output", "cache_read", "reasoning"};
#define N_TOK ((int)NB(TOK_TYPES))

typedef struct {
  int64_t project;  /* 0: folded into "__other__" */
  char *provider, *model, *operation; /* sanitised and cut; owned */
  uint8_t status;
  uint64_t hash;
  uint64_t spans, priced, unpriced;
  int64_t cost_nusd; /* saturating */
  hist_t duration, ttft, tokens[N_TOK];
} entry_t;

struct lt_prom {
  pthread_mutex_t mu;
  size_t max_series, max_entries;
  entry_t *entries;
  size_t n, cap;
  uint32_t *slots; /* entry index + 1, 0 = empty; size is a power of two */
  size_t nslots;
  uint64_t spans_accepted, spans_duplicate, logs_accepted, points_accepted, label_overflow;
  int64_t start_unix_ns;
};

lt_prom_t *lt_prom_new(size_t max_series) {
  lt_prom_t *p = lt_calloc(1, sizeof *p);
  if (!p) return NULL;
  p->max_series = max_series ? max_series : LT_PROM_MAX_SERIES;
  /* Folded sets need room of their own: model and operation fold first,
   * within this reserve; past it every label but status folds (3 sets). */
  p->max_entries = p->max_series + p->max_series / 8 + 8 + 3;
  p->nslots = 16;
  while (p->nslots < 2 * p->max_entries) p->nslots *= 2;
  p->slots = lt_calloc(p->nslots, sizeof *p->slots);
  if (!p->slots) {
    lt_free(p);
    return NULL;
  }
  pthread_mutex_init(&p->mu, NULL);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  p->start_unix_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  return p;
}

void lt_prom_free(lt_prom_t *p) {
  if (!p) return;
  for (size_t i = 0; i < p->n; i++) {
    lt_free(p->entries[i].provider);
    lt_free(p->entries[i].model);
    lt_free(p->entries[i].operation);
  }
  lt_free(p->entries);
  lt_free(p->slots);
  pthread_mutex_destroy(&p->mu);
  lt_free(p);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F; /* no surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else return 0;
  if (n < len || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return len;
}

/* Copies at most LT_PROM_LABEL_MAX bytes of v into out (NUL-terminated),
 * whole characters only; invalid bytes and NUL become U+FFFD so the value
 * is valid UTF-8 and a C string. Returns the length. */
static size_t sanitize(char out[LT_PROM_LABEL_MAX + 1], lt_str_t v) {
  static const char repl[] = "\xEF\xBF\xBD";
  const unsigned char *s = (const unsigned char *)v.ptr;
  size_t o = 0;
  for (size_t i = 0; i < v.len;) {
    size_t k = utf8_seq(s + i, v.len - i);
    const char *src = (const char *)s + i;
    size_t w = k;
    if (k == 0 || s[i] == 0) {
      src = repl;
      w = 3;
      k = 1;
    }
    if (o + w > LT_PROM_LABEL_MAX) break;
    memcpy(out + o, src, w);
    o += w;
    i += k;
  }
  out[o] = '\0';
  return o;
}

typedef struct {
  int64_t project;
  const char *provider, *model, *operation;
  uint8_t status;
} pkey_t;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
  return h;
}

static uint64_t key_hash(const pkey_t *k) {
  uint64_t h = 0xcbf29ce484222325ull;
  h = fnv(h, &k->project, sizeof k->project);
  h = fnv(h, &k->status, 1);
  /* The terminating NUL separates the strings: ("ab","c") != ("a","bc"). */
  h = fnv(h, k->provider, strlen(k->provider) + 1);
  h = fnv(h, k->model, strlen(k->model) + 1);
  return fnv(h, k->operation, strlen(k->operation) + 1);
}

/* The entry for k, or NULL; *slot is where k is or would go. */
static entry_t *find(lt_prom_t *p, const pkey_t *k, uint64_t h, size_t *slot) {
  size_t mask = p->nslots - 1;
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
    uint32_t s = p->slots[i];
    if (!s) {
      *slot = i;
      return NULL;
    }
    entry_t *e = &p->entries[s - 1];
    if (e->hash == h && e->project == k->project && e->status == k->status && !strcmp(e->provider, k->provider) &&
        !strcmp(e->model, k->model) && !strcmp(e->operation, k->operation))
      return e;
  }
}

static entry_t *insert(lt_prom_t *p, const pkey_t *k, uint64_t h, size_t slot) {
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 64;
    if (cap > p->max_entries) cap = p->max_entries;
    entry_t *e = lt_realloc(p->entries, cap * sizeof *e);
    if (!e) return NULL;
    p->entries = e;
    p->cap = cap;
  }
  entry_t *e = &p->entries[p->n];
  memset(e, 0, sizeof *e);
  e->provider = lt_strdup(k->provider);
  e->model = lt_strdup(k->model);
  e->operation = lt_strdup(k->operation);
  if (!e->provider || !e->model || !e->operation) {
    lt_free(e->provider);
    lt_free(e->model);
    lt_free(e->operation);
    return NULL;
  }
  e->project = k->project;
  e->status = k->status;
  e->hash = h;
  p->slots[slot] = (uint32_t)++p->n;
  return e;
}

/* The entry spans with labels k count into, folding past the cap. NULL
 * only when out of memory (the span is then not counted). */
static entry_t *lookup(lt_prom_t *p, pkey_t *k) {
  size_t slot;
  uint64_t h = key_hash(k);
  entry_t *e = find(p, k, h, &slot);
  if (e) return e;
  if (p->n < p->max_series) return insert(p, k, h, slot);
  p->label_overflow++;
  k->model = k->operation = LT_PROM_OTHER;
  h = key_hash(k);
  if ((e = find(p, k, h, &slot))) return e;
  if (p->n < p->max_entries - 3) return insert(p, k, h, slot);
  /* The reserve is used up too: keep only the status (at most 3 sets). */
  k->project = 0;
  k->provider = LT_PROM_OTHER;
  h = key_hash(k);
  if ((e = find(p, k, h, &slot))) return e;
  return insert(p, k, h, slot);
}

static void observe_span(lt_prom_t *p, int64_t project, const lt_span_t *s) {
  char prov[LT_PROM_LABEL_MAX + 1], model[LT_PROM_LABEL_MAX + 1], op[LT_PROM_LABEL_MAX + 1];
  sanitize(prov, s->provider);
  sanitize(model, s->request_model.len ? s->request_model : s->response_model);
  sanitize(op, s->operation);
  uint8_t status = s->status == LT_STATUS_OK || s->status == LT_STATUS_ERROR ? (uint8_t)s->status : LT_STATUS_UNSET;
  pkey_t k = {project, prov, model, op, status};
  entry_t *e = lookup(p, &k);
  if (!e) return;
  e->spans++;
  if (s->start_ns >= 0 && s->end_ns >= s->start_ns) hist_add(&e->duration, &DUR_SPEC, s->end_ns - s->start_ns);
  if (s->ttft_ns >= 0) hist_add(&e->ttft, &TTFT_SPEC, s->ttft_ns);
  for (int t = 0; t < N_TOK; t++)
    if (s->tokens[TOK_TYPES[t]] >= 0) hist_add(&e->tokens[t], &TOK_SPEC, s->tokens[TOK_TYPES[t]]);
  /* A partial report (say, only the prompt's cost) leaves the total
   * unknown: that span is unpriced, not free. */
  if (lt_span_has_cost(s) && s->cost_total >= 0) {
    e->priced++;
    e->cost_nusd = s->cost_total > INT64_MAX - e->cost_nusd ? INT64_MAX : e->cost_nusd + s->cost_total;
  } else {
    e->unpriced++;
  }
}

void lt_prom_observe_batch(const lt_batch_t *b, void *ud) {
  lt_prom_t *p = ud;
  pthread_mutex_lock(&p->mu);
  p->logs_accepted += b->n_logs;
  p->points_accepted += b->n_points;
  p->spans_accepted += b->n_spans;
  /* Without per-span flags only an all-new batch can be attributed. */
  bool known = b->span_new || b->n_inserted == b->n_spans;
  if (b->span_new) {
    for (size_t i = 0; i < b->n_spans; i++) p->spans_duplicate += !b->span_new[i];
  } else {
    p->spans_duplicate += b->n_spans - (b->n_inserted < b->n_spans ? b->n_inserted : b->n_spans);
  }
  for (size_t i = 0; known && i < b->n_spans; i++) {
    const lt_span_t *s = &b->spans[i];
    if (b->span_new && !b->span_new[i]) continue;
    if (s->kind != LT_KIND_LLM && s->kind != LT_KIND_EMBEDDING) continue;
    /* Wrappers summarise their children, which are counted themselves. */
    if (s->usage_rollup || s->cost_source == LT_COST_NONE) continue;
    observe_span(p, b->project_id, s);
  }
  pthread_mutex_unlock(&p->mu);
}

/* ---- rendering ------------------------------------------------------------------ */

typedef struct {
  lt_buf_t *b;
  int rc;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
  if (!o->rc) o->rc = lt_buf_append(o->b, s, n);
}
static void puts_(out_t *o, const char *s) { put(o, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void putf(out_t *o, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof tmp) {
    if (!o->rc) o->rc = LT_EINVAL;
    return;
  }
  put(o, tmp, (size_t)n);
}

/* v × 1e-9 exactly, without trailing zeros: "0.01", "81.92", "3". */
static void put_nano(out_t *o, int64_t v) {
  char frac[16];
  uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  snprintf(frac, sizeof frac, "%09" PRIu64, a % 1000000000u);
  int n = 9;
  while (n > 0 && frac[n - 1] == '0') n--;
  frac[n] = '\0';
  putf(o, "%s%" PRIu64 "%s%s", v < 0 ? "-" : "", a / 1000000000u, n ? "." : "", frac);
}

static void put_value(out_t *o, const hist_spec_t *sp, int64_t v) {
  if (sp->nano) put_nano(o, v);
  else putf(o, "%" PRId64, v);
}

int lt_prom_label_value(lt_buf_t *b, lt_str_t v) {
  char s[LT_PROM_LABEL_MAX + 1];
  size_t n = sanitize(s, v);
  char esc[2 * LT_PROM_LABEL_MAX + 1];
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\\' || s[i] == '"') {
      esc[m++] = '\\';
      esc[m++] = s[i];
    } else if (s[i] == '\n') {
      esc[m++] = '\\';
      esc[m++] = 'n';
    } else esc[m++] = s[i];
  }
  return lt_buf_append(b, esc, m);
}

static void put_label(out_t *o, const char *name, const char *value, bool comma) {
  if (comma) put(o, ",", 1);
  puts_(o, name);
  put(o, "=\"", 2);
  if (!o->rc) o->rc = lt_prom_label_value(o->b, lt_str_from(value));
  put(o, "\"", 1);
}

static void family(out_t *o, const char *name, const char *type, const char *help) {
  putf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram series; labels is the rendered label list (no braces). */
static void put_hist(out_t *o, const char *name, const char *labels, const hist_spec_t *sp, const hist_t *h) {
  uint64_t cum = 0;
  for (int i = 0; i <= sp->n; i++) {
    cum += h->b[i];
    putf(o, "%s_bucket{", name);
    puts_(o, labels);
    put(o, ",le=\"", 5);
    if (i < sp->n) put_value(o, sp, sp->le[i]);
    else put(o, "+Inf", 4);
    putf(o, "\"} %" PRIu64 "\n", cum);
  }
  putf(o, "%s_sum{", name);
  puts_(o, labels);
  put(o, "} ", 2);
  put_value(o, sp, h->sum);
  putf(o, "\n%s_count{", name);
  puts_(o, labels);
  putf(o, "} %" PRIu64 "\n", h->count);
}

static void put_sample(out_t *o, const char *name, const char *labels, uint64_t v) {
  puts_(o, name);
  if (labels) {
    put(o, "{", 1);
    puts_(o, labels);
    put(o, "}", 1);
  }
  putf(o, " %" PRIu64 "\n", v);
}

static const char *project_name(const json_t *projects, int64_t id) {
  size_t i;
  json_t *row;
  if (!json_is_array(projects)) return NULL;
  json_array_foreach((json_t *)projects, i, row) {
    if (json_integer_value(json_object_get(row, "id")) == id) return json_string_value(json_object_get(row, "name"));
  }
  return NULL;
}

static bool shown(const lt_prom_render_opts_t *o, const entry_t *e) {
  return o->only_project <= 0 || e->project == o->only_project;
}

static const char *const STATUS_NAMES[] = {"unset", "ok", "error"};

/* The label list of every entry, NUL-separated in one buffer. */
static int entry_labels(const entry_t *es, size_t n, const json_t *projects, lt_buf_t *lb, size_t *off) {
  out_t o = {lb, 0};
  for (size_t i = 0; i < n && !o.rc; i++) {
    const entry_t *e = &es[i];
    off[i] = lb->len;
    char idbuf[24];
    const char *pname = e->project ? project_name(projects, e->project) : LT_PROM_OTHER;
    if (!pname) {
      snprintf(idbuf, sizeof idbuf, "%" PRId64, e->project);
      pname = idbuf;
    }
    put_label(&o, "project", pname, false);
    put_label(&o, "gen_ai_provider_name", e->provider, true);
    put_label(&o, "gen_ai_request_model", e->model, true);
    put_label(&o, "gen_ai_operation_name", e->operation, true);
    put_label(&o, "status", STATUS_NAMES[e->status], true);
    put(&o, "", 1);
  }
  return o.rc;
}

int lt_prom_render(lt_prom_t *p, const lt_prom_render_opts_t *opt, lt_buf_t *buf) {
  pthread_mutex_lock(&p->mu);
  size_t n = p->n;
  entry_t *es = n ? lt_malloc(n * sizeof *es) : NULL;
  if (es) memcpy(es, p->entries, n * sizeof *es);
  uint64_t accepted = p->spans_accepted, dup = p->spans_duplicate, logs = p->logs_accepted,
           points = p->points_accepted, overflow = p->label_overflow;
  int64_t start_ns = p->start_unix_ns;
  pthread_mutex_unlock(&p->mu);
  if (n && !es) return LT_ENOMEM;

  lt_buf_t lb;
  lt_buf_init(&lb, (size_t)1 << 30);
  size_t *off = lt_calloc(n ? n : 1, sizeof *off);
  int rc = off ? entry_labels(es, n, opt->projects, &lb, off) : LT_ENOMEM;
  if (rc) n = 0; /* no GenAI series rather than wrong ones */
  out_t o = {buf, rc};
  char lab[LT_PROM_LABEL_MAX * 12 + 512];

  family(&o, "gen_ai_client_token_usage", "histogram",
         "Tokens per GenAI operation by token type (cache_read is part of input, reasoning part of output).");
  for (size_t i = 0; i < n; i++) {
    if (!shown(opt, &es[i])) continue;
    for (int t = 0; t < N_TOK; t++) {
      if (!es[i].tokens[t].count) continue;
      snprintf(lab, sizeof lab, "%s,gen_ai_token_type=\"%s\"", lb.ptr + off[i], TOK_NAMES[t]);
      put_hist(&o, "gen_ai_client_token_usage", lab, &TOK_SPEC, &es[i].tokens[t]);
    }
  }
  family(&o, "gen_ai_client_operation_duration_seconds", "histogram",
         "Duration of GenAI operations (LLM and embedding spans).");
  for (size_t i = 0; i < n; i++)
    if (shown(opt, &es[i]) && es[i].duration.count)
      put_hist(&o, "gen_ai_client_operation_duration_seconds", lb.ptr + off[i], &DUR_SPEC, &es[i].duration);
  family(&o, "gen_ai_server_time_to_first_token_seconds", "histogram",
         "Time to the first output token of streamed GenAI responses.");
  for (size_t i = 0; i < n; i++)
    if (shown(opt, &es[i]) && es[i].ttft.count)
      put_hist(&o, "gen_ai_server_time_to_first_token_seconds", lb.ptr + off[i], &TTFT_SPEC, &es[i].ttft);
  family(&o, "lanterna_llm_spans_total", "counter",
         "LLM and embedding spans stored (wrappers and duplicates excluded).");
  for (size_t i = 0; i < n; i++)
    if (shown(opt, &es[i])) put_sample(&o, "lanterna_llm_spans_total", lb.ptr + off[i], es[i].spans);
  family(&o, "lanterna_cost_usd_total", "counter",
         "Cost in US dollars of the spans that carry one (reported or computed).");
  for (size_t i = 0; i < n; i++) {
    if (!shown(opt, &es[i]) || !es[i].priced) continue;
    puts_(&o, "lanterna_cost_usd_total{");
    puts_(&o, lb.ptr + off[i]);
    put(&o, "} ", 2);
    put_nano(&o, es[i].cost_nusd);
    put(&o, "\n", 1);
  }
  family(&o, "lanterna_unpriced_spans_total", "counter", "LLM and embedding spans stored without a known cost.");
  for (size_t i = 0; i < n; i++)
    if (shown(opt, &es[i])) put_sample(&o, "lanterna_unpriced_spans_total", lb.ptr + off[i], es[i].unpriced);
  family(&o, "lanterna_metrics_label_overflow_total", "counter",
         "Spans whose model and operation labels were folded into __other__ (label-set cap reached).");
  put_sample(&o, "lanterna_metrics_label_overflow_total", NULL, overflow);

  family(&o, "lanterna_spans_accepted_total", "counter", "Spans in committed writes, duplicates included.");
  put_sample(&o, "lanterna_spans_accepted_total", NULL, accepted);
  family(&o, "lanterna_spans_duplicate_total", "counter", "Spans received again (retries) and not stored twice.");
  put_sample(&o, "lanterna_spans_duplicate_total", NULL, dup);
  family(&o, "lanterna_log_records_accepted_total", "counter", "Log records in committed writes.");
  put_sample(&o, "lanterna_log_records_accepted_total", NULL, logs);
  family(&o, "lanterna_metric_points_accepted_total", "counter", "Metric data points in committed writes.");
  put_sample(&o, "lanterna_metric_points_accepted_total", NULL, points);

  const lt_writer_stats_t *w = opt->writer;
  if (w) {
    family(&o, "lanterna_write_queue_records", "gauge", "Records waiting in the write queue.");
    put_sample(&o, "lanterna_write_queue_records", NULL, w->queue_records);
    family(&o, "lanterna_write_queue_bytes", "gauge", "Memory held by the write queue.");
    put_sample(&o, "lanterna_write_queue_bytes", NULL, w->queue_bytes);
    family(&o, "lanterna_write_queue_rejected_total", "counter",
           "Ingest requests refused with 503 because the write queue was full.");
    put_sample(&o, "lanterna_write_queue_rejected_total", NULL, w->rejected_full);
    family(&o, "lanterna_commits_total", "counter", "Write transactions (group commits), failed ones included.");
    put_sample(&o, "lanterna_commits_total", NULL, w->commits);
    family(&o, "lanterna_commit_failures_total", "counter", "Write transactions that failed (their requests got an error).");
    put_sample(&o, "lanterna_commit_failures_total", NULL, w->failed_commits);
    family(&o, "lanterna_disk_full", "gauge",
           "1 while the disk holding the data is full (commits refused, ingest answered 503), else 0.");
    put_sample(&o, "lanterna_disk_full", NULL, w->disk_full ? 1 : 0);
    family(&o, "lanterna_disk_full_refused_total", "counter", "Write transactions refused for want of disk space.");
    put_sample(&o, "lanterna_disk_full_refused_total", NULL, w->disk_full_refused);
    family(&o, "lanterna_commit_seconds", "summary", "Time spent in write transactions, commit and fsync included.");
    puts_(&o, "lanterna_commit_seconds_sum ");
    put_nano(&o, w->commit_ns_total > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)w->commit_ns_total);
    putf(&o, "\nlanterna_commit_seconds_count %" PRIu64 "\n", w->commits);
    family(&o, "lanterna_commit_max_seconds", "gauge", "Longest write transaction since start.");
    puts_(&o, "lanterna_commit_max_seconds ");
    put_nano(&o, w->commit_ns_max > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)w->commit_ns_max);
    put(&o, "\n", 1);
  }
  const lt_proxy_stats_t *px = opt->proxy;
  if (px) {
    static const struct {
      const char *name, *help;
      size_t off;
    } pm[] = {
      {"lanterna_proxy_calls_total", "Calls received by the logging proxy.", offsetof(lt_proxy_stats_t, calls)},
      {"lanterna_proxy_errors_total", "Proxied calls that ended in an error (HTTP >= 400 or a failed transfer).",
       offsetof(lt_proxy_stats_t, errors)},
      {"lanterna_proxy_upstream_failures_total", "Upstream transfers that failed (connect, TLS, timeout...).",
       offsetof(lt_proxy_stats_t, upstream_failures)},
      {"lanterna_proxy_client_aborts_total", "Proxied calls whose client went away before the end.",
       offsetof(lt_proxy_stats_t, client_aborts)},
      {"lanterna_proxy_cache_hits_total", "Proxied calls answered from the response cache.",
       offsetof(lt_proxy_stats_t, cache_hits)},
      {"lanterna_proxy_rate_limited_total", "Proxied calls refused by a rate limit or budget.",
       offsetof(lt_proxy_stats_t, limited)},
      {"lanterna_proxy_retries_total", "Upstream retries made by the proxy.", offsetof(lt_proxy_stats_t, retries)},
      {"lanterna_proxy_fallbacks_total", "Proxied calls sent to a fallback upstream.",
       offsetof(lt_proxy_stats_t, fallbacks)},
      {"lanterna_proxy_spans_lost_total", "Proxied calls whose span could not be stored.",
       offsetof(lt_proxy_stats_t, spans_lost)},
    };
    for (size_t i = 0; i < sizeof pm / sizeof pm[0]; i++) {
      uint64_t v;
      memcpy(&v, (const char *)px + pm[i].off, sizeof v);
      family(&o, pm[i].name, "counter", pm[i].help);
      putf(&o, "%s %" PRIu64 "\n", pm[i].name, v);
    }
  }
  const lt_store_stats_t *st = opt->store;
  if (st) {
    family(&o, "lanterna_db_size_bytes", "gauge", "Size of the database files on disk.");
    putf(&o, "lanterna_db_size_bytes %" PRId64 "\n", st->db_bytes);
    family(&o, "lanterna_spans_stored", "gauge", "Spans in the store.");
    putf(&o, "lanterna_spans_stored %" PRId64 "\n", st->spans);
    family(&o, "lanterna_traces_stored", "gauge", "Traces in the store.");
    putf(&o, "lanterna_traces_stored %" PRId64 "\n", st->traces);
    family(&o, "lanterna_log_records_stored", "gauge", "Log records in the store.");
    putf(&o, "lanterna_log_records_stored %" PRId64 "\n", st->logs);
    family(&o, "lanterna_metric_points_stored", "gauge", "Metric data points in the store.");
    putf(&o, "lanterna_metric_points_stored %" PRId64 "\n", st->points);
    family(&o, "lanterna_fts_lag_spans", "gauge", "Stored spans not yet in the full-text index.");
    putf(&o, "lanterna_fts_lag_spans %" PRId64 "\n", st->fts_lag);
    family(&o, "lanterna_keys_lag_traces", "gauge",
           "Stored traces not yet in the session, user and model keys (lookups read them directly).");
    putf(&o, "lanterna_keys_lag_traces %" PRId64 "\n", st->keys_lag);
  }
  if (opt->version) {
    family(&o, "lanterna_build_info", "gauge", "Always 1; the version is a label.");
    put(&o, "lanterna_build_info{", 20);
    put_label(&o, "version", opt->version, false);
    put(&o, "} 1\n", 4);
  }
  family(&o, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.");
  puts_(&o, "process_start_time_seconds ");
  put_nano(&o, start_ns);
  put(&o, "\n", 1);

  lt_buf_free(&lb);
  lt_free(off);
  lt_free(es);
  return o.rc;
}
