/* libcurl multi on a libevent base (see upstream.h). curl tells us which
 * sockets to watch (socket callback) and when to wake it (timer callback);
 * libevent tells curl when a socket is ready (curl_multi_socket_action);
 * after each action finished transfers are collected.
 *
 * Per call, what can be kept is kept: easy handles (with their buffers),
 * transfer states and socket watchers go back to per-loop pools, request
 * header lines are listed without copies, response header lines share one
 * buffer. A new transfer is started at once rather than on the next loop
 * turn. */
#include "proxy/upstream.h"
#include <curl/curl.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

/* Header lines kept per response; more are ignored (no real upstream sends
 * that many). */
#define MAX_HEADER_LINES 128
#define MAX_HEADER_BYTES (256u << 10)
/* Request header lines a transfer can carry (the proxy forwards fewer). */
#define MAX_REQ_HEADERS 128
/* Idle easy handles and transfer states kept per loop for reuse; a kept
 * header buffer larger than this is let go. */
#define POOL 64
#define HEADER_KEEP (16u << 10)

struct lt_up_loop {
  struct event_base *base;
  CURLM *multi;
  struct event *timer;
  struct event *deliver;    /* hands over transfers that ended while starting another */
  lt_up_xfer_t *xfers;      /* running transfers, for lt_up_loop_free */
  lt_up_xfer_t *ended;      /* ended, on_done not called yet (see start) */
  bool starting;            /* inside lt_up_start: on_done must wait */
  void (*after)(void *ud);  /* lt_up_loop_after */
  void *after_ud;
  CURL *idle[POOL];
  size_t n_idle;
  lt_up_xfer_t *free_xfers;
  size_t n_free_xfers;
  struct sock *free_socks;
};

struct lt_up_xfer {
  lt_up_loop_t *loop;
  CURL *easy;
  lt_up_cbs_t cbs;
  void *ud;
  bool headers_done, paused, ended;
  CURLcode result;
  lt_buf_t hdr;             /* response header lines, each NUL-terminated */
  size_t line_off[MAX_HEADER_LINES];
  size_t n_lines;
  struct curl_slist req_hdr[MAX_REQ_HEADERS + 1]; /* the caller's lines, listed in place */
  char err[CURL_ERROR_SIZE];
  lt_up_xfer_t *prev, *next, *next_ended;
};

/* One watched socket; kept in a pool with its event when curl lets go. */
typedef struct sock {
  struct event *ev;
  lt_up_loop_t *loop;
  struct sock *next_free;
} sock_t;

int lt_up_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : LT_ENOMEM; }
void lt_up_global_free(void) { curl_global_cleanup(); }

static void xfer_free(lt_up_xfer_t *x) {
  lt_up_loop_t *l = x->loop;
  if (x->prev) x->prev->next = x->next;
  else l->xfers = x->next;
  if (x->next) x->next->prev = x->prev;
  if (x->ended) /* still waiting for delivery */
    for (lt_up_xfer_t **p = &l->ended; *p; p = &(*p)->next_ended)
      if (*p == x) {
        *p = x->next_ended;
        break;
      }
  curl_multi_remove_handle(l->multi, x->easy);
  /* The handle keeps its buffers for the next transfer of this loop. */
  if (l->n_idle < POOL) l->idle[l->n_idle++] = x->easy;
  else curl_easy_cleanup(x->easy);
  if (l->n_free_xfers < POOL) {
    if (x->hdr.alloc > HEADER_KEEP) lt_buf_free(&x->hdr);
    x->next = l->free_xfers;
    l->free_xfers = x;
    l->n_free_xfers++;
  } else {
    lt_buf_free(&x->hdr);
    lt_free(x);
  }
}

static void deliver(lt_up_xfer_t *x) {
  lt_up_cbs_t cbs = x->cbs;
  void *ud = x->ud;
  CURLcode res = x->result;
  char err[CURL_ERROR_SIZE + 64] = "";
  if (res != CURLE_OK) snprintf(err, sizeof err, "%s", x->err[0] ? x->err : curl_easy_strerror(res));
  xfer_free(x);
  cbs.on_done(ud, res == CURLE_OK, res == CURLE_OK ? NULL : err);
}

