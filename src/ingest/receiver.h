/* OTLP/HTTP receivers: POST /v1/traces, /v1/logs, /v1/metrics. Each
 * checks content type and encoding, decompresses under a cap, decodes,
 * maps every record to its canonical form (model/semconv.h) into one batch,
 * and hands the batch to the writer. The HTTP reply is sent only when the
 * writer reports the batch's transaction committed ("200 means stored").
 * Per-record problems (all-zero ids) become partial_success; undecodable
 * bodies are 400 and nothing of the request is stored. */
#ifndef LT_RECEIVER_H
#define LT_RECEIVER_H
#include <stdatomic.h>
#include <stddef.h>
#include "core/workq.h"
#include "net/http.h"
#include "pipeline/pricebook.h"
#include "pipeline/writer.h"

/* Trace requests with at least this many spans are mapped in two halves,
 * on two pool threads when both are free (see receiver.c). */
#define LT_RECEIVER_SPLIT_SPANS 200
/* Bodies of at least this many bytes are decoded and mapped on the pool,
 * not on the loop that read them. */
#define LT_RECEIVER_ASYNC_BYTES (64u << 10)

typedef struct lt_receiver {
  lt_writer_t *writer;
  lt_workq_t *pool;          /* ingest workers; NULL: everything on the loops */
  size_t max_decompressed;   /* 64 MiB by default → 413 past it */
  lt_pricebook_t *prices;    /* prices spans at ingest; NULL: no pricing */
  /* --retention (0: forever). Records older than it are refused through
   * partial_success: retention would delete them right after the 200. */
  int64_t retention_ns;
  atomic_ulong offloaded;    /* requests decoded and mapped on the pool (stats) */
} lt_receiver_t;

void lt_receiver_traces(lt_req_t *r, void *receiver);
void lt_receiver_logs(lt_req_t *r, void *receiver);
void lt_receiver_metrics(lt_req_t *r, void *receiver);

#endif
