/* The proxy's response cache: exact-match entries keyed by a SHA-256 of
 * (upstream, method, path, query, canonical body, credential fingerprint,
 * seed), bounded in bytes with least-recently-used eviction, each with its
 * own expiry. Shared by every loop thread (one mutex; an entry is copied
 * out on a hit, so no lock is held while replying). See docs/proxy.md. */
#ifndef LT_PCACHE_H
#define LT_PCACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lt_pcache lt_pcache_t;

typedef struct {
  int status;
  char *content_type; /* may be NULL */
  char *body;
  size_t len;
} lt_pcache_hit_t;

lt_pcache_t *lt_pcache_new(size_t max_bytes);
void lt_pcache_free(lt_pcache_t *c);

/* Copies a live entry into *out (free with lt_pcache_hit_free). Returns
 * true on a hit. Expired entries are dropped on sight. */
bool lt_pcache_get(lt_pcache_t *c, const uint8_t key[32], int64_t now_ns, lt_pcache_hit_t *out);
void lt_pcache_hit_free(lt_pcache_hit_t *h);
/* Stores a copy (replacing an entry with the same key). Entries larger
 * than a quarter of the cache are not kept. */
void lt_pcache_put(lt_pcache_t *c, const uint8_t key[32], int64_t expires_ns, int status, const char *content_type,
                   const char *body, size_t len);

typedef struct {
  uint64_t hits, misses, stores, evictions;
  size_t bytes, entries;
} lt_pcache_stats_t;
void lt_pcache_stats(lt_pcache_t *c, lt_pcache_stats_t *out);

#endif
