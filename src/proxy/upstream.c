/* Outbound HTTP/1.1 to LLM upstreams on a loop's own event base (see
 * upstream.h and docs/proxy.md, "Upstream client").
 * Per loop: a pool of idle keep-alive connections per host:port, each
 * watched while idle so one the upstream closed is dropped rather than
 * reused; names resolved with libevent's asynchronous resolver. Per
 * transfer: connect (each address in turn), send the request with one
 * writev (the rest when the socket takes it), parse the response with
 * http1.c, hand the body over in place. A reused connection that fails
 * before any byte of the answer is retried once on a new one.
 *
 * https:// goes through OpenSSL on the same non-blocking socket: the peer's
 * certificate is verified against the system's store (or the configured
 * CA file) and its name against the upstream's host, with SNI and ALPN
 * "http/1.1". */
#include "proxy/upstream.h"
#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "core/err.h"
#include "core/mem.h"
#include "proxy/http1.h"

#define RBUF_START (16u << 10)
#define RBUF_MAX (LT_H1_MAX_HEADER_BYTES + (16u << 10))
#define KEY_MAX 300
#define PKEY_MAX 800
/* Idle connections kept per loop. */
#define POOL_MAX 256

typedef struct conn {
  evutil_socket_t fd;
  char key[PKEY_MAX];
  /* Read interest stays registered for the connection's life (level
   * triggered): while pooled it tells of the upstream closing it, while in
   * use of the answer; no epoll change per call. Write interest only while
   * connecting or when a request did not go out in one write. */
  struct event *rev, *wev;
  struct lt_up_xfer *x; /* the transfer using it, NULL while pooled */
  SSL *ssl;             /* https: the TLS session over fd */
  struct conn *next;
  struct lt_up_loop *loop;
} conn_t;

struct lt_up_loop {
  struct event_base *base;
  struct evdns_base *dns;
  conn_t *idle;
  size_t n_idle;
  lt_up_xfer_t *xfers;
  SSL_CTX *tls;             /* verifying against the system's store */
  struct { char *path; SSL_CTX *ctx; } tls_ca[8]; /* per CA file */
  size_t n_tls_ca;
  bool starting;            /* inside lt_up_start: on_done must wait */
  struct event *deliver;    /* runs the failures found while starting */
  lt_up_xfer_t *failed;     /* those, waiting for it */
  void (*after)(void *);
  void *after_ud;
};

enum { X_RESOLVING, X_CONNECTING, X_HANDSHAKE, X_SENDING, X_RECEIVING };

struct lt_up_xfer {
  lt_up_loop_t *loop;
  lt_up_cbs_t cbs;
  void *ud;
  int phase;
  conn_t *c;
  bool reused, got_bytes, retried, paused, failing, tls;
  const char *ca_file;
  struct event *timer;   /* connect or whole-transfer deadline */
  struct evdns_getaddrinfo_request *dns_req;
  struct evutil_addrinfo *addrs, *next_addr;
  char host[256], port[8], key[KEY_MAX];
  char pkey[PKEY_MAX]; /* the pool's: scheme, host:port, CA file */
  char *head; /* request line and headers */
  size_t head_len, sent;
  const char *body;
  size_t body_len;
  long connect_timeout_ms, timeout_ms;
  lt_h1_t h1;
  char *rbuf;
  size_t rlen, rcap;
  char err[600];
  lt_up_xfer_t *prev, *next, *next_failed;
};

int lt_up_global_init(void) { return OPENSSL_init_ssl(0, NULL) == 1 ? 0 : LT_ENOMEM; }
void lt_up_global_free(void) {}

static void on_deliver(evutil_socket_t fd, short what, void *arg);

