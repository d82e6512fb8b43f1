"""Revocation with registered clients (RFC 7009 §2.1) and who may introspect (RFC 7662 §4),
as clients see them.

With clients registered, a client that presents credentials must authenticate and may
revoke only the tokens issued to it; a token of another client (or of no client) is
refused with 400 unauthorized_client and stays valid. A client's token cannot be revoked
without that client's credentials (401 invalid_client). A password login (a public
client, no credentials) is still revoked by whoever holds it.

Only clients given the `introspect` permission (`client add --permission introspect`)
may call /introspect; a token whose user was disabled or deleted, or whose client was
deleted, is inactive."""
from __future__ import annotations

import base64
import json
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote_plus

import httpx
import pytest

from conftest import gatehouse_bin, start_gatehouse, stop

PASSWORD = "rita-pw-7f3a0c"


def cli(data_dir: Path, *args: str, stdin: str = "") -> str:
    r = subprocess.run([str(gatehouse_bin()), *args, "--data-dir", str(data_dir)],
                       capture_output=True, text=True, input=stdin, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def add_client(data_dir: Path, client_id: str, *args: str) -> str:
    out = cli(data_dir, "client", "add", client_id, *args)
    return [line.split(": ", 1)[1] for line in out.splitlines()
            if line.startswith("client_secret: ")][0]


def basic(client_id: str, secret: str) -> dict:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture(scope="module")
def setup(workdir, secret_key):
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=workdir)) / "gatehouse"
    secrets = {
        "svc": add_client(data_dir, "svc", "--scope", "items"),
        "other": add_client(data_dir, "other", "--scope", "items"),
        "rs": add_client(data_dir, "rs", "--permission", "introspect"),
        "doomed": add_client(data_dir, "doomed", "--scope", "items"),
    }
    for name in ("rita", "sam", "tess"):
        cli(data_dir, "user", "add", name, "--password-stdin", stdin=PASSWORD + "\n")
    server = start_gatehouse(secret_key, workdir, data_dir=data_dir, name="client-revocation",
                             extra_env={"GATEHOUSE_REFRESH_TOKENS": "true",
                                        "GATEHOUSE_ISSUER": "https://auth.example"})
    yield server.url, data_dir, secrets
    stop(server)


