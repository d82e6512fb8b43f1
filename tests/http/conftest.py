"""Shared fixtures and helpers for gatehouse's black-box HTTP suites.

Two servers are compared:

* ``reference`` - the FastAPI reference app (``../shared/reference/run.sh``,
  override the directory with ``REFERENCE_DIR``), started on a free port.
* ``gatehouse`` - the C++ binary (``$GATEHOUSE_BIN``, default
  ``build/gatehouse``) started as
  ``gatehouse serve --host 127.0.0.1 --port PORT --data-dir DIR --demo-users``
  on a fresh temporary data directory, or - when ``GATEHOUSE_URL`` is set - whatever
  already listens there (e.g. a second reference instance while the binary
  does not exist yet).

Both get the same ``SECRET_KEY``: a random one per session, or, when
``GATEHOUSE_URL`` is set, ``$SECRET_KEY`` (default: the reference's public
development key) since the external server's key cannot be chosen here.

Requests that httpx would normalise (odd header casing, missing
Content-Type, bad Content-Length, huge headers, pipelining, NUL bytes,
non-UTF-8 bytes) go through the raw-socket helpers below: ``build_request``,
``exchange``, ``parse_responses`` and the keep-alive ``RawConnection``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests"))
import testlogs  # noqa: E402  (the secrets list for scripts/scan-test-logs)
DEFAULT_SECRET_KEY = "gatehouse-reference-dev-key-6b1f0d9a4c2e47b8a3f5d7e9c1b3a5f7"
STARTUP_TIMEOUT = 15.0


# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------

def reference_dir() -> Path:
    override = os.environ.get("REFERENCE_DIR")
    if override:
        return Path(override).resolve()
    return (REPO_ROOT / ".." / "shared" / "reference").resolve()


def gatehouse_bin() -> Path:
    path = Path(os.environ.get("GATEHOUSE_BIN", "build/gatehouse"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def external_gatehouse_url() -> Optional[str]:
    url = os.environ.get("GATEHOUSE_URL")
    return url.rstrip("/") if url else None


_SESSION_KEY = (
    os.environ.get("SECRET_KEY", DEFAULT_SECRET_KEY)
    if external_gatehouse_url()
    else "gatehouse-test-" + secrets.token_hex(24)
)
testlogs.record_secret(_SESSION_KEY)
testlogs.install_httpx_hook()


# Set by scripts/test for its run against the ASan + UBSan build. Resident memory says
# nothing about glibc's allocator there (ASan keeps freed blocks in quarantine), so
# tests that measure RSS are skipped.
SANITIZED = os.environ.get("GATEHOUSE_TEST_SANITIZED") == "1"
needs_plain_allocator = pytest.mark.skipif(
    SANITIZED, reason="measures RSS, which AddressSanitizer's allocator decides")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# process management
# ---------------------------------------------------------------------------

@dataclass
class Server:
    """A server under test: where it listens and, if we started it, how."""

    name: str
    url: str
    proc: Optional[subprocess.Popen] = None
    data_dir: Optional[Path] = None
    log_path: Optional[Path] = None

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urllib.parse.urlsplit(self.url).port or 80

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    def log_tail(self, n: int = 4000) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-n:]
        return ""


def _openapi_ready(host: str, port: int) -> bool:
    try:
        resp = exchange(
            host, port, build_request("GET", "/openapi.json", host=f"{host}:{port}"),
            timeout=2.0,
        )
        got = parse_responses(resp)
        return bool(got) and got[0].status == 200
    except OSError:
        return False


def listening_url(server: Server, timeout: float = STARTUP_TIMEOUT) -> str:
    """The URL named by the "listening" event in a gatehouse's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in server.log_path.read_text(errors="replace").splitlines():
            if '"event":"listening"' in line:
                return json.loads(line)["url"]
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.proc.returncode} during startup:\n"
                + server.log_tail()
            )
        time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not listen after {timeout}s:\n" + server.log_tail())


