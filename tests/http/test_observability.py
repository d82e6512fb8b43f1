"""Operating gatehouse: /metrics (parsed with prometheus_client), /healthz, /readyz,
JSON-lines logs with request ids and no secrets, SIGHUP reload, logs kept at SIGTERM,
and the settings that switch these on and off.

Each test starts its own gatehouse (127.0.0.1, free port) so counters and logs
belong to it alone."""
from __future__ import annotations

import json
import random
import re
import signal
import socket
import string
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import start_gatehouse, stop

DECLARED = {"/token", "/users/me/", "/users/me/items/", "/status/", "/items/", "/openapi.json",
            "/docs", "/docs/oauth2-redirect", "/redoc", "/metrics", "/healthz", "/readyz"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def server(workdir, secret_key):
    s = start_gatehouse(secret_key, workdir, name="obs")
    yield s
    stop(s)


def scrape(url):
    r = httpx.get(url + "/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def value(families, family, sample_name=None, **labels):
    """The value of the one sample of `family` with these labels (0 if absent)."""
    fam = families.get(family)
    if fam is None:
        return 0
    name = sample_name or family
    found = [s.value for s in fam.samples
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, (family, labels, found)
    return found[0] if found else 0


def log_lines(server):
    """Every line the server wrote, parsed: each one must be a JSON object."""
    out = []
    for line in server.log_path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        out.append(obj)
    return out


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    return predicate()


def login(url, username, password, scope="me"):
    return httpx.post(url + "/token", data={"username": username, "password": password,
                                            "scope": scope}, timeout=30)


# ------------------------------------------------------------------ /metrics

def test_counters_move_as_a_users_requests_move_them(server):
    url = server.url
    before = scrape(url)
    r = login(url, "johndoe", "secret")
    assert r.status_code == 200
    token = r.json()["access_token"]
    assert login(url, "johndoe", "wrong").status_code == 401
    assert login(url, "nobody", "secret").status_code == 401
    assert login(url, "alice", "secret2").status_code == 200  # disabled, still a token (FastAPI)
    for _ in range(3):
        assert httpx.get(url + "/users/me/", headers={"Authorization": f"Bearer {token}"},
                         timeout=10).status_code == 200
    assert httpx.get(url + "/users/me/", timeout=10).status_code == 401
    after = scrape(url)

    def delta(family, sample=None, **labels):
        return value(after, family, sample, **labels) - value(before, family, sample, **labels)

    logins = "gatehouse_logins"
    assert delta(logins, "gatehouse_logins_total", outcome="ok") == 1
    assert delta(logins, "gatehouse_logins_total", outcome="wrong_password") == 1
    assert delta(logins, "gatehouse_logins_total", outcome="unknown_user") == 1
    assert delta(logins, "gatehouse_logins_total", outcome="inactive") == 1
    assert delta(logins, "gatehouse_logins_total", outcome="throttled") == 0
    assert delta("gatehouse_tokens_issued", "gatehouse_tokens_issued_total", grant="password") == 2
    req = "gatehouse_http_requests"
    assert delta(req, "gatehouse_http_requests_total", method="GET", route="/users/me/",
                 status="200") == 3
    assert delta(req, "gatehouse_http_requests_total", method="GET", route="/users/me/",
                 status="401") == 1
    assert delta(req, "gatehouse_http_requests_total", method="POST", route="/token",
                 status="401") == 2
    dur = "gatehouse_http_request_duration_seconds"
    assert after[dur].type == "histogram"
    assert delta(dur, dur + "_count", method="GET", route="/users/me/") == 4
    assert delta(dur, dur + "_bucket", method="GET", route="/users/me/", le="+Inf") == 4
    # Logins went through the hashing pool and the store was asked for users.
    assert delta("gatehouse_hash_pool_wait_seconds", "gatehouse_hash_pool_wait_seconds_count") == 4
    assert delta("gatehouse_store_operation_duration_seconds",
                 "gatehouse_store_operation_duration_seconds_count", op="find") >= 7
    assert value(after, "gatehouse_store_errors", "gatehouse_store_errors_total", op="find") == 0
    assert value(after, "gatehouse_hash_pool_queue_depth") == 0
    assert value(after, "gatehouse_hash_pool_queue_capacity") == 256
    assert after["gatehouse_hash_pool_raised"].type == "counter"  # hash-priority adaptive
    assert value(after, "gatehouse_http_connections_open") >= 1
    build = [s for s in after["gatehouse_build_info"].samples]
    assert len(build) == 1 and build[0].value == 1 and build[0].labels["version"]


def test_route_labels_are_templates_and_stay_bounded(server):
    url = server.url
    before = scrape(url)
    rnd = random.Random(12)
    with httpx.Client(base_url=url, timeout=10) as c:
        for _ in range(50):
            path = "/" + "/".join("".join(rnd.choices(string.ascii_letters + string.digits, k=8))
                                  for _ in range(rnd.randint(1, 3)))
            assert c.get(path).status_code == 404
        # A declared path with a query string or another method is still its template.
        assert c.get("/items/?token=abc&x=1", headers={"Authorization": "Bearer t"}).status_code == 200
        assert c.put("/token").status_code == 405
    after = scrape(url)
    routes = {s.labels["route"] for s in after["gatehouse_http_requests"].samples}
    assert routes <= DECLARED | {"unmatched", "rejected"}, routes
    series = len(after["gatehouse_http_requests"].samples)
    assert series <= 40, series
    assert value(after, "gatehouse_http_requests", "gatehouse_http_requests_total",
                 route="unmatched", status="404") - value(
        before, "gatehouse_http_requests", "gatehouse_http_requests_total", route="unmatched",
        status="404") == 50
    assert value(after, "gatehouse_http_requests", "gatehouse_http_requests_total",
                 route="unmatched", status="405") >= 1
    text = httpx.get(url + "/metrics", timeout=10).text
    assert "token=abc" not in text


def test_a_request_the_parser_refuses_is_counted_as_rejected(server):
    before = scrape(server.url)
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 431")
    after = scrape(server.url)
    labels = dict(route="rejected", status="431")
    assert value(after, "gatehouse_http_requests", "gatehouse_http_requests_total", **labels) - \
        value(before, "gatehouse_http_requests", "gatehouse_http_requests_total", **labels) == 1


# ------------------------------------------------------------------ health

def test_healthz_and_readyz(server):
    r = httpx.get(server.url + "/healthz", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = httpx.get(server.url + "/readyz", timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) >= {"store", "keys", "hash_pool"}
    assert all(c["ok"] for c in body["checks"].values())


def test_readyz_says_not_ready_while_the_hash_queue_is_full(workdir, secret_key):
    s = start_gatehouse(secret_key, workdir, name="obs-full",
                        extra_env={"GATEHOUSE_WORKERS": "1", "GATEHOUSE_WORKER_QUEUE": "1"})
    socks = []
    try:
        def login_request(n: int) -> bytes:
            # A different unknown name each time: the per-username throttle (10 failures)
            # must not answer 429 before the login reaches the queue.
            body = f"username=nobody{n}&password=wrong".encode()
            return (b"POST /token HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/x-www-form-urlencoded"
                    b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

        def probe():
            # One more login each time (at most 20) until one hashes and one waits.
            if len(socks) < 20:
                c = socket.create_connection((s.host, s.port), timeout=30)
                c.sendall(login_request(len(socks)))
                socks.append(c)
                time.sleep(0.1)
            r = httpx.get(s.url + "/readyz", timeout=10)
            return r.json() if r.status_code == 503 else None

        body = wait_for(probe, timeout=20)
        assert body is not None, "the hashing queue never filled: " + s.log_tail(100000)
        assert body["status"] == "not ready"
        assert body["checks"]["hash_pool"]["ok"] is False
        assert body["checks"]["store"]["ok"] is True
    finally:
        for c in socks:
            c.close()
        stop(s)


# ------------------------------------------------------------------ logs

def test_log_lines_are_json_with_request_ids_and_never_a_secret(server, secret_key):
    url = server.url
    password = "secret"
    r = login(url, "johndoe", password, scope="me items")
    token = r.json()["access_token"]
    # A client's sane request id is used and echoed.
    r = httpx.get(url + "/users/me/", headers={"Authorization": f"Bearer {token}",
                                                "X-Request-Id": "trace-42.abc"}, timeout=10)
    assert r.status_code == 200 and r.headers["x-request-id"] == "trace-42.abc"
    # An insane one (bad characters, too long) is replaced and not echoed.
    r = httpx.get(url + "/users/me/", headers={"Authorization": f"Bearer {token}",
                                                "X-Request-Id": "evil\"id<script>"}, timeout=10)
    assert r.status_code == 200 and "x-request-id" not in r.headers
    r = httpx.get(url + "/items/", headers={"Authorization": "Bearer t",
                                             "X-Request-Id": "x" * 129}, timeout=10)
    assert "x-request-id" not in r.headers
    # No id sent: no header, as the FastAPI app answers.
    r = httpx.get(url + "/status/", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert "x-request-id" not in r.headers
    assert login(url, "johndoe", "not-the-password-zz9").status_code == 401
    httpx.get(url + "/items/?access_token=" + token, timeout=10)

    def access():
        lines = [l for l in log_lines(server) if l.get("event") == "access"]
        return lines if len(lines) >= 6 else None

    lines = wait_for(access)
    assert lines, server.log_tail()
    for l in lines:
        assert l["level"] == "info" and l["time"].endswith("Z")
        assert isinstance(l["status"], int) and isinstance(l["duration_us"], int)
        assert re.fullmatch(r"[A-Za-z0-9._:/+=-]{1,128}", l["request_id"]), l
    me = [l for l in lines if l["path"] == "/users/me/"]
    assert me[0]["request_id"] == "trace-42.abc"
    assert me[0]["user"] == "johndoe" and me[0]["route"] == "/users/me/"
    assert re.fullmatch(r"[0-9a-f]{16}", me[1]["request_id"]), me[1]
    assert len({l["request_id"] for l in lines}) == len(lines)  # made ids are unique
    text = server.log_path.read_text()
    for secret in (password, "not-the-password-zz9", token, token.split(".")[2], secret_key):
        assert secret not in text, f"a secret reached the log: {secret[:8]}..."
    assert "access_token" not in text


def test_send_request_id_setting_answers_every_request_with_one(workdir, secret_key):
    s = start_gatehouse(secret_key, workdir, name="obs-rid",
                        extra_env={"GATEHOUSE_SEND_REQUEST_ID": "true"})
    try:
        r = httpx.get(s.url + "/nowhere", timeout=10)
        assert r.status_code == 404 and re.fullmatch(r"[0-9a-f]{16}", r.headers["x-request-id"])
        r2 = httpx.get(s.url + "/healthz", timeout=10)
        assert r2.headers["x-request-id"] != r.headers["x-request-id"]
    finally:
        stop(s)


def test_sighup_reloads_the_log_level_and_says_so(workdir, secret_key, tmp_path):
    config = tmp_path / "gatehouse.toml"
    config.write_text('log-level = "info"\n')
    s = start_gatehouse(secret_key, workdir, name="obs-hup",
                        extra_env={"GATEHOUSE_CONFIG": str(config)})
    try:
        httpx.get(s.url + "/healthz", timeout=10)
        assert wait_for(lambda: any(l.get("path") == "/healthz" for l in log_lines(s)))
        config.write_text('log-level = "warning"\n')
        s.proc.send_signal(signal.SIGHUP)

        def reloaded():
            return [l for l in log_lines(s) if l.get("event") == "reload"]

        events = wait_for(reloaded)
        assert events, s.log_tail()
        assert events[0]["reloaded"][0] == {"name": "log-level", "ok": True,
                                            "result": "info -> warning"}
        assert [h["name"] for h in events[0]["reloaded"]] == ["log-level", "throttle"]
        assert s.proc.poll() is None  # SIGHUP did not end it
        httpx.get(s.url + "/readyz", timeout=10)
        # An unreadable level is reported and the old one kept.
        config.write_text('log-level = "shouting"\n')
        s.proc.send_signal(signal.SIGHUP)
        events = wait_for(lambda: len(reloaded()) >= 2 and reloaded())
        assert events[1]["level"] == "warning" and events[1]["reloaded"][0]["ok"] is False
        assert "shouting" in events[1]["reloaded"][0]["result"]
        stop(s)
        # At level warning the access lines after the reload are gone.
        assert not any(l.get("path") == "/readyz" for l in log_lines(s))
    finally:
        stop(s)


def test_no_log_line_is_lost_at_sigterm(workdir, secret_key):
    s = start_gatehouse(secret_key, workdir, name="obs-term")
    n = 300
    try:
        with httpx.Client(base_url=s.url, timeout=10) as c:
            for i in range(n):
                assert c.get("/healthz", headers={"X-Request-Id": f"term-{i}"}).status_code == 200
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=20) == 0
        lines = log_lines(s)
        ids = {l["request_id"] for l in lines if l.get("event") == "access"}
        assert {f"term-{i}" for i in range(n)} <= ids
        assert lines[-1]["event"] == "stopped"
    finally:
        stop(s)


# ------------------------------------------------------------------ settings

def test_operations_routes_stay_out_of_openapi_unless_asked(server, workdir, secret_key):
    paths = httpx.get(server.url + "/openapi.json", timeout=10).json()["paths"]
    assert not {"/metrics", "/healthz", "/readyz"} & set(paths)
    s = start_gatehouse(secret_key, workdir, name="obs-oas",
                        extra_env={"GATEHOUSE_OPERATIONS_IN_OPENAPI": "true"})
    try:
        paths = httpx.get(s.url + "/openapi.json", timeout=10).json()["paths"]
        assert {"/metrics", "/healthz", "/readyz"} <= set(paths)
        assert paths["/metrics"]["get"]["operationId"] == "metrics_metrics_get"
    finally:
        stop(s)


def test_metrics_can_be_switched_off(workdir, secret_key):
    s = start_gatehouse(secret_key, workdir, name="obs-off", extra_env={"GATEHOUSE_METRICS": "false"})
    try:
        assert httpx.get(s.url + "/metrics", timeout=10).status_code == 404
        assert httpx.get(s.url + "/healthz", timeout=10).status_code == 200
        assert httpx.get(s.url + "/readyz", timeout=10).status_code == 200
    finally:
        stop(s)


def test_sighup_reloads_a_rotated_signing_key(workdir, secret_key, tmp_path):
    """An operator rotates the key with the CLI and sends SIGHUP: the reload event names
    the new key, and tokens signed with it are accepted."""
    import subprocess
    from conftest import gatehouse_bin
    s = start_gatehouse(secret_key, workdir, name="obs-keys",
                        extra_env={"GATEHOUSE_SIGNING_ALG": "ES256"})
    try:
        env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("GATEHOUSE_")}
        r = subprocess.run([str(gatehouse_bin()), "key", "rotate", "--signing-alg", "ES256",
                            "--data-dir", str(s.data_dir)], capture_output=True, text=True,
                           env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([str(gatehouse_bin()), "key", "list", "--data-dir", str(s.data_dir)],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        s.proc.send_signal(signal.SIGHUP)
        events = wait_for(lambda: [l for l in log_lines(s) if l.get("event") == "reload"])
        assert events, s.log_tail()
        keys = [h for h in events[0]["reloaded"] if h["name"] == "keys"]
        assert keys and keys[0]["ok"], events[0]
        kid = keys[0]["result"].rsplit(" ", 1)[1]
        assert kid in r.stdout  # the key the CLI made and listed
        assert "PRIVATE" not in s.log_path.read_text()
        token = login(s.url, "johndoe", "secret").json()["access_token"]
        header = json.loads(__import__("base64").urlsafe_b64decode(token.split(".")[0] + "=="))
        assert header["kid"] == kid
        assert httpx.get(s.url + "/users/me/", headers={"Authorization": f"Bearer {token}"},
                         timeout=10).status_code == 200
    finally:
        stop(s)


def test_throttled_logins_are_counted(workdir, secret_key):
    s = start_gatehouse(secret_key, workdir, name="obs-throttle",
                        extra_env={"GATEHOUSE_THROTTLE_USER_FAILURES": "2"})
    try:
        statuses = [login(s.url, "johndoe", f"wrong-{i}").status_code for i in range(4)]
        assert statuses[:2] == [401, 401] and 429 in statuses[2:], statuses
        fams = scrape(s.url)
        assert value(fams, "gatehouse_logins", "gatehouse_logins_total",
                     outcome="throttled") == statuses.count(429)
        assert value(fams, "gatehouse_logins", "gatehouse_logins_total",
                     outcome="wrong_password") == statuses.count(401)
        assert value(fams, "gatehouse_http_requests", "gatehouse_http_requests_total",
                     route="/token", status="429") == statuses.count(429)
    finally:
        stop(s)
