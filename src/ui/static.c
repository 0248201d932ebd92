/* Serves the embedded web UI (see static.h for the rules). Everything is
 * in static memory, so a reply is a table lookup and one copy. */
#include "ui/static.h"
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Paths that belong to APIs, present or future: never answered with HTML. */
static const char *const api_prefixes[] = {"/api/", "/v1/", "/proxy/", "/assets/", NULL};

/* The page may only talk to its own origin and load its own files. */
#define UI_CSP                                                                                     \
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; " \
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

static bool has_prefix(lt_str_t s, const char *p) {
  size_t n = strlen(p);
  return s.len >= n && memcmp(s.ptr, p, n) == 0;
}

static bool eq(lt_str_t s, const char *p) {
  return s.len == strlen(p) && memcmp(s.ptr, p, s.len) == 0;
}

static const lt_ui_asset_t *find(lt_str_t path) {
  if (eq(path, "/")) path = (lt_str_t){"/index.html", 11};
  for (const lt_ui_asset_t *a = lt_ui_assets; a->path; a++)
    if (eq(path, a->path)) return a;
  return NULL;
}

/* Methods the other routes accept for this path (the matching rule of
 * net/http.c: exact, or prefix when the route says so). */
static int other_methods(const lt_route_t *routes, lt_str_t path) {
  int m = 0;
  for (const lt_route_t *rt = routes; rt && rt->path; rt++) {
    if (rt->fn == lt_ui_handle) continue;
    size_t n = strlen(rt->path);
    if (rt->prefix ? has_prefix(path, rt->path) : (path.len == n && memcmp(path.ptr, rt->path, n) == 0)) m |= rt->methods;
  }
  return m;
}

static void allow_header(lt_req_t *r, int methods) {
  static const char *names[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};
  char allow[96] = "";
  for (int i = 0; i < 7; i++)
    if (methods & (1 << i)) {
      if (*allow) strcat(allow, ", ");
      strcat(allow, names[i]);
    }
  lt_req_set_header(r, "Allow", allow);
}

/* True when a comma-separated header lists token with a non-zero q. */
static bool header_accepts(const char *h, const char *token) {
  size_t tn = strlen(token);
  while (h && *h) {
    while (*h == ' ' || *h == '\t' || *h == ',') h++;
    const char *end = strchr(h, ',');
    size_t n = end ? (size_t)(end - h) : strlen(h);
    const char *semi = memchr(h, ';', n);
    size_t name = semi ? (size_t)(semi - h) : n;
    while (name && (h[name - 1] == ' ' || h[name - 1] == '\t')) name--;
    if (name == tn && strncasecmp(h, token, tn) == 0) {
      const char *q = semi ? strstr(semi, "q=") : NULL;
      if (!q || q >= h + n) return true;
      double v = 1;
      if (sscanf(q + 2, "%lf", &v) != 1) return true;
      return v > 0;
    }
    h = end;
  }
  return false;
}

static const char *content_type(const char *path) {
  const char *dot = strrchr(path, '.');
  static const struct { const char *ext, *type; } types[] = {
    {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},   {".json", "application/json"},
    {".svg", "image/svg+xml"},             {".png", "image/png"},
    {".ico", "image/x-icon"},              {".map", "application/json"},
    {".woff2", "font/woff2"},              {".txt", "text/plain; charset=utf-8"},
  };
  for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
    if (!strcmp(dot, types[i].ext)) return types[i].type;
  return "application/octet-stream";
}

static void serve(lt_req_t *r, const lt_ui_asset_t *a) {
  bool html = !strcmp(a->path, "/index.html");
  const char *enc = lt_req_header(r, "Accept-Encoding");
  bool gz = a->gz && enc && header_accepts(enc, "gzip");
  const void *body = gz ? a->gz : a->body;
  size_t len = gz ? a->gz_len : a->len;
  /* Hashed names change with their content; index.html names them. */
  lt_req_set_header(r, "Cache-Control", has_prefix((lt_str_t){a->path, strlen(a->path)}, "/assets/")
                                            ? "public, max-age=31536000, immutable"
                                            : "no-cache");
  if (a->gz) lt_req_set_header(r, "Vary", "Accept-Encoding");
  if (gz) lt_req_set_header(r, "Content-Encoding", "gzip");
  lt_req_set_header(r, "X-Content-Type-Options", "nosniff");
  if (html) {
    lt_req_set_header(r, "Content-Security-Policy", UI_CSP);
    lt_req_set_header(r, "Referrer-Policy", "same-origin");
  }
  if (lt_req_method(r) == LT_HEAD) {
    /* The headers of the GET, without the body. */
    char n[32];
    snprintf(n, sizeof n, "%zu", len);
    lt_req_set_header(r, "Content-Length", n);
    lt_reply(r, 200, content_type(a->path), NULL, 0);
    return;
  }
  lt_reply(r, 200, content_type(a->path), body, len);
}

void lt_ui_handle(lt_req_t *r, void *ud) {
  lt_str_t path = lt_req_path(r);
  int method = lt_req_method(r);
  /* Reached only because no route took this method: keep their 405. */
  int others = other_methods(ud, path);
  if (others) {
    allow_header(r, others);
    lt_reply_error(r, 405, "method_not_allowed", "this path does not accept that method");
    return;
  }
  const lt_ui_asset_t *a = find(path);
  if (!a && (method & (LT_GET | LT_HEAD))) {
    bool api = false;
    for (const char *const *p = api_prefixes; *p; p++) api = api || has_prefix(path, *p);
    const char *accept = lt_req_header(r, "Accept");
    if (!api && accept && header_accepts(accept, "text/html")) a = find((lt_str_t){"/", 1});
  }
  if (!a) {
    lt_reply_error(r, 404, "not_found", "no such endpoint");
    return;
  }
  if (!(method & (LT_GET | LT_HEAD))) {
    allow_header(r, LT_GET | LT_HEAD);
    lt_reply_error(r, 405, "method_not_allowed", "this path does not accept that method");
    return;
  }
  serve(r, a);
}
