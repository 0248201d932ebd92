/* JSON document model on an arena (jdom.h). A recursive-descent parser:
 * the depth limit bounds the recursion. Strings are scanned once to find
 * their end and whether they hold escapes; only those with escapes are
 * decoded into the arena. */
#include "core/jdom.h"
#include <stdlib.h>
#include <string.h>
#include "core/err.h"
#include "core/mem.h"

typedef struct {
  lt_arena_t *a;
  const char *p, *end;
  unsigned depth, max_depth;
  size_t ws; /* whitespace bytes skipped so far (containers compare it) */
  int rc;
  const char *msg;
} parser_t;

static bool fail(parser_t *ps, int rc, const char *msg) {
  if (!ps->rc) {
    ps->rc = rc;
    ps->msg = msg;
  }
  return false;
}

static inline void skip_ws(parser_t *ps) {
  const char *p = ps->p;
  if (p < ps->end && (unsigned char)*p > ' ') return; /* compact JSON: nothing to skip */
  while (p < ps->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  ps->ws += (size_t)(p - ps->p);
  ps->p = p;
}

/* True when none of the 8 bytes of w ends or escapes a string or needs a
 * closer look: no '"', '\\', control character or non-ASCII byte. (The
 * zero-byte tests can misfire only above a byte that really matches.) */
static inline bool plain8(uint64_t w) {
  const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
  uint64_t t = ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w;
  return (t & high) == 0;
}

static inline bool plain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

/* Length of the valid UTF-8 sequence at s (2..4 bytes; the first byte is
 * >= 0x80), or 0: overlong forms, surrogates and values past U+10FFFF are
 * invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0], min;
  size_t len;
  if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; c &= 0x1F; }
  else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; c &= 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; c &= 0x07; }
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  return len;
}

static int hex4(const char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v << 4 | d;
  }
  return v;
}

static char *put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) {
    *o++ = (char)cp;
  } else if (cp < 0x800) {
    *o++ = (char)(0xC0 | cp >> 6);
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *o++ = (char)(0xE0 | cp >> 12);
    *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *o++ = (char)(0xF0 | cp >> 18);
    *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
    *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  }
  return o;
}

/* Decodes the escaped string body s..e (validated by scan_string) into the
 * arena. Unescaping never makes text longer. */
static bool decode_string(parser_t *ps, const char *s, const char *e, lt_str_t *out) {
  char *d = lt_arena_alloc(ps->a, (size_t)(e - s) + 1);
  if (!d) return fail(ps, LT_ENOMEM, "out of memory");
  char *o = d;
  while (s < e) {
    if (*s != '\\') {
      *o++ = *s++;
      continue;
    }
    char c = s[1];
    s += 2;
    switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '/': *o++ = '/'; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'n': *o++ = '\n'; break;
    case 'r': *o++ = '\r'; break;
    case 't': *o++ = '\t'; break;
    default: { /* 'u', its four hex digits checked by the scan */
      unsigned cp = (unsigned)hex4(s);
      s += 4;
      if (cp >= 0xDC00 && cp <= 0xDFFF) {
        ps->p = s - 6;
        return fail(ps, LT_EDECODE, "lone low surrogate");
      }
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        int lo = e - s >= 6 && s[0] == '\\' && s[1] == 'u' ? hex4(s + 2) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF) {
          ps->p = s - 6;
          return fail(ps, LT_EDECODE, "high surrogate without its low half");
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
        s += 6;
      }
      o = put_utf8(o, cp);
    }
    }
  }
  *o = '\0';
  *out = (lt_str_t){d, (size_t)(o - d)};
  return true;
}

