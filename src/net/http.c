/* HTTP edge on libevent evhttp: loop threads, routing, limits, deferred
 * replies through a per-loop mailbox, and connection tracking so that a
 * reply to a vanished client never touches freed memory. */
#include "net/http.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

typedef struct mail {
  void (*fn)(void *arg);
  void *arg;
  struct mail *next;
} mail_t;

typedef struct loop loop_t;

/* One tracked client connection; lives until libevent closes it. */
typedef struct conn {
  struct evhttp_connection *evcon;
  lt_req_t *pending; /* a deferred request waiting for its reply */
  struct event *watch; /* notices the client hanging up while we wait */
  loop_t *loop;
  struct conn *next; /* hash chain */
} conn_t;

#define CONN_BUCKETS 1024

struct loop {
  lt_server_t *srv;
  int index;
  pthread_t thread;
  struct event_base *base;
  struct evhttp *http;
  struct evhttp_bound_socket *bound;
  struct event *wake;
  pthread_mutex_t mu;
  mail_t *head, *tail;
  conn_t *conns[CONN_BUCKETS];
  void *slot; /* lt_req_loop_slot */
};

struct lt_server {
  lt_http_config_t cfg;
  int port;
  int nloops;
  loop_t *loops;
  atomic_int nconns;
  atomic_long pending;
};

struct lt_req {
  struct evhttp_request *ev; /* NULL once the client is gone */
  loop_t *loop;
  conn_t *conn;
  int method;
  char *path;                /* decoded, owned */
  struct evkeyvalq query;
  bool query_parsed, deferred, replied, has_creds;
  bool in_handler; /* freed by on_request after the handler, not by lt_reply */
  bool via_cookie;  /* credentials came from the session cookie */
  int64_t project_id;
  lt_auth_result_t who;
  lt_post_fn post_fn;
  void *post_arg;
  mail_t mail;
  bool streaming;
  bool chunked;     /* the streamed body has chunked framing */
  bool drain_armed; /* libevent calls on_chunk_written when output drains */
  bool bodyless;    /* HEAD, 1xx, 204, 304: chunks are not sent */
  int64_t alive_ns; /* when a chunk last restarted the connection's timeout */
  bool orphan; /* the client is gone; ev is still ours to free */
  void (*close_fn)(void *);
  void *close_arg;
  void (*drain_fn)(void *);
  void *drain_arg;
};

/* ---- mailbox ---------------------------------------------------------- */

static void mailbox_post(loop_t *l, mail_t *m) {
  m->next = NULL;
  pthread_mutex_lock(&l->mu);
  if (l->tail) l->tail->next = m;
  else l->head = m;
  l->tail = m;
  pthread_mutex_unlock(&l->mu);
  event_active(l->wake, EV_READ, 0); /* thread-safe: evthread_use_pthreads */
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
  loop_t *l = arg;
  pthread_mutex_lock(&l->mu);
  mail_t *m = l->head;
  l->head = l->tail = NULL;
  pthread_mutex_unlock(&l->mu);
  while (m) {
    mail_t *next = m->next; /* fn may free m */
    m->fn(m->arg);
    m = next;
  }
}

/* ---- connections ------------------------------------------------------ */

static size_t conn_slot(struct evhttp_connection *c) {
  uintptr_t x = (uintptr_t)c;
  x ^= x >> 17;
  x *= 0x9E3779B97F4A7C15ull;
  return (size_t)(x >> 40) % CONN_BUCKETS;
}

static conn_t *conn_find(loop_t *l, struct evhttp_connection *c) {
  for (conn_t *k = l->conns[conn_slot(c)]; k; k = k->next)
    if (k->evcon == c) return k;
  return NULL;
}

