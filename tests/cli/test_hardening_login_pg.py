"""Issue 8, brute-force protection: instances sharing one PostgreSQL database share
their login counters (issue 11: in memory, through LISTEN/NOTIFY, so each hears of the
other's failures within a second; tests/cli/test_pg_shared_state.py measures it).
Failures through one instance throttle the same username on the other, and a success
on the other clears it for both.

Needs GATEHOUSE_TEST_DATABASE_URL: run under `scripts/with-postgres`.
"""
from __future__ import annotations

import json
import time

from test_postgres import Instance, database  # noqa: F401  (the fixture)

# A block long enough to outlast a loaded machine: it starts at the failure, and the
# failure's answer itself waits for the failure-time floor (up to ~1 s under load).
THROTTLE = ("--throttle-user-failures", "3", "--throttle-base-delay", "30")


def test_two_instances_share_login_counters(database):  # noqa: F811
    a = Instance(database, "--demo-users", *THROTTLE)
    b = Instance(database, *THROTTLE)
    try:
        for instance in (a, b, a):
            assert instance.login("johndoe", "wrong").status_code == 401
        time.sleep(1.0)  # each instance hears of the other's failures within a second
        r = b.login("johndoe", "secret")  # the third failure was on the other instance
        assert r.status_code == 429, r.text
        assert json.loads(r.text) == {"detail": "Too many failed login attempts, try again later"}
        assert 1 <= int(r.headers["retry-after"]) <= 30
        assert a.login("johndoe", "secret").status_code == 429
        # Another name is not affected on either.
        assert a.login("carol", "x").status_code == 401
    finally:
        a.stop()
        b.stop()


def test_success_on_one_instance_clears_the_count_for_both(database):  # noqa: F811
    a = Instance(database, "--demo-users", *THROTTLE)
    b = Instance(database, *THROTTLE)
    try:
        assert a.login("johndoe", "wrong").status_code == 401
        assert a.login("johndoe", "wrong").status_code == 401
        time.sleep(1.0)
        assert b.login("johndoe", "secret").status_code == 200
        time.sleep(1.0)
        assert a.login("johndoe", "wrong").status_code == 401
        assert a.login("johndoe", "wrong").status_code == 401
        assert b.login("johndoe", "secret").status_code == 200  # two since the success
    finally:
        a.stop()
        b.stop()
