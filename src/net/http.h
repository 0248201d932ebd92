/* The HTTP edge, on libevent's evhttp. N loop threads (one per core by
 * default) each run an event base and an evhttp instance on their own
 * SO_REUSEPORT socket bound to the same address, so the kernel spreads
 * connections across cores and no lock sits between them.
 *
 * A request is routed through a table of lt_route_t; the handler runs on
 * the loop thread and must not block. It either replies at once, or calls
 * lt_req_defer() and later — from any thread — lt_req_post() a function
 * that runs back on the loop thread and replies. Exactly one reply per
 * request; a reply to a request whose client has gone is a silent no-op.
 * lt_req_t objects are owned by the server and freed after their reply. */
#ifndef LT_HTTP_H
#define LT_HTTP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/slice.h"

typedef struct lt_server lt_server_t;
typedef struct lt_req lt_req_t;

enum {
  LT_GET = 1 << 0,
  LT_POST = 1 << 1,
  LT_PUT = 1 << 2,
  LT_DELETE = 1 << 3,
  LT_HEAD = 1 << 4,
  LT_OPTIONS = 1 << 5,
  LT_PATCH = 1 << 6
};

typedef void (*lt_handler_fn)(lt_req_t *req, void *ud);
typedef void (*lt_post_fn)(lt_req_t *req, void *arg);

typedef struct {
  int methods;          /* LT_GET | LT_POST ... */
  const char *path;     /* exact path, or a prefix when prefix is true */
  bool prefix;
  bool auth;            /* resolve the caller's project before the handler */
  lt_handler_fn fn;
  void *ud;
} lt_route_t;

/* How a request was authenticated: no credentials (a loopback listener's
 * default project), a project API key, or a browser session (an admin
 * user's login, which is a key of its own: docs/api.md, Authentication). */
typedef enum { LT_VIA_ANONYMOUS = 0, LT_VIA_KEY = 1, LT_VIA_SESSION = 2 } lt_auth_via_t;

typedef struct {
  int64_t project_id;
  int64_t user_id;       /* sessions: the logged-in user; else 0 */
  lt_auth_via_t via;
  char public_key[64];   /* the key's public id ("" when anonymous) */
} lt_auth_result_t;

/* Resolves credentials. authz is the Authorization header or NULL. Returns
 * 0 and fills *out, or LT_EAUTH. Called on loop threads: must not block. */
typedef int (*lt_auth_fn)(void *ud, const char *authz, lt_auth_result_t *out);

/* Browser sessions: when a route needs auth and the request has no
 * Authorization header, the secret in the LT_SESSION_COOKIE cookie is used
 * as if sent as "Bearer <secret>". A request authenticated that way whose
 * method is not GET, HEAD or OPTIONS must carry LT_CSRF_HEADER equal to
 * the LT_CSRF_COOKIE cookie (double submit), or it is refused with 403
 * {"error":{"code":"csrf",...}}. */
#define LT_SESSION_COOKIE "lt_session"
#define LT_CSRF_COOKIE "lt_csrf"
#define LT_CSRF_HEADER "X-CSRF-Token"

typedef struct {
  const char *host;            /* listen address */
  int port;
  int threads;                 /* loop threads, >= 1 */
  size_t max_header_bytes;
  size_t max_body_bytes;       /* on the wire; the decompressed cap is the receiver's */
  int max_connections;         /* per server; over it new connections get 503 and close */
  int idle_timeout_s;
  const lt_route_t *routes;    /* terminated by an entry with path NULL */
  lt_auth_fn auth;
  void *auth_ud;
  /* Called for each loop's slot value (lt_req_loop_slot) after the loop
   * stopped and before its event base is freed, so per-loop state with
   * events on that base (the proxy's transfers) can be torn down. */
  void (*loop_exit)(void *slot);
} lt_http_config_t;

/* Binds and starts the loop threads. Returns 0, or LT_EIO after logging
 * why (address in use, bad address...). */
int lt_http_start(const lt_http_config_t *cfg, lt_server_t **out);
/* Stops accepting new connections; requests already received still run. */
void lt_http_stop_accepting(lt_server_t *s);
/* Number of deferred requests still waiting for their reply. */
long lt_http_pending(lt_server_t *s);
/* Ends the loops, joins the threads and frees s. */
void lt_http_free(lt_server_t *s);
/* The port actually bound (useful with port 0). */
int lt_http_port(lt_server_t *s);

