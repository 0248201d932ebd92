/* Configuration parsing and validation: every bad value fails fast with a
 * message naming the key and what it accepts. */
#include "config.h"
#include "core/err.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void lt_config_defaults(lt_config_t *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->listen, sizeof c->listen, "127.0.0.1:4318");
  snprintf(c->host, sizeof c->host, "127.0.0.1");
  c->port = 4318;
  snprintf(c->data, sizeof c->data, "./lanterna-data");
  snprintf(c->storage, sizeof c->storage, "sqlite");
  snprintf(c->durability, sizeof c->durability, "full");
  snprintf(c->compression, sizeof c->compression, "lz4");
  snprintf(c->log_level, sizeof c->log_level, "info");
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  c->threads = n > 0 ? (int)n : 2;
  c->max_body = 64u << 20;
  c->max_connections = 4096;
  c->idle_timeout_s = 60;
  c->queue_bytes = 64u << 20;
  c->read_connections = 4;
  snprintf(c->feature_key, sizeof c->feature_key, "feature");
  c->proxy_capture = 1u << 20;
  c->proxy_stream_usage = true;
  c->proxy_cache_size = 64u << 20;
  c->proxy_first_byte_timeout_ns = 120LL * 1000000000;
  c->proxy_idle_timeout_ns = 120LL * 1000000000;
}

/* Appends v to a repeatable list. */
static int push(char *list, size_t width, int *n, int max, const char *v) {
  if (*n == max || strlen(v) >= width || !*v) return LT_ECONFIG;
  memcpy(list + (size_t)*n * width, v, strlen(v) + 1);
  (*n)++;
  return 0;
}

int lt_parse_size(const char *s, size_t *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || v < 0) return LT_EINVAL;
  double mul = 1;
  if (!*end || !strcasecmp(end, "b")) mul = 1;
  else if (!strcasecmp(end, "k") || !strcasecmp(end, "kb") || !strcasecmp(end, "kib")) mul = 1024;
  else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb") || !strcasecmp(end, "mib")) mul = 1024.0 * 1024;
  else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb") || !strcasecmp(end, "gib")) mul = 1024.0 * 1024 * 1024;
  else return LT_EINVAL;
  if (v * mul > (double)(1ull << 40)) return LT_EINVAL; /* 1 TiB: no real limit is larger */
  *out = (size_t)(v * mul);
  return 0;
}

int lt_parse_duration(const char *s, int64_t *ns) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || v < 0) return LT_EINVAL;
  double mul;
  if (v > 1e7) return LT_EINVAL; /* keeps v * mul inside int64 */
  if (!strcmp(end, "s") || !*end) mul = 1e9;
  else if (!strcmp(end, "ms")) mul = 1e6;
  else if (!strcmp(end, "m")) mul = 60e9;
  else if (!strcmp(end, "h")) mul = 3600e9;
  else if (!strcmp(end, "d")) mul = 86400e9;
  else return LT_EINVAL;
  *ns = (int64_t)(v * mul);
  return 0;
}

static bool truthy(const char *v) {
  return !strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on");
}

bool lt_config_is_flag(const char *key) { return !strcmp(key, "insecure-no-auth") || !strcmp(key, "require-auth"); }

static int copy(char *dst, size_t n, const char *v) {
  if (strlen(v) >= n) return LT_ECONFIG;
  memcpy(dst, v, strlen(v) + 1);
  return 0;
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return LT_ECONFIG; } while (0)

static int int_in(const char *v, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || *end || end == v || n < lo || n > hi) return LT_EINVAL;
  *out = n;
  return 0;
}

