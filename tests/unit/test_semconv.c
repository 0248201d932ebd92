/* Unit tests for the semantic-convention mapping (model/semconv.h): one
 * span per dialect and shape built as decoded OTLP structures, with the
 * canonical fields and JSON payloads checked byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/err.h"
#include "model/json_out.h"
#include "core/mem.h"
#include "model/semconv.h"

/* ---- building decoded OTLP by hand ---------------------------------------------- */

#define S(x) ((lt_val_t){.type = LT_VAL_STR, .u.s = LT_STR(x)})
#define I(x) ((lt_val_t){.type = LT_VAL_INT, .u.i = (x)})
#define D(x) ((lt_val_t){.type = LT_VAL_DOUBLE, .u.d = (x)})
#define B(x) ((lt_val_t){.type = LT_VAL_BOOL, .u.b = (x)})
#define COUNT_OF(T, ...) (sizeof((T[]){__VA_ARGS__}) / sizeof(T))
#define ARR(...) \
  ((lt_val_t){.type = LT_VAL_ARRAY, .u.arr = {(lt_val_t[]){__VA_ARGS__}, COUNT_OF(lt_val_t, __VA_ARGS__)}})
#define KVL(...) \
  ((lt_val_t){.type = LT_VAL_KVLIST, .u.kv = {(lt_kv_t[]){__VA_ARGS__}, COUNT_OF(lt_kv_t, __VA_ARGS__)}})
#define KV(k, v) {LT_STR(k), v}
#define ATTRS(...) ((lt_attrs_t){(lt_kv_t[]){__VA_ARGS__}, COUNT_OF(lt_kv_t, __VA_ARGS__)})
#define EVENT(n, t, ...) {(t), LT_STR(n), ATTRS(__VA_ARGS__)}
#define NO_ATTRS ((lt_attrs_t){NULL, 0})

static const lt_otlp_scope_t scope = {LT_STR("openinference.instrumentation.openai"), LT_STR("1.0"), {NULL, 0}};

static lt_otlp_span_t mkspan(lt_attrs_t attrs) {
  lt_otlp_span_t s;
  memset(&s, 0, sizeof s);
  for (int i = 0; i < 16; i++) s.trace_id[i] = (uint8_t)(i + 1);
  for (int i = 0; i < 8; i++) s.span_id[i] = (uint8_t)(0xa0 + i);
  s.name = LT_STR("span");
  s.kind = 3;
  s.start_ns = 1000;
  s.end_ns = 5000;
  s.attrs = attrs;
  return s;
}

/* Asserts a slice equals want (NULL: empty), showing both when not. */
static void eq(lt_str_t s, const char *want) {
  size_t n = want ? strlen(want) : 0;
  bool same = s.len == n && (n == 0 || memcmp(s.ptr, want, n) == 0);
  if (!same) fprintf(stderr, "got:  %.*s\nwant: %s\n", (int)s.len, s.len ? s.ptr : "", want ? want : "(empty)");
  assert_true(same);
}

static lt_arena_t *arena;
static lt_semconv_resource_t res;

static int setup(void **st) {
  arena = lt_arena_create(64u << 20);
  if (!arena) return -1;
  static lt_attrs_t rattrs;
  rattrs = ATTRS(KV("service.name", S("chatbot")), KV("deployment.environment.name", S("prod")),
                 KV("service.version", S("1.2.3")));
  return lt_semconv_resource(arena, &rattrs, &res) == 0 ? 0 : -1;
}

static int teardown(void **st) {
  lt_arena_destroy(arena);
  arena = NULL;
  return 0;
}

static lt_span_t map(const lt_otlp_span_t *in) {
  lt_span_t out;
  assert_int_equal(lt_semconv_span(arena, &res, &scope, in, &out), 0);
  return out;
}

/* ---- spans ------------------------------------------------------------------------------ */

static void resource_context(void **st) {
  eq(res.service, "chatbot");
  eq(res.environment, "prod");
  eq(res.release, "1.2.3");
  eq(res.resource_json, "{\"service.name\":\"chatbot\",\"deployment.environment.name\":\"prod\","
                        "\"service.version\":\"1.2.3\"}");
  lt_semconv_resource_t empty;
  assert_int_equal(lt_semconv_resource(arena, NULL, &empty), 0);
  eq(empty.resource_json, NULL);
  eq(empty.service, NULL);
}

static void openinference_llm(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("openinference.span.kind", S("LLM")), KV("llm.model_name", S("gpt-4o-mini")),
      KV("llm.provider", S("azure")), KV("llm.system", S("openai")),
      KV("llm.input_messages.0.message.role", S("system")),
      KV("llm.input_messages.0.message.content", S("Be brief.")),
      KV("llm.input_messages.1.message.role", S("user")),
      KV("llm.input_messages.1.message.contents.0.message_content.type", S("text")),
      KV("llm.input_messages.1.message.contents.0.message_content.text", S("What is in this image?")),
      KV("llm.input_messages.1.message.contents.1.message_content.type", S("image")),
      KV("llm.input_messages.1.message.contents.1.message_content.image.image.url", S("https://x/cat.png")),
      /* index 10 sorts before 2 as text; messages must come out in numeric order */
      KV("llm.input_messages.10.message.role", S("tool")),
      KV("llm.input_messages.10.message.content", S("18C")),
      KV("llm.input_messages.10.message.tool_call_id", S("call_0")),
      KV("llm.input_messages.2.message.role", S("user")), KV("llm.input_messages.2.message.content", S("two")),
      KV("llm.output_messages.0.message.role", S("assistant")),
      KV("llm.output_messages.0.message.tool_calls.0.tool_call.id", S("call_1")),
      KV("llm.output_messages.0.message.tool_calls.0.tool_call.function.name", S("get_weather")),
      KV("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments", S("{\"city\":\"Paris\"}")),
      KV("llm.token_count.prompt", I(12)), KV("llm.token_count.completion", I(5)),
      KV("llm.token_count.prompt_details.cache_read", I(4)),
      KV("llm.token_count.completion_details.reasoning", I(2)), KV("llm.cost.total", D(0.0066)),
      KV("llm.cost.prompt", D(0.0021)), KV("llm.finish_reason", S("tool_calls")),
      KV("llm.prompt_template.version", S("v2")), KV("session.id", S("s1")), KV("user.id", I(42)),
      KV("metadata", S("{\"team\":\"search\",\"n\":1}")), KV("tag.tags", ARR(S("a"), S("b"))),
      KV("input.value", S("What is in this image?")), KV("deployment.environment", S("staging"))));
  lt_span_t s = map(&in);
  assert_int_equal(s.kind, LT_KIND_LLM);
  assert_int_equal(s.otel_kind, 3);
  assert_int_equal(s.start_ns, 1000);
  assert_int_equal(s.end_ns, 5000);
  assert_int_equal(s.status, LT_STATUS_UNSET);
  assert_memory_equal(s.trace_id, in.trace_id, 16);
  assert_memory_equal(s.span_id, in.span_id, 8);
  assert_false(s.has_parent);
  eq(s.name, "span");
  eq(s.scope, "openinference.instrumentation.openai");
  eq(s.service, "chatbot");
  eq(s.environment, "staging"); /* the span's value beats the resource's */
  eq(s.release, "1.2.3");
  eq(s.request_model, "gpt-4o-mini");
  eq(s.response_model, "gpt-4o-mini");
  eq(s.provider, "azure");
  eq(s.operation, NULL);
  assert_int_equal(s.tokens[LT_TOK_INPUT], 12);
  assert_int_equal(s.tokens[LT_TOK_OUTPUT], 5);
  assert_int_equal(s.tokens[LT_TOK_TOTAL], 17); /* not reported: input + output */
  assert_int_equal(s.tokens[LT_TOK_CACHE_READ], 4);
  assert_int_equal(s.tokens[LT_TOK_CACHE_WRITE], -1);
  assert_int_equal(s.tokens[LT_TOK_REASONING], 2);
  assert_int_equal(s.cost_source, LT_COST_REPORTED);
  assert_int_equal(s.cost_total, 6600000);
  assert_int_equal(s.cost_input, 2100000);
  assert_int_equal(s.cost_output, -1);
  assert_int_equal(s.ttft_ns, -1);
  eq(s.finish_reason, "tool_calls");
  eq(s.prompt_version, "v2");
  eq(s.session_id, "s1");
  eq(s.user_id, "42");
  eq(s.tags, "[\"a\",\"b\"]");
  eq(s.metadata, "{\"team\":\"search\",\"n\":1}");
  eq(s.input, "What is in this image?");
  eq(s.input_messages,
     "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
     "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is in this image?\"},"
     "{\"type\":\"image\",\"url\":\"https://x/cat.png\"}]},"
     "{\"role\":\"user\",\"content\":\"two\"},"
     "{\"role\":\"tool\",\"content\":\"18C\",\"tool_call_id\":\"call_0\"}]");
  eq(s.output_messages, "[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\",\"name\":\"get_weather\","
                        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}]}]");
  eq(s.output, "get_weather({\"city\":\"Paris\"})"); /* from the messages */
  eq(s.documents, NULL);
  eq(s.resource, res.resource_json.ptr);
  eq(s.events, NULL);
  eq(s.links, NULL);
  /* raw attributes are kept, typed, in their order */
  assert_non_null(strstr(s.attributes.ptr, "{\"openinference.span.kind\":\"LLM\",\"llm.model_name\":\"gpt-4o-mini\","));
  assert_non_null(strstr(s.attributes.ptr, "\"llm.cost.total\":0.0066,"));
  assert_non_null(strstr(s.attributes.ptr, "\"tag.tags\":[\"a\",\"b\"],"));
  assert_null(strstr(s.attributes.ptr, "lanterna.warnings"));
}

