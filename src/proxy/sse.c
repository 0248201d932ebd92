/* Server-sent-events scanning (sse.h). The pending buffer holds the bytes
 * of the event being received; `scan` remembers how far line ends were
 * looked for, so bytes arriving one at a time cost O(n), not O(n²). */
#include "proxy/sse.h"
#include <string.h>
#include "core/err.h"

void lt_sse_init(lt_sse_t *s, size_t max_event) {
  memset(s, 0, sizeof *s);
  s->cap = max_event;
  lt_buf_init(&s->pending, max_event + 1);
  lt_buf_init(&s->data, max_event + 1);
}

void lt_sse_free(lt_sse_t *s) {
  lt_buf_free(&s->pending);
  lt_buf_free(&s->data);
}

/* Length of the line end at p[i] (1 or 2), 0 when p[i] ends no line, -1
 * when it is a '\r' at the very end (a '\n' may follow in the next chunk). */
static int eol(const char *p, size_t i, size_t n, bool final) {
  if (p[i] == '\n') return 1;
  if (p[i] != '\r') return 0;
  if (i + 1 < n) return p[i + 1] == '\n' ? 2 : 1;
  return final ? 1 : -1;
}

/* Parses the lines of one event into ev (name, data). */
static int parse(lt_sse_t *s, const char *p, size_t n, lt_sse_event_t *ev) {
  lt_buf_reset(&s->data);
  ev->name = LT_STR_NULL;
  bool any_data = false;
  size_t i = 0;
  while (i < n) {
    size_t start = i;
    int t = 0;
    while (i < n && (t = eol(p, i, n, true)) == 0) i++;
    size_t end = i;
    i += t > 0 ? (size_t)t : 1;
    if (end == start) continue;
    const char *line = p + start;
    size_t len = end - start;
    if (line[0] == ':') continue; /* a comment */
    const char *colon = memchr(line, ':', len);
    size_t flen = colon ? (size_t)(colon - line) : len;
    const char *val = colon ? colon + 1 : line + len;
    size_t vlen = colon ? len - flen - 1 : 0;
    if (vlen && *val == ' ') {
      val++;
      vlen--;
    }
    if (flen == 4 && !memcmp(line, "data", 4)) {
      int rc = 0;
      if (any_data) rc = lt_buf_append(&s->data, "\n", 1);
      if (rc == 0 && vlen) rc = lt_buf_append(&s->data, val, vlen);
      if (rc) return rc;
      any_data = true;
    } else if (flen == 5 && !memcmp(line, "event", 5)) {
      ev->name = (lt_str_t){val, vlen};
    }
  }
  ev->data = (lt_str_t){s->data.ptr ? s->data.ptr : "", s->data.len};
  ev->ok = true;
  return 0;
}

static int emit_raw(const char *p, size_t n, lt_sse_fn fn, void *ud) {
  if (!n) return 0;
  lt_sse_event_t ev = {.raw = {p, n}, .ok = false};
  return fn(ud, &ev);
}

/* Dispatches every complete event in pending. */
static int scan(lt_sse_t *s, lt_sse_fn fn, void *ud, bool final) {
  size_t i = s->scan_pos, line_start = s->line_start;
  while (i < s->pending.len) {
    const char *p = s->pending.ptr;
    int t = eol(p, i, s->pending.len, final);
    if (t < 0) break; /* wait for the byte after this '\r' */
    if (t == 0) {
      i++;
      continue;
    }
    size_t end = i + (size_t)t;
    if (i == line_start) { /* an empty line: the event is complete */
      lt_sse_event_t ev;
      int rc = parse(s, p, end, &ev);
      if (rc) return rc;
      ev.raw = (lt_str_t){p, end};
      rc = fn(ud, &ev);
      /* Drop the event's bytes and rescan what follows from its start. */
      memmove(s->pending.ptr, s->pending.ptr + end, s->pending.len - end);
      s->pending.len -= end;
      i = line_start = 0;
      if (rc) {
        s->scan_pos = s->line_start = 0;
        return rc;
      }
      continue;
    }
    line_start = i = end;
  }
  s->scan_pos = i;
  s->line_start = line_start;
  return 0;
}

int lt_sse_feed(lt_sse_t *s, const char *p, size_t n, lt_sse_fn fn, void *ud) {
  if (s->passthrough) return emit_raw(p, n, fn, ud);
  if (s->pending.len + n > s->cap) {
    /* Too big to hold: hand over what we have and stop parsing. */
    s->passthrough = true;
    int rc = emit_raw(s->pending.ptr, s->pending.len, fn, ud);
    lt_buf_reset(&s->pending);
    return rc ? rc : emit_raw(p, n, fn, ud);
  }
  int rc = lt_buf_append(&s->pending, p, n);
  return rc ? rc : scan(s, fn, ud, false);
}

int lt_sse_finish(lt_sse_t *s, lt_sse_fn fn, void *ud) {
  if (s->passthrough || !s->pending.len) return 0;
  int rc = scan(s, fn, ud, true);
  if (rc || !s->pending.len) return rc;
  /* A last event without its blank line. */
  lt_sse_event_t ev;
  if ((rc = parse(s, s->pending.ptr, s->pending.len, &ev))) return rc;
  ev.raw = (lt_str_t){s->pending.ptr, s->pending.len};
  rc = fn(ud, &ev);
  lt_buf_reset(&s->pending);
  s->scan_pos = s->line_start = 0;
  return rc;
}