int lt_config_set(lt_config_t *c, const char *key, const char *v, char *err, size_t errlen) {
  long n;
  if (!strcmp(key, "listen")) {
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || int_in(colon + 1, 0, 65535, &n))
      FAIL("--listen: expected HOST:PORT (for example 127.0.0.1:4318), got '%s'", v);
    size_t hl = (size_t)(colon - v);
    if (hl >= sizeof c->host || copy(c->listen, sizeof c->listen, v)) FAIL("--listen: address too long");
    const char *h = v;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') { h++; hl -= 2; } /* [::1]:4318 */
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    c->port = (int)n;
  } else if (!strcmp(key, "data")) {
    if (!*v || copy(c->data, sizeof c->data, v)) FAIL("--data: expected a directory path");
  } else if (!strcmp(key, "storage")) {
    if (strcmp(v, "sqlite")) FAIL("--storage: '%s' is not available; use sqlite", v);
    copy(c->storage, sizeof c->storage, v);
  } else if (!strcmp(key, "config")) {
    if (copy(c->config, sizeof c->config, v)) FAIL("--config: path too long");
  } else if (!strcmp(key, "durability")) {
    if (strcmp(v, "full") && strcmp(v, "process")) FAIL("--durability: expected full or process, got '%s'", v);
    copy(c->durability, sizeof c->durability, v);
  } else if (!strcmp(key, "compression")) {
    if (strcmp(v, "lz4") && strcmp(v, "zstd") && strcmp(v, "none"))
      FAIL("--compression: expected lz4, zstd or none, got '%s'", v);
    copy(c->compression, sizeof c->compression, v);
  } else if (!strcmp(key, "retention")) {
    if (lt_parse_duration(v, &c->retention_ns)) FAIL("--retention: expected a duration like 30d, 12h or 0 (keep forever), got '%s'", v);
  } else if (!strcmp(key, "insecure-no-auth")) {
    c->insecure_no_auth = truthy(v);
  } else if (!strcmp(key, "require-auth")) {
    c->require_auth = truthy(v);
  } else if (!strcmp(key, "log-level")) {
    if (strcmp(v, "debug") && strcmp(v, "info") && strcmp(v, "warn") && strcmp(v, "error"))
      FAIL("--log-level: expected debug, info, warn or error, got '%s'", v);
    copy(c->log_level, sizeof c->log_level, v);
  } else if (!strcmp(key, "threads")) {
    if (int_in(v, 1, 64, &n)) FAIL("--threads: expected 1 to 64, got '%s'", v);
    c->threads = (int)n;
  } else if (!strcmp(key, "max-body")) {
    if (lt_parse_size(v, &c->max_body) || c->max_body < 1024) FAIL("--max-body: expected a size like 64MiB, got '%s'", v);
  } else if (!strcmp(key, "max-connections")) {
    if (int_in(v, 1, 1000000, &n)) FAIL("--max-connections: expected 1 to 1000000, got '%s'", v);
    c->max_connections = (int)n;
  } else if (!strcmp(key, "idle-timeout")) {
    int64_t ns;
    if (lt_parse_duration(v, &ns) || ns < 1000000000LL) FAIL("--idle-timeout: expected a duration of at least 1s, got '%s'", v);
    c->idle_timeout_s = (int)(ns / 1000000000LL);
  } else if (!strcmp(key, "queue-bytes")) {
    if (lt_parse_size(v, &c->queue_bytes) || c->queue_bytes < (1u << 20)) FAIL("--queue-bytes: expected a size of at least 1MiB, got '%s'", v);
  } else if (!strcmp(key, "read-connections")) {
    if (int_in(v, 1, 64, &n)) FAIL("--read-connections: expected 1 to 64, got '%s'", v);
    c->read_connections = (int)n;
  } else if (!strcmp(key, "prices")) {
    /* Repeatable; a comma-separated list also works (for the environment). */
    for (const char *p = v; *p;) {
      const char *comma = strchr(p, ',');
      size_t len = comma ? (size_t)(comma - p) : strlen(p);
      if (len == 0) FAIL("--prices: expected a file path, got an empty one in '%s'", v);
      if (c->n_prices == LT_CONFIG_MAX_PRICE_FILES) FAIL("--prices: at most %d files", LT_CONFIG_MAX_PRICE_FILES);
      if (len >= sizeof c->prices[0]) FAIL("--prices: path too long");
      memcpy(c->prices[c->n_prices], p, len);
      c->prices[c->n_prices++][len] = '\0';
      p += len + (comma ? 1 : 0);
    }
  } else if (!strcmp(key, "upstream")) {
    /* Repeatable; comma-separated in the environment. Checked in full by
     * the proxy at start-up. */
    for (const char *p = v; *p;) {
      const char *comma = strchr(p, ',');
      size_t len = comma ? (size_t)(comma - p) : strlen(p);
      if (len == 0 || !memchr(p, '=', len)) FAIL("--upstream: expected NAME=BASE_URL, got '%s'", v);
      if (c->n_upstreams == LT_CONFIG_MAX_UPSTREAMS) FAIL("--upstream: at most %d upstreams", LT_CONFIG_MAX_UPSTREAMS);
      if (len >= sizeof c->upstreams[0]) FAIL("--upstream: too long");
      memcpy(c->upstreams[c->n_upstreams], p, len);
      c->upstreams[c->n_upstreams++][len] = '\0';
      p += len + (comma ? 1 : 0);
    }
  } else if (!strcmp(key, "proxy-capture")) {
    if (lt_parse_size(v, &c->proxy_capture) || c->proxy_capture < 1024 || c->proxy_capture > (256u << 20))
      FAIL("--proxy-capture: expected a size from 1KiB to 256MiB, got '%s'", v);
  } else if (!strcmp(key, "proxy-stream-usage")) {
    if (truthy(v)) c->proxy_stream_usage = true;
    else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))
      c->proxy_stream_usage = false;
    else FAIL("--proxy-stream-usage: expected true or false, got '%s'", v);
  } else if (!strcmp(key, "limit")) {
    /* Rules hold commas: one rule per flag; ';' separates several in the
     * environment. */
    char tmp[2048];
    snprintf(tmp, sizeof tmp, "%s", v);
    for (char *save = NULL, *r = strtok_r(tmp, ";", &save); r; r = strtok_r(NULL, ";", &save))
      if (push(&c->limits[0][0], sizeof c->limits[0], &c->n_limits, LT_CONFIG_MAX_RULES, r))
        FAIL("--limit: at most %d rules of under 256 characters, got '%s'", LT_CONFIG_MAX_RULES, v);
  } else if (!strcmp(key, "cache-upstream")) {
    if (push(&c->cache_upstreams[0][0], sizeof c->cache_upstreams[0], &c->n_cache_upstreams, LT_CONFIG_MAX_RULES, v))
      FAIL("--cache-upstream: expected NAME=SECONDS (at most %d), got '%s'", LT_CONFIG_MAX_RULES, v);
  } else if (!strcmp(key, "fallback")) {
    if (push(&c->fallbacks[0][0], sizeof c->fallbacks[0], &c->n_fallbacks, LT_CONFIG_MAX_RULES, v))
      FAIL("--fallback: expected NAME=OTHER[:MODEL] (at most %d), got '%s'", LT_CONFIG_MAX_RULES, v);
  } else if (!strcmp(key, "proxy-cache-size")) {
    if (lt_parse_size(v, &c->proxy_cache_size) || c->proxy_cache_size > (64ull << 30))
      FAIL("--proxy-cache-size: expected a size like 64MiB (0 turns the cache off), got '%s'", v);
  } else if (!strcmp(key, "proxy-retries")) {
    if (int_in(v, 0, 10, &n)) FAIL("--proxy-retries: expected 0 to 10, got '%s'", v);
    c->proxy_retries = (int)n;
  } else if (!strcmp(key, "proxy-first-byte-timeout")) {
    if (lt_parse_duration(v, &c->proxy_first_byte_timeout_ns))
      FAIL("--proxy-first-byte-timeout: expected a duration like 60s (0: none), got '%s'", v);
  } else if (!strcmp(key, "proxy-idle-timeout")) {
    if (lt_parse_duration(v, &c->proxy_idle_timeout_ns))
      FAIL("--proxy-idle-timeout: expected a duration like 60s (0: none), got '%s'", v);
  } else if (!strcmp(key, "upstream-ca")) {
    if (access(v, R_OK) != 0 || copy(c->upstream_ca, sizeof c->upstream_ca, v))
      FAIL("--upstream-ca: cannot read the CA file '%s'", v);
  } else if (!strcmp(key, "feature-key")) {
    if (!*v || copy(c->feature_key, sizeof c->feature_key, v))
      FAIL("--feature-key: expected a metadata key of 1 to 127 characters, got '%s'", v);
  } else {
    FAIL("unknown option '%s' (see 'lanterna serve --help')", key);
  }
  return 0;
}

