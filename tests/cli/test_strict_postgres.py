"""Strict mode and client revocation on PostgreSQL, two instances on one database (user
lookups are not cached there, so each request sees the CLI's change):

* a user disabled with the CLI gets no token from either instance, and the token they
  got before is refused on /status/ by both (400 Inactive user), and introspected as
  inactive;
* a client's token revoked by that client on one instance is refused by the other's
  introspection within a second; another client's attempt is refused.

Needs GATEHOUSE_TEST_DATABASE_URL: run under `scripts/with-postgres`.
"""
from __future__ import annotations

import httpx

from test_clients_postgres import add_client
from test_postgres import Instance, cli, database, within  # noqa: F401  (the fixture)

PASSWORD = "pat-pw-2b81d4"


def test_strict_disabled_user_on_two_instances(database):  # noqa: F811
    rs = add_client(database, "rs", "--permission", "introspect")
    assert cli(database, "user", "add", "pat", "--password-stdin",
               stdin=PASSWORD + "\n").returncode == 0
    a = Instance(database, "--strict")
    b = Instance(database, "--strict")
    try:
        r = httpx.post(a.url + "/token", data={"grant_type": "password", "username": "pat",
                                               "password": PASSWORD, "scope": "me"}, timeout=30)
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        for inst in (a, b):
            assert httpx.get(inst.url + "/status/", headers=bearer, timeout=5).status_code == 200
        assert cli(database, "user", "disable", "pat").returncode == 0
        for inst in (a, b):
            got = httpx.get(inst.url + "/status/", headers=bearer, timeout=5)
            assert got.status_code == 400 and got.json() == {"detail": "Inactive user"}
            login = httpx.post(inst.url + "/token", data={
                "grant_type": "password", "username": "pat", "password": PASSWORD},
                timeout=30)
            assert login.status_code == 400 and login.json()["error"] == "invalid_grant"
            info = httpx.post(inst.url + "/introspect", data={"token": token}, auth=("rs", rs),
                              timeout=10)
            assert info.json() == {"active": False}
    finally:
        a.stop()
        b.stop()


def test_client_revocation_across_instances(database):  # noqa: F811
    svc = add_client(database, "svc", "--scope", "items")
    other = add_client(database, "other")
    rs = add_client(database, "rs", "--permission", "introspect")
    a = Instance(database, "--revocation")
    b = Instance(database, "--revocation")
    try:
        r = httpx.post(a.url + "/token", data={"grant_type": "client_credentials"},
                       auth=("svc", svc), timeout=10)
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]

        def active():
            return httpx.post(b.url + "/introspect", data={"token": token}, auth=("rs", rs),
                              timeout=10).json()["active"]

        assert active()
        refused = httpx.post(a.url + "/revoke", data={"token": token}, auth=("other", other),
                             timeout=10)
        assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
        assert active()
        assert httpx.post(a.url + "/revoke", data={"token": token}, auth=("svc", svc),
                          timeout=10).status_code == 200
        assert within(5, lambda: not active())
    finally:
        a.stop()
        b.stop()
