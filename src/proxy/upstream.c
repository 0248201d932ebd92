/* libcurl multi on a libevent base (see upstream.h). curl tells us which
 * sockets to watch (socket callback) and when to wake it (timer callback);
 * libevent tells curl when a socket is ready (curl_multi_socket_action);
 * after each action finished transfers are collected. */
#include "proxy/upstream.h"
#include <curl/curl.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

/* Header lines kept per response; more are ignored (no real upstream sends
 * that many). */
#define MAX_HEADER_LINES 128

struct lt_up_loop {
  struct event_base *base;
  CURLM *multi;
  struct event *timer;
  lt_up_xfer_t *xfers; /* running transfers, for lt_up_loop_free */
};

struct lt_up_xfer {
  lt_up_loop_t *loop;
  CURL *easy;
  struct curl_slist *headers;
  lt_up_cbs_t cbs;
  void *ud;
  char *lines[MAX_HEADER_LINES];
  size_t n_lines;
  bool headers_done, paused;
  char err[CURL_ERROR_SIZE];
  lt_up_xfer_t *prev, *next;
};

/* One watched socket. */
typedef struct {
  struct event *ev;
  lt_up_loop_t *loop;
} sock_t;

int lt_up_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : LT_ENOMEM; }
void lt_up_global_free(void) { curl_global_cleanup(); }

static void xfer_free(lt_up_xfer_t *x) {
  lt_up_loop_t *l = x->loop;
  if (x->prev) x->prev->next = x->next;
  else l->xfers = x->next;
  if (x->next) x->next->prev = x->prev;
  curl_multi_remove_handle(l->multi, x->easy);
  curl_easy_cleanup(x->easy);
  curl_slist_free_all(x->headers);
  for (size_t i = 0; i < x->n_lines; i++) lt_free(x->lines[i]);
  lt_free(x);
}

/* Collects finished transfers. on_done may start new transfers. */
static void drain_done(lt_up_loop_t *l) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(l->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    lt_up_xfer_t *x = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    CURLcode res = m->data.result;
    if (!x) continue;
    lt_up_cbs_t cbs = x->cbs;
    void *ud = x->ud;
    char err[CURL_ERROR_SIZE + 64];
    if (res != CURLE_OK)
      snprintf(err, sizeof err, "%s", x->err[0] ? x->err : curl_easy_strerror(res));
    xfer_free(x);
    cbs.on_done(ud, res == CURLE_OK, res == CURLE_OK ? NULL : err);
  }
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg) {
  sock_t *s = arg;
  lt_up_loop_t *l = s->loop;
  int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
  int running;
  curl_multi_socket_action(l->multi, fd, flags, &running);
  drain_done(l);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  lt_up_loop_t *l = arg;
  (void)fd;
  (void)what;
  int running;
  curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  drain_done(l);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  lt_up_loop_t *l = userp;
  sock_t *s = socketp;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      event_free(s->ev);
      lt_free(s);
      curl_multi_assign(l->multi, fd, NULL);
    }
    return 0;
  }
  short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
  if (!s) {
    if (!(s = lt_calloc(1, sizeof *s))) return -1;
    s->loop = l;
    curl_multi_assign(l->multi, fd, s);
  } else {
    event_free(s->ev);
  }
  s->ev = event_new(l->base, fd, kind, on_socket_event, s);
  if (!s->ev) return -1;
  event_add(s->ev, NULL);
  return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  lt_up_loop_t *l = userp;
  (void)multi;
  if (timeout_ms < 0) {
    evtimer_del(l->timer);
    return 0;
  }
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  evtimer_add(l->timer, &tv);
  return 0;
}

lt_up_loop_t *lt_up_loop_new(void *event_base) {
  lt_up_loop_t *l = lt_calloc(1, sizeof *l);
  if (!l) return NULL;
  l->base = event_base;
  l->multi = curl_multi_init();
  l->timer = evtimer_new(l->base, on_timer, l);
  if (!l->multi || !l->timer) {
    lt_up_loop_free(l);
    return NULL;
  }
  curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
  curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
  /* Idle upstream connections kept for reuse, per loop. */
  curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, 256L);
  return l;
}

