/* The span payload blob: every large or rarely filtered field of a span in
 * one value, so the spans row stays thin and the bytes SQLite writes twice
 * (WAL, then checkpoint) are as few as possible.
 *
 * Format: one frame byte, then the body.
 *   frame 0: the body is the field list itself;
 *   frame 1: the body is one zstd frame (with its content size) holding it.
 * Field list: repeated (tag byte, LEB128 length, bytes). Text fields are
 * raw bytes; number fields are 8 bytes little-endian. Empty fields are left
 * out, unknown tags are skipped, so fields can be added later. */
#include "store/sqlite_internal.h"
#include "core/err.h"
#include "core/mem.h"
#include <string.h>

enum { FRAME_RAW = 0, FRAME_ZSTD = 1 };

/* Payloads below this many bytes are stored as they are: zstd's frame
 * overhead and call cost buy nothing there. */
#define MIN_COMPRESS 192

/* Makes b able to hold n bytes (plus its NUL) without appending: zstd
 * writes straight into the buffer. Honours b's cap. */
static int room(lt_buf_t *b, size_t n) {
  if (n > b->cap) return LT_ETOOBIG;
  if (n + 1 <= b->alloc) return 0;
  size_t a = b->alloc ? b->alloc : 256;
  while (a < n + 1) a *= 2;
  char *p = lt_realloc(b->ptr, a);
  if (!p) return LT_ENOMEM;
  b->ptr = p;
  b->alloc = a;
  return 0;
}

static int put_field(lt_buf_t *b, int tag, const void *p, size_t n) {
  if (n == 0) return 0;
  uint8_t hdr[11];
  size_t h = 0;
  hdr[h++] = (uint8_t)tag;
  size_t v = n;
  do {
    uint8_t byte = v & 0x7F;
    v >>= 7;
    hdr[h++] = (uint8_t)(byte | (v ? 0x80 : 0));
  } while (v);
  int rc = lt_buf_append(b, hdr, h);
  if (rc == 0) rc = lt_buf_append(b, p, n);
  return rc;
}

static int put_str(lt_buf_t *b, int tag, lt_str_t s) { return put_field(b, tag, s.ptr, s.len); }

static int put_num(lt_buf_t *b, int tag, int64_t v) {
  uint8_t le[8];
  uint64_t u = (uint64_t)v;
  for (int i = 0; i < 8; i++) le[i] = (uint8_t)(u >> (8 * i));
  return put_field(b, tag, le, 8);
}

int lt__sq_payload_encode(const lt_span_t *sp, lt_buf_t *raw) {
  lt_buf_reset(raw);
  int rc = 0;
  if (rc == 0) rc = put_str(raw, LT__P_STATUS_MESSAGE, sp->status_message);
  if (rc == 0) rc = put_str(raw, LT__P_ENVIRONMENT, sp->environment);
  if (rc == 0) rc = put_str(raw, LT__P_RELEASE, sp->release);
  if (rc == 0) rc = put_str(raw, LT__P_SCOPE, sp->scope);
  if (rc == 0) rc = put_str(raw, LT__P_PROVIDER, sp->provider);
  if (rc == 0) rc = put_str(raw, LT__P_OPERATION, sp->operation);
  if (rc == 0) rc = put_str(raw, LT__P_FINISH_REASON, sp->finish_reason);
  if (rc == 0) rc = put_str(raw, LT__P_PROMPT_NAME, sp->prompt_name);
  if (rc == 0) rc = put_str(raw, LT__P_PROMPT_VERSION, sp->prompt_version);
  if (rc == 0) rc = put_str(raw, LT__P_METADATA, sp->metadata);
  if (rc == 0) rc = put_str(raw, LT__P_INPUT, sp->input);
  if (rc == 0) rc = put_str(raw, LT__P_OUTPUT, sp->output);
  if (rc == 0) rc = put_str(raw, LT__P_INPUT_MESSAGES, sp->input_messages);
  if (rc == 0) rc = put_str(raw, LT__P_OUTPUT_MESSAGES, sp->output_messages);
  if (rc == 0) rc = put_str(raw, LT__P_DOCUMENTS, sp->documents);
  if (rc == 0) rc = put_str(raw, LT__P_ATTRIBUTES, sp->attributes);
  if (rc == 0) rc = put_str(raw, LT__P_RESOURCE, sp->resource);
  if (rc == 0) rc = put_str(raw, LT__P_EVENTS, sp->events);
  if (rc == 0) rc = put_str(raw, LT__P_LINKS, sp->links);
  if (rc == 0 && sp->tokens[LT_TOK_CACHE_READ] >= 0)
    rc = put_num(raw, LT__P_CACHE_READ_TOKENS, sp->tokens[LT_TOK_CACHE_READ]);
  if (rc == 0 && sp->tokens[LT_TOK_CACHE_WRITE] >= 0)
    rc = put_num(raw, LT__P_CACHE_WRITE_TOKENS, sp->tokens[LT_TOK_CACHE_WRITE]);
  if (rc == 0 && sp->tokens[LT_TOK_REASONING] >= 0)
    rc = put_num(raw, LT__P_REASONING_TOKENS, sp->tokens[LT_TOK_REASONING]);
  if (rc == 0) rc = put_str(raw, LT__P_FEATURE, sp->feature);
  if (rc == 0) rc = put_str(raw, LT__P_SCORES, sp->scores);
  if (rc == 0 && sp->usage_rollup) rc = put_num(raw, LT__P_USAGE_ROLLUP, 1);
  if (rc == 0 && (sp->cost_source == LT_COST_REPORTED || sp->cost_source == LT_COST_COMPUTED)) {
    rc = put_num(raw, LT__P_COST_INPUT, sp->cost_input);
    if (rc == 0) rc = put_num(raw, LT__P_COST_OUTPUT, sp->cost_output);
  }
  return rc;
}

