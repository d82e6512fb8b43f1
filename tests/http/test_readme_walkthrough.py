"""The README's walkthrough, run as written: its `serve` line (refresh tokens and ES256,
plus a free port and a fresh data directory), then its shell block with curl: log in,
refresh, verify the access token in another program (examples/verify-jwks/verify.py,
PyJWT's PyJWKClient) from the JWKS URL alone, log out, and see both tokens refused.
If the README changes, this test runs the new commands."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from conftest import REPO_ROOT, launch, stop

HEADING = "### Walkthrough: log in, refresh, log out, verify elsewhere"


def walkthrough_blocks() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    assert HEADING in readme, "the README lost its walkthrough"
    section = readme.split(HEADING, 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


@pytest.fixture(scope="module")
def readme_server(workdir):
    serve_block, _ = walkthrough_blocks()
    serve_line = serve_block.strip().rstrip("&").strip()
    argv = shlex.split(serve_line)
    assert argv[:2] == ["build/gatehouse", "serve"], serve_line
    assert "--refresh-tokens" in argv and "ES256" in argv
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=workdir)) / "gatehouse"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")
           or k == "GATEHOUSE_BIN" or k.startswith("GATEHOUSE_TEST")}
    env.pop("SECRET_KEY", None)
    server = launch("walkthrough", [*argv[1:], "--data-dir", str(data_dir)], env, workdir,
                    data_dir=data_dir)
    yield server.url
    stop(server)


def test_the_readme_walkthrough_runs_as_written(readme_server):
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: install Debian's curl (scripts/install-deps does)")
    _, script = walkthrough_blocks()
    env = dict(os.environ, GATEHOUSE=readme_server)
    # python3 in the README is Debian's, with python3-jwt: the one running these tests.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    r = subprocess.run(["bash", "-eu", "-o", "pipefail", "-c", script], cwd=str(REPO_ROOT),
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 5, r.stdout
    me, verified, revoked, refused, refresh = lines
    assert json.loads(me)["username"] == "johndoe"
    jwks = httpx.get(f"{readme_server}/.well-known/jwks.json").json()
    kids = {k["kid"] for k in jwks["keys"]}
    assert all(k["kty"] == "EC" and "d" not in k for k in jwks["keys"])
    m = re.fullmatch(r"verified: sub=johndoe scopes=\['me'\] alg=ES256 kid=(\S+)", verified)
    assert m and m.group(1) in kids, verified
    assert revoked == "{}{}"
    assert json.loads(refused) == {"detail": "Could not validate credentials"}
    assert json.loads(refresh)["error"] == "invalid_grant"


def test_the_verifier_program_refuses_a_forged_token(readme_server):
    # The other program is a real check: a token signed by another ES256 key, naming the
    # server's kid, is refused.
    from cryptography.hazmat.primitives.asymmetric import ec
    import jwt

    kid = httpx.get(f"{readme_server}/.well-known/jwks.json").json()["keys"][0]["kid"]
    forged = jwt.encode({"sub": "johndoe", "scopes": ["me"], "exp": 4102444800},
                        ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                        headers={"kid": kid})
    r = subprocess.run([sys.executable, str(REPO_ROOT / "examples/verify-jwks/verify.py"),
                        f"{readme_server}/.well-known/jwks.json", forged],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "refused" in r.stderr and "Signature" in r.stderr
