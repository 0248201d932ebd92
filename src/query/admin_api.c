/* Admin API handlers: login, logout and "who am I" for the web UI, and the
 * projects and keys endpoints. A job carries the validated input to a
 * worker and the status, JSON body and cookies back to the loop thread.
 * Secrets (passwords, session and key secrets) are never logged. */
#include "model/json_out.h"
#include "query/admin_api.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "net/password.h"
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef enum {
  OP_LOGIN,
  OP_LOGOUT,
  OP_ME,
  OP_PROJECTS,
  OP_PROJECT_CREATE,
  OP_KEYS,
  OP_KEY_CREATE,
  OP_KEY_REVOKE,
  OP_LF_PROJECT
} op_t;

typedef enum { COOKIES_KEEP = 0, COOKIES_SET, COOKIES_CLEAR } cookies_t;

typedef struct {
  lt_admin_api_t *admin;
  lt_req_t *req;
  op_t op;
  char name[LT_USER_NAME_MAX + 1]; /* user or project name */
  bool has_name;
  char *password;                  /* login; wiped before it is freed */
  size_t password_len;
  bool counted;                    /* holds a slot of admin->logins */
  char public_key[LT_KEY_MAX];
  lt_auth_result_t who;
  bool auth_required;
  /* Result. */
  int status;
  const char *code;                /* error code, NULL on success */
  char message[300];
  json_t *body;
  cookies_t cookies;
  char session_secret[LT_KEY_MAX];
  char csrf[40];
} job_t;

static void job_free(void *arg) {
  job_t *j = arg;
  if (j->counted) atomic_fetch_sub(&j->admin->logins, 1);
  if (j->password) {
    OPENSSL_cleanse(j->password, j->password_len);
    lt_free(j->password);
  }
  OPENSSL_cleanse(j->session_secret, sizeof j->session_secret);
  json_decref(j->body);
  lt_free(j);
}

static job_t *new_job(lt_req_t *r, lt_admin_api_t *admin, op_t op) {
  job_t *j = lt_calloc(1, sizeof *j);
  if (!j) {
    lt_reply_error(r, 503, "overloaded", "out of memory");
    return NULL;
  }
  j->admin = admin;
  j->req = r;
  j->op = op;
  j->who.project_id = lt_req_project(r);
  j->who.user_id = lt_req_user(r);
  j->who.via = lt_req_auth_via(r);
  snprintf(j->who.public_key, sizeof j->who.public_key, "%s", lt_req_public_key(r));
  return j;
}

