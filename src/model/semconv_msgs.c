/* Payload normalisation: chat messages and retrieved documents, whatever
 * the dialect, into one schema (docs/semconv.md):
 *   [{"role","content","tool_calls":[{"id","name","arguments"}],
 *     "tool_call_id","name"}]
 * with absent keys omitted; content is a string, or an array of parts
 * ({"type":"text","text"} / {"type":"image","url"} ...) when the source had
 * more than one part or a non-text part; tool-call arguments are always a
 * string of JSON text, as chat APIs send them. Documents become
 * [{"id","content","score","metadata"}].
 *
 * Each side (input/output) has an ordered table of sources; the first that
 * yields a message wins. A source is either a flattened attribute list
 * described by a layout table, a JSON (or structured AnyValue) attribute,
 * or span events. Everything is built as a jansson tree in the canonical
 * shape and rendered once by json_out.c, except flattened lists of plain
 * text (the bulk of OpenInference traffic), which are rendered straight
 * to JSON with the same bytes (flat_direct, docs_direct). Malformed JSON
 * costs only that source (with a warning); malformed elements are
 * skipped. */
#include "core/err.h"
#include "core/mem.h"
#include "model/json_out.h"
#include "model/semconv_int.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A message builder: jansson reports allocation failure as NULL almost
 * everywhere, so failures are sticky in oom and checked once at the end. */
typedef struct {
  lt__sc_t *c;
  bool oom;
  int rc; /* first LT_E* error from elsewhere (warnings) */
} mb_t;

static json_t *chk(mb_t *m, json_t *v) {
  if (!v) m->oom = true;
  return v;
}

static json_t *jstrn(mb_t *m, const char *p, size_t n) { return chk(m, json_stringn_nocheck(p ? p : "", n)); }

/* Sets obj[key] = v, consuming v; NULL v is "absent" and sets nothing. */
static void put(mb_t *m, json_t *obj, const char *key, json_t *v) {
  if (!v || !obj) {
    json_decref(v);
    return;
  }
  if (json_object_set_new_nocheck(obj, key, v)) m->oom = true;
}

static void push(mb_t *m, json_t *arr, json_t *v) {
  if (!v || !arr) {
    json_decref(v);
    return;
  }
  if (json_array_append_new(arr, v)) m->oom = true;
}

/* key may be a list prefix ("llm.input_messages."): named without the dot */
static void warn(mb_t *m, const char *key, const char *why) {
  size_t n = strlen(key);
  if (n && key[n - 1] == '.') n--;
  int rc = lt__sc_warn(m->c, key, n, why);
  if (rc && !m->rc) m->rc = rc;
}

/* A string from JSON: strings as they are, anything else as JSON text
 * (tool arguments and results are often objects). NULL stays NULL. */
static json_t *as_text(mb_t *m, const json_t *v) {
  if (!v || json_is_null(v)) return NULL;
  if (json_is_string(v)) return jstrn(m, json_string_value(v), json_string_length(v));
  lt_buf_t *b = &m->c->buf;
  lt_buf_reset(b);
  if (lt__json_tree(b, v)) {
    m->oom = true;
    return NULL;
  }
  return jstrn(m, b->ptr, b->len);
}

/* The same for an attribute value. */
static json_t *val_text(mb_t *m, const lt_val_t *v) {
  if (!v || v->type == LT_VAL_EMPTY) return NULL;
  if (v->type == LT_VAL_STR) return jstrn(m, v->u.s.ptr, v->u.s.len);
  lt_buf_t *b = &m->c->buf;
  lt_buf_reset(b);
  if (lt__json_val(b, v)) {
    m->oom = true;
    return NULL;
  }
  return jstrn(m, b->ptr, b->len);
}

/* A structured value from an attribute: AnyValue arrays and maps as they
 * are; strings parsed as JSON. *bad is set for a string that looks like
 * JSON but does not parse; other strings give NULL quietly, so a caller
 * can take them as plain text. */
static json_t *val_tree(mb_t *m, const lt_val_t *v, bool *bad) {
  *bad = false;
  if (!v) return NULL;
  if (v->type == LT_VAL_ARRAY || v->type == LT_VAL_KVLIST) return chk(m, lt__val_tree(v));
  if (v->type != LT_VAL_STR) return NULL;
  size_t i = 0;
  while (i < v->u.s.len && strchr(" \t\r\n", v->u.s.ptr[i])) i++;
  if (i == v->u.s.len || (v->u.s.ptr[i] != '[' && v->u.s.ptr[i] != '{')) return NULL;
  json_t *t = lt__json_parse(v->u.s.ptr, v->u.s.len);
  if (!t) *bad = true;
  return t;
}

/* obj[key] when it is a string, else NULL. */
static const json_t *get_str(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? v : NULL;
}

static json_t *copy_str(mb_t *m, const json_t *obj, const char *key) {
  const json_t *v = get_str(obj, key);
  return v ? jstrn(m, json_string_value(v), json_string_length(v)) : NULL;
}

/* A field that may hold JSON text instead of structure (event bodies and
 * OpenAI-style tool_calls often do): the parsed tree, owned by obj. */
static json_t *structured(mb_t *m, json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  if (!json_is_string(v)) return v;
  json_t *t = lt__json_parse(json_string_value(v), json_string_length(v));
  if (!t || (!json_is_object(t) && !json_is_array(t))) {
    json_decref(t);
    return v;
  }
  if (json_object_set_new_nocheck(obj, key, t)) m->oom = true;
  return json_object_get(obj, key);
}

/* ---- assembling canonical messages ----------------------------------------- */

/* A content part list collapses to a plain string when it is one text part. */
static json_t *finish_content(mb_t *m, json_t *parts) {
  size_t n = json_array_size(parts);
  if (n == 0) {
    json_decref(parts);
    return NULL;
  }
  json_t *p0 = json_array_get(parts, 0);
  if (n == 1 && json_object_size(p0) == 2 && json_is_string(json_object_get(p0, "type")) &&
      strcmp(json_string_value(json_object_get(p0, "type")), "text") == 0 && get_str(p0, "text")) {
    json_t *s = json_incref(json_object_get(p0, "text"));
    json_decref(parts);
    return s;
  }
  return parts;
}

static json_t *text_part(mb_t *m, json_t *text) {
  if (!text) return NULL;
  json_t *p = chk(m, json_object());
  put(m, p, "type", jstrn(m, "text", 4));
  put(m, p, "text", text);
  return p;
}

static json_t *tool_call(mb_t *m, json_t *id, json_t *name, json_t *args) {
  if (!id && !name && !args) return NULL;
  json_t *tc = chk(m, json_object());
  put(m, tc, "id", id);
  put(m, tc, "name", name);
  put(m, tc, "arguments", args);
  return tc;
}

/* Appends {role, content, tool_calls, tool_call_id, name} (in that order,
 * absent keys omitted) to msgs, consuming every argument. An empty array
 * of tool calls counts as absent; a message with nothing is dropped. */
static void emit(mb_t *m, json_t *msgs, json_t *role, json_t *content, json_t *calls, json_t *call_id,
                 json_t *name) {
  if (calls && json_array_size(calls) == 0) {
    json_decref(calls);
    calls = NULL;
  }
  if (!role && !content && !calls && !call_id) {
    json_decref(name);
    return;
  }
  json_t *msg = chk(m, json_object());
  put(m, msg, "role", role);
  put(m, msg, "content", content);
  put(m, msg, "tool_calls", calls);
  put(m, msg, "tool_call_id", call_id);
  put(m, msg, "name", name);
  push(m, msgs, msg);
}

/* ---- OpenAI-shaped content (event bodies, older JSON prompts) ---------------- */

static json_t *chat_content(mb_t *m, const json_t *v) {
  if (!v || json_is_null(v)) return NULL;
  if (!json_is_array(v)) return as_text(m, v);
  json_t *parts = chk(m, json_array());
  size_t i;
  const json_t *e;
  json_array_foreach(v, i, e) {
    if (json_is_string(e)) {
      push(m, parts, text_part(m, as_text(m, e)));
      continue;
    }
    const json_t *type = get_str(e, "type");
    if (!type) continue;
    const char *t = json_string_value(type);
    if (strcmp(t, "text") == 0 || strcmp(t, "input_text") == 0 || strcmp(t, "output_text") == 0) {
      const json_t *txt = get_str(e, "text") ? get_str(e, "text") : get_str(e, "content");
      push(m, parts, text_part(m, as_text(m, txt)));
    } else if (strcmp(t, "image_url") == 0 || strcmp(t, "image") == 0) {
      const json_t *u = json_object_get(e, "image_url");
      if (json_is_object(u)) u = json_object_get(u, "url");
      if (!json_is_string(u)) u = get_str(e, "url");
      json_t *p = chk(m, json_object());
      put(m, p, "type", jstrn(m, "image", 5));
      put(m, p, "url", as_text(m, u));
      push(m, parts, p);
    } else {
      json_t *p = chk(m, json_object());
      put(m, p, "type", as_text(m, type));
      push(m, parts, p);
    }
  }
  return finish_content(m, parts);
}

