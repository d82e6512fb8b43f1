#!/usr/bin/env bash
# Installs gatehouse into a temporary prefix and builds programs against it, out of tree,
# the two ways a user can: with find_package(gatehouse) (the CMake config, its version
# file and exported targets) and with `pkg-config --cflags --libs gatehouse`. Then starts
# each and checks what a client sees:
#   - examples/minimal, built both ways: a route with a scope, a refused token, OpenAPI;
#   - examples/tutorial (FastAPI's security tutorial): a login, a protected route, the
#     401s, and /openapi.json byte for byte the FastAPI reference's;
#   - examples/notes: tests/http/test_notes_example.py against the installed build
#     (the same answers and /openapi.json as its FastAPI twin, examples/notes/app.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
# The programs this needs, each named with the Debian package that has it.
missing=()
command -v cmake >/dev/null 2>&1 || missing+=("cmake (Debian package cmake)")
command -v ninja >/dev/null 2>&1 || missing+=("ninja (Debian package ninja-build)")
command -v curl >/dev/null 2>&1 || missing+=("curl (Debian package curl)")
command -v pkg-config >/dev/null 2>&1 || missing+=("pkg-config (Debian package pkgconf)")
command -v c++ >/dev/null 2>&1 || missing+=("c++ (Debian package g++)")
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

