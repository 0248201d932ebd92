/* The upstream client's HTTP/1.1 response parser (src/proxy/http1.c):
 * framing by method, status, chunked coding, Content-Length and close;
 * interim responses; pausing; keep-alive; what it refuses. Every response
 * is also fed in pieces of every size from 1 byte up, the way the client's
 * buffer receives it, and must give the same result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proxy/http1.h"

typedef struct {
  int status;
  char hdrs[4096];   /* lines joined by '|' */
  size_t n_lines;
  char body[65536];
  size_t body_len;
  int refuse;        /* refuse this many on_body calls, then accept */
  int refused;
} got_t;

static void on_headers(void *ud, int status, char **lines, size_t n) {
  got_t *g = ud;
  g->status = status;
  g->n_lines = n;
  g->hdrs[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    if (i) strcat(g->hdrs, "|");
    strcat(g->hdrs, lines[i]);
  }
}

static bool on_body(void *ud, const char *p, size_t n) {
  got_t *g = ud;
  if (g->refused < g->refuse) {
    g->refused++;
    return false;
  }
  assert_true(g->body_len + n <= sizeof g->body);
  memcpy(g->body + g->body_len, p, n);
  g->body_len += n;
  return true;
}

static const lt_h1_cbs_t cbs = {on_headers, on_body};

/* Feeds resp `step` bytes at a time through a buffer that keeps what the
 * parser did not use, then reports the end of the connection if the
 * response did not end by itself. Returns the last result; *left is how
 * many bytes were left unused after DONE. */
static lt_h1_rc_t run(const char *resp, size_t len, size_t step, bool head, got_t *g, lt_h1_t *p, size_t *left) {
  static char buf[1 << 20];
  size_t have = 0, fed = 0;
  lt_h1_init(p, head);
  int refuse = g->refuse;
  memset(g, 0, sizeof *g);
  g->refuse = refuse;
  lt_h1_rc_t rc = LT_H1_MORE;
  for (;;) {
    size_t add = len - fed < step ? len - fed : step;
    memcpy(buf + have, resp + fed, add);
    have += add;
    fed += add;
    size_t used = 0;
    rc = lt_h1_feed(p, buf, have, &used, &cbs, g);
    assert_true(used <= have);
    memmove(buf, buf + used, have - used);
    have -= used;
    if (rc == LT_H1_PAUSED) continue; /* the next round offers it again */
    if (rc != LT_H1_MORE) break;
    if (fed == len) {
      rc = lt_h1_eof(p);
      break;
    }
  }
  if (left) *left = have + (len - fed);
  return rc;
}

/* The same result whatever the piece size. */
static lt_h1_rc_t run_all(const char *resp, bool head, got_t *g, lt_h1_t *p) {
  size_t len = strlen(resp), left0 = 0;
  lt_h1_rc_t rc0 = run(resp, len, len ? len : 1, head, g, p, &left0);
  got_t *first = malloc(sizeof *first);
  *first = *g;
  for (size_t step = 1; step < len; step++) {
    size_t left = 0;
    lt_h1_rc_t rc = run(resp, len, step, head, g, p, &left);
    assert_int_equal(rc, rc0);
    if (rc == LT_H1_ERROR) continue;
    assert_int_equal(g->status, first->status);
    assert_string_equal(g->hdrs, first->hdrs);
    assert_int_equal(g->body_len, first->body_len);
    assert_memory_equal(g->body, first->body, g->body_len);
    assert_int_equal(left, left0);
  }
  *g = *first;
  free(first);
  return run(resp, len, len ? len : 1, head, g, p, NULL);
}

static void content_length(void **st) {
  (void)st;
  got_t g = {0};
  lt_h1_t p;
  const char *r = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":true}\n";
  assert_int_equal(run_all(r, false, &g, &p), LT_H1_DONE);
  assert_int_equal(g.status, 200);
  assert_string_equal(g.hdrs, "Content-Type: application/json|Content-Length: 11");
  assert_int_equal(g.body_len, 11);
  assert_memory_equal(g.body, "{\"a\":true}\n", 11);
  assert_true(p.keep_alive);
}

static void chunked_with_extensions_and_trailer(void **st) {
  (void)st;
  got_t g = {0};
  lt_h1_t p;
  const char *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5;name=x\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\n";
  assert_int_equal(run_all(r, false, &g, &p), LT_H1_DONE);
  assert_int_equal(g.body_len, 31);
  assert_memory_equal(g.body, "helloabcdefghijklmnopqrstuvwxyz", 31);
  assert_true(p.keep_alive);
}

static void the_next_response_is_left_alone(void **st) {
  (void)st;
  got_t g = {0};
  lt_h1_t p;
  size_t left = 0;
  const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
  assert_int_equal(run(r, strlen(r), strlen(r), false, &g, &p, &left), LT_H1_DONE);
  assert_int_equal(left, strlen("HTTP/1.1 200 OK\r\n"));
}

