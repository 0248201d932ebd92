/* Bearer and Basic authentication against hashed keys, with a small
 * time-bounded cache of verified (and of rejected) secrets. */
#include "net/auth.h"
#include "core/err.h"
#include "core/mem.h"
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define CACHE_SLOTS 4096

typedef struct {
  char hash[65];
  char public_key[LT_KEY_MAX];
  int64_t project_id; /* -1: known bad */
  int64_t user_id;    /* sessions */
  int64_t key_expires_ns; /* the key's own expiry (sessions); 0 = never */
  time_t expires;     /* of this cache entry */
} entry_t;

struct lt_auth {
  lt_store_t *store;
  bool allow_anonymous;
  int64_t default_project;
  pthread_mutex_t mu;
  entry_t cache[CACHE_SLOTS];
};

lt_auth_t *lt_auth_new(lt_store_t *s, bool allow_anonymous, int64_t default_project) {
  lt_auth_t *a = lt_calloc(1, sizeof *a);
  if (!a) return NULL;
  a->store = s;
  a->allow_anonymous = allow_anonymous;
  a->default_project = default_project;
  pthread_mutex_init(&a->mu, NULL);
  return a;
}

void lt_auth_free(lt_auth_t *a) {
  if (!a) return;
  pthread_mutex_destroy(&a->mu);
  lt_free(a);
}

void lt_auth_hash(const char *secret, size_t len, char out[65]) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)secret, len, md);
  static const char hexd[] = "0123456789abcdef";
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
    out[2 * i] = hexd[md[i] >> 4];
    out[2 * i + 1] = hexd[md[i] & 15];
  }
  out[64] = '\0';
}

static int random_token(char *out, const char *prefix, size_t nbytes) {
  static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  unsigned char raw[32];
  if (nbytes > sizeof raw || getrandom(raw, nbytes, 0) != (ssize_t)nbytes) return LT_EIO;
  size_t p = strlen(prefix);
  memcpy(out, prefix, p);
  /* 62^n with rejection would be exact; 6 bits per char from 8 random bits
   * (mod 62 of a byte) is biased by < 2%, still ~190 bits for 32 chars. */
  for (size_t i = 0; i < nbytes; i++) out[p + i] = alphabet[raw[i] % 62];
  out[p + nbytes] = '\0';
  return 0;
}

int lt_auth_new_key(char pk[LT_KEY_MAX], char sk[LT_KEY_MAX], char sk_hash[65]) {
  int rc = random_token(pk, "pk-lt-", 24);
  if (!rc) rc = random_token(sk, "sk-lt-", 32);
  if (!rc) lt_auth_hash(sk, strlen(sk), sk_hash);
  return rc;
}

int lt_auth_new_session_key(char pk[LT_KEY_MAX], char sk[LT_KEY_MAX], char sk_hash[65]) {
  int rc = random_token(pk, LT_SESSION_KEY_PREFIX, 24);
  if (!rc) rc = random_token(sk, "sk-lt-", 32);
  if (!rc) lt_auth_hash(sk, strlen(sk), sk_hash);
  return rc;
}

int lt_auth_random_token(char *out, size_t n) { return random_token(out, "", n); }

bool lt_auth_allows_anonymous(const lt_auth_t *a) { return a->allow_anonymous; }

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Returns the cached entry for hash (valid, not expired) copied to *out. */
static bool cache_get(lt_auth_t *a, const char *hash, entry_t *out) {
  size_t slot = strtoul((char[9]){hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7], 0}, NULL, 16) % CACHE_SLOTS;
  bool hit = false;
  pthread_mutex_lock(&a->mu);
  entry_t *e = &a->cache[slot];
  if (e->expires > time(NULL) && strcmp(e->hash, hash) == 0) {
    *out = *e;
    hit = true;
  }
  pthread_mutex_unlock(&a->mu);
  return hit;
}

static void cache_put(lt_auth_t *a, const entry_t *in) {
  size_t slot = strtoul((char[9]){in->hash[0], in->hash[1], in->hash[2], in->hash[3], in->hash[4], in->hash[5], in->hash[6], in->hash[7], 0}, NULL, 16) % CACHE_SLOTS;
  pthread_mutex_lock(&a->mu);
  a->cache[slot] = *in;
  pthread_mutex_unlock(&a->mu);
}

