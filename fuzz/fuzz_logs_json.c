/* libFuzzer target for the OTLP/JSON logs decoder: must never crash, and what
 * it returns must be fully readable and keep the decoders' invariants
 * (fuzz/otlp_walk.h). */
#include <stddef.h>
#include <stdint.h>
#include "core/arena.h"
#include "ingest/decode.h"
#include "otlp_walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lt_arena_t *a = lt_arena_create(64u << 20);
  lt_otlp_logs_t t = {0};
  if (!a) return 0;
  if (lt_decode_logs_json(a, data, size, &t) == 0) {
    walk_logs(&t);
  }
  lt_arena_destroy(a);
  return 0;
}