static void openinference_retriever(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("openinference.span.kind", S("RETRIEVER")), KV("input.value", S("capital of France")),
      KV("retrieval.documents.0.document.id", S("doc-1")),
      KV("retrieval.documents.0.document.content", S("Paris is the capital.")),
      KV("retrieval.documents.0.document.score", D(0.98)),
      KV("retrieval.documents.0.document.metadata", S("{\"source\":\"wiki\"}")),
      KV("retrieval.documents.1.document.id", I(7)),
      KV("retrieval.documents.1.document.content", S("France is in Europe.")),
      KV("retrieval.documents.1.document.score", I(1)),
      KV("retrieval.documents.1.document.metadata", S("{'author': 'John Doe'}")),
      KV("retrieval.documents.2.document.content", S("Lyon is big.")),
      KV("retrieval.documents.2.document.score", S("not a score"))));
  lt_span_t s = map(&in);
  assert_int_equal(s.kind, LT_KIND_RETRIEVER);
  eq(s.input, "capital of France");
  eq(s.documents, "[{\"id\":\"doc-1\",\"content\":\"Paris is the capital.\",\"score\":0.98,"
                  "\"metadata\":{\"source\":\"wiki\"}},"
                  "{\"id\":\"7\",\"content\":\"France is in Europe.\",\"score\":1.0,"
                  "\"metadata\":\"{'author': 'John Doe'}\"},"
                  "{\"content\":\"Lyon is big.\"}]");
  eq(s.input_messages, NULL);
  eq(s.output, NULL);
  eq(s.request_model, NULL);
  assert_int_equal(s.tokens[LT_TOK_TOTAL], -1);
  assert_int_equal(s.cost_source, LT_COST_UNKNOWN);
  assert_int_equal(s.cost_total, 0);

  /* GenAI's own form: one JSON attribute; unusable elements are skipped */
  lt_otlp_span_t in2 = mkspan(ATTRS(
      KV("gen_ai.operation.name", S("retrieval")),
      KV("gen_ai.retrieval.documents", S("[{\"id\":\"d1\",\"score\":0.9},{\"id\":2,\"score\":\"x\","
                                         "\"content\":\"c\"},5]"))));
  lt_span_t s2 = map(&in2);
  assert_int_equal(s2.kind, LT_KIND_RETRIEVER);
  eq(s2.documents, "[{\"id\":\"d1\",\"score\":0.9},{\"id\":\"2\",\"content\":\"c\"}]");
}

/* Text attributes of 64+ bytes that are byte for byte a canonical field
 * (input, a message's content, a document's content) are left out of the
 * stored attributes and named in elided; short ones and near-misses stay. */
#define LONG_Q "What is the capital of France, and which river runs through it? Answer briefly."
#define LONG_A "Paris is the capital of France, and the Seine runs through the middle of it."
#define LONG_D "Paris is the capital and most populous city of France, on the Seine river."
static void long_texts_are_stored_once(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("openinference.span.kind", S("LLM")), KV("input.value", S(LONG_Q)), KV("output.value", S(LONG_A)),
      KV("llm.input_messages.0.message.role", S("user")),
      KV("llm.input_messages.0.message.content", S(LONG_Q " (as a message)")),
      KV("llm.output_messages.0.message.role", S("assistant")),
      KV("llm.output_messages.0.message.content", S(LONG_A)),
      KV("retrieval.documents.0.document.content", S(LONG_D)),
      KV("short", S("Paris")), KV("near", S(LONG_Q "!"))));
  lt_span_t s = map(&in);
  eq(s.input, LONG_Q);
  eq(s.output, LONG_A);
  /* Canonical fields are offered in turn (messages, documents, input,
   * output); each takes the first attribute not yet taken that holds the
   * same bytes, so the output message and output.value, both the answer,
   * point at either field holding it. */
  eq(s.elided, "{\"llm.input_messages.0.message.content\":\"/input_messages/0/content\","
               "\"output.value\":\"/output_messages/0/content\","
               "\"retrieval.documents.0.document.content\":\"/documents/0/content\","
               "\"input.value\":\"/input\",\"llm.output_messages.0.message.content\":\"/output\"}");
  assert_null(strstr(s.attributes.ptr, "input.value"));
  assert_null(strstr(s.attributes.ptr, "message.content"));
  assert_null(strstr(s.attributes.ptr, "document.content"));
  assert_non_null(strstr(s.attributes.ptr, "\"short\":\"Paris\""));
  assert_non_null(strstr(s.attributes.ptr, "\"near\":\"" LONG_Q "!\""));
  assert_non_null(strstr(s.attributes.ptr, "\"llm.input_messages.0.message.role\":\"user\""));
}

/* Flattened lists of plain text values (the bulk of OpenInference traffic)
 * are written straight to JSON; these pin that output, which must be what
 * the general tree path gives for the same input. */
static void flat_lists_plain_text(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("llm.input_messages.0.message.role", S("system")),
      KV("llm.input_messages.0.message.content", S("Quote \"exactly\",\ttab\nnew line \xc3\xa9 \x01 \xff")),
      /* index 1 absent; a message with only a name is dropped */
      KV("llm.input_messages.2.message.role", S("user")), KV("llm.input_messages.2.message.content", S("")),
      KV("llm.input_messages.3.message.name", S("nobody")),
      KV("llm.input_messages.4.message.role", S("assistant")),
      KV("llm.input_messages.4.message.tool_calls.0.tool_call.id", S("call_1")),
      KV("llm.input_messages.4.message.tool_calls.0.tool_call.function.name", S("lookup")),
      KV("llm.input_messages.4.message.tool_calls.0.tool_call.function.arguments", S("{\"q\": 1}")),
      KV("llm.input_messages.4.message.tool_calls.1.tool_call.function.arguments", S("{}")),
      KV("llm.input_messages.5.message.role", S("tool")), KV("llm.input_messages.5.message.content", S("found")),
      KV("llm.input_messages.5.message.tool_call_id", S("call_1")),
      KV("llm.input_messages.5.message.name", S("lookup")),
      KV("llm.output_messages.0.message.role", S("assistant")),
      KV("llm.output_messages.0.message.function_call_name", S("f")),
      KV("llm.output_messages.0.message.function_call_arguments_json", S("{\"a\":1}")),
      KV("retrieval.documents.0.document.id", S("kb-1")),
      KV("retrieval.documents.0.document.content", S("Reset the router.")),
      KV("retrieval.documents.0.document.score", D(0.873)),
      KV("retrieval.documents.0.document.metadata", S("{\"source\": \"s3://kb/1.md\", \"page\": 29, \"ok\": true}")),
      KV("retrieval.documents.1.document.id", S("kb-2")), KV("retrieval.documents.1.document.score", D(3.0)),
      KV("retrieval.documents.1.document.metadata", S(" [1, \"a\", null] ")),
      KV("retrieval.documents.2.document.score", I(2)),
      KV("retrieval.documents.2.document.metadata", S("{\"nested\": {\"f\": 2.50, \"g\": 1e2}}")),
      KV("retrieval.documents.3.document.score", S("0.5")),
      KV("retrieval.documents.3.document.metadata", S("{'python': 'repr'}")),
      KV("retrieval.documents.4.document.score", S("high")),
      KV("retrieval.documents.5.document.metadata", S("{\"a\": 1, \"a\": 2, \"b\": -0}"))));
  lt_span_t s = map(&in);
  eq(s.input_messages,
     "[{\"role\":\"system\",\"content\":\"Quote \\\"exactly\\\",\\ttab\\nnew line \xc3\xa9 \\u0001 \xef\xbf\xbd\"},"
     "{\"role\":\"user\",\"content\":\"\"},"
     "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\",\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\": 1}\"},"
     "{\"arguments\":\"{}\"}]},"
     "{\"role\":\"tool\",\"content\":\"found\",\"tool_call_id\":\"call_1\",\"name\":\"lookup\"}]");
  eq(s.input, "Quote \"exactly\",\ttab\nnew line \xc3\xa9 \x01 \xff\n\nlookup({\"q\": 1})\nfound");
  eq(s.output_messages, "[{\"role\":\"assistant\",\"tool_calls\":[{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}]}]");
  eq(s.output, "f({\"a\":1})");
  eq(s.documents,
     "[{\"id\":\"kb-1\",\"content\":\"Reset the router.\",\"score\":0.873,"
     "\"metadata\":{\"source\":\"s3://kb/1.md\",\"page\":29,\"ok\":true}},"
     "{\"id\":\"kb-2\",\"score\":3.0,\"metadata\":[1,\"a\",null]},"
     "{\"score\":2.0,\"metadata\":{\"nested\":{\"f\":2.5,\"g\":100.0}}},"
     "{\"score\":0.5,\"metadata\":\"{'python': 'repr'}\"},"
     "{\"metadata\":{\"a\":2,\"b\":0}}]");
  eq(s.elided, NULL);
  assert_null(strstr(s.attributes.ptr, "lanterna.warnings"));

  /* the older GenAI flattening, with the first finish reason */
  lt_otlp_span_t in2 = mkspan(ATTRS(
      KV("gen_ai.prompt.0.role", S("user")), KV("gen_ai.prompt.0.content", S("Hi")),
      KV("gen_ai.completion.0.finish_reason", S("length")),
      KV("gen_ai.completion.1.role", S("assistant")), KV("gen_ai.completion.1.content", S("Hello")),
      KV("gen_ai.completion.1.finish_reason", S("stop")),
      KV("gen_ai.completion.1.tool_calls.0.name", S("f")), KV("llm.input_messages.1001.message.role", S("x"))));
  s = map(&in2);
  eq(s.input_messages, "[{\"role\":\"user\",\"content\":\"Hi\"}]");
  eq(s.output_messages, "[{\"role\":\"assistant\",\"content\":\"Hello\",\"tool_calls\":[{\"name\":\"f\"}]}]");
  eq(s.output, "Hello\nf()");
  eq(s.finish_reason, "length");
  assert_non_null(
      strstr(s.attributes.ptr, "\"lanterna.warnings\":[\"llm.input_messages: list index above 1000 ignored\"]"));
}

/* What plain text cannot express goes through the general path, with the
 * same result as ever: non-text values become JSON text, content parts
 * become a part list, and the rest of the list is unaffected. */
