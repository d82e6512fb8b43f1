#!/usr/bin/env bash
# Installs gatehouse into a temporary prefix, builds examples/minimal against it with
# find_package(gatehouse), starts the example and checks what a client sees.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The programs this needs, each named with the Debian package that has it.
missing=()
command -v cmake >/dev/null 2>&1 || missing+=("cmake (Debian package cmake)")
command -v ninja >/dev/null 2>&1 || missing+=("ninja (Debian package ninja-build)")
command -v curl >/dev/null 2>&1 || missing+=("curl (Debian package curl)")
/usr/bin/python3 -c 'import jose' 2>/dev/null || missing+=("python3's jose module (Debian package python3-jose)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'not ok - installed package: not installed: %s\n' "${missing[@]}"
  echo "(scripts/install-deps build test installs them)"
  exit 1
fi
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

cmake --install build --prefix "$tmp/prefix" >/dev/null
cmake -S examples/minimal -B "$tmp/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/build" >/dev/null

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key=example-test-key
SECRET_KEY=$key "$tmp/build/example_service" "$port" 2>"$tmp/log" &
pid=$!
ready=""
last_error=""
for _ in $(seq 100); do   # up to ~10 s
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "not ok - installed package: example_service exited before answering; its log:"
    cat "$tmp/log"
    exit 1
  fi
  # curl's own words (refused connection, HTTP error, ...) are kept for the report.
  if last_error=$(curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/openapi.json" 2>&1); then
    ready=1
    break
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "not ok - installed package: example_service did not answer within 10 s; the last try said: $last_error"
  cat "$tmp/log"
  exit 1
fi

fail=0
check() { # name expected actual
  if [ "$2" == "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected $2, got $3"; fail=1; fi
}
token=$(/usr/bin/python3 -c "from jose import jwt; import time; print(jwt.encode({'sub':'ann','scopes':['reports'],'exp':int(time.time())+60}, '$key', algorithm='HS256'))")
weak=$(/usr/bin/python3 -c "from jose import jwt; import time; print(jwt.encode({'sub':'ann','scopes':[],'exp':int(time.time())+60}, '$key', algorithm='HS256'))")
check "installed package: route with scope answers" '[{"id":1,"owner":"ann"}]' \
  "$(curl -s "http://127.0.0.1:$port/reports/" -H "Authorization: Bearer $token")"
check "installed package: missing scope is refused" '401 Bearer scope="reports"' \
  "$(curl -s -o /dev/null -D - "http://127.0.0.1:$port/reports/" -H "Authorization: Bearer $weak" | tr -d '\r' | awk '/^HTTP/{s=$2} tolower($1)=="www-authenticate:"{$1=""; w=substr($0,2)} END{print s" "w}')"
check "installed package: OpenAPI derived from the routes" '["reports"]' \
  "$(curl -s "http://127.0.0.1:$port/openapi.json" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["paths"]["/reports/"]["get"]["security"][0]["OAuth2PasswordBearer"]))')"
exit $fail
