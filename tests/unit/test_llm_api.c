/* The proxy's reading of LLM API streams: the fast path for text deltas
 * must give exactly what the full JSON parse gives, on realistic streams
 * and on the shapes it must leave alone. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "core/mem.h"
#include "proxy/llm_api.h"
#include "proxy/sse.h"

typedef struct {
  lt_llm_call_t *c;
  lt_buf_t scratch;
  lt_buf_t forwarded;
  int64_t t;
} feed_t;

static int on_event(void *ud, const lt_sse_event_t *ev) {
  feed_t *f = ud;
  bool drop = false;
  const char *out;
  size_t n;
  lt_llm_event(f->c, ev, f->t++, &drop, &f->scratch, &out, &n);
  if (!drop) lt_buf_append(&f->forwarded, out, n);
  return 0;
}

/* Runs a stream through a call state, with or without the fast path. */
static void run(lt_llm_call_t *c, lt_llm_api_t api, const char *request, const char *stream, bool fast,
                lt_buf_t *forwarded) {
  lt_llm_fast_path = fast;
  lt_llm_init(c, api);
  char *nb = NULL;
  size_t nbl = 0;
  assert_int_equal(lt_llm_request(c, request, strlen(request), true, &nb, &nbl), 0);
  lt_free(nb);
  feed_t f = {.c = c, .t = 1000};
  lt_buf_init(&f.scratch, 1 << 20);
  lt_buf_init(&f.forwarded, 1 << 20);
  lt_sse_t s;
  lt_sse_init(&s, 1 << 20);
  assert_int_equal(lt_sse_feed(&s, stream, strlen(stream), on_event, &f), 0);
  assert_int_equal(lt_sse_finish(&s, on_event, &f), 0);
  lt_sse_free(&s);
  lt_buf_free(&f.scratch);
  *forwarded = f.forwarded;
  lt_llm_fast_path = true;
}

static void assert_same_buf(const lt_buf_t *x, const lt_buf_t *y) {
  assert_int_equal(x->len, y->len);
  if (x->len) assert_memory_equal(x->ptr, y->ptr, x->len);
}

/* What the client received in the last assert_same (the fast path's run). */
static lt_buf_t last_forwarded;

/* Returns how many events the fast path read. want_text, when not NULL, is
 * the streamed text both paths must have collected (so the two cannot
 * agree on losing it). */
static unsigned assert_same(lt_llm_api_t api, const char *request, const char *stream, const char *want_text) {
  lt_llm_call_t a, b;
  lt_buf_t fa, fb;
  run(&a, api, request, stream, true, &fa);
  run(&b, api, request, stream, false, &fb);
  unsigned fast = a.fast_events;
  assert_int_equal(b.fast_events, 0);
  assert_int_equal(a.text.len, b.text.len);
  if (a.text.len) assert_memory_equal(a.text.ptr, b.text.ptr, a.text.len);
  if (want_text) {
    assert_int_equal(a.text.len, strlen(want_text));
    if (a.text.len) assert_memory_equal(a.text.ptr, want_text, a.text.len);
  }
  assert_int_equal(a.first_token_ns, b.first_token_ns);
  assert_string_equal(a.model, b.model);
  assert_string_equal(a.response_id, b.response_id);
  assert_string_equal(a.finish, b.finish);
  assert_string_equal(a.stream_error, b.stream_error);
  assert_int_equal(a.has_usage, b.has_usage);
  assert_memory_equal(a.usage, b.usage, sizeof a.usage);
  assert_int_equal(a.n_tools, b.n_tools);
  for (size_t i = 0; i < a.n_tools; i++) {
    assert_same_buf(&a.tools[i].id, &b.tools[i].id);
    assert_same_buf(&a.tools[i].name, &b.tools[i].name);
    assert_same_buf(&a.tools[i].arguments, &b.tools[i].arguments);
  }
  /* What the client receives does not depend on the path either. */
  assert_int_equal(fa.len, fb.len);
  if (fa.len) assert_memory_equal(fa.ptr, fb.ptr, fa.len);
  lt_buf_free(&last_forwarded);
  last_forwarded = fa;
  lt_buf_free(&fb);
  lt_llm_free(&a);
  lt_llm_free(&b);
  return fast;
}

static const char chat_req[] =
    "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

#define CHUNK(delta, finish, usage)                                                                         \
  "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\"," \
  "\"choices\":[{\"index\":0,\"delta\":" delta ",\"logprobs\":null,\"finish_reason\":" finish "}],"        \
  "\"usage\":" usage "}\n\n"

static void openai_text_stream(void **st) {
  (void)st;
  /* "Hello" and the escapes: fast; the role chunk, \u escapes, raw UTF-8,
   * the finish and usage chunks: full parse. */
  assert_int_equal(assert_same(LT_API_OPENAI_CHAT, chat_req,
              CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null", "null")
              CHUNK("{\"content\":\"Hello\"}", "null", "null")
              CHUNK("{\"content\":\", \\\"world\\\"\\n\\ttab\\\\ /\"}", "null", "null")
              CHUNK("{\"content\":\"caf\\u00e9 \\ud83d\\ude00\"}", "null", "null")
              CHUNK("{\"content\":\"caf\xc3\xa9 raw\"}", "null", "null")
              CHUNK("{}", "\"stop\"", "null")
              "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
              "\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":5,"
              "\"total_tokens\":14}}\n\n"
              "data: [DONE]\n\n",
              "Hello, \"world\"\n\ttab\\ /caf\xc3\xa9 \xf0\x9f\x98\x80" "caf\xc3\xa9 raw"), 2);
}