static void flat_lists_fall_back(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("llm.input_messages.0.message.role", S("user")), KV("llm.input_messages.0.message.content", S("plain")),
      KV("llm.input_messages.1.message.role", S("user")),
      KV("llm.input_messages.1.message.contents.0.message_content.type", S("text")),
      KV("llm.input_messages.1.message.contents.0.message_content.text", S("look")),
      KV("llm.input_messages.1.message.contents.1.message_content.image.image.url", S("https://x/y.png")),
      KV("llm.output_messages.0.message.role", S("assistant")),
      KV("llm.output_messages.0.message.content", ARR(S("a"), I(1))),
      KV("retrieval.documents.0.document.id", I(7)),
      KV("retrieval.documents.0.document.content", S("seven")),
      KV("retrieval.documents.0.document.metadata", KVL(KV("k", D(1.5))))));
  lt_span_t s = map(&in);
  eq(s.input_messages, "[{\"role\":\"user\",\"content\":\"plain\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
                       "{\"type\":\"image\",\"url\":\"https://x/y.png\"}]}]");
  eq(s.input, "plain\nlook");
  eq(s.output_messages, "[{\"role\":\"assistant\",\"content\":\"[\\\"a\\\",1]\"}]");
  eq(s.output, "[\"a\",1]");
  eq(s.documents, "[{\"id\":\"7\",\"content\":\"seven\",\"metadata\":{\"k\":1.5}}]");
}

/* Long message and document texts are elided from the attributes by the
 * attribute they came from, with lt__sc_elide's rule when another long
 * attribute could hold the same bytes: the first one in span order wins. */
#define LONG_M1 "The first message is long enough to be elided from the stored attributes."
#define LONG_M2 "The second message is another long text, stored once under its own pointer."
static void flat_lists_elide(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("llm.input_messages.0.message.role", S("system")),
      KV("llm.input_messages.0.message.content", S(LONG_M1)),
      KV("llm.input_messages.1.message.content", S("short")),
      KV("llm.input_messages.2.message.content", S(LONG_M2)),
      KV("retrieval.documents.3.document.content", S(LONG_D)),
      KV("llm.output_messages.0.message.content", S(LONG_A))));
  lt_span_t s = map(&in);
  eq(s.elided, "{\"llm.input_messages.0.message.content\":\"/input_messages/0/content\","
               "\"llm.input_messages.2.message.content\":\"/input_messages/2/content\","
               "\"llm.output_messages.0.message.content\":\"/output_messages/0/content\","
               "\"retrieval.documents.3.document.content\":\"/documents/0/content\"}");
  eq(s.attributes, "{\"llm.input_messages.0.message.role\":\"system\","
                   "\"llm.input_messages.1.message.content\":\"short\"}");

  /* the same bytes twice: input.value, earlier in the span, takes the
   * message's pointer and the message's own attribute takes /input */
  lt_otlp_span_t in2 = mkspan(ATTRS(
      KV("input.value", S(LONG_M1)), KV("llm.input_messages.1.message.content", S(LONG_M1)),
      KV("llm.input_messages.0.message.content", S(LONG_M1)), KV("other", S(LONG_M2))));
  s = map(&in2);
  eq(s.elided, "{\"input.value\":\"/input_messages/0/content\","
               "\"llm.input_messages.1.message.content\":\"/input_messages/1/content\","
               "\"llm.input_messages.0.message.content\":\"/input\"}");
  eq(s.attributes, "{\"other\":\"" LONG_M2 "\"}");
}

static void genai_current_chat(void **st) {
  /* input messages as a JSON string, output messages structured, as the
   * spec allows either */
  lt_val_t out_msgs = ARR(KVL(KV("role", S("assistant")),
                              KV("parts", ARR(KVL(KV("type", S("text")), KV("content", S("It is rainy."))))),
                              KV("finish_reason", S("stop"))));
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("gen_ai.operation.name", S("chat")), KV("gen_ai.provider.name", S("openai")),
      KV("gen_ai.request.model", S("gpt-4o")), KV("gen_ai.response.model", S("gpt-4o-2024-08-06")),
      KV("gen_ai.system_instructions", S("[{\"type\":\"text\",\"content\":\"You are a weather bot.\"}]")),
      KV("gen_ai.input.messages",
         S("[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"Weather in Paris?\"},"
           "{\"type\":\"uri\",\"modality\":\"image\",\"uri\":\"https://x/sky.png\"}]},"
           "{\"role\":\"assistant\",\"parts\":[{\"type\":\"tool_call\",\"id\":\"call_1\",\"name\":\"get_weather\","
           "\"arguments\":{\"location\":\"Paris\"}}]},"
           "{\"role\":\"tool\",\"parts\":[{\"type\":\"tool_call_response\",\"id\":\"call_1\","
           "\"response\":\"rainy, 57\xc2\xb0" "F\"}]}]")),
      KV("gen_ai.output.messages", out_msgs), KV("gen_ai.usage.input_tokens", I(100)),
      KV("gen_ai.usage.output_tokens", I(20)), KV("gen_ai.usage.cache_read.input_tokens", I(50)),
      KV("gen_ai.usage.cache_creation.input_tokens", I(10)),
      KV("gen_ai.usage.reasoning.output_tokens", I(8)), KV("gen_ai.response.finish_reasons", ARR(S("length"))),
      KV("gen_ai.response.time_to_first_chunk", D(0.25)), KV("gen_ai.conversation.id", S("conv_1")),
      KV("gen_ai.prompt.name", S("weather"))));
  lt_span_t s = map(&in);
  assert_int_equal(s.kind, LT_KIND_LLM);
  eq(s.operation, "chat");
  eq(s.provider, "openai");
  eq(s.request_model, "gpt-4o");
  eq(s.response_model, "gpt-4o-2024-08-06");
  assert_int_equal(s.tokens[LT_TOK_INPUT], 100);
  assert_int_equal(s.tokens[LT_TOK_OUTPUT], 20);
  assert_int_equal(s.tokens[LT_TOK_TOTAL], 120);
  assert_int_equal(s.tokens[LT_TOK_CACHE_READ], 50);
  assert_int_equal(s.tokens[LT_TOK_CACHE_WRITE], 10);
  assert_int_equal(s.tokens[LT_TOK_REASONING], 8);
  assert_int_equal(s.ttft_ns, 250000000);
  eq(s.finish_reason, "length"); /* the attribute beats the message's */
  eq(s.session_id, "conv_1");
  eq(s.prompt_name, "weather");
  eq(s.environment, "prod"); /* from the resource */
  eq(s.input_messages,
     "[{\"role\":\"system\",\"content\":\"You are a weather bot.\"},"
     "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Paris?\"},"
     "{\"type\":\"image\",\"url\":\"https://x/sky.png\"}]},"
     "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\",\"name\":\"get_weather\","
     "\"arguments\":\"{\\\"location\\\":\\\"Paris\\\"}\"}]},"
     "{\"role\":\"tool\",\"content\":\"rainy, 57\xc2\xb0" "F\",\"tool_call_id\":\"call_1\"}]");
  eq(s.input, "You are a weather bot.\nWeather in Paris?\nget_weather({\"location\":\"Paris\"})\n"
              "rainy, 57\xc2\xb0" "F");
  eq(s.output_messages, "[{\"role\":\"assistant\",\"content\":\"It is rainy.\"}]");
  eq(s.output, "It is rainy.");
  /* structured attribute values stay structured in the raw JSON */
  assert_non_null(strstr(s.attributes.ptr, "\"gen_ai.output.messages\":[{\"role\":\"assistant\",\"parts\":["));
}

static void genai_finish_reason_from_messages_and_json_string(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("gen_ai.operation.name", S("text_completion")),
      KV("gen_ai.output.messages", S("[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"a\"},"
                                     "{\"type\":\"text\",\"content\":\"b\"}],\"finish_reason\":\"stop\"}]"))));
  lt_span_t s = map(&in);
  assert_int_equal(s.kind, LT_KIND_LLM);
  eq(s.finish_reason, "stop");
  eq(s.output_messages, "[{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                        "{\"type\":\"text\",\"text\":\"b\"}]}]");
  eq(s.output, "a\nb");

  lt_otlp_span_t in2 = mkspan(ATTRS(KV("gen_ai.response.finish_reasons", S("[\"content_filter\",\"stop\"]")),
                                    KV("gen_ai.system", S("anthropic"))));
  lt_span_t s2 = map(&in2);
  eq(s2.finish_reason, "content_filter");
  eq(s2.provider, "anthropic");
  assert_int_equal(s2.kind, LT_KIND_UNKNOWN);
}

static void genai_older_flattened(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("gen_ai.system", S("openai")), KV("gen_ai.request.model", S("gpt-3.5-turbo")),
      KV("gen_ai.prompt.0.role", S("user")), KV("gen_ai.prompt.0.content", S("Hi")),
      KV("gen_ai.prompt.1.role", S("tool")), KV("gen_ai.prompt.1.content", S("42")),
      KV("gen_ai.prompt.1.tool_call_id", S("c9")), KV("gen_ai.completion.0.role", S("assistant")),
      KV("gen_ai.completion.0.content", S("Hello!")), KV("gen_ai.completion.0.finish_reason", S("stop")),
      KV("gen_ai.completion.0.tool_calls.0.id", S("c1")), KV("gen_ai.completion.0.tool_calls.0.name", S("f")),
      KV("gen_ai.completion.0.tool_calls.0.arguments", S("{\"x\":1}")),
      KV("gen_ai.usage.prompt_tokens", I(3)), KV("gen_ai.usage.completion_tokens", I(2)),
      KV("llm.usage.total_tokens", I(6)), KV("gen_ai.user", S("u7"))));
  lt_span_t s = map(&in);
  assert_int_equal(s.kind, LT_KIND_LLM); /* from the model attribute */
  eq(s.provider, "openai");
  eq(s.request_model, "gpt-3.5-turbo");
  eq(s.response_model, NULL);
  assert_int_equal(s.tokens[LT_TOK_INPUT], 3);
  assert_int_equal(s.tokens[LT_TOK_OUTPUT], 2);
  assert_int_equal(s.tokens[LT_TOK_TOTAL], 6); /* reported wins over the sum */
  eq(s.user_id, "u7");
  eq(s.finish_reason, "stop");
  eq(s.input_messages, "[{\"role\":\"user\",\"content\":\"Hi\"},"
                       "{\"role\":\"tool\",\"content\":\"42\",\"tool_call_id\":\"c9\"}]");
  eq(s.input, "Hi\n42");
  eq(s.output_messages, "[{\"role\":\"assistant\",\"content\":\"Hello!\","
                        "\"tool_calls\":[{\"id\":\"c1\",\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"}]}]");
  eq(s.output, "Hello!\nf({\"x\":1})");
}

