"""Issue 11: examples/deploy/ as it is written: Debian's nginx balancing two gatehouse
instances on one PostgreSQL database. Through nginx: a login, requests served by each
instance, X-Forwarded-For/-Proto believed only from the configured proxy, and a
failover when one instance is killed mid-run.

The example's files are used with only their addresses changed (free ports, the test
database). Needs nginx (Debian's nginx-light; scripts/install-deps test installs it) and
GATEHOUSE_TEST_DATABASE_URL (run under scripts/with-postgres).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from test_cli import BIN, REPO, free_port
from test_postgres import database  # noqa: F401  (the fixture)

DEPLOY = REPO / "examples" / "deploy"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)



def answers_healthz(url: str, seconds: float) -> bool:
    """True once `url`/healthz answers at all (whatever the status), within `seconds`."""
    end = time.time() + seconds
    while time.time() < end:
        try:
            httpx.get(url + "/healthz", timeout=1)
            return True
        except httpx.HTTPError:
            time.sleep(0.05)
    return False

class Gatehouse:
    def __init__(self, tmp, name, database, port):
        conf = (DEPLOY / f"gatehouse-{name}.conf").read_text()
        conf = re.sub(r"(?m)^port = .*$", f"port = {port}", conf)
        conf = re.sub(r"(?m)^database = .*$", f'database = "{database}"', conf)
        path = Path(tmp) / f"gatehouse-{name}.conf"
        path.write_text(conf)
        path.chmod(0o600)
        self.log = Path(tmp) / f"gatehouse-{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_") and k != "SECRET_KEY"}
        self.proc = subprocess.Popen([str(BIN), "--config", str(path), "serve", "--demo-users",
                                      "--throttle-client-failures", "3", "--throttle-user-failures", "100",
                                      "--throttle-base-delay", "60"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "w"), env=env)
        self.url = f"http://127.0.0.1:{port}"
        if not answers_healthz(self.url, 20):
            self.proc.kill()
            raise RuntimeError(self.log.read_text())

    def served(self, path):
        """Requests for `path` in this instance's access log."""
        n = 0
        for line in self.log.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            n += record.get("path") == path
        return n

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Nginx:
    def __init__(self, tmp, port, upstreams):
        site = (DEPLOY / "nginx-gatehouse.conf").read_text()
        site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
        for default, actual in zip(("127.0.0.1:8001", "127.0.0.1:8002"), upstreams):
            site = site.replace(default, actual)
        d = Path(tmp) / "nginx"
        d.mkdir()
        (d / "gatehouse.conf").write_text(site)
        main = f"""
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  include {d}/gatehouse.conf;
}}
"""
        (d / "nginx.conf").write_text(main)
        user = ["-g", "user root;"] if os.getuid() == 0 else []
        self.proc = subprocess.Popen([NGINX, "-p", str(d), "-c", str(d / "nginx.conf"), *user],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{port}"
        if not answers_healthz(self.url, 10):
            self.proc.kill()
            raise RuntimeError(self.proc.stderr.read().decode() + (d / "error.log").read_text())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def deployment(database):  # noqa: F811
    if NGINX is None:
        pytest.fail("nginx is not installed (scripts/install-deps test installs nginx-light)")
    tmp = tempfile.mkdtemp(prefix="gatehouse-deploy.")
    ports = [free_port(), free_port()]
    a = Gatehouse(tmp, "a", database, ports[0])
    b = Gatehouse(tmp, "b", database, ports[1])
    proxy = Nginx(tmp, free_port(), [f"127.0.0.1:{p}" for p in ports])
    try:
        yield a, b, proxy
    finally:
        proxy.stop()
        a.stop()
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def from_other_address():
    """A client on 127.0.0.2: not a trusted proxy."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=15)


def test_login_and_requests_reach_both_instances_then_failover(deployment):
    a, b, proxy = deployment
    r = httpx.post(proxy.url + "/token", data={"username": "johndoe", "password": "secret", "scope": "me"},
                   timeout=15)
    assert r.status_code == 200, r.text
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    for _ in range(10):
        r = httpx.get(proxy.url + "/users/me/", headers=auth, timeout=15)
        assert r.status_code == 200 and r.json()["username"] == "johndoe"
    # nginx spread them: each instance answered some (the token made by one is good on both).
    assert a.served("/users/me/") > 0 and b.served("/users/me/") > 0
    # Failover: a dies mid-run; every request through nginx is still answered by b.
    statuses = []
    running = True

    def drive():
        with httpx.Client(timeout=15) as client:
            while running:
                statuses.append(client.get(proxy.url + "/users/me/", headers=auth).status_code)

    t = threading.Thread(target=drive)
    t.start()
    time.sleep(0.5)
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    time.sleep(1.0)
    running = False
    t.join(30)
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    r = httpx.post(proxy.url + "/token", data={"username": "johndoe", "password": "secret"}, timeout=15)
    assert r.status_code == 200, r.text


def test_forwarded_headers_are_believed_only_from_the_proxy(deployment):
    a, b, proxy = deployment
    # nginx replaces X-Forwarded-Proto with its own scheme: a client's "https" is not
    # believed (the redirect names http), while what nginx itself says is.
    with from_other_address() as client:
        r = client.get(proxy.url + "/users/me", headers={"X-Forwarded-Proto": "https"}, follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"].startswith("http://"), r.headers
        # Straight to an instance from an address that is no configured proxy: ignored.
        r = client.get(a.url + "/users/me", headers={"X-Forwarded-Proto": "https"}, follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"].startswith("http://"), r.headers
    # From the configured proxy's address (127.0.0.1), the same header is believed.
    r = httpx.get(a.url + "/users/me", headers={"X-Forwarded-Proto": "https"}, follow_redirects=False, timeout=15)
    assert r.status_code == 307 and r.headers["location"].startswith("https://"), r.headers
    # X-Forwarded-For: a client that makes up a new address for each failed login is
    # still one client (127.0.0.2, which nginx appends), throttled after 3 failures on
    # both instances (the counters live in the database).
    with from_other_address() as client:
        codes = []
        for i in range(4):
            r = client.post(proxy.url + "/token", data={"username": f"nobody{i}", "password": "x"},
                            headers={"X-Forwarded-For": f"203.0.113.{i + 1}"})
            codes.append(r.status_code)
        assert codes == [401, 401, 401, 429], codes
