"""Issue 11: the deny-list (revoked access tokens) and the login-throttling counters of
instances on one PostgreSQL are kept in memory and shared through LISTEN/NOTIFY, like
the user cache: a revocation or a run of failed logins on one instance is seen by the
other within a second, without a round trip per request, and a revocation made while
an instance's listening connection was down is picked up when it reconnects.

Each test prints what it measured (run with -s to see it).

Needs GATEHOUSE_TEST_DATABASE_URL: run under `scripts/with-postgres`.
"""
from __future__ import annotations

import subprocess
import time

import httpx

from test_postgres import Instance, database  # noqa: F401  (the fixture)

THROTTLE = ("--throttle-user-failures", "3", "--throttle-base-delay", "30")
CLIENT_THROTTLE = ("--throttle-client-failures", "3", "--throttle-user-failures", "0", "--throttle-base-delay", "30")
TOO_MANY = {"detail": "Too many failed login attempts, try again later"}


def seconds_until(predicate, limit):
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.005)
    return None


def psql(url, sql):
    return subprocess.run(["psql", "-qAt", url, "-c", sql], capture_output=True, text=True, check=True,
                          timeout=30).stdout


def login(inst, user="johndoe", password="secret", scope="me"):
    return httpx.post(inst.url + "/token", data={"username": user, "password": password, "scope": scope},
                      timeout=10)


def revoke(inst, token):
    r = httpx.post(inst.url + "/revoke", data={"token": token}, timeout=10)
    assert r.status_code == 200, r.text


def test_a_revocation_reaches_the_other_instance_within_a_second(database):  # noqa: F811
    a = Instance(database, "--demo-users", "--revocation")
    b = Instance(database, "--revocation")
    try:
        # Three different tokens (one login a second would give the same token thrice).
        tokens = [login(a, scope=scope).json()["access_token"] for scope in ("me", "me items", "items me")]
        for t in tokens:
            assert b.me(t).status_code == 200
        for t in tokens:
            revoke(a, t)
            took = seconds_until(lambda t=t: b.me(t).status_code == 401, 1.0)
            print(f"revocation on a refused on b after {took} s")
            assert took is not None, "a token revoked on a was still accepted by b a second later"
            assert b.me(t).json() == {"detail": "Could not validate credentials"}
        # The other way round too.
        t = login(b, scope="me items x").json()["access_token"]
        assert a.me(t).status_code == 200
        revoke(b, t)
        assert seconds_until(lambda: a.me(t).status_code == 401, 1.0) is not None
    finally:
        a.stop()
        b.stop()


def test_the_deny_list_is_pushed_not_polled(database):  # noqa: F811
    # A denial written without its NOTIFY (what an older gatehouse would do) is found by
    # the safety-net poll only, every 30 s: well after the second a pushed one takes. So
    # a denial seen within a second came through LISTEN/NOTIFY.
    a = Instance(database, "--demo-users", "--revocation")
    try:
        token = login(a).json()["access_token"]
        assert a.me(token).status_code == 200
        other = login(a, scope="me items").json()["access_token"]
        b = Instance(database, "--revocation")
        try:
            revoke(b, other)
            assert seconds_until(lambda: a.me(other).status_code == 401, 1.0) is not None
            # Written by hand, with no notification: not seen within two seconds.
            psql(database, "INSERT INTO revoked_tokens (key, expires_at) SELECT encode(sha256(convert_to("
                           f"'{'.'.join(token.split('.')[:2])}', 'UTF8')), 'hex'), 4102444800")
            time.sleep(2)
            assert a.me(token).status_code == 200
        finally:
            b.stop()
    finally:
        a.stop()