static void genai_events(void **st) {
  lt_val_t choice_msg = KVL(KV("content", S("done")));
  lt_otlp_event_t evs[] = {
      EVENT("gen_ai.system.message", 1001, KV("gen_ai.system", S("openai")), KV("content", S("sys"))),
      EVENT("gen_ai.user.message", 1002, KV("content", S("hi"))),
      EVENT("gen_ai.assistant.message", 1003,
            KV("tool_calls", S("[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                               "\"arguments\":\"{}\"}}]"))),
      EVENT("gen_ai.tool.message", 1004, KV("content", S("42")), KV("id", S("c1"))),
      /* Azure SDKs pack the body as JSON in gen_ai.event.content */
      EVENT("gen_ai.user.message", 1005,
            KV("gen_ai.event.content", S("{\"content\":[{\"type\":\"text\",\"text\":\"packed\"},"
                                         "{\"type\":\"image_url\",\"image_url\":{\"url\":\"u\"}}],"
                                         "\"role\":\"user\"}"))),
      EVENT("First Token Stream Event", 1100, KV("x", I(1))),
      EVENT("gen_ai.choice", 1200, KV("index", I(0)), KV("finish_reason", S("stop")), KV("message", choice_msg)),
      EVENT("exception", 1300, KV("exception.type", S("ValueError")), KV("exception.message", S("boom"))),
  };
  lt_otlp_span_t in = mkspan(ATTRS(KV("gen_ai.operation.name", S("chat"))));
  in.events = evs;
  in.n_events = sizeof evs / sizeof evs[0];
  in.status_code = 2;
  lt_span_t s = map(&in);
  assert_int_equal(s.status, LT_STATUS_ERROR);
  eq(s.status_message, "boom");
  assert_int_equal(s.ttft_ns, 100);
  eq(s.finish_reason, "stop");
  eq(s.input_messages, "[{\"role\":\"system\",\"content\":\"sys\"},{\"role\":\"user\",\"content\":\"hi\"},"
                       "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"}]},"
                       "{\"role\":\"tool\",\"content\":\"42\",\"tool_call_id\":\"c1\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"packed\"},"
                       "{\"type\":\"image\",\"url\":\"u\"}]}]");
  eq(s.output_messages, "[{\"role\":\"assistant\",\"content\":\"done\"}]");
  eq(s.output, "done");
  eq(s.events, "[{\"name\":\"gen_ai.system.message\",\"time_ns\":1001,\"attributes\":{\"gen_ai.system\":\"openai\","
               "\"content\":\"sys\"}},{\"name\":\"gen_ai.user.message\",\"time_ns\":1002,\"attributes\":"
               "{\"content\":\"hi\"}},{\"name\":\"gen_ai.assistant.message\",\"time_ns\":1003,\"attributes\":"
               "{\"tool_calls\":\"[{\\\"id\\\":\\\"c1\\\",\\\"type\\\":\\\"function\\\",\\\"function\\\":"
               "{\\\"name\\\":\\\"f\\\",\\\"arguments\\\":\\\"{}\\\"}}]\"}},{\"name\":\"gen_ai.tool.message\","
               "\"time_ns\":1004,\"attributes\":{\"content\":\"42\",\"id\":\"c1\"}},{\"name\":"
               "\"gen_ai.user.message\",\"time_ns\":1005,\"attributes\":{\"gen_ai.event.content\":\"{\\\"content\\\":"
               "[{\\\"type\\\":\\\"text\\\",\\\"text\\\":\\\"packed\\\"},{\\\"type\\\":\\\"image_url\\\","
               "\\\"image_url\\\":{\\\"url\\\":\\\"u\\\"}}],\\\"role\\\":\\\"user\\\"}\"}},{\"name\":"
               "\"First Token Stream Event\",\"time_ns\":1100,\"attributes\":{\"x\":1}},{\"name\":\"gen_ai.choice\","
               "\"time_ns\":1200,\"attributes\":{\"index\":0,\"finish_reason\":\"stop\",\"message\":"
               "{\"content\":\"done\"}}},{\"name\":\"exception\",\"time_ns\":1300,\"attributes\":"
               "{\"exception.type\":\"ValueError\",\"exception.message\":\"boom\"}}]");

  /* attributes win over events; the status message from OTLP wins over the exception */
  lt_otlp_span_t in2 = mkspan(ATTRS(KV("gen_ai.input.messages", S("[{\"role\":\"user\",\"content\":\"attr\"}]"))));
  in2.events = evs;
  in2.n_events = sizeof evs / sizeof evs[0];
  in2.status_code = 2;
  in2.status_message = LT_STR("explicit");
  lt_span_t s2 = map(&in2);
  eq(s2.input_messages, "[{\"role\":\"user\",\"content\":\"attr\"}]");
  eq(s2.status_message, "explicit");
  in2.status_code = 1;
  in2.status_message = LT_STR_NULL;
  s2 = map(&in2);
  assert_int_equal(s2.status, LT_STATUS_OK);
  eq(s2.status_message, NULL); /* an OK span's handled exception is not its error */
}

static void tool_span_and_links(void **st) {
  lt_otlp_link_t links[] = {{{0}, {0}, LT_STR("k=v"), ATTRS(KV("rel", S("follows")))}};
  links[0].trace_id[15] = 0xff;
  links[0].span_id[0] = 0x01;
  lt_otlp_span_t in = mkspan(ATTRS(KV("gen_ai.operation.name", S("execute_tool")),
                                   KV("gen_ai.tool.name", S("get_weather")),
                                   KV("gen_ai.tool.call.arguments", KVL(KV("location", S("Paris")), KV("days", I(2)))),
                                   KV("gen_ai.tool.call.result", S("rainy"))));
  in.links = links;
  in.n_links = 1;
  in.has_parent = true;
  in.parent_span_id[7] = 9;
  lt_span_t s = map(&in);
  assert_int_equal(s.kind, LT_KIND_TOOL);
  assert_true(s.has_parent);
  assert_int_equal(s.parent_span_id[7], 9);
  eq(s.input, "{\"location\":\"Paris\",\"days\":2}");
  eq(s.output, "rainy");
  eq(s.input_messages, NULL);
  eq(s.request_model, NULL);
  eq(s.links, "[{\"trace_id\":\"000000000000000000000000000000ff\",\"span_id\":\"0100000000000000\","
              "\"trace_state\":\"k=v\",\"attributes\":{\"rel\":\"follows\"}}]");
}

