/* Price table: JSON loading with field-by-field validation, override
 * merging, glob lookup and integer cost computation (see prices.h and
 * docs/prices.md). Entries are kept in file order in one array; a lookup
 * is a linear scan that keeps the best-ranked match. A few hundred entries
 * scan in microseconds, and the scan happens once per span, so no index. */
#include "model/prices.h"
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include "core/err.h"
#include "core/mem.h"

/* Guards against absurd input: over 10^4 USD per million tokens is a typo,
 * and no single span has more than 10^9 tokens of one kind. They also keep
 * every product in price_tokens well inside int64. */
#define MAX_USD_PER_M 10000.0
#define MAX_TOKENS 1000000000LL
#define NUSD_PER_USD 1000000000.0
#define MAX_GLOBS 64

typedef struct {
  lt_price_t price;
  char **globs;
  size_t nglobs;
  int layer; /* 0 for the first file, +1 per merged override */
} entry_t;

struct lt_prices {
  entry_t *v;
  size_t n, cap;
  int top_layer;
  uint64_t id; /* unique per table and per merge: keys the lookup memo */
};

/* Table ids: a memo entry never outlives the identity of its table, even
 * when a freed table's address is reused. */
static atomic_uint_fast64_t next_id = 1;

static void entry_clear(entry_t *e) {
  for (size_t i = 0; i < e->nglobs; i++) lt_free(e->globs[i]);
  lt_free(e->globs);
  lt_free((char *)e->price.provider);
  memset(e, 0, sizeof *e);
}

void lt_prices_free(lt_prices_t *t) {
  if (!t) return;
  for (size_t i = 0; i < t->n; i++) entry_clear(&t->v[i]);
  lt_free(t->v);
  lt_free(t);
}

size_t lt_prices_count(const lt_prices_t *t) { return t ? t->n : 0; }

static int reserve(lt_prices_t *t, size_t extra) {
  if (t->n + extra <= t->cap) return 0;
  size_t cap = t->cap ? t->cap : 64;
  while (cap < t->n + extra) cap *= 2;
  entry_t *v = lt_realloc(t->v, cap * sizeof *v);
  if (!v) return LT_ENOMEM;
  t->v = v;
  t->cap = cap;
  return 0;
}

/* ---- parsing ------------------------------------------------------------------ */

typedef struct {
  const char *origin;
  char *err;
  size_t errlen;
  size_t index;      /* entry being parsed, 0-based */
  const char *label; /* its first glob, when known */
} ctx_t;

static int fail(ctx_t *c, const char *field, const char *fmt, ...) {
  if (c->err && c->errlen) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (field && c->label)
      snprintf(c->err, c->errlen, "%s: models[%zu] (\"%s\"): field \"%s\": %s", c->origin, c->index,
               c->label, field, what);
    else if (field)
      snprintf(c->err, c->errlen, "%s: models[%zu]: field \"%s\": %s", c->origin, c->index, field, what);
    else
      snprintf(c->err, c->errlen, "%s: %s", c->origin, what);
  }
  return LT_ECONFIG;
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Days since 1970-01-01 of a proleptic Gregorian date, by counting whole
 * 400-year eras (146097 days each) from a March-based year so that the
 * leap day falls at the end of the counted year. */