void lt_up_loop_free(lt_up_loop_t *l) {
  if (!l) return;
  while (l->xfers) xfer_free(l->xfers);
  /* Cleanup closes cached connections; their sockets' events are freed by
   * the socket callback it triggers. */
  if (l->multi) curl_multi_cleanup(l->multi);
  if (l->timer) event_free(l->timer);
  lt_free(l);
}

/* ---- one transfer ------------------------------------------------------- */

static size_t header_cb(char *p, size_t size, size_t n, void *arg) {
  lt_up_xfer_t *x = arg;
  size_t len = size * n, keep = len;
  while (keep && (p[keep - 1] == '\n' || p[keep - 1] == '\r')) keep--;
  if (keep == 0) { /* the blank line ending a header block */
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && !x->headers_done) {
      x->headers_done = true;
      x->cbs.on_headers(x->ud, (int)status, x->lines, x->n_lines);
    } else if (status < 200) { /* 100 Continue and friends: not the response */
      for (size_t i = 0; i < x->n_lines; i++) lt_free(x->lines[i]);
      x->n_lines = 0;
    }
    return len;
  }
  if (!strncmp(p, "HTTP/", 5)) return len; /* a status line */
  if (x->n_lines < MAX_HEADER_LINES) {
    char *line = lt_malloc(keep + 1);
    if (!line) return 0; /* fails the transfer */
    memcpy(line, p, keep);
    line[keep] = '\0';
    x->lines[x->n_lines++] = line;
  }
  return len;
}

static size_t write_cb(char *p, size_t size, size_t n, void *arg) {
  lt_up_xfer_t *x = arg;
  size_t len = size * n;
  if (!x->headers_done) { /* a body without the blank line: should not happen */
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    x->headers_done = true;
    x->cbs.on_headers(x->ud, (int)status, x->lines, x->n_lines);
  }
  size_t got = x->cbs.on_body(x->ud, p, len);
  if (got == LT_UP_PAUSE) {
    x->paused = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  return got;
}

int lt_up_start(lt_up_loop_t *l, const lt_up_req_t *req, const lt_up_cbs_t *cbs, void *ud, lt_up_xfer_t **out) {
  lt_up_xfer_t *x = lt_calloc(1, sizeof *x);
  if (!x) return LT_ENOMEM;
  x->loop = l;
  x->cbs = *cbs;
  x->ud = ud;
  if (!(x->easy = curl_easy_init())) {
    lt_free(x);
    return LT_ENOMEM;
  }
  CURL *e = x->easy;
  for (size_t i = 0; i < req->n_headers; i++) {
    struct curl_slist *h = curl_slist_append(x->headers, req->headers[i]);
    if (!h) goto nomem;
    x->headers = h;
  }
  /* No "Expect: 100-continue" round trip on larger bodies. */
  struct curl_slist *h = curl_slist_append(x->headers, "Expect:");
  if (!h) goto nomem;
  x->headers = h;
  curl_easy_setopt(e, CURLOPT_URL, req->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->err);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 10000L);
  if (req->timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
  /* Certificates are always verified; a custom CA file is for private
   * gateways. */
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (req->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file);
  /* The body passes through as the upstream sent it; no decoding. */
  curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!strcmp(req->method, "GET")) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (!strcmp(req->method, "HEAD")) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    if (req->body_len || !strcmp(req->method, "POST")) {
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    if (strcmp(req->method, "POST")) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
  }
  x->next = l->xfers;
  if (l->xfers) l->xfers->prev = x;
  l->xfers = x;
  if (curl_multi_add_handle(l->multi, e) != CURLM_OK) {
    xfer_free(x);
    return LT_ENOMEM;
  }
  *out = x;
  return 0;
nomem:
  curl_slist_free_all(x->headers);
  curl_easy_cleanup(x->easy);
  lt_free(x);
  return LT_ENOMEM;
}

void lt_up_pause(lt_up_xfer_t *x, bool pause) {
  if (pause == x->paused) return;
  x->paused = pause;
  lt_up_loop_t *l = x->loop;
  /* Resuming may deliver the held data at once (write_cb runs here), and
   * the transfer may finish: collect it. */
  curl_easy_pause(x->easy, pause ? CURLPAUSE_RECV : CURLPAUSE_CONT);
  if (!pause) drain_done(l);
}

void lt_up_abort(lt_up_xfer_t *x) { xfer_free(x); }
