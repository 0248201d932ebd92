/* The arena JSON document model (src/core/jdom.c): what it accepts and
 * rejects, escapes and UTF-8, limits, lookups, numbers, and writing back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/jdom.h"

static lt_arena_t *arena;

static int setup(void **st) {
  (void)st;
  arena = lt_arena_create(64u << 20);
  return arena ? 0 : -1;
}

static int teardown(void **st) {
  (void)st;
  lt_arena_destroy(arena);
  return 0;
}

static lt_jd_t *parse(const char *s) {
  lt_jd_t *j = NULL;
  int rc = lt_jd_parse(arena, s, strlen(s), NULL, &j, NULL);
  if (rc) fail_msg("rejected: %s", s);
  return j;
}

/* The compact writing of j. */
static const char *written(const lt_jd_t *j) {
  static lt_buf_t b;
  lt_buf_free(&b);
  lt_buf_init(&b, 1 << 20);
  assert_int_equal(lt_jd_write(&b, j), 0);
  return b.ptr ? b.ptr : "";
}

static void assert_str(lt_str_t s, const char *want, size_t n) {
  assert_int_equal(s.len, n);
  assert_memory_equal(s.ptr, want, n);
}

static void values(void **st) {
  (void)st;
  assert_int_equal(parse("null")->type, LT_JD_NULL);
  assert_int_equal(parse(" true ")->type, LT_JD_TRUE);
  assert_int_equal(parse("\tfalse\r\n")->type, LT_JD_FALSE);
  assert_int_equal(parse("\"\"")->type, LT_JD_STRING);
  assert_int_equal(parse("[]")->n, 0);
  assert_int_equal(parse("{}")->n, 0);
  lt_jd_t *j = parse("{\"a\":1,\"b\":[true,null,\"x\",{\"c\":-2.5e3}],\"a\":\"last\"}");
  assert_int_equal(j->type, LT_JD_OBJECT);
  assert_int_equal(j->n, 3);
  /* members keep their order; a repeated name finds the last one */
  assert_str(j->first->key, "a", 1);
  assert_str(j->first->next->key, "b", 1);
  assert_str(lt_jd_gets(j, "a"), "last", 4);
  lt_jd_t *b = lt_jd_get(j, "b");
  assert_int_equal(b->n, 4);
  assert_int_equal(lt_jd_at(b, 0)->type, LT_JD_TRUE);
  assert_int_equal(lt_jd_at(b, 1)->type, LT_JD_NULL);
  assert_str(lt_jd_str(lt_jd_at(b, 2)), "x", 1);
  assert_null(lt_jd_at(b, 4));
  double d = 0;
  assert_true(lt_jd_double(lt_jd_get(lt_jd_at(b, 3), "c"), &d));
  assert_true(d == -2500.0);
  /* accessors take NULL and wrong types */
  assert_null(lt_jd_get(NULL, "a"));
  assert_null(lt_jd_get(b, "a"));
  assert_null(lt_jd_at(j, 0));
  assert_int_equal(lt_jd_gets(j, "b").len, 0);
  assert_null(lt_jd_gets(NULL, "x").ptr);
  size_t n = 0;
  LT_JD_EACH(e, b) n++;
  assert_int_equal(n, 4);
  LT_JD_EACH(e, lt_jd_get(j, "a")) fail();
  LT_JD_EACH(e, (lt_jd_t *)NULL) fail();
}

