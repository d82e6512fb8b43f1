#!/usr/bin/env bash
# Misuse of the library's templates fails at compile time with a readable message.
# Each snippet here names what it expects on its first line: "// expect: TEXT" (the
# compilation must fail and its diagnostics contain TEXT, from a static_assert) or
# "// expect-success" (the control: it must compile). TEXT must be in the first error
# the compiler prints. Compiled against include/ with
# the build's C++ standard; prints TAP lines.
set -uo pipefail
cd "$(dirname "$0")/../.."
cxx=${CXX:-c++}
flags=(-std=c++20 -fsyntax-only -Iinclude -DBOOST_ASIO_NO_DEPRECATED -Wall -Wextra)
fail=0
for src in tests/compile_fail/*.cpp; do
  name=$(basename "$src" .cpp)
  first=$(head -1 "$src")
  out=$("$cxx" "${flags[@]}" "$src" 2>&1)
  status=$?
  if [ "$first" == "// expect-success" ]; then
    if [ $status -eq 0 ]; then echo "ok - compile: $name compiles"; else
      echo "not ok - compile: $name does not compile:"; echo "$out" | head -30; fail=1; fi
    continue
  fi
  expected=${first#// expect: }
  if [ $status -eq 0 ]; then
    echo "not ok - compile: $name compiled; expected an error saying: $expected"
    fail=1
  elif ! grep -m1 "error:" <<<"$out" | grep -qF -- "$expected"; then
    # The message must be the first error the user reads, not one buried below others.
    echo "not ok - compile: $name's first error is not: $expected"
    echo "$out" | grep -E "error" | head -10
    fail=1
  else
    errors=$(grep -c "error:" <<<"$out")
    echo "ok - compile: $name fails first with \"$expected\" ($errors error lines)"
  fi
done
exit $fail
