"""`gatehouse config check FILE` (issue 12): every problem of a config file, each with
its setting, and exit 2; or the effective settings, secrets masked, and exit 0.

Run: /usr/bin/python3 -m pytest tests/cli/test_config_check.py
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from test_cli import BIN, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import testlogs  # noqa: E402

DB_PASSWORD = "pg-pass-Zq81x"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def settings_of(stdout: str) -> dict:
    """`key = value  # from ORIGIN` lines as {key: (value, origin)}."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        setting, _, comment = line.partition("  # ")
        key, _, value = setting.partition(" = ")
        out[key] = (value, comment)
    return out


def test_a_valid_file_prints_the_effective_settings_and_exits_0(tmp_path):
    conf = write(tmp_path / "g.toml", f'port = 8123\nlog-level = "warning"\ndata-dir = "{tmp_path}/d"\n')
    p = run("config", "check", str(conf), env={"GATEHOUSE_WORKERS": "3"}, check=0)
    got = settings_of(p.stdout)
    assert got["port"] == ("8123", f"from config file {conf}")
    assert got["log-level"] == ("'warning'", f"from config file {conf}")
    assert got["workers"] == ("3", "from environment variable GATEHOUSE_WORKERS")
    assert got["host"] == ("'127.0.0.1'", "from default")
    # Every setting serve reads is listed, throttling included.
    assert {"throttle-user-failures", "throttle-max-delay", "metrics", "access-log"} <= set(got)
    assert p.stderr == ""
    # It checks; it creates nothing.
    assert not (tmp_path / "d").exists()


def test_quiet_prints_nothing_for_a_valid_file(tmp_path):
    conf = write(tmp_path / "g.toml", "port = 8123\n")
    p = run("config", "check", "--quiet", str(conf), check=0)
    assert p.stdout == "" and p.stderr == ""


def test_every_problem_is_reported_with_its_key_and_exit_2(tmp_path):
    conf = write(tmp_path / "g.toml",
                 "prot = 8001\nport = 70000\nlog-level = loud\nthrottle-max-delay = 0\n"
                 "metrics = maybe\nhost = example.org\n")
    p = run("config", "check", str(conf), check=2)
    err = p.stderr
    assert "unknown setting 'prot'" in err
    assert "invalid port '70000'" in err
    assert "invalid log-level 'loud'" in err
    assert "invalid throttle-max-delay '0'" in err
    assert "invalid metrics 'maybe'" in err
    assert "invalid host 'example.org'" in err
    assert "6 problems" in err
    assert p.stdout == ""


def test_serve_refuses_a_bad_log_level_before_it_starts(tmp_path):
    # The check config check runs is serve's own: serve stops at start-up with exit 2.
    conf = write(tmp_path / "g.toml", f'log-level = "loud"\ndata-dir = "{tmp_path}/d"\n')
    p = run("--config", str(conf), "serve", "--port", "0", check=2)
    assert "invalid log-level 'loud'" in p.stderr
    assert not (tmp_path / "d").exists()


def test_an_unsafe_config_file_is_reported(tmp_path):
    conf = write(tmp_path / "g.toml", "port = 8001\n", mode=0o666)
    p = run("config", "check", str(conf), check=2)
    assert "writable by group or others" in p.stderr


def test_a_missing_config_file_is_reported(tmp_path):
    p = run("config", "check", str(tmp_path / "nope.toml"), check=2)
    assert "cannot read config file" in p.stderr and "nope.toml" in p.stderr


def test_unsafe_key_and_database_files_are_reported_with_their_setting(tmp_path):
    data = tmp_path / "d"
    data.mkdir(mode=0o700)
    write(data / "secret_key", "0" * 64 + "\n", mode=0o644)
    db = write(tmp_path / "users.db", "", mode=0o640)
    conf = write(tmp_path / "g.toml", f'data-dir = "{data}"\ndatabase = "{db}"\n')
    p = run("config", "check", str(conf), check=2)
    assert f"invalid data-dir '{data}'" in p.stderr and "secret_key is open to group or others" in p.stderr
    assert f"invalid database '{db}'" in p.stderr
    # Closed, they pass.
    os.chmod(data / "secret_key", 0o600)
    os.chmod(db, 0o600)
    run("config", "check", str(conf), check=0)


def test_an_unreadable_password_file_is_reported(tmp_path):
    conf = write(tmp_path / "g.toml",
                 'database = "postgresql://gatehouse@127.0.0.1/gh"\n'
                 f'database-password-file = "{tmp_path}/missing"\n')
    p = run("config", "check", str(conf), check=2)
    assert "invalid database-password-file" in p.stderr and "cannot open it" in p.stderr


def test_secrets_are_masked_and_a_readable_file_with_one_is_refused(tmp_path):
    testlogs.record_secret(DB_PASSWORD)
    url = f"postgresql://gatehouse:{DB_PASSWORD}@127.0.0.1:5432/gh"
    conf = write(tmp_path / "g.toml", f'database = "{url}"\n', mode=0o600)
    p = run("config", "check", str(conf), check=0)
    assert DB_PASSWORD not in p.stdout + p.stderr
    value, origin = settings_of(p.stdout)["database"]
    assert "127.0.0.1:5432/gh" in value and origin.startswith("secret masked")
    os.chmod(conf, 0o640)
    p = run("config", "check", str(conf), check=2)
    assert "holds a secret (database)" in p.stderr
    assert DB_PASSWORD not in p.stdout + p.stderr


def test_the_packaged_sample_config_passes(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    text = (repo / "packaging" / "gatehouse.toml.in").read_text()
    text = re.sub(r"@[A-Z_]+@", str(tmp_path / "state"), text)
    conf = write(tmp_path / "gatehouse.toml", text, mode=0o640)
    run("config", "check", "--quiet", str(conf), check=0)