def test_revocations_missed_while_disconnected_are_read_on_reconnect(database):  # noqa: F811
    a = Instance(database, "--demo-users", "--revocation")
    try:
        token = login(a).json()["access_token"]
        assert a.me(token).status_code == 200
        # A denial a cannot hear of (no NOTIFY): only a full read finds it. Then a's
        # listening connection goes away: when it is back, the whole list is read again.
        psql(database, "INSERT INTO revoked_tokens (key, expires_at) SELECT encode(sha256(convert_to("
                       f"'{'.'.join(token.split('.')[:2])}', 'UTF8')), 'hex'), 4102444800")
        assert a.me(token).status_code == 200
        killed = psql(database, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE application_name = 'gatehouse-watch' AND datname = current_database()")
        assert killed.strip() == "1"
        took = seconds_until(lambda: a.me(token).status_code == 401, 5.0)
        print(f"denial missed while disconnected refused {took} s after the connection was killed")
        assert took is not None, "a revocation made while the listener was down was never picked up"
    finally:
        a.stop()


def test_failed_logins_on_one_instance_throttle_the_other_within_a_second(database):  # noqa: F811
    # Throttled by client address (both instances see 127.0.0.1): a good login on b
    # before the news arrives succeeds without clearing the address's count, so b can
    # be asked over and over until it answers 429.
    a = Instance(database, "--demo-users", *CLIENT_THROTTLE)
    b = Instance(database, *CLIENT_THROTTLE)
    try:
        for user in ("mallory", "trudy", "johndoe"):
            assert login(a, user, "wrong").status_code == 401
        r = login(a)
        assert r.status_code == 429 and r.json() == TOO_MANY  # at once where they failed
        took = seconds_until(lambda: login(b).status_code == 429, 1.0)
        print(f"failures on a throttle b after {took} s")
        assert took is not None, "three failures on a did not throttle b within a second"
        r = login(b, "alice", "secret2")
        assert r.status_code == 429 and r.json() == TOO_MANY
        assert 1 <= int(r.headers["retry-after"]) <= 30
    finally:
        a.stop()
        b.stop()


def test_failed_logins_of_a_name_throttle_it_on_the_other_instance(database):  # noqa: F811
    a = Instance(database, "--demo-users", *THROTTLE)
    b = Instance(database, *THROTTLE)
    try:
        for _ in range(3):
            assert login(a, password="wrong").status_code == 401
        assert login(a).status_code == 429
        time.sleep(1.0)  # the bound measured above (a good login before it would clear the name)
        r = login(b)
        assert r.status_code == 429 and r.json() == TOO_MANY
        # Another name is not affected on either.
        assert login(b, "alice", "wrong").status_code == 401
        assert login(a, "alice", "wrong").status_code == 401
    finally:
        a.stop()
        b.stop()


def test_failures_split_across_instances_add_up(database):  # noqa: F811
    a = Instance(database, "--demo-users", *THROTTLE)
    b = Instance(database, *THROTTLE)
    try:
        assert login(a, password="wrong").status_code == 401
        assert login(b, password="wrong").status_code == 401
        time.sleep(1.0)  # each hears of the other's failure (the bound measured above)
        # The third failure, on either instance, blocks the name on both.
        assert login(a, password="wrong").status_code == 401
        assert login(a).status_code == 429
        time.sleep(1.0)
        assert login(b).status_code == 429
    finally:
        a.stop()
        b.stop()


def test_a_success_on_one_instance_clears_the_count_on_the_other(database):  # noqa: F811
    a = Instance(database, "--demo-users", *THROTTLE)
    b = Instance(database, *THROTTLE)
    try:
        assert login(a, password="wrong").status_code == 401
        assert login(a, password="wrong").status_code == 401
        time.sleep(1.0)
        assert login(b).status_code == 200  # clears johndoe's count on b, and then on a
        time.sleep(1.0)
        assert login(a, password="wrong").status_code == 401
        assert login(a, password="wrong").status_code == 401
        assert login(a).status_code == 200  # two failures since the success: not blocked
    finally:
        a.stop()
        b.stop()


def test_nothing_published_names_a_user_or_an_address(database):  # noqa: F811
    # A third listener sees every throttle message: HMACs, never the name or the IP.
    a = Instance(database, "--demo-users", *THROTTLE)
    listener = subprocess.Popen(["psql", "-qAt", database], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    try:
        listener.stdin.write("LISTEN gatehouse_throttle;\nSELECT 'listening';\n")
        listener.stdin.flush()
        assert listener.stdout.readline().strip() == "listening"
        for _ in range(2):
            assert login(a, "carol-the-user", "wrong").status_code == 401
        time.sleep(0.5)
        listener.stdin.write("SELECT 'done';\n")  # psql prints notifications after a query
        listener.stdin.close()
        out = listener.stdout.read()
        assert 'Asynchronous notification "gatehouse_throttle"' in out, out
        assert "carol" not in out and "127.0.0.1" not in out
        assert "\nf u" in out and "\nf c" in out  # a failure for the name and one for the client
    finally:
        listener.kill()
        listener.wait()
        a.stop()
