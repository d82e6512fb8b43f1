"""Registered clients on PostgreSQL, shared by two instances: a client added with the CLI
gets a client_credentials token from one instance that the other introspects; the stored
record holds no secret (a keyed hash only); a client deleted with the CLI is refused by
both instances within a second or so (each re-reads the clients four times a second).

Needs GATEHOUSE_TEST_DATABASE_URL: run under `scripts/with-postgres`.
"""
from __future__ import annotations

import subprocess

import httpx

from test_postgres import Instance, cli, database, within  # noqa: F401  (the fixture)


def add_client(database, client_id, *args):
    r = cli(database, "client", "add", client_id, *args)
    assert r.returncode == 0, r.stderr
    out = r.stdout if isinstance(r.stdout, str) else r.stdout.decode()
    return [line.split(": ", 1)[1] for line in out.splitlines()
            if line.startswith("client_secret: ")][0]


def cc(inst, client_id, secret, **data):
    return httpx.post(inst.url + "/token", data={"grant_type": "client_credentials", **data},
                      auth=(client_id, secret), timeout=10)


def test_clients_shared_by_two_instances(database):  # noqa: F811
    svc = add_client(database, "svc", "--scope", "items")
    rs = add_client(database, "rs", "--permission", "introspect")
    stored = subprocess.run(["psql", database, "-Atc",
                             "SELECT value FROM settings WHERE name = 'oauth_clients'"],
                            capture_output=True, text=True).stdout
    assert '"svc"' in stored  # the record is there, its secret is not
    assert svc not in stored and rs not in stored
    a = Instance(database)
    b = Instance(database)
    try:
        r = cc(a, "svc", svc, scope="items me")
        assert r.status_code == 200, r.text
        assert r.json()["scope"] == "items"
        token = r.json()["access_token"]
        i = httpx.post(b.url + "/introspect", data={"token": token}, auth=("rs", rs), timeout=10)
        assert i.status_code == 200 and i.json()["active"] is True
        assert i.json()["client_id"] == "svc"
        assert cc(b, "svc", rs).status_code == 401

        assert cli(database, "client", "delete", "svc").returncode == 0
        assert within(5, lambda: cc(a, "svc", svc).status_code == 401)
        assert within(5, lambda: cc(b, "svc", svc).status_code == 401)
        # The other client is untouched; the deleted client's token is no longer active.
        assert within(5, lambda: httpx.post(a.url + "/introspect", data={"token": token},
                                            auth=("rs", rs), timeout=10).json()
                      == {"active": False})
    finally:
        a.stop()
        b.stop()