static void kind_precedence(void **st) {
  const struct {
    lt_attrs_t attrs;
    lt_kind_t want;
    bool warns;
  } cases[] = {
      {{(lt_kv_t[]){KV("openinference.span.kind", S("chain")), KV("gen_ai.operation.name", S("chat"))}, 2},
       LT_KIND_CHAIN, false},
      {{(lt_kv_t[]){KV("gen_ai.operation.name", S("embeddings")), KV("gen_ai.request.model", S("m"))}, 2},
       LT_KIND_EMBEDDING, false},
      {{(lt_kv_t[]){KV("gen_ai.operation.name", S("retrieval"))}, 1}, LT_KIND_RETRIEVER, false},
      {{(lt_kv_t[]){KV("gen_ai.operation.name", S("invoke_agent"))}, 1}, LT_KIND_AGENT, false},
      {{(lt_kv_t[]){KV("gen_ai.operation.name", S("create_agent"))}, 1}, LT_KIND_AGENT, false},
      {{(lt_kv_t[]){KV("gen_ai.operation.name", S("invoke_workflow"))}, 1}, LT_KIND_CHAIN, false},
      {{(lt_kv_t[]){KV("gen_ai.operation.name", S("generate_content"))}, 1}, LT_KIND_LLM, false},
      /* a custom operation leaves the kind to the next source */
      {{(lt_kv_t[]){KV("gen_ai.operation.name", S("plan")), KV("gen_ai.tool.name", S("t"))}, 2}, LT_KIND_TOOL,
       false},
      {{(lt_kv_t[]){KV("llm.model_name", S("m")), KV("gen_ai.tool.name", S("t"))}, 2}, LT_KIND_TOOL, false},
      {{(lt_kv_t[]){KV("llm.model_name", S("m"))}, 1}, LT_KIND_LLM, false},
      {{(lt_kv_t[]){KV("embedding.model_name", S("e5"))}, 1}, LT_KIND_EMBEDDING, false},
      {{(lt_kv_t[]){KV("openinference.span.kind", S("GUARDRAIL"))}, 1}, LT_KIND_GUARDRAIL, false},
      {{(lt_kv_t[]){KV("openinference.span.kind", S("bogus")), KV("gen_ai.operation.name", S("invoke_agent"))}, 2},
       LT_KIND_AGENT, true},
      {{(lt_kv_t[]){KV("openinference.span.kind", I(5))}, 1}, LT_KIND_UNKNOWN, true},
      {{(lt_kv_t[]){KV("http.method", S("GET"))}, 1}, LT_KIND_UNKNOWN, false},
      {{NULL, 0}, LT_KIND_UNKNOWN, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lt_otlp_span_t in = mkspan(cases[i].attrs);
    lt_span_t s = map(&in);
    if (s.kind != cases[i].want) fprintf(stderr, "case %zu: got %s\n", i, lt_kind_name(s.kind));
    assert_int_equal(s.kind, cases[i].want);
    bool warned = s.attributes.ptr && strstr(s.attributes.ptr, "lanterna.warnings");
    assert_int_equal(warned, cases[i].warns);
  }
}

static void bad_values_are_unknown_with_warnings(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("gen_ai.usage.input_tokens", I(-5)), KV("gen_ai.usage.output_tokens", S("many")),
      KV("llm.token_count.total", I(2000000000)), KV("gen_ai.usage.cache_read.input_tokens", D(1.5)),
      KV("llm.token_count.prompt_details.cache_read", S("30")), /* decimal strings are accepted */
      KV("llm.cost.total", D(-1.0)), KV("gen_ai.response.time_to_first_chunk", S("soon")),
      KV("session.id", ARR(S("x"))), KV("metadata", S("{not json")), KV("tag.tags", S("[oops")),
      KV("gen_ai.input.messages", S("[{\"role\":\"user\",")),
      KV("gen_ai.output.messages", I(3)),
      KV("llm.input_messages.5000.message.role", S("user")), KV("gen_ai.response.finish_reasons", ARR(I(1)))));
  lt_span_t s = map(&in);
  for (int t = 0; t < LT_TOK__COUNT; t++)
    if (t != LT_TOK_CACHE_READ) assert_int_equal(s.tokens[t], -1);
  assert_int_equal(s.tokens[LT_TOK_CACHE_READ], 30);
  assert_int_equal(s.cost_source, LT_COST_UNKNOWN);
  assert_int_equal(s.ttft_ns, -1);
  eq(s.session_id, NULL);
  eq(s.metadata, NULL);
  eq(s.tags, NULL);
  eq(s.input_messages, NULL);
  eq(s.output_messages, NULL);
  eq(s.finish_reason, NULL);
  eq(s.attributes,
     "{\"gen_ai.usage.input_tokens\":-5,\"gen_ai.usage.output_tokens\":\"many\","
     "\"llm.token_count.total\":2000000000,\"gen_ai.usage.cache_read.input_tokens\":1.5,"
     "\"llm.token_count.prompt_details.cache_read\":\"30\",\"llm.cost.total\":-1.0,"
     "\"gen_ai.response.time_to_first_chunk\":\"soon\",\"session.id\":[\"x\"],\"metadata\":\"{not json\","
     "\"tag.tags\":\"[oops\",\"gen_ai.input.messages\":\"[{\\\"role\\\":\\\"user\\\",\","
     "\"gen_ai.output.messages\":3,\"llm.input_messages.5000.message.role\":\"user\","
     "\"gen_ai.response.finish_reasons\":[1],"
     "\"lanterna.warnings\":[\"gen_ai.usage.input_tokens: negative\","
     "\"gen_ai.usage.output_tokens: not an integer\",\"llm.token_count.total: above 10^9\","
     "\"gen_ai.usage.cache_read.input_tokens: not an integer\",\"llm.cost.total: negative\","
     "\"gen_ai.response.time_to_first_chunk: not a number\","
     "\"gen_ai.response.finish_reasons: not an array of strings\",\"session.id: not a string\","
     "\"tag.tags: malformed JSON\",\"metadata: malformed JSON\","
     "\"llm.input_messages: list index above 1000 ignored\",\"gen_ai.input.messages: malformed JSON\","
     "\"gen_ai.output.messages: not a JSON array of messages\"]}");
}

static void end_before_start_ends_at_start(void **st) {
  (void)st;
  lt_otlp_span_t in = mkspan(ATTRS(KV("gen_ai.request.model", S("gpt-4o"))));
  in.end_ns = 0; /* never set */
  lt_span_t s = map(&in);
  assert_int_equal(s.start_ns, 1000);
  assert_int_equal(s.end_ns, 1000);
  eq(s.attributes, "{\"gen_ai.request.model\":\"gpt-4o\","
                   "\"lanterna.warnings\":[\"endTimeUnixNano: missing; set to the start time\"]}");
  in.end_ns = 900; /* skewed */
  s = map(&in);
  assert_int_equal(s.end_ns, 1000);
  eq(s.attributes, "{\"gen_ai.request.model\":\"gpt-4o\","
                   "\"lanterna.warnings\":[\"endTimeUnixNano: before the start time; set to the start time\"]}");
  in.end_ns = 1000; /* zero-length is fine */
  s = map(&in);
  assert_int_equal(s.end_ns, 1000);
  eq(s.attributes, "{\"gen_ai.request.model\":\"gpt-4o\"}");
}

static void hostile_shapes_do_not_crash(void **st) {
  lt_val_t deep = S("leaf");
  lt_val_t chain[100];
  lt_kv_t kvs[100];
  for (int i = 0; i < 100; i++) { /* nesting far past the render limit */
    kvs[i] = (lt_kv_t){LT_STR("k"), i ? chain[i - 1] : deep};
    chain[i] = (lt_val_t){.type = LT_VAL_KVLIST, .u.kv = {&kvs[i], 1}};
  }
  lt_otlp_event_t evs[] = {
      EVENT("gen_ai.user.message", 1, KV("gen_ai.event.content", S("[1,2")), KV("content", I(5))),
      EVENT("gen_ai.choice", 2, KV("message", S("{\"content\":{\"a\":1},\"tool_calls\":7}"))),
      EVENT("gen_ai.content.prompt", 3, KV("gen_ai.prompt", S("[{\"role\":\"user\",\"content\":\"old\"}, 5]"))),
  };
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("llm.input_messages.0.message.role", KVL(KV("a", I(1)))),
      KV("llm.input_messages.0.message.contents.99999999999999999999.message_content.text", S("x")),
      KV("llm.input_messages.00.message.role", S("dup")), KV("llm.input_messages.x.message.role", S("nan")),
      KV("llm.input_messages.", S("empty index")), KV("llm.input_messages.7", S("no dot")),
      KV("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments", chain[99]),
      KV("gen_ai.output.messages", S("{\"role\":\"assistant\"}")),
      KV("retrieval.documents.0.document.metadata", chain[99]),
      KV("bytes", ((lt_val_t){.type = LT_VAL_BYTES, .u.s = {"\x00\xff", 2}})),
      KV("nan", D(NAN)), KV("empty", ((lt_val_t){.type = LT_VAL_EMPTY})), KV("deep", chain[99]),
      KV("\xff\xfe", S("bad utf8 \xc3")), KV("gen_ai.request.model", S(""))));
  in.events = evs;
  in.n_events = 3;
  lt_span_t s = map(&in);
  assert_non_null(s.attributes.ptr);
  assert_non_null(strstr(s.attributes.ptr, "\"bytes\":\"AP8=\",\"nan\":null,\"empty\":null,"));
  assert_non_null(strstr(s.attributes.ptr, "\"\xef\xbf\xbd\xef\xbf\xbd\":\"bad utf8 \xef\xbf\xbd\""));
  eq(s.input_messages, "[{\"role\":\"{\\\"a\\\":1}\"}]");
  eq(s.request_model, NULL);
  assert_int_equal(s.kind, LT_KIND_UNKNOWN);
  /* rendering stops at the nesting limit: 63 levels fit below the array,
   * the document and its metadata object */
  char want[1024] = "[{\"metadata\":";
  for (int i = 0; i < 63; i++) strcat(want, "{\"k\":");
  strcat(want, "null");
  for (int i = 0; i < 63; i++) strcat(want, "}");
  strcat(want, "}]");
  eq(s.documents, want);

  /* events alone: the malformed packed body is ignored, odd shapes skipped */
  lt_otlp_span_t in2 = mkspan(NO_ATTRS);
  in2.events = evs;
  in2.n_events = 3;
  lt_span_t s2 = map(&in2);
  eq(s2.input_messages, "[{\"role\":\"user\",\"content\":\"5\"},{\"role\":\"user\",\"content\":\"old\"}]");
  eq(s2.output_messages, "[{\"role\":\"assistant\",\"content\":\"{\\\"a\\\":1}\"}]");
  eq(s2.attributes, NULL);
}

static void arena_exhaustion_is_an_error(void **st) {
  lt_arena_t *small = lt_arena_create(256);
  assert_non_null(small);
  lt_otlp_span_t in = mkspan(ATTRS(KV("input.value", S("a fairly long input value that will not fit in the arena "
                                                       "once the attributes are rendered as JSON too")),
                                   KV("gen_ai.input.messages", S("[{\"role\":\"user\",\"content\":\"hi\"}]"))));
  lt_span_t s;
  assert_int_equal(lt_semconv_span(small, &res, &scope, &in, &s), LT_ETOOBIG);
  lt_arena_destroy(small);
}

/* ---- logs, points, raw JSON ----------------------------------------------------------- */

static void log_mapping(void **st) {
  lt_otlp_log_t in;
  memset(&in, 0, sizeof in);
  in.observed_ns = 77;
  in.severity_number = 9;
  in.severity_text = LT_STR("INFO");
  in.body = KVL(KV("content", S("hi")), KV("role", S("user")));
  in.attrs = ATTRS(KV("event.name", S("gen_ai.user.message")), KV("gen_ai.system", S("openai")));
  in.has_trace = in.has_span = true;
  in.trace_id[0] = 1;
  in.span_id[7] = 2;
  lt_log_t out;
  assert_int_equal(lt_semconv_log(arena, &res, &scope, &in, &out), 0);
  assert_int_equal(out.time_ns, 77); /* no event time: the observed time */
  assert_int_equal(out.severity_number, 9);
  assert_true(out.has_trace && out.has_span);
  assert_int_equal(out.trace_id[0], 1);
  assert_int_equal(out.span_id[7], 2);
  eq(out.severity_text, "INFO");
  eq(out.event_name, "gen_ai.user.message");
  eq(out.body, "{\"content\":\"hi\",\"role\":\"user\"}");
  eq(out.attributes, "{\"event.name\":\"gen_ai.user.message\",\"gen_ai.system\":\"openai\"}");
  eq(out.resource, res.resource_json.ptr);
  eq(out.service, "chatbot");
  eq(out.scope, "openinference.instrumentation.openai");
  eq(out.input_messages, "[{\"role\":\"user\",\"content\":\"hi\"}]");
  eq(out.output_messages, NULL);

  in.time_ns = 50;
  in.event_name = LT_STR("gen_ai.choice"); /* the LogRecord field beats the attribute */
  in.body = S("plain");
  assert_int_equal(lt_semconv_log(arena, NULL, NULL, &in, &out), 0);
  assert_int_equal(out.time_ns, 50);
  eq(out.event_name, "gen_ai.choice");
  eq(out.body, "\"plain\"");
  eq(out.service, NULL);

  in.body = (lt_val_t){.type = LT_VAL_EMPTY};
  in.attrs = NO_ATTRS;
  assert_int_equal(lt_semconv_log(arena, NULL, NULL, &in, &out), 0);
  eq(out.body, NULL);
  eq(out.attributes, NULL);
}

