"""Refresh tokens (--refresh-tokens) and revocation (POST /revoke, RFC 7009), as
clients see them: Authlib's OAuth2Session and requests-oauthlib log in, refresh and
revoke, and the old tokens are refused; rotation, reuse detection (the family is
revoked), the grace period; a token minted the FastAPI way (python-jose, no jti)
revoked and refused, whatever base64 spelling it is revoked in.

The default server (the `gatehouse` fixture) shows none of it: no refresh_token, no
/revoke (test_differential holds /openapi.json to the reference's).
"""
from __future__ import annotations

import base64
import time

import httpx
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from jose import jwt as jose_jwt
from oauthlib.oauth2 import LegacyApplicationClient
from requests_oauthlib import OAuth2Session as OAuthlibSession

from conftest import start_gatehouse, stop


@pytest.fixture(scope="module")
def strict_grace(workdir, secret_key):
    """Refresh tokens on, no grace period: any second use of a refresh token is reuse."""
    server = start_gatehouse(
        secret_key, workdir, name="refresh-nograce",
        extra_env={"GATEHOUSE_REFRESH_TOKENS": "true", "GATEHOUSE_REFRESH_GRACE_SECONDS": "0"})
    yield server.url
    stop(server)


@pytest.fixture(scope="module")
def with_grace(workdir, secret_key):
    """Refresh tokens on, a 60 s grace period (long enough for any slow machine)."""
    server = start_gatehouse(
        secret_key, workdir, name="refresh-grace",
        extra_env={"GATEHOUSE_REFRESH_TOKENS": "1", "GATEHOUSE_REFRESH_GRACE_SECONDS": "60"})
    yield server.url
    stop(server)


def login(base, username="johndoe", password="secret", scope="me items"):
    r = httpx.post(f"{base}/token", data={"grant_type": "password", "username": username,
                                          "password": password, "scope": scope})
    assert r.status_code == 200, r.text
    return r.json()


def refresh(base, token, **extra):
    return httpx.post(f"{base}/token",
                      data={"grant_type": "refresh_token", "refresh_token": token, **extra})


def me(base, access_token):
    return httpx.get(f"{base}/users/me/", headers={"Authorization": f"Bearer {access_token}"})


# ---- the default stays FastAPI's ----

def test_default_server_has_no_refresh_tokens_and_no_revoke(gatehouse):
    r = httpx.post(f"{gatehouse}/token", data={"username": "johndoe", "password": "secret"})
    assert set(r.json()) == {"access_token", "token_type"}
    assert "cache-control" not in r.headers
    assert httpx.post(f"{gatehouse}/revoke", data={"token": "x"}).status_code == 404
    assert "/revoke" not in httpx.get(f"{gatehouse}/openapi.json").json()["paths"]


# ---- with real client libraries ----

