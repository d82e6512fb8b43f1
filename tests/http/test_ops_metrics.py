"""/metrics (issue 12): tokens issued, refreshed and revoked, by grant and by client,
parsed with Debian's python3-prometheus-client. Client label values are registered
client ids or "(none)", never what a request chose.

Run: /usr/bin/python3 -m pytest tests/http/test_ops_metrics.py
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import start_gatehouse, stop
from test_clients import add_client, basic, cli


@pytest.fixture(scope="module")
def lifecycle(workdir, secret_key):
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=workdir)) / "gatehouse"
    secrets = {"svc": add_client(data_dir, "svc", "--scope", "me"),
               "batch": add_client(data_dir, "batch")}
    cli(data_dir, "user", "add", "opsuser", "--password-stdin", stdin="ops-pw-5678\n")
    server = start_gatehouse(secret_key, workdir, data_dir=data_dir, name="ops-metrics",
                             extra_env={"GATEHOUSE_REFRESH_TOKENS": "true",
                                        "GATEHOUSE_REFRESH_GRACE_SECONDS": "0"})
    yield server.url, secrets
    stop(server)


def samples(url) -> dict:
    """{(sample name, frozenset(labels)): value} of one scrape."""
    r = httpx.get(url + "/metrics", timeout=10)
    assert r.status_code == 200
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def series(scrape, name) -> dict:
    """{frozenset(labels): value} of one sample name."""
    return {labels: v for (n, labels), v in scrape.items() if n == name}


def delta(before, after, name, **labels):
    key = (name, frozenset(labels.items()))
    return after.get(key, 0) - before.get(key, 0)


def password_login(url, **extra):
    r = httpx.post(url + "/token", data={"grant_type": "password", "username": "opsuser",
                                         "password": "ops-pw-5678", "scope": "me", **extra}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_tokens_by_grant_and_client(lifecycle):
    url, secrets = lifecycle
    before = samples(url)
    first = password_login(url)
    # A client_id in a password login is the caller's word: it is not a label.
    password_login(url, client_id="made-up-by-the-caller")
    r = httpx.post(url + "/token", data={"grant_type": "refresh_token",
                                         "refresh_token": first["refresh_token"]}, timeout=30)
    assert r.status_code == 200, r.text
    second = r.json()
    # The spent token again, after a grace period of 0 s: reuse, the login is revoked.
    r = httpx.post(url + "/token", data={"grant_type": "refresh_token",
                                         "refresh_token": first["refresh_token"]}, timeout=30)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    for _ in range(2):
        r = httpx.post(url + "/token", data={"grant_type": "client_credentials"},
                       headers=basic("svc", secrets["svc"]), timeout=30)
        assert r.status_code == 200, r.text
    client_token = r.json()["access_token"]
    r = httpx.post(url + "/token", data={"grant_type": "client_credentials"},
                   headers=basic("batch", secrets["batch"]), timeout=30)
    assert r.status_code == 200, r.text
    # A wrong secret for a made-up id issues nothing and adds no series.
    r = httpx.post(url + "/token", data={"grant_type": "client_credentials"},
                   headers=basic("scanner-1234", "x" * 43), timeout=30)
    assert r.status_code == 401

    # Revocations: a user's access token, a client's, and a refresh token.
    third = password_login(url)
    for token in (third["access_token"], third["refresh_token"]):
        assert httpx.post(url + "/revoke", data={"token": token}, timeout=30).status_code == 200
    # A client's token: only that client may revoke it.
    assert httpx.post(url + "/revoke", data={"token": client_token}, timeout=30).status_code == 401
    r = httpx.post(url + "/revoke", data={"token": client_token}, headers=basic("svc", secrets["svc"]),
                   timeout=30)
    assert r.status_code == 200, r.text
    # Garbage revokes nothing.
    assert httpx.post(url + "/revoke", data={"token": "not-a-token"}, timeout=30).status_code == 200
    after = samples(url)

    issued = "gatehouse_tokens_issued_total"
    assert delta(before, after, issued, grant="password", client="(none)") == 3
    assert delta(before, after, issued, grant="refresh_token", client="(none)") == 1
    assert delta(before, after, issued, grant="client_credentials", client="svc") == 2
    assert delta(before, after, issued, grant="client_credentials", client="batch") == 1
    refreshed = "gatehouse_tokens_refreshed_total"
    assert delta(before, after, refreshed, outcome="rotated", client="(none)") == 1
    assert delta(before, after, refreshed, outcome="reused", client="(none)") == 1
    assert delta(before, after, refreshed, outcome="replayed", client="(none)") == 0
    revoked = "gatehouse_tokens_revoked_total"
    assert delta(before, after, revoked, token_type="access_token", client="(none)") == 1
    assert delta(before, after, revoked, token_type="access_token", client="svc") == 1
    assert delta(before, after, revoked, token_type="refresh_token", client="(none)") == 1
    assert second["refresh_token"] != first["refresh_token"]

    clients = {dict(labels)["client"]
               for name in (issued, refreshed, revoked) for labels in series(after, name)}
    assert clients <= {"(none)", "svc", "batch"}, clients


def test_token_series_exist_from_the_start(lifecycle, gatehouse):
    # The default server (FastAPI's tutorial) shows its password series at 0 before any
    # login, so rate() has a start; the lifecycle server shows the refresh and revoke ones.
    default = samples(gatehouse)
    assert ("gatehouse_tokens_issued_total",
            frozenset({"grant": "password", "client": "(none)"}.items())) in default
    url, _ = lifecycle
    s = samples(url)
    for labels in ({"outcome": "rotated", "client": "(none)"}, {"outcome": "reused", "client": "(none)"}):
        assert ("gatehouse_tokens_refreshed_total", frozenset(labels.items())) in s
    for token_type in ("access_token", "refresh_token"):
        assert ("gatehouse_tokens_revoked_total",
                frozenset({"token_type": token_type, "client": "(none)"}.items())) in s
