/* Worker pool: a ring buffer of jobs under one mutex and condvar. */
#include "core/workq.h"
#include "core/err.h"
#include "core/mem.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct {
  lt_job_fn fn;
  void *arg;
} job_t;

struct lt_workq {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job_t *ring;
  size_t cap, head, count;
  bool stopping;
  int nthreads;
  pthread_t *threads;
  char name[16];
};

static void *worker(void *arg) {
  lt_workq_t *q = arg;
  pthread_setname_np(pthread_self(), q->name);
  pthread_mutex_lock(&q->mu);
  for (;;) {
    while (!q->count && !q->stopping) pthread_cond_wait(&q->cv, &q->mu);
    if (!q->count) break;
    job_t j = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_mutex_unlock(&q->mu);
    j.fn(j.arg);
    pthread_mutex_lock(&q->mu);
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

int lt_workq_start(const char *name, int nthreads, size_t max_jobs, lt_workq_t **out) {
  lt_workq_t *q = lt_calloc(1, sizeof *q);
  if (!q) return LT_ENOMEM;
  snprintf(q->name, sizeof q->name, "%s", name);
  q->cap = max_jobs ? max_jobs : 1;
  q->ring = lt_calloc(q->cap, sizeof *q->ring);
  q->threads = lt_calloc((size_t)(nthreads > 0 ? nthreads : 1), sizeof *q->threads);
  if (!q->ring || !q->threads) {
    lt_free(q->ring);
    lt_free(q->threads);
    lt_free(q);
    return LT_ENOMEM;
  }
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->cv, NULL);
  for (int i = 0; i < (nthreads > 0 ? nthreads : 1); i++) {
    if (pthread_create(&q->threads[i], NULL, worker, q) != 0) break;
    q->nthreads++;
  }
  *out = q;
  return 0;
}

int lt_workq_submit(lt_workq_t *q, lt_job_fn fn, void *arg) {
  int rc = 0;
  pthread_mutex_lock(&q->mu);
  if (q->stopping) rc = LT_ESHUTDOWN;
  else if (q->count == q->cap) rc = LT_EFULL;
  else {
    q->ring[(q->head + q->count) % q->cap] = (job_t){fn, arg};
    q->count++;
    pthread_cond_signal(&q->cv);
  }
  pthread_mutex_unlock(&q->mu);
  return rc;
}

void lt_workq_stop(lt_workq_t *q) {
  if (!q) return;
  pthread_mutex_lock(&q->mu);
  q->stopping = true;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
  for (int i = 0; i < q->nthreads; i++) pthread_join(q->threads[i], NULL);
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->cv);
  lt_free(q->ring);
  lt_free(q->threads);
  lt_free(q);
}
