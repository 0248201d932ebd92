/* Names for the canonical enums, and span initialisation. */
#include "model/span.h"
#include <strings.h>

static const char *const kind_names[] = {
#define LT_KIND_NAME_(k) #k,
  LT_SPAN_KINDS(LT_KIND_NAME_)
#undef LT_KIND_NAME_
};

const char *lt_kind_name(lt_kind_t k) {
  return (unsigned)k < LT_KIND__COUNT ? kind_names[k] : "UNKNOWN";
}

lt_kind_t lt_kind_parse(lt_str_t s) {
  for (int k = 0; k < LT_KIND__COUNT; k++)
    if (s.len == strlen(kind_names[k]) && strncasecmp(s.ptr, kind_names[k], s.len) == 0)
      return (lt_kind_t)k;
  return LT_KIND_UNKNOWN;
}

const char *lt_status_name(lt_status_t s) {
  switch (s) {
  case LT_STATUS_OK: return "ok";
  case LT_STATUS_ERROR: return "error";
  default: return "unset";
  }
}

const char *lt_cost_source_name(lt_cost_source_t s) {
  switch (s) {
  case LT_COST_REPORTED: return "reported";
  case LT_COST_COMPUTED: return "computed";
  case LT_COST_NONE: return "none";
  default: return "unknown";
  }
}

void lt_span_init(lt_span_t *s) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < LT_TOK__COUNT; i++) s->tokens[i] = -1;
  s->ttft_ns = -1;
  s->input_includes_cache = -1;
  s->cost_source = LT_COST_UNKNOWN;
}