/* [{id, type, function:{name, arguments}}] (or flat {id, name, arguments}). */
static json_t *chat_tool_calls(mb_t *m, const json_t *v) {
  if (!json_is_array(v)) return NULL;
  json_t *out = chk(m, json_array());
  size_t i;
  const json_t *e;
  json_array_foreach(v, i, e) {
    if (!json_is_object(e)) continue;
    const json_t *fn = json_object_get(e, "function");
    const json_t *src = json_is_object(fn) ? fn : e;
    push(m, out, tool_call(m, copy_str(m, e, "id"), copy_str(m, src, "name"),
                           as_text(m, json_object_get(src, "arguments"))));
  }
  return out;
}

/* ---- GenAI parts (gen_ai.input.messages / output.messages / system_instructions) */

/* A GenAI part list split into content parts, tool calls and tool-call
 * responses ({id, response}). */
typedef struct {
  json_t *content, *calls, *responses;
} parts_t;

static void genai_parts(mb_t *m, const json_t *parts, parts_t *out) {
  out->content = chk(m, json_array());
  out->calls = chk(m, json_array());
  out->responses = chk(m, json_array());
  size_t i;
  const json_t *p;
  json_array_foreach(parts, i, p) {
    const json_t *type = get_str(p, "type");
    if (!type) continue;
    const char *t = json_string_value(type);
    if (strcmp(t, "text") == 0) {
      push(m, out->content, text_part(m, as_text(m, json_object_get(p, "content"))));
    } else if (strcmp(t, "tool_call") == 0) {
      push(m, out->calls, tool_call(m, copy_str(m, p, "id"), copy_str(m, p, "name"),
                                    as_text(m, json_object_get(p, "arguments"))));
    } else if (strcmp(t, "tool_call_response") == 0) {
      /* the schema says "response"; some instrumentations write "result" */
      const json_t *r = json_object_get(p, "response");
      if (!r) r = json_object_get(p, "result");
      json_t *resp = chk(m, json_object());
      put(m, resp, "id", copy_str(m, p, "id"));
      put(m, resp, "content", as_text(m, r));
      push(m, out->responses, resp);
    } else {
      json_t *q = chk(m, json_object());
      const json_t *modality = get_str(p, "modality");
      if (strcmp(t, "reasoning") == 0) {
        put(m, q, "type", as_text(m, type));
        put(m, q, "text", as_text(m, json_object_get(p, "content")));
      } else if (strcmp(t, "uri") == 0 && modality) {
        put(m, q, "type", as_text(m, modality));
        put(m, q, "url", as_text(m, json_object_get(p, "uri")));
      } else if (strcmp(t, "blob") == 0 && modality && get_str(p, "content")) {
        /* inline data as a data: URL, as chat APIs carry images */
        const json_t *mime = get_str(p, "mime_type"), *data = get_str(p, "content");
        lt_buf_t *b = &m->c->buf;
        lt_buf_reset(b);
        int rc = lt_buf_printf(b, "data:%s;base64,", mime ? json_string_value(mime) : "application/octet-stream");
        if (rc == 0) rc = lt_buf_append(b, json_string_value(data), json_string_length(data));
        if (rc) m->oom = true;
        put(m, q, "type", as_text(m, modality));
        if (rc == 0) put(m, q, "url", jstrn(m, b->ptr, b->len));
      } else if (strcmp(t, "file") == 0 && modality) {
        put(m, q, "type", as_text(m, modality));
        put(m, q, "file_id", copy_str(m, p, "file_id"));
      } else {
        put(m, q, "type", as_text(m, type));
      }
      push(m, out->content, q);
    }
  }
}

/* One element of a JSON message list: GenAI ({role, parts, name}) or
 * chat-API shaped ({role, content, tool_calls, tool_call_id, name}). */
static void json_message(mb_t *m, json_t *msgs, json_t *e, json_t **finish) {
  if (!json_is_object(e)) return;
  json_t *role = copy_str(m, e, "role");
  if (*finish == NULL && get_str(e, "finish_reason")) *finish = copy_str(m, e, "finish_reason");
  const json_t *parts = json_object_get(e, "parts");
  if (!json_is_array(parts)) {
    emit(m, msgs, role, chat_content(m, json_object_get(e, "content")),
         chat_tool_calls(m, structured(m, e, "tool_calls")), copy_str(m, e, "tool_call_id"), copy_str(m, e, "name"));
    return;
  }
  parts_t pt;
  genai_parts(m, parts, &pt);
  size_t nresp = json_array_size(pt.responses);
  if (json_array_size(pt.content) || json_array_size(pt.calls) || nresp == 0) {
    emit(m, msgs, json_incref(role), finish_content(m, pt.content), pt.calls, NULL, copy_str(m, e, "name"));
  } else {
    json_decref(pt.content);
    json_decref(pt.calls);
  }
  /* each tool result becomes its own message, as chat APIs have them */
  for (size_t i = 0; i < nresp; i++) {
    json_t *r = json_array_get(pt.responses, i);
    emit(m, msgs, role ? json_incref(role) : jstrn(m, "tool", 4), json_incref(json_object_get(r, "content")), NULL,
         json_incref(json_object_get(r, "id")), NULL);
  }
  json_decref(pt.responses);
  json_decref(role);
}

/* ---- sources ------------------------------------------------------------------- */

/* A flattened message list: suffixes after `<prefix><i>.`. */
typedef struct {
  const char *role, *content, *tool_call_id, *name, *finish_reason;
  const char *parts, *part_type, *part_text, *part_image; /* sub-list of content parts */
  const char *calls, *call_id, *call_name, *call_args;     /* sub-list of tool calls */
  const char *fn_name, *fn_args;                          /* legacy single function call */
} flat_layout_t;

/* OpenInference: llm.input_messages.<i>.message.* */
static const flat_layout_t oi_layout = {
  .role = "message.role", .content = "message.content", .tool_call_id = "message.tool_call_id",
  .name = "message.name", .parts = "message.contents.", .part_type = "message_content.type",
  .part_text = "message_content.text", .part_image = "message_content.image.image.url",
  .calls = "message.tool_calls.", .call_id = "tool_call.id", .call_name = "tool_call.function.name",
  .call_args = "tool_call.function.arguments", .fn_name = "message.function_call_name",
  .fn_args = "message.function_call_arguments_json",
};

/* Older GenAI / OpenLLMetry: gen_ai.prompt.<i>.*, gen_ai.completion.<i>.* */
static const flat_layout_t genai_flat_layout = {
  .role = "role", .content = "content", .tool_call_id = "tool_call_id", .finish_reason = "finish_reason",
  .calls = "tool_calls.", .call_id = "id", .call_name = "name", .call_args = "arguments",
};