int lt_config_file(lt_config_t *c, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) FAIL("--config: cannot open '%s': %s", path, strerror(errno));
  char line[2048];
  int lineno = 0, rc = 0;
  while (!rc && fgets(line, sizeof line, f)) {
    lineno++;
    char *p = line;
    while (isspace((unsigned char)*p)) p++;
    if (!*p || *p == '#') continue;
    char *eq = strchr(p, '=');
    if (!eq) {
      snprintf(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
      rc = LT_ECONFIG;
      break;
    }
    char *ke = eq;
    while (ke > p && isspace((unsigned char)ke[-1])) ke--;
    *ke = '\0';
    char *v = eq + 1;
    while (isspace((unsigned char)*v)) v++;
    size_t vl = strlen(v);
    while (vl && isspace((unsigned char)v[vl - 1])) v[--vl] = '\0';
    if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') { v[vl - 1] = '\0'; v++; }
    char sub[1024];
    rc = lt_config_set(c, p, v, sub, sizeof sub);
    if (rc) snprintf(err, errlen, "%s:%d: %s", path, lineno, sub);
  }
  fclose(f);
  return rc;
}

/* Every option serve takes (also the LANTERNA_* variables), but --config. */
static const char *const option_keys[] = {"listen", "data", "storage", "durability", "compression", "retention", "insecure-no-auth",
                                         "log-level", "threads", "max-body", "max-connections", "idle-timeout",
                                         "queue-bytes", "read-connections", "prices", "feature-key", "upstream",
                                         "proxy-capture", "proxy-stream-usage", "limit", "cache-upstream", "fallback",
                                         "proxy-cache-size", "proxy-retries", "proxy-first-byte-timeout",
                                         "proxy-idle-timeout", "upstream-ca", "require-auth", NULL};

bool lt_config_known(const char *key) {
  for (int i = 0; option_keys[i]; i++)
    if (!strcmp(option_keys[i], key)) return true;
  return false;
}

int lt_config_env(lt_config_t *c, char *err, size_t errlen) {
  for (int i = 0; option_keys[i]; i++) {
    char name[64] = "LANTERNA_";
    size_t p = strlen(name);
    for (const char *k = option_keys[i]; *k && p < sizeof name - 1; k++) name[p++] = *k == '-' ? '_' : (char)toupper((unsigned char)*k);
    name[p] = '\0';
    const char *v = getenv(name);
    if (!v) continue;
    char sub[1024];
    if (lt_config_set(c, option_keys[i], v, sub, sizeof sub)) FAIL("%s: %s", name, sub);
  }
  return 0;
}

bool lt_config_loopback(const lt_config_t *c) {
  return !strncmp(c->host, "127.", 4) || !strcmp(c->host, "::1") || !strcmp(c->host, "localhost");
}
