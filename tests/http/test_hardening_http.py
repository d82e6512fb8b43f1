"""HTTP-layer hardening (issue 8, findings 4-7), as a client sees it.

* Chunked trailers never act as header fields: not for authentication, the form's
  Content-Type, the Host check, the redirect's scheme or the connection's fate.
* A request with two Host lines, or a Host that is not ``host[:port]``, is a 400 with
  a JSON body (RFC 9112 §3.2).
* A client that half-closes after a complete request gets its answer, from /token too
  (which waits for a hashing thread).
* One client address holds at most ``--max-connections-per-client`` connections; the
  next gets a 503 JSON and is closed. After a burst of large requests the server's
  resident memory returns near where it started.
"""
from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import (
    FORM,
    RawConnection,
    build_request,
    exchange_ex,
    gatehouse_bin,
    needs_plain_allocator,
    parse_responses,
    parse_responses_ex,
    start_gatehouse,
    stop,
    url_host_port,
)

LOGIN = b"username=johndoe&password=secret"


def chunked(body: bytes, trailers=()) -> bytes:
    out = b""
    if body:
        out += b"%x\r\n" % len(body) + body + b"\r\n"
    out += b"0\r\n"
    for name, value in trailers:
        out += name.encode() + b": " + value.encode() + b"\r\n"
    return out + b"\r\n"


def one_response(base: str, raw: bytes):
    host, port = url_host_port(base)
    out, closed = exchange_ex(host, port, raw, timeout=10, expect_responses=1, grace=1.0)
    got = parse_responses(out)
    assert len(got) == 1, out[:500]
    return got[0], closed


# ---------------------------------------------------------------------------
# 4. trailers are not headers
# ---------------------------------------------------------------------------

def test_trailer_authorization_is_not_read(gatehouse_server, gatehouse):
    marker = "trailer-secret-" + str(time.time_ns())
    raw = build_request("GET", "/items/", [("Transfer-Encoding", "chunked")],
                        chunked(b"", [("Authorization", "Bearer " + marker)]),
                        host="x", content_length=False)
    r, _ = one_response(gatehouse, raw)
    assert r.status == 401 and r.json() == {"detail": "Not authenticated"}, r
    assert r.header("www-authenticate") == "Bearer", r
    time.sleep(0.2)
    assert marker not in gatehouse_server.log_tail(1_000_000)


def test_trailer_content_type_does_not_make_a_form(gatehouse):
    """Without a Content-Type header the body is no form (422), whatever the trailer says."""
    raw = build_request("POST", "/token", [("Transfer-Encoding", "chunked")],
                        chunked(LOGIN, [FORM]), host="x", content_length=False)
    r, _ = one_response(gatehouse, raw)
    assert r.status == 422, r
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "username"], ["body", "password"]]


def test_trailer_host_does_not_pass_the_host_check(gatehouse):
    raw = build_request("GET", "/users/me", [("Transfer-Encoding", "chunked")],
                        chunked(b"", [("Host", "evil.example")]), host=None,
                        content_length=False)
    r, closed = one_response(gatehouse, raw)
    assert r.status == 400 and r.json() == {"detail": "Bad Request"}, r
    assert closed


def test_trailer_x_forwarded_proto_does_not_reach_location(gatehouse):
    raw = build_request("GET", "/users/me", [("Transfer-Encoding", "chunked")],
                        chunked(b"", [("X-Forwarded-Proto", "javascript"),
                                      ("Host", "evil.example")]),
                        host="gate.example", content_length=False)
    r, _ = one_response(gatehouse, raw)
    assert r.status == 307, r
    assert r.header("location") == "http://gate.example/users/me/", r


def test_trailer_connection_close_does_not_end_the_connection(gatehouse):
    with RawConnection(gatehouse) as c:
        c.send(build_request("POST", "/token", [FORM, ("Transfer-Encoding", "chunked")],
                             chunked(b"username=johndoe&password=wrong",
                                     [("Connection", "close")]),
                             host=c.authority, close=False, content_length=False))
        r = c.read_response()
        assert r.status == 401 and r.header("connection") is None, r
        r = c.request("GET", "/items/", [("Authorization", "Bearer after")])
        assert r.status == 200 and r.json() == {"token": "after"}, r