/* A string starting at the opening quote at ps->p. */
static bool scan_string(parser_t *ps, lt_str_t *out, lt_str_t *raw) {
  const char *q = ps->p, *s = q + 1, *p = s, *end = ps->end;
  bool esc = false;
  for (;;) {
    uint64_t w;
    while (end - p >= 8 && (memcpy(&w, p, 8), plain8(w))) p += 8;
    while (p < end && plain((unsigned char)*p)) p++;
    if (p >= end) {
      ps->p = p;
      return fail(ps, LT_EDECODE, "unterminated string");
    }
    unsigned char c = (unsigned char)*p;
    if (c == '"') break;
    if (c == '\\') {
      esc = true;
      if (end - p < 2) {
        ps->p = p;
        return fail(ps, LT_EDECODE, "unterminated string");
      }
      char e = p[1];
      if (e == 'u') {
        if (end - p < 6 || hex4(p + 2) < 0) {
          ps->p = p;
          return fail(ps, LT_EDECODE, "bad \\u escape");
        }
        p += 6;
      } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
        p += 2;
      } else {
        ps->p = p;
        return fail(ps, LT_EDECODE, "bad escape");
      }
    } else if (c < 0x20) {
      ps->p = p;
      return fail(ps, LT_EDECODE, "control character in a string");
    } else {
      size_t l = utf8_seq((const unsigned char *)p, (size_t)(end - p));
      if (!l) {
        ps->p = p;
        return fail(ps, LT_EDECODE, "invalid UTF-8 in a string");
      }
      p += l;
    }
  }
  ps->p = p + 1;
  *raw = (lt_str_t){q, (size_t)(ps->p - q)};
  if (!esc) {
    *out = (lt_str_t){s, (size_t)(p - s)};
    return true;
  }
  return decode_string(ps, s, p, out);
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool scan_number(parser_t *ps, lt_jd_t *j) {
  const char *s = ps->p, *p = s, *end = ps->end;
  if (p < end && *p == '-') p++;
  if (p < end && *p == '0') {
    p++;
  } else if (p < end && *p >= '1' && *p <= '9') {
    while (p < end && is_digit(*p)) p++;
  } else {
    ps->p = p;
    return fail(ps, LT_EDECODE, p > s ? "bad number" : "unexpected character");
  }
  if (p < end && *p == '.') {
    p++;
    if (p >= end || !is_digit(*p)) {
      ps->p = p;
      return fail(ps, LT_EDECODE, "bad number: digits must follow '.'");
    }
    while (p < end && is_digit(*p)) p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || !is_digit(*p)) {
      ps->p = p;
      return fail(ps, LT_EDECODE, "bad number: digits must follow the exponent");
    }
    while (p < end && is_digit(*p)) p++;
  }
  j->type = LT_JD_NUMBER;
  j->str = j->raw = (lt_str_t){s, (size_t)(p - s)};
  ps->p = p;
  return true;
}

static bool literal(parser_t *ps, lt_jd_t *j, const char *word, size_t n, lt_jd_type_t t) {
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n)) return fail(ps, LT_EDECODE, "unexpected character");
  j->type = (uint8_t)t;
  j->raw = (lt_str_t){ps->p, n};
  ps->p += n;
  return true;
}

static inline lt_jd_t *new_node(parser_t *ps) {
  lt_jd_t *j = lt_arena_alloc(ps->a, sizeof *j);
  if (!j) {
    fail(ps, LT_ENOMEM, "out of memory");
    return NULL;
  }
  *j = (lt_jd_t){0};
  return j;
}

static bool value(parser_t *ps, lt_jd_t *j);

/* An array or object starting at ps->p ('[' or '{'). */
static bool container(parser_t *ps, lt_jd_t *j, bool obj) {
  if (++ps->depth > ps->max_depth) return fail(ps, LT_EDECODE, "nested too deeply");
  const char *open = ps->p++;
  size_t ws0 = ps->ws;
  char close = obj ? '}' : ']';
  j->type = obj ? LT_JD_OBJECT : LT_JD_ARRAY;
  lt_jd_t **tail = &j->first;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == close) {
    ps->p++;
  } else {
    for (;;) {
      lt_jd_t *k = new_node(ps);
      if (!k) return false;
      if (obj) {
        lt_str_t kraw;
        if (ps->p >= ps->end || *ps->p != '"') return fail(ps, LT_EDECODE, "expected a member name");
        if (!scan_string(ps, &k->key, &kraw)) return false;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') return fail(ps, LT_EDECODE, "expected ':'");
        ps->p++;
        skip_ws(ps);
      }
      if (!value(ps, k)) return false;
      *tail = k;
      tail = &k->next;
      j->n++;
      skip_ws(ps);
      if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        skip_ws(ps);
        continue;
      }
      if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        break;
      }
      return fail(ps, LT_EDECODE, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
  j->raw = (lt_str_t){open, (size_t)(ps->p - open)};
  j->compact = ps->ws == ws0;
  ps->depth--;
  return true;
}

static bool value(parser_t *ps, lt_jd_t *j) {
  if (ps->p >= ps->end) return fail(ps, LT_EDECODE, "unexpected end of input");
  switch (*ps->p) {
  case '{': return container(ps, j, true);
  case '[': return container(ps, j, false);
  case '"':
    j->type = LT_JD_STRING;
    return scan_string(ps, &j->str, &j->raw);
  case 't': return literal(ps, j, "true", 4, LT_JD_TRUE);
  case 'f': return literal(ps, j, "false", 5, LT_JD_FALSE);
  case 'n': return literal(ps, j, "null", 4, LT_JD_NULL);
  default: return scan_number(ps, j);
  }
}