static void on_conn_close(struct evhttp_connection *c, void *arg) {
  conn_t *k = arg;
  loop_t *l = k->loop;
  if (k->watch) {
    event_free(k->watch);
    k->watch = NULL;
  }
  lt_req_t *p = k->pending;
  if (p) {
    /* A request libevent already detached from the failed connection is
     * ours to free when we reply (an orphan); one still attached goes with
     * the connection. */
    if (evhttp_request_get_connection(p->ev) == NULL) p->orphan = true;
    else p->ev = NULL;
    p->conn = NULL;
    k->pending = NULL;
    if (p->close_fn) {
      void (*fn)(void *) = p->close_fn;
      p->close_fn = NULL;
      fn(p->close_arg); /* may end (and free) p */
    }
  }
  conn_t **pp = &l->conns[conn_slot(c)];
  while (*pp && *pp != k) pp = &(*pp)->next;
  if (*pp) *pp = k->next;
  atomic_fetch_sub(&l->srv->nconns, 1);
  lt_free(k);
}

/* ---- request ---------------------------------------------------------- */

static int method_bit(enum evhttp_cmd_type t) {
  switch (t) {
  case EVHTTP_REQ_GET: return LT_GET;
  case EVHTTP_REQ_POST: return LT_POST;
  case EVHTTP_REQ_PUT: return LT_PUT;
  case EVHTTP_REQ_DELETE: return LT_DELETE;
  case EVHTTP_REQ_HEAD: return LT_HEAD;
  case EVHTTP_REQ_OPTIONS: return LT_OPTIONS;
  case EVHTTP_REQ_PATCH: return LT_PATCH;
  default: return 0;
  }
}

static void req_free(lt_req_t *r) {
  if (r->query_parsed) evhttp_clear_headers(&r->query);
  free(r->path); /* from evhttp_uridecode: libevent's allocator */
  lt_free(r);
}

int lt_req_method(lt_req_t *r) { return r->method; }
lt_str_t lt_req_path(lt_req_t *r) { return lt_str_from(r->path); }
int64_t lt_req_project(lt_req_t *r) { return r->project_id; }
bool lt_req_has_credentials(lt_req_t *r) { return r->has_creds; }
lt_auth_via_t lt_req_auth_via(lt_req_t *r) { return r->who.via; }
int64_t lt_req_user(lt_req_t *r) { return r->who.user_id; }
const char *lt_req_public_key(lt_req_t *r) { return r->who.public_key; }
bool lt_req_via_cookie(lt_req_t *r) { return r->via_cookie; }

const char *lt_req_query(lt_req_t *r, const char *name) {
  if (!r->ev) return NULL;
  if (!r->query_parsed) {
    TAILQ_INIT(&r->query);
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->ev));
    if (q && evhttp_parse_query_str(q, &r->query) != 0) evhttp_clear_headers(&r->query);
    r->query_parsed = true;
  }
  return evhttp_find_header(&r->query, name);
}

const char *lt_req_header(lt_req_t *r, const char *name) {
  return r->ev ? evhttp_find_header(evhttp_request_get_input_headers(r->ev), name) : NULL;
}

lt_str_t lt_req_body(lt_req_t *r) {
  if (!r->ev) return LT_STR_NULL;
  struct evbuffer *b = evhttp_request_get_input_buffer(r->ev);
  size_t n = evbuffer_get_length(b);
  if (!n) return (lt_str_t){"", 0};
  return (lt_str_t){(const char *)evbuffer_pullup(b, -1), n};
}

void *lt_req_take_body(lt_req_t *r, lt_str_t *out) {
  if (!r->ev) return NULL;
  struct evbuffer *own = evbuffer_new();
  if (!own) return NULL;
  /* Moves the buffer chains: the bytes stay where they are. */
  if (evbuffer_add_buffer(own, evhttp_request_get_input_buffer(r->ev)) != 0) {
    evbuffer_free(own);
    return NULL;
  }
  size_t n = evbuffer_get_length(own);
  const char *p = n ? (const char *)evbuffer_pullup(own, -1) : "";
  if (!p) {
    evbuffer_add_buffer(evhttp_request_get_input_buffer(r->ev), own);
    evbuffer_free(own);
    return NULL;
  }
  *out = (lt_str_t){p, n};
  return own;
}

void lt_req_body_free(void *owner) {
  if (owner) evbuffer_free(owner);
}

const char *lt_req_raw_query(lt_req_t *r) {
  return r->ev ? evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->ev)) : NULL;
}

