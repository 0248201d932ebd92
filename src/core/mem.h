/* All heap allocation goes through these wrappers, so a debug build can
 * count live allocations and fail the Nth one (LT_FAIL_ALLOC=N in the
 * environment), the way curl's torture tests and SQLite's malloc hooks do.
 * Semantics match malloc/calloc/realloc/free/strdup. */
#ifndef LT_MEM_H
#define LT_MEM_H
#include <stdbool.h>
#include <stddef.h>

void *lt_malloc(size_t n);
void *lt_calloc(size_t count, size_t size);
void *lt_realloc(void *p, size_t n);
void lt_free(void *p);
char *lt_strdup(const char *s);
char *lt_strndup(const char *s, size_t n);
/* A per-thread allocation budget: while set (non-zero), allocations on
 * this thread fail once they would take more than `bytes` in total (frees
 * are not credited). Used to bound third-party parse trees (jansson) by
 * the size of the request that made them. lt_mem_budget_end returns true
 * when the budget ran out. */
void lt_mem_budget_begin(size_t bytes);
bool lt_mem_budget_end(void);
/* Number of allocations made through lt_malloc & co. so far; counted only
 * when LT_FAIL_ALLOC is set in the environment (any value; 0 fails none). */
unsigned long lt_mem_allocs(void);

#endif
