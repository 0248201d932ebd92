/* API keys and request authentication. A key is a pair: a public key
 * (pk-lt-…, an identifier, stored as is) and a secret key (sk-lt-…, 192
 * random bits, stored only as its SHA-256). High-entropy secrets need no
 * slow password hash: SHA-256 cannot be reversed for them, and a fast
 * hash keeps per-request checks cheap. Verified keys are cached for a
 * couple of seconds so a request costs no database read; revocation
 * therefore takes effect within LT_AUTH_CACHE_SECONDS. */
#ifndef LT_AUTH_H
#define LT_AUTH_H
#include <stdbool.h>
#include <stdint.h>
#include "store/store.h"

#define LT_AUTH_CACHE_SECONDS 2
#define LT_KEY_MAX 64

typedef struct lt_auth lt_auth_t;

/* allow_anonymous: a request without credentials belongs to
 * default_project (loopback-only listeners). s is not owned. */
lt_auth_t *lt_auth_new(lt_store_t *s, bool allow_anonymous, int64_t default_project);
void lt_auth_free(lt_auth_t *a);
/* lt_auth_fn (net/http.h): authz is the Authorization header or NULL.
 * Returns 0 with *project_id set, or LT_EAUTH. */
int lt_auth_check(void *auth, const char *authz, int64_t *project_id);

/* Generates a fresh key pair: pk and sk NUL-terminated (< LT_KEY_MAX),
 * and sk's hash (64 hex chars + NUL). Returns 0 or LT_EIO (no entropy). */
int lt_auth_new_key(char pk[LT_KEY_MAX], char sk[LT_KEY_MAX], char sk_hash[65]);
/* SHA-256 of secret as lowercase hex. */
void lt_auth_hash(const char *secret, size_t len, char out[65]);

#endif
