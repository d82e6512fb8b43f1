"""/token sends only what needs a worker thread to the bounded worker pool (issue 13):
the password grant (a password hash) queues there, and answers 503 with Retry-After
when the queue is full; client_credentials (one HMAC, one signature) and a refresh on
SQLite (the commit is the committer thread's) are answered from the I/O thread, so a
login storm that fills the pool does not refuse them. With one worker and a queue of
one, before this change every client_credentials and refresh request in a storm was
likely to get 503.
"""
from __future__ import annotations

import base64
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import start_gatehouse, stop
from test_clients import add_client, cli


@pytest.fixture(scope="module")
def tight_pool(workdir, secret_key):
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=workdir)) / "gatehouse"
    secret = add_client(data_dir, "svc", "--scope", "items")
    # argon2id with the default parameters (19 MiB, t=2): each login keeps the one
    # worker busy for tens of milliseconds.
    cli(data_dir, "user", "add", "storm", "--password-stdin", stdin="storm-pw-12345\n")
    server = start_gatehouse(secret_key, workdir, data_dir=data_dir, name="token-offload",
                             extra_env={"GATEHOUSE_CLIENTS": "true",
                                        "GATEHOUSE_REFRESH_TOKENS": "true",
                                        "GATEHOUSE_WORKERS": "1",
                                        "GATEHOUSE_WORKER_QUEUE": "1",
                                        "GATEHOUSE_THROTTLE": "false"})
    yield server.url, secret
    stop(server)


def login(client):
    return client.post("/token", data={"grant_type": "password", "username": "storm",
                                       "password": "storm-pw-12345", "scope": "me"})


def test_client_credentials_and_refresh_are_answered_during_a_login_storm(tight_pool):
    base, secret = tight_pool
    auth = {"Authorization": "Basic " + base64.b64encode(f"svc:{secret}".encode()).decode()}
    with httpx.Client(base_url=base, timeout=30) as c:
        r = login(c)
        assert r.status_code == 200, r.text
        refresh_token = r.json()["refresh_token"]

    stop_storm = threading.Event()
    storm_status: list[int] = []

    def storm():
        with httpx.Client(base_url=base, timeout=30) as c:
            while not stop_storm.is_set():
                storm_status.append(login(c).status_code)

    threads = [threading.Thread(target=storm) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        # Wait until the storm has filled the pool: some logins are refused.
        deadline = time.monotonic() + 20
        while 503 not in storm_status and time.monotonic() < deadline:
            time.sleep(0.02)
        assert 503 in storm_status, f"the storm never filled the pool: {set(storm_status)}"
        cc, rotations = [], []
        with httpx.Client(base_url=base, timeout=30) as c:
            for _ in range(15):
                cc.append(c.post("/token", data={"grant_type": "client_credentials"},
                                 headers=auth))
                r = c.post("/token", data={"grant_type": "refresh_token",
                                           "refresh_token": refresh_token})
                rotations.append(r)
                if r.status_code == 200:
                    refresh_token = r.json()["refresh_token"]
        storm_503s_meanwhile = storm_status.count(503)
    finally:
        stop_storm.set()
        for t in threads:
            t.join()
    assert [r.status_code for r in cc] == [200] * 15, [r.text for r in cc if r.status_code != 200]
    assert all(r.json()["access_token"] for r in cc)
    assert [r.status_code for r in rotations] == [200] * 15, \
        [r.text for r in rotations if r.status_code != 200]
    assert storm_503s_meanwhile > 0
    # The chain is intact: the last successor still rotates.
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token})
        assert r.status_code == 200, r.text


def test_a_full_pool_still_refuses_logins_with_retry_after(tight_pool):
    base, _ = tight_pool
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def one():
        with httpx.Client(base_url=base, timeout=30) as c:
            r = login(c)
            with lock:
                results.append(r)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {200, 503}
    assert 200 in statuses and 503 in statuses, statuses
    assert all(r.headers.get("retry-after") == "1" for r in results if r.status_code == 503)
