/* scrypt password hashes through OpenSSL (EVP_PBE_scrypt). */
#include "net/password.h"
#include "core/err.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_BYTES 16
#define HASH_BYTES 32
/* Bounds accepted when reading a stored hash: a corrupted or hostile row
 * must not make a login take minutes or gigabytes. */
#define MIN_LOG2N 1
#define MAX_LOG2N 20
#define MAX_R 32
#define MAX_P 16

static const char hexd[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hexd[in[i] >> 4];
    out[2 * i + 1] = hexd[in[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Exactly 2n lowercase hex characters into n bytes. */
static int from_hex(const char *in, size_t inlen, unsigned char *out, size_t n) {
  if (inlen != 2 * n) return LT_EINVAL;
  for (size_t i = 0; i < n; i++) {
    int hi = hex_val(in[2 * i]), lo = hex_val(in[2 * i + 1]);
    if (hi < 0 || lo < 0) return LT_EINVAL;
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  return 0;
}

static int derive(const char *pw, size_t len, const unsigned char *salt, int log2n, int r, int p,
                  unsigned char out[HASH_BYTES]) {
  uint64_t n = (uint64_t)1 << log2n;
  /* scrypt needs 128 * r * (N + p + 2) bytes; OpenSSL refuses above maxmem. */
  uint64_t maxmem = 128ull * (uint64_t)r * (n + (uint64_t)p + 2) + (1u << 20);
  if (EVP_PBE_scrypt(pw, len, salt, SALT_BYTES, n, (uint64_t)r, (uint64_t)p, maxmem, out, HASH_BYTES) != 1)
    return LT_EIO;
  return 0;
}

int lt_password_hash_cost(const char *password, size_t len, int log2n, int r, int p,
                          char out[LT_PASSWORD_HASH_MAX]) {
  if (len > LT_PASSWORD_MAX_BYTES) return LT_EINVAL;
  if (log2n < MIN_LOG2N || log2n > MAX_LOG2N || r < 1 || r > MAX_R || p < 1 || p > MAX_P) return LT_EINVAL;
  unsigned char salt[SALT_BYTES], hash[HASH_BYTES];
  if (RAND_bytes(salt, sizeof salt) != 1) return LT_EIO;
  int rc = derive(password, len, salt, log2n, r, p, hash);
  if (rc == 0) {
    char salt_hex[2 * SALT_BYTES + 1], hash_hex[2 * HASH_BYTES + 1];
    to_hex(salt, sizeof salt, salt_hex);
    to_hex(hash, sizeof hash, hash_hex);
    int w = snprintf(out, LT_PASSWORD_HASH_MAX, "scrypt$%d$%d$%d$%s$%s", log2n, r, p, salt_hex, hash_hex);
    if (w < 0 || w >= LT_PASSWORD_HASH_MAX) rc = LT_EINVAL;
  }
  OPENSSL_cleanse(hash, sizeof hash);
  return rc;
}

int lt_password_hash(const char *password, size_t len, char out[LT_PASSWORD_HASH_MAX]) {
  return lt_password_hash_cost(password, len, LT_PASSWORD_LOG2N, LT_PASSWORD_R, LT_PASSWORD_P, out);
}

/* A small decimal field ending at '$'. */
static int field_int(const char **s, int lo, int hi, int *out) {
  const char *p = *s;
  int v = 0, digits = 0;
  while (*p >= '0' && *p <= '9' && digits < 4) v = v * 10 + (*p++ - '0'), digits++;
  if (!digits || *p != '$' || v < lo || v > hi) return LT_EINVAL;
  *out = v;
  *s = p + 1;
  return 0;
}

int lt_password_verify(const char *password, size_t len, const char *encoded) {
  if (!encoded || strncmp(encoded, "scrypt$", 7) != 0) return LT_EINVAL;
  const char *s = encoded + 7;
  int log2n, r, p;
  if (field_int(&s, MIN_LOG2N, MAX_LOG2N, &log2n) || field_int(&s, 1, MAX_R, &r) || field_int(&s, 1, MAX_P, &p))
    return LT_EINVAL;
  const char *dollar = strchr(s, '$');
  if (!dollar) return LT_EINVAL;
  unsigned char salt[SALT_BYTES], want[HASH_BYTES], got[HASH_BYTES];
  if (from_hex(s, (size_t)(dollar - s), salt, sizeof salt) || from_hex(dollar + 1, strlen(dollar + 1), want, sizeof want))
    return LT_EINVAL;
  if (len > LT_PASSWORD_MAX_BYTES) {
    lt_password_waste(password, 0);
    return LT_EAUTH;
  }
  int rc = derive(password, len, salt, log2n, r, p, got);
  if (rc == 0) rc = CRYPTO_memcmp(got, want, sizeof want) == 0 ? 0 : LT_EAUTH;
  OPENSSL_cleanse(got, sizeof got);
  return rc;
}

void lt_password_waste(const char *password, size_t len) {
  static const unsigned char salt[SALT_BYTES] = "lanterna-nobody";
  unsigned char out[HASH_BYTES];
  if (len > LT_PASSWORD_MAX_BYTES) len = LT_PASSWORD_MAX_BYTES;
  derive(password ? password : "", password ? len : 0, salt, LT_PASSWORD_LOG2N, LT_PASSWORD_R, LT_PASSWORD_P, out);
  OPENSSL_cleanse(out, sizeof out);
}

size_t lt_password_chars(const char *p, size_t len) {
  size_t c = 0;
  for (size_t i = 0; i < len; i++)
    if (((unsigned char)p[i] & 0xC0) != 0x80) c++;
  return c;
}
