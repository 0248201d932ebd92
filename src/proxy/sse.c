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

void lt_sse_reset(lt_sse_t *s, size_t keep) {
  if (s->pending.alloc > keep) lt_buf_free(&s->pending);
  if (s->data.alloc > keep) lt_buf_free(&s->data);
  lt_buf_reset(&s->pending);
  lt_buf_reset(&s->data);
  s->scan_pos = s->line_start = 0;
  s->passthrough = false;
}

/* Length of the line end at p[i] (1 or 2), 0 when p[i] ends no line, -1
 * when it is a '\r' at the very end (a '\n' may follow in the next chunk). */
static int eol(const char *p, size_t i, size_t n, bool final) {
  if (p[i] == '\n') return 1;
  if (p[i] != '\r') return 0;
  if (i + 1 < n) return p[i + 1] == '\n' ? 2 : 1;
  return final ? 1 : -1;
}

/* The next '\n' or '\r' at or after i, or n. */
static size_t next_eol(const char *p, size_t i, size_t n) {
  const char *nl = memchr(p + i, '\n', n - i);
  size_t e = nl ? (size_t)(nl - p) : n;
  const char *cr = e > i ? memchr(p + i, '\r', e - i) : NULL;
  return cr ? (size_t)(cr - p) : e;
}

/* Parses the lines of one event into ev (name, data). A single data line
 * (the usual event) is pointed at in place; several are joined in s->data. */
static int parse(lt_sse_t *s, const char *p, size_t n, lt_sse_event_t *ev) {
  ev->name = LT_STR_NULL;
  ev->data = LT_STR("");
  size_t n_data = 0;
  size_t i = 0;
  while (i < n) {
    size_t start = i, end = i = next_eol(p, i, n);
    if (i < n) i += (size_t)eol(p, i, n, true);
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
      if (n_data == 1) { /* a second line: join from here on */
        lt_buf_reset(&s->data);
        rc = lt_buf_append(&s->data, ev->data.ptr, ev->data.len);
      }
      if (n_data >= 1 && rc == 0) rc = lt_buf_append(&s->data, "\n", 1);
      if (n_data >= 1 && rc == 0 && vlen) rc = lt_buf_append(&s->data, val, vlen);
      if (rc) return rc;
      if (n_data == 0) ev->data = (lt_str_t){val, vlen};
      n_data++;
    } else if (flen == 5 && !memcmp(line, "event", 5)) {
      ev->name = (lt_str_t){val, vlen};
    }
  }
  if (n_data > 1) ev->data = (lt_str_t){s->data.ptr ? s->data.ptr : "", s->data.len};
  ev->ok = true;
  return 0;
}

static int emit_raw(const char *p, size_t n, lt_sse_fn fn, void *ud) {
  if (!n) return 0;
  lt_sse_event_t ev = {.raw = {p, n}, .ok = false};
  return fn(ud, &ev);
}

/* Dispatches every complete event in pending, then drops their bytes (in
 * one move, not one per event). */
static int scan(lt_sse_t *s, lt_sse_fn fn, void *ud, bool final) {
  const char *p = s->pending.ptr;
  size_t n = s->pending.len, i = s->scan_pos, line_start = s->line_start, start = 0;
  int rc = 0;
  while (i < n) {
    size_t e = next_eol(p, i, n);
    if (e == n) {
      i = n;
      break;
    }
    int t = eol(p, e, n, final);
    if (t < 0) { /* wait for the byte after this '\r' */
      i = e;
      break;
    }
    size_t end = e + (size_t)t;
    if (e == line_start) { /* an empty line: the event is complete */
      lt_sse_event_t ev;
      if ((rc = parse(s, p + start, end - start, &ev))) break;
      ev.raw = (lt_str_t){p + start, end - start};
      start = line_start = i = end;
      if ((rc = fn(ud, &ev))) break;
      continue;
    }
    line_start = i = end;
  }
  if (start) {
    memmove(s->pending.ptr, s->pending.ptr + start, n - start);
    s->pending.len -= start;
    i -= start;
    line_start -= start;
  }
  s->scan_pos = i;
  s->line_start = line_start;
  return rc;
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
