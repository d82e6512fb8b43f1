#!/usr/bin/env bash
# Browser test of /docs (Swagger UI) and /redoc (ReDoc) against a real gatehouse.
#
#   bash tests/browser/run.sh
#
# Starts ${GATEHOUSE_BIN:-build/gatehouse} serve on a free 127.0.0.1 port with a
# throwaway data dir and a random SECRET_KEY, waits for /openapi.json, runs
# `node --test tests/browser/` against it (headless /usr/bin/chromium through
# playwright-core), stops the server and exits with the test's status.
# Screenshots and the server log go to ${ARTIFACT_DIR:-build/test-artifacts}.
# GATEHOUSE_WEB_DIR, if set, is passed as --web-dir (default: the server's own
# lookup, web/ next to the binary).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"

GATEHOUSE_BIN="${GATEHOUSE_BIN:-build/gatehouse}"
if [ ! -x "$GATEHOUSE_BIN" ]; then
  echo "run.sh: $GATEHOUSE_BIN not found or not executable (build first, or set GATEHOUSE_BIN)" >&2
  exit 2
fi

export ARTIFACT_DIR="${ARTIFACT_DIR:-build/test-artifacts}"
mkdir -p "$ARTIFACT_DIR"
ARTIFACT_DIR="$(cd "$ARTIFACT_DIR" && pwd)"

# The programs this needs, each named with the Debian package that has it.
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
missing=()
command -v node >/dev/null 2>&1 || missing+=("node (Debian package nodejs)")
command -v npm >/dev/null 2>&1 || missing+=("npm (Debian package npm)")
command -v curl >/dev/null 2>&1 || missing+=("curl (Debian package curl)")
[ -x "$CHROMIUM" ] || missing+=("$CHROMIUM (Debian package chromium; or set CHROMIUM)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'run.sh: not installed: %s\n' "${missing[@]}" >&2
  echo "run.sh: scripts/install-deps build test installs them" >&2
  exit 2
fi
export CHROMIUM

# playwright-core as the lock file pins it; npm's warnings (EBADENGINE) stay visible.
if [ ! -d tests/browser/node_modules/playwright-core ] ||
  [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  echo "run.sh: npm ci --prefix tests/browser (node $(node --version))" >&2
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=http 2>&1 |
    "$REPO/scripts/progress" run.sh >&2
fi
# The Node.js that playwright-core supports, said before it fails in its own words.
if ! engine_error="$(node -e '
  const want = require(process.argv[1]).engines.node;     // e.g. ">=18"
  const m = /^>=\s*(\d+)(?:\.(\d+))?/.exec(want || "");
  const [maj, min] = process.versions.node.split(".").map(Number);
  if (m && (maj < +m[1] || (maj === +m[1] && min < +(m[2] || 0)))) {
    console.log(`playwright-core needs Node.js ${want}, but node is ${process.version}`);
    process.exit(1);
  }' "$REPO/tests/browser/node_modules/playwright-core/package.json" 2>&1)"; then
  echo "run.sh: $engine_error ($(command -v node)); see tests/browser/package.json and docs/DECISIONS.md" >&2
  exit 2
fi

PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
DATA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-browser.XXXXXX")"
SERVER_LOG="$ARTIFACT_DIR/browser-gatehouse.log"
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SECRET_KEY="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" \
  "$GATEHOUSE_BIN" serve --host 127.0.0.1 --port "$PORT" --data-dir "$DATA_DIR" --demo-users \
  ${GATEHOUSE_WEB_DIR:+--web-dir "$GATEHOUSE_WEB_DIR"} \
  >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

BASE_URL="http://127.0.0.1:$PORT"
ready=""
last_error=""
for _ in $(seq 150); do   # up to ~15 s
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "run.sh: gatehouse exited before answering; log follows" >&2
    cat "$SERVER_LOG" >&2
    exit 1
  fi
  # curl's own words (refused connection, HTTP error, ...) are kept for the report.
  if last_error="$(curl -fsS -o /dev/null --max-time 1 "$BASE_URL/openapi.json" 2>&1)"; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "run.sh: $BASE_URL/openapi.json did not answer within 15 s; the last try said: $last_error" >&2
  echo "run.sh: server log follows" >&2
  cat "$SERVER_LOG" >&2
  exit 1
fi

status=0
BASE_URL="$BASE_URL" node --test tests/browser/ || status=$?
exit "$status"
