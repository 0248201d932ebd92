/* lt_arena_t: a region allocator. Everything parsed for one request (or one
 * batch) is allocated here and dies with it in one lt_arena_destroy(), the
 * way nginx pools and h2o memory pools work. An arena has a byte cap fixed
 * at creation; allocating past it fails (returns NULL) instead of growing
 * without bound. Not thread-safe: one owner at a time (ownership moves with
 * the batch that holds it). */
#ifndef LT_ARENA_H
#define LT_ARENA_H
#include <stddef.h>
#include "core/slice.h"

typedef struct lt_arena lt_arena_t;

/* Creates an arena that will hand out at most cap bytes in total.
 * Returns NULL when out of memory. */
lt_arena_t *lt_arena_create(size_t cap);
/* Frees the arena and everything allocated from it. NULL is a no-op. */
void lt_arena_destroy(lt_arena_t *a);
/* Returns n bytes aligned to 16, or NULL when the cap or memory is exhausted. */
void *lt_arena_alloc(lt_arena_t *a, size_t n);
/* Like lt_arena_alloc, zero-filled. */
void *lt_arena_calloc(lt_arena_t *a, size_t count, size_t size);
/* Copies n bytes (plus a NUL terminator, not counted in the result's len)
 * into the arena. Returns a slice with ptr NULL on failure (when n > 0). */
lt_str_t lt_arena_strdup(lt_arena_t *a, const char *s, size_t n);
/* Bytes handed out so far (counted against the cap). */
size_t lt_arena_used(const lt_arena_t *a);

#endif
