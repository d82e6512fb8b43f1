"""Refresh tokens and revocation shared by two instances on one PostgreSQL database.

A token revoked on one instance is refused by the other (each polls the store's
revocations four times a second); a refresh token rotated on both at once, from many
threads, has exactly one successor (a row lock serialises the rotations, and the losers
replay within the grace period and get that same successor); a spent token presented
after the grace period revokes the login on both.

Needs GATEHOUSE_TEST_DATABASE_URL: run under `scripts/with-postgres`.
"""
from __future__ import annotations

import hashlib
import subprocess
import threading
import time

import httpx

from test_postgres import Instance, database, within  # noqa: F401  (the fixture)


def password_login(inst, scope="me"):
    r = httpx.post(inst.url + "/token", data={"grant_type": "password", "username": "johndoe",
                                              "password": "secret", "scope": scope}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def refresh(inst, token):
    return httpx.post(inst.url + "/token",
                      data={"grant_type": "refresh_token", "refresh_token": token}, timeout=10)


def psql(database, sql):
    return subprocess.run(["psql", database, "-Atc", sql], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_revocation_reaches_the_other_instance(database):  # noqa: F811
    a = Instance(database, "--demo-users", "--refresh-tokens")
    b = Instance(database, "--refresh-tokens")
    try:
        tokens = password_login(a)
        assert b.me(tokens["access_token"]).status_code == 200
        r = httpx.post(a.url + "/revoke", data={"token": tokens["access_token"]}, timeout=10)
        assert r.status_code == 200
        assert a.me(tokens["access_token"]).status_code == 401  # at once where revoked
        started = time.monotonic()
        assert within(3, lambda: b.me(tokens["access_token"]).status_code == 401)
        print(f"revocation seen by the other instance after {time.monotonic() - started:.3f} s")
        # The refresh token revoked on b is refused on a.
        assert httpx.post(b.url + "/revoke", data={"token": tokens["refresh_token"]},
                          timeout=10).status_code == 200
        r = refresh(a, tokens["refresh_token"])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    finally:
        a.stop()
        b.stop()


def test_concurrent_rotation_issues_exactly_one_successor(database):  # noqa: F811
    a = Instance(database, "--demo-users", "--refresh-tokens")
    b = Instance(database, "--refresh-tokens")
    try:
        for _ in range(3):
            start = password_login(a)["refresh_token"]
            barrier = threading.Barrier(8)
            results = []
            lock = threading.Lock()

            def rotate(inst):
                barrier.wait()
                r = refresh(inst, start)
                with lock:
                    results.append(r)

            threads = [threading.Thread(target=rotate, args=(inst,)) for inst in (a, b) * 4]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert all(r.status_code == 200 for r in results), [r.text for r in results]
            successors = {r.json()["refresh_token"] for r in results}
            assert len(successors) == 1
            # The family holds the spent token and its one successor, nothing else.
            digest = hashlib.sha256(start.encode()).hexdigest()  # stored as its SHA-256 only
            family = psql(database, f"SELECT family FROM refresh_tokens WHERE hash = '{digest}'")
            assert family
            assert psql(database, f"SELECT count(*) FROM refresh_tokens WHERE family = '{family}'"
                        ) == "2"
            (successor,) = successors
            assert refresh(b, successor).status_code == 200
    finally:
        a.stop()
        b.stop()


def test_reuse_after_grace_revokes_the_login_everywhere(database):  # noqa: F811
    a = Instance(database, "--demo-users", "--refresh-tokens", "--refresh-grace-seconds", "0")
    b = Instance(database, "--refresh-tokens", "--refresh-grace-seconds", "0")
    try:
        t0 = password_login(a)["refresh_token"]
        t1 = refresh(a, t0).json()["refresh_token"]
        r = refresh(b, t0)  # the old one, replayed
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        r = refresh(a, t1)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        assert psql(database, "SELECT count(*) FROM refresh_tokens") == "0"
    finally:
        a.stop()
        b.stop()