def test_trailer_after_body_is_dropped_but_body_kept(gatehouse):
    raw = build_request("POST", "/token", [FORM, ("Transfer-Encoding", "chunked")],
                        chunked(LOGIN, [("Content-Type", "text/plain"),
                                        ("Authorization", "Bearer x")]),
                        host="x", content_length=False)
    r, _ = one_response(gatehouse, raw)
    assert r.status == 200 and r.json()["token_type"] == "bearer", r


# ---------------------------------------------------------------------------
# 5. Host: exactly one, and a host[:port]
# ---------------------------------------------------------------------------

def _raw_host_request(host_lines, version="HTTP/1.1") -> bytes:
    out = b"GET /users/me " + version.encode() + b"\r\n"
    for h in host_lines:
        out += b"Host: " + h + b"\r\n"
    return out + b"Connection: close\r\n\r\n"


@pytest.mark.parametrize("hosts,version", [
    ([b"a.example", b"b.example"], "HTTP/1.1"),
    ([b"a.example", b"a.example"], "HTTP/1.1"),
    ([b"a.example", b"b.example"], "HTTP/1.0"),
    ([b"a.example, b.example"], "HTTP/1.1"),
    ([b"a.example,b.example"], "HTTP/1.1"),
    ([b"a.example b.example"], "HTTP/1.1"),
    ([b"user@a.example"], "HTTP/1.1"),
    ([b"a.example/evil"], "HTTP/1.1"),
    ([b"a.example:http"], "HTTP/1.1"),
    ([b"[::1"], "HTTP/1.1"),
    ([b"[not-an-address]:80"], "HTTP/1.1"),
    ([b"a%zz.example"], "HTTP/1.1"),
    ([b"b\xfccher.example"], "HTTP/1.1"),
], ids=["two", "two-identical", "two-http10", "comma-list", "comma", "space", "userinfo",
        "path", "port-not-digits", "unclosed-literal", "bad-literal", "bad-escape",
        "not-ascii"])
def test_bad_host_is_400_json_and_closed(gatehouse, hosts, version):
    r, closed = one_response(gatehouse, _raw_host_request(hosts, version))
    assert r.status == 400 and r.json() == {"detail": "Bad Request"}, r
    assert r.content_type == "application/json", r
    assert r.header("location") is None
    assert closed


@pytest.mark.parametrize("host,location", [
    (b"gate.example:8443", "http://gate.example:8443/users/me/"),
    (b"gate.example", "http://gate.example/users/me/"),
    (b"[::1]:8000", "http://[::1]:8000/users/me/"),
    (b"[v1.fe80::a+en1]", "http://[v1.fe80::a+en1]/users/me/"),
    (b"10.0.0.1:", "http://10.0.0.1:/users/me/"),
    (b"xn--bcher-kva.example", "http://xn--bcher-kva.example/users/me/"),
    (b"a%41.example", "http://a%41.example/users/me/"),
])
def test_good_host_is_used_in_redirects(gatehouse, host, location):
    r, _ = one_response(gatehouse, _raw_host_request([host]))
    assert r.status == 307 and r.header("location") == location, r


def test_empty_host_redirects_to_the_servers_own_address(gatehouse):
    """RFC 9110 §7.2 allows an empty Host; it names no host, so the Location uses the
    server's own address, as without Host (and as the FastAPI reference does)."""
    r, _ = one_response(gatehouse, _raw_host_request([b""]))
    h, p = url_host_port(gatehouse)
    assert r.status == 307 and r.header("location") == f"http://{h}:{p}/users/me/", r


# ---------------------------------------------------------------------------
# 6. half-closed clients get their answers
# ---------------------------------------------------------------------------

def _half_closed(base: str, raw: bytes):
    host, port = url_host_port(base)
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    responses, rest = parse_responses_ex(out, skip_interim=False)
    return responses, rest


def _assert_login_answered(responses, rest):
    final = [r for r in responses if r.status >= 200]
    assert [r.status for r in responses if r.status < 200] in ([], [100]), responses
    assert len(final) == 1 and rest == b"", (responses, rest)
    assert final[0].status == 200 and final[0].json()["token_type"] == "bearer", final[0]