lt_up_loop_t *lt_up_loop_new(void *event_base) {
  lt_up_loop_t *l = lt_calloc(1, sizeof *l);
  if (!l) return NULL;
  l->base = event_base;
  l->dns = evdns_base_new(l->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
  if (!l->dns) l->dns = evdns_base_new(l->base, 0); /* no resolv.conf: numeric hosts and /etc/hosts still work */
  l->deliver = event_new(l->base, -1, 0, on_deliver, l);
  if (!l->dns || !l->deliver) {
    if (l->dns) evdns_base_free(l->dns, 0);
    if (l->deliver) event_free(l->deliver);
    lt_free(l);
    return NULL;
  }
  return l;
}

static void conn_close(conn_t *c) {
  if (c->ssl) SSL_free(c->ssl);
  if (c->rev) event_free(c->rev);
  if (c->wev) event_free(c->wev);
  if (c->fd >= 0) evutil_closesocket(c->fd);
  lt_free(c);
}

static void xfer_free(lt_up_xfer_t *x);

void lt_up_loop_free(lt_up_loop_t *l) {
  if (!l) return;
  while (l->xfers) xfer_free(l->xfers);
  while (l->idle) {
    conn_t *c = l->idle;
    l->idle = c->next;
    conn_close(c);
  }
  evdns_base_free(l->dns, 0);
  event_free(l->deliver);
  if (l->tls) SSL_CTX_free(l->tls);
  for (size_t i = 0; i < l->n_tls_ca; i++) {
    SSL_CTX_free(l->tls_ca[i].ctx);
    lt_free(l->tls_ca[i].path);
  }
  lt_free(l);
}

void lt_up_loop_after(lt_up_loop_t *l, void (*fn)(void *), void *ud) {
  l->after = fn;
  l->after_ud = ud;
}

static void run_after(lt_up_loop_t *l) {
  if (l->after) l->after(l->after_ud);
}

/* ---- the idle pool ------------------------------------------------------ */

static void pool_remove(lt_up_loop_t *l, conn_t *c) {
  for (conn_t **p = &l->idle; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      l->n_idle--;
      return;
    }
}

static void pool_put(lt_up_loop_t *l, conn_t *c) {
  if (l->n_idle >= POOL_MAX || !c->rev || !event_pending(c->rev, EV_READ, NULL)) {
    conn_close(c);
    return;
  }
  c->x = NULL;
  c->next = l->idle;
  l->idle = c;
  l->n_idle++;
}

static conn_t *pool_take(lt_up_loop_t *l, const char *key) {
  for (conn_t **p = &l->idle; *p; p = &(*p)->next)
    if (!strcmp((*p)->key, key)) {
      conn_t *c = *p;
      *p = c->next;
      l->n_idle--;
      return c;
    }
  return NULL;
}

/* ---- one transfer ------------------------------------------------------- */

static void xfer_free(lt_up_xfer_t *x) {
  lt_up_loop_t *l = x->loop;
  if (x->prev) x->prev->next = x->next;
  else l->xfers = x->next;
  if (x->next) x->next->prev = x->prev;
  if (x->dns_req) evdns_getaddrinfo_cancel(x->dns_req); /* its callback runs with EVUTIL_EAI_CANCEL */
  if (x->timer) event_free(x->timer);
  if (x->failing) /* still waiting for delivery */
    for (lt_up_xfer_t **p = &l->failed; *p; p = &(*p)->next_failed)
      if (*p == x) {
        *p = x->next_failed;
        break;
      }
  if (x->c) conn_close(x->c);
  if (x->addrs) evutil_freeaddrinfo(x->addrs);
  lt_free(x->head);
  lt_free(x->rbuf);
  lt_free(x);
}

/* Ends the transfer: the connection goes back to the pool when the
 * response ended cleanly on it with nothing after it. */
static void fail_later(lt_up_xfer_t *x, const char *msg);

static void finish(lt_up_xfer_t *x, bool ok, const char *err) {
  if (!ok && x->loop->starting) { /* on_done may not run before lt_up_start returns */
    fail_later(x, err ? err : "failed");
    return;
  }
  lt_up_cbs_t cbs = x->cbs;
  void *ud = x->ud;
  char msg[sizeof x->err];
  snprintf(msg, sizeof msg, "%s", err ? err : "");
  if (ok && x->c && x->h1.keep_alive && x->rlen == 0) {
    conn_t *c = x->c;
    x->c = NULL;
    pool_put(x->loop, c);
  }
  xfer_free(x);
  cbs.on_done(ud, ok, ok ? NULL : msg);
}

static void fail_errno(lt_up_xfer_t *x, const char *what, int e) {
  char m[600];
  snprintf(m, sizeof m, "%.40s %.255s:%.7s: %.200s", what, x->host, x->port, evutil_socket_error_to_string(e));
  finish(x, false, m);
}

static void start_connect(lt_up_xfer_t *x);

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  lt_up_xfer_t *x = arg;
  lt_up_loop_t *l = x->loop;
  (void)fd;
  (void)what;
  char m[400];
  if (x->phase <= X_CONNECTING)
    snprintf(m, sizeof m, "connecting to %.255s:%.7s timed out after %ld ms", x->host, x->port, x->connect_timeout_ms);
  else
    snprintf(m, sizeof m, "the upstream did not finish within %ld ms", x->timeout_ms);
  finish(x, false, m);
  run_after(l);
}

