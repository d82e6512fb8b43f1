"""Revocation holds for ECDSA tokens: an ECDSA signature (r, s) also verifies as
(r, n - s), so a deny-list keyed on the signature bytes let a revoked ES256 token back in
with its s flipped. The deny-list keys on the signed part (header.payload) instead."""
from __future__ import annotations

import base64

import httpx
import pytest

from conftest import start_gatehouse, stop

# The order of the P-256 group (SEC 2, secp256r1).
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_encode(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def flip_s(token: str) -> str:
    head, payload, sig = token.split(".")
    raw = b64url_decode(sig)
    assert len(raw) == 64
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    return ".".join([head, payload, b64url_encode(r + (P256_N - s).to_bytes(32, "big"))])


@pytest.fixture(scope="module")
def es256(workdir, secret_key):
    server = start_gatehouse(secret_key, workdir, name="es256-revocation",
                             extra_env={"GATEHOUSE_SIGNING_ALG": "ES256",
                                        "GATEHOUSE_REVOCATION": "true"})
    yield server.url
    stop(server)


def me(base: str, token: str) -> httpx.Response:
    return httpx.get(f"{base}/users/me/", headers={"Authorization": "Bearer " + token})


def test_a_revoked_es256_token_stays_revoked_with_its_signature_flipped(es256):
    r = httpx.post(f"{es256}/token", data={"username": "johndoe", "password": "secret",
                                           "scope": "me"}, timeout=30)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    twin = flip_s(token)
    assert twin != token
    # Both spellings verify before revocation: the flip is a valid signature.
    assert me(es256, token).status_code == 200
    assert me(es256, twin).status_code == 200
    assert httpx.post(f"{es256}/revoke", data={"token": token}).status_code == 200
    for t in (token, twin):
        got = me(es256, t)
        assert got.status_code == 401, got.text
        assert got.json() == {"detail": "Could not validate credentials"}
