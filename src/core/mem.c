/* Allocation wrappers. When the environment variable LT_FAIL_ALLOC is set
 * they count allocations, and with LT_FAIL_ALLOC=N the Nth allocation (and
 * only it) returns NULL, so tests can prove each failure path is handled.
 * Without it nothing is counted: a shared counter bumped by every
 * allocation on every thread measurably costs the proxy's hot path. */
#include "core/mem.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong alloc_count;
static atomic_long fail_at = -2; /* -2: not read yet; -1: not counting; 0: count, never fail */

static int should_fail(void) {
  long at = atomic_load_explicit(&fail_at, memory_order_relaxed);
  if (at == -2) {
    const char *e = getenv("LT_FAIL_ALLOC");
    at = e ? atol(e) : -1;
    if (at < -1) at = 0;
    atomic_store(&fail_at, at);
  }
  if (at < 0) return 0;
  unsigned long n = atomic_fetch_add(&alloc_count, 1) + 1;
  return at > 0 && (unsigned long)at == n;
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