fail=0
check() { # name expected actual
  if [ "$2" == "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected $2, got $3"; fail=1; fi
}
version=$(sed -n 's/^project(gatehouse VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)

cmake --install build --prefix "$tmp/prefix" >/dev/null
pcdir=$(dirname "$(find "$tmp/prefix" -name gatehouse.pc)")
export PKG_CONFIG_PATH=$pcdir

# ---- the package files ----------------------------------------------------------------
check "installed package: pkg-config knows gatehouse's version" "$version" \
  "$(pkg-config --modversion gatehouse)"
check "installed package: pkg-config's include directory is the installed one" \
  "$(realpath "$tmp/prefix/include")" \
  "$(realpath "$(pkg-config --variable=includedir gatehouse)")"
# The version file: a compatible request is found, a newer one is not.
mkdir -p "$tmp/versions"
cat >"$tmp/versions/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(versions LANGUAGES CXX)
find_package(gatehouse ${version%.*} QUIET)
message(STATUS "same=\${gatehouse_FOUND} version=\${gatehouse_VERSION}")
find_package(gatehouse 99.0 QUIET)
message(STATUS "newer=\${gatehouse_FOUND}")
if(TARGET gatehouse::gatehouse)
  message(STATUS "target=gatehouse::gatehouse")
endif()
CMAKE
found=$(cmake -S "$tmp/versions" -B "$tmp/versions/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" |
  sed -n 's/^-- \(same=.*\|newer=.*\|target=.*\)$/\1/p' | tr '\n' ' ')
check "installed package: the CMake config's version file and exported target" \
  "same=1 version=$version newer=0 target=gatehouse::gatehouse " "$found"

# ---- building against it ----------------------------------------------------------------
build_cmake() { # example-dir build-dir
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/cmake.log" 2>&1 &&
    cmake --build "$2" >>"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; return 1; }
}
build_cmake examples/minimal "$tmp/minimal-cmake"
mkdir -p "$tmp/minimal-pkgconfig"
# shellcheck disable=SC2046  # pkg-config's words are separate arguments
c++ -std=c++20 -o "$tmp/minimal-pkgconfig/example_service" examples/minimal/main.cpp \
  -DGATEHOUSE_DEFAULT_WEB_DIR="\"$(pkg-config --variable=webdir gatehouse)\"" \
  $(pkg-config --cflags --libs gatehouse)
echo "ok - installed package: examples/minimal built with find_package and with pkg-config"
build_cmake examples/tutorial "$tmp/tutorial"
build_cmake examples/notes "$tmp/notes"
echo "ok - installed package: examples/tutorial and examples/notes built with find_package"

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# start NAME PORT COMMAND...: runs it (SECRET_KEY=$key) until it answers /openapi.json.
start() {
  local name=$1 port=$2; shift 2
  SECRET_KEY=$key "$@" 2>"$tmp/$name.log" &
  pid=$!
  local last_error=""
  for _ in $(seq 100); do # up to ~10 s
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "not ok - installed package: $name exited before answering; its log:"
      cat "$tmp/$name.log"
      exit 1
    fi
    # curl's own words (refused connection, HTTP error, ...) are kept for the report.
    if last_error=$(curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/openapi.json" 2>&1); then
      return 0
    fi
    sleep 0.1
  done
  echo "not ok - installed package: $name did not answer within 10 s; the last try said: $last_error"
  cat "$tmp/$name.log"
  exit 1
}
finish() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; }
status_and_challenge() { # the status and WWW-Authenticate of the answer to curl's arguments
  curl -s -o /dev/null -D - "$@" | tr -d '\r' |
    awk '/^HTTP/{s=$2} tolower($1)=="www-authenticate:"{$1=""; w=substr($0,2)} END{print s" "w}'
}

# ---- examples/minimal, both builds -------------------------------------------------------
key=example-test-key
token=$(/usr/bin/python3 -c "from jose import jwt; import time; print(jwt.encode({'sub':'ann','scopes':['reports'],'exp':int(time.time())+60}, '$key', algorithm='HS256'))")
weak=$(/usr/bin/python3 -c "from jose import jwt; import time; print(jwt.encode({'sub':'ann','scopes':[],'exp':int(time.time())+60}, '$key', algorithm='HS256'))")
for how in cmake pkgconfig; do
  port=$(free_port)
  start "minimal-$how" "$port" "$tmp/minimal-$how/example_service" "$port"
  check "installed package ($how): route with scope answers" '[{"id":1,"owner":"ann"}]' \
    "$(curl -s "http://127.0.0.1:$port/reports/" -H "Authorization: Bearer $token")"
  check "installed package ($how): missing scope is refused" '401 Bearer scope="reports"' \
    "$(status_and_challenge "http://127.0.0.1:$port/reports/" -H "Authorization: Bearer $weak")"
  check "installed package ($how): Swagger UI's files are served from the package" '200 200' \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/docs/assets/swagger-ui-bundle.js") $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/docs/oauth2-redirect")"
  check "installed package ($how): OpenAPI derived from the routes" '["reports"]' \
    "$(curl -s "http://127.0.0.1:$port/openapi.json" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["paths"]["/reports/"]["get"]["security"][0]["OAuth2PasswordBearer"]))')"
  finish
done

# ---- examples/tutorial ----------------------------------------------------------------------
key=tutorial-test-key
port=$(free_port)
base=http://127.0.0.1:$port
start tutorial "$port" "$tmp/tutorial/tutorial_example" "$port" "$tmp/tutorial-data"
login=$(curl -s "$base/token" -d 'username=johndoe&password=secret&scope=me')
access=$(printf '%s' "$login" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("access_token",""))')
check "installed tutorial: a login gives a bearer token" "bearer" \
  "$(printf '%s' "$login" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("token_type"))')"
check "installed tutorial: the protected route answers its user" \
  '{"username":"johndoe","email":"johndoe@example.com","full_name":"John Doe","disabled":false}' \
  "$(curl -s "$base/users/me/" -H "Authorization: Bearer $access")"
check "installed tutorial: no token is 401" '401 Bearer' "$(status_and_challenge "$base/users/me/")"
check "installed tutorial: a scope the token lacks is 401" '401 Bearer scope="items me"' \
  "$(status_and_challenge "$base/users/me/items/" -H "Authorization: Bearer $access")"
check "installed tutorial: a wrong password is 401" '{"detail":"Incorrect username or password"}' \
  "$(curl -s "$base/token" -d 'username=johndoe&password=wrong')"
check "installed tutorial: a disabled user is 400" '{"detail":"Inactive user"}' \
  "$(curl -s "$base/users/me/" -H "Authorization: Bearer $(curl -s "$base/token" -d 'username=alice&password=secret2&scope=me' |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("access_token",""))')")"
curl -s "$base/openapi.json" >"$tmp/tutorial-openapi.json"
if cmp -s <(tr -d '\n' <tests/unit/data/reference_openapi.json) "$tmp/tutorial-openapi.json"; then
  echo "ok - installed tutorial: /openapi.json is the FastAPI reference's, byte for byte"
else
  echo "not ok - installed tutorial: /openapi.json differs from tests/unit/data/reference_openapi.json"
  fail=1
fi
finish

# ---- examples/notes: the differential test against its FastAPI twin ----------------------
GATEHOUSE_NOTES_BIN="$tmp/notes/notes_example" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  tests/http/test_notes_example.py || fail=1
exit $fail