void lt_req_each_header(lt_req_t *r, int (*fn)(void *ud, const char *name, const char *value), void *ud) {
  if (!r->ev) return;
  struct evkeyval *h;
  TAILQ_FOREACH(h, evhttp_request_get_input_headers(r->ev), next)
    if (fn(ud, h->key, h->value)) return;
}

void lt_req_set_header(lt_req_t *r, const char *name, const char *value) {
  if (r->ev) evhttp_add_header(evhttp_request_get_output_headers(r->ev), name, value);
}

static const char *reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 207: return "Multi-Status";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 409: return "Conflict";
  case 413: return "Payload Too Large";
  case 415: return "Unsupported Media Type";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Status";
  }
}

/* The reply is going out: libevent watches the connection again. */
static void unwatch(lt_req_t *r) {
  if (r->conn && r->conn->watch) {
    event_free(r->conn->watch);
    r->conn->watch = NULL;
  }
}

/* A reply to an orphan frees it: nobody is there to send it to. */
static bool reply_orphan(lt_req_t *r) {
  if (!r->orphan || !r->ev) return false;
  evhttp_request_free(r->ev);
  r->ev = NULL;
  return true;
}

void lt_reply(lt_req_t *r, int status, const char *content_type, const void *body, size_t len) {
  if (r->replied) return;
  r->replied = true;
  unwatch(r);
  if (r->conn && r->conn->pending == r) r->conn->pending = NULL;
  if (r->deferred) atomic_fetch_sub(&r->loop->srv->pending, 1);
  if (!reply_orphan(r) && r->ev) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    if (content_type) evhttp_add_header(h, "Content-Type", content_type);
    struct evbuffer *out = evbuffer_new();
    if (out && len) evbuffer_add(out, body, len);
    evhttp_send_reply(r->ev, status, reason(status), out);
    if (out) evbuffer_free(out);
  }
  if (!r->in_handler) req_free(r);
}

void lt_reply_json(lt_req_t *r, int status, const lt_buf_t *json) {
  lt_reply(r, status, "application/json", json->ptr, json->len);
}

void lt_reply_error(lt_req_t *r, int status, const char *code, const char *message) {
  lt_buf_t b;
  lt_buf_init(&b, 1 << 16);
  int rc = lt_buf_puts(&b, "{\"error\":{\"code\":");
  if (!rc) rc = lt_buf_json_str(&b, code, strlen(code));
  if (!rc) rc = lt_buf_puts(&b, ",\"message\":");
  if (!rc) rc = lt_buf_json_str(&b, message, strlen(message));
  if (!rc) rc = lt_buf_puts(&b, "}}");
  if (status == 503 || status == 429) lt_req_set_header(r, "Retry-After", "1");
  if (status == 401) lt_req_set_header(r, "WWW-Authenticate", "Bearer realm=\"lanterna\"");
  if (rc) lt_reply(r, status, "application/json", "{}", 2);
  else lt_reply_json(r, status, &b);
  lt_buf_free(&b);
}

/* ---- streaming replies -------------------------------------------------- */

