"""--hash-priority: the hashing threads' scheduling class, as the kernel shows it in
/proc, and what a wrong value gets.

Run: /usr/bin/python3 -m pytest tests/cli/test_hash_priority.py
"""
from __future__ import annotations

from pathlib import Path

from test_cli import Server, run

SCHED_OTHER, SCHED_IDLE = 0, 5


def threads(pid):
    """(nice, policy) of each thread of `pid` (/proc/PID/task/TID/stat fields 19 and 41)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = task.joinpath("stat").read_text().rsplit(")", 1)[1].split()
        out.append((int(fields[16]), int(fields[38])))
    return out


def test_hashing_threads_are_nice_ten_by_default(tmp_path):
    s = Server(tmp_path / "data", extra=["--workers", "3", "--demo-users"])
    try:
        assert s.login("johndoe", "secret").status_code == 200
        seen = threads(s.proc.pid)
        assert seen.count((10, SCHED_OTHER)) == 3, seen
        assert not any(policy == SCHED_IDLE for _, policy in seen), seen
    finally:
        s.stop()


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
    assert "hash-priority" in p.stderr and "must be idle, low or normal" in p.stderr
