"""The Debian package, as an operator gets it.

CPack builds the .deb from the release build (``build/``, or ``$GATEHOUSE_BUILD_DIR``);
lintian must find no error and no warning; the systemd unit must pass
``systemd-analyze verify``; and the binary and web assets extracted from the package
(``dpkg-deb -x``) must serve /docs and a login with the packaged config file.

That server runs the way the unit runs it, as far as a test without systemd can: as an
unprivileged user with no capabilities and no_new_privs (setpriv), under strace. The
trace is then held against the unit's sandbox: every system call must pass its
SystemCallFilter, every socket family RestrictAddressFamilies, no mapping may be
writable and executable (MemoryDenyWriteExecute), writes must stay in the data
directory (ProtectSystem=strict, ReadWritePaths) and /proc, /dev and /home reads in
what ProcSubset=pid, PrivateDevices and ProtectHome leave.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("GATEHOUSE_BUILD_DIR", REPO / "build"))
NOBODY = 65534


def project_version() -> str:
    m = re.search(r"project\(gatehouse VERSION ([0-9.]+)", (REPO / "CMakeLists.txt").read_text())
    assert m, "no project(gatehouse VERSION ...) in CMakeLists.txt"
    return m[1]


def run(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the package ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def deb() -> Path:
    out = BUILD / "package"
    for old in out.glob("*.deb"):
        old.unlink()
    r = run("cpack", "-G", "DEB", cwd=BUILD)
    assert r.returncode == 0, r.stdout + r.stderr
    debs = list(out.glob("*.deb"))
    assert len(debs) == 1, debs
    return debs[0]


@pytest.fixture(scope="module")
def work():
    # World-traversable, so that the unprivileged server can reach the extracted binary.
    d = Path(tempfile.mkdtemp(prefix="gatehouse-package-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def root(deb, work) -> Path:
    r = work / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(r)], check=True)
    return r


@pytest.fixture(scope="module")
def control(deb, work) -> Path:
    c = work / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(c)], check=True)
    return c


def field(deb: Path, name: str) -> str:
    return run("dpkg-deb", "-f", str(deb), name).stdout.strip()


def test_package_version_is_the_projects(deb, root):
    version = project_version()
    assert field(deb, "Package") == "gatehouse"
    assert field(deb, "Version") == version
    assert deb.name == f"gatehouse_{version}_{run('dpkg', '--print-architecture').stdout.strip()}.deb"
    with gzip.open(root / "usr/share/doc/gatehouse/changelog.gz", "rt") as f:
        assert f.readline().startswith(f"gatehouse ({version}) ")


def test_dependencies_come_from_shlibdeps_and_libpq_is_recommended(deb):
    depends = [d.split(" ")[0] for d in field(deb, "Depends").split(", ")]
    for lib in ("libc6", "libstdc++6", "libssl3", "libsqlite3-0", "libargon2-1", "libcrypt1",
                "libboost-json1.81.0", "adduser",
                "procps"):  # /bin/kill, the unit's ExecReload; a minimal Debian lacks it
        assert lib in depends, (lib, depends)
    # Loaded with dlopen when a PostgreSQL store is opened: the SQLite default runs without.
    assert "libpq5" not in depends
    assert field(deb, "Recommends") == "libpq5"


def test_package_contents_and_modes(deb):
    listing = {}
    for line in run("dpkg-deb", "-c", str(deb)).stdout.splitlines():
        parts = line.split()
        listing[parts[5].removeprefix(".")] = (parts[0], parts[1])
    expected = {
        "/usr/bin/gatehouse": "-rwxr-xr-x",
        "/usr/share/man/man1/gatehouse.1.gz": "-rw-r--r--",
        "/lib/systemd/system/gatehouse.service": "-rw-r--r--",
        "/etc/gatehouse/gatehouse.toml": "-rw-r-----",
        "/usr/share/doc/gatehouse/copyright": "-rw-r--r--",
        "/usr/share/doc/gatehouse/changelog.gz": "-rw-r--r--",
        "/usr/share/lintian/overrides/gatehouse": "-rw-r--r--",
    }
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "oauth2-redirect.js",
                 "favicon-32x32.png", "redoc.standalone.js"):
        expected[f"/usr/share/gatehouse/web/{name}"] = "-rw-r--r--"
    for path, mode in expected.items():
        assert path in listing, f"{path} missing from the package"
        assert listing[path] == (mode, "root/root"), (path, listing[path])
    # The library, its headers and CMake files are not for the server's package.
    assert not [p for p in listing if p.startswith(("/usr/include", "/usr/lib"))]


def test_maintainer_scripts_make_user_directory_and_config_owner(control):
    assert (control / "conffiles").read_text().split() == ["/etc/gatehouse/gatehouse.toml"]
    postinst = (control / "postinst").read_text()
    assert "adduser --quiet --system --group" in postinst
    assert "chmod 0700 /var/lib/gatehouse" in postinst
    assert "chown root:gatehouse /etc/gatehouse/gatehouse.toml" in postinst
    assert "chmod 0640 /etc/gatehouse/gatehouse.toml" in postinst
    for script in ("postinst", "prerm", "postrm"):
        assert os.access(control / script, os.X_OK)
        r = run("sh", "-n", str(control / script))
        assert r.returncode == 0, r.stderr


def test_lintian_finds_no_error_and_no_warning(deb):
    r = run("lintian", "--pedantic", "--display-info", "--display-experimental", str(deb))
    tags = [line for line in r.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
    print("\n".join(tags))
    assert not [t for t in tags if t.startswith("E: ")], tags
    # Warnings are fixed or overridden with a reason (packaging/debian/lintian-overrides).
    assert not [t for t in tags if t.startswith("W: ")], tags


# ---- the systemd unit -----------------------------------------------------------------

def unit_settings(root: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (root / "lib/systemd/system/gatehouse.service").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            settings.setdefault(k, []).append(v)
    return settings


def test_systemd_analyze_verify_accepts_the_unit(root):
    host_units = Path("/lib/systemd/system")
    assert (host_units / "multi-user.target").exists(), "systemd is not installed"
    units = root / "lib/systemd/system"
    for unit in host_units.iterdir():  # the targets the unit refers to
        if not (units / unit.name).exists() and unit.is_file():
            shutil.copy(unit, units / unit.name)
    # ExecReload's /bin/kill comes from a dependency (procps, in scripts/install-deps), as
    # it would be installed.
    assert Path("/bin/kill").exists(), "procps is not installed (scripts/install-deps)"
    kill = root / "bin/kill"
    if not kill.exists():
        kill.parent.mkdir(exist_ok=True)
        shutil.copy("/bin/kill", kill)
    # MANPATH: Documentation=man:gatehouse(1) is looked up in the package's man pages.
    env = dict(os.environ, MANPATH=str(root / "usr/share/man"))
    r = run("systemd-analyze", "verify", f"--root={root}", "gatehouse.service", env=env)
    # verify exits 0 on unknown keys and bad values too, printing a warning: none allowed.
    assert (r.returncode, r.stdout + r.stderr) == (0, "")


def test_unit_runs_the_packaged_binary_hardened(root):
    s = unit_settings(root)
    assert s["ExecStart"] == ["/usr/bin/gatehouse --config /etc/gatehouse/gatehouse.toml serve"]
    assert s["ExecStartPre"] == [
        "/usr/bin/gatehouse config check --quiet /etc/gatehouse/gatehouse.toml"]
    # `systemctl reload gatehouse` sends the SIGHUP that reloads (without it: "Job type
    # reload is not applicable"); scripts/check-systemd runs it under a booted systemd.
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["User"] == ["gatehouse"] and s["Group"] == ["gatehouse"]
    expected = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "ReadWritePaths": "/var/lib/gatehouse",
        "StateDirectory": "gatehouse", "StateDirectoryMode": "0700",
        "CapabilityBoundingSet": "", "MemoryDenyWriteExecute": "yes", "LockPersonality": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "ProcSubset": "pid",
        "UMask": "0077", "RestartPreventExitStatus": "2", "LimitNICE": "+10",
    }
    for key, value in expected.items():
        assert s.get(key) == [value], (key, s.get(key))
    assert s["SystemCallFilter"] == ["@system-service", "~@privileged"]
    r = run("systemd-analyze", "security", "--offline=true",
            str(root / "lib/systemd/system/gatehouse.service"))
    m = re.search(r"Overall exposure level for gatehouse.service: ([0-9.]+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m[1]) <= 2.0, r.stdout


# ---- the man page and the binary's own answers ----------------------------------------

def test_man_page_renders_cleanly_and_covers_the_commands(root):
    env = dict(os.environ, MANWIDTH="80")
    page = root / "usr/share/man/man1/gatehouse.1.gz"
    r = run("man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", str(page), env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    text = run("man", "-l", str(page), env=env).stdout
    text = re.sub(r"\s+", " ", re.sub(r".\x08", "", text))
    for command in ("gatehouse serve", "gatehouse migrate", "gatehouse user add",
                    "gatehouse user passwd", "gatehouse user import", "gatehouse hash"):
        assert command in text, command
    assert "--access-token-expire-minutes" in text and "/var/lib/gatehouse" in text
    assert f"gatehouse {project_version()}" in text


def test_packaged_config_passes_the_units_config_check(root):
    # The unit's ExecStartPre, on the packaged config file (its data directory does not
    # exist here: config check opens and creates nothing).
    r = run(str(root / "usr/bin/gatehouse"), "config", "check", "--quiet",
            str(root / "etc/gatehouse/gatehouse.toml"), env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stdout + r.stderr


def test_version_names_the_release_and_the_build(root):
    r = run(str(root / "usr/bin/gatehouse"), "--version")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"gatehouse {project_version()}"
    assert re.match(r"revision \S+, Release build, compiler \S+ [0-9.]+$", lines[1]), lines
    assert lines[2].startswith("libraries: Boost 1.81.0, OpenSSL 3."), lines


# ---- the extracted package serving, the way the unit runs it --------------------------

def syscall_groups() -> dict[str, set[str]]:
    """systemd's named system call sets, each expanded to its system calls."""
    out = run("systemd-analyze", "syscall-filter").stdout
    raw: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.split()[0]
            raw[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            raw[current].append(line.split()[0])
        elif not line.strip():
            current = None

    def expand(name: str) -> set[str]:
        result: set[str] = set()
        for item in raw[name]:
            result |= expand(item) if item.startswith("@") else {item}
        return result

    return {name: expand(name) for name in raw}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, root, work):
    """Starts the packaged binary with the packaged config (data-dir and port changed), on
    the default SQLite store, and on PostgreSQL (libpq loaded at run time) when
    scripts/with-postgres provides one."""
    store = request.param
    database = os.environ.get("GATEHOUSE_TEST_DATABASE_URL", "")
    if store == "postgresql" and not database:
        pytest.skip("no PostgreSQL: run under scripts/with-postgres")
    home = work / f"run-{store}"
    home.mkdir()
    data = home / "data"
    port = free_port()
    config = (root / "etc/gatehouse/gatehouse.toml").read_text()
    assert 'data-dir = "/var/lib/gatehouse"' in config
    config = config.replace('data-dir = "/var/lib/gatehouse"', f'data-dir = "{data}"')
    (home / "gatehouse.toml").write_text(config + f"\nport = {port}\n")
    trace = home / "trace"
    log = home / "log"
    cmd = ["strace", "-f", "-qq", "-s", "512", "-o", str(trace), str(root / "usr/bin/gatehouse"),
           "--config", str(home / "gatehouse.toml"), "serve", "--demo-users"]
    if os.geteuid() == 0:
        # The unit's User=, NoNewPrivileges= and empty CapabilityBoundingSet=.
        os.chown(home, NOBODY, NOBODY)
        cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
               "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", *cmd]
    # And its LimitNICE=+10 (the hashing threads leave SCHED_IDLE again at nice 10), where
    # this machine may raise that limit (CAP_SYS_RESOURCE; systemd likewise keeps the
    # closest value it may set).
    limit_nice = subprocess.run(["prlimit", "--nice=10", "true"],
                                capture_output=True).returncode == 0
    if limit_nice:
        cmd = ["prlimit", "--nice=10", *cmd]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if store == "postgresql":
        env["GATEHOUSE_DATABASE"] = database
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=err, stderr=err, env=env, cwd=home)
    base = f"http://127.0.0.1:{port}"
    answers = {}
    try:
        deadline = time.monotonic() + 30
        while b"listening on" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

        def get(path, **kw):
            req = urllib.request.Request(base + path, **kw)
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()

        answers["docs"] = get("/docs")
        answers["bundle"] = get("/docs/assets/swagger-ui-bundle.js")
        form = urllib.parse.urlencode(
            {"username": "johndoe", "password": "secret", "scope": "me"}).encode()
        answers["token"] = get("/token", data=form, method="POST")
        token = json.loads(answers["token"][1]).get("access_token", "")
        answers["me"] = get("/users/me/", headers={"Authorization": f"Bearer {token}"})
        answers["wrong"] = get("/token", method="POST", data=urllib.parse.urlencode(
            {"username": "johndoe", "password": "wrong"}).encode())
    finally:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        server = children.read_text().split() if children.exists() else []
        for pid in server:
            os.kill(int(pid), signal.SIGTERM)
        if not server:
            proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {"answers": answers, "trace": trace.read_text(), "log": log.read_text(),
            "limit_nice": limit_nice,
            "data": data, "home": home, "root": root, "exit": proc.returncode, "store": store}