static size_t out_queued(lt_req_t *r) {
  if (!r->ev || r->orphan) return 0;
  struct evhttp_connection *c = evhttp_request_get_connection(r->ev);
  struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
  return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

static void on_chunk_written(struct evhttp_connection *c, void *arg) {
  lt_req_t *r = arg;
  (void)c;
  if (r->drain_fn) r->drain_fn(r->drain_arg);
}

void lt_reply_start(lt_req_t *r, int status) {
  if (r->replied || r->streaming) return;
  r->streaming = true;
  if (!r->ev || r->orphan) return;
  evhttp_send_reply_start(r->ev, status, reason(status));
  const char *te = evhttp_find_header(evhttp_request_get_output_headers(r->ev), "Transfer-Encoding");
  r->chunked = te && !strcasecmp(te, "chunked");
  /* As evhttp_response_needs_body: these replies carry no body. */
  r->bodyless = r->method == LT_HEAD || status < 200 || status == 204 || status == 304;
}

size_t lt_reply_queued(lt_req_t *r) { return out_queued(r); }

/* Writes what the bufferevent holds now, instead of on the loop's next
 * turn: libevent only writes once epoll reports the socket writable. Its
 * output buffer's start is frozen against users draining it; this is what
 * bufferevent_writecb does around the same call. */
static void flush_now(struct bufferevent *bev) {
  struct evbuffer *out = bufferevent_get_output(bev);
  evutil_socket_t fd = bufferevent_getfd(bev);
  if (fd < 0 || !evbuffer_get_length(out)) return;
  evbuffer_unfreeze(out, 1);
  evbuffer_write(out, fd); /* an error shows on libevent's own next write */
  evbuffer_freeze(out, 1);
}

/* A streamed chunk goes to the socket at once when nothing is queued
 * before it: one sendmsg, no epoll_ctl to watch for writability and back,
 * no extra loop turn (that turn, behind other connections' events, was
 * most of the proxy's added time to first token). What the socket does
 * not take is queued behind, and libevent writes it as usual. The first
 * chunk goes through evhttp, which sets on_chunk_written as the
 * connection's drain callback for the rest of the reply. */
size_t lt_reply_chunk(lt_req_t *r, const void *p, size_t n) {
  /* An empty chunk would end a chunked body: never send one. */
  if (!r->ev || r->orphan || !r->streaming || r->replied || r->bodyless || n == 0) return out_queued(r);
  struct evhttp_connection *c = evhttp_request_get_connection(r->ev);
  struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
  if (!bev) return 0;
  struct evbuffer *out = bufferevent_get_output(bev);
  /* evhttp watches a streaming connection for reads with the idle timeout
   * (to notice a hang-up), and its own chunk calls restart that timer.
   * Ours must too, or a stream longer than --idle-timeout is cut. Four
   * times per timeout is enough; on a pending event it is a timer update,
   * no system call. */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  if (now - r->alive_ns >= r->loop->srv->cfg.idle_timeout_s * (1000000000LL / 4)) {
    if (r->drain_armed) bufferevent_enable(bev, EV_READ); /* the first chunk's evhttp call does it */
    r->alive_ns = now;
  }
  if (!r->drain_armed) {
    struct evbuffer *b = evbuffer_new();
    if (!b) return out_queued(r);
    evbuffer_add(b, p, n);
    evhttp_send_reply_chunk_with_cb(r->ev, b, on_chunk_written, r);
    evbuffer_free(b);
    r->drain_armed = true;
    flush_now(bev); /* the headers with the first chunk */
    return evbuffer_get_length(out);
  }
  char head[24];
  size_t hl = r->chunked ? (size_t)snprintf(head, sizeof head, "%zx\r\n", n) : 0;
  struct iovec iov[3] = {{head, hl}, {(void *)p, n}, {(void *)"\r\n", r->chunked ? 2 : 0}};
  size_t total = hl + n + iov[2].iov_len, sent = 0;
  evutil_socket_t fd = bufferevent_getfd(bev);
  if (!evbuffer_get_length(out) && fd >= 0) {
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 3};
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) sent = (size_t)w;
  }
  if (sent < total) {
    /* The rest, in order; adding it makes libevent watch for writability. */
    for (int i = 0; i < 3; i++) {
      size_t len = iov[i].iov_len, skip = sent < len ? sent : len;
      sent -= skip;
      if (len > skip) evbuffer_add(out, (const char *)iov[i].iov_base + skip, len - skip);
    }
  }
  return evbuffer_get_length(out);
}

void lt_reply_end(lt_req_t *r) {
  if (r->replied) return;
  r->replied = true;
  unwatch(r);
  r->close_fn = NULL;
  r->drain_fn = NULL;
  if (r->conn && r->conn->pending == r) r->conn->pending = NULL;
  if (r->deferred) atomic_fetch_sub(&r->loop->srv->pending, 1);
  if (!reply_orphan(r) && r->ev) {
    if (r->streaming) evhttp_send_reply_end(r->ev);
    else evhttp_send_reply(r->ev, 502, "Bad Gateway", NULL);
  }
  if (!r->in_handler) req_free(r);
}

void lt_req_on_drain(lt_req_t *r, void (*fn)(void *), void *arg) {
  r->drain_fn = fn;
  r->drain_arg = arg;
}

