/* HTTP/1.1 response parsing (see http1.h). */
#include "proxy/http1.h"
#include <string.h>
#include <strings.h>

enum { S_HEADERS, S_FIXED, S_CHUNK_SIZE, S_CHUNK_DATA, S_CHUNK_CRLF, S_TRAILER, S_CLOSE, S_DONE };

/* A chunk-size line longer than this is not one (extensions included). */
#define MAX_CHUNK_LINE 1024
#define MAX_SIZE (UINT64_C(1) << 62)

void lt_h1_init(lt_h1_t *p, bool head_request) {
  memset(p, 0, sizeof *p);
  p->head_request = head_request;
}

static lt_h1_rc_t fail(lt_h1_t *p, const char *why) {
  p->error = why;
  return LT_H1_ERROR;
}

/* Index just past the blank line ending a header block in b[0..n), or 0.
 * Lines end in LF, optionally preceded by CR. */
static size_t block_end(const char *b, size_t n, size_t from) {
  for (size_t i = from; i < n; i++) {
    const char *lf = memchr(b + i, '\n', n - i);
    if (!lf) return 0;
    i = (size_t)(lf - b);
    if (i + 1 < n && b[i + 1] == '\n') return i + 2;
    if (i + 2 < n && b[i + 1] == '\r' && b[i + 2] == '\n') return i + 3;
  }
  return 0;
}

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

/* The value of a "Name: value" line, without surrounding whitespace. */
static const char *value_of(char *line, size_t name_len, size_t *vlen) {
  char *v = line + name_len + 1, *e = v + strlen(v);
  while (is_ows(*v)) v++;
  while (e > v && is_ows(e[-1])) e--;
  *vlen = (size_t)(e - v);
  return v;
}

/* Does a comma-separated list hold this token (any case)? */
static bool has_token(const char *v, size_t n, const char *tok) {
  size_t tl = strlen(tok);
  for (size_t i = 0; i < n;) {
    while (i < n && (is_ows(v[i]) || v[i] == ',')) i++;
    size_t s = i;
    while (i < n && v[i] != ',') i++;
    size_t e = i;
    while (e > s && is_ows(v[e - 1])) e--;
    if (e - s == tl && !strncasecmp(v + s, tok, tl)) return true;
  }
  return false;
}

/* Is the last transfer coding "chunked"? */
static bool last_is_chunked(const char *v, size_t n) {
  size_t e = n;
  while (e > 0 && is_ows(v[e - 1])) e--;
  size_t s = e;
  while (s > 0 && v[s - 1] != ',') s--;
  while (s < e && is_ows(v[s])) s++;
  return e - s == 7 && !strncasecmp(v + s, "chunked", 7);
}

/* Parses one header block b[0..n) (ending in the blank line). Returns 0,
 * or an error; fills the framing fields. Lines are NUL-terminated in place. */
static lt_h1_rc_t parse_block(lt_h1_t *p, char *b, size_t n, char **lines, size_t *nl, bool *chunked,
                              bool *has_len) {
  /* Status line: HTTP/1.x SP 3DIGIT [SP reason] */
  char *eol = memchr(b, '\n', n);
  if (!eol || eol - b < 12 || memcmp(b, "HTTP/1.", 7) || (b[7] != '0' && b[7] != '1') || b[8] != ' ')
    return fail(p, "upstream sent something that is not an HTTP/1.x status line");
  bool http10 = b[7] == '0';
  int st = 0;
  for (int i = 9; i < 12; i++) {
    if (b[i] < '0' || b[i] > '9') return fail(p, "upstream status is not three digits");
    st = st * 10 + (b[i] - '0');
  }
  if (st < 100 || (b + 12 < eol && b[12] != ' ' && b[12] != '\r')) return fail(p, "upstream status line is malformed");
  p->status = st;
  p->keep_alive = !http10;
  *nl = 0;
  *chunked = *has_len = false;
  bool te = false;
  char *line = eol + 1, *end = b + n;
  while (line < end) {
    char *lf = memchr(line, '\n', (size_t)(end - line));
    if (!lf) break;
    char *le = lf;
    if (le > line && le[-1] == '\r') le--;
    if (le == line) break; /* the blank line */
    *le = '\0';
    if (is_ows(*line)) return fail(p, "upstream folded a header line (obsolete line folding)");
    char *colon = memchr(line, ':', (size_t)(le - line));
    if (!colon || colon == line) return fail(p, "upstream sent a header line without a name");
    for (char *c = line; c < colon; c++)
      if ((unsigned char)*c <= ' ' || *c == 0x7f) return fail(p, "upstream sent a header name with spaces or controls");
    size_t name_len = (size_t)(colon - line), vl;
    const char *v = value_of(line, name_len, &vl);
    if (name_len == 14 && !strncasecmp(line, "content-length", 14)) {
      /* Digits only; a repeated header (or list) must agree. */
      uint64_t x = 0;
      size_t i = 0;
      bool any = false;
      for (; i < vl && v[i] >= '0' && v[i] <= '9'; i++, any = true) {
        x = x * 10 + (uint64_t)(v[i] - '0');
        if (x >= MAX_SIZE) return fail(p, "upstream Content-Length is too large");
      }
      if (!any || i != vl) return fail(p, "upstream Content-Length is not a number");
      if (*has_len && x != p->left) return fail(p, "upstream sent two different Content-Length values");
      *has_len = true;
      p->left = x;
    } else if (name_len == 17 && !strncasecmp(line, "transfer-encoding", 17)) {
      te = true;
      *chunked = last_is_chunked(v, vl);
    } else if (name_len == 10 && !strncasecmp(line, "connection", 10)) {
      if (has_token(v, vl, "close")) p->keep_alive = false;
      else if (http10 && has_token(v, vl, "keep-alive")) p->keep_alive = true;
    }
    if (*nl < LT_H1_MAX_LINES) lines[(*nl)++] = line;
    line = lf + 1;
  }
  /* Transfer-Encoding wins over Content-Length (RFC 9112 6.3), and a
   * response that has both must not leave the connection in use. */
  if (te) {
    if (*has_len) p->keep_alive = false;
    *has_len = false;
  }
  if (te && !*chunked) p->keep_alive = false; /* read to close */
  return LT_H1_MORE;
}