/* Builds a lookup key; false when it would not fit (it cannot exist then). */
static bool mkkey(char dst[LT_SC_MAX_KEY], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool mkkey(char dst[LT_SC_MAX_KEY], const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(dst, LT_SC_MAX_KEY, fmt, ap);
  va_end(ap);
  return n >= 0 && n < LT_SC_MAX_KEY;
}

static const lt_val_t *sub(const lt__aidx_t *ix, const char *base, const char *suffix) {
  return suffix ? lt__idx_get2(ix, base, suffix) : NULL;
}

static void flat_messages(mb_t *m, json_t *msgs, const char *prefix, const flat_layout_t *L, json_t **finish) {
  const lt__aidx_t *ix = &m->c->ix;
  uint8_t bits[LT_SC_BITS_LEN], bits2[LT_SC_BITS_LEN];
  bool over = false;
  char base[LT_SC_MAX_KEY], base2[LT_SC_MAX_KEY];
  int n = lt__idx_list(ix, prefix, bits, &over);
  for (int i = 0; i < n && !m->oom; i++) {
    if (!lt__bit(bits, i)) continue;
    if (!mkkey(base, "%s%d.", prefix, i)) continue;
    json_t *content = NULL;
    if (L->parts) {
      int np = mkkey(base2, "%s%s", base, L->parts) ? lt__idx_list(ix, base2, bits2, &over) : 0;
      if (np) {
        json_t *parts = chk(m, json_array());
        for (int j = 0; j < np; j++) {
          if (!lt__bit(bits2, j)) continue;
          char pb[LT_SC_MAX_KEY];
          if (!mkkey(pb, "%s%d.", base2, j)) continue;
          const lt_val_t *type = sub(ix, pb, L->part_type), *text = sub(ix, pb, L->part_text),
                         *img = sub(ix, pb, L->part_image);
          json_t *p = chk(m, json_object());
          put(m, p, "type", type ? val_text(m, type) : jstrn(m, img ? "image" : "text", img ? 5 : 4));
          put(m, p, "text", val_text(m, text));
          put(m, p, "url", val_text(m, img));
          push(m, parts, p);
        }
        content = finish_content(m, parts);
      }
    }
    if (!content) content = val_text(m, sub(ix, base, L->content));
    json_t *calls = NULL;
    if (L->calls) {
      int nc = mkkey(base2, "%s%s", base, L->calls) ? lt__idx_list(ix, base2, bits2, &over) : 0;
      if (nc) {
        calls = chk(m, json_array());
        for (int j = 0; j < nc; j++) {
          if (!lt__bit(bits2, j)) continue;
          char cb[LT_SC_MAX_KEY];
          if (!mkkey(cb, "%s%d.", base2, j)) continue;
          push(m, calls, tool_call(m, val_text(m, sub(ix, cb, L->call_id)), val_text(m, sub(ix, cb, L->call_name)),
                                   val_text(m, sub(ix, cb, L->call_args))));
        }
      }
    }
    const lt_val_t *fn = sub(ix, base, L->fn_name);
    if (fn) {
      if (!calls) calls = chk(m, json_array());
      push(m, calls, tool_call(m, NULL, val_text(m, fn), val_text(m, sub(ix, base, L->fn_args))));
    }
    const lt_val_t *fr = sub(ix, base, L->finish_reason);
    if (!*finish && fr && fr->type == LT_VAL_STR) *finish = val_text(m, fr);
    emit(m, msgs, val_text(m, sub(ix, base, L->role)), content, calls, val_text(m, sub(ix, base, L->tool_call_id)),
         val_text(m, sub(ix, base, L->name)));
  }
  if (over) warn(m, prefix, "list index above 1000 ignored");
}

/* A JSON (or structured) attribute holding a message list. */
static void json_messages(mb_t *m, json_t *msgs, const char *key, json_t **finish) {
  const lt_val_t *v = lt__idx_get(&m->c->ix, key, strlen(key));
  if (!v) return;
  bool bad;
  json_t *t = val_tree(m, v, &bad);
  if (json_is_array(t)) {
    size_t i;
    json_t *e;
    json_array_foreach(t, i, e) json_message(m, msgs, e, finish);
  } else if (bad) {
    warn(m, key, "malformed JSON");
  } else {
    warn(m, key, "not a JSON array of messages");
  }
  json_decref(t);
}

/* gen_ai.system_instructions: parts (or plain text) as one system message,
 * ahead of gen_ai.input.messages. */
static void system_instructions(mb_t *m, json_t *msgs, const char *key) {
  const lt_val_t *v = lt__idx_get(&m->c->ix, key, strlen(key));
  if (!v) return;
  bool bad;
  json_t *t = val_tree(m, v, &bad);
  json_t *content = NULL;
  if (json_is_array(t)) {
    parts_t pt;
    genai_parts(m, t, &pt);
    content = finish_content(m, pt.content);
    json_decref(pt.calls);
    json_decref(pt.responses);
  } else if (bad) {
    warn(m, key, "malformed JSON");
  } else if (!t) {
    content = val_text(m, v);
  }
  json_decref(t);
  if (content) emit(m, msgs, jstrn(m, "system", 6), content, NULL, NULL, NULL);
}

/* Span events that carry one message each (the GenAI event conventions, as
 * span events: the event body's fields are the event's attributes, or a
 * JSON object in gen_ai.event.content), or a JSON list of messages in one
 * attribute (the oldest gen_ai.content.prompt/completion events). */
typedef struct {
  const char *event, *role; /* role: the message's default role */
  bool output;
  const char *list_attr;    /* the attribute holding a message list */
} msg_event_t;

static const msg_event_t msg_events[] = {
  {"gen_ai.system.message", "system", false, NULL},
  {"gen_ai.user.message", "user", false, NULL},
  {"gen_ai.assistant.message", "assistant", false, NULL},
  {"gen_ai.tool.message", "tool", false, NULL},
  {"gen_ai.choice", "assistant", true, NULL},
  {"gen_ai.content.prompt", NULL, false, "gen_ai.prompt"},
  {"gen_ai.content.completion", NULL, true, "gen_ai.completion"},
};

static json_t *event_body(mb_t *m, const lt_otlp_event_t *ev) {
  lt_val_t kv = {.type = LT_VAL_KVLIST};
  kv.u.kv.items = ev->attrs.items;
  kv.u.kv.n = ev->attrs.n;
  json_t *body = chk(m, lt__val_tree(&kv));
  /* held while merging: the merge may replace the key that holds it */
  json_t *packed = json_incref(structured(m, body, "gen_ai.event.content"));
  if (json_is_object(packed) && json_object_update(body, packed)) m->oom = true;
  json_decref(packed);
  return body;
}

static void event_messages(mb_t *m, json_t *msgs, bool output, json_t **finish) {
  for (size_t i = 0; i < m->c->n_events && !m->oom; i++) {
    const lt_otlp_event_t *ev = &m->c->events[i];
    const msg_event_t *me = NULL;
    for (size_t k = 0; k < sizeof msg_events / sizeof msg_events[0]; k++)
      if (lt_str_eq_lit(ev->name, msg_events[k].event)) me = &msg_events[k];
    if (!me || me->output != output) continue;
    json_t *body = event_body(m, ev);
    if (!body) continue;
    if (me->list_attr) {
      json_t *list = structured(m, body, me->list_attr);
      size_t j;
      json_t *e;
      if (json_is_array(list)) json_array_foreach(list, j, e) json_message(m, msgs, e, finish);
    } else {
      json_t *msg = body;
      if (me->output) { /* gen_ai.choice: {index, finish_reason, message} */
        if (!*finish && get_str(body, "finish_reason")) *finish = copy_str(m, body, "finish_reason");
        json_t *inner = structured(m, body, "message");
        if (json_is_object(inner)) msg = inner;
      }
      json_t *role = copy_str(m, msg, "role");
      if (!role) role = jstrn(m, me->role, strlen(me->role));
      json_t *call_id = strcmp(me->role, "tool") == 0 ? copy_str(m, msg, "id") : NULL;
      emit(m, msgs, role, chat_content(m, json_object_get(msg, "content")),
           chat_tool_calls(m, structured(m, msg, "tool_calls")), call_id, NULL);
    }
    json_decref(body);
  }
}

/* ---- Vercel AI SDK (ai.prompt.messages, ai.response.*) -------------------------- */

/* A tool call part or entry: {toolCallId, toolName, input | args}. */
static json_t *vercel_tool_call(mb_t *m, const json_t *e) {
  const json_t *args = json_object_get(e, "input");
  if (!args) args = json_object_get(e, "args");
  return tool_call(m, copy_str(m, e, "toolCallId"), copy_str(m, e, "toolName"), as_text(m, args));
}

/* A tool result's payload: v5+ wraps it as {type, value}. */
static json_t *vercel_tool_output(mb_t *m, const json_t *p) {
  const json_t *r = json_object_get(p, "output");
  if (!r) r = json_object_get(p, "result");
  if (json_is_object(r) && json_object_get(r, "value") && get_str(r, "type")) r = json_object_get(r, "value");
  return as_text(m, r);
}

/* {role, content: string | [parts]} with parts text, image, file,
 * reasoning, tool-call and tool-result (each result its own tool message). */
static void vercel_message(mb_t *m, json_t *msgs, const json_t *e) {
  if (!json_is_object(e)) return;
  const json_t *content = json_object_get(e, "content");
  if (!json_is_array(content)) {
    emit(m, msgs, copy_str(m, e, "role"), as_text(m, content), NULL, NULL, NULL);
    return;
  }
  json_t *parts = chk(m, json_array()), *calls = chk(m, json_array()), *results = chk(m, json_array());
  size_t i;
  const json_t *p;
  json_array_foreach(content, i, p) {
    const json_t *type = get_str(p, "type");
    if (!type) continue;
    const char *t = json_string_value(type);
    if (strcmp(t, "text") == 0) {
      push(m, parts, text_part(m, copy_str(m, p, "text")));
    } else if (strcmp(t, "tool-call") == 0) {
      push(m, calls, vercel_tool_call(m, p));
    } else if (strcmp(t, "tool-result") == 0) {
      json_t *r = chk(m, json_object());
      put(m, r, "id", copy_str(m, p, "toolCallId"));
      put(m, r, "name", copy_str(m, p, "toolName"));
      put(m, r, "content", vercel_tool_output(m, p));
      push(m, results, r);
    } else {
      json_t *q = chk(m, json_object());
      if (strcmp(t, "reasoning") == 0) {
        put(m, q, "type", as_text(m, type));
        put(m, q, "text", copy_str(m, p, "text"));
      } else if (strcmp(t, "image") == 0 || strcmp(t, "file") == 0) {
        /* inline data or a URL; a file is an image when its media type says so */
        const json_t *mt = get_str(p, "mediaType");
        bool image = strcmp(t, "image") == 0 || (mt && strncmp(json_string_value(mt), "image/", 6) == 0);
        const json_t *data = json_object_get(p, strcmp(t, "image") == 0 ? "image" : "data");
        put(m, q, "type", image ? jstrn(m, "image", 5) : jstrn(m, "file", 4));
        if (json_is_string(data)) put(m, q, "url", as_text(m, data));
      } else {
        put(m, q, "type", as_text(m, type));
      }
      push(m, parts, q);
    }
  }
  if (json_array_size(parts) || json_array_size(calls) || json_array_size(results) == 0)
    emit(m, msgs, copy_str(m, e, "role"), finish_content(m, parts), calls, NULL, NULL);
  else {
    json_decref(parts);
    json_decref(calls);
  }
  const json_t *r;
  json_array_foreach(results, i, r) {
    emit(m, msgs, jstrn(m, "tool", 4), json_incref(json_object_get(r, "content")), NULL,
         json_incref(json_object_get(r, "id")), json_incref(json_object_get(r, "name")));
  }
  json_decref(results);
}

static void vercel_input(mb_t *m, json_t *msgs, const char *key) {
  const lt_val_t *v = lt__idx_get(&m->c->ix, key, strlen(key));
  if (!v) return;
  bool bad;
  const json_t *t = lt__sc_json(m->c, v, &bad);
  if (!json_is_array(t)) {
    warn(m, key, bad || v->type == LT_VAL_STR ? "malformed JSON" : "not a JSON array of messages");
    return;
  }
  size_t i;
  const json_t *e;
  json_array_foreach(t, i, e) vercel_message(m, msgs, e);
}

/* One assistant message from ai.response.text (or .object) and
 * ai.response.toolCalls. */
static void vercel_output(mb_t *m, json_t *msgs) {
  const lt__aidx_t *ix = &m->c->ix;
  const lt_val_t *text = lt__idx_get(ix, "ai.response.text", strlen("ai.response.text"));
  if (!text) text = lt__idx_get(ix, "ai.response.object", strlen("ai.response.object"));
  const lt_val_t *tc = lt__idx_get(ix, "ai.response.toolCalls", strlen("ai.response.toolCalls"));
  if (!text && !tc) return;
  json_t *calls = NULL;
  if (tc) {
    bool bad;
    const json_t *t = lt__sc_json(m->c, tc, &bad);
    if (json_is_array(t)) {
      calls = chk(m, json_array());
      size_t i;
      const json_t *e;
      json_array_foreach(t, i, e) if (json_is_object(e)) push(m, calls, vercel_tool_call(m, e));
    } else {
      warn(m, "ai.response.toolCalls", bad || tc->type == LT_VAL_STR ? "malformed JSON" : "not a JSON array");
    }
  }
  json_t *content = text && !(text->type == LT_VAL_STR && text->u.s.len == 0) ? val_text(m, text) : NULL;
  if (!content && !json_array_size(calls)) {
    json_decref(calls);
    return;
  }
  emit(m, msgs, jstrn(m, "assistant", 9), content, calls, NULL, NULL);
}

/* ---- Langfuse observation input/output ------------------------------------------- */

/* langfuse.observation.input/output are free-form JSON: taken as messages
 * only when they are a message ({role, ...}), a list of messages, or an
 * object holding one under "messages" (the OpenAI integration's input
 * when tools are offered). Anything else is just generic input/output,
 * so no warning. */
static void langfuse_messages(mb_t *m, json_t *msgs, const char *key, json_t **finish) {
  const lt_val_t *v = lt__idx_get(&m->c->ix, key, strlen(key));
  bool bad;
  const json_t *t = lt__sc_json(m->c, v, &bad);
  if (json_is_object(t) && json_is_array(json_object_get(t, "messages"))) t = json_object_get(t, "messages");
  if (json_is_object(t) && get_str(t, "role")) {
    json_message(m, msgs, (json_t *)t, finish);
    return;
  }
  size_t i;
  json_t *e;
  json_array_foreach(t, i, e) if (get_str(e, "role")) json_message(m, msgs, e, finish);
}

/* The ordered sources of each side: the first that yields a message wins. */
typedef enum { SRC_FLAT, SRC_JSON, SRC_SYSTEM_AND_JSON, SRC_VERCEL_IN, SRC_VERCEL_OUT, SRC_LANGFUSE, SRC_EVENTS } src_kind_t;
typedef struct {
  src_kind_t kind;
  const char *key, *key2;       /* prefix or attribute; key2: the JSON list after system */
  const flat_layout_t *layout;
} msg_src_t;

static const msg_src_t input_srcs[] = {
  {SRC_FLAT, "llm.input_messages.", NULL, &oi_layout},
  {SRC_SYSTEM_AND_JSON, "gen_ai.system_instructions", "gen_ai.input.messages", NULL},
  {SRC_FLAT, "gen_ai.prompt.", NULL, &genai_flat_layout},
  {SRC_VERCEL_IN, "ai.prompt.messages", NULL, NULL},
  {SRC_JSON, "pydantic_ai.all_messages", NULL, NULL},
  {SRC_LANGFUSE, "langfuse.observation.input", NULL, NULL},
  {SRC_EVENTS, NULL, NULL, NULL},
};

static const msg_src_t output_srcs[] = {
  {SRC_FLAT, "llm.output_messages.", NULL, &oi_layout},
  {SRC_JSON, "gen_ai.output.messages", NULL, NULL},
  {SRC_FLAT, "gen_ai.completion.", NULL, &genai_flat_layout},
  {SRC_VERCEL_OUT, NULL, NULL, NULL},
  {SRC_LANGFUSE, "langfuse.observation.output", NULL, NULL},
  {SRC_EVENTS, NULL, NULL, NULL},
};

/* Plain text of canonical messages for search and previews: text content
 * and tool calls as name(arguments), one piece per line. */
static int messages_text(mb_t *m, const json_t *msgs, lt_buf_t *b) {
  size_t i, j;
  const json_t *msg, *e;
  int rc = 0;
#define PIECE(p, n)                                                 \
  do {                                                              \
    if (rc == 0 && b->len) rc = lt_buf_append(b, "\n", 1);          \
    if (rc == 0) rc = lt_buf_append(b, (p), (n));                   \
  } while (0)
  json_array_foreach(msgs, i, msg) {
    const json_t *content = json_object_get(msg, "content");
    if (json_is_string(content)) PIECE(json_string_value(content), json_string_length(content));
    json_array_foreach(content, j, e) {
      const json_t *t = get_str(e, "text");
      if (t) PIECE(json_string_value(t), json_string_length(t));
    }
    json_array_foreach(json_object_get(msg, "tool_calls"), j, e) {
      const json_t *n = get_str(e, "name"), *a = get_str(e, "arguments");
      if (!n) continue;
      PIECE(json_string_value(n), json_string_length(n));
      if (rc == 0) rc = lt_buf_append(b, "(", 1);
      if (rc == 0 && a) rc = lt_buf_append(b, json_string_value(a), json_string_length(a));
      if (rc == 0) rc = lt_buf_append(b, ")", 1);
    }
  }
#undef PIECE
  return rc;
}

/* ---- direct rendering of simple flattened lists ------------------------------------ */

/* The common case — a flattened list of plain text values — is rendered
 * straight into the scratch buffer, with no jansson tree: the tree costs a
 * copy of every (multi-KB) text, key hashing, a render and a free. The
 * direct renderer is used only when its output is provably the tree's
 * (text or empty values, no content-part lists); anything else goes
 * through the tree builders above. */

/* What a direct renderer did, besides failing with an LT_E* error. */
enum {
  DIRECT_TREE = 0, /* nothing: the tree builders must handle the source */
  DIRECT_DONE = 1, /* rendered the list */
  DIRECT_NONE = 2, /* the source has no keys at all: nothing to do */
};

/* Appends to a buffer with a sticky error. */
typedef struct {
  lt_buf_t *b;
  int rc;
} jw_t;

static void w_raw(jw_t *w, const char *s, size_t n) {
  if (w->rc == 0) w->rc = lt_buf_append(w->b, s, n);
}

/* A text value (STR) as a JSON string. */
static void w_text(jw_t *w, const lt_val_t *v) {
  if (w->rc == 0) w->rc = lt_buf_json_str(w->b, v->u.s.ptr ? v->u.s.ptr : "", v->u.s.len);
}

/* Opens member k ("\"k\":") of an object, after a comma unless first. */
static void w_key(jw_t *w, bool *first, const char *k, size_t n) {
  if (!*first) w_raw(w, ",", 1);
  *first = false;
  w_raw(w, k, n);
}
#define W_KEY(w, first, lit) w_key((w), (first), lit, sizeof lit - 1)

/* Member k with text v, unless v is absent. */
#define W_TEXT(w, first, lit, v)   \
  do {                             \
    if (v) {                       \
      W_KEY(w, first, lit);        \
      w_text((w), (v));            \
    }                              \
  } while (0)

/* A value as the tree builders take it through val_text: text, or absent
 * (NULL) when missing or empty. Only STR and EMPTY reach here. */
static const lt_val_t *dtext(const lt_val_t *v) { return v && v->type == LT_VAL_STR ? v : NULL; }

/* Appends s (and, when idx >= 0, "<idx>.") to the key k of length n;
 * returns the new length, or 0 when the key would not fit (such a key
 * cannot exist, as mkkey says). k stays NUL-terminated. */
static size_t key_add(char k[LT_SC_MAX_KEY], size_t n, const char *s, int idx) {
  char num[16];
  size_t sl = strlen(s), nl = 0;
  if (idx >= 0) nl = (size_t)snprintf(num, sizeof num, "%d.", idx);
  if (n + sl + nl >= LT_SC_MAX_KEY) return 0;
  memcpy(k + n, s, sl);
  memcpy(k + n + sl, num, nl);
  k[n + sl + nl] = '\0';
  return n + sl + nl;
}

/* The value of key k[0..n) + suffix, as sub() finds it. */
static const lt_val_t *key_get(const lt__aidx_t *ix, char k[LT_SC_MAX_KEY], size_t n, const char *suffix) {
  if (!suffix) return NULL;
  size_t sl = strlen(suffix);
  if (n + sl >= LT_SC_MAX_KEY) return NULL;
  memcpy(k + n, suffix, sl);
  return lt__idx_get(ix, k, n + sl);
}

/* Elision of texts whose attribute is known. lt__sc_elide maps the first
 * attribute (in span order) with the same bytes; when no other long text
 * attribute has the same length, that can only be the source itself, so
 * the byte comparison is skipped. Otherwise lt__sc_elide decides. */
#define ELIDE_TRACK 64
typedef struct {
  bool built, many; /* many: more long texts than tracked */
  size_t n;
  struct {
    size_t len, pos;
  } a[ELIDE_TRACK];
} elide_t;

static int elide_direct(lt__sc_t *c, elide_t *e, const lt_val_t *v, const char *field, size_t idx) {
  size_t len = v->u.s.len;
  if (!c->skip || len < LT__SC_ELIDE_MIN) return 0;
  if (!e->built) {
    e->built = true;
    for (size_t i = 0; i < c->attrs->n && !e->many; i++) {
      const lt_val_t *av = &c->attrs->items[i].val;
      if (c->skip[i] || av->type != LT_VAL_STR || av->u.s.len < LT__SC_ELIDE_MIN) continue;
      if (e->n == ELIDE_TRACK) {
        e->many = true;
      } else {
        e->a[e->n].len = av->u.s.len;
        e->a[e->n++].pos = i;
      }
    }
  }
  /* the attribute holding v: values are found through the index, which
   * points into c->attrs */
  uintptr_t at = (uintptr_t)v - offsetof(lt_kv_t, val), lo = (uintptr_t)c->attrs->items;
  size_t pos = SIZE_MAX, same = 0;
  if (at >= lo && at < lo + c->attrs->n * sizeof(lt_kv_t) && (at - lo) % sizeof(lt_kv_t) == 0)
    pos = (at - lo) / sizeof(lt_kv_t);
  bool self = false;
  for (size_t i = 0; i < e->n && !e->many && pos != SIZE_MAX; i++) {
    if (e->a[i].len != len) continue;
    same++;
    self |= e->a[i].pos == pos;
  }
  if (e->many || pos == SIZE_MAX || same != 1 || !self)
    return lt__sc_elide(c, v->u.s.ptr, len, "/%s/%zu/content", field, idx);
  if (c->skip[pos]) return 0;
  /* the entry lt__sc_elide writes: "key":"/field/idx/content" (plain ASCII) */
  char num[24], *d = num + sizeof num;
  do *--d = (char)('0' + idx % 10);
  while (idx /= 10);
  const lt_kv_t *kv = &c->attrs->items[pos];
  jw_t w = {&c->elided, 0};
  w_raw(&w, c->n_elided++ ? "," : "{", 1);
  if (w.rc == 0) w.rc = lt_buf_json_str(w.b, kv->key.ptr, kv->key.len);
  w_raw(&w, ":\"/", 3);
  w_raw(&w, field, strlen(field));
  w_raw(&w, "/", 1);
  w_raw(&w, d, (size_t)(num + sizeof num - d));
  w_raw(&w, "/content\"", 9);
  if (w.rc == 0) c->skip[pos] = true;
  return w.rc;
}

/* Whether the flattened list under prefix can be rendered directly
 * (DIRECT_DONE): every value text or empty, and no content-part list
 * (those become part arrays or collapse, which the tree builders do).
 * *calls: whether any key might belong to a tool-call list. */
static int flat_simple(const lt__aidx_t *ix, const char *prefix, const flat_layout_t *L, bool *calls) {
  size_t first, end, plen = strlen(prefix);
  size_t partlen = L->parts ? strlen(L->parts) : 0, calllen = L->calls ? strlen(L->calls) : 0;
  lt__idx_prefix(ix, prefix, plen, &first, &end);
  *calls = false;
  if (first == end) return DIRECT_NONE;
  for (size_t k = first; k < end; k++) {
    const lt_kv_t *kv = ix->kv[k];
    if (kv->val.type != LT_VAL_STR && kv->val.type != LT_VAL_EMPTY) return DIRECT_TREE;
    const char *p = kv->key.ptr + plen, *e = kv->key.ptr + kv->key.len;
    while (p < e && *p >= '0' && *p <= '9') p++;
    if (p == e || *p != '.') continue;
    size_t rest = (size_t)(e - ++p);
    if (partlen && rest >= partlen && memcmp(p, L->parts, partlen) == 0) return DIRECT_TREE;
    if (calllen && rest >= calllen && memcmp(p, L->calls, calllen) == 0) *calls = true;
  }
  return DIRECT_DONE;
}

/* A piece of messages_text: a content text, or a tool call name(args). */
typedef struct {
  const lt_val_t *text, *args;
  bool call;
} piece_t;

typedef struct {
  piece_t *p;
  size_t n, cap;
  piece_t small[32];
} pieces_t;

static int piece_add(pieces_t *ps, const lt_val_t *text, const lt_val_t *args, bool call) {
  if (ps->n == ps->cap) {
    size_t cap = ps->cap * 2;
    piece_t *p = ps->p == ps->small ? lt_malloc(cap * sizeof *p) : lt_realloc(ps->p, cap * sizeof *p);
    if (!p) return LT_ENOMEM;
    if (ps->p == ps->small) memcpy(p, ps->small, sizeof ps->small);
    ps->p = p;
    ps->cap = cap;
  }
  ps->p[ps->n++] = (piece_t){text, args, call};
  return 0;
}

/* The pieces joined as messages_text joins them, straight into the arena. */
static int pieces_text(lt_arena_t *a, const pieces_t *ps, lt_str_t *out) {
  size_t total = 0;
  for (size_t i = 0; i < ps->n; i++) {
    const piece_t *p = &ps->p[i];
    total += (total ? 1 : 0) + p->text->u.s.len;
    if (p->call) total += 2 + (p->args ? p->args->u.s.len : 0);
  }
  *out = LT_STR_NULL;
  if (!total) return 0;
  char *d = lt_arena_alloc(a, total + 1), *o = d;
  if (!d) return LT_ETOOBIG;
  for (size_t i = 0; i < ps->n; i++) {
    const piece_t *p = &ps->p[i];
    if (o > d) *o++ = '\n';
    if (p->text->u.s.len) memcpy(o, p->text->u.s.ptr, p->text->u.s.len);
    o += p->text->u.s.len;
    if (!p->call) continue;
    *o++ = '(';
    if (p->args && p->args->u.s.len) memcpy(o, p->args->u.s.ptr, p->args->u.s.len);
    o += p->args ? p->args->u.s.len : 0;
    *o++ = ')';
  }
  *o = '\0';
  *out = (lt_str_t){d, total};
  return 0;
}

/* One tool call {id, name, arguments} of a message, opening the message's
 * tool_calls array at the first; absent when it has none of the three. */
static int direct_call(jw_t *w, pieces_t *ps, bool *first, size_t *ncalls, const lt_val_t *id,
                       const lt_val_t *name, const lt_val_t *args) {
  if (!id && !name && !args) return 0;
  if ((*ncalls)++) w_raw(w, ",", 1);
  else W_KEY(w, first, "\"tool_calls\":[");
  bool f = true;
  w_raw(w, "{", 1);
  W_TEXT(w, &f, "\"id\":", id);
  W_TEXT(w, &f, "\"name\":", name);
  W_TEXT(w, &f, "\"arguments\":", args);
  w_raw(w, "}", 1);
  return name ? piece_add(ps, name, args, true) : 0;
}

/* flat_messages, rendered directly. DIRECT_DONE: json, text, elision,
 * finish reason and warnings are all done; DIRECT_TREE: the tree builders
 * must do it (nothing observable has happened then). */
static int flat_direct(mb_t *m, const char *prefix, const flat_layout_t *L, bool output, lt_str_t *json,
                       lt_str_t *text) {
  lt__sc_t *c = m->c;
  const lt__aidx_t *ix = &c->ix;
  bool has_calls, over = false;
  int simple = flat_simple(ix, prefix, L, &has_calls);
  if (simple != DIRECT_DONE) return simple;
  uint8_t bits[LT_SC_BITS_LEN], bits2[LT_SC_BITS_LEN];
  char base[LT_SC_MAX_KEY], k2[LT_SC_MAX_KEY];
  int n = lt__idx_list(ix, prefix, bits, &over);
  const char *field = output ? "output_messages" : "input_messages";
  jw_t w = {&c->buf, 0};
  pieces_t ps = {.p = ps.small, .cap = sizeof ps.small / sizeof ps.small[0]};
  elide_t el = {0};
  const lt_val_t *finish = NULL;
  size_t nmsg = 0;
  lt_buf_reset(w.b);
  w_raw(&w, "[", 1);
  for (int i = 0; i < n && w.rc == 0; i++) {
    if (!lt__bit(bits, i)) continue;
    size_t bl = key_add(base, 0, prefix, i);
    if (!bl) continue;
    const lt_val_t *role = dtext(key_get(ix, base, bl, L->role));
    const lt_val_t *content = dtext(key_get(ix, base, bl, L->content));
    const lt_val_t *call_id = dtext(key_get(ix, base, bl, L->tool_call_id));
    const lt_val_t *name = dtext(key_get(ix, base, bl, L->name));
    const lt_val_t *fn = key_get(ix, base, bl, L->fn_name), *fr = key_get(ix, base, bl, L->finish_reason);
    if (!finish && fr && fr->type == LT_VAL_STR) finish = fr;
    /* written before the tool calls show whether the message has anything;
     * an empty one is taken back */
    size_t mark = w.b->len, np = ps.n, ncalls = 0;
    bool first = true;
    w_raw(&w, nmsg ? ",{" : "{", nmsg ? 2 : 1);
    W_TEXT(&w, &first, "\"role\":", role);
    W_TEXT(&w, &first, "\"content\":", content);
    if (content && w.rc == 0) w.rc = piece_add(&ps, content, NULL, false);
    size_t b2 = 0;
    if (has_calls) {
      memcpy(k2, base, bl); /* base[bl..] holds the last lookup's suffix */
      b2 = key_add(k2, bl, L->calls, -1);
    }
    int nc = b2 ? lt__idx_list(ix, k2, bits2, &over) : 0;
    for (int j = 0; j < nc && w.rc == 0; j++) {
      if (!lt__bit(bits2, j)) continue;
      char cb[LT_SC_MAX_KEY];
      size_t cl = key_add(cb, 0, k2, j);
      if (!cl) continue;
      int rc = direct_call(&w, &ps, &first, &ncalls, dtext(key_get(ix, cb, cl, L->call_id)),
                           dtext(key_get(ix, cb, cl, L->call_name)), dtext(key_get(ix, cb, cl, L->call_args)));
      if (rc && !w.rc) w.rc = rc;
    }
    if (fn) {
      int rc = direct_call(&w, &ps, &first, &ncalls, NULL, dtext(fn), dtext(key_get(ix, base, bl, L->fn_args)));
      if (rc && !w.rc) w.rc = rc;
    }
    if (ncalls) w_raw(&w, "]", 1);
    if (!role && !content && !ncalls && !call_id) {
      if (w.rc == 0) {
        w.b->len = mark;
        w.b->ptr[mark] = '\0';
      }
      ps.n = np;
      continue;
    }
    W_TEXT(&w, &first, "\"tool_call_id\":", call_id);
    W_TEXT(&w, &first, "\"name\":", name);
    w_raw(&w, "}", 1);
    if (content && w.rc == 0) w.rc = elide_direct(c, &el, content, field, nmsg);
    nmsg++;
  }
  w_raw(&w, "]", 1);
  int rc = w.rc;
  /* no message: DIRECT_TREE, so the tree builders warn and the next source is tried */
  if (rc == 0 && nmsg == 0) goto out;
  if (rc == 0 && over) warn(m, prefix, "list index above 1000 ignored");
  if (rc == 0) rc = m->rc;
  if (rc == 0) rc = lt__buf_to_arena(c->a, w.b, json);
  if (rc == 0) rc = pieces_text(c->a, &ps, text);
  if (rc == 0 && finish && output) {
    c->out_finish_reason = lt_arena_strdup(c->a, finish->u.s.ptr ? finish->u.s.ptr : "", finish->u.s.len);
    if (!c->out_finish_reason.ptr) rc = LT_ETOOBIG;
  }
  if (rc == 0) rc = DIRECT_DONE;
out:
  if (ps.p != ps.small) lt_free(ps.p);
  return rc;
}

int lt__sc_messages(lt__sc_t *c, bool output, lt_str_t *json, lt_str_t *text) {
  mb_t m = {.c = c};
  const msg_src_t *srcs = output ? output_srcs : input_srcs;
  size_t nsrc = output ? sizeof output_srcs / sizeof output_srcs[0] : sizeof input_srcs / sizeof input_srcs[0];
  json_t *msgs = NULL, *finish = NULL; /* msgs made when a tree builder needs it */
  int rc = 0;
  *json = *text = LT_STR_NULL;
  for (size_t s = 0; s < nsrc && !m.oom && json_array_size(msgs) == 0; s++) {
    const msg_src_t *src = &srcs[s];
    if (src->kind == SRC_FLAT) {
      rc = flat_direct(&m, src->key, src->layout, output, json, text);
      if (rc == DIRECT_NONE) {
        rc = 0;
        continue;
      }
      if (rc) break;
    }
    if (!msgs && !(msgs = chk(&m, json_array()))) break;
    switch (src->kind) {
    case SRC_FLAT: flat_messages(&m, msgs, src->key, src->layout, &finish); break;
    case SRC_JSON: json_messages(&m, msgs, src->key, &finish); break;
    case SRC_SYSTEM_AND_JSON:
      system_instructions(&m, msgs, src->key);
      json_messages(&m, msgs, src->key2, &finish);
      break;
    case SRC_VERCEL_IN: vercel_input(&m, msgs, src->key); break;
    case SRC_VERCEL_OUT: vercel_output(&m, msgs); break;
    case SRC_LANGFUSE: langfuse_messages(&m, msgs, src->key, &finish); break;
    case SRC_EVENTS: event_messages(&m, msgs, output, &finish); break;
    }
    /* a source that yielded nothing must not leave a finish reason behind */
    if (json_array_size(msgs) == 0 && finish) {
      json_decref(finish);
      finish = NULL;
    }
  }
  if (rc) { /* rendered directly, or failed */
    json_decref(msgs);
    return rc == DIRECT_DONE ? 0 : rc;
  }
  if (m.oom) rc = LT_ENOMEM;
  if (rc == 0 && m.rc) rc = m.rc;
  if (rc == 0 && json_array_size(msgs)) {
    lt_buf_t *b = &c->buf;
    lt_buf_reset(b);
    rc = lt__sc_elide_contents(c, msgs, output ? "output_messages" : "input_messages");
    if (rc == 0) rc = lt__json_tree(b, msgs);
    if (rc == 0) rc = lt__buf_to_arena(c->a, b, json);
    if (rc == 0) {
      lt_buf_reset(b);
      rc = messages_text(&m, msgs, b);
    }
    if (rc == 0) rc = lt__buf_to_arena(c->a, b, text);
  }
  if (rc == 0 && finish && output) {
    c->out_finish_reason = lt_arena_strdup(c->a, json_string_value(finish), json_string_length(finish));
    if (!c->out_finish_reason.ptr) rc = LT_ETOOBIG;
  }
  json_decref(finish);
  json_decref(msgs);
  return rc;
}

/* ---- documents ------------------------------------------------------------------- */

/* One document in canonical order; values consumed. Metadata given as
 * JSON text becomes structure when it parses (Python-repr text stays a
 * string). */
static void emit_doc(mb_t *m, json_t *docs, json_t *id, json_t *content, json_t *score, json_t *meta) {
  if (!id && !content && !score && !meta) return;
  if (json_is_string(meta)) {
    json_t *t = lt__json_parse(json_string_value(meta), json_string_length(meta));
    if (json_is_object(t) || json_is_array(t)) {
      json_decref(meta);
      meta = t;
    } else {
      json_decref(t);
    }
  }
  json_t *d = chk(m, json_object());
  put(m, d, "id", id);
  put(m, d, "content", content);
  put(m, d, "score", score);
  put(m, d, "metadata", meta);
  push(m, docs, d);
}

static json_t *val_score(mb_t *m, const lt_val_t *v) {
  double d;
  const char *why;
  if (!v || lt__cv_double(v, &d, &why) != LT__CV_OK) return NULL;
  return chk(m, json_real(d));
}

static void flat_documents(mb_t *m, json_t *docs, const char *prefix) {
  const lt__aidx_t *ix = &m->c->ix;
  uint8_t bits[LT_SC_BITS_LEN];
  bool over = false;
  char base[LT_SC_MAX_KEY];
  int n = lt__idx_list(ix, prefix, bits, &over);
  if (n) {
    for (int i = 0; i < n && !m->oom; i++) {
      if (!lt__bit(bits, i)) continue;
      if (!mkkey(base, "%s%d.document.", prefix, i)) continue;
      const lt_val_t *meta = sub(ix, base, "metadata");
      emit_doc(m, docs, val_text(m, sub(ix, base, "id")), val_text(m, sub(ix, base, "content")),
               val_score(m, sub(ix, base, "score")),
               meta && (meta->type == LT_VAL_KVLIST || meta->type == LT_VAL_ARRAY) ? chk(m, lt__val_tree(meta))
                                                                                   : val_text(m, meta));
    }
  }
  if (over) warn(m, prefix, "list index above 1000 ignored");
}

static void json_documents(mb_t *m, json_t *docs, const char *key) {
  const lt_val_t *v = lt__idx_get(&m->c->ix, key, strlen(key));
  if (!v) return;
  bool bad;
  json_t *t = val_tree(m, v, &bad);
  if (json_is_array(t)) {
    size_t i;
    json_t *e;
    json_array_foreach(t, i, e) {
      if (!json_is_object(e)) continue;
      const json_t *score = json_object_get(e, "score");
      json_t *meta = json_object_get(e, "metadata");
      emit_doc(m, docs, as_text(m, json_object_get(e, "id")), as_text(m, json_object_get(e, "content")),
               json_is_number(score) ? chk(m, json_real(json_number_value(score))) : NULL,
               meta && !json_is_null(meta) ? json_incref(meta) : NULL);
    }
  } else {
    warn(m, key, bad ? "malformed JSON" : "not a JSON array of documents");
  }
  json_decref(t);
}

static bool ends_with(lt_str_t s, const char *suffix) {
  size_t n = strlen(suffix);
  return s.len >= n && memcmp(s.ptr + s.len - n, suffix, n) == 0;
}

/* Whether flattened documents can be rendered directly: id, content and
 * metadata text or empty (scores may be anything: val_score reads them
 * the same either way), and metadata shallow enough that rendering its
 * parsed JSON on its own nests no deeper than LT_JSON_MAX_DEPTH allows
 * inside the document list (two levels down): fewer than
 * LT_JSON_MAX_DEPTH - 1 opening brackets bound the depth. */
static int docs_simple(const lt__aidx_t *ix, const char *prefix) {
  size_t first, end;
  lt__idx_prefix(ix, prefix, strlen(prefix), &first, &end);
  if (first == end) return DIRECT_NONE;
  for (size_t k = first; k < end; k++) {
    const lt_kv_t *kv = ix->kv[k];
    if (ends_with(kv->key, ".document.score") || kv->val.type == LT_VAL_EMPTY) continue;
    if (kv->val.type != LT_VAL_STR) return DIRECT_TREE;
    if (!ends_with(kv->key, ".document.metadata")) continue;
    int open = 0;
    for (size_t i = 0; i < kv->val.u.s.len && open < LT_JSON_MAX_DEPTH - 1; i++)
      open += kv->val.u.s.ptr[i] == '[' || kv->val.u.s.ptr[i] == '{';
    if (open >= LT_JSON_MAX_DEPTH - 1) return DIRECT_TREE;
  }
  return DIRECT_DONE;
}

/* JSON whitespace, as jansson skips it. */
static bool json_ws(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

/* A string token of printable ASCII without escapes at s[*i] ('"'):
 * jansson decodes it to its bytes and lt_buf_json_str writes them back
 * unchanged. On success *i is past the closing quote. */
static bool plain_str(const char *s, size_t n, size_t *i) {
  size_t j = *i + 1;
  while (j < n && s[j] >= 0x20 && s[j] <= 0x7e && s[j] != '"' && s[j] != '\\') j++;
  if (j >= n || s[j] != '"') return false;
  *i = j + 1;
  return true;
}

/* Metadata JSON text that is one object or array of plain scalars
 * (strings as plain_str takes them, integers, true, false, null): written
 * as lt__json_parse and lt__json_tree would give it, i.e. the same tokens
 * without whitespace. Anything else — other strings, reals (reformatted),
 * "-0", big integers, nesting, duplicate keys (jansson keeps the last
 * value in the first key's place), malformed text — writes nothing and
 * returns false. */
static bool flat_json(jw_t *w, const char *s, size_t n) {
  size_t i = 0, mark = w->b->len, nk = 0, keys[32][2];
  while (i < n && json_ws(s[i])) i++;
  if (i == n || (s[i] != '{' && s[i] != '[')) return false;
  bool obj = s[i] == '{';
  char close = obj ? '}' : ']';
  w_raw(w, &s[i++], 1);
  while (i < n && json_ws(s[i])) i++;
  if (i < n && s[i] == close) {
    i++;
  } else {
    for (;;) {
      size_t start = i;
      if (obj) {
        if (i == n || s[i] != '"' || !plain_str(s, n, &i) || nk == sizeof keys / sizeof keys[0]) goto fail;
        for (size_t k = 0; k < nk; k++)
          if (keys[k][1] == i - start && memcmp(s + keys[k][0], s + start, i - start) == 0) goto fail;
        keys[nk][0] = start;
        keys[nk++][1] = i - start;
        w_raw(w, s + start, i - start);
        w_raw(w, ":", 1);
        while (i < n && json_ws(s[i])) i++;
        if (i == n || s[i] != ':') goto fail;
        i++;
        while (i < n && json_ws(s[i])) i++;
        start = i;
      }
      if (i == n) goto fail;
      if (s[i] == '"') {
        if (!plain_str(s, n, &i)) goto fail;
      } else if (n - i >= 4 && (memcmp(s + i, "true", 4) == 0 || memcmp(s + i, "null", 4) == 0)) {
        i += 4;
      } else if (n - i >= 5 && memcmp(s + i, "false", 5) == 0) {
        i += 5;
      } else {
        if (s[i] == '-') i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        /* jansson prints integers back as parsed: all but -0, leading zeros
         * (an error there) and anything near the int64 limits */
        if (i == d || i - d > 18 || (s[d] == '0' && (i - d > 1 || s[start] == '-'))) goto fail;
      }
      /* a token must end at whitespace, ',' or the close ("12.5", "truex" do not) */
      w_raw(w, s + start, i - start);
      while (i < n && json_ws(s[i])) i++;
      if (i < n && s[i] == close) {
        i++;
        break;
      }
      if (i == n || s[i] != ',') goto fail;
      w_raw(w, ",", 1);
      i++;
      while (i < n && json_ws(s[i])) i++;
    }
  }
  while (i < n && json_ws(s[i])) i++;
  if (i != n) goto fail;
  w_raw(w, &close, 1);
  return true;
fail:
  if (w->rc) return true; /* out of memory: the error stands */
  w->b->len = mark;
  w->b->ptr[mark] = '\0';
  return false;
}

/* flat_documents, rendered directly; returns as flat_direct does. */
static int docs_direct(mb_t *m, const char *prefix, lt_str_t *json) {
  lt__sc_t *c = m->c;
  const lt__aidx_t *ix = &c->ix;
  int simple = docs_simple(ix, prefix);
  if (simple != DIRECT_DONE) return simple;
  uint8_t bits[LT_SC_BITS_LEN];
  bool over = false;
  char base[LT_SC_MAX_KEY];
  int n = lt__idx_list(ix, prefix, bits, &over);
  jw_t w = {&c->buf, 0};
  elide_t el = {0};
  size_t ndoc = 0;
  lt_buf_reset(w.b);
  w_raw(&w, "[", 1);
  for (int i = 0; i < n && w.rc == 0; i++) {
    if (!lt__bit(bits, i)) continue;
    size_t bl = key_add(base, 0, prefix, i);
    bl = bl ? key_add(base, bl, "document.", -1) : 0;
    if (!bl) continue;
    const lt_val_t *id = dtext(key_get(ix, base, bl, "id")), *content = dtext(key_get(ix, base, bl, "content")),
                   *sv = key_get(ix, base, bl, "score"), *meta = dtext(key_get(ix, base, bl, "metadata"));
    double score;
    const char *why;
    bool has_score = sv && lt__cv_double(sv, &score, &why) == LT__CV_OK;
    if (!id && !content && !has_score && !meta) continue;
    bool first = true;
    w_raw(&w, ndoc ? ",{" : "{", ndoc ? 2 : 1);
    W_TEXT(&w, &first, "\"id\":", id);
    W_TEXT(&w, &first, "\"content\":", content);
    if (has_score) {
      W_KEY(&w, &first, "\"score\":");
      if (w.rc == 0) w.rc = lt__json_double(w.b, score);
    }
    if (meta) {
      /* JSON text becomes structure when it parses (as emit_doc does) */
      W_KEY(&w, &first, "\"metadata\":");
      if (w.rc == 0 && !flat_json(&w, meta->u.s.ptr ? meta->u.s.ptr : "", meta->u.s.len)) {
        json_t *t = lt__json_parse(meta->u.s.ptr, meta->u.s.len);
        if (json_is_object(t) || json_is_array(t)) {
          if (w.rc == 0) w.rc = lt__json_tree(w.b, t);
        } else {
          w_text(&w, meta);
        }
        json_decref(t);
      }
    }
    w_raw(&w, "}", 1);
    if (content && w.rc == 0) w.rc = elide_direct(c, &el, content, "documents", ndoc);
    ndoc++;
  }
  w_raw(&w, "]", 1);
  int rc = w.rc;
  if (rc == 0 && ndoc == 0) return DIRECT_TREE;
  if (rc == 0 && over) warn(m, prefix, "list index above 1000 ignored");
  if (rc == 0) rc = m->rc;
  if (rc == 0) rc = lt__buf_to_arena(c->a, w.b, json);
  return rc ? rc : DIRECT_DONE;
}

/* Documents: the first source with any wins. */
static const struct {
  bool flat;
  const char *key;
} doc_srcs[] = {
  {true, "retrieval.documents."},
  {false, "gen_ai.retrieval.documents"},
  {true, "reranker.output_documents."},
};

int lt__sc_documents(lt__sc_t *c, lt_str_t *json) {
  mb_t m = {.c = c};
  json_t *docs = NULL; /* made when a tree builder needs it */
  int rc = 0;
  *json = LT_STR_NULL;
  for (size_t s = 0; s < sizeof doc_srcs / sizeof doc_srcs[0] && !m.oom && json_array_size(docs) == 0; s++) {
    if (doc_srcs[s].flat && (rc = docs_direct(&m, doc_srcs[s].key, json))) {
      if (rc != DIRECT_NONE) break;
      rc = 0;
      continue;
    }
    if (!docs && !(docs = chk(&m, json_array()))) break;
    if (doc_srcs[s].flat) flat_documents(&m, docs, doc_srcs[s].key);
    else json_documents(&m, docs, doc_srcs[s].key);
  }
  if (rc) { /* rendered directly, or failed */
    json_decref(docs);
    return rc == DIRECT_DONE ? 0 : rc;
  }
  if (m.oom) rc = LT_ENOMEM;
  if (rc == 0 && m.rc) rc = m.rc;
  if (rc == 0 && json_array_size(docs)) {
    lt_buf_reset(&c->buf);
    rc = lt__sc_elide_contents(c, docs, "documents");
    if (rc == 0) rc = lt__json_tree(&c->buf, docs);
    if (rc == 0) rc = lt__buf_to_arena(c->a, &c->buf, json);
  }
  json_decref(docs);
  return rc;
}

/* ---- inline scores --------------------------------------------------------------- */

/* Appends {name, value?, string_value?, comment?, source} unless it has
 * neither a name nor a value; consumes its arguments. */
static void emit_score(mb_t *m, json_t *scores, json_t *name, json_t *value, json_t *label, json_t *comment,
                       const char *source) {
  if (!name || (!value && !label)) {
    json_decref(name);
    json_decref(value);
    json_decref(label);
    json_decref(comment);
    return;
  }
  json_t *s = chk(m, json_object());
  put(m, s, "name", name);
  put(m, s, "value", value);
  put(m, s, "string_value", label);
  put(m, s, "comment", comment);
  put(m, s, "source", jstrn(m, source, strlen(source)));
  push(m, scores, s);
}

/* OpenInference-style flattened evaluations: `<prefix><i>.<item>.{name,
 * score, label, explanation, annotator_kind}`. Human annotations come in
 * through the API; LLM and code annotators are evaluators. */
static void flat_scores(mb_t *m, json_t *scores, const char *prefix, const char *item, const char *dflt) {
  const lt__aidx_t *ix = &m->c->ix;
  uint8_t bits[LT_SC_BITS_LEN];
  bool over = false;
  char base[LT_SC_MAX_KEY];
  int n = lt__idx_list(ix, prefix, bits, &over);
  for (int i = 0; i < n && !m->oom; i++) {
    if (!lt__bit(bits, i) || !mkkey(base, "%s%d.%s.", prefix, i, item)) continue;
    const lt_val_t *kind = sub(ix, base, "annotator_kind");
    const char *source = dflt;
    if (kind && kind->type == LT_VAL_STR) source = lt_str_eq_lit(kind->u.s, "HUMAN") ? "api" : "evaluator";
    const lt_val_t *label = sub(ix, base, "label");
    emit_score(m, scores, val_text(m, sub(ix, base, "name")), val_score(m, sub(ix, base, "score")),
               label && label->type == LT_VAL_STR && label->u.s.len ? val_text(m, label) : NULL,
               val_text(m, sub(ix, base, "explanation")), source);
  }
  if (over) warn(m, prefix, "list index above 1000 ignored");
}

/* gen_ai.evaluation.result span events. */
static void event_scores(mb_t *m, json_t *scores) {
  for (size_t i = 0; i < m->c->n_events && !m->oom; i++) {
    const lt_otlp_event_t *ev = &m->c->events[i];
    if (!lt_str_eq_lit(ev->name, "gen_ai.evaluation.result")) continue;
    const lt_val_t *label = lt_attrs_get(&ev->attrs, "gen_ai.evaluation.score.label");
    emit_score(m, scores, val_text(m, lt_attrs_get(&ev->attrs, "gen_ai.evaluation.name")),
               val_score(m, lt_attrs_get(&ev->attrs, "gen_ai.evaluation.score.value")),
               label && label->type == LT_VAL_STR && label->u.s.len ? val_text(m, label) : NULL,
               val_text(m, lt_attrs_get(&ev->attrs, "gen_ai.evaluation.explanation")), "evaluator");
  }
}

int lt__sc_scores(lt__sc_t *c, lt_str_t *json) {
  mb_t m = {.c = c};
  json_t *scores = chk(&m, json_array());
  int rc = 0;
  *json = LT_STR_NULL;
  flat_scores(&m, scores, "annotations.", "annotation", "api");
  flat_scores(&m, scores, "evaluations.", "evaluation", "evaluator");
  event_scores(&m, scores);
  if (m.oom) rc = LT_ENOMEM;
  if (rc == 0 && m.rc) rc = m.rc;
  if (rc == 0 && json_array_size(scores)) {
    lt_buf_reset(&c->buf);
    rc = lt__json_tree(&c->buf, scores);
    if (rc == 0) rc = lt__buf_to_arena(c->a, &c->buf, json);
  }
  json_decref(scores);
  return rc;
}