/* libevent stops reading a connection while its request is handled, so
 * a client hanging up would go unnoticed until we write. Watching the
 * socket for the peer's close (EPOLLRDHUP) lets a deferred request learn
 * it at once; closing the connection then runs on_conn_close as usual. */
static void on_peer_gone(evutil_socket_t fd, short what, void *arg) {
  conn_t *k = arg;
  (void)fd;
  (void)what;
  event_free(k->watch);
  k->watch = NULL;
  evhttp_connection_free(k->evcon); /* on_conn_close runs, then frees k */
}

void lt_req_on_close(lt_req_t *r, void (*fn)(void *), void *arg) {
  r->close_fn = fn;
  r->close_arg = arg;
  conn_t *k = r->conn;
  if (!fn || !k || k->watch || !r->ev || r->orphan) return;
  struct bufferevent *bev = evhttp_connection_get_bufferevent(k->evcon);
  evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
  if (fd < 0) return;
  k->watch = event_new(r->loop->base, fd, EV_CLOSED, on_peer_gone, k);
  if (k->watch && event_add(k->watch, NULL) != 0) {
    event_free(k->watch);
    k->watch = NULL;
  }
}

bool lt_req_gone(lt_req_t *r) { return r->ev == NULL || r->orphan; }
void *lt_req_event_base(lt_req_t *r) { return r->loop->base; }
void **lt_req_loop_slot(lt_req_t *r) { return &r->loop->slot; }

const char *lt_req_peer(lt_req_t *r) {
  char *addr = NULL;
  ev_uint16_t port = 0;
  if (r->ev && !r->orphan) evhttp_connection_get_peer(evhttp_request_get_connection(r->ev), &addr, &port);
  return addr ? addr : "";
}

void lt_req_defer(lt_req_t *r) {
  r->deferred = true;
  atomic_fetch_add(&r->loop->srv->pending, 1);
  if (r->conn) r->conn->pending = r;
}

static void run_post(void *arg) {
  lt_req_t *r = arg;
  r->post_fn(r, r->post_arg);
}

void lt_req_post(lt_req_t *r, lt_post_fn fn, void *arg) {
  r->post_fn = fn;
  r->post_arg = arg;
  r->mail.fn = run_post;
  r->mail.arg = r;
  mailbox_post(r->loop, &r->mail);
}

/* ---- cookies and authentication ---------------------------------------- */

/* Finds name=value in a Cookie header ("a=1; b=2"); the value is copied
 * without surrounding quotes. */
static bool cookie_find(const char *hdr, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name);
  for (const char *p = hdr; p && *p;) {
    while (*p == ' ' || *p == '\t' || *p == ';') p++;
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
      const char *v = p + nl + 1;
      size_t vl = len - nl - 1;
      while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
      if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') v++, vl -= 2;
      if (vl >= cap) return false;
      memcpy(out, v, vl);
      out[vl] = '\0';
      return true;
    }
    p = end;
  }
  return false;
}

bool lt_req_cookie(lt_req_t *r, const char *name, char *out, size_t cap) {
  const char *hdr = lt_req_header(r, "Cookie");
  return hdr && cookie_find(hdr, name, out, cap);
}

/* Same length and bytes, in time that depends only on the length. */
static bool same_token(const char *a, const char *b) {
  size_t n = strlen(a);
  if (n == 0 || n != strlen(b)) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < n; i++) d |= (unsigned char)(a[i] ^ b[i]);
  return d == 0;
}

/* Resolves the caller: the Authorization header, else the session cookie,
 * else anonymous. Returns 0, LT_EAUTH (r stays anonymous, project 0) or
 * LT_EFORBIDDEN (a cookie-authenticated write without the CSRF token). */
