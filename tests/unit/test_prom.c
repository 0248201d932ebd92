/* Unit tests for the Prometheus registry: bucket placement at the
 * boundaries (le is inclusive), label escaping and cutting, the label-set
 * cap and its folding, which spans count (not wrappers, not duplicates,
 * not other kinds), cost, project scoping, a check of the whole exposition
 * against the text format's grammar, and scrapes during observation. It
 * also prints what observing a span costs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/buf.h"
#include "core/err.h"
#include "obs/prom.h"

#define S 1000000000LL /* one second in ns */

/* A stored LLM span, 1 s long, 10 in / 5 out tokens, no cost. */
static lt_span_t llm(const char *model) {
  lt_span_t s;
  lt_span_init(&s);
  s.kind = LT_KIND_LLM;
  s.provider = LT_STR("openai");
  s.request_model = lt_str_from(model);
  s.operation = LT_STR("chat");
  s.status = LT_STATUS_OK;
  s.start_ns = 1767323045 * S;
  s.end_ns = s.start_ns + S;
  s.tokens[LT_TOK_INPUT] = 10;
  s.tokens[LT_TOK_OUTPUT] = 5;
  return s;
}

/* Observes spans as one committed batch of project; new_flags NULL = all new. */
static void observe(lt_prom_t *p, int64_t project, lt_span_t *spans, size_t n, uint8_t *new_flags) {
  uint8_t all[64];
  assert_true(n <= 64);
  size_t ins = 0;
  for (size_t i = 0; i < n; i++) {
    all[i] = new_flags ? new_flags[i] : 1;
    ins += all[i];
  }
  lt_batch_t b = {.project_id = project, .spans = spans, .n_spans = n, .n_inserted = ins, .span_new = all};
  lt_prom_observe_batch(&b, p);
}

static char *render(lt_prom_t *p, const lt_prom_render_opts_t *o) {
  lt_buf_t b;
  lt_buf_init(&b, 64u << 20);
  lt_prom_render_opts_t none = {0};
  assert_int_equal(lt_prom_render(p, o ? o : &none, &b), 0);
  size_t len;
  return lt_buf_steal(&b, &len);
}

/* The value of the sample line starting with `series ` (name and labels
 * exactly as rendered), or NAN when there is none. */
static double sample(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *l = text; *l;) {
    const char *e = strchr(l, '\n');
    if (!e) e = l + strlen(l);
    if ((size_t)(e - l) > n && !strncmp(l, series, n) && l[n] == ' ') return strtod(l + n + 1, NULL);
    l = *e ? e + 1 : e;
  }
  return NAN;
}

static size_t count_lines(const char *text, const char *prefix) {
  size_t c = 0, n = strlen(prefix);
  for (const char *l = text; *l;) {
    if (!strncmp(l, prefix, n)) c++;
    const char *e = strchr(l, '\n');
    if (!e) break;
    l = e + 1;
  }
  return c;
}

#define LABELS(model) \
  "project=\"1\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"" model "\",gen_ai_operation_name=\"chat\",status=\"ok\""
#define DUR(le) "gen_ai_client_operation_duration_seconds_bucket{" LABELS("m") ",le=\"" le "\"}"
#define TOK(type, le) "gen_ai_client_token_usage_bucket{" LABELS("m") ",gen_ai_token_type=\"" type "\",le=\"" le "\"}"
#define TTFT(le) "gen_ai_server_time_to_first_token_seconds_bucket{" LABELS("m") ",le=\"" le "\"}"

