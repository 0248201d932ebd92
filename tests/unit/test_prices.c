/* Unit tests for the price table (model/prices.h): the shipped
 * data/prices.json loads and holds known prices; glob precedence,
 * effective dates and override merging; cost per token type with the
 * expected nano-dollars worked out by hand; and the rule that a reported
 * cost is kept and an unpriced span stays unknown, never $0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/err.h"
#include "model/prices.h"

#define USD(x) ((lt_nusd_t)((x) * 1e9 + 0.5)) /* USD per million -> nusd per million */
#define NS_PER_DAY (86400LL * 1000000000LL)
/* Unix ns of a date at midnight UTC, for the dates used below. */
#define D_2025_01_01 (20089LL * NS_PER_DAY)
#define D_2025_06_10 (20249LL * NS_PER_DAY)
#define D_2025_09_05 (20336LL * NS_PER_DAY)
#define D_2025_09_29 (20360LL * NS_PER_DAY)

static lt_prices_t *shipped;

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) buf[n] = '\0';
  *len = (size_t)n;
  return buf;
}

static int setup(void **st) {
  size_t len;
  char err[512];
  char *text = slurp("data/prices.json", &len);
  if (!text) return -1;
  int rc = lt_prices_load(text, len, "data/prices.json", &shipped, err, sizeof err);
  free(text);
  if (rc != 0) fprintf(stderr, "%s\n", err);
  return rc;
}

static int teardown(void **st) {
  lt_prices_free(shipped);
  return 0;
}

static lt_prices_t *load(const char *json) {
  lt_prices_t *t = NULL;
  char err[512];
  int rc = lt_prices_load(json, strlen(json), "test", &t, err, sizeof err);
  if (rc != 0) fprintf(stderr, "%s\n", err);
  assert_int_equal(rc, 0);
  return t;
}

static const lt_price_t *find(const lt_prices_t *t, const char *provider, const char *model, int64_t at) {
  return lt_prices_lookup(t, lt_str_from(provider), lt_str_from(model), at);
}

static lt_span_t llm_span(const char *provider, const char *model, int64_t in, int64_t out) {
  lt_span_t s;
  lt_span_init(&s);
  s.provider = lt_str_from(provider);
  s.response_model = lt_str_from(model);
  s.start_ns = D_2025_01_01;
  s.tokens[LT_TOK_INPUT] = in;
  s.tokens[LT_TOK_OUTPUT] = out;
  return s;
}

/* ---- the shipped table ------------------------------------------------------- */

static void shipped_known_prices(void **st) {
  assert_true(lt_prices_count(shipped) >= 50);
  const lt_price_t *p = find(shipped, "openai", "gpt-4o-mini-2024-07-18", 0);
  assert_non_null(p);
  assert_int_equal(p->input, USD(0.15));
  assert_int_equal(p->cache_read, USD(0.075));
  assert_int_equal(p->output, USD(0.60));
  assert_int_equal(p->reasoning, USD(0.60)); /* defaults to output */
  assert_true(p->input_includes_cache_read);

  p = find(shipped, "openai", "gpt-4o-2024-08-06", 0);
  assert_int_equal(p->input, USD(2.50));
  p = find(shipped, "openai", "gpt-4.1-nano-2025-04-14", 0);
  assert_int_equal(p->input, USD(0.10));
  p = find(shipped, "", "text-embedding-3-small", 0);
  assert_int_equal(p->input, USD(0.02));

  p = find(shipped, "anthropic", "claude-3-5-sonnet-20241022", 0);
  assert_int_equal(p->input, USD(3));
  assert_int_equal(p->cache_write, USD(3.75));
  assert_int_equal(p->cache_read, USD(0.30));
  assert_int_equal(p->output, USD(15));
  assert_false(p->input_includes_cache_read);
  assert_int_equal(find(shipped, "anthropic", "claude-sonnet-4-5-20250929", 0)->input, USD(3));
  assert_int_equal(find(shipped, "anthropic", "claude-haiku-4-5-20251001", 0)->input, USD(1));
  assert_int_equal(find(shipped, "anthropic", "claude-opus-4-20250514", 0)->input, USD(15));
  assert_int_equal(find(shipped, "anthropic", "claude-opus-4-1-20250805", 0)->input, USD(15));
  assert_int_equal(find(shipped, "anthropic", "claude-opus-4-5-20251101", 0)->input, USD(5));
  /* Bedrock and Vertex spell the same models differently. */
  assert_int_equal(find(shipped, "aws.bedrock", "us.anthropic.claude-opus-4-20250514-v1:0", 0)->output, USD(75));
  assert_int_equal(find(shipped, "aws.bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", 0)->input, USD(0.80));
  assert_int_equal(find(shipped, "gcp.vertex_ai", "claude-3-7-sonnet@20250219", 0)->input, USD(3));

  assert_int_equal(find(shipped, "gcp.gemini", "gemini-2.5-flash", 0)->output, USD(2.50));
  assert_int_equal(find(shipped, "gcp.gemini", "gemini-2.5-flash-lite", 0)->output, USD(0.40));
  assert_int_equal(find(shipped, "gcp.gemini", "gemini-2.0-flash-001", 0)->input, USD(0.10));
  assert_int_equal(find(shipped, "mistral_ai", "codestral-2501", 0)->output, USD(0.90));
  assert_int_equal(find(shipped, "cohere", "command-r-08-2024", 0)->input, USD(0.15));
  assert_int_equal(find(shipped, "groq", "llama-3.3-70b-versatile", 0)->output, USD(0.79));
  /* A model we do not know has no price rather than a wrong one. */
  assert_null(find(shipped, "openai", "gpt-99-turbo", 0));
  assert_null(find(shipped, "openai", "gpt-5.9", 0));
}