static void arm_timer(lt_up_xfer_t *x, long ms) {
  if (ms <= 0) {
    event_del(x->timer);
    return;
  }
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  event_add(x->timer, &tv);
}

static void h1_headers(void *ud, int status, char **lines, size_t n) {
  lt_up_xfer_t *x = ud;
  x->cbs.on_headers(x->ud, status, lines, n);
}

static bool h1_body(void *ud, const char *p, size_t n) {
  lt_up_xfer_t *x = ud;
  if (x->cbs.on_body(x->ud, p, n) == LT_UP_PAUSE) {
    x->paused = true;
    return false;
  }
  return true;
}

static const lt_h1_cbs_t h1_cbs = {h1_headers, h1_body};

/* A reused connection that the upstream had closed fails before any byte
 * of the answer: the request goes again, once, on a new connection. */
static bool retry_fresh(lt_up_xfer_t *x) {
  if (!x->reused || x->got_bytes || x->retried) return false;
  x->retried = true;
  x->reused = false;
  conn_close(x->c);
  x->c = NULL;
  x->sent = 0;
  lt_h1_init(&x->h1, x->h1.head_request);
  start_connect(x);
  return true;
}

/* Parses what is buffered; returns false once the transfer is over (x is
 * freed) or paused. */
static bool deliver(lt_up_xfer_t *x) {
  size_t used = 0;
  lt_h1_rc_t rc = lt_h1_feed(&x->h1, x->rbuf, x->rlen, &used, &h1_cbs, x);
  memmove(x->rbuf, x->rbuf + used, x->rlen - used);
  x->rlen -= used;
  if (rc == LT_H1_DONE) {
    finish(x, true, NULL);
    return false;
  }
  if (rc == LT_H1_ERROR) {
    x->rlen = 0;
    x->h1.keep_alive = false;
    finish(x, false, x->h1.error);
    return false;
  }
  if (rc == LT_H1_PAUSED) {
    event_del(x->c->rev);
    return false;
  }
  return true;
}

static bool want_write(lt_up_xfer_t *x, bool on);

/* One read from the connection: > 0 bytes, 0 at its end, -1 when nothing
 * is there yet (interest set as TLS needs), -2 on an error (errno, or
 * *tls_err for TLS). */
static ssize_t conn_read(lt_up_xfer_t *x, char *buf, size_t n, const char **tls_err) {
  conn_t *c = x->c;
  if (!c->ssl) {
    ssize_t r = recv(c->fd, buf, n, 0);
    if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
    return r;
  }
  ERR_clear_error();
  int r = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
  if (r > 0) return r;
  switch (SSL_get_error(c->ssl, r)) {
  case SSL_ERROR_WANT_READ: return -1;
  case SSL_ERROR_WANT_WRITE: want_write(x, true); return -1;
  case SSL_ERROR_ZERO_RETURN: return 0;
  case SSL_ERROR_SYSCALL:
    if (!errno) return 0; /* closed without close_notify: an end all the same */
    return -2;
  default:
    *tls_err = ERR_reason_error_string(ERR_peek_last_error());
    if (!*tls_err) *tls_err = "TLS error";
    return -2;
  }
}

