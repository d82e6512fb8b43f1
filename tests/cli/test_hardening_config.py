"""Hardening of settings, files and secrets (issue 8, findings 8-12), as an operator
sees it: what `gatehouse serve` and the other commands accept, refuse and print.

Run: /usr/bin/python3 -m pytest tests/cli/test_hardening_config.py
"""
from __future__ import annotations

import json
import os
import socket
import stat
import struct
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from test_cli import BIN, await_listening, free_port, run


def clean_env(extra=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_") and k != "SECRET_KEY"}
    e.update(extra or {})
    return e


class Serve:
    """`gatehouse [pre...] serve ARGS --port 0` (the kernel picks a free port, the
    "listening" event names it); waits until it listens, keeps what it printed to stderr
    before that."""

    def __init__(self, *args, env=None, pre=(), umask=None, cwd=None):
        self.proc = subprocess.Popen(
            [str(BIN), *pre, "serve", "--host", "127.0.0.1", "--port", "0", "--no-access-log", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env(env), text=True, cwd=cwd,
            preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)
        self.url, self.stderr = await_listening(self.proc)
        self.port = int(self.url.rsplit(":", 1)[1])

    def login(self, username, password):
        return httpx.post(self.url + "/token", data={"username": username, "password": password, "scope": "me"},
                          timeout=10)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---- finding 10: demo users only when asked ---------------------------------------

def test_plain_serve_seeds_no_demo_users_and_says_how_to_add_one(tmp_path):
    data = tmp_path / "data"
    with Serve("--data-dir", str(data)) as s:
        assert s.login("johndoe", "secret").status_code == 401
        assert s.login("alice", "secret2").status_code == 401
        assert "gatehouse user add NAME" in s.stderr
        assert "demo users johndoe" not in s.stderr
    assert run("user", "list", "--data-dir", str(data), check=0).stdout == ""


@pytest.mark.parametrize("how", ["flag", "env", "config"])
def test_demo_users_are_seeded_when_asked(tmp_path, how):
    data = tmp_path / "data"
    args, env, pre = ["--data-dir", str(data)], {}, []
    if how == "flag":
        args.append("--demo-users")
    elif how == "env":
        env["GATEHOUSE_DEMO_USERS"] = "true"
    else:
        config = tmp_path / "gatehouse.toml"
        config.write_text("demo-users = true\n")
        pre = ["--config", str(config)]
    with Serve(*args, env=env, pre=pre) as s:
        assert s.login("johndoe", "secret").status_code == 200
        assert "passwords are public" in s.stderr
        assert "gatehouse user add NAME" not in s.stderr


def test_no_hint_once_a_user_exists(tmp_path):
    data = tmp_path / "data"
    run("user", "add", "olga", "--data-dir", str(data), "--password-stdin", stdin="pw-olga\n", check=0)
    with Serve("--data-dir", str(data)) as s:
        assert s.login("olga", "pw-olga").status_code == 200
        assert "gatehouse user add" not in s.stderr


def test_setup_and_run_asks_for_the_demo_users():
    script = (Path(__file__).resolve().parents[2] / "scripts" / "setup-and-run").read_text()
    serve_line = [line for line in script.splitlines() if " serve " in line and not line.startswith("#")]
    assert serve_line and all("--demo-users" in line for line in serve_line), serve_line


# ---- finding 8: every setting is checked at start-up -------------------------------

BAD_SERVE_SETTINGS = [
    # (flags, environment, config file text, what the message must say)
    (["--argon2-iterations", "0"], {}, None, "invalid argon2-iterations '0' (from --argon2-iterations)"),
    ([], {"GATEHOUSE_ARGON2_PARALLELISM": "0"}, None,
     "invalid argon2-parallelism '0' (from environment variable GATEHOUSE_ARGON2_PARALLELISM)"),
    (["--argon2-memory-kib", "8", "--argon2-parallelism", "4"], {}, None, "invalid argon2-memory-kib '8'"),
    ([], {}, "argon2-memory-kib = 99999999999\n", "invalid argon2-memory-kib '99999999999' (from config file"),
    (["--port", "70000"], {}, None, "invalid port '70000' (from --port)"),
    ([], {"GATEHOUSE_PORT": "http"}, None, "invalid port 'http' (from environment variable GATEHOUSE_PORT)"),
    (["--access-token-expire-minutes", "0"], {}, None, "invalid access-token-expire-minutes '0'"),
    ([], {"ACCESS_TOKEN_EXPIRE_MINUTES": "-5"}, None, "(from environment variable ACCESS_TOKEN_EXPIRE_MINUTES)"),
    (["--workers", "lots"], {}, None, "invalid workers 'lots' (from --workers)"),
    (["--io-threads", "100000"], {}, None, "invalid io-threads '100000'"),
    (["--worker-queue", "0"], {}, None, "invalid worker-queue '0'"),
    (["--throttle-base-delay", "10", "--throttle-max-delay", "5"], {}, None,
     "invalid throttle-max-delay '5' (from --throttle-max-delay): must be at least throttle-base-delay"),
    ([], {"GATEHOUSE_THROTTLE_USER_WINDOW": "0"}, None, "invalid throttle-user-window '0'"),
    ([], {"GATEHOUSE_MAX_CONNECTIONS_PER_CLIENT": "-1"}, None,
     "invalid max-connections-per-client '-1' (from environment variable GATEHOUSE_MAX_CONNECTIONS_PER_CLIENT)"),
    (["--host", "localhost"], {}, None, "invalid host 'localhost' (from --host)"),
    (["--host", "not an address"], {}, None, "invalid host"),
    (["--web-dir", "/nonexistent/web"], {}, None, "invalid web-dir '/nonexistent/web' (from --web-dir): no such directory"),
    ([], {"GATEHOUSE_ACCESS_LOG": "sometimes"}, None, "invalid access-log 'sometimes'"),
    ([], {}, "demo-users = perhaps\n", "invalid demo-users 'perhaps' (from config file"),
    ([], {}, "prot = 8001\n", "unknown setting 'prot'"),
    (["--database", "postgresql://u@h/db?bogus=1"], {}, None, "invalid database"),
    ([], {}, 'data-dir = ""\n', "invalid data-dir '' (from config file"),
    (["--demo-users", "--no-demo-users"], {}, None, "excludes"),
]


@pytest.mark.parametrize("flags,env,config_text,message", BAD_SERVE_SETTINGS,
                         ids=[" ".join(c[0]) or next(iter(c[1]), None) or c[2].strip() for c in BAD_SERVE_SETTINGS])
def test_bad_settings_stop_serve_before_it_starts(tmp_path, flags, env, config_text, message):
    data = tmp_path / "data"
    pre = []
    if config_text is not None:
        config = tmp_path / "gatehouse.toml"
        config.write_text(config_text)
        config.chmod(0o600)
        pre = ["--config", str(config)]
    port = [] if "--port" in flags or "GATEHOUSE_PORT" in env else ["--port", str(free_port())]
    dirs = [] if config_text and "data-dir" in config_text else ["--data-dir", str(data)]
    p = subprocess.run([str(BIN), *pre, "serve", *port, *dirs, *flags],
                       capture_output=True, text=True, env=clean_env(env), timeout=30)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert message in p.stderr, p.stderr
    assert "listening" not in p.stderr
    assert not data.exists(), "a bad setting must stop the command before it creates anything"


def test_argon2_iterations_0_no_longer_makes_a_server_that_answers_500(tmp_path):
    """The finding as reported: the server started, then every argon2 login was a 500."""
    data = tmp_path / "data"
    run("user", "add", "ann", "--data-dir", str(data), "--password-stdin", stdin="pw-ann\n", check=0)
    p = subprocess.run([str(BIN), "serve", "--port", str(free_port()), "--data-dir", str(data),
                        "--argon2-iterations", "0"], capture_output=True, text=True, env=clean_env(), timeout=30)
    assert p.returncode == 2 and "argon2-iterations" in p.stderr, p.stderr


@pytest.mark.parametrize("command", [["user", "add", "x", "--password-stdin"], ["user", "passwd", "x", "--password-stdin"],
                                     ["hash"]])
def test_other_commands_check_their_settings_too(tmp_path, command):
    p = run(*command, "--argon2-memory-kib", "4", *(["--data-dir", str(tmp_path / "d")] if command[0] == "user" else []),
            stdin="pw\n")
    assert p.returncode == 2 and "invalid argon2-memory-kib '4' (from --argon2-memory-kib)" in p.stderr, p.stderr
    p = run(*command, *(["--data-dir", str(tmp_path / "d")] if command[0] == "user" else []), stdin="pw\n",
            env={"GATEHOUSE_ARGON2_ITERATIONS": "1001"})
    assert p.returncode == 2 and "(from environment variable GATEHOUSE_ARGON2_ITERATIONS)" in p.stderr, p.stderr


def test_a_setting_of_another_command_does_not_stop_this_one(tmp_path):
    # GATEHOUSE_PORT is serve's; `user list` does not read it.
    p = run("user", "list", "--data-dir", str(tmp_path / "d"), env={"GATEHOUSE_PORT": "nonsense"})
    assert p.returncode == 0, p.stderr


def test_good_settings_from_every_source_still_start(tmp_path):
    config = tmp_path / "gatehouse.toml"
    config.write_text('access-token-expire-minutes = 5\nworkers = 2\nargon2-iterations = 3\n')
    config.chmod(0o644)  # no secret inside: readable by others is fine
    with Serve("--data-dir", str(tmp_path / "d"), "--io-threads", "2", env={"GATEHOUSE_WORKER_QUEUE": "10"},
               pre=["--config", str(config)]) as s:
        assert httpx.get(s.url + "/openapi.json", timeout=5).status_code == 200


# ---- finding 9: key and data files ----------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")


def test_nested_data_dir_under_umask_000_is_private(tmp_path):
    with Serve("--data-dir", "a/b/data", umask=0, cwd=tmp_path) as s:  # no SECRET_KEY: a key file is made
        assert s.proc.poll() is None
    for d in ("a", "a/b", "a/b/data"):
        assert stat.S_IMODE((tmp_path / d).stat().st_mode) == 0o700, d
    files = list((tmp_path / "a/b/data").iterdir())
    assert {f.name for f in files} >= {"secret_key", "gatehouse.db"}
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


@needs_root
def test_a_key_file_of_another_user_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    key = data / "secret_key"
    key.write_text("chosen-by-whoever-owns-the-path\n")
    key.chmod(0o600)
    os.chown(key, 65534, 65534)
    p = run("serve", "--port", str(free_port()), "--data-dir", str(data))
    assert p.returncode == 2, p.stderr
    assert "secret_key belongs to uid 65534" in p.stderr, p.stderr
    assert "chosen-by-whoever" not in p.stderr


def test_a_key_file_open_to_others_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    key = data / "secret_key"
    key.write_text("k" * 64 + "\n")
    key.chmod(0o640)
    p = run("serve", "--port", str(free_port()), "--data-dir", str(data))
    assert p.returncode == 2 and "secret_key is open to group or others (mode 0640); chmod 600 it" in p.stderr, p.stderr
    assert "k" * 64 not in p.stderr


@needs_root
def test_a_database_of_another_user_is_refused(tmp_path):
    data = tmp_path / "data"
    run("migrate", "--data-dir", str(data), check=0)
    os.chown(data / "gatehouse.db", 65534, 65534)
    for args in (["user", "list"], ["migrate"]):
        p = run(*args, "--data-dir", str(data))
        assert p.returncode == 2 and "gatehouse.db belongs to uid 65534" in p.stderr, p.stderr


def test_a_database_open_to_others_is_refused(tmp_path):
    data = tmp_path / "data"
    run("migrate", "--data-dir", str(data), check=0)
    (data / "gatehouse.db").chmod(0o644)
    p = run("user", "list", "--data-dir", str(data))
    assert p.returncode == 2 and "gatehouse.db is open to group or others (mode 0644)" in p.stderr, p.stderr


def test_servers_starting_together_agree_on_one_key(tmp_path):
    data = tmp_path / "data"
    run("user", "add", "kim", "--data-dir", str(data), "--password-stdin", stdin="pw-kim\n", check=0)
    servers = []
    try:
        procs = []
        for _ in range(6):  # all started at once on a store that has no key yet
            # --port 0: the kernel picks a port no other server holds, and the server says which
            procs.append(subprocess.Popen(
                [str(BIN), "serve", "--port", "0", "--data-dir", str(data), "--no-access-log"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env(), text=True))
        for proc in procs:
            said = []
            end = time.time() + 30
            while time.time() < end:
                line = proc.stderr.readline()
                if not line:
                    break
                said.append(line)
                if '"event":"listening"' in line:
                    servers.append((json.loads(line)["url"], proc))
                    break
            assert said and '"event":"listening"' in said[-1], "".join(said) + proc.stderr.read()
        tokens = [httpx.post(url + "/token", data={"username": "kim", "password": "pw-kim", "scope": "me"}, timeout=30)
                  .json()["access_token"] for url, _ in servers]
        for url, _ in servers:
            for t in tokens:
                r = httpx.get(url + "/users/me/", headers={"Authorization": f"Bearer {t}"}, timeout=5)
                assert r.status_code == 200, r.text
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    assert [f.name for f in data.iterdir() if f.name.startswith(".secret_key")] == []


# ---- finding 11: the help says what disabling does ---------------------------------------

def test_disable_help_says_what_is_true(tmp_path):
    help_text = run("user", "disable", "--help", check=0).stdout
    assert "at once" not in help_text
    assert "/status/ still accepts" in help_text
    for cmd in (["--help"], ["user", "--help"], ["serve", "--help"]):
        assert "at once" not in run(*cmd, check=0).stdout
    # and it is true: a disabled user still logs in and /status/ takes the token,
    # while /users/me/ answers 400 Inactive user
    data = tmp_path / "data"
    run("user", "add", "dan", "--data-dir", str(data), "--password-stdin", stdin="pw-dan\n", check=0)
    with Serve("--data-dir", str(data)) as s:
        token = s.login("dan", "pw-dan").json()["access_token"]
        run("user", "disable", "dan", "--data-dir", str(data), check=0)
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(s.url + "/status/", headers=auth, timeout=5).status_code == 200
        r = httpx.get(s.url + "/users/me/", headers=auth, timeout=5)
        assert (r.status_code, r.json()) == (400, {"detail": "Inactive user"})
        assert s.login("dan", "pw-dan").status_code == 200


# ---- finding 12: the database password outside the command line -------------------------

class FakePostgres:
    """Listens like a PostgreSQL server, asks for a cleartext password, keeps what the
    client sends, then refuses the login: enough to see which password libpq sent."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.passwords = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.handle(conn)
                except (OSError, struct.error):
                    pass

    @staticmethod
    def read_exact(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def handle(self, conn):
        while True:  # SSLRequest / GSSENCRequest are answered "N", then the startup message
            length, code = struct.unpack("!ii", self.read_exact(conn, 8))
            self.read_exact(conn, length - 8)
            if code in (80877103, 80877104):
                conn.sendall(b"N")
                continue
            break
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind = self.read_exact(conn, 1)
        (length,) = struct.unpack("!i", self.read_exact(conn, 4))
        body = self.read_exact(conn, length - 4)
        if kind == b"p":
            self.passwords.append(body.rstrip(b"\0").decode())
        fields = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"gh\"\0\0"
        conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)

    def url(self, password=None):
        user = "gh" if password is None else f"gh:{password}"
        return f"postgresql://{user}@127.0.0.1:{self.port}/gh?sslmode=disable&gssencmode=disable"

    def close(self):
        self.sock.close()


@pytest.fixture
def fake_postgres(monkeypatch):
    # libpq's own variables would change what it sends
    for k in ("PGPASSWORD", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", "PGUSER", "PGHOST", "PGSSLMODE"):
        monkeypatch.delenv(k, raising=False)
    server = FakePostgres()
    yield server
    server.close()


def secret_file(path, text, mode=0o600):
    path.write_text(text)
    path.chmod(mode)
    return path


def no_pg_env(extra=None):
    return dict(extra or {})


@pytest.mark.parametrize("how", ["flag", "env", "config"])
def test_database_password_file_is_what_libpq_sends(tmp_path, fake_postgres, how):
    pw = secret_file(tmp_path / "db-password", "pw-from-file-7731\n")
    args, env = ["user", "list", "--database", fake_postgres.url()], no_pg_env()
    if how == "flag":
        args += ["--database-password-file", str(pw)]
    elif how == "env":
        env["GATEHOUSE_DATABASE_PASSWORD_FILE"] = str(pw)
    else:
        config = tmp_path / "gatehouse.toml"
        config.write_text(f'database-password-file = "{pw}"\n')
        args = ["--config", str(config)] + args
    p = run(*args, env=env)
    assert p.returncode == 1, p.stderr  # the fake server refuses the login
    assert fake_postgres.passwords and set(fake_postgres.passwords) == {"pw-from-file-7731"}
    assert "pw-from-file-7731" not in p.stderr + p.stdout
    assert "password authentication failed" in p.stderr


def test_password_file_open_to_others_is_refused(tmp_path, fake_postgres):
    pw = secret_file(tmp_path / "db-password", "pw-open-5521\n", mode=0o644)
    p = run("user", "list", "--database", fake_postgres.url(), "--database-password-file", str(pw),
            env=no_pg_env())
    assert p.returncode == 2, p.stderr
    assert "invalid database-password-file" in p.stderr and "(from --database-password-file)" in p.stderr
    assert "open to group or others (mode 0644); chmod 600 it" in p.stderr
    assert "pw-open-5521" not in p.stderr
    assert fake_postgres.passwords == []  # refused before connecting


def test_password_file_needs_a_postgres_database(tmp_path):
    pw = secret_file(tmp_path / "db-password", "x\n")
    p = run("user", "list", "--data-dir", str(tmp_path / "d"), "--database-password-file", str(pw))
    assert p.returncode == 2 and "only a postgresql:// database has a password" in p.stderr, p.stderr


def test_libpq_pgpassfile_is_used(tmp_path, fake_postgres):
    passfile = secret_file(tmp_path / "pgpass", f"127.0.0.1:{fake_postgres.port}:gh:gh:pw-pgpass-9012\n")
    p = run("user", "list", "--database", fake_postgres.url(), env=no_pg_env({"PGPASSFILE": str(passfile)}))
    assert p.returncode == 1
    assert fake_postgres.passwords == ["pw-pgpass-9012"]
    assert "pw-pgpass-9012" not in p.stderr


def test_password_in_the_url_is_never_shown(tmp_path, fake_postgres):
    url = fake_postgres.url("pw-in-url-4420")
    for args in (["user", "list", "--database", url],
                 ["serve", "--port", str(free_port()), "--database", url],
                 ["serve", "--port", "99999", "--database", url],
                 ["serve", "--database", url + "&bogus=1"]):
        p = run(*args, env=no_pg_env())
        assert p.returncode in (1, 2), p.stderr
        assert "pw-in-url-4420" not in p.stderr + p.stdout, p.stderr
        assert "gatehouse:" in p.stderr


def test_config_file_holding_a_secret_must_be_private(tmp_path, fake_postgres):
    config = tmp_path / "gatehouse.toml"
    config.write_text(f'database = "{fake_postgres.url("pw-config-8080")}"\n')
    config.chmod(0o644)
    p = run("--config", str(config), "user", "list", env=no_pg_env())
    assert p.returncode == 2, p.stderr
    assert f"config file {config} holds a secret (database) and is readable by group or others" in p.stderr
    assert "pw-config-8080" not in p.stderr
    assert fake_postgres.passwords == []
    config.chmod(0o600)
    p = run("--config", str(config), "user", "list", env=no_pg_env())
    assert p.returncode == 1 and fake_postgres.passwords == ["pw-config-8080"], p.stderr
    assert "pw-config-8080" not in p.stderr


def test_config_file_writable_by_others_is_refused(tmp_path):
    config = tmp_path / "gatehouse.toml"
    config.write_text(f'data-dir = "{tmp_path / "d"}"\n')
    config.chmod(0o666)
    p = run("--config", str(config), "user", "list")
    assert p.returncode == 2 and "is writable by group or others (mode 0666); chmod go-w it" in p.stderr, p.stderr


@needs_root
def test_config_file_of_another_user_is_refused(tmp_path):
    config = tmp_path / "gatehouse.toml"
    config.write_text(f'data-dir = "{tmp_path / "d"}"\n')
    config.chmod(0o644)
    os.chown(config, 65534, 65534)
    p = run("--config", str(config), "user", "list")
    assert p.returncode == 2 and "belongs to uid 65534, not to this user or root" in p.stderr, p.stderr