/* GenAI content sent as log records is normalised like span messages. */
static void log_content_messages(void **st) {
  lt_otlp_log_t in;
  lt_log_t out;
  memset(&in, 0, sizeof in);
  in.time_ns = 5;
  in.event_name = LT_STR("gen_ai.choice");
  in.body = KVL(KV("index", I(0)), KV("finish_reason", S("stop")),
                KV("message", KVL(KV("role", S("assistant")), KV("content", S("Paris.")))));
  assert_int_equal(lt_semconv_log(arena, NULL, NULL, &in, &out), 0);
  eq(out.input_messages, NULL);
  eq(out.output_messages, "[{\"role\":\"assistant\",\"content\":\"Paris.\"}]");

  memset(&in, 0, sizeof in);
  in.time_ns = 6;
  in.event_name = LT_STR("gen_ai.client.inference.operation.details");
  in.attrs = ATTRS(KV("gen_ai.system_instructions", S("[{\"type\":\"text\",\"content\":\"Be brief.\"}]")),
                   KV("gen_ai.input.messages",
                      S("[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"Capital?\"}]}]")),
                   KV("gen_ai.output.messages",
                      S("[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"Paris.\"}],"
                        "\"finish_reason\":\"stop\"}]")));
  assert_int_equal(lt_semconv_log(arena, NULL, NULL, &in, &out), 0);
  eq(out.input_messages, "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Capital?\"}]");
  eq(out.output_messages, "[{\"role\":\"assistant\",\"content\":\"Paris.\"}]");

  /* Records that are not GenAI content carry no messages. */
  memset(&in, 0, sizeof in);
  in.event_name = LT_STR("app.started");
  in.body = KVL(KV("content", S("hi")));
  assert_int_equal(lt_semconv_log(arena, NULL, NULL, &in, &out), 0);
  eq(out.input_messages, NULL);
  eq(out.output_messages, NULL);
}

static void point_mapping(void **st) {
  uint64_t buckets[] = {1, 2, 3};
  double bounds[] = {0.5, 1.0};
  lt_otlp_point_t hp;
  memset(&hp, 0, sizeof hp);
  hp.attrs = ATTRS(KV("gen_ai.token.type", S("input")));
  hp.start_ns = 10;
  hp.time_ns = 20;
  hp.count = 6;
  hp.sum = 3.75;
  hp.min = 0.1;
  hp.max = 2.5;
  hp.has_sum = hp.has_min = hp.has_max = true;
  hp.bucket_counts = buckets;
  hp.n_buckets = 3;
  hp.explicit_bounds = bounds;
  hp.n_bounds = 2;
  lt_otlp_metric_t hm = {LT_STR("gen_ai.client.token.usage"), LT_STR("d"), LT_STR("{token}"), LT_METRIC_HISTOGRAM,
                         1, false, &hp, 1};
  lt_point_t out;
  assert_int_equal(lt_semconv_point(arena, &res, &scope, &hm, &hp, &out), 0);
  eq(out.name, "gen_ai.client.token.usage");
  eq(out.unit, "{token}");
  eq(out.service, "chatbot");
  eq(out.scope, "openinference.instrumentation.openai");
  assert_int_equal(out.type, LT_METRIC_HISTOGRAM);
  assert_int_equal(out.temporality, 1);
  assert_int_equal(out.start_ns, 10);
  assert_int_equal(out.time_ns, 20);
  assert_int_equal(out.count, 6);
  assert_true(out.value == 3.75);
  eq(out.attributes, "{\"gen_ai.token.type\":\"input\"}");
  eq(out.data, "{\"bucket_counts\":[1,2,3],\"explicit_bounds\":[0.5,1.0],\"min\":0.1,\"max\":2.5,\"sum\":3.75}");

  lt_otlp_point_t gp;
  memset(&gp, 0, sizeof gp);
  gp.value = 1.5;
  gp.time_ns = 30;
  lt_otlp_metric_t gm = {LT_STR("queue.depth"), LT_STR(""), LT_STR(""), LT_METRIC_GAUGE, 0, false, &gp, 1};
  assert_int_equal(lt_semconv_point(arena, NULL, NULL, &gm, &gp, &out), 0);
  assert_true(out.value == 1.5);
  assert_int_equal(out.count, -1);
  eq(out.data, NULL);
  eq(out.attributes, NULL);
  eq(out.unit, NULL);
}

static void raw_json_is_typed(void **st) {
  lt_attrs_t attrs = ATTRS(KV("s", S("x\"y\n")), KV("i", I(-7)), KV("b", B(true)), KV("d", D(2.0)), KV("e", D(1e-7)),
                           KV("big", D(1e300)), KV("pi", D(3.14159)), KV("arr", ARR(I(1), S("two"), ARR())),
                           KV("map", KVL(KV("k", B(false)))),
                           KV("bytes", ((lt_val_t){.type = LT_VAL_BYTES, .u.s = {"hello", 5}})));
  lt_str_t out;
  assert_int_equal(lt_attrs_json(arena, &attrs, &out), 0);
  eq(out, "{\"s\":\"x\\\"y\\n\",\"i\":-7,\"b\":true,\"d\":2.0,\"e\":1e-07,\"big\":1e+300,\"pi\":3.14159,"
          "\"arr\":[1,\"two\",[]],\"map\":{\"k\":false},\"bytes\":\"aGVsbG8=\"}");
  lt_val_t v = ARR(D(0.1), I(3));
  assert_int_equal(lt_val_json(arena, &v, &out), 0);
  eq(out, "[0.1,3]");
  /* whole numbers print without printf below 1e15, as %.15g did */
  lt_val_t w = ARR(D(-0.0), D(-3.0), D(123456789012345.0), D(1e15), D(-1e15), D(0.0), I(INT64_MIN));
  assert_int_equal(lt_val_json(arena, &w, &out), 0);
  eq(out, "[-0.0,-3.0,123456789012345.0,1e+15,-1e+15,0.0,-9223372036854775808]");
  lt_val_t e = {.type = LT_VAL_EMPTY};
  assert_int_equal(lt_val_json(arena, &e, &out), 0);
  eq(out, NULL);
  lt_attrs_t none = NO_ATTRS;
  assert_int_equal(lt_attrs_json(arena, &none, &out), 0);
  eq(out, NULL);
}

/* ---- dialects: Langfuse, Vercel AI SDK, Logfire / pydantic-ai ----------------------- */

static bool has(lt_str_t s, const char *needle) {
  bool ok = s.len && memmem(s.ptr, s.len, needle, strlen(needle)) != NULL;
  if (!ok) fprintf(stderr, "missing %s in: %.*s\n", needle, (int)s.len, s.len ? s.ptr : "");
  return ok;
}

static void langfuse_generation(void **st) {
  /* start 1000 ns after the epoch: completion starts 250 ms later */
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("langfuse.observation.type", S("generation")),
      KV("langfuse.observation.model.name", S("gpt-4o-mini-2024-07-18")),
      KV("langfuse.observation.usage_details",
         S("{\"prompt_tokens\":22,\"completion_tokens\":7,\"total_tokens\":29,"
           "\"prompt_tokens_details\":{\"cached_tokens\":5},\"completion_tokens_details\":{\"reasoning_tokens\":2}}")),
      KV("langfuse.observation.cost_details", S("{\"input\":0.001,\"output\":0.002,\"total\":0.003}")),
      KV("langfuse.observation.completion_start_time", S("\"1970-01-01T00:00:00.250001Z\"")),
      KV("langfuse.observation.input", S("{\"tools\":[],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")),
      KV("langfuse.observation.output", S("{\"role\":\"assistant\",\"content\":\"hello\"}")),
      KV("langfuse.observation.metadata.feature", S("search")), KV("langfuse.observation.metadata.n", I(3)),
      KV("langfuse.observation.prompt.name", S("greeting")), KV("langfuse.observation.prompt.version", I(4)),
      KV("langfuse.environment", S("staging")), KV("langfuse.release", S("9.9")),
      KV("langfuse.session.id", S("s1")), KV("langfuse.user.id", S("u1")),
      KV("langfuse.trace.tags", ARR(S("a"), S("b")))));
  lt_span_t s = map(&in);
  assert_int_equal(s.kind, LT_KIND_LLM);
  eq(s.request_model, "gpt-4o-mini-2024-07-18");
  assert_int_equal(s.tokens[LT_TOK_INPUT], 22);
  assert_int_equal(s.tokens[LT_TOK_OUTPUT], 7);
  assert_int_equal(s.tokens[LT_TOK_TOTAL], 29);
  assert_int_equal(s.tokens[LT_TOK_CACHE_READ], 5);
  assert_int_equal(s.tokens[LT_TOK_CACHE_WRITE], -1);
  assert_int_equal(s.tokens[LT_TOK_REASONING], 2);
  assert_int_equal(s.cost_source, LT_COST_REPORTED);
  assert_int_equal(s.cost_input, 1000000);
  assert_int_equal(s.cost_output, 2000000);
  assert_int_equal(s.cost_total, 3000000);
  assert_int_equal(s.ttft_ns, 250001000 - 1000);
  eq(s.input_messages, "[{\"role\":\"user\",\"content\":\"hi\"}]");
  eq(s.output_messages, "[{\"role\":\"assistant\",\"content\":\"hello\"}]");
  eq(s.metadata, "{\"feature\":\"search\",\"n\":3}");
  eq(s.feature, "search");
  eq(s.prompt_name, "greeting");
  eq(s.prompt_version, "4");
  eq(s.environment, "staging");
  eq(s.release, "9.9");
  eq(s.session_id, "s1");
  eq(s.user_id, "u1");
  eq(s.tags, "[\"a\",\"b\"]");
  assert_false(s.usage_rollup);
}

