/* libFuzzer target for the OTLP/JSON traces decoder: must never crash, and what
 * it returns must be fully readable and keep the decoders' invariants
 * (fuzz/otlp_walk.h). */
#include <stddef.h>
#include <stdint.h>
#include "core/arena.h"
#include "ingest/decode.h"
#include "otlp_walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lt_arena_t *a = lt_arena_create(64u << 20);
  lt_otlp_traces_t t = {0};
  if (!a) return 0;
  if (lt_decode_traces_json(a, data, size, &t) == 0) {
    size_t spans = walk_traces(&t);
    lt_str_t resp;
    /* a response must encode for whatever count came out */
    if (lt_encode_export_response_json(a, "spans", (int64_t)spans, spans ? "fuzz" : NULL, &resp) != 0) abort();
  }
  lt_arena_destroy(a);
  return 0;
}
