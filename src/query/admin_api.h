/* Admin API: logging in to the web UI and managing projects and API keys
 * (docs/api.md, Authentication and Admin). As in api.h, handlers validate
 * on the loop thread and run the store calls (and the deliberately slow
 * password check) on the worker pool; replies go out on the loop thread.
 *
 * Who may use the admin endpoints (/api/v1/projects, /api/v1/keys): a
 * browser session (an admin user logged in), or an anonymous request where
 * the server accepts anonymous requests (the loopback default). A project
 * API key gets 403: keys are for sending and reading data. */
#ifndef LT_ADMIN_API_H
#define LT_ADMIN_API_H
#include <stdatomic.h>
#include "net/auth.h"
#include "net/http.h"
#include "query/api.h"

/* Largest body accepted by the login and admin endpoints. */
#define LT_ADMIN_MAX_BODY (16u * 1024)
/* How long a login lasts. */
#define LT_SESSION_SECONDS (7 * 24 * 3600)
/* Password checks running at once (each takes ~32 MiB and a worker for
 * tens of milliseconds); more logins meanwhile get 503 + Retry-After, so
 * a login flood can neither starve the query API nor guess fast. */
#define LT_LOGINS_IN_FLIGHT 2

typedef struct {
  lt_api_t *api;
  lt_auth_t *auth;
  int64_t default_project; /* sessions belong to it */
  atomic_int logins;       /* password checks in flight */
} lt_admin_api_t;

/* POST /api/v1/auth/login (a route without auth), POST /api/v1/auth/logout
 * and GET /api/v1/auth/me (routes without auth: they resolve the caller
 * themselves, lt_req_try_auth). */
void lt_admin_login(lt_req_t *r, void *admin);
void lt_admin_logout(lt_req_t *r, void *admin);
void lt_admin_me(lt_req_t *r, void *admin);
/* GET/POST /api/v1/projects; GET/POST /api/v1/keys and DELETE
 * /api/v1/keys/{public_key} (a prefix route). Routes with auth. */
void lt_admin_projects(lt_req_t *r, void *admin);
void lt_admin_keys(lt_req_t *r, void *admin);
/* GET /api/public/projects: the caller's project in Langfuse's shape, so
 * a Langfuse SDK's auth_check passes with a Lanterna key. Route with auth. */
void lt_admin_lf_projects(lt_req_t *r, void *admin);

#endif