static void buckets_are_inclusive_at_boundaries(void **st) {
  lt_prom_t *p = lt_prom_new(0);
  int64_t durs[] = {0, S / 100, S / 100 + 1, 8192 * S / 100, 8192 * S / 100 + 1};
  int64_t toks[] = {1, 4, 5, 67108864, 67108865};
  int64_t ttfts[] = {S / 1000, S / 1000 + 1, 10 * S, 10 * S + 1, 0};
  lt_span_t sp[5];
  for (int i = 0; i < 5; i++) {
    sp[i] = llm("m");
    sp[i].end_ns = sp[i].start_ns + durs[i];
    sp[i].tokens[LT_TOK_INPUT] = toks[i];
    sp[i].tokens[LT_TOK_OUTPUT] = -1;
    sp[i].ttft_ns = ttfts[i];
  }
  sp[4].tokens[LT_TOK_CACHE_READ] = 0;
  observe(p, 1, sp, 5, NULL);
  char *t = render(p, NULL);
  /* 0 and exactly 0.01 s fall in le="0.01"; 0.01 s + 1 ns does not. */
  assert_true(sample(t, DUR("0.01")) == 2);
  assert_true(sample(t, DUR("0.02")) == 3);
  assert_true(sample(t, DUR("40.96")) == 3);
  assert_true(sample(t, DUR("81.92")) == 4);
  assert_true(sample(t, DUR("+Inf")) == 5);
  assert_true(sample(t, "gen_ai_client_operation_duration_seconds_count{" LABELS("m") "}") == 5);
  assert_true(fabs(sample(t, "gen_ai_client_operation_duration_seconds_sum{" LABELS("m") "}") -
                   (0.01 + 0.010000001 + 81.92 + 81.920000001)) < 1e-9);
  assert_true(sample(t, TOK("input", "1")) == 1);
  assert_true(sample(t, TOK("input", "4")) == 2);
  assert_true(sample(t, TOK("input", "16")) == 3);
  assert_true(sample(t, TOK("input", "16777216")) == 3);
  assert_true(sample(t, TOK("input", "67108864")) == 4);
  assert_true(sample(t, TOK("input", "+Inf")) == 5);
  assert_true(sample(t, "gen_ai_client_token_usage_sum{" LABELS("m") ",gen_ai_token_type=\"input\"}") ==
              1 + 4 + 5 + 67108864.0 + 67108865.0);
  /* Unknown (-1) is not observed; zero is. */
  assert_true(isnan(sample(t, TOK("output", "+Inf"))));
  assert_true(sample(t, TOK("cache_read", "1")) == 1);
  assert_true(sample(t, TTFT("0.001")) == 2); /* 0 and exactly 1 ms */
  assert_true(sample(t, TTFT("0.005")) == 3);
  assert_true(sample(t, TTFT("10")) == 4);
  assert_true(sample(t, TTFT("+Inf")) == 5);
  free(t);
  lt_prom_free(p);
}

static void bucket_bounds_match_the_conventions(void **st) {
  lt_prom_t *p = lt_prom_new(0);
  lt_span_t s = llm("m");
  s.ttft_ns = 1;
  observe(p, 1, &s, 1, NULL);
  char *t = render(p, NULL);
  const char *dur[] = {"0.01", "0.02", "0.04", "0.08", "0.16", "0.32", "0.64", "1.28", "2.56", "5.12", "10.24",
                       "20.48", "40.96", "81.92", "+Inf"};
  const char *ttft[] = {"0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1", "0.25",
                        "0.5",   "0.75",  "1",    "2.5",  "5",    "7.5",  "10",   "+Inf"};
  char want[1024];
  for (size_t i = 0; i < sizeof dur / sizeof *dur; i++) {
    snprintf(want, sizeof want, DUR("%s"), dur[i]);
    assert_false(isnan(sample(t, want)));
  }
  for (size_t i = 0; i < sizeof ttft / sizeof *ttft; i++) {
    snprintf(want, sizeof want, TTFT("%s"), ttft[i]);
    assert_false(isnan(sample(t, want)));
  }
  long long b = 1;
  for (int i = 0; i < 14; i++, b *= 4) {
    snprintf(want, sizeof want, TOK("input", "%lld"), b);
    assert_false(isnan(sample(t, want)));
  }
  assert_int_equal(b / 4, 67108864);
  assert_int_equal(count_lines(t, "gen_ai_client_operation_duration_seconds_bucket{"), 15);
  assert_int_equal(count_lines(t, "gen_ai_server_time_to_first_token_seconds_bucket{"), 17);
  assert_int_equal(count_lines(t, "gen_ai_client_token_usage_bucket{"), 2 * 15);
  free(t);
  lt_prom_free(p);
}

static char *label_value(const char *s, size_t n) {
  lt_buf_t b;
  lt_buf_init(&b, 4096);
  assert_int_equal(lt_prom_label_value(&b, (lt_str_t){s, n}), 0);
  size_t len;
  return lt_buf_steal(&b, &len);
}