void lt_auth_forget_secret(lt_auth_t *a, const char *secret) {
  if (!a || !secret) return;
  char hash[65];
  lt_auth_hash(secret, strlen(secret), hash);
  size_t slot = strtoul((char[9]){hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7], 0}, NULL, 16) % CACHE_SLOTS;
  pthread_mutex_lock(&a->mu);
  if (strcmp(a->cache[slot].hash, hash) == 0) a->cache[slot].expires = 0;
  pthread_mutex_unlock(&a->mu);
}

void lt_auth_forget_public(lt_auth_t *a, const char *public_key) {
  if (!a || !public_key || !*public_key) return;
  pthread_mutex_lock(&a->mu);
  for (size_t i = 0; i < CACHE_SLOTS; i++)
    if (a->cache[i].expires && strcmp(a->cache[i].public_key, public_key) == 0) a->cache[i].expires = 0;
  pthread_mutex_unlock(&a->mu);
}

static int verify(lt_auth_t *a, const char *pk, const char *sk, size_t sklen, lt_auth_result_t *out) {
  if (sklen < 8 || sklen >= LT_KEY_MAX || strncmp(sk, "sk-lt-", 6) != 0) return LT_EAUTH;
  entry_t e = {0};
  lt_auth_hash(sk, sklen, e.hash);
  if (!cache_get(a, e.hash, &e)) {
    lt_key_info_t info;
    int rc = a->store->ops->key_find(a->store, e.hash, &info);
    if (rc == 0 && info.revoked_ns == 0) {
      e.project_id = info.project_id;
      e.user_id = info.user_id;
      e.key_expires_ns = info.expires_ns;
      snprintf(e.public_key, sizeof e.public_key, "%s", info.public_key);
    } else if (rc == 0 || rc == LT_ENOTFOUND) {
      e.project_id = -1;
    } else {
      return LT_EAUTH; /* store trouble: refuse, but do not cache */
    }
    e.expires = time(NULL) + LT_AUTH_CACHE_SECONDS;
    cache_put(a, &e);
  }
  if (e.project_id < 0) return LT_EAUTH;
  if (e.key_expires_ns && e.key_expires_ns <= now_ns()) return LT_EAUTH;
  if (pk && strcmp(pk, e.public_key) != 0) return LT_EAUTH;
  out->project_id = e.project_id;
  out->user_id = e.user_id;
  bool session = strncmp(e.public_key, LT_SESSION_KEY_PREFIX, strlen(LT_SESSION_KEY_PREFIX)) == 0;
  out->via = session && e.user_id > 0 ? LT_VIA_SESSION : LT_VIA_KEY;
  snprintf(out->public_key, sizeof out->public_key, "%s", e.public_key);
  return 0;
}

int lt_auth_check(void *ud, const char *authz, int64_t *project_id) {
  lt_auth_result_t res;
  int rc = lt_auth_resolve(ud, authz, &res);
  if (rc == 0) *project_id = res.project_id;
  return rc;
}

int lt_auth_resolve(void *ud, const char *authz, lt_auth_result_t *out) {
  lt_auth_t *a = ud;
  memset(out, 0, sizeof *out);
  if (!authz || !*authz) {
    if (!a->allow_anonymous) return LT_EAUTH;
    out->project_id = a->default_project;
    out->via = LT_VIA_ANONYMOUS;
    return 0;
  }
  if (strncasecmp(authz, "Bearer ", 7) == 0) {
    const char *t = authz + 7;
    while (*t == ' ') t++;
    size_t n = strlen(t);
    while (n && t[n - 1] == ' ') n--;
    return verify(a, NULL, t, n, out);
  }
  if (strncasecmp(authz, "Basic ", 6) == 0) {
    const char *t = authz + 6;
    while (*t == ' ') t++;
    size_t n = strlen(t);
    if (n == 0 || n > 512 || n % 4) return LT_EAUTH;
    unsigned char dec[400];
    int m = EVP_DecodeBlock(dec, (const unsigned char *)t, (int)n);
    if (m < 0) return LT_EAUTH;
    while (m > 0 && t[n - 1] == '=' && dec[m - 1] == 0) { m--; n--; } /* strip padding bytes */
    dec[m] = '\0';
    char *colon = memchr(dec, ':', (size_t)m);
    if (!colon) return LT_EAUTH;
    *colon = '\0';
    const char *sk = colon + 1;
    return verify(a, (const char *)dec, sk, strlen(sk), out);
  }
  return LT_EAUTH;
}