def cc_token(base, secrets, client_id="svc"):
    r = httpx.post(f"{base}/token", data={"grant_type": "client_credentials"},
                   headers=basic(client_id, secrets[client_id]))
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def user_login(base, username="rita"):
    r = httpx.post(f"{base}/token", data={"grant_type": "password", "username": username,
                                          "password": PASSWORD, "scope": "me"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def revoke(base, token, auth=None, **data):
    return httpx.post(f"{base}/revoke", data={"token": token, **data}, headers=auth or {})


def active(base, secrets, token):
    r = httpx.post(f"{base}/introspect", data={"token": token},
                   headers=basic("rs", secrets["rs"]))
    assert r.status_code == 200, r.text
    return r.json()["active"]


def me(base, access_token):
    return httpx.get(f"{base}/users/me/", headers={"Authorization": f"Bearer {access_token}"})


# ---- revocation ----

def test_a_client_revokes_its_own_token(setup):
    base, _, secrets = setup
    token = cc_token(base, secrets)
    assert active(base, secrets, token)
    r = revoke(base, token, basic("svc", secrets["svc"]))
    assert r.status_code == 200 and r.json() == {}
    assert not active(base, secrets, token)
    # client_secret_post works too.
    token = cc_token(base, secrets)
    r = revoke(base, token, client_id="svc", client_secret=secrets["svc"])
    assert r.status_code == 200 and not active(base, secrets, token)


def test_another_clients_token_is_refused_and_stays_valid(setup):
    base, _, secrets = setup
    token = cc_token(base, secrets)
    r = revoke(base, token, basic("other", secrets["other"]))
    assert r.status_code == 400
    assert r.json()["error"] == "unauthorized_client"
    assert r.headers["cache-control"] == "no-store"
    assert active(base, secrets, token)


def test_a_clients_token_needs_its_credentials(setup):
    base, _, secrets = setup
    token = cc_token(base, secrets)
    r = revoke(base, token)  # the bare holder of a client's token
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic")
    assert active(base, secrets, token)


def test_wrong_credentials_are_invalid_client(setup):
    base, _, secrets = setup
    token = cc_token(base, secrets)
    for auth in (basic("svc", secrets["other"]), basic("nobody", secrets["svc"])):
        r = revoke(base, token, auth)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # Even for a token that does not exist: credentials come first.
    r = revoke(base, "garbage", basic("svc", "wrong"))
    assert r.status_code == 401
    assert active(base, secrets, token)


def test_unknown_tokens_get_200_for_an_authenticated_client(setup):
    base, _, secrets = setup
    for junk in ("garbage", "a.b.c", "x" * 300):
        r = revoke(base, junk, basic("svc", secrets["svc"]))
        assert r.status_code == 200 and r.json() == {}


def test_a_public_login_is_revoked_by_its_holder(setup):
    base, _, secrets = setup
    tokens = user_login(base)
    assert me(base, tokens["access_token"]).status_code == 200
    assert revoke(base, tokens["access_token"]).status_code == 200
    assert me(base, tokens["access_token"]).status_code == 401
    assert revoke(base, tokens["refresh_token"]).status_code == 200
    r = httpx.post(f"{base}/token", data={"grant_type": "refresh_token",
                                          "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_a_client_cannot_revoke_a_users_login(setup):
    base, _, secrets = setup
    tokens = user_login(base)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        r = revoke(base, token, basic("svc", secrets["svc"]))
        assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
    assert me(base, tokens["access_token"]).status_code == 200
    r = httpx.post(f"{base}/token", data={"grant_type": "refresh_token",
                                          "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200, r.text


def test_metadata_names_the_revocation_auth_methods(setup):
    base, _, _ = setup
    meta = httpx.get(f"{base}/.well-known/oauth-authorization-server").json()
    assert set(meta["revocation_endpoint_auth_methods_supported"]) == {
        "none", "client_secret_basic", "client_secret_post"}


# ---- introspection ----

def test_only_clients_permitted_may_introspect(setup):
    base, data_dir, secrets = setup
    token = cc_token(base, secrets)
    r = httpx.post(f"{base}/introspect", data={"token": token},
                   headers=basic("svc", secrets["svc"]))
    assert r.status_code == 403
    assert r.json() == {"error": "unauthorized_client",
                        "error_description": "This client may not introspect tokens"}
    assert httpx.post(f"{base}/introspect", data={"token": token}).status_code == 401
    assert active(base, secrets, token)
    # The permission is shown by client show and client list.
    assert json.loads(cli(data_dir, "client", "show", "rs"))["permissions"] == ["introspect"]
    assert json.loads(cli(data_dir, "client", "show", "svc"))["permissions"] == []
    listed = {json.loads(line)["client_id"]: json.loads(line)["permissions"]
              for line in cli(data_dir, "client", "list", "--json").splitlines()}
    assert listed["rs"] == ["introspect"] and listed["svc"] == []
    text = {line.split("\t")[0]: line.split("\t") for line in
            cli(data_dir, "client", "list").splitlines()}
    assert text["rs"][-1] == "introspect" and text["svc"][-1] == "-"


def test_a_bad_permission_is_refused(setup):
    _, data_dir, _ = setup
    r = subprocess.run([str(gatehouse_bin()), "client", "add", "x", "--permission", "admin",
                        "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "admin" in r.stderr


def wait_until(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_a_disabled_or_deleted_users_tokens_are_inactive(setup):
    base, data_dir, secrets = setup
    sam = user_login(base, "sam")
    tess = user_login(base, "tess")
    for t in (sam, tess):
        assert active(base, secrets, t["access_token"])
        assert active(base, secrets, t["refresh_token"])
    cli(data_dir, "user", "disable", "sam")
    cli(data_dir, "user", "delete", "tess")
    for t in (sam, tess):
        assert not active(base, secrets, t["access_token"])
        assert not active(base, secrets, t["refresh_token"])
    cli(data_dir, "user", "enable", "sam")
    assert active(base, secrets, sam["access_token"])


def test_a_deleted_clients_tokens_are_inactive(setup):
    base, data_dir, secrets = setup
    token = cc_token(base, secrets, "doomed")
    assert active(base, secrets, token)
    cli(data_dir, "client", "delete", "doomed")
    assert wait_until(lambda: not active(base, secrets, token))