static void label_values_are_escaped_and_cut(void **st) {
  char *v = label_value("a\"b\\c\nd", 7);
  assert_string_equal(v, "a\\\"b\\\\c\\nd");
  free(v);
  /* Invalid UTF-8 (a lone continuation byte, a truncated sequence, an
   * encoded surrogate) and NUL become U+FFFD. */
  v = label_value("x\x80y\xE2\x82z\xED\xA0\x80w\0q", 12);
  assert_string_equal(v, "x\xEF\xBF\xBDy\xEF\xBF\xBD\xEF\xBF\xBDz\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDw\xEF\xBF\xBDq");
  free(v);
  /* Cut at 128 bytes without splitting a character. */
  char big[300];
  memset(big, 'a', 127);
  memcpy(big + 127, "\xC3\xA9\xC3\xA9", 4);
  v = label_value(big, 131);
  assert_int_equal(strlen(v), 127);
  free(v);
  memset(big, 'b', sizeof big);
  v = label_value(big, sizeof big);
  assert_int_equal(strlen(v), LT_PROM_LABEL_MAX);
  free(v);

  /* The same rules apply to label values taken from spans. */
  lt_prom_t *p = lt_prom_new(0);
  lt_span_t s = llm("m");
  s.provider = LT_STR("we\"ird\\prov\nider");
  observe(p, 1, &s, 1, NULL);
  char *t = render(p, NULL);
  assert_non_null(strstr(t, "gen_ai_provider_name=\"we\\\"ird\\\\prov\\nider\""));
  free(t);
  lt_prom_free(p);
}

static void only_new_llm_and_embedding_spans_count(void **st) {
  lt_prom_t *p = lt_prom_new(0);
  lt_span_t sp[6];
  sp[0] = llm("m");                   /* counted */
  sp[1] = llm("m");                   /* a duplicate: not counted */
  sp[2] = llm("m");                   /* a wrapper summing its children */
  sp[2].usage_rollup = true;
  sp[3] = llm("m");                   /* a wrapper by its cost source */
  sp[3].cost_source = LT_COST_NONE;
  sp[4] = llm("m");                   /* not an LLM call */
  sp[4].kind = LT_KIND_CHAIN;
  sp[5] = llm("m");                   /* an embedding: counted */
  sp[5].kind = LT_KIND_EMBEDDING;
  uint8_t flags[6] = {1, 0, 1, 1, 1, 1};
  observe(p, 1, sp, 6, flags);
  /* The same span again, as a retry would send it. */
  uint8_t dup = 0;
  observe(p, 1, sp, 1, &dup);
  char *t = render(p, NULL);
  assert_true(sample(t, "lanterna_llm_spans_total{" LABELS("m") "}") == 2);
  assert_true(sample(t, "gen_ai_client_operation_duration_seconds_count{" LABELS("m") "}") == 2);
  assert_true(sample(t, "lanterna_spans_accepted_total") == 7);
  assert_true(sample(t, "lanterna_spans_duplicate_total") == 2);
  assert_true(sample(t, "lanterna_unpriced_spans_total{" LABELS("m") "}") == 2);
  free(t);
  lt_prom_free(p);
}

static void cost_is_summed_exactly(void **st) {
  lt_prom_t *p = lt_prom_new(0);
  lt_span_t sp[4];
  for (int i = 0; i < 4; i++) sp[i] = llm("m");
  sp[0].cost_source = LT_COST_REPORTED;
  sp[0].cost_total = 12500000; /* $0.0125 */
  sp[1].cost_source = LT_COST_COMPUTED;
  sp[1].cost_total = 1;        /* one nano-dollar */
  sp[2].cost_source = LT_COST_REPORTED; /* only a part was reported */
  sp[2].cost_input = 5;
  sp[2].cost_total = -1;
  observe(p, 1, sp, 4, NULL);
  char *t = render(p, NULL);
  assert_non_null(strstr(t, "lanterna_cost_usd_total{" LABELS("m") "} 0.012500001\n"));
  assert_true(sample(t, "lanterna_unpriced_spans_total{" LABELS("m") "}") == 2);
  free(t);
  lt_prom_free(p);
}