int lt_jd_parse(lt_arena_t *a, const char *p, size_t n, const lt_jd_opts_t *opts, lt_jd_t **out, lt_jd_err_t *err) {
  *out = NULL;
  size_t max_bytes = opts && opts->max_bytes ? opts->max_bytes : LT_JD_MAX_BYTES;
  if (n > max_bytes || n > UINT32_MAX) {
    if (err) *err = (lt_jd_err_t){0, "input too long"};
    return LT_ETOOBIG;
  }
  parser_t ps = {.a = a, .p = p, .end = p + n,
                 .max_depth = opts && opts->max_depth ? opts->max_depth : LT_JD_MAX_DEPTH};
  lt_jd_t *root = new_node(&ps);
  if (root) {
    skip_ws(&ps);
    if (value(&ps, root)) {
      skip_ws(&ps);
      if (ps.p != ps.end) fail(&ps, LT_EDECODE, "data after the value");
    }
  }
  if (ps.rc) {
    if (err) *err = (lt_jd_err_t){(size_t)(ps.p - p), ps.msg};
    return ps.rc;
  }
  *out = root;
  return 0;
}

/* ---- access -------------------------------------------------------------- */

lt_jd_t *lt_jd_get(const lt_jd_t *obj, const char *key) {
  if (!lt_jd_is(obj, LT_JD_OBJECT)) return NULL;
  size_t kl = strlen(key);
  lt_jd_t *hit = NULL;
  for (lt_jd_t *m = obj->first; m; m = m->next)
    if (m->key.len == kl && !memcmp(m->key.ptr, key, kl)) hit = m;
  return hit;
}

lt_jd_t *lt_jd_at(const lt_jd_t *arr, size_t i) {
  if (!lt_jd_is(arr, LT_JD_ARRAY) || i >= arr->n) return NULL;
  lt_jd_t *e = arr->first;
  while (i--) e = e->next;
  return e;
}

bool lt_jd_int(const lt_jd_t *j, int64_t *out) {
  if (!lt_jd_is(j, LT_JD_NUMBER)) return false;
  const char *p = j->str.ptr, *end = p + j->str.len;
  bool neg = p < end && *p == '-';
  if (neg) p++;
  if (p == end) return false;
  uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; p < end; p++) {
    if (!is_digit(*p)) return false; /* a fraction or an exponent */
    unsigned d = (unsigned)(*p - '0');
    if (v > (lim - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return true;
}

bool lt_jd_double(const lt_jd_t *j, double *out) {
  if (!lt_jd_is(j, LT_JD_NUMBER)) return false;
  /* The text is not NUL-terminated: copy it (numbers are short). */
  char small[64], *t = small;
  if (j->str.len >= sizeof small && !(t = lt_malloc(j->str.len + 1))) return false;
  memcpy(t, j->str.ptr, j->str.len);
  t[j->str.len] = '\0';
  *out = strtod(t, NULL);
  if (t != small) lt_free(t);
  return true;
}

/* ---- writing ------------------------------------------------------------- */

int lt_jd_write(lt_buf_t *b, const lt_jd_t *j) {
  if (!j) return lt_buf_append(b, "null", 4);
  switch (j->type) {
  case LT_JD_NULL: return lt_buf_append(b, "null", 4);
  case LT_JD_FALSE: return lt_buf_append(b, "false", 5);
  case LT_JD_TRUE: return lt_buf_append(b, "true", 4);
  case LT_JD_NUMBER: return lt_buf_append(b, j->str.ptr, j->str.len);
  case LT_JD_STRING:
    /* The input's own text is valid JSON for the same string. */
    return j->raw.ptr ? lt_buf_append(b, j->raw.ptr, j->raw.len) : lt_buf_json_str(b, j->str.ptr, j->str.len);
  default: break;
  }
  if (j->compact && j->raw.ptr) return lt_buf_append(b, j->raw.ptr, j->raw.len);
  bool obj = j->type == LT_JD_OBJECT;
  int rc = lt_buf_append(b, obj ? "{" : "[", 1);
  for (const lt_jd_t *k = j->first; k && !rc; k = k->next) {
    if (k != j->first) rc = lt_buf_append(b, ",", 1);
    if (!rc && obj) rc = lt_buf_json_str(b, k->key.ptr, k->key.len);
    if (!rc && obj) rc = lt_buf_append(b, ":", 1);
    if (!rc) rc = lt_jd_write(b, k);
  }
  return rc ? rc : lt_buf_append(b, obj ? "}" : "]", 1);
}