static void no_body_for_head_204_304(void **st) {
  (void)st;
  got_t g = {0};
  lt_h1_t p;
  assert_int_equal(run_all("HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", true, &g, &p), LT_H1_DONE);
  assert_int_equal(g.body_len, 0);
  assert_true(p.keep_alive);
  assert_int_equal(run_all("HTTP/1.1 204 No Content\r\n\r\n", false, &g, &p), LT_H1_DONE);
  assert_int_equal(g.status, 204);
  assert_true(p.keep_alive); /* ended by its status, not by a close */
  assert_int_equal(run_all("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false, &g, &p), LT_H1_DONE);
  assert_int_equal(g.body_len, 0);
}

static void interim_responses_are_skipped(void **st) {
  (void)st;
  got_t g = {0};
  lt_h1_t p;
  const char *r = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                  "HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx";
  assert_int_equal(run_all(r, false, &g, &p), LT_H1_DONE);
  assert_int_equal(g.status, 201);
  assert_string_equal(g.hdrs, "Content-Length: 1");
  assert_int_equal(run_all("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", false, &g, &p), LT_H1_ERROR);
}

static void read_until_close(void **st) {
  (void)st;
  got_t g = {0};
  lt_h1_t p;
  assert_int_equal(run_all("HTTP/1.1 200 OK\r\n\r\nall of it", false, &g, &p), LT_H1_DONE);
  assert_int_equal(g.body_len, 9);
  assert_false(p.keep_alive);
  /* A coding other than chunked last: read to close too. */
  assert_int_equal(run_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", false, &g, &p), LT_H1_DONE);
  assert_int_equal(g.body_len, 2);
  assert_false(p.keep_alive);
}

static void keep_alive_rules(void **st) {
  (void)st;
  got_t g = {0};
  lt_h1_t p;
  run_all("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, close\r\nContent-Length: 0\r\n\r\n", false, &g, &p);
  assert_false(p.keep_alive);
  run_all("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, &g, &p);
  assert_false(p.keep_alive);
  run_all("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false, &g, &p);
  assert_true(p.keep_alive);
  /* Both framings: chunked wins, and the connection is not reused. */
  assert_int_equal(run_all("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "1\r\na\r\n0\r\n\r\n",
                           false, &g, &p),
                   LT_H1_DONE);
  assert_int_equal(g.body_len, 1);
  assert_false(p.keep_alive);
}

static void a_refused_piece_comes_again(void **st) {
  (void)st;
  got_t g = {0};
  lt_h1_t p;
  char buf[256];
  const char *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  strcpy(buf, r);
  lt_h1_init(&p, false);
  g.refuse = 2;
  size_t used = 0, off = 0, len = strlen(buf);
  assert_int_equal(lt_h1_feed(&p, buf, len, &used, &cbs, &g), LT_H1_PAUSED);
  assert_int_equal(g.body_len, 0);
  off = used;
  assert_int_equal(lt_h1_feed(&p, buf + off, len - off, &used, &cbs, &g), LT_H1_PAUSED);
  assert_int_equal(used, 0);
  assert_int_equal(lt_h1_feed(&p, buf + off, len - off, &used, &cbs, &g), LT_H1_DONE);
  assert_int_equal(used, len - off);
  assert_int_equal(g.body_len, 3);
  assert_memory_equal(g.body, "abc", 3);
}

static void bare_line_feeds(void **st) {
  (void)st;
  got_t g = {0};
  lt_h1_t p;
  assert_int_equal(run_all("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nhi\n0\n\n", false, &g, &p), LT_H1_DONE);
  assert_int_equal(g.body_len, 2);
}

static void cut_short(void **st) {
  (void)st;
  got_t g = {0};
  lt_h1_t p;
  assert_int_equal(run_all("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false, &g, &p), LT_H1_ERROR);
  assert_non_null(strstr(p.error, "middle"));
  assert_int_equal(run_all("HTTP/1.1 200 OK\r\nContent-Le", false, &g, &p), LT_H1_ERROR);
  assert_non_null(strstr(p.error, "before answering"));
  assert_int_equal(run_all("", false, &g, &p), LT_H1_ERROR);
}

static void refused(void **st) {
  (void)st;
  static const char *bad[] = {
      "HTTP/2 200 OK\r\n\r\n",
      "HTTP/1.1 2x0 OK\r\n\r\n",
      "HTTP/1.1 099 Low\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "ICY 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
      "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
      "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
      "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2x\r\nab\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    got_t g = {0};
    lt_h1_t p;
    if (run_all(bad[i], false, &g, &p) != LT_H1_ERROR) fail_msg("accepted: %s", bad[i]);
    assert_non_null(p.error);
  }
}

static void limits(void **st) {
  (void)st;
  size_t n = LT_H1_MAX_HEADER_BYTES + 100;
  char *r = malloc(n + 64);
  strcpy(r, "HTTP/1.1 200 OK\r\nX: ");
  size_t off = strlen(r);
  memset(r + off, 'a', n - off);
  strcpy(r + n, "\r\n\r\n");
  got_t g = {0};
  lt_h1_t p;
  size_t left;
  assert_int_equal(run(r, strlen(r), 65536, false, &g, &p, &left), LT_H1_ERROR);
  assert_non_null(strstr(p.error, "256 KiB"));
  /* More lines than kept: parsed, the extra ones dropped. */
  off = (size_t)sprintf(r, "HTTP/1.1 200 OK\r\n");
  for (int i = 0; i < LT_H1_MAX_LINES + 10; i++) off += (size_t)sprintf(r + off, "X-%d: %d\r\n", i, i);
  sprintf(r + off, "Content-Length: 1\r\n\r\nz");
  assert_int_equal(run(r, strlen(r), strlen(r), false, &g, &p, &left), LT_H1_DONE);
  assert_int_equal(g.n_lines, LT_H1_MAX_LINES);
  assert_int_equal(g.body_len, 1);
  free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(content_length),
      cmocka_unit_test(chunked_with_extensions_and_trailer),
      cmocka_unit_test(the_next_response_is_left_alone),
      cmocka_unit_test(no_body_for_head_204_304),
      cmocka_unit_test(interim_responses_are_skipped),
      cmocka_unit_test(read_until_close),
      cmocka_unit_test(keep_alive_rules),
      cmocka_unit_test(a_refused_piece_comes_again),
      cmocka_unit_test(bare_line_feeds),
      cmocka_unit_test(cut_short),
      cmocka_unit_test(refused),
      cmocka_unit_test(limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