static void label_sets_are_capped_and_folded(void **st) {
  lt_prom_t *p = lt_prom_new(4);
  lt_span_t sp[10];
  char names[10][16];
  for (int i = 0; i < 10; i++) {
    snprintf(names[i], sizeof names[i], "m%d", i);
    sp[i] = llm(names[i]);
  }
  observe(p, 1, sp, 10, NULL);
  char *t = render(p, NULL);
  for (int i = 0; i < 4; i++) {
    char want[512];
    snprintf(want, sizeof want, "lanterna_llm_spans_total{" LABELS("%s") "}", names[i]);
    assert_true(sample(t, want) == 1);
  }
  const char *other = "project=\"1\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"__other__\","
                      "gen_ai_operation_name=\"__other__\",status=\"ok\"";
  char want[512];
  snprintf(want, sizeof want, "lanterna_llm_spans_total{%s}", other);
  assert_true(sample(t, want) == 6);
  snprintf(want, sizeof want, "gen_ai_client_token_usage_sum{%s,gen_ai_token_type=\"input\"}", other);
  assert_true(sample(t, want) == 60);
  assert_true(sample(t, "lanterna_metrics_label_overflow_total") == 6);
  assert_int_equal(count_lines(t, "lanterna_llm_spans_total{"), 5);
  free(t);

  /* Past the reserve for folded sets (new providers) everything but the
   * status folds: the number of label sets stays bounded. */
  static char prov[400][16];
  lt_span_t many[40];
  for (int round = 0; round < 10; round++) {
    for (int i = 0; i < 40; i++) {
      snprintf(prov[round * 40 + i], sizeof prov[0], "p%d", round * 40 + i);
      many[i] = llm("x");
      many[i].provider = lt_str_from(prov[round * 40 + i]);
      many[i].status = (lt_status_t)(i % 3);
    }
    observe(p, 1 + round % 2, many, 40, NULL);
  }
  t = render(p, NULL);
  size_t sets = count_lines(t, "lanterna_llm_spans_total{");
  assert_true(sets <= 4 + 4 / 8 + 8 + 3);
  assert_true(sample(t, "lanterna_llm_spans_total{project=\"__other__\",gen_ai_provider_name=\"__other__\","
                        "gen_ai_request_model=\"__other__\",gen_ai_operation_name=\"__other__\",status=\"ok\"}") > 0);
  /* No span is lost by folding. */
  double total = 0;
  for (const char *l = strstr(t, "\nlanterna_llm_spans_total{"); l; l = strstr(l + 1, "\nlanterna_llm_spans_total{"))
    total += strtod(strchr(l, '}') + 2, NULL);
  assert_true(total == 410);
  assert_true(sample(t, "lanterna_metrics_label_overflow_total") == 406);
  free(t);
  lt_prom_free(p);
}

static void projects_are_named_and_scoped(void **st) {
  lt_prom_t *p = lt_prom_new(0);
  lt_span_t s = llm("m");
  observe(p, 1, &s, 1, NULL);
  observe(p, 2, &s, 1, NULL);
  observe(p, 3, &s, 1, NULL);
  json_t *projects = json_pack("[{s:i,s:s},{s:i,s:s}]", "id", 1, "name", "default", "id", 2, "name", "acme");
  lt_prom_render_opts_t o = {.projects = projects};
  char *t = render(p, &o);
  assert_int_equal(count_lines(t, "lanterna_llm_spans_total{project=\"default\","), 1);
  assert_int_equal(count_lines(t, "lanterna_llm_spans_total{project=\"acme\","), 1);
  assert_int_equal(count_lines(t, "lanterna_llm_spans_total{project=\"3\","), 1); /* unknown id: the id */
  free(t);
  o.only_project = 2;
  t = render(p, &o);
  assert_int_equal(count_lines(t, "lanterna_llm_spans_total{"), 1);
  assert_int_equal(count_lines(t, "lanterna_llm_spans_total{project=\"acme\","), 1);
  free(t);
  json_decref(projects);
  lt_prom_free(p);
}

/* ---- a checker for the text format (version 0.0.4) ----------------------- */

static bool name_ok(const char *s, size_t n) {
  if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':')) return false;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':')) return false;
  return true;
}

typedef struct {
  char name[128], type[16];
} fam_t;

/* Asserts text is a valid exposition: HELP/TYPE before a family's samples,
 * families contiguous, well-formed names, labels and values, histograms
 * with cumulative buckets ending in +Inf equal to _count, and no series
 * twice. */
