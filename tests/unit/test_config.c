/* Unit tests for configuration parsing, time parsing and key generation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "core/err.h"
#include "net/auth.h"
#include "query/api.h"

static void defaults_are_the_documented_ones(void **st) {
  lt_config_t c;
  lt_config_defaults(&c);
  assert_string_equal(c.host, "127.0.0.1");
  assert_int_equal(c.port, 4318);
  assert_string_equal(c.data, "./lanterna-data");
  assert_string_equal(c.durability, "full");
  assert_string_equal(c.compression, "lz4");
  assert_true(lt_config_loopback(&c));
  assert_int_equal(c.max_body, 64u << 20);
}

static void set_validates_and_explains(void **st) {
  lt_config_t c;
  char err[512];
  lt_config_defaults(&c);
  assert_int_equal(lt_config_set(&c, "listen", "0.0.0.0:9000", err, sizeof err), 0);
  assert_string_equal(c.host, "0.0.0.0");
  assert_int_equal(c.port, 9000);
  assert_false(lt_config_loopback(&c));
  assert_int_equal(lt_config_set(&c, "listen", "[::1]:4318", err, sizeof err), 0);
  assert_string_equal(c.host, "::1");
  assert_true(lt_config_loopback(&c));
  assert_int_equal(lt_config_set(&c, "listen", "nowhere", err, sizeof err), LT_ECONFIG);
  assert_non_null(strstr(err, "HOST:PORT"));
  assert_int_equal(lt_config_set(&c, "durability", "sometimes", err, sizeof err), LT_ECONFIG);
  assert_non_null(strstr(err, "full or process"));
  assert_int_equal(lt_config_set(&c, "compression", "zstd", err, sizeof err), 0);
  assert_string_equal(c.compression, "zstd");
  assert_int_equal(lt_config_set(&c, "compression", "brotli", err, sizeof err), LT_ECONFIG);
  assert_non_null(strstr(err, "lz4, zstd or none"));
  assert_string_equal(c.compression, "zstd");
  assert_int_equal(lt_config_set(&c, "retention", "30d", err, sizeof err), 0);
  assert_int_equal(c.retention_ns, 30LL * 86400 * 1000000000LL);
  assert_int_equal(lt_config_set(&c, "max-body", "1MiB", err, sizeof err), 0);
  assert_int_equal(c.max_body, 1u << 20);
  assert_int_equal(lt_config_set(&c, "bogus", "1", err, sizeof err), LT_ECONFIG);
  assert_non_null(strstr(err, "unknown option"));
}

static void file_and_env_layers(void **st) {
  char path[] = "/tmp/lt-config-XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fdopen(fd, "w");
  fputs("# comment\nlisten = 127.0.0.1:5000\ndata = \"/tmp/x\"\n", f);
  fclose(f);
  lt_config_t c;
  char err[512];
  lt_config_defaults(&c);
  assert_int_equal(lt_config_file(&c, path, err, sizeof err), 0);
  assert_int_equal(c.port, 5000);
  assert_string_equal(c.data, "/tmp/x");
  setenv("LANTERNA_LISTEN", "127.0.0.1:6000", 1);
  assert_int_equal(lt_config_env(&c, err, sizeof err), 0);
  assert_int_equal(c.port, 6000);
  unsetenv("LANTERNA_LISTEN");
  f = fopen(path, "w");
  fputs("threads = many\n", f);
  fclose(f);
  assert_int_equal(lt_config_file(&c, path, err, sizeof err), LT_ECONFIG);
  assert_non_null(strstr(err, ":1:"));
  unlink(path);
}

static void times_parse(void **st) {
  int64_t ns;
  assert_int_equal(lt_parse_time("2026-01-02T03:04:05Z", &ns), 0);
  assert_int_equal(ns, 1767323045LL * 1000000000LL);
  assert_int_equal(lt_parse_time("2026-01-02T03:04:05.5Z", &ns), 0);
  assert_int_equal(ns, 1767323045LL * 1000000000LL + 500000000LL);
  assert_int_equal(lt_parse_time("2026-01-02T05:04:05+02:00", &ns), 0);
  assert_int_equal(ns, 1767323045LL * 1000000000LL);
  assert_int_equal(lt_parse_time("1767323045000000000", &ns), 0);
  assert_int_equal(ns, 1767323045LL * 1000000000LL);
  assert_int_equal(lt_parse_time("yesterday", &ns), LT_EINVAL);
  assert_int_equal(lt_parse_time("2026-01-02T03:04:05", &ns), LT_EINVAL); /* no zone */
  assert_int_equal(lt_parse_time("2024-01-01T00:00:00+1:2", &ns), LT_EINVAL); /* short offset */
  assert_int_equal(lt_parse_time("2024-01-01T00:00:00+01", &ns), LT_EINVAL);
  assert_int_equal(lt_parse_time("0", &ns), 0);
  assert_int_equal(ns, 0);
}

static void keys_have_the_documented_shape(void **st) {
  char pk[LT_KEY_MAX], sk[LT_KEY_MAX], hash[65], again[65], pk2[LT_KEY_MAX], sk2[LT_KEY_MAX];
  assert_int_equal(lt_auth_new_key(pk, sk, hash), 0);
  assert_int_equal(strncmp(pk, "pk-lt-", 6), 0);
  assert_int_equal(strncmp(sk, "sk-lt-", 6), 0);
  assert_int_equal(strlen(sk), 38);
  lt_auth_hash(sk, strlen(sk), again);
  assert_string_equal(hash, again);
  assert_int_equal(strlen(hash), 64);
  assert_int_equal(lt_auth_new_key(pk2, sk2, again), 0);
  assert_string_not_equal(sk, sk2);
}

static void anonymous_only_when_allowed(void **st) {
  int64_t project = 0;
  lt_auth_t *open = lt_auth_new(NULL, true, 7);
  assert_int_equal(lt_auth_check(open, NULL, &project), 0);
  assert_int_equal(project, 7);
  /* Malformed credentials never reach the store. */
  assert_int_equal(lt_auth_check(open, "Bearer nope", &project), LT_EAUTH);
  assert_int_equal(lt_auth_check(open, "Basic !!!!", &project), LT_EAUTH);
  assert_int_equal(lt_auth_check(open, "Digest x", &project), LT_EAUTH);
  lt_auth_free(open);
  lt_auth_t *closed = lt_auth_new(NULL, false, 7);
  assert_int_equal(lt_auth_check(closed, NULL, &project), LT_EAUTH);
  lt_auth_free(closed);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(defaults_are_the_documented_ones),
    cmocka_unit_test(set_validates_and_explains),
    cmocka_unit_test(file_and_env_layers),
    cmocka_unit_test(times_parse),
    cmocka_unit_test(keys_have_the_documented_shape),
    cmocka_unit_test(anonymous_only_when_allowed),
  };
  return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
