"""Projects and API keys: isolation in both directions on every read path,
Bearer and Basic, bad keys, revocation, and the non-loopback start rule."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from ltlib import (LANTERNA_BIN, SLOW, assert_error, basic, bearer, clean_env, cli_ok, create_key, free_port,
                   make_span, now_ns, parse_export_response, poll, run_cli, span_id, trace_id, traces_request)


def one_trace(session: str, name: str = "t"):
    tid, root, child, t = trace_id(), span_id(), span_id(), now_ns()
    req = traces_request([
        make_span(tid, root, name, t, t + 10_000_000, attrs={"session.id": session, "user.id": "u-" + session}),
        make_span(tid, child, "chat", t + 1_000_000, t + 9_000_000, parent=root,
                  attrs={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"})])
    return tid, req


def tids(rows):
    return sorted(r["trace_id"] for r in rows)


@pytest.fixture
def two_projects(lanterna, tmp_path):
    data = tmp_path / "auth-data"
    cli_ok("projects", "create", "acme", data=data)
    cli_ok("projects", "create", "globex", data=data)
    acme = create_key(data, "acme")
    globex = create_key(data, "globex")
    server = lanterna(data=data)
    return server, data, acme, globex


def test_keys_have_the_documented_format(two_projects):
    _, _, acme, globex = two_projects
    for k in (acme, globex):
        assert k["public_key"].startswith("pk-lt-") and len(k["public_key"]) > 12
        assert k["secret_key"].startswith("sk-lt-") and len(k["secret_key"]) >= 6 + 32
    assert acme["secret_key"] != globex["secret_key"]


def test_isolation_both_directions(two_projects):
    server, _, acme, globex = two_projects
    ta, req_a = one_trace("sess-acme", "acme-root")
    tg, req_g = one_trace("sess-globex", "globex-root")
    td, req_d = one_trace("sess-default", "default-root")
    server.export_ok(req_a, headers=bearer(acme))
    server.export_ok(req_g, "json", headers=basic(globex))
    server.export_ok(req_d)  # loopback, no credentials: the default project

    assert tids(server.traces(headers=bearer(acme))) == [ta]
    assert tids(server.traces(headers=basic(acme))) == [ta]
    assert tids(server.traces(headers=bearer(globex))) == [tg]
    assert tids(server.traces()) == [td]

    views = {"acme": bearer(acme), "globex": bearer(globex), "default": None}
    owner = {ta: "acme", tg: "globex", td: "default"}
    for tid, who in owner.items():
        for viewer, h in views.items():
            r = server.get(f"/api/v1/traces/{tid}", headers=h)
            if viewer == who:
                assert r.status_code == 200 and r.json()["trace"]["trace_id"] == tid
            else:
                assert_error(r, 404, "not_found")
            sess = f"sess-{who}"
            r = server.get(f"/api/v1/sessions/{sess}", headers=h)
            if viewer == who:
                assert r.status_code == 200 and [t["trace_id"] for t in r.json()["traces"]] == [tid]
            else:
                assert_error(r, 404, "not_found")
    mine = {"acme": ta, "globex": tg, "default": td}
    for viewer, h in views.items():
        assert {s["trace_id"] for s in server.spans(headers=h)} == {mine[viewer]}, viewer
        assert [s["session_id"] for s in server.api("/api/v1/sessions", headers=h)["data"]] == [f"sess-{viewer}"]
        assert [s["trace_id"] for s in server.spans(headers=h, kind="LLM")] == [mine[viewer]]


def test_same_ids_in_two_projects_are_distinct(two_projects):
    """Idempotency is per (project, trace_id, span_id): the same spans sent to
    another project are stored there too."""
    server, _, acme, globex = two_projects
    tid, req = one_trace("s")
    server.export_ok(req, headers=bearer(acme))
    r = server.export_ok(req, headers=bearer(globex))
    assert parse_export_response(r)["rejected"] == 0
    assert server.trace(tid, headers=bearer(acme))["trace"]["span_count"] == 2
    assert server.trace(tid, headers=bearer(globex))["trace"]["span_count"] == 2
    assert server.stats()["store"]["spans"] == 4


def test_full_text_search_is_scoped(two_projects):
    server, _, acme, globex = two_projects
    tid, root, t = trace_id(), span_id(), now_ns()
    req = traces_request([make_span(tid, root, "secret", t, t + 1000,
                                    attrs={"input.value": "the platypus plan", "output.value": "ok"})])
    server.export_ok(req, headers=bearer(acme))
    poll(lambda: server.traces(headers=bearer(acme), q="platypus"), timeout=15, what="FTS to index")
    assert server.traces(headers=bearer(globex), q="platypus") == []
    assert server.traces(q="platypus") == []


@pytest.mark.parametrize("how", ["bearer-unknown", "basic-wrong-secret", "basic-mixed-projects",
                                 "basic-garbage", "bearer-empty", "pk-as-bearer"])
def test_bad_credentials_are_401_on_loopback(two_projects, how):
    server, _, acme, globex = two_projects
    h = {
        "bearer-unknown": {"Authorization": "Bearer sk-lt-" + "0" * 48},
        "basic-wrong-secret": basic({"public_key": acme["public_key"], "secret_key": "sk-lt-wrong"}),
        "basic-mixed-projects": basic({"public_key": acme["public_key"], "secret_key": globex["secret_key"]}),
        "basic-garbage": {"Authorization": "Basic !!!not-base64!!!"},
        "bearer-empty": {"Authorization": "Bearer "},
        "pk-as-bearer": {"Authorization": "Bearer " + acme["public_key"]},
    }[how]
    assert_error(server.get("/api/v1/traces", headers=h), 401, "unauthorized")
    _, req = one_trace("x")
    assert_error(server.export(req, headers=h), 401, "unauthorized")
    assert_error(server.export(req, "json", headers=h), 401, "unauthorized")
    assert server.stats()["store"]["spans"] == 0


def test_revoke_takes_effect_within_seconds(two_projects):
    server, data, acme, globex = two_projects
    assert server.traces(headers=bearer(acme)) == []
    cli_ok("keys", "revoke", acme["public_key"], data=data)
    t0 = time.monotonic()
    poll(lambda: server.get("/api/v1/traces", headers=bearer(acme)).status_code == 401,
         timeout=5, what="the revoked key to be refused")
    assert time.monotonic() - t0 < 5 * SLOW
    _, req = one_trace("x")
    assert_error(server.export(req, headers=bearer(acme)), 401, "unauthorized")
    assert_error(server.export(req, headers=basic(acme)), 401, "unauthorized")
    assert server.traces(headers=bearer(globex)) == []  # the other key still works
    # And after a restart too.
    server.restart()
    assert_error(server.get("/api/v1/traces", headers=bearer(acme)), 401, "unauthorized")


def test_keys_and_projects_list(tmp_path):
    data = tmp_path / "d"
    cli_ok("projects", "create", "acme", data=data)
    cli_ok("projects", "create", "globex", data=data)
    a1, a2, g = create_key(data, "acme"), create_key(data, "acme"), create_key(data, "globex")
    projects = cli_ok("projects", "list", data=data)
    for name in ("default", "acme", "globex"):
        assert re.search(rf"(^|\W){name}(\W|$)", projects, re.M), projects
    out = cli_ok("keys", "list", data=data)
    for k in (a1, a2, g):
        assert k["public_key"] in out
        assert k["secret_key"] not in out and k["secret_key"][6:] not in out, "keys list shows a secret"
    assert "sk-lt-" not in out
    out = cli_ok("keys", "list", "--project", "acme", data=data)
    assert a1["public_key"] in out and a2["public_key"] in out and g["public_key"] not in out
    cli_ok("keys", "revoke", a1["public_key"], data=data)
    out = cli_ok("keys", "list", "--project", "acme", data=data)
    try:
        entries = json.loads(out)
    except ValueError:  # a table: the key's line must say it is revoked
        line = [ln for ln in out.splitlines() if a1["public_key"] in ln]
        assert not line or "revoked" in line[0].lower(), f"a revoked key is listed as if active: {line}"
    else:
        e = {x["public_key"]: x for x in entries}
        assert e[a1["public_key"]].get("revoked_ns") or e[a1["public_key"]].get("revoked"), entries
        assert not e[a2["public_key"]].get("revoked_ns") and not e[a2["public_key"]].get("revoked"), entries


def test_cli_key_errors(tmp_path):
    data = tmp_path / "d"
    p = run_cli("keys", "create", "--project", "no-such-project", data=data)
    assert p.returncode != 0
    assert "no-such-project" in p.stderr + p.stdout
    p = run_cli("keys", "revoke", "pk-lt-doesnotexist", data=data)
    assert p.returncode != 0 and (p.stderr + p.stdout).strip()
    cli_ok("projects", "create", "dup", data=data)
    p = run_cli("projects", "create", "dup", data=data)
    assert p.returncode != 0 and "dup" in p.stderr + p.stdout


def serve_and_wait(args, timeout=10):
    """Runs `lanterna serve ...` expecting it to exit by itself."""
    try:
        return subprocess.run([LANTERNA_BIN, "serve", *args], capture_output=True, text=True,
                              env=clean_env(), timeout=timeout * SLOW)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"lanterna serve {' '.join(args)} kept running: it must refuse to start\n"
                             f"{e.stderr}") from None


def test_non_loopback_without_keys_refuses_to_start(tmp_path):
    port = free_port()
    p = serve_and_wait(["--listen", f"0.0.0.0:{port}", "--data", str(tmp_path / "d")])
    assert p.returncode != 0
    assert "--insecure-no-auth" in p.stderr + p.stdout, p.stderr
    p = subprocess.run([LANTERNA_BIN, "serve", "--data", str(tmp_path / "d")], capture_output=True, text=True,
                       env=clean_env({"LANTERNA_LISTEN": f"0.0.0.0:{port}"}), timeout=10 * SLOW)
    assert p.returncode != 0 and "--insecure-no-auth" in p.stderr + p.stdout


def test_non_loopback_insecure_no_auth_starts(lanterna):
    server = lanterna(host="0.0.0.0", args=["--insecure-no-auth"])
    tid, req = one_trace("s")
    server.export_ok(req)
    assert tids(server.traces()) == [tid]


def test_non_loopback_with_keys_requires_them(lanterna, tmp_path):
    data = tmp_path / "d"
    cli_ok("projects", "create", "acme", data=data)
    key = create_key(data, "acme")
    server = lanterna(data=data, host="0.0.0.0")
    tid, req = one_trace("s")
    assert_error(server.export(req), 401, "unauthorized")
    assert_error(server.get("/api/v1/traces"), 401, "unauthorized")
    server.export_ok(req, headers=bearer(key))
    assert tids(server.traces(headers=basic(key))) == [tid]
    assert server.api("/healthz") == {"status": "ok"}


def test_sdk_exporter_with_key(two_projects):
    """A stock OTLP exporter configured with the key as a header."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    server, _, acme, globex = two_projects
    results = []

    class Rec(OTLPSpanExporter):
        def export(self, spans):
            results.append(super().export(spans).name)
            return results[-1]

    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(Rec(endpoint=server.url + "/v1/traces", headers=bearer(acme))))
    with tp.get_tracer("t").start_as_current_span("with-key") as s:
        s.set_attribute("gen_ai.request.model", "gpt-4o-mini")
    tp.shutdown()
    assert results == ["SUCCESS"]
    tid = format(s.get_span_context().trace_id, "032x")
    assert tids(server.traces(headers=basic(acme))) == [tid]
    assert server.traces(headers=bearer(globex)) == [] and server.traces() == []