static void shipped_effective_dates(void **st) {
  const int64_t day = NS_PER_DAY;
  assert_int_equal(find(shipped, "openai", "o3", D_2025_06_10 - day)->input, USD(10));
  assert_int_equal(find(shipped, "openai", "o3-2025-04-16", D_2025_06_10)->input, USD(2));
  assert_int_equal(find(shipped, "openai", "o3", 0)->output, USD(8)); /* "now" */
  /* The gpt-4o alias moved to the cheaper snapshot; the dated one did not. */
  assert_int_equal(find(shipped, "openai", "gpt-4o", D_2025_01_01 - 200 * day)->input, USD(5));
  assert_int_equal(find(shipped, "openai", "gpt-4o", D_2025_01_01)->input, USD(2.50));
  assert_int_equal(find(shipped, "openai", "gpt-4o-2024-05-13", D_2025_01_01)->input, USD(5));

  assert_int_equal(find(shipped, "deepseek", "deepseek-reasoner", D_2025_09_05 - 1)->output, USD(2.19));
  assert_int_equal(find(shipped, "deepseek", "deepseek-reasoner", D_2025_09_05)->output, USD(1.68));
  assert_int_equal(find(shipped, "deepseek", "deepseek-chat", D_2025_09_29 + day)->cache_read, USD(0.028));
}

/* ---- matching rules ---------------------------------------------------------- */

static const char *const rules_json =
    "{\"version\": 1, \"models\": ["
    " {\"match\": \"gpt-4o*\", \"provider\": \"openai\", \"input\": 1, \"output\": 1},"
    " {\"match\": \"gpt-4o-mini*\", \"provider\": \"openai\", \"input\": 2, \"output\": 2},"
    " {\"match\": \"gpt-4o-mini-2024-07-18\", \"provider\": \"openai\", \"input\": 3, \"output\": 3},"
    " {\"match\": [\"*mini*\"], \"input\": 4, \"output\": 4},"
    " {\"match\": \"llama-3*\", \"provider\": \"groq\", \"input\": 5, \"output\": 5},"
    " {\"match\": \"llama-3*\", \"provider\": \"together_ai\", \"input\": 6, \"output\": 6},"
    " {\"match\": \"m*\", \"effective_from\": \"2025-01-01\", \"input\": 7, \"output\": 7},"
    " {\"match\": \"m*\", \"effective_from\": \"2025-06-10\", \"input\": 8, \"output\": 8}"
    "]}";

static void glob_precedence(void **st) {
  lt_prices_t *t = load(rules_json);
  assert_int_equal(find(t, "openai", "gpt-4o-2024-08-06", 0)->input, USD(1));
  assert_int_equal(find(t, "openai", "gpt-4o-mini", 0)->input, USD(2)); /* longer prefix */
  assert_int_equal(find(t, "openai", "GPT-4o-Mini-2024-07-18", 0)->input, USD(3)); /* exact, any case */
  assert_int_equal(find(t, "openai", "o4-mini", 0)->input, USD(4)); /* leading '*' still matches */
  /* Same glob, different hosts: the span's provider decides; without one
   * the later entry wins the tie. */
  assert_int_equal(find(t, "groq", "llama-3.3-70b", 0)->input, USD(5));
  assert_int_equal(find(t, "together_ai", "llama-3.3-70b", 0)->input, USD(6));
  assert_int_equal(find(t, "", "llama-3.3-70b", 0)->input, USD(6));
  /* Another provider's entry is still used when nothing better exists. */
  assert_int_equal(find(t, "azure.ai.openai", "gpt-4o", 0)->input, USD(1));
  assert_null(find(t, "openai", "gpt-4", 0));
  assert_null(find(t, "openai", "", 0));
  lt_prices_free(t);
}

