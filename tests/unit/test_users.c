/* Unit tests for admin users and browser sessions: scrypt password hashes
 * (format, verification, malformed input), and session keys in the store
 * and in auth (hidden from key listings, expiry, also while cached). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/err.h"
#include "net/auth.h"
#include "net/password.h"
#include "store/store.h"

/* ---- passwords ------------------------------------------------------------- */

static void hash_has_the_documented_format(void **st) {
  (void)st;
  char h[LT_PASSWORD_HASH_MAX], h2[LT_PASSWORD_HASH_MAX];
  const char *pw = "correct horse battery staple";
  assert_int_equal(lt_password_hash(pw, strlen(pw), h), 0);
  /* scrypt$15$8$1$<32 hex salt>$<64 hex hash> */
  assert_int_equal(strncmp(h, "scrypt$15$8$1$", 14), 0);
  const char *salt = h + 14, *dollar = strchr(salt, '$');
  assert_non_null(dollar);
  assert_int_equal(dollar - salt, 32);
  assert_int_equal(strlen(dollar + 1), 64);
  assert_int_equal(strspn(salt, "0123456789abcdef$"), strlen(salt));
  assert_int_equal(lt_password_verify(pw, strlen(pw), h), 0);
  /* A fresh salt every time. */
  assert_int_equal(lt_password_hash(pw, strlen(pw), h2), 0);
  assert_string_not_equal(h, h2);
  assert_int_equal(lt_password_verify(pw, strlen(pw), h2), 0);
}

static void verify_refuses_wrong_passwords(void **st) {
  (void)st;
  char h[LT_PASSWORD_HASH_MAX];
  const char *pw = "twelve chars!";
  assert_int_equal(lt_password_hash_cost(pw, strlen(pw), 10, 8, 1, h), 0);
  assert_int_equal(strncmp(h, "scrypt$10$8$1$", 14), 0);
  assert_int_equal(lt_password_verify(pw, strlen(pw), h), 0);
  assert_int_equal(lt_password_verify("twelve chars?", 13, h), LT_EAUTH);
  assert_int_equal(lt_password_verify("twelve chars", 12, h), LT_EAUTH);        /* a prefix */
  assert_int_equal(lt_password_verify("twelve chars!!", 14, h), LT_EAUTH);      /* longer */
  assert_int_equal(lt_password_verify("", 0, h), LT_EAUTH);
  /* The length given counts, not a NUL. */
  assert_int_equal(lt_password_verify("twelve chars!xyz", 13, h), 0);
  /* Bytes after a NUL matter too. */
  char a[] = "abc\0defghijklmn", b[] = "abc\0xyzghijklmn";
  assert_int_equal(lt_password_hash_cost(a, sizeof a - 1, 10, 8, 1, h), 0);
  assert_int_equal(lt_password_verify(a, sizeof a - 1, h), 0);
  assert_int_equal(lt_password_verify(b, sizeof b - 1, h), LT_EAUTH);
  /* Unicode counts in characters for the length rule. */
  assert_int_equal(lt_password_chars("h\xc3\xa9llo", 6), 5);
}

