/* Admin passwords (lanterna users create), hashed with scrypt: slow and
 * memory-hard on purpose, unlike API key secrets (net/auth.h), which are
 * random enough for a plain SHA-256. The encoded form names its own cost
 * so it can be raised later without invalidating stored hashes:
 *
 *   scrypt$<log2 N>$<r>$<p>$<salt, 32 hex>$<hash, 64 hex>
 *
 * Hashing or verifying takes tens of milliseconds and 32 MiB: call these
 * on the worker pool or the command line, never on an HTTP loop thread. */
#ifndef LT_PASSWORD_H
#define LT_PASSWORD_H
#include <stddef.h>

/* Cost of new hashes: N = 2^15, r = 8, p = 1. */
#define LT_PASSWORD_LOG2N 15
#define LT_PASSWORD_R 8
#define LT_PASSWORD_P 1
/* Length rules the CLI enforces, in characters (UTF-8 code points) and bytes. */
#define LT_PASSWORD_MIN_CHARS 12
#define LT_PASSWORD_MAX_BYTES 1024
/* Room for an encoded hash, NUL included. */
#define LT_PASSWORD_HASH_MAX 160

/* Hashes password (len bytes) with a fresh random salt into out. Returns 0,
 * LT_EINVAL (too long) or LT_EIO (no randomness, or scrypt failed). */
int lt_password_hash(const char *password, size_t len, char out[LT_PASSWORD_HASH_MAX]);
/* Same, with the cost given (tests use a small N). */
int lt_password_hash_cost(const char *password, size_t len, int log2n, int r, int p,
                          char out[LT_PASSWORD_HASH_MAX]);
/* 0 when password matches encoded, LT_EAUTH when it does not, LT_EINVAL
 * when encoded is not a hash this build reads (or its cost is outside
 * sane bounds). The comparison takes constant time. */
int lt_password_verify(const char *password, size_t len, const char *encoded);
/* Burns the time of one verification against a fixed hash, so an unknown
 * user name takes as long to refuse as a wrong password. */
void lt_password_waste(const char *password, size_t len);
/* Number of UTF-8 code points in p[0..len). */
size_t lt_password_chars(const char *p, size_t len);

#endif