static void openai_shapes_left_to_the_full_parse(void **st) {
  (void)st;
  /* tool calls, two choices, a refusal, reasoning, an error object, other key orders */
  assert_int_equal(assert_same(LT_API_OPENAI_CHAT, chat_req,
              CHUNK("{\"role\":\"assistant\",\"content\":null}", "null", "null")
              CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":"
                    "{\"name\":\"get_weather\",\"arguments\":\"\"}}]}", "null", "null")
              CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]}", "null", "null")
              "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null},"
              "{\"index\":1,\"delta\":{\"content\":\"b\"},\"finish_reason\":null}]}\n\n"
              "data: {\"choices\":[{\"delta\":{\"content\":\"reordered\"},\"index\":0,\"finish_reason\":null}]}\n\n"
              CHUNK("{\"reasoning_content\":\"thinking\"}", "null", "null")
              CHUNK("{\"content\":\"x\"}", "null", "{\"prompt_tokens\":1}")
              "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n"
              CHUNK("{}", "\"tool_calls\"", "null"), "areorderedx"), 0);
}

static void openai_usage_we_asked_for_is_stripped_alike(void **st) {
  (void)st;
  /* The request did not ask for usage: the proxy adds it, so the upstream
   * puts "usage":null on every chunk, which both paths must remove. */
  static const char req[] = "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[]}";
  assert_int_equal(assert_same(LT_API_OPENAI_CHAT, req,
              CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null", "null")
              CHUNK("{\"content\":\"one\"}", "null", "null")
              CHUNK("{\"content\":\"two\"}", "null", "null")
              CHUNK("{}", "\"stop\"", "null")
              "data: {\"id\":\"c\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
              "\"completion_tokens\":2,\"total_tokens\":5}}\n\n"
              "data: [DONE]\n\n", "onetwo"), 2);
  assert_null(strstr(last_forwarded.ptr, "\"usage\""));
}

static void openai_fast_path_takes_only_its_exact_shape(void **st) {
  (void)st;
  static const char req[] = "{\"model\":\"m\",\"stream\":true,\"messages\":[]}";
#define EV(body) "data: " body "\n\n"
  /* fast: with or without logprobs, usage null at the end (stripped: we asked);
   * the first chunk is read in full, later ones repeat its id and model */
  assert_int_equal(assert_same(LT_API_OPENAI_CHAT, req,
              EV("{\"id\":\"c\\\"q\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}],\"usage\":null}")
              EV("{\"id\":\"c\\\"q\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}],\"usage\":null}")
              EV("{\"id\":\"c\\\"q\",\"created\":12,\"x\":true,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"},\"logprobs\":null,\"finish_reason\":null}]}")
              EV("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"c\"},\"finish_reason\":null}],\"usage\":null}"), "abc"), 3);
  assert_null(strstr(last_forwarded.ptr, "\"usage\""));
  /* full parse: usage or an object before the choices, spaces, more after the
   * delta or the choice, another member after usage, a finished choice */
  assert_int_equal(assert_same(LT_API_OPENAI_CHAT, req,
              EV("{\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}")
              EV("{\"usage\":null,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}")
              EV("{\"meta\":{\"k\":1},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"},\"finish_reason\":null}]}")
              EV("{\"id\": \"c\", \"choices\":[{\"index\":0,\"delta\":{\"content\":\"c\"},\"finish_reason\":null}]}")
              EV("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"d\",\"refusal\":null},\"finish_reason\":null}]}")
              EV("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"e\"},\"finish_reason\":null},{\"index\":1,\"delta\":{}}]}")
              EV("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"f\"},\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"x\"}")
              EV("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"g\"},\"finish_reason\":\"stop\"}]}")
              EV("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\"},\"finish_reason\":null}],\"usage\":{\"total_tokens\":3}}"), "abcdefgh"), 0);
  /* The first chunk is read in full even when it is a plain text delta: the
   * response's model and id come from it. */
  assert_int_equal(assert_same(LT_API_OPENAI_CHAT, req,
              EV("{\"id\":\"c1\",\"model\":\"m-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}")
              EV("{\"id\":\"c1\",\"model\":\"m-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"},\"finish_reason\":null}]}"), "ab"), 1);
#undef EV
}

static void anthropic_streams(void **st) {
  (void)st;
  static const char req[] = "{\"model\":\"claude-3-5-haiku-latest\",\"stream\":true,\"max_tokens\":10,"
                            "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  assert_int_equal(assert_same(LT_API_ANTHROPIC_MESSAGES, req,
              "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
              "\"model\":\"claude-3-5-haiku-20241022\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n"
              "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
              "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
              "event: ping\ndata: {\"type\":\"ping\"}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
              "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello \\\"there\\\"\"}}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
              "\"delta\":{\"text\":\"key order\",\"type\":\"text_delta\"}}\n\n"
              "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
              "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
              "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Paris\\\"}\"}}\n\n"
              "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},"
              "\"usage\":{\"output_tokens\":12}}\n\n"
              "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
              "Hello \"there\"key order"), 1);
}

int main(void) {
  json_set_alloc_funcs(lt_malloc, lt_free);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(openai_text_stream),
    cmocka_unit_test(openai_shapes_left_to_the_full_parse),
    cmocka_unit_test(openai_usage_we_asked_for_is_stripped_alike),
    cmocka_unit_test(openai_fast_path_takes_only_its_exact_shape),
    cmocka_unit_test(anthropic_streams),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  lt_buf_free(&last_forwarded);
  return rc;
}