static int64_t days_since_epoch(int y, int m, int d) {
  if (m <= 2) y -= 1;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t mp = m > 2 ? m - 3 : m + 9;
  int64_t doy = (153 * mp + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DD" (UTC midnight) to Unix ns; false when not a real date. */
static bool parse_date(const char *s, int64_t *ns) {
  static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return false;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return false;
  int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  int m = (s[5] - '0') * 10 + (s[6] - '0');
  int d = (s[8] - '0') * 10 + (s[9] - '0');
  if (y < 1970 || y > 2200 || m < 1 || m > 12 || d < 1) return false;
  if (d > mdays[m - 1] + (m == 2 && leap(y))) return false;
  *ns = days_since_epoch(y, m, d) * 86400LL * 1000000000LL;
  return true;
}

/* A USD-per-million rate to nano-dollars per million, rounded once here so
 * that everything after is integer. */
static int get_rate(ctx_t *c, json_t *obj, const char *field, bool required, lt_nusd_t *out,
                    bool *present) {
  json_t *v = json_object_get(obj, field);
  if (present) *present = v != NULL;
  if (!v) return required ? fail(c, field, "missing (USD per million tokens)") : 0;
  if (!json_is_number(v)) return fail(c, field, "must be a number (USD per million tokens)");
  double usd = json_number_value(v);
  if (!isfinite(usd) || usd < 0 || usd > MAX_USD_PER_M)
    return fail(c, field, "%g is out of range (0 to %g USD per million tokens)", usd, MAX_USD_PER_M);
  *out = (lt_nusd_t)llround(usd * NUSD_PER_USD);
  return 0;
}

static int add_glob(ctx_t *c, entry_t *e, json_t *v) {
  if (!json_is_string(v) || json_string_length(v) == 0)
    return fail(c, "match", "globs must be non-empty strings");
  if (e->nglobs == MAX_GLOBS) return fail(c, "match", "more than %d globs", MAX_GLOBS);
  if (strlen(json_string_value(v)) != json_string_length(v))
    return fail(c, "match", "glob contains a NUL byte");
  char *g = lt_strdup(json_string_value(v));
  if (!g) return LT_ENOMEM;
  e->globs[e->nglobs++] = g;
  return 0;
}

static const char *const known_fields[] = {
    "match", "provider", "effective_from", "input", "output", "cache_read", "cache_write",
    "reasoning", "input_includes_cache_read", "note", NULL};

static int parse_entry(ctx_t *c, json_t *obj, entry_t *e) {
  int rc = LT_ECONFIG;
  memset(e, 0, sizeof *e);
  c->label = NULL;
  if (!json_is_object(obj)) {
    rc = fail(c, NULL, "models[%zu]: must be an object", c->index);
    goto out;
  }
  json_t *m = json_object_get(obj, "match");
  if (!m) {
    rc = fail(c, "match", "missing (a model-name glob or a list of them)");
    goto out;
  }
  if (json_is_array(m) && json_array_size(m) == 0) {
    rc = fail(c, "match", "empty list");
    goto out;
  }
  e->globs = lt_calloc(MAX_GLOBS, sizeof *e->globs);
  if (!e->globs) {
    rc = LT_ENOMEM;
    goto out;
  }
  if (json_is_array(m)) {
    size_t i;
    json_t *g;
    json_array_foreach(m, i, g) {
      if ((rc = add_glob(c, e, g)) != 0) goto out;
    }
  } else if ((rc = add_glob(c, e, m)) != 0) {
    goto out;
  }
  c->label = e->globs[0];
  e->price.match = e->globs[0];

  const char *key;
  json_t *val;
  json_object_foreach(obj, key, val) {
    bool known = false;
    for (size_t i = 0; known_fields[i] && !known; i++) known = strcmp(key, known_fields[i]) == 0;
    if (!known) {
      rc = fail(c, key, "unknown field (a typo?)");
      goto out;
    }
  }

  json_t *p = json_object_get(obj, "provider");
  if (p) {
    if (!json_is_string(p) || json_string_length(p) == 0) {
      rc = fail(c, "provider", "must be a non-empty string");
      goto out;
    }
    if (!(e->price.provider = lt_strdup(json_string_value(p)))) {
      rc = LT_ENOMEM;
      goto out;
    }
  }

  e->price.effective_from_ns = INT64_MIN;
  json_t *d = json_object_get(obj, "effective_from");
  if (d && (!json_is_string(d) || !parse_date(json_string_value(d), &e->price.effective_from_ns))) {
    rc = fail(c, "effective_from", "must be a date \"YYYY-MM-DD\"");
    goto out;
  }

  bool has_cr, has_cw, has_rs;
  if ((rc = get_rate(c, obj, "input", true, &e->price.input, NULL)) != 0) goto out;
  if ((rc = get_rate(c, obj, "output", true, &e->price.output, NULL)) != 0) goto out;
  if ((rc = get_rate(c, obj, "cache_read", false, &e->price.cache_read, &has_cr)) != 0) goto out;
  if ((rc = get_rate(c, obj, "cache_write", false, &e->price.cache_write, &has_cw)) != 0) goto out;
  if ((rc = get_rate(c, obj, "reasoning", false, &e->price.reasoning, &has_rs)) != 0) goto out;
  /* A provider without a cache discount bills cached tokens as plain input;
   * reasoning tokens are output tokens unless the file says otherwise. */
  if (!has_cr) e->price.cache_read = e->price.input;
  if (!has_cw) e->price.cache_write = e->price.input;
  if (!has_rs) e->price.reasoning = e->price.output;

  json_t *inc = json_object_get(obj, "input_includes_cache_read");
  if (inc && !json_is_boolean(inc)) {
    rc = fail(c, "input_includes_cache_read", "must be true or false");
    goto out;
  }
  e->price.input_includes_cache_read = inc && json_is_true(inc);

  json_t *note = json_object_get(obj, "note");
  if (note && !json_is_string(note)) {
    rc = fail(c, "note", "must be a string");
    goto out;
  }
  rc = 0;
out:
  if (rc != 0) entry_clear(e);
  return rc;
}

int lt_prices_load(const char *json, size_t len, const char *origin, lt_prices_t **out, char *err,
                   size_t errlen) {
  int rc = LT_ECONFIG;
  ctx_t c = {origin ? origin : "prices", err, errlen, 0, NULL};
  lt_prices_t *t = NULL;
  json_error_t jerr;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  *out = NULL;
  if (err && errlen) err[0] = '\0';
  if (!root) {
    rc = fail(&c, NULL, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    goto out;
  }
  if (!json_is_object(root)) {
    rc = fail(&c, NULL, "the top level must be an object {\"version\": 1, \"models\": [...]}");
    goto out;
  }
  json_t *ver = json_object_get(root, "version");
  if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
    rc = fail(&c, NULL, "field \"version\": must be 1");
    goto out;
  }
  json_t *models = json_object_get(root, "models");
  if (!json_is_array(models)) {
    rc = fail(&c, NULL, "field \"models\": must be an array of price entries");
    goto out;
  }
  if (!(t = lt_calloc(1, sizeof *t))) {
    rc = LT_ENOMEM;
    goto out;
  }
  t->id = atomic_fetch_add(&next_id, 1);
  if ((rc = reserve(t, json_array_size(models))) != 0) goto out;
  size_t i;
  json_t *m;
  json_array_foreach(models, i, m) {
    c.index = i;
    if ((rc = parse_entry(&c, m, &t->v[t->n])) != 0) goto out;
    t->n++;
  }
  *out = t;
  t = NULL;
  rc = 0;
out:
  if (rc == LT_ENOMEM && err && errlen) snprintf(err, errlen, "%s: out of memory", c.origin);
  lt_prices_free(t);
  json_decref(root);
  return rc;
}

/* ---- merging ------------------------------------------------------------------ */

static int entry_copy(entry_t *dst, const entry_t *src) {
  int rc = LT_ENOMEM;
  *dst = *src;
  dst->globs = NULL;
  dst->nglobs = 0;
  dst->price.provider = NULL;
  if (!(dst->globs = lt_calloc(src->nglobs, sizeof *dst->globs))) goto out;
  for (; dst->nglobs < src->nglobs; dst->nglobs++)
    if (!(dst->globs[dst->nglobs] = lt_strdup(src->globs[dst->nglobs]))) goto out;
  dst->price.match = dst->globs[0];
  if (src->price.provider && !(dst->price.provider = lt_strdup(src->price.provider))) goto out;
  rc = 0;
out:
  if (rc != 0) entry_clear(dst);
  return rc;
}

int lt_prices_merge(lt_prices_t *base, const lt_prices_t *over) {
  int rc = LT_ENOMEM;
  size_t n0 = base->n, k = 0;
  int shift = base->top_layer + 1, top = base->top_layer;
  if ((rc = reserve(base, over->n)) != 0) goto out;
  for (; k < over->n; k++) {
    if ((rc = entry_copy(&base->v[n0 + k], &over->v[k])) != 0) goto out;
    base->v[n0 + k].layer += shift;
    if (base->v[n0 + k].layer > top) top = base->v[n0 + k].layer;
  }
  base->n = n0 + k;
  base->top_layer = top;
  base->id = atomic_fetch_add(&next_id, 1);
  rc = 0;
out:
  if (rc != 0)
    for (size_t i = 0; i < k; i++) entry_clear(&base->v[n0 + i]);
  return rc;
}

/* ---- lookup ------------------------------------------------------------------- */

static char lower(char ch) { return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch; }

/* Case-insensitive glob where '*' matches any run of bytes. On a mismatch
 * after a '*', the star absorbs one more byte and matching resumes, which
 * is linear in practice for model names. */
static bool glob_match(const char *p, lt_str_t s) {
  const char *star = NULL;
  size_t i = 0, star_i = 0;
  while (i < s.len) {
    if (*p == '*') {
      star = ++p;
      star_i = i;
    } else if (*p && lower(*p) == lower(s.ptr[i])) {
      p++;
      i++;
    } else if (star) {
      p = star;
      i = ++star_i;
    } else {
      return false;
    }
  }
  while (*p == '*') p++;
  return *p == '\0';
}

/* How specific a match is; compared field by field, larger wins. */
typedef struct {
  int exact, prefix, literal, provider, layer;
  int64_t from;
} rank_t;

static int rank_cmp(const rank_t *a, const rank_t *b) {
#define CMP_(f) \
  if (a->f != b->f) return a->f < b->f ? -1 : 1;
  CMP_(exact) CMP_(prefix) CMP_(literal) CMP_(provider) CMP_(layer) CMP_(from)
#undef CMP_
  return 0;
}

static bool str_ieq(lt_str_t a, const char *b) {
  size_t n = strlen(b);
  if (a.len != n) return false;
  for (size_t i = 0; i < n; i++)
    if (lower(a.ptr[i]) != lower(b[i])) return false;
  return true;
}

/* Looks up like lt_prices_lookup and also reports the times around at_ns
 * with the same answer: [*lo, *hi) holds no effective date of a matching
 * entry other than *lo itself (the latest one not after at_ns). */
static const lt_price_t *lookup_scan(const lt_prices_t *t, lt_str_t provider, lt_str_t model, int64_t at_ns,
                                     int64_t *lo, int64_t *hi) {
  const entry_t *best = NULL;
  rank_t best_rank = {0};
  *lo = INT64_MIN;
  *hi = INT64_MAX;
  for (size_t i = 0; i < t->n; i++) {
    const entry_t *e = &t->v[i];
    bool matched = false;
    rank_t r = {0};
    for (size_t g = 0; g < e->nglobs; g++) {
      const char *glob = e->globs[g];
      if (!glob_match(glob, model)) continue;
      const char *star = strchr(glob, '*');
      rank_t gr = {0};
      gr.exact = star == NULL;
      gr.prefix = (int)(star ? (size_t)(star - glob) : strlen(glob));
      for (const char *q = glob; *q; q++) gr.literal += *q != '*';
      if (!matched || rank_cmp(&gr, &r) > 0) r = gr;
      matched = true;
    }
    if (!matched) continue;
    if (e->price.effective_from_ns > at_ns) {
      if (e->price.effective_from_ns < *hi) *hi = e->price.effective_from_ns;
      continue;
    }
    if (e->price.effective_from_ns > *lo) *lo = e->price.effective_from_ns;
    /* A different provider does not exclude an entry: a model name sold
     * through a gateway (Azure, Bedrock, OpenRouter) still finds the
     * vendor's price, it just loses to an entry for the named provider. */
    r.provider = !e->price.provider || provider.len == 0 || str_ieq(provider, e->price.provider);
    r.layer = e->layer;
    r.from = e->price.effective_from_ns;
    /* >=: on a full tie the later entry in the file wins. */
    if (!best || rank_cmp(&r, &best_rank) >= 0) {
      best = e;
      best_rank = r;
    }
  }
  return best ? &best->price : NULL;
}

/* Per-thread memo of recent lookups: the spans of a request mostly name a
 * few models, and a scan matches every glob of the table (~1 µs). */
#define MEMO_SLOTS 8
#define MEMO_MODEL 96
#define MEMO_PROVIDER 32
typedef struct {
  uint64_t table;
  int64_t lo, hi;
  const lt_price_t *price;
  uint8_t mlen, plen;
  char model[MEMO_MODEL], provider[MEMO_PROVIDER];
} memo_t;
static _Thread_local memo_t memo[MEMO_SLOTS];
static _Thread_local unsigned memo_next;

const lt_price_t *lt_prices_lookup(const lt_prices_t *t, lt_str_t provider, lt_str_t model,
                                   int64_t at_ns) {
  if (!t || model.len == 0) return NULL;
  if (at_ns <= 0) at_ns = INT64_MAX;
  bool memoable = model.len < MEMO_MODEL && provider.len < MEMO_PROVIDER;
  if (memoable) {
    for (unsigned i = 0; i < MEMO_SLOTS; i++) {
      const memo_t *m = &memo[i];
      if (m->table == t->id && m->mlen == model.len && m->plen == provider.len && at_ns >= m->lo &&
          at_ns < m->hi && memcmp(m->model, model.ptr, model.len) == 0 &&
          (provider.len == 0 || memcmp(m->provider, provider.ptr, provider.len) == 0))
        return m->price;
    }
  }
  int64_t lo, hi;
  const lt_price_t *p = lookup_scan(t, provider, model, at_ns, &lo, &hi);
  if (memoable) {
    memo_t *m = &memo[memo_next++ % MEMO_SLOTS];
    m->table = t->id;
    m->lo = lo;
    m->hi = hi;
    m->price = p;
    m->mlen = (uint8_t)model.len;
    m->plen = (uint8_t)provider.len;
    memcpy(m->model, model.ptr, model.len);
    if (provider.len) memcpy(m->provider, provider.ptr, provider.len);
  }
  return p;
}

/* ---- cost --------------------------------------------------------------------- */

/* tokens * rate / 10^6, rounded half up, without overflow: the rate is
 * split into whole nano-dollars per token and the remainder, so neither
 * product exceeds 10^9 * 10^13 / 10^6. */
static lt_nusd_t price_tokens(int64_t tokens, lt_nusd_t per_m) {
  if (tokens <= 0 || per_m <= 0) return 0;
  if (tokens > MAX_TOKENS) tokens = MAX_TOKENS;
  int64_t whole = per_m / 1000000, frac = per_m % 1000000;
  return tokens * whole + (tokens * frac + 500000) / 1000000;
}

static int64_t known(int64_t n) { return n > 0 ? n : 0; }

bool lt_prices_cost(const lt_prices_t *t, lt_span_t *span) {
  if (!t || span->cost_source != LT_COST_UNKNOWN) return false;
  const int64_t *tok = span->tokens;
  if (tok[LT_TOK_INPUT] < 0 && tok[LT_TOK_OUTPUT] < 0) return false;
  lt_str_t model = span->response_model.len ? span->response_model : span->request_model;
  const lt_price_t *p = lt_prices_lookup(t, span->provider, model, span->start_ns);
  if (!p) return false;

  int64_t in = known(tok[LT_TOK_INPUT]), cr = known(tok[LT_TOK_CACHE_READ]);
  int64_t cw = known(tok[LT_TOK_CACHE_WRITE]), out = known(tok[LT_TOK_OUTPUT]);
  int64_t rs = known(tok[LT_TOK_REASONING]);
  /* Input side. OpenAI, Gemini and DeepSeek report cached tokens as a part
   * of the prompt count, so only the remainder is fresh input; Anthropic
   * reports input, cache reads and cache writes as three disjoint counts.
   * No provider we price counts cache writes inside input, so they are
   * always billed on their own. A source claiming more cached than input
   * tokens is inconsistent: bill the cached ones and no fresh input. */
  int64_t fresh = in;
  bool includes = span->input_includes_cache >= 0 ? span->input_includes_cache == 1 : p->input_includes_cache_read;
  if (includes) fresh = in > cr ? in - cr : 0;
  lt_nusd_t cost_in =
      price_tokens(fresh, p->input) + price_tokens(cr, p->cache_read) + price_tokens(cw, p->cache_write);
  /* Output side. Reasoning tokens are assumed to be part of the output
   * count (OpenAI's completion_tokens_details, DeepSeek, and what the
   * mapping layer normalises to), so they are moved from the output rate
   * to the reasoning rate rather than added; with the default reasoning
   * rate (= output) this changes nothing. */
  if (rs > out) rs = out;
  lt_nusd_t cost_out = price_tokens(out - rs, p->output) + price_tokens(rs, p->reasoning);

  span->cost_input = cost_in;
  span->cost_output = cost_out;
  span->cost_total = cost_in + cost_out;
  span->cost_source = LT_COST_COMPUTED;
  return true;
}
