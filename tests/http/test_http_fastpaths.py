"""The HTTP layer finds the fields it reads in one walk of the header (Host,
Transfer-Encoding, X-Request-Id) and answers a header lookup by walking the fields in
arrival order: names match case-insensitively, the first of repeated fields counts, and
a repeated Host or Transfer-Encoding is still refused."""
from __future__ import annotations

import re

from conftest import RawConnection, login, raw_request


def test_x_request_id_in_any_case_is_echoed(gatehouse):
    for name in ("X-Request-Id", "x-request-id", "X-REQUEST-ID"):
        r = raw_request(gatehouse, "GET", "/openapi.json", headers=[(name, "trace-7")])
        assert r.status == 200
        assert r.header_all("x-request-id") == ["trace-7"], name


def test_the_first_x_request_id_counts(gatehouse):
    r = raw_request(gatehouse, "GET", "/openapi.json",
                    headers=[("X-Request-Id", "first"), ("x-request-id", "second")])
    assert r.header_all("x-request-id") == ["first"]
    # An insane first one is replaced by a fresh id, not by the second.
    r = raw_request(gatehouse, "GET", "/openapi.json",
                    headers=[("X-Request-Id", "bad id"), ("X-Request-Id", "second")])
    got = r.header_all("x-request-id")
    assert got != ["second"]
    assert all(re.fullmatch(r"[0-9a-f]{16}", v) for v in got), got


def test_a_repeated_host_or_transfer_encoding_is_refused(gatehouse):
    r = raw_request(gatehouse, "GET", "/openapi.json", headers=[("HOST", "127.0.0.1")])
    assert r.status == 400
    r = raw_request(gatehouse, "POST", "/token",
                    headers=[("Transfer-Encoding", "chunked"), ("transfer-encoding", "chunked")],
                    body=b"0\r\n\r\n", content_length=False)
    assert r.status == 400


def test_authorization_in_any_case_and_the_first_one_counts(gatehouse):
    token = login(gatehouse, "johndoe", "secret", "me")
    for name in ("Authorization", "authorization", "AUTHORIZATION"):
        r = raw_request(gatehouse, "GET", "/users/me/",
                        headers=[("Accept", "*/*"), (name, f"Bearer {token}")])
        assert r.status == 200, name
        assert r.json()["username"] == "johndoe"
    r = raw_request(gatehouse, "GET", "/users/me/",
                    headers=[("authorization", "Bearer garbage"),
                             ("Authorization", f"Bearer {token}")])
    assert r.status == 401


def test_large_and_small_headers_alternate_on_one_connection(gatehouse):
    """A connection's fields live in an arena emptied after each request: headers far
    larger than its inline room, then small ones, then large ones again, are each read
    whole, and nothing of one request reaches the next."""
    token = login(gatehouse, "johndoe", "secret", "me")
    with RawConnection(gatehouse) as c:
        for i in range(6):
            big = i % 2 == 0
            padding = [(f"X-Pad-{k}", chr(ord("a") + k) * 300) for k in range(12)] if big else []
            headers = padding + [("X-Request-Id", f"r-{i}"),
                                 ("Authorization", f"Bearer {token}")]
            if i == 3:
                headers = [("X-Request-Id", "r-3")]  # no Authorization this time
            r = c.request("GET", "/users/me/", headers=headers)
            assert r.header_all("x-request-id") == [f"r-{i}"]
            if i == 3:
                assert r.status == 401, r
            else:
                assert r.status == 200, r
                assert r.json()["username"] == "johndoe"
