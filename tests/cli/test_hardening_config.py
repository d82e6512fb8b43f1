"""Hardening of settings, files and secrets (issue 8, findings 8-12), as an operator
sees it: what `gatehouse serve` and the other commands accept, refuse and print.

Run: /usr/bin/python3 -m pytest tests/cli/test_hardening_config.py
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from test_cli import BIN, free_port, run


def clean_env(extra=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_") and k != "SECRET_KEY"}
    e.update(extra or {})
    return e


class Serve:
    """`gatehouse [pre...] serve ARGS` on a free port; waits until it listens, keeps
    what it printed to stderr before that."""

    def __init__(self, *args, env=None, pre=(), umask=None):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(BIN), *pre, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env(env), text=True,
            preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr = ""
        end = time.time() + 15
        while time.time() < end:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.stderr += line
            if "listening on" in line:
                return
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("server did not start: " + self.stderr + self.proc.stderr.read())

    def login(self, username, password):
        return httpx.post(self.url + "/token", data={"username": username, "password": password}, timeout=10)

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
