"""Several gatehouse instances on one PostgreSQL database, no shared memory between them:
users made, disabled, re-passworded or deleted through one (or through the CLI) are seen
by the other on its next request, and a token issued by one is accepted by the other
(the signing key lives in the database).

Needs GATEHOUSE_TEST_DATABASE_URL: run under `scripts/with-postgres`. Set
GATEHOUSE_SKIP_POSTGRES=1 to skip instead of failing.
"""
from __future__ import annotations

import os
import subprocess
import time
import uuid

import httpx
import pytest

from test_cli import BIN, await_listening, run

BASE_URL = os.environ.get("GATEHOUSE_TEST_DATABASE_URL")


@pytest.fixture
def database():
    if not BASE_URL:
        if os.environ.get("GATEHOUSE_SKIP_POSTGRES") == "1":
            pytest.skip("GATEHOUSE_SKIP_POSTGRES=1")
        pytest.fail("GATEHOUSE_TEST_DATABASE_URL is not set: run under scripts/with-postgres")
    # A database of its own per test, on the throwaway server.
    name = "gh_" + uuid.uuid4().hex[:12]
    admin = BASE_URL.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    yield BASE_URL.rsplit("/", 1)[0] + "/" + name
    subprocess.run(["psql", admin, "-qc", f"DROP DATABASE {name} WITH (FORCE)"], capture_output=True)


class Instance:
    """`gatehouse serve --port 0 --database URL`: the kernel picks a free port, and the
    server's "listening" event names it."""

    def __init__(self, database, *extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_") and k != "SECRET_KEY"}
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--host", "127.0.0.1", "--port", "0", "--database", database,
             "--no-access-log", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self.url, _ = await_listening(self.proc)
        self.port = int(self.url.rsplit(":", 1)[1])

    def login(self, user, password):
        return httpx.post(self.url + "/token", data={"username": user, "password": password, "scope": "me"},
                          timeout=10)

    def me(self, token):
        return httpx.get(self.url + "/users/me/", headers={"Authorization": f"Bearer {token}"}, timeout=5)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def cli(database, *args, stdin=None):
    return run(*args, "--database", database, stdin=stdin)


def within(seconds: float, check, interval: float = 0.05) -> bool:
    """True as soon as check() is; False if it is still not after `seconds`."""
    end = time.time() + seconds
    while time.time() < end:
        if check():
            return True
        time.sleep(interval)
    return check()


def test_two_instances_share_users_and_tokens(database):
    a = Instance(database, "--demo-users")
    b = Instance(database)
    try:
        # A token issued by one instance is accepted by the other.
        token = a.login("johndoe", "secret").json()["access_token"]
        assert b.me(token).json()["username"] == "johndoe"
        token_b = b.login("johndoe", "secret").json()["access_token"]
        assert a.me(token_b).status_code == 200

        # Made through the CLI, seen by both at once.
        assert cli(database, "user", "add", "nina", "--password-stdin", stdin="pw-nina\n").returncode == 0
        t = a.login("nina", "pw-nina").json()["access_token"]
        assert b.me(t).json()["username"] == "nina"

        # Disabled: both answer Inactive user on the next request.
        assert cli(database, "user", "disable", "nina").returncode == 0
        assert a.me(t).json() == {"detail": "Inactive user"}
        assert b.me(t).json() == {"detail": "Inactive user"}
        assert cli(database, "user", "enable", "nina").returncode == 0
        assert b.me(t).status_code == 200

        # Re-passworded: the old password stops working everywhere.
        assert cli(database, "user", "passwd", "nina", "--password-stdin", stdin="pw-2\n").returncode == 0
        assert a.login("nina", "pw-nina").status_code == 401
        assert b.login("nina", "pw-2").status_code == 200

        # Deleted: tokens stop working everywhere.
        assert cli(database, "user", "delete", "nina").returncode == 0
        assert a.me(t).status_code == 401 and b.me(t).status_code == 401
    finally:
        a.stop()
        b.stop()


def test_postgres_store_is_not_seeded_without_demo_users(database):
    a = Instance(database)
    try:
        assert a.login("johndoe", "secret").status_code == 401
    finally:
        a.stop()
    assert cli(database, "user", "list").stdout == ""


def test_user_survives_restart_on_postgres(database):
    assert cli(database, "user", "add", "oscar", "--password-stdin", stdin="pw-oscar\n").returncode == 0
    a = Instance(database)
    token = a.login("oscar", "pw-oscar").json()["access_token"]
    a.stop()
    a = Instance(database)
    try:
        assert a.me(token).json()["username"] == "oscar"
    finally:
        a.stop()


def test_instances_starting_together_migrate_once(database):
    instances = [Instance(database) for _ in range(3)]
    try:
        assert all(i.login("nobody", "x").status_code == 401 for i in instances)
    finally:
        for i in instances:
            i.stop()
    out = subprocess.run(["psql", database, "-Atc", "select count(*) from schema_migrations"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "5"  # migrations 1 to 5, each applied once
