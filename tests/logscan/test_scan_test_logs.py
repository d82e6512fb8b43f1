"""scripts/scan-test-logs can fail: secrets planted in a log are found, clean logs pass.

Run: /usr/bin/python3 -m pytest tests/logscan
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCAN = REPO / "scripts" / "scan-test-logs"
sys.path.insert(0, str(REPO / "tests"))
import testlogs  # noqa: E402

ACCESS = '{"time":"2026-01-01T00:00:00Z","remote":"127.0.0.1","method":"POST","path":"/token","status":200}\n'
TOKEN = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJqb2huZG9lIiwiZXhwIjoxfQ."
         "c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1oZXJl")


def scan(directory: Path):
    p = subprocess.run([sys.executable, str(SCAN), str(directory)], capture_output=True, text=True)
    return p.returncode, p.stdout


@pytest.fixture
def logs(tmp_path, monkeypatch):
    monkeypatch.setenv("TESTLOGS_DIR", str(tmp_path))
    testlogs.record_secret("cli-test-key", "pa55word-carol")
    (tmp_path / "gatehouse-1.log").write_text(
        "gatehouse: listening on http://127.0.0.1:8000\n"
        "gatehouse: made the key file data/secret_key (mode 0600)\n" + ACCESS)
    return tmp_path


def test_clean_logs_pass(logs):
    code, out = scan(logs)
    assert code == 0, out
    assert out.startswith("ok - log scan: 1 logs")


@pytest.mark.parametrize("planted", [
    "gatehouse: login failed for carol with pa55word-carol\n",      # a recorded password
    "key=cli-test-key\n",                                            # a SECRET_KEY value
    "form: username=johndoe&password=secret\n",                       # a demo password
    "body: username%3Djohndoe%26password%3Dsecret2\n",              # percent-encoded
    "Authorization: Bearer " + TOKEN + "\n",                          # any JWT, minted by anyone
])
def test_a_planted_secret_fails_the_scan(logs, planted):
    (logs / "gatehouse-2.log").write_text(ACCESS + planted)
    code, out = scan(logs)
    assert code == 1, out
    assert "not ok - log scan:" in out and "gatehouse-2.log line 2" in out
    # the report names the finding without repeating the secret
    for secret in ("pa55word-carol", "cli-test-key", TOKEN):
        assert secret not in out


def test_a_sanitizer_report_fails_the_scan(logs):
    (logs / "sanitizer.4242").write_text("==4242==ERROR: AddressSanitizer: heap-use-after-free\n")
    code, out = scan(logs)
    assert code == 1 and "sanitizer report in sanitizer.4242" in out


def test_secret_as_part_of_a_word_is_not_a_finding(logs):
    (logs / "gatehouse-3.log").write_text("wrote secret_key; secretive=1; mysecret\n")
    assert scan(logs)[0] == 0


def test_repeated_characters_and_the_startup_hint_are_not_findings(logs):
    testlogs.record_secret("a" * 5000)
    (logs / "gatehouse-4.log").write_text(
        '{"path":"/' + "a" * 6000 + '"}\n'
        "gatehouse: the store has no users yet, so every login fails; add one with `gatehouse user add "
        "NAME` (same --data-dir/--database), or start with --demo-users to try the tutorial's johndoe/secret\n")
    code, out = scan(logs)
    assert code == 0, out


def test_httpx_hook_records_what_a_request_carries(logs):
    testlogs.record_request(authorization="Bearer some-opaque-token",
                            body=b"username=a&password=hunter22&client_secret=s3cr3t-value")
    testlogs.record_response_json('{"access_token":"tok-123456","token_type":"bearer"}')
    listed = (logs / "secrets.txt").read_text().split()
    assert {"some-opaque-token", "hunter22", "s3cr3t-value", "tok-123456"} <= set(listed)


def test_missing_directory_is_an_error(tmp_path):
    assert scan(tmp_path / "nope")[0] == 2
