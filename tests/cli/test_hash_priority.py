"""--hash-priority: the hashing threads' scheduling class, as the kernel shows it in
/proc, and what a wrong value gets.

Run: /usr/bin/python3 -m pytest tests/cli/test_hash_priority.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from test_cli import Server, run

SCHED_OTHER, SCHED_IDLE = 0, 5


def threads(pid):
    """(nice, policy) of each thread of `pid` (/proc/PID/task/TID/stat fields 19 and 41)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = task.joinpath("stat").read_text().rsplit(")", 1)[1].split()
        out.append((int(fields[16]), int(fields[38])))
    return out


def test_by_default_hashing_threads_wait_at_nice_ten_and_hash_under_sched_idle(tmp_path):
    """adaptive (these tests run as root, who may leave SCHED_IDLE again): a thread hashing
    a login is SCHED_IDLE at nice 10; between logins the threads are SCHED_OTHER, nice 10."""
    s = Server(tmp_path / "data", extra=["--workers", "3", "--demo-users"])
    try:
        seen_hashing = set()
        with ThreadPoolExecutor(6) as pool:
            logins = [pool.submit(s.login, "johndoe", "secret") for _ in range(12)]
            while not all(f.done() for f in logins):
                seen_hashing.update(t for t in threads(s.proc.pid) if t[1] == SCHED_IDLE)
        assert all(f.result().status_code == 200 for f in logins)
        assert seen_hashing == {(10, SCHED_IDLE)}, seen_hashing
        deadline = time.time() + 10
        while threads(s.proc.pid).count((10, SCHED_OTHER)) != 3 and time.time() < deadline:
            time.sleep(0.01)
        seen = threads(s.proc.pid)
        assert seen.count((10, SCHED_OTHER)) == 3 and SCHED_IDLE not in {p for _, p in seen}, seen
    finally:
        s.stop()
    assert not any('"hash_priority"' in line for line in s.lines), s.lines


def assert_hashing_at_nice_ten_only(pid, workers):
    """`workers` threads at nice 10 under SCHED_OTHER, none under SCHED_IDLE."""
    seen = threads(pid)
    assert seen.count((10, SCHED_OTHER)) == workers, seen
    assert not any(policy == SCHED_IDLE for _, policy in seen), seen


def test_low_is_nice_ten(tmp_path):
    s = Server(tmp_path / "data", extra=["--workers", "3", "--hash-priority", "low"])
    try:
        assert_hashing_at_nice_ten_only(s.proc.pid, 3)
    finally:
        s.stop()


def test_adaptive_without_the_right_to_raise_runs_as_low_and_says_so(tmp_path):
    """As an unprivileged server would start: no CAP_SYS_NICE, RLIMIT_NICE 0."""
    s = Server(tmp_path / "data", extra=["--workers", "2"],
               wrap=["prlimit", "--nice=0", "setpriv", "--inh-caps=-sys_nice",
                     "--bounding-set=-sys_nice", "--"])
    try:
        assert_hashing_at_nice_ten_only(s.proc.pid, 2)
    finally:
        s.stop()
    warnings = [l for l in s.lines if '"hash_priority"' in l]
    assert len(warnings) == 1 and "LimitNICE=+10" in warnings[0], s.lines


def test_idle_is_sched_idle_and_normal_is_neither(tmp_path):
    s = Server(tmp_path / "idle", extra=["--workers", "3", "--demo-users", "--hash-priority", "idle"])
    try:
        assert s.login("johndoe", "secret").status_code == 200  # logins still work
        seen = threads(s.proc.pid)
        assert sum(1 for _, policy in seen if policy == SCHED_IDLE) == 3, seen
        assert all(nice == 0 for nice, _ in seen), seen
    finally:
        s.stop()
    s = Server(tmp_path / "normal", extra=["--workers", "2", "--hash-priority", "normal"])
    try:
        seen = threads(s.proc.pid)
        assert all(nice == 0 and policy == SCHED_OTHER for nice, policy in seen), seen
    finally:
        s.stop()


def test_a_wrong_value_is_refused_with_the_choices(tmp_path):
    p = run("serve", "--data-dir", str(tmp_path / "data"), "--hash-priority", "realtime")
    assert p.returncode == 2, p.stderr
    assert "hash-priority" in p.stderr and "must be adaptive, idle, low or normal" in p.stderr


def test_a_login_starved_by_busy_neighbours_is_raised_and_counted(tmp_path):
    """Busy processes in the server's scheduling group (this session) on every core leave a
    SCHED_IDLE thread no CPU: the guard raises the login out of it after a second, then
    ages it up to nice 10; the login still answers, and /metrics counts the raise."""
    s = Server(tmp_path / "data", extra=["--workers", "1", "--demo-users"])
    spin = "import time\nend = time.time() + 60\nwhile time.time() < end: pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(os.cpu_count() or 2)]
    try:
        time.sleep(0.3)  # the hogs are spinning
        # About 5 s here (nice 19 after one second, 15 after two, 10 after three): 30 s
        # leaves room for a slower machine.
        r = s.login("johndoe", "secret", timeout=30)
        assert r.status_code == 200, r.text
        for hog in hogs:
            hog.kill()
        families = {f.name: f for f in text_string_to_metric_families(
            httpx.get(s.url + "/metrics", timeout=10).text)}
        raised = families["gatehouse_hash_pool_raised"]
        assert raised.type == "counter"
        assert raised.samples[0].value >= 1, raised.samples
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        s.stop()
