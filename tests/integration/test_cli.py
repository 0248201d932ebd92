"""The command line: help, version, errors that say what to do, and the
environment-variable form of the serve flags."""

from __future__ import annotations

import json
import re
import subprocess
import time

import requests

from ltlib import LANTERNA_BIN, SLOW, clean_env, free_port, run_cli


def out(p):
    return p.stdout + p.stderr


def test_help():
    for args in (["--help"], ["help"], ["-h"]):
        p = run_cli(*args)
        assert p.returncode == 0, out(p)
        for cmd in ("serve", "projects", "keys", "version", "help"):
            assert cmd in p.stdout, f"`lanterna {' '.join(args)}` does not mention {cmd}:\n{out(p)}"


def test_no_arguments_prints_usage():
    p = run_cli()
    assert "serve" in out(p) and "usage" in out(p).lower(), out(p)


def test_version():
    p = run_cli("version")
    assert p.returncode == 0, out(p)
    assert re.search(r"\b\d+\.\d+\.\d+\b", p.stdout), p.stdout


def test_serve_help_does_not_start_a_server():
    p = run_cli("serve", "--help", timeout=10)
    assert p.returncode == 0, out(p)
    for flag in ("--listen", "--data", "--storage", "--durability", "--compression", "--retention", "--insecure-no-auth",
                 "--log-level", "LANTERNA_"):
        assert flag in p.stdout, f"serve --help does not mention {flag}"


def test_help_on_every_command():
    for cmd in (["projects"], ["keys"], ["help", "serve"], ["help", "keys"]):
        p = run_cli(*cmd, "--help") if cmd[0] != "help" else run_cli(*cmd)
        assert p.returncode == 0, f"lanterna {' '.join(cmd)} --help: {out(p)}"
        assert "Usage" in p.stdout or "usage" in p.stdout


def test_unknown_subcommand():
    p = run_cli("frobnicate")
    assert p.returncode != 0
    assert "frobnicate" in p.stderr, p.stderr
    assert "help" in p.stderr.lower(), "the error should say what to do (e.g. run `lanterna help`)"


def test_bad_flags(tmp_path):
    cases = [
        (["serve", "--bogus-flag"], "bogus-flag"),
        (["serve", "--listen", "nonsense"], "HOST:PORT"),
        (["serve", "--listen"], "--listen"),
        (["serve", "--durability", "maybe"], "--durability"),
        (["serve", "--compression", "brotli"], "--compression"),
        (["serve", "--retention", "forever"], "--retention"),
        (["serve", "--storage", "oracle"], "--storage"),
        (["serve", "--log-level", "loud"], "--log-level"),
        (["keys", "create"], "--project"),
        (["projects", "frob"], "frob"),
    ]
    for args, must in cases:
        p = run_cli(*args, "--data", str(tmp_path / "d"), timeout=10)
        assert p.returncode != 0, f"lanterna {' '.join(args)} exited 0: {out(p)}"
        assert must in p.stderr, f"lanterna {' '.join(args)}: stderr does not mention {must!r}: {p.stderr!r}"
        assert len(p.stderr.strip()) > len(must), p.stderr
    # An unknown option is named as such even when nothing follows it.
    p = run_cli("serve", "--data", str(tmp_path / "d"), "--bogus-flag", timeout=10)
    assert p.returncode != 0 and "unknown option '--bogus-flag'" in p.stderr, p.stderr
    p = run_cli("serve", "--data", str(tmp_path / "d"), "--listen", timeout=10)
    assert p.returncode != 0 and "--listen needs a value" in p.stderr, p.stderr