static int authenticate(lt_server_t *s, lt_req_t *r) {
  const char *authz = lt_req_header(r, "Authorization");
  char cookie_authz[16 + 256];
  if (!authz) {
    char secret[256];
    if (lt_req_cookie(r, LT_SESSION_COOKIE, secret, sizeof secret) && *secret) {
      snprintf(cookie_authz, sizeof cookie_authz, "Bearer %s", secret);
      authz = cookie_authz;
      r->via_cookie = true;
    }
  }
  r->has_creds = authz != NULL;
  memset(&r->who, 0, sizeof r->who);
  if (!s->cfg.auth || s->cfg.auth(s->cfg.auth_ud, authz, &r->who) != 0) {
    memset(&r->who, 0, sizeof r->who);
    r->project_id = 0;
    return LT_EAUTH;
  }
  r->project_id = r->who.project_id;
  if (r->via_cookie && !(r->method & (LT_GET | LT_HEAD | LT_OPTIONS))) {
    char want[128];
    const char *got = lt_req_header(r, LT_CSRF_HEADER);
    if (!got || !lt_req_cookie(r, LT_CSRF_COOKIE, want, sizeof want) || !same_token(got, want)) return LT_EFORBIDDEN;
  }
  return 0;
}

int lt_req_try_auth(lt_req_t *r) {
  int rc = authenticate(r->loop->srv, r);
  if (rc == LT_EAUTH) {
    r->via_cookie = false;
    /* Stale cookie: the caller is who it would be without it. */
    if (r->has_creds && !lt_req_header(r, "Authorization") && r->loop->srv->cfg.auth &&
        r->loop->srv->cfg.auth(r->loop->srv->cfg.auth_ud, NULL, &r->who) == 0) {
      r->project_id = r->who.project_id;
      return LT_EAUTH;
    }
    memset(&r->who, 0, sizeof r->who);
    r->project_id = 0;
  }
  return rc;
}

/* ---- dispatch --------------------------------------------------------- */

static bool path_matches(const lt_route_t *rt, const char *path) {
  size_t n = strlen(rt->path);
  return rt->prefix ? strncmp(path, rt->path, n) == 0 : strcmp(path, rt->path) == 0;
}

static void on_request(struct evhttp_request *ev, void *arg) {
  loop_t *l = arg;
  lt_server_t *s = l->srv;
  struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
  conn_t *k = conn_find(l, evcon);
  if (!k) {
    if (atomic_fetch_add(&s->nconns, 1) >= s->cfg.max_connections) {
      atomic_fetch_sub(&s->nconns, 1);
      evhttp_add_header(evhttp_request_get_output_headers(ev), "Connection", "close");
      evhttp_add_header(evhttp_request_get_output_headers(ev), "Retry-After", "1");
      evhttp_send_reply(ev, 503, "Service Unavailable", NULL);
      return;
    }
    k = lt_calloc(1, sizeof *k);
    if (!k) {
      atomic_fetch_sub(&s->nconns, 1);
      evhttp_send_reply(ev, 503, "Service Unavailable", NULL);
      return;
    }
    k->evcon = evcon;
    k->loop = l;
    size_t slot = conn_slot(evcon);
    k->next = l->conns[slot];
    l->conns[slot] = k;
    evhttp_connection_set_closecb(evcon, on_conn_close, k);
  }

  lt_req_t *r = lt_calloc(1, sizeof *r);
  if (!r) {
    evhttp_send_reply(ev, 503, "Service Unavailable", NULL);
    return;
  }
  r->ev = ev;
  r->loop = l;
  r->conn = k;
  r->method = method_bit(evhttp_request_get_command(ev));
  const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
  const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
  r->path = evhttp_uridecode(raw && *raw ? raw : "/", 0, NULL);
  if (!r->path) {
    lt_reply_error(r, 400, "bad_request", "the request path could not be decoded");
    return;
  }

  const lt_route_t *match = NULL;
  int allowed = 0;
  for (const lt_route_t *rt = s->cfg.routes; rt->path; rt++) {
    if (!path_matches(rt, r->path)) continue;
    allowed |= rt->methods;
    if (rt->methods & r->method) {
      match = rt;
      break;
    }
  }
  if (!match) {
    if (allowed) {
      char allow[96] = "";
      static const char *names[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};
      for (int i = 0; i < 7; i++)
        if (allowed & (1 << i)) {
          if (*allow) strcat(allow, ", ");
          strcat(allow, names[i]);
        }
      lt_req_set_header(r, "Allow", allow);
      lt_reply_error(r, 405, "method_not_allowed", "this path does not accept that method");
    } else {
      lt_reply_error(r, 404, "not_found", "no such endpoint");
    }
    return;
  }
  if (match->auth) {
    int arc = authenticate(s, r);
    if (arc == LT_EFORBIDDEN) {
      lt_reply_error(r, 403, "csrf", "missing or wrong " LT_CSRF_HEADER " header: send the value of the "
                                     LT_CSRF_COOKIE " cookie with every write made with a session");
      return;
    }
    if (arc != 0) {
      lt_reply_error(r, 401, "unauthorized",
                     r->via_cookie ? "the session has expired or was revoked: log in again"
                     : r->has_creds ? "the API key is not valid (revoked or unknown)"
                                    : "credentials required: send Authorization: Bearer sk-lt-...");
      return;
    }
  }
  r->in_handler = true;
  match->fn(r, match->ud);
  r->in_handler = false;
  if (!r->deferred && !r->replied) lt_reply_error(r, 500, "internal", "handler did not reply");
  else if (r->replied) req_free(r);
}