lt_h1_rc_t lt_h1_feed(lt_h1_t *p, char *buf, size_t len, size_t *used, const lt_h1_cbs_t *cbs, void *ud) {
  size_t i = 0;
  *used = 0;
  for (;;) {
    char *b = buf + i;
    size_t n = len - i;
    switch (p->state) {
    case S_HEADERS: {
      size_t from = p->scanned > 3 ? p->scanned - 3 : 0;
      size_t e = block_end(b, n, from);
      if (!e) {
        if (n > LT_H1_MAX_HEADER_BYTES) return fail(p, "upstream response headers are larger than 256 KiB");
        p->scanned = n;
        *used = i;
        return LT_H1_MORE;
      }
      if (e > LT_H1_MAX_HEADER_BYTES) return fail(p, "upstream response headers are larger than 256 KiB");
      p->scanned = 0;
      char *lines[LT_H1_MAX_LINES];
      size_t nl;
      bool chunked, has_len;
      if (parse_block(p, b, e, lines, &nl, &chunked, &has_len) == LT_H1_ERROR) return LT_H1_ERROR;
      i += e;
      if (p->status < 200) {
        if (p->status == 101) return fail(p, "upstream switched protocols (101), which the proxy does not relay");
        continue; /* an interim response: the final one follows */
      }
      cbs->on_headers(ud, p->status, lines, nl);
      if (p->head_request || p->status == 204 || p->status == 304) {
        p->state = S_DONE;
      } else if (chunked) {
        p->state = S_CHUNK_SIZE;
      } else if (has_len) {
        p->state = p->left ? S_FIXED : S_DONE;
      } else {
        p->state = S_CLOSE;
        p->close_framed = true;
        p->keep_alive = false;
      }
      continue;
    }
    case S_FIXED:
    case S_CHUNK_DATA: {
      if (!n) {
        *used = i;
        return LT_H1_MORE;
      }
      size_t take = p->left < n ? (size_t)p->left : n;
      if (!cbs->on_body(ud, b, take)) {
        *used = i;
        return LT_H1_PAUSED;
      }
      i += take;
      p->left -= take;
      if (!p->left) p->state = p->state == S_FIXED ? S_DONE : S_CHUNK_CRLF;
      continue;
    }
    case S_CLOSE:
      if (n && !cbs->on_body(ud, b, n)) {
        *used = i;
        return LT_H1_PAUSED;
      }
      *used = len;
      return LT_H1_MORE;
    case S_CHUNK_SIZE: {
      char *lf = memchr(b, '\n', n < MAX_CHUNK_LINE ? n : MAX_CHUNK_LINE);
      if (!lf) {
        if (n >= MAX_CHUNK_LINE) return fail(p, "upstream chunk-size line is too long");
        *used = i;
        return LT_H1_MORE;
      }
      uint64_t x = 0;
      size_t k = 0;
      for (; b + k < lf; k++) {
        char c = b[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) break;
        x = x * 16 + (uint64_t)d;
        if (x >= MAX_SIZE) return fail(p, "upstream chunk size is too large");
      }
      if (k == 0) return fail(p, "upstream chunk size is not hexadecimal");
      /* After the digits: whitespace, extensions (";..."), CR. */
      char c = b + k < lf ? b[k] : '\n';
      if (c != ';' && c != '\r' && c != '\n' && !is_ows(c)) return fail(p, "upstream chunk-size line is malformed");
      i += (size_t)(lf - b) + 1;
      p->left = x;
      p->state = x ? S_CHUNK_DATA : S_TRAILER;
      continue;
    }
    case S_CHUNK_CRLF:
      if (!n || (b[0] == '\r' && n < 2)) {
        *used = i;
        return LT_H1_MORE;
      }
      if (b[0] == '\n') i += 1;
      else if (b[0] == '\r' && b[1] == '\n') i += 2;
      else return fail(p, "upstream chunk data is longer than its size");
      p->state = S_CHUNK_SIZE;
      continue;
    case S_TRAILER: {
      char *lf = memchr(b, '\n', n);
      if (!lf) {
        if (n > LT_H1_MAX_HEADER_BYTES) return fail(p, "upstream trailer is larger than 256 KiB");
        *used = i;
        return LT_H1_MORE;
      }
      size_t ll = (size_t)(lf - b);
      i += ll + 1;
      if (ll == 0 || (ll == 1 && b[0] == '\r')) p->state = S_DONE;
      continue;
    }
    case S_DONE:
    default:
      *used = i;
      return LT_H1_DONE;
    }
  }
}

lt_h1_rc_t lt_h1_eof(lt_h1_t *p) {
  if (p->state == S_DONE || p->state == S_CLOSE) {
    p->state = S_DONE;
    return LT_H1_DONE;
  }
  return fail(p, p->state == S_HEADERS ? "upstream closed the connection before answering"
                                       : "upstream closed the connection in the middle of the response");
}
