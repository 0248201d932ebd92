/* Unit tests for the leaf modules of src/core: arena, buffers and JSON
 * escaping, hex, bounded inflate, errors, the worker queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_getFrameHeader: the test checks the window it built */
#include <zstd.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/inflate.h"
#include "core/mem.h"
#include "core/workq.h"

static void arena_caps_and_aligns(void **st) {
  lt_arena_t *a = lt_arena_create(1000);
  assert_non_null(a);
  void *p = lt_arena_alloc(a, 10);
  assert_non_null(p);
  assert_int_equal((uintptr_t)p % 16, 0);
  assert_int_equal(lt_arena_used(a), 16);
  assert_null(lt_arena_alloc(a, 1000)); /* over the cap */
  lt_str_t s = lt_arena_strdup(a, "hello", 5);
  assert_int_equal(s.len, 5);
  assert_string_equal(s.ptr, "hello");
  lt_arena_destroy(a);
}

static void arena_big_allocations(void **st) {
  lt_arena_t *a = lt_arena_create(10u << 20);
  char *small = lt_arena_alloc(a, 100);
  char *big = lt_arena_alloc(a, 1u << 20); /* its own block */
  char *small2 = lt_arena_alloc(a, 100);
  assert_non_null(small);
  assert_non_null(big);
  assert_non_null(small2);
  memset(big, 1, 1u << 20);
  memset(small2, 2, 100);
  assert_int_equal(big[0], 1);
  assert_null(lt_arena_calloc(a, SIZE_MAX / 2, 4)); /* overflow */
  lt_arena_destroy(a);
}

static void buf_cap_is_enforced(void **st) {
  lt_buf_t b;
  lt_buf_init(&b, 8);
  assert_int_equal(lt_buf_puts(&b, "12345678"), 0);
  assert_int_equal(lt_buf_puts(&b, "9"), LT_ETOOBIG);
  assert_int_equal(b.len, 8);
  assert_string_equal(b.ptr, "12345678");
  lt_buf_free(&b);
}

/* printf formats into the free room when it fits, else grows; either way
 * the cap holds and a refused append leaves the buffer as it was. Integers
 * print as printf prints them. */
static void buf_printf_and_integers(void **st) {
  lt_buf_t b;
  lt_buf_init(&b, 300);
  assert_int_equal(lt_buf_puts(&b, "x"), 0); /* 256 allocated */
  for (int i = 0; i < 40; i++) assert_int_equal(lt_buf_printf(&b, "%d,", i % 10), 0);
  assert_int_equal(b.len, 81);
  assert_int_equal(lt_buf_printf(&b, "%0200d", 7), 0); /* past the allocation: grows */
  assert_int_equal(b.len, 281);
  assert_int_equal(b.ptr[b.len], '\0');
  assert_int_equal(lt_buf_printf(&b, "%020d", 1), LT_ETOOBIG); /* fits the allocation, not the cap */
  assert_int_equal(b.len, 281);
  assert_int_equal(strlen(b.ptr), 281);
  assert_int_equal(lt_buf_printf(&b, "%019d", 1), 0); /* exactly the cap */
  assert_int_equal(b.len, 300);
  lt_buf_free(&b);
  static const int64_t vals[] = {0, 1, -1, 9, 10, 99, 100, 123456789, -987654321, INT64_MAX, INT64_MIN};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    char want[32];
    snprintf(want, sizeof want, "%" PRId64, vals[i]);
    lt_buf_init(&b, 64);
    assert_int_equal(lt_buf_i64(&b, vals[i]), 0);
    assert_string_equal(b.ptr, want);
    lt_buf_free(&b);
  }
  lt_buf_init(&b, 64);
  assert_int_equal(lt_buf_u64(&b, UINT64_MAX), 0);
  assert_string_equal(b.ptr, "18446744073709551615");
  lt_buf_free(&b);
}