static void fail(job_t *j, int status, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void fail(job_t *j, int status, const char *code, const char *fmt, ...) {
  j->status = status;
  j->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(j->message, sizeof j->message, fmt, ap);
  va_end(ap);
}

static void ok(job_t *j, int status, json_t *body) {
  j->status = body ? status : 500;
  j->body = body;
  if (!body) fail(j, 500, "internal", "out of memory");
}

static const char *via_name(lt_auth_via_t v) {
  return v == LT_VIA_SESSION ? "session" : v == LT_VIA_KEY ? "key" : "anonymous";
}

/* ---- replies (loop thread) --------------------------------------------------- */

static void set_cookie(lt_req_t *r, const char *name, const char *value, bool http_only, long max_age) {
  /* Secure when a TLS-terminating proxy in front says the browser used
   * HTTPS; the server itself speaks plain HTTP. */
  const char *proto = lt_req_header(r, "X-Forwarded-Proto");
  bool secure = proto && !strcasecmp(proto, "https");
  char c[256];
  snprintf(c, sizeof c, "%s=%s;%s SameSite=Strict; Path=/; Max-Age=%ld%s", name, value, http_only ? " HttpOnly;" : "",
           max_age, secure ? "; Secure" : "");
  lt_req_set_header(r, "Set-Cookie", c);
  OPENSSL_cleanse(c, sizeof c);
}

static void job_reply(lt_req_t *r, void *arg) {
  job_t *j = arg;
  if (j->cookies == COOKIES_SET) {
    set_cookie(r, LT_SESSION_COOKIE, j->session_secret, true, LT_SESSION_SECONDS);
    set_cookie(r, LT_CSRF_COOKIE, j->csrf, false, LT_SESSION_SECONDS);
  } else if (j->cookies == COOKIES_CLEAR) {
    set_cookie(r, LT_SESSION_COOKIE, "", true, 0);
    set_cookie(r, LT_CSRF_COOKIE, "", false, 0);
  }
  if (j->code) {
    lt_reply_error(r, j->status, j->code, j->message);
  } else {
    char *text = lt_json_dumps(j->body);
    lt_req_set_header(r, "Cache-Control", "no-store"); /* may hold a secret shown once */
    if (text) lt_reply(r, j->status, "application/json", text, strlen(text));
    else lt_reply_error(r, 500, "internal", "out of memory");
    lt_free(text);
  }
  job_free(j);
}

/* ---- worker side ----------------------------------------------------------- */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void rfc3339(int64_t ns, char out[32]) {
  time_t t = (time_t)(ns / 1000000000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *const BAD_LOGIN = "wrong user name or password";

static void do_login(job_t *j, lt_store_t *s) {
  lt_user_t u;
  int rc = s->ops->user_find(s, j->name, &u);
  if (rc == LT_ENOTFOUND) {
    lt_password_waste(j->password, j->password_len); /* as slow as a wrong password */
    fail(j, 401, "unauthorized", "%s", BAD_LOGIN);
    return;
  }
  if (rc) {
    fail(j, 500, "internal", "the login failed; see the server log");
    return;
  }
  rc = lt_password_verify(j->password, j->password_len, u.password_hash);
  OPENSSL_cleanse(u.password_hash, sizeof u.password_hash);
  if (rc == LT_EINVAL) lt_warn("login: the stored password hash of user id %lld is unreadable", (long long)u.id);
  if (rc) {
    fail(j, 401, "unauthorized", "%s", BAD_LOGIN);
    return;
  }
  char pk[LT_KEY_MAX], hash[65];
  int64_t expires = now_ns() + (int64_t)LT_SESSION_SECONDS * 1000000000;
  if ((rc = lt_auth_new_session_key(pk, j->session_secret, hash)) || (rc = lt_auth_random_token(j->csrf, 32)) ||
      (rc = s->ops->session_create(s, j->admin->default_project, u.id, pk, hash, expires, NULL))) {
    lt_error("login: could not start a session: %s", lt_strerror(rc));
    fail(j, 500, "internal", "could not start a session; see the server log");
    return;
  }
  lt_info("login: user '%s' logged in", u.name);
  char when[32];
  rfc3339(expires, when);
  j->cookies = COOKIES_SET;
  ok(j, 200, json_pack("{s:{s:I,s:s},s:s,s:s,s:I,s:I}", "user", "id", (json_int_t)u.id, "name", u.name, "csrf",
                       j->csrf, "expires", when, "expires_ns", (json_int_t)expires, "project_id",
                       (json_int_t)j->admin->default_project));
}

static json_t *user_json(lt_store_t *s, int64_t id) {
  lt_user_t u;
  if (id <= 0 || s->ops->user_get(s, id, &u) != 0) return json_null();
  OPENSSL_cleanse(u.password_hash, sizeof u.password_hash);
  return json_pack("{s:I,s:s}", "id", (json_int_t)u.id, "name", u.name);
}

static int find_project(job_t *j, lt_store_t *s, int64_t *pid) {
  int rc = s->ops->project_find(s, j->name, pid);
  if (rc == LT_ENOTFOUND) fail(j, 404, "not_found", "no project named '%s'", j->name);
  else if (rc) fail(j, 500, "internal", "reading projects failed; see the server log");
  return rc;
}

/* The Langfuse shape of the caller's project (GET /api/public/projects):
 * Langfuse's SDKs call it to check their keys (auth_check). Ids are
 * strings there. */
static json_t *lf_projects(json_t *list, int64_t project_id) {
  json_t *data = json_array();
  size_t i;
  json_t *p;
  json_array_foreach(list, i, p) {
    if (json_integer_value(json_object_get(p, "id")) != project_id) continue;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)project_id);
    json_array_append_new(data, json_pack("{s:s,s:O,s:{s:s,s:s},s:{},s:n}", "id", id, "name",
                                          json_object_get(p, "name"), "organization", "id", "lanterna", "name",
                                          "Lanterna", "metadata", "retentionDays"));
  }
  return data ? json_pack("{s:o}", "data", data) : NULL;
}

static void job_run(void *arg) {
  job_t *j = arg;
  lt_store_t *s = j->admin->api->store;
  json_t *list = NULL;
  int64_t pid = 0;
  int rc;
  switch (j->op) {
  case OP_LOGIN: do_login(j, s); break;
  case OP_LOGOUT:
    rc = s->ops->key_revoke(s, j->who.public_key);
    if (rc && rc != LT_ENOTFOUND) {
      fail(j, 500, "internal", "the logout failed; see the server log");
      break;
    }
    lt_auth_forget_public(j->admin->auth, j->who.public_key);
    j->cookies = COOKIES_CLEAR;
    ok(j, 200, json_pack("{s:b}", "logged_out", 1));
    break;
  case OP_ME:
    ok(j, 200, json_pack("{s:s,s:o,s:I,s:b}", "via", via_name(j->who.via), "user", user_json(s, j->who.user_id),
                         "project_id", (json_int_t)j->who.project_id, "auth_required", j->auth_required));
    break;
  case OP_PROJECTS:
    if ((rc = s->ops->project_list(s, &list))) fail(j, 500, "internal", "listing projects failed; see the server log");
    else ok(j, 200, json_pack("{s:o}", "data", list));
    break;
  case OP_LF_PROJECT:
    if ((rc = s->ops->project_list(s, &list))) fail(j, 500, "internal", "reading the project failed; see the server log");
    else ok(j, 200, lf_projects(list, j->who.project_id));
    json_decref(list);
    break;
  case OP_PROJECT_CREATE:
    rc = s->ops->project_create(s, j->name, &pid);
    if (rc == LT_EEXISTS) fail(j, 409, "conflict", "a project named '%s' already exists", j->name);
    else if (rc) fail(j, 500, "internal", "creating the project failed; see the server log");
    else {
      lt_info("admin: project '%s' created (%s)", j->name, via_name(j->who.via));
      ok(j, 201, json_pack("{s:I,s:s}", "id", (json_int_t)pid, "name", j->name));
    }
    break;
  case OP_KEYS:
    if (j->has_name && find_project(j, s, &pid)) break;
    if ((rc = s->ops->key_list(s, pid, &list))) fail(j, 500, "internal", "listing keys failed; see the server log");
    else ok(j, 200, json_pack("{s:o}", "data", list));
    break;
  case OP_KEY_CREATE: {
    if (find_project(j, s, &pid)) break;
    char pk[LT_KEY_MAX], sk[LT_KEY_MAX], hash[65];
    int64_t id = 0;
    if ((rc = lt_auth_new_key(pk, sk, hash)) || (rc = s->ops->key_create(s, pid, pk, hash, &id))) {
      fail(j, rc == LT_ENOTFOUND ? 404 : 500, rc == LT_ENOTFOUND ? "not_found" : "internal",
           rc == LT_ENOTFOUND ? "the project no longer exists" : "creating the key failed; see the server log");
    } else {
      lt_info("admin: key %s created for project '%s' (%s)", pk, j->name, via_name(j->who.via));
      ok(j, 201, json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)id, "project", j->name, "public_key", pk,
                           "secret_key", sk));
    }
    OPENSSL_cleanse(sk, sizeof sk);
    break;
  }
  case OP_KEY_REVOKE:
    rc = s->ops->key_revoke(s, j->public_key);
    if (rc == LT_ENOTFOUND) fail(j, 404, "not_found", "no key with public key '%s'", j->public_key);
    else if (rc) fail(j, 500, "internal", "revoking the key failed; see the server log");
    else {
      lt_auth_forget_public(j->admin->auth, j->public_key);
      lt_info("admin: key %s revoked (%s)", j->public_key, via_name(j->who.via));
      ok(j, 200, json_pack("{s:s}", "revoked", j->public_key));
    }
    break;
  }
  lt_req_post(j->req, job_reply, j);
}

