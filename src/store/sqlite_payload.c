/* The span payload blob: every large or rarely filtered field of a span in
 * one value, so the spans row stays thin and the bytes SQLite writes twice
 * (WAL, then checkpoint) are as few as possible.
 *
 * Format: one frame byte, then the body.
 *   frame 0: the body is the field list itself;
 *   frame 1: the body is one zstd frame (with its content size) holding it;
 *   frame 2: the body is three LEB128 numbers (chunk id, offset, length):
 *            the field list is that slice of the payload_chunks row's
 *            body, which is itself framed 0, 1 or 3 (sqlite_pack.c);
 *   frame 3: the body is the field list's size (LEB128), then one lz4
 *            block holding it.
 * Field list: repeated (tag byte, LEB128 length, bytes). Text fields are
 * raw bytes; number fields are 8 bytes little-endian. Empty fields are left
 * out, unknown tags are skipped, so fields can be added later. */
#include "store/sqlite_internal.h"
#include "core/err.h"
#include "core/mem.h"
#include <limits.h>
#include <lz4.h>
#include <string.h>

/* The most a payload or chunk may decompress to. */
#define MAX_UNPACKED (256u << 20)

enum { FRAME_RAW = 0, FRAME_ZSTD = 1, FRAME_CHUNK = 2, FRAME_LZ4 = 3 };

/* Payloads below this many bytes are stored as they are: a codec's frame
 * overhead and call cost buy nothing there. */
#define MIN_COMPRESS 192

/* Makes b able to hold n bytes (plus its NUL) without appending: the
 * codecs write straight into the buffer. Honours b's cap. */
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

static size_t put_leb(uint8_t *out, uint64_t v) {
  size_t h = 0;
  do {
    uint8_t byte = v & 0x7F;
    v >>= 7;
    out[h++] = (uint8_t)(byte | (v ? 0x80 : 0));
  } while (v);
  return h;
}

