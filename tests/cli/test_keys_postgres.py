"""Signing keys shared by several instances on one PostgreSQL database.

Two instances started together with --signing-alg ES256 settle on one key; a token made
by one verifies on the other and from either's JWKS; `gatehouse key rotate` through the
CLI is picked up by both (the key ring polls PostgreSQL at most a second apart, and a
token with a new kid makes an instance look at once); a retired key's tokens are refused
by both within about a second.

Needs GATEHOUSE_TEST_DATABASE_URL: run under `scripts/with-postgres`.
"""
from __future__ import annotations


import httpx
import jwt  # PyJWT

from test_postgres import Instance, cli, database, within  # noqa: F401  (the fixture)


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def test_instances_share_keys_rotation_and_retirement(database):  # noqa: F811
    a = Instance(database, "--demo-users", "--signing-alg", "ES256")
    b = Instance(database, "--signing-alg", "ES256")
    try:
        first = a.login("johndoe", "secret").json()["access_token"]
        assert kid_of(first) == kid_of(b.login("johndoe", "secret").json()["access_token"])
        assert b.me(first).status_code == 200
        for inst in (a, b):
            jwks = inst.url + "/.well-known/jwks.json"
            key = jwt.PyJWKClient(jwks).get_signing_key_from_jwt(first)
            assert jwt.decode(first, key.key, algorithms=["ES256"])["sub"] == "johndoe"

        r = cli(database, "key", "rotate", "--signing-alg", "ES256")
        assert r.returncode == 0, r.stderr
        # Both instances sign with the new key within a second.
        assert within(3, lambda: kid_of(a.login("johndoe", "secret").json()["access_token"])
                      != kid_of(first))
        assert within(3, lambda: kid_of(b.login("johndoe", "secret").json()["access_token"])
                      != kid_of(first))
        second = a.login("johndoe", "secret").json()["access_token"]
        assert b.me(second).status_code == 200 and a.me(first).status_code == 200
        listed = cli(database, "key", "list").stdout
        assert "current" in listed and "superseded" in listed and "BEGIN" not in listed

        r = cli(database, "key", "retire", kid_of(first))
        assert r.returncode == 0, r.stderr
        assert within(3, lambda: a.me(first).status_code == 401 and b.me(first).status_code == 401)
        assert a.me(second).status_code == 200 and b.me(second).status_code == 200
        kids = [k["kid"] for k in httpx.get(b.url + "/.well-known/jwks.json").json()["keys"]]
        assert kids == [kid_of(second)]
    finally:
        a.stop()
        b.stop()
