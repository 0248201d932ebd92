/* What the bodies of the LLM APIs the proxy understands mean: OpenAI chat
 * completions, completions, embeddings and responses; Anthropic messages.
 * A call's state collects the request, then the response (a JSON body or
 * the stream's events), and finally fills a canonical span. Bodies that do
 * not parse leave the fields empty; nothing here fails a call. */
#ifndef LT_LLM_API_H
#define LT_LLM_API_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/arena.h"
#include "core/buf.h"
#include "model/span.h"
#include "proxy/sse.h"

typedef enum {
  LT_API_OTHER = 0,          /* passed through, traced as a plain span */
  LT_API_OPENAI_CHAT,
  LT_API_OPENAI_COMPLETIONS,
  LT_API_OPENAI_EMBEDDINGS,
  LT_API_OPENAI_RESPONSES,
  LT_API_ANTHROPIC_MESSAGES
} lt_llm_api_t;

/* The API of a request path (what follows /proxy/<upstream>/); anthropic
 * says whether the upstream speaks Anthropic's API. */
lt_llm_api_t lt_llm_api_of(const char *path, bool anthropic);

typedef struct {
  lt_llm_api_t api;
  json_t *req;                 /* the parsed request, or NULL */
  bool stream;
  bool usage_added;            /* we asked for stream usage: strip its chunk */
  /* from the response */
  json_t *resp;                /* a parsed non-streaming response */
  lt_buf_t text;               /* streamed output text */
  lt_buf_t reasoning;          /* streamed reasoning/thinking text */
  json_t *tools;               /* streamed tool calls: [{id, name, arguments}] */
  json_t *usage;               /* the last usage object seen */
  char model[256];
  char finish[64];
  char response_id[128];
  int64_t first_token_ns;      /* -1 until the first content event */
  bool saw_event;
  int tool_of_block[128];      /* Anthropic content block index → tools slot + 1 */
  char stream_error[256];      /* an error event inside a 200 stream */
  unsigned fast_events;        /* events read by the fast path (for tests) */
} lt_llm_call_t;

void lt_llm_init(lt_llm_call_t *c, lt_llm_api_t api);
void lt_llm_free(lt_llm_call_t *c);

/* Reads the request body. When add_stream_usage and the call is an OpenAI
 * chat or completions stream without stream_options.include_usage, writes
 * a new body asking for it into *out (caller frees with lt_free) and sets
 * usage_added; else *out stays NULL. */
int lt_llm_request(lt_llm_call_t *c, const char *body, size_t len, bool add_stream_usage, char **out,
                   size_t *out_len);

/* One stream event, seen at now_ns. *drop is set when the caller must not
 * forward it (the usage chunk we asked for). When we asked for usage, the
 * upstream also adds "usage":null to every chunk: out and out_len then give
 * the event as the caller would have received it (inside scratch), else
 * they are the event's raw bytes. */
void lt_llm_event(lt_llm_call_t *c, const lt_sse_event_t *ev, int64_t now_ns, bool *drop, lt_buf_t *scratch,
                  const char **out, size_t *out_len);
/* Text-only stream events are read without a full JSON parse (see
 * llm_api.c); tests and the fuzzer turn this off to compare. */
extern bool lt_llm_fast_path;

/* A complete non-streaming response body. */
void lt_llm_response(lt_llm_call_t *c, const char *body, size_t len);

/* Copies n bytes of s (or j as compact JSON) into arena a; nothing (and
 * no copy) for an empty string, a NULL or an empty array. On failure sets
 * *rc to LT_ENOMEM. Shared by the proxy for the rest of its span. */
lt_str_t lt_llm_arena_str(lt_arena_t *a, const char *s, size_t n, int *rc);
lt_str_t lt_llm_arena_json(lt_arena_t *a, json_t *j, int *rc);

/* Fills the LLM fields of sp (kind, model, operation, provider unless
 * already set, tokens, messages, input/output text, finish reason, TTFT
 * from start_ns) with strings in arena a. Omit flags leave content out. */
int lt_llm_fill(lt_llm_call_t *c, lt_arena_t *a, int64_t start_ns, bool omit_request, bool omit_response,
                lt_span_t *sp);

#endif
