/* Response cache (cache.h): a chained hash table on the key's first bytes
 * plus an LRU list; sizes count the body, the content type and the entry
 * itself. */
#include "proxy/cache.h"
#include <pthread.h>
#include <string.h>
#include "core/mem.h"

typedef struct entry {
  uint8_t key[32];
  int64_t expires_ns;
  int status;
  char *content_type;
  char *body;
  size_t len, size;
  struct entry *hnext;        /* hash chain */
  struct entry *prev, *next;  /* LRU: head is the most recent */
} entry_t;

struct lt_pcache {
  pthread_mutex_t mu;
  entry_t **slots;
  size_t nslots;
  entry_t *head, *tail;
  size_t bytes, max, entries;
  uint64_t hits, misses, stores, evictions;
};

static size_t slot_of(const lt_pcache_t *c, const uint8_t *key) {
  uint64_t h;
  memcpy(&h, key, 8); /* a SHA-256: its bytes are uniform */
  return (size_t)(h & (c->nslots - 1));
}

lt_pcache_t *lt_pcache_new(size_t max_bytes) {
  lt_pcache_t *c = lt_calloc(1, sizeof *c);
  if (!c) return NULL;
  c->nslots = 4096;
  if (!(c->slots = lt_calloc(c->nslots, sizeof *c->slots))) {
    lt_free(c);
    return NULL;
  }
  c->max = max_bytes;
  pthread_mutex_init(&c->mu, NULL);
  return c;
}

static void entry_free(entry_t *e) {
  lt_free(e->content_type);
  lt_free(e->body);
  lt_free(e);
}

void lt_pcache_free(lt_pcache_t *c) {
  if (!c) return;
  for (entry_t *e = c->head, *n; e; e = n) {
    n = e->next;
    entry_free(e);
  }
  lt_free(c->slots);
  pthread_mutex_destroy(&c->mu);
  lt_free(c);
}

static void lru_unlink(lt_pcache_t *c, entry_t *e) {
  if (e->prev) e->prev->next = e->next;
  else c->head = e->next;
  if (e->next) e->next->prev = e->prev;
  else c->tail = e->prev;
  e->prev = e->next = NULL;
}

static void lru_front(lt_pcache_t *c, entry_t *e) {
  e->next = c->head;
  e->prev = NULL;
  if (c->head) c->head->prev = e;
  c->head = e;
  if (!c->tail) c->tail = e;
}

static void drop(lt_pcache_t *c, entry_t *e) {
  entry_t **pp = &c->slots[slot_of(c, e->key)];
  while (*pp && *pp != e) pp = &(*pp)->hnext;
  if (*pp) *pp = e->hnext;
  lru_unlink(c, e);
  c->bytes -= e->size;
  c->entries--;
  entry_free(e);
}

static entry_t *find(lt_pcache_t *c, const uint8_t *key) {
  for (entry_t *e = c->slots[slot_of(c, key)]; e; e = e->hnext)
    if (!memcmp(e->key, key, 32)) return e;
  return NULL;
}

bool lt_pcache_get(lt_pcache_t *c, const uint8_t key[32], int64_t now_ns, lt_pcache_hit_t *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&c->mu);
  entry_t *e = find(c, key);
  if (e && e->expires_ns <= now_ns) {
    drop(c, e);
    e = NULL;
  }
  bool hit = false;
  if (e) {
    out->status = e->status;
    out->len = e->len;
    out->body = lt_malloc(e->len ? e->len : 1);
    out->content_type = e->content_type ? lt_strdup(e->content_type) : NULL;
    if (out->body && (!e->content_type || out->content_type)) {
      memcpy(out->body, e->body, e->len);
      lru_unlink(c, e);
      lru_front(c, e);
      hit = true;
    } else {
      lt_pcache_hit_free(out);
    }
  }
  if (hit) c->hits++;
  else c->misses++;
  pthread_mutex_unlock(&c->mu);
  return hit;
}

void lt_pcache_hit_free(lt_pcache_hit_t *h) {
  lt_free(h->body);
  lt_free(h->content_type);
  memset(h, 0, sizeof *h);
}

void lt_pcache_put(lt_pcache_t *c, const uint8_t key[32], int64_t expires_ns, int status, const char *content_type,
                   const char *body, size_t len) {
  size_t size = sizeof(entry_t) + len + (content_type ? strlen(content_type) + 1 : 0);
  if (size > c->max / 4) return;
  entry_t *e = lt_calloc(1, sizeof *e);
  if (!e) return;
  e->body = lt_malloc(len ? len : 1);
  e->content_type = content_type ? lt_strdup(content_type) : NULL;
  if (!e->body || (content_type && !e->content_type)) {
    entry_free(e);
    return;
  }
  memcpy(e->body, body, len);
  memcpy(e->key, key, 32);
  e->len = len;
  e->size = size;
  e->status = status;
  e->expires_ns = expires_ns;
  pthread_mutex_lock(&c->mu);
  entry_t *old = find(c, key);
  if (old) drop(c, old);
  while (c->tail && c->bytes + size > c->max) {
    drop(c, c->tail);
    c->evictions++;
  }
  size_t s = slot_of(c, key);
  e->hnext = c->slots[s];
  c->slots[s] = e;
  lru_front(c, e);
  c->bytes += size;
  c->entries++;
  c->stores++;
  pthread_mutex_unlock(&c->mu);
}

void lt_pcache_stats(lt_pcache_t *c, lt_pcache_stats_t *o) {
  pthread_mutex_lock(&c->mu);
  *o = (lt_pcache_stats_t){c->hits, c->misses, c->stores, c->evictions, c->bytes, c->entries};
  pthread_mutex_unlock(&c->mu);
}