def test_listen_on_a_busy_port_fails_clearly(lanterna, tmp_path):
    server = lanterna()
    proc = subprocess.Popen([LANTERNA_BIN, "serve", "--listen", f"127.0.0.1:{server.port}",
                             "--data", str(tmp_path / "other")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=clean_env())
    try:
        _, err = proc.communicate(timeout=5 * SLOW)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("a second server started on a port that is already in use "
                             "(SO_REUSEPORT lets two processes share it)") from None
    assert proc.returncode != 0
    assert str(server.port) in err or "in use" in err.lower(), err


def test_env_vars_configure_serve(tmp_path):
    port = free_port()
    data = tmp_path / "env-data"
    logf = open(tmp_path / "env.log", "wb")
    proc = subprocess.Popen([LANTERNA_BIN, "serve"], stdout=logf, stderr=subprocess.STDOUT,
                            env=clean_env({"LANTERNA_LISTEN": f"127.0.0.1:{port}", "LANTERNA_DATA": str(data),
                                           "LANTERNA_LOG_LEVEL": "debug"}))
    try:
        deadline = time.monotonic() + 20 * SLOW
        while True:
            assert proc.poll() is None, (tmp_path / "env.log").read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert data.is_dir() and any(data.iterdir()), "LANTERNA_DATA was not used"
    finally:
        proc.terminate()
        rc = proc.wait(30 * SLOW)
        logf.close()
    assert rc == 0
    log = (tmp_path / "env.log").read_text()
    assert f"listening on 127.0.0.1:{port}" in log, log


def test_flag_wins_over_env(lanterna, tmp_path):
    server = lanterna(env={"LANTERNA_LISTEN": "127.0.0.1:1", "LANTERNA_DATA": str(tmp_path / "unused")})
    assert server.api("/healthz") == {"status": "ok"}
    assert not (tmp_path / "unused").exists()


def test_server_logs_listening_line(server):
    log = server.log_text()
    assert f"listening on 127.0.0.1:{server.port}" in log
    # ...and where a newcomer goes next, with the real port.
    base = f"http://127.0.0.1:{server.port}"
    assert f"web UI: {base}/" in log and f"OTLP/HTTP: {base} " in log and f"{base}/proxy/openai/v1" in log


def test_one_server_per_data_directory(lanterna):
    """A second server on a data directory in use says so and exits; the CLI
    commands still work next to the running server; after a kill -9 the
    directory is free again (the lock dies with the process)."""
    server = lanterna()
    p = run_cli("serve", "--listen", f"127.0.0.1:{free_port()}", data=server.data, timeout=10)
    assert p.returncode == 1, out(p)
    assert f"in use by another lanterna server (pid {server.proc.pid})" in p.stderr, p.stderr
    assert run_cli("projects", "create", "next-door", data=server.data).returncode == 0
    server.kill()
    server.start()
    assert server.get("/healthz").status_code == 200


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "lanterna.db").write_bytes(b"these are not the pages you are looking for\n" * 100)
    p = run_cli("serve", "--listen", f"127.0.0.1:{free_port()}", data=data, timeout=10)
    assert p.returncode == 1, out(p)
    assert f"'{data}/lanterna.db' is not a Lanterna database, or it is damaged" in p.stderr, p.stderr
    assert "move it" in p.stderr


def test_lists_are_tables_for_people_and_json_for_scripts(tmp_path):
    data = tmp_path / "d"
    p = run_cli("projects", "create", "acme", data=data)
    assert p.returncode == 0 and "migrated" not in p.stderr, "a fresh directory's migrations are not news here"
    keys = []
    for _ in range(2):
        out = run_cli("keys", "create", "--project", "acme", data=data).stdout
        keys.append(re.search(r"public_key: (pk-lt-\S+)", out).group(1))
    assert run_cli("keys", "revoke", keys[1], data=data).returncode == 0
    table = run_cli("keys", "list", data=data).stdout.splitlines()
    assert table[0].split() == ["PUBLIC", "KEY", "PROJECT", "CREATED", "STATUS"], table
    rows = {ln.split()[0]: ln for ln in table[1:]}
    assert rows[keys[0]].rstrip().endswith("active") and " revoked 20" in rows[keys[1]], table
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", rows[keys[0]])
    entries = {e["public_key"]: e for e in json.loads(run_cli("keys", "list", "--json", data=data).stdout)}
    assert entries[keys[0]]["revoked_ns"] is None and entries[keys[1]]["revoked_ns"] > 0
    projects = run_cli("projects", "list", data=data).stdout.splitlines()
    assert projects[0].split() == ["ID", "NAME", "CREATED"] and [ln.split()[1] for ln in projects[1:]] == ["default", "acme"]
    assert [p["name"] for p in json.loads(run_cli("projects", "list", "--json", data=data).stdout)] == ["default", "acme"]