static void malformed_hashes_are_invalid_not_matches(void **st) {
  (void)st;
  char good[LT_PASSWORD_HASH_MAX];
  assert_int_equal(lt_password_hash_cost("pw", 2, 10, 8, 1, good), 0);
  const char *salt = strchr(good + 14, '$') - 32;
  char buf[300];
  const char *bad[] = {
    "", "bcrypt$10$8$1$00$00", "scrypt$", "scrypt$10$8$1$", "scrypt$99$8$1$0$0", /* N too large */
    "scrypt$0$8$1$00000000000000000000000000000000$0000000000000000000000000000000000000000000000000000000000000000",
    "scrypt$10$0$1$00000000000000000000000000000000$0000000000000000000000000000000000000000000000000000000000000000",
    "scrypt$10$8$1$0000000000000000000000000000000$0000000000000000000000000000000000000000000000000000000000000000",
    "scrypt$10$8$1$00000000000000000000000000000000$000000000000000000000000000000000000000000000000000000000000000",
    "scrypt$10$8$1$0000000000000000000000000000000G$0000000000000000000000000000000000000000000000000000000000000000",
    "scrypt$10$8$1$00000000000000000000000000000000$00000000000000000000000000000000000000000000000000000000000000000",
    "scrypt$10$8$1$00000000000000000000000000000000",
    NULL};
  for (int i = 0; bad[i]; i++) assert_int_equal(lt_password_verify("pw", 2, bad[i]), LT_EINVAL);
  assert_int_equal(lt_password_verify("pw", 2, NULL), LT_EINVAL);
  /* Upper-case hex is not what we write: refused rather than guessed. */
  snprintf(buf, sizeof buf, "%s", good);
  buf[salt - good] = buf[salt - good] >= 'a' ? (char)(buf[salt - good] - 32) : buf[salt - good];
  if (strcmp(buf, good) != 0) assert_int_equal(lt_password_verify("pw", 2, buf), LT_EINVAL);
  /* A changed hash byte is a wrong password, not an error. */
  snprintf(buf, sizeof buf, "%s", good);
  size_t last = strlen(buf) - 1;
  buf[last] = buf[last] == '0' ? '1' : '0';
  assert_int_equal(lt_password_verify("pw", 2, buf), LT_EAUTH);
  /* Over-long passwords are refused, not truncated. */
  static char big[LT_PASSWORD_MAX_BYTES + 10];
  memset(big, 'a', sizeof big);
  assert_int_equal(lt_password_hash(big, sizeof big, good), LT_EINVAL);
  lt_password_waste("pw", 2); /* runs, returns nothing */
}

/* ---- sessions ---------------------------------------------------------------- */

