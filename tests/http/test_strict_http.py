"""Strict mode (`--strict`, GATEHOUSE_STRICT, config key `strict`), as a client sees it:
FastAPI's quirks dropped. Requested scopes that are unknown or not the user's get
`invalid_scope` instead of being granted or dropped; a disabled user gets no token and
their tokens stop working on every route; tokens without `exp`, with exp as a string,
non-string scopes, `crit`, or non-canonical base64url are refused; /token answers RFC
6749 §5.2 error bodies. Each check also shows what the default (FastAPI) server does,
so a test cannot pass on a server that is not strict."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from jose import jwt as jose_jwt

from conftest import gatehouse_bin, launch, start_gatehouse, stop

PASSWORD = "dora-pw-51c2e9"


def cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    r = subprocess.run([str(gatehouse_bin()), *args, "--data-dir", str(data_dir)],
                       capture_output=True, text=True, input=stdin, timeout=60)
    assert r.returncode == 0, r.stderr
    return r


def new_data_dir(workdir: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix="data-", dir=workdir)) / "gatehouse"


@pytest.fixture(scope="module")
def strict(workdir, secret_key):
    data_dir = new_data_dir(workdir)
    cli(data_dir, "user", "add", "dora", "--password-stdin", stdin=PASSWORD + "\n")
    cli(data_dir, "user", "add", "erin", "--scope", "me", "--password-stdin",
        stdin=PASSWORD + "\n")
    cli(data_dir, "user", "add", "fred", "--password-stdin", stdin=PASSWORD + "\n")
    cli(data_dir, "user", "add", "hank", "--disabled", "--password-stdin",
        stdin=PASSWORD + "\n")
    server = start_gatehouse(secret_key, workdir, data_dir=data_dir, name="strict",
                             extra_env={"GATEHOUSE_STRICT": "true"})
    yield server.url, data_dir
    stop(server)


def login(base, username="fred", password=PASSWORD, scope="me", **extra):
    return httpx.post(f"{base}/token", data={"grant_type": "password", "username": username,
                                             "password": password, "scope": scope, **extra},
                      timeout=30)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# ---- /token ----

def test_unknown_scope_is_invalid_scope(strict, gatehouse):
    base, _ = strict
    r = login(base, scope="me admin")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope" and r.headers["cache-control"] == "no-store"
    # FastAPI's tutorial grants whatever is asked for.
    fastapi = httpx.post(f"{gatehouse}/token", data={"username": "johndoe", "password": "secret",
                                                     "scope": "me admin"})
    assert fastapi.status_code == 200
    claims = jose_jwt.get_unverified_claims(fastapi.json()["access_token"])
    assert claims["scopes"] == ["me", "admin"]
    # Known scopes are granted as asked.
    ok = login(base, scope="me items")
    assert ok.status_code == 200, ok.text
    assert jose_jwt.get_unverified_claims(ok.json()["access_token"])["scopes"] == ["me", "items"]


def test_a_scope_the_user_does_not_hold_is_invalid_scope(strict):
    base, _ = strict
    r = login(base, "erin", PASSWORD, scope="me items")
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = login(base, "erin", PASSWORD, scope="me")
    assert r.status_code == 200, r.text


def test_disabled_user_gets_no_token(strict, gatehouse):
    base, _ = strict
    r = login(base, "hank", PASSWORD)  # created disabled
    assert r.status_code == 400 and r.json() == {"error": "invalid_grant",
                                                 "error_description": "The user is disabled"}
    # FastAPI hands the disabled user (the tutorial's alice) a token.
    assert httpx.post(f"{gatehouse}/token",
                      data={"username": "alice", "password": "secret2"}).status_code == 200


def test_disabled_users_tokens_stop_working_everywhere(strict):
    base, data_dir = strict
    r = login(base, "dora", PASSWORD, scope="me")
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert httpx.get(f"{base}/status/", headers=bearer(token)).status_code == 200
    assert httpx.get(f"{base}/users/me/", headers=bearer(token)).status_code == 200
    cli(data_dir, "user", "disable", "dora")
    for path in ("/status/", "/users/me/"):
        got = httpx.get(f"{base}{path}", headers=bearer(token))
        assert got.status_code == 400 and got.json() == {"detail": "Inactive user"}, path


def test_default_server_keeps_accepting_a_disabled_users_token_on_status(workdir, secret_key):
    # What strict mode changes: FastAPI's /status/ does not look at `disabled`.
    data_dir = new_data_dir(workdir)
    cli(data_dir, "user", "add", "gina", "--password-stdin", stdin=PASSWORD + "\n")
    server = start_gatehouse(secret_key, workdir, data_dir=data_dir, name="not-strict")
    try:
        token = httpx.post(f"{server.url}/token", data={"username": "gina",
                                                        "password": PASSWORD},
                           timeout=30).json()["access_token"]
        cli(data_dir, "user", "disable", "gina")
        assert httpx.get(f"{server.url}/status/", headers=bearer(token)).status_code == 200
    finally:
        stop(server)


def test_rfc6749_error_bodies_on_token(strict):
    base, _ = strict
    r = login(base, password="wrong")
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_grant",
                        "error_description": "Incorrect username or password"}
    assert "www-authenticate" not in r.headers
    r = httpx.post(f"{base}/token", data={"username": "fred", "password": PASSWORD})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"  # grant_type missing
    r = httpx.post(f"{base}/token", data={"grant_type": "password"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = httpx.post(f"{base}/token", json={"grant_type": "password"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = httpx.post(f"{base}/token", data={"grant_type": "authorization_code"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


# ---- tokens ----

def forged(secret_key, claims, headers=None):
    return jose_jwt.encode(claims, secret_key, algorithm="HS256", headers=headers)


def status(base, token):
    return httpx.get(f"{base}/status/", headers=bearer(token))


# The strict server's users are fred & co., the default server's the demo users.
def both(secret_key, claims, headers=None):
    return (forged(secret_key, dict(claims, sub="johndoe"), headers),
            forged(secret_key, dict(claims, sub="fred"), headers))


def test_exp_is_required(strict, gatehouse, secret_key):
    base, _ = strict
    default, strict_token = both(secret_key, {"scopes": ["me"]})
    assert status(gatehouse, default).status_code == 200  # python-jose: exp is optional
    r = status(base, strict_token)
    assert r.status_code == 401 and r.json() == {"detail": "Could not validate credentials"}


def test_exp_must_be_a_number(strict, gatehouse, secret_key):
    base, _ = strict
    for exp in [str(int(time.time()) + 600), True]:
        default, strict_token = both(secret_key, {"exp": exp})
        if exp is not True:
            assert status(gatehouse, default).status_code == 200  # Python's int("...")
        assert status(base, strict_token).status_code == 401, exp
    _, good = both(secret_key, {"exp": int(time.time()) + 600})
    assert status(base, good).status_code == 200


def test_scopes_must_be_strings(strict, gatehouse, secret_key):
    base, _ = strict
    default, strict_token = both(secret_key, {"scopes": [1], "exp": int(time.time()) + 600})
    assert status(gatehouse, default).status_code == 200  # pydantic v1 makes "1" of 1
    assert status(base, strict_token).status_code == 401


def test_crit_is_refused(strict, gatehouse, secret_key):
    base, _ = strict
    default, strict_token = both(secret_key, {"exp": int(time.time()) + 600},
                                 headers={"crit": ["exp"]})
    assert status(gatehouse, default).status_code == 200  # python-jose ignores crit
    assert status(base, strict_token).status_code == 401


def spellings(token):
    """Other base64 spellings of the same token, which python-jose decodes alike."""
    head, payload, sig = token.split(".")
    assert len(sig) == 43  # 32 bytes: the last character carries 2 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    flipped = alphabet[alphabet.index(sig[-1]) ^ 1]
    return [
        f"{head}.{payload}.{sig[:-1]}{flipped}",  # unused bits set
        f"{head}.{payload}.{sig}=",               # padding
        f"{head}.{payload}.{sig[:10]}!!!!{sig[10:]}",  # stray characters
    ]


def test_non_canonical_base64url_is_refused(strict, gatehouse, secret_key):
    base, _ = strict
    default, strict_token = both(secret_key, {"exp": int(time.time()) + 600})
    assert status(base, strict_token).status_code == 200
    for spelling in spellings(default):
        assert status(gatehouse, spelling).status_code == 200, spelling  # jose decodes all
    for spelling in spellings(strict_token):
        r = status(base, spelling)
        assert r.status_code == 401, spelling
        assert r.json() == {"detail": "Could not validate credentials"}


# ---- the setting ----

def start_with(workdir, secret_key, global_args, serve_args):
    data_dir = new_data_dir(workdir)
    full_env = dict(os.environ, SECRET_KEY=secret_key)
    full_env.pop("GATEHOUSE_STRICT", None)
    return launch("strict-setting", [*global_args, "serve", "--data-dir", str(data_dir),
                                     "--demo-users", *serve_args],
                  full_env, workdir, data_dir=data_dir)


@pytest.mark.parametrize("how", ["flag", "config"])
def test_flag_and_config_key(workdir, secret_key, how):
    if how == "flag":
        server = start_with(workdir, secret_key, [], ["--strict"])
    else:
        config = workdir / f"strict-{secret_key[-6:]}.toml"
        config.write_text("strict = true\n")
        config.chmod(0o600)
        server = start_with(workdir, secret_key, [f"--config={config}"], [])
    try:
        r = login(server.url, "johndoe", "secret", scope="me admin")
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    finally:
        stop(server)


def test_a_bad_value_is_refused_at_start(workdir):
    data_dir = new_data_dir(workdir)
    r = subprocess.run([str(gatehouse_bin()), "serve", "--data-dir", str(data_dir)],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, GATEHOUSE_STRICT="maybe"))
    assert r.returncode == 2
    assert "strict" in r.stderr and "GATEHOUSE_STRICT" in r.stderr