/* Delivers what is buffered, then reads once and delivers that. */
static void receive(lt_up_xfer_t *x) {
  if (x->rlen && !deliver(x)) return;
  for (;;) {
    if (x->rlen == x->rcap) {
      size_t cap = x->rcap * 2 > RBUF_MAX ? RBUF_MAX : x->rcap * 2;
      char *nb = cap > x->rcap ? lt_realloc(x->rbuf, cap) : NULL;
      if (!nb) {
        x->h1.keep_alive = false;
        finish(x, false, cap > x->rcap ? "out of memory" : "upstream response headers are too large");
        return;
      }
      x->rbuf = nb;
      x->rcap = cap;
    }
    const char *tls_err = NULL;
    ssize_t n = conn_read(x, x->rbuf + x->rlen, x->rcap - x->rlen, &tls_err);
    if (n > 0) {
      /* One read per wake-up: what it brought is sent on (lt_up_loop_after)
       * before the next, so the client's backlog, and with it the pause,
       * sees every read. The socket stays readable for the next turn;
       * bytes TLS already took off it are not, so they get a turn too. */
      x->got_bytes = true;
      x->rlen += (size_t)n;
      conn_t *c = x->c;
      if (deliver(x) && c->ssl && SSL_pending(c->ssl) > 0) event_active(c->rev, EV_READ, 0);
      return;
    }
    if (n == -1) return;
    if (retry_fresh(x)) return;
    if (n == -2) {
      x->h1.keep_alive = false;
      if (tls_err) {
        char m[600];
        snprintf(m, sizeof m, "TLS with %.255s:%.7s failed: %.200s", x->host, x->port, tls_err);
        finish(x, false, m);
      } else {
        fail_errno(x, "reading from", errno);
      }
      return;
    }
    lt_h1_rc_t rc = lt_h1_eof(&x->h1);
    x->h1.keep_alive = false;
    finish(x, rc == LT_H1_DONE, rc == LT_H1_DONE ? NULL : x->h1.error);
    return;
  }
}

static void on_io(evutil_socket_t fd, short what, void *arg);

/* Readable while pooled: the upstream closed the connection (or sent
 * something unasked); either way it cannot carry a request. */
static void on_conn_event(evutil_socket_t fd, short what, void *arg) {
  conn_t *c = arg;
  if (c->x) {
    on_io(fd, what, c->x);
    return;
  }
  pool_remove(c->loop, c);
  conn_close(c);
}

/* Write interest on (connecting, a request not sent in one go) or off. */
static bool want_write(lt_up_xfer_t *x, bool on) {
  conn_t *c = x->c;
  if (!on) {
    if (c->wev) event_del(c->wev);
    return true;
  }
  if (!c->wev && !(c->wev = event_new(x->loop->base, c->fd, EV_WRITE | EV_PERSIST, on_conn_event, c))) return false;
  return event_add(c->wev, NULL) == 0;
}

static bool want_read(lt_up_xfer_t *x) {
  conn_t *c = x->c;
  if (!c->rev && !(c->rev = event_new(x->loop->base, c->fd, EV_READ | EV_PERSIST, on_conn_event, c))) return false;
  return event_add(c->rev, NULL) == 0;
}

/* Writes what is left of the request; then waits for the answer. */
static void send_more(lt_up_xfer_t *x) {
  while (x->c->ssl && x->sent < x->head_len + x->body_len) {
    const char *p = x->sent < x->head_len ? x->head + x->sent : x->body + (x->sent - x->head_len);
    size_t n = x->sent < x->head_len ? x->head_len - x->sent : x->body_len - (x->sent - x->head_len);
    ERR_clear_error();
    int w = SSL_write(x->c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
    if (w > 0) {
      x->sent += (size_t)w;
      continue;
    }
    int e = SSL_get_error(x->c->ssl, w);
    x->phase = X_SENDING;
    if (e == SSL_ERROR_WANT_WRITE) {
      if (!want_write(x, true)) finish(x, false, "out of memory");
      return;
    }
    if (e == SSL_ERROR_WANT_READ) {
      if (!want_read(x)) finish(x, false, "out of memory");
      return;
    }
    if (retry_fresh(x)) return;
    x->h1.keep_alive = false;
    fail_errno(x, "sending to", errno ? errno : EPIPE);
    return;
  }
  while (x->sent < x->head_len + x->body_len) {
    struct iovec iov[2];
    int n = 0;
    if (x->sent < x->head_len) iov[n++] = (struct iovec){x->head + x->sent, x->head_len - x->sent};
    size_t bo = x->sent > x->head_len ? x->sent - x->head_len : 0;
    if (x->body_len > bo) iov[n++] = (struct iovec){(void *)(x->body + bo), x->body_len - bo};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(x->c->fd, &m, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        x->phase = X_SENDING;
        if (!want_write(x, true)) finish(x, false, "out of memory");
        return;
      }
      if (retry_fresh(x)) return;
      x->h1.keep_alive = false;
      fail_errno(x, "sending to", errno);
      return;
    }
    x->sent += (size_t)w;
  }
  x->phase = X_RECEIVING;
  want_write(x, false);
  if (!want_read(x)) finish(x, false, "out of memory");
}