static void effective_dates(void **st) {
  lt_prices_t *t = load(rules_json);
  assert_null(find(t, "", "m1", D_2025_01_01 - 1)); /* before any entry */
  assert_int_equal(find(t, "", "m1", D_2025_01_01)->input, USD(7));
  assert_int_equal(find(t, "", "m1", D_2025_06_10 - 1)->input, USD(7));
  assert_int_equal(find(t, "", "m1", D_2025_06_10)->input, USD(8));
  assert_int_equal(find(t, "", "m1", 0)->input, USD(8));
  /* A date never beats specificity: the exact entry has no date at all. */
  assert_int_equal(find(t, "openai", "gpt-4o-mini-2024-07-18", D_2025_06_10)->input, USD(3));
  lt_prices_free(t);
}

/* Lookups are remembered per thread: the same question at other times, in
 * any order, for another provider, or of another table (even one at a
 * freed table's address) gets its own answer. */
static void remembered_lookups(void **st) {
  lt_prices_t *t = load(rules_json);
  int64_t times[] = {D_2025_06_10, D_2025_01_01 - 1, D_2025_06_10 - 1, 0, D_2025_01_01, D_2025_06_10 + 1};
  int64_t want[] = {8, 0, 7, 8, 7, 8};
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 6; i++) {
      const lt_price_t *p = find(t, "", "m1", times[i]);
      if (want[i]) assert_int_equal(p->input, USD(want[i]));
      else assert_null(p);
    }
    assert_int_equal(find(t, "groq", "llama-3.3-70b", 0)->input, USD(5));
    assert_int_equal(find(t, "together_ai", "llama-3.3-70b", 0)->input, USD(6));
  }
  lt_prices_free(t);
  /* A new table, likely at the same address, with other prices. */
  t = load("{\"version\": 1, \"models\": [{\"match\": \"m*\", \"input\": 9, \"output\": 9}]}");
  assert_int_equal(find(t, "", "m1", D_2025_06_10)->input, USD(9));
  assert_int_equal(find(t, "", "m1", D_2025_01_01 - 1)->input, USD(9));
  assert_null(find(t, "groq", "llama-3.3-70b", 0));
  lt_prices_free(t);
}

/* ---- cost -------------------------------------------------------------------- */

static void cost_openai_cached_input(void **st) {
  /* gpt-4o-mini: $0.15 input, $0.075 cached, $0.60 output per million.
   * 10,000 prompt tokens of which 4,000 cached; 500 completion tokens of
   * which 200 reasoning (billed as output, they are inside the 500).
   * fresh  6,000 x 150 nusd   =   900,000
   * cached 4,000 x  75 nusd   =   300,000
   * output   500 x 600 nusd   =   300,000          total 1,500,000 nusd */
  lt_span_t s = llm_span("openai", "gpt-4o-mini-2024-07-18", 10000, 500);
  s.tokens[LT_TOK_CACHE_READ] = 4000;
  s.tokens[LT_TOK_REASONING] = 200;
  assert_true(lt_prices_cost(shipped, &s));
  assert_int_equal(s.cost_source, LT_COST_COMPUTED);
  assert_int_equal(s.cost_input, 1200000);
  assert_int_equal(s.cost_output, 300000);
  assert_int_equal(s.cost_total, 1500000);
}

static void cost_anthropic_separate_cache(void **st) {
  /* claude-3-5-sonnet: $3 input, $3.75 cache write, $0.30 cache read,
   * $15 output. Anthropic's input_tokens exclude both cache counts.
   * input        1,000 x  3,000 nusd =  3,000,000
   * cache read  20,000 x    300 nusd =  6,000,000
   * cache write  5,000 x  3,750 nusd = 18,750,000
   * output         800 x 15,000 nusd = 12,000,000      total 39,750,000 */
  lt_span_t s = llm_span("anthropic", "claude-3-5-sonnet-20241022", 1000, 800);
  s.tokens[LT_TOK_CACHE_READ] = 20000;
  s.tokens[LT_TOK_CACHE_WRITE] = 5000;
  assert_true(lt_prices_cost(shipped, &s));
  assert_int_equal(s.cost_input, 27750000);
  assert_int_equal(s.cost_output, 12000000);
  assert_int_equal(s.cost_total, 39750000);
}