static void submit(lt_req_t *r, job_t *j) { lt_api_submit(j->admin->api, r, job_run, j, job_free); }

/* ---- input ------------------------------------------------------------------- */

/* JSON bodies only: a cross-site form cannot send this content type
 * without a CORS preflight, which this server never grants. */
static bool json_content(lt_req_t *r) {
  const char *ct = lt_req_header(r, "Content-Type");
  if (ct && !strncasecmp(ct, "application/json", 16) && (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' '))
    return true;
  lt_reply_error(r, 415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json");
  return false;
}

/* The body as a JSON object whose keys are all in allowed (NULL-ended);
 * replies and returns NULL otherwise. */
static json_t *read_object(lt_req_t *r, const char *const *allowed) {
  if (!json_content(r)) return NULL;
  lt_str_t body = lt_req_body(r);
  if (body.len > LT_ADMIN_MAX_BODY) {
    lt_reply_error(r, 413, "payload_too_large", "the body exceeds 16 KiB");
    return NULL;
  }
  json_error_t err;
  json_t *doc = json_loadb(body.ptr ? body.ptr : "", body.len, JSON_REJECT_DUPLICATES, &err);
  char m[300];
  if (!doc) {
    if (body.len == 0) snprintf(m, sizeof m, "the body is empty: send a JSON object");
    else snprintf(m, sizeof m, "the body is not a valid JSON object: %s", err.text);
    lt_reply_error(r, 400, "bad_request", m);
    return NULL;
  }
  const char *key;
  json_t *v;
  json_object_foreach(doc, key, v) {
    bool known = false;
    for (const char *const *a = allowed; *a; a++) known = known || !strcmp(key, *a);
    if (!known) {
      snprintf(m, sizeof m, "unknown field '%.100s'", key);
      json_decref(doc);
      lt_reply_error(r, 400, "bad_request", m);
      return NULL;
    }
  }
  return doc;
}

/* A required string field of 1..max bytes (no NUL inside). Replies and
 * returns false when it is missing or bad. */
static bool str_field(lt_req_t *r, json_t *doc, const char *key, size_t max, const char **val, size_t *len) {
  json_t *v = json_object_get(doc, key);
  char m[160];
  if (!v || json_is_null(v)) snprintf(m, sizeof m, "%s: required", key);
  else if (!json_is_string(v)) snprintf(m, sizeof m, "%s: expected a string", key);
  else if (json_string_length(v) == 0 || json_string_length(v) > max)
    snprintf(m, sizeof m, "%s: expected 1 to %zu characters", key, max);
  else if (strlen(json_string_value(v)) != json_string_length(v)) snprintf(m, sizeof m, "%s: must not contain NUL", key);
  else {
    *val = json_string_value(v);
    *len = json_string_length(v);
    return true;
  }
  lt_reply_error(r, 400, "bad_request", m);
  return false;
}

/* Project names, as the command line accepts them. */
static bool project_name_ok(const char *s, size_t n) {
  if (n == 0 || n > 100) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!(c == '-' || c == '_' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
      return false;
  }
  return true;
}

static bool project_field(lt_req_t *r, json_t *doc, const char *key, job_t *j) {
  const char *v;
  size_t n;
  if (!str_field(r, doc, key, 100, &v, &n)) return false;
  if (!project_name_ok(v, n)) {
    char m[160];
    snprintf(m, sizeof m, "%s: a project name is 1 to 100 letters, digits, '-', '_' or '.'", key);
    lt_reply_error(r, 400, "bad_request", m);
    return false;
  }
  memcpy(j->name, v, n + 1);
  j->has_name = true;
  return true;
}

/* Admin endpoints: a session, or anonymous where anonymous is allowed
 * (an anonymous request only gets this far when it is). */
static bool admin_allowed(lt_req_t *r) {
  lt_auth_via_t v = lt_req_auth_via(r);
  if (v == LT_VIA_SESSION || v == LT_VIA_ANONYMOUS) return true;
  lt_reply_error(r, 403, "forbidden",
                 "a project API key cannot manage projects and keys: log in with an admin account "
                 "(lanterna users create) or use the lanterna command line");
  return false;
}

static void method_not_allowed(lt_req_t *r, const char *allow) {
  lt_req_set_header(r, "Allow", allow);
  lt_reply_error(r, 405, "method_not_allowed", "this path does not accept that method");
}

/* ---- handlers ---------------------------------------------------------------- */

void lt_admin_login(lt_req_t *r, void *ud) {
  static const char *const fields[] = {"name", "password", NULL};
  json_t *doc = read_object(r, fields);
  if (!doc) return;
  const char *name, *pw;
  size_t nl, pl;
  if (!str_field(r, doc, "name", LT_USER_NAME_MAX, &name, &nl) ||
      !str_field(r, doc, "password", LT_PASSWORD_MAX_BYTES, &pw, &pl)) {
    json_decref(doc);
    return;
  }
  job_t *j = new_job(r, ud, OP_LOGIN);
  if (j) {
    memcpy(j->name, name, nl + 1);
    j->password = lt_malloc(pl + 1);
    if (j->password) {
      memcpy(j->password, pw, pl + 1);
      j->password_len = pl;
    }
  }
  /* jansson keeps its own copy: wipe it before the document goes. */
  OPENSSL_cleanse((char *)pw, pl);
  json_decref(doc);
  if (!j) return;
  if (!j->password) {
    job_free(j);
    lt_reply_error(r, 503, "overloaded", "out of memory");
    return;
  }
  if (atomic_fetch_add(&j->admin->logins, 1) >= LT_LOGINS_IN_FLIGHT) {
    atomic_fetch_sub(&j->admin->logins, 1);
    job_free(j);
    lt_reply_error(r, 503, "overloaded", "too many logins in progress; retry in a second");
    return;
  }
  j->counted = true;
  submit(r, j);
}

void lt_admin_logout(lt_req_t *r, void *ud) {
  int rc = lt_req_try_auth(r);
  if (rc == LT_EFORBIDDEN) {
    lt_reply_error(r, 403, "csrf", "missing or wrong " LT_CSRF_HEADER " header: send the value of the "
                                   LT_CSRF_COOKIE " cookie");
    return;
  }
  job_t *j = new_job(r, ud, OP_LOGOUT);
  if (!j) return;
  if (rc == 0 && j->who.via == LT_VIA_SESSION) {
    submit(r, j);
    return;
  }
  /* Not logged in (or the session is already gone): just drop the cookies. */
  j->cookies = COOKIES_CLEAR;
  ok(j, 200, json_pack("{s:b}", "logged_out", 0));
  job_reply(r, j);
}

void lt_admin_me(lt_req_t *r, void *ud) {
  lt_admin_api_t *admin = ud;
  int rc = lt_req_try_auth(r);
  bool header = lt_req_header(r, "Authorization") != NULL;
  if (rc == LT_EAUTH && header) {
    lt_reply_error(r, 401, "unauthorized", "the API key is not valid (revoked or unknown)");
    return;
  }
  job_t *j = new_job(r, ud, OP_ME);
  if (!j) return;
  j->auth_required = !lt_auth_allows_anonymous(admin->auth);
  /* A stale session cookie: tell the browser to drop it. */
  if (rc == LT_EAUTH && lt_req_has_credentials(r)) j->cookies = COOKIES_CLEAR;
  if (j->who.via == LT_VIA_SESSION) {
    submit(r, j);
    return;
  }
  json_t *o = json_pack("{s:s,s:n,s:o,s:b}", "via", via_name(j->who.via), "user", "project_id",
                        j->who.project_id > 0 ? json_integer(j->who.project_id) : json_null(), "auth_required",
                        j->auth_required);
  ok(j, 200, o);
  job_reply(r, j);
}

void lt_admin_lf_projects(lt_req_t *r, void *ud) {
  job_t *j = new_job(r, ud, OP_LF_PROJECT);
  if (j) submit(r, j);
}

void lt_admin_projects(lt_req_t *r, void *ud) {
  if (!admin_allowed(r)) return;
  if (lt_req_method(r) == LT_GET) {
    job_t *j = new_job(r, ud, OP_PROJECTS);
    if (j) submit(r, j);
    return;
  }
  static const char *const fields[] = {"name", NULL};
  json_t *doc = read_object(r, fields);
  if (!doc) return;
  job_t *j = new_job(r, ud, OP_PROJECT_CREATE);
  if (j && !project_field(r, doc, "name", j)) {
    job_free(j);
    j = NULL;
  }
  json_decref(doc);
  if (j) submit(r, j);
}

void lt_admin_keys(lt_req_t *r, void *ud) {
  lt_str_t path = lt_req_path(r);
  const char *base = "/api/v1/keys";
  size_t bl = strlen(base);
  bool collection = path.len == bl || (path.len == bl + 1 && path.ptr[bl] == '/');
  if (!collection && (path.len <= bl + 1 || path.ptr[bl] != '/')) {
    lt_reply_error(r, 404, "not_found", "no such endpoint");
    return;
  }
  int m = lt_req_method(r);
  if (collection != (m != LT_DELETE)) {
    method_not_allowed(r, collection ? "GET, POST" : "DELETE");
    return;
  }
  if (!admin_allowed(r)) return;

  if (m == LT_GET) {
    job_t *j = new_job(r, ud, OP_KEYS);
    if (!j) return;
    const char *p = lt_req_query(r, "project");
    if (p) {
      if (!project_name_ok(p, strlen(p))) {
        job_free(j);
        lt_reply_error(r, 400, "bad_request", "project: a project name is 1 to 100 letters, digits, '-', '_' or '.'");
        return;
      }
      snprintf(j->name, sizeof j->name, "%s", p);
      j->has_name = true;
    }
    submit(r, j);
    return;
  }
  if (m == LT_POST) {
    static const char *const fields[] = {"project", NULL};
    json_t *doc = read_object(r, fields);
    if (!doc) return;
    job_t *j = new_job(r, ud, OP_KEY_CREATE);
    if (j && !project_field(r, doc, "project", j)) {
      job_free(j);
      j = NULL;
    }
    json_decref(doc);
    if (j) submit(r, j);
    return;
  }
  /* DELETE /api/v1/keys/{public_key} */
  const char *pk = path.ptr + bl + 1;
  size_t n = path.len - bl - 1;
  bool good = n > 6 && n < LT_KEY_MAX && !strncmp(pk, "pk-lt-", 6);
  for (size_t i = 6; good && i < n; i++)
    good = (pk[i] >= '0' && pk[i] <= '9') || (pk[i] >= 'a' && pk[i] <= 'z') || (pk[i] >= 'A' && pk[i] <= 'Z');
  if (!good) {
    lt_reply_error(r, 400, "bad_request", "expected a public key: pk-lt- followed by letters and digits");
    return;
  }
  job_t *j = new_job(r, ud, OP_KEY_REVOKE);
  if (!j) return;
  memcpy(j->public_key, pk, n);
  j->public_key[n] = '\0';
  submit(r, j);
}