#include "store_fixture.h"
#define setup fixture_setup
#define teardown fixture_teardown

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void users_in_the_store(void **st) {
  fixture_t *f = *st;
  const lt_store_ops_t *o = f->store->ops;
  int64_t id = 0, n = -1;
  assert_int_equal(o->user_count(f->store, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(o->user_create(f->store, "admin", "scrypt$x", &id), 0);
  assert_true(id > 0);
  assert_int_equal(o->user_create(f->store, "admin", "scrypt$y", NULL), LT_EEXISTS);
  assert_int_equal(o->user_create(f->store, "", "scrypt$y", NULL), LT_EINVAL);
  assert_int_equal(o->user_count(f->store, &n), 0);
  assert_int_equal(n, 1);
  lt_user_t u;
  assert_int_equal(o->user_find(f->store, "admin", &u), 0);
  assert_int_equal(u.id, id);
  assert_string_equal(u.password_hash, "scrypt$x");
  assert_int_equal(o->user_find(f->store, "nobody", &u), LT_ENOTFOUND);
  assert_int_equal(o->user_get(f->store, id, &u), 0);
  assert_string_equal(u.name, "admin");
  assert_int_equal(o->user_get(f->store, id + 1, &u), LT_ENOTFOUND);
  json_t *list = NULL;
  assert_int_equal(o->user_list(f->store, &list), 0);
  assert_int_equal(json_array_size(list), 1);
  assert_null(json_object_get(json_array_get(list, 0), "password_hash"));
  assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")), "admin");
  json_decref(list);
}

static void sessions_are_keys_that_expire(void **st) {
  fixture_t *f = *st;
  const lt_store_ops_t *o = f->store->ops;
  int64_t uid = 0, n = -1;
  assert_int_equal(o->user_create(f->store, "admin", "scrypt$x", &uid), 0);
  char pk[LT_KEY_MAX], sk[LT_KEY_MAX], hash[65];
  assert_int_equal(lt_auth_new_session_key(pk, sk, hash), 0);
  assert_int_equal(strncmp(pk, "ws-lt-", 6), 0);
  assert_int_equal(strncmp(sk, "sk-lt-", 6), 0);
  /* No such user or project: nothing stored. */
  assert_int_equal(o->session_create(f->store, 1, uid + 5, pk, hash, now_ns() + 1000000000000LL, NULL), LT_ENOTFOUND);
  assert_int_equal(o->session_create(f->store, 99, uid, pk, hash, now_ns() + 1000000000000LL, NULL), LT_ENOTFOUND);
  assert_int_equal(o->session_create(f->store, 1, uid, pk, hash, now_ns() + 1000000000000LL, NULL), 0);

  /* Hidden from listings and from the count that decides whether keys protect the server. */
  assert_int_equal(o->key_count(f->store, &n), 0);
  assert_int_equal(n, 0);
  json_t *list = NULL;
  assert_int_equal(o->key_list(f->store, 0, &list), 0);
  assert_int_equal(json_array_size(list), 0);
  json_decref(list);
  lt_key_info_t k;
  assert_int_equal(o->key_find(f->store, hash, &k), 0);
  assert_int_equal(k.user_id, uid);
  assert_true(k.expires_ns > now_ns());

  lt_auth_t *a = lt_auth_new(f->store, false, 1);
  char authz[LT_KEY_MAX + 8];
  snprintf(authz, sizeof authz, "Bearer %s", sk);
  lt_auth_result_t res;
  assert_int_equal(lt_auth_resolve(a, authz, &res), 0);
  assert_int_equal(res.via, LT_VIA_SESSION);
  assert_int_equal(res.user_id, uid);
  assert_int_equal(res.project_id, 1);
  assert_string_equal(res.public_key, pk);
  /* Anonymous is refused here; a project key is a key, not a session. */
  assert_int_equal(lt_auth_resolve(a, NULL, &res), LT_EAUTH);
  char kpk[LT_KEY_MAX], ksk[LT_KEY_MAX], khash[65];
  assert_int_equal(lt_auth_new_key(kpk, ksk, khash), 0);
  assert_int_equal(o->key_create(f->store, 1, kpk, khash, NULL), 0);
  snprintf(authz, sizeof authz, "Bearer %s", ksk);
  assert_int_equal(lt_auth_resolve(a, authz, &res), 0);
  assert_int_equal(res.via, LT_VIA_KEY);
  assert_int_equal(res.user_id, 0);
  assert_int_equal(o->key_count(f->store, &n), 0);
  assert_int_equal(n, 1);

  /* Logout: revoked, and forgotten by this process's cache at once. */
  snprintf(authz, sizeof authz, "Bearer %s", sk);
  assert_int_equal(o->key_revoke(f->store, pk), 0);
  assert_int_equal(lt_auth_resolve(a, authz, &res), 0); /* still cached */
  lt_auth_forget_public(a, pk);
  assert_int_equal(lt_auth_resolve(a, authz, &res), LT_EAUTH);

  /* An expired session is refused. */
  assert_int_equal(lt_auth_new_session_key(pk, sk, hash), 0);
  assert_int_equal(o->session_create(f->store, 1, uid, pk, hash, now_ns() - 1000, NULL), 0);
  snprintf(authz, sizeof authz, "Bearer %s", sk);
  assert_int_equal(lt_auth_resolve(a, authz, &res), LT_EAUTH);

  /* One that expires while its verdict is cached is refused from then on. */
  assert_int_equal(lt_auth_new_session_key(pk, sk, hash), 0);
  assert_int_equal(o->session_create(f->store, 1, uid, pk, hash, now_ns() + 300 * 1000000LL, NULL), 0);
  snprintf(authz, sizeof authz, "Bearer %s", sk);
  assert_int_equal(lt_auth_resolve(a, authz, &res), 0);
  usleep(400 * 1000);
  assert_int_equal(lt_auth_resolve(a, authz, &res), LT_EAUTH);

  /* Logging in again drops sessions that can no longer be used. */
  char pk2[LT_KEY_MAX], sk2[LT_KEY_MAX], hash2[65];
  assert_int_equal(lt_auth_new_session_key(pk2, sk2, hash2), 0);
  assert_int_equal(o->session_create(f->store, 1, uid, pk2, hash2, now_ns() + 1000000000000LL, NULL), 0);
  assert_int_equal(o->key_find(f->store, hash, &k), LT_ENOTFOUND);
  lt_auth_free(a);
}

static void cookie_tokens(void **st) {
  (void)st;
  char t1[40], t2[40];
  assert_int_equal(lt_auth_random_token(t1, 32), 0);
  assert_int_equal(lt_auth_random_token(t2, 32), 0);
  assert_int_equal(strlen(t1), 32);
  assert_string_not_equal(t1, t2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(hash_has_the_documented_format),
    cmocka_unit_test(verify_refuses_wrong_passwords),
    cmocka_unit_test(malformed_hashes_are_invalid_not_matches),
    cmocka_unit_test(cookie_tokens),
    cmocka_unit_test_setup_teardown(users_in_the_store, setup, teardown),
    cmocka_unit_test_setup_teardown(sessions_are_keys_that_expire, setup, teardown),
  };
  return cmocka_run_group_tests_name("users", tests, NULL, NULL);
}
