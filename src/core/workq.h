/* A bounded pool of worker threads for blocking work (database reads) that
 * must stay off the event loops (Redis bio.c, nginx thread pools). Jobs run
 * in FIFO order on any worker. */
#ifndef LT_WORKQ_H
#define LT_WORKQ_H
#include <stddef.h>

typedef struct lt_workq lt_workq_t;
typedef void (*lt_job_fn)(void *arg);

/* Starts nthreads workers with room for max_jobs queued jobs; the threads
 * are named name (at most 15 characters; shown by top -H and ps -L). */
int lt_workq_start(const char *name, int nthreads, size_t max_jobs, lt_workq_t **out);
/* Queues fn(arg). Returns 0, or LT_EFULL (queue at cap) / LT_ESHUTDOWN,
 * in which case fn is never called. Never blocks. */
int lt_workq_submit(lt_workq_t *q, lt_job_fn fn, void *arg);
/* Runs what is queued, joins the workers, frees q. */
void lt_workq_stop(lt_workq_t *q);

#endif