/* The TLS context for a CA file (NULL: the system's store), made once per
 * loop. */
static SSL_CTX *tls_ctx(lt_up_loop_t *l, const char *ca_file) {
  if (!ca_file && l->tls) return l->tls;
  for (size_t i = 0; ca_file && i < l->n_tls_ca; i++)
    if (!strcmp(l->tls_ca[i].path, ca_file)) return l->tls_ca[i].ctx;
  if (ca_file && l->n_tls_ca == sizeof l->tls_ca / sizeof *l->tls_ca) return NULL;
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return NULL;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  static const unsigned char alpn[] = "\x08http/1.1";
  SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
  int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) : SSL_CTX_set_default_verify_paths(ctx);
  char *path = ca_file ? lt_strdup(ca_file) : NULL;
  if (ok != 1 || (ca_file && !path)) {
    SSL_CTX_free(ctx);
    lt_free(path);
    return NULL;
  }
  if (!ca_file) return l->tls = ctx;
  l->tls_ca[l->n_tls_ca].path = path;
  l->tls_ca[l->n_tls_ca++].ctx = ctx;
  return ctx;
}

static void tls_fail(lt_up_xfer_t *x) {
  char m[600];
  long vr = SSL_get_verify_result(x->c->ssl);
  unsigned long e = ERR_peek_last_error();
  if (vr != X509_V_OK)
    snprintf(m, sizeof m, "TLS with %.255s:%.7s failed: certificate verify failed (%.200s)", x->host, x->port,
             X509_verify_cert_error_string(vr));
  else
    snprintf(m, sizeof m, "TLS with %.255s:%.7s failed: %.200s", x->host, x->port,
             e ? ERR_reason_error_string(e) : "the handshake did not complete");
  x->h1.keep_alive = false;
  finish(x, false, m);
}

static void handshake(lt_up_xfer_t *x) {
  ERR_clear_error();
  int r = SSL_do_handshake(x->c->ssl);
  if (r == 1) {
    want_write(x, false);
    x->phase = X_SENDING;
    send_more(x);
    return;
  }
  switch (SSL_get_error(x->c->ssl, r)) {
  case SSL_ERROR_WANT_READ:
    want_write(x, false);
    if (!want_read(x)) finish(x, false, "out of memory");
    return;
  case SSL_ERROR_WANT_WRITE:
    if (!want_write(x, true)) finish(x, false, "out of memory");
    return;
  default:
    tls_fail(x);
  }
}

/* TCP is up: TLS first for https, then the request. */
static void connected(lt_up_xfer_t *x) {
  arm_timer(x, x->timeout_ms);
  if (!x->tls) {
    x->phase = X_SENDING;
    send_more(x);
    return;
  }
  SSL_CTX *ctx = tls_ctx(x->loop, x->ca_file);
  SSL *ssl = ctx ? SSL_new(ctx) : NULL;
  if (!ssl) {
    char m[400];
    snprintf(m, sizeof m, "TLS set-up failed%s%.300s", x->ca_file ? ": cannot use the CA file " : "",
             x->ca_file ? x->ca_file : "");
    finish(x, false, m);
    return;
  }
  x->c->ssl = ssl;
  SSL_set_fd(ssl, x->c->fd);
  SSL_set_connect_state(ssl);
  struct in6_addr a6;
  struct in_addr a4;
  if (inet_pton(AF_INET, x->host, &a4) == 1 || inet_pton(AF_INET6, x->host, &a6) == 1) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), x->host);
  } else {
    SSL_set_tlsext_host_name(ssl, x->host);
    SSL_set1_host(ssl, x->host);
  }
  x->phase = X_HANDSHAKE;
  handshake(x);
}

