"""Issue 11: gatehouse on PostgreSQL never waits for the database on an I/O thread, puts
a time limit on every wait, answers 503 (JSON, Retry-After) while the database is
locked, stopped (SIGSTOP) or shut down, and comes back by itself when it returns.

The lock test uses the server of `scripts/with-postgres`; the stop tests make a
throwaway cluster of their own (initdb/pg_ctl, as in scripts/with-postgres) because
they stop and start it. Needs GATEHOUSE_TEST_DATABASE_URL (run under
scripts/with-postgres); GATEHOUSE_SKIP_POSTGRES=1 skips.
"""
from __future__ import annotations

import json
import os
import signal
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from test_cli import free_port
from test_postgres import BASE_URL, Instance, database  # noqa: F401  (the fixture)


def wait_for(predicate, seconds, what):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what}")


def get(url, path, token=None, timeout=15):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url + path, headers=headers, timeout=timeout)


def assert_store_503(r):
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["retry-after"] == "1"
    assert "database" in json.loads(r.text)["detail"]


# ---------------------------------------------------------------- a lock on users

class Locker:
    """A psql session holding an exclusive lock on `users` until released."""

    def __init__(self, url):
        self.proc = subprocess.Popen(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.proc.stdin.write("BEGIN;\nLOCK TABLE users IN ACCESS EXCLUSIVE MODE;\n\\echo locked\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("ROLLBACK;\n\\q\n")
            self.proc.stdin.flush()
            self.proc.wait(10)


def test_database_free_routes_answer_while_users_is_locked(database):  # noqa: F811
    # One I/O thread and no user cache: every /users/me/ needs the database. Before
    # issue 11 that round trip ran on the I/O thread, and /openapi.json waited behind it.
    a = Instance(database, "--demo-users", "--io-threads", "1", "--user-cache-kib", "0",
                 "--database-timeout", "3")
    locker = None
    try:
        token = a.login("johndoe", "secret").json()["access_token"]
        assert a.me(token).status_code == 200
        locker = Locker(database)
        result = {}

        def me():
            result["r"] = get(a.url, "/users/me/", token, timeout=30)

        waiting = threading.Thread(target=me)
        waiting.start()
        time.sleep(0.3)  # the lookup is waiting on the lock now
        for path in ("/openapi.json", "/docs", "/items/", "/healthz"):
            r = get(a.url, path, token, timeout=2)  # generous: normally a millisecond
            assert r.status_code == 200, (path, r.text)
        assert waiting.is_alive(), "the locked lookup answered before the database-free routes"
        waiting.join(30)
        # The statement timed out on the server (statement_timeout): a 503 to retry.
        assert_store_503(result["r"])
        locker.release()
        assert a.me(token).status_code == 200
    finally:
        if locker:
            locker.release()
        a.stop()


def test_cached_users_are_served_while_users_is_locked(database):  # noqa: F811
    a = Instance(database, "--demo-users", "--io-threads", "1", "--database-timeout", "3")
    locker = None
    try:
        token = a.login("johndoe", "secret").json()["access_token"]
        assert a.me(token).status_code == 200  # now cached
        locker = Locker(database)
        r = get(a.url, "/users/me/", token, timeout=2)
        assert r.status_code == 200 and r.json()["username"] == "johndoe", r.text
    finally:
        if locker:
            locker.release()
        a.stop()


# ---------------------------------------------------------------- a cluster of our own

def pg_bindir():
    for d in ["/usr/lib/postgresql/15/bin", *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]:
        if Path(d, "initdb").exists():
            return str(d)
    pytest.skip("no PostgreSQL server binaries")


class Cluster:
    def __init__(self):
        self.bindir = pg_bindir()
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        owner = "postgres" if os.getuid() == 0 else os.environ.get("USER", "postgres")
        self.tmp = tempfile.mkdtemp(prefix="gatehouse-outage.", dir="/tmp")
        if self.as_owner:
            shutil.chown(self.tmp, "postgres")
        self.data = os.path.join(self.tmp, "data")
        self.port = free_port()
        self.pg("initdb", "-D", self.data, "-U", owner, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.tmp}'\n"
                    "fsync = off\nsynchronous_commit = off\nmax_connections = 100\nshared_buffers = 16MB\n")
        self.start()
        self.pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", owner, "gatehouse")
        self.url = f"postgresql://{owner}@127.0.0.1:{self.port}/gatehouse"
        self.stopped = []

    def pg(self, tool, *args):
        subprocess.run([*self.as_owner, os.path.join(self.bindir, tool), *args], check=True, cwd=self.tmp,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def start(self):
        self.pg("pg_ctl", "-D", self.data, "-l", os.path.join(self.tmp, "server.log"), "-w", "-t", "30", "-s", "start")

    def stop(self):
        self.pg("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "-s", "stop")

    def processes(self):
        postmaster = int(Path(self.data, "postmaster.pid").read_text().split()[0])
        pids = [postmaster]
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                        pids.append(int(p.name))
                except (OSError, IndexError, ValueError):
                    pass
        return pids

    def freeze(self):
        """SIGSTOP the server and every backend: connections stay open, nothing answers."""
        self.stopped = self.processes()
        for pid in self.stopped:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self):
        for pid in self.stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.stopped = []

    def connections(self, application_name):
        out = subprocess.run(["psql", "-At", self.url.rsplit("/", 1)[0] + "/postgres", "-c",
                              f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application_name}'"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        return int(out.strip())

    def destroy(self):
        self.thaw()
        try:
            self.pg("pg_ctl", "-D", self.data, "-m", "immediate", "-s", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def cluster():
    if not BASE_URL and os.environ.get("GATEHOUSE_SKIP_POSTGRES") == "1":
        pytest.skip("GATEHOUSE_SKIP_POSTGRES=1")
    c = Cluster()
    yield c
    c.destroy()


class Load:
    """Threads driving logins and /users/me/ until stopped; every answer's status (or the
    exception a client got: a hang would be a timeout) is kept."""

    def __init__(self, instance, token):
        self.statuses = []
        self.errors = []
        self.running = True
        self.lock = threading.Lock()

        def me():
            while self.running:
                self.record(lambda: get(instance.url, "/users/me/", token, timeout=15))

        def login():
            while self.running:
                self.record(lambda: instance.login("johndoe", "secret"))

        self.threads = [threading.Thread(target=f) for f in (me, me, login)]
        for t in self.threads:
            t.start()

    def record(self, call):
        try:
            r = call()
            with self.lock:
                self.statuses.append(r.status_code)
            if r.status_code == 503:
                assert r.headers.get("retry-after") and "detail" in r.json()
        except Exception as e:  # noqa: BLE001  (reported below)
            with self.lock:
                self.errors.append(repr(e))
        time.sleep(0.02)

    def stop(self):
        self.running = False
        for t in self.threads:
            t.join(60)
        assert not self.errors, self.errors[:5]
        assert set(self.statuses) <= {200, 503}, sorted(set(self.statuses))


def serving(instance, token):
    try:
        return (get(instance.url, "/users/me/", token, timeout=5).status_code == 200
                and instance.login("johndoe", "secret").status_code == 200
                and get(instance.url, "/readyz", timeout=5).status_code == 200)
    except httpx.HTTPError:
        return False


def test_sigstopped_database_gives_503_then_full_service_returns(cluster):
    a = Instance(cluster.url, "--demo-users", "--database-timeout", "2")
    load = None
    try:
        token = a.login("johndoe", "secret").json()["access_token"]
        assert get(a.url, "/readyz").status_code == 200
        load = Load(a, token)
        time.sleep(0.5)
        cluster.freeze()
        # The database-free routes do not notice.
        for path in ("/openapi.json", "/healthz", "/items/"):
            assert get(a.url, path, token, timeout=2).status_code == 200
        # Within a few seconds, everything that needs the database is a 503 ...
        wait_for(lambda: get(a.url, "/users/me/", token).status_code == 503, 20, "/users/me/ answers 503")
        assert_store_503(get(a.url, "/users/me/", token))
        assert_store_503(a.login("johndoe", "secret"))
        ready = get(a.url, "/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["store"]["ok"] is False, ready.text
        assert get(a.url, "/openapi.json", timeout=2).status_code == 200
        cluster.thaw()
        wait_for(lambda: serving(a, token), 20, "full service after SIGCONT")
        load.stop()
        load = None
        # Connections were closed, not leaked: the pool's cap, plus the watcher's.
        assert cluster.connections("gatehouse") <= 16
        assert cluster.connections("gatehouse-watch") == 1
    finally:
        cluster.thaw()
        if load:
            load.running = False
        a.stop()


def test_shut_down_database_gives_503_then_full_service_returns(cluster):
    a = Instance(cluster.url, "--demo-users", "--database-timeout", "2")
    b = Instance(cluster.url, "--database-timeout", "2")
    load = None
    try:
        token = a.login("johndoe", "secret").json()["access_token"]
        load = Load(a, token)
        time.sleep(0.5)
        cluster.stop()
        wait_for(lambda: get(b.url, "/users/me/", token).status_code == 503, 20, "503 while stopped")
        assert_store_503(b.login("johndoe", "secret"))
        assert get(b.url, "/readyz").status_code == 503
        assert get(b.url, "/openapi.json", timeout=2).status_code == 200
        time.sleep(1)
        cluster.start()
        wait_for(lambda: serving(a, token), 20, "full service on a after the restart")
        wait_for(lambda: serving(b, token), 20, "full service on b after the restart")
        load.stop()
        load = None
        assert cluster.connections("gatehouse-watch") == 2
    finally:
        if load:
            load.running = False
        a.stop()
        b.stop()


def test_sigkill_of_one_instance_loses_nothing_it_acknowledged(database):  # noqa: F811
    a = Instance(database, "--demo-users", "--revocation")
    b = Instance(database, "--revocation")
    try:
        token = a.login("johndoe", "secret").json()["access_token"]
        assert b.me(token).status_code == 200
        # b acknowledges a revocation, then dies without a word.
        assert httpx.post(b.url + "/revoke", data={"token": token}, timeout=10).status_code == 200
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(10)
        wait_for(lambda: a.me(token).status_code == 401, 5, "the revocation b acknowledged reaches a")
        time.sleep(1.1)  # a token of the same second would be the revoked one, byte for byte
        fresh = a.login("johndoe", "secret").json()["access_token"]
        assert a.me(fresh).status_code == 200
    finally:
        a.stop()
        if b.proc.poll() is None:
            b.stop()