def wait_ready(server: Server, timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.proc.returncode} during startup:\n"
                + server.log_tail()
            )
        if _openapi_ready(server.host, server.port):
            return
        time.sleep(0.1)
    raise RuntimeError(
        f"{server.name} not ready on {server.url} after {timeout}s:\n" + server.log_tail()
    )


def stop(server: Server) -> None:
    proc = server.proc
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def start_reference(secret_key: str, workdir: Path, extra_env: Optional[dict] = None) -> Server:
    port = free_port()
    env = dict(os.environ)
    env.update(SECRET_KEY=secret_key, UVICORN_ARGS="--no-access-log", WORKERS="1")
    env.pop("ACCESS_TOKEN_EXPIRE_MINUTES", None)
    env.update(extra_env or {})
    log_path = workdir / f"reference-{port}.log"
    log = open(log_path, "wb")
    run_sh = reference_dir() / "run.sh"
    proc = subprocess.Popen(
        [str(run_sh), str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    server = Server("reference", f"http://127.0.0.1:{port}", proc=proc, log_path=log_path)
    try:
        wait_ready(server)
    except Exception:
        stop(server)
        raise
    return server


def start_gatehouse(
    secret_key: str,
    workdir: Path,
    data_dir: Optional[Path] = None,
    extra_env: Optional[dict] = None,
    name: str = "gatehouse",
    umask: Optional[int] = None,
) -> Server:
    binary = gatehouse_bin()
    if not binary.exists():
        pytest.skip(f"{binary} does not exist (build it, or set GATEHOUSE_URL)")
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=workdir)) / "gatehouse"
    env = dict(os.environ)
    env["SECRET_KEY"] = secret_key
    env.pop("ACCESS_TOKEN_EXPIRE_MINUTES", None)
    env.update(extra_env or {})
    return launch(name, ["serve", "--data-dir", str(data_dir), "--demo-users"], env, workdir,
                  data_dir=data_dir, umask=umask)


def launch(name: str, args: list, env: dict, workdir: Path,
           data_dir: Optional[Path] = None, umask: Optional[int] = None) -> Server:
    """Runs `gatehouse ARGS --host 127.0.0.1 --port 0` (the kernel picks a port no other
    server holds; the "listening" event in its log names it) and waits until it answers.
    Its output goes to a log of its own in workdir."""
    fd, log_name = tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=workdir)
    proc = subprocess.Popen(
        [str(gatehouse_bin()), *args, "--host", "127.0.0.1", "--port", "0"],
        env=env, stdout=fd, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        cwd=str(workdir),
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )
    os.close(fd)
    server = Server(name, "", proc=proc, data_dir=data_dir, log_path=Path(log_name))
    try:
        server.url = listening_url(server)
        wait_ready(server)
    except Exception:
        stop(server)
        raise
    return server


@pytest.fixture(scope="session")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="gatehouse-http-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def secret_key() -> str:
    """The HS256 key both servers sign and verify with."""
    return _SESSION_KEY


@pytest.fixture(scope="session")
def reference_server(workdir, secret_key):
    server = start_reference(secret_key, workdir)
    yield server
    stop(server)


@pytest.fixture(scope="session")
def gatehouse_server(workdir, secret_key):
    url = external_gatehouse_url()
    if url:
        server = Server("gatehouse(external)", url)
        wait_ready(server, timeout=5)
        yield server
        return
    server = start_gatehouse(secret_key, workdir)
    yield server
    stop(server)


@pytest.fixture(scope="session")
def reference(reference_server) -> str:
    """Base URL of the FastAPI reference, e.g. http://127.0.0.1:41234."""
    return reference_server.url


@pytest.fixture(scope="session")
def gatehouse(gatehouse_server) -> str:
    """Base URL of the server under test."""
    return gatehouse_server.url


# ---------------------------------------------------------------------------
# raw HTTP
# ---------------------------------------------------------------------------

