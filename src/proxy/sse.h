/* An incremental server-sent-events scanner. Bytes go in as they arrive
 * from the upstream; each complete event comes out with its raw bytes (to
 * forward exactly as received), its event name and its data (data lines
 * joined with '\n'). Line ends may be \n, \r\n or \r, split anywhere
 * across chunks. An event larger than the cap switches the scanner to
 * pass-through: its bytes come out raw, unparsed (`ok` false). */
#ifndef LT_SSE_H
#define LT_SSE_H
#include <stdbool.h>
#include <stddef.h>
#include "core/buf.h"
#include "core/slice.h"

typedef struct {
  lt_str_t raw;   /* the event's bytes, blank line included */
  lt_str_t name;  /* "event:" value, or empty */
  lt_str_t data;  /* joined "data:" values */
  bool ok;        /* parsed; false: raw bytes passed through */
} lt_sse_event_t;

/* Return 0 to go on, anything else to stop (lt_sse_feed returns it). */
typedef int (*lt_sse_fn)(void *ud, const lt_sse_event_t *ev);

typedef struct {
  lt_buf_t pending;   /* bytes of the event being received */
  lt_buf_t data;      /* scratch for the joined data */
  size_t cap;
  size_t scan_pos, line_start; /* scanning state within pending */
  bool passthrough;
} lt_sse_t;

void lt_sse_init(lt_sse_t *s, size_t max_event);
void lt_sse_free(lt_sse_t *s);
/* Ready for a new stream, keeping the buffers' memory unless one grew
 * past keep bytes (a scanner reused call after call). */
void lt_sse_reset(lt_sse_t *s, size_t keep);
/* Feeds n bytes; calls fn for every event they complete. Returns 0, fn's
 * non-zero value, or LT_ENOMEM. */
int lt_sse_feed(lt_sse_t *s, const char *p, size_t n, lt_sse_fn fn, void *ud);
/* End of stream: an unfinished event (no blank line) is delivered as is,
 * parsed if possible. */
int lt_sse_finish(lt_sse_t *s, lt_sse_fn fn, void *ud);

#endif