int lt__sq_payload_pack(ZSTD_CCtx *zc, int level, const lt_buf_t *raw, lt_buf_t *out) {
  lt_buf_reset(out);
  uint8_t frame = FRAME_RAW;
  if (level != 0 && raw->len >= MIN_COMPRESS) {
    size_t bound = ZSTD_compressBound(raw->len);
    int rc = room(out, bound + 1);
    if (rc) return rc;
    size_t n = ZSTD_compressCCtx(zc, out->ptr + 1, bound, raw->ptr, raw->len, level);
    if (!ZSTD_isError(n) && n < raw->len) {
      out->len = n + 1;
      out->ptr[0] = FRAME_ZSTD;
      return 0;
    }
    lt_buf_reset(out);
  }
  int rc = lt_buf_append(out, &frame, 1);
  if (rc == 0) rc = lt_buf_append(out, raw->ptr, raw->len);
  return rc;
}

static int64_t get_num(lt_str_t v) {
  if (v.len != 8) return -1;
  uint64_t u = 0;
  for (int i = 7; i >= 0; i--) u = u << 8 | (uint8_t)v.ptr[i];
  return (int64_t)u;
}

int lt__sq_payload_decode(ZSTD_DCtx *dz, const void *blob, size_t len, lt_buf_t *scratch,
                          lt__sq_payload_t *p) {
  memset(p, 0, sizeof *p);
  p->cache_read = p->cache_write = p->reasoning = p->cost_input = p->cost_output = -1;
  if (len == 0) return 0;
  const uint8_t *b = blob;
  const uint8_t *body = b + 1;
  size_t n = len - 1;
  if (b[0] == FRAME_ZSTD) {
    unsigned long long size = ZSTD_getFrameContentSize(body, n);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > scratch->cap)
      return LT_EDECODE;
    lt_buf_reset(scratch);
    int rc = room(scratch, (size_t)size);
    if (rc) return rc;
    size_t got = ZSTD_decompressDCtx(dz, scratch->ptr, (size_t)size, body, n);
    if (ZSTD_isError(got) || got != size) return LT_EDECODE;
    scratch->len = got;
    body = (const uint8_t *)scratch->ptr;
    n = got;
  } else if (b[0] != FRAME_RAW) {
    return LT_EDECODE;
  }
  size_t i = 0;
  while (i < n) {
    int tag = body[i++];
    size_t flen = 0;
    int shift = 0;
    for (;;) {
      if (i >= n || shift > 56) return LT_EDECODE;
      uint8_t byte = body[i++];
      flen |= (size_t)(byte & 0x7F) << shift;
      shift += 7;
      if (!(byte & 0x80)) break;
    }
    if (flen > n - i) return LT_EDECODE;
    lt_str_t v = {(const char *)body + i, flen};
    i += flen;
    if (tag <= 0 || tag >= LT__P__COUNT) continue;
    p->f[tag] = v;
    switch (tag) {
    case LT__P_CACHE_READ_TOKENS: p->cache_read = get_num(v); break;
    case LT__P_CACHE_WRITE_TOKENS: p->cache_write = get_num(v); break;
    case LT__P_REASONING_TOKENS: p->reasoning = get_num(v); break;
    case LT__P_COST_INPUT: p->cost_input = get_num(v); break;
    case LT__P_COST_OUTPUT: p->cost_output = get_num(v); break;
    case LT__P_USAGE_ROLLUP: p->usage_rollup = get_num(v) == 1; break;
    default: break;
    }
  }
  return 0;
}

void lt__sq_fts_text(const lt__sq_payload_t *p, lt_str_t *input, lt_str_t *output) {
  *input = p->f[LT__P_INPUT].len ? p->f[LT__P_INPUT] : p->f[LT__P_INPUT_MESSAGES];
  *output = p->f[LT__P_OUTPUT].len ? p->f[LT__P_OUTPUT] : p->f[LT__P_OUTPUT_MESSAGES];
}

int64_t lt__sq_id8_to_int(const uint8_t id[8]) {
  uint64_t u = 0;
  for (int i = 0; i < 8; i++) u = u << 8 | id[i];
  return (int64_t)u;
}

void lt__sq_int_to_id8(int64_t v, uint8_t id[8]) {
  uint64_t u = (uint64_t)v;
  for (int i = 7; i >= 0; i--) {
    id[i] = (uint8_t)u;
    u >>= 8;
  }
}
