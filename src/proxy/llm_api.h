/* What the bodies of the LLM APIs the proxy understands mean: OpenAI chat
 * completions, completions, embeddings and responses; Anthropic messages.
 * A call's state collects the request, then the response (a JSON body or
 * the stream's events), and finally fills a canonical span. Bodies are
 * read into arena trees (core/jdom.h) and the span's JSON is written with
 * a buffer, so a call costs a handful of allocations. Bodies that do not
 * parse leave the fields empty; nothing here fails a call. */
#ifndef LT_LLM_API_H
#define LT_LLM_API_H
#include <stdbool.h>
#include <stdint.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/jdom.h"
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

/* Token counts found in the usage objects, -1 when absent (or not a
 * non-negative integer). Nested "*_details" counts have slots of their own. */
enum {
  LT_U_PROMPT, LT_U_COMPLETION, LT_U_TOTAL, LT_U_INPUT, LT_U_OUTPUT, LT_U_CACHE_READ, LT_U_CACHE_CREATION,
  LT_U_PROMPT_CACHED, LT_U_COMPLETION_REASONING, LT_U_INPUT_CACHED, LT_U_OUTPUT_REASONING, LT_U__COUNT
};

/* Anthropic content block indexes that can carry a tool call. */
#define LT_LLM_TOOL_BLOCKS 128

/* A streamed tool call. */
typedef struct {
  lt_buf_t id, name, arguments;
} lt_llm_tool_t;

typedef struct {
  lt_llm_api_t api;
  lt_arena_t *arena;           /* the request, its tree, the response's tree */
  bool own_arena;              /* made (and freed) by the call */
  size_t ev_bytes;             /* taken from arena by stream events' trees */
  lt_arena_t *ev_arena;        /* past a few of those: theirs, renewed as it fills */
  lt_str_t body;               /* the call's copy of the request body (in arena) */
  lt_jd_t *req;                /* the parsed request, or NULL */
  bool stream;
  bool usage_added;            /* we asked for stream usage: strip its chunk */
  /* from the response */
  lt_jd_t *resp;               /* a parsed non-streaming response */
  lt_buf_t text;               /* streamed output text */
  lt_buf_t reasoning;          /* streamed reasoning/thinking text */
  lt_llm_tool_t *tools;        /* streamed tool calls */
  size_t n_tools;
  bool has_usage;              /* a usage object was seen */
  int64_t usage[LT_U__COUNT];  /* the last usage seen (Anthropic's merged) */
  char model[256];
  char finish[64];
  char response_id[128];
  int64_t first_token_ns;      /* -1 until the first content event */
  bool saw_event;
  bool saw_end;                /* the stream's closing event ([DONE], message_stop, response.completed) */
  int tool_of_block[LT_LLM_TOOL_BLOCKS]; /* Anthropic content block index → tools slot + 1 */
  char stream_error[256];      /* an error event inside a 200 stream */
  unsigned fast_events;        /* events read by the fast path (for tests) */
} lt_llm_call_t;

void lt_llm_init(lt_llm_call_t *c, lt_llm_api_t api);
void lt_llm_free(lt_llm_call_t *c);
/* Trees and the request copy go to a, which outlives the call (the proxy
 * shares one arena among a loop's calls), instead of an arena the call
 * makes. Before lt_llm_request. */
void lt_llm_use_arena(lt_llm_call_t *c, lt_arena_t *a);

/* Reads the request body, keeping a copy of it in c->body (whatever the
 * API, when len > 0). When add_stream_usage and the call is an OpenAI
 * chat or completions stream without stream_options.include_usage, writes
 * a new body asking for it into *out (caller frees with lt_free) and sets
 * usage_added; else *out stays NULL. The new body is the old one with that
 * member inserted: every other byte is kept. Returns 0 or LT_ENOMEM. */
int lt_llm_request(lt_llm_call_t *c, const char *body, size_t len, bool add_stream_usage, char **out,
                   size_t *out_len);

/* body (a JSON object) with its "model" set to model, the rest kept byte
 * for byte, into out. Returns 0, LT_EDECODE when body is not an object,
 * or LT_ENOMEM. */
int lt_llm_set_model(const char *body, size_t len, const char *model, lt_buf_t *out);

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

/* A complete non-streaming response body; it must stay valid until the
 * span is filled (the tree points into it). */
void lt_llm_response(lt_llm_call_t *c, const char *body, size_t len);

/* Copies n bytes of s into arena a; nothing (and no copy) for an empty
 * string. On failure sets *rc to LT_ENOMEM. Shared by the proxy for the
 * rest of its span. */
lt_str_t lt_llm_arena_str(lt_arena_t *a, const char *s, size_t n, int *rc);

/* A caller-given metadata member (the proxy's Lanterna-Property-*). */
typedef struct {
  const char *key, *value;
} lt_llm_prop_t;

typedef struct {
  int64_t start_ns;            /* TTFT counts from here */
  bool omit_request, omit_response;
  lt_buf_t *scratch;           /* where JSON is written before its copy into the arena; NULL: a private one */
  const lt_llm_prop_t *props;  /* metadata members over the request's parameters (later ones win) */
  size_t n_props;
} lt_llm_fill_opts_t;

/* Fills the LLM fields of sp (kind, model, operation, tokens, messages,
 * input/output text, finish reason, TTFT) and its metadata (the request's
 * generation parameters, then props) with strings in arena a. Omit flags
 * leave content out. Calls of another API get only the metadata. */
int lt_llm_fill_ex(lt_llm_call_t *c, lt_arena_t *a, const lt_llm_fill_opts_t *o, lt_span_t *sp);
/* The same without props, with a private scratch buffer. */
int lt_llm_fill(lt_llm_call_t *c, lt_arena_t *a, int64_t start_ns, bool omit_request, bool omit_response,
                lt_span_t *sp);

#endif
