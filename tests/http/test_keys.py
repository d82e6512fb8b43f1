"""Asymmetric signing keys, JWKS, rotation and RFC 8414 metadata, as a client sees them.

A gatehouse started with ``--signing-alg`` RS256, ES256 or EdDSA (SQLite store) hands
out tokens that off-the-shelf libraries verify from the JWKS URL alone: PyJWT's
``PyJWKClient`` (Debian's python3-jwt) and npm's ``jose`` (``createRemoteJWKSet``,
tests/keys/verify.mjs, installed by ``npm ci`` here, at test time). Before and after
``gatehouse key rotate``; a token of a retired key is refused by gatehouse and can no
longer be verified by anyone, because its key has left the JWKS.

The FastAPI default (HS256) must not show any of this: no well-known routes, and
/openapi.json unchanged (the differential test holds it to the reference's).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import jwt  # PyJWT
import pytest
from cryptography.hazmat.primitives import serialization

from conftest import REPO_ROOT, b64url, gatehouse_bin, start_gatehouse, stop

ISSUER = "https://auth.example.test"
AUDIENCE = "reports-api"
KEYS_DIR = REPO_ROOT / "tests" / "keys"


def node_jose_ready() -> Path:
    """tests/keys/node_modules, installed from its lock file (once per session)."""
    if not (KEYS_DIR / "node_modules" / "jose").exists():
        subprocess.run(["npm", "ci", "--prefix", str(KEYS_DIR), "--silent", "--no-audit",
                        "--no-fund"], check=True, timeout=300)
    return KEYS_DIR / "verify.mjs"


def jose_verify(jwks_url: str, *tokens: str, issuer=None, audience=None) -> list:
    script = node_jose_ready()
    args = ["node", str(script), jwks_url, *tokens]
    if issuer:
        args += ["--issuer", issuer]
    if audience:
        args += ["--audience", audience]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout
    return [json.loads(line) for line in out.splitlines()]


def pyjwt_verify(jwks_url: str, token: str, alg: str, issuer=None, audience=None) -> dict:
    client = jwt.PyJWKClient(jwks_url)  # a new client: no cached key set
    key = client.get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=[alg], issuer=issuer, audience=audience)


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    return subprocess.run([str(gatehouse_bin()), *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env=env, timeout=60)


def login(url: str, client_id=None) -> str:
    data = {"username": "johndoe", "password": "secret", "scope": "me items"}
    if client_id:
        data["client_id"] = client_id
    r = httpx.post(url + "/token", data=data, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def me(url: str, token: str) -> httpx.Response:
    return httpx.get(url + "/users/me/", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def header_of(token: str) -> dict:
    return jwt.get_unverified_header(token)


@pytest.fixture
def keys_workdir():
    path = Path(tempfile.mkdtemp(prefix="gatehouse-keys-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start(workdir: Path, secret_key: str, alg: str, data_dir=None, **env):
    extra = {"GATEHOUSE_SIGNING_ALG": alg, "GATEHOUSE_ACCESS_LOG": "false"}
    extra.update(env)
    return start_gatehouse(secret_key, workdir, data_dir=data_dir, extra_env=extra,
                           name=f"gatehouse-{alg}")


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_tokens_verify_from_the_jwks_alone_before_and_after_rotation(keys_workdir, secret_key,
                                                                      alg):
    server = start(keys_workdir, secret_key, alg, GATEHOUSE_ISSUER=ISSUER,
                   GATEHOUSE_AUDIENCE=AUDIENCE)
    try:
        jwks_url = server.url + "/.well-known/jwks.json"
        first = login(server.url, client_id="report-ui")
        h = header_of(first)
        assert h["alg"] == alg and h["typ"] == "at+jwt" and len(h["kid"]) == 43
        claims = pyjwt_verify(jwks_url, first, alg, issuer=ISSUER, audience=AUDIENCE)
        assert claims["sub"] == "johndoe"
        assert claims["scopes"] == ["me", "items"] and claims["scope"] == "me items"
        assert "client_id" not in claims  # the form's client_id is unauthenticated here
        assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
        assert claims["exp"] - claims["iat"] == 1800 and claims["jti"]
        [res] = jose_verify(jwks_url, first, issuer=ISSUER, audience=AUDIENCE)
        assert res["ok"], res
        assert res["payload"]["sub"] == "johndoe" and res["header"]["kid"] == h["kid"]

        # Rotate with the CLI while the server runs: the next token has the new kid.
        r = cli(server.data_dir, "key", "rotate", "--signing-alg", alg)
        assert r.returncode == 0, r.stderr
        second = login(server.url)
        assert header_of(second)["kid"] != h["kid"]
        assert header_of(second)["kid"] in r.stdout
        for token in (first, second):  # the old key verifies until its tokens expire
            assert me(server.url, token).status_code == 200
            assert pyjwt_verify(jwks_url, token, alg, issuer=ISSUER,
                                audience=AUDIENCE)["sub"] == "johndoe"
        results = jose_verify(jwks_url, first, second, issuer=ISSUER, audience=AUDIENCE)
        assert [x["ok"] for x in results] == [True, True], results
    finally:
        stop(server)


def test_a_retired_keys_tokens_are_refused_everywhere(keys_workdir, secret_key):
    server = start(keys_workdir, secret_key, "ES256")
    try:
        jwks_url = server.url + "/.well-known/jwks.json"
        old = login(server.url)
        old_kid = header_of(old)["kid"]
        # The current key cannot be retired: rotate first.
        r = cli(server.data_dir, "key", "retire", old_kid)
        assert r.returncode == 2 and "rotate first" in r.stderr
        assert cli(server.data_dir, "key", "rotate", "--signing-alg", "ES256").returncode == 0
        new = login(server.url)
        assert me(server.url, old).status_code == 200
        r = cli(server.data_dir, "key", "retire", old_kid)
        assert r.returncode == 0, r.stderr
        refused = me(server.url, old)
        assert refused.status_code == 401
        assert refused.json() == {"detail": "Could not validate credentials"}
        assert refused.headers["www-authenticate"] == 'Bearer scope="me"'
        assert me(server.url, new).status_code == 200
        kids = [k["kid"] for k in httpx.get(jwks_url).json()["keys"]]
        assert old_kid not in kids and header_of(new)["kid"] in kids
        with pytest.raises(jwt.PyJWKClientError):
            pyjwt_verify(jwks_url, old, "ES256")
        ok_old, ok_new = jose_verify(jwks_url, old, new)
        assert not ok_old["ok"] and ok_old["code"] == "ERR_JWKS_NO_MATCHING_KEY"
        assert ok_new["ok"]
        # Retiring twice, or an unknown kid: exit 3.
        assert cli(server.data_dir, "key", "retire", old_kid).returncode == 3
        assert cli(server.data_dir, "key", "retire", "no-such-kid").returncode == 3
        listing = cli(server.data_dir, "key", "list").stdout
        assert f"{old_kid}\tES256\tretired" in listing
        assert "PRIVATE" not in listing and "BEGIN" not in listing
        lines = [json.loads(x) for x in cli(server.data_dir, "key", "list", "--json").stdout
                 .splitlines()]
        assert {x["kid"]: x["status"] for x in lines} == {old_kid: "retired",
                                                          header_of(new)["kid"]: "current"}
    finally:
        stop(server)


def test_jwks_holds_public_parts_only_with_cache_control(keys_workdir, secret_key):
    server = start(keys_workdir, secret_key, "RS256")
    try:
        r = httpx.get(server.url + "/.well-known/jwks.json")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.headers["cache-control"] == "public, max-age=300"
        [key] = r.json()["keys"]
        assert set(key) == {"kty", "n", "e", "kid", "alg", "use"}
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
        # The private key is in the 0600 store, never in the server's log.
        log = server.log_tail(100000)
        assert "PRIVATE" not in log
        assert oct((server.data_dir / "gatehouse.db").stat().st_mode & 0o777) == "0o600"
    finally:
        stop(server)


def test_hs256_signed_with_the_rsa_public_key_is_refused(keys_workdir, secret_key):
    """Algorithm confusion: the public key used as an HMAC secret."""
    server = start(keys_workdir, secret_key, "RS256")
    try:
        good = login(server.url)
        jwk = httpx.get(server.url + "/.well-known/jwks.json").json()["keys"][0]
        public = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwk))
        pem = public.public_bytes(serialization.Encoding.PEM,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        payload = jwt.decode(good, options={"verify_signature": False})
        header = {"alg": "HS256", "typ": "JWT", "kid": jwk["kid"]}
        h = b64url(json.dumps(header, separators=(",", ":")).encode())
        p = b64url(json.dumps(payload, separators=(",", ":")).encode())
        sig = b64url(hmac.new(pem, f"{h}.{p}".encode(), hashlib.sha256).digest())
        forged = f"{h}.{p}.{sig}"
        r = me(server.url, forged)
        assert r.status_code == 401
        assert r.json() == {"detail": "Could not validate credentials"}
        # "none" is refused the same way.
        none = b64url(b'{"alg":"none"}') + "." + p + "."
        assert me(server.url, none).status_code == 401
        assert me(server.url, good).status_code == 200
    finally:
        stop(server)


def test_well_known_routes_appear_in_openapi_only_when_enabled(keys_workdir, secret_key,
                                                               gatehouse):
    # The default (HS256, no issuer): no discovery routes, nothing in the document.
    assert httpx.get(gatehouse + "/.well-known/jwks.json").status_code == 404
    assert httpx.get(gatehouse + "/.well-known/oauth-authorization-server").status_code == 404
    paths = httpx.get(gatehouse + "/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/.well-known")]
    token = login(gatehouse)
    assert header_of(token) == {"alg": "HS256", "typ": "JWT"}  # no kid in the default

    server = start(keys_workdir, secret_key, "EdDSA", GATEHOUSE_ISSUER=ISSUER + "/tenant")
    try:
        doc = httpx.get(server.url + "/openapi.json").json()
        assert "/.well-known/jwks.json" in doc["paths"]
        assert "/.well-known/oauth-authorization-server/tenant" in doc["paths"]
        assert doc["paths"]["/.well-known/jwks.json"]["get"]["summary"] == "JSON Web Key Set"
    finally:
        stop(server)


def test_metadata_names_what_is_enabled(keys_workdir, secret_key):
    server = start(keys_workdir, secret_key, "ES256", GATEHOUSE_ISSUER=ISSUER)
    try:
        r = httpx.get(server.url + "/.well-known/oauth-authorization-server")
        assert r.status_code == 200
        assert r.json() == {
            "issuer": ISSUER,
            "token_endpoint": ISSUER + "/token",
            "jwks_uri": ISSUER + "/.well-known/jwks.json",
            "scopes_supported": ["me", "items"],
            "response_types_supported": [],
            "grant_types_supported": ["password"],
            "token_endpoint_auth_methods_supported": ["none"],
            "access_token_signing_alg_values_supported": ["ES256"],
        }
    finally:
        stop(server)


def test_issuer_and_audience_are_checked(keys_workdir, secret_key):
    """Two servers on one store (same keys), configured for different audiences."""
    data_dir = keys_workdir / "shared-data"
    a = start(keys_workdir, secret_key, "ES256", data_dir=data_dir,
              GATEHOUSE_ISSUER=ISSUER, GATEHOUSE_AUDIENCE="api-a")
    b = start(keys_workdir, secret_key, "ES256", data_dir=data_dir,
              GATEHOUSE_ISSUER=ISSUER, GATEHOUSE_AUDIENCE="api-b")
    c = start(keys_workdir, secret_key, "ES256", data_dir=data_dir,
              GATEHOUSE_ISSUER="https://other.example.test", GATEHOUSE_AUDIENCE="api-a")
    d = start(keys_workdir, secret_key, "ES256", data_dir=data_dir)  # no profile: aud refused
    try:
        token = login(a.url)
        assert me(a.url, token).status_code == 200
        for other in (b, c, d):
            r = me(other.url, token)
            assert r.status_code == 401, other.url
            assert r.json() == {"detail": "Could not validate credentials"}
        # And a plain token (no typ at+jwt, no iss/aud) is refused by the profiled server.
        assert me(a.url, login(d.url)).status_code == 401
    finally:
        for s in (a, b, c, d):
            stop(s)


def test_bad_settings_are_usage_errors(keys_workdir):
    r = cli(keys_workdir / "d", "key", "rotate")  # HS256 by default: nothing to rotate
    assert r.returncode == 2 and "--signing-alg" in r.stderr
    r = subprocess.run([str(gatehouse_bin()), "serve", "--data-dir", str(keys_workdir / "d"),
                        "--signing-alg", "PS256"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "RS256, ES256 or EdDSA" in r.stderr
    r = subprocess.run([str(gatehouse_bin()), "serve", "--data-dir", str(keys_workdir / "d"),
                        "--issuer", "auth.example?x=1"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "issuer" in r.stderr


def test_crit_is_refused_beyond_the_fastapi_default(keys_workdir, secret_key):
    """RFC 7515 §4.1.11 with store keys; the key itself is read from the 0600 store."""
    import sqlite3
    server = start(keys_workdir, secret_key, "ES256")
    try:
        good = login(server.url)
        db = sqlite3.connect(server.data_dir / "gatehouse.db")
        kid, pem = db.execute("SELECT kid, private_key FROM signing_keys").fetchone()
        db.close()
        claims = jwt.decode(good, options={"verify_signature": False})
        same = jwt.encode(claims, pem, algorithm="ES256", headers={"kid": kid})
        assert me(server.url, same).status_code == 200  # the control: a valid re-signing
        crit = jwt.encode(claims, pem, algorithm="ES256",
                          headers={"kid": kid, "crit": ["exp"]})
        r = me(server.url, crit)
        assert r.status_code == 401
        assert r.json() == {"detail": "Could not validate credentials"}
    finally:
        stop(server)
