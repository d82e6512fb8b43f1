"""Registered clients (gatehouse client add|list|show|delete), grant_type=client_credentials
(RFC 6749 §4.4) with client_secret_basic and client_secret_post, and POST /introspect
(RFC 7662), as a client sees them. The default server shows none of it."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote_plus

import httpx
import pytest

from conftest import gatehouse_bin, start_gatehouse, stop


def cli(data_dir: Path, *args: str, check: bool = True,
        stdin: str = "") -> subprocess.CompletedProcess:
    r = subprocess.run([str(gatehouse_bin()), *args, "--data-dir", str(data_dir)],
                       capture_output=True, text=True, input=stdin, timeout=60)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def add_client(data_dir: Path, client_id: str, *args: str) -> str:
    out = cli(data_dir, "client", "add", client_id, *args).stdout
    secret = [line.split(": ", 1)[1] for line in out.splitlines()
              if line.startswith("client_secret: ")][0]
    assert len(secret) == 43  # 256 bits, base64url
    return secret


@pytest.fixture(scope="module")
def setup(workdir, secret_key):
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=workdir)) / "gatehouse"
    secrets = {
        "svc": add_client(data_dir, "svc", "--scope", "me", "--scope", "items"),
        "rs": add_client(data_dir, "rs", "--permission", "introspect"),
        "gone": add_client(data_dir, "gone", "--scope", "items"),
        "carol": add_client(data_dir, "carol", "--scope", "me"),  # a user's name too
    }
    cli(data_dir, "user", "add", "carol", "--password-stdin", stdin="carol-pw-1234\n")
    server = start_gatehouse(secret_key, workdir, data_dir=data_dir, name="clients",
                             extra_env={"GATEHOUSE_REVOCATION": "true",
                                        "GATEHOUSE_ISSUER": "https://auth.example"})
    yield server.url, data_dir, secrets
    stop(server)


def basic(client_id: str, secret: str) -> dict:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def cc_basic(base, client_id, secret, **data):
    return httpx.post(f"{base}/token", data={"grant_type": "client_credentials", **data},
                      headers=basic(client_id, secret))


def introspect(base, token, client_id, secret, **data):
    return httpx.post(f"{base}/introspect", data={"token": token, **data},
                      headers=basic(client_id, secret))


def test_default_server_has_no_clients(gatehouse):
    r = httpx.post(f"{gatehouse}/token", data={"grant_type": "client_credentials"})
    assert r.status_code == 422  # the tutorial's form: username and password required
    assert httpx.post(f"{gatehouse}/introspect", data={"token": "x"}).status_code == 404
    assert "/introspect" not in httpx.get(f"{gatehouse}/openapi.json").json()["paths"]


def test_cli_list_show_never_show_the_secret(setup):
    _, data_dir, secrets = setup
    listed = cli(data_dir, "client", "list", "--json").stdout
    ids = [json.loads(line)["client_id"] for line in listed.splitlines()]
    assert {"svc", "rs"} <= set(ids)
    shown = json.loads(cli(data_dir, "client", "show", "svc").stdout)
    assert shown["scopes"] == ["me", "items"] and shown["grants"] == ["client_credentials"]
    assert shown["permissions"] == []
    assert json.loads(cli(data_dir, "client", "show", "rs").stdout)["permissions"] == [
        "introspect"]
    everything = listed + cli(data_dir, "client", "show", "svc").stdout
    assert secrets["svc"] not in everything and "secret" not in everything
    r = cli(data_dir, "client", "show", "nobody", check=False)
    assert r.returncode != 0 and "no such client" in r.stderr


def test_chosen_secret_is_refused(setup):
    _, data_dir, _ = setup
    r = cli(data_dir, "client", "add", "mine", "--secret", "hunter2hunter2", check=False)
    assert r.returncode != 0 and "refused" in r.stderr
    assert cli(data_dir, "client", "show", "mine", check=False).returncode != 0


def test_duplicate_and_bad_ids_are_refused(setup):
    _, data_dir, _ = setup
    assert cli(data_dir, "client", "add", "svc", check=False).returncode != 0
    assert cli(data_dir, "client", "add", "a b", check=False).returncode != 0


def test_client_credentials_basic_then_introspect(setup):
    base, _, secrets = setup
    r = cc_basic(base, "svc", secrets["svc"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and "refresh_token" not in body
    assert body["scope"] == "me items" and body["expires_in"] > 0
    assert r.headers["cache-control"] == "no-store"
    i = introspect(base, body["access_token"], "rs", secrets["rs"])
    assert i.status_code == 200
    info = i.json()
    assert info["active"] is True and info["sub"] == "svc" and info["client_id"] == "svc"
    assert info["scope"] == "me items" and info["token_type"] == "Bearer"
    assert info["exp"] > info["iat"] and "username" not in info


def test_client_credentials_post(setup):
    base, _, secrets = setup
    r = httpx.post(f"{base}/token", data={"grant_type": "client_credentials", "client_id": "svc",
                                          "client_secret": secrets["svc"], "scope": "items"})
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "items"


def test_scope_narrowed_to_the_clients(setup):
    base, _, secrets = setup
    r = cc_basic(base, "svc", secrets["svc"], scope="items admin")
    assert r.status_code == 200 and r.json()["scope"] == "items"
    r = cc_basic(base, "svc", secrets["svc"], scope="admin")
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = cc_basic(base, "rs", secrets["rs"], scope="me")
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


def test_wrong_secret_and_no_auth_get_invalid_client(setup):
    base, _, secrets = setup
    r = cc_basic(base, "svc", secrets["rs"])
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic")
    r = httpx.post(f"{base}/token", data={"grant_type": "client_credentials", "client_id": "svc",
                                          "client_secret": secrets["svc"] + "x"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = httpx.post(f"{base}/token", data={"grant_type": "client_credentials"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = cc_basic(base, "nobody", secrets["svc"])
    assert r.status_code == 401
    # Garbage Basic credentials: a clear 401, never a 500.
    for header in ["Basic", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()]:
        r = httpx.post(f"{base}/token", data={"grant_type": "client_credentials"},
                       headers={"Authorization": header})
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    token = cc_basic(base, "svc", secrets["svc"]).json()["access_token"]
    assert httpx.post(f"{base}/introspect", data={"token": token}).status_code == 401
    r = introspect(base, token, "rs", "wrong")
    assert r.status_code == 401 and r.json() == {
        "error": "invalid_client", "error_description": "Client authentication failed"}


def test_introspect_inactive_tokens(setup, secret_key):
    base, _, secrets = setup
    for junk in ["garbage", "a.b.c", "x" * 20000]:
        assert introspect(base, junk, "rs", secrets["rs"]).json() == {"active": False}
    # A token signed with another key.
    from jose import jwt as jose_jwt
    foreign = jose_jwt.encode({"sub": "johndoe", "exp": int(time.time()) + 600}, "another-key",
                              algorithm="HS256")
    assert introspect(base, foreign, "rs", secrets["rs"]).json() == {"active": False}
    # Expired, with the server's own key.
    expired = jose_jwt.encode({"sub": "johndoe", "exp": int(time.time()) - 600}, secret_key,
                              algorithm="HS256")
    assert introspect(base, expired, "rs", secrets["rs"]).json() == {"active": False}
    # Revoked.
    token = cc_basic(base, "svc", secrets["svc"]).json()["access_token"]
    assert introspect(base, token, "rs", secrets["rs"]).json()["active"] is True
    # RFC 7009 §2.1: a client's token is revoked by that client, authenticated.
    assert httpx.post(f"{base}/revoke", data={"token": token},
                      headers=basic("svc", secrets["svc"])).status_code == 200
    assert introspect(base, token, "rs", secrets["rs"]).json() == {"active": False}
    r = httpx.post(f"{base}/introspect", data={}, headers=basic("rs", secrets["rs"]))
    assert r.status_code in (400, 422)


def test_introspect_user_token_has_username(setup):
    base, _, secrets = setup
    r = httpx.post(f"{base}/token", data={"grant_type": "password", "username": "carol",
                                          "password": "carol-pw-1234", "scope": "me"})
    assert r.status_code == 200, r.text
    info = httpx.post(f"{base}/introspect", data={
        "token": r.json()["access_token"], "client_id": "rs", "client_secret": secrets["rs"]}).json()
    assert info["active"] is True and info["username"] == "carol" and info["sub"] == "carol"
    assert info["scope"] == "me"


def test_client_token_is_a_bearer_for_resource_routes_only_by_scope(setup):
    base, _, secrets = setup
    token = cc_basic(base, "svc", secrets["svc"]).json()["access_token"]
    # No user "svc": the tutorial's user routes refuse it.
    r = httpx.get(f"{base}/users/me/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_openapi_and_metadata_name_the_endpoints(setup):
    base, _, _ = setup
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    assert "/introspect" in paths and "post" in paths["/introspect"]
    meta = httpx.get(f"{base}/.well-known/oauth-authorization-server").json()
    assert "client_credentials" in meta["grant_types_supported"]
    assert meta["introspection_endpoint"] == "https://auth.example/introspect"
    assert {"client_secret_basic", "client_secret_post"} <= set(
        meta["token_endpoint_auth_methods_supported"])
    assert set(meta["introspection_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post"}


def test_deleted_client_refused(setup):
    base, data_dir, secrets = setup
    assert cc_basic(base, "gone", secrets["gone"]).status_code == 200
    cli(data_dir, "client", "delete", "gone")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = cc_basic(base, "gone", secrets["gone"])
        if r.status_code == 401:
            break
        time.sleep(0.1)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert cli(data_dir, "client", "delete", "gone", check=False).returncode != 0


def test_authlib_client_credentials(setup):
    authlib = pytest.importorskip("authlib.integrations.requests_client")
    base, _, secrets = setup
    for method in ["client_secret_basic", "client_secret_post"]:
        session = authlib.OAuth2Session(client_id="svc", client_secret=secrets["svc"],
                                        scope="me", token_endpoint_auth_method=method)
        token = session.fetch_token(f"{base}/token", grant_type="client_credentials")
        assert token["scope"] == "me" and token["token_type"] == "bearer"
        info = introspect(base, token["access_token"], "rs", secrets["rs"]).json()
        assert info["active"] is True and info["client_id"] == "svc"


def test_a_client_token_is_not_the_token_of_a_user_with_the_same_name(setup):
    base, _, secrets = setup
    r = cc_basic(base, "carol", secrets["carol"], scope="me")
    assert r.status_code == 200, r.text
    bearer = {"Authorization": "Bearer " + r.json()["access_token"]}
    for path in ("/users/me/", "/status/"):
        got = httpx.get(f"{base}{path}", headers=bearer)
        assert got.status_code == 401, (path, got.text)
        assert got.json() == {"detail": "Could not validate credentials"}
    # carol herself still logs in and reads /users/me/ with her own token.
    login = httpx.post(f"{base}/token", data={"grant_type": "password", "username": "carol",
                                              "password": "carol-pw-1234",
                                              "scope": "me"}, timeout=30)
    assert login.status_code == 200, login.text
    me = httpx.get(f"{base}/users/me/",
                   headers={"Authorization": "Bearer " + login.json()["access_token"]})
    assert me.status_code == 200 and me.json()["username"] == "carol"


def test_a_client_id_sent_with_a_password_login_is_not_put_in_the_token(setup):
    base, _, secrets = setup
    login = httpx.post(f"{base}/token", data={"grant_type": "password", "username": "carol",
                                              "password": "carol-pw-1234",
                                              "client_id": "svc"}, timeout=30)
    assert login.status_code == 200, login.text
    info = introspect(base, login.json()["access_token"], "rs", secrets["rs"]).json()
    assert info["active"] is True and info["username"] == "carol"
    assert info.get("client_id") != "svc"  # nobody authenticated as svc
