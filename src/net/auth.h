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
#include "net/http.h"
#include "store/store.h"

#define LT_AUTH_CACHE_SECONDS 2
#define LT_KEY_MAX 64

typedef struct lt_auth lt_auth_t;

/* allow_anonymous: a request without credentials belongs to
 * default_project (loopback-only listeners). s is not owned. */
lt_auth_t *lt_auth_new(lt_store_t *s, bool allow_anonymous, int64_t default_project);
void lt_auth_free(lt_auth_t *a);
/* lt_auth_fn (net/http.h): authz is the Authorization header or NULL.
 * Returns 0 with *out filled (via LT_VIA_SESSION for a session key), or
 * LT_EAUTH: unknown, revoked or expired keys, or no credentials when
 * anonymous requests are not allowed. */
int lt_auth_resolve(void *auth, const char *authz, lt_auth_result_t *out);
/* The same, for callers that only need the project. */
int lt_auth_check(void *auth, const char *authz, int64_t *project_id);
/* Whether a request without credentials is accepted. */
bool lt_auth_allows_anonymous(const lt_auth_t *a);
/* Drops cached verdicts so a revocation applies at once in this process
 * (other processes still see it within LT_AUTH_CACHE_SECONDS): by the
 * secret, or by the public key. */
void lt_auth_forget_secret(lt_auth_t *a, const char *secret);
void lt_auth_forget_public(lt_auth_t *a, const char *public_key);

/* Generates a fresh key pair: pk and sk NUL-terminated (< LT_KEY_MAX),
 * and sk's hash (64 hex chars + NUL). Returns 0 or LT_EIO (no entropy). */
int lt_auth_new_key(char pk[LT_KEY_MAX], char sk[LT_KEY_MAX], char sk_hash[65]);
/* A browser session's key pair: the public key is ws-lt-… instead of
 * pk-lt-…; the secret (sk-lt-…) goes into the session cookie. */
#define LT_SESSION_KEY_PREFIX "ws-lt-"
int lt_auth_new_session_key(char pk[LT_KEY_MAX], char sk[LT_KEY_MAX], char sk_hash[65]);
/* n random characters from [0-9a-zA-Z] (n <= 32) + NUL: the CSRF token. */
int lt_auth_random_token(char *out, size_t n);
/* SHA-256 of secret as lowercase hex. */
void lt_auth_hash(const char *secret, size_t len, char out[65]);

#endif