def test_extracted_package_serves_docs_and_a_login(served):
    a = served["answers"]
    status, body = a["docs"]
    assert status == 200 and b"swagger-ui-bundle.js" in body
    bundle = (served["root"] / "usr/share/gatehouse/web/swagger-ui-bundle.js").read_bytes()
    assert a["bundle"] == (200, bundle)
    assert a["token"][0] == 200 and json.loads(a["token"][1])["token_type"] == "bearer"
    assert a["me"][0] == 200 and json.loads(a["me"][1])["username"] == "johndoe"
    assert a["wrong"] == (401, b'{"detail":"Incorrect username or password"}')


def test_hashing_threads_may_leave_sched_idle_under_the_units_limits(served):
    # hash-priority adaptive: with the unit's LimitNICE=+10 and no capability, the server
    # may raise its hashing threads back to nice 10; without it (a machine where the limit
    # cannot be raised) it says it runs them as low.
    warned = '"event":"hash_priority"' in served["log"]
    if served["limit_nice"]:
        assert not warned, served["log"]
    elif os.geteuid() == 0:
        assert warned, served["log"]


def test_sigterm_stops_it_cleanly(served):
    assert served["exit"] == 0, served["log"]
    assert "gatehouse: stopped" in served["log"]


def test_data_directory_and_files_are_private(served):
    if served["store"] != "sqlite":
        pytest.skip("the data directory holds the SQLite store")
    data = served["data"]
    assert data.stat().st_mode & 0o777 == 0o700
    for f in ("gatehouse.db", "secret_key"):
        assert (data / f).stat().st_mode & 0o777 == 0o600, f
    if os.geteuid() == 0:
        assert (data / "gatehouse.db").stat().st_uid == NOBODY


