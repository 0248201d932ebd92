/* libFuzzer target for the upstream client's HTTP/1.1 response parser
 * (src/proxy/http1.c).
 *
 * Input layout: byte 0's low bit says the request was HEAD, its other bits
 * and byte 1 pick a piece size and how often a body piece is refused; the
 * rest is what the upstream sent. Checks, aborting on a violation:
 *  - fed whole and fed in pieces through a buffer that keeps what was not
 *    used (refusing some body pieces on the way), the results are the
 *    same: outcome, status, header lines, body bytes, bytes left over;
 *  - a feed never says it used more than it was given, and the body is
 *    never longer than the input. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "proxy/http1.h"

typedef struct {
  int status, calls;
  size_t n_lines, hdr_len, body_len;
  char hdr[8192];
  char *body;
  size_t cap;
  unsigned refuse_every, seen;
} got_t;

static void on_headers(void *ud, int status, char **lines, size_t n) {
  got_t *g = ud;
  if (g->calls++) abort(); /* one final response only */
  g->status = status;
  g->n_lines = n;
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(lines[i]);
    if (g->hdr_len + l + 1 > sizeof g->hdr) break;
    memcpy(g->hdr + g->hdr_len, lines[i], l + 1);
    g->hdr_len += l + 1;
  }
}

static bool on_body(void *ud, const char *p, size_t n) {
  got_t *g = ud;
  if (n == 0) abort();
  if (g->refuse_every && ++g->seen % g->refuse_every == 0) return false;
  if (g->body_len + n > g->cap) abort();
  memcpy(g->body + g->body_len, p, n);
  g->body_len += n;
  return true;
}

static const lt_h1_cbs_t cbs = {on_headers, on_body};

static lt_h1_rc_t run(const uint8_t *in, size_t len, size_t step, bool head, got_t *g, size_t *left) {
  char *buf = malloc(len + 1);
  size_t have = 0, fed = 0;
  lt_h1_t p;
  lt_h1_init(&p, head);
  lt_h1_rc_t rc;
  int paused = 0;
  for (;;) {
    size_t add = len - fed < step ? len - fed : step;
    memcpy(buf + have, in + fed, add);
    have += add;
    fed += add;
    size_t used = 0;
    rc = lt_h1_feed(&p, buf, have, &used, &cbs, g);
    if (used > have) abort();
    memmove(buf, buf + used, have - used);
    have -= used;
    if (rc == LT_H1_PAUSED) {
      if (++paused > 1000000) abort(); /* refusals are finite: it must move on */
      continue;
    }
    if (rc != LT_H1_MORE) break;
    if (fed == len) {
      rc = lt_h1_eof(&p);
      break;
    }
  }
  if (rc == LT_H1_ERROR && !p.error) abort();
  *left = rc == LT_H1_DONE ? have + (len - fed) : 0;
  free(buf);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  bool head = data[0] & 1;
  size_t step = 1 + (((size_t)data[0] >> 1) | ((size_t)data[1] << 7)) % 4096;
  unsigned refuse = data[1] % 4;
  const uint8_t *in = data + 2;
  size_t len = size - 2;
  got_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
  a->cap = b->cap = len;
  a->body = malloc(len + 1);
  b->body = malloc(len + 1);
  b->refuse_every = refuse ? refuse + 1 : 0;
  size_t la = 0, lb = 0;
  lt_h1_rc_t ra = run(in, len, len ? len : 1, head, a, &la);
  lt_h1_rc_t rb = run(in, len, step, head, b, &lb);
  if (ra != rb) abort();
  if (ra != LT_H1_ERROR) {
    if (a->status != b->status || a->n_lines != b->n_lines || a->hdr_len != b->hdr_len ||
        memcmp(a->hdr, b->hdr, a->hdr_len) || a->body_len != b->body_len || memcmp(a->body, b->body, a->body_len) ||
        la != lb)
      abort();
  }
  free(a->body);
  free(b->body);
  free(a);
  free(b);
  return 0;
}