def test_half_closed_login_is_answered(gatehouse):
    raw = build_request("POST", "/token", [FORM], LOGIN, host="x", close=False)
    _assert_login_answered(*_half_closed(gatehouse, raw))


def test_half_closed_get_is_answered(gatehouse):
    raw = build_request("GET", "/items/", [("Authorization", "Bearer hc")], host="x",
                        close=False)
    responses, rest = _half_closed(gatehouse, raw)
    assert [(r.status, r.json()) for r in responses] == [(200, {"token": "hc"})] and rest == b""


@pytest.fixture(scope="module")
def one_worker(workdir, secret_key):
    server = start_gatehouse(secret_key, workdir, name="gatehouse-one-worker",
                             extra_env={"GATEHOUSE_WORKERS": "1"})
    yield server
    stop(server)


def test_half_closed_logins_waiting_for_a_hashing_thread_are_answered(one_worker):
    """With one hashing thread, logins queue; those whose clients half-closed while
    they waited are still answered (after an interim 100 Continue, which tells a
    half-close from a client that left)."""
    raw = build_request("POST", "/token", [FORM], LOGIN, host="x", close=False)
    results = [None] * 4

    def run(i):
        results[i] = _half_closed(one_worker.url, raw)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for got in results:
        assert got is not None
        _assert_login_answered(*got)


def test_half_closed_http10_login_is_answered(one_worker):
    raw = build_request("POST", "/token", [FORM], LOGIN, host=None, version="HTTP/1.0",
                        close=False)
    responses, rest = _half_closed(one_worker.url, raw)
    assert [r.status for r in responses] == [200] and rest == b"", responses


# ---------------------------------------------------------------------------
# 7. per-client connection cap, memory after a burst
# ---------------------------------------------------------------------------

def _connect(server, source: str) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(10)
    s.connect((server.host, server.port))
    return s


def _get_items(s: socket.socket, authority: str, token: str):
    s.sendall(build_request("GET", "/items/", [("Authorization", "Bearer " + token)],
                            host=authority, close=False))
    out = b""
    while True:
        got, _ = parse_responses_ex(out)
        if got:
            return got[0]
        chunk = s.recv(65536)
        if not chunk:
            return None
        out += chunk


