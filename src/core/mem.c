/* Allocation wrappers. In every build they count allocations; when the
 * environment variable LT_FAIL_ALLOC=N is set, the Nth allocation (and only
 * it) returns NULL, so tests can prove each failure path is handled. */
#include "core/mem.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong alloc_count;
static long fail_at = -1; /* -1: not read yet; 0: never fail */

static int should_fail(void) {
  unsigned long n = atomic_fetch_add(&alloc_count, 1) + 1;
  if (fail_at < 0) {
    const char *e = getenv("LT_FAIL_ALLOC");
    fail_at = e ? atol(e) : 0;
  }
  return fail_at > 0 && (unsigned long)fail_at == n;
}

static _Thread_local size_t budget_left;
static _Thread_local bool budget_on, budget_hit;

void lt_mem_budget_begin(size_t bytes) {
  budget_on = true;
  budget_hit = false;
  budget_left = bytes;
}

bool lt_mem_budget_end(void) {
  budget_on = false;
  return budget_hit;
}

/* Charges n bytes to this thread's budget; false when it is exhausted. */
static bool charge(size_t n) {
  if (!budget_on) return true;
  if (n > budget_left) {
    budget_hit = true;
    return false;
  }
  budget_left -= n;
  return true;
}

void *lt_malloc(size_t n) { return should_fail() || !charge(n) ? NULL : malloc(n ? n : 1); }
void *lt_calloc(size_t c, size_t s) {
  if (s && c > (size_t)-1 / s) return NULL;
  return should_fail() || !charge(c * s) ? NULL : calloc(c ? c : 1, s ? s : 1);
}
void *lt_realloc(void *p, size_t n) { return should_fail() || !charge(n) ? NULL : realloc(p, n ? n : 1); }
void lt_free(void *p) { free(p); }
unsigned long lt_mem_allocs(void) { return atomic_load(&alloc_count); }

char *lt_strndup(const char *s, size_t n) {
  char *d = lt_malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *lt_strdup(const char *s) { return lt_strndup(s, strlen(s)); }
