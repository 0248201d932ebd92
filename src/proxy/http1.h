/* An incremental HTTP/1.1 response parser for the upstream client
 * (RFC 9112): status line, header lines, then the body framed by the
 * request method and status (no body for HEAD, 1xx, 204, 304), by
 * Transfer-Encoding: chunked, by Content-Length, or by the connection's
 * close. Interim 1xx responses are skipped. Body bytes are handed over in
 * place (pointers into the caller's buffer), de-chunked; a consumer may
 * refuse a piece, and the same bytes are offered again on the next feed.
 * No allocation. */
#ifndef LT_HTTP1_H
#define LT_HTTP1_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Header lines kept per response (more are parsed and dropped) and bytes
 * in a header block at most. */
#define LT_H1_MAX_LINES 128
#define LT_H1_MAX_HEADER_BYTES (256u << 10)

typedef enum {
  LT_H1_MORE = 0,  /* every byte fed was used; feed more */
  LT_H1_DONE,      /* the response ended; *used says where */
  LT_H1_PAUSED,    /* on_body refused a piece: feed from *used again later */
  LT_H1_ERROR,     /* malformed or over a limit: the connection is unusable */
} lt_h1_rc_t;

typedef struct {
  /* The final response's status and header lines ("Name: value", NUL
   * terminated in place; the status line is not among them). The lines
   * live in the fed buffer and are valid during the call only. */
  void (*on_headers)(void *ud, int status, char **lines, size_t n);
  /* A piece of the body; false keeps it for the next feed. */
  bool (*on_body)(void *ud, const char *p, size_t n);
} lt_h1_cbs_t;

typedef struct {
  int state;
  bool head_request;  /* the request was HEAD: no body whatever the headers say */
  bool keep_alive;    /* after DONE: the connection may carry another request */
  bool close_framed;  /* the body ends when the connection closes */
  int status;
  uint64_t left;      /* bytes left in the body or the current chunk */
  size_t scanned;     /* header bytes already searched for their end */
  const char *error;  /* after LT_H1_ERROR: what was wrong */
} lt_h1_t;

void lt_h1_init(lt_h1_t *p, bool head_request);

/* Parses buf[0..len). The header block must be fed whole once it is
 * complete: the parser looks for its end in what it is given and, until it
 * sees it, uses nothing (*used = 0 and LT_H1_MORE; the caller keeps the
 * bytes and feeds them again with more after them). Header lines are
 * terminated in place, so buf is written to. */
lt_h1_rc_t lt_h1_feed(lt_h1_t *p, char *buf, size_t len, size_t *used, const lt_h1_cbs_t *cbs, void *ud);

/* The connection closed: DONE for a close-framed body, else ERROR (the
 * response was cut short). */
lt_h1_rc_t lt_h1_eof(lt_h1_t *p);

#endif