def _read_until_closed(s: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


@pytest.fixture(scope="module")
def capped(workdir, secret_key):
    server = start_gatehouse(secret_key, workdir, name="gatehouse-capped",
                             extra_env={"GATEHOUSE_MAX_CONNECTIONS_PER_CLIENT": "3"})
    yield server
    stop(server)


def test_per_client_connection_cap(capped):
    auth = capped.authority
    held = []
    try:
        for i in range(3):
            s = _connect(capped, "127.0.0.2")
            held.append(s)
            r = _get_items(s, auth, f"c{i}")
            assert r is not None and r.status == 200, r
        # The fourth from the same address: a 503 JSON, then closed, whether or not it
        # has sent its request yet.
        for send_first in (False, True):
            s = _connect(capped, "127.0.0.2")
            if send_first:
                s.sendall(build_request("GET", "/items/", [("Authorization", "Bearer x")],
                                        host=auth))
            [r] = parse_responses(_read_until_closed(s))
            s.close()
            assert r.status == 503, r
            assert r.json() == {
                "detail": "Service Unavailable: too many connections from this client"}, r
            assert r.header("retry-after") == "1" and r.header("connection") == "close", r
        # Another address is another client.
        other = _connect(capped, "127.0.0.3")
        held.append(other)
        assert _get_items(other, auth, "other").status == 200
        # 127.0.0.1 is the trusted proxy (forwarded-allow-ips): all its clients share
        # its address, so it is not capped.
        for i in range(5):
            s = _connect(capped, "127.0.0.1")
            held.append(s)
            assert _get_items(s, auth, f"p{i}").status == 200
        # A connection that closes frees its place.
        held.pop(0).close()
        deadline = time.monotonic() + 10
        while True:
            s = _connect(capped, "127.0.0.2")
            r = _get_items(s, auth, "again")
            s.close()
            if r is not None and r.status == 200:
                break
            assert time.monotonic() < deadline, r
            time.sleep(0.1)
    finally:
        for s in held:
            s.close()


def test_per_client_cap_from_config_file_and_bad_value(workdir, secret_key, tmp_path):
    config = tmp_path / "gatehouse.toml"
    config.write_text("max-connections-per-client = 1\n")
    config.chmod(0o600)
    server = start_gatehouse(secret_key, workdir, name="gatehouse-cap-config",
                             extra_env={"GATEHOUSE_CONFIG": str(config)})
    try:
        first = _connect(server, "127.0.0.4")
        assert _get_items(first, server.authority, "one").status == 200
        second = _connect(server, "127.0.0.4")
        [r] = parse_responses(_read_until_closed(second))
        assert r.status == 503, r
        first.close()
        second.close()
    finally:
        stop(server)
    proc = subprocess.run(
        [str(gatehouse_bin()), "serve", "--port", "0", "--data-dir", str(tmp_path / "d"),
         "--max-connections-per-client", "many"],
        capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc
    assert "max-connections-per-client" in proc.stderr, proc.stderr


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _sanitized(binary: Path) -> bool:
    """A build under AddressSanitizer: its allocator keeps freed memory in quarantine."""
    try:
        return b"__asan_init" in binary.read_bytes()
    except OSError:
        return False


@needs_plain_allocator
def test_memory_returns_after_a_burst_of_large_requests(workdir, secret_key):
    """400 connections each send ~15 KB of headers and 64 KB of body (one byte short, so
    the server holds them all at once), then close. The server's resident memory must
    come back near where it started instead of staying at the peak."""
    if _sanitized(gatehouse_bin()):
        pytest.skip("AddressSanitizer's allocator holds freed memory; RSS says nothing here")
    server = start_gatehouse(secret_key, workdir, name="gatehouse-burst")
    try:
        pid = server.proc.pid
        warm = build_request("GET", "/items/", [("Authorization", "Bearer w")], host="x")
        for _ in range(20):
            exchange_ex(server.host, server.port, warm, timeout=5)
        time.sleep(0.5)
        before = _rss_kib(pid)
        body = b"b" * 65536
        request = (b"GET /items/ HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 15000 +
                   b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        conns = []
        try:
            for _ in range(400):
                s = _connect(server, "127.0.0.1")
                s.sendall(request[:-1])
                conns.append(s)
            deadline = time.monotonic() + 20
            while _rss_kib(pid) - before < 20 * 1024 and time.monotonic() < deadline:
                time.sleep(0.1)
            during = _rss_kib(pid)
            # The burst did cost memory (else this test could not fail).
            assert during - before > 20 * 1024, (before, during)
        finally:
            for s in conns:
                s.close()
        deadline = time.monotonic() + 20
        after = _rss_kib(pid)
        while after - before > 8 * 1024 and time.monotonic() < deadline:
            time.sleep(0.2)
            after = _rss_kib(pid)
        assert after - before <= 8 * 1024, (
            f"RSS before {before} KiB, during {during} KiB, after {after} KiB")
        # And the server still answers.
        out, _ = exchange_ex(server.host, server.port, warm, timeout=5)
        assert [r.status for r in parse_responses(out)] == [200]
    finally:
        stop(server)


# ---------------------------------------------------------------------------
# other framing defects
# ---------------------------------------------------------------------------

def test_http10_request_with_transfer_encoding_is_400_and_closed(gatehouse):
    """RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing. An
    HTTP/1.0 proxy may not have decoded the chunks, so what follows them must never be
    read as a request of its own (it was: the smuggled GET below was answered)."""
    raw = (b"POST /token HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n"
           b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
           b"\r\n1f\r\nusername=johndoe&password=wrong\r\n0\r\n\r\n"
           b"GET /items/ HTTP/1.0\r\nAuthorization: Bearer smuggled\r\n\r\n")
    host, port = url_host_port(gatehouse)
    out, closed = exchange_ex(host, port, raw, timeout=10, expect_responses=2, grace=1.0)
    got = parse_responses(out)
    assert [(r.status, r.json()) for r in got] == [(400, {"detail": "Bad Request"})], out
    assert closed and b"smuggled" not in out