/* ---- loops and sockets ------------------------------------------------ */

/* SO_REUSEPORT would let a second server share our port silently. A probe
 * bound without it fails with EADDRINUSE when anyone listens there. */
static bool port_in_use(const char *host, int port) {
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  char ports[16];
  snprintf(ports, sizeof ports, "%d", port);
  if (getaddrinfo(host, ports, &hints, &res) != 0) return false;
  bool busy = false;
  int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    busy = bind(fd, res->ai_addr, res->ai_addrlen) != 0 && errno == EADDRINUSE;
    close(fd);
  }
  freeaddrinfo(res);
  return busy;
}

static int open_listener(const char *host, int port, int *bound_port) {
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  char ports[16];
  snprintf(ports, sizeof ports, "%d", port);
  int gai = getaddrinfo(host, ports, &hints, &res);
  if (gai != 0) {
    lt_error("listen: cannot resolve %s: %s", host, gai_strerror(gai));
    return -1;
  }
  int fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    /* Accepted sockets inherit it (Linux): replies and streamed events
     * leave at once instead of waiting for the client's delayed ACK
     * (streaming p99 at the proxy's maximum: 49 -> ~20 ms). */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
      lt_error("listen: cannot bind %s:%d: %s", host, port, strerror(errno));
      close(fd);
      fd = -1;
    }
  }
  if (fd >= 0 && bound_port) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
  }
  freeaddrinfo(res);
  return fd;
}

static void *loop_main(void *arg) {
  loop_t *l = arg;
  char name[16];
  snprintf(name, sizeof name, "lt-http-%d", l->index);
  pthread_setname_np(pthread_self(), name);
  event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
  return NULL;
}

/* Bytes a connection reads per readable event (net/evread.c lifts
 * libevent's 4 KiB cap; the reservation follows what the socket holds). */
#define READ_MAX (256 << 10)

/* Each connection's bufferevent, made as evhttp makes it, with the larger
 * single read. */
static struct bufferevent *make_bev(struct event_base *base, void *arg) {
  (void)arg;
  struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (bev) bufferevent_set_max_single_read(bev, READ_MAX);
  return bev;
}

static int loop_init(lt_server_t *s, loop_t *l, int fd) {
  l->srv = s;
  pthread_mutex_init(&l->mu, NULL);
  l->base = event_base_new();
  if (!l->base) return LT_ENOMEM;
  l->wake = event_new(l->base, -1, 0, on_wake, l);
  l->http = evhttp_new(l->base);
  if (!l->wake || !l->http) return LT_ENOMEM;
  evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                          EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
                                          EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
  evhttp_set_max_headers_size(l->http, (ev_ssize_t)s->cfg.max_header_bytes);
  evhttp_set_max_body_size(l->http, (ev_ssize_t)s->cfg.max_body_bytes);
  evhttp_set_timeout(l->http, s->cfg.idle_timeout_s);
  evhttp_set_gencb(l->http, on_request, l);
  evhttp_set_bevcb(l->http, make_bev, NULL);
  l->bound = evhttp_accept_socket_with_handle(l->http, fd);
  if (!l->bound) return LT_EIO;
  return 0;
}

