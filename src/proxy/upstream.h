/* Outbound HTTP(S) transfers to LLM upstreams on an HTTP loop's own event
 * base (HTTP/1.1 of our own, src/proxy/http1.c; TLS by OpenSSL), so no
 * thread ever blocks on an upstream and connections to an upstream are
 * reused across requests of that loop. See docs/proxy.md, "Upstream
 * client". Everything here runs on the owning loop's thread. */
#ifndef LT_UPSTREAM_H
#define LT_UPSTREAM_H
#include <stdbool.h>
#include <stddef.h>

typedef struct lt_up_loop lt_up_loop_t;
typedef struct lt_up_xfer lt_up_xfer_t;

/* Returned by on_body to stop reading until lt_up_pause(x, false). The
 * chunk was not consumed and will be delivered again. */
#define LT_UP_PAUSE ((size_t)-1)

typedef struct {
  /* The final response's status and header lines ("Name: value", without
   * line ends; the status line is not among them). */
  void (*on_headers)(void *ud, int status, char **lines, size_t n);
  /* A piece of the body: return n, or LT_UP_PAUSE. */
  size_t (*on_body)(void *ud, const char *p, size_t n);
  /* The end: ok, or err names what failed (connect, TLS, timeout...).
   * The transfer is freed after this returns. */
  void (*on_done)(void *ud, bool ok, const char *err);
} lt_up_cbs_t;

typedef struct {
  const char *url;
  const char *method;         /* "POST", "GET" ... */
  char **headers;             /* "Name: value" lines, n_headers of them */
  size_t n_headers;
  const char *body;           /* must stay valid until on_done or abort */
  size_t body_len;
  long connect_timeout_ms;
  long timeout_ms;            /* whole transfer; 0 = none */
  const char *ca_file;        /* NULL: the system's CA store */
} lt_up_req_t;

/* Process-wide set-up, once, before any thread starts. */
int lt_up_global_init(void);
void lt_up_global_free(void);

lt_up_loop_t *lt_up_loop_new(void *event_base);
/* Aborts every transfer still running (their on_done is not called) and
 * frees the loop state. Before the event base is freed. */
void lt_up_loop_free(lt_up_loop_t *l);

/* Starts a transfer: the request is sent at once, so on_headers and
 * on_body may run before this returns (with *out already set); on_done
 * never does. Returns 0 and the transfer, or LT_ENOMEM / LT_EINVAL (then
 * no callback is ever called). */
int lt_up_start(lt_up_loop_t *l, const lt_up_req_t *req, const lt_up_cbs_t *cbs, void *ud, lt_up_xfer_t **out);
/* fn(ud) runs after each event the client handled (a socket event, a
 * timer, a resume), after every callback it brought: what one read
 * delivered in many on_body calls can go on as one piece. */
void lt_up_loop_after(lt_up_loop_t *l, void (*fn)(void *ud), void *ud);
/* Pauses or resumes reading the response body. */
void lt_up_pause(lt_up_xfer_t *x, bool pause);
/* Stops a transfer now; on_done is not called; x is freed. */
void lt_up_abort(lt_up_xfer_t *x);

#endif