static void on_io(evutil_socket_t fd, short what, void *arg) {
  lt_up_xfer_t *x = arg;
  lt_up_loop_t *l = x->loop;
  (void)fd;
  if (x->phase == X_CONNECTING) {
    int e = 0;
    socklen_t el = sizeof e;
    getsockopt(x->c->fd, SOL_SOCKET, SO_ERROR, &e, &el);
    if (e) {
      conn_close(x->c);
      x->c = NULL;
      if (x->next_addr) start_connect(x);
      else fail_errno(x, "connecting to", e);
      run_after(l);
      return;
    }
    connected(x);
  } else if (x->phase == X_HANDSHAKE) {
    handshake(x);
  } else if (x->phase == X_SENDING) {
    send_more(x);
  } else {
    if (what & EV_WRITE) want_write(x, false); /* TLS wanted to write while reading */
    receive(x);
  }
  run_after(l);
}

/* Connects to the next address (x->next_addr). */
static void start_connect(lt_up_xfer_t *x) {
  for (; x->next_addr; x->next_addr = x->next_addr->ai_next) {
    struct evutil_addrinfo *a = x->next_addr;
    evutil_socket_t fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    if (!(x->c = lt_calloc(1, sizeof *x->c))) {
      evutil_closesocket(fd);
      finish(x, false, "out of memory");
      return;
    }
    x->c->fd = fd;
    x->c->loop = x->loop;
    x->c->x = x;
    snprintf(x->c->key, sizeof x->c->key, "%s", x->pkey);
    x->next_addr = a->ai_next;
    x->phase = X_CONNECTING;
    arm_timer(x, x->connect_timeout_ms);
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      connected(x);
      return;
    }
    if (errno == EINPROGRESS) {
      if (!want_write(x, true)) finish(x, false, "out of memory");
      return;
    }
    int e = errno;
    conn_close(x->c);
    x->c = NULL;
    if (!x->next_addr) {
      fail_errno(x, "connecting to", e);
      return;
    }
  }
  finish(x, false, "no address to connect to");
}

static void on_resolved(int err, struct evutil_addrinfo *res, void *arg) {
  lt_up_xfer_t *x = arg;
  if (err == EVUTIL_EAI_CANCEL) return; /* the transfer is gone */
  lt_up_loop_t *l = x->loop;
  x->dns_req = NULL;
  if (err) {
    char m[600];
    snprintf(m, sizeof m, "could not resolve %.255s: %.200s", x->host, evutil_gai_strerror(err));
    finish(x, false, m);
  } else {
    x->addrs = x->next_addr = res;
    start_connect(x);
  }
  run_after(l);
}

/* A failure found while starting: on_done may not run before lt_up_start
 * returns, so it runs on the next loop turn. */
static void on_deliver(evutil_socket_t fd, short what, void *arg) {
  lt_up_loop_t *l = arg;
  (void)fd;
  (void)what;
  while (l->failed) {
    lt_up_xfer_t *x = l->failed;
    l->failed = x->next_failed;
    x->failing = false; /* off the list: finish frees it */
    finish(x, false, x->err);
  }
  run_after(l);
}

static void fail_later(lt_up_xfer_t *x, const char *msg) {
  if (x->failing) return;
  x->failing = true;
  snprintf(x->err, sizeof x->err, "%s", msg);
  if (x->c) {
    if (x->c->rev) event_del(x->c->rev);
    if (x->c->wev) event_del(x->c->wev);
  }
  event_del(x->timer);
  x->next_failed = x->loop->failed;
  x->loop->failed = x;
  event_active(x->loop->deliver, EV_TIMEOUT, 0);
}