static void numbers(void **st) {
  (void)st;
  static const struct {
    const char *text;
    bool is_int;
    int64_t i;
  } cases[] = {
    {"0", true, 0}, {"-0", true, 0}, {"42", true, 42}, {"-17", true, -17},
    {"9223372036854775807", true, INT64_MAX}, {"-9223372036854775808", true, INT64_MIN},
    {"9223372036854775808", false, 0}, {"-9223372036854775809", false, 0}, {"123456789012345678901234", false, 0},
    {"1.0", false, 0}, {"1e2", false, 0}, {"1E+2", false, 0}, {"0.5e-3", false, 0},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    lt_jd_t *j = parse(cases[k].text);
    assert_int_equal(j->type, LT_JD_NUMBER);
    assert_str(j->str, cases[k].text, strlen(cases[k].text)); /* the text as written */
    int64_t i = 7;
    assert_int_equal(lt_jd_int(j, &i), cases[k].is_int);
    if (cases[k].is_int) assert_true(i == cases[k].i);
    double d;
    assert_true(lt_jd_double(j, &d));
    assert_string_equal(written(j), cases[k].text);
  }
  double d;
  assert_true(lt_jd_double(parse("1e2"), &d) && d == 100.0);
  assert_true(lt_jd_double(parse("0.5e-3"), &d) && d == 0.0005);
  assert_false(lt_jd_int(parse("\"1\""), &(int64_t){0}));
  assert_false(lt_jd_double(parse("true"), &d));
  /* a long number is read in full, not cut at a buffer's size */
  char big[200];
  memset(big, '0', sizeof big);
  big[0] = '0';
  big[1] = '.';
  big[sizeof big - 2] = '5';
  big[sizeof big - 1] = '\0';
  assert_true(lt_jd_double(parse(big), &d) && d > 0);
}

static void escapes(void **st) {
  (void)st;
  lt_jd_t *j = parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"");
  assert_str(j->str, "a\"b\\c/d\b\f\n\r\t", 12);
  assert_str(parse("\"caf\\u00e9\"")->str, "caf\xc3\xa9", 5);
  assert_str(parse("\"\\u20AC\"")->str, "\xe2\x82\xac", 3);
  assert_str(parse("\"\\u0041\\u007a\"")->str, "Az", 2);
  /* a surrogate pair is one character (U+1F600) */
  assert_str(parse("\"\\ud83d\\ude00!\"")->str, "\xf0\x9f\x98\x80!", 5);
  assert_str(parse("\"\\uDBFF\\uDFFF\"")->str, "\xf4\x8f\xbf\xbf", 4);
  /* NUL is a character like any other: the length says where strings end */
  assert_str(parse("\"a\\u0000b\"")->str, "a\0b", 3);
  /* raw UTF-8 passes through, and a string without escapes is the input's bytes */
  const char *in = "[\"na\xc3\xafve \xf0\x9f\x98\x80\"]";
  lt_jd_t *arr = parse(in);
  assert_str(arr->first->str, "na\xc3\xafve \xf0\x9f\x98\x80", 11);
  assert_ptr_equal(arr->first->str.ptr, in + 2);
  /* escaped member names are decoded too */
  assert_non_null(lt_jd_get(parse("{\"k\\u00e9y\":1}"), "k\xc3\xa9y"));
}

static void rejects(void **st) {
  (void)st;
  static const char *const bad[] = {
    "", " ", "{", "}", "[", "[1,]", "[,1]", "[1 2]", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":}", "{1:2}", "{a:1}",
    "{\"a\":1 \"b\":2}", "'a'", "01", "-01", "1.", ".5", "+1", "-", "1e", "1e+", "0x10", "NaN", "Infinity",
    "-Infinity", "tru", "nul", "True", "nulls", "[1] x", "1 2", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"",
    "\"\\\"", "\"a\nb\"", "\"a\tb\"", "\"\x7f\x01\"", "\"\xff\"", "\"\xc0\xaf\"", "\"\xe0\x80\xaf\"",
    "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xc3\"", "\"\xe2\x82\"", "\"\\ud800\"", "\"\\udc00\"",
    "\"\\ud800\\u0041\"", "\"\\ud800\\n\"", "\"\\ud83d\"x", "\xef\xbb\xbf{}", "[\"a\"]]", "{\"a\":1}}", "/* */1",
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    lt_jd_t *j = (lt_jd_t *)1;
    lt_jd_err_t err = {0, NULL};
    int rc = lt_jd_parse(arena, bad[k], strlen(bad[k]), NULL, &j, &err);
    if (rc != LT_EDECODE) fail_msg("accepted (or wrong error %d): '%s'", rc, bad[k]);
    assert_null(j);
    assert_non_null(err.msg);
    assert_true(err.pos <= strlen(bad[k]));
  }
  /* NUL bytes in the input are not JSON either */
  lt_jd_t *j;
  assert_int_equal(lt_jd_parse(arena, "[1]\0", 4, NULL, &j, NULL), LT_EDECODE);
  assert_int_equal(lt_jd_parse(arena, "\"a\0\"", 4, NULL, &j, NULL), LT_EDECODE);
  lt_jd_err_t err;
  assert_int_equal(lt_jd_parse(arena, "[1, 2, x]", 9, NULL, &j, &err), LT_EDECODE);
  assert_int_equal(err.pos, 7);
}