/* Reads a LEB128 number at *i (advanced); false when malformed. */
static bool get_leb(const uint8_t *b, size_t n, size_t *i, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift <= 63; shift += 7) {
    if (*i >= n) return false;
    uint8_t byte = b[(*i)++];
    *v |= (uint64_t)(byte & 0x7F) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

static int put_field(lt_buf_t *b, int tag, const void *p, size_t n) {
  if (n == 0) return 0;
  uint8_t hdr[11];
  hdr[0] = (uint8_t)tag;
  int rc = lt_buf_append(b, hdr, 1 + put_leb(hdr + 1, n));
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
  if (rc == 0) rc = put_str(raw, LT__P_ELIDED, sp->elided);
  if (rc == 0 && sp->usage_rollup) rc = put_num(raw, LT__P_USAGE_ROLLUP, 1);
  if (rc == 0 && (sp->cost_source == LT_COST_REPORTED || sp->cost_source == LT_COST_COMPUTED)) {
    rc = put_num(raw, LT__P_COST_INPUT, sp->cost_input);
    if (rc == 0) rc = put_num(raw, LT__P_COST_OUTPUT, sp->cost_output);
  }
  return rc;
}

/* Compresses raw into out after its frame byte; false when that fails or
 * saves nothing (out is then reset). */
static bool compress_into(ZSTD_CCtx *zc, lt_compression_t codec, const lt_buf_t *raw, lt_buf_t *out) {
  if (codec == LT_COMPRESS_ZSTD) {
    size_t bound = ZSTD_compressBound(raw->len);
    if (room(out, bound + 1)) return false;
    size_t n = ZSTD_compressCCtx(zc, out->ptr + 1, bound, raw->ptr, raw->len, 1);
    if (ZSTD_isError(n) || n >= raw->len) return false;
    out->ptr[0] = FRAME_ZSTD;
    out->len = n + 1;
    return true;
  }
  if (codec != LT_COMPRESS_LZ4 || raw->len > LZ4_MAX_INPUT_SIZE) return false;
  int bound = LZ4_compressBound((int)raw->len);
  if (room(out, (size_t)bound + 11)) return false;
  out->ptr[0] = FRAME_LZ4;
  size_t h = 1 + put_leb((uint8_t *)out->ptr + 1, raw->len);
  int n = LZ4_compress_default(raw->ptr, out->ptr + h, (int)raw->len, bound);
  if (n <= 0 || h + (size_t)n >= raw->len) return false;
  out->len = h + (size_t)n;
  return true;
}

int lt__sq_payload_pack(ZSTD_CCtx *zc, lt_compression_t codec, const lt_buf_t *raw, lt_buf_t *out) {
  lt_buf_reset(out);
  if (codec != LT_COMPRESS_NONE && raw->len >= MIN_COMPRESS && compress_into(zc, codec, raw, out)) return 0;
  lt_buf_reset(out);
  uint8_t frame = FRAME_RAW;
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

size_t lt__sq_payload_ref(int64_t id, uint32_t off, uint32_t len, uint8_t *out) {
  size_t h = 0;
  out[h++] = FRAME_CHUNK;
  h += put_leb(out + h, (uint64_t)id);
  h += put_leb(out + h, off);
  h += put_leb(out + h, len);
  return h;
}

/* Unframes a blob (frame byte first) into out when compressed; *p and *n
 * then describe the field list (in the blob or in out). */
static int unframe(ZSTD_DCtx *dz, const uint8_t *blob, size_t len, lt_buf_t *out, const uint8_t **p, size_t *n) {
  if (len == 0) return LT_EDECODE;
  const uint8_t *body = blob + 1;
  size_t bn = len - 1;
  if (blob[0] == FRAME_RAW) {
    *p = body;
    *n = bn;
    return 0;
  }
  if (blob[0] == FRAME_LZ4) {
    size_t i = 0;
    uint64_t size;
    if (!get_leb(body, bn, &i, &size) || size > out->cap || size > LZ4_MAX_INPUT_SIZE || bn - i > INT_MAX)
      return LT_EDECODE;
    lt_buf_reset(out);
    int rc = room(out, (size_t)size);
    if (rc) return rc;
    int got = LZ4_decompress_safe((const char *)body + i, out->ptr, (int)(bn - i), (int)size);
    if (got < 0 || (uint64_t)got != size) return LT_EDECODE;
    out->len = (size_t)got;
    *p = (const uint8_t *)out->ptr;
    *n = (size_t)got;
    return 0;
  }
  if (blob[0] != FRAME_ZSTD) return LT_EDECODE;
  unsigned long long size = ZSTD_getFrameContentSize(body, bn);
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > out->cap) return LT_EDECODE;
  lt_buf_reset(out);
  int rc = room(out, (size_t)size);
  if (rc) return rc;
  size_t got = ZSTD_decompressDCtx(dz, out->ptr, (size_t)size, body, bn);
  if (ZSTD_isError(got) || got != size) return LT_EDECODE;
  out->len = got;
  *p = (const uint8_t *)out->ptr;
  *n = got;
  return 0;
}

/* The decompressed body of chunk id, from u's cache or read and cached. */
static int chunk_body(lt__sq_unpacker_t *u, int64_t id, const uint8_t **p, size_t *n) {
  for (int k = 0; k < LT__SQ_CHUNK_CACHE; k++) {
    if (u->cache[k].id == id) {
      *p = (const uint8_t *)u->cache[k].buf.ptr;
      *n = u->cache[k].buf.len;
      return 0;
    }
  }
  if (!u->get) {
    int src = sqlite3_prepare_v3(u->db, "SELECT body FROM payload_chunks WHERE id = ?1", -1,
                                 SQLITE_PREPARE_PERSISTENT, &u->get, NULL);
    if (src != SQLITE_OK) return lt__sq_fail(u->db, src, "preparing the chunk read");
  }
  sqlite3_bind_int64(u->get, 1, id);
  int src = sqlite3_step(u->get), rc;
  unsigned k = u->next;
  u->cache[k].id = 0;
  if (src == SQLITE_ROW) {
    const uint8_t *b = sqlite3_column_blob(u->get, 0);
    size_t bl = (size_t)sqlite3_column_bytes(u->get, 0);
    const uint8_t *fp;
    size_t fn;
    lt_buf_t *dst = &u->cache[k].buf;
    rc = unframe(u->dz, b, bl, dst, &fp, &fn);
    /* A raw chunk points into SQLite's row: copy it before the reset. */
    if (rc == 0 && fp != (const uint8_t *)dst->ptr) {
      lt_buf_reset(dst);
      rc = lt_buf_append(dst, fp, fn);
    }
  } else {
    rc = src == SQLITE_DONE ? LT_EDECODE : lt__sq_fail(u->db, src, "reading a payload chunk");
  }
  sqlite3_reset(u->get);
  if (rc) return rc;
  u->cache[k].id = id;
  u->next = (k + 1) % LT__SQ_CHUNK_CACHE;
  *p = (const uint8_t *)u->cache[k].buf.ptr;
  *n = u->cache[k].buf.len;
  return 0;
}

int lt__sq_unpacker_init(lt__sq_unpacker_t *u, sqlite3 *db) {
  memset(u, 0, sizeof *u);
  u->db = db;
  lt_buf_init(&u->scratch, MAX_UNPACKED);
  for (int k = 0; k < LT__SQ_CHUNK_CACHE; k++) lt_buf_init(&u->cache[k].buf, MAX_UNPACKED);
  u->dz = ZSTD_createDCtx();
  return u->dz ? 0 : LT_ENOMEM;
}

void lt__sq_unpacker_reset(lt__sq_unpacker_t *u) {
  for (int k = 0; k < LT__SQ_CHUNK_CACHE; k++) {
    u->cache[k].id = 0;
    if (u->cache[k].buf.alloc > (1u << 20)) lt_buf_free(&u->cache[k].buf);
  }
  if (u->scratch.alloc > (4u << 20)) lt_buf_free(&u->scratch);
}

void lt__sq_unpacker_free(lt__sq_unpacker_t *u) {
  sqlite3_finalize(u->get);
  ZSTD_freeDCtx(u->dz);
  lt_buf_free(&u->scratch);
  for (int k = 0; k < LT__SQ_CHUNK_CACHE; k++) lt_buf_free(&u->cache[k].buf);
  memset(u, 0, sizeof *u);
}

int lt__sq_payload_decode(lt__sq_unpacker_t *u, const void *blob, size_t len, lt__sq_payload_t *p) {
  memset(p, 0, sizeof *p);
  p->cache_read = p->cache_write = p->reasoning = p->cost_input = p->cost_output = -1;
  if (len == 0) return 0;
  const uint8_t *b = blob, *body;
  size_t n;
  int rc;
  if (b[0] == FRAME_CHUNK) {
    size_t i = 1;
    uint64_t id, off, flen;
    if (!get_leb(b, len, &i, &id) || !get_leb(b, len, &i, &off) || !get_leb(b, len, &i, &flen) || i != len ||
        id == 0 || id > INT64_MAX)
      return LT_EDECODE;
    const uint8_t *cb = NULL;
    size_t cn = 0;
    if ((rc = chunk_body(u, (int64_t)id, &cb, &cn))) return rc;
    if (off > cn || flen > cn - off) return LT_EDECODE;
    body = cb + off;
    n = (size_t)flen;
  } else if ((rc = unframe(u->dz, b, len, &u->scratch, &body, &n))) {
    return rc;
  }
  size_t i = 0;
  while (i < n) {
    int tag = body[i++];
    uint64_t flen;
    if (!get_leb(body, n, &i, &flen) || flen > n - i) return LT_EDECODE;
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