def syscalls(trace: str) -> set[str]:
    return set(re.findall(r"^\d+ +([a-z0-9_]+)\(", trace, re.M))


def test_every_system_call_passes_the_units_filter(served, root):
    groups = syscall_groups()
    allowed: set[str] = set()
    for rule in unit_settings(root)["SystemCallFilter"]:
        names = rule.lstrip("~").split()
        chosen = set().union(*(groups[n] if n.startswith("@") else {n} for n in names))
        allowed = allowed - chosen if rule.startswith("~") else allowed | chosen
    used = syscalls(served["trace"])
    assert {"accept", "openat", "setpriority"} <= used  # the trace is real
    assert used - allowed == set()


def test_socket_families_are_the_units(served, root):
    families = set(re.findall(r"socket\((AF_[A-Z0-9]+)", served["trace"]))
    assert "AF_INET" in families
    assert families <= set(unit_settings(root)["RestrictAddressFamilies"][0].split())


def test_no_writable_executable_memory(served):
    for line in served["trace"].splitlines():
        if re.search(r" (mmap|mprotect|pkey_mprotect)\(", line) and "PROT_EXEC" in line:
            # MemoryDenyWriteExecute: no W+X mapping, and no later mprotect to executable.
            assert "PROT_WRITE" not in line and "mprotect" not in line, line