def test_authlib_login_refresh_revoke(strict_grace):
    token_url = f"{strict_grace}/token"
    client = OAuth2Session(client_id="spa", scope="me items", token_endpoint=token_url,
                           revocation_endpoint=f"{strict_grace}/revoke")
    first = client.fetch_token(token_url, username="johndoe", password="secret",
                               grant_type="password")
    assert first["token_type"] == "bearer" and first["refresh_token"] and first["expires_in"] > 0
    assert len(base64.urlsafe_b64decode(first["refresh_token"] + "=")) == 32  # 256 bits
    assert client.get(f"{strict_grace}/users/me/").json()["username"] == "johndoe"

    second = client.refresh_token(token_url, refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get(f"{strict_grace}/users/me/items/").status_code == 200

    # Log out: revoke the access token, then the refresh token.
    assert client.revoke_token(f"{strict_grace}/revoke", token=second["access_token"],
                               token_type_hint="access_token").status_code == 200
    r = me(strict_grace, second["access_token"])
    assert r.status_code == 401 and r.json() == {"detail": "Could not validate credentials"}
    assert client.revoke_token(f"{strict_grace}/revoke", token=second["refresh_token"],
                               token_type_hint="refresh_token").status_code == 200
    r = refresh(strict_grace, second["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # Only that token: another one (other scopes, so another signature) still works.
    assert me(strict_grace, login(strict_grace, scope="me")["access_token"]).status_code == 200


def test_requests_oauthlib_login_refresh_and_logout(strict_grace, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the test server speaks http
    token_url = f"{strict_grace}/token"
    session = OAuthlibSession(client=LegacyApplicationClient(client_id="cli"), scope=["me"])
    token = session.fetch_token(token_url, username="johndoe", password="secret",
                                include_client_id=True, scope="me")
    assert token["refresh_token"] and "expires_in" in token
    assert session.get(f"{strict_grace}/users/me/").status_code == 200
    new = session.refresh_token(token_url, refresh_token=token["refresh_token"],
                                client_id="cli")
    assert new["refresh_token"] != token["refresh_token"]
    assert session.get(f"{strict_grace}/users/me/").status_code == 200
    # RFC 7009 logout with a plain form post (requests-oauthlib has no revoke helper).
    r = requests.post(f"{strict_grace}/revoke", data={"token": new["refresh_token"]})
    assert r.status_code == 200
    r = refresh(strict_grace, new["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


# ---- rotation, reuse detection, grace ----

def test_token_response_is_not_cached_and_carries_lifetime(strict_grace):
    r = httpx.post(f"{strict_grace}/token",
                   data={"grant_type": "password", "username": "johndoe", "password": "secret"})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    assert r.json()["expires_in"] == 1800


def test_reuse_of_a_spent_token_revokes_the_family(strict_grace):
    t0 = login(strict_grace)["refresh_token"]
    r1 = refresh(strict_grace, t0)
    assert r1.status_code == 200
    t1 = r1.json()["refresh_token"]
    # The spent one again (an attacker's copy): refused, and the whole login is revoked.
    again = refresh(strict_grace, t0)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    later = refresh(strict_grace, t1)
    assert later.status_code == 400 and later.json()["error"] == "invalid_grant"
    # Another login is not affected.
    assert refresh(strict_grace, login(strict_grace)["refresh_token"]).status_code == 200


def test_grace_period_gives_both_tabs_the_same_successor(with_grace):
    t0 = login(with_grace)["refresh_token"]
    a = refresh(with_grace, t0)
    b = refresh(with_grace, t0)
    assert a.status_code == 200 and b.status_code == 200, b.text
    assert a.json()["refresh_token"] == b.json()["refresh_token"]
    assert me(with_grace, b.json()["access_token"]).status_code == 200
    # The successor works once; then the successor's successor is the live one.
    c = refresh(with_grace, a.json()["refresh_token"])
    assert c.status_code == 200
    assert refresh(with_grace, c.json()["refresh_token"]).status_code == 200


def test_scope_may_narrow_never_widen(strict_grace):
    t0 = login(strict_grace, scope="me")["refresh_token"]
    wide = refresh(strict_grace, t0, scope="me items")
    assert wide.status_code == 400 and wide.json()["error"] == "invalid_scope"
    # A refused widening does not spend the token.
    narrow = refresh(strict_grace, t0, scope="me")
    assert narrow.status_code == 200 and narrow.json()["scope"] == "me"
    t1 = login(strict_grace, scope="me items")["refresh_token"]
    only_me = refresh(strict_grace, t1, scope="me").json()
    assert httpx.get(f"{strict_grace}/users/me/items/",
                     headers={"Authorization": f"Bearer {only_me['access_token']}"}
                     ).status_code == 401
    # The narrowed refresh token cannot widen back.
    back = refresh(strict_grace, only_me["refresh_token"], scope="me items")
    assert back.json()["error"] == "invalid_scope"


def test_disabled_user_cannot_refresh(strict_grace):
    # alice is disabled; FastAPI's tutorial still gives her a token at login.
    t = login(strict_grace, "alice", "secret2")["refresh_token"]
    r = refresh(strict_grace, t)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


# ---- revocation of access tokens ----

def fastapi_token(secret_key, sub="johndoe", scopes=("me",)):
    """A token exactly as FastAPI's tutorial makes it: python-jose, HS256, no jti."""
    return jose_jwt.encode({"sub": sub, "scopes": list(scopes), "exp": int(time.time()) + 600},
                           secret_key, algorithm="HS256")


def respell_signature(token: str) -> str:
    """The same token in another base64 spelling: the signature's last character with
    different unused low bits (decodes to the same bytes, leniently)."""
    head, payload, sig = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    # 32 signature bytes = 43 characters, the last one carries 4 bits and 2 unused ones.
    twin = alphabet[last ^ 1]
    return f"{head}.{payload}.{sig[:-1]}{twin}"


def test_fastapi_minted_token_revoked_then_refused(strict_grace, secret_key):
    token = fastapi_token(secret_key)
    assert me(strict_grace, token).status_code == 200
    other = fastapi_token(secret_key, scopes=("me", "items"))
    # Revoked in another spelling: the deny-list is keyed on the decoded signature.
    variant = respell_signature(token)
    assert variant != token
    assert me(strict_grace, variant).status_code == 200  # the lenient default accepts it
    assert httpx.post(f"{strict_grace}/revoke", data={"token": variant}).status_code == 200
    for t in (token, variant):
        r = me(strict_grace, t)
        assert r.status_code == 401 and r.json() == {"detail": "Could not validate credentials"}
    assert me(strict_grace, other).status_code == 200


def test_revocation_alone_without_refresh_tokens(workdir, secret_key):
    server = start_gatehouse(secret_key, workdir, name="revocation-only",
                             extra_env={"GATEHOUSE_REVOCATION": "true"})
    try:
        r = httpx.post(f"{server.url}/token", data={"username": "johndoe", "password": "secret"})
        assert set(r.json()) == {"access_token", "token_type"}  # the tutorial's /token
        token = r.json()["access_token"]
        assert httpx.post(f"{server.url}/revoke", data={"token": token}).status_code == 200
        assert me(server.url, token).status_code == 401
        assert "/revoke" in httpx.get(f"{server.url}/openapi.json").json()["paths"]
    finally:
        stop(server)


# ---- malformed requests: RFC 6749 §5.2 / RFC 7009 answers, never a 500 ----

@pytest.mark.parametrize("data,error", [
    ({}, "invalid_request"),
    ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
    ({"grant_type": "password", "username": "johndoe"}, "invalid_request"),
    ({"grant_type": "password", "username": "johndoe", "password": "wrong"}, "invalid_grant"),
    ({"grant_type": "refresh_token"}, "invalid_request"),
    ({"grant_type": "refresh_token", "refresh_token": "garbage"}, "invalid_grant"),
    ({"grant_type": "refresh_token", "refresh_token": "x" * 5000}, "invalid_grant"),
])
def test_token_errors(strict_grace, data, error):
    r = httpx.post(f"{strict_grace}/token", data=data)
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == error and body["error_description"]


def test_revoke_answers(strict_grace):
    r = httpx.post(f"{strict_grace}/revoke", data={})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    for junk in ("garbage", "a.b.c", "x" * 70000, "\u00e9t\u00e9"):
        r = httpx.post(f"{strict_grace}/revoke", data={"token": junk})
        assert r.status_code in (200, 413), r.text  # RFC 7009 §2.2: unknown tokens get 200
    r = httpx.post(f"{strict_grace}/revoke", data={"token": "garbage",
                                                   "token_type_hint": "something_else"})
    assert r.status_code == 200
    r = httpx.post(f"{strict_grace}/revoke", json={"token": "x"})
    assert r.status_code < 500


def test_openapi_declares_both_endpoints(strict_grace):
    doc = httpx.get(f"{strict_grace}/openapi.json").json()
    assert "post" in doc["paths"]["/revoke"]
    body = doc["components"]["schemas"]["Body_login_for_access_token_token_post"]
    assert "refresh_token" in body["properties"]
    assert body["required"] == ["grant_type"]
