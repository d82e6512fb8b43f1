"""SIGHUP (issue 12): the server re-reads its config file and applies the log level and
the login-throttling settings, and says so in one `reload` event.

Run: /usr/bin/python3 -m pytest tests/cli/test_reload.py
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from test_cli import BIN


class Server:
    """`gatehouse --config FILE serve --port 0` (the kernel picks a free port, the
    "listening" event names it); its JSON log lines, as they come."""

    def __init__(self, config: Path, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_") and k != "SECRET_KEY"}
        self.proc = subprocess.Popen(
            [str(BIN), "--config", str(config), "serve", "--host", "127.0.0.1", "--port", "0",
             "--no-access-log", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
        self.lines: list[str] = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self.wait_for(lambda e: e.get("event") == "listening")["url"]
        self.port = int(self.url.rsplit(":", 1)[1])

    def _read(self):
        for line in self.proc.stderr:
            with self.cv:
                self.lines.append(line)
                self.cv.notify_all()

    def events(self):
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def wait_for(self, predicate, timeout=15):
        end = time.time() + timeout
        with self.cv:
            while True:
                found = [e for e in self.events() if predicate(e)]
                if found:
                    return found[-1]
                left = end - time.time()
                assert left > 0 and self.proc.poll() is None, "".join(self.lines)
                self.cv.wait(left)

    def reload(self):
        before = len([e for e in self.events() if e.get("event") == "reload"])
        self.proc.send_signal(signal.SIGHUP)
        self.wait_for(lambda e: e.get("event") == "reload" and
                      len([x for x in self.events() if x.get("event") == "reload"]) > before)
        return [e for e in self.events() if e.get("event") == "reload"][-1]

    def login(self, username, password="wrong-password"):
        return httpx.post(self.url + "/token", data={"username": username, "password": password}, timeout=30)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(15)


def write_config(path: Path, data: Path, **settings):
    lines = [f'data-dir = "{data}"'] + [f"{k} = {v}" for k, v in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)


def test_sighup_applies_new_throttling_limits(tmp_path):
    conf = tmp_path / "g.toml"
    write_config(conf, tmp_path / "d", **{"throttle-user-failures": 100, "throttle-base-delay": 60})
    s = Server(conf)
    try:
        for _ in range(3):
            assert s.login("mallory").status_code == 401
        # 3 failures of 100 allowed: not blocked yet.
        write_config(conf, tmp_path / "d", **{"throttle-user-failures": 3, "throttle-base-delay": 60})
        event = s.reload()
        hooks = {h["name"]: h for h in event["reloaded"]}
        assert hooks["throttle"]["ok"] is True
        assert hooks["throttle"]["result"] == (
            "user 100/3600s, client 100/600s, blocks 60-900s -> user 3/3600s, client 100/600s, blocks 60-900s")
        # The fourth failure reaches the new limit of 3: the next login is refused at once.
        assert s.login("mallory").status_code == 401
        r = s.login("mallory")
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) > 60
        assert s.login("someone-else").status_code == 401
    finally:
        s.stop()


def test_sighup_turns_throttling_on_and_a_bad_file_keeps_the_old_settings(tmp_path):
    conf = tmp_path / "g.toml"
    write_config(conf, tmp_path / "d", throttle="false", **{"throttle-user-failures": 1})
    s = Server(conf)
    try:
        for _ in range(2):
            assert s.login("eve").status_code == 401
        write_config(conf, tmp_path / "d", throttle="true", **{"throttle-user-failures": 1,
                                                             "throttle-base-delay": 60})
        hooks = {h["name"]: h for h in s.reload()["reloaded"]}
        assert hooks["throttle"]["result"] == "off -> user 1/3600s, client 100/600s, blocks 60-900s"
        assert s.login("eve").status_code == 401  # counted now: 1 of 1, blocked
        assert s.login("eve").status_code == 429
        # A bad value: the hook fails, says why, and the limits stay as they were.
        write_config(conf, tmp_path / "d", **{"throttle-user-failures": "many"})
        event = s.reload()
        hooks = {h["name"]: h for h in event["reloaded"]}
        assert event["level"] == "warning"
        assert hooks["throttle"]["ok"] is False
        assert "throttle-user-failures" in hooks["throttle"]["result"]
        assert s.login("eve").status_code == 429
    finally:
        s.stop()


def test_a_flag_still_wins_over_the_reloaded_file(tmp_path):
    conf = tmp_path / "g.toml"
    write_config(conf, tmp_path / "d", **{"throttle-user-failures": 100})
    s = Server(conf, "--throttle-user-failures", "50")
    try:
        write_config(conf, tmp_path / "d", **{"throttle-user-failures": 1})
        hooks = {h["name"]: h for h in s.reload()["reloaded"]}
        assert hooks["throttle"]["result"] == "unchanged (user 50/3600s, client 100/600s, blocks 1-900s)"
    finally:
        s.stop()