/* Request accessors. Strings returned stay valid until the reply. */
int lt_req_method(lt_req_t *r);
lt_str_t lt_req_path(lt_req_t *r);              /* without the query */
const char *lt_req_query(lt_req_t *r, const char *name); /* decoded, or NULL */
const char *lt_req_header(lt_req_t *r, const char *name);
lt_str_t lt_req_body(lt_req_t *r);              /* raw bytes as received */
/* Moves the body out of the request (no copy) so another thread may read
 * it after the handler returned, even if the client goes away; *out then
 * points at it until lt_req_body_free(owner), callable from any thread.
 * NULL (the request untouched) when memory runs out. */
void *lt_req_take_body(lt_req_t *r, lt_str_t *out);
void lt_req_body_free(void *owner);
const char *lt_req_raw_query(lt_req_t *r);      /* as sent (not decoded), or NULL */
/* Calls fn for every request header, in order; stops when fn returns
 * non-zero. */
void lt_req_each_header(lt_req_t *r, int (*fn)(void *ud, const char *name, const char *value), void *ud);
int64_t lt_req_project(lt_req_t *r);
/* True when the request carried credentials (an Authorization header or a
 * session cookie), valid or not. */
bool lt_req_has_credentials(lt_req_t *r);
/* How the request was authenticated, the session's user (0 otherwise) and
 * the key's public id ("" when anonymous); whether the credentials came
 * from the session cookie. */
lt_auth_via_t lt_req_auth_via(lt_req_t *r);
int64_t lt_req_user(lt_req_t *r);
const char *lt_req_public_key(lt_req_t *r);
bool lt_req_via_cookie(lt_req_t *r);
/* Copies cookie name's value into out (NUL-terminated); false when the
 * request has no such cookie or the value does not fit. */
bool lt_req_cookie(lt_req_t *r, const char *name, char *out, size_t cap);
/* For routes registered without auth that still want to know the caller
 * (login state, logout): resolves the credentials as an auth route would,
 * without replying. Returns 0 when they are valid (or absent and the
 * server allows anonymous requests); LT_EAUTH when they are not, leaving
 * the request anonymous (in the anonymous project when a stale session
 * cookie was all it had and the server allows anonymous requests, else
 * project 0); LT_EFORBIDDEN when the session cookie is valid but the CSRF
 * header is missing or wrong. */
int lt_req_try_auth(lt_req_t *r);
void lt_req_set_header(lt_req_t *r, const char *name, const char *value);

/* Replies (on the loop thread). body may be NULL for an empty body. */
void lt_reply(lt_req_t *r, int status, const char *content_type, const void *body, size_t len);
void lt_reply_json(lt_req_t *r, int status, const lt_buf_t *json);
/* {"error":{"code":code,"message":message}} */
void lt_reply_error(lt_req_t *r, int status, const char *code, const char *message);

/* Streaming replies, for deferred requests, on the loop thread: start
 * (status plus the headers set so far; chunked encoding), any number of
 * chunks, then end — which completes the reply like lt_reply does. chunk
 * returns the bytes still waiting to be written to the client after
 * queueing this one (0 once the client is gone): the caller's signal to
 * stop reading from its source until the drain callback says the queue
 * has been written out. */
void lt_reply_start(lt_req_t *r, int status);
size_t lt_reply_chunk(lt_req_t *r, const void *p, size_t n);
void lt_reply_end(lt_req_t *r);
/* Bytes waiting to be written to the client (0 once it is gone). */
size_t lt_reply_queued(lt_req_t *r);
void lt_req_on_drain(lt_req_t *r, void (*fn)(void *arg), void *arg);
/* fn(arg) runs once, on the loop thread, if the client's connection closes
 * before the reply ended; the request must still be ended (lt_reply_end,
 * a no-op on the wire by then) to be freed. */
void lt_req_on_close(lt_req_t *r, void (*fn)(void *arg), void *arg);
/* True once the client's connection is gone. */
bool lt_req_gone(lt_req_t *r);
/* The loop's libevent event base (struct event_base *), and one pointer
 * of per-loop state for the caller (see loop_exit). */
void *lt_req_event_base(lt_req_t *r);
void **lt_req_loop_slot(lt_req_t *r);
/* The client's address, for logs ("127.0.0.1"). */
const char *lt_req_peer(lt_req_t *r);

/* Deferral. After lt_req_defer the handler returns without replying;
 * lt_req_post (callable from any thread, never blocks) runs fn(r, arg) on
 * r's loop thread, where fn must reply. */
void lt_req_defer(lt_req_t *r);
void lt_req_post(lt_req_t *r, lt_post_fn fn, void *arg);

/* Called by evread.c when a connection opens with HTTP/2's preface (an
 * OTLP/gRPC exporter on the OTLP/HTTP port): logs what to change, at most
 * once a minute. */
void lt__http_h2_preface_seen(void);

#endif