static void langfuse_kinds(void **st) {
  static const struct {
    const char *type, *op;
    lt_kind_t want;
  } cases[] = {
      {"GENERATION", NULL, LT_KIND_LLM},   {"agent", NULL, LT_KIND_AGENT},
      {"TOOL", NULL, LT_KIND_TOOL},        {"chain", NULL, LT_KIND_CHAIN},
      {"retriever", NULL, LT_KIND_RETRIEVER}, {"EVALUATOR", NULL, LT_KIND_EVALUATOR},
      {"embedding", NULL, LT_KIND_EMBEDDING}, {"guardrail", NULL, LT_KIND_GUARDRAIL},
      /* generic spans and events leave the kind to the next source */
      {"span", NULL, LT_KIND_UNKNOWN},     {"SPAN", "execute_tool", LT_KIND_TOOL},
      {"event", NULL, LT_KIND_UNKNOWN},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lt_otlp_span_t in = mkspan(ATTRS(KV("langfuse.observation.type", S("")), KV("gen_ai.operation.name", S(""))));
    in.attrs.items[0].val.u.s = (lt_str_t){cases[i].type, strlen(cases[i].type)};
    if (cases[i].op) in.attrs.items[1].val.u.s = (lt_str_t){cases[i].op, strlen(cases[i].op)};
    lt_span_t s = map(&in);
    assert_int_equal(s.kind, cases[i].want);
  }
}

static void vercel_model_call(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("ai.operationId", S("ai.generateText.doGenerate")), KV("ai.model.provider", S("openai.responses")),
      KV("ai.model.id", S("gpt-4o-mini")), KV("ai.response.model", S("gpt-4o-mini-2024-07-18")),
      KV("ai.usage.inputTokens", D(37.0)), KV("ai.usage.outputTokens", I(9)),
      KV("ai.usage.inputTokenDetails.cacheReadTokens", I(5)), KV("ai.usage.outputTokenDetails.reasoningTokens", I(1)),
      KV("ai.prompt.messages",
         S("[{\"role\":\"system\",\"content\":\"be brief\"},"
           "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"weather?\"}]},"
           "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool-call\",\"toolCallId\":\"c1\","
           "\"toolName\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}]},"
           "{\"role\":\"tool\",\"content\":[{\"type\":\"tool-result\",\"toolCallId\":\"c1\","
           "\"toolName\":\"get_weather\",\"output\":{\"type\":\"text\",\"value\":\"18C\"}}]}]")),
      KV("ai.response.text", S("It is 18C.")),
      KV("ai.response.toolCalls", S("[{\"toolCallId\":\"c2\",\"toolName\":\"book\",\"args\":\"{}\"}]")),
      KV("ai.response.msToFirstChunk", D(25.5)), KV("ai.response.finishReason", S("stop")),
      KV("ai.telemetry.metadata.sessionId", S("s2")), KV("ai.telemetry.metadata.userId", S("u2")),
      KV("ai.telemetry.metadata.feature", S("trips"))));
  lt_span_t s = map(&in);
  assert_int_equal(s.kind, LT_KIND_LLM);
  eq(s.provider, "openai");
  eq(s.request_model, "gpt-4o-mini");
  eq(s.response_model, "gpt-4o-mini-2024-07-18");
  assert_int_equal(s.tokens[LT_TOK_INPUT], 37);
  assert_int_equal(s.tokens[LT_TOK_TOTAL], 46);
  assert_int_equal(s.tokens[LT_TOK_CACHE_READ], 5);
  assert_int_equal(s.tokens[LT_TOK_REASONING], 1);
  assert_int_equal(s.ttft_ns, 25500000);
  eq(s.input_messages,
     "[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"weather?\"},"
     "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}]},"
     "{\"role\":\"tool\",\"content\":\"18C\",\"tool_call_id\":\"c1\",\"name\":\"get_weather\"}]");
  eq(s.output_messages,
     "[{\"role\":\"assistant\",\"content\":\"It is 18C.\",\"tool_calls\":[{\"id\":\"c2\",\"name\":\"book\",\"arguments\":\"{}\"}]}]");
  eq(s.output, "It is 18C.");
  eq(s.session_id, "s2");
  eq(s.user_id, "u2");
  eq(s.feature, "trips");
  eq(s.metadata, "{\"feature\":\"trips\",\"sessionId\":\"s2\",\"userId\":\"u2\"}");
  assert_false(s.usage_rollup);
  assert_int_equal(s.cost_source, LT_COST_UNKNOWN);
}

static void vercel_wrappers_roll_up(void **st) {
  static const char *const outer[] = {"ai.generateText", "ai.streamText", "ai.generateObject",
                                      "ai.streamObject",  "ai.embed",      "ai.embedMany"};
  for (size_t i = 0; i < sizeof outer / sizeof outer[0]; i++) {
    lt_otlp_span_t in = mkspan(ATTRS(KV("ai.operationId", S("x")), KV("ai.usage.tokens", I(12)),
                                     KV("langfuse.observation.type", S("tool"))));
    in.attrs.items[0].val.u.s = (lt_str_t){outer[i], strlen(outer[i])};
    lt_span_t s = map(&in);
    assert_int_equal(s.kind, LT_KIND_TOOL); /* Langfuse's type wins; the rollup rule still holds */
    assert_true(s.usage_rollup);
    assert_int_equal(s.cost_source, LT_COST_NONE);
  }
  lt_otlp_span_t tool = mkspan(ATTRS(KV("ai.operationId", S("ai.toolCall")), KV("ai.toolCall.name", S("t")),
                                     KV("ai.toolCall.args", S("{\"a\":1}")), KV("ai.toolCall.result", S("\"ok\""))));
  lt_span_t s = map(&tool);
  assert_int_equal(s.kind, LT_KIND_TOOL);
  eq(s.input, "{\"a\":1}");
  eq(s.output, "\"ok\"");
  assert_false(s.usage_rollup);
  /* agents and chains that report usage summarise their children */
  lt_otlp_span_t agent = mkspan(ATTRS(KV("gen_ai.operation.name", S("invoke_agent")),
                                      KV("gen_ai.usage.input_tokens", I(61)), KV("llm.cost.total", D(0.01))));
  s = map(&agent);
  assert_true(s.usage_rollup);
  assert_int_equal(s.cost_source, LT_COST_REPORTED);
  lt_otlp_span_t bare = mkspan(ATTRS(KV("openinference.span.kind", S("CHAIN"))));
  s = map(&bare);
  assert_false(s.usage_rollup); /* no tokens, nothing to roll up */
  assert_int_equal(s.cost_source, LT_COST_UNKNOWN);
}

static void logfire_pending_span_is_dropped(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(KV("logfire.span_type", S("pending_span")), KV("gen_ai.request.model", S("m"))));
  lt_span_t out;
  assert_int_equal(lt_semconv_span(arena, &res, &scope, &in, &out), LT_SEMCONV_DROP);
  assert_int_equal(out.tokens[LT_TOK_INPUT], -1);
  lt_otlp_span_t real = mkspan(ATTRS(
      KV("logfire.span_type", S("span")), KV("gen_ai.operation.name", S("invoke_agent")),
      KV("pydantic_ai.all_messages",
         S("[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"hi\"}]},"
           "{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"hello\"}]}]")),
      KV("final_result", S("hello")), KV("gen_ai.aggregated_usage.input_tokens", I(10)),
      KV("logfire.tags", ARR(S("t1"))), KV("gen_ai.client.operation.time_to_first_chunk", D(0.5))));
  lt_span_t s = map(&real);
  assert_int_equal(s.kind, LT_KIND_AGENT);
  eq(s.input_messages, "[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}]");
  eq(s.output, "hello");
  assert_int_equal(s.tokens[LT_TOK_INPUT], 10);
  assert_true(s.usage_rollup);
  eq(s.tags, "[\"t1\"]");
  assert_int_equal(s.ttft_ns, 500000000);
}

static void feature_key_setting(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(KV("metadata", S("{\"feature\":\"a\",\"product\":\"b\"}")),
                                   KV("traceloop.association.properties.product", S("c"))));
  lt_span_t s = map(&in);
  eq(s.feature, "a");
  lt_semconv_set_feature_key("product");
  s = map(&in);
  eq(s.feature, "b");
  lt_otlp_span_t tl = mkspan(ATTRS(KV("traceloop.association.properties.product", S("c"))));
  s = map(&tl);
  eq(s.feature, "c");
  lt_otlp_span_t explicit = mkspan(ATTRS(KV("lanterna.feature", S("d")), KV("metadata", S("{\"product\":\"b\"}"))));
  s = map(&explicit);
  eq(s.feature, "d");
  lt_semconv_set_feature_key("");
  s = map(&in);
  eq(s.feature, "a");
  lt_semconv_set_feature_key("product");
  lt_semconv_set_feature_key(NULL);
  s = map(&in);
  eq(s.feature, "a");
}