static void cost_reasoning_rate_and_rounding(void **st) {
  lt_prices_t *t = load("{\"version\": 1, \"models\": ["
                        " {\"match\": \"r1\", \"input\": 1, \"output\": 10, \"reasoning\": 20},"
                        " {\"match\": \"tiny\", \"input\": 0.0375, \"output\": 0.15}]}");
  /* 100 output tokens of which 40 reasoning: 60 x 10,000 + 40 x 20,000. */
  lt_span_t s = llm_span("", "r1", -1, 100);
  s.tokens[LT_TOK_REASONING] = 40;
  assert_true(lt_prices_cost(t, &s));
  assert_int_equal(s.cost_input, 0);
  assert_int_equal(s.cost_output, 1400000);
  /* 3 tokens at 37.5 nusd each = 112.5, rounded half up once. */
  s = llm_span("", "tiny", 3, 0);
  assert_true(lt_prices_cost(t, &s));
  assert_int_equal(s.cost_input, 113);
  assert_int_equal(s.cost_total, 113);
  /* The request model is used when the response does not name one. */
  s = llm_span("", "", 1000000, 0);
  s.request_model = LT_STR("r1");
  assert_true(lt_prices_cost(t, &s));
  assert_int_equal(s.cost_total, 1000000000);
  lt_prices_free(t);
}

static void cost_reported_untouched(void **st) {
  lt_span_t s = llm_span("openai", "gpt-4o", 1000, 1000);
  s.cost_source = LT_COST_REPORTED;
  s.cost_input = 1;
  s.cost_output = 2;
  s.cost_total = 3;
  assert_false(lt_prices_cost(shipped, &s));
  assert_int_equal(s.cost_source, LT_COST_REPORTED);
  assert_int_equal(s.cost_input, 1);
  assert_int_equal(s.cost_output, 2);
  assert_int_equal(s.cost_total, 3);
}

static void cost_unknown_stays_unknown(void **st) {
  lt_span_t before, s = llm_span("openai", "my-finetune-v7", 1000, 1000);
  before = s;
  assert_false(lt_prices_cost(shipped, &s));
  assert_int_equal(s.cost_source, LT_COST_UNKNOWN);
  assert_memory_equal(&s, &before, sizeof s);
  /* Priced model, but no token counts at all. */
  s = llm_span("openai", "gpt-4o", -1, -1);
  s.tokens[LT_TOK_CACHE_READ] = 10;
  assert_false(lt_prices_cost(shipped, &s));
  assert_int_equal(s.cost_source, LT_COST_UNKNOWN);
  /* Tokens but no model. */
  s = llm_span("openai", "", 10, 10);
  assert_false(lt_prices_cost(shipped, &s));
  assert_int_equal(s.cost_source, LT_COST_UNKNOWN);
  /* Zero tokens is a known count: the cost is a real $0. */
  s = llm_span("openai", "gpt-4o", 0, 0);
  assert_true(lt_prices_cost(shipped, &s));
  assert_int_equal(s.cost_source, LT_COST_COMPUTED);
  assert_int_equal(s.cost_total, 0);
}

/* ---- bad files --------------------------------------------------------------- */

static void expect_config_error(const char *json, const char *const *want) {
  lt_prices_t *t = (lt_prices_t *)1;
  char err[512];
  int rc = lt_prices_load(json, strlen(json), "over.json", &t, err, sizeof err);
  assert_int_equal(rc, LT_ECONFIG);
  assert_null(t);
  for (; *want; want++) {
    if (!strstr(err, *want)) fprintf(stderr, "message: %s\nmissing: %s\n", err, *want);
    assert_non_null(strstr(err, *want));
  }
}

#define WANT(...) ((const char *const[]){__VA_ARGS__, NULL})

