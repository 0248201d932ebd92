/* Arena: a chain of blocks; small allocations bump a pointer in the current
 * block, large ones get a block of their own. */
#include "core/arena.h"
#include "core/mem.h"
#include <stdint.h>
#include <string.h>

#define BLOCK_SIZE (64 * 1024)

typedef struct block {
  struct block *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
} block_t;

struct lt_arena {
  block_t *head;
  size_t cap, used;
};

lt_arena_t *lt_arena_create(size_t cap) {
  lt_arena_t *a = lt_calloc(1, sizeof *a);
  if (a) a->cap = cap;
  return a;
}

void lt_arena_destroy(lt_arena_t *a) {
  if (!a) return;
  block_t *b = a->head;
  while (b) {
    block_t *next = b->next;
    lt_free(b);
    b = next;
  }
  lt_free(a);
}

void *lt_arena_alloc(lt_arena_t *a, size_t n) {
  size_t need = (n + 15) & ~(size_t)15;
  if (need < n || need > a->cap - a->used) return NULL;
  block_t *b = a->head;
  if (!b || b->size - b->used < need) {
    size_t size = need > BLOCK_SIZE / 4 ? need : BLOCK_SIZE;
    block_t *nb = lt_malloc(sizeof *nb + size);
    if (!nb) return NULL;
    nb->size = size;
    nb->used = 0;
    if (size == need && b) { /* big one-off: keep the current block in front */
      nb->next = b->next;
      b->next = nb;
    } else {
      nb->next = b;
      a->head = nb;
    }
    b = nb;
  }
  void *p = b->data + b->used;
  b->used += need;
  a->used += need;
  return p;
}

void *lt_arena_calloc(lt_arena_t *a, size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) return NULL;
  void *p = lt_arena_alloc(a, count * size);
  if (p) memset(p, 0, count * size);
  return p;
}

lt_str_t lt_arena_strdup(lt_arena_t *a, const char *s, size_t n) {
  char *d = lt_arena_alloc(a, n + 1);
  if (!d) return (lt_str_t){NULL, 0};
  if (n) memcpy(d, s, n);
  d[n] = '\0';
  return (lt_str_t){d, n};
}

size_t lt_arena_used(const lt_arena_t *a) { return a->used; }