static void json_escaping(void **st) {
  lt_buf_t b;
  lt_buf_init(&b, 1 << 20);
  const char in[] = "a\"b\\c\n\x01\xc3\xa9\xff";
  assert_int_equal(lt_buf_json_str(&b, in, sizeof in - 1), 0);
  assert_string_equal(b.ptr, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\xef\xbf\xbd\"");
  lt_buf_free(&b);
  /* Surrogates encoded in UTF-8 and overlong forms are invalid. */
  lt_buf_init(&b, 1 << 20);
  assert_int_equal(lt_buf_json_str(&b, "\xed\xa0\x80\xc0\xaf", 5), 0);
  assert_string_equal(b.ptr, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
  lt_buf_free(&b);
}

/* The escaper copies 8 plain bytes at a time and, in a block with bytes
 * that need work, the plain ones before the first: compare it byte for
 * byte with JSON parsed back by jansson on strings where one or two such
 * bytes fall at every offset of the 8-byte blocks. */
static void json_escaping_blocks(void **st) {
  static const char specials[] = {'"', '\\', '\n', 0x01, 0x1f, 0x20, 0x7f, (char)0xc3, (char)0xff};
  const size_t ns = sizeof specials;
  char in[64], want[64 * 6];
  for (size_t len = 0; len <= 40; len++) {
    for (size_t pos = 0; pos < len; pos++) {
      /* gap 0: one special; 1..9: a second one that many bytes on. */
      for (size_t gk = 0; gk < 10 * ns; gk++) {
        size_t gap = gk / ns, k = gk % ns;
        if (gap && pos + gap >= len) continue;
        for (size_t i = 0; i < len; i++) in[i] = (char)('a' + i % 26);
        in[pos] = specials[k];
        if (specials[k] == (char)0xc3 && pos + 1 < len) in[pos + 1] = (char)0xa9; /* é */
        if (gap) in[pos + gap] = specials[(k + gap) % ns];
        lt_buf_t b;
        lt_buf_init(&b, 1 << 20);
        assert_int_equal(lt_buf_json_str(&b, in, len), 0);
        json_error_t err;
        json_t *j = json_loadb(b.ptr, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        assert_non_null(j);
        /* What came back is the input, with invalid UTF-8 as U+FFFD. */
        size_t w = 0;
        for (size_t i = 0; i < len; i++) {
          unsigned char c = (unsigned char)in[i];
          if (c == 0xc3 && i + 1 < len && (unsigned char)in[i + 1] == 0xa9) {
            want[w++] = in[i];
            want[w++] = in[++i];
          } else if (c >= 0x80) {
            memcpy(want + w, "\xef\xbf\xbd", 3);
            w += 3;
          } else {
            want[w++] = (char)c;
          }
        }
        assert_int_equal(json_string_length(j), w);
        assert_memory_equal(json_string_value(j), want, w);
        json_decref(j);
        lt_buf_free(&b);
      }
    }
  }
}

static void hex_round_trip(void **st) {
  uint8_t id[4] = {0xde, 0xad, 0x00, 0x1f}, back[4];
  char hex[9];
  lt_hex_encode(hex, id, 4);
  assert_string_equal(hex, "dead001f");
  assert_int_equal(lt_hex_decode(back, 4, "DEAD001F", 8), 0);
  assert_memory_equal(id, back, 4);
  assert_int_equal(lt_hex_decode(back, 4, "dead001", 7), LT_EDECODE);
  assert_int_equal(lt_hex_decode(back, 4, "dead001g", 8), LT_EDECODE);
}

static size_t compress_with(int window_bits, const char *in, size_t len, unsigned char *out, size_t cap) {
  z_stream zs = {0};
  deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)len;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  deflate(&zs, Z_FINISH);
  size_t n = cap - zs.avail_out;
  deflateEnd(&zs);
  return n;
}

static void inflate_all_encodings(void **st) {
  const char text[] = "the quick brown fox jumps over the lazy dog, again and again and again";
  unsigned char z[512];
  int windows[] = {15 + 16, 15, -15};
  lt_encoding_t encs[] = {LT_ENC_GZIP, LT_ENC_DEFLATE, LT_ENC_DEFLATE};
  for (int i = 0; i < 3; i++) {
    size_t n = compress_with(windows[i], text, sizeof text - 1, z, sizeof z);
    lt_buf_t out;
    lt_buf_init(&out, 1 << 20);
    assert_int_equal(lt_inflate(encs[i], z, n, &out), 0);
    assert_int_equal(out.len, sizeof text - 1);
    assert_memory_equal(out.ptr, text, out.len);
    lt_buf_free(&out);
    /* Truncated input is corrupt, not a crash. */
    lt_buf_init(&out, 1 << 20);
    assert_int_equal(lt_inflate(encs[i], z, n / 2, &out), LT_EDECODE);
    lt_buf_free(&out);
  }
}

static void inflate_bomb_stops_at_cap(void **st) {
  size_t len = 8u << 20;
  char *zeros = calloc(1, len);
  size_t cap = compressBound(len);
  unsigned char *z = malloc(cap);
  size_t n = compress_with(15 + 16, zeros, len, z, cap);
  lt_buf_t out;
  lt_buf_init(&out, 1u << 20);
  assert_int_equal(lt_inflate(LT_ENC_GZIP, z, n, &out), LT_ETOOBIG);
  assert_true(out.len <= 1u << 20);
  lt_buf_free(&out);
  lt_buf_init(&out, 4);
  assert_int_equal(lt_inflate(LT_ENC_GZIP, "garbage!", 8, &out), LT_EDECODE);
  lt_buf_free(&out);
  free(zeros);
  free(z);
}

static void inflate_zstd(void **st) {
  (void)st;
  const char text[] = "the quick brown fox jumps over the lazy dog, again and again and again";
  unsigned char z[1024];
  size_t n1 = ZSTD_compress(z, sizeof z, text, 20, 3);
  size_t n2 = ZSTD_compress(z + n1, sizeof z - n1, text + 20, sizeof text - 21, 3);
  assert_false(ZSTD_isError(n1) || ZSTD_isError(n2));
  lt_buf_t out;
  lt_buf_init(&out, 1 << 20);
  assert_int_equal(lt_inflate(LT_ENC_ZSTD, z, n1 + n2, &out), 0); /* two frames, one body */
  assert_int_equal(out.len, sizeof text - 1);
  assert_memory_equal(out.ptr, text, out.len);
  lt_buf_free(&out);
  for (size_t cut = 1; cut < n1 + n2; cut += 3) { /* every truncation is corrupt */
    lt_buf_init(&out, 1 << 20);
    if (cut != n1) assert_int_equal(lt_inflate(LT_ENC_ZSTD, z, cut, &out), LT_EDECODE);
    lt_buf_free(&out);
  }
  lt_buf_init(&out, 1 << 20);
  assert_int_equal(lt_inflate(LT_ENC_ZSTD, "", 0, &out), LT_EDECODE);
  assert_int_equal(lt_inflate(LT_ENC_ZSTD, "garbage!", 8, &out), LT_EDECODE);
  lt_buf_free(&out);
  /* A bomb stops at the cap. */
  size_t len = 8u << 20;
  char *zeros = calloc(1, len);
  size_t cap = ZSTD_compressBound(len);
  unsigned char *big = malloc(cap);
  size_t n = ZSTD_compress(big, cap, zeros, len, 1);
  lt_buf_init(&out, 1u << 20);
  assert_int_equal(lt_inflate(LT_ENC_ZSTD, big, n, &out), LT_ETOOBIG);
  assert_true(out.len <= 1u << 20);
  lt_buf_free(&out);
  /* A frame that needs a 64 MiB window is refused before anything is allocated for it. */
  ZSTD_CCtx *cc = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 26);
  ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
  ZSTD_outBuffer ob = {big, cap, 0};
  ZSTD_inBuffer ib = {zeros, 1024, 0};
  /* Streamed in two calls, so the size is not known and the window stays. */
  assert_false(ZSTD_isError(ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_continue)));
  ib = (ZSTD_inBuffer){zeros, 1024, 0};
  assert_int_equal(ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end), 0);
  ZSTD_freeCCtx(cc);
  ZSTD_frameHeader fh;
  assert_int_equal(ZSTD_getFrameHeader(&fh, big, ob.pos), 0);
  assert_int_equal(fh.windowSize, 64u << 20);
  lt_buf_init(&out, 1u << 20);
  assert_int_equal(lt_inflate(LT_ENC_ZSTD, big, ob.pos, &out), LT_EDECODE);
  lt_buf_free(&out);
  free(zeros);
  free(big);
}

