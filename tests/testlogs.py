"""What the suites keep for the log scan at the end of scripts/test.

scripts/test sets TESTLOGS_DIR (build/test-logs) and points GATEHOUSE_BIN at
tests/gatehouse-logged, which copies every gatehouse process's standard error there.
The harnesses add the secrets they use to TESTLOGS_DIR/secrets.txt with
record_secret(); scripts/scan-test-logs then fails if any of them shows up in a log.
Without TESTLOGS_DIR (a suite run by hand) nothing is recorded.
"""
from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Optional, Union

MIN_LENGTH = 6  # shorter values ("x", "abc") are not secrets worth a scan

Text = Union[str, bytes, None]


def log_dir() -> Optional[Path]:
    d = os.environ.get("TESTLOGS_DIR")
    if not d:
        return None
    path = Path(d)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _text(v: Text) -> str:
    if v is None:
        return ""
    return v.decode("latin-1") if isinstance(v, bytes) else str(v)


def record_secret(*values: Text) -> None:
    """Adds passwords, keys and tokens the tests use to the scan's list."""
    d = log_dir()
    if d is None:
        return
    lines = [t for t in map(_text, values) if len(t) >= MIN_LENGTH and "\n" not in t and "\r" not in t]
    if lines:
        with open(d / "secrets.txt", "a", encoding="latin-1") as f:
            f.write("".join(t + "\n" for t in lines))


def record_request(authorization: Text = None, body: Text = None) -> None:
    """The credentials in a request: the Authorization value after its scheme, and the
    password and client_secret of an urlencoded form body."""
    auth = _text(authorization)
    if " " in auth:
        record_secret(auth.split(" ", 1)[1])
    text = _text(body)
    if "password=" in text or "client_secret=" in text:
        for key, value in urllib.parse.parse_qsl(text, keep_blank_values=False, encoding="latin-1"):
            if key in ("password", "client_secret"):
                record_secret(value)


def record_response_json(body: Text) -> None:
    """The tokens in a JSON answer (access_token, refresh_token)."""
    text = _text(body)
    if "_token" not in text:
        return
    import json

    try:
        doc = json.loads(text)
    except ValueError:
        return
    if isinstance(doc, dict):
        for key in ("access_token", "refresh_token", "id_token"):
            if isinstance(doc.get(key), str):
                record_secret(doc[key])


def install_httpx_hook() -> None:
    """Records the credentials of every request sent, and the tokens of every answer
    read, through httpx (httpx.get/post and Client both end in Client.send)."""
    if log_dir() is None:
        return
    import httpx

    if getattr(httpx.Client.send, "_records_secrets", False):
        return
    original = httpx.Client.send

    def send(self, request, *args, **kwargs):
        try:
            record_request(request.headers.get("authorization"), request.content)
        except Exception:  # a streamed body: nothing to read here
            pass
        response = original(self, request, *args, **kwargs)
        try:
            if not kwargs.get("stream"):
                record_response_json(response.content)
        except Exception:
            pass
        return response

    send._records_secrets = True
    httpx.Client.send = send