/* Collects finished transfers. on_done may start new transfers. While a
 * transfer is being started, on_done waits for the next loop turn: its
 * caller does not expect a callback before lt_up_start returns. */
static void drain_done(lt_up_loop_t *l) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(l->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    lt_up_xfer_t *x = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    if (!x || x->ended) continue;
    x->result = m->data.result;
    if (!l->starting) {
      deliver(x);
      continue;
    }
    x->ended = true;
    x->next_ended = l->ended;
    l->ended = x;
    event_active(l->deliver, EV_TIMEOUT, 0);
  }
}

static void on_deliver(evutil_socket_t fd, short what, void *arg) {
  lt_up_loop_t *l = arg;
  (void)fd;
  (void)what;
  while (l->ended) {
    lt_up_xfer_t *x = l->ended;
    l->ended = x->next_ended;
    x->ended = false;
    deliver(x);
  }
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg) {
  sock_t *s = arg;
  lt_up_loop_t *l = s->loop;
  int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
  int running;
  curl_multi_socket_action(l->multi, fd, flags, &running);
  drain_done(l);
  if (l->after) l->after(l->after_ud);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  lt_up_loop_t *l = arg;
  (void)fd;
  (void)what;
  int running;
  curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  drain_done(l);
  if (l->after) l->after(l->after_ud);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  lt_up_loop_t *l = userp;
  sock_t *s = socketp;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      event_del(s->ev);
      s->next_free = l->free_socks;
      l->free_socks = s;
      curl_multi_assign(l->multi, fd, NULL);
    }
    return 0;
  }
  short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
  if (s) {
    event_del(s->ev);
  } else if (l->free_socks) {
    s = l->free_socks;
    l->free_socks = s->next_free;
    curl_multi_assign(l->multi, fd, s);
  } else {
    if (!(s = lt_calloc(1, sizeof *s))) return -1;
    s->loop = l;
    if (!(s->ev = event_new(l->base, fd, kind, on_socket_event, s))) {
      lt_free(s);
      return -1;
    }
    curl_multi_assign(l->multi, fd, s);
  }
  event_assign(s->ev, l->base, fd, kind, on_socket_event, s);
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
  l->deliver = event_new(l->base, -1, 0, on_deliver, l);
  if (!l->multi || !l->timer || !l->deliver) {
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
  /* Cleanup closes cached connections; their sockets go back to the pool
   * through the socket callback it triggers. */
  if (l->multi) curl_multi_cleanup(l->multi);
  for (size_t i = 0; i < l->n_idle; i++) curl_easy_cleanup(l->idle[i]);
  while (l->free_xfers) {
    lt_up_xfer_t *x = l->free_xfers;
    l->free_xfers = x->next;
    lt_buf_free(&x->hdr);
    lt_free(x);
  }
  while (l->free_socks) {
    sock_t *s = l->free_socks;
    l->free_socks = s->next_free;
    event_free(s->ev);
    lt_free(s);
  }
  if (l->timer) event_free(l->timer);
  if (l->deliver) event_free(l->deliver);
  lt_free(l);
}

/* ---- one transfer ------------------------------------------------------- */

static void headers_ready(lt_up_xfer_t *x, long status) {
  char *lines[MAX_HEADER_LINES];
  for (size_t i = 0; i < x->n_lines; i++) lines[i] = x->hdr.ptr + x->line_off[i];
  x->headers_done = true;
  x->cbs.on_headers(x->ud, (int)status, lines, x->n_lines);
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg) {
  lt_up_xfer_t *x = arg;
  size_t len = size * n, keep = len;
  while (keep && (p[keep - 1] == '\n' || p[keep - 1] == '\r')) keep--;
  if (keep == 0) { /* the blank line ending a header block */
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && !x->headers_done) {
      headers_ready(x, status);
    } else if (status < 200) { /* 100 Continue and friends: not the response */
      lt_buf_reset(&x->hdr);
      x->n_lines = 0;
    }
    return len;
  }
  if (!strncmp(p, "HTTP/", 5)) return len; /* a status line */
  if (x->n_lines < MAX_HEADER_LINES) {
    size_t off = x->hdr.len;
    if (lt_buf_append(&x->hdr, p, keep) || lt_buf_append(&x->hdr, "", 1)) return 0; /* fails the transfer */
    x->line_off[x->n_lines++] = off;
  }
  return len;
}

