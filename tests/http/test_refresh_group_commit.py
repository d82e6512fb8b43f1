"""Refresh rotations under concurrency (issue 13): on SQLite, the rotations that arrive
while one commit is under way are committed together and each is answered only after
its commit (the answer comes from another thread than the one that read the request).
As a client sees it: many chains refreshed at once, over keep-alive connections, all
answered 200 with a working successor; the same token from many connections at once
(within the grace period) gives one successor; after the burst, a spent token still
revokes its family; and a pipelined request behind a refresh is answered in order.
"""
from __future__ import annotations

import concurrent.futures
import socket

import httpx
import pytest

from conftest import parse_responses, start_gatehouse, stop, url_host_port


@pytest.fixture(scope="module")
def refreshing(workdir, secret_key):
    server = start_gatehouse(
        secret_key, workdir, name="refresh-group-commit",
        extra_env={"GATEHOUSE_REFRESH_TOKENS": "true", "GATEHOUSE_REFRESH_GRACE_SECONDS": "60"})
    yield server.url
    stop(server)


def login(client, scope="me items"):
    r = client.post("/token", data={"grant_type": "password", "username": "johndoe",
                                    "password": "secret", "scope": scope})
    assert r.status_code == 200, r.text
    return r.json()


def refresh(client, token):
    return client.post("/token", data={"grant_type": "refresh_token", "refresh_token": token})


def test_many_chains_at_once_all_rotate(refreshing):
    with httpx.Client(base_url=refreshing) as c:
        heads = [login(c)["refresh_token"] for _ in range(24)]

    def chain(token):
        seen = [token]
        with httpx.Client(base_url=refreshing, timeout=30) as c:
            for _ in range(8):
                r = refresh(c, token)
                assert r.status_code == 200, r.text
                body = r.json()
                token = body["refresh_token"]
                assert body["scope"] == "me items"
                me = c.get("/users/me/", headers={"Authorization": f"Bearer {body['access_token']}"})
                assert me.status_code == 200 and me.json()["username"] == "johndoe"
                seen.append(token)
        return seen

    with concurrent.futures.ThreadPoolExecutor(max_workers=24) as pool:
        chains = list(pool.map(chain, heads))
    every = [t for ch in chains for t in ch]
    assert len(set(every)) == len(every)  # no successor handed out twice
    with httpx.Client(base_url=refreshing) as c:
        # Each chain's last token is live.
        assert refresh(c, chains[1][-1]).status_code == 200
        # The last spent one, within the 60 s grace: the successor it got, again.
        r = refresh(c, chains[0][-2])
        assert r.status_code == 200 and r.json()["refresh_token"] == chains[0][-1]
        # One spent further back (its successor spent too) is reuse: the family goes.
        r = refresh(c, chains[0][2])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        assert refresh(c, chains[0][-1]).status_code == 400
        # Other chains are untouched.
        assert refresh(c, chains[2][-1]).status_code == 200


def test_one_token_from_many_connections_gives_one_successor(refreshing):
    with httpx.Client(base_url=refreshing) as c:
        t0 = login(c, scope="me")["refresh_token"]

    def once(_):
        with httpx.Client(base_url=refreshing, timeout=30) as c:
            return refresh(c, t0)

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(once, range(12)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({a.json()["refresh_token"] for a in answers}) == 1


def test_pipelined_requests_behind_a_refresh_are_answered_in_order(refreshing):
    with httpx.Client(base_url=refreshing) as c:
        t0 = login(c, scope="me")["refresh_token"]
    host, port = url_host_port(refreshing)
    body = f"grant_type=refresh_token&refresh_token={t0}".encode()
    data = (b"POST /token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body +
            b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(data)
        raw = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    responses = parse_responses(raw)
    assert [r.status for r in responses] == [200, 200]
    assert b"refresh_token" in responses[0].body
    assert b'"openapi"' in responses[1].body


def test_server_log_has_no_errors_after_the_bursts(refreshing, workdir):
    logs = list(workdir.glob("refresh-group-commit-*.log"))
    assert logs
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert '"level":"error"' not in text