static void check_exposition(const char *text) {
  static fam_t fams[256];
  int nf = 0;
  static char seen[20000][600];
  int nseen = 0;
  const char *cur = NULL; /* the family being read */
  double last_bucket = -1, inf = -1;
  for (const char *l = text; *l;) {
    const char *e = strchr(l, '\n');
    assert_non_null(e); /* every line ends with a newline */
    size_t n = (size_t)(e - l);
    char line[2048];
    assert_true(n < sizeof line);
    memcpy(line, l, n);
    line[n] = '\0';
    l = e + 1;
    if (!strncmp(line, "# HELP ", 7)) continue;
    if (!strncmp(line, "# TYPE ", 7)) {
      char *sp = strchr(line + 7, ' ');
      assert_non_null(sp);
      assert_true(name_ok(line + 7, (size_t)(sp - line - 7)));
      for (int i = 0; i < nf; i++) assert_true(strncmp(fams[i].name, line + 7, (size_t)(sp - line - 7)) != 0 ||
                                               fams[i].name[sp - line - 7] != '\0');
      assert_true(!strcmp(sp + 1, "counter") || !strcmp(sp + 1, "gauge") || !strcmp(sp + 1, "histogram") ||
                  !strcmp(sp + 1, "summary") || !strcmp(sp + 1, "untyped"));
      *sp = '\0';
      assert_true(nf < 256);
      assert_true(strlen(line + 7) < sizeof fams[nf].name && strlen(sp + 1) < sizeof fams[nf].type);
      strcpy(fams[nf].name, line + 7);
      strcpy(fams[nf].type, sp + 1);
      cur = fams[nf++].name;
      last_bucket = -1;
      continue;
    }
    assert_true(line[0] != '#' && line[0] != '\0');
    /* name{labels} value */
    size_t nl = strcspn(line, "{ ");
    assert_true(name_ok(line, nl));
    assert_non_null(cur);
    const char *type = fams[nf - 1].type;
    size_t cl = strlen(cur);
    assert_true(nl >= cl && !strncmp(line, cur, cl));
    const char *suffix = line + cl;
    size_t sl = nl - cl;
    bool hist = !strcmp(type, "histogram"), summ = !strcmp(type, "summary");
    if (sl) {
      assert_true((hist && sl == 7 && !strncmp(suffix, "_bucket", 7)) ||
                  ((hist || summ) && ((sl == 4 && !strncmp(suffix, "_sum", 4)) || (sl == 6 && !strncmp(suffix, "_count", 6)))));
    }
    char *p = line + nl;
    char le[64] = "";
    if (*p == '{') {
      p++;
      while (*p != '}') {
        size_t ln = strcspn(p, "=");
        assert_true(ln > 0 && !isdigit((unsigned char)p[0]) && p[0] != ':');
        for (size_t i = 0; i < ln; i++) assert_true(isalnum((unsigned char)p[i]) || p[i] == '_');
        bool is_le = ln == 2 && !strncmp(p, "le", 2);
        p += ln;
        assert_true(p[0] == '=' && p[1] == '"');
        p += 2;
        size_t vl = 0;
        while (*p != '"') {
          assert_true(*p != '\0' && *p != '\n');
          if (*p == '\\') {
            assert_true(p[1] == '\\' || p[1] == '"' || p[1] == 'n');
            p++;
          }
          if (is_le && vl + 1 < sizeof le) le[vl++] = *p;
          p++;
        }
        if (is_le) le[vl] = '\0';
        p++;
        if (*p == ',') p++;
        else assert_true(*p == '}');
      }
      p++;
    }
    assert_true(*p == ' ');
    char *end;
    double v = strtod(p + 1, &end);
    assert_true(*end == '\0' && end != p + 1);
    /* no series twice */
    size_t keyl = (size_t)(p - line);
    assert_true(keyl < sizeof seen[0]);
    for (int i = 0; i < nseen; i++) assert_true(strncmp(seen[i], line, keyl) != 0 || seen[i][keyl] != '\0');
    assert_true(nseen < 20000);
    memcpy(seen[nseen], line, keyl);
    seen[nseen++][keyl] = '\0';
    if (hist && sl == 7) {
      assert_true(le[0] != '\0');
      if (last_bucket < 0) last_bucket = 0;
      assert_true(v >= last_bucket); /* cumulative */
      last_bucket = v;
      if (!strcmp(le, "+Inf")) {
        inf = v;
        last_bucket = -1;
      }
    } else if (hist && sl == 6) {
      assert_true(v == inf);
    }
  }
}