static size_t write_cb(char *p, size_t size, size_t n, void *arg) {
  lt_up_xfer_t *x = arg;
  size_t len = size * n;
  if (!x->headers_done) { /* a body without the blank line: should not happen */
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    headers_ready(x, status);
  }
  size_t got = x->cbs.on_body(x->ud, p, len);
  if (got == LT_UP_PAUSE) {
    x->paused = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  return got;
}

int lt_up_start(lt_up_loop_t *l, const lt_up_req_t *req, const lt_up_cbs_t *cbs, void *ud, lt_up_xfer_t **out) {
  if (req->n_headers > MAX_REQ_HEADERS) return LT_EINVAL;
  lt_up_xfer_t *x = l->free_xfers;
  if (x) {
    l->free_xfers = x->next;
    l->n_free_xfers--;
    lt_buf_reset(&x->hdr);
  } else if ((x = lt_malloc(sizeof *x))) {
    lt_buf_init(&x->hdr, MAX_HEADER_BYTES);
  } else {
    return LT_ENOMEM;
  }
  x->loop = l;
  x->cbs = *cbs;
  x->ud = ud;
  x->headers_done = x->paused = x->ended = false;
  x->result = CURLE_OK;
  x->n_lines = 0;
  x->err[0] = '\0';
  x->prev = x->next = x->next_ended = NULL;
  CURL *e = l->n_idle ? l->idle[--l->n_idle] : curl_easy_init();
  if (!e) {
    lt_buf_free(&x->hdr);
    lt_free(x);
    return LT_ENOMEM;
  }
  curl_easy_reset(e); /* a pooled handle forgets the last call's options */
  x->easy = e;
  /* The caller's lines stay valid for the transfer: list them in place.
   * "Expect:" turns off the 100-continue round trip on larger bodies. */
  size_t nh = 0;
  for (size_t i = 0; i < req->n_headers; i++, nh++) x->req_hdr[nh] = (struct curl_slist){req->headers[i], NULL};
  x->req_hdr[nh++] = (struct curl_slist){(char *)"Expect:", NULL};
  for (size_t i = 0; i + 1 < nh; i++) x->req_hdr[i].next = &x->req_hdr[i + 1];
  curl_easy_setopt(e, CURLOPT_URL, req->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->err);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->req_hdr);
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
  /* Send now instead of on the zero timeout curl just asked for: one loop
   * turn (an epoll_wait) less before the request leaves. Not from inside a
   * curl callback, where curl must not be re-entered. */
  if (!l->starting) {
    l->starting = true;
    int running;
    curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_done(l);
    l->starting = false;
    if (l->after) l->after(l->after_ud);
  }
  return 0;
}

void lt_up_pause(lt_up_xfer_t *x, bool pause) {
  if (pause == x->paused) return;
  x->paused = pause;
  lt_up_loop_t *l = x->loop;
  /* Resuming may deliver the held data at once (write_cb runs here), and
   * the transfer may finish: collect it. */
  curl_easy_pause(x->easy, pause ? CURLPAUSE_RECV : CURLPAUSE_CONT);
  if (!pause) {
    drain_done(l);
    if (l->after) l->after(l->after_ud);
  }
}

void lt_up_loop_after(lt_up_loop_t *l, void (*fn)(void *ud), void *ud) {
  l->after = fn;
  l->after_ud = ud;
}

void lt_up_abort(lt_up_xfer_t *x) { xfer_free(x); }