/* A repeated message is let through once per period, whichever thread asks. */
static void log_due_once_per_period(void **st) {
  (void)st;
  static _Atomic int64_t last;
  assert_true(lt_log_due(&last, 60));
  assert_false(lt_log_due(&last, 60));
  atomic_store(&last, (int64_t)time(NULL) - 61); /* a minute and more ago */
  assert_true(lt_log_due(&last, 60));
  assert_false(lt_log_due(&last, 60));
}

static void errors_have_names(void **st) {
  assert_string_equal(lt_errname(LT_ENOTFOUND), "NOTFOUND");
  assert_string_equal(lt_strerror(LT_ETOOBIG), "input exceeds a size limit");
  assert_string_equal(lt_strerror(0), "ok");
}

static int counter;
static void bump(void *arg) { __atomic_add_fetch(&counter, *(int *)arg, __ATOMIC_SEQ_CST); }

static void workq_runs_everything_and_caps(void **st) {
  lt_workq_t *q;
  assert_int_equal(lt_workq_start("test", 2, 1000, &q), 0);
  int one = 1;
  for (int i = 0; i < 500; i++) assert_int_equal(lt_workq_submit(q, bump, &one), 0);
  lt_workq_stop(q); /* runs what is queued before joining */
  assert_int_equal(counter, 500);
  assert_int_equal(lt_workq_start("test", 0, 1, &q), 0);
  lt_workq_stop(q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(arena_caps_and_aligns),
    cmocka_unit_test(arena_big_allocations),
    cmocka_unit_test(buf_cap_is_enforced),
    cmocka_unit_test(buf_printf_and_integers),
    cmocka_unit_test(json_escaping),
    cmocka_unit_test(json_escaping_blocks),
    cmocka_unit_test(hex_round_trip),
    cmocka_unit_test(inflate_all_encodings),
    cmocka_unit_test(inflate_bomb_stops_at_cap),
    cmocka_unit_test(inflate_zstd),
    cmocka_unit_test(log_due_once_per_period),
    cmocka_unit_test(errors_have_names),
    cmocka_unit_test(workq_runs_everything_and_caps),
  };
  return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
