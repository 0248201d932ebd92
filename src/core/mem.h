/* All heap allocation goes through these wrappers, so a debug build can
 * count live allocations and fail the Nth one (LT_FAIL_ALLOC=N in the
 * environment), the way curl's torture tests and SQLite's malloc hooks do.
 * Semantics match malloc/calloc/realloc/free/strdup. */
#ifndef LT_MEM_H
#define LT_MEM_H
#include <stddef.h>

void *lt_malloc(size_t n);
void *lt_calloc(size_t count, size_t size);
void *lt_realloc(void *p, size_t n);
void lt_free(void *p);
char *lt_strdup(const char *s);
char *lt_strndup(const char *s, size_t n);
/* Number of allocations made through lt_malloc & co. so far (all builds). */
unsigned long lt_mem_allocs(void);

#endif
