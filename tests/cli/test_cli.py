"""The gatehouse command as an operator uses it: exit codes, messages, the password
prompt, users that persist across restarts, changes that reach a running server at
once, imports from a FastAPI app's users, config precedence, and durability after
SIGKILL.

Run: /usr/bin/python3 -m pytest tests/cli   (GATEHOUSE_BIN overrides build/gatehouse)
"""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
import testlogs  # noqa: E402  (the secrets list for scripts/scan-test-logs)

testlogs.install_httpx_hook()
BIN = Path(os.environ.get("GATEHOUSE_BIN", REPO / "build" / "gatehouse"))
if not BIN.is_absolute():
    BIN = REPO / BIN

# The reference's demo hash of "secret" (passlib bcrypt, cost 12).
SECRET_HASH = "$2b$12$h93UtAq4.OvsQYxEl8vsAeF7d4wVrgIFCdzcA842pX0hYxsStodHq"


def run(*args, stdin=None, env=None, check=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    e.pop("SECRET_KEY", None)
    e.update(env or {})
    p = subprocess.run([str(BIN), *args], input=stdin, capture_output=True, text=True, env=e, timeout=60)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def await_listening(proc, timeout=15):
    """Reads a starting server's stderr (a pipe, bytes or text) up to its "listening"
    event: (its url, what it printed until then). Kills it and raises with what it said
    if it exits or takes longer than `timeout` seconds."""
    said = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        said.append(line.decode(errors="replace") if isinstance(line, bytes) else line)
        if '"event":"listening"' in said[-1]:
            return json.loads(said[-1])["url"], "".join(said)
    proc.kill()
    rest = proc.stderr.read()
    proc.wait()
    raise RuntimeError("server did not start: " + "".join(said)
                       + (rest.decode(errors="replace") if isinstance(rest, bytes) else rest))


class Server:
    def __init__(self, data_dir: Path, extra=(), env=None, wrap=()):
        """`wrap`: a command that execs the server (prlimit, setpriv...). self.lines: what
        it printed up to its listening event."""
        e = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
        e["SECRET_KEY"] = "cli-test-key"
        e.update(env or {})
        # --port 0: the kernel picks a free port and the server's "listening" event names it,
        # so two servers can never race for one port.
        self.proc = subprocess.Popen(
            [*wrap, str(BIN), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir",
             str(data_dir), "--no-access-log", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
        self.url, said = await_listening(self.proc, timeout=30)
        self.lines = said.splitlines()
        self.port = int(self.url.rsplit(":", 1)[1])

    def login(self, username, password, scope="me", timeout=10):
        return httpx.post(self.url + "/token", data={"username": username, "password": password, "scope": scope},
                          timeout=timeout)

    def me(self, token):
        return httpx.get(self.url + "/users/me/", headers={"Authorization": f"Bearer {token}"}, timeout=5)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def add_user(data_dir, name, password, *extra):
    return run("user", "add", name, "--data-dir", str(data_dir), "--password-stdin", *extra, stdin=password + "\n")


def test_user_add_then_login_after_restart(data_dir):
    assert add_user(data_dir, "carol", "pa55word", "--email", "carol@example.com",
                    "--full-name", "Carol C").returncode == 0
    s = Server(data_dir)
    try:
        r = s.login("carol", "pa55word")
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
    finally:
        s.stop()
    s = Server(data_dir)  # restart: the user and the key file persist
    try:
        assert s.me(token).json() == {"username": "carol", "email": "carol@example.com",
                                      "full_name": "Carol C", "disabled": False}
        assert s.login("carol", "wrong").status_code == 401
    finally:
        s.stop()


def test_user_with_allowed_scopes_gets_only_those(data_dir):
    assert add_user(data_dir, "paula", "pw-paula", "--scope", "me").returncode == 0
    assert add_user(data_dir, "quinn", "pw-quinn").returncode == 0
    shown = json.loads(run("user", "show", "paula", "--data-dir", str(data_dir), check=0).stdout)
    assert shown["scopes"] == ["me"]
    s = Server(data_dir)
    try:
        token = s.login("paula", "pw-paula", scope="items me").json()["access_token"]
        assert s.me(token).status_code == 200
        items = httpx.get(s.url + "/users/me/items/", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert (items.status_code, items.json()) == (401, {"detail": "Not enough permissions"})
        # users without a list (like the demo users) get what they ask for, as in FastAPI
        demo = s.login("quinn", "pw-quinn", scope="items me").json()["access_token"]
        items = httpx.get(s.url + "/users/me/items/", headers={"Authorization": f"Bearer {demo}"}, timeout=5)
        assert items.status_code == 200
    finally:
        s.stop()


def test_new_users_get_argon2id_hashes(data_dir):
    add_user(data_dir, "dave", "pw-dave")
    row = sqlite3.connect(data_dir / "gatehouse.db").execute(
        "select hashed_password from users where username='dave'").fetchone()
    assert row[0].startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_data_files_are_private(data_dir):
    add_user(data_dir, "erin", "pw")
    s = Server(data_dir, env={"SECRET_KEY": ""})  # no SECRET_KEY: a key file is made
    s.stop()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for f in data_dir.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_existing_store_is_never_reseeded(data_dir):
    s = Server(data_dir, extra=["--demo-users"])
    s.stop()
    assert run("user", "delete", "johndoe", "--data-dir", str(data_dir)).returncode == 0
    s = Server(data_dir, extra=["--demo-users"])
    try:
        assert s.login("johndoe", "secret").status_code == 401
    finally:
        s.stop()


def test_no_demo_users(data_dir):
    s = Server(data_dir, extra=["--no-demo-users"], env={"GATEHOUSE_DEMO_USERS": "true"})
    try:
        assert s.login("johndoe", "secret").status_code == 401
    finally:
        s.stop()
    assert run("user", "list", "--data-dir", str(data_dir), check=0).stdout == ""


def test_disable_and_delete_reach_a_running_server_at_once(data_dir):
    add_user(data_dir, "frank", "pw-frank")
    s = Server(data_dir)
    try:
        token = s.login("frank", "pw-frank").json()["access_token"]
        for _ in range(5):  # warm every I/O thread's cache
            assert s.me(token).status_code == 200
        run("user", "disable", "frank", "--data-dir", str(data_dir), check=0)
        for _ in range(5):
            assert s.me(token).json() == {"detail": "Inactive user"}
        run("user", "enable", "frank", "--data-dir", str(data_dir), check=0)
        assert s.me(token).status_code == 200
        run("user", "passwd", "frank", "--data-dir", str(data_dir), "--password-stdin", stdin="new-pw\n", check=0)
        assert s.login("frank", "pw-frank").status_code == 401
        assert s.login("frank", "new-pw").status_code == 200
        run("user", "delete", "frank", "--data-dir", str(data_dir), check=0)
        for _ in range(5):
            r = s.me(token)
            assert (r.status_code, r.json()) == (401, {"detail": "Could not validate credentials"})
    finally:
        s.stop()


def test_exit_codes_and_messages(data_dir):
    assert add_user(data_dir, "gina", "pw").returncode == 0
    p = add_user(data_dir, "gina", "pw")
    assert p.returncode == 4 and "already exists: gina" in p.stderr
    p = run("user", "disable", "nobody", "--data-dir", str(data_dir))
    assert p.returncode == 3 and "no such user: nobody" in p.stderr
    p = run("user", "show", "nobody", "--data-dir", str(data_dir))
    assert p.returncode == 3
    p = run("user", "frobnicate", "--data-dir", str(data_dir))
    assert p.returncode == 2
    p = run("user", "add", "henry", "--data-dir", str(data_dir), "--password-stdin", stdin="")
    assert p.returncode == 2 and "no password" in p.stderr
    p = run("user", "add", "henry", "--data-dir", str(data_dir))  # no terminal, no --password-stdin
    assert p.returncode == 2 and "--password-stdin" in p.stderr
    p = run("serve", "--port", "notaport", "--data-dir", str(data_dir))
    assert p.returncode == 2 and "port" in p.stderr
    assert run("--help").returncode == 0
    shown = json.loads(run("user", "show", "gina", "--data-dir", str(data_dir), check=0).stdout)
    assert shown["username"] == "gina" and "hashed_password" not in shown


def test_password_prompt_does_not_echo(data_dir):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(str(BIN), [str(BIN), "user", "add", "ivan", "--data-dir", str(data_dir)])
    out = b""

    def expect(text, timeout=10):
        nonlocal out
        end = time.time() + timeout
        while text not in out and time.time() < end:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    out += os.read(fd, 1024)
                except OSError:
                    break
        assert text in out, out

    testlogs.record_secret("hunter2-secret")
    expect(b"Password: ")
    os.write(fd, b"hunter2-secret\n")
    expect(b"Repeat password: ")
    os.write(fd, b"hunter2-secret\n")
    expect(b"added ivan")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"hunter2" not in out  # never echoed
    s = Server(data_dir)
    try:
        assert s.login("ivan", "hunter2-secret").status_code == 200
    finally:
        s.stop()


def test_import_fastapi_users_keeps_their_hashes(data_dir, tmp_path):
    users = {"johnny": {"username": "johnny", "full_name": "John Doe", "email": "j@example.com",
                        "hashed_password": SECRET_HASH, "disabled": False}}
    (tmp_path / "users.json").write_text(json.dumps(users))
    (tmp_path / "users.csv").write_text(
        "username,email,full_name,hashed_password,disabled\n"
        f'kate,k@example.com,"Kate, K",{SECRET_HASH},false\n'
        f"liam,,,{SECRET_HASH},true\n")
    p = run("user", "import", str(tmp_path / "users.json"), "--data-dir", str(data_dir), check=0)
    assert "imported 1 users" in p.stdout
    p = run("user", "import", str(tmp_path / "users.csv"), "--data-dir", str(data_dir), check=0)
    assert "imported 2 users" in p.stdout
    (tmp_path / "bad.csv").write_text("username,hashed_password\nmia,plaintext\n")
    p = run("user", "import", str(tmp_path / "bad.csv"), "--data-dir", str(data_dir))
    assert p.returncode == 2 and "unsupported hash" in p.stderr
    s = Server(data_dir, extra=["--no-demo-users"])
    try:
        for name in ("johnny", "kate"):
            assert s.login(name, "secret").status_code == 200
        token = s.login("liam", "secret").json()["access_token"]  # disabled users get tokens
        assert s.me(token).json() == {"detail": "Inactive user"}
        assert s.me(s.login("kate", "secret").json()["access_token"]).json()["full_name"] == "Kate, K"
    finally:
        s.stop()


def test_hash_command_output_verifies(data_dir):
    bcrypt = run("hash", "--algorithm", "bcrypt", "--cost", "4", stdin="s3cret\n", check=0).stdout.strip()
    argon = run("hash", stdin="s3cret\n", check=0).stdout.strip()
    assert bcrypt.startswith("$2b$04$") and argon.startswith("$argon2id$")
    db = data_dir / "gatehouse.db"
    run("migrate", "--data-dir", str(data_dir), check=0)
    con = sqlite3.connect(db)
    con.execute("insert into users(username, hashed_password) values ('b', ?), ('a', ?)", (bcrypt, argon))
    con.commit()
    con.close()
    s = Server(data_dir, extra=["--no-demo-users"])
    try:
        assert s.login("b", "s3cret").status_code == 200
        assert s.login("a", "s3cret").status_code == 200
        assert s.login("a", "s3cret!").status_code == 401
    finally:
        s.stop()


def test_settings_precedence_flag_env_file(tmp_path):
    data_dir = tmp_path / "d"
    config = tmp_path / "gatehouse.toml"
    port_file, port_env, port_flag = free_port(), free_port(), free_port()
    config.write_text(f'port = {port_file}\ndata-dir = "{data_dir}"\naccess-log = false\n')

    def serve(extra, env):
        e = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
        e.update(env)
        p = subprocess.Popen([str(BIN), "--config", str(config), "serve", *extra],
                             stderr=subprocess.PIPE, env=e)
        try:
            line = b""
            end = time.time() + 10
            while b"listening on" not in line and time.time() < end:
                line = p.stderr.readline()
            return line.decode()
        finally:
            p.terminate()
            p.wait(10)

    assert f":{port_file} " in serve([], {})
    assert f":{port_env} " in serve([], {"GATEHOUSE_PORT": str(port_env)})
    assert f":{port_flag} " in serve(["--port", str(port_flag)], {"GATEHOUSE_PORT": str(port_env)})
    assert (data_dir / "gatehouse.db").exists()


def test_graceful_shutdown_finishes_a_login_in_flight(data_dir):
    # A deliberately slow hash (256 MiB, 4 passes: about a second to verify) leaves
    # ample time to be sure the login is in flight when SIGTERM arrives.
    add_user(data_dir, "slow", "pw-slow", "--argon2-memory-kib", "262144", "--argon2-iterations", "4")
    s = Server(data_dir)
    body = b"username=slow&password=pw-slow"
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as c:
        c.sendall(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(0.3)  # the request has been read; its verify is running
        s.proc.send_signal(signal.SIGTERM)
        answer = b""
        while b"access_token" not in answer:
            chunk = c.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer
    assert b"access_token" in answer
    assert s.proc.wait(10) == 0
    # and it no longer accepts connections
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=2)


def test_acknowledged_writes_survive_sigkill(data_dir):
    s = Server(data_dir, extra=["--demo-users"])
    token = s.login("johndoe", "secret").json()["access_token"]
    added = []
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            name = f"user{i}"
            if add_user(data_dir, name, "pw", ).returncode == 0:
                added.append(name)
            i += 1

    def reader():
        while not stop.is_set():
            try:
                s.me(token)
            except httpx.HTTPError:
                pass  # the server is being killed

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    time.sleep(3)
    s.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(30)
    assert added
    con = sqlite3.connect(data_dir / "gatehouse.db")
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    names = {r[0] for r in con.execute("select username from users")}
    con.close()
    assert set(added) <= names
    s = Server(data_dir)
    try:
        assert s.me(token).status_code == 200
    finally:
        s.stop()


def test_logins_abandoned_by_their_clients_are_not_hashed(data_dir):
    """A client that gives up while its login waits for a hashing thread costs no hash:
    of twelve logins whose connections close at once, at most the ones already being
    hashed are answered (logged); the rest are dropped, and a later login still works."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env["SECRET_KEY"] = "k"
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--data-dir", str(data_dir),
                             "--workers", "1", "--demo-users"], stderr=subprocess.PIPE, env=env, text=True)
    try:
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        body = b"username=johndoe&password=wrong"
        request = (b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                   b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        for _ in range(12):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.sendall(request)
        r = httpx.post(f"http://127.0.0.1:{port}/token", data={"username": "johndoe", "password": "secret"},
                       timeout=30)
        assert r.status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    logged = [line for line in err.splitlines() if '"path":"/token"' in line]
    assert 1 <= len(logged) <= 3, logged  # the login that waited, plus at most two started early


def test_cli_writes_during_cache_misses_do_not_disturb_the_server(data_dir):
    """`gatehouse user enable` in another process while the server's lookups miss the
    cache: the server must keep SQLite's locks on the shared WAL index (a store that
    dropped them let the CLI rebuild the index under the server's mapping: SIGBUS)."""
    import base64, hashlib, hmac, random

    def token(sub):
        b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=")
        head = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b(json.dumps({"sub": sub, "exp": int(time.time()) + 600}).encode())
        sig = b(hmac.new(b"cli-test-key", head + b"." + body, hashlib.sha256).digest())
        return (head + b"." + body + b"." + sig).decode()

    s = Server(data_dir, extra=["--demo-users"])
    stop = threading.Event()
    answers = []

    def load():
        with httpx.Client(base_url=s.url, timeout=5) as c:
            while not stop.is_set():
                sub = random.choice(["johndoe", f"nobody{random.randint(0, 10**6)}"])
                answers.append(c.get("/status/", headers={"Authorization": f"Bearer {token(sub)}"}).status_code)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(15):
            run("user", "enable", "johndoe", "--data-dir", str(data_dir), check=0)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    try:
        assert s.proc.poll() is None, "the server died"
        assert set(answers) <= {200, 401} and 200 in answers
    finally:
        assert s.stop() == 0


def test_a_vanished_log_reader_does_not_kill_the_server(data_dir):
    """The access log goes to stderr; when its reader exits, writes fail with EPIPE
    instead of SIGPIPE ending the process."""
    port = free_port()
    read_end, write_end = os.pipe()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env["SECRET_KEY"] = "k"
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--data-dir", str(data_dir)],
                            stderr=write_end, stdout=subprocess.DEVNULL, env=env)
    os.close(write_end)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                httpx.get(url + "/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        os.close(read_end)  # the log reader goes away
        for _ in range(3):
            assert httpx.get(url + "/items/", headers={"Authorization": "Bearer x"}, timeout=5).status_code == 200
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)


def test_login_rehashes_when_argon2_parameters_change(data_dir):
    """New hashes use the configured argon2id parameters; a successful login whose hash
    was made with other ones is rehashed in place, and the password keeps working."""
    add_user(data_dir, "rita", "pw-rita", "--argon2-memory-kib", "8192", "--argon2-iterations", "1")
    db = data_dir / "gatehouse.db"

    def stored():
        con = sqlite3.connect(db)
        try:
            return con.execute("select hashed_password from users where username='rita'").fetchone()[0]
        finally:
            con.close()

    assert stored().startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    s = Server(data_dir)  # the defaults: m=19456, t=2, p=1
    try:
        assert s.login("rita", "wrong").status_code == 401
        assert stored().startswith("$argon2id$v=19$m=8192,t=1,p=1$")  # not on a failure
        assert s.login("rita", "pw-rita").status_code == 200
        assert stored().startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert s.login("rita", "pw-rita").status_code == 200
    finally:
        s.stop()
    env_hash = run("hash", stdin="x\n", env={"GATEHOUSE_ARGON2_ITERATIONS": "3"}, check=0).stdout
    assert env_hash.startswith("$argon2id$v=19$m=19456,t=3,p=1$")