static void inline_scores(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("annotations.0.annotation.name", S("correct")), KV("annotations.0.annotation.score", D(1.0)),
      KV("annotations.0.annotation.label", S("yes")), KV("annotations.0.annotation.explanation", S("matches")),
      KV("annotations.0.annotation.annotator_kind", S("LLM")),
      KV("evaluations.0.evaluation.name", S("tone")), KV("evaluations.0.evaluation.label", S("polite")),
      KV("annotations.1.annotation.name", S("no value"))));
  lt_otlp_event_t evs[] = {
      EVENT("gen_ai.evaluation.result", 2000, KV("gen_ai.evaluation.name", S("relevance")),
            KV("gen_ai.evaluation.score.value", D(0.75)), KV("gen_ai.evaluation.explanation", S("mostly"))),
      EVENT("gen_ai.evaluation.result", 2000, KV("gen_ai.evaluation.name", S("bad")),
            KV("gen_ai.evaluation.score.value", S("high"))),
  };
  in.events = evs;
  in.n_events = 2;
  lt_span_t s = map(&in);
  eq(s.scores,
     "[{\"name\":\"correct\",\"value\":1.0,\"string_value\":\"yes\",\"comment\":\"matches\",\"source\":\"evaluator\"},"
     "{\"name\":\"tone\",\"string_value\":\"polite\",\"source\":\"evaluator\"},"
     "{\"name\":\"relevance\",\"value\":0.75,\"comment\":\"mostly\",\"source\":\"evaluator\"}]");
  lt_otlp_span_t none = mkspan(NO_ATTRS);
  s = map(&none);
  eq(s.scores, NULL);
}

static void dialect_bad_input(void **st) {
  lt_otlp_span_t in = mkspan(ATTRS(
      KV("langfuse.observation.usage_details", S("{\"input\": -5, \"output\": 2000000000, \"total\": \"x\"")),
      KV("langfuse.observation.cost_details", S("{\"total\": -1, \"input\": \"cheap\"}")),
      KV("langfuse.observation.completion_start_time", S("yesterday")),
      KV("langfuse.observation.type", I(3)),
      KV("ai.usage.inputTokens", S("lots")), KV("ai.usage.outputTokens", D(1.5)),
      KV("ai.prompt.messages", S("[{\"role\":")), KV("ai.response.toolCalls", S("{oops")),
      KV("ai.model.provider", ARR(S("openai"))), KV("ai.telemetry.metadata.feature", KVL(KV("x", I(1)))),
      KV("pydantic_ai.all_messages", I(7)), KV("langfuse.observation.input", S("[not json")),
      KV("logfire.span_type", B(true)), KV("annotations.0.annotation.score", S("NaN")),
      KV("ai.stream.msToFirstChunk", D(-4.0))));
  lt_span_t s;
  assert_int_equal(lt_semconv_span(arena, &res, &scope, &in, &s), 0);
  for (int i = 0; i < LT_TOK__COUNT; i++) assert_int_equal(s.tokens[i], -1);
  assert_int_equal(s.cost_source, LT_COST_UNKNOWN);
  assert_int_equal(s.ttft_ns, -1);
  assert_int_equal(s.kind, LT_KIND_UNKNOWN);
  eq(s.provider, NULL);
  eq(s.feature, NULL);
  eq(s.input_messages, NULL);
  eq(s.output_messages, NULL);
  eq(s.scores, NULL);
  eq(s.input, "[not json");
  assert_true(has(s.attributes, "\"lanterna.warnings\":["));
  assert_true(has(s.attributes, "langfuse.observation.usage_details: malformed JSON"));
  assert_true(has(s.attributes, "langfuse.observation.cost_details.total: negative"));
  assert_true(has(s.attributes, "langfuse.observation.completion_start_time: not an RFC 3339 timestamp"));
  assert_true(has(s.attributes, "ai.usage.inputTokens: not an integer"));
  assert_true(has(s.attributes, "ai.prompt.messages: malformed JSON"));
  assert_true(has(s.attributes, "ai.stream.msToFirstChunk: negative"));
  /* values inside well-formed JSON are checked one by one */
  lt_otlp_span_t in2 = mkspan(ATTRS(KV("langfuse.observation.usage_details",
                                       S("{\"input\": -5, \"output\": 2000000000, \"total\": 3}"))));
  s = map(&in2);
  assert_int_equal(s.tokens[LT_TOK_INPUT], -1);
  assert_int_equal(s.tokens[LT_TOK_OUTPUT], -1);
  assert_int_equal(s.tokens[LT_TOK_TOTAL], 3);
  assert_true(has(s.attributes, "langfuse.observation.usage_details.input: negative"));
  assert_true(has(s.attributes, "langfuse.observation.usage_details.output: above 10^9"));
}

/* Doubles as JSON: the short-decimal path prints exactly what the printf
 * path does (the shortest of %.15g..%.17g that reads back, ".0" kept),
 * for fixed cases and for 300,000 generated ones. */
static void reference_double(char *out, size_t n, double d) {
  if (!isfinite(d)) {
    snprintf(out, n, "null");
    return;
  }
  if (fabs(d) < 1e15 && d == (double)(int64_t)d && !(d == 0 && signbit(d))) {
    snprintf(out, n, "%lld.0", (long long)d);
    return;
  }
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(out, n, "%.*g", prec, d);
    if (strtod(out, NULL) == d) break;
  }
  if (!strpbrk(out, ".eE")) strcat(out, ".0");
}

static void check_double(double d) {
  char want[64];
  reference_double(want, sizeof want, d);
  lt_buf_t b;
  lt_buf_init(&b, 1 << 10);
  assert_int_equal(lt__json_double(&b, d), 0);
  if (strcmp(b.ptr, want) != 0) fail_msg("%.17g: got %s, want %s", d, b.ptr, want);
  lt_buf_free(&b);
}

static void doubles_print_as_printf_would(void **st) {
  const double fixed[] = {0.873, 0.7, 0.1, 0.25, 12.5, -0.5, 1e-4, 0.0001234, 123456789.123, 0.1 + 0.2,
                          1.0 / 3, 2.0 / 3, 1e-5, 9.999999e14, 3.14159, -2.5e-3, 1.7976931348623157e308,
                          5e-324, -0.0, 0.000099999, 999999999999999.9, 0.123456789, 1.05, 2.675, 1e15 + 0.5,
                          NAN, INFINITY};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) check_double(fixed[i]);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 300000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double d;
    if (i % 3 == 0) { /* a decimal with 1-9 fraction digits */
      static const double p10[] = {1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
      d = (double)(int64_t)(x % 100000000000ull) / p10[(x >> 40) % 9];
    } else if (i % 3 == 1) { /* a uniform fraction times a power of ten */
      d = (double)(x >> 11) / 9007199254740992.0 * pow(10, (int)((x >> 3) % 24) - 8);
    } else { /* any bit pattern */
      memcpy(&d, &x, sizeof d);
    }
    check_double(i & 1024 ? -d : d);
  }
}

/* The API's renderer: shortest round-trip doubles where json_dumps gives
 * 17 digits, everything else as JSON, and stored JSON nested a few levels
 * inside an answer is not cut. */
static void api_json_prints_numbers_as_sent(void **st) {
  (void)st;
  json_t *j = json_pack("{s:f,s:f,s:f,s:I,s:s,s:b,s:n,s:[f,i]}", "temperature", 0.7, "cost_usd", 10500 / 1e9,
                        "ms", 850.0, "big", (json_int_t)1795825811272753358, "s", "a\"b\n\xc3\xa9", "t", 1, "z", "0",
                        0.1 + 0.2, 3);
  assert_non_null(j);
  char *text = lt_json_dumps(j);
  assert_non_null(text);
  assert_string_equal(text, "{\"temperature\":0.7,\"cost_usd\":1.05e-05,\"ms\":850.0,\"big\":1795825811272753358,"
                            "\"s\":\"a\\\"b\\n\xc3\xa9\",\"t\":true,\"z\":null,\"0\":[0.30000000000000004,3]}");
  lt_free(text);
  json_decref(j);
  /* LT_JSON_MAX_DEPTH levels of stored JSON, three levels down */
  json_t *deep = json_integer(7);
  for (int i = 0; i < LT_JSON_MAX_DEPTH; i++) deep = json_pack("[o]", deep);
  json_t *ans = json_pack("{s:[{s:o}]}", "data", "attributes", deep);
  text = lt_json_dumps(ans);
  assert_non_null(text);
  assert_non_null(strstr(text, "[[7]]"));
  lt_free(text);
  json_decref(ans);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(resource_context),
      cmocka_unit_test(api_json_prints_numbers_as_sent),
      cmocka_unit_test(openinference_llm),
      cmocka_unit_test(openinference_retriever),
      cmocka_unit_test(long_texts_are_stored_once),
      cmocka_unit_test(flat_lists_plain_text),
      cmocka_unit_test(flat_lists_fall_back),
      cmocka_unit_test(flat_lists_elide),
      cmocka_unit_test(genai_current_chat),
      cmocka_unit_test(genai_finish_reason_from_messages_and_json_string),
      cmocka_unit_test(genai_older_flattened),
      cmocka_unit_test(genai_events),
      cmocka_unit_test(tool_span_and_links),
      cmocka_unit_test(kind_precedence),
      cmocka_unit_test(bad_values_are_unknown_with_warnings),
      cmocka_unit_test(end_before_start_ends_at_start),
      cmocka_unit_test(hostile_shapes_do_not_crash),
      cmocka_unit_test(arena_exhaustion_is_an_error),
      cmocka_unit_test(log_mapping),
      cmocka_unit_test(log_content_messages),
    cmocka_unit_test(point_mapping),
      cmocka_unit_test(raw_json_is_typed),
      cmocka_unit_test(langfuse_generation),
      cmocka_unit_test(langfuse_kinds),
      cmocka_unit_test(vercel_model_call),
      cmocka_unit_test(vercel_wrappers_roll_up),
      cmocka_unit_test(logfire_pending_span_is_dropped),
      cmocka_unit_test(feature_key_setting),
      cmocka_unit_test(inline_scores),
      cmocka_unit_test(dialect_bad_input),
      cmocka_unit_test(doubles_print_as_printf_would),
  };
  return cmocka_run_group_tests_name("semconv", tests, setup, teardown);
}