static void exposition_is_valid(void **st) {
  lt_prom_t *p = lt_prom_new(3);
  lt_span_t sp[8];
  for (int i = 0; i < 8; i++) {
    sp[i] = llm(i % 2 ? "gpt-4o" : "claude \"quoted\"\nmodel");
    sp[i].status = (lt_status_t)(i % 3);
    sp[i].ttft_ns = i * 1000000LL;
    sp[i].tokens[LT_TOK_REASONING] = i;
    sp[i].cost_source = i % 2 ? LT_COST_REPORTED : LT_COST_UNKNOWN;
    sp[i].cost_total = i % 2 ? 1000 : 0;
  }
  sp[7].kind = LT_KIND_EMBEDDING;
  sp[7].operation = LT_STR("embeddings");
  observe(p, 1, sp, 8, NULL);
  lt_writer_stats_t ws = {.commits = 3, .commit_ns_total = 1500000, .commit_ns_max = 900000, .queue_bytes = 10};
  lt_store_stats_t ss = {.spans = 8, .traces = 1, .db_bytes = 4096, .fts_lag = 2};
  lt_prom_render_opts_t o = {.version = "1.2.3", .writer = &ws, .store = &ss};
  char *t = render(p, &o);
  check_exposition(t);
  assert_true(sample(t, "lanterna_build_info{version=\"1.2.3\"}") == 1);
  assert_true(sample(t, "lanterna_commit_seconds_sum") == 0.0015);
  assert_true(sample(t, "lanterna_commits_total") == 3);
  assert_true(sample(t, "lanterna_db_size_bytes") == 4096);
  assert_true(sample(t, "lanterna_fts_lag_spans") == 2);
  assert_true(sample(t, "process_start_time_seconds") > 1.7e9);
  free(t);
  /* An empty registry is valid too. */
  lt_prom_free(p);
  p = lt_prom_new(0);
  t = render(p, &o);
  check_exposition(t);
  free(t);
  lt_prom_free(p);
}

/* ---- threads and cost ------------------------------------------------------ */

typedef struct {
  lt_prom_t *p;
  int rounds;
} writer_arg_t;

static void *observer(void *arg) {
  writer_arg_t *a = arg;
  static char names[32][16];
  lt_span_t sp[32];
  for (int i = 0; i < 32; i++) {
    snprintf(names[i], sizeof names[i], "m%d", i);
    sp[i] = llm(names[i]);
  }
  for (int r = 0; r < a->rounds; r++) observe(a->p, 1 + r % 3, sp, 32, NULL);
  return NULL;
}

static void scrapes_run_alongside_observation(void **st) {
  lt_prom_t *p = lt_prom_new(0);
  writer_arg_t a = {p, 2000};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, observer, &a), 0);
  for (int i = 0; i < 20; i++) free(render(p, NULL));
  pthread_join(th, NULL);
  char *t = render(p, NULL);
  check_exposition(t);
  double total = 0;
  for (const char *l = strstr(t, "\nlanterna_llm_spans_total{"); l; l = strstr(l + 1, "\nlanterna_llm_spans_total{"))
    total += strtod(strchr(l, '}') + 2, NULL);
  assert_true(total == 2000 * 32);
  free(t);
  lt_prom_free(p);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Observing runs on the writer thread, so its cost matters: this prints
 * it per span. Wall-clock time is reported, never asserted. */
static void observe_cost_per_span(void **st) {
  lt_prom_t *p = lt_prom_new(0);
  static char names[50][40];
  lt_span_t sp[50];
  for (int i = 0; i < 50; i++) {
    snprintf(names[i], sizeof names[i], "claude-sonnet-4-20250514-v%d", i);
    sp[i] = llm(names[i]);
    sp[i].ttft_ns = 300000000;
    sp[i].cost_source = LT_COST_REPORTED;
    sp[i].cost_total = 1234;
    sp[i].tokens[LT_TOK_CACHE_READ] = 100;
  }
  int rounds = 4000;
  double t0 = now_s();
  for (int r = 0; r < rounds; r++) {
    lt_batch_t b = {.project_id = 1, .spans = sp, .n_spans = 50, .n_inserted = 50};
    lt_prom_observe_batch(&b, p);
  }
  double ns = (now_s() - t0) / (rounds * 50.0) * 1e9;
  fprintf(stderr, "prom: observe costs %.0f ns per span\n", ns);
  lt_buf_t out;
  lt_buf_init(&out, 64u << 20);
  lt_prom_render_opts_t o = {0};
  assert_int_equal(lt_prom_render(p, &o, &out), 0);
  assert_true(sample(out.ptr, "lanterna_spans_accepted_total") == rounds * 50.0);
  lt_buf_free(&out);
  lt_prom_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(buckets_are_inclusive_at_boundaries),
    cmocka_unit_test(bucket_bounds_match_the_conventions),
    cmocka_unit_test(label_values_are_escaped_and_cut),
    cmocka_unit_test(only_new_llm_and_embedding_spans_count),
    cmocka_unit_test(cost_is_summed_exactly),
    cmocka_unit_test(label_sets_are_capped_and_folded),
    cmocka_unit_test(projects_are_named_and_scoped),
    cmocka_unit_test(exposition_is_valid),
    cmocka_unit_test(scrapes_run_alongside_observation),
    cmocka_unit_test(observe_cost_per_span),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