int lt_up_start(lt_up_loop_t *l, const lt_up_req_t *req, const lt_up_cbs_t *cbs, void *ud, lt_up_xfer_t **out) {
  const char *u = req->url;
  bool tls = !strncmp(u, "https://", 8);
  if (!tls && strncmp(u, "http://", 7)) return LT_EINVAL;
  const char *hp = u + (tls ? 8 : 7), *path = hp + strcspn(hp, "/?");
  size_t hl = (size_t)(path - hp);
  if (hl == 0 || hl >= 256) return LT_EINVAL;
  lt_up_xfer_t *x = lt_calloc(1, sizeof *x);
  if (!x) return LT_ENOMEM;
  x->loop = l;
  x->cbs = *cbs;
  x->ud = ud;
  x->body = req->body;
  x->body_len = req->body_len;
  x->connect_timeout_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 10000;
  x->timeout_ms = req->timeout_ms;
  x->tls = tls;
  x->ca_file = req->ca_file;
  memcpy(x->key, hp, hl);
  x->key[hl] = '\0';
  /* host, [v6], port */
  const char *hs = x->key, *he, *ps = NULL;
  if (*hs == '[') {
    he = strchr(hs, ']');
    if (!he) {
      lt_free(x);
      return LT_EINVAL;
    }
    hs++;
    if (he[1] == ':') ps = he + 2;
  } else {
    he = strchr(hs, ':');
    if (he) ps = he + 1;
    else he = hs + strlen(hs);
  }
  snprintf(x->host, sizeof x->host, "%.*s", (int)(he - hs), hs);
  snprintf(x->port, sizeof x->port, "%s", ps && *ps ? ps : tls ? "443" : "80");
  lt_h1_init(&x->h1, !strcmp(req->method, "HEAD"));
  /* The request head: line, Host, the caller's lines, the body's length. */
  size_t cap = strlen(req->method) + strlen(path) + hl + 64;
  for (size_t i = 0; i < req->n_headers; i++) cap += strlen(req->headers[i]) + 2;
  x->head = lt_malloc(cap);
  x->rcap = RBUF_START;
  x->rbuf = lt_malloc(x->rcap);
  x->timer = evtimer_new(l->base, on_timer, x);
  if (!x->head || !x->rbuf || !x->timer) {
    x->prev = NULL;
    x->next = l->xfers;
    if (l->xfers) l->xfers->prev = x;
    l->xfers = x;
    xfer_free(x);
    return LT_ENOMEM;
  }
  size_t n = (size_t)snprintf(x->head, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n", req->method, *path ? path : "/", x->key);
  if (*path == '?') { /* "host?q": the path is "/" */
    n = (size_t)snprintf(x->head, cap, "%s /%s HTTP/1.1\r\nHost: %s\r\n", req->method, path, x->key);
  }
  for (size_t i = 0; i < req->n_headers; i++) n += (size_t)snprintf(x->head + n, cap - n, "%s\r\n", req->headers[i]);
  bool has_body = req->body_len || !strcmp(req->method, "POST") || !strcmp(req->method, "PUT") ||
                  !strcmp(req->method, "PATCH");
  if (has_body) n += (size_t)snprintf(x->head + n, cap - n, "Content-Length: %zu\r\n", req->body_len);
  n += (size_t)snprintf(x->head + n, cap - n, "\r\n");
  x->head_len = n;
  x->next = l->xfers;
  if (l->xfers) l->xfers->prev = x;
  l->xfers = x;
  *out = x;
  snprintf(x->pkey, sizeof x->pkey, "%s://%.255s|%.500s", tls ? "https" : "http", x->key,
           x->ca_file ? x->ca_file : "");
  if ((x->c = pool_take(l, x->pkey))) {
    x->c->x = x;
    x->reused = true;
    arm_timer(x, x->timeout_ms);
    x->phase = X_SENDING;
    l->starting = true;
    send_more(x);
    l->starting = false;
    return 0;
  }
  x->phase = X_RESOLVING;
  arm_timer(x, x->connect_timeout_ms);
  l->starting = true;
  struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
  struct evdns_getaddrinfo_request *r = evdns_getaddrinfo(l->dns, x->host, x->port, &hints, on_resolved, x);
  /* A numeric host or one from /etc/hosts is answered at once: the
   * callback ran already and may have connected. */
  l->starting = false;
  if (r) x->dns_req = r;
  return 0;
}

void lt_up_pause(lt_up_xfer_t *x, bool pause) {
  if (pause == x->paused) return;
  x->paused = pause;
  if (x->phase != X_RECEIVING) return;
  if (pause) {
    event_del(x->c->rev);
    return;
  }
  event_add(x->c->rev, NULL);
  lt_up_loop_t *l = x->loop;
  receive(x);
  run_after(l);
}

void lt_up_abort(lt_up_xfer_t *x) { xfer_free(x); }