static void use_pthreads(void) { evthread_use_pthreads(); }

int lt_http_start(const lt_http_config_t *cfg, lt_server_t **out) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, use_pthreads);
  lt_server_t *s = lt_calloc(1, sizeof *s);
  if (!s) return LT_ENOMEM;
  s->cfg = *cfg;
  s->nloops = cfg->threads > 0 ? (cfg->threads > 64 ? 64 : cfg->threads) : 1;
  s->loops = lt_calloc((size_t)s->nloops, sizeof *s->loops);
  if (!s->loops) {
    lt_free(s);
    return LT_ENOMEM;
  }
  int port = cfg->port;
  if (port != 0 && port_in_use(cfg->host, port)) {
    lt_error("listen: %s:%d is already in use by another process", cfg->host, port);
    lt_free(s->loops);
    lt_free(s);
    return LT_EIO;
  }
  for (int i = 0; i < s->nloops; i++) {
    /* With port 0 the first socket picks the port and the rest share it. */
    int fd = open_listener(cfg->host, port, i == 0 ? &port : NULL);
    if (fd < 0) {
      s->nloops = i;
      lt_http_free(s);
      return LT_EIO;
    }
    if (loop_init(s, &s->loops[i], fd) != 0) {
      if (!s->loops[i].bound) close(fd); /* a bound socket is closed by evhttp_free */
      s->nloops = i + 1;                 /* free what loop_init made, too */
      lt_http_free(s);
      return LT_EIO;
    }
    s->loops[i].index = i;
  }
  s->port = port;
  for (int i = 0; i < s->nloops; i++)
    pthread_create(&s->loops[i].thread, NULL, loop_main, &s->loops[i]);
  *out = s;
  return 0;
}

int lt_http_port(lt_server_t *s) { return s->port; }
long lt_http_pending(lt_server_t *s) { return atomic_load(&s->pending); }

typedef struct {
  mail_t m;
  loop_t *l;
} ctl_mail_t;

static void do_stop_accepting(void *arg) {
  ctl_mail_t *cm = arg;
  loop_t *l = cm->l;
  lt_free(cm);
  if (l->bound) {
    evhttp_del_accept_socket(l->http, l->bound);
    l->bound = NULL;
  }
}

void lt_http_stop_accepting(lt_server_t *s) {
  for (int i = 0; i < s->nloops; i++) {
    ctl_mail_t *cm = lt_calloc(1, sizeof *cm);
    if (!cm) continue;
    /* The mail frees itself when it runs. */
    cm->l = &s->loops[i];
    cm->m.fn = do_stop_accepting;
    cm->m.arg = cm;
    mailbox_post(&s->loops[i], &cm->m);
  }
}

static void do_exit(void *arg) {
  loop_t *l = arg;
  event_base_loopexit(l->base, NULL);
}

void lt_http_free(lt_server_t *s) {
  if (!s) return;
  mail_t exits[64];
  for (int i = 0; i < s->nloops && i < 64; i++) {
    if (!s->loops[i].thread) continue;
    exits[i].fn = do_exit;
    exits[i].arg = &s->loops[i];
    mailbox_post(&s->loops[i], &exits[i]);
  }
  for (int i = 0; i < s->nloops; i++) {
    loop_t *l = &s->loops[i];
    if (l->thread) pthread_join(l->thread, NULL);
    if (l->http) evhttp_free(l->http); /* closes connections: close callbacks run */
    if (l->slot && s->cfg.loop_exit) s->cfg.loop_exit(l->slot);
    if (l->wake) event_free(l->wake);
    if (l->base) event_base_free(l->base);
    pthread_mutex_destroy(&l->mu);
  }
  lt_free(s->loops);
  lt_free(s);
}

void lt__http_h2_preface_seen(void) {
  static _Atomic int64_t logged_s;
  if (!lt_log_due(&logged_s, 60)) return;
  lt_warn("a client spoke HTTP/2 to this port, most likely an OTLP/gRPC exporter: Lanterna takes OTLP over "
          "HTTP/1.1; set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (and the endpoint to this port) on that client");
}