static void malformed_files(void **st) {
  expect_config_error("{\"version\": 1, \"models\": [", WANT("over.json", "line 1"));
  expect_config_error("[]", WANT("top level"));
  expect_config_error("{\"models\": []}", WANT("\"version\""));
  expect_config_error("{\"version\": 1}", WANT("\"models\""));
  expect_config_error("{\"version\": 1, \"models\": [{\"match\": \"a\", \"input\": 1, \"output\": 1},"
                      " {\"match\": \"gpt-x*\", \"input\": \"2.50\", \"output\": 1}]}",
                      WANT("models[1]", "gpt-x*", "\"input\"", "number"));
  expect_config_error("{\"version\": 1, \"models\": [{\"input\": 1, \"output\": 1}]}",
                      WANT("models[0]", "\"match\"", "missing"));
  expect_config_error("{\"version\": 1, \"models\": [{\"match\": [], \"input\": 1, \"output\": 1}]}",
                      WANT("\"match\"", "empty"));
  expect_config_error("{\"version\": 1, \"models\": [{\"match\": \"a\", \"input\": 1}]}",
                      WANT("\"a\"", "\"output\"", "missing"));
  expect_config_error("{\"version\": 1, \"models\": [{\"match\": \"a\", \"input\": -1, \"output\": 1}]}",
                      WANT("\"input\"", "out of range"));
  expect_config_error("{\"version\": 1, \"models\": [{\"match\": \"a\", \"inptu\": 1, \"input\": 1, \"output\": 1}]}",
                      WANT("\"inptu\"", "unknown field"));
  expect_config_error("{\"version\": 1, \"models\": [{\"match\": \"a\", \"effective_from\": \"2025-02-29\","
                      " \"input\": 1, \"output\": 1}]}",
                      WANT("\"effective_from\"", "YYYY-MM-DD"));
  expect_config_error("{\"version\": 1, \"models\": [{\"match\": \"a\", \"input\": 1, \"output\": 1,"
                      " \"input_includes_cache_read\": \"yes\"}]}",
                      WANT("\"input_includes_cache_read\""));
  expect_config_error("{\"version\": 1, \"models\": [{\"match\": \"a\", \"provider\": 3, \"input\": 1, \"output\": 1}]}",
                      WANT("\"provider\""));
  expect_config_error("{\"version\": 1, \"models\": [{\"match\": \"a\", \"match\": \"b\", \"input\": 1, \"output\": 1}]}",
                      WANT("duplicate"));
}

/* ---- override ---------------------------------------------------------------- */

static void override_merge(void **st) {
  lt_prices_t *base = load(rules_json);
  size_t n = lt_prices_count(base);
  /* A negotiated price for gpt-4o*, with no provider and an old date: it
   * still wins over the base entry of the same glob. The more specific
   * base entries for gpt-4o-mini are untouched. */
  lt_prices_t *over = load("{\"version\": 1, \"models\": ["
                           " {\"match\": \"gpt-4o*\", \"effective_from\": \"2020-01-01\", \"input\": 0.5, \"output\": 0.5},"
                           " {\"match\": \"new-model\", \"provider\": \"acme\", \"input\": 9, \"output\": 9}]}");
  assert_int_equal(lt_prices_merge(base, over), 0);
  lt_prices_free(over); /* the merge copied what it needs */
  assert_int_equal(lt_prices_count(base), n + 2);
  assert_int_equal(find(base, "openai", "gpt-4o-2024-08-06", 0)->input, USD(0.5));
  assert_int_equal(find(base, "openai", "gpt-4o-mini", 0)->input, USD(2));
  const lt_price_t *p = find(base, "acme", "new-model", 0);
  assert_int_equal(p->output, USD(9));
  assert_string_equal(p->provider, "acme");
  assert_string_equal(p->match, "new-model");
  /* A second override sits above the first. */
  over = load("{\"version\": 1, \"models\": [{\"match\": \"gpt-4o*\", \"input\": 0.25, \"output\": 0.25}]}");
  assert_int_equal(lt_prices_merge(base, over), 0);
  lt_prices_free(over);
  assert_int_equal(find(base, "openai", "gpt-4o", 0)->input, USD(0.25));
  lt_prices_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(shipped_known_prices),
      cmocka_unit_test(shipped_effective_dates),
      cmocka_unit_test(glob_precedence),
      cmocka_unit_test(effective_dates),
      cmocka_unit_test(remembered_lookups),
      cmocka_unit_test(cost_openai_cached_input),
      cmocka_unit_test(cost_anthropic_separate_cache),
      cmocka_unit_test(cost_reasoning_rate_and_rounding),
      cmocka_unit_test(cost_reported_untouched),
      cmocka_unit_test(cost_unknown_stays_unknown),
      cmocka_unit_test(malformed_files),
      cmocka_unit_test(override_merge),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