static void limits(void **st) {
  (void)st;
  char deep[300];
  lt_jd_t *j;
  /* 64 levels by default; 65 is too deep */
  for (int depth = 64; depth <= 65; depth++) {
    for (int i = 0; i < depth; i++) deep[i] = '[', deep[depth + i] = ']';
    deep[2 * depth] = '\0';
    int rc = lt_jd_parse(arena, deep, strlen(deep), NULL, &j, NULL);
    assert_int_equal(rc, depth == 64 ? 0 : LT_EDECODE);
  }
  lt_jd_opts_t o = {.max_depth = 2};
  assert_int_equal(lt_jd_parse(arena, "[{}]", 4, &o, &j, NULL), 0);
  assert_int_equal(lt_jd_parse(arena, "[{\"a\":[]}]", 10, &o, &j, NULL), LT_EDECODE);
  assert_int_equal(lt_jd_parse(arena, "[[1],[2]]", 9, &o, &j, NULL), 0); /* depth, not count */
  o = (lt_jd_opts_t){.max_bytes = 8};
  assert_int_equal(lt_jd_parse(arena, "[1,2,3]", 7, &o, &j, NULL), 0);
  assert_int_equal(lt_jd_parse(arena, "[1,2,3,4]", 9, &o, &j, NULL), LT_ETOOBIG);
  /* the arena's cap bounds the tree */
  lt_arena_t *small = lt_arena_create(512);
  assert_int_equal(lt_jd_parse(small, "[1,2,3,4,5,6,7,8,9,10,11,12]", 28, NULL, &j, NULL), LT_ENOMEM);
  lt_arena_destroy(small);
}

static void writing(void **st) {
  (void)st;
  /* compact input comes back as it was, escapes and number text included */
  static const char *const same[] = {
    "{\"a\":[1,2.50,-0,1E+9],\"b\":{\"c\":null,\"d\":true,\"e\":false},\"f\":\"\\u00e9\\n\\/\",\"a\":[]}",
    "[]", "{}", "\"\"", "0", "[[[]],{}]", "\"\xf0\x9f\x98\x80\\ud83d\\ude00\"",
  };
  for (size_t k = 0; k < sizeof same / sizeof same[0]; k++) assert_string_equal(written(parse(same[k])), same[k]);
  /* whitespace goes; inner compact parts are copied */
  assert_string_equal(written(parse(" { \"a\" : [ 1 , { \"b\" : \"x y\" } ] ,\n\"c\":{\"d\":[1,2]} } ")),
                      "{\"a\":[1,{\"b\":\"x y\"}],\"c\":{\"d\":[1,2]}}");
  /* escaped names are written escaped again */
  assert_string_equal(written(parse("{ \"a\\\"b\\u0001\" : 1 }")), "{\"a\\\"b\\u0001\":1}");
  /* a node built by hand (no input bytes) is escaped from its value */
  lt_jd_t s = {.type = LT_JD_STRING, .str = LT_STR("say \"hi\"\n")};
  assert_string_equal(written(&s), "\"say \\\"hi\\\"\\n\"");
  assert_string_equal(written(NULL), "null");
  /* parse → write → parse → write is stable */
  const char *in = "[ {\"k\" : \"v\\u0000\\t\", \"n\": [ 1e5 , -3.25 ] }, \"\\ud83d\\ude00\", null ]";
  char first[256];
  snprintf(first, sizeof first, "%s", written(parse(in)));
  assert_string_equal(written(parse(first)), first);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(values),  cmocka_unit_test(numbers), cmocka_unit_test(escapes),
    cmocka_unit_test(rejects), cmocka_unit_test(limits),  cmocka_unit_test(writing),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