HeaderList = Sequence[Tuple[Union[str, bytes], Union[str, bytes]]]


def _b(x: Union[str, bytes]) -> bytes:
    return x if isinstance(x, bytes) else x.encode("latin-1")


def build_request(
    method: str,
    target: Union[str, bytes],
    headers: HeaderList = (),
    body: Optional[bytes] = None,
    host: Optional[Union[str, bytes]] = None,
    version: str = "HTTP/1.1",
    close: bool = True,
    content_length: Optional[bool] = None,
) -> bytes:
    """Serialise one request exactly as given.

    ``host=None`` omits the Host header.  ``content_length`` defaults to
    "when there is a body, or for POST"; pass False to omit it (e.g. when a
    Content-Length or Transfer-Encoding header is among ``headers``).
    """
    for name, value in headers:
        if _b(name).lower() == b"authorization":
            testlogs.record_request(authorization=_b(value))
    testlogs.record_request(body=body)
    out = _b(method) + b" " + _b(target) + b" " + _b(version) + b"\r\n"
    if host is not None:
        out += b"Host: " + _b(host) + b"\r\n"
    for name, value in headers:
        out += _b(name) + b": " + _b(value) + b"\r\n"
    if content_length is None:
        content_length = body is not None or method.upper() == "POST"
    if content_length:
        out += b"Content-Length: %d\r\n" % len(body or b"")
    if close:
        out += b"Connection: close\r\n"
    out += b"\r\n"
    if body:
        out += body
    return out


def exchange_ex(host: str, port: int, data: bytes, timeout: float = 10.0,
                expect_responses: Optional[int] = None, grace: float = 2.0,
                head_flags: Sequence[bool] = ()) -> Tuple[bytes, bool]:
    """Send ``data``; read until the server closes, or ``timeout``.

    Returns (everything received, closed_by_server).  A reset counts as
    closed; the bytes read before it are kept.  When ``expect_responses`` is
    given, waiting stops ``grace`` seconds after that many complete responses
    have arrived (so a server that ignores ``Connection: close`` costs
    ``grace`` seconds, not ``timeout``).
    """
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
            if expect_responses is not None and \
                    len(parse_responses(out, head_flags)) >= expect_responses:
                s.settimeout(grace)
        return out, False