# glibc's malloc reads this once when it first shrinks a thread's heap; when the file is
# hidden (ProcSubset=pid) the open fails and malloc keeps its default (madvise).
GLIBC_PROBES = {"/proc/sys/vm/overcommit_memory"}

WRITING_CALLS = {"mkdir", "mkdirat", "unlink", "unlinkat", "rmdir", "rename", "renameat",
                 "renameat2", "chmod", "fchmodat", "link", "linkat", "symlink", "symlinkat",
                 "truncate", "creat"}


def test_files_touched_are_within_the_sandbox(served):
    data = str(served["data"])
    paths = []
    for line in served["trace"].splitlines():
        m = re.match(r"^\d+ +([a-z0-9_]+)\((.*)", line)
        if not m:
            continue
        name, args = m[1], m[2]
        p = re.search(r'"(/[^"]*)"', args)
        if not p:
            continue
        path = p[1]
        paths.append(path)
        writes = name in WRITING_CALLS or (
            name in ("open", "openat", "openat2") and re.search(r"O_WRONLY|O_RDWR|O_CREAT", args))
        if writes:  # ProtectSystem=strict, ReadWritePaths=
            assert path == data or path.startswith(data + "/"), line
        if path.startswith("/proc/") and path not in GLIBC_PROBES:  # ProcSubset=pid
            assert re.match(r"^/proc/(self|thread-self|\d+)(/|$)", path), line
        if path.startswith("/dev/"):  # PrivateDevices=
            assert path in ("/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                            "/dev/urandom", "/dev/tty"), line
        assert not path.startswith(("/home/", "/root/", "/run/user/")), line  # ProtectHome=
    if served["store"] == "sqlite":
        assert f"{data}/gatehouse.db" in paths  # the trace is real
    else:
        assert any(p.endswith("/libpq.so.5") for p in paths)
    # The assets came from the package's own tree, found from the binary's place.
    web = str(served["root"] / "usr/share/gatehouse/web") + "/"
    assert any(p.startswith(web) for p in paths)
