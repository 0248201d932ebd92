"""Admin users, browser sessions and the admin API: `lanterna users`, login
and logout, the session cookie's attributes, CSRF protection, expiry, who
may manage projects and keys, and keys made through the API doing real
work."""

from __future__ import annotations

import sqlite3
import subprocess
import time

import pytest
import requests

from ltlib import (HTTP_TIMEOUT, LANTERNA_BIN, SLOW, assert_error, bearer, clean_env, cli_ok, create_key,
                   free_port, make_span, now_ns, poll, run_cli, span_id, trace_id, traces_request)

PASSWORD = "correct horse battery"
JSON_CT = {"Content-Type": "application/json"}


def create_user(data, name="admin", password=PASSWORD, extra=()):
    return subprocess.run([LANTERNA_BIN, "users", "create", name, "--password-stdin", "--data", str(data), *extra],
                          input=password + "\n", capture_output=True, text=True, env=clean_env(), timeout=60 * SLOW)


def login(server, name="admin", password=PASSWORD):
    """A requests.Session holding the server's cookies after a login."""
    s = requests.Session()
    r = s.post(server.url + "/api/v1/auth/login", json={"name": name, "password": password}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    s.login_response = r
    return s


def csrf(sess) -> dict:
    return {"X-CSRF-Token": sess.cookies.get("lt_csrf")}


def set_cookies(r) -> dict:
    """name -> the raw Set-Cookie line, for every cookie the response sets."""
    out = {}
    for line in r.raw.headers.getlist("Set-Cookie"):
        out[line.split("=", 1)[0]] = line
    return out


def attrs(line: str) -> dict:
    parts = [p.strip() for p in line.split(";")]
    d = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        d[k.lower()] = v
    return d


def one_trace():
    tid, root, t = trace_id(), span_id(), now_ns()
    return tid, traces_request([make_span(tid, root, "via-api-key", t, t + 1_000_000)])


@pytest.fixture
def locked(lanterna, tmp_path):
    """A loopback server that requires auth (--require-auth), with one user."""
    data = tmp_path / "locked"
    p = create_user(data)
    assert p.returncode == 0, p.stderr
    return lanterna(data=data, args=["--require-auth"])


# ---- the users command -------------------------------------------------------


def test_users_create_and_list(tmp_path):
    data = tmp_path / "d"
    p = create_user(data, "alice")
    assert p.returncode == 0, p.stderr
    assert "alice" in p.stdout
    assert PASSWORD not in p.stdout + p.stderr
    out = cli_ok("users", "list", data=data)
    assert "alice" in out and "scrypt" not in out and PASSWORD not in out
    # The password is stored as a scrypt hash, never as is.
    db = sqlite3.connect(data / "lanterna.db")
    (h,) = db.execute("SELECT password_hash FROM users WHERE name = 'alice'").fetchone()
    db.close()
    assert h.startswith("scrypt$15$8$1$") and PASSWORD not in h
    p = create_user(data, "alice")
    assert p.returncode != 0 and "alice" in p.stderr and "exists" in p.stderr


def test_users_create_refuses_bad_input(tmp_path):
    data = tmp_path / "d"
    p = create_user(data, "bob", password="short pw")
    assert p.returncode != 0 and "12" in p.stderr, p.stderr
    p = create_user(data, "bob", password="")
    assert p.returncode != 0
    p = create_user(data, "bad name!")
    assert p.returncode != 0 and "user name" in p.stderr
    # Without --password-stdin and without a terminal: say what to do.
    p = subprocess.run([LANTERNA_BIN, "users", "create", "bob", "--data", str(data)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, env=clean_env(), timeout=30 * SLOW)
    assert p.returncode != 0 and "--password-stdin" in p.stderr
    assert "bob" not in cli_ok("users", "list", data=data)
    p = run_cli("users", "frob", data=data)
    assert p.returncode != 0 and "frob" in p.stderr
    p = run_cli("users", "--help")
    assert p.returncode == 0 and "users create" in p.stdout and "--password-stdin" in p.stdout
    assert "users" in run_cli("help").stdout


# ---- login, cookies, logout --------------------------------------------------------


def test_login_sets_strict_session_cookies(locked):
    s = login(locked)
    r = s.login_response
    body = r.json()
    assert body["user"]["name"] == "admin"
    assert r.headers.get("Cache-Control") == "no-store"
    cookies = set_cookies(r)
    assert set(cookies) == {"lt_session", "lt_csrf"}, cookies
    sess, tok = attrs(cookies["lt_session"]), attrs(cookies["lt_csrf"])
    assert "httponly" in sess and sess["samesite"] == "Strict" and sess["path"] == "/"
    assert sess["max-age"] == "604800"
    assert "httponly" not in tok and tok["samesite"] == "Strict" and tok["max-age"] == "604800"
    secret = s.cookies.get("lt_session")
    assert secret.startswith("sk-lt-") and secret not in r.text
    assert body["csrf"] == s.cookies.get("lt_csrf") and len(body["csrf"]) >= 32
    assert body["expires_ns"] > now_ns() + 6 * 86400 * 10**9
    # The session reads the API, and says who it is.
    assert s.get(locked.url + "/api/v1/traces").status_code == 200
    me = s.get(locked.url + "/api/v1/auth/me").json()
    assert me["via"] == "session" and me["user"]["name"] == "admin" and me["auth_required"] is True
    # Behind an HTTPS proxy the cookies are Secure.
    r = requests.post(locked.url + "/api/v1/auth/login", json={"name": "admin", "password": PASSWORD},
                      headers={"X-Forwarded-Proto": "https"}, timeout=HTTP_TIMEOUT)
    assert all("secure" in attrs(c) for c in set_cookies(r).values())
    # Nothing secret reaches the log.
    log = locked.log_text()
    assert PASSWORD not in log and secret not in log and body["csrf"] not in log


def test_login_failures_look_the_same(locked):
    url = locked.url + "/api/v1/auth/login"
    wrong = requests.post(url, json={"name": "admin", "password": "not the password"}, timeout=HTTP_TIMEOUT)
    unknown = requests.post(url, json={"name": "nobody", "password": PASSWORD}, timeout=HTTP_TIMEOUT)
    a, b = assert_error(wrong, 401, "unauthorized"), assert_error(unknown, 401, "unauthorized")
    assert a == b
    assert "Set-Cookie" not in wrong.headers and "Set-Cookie" not in unknown.headers
    assert_error(requests.post(url, json={"name": "admin"}, timeout=HTTP_TIMEOUT), 400, "bad_request")
    assert_error(requests.post(url, json={"name": 5, "password": "x"}, timeout=HTTP_TIMEOUT), 400, "bad_request")
    r = requests.post(url, json={"name": "admin", "password": PASSWORD, "remember": True}, timeout=HTTP_TIMEOUT)
    assert "remember" in assert_error(r, 400, "bad_request")["error"]["message"]
    assert_error(requests.post(url, data="{not json", headers=JSON_CT, timeout=HTTP_TIMEOUT), 400, "bad_request")
    # A form post (what a cross-site page can send without a preflight) is refused.
    r = requests.post(url, data={"name": "admin", "password": PASSWORD}, timeout=HTTP_TIMEOUT)
    assert_error(r, 415, "unsupported_media_type")
    big = '{"name":"admin","password":"' + "x" * 20000 + '"}'
    assert_error(requests.post(url, data=big, headers=JSON_CT, timeout=HTTP_TIMEOUT), 413, "payload_too_large")


def test_csrf_is_required_for_cookie_writes(locked):
    s = login(locked)
    url = locked.url + "/api/v1/projects"
    assert s.get(url).status_code == 200  # reads need no token
    assert_error(s.post(url, json={"name": "p1"}), 403, "csrf")
    assert_error(s.post(url, json={"name": "p1"}, headers={"X-CSRF-Token": "wrong" * 7}), 403, "csrf")
    assert_error(s.post(url, json={"name": "p1"}, headers={"X-CSRF-Token": ""}), 403, "csrf")
    # Every route: the query API's writes too.
    assert_error(s.post(locked.url + "/api/v1/feedback", json={"trace_id": trace_id(), "value": 1}), 403, "csrf")
    r = s.post(url, json={"name": "p1"}, headers=csrf(s))
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "p1"
    assert "p1" in [p["name"] for p in s.get(url).json()["data"]]
    # The token of another login does not fit this one.
    other = login(locked)
    assert_error(s.post(url, json={"name": "p2"}, headers=csrf(other)), 403, "csrf")
    assert_error(s.post(locked.url + "/api/v1/auth/logout"), 403, "csrf")


def test_logout_revokes_the_session(locked):
    s = login(locked)
    old = s.cookies.get("lt_session")
    other = login(locked)
    r = s.post(locked.url + "/api/v1/auth/logout", headers=csrf(s))
    assert r.status_code == 200 and r.json()["logged_out"] is True
    cleared = set_cookies(r)
    assert set(cleared) == {"lt_session", "lt_csrf"}
    assert all(attrs(c)["max-age"] == "0" for c in cleared.values())
    # The old cookie no longer works (revocation reaches every cache within 2 s).
    t0 = time.monotonic()
    poll(lambda: requests.get(locked.url + "/api/v1/traces", cookies={"lt_session": old},
                              timeout=HTTP_TIMEOUT).status_code == 401, timeout=5, what="the session to end")
    assert time.monotonic() - t0 < 3 * SLOW
    r = requests.get(locked.url + "/api/v1/traces", cookies={"lt_session": old}, timeout=HTTP_TIMEOUT)
    assert "log in again" in assert_error(r, 401, "unauthorized")["error"]["message"]
    # A stale cookie: /me says so (anonymous, login required) and drops it.
    r = requests.get(locked.url + "/api/v1/auth/me", cookies={"lt_session": old}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and r.json()["via"] == "anonymous" and r.json()["auth_required"] is True
    assert "lt_session" in set_cookies(r)
    # The other login is untouched; logging out twice is harmless.
    assert other.get(locked.url + "/api/v1/traces").status_code == 200
    r = requests.post(locked.url + "/api/v1/auth/logout", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and r.json()["logged_out"] is False


def test_expired_session_is_refused(locked):
    s = login(locked)
    assert s.get(locked.url + "/api/v1/traces").status_code == 200
    db = sqlite3.connect(locked.data / "lanterna.db", timeout=10)
    with db:
        db.execute("UPDATE api_keys SET expires_ns = ? WHERE user_id IS NOT NULL", (now_ns() - 1,))
    db.close()
    poll(lambda: s.get(locked.url + "/api/v1/traces").status_code == 401, timeout=5, what="expiry to apply")
    assert_error(s.get(locked.url + "/api/v1/projects"), 401, "unauthorized")


def test_sessions_are_not_keys(locked):
    login(locked)
    login(locked)
    out = cli_ok("keys", "list", data=locked.data)
    assert "ws-lt-" not in out
    s = login(locked)
    assert [k for k in s.get(locked.url + "/api/v1/keys").json()["data"] if k["public_key"].startswith("ws-")] == []


# ---- who may administer ------------------------------------------------------------


def test_me_reports_how_a_request_is_authenticated(lanterna, tmp_path):
    data = tmp_path / "d"
    cli_ok("projects", "create", "acme", data=data)
    key = create_key(data, "acme")
    server = lanterna(data=data)
    me = server.api("/api/v1/auth/me")
    assert me == {"via": "anonymous", "user": None, "project_id": 1, "auth_required": False}
    me = server.api("/api/v1/auth/me", headers=bearer(key))
    assert me["via"] == "key" and me["user"] is None and me["project_id"] > 1
    assert_error(server.get("/api/v1/auth/me", headers={"Authorization": "Bearer sk-lt-nope"}), 401, "unauthorized")


def test_admin_endpoints_anonymous_on_loopback(server):
    """The loopback default needs no login: an anonymous browser manages
    projects and keys, and a key made here works for ingest until revoked."""
    r = server.post("/api/v1/projects", json={"name": "acme"})
    assert r.status_code == 201, r.text
    names = [p["name"] for p in server.api("/api/v1/projects")["data"]]
    assert names == ["default", "acme"]
    r = server.post("/api/v1/keys", json={"project": "acme"})
    assert r.status_code == 201, r.text
    key = r.json()
    assert key["project"] == "acme" and key["public_key"].startswith("pk-lt-") and key["secret_key"].startswith("sk-lt-")
    assert r.headers.get("Cache-Control") == "no-store"
    listed = server.api("/api/v1/keys", params={"project": "acme"})["data"]
    assert [k["public_key"] for k in listed] == [key["public_key"]]
    assert key["secret_key"] not in server.get("/api/v1/keys").text
    assert server.api("/api/v1/keys", params={"project": "default"})["data"] == []

    tid, req = one_trace()
    server.export_ok(req, headers=bearer(key))
    assert [t["trace_id"] for t in server.traces(headers=bearer(key))] == [tid]
    assert server.traces() == []  # the anonymous default project does not see acme's data

    r = requests.delete(server.url + "/api/v1/keys/" + key["public_key"], timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and r.json() == {"revoked": key["public_key"]}
    poll(lambda: server.get("/api/v1/traces", headers=bearer(key)).status_code == 401, timeout=5,
         what="the revoked key to be refused")
    assert_error(server.export(req, headers=bearer(key)), 401, "unauthorized")
    row = server.api("/api/v1/keys", params={"project": "acme"})["data"][0]
    assert row["revoked_ns"]
    # Revoking again is fine; the CLI sees the same keys.
    assert requests.delete(server.url + "/api/v1/keys/" + key["public_key"], timeout=HTTP_TIMEOUT).status_code == 200
    assert key["public_key"] in cli_ok("keys", "list", data=server.data)


def test_project_keys_cannot_administer(lanterna, tmp_path):
    data = tmp_path / "d"
    cli_ok("projects", "create", "acme", data=data)
    key = create_key(data, "acme")
    server = lanterna(data=data)
    h = bearer(key)
    assert_error(server.get("/api/v1/projects", headers=h), 403, "forbidden")
    assert_error(server.post("/api/v1/projects", json={"name": "x"}, headers=h), 403, "forbidden")
    assert_error(server.get("/api/v1/keys", headers=h), 403, "forbidden")
    assert_error(server.post("/api/v1/keys", json={"project": "acme"}, headers=h), 403, "forbidden")
    r = requests.delete(server.url + "/api/v1/keys/" + key["public_key"], headers=h, timeout=HTTP_TIMEOUT)
    assert_error(r, 403, "forbidden")
    assert server.traces(headers=h) == []  # the key itself still works


def test_session_administers_when_auth_is_required(locked):
    assert_error(locked.get("/api/v1/projects"), 401, "unauthorized")
    assert_error(locked.post("/api/v1/keys", json={"project": "default"}), 401, "unauthorized")
    assert locked.api("/api/v1/auth/me") == {"via": "anonymous", "user": None, "project_id": None,
                                             "auth_required": True}
    s = login(locked)
    r = s.post(locked.url + "/api/v1/keys", json={"project": "default"}, headers=csrf(s))
    assert r.status_code == 201, r.text
    key = r.json()
    tid, req = one_trace()
    locked.export_ok(req, headers=bearer(key))
    assert [t["trace_id"] for t in s.get(locked.url + "/api/v1/traces").json()["data"]] == [tid]
    r = s.delete(locked.url + "/api/v1/keys/" + key["public_key"], headers=csrf(s))
    assert r.status_code == 200
    poll(lambda: locked.get("/api/v1/traces", headers=bearer(key)).status_code == 401, timeout=5,
         what="the revoked key to be refused")


def test_admin_input_is_validated(server):
    def post(path, body, **kw):
        return requests.post(server.url + path, json=body, timeout=HTTP_TIMEOUT, **kw)

    for bad in ({}, {"name": ""}, {"name": "has space"}, {"name": "x" * 101}, {"name": 3}, {"name": "ok", "x": 1}):
        assert_error(post("/api/v1/projects", bad), 400, "bad_request")
    assert_error(requests.post(server.url + "/api/v1/projects", data="[]", headers=JSON_CT, timeout=HTTP_TIMEOUT),
                 400, "bad_request")
    assert_error(requests.post(server.url + "/api/v1/projects", data='{"name":"a"}', timeout=HTTP_TIMEOUT),
                 415, "unsupported_media_type")
    assert post("/api/v1/projects", {"name": "dup"}).status_code == 201
    assert "dup" in assert_error(post("/api/v1/projects", {"name": "dup"}), 409, "conflict")["error"]["message"]
    assert_error(post("/api/v1/keys", {}), 400, "bad_request")
    assert "nope" in assert_error(post("/api/v1/keys", {"project": "nope"}), 404, "not_found")["error"]["message"]
    assert_error(server.get("/api/v1/keys", params={"project": "nope"}), 404, "not_found")
    assert_error(server.get("/api/v1/keys", params={"project": "bad name"}), 400, "bad_request")
    d = lambda p: requests.delete(server.url + p, timeout=HTTP_TIMEOUT)  # noqa: E731
    assert_error(d("/api/v1/keys/not-a-key"), 400, "bad_request")
    assert_error(d("/api/v1/keys/ws-lt-abc"), 400, "bad_request")
    assert_error(d("/api/v1/keys/pk-lt-doesnotexist"), 404, "not_found")
    r = d("/api/v1/keys")
    assert_error(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]
    assert_error(server.get("/api/v1/keys/pk-lt-abc"), 405, "method_not_allowed")
    assert_error(server.get("/api/v1/keysabc"), 404, "not_found")
    assert_error(server.get("/api/v1/auth/login"), 405, "method_not_allowed")


# ---- start-up ---------------------------------------------------------------------


def test_non_loopback_with_only_a_user_starts(lanterna, tmp_path):
    data = tmp_path / "d"
    assert create_user(data).returncode == 0
    server = lanterna(data=data, host="0.0.0.0")
    assert_error(server.get("/api/v1/traces"), 401, "unauthorized")
    assert server.api("/api/v1/auth/me")["auth_required"] is True
    s = login(server)
    assert s.get(server.url + "/api/v1/traces").status_code == 200


def test_non_loopback_without_keys_or_users_refuses(tmp_path):
    p = subprocess.run([LANTERNA_BIN, "serve", "--listen", f"0.0.0.0:{free_port()}", "--data", str(tmp_path / "d")],
                       capture_output=True, text=True, env=clean_env(), timeout=20 * SLOW)
    assert p.returncode != 0
    assert "users create" in p.stderr and "keys create" in p.stderr and "--insecure-no-auth" in p.stderr
    p = subprocess.run([LANTERNA_BIN, "serve", "--listen", f"127.0.0.1:{free_port()}", "--data", str(tmp_path / "d"),
                        "--require-auth", "--insecure-no-auth"],
                       capture_output=True, text=True, env=clean_env(), timeout=20 * SLOW)
    assert p.returncode != 0 and "--require-auth" in p.stderr


def test_concurrent_logins_are_capped(locked):
    """Password checks are slow on purpose; a burst of logins is answered
    (200 or 503 + Retry-After), never queued without bound."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_):
        return requests.post(locked.url + "/api/v1/auth/login", json={"name": "admin", "password": PASSWORD},
                             timeout=HTTP_TIMEOUT)

    with ThreadPoolExecutor(12) as pool:
        rs = list(pool.map(one, range(12)))
    codes = [r.status_code for r in rs]
    assert set(codes) <= {200, 503}, codes
    assert 200 in codes, codes
    for r in rs:
        if r.status_code == 503:
            assert r.headers.get("Retry-After") == "1"
            assert_error(r, 503, "overloaded")
    assert login(locked).get(locked.url + "/api/v1/traces").status_code == 200