def exchange(host: str, port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` and return everything read until the server closes
    (or ``timeout``)."""
    return exchange_ex(host, port, data, timeout)[0]


@dataclass
class RawResponse:
    version: str
    status: int
    reason: str
    headers: List[Tuple[str, str]]  # (lower-cased name, value) in wire order
    body: bytes
    raw_head: bytes = b""

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name: str) -> List[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def json(self):
        return json.loads(self.body)

    @property
    def content_type(self) -> Optional[str]:
        return self.header("content-type")

    def __repr__(self) -> str:  # shown by pytest on failures
        hs = "".join(f"\n    {k}: {v}" for k, v in self.headers)
        body = self.body if len(self.body) < 600 else self.body[:600] + b"..."
        return f"<{self.status} {self.reason}{hs}\n  body={body!r}>"


class IncompleteResponse(Exception):
    pass


def _parse_one(buf: bytes, head_request: bool) -> Tuple[RawResponse, bytes]:
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        raise IncompleteResponse("no end of header block")
    head, rest = buf[:end], buf[end + 4:]
    lines = head.split(b"\r\n")
    parts = lines[0].decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"bad status line {lines[0]!r}")
    version, status = parts[0], int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.decode("latin-1").strip().lower(),
                        value.decode("latin-1").strip()))
    resp = RawResponse(version, status, reason, headers, b"", raw_head=head)
    if 100 <= status < 200:
        return resp, rest
    if head_request or status in (204, 304):
        return resp, rest
    te = resp.header("transfer-encoding")
    if te and "chunked" in te.lower():
        body = b""
        while True:
            nl = rest.find(b"\r\n")
            if nl < 0:
                raise IncompleteResponse("chunk size")
            size = int(rest[:nl].split(b";")[0], 16)
            rest = rest[nl + 2:]
            if size == 0:
                tend = rest.find(b"\r\n")
                if tend < 0:
                    raise IncompleteResponse("trailer")
                # skip (empty) trailer section
                while tend != 0:
                    rest = rest[tend + 2:]
                    tend = rest.find(b"\r\n")
                    if tend < 0:
                        raise IncompleteResponse("trailer")
                rest = rest[2:]
                break
            if len(rest) < size + 2:
                raise IncompleteResponse("chunk data")
            body += rest[:size]
            rest = rest[size + 2:]
        resp.body = body
        return resp, rest
    cl = resp.header("content-length")
    if cl is not None:
        n = int(cl)
        if len(rest) < n:
            raise IncompleteResponse("body shorter than content-length")
        resp.body = rest[:n]
        return resp, rest[n:]
    # no framing: body runs to the end of the connection
    resp.body = rest
    return resp, b""


def parse_responses_ex(data: bytes, head_flags: Sequence[bool] = (),
                       skip_interim: bool = True) -> Tuple[List[RawResponse], bytes]:
    """Parse every complete response in ``data`` (pipelined ones too).

    Returns (responses, unparsed rest).  ``head_flags[i]`` tells whether the
    i-th response answers a HEAD request.  Interim 1xx responses are dropped
    unless ``skip_interim`` is False.  Bytes that are not a response (e.g. a
    body sent after a HEAD answer) stay in the rest.
    """
    out: List[RawResponse] = []
    i = 0
    while data:
        is_head = head_flags[i] if i < len(head_flags) else False
        try:
            resp, rest = _parse_one(data, is_head)
        except (IncompleteResponse, ValueError):
            break
        data = rest
        if 100 <= resp.status < 200 and skip_interim:
            continue
        out.append(resp)
        i += 1
    return out, data


def parse_responses(data: bytes, head_flags: Sequence[bool] = (),
                    skip_interim: bool = True) -> List[RawResponse]:
    """The complete responses in ``data``; see ``parse_responses_ex``."""
    return parse_responses_ex(data, head_flags, skip_interim)[0]


def url_host_port(base_url: str) -> Tuple[str, int]:
    parts = urllib.parse.urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def authority(base_url: str) -> str:
    h, p = url_host_port(base_url)
    return f"{h}:{p}"


def raw_request(base_url: str, method: str, target: Union[str, bytes],
                headers: HeaderList = (), body: Optional[bytes] = None,
                host: Union[str, bytes, None, type(Ellipsis)] = ...,
                version: str = "HTTP/1.1", timeout: float = 10.0,
                content_length: Optional[bool] = None) -> RawResponse:
    """One request on a fresh connection (``Connection: close``).

    ``host=...`` (default) sends the server's own ``127.0.0.1:PORT``;
    ``host=None`` sends no Host header.
    """
    h, p = url_host_port(base_url)
    if host is ...:
        host = f"{h}:{p}"
    data = build_request(method, target, headers, body, host=host, version=version,
                         content_length=content_length)
    got = parse_responses(exchange(h, p, data, timeout=timeout),
                          head_flags=[method.upper() == "HEAD"])
    if not got:
        raise AssertionError(f"no complete response to {data[:200]!r}")
    return got[0]


def raw_send(base_url: str, data: bytes, timeout: float = 10.0) -> bytes:
    h, p = url_host_port(base_url)
    return exchange(h, p, data, timeout=timeout)


class RawConnection:
    """One persistent connection: send requests, read responses one at a time."""

    def __init__(self, base_url: str, timeout: float = 10.0):
        self.host, self.port = url_host_port(base_url)
        self.sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = b""

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, target: str, headers: HeaderList = (),
                body: Optional[bytes] = None, close: bool = False) -> RawResponse:
        self.send(build_request(method, target, headers, body, host=self.authority,
                                close=close))
        return self.read_response(head=method.upper() == "HEAD")

    def read_response(self, head: bool = False) -> RawResponse:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                resp, rest = _parse_one(self.buf, head)
                self.buf = rest
                if 100 <= resp.status < 200:
                    continue
                return resp
            except IncompleteResponse:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no complete response; have {self.buf[:300]!r}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before a complete response; have {self.buf[:300]!r}")
            self.buf += chunk

    def is_closed(self, wait: float = 2.0) -> bool:
        """True if the peer closes (EOF or reset) within ``wait`` seconds."""
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(self.timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------
# forms
# ---------------------------------------------------------------------------

FORM = ("Content-Type", "application/x-www-form-urlencoded")


def multipart(fields: Sequence[Tuple[str, Union[str, bytes]]], boundary: str = "gh-bOuNdArY-42",
              files: Sequence[str] = ()) -> Tuple[str, bytes]:
    """(content-type header value, body) for a multipart/form-data request."""
    body = b""
    for name, value in fields:
        disp = f'form-data; name="{name}"'
        if name in files:
            disp += f'; filename="{name}.txt"'
        data = value if isinstance(value, bytes) else value.encode("utf-8")
        body += (b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disp.encode()
                 + b"\r\n\r\n" + data + b"\r\n")
    body += b"--" + boundary.encode() + b"--\r\n"
    return f"multipart/form-data; boundary={boundary}", body


# ---------------------------------------------------------------------------
# JWT
# ---------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def make_token(claims=None, key: str = None, header: Optional[dict] = None,
               raw_payload: Optional[bytes] = None, signature: Optional[str] = None,
               sign_as: Optional[str] = None, raw_header: Optional[bytes] = None) -> str:
    """Hand-built JWS compact token.

    ``header`` defaults to ``{"alg":"HS256","typ":"JWT"}``.  The HMAC uses the
    header's ``alg`` when it is HS256/384/512 (or ``sign_as``), else SHA-256.
    ``signature`` overrides the computed signature verbatim; ``raw_payload``
    and ``raw_header`` give the exact JSON bytes to encode.
    """
    key = _SESSION_KEY if key is None else key
    header = {"alg": "HS256", "typ": "JWT"} if header is None else header
    h = b64url(raw_header if raw_header is not None else
               json.dumps(header, separators=(",", ":")).encode())
    payload = raw_payload if raw_payload is not None else json.dumps(
        claims, separators=(",", ":")).encode()
    p = b64url(payload)
    signing_input = f"{h}.{p}".encode()
    if signature is None:
        alg = header.get("alg") if isinstance(header.get("alg"), str) else None
        digest = _HASHES.get(sign_as or alg, hashlib.sha256)
        signature = b64url(hmac.new(key.encode(), signing_input, digest).digest())
    testlogs.record_secret(f"{h}.{p}.{signature}")
    return f"{h}.{p}.{signature}"


def decode_jwt(token: str, key: Optional[str] = None) -> Tuple[dict, dict]:
    """(header, claims) of an HS256 token; verifies the signature when ``key``."""
    parts = token.split(".")
    assert len(parts) == 3, f"not a JWS compact token: {token!r}"
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    if key is not None:
        expect = b64url(hmac.new(key.encode(), f"{parts[0]}.{parts[1]}".encode(),
                                 hashlib.sha256).digest())
        assert hmac.compare_digest(expect, parts[2]), "token signature does not verify"
    return header, claims


def login(base_url: str, username: str, password: str, scope: Optional[str] = None) -> str:
    """POST /token and return the access token (asserts 200)."""
    fields = {"username": username, "password": password}
    if scope is not None:
        fields["scope"] = scope
    body = urllib.parse.urlencode(fields).encode()
    resp = raw_request(base_url, "POST", "/token", [FORM], body)
    assert resp.status == 200, resp
    testlogs.record_secret(resp.json()["access_token"])
    return resp.json()["access_token"]
